package syslog

import "github.com/trawlsec/trawl/event"

// RFC 5424 section 6 header field limits.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
	maxSDName   = 32 // SD-ID and PARAM-NAME
)

// bom is the UTF-8 byte order mark that may open an RFC 5424 MSG.
const bom = "\xef\xbb\xbf"

// parse5424 parses the rest of an RFC 5424 message, b[i:] being what follows
// "<PRI>1 ". It fills ev only when the whole message is valid, so that a
// failure leaves nothing half-set for the fallback.
func parse5424(ev *event.Event, b []byte, i, pri int, recvNs int64) bool {
	s := event.Syslog{Facility: uint8(pri >> 3), Severity: uint8(pri & 7), Version: 1}
	t := recvNs
	if i >= len(b) {
		return false
	}
	if b[i] == '-' {
		i++
	} else {
		var st stamp
		j, ok := parseISO(b, i, false, &st)
		if !ok {
			return false
		}
		if ns, ok := st.unixNano(nil); ok {
			t = ns
		}
		i = j
	}
	if i >= len(b) || b[i] != ' ' {
		return false
	}
	var ok bool
	if s.Hostname, i, ok = field(b, i+1, maxHostname); !ok {
		return false
	}
	if s.AppName, i, ok = field(b, i, maxAppName); !ok {
		return false
	}
	if s.ProcID, i, ok = field(b, i, maxProcID); !ok {
		return false
	}
	if s.MsgID, i, ok = field(b, i, maxMsgID); !ok {
		return false
	}
	// STRUCTURED-DATA is kept as received, escapes included; it is only
	// checked here (WalkStructuredData reads it).
	if i >= len(b) {
		return false
	}
	if b[i] == '-' {
		i++
	} else {
		j, ok := scanSD(b, i, nil)
		if !ok {
			return false
		}
		s.StructuredData = b[i:j]
		i = j
	}
	if i < len(b) {
		if b[i] != ' ' {
			return false
		}
		m := b[i+1:]
		if len(m) >= len(bom) && string(m[:len(bom)]) == bom {
			m = m[len(bom):]
		}
		if len(m) > 0 {
			s.Message = m
		}
	}
	ev.Syslog = s
	ev.Time = t
	return true
}

// Byte classes, as tables so that the scanning loops take one branch per
// byte.
var (
	// printable: PRINTUSASCII (%d33-126), what RFC 5424 header fields hold.
	printable [256]bool
	// sdNameChar: what an SD-ID or PARAM-NAME holds: printable except
	// '=', ']' and '"' (space is not printable).
	sdNameChar [256]bool
	// sdValueStop: the bytes a PARAM-VALUE scan must look at.
	sdValueStop [256]bool
)

func init() {
	for c := 33; c <= 126; c++ {
		printable[c] = true
		sdNameChar[c] = c != '=' && c != ']' && c != '"'
	}
	sdValueStop['"'] = true
	sdValueStop['\\'] = true
}

// field reads a header field of 1 to max printable US-ASCII characters at
// b[i:], which must be followed by a space. A NILVALUE ("-") gives nil. It
// returns the index after the space.
func field(b []byte, i, max int) ([]byte, int, bool) {
	if i >= len(b) {
		return nil, i, false
	}
	w := b[i:min(len(b), i+max+1)]
	n := 0
	for _, c := range w {
		if !printable[c] {
			break
		}
		n++
	}
	j := i + n
	if n == 0 || n > max || j >= len(b) || b[j] != ' ' {
		return nil, i, false
	}
	if n == 1 && b[i] == '-' {
		return nil, j + 1, true
	}
	return b[i:j], j + 1, true
}

// sdName reads an SD-NAME at b[i:] and returns the index after it.
func sdName(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	w := b[i:min(len(b), i+maxSDName+1)]
	n := 0
	for _, c := range w {
		if !sdNameChar[c] {
			break
		}
		n++
	}
	return i + n, n > 0 && n <= maxSDName
}

// scanSD reads one or more SD-ELEMENTs at b[i:] (b[i] is '[') and returns
// the index after the last one. When fn is not nil it is called for each
// SD-PARAM (see WalkStructuredData).
//
// A PARAM-VALUE ends at the first '"' not escaped by a backslash. RFC 5424
// also requires ']' to be escaped inside a value; an unescaped one is
// accepted, since the quotes already delimit the value and senders differ.
func scanSD(b []byte, i int, fn func(id, name, value []byte)) (int, bool) {
	for i < len(b) && b[i] == '[' {
		j, ok := sdName(b, i+1)
		if !ok {
			return i, false
		}
		id := b[i+1 : j]
		params := 0
		for j < len(b) && b[j] == ' ' {
			k, ok := sdName(b, j+1)
			if !ok || k+1 >= len(b) || b[k] != '=' || b[k+1] != '"' {
				return i, false
			}
			name := b[j+1 : k]
			k += 2
			v := k
			k = valueEnd(b, k)
			if k >= len(b) {
				return i, false
			}
			if fn != nil {
				fn(id, name, b[v:k])
			}
			params++
			j = k + 1
		}
		if j >= len(b) || b[j] != ']' {
			return i, false
		}
		if params == 0 && fn != nil {
			fn(id, nil, nil)
		}
		i = j + 1
	}
	return i, true
}

// valueEnd returns the index of the '"' that closes the PARAM-VALUE
// starting at b[k:], or len(b). A backslash escapes the byte after it.
func valueEnd(b []byte, k int) int {
	for k < len(b) {
		w := b[k:]
		n := 0
		for _, c := range w {
			if sdValueStop[c] {
				break
			}
			n++
		}
		k += n
		if k >= len(b) || b[k] == '"' {
			return k
		}
		k += 2 // backslash and the byte it escapes
	}
	return len(b)
}
