package collector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/audit"
	"github.com/trawlsec/trawl/bpf"
	"github.com/trawlsec/trawl/bpf/proccache"
	"github.com/trawlsec/trawl/config"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/ledger"
)

// EBPFOptions configures the eBPF input.
type EBPFOptions struct {
	Name   string
	Tracer bpf.Options
}

// EBPFInput reports process exec and exit and TCP connections traced by
// eBPF programs (package bpf). It needs root (or CAP_BPF and CAP_PERFMON)
// and a kernel with BTF; without them it logs one line at start and stays
// off while the rest of the node runs.
//
// Process events are completed on this host: the parent's name and
// executable and the container id from a process cache (package
// bpf/proccache), user and group names from passwd and group files.
//
// One goroutine drains the BPF ring buffer into the input's pipeline. The
// kernel never waits for it: when the ring buffer is full the programs
// drop the record and count it, and that count is the ledger's
// upstream_lost{cause="bpf_ringbuf_full"}.
type EBPFInput struct {
	opts EBPFOptions
	pipe *pipeline
	logf func(string, ...any)
	tr   *bpf.Tracer // nil when the input is off
	// names resolves user and group ids of process events, as for audit;
	// user and group remember its last answer for a moment, since an exec
	// and its exit, and most processes in a row, share their ids.
	names       *audit.Names
	user, group nameMemo

	ringFull  *metrics.Counter
	filtered  *metrics.Counter
	untracked *metrics.Counter
	malformed *metrics.Counter
}

// statsInterval is how often the kernel-side counters are read.
const statsInterval = time.Second

func newEBPFInput(opts EBPFOptions, pipe *pipeline, led *ledger.Input, set *metrics.Set, logf func(string, ...any)) *EBPFInput {
	in := &EBPFInput{
		opts:      opts,
		pipe:      pipe,
		logf:      logf,
		ringFull:  led.UpstreamLost("bpf_ringbuf_full"),
		malformed: led.Errors("malformed"),
		filtered:  set.GetOrCreateCounter(fmt.Sprintf(`trawl_ebpf_filtered_events_total{input=%q}`, opts.Name)),
		untracked: set.GetOrCreateCounter(fmt.Sprintf(`trawl_ebpf_untracked_connections_total{input=%q}`, opts.Name)),
	}
	to := opts.Tracer
	if to.Latency == 0 {
		// Each batch read from the BPF ring buffer wakes the reader and
		// then the framer, which on a 2-core VM costs about 170 µs of CPU
		// whatever the batch holds: fewer, larger batches are most of
		// what makes this input cheap. Frames are sealed max_latency
		// after their first event anyway, so records may wait half of
		// that in the ring buffer.
		to.Latency = max(pipe.limits.MaxLatency/2, time.Millisecond)
	}
	if to.Processes == nil {
		to.Processes = proccache.New(proccache.Options{})
	}
	in.names = audit.NewNames()
	to.Logf = func(format string, args ...any) { logf("input "+opts.Name+": "+format, args...) }
	tr, err := bpf.Open(to)
	if err != nil {
		logf("input %s: eBPF tracing is off: %v; the input stays off", opts.Name, err)
		return in
	}
	in.tr = tr
	var what []string
	if to.Process {
		what = append(what, "process exec/exit")
	}
	if to.Network {
		w := "TCP connections"
		if !tr.AcceptOwners() {
			w += " (accepts without their process: no syscall tracepoints)"
		}
		what = append(what, w)
	}
	logf("input %s: tracing %s with %s programs", opts.Name, strings.Join(what, " and "), tr.Mode())
	return in
}

// Running reports whether the programs are loaded (false when the host
// lacks the privileges or kernel support).
func (in *EBPFInput) Running() bool { return in.tr != nil }

// Close detaches the programs if Run never ran.
func (in *EBPFInput) Close() error {
	if in.tr == nil {
		return nil
	}
	return in.tr.Close()
}

// Run drains the ring buffer into the pipeline until ctx ends; then it
// detaches the programs and drains what they recorded before. hard ends a
// producer blocked on a full ring (policy block).
func (in *EBPFInput) Run(ctx, hard context.Context) error {
	if in.tr == nil {
		return nil
	}
	done := make(chan struct{})
	pollerDone := make(chan struct{})
	defer func() {
		close(done)
		<-pollerDone // it reads the maps: wait before closing them
		in.readStats()
		in.tr.Close()
	}()
	go func() {
		defer close(pollerDone)
		t := time.NewTicker(statsInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				in.readStats()
				in.tr.SyncClock()
			case <-ctx.Done():
				if err := in.tr.Stop(); err != nil {
					in.logf("input %s: stopping the eBPF programs: %v", in.opts.Name, err)
				}
				return
			case <-done:
				return
			}
		}
	}()

	pr := in.pipe.producer()
	var ev event.Event
	for {
		n, err := in.tr.Next(&ev)
		if err != nil {
			switch {
			case errors.Is(err, bpf.ErrMalformed):
				in.malformed.Inc()
				continue
			case errors.Is(err, bpf.ErrStopped), errors.Is(err, os.ErrClosed):
				return nil
			}
			return fmt.Errorf("input %s: %w", in.opts.Name, err)
		}
		if ev.Kind == event.KindProcess {
			p := &ev.Process
			p.UserName = in.user.get(p.UID, ev.RecvTime, in.names.User)
			p.GroupName = in.group.get(p.GID, ev.RecvTime, in.names.Group)
		}
		if err := pr.Emit(hard, &ev, n); err != nil {
			return nil // shutdown deadline passed while the ring was full
		}
	}
}

// nameMemo remembers one id's name from audit.Names for nameMemoFor.
// Names itself checks its files every 10 s, under a lock taken twice per
// call; two calls per event showed as about 5% of the collector's CPU in
// an exec storm, where nearly every event has the ids of the one before.
type nameMemo struct {
	id    uint32
	name  []byte
	until int64 // Unix ns; 0 when empty
}

// nameMemoFor is how long a name is reused without asking Names again.
const nameMemoFor = time.Second

// get returns id's name at time now (Unix ns), from the memo or from
// lookup.
func (m *nameMemo) get(id uint32, now int64, lookup func(uint32, time.Time) []byte) []byte {
	if id != m.id || now >= m.until || now < m.until-int64(nameMemoFor) {
		m.id, m.name = id, lookup(id, time.Unix(0, now))
		m.until = now + int64(nameMemoFor)
	}
	return m.name
}

// readStats copies the kernel-side counters into the ledger and metrics.
func (in *EBPFInput) readStats() {
	s, err := in.tr.Stats()
	if err != nil {
		return // closed meanwhile
	}
	in.ringFull.Set(s.RingbufFull)
	in.filtered.Set(s.Filtered)
	in.untracked.Set(s.Untracked)
}

// ebpfOptionsFrom turns an ebpf input's configuration into tracer options;
// cgroups given as paths are resolved to their ids here, on the host that
// runs the input.
func ebpfOptionsFrom(name string, in config.Input) (EBPFOptions, error) {
	e := &in.EBPF
	opts := EBPFOptions{Name: name, Tracer: bpf.Options{
		Process:     e.Process == nil || *e.Process,
		Network:     e.Network == nil || *e.Network,
		RingBytes:   int(e.RingBuffer),
		IncludeSelf: e.IncludeSelf,
	}}
	switch e.Attach {
	case "", "auto":
	case "tp_btf":
		opts.Tracer.Attach = bpf.AttachBTF
	case "tracepoint":
		opts.Tracer.Attach = bpf.AttachTracepoint
	}
	f := &opts.Tracer.Filter
	f.Comms, f.AllowComms = e.ExcludeComms, false
	if len(e.IncludeComms) > 0 {
		f.Comms, f.AllowComms = e.IncludeComms, true
	}
	f.UIDs, f.AllowUIDs = e.ExcludeUIDs, false
	if len(e.IncludeUIDs) > 0 {
		f.UIDs, f.AllowUIDs = e.IncludeUIDs, true
	}
	cgroups, allow := e.ExcludeCgroups, false
	if len(e.IncludeCgroups) > 0 {
		cgroups, allow = e.IncludeCgroups, true
	}
	f.AllowCgroups = allow
	for _, c := range cgroups {
		id, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			if id, err = bpf.CgroupID(c); err != nil {
				return opts, fmt.Errorf("input %q: %w", name, err)
			}
		}
		f.Cgroups = append(f.Cgroups, id)
	}
	return opts, nil
}
