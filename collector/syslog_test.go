package collector

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/collector/udp"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/ledger"
)

// syslogHarness runs one syslog input in a test. Without a spool its
// pipeline has a ring but no framer, and tests read the ring; with one the
// whole pipeline runs.
type syslogHarness struct {
	in   syslogInput
	pipe *pipeline
	led  *ledger.Input
	set  *metrics.Set

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
	withPipe bool
}

func startSyslog(t testing.TB, opts SyslogOptions, sp spoolAppender) *syslogHarness {
	t.Helper()
	return startSyslogCtx(t, opts, sp, context.Background())
}

// startSyslogCtx is startSyslog whose pipeline gives up writing to the
// spool when stop ends.
func startSyslogCtx(t testing.TB, opts SyslogOptions, sp spoolAppender, stop context.Context) *syslogHarness {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "sys"
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = 64 << 10
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = 16
	}
	if opts.Grace == 0 {
		opts.Grace = 2 * time.Second
	}
	if opts.Protocol == SyslogUDP && opts.Sockets == 0 {
		opts.Sockets = 1 // one socket: one sender's datagrams stay in order
	}
	set := metrics.NewSet()
	led := ledger.New(set).Input(opts.Name, "syslog")
	limits := frame.BatchLimits{MaxEvents: 64, MaxBytes: 1 << 20, MaxLatency: 5 * time.Millisecond}
	pipe, err := newPipeline(pipelineConfig{name: opts.Name, kind: event.KindSyslog, observer: "test", policy: Block,
		ringSlots: 4096, limits: limits}, sp, led, set.NewCounter("spool"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newSyslogInput(opts, pipe, led, set, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	h := &syslogHarness{in: in, pipe: pipe, led: led, set: set, done: make(chan struct{}), withPipe: sp != nil}
	if sp != nil {
		if err := pipe.start(stop); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		if err := in.Run(ctx, context.Background()); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(h.stop)
	return h
}

// stop stops the input (draining as at shutdown) and waits for it, then
// for the pipeline.
func (h *syslogHarness) stop() {
	h.stopOnce.Do(func() {
		h.cancel()
		<-h.done
		if h.withPipe {
			h.pipe.closeAndWait()
		}
	})
}

// ringEvents waits until the ring holds n events and returns them.
func (h *syslogHarness) ringEvents(t testing.TB, n int) []event.Event {
	t.Helper()
	count := func() (recs, events int) {
		rs := h.pipe.ring.Peek(nil, h.pipe.ring.Cap())
		for _, rec := range rs {
			events += len(recordEvents(t, rec))
		}
		return len(rs), events
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, k := count(); k < n; _, k = count() {
		if time.Now().After(deadline) {
			t.Fatalf("ring holds %d events, want %d", k, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let any extra event show
	recs := h.pipe.ring.Peek(nil, h.pipe.ring.Cap())
	evs := decodeRecords(t, recs)
	if len(evs) != n {
		t.Fatalf("ring holds %d events, want %d", len(evs), n)
	}
	h.pipe.ring.Release(len(recs))
	return evs
}

// decodeRecords decodes the events of ring records recs, in order, into
// events of their own (copies, so the ring may be released).
func decodeRecords(t testing.TB, recs [][]byte) []event.Event {
	t.Helper()
	var evs []event.Event
	for _, rec := range recs {
		for _, enc := range recordEvents(t, rec) {
			var ev event.Event
			if err := event.DecodeBinary(&ev, append([]byte(nil), enc...)); err != nil {
				t.Fatalf("ring holds an undecodable event: %v", err)
			}
			evs = append(evs, ev)
		}
	}
	return evs
}

// recordEvents returns the encoded events of ring record rec: rec itself,
// or the events of a batch (Producer.Add).
func recordEvents(t testing.TB, rec []byte) [][]byte {
	t.Helper()
	if len(rec) < 2 || rec[0] != batchMarker {
		return [][]byte{rec}
	}
	var out [][]byte
	for raw := rec[2:]; len(raw) > 0; {
		enc, rest, err := frame.Next(raw)
		if err != nil {
			t.Fatalf("ring batch: %v", err)
		}
		out = append(out, enc)
		raw = rest
	}
	if len(out) != int(rec[1]) {
		t.Fatalf("ring batch says %d events and holds %d", rec[1], len(out))
	}
	return out
}

func (h *syslogHarness) errors(reason string) uint64 { return h.led.Errors(reason).Get() }

// waitCounter waits until c reaches want.
func waitCounter(t testing.TB, c *metrics.Counter, want uint64, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Get() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d", what, c.Get(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSyslog compares the fields of a syslog event.
func checkSyslog(t testing.TB, ev *event.Event, flags event.Flags, fac, sev uint8, host, app, pid, msg string) {
	t.Helper()
	s := &ev.Syslog
	if ev.Kind != event.KindSyslog || ev.Flags != flags || s.Facility != fac || s.Severity != sev || string(s.Hostname) != host ||
		string(s.AppName) != app || string(s.ProcID) != pid || string(s.Message) != msg || ev.RecvTime == 0 {
		t.Errorf("event = kind %v flags %b %d.%d host %q app %q pid %q msg %q recv %d; want flags %b %d.%d host %q app %q pid %q msg %q",
			ev.Kind, ev.Flags, s.Facility, s.Severity, s.Hostname, s.AppName, s.ProcID, s.Message, ev.RecvTime,
			flags, fac, sev, host, app, pid, msg)
	}
}

// expectClosed waits for the server to close c (EOF, a reset or a TLS
// alert all count; a timeout does not).
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection: %v", err)
	}
}

func TestSyslogUDP(t *testing.T) {
	h := startSyslog(t, SyslogOptions{Protocol: SyslogUDP, MaxMessageBytes: 256}, nil)
	c, err := net.Dial("udp", h.in.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	long := "<13>" + strings.Repeat("x", 400)
	for _, m := range []string{
		"<165>1 2026-11-25T10:00:00.5Z host1 app 42 ID7 [ex@1 a=\"b\"] hello 5424\n",
		"<13>Nov 25 10:00:00 host2 tag[7]: hello 3164\x00",
		"",   // empty: no message
		"\n", // only the trailer: no message
		"<999>bad pri",
		long,
		strings.Repeat("y", 256) + "\n", // exactly the limit plus its LF: whole
	} {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	evs := h.ringEvents(t, 5)
	checkSyslog(t, &evs[0], 0, 20, 5, "host1", "app", "42", "hello 5424")
	if string(evs[0].Syslog.MsgID) != "ID7" || string(evs[0].Syslog.StructuredData) != `[ex@1 a="b"]` ||
		evs[0].Time != time.Date(2026, 11, 25, 10, 0, 0, 5e8, time.UTC).UnixNano() {
		t.Errorf("RFC 5424 fields: msgid %q sd %q time %d", evs[0].Syslog.MsgID, evs[0].Syslog.StructuredData, evs[0].Time)
	}
	checkSyslog(t, &evs[1], 0, 1, 5, "host2", "tag", "7", "hello 3164")
	if evs[2].Flags != event.FlagParseError || string(evs[2].Syslog.Raw) != "<999>bad pri" {
		t.Errorf("bad PRI: flags %b raw %q", evs[2].Flags, evs[2].Syslog.Raw)
	}
	if evs[3].Flags&event.FlagTruncated == 0 || string(evs[3].Syslog.Message) != long[4:256] {
		t.Errorf("long datagram: flags %b message %q", evs[3].Flags, evs[3].Syslog.Message)
	}
	if evs[4].Flags != 0 || string(evs[4].Syslog.Message) != strings.Repeat("y", 256) {
		t.Errorf("datagram of exactly the limit: flags %b, %d bytes", evs[4].Flags, len(evs[4].Syslog.Message))
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := range evs {
		if evs[i].Source != local {
			t.Errorf("event %d source %v, want %v", i, evs[i].Source, local)
		}
	}
	if h.led.Received.Get() != 5 || h.errors(ledger.ErrParse) != 1 || h.errors(ledger.ErrTruncated) != 1 {
		t.Errorf("received %d parse errors %d truncated %d; want 5 1 1", h.led.Received.Get(), h.errors(ledger.ErrParse), h.errors(ledger.ErrTruncated))
	}
}

// TestSyslogUDPAllocs pins the UDP hot path (per datagram: strip, parse,
// encode into the batch; per read: the ring) at zero allocations.
func TestSyslogUDPAllocs(t *testing.T) {
	h := startSyslog(t, SyslogOptions{Protocol: SyslogUDP}, nil)
	in := h.in.(*SyslogUDPInput)
	from := netip.MustParseAddrPort("192.0.2.1:514")
	batch := []udp.Datagram{
		{Data: []byte("<165>1 2026-11-25T10:00:00.5Z host1 app 42 ID7 [ex@1 a=\"b\"] hello 5424\n"), From: from},
		{Data: []byte("<13>Nov 25 10:00:00 host2 tag[7]: hello 3164"), From: from},
	}
	// The messages of one read reach the ring as one batch record.
	in.handle(batch)
	rel := h.pipe.ring.Peek(nil, 16)
	if len(rel) != 1 || len(recordEvents(t, rel[0])) != len(batch) {
		t.Fatalf("one read of %d datagrams made %d ring records; want one batch of %d", len(batch), len(rel), len(batch))
	}
	h.pipe.ring.Release(len(rel))
	run := func() {
		in.handle(batch)
		rel = h.pipe.ring.Peek(rel[:0], 16)
		h.pipe.ring.Release(len(rel))
	}
	for range h.pipe.ring.Cap() {
		run() // one batch per read: every ring slot gets its buffer once
	}
	allocs := testing.AllocsPerRun(200, run)
	if allocs != 0 {
		t.Fatalf("handle allocates %.1f times per batch, want 0", allocs)
	}
}

// TestSyslogTCPBatches: the messages of one read reach the ring as one
// batch record, not one record each.
func TestSyslogTCPBatches(t *testing.T) {
	h := startSyslog(t, SyslogOptions{Protocol: SyslogTCP}, nil)
	c, err := net.Dial("tcp", h.in.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// One small write arrives in one read on loopback.
	if _, err := c.Write([]byte(strings.Repeat("<13>Nov 25 10:00:00 h t: m\n", 6))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := h.pipe.ring.Peek(nil, h.pipe.ring.Cap())
		if evs := decodeRecords(t, recs); len(evs) == 6 {
			if len(recs) != 1 {
				t.Fatalf("6 messages of one write made %d ring records, want one batch", len(recs))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ring holds %d records, not 6 messages", len(recs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyslogTCP(t *testing.T) {
	h := startSyslog(t, SyslogOptions{Protocol: SyslogTCP, MaxMessageBytes: 256}, nil)
	addr := h.in.Addr().String()

	// Non-transparent framing: LF, CRLF, NUL; a long line; a last message
	// without a trailer before the client closes.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	long := "<13>Nov 25 10:00:00 h t: " + strings.Repeat("x", 400)
	fmt.Fprintf(c, "<13>Nov 25 10:00:00 h t: one\n<14>Nov 25 10:00:00 h t: two\r\n<15>Nov 25 10:00:00 h t: three\x00%s\n<13>Nov 25 10:00:00 h t: last", long)
	c.Close()
	evs := h.ringEvents(t, 5)
	checkSyslog(t, &evs[0], 0, 1, 5, "h", "t", "", "one")
	checkSyslog(t, &evs[1], 0, 1, 6, "h", "t", "", "two")
	checkSyslog(t, &evs[2], 0, 1, 7, "h", "t", "", "three")
	checkSyslog(t, &evs[3], event.FlagTruncated, 1, 5, "h", "t", "", long[25:256])
	checkSyslog(t, &evs[4], 0, 1, 5, "h", "t", "", "last")
	if evs[0].Source.Addr() != netip.MustParseAddr("127.0.0.1") || evs[0].Source.Port() != c.LocalAddr().(*net.TCPAddr).AddrPort().Port() {
		t.Errorf("source %v, want %v", evs[0].Source, c.LocalAddr())
	}

	// Octet counting, then garbage where a count is due: the connection is
	// closed and counted; what came before is kept; other connections go on.
	other, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m1 := "<13>1 2026-11-25T10:00:00Z h app - - - counted one"
	m2 := "<13>1 2026-11-25T10:00:00Z h app - - - counted\ntwo"
	fmt.Fprintf(c, "%d %s%d %sGARBAGE", len(m1), m1, len(m2), m2)
	expectClosed(t, c)
	c.Close()
	evs = h.ringEvents(t, 2)
	checkSyslog(t, &evs[0], 0, 1, 5, "h", "app", "", "counted one")
	checkSyslog(t, &evs[1], 0, 1, 5, "h", "app", "", "counted\ntwo")
	if got := h.errors(ErrFraming); got != 1 {
		t.Errorf("framing errors = %d, want 1", got)
	}
	fmt.Fprintf(other, "<13>Nov 25 10:00:00 h t: still here\n")
	evs = h.ringEvents(t, 1)
	checkSyslog(t, &evs[0], 0, 1, 5, "h", "t", "", "still here")
	if h.errors(ledger.ErrTruncated) != 1 || h.errors(ledger.ErrParse) != 0 {
		t.Errorf("truncated %d parse errors %d; want 1 0", h.errors(ledger.ErrTruncated), h.errors(ledger.ErrParse))
	}
}

// TestSyslogTCPAcrossReads writes octet-counted and line-framed messages
// byte by byte and in odd chunks, so frames straddle reads and the buffer
// compaction, with messages longer than the limit among them.
func TestSyslogTCPAcrossReads(t *testing.T) {
	h := startSyslog(t, SyslogOptions{Protocol: SyslogTCP, MaxMessageBytes: 300}, nil)
	var stream bytes.Buffer
	var want []string
	for i := range 200 {
		m := fmt.Sprintf("<13>1 2026-11-25T10:00:00Z h app - - - msg %d %s", i, strings.Repeat("z", i*3))
		fmt.Fprintf(&stream, "%d %s", len(m), m)
		body := m[len("<13>1 2026-11-25T10:00:00Z h app - - - "):]
		if len(m) > 300 {
			body = m[len("<13>1 2026-11-25T10:00:00Z h app - - - "):300]
		}
		want = append(want, body)
	}
	c, err := net.Dial("tcp", h.in.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := stream.Bytes()
	for i := 0; len(b) > 0; i++ {
		n := min(len(b), 1+i%97)
		if _, err := c.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	c.Close()
	evs := h.ringEvents(t, len(want))
	truncated := 0
	for i := range evs {
		if string(evs[i].Syslog.Message) != want[i] {
			t.Fatalf("message %d = %q, want %q", i, evs[i].Syslog.Message, want[i])
		}
		if evs[i].Flags&event.FlagTruncated != 0 {
			truncated++
		}
	}
	if truncated == 0 || uint64(truncated) != h.errors(ledger.ErrTruncated) {
		t.Fatalf("%d events flagged truncated, %d counted", truncated, h.errors(ledger.ErrTruncated))
	}
}

func TestSyslogTCPLimits(t *testing.T) {
	h := startSyslog(t, SyslogOptions{Protocol: SyslogTCP, MaxConnections: 2, IdleTimeout: 300 * time.Millisecond}, nil)
	addr := h.in.Addr().String()
	var conns []net.Conn
	sent := time.Now()
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "<13>Nov 25 10:00:00 h t: hi\n")
		conns = append(conns, c)
	}
	h.ringEvents(t, 2) // both are being served
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	expectClosed(t, third)
	if got := h.errors(ledger.ErrConnLimit); got != 1 {
		t.Fatalf("connection_limit = %d, want 1", got)
	}
	// Both stay silent: the idle timeout closes them.
	for _, c := range conns {
		expectClosed(t, c)
	}
	if d := time.Since(sent); d < 300*time.Millisecond {
		t.Fatalf("idle connections closed %v after their last message, before the 300ms timeout", d)
	}
	if h.errors(ledger.ErrRead) != 0 {
		t.Fatalf("an idle close counted as a read error")
	}
}

// TestSyslogTCPDrain checks a stopping input keeps reading what a
// connected client sends until it is quiet, and loses nothing.
func TestSyslogTCPDrain(t *testing.T) {
	h := startSyslog(t, SyslogOptions{Protocol: SyslogTCP, Grace: 5 * time.Second}, nil)
	c, err := net.Dial("tcp", h.in.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		fmt.Fprintf(c, "<13>Nov 25 10:00:00 h t: before %d\n", i)
	}
	h.ringEvents(t, 100)
	stopped := make(chan struct{})
	go func() {
		h.cancel()
		<-h.done
		close(stopped)
	}()
	for i := range 100 {
		fmt.Fprintf(c, "<13>Nov 25 10:00:00 h t: during %d\n", i)
		if i%10 == 0 {
			time.Sleep(10 * time.Millisecond) // well below the 200ms quiet time
		}
	}
	select {
	case <-stopped:
		t.Fatal("the input stopped while its client was still sending")
	default:
	}
	c.Close()
	<-stopped
	evs := h.ringEvents(t, 100)
	for i := range evs {
		if want := fmt.Sprintf("during %d", i); string(evs[i].Syslog.Message) != want {
			t.Fatalf("event %d = %q, want %q", i, evs[i].Syslog.Message, want)
		}
	}
}

// testPKI is a CA with a server and a client certificate, as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

// tlsDial connects with the client certificate.
func tlsDial(addr net.Addr, pki *testPKI) (*tls.Conn, error) {
	return tls.Dial("tcp", addr.String(), &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}})
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trawl test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM("ca.crt", "CERTIFICATE", caDER)
	srvDER, srvKey := issue(2, "trawl", x509.ExtKeyUsageServerAuth)
	p.certFile = writePEM("server.crt", "CERTIFICATE", srvDER)
	kb, _ := x509.MarshalECPrivateKey(srvKey)
	p.keyFile = writePEM("server.key", "EC PRIVATE KEY", kb)
	cliDER, cliKey := issue(3, "client", x509.ExtKeyUsageClientAuth)
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	return p
}

func TestSyslogTLS(t *testing.T) {
	pki := newTestPKI(t)
	h := startSyslog(t, SyslogOptions{Protocol: SyslogTLS,
		TLS: &TLSFiles{CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile}}, nil)
	addr := h.in.Addr().String()

	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}})
	if err != nil {
		t.Fatal(err)
	}
	m := "<13>1 2026-11-25T10:00:00Z h app 9 - - over TLS"
	fmt.Fprintf(c, "%d %s%d %s", len(m), m, len(m), m)
	c.Close()
	evs := h.ringEvents(t, 2)
	checkSyslog(t, &evs[0], 0, 1, 5, "h", "app", "9", "over TLS")
	checkSyslog(t, &evs[1], 0, 1, 5, "h", "app", "9", "over TLS")

	// Refused: no client certificate, plain text, TLS 1.1.
	noCert, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool})
	if err == nil {
		// With TLS 1.3 the client learns of the refusal on its first read.
		fmt.Fprintf(noCert, "<13>hello\n")
		expectClosed(t, noCert)
		noCert.Close()
	}
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(plain, "<13>Nov 25 10:00:00 h t: plain text\n")
	expectClosed(t, plain)
	plain.Close()
	if old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client},
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		old.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	waitCounter(t, h.led.Errors(ErrTLSHandshake), 3, "tls_handshake errors")
	if n := h.pipe.ring.Len(); n != 0 {
		t.Fatalf("refused clients produced %d events", n)
	}
}

func TestSyslogUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log.sock")
	// A stale socket left by a crashed process is replaced.
	stale, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	stale.Close() // a unixgram socket leaves its file behind
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("expected a stale socket file: %v", err)
	}
	h := startSyslog(t, SyslogOptions{Protocol: SyslogUnix, Listen: path, MaxMessageBytes: 256}, nil)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o666 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket file: %v %v", fi.Mode(), err)
	}
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	long := "<13>" + strings.Repeat("x", 300)
	for _, m := range []string{"<13>Nov 25 10:00:00 su[33]: local message\n", long, ""} {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	evs := h.ringEvents(t, 2)
	checkSyslog(t, &evs[0], 0, 1, 5, "", "su", "33", "local message")
	if evs[0].Source.IsValid() {
		t.Errorf("a unix socket sender has no address, got %v", evs[0].Source)
	}
	if evs[1].Flags != event.FlagTruncated || string(evs[1].Syslog.Message) != long[4:256] {
		t.Errorf("long datagram: flags %b message %q", evs[1].Flags, evs[1].Syslog.Message)
	}

	// A live socket is not taken over, nor a file that is not a socket.
	set := metrics.NewSet()
	led := ledger.New(set).Input("x", "syslog")
	if _, err := newSyslogInput(SyslogOptions{Name: "x", Protocol: SyslogUnix, Listen: path, MaxMessageBytes: 256}, h.pipe, led, set, t.Logf); err == nil ||
		!strings.Contains(err.Error(), "another process serves") {
		t.Fatalf("second input on a live socket: %v", err)
	}
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o644)
	if _, err := newSyslogInput(SyslogOptions{Name: "x", Protocol: SyslogUnix, Listen: regular, MaxMessageBytes: 256}, h.pipe, led, set, t.Logf); err == nil ||
		!strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("input on a regular file: %v", err)
	}
	h.stop()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind after stop: %v", err)
	}
}
