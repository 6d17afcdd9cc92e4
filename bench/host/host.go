// Package host describes the machine a benchmark harness runs on, for the
// header of its report, and measures the harness's own CPU so that it can
// be told apart from the tools under test.
package host

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	LoadAvg   string `json:"loadavg_at_start"`
	LoadAtEnd string `json:"loadavg_at_end"`
	RmemMax   string `json:"net_core_rmem_max"`
	Versions  string `json:"versions"`
}

// Describe reads the machine as it is now (CPU model, cores, kernel, Go,
// load average, net.core.rmem_max); versions, the versions of the tools
// under test, are joined with "; ". LoadAtEnd is left for the caller to
// set with [LoadAvg] when the run ends.
func Describe(versions ...string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadAvg: LoadAvg(),
		Kernel: ReadTrim("/proc/sys/kernel/osrelease"), RmemMax: ReadTrim("/proc/sys/net/core/rmem_max"),
		Versions: strings.Join(versions, "; ")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, v, _ := strings.Cut(l, ":")
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Summary describes m for the first sentence of a report: "CPU model, 8
// cores, Linux 6.1.0, go1.26; load average at start 0.10 0.20 0.30, at end
// ...", the load averages cut to their three figures. The rest of the
// sentence (net.core.rmem_max, the run's settings) is the report's.
func (m Machine) Summary() string {
	return fmt.Sprintf("%s, %d cores, Linux %s, %s; load average at start %s, at end %s",
		m.CPU, m.Cores, m.Kernel, m.Go, firstN(m.LoadAvg, 3), firstN(m.LoadAtEnd, 3))
}

// firstN returns the first n blank-separated fields of s.
func firstN(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}

// LoadAvg is /proc/loadavg.
func LoadAvg() string { return ReadTrim("/proc/loadavg") }

// ReadTrim returns a (/proc) file's content without surrounding blanks, or
// "" when it cannot be read.
func ReadTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// SelfCPU returns this process's user+system CPU seconds.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
