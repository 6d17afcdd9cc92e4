package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	f := func(slots, want int) {
		t.Helper()
		r := New(slots)
		if got := r.Cap(); got != want {
			t.Fatalf("New(%d).Cap() = %d, want %d", slots, got, want)
		}
		if got := r.Len(); got != 0 {
			t.Fatalf("New(%d).Len() = %d, want 0", slots, got)
		}
		// A fresh ring must accept exactly Cap records.
		for i := range want {
			if err := r.TryPut([]byte{byte(i)}); err != nil {
				t.Fatalf("New(%d): TryPut #%d: %v", slots, i, err)
			}
		}
		if err := r.TryPut(nil); err != ErrFull {
			t.Fatalf("New(%d): TryPut on full ring = %v, want ErrFull", slots, err)
		}
	}
	f(-1, 2)
	f(0, 2)
	f(1, 2)
	f(2, 2)
	f(3, 4)
	f(4, 4)
	f(5, 8)
	f(64, 64)
	f(65, 128)
	f(1000, 1024)
}

func TestNew_TooLarge(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatalf("New(MaxSlots+1) did not panic")
		}
	}()
	New(MaxSlots + 1)
}

// drain peeks and releases everything committed and returns copies.
func drain(r *Ring) []string {
	var out []string
	for _, rec := range r.Peek(nil, r.Cap()) {
		out = append(out, string(rec))
	}
	r.Release(len(out))
	return out
}

func TestPeekRelease(t *testing.T) {
	r := New(4)
	f := func(op string, want ...string) {
		t.Helper()
		var got []string
		switch op {
		case "peek2":
			for _, rec := range r.Peek(nil, 2) {
				got = append(got, string(rec))
			}
		case "peek":
			for _, rec := range r.Peek(nil, 100) {
				got = append(got, string(rec))
			}
		default:
			if err := r.TryPut([]byte(op)); err != nil {
				got = append(got, err.Error())
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: got %q, want %q", op, got, want)
		}
	}
	f("peek")
	f("a")
	f("bb")
	f("ccc")
	f("peek2", "a", "bb")
	f("peek", "a", "bb", "ccc") // without Release, Peek starts over
	r.Release(1)
	if r.Len() != 2 {
		t.Fatalf("Len after Release(1) = %d, want 2", r.Len())
	}
	f("dddd")
	f("e")
	f("f", ErrFull.Error())
	f("peek", "bb", "ccc", "dddd", "e")
	r.Release(2)
	f("gg") // wraps around and reuses the buffer that held "a"
	f("peek", "dddd", "e", "gg")
	r.Release(1)
	r.Release(2) // the rest of the same Peek
	f("peek")
	if r.Len() != 0 {
		t.Fatalf("Len after draining = %d, want 0", r.Len())
	}
}

func TestPeek_AppendsToDst(t *testing.T) {
	r := New(8)
	for _, s := range []string{"x", "y"} {
		if err := r.TryPut([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	dst := r.Peek([][]byte{[]byte("keep")}, 8)
	if len(dst) != 3 || string(dst[0]) != "keep" || string(dst[1]) != "x" || string(dst[2]) != "y" {
		t.Fatalf("Peek appended wrongly: %q", dst)
	}
	if got := r.Peek(nil, 0); len(got) != 0 {
		t.Fatalf("Peek(max=0) = %q, want nothing", got)
	}
	// Peek(max=0) forgets the previous Peek: nothing may be released.
	assertPanics(t, "Release after Peek(max=0)", func() { r.Release(1) })
}

func TestRelease_Misuse(t *testing.T) {
	r := New(4)
	for range 3 {
		if err := r.TryPut([]byte("r")); err != nil {
			t.Fatal(err)
		}
	}
	assertPanics(t, "Release without Peek", func() { r.Release(1) })
	r.Peek(nil, 2)
	assertPanics(t, "Release(3) after Peek of 2", func() { r.Release(3) })
	assertPanics(t, "Release(-1)", func() { r.Release(-1) })
	r.Release(2)
	assertPanics(t, "second Release past the Peek", func() { r.Release(1) })
	if r.Len() != 1 {
		t.Fatalf("Len = %d, want 1", r.Len())
	}
}

func assertPanics(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	fn()
}

// A producer that claimed a slot but has not committed must stop Peek at that
// slot even when later slots are committed, or per-producer order breaks.
func TestPeek_StopsAtUncommittedClaim(t *testing.T) {
	r := New(8)
	if err := r.TryPut([]byte("first")); err != nil {
		t.Fatal(err)
	}
	held, err := r.claim()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.TryPut([]byte("third")); err != nil {
		t.Fatal(err)
	}
	if got := drain(r); fmt.Sprint(got) != "[first]" {
		t.Fatalf("Peek past an uncommitted claim: got %q, want [first]", got)
	}
	if r.Len() != 2 {
		t.Fatalf("Len = %d, want 2 (one claimed, one committed)", r.Len())
	}
	if r.Wait(0) {
		t.Fatalf("Wait(0) = true while the head is only claimed")
	}
	r.commit(held, []byte("second"))
	if got := drain(r); fmt.Sprint(got) != "[second third]" {
		t.Fatalf("after commit: got %q, want [second third]", got)
	}
}

func TestClose(t *testing.T) {
	r := New(4)
	for _, s := range []string{"a", "b"} {
		if err := r.TryPut([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if r.Closed() || r.Drained() {
		t.Fatalf("new ring reports Closed=%v Drained=%v", r.Closed(), r.Drained())
	}
	r.Close()
	r.Close() // idempotent
	if !r.Closed() {
		t.Fatalf("Closed() = false after Close")
	}
	if err := r.TryPut([]byte("c")); err != ErrClosed {
		t.Fatalf("TryPut after Close = %v, want ErrClosed", err)
	}
	err := r.Put(context.Background(), []byte("c"))
	if err != ErrClosed {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
	if !errors.Is(err, os.ErrClosed) {
		t.Fatalf("ErrClosed does not match os.ErrClosed")
	}
	if r.Drained() {
		t.Fatalf("Drained() = true with 2 records left")
	}
	if !r.Wait(time.Second) {
		t.Fatalf("Wait on closed ring with records = false")
	}
	if got := drain(r); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("drain after Close: got %q, want [a b]", got)
	}
	if !r.Drained() || r.Len() != 0 {
		t.Fatalf("after drain: Drained=%v Len=%d", r.Drained(), r.Len())
	}
	start := time.Now()
	if r.Wait(10 * time.Second) {
		t.Fatalf("Wait on closed, drained ring = true")
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Wait on closed, drained ring blocked for %v", el)
	}
}

// Producers blocked in Put on a full ring get ErrClosed from Close, and the
// committed records still drain.
func TestClose_WakesBlockedPut(t *testing.T) {
	r := New(4)
	for i := range 4 {
		if err := r.TryPut([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	const blocked = 5
	errs := make(chan error, blocked)
	for range blocked {
		go func() { errs <- r.Put(context.Background(), []byte("late")) }()
	}
	waitFor(t, "producers to park", func() bool { return r.waiters.Load() == blocked })
	r.Close()
	for range blocked {
		select {
		case err := <-errs:
			if err != ErrClosed {
				t.Fatalf("blocked Put returned %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("blocked Put not woken by Close")
		}
	}
	if got := drain(r); fmt.Sprint(got) != "[\x00 \x01 \x02 \x03]" {
		t.Fatalf("drain after Close: got %q", got)
	}
	if !r.Drained() {
		t.Fatalf("Drained() = false after draining")
	}
}

// Close racing with producers: every Put that returned nil is drained, and no
// other record appears.
func TestClose_RaceNoLoss(t *testing.T) {
	for round := range 20 {
		r := New(16)
		const producers = 4
		var stored [producers]atomic.Int64
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				var buf [8]byte
				for i := 0; ; i++ {
					binary.LittleEndian.PutUint32(buf[:4], uint32(p))
					binary.LittleEndian.PutUint32(buf[4:], uint32(i))
					var err error
					if i%2 == 0 {
						err = r.Put(context.Background(), buf[:])
					} else {
						err = r.TryPut(buf[:])
						if err == ErrFull {
							runtime.Gosched()
							i--
							continue
						}
					}
					if err == ErrClosed {
						return
					}
					if err != nil {
						t.Errorf("producer %d: %v", p, err)
						return
					}
					stored[p].Add(1)
				}
			})
		}
		closer := time.AfterFunc(time.Duration(round%5)*time.Millisecond, r.Close)
		var got [producers]int64
		var dst [][]byte
		stall := newStallCheck(t, r)
		for !r.Drained() {
			if !r.Wait(10 * time.Millisecond) {
				stall.idle()
				continue
			}
			stall.progress()
			dst = r.Peek(dst[:0], 5)
			for _, rec := range dst {
				p := binary.LittleEndian.Uint32(rec[:4])
				i := binary.LittleEndian.Uint32(rec[4:])
				if int64(i) != got[p] {
					t.Fatalf("round %d producer %d: got record %d, want %d", round, p, i, got[p])
				}
				got[p]++
			}
			r.Release(len(dst))
		}
		wg.Wait()
		closer.Stop()
		for p := range producers {
			if got[p] != stored[p].Load() {
				t.Fatalf("round %d producer %d: drained %d records, Put reported %d stored", round, p, got[p], stored[p].Load())
			}
		}
	}
}

func TestPut_ContextCancel(t *testing.T) {
	f := func(name string, mk func() (context.Context, context.CancelFunc), callCancel bool, want error) {
		t.Helper()
		r := New(2)
		for range 2 {
			if err := r.TryPut([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := mk()
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- r.Put(ctx, []byte("y")) }()
		waitFor(t, name+": producer to park", func() bool { return r.waiters.Load() == 1 || len(errc) > 0 })
		if callCancel {
			cancel()
		}
		select {
		case err := <-errc:
			if !errors.Is(err, want) {
				t.Fatalf("%s: Put = %v, want %v", name, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Put not woken by its context", name)
		}
		if r.Len() != 2 || r.waiters.Load() != 0 {
			t.Fatalf("%s: after cancelled Put Len=%d waiters=%d, want 2 and 0", name, r.Len(), r.waiters.Load())
		}
		if got := drain(r); fmt.Sprint(got) != "[x x]" {
			t.Fatalf("%s: cancelled record was stored: %q", name, got)
		}
	}
	f("cancel", func() (context.Context, context.CancelFunc) {
		return context.WithCancel(context.Background())
	}, true, context.Canceled)
	f("deadline", func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 50*time.Millisecond)
	}, false, context.DeadlineExceeded)

	// An already-cancelled context does not prevent a Put into free space.
	r := New(2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Put(ctx, []byte("z")); err != nil {
		t.Fatalf("Put with cancelled ctx into empty ring = %v, want nil", err)
	}
}

// Release must wake producers parked on a full ring.
func TestPut_WokenByRelease(t *testing.T) {
	r := New(2)
	for range 2 {
		if err := r.TryPut([]byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 2)
	for range 2 {
		go func() { errc <- r.Put(context.Background(), []byte("new")) }()
	}
	waitFor(t, "producers to park", func() bool { return r.waiters.Load() == 2 })
	r.Peek(nil, 2)
	r.Release(2)
	for range 2 {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("Put = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("parked Put not woken by Release")
		}
	}
	if got := drain(r); fmt.Sprint(got) != "[new new]" {
		t.Fatalf("got %q, want [new new]", got)
	}
}

func TestWait(t *testing.T) {
	r := New(4)
	if r.Wait(0) {
		t.Fatalf("Wait(0) on empty ring = true")
	}
	start := time.Now()
	if r.Wait(30 * time.Millisecond) {
		t.Fatalf("Wait on empty ring = true")
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("Wait(30ms) returned after %v", el)
	}
	if r.sleeping.Load() != 0 {
		t.Fatalf("sleeping flag left set after timeout")
	}

	// Wake-up by a Put from another goroutine, long before the timeout.
	for range 20 {
		go func() {
			time.Sleep(time.Millisecond)
			if err := r.Put(context.Background(), []byte("w")); err != nil {
				t.Errorf("Put: %v", err)
			}
		}()
		start = time.Now()
		if !r.Wait(10 * time.Second) {
			t.Fatalf("Wait = false after a Put")
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Fatalf("Wait woke after %v", el)
		}
		if got := drain(r); fmt.Sprint(got) != "[w]" {
			t.Fatalf("got %q, want [w]", got)
		}
	}

	// A record already there: no waiting at all.
	if err := r.TryPut([]byte("now")); err != nil {
		t.Fatal(err)
	}
	if !r.Wait(0) {
		t.Fatalf("Wait(0) with a record = false")
	}
	drain(r)

	// Close wakes a waiting consumer.
	go func() {
		time.Sleep(5 * time.Millisecond)
		r.Close()
	}()
	start = time.Now()
	if r.Wait(10 * time.Second) {
		t.Fatalf("Wait woken by Close on empty ring = true")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Close woke Wait after %v", el)
	}
}

// After Close, Wait keeps waiting for a record whose slot was claimed before
// Close, because its Put will still return nil.
func TestWait_ClosedWithClaimInFlight(t *testing.T) {
	r := New(4)
	pos, err := r.claim()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if r.Drained() {
		t.Fatalf("Drained() = true with a claim in flight")
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		r.commit(pos, []byte("inflight"))
	}()
	if !r.Wait(10 * time.Second) {
		t.Fatalf("Wait = false while a claimed record was committed")
	}
	if got := drain(r); fmt.Sprint(got) != "[inflight]" {
		t.Fatalf("got %q", got)
	}
	if !r.Drained() {
		t.Fatalf("Drained() = false")
	}
}

// stallCheck fails a consumer loop that makes no progress for 10 s, so that
// a lost wake-up or a corrupted ring fails the test instead of hanging it.
type stallCheck struct {
	t    *testing.T
	r    *Ring
	last time.Time
}

func newStallCheck(t *testing.T, r *Ring) *stallCheck {
	return &stallCheck{t: t, r: r, last: time.Now()}
}

func (s *stallCheck) progress() { s.last = time.Now() }

func (s *stallCheck) idle() {
	s.t.Helper()
	if time.Since(s.last) > 10*time.Second {
		s.t.Fatalf("consumer stalled for 10s: Len=%d tail=%d released=%d head=%d closed=%v",
			s.r.Len(), s.r.tail.Load()&^closedBit, s.r.released.Load(), s.r.head, s.r.Closed())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Stress: producers put numbered records of varying length through a small
// ring; one consumer drains in random batch sizes, sometimes releasing only
// part of a batch. Every record must arrive exactly once, intact, in order
// per producer.
func TestStress(t *testing.T) {
	perProducer := 20000
	if testing.Short() {
		perProducer = 2000
	}
	if raceEnabled {
		perProducer /= 4
	}
	modes := []string{"put", "tryput", "mixed"}
	for _, producers := range []int{2, 8} {
		for _, slots := range []int{2, 64} {
			for _, mode := range modes {
				name := fmt.Sprintf("producers=%d/slots=%d/%s", producers, slots, mode)
				t.Run(name, func(t *testing.T) {
					stress(t, producers, slots, perProducer, mode)
				})
			}
		}
	}
}

func stress(t *testing.T, producers, slots, perProducer int, mode string) {
	r := New(slots)
	var wg sync.WaitGroup
	for p := range producers {
		usePut := mode == "put" || (mode == "mixed" && p%2 == 0)
		wg.Go(func() {
			buf := make([]byte, 0, 128)
			for i := range perProducer {
				buf = stressRecord(buf[:0], p, i)
				if usePut {
					if err := r.Put(context.Background(), buf); err != nil {
						t.Errorf("producer %d: Put #%d: %v", p, i, err)
						return
					}
					continue
				}
				for {
					err := r.TryPut(buf)
					if err == nil {
						break
					}
					if err != ErrFull {
						t.Errorf("producer %d: TryPut #%d: %v", p, i, err)
						return
					}
					runtime.Gosched()
				}
				// Overwrite the caller's buffer: the ring must have copied.
				clear(buf)
			}
		})
	}
	go func() {
		wg.Wait()
		r.Close()
	}()

	next := make([]int, producers)
	rng := rand.New(rand.NewPCG(1, uint64(producers*slots)))
	var dst [][]byte
	var want []byte
	total := 0
	stall := newStallCheck(t, r)
	defer r.Close() // on failure, unblock the producers
	for !r.Drained() {
		if !r.Wait(100 * time.Millisecond) {
			stall.idle()
			continue
		}
		stall.progress()
		dst = r.Peek(dst[:0], 1+rng.IntN(2*slots))
		if len(dst) == 0 {
			t.Fatalf("Wait reported a record but Peek returned none")
		}
		if n := r.Len(); n < len(dst) || n > r.Cap() {
			t.Fatalf("Len = %d with %d peeked records and Cap %d", n, len(dst), r.Cap())
		}
		n := len(dst)
		if rng.IntN(4) == 0 {
			n = rng.IntN(n + 1) // partial release: the rest comes again
		}
		for _, rec := range dst[:n] {
			if len(rec) < 8 {
				t.Fatalf("short record %q", rec)
			}
			p := int(binary.LittleEndian.Uint32(rec))
			i := int(binary.LittleEndian.Uint32(rec[4:]))
			if p >= producers {
				t.Fatalf("record from unknown producer %d", p)
			}
			if i != next[p] {
				t.Fatalf("producer %d: got record %d, want %d", p, i, next[p])
			}
			if want = stressRecord(want[:0], p, i); !bytes.Equal(rec, want) {
				t.Fatalf("producer %d record %d corrupted:\n got %x\nwant %x", p, i, rec, want)
			}
			next[p]++
		}
		r.Release(n)
		total += n
	}
	for p, n := range next {
		if n != perProducer {
			t.Fatalf("producer %d: received %d records, want %d", p, n, perProducer)
		}
	}
	if total != producers*perProducer || r.Len() != 0 {
		t.Fatalf("received %d records, want %d; Len = %d", total, producers*perProducer, r.Len())
	}
}

// stressRecord appends producer id, counter and a counter-dependent payload
// of varying length (so slot buffers grow and shrink in use).
func stressRecord(dst []byte, p, i int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(p))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(i))
	for k := range (i*7 + p) % 97 {
		dst = append(dst, byte(i+k))
	}
	return dst
}

func TestAllocs(t *testing.T) {
	r := New(64)
	rec := bytes.Repeat([]byte("e"), 200)
	dst := make([][]byte, 0, 64)
	// Warm-up: every slot grows its buffer once.
	for range 2 {
		for range r.Cap() {
			if err := r.TryPut(rec); err != nil {
				t.Fatal(err)
			}
		}
		dst = r.Peek(dst[:0], r.Cap())
		r.Release(len(dst))
	}
	f := func(name string, fn func()) {
		t.Helper()
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Fatalf("%s: %v allocs per run, want 0", name, n)
		}
	}
	f("TryPut+Peek+Release", func() {
		for range 3 {
			if err := r.TryPut(rec); err != nil {
				t.Fatal(err)
			}
		}
		dst = r.Peek(dst[:0], 8)
		r.Release(len(dst))
	})
	ctx := context.Background()
	f("Put+Wait+Peek+Release", func() {
		if err := r.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if !r.Wait(time.Second) {
			t.Fatal("Wait = false")
		}
		dst = r.Peek(dst[:0], 8)
		r.Release(len(dst))
	})
	f("TryPut on full ring", func() {
		for r.TryPut(rec) == nil {
		}
		dst = r.Peek(dst[:0], r.Cap())
		r.Release(len(dst))
	})
	f("Wait timeout", func() {
		if r.Wait(time.Microsecond) {
			t.Fatal("Wait on empty ring = true")
		}
	})
}

// TestPutPosMatchesHead checks the contract RELP acknowledgement relies on:
// the position PutPos returns is exactly Head plus the record's index in
// the consumer's Peek, for every record, with several producers racing.
func TestPutPosMatchesHead(t *testing.T) {
	const producers, per = 4, 5000
	r := New(16)
	var mu sync.Mutex
	posOf := make(map[string]uint64, producers*per)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range per {
				rec := fmt.Appendf(nil, "%d/%d", p, i)
				pos, err := r.PutPos(context.Background(), rec)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				posOf[string(rec)] = pos
				mu.Unlock()
			}
		})
	}
	type seen struct {
		rec string
		pos uint64
	}
	var got []seen
	var dst [][]byte
	for len(got) < producers*per {
		if !r.Wait(time.Second) {
			continue
		}
		dst = r.Peek(dst[:0], 7)
		for i, rec := range dst {
			got = append(got, seen{string(rec), r.Head() + uint64(i)})
		}
		r.Release(len(dst))
	}
	wg.Wait()
	for i, s := range got {
		if s.pos != uint64(i) {
			t.Fatalf("record %d (%s) read at position %d", i, s.rec, s.pos)
		}
		if want := posOf[s.rec]; want != s.pos {
			t.Fatalf("record %s: PutPos returned %d, consumer saw it at %d", s.rec, want, s.pos)
		}
	}
}

// TestNudgeEndsWait checks that Nudge makes a blocked Wait return early
// without a record, that records still end Wait, and that a Nudge sent
// while the consumer is not waiting ends its next Wait.
func TestNudgeEndsWait(t *testing.T) {
	r := New(4)
	done := make(chan bool)
	go func() { done <- r.Wait(time.Minute) }()
	time.Sleep(20 * time.Millisecond)
	r.Nudge()
	select {
	case got := <-done:
		if got {
			t.Fatal("Wait reported a record in an empty ring")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Nudge did not end Wait")
	}
	go func() { done <- r.Wait(time.Minute) }()
	time.Sleep(20 * time.Millisecond)
	if err := r.TryPut([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if !<-done {
		t.Fatal("Wait did not report the record")
	}
	r.Release(len(r.Peek(nil, 4)))
	r.Nudge()
	start := time.Now()
	if r.Wait(time.Minute) || time.Since(start) > 5*time.Second {
		t.Fatal("a Nudge before Wait was lost")
	}
}
