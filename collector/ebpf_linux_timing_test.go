//go:build linux

package collector

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// BenchmarkEBPFExecStorm runs the exec storm of BenchmarkAuditExecStorm
// (4 threads of a separate process starting /bin/true, 40,000 in all)
// under a node with the ebpf input (process events of /bin/true only,
// filtered in the kernel) and the disk spool, and reports the collector's
// CPU seconds per 100,000 execs, comparable with the audit benchmark's
// cpu-s/100k-events (one audit event per exec), plus the CPU the BPF
// programs take in the kernel per exec, which the exec'ing processes pay,
// and the sum of the two per exec (path-us/exec): what the eBPF path
// costs, to set against the audit benchmark's collector CPU plus its
// kauditd-us/exec. Each exec yields two events here: exec and exit.
//
//	go test -run '^$' -bench 'ExecStorm' -benchtime 1x ./collector/
func BenchmarkEBPFExecStorm(b *testing.B) {
	needEBPF(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Skipf("cannot enable BPF run statistics: %v", err)
	}
	defer stats.Close()
	const workers, perWorker = 4, 10000
	total := workers * perWorker
	for b.Loop() {
		n := newNode(b, fmt.Sprintf(`node: {data_dir: %s}
http: {listen: ""}
inputs:
  ebpf: {type: ebpf, network: false, include_comms: ["true"]}
`, b.TempDir()), io.Discard)
		var in *EBPFInput
		for _, i := range n.inputs {
			if e, ok := i.(*EBPFInput); ok {
				in = e
			}
		}
		if in == nil {
			b.Fatal("the ebpf input did not start")
		}
		stop := startNode(n)
		run0, err := in.tr.RunStats()
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := selfCPU()
		start := time.Now()
		execStorm(b, workers, perWorker)
		stormDone := time.Now()
		var received, lost uint64
		deadline := time.Now().Add(30 * time.Second)
		for {
			for _, s := range n.Ledger().Snapshot().Inputs {
				if s.Name == "ebpf" {
					received, lost = s.Received, s.UpstreamLost["bpf_ringbuf_full"]
				}
			}
			if received+lost >= uint64(2*total) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		elapsed := time.Since(start)
		cpu := selfCPU() - cpu0
		run1, err := in.tr.RunStats()
		if err != nil {
			b.Fatal(err)
		}
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(total)/stormDone.Sub(start).Seconds(), "execs/s")
		b.ReportMetric(float64(received)/elapsed.Seconds(), "events/s")
		bpfNs := float64((run1.Runtime - run0.Runtime).Nanoseconds()) / float64(total)
		b.ReportMetric(cpu.Seconds()*100000/float64(total), "cpu-s/100k-execs")
		b.ReportMetric(bpfNs, "bpf-ns/exec")
		b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(total)+bpfNs/1e3, "path-us/exec")
		b.ReportMetric(float64(lost), "ringbuf-full")
		b.ReportMetric(float64(uint64(2*total)-min(received+lost, uint64(2*total))), "missing")
	}
}
