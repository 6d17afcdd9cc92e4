package disk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FsyncPolicy says when appended records are fsynced, and so when they become
// durable (visible to readers, and covered by [Spool.Durable]).
type FsyncPolicy int

const (
	// FsyncInterval (the default) returns from Append after write(2); a
	// background goroutine fsyncs every Options.FsyncInterval. A crash of the
	// machine loses at most that much; a crash of the process loses nothing.
	FsyncInterval FsyncPolicy = iota
	// FsyncAlways returns from Append only once an fsync covers the record.
	// Concurrent appenders share fsyncs (group commit).
	FsyncAlways
	// FsyncNever never fsyncs except at rotation, Sync and Close: a record is
	// durable (for readers and Durable) as soon as it is written.
	FsyncNever
)

// ParseFsyncPolicy parses "always", "interval" or "never".
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "always":
		return FsyncAlways, nil
	case "interval":
		return FsyncInterval, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("invalid fsync policy %q: want always, interval or never", s)
}

// String returns the name ParseFsyncPolicy accepts.
func (p FsyncPolicy) String() string {
	switch p {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("FsyncPolicy(%d)", int(p))
}

// Options configures a spool. Zero values take the documented defaults.
type Options struct {
	// Dir is the spool directory; Open creates it. Required.
	Dir string
	// SegmentSize is the size a segment may reach before the next record goes
	// to a new one (default 64 MiB). A record larger than SegmentSize gets a
	// segment of its own.
	SegmentSize int64
	// Fsync is the fsync policy (default FsyncInterval).
	Fsync FsyncPolicy
	// FsyncInterval is the fsync period under FsyncInterval (default 100ms).
	FsyncInterval time.Duration
	// MaxBytes bounds the total size of all segments: retention deletes the
	// oldest sealed segments while the total exceeds it. 0 means unlimited. The
	// active segment is never deleted, so the bound can be exceeded by up to one
	// segment.
	MaxBytes int64
	// MaxAge makes retention delete a sealed segment whose last write is older
	// than MaxAge. 0 means unlimited.
	MaxAge time.Duration
	// RetentionInterval is how often retention runs (default 1s); it also runs
	// after every rotation.
	RetentionInterval time.Duration
	// OnExpire, if not nil, is called from the retention goroutine for every
	// record that retention deletes before some registered reader (one with a
	// cursor file or an open Reader) has read it, so the node can count it as
	// lost. rec is valid only during the call. Records every registered reader
	// has read are not reported; without registered readers nothing is.
	OnExpire func(rec []byte)
	// Logf, if not nil, receives rare events: recovery cuts, retention
	// deletions, fsync failures. It must be safe for concurrent use.
	Logf func(format string, args ...any)
}

const (
	defaultSegmentSize       = 64 << 20
	defaultFsyncInterval     = 100 * time.Millisecond
	defaultRetentionInterval = time.Second
	// scratchSize bounds the records Append copies into one buffer to write
	// envelope and payload with one write(2); larger ones take two.
	scratchSize = 256 << 10
	// maxHoles bounds how many failed fsync ranges WaitDurable remembers.
	maxHoles = 16
)

// Stats is a snapshot of a spool's state and counters since Open.
type Stats struct {
	// Segments is the number of segment files, the active one included.
	Segments int
	// Bytes is the total size of all segment files (gauge trawl_spool_bytes).
	Bytes int64
	// FirstPos is the base of the oldest retained segment.
	FirstPos Pos
	// NextPos is where the next record starts: the end of the last record.
	NextPos Pos
	// DurablePos is Durable().
	DurablePos Pos
	// Appended and AppendedBytes count records and payload bytes appended.
	Appended, AppendedBytes uint64
	// Fsyncs counts fsyncs of segment files; FsyncErrors counts failed ones.
	Fsyncs, FsyncErrors uint64
	// ExpiredRecords counts records retention deleted before a registered
	// reader read them (each passed to OnExpire).
	ExpiredRecords uint64
	// ExpiredSegments and ExpiredBytes count what retention deleted.
	ExpiredSegments, ExpiredBytes uint64
	// RecoveredCutBytes is how many bytes of torn or corrupt tail Open cut.
	RecoveredCutBytes int64
	// FullRefusals counts appends refused with ErrFull.
	FullRefusals uint64
}

// segInfo is the spool's view of one segment.
type segInfo struct {
	base Pos
	size int64
	// sealedAt is the time of the segment's last write; zero for the active one.
	sealedAt time.Time
}

// hole is a range of record ends (from, to] whose fsync failed.
type hole struct {
	from, to Pos
	err      error
}

// Spool is an append-only durable log of records in segment files. All methods
// are safe for concurrent use. One process at a time may have a directory open
// (Open takes a flock on DIR/LOCK).
type Spool struct {
	opts Options
	dir  string
	cdir string
	lock *os.File

	// durableA mirrors durable for lock-free Durable().
	durableA atomic.Uint64

	retMu sync.Mutex // serializes retention runs
	now   func() time.Time

	syncReq chan struct{}
	retReq  chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup

	mu sync.Mutex
	// cond is broadcast when durable advances, an fsync fails or the spool
	// closes; FsyncAlways appenders wait on it (no allocation per wait).
	cond sync.Cond
	// waitCh, when not nil, is closed on the same events as cond; it exists
	// only while a context-aware waiter needs it.
	waitCh chan struct{}
	// segs lists the retained segments, oldest first; the last one is active.
	segs []segInfo
	// active is the open file of the last segment; gen counts rotations.
	active *os.File
	gen    uint64
	// synced is the end of what the last successful fsync covered; durable is
	// what readers may see (== synced except under FsyncNever).
	synced, durable Pos
	holes           []hole
	// forceRotate makes the next Append rotate: after an fsync error the active
	// file's page cache state cannot be trusted for later records.
	forceRotate bool
	// dirtyTail is set when a failed write could not be cut back; the next
	// Append cuts it before writing.
	dirtyTail  bool
	closed     bool
	scratch    []byte
	hdr        [envSize]byte
	totalBytes int64
	readers    map[string]*Reader
	cursors    map[string]Pos
	// holds names the cursors that retention must not pass (see Hold).
	holds map[string]bool
	stats Stats
}

// Open opens or creates the spool in opts.Dir and recovers it: the last
// segment is validated and a torn or corrupt tail is cut (and logged), then
// appends resume there. Earlier segments are taken as sealed.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("cannot open spool: Options.Dir is empty")
	}
	if opts.SegmentSize == 0 {
		opts.SegmentSize = defaultSegmentSize
	}
	if opts.SegmentSize < segHeaderSize+envSize+1 {
		return nil, fmt.Errorf("cannot open spool %q: SegmentSize %d is too small", opts.Dir, opts.SegmentSize)
	}
	if opts.FsyncInterval <= 0 {
		opts.FsyncInterval = defaultFsyncInterval
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = defaultRetentionInterval
	}
	switch opts.Fsync {
	case FsyncAlways, FsyncInterval, FsyncNever:
	default:
		return nil, fmt.Errorf("cannot open spool %q: invalid fsync policy %d", opts.Dir, opts.Fsync)
	}
	if opts.MaxBytes < 0 || opts.MaxAge < 0 {
		return nil, fmt.Errorf("cannot open spool %q: negative retention limit", opts.Dir)
	}
	s := &Spool{
		opts:    opts,
		dir:     opts.Dir,
		cdir:    filepath.Join(opts.Dir, cursorDir),
		now:     time.Now,
		syncReq: make(chan struct{}, 1),
		retReq:  make(chan struct{}, 1),
		stop:    make(chan struct{}),
		scratch: make([]byte, scratchSize),
		readers: make(map[string]*Reader),
	}
	s.cond.L = &s.mu
	if err := os.MkdirAll(s.cdir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create spool directory %q: %w", s.cdir, err)
	}
	lock, err := lockDir(s.dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.loadCursors(); err != nil {
		s.active.Close()
		lock.Close()
		return nil, err
	}
	if opts.Fsync != FsyncNever {
		s.wg.Add(1)
		go s.syncLoop()
	}
	s.wg.Add(1)
	go s.retentionLoop(opts.MaxBytes > 0 || opts.MaxAge > 0)
	return s, nil
}

func (s *Spool) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf("spool %s: "+format, append([]any{s.dir}, args...)...)
	}
}

// recover builds s.segs from the directory and repairs the last segment.
func (s *Spool) recover() error {
	list, err := ListSegments(s.dir)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		f, err := s.createSegment(0)
		if err != nil {
			return err
		}
		s.active = f
		s.segs = []segInfo{{base: 0, size: segHeaderSize}}
		s.totalBytes = segHeaderSize
		s.setRecovered(segHeaderSize)
		return nil
	}
	for i, seg := range list {
		if i+1 < len(list) {
			next := list[i+1].Base
			if end := seg.Base + Pos(seg.Size); end > next {
				return fmt.Errorf("cannot open spool %q: segment %q (base %d, %d bytes) overlaps the next one at %d", s.dir, seg.Path, seg.Base, seg.Size, next)
			} else if end < next {
				s.logf("segment %q ends at %d but the next one starts at %d; positions in between hold no records", seg.Path, end, next)
			}
		}
		s.segs = append(s.segs, segInfo{base: seg.Base, size: seg.Size, sealedAt: seg.ModTime})
		s.totalBytes += seg.Size
	}
	last := list[len(list)-1]
	f, err := os.OpenFile(last.Path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cannot open active spool segment: %w", err)
	}
	size, cut, err := repairSegment(f, last.Path, last.Base, s.logf)
	if err != nil {
		f.Close()
		return err
	}
	s.stats.RecoveredCutBytes = cut
	s.active = f
	seg := &s.segs[len(s.segs)-1]
	s.totalBytes += size - seg.size
	seg.size = size
	seg.sealedAt = time.Time{}
	s.setRecovered(seg.base + Pos(size))
	return nil
}

// setRecovered marks everything up to p as fsynced and durable.
func (s *Spool) setRecovered(p Pos) {
	s.synced = p
	s.durable = p
	s.durableA.Store(uint64(p))
}

// repairSegment validates the segment open in f and cuts it after its last
// valid record (rewriting the header if that is what is broken), then fsyncs
// it. It returns the resulting size and how many bytes it cut.
func repairSegment(f *os.File, path string, base Pos, logf func(string, ...any)) (size, cut int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("cannot stat spool segment %q: %w", path, err)
	}
	size = fi.Size()
	var sr segReader
	sr.reset(f)
	valid, werr := walkSegment(&sr, path, base, size, nil)
	var ce *CorruptError
	if werr != nil && !errors.As(werr, &ce) {
		return 0, 0, werr
	}
	if werr == nil {
		// Records written but maybe not fsynced before a crash of the process
		// are valid now; make them durable before readers see them.
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("cannot fsync spool segment %q: %w", path, err)
		}
		return size, 0, nil
	}
	cut = size - valid
	if err := f.Truncate(valid); err != nil {
		return 0, 0, fmt.Errorf("cannot cut torn tail of spool segment %q at offset %d: %w", path, valid, err)
	}
	if valid == 0 {
		if _, err := f.WriteAt(appendSegHeader(nil, base), 0); err != nil {
			return 0, 0, fmt.Errorf("cannot rewrite header of spool segment %q: %w", path, err)
		}
		valid = segHeaderSize
	}
	if err := f.Sync(); err != nil {
		return 0, 0, fmt.Errorf("cannot fsync spool segment %q: %w", path, err)
	}
	if logf != nil {
		logf("recovery cut %d bytes of torn or corrupt tail from the last segment: %v", cut, ce)
	}
	return valid, cut, nil
}

// createSegment creates the segment file with the given base, writes its
// header and makes it durable (file and directory entry).
func (s *Spool) createSegment(base Pos) (*os.File, error) {
	path := segPath(s.dir, base)
	// O_TRUNC, not O_EXCL: a file at this base can only be the leftover of a
	// rotation that failed before it held any record.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create spool segment: %w", err)
	}
	_, err = f.WriteAt(appendSegHeader(nil, base), 0)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("cannot create spool segment %q: %w", path, err)
	}
	return f, nil
}

func (s *Spool) loadCursors() error {
	ents, err := os.ReadDir(s.cdir)
	if err != nil {
		return fmt.Errorf("cannot list spool cursors: %w", err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), cursorExt+".tmp") {
			// An interrupted cursor write; the previous cursor file stands.
			os.Remove(filepath.Join(s.cdir, e.Name()))
		}
	}
	curs, err := ReadCursors(s.dir)
	if err != nil {
		// Atomic writes make this bit rot or tampering. Reading such a reader
		// again from the oldest record duplicates rather than loses.
		s.logf("ignoring unreadable cursors (their readers restart at the oldest record): %v", err)
	}
	if curs == nil {
		curs = map[string]Pos{}
	}
	s.cursors = curs
	return nil
}

// writtenLocked returns the end of the last written record.
func (s *Spool) writtenLocked() Pos {
	a := s.segs[len(s.segs)-1]
	return a.base + Pos(a.size)
}

func (s *Spool) activePath() string {
	return segPath(s.dir, s.segs[len(s.segs)-1].base)
}

// Append writes rec as one record and returns its end position. rec is not
// retained. Appends from concurrent goroutines are serialized in the order
// they take the spool's lock.
//
// Under FsyncAlways Append returns once an fsync covers the record (sharing the
// fsync with concurrent appenders); under FsyncInterval and FsyncNever once
// write(2) returned. On error nothing of rec stays in the spool: a partial
// write (ENOSPC) is cut back, and the error wraps the syscall error. Under
// FsyncAlways, an fsync failure is returned too, but the record may still be
// read later: it was written, it is just not known to be durable. After Close,
// Append returns an error wrapping os.ErrClosed.
//
// Append does not allocate in steady state.
func (s *Spool) Append(rec []byte) (end Pos, err error) {
	return s.append(rec, false)
}

// AppendSealed is [Spool.Append] for a record that ends with the CRC32C
// (Castagnoli, little-endian) of every byte before it, as every frame does.
// The CRC32C of such a record is a constant, the code's residue, so the
// envelope's checksum costs nothing instead of a second pass over the
// record. Readers check the envelope exactly as for Append: a record that
// does not end with its own CRC is reported corrupt when read, not
// returned.
func (s *Spool) AppendSealed(rec []byte) (end Pos, err error) {
	return s.append(rec, true)
}

func (s *Spool) append(rec []byte, sealed bool) (end Pos, err error) {
	n := len(rec)
	if n == 0 || n > MaxRecordSize {
		return 0, fmt.Errorf("cannot append record of %d bytes to spool %q: size must be 1 to %d", n, s.dir, MaxRecordSize)
	}
	need := int64(envSize + n)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, fmt.Errorf("cannot append to spool %q: %w", s.dir, os.ErrClosed)
	}
	if s.opts.MaxBytes > 0 && s.totalBytes+need > s.opts.MaxBytes && len(s.holds) > 0 && len(s.segs) > 1 && s.heldLocked(s.segs[0]) {
		s.stats.FullRefusals++
		s.mu.Unlock()
		return 0, fmt.Errorf("cannot append record of %d bytes to spool %q (%d of %d bytes used): %w", n, s.dir, s.totalBytes, s.opts.MaxBytes, ErrFull)
	}
	if err := s.prepareLocked(need); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	act := &s.segs[len(s.segs)-1]
	off := act.size
	if n+envSize <= len(s.scratch) {
		b := s.scratch[:envSize+n]
		putEnvelope(b, rec, sealed)
		copy(b[envSize:], rec)
		_, err = s.active.WriteAt(b, off)
	} else {
		putEnvelope(s.hdr[:], rec, sealed)
		if _, err = s.active.WriteAt(s.hdr[:], off); err == nil {
			_, err = s.active.WriteAt(rec, off+envSize)
		}
	}
	if err != nil {
		s.cutBackLocked(off)
		s.mu.Unlock()
		return 0, fmt.Errorf("cannot append record of %d bytes to spool segment %q at offset %d: %w", n, s.activePath(), off, err)
	}
	act.size += need
	s.totalBytes += need
	s.stats.Appended++
	s.stats.AppendedBytes += uint64(n)
	end = act.base + Pos(act.size)
	switch s.opts.Fsync {
	case FsyncNever:
		s.advanceDurableLocked(end)
	case FsyncAlways:
		select {
		case s.syncReq <- struct{}{}:
		default: // a sync is already requested; it will cover this record
		}
		for s.durable < end {
			if h := s.holeLocked(end); h != nil {
				s.mu.Unlock()
				return 0, fmt.Errorf("cannot make record ending at %d durable: %w", end, h.err)
			}
			s.cond.Wait()
		}
	}
	s.mu.Unlock()
	return end, nil
}

// ErrFull is returned (wrapped) by [Spool.Append] when the spool has
// reached MaxBytes and retention may not delete its oldest segment because
// a holding reader (see [Spool.Hold]) has not committed past it. The
// caller retries later; meanwhile its own backpressure applies.
var ErrFull = errors.New("spool is full: a holding reader has not consumed the oldest segment")

// Hold makes the cursor called name hold data: retention (by size or by
// age) never deletes a segment that holds records past that cursor's
// committed position, and once those segments keep the spool at MaxBytes,
// Append refuses new records with ErrFull until the reader commits past
// them. A sink whose delivery must not lose accepted events (Kafka) holds;
// one that only mirrors the spool does not. A cursor that does not exist
// yet holds everything. Holds last until Close.
func (s *Spool) Hold(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holds == nil {
		s.holds = make(map[string]bool)
	}
	s.holds[name] = true
}

// heldLocked reports whether a holding cursor still needs segment v.
func (s *Spool) heldLocked(v segInfo) bool {
	end := v.base + Pos(v.size)
	for name := range s.holds {
		p, ok := s.cursors[name]
		if !ok || p < end {
			return true
		}
	}
	return false
}

// prepareLocked makes the active segment ready for a record of need bytes:
// it cuts garbage a failed write left and rotates when needed.
func (s *Spool) prepareLocked(need int64) error {
	act := &s.segs[len(s.segs)-1]
	if s.dirtyTail {
		if err := s.active.Truncate(act.size); err != nil {
			return fmt.Errorf("cannot cut the remains of a failed write from spool segment %q at offset %d: %w", s.activePath(), act.size, err)
		}
		s.dirtyTail = false
	}
	if s.forceRotate || (act.size > segHeaderSize && act.size+need > s.opts.SegmentSize) {
		return s.rotateLocked()
	}
	return nil
}

// cutBackLocked removes what a failed write may have left after off.
func (s *Spool) cutBackLocked(off int64) {
	if err := s.active.Truncate(off); err != nil {
		s.dirtyTail = true
		s.logf("cannot cut failed write from segment %q at offset %d (retrying on the next append): %v", s.activePath(), off, err)
	}
}

// rotateLocked seals the active segment (fsync) and starts a new one at its
// end. When creating the new segment fails, the old one stays active and the
// error is returned; the next Append tries again.
func (s *Spool) rotateLocked() error {
	end := s.writtenLocked()
	if end > s.synced {
		err := s.active.Sync()
		s.stats.Fsyncs++
		if err != nil {
			s.failSyncLocked(end, err)
		} else {
			s.synced = end
			s.advanceDurableLocked(end)
		}
	}
	f, err := s.createSegment(end)
	if err != nil {
		s.forceRotate = true
		return fmt.Errorf("cannot rotate spool %q: %w", s.dir, err)
	}
	s.active.Close()
	s.segs[len(s.segs)-1].sealedAt = s.now()
	s.segs = append(s.segs, segInfo{base: end, size: segHeaderSize})
	s.totalBytes += segHeaderSize
	s.active = f
	s.gen++
	s.forceRotate = false
	// The new header was fsynced by createSegment.
	if s.synced == end {
		s.synced = end + segHeaderSize
	}
	if s.durable == end {
		s.advanceDurableLocked(end + segHeaderSize)
	}
	select {
	case s.retReq <- struct{}{}:
	default:
	}
	return nil
}

// advanceDurableLocked moves the durable position to p and wakes waiters.
func (s *Spool) advanceDurableLocked(p Pos) {
	if p <= s.durable {
		return
	}
	s.durable = p
	s.durableA.Store(uint64(p))
	s.wakeLocked()
}

// wakeLocked wakes every waiter so that it re-checks the spool's state.
func (s *Spool) wakeLocked() {
	s.cond.Broadcast()
	if s.waitCh != nil {
		close(s.waitCh)
		s.waitCh = nil
	}
}

// waitChLocked returns a channel closed at the next wakeLocked.
func (s *Spool) waitChLocked() <-chan struct{} {
	if s.waitCh == nil {
		s.waitCh = make(chan struct{})
	}
	return s.waitCh
}

// holeLocked returns the failed fsync range holding the record ending at p.
func (s *Spool) holeLocked(p Pos) *hole {
	for i := range s.holes {
		if h := &s.holes[i]; h.from < p && p <= h.to {
			return h
		}
	}
	return nil
}

// failSyncLocked handles a failed fsync of the active segment that should
// have covered everything up to target. Linux may drop the dirty pages and
// report success on the next fsync, so records written before are never taken
// as durable (their appenders and WaitDurable get the error) and the segment is
// sealed at the next Append so that later records go to a fresh file.
func (s *Spool) failSyncLocked(target Pos, err error) error {
	err = fmt.Errorf("cannot fsync spool segment %q: %w", s.activePath(), err)
	s.stats.FsyncErrors++
	s.forceRotate = true
	if s.opts.Fsync != FsyncNever && target > s.durable {
		if len(s.holes) == maxHoles {
			s.holes = append(s.holes[:0], s.holes[1:]...)
		}
		s.holes = append(s.holes, hole{from: s.durable, to: target, err: err})
	}
	s.logf("%v; records up to position %d are not known durable", err, target)
	s.wakeLocked()
	return err
}

// syncOnce fsyncs the active segment if anything was written since the last
// fsync, and publishes the result.
func (s *Spool) syncOnce() error {
	s.mu.Lock()
	target := s.writtenLocked()
	if target <= s.synced || s.active == nil {
		s.mu.Unlock()
		return nil
	}
	f, gen := s.active, s.gen
	s.mu.Unlock()

	err := f.Sync()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Fsyncs++
	if gen != s.gen || s.active == nil {
		// A rotation sealed f meanwhile with its own fsync covering target (and
		// handled its failure), or Close did after its final fsync; f may even
		// be closed by now.
		return nil
	}
	if err != nil {
		return s.failSyncLocked(target, err)
	}
	if target > s.synced {
		s.synced = target
	}
	s.advanceDurableLocked(target)
	return nil
}

// syncLoop is the background fsyncer: on request under FsyncAlways (one fsync
// covers every record written before it starts: group commit), periodically
// under FsyncInterval.
func (s *Spool) syncLoop() {
	defer s.wg.Done()
	var tick <-chan time.Time
	if s.opts.Fsync == FsyncInterval {
		t := time.NewTicker(s.opts.FsyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.stop:
			return
		case <-s.syncReq:
			// The appenders the previous fsync released are about to write
			// their next records: let them, so this fsync covers those too.
			runtime.Gosched()
		case <-tick:
		}
		s.syncOnce() // failures are logged and reported to waiters
	}
}

// Durable returns the position up to which every record is durable: fsynced,
// or under FsyncNever written. Readers see only records up to it.
func (s *Spool) Durable() Pos { return Pos(s.durableA.Load()) }

// SyncSoon asks for an fsync now rather than at the next FsyncInterval
// tick, for a writer whose sender waits for durability (RELP). It does not
// wait; WaitDurable does. Under FsyncNever it does nothing.
func (s *Spool) SyncSoon() {
	if s.opts.Fsync == FsyncNever {
		return
	}
	select {
	case s.syncReq <- struct{}{}:
	default: // a sync is already requested
	}
}

// WaitDurable blocks until Durable() >= p, ctx is done, or the spool is
// closed. It returns an error when the fsync meant to cover the record ending
// at p failed (among the last 16 failures remembered).
func (s *Spool) WaitDurable(ctx context.Context, p Pos) error {
	for {
		s.mu.Lock()
		if h := s.holeLocked(p); h != nil {
			s.mu.Unlock()
			return fmt.Errorf("record ending at %d is not durable: %w", p, h.err)
		}
		if s.durable >= p {
			s.mu.Unlock()
			return nil
		}
		if s.closed {
			s.mu.Unlock()
			return fmt.Errorf("cannot wait for position %d in spool %q: %w", p, s.dir, os.ErrClosed)
		}
		ch := s.waitChLocked()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Sync fsyncs the active segment now and makes everything written durable.
func (s *Spool) Sync() error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("cannot sync spool %q: %w", s.dir, os.ErrClosed)
	}
	return s.syncOnce()
}

// Stats returns a snapshot of the spool's state and counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Segments = len(s.segs)
	st.Bytes = s.totalBytes
	st.FirstPos = s.segs[0].base
	st.NextPos = s.writtenLocked()
	st.DurablePos = s.durable
	return st
}

// Close fsyncs the active segment, stops the background goroutines (waiting
// for a running retention pass) and releases the directory. Appends waiting
// for an fsync are covered by the final one. Later calls to Append, Reader,
// Sync and the readers' methods return errors wrapping os.ErrClosed. Close is
// idempotent.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	err := s.syncOnce()
	s.mu.Lock()
	if cerr := s.active.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("cannot close spool segment %q: %w", s.activePath(), cerr)
	}
	s.active = nil
	s.wakeLocked()
	s.mu.Unlock()
	s.lock.Close()
	return err
}
