package collector

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fastjson"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/ledger"
)

// AppOptions configures the application-log input: JSON lines over TCP.
type AppOptions struct {
	Name           string
	Listen         string
	MaxLineBytes   int
	MaxConnections int
	// IdleTimeout closes connections that send nothing for this long
	// (0 = never).
	IdleTimeout time.Duration
	// Grace bounds how long a stopping input keeps reading what connected
	// clients already sent.
	Grace time.Duration
}

// AppInput accepts newline-delimited JSON objects over TCP, one event per
// line. A line that is not a JSON object is kept whole with FlagParseError
// and counted; a line longer than MaxLineBytes is cut, flagged and counted.
// Backpressure is by not reading: while the ring is full (policy block) the
// connection's socket buffer fills and TCP slows the sender.
type AppInput struct {
	opts AppOptions
	pipe *pipeline
	led  *ledger.Input
	logf func(string, ...any)

	ln net.Listener

	parseErrs *metrics.Counter
	truncated *metrics.Counter
	refused   *metrics.Counter
	readErrs  *metrics.Counter
	conns     atomic.Int64

	mu       sync.Mutex
	open     map[net.Conn]struct{}
	draining bool
}

func newAppInput(opts AppOptions, pipe *pipeline, led *ledger.Input, set *metrics.Set, logf func(string, ...any)) (*AppInput, error) {
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("input %q: cannot listen on %s: %w", opts.Name, opts.Listen, err)
	}
	a := &AppInput{
		opts:      opts,
		pipe:      pipe,
		led:       led,
		logf:      logf,
		ln:        ln,
		parseErrs: led.Errors(ledger.ErrParse),
		truncated: led.Errors(ledger.ErrTruncated),
		refused:   led.Errors(ledger.ErrConnLimit),
		readErrs:  led.Errors(ledger.ErrRead),
		open:      map[net.Conn]struct{}{},
	}
	set.NewGauge(fmt.Sprintf(`trawl_input_connections{input=%q}`, opts.Name), func() float64 { return float64(a.conns.Load()) })
	return a, nil
}

// Close stops listening; Run does it when ctx ends.
func (a *AppInput) Close() error { return a.ln.Close() }

// Addr returns the address the input listens on.
func (a *AppInput) Addr() net.Addr { return a.ln.Addr() }

// Run accepts connections until ctx ends, then drains: it stops accepting,
// keeps reading each open connection until the client has been quiet for
// a moment or Grace passes, and returns when every connection is done.
// hard ends a producer blocked on a full ring.
func (a *AppInput) Run(ctx, hard context.Context) error {
	var wg sync.WaitGroup
	go func() {
		<-ctx.Done()
		// Connections the kernel has already established wait in the
		// listen backlog and may carry data their clients consider sent:
		// keep accepting for a moment so they are drained too.
		if tl, ok := a.ln.(*net.TCPListener); ok {
			tl.SetDeadline(time.Now().Add(drainQuiet))
		} else {
			a.ln.Close()
		}
		a.mu.Lock()
		a.draining = true
		for c := range a.open {
			// Wake readers blocked in Read so they switch to draining.
			c.SetReadDeadline(time.Now().Add(drainQuiet))
		}
		a.mu.Unlock()
	}()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				a.ln.Close()
				break
			}
			a.logf("input %s: accept: %v", a.opts.Name, err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if int(a.conns.Load()) >= a.opts.MaxConnections {
			a.refused.Inc()
			c.Close()
			continue
		}
		a.mu.Lock()
		a.open[c] = struct{}{}
		a.mu.Unlock()
		a.conns.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.serve(hard, c)
			a.mu.Lock()
			delete(a.open, c)
			a.mu.Unlock()
			a.conns.Add(-1)
			c.Close()
		}()
	}
	wg.Wait()
	return nil
}

// drainQuiet is how long a draining connection may be silent before it is
// considered finished.
const drainQuiet = 200 * time.Millisecond

// readBufSize is the per-connection read buffer; lines longer than it are
// assembled in a separate growing buffer up to MaxLineBytes.
const readBufSize = 64 << 10

// connReader reads one connection and turns lines into events.
type connReader struct {
	a      *AppInput
	pr     *Producer
	parser fastjson.Parser
	ev     event.Event
	src    netip.AddrPort
	now    int64  // receive time of the lines of the last read, Unix ns
	scr    []byte // number/level scratch
	long   []byte // a line longer than the read buffer, assembled here
	skip   bool   // discarding the rest of an over-long line
}

func (a *AppInput) serve(hard context.Context, c net.Conn) {
	cr := &connReader{a: a, pr: a.pipe.producer()}
	// The lines of one read go to the ring in batches (Producer.Add), handed
	// over after each read; whatever way serve ends, none stays behind.
	defer cr.pr.Flush(hard)
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		cr.src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	buf := make([]byte, readBufSize)
	start, end := 0, 0       // unconsumed bytes are buf[start:end]
	var drainStart time.Time // zero until this connection starts draining
	for {
		if a.isDraining() {
			// Keep reading while the client is still sending, until it has
			// been quiet for drainQuiet or Grace has passed.
			if drainStart.IsZero() {
				drainStart = time.Now()
			}
			if time.Since(drainStart) > a.opts.Grace {
				return
			}
			c.SetReadDeadline(time.Now().Add(drainQuiet))
		} else if a.opts.IdleTimeout > 0 {
			c.SetReadDeadline(time.Now().Add(a.opts.IdleTimeout))
		}
		if start > 0 && start == end {
			start, end = 0, 0
		}
		if end == len(buf) {
			if start > 0 {
				end = copy(buf, buf[start:end])
				start = 0
			} else {
				// The buffer holds part of one long line: move it aside.
				cr.partial(buf[start:end])
				start, end = 0, 0
			}
		}
		n, err := c.Read(buf[end:])
		end += n
		cr.now = time.Now().UnixNano()
		for start < end {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			if err := cr.line(hard, buf[start:start+i]); err != nil {
				return
			}
			start += i + 1
		}
		if err := cr.pr.Flush(hard); err != nil {
			return
		}
		if err == nil {
			continue
		}
		var ne net.Error
		timeout := errors.As(err, &ne) && ne.Timeout()
		if timeout && a.isDraining() && drainStart.IsZero() {
			continue // woken by the start of draining, not by silence
		}
		if !timeout && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			a.readErrs.Inc()
		}
		// A final line without a newline still counts: the client closed
		// the connection after writing it.
		if errors.Is(err, io.EOF) && (start < end || len(cr.long) > 0) {
			cr.line(hard, buf[start:end])
		}
		return
	}
}

func (a *AppInput) isDraining() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.draining
}

// partial keeps the beginning of a line that does not fit the read buffer,
// up to MaxLineBytes; the rest is discarded and the event flagged.
func (cr *connReader) partial(p []byte) {
	if cr.skip {
		return
	}
	room := cr.a.opts.MaxLineBytes - len(cr.long)
	if len(p) > room {
		p = p[:room]
		cr.skip = true
	}
	cr.long = append(cr.long, p...)
}

// line turns one line (without its '\n') into an event and adds it to the
// producer's batch, which the caller flushes after each read.
func (cr *connReader) line(hard context.Context, l []byte) error {
	truncated := cr.skip
	if len(cr.long) > 0 || cr.skip {
		if !cr.skip {
			room := cr.a.opts.MaxLineBytes - len(cr.long)
			if len(l) > room {
				l = l[:room]
				truncated = true
			}
			cr.long = append(cr.long, l...)
		}
		l = cr.long
	} else if len(l) > cr.a.opts.MaxLineBytes {
		l = l[:cr.a.opts.MaxLineBytes]
		truncated = true
	}
	cr.skip = false
	defer func() { cr.long = cr.long[:0] }()

	size := len(l) + 1
	l = bytes.TrimSuffix(l, []byte{'\r'})
	if len(bytes.TrimSpace(l)) == 0 {
		return nil
	}
	ev := &cr.ev
	ev.Reset()
	ev.Kind = event.KindApp
	ev.RecvTime = cr.now
	ev.Source = cr.src
	ev.App.Raw = l
	if truncated {
		ev.Flags |= event.FlagTruncated | event.FlagParseError
		cr.a.truncated.Inc()
		cr.a.parseErrs.Inc()
	} else {
		v, err := cr.parser.ParseBytes(l)
		// The object is embedded verbatim in the event's JSON, which must
		// stay valid for strict readers.
		if err != nil || v.Type() != fastjson.TypeObject || !strictJSON(l) {
			ev.Flags |= event.FlagParseError
			cr.a.parseErrs.Inc()
		} else {
			cr.extract(v)
		}
	}
	return cr.pr.Add(hard, ev, size)
}

// strictJSON reports whether line l, which fastjson parsed, is also valid
// JSON by RFC 8259. fastjson's parser checks a line's structure, but it
// accepts raw control characters inside strings, any character after a
// backslash, and any run of number characters ({"a":.}, 1.2.3, +1, NaN),
// which strict readers reject. fastjson.Validate would find most of these
// by parsing the line a second time (a fifth of the input's lines/s), and
// it misses a control character that an escape follows in the same string;
// fastjson's Value.Type cannot pick out the numbers cheaply either, for it
// unescapes every string it is asked about. So this checks just those
// tokens, in two passes that skip 8 bytes a step where there is nothing to
// check: one for control characters, one for escapes and bare tokens.
func strictJSON(l []byte) bool {
	return event.ControlInString(l) < 0 && validTokens(l)
}

// validTokens reports whether every escape inside the strings of l, which
// parsed as JSON, is an RFC 8259 escape, and every token outside them a
// JSON number or true, false or null.
func validTokens(l []byte) bool {
	escapes := bytes.IndexByte(l, '\\') >= 0
	n := len(l)
	for i := 0; i < n; {
		switch tokenClass[l[i]] {
		case classQuote:
			i++
			if !escapes {
				// The usual line: each string ends at the next quote.
				if i = nextQuote(l, i); i == n {
					return false // unterminated; the parser would have refused it
				}
				i++
				continue
			}
			for {
				if i >= n {
					return false
				}
				c := l[i]
				if c == '"' {
					i++
					break
				}
				if c != '\\' {
					i++
					continue
				}
				if i+1 == n {
					return false
				}
				switch l[i+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					i += 2
				case 'u':
					if i+6 > n || !isHex(l[i+2]) || !isHex(l[i+3]) || !isHex(l[i+4]) || !isHex(l[i+5]) {
						return false
					}
					i += 6
				default:
					return false
				}
			}
		case classToken:
			j := i + 1
			for j < n && tokenClass[l[j]] == classToken {
				j++
			}
			if !validBare(l[i:j]) {
				return false
			}
			i = j
		default:
			i++ // punctuation or whitespace
		}
	}
	return true
}

// validBare reports whether t, a bare token, is a JSON number or literal.
func validBare(t []byte) bool {
	switch string(t) {
	case "true", "false", "null":
		return true
	}
	return validNumber(t)
}

// Byte classes of validTokens outside strings.
const (
	classOther = iota // punctuation, whitespace
	classQuote        // '"', a string starts
	classToken        // part of a bare token as fastjson reads one: a number
	// (with the signs, points and exponents it lets through), a literal,
	// or inf and nan
)

var tokenClass = func() (t [256]uint8) {
	t['"'] = classQuote
	for c := range 256 {
		if '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '.' || c == '+' || c == '-' {
			t[c] = classToken
		}
	}
	return t
}()

// nextQuote returns the index of the first '"' in l at or after i, or
// len(l). It tests 8 bytes a step: x^'"'… has a zero byte exactly where x
// holds a quote, v-0x01… borrows into the top bit of v's first zero byte
// (&^v drops bytes of 0x80 and up), and a borrow only marks bytes above a
// zero byte, so the lowest mark is the first quote. Short strings, the
// usual key or value, end within a step or two, where a call to
// bytes.IndexByte per string cost more.
func nextQuote(l []byte, i int) int {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(l); i += 8 {
		x := binary.LittleEndian.Uint64(l[i:]) ^ ones*'"'
		if m := (x - ones) &^ x & tops; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(l) && l[i] != '"'; i++ {
	}
	return i
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validNumber reports whether b is a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	switch {
	case len(b) == 0 || b[0] < '0' || b[0] > '9':
		return false
	case b[0] == '0':
		b = b[1:]
	default:
		b = skipDigits(b)
	}
	if len(b) > 0 && b[0] == '.' {
		rest := skipDigits(b[1:])
		if len(rest) == len(b)-1 {
			return false // no digit after the point
		}
		b = rest
	}
	if len(b) > 0 && (b[0] == 'e' || b[0] == 'E') {
		b = b[1:]
		if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
			b = b[1:]
		}
		rest := skipDigits(b)
		if len(rest) == len(b) {
			return false // no digit in the exponent
		}
		b = rest
	}
	return len(b) == 0
}

func skipDigits(b []byte) []byte {
	for len(b) > 0 && '0' <= b[0] && b[0] <= '9' {
		b = b[1:]
	}
	return b
}

// extract fills the event's time, message and level from the common field
// names of structured loggers (ECS, logrus, zap, slog, bunyan, mozlog).
func (cr *connReader) extract(v *fastjson.Value) {
	o := v.GetObject()
	ev := &cr.ev
	cr.scr = cr.scr[:0]
	o.Visit(func(key []byte, f *fastjson.Value) {
		switch string(key) {
		case "@timestamp", "timestamp", "time", "ts", "Timestamp":
			if ev.Time == 0 {
				ev.Time = parseTime(f)
			}
		case "message", "msg":
			if len(ev.App.Message) == 0 {
				if b, err := f.StringBytes(); err == nil {
					ev.App.Message = b
				}
			}
		case "level", "severity", "Severity", "log.level":
			if len(ev.App.Level) == 0 {
				ev.App.Level = cr.scalar(f)
			}
		case "Fields": // mozlog keeps the message in Fields.msg
			if len(ev.App.Message) == 0 {
				if b := f.GetStringBytes("msg"); b != nil {
					ev.App.Message = b
				}
			}
		}
	})
}

// scalar returns a string value's bytes or a number's text.
func (cr *connReader) scalar(f *fastjson.Value) []byte {
	switch f.Type() {
	case fastjson.TypeString:
		b, _ := f.StringBytes()
		return b
	case fastjson.TypeNumber:
		start := len(cr.scr)
		cr.scr = f.MarshalTo(cr.scr)
		return cr.scr[start:]
	}
	return nil
}

// parseTime reads an RFC 3339 string or a Unix time number, guessing its
// unit from its size (s, ms, µs or ns). 0 means unknown.
func parseTime(f *fastjson.Value) int64 {
	switch f.Type() {
	case fastjson.TypeString:
		b, _ := f.StringBytes()
		t, err := time.Parse(time.RFC3339Nano, string(b))
		if err != nil {
			return 0
		}
		return t.UnixNano()
	case fastjson.TypeNumber:
		x, err := f.Float64()
		if err != nil || x <= 0 {
			return 0
		}
		switch {
		case x < 1e11:
			// Split off the fraction so float rounding of x*1e9 does not
			// shift the time by a few hundred ns; µs is what loggers send.
			sec := math.Floor(x)
			return int64(sec)*1e9 + int64(math.Round((x-sec)*1e6))*1e3
		case x < 1e14:
			return int64(x * 1e6)
		case x < 1e17:
			return int64(x * 1e3)
		default:
			return int64(x)
		}
	}
	return 0
}
