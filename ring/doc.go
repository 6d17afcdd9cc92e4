// Package ring is the bounded, lock-free hand-off between an input's
// goroutines and its framer: many producers put byte records, one consumer
// reads them in batches, copies them into a frame and releases them.
//
// # Algorithm
//
// The ring has a power-of-two number of slots; each slot holds a commit
// marker and a reusable byte buffer. Positions are unbounded 64-bit counters
// (they never wrap in practice); position pos lives in slot pos&mask. Three
// counters describe the state:
//
//	released <= head <= tail
//	tail      next position to claim (all producers, compare-and-swap)
//	head      next position to read (the consumer alone)
//	released  head as of the last Release (written by the consumer)
//
// A producer claims position pos = tail with one compare-and-swap, after
// checking pos-released < cap: the slot's previous occupant, pos-cap, has
// been released. It then copies the record into the slot's buffer (growing
// it only if it is too small, so after warm-up nothing is allocated) and
// commits by storing the slot's marker as pos+1. The consumer's Peek walks
// forward from head while each slot's marker equals pos+1; Release advances
// head and publishes it as released.
//
// This is the claim-by-CAS, per-slot sequence design of Dmitry Vyukov's
// bounded queue with one change: the consumer does not write a per-slot
// "free" sequence on release. Producers learn that slots are free from the
// released counter instead, read through relCache, a copy kept on the
// producers' own cache line and refreshed only when it makes the ring look
// full. The consumer thus writes one shared line per batch rather than one
// per record, and producers do not miss on the consumer's line per record.
// On the 2-core VM this was built on, the 2-producer benchmark went from
// 5-10 to 8-19 million records/s (the spread is scheduling, see
// BenchmarkRing).
//
// A producer that has claimed a position but not yet committed it leaves
// the marker unequal to pos+1, so Peek stops there even if later positions
// are already committed: records come out in claim order, hence in order per
// producer, and never with a hole.
//
// # Memory ordering
//
// Go's sync/atomic operations are sequentially consistent and order the
// plain memory accesses around them (the Go memory model's synchronizes-with
// edges). The producer writes the buffer before its atomic store of pos+1;
// the consumer reads the buffer only after an atomic load that observed
// pos+1, so it sees the whole record. Symmetrically, the consumer is done
// with every buffer below head (the caller promises not to touch released
// slices) before it stores released, and a producer writes a buffer only
// after loading a value of released (directly, or through relCache, which
// was stored after such a load) that frees it. released only grows, so a
// stale value can only make the ring look fuller than it is. The
// compare-and-swap on tail makes each position owned by exactly one
// producer.
//
// Close sets the top bit of tail with one atomic OR. Every claim is a
// compare-and-swap against a tail without that bit, so after Close no claim
// can succeed, while claims that won before it still commit. Hence "closed
// and released == tail" (see [Ring.Drained]) means every record whose Put
// returned nil has been released: nothing is lost at shutdown.
//
// # Waiting
//
// The fast paths use no channel and no lock. Sleepers announce themselves
// before re-checking the ring, and wakers publish their change before looking
// for sleepers (a Dekker-style handshake, correct under sequentially
// consistent atomics), so a wake-up cannot be lost:
//
//   - The consumer in [Ring.Wait] sets a sleeping flag, re-checks the head
//     slot, then blocks on a one-element channel. A producer that commits
//     reads the flag and, only if it is set, clears it and sends one token.
//   - A producer in [Ring.Put] on a full ring first yields a few times, then
//     increments a waiter count, re-tries, and blocks on a token channel. A
//     Release that sees waiters sends up to one token per freed slot. Tokens
//     left over by waiters that gave up cause at most a spurious re-check.
//
// Close closes a channel that every blocked producer also selects on, and
// wakes the consumer.
//
// # Layout
//
// The tail (with relCache, written by all producers), the consumer's
// private state, released, the sleeping flag and the waiter count each sit
// on their own cache line, and slots are padded to a line each so that
// producers committing neighbouring positions do not share one.
package ring
