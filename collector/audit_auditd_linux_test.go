//go:build linux

package collector

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/rule"

	"github.com/trawlsec/trawl/audit"
	"github.com/trawlsec/trawl/audit/audittest"
	"github.com/trawlsec/trawl/event"
)

// auditdConf is a private auditd configuration: the log in dir, raw
// format, no plugins, nothing sent anywhere.
const auditdConf = `local_events = yes
write_logs = yes
log_file = %[1]s/audit.log
log_group = root
log_format = RAW
flush = INCREMENTAL_ASYNC
freq = 50
max_log_file = 512
num_logs = 2
priority_boost = 4
name_format = NONE
max_log_file_action = ROTATE
space_left = 75
space_left_action = IGNORE
admin_space_left = 50
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
use_libwrap = no
tcp_listen_queue = 5
tcp_max_per_addr = 1
tcp_client_max_idle = 0
transport = TCP
distribute_network = no
q_depth = 2000
overflow_action = IGNORE
max_restarts = 10
plugin_dir = %[1]s/plugins
end_of_event_timeout = 2
`

// auditdTools returns the paths of auditd, auditctl and ausearch, or skips.
func auditdTools(t testing.TB) (auditd, auditctl, ausearch string) {
	t.Helper()
	find := func(name string) string {
		for _, p := range []string{"/usr/sbin/" + name, "/sbin/" + name} {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		t.Skipf("needs %s (Debian package auditd; scripts/deps.sh installs it)", name)
		return ""
	}
	return find("auditd"), find("auditctl"), find("ausearch")
}

// startAuditd runs auditd with a private configuration in dir and waits
// until it holds the audit PID. At cleanup it is stopped and the audit
// state put back as it was (auditd leaves auditing on and its rules
// loaded when it exits).
func startAuditd(t testing.TB, ctl *audit.Control, auditd, dir string) *exec.Cmd {
	t.Helper()
	before, err := ctl.State()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auditd.conf"), []byte(fmt.Sprintf(auditdConf, dir)), 0o640); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(auditd, "-n", "-c", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if err := ctl.ClearPID(); err != nil {
			t.Errorf("clear the audit PID after auditd: %v", err)
		}
		if err := ctl.RestoreAll(before); err != nil {
			t.Errorf("restore the audit state after auditd: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := ctl.Status()
		if err != nil {
			t.Fatal(err)
		}
		if st.PID == uint32(cmd.Process.Pid) {
			return cmd
		}
		select {
		case <-exited:
			t.Fatalf("auditd exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("auditd did not register (audit PID %d): %s", st.PID, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopAuditd stops auditd and waits for it, so its log is complete.
func stopAuditd(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for audit.ProcessAlive(uint32(cmd.Process.Pid)) {
		if time.Now().After(deadline) {
			t.Fatal("auditd did not stop")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ausearchEvent is one event as `ausearch -i` prints it: the text after
// " : " of each record, by record type.
type ausearchEvent map[string]string

// ausearchEvents runs `ausearch -i` over the log and returns the events by
// serial number.
func ausearchEvents(t testing.TB, ausearch, logFile string) map[uint64]ausearchEvent {
	t.Helper()
	out, err := exec.Command(ausearch, "-i", "-if", logFile).Output()
	if err != nil {
		t.Fatalf("ausearch: %v", err)
	}
	evs := map[uint64]ausearchEvent{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		typ, rest, ok := strings.Cut(strings.TrimPrefix(line, "type="), " msg=audit(")
		if !ok {
			continue // "----" separators
		}
		head, body, ok := strings.Cut(rest, ") : ")
		if !ok {
			continue
		}
		serial, err := strconv.ParseUint(head[strings.LastIndexByte(head, ':')+1:], 10, 64)
		if err != nil {
			t.Fatalf("ausearch line %q: %v", line, err)
		}
		if evs[serial] == nil {
			evs[serial] = ausearchEvent{}
		}
		evs[serial][typ] = strings.TrimSpace(body)
	}
	return evs
}

// ausearchEscape writes control bytes as ausearch -i shows them (\011 for
// a tab); trawl keeps the bytes themselves.
func ausearchEscape(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			fmt.Fprintf(&sb, "\\%03o", c)
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// fields splits an ausearch record of space-free values into key → value.
func fields(body string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(body) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestAuditSideBySideWithAuditd runs auditd as the audit daemon with a
// rules file loaded by auditctl, and the trawl audit input in multicast
// mode beside it. After an exec with a unique argument, a connect to
// 127.0.0.1 and a chmod on a watched file, every event `ausearch -i` shows
// for this test's children must be among trawl's events (same serial),
// with the same process, user, arguments, key and result.
func TestAuditSideBySideWithAuditd(t *testing.T) {
	ctl := audittest.Kernel(t)
	auditd, auditctl, ausearch := auditdTools(t)
	dir := t.TempDir()
	work := t.TempDir()
	watched := filepath.Join(work, "authorized_keys")
	if err := os.WriteFile(watched, []byte("ssh-ed25519 AAAA test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	rulesText := fmt.Sprintf(`-a always,exit -F arch=b64 -S execve -F ppid=%[1]d -k exec
-a always,exit -F arch=b64 -S connect -F saddr_fam=2 -F ppid=%[1]d -k network_connect
-w %[2]s -p wa -k ssh_keys
`, me, watched)
	rulesFile := filepath.Join(dir, "test.rules")
	if err := os.WriteFile(rulesFile, []byte(rulesText), 0o600); err != nil {
		t.Fatal(err)
	}

	daemon := startAuditd(t, ctl, auditd, dir)
	ra := startAudit(t, ctl, AuditOptions{Name: "audit-mc", Mode: audit.Multicast}, 0)
	if out, err := exec.Command(auditctl, "-R", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("auditctl -R: %v: %s", err, out)
	}

	// The same file, parsed by trawl, builds the rules auditctl loaded.
	rs, err := audit.ParseRules(strings.NewReader(rulesText))
	if err != nil {
		t.Fatal(err)
	}
	listed, err := exec.Command(auditctl, "-l").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, r := range rs.Rules {
		s, err := rule.ToCommandLine(r.Wire, false)
		if err != nil {
			t.Fatal(err)
		}
		ours = append(ours, s)
	}
	if got := strings.TrimSpace(string(listed)); got != strings.Join(ours, "\n") {
		t.Errorf("auditctl loaded\n%s\ntrawl builds\n%s", got, strings.Join(ours, "\n"))
	}

	unique := "trawl-sbs-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	audittest.Run(t, work, "/bin/echo", unique, "two words", "tab\there")
	audittest.Connect(t)
	audittest.Run(t, work, "/bin/chmod", "0644", watched)
	ra.waitFor(t, "chmod", func(a *event.Audit) bool { return string(a.Action) == "changed-file-permissions" })
	if out, err := exec.Command(auditctl, "-D").CombinedOutput(); err != nil {
		t.Fatalf("auditctl -D: %v: %s", err, out)
	}
	time.Sleep(300 * time.Millisecond) // let the last records reach both
	stopAuditd(t, daemon)
	ra.seen = append(ra.seen, ringAudits(t, ra.pipe)...)
	ra.stop(t)
	ra.seen = append(ra.seen, ringAudits(t, ra.pipe)...)

	trawl := map[uint64]*event.Audit{}
	for i := range ra.seen {
		trawl[ra.seen[i].Audit.Sequence] = &ra.seen[i].Audit
	}
	compared := map[string]int{}
	for serial, ae := range ausearchEvents(t, ausearch, filepath.Join(dir, "audit.log")) {
		sc, ok := ae["SYSCALL"]
		if !ok {
			continue
		}
		sf := fields(sc)
		if sf["ppid"] != strconv.Itoa(me) || sf["pid"] == strconv.Itoa(daemon.Process.Pid) {
			// Not one of this test's children, or auditd registering
			// itself before trawl was started.
			continue
		}
		te := trawl[serial]
		if te == nil {
			t.Errorf("ausearch shows event %d, trawl does not: %v", serial, ae)
			continue
		}
		compared[sf["key"]]++
		check := func(what, want, got string) {
			if want != got {
				t.Errorf("event %d: %s: ausearch %q, trawl %q", serial, what, want, got)
			}
		}
		check("pid", sf["pid"], strconv.Itoa(int(te.PID)))
		check("ppid", sf["ppid"], strconv.Itoa(int(te.PPID)))
		check("uid", sf["uid"], string(te.UserName))
		check("gid", sf["gid"], string(te.GroupName))
		auid := "unset"
		if te.AUID != event.UnsetID {
			auid = string(te.AuditUserName)
		}
		check("auid", sf["auid"], auid)
		check("syscall", sf["syscall"], string(te.Syscall))
		check("exe", sf["exe"], string(te.Exe))
		check("comm", sf["comm"], string(te.Comm))
		key := sf["key"]
		if key == "(null)" {
			key = ""
		}
		check("key", key, string(te.Key))
		success := map[string]string{"yes": "success", "no": "fail"}[sf["success"]]
		check("success", success, string(te.Result))
		if ex, ok := ae["EXECVE"]; ok {
			got := fmt.Sprintf("argc=%d", len(te.Args))
			for i, a := range te.Args {
				got += fmt.Sprintf(" a%d=%s", i, ausearchEscape(a))
			}
			check("arguments", ex, got)
		}
		if pt, ok := ae["PROCTITLE"]; ok {
			check("title", strings.TrimPrefix(pt, "proctitle="), ausearchEscape(te.Title))
		}
		if cwd, ok := ae["CWD"]; ok {
			check("cwd", strings.TrimPrefix(cwd, "cwd="), string(te.Cwd))
		}
	}
	if compared["exec"] < 3 || compared["network_connect"] < 1 || compared["ssh_keys"] < 1 {
		t.Fatalf("compared too few events: %v", compared)
	}
	t.Logf("events compared with ausearch -i, by key: %v", compared)
}
