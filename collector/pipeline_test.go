package collector

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/consumer"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/ledger"
	"github.com/trawlsec/trawl/sinks/disk"
)

// runPipeline pushes producers×perProducer app events through a pipeline
// with a real spool and returns the events found in the spool afterwards.
func runPipeline(t *testing.T, policy Policy, ringSlots, producers, perProducer int) ([]event.Event, *ledger.Input) {
	t.Helper()
	evs, led, _ := runPipelineWith(t, policy, ringSlots, producers, perProducer, 0)
	return evs, led
}

// runPipelineWith is runPipeline whose producers, with batch > 0, hand
// their events over in batches (Producer.Add, then Flush after every batch
// events; 0 is Emit). It also returns the most events found in one frame.
func runPipelineWith(t *testing.T, policy Policy, ringSlots, producers, perProducer, batch int) ([]event.Event, *ledger.Input, int) {
	t.Helper()
	dir := t.TempDir()
	sp, err := disk.Open(disk.Options{Dir: dir, Fsync: disk.FsyncInterval, FsyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	set := metrics.NewSet()
	led := ledger.New(set).Input("app", "app")
	limits := frame.BatchLimits{MaxEvents: 100, MaxBytes: 1 << 20, MaxLatency: 5 * time.Millisecond}
	p, err := newPipeline(pipelineConfig{name: "app", kind: event.KindApp, observer: "test", policy: policy,
		ringSlots: ringSlots, limits: limits, firstSeq: 1000}, sp, led, set.NewCounter("spool"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < producers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr := p.producer()
			var ev event.Event
			for i := 0; i < perProducer; i++ {
				ev.Reset()
				ev.Kind = event.KindApp
				ev.RecvTime = int64(g)<<32 | int64(i)
				ev.App.Raw = fmt.Appendf(nil, `{"g":%d,"i":%d}`, g, i)
				var err error
				switch {
				case batch == 0:
					err = pr.Emit(context.Background(), &ev, len(ev.App.Raw))
				case (i+1)%batch == 0 || i == perProducer-1:
					if err = pr.Add(context.Background(), &ev, len(ev.App.Raw)); err == nil {
						err = pr.Flush(context.Background())
					}
				default:
					err = pr.Add(context.Background(), &ev, len(ev.App.Raw))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	p.closeAndWait()
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	dec, err := consumer.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	most := 0
	err = disk.Scan(dir, func(rec []byte, _ disk.Pos) error {
		n := 0
		_, err := dec.Frame(rec, func(ev *event.Event) error {
			evs = append(evs, event.Event{Seq: ev.Seq, RecvTime: ev.RecvTime, Input: append([]byte(nil), ev.Input...)})
			n++
			return nil
		})
		most = max(most, n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs, led, most
}

// checkExactlyOnce verifies every event arrived once, in per-producer
// order of sequence numbers, numbered consecutively from 1000.
func checkExactlyOnce(t *testing.T, evs []event.Event, producers, perProducer int) {
	t.Helper()
	if len(evs) != producers*perProducer {
		t.Fatalf("spool holds %d events, want %d", len(evs), producers*perProducer)
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Seq < evs[j].Seq })
	next := make([]int64, producers)
	for i, ev := range evs {
		if ev.Seq != uint64(1000+i) {
			t.Fatalf("sequence numbers are not consecutive: position %d has %d", i, ev.Seq)
		}
		if string(ev.Input) != "app" {
			t.Fatalf("input %q", ev.Input)
		}
		g, n := ev.RecvTime>>32, ev.RecvTime&(1<<32-1)
		if n != next[g] {
			t.Fatalf("producer %d: event %d arrived when %d was expected", g, n, next[g])
		}
		next[g]++
	}
}

func TestPipelineBlockLosesNothing(t *testing.T) {
	evs, led := runPipeline(t, Block, 8, 4, 5000)
	checkExactlyOnce(t, evs, 4, 5000)
	if led.Delivered.Get() != 20000 || led.Received.Get() != 20000 {
		t.Fatalf("ledger: received %d delivered %d", led.Received.Get(), led.Delivered.Get())
	}
}

func TestPipelineSpillLosesNothing(t *testing.T) {
	evs, led := runPipeline(t, Spill, 2, 4, 2000)
	// Spilled events bypass the ring, so order across frames is by
	// sequence number only per frame; exactly-once still holds.
	if len(evs) != 8000 {
		t.Fatalf("spool holds %d events, want 8000", len(evs))
	}
	seen := map[uint64]bool{}
	for _, ev := range evs {
		if seen[ev.Seq] || ev.Seq < 1000 || ev.Seq >= 9000 {
			t.Fatalf("sequence %d duplicated or out of range", ev.Seq)
		}
		seen[ev.Seq] = true
	}
	if d, r, s := led.Delivered.Get(), led.Dropped(ledger.ReasonRingFull).Get(), led.Dropped(ledger.ReasonSpoolError).Get(); d != 8000 || r != 0 || s != 0 {
		t.Fatalf("ledger: delivered %d, dropped ring_full %d, spool_error %d", d, r, s)
	}
}

func TestPipelineDropNewestCounts(t *testing.T) {
	evs, led := runPipeline(t, DropNewest, 2, 4, 5000)
	dropped := led.Dropped(ledger.ReasonRingFull).Get()
	if uint64(len(evs))+dropped != 20000 || led.Delivered.Get() != uint64(len(evs)) {
		t.Fatalf("spool %d + dropped %d != 20000 (delivered %d)", len(evs), dropped, led.Delivered.Get())
	}
}

// flakySpool refuses the first fails appends, as a full disk would, then
// accepts; it stands in for the spool, whose own ENOSPC handling is tested
// in sinks/disk with a real full tmpfs.
type flakySpool struct {
	mu    sync.Mutex
	fails int
	recs  [][]byte
}

func (f *flakySpool) SyncSoon() {}

func (f *flakySpool) AppendSealed(rec []byte) (disk.Pos, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return 0, fmt.Errorf("write segment: %w", syscall.ENOSPC)
	}
	f.recs = append(f.recs, append([]byte(nil), rec...))
	return disk.Pos(len(f.recs)), nil
}

func (f *flakySpool) WaitDurable(context.Context, disk.Pos) error { return nil }

func TestPipelineRetriesFullDisk(t *testing.T) {
	sp := &flakySpool{fails: 4}
	set := metrics.NewSet()
	led := ledger.New(set).Input("app", "app")
	p, err := newPipeline(pipelineConfig{name: "app", kind: event.KindApp, policy: Block, ringSlots: 16,
		limits: frame.BatchLimits{MaxEvents: 10, MaxBytes: 1 << 20, MaxLatency: time.Millisecond}}, sp, led, set.NewCounter("spool"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	pr := p.producer()
	var ev event.Event
	for i := 0; i < 100; i++ {
		ev.Reset()
		ev.Kind = event.KindApp
		ev.App.Raw = []byte(`{}`)
		if err := pr.Emit(context.Background(), &ev, 2); err != nil {
			t.Fatal(err)
		}
	}
	p.closeAndWait()
	n := 0
	for _, rec := range sp.recs {
		h, _, _, err := frame.Parse(rec)
		if err != nil {
			t.Fatal(err)
		}
		n += int(h.Count)
	}
	if n != 100 || led.Delivered.Get() != 100 {
		t.Fatalf("spool got %d events, delivered %d; want 100", n, led.Delivered.Get())
	}
	if got := led.Errors("spool_retry").Get(); got != 4 {
		t.Fatalf("spool_retry = %d, want 4", got)
	}
	if got := led.Dropped(ledger.ReasonSpoolError).Get(); got != 0 {
		t.Fatalf("dropped spool_error = %d", got)
	}
}

// gatedSpool holds WaitDurable until its gate opens, so a test can watch
// what an acknowledging input would do before and after the fsync.
type gatedSpool struct {
	*disk.Spool
	gate chan struct{}
}

func (g gatedSpool) WaitDurable(ctx context.Context, p disk.Pos) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Spool.WaitDurable(ctx, p)
}

// TestWaitDurableFollowsSpool checks the acknowledgement RELP builds on: a
// ticket from EmitTicket is not reported durable while the spool has not
// confirmed its frame, and is as soon as it has, for every ticket.
func TestWaitDurableFollowsSpool(t *testing.T) {
	sp, err := disk.Open(disk.Options{Dir: t.TempDir(), Fsync: disk.FsyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	gs := gatedSpool{Spool: sp, gate: make(chan struct{})}
	set := metrics.NewSet()
	led := ledger.New(set).Input("relp", "syslog")
	limits := frame.BatchLimits{MaxEvents: 7, MaxBytes: 1 << 20, MaxLatency: 2 * time.Millisecond}
	p, err := newPipeline(pipelineConfig{name: "relp", kind: event.KindSyslog, observer: "test", policy: DropNewest,
		ringSlots: 4, limits: limits}, gs, led, set.NewCounter("spool"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// EmitTicket blocks on the small ring even though the policy is
	// drop_newest, so all 50 are accepted.
	const n = 50
	tickets := make(chan uint64, n)
	go func() {
		pr := p.producer()
		var ev event.Event
		for i := range n {
			ev.Reset()
			ev.Kind = event.KindSyslog
			ev.Syslog.Message = fmt.Appendf(nil, "message %d", i)
			tk, err := pr.EmitTicket(context.Background(), &ev, 10)
			if err != nil {
				t.Error(err)
			}
			tickets <- tk
		}
		close(tickets)
	}()
	first := <-tickets
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if err := p.waitDurable(ctx, first); err == nil {
		t.Fatal("ticket reported durable before the spool confirmed any frame")
	}
	cancel()
	close(gs.gate)
	all := []uint64{first}
	for tk := range tickets {
		all = append(all, tk)
	}
	for i, tk := range all {
		if tk != uint64(i) {
			t.Fatalf("ticket %d is %d", i, tk)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.waitDurable(ctx, tk); err != nil {
			t.Fatalf("ticket %d: %v", tk, err)
		}
		cancel()
	}
	p.closeAndWait()
	if got := led.Delivered.Get(); got != n {
		t.Fatalf("delivered %d, want %d", got, n)
	}
	if got := led.Dropped(ledger.ReasonRingFull).Get(); got != 0 {
		t.Fatalf("%d dropped on a full ring; EmitTicket must block", got)
	}
}

// TestPipelineBatches sends events in batches of 37 through frames of at
// most 100 events (limits of runPipelineWith), so batches are split across
// frames: every event arrives once, in order per producer, numbered
// consecutively, no frame holds more than MaxEvents, and the ledger adds
// up, under each policy.
func TestPipelineBatches(t *testing.T) {
	t.Run("block", func(t *testing.T) {
		evs, led, most := runPipelineWith(t, Block, 8, 4, 5000, 37)
		checkExactlyOnce(t, evs, 4, 5000)
		if most > 100 {
			t.Fatalf("a frame holds %d events, MaxEvents is 100", most)
		}
		if led.Delivered.Get() != 20000 || led.Received.Get() != 20000 {
			t.Fatalf("ledger: received %d delivered %d", led.Received.Get(), led.Delivered.Get())
		}
	})
	t.Run("drop_newest", func(t *testing.T) {
		evs, led, _ := runPipelineWith(t, DropNewest, 2, 4, 5000, 37)
		dropped := led.Dropped(ledger.ReasonRingFull).Get()
		if uint64(len(evs))+dropped != 20000 || led.Delivered.Get() != uint64(len(evs)) || led.Received.Get() != 20000 {
			t.Fatalf("spool %d + dropped %d != 20000 (delivered %d, received %d)", len(evs), dropped, led.Delivered.Get(), led.Received.Get())
		}
	})
	t.Run("spill", func(t *testing.T) {
		evs, led, _ := runPipelineWith(t, Spill, 2, 4, 2000, 37)
		seen := map[uint64]bool{}
		for _, ev := range evs {
			if seen[ev.Seq] || ev.Seq < 1000 || ev.Seq >= 9000 {
				t.Fatalf("sequence %d duplicated or out of range", ev.Seq)
			}
			seen[ev.Seq] = true
		}
		if len(evs) != 8000 || led.Delivered.Get() != 8000 {
			t.Fatalf("spool holds %d events, delivered %d, want 8000", len(evs), led.Delivered.Get())
		}
	})
}
