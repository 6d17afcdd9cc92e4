package audit

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawlsec/trawl/event"
)

// normalized is the part of an event.Audit a test compares, as strings.
type normalized struct {
	Action, Result, Syscall           string
	PID, PPID, UID, AUID, GID         uint32
	Exe, Comm, Cwd, FilePath, Key     string
	Title                             string
	Args                              []string
	Dst                               string
	UserName, AuditUserName, GroupNam string
	RecordType                        uint16
	Truncated                         bool
}

func summarize(ev *event.Event) normalized {
	a := &ev.Audit
	n := normalized{
		Action: string(a.Action), Result: string(a.Result), Syscall: string(a.Syscall),
		PID: a.PID, PPID: a.PPID, UID: a.UID, AUID: a.AUID, GID: a.GID,
		Exe: string(a.Exe), Comm: string(a.Comm), Cwd: string(a.Cwd), FilePath: string(a.FilePath),
		Key: string(a.Key), Title: string(a.Title), UserName: string(a.UserName),
		AuditUserName: string(a.AuditUserName), GroupNam: string(a.GroupName), RecordType: a.RecordType,
		Truncated: ev.Flags&event.FlagTruncated != 0,
	}
	for _, arg := range a.Args {
		n.Args = append(n.Args, string(arg))
	}
	if a.DstAddr.IsValid() {
		n.Dst = a.DstAddr.String()
	}
	return n
}

// normalizeLog runs the records through a Reassembler and a Normalizer and
// returns the events by serial.
func normalizeLog(t *testing.T, recs []logRecord, names *Names) map[uint64]normalized {
	t.Helper()
	out := map[uint64]normalized{}
	n := NewNormalizer(names)
	var ev event.Event
	r := NewReassembler(ReassemblerOptions{}, func(m *Message) {
		n.Fill(&ev, m)
		if ev.Kind != event.KindAudit || ev.Time != m.Time || ev.Audit.Sequence != m.Serial || string(ev.Audit.Raw) != string(m.Raw) {
			t.Fatalf("event header: kind %v time %d seq %d", ev.Kind, ev.Time, ev.Audit.Sequence)
		}
		out[m.Serial] = summarize(&ev)
	})
	for _, rc := range recs {
		r.Push(rc.typ, rc.text, time.Unix(1000, 0))
	}
	r.FlushAll()
	return out
}

func testNames(t *testing.T) *Names {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	gr := filepath.Join(dir, "group")
	os.WriteFile(pw, []byte("root:x:0:0:root:/root:/bin/bash\n# comment\n+nis\nalice:x:1000:1000::/home/alice:/bin/sh\nalias:x:1000:1000::/:/bin/sh\nbad\n"), 0o644)
	os.WriteFile(gr, []byte("root:x:0:\nstaff:x:50:alice\n"), 0o644)
	return &Names{PasswdFile: pw, GroupFile: gr}
}

func TestNormalize_KernelLog(t *testing.T) {
	got := normalizeLog(t, loadLog(t, "testdata/kernel-6.18.log"), testNames(t))
	const dir = "/tmp/cap2350245011"
	exec := func(pid uint32, exe, comm string, args ...string) normalized {
		return normalized{
			Action: "executed", Result: "success", Syscall: "execve", PID: pid, PPID: 26431,
			UID: 0, AUID: event.UnsetID, GID: 0, Exe: exe, Comm: comm, Cwd: dir, FilePath: args[0], Key: "exec",
			Title: strings.TrimRight(strings.Join(args, " "), " "), Args: args, UserName: "root", GroupNam: "root",
			RecordType: TypeSyscall,
		}
	}
	want := map[uint64]normalized{
		68: exec(26458, "/usr/bin/echo", "echo", "/bin/echo", "hello world", "trawl-capture-1", "tab\there", `quote"d`, ""),
		69: exec(26459, "/usr/bin/bash", "bash", "/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/36437"),
		70: {
			Action: "connected-to", Result: "success", Syscall: "connect", PID: 26459, PPID: 26431, UID: 0,
			AUID: event.UnsetID, Exe: "/usr/bin/bash", Comm: "bash", Key: "net", Dst: "127.0.0.1:36437",
			Title: "/bin/bash -c exec 3<>/dev/tcp/127.0.0.1/36437", UserName: "root", GroupNam: "root", RecordType: TypeSyscall,
		},
		72: {
			Action: "connected-to", Result: "success", Syscall: "connect", PID: 26460, PPID: 26431, UID: 0,
			AUID: event.UnsetID, Exe: "/usr/bin/bash", Comm: "bash", Key: "net", Dst: "[::1]:36339",
			Title: "/bin/bash -c exec 3<>/dev/tcp/::1/36339", UserName: "root", GroupNam: "root", RecordType: TypeSyscall,
		},
		74: {
			Action: "changed-file-permissions", Result: "success", Syscall: "fchmodat", PID: 26461, PPID: 26431,
			AUID: event.UnsetID, Exe: "/usr/bin/chmod", Comm: "chmod", Cwd: dir, FilePath: dir + "/secret.conf",
			Key: "watch", Title: "/bin/chmod 0644 secret.conf", UserName: "root", GroupNam: "root", RecordType: TypeSyscall,
		},
		78: {
			Action: "renamed", Result: "success", Syscall: "renameat2", PID: 26463, PPID: 26431,
			AUID: event.UnsetID, Exe: "/usr/bin/mv", Comm: "mv", Cwd: dir, FilePath: dir + "/secret.conf",
			Key: "watch", Title: "/bin/mv " + dir + "/secret.conf " + dir + "/renamed.conf", UserName: "root", GroupNam: "root",
			RecordType: TypeSyscall,
		},
		80: {
			Action: "deleted", Result: "success", Syscall: "unlinkat", PID: 26464, PPID: 26431,
			AUID: event.UnsetID, Exe: "/usr/bin/rm", Comm: "rm", Cwd: dir, FilePath: dir + "/renamed.conf",
			Key: "watch", Title: "/bin/rm " + dir + "/renamed.conf", UserName: "root", GroupNam: "root", RecordType: TypeSyscall,
		},
		81: exec(26465, "/usr/bin/true", "true", "/bin/true", strings.Repeat("abcdefghijklmnopqrstuvwxyz", 400), "after-long"),
		82: exec(26466, "/usr/bin/true", "true", "/bin/true", "ünïcödé", "two words"),
		83: {
			Action: "ran-command", Result: "success", PID: 26431, UID: 0, AUID: event.UnsetID, GID: event.UnsetID,
			Exe: "/usr/bin/sudo", UserName: "root", RecordType: 1123,
		},
	}
	// The kernel cuts PROCTITLE at 128 bytes.
	w := want[81]
	w.Title = w.Title[:128]
	want[81] = w
	for serial, w := range want {
		g, ok := got[serial]
		if !ok {
			t.Errorf("serial %d: no event", serial)
			continue
		}
		if !equalNormalized(g, w) {
			t.Errorf("serial %d:\n got %+v\nwant %+v", serial, g, w)
		}
	}
	if len(got) != 17 {
		t.Errorf("%d events, want 17", len(got))
	}
}

func equalNormalized(a, b normalized) bool {
	if len(a.Args) != len(b.Args) {
		return false
	}
	for i := range a.Args {
		if a.Args[i] != b.Args[i] {
			return false
		}
	}
	a.Args, b.Args = nil, nil
	return a.Action == b.Action && a.Result == b.Result && a.Syscall == b.Syscall && a.PID == b.PID &&
		a.PPID == b.PPID && a.UID == b.UID && a.AUID == b.AUID && a.GID == b.GID && a.Exe == b.Exe &&
		a.Comm == b.Comm && a.Cwd == b.Cwd && a.FilePath == b.FilePath && a.Key == b.Key && a.Title == b.Title &&
		a.Dst == b.Dst && a.UserName == b.UserName && a.AuditUserName == b.AuditUserName &&
		a.GroupNam == b.GroupNam && a.RecordType == b.RecordType && a.Truncated == b.Truncated
}

// TestNormalize_Synthetic covers record kinds the capture does not have,
// written as the kernel and user space write them.
func TestNormalize_Synthetic(t *testing.T) {
	f := func(name string, lines []string, want normalized) {
		t.Helper()
		var recs []logRecord
		for _, l := range lines {
			recs = append(recs, parseLogLine(t, l))
		}
		got := normalizeLog(t, recs, testNames(t))
		if len(got) != 1 {
			t.Fatalf("%s: %d events", name, len(got))
		}
		for _, g := range got {
			if !equalNormalized(g, want) {
				t.Fatalf("%s:\n got %+v\nwant %+v", name, g, want)
			}
		}
	}
	f("module load by a logged-in user, syscall failed", []string{
		`type=SYSCALL msg=audit(1700000000.000:7): arch=c000003e syscall=313 success=no exit=-1 a0=3 a1=0 a2=0 a3=0 items=0 ppid=1 pid=99 auid=1000 uid=1000 gid=50 euid=0 comm="insmod" exe="/usr/bin/kmod" key=(null)`,
		`type=KERN_MODULE msg=audit(1700000000.000:7): name="evil"`,
		`type=EOE msg=audit(1700000000.000:7):`,
	}, normalized{
		Action: "loaded-kernel-module", Result: "fail", Syscall: "finit_module", PID: 99, PPID: 1, UID: 1000,
		AUID: 1000, GID: 50, Exe: "/usr/bin/kmod", Comm: "insmod", UserName: "alice", AuditUserName: "alice",
		GroupNam: "staff", RecordType: TypeSyscall,
	})
	f("ptrace, i386 syscall table", []string{
		`type=SYSCALL msg=audit(1700000000.000:8): arch=40000003 syscall=26 success=yes exit=0 ppid=1 pid=5 auid=4294967295 uid=0 gid=0 comm="gdb" exe="/usr/bin/gdb" key="ptrace"`,
		`type=OBJ_PID msg=audit(1700000000.000:8): opid=6 oauid=-1 ouid=0 oses=-1 ocomm="victim"`,
		`type=EOE msg=audit(1700000000.000:8):`,
	}, normalized{
		Action: "traced-process", Result: "success", Syscall: "ptrace", PID: 5, PPID: 1, UID: 0, AUID: event.UnsetID,
		GID: 0, Exe: "/usr/bin/gdb", Comm: "gdb", Key: "ptrace", UserName: "root", GroupNam: "root", RecordType: TypeSyscall,
	})
	f("CONFIG_CHANGE before SYSCALL, hex exe, unix connect", []string{
		`type=CONFIG_CHANGE msg=audit(1700000000.000:9): auid=1000 ses=3 op=add_rule key="exec" list=4 res=1`,
		`type=SYSCALL msg=audit(1700000000.000:9): arch=c000003e syscall=42 success=yes exit=0 ppid=1 pid=7 auid=4294967295 uid=1000 gid=1000 comm="x" exe=2F746D702F6120622F78 key=(null)`,
		`type=SOCKADDR msg=audit(1700000000.000:9): saddr=01002F7661722F72756E2F6E7363642F736F636B657400`,
		`type=EOE msg=audit(1700000000.000:9):`,
	}, normalized{
		Action: "connected-to", Result: "success", Syscall: "connect", PID: 7, PPID: 1, UID: 1000,
		AUID: event.UnsetID, GID: 1000, Exe: "/tmp/a b/x", Comm: "x", UserName: "alice", RecordType: TypeConfigChange,
	})
	f("failed ssh login (user space, nested msg)", []string{
		`type=USER_LOGIN msg=audit(1700000000.000:10): pid=400 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=login acct="mallory" exe="/usr/sbin/sshd" hostname=? addr=192.0.2.9 terminal=ssh res=failed'`,
	}, normalized{
		Action: "logged-in", Result: "fail", PID: 400, UID: 0, AUID: event.UnsetID, GID: event.UnsetID,
		Exe: "/usr/sbin/sshd", UserName: "root", RecordType: TypeUserLogin,
	})
	f("incomplete syscall event (no EOE) is flagged", []string{
		`type=SYSCALL msg=audit(1700000000.000:11): arch=c000003e syscall=2 success=yes exit=3 ppid=1 pid=8 auid=1000 uid=0 gid=0 comm="cat" exe="/usr/bin/cat" key="identity"`,
		`type=PATH msg=audit(1700000000.000:11): item=0 name="/etc/" nametype=PARENT`,
		`type=PATH msg=audit(1700000000.000:11): item=1 name="shadow" nametype=NORMAL`,
	}, normalized{
		Action: "opened-file", Result: "success", Syscall: "open", PID: 8, PPID: 1, UID: 0, AUID: 1000, GID: 0,
		Exe: "/usr/bin/cat", Comm: "cat", FilePath: "shadow", Key: "identity", UserName: "root",
		AuditUserName: "alice", GroupNam: "root", RecordType: TypeSyscall, Truncated: true,
	})
	f("unknown syscall number and record type", []string{
		`type=SYSCALL msg=audit(1700000000.000:12): arch=c000003e syscall=99999 success=maybe ppid=0 pid=1 uid=4294967295 key=6B31016B32`,
		`type=UNKNOWN[1999] msg=audit(1700000000.000:12): x=1`,
		`type=EOE msg=audit(1700000000.000:12):`,
	}, normalized{
		PID: 1, UID: event.UnsetID, AUID: event.UnsetID, GID: event.UnsetID, Key: "k1", RecordType: TypeSyscall,
		Action: "syscall",
	})
}

func TestSockaddrIP(t *testing.T) {
	f := func(hex, want string) {
		t.Helper()
		got := sockaddrIP([]byte(hex))
		if want == "" {
			if got.IsValid() {
				t.Fatalf("sockaddrIP(%s) = %v, want none", hex, got)
			}
			return
		}
		if got != netip.MustParseAddrPort(want) {
			t.Fatalf("sockaddrIP(%s) = %v, want %s", hex, got, want)
		}
	}
	f("02008E557F0000010000000000000000", "127.0.0.1:36437")
	f("0A008DF3000000000000000000000000000000000000000100000000", "[::1]:36339")
	f("0A0000500000000000000000000000000000FFFF0A00000100000000", "10.0.0.1:80") // v4-mapped
	f("0A000050000000000000", "")                                                // short v6
	f("01002F746D70", "")                                                        // AF_UNIX
	f("0200", "")
	f("02008E557F00000Z0000000000000000", "")
}

func TestNames(t *testing.T) {
	n := testNames(t)
	now := time.Unix(1000, 0)
	if got := n.User(1000, now); string(got) != "alice" {
		t.Fatalf("uid 1000 = %q (the first entry wins)", got)
	}
	if got := n.Group(50, now); string(got) != "staff" {
		t.Fatalf("gid 50 = %q", got)
	}
	if n.User(4242, now) != nil || n.Group(4242, now) != nil {
		t.Fatal("unknown ids resolved")
	}
	// A changed file is read again after CheckEvery, not before.
	n.CheckEvery = time.Minute
	os.WriteFile(n.PasswdFile, []byte("bob:x:1000:1000::/:/bin/sh\nnewuser:x:4242:1::/:/bin/sh\n"), 0o644)
	if got := n.User(4242, now.Add(time.Second)); got != nil {
		t.Fatalf("reloaded before CheckEvery: %q", got)
	}
	if got := n.User(4242, now.Add(2*time.Minute)); string(got) != "newuser" {
		t.Fatalf("not reloaded after CheckEvery: %q", got)
	}
	if allocs := testing.AllocsPerRun(100, func() { n.User(1000, now.Add(2*time.Minute)) }); allocs != 0 {
		t.Fatalf("%v allocs per lookup", allocs)
	}
	missing := &Names{PasswdFile: "/nonexistent/passwd", GroupFile: "/nonexistent/group"}
	if missing.User(0, now) != nil {
		t.Fatal("resolved without a file")
	}
}

func TestNormalize_NoAllocs(t *testing.T) {
	recs := loadLog(t, "testdata/kernel-6.18.log")
	n := NewNormalizer(testNames(t))
	var ev event.Event
	events := 0
	r := NewReassembler(ReassemblerOptions{}, func(m *Message) {
		n.Fill(&ev, m)
		events++
	})
	run := func() {
		for _, rc := range recs {
			r.Push(rc.typ, rc.text, time.Unix(1000, 0))
		}
	}
	run() // warm up buffers and the name cache
	if allocs := testing.AllocsPerRun(20, run); allocs != 0 {
		t.Fatalf("%v allocations per pass over the log (reassembly and normalisation)", allocs)
	}
	if events < 17 {
		t.Fatalf("%d events", events)
	}
}
