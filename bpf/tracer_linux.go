//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

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
	coll   *ebpf.Collection
	linkMu sync.Mutex
	links  []link.Link
	rd     *ringbuf.Reader
	rec    ringbuf.Record
	// wait, when set, is the ring buffer map's descriptor in the Go
	// runtime's netpoller: Next sleeps there between batches instead of in
	// a blocking epoll_wait (see waitRing).
	wait     *os.File
	waitConn syscall.RawConn
	waitFn   func(uintptr) bool // waitConn.Read's callback, made once
	polls    int                // waitFn's calls in the current wait
	stopping atomic.Bool        // Stop was called
	drained  bool               // Next has returned ErrStopped
	recvTime int64              // Unix ns the current batch was taken at, or 0
	dec      Decoder
	offset   atomic.Int64
	mode     Attach
	owners   bool
	latency  time.Duration
	procs    *proccache.Cache
	self     proccache.Info // scratch for enrich: events alias it
	parent   proccache.Info
	closed   atomic.Bool
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
	var ignore uint8
	if opts.ignoreGroupDead {
		ignore = 1
	}
	set(traceVarExitIgnoreGroupDead, ignore)
	var wakeup uint64
	if opts.Latency > 0 {
		wakeup = uint64(opts.RingBytes / 8)
	}
	set(traceVarWakeupBytes, wakeup)
	f := &opts.Filter
	if n := len(f.Comms); n <= filterInline {
		var comms [filterInline][2]uint64
		for i, c := range f.Comms {
			var key [commLen]byte
			copy(key[:], c)
			comms[i] = [2]uint64{le.Uint64(key[:8]), le.Uint64(key[8:])}
		}
		set(traceVarCommInline, comms)
		set(traceVarCommInlineLen, uint32(n))
	}
	if n := len(f.UIDs); n <= filterInline {
		var uids [filterInline]uint32
		copy(uids[:], f.UIDs)
		set(traceVarUidInline, uids)
		set(traceVarUidInlineLen, uint32(n))
	}
	if n := len(f.Cgroups); n <= filterInline {
		var ids [filterInline]uint64
		copy(ids[:], f.Cgroups)
		set(traceVarCgroupInline, ids)
		set(traceVarCgroupInlineLen, uint32(n))
	}
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
	t.openWait(coll.Maps[traceMapEvents])
	if t.wait == nil && t.latency > 0 {
		t.rd.SetDeadline(time.Now().Add(t.latency))
	}
	return t, nil
}

// openWait puts a duplicate of the ring buffer map's descriptor into the
// Go runtime's netpoller, so that Next can sleep between batches as a
// parked goroutine. The ringbuf reader's own wait is a blocking
// epoll_wait system call: a goroutine blocked in a system call keeps the
// runtime's monitor thread waking every 20 µs to hand its P to another
// thread, which cost more CPU than reading the records did. When the
// descriptor cannot be polled that way, t.wait stays nil and Next falls
// back on the reader's wait.
func (t *Tracer) openWait(m *ebpf.Map) {
	fd, err := unix.FcntlInt(uintptr(m.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return
	}
	// O_NONBLOCK is what makes os.NewFile register the descriptor with
	// the netpoller; BPF map operations ignore it.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return
	}
	f := os.NewFile(uintptr(fd), "bpf ring buffer")
	rc, err := f.SyscallConn()
	if err != nil || f.SetReadDeadline(time.Time{}) != nil {
		f.Close() // not in the netpoller: deadlines are unsupported
		return
	}
	// Make the read deadline the reader's own: ReadInto never blocks.
	t.rd.SetDeadline(time.Unix(1, 0))
	t.wait, t.waitConn = f, rc
	// The first call runs before sleeping, the next after a wakeup.
	t.waitFn = func(uintptr) bool {
		t.polls++
		return t.polls > 1
	}
}

func pick(btf bool, b, tp []program) []program {
	if btf {
		return b
	}
	return tp
}

// filterInline is FILTER_INLINE in trace.bpf.c: filter lists up to this
// long are constants in the programs; longer ones go into the filter maps.
const filterInline = 8

// fillFilters puts the filter lists too long to be constants into the
// filter maps.
func fillFilters(coll *ebpf.Collection, f *Filter) error {
	one := uint8(1)
	comms, uids, cgroups := f.Comms, f.UIDs, f.Cgroups
	if len(comms) <= filterInline {
		comms = nil
	}
	if len(uids) <= filterInline {
		uids = nil
	}
	if len(cgroups) <= filterInline {
		cgroups = nil
	}
	for _, c := range comms {
		var key [commLen]byte
		copy(key[:], c)
		if err := coll.Maps[traceMapCommFilter].Put(key, one); err != nil {
			return fmt.Errorf("cannot add comm %q to the filter: %w", c, err)
		}
	}
	for _, u := range uids {
		if err := coll.Maps[traceMapUidFilter].Put(u, one); err != nil {
			return fmt.Errorf("cannot add uid %d to the filter: %w", u, err)
		}
	}
	for _, id := range cgroups {
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
// call. ev.RecvTime is when the reader woke to take the batch of records
// this one came in (records wait in the ring buffer for up to
// [Options.Latency] and are read in batches). A malformed record returns
// an error wrapping [ErrMalformed] and the reader can go on. After Stop,
// Next returns the records still queued, then [ErrStopped]; after Close, an
// error wrapping [os.ErrClosed]. It does not allocate in steady state.
func (t *Tracer) Next(ev *event.Event) (int, error) {
	for {
		err := t.rd.ReadInto(&t.rec)
		if err == nil {
			break
		}
		if t.wait != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			// The ring buffer is empty.
			if t.drained {
				return 0, ErrStopped
			}
			if err := t.waitRing(); err != nil {
				return 0, err
			}
			t.recvTime = 0 // a new batch
			continue
		}
		if t.latency > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			// The ring buffer is empty: sleep until the next poll, or
			// until the kernel finds it filling up.
			t.rd.SetDeadline(time.Now().Add(t.latency))
			continue
		}
		switch {
		case errors.Is(err, ringbuf.ErrFlushed):
			t.drained = true
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
	// One clock read per batch; without the netpoller wait, batches are
	// not seen, so one per record.
	if t.recvTime == 0 || t.wait == nil {
		t.recvTime = time.Now().UnixNano()
	}
	ev.RecvTime = t.recvTime
	if t.procs != nil && ev.Kind == event.KindProcess {
		t.enrich(&ev.Process, t.rec.RawSample)
	}
	return len(t.rec.RawSample), nil
}

// waitRing sleeps until the next poll (t.latency from now), or until the
// kernel wakes the reader (when the ring buffer fills up, or for every
// record when t.latency < 0), or until Stop or Close.
func (t *Tracer) waitRing() error {
	var deadline time.Time
	if t.latency > 0 {
		deadline = time.Now().Add(t.latency)
	}
	t.wait.SetReadDeadline(deadline)
	// Stop sets its deadline after setting stopping: whichever deadline
	// won, a Stop is seen here or ends the wait.
	if t.stopping.Load() {
		return nil
	}
	t.polls = 0
	err := t.waitConn.Read(t.waitFn)
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if t.closed.Load() {
		return fmt.Errorf("ebpf: %w", os.ErrClosed)
	}
	return fmt.Errorf("cannot wait for the BPF ring buffer: %w", err)
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
	if t.wait != nil {
		t.stopping.Store(true)
		t.wait.SetReadDeadline(time.Unix(1, 0)) // ends a wait in Next
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
	if t.wait != nil {
		t.wait.Close() // ends a wait in Next
	}
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
