//go:build linux

package audit_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trawlsec/trawl/audit"
	"github.com/trawlsec/trawl/audit/audittest"
	"github.com/trawlsec/trawl/event"
)

// These tests drive the running kernel (root only; skipped otherwise). Each
// leaves the audit state as it found it, which audittest.Kernel checks.

// TestKernel_ApplyRestore loads a rule set that deletes the rules already
// there and changes every setting, then checks Restore puts back the rule
// list (in order) and every setting.
func TestAuditKernel_ApplyRestore(t *testing.T) {
	ctl := audittest.Kernel(t)
	start, err := ctl.State()
	if err != nil {
		t.Fatal(err)
	}
	// Rules "someone else" loaded before trawl starts, in an order that
	// must survive.
	pre := audittest.Rules(t, fmt.Sprintf(`
-a always,exit -F arch=b64 -S chdir -F pid=%d -k pre-a
-a always,exit -F arch=b64 -S fchdir -F pid=%d -k pre-b
`, os.Getpid(), os.Getpid()))
	for _, r := range pre.Rules {
		if err := ctl.AddRule(r.Wire); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, r := range pre.Rules {
			ctl.DeleteRule(r.Wire)
		}
	})
	before, err := ctl.State()
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Rules) != len(start.Rules)+2 {
		t.Fatalf("%d rules after adding 2 to %d", len(before.Rules), len(start.Rules))
	}

	dir := t.TempDir()
	rs := audittest.Rules(t, fmt.Sprintf(`
-D
-b %d
-r %d
-f 0
--backlog_wait_time 7
-a always,exit -F arch=b64 -S execve -F ppid=%d -k exec
-w %s -p wa -k watch
-w %s/missing/dir/file -p wa -k missing
-a always,exit -F arch=b64 -S execve -F ppid=%d -k exec
`, before.BacklogLimit+123, before.RateLimit+7, os.Getpid(), dir, dir, os.Getpid()))
	s, err := ctl.Apply(rs, audit.ApplyOptions{Enable: true})
	if err != nil {
		t.Fatal(err)
	}
	// The watch under a missing directory and the duplicate are refused by
	// the kernel: warnings, not errors.
	if len(s.Warnings) != 2 || !strings.Contains(s.Warnings[0].Error(), "line 9") || !errors.Is(s.Warnings[1], os.ErrExist) {
		t.Fatalf("warnings %v", s.Warnings)
	}
	during, err := ctl.State()
	if err != nil {
		t.Fatal(err)
	}
	if during.Enabled != 1 || during.BacklogLimit != before.BacklogLimit+123 || during.RateLimit != before.RateLimit+7 ||
		during.Failure != 0 || (during.SupportsBacklogWaitTime() && during.BacklogWaitTime != 7) {
		t.Fatalf("status after Apply: %+v", during.Status)
	}
	if len(during.Rules) != 2 || len(s.Added()) != 2 {
		t.Fatalf("%d rules loaded after -D and 2 accepted rules (%d added)", len(during.Rules), len(s.Added()))
	}
	if err := ctl.Restore(s); err != nil {
		t.Fatal(err)
	}
	after, err := ctl.State()
	if err != nil {
		t.Fatal(err)
	}
	if d := audittest.Diff(before, after); d != "" {
		t.Fatalf("not restored: %s", d)
	}
}

// TestKernel_ZeroBacklogWait checks the default "never make a task wait"
// setting and its undoing.
func TestAuditKernel_ZeroBacklogWait(t *testing.T) {
	ctl := audittest.Kernel(t)
	st, err := ctl.Status()
	if err != nil {
		t.Fatal(err)
	}
	if !st.SupportsBacklogWaitTime() {
		t.Skip("kernel cannot set backlog_wait_time")
	}
	if st.BacklogWaitTime == 0 {
		t.Skip("backlog_wait_time is already 0 here")
	}
	s, err := ctl.Apply(&audit.Rules{}, audit.ApplyOptions{ZeroBacklogWait: true})
	if err != nil {
		t.Fatal(err)
	}
	if during, _ := ctl.Status(); during.BacklogWaitTime != 0 || during.Enabled != st.Enabled {
		t.Fatalf("during: %+v", during)
	}
	if err := ctl.Restore(s); err != nil {
		t.Fatal(err)
	}
}

// events reads records from conn until want returns true for an event or
// the deadline passes; it returns every event seen, normalised.
func readEvents(t *testing.T, conn *audit.Conn, d time.Duration, want func(*event.Event) bool) []event.Event {
	t.Helper()
	var (
		out   []event.Event
		found bool
		n     = audit.NewNormalizer(audit.NewNames())
		ev    event.Event
		msgs  []audit.Msg
	)
	r := audit.NewReassembler(audit.ReassemblerOptions{Timeout: 200 * time.Millisecond}, func(m *audit.Message) {
		n.Fill(&ev, m)
		// Keep a copy: the event aliases buffers that are reused.
		buf := event.AppendBinary(nil, &ev)
		var c event.Event
		if err := event.DecodeBinary(&c, buf); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
		if want(&c) {
			found = true
		}
	})
	deadline := time.Now().Add(d)
	for !found && time.Now().Before(deadline) {
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var err error
		msgs, _, err = conn.Read(msgs)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v", err)
		}
		now := time.Now()
		for _, m := range msgs {
			r.Push(m.Type, m.Data, now)
		}
		r.Flush(now)
	}
	r.FlushAll()
	if !found {
		t.Fatalf("the expected event did not come in %v; saw %d events", d, len(out))
	}
	return out
}

func find(evs []event.Event, pred func(*event.Audit) bool) *event.Audit {
	for i := range evs {
		if pred(&evs[i].Audit) {
			return &evs[i].Audit
		}
	}
	return nil
}

// TestKernel_UnicastEvents makes this test process the audit daemon, loads
// rules limited to its children, runs an exec with a unique argument, a
// TCP connect to 127.0.0.1 and a chmod on a watched file, and checks the
// events and their fields.
func TestAuditKernel_UnicastEvents(t *testing.T) {
	ctl := audittest.Kernel(t)
	conn := audittest.Daemon(t, ctl)
	if st, err := ctl.Status(); err != nil || st.PID != uint32(os.Getpid()) {
		t.Fatalf("after Register the audit PID is %d (err %v), want %d", st.PID, err, os.Getpid())
	}
	dir := t.TempDir()
	watched := filepath.Join(dir, "watched.conf")
	if err := os.WriteFile(watched, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	s := audittest.Apply(t, ctl, fmt.Sprintf(`
-a always,exit -F arch=b64 -S execve -F ppid=%[1]d -k exec
-a always,exit -F arch=b64 -S connect -F saddr_fam=2 -F ppid=%[1]d -k network_connect
-w %[2]s -p wa -k identity
`, me, watched), audit.ApplyOptions{Enable: true, ZeroBacklogWait: true})
	if len(s.Warnings) > 0 {
		t.Fatal(s.Warnings)
	}

	unique := "trawl-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	echo := audittest.Run(t, dir, "/bin/echo", unique, "two words")
	connector, port := audittest.Connect(t)
	chmod := audittest.Run(t, dir, "/bin/chmod", "0644", "watched.conf")

	evs := readEvents(t, conn, 10*time.Second, func(e *event.Event) bool {
		return string(e.Audit.Action) == "changed-file-permissions"
	})

	ex := find(evs, func(a *event.Audit) bool {
		return slices.ContainsFunc(a.Args, func(b []byte) bool { return string(b) == unique })
	})
	if ex == nil {
		t.Fatalf("no exec event with %q among %d events", unique, len(evs))
	}
	if string(ex.Action) != "executed" || string(ex.Syscall) != "execve" || ex.PID != uint32(echo.Pid()) ||
		ex.PPID != uint32(me) || ex.UID != 0 || string(ex.UserName) != "root" || string(ex.Key) != "exec" ||
		string(ex.Result) != "success" || string(ex.Cwd) != dir || len(ex.Args) != 3 || string(ex.Args[0]) != "/bin/echo" ||
		string(ex.Args[2]) != "two words" || string(ex.Title) != "/bin/echo "+unique+" two words" ||
		!strings.HasSuffix(string(ex.Exe), "/echo") || string(ex.Comm) != "echo" {
		t.Fatalf("exec event: %+v", *ex)
	}

	cn := find(evs, func(a *event.Audit) bool { return a.PID == uint32(connector) && string(a.Action) == "connected-to" })
	if cn == nil {
		t.Fatalf("no connect event from pid %d among %d events", connector, len(evs))
	}
	if cn.DstAddr.String() != fmt.Sprintf("127.0.0.1:%d", port) || string(cn.Syscall) != "connect" ||
		string(cn.Key) != "network_connect" || string(cn.Comm) != "bash" || cn.PPID != uint32(me) {
		t.Fatalf("connect event: %+v", *cn)
	}

	ch := find(evs, func(a *event.Audit) bool { return string(a.Action) == "changed-file-permissions" })
	if ch.PID != uint32(chmod.Pid()) || string(ch.FilePath) != watched || string(ch.Key) != "identity" ||
		string(ch.Comm) != "chmod" || !strings.HasPrefix(string(ch.Syscall), "fchmod") {
		t.Fatalf("chmod event: %+v", *ch)
	}
	for _, e := range evs {
		if !strings.HasPrefix(string(e.Audit.Raw), "type=") || e.Time == 0 || e.Audit.Sequence == 0 {
			t.Fatalf("event without raw records, time or serial: %+v", e.Audit)
		}
	}
}

// TestKernel_MulticastBesideDaemon reads the multicast copy while this
// process is also the unicast daemon (as auditd would be), and checks both
// see the same exec.
func TestAuditKernel_MulticastBesideDaemon(t *testing.T) {
	ctl := audittest.Kernel(t)
	uni := audittest.Daemon(t, ctl)
	multi, err := audit.Dial(audit.Multicast, audit.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer multi.Close()
	audittest.Apply(t, ctl, audittest.ExecRule(), audit.ApplyOptions{Enable: true})
	unique := "trawl-multicast-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	audittest.Run(t, "", "/bin/true", unique)
	has := func(e *event.Event) bool {
		return slices.ContainsFunc(e.Audit.Args, func(b []byte) bool { return string(b) == unique })
	}
	mu := find(readEvents(t, multi, 10*time.Second, has), func(a *event.Audit) bool { return len(a.Args) == 2 })
	un := find(readEvents(t, uni, 10*time.Second, has), func(a *event.Audit) bool { return len(a.Args) == 2 })
	if mu == nil || un == nil || mu.Sequence != un.Sequence || mu.PID != un.PID || string(mu.Raw) != string(un.Raw) {
		t.Fatalf("multicast %+v\nunicast %+v", mu, un)
	}
}

// TestAuditKernel_DeadHolder: a process that registered and died without
// giving up the PID leaves it set until the kernel next fails to reach it;
// ClearPID from anyone clears it then.
func TestAuditKernel_DeadHolder(t *testing.T) {
	ctl := audittest.Kernel(t)
	holder, exited := audittest.StartHolder(t)
	if st, _ := ctl.Status(); st.PID != uint32(holder.Process.Pid) {
		t.Fatalf("holder %d registered, status says %d", holder.Process.Pid, st.PID)
	}
	if !audit.ProcessAlive(uint32(holder.Process.Pid)) {
		t.Fatal("ProcessAlive says the holder is dead")
	}
	// Another registration is refused while the holder lives.
	conn, err := audit.Dial(audit.Unicast, audit.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Register()
	if st, _ := ctl.Status(); st.PID != uint32(holder.Process.Pid) {
		t.Fatalf("a second registration took the PID from a live holder: %d", st.PID)
	}
	holder.Process.Kill()
	<-exited
	if audit.ProcessAlive(uint32(holder.Process.Pid)) {
		t.Fatal("ProcessAlive says the killed holder lives")
	}
	if st, _ := ctl.Status(); st.PID != uint32(holder.Process.Pid) {
		t.Fatalf("the kernel let go of the dead holder's PID by itself (%d); the test cannot check ClearPID", st.PID)
	}
	if err := ctl.ClearPID(); err != nil {
		t.Fatal(err)
	}
	if st, _ := ctl.Status(); st.PID != 0 {
		t.Fatalf("PID %d still set after the holder died and ClearPID", st.PID)
	}
}

// TestHelperAuditHolder is not a test: audittest.StartHolder runs it in a
// child process.
func TestHelperAuditHolder(t *testing.T) { audittest.HolderMain(t) }
