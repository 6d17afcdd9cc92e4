//go:build linux

// Package audittest is shared by the tests that drive the real kernel's
// audit subsystem (packages audit and collector). The audit PID and rule
// list are global to the machine, so those tests take a lock held across
// test binaries, and each checks at the end that it left the audit state
// exactly as it found it.
package audittest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trawlsec/trawl/audit"
)

// lockPath is the file whose flock serialises audit tests of every test
// binary on the machine (go test runs packages in parallel).
var lockPath = filepath.Join(os.TempDir(), "trawl-audit-test.lock")

// Kernel prepares a test that uses the kernel's audit subsystem. It skips
// the test when the process is not root, when the kernel has no audit
// support, or when another process (auditd) holds the audit PID; it waits
// for other audit tests on the machine; and it registers a cleanup that
// fails the test unless the audit status (enabled, failure, pid, rate and
// backlog limits, backlog_wait_time) and the rule list are what they were
// at the start. The cleanup then repairs what it can, so one failing test
// does not break the next or leave the PID set to a dead process.
func Kernel(t testing.TB) *audit.Control {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_AUDIT_CONTROL) to drive the kernel's audit subsystem")
	}
	ctl, err := audit.OpenControl()
	if errors.Is(err, audit.ErrUnsupported) || errors.Is(err, audit.ErrPermission) {
		t.Skipf("kernel audit not usable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	unlock := lock(t)
	before, err := ctl.State()
	if err != nil {
		unlock()
		ctl.Close()
		t.Fatal(err)
	}
	if before.PID != 0 && audit.ProcessAlive(before.PID) {
		unlock()
		ctl.Close()
		t.Skipf("the audit PID is held by process %d (%s); these tests need the audit daemon stopped", before.PID, comm(before.PID))
	}
	t.Cleanup(func() {
		defer ctl.Close()
		defer unlock()
		after, err := ctl.State()
		if err != nil {
			t.Errorf("cannot read the audit state after the test: %v", err)
			return
		}
		if diff := Diff(before, after); diff != "" {
			t.Errorf("the test left the audit state changed: %s", diff)
			repair(t, ctl, before, after)
		}
	})
	return ctl
}

// Diff describes how two audit states differ in what trawl may change,
// or returns "" when they are the same.
func Diff(a, b audit.State) string {
	var d []string
	f := func(name string, x, y uint32) {
		if x != y {
			d = append(d, fmt.Sprintf("%s %d → %d", name, x, y))
		}
	}
	f("enabled", a.Enabled, b.Enabled)
	f("failure", a.Failure, b.Failure)
	f("pid", a.PID, b.PID)
	f("rate_limit", a.RateLimit, b.RateLimit)
	f("backlog_limit", a.BacklogLimit, b.BacklogLimit)
	f("backlog_wait_time", a.BacklogWaitTime, b.BacklogWaitTime)
	if len(a.Rules) != len(b.Rules) {
		d = append(d, fmt.Sprintf("%d rules → %d", len(a.Rules), len(b.Rules)))
	} else {
		for i := range a.Rules {
			if !bytes.Equal(a.Rules[i], b.Rules[i]) {
				d = append(d, fmt.Sprintf("rule %d differs", i))
			}
		}
	}
	return strings.Join(d, ", ")
}

// repair puts the state back after a test that did not.
func repair(t testing.TB, ctl *audit.Control, before, after audit.State) {
	if after.PID != 0 && after.PID != before.PID {
		if err := ctl.ClearPID(); err != nil {
			t.Errorf("repair: %v", err)
		}
	}
	if err := ctl.RestoreAll(before); err != nil {
		t.Errorf("repair: %v", err)
	}
}

// lock takes the machine-wide audit test lock, waiting for it.
func lock(t testing.TB) func() {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("cannot open the audit test lock: %v", err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("cannot take the audit test lock %s: %v", lockPath, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() { f.Close() }
}

func comm(pid uint32) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// Rules parses an audit rule file's text (auditctl syntax), failing the
// test if it does not parse.
func Rules(t testing.TB, text string) *audit.Rules {
	t.Helper()
	rs, err := audit.ParseRules(strings.NewReader(text))
	if err != nil {
		t.Fatalf("cannot parse audit rules %q: %v", text, err)
	}
	return rs
}

// ExecRule is an audit rule, keyed exec, for every execve of a child of
// the test process: what a test starts with [Run] is audited, and nothing
// else on the machine.
func ExecRule() string {
	return fmt.Sprintf("-a always,exit -F arch=b64 -S execve -F ppid=%d -k exec\n", os.Getpid())
}

// Apply loads the rules of text with ctl and opts, failing the test on an
// error, and registers a cleanup that restores the rules and status as
// they were before.
func Apply(t testing.TB, ctl *audit.Control, text string, opts audit.ApplyOptions) *audit.Session {
	t.Helper()
	s, err := ctl.Apply(Rules(t, text), opts)
	if err != nil {
		t.Fatalf("cannot apply audit rules: %v", err)
	}
	t.Cleanup(func() {
		if err := ctl.Restore(s); err != nil {
			t.Errorf("cannot restore the audit rules: %v", err)
		}
	})
	return s
}

// Daemon makes the test process the audit daemon, as auditd would be: it
// opens a unicast audit socket and registers it, failing the test if it
// cannot. The test reads the socket or, to play a daemon that does not,
// leaves it alone. A cleanup gives the audit PID up and closes the socket.
func Daemon(t testing.TB, ctl *audit.Control) *audit.Conn {
	t.Helper()
	conn, err := audit.Dial(audit.Unicast, audit.ConnOptions{})
	if err != nil {
		t.Fatalf("cannot open a unicast audit socket: %v", err)
	}
	if err := conn.Register(); err != nil {
		conn.Close()
		t.Fatalf("cannot register as the audit daemon: %v", err)
	}
	t.Cleanup(func() {
		if err := ctl.ClearPID(); err != nil {
			t.Errorf("cannot give up the audit PID: %v", err)
		}
		conn.Close()
	})
	return conn
}

// Run runs a command as a child of the test process and fails the test if
// it cannot start. The audit daemon's own syscalls are not audited by the
// kernel, so what a test wants to see must happen in a child. Its exit
// status is returned, not checked: some commands are meant to fail.
func Run(t testing.TB, dir string, name string, args ...string) *os.ProcessState {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot run %s: %v", name, err)
	}
	cmd.Wait()
	return cmd.ProcessState
}

// Connect listens on a free TCP port of 127.0.0.1 (until the test ends)
// and makes a child process connect to it with bash's /dev/tcp. It returns
// the child's pid and the port, which the audit records of the connect
// name.
func Connect(t testing.TB) (pid, port int) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash for /dev/tcp connections from a child process")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen for the connect: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	port = ln.Addr().(*net.TCPAddr).Port
	return Run(t, "", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", port)).Pid(), port
}

// holderEnv marks the child StartHolder runs.
const holderEnv = "TRAWL_AUDIT_HOLDER"

// StartHolder starts a child process that registers as the audit daemon
// (an auditd stand-in) and holds the PID without reading until it is
// signalled. It re-runs the test binary: the calling package must have a
// test named TestHelperAuditHolder that calls [HolderMain]. The child is
// reaped as soon as it exits (a zombie still counts as alive for kill(2));
// at the end of the test it is killed and the kernel made to forget it.
// done is closed once it has exited.
func StartHolder(t testing.TB) (cmd *exec.Cmd, done <-chan struct{}) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^TestHelperAuditHolder$")
	cmd.Env = append(os.Environ(), holderEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	buf := make([]byte, 6)
	_, rerr := io.ReadFull(out, buf)
	go func() {
		cmd.Wait()
		close(ch)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-ch
		// The kernel forgets a dead daemon only when asked for the PID.
		if ctl, err := audit.OpenControl(); err == nil {
			if st, err := ctl.Status(); err == nil && st.PID == uint32(cmd.Process.Pid) {
				if err := ctl.ClearPID(); err != nil {
					t.Errorf("clear the dead holder's audit PID: %v", err)
				}
			}
			ctl.Close()
		}
	})
	if rerr != nil || string(buf) != "ready\n" {
		t.Fatalf("audit PID holder did not register: %q %v", buf, rerr)
	}
	return cmd, ch
}

// HolderMain is the body of the child StartHolder runs; in a normal test
// run it skips.
func HolderMain(t *testing.T) {
	if os.Getenv(holderEnv) != "1" {
		t.Skip("helper process for audittest.StartHolder")
	}
	conn, err := audit.Dial(audit.Unicast, audit.ConnOptions{ReadBuffer: 1 << 16})
	if err == nil {
		err = conn.Register()
	}
	if err != nil {
		fmt.Println("cannot register:", err)
		os.Exit(1)
	}
	fmt.Print("ready\n")
	// Hold the PID without reading, like a hung daemon, until a signal
	// ends the process (SIGTERM's default action).
	for {
		syscall.Pause()
	}
}
