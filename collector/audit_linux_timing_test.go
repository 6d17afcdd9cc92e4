//go:build linux

package collector

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trawlsec/trawl/audit"
	"github.com/trawlsec/trawl/audit/audittest"
)

// stormRules records every exec of /usr/bin/true (and nothing else, so the
// rest of the machine does not disturb the count), with the queue settings
// of configs/audit.rules.
const stormRules = `-b 16384
--backlog_wait_time 0
-a always,exit -F arch=b64 -S execve -F exe=/usr/bin/true -k storm
`

// BenchmarkAuditExecStorm runs the same exec storm (a separate process
// starting /bin/true from several threads as fast as it can) under trawl
// (a node with the audit input in unicast mode and the disk spool) and
// under auditd (writing its log), with the same rules, and reports for each
// the events per second, the collector's CPU seconds per 100,000 events and
// what the kernel lost. Root and auditd are needed; otherwise it skips.
//
//	go test -run '^$' -bench AuditExecStorm -benchtime 1x ./collector/
func BenchmarkAuditExecStorm(b *testing.B) {
	ctl := audittest.Kernel(b)
	auditd, auditctl, _ := auditdTools(b)
	const workers, perWorker = 4, 10000
	total := workers * perWorker
	dir := b.TempDir()
	rulesFile := filepath.Join(dir, "storm.rules")
	if err := os.WriteFile(rulesFile, []byte(stormRules), 0o600); err != nil {
		b.Fatal(err)
	}

	b.Run("trawl", func(b *testing.B) {
		for b.Loop() {
			n := newNode(b, fmt.Sprintf(`node: {data_dir: %s}
http: {listen: ""}
inputs:
  audit: {type: audit, rules_file: %s, ring_size: 8192}
`, b.TempDir(), rulesFile), io.Discard)
			stop := startNode(n)
			waitLoaded(b, ctl, uint32(os.Getpid()))
			lost0 := kernelLost(b, ctl)
			cpu0 := selfCPU()
			start := time.Now()
			execStorm(b, workers, perWorker)
			stormDone := time.Now()
			var in ledgerLine
			deadline := time.Now().Add(30 * time.Second)
			for {
				in = auditLedger(n)
				if in.received >= uint64(total) || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			elapsed := time.Since(start)
			cpu := selfCPU() - cpu0
			lost := kernelLost(b, ctl) - lost0
			if err := stop(); err != nil {
				b.Fatal(err)
			}
			report(b, total, in.received, elapsed, stormDone.Sub(start), cpu, lost)
			b.ReportMetric(float64(in.gaps), "seq-gaps")
		}
	})

	b.Run("auditd", func(b *testing.B) {
		for b.Loop() {
			logDir := b.TempDir()
			daemon := startAuditd(b, ctl, auditd, logDir)
			if out, err := exec.Command(auditctl, "-R", rulesFile).CombinedOutput(); err != nil {
				b.Fatalf("auditctl -R: %v: %s", err, out)
			}
			lost0 := kernelLost(b, ctl)
			cpu0 := procCPU(b, daemon.Process.Pid)
			start := time.Now()
			execStorm(b, workers, perWorker)
			stormDone := time.Now()
			logFile := filepath.Join(logDir, "audit.log")
			// Reading the growing log while auditd writes it would take
			// CPU from it: wait until it stops growing, then count once.
			waitQuiet(b, ctl, logFile)
			events := countEvents(b, logFile)
			elapsed := time.Since(start)
			cpu := procCPU(b, daemon.Process.Pid) - cpu0
			lost := kernelLost(b, ctl) - lost0
			stopAuditd(b, daemon)
			report(b, total, events, elapsed, stormDone.Sub(start), cpu, lost)
		}
	})
}

func report(b *testing.B, total int, got uint64, elapsed, storm time.Duration, cpu time.Duration, lost uint32) {
	b.ReportMetric(float64(total)/storm.Seconds(), "execs/s")
	b.ReportMetric(float64(got)/elapsed.Seconds(), "events/s")
	if got > 0 {
		b.ReportMetric(cpu.Seconds()*100000/float64(got), "cpu-s/100k-events")
	}
	b.ReportMetric(float64(lost), "kernel-lost")
	b.ReportMetric(float64(uint64(total)-min(got, uint64(total))), "missing")
}

type ledgerLine struct{ received, gaps uint64 }

func auditLedger(n *Node) ledgerLine {
	for _, in := range n.Ledger().Snapshot().Inputs {
		if in.Name == "audit" {
			return ledgerLine{received: in.Received, gaps: in.UpstreamLost["audit_sequence_gap"]}
		}
	}
	return ledgerLine{}
}

// waitLoaded waits until pid holds the audit PID with rules loaded and
// auditing on.
func waitLoaded(b *testing.B, ctl *audit.Control, pid uint32) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := ctl.State()
		if err != nil {
			b.Fatal(err)
		}
		if st.PID == pid && len(st.Rules) > 0 && st.Enabled == 1 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("audit PID %d (want %d), %d rules, enabled %d", st.PID, pid, len(st.Rules), st.Enabled)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func kernelLost(b *testing.B, ctl *audit.Control) uint32 {
	st, err := ctl.Status()
	if err != nil {
		b.Fatal(err)
	}
	return st.Lost
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is another process's user+system CPU time (clock ticks of
// /proc/PID/stat, 10ms each).
func procCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime: field 14 of stat
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// waitQuiet waits until the kernel's queue is empty and the log has not
// grown for half a second.
func waitQuiet(b *testing.B, ctl *audit.Control, logFile string) {
	var last int64 = -1
	stable := time.Now()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		fi, err := os.Stat(logFile)
		size := int64(0)
		if err == nil {
			size = fi.Size()
		}
		st, err := ctl.Status()
		if err != nil {
			b.Fatal(err)
		}
		if size != last || st.Backlog > 0 {
			last, stable = size, time.Now()
		} else if time.Since(stable) > 500*time.Millisecond {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countEvents counts the SYSCALL records (one per syscall event) in an
// auditd log; auditd does not write the kernel's EOE records.
func countEvents(b *testing.B, logFile string) uint64 {
	data, err := os.ReadFile(logFile)
	if err != nil && !os.IsNotExist(err) {
		b.Fatal(err)
	}
	return uint64(bytes.Count(data, []byte("type=SYSCALL ")))
}

// execStorm runs the exec storm in a child process, so its CPU is not the
// collector's. It reports the storm's own CPU per exec (storm-us/exec: the
// child and the /bin/true processes it reaped, kernel time included), and
// the kernel's audit thread's (kauditd-us/exec): what the kernel spends on
// audit or BPF programs in the exec path shows there, against
// BenchmarkExecStormBaseline, which runs with neither.
func execStorm(b *testing.B, workers, perWorker int) {
	b.Helper()
	kauditd0 := kauditdCPU()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperExecStorm$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("TRAWL_EXEC_STORM=%d,%d", workers, perWorker))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("exec storm: %v: %s", err, out)
	}
	execs := float64(workers * perWorker)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		b.ReportMetric(float64(ru.Utime.Nano()+ru.Stime.Nano())/1e3/execs, "storm-us/exec")
	}
	b.ReportMetric(float64(kauditdCPU()-kauditd0)/1e3/execs, "kauditd-us/exec")
}

// kauditdCPU is the CPU time of the kernel's kauditd thread (0 when there
// is none).
func kauditdCPU() time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, f := range dirs {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == "kauditd" {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			return procTicks(pid)
		}
	}
	return 0
}

// procTicks is the user+system CPU of pid from /proc/PID/stat.
func procTicks(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * (time.Second / 100) // USER_HZ
}

// BenchmarkExecStormBaseline runs the exec storm with no audit rules and
// no BPF programs: its storm-us/exec is what the others' are compared to.
//
//	go test -run '^$' -bench 'ExecStorm' -benchtime 1x ./collector/
func BenchmarkExecStormBaseline(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("compared with root-only benchmarks")
	}
	for b.Loop() {
		execStorm(b, 4, 10000)
	}
}

// TestHelperExecStorm is not a test: execStorm runs it in a child process
// to start /bin/true as fast as it can.
func TestHelperExecStorm(t *testing.T) {
	spec := os.Getenv("TRAWL_EXEC_STORM")
	if spec == "" {
		t.Skip("helper process for BenchmarkAuditExecStorm")
	}
	w, n, _ := strings.Cut(spec, ",")
	workers, _ := strconv.Atoi(w)
	per, _ := strconv.Atoi(n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}
			for range per {
				pid, err := syscall.ForkExec("/bin/true", []string{"true"}, attr)
				if err != nil {
					t.Error(err)
					return
				}
				var ws syscall.WaitStatus
				syscall.Wait4(pid, &ws, 0, nil)
			}
		}()
	}
	wg.Wait()
}
