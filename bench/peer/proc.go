package peer

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of the CPU times in /proc: 100 on every
// Linux architecture Go supports.
const ClockTicks = 100

// Stat is what the harnesses read of a process from /proc/PID/stat.
type Stat struct {
	Pid int
	// State is the one-letter state: R running, S sleeping, Z zombie, ...
	State byte
	// Pgrp is the process group, which a harness starts a collector in
	// to measure and wait for the processes it forks.
	Pgrp int
	// Utime and Stime are the CPU time of the process's own threads;
	// Cutime and Cstime that of the children it has waited for. In clock
	// ticks ([ClockTicks] a second).
	Utime, Stime, Cutime, Cstime uint64
}

// CPU returns utime+stime in seconds: the process's own threads, not its
// children.
func (s *Stat) CPU() float64 { return float64(s.Utime+s.Stime) / ClockTicks }

// CPUWithChildren returns utime+stime+cutime+cstime in seconds: the
// process's own threads and the children it has waited for.
func (s *Stat) CPUWithChildren() float64 {
	return float64(s.Utime+s.Stime+s.Cutime+s.Cstime) / ClockTicks
}

// ParseStat parses the content of /proc/PID/stat, "pid (comm) state ppid
// pgrp ...". The command name may hold spaces and parentheses, so the
// fields are counted from the last ')': utime is the 12th after it, then
// stime, cutime and cstime. ok is false when b is not such a line.
func ParseStat(b []byte) (st Stat, ok bool) {
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return Stat{}, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return Stat{}, false
	}
	fs := strings.Fields(s[closing+1:])
	// The state is one letter (R, S, D, Z, T, t, X, I, ...).
	if len(fs) < 15 || len(fs[0]) != 1 || !('A' <= fs[0][0] && fs[0][0] <= 'Z' || 'a' <= fs[0][0] && fs[0][0] <= 'z') {
		return Stat{}, false
	}
	pgrp, err := strconv.Atoi(fs[2])
	if err != nil {
		return Stat{}, false
	}
	var ticks [4]uint64
	for i, f := range fs[11:15] {
		// cutime and cstime are signed (a child's time not yet known
		// shows as -1): a negative time counts as none.
		v, _ := strconv.ParseInt(f, 10, 64)
		ticks[i] = uint64(max(v, 0))
	}
	return Stat{Pid: pid, State: fs[0][0], Pgrp: pgrp, Utime: ticks[0], Stime: ticks[1], Cutime: ticks[2], Cstime: ticks[3]}, true
}

// ReadStat reads and parses /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, err
	}
	st, ok := ParseStat(b)
	if !ok {
		return Stat{}, fmt.Errorf("cannot parse %s: %q", path, b)
	}
	return st, nil
}

// PeakRSS returns the peak resident memory (VmHWM) of process pid in KiB,
// or 0 once it has exited.
func PeakRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			if fs := strings.Fields(v); len(fs) >= 1 {
				kib, _ := strconv.ParseUint(fs[0], 10, 64)
				return kib
			}
		}
	}
	return 0
}

// ProcStats returns the utime+stime of process pid in seconds (its own
// threads, not its waited-for children) and its VmHWM in KiB; zeros once
// it has exited.
func ProcStats(pid int) (cpu float64, peakRSSKiB uint64) {
	if st, err := ReadStat(pid); err == nil {
		cpu = st.CPU()
	}
	return cpu, PeakRSS(pid)
}
