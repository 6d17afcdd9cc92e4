//go:build linux

package proccache

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fakeProc writes /proc/PID/{stat,comm,cgroup} and an exe link under dir.
func fakeProc(t *testing.T, dir string, pid, ppid int, comm, exe string, startTicks int64, cgroup string) {
	t.Helper()
	d := filepath.Join(dir, fmt.Sprint(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	// Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime priority nice
	// num_threads itrealvalue starttime ...
	stat := fmt.Sprintf("%d (%s) S %d 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 %d 1000 100\n", pid, comm, ppid, startTicks)
	files := map[string]string{"stat": stat, "comm": comm + "\n", "cgroup": "0::" + cgroup + "\n"}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(exe, filepath.Join(d, "exe")); err != nil {
		t.Fatal(err)
	}
}

func newTest(t *testing.T, capacity int) (*Cache, string) {
	proc := t.TempDir()
	return New(Options{Capacity: capacity, ProcDir: proc, CgroupRoot: t.TempDir(), Suspended: func() int64 { return 0 }}), proc
}

func TestExecLookupExit(t *testing.T) {
	c, _ := newTest(t, 8)
	c.Exec(100, 1, 5e9, 1e9, []byte("sshd"), []byte("/usr/sbin/sshd"))
	var info Info
	if !c.Lookup(100, 5e9, &info) || string(info.Name()) != "sshd" || string(info.Executable()) != "/usr/sbin/sshd" ||
		info.PPID != 1 || info.ParentStart != 1e9 {
		t.Fatalf("Lookup = %+v", info)
	}
	if !c.Lookup(100, 0, &info) {
		t.Fatal("Lookup with start 0 misses a cached process")
	}
	// pid 100 reused by another process: not the cached one, and /proc
	// (empty here) does not know it.
	if c.Lookup(100, 9e9, &info) {
		t.Fatalf("Lookup of a reused pid found %+v", info)
	}
	// A new exec replaces the entry.
	c.Exec(100, 1, 9e9, 1e9, []byte("bash"), []byte("/usr/bin/bash"))
	if !c.Lookup(100, 9e9, &info) || string(info.Name()) != "bash" {
		t.Fatalf("after a second exec: %+v", info)
	}
	c.Exit(100, 5e9) // the old process: no effect
	if !c.Lookup(100, 9e9, &info) {
		t.Fatal("Exit of another start time removed the entry")
	}
	c.Exit(100, 9e9)
	if c.Lookup(100, 9e9, &info) {
		t.Fatal("Lookup after Exit found the process")
	}
}

func TestEviction(t *testing.T) {
	c, _ := newTest(t, 4)
	for pid := uint32(1); pid <= 6; pid++ {
		c.Exec(pid, 0, int64(pid), 0, []byte("p"), []byte("/p"))
	}
	var info Info
	// Newest first: a miss takes a slot too (a negative entry).
	for pid := uint32(6); pid >= 1; pid-- {
		if got, want := c.Lookup(pid, int64(pid), &info), pid > 2; got != want {
			t.Errorf("pid %d: found %v, want %v (capacity 4, oldest evicted)", pid, got, want)
		}
	}
}

func TestLookupFromProc(t *testing.T) {
	c, proc := newTest(t, 8)
	// The name has a space and a parenthesis, as comm may.
	fakeProc(t, proc, 300, 1, "my (app)", "/opt/app/bin/app", 12345, "/")
	var info Info
	start := int64(12345) * 1e7 // 100 ticks per second
	if !c.Lookup(300, start+3e6, &info) || string(info.Name()) != "my (app)" || string(info.Executable()) != "/opt/app/bin/app" || info.PPID != 1 {
		t.Fatalf("Lookup from /proc = %v %+v", string(info.Name()), info)
	}
	// Cached now: the fake /proc entry can go.
	os.RemoveAll(filepath.Join(proc, "300"))
	if !c.Lookup(300, start+3e6, &info) {
		t.Fatal("a process read from /proc was not cached")
	}
	// Another start time is another process.
	fakeProc(t, proc, 301, 1, "x", "/x", 500, "/")
	if c.Lookup(301, 900*1e7, &info) {
		t.Fatal("Lookup accepted a /proc entry with another start time")
	}
	if c.Lookup(302, 0, &info) {
		t.Fatal("Lookup found a process /proc does not have")
	}
}

func TestContainerID(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	f := func(path, want string) {
		t.Helper()
		if got := string(ContainerID(path)); got != want {
			t.Errorf("ContainerID(%q) = %q, want %q", path, got, want)
		}
	}
	f("/system.slice/docker-"+id+".scope", id)
	f("/docker/"+id, id)
	f("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/cri-containerd-"+id+".scope", id)
	f("/machine.slice/libpod-"+id+".scope/container", id)
	f("/user.slice/user-1000.slice/session-3.scope", "")
	f("/system.slice/docker-"+id[:63]+".scope", "") // too short
	f("/x/"+id+"0", "")                             // too long
	f("/", "")
	f("", "")
}

func TestContainer(t *testing.T) {
	c, proc := newTest(t, 8)
	id := strings.Repeat("fedcba9876543210", 4)
	rel := "/system.slice/docker-" + id + ".scope"
	dir := filepath.Join(c.opts.CgroupRoot, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	fakeProc(t, proc, 400, 1, "nginx", "/usr/sbin/nginx", 1, rel)
	if got := string(c.Container(st.Ino, 400)); got != id {
		t.Fatalf("Container via /proc/400/cgroup = %q, want %q", got, id)
	}
	// Another cgroup, no process to ask: found by walking the tree.
	other := filepath.Join(c.opts.CgroupRoot, "machine.slice", "libpod-"+strings.Repeat("1", 64)+".scope")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(other, &st); err != nil {
		t.Fatal(err)
	}
	if got := string(c.Container(st.Ino, 999)); got != strings.Repeat("1", 64) {
		t.Fatalf("Container by walking = %q", got)
	}
	if got := c.Container(123456789); got != nil {
		t.Fatalf("Container of an unknown cgroup = %q", got)
	}
}

func TestNoAllocs(t *testing.T) {
	c, _ := newTest(t, 1024)
	comm, exe := []byte("worker"), []byte("/usr/bin/worker")
	for pid := uint32(1); pid <= 2048; pid++ { // fill and wrap once
		c.Exec(pid, 1, int64(pid), 1, comm, exe)
	}
	var info Info
	pid := uint32(3000)
	n := testing.AllocsPerRun(1000, func() {
		c.Exec(pid, pid-1, int64(pid), int64(pid-1), comm, exe)
		if !c.Lookup(pid, int64(pid), &info) {
			t.Fatal("miss")
		}
		c.Exit(pid-500, int64(pid-500))
		pid++
	})
	if n != 0 {
		t.Fatalf("%v allocations per exec, lookup and exit", n)
	}
}

// TestTableAgainstModel runs random execs, exits and lookups (of pids that
// collide in the index, across evictions) on a small cache and on a plain
// model of it (a list, oldest first), and compares the two after every
// step: the same processes, known or not, in the same order.
func TestTableAgainstModel(t *testing.T) {
	const capacity, pids = 16, 40
	c, _ := newTest(t, capacity)
	type entry struct {
		pid   uint32
		start int64
		known bool
	}
	var model []entry
	at := func(pid uint32) int {
		for i, e := range model {
			if e.pid == pid {
				return i
			}
		}
		return -1
	}
	add := func(e entry) {
		if len(model) == capacity {
			model = model[1:]
		}
		model = append(model, e)
	}
	rnd := uint64(1)
	next := func(n int) int {
		rnd = rnd*6364136223846793005 + 1442695040888963407
		return int(rnd>>33) % n
	}
	var info Info
	for step := 0; step < 20000; step++ {
		pid := uint32(1 + next(pids))
		start := int64(1 + next(3))
		switch op := next(3); op {
		case 0:
			c.Exec(pid, 1, start, 0, []byte("p"), []byte("/p"))
			if i := at(pid); i >= 0 {
				model[i] = entry{pid, start, true}
			} else {
				add(entry{pid, start, true})
			}
		case 1:
			c.Exit(pid, start)
			if i := at(pid); i >= 0 && model[i].start == start {
				model = append(model[:i], model[i+1:]...)
			}
		case 2:
			got := c.Lookup(pid, start, &info)
			want := false
			if i := at(pid); i >= 0 && model[i].start == start {
				want = model[i].known
			} else if i >= 0 {
				model[i] = entry{pid, start, false} // /proc is empty: a negative entry
			} else {
				add(entry{pid, start, false})
			}
			if got != want {
				t.Fatalf("step %d: Lookup(%d, %d) = %v, want %v", step, pid, start, got, want)
			}
		}
		var table []entry
		for i := c.oldest; i != none; i = c.slots[i].next {
			s := &c.slots[i]
			table = append(table, entry{s.PID, s.Start, s.known})
			if pos, ok := c.find(s.PID); !ok || c.index[pos].slot-1 != i {
				t.Fatalf("step %d: pid %d in slot %d is not indexed there", step, s.PID, i)
			}
		}
		if fmt.Sprint(table) != fmt.Sprint(model) {
			t.Fatalf("step %d: table %v, want %v", step, table, model)
		}
		indexed := 0
		for _, e := range c.index {
			if e.slot != 0 {
				indexed++
			}
		}
		if indexed != len(model) {
			t.Fatalf("step %d: %d index entries for %d processes", step, indexed, len(model))
		}
	}
}
