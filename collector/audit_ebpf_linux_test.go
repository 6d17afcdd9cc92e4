//go:build linux

package collector

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/trawlsec/trawl/audit/audittest"
)

// TestAuditAndEBPFSeeTheSameExec runs a node with both the audit input (an
// execve rule for this test's children) and the eBPF input, executes
// /bin/echo with a unique argument, and finds the exec once from each
// input in the file sink, with the same pid, parent (pid, name and
// executable, from the process cache the inputs share) and arguments.
func TestAuditAndEBPFSeeTheSameExec(t *testing.T) {
	needEBPF(t)
	audittest.Kernel(t) // root, a usable audit subsystem, and the cross-binary lock
	dir := t.TempDir()
	rules := filepath.Join(dir, "exec.rules")
	me := os.Getpid()
	if err := os.WriteFile(rules, []byte("-D\n"+audittest.ExecRule()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, logs := runSinkNode(t, fmt.Sprintf(`
  audit: {type: audit, rules_file: %q}
  trace: {type: ebpf, network: false}
`, rules))
	// Both inputs must be up before the exec: the audit input once its
	// rules are in, the eBPF one once its programs are attached.
	time.Sleep(2 * time.Second)

	tok := fmt.Sprintf("trawl-both-%d", time.Now().UnixNano())
	echo := exec.Command("/bin/echo", tok, "second arg")
	echo.Stdout = io.Discard
	if err := echo.Run(); err != nil {
		t.Fatal(err)
	}
	type ecs struct {
		Event   struct{ Module, Action string }
		Process struct {
			PID    int
			Args   []string
			Parent struct {
				PID              int
				Name, Executable string
			}
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := map[string]ecs{}
		for _, e := range sinkEvents[ecs](t, out, tok) {
			if (e.Event.Module == "ebpf" && e.Event.Action == "exec") || (e.Event.Module == "audit" && e.Event.Action == "executed") {
				got[e.Event.Module] = e
			}
		}
		if len(got) == 2 {
			a, b := got["audit"], got["ebpf"]
			for _, e := range []ecs{a, b} {
				if e.Process.PID != echo.Process.Pid || e.Process.Parent.PID != me || fmt.Sprint(e.Process.Args) != fmt.Sprint([]string{"/bin/echo", tok, "second arg"}) {
					t.Fatalf("exec of pid %d as seen by %s: %+v", echo.Process.Pid, e.Event.Module, e)
				}
			}
			// Both name the parent from the process cache they share.
			if a.Process.Parent.Name == "" || a.Process.Parent.Name != b.Process.Parent.Name || a.Process.Parent.Executable != b.Process.Parent.Executable {
				t.Fatalf("parent as seen by audit %+v and by eBPF %+v", a.Process.Parent, b.Process.Parent)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s the sink has the exec from %d of 2 inputs (%v); node log:\n%s", len(got), got, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
