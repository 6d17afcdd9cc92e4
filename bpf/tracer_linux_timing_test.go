//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package bpf

import (
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/trawlsec/trawl/event"
)

// benchTracer opens a tracer with BPF run statistics on, and a reader on a
// locked thread that decodes every record and measures its own CPU time.
type benchTracer struct {
	tr     *Tracer
	events int
	cpu    time.Duration
	done   chan struct{}
}

func openBench(b *testing.B, opts Options) *benchTracer {
	b.Helper()
	if err := Check(); err != nil {
		b.Skipf("eBPF tracing unavailable here: %v", err)
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Skipf("cannot enable BPF run statistics: %v", err)
	}
	b.Cleanup(func() { stats.Close() })
	tr, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	return &benchTracer{tr: tr, done: make(chan struct{})}
}

// read drains the tracer on a thread of its own until it is stopped.
func (bt *benchTracer) read() {
	go func() {
		defer close(bt.done)
		runtime.LockOSThread()
		start := threadCPU()
		var ev event.Event
		for {
			if _, err := bt.tr.Next(&ev); err != nil {
				if errors.Is(err, ErrStopped) {
					break
				}
				if !errors.Is(err, ErrMalformed) {
					break
				}
			}
			bt.events++
		}
		bt.cpu = threadCPU() - start
	}()
}

// finish stops the tracer, waits for the reader to drain it and reports
// per-op costs: the programs' kernel time and the reader's CPU per event.
func (bt *benchTracer) finish(b *testing.B, unit string) {
	b.Helper()
	rs, err := bt.tr.RunStats()
	if err != nil {
		b.Fatal(err)
	}
	bt.tr.Stop()
	<-bt.done
	st, _ := bt.tr.Stats()
	bt.tr.Close()
	b.ReportMetric(float64(rs.Runtime.Nanoseconds())/float64(b.N), "bpf-ns/"+unit)
	b.ReportMetric(float64(rs.Runs)/float64(b.N), "bpf-runs/"+unit)
	b.ReportMetric(float64(bt.events)/float64(b.N), "events/"+unit)
	if bt.events > 0 {
		b.ReportMetric(float64(bt.cpu.Nanoseconds())/float64(bt.events), "reader-ns/event")
	}
	b.ReportMetric(float64(st.RingbufFull), "ringbuf-full")
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// BenchmarkExec runs /bin/true b.N times (fork, exec, wait) with the
// process programs attached and a reader draining them: what each exec
// (and its exit) costs in the kernel programs and in the reader.
//
//	go test -run '^$' -bench BenchmarkExec -benchtime 2000x ./bpf/
func BenchmarkExec(b *testing.B) {
	for _, w := range wakeups {
		b.Run(w.name, func(b *testing.B) {
			bt := openBench(b, Options{Process: true, Latency: w.latency, Filter: Filter{Comms: []string{"true"}, AllowComms: true}})
			bt.read()
			attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}
			argv := []string{"true", "--some", "arguments", "of", "a", "usual", "length"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pid, err := syscall.ForkExec("/bin/true", argv, attr)
				if err != nil {
					b.Fatal(err)
				}
				var ws syscall.WaitStatus
				syscall.Wait4(pid, &ws, 0, nil)
			}
			b.StopTimer()
			bt.finish(b, "exec")
		})
	}
}

// wakeups are the reader wakeup policies the benchmarks compare: on a
// timer (the default), and once per record.
var wakeups = []struct {
	name    string
	latency time.Duration
}{{"batched", 0}, {"per-record", -1}}

// BenchmarkConnect opens and closes b.N TCP connections on loopback with
// the network programs attached (connect, accept and two closes per
// connection) and a reader draining them.
//
//	go test -run '^$' -bench BenchmarkConnect -benchtime 5000x ./bpf/
func BenchmarkConnect(b *testing.B) {
	for _, w := range wakeups {
		b.Run(w.name, func(b *testing.B) { benchConnect(b, w.latency) })
	}
}

func benchConnect(b *testing.B, latency time.Duration) {
	bt := openBench(b, Options{Network: true, IncludeSelf: true, Latency: latency})
	bt.read()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c.Write([]byte("x"))
		c.Close()
	}
	time.Sleep(50 * time.Millisecond) // the servers' closes
	b.StopTimer()
	bt.finish(b, "conn")
}

// BenchmarkRingbufDrain measures how fast the reader empties a ring buffer
// holding a backlog (reading and decoding, no wakeups in between): the
// sustained rate one reader thread can take. The backlog is exec and exit
// records of /bin/true, made with the timer stopped.
func BenchmarkRingbufDrain(b *testing.B) {
	if err := Check(); err != nil {
		b.Skipf("eBPF tracing unavailable here: %v", err)
	}
	tr, err := Open(Options{Process: true, RingBytes: 64 << 20, Latency: -1, Filter: Filter{Comms: []string{"true"}, AllowComms: true}})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}
	fill := func(records int) {
		for i := 0; i < records/2; i++ {
			pid, err := syscall.ForkExec("/bin/true", []string{"true", "a", "b"}, attr)
			if err != nil {
				b.Fatal(err)
			}
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
	}
	var ev event.Event
	const chunk = 2000
	b.ResetTimer()
	for left := b.N; left > 0; {
		n := min(left, chunk)
		b.StopTimer()
		fill(n + n%2)
		b.StartTimer()
		for i := 0; i < n; i++ {
			if _, err := tr.Next(&ev); err != nil {
				b.Fatal(err)
			}
		}
		left -= n
		// Leftover odd record and stragglers: drain without timing.
		b.StopTimer()
		for tr.rd.AvailableBytes() > 0 {
			if _, err := tr.Next(&ev); err != nil {
				break
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
