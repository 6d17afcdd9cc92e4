// Package kafka is the Apache Kafka sink: it follows the disk spool with a
// durable cursor and produces one Kafka record per event (ECS JSON or
// protobuf, in zstd-compressed batches) or one record per frame (the
// spool's frame as is, already compressed), with franz-go's idempotent
// producer and acks=all.
//
// Delivery goes through the spool. An event counts as accepted once its
// frame is durable in the spool; the sink's cursor moves past a frame only
// after the brokers acknowledged every record of it and of every frame
// before it. While the brokers are down or slow, records wait in franz-go's
// buffer and, once that is full, frames wait in the spool and are produced
// in order when the brokers return. After a crash the sink resumes at its
// last committed cursor, so delivery is at-least-once: events produced
// after the last commit are produced again.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/trawlsec/trawl/consumer"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/sinks/disk"
)

// Encoding is how an event becomes a Kafka record value.
type Encoding uint8

// Encodings. The record header consumer.HeaderEncoding names the one used
// and consumer.HeaderEncodingVersion its version.
const (
	// EncodingJSON is ECS JSON, one object per record (event.AppendJSON).
	EncodingJSON Encoding = iota
	// EncodingProtobuf writes flows as goflow2's FlowMessage (v2 schema)
	// and every other kind in trawl's binary encoding, which is protobuf
	// wire format too (docs/encoding.md).
	EncodingProtobuf
	// EncodingFrame writes one record per spool frame, its bytes exactly
	// as the spool holds them (consumer.EncodingTrawlFrame): no decoding,
	// no re-encoding, the frame's own codec is the compression. Records
	// are keyed by the frame's input name.
	EncodingFrame
)

var encodingNames = [...]string{"json", "protobuf", "frame"}

// String returns the encoding's configuration name.
func (e Encoding) String() string {
	if int(e) < len(encodingNames) {
		return encodingNames[e]
	}
	return fmt.Sprintf("encoding(%d)", uint8(e))
}

// ParseEncoding parses "json" (or ""), "protobuf" or "frame".
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "", "json":
		return EncodingJSON, nil
	case "protobuf":
		return EncodingProtobuf, nil
	case "frame":
		return EncodingFrame, nil
	}
	return 0, fmt.Errorf("unknown Kafka encoding %q (want json, protobuf or frame)", s)
}

var (
	binaryVersion = strconv.Itoa(event.Version)
	frameVersion  = strconv.Itoa(frame.Version)
)

// ParseCompression maps a compression name ("" and "zstd" are zstd) to
// franz-go's codec.
func ParseCompression(s string) (kgo.CompressionCodec, error) {
	switch s {
	case "", "zstd":
		return kgo.ZstdCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown Kafka compression %q (want zstd, lz4, snappy, gzip or none)", s)
}

// DefaultTopic returns the topic events of kind k go to unless configured
// otherwise: "trawl.<kind>" (consumer.DefaultTopic).
func DefaultTopic(k event.Kind) string { return consumer.DefaultTopic(k) }

const defaultName = "kafka"

// Options configures a Kafka sink.
type Options struct {
	// Name is the sink's name; its spool cursor is "sink-<Name>".
	Name string
	// Seeds are the bootstrap brokers, "host:port". Required.
	Seeds []string
	// Topics overrides the topic per kind; kinds not in it use DefaultTopic.
	Topics map[event.Kind]string
	// Encoding of record values (default JSON).
	Encoding Encoding
	// Compression of record batches: "zstd", "lz4", "snappy", "gzip" or
	// "none". The default is zstd, and none for EncodingFrame, whose
	// records are frames compressed already (by the spool's codec,
	// frames.compression): compressing them again costs CPU and saves
	// little. zstd is the smallest on the wire and the broker's disk;
	// franz-go compresses in one goroutine per broker, so on a CPU-bound
	// collector lz4 or snappy deliver more events/s.
	Compression string
	// Linger is how long a partition waits for more records before a
	// produce request (default 5ms).
	Linger time.Duration
	// BatchMaxBytes bounds one record batch (default 1 MiB, Kafka's own
	// default limit for a message set). It must not exceed the topics'
	// max.message.bytes. With EncodingFrame it also bounds one frame: a
	// frame that does not fit in a batch on its own is rejected (its events
	// counted as rejected), which compressed frames of the default
	// frames.max_bytes (1 MiB uncompressed) never are.
	BatchMaxBytes int32
	// MaxBufferedRecords bounds the records produced but not yet
	// acknowledged (default 200,000, and 128 with EncodingFrame, where a
	// record is a frame of up to BatchMaxBytes); beyond it the sink stops
	// reading the spool.
	MaxBufferedRecords int
	// TLS, if not nil, is used for every broker connection.
	TLS *tls.Config
	// SASL, if not nil, authenticates every connection.
	SASL sasl.Mechanism
	// ClientID is sent to the brokers (default "trawl").
	ClientID string
	// CommitEvery bounds how often the cursor is persisted (default 1s).
	CommitEvery time.Duration
	// StopTimeout bounds how long Run, after StopAtEnd, waits for the
	// brokers to acknowledge what it read (default 10s). What is not
	// acknowledged stays in the spool for the next start.
	StopTimeout time.Duration
	// Spool is read from. Required.
	Spool *disk.Spool
	// Registry receives the sink's metrics (trawl_sink_lag_*); nil means
	// metrics.GetDefaultSet().
	Registry *metrics.Set
}

// Sink produces the spool's events to Kafka. Create it with [New], run it
// with [Sink.Run].
type Sink struct {
	opts      Options
	delivered *metrics.Counter
	rejected  *metrics.Counter
	logf      func(string, ...any)

	kopts []kgo.Opt
	cl    *kgo.Client
	r     *disk.Reader
	dec   *consumer.Decoder

	// gen counts client restarts; callbacks of frames produced by an
	// earlier client are ignored. failed holds the error that made the
	// current client's delivery unreliable (nil while healthy).
	gen    atomic.Uint64
	failed atomic.Pointer[error]

	hdrs map[event.Kind][]kgo.RecordHeader
	// keys are the record keys of EncodingFrame, one per input name,
	// shared read-only by every record of that input.
	keys   map[string][]byte
	values valuePool

	// in-flight frames, oldest first; guarded by mu.
	mu       sync.Mutex
	inflight []*pendingFrame
	acked    disk.Pos // end of the newest frame with everything before it acknowledged
	ackedNew bool     // acked moved since the last commit
	progress chan struct{}

	inflightEvents atomic.Int64
	oldestCreated  atomic.Int64 // Created of the oldest in-flight frame, 0 if none
	lagBytes       atomic.Int64

	stopOnce sync.Once
	atEnd    chan struct{}
}

// pendingFrame is one spool record (frame) whose events are being produced.
type pendingFrame struct {
	gen       uint64
	end       disk.Pos
	created   int64
	events    int
	remaining atomic.Int64
	done      atomic.Bool
	// value and key bytes of every record of the frame, in one allocation
	// that lives until the frame is acknowledged.
	slab []byte
	recs []kgo.Record
	// rec is the frame's only record with EncodingFrame; its value comes
	// from Sink.values and goes back there once franz-go is done with it.
	rec kgo.Record
}

// New connects the client (lazily: brokers are dialled on first use) and
// opens the sink's spool cursor. delivered counts events the brokers
// acknowledged; rejected counts events a broker refused for good (for
// example a record larger than the topic allows), which are logged and
// skipped so that one bad record cannot stall the sink forever.
func New(opts Options, delivered, rejected *metrics.Counter, logf func(string, ...any)) (*Sink, error) {
	if len(opts.Seeds) == 0 {
		return nil, errors.New("kafka sink needs at least one seed broker")
	}
	if opts.Spool == nil {
		return nil, errors.New("kafka sink needs a spool")
	}
	if opts.Name == "" {
		opts.Name = defaultName
	}
	if opts.Linger == 0 {
		opts.Linger = 5 * time.Millisecond
	}
	if opts.Encoding >= Encoding(len(encodingNames)) {
		return nil, fmt.Errorf("unknown Kafka encoding %d", opts.Encoding)
	}
	if opts.Compression == "" && opts.Encoding == EncodingFrame {
		opts.Compression = "none"
	}
	codec, err := ParseCompression(opts.Compression)
	if err != nil {
		return nil, err
	}
	if opts.BatchMaxBytes == 0 {
		opts.BatchMaxBytes = 1 << 20
	}
	if opts.MaxBufferedRecords == 0 {
		opts.MaxBufferedRecords = 200_000
		if opts.Encoding == EncodingFrame {
			opts.MaxBufferedRecords = defaultMaxBufferedFrames
		}
	}
	if opts.ClientID == "" {
		opts.ClientID = "trawl"
	}
	if opts.CommitEvery == 0 {
		opts.CommitEvery = time.Second
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.Registry == nil {
		opts.Registry = metrics.GetDefaultSet()
	}
	s := &Sink{
		opts:      opts,
		delivered: delivered,
		rejected:  rejected,
		logf:      logf,
		hdrs:      make(map[event.Kind][]kgo.RecordHeader),
		keys:      make(map[string][]byte),
		progress:  make(chan struct{}, 1),
		atEnd:     make(chan struct{}),
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(opts.Seeds...),
		kgo.ClientID(opts.ClientID),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence needs acks=all and is franz-go's default
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(opts.Linger),
		kgo.ProducerBatchMaxBytes(opts.BatchMaxBytes),
		kgo.MaxBufferedRecords(opts.MaxBufferedRecords),
		kgo.AllowAutoTopicCreation(),
		// A topic that is missing (auto-creation off, or a cluster still
		// starting) must not fail records: they would be lost after the
		// spool has accepted them. The sink waits instead, and its lag
		// metrics show it.
		kgo.UnknownTopicRetries(-1),
		// A topic the first record auto-creates has no leader for a moment;
		// franz-go then waits MetadataMinAge (5s by default) before it asks
		// again, which held the first frames of a new topic for seconds.
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	if opts.TLS != nil {
		kopts = append(kopts, kgo.DialTLSConfig(opts.TLS))
	}
	if opts.SASL != nil {
		kopts = append(kopts, kgo.SASL(opts.SASL))
	}
	s.kopts = kopts
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("create Kafka client: %w", err)
	}
	s.cl = cl
	if s.dec, err = consumer.NewDecoder(); err != nil {
		cl.Close()
		return nil, err
	}
	// Kafka delivery must not lose what the spool accepted: the spool
	// keeps every frame until the brokers acknowledged it and, when that
	// fills it, refuses new frames so the inputs' backpressure applies.
	opts.Spool.Hold("sink-" + opts.Name)
	if s.r, err = opts.Spool.Reader("sink-" + opts.Name); err != nil {
		cl.Close()
		return nil, fmt.Errorf("cannot open spool cursor: %w", err)
	}
	s.acked = s.r.Position()
	name := opts.Name
	opts.Registry.GetOrCreateGauge(fmt.Sprintf(`trawl_sink_lag_events{sink=%q}`, name), func() float64 {
		return float64(s.inflightEvents.Load())
	})
	opts.Registry.GetOrCreateGauge(fmt.Sprintf(`trawl_sink_lag_seconds{sink=%q}`, name), func() float64 {
		c := s.oldestCreated.Load()
		if c == 0 {
			return 0
		}
		return max(0, float64(time.Now().UnixNano()-c)/1e9)
	})
	opts.Registry.GetOrCreateGauge(fmt.Sprintf(`trawl_sink_lag_bytes{sink=%q}`, name), func() float64 {
		return float64(s.lagBytes.Load())
	})
	return s, nil
}

// Name returns the sink's name.
func (s *Sink) Name() string { return s.opts.Name }

// StopAtEnd makes Run return once everything durable in the spool at that
// moment has been acknowledged by the brokers, or StopTimeout has passed.
func (s *Sink) StopAtEnd() { s.stopOnce.Do(func() { close(s.atEnd) }) }

// Run produces events until ctx ends or, after StopAtEnd, the spool has no
// more durable data and every record is acknowledged (or StopTimeout has
// passed).
func (s *Sink) Run(ctx context.Context) error {
	defer s.close()
	readCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.atEnd:
		case <-readCtx.Done():
			return
		}
		t := time.NewTimer(s.opts.StopTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			// Unblocks a Produce waiting for buffer space and the drain.
			cancel()
		case <-readCtx.Done():
		}
	}()
	lastCommit := time.Now()
	backoff := time.Second
	for {
		if e := s.failed.Load(); e != nil {
			if err := s.restart(readCtx, *e, backoff); err != nil {
				if readCtx.Err() != nil {
					return nil
				}
				return err
			}
			backoff = min(2*backoff, 30*time.Second)
		}
		if time.Since(lastCommit) >= s.opts.CommitEvery {
			if err := s.commit(); err != nil {
				return err
			}
			lastCommit = time.Now()
		}
		rec, end, err := s.r.Next()
		switch {
		case err == nil:
			if s.opts.Encoding == EncodingFrame {
				err = s.produceFrameRecord(readCtx, rec, end)
			} else {
				err = s.produceFrame(readCtx, rec, end)
			}
			if err != nil {
				return s.finish(nil) // stopped while waiting for buffer space
			}
		case errors.Is(err, disk.ErrNoData):
			s.updateLag()
			select {
			case <-s.atEnd:
				return s.finish(s.drain(readCtx))
			default:
			}
			if err := s.commit(); err != nil {
				return err
			}
			lastCommit = time.Now()
			if err := s.waitData(readCtx); err != nil {
				if readCtx.Err() != nil {
					return s.finish(nil)
				}
				return s.finish(err)
			}
		default:
			return s.finish(fmt.Errorf("read spool: %w", err))
		}
	}
}

// waitData waits for new durable data in the spool, waking up at least
// every CommitEvery to commit acknowledgements that arrived meanwhile, and
// at StopAtEnd.
func (s *Sink) waitData(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, s.opts.CommitEvery)
	defer cancel()
	go func() {
		select {
		case <-s.atEnd:
			cancel()
		case <-wctx.Done():
		}
	}()
	err := s.r.Wait(wctx)
	if err != nil && ctx.Err() == nil {
		return nil // the timeout or StopAtEnd: the caller loops
	}
	return err
}

// drain waits until every in-flight record is acknowledged or ctx ends.
func (s *Sink) drain(ctx context.Context) error {
	for {
		s.mu.Lock()
		n := len(s.inflight)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-s.progress:
		case <-ctx.Done():
			s.logf("sink %s: stopping with %d frames not acknowledged by Kafka; they stay in the spool for the next start", s.opts.Name, n)
			return nil
		}
	}
}

// finish commits what was acknowledged and returns err.
func (s *Sink) finish(err error) error {
	if cerr := s.commit(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// commit persists the cursor at the end of the acknowledged prefix.
func (s *Sink) commit() error {
	s.mu.Lock()
	p, changed := s.acked, s.ackedNew
	s.ackedNew = false
	s.mu.Unlock()
	s.updateLag()
	if !changed {
		return nil
	}
	if err := s.r.Commit(p); err != nil {
		return fmt.Errorf("commit Kafka sink cursor: %w", err)
	}
	return nil
}

func (s *Sink) updateLag() {
	s.mu.Lock()
	acked := s.acked
	s.mu.Unlock()
	s.lagBytes.Store(int64(s.opts.Spool.Durable() - acked))
}

// produceFrame hands every event of one frame to the client. It blocks
// while the client's buffer is full.
func (s *Sink) produceFrame(ctx context.Context, rec []byte, end disk.Pos) error {
	pf := &pendingFrame{end: end}
	// Encode every event into one slab first; records point into it.
	type span struct{ key, val [2]int }
	var spans []span
	var kinds []event.Kind
	h, err := s.dec.Frame(rec, func(ev *event.Event) error {
		var sp span
		sp.key[0] = len(pf.slab)
		pf.slab = consumer.AppendKey(pf.slab, ev)
		sp.key[1] = len(pf.slab)
		sp.val[0] = len(pf.slab)
		pf.slab = s.appendValue(pf.slab, ev)
		sp.val[1] = len(pf.slab)
		spans = append(spans, sp)
		kinds = append(kinds, ev.Kind)
		return nil
	})
	if err != nil {
		s.logf("sink %s: skipping a bad frame at spool position %d: %v", s.opts.Name, end, err)
		if len(spans) == 0 {
			// Nothing to wait for: treat the frame as acknowledged so the
			// cursor can pass it, in order behind earlier frames.
			s.enqueue(pf)
			s.frameDone(pf)
			return nil
		}
	}
	pf.created = h.Created
	pf.events = len(spans)
	pf.remaining.Store(int64(len(spans)))
	pf.recs = make([]kgo.Record, len(spans))
	for i, sp := range spans {
		r := &pf.recs[i]
		r.Topic = s.topic(kinds[i])
		if sp.key[1] > sp.key[0] {
			r.Key = pf.slab[sp.key[0]:sp.key[1]:sp.key[1]]
		}
		r.Value = pf.slab[sp.val[0]:sp.val[1]:sp.val[1]]
		r.Headers = s.headers(kinds[i])
	}
	s.enqueue(pf)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			if errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return // not delivered; the frame stays unacknowledged and is produced again next start
			}
			if !rejectedForGood(err) {
				// Authentication, authorization or anything else the
				// client gave up on: the record is not delivered and must
				// not be skipped. Run restarts the client and produces
				// again from the last acknowledged frame.
				s.failed.CompareAndSwap(nil, &err)
				return
			}
			s.rejected.Inc()
			s.logf("sink %s: Kafka refused a record for topic %s for good (event skipped): %v", s.opts.Name, r.Topic, err)
		} else {
			s.delivered.Inc()
		}
		if pf.remaining.Add(-1) == 0 {
			s.frameDone(pf)
		}
	}
	for i := range pf.recs {
		s.cl.Produce(ctx, &pf.recs[i], promise)
	}
	return ctx.Err()
}

// produceFrameRecord hands one frame to the client as one record, its bytes
// exactly as the spool holds them. It blocks while the client's buffer is
// full. The brokers acknowledge or refuse the frame as a whole, so the
// delivered and rejected counters move by its event count at once.
func (s *Sink) produceFrameRecord(ctx context.Context, rec []byte, end disk.Pos) error {
	pf := &pendingFrame{end: end}
	h, err := s.frameRecord(&pf.rec, rec)
	if err != nil || h.Count == 0 {
		if err != nil {
			s.logf("sink %s: skipping a bad frame at spool position %d: %v", s.opts.Name, end, err)
		}
		// Nothing to deliver: the frame is done, in order behind earlier
		// frames, so the cursor can pass it.
		s.enqueue(pf)
		s.frameDone(pf)
		return nil
	}
	pf.created = h.Created
	pf.events = int(h.Count)
	s.enqueue(pf)
	s.cl.Produce(ctx, &pf.rec, func(r *kgo.Record, err error) {
		// franz-go is done with the record once it calls its promise.
		s.values.put(r.Value)
		r.Value = nil
		if err != nil {
			if errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return // not delivered; the frame stays unacknowledged and is produced again next start
			}
			if !rejectedForGood(err) {
				s.failed.CompareAndSwap(nil, &err) // as in produceFrame: Run restarts the client
				return
			}
			s.rejected.Add(pf.events)
			s.logf("sink %s: Kafka refused the record of a frame of %d events for topic %s for good (events skipped): %v", s.opts.Name, pf.events, r.Topic, err)
		} else {
			s.delivered.Add(pf.events)
		}
		s.frameDone(pf)
	})
	return ctx.Err()
}

// frameRecord checks the frame in rec (exactly one, CRC included) and fills
// r with it: a copy of the bytes from the value pool, the input's key, the
// kind's topic and headers. It does not allocate once the pool and the
// key and header caches have warmed up.
func (s *Sink) frameRecord(r *kgo.Record, rec []byte) (frame.Header, error) {
	h, _, n, err := frame.Parse(rec)
	if err != nil {
		return h, err
	}
	if n != len(rec) {
		return h, fmt.Errorf("spool record of %d bytes holds a frame of %d: %w", len(rec), n, frame.ErrCorrupt)
	}
	v := s.values.get(len(rec))
	copy(v, rec)
	r.Value = v
	r.Key = s.inputKey(h.Input)
	r.Topic = s.topic(h.Kind)
	r.Headers = s.headers(h.Kind)
	return h, nil
}

// inputKey returns the shared record key of an input name.
func (s *Sink) inputKey(input []byte) []byte {
	if k, ok := s.keys[string(input)]; ok {
		return k
	}
	if len(input) == 0 {
		return nil
	}
	k := append([]byte(nil), input...)
	s.keys[string(k)] = k
	return k
}

// defaultMaxBufferedFrames is MaxBufferedRecords for EncodingFrame: about a
// second of frames at a million events/s, yet at most 128 batches of
// memory.
const defaultMaxBufferedFrames = 128

// valuePool recycles the buffers that hold EncodingFrame record values, so
// that copying a frame out of the spool reader's buffer does not allocate
// in steady state. A buffer is in use from Produce until franz-go calls
// the record's promise. It is safe for concurrent use: the produce loop
// gets, promises put.
type valuePool struct {
	mu   sync.Mutex
	free [][]byte
}

const (
	// maxPooledValues bounds the idle buffers kept.
	maxPooledValues = 32
	// maxPooledValueCap drops buffers of unusually large frames rather
	// than keep them idle.
	maxPooledValueCap = 4 << 20
	// valueRound is what a new buffer's capacity is rounded up to, so
	// that frames a little larger than the last still fit.
	valueRound = 64 << 10
)

// get returns a buffer of length n.
func (p *valuePool) get(n int) []byte {
	var b []byte
	p.mu.Lock()
	if k := len(p.free); k > 0 {
		b = p.free[k-1]
		p.free[k-1] = nil
		p.free = p.free[:k-1]
	}
	p.mu.Unlock()
	if cap(b) < n {
		b = make([]byte, n, (n+valueRound-1)/valueRound*valueRound)
	}
	return b[:n]
}

// put returns b to the pool; the caller must not use it afterwards.
func (p *valuePool) put(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledValueCap {
		return
	}
	p.mu.Lock()
	if len(p.free) < maxPooledValues {
		p.free = append(p.free, b)
	}
	p.mu.Unlock()
}

// rejectedForGood reports whether err means the broker will never accept
// this record as it is (too large, invalid), so that retrying cannot help
// and the event is counted and skipped rather than stalling the sink.
func rejectedForGood(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage, kerr.InvalidTimestamp, kerr.InvalidTopicException} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// restart replaces a client whose delivery failed: it commits what was
// acknowledged, drops every frame in flight (their records are produced
// again, so delivery stays at-least-once), waits backoff, and reopens the
// client and the spool cursor at the acknowledged position.
func (s *Sink) restart(ctx context.Context, cause error, backoff time.Duration) error {
	s.logf("sink %s: delivery failed (%v); retrying from the last acknowledged frame in %v", s.opts.Name, cause, backoff)
	if err := s.commit(); err != nil {
		return err
	}
	s.mu.Lock()
	s.gen.Add(1)
	clear(s.inflight)
	s.inflight = s.inflight[:0]
	s.inflightEvents.Store(0)
	s.oldestCreated.Store(0)
	s.mu.Unlock()
	s.cl.Close()
	s.r.Close()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(backoff):
	}
	cl, err := kgo.NewClient(s.kopts...)
	if err != nil {
		return fmt.Errorf("recreate Kafka client: %w", err)
	}
	s.cl = cl
	if s.r, err = s.opts.Spool.Reader("sink-" + s.opts.Name); err != nil {
		return fmt.Errorf("cannot reopen spool cursor: %w", err)
	}
	s.failed.Store(nil)
	return nil
}

func (s *Sink) enqueue(pf *pendingFrame) {
	s.mu.Lock()
	pf.gen = s.gen.Load()
	if len(s.inflight) == 0 {
		s.oldestCreated.Store(max(pf.created, 1))
	}
	s.inflight = append(s.inflight, pf)
	s.mu.Unlock()
	s.inflightEvents.Add(int64(pf.events))
}

// frameDone marks pf acknowledged and advances the acknowledged prefix.
func (s *Sink) frameDone(pf *pendingFrame) {
	pf.done.Store(true)
	s.mu.Lock()
	if pf.gen != s.gen.Load() {
		s.mu.Unlock()
		return // produced by a client that was replaced
	}
	i := 0
	for ; i < len(s.inflight) && s.inflight[i].done.Load(); i++ {
		s.acked = s.inflight[i].end
		s.ackedNew = true
		s.inflightEvents.Add(-int64(s.inflight[i].events))
		s.inflight[i] = nil
	}
	if i > 0 {
		s.inflight = append(s.inflight[:0], s.inflight[i:]...)
		if len(s.inflight) > 0 {
			s.oldestCreated.Store(max(s.inflight[0].created, 1))
		} else {
			s.oldestCreated.Store(0)
		}
	}
	s.mu.Unlock()
	select {
	case s.progress <- struct{}{}:
	default:
	}
}

func (s *Sink) topic(k event.Kind) string {
	if t, ok := s.opts.Topics[k]; ok {
		return t
	}
	return DefaultTopic(k)
}

// headers returns the shared, read-only header slice of kind k.
func (s *Sink) headers(k event.Kind) []kgo.RecordHeader {
	if h, ok := s.hdrs[k]; ok {
		return h
	}
	enc, ver := consumer.EncodingECSJSON, "1"
	switch s.opts.Encoding {
	case EncodingProtobuf:
		enc, ver = consumer.EncodingTrawlBinary, binaryVersion
		if k == event.KindFlow {
			enc, ver = consumer.EncodingFlowMessage, "2" // goflow2's v2 schema
		}
	case EncodingFrame:
		enc, ver = consumer.EncodingTrawlFrame, frameVersion
	}
	h := []kgo.RecordHeader{
		{Key: consumer.HeaderEncoding, Value: []byte(enc)},
		{Key: consumer.HeaderEncodingVersion, Value: []byte(ver)},
		{Key: consumer.HeaderKind, Value: []byte(k.String())},
	}
	s.hdrs[k] = h
	return h
}

func (s *Sink) appendValue(dst []byte, ev *event.Event) []byte {
	if s.opts.Encoding == EncodingProtobuf {
		if ev.Kind == event.KindFlow {
			return event.AppendFlowProto(dst, ev)
		}
		return event.AppendBinary(dst, ev)
	}
	return event.AppendJSON(dst, ev)
}

func (s *Sink) close() {
	s.cl.Close() // fails what is still buffered with ErrClientClosed: not acknowledged, so not committed
	s.r.Close()
}
