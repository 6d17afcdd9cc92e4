package audit

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/rule"
)

func parseRulesText(t *testing.T, text string) *Rules {
	t.Helper()
	rs, err := ParseRules(strings.NewReader(text))
	if err != nil {
		t.Fatalf("ParseRules(%q): %v", text, err)
	}
	return rs
}

func TestParseRules_Success(t *testing.T) {
	rs := parseRulesText(t, `
# comment
-D
-b 8192
-f 1
-r 100
-e 1
--backlog_wait_time 0
-i
-a always,exit -F arch=b64 -S execve,execveat -k exec   # trailing comment
-a exit,always -F arch=b64 -S connect -F a2!=110 -F success=1 -k net -k egress
-A always,exit -F arch=b64 -S ptrace -C uid!=euid -k ptrace
-w /etc/sudoers -p wa -k identity
-w "/etc/ssh/sshd_config" -k sshd
`)
	if !rs.DeleteAll || *rs.BacklogLimit != 8192 || *rs.Failure != 1 || *rs.RateLimit != 100 || *rs.Enabled != 1 || *rs.BacklogWaitTime != 0 {
		t.Fatalf("settings %+v", rs)
	}
	if len(rs.Rules) != 5 {
		t.Fatalf("%d rules", len(rs.Rules))
	}
	lines := []int{10, 11, 12, 13, 14}
	for i, r := range rs.Rules {
		if r.Line != lines[i] || len(r.Wire) == 0 {
			t.Fatalf("rule %d: line %d, %d bytes", i, r.Line, len(r.Wire))
		}
		// The wire format decodes back to the rule, as auditctl -l prints it.
		text, err := rule.ToCommandLine(unprepend(r.Wire), false)
		if err != nil {
			t.Fatalf("rule %d does not decode: %v", i, err)
		}
		t.Logf("line %d: %s", r.Line, text)
	}
	want := []string{
		"-a always,exit -F arch=b64 -S execve,execveat -F key=exec",
		"-a always,exit -F arch=b64 -S connect -F a2!=110 -F success=1 -F key=net\x01egress",
		"-a always,exit -F arch=b64 -S ptrace -C uid!=euid -F key=ptrace",
		"-w /etc/sudoers -p wa -k identity",
		"-w /etc/ssh/sshd_config -p rwxa -k sshd",
	}
	for i, w := range want {
		got, _ := rule.ToCommandLine(unprepend(rs.Rules[i].Wire), false)
		if got != w {
			t.Errorf("rule %d decodes to %q, want %q", i, got, w)
		}
	}
	// -A asks the kernel to put the rule first; -a does not.
	flags := func(r Rule) uint32 { return binary.NativeEndian.Uint32(r.Wire[0:4]) }
	if flags(rs.Rules[2])&auditFilterPrepend == 0 || flags(rs.Rules[0])&auditFilterPrepend != 0 {
		t.Fatalf("prepend flags %#x %#x", flags(rs.Rules[2]), flags(rs.Rules[0]))
	}
}

// unprepend clears AUDIT_FILTER_PREPEND, which go-libaudit's decoder does
// not know.
func unprepend(wire []byte) []byte {
	w := bytes.Clone(wire)
	binary.NativeEndian.PutUint32(w[0:4], binary.NativeEndian.Uint32(w[0:4])&^auditFilterPrepend)
	return w
}

func TestParseRules_Failure(t *testing.T) {
	f := func(text, wantErr string) {
		t.Helper()
		_, err := ParseRules(strings.NewReader("# first line\n" + text))
		if err == nil {
			t.Fatalf("ParseRules(%q) succeeded", text)
		}
		if !strings.Contains(err.Error(), wantErr) || !strings.HasPrefix(err.Error(), "line 2: ") {
			t.Fatalf("ParseRules(%q) = %q, want it to name line 2 and contain %q", text, err, wantErr)
		}
	}
	f("-e 2", "immutable")
	f("--loginuid-immutable", "cannot be undone")
	f("-b", "takes one number")
	f("-b lots", "takes one number")
	f("-f 3", "failure mode")
	f("-l", "not a rule")
	f("-D -k exec", "no arguments")
	f("-a always -S execve", "list,action")
	f("-a always,sometimes -S execve", "invalid list or action")
	f("-a always,exit -S execve -F", "needs a value")
	f("-a always,exit -S execve -F arch", "no operator")
	f("-a always,exit -S execve -C uid<euid", "-C takes = or !=")
	f("-a always,exit -S nosuchcall -F arch=b64", "cannot build rule")
	f("-a always,exit -F nosuchfield=1", "cannot build rule")
	f("-w /etc/passwd -S execve", "need -a")
	f("-w /etc/passwd -p z", "invalid permission")
	f("-w relative/path", "cannot build rule")
	f("-a always,exit -S execve -p w", "-p needs -w")
	f("-x", "unknown option")
	f(`-w "/etc/unterminated`, "unterminated quote")
	f("-F arch=b64", "needs -a, -A or -w")
}

// TestDefaultRules checks that the shipped rule set parses and builds on
// this machine, and that the copy in configs/ is the embedded one.
func TestDefaultRules(t *testing.T) {
	rs, err := ParseRules(bytes.NewReader(DefaultRules))
	if err != nil {
		t.Fatal(err)
	}
	if !rs.DeleteAll || rs.BacklogWaitTime == nil || *rs.BacklogWaitTime != 0 || rs.Failure == nil || *rs.Failure != FailurePrintk {
		t.Fatalf("default settings: %+v", rs)
	}
	keys := map[string]bool{}
	for _, r := range rs.Rules {
		text, err := rule.ToCommandLine(r.Wire, false)
		if err != nil {
			t.Fatalf("line %d: %v", r.Line, err)
		}
		i := strings.LastIndex(text, "key=")
		if j := strings.LastIndex(text, "-k "); j > i {
			i = j + 3
		} else if i >= 0 {
			i += 4
		}
		if i < 0 {
			t.Fatalf("line %d has no key: %s", r.Line, text)
		}
		keys[text[i:]] = true
	}
	for _, k := range []string{"exec", "network_connect", "modules", "identity", "sudoers", "ssh_keys", "time_change", "mounts", "ptrace"} {
		if !keys[k] {
			t.Errorf("no rule with key %q (keys: %v)", k, keys)
		}
	}
	shipped, err := os.ReadFile("../configs/audit.rules")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shipped, DefaultRules) {
		t.Fatal("configs/audit.rules differs from audit/default.rules: copy one onto the other")
	}
}
