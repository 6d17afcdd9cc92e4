package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/ledger"
	"github.com/trawlsec/trawl/ring"
	"github.com/trawlsec/trawl/sinks/disk"
)

// Policy is what an input does when its ring is full.
type Policy uint8

// Backpressure policies (config values block, drop_newest, spill).
const (
	// Block makes the producer wait: TCP inputs stop reading, so the sender
	// is slowed by TCP flow control.
	Block Policy = iota
	// DropNewest drops the event being offered and counts it.
	DropNewest
	// Spill writes the event straight to the spool in a frame of its own,
	// bypassing the ring: slower per event, but nothing is dropped.
	Spill
)

// ParsePolicy maps a config value to a Policy.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "block":
		return Block, nil
	case "drop_newest":
		return DropNewest, nil
	case "spill":
		return Spill, nil
	}
	return 0, fmt.Errorf("unknown backpressure policy %q", s)
}

// spoolAppender is what a pipeline needs of the spool.
type spoolAppender interface {
	// AppendSealed appends a frame, which ends with its own CRC32C.
	AppendSealed(rec []byte) (disk.Pos, error)
	WaitDurable(ctx context.Context, p disk.Pos) error
	SyncSoon()
}

// pipeline carries one input's events: producers → ring → framer → spool,
// and an acker that counts events delivered once the spool made them
// durable.
type pipeline struct {
	name     string
	nameB    []byte // name, kept as bytes for frame headers
	kind     event.Kind
	observer []byte
	policy   Policy
	ring     *ring.Ring
	spool    spoolAppender
	led      *ledger.Input
	limits   frame.BatchLimits
	level    frame.Level
	logf     func(string, ...any)

	nextSeq atomic.Uint64

	dropRing  *metrics.Counter
	dropSpool *metrics.Counter
	dropStop  *metrics.Counter
	spoolErrs *metrics.Counter
	delivered *metrics.Counter // the spool sink's counter

	acks chan ack

	// durablePos is the ring position below which every record is in a
	// frame the spool reports durable; durableCh is closed and replaced
	// each time it advances. lostFrame is set once a sealed frame could
	// not be written: from then on no acknowledgement is given, so a
	// sender that retransmits unacknowledged messages (RELP) resends them.
	durablePos atomic.Uint64
	durableMu  sync.Mutex
	durableCh  chan struct{}
	lostFrame  atomic.Bool
	// waiters counts goroutines in waitDurable. While a sender waits for
	// an acknowledgement, the framer seals as soon as the ring is empty
	// and the acker asks the spool for an fsync at once, instead of
	// letting MaxLatency and the fsync interval hold every window.
	waiters atomic.Int32

	spillMu  sync.Mutex
	spillEnc *frame.Encoder
	spillB   frame.Builder
	spillBuf []byte

	framerDone chan struct{}
	ackerDone  chan struct{}
}

type ack struct {
	end     disk.Pos
	count   int
	ringEnd uint64 // ring position after the frame's last record; 0 for spill frames
}

type pipelineConfig struct {
	name, inputType string
	kind            event.Kind
	observer        string
	policy          Policy
	ringSlots       int
	limits          frame.BatchLimits
	level           frame.Level
	firstSeq        uint64
}

func newPipeline(pc pipelineConfig, sp spoolAppender, led *ledger.Input, spoolDelivered *metrics.Counter, logf func(string, ...any)) (*pipeline, error) {
	p := &pipeline{
		name:       pc.name,
		nameB:      []byte(pc.name),
		kind:       pc.kind,
		observer:   []byte(pc.observer),
		policy:     pc.policy,
		ring:       ring.New(pc.ringSlots),
		spool:      sp,
		led:        led,
		limits:     pc.limits,
		level:      pc.level,
		logf:       logf,
		dropRing:   led.Dropped(ledger.ReasonRingFull),
		dropSpool:  led.Dropped(ledger.ReasonSpoolError),
		dropStop:   led.Dropped("shutdown"),
		spoolErrs:  led.Errors("spool_retry"),
		delivered:  spoolDelivered,
		acks:       make(chan ack, 1024),
		durableCh:  make(chan struct{}),
		framerDone: make(chan struct{}),
		ackerDone:  make(chan struct{}),
	}
	p.nextSeq.Store(pc.firstSeq)
	if pc.policy == Spill {
		enc, err := frame.NewEncoder(frame.EncoderOptions{Level: frame.LevelNone})
		if err != nil {
			return nil, fmt.Errorf("create spill encoder for input %q: %w", pc.name, err)
		}
		p.spillEnc = enc
	}
	return p, nil
}

// start runs the framer and the acker. stop is the hard deadline: when it
// ends, a framer that cannot write to the spool gives up and counts.
func (p *pipeline) start(stop context.Context) error {
	enc, err := frame.NewEncoder(frame.EncoderOptions{Level: p.level})
	if err != nil {
		return fmt.Errorf("create frame encoder for input %q: %w", p.name, err)
	}
	go p.framer(stop, enc)
	go p.acker()
	return nil
}

// closeAndWait closes the ring (inputs have stopped producing), waits for
// the framer to write the last frame and for the acker to count it.
func (p *pipeline) closeAndWait() {
	p.ring.Close()
	<-p.framerDone
	<-p.ackerDone
}

// Producer is one goroutine's handle on an input's pipeline. It owns a
// scratch buffer for encoding and the batch that [Producer.Add] builds, so
// it must not be shared between goroutines.
type Producer struct {
	p   *pipeline
	buf []byte

	// batch is the ring record Add builds: batchMarker, the number of
	// events, then the events as a frame's raw payload holds them. n and
	// size are its events and their payload bytes.
	batch []byte
	n     int
	size  int
}

// A ring record is either one encoded event, whose first byte is
// event.Version, or a batch of events from [Producer.Add], whose first byte
// is batchMarker (never a valid event version) and second the number of
// events, at most maxBatchEvents so that it is a one-byte uvarint.
//
// The inputs that read many events at once (flows, syslog over UDP, TCP
// and TLS, JSON lines) hand over the events of one read as batches: handing
// each flow to the ring on its own (a claim, a commit, and a copy into the
// frame apiece) cost about a fifth of the node's CPU at 2.4M v5 flows/s.
// RELP, which acknowledges each message, and the inputs that get one event
// per read use Emit. A batch is capped at maxBatchBytes because a ring slot
// keeps the largest record it has held: a ring of 8192 slots then holds at
// most 16 MiB.
const (
	batchMarker    = 0
	maxBatchEvents = 127
	maxBatchBytes  = 2048
)

func (p *pipeline) producer() *Producer {
	return &Producer{p: p, buf: make([]byte, 0, 1024)}
}

// Add encodes ev into the producer's open batch, counting it received (with
// size payload bytes) when the batch is handed over. The batch goes to the
// ring, by the input's policy, when it reaches maxBatchEvents or
// maxBatchBytes, or at [Producer.Flush], which the input must call once it
// has added what one read gave it: until then the events wait in the
// producer. ev may be reused once Add returns. An error is Flush's.
func (pr *Producer) Add(ctx context.Context, ev *event.Event, size int) error {
	if pr.n == 0 {
		pr.batch = append(pr.batch[:0], batchMarker, 0)
	}
	pr.batch = frame.AppendEvent(pr.batch, ev)
	pr.n++
	pr.size += size
	if pr.n == maxBatchEvents || len(pr.batch) >= maxBatchBytes {
		return pr.Flush(ctx)
	}
	return nil
}

// Flush hands the open batch, if any, to the ring according to the input's
// policy, as [Producer.Emit] does with one event. An error means the
// batch's events were not accepted (they are counted as dropped); it only
// happens when ctx ends while Flush blocks.
func (pr *Producer) Flush(ctx context.Context) error {
	if pr.n == 0 {
		return nil
	}
	k, size := pr.n, pr.size
	pr.n, pr.size = 0, 0
	pr.batch[1] = byte(k)
	return pr.put(ctx, pr.batch, k, size)
}

// Emit counts ev as received (with size payload bytes) and hands it to the
// ring according to the input's policy. ev is encoded before Emit returns,
// so the caller may reuse it and the buffers it points into. An error means
// the event was not accepted (it is counted as dropped); it only happens
// when ctx ends while Emit blocks.
func (pr *Producer) Emit(ctx context.Context, ev *event.Event, size int) error {
	// Events added before keep their place ahead of ev. (Checked here so
	// that the usual Emit, with nothing added, makes no call for it.)
	if pr.n > 0 {
		if err := pr.Flush(ctx); err != nil {
			return err
		}
	}
	pr.buf = event.AppendBinary(pr.buf[:0], ev)
	return pr.put(ctx, pr.buf, 1, size)
}

// put counts the n events of ring record rec received (with size payload
// bytes) and hands rec to the ring according to the input's policy.
func (pr *Producer) put(ctx context.Context, rec []byte, n, size int) error {
	p := pr.p
	p.led.Received.Add(n)
	p.led.ReceivedBytes.Add(size)
	switch p.policy {
	case DropNewest:
		if err := p.ring.TryPut(rec); err != nil {
			p.dropRing.Add(n)
		}
		return nil
	case Spill:
		if err := p.ring.TryPut(rec); err != nil {
			return p.spill(ctx, rec)
		}
		return nil
	default:
		if err := p.ring.Put(ctx, rec); err != nil {
			p.dropStop.Add(n)
			return fmt.Errorf("input %q: %d events not accepted: %w", p.name, n, err)
		}
		return nil
	}
}

// addRecord adds ring record rec, an event or a batch, to b, as many of
// its events as fit in maxEvents. It returns the batch's events that did
// not fit, in raw-payload form, and their number (0 when all fit), for the
// next frame.
func addRecord(b *frame.Builder, rec []byte, maxEvents int) (rest []byte, n int) {
	if len(rec) < 2 || rec[0] != batchMarker {
		b.Add(rec)
		return nil, 0
	}
	return addBatch(b, rec[2:], int(rec[1]), maxEvents)
}

// addBatch adds the n records of raw (raw-payload form) to b, as many as
// fit in maxEvents, and returns the rest.
func addBatch(b *frame.Builder, raw []byte, n, maxEvents int) (rest []byte, left int) {
	room := maxEvents - b.Len()
	if n <= room {
		b.AddRaw(raw, n)
		return nil, 0
	}
	rest = raw
	for range room {
		// The producer laid raw out; Next cannot fail on it.
		_, rest, _ = frame.Next(rest)
	}
	b.AddRaw(raw[:len(raw)-len(rest)], room)
	return rest, n - room
}

// EmitTicket is Emit for inputs that acknowledge their senders: it always
// blocks while the ring is full, whatever the input's policy (the sender's
// window is the backpressure), and returns a ticket for
// [pipeline.waitDurable]. An error means the event was not accepted.
func (pr *Producer) EmitTicket(ctx context.Context, ev *event.Event, size int) (uint64, error) {
	p := pr.p
	pr.buf = event.AppendBinary(pr.buf[:0], ev)
	p.led.Received.Inc()
	p.led.ReceivedBytes.Add(size)
	pos, err := p.ring.PutPos(ctx, pr.buf)
	if err != nil {
		p.dropStop.Inc()
		return 0, fmt.Errorf("input %q: event not accepted: %w", p.name, err)
	}
	return pos, nil
}

// errNotDurable is returned by waitDurable once a frame was lost: the
// event behind the ticket may never reach the spool.
var errNotDurable = errors.New("a frame could not be written to the spool")

// waitDurable blocks until the event behind ticket (from EmitTicket) is in
// a frame the spool reports durable, or ctx ends.
func (p *pipeline) waitDurable(ctx context.Context, ticket uint64) error {
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	p.ring.Nudge() // a framer holding an open frame seals it now
	for {
		if p.lostFrame.Load() {
			return errNotDurable
		}
		if p.durablePos.Load() > ticket {
			return nil
		}
		p.durableMu.Lock()
		ch := p.durableCh
		p.durableMu.Unlock()
		// Re-check after taking the channel: an advance between the load
		// above and here closed the previous channel, not ch.
		if p.durablePos.Load() > ticket || p.lostFrame.Load() {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// advanceDurable records that every ring position below pos is durable and
// wakes the waiters.
func (p *pipeline) advanceDurable(pos uint64) {
	if pos <= p.durablePos.Load() {
		return
	}
	p.durableMu.Lock()
	p.durablePos.Store(pos)
	close(p.durableCh)
	p.durableCh = make(chan struct{})
	p.durableMu.Unlock()
}

// failDurable marks that a frame was lost and wakes the waiters.
func (p *pipeline) failDurable() {
	p.durableMu.Lock()
	p.lostFrame.Store(true)
	close(p.durableCh)
	p.durableCh = make(chan struct{})
	p.durableMu.Unlock()
}

// spill writes one event as a frame of its own, uncompressed, straight to
// the spool. It serialises spilling producers; the framer keeps running.
func (p *pipeline) spill(ctx context.Context, rec []byte) error {
	p.spillMu.Lock()
	defer p.spillMu.Unlock()
	p.spillB.Reset()
	addRecord(&p.spillB, rec, math.MaxInt) // a spill frame takes a whole batch
	n := p.spillB.Len()
	seq := p.nextSeq.Add(uint64(n)) - uint64(n)
	var err error
	p.spillBuf, err = p.spillEnc.AppendFrame(p.spillBuf[:0], p.header(seq), &p.spillB)
	if err != nil {
		p.dropSpool.Add(n)
		return fmt.Errorf("input %q: cannot encode spill frame: %w", p.name, err)
	}
	end, err := p.appendRetry(ctx, p.spillBuf)
	if err != nil {
		p.dropSpool.Add(n)
		return err
	}
	p.acks <- ack{end: end, count: n}
	return nil
}

func (p *pipeline) header(firstSeq uint64) frame.Header {
	return frame.Header{
		Kind:     p.kind,
		FirstSeq: firstSeq,
		Created:  time.Now().UnixNano(),
		Input:    p.nameB,
		Observer: p.observer,
	}
}

// framer is the ring's single consumer: it batches records into frames,
// sealing a frame when it is full or when its oldest event has waited
// MaxLatency, and appends each frame to the spool.
func (p *pipeline) framer(stop context.Context, enc *frame.Encoder) {
	defer close(p.framerDone)
	defer close(p.acks)
	var (
		b       frame.Builder
		out     []byte
		batch   [][]byte
		started time.Time // when the oldest record of the open frame arrived
	)
	// seal writes the open frame; ringEnd is the ring position after its
	// last record.
	seal := func(ringEnd uint64) {
		if b.Len() == 0 {
			return
		}
		n := b.Len()
		seq := p.nextSeq.Add(uint64(n)) - uint64(n)
		var err error
		out, err = enc.AppendFrame(out[:0], p.header(seq), &b)
		b.Reset()
		if err != nil {
			p.logf("input %s: cannot encode frame: %v", p.name, err)
			p.dropSpool.Add(n)
			p.failDurable()
			return
		}
		end, err := p.appendRetry(stop, out)
		if err != nil {
			p.logf("input %s: %d events lost: %v", p.name, n, err)
			p.dropSpool.Add(n)
			p.failDurable()
			return
		}
		p.acks <- ack{end: end, count: n, ringEnd: ringEnd}
	}
	maxLatency := p.limits.MaxLatency
	for {
		batch = p.ring.Peek(batch[:0], 512)
		if len(batch) == 0 {
			if b.Len() > 0 && (p.waiters.Load() > 0 || time.Since(started) >= maxLatency) {
				seal(p.ring.Head())
			}
			if p.ring.Closed() && p.ring.Len() == 0 {
				seal(p.ring.Head())
				return
			}
			wait := time.Second
			if b.Len() > 0 {
				wait = maxLatency - time.Since(started)
			}
			if wait > 0 {
				p.ring.Wait(wait)
			}
			continue
		}
		if b.Len() == 0 {
			started = time.Now()
		}
		head := p.ring.Head()
		for i, rec := range batch {
			rest, k := addRecord(&b, rec, p.limits.MaxEvents)
			for k > 0 {
				// A batch split at MaxEvents: this frame holds only part
				// of the record at head+i, so it is not yet durable.
				seal(head + uint64(i))
				started = time.Now()
				rest, k = addBatch(&b, rest, k, p.limits.MaxEvents)
			}
			if p.limits.Full(&b) {
				seal(head + uint64(i) + 1)
				started = time.Now()
			}
		}
		p.ring.Release(len(batch))
		if b.Len() > 0 && time.Since(started) >= maxLatency {
			seal(p.ring.Head())
		}
	}
}

// appendRetry appends a frame, retrying while the spool refuses it (a full
// disk, an I/O error): the ring then fills up and the input's policy slows
// or drops new events, while nothing already accepted is lost. It gives up
// only when stop ends.
func (p *pipeline) appendRetry(stop context.Context, rec []byte) (disk.Pos, error) {
	backoff := 10 * time.Millisecond
	var lastLog time.Time
	for {
		end, err := p.spool.AppendSealed(rec)
		if err == nil {
			return end, nil
		}
		if errors.Is(err, os.ErrClosed) {
			return 0, err
		}
		p.spoolErrs.Inc()
		if time.Since(lastLog) > 10*time.Second {
			p.logf("input %s: spool refused a frame, retrying: %v", p.name, err)
			lastLog = time.Now()
		}
		select {
		case <-stop.Done():
			return 0, fmt.Errorf("gave up writing to the spool: %w", err)
		case <-time.After(backoff):
		}
		if backoff < time.Second {
			backoff *= 2
		}
	}
}

// acker counts events as delivered once the spool says their frame is
// durable; frames are acknowledged in the order they were appended.
func (p *pipeline) acker() {
	defer close(p.ackerDone)
	for a := range p.acks {
		if p.waiters.Load() > 0 {
			p.spool.SyncSoon()
		}
		// The spool only fails WaitDurable when it is closed, which
		// happens after every acker is done; background ctx is right.
		if err := p.spool.WaitDurable(context.Background(), a.end); err != nil {
			p.logf("input %s: frame not confirmed durable: %v", p.name, err)
			p.failDurable()
			continue
		}
		p.led.Delivered.Add(a.count)
		p.delivered.Add(a.count)
		if a.ringEnd != 0 {
			p.advanceDurable(a.ringEnd)
		}
	}
}
