//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/trawlsec/trawl/bpf/proccache"
	"github.com/trawlsec/trawl/event"
)

// Supported reports whether this build carries the BPF programs (Linux on
// a little-endian architecture).
const Supported = true

// Tracer owns the loaded BPF programs, their links and the ring-buffer
// reader. Next is meant for one goroutine; Stats, SyncClock, Stop and
// Close may be called from others.
type Tracer struct {
	coll    *ebpf.Collection
	linkMu  sync.Mutex
	links   []link.Link
	rd      *ringbuf.Reader
	rec     ringbuf.Record
	dec     Decoder
	offset  atomic.Int64
	mode    Attach
	owners  bool
	latency time.Duration
	procs   *proccache.Cache
	self    proccache.Info // scratch for enrich: events alias it
	parent  proccache.Info
	closed  atomic.Bool
}

var (
	processBTF = []program{
		{name: traceProgExecBtf, btf: true, event: "sched_process_exec"},
		{name: traceProgExitBtf, btf: true, event: "sched_process_exit"},
	}
	processTP = []program{
		{name: traceProgExecTp, group: "sched", event: "sched_process_exec"},
		{name: traceProgExitTp, group: "sched", event: "sched_process_exit"},
	}
	networkBTF = []program{{name: traceProgStateBtf, btf: true, event: "inet_sock_set_state"}}
	networkTP  = []program{{name: traceProgStateTp, group: "sock", event: "inet_sock_set_state"}}
	// acceptOwner gives accepted sockets their process; both are classic
	// (syscall tracepoints have no tp_btf form) and optional.
	acceptOwner = []program{
		{name: traceProgAccept4Exit, group: "syscalls", event: "sys_exit_accept4"},
		{name: traceProgAcceptExit, group: "syscalls", event: "sys_exit_accept"},
	}
)

// Open checks that the host can run the programs ([Check]), loads and
// attaches them, and opens the ring buffer. The programs run from then on;
// records queue in the ring buffer until Next reads them.
func Open(opts Options) (*Tracer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := Check(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("cannot lift the memlock limit for BPF maps: %w", err)
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	tracefs := ensureTracefs() == nil
	owners := opts.Network && tracefs && tracepointsExist(acceptOwner)

	var t *Tracer
	var err error
	switch opts.Attach {
	case AttachBTF:
		t, err = load(&opts, true, owners)
	case AttachTracepoint:
		if !tracefs {
			return nil, fmt.Errorf("classic tracepoints need tracefs: %w", ensureTracefs())
		}
		t, err = load(&opts, false, owners)
	default:
		t, err = load(&opts, true, owners)
		if err != nil && tracefs {
			logf("ebpf: tp_btf programs refused (%v); using classic tracepoints", firstLine(err))
			t, err = load(&opts, false, owners)
		}
	}
	if err != nil {
		return nil, err
	}
	t.SyncClock()
	return t, nil
}

// load loads and attaches one flavour of the programs.
func load(opts *Options, btf, owners bool) (_ *Tracer, err error) {
	spec, err := loadTrace()
	if err != nil {
		return nil, err
	}
	var progs []program
	if opts.Process {
		progs = append(progs, pick(btf, processBTF, processTP)...)
	}
	if opts.Network {
		progs = append(progs, pick(btf, networkBTF, networkTP)...)
		if owners {
			progs = append(progs, acceptOwner...)
		}
	}
	if !btf {
		if err := ensureTracefs(); err != nil {
			return nil, fmt.Errorf("classic tracepoints need tracefs: %w", err)
		}
		for _, p := range progs {
			if !tracepointsExist([]program{p}) {
				return nil, fmt.Errorf("tracepoint %s/%s is missing from this kernel", p.group, p.event)
			}
		}
	}
	keep := map[string]bool{}
	for _, p := range progs {
		keep[p.name] = true
	}
	for name := range spec.Programs {
		if !keep[name] {
			delete(spec.Programs, name)
		}
	}
	spec.Maps[traceMapEvents].MaxEntries = uint32(opts.RingBytes)
	set := func(name string, v any) {
		if err == nil {
			if e := spec.Variables[name].Set(v); e != nil {
				err = fmt.Errorf("cannot set %s: %w", name, e)
			}
		}
	}
	set(traceVarOwnTgid, uint32(os.Getpid()))
	set(traceVarFilterFlags, opts.flags())
	var via uint8
	if owners {
		via = 1
	}
	set(traceVarAcceptViaSyscall, via)
	var wakeup uint64
	if opts.Latency > 0 {
		wakeup = uint64(opts.RingBytes / 8)
	}
	set(traceVarWakeupBytes, wakeup)
	if err != nil {
		return nil, err
	}

	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("cannot load BPF programs: %w", err)
	}
	t := &Tracer{coll: coll, mode: AttachTracepoint, owners: owners, latency: opts.Latency, procs: opts.Processes}
	// Sized for the largest record, so reading never grows it.
	t.rec.RawSample = make([]byte, 0, maxRecord)
	if btf {
		t.mode = AttachBTF
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if err := fillFilters(coll, &opts.Filter); err != nil {
		return nil, err
	}
	for _, p := range progs {
		var l link.Link
		if p.btf {
			l, err = link.AttachTracing(link.TracingOptions{Program: coll.Programs[p.name], AttachType: ebpf.AttachTraceRawTp})
		} else {
			l, err = link.Tracepoint(p.group, p.event, coll.Programs[p.name], nil)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot attach %s to %s: %w", p.name, p.event, err)
		}
		t.links = append(t.links, l)
	}
	t.rd, err = ringbuf.NewReader(coll.Maps[traceMapEvents])
	if err != nil {
		return nil, fmt.Errorf("cannot open the BPF ring buffer: %w", err)
	}
	if t.latency > 0 {
		t.rd.SetDeadline(time.Now().Add(t.latency))
	}
	return t, nil
}

func pick(btf bool, b, tp []program) []program {
	if btf {
		return b
	}
	return tp
}

func fillFilters(coll *ebpf.Collection, f *Filter) error {
	one := uint8(1)
	for _, c := range f.Comms {
		var key [commLen]byte
		copy(key[:], c)
		if err := coll.Maps[traceMapCommFilter].Put(key, one); err != nil {
			return fmt.Errorf("cannot add comm %q to the filter: %w", c, err)
		}
	}
	for _, u := range f.UIDs {
		if err := coll.Maps[traceMapUidFilter].Put(u, one); err != nil {
			return fmt.Errorf("cannot add uid %d to the filter: %w", u, err)
		}
	}
	for _, id := range f.Cgroups {
		if err := coll.Maps[traceMapCgroupFilter].Put(id, one); err != nil {
			return fmt.Errorf("cannot add cgroup %d to the filter: %w", id, err)
		}
	}
	return nil
}

// Mode returns the program flavour in use: AttachBTF or AttachTracepoint.
func (t *Tracer) Mode() Attach { return t.mode }

// AcceptOwners reports whether accepted connections carry their process
// (the accept(2) tracepoints are attached). Without them an accept is
// reported when the handshake completes, with no process.
func (t *Tracer) AcceptOwners() bool { return t.owners }

// Next blocks until a record arrives, decodes it into ev (see
// [Decoder.Decode]) and returns the record's size in bytes. ev's byte
// slices alias the Tracer's record buffer and are valid until the next
// call. A malformed record returns an error wrapping [ErrMalformed] and the
// reader can go on. After Stop, Next returns the records still queued,
// then [ErrStopped]; after Close, an error wrapping [os.ErrClosed]. It does
// not allocate in steady state.
func (t *Tracer) Next(ev *event.Event) (int, error) {
	for {
		err := t.rd.ReadInto(&t.rec)
		if err == nil {
			break
		}
		if t.latency > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			// The ring buffer is empty: sleep until the next poll, or
			// until the kernel finds it filling up.
			t.rd.SetDeadline(time.Now().Add(t.latency))
			continue
		}
		switch {
		case errors.Is(err, ringbuf.ErrFlushed):
			return 0, ErrStopped
		case errors.Is(err, ringbuf.ErrClosed), errors.Is(err, os.ErrClosed):
			return 0, fmt.Errorf("ebpf: %w", os.ErrClosed)
		}
		return 0, fmt.Errorf("cannot read the BPF ring buffer: %w", err)
	}
	t.dec.MonoOffset = t.offset.Load()
	if err := t.dec.Decode(ev, t.rec.RawSample); err != nil {
		return len(t.rec.RawSample), err
	}
	if t.procs != nil && ev.Kind == event.KindProcess {
		t.enrich(&ev.Process, t.rec.RawSample)
	}
	return len(t.rec.RawSample), nil
}

// enrich completes a decoded process event from the process cache and
// keeps the cache current: an exec is remembered, an exit forgotten.
func (t *Tracer) enrich(p *event.Process, rec []byte) {
	c := t.procs
	if p.Action == event.ProcessExec {
		start := int64(le.Uint64(rec[execStart:]))
		pstart := int64(le.Uint64(rec[execParentStart:]))
		if c.Lookup(p.PPID, pstart, &t.parent) {
			p.ParentName, p.ParentExe = t.parent.Name(), t.parent.Executable()
		}
		c.Exec(p.PID, p.PPID, start, pstart, p.Comm, p.Filename)
		p.ContainerID = c.Container(p.CgroupID, p.PID, p.PPID)
		return
	}
	start := int64(le.Uint64(rec[exitStart:]))
	pstart := int64(0)
	if c.Lookup(p.PID, start, &t.self) {
		p.Filename = t.self.Executable()
		if t.self.PPID == p.PPID {
			pstart = t.self.ParentStart
		}
	}
	if c.Lookup(p.PPID, pstart, &t.parent) {
		p.ParentName, p.ParentExe = t.parent.Name(), t.parent.Executable()
	}
	p.ContainerID = c.Container(p.CgroupID, p.PID, p.PPID)
	c.Exit(p.PID, start)
}

// Stop detaches the programs, so that nothing more is recorded, and makes
// Next return what the ring buffer still holds, then ErrStopped. It may be
// called while Next blocks.
func (t *Tracer) Stop() error {
	var errs []error
	t.linkMu.Lock()
	for _, l := range t.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	t.links = nil
	t.linkMu.Unlock()
	if err := t.rd.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("cannot flush the BPF ring buffer: %w", err))
	}
	return errors.Join(errs...)
}

// SyncClock recomputes the offset from kernel (monotonic) time to Unix
// time, which moves when the wall clock is stepped or slewed.
func (t *Tracer) SyncClock() {
	if off, err := MonoOffset(); err == nil {
		t.offset.Store(off)
	}
}

// Stats reads the kernel side's counters.
func (t *Tracer) Stats() (Stats, error) {
	var s Stats
	m := t.coll.Maps[traceMapStats]
	for i, dst := range []*uint64{&s.RingbufFull, &s.Filtered, &s.Untracked} {
		var perCPU []uint64
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			return s, fmt.Errorf("cannot read BPF stats: %w", err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return s, nil
}

// RunStats reads the kernel's run counters of the loaded programs.
func (t *Tracer) RunStats() (RunStats, error) {
	var rs RunStats
	for name, p := range t.coll.Programs {
		st, err := p.Stats()
		if err != nil {
			return rs, fmt.Errorf("cannot read the run counters of %s: %w", name, err)
		}
		rs.Runs += st.RunCount
		rs.Runtime += st.Runtime
	}
	return rs, nil
}

// Close detaches the programs and frees the maps. It unblocks Next.
func (t *Tracer) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	var errs []error
	t.linkMu.Lock()
	for _, l := range t.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	t.links = nil
	t.linkMu.Unlock()
	if t.rd != nil {
		if err := t.rd.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	t.coll.Close()
	return errors.Join(errs...)
}

// firstLine keeps a verifier error to one log line.
func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
