package syslog

import (
	"net/netip"
	"time"

	"github.com/trawlsec/trawl/event"
)

// Options configure parsing; the zero value is usable.
type Options struct {
	// Location is the default time zone for RFC 3164 timestamps that carry
	// none (nil = UTC).
	Location *time.Location
	// Zones maps a source IP to the zone its RFC 3164 timestamps are in;
	// it takes precedence over Location. IPv4-mapped IPv6 addresses are
	// unmapped, both in the keys and in the addresses Parse is given, so
	// 10.0.0.1 matches a sender seen on a dual-stack socket. A nil zone is
	// UTC. NewParser copies the map: changing it later has no effect.
	Zones map[netip.Addr]*time.Location
}

// Parser parses syslog messages (RFC 5424, and RFC 3164 as devices send
// it) into events. It is immutable after NewParser and safe for concurrent
// use by any number of goroutines.
type Parser struct {
	loc   *time.Location
	zones map[netip.Addr]*time.Location // unmapped keys; nil when empty
}

// NewParser returns a Parser configured by o.
func NewParser(o Options) *Parser {
	p := &Parser{loc: o.Location}
	if p.loc == nil {
		p.loc = time.UTC
	}
	if len(o.Zones) > 0 {
		p.zones = make(map[netip.Addr]*time.Location, len(o.Zones))
		for a, l := range o.Zones {
			if l == nil {
				l = time.UTC
			}
			p.zones[a.Unmap()] = l
		}
	}
	return p
}

// zone returns the zone for timestamps without an offset from src.
func (p *Parser) zone(src netip.Addr) *time.Location {
	if p.zones != nil {
		if l, ok := p.zones[src.Unmap()]; ok {
			return l
		}
	}
	return p.loc
}

// PRI values: priNone when the message has no "<", priBad when "<" does
// not open a valid PRI ("<1234>", "<>", "<192>", "<12").
const (
	priNone = -1
	priBad  = -2
	// priDefault is user.notice, which RFC 3164 section 4.3.3 tells a
	// relay to assume for a message without a PRI.
	priDefault = 13
)

// parsePRI reads "<PRIVAL>" (1 to 3 digits, 0 to 191) at the start of b and
// returns its value and the index after '>'.
func parsePRI(b []byte) (pri, next int) {
	if len(b) == 0 || b[0] != '<' {
		return priNone, 0
	}
	v, i := 0, 1
	for i < len(b) && i <= 3 && isDigit(b[i]) {
		v = v*10 + int(b[i]-'0')
		i++
	}
	if i == 1 || i >= len(b) || b[i] != '>' || v > 191 {
		return priBad, 0
	}
	return v, i + 1
}

// trimTrailer drops the line terminators (LF, CR, NUL) a sender or a
// framing left at the end of a message: they are never content.
func trimTrailer(b []byte) []byte {
	n := len(b)
	for n > 0 && (b[n-1] == '\n' || b[n-1] == '\r' || b[n-1] == 0) {
		n--
	}
	return b[:n]
}

// Parse fills ev from one message: ev.Kind (event.KindSyslog), ev.Time,
// every ev.Syslog field, and the event.FlagParseError bit of ev.Flags
// (other flags, such as event.FlagTruncated set by the input, are kept).
// It does not touch ev.RecvTime, ev.Source or ev.Seq.
//
// msg is one message, already de-framed (no octet count); trailing LF, CR
// and NUL bytes are ignored. The []byte fields of ev.Syslog alias msg, so
// ev is valid only as long as msg is. recvNs is the receive time (unix ns):
// it gives year-less RFC 3164 timestamps their year and is ev.Time when the
// message has no usable time. src is the sender's address, used to pick its
// zone from Options.Zones.
//
// A message starting with "<PRI>1 " is parsed as RFC 5424; anything else,
// or an RFC 5424 message that breaks its grammar, as RFC 3164 (see the
// package documentation for what is accepted). Parse never fails: a message
// that parses as neither is kept whole in ev.Syslog.Raw and
// ev.Syslog.Message with event.FlagParseError set (facility and severity
// from its PRI when that was valid), ev.Time is recvNs, and Parse returns
// false. It returns true when the message was parsed. Parse does not
// allocate.
func (p *Parser) Parse(ev *event.Event, msg []byte, src netip.Addr, recvNs int64) bool {
	ev.Kind = event.KindSyslog
	ev.Flags &^= event.FlagParseError
	b := trimTrailer(msg)
	pri, i := parsePRI(b)
	if pri >= 0 && i+1 < len(b) && b[i] == '1' && b[i+1] == ' ' {
		if parse5424(ev, b, i+2, pri, recvNs) {
			return true
		}
		// A message that starts like RFC 5424 but breaks its grammar gets
		// one more chance as RFC 3164, but only if an RFC 3164 timestamp is
		// found: otherwise the "1 2024-…" header would be silently
		// reinterpreted as free text instead of being flagged.
		if p.parse3164(ev, b, i, pri, src, recvNs, true) {
			return true
		}
		return fail(ev, b, pri, recvNs)
	}
	if len(b) == 0 || pri == priBad {
		return fail(ev, b, pri, recvNs)
	}
	if pri == priNone {
		pri = priDefault
	}
	return p.parse3164(ev, b, i, pri, src, recvNs, false)
}

// fail keeps b whole as the message of a parse error.
func fail(ev *event.Event, b []byte, pri int, recvNs int64) bool {
	ev.Syslog = event.Syslog{Raw: b, Message: b}
	if pri >= 0 {
		ev.Syslog.Facility, ev.Syslog.Severity = uint8(pri>>3), uint8(pri&7)
	}
	ev.Time = recvNs
	ev.Flags |= event.FlagParseError
	return false
}
