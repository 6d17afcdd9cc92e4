package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trawlsec/trawl/bench/peer"
)

// defaultTools are the flow harness's collectors; the ones whose binary is
// missing are left out unless -tools names them.
var defaultTools = []string{"trawl", "trawl-none", "goflow2-pb", "goflow2", "nfcapd", "nfacctd", "sfcapd", "sfacctd"}

// defaultFormats are the formats a plain run steps through.
const defaultFormats = "v5,v9,ipfix,sflow"

// lookSbin returns name, or /usr/sbin/name when name is a bare command
// that is not in PATH but is there (pmacct's daemons are in /usr/sbin,
// outside a plain user's PATH).
func lookSbin(name string) string {
	if strings.ContainsRune(name, '/') {
		return name
	}
	if _, err := exec.LookPath(name); err != nil {
		if p := filepath.Join("/usr/sbin", name); isExecutable(p) {
			return p
		}
	}
	return name
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// groupProcs returns the processes of process group pgid that are not
// zombies.
func groupProcs(pgid int) []peer.Stat {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []peer.Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := peer.ReadStat(pid)
		if err != nil {
			continue // it ended meanwhile
		}
		if p.Pgrp == pgid && p.State != 'Z' {
			out = append(out, p)
		}
	}
	return out
}

// groupStats returns the CPU seconds (each process's own and its waited-for
// children's) of the live processes of process group pgid, and their
// memory in KiB: the peak RSS (VmHWM) of the largest, or, when more, the
// sum of their proportional set sizes now, which counts memory they share
// once (pmacct's core and plugin share the pipe between them; a sum of
// their RSS would count it twice). For one process that is its peak RSS.
func groupStats(pgid int) (cpu float64, memKiB uint64) {
	var pss uint64
	for _, p := range groupProcs(pgid) {
		cpu += p.CPUWithChildren()
		memKiB = max(memKiB, peer.PeakRSS(p.Pid))
		pss += procPss(p.Pid)
	}
	return cpu, max(memKiB, pss)
}

// groupCPU returns a function reading the CPU seconds of process group
// pgid (groupStats).
func groupCPU(pgid int) func() float64 {
	return func() float64 { cpu, _ := groupStats(pgid); return cpu }
}

// procPss returns the process's proportional set size in KiB (0 when
// unknown).
func procPss(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Pss:"); ok {
			fs := strings.Fields(v)
			if len(fs) > 0 {
				n, _ := strconv.ParseUint(fs[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// waitGroupGone waits until process group pgid has no live process left,
// polling every 50 ms, for at most timeout.
func waitGroupGone(ctx context.Context, pgid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := groupProcs(pgid)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes of group %d still running %v after the main one ended", len(left), pgid, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tvSec converts a rusage time to seconds.
func tvSec(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// udpRxQueue returns the bytes waiting in the receive queues of the UDP
// sockets bound to port on IPv4 (several with SO_REUSEPORT), from
// /proc/net/udp.
func udpRxQueue(port int) uint64 {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0
	}
	return parseUDPRxQueue(b, port)
}

// parseUDPRxQueue sums the rx_queue column of /proc/net/udp's lines whose
// local address has port: "sl local_address rem_address st
// tx_queue:rx_queue ...", addresses and queues in hex.
func parseUDPRxQueue(b []byte, port int) uint64 {
	suffix := fmt.Sprintf(":%04X", port)
	var sum uint64
	for _, l := range strings.Split(string(b), "\n") {
		fs := strings.Fields(l)
		if len(fs) < 5 || !strings.HasSuffix(fs[1], suffix) {
			continue
		}
		_, rx, ok := strings.Cut(fs[4], ":")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(rx, 16, 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
