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
	"github.com/twmb/franz-go/pkg/sasl"
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
type KafkaSource struct {
	opts KafkaOptions
	cl   *kgo.Client
	conv Converter

	msgs []Message
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
// later Commit covers both.
func (s *KafkaSource) Poll(ctx context.Context, max int) ([]Message, error) {
	if max <= 0 {
		max = s.opts.MaxPollRecords
	}
	s.msgs = s.msgs[:0]
	s.buf = s.buf[:0]
	for {
		// What the previous Poll returned is done with: a blocked
		// rebalance may go ahead now.
		s.cl.AllowRebalance()
		fs := s.cl.PollRecords(ctx, max)
		if fs.IsClientClosed() {
			return nil, fmt.Errorf("poll Kafka: %w", os.ErrClosed)
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
		fs.EachRecord(s.add)
		if len(s.msgs) > 0 {
			s.messages.Add(uint64(len(s.msgs)))
			return s.msgs, nil
		}
		if fatal != nil {
			return nil, fatal
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if fs.NumRecords() == 0 {
			// Only errors: do not spin on a broker that keeps failing.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// add converts one record into a message, or counts and logs it as skipped.
func (s *KafkaSource) add(r *kgo.Record) {
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
// owns.
func (s *KafkaSource) Commit(ctx context.Context) error {
	if err := s.cl.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("commit offsets of consumer group %s: %w", s.opts.Group, err)
	}
	s.commits.Add(1)
	return nil
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
