package consumer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/trawlsec/trawl/event"
)

// KafkaOptions configures a [KafkaSource].
type KafkaOptions struct {
	// Brokers are the bootstrap brokers, "host:port". Required.
	Brokers []string
	// Topics to consume; default [DefaultTopics]. A topic that does not
	// exist yet is picked up once it does.
	Topics []string
	// Group is the Kafka consumer group. Required. Members of one group
	// share the topics' partitions; every group reads everything. A group
	// without committed offsets starts at the oldest retained record.
	Group string
	// TLS, if not nil, is used for every broker connection.
	TLS *tls.Config
	// SASL, if not nil, authenticates every connection.
	SASL sasl.Mechanism
	// ClientID is sent to the brokers (default "trawl-consumer").
	ClientID string
	// MaxPollRecords is Poll's batch bound when it is called with max <= 0
	// (default 10,000).
	MaxPollRecords int
	// Logf, if not nil, receives skipped records, fetch errors (throttled)
	// and rebalances. It must be safe for concurrent use.
	Logf func(format string, args ...any)
}

// KafkaSource reads the topics trawl's Kafka sink writes as a member of a
// Kafka consumer group, with manual commits: an offset is committed only by
// [KafkaSource.Commit], so processing is at-least-once. Rebalances happen
// only inside Poll (franz-go's BlockRebalanceOnPoll), so a member that
// commits after processing each batch does not see messages delivered twice
// across a rebalance; one that commits less often may: what it polled from
// a revoked partition and had not committed goes to the partition's new
// owner too. Create it with [NewKafkaSource].
//
// Records of every encoding the sink writes are read: one event per record
// (ECS JSON, trawl-binary, goflow2 FlowMessage), or a whole frame per record
// (trawl-frame), whose events become one message each, with the frame's
// per-frame fields, exactly as a [SpoolSource] delivers them.
type KafkaSource struct {
	opts KafkaOptions
	cl   *kgo.Client
	conv Converter
	dec  *Decoder // trawl-frame records; made on the first one

	// recs are the records the last fetch returned; recs[:ri] have been
	// converted into msgs, and recEnd[i] is the running count of messages
	// converted up to and including recs[i] since that fetch. returned
	// counts the messages Poll returned since the fetch; recs[:done] are
	// returned in full (or skipped), so Commit may pass them.
	recs     []*kgo.Record
	recEnd   []int
	ri       int
	done     int
	returned int
	total    int

	// msgs[:next] have been returned; msgs[next:] wait for the next Poll
	// (a frame record can hold more events than a Poll may return).
	msgs []Message
	next int
	buf  []byte

	messages, skipped, commits, revoked, lost atomic.Uint64

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int

	closeOnce sync.Once
}

// NewKafkaSource creates the client and joins the group (lazily: brokers
// are dialled on the first Poll).
func NewKafkaSource(opts KafkaOptions) (*KafkaSource, error) {
	if len(opts.Brokers) == 0 {
		return nil, errors.New("Kafka source needs at least one broker")
	}
	if opts.Group == "" {
		return nil, errors.New("Kafka source needs a consumer group")
	}
	if len(opts.Topics) == 0 {
		opts.Topics = DefaultTopics()
	}
	if opts.ClientID == "" {
		opts.ClientID = "trawl-consumer"
	}
	if opts.MaxPollRecords <= 0 {
		opts.MaxPollRecords = 10_000
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	s := &KafkaSource{opts: opts}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ClientID(opts.ClientID),
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(opts.Topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Rebalances wait until the next Poll, so Commit never commits
		// for partitions another member already reads.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if n := countPartitions(m); n > 0 {
				s.revoked.Add(uint64(n))
				s.opts.Logf("consumer group %s: partitions revoked (a rebalance, or leaving the group): %v", opts.Group, m)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if n := countPartitions(m); n > 0 {
				s.lost.Add(uint64(n))
				s.opts.Logf("consumer group %s: lost partitions %v; their uncommitted records will be read again", opts.Group, m)
			}
		}),
	}
	if opts.TLS != nil {
		kopts = append(kopts, kgo.DialTLSConfig(opts.TLS))
	}
	if opts.SASL != nil {
		kopts = append(kopts, kgo.SASL(opts.SASL))
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("create Kafka consumer: %w", err)
	}
	s.cl = cl
	return s, nil
}

func countPartitions(m map[string][]int32) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}

// Poll implements [Source]. Every record polled is either returned or, when
// it cannot be decoded, skipped, counted in Stats.Skipped and logged; a
// later Commit covers both. A trawl-frame record gives one message per
// event, all with the record's offset; when max cuts a frame the rest of
// its events come with the next Poll, before anything new is fetched.
func (s *KafkaSource) Poll(ctx context.Context, max int) ([]Message, error) {
	if max <= 0 {
		max = s.opts.MaxPollRecords
	}
	for {
		if s.next == len(s.msgs) {
			// The previous batch is done with; its bytes may be reused.
			clear(s.msgs)
			s.msgs, s.next, s.buf = s.msgs[:0], 0, s.buf[:0]
		}
		for len(s.msgs)-s.next < max && s.ri < len(s.recs) {
			n0 := len(s.msgs)
			s.add(s.recs[s.ri])
			s.total += len(s.msgs) - n0
			s.recEnd = append(s.recEnd, s.total)
			s.ri++
		}
		if s.next < len(s.msgs) {
			break
		}
		// Everything fetched is converted and returned (or skipped).
		s.advance()
		if err := s.fetch(ctx, max); err != nil {
			return nil, err
		}
	}
	from := s.next
	s.next = min(len(s.msgs), from+max)
	s.returned += s.next - from
	s.advance()
	s.messages.Add(uint64(s.next - from))
	return s.msgs[from:s.next], nil
}

// fetch polls the client for up to max records into recs, after letting a
// blocked rebalance go ahead. It returns nil with no records when the poll
// gave only retryable errors (after a short pause, so that a broker that
// keeps failing is not polled in a spin).
func (s *KafkaSource) fetch(ctx context.Context, max int) error {
	clear(s.recs)
	s.recs, s.recEnd = s.recs[:0], s.recEnd[:0]
	s.ri, s.done, s.returned, s.total = 0, 0, 0, 0
	// What earlier Polls returned is done with: a blocked rebalance may go
	// ahead now. Only here, when nothing fetched is left: while a frame is
	// half returned its partition must stay this member's, so that Commit
	// can still commit the frame's own offset for it.
	s.cl.AllowRebalance()
	fs := s.cl.PollRecords(ctx, max)
	if fs.IsClientClosed() {
		return fmt.Errorf("poll Kafka: %w", os.ErrClosed)
	}
	var fatal error
	fs.EachError(func(topic string, p int32, err error) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.TopicAuthorizationFailed),
			errors.Is(err, kerr.GroupAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
			fatal = fmt.Errorf("consume %s/%d: %w", topic, p, err)
		default:
			s.logThrottled("consumer group %s: fetching %s/%d: %v", s.opts.Group, topic, p, err)
		}
	})
	fs.EachRecord(s.keep)
	if len(s.recs) > 0 {
		return nil // records first; a fatal error comes back with the next fetch
	}
	if fatal != nil {
		return fatal
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

// keep appends a fetched record to recs.
func (s *KafkaSource) keep(r *kgo.Record) { s.recs = append(s.recs, r) }

// advance moves done past the records whose messages have all been
// returned (or that were skipped), in fetch order.
func (s *KafkaSource) advance() {
	for s.done < s.ri && s.recEnd[s.done] <= s.returned {
		s.done++
	}
}

// add converts one record into messages, or counts and logs it as skipped.
func (s *KafkaSource) add(r *kgo.Record) {
	enc, ver, _ := recordEncoding(r)
	if string(enc) == EncodingTrawlFrame {
		if err := s.addFrame(r, ver); err != nil {
			s.skipped.Add(1)
			s.logThrottled("consumer group %s: skipping record %s/%d@%d: %v", s.opts.Group, r.Topic, r.Partition, r.Offset, err)
		}
		return
	}
	start := len(s.buf)
	buf, kind, err := s.conv.AppendJSON(s.buf, r)
	if err != nil {
		s.skipped.Add(1)
		s.logThrottled("consumer group %s: skipping record %s/%d@%d: %v", s.opts.Group, r.Topic, r.Partition, r.Offset, err)
		return
	}
	s.buf = buf
	// Messages keep slices of the buffer as it was when they were written;
	// a later append that grows it leaves those bytes where they are.
	s.msgs = append(s.msgs, Message{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Key:       r.Key,
		Kind:      kind,
		JSON:      buf[start:len(buf):len(buf)],
	})
}

// addFrame appends a message per event of a trawl-frame record, keyed and
// rendered as a spool source does it. A record that is not one valid frame
// adds nothing, not even the events before the damage: a frame is
// delivered whole or not at all.
func (s *KafkaSource) addFrame(r *kgo.Record, ver []byte) error {
	if len(ver) > 0 && string(ver) != frameVersion {
		return fmt.Errorf("cannot read %s version %q: %w", EncodingTrawlFrame, ver, ErrUnknownEncoding)
	}
	if s.dec == nil {
		dec, err := NewDecoder()
		if err != nil {
			return err
		}
		s.dec = dec
	}
	m0, b0 := len(s.msgs), len(s.buf)
	_, err := s.dec.Frame(r.Value, func(ev *event.Event) error {
		var key, js []byte
		s.buf, key, js = appendKeyJSON(s.buf, ev)
		s.msgs = append(s.msgs, Message{
			Topic:     r.Topic,
			Partition: r.Partition,
			Offset:    r.Offset,
			Key:       key,
			Kind:      ev.Kind,
			JSON:      js,
		})
		return nil
	})
	if err != nil {
		clear(s.msgs[m0:])
		s.msgs, s.buf = s.msgs[:m0], s.buf[:b0]
		return fmt.Errorf("cannot decode %s record: %w", EncodingTrawlFrame, err)
	}
	return nil
}

// logThrottled logs at most one line per 10 s and says how many it held
// back.
func (s *KafkaSource) logThrottled(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	now := time.Now()
	if now.Sub(s.lastLog) < 10*time.Second {
		s.suppressed++
		return
	}
	if s.suppressed > 0 {
		format += fmt.Sprintf(" (and %d similar lines in the last 10 s)", s.suppressed)
	}
	s.lastLog, s.suppressed = now, 0
	s.opts.Logf(format, args...)
}

// Commit implements [Source]: it commits, synchronously, the offsets after
// every record Poll returned or skipped, on the partitions this member
// owns. A trawl-frame record counts as returned once all its events were:
// when max cut a frame, its events already returned are delivered again
// after a restart or a rebalance, as [SpoolSource.Commit] does.
func (s *KafkaSource) Commit(ctx context.Context) error {
	var err error
	if s.done == len(s.recs) {
		err = s.cl.CommitUncommittedOffsets(ctx)
	} else {
		err = s.commitPartial(ctx)
	}
	if err != nil {
		return fmt.Errorf("commit offsets of consumer group %s: %w", s.opts.Group, err)
	}
	s.commits.Add(1)
	return nil
}

// commitPartial commits while records of the last fetch are not yet
// returned in full: on the partitions of those records, the offset of the
// first of them (it is delivered again after a restart); elsewhere, as
// CommitUncommittedOffsets, the offset after everything polled.
func (s *KafkaSource) commitPartial(ctx context.Context) error {
	offs := s.cl.UncommittedOffsets()
	if offs == nil {
		offs = map[string]map[int32]kgo.EpochOffset{}
	}
	seen := map[string]map[int32]bool{}
	for _, r := range s.recs[s.done:] {
		if seen[r.Topic][r.Partition] {
			continue // a later record of a partition already held back
		}
		if seen[r.Topic] == nil {
			seen[r.Topic] = map[int32]bool{}
		}
		seen[r.Topic][r.Partition] = true
		if offs[r.Topic] == nil {
			offs[r.Topic] = map[int32]kgo.EpochOffset{}
		}
		offs[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
	}
	var cerr error
	s.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	return cerr
}

// Stats implements [Source].
func (s *KafkaSource) Stats() Stats {
	return Stats{
		Messages: s.messages.Load(),
		Skipped:  s.skipped.Load(),
		Commits:  s.commits.Load(),
		Revoked:  s.revoked.Load(),
		Lost:     s.lost.Load(),
	}
}

// Close leaves the group and closes the client without committing. Call it
// after Poll returned (cancel Poll's context to make it return).
func (s *KafkaSource) Close() error {
	s.closeOnce.Do(s.cl.CloseAllowingRebalance)
	return nil
}
