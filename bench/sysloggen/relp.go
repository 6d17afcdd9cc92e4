package sysloggen

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// The RELP client's side of the wire (the Reliable Event Logging Protocol
// of rsyslog's librelp, spec "RELP - The Reliable Event Logging
// Protocol"). It is written here, apart from trawl's own syslog/relp, on
// purpose: a generator that shares its parser with the server under test
// would agree with the server on any mistake both make.
//
// A frame is TXNR SP COMMAND SP DATALEN [SP DATA] LF: TXNR 1 to 9 digits
// (0 only for the server's hints, such as "serverclose"), COMMAND 1 to 32
// letters, DATALEN 1 to 9 digits, and DATA, after its SP, only when
// DATALEN is not 0. The data of an "rsp" is a three-digit code, then
// optionally SP and a text, then optionally LF and command data (the
// offers, in the answer to "open").

// DefaultRELPWindow is the number of unanswered messages a RELP session
// may have in flight unless [Config.RELPWindow] says otherwise: rsyslog's
// omrelp default.
const DefaultRELPWindow = 128

// relpMaxTxnr is the largest transaction number; the next one is 1.
const relpMaxTxnr = 999_999_999

// relpOpenOffers is the data of the client's "open": the protocol version
// librelp speaks (0), who we are, and the one command we need.
const relpOpenOffers = "relp_version=0\nrelp_software=trawl-sysloggen,1,https://github.com/trawlsec/trawl\ncommands=syslog"

// errRELPFrame is wrapped by the errors of parseRELPFrame and
// parseRELPResponse.
var errRELPFrame = errors.New("not a RELP frame")

// relpFrame is one parsed frame; cmd and data alias the parsed buffer.
type relpFrame struct {
	txnr uint32
	cmd  []byte
	data []byte
}

// nextTxnr returns the transaction number after t.
func nextTxnr(t uint32) uint32 {
	if t >= relpMaxTxnr {
		return 1
	}
	return t + 1
}

// appendRELPFrame appends "txnr cmd len(data)[ data]\n" to dst.
func appendRELPFrame(dst []byte, txnr uint32, cmd string, data []byte) []byte {
	dst = strconv.AppendUint(dst, uint64(txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, cmd...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(len(data)), 10)
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, data...)
	}
	return append(dst, '\n')
}

// parseRELPFrame reads the frame at the start of b. It returns the frame
// and the bytes it took (trailer included), or n = 0 and no error when b
// is only the beginning of a frame. Bytes that cannot begin a frame are an
// error as soon as they are seen, as is a DATALEN above maxData.
func parseRELPFrame(b []byte, maxData int) (f relpFrame, n int, err error) {
	i := 0
	num := func(what string) (v uint64, ok bool, err error) {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if i-start == 9 {
				return 0, false, relpError(what+" longer than 9 digits", b)
			}
			v = v*10 + uint64(b[i]-'0')
			i++
		}
		if i == len(b) {
			return 0, false, nil
		}
		if i == start {
			return 0, false, relpError("expected "+what, b)
		}
		return v, true, nil
	}
	txnr, ok, err := num("a transaction number")
	if !ok {
		return f, 0, err
	}
	if b[i] != ' ' {
		return f, 0, relpError("expected a space after the transaction number", b)
	}
	i++
	start := i
	for i < len(b) && (b[i]|0x20) >= 'a' && (b[i]|0x20) <= 'z' {
		if i-start == 32 {
			return f, 0, relpError("command longer than 32 letters", b)
		}
		i++
	}
	if i == len(b) {
		return f, 0, nil
	}
	if i == start || b[i] != ' ' {
		return f, 0, relpError("expected a command and a space", b)
	}
	f.txnr, f.cmd = uint32(txnr), b[start:i]
	i++
	dataLen, ok, err := num("a data length")
	if !ok {
		return relpFrame{}, 0, err
	}
	if dataLen > uint64(maxData) {
		return relpFrame{}, 0, relpError(fmt.Sprintf("data length %d above %d", dataLen, maxData), b)
	}
	if dataLen > 0 {
		if b[i] != ' ' {
			return relpFrame{}, 0, relpError("expected a space before the data", b)
		}
		i++
	}
	end := i + int(dataLen)
	if end >= len(b) {
		return relpFrame{}, 0, nil
	}
	if b[end] != '\n' {
		return relpFrame{}, 0, relpError("expected the trailer after the data", b)
	}
	f.data = b[i:end]
	return f, end + 1, nil
}

// parseRELPResponse splits the data of an "rsp" into its code, its text
// and what follows the first LF (the offers, in the answer to "open").
func parseRELPResponse(data []byte) (code int, text, rest []byte, err error) {
	if len(data) < 3 {
		return 0, nil, nil, relpError("response without a three-digit code", data)
	}
	for _, c := range data[:3] {
		if c < '0' || c > '9' {
			return 0, nil, nil, relpError("response without a three-digit code", data)
		}
		code = code*10 + int(c-'0')
	}
	rest = data[3:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	} else if len(rest) > 0 && rest[0] != '\n' {
		return 0, nil, nil, relpError("response code not followed by a space", data)
	}
	for i, c := range rest {
		if c == '\n' {
			return code, rest[:i], rest[i+1:], nil
		}
	}
	return code, rest, nil, nil
}

// relpOffer returns the value of offer name in the offers of an "open" or
// its answer ("name=value" lines), and whether the offer is there at all.
func relpOffer(offers []byte, name string) (value []byte, ok bool) {
	for len(offers) > 0 {
		var line []byte
		line, offers, _ = bytes.Cut(offers, []byte{'\n'})
		if len(line) < len(name) || string(line[:len(name)]) != name {
			continue
		}
		if len(line) == len(name) {
			return nil, true
		}
		if line[len(name)] == '=' {
			return line[len(name)+1:], true
		}
	}
	return nil, false
}

// relpListHas reports whether the comma-separated offer value list holds v.
func relpListHas(list []byte, v string) bool {
	for len(list) > 0 {
		var item []byte
		item, list, _ = bytes.Cut(list, []byte{','})
		if string(item) == v {
			return true
		}
	}
	return false
}

// relpError wraps errRELPFrame with what was wrong and the first bytes of
// b, quoted.
func relpError(what string, b []byte) error {
	if len(b) > 40 {
		b = b[:40]
	}
	return fmt.Errorf("cannot parse RELP frame from %q: %s: %w", b, what, errRELPFrame)
}
