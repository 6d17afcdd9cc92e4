package audit

import (
	"bytes"
	"errors"
	"fmt"
)

// Record types the package interprets (linux/audit.h). The kernel sends the
// type in the netlink header, not in the text.
const (
	TypeLogin        uint16 = 1006 // AUDIT_LOGIN
	TypeFirstUser    uint16 = 1100 // AUDIT_FIRST_USER_MSG
	TypeLastUser     uint16 = 1199 // AUDIT_LAST_USER_MSG
	TypeUserAuth     uint16 = 1100
	TypeUserAcct     uint16 = 1101
	TypeUserLogin    uint16 = 1112
	TypeUserCmd      uint16 = 1123
	TypeSyscall      uint16 = 1300
	TypePath         uint16 = 1302
	TypeConfigChange uint16 = 1305
	TypeSockaddr     uint16 = 1306
	TypeCwd          uint16 = 1307
	TypeExecve       uint16 = 1309
	TypeEOE          uint16 = 1320 // end of a multi-record event
	TypeProctitle    uint16 = 1327
	TypeKernModule   uint16 = 1330
	TypeFirstUser2   uint16 = 2100 // AUDIT_FIRST_USER_MSG2
	TypeLastUser2    uint16 = 2999 // AUDIT_LAST_USER_MSG2
)

// Records outside [TypeFirstEvent, TypeLastEvent] are control messages
// (replies to AUDIT_GET, AUDIT_LIST_RULES, AUDIT_REPLACE pings), not
// events.
const (
	TypeFirstEvent uint16 = 1100
	TypeLastEvent  uint16 = 2999
)

// isStandalone reports whether records of type t are whole events. User
// space messages (pam, sshd, systemd through AUDIT_USER_*) are logged by
// the kernel without a syscall context: each has its own serial and no EOE
// follows, so waiting for one would only add the reassembly timeout.
func isStandalone(t uint16) bool {
	return (t >= TypeFirstUser && t <= 1299) || (t >= TypeFirstUser2 && t <= TypeLastUser2)
}

// ErrMalformed is wrapped by the errors of [ParseHeader]: the text does not
// start with "audit(<seconds>.<milliseconds>:<serial>):".
var ErrMalformed = errors.New("malformed audit record")

// Record is one audit record as the kernel sends it over netlink.
type Record struct {
	Type   uint16
	Time   int64  // unix nanoseconds (the kernel gives milliseconds)
	Serial uint64 // the audit serial number; records of one event share it
	Body   []byte // the fields after "): ", aliasing the parsed text
}

// ParseHeader parses the "audit(1700000000.123:456): " prefix of a record's
// text as read from netlink. Body aliases text. It does not allocate.
func ParseHeader(typ uint16, text []byte) (Record, error) {
	rec, _, _, err := parseHeader(typ, text)
	return rec, err
}

// parseHeader is ParseHeader that also returns where Body starts and ends
// in text.
func parseHeader(typ uint16, text []byte) (rec Record, bodyStart, bodyEnd int, err error) {
	const prefix = "audit("
	if !bytes.HasPrefix(text, []byte(prefix)) {
		return Record{}, 0, 0, headerError(text)
	}
	i := len(prefix)
	sec, i, ok := parseUintAt(text, i)
	if !ok || i >= len(text) || text[i] != '.' {
		return Record{}, 0, 0, headerError(text)
	}
	start := i + 1
	ms, i, ok := parseUintAt(text, start)
	if !ok || i-start != 3 || i >= len(text) || text[i] != ':' {
		return Record{}, 0, 0, headerError(text)
	}
	serial, i, ok := parseUintAt(text, i+1)
	if !ok || i+1 >= len(text) || text[i] != ')' || text[i+1] != ':' {
		return Record{}, 0, 0, headerError(text)
	}
	if sec > 1<<33 { // year 2242: beyond it sec*1e9 overflows int64
		return Record{}, 0, 0, headerError(text)
	}
	bodyStart = i + 2
	if bodyStart < len(text) && text[bodyStart] == ' ' {
		bodyStart++
	}
	bodyEnd = bodyStart + len(trimRecord(text[bodyStart:]))
	return Record{
		Type:   typ,
		Time:   int64(sec)*1e9 + int64(ms)*1e6,
		Serial: serial,
		Body:   text[bodyStart:bodyEnd],
	}, bodyStart, bodyEnd, nil
}

// headerError is kept out of line: the fast path of ParseHeader must not
// pay for the fmt call's spill of text to the heap.
func headerError(text []byte) error {
	return fmt.Errorf("cannot parse audit header from %q: %w", text[:min(len(text), 48)], ErrMalformed)
}

// SerialOf returns the serial number in a record's header without parsing
// the rest; ok is false when the header is malformed. The netlink reader
// uses it to count sequence gaps before records are queued.
func SerialOf(text []byte) (serial uint64, ok bool) {
	i := bytes.IndexByte(text[:min(len(text), 40)], ':')
	if i < 0 {
		return 0, false
	}
	serial, _, ok = parseUintAt(text, i+1)
	return serial, ok
}

// trimRecord drops the NUL bytes and line ends some kernels leave after
// the text.
func trimRecord(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case 0, '\n', ' ':
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}

// parseUintAt parses the decimal digits at b[i:]; ok is false when there
// are none or they overflow 64 bits.
func parseUintAt(b []byte, i int) (v uint64, end int, ok bool) {
	start := i
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		if v > (1<<64-1-uint64(c))/10 {
			return 0, i, false
		}
		v = v*10 + uint64(c)
	}
	return v, i, i > start
}

// ParseUint parses a decimal number; ok is false for an empty, non-numeric
// or overflowing value.
func ParseUint(b []byte) (uint64, bool) {
	v, end, ok := parseUintAt(b, 0)
	return v, ok && end == len(b)
}

// ParseHexUint parses a hexadecimal number without prefix, as the kernel
// writes arch= and a0..a3=.
func ParseHexUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		d, ok := unhex(c)
		if !ok {
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// Field quoting, as the kernel writes values (audit_log_untrustedstring).
const (
	// Plain values are numbers or words the kernel trusts (pid=1,
	// success=yes, nametype=NORMAL).
	Plain = iota
	// Quoted values were written between double quotes because they hold
	// no space, quote or control byte; Value holds the text between them.
	Quoted
	// Nested values are the single-quoted msg='...' of records sent by user
	// space, which hold fields of their own; Value holds the inner text.
	Nested
)

// Field is one key=value pair of a record's body.
type Field struct {
	Key   []byte
	Value []byte
	Quote int // Plain, Quoted or Nested
}

// Fields iterates over the key=value pairs of a record's body. The zero
// value iterates over nothing; use [NewFields].
type Fields struct {
	b []byte
	i int
}

// NewFields returns an iterator over body.
func NewFields(body []byte) Fields { return Fields{b: body} }

// Next stores the next field in f and reports whether there was one.
// Words without '=' (the free text of AVC records) are skipped; a value
// whose closing quote is missing runs to the end of the body. f's slices
// alias the body.
func (it *Fields) Next(f *Field) bool {
	b := it.b
	i := it.i
	for {
		for i < len(b) && (b[i] == ' ' || b[i] == '\x1d') {
			i++
		}
		if i >= len(b) {
			it.i = i
			return false
		}
		k := i
		for i < len(b) && b[i] != '=' && b[i] != ' ' {
			i++
		}
		if i >= len(b) || b[i] != '=' {
			continue // a bare word
		}
		f.Key = b[k:i]
		i++
		switch {
		case i < len(b) && b[i] == '"':
			e := bytes.IndexByte(b[i+1:], '"')
			if e < 0 {
				f.Value, f.Quote, i = b[i+1:], Quoted, len(b)
			} else {
				f.Value, f.Quote, i = b[i+1:i+1+e], Quoted, i+2+e
			}
		case i < len(b) && b[i] == '\'':
			e := bytes.IndexByte(b[i+1:], '\'')
			if e < 0 {
				f.Value, f.Quote, i = b[i+1:], Nested, len(b)
			} else {
				f.Value, f.Quote, i = b[i+1:i+1+e], Nested, i+2+e
			}
		default:
			v := i
			if e := bytes.IndexByte(b[i:], ' '); e >= 0 {
				i += e
			} else {
				i = len(b)
			}
			f.Value, f.Quote = b[v:i], Plain
		}
		it.i = i
		return true
	}
}

// AppendUntrusted appends the text of a value the kernel writes with
// audit_log_untrustedstring (comm, exe, name, cwd, key, proctitle, execve
// arguments): a quoted value as it is, an unquoted one hex-decoded. ok is
// false for "(null)", "?" and bad hex; dst is then returned unchanged.
func AppendUntrusted(dst []byte, f *Field) ([]byte, bool) {
	if f.Quote == Quoted {
		return append(dst, f.Value...), true
	}
	return AppendHex(dst, f.Value)
}

// AppendHex appends the bytes that the hexadecimal text h encodes (either
// case). ok is false, and dst returned unchanged, when h is not hex.
func AppendHex(dst, h []byte) ([]byte, bool) {
	if len(h) == 0 || len(h)%2 != 0 {
		return dst, false
	}
	n := len(dst)
	dst = growLen(dst, len(h)/2)
	out := dst[n:]
	h = h[:len(out)*2] // lets the compiler drop bounds checks
	bad := byte(0)
	for i := range out {
		a, b := hexTable[h[2*i]], hexTable[h[2*i+1]]
		bad |= a | b
		out[i] = a<<4 | b&0x0f
	}
	if bad&0x80 != 0 {
		return dst[:n], false
	}
	return dst, true
}

// hexTable maps a hex digit to its value and every other byte to 0xff.
var hexTable = func() (t [256]byte) {
	for i := range t {
		v, ok := unhex(byte(i))
		if !ok {
			v = 0xff
		}
		t[i] = v
	}
	return t
}()

// growLen extends b by n bytes, reallocating only when cap is short.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	return append(b, make([]byte, n)...)
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
