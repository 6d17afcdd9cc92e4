package ring

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// ErrFull is returned by [Ring.TryPut] when every slot is in use. The record
// was not stored; the caller counts it as dropped (reason "ring_full") or
// falls back to its spill policy.
var ErrFull = errors.New("ring is full")

// ErrClosed is returned by [Ring.Put] and [Ring.TryPut] once [Ring.Close] has
// been called, including to producers that were blocked in Put at that time.
// The record was not stored. errors.Is(ErrClosed, os.ErrClosed) holds.
var ErrClosed = fmt.Errorf("ring is closed: %w", os.ErrClosed)

// MaxSlots is the largest slot count [New] accepts.
const MaxSlots = 1 << 30

const (
	// cacheLine is the padding unit for hot counters. 128 rather than 64
	// because x86 prefetches cache lines in adjacent pairs.
	cacheLine = 128

	// closedBit is set in the tail counter by Close. Positions never reach
	// it (2^63 records at 10^9 records/s would take 292 years).
	closedBit = uint64(1) << 63

	// putSpins and waitSpins bound how often a blocked producer or the
	// consumer yields before parking. A yield lets the other side (on this
	// P) make progress for far less than a park/unpark round trip costs.
	// The consumer yields less: polling a nearly empty ring from another
	// core keeps pulling the very slot lines producers are writing, which
	// measured slower than parking early.
	putSpins  = 8
	waitSpins = 1
)

// slot is one record cell. It is padded to 64 bytes so that neighbouring
// positions, committed concurrently by different producers and read by the
// consumer, do not share a cache line (unpadded 32-byte slots measured
// clearly slower).
type slot struct {
	// committed is pos+1 once position pos has been committed into this
	// slot; any other value means the consumer must not read it yet.
	committed atomic.Uint64
	// buf holds the record. It is written only by the producer that owns
	// the claimed position and read only by the consumer after commit.
	buf []byte
	_   [64 - 8 - 24]byte
}

// Ring is a bounded multi-producer, single-consumer queue of byte records.
//
// Any number of goroutines may call Put, TryPut, Close, Closed, Drained, Len
// and Cap concurrently. Peek, Release and Wait form the consumer side and
// must be called from one goroutine at a time (normally the framer's).
// A Ring must be created with [New].
type Ring struct {
	_ [cacheLine]byte

	// Read-only after New.
	mask  uint64
	slots []slot
	wake  chan struct{} // consumer wake token, capacity 1
	space chan struct{} // producer wake tokens, capacity len(slots)
	done  chan struct{} // closed by Close
	// closed mirrors closedBit on this read-mostly line, so that the
	// consumer's Drained checks do not pull the producers' tail line.
	closed atomic.Bool
	_      [cacheLine]byte

	// tail is the next position to claim, with closedBit once closed.
	// Every producer CASes it.
	tail atomic.Uint64
	// relCache is a lagging copy of released on the producers' own line:
	// claims read it instead of the consumer's line and refresh it only
	// when it makes the ring look full, so a Release does not cost every
	// producer a cache miss.
	relCache atomic.Uint64
	_        [cacheLine - 16]byte

	// Consumer state. head is owned by the consumer and deliberately not
	// atomic, so that the race detector flags a second consumer.
	head   uint64
	peeked int         // records returned by the last Peek, not yet released
	timer  *time.Timer // reused by Wait
	_      [cacheLine - 8 - 8 - 8]byte

	// released is head as of the last Release: the slots of all positions
	// below it are free for the next lap. Written once per Release.
	released atomic.Uint64
	_        [cacheLine - 8]byte

	// sleeping is 1 while the consumer is (about to be) blocked in Wait.
	sleeping atomic.Uint32
	// nudged is set by Nudge: the consumer's Wait returns early.
	nudged atomic.Bool
	_      [cacheLine - 5]byte

	// waiters counts producers blocked in Put on a full ring.
	waiters atomic.Int64
	_       [cacheLine - 8]byte
}

// New returns an empty ring with slots slots, rounded up to a power of two
// and at least 2. It panics if slots exceeds [MaxSlots]; configuration
// should reject such values first.
//
// Each slot keeps the largest buffer it has held, so the ring's memory is
// about Cap() times the largest record size put into it.
func New(slots int) *Ring {
	if slots > MaxSlots {
		panic(fmt.Sprintf("ring: cannot create ring with %d slots: more than %d", slots, MaxSlots))
	}
	n := 2
	if slots > 2 {
		n = 1 << bits.Len(uint(slots-1))
	}
	r := &Ring{
		mask:  uint64(n - 1),
		slots: make([]slot, n),
		wake:  make(chan struct{}, 1),
		space: make(chan struct{}, n),
		done:  make(chan struct{}),
		timer: time.NewTimer(time.Hour),
	}
	r.timer.Stop()
	return r
}

// TryPut copies p into the next free slot and never blocks. It returns nil
// on success, [ErrFull] if every slot is in use, and [ErrClosed] after
// [Ring.Close]. p may be reused as soon as TryPut returns. After warm-up
// (each slot has held a record at least as long as p) it does not allocate.
func (r *Ring) TryPut(p []byte) error {
	pos, err := r.claim()
	if err != nil {
		return err
	}
	r.commit(pos, p)
	return nil
}

// claim reserves the next position. Until commit(pos, ...) the consumer
// stops at pos.
func (r *Ring) claim() (uint64, error) {
	pos := r.tail.Load()
	for {
		if pos&closedBit != 0 {
			return 0, ErrClosed
		}
		// relCache holds some past value of released, which only grows, so
		// a stale value can only make the ring look fuller than it is and
		// never lets pos overwrite an unreleased slot. The differences are
		// signed because pos itself may be stale (behind released); the
		// CAS below then fails.
		if int64(pos-r.relCache.Load()) >= int64(len(r.slots)) {
			rel := r.released.Load()
			if int64(pos-rel) >= int64(len(r.slots)) {
				return 0, ErrFull
			}
			r.relCache.Store(rel)
		}
		if r.tail.CompareAndSwap(pos, pos+1) {
			return pos, nil
		}
		// Another producer claimed pos first.
		pos = r.tail.Load()
	}
}

// commit fills the claimed position pos with p and hands it to the consumer.
func (r *Ring) commit(pos uint64, p []byte) {
	s := &r.slots[pos&r.mask]
	s.buf = append(s.buf[:0], p...)
	s.committed.Store(pos + 1)
	if r.sleeping.Load() != 0 {
		r.wakeConsumer()
	}
}

// Nudge makes the consumer's current or next [Ring.Wait] return at once,
// even without a new record, so that it can act on a change it learns of
// elsewhere (the framer: a sender now waits for its frame). Any goroutine
// may call it.
func (r *Ring) Nudge() {
	r.nudged.Store(true)
	r.wakeConsumer()
}

func (r *Ring) wakeConsumer() {
	if r.sleeping.CompareAndSwap(1, 0) {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// Put copies p into the next free slot. While the ring is full it yields a
// few times and then parks until [Ring.Release] frees a slot, without
// burning a core. It returns nil on success, [ErrClosed] if the ring is or
// becomes closed, or ctx.Err() if ctx ends first; in both error cases p was
// not stored. p may be reused as soon as Put returns. When the ring is not
// full, Put costs the same as TryPut and does not allocate.
func (r *Ring) Put(ctx context.Context, p []byte) error {
	_, err := r.PutPos(ctx, p)
	return err
}

// PutPos is [Ring.Put] that also returns the position p was stored at.
// Positions count every record ever put, from 0, in the order the consumer
// receives them, so an input that must acknowledge its sender (RELP) can
// tell, by comparing with the consumer's [Ring.Head], when its record has
// been taken and, through the consumer's own bookkeeping, made durable.
func (r *Ring) PutPos(ctx context.Context, p []byte) (uint64, error) {
	pos, err := r.claim()
	if err == nil {
		r.commit(pos, p)
		return pos, nil
	}
	if err != ErrFull {
		return 0, err
	}
	return r.putSlow(ctx, p)
}

func (r *Ring) putSlow(ctx context.Context, p []byte) (uint64, error) {
	tryPut := func() (uint64, error) {
		pos, err := r.claim()
		if err == nil {
			r.commit(pos, p)
		}
		return pos, err
	}
	for range putSpins {
		runtime.Gosched()
		if pos, err := tryPut(); err != ErrFull {
			return pos, err
		}
	}
	ctxDone := ctx.Done()
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		// Announce before re-checking: a Release that frees a slot after
		// our check sees waiters > 0 and sends a token.
		r.waiters.Add(1)
		pos, err := tryPut()
		if err == ErrFull {
			select {
			case <-r.space:
			case <-r.done:
			case <-ctxDone:
			}
			pos, err = tryPut()
		}
		r.waiters.Add(-1)
		if err != ErrFull {
			return pos, err
		}
	}
}

// Peek appends to dst, in order, the committed records at the read position,
// at most max of them, and returns dst. It stops at the first position that
// is free or claimed but not yet committed, so it returns the contiguous
// committed prefix and nothing after a hole. Calling Peek again without
// Release returns the same records first.
//
// The returned slices alias slot memory: they are valid until [Ring.Release]
// frees them and must not be modified or retained after that. Consumer side
// only.
func (r *Ring) Peek(dst [][]byte, max int) [][]byte {
	n := 0
	for n < max {
		pos := r.head + uint64(n)
		s := &r.slots[pos&r.mask]
		if s.committed.Load() != pos+1 {
			break
		}
		dst = append(dst, s.buf)
		n++
	}
	r.peeked = n
	return dst
}

// Release frees the first n records returned by the last [Ring.Peek] and
// wakes producers blocked on a full ring. Their slices become invalid; the
// remaining records of that Peek stay valid and are the first ones a later
// Release frees. Release panics if n is negative or more than the records
// returned by the last Peek and not yet released. Consumer side only.
func (r *Ring) Release(n int) {
	if n < 0 || n > r.peeked {
		panic(fmt.Sprintf("ring: cannot release %d records: last Peek left %d unreleased", n, r.peeked))
	}
	r.head += uint64(n)
	r.peeked -= n
	r.released.Store(r.head)
	if w := r.waiters.Load(); w > 0 {
		r.wakeProducers(min(int64(n), w))
	}
}

func (r *Ring) wakeProducers(k int64) {
	for ; k > 0; k-- {
		select {
		case r.space <- struct{}{}:
		default:
			return // enough stale tokens are queued already
		}
	}
}

// Head returns the read position: the position of the first record the
// next [Ring.Peek] returns. Every record put at a lower position has been
// released. Consumer side only.
func (r *Ring) Head() uint64 { return r.head }

// Wait blocks the consumer until the record at the read position is
// committed, the ring is closed and drained, or d elapses, and reports
// whether a record is available to [Ring.Peek]. It returns at once if a
// record is available or d <= 0. While records put before Close are still in
// flight, Wait keeps waiting for them, so a consumer can stop when Wait
// returns false and [Ring.Drained] is true. Consumer side only; it does not
// allocate.
func (r *Ring) Wait(d time.Duration) bool {
	if r.ready() {
		return true
	}
	return r.waitSlow(d)
}

// ready reports whether the record at the head is committed.
func (r *Ring) ready() bool {
	return r.slots[r.head&r.mask].committed.Load() == r.head+1
}

func (r *Ring) waitSlow(d time.Duration) bool {
	if d <= 0 {
		return false
	}
	// Drained is checked only before parking: it reads the tail, and
	// pulling the producers' hottest line here on every poll slows them.
	for range waitSpins {
		runtime.Gosched()
		if r.ready() {
			return true
		}
	}
	r.timer.Reset(d)
	for {
		// Announce before re-checking: a producer that commits after our
		// check sees the flag and sends a token.
		r.sleeping.Store(1)
		if r.ready() {
			r.sleeping.Store(0)
			r.timer.Stop()
			return true
		}
		if r.Drained() {
			r.sleeping.Store(0)
			r.timer.Stop()
			return false
		}
		// A Nudge that came before we announced sent no token.
		if r.nudged.Swap(false) {
			r.sleeping.Store(0)
			r.timer.Stop()
			return r.ready()
		}
		select {
		case <-r.wake:
			// A commit or Close, possibly not at the head: re-check;
			// a Nudge returns.
			if r.nudged.Swap(false) {
				r.sleeping.Store(0)
				r.timer.Stop()
				return r.ready()
			}
		case <-r.timer.C:
			r.sleeping.Store(0)
			return r.ready()
		}
	}
}

// Close makes every later Put and TryPut return [ErrClosed] and wakes blocked
// producers (which return ErrClosed) and the consumer. Records already
// committed, and records whose slot was claimed before Close, can still be
// read with Peek and Release. Close is idempotent and safe to call from any
// goroutine.
func (r *Ring) Close() {
	first := r.tail.Or(closedBit)&closedBit == 0
	// Also by a racing second caller, so that Closed holds once any Close
	// has returned.
	r.closed.Store(true)
	if !first {
		return
	}
	close(r.done)
	// Unconditional: a stale token costs the consumer one re-check.
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Closed reports whether Close has been called.
func (r *Ring) Closed() bool {
	return r.closed.Load()
}

// Drained reports whether the ring is closed and every record that was
// stored (every Put or TryPut that returned nil) has been released. It is
// the consumer's exit condition. Safe to call from any goroutine.
func (r *Ring) Drained() bool {
	if !r.closed.Load() {
		return false
	}
	// closed is set after closedBit, so tail is final here.
	return r.tail.Load()&^closedBit == r.released.Load()
}

// Len returns the number of used slots: claimed or committed and not yet
// released. It is exported as the gauge trawl_ring_used_slots{input}. Safe to
// call from any goroutine; the value may be stale by the time it is used.
func (r *Ring) Len() int {
	// Load released first: it only grows and never passes tail, so the
	// difference cannot go negative. Claims between the two loads may use
	// slots released after the first one, so it can exceed the capacity.
	rel := r.released.Load()
	tail := r.tail.Load() &^ closedBit
	return min(int(tail-rel), len(r.slots))
}

// Cap returns the number of slots.
func (r *Ring) Cap() int {
	return len(r.slots)
}
