//go:build linux

package collector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/audit"
	"github.com/trawlsec/trawl/audit/audittest"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/ledger"
)

// These tests run the audit input against the running kernel (root only;
// skipped otherwise). audittest.Kernel fails a test that leaves the audit
// status or rule list changed.

// runningAudit is an AuditInput running in a test, with a pipeline whose
// ring the test reads.
type runningAudit struct {
	in     *AuditInput
	pipe   *pipeline
	led    *ledger.Input
	cancel context.CancelFunc
	done   chan error
	seen   []event.Event
}

func newTestAudit(t *testing.T, opts AuditOptions) (*AuditInput, *pipeline, *ledger.Input, error) {
	t.Helper()
	set := metrics.NewSet()
	led := ledger.New(set).Input(opts.Name, "audit")
	pipe, err := newPipeline(pipelineConfig{name: opts.Name, kind: event.KindAudit, policy: DropNewest, ringSlots: 1 << 14,
		limits: frame.DefaultBatchLimits()}, nil, led, set.NewCounter("spool"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newAuditInput(opts, pipe, led, set, t.Logf)
	return in, pipe, led, err
}

// startAudit starts the input and waits until it has loaded wantRules
// rules (unicast) or is reading (multicast).
func startAudit(t *testing.T, ctl *audit.Control, opts AuditOptions, wantRules int) *runningAudit {
	t.Helper()
	in, pipe, led, err := newTestAudit(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningAudit{in: in, pipe: pipe, led: led, cancel: cancel, done: make(chan error, 1)}
	go func() { ra.done <- in.Run(ctx, context.Background()) }()
	t.Cleanup(func() { ra.stop(t) })
	if opts.Mode == audit.Multicast {
		time.Sleep(100 * time.Millisecond) // the socket is already bound; let the goroutines start
		return ra
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := ctl.State()
		if err != nil {
			t.Fatal(err)
		}
		if st.PID == uint32(os.Getpid()) && len(st.Rules) == wantRules && st.Enabled == 1 {
			return ra
		}
		if time.Now().After(deadline) {
			t.Fatalf("input did not start: pid %d, %d rules, enabled %d", st.PID, len(st.Rules), st.Enabled)
		}
		select {
		case err := <-ra.done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop ends Run and checks it returned no error.
func (ra *runningAudit) stop(t *testing.T) {
	if ra.cancel == nil {
		return
	}
	ra.cancel()
	ra.cancel = nil
	select {
	case err := <-ra.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// waitFor reads events from the pipeline ring until pred holds for one.
func (ra *runningAudit) waitFor(t *testing.T, what string, pred func(*event.Audit) bool) *event.Audit {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ra.seen = append(ra.seen, ringAudits(t, ra.pipe)...)
		for i := range ra.seen {
			if pred(&ra.seen[i].Audit) {
				return &ra.seen[i].Audit
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event among %d events", what, len(ra.seen))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasArg(a *event.Audit, s string) bool {
	return slices.ContainsFunc(a.Args, func(b []byte) bool { return string(b) == s })
}

// TestAuditInput_Unicast runs the input as the audit daemon with rules
// limited to this test's children: an exec with a unique argument, a TCP
// connect to 127.0.0.1 and a chmod on a watched file must come out as
// events with the right fields, and the audit state must be as before once
// the input stops.
func TestAuditInput_Unicast(t *testing.T) {
	ctl := audittest.Kernel(t)
	dir := t.TempDir()
	watched := filepath.Join(dir, "sudoers")
	if err := os.WriteFile(watched, []byte("root ALL=(ALL) ALL\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	ra := startAudit(t, ctl, AuditOptions{Name: "audit", Mode: audit.Unicast, Rules: audittest.Rules(t, fmt.Sprintf(`
-D
-b 8192
-a always,exit -F arch=b64 -S execve,execveat -F ppid=%[1]d -k exec
-a always,exit -F arch=b64 -S connect -F saddr_fam=2 -F ppid=%[1]d -k network_connect
-w %[2]s -p wa -k sudoers
`, me, watched))}, 3)

	unique := "trawl-input-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	echo := audittest.Run(t, dir, "/bin/echo", unique, "second arg")
	connector, port := audittest.Connect(t)
	chmod := audittest.Run(t, dir, "/bin/chmod", "0640", watched)

	ex := ra.waitFor(t, "exec", func(a *event.Audit) bool { return hasArg(a, unique) })
	if string(ex.Action) != "executed" || ex.PID != uint32(echo.Pid()) || ex.PPID != uint32(me) || ex.UID != 0 ||
		string(ex.UserName) != "root" || ex.GID != 0 || string(ex.GroupName) != "root" || string(ex.Key) != "exec" ||
		len(ex.Args) != 3 || string(ex.Args[2]) != "second arg" || string(ex.Title) != "/bin/echo "+unique+" second arg" ||
		string(ex.Cwd) != dir || string(ex.Comm) != "echo" || !strings.Contains(string(ex.Raw), "type=EXECVE msg=audit(") {
		t.Fatalf("exec event: %+v", *ex)
	}
	cn := ra.waitFor(t, "connect", func(a *event.Audit) bool { return a.PID == uint32(connector) && string(a.Action) == "connected-to" })
	if cn.DstAddr.String() != fmt.Sprintf("127.0.0.1:%d", port) || string(cn.Key) != "network_connect" || string(cn.Result) != "success" {
		t.Fatalf("connect event: %+v", *cn)
	}
	ch := ra.waitFor(t, "chmod", func(a *event.Audit) bool { return string(a.Action) == "changed-file-permissions" })
	if ch.PID != uint32(chmod.Pid()) || string(ch.FilePath) != watched || string(ch.Key) != "sudoers" {
		t.Fatalf("chmod event: %+v", *ch)
	}
	ra.stop(t)

	if ra.led.Received.Get() < 4 || ra.in.ringDrop.Get() != 0 || ra.in.overruns.Get() != 0 {
		t.Fatalf("ledger: received %d, reader ring drops %d, overruns %d", ra.led.Received.Get(), ra.in.ringDrop.Get(), ra.in.overruns.Get())
	}
	if lost := ra.in.kernelLostC.Get(); lost != 0 {
		t.Errorf("the kernel lost %d records at this trickle", lost)
	}
}

// TestAuditInput_Busy: a live audit daemon makes a unicast input refuse,
// unless take_over is set; then the input stops it and takes its place.
func TestAuditInput_Busy(t *testing.T) {
	ctl := audittest.Kernel(t)
	holder, exited := audittest.StartHolder(t)
	_, _, _, err := newTestAudit(t, AuditOptions{Name: "audit", Mode: audit.Unicast, Rules: &audit.Rules{}})
	if !errors.Is(err, ErrAuditBusy) || !strings.Contains(err.Error(), strconv.Itoa(holder.Process.Pid)) ||
		!strings.Contains(err.Error(), "take_over") {
		t.Fatalf("newAuditInput beside a live daemon: %v", err)
	}
	// Multicast reads beside it.
	in, _, _, err := newTestAudit(t, AuditOptions{Name: "audit", Mode: audit.Multicast})
	if err != nil {
		t.Fatalf("multicast beside a live daemon: %v", err)
	}
	in.Close()

	rules := audittest.Rules(t, audittest.ExecRule())
	ra := startAudit(t, ctl, AuditOptions{Name: "audit", Mode: audit.Unicast, TakeOver: true, Rules: rules}, 1)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("take_over did not stop the holder")
	}
	unique := "trawl-takeover-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	audittest.Run(t, "", "/bin/true", unique)
	ra.waitFor(t, "exec", func(a *event.Audit) bool { return hasArg(a, unique) })
	ra.stop(t)
	if st, _ := ctl.Status(); st.PID != 0 {
		t.Fatalf("PID %d after the input stopped", st.PID)
	}
}

// TestAuditInput_Multicast reads beside a unicast daemon (this test plays
// auditd with a registered socket it never reads) and changes nothing.
func TestAuditInput_Multicast(t *testing.T) {
	ctl := audittest.Kernel(t)
	audittest.Daemon(t, ctl) // registered, never read
	audittest.Apply(t, ctl, audittest.ExecRule(), audit.ApplyOptions{Enable: true})
	before, err := ctl.State()
	if err != nil {
		t.Fatal(err)
	}

	ra := startAudit(t, ctl, AuditOptions{Name: "audit-mc", Mode: audit.Multicast}, 0)
	unique := "trawl-mc-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	audittest.Run(t, "", "/bin/true", unique)
	ev := ra.waitFor(t, "exec", func(a *event.Audit) bool { return hasArg(a, unique) })
	if string(ev.Key) != "exec" || string(ev.Action) != "executed" {
		t.Fatalf("multicast event %+v", *ev)
	}
	ra.stop(t)
	after, err := ctl.State()
	if err != nil {
		t.Fatal(err)
	}
	if d := audittest.Diff(before, after); d != "" {
		t.Fatalf("a multicast input changed the audit state: %s", d)
	}
}

// TestHelperAuditHolder is not a test: audittest.StartHolder runs it in a
// child process.
func TestHelperAuditHolder(t *testing.T) { audittest.HolderMain(t) }

// TestAuditInput_NodeStaysOff: a node whose audit input cannot run (here
// because another daemon holds the audit PID) logs one line and runs
// without it, as the default configuration needs on hosts with auditd or
// without root.
func TestAuditInput_NodeStaysOff(t *testing.T) {
	ctl := audittest.Kernel(t)
	audittest.StartHolder(t)
	var logs strings.Builder
	n := newNode(t, fmt.Sprintf("node: {data_dir: %s}\nhttp: {listen: ''}\ninputs:\n  audit: {type: audit}\n", t.TempDir()), &logs)
	defer n.closeAll()
	if len(n.inputs) != 0 || !strings.Contains(logs.String(), "another audit daemon holds the audit PID") ||
		!strings.Contains(logs.String(), "the input stays off") || strings.Count(logs.String(), "\n") != 1 {
		t.Fatalf("%d inputs; log:\n%s", len(n.inputs), logs.String())
	}
	if st, _ := ctl.Status(); st.PID == uint32(os.Getpid()) {
		t.Fatal("the node took the audit PID")
	}
}
