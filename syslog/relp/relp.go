// Package relp reads and writes the frames of RELP, the Reliable Event
// Logging Protocol of rsyslog (librelp): the wire format only, no I/O and no
// session state. Package collector drives it per connection.
//
// A frame is
//
//	TXNR SP COMMAND SP DATALEN [SP DATA] TRAILER
//
// where TXNR is a transaction number of 1 to 9 digits, COMMAND 1 to 32
// letters, DATALEN the number of DATA octets (1 to 9 digits), DATA present
// (with its leading SP) only when DATALEN is not 0, and TRAILER a single LF.
// A client numbers its frames 1, 2, 3, ... (after 999999999 comes 1 again);
// the server answers each with an "rsp" frame carrying the same TXNR, whose
// DATA is a three-digit code, SP, a human-readable text, and optionally LF
// and more data. TXNR 0 is used by the server for hints such as
// "serverclose", which are not answered.
//
// Everything here works on caller-owned byte slices and allocates nothing.
package relp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Limits of the frame grammar (librelp enforces the same).
const (
	// MaxTxnr is the largest transaction number; the next one is 1.
	MaxTxnr = 999_999_999
	// MaxCommand is the longest command name.
	MaxCommand = 32
	// MaxDataLen is the largest DATALEN that fits its 9 digits.
	MaxDataLen = 999_999_999
	// MaxHeader is the longest header: TXNR SP COMMAND SP DATALEN SP.
	MaxHeader = 9 + 1 + MaxCommand + 1 + 9 + 1
)

// Errors returned by [ParseHeader] and [Parse]. The returned errors wrap
// one of these with the offending bytes quoted.
var (
	// ErrMalformed means the bytes are not a RELP frame; a server closes
	// the connection, since nothing after it can be framed.
	ErrMalformed = errors.New("malformed RELP frame")
	// ErrTooLarge means DATALEN is larger than the caller's limit (from
	// [Parse]); the header itself is valid.
	ErrTooLarge = errors.New("RELP frame data too large")
)

// Header is a frame's header. Command aliases the parsed buffer.
type Header struct {
	Txnr    uint32
	Command []byte
	DataLen int
}

// Frame is a whole frame. Command and Data alias the parsed buffer.
type Frame struct {
	Txnr    uint32
	Command []byte
	Data    []byte
}

// ParseHeader reads the header at the start of b.
//
// When b holds a whole header it returns it and n, the number of header
// bytes: DATA (h.DataLen bytes) starts at b[n], followed by the trailer LF.
// When DataLen is 0 there is no DATA and b[n] is the trailer. When b is a
// valid but incomplete beginning of a header, n is 0 and err nil: read more.
// Anything else is an error wrapping [ErrMalformed], reported as soon as the
// first invalid byte is seen, so garbage is rejected without waiting for
// more of it.
func ParseHeader(b []byte) (h Header, n int, err error) {
	i := 0
	// TXNR
	for i < len(b) && isDigit(b[i]) {
		if i == 9 {
			return h, 0, malformed("transaction number longer than 9 digits", b)
		}
		h.Txnr = h.Txnr*10 + uint32(b[i]-'0')
		i++
	}
	if i == len(b) {
		return Header{}, 0, nil
	}
	if i == 0 || b[i] != ' ' {
		return Header{}, 0, malformed("expected a transaction number", b)
	}
	i++
	// COMMAND
	cs := i
	for i < len(b) && isAlpha(b[i]) {
		if i-cs == MaxCommand {
			return Header{}, 0, malformed("command longer than 32 letters", b)
		}
		i++
	}
	if i == len(b) {
		return Header{}, 0, nil
	}
	if i == cs || b[i] != ' ' {
		return Header{}, 0, malformed("expected a command", b)
	}
	h.Command = b[cs:i]
	i++
	// DATALEN
	ds := i
	for i < len(b) && isDigit(b[i]) {
		if i-ds == 9 {
			return Header{}, 0, malformed("data length longer than 9 digits", b)
		}
		h.DataLen = h.DataLen*10 + int(b[i]-'0')
		i++
	}
	if i == len(b) {
		return Header{}, 0, nil
	}
	if i == ds {
		return Header{}, 0, malformed("expected a data length", b)
	}
	if h.DataLen == 0 {
		// No DATA, and no SP before the trailer.
		if b[i] != '\n' {
			return Header{}, 0, malformed("expected the trailer after data length 0", b)
		}
		return h, i, nil
	}
	if b[i] != ' ' {
		return Header{}, 0, malformed("expected a space before the data", b)
	}
	return h, i + 1, nil
}

// Parse reads one whole frame at the start of b. It returns the frame and
// n, the number of bytes it took, trailer included. n is 0 with a nil error
// when b holds only the beginning of a valid frame. A DATALEN above maxData
// is an error wrapping [ErrTooLarge] (checked as soon as the header is
// complete); anything that is not a frame is an error wrapping
// [ErrMalformed].
func Parse(b []byte, maxData int) (f Frame, n int, err error) {
	h, hn, err := ParseHeader(b)
	if err != nil || hn == 0 {
		return Frame{}, 0, err
	}
	if h.DataLen > maxData {
		return Frame{}, 0, fmt.Errorf("frame %d %q announces %d bytes, more than %d: %w", h.Txnr, h.Command, h.DataLen, maxData, ErrTooLarge)
	}
	end := hn + h.DataLen
	if end >= len(b) {
		return Frame{}, 0, nil
	}
	if b[end] != '\n' {
		return Frame{}, 0, malformed("data not followed by the trailer", b)
	}
	return Frame{Txnr: h.Txnr, Command: h.Command, Data: b[hn:end]}, end + 1, nil
}

// NextTxnr returns the transaction number that follows t.
func NextTxnr(t uint32) uint32 {
	if t >= MaxTxnr {
		return 1
	}
	return t + 1
}

// AppendFrame appends the frame "txnr command len(data) [data]\n" to dst.
// command must be 1 to 32 letters and txnr at most MaxTxnr; the caller
// guarantees both.
func AppendFrame(dst []byte, txnr uint32, command string, data []byte) []byte {
	dst = strconv.AppendUint(dst, uint64(txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, command...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(len(data)), 10)
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, data...)
	}
	return append(dst, '\n')
}

// AppendResponse appends the "rsp" frame answering txnr: DATA is the
// three-digit code, SP, text, and, when extra is not empty, LF and extra.
func AppendResponse(dst []byte, txnr uint32, code int, text string, extra []byte) []byte {
	n := 3 + 1 + len(text)
	if len(extra) > 0 {
		n += 1 + len(extra)
	}
	dst = strconv.AppendUint(dst, uint64(txnr), 10)
	dst = append(dst, " rsp "...)
	dst = strconv.AppendUint(dst, uint64(n), 10)
	dst = append(dst, ' ', byte('0'+code/100%10), byte('0'+code/10%10), byte('0'+code%10), ' ')
	dst = append(dst, text...)
	if len(extra) > 0 {
		dst = append(dst, '\n')
		dst = append(dst, extra...)
	}
	return append(dst, '\n')
}

// ParseResponse splits the DATA of an "rsp" frame into its code, its text
// (up to the first LF) and the data after that LF.
func ParseResponse(data []byte) (code int, text, rest []byte, err error) {
	if len(data) < 3 || !isDigit(data[0]) || !isDigit(data[1]) || !isDigit(data[2]) {
		return 0, nil, nil, malformed("response without a three-digit code", data)
	}
	code = int(data[0]-'0')*100 + int(data[1]-'0')*10 + int(data[2]-'0')
	if len(data) == 3 {
		return code, nil, nil, nil
	}
	if data[3] != ' ' {
		return 0, nil, nil, malformed("response code not followed by a space", data)
	}
	text, rest = cut(data[4:], '\n')
	return code, text, rest, nil
}

// Offer returns the value of the offer called name in the DATA of an "open"
// command or its response: LF-separated "name=value" lines (a value may be
// a comma-separated list, as in "commands=syslog"). ok is false when the
// offer is absent; an offer without '=' has an empty value.
func Offer(data []byte, name string) (value []byte, ok bool) {
	for len(data) > 0 {
		var line []byte
		line, data = cut(data, '\n')
		if len(line) < len(name) || string(line[:len(name)]) != name {
			continue
		}
		if len(line) == len(name) {
			return line[len(name):], true
		}
		if line[len(name)] == '=' {
			return line[len(name)+1:], true
		}
	}
	return nil, false
}

// HasValue reports whether a comma-separated offer value lists v.
func HasValue(list []byte, v string) bool {
	for len(list) > 0 {
		var item []byte
		item, list = cut(list, ',')
		if string(item) == v {
			return true
		}
	}
	return false
}

// cut splits b at the first sep; rest is empty when there is none.
func cut(b []byte, sep byte) (before, rest []byte) {
	if i := bytes.IndexByte(b, sep); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

func isDigit(c byte) bool { return c-'0' <= 9 }

func isAlpha(c byte) bool { return (c|0x20)-'a' < 26 }

// malformed wraps ErrMalformed with the first bytes of b, quoted.
func malformed(what string, b []byte) error {
	const show = 40
	if len(b) > show {
		b = b[:show]
	}
	return fmt.Errorf("cannot parse RELP frame from %q: %s: %w", b, what, ErrMalformed)
}
