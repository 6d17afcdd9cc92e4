package syslog

import (
	"bytes"
	"errors"
	"fmt"
)

// Framing is how messages are delimited on a syslog TCP or TLS stream
// (RFC 6587).
type Framing uint8

// Framings, detected per connection by [Splitter.Split].
const (
	// FramingUnknown: nothing but line terminators has been seen yet.
	FramingUnknown Framing = iota
	// FramingOctetCounted: "MSG-LEN SP SYSLOG-MSG" (RFC 6587 section
	// 3.4.1, RFC 5425).
	FramingOctetCounted
	// FramingNonTransparent: each message ends with LF; NUL and CRLF are
	// accepted too (RFC 6587 section 3.4.2).
	FramingNonTransparent
)

// String returns the framing's name, as used in logs.
func (f Framing) String() string {
	switch f {
	case FramingOctetCounted:
		return "octet-counted"
	case FramingNonTransparent:
		return "non-transparent"
	}
	return "unknown"
}

// DefaultMaxMessage is the message size limit of a Splitter whose
// MaxMessage is 0 (syslog-ng's default; rsyslog's is 8 KiB).
const DefaultMaxMessage = 64 << 10

// maxCountDigits bounds MSG-LEN: a count of ten or more digits (1 GB and
// up) is garbage, not a message to skip.
const maxCountDigits = 9

// headerRoom is what a buffer needs beside MaxMessage: an octet count of
// maxCountDigits and its space, or a CRLF trailer.
const headerRoom = maxCountDigits + 1

// ErrFraming is wrapped by the errors [Splitter.Split] returns for a stream
// that cannot be framed; the connection should be closed.
var ErrFraming = errors.New("bad syslog framing")

// Splitter cuts a syslog TCP/TLS byte stream into messages (RFC 6587),
// incrementally and without allocating. Use one per connection; it is not
// safe for concurrent use. The zero value (with MaxMessage 0 meaning
// DefaultMaxMessage) is ready to use; set MaxMessage before the first
// Split.
//
// The framing is detected from the first bytes of the connection: a MSG-LEN
// (1 to 9 digits, no leading zero) followed by a space means octet
// counting, anything else (normally '<') non-transparent framing. It then
// stays fixed for the connection.
//
// A connection loop with a fixed read buffer of at least
// [Splitter.BufferSize] bytes drives it like a bufio.SplitFunc:
//
//	buf := make([]byte, 4*sp.BufferSize())
//	start, end := 0, 0
//	for {
//		n, rerr := conn.Read(buf[end:])
//		end += n
//		for {
//			adv, msg, truncated, err := sp.Split(buf[start:end], rerr != nil)
//			if err != nil {
//				return err // close the connection
//			}
//			start += adv
//			if msg != nil {
//				handle(msg, truncated) // msg aliases buf: use it before the next Read
//			}
//			if adv == 0 {
//				break // need more bytes
//			}
//		}
//		if rerr != nil {
//			return rerr
//		}
//		end = copy(buf, buf[start:end]) // keep the partial message
//		start = 0
//	}
type Splitter struct {
	// MaxMessage is the largest message Split returns whole; a longer one
	// is returned cut to its first MaxMessage bytes with truncated set, and
	// the rest of it is skipped, even across later calls. 0 means
	// DefaultMaxMessage.
	MaxMessage int

	framing  Framing
	skip     int  // octets of an oversized counted message still to discard
	skipLine bool // discarding the rest of an oversized line up to its trailer
}

// Framing returns the framing detected so far.
func (s *Splitter) Framing() Framing { return s.framing }

// Reset makes s ready for a new connection; MaxMessage is kept.
func (s *Splitter) Reset() { *s = Splitter{MaxMessage: s.MaxMessage} }

// BufferSize is the smallest read buffer that lets Split always make
// progress: MaxMessage plus room for an octet count or a CRLF.
func (s *Splitter) BufferSize() int { return s.max() + headerRoom }

func (s *Splitter) max() int {
	if s.MaxMessage > 0 {
		return s.MaxMessage
	}
	return DefaultMaxMessage
}

// Split returns the next complete message in buf and the number of bytes
// of buf it consumed, in the manner of bufio.SplitFunc:
//
//   - advance > 0, msg != nil: a message; it aliases buf.
//   - advance > 0, msg == nil: bytes consumed without a message (line
//     terminators between messages, the skipped rest of an oversized
//     message); call again.
//   - advance == 0: buf holds no complete message; read more and call again
//     with the unconsumed bytes first. At atEOF, the stream is done.
//
// truncated is true when the message was cut: it was longer than
// MaxMessage (msg holds its first MaxMessage bytes and the rest is skipped),
// or the stream ended inside it (atEOF with an octet-counted message
// incomplete). Messages never include their framing: no count, no LF, no
// trailing CR. Empty lines are skipped.
//
// err (wrapping ErrFraming) means the stream cannot be framed: an
// octet-counted stream where a MSG-LEN was expected but non-digits, a zero
// or a count of ten or more digits came. The caller should close the
// connection.
//
// As long as buf can grow to BufferSize bytes, Split makes progress: a
// message that does not fit is returned truncated, never waited for.
func (s *Splitter) Split(buf []byte, atEOF bool) (advance int, msg []byte, truncated bool, err error) {
	if s.skip > 0 {
		n := min(s.skip, len(buf))
		s.skip -= n
		return n, nil, false, nil
	}
	if s.skipLine {
		if k := trailer(buf); k >= 0 {
			s.skipLine = false
			return k + 1, nil, false, nil
		}
		return len(buf), nil, false, nil
	}
	// Line terminators between messages are dropped: senders add LF after
	// octet-counted frames, and CRLF leaves a CR or LF behind.
	i := 0
	for i < len(buf) && (buf[i] == '\n' || buf[i] == '\r' || buf[i] == 0) {
		i++
	}
	if i == len(buf) {
		return i, nil, false, nil
	}
	if s.framing == FramingUnknown {
		f, decided := detect(buf[i:], atEOF)
		if !decided {
			return i, nil, false, nil
		}
		s.framing = f
	}
	if s.framing == FramingOctetCounted {
		return s.splitCounted(buf, i, atEOF)
	}
	return s.splitLine(buf, i, atEOF)
}

// detect decides the framing from the first bytes of a connection: digits
// then a space is an octet count; anything else, including digits followed
// by something else (a message without PRI that starts with a date), is a
// non-transparent stream.
func detect(b []byte, atEOF bool) (Framing, bool) {
	if !isDigit(b[0]) || b[0] == '0' {
		return FramingNonTransparent, true
	}
	for j := 1; j <= maxCountDigits; j++ {
		if j == len(b) {
			return FramingNonTransparent, atEOF
		}
		if b[j] == ' ' {
			return FramingOctetCounted, true
		}
		if !isDigit(b[j]) {
			return FramingNonTransparent, true
		}
	}
	return FramingNonTransparent, true
}

// splitCounted reads "MSG-LEN SP MSG" at buf[i:].
func (s *Splitter) splitCounted(buf []byte, i int, atEOF bool) (int, []byte, bool, error) {
	n, j := 0, i
	for j < len(buf) && j-i < maxCountDigits && isDigit(buf[j]) {
		n = n*10 + int(buf[j]-'0')
		j++
	}
	if j == len(buf) && !atEOF {
		return i, nil, false, nil
	}
	if j == i || j == len(buf) || buf[j] != ' ' || buf[i] == '0' {
		return len(buf), nil, false, fmt.Errorf("cannot parse octet count from %q: %w", clip(buf[i:], 16), ErrFraming)
	}
	start := j + 1
	max := s.max()
	have := len(buf) - start
	switch {
	case n <= max && have >= n:
		return start + n, buf[start : start+n], false, nil
	case n > max && have >= max:
		s.skip = n - max
		return start + max, buf[start : start+max], true, nil
	case atEOF:
		return len(buf), buf[start:], true, nil
	}
	return i, nil, false, nil
}

// splitLine reads a message ended by LF, CRLF or NUL at buf[i:].
func (s *Splitter) splitLine(buf []byte, i int, atEOF bool) (int, []byte, bool, error) {
	max := s.max()
	w := buf[i:]
	// Looking past max by 2 finds the CRLF of a message of exactly max
	// bytes.
	lim := min(len(w), max+2)
	if k := trailer(w[:lim]); k >= 0 {
		end := k
		if end > 0 && w[end-1] == '\r' {
			end--
		}
		if end > max {
			return i + k + 1, w[:max], true, nil
		}
		return i + k + 1, w[:end], false, nil
	}
	if len(w) >= max+2 {
		s.skipLine = true
		return i + max, w[:max], true, nil
	}
	if !atEOF {
		return i, nil, false, nil
	}
	// The last message of a stream may lack its trailer.
	end := len(w)
	if w[end-1] == '\r' {
		end--
	}
	if end > max {
		return len(buf), w[:max], true, nil
	}
	return len(buf), w[:end], false, nil
}

// trailer returns the index of the first LF or NUL in b, or -1.
func trailer(b []byte) int {
	k := bytes.IndexByte(b, '\n')
	lim := b
	if k >= 0 {
		lim = b[:k]
	}
	if z := bytes.IndexByte(lim, 0); z >= 0 {
		return z
	}
	return k
}

// clip returns at most n bytes of b, for error messages.
func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
