package bpf

import (
	"errors"
	"fmt"
	"time"

	"github.com/trawlsec/trawl/bpf/proccache"
)

// Attach says which program flavour a [Tracer] uses.
type Attach uint8

// Attach modes.
const (
	// AttachAuto uses BTF-typed tracepoints (tp_btf) and falls back to
	// classic tracepoints when the kernel refuses them.
	AttachAuto Attach = iota
	// AttachBTF uses tp_btf programs only (kernel 5.5 or later with BTF).
	// It needs no tracefs, except for the accept(2) owner programs.
	AttachBTF
	// AttachTracepoint uses classic tracepoints only (needs tracefs).
	AttachTracepoint
)

// String names the mode as in logs: auto, tp_btf, tracepoint.
func (a Attach) String() string {
	switch a {
	case AttachBTF:
		return "tp_btf"
	case AttachTracepoint:
		return "tracepoint"
	}
	return "auto"
}

// DefaultRingBytes is the BPF ring buffer's default size. An exec record
// takes about 0.3 KiB with a short command line and at most 5 KiB, so it
// holds thousands of events while the reader is descheduled.
const DefaultRingBytes = 8 << 20

// Filter decides in the kernel which processes are reported. Each list is
// a deny list, or an allow list when its Allow flag is set; an empty list
// filters nothing. A process must pass every list. For connections the
// process is the socket's owner: the one that called connect(2) or
// accept(2).
type Filter struct {
	// Comms are process names (the kernel's comm: at most 15 bytes, longer
	// names are refused).
	Comms      []string
	AllowComms bool
	// UIDs are real user ids.
	UIDs      []uint32
	AllowUIDs bool
	// Cgroups are cgroup v2 ids (the inode number of the cgroup's
	// directory under the cgroup2 mount).
	Cgroups      []uint64
	AllowCgroups bool
}

// DefaultLatency is the default of Options.Latency: half the frames'
// default max_latency, as the eBPF input sets it.
const DefaultLatency = 100 * time.Millisecond

// maxFilterEntries is the capacity of each filter map in trace.bpf.c.
const maxFilterEntries = 1024

// Options configure a [Tracer].
type Options struct {
	// Process enables exec and exit records; Network enables TCP connect,
	// accept and close records. At least one must be set.
	Process bool
	Network bool
	// RingBytes is the size of the BPF ring buffer: a power of two and a
	// multiple of the page size (default DefaultRingBytes).
	RingBytes int
	// IncludeSelf reports the calling process's own execs and connections,
	// which are otherwise dropped in the kernel so that trawl does not
	// report its own traffic (a Kafka sink's connections, say).
	IncludeSelf bool
	// Filter drops processes in the kernel.
	Filter Filter
	// Attach picks the program flavour (default AttachAuto).
	Attach Attach
	// Latency bounds how long a record waits in the ring buffer before the
	// reader takes it (default DefaultLatency). The reader wakes on a timer
	// and when an eighth of the ring buffer is full, instead of once per
	// record: a wakeup costs the kernel an interrupt and the reader (and
	// whatever it hands the records to) context switches, many times the
	// cost of a record; reading in batches makes it a cost per batch. A
	// negative value wakes the reader for every record.
	Latency time.Duration
	// Processes, when set, is kept up to date from exec and exit events
	// and gives process events their parent's name and executable, the
	// executable of an exiting process, and their container id. Nil
	// leaves events as the kernel reported them.
	Processes *proccache.Cache
	// Logf receives one line when a fallback is taken; nil is silent.
	Logf func(format string, args ...any)

	// ignoreGroupDead makes the exit programs find a process's last
	// thread as on kernels older than 6.16, whose exit tracepoint does
	// not say: tests set it.
	ignoreGroupDead bool
}

func (o *Options) validate() error {
	if !o.Process && !o.Network {
		return errors.New("nothing to trace: enable process or network events")
	}
	if o.RingBytes == 0 {
		o.RingBytes = DefaultRingBytes
	}
	if o.Latency == 0 {
		o.Latency = DefaultLatency
	}
	if o.RingBytes < 4096 || o.RingBytes&(o.RingBytes-1) != 0 {
		return fmt.Errorf("ring buffer size %d is not a power of two of at least 4096 bytes", o.RingBytes)
	}
	for _, c := range o.Filter.Comms {
		if c == "" || len(c) >= commLen {
			return fmt.Errorf("cannot filter on comm %q: a process name is 1 to %d bytes", c, commLen-1)
		}
	}
	f := &o.Filter
	if len(f.Comms) > maxFilterEntries || len(f.UIDs) > maxFilterEntries || len(f.Cgroups) > maxFilterEntries {
		return fmt.Errorf("a filter list holds at most %d entries", maxFilterEntries)
	}
	if o.Attach > AttachTracepoint {
		return fmt.Errorf("unknown attach mode %d", o.Attach)
	}
	return nil
}

// Filter flags (enum filter_flag in trace.bpf.c).
const (
	filterSelf        = 1 << 0
	filterComm        = 1 << 1
	filterCommAllow   = 1 << 2
	filterUID         = 1 << 3
	filterUIDAllow    = 1 << 4
	filterCgroup      = 1 << 5
	filterCgroupAllow = 1 << 6
)

// flags returns the filter_flags constant for o.
func (o *Options) flags() uint32 {
	var fl uint32
	if !o.IncludeSelf {
		fl |= filterSelf
	}
	f := &o.Filter
	if len(f.Comms) > 0 || f.AllowComms {
		fl |= filterComm
		if f.AllowComms {
			fl |= filterCommAllow
		}
	}
	if len(f.UIDs) > 0 || f.AllowUIDs {
		fl |= filterUID
		if f.AllowUIDs {
			fl |= filterUIDAllow
		}
	}
	if len(f.Cgroups) > 0 || f.AllowCgroups {
		fl |= filterCgroup
		if f.AllowCgroups {
			fl |= filterCgroupAllow
		}
	}
	return fl
}

// RunStats are the kernel's run counters of a Tracer's programs, summed
// over them. The kernel counts only while BPF statistics are enabled
// (ebpf.EnableStats, or the kernel.bpf_stats_enabled sysctl), which costs
// a little per run; benchmarks turn them on.
type RunStats struct {
	Runs    uint64        // program invocations
	Runtime time.Duration // CPU time spent in the programs
}

// ErrStopped is returned by Tracer.Next once Stop was called and the ring
// buffer is drained.
var ErrStopped = errors.New("ebpf tracer stopped")

// Stats are the kernel side's counters, summed over CPUs since the
// Tracer was opened.
type Stats struct {
	// RingbufFull counts records lost because the ring buffer had no room.
	RingbufFull uint64
	// Filtered counts records the in-kernel filters suppressed.
	Filtered uint64
	// Untracked counts connections that completed a handshake the
	// programs did not see start (opened before the Tracer).
	Untracked uint64
}
