package sysloggen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawlsec/trawl/syslog/relp"
)

// fakeRELP is a RELP server for the tests. It parses what the client sends
// with trawl's own syslog/relp (a parser written apart from the client's),
// checks the session (open first, transaction numbers in sequence, close
// last), and answers in a way each test chooses. By default it holds its
// answers until the client has window messages outstanding (or has been
// quiet for 20 ms) and then answers them all, so a client that does not
// fill its window, or overfills it, shows in maxOutstanding.
type fakeRELP struct {
	t      testing.TB
	ln     net.Listener
	window int
	// answer returns the code for the i-th message (0-based) of a
	// connection; nil answers 200 to all.
	answer func(i int) int
	// cut, when ≥ 0, ends each connection after that many answers: with
	// serverclose first when hint is set, abruptly otherwise.
	cut  int
	hint bool
	// silent never answers messages.
	silent bool
	// openAnswer replaces the answer to open when not empty.
	openAnswer string

	recv *received
	wg   sync.WaitGroup

	mu             sync.Mutex
	maxOutstanding int
	closes         int // close commands answered
	messages       int // syslog frames received
}

// newFakeRELP starts a fake server; set changes its behaviour before it
// accepts anything.
func newFakeRELP(t testing.TB, window int, set ...func(*fakeRELP)) *fakeRELP {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRELP{t: t, ln: ln, window: window, cut: -1, recv: &received{seen: map[[2]uint64]int{}}}
	for _, s := range set {
		s(f)
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeRELP) target() Config {
	return Config{Target: f.ln.Addr().(*net.TCPAddr).AddrPort(), RELP: true, RELPWindow: f.window}
}

func (f *fakeRELP) serve(c net.Conn) {
	t := f.t
	buf := make([]byte, 1<<20)
	var r, w int
	var out []byte
	var pending []uint32 // unanswered syslog transactions
	answered, msgs := 0, 0
	want := uint32(1)
	opened := false
	flush := func() bool {
		for _, tx := range pending {
			if f.cut >= 0 && answered == f.cut {
				if f.hint {
					out = relp.AppendFrame(out, 0, "serverclose", nil)
				}
				c.Write(out)
				return false
			}
			code := 200
			if f.answer != nil {
				code = f.answer(answered)
			}
			text := "OK"
			if code != 200 {
				text = "refused by the test"
			}
			out = relp.AppendResponse(out, tx, code, text, nil)
			answered++
		}
		pending = pending[:0]
		if _, err := c.Write(out); err != nil {
			return false
		}
		out = out[:0]
		return true
	}
	for {
		if !f.silent && len(pending) >= f.window && !flush() {
			return
		}
		if len(pending) > 0 && !f.silent {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		} else {
			c.SetReadDeadline(time.Time{})
		}
		k, err := c.Read(buf[w:])
		w += k
		if k == 0 && err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if !flush() {
					return
				}
				continue
			}
			return // the client closed
		}
		for {
			fr, n, err := relp.Parse(buf[r:w], 64<<10)
			if err != nil {
				t.Errorf("client sent a bad frame: %v", err)
				return
			}
			if n == 0 {
				break
			}
			r += n
			if fr.Txnr != want {
				t.Errorf("client sent transaction %d, want %d", fr.Txnr, want)
				return
			}
			want = relp.NextTxnr(want)
			switch cmd := string(fr.Command); {
			case cmd == "open" && !opened:
				opened = true
				v, ok := relp.Offer(fr.Data, "relp_version")
				cmds, _ := relp.Offer(fr.Data, "commands")
				if !ok || string(v) != "0" || !relp.HasValue(cmds, "syslog") {
					t.Errorf("open offers %q", fr.Data)
				}
				if f.openAnswer != "" {
					c.Write([]byte(f.openAnswer))
					continue
				}
				out = relp.AppendResponse(out, fr.Txnr, 200, "OK", []byte("relp_version=0\nrelp_software=fake\ncommands=syslog"))
			case cmd == "syslog" && opened:
				f.recv.add(t, fr.Data)
				pending = append(pending, fr.Txnr)
				msgs++
				f.mu.Lock()
				f.maxOutstanding = max(f.maxOutstanding, len(pending))
				f.messages++
				f.mu.Unlock()
			case cmd == "close" && opened:
				if len(fr.Data) != 0 || len(pending) != 0 && !f.silent {
					t.Errorf("close with data %q or %d messages unanswered", fr.Data, len(pending))
				}
				f.mu.Lock()
				f.closes++
				f.mu.Unlock()
				out = relp.AppendResponse(out, fr.Txnr, 200, "OK", nil)
				out = relp.AppendFrame(out, 0, "serverclose", nil)
				c.Write(out)
				return
			default:
				t.Errorf("unexpected %q (opened %v)", fr.Command, opened)
				return
			}
		}
		copy(buf, buf[r:w])
		w -= r
		r = 0
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}

// TestSendRELP: each stream opens a session, keeps exactly its window of
// messages outstanding while the server holds its answers, counts every
// "200 OK", and closes cleanly.
func TestSendRELP(t *testing.T) {
	for _, window := range []int{1, 7, 128} {
		t.Run(fmt.Sprint("window=", window), func(t *testing.T) {
			f := newFakeRELP(t, window)
			cfg := f.target()
			cfg.Format, cfg.Size, cfg.Streams, cfg.Messages = RFC5424, 300, 3, 2003
			res, err := Send(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			f.recv.check(t, res)
			if res.Unacked != 0 || res.PerStream[0] != 668 || res.PerStream[2] != 667 {
				t.Fatalf("result %+v", res)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.maxOutstanding != window || f.closes != 3 {
				t.Fatalf("at most %d messages outstanding (window %d), %d sessions closed", f.maxOutstanding, window, f.closes)
			}
			// "N syslog 300 " + message + LF; N from 2 up to 669.
			var wire uint64
			for _, n := range res.PerStream {
				for tx := uint64(2); tx < n+2; tx++ {
					wire += uint64(len(fmt.Sprint(tx))) + 12 + 300 + 1
				}
			}
			if res.Bytes != wire {
				t.Fatalf("bytes %d, want %d", res.Bytes, wire)
			}
		})
	}
}

// TestSendRELPRate: a RELP run is paced like the others.
func TestSendRELPRate(t *testing.T) {
	f := newFakeRELP(t, 128)
	cfg := f.target()
	cfg.Streams, cfg.Messages, cfg.Rate = 2, 4000, 20000
	start := time.Now()
	res, err := Send(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("4000 messages at 20k/s took %v", el)
	}
	f.recv.check(t, res)
}

// TestSendRELPCounts: only messages answered "200 OK" count, whatever the
// server does after a refusal or when it ends the session.
func TestSendRELPCounts(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		// The 100th answer of each connection is a 500; the fake goes on
		// answering 200 to later messages, which must not count.
		f := newFakeRELP(t, 16, func(f *fakeRELP) {
			f.answer = func(i int) int {
				if i == 100 {
					return 500
				}
				return 200
			}
		})
		cfg := f.target()
		cfg.Streams, cfg.Messages = 2, 1000
		res, err := Send(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), `answered message 100 with 500 "refused by the test"`) {
			t.Fatalf("error %v", err)
		}
		if res.Messages != 200 || res.PerStream[0] != 100 || res.PerStream[1] != 100 || res.Unacked == 0 || res.Unacked > 2*16 {
			t.Fatalf("result %+v", res)
		}
	})
	for _, hint := range []bool{false, true} {
		t.Run(fmt.Sprint("cut hint=", hint), func(t *testing.T) {
			f := newFakeRELP(t, 10, func(f *fakeRELP) { f.cut, f.hint = 55, hint })
			cfg := f.target()
			cfg.Streams, cfg.Messages = 1, 500
			res, err := Send(context.Background(), cfg)
			if err == nil || hint != errors.Is(err, errServerClose) {
				t.Fatalf("error %v", err)
			}
			f.mu.Lock()
			got := f.messages
			f.mu.Unlock()
			// Written and unanswered: at least what the server read, at
			// most a window.
			if res.Messages != 55 || res.Unacked < uint64(got-55) || res.Unacked == 0 || res.Unacked > 10 {
				t.Fatalf("result %+v; server received %d", res, got)
			}
		})
	}
	t.Run("open refused", func(t *testing.T) {
		for _, answer := range [][]byte{
			relp.AppendResponse(nil, 1, 500, "not today, thanks", nil),
			relp.AppendResponse(nil, 1, 200, "OK", []byte("relp_version=0\ncommands=other")),
			relp.AppendResponse(nil, 1, 200, "OK", nil),
			relp.AppendResponse(nil, 2, 200, "OK", []byte("relp_version=0\ncommands=syslog")),
		} {
			f := newFakeRELP(t, 10, func(f *fakeRELP) { f.openAnswer = string(answer) })
			cfg := f.target()
			cfg.Streams, cfg.Messages = 1, 10
			res, err := Send(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), "cannot open a RELP session") || res.Messages != 0 {
				t.Fatalf("answer %q: %+v, %v", answer, res, err)
			}
		}
	})
}

// TestSendRELPCancel: a cancelled run still collects the answers due and
// closes; what the server never answers is not counted, and a server that
// answers nothing for relpWait ends the run.
func TestSendRELPCancel(t *testing.T) {
	defer func(w time.Duration) { relpWait = w }(relpWait)
	relpWait = 500 * time.Millisecond
	// cancelAt cancels once the server has received n messages, whatever
	// the machine's load.
	cancelAt := func(f *fakeRELP, n int) context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() {
			defer cancel()
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				f.mu.Lock()
				got := f.messages
				f.mu.Unlock()
				if got >= n {
					return
				}
			}
		}()
		return ctx
	}
	t.Run("answered", func(t *testing.T) {
		f := newFakeRELP(t, 128)
		cfg := f.target()
		cfg.Messages, cfg.Rate, cfg.Streams = 1e9, 10000, 2
		res, err := Send(cancelAt(f, 300), cfg)
		if !errors.Is(err, context.Canceled) || res.Messages < 300 || res.Unacked != 0 {
			t.Fatalf("Send = %+v, %v", res, err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.messages != int(res.Messages) || f.closes != 2 {
			t.Fatalf("server received %d messages and %d closes; result %+v", f.messages, f.closes, res)
		}
	})
	t.Run("unanswered", func(t *testing.T) {
		f := newFakeRELP(t, 50, func(f *fakeRELP) { f.silent = true })
		cfg := f.target()
		cfg.Messages, cfg.Streams = 1000, 1
		res, err := Send(cancelAt(f, 50), cfg)
		if !errors.Is(err, context.Canceled) || res.Messages != 0 || res.Unacked != 50 {
			t.Fatalf("Send = %+v, %v", res, err)
		}
	})
	t.Run("stalled", func(t *testing.T) {
		f := newFakeRELP(t, 50, func(f *fakeRELP) { f.silent = true })
		cfg := f.target()
		cfg.Messages, cfg.Streams = 1000, 1
		res, err := Send(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("answered none of 50 messages within %v", relpWait)) ||
			res.Messages != 0 || res.Unacked != 50 {
			t.Fatalf("Send = %+v, %v", res, err)
		}
	})
}

func TestRELPFrame(t *testing.T) {
	f := func(in string, maxData int, txnr uint32, cmd, data string, n int) {
		t.Helper()
		fr, gn, err := parseRELPFrame([]byte(in), maxData)
		if err != nil || gn != n || fr.txnr != txnr || string(fr.cmd) != cmd || string(fr.data) != data {
			t.Fatalf("parseRELPFrame(%q) = %d %q %q, %d, %v", in, fr.txnr, fr.cmd, fr.data, gn, err)
		}
	}
	f("12 rsp 6 200 OK\nmore", 100, 12, "rsp", "200 OK", 16)
	f("0 serverclose 0\n", 100, 0, "serverclose", "", 16)
	f("999999999 syslog 3 a\nb\n", 100, 999999999, "syslog", "a\nb", 23)
	f("1 rsp 6 200 OK", 100, 0, "", "", 0) // incomplete: no trailer yet
	f("1 rsp 6", 100, 0, "", "", 0)
	f("", 100, 0, "", "", 0)
	for _, bad := range []string{"x", "1x", " 1", "1 rsp x", "1234567890 rsp 0\n", "1 rsp 0 \n", "1 rsp 2 OKx", "1 rsp 101 ", "1 r2p 0\n",
		"1 " + strings.Repeat("a", 33) + " 0\n"} {
		if _, _, err := parseRELPFrame([]byte(bad), 100); !errors.Is(err, errRELPFrame) {
			t.Errorf("parseRELPFrame(%q): %v", bad, err)
		}
	}
	resp := func(in string, code int, text, rest string) {
		t.Helper()
		c, tx, r, err := parseRELPResponse([]byte(in))
		if err != nil || c != code || string(tx) != text || string(r) != rest {
			t.Fatalf("parseRELPResponse(%q) = %d %q %q %v", in, c, tx, r, err)
		}
	}
	resp("200 OK", 200, "OK", "")
	resp("200", 200, "", "")
	resp("500 no\nrelp_version=0", 500, "no", "relp_version=0")
	resp("200\nx", 200, "", "x")
	for _, bad := range []string{"", "20", "2x0 OK", "200OK"} {
		if _, _, _, err := parseRELPResponse([]byte(bad)); err == nil {
			t.Errorf("parseRELPResponse(%q) accepted", bad)
		}
	}
	offers := []byte("relp_version=0\nrelp_software=x,1\ncommands=eventlog,syslog\nflag")
	if v, ok := relpOffer(offers, "commands"); !ok || !relpListHas(v, "syslog") || relpListHas(v, "sys") {
		t.Errorf("commands %q %v", v, ok)
	}
	if _, ok := relpOffer(offers, "flag"); !ok {
		t.Error("offer without value not found")
	}
	if _, ok := relpOffer(offers, "relp"); ok {
		t.Error("prefix of an offer found")
	}
	// Round trip, and what trawl's parser makes of it.
	msg := []byte("<134>x seq=1")
	b := appendRELPFrame(nil, 42, "syslog", msg)
	if string(b) != "42 syslog 12 <134>x seq=1\n" {
		t.Fatalf("appendRELPFrame = %q", b)
	}
	if string(appendRELPFrame(nil, 7, "close", nil)) != "7 close 0\n" {
		t.Fatal("close frame")
	}
	if nextTxnr(relpMaxTxnr) != 1 || nextTxnr(1) != 2 {
		t.Fatal("nextTxnr")
	}
}

// TestRELPAllocs: the per-message work of the sender and the reader
// allocates nothing.
func TestRELPAllocs(t *testing.T) {
	tpl, _ := NewTemplate(RFC3164, 256, 1)
	buf := make([]byte, 0, 4096)
	answers := []byte("2 rsp 6 200 OK\n3 rsp 6 200 OK\n")
	if n := testing.AllocsPerRun(100, func() {
		buf = appendRELPFrame(buf[:0], 123456, "syslog", tpl.Bytes())
		for b := answers; len(b) > 0; {
			f, n, err := parseRELPFrame(b, 1<<10)
			if err != nil || n == 0 {
				t.Fatal(n, err)
			}
			if c, _, _, err := parseRELPResponse(f.data); c != 200 || err != nil {
				t.Fatal(c, err)
			}
			b = b[n:]
		}
	}); n != 0 {
		t.Fatalf("%v allocations per message", n)
	}
}

// FuzzParseRELPFrame: the client's parser agrees with trawl's, written
// apart, on every input: the same frame, the same length, the same
// verdict on incomplete and malformed input.
func FuzzParseRELPFrame(f *testing.F) {
	for _, s := range []string{"1 rsp 6 200 OK\n", "0 serverclose 0\n", "2 syslog 5 a b c\n", "1 rsp 0\n", "1 rsp 6 200", "12 ",
		"1 rsp 36 200 OK\nrelp_version=0\ncommands=syslog\n", "1 rsp 0 \n", "x", "1234567890 x 0\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxData = 1 << 10
		got, gn, gerr := parseRELPFrame(b, maxData)
		want, wn, werr := relp.Parse(b, maxData)
		if (gerr != nil) != (werr != nil) || gn != wn {
			t.Fatalf("%q: client parser %d, %v; trawl's %d, %v", b, gn, gerr, wn, werr)
		}
		if gn > 0 && (got.txnr != want.Txnr || !bytes.Equal(got.cmd, want.Command) || !bytes.Equal(got.data, want.Data)) {
			t.Fatalf("%q: client parser %d %q %q; trawl's %d %q %q", b, got.txnr, got.cmd, got.data, want.Txnr, want.Command, want.Data)
		}
		if gn > 0 {
			// Written again (numbers lose their leading zeros), it reads
			// back the same.
			again := appendRELPFrame(nil, got.txnr, string(got.cmd), got.data)
			f2, n2, err := parseRELPFrame(again, maxData)
			if err != nil || n2 != len(again) || f2.txnr != got.txnr || !bytes.Equal(f2.cmd, got.cmd) || !bytes.Equal(f2.data, got.data) {
				t.Fatalf("%q: written again as %q, read back %d %q %q, %d, %v", b[:gn], again, f2.txnr, f2.cmd, f2.data, n2, err)
			}
		}
		// The response parser never panics.
		parseRELPResponse(b)
	})
}
