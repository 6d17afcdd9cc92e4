package syslog

import (
	"net/netip"

	"github.com/trawlsec/trawl/event"
)

// maxTag bounds an RFC 3164 TAG. RFC 3164 says 32 characters and RFC 5424
// allows an APP-NAME of 48; real tags (systemd units, Java daemons,
// "postfix/smtpd") run longer, and a longer first word followed by ':' is
// more likely text than a tag.
const maxTag = 64

// maxCiscoCounter bounds the digits of a Cisco IOS message counter or
// service sequence number ("123:", "000485:").
const maxCiscoCounter = 10

// parse3164 parses b[i:], what follows the PRI (i is 0 when there was
// none), as RFC 3164 as devices send it:
//
//	[cisco-prefix] [*|.]TIMESTAMP[ TZ][ YEAR][:] [HOSTNAME[ :]] [TAG[[PID]][:]] MSG
//
// Without a timestamp (and strict false) there is no hostname either (RFC
// 3164 section 4.3.3: the rest is content), but a leading TAG[PID]: is still
// split off. With strict, a timestamp is required.
func (p *Parser) parse3164(ev *event.Event, b []byte, i, pri int, src netip.Addr, recvNs int64, strict bool) bool {
	s := event.Syslog{Facility: uint8(pri >> 3), Severity: uint8(pri & 7)}
	t := recvNs
	var st stamp
	end, ok := parseStamp(b, i, &st)
	var host []byte
	if !ok {
		// Cisco IOS: "<189>123: *Mar  1 18:48:50.483 UTC: %SYS-5-…", with a
		// message counter, an optional service sequence number and an
		// optional origin hostname ("52: router1: Mar  1 …") before the
		// timestamp. The prefix is taken only when a timestamp or a
		// %FAC-SEV-MNEMONIC follows, so plain text starting "12: " stays.
		k, n := i, 0
		for n < 2 {
			d := k
			for d < len(b) && d-k < maxCiscoCounter && isDigit(b[d]) {
				d++
			}
			if d+1 >= len(b) || b[d] != ':' || b[d+1] != ' ' {
				break
			}
			k, n = skipSpaces(b, d+2), n+1
		}
		if n > 0 {
			if end, ok = parseStamp(b, k, &st); !ok {
				h := k
				for h < len(b) && b[h] != ' ' && b[h] != ':' {
					h++
				}
				if h+1 < len(b) && b[h] == ':' && b[h+1] == ' ' && isHost(b[k:h]) {
					if end, ok = parseStamp(b, skipSpaces(b, h+2), &st); ok {
						host = b[k:h]
					}
				}
				if !ok && k < len(b) && b[k] == '%' {
					i = k // no timestamp ("no service timestamps"): tag next
				}
			}
		}
	}
	if strict && !ok {
		return false
	}
	if ok {
		if !st.unsynced {
			if ns, ok := p.resolve(&st, src, recvNs); ok {
				t = ns
			}
		}
		i = end
		if host == nil {
			// The first word is the HOSTNAME unless it reads as a TAG:
			// senders that log to /dev/log style (and Cisco) omit it.
			if _, _, _, isTag := splitTag(b[i:]); !isTag {
				h := i
				for h < len(b) && b[h] != ' ' {
					h++
				}
				if isHost(b[i:h]) {
					host = b[i:h]
					i = skipSpaces(b, h)
					// Cisco ASA with a device-id: "asa1 : %ASA-6-…".
					if i < len(b) && b[i] == ':' && (i+1 == len(b) || b[i+1] == ' ') {
						i = skipSpaces(b, i+1)
					}
				}
			}
		}
	}
	s.Hostname = host
	rest := b[i:]
	if tag, pid, after, isTag := splitTag(rest); isTag {
		if tag[0] == '%' && len(tag) > 1 {
			tag = tag[1:] // Cisco %FAC-SEV-MNEMONIC
		}
		s.AppName, s.ProcID = tag, pid
		rest = after[skipSpaces(after, 0):]
	}
	if len(rest) > 0 {
		s.Message = rest
	}
	ev.Syslog = s
	ev.Time = t
	return true
}

// resolve places a parsed RFC 3164 stamp on the time line: its own offset
// or UTC abbreviation if it has one, else the sender's zone; a year-less
// stamp takes the year nearest the receive time.
func (p *Parser) resolve(st *stamp, src netip.Addr, recvNs int64) (int64, bool) {
	loc := p.loc
	if !st.hasOffset && !st.utc {
		loc = p.zone(src)
	}
	if st.yearless {
		return st.nearestYear(loc, recvNs)
	}
	return st.unixNano(loc)
}

func skipSpaces(b []byte, i int) int {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i
}

// isHost reports whether w can be an RFC 3164 HOSTNAME: 1 to 255 printable
// characters that do not make it look like payload (key=value, quotes,
// brackets) or a tag (a trailing ':').
func isHost(w []byte) bool {
	if len(w) == 0 || len(w) > maxHostname || w[len(w)-1] == ':' {
		return false
	}
	for _, c := range w {
		if c < 33 || c > 126 || c == '=' || c == '"' || c == '[' || c == ']' {
			return false
		}
	}
	return true
}

// splitTag finds an RFC 3164 TAG at the start of b: "TAG: ", "TAG[PID]: "
// or "TAG[PID] " (the colon after ']' is optional), or the same at the end
// of b. The tag is 1 to maxTag printable characters other than '[', ':',
// '=' and '"'; "word:more" (no space after the colon) is not a tag. after
// is what follows the colon (or ']').
func splitTag(b []byte) (tag, pid, after []byte, ok bool) {
	w := b[:min(len(b), maxTag+1)]
	i := 0
	for _, c := range w {
		if !tagChar[c] {
			break
		}
		i++
	}
	if i == 0 || i == len(w) {
		return nil, nil, nil, false // no tag character, too long, or no terminator
	}
	switch b[i] {
	case ':':
		if i+1 < len(b) && b[i+1] != ' ' {
			return nil, nil, nil, false
		}
		return b[:i], nil, b[i+1:], true
	case '[':
		j := i + 1
		for j < len(b) && j-i <= maxProcID && b[j] != ']' && printable[b[j]] {
			j++
		}
		if j >= len(b) || b[j] != ']' {
			return nil, nil, nil, false
		}
		k := j + 1
		if k < len(b) && b[k] == ':' {
			k++
		}
		if k < len(b) && b[k] != ' ' {
			return nil, nil, nil, false
		}
		if j > i+1 {
			pid = b[i+1 : j]
		}
		return b[:i], pid, b[k:], true
	}
	return nil, nil, nil, false
}

// tagChar: what an RFC 3164 TAG holds here: printable except the
// terminators '[' and ':', and '=', '"', ']' (payload, not a tag).
var tagChar [256]bool

func init() {
	for c := 33; c <= 126; c++ {
		tagChar[c] = c != '[' && c != ':' && c != '=' && c != '"' && c != ']'
	}
}

// parseStamp reads an RFC 3164-position timestamp at b[i:] into st and
// returns the index of what follows it (past an optional ':' and spaces).
// Accepted, each optionally preceded by Cisco's '*' (clock not set: the
// time is not used) or '.' (clock was set, lost sync):
//
//	Mmm dd hh:mm:ss[.frac]          day space- or zero-padded, or 1 digit
//	Mmm dd yyyy hh:mm:ss[.frac]     Cisco ASA and others
//	Mmm dd hh:mm:ss[.frac] [TZ] yyyy  date(1) style
//	yyyy Mmm dd hh:mm:ss[.frac]     Cisco NX-OS
//	yyyy-mm-dd(T| )hh:mm:ss[.frac][Z|±hh:mm|±hhmm|±hh]
//
// with an optional zone abbreviation after the time (see zoneAbbrev).
func parseStamp(b []byte, i int, st *stamp) (int, bool) {
	*st = stamp{}
	j := i
	if j < len(b) && (b[j] == '*' || b[j] == '.') {
		st.unsynced = b[j] == '*'
		j++
	}
	var ok bool
	if m := monthOf(b, j); m > 0 {
		st.month = m
		if j, ok = parseDay(b, j+3, st); !ok {
			return i, false
		}
		if y, ok := num4(b, j); ok && j+4 < len(b) && b[j+4] == ' ' {
			st.year, j = y, j+5
		} else {
			st.yearless = true
		}
		if j, ok = parseClock(b, j, st); !ok {
			return i, false
		}
	} else if y, ok4 := num4(b, j); ok4 && j+4 < len(b) {
		switch b[j+4] {
		case '-':
			if j, ok = parseISO(b, j, true, st); !ok {
				return i, false
			}
		case ' ':
			if st.month = monthOf(b, j+5); st.month == 0 {
				return i, false
			}
			st.year = y
			if j, ok = parseDay(b, j+8, st); !ok {
				return i, false
			}
			if j, ok = parseClock(b, j, st); !ok {
				return i, false
			}
		default:
			return i, false
		}
	} else {
		return i, false
	}
	if !st.hasOffset && j+1 < len(b) && b[j] == ' ' {
		e := j + 1
		for e < len(b) && e-j <= 5 && b[e] >= 'A' && b[e] <= 'Z' {
			e++
		}
		if e == len(b) || b[e] == ' ' || b[e] == ':' {
			if known, utc := zoneAbbrev(b[j+1 : e]); known {
				st.utc = utc
				j = e
			}
		}
	}
	// A year after the time (and zone), as date(1) prints it.
	if st.yearless && j < len(b) && b[j] == ' ' {
		if y, ok := num4(b, j+1); ok && (j+5 == len(b) || b[j+5] == ' ' || b[j+5] == ':') {
			st.year, st.yearless = y, false
			j += 5
		}
	}
	if j < len(b) && b[j] == ':' {
		j++
	}
	if j < len(b) && b[j] != ' ' {
		return i, false
	}
	if !st.yearless && !st.valid() {
		return i, false
	}
	return skipSpaces(b, j), true
}

// parseDay reads " dd " after a month name at b[i:]: a space, then a day
// of one or two digits (space-padded "  5" and zero-padded " 05" alike),
// then a space. It returns the index after that space.
func parseDay(b []byte, i int, st *stamp) (int, bool) {
	if i >= len(b) || b[i] != ' ' {
		return i, false
	}
	i++
	if i < len(b) && b[i] == ' ' {
		i++
	}
	d := 0
	j := i
	for j < len(b) && j-i < 2 && isDigit(b[j]) {
		d = d*10 + int(b[j]-'0')
		j++
	}
	if j == i || j >= len(b) || b[j] != ' ' || d < 1 || d > 31 {
		return i, false
	}
	st.day = d
	return j + 1, true
}

// zoneAbbrev recognizes the zone abbreviations devices print after the
// time ("UTC", "CET", ...), so they are not mistaken for a hostname.
// Abbreviations are ambiguous (CST, IST, BST each name several zones), so
// only UTC and its synonyms are honoured; for any other the sender's
// configured zone (Options.Zones, Options.Location) applies.
func zoneAbbrev(w []byte) (known, utc bool) {
	switch string(w) {
	case "UTC", "GMT", "UT", "Z":
		return true, true
	case "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "AKST", "AKDT", "HST",
		"AST", "ADT", "NST", "NDT", "WET", "WEST", "CET", "CEST", "EET", "EEST", "MSK",
		"BST", "IST", "JST", "KST", "HKT", "SGT", "AEST", "AEDT", "ACST", "ACDT", "AWST",
		"NZST", "NZDT", "SAST", "BRT", "ART":
		return true, false
	}
	return false, false
}
