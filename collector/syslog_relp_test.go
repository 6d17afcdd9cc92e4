package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawlsec/trawl/consumer"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/ledger"
	"github.com/trawlsec/trawl/sinks/disk"
	"github.com/trawlsec/trawl/syslog/relp"
)

// relpClient speaks RELP the way librelp's client does: open, syslog
// commands with consecutive transaction numbers, close.
type relpClient struct {
	t    testing.TB
	c    net.Conn
	buf  []byte
	next uint32
}

func dialRELP(t testing.TB, addr net.Addr) *relpClient {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &relpClient{t: t, c: c, next: 1}
}

// send writes one frame with the next transaction number and returns it.
func (rc *relpClient) send(cmd string, data string) uint32 {
	rc.t.Helper()
	txnr := rc.next
	rc.next = relp.NextTxnr(txnr)
	if _, err := rc.c.Write(relp.AppendFrame(nil, txnr, cmd, []byte(data))); err != nil {
		rc.t.Fatalf("send %s: %v", cmd, err)
	}
	return txnr
}

// frame reads the next frame from the server; the error is the
// connection's (io.EOF when the server closed it, a timeout).
func (rc *relpClient) frame(timeout time.Duration) (relp.Frame, error) {
	rc.c.SetReadDeadline(time.Now().Add(timeout))
	for {
		f, n, err := relp.Parse(rc.buf, 1<<20)
		if err != nil {
			rc.t.Fatalf("the server sent a bad frame: %v", err)
		}
		if n > 0 {
			f.Command = append([]byte(nil), f.Command...)
			f.Data = append([]byte(nil), f.Data...)
			rc.buf = rc.buf[n:]
			return f, nil
		}
		var b [4096]byte
		k, err := rc.c.Read(b[:])
		rc.buf = append(rc.buf, b[:k]...)
		if err != nil && k == 0 {
			return relp.Frame{}, err
		}
	}
}

// expectRsp reads a response to txnr with code.
func (rc *relpClient) expectRsp(txnr uint32, code int) []byte {
	rc.t.Helper()
	f, err := rc.frame(5 * time.Second)
	if err != nil {
		rc.t.Fatalf("waiting for the response to %d: %v", txnr, err)
	}
	c, _, rest, perr := relp.ParseResponse(f.Data)
	if string(f.Command) != "rsp" || f.Txnr != txnr || c != code || perr != nil {
		rc.t.Fatalf("got %d %s %q, want the response %d to %d", f.Txnr, f.Command, f.Data, code, txnr)
	}
	return rest
}

// expectEnd reads until the server closes, failing on any frame but
// serverclose (which it returns as seen).
func (rc *relpClient) expectEnd() (serverclose bool) {
	rc.t.Helper()
	for {
		f, err := rc.frame(5 * time.Second)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			rc.t.Fatal("the server did not close the session")
		}
		if err != nil {
			return serverclose
		}
		if f.Txnr != 0 || string(f.Command) != "serverclose" || len(f.Data) != 0 {
			rc.t.Fatalf("got %d %s %q, want the end of the session", f.Txnr, f.Command, f.Data)
		}
		serverclose = true
	}
}

// open opens the session as librelp does and checks the server's offers.
func (rc *relpClient) open() {
	rc.t.Helper()
	txnr := rc.send("open", "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog")
	offers := rc.expectRsp(txnr, 200)
	if v, ok := relp.Offer(offers, "relp_version"); !ok || string(v) != "0" {
		rc.t.Fatalf("offers %q: relp_version %q", offers, v)
	}
	if v, ok := relp.Offer(offers, "commands"); !ok || !relp.HasValue(v, "syslog") {
		rc.t.Fatalf("offers %q do not include the syslog command", offers)
	}
}

func openSpool(t testing.TB, fsync disk.FsyncPolicy) (*disk.Spool, string) {
	t.Helper()
	dir := t.TempDir()
	sp, err := disk.Open(disk.Options{Dir: dir, Fsync: fsync, FsyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the input's cleanup, so it runs after it.
	t.Cleanup(func() { sp.Close() })
	return sp, dir
}

// spoolEvent is what the RELP tests check of a stored event.
type spoolEvent struct {
	msg   string
	flags event.Flags
}

// spoolEvents returns the events in the spool at dir, in order. It works
// while the spool is open.
func spoolEvents(t testing.TB, dir string) []spoolEvent {
	t.Helper()
	dec, err := consumer.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var evs []spoolEvent
	err = disk.Scan(dir, func(rec []byte, _ disk.Pos) error {
		_, err := dec.Frame(rec, func(ev *event.Event) error {
			evs = append(evs, spoolEvent{string(ev.Syslog.Message), ev.Flags})
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func relpMessage(i int) string {
	return fmt.Sprintf("<13>1 2026-11-25T10:00:00Z h app - - - message %d", i)
}

// TestRELPAcknowledgesDurable sends 100 messages with a window of 10
// outstanding transactions and checks every "200 OK" arrives in order and
// only once its message is in the spool (fsync always: the spool writes
// and syncs a frame before it reports it durable).
func TestRELPAcknowledgesDurable(t *testing.T) {
	sp, dir := openSpool(t, disk.FsyncAlways)
	h := startSyslog(t, SyslogOptions{Protocol: SyslogRELP}, sp)
	cl := dialRELP(t, h.in.Addr())
	cl.open()
	const total, window = 100, 10
	sent, acked, maxOutstanding := 0, 0, 0
	for acked < total {
		for sent < total && sent-acked < window {
			cl.send("syslog", relpMessage(sent))
			sent++
		}
		maxOutstanding = max(maxOutstanding, sent-acked)
		cl.expectRsp(uint32(acked+2), 200) // txnr 1 was the open
		want := fmt.Sprintf("message %d", acked)
		found := false
		for _, ev := range spoolEvents(t, dir) {
			found = found || ev.msg == want
		}
		if !found {
			t.Fatalf("%q was acknowledged before it was in the spool", want)
		}
		acked++
	}
	if maxOutstanding != window {
		t.Fatalf("at most %d transactions were outstanding, want %d", maxOutstanding, window)
	}
	txnr := cl.send("close", "")
	cl.expectRsp(txnr, 200)
	if !cl.expectEnd() {
		t.Fatal("no serverclose after the close response")
	}
	h.stop()
	evs := spoolEvents(t, dir)
	if len(evs) != total {
		t.Fatalf("spool holds %d events, want %d", len(evs), total)
	}
	for i, ev := range evs {
		if ev.msg != fmt.Sprintf("message %d", i) || ev.flags != 0 {
			t.Fatalf("event %d = %q flags %b", i, ev.msg, ev.flags)
		}
	}
	if h.led.Received.Get() != total || h.led.Delivered.Get() != total || h.errors(ErrUnacknowledged) != 0 {
		t.Fatalf("received %d delivered %d unacknowledged %d", h.led.Received.Get(), h.led.Delivered.Get(), h.errors(ErrUnacknowledged))
	}
}

// TestRELPWaitsForFsync holds the spool's durability confirmation and
// checks no message is acknowledged until it comes, while the open is
// answered at once.
func TestRELPWaitsForFsync(t *testing.T) {
	sp, _ := openSpool(t, disk.FsyncAlways)
	gs := gatedSpool{Spool: sp, gate: make(chan struct{})}
	var openGate sync.Once
	release := func() { openGate.Do(func() { close(gs.gate) }) }
	h := startSyslog(t, SyslogOptions{Protocol: SyslogRELP}, gs)
	t.Cleanup(release) // registered after the input's cleanup, so it runs before it: stopping needs the gate open
	cl := dialRELP(t, h.in.Addr())
	cl.open()
	for i := range 5 {
		cl.send("syslog", relpMessage(i))
	}
	if f, err := cl.frame(300 * time.Millisecond); err == nil {
		t.Fatalf("got %d %s %q before the spool confirmed anything durable", f.Txnr, f.Command, f.Data)
	}
	if h.led.Received.Get() != 5 {
		t.Fatalf("the reader took %d of 5 messages while acknowledgements waited", h.led.Received.Get())
	}
	release()
	for i := range 5 {
		cl.expectRsp(uint32(i+2), 200)
	}
}

// failingSpool refuses every frame.
type failingSpool struct{}

func (failingSpool) AppendSealed([]byte) (disk.Pos, error) { return 0, errors.New("disk on fire") }

func (failingSpool) WaitDurable(context.Context, disk.Pos) error { return nil }

func (failingSpool) SyncSoon() {}

// TestRELPNotDurable checks a message whose frame is lost is never
// acknowledged: the connection closes, so the client sends it again.
func TestRELPNotDurable(t *testing.T) {
	stop, giveUp := context.WithCancel(context.Background())
	defer giveUp()
	h := startSyslogCtx(t, SyslogOptions{Protocol: SyslogRELP}, failingSpool{}, stop)
	cl := dialRELP(t, h.in.Addr())
	cl.open()
	cl.send("syslog", relpMessage(0))
	waitCounter(t, h.led.Errors("spool_retry"), 1, "spool retries")
	giveUp() // the framer stops retrying: the frame is lost
	if cl.expectEnd() {
		t.Fatal("serverclose on a session closed for a lost frame")
	}
	waitCounter(t, h.led.Errors(ErrNotDurable), 1, "not_durable errors")
	waitCounter(t, h.led.Errors(ErrUnacknowledged), 1, "unacknowledged messages")
	if got := h.led.Dropped(ledger.ReasonSpoolError).Get(); got != 1 {
		t.Fatalf("dropped spool_error = %d, want 1", got)
	}
}

// TestRELPProtocolErrors checks that each way of breaking RELP closes only
// the offending connection and is counted, while a good session goes on.
func TestRELPProtocolErrors(t *testing.T) {
	sp, dir := openSpool(t, disk.FsyncNever)
	h := startSyslog(t, SyslogOptions{Protocol: SyslogRELP}, sp)
	good := dialRELP(t, h.in.Addr())
	good.open()

	f := func(name string, open bool, raw string, reason string, rspCode int) {
		t.Helper()
		before := h.errors(reason)
		cl := dialRELP(t, h.in.Addr())
		if open {
			cl.open()
		}
		if _, err := cl.c.Write([]byte(raw)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rspCode != 0 {
			cl.expectRsp(cl.next, rspCode)
		}
		if name == "stream ends inside a frame" {
			cl.c.(*net.TCPConn).CloseWrite()
		}
		cl.expectEnd()
		waitCounter(t, h.led.Errors(reason), before+1, name+": "+reason+" errors")
	}
	f("not RELP at all", false, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ErrFraming, 0)
	f("plain syslog on the RELP port", false, "<13>Nov 25 10:00:00 h t: hi\n", ErrFraming, 0)
	f("syslog before open", false, "1 syslog 5 hello\n", ErrRELPProtocol, 0)
	f("transaction number skipped", true, "3 syslog 5 hello\n", ErrRELPProtocol, 0)
	f("data longer than announced", true, "2 syslog 3 abcd\n", ErrFraming, 0)
	f("oversized open", false, "1 open 70000 ", ErrRELPProtocol, 0)
	f("stream ends inside a frame", true, "2 syslog 5 hel", ErrFraming, 0)

	// An open without the syslog command is answered 500 and closed.
	cl := dialRELP(t, h.in.Addr())
	txnr := cl.send("open", "relp_version=0\ncommands=other")
	cl.expectRsp(txnr, 500)
	cl.expectEnd()
	waitCounter(t, h.led.Errors(ErrRELPProtocol), 4, "relp_protocol errors")

	// An unknown command is answered 500 and the session goes on.
	cl = dialRELP(t, h.in.Addr())
	cl.open()
	cl.expectRsp(cl.send("starttls", ""), 500)
	cl.expectRsp(cl.send("syslog", relpMessage(1)), 200)

	// The good session was not disturbed.
	good.expectRsp(good.send("syslog", relpMessage(2)), 200)
	if h.led.Received.Get() != 2 {
		t.Fatalf("received %d, want 2: the broken sessions produced events", h.led.Received.Get())
	}
	if evs := spoolEvents(t, dir); len(evs) != 2 {
		t.Fatalf("spool holds %d events, want 2", len(evs))
	}
}

// TestRELPOversize sends a message longer than the limit, in small pieces:
// it is kept cut, flagged, counted and acknowledged, and the session goes
// on with the next frame.
func TestRELPOversize(t *testing.T) {
	sp, dir := openSpool(t, disk.FsyncNever)
	h := startSyslog(t, SyslogOptions{Protocol: SyslogRELP, MaxMessageBytes: 256}, sp)
	cl := dialRELP(t, h.in.Addr())
	cl.open()
	long := "<13>1 2026-11-25T10:00:00Z h app - - - " + strings.Repeat("L", 70000)
	stream := relp.AppendFrame(nil, 2, "syslog", []byte(long))
	stream = relp.AppendFrame(stream, 3, "syslog", []byte(relpMessage(3)))
	cl.next = 4
	for len(stream) > 0 {
		n := min(len(stream), 7919)
		if _, err := cl.c.Write(stream[:n]); err != nil {
			t.Fatal(err)
		}
		stream = stream[n:]
	}
	cl.expectRsp(2, 200)
	cl.expectRsp(3, 200)
	evs := spoolEvents(t, dir)
	if len(evs) != 2 || evs[0].msg != long[39:256] || evs[0].flags != event.FlagTruncated || evs[1].msg != "message 3" || evs[1].flags != 0 {
		t.Fatalf("spool holds %+v", evs)
	}
	if h.errors(ledger.ErrTruncated) != 1 || h.errors(ErrFraming) != 0 {
		t.Fatalf("truncated %d framing %d; want 1 0", h.errors(ledger.ErrTruncated), h.errors(ErrFraming))
	}
}

// TestRELPDrain stops the input while a client is sending: what it sends
// before it goes quiet is still read and acknowledged, then the server says
// serverclose.
func TestRELPDrain(t *testing.T) {
	sp, dir := openSpool(t, disk.FsyncInterval)
	h := startSyslog(t, SyslogOptions{Protocol: SyslogRELP, Grace: 5 * time.Second}, sp)
	cl := dialRELP(t, h.in.Addr())
	cl.open()
	for i := range 10 {
		cl.expectRsp(cl.send("syslog", relpMessage(i)), 200)
	}
	go h.cancel()
	time.Sleep(50 * time.Millisecond)
	var txnrs []uint32
	for i := 10; i < 15; i++ {
		txnrs = append(txnrs, cl.send("syslog", relpMessage(i)))
	}
	for _, tx := range txnrs {
		cl.expectRsp(tx, 200)
	}
	if !cl.expectEnd() {
		t.Fatal("no serverclose at shutdown")
	}
	h.stop()
	if evs := spoolEvents(t, dir); len(evs) != 15 {
		t.Fatalf("spool holds %d events, want 15", len(evs))
	}
	if h.errors(ErrUnacknowledged) != 0 {
		t.Fatalf("%d messages left unacknowledged", h.errors(ErrUnacknowledged))
	}
}

// TestRELPOverTLS runs a session over TLS with a client certificate.
func TestRELPOverTLS(t *testing.T) {
	pki := newTestPKI(t)
	sp, _ := openSpool(t, disk.FsyncNever)
	h := startSyslog(t, SyslogOptions{Protocol: SyslogRELP,
		TLS: &TLSFiles{CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile}}, sp)
	c, err := tlsDial(h.in.Addr(), pki)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := &relpClient{t: t, c: c, next: 1}
	cl.open()
	cl.expectRsp(cl.send("syslog", relpMessage(0)), 200)
	cl.expectRsp(cl.send("close", ""), 200)
	cl.expectEnd()
	if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("after close: %v", err)
	}
}
