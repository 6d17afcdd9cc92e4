//go:build linux

package proccache

import "testing"

// BenchmarkExecExit is the cache's share of an exec storm: per op, one
// short-lived process (new pids in sequence, as the kernel hands them out)
// is looked up as a parent, executes, is looked up on exit with its
// parent, and exits, in a full cache of long-lived processes.
//
//	go test -run '^$' -bench ExecExit ./bpf/proccache/
func BenchmarkExecExit(b *testing.B) {
	c := New(Options{ProcDir: b.TempDir(), CgroupRoot: b.TempDir(), Suspended: func() int64 { return 0 }})
	comm, exe := []byte("true"), []byte("/usr/bin/true")
	const parent = 1 << 20
	c.Exec(parent, 1, 1, 0, []byte("storm"), []byte("/usr/bin/storm"))
	for pid := uint32(1); pid < uint32(c.opts.Capacity); pid++ { // long-lived processes fill it
		c.Exec(parent+pid, 1, int64(pid), 0, comm, exe)
	}
	var info Info
	pid := uint32(1 << 21)
	b.ReportAllocs()
	for b.Loop() {
		c.Lookup(parent, 1, &info)
		c.Exec(pid, parent, int64(pid), 1, comm, exe)
		c.Lookup(pid, int64(pid), &info)
		c.Lookup(parent, 1, &info)
		c.Exit(pid, int64(pid))
		pid++
	}
}
