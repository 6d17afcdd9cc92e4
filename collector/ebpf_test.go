package collector

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/audit"
	"github.com/trawlsec/trawl/bpf"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/ledger"
)

func needEBPF(t testing.TB) {
	t.Helper()
	if !bpf.Supported {
		t.Skip("eBPF tracing is not built for this platform")
	}
	if err := bpf.Check(); err != nil {
		t.Skipf("eBPF tracing unavailable here: %v", err)
	}
}

// testEBPF is an ebpf input whose pipeline has a ring but no framer:
// tests read the ring directly.
type testEBPF struct {
	in   *EBPFInput
	pipe *pipeline
	led  *ledger.Input
	logs *lineLog
}

// lineLog collects log lines.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func newTestEBPF(t *testing.T, opts bpf.Options) *testEBPF {
	t.Helper()
	set := metrics.NewSet()
	led := ledger.New(set).Input("ebpf", "ebpf")
	pipe, err := newPipeline(pipelineConfig{name: "ebpf", kind: event.KindProcess, policy: DropNewest, ringSlots: 1 << 16,
		limits: frame.DefaultBatchLimits()}, nil, led, set.NewCounter("spool"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lineLog{}
	in := newEBPFInput(EBPFOptions{Name: "ebpf", Tracer: opts}, pipe, led, set, logs.logf)
	t.Cleanup(func() { in.Close() })
	return &testEBPF{in: in, pipe: pipe, led: led, logs: logs}
}

// find drains the ring until an event matches, for up to 5 seconds.
func (te *testEBPF) find(t *testing.T, what string, match func(*event.Event) bool) *event.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		recs := te.pipe.ring.Peek(nil, te.pipe.ring.Cap())
		for i, rec := range recs {
			ev := &event.Event{}
			if err := event.DecodeBinary(ev, append([]byte(nil), rec...)); err != nil {
				t.Fatalf("ring holds an undecodable event: %v", err)
			}
			if match(ev) {
				te.pipe.ring.Release(i + 1)
				return ev
			}
		}
		te.pipe.ring.Release(len(recs))
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s within 5s", what)
	return nil
}

func TestEBPFInput(t *testing.T) {
	needEBPF(t)
	te := newTestEBPF(t, bpf.Options{Process: true, Network: true, IncludeSelf: true})
	if !te.in.Running() {
		t.Fatalf("input is off: %q", te.logs.lines)
	}
	if len(te.logs.lines) != 1 || !strings.Contains(te.logs.lines[0], "input ebpf: tracing process exec/exit and TCP connections with") {
		t.Fatalf("start-up log %q", te.logs.lines)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- te.in.Run(ctx, context.Background()) }()

	tok := fmt.Sprintf("trawl-collector-ebpf-%d", time.Now().UnixNano())
	cmd := exec.Command("/bin/echo", tok)
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	ex := te.find(t, "exec event", func(ev *event.Event) bool {
		return ev.Kind == event.KindProcess && ev.Process.Action == event.ProcessExec && int(ev.Process.PID) == cmd.Process.Pid
	})
	p := &ex.Process
	if int(p.PPID) != os.Getpid() || string(p.Comm) != "echo" || string(p.Filename) != "/bin/echo" ||
		len(p.Args) != 2 || string(p.Args[1]) != tok || ex.RecvTime < ex.Time || ex.RecvTime-ex.Time > int64(5*time.Second) {
		t.Fatalf("exec event %s", event.AppendJSON(nil, ex))
	}
	// Enriched on this host: the parent (this test binary, from /proc) and
	// the user's name.
	self, _ := os.Executable()
	uname := ""
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		uname = u.Username
	}
	if string(p.ParentExe) != self || string(p.UserName) != uname {
		t.Fatalf("exec event %s: want parent executable %s, user name %q", event.AppendJSON(nil, ex), self, uname)
	}

	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	conn, err := net.Dial("tcp6", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	conn.Close()
	te.find(t, "connect event", func(ev *event.Event) bool {
		return ev.Kind == event.KindNetwork && ev.Network.Action == event.NetworkConnect && ev.Network.Src == local &&
			ev.Network.Dst == ln.Addr().(*net.TCPAddr).AddrPort() && int(ev.Network.PID) == os.Getpid()
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	if te.led.Received.Get() < 2 || te.led.ReceivedBytes.Get() == 0 {
		t.Fatalf("ledger received %d events, %d bytes", te.led.Received.Get(), te.led.ReceivedBytes.Get())
	}
	snap := te.led.UpstreamLost("bpf_ringbuf_full")
	if snap.Get() != 0 {
		t.Fatalf("ring buffer losses %d with a reader running", snap.Get())
	}
}

// TestEBPFInputCountsRingbufFull leaves a one-page ring buffer unread and
// expects the kernel's drops in the ledger as upstream loss.
func TestEBPFInputCountsRingbufFull(t *testing.T) {
	needEBPF(t)
	te := newTestEBPF(t, bpf.Options{Process: true, RingBytes: 4096})
	if !te.in.Running() {
		t.Fatalf("input is off: %q", te.logs.lines)
	}
	for i := 0; i < 100; i++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Fatal(err)
		}
	}
	te.in.readStats()
	if got := te.led.UpstreamLost("bpf_ringbuf_full").Get(); got == 0 {
		t.Fatal("no bpf_ringbuf_full loss after 200 records into 4 KiB")
	}
}

// TestEBPFInputOff: when the tracer cannot start, the input logs one line
// and Run returns at once.
func TestEBPFInputOff(t *testing.T) {
	te := newTestEBPF(t, bpf.Options{}) // nothing to trace: Open refuses
	if te.in.Running() {
		t.Fatal("input runs with nothing to trace")
	}
	if len(te.logs.lines) != 1 || !strings.Contains(te.logs.lines[0], "input ebpf: eBPF tracing is off: ") {
		t.Fatalf("log %q, want one line saying the input is off", te.logs.lines)
	}
	if err := te.in.Run(context.Background(), context.Background()); err != nil {
		t.Fatalf("Run of an input that is off: %v", err)
	}
}

// TestEBPFNode runs a node from configuration with an ebpf input and a
// file sink, and finds an exec as ECS JSON in the file.
func TestEBPFNode(t *testing.T) {
	needEBPF(t)
	out, logs := runSinkNode(t, `
  trace: {type: ebpf, network: false, exclude_comms: ["true"]}
`)

	tok := fmt.Sprintf("trawl-node-ebpf-%d", time.Now().UnixNano())
	echo := exec.Command("/bin/echo", tok)
	echo.Stdout = io.Discard
	if err := echo.Run(); err != nil {
		t.Fatal(err)
	}
	denied := exec.Command("/bin/true", tok)
	if err := denied.Run(); err != nil {
		t.Fatal(err)
	}
	type ecs struct {
		Event struct {
			Module, Action string
		}
		Process struct {
			PID        int
			Name       string
			Executable string
			Args       []string
			Parent     struct{ PID int }
		}
		Trawl struct{ Input string }
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var found *ecs
		for _, e := range sinkEvents[ecs](t, out, tok) {
			if e.Process.Name == "true" {
				t.Fatalf("an excluded comm was reported: %+v", e)
			}
			if e.Event.Action == "exec" && e.Process.PID == echo.Process.Pid {
				found = &e
			}
		}
		if found != nil {
			e := found
			if e.Event.Module != "ebpf" || e.Process.Name != "echo" || e.Process.Executable != "/bin/echo" ||
				e.Process.Parent.PID != os.Getpid() || len(e.Process.Args) != 2 || e.Process.Args[1] != tok || e.Trawl.Input != "trace" {
				t.Fatalf("exec as JSON: %+v", e)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exec of %s never reached the file sink; node log:\n%s", tok, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNameMemo checks the eBPF input's memo of user and group names: the
// same id within nameMemoFor is answered without asking Names again;
// another id, a later time, or a clock stepped back asks again. The memo
// allocates nothing.
func TestNameMemo(t *testing.T) {
	calls := 0
	names := map[uint32][]byte{0: []byte("root"), 1000: []byte("alice")}
	lookup := func(id uint32, _ time.Time) []byte {
		calls++
		return names[id]
	}
	var m nameMemo
	f := func(id uint32, now int64, want string, wantCalls int) {
		t.Helper()
		if got := m.get(id, now, lookup); string(got) != want || calls != wantCalls {
			t.Fatalf("get(%d, %d) = %q after %d lookups, want %q after %d", id, now, got, calls, want, wantCalls)
		}
	}
	const s = int64(time.Second)
	f(0, 10*s, "root", 1)
	f(0, 10*s+s/2, "root", 1)     // memoised
	f(1000, 10*s+s/2, "alice", 2) // another id
	f(1000, 11*s+s/2, "alice", 3) // expired
	f(1000, 9*s, "alice", 4)      // the clock went back
	f(7, 9*s, "", 5)              // no name
	f(7, 9*s+1, "", 5)

	dir := t.TempDir()
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	for file, text := range map[string]string{passwd: "root:x:0:0:root:/root:/bin/sh\n", group: "root:x:0:\n"} {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// 50 calls 0.1s apart: the memo asks Names 5 times, within Names'
	// own 10s between checks of its files (a reload allocates).
	an := &audit.Names{PasswdFile: passwd, GroupFile: group}
	now := time.Now().UnixNano()
	if n := testing.AllocsPerRun(50, func() {
		if string(m.get(0, now, an.User)) != "root" {
			t.Fatal("root not found")
		}
		now += s / 10
	}); n != 0 {
		t.Fatalf("nameMemo.get allocates %v times", n)
	}
}
