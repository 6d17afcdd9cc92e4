package consumer

import (
	"context"

	"github.com/trawlsec/trawl/event"
)

// Message is one event as ECS JSON, with where it came from. A Message and
// the bytes it points to are valid until the next Poll of the [Source] that
// returned it; copy what must live longer.
type Message struct {
	// Topic is the Kafka topic; "" for the spool.
	Topic string
	// Partition is the Kafka partition; 0 for the spool.
	Partition int32
	// Offset is the Kafka offset; the events of a trawl-frame record all
	// share the record's. For the spool it is the spool position at the
	// end of the frame holding the event, which all events of one frame
	// share.
	Offset int64
	// Key is the source whose order matters (the Kafka record key of the
	// per-event encodings: a flow's exporter, a syslog host name, else the
	// sender address; nil for local sources such as audit and eBPF). Events
	// with one key keep their order, in Kafka because they share a
	// partition (trawl-frame records are keyed by input instead, which
	// keeps every event of an input in order).
	Key []byte
	// Kind is the event's kind (KindUnknown for a record with no trawl.kind
	// header on a topic not named trawl.<kind>).
	Kind event.Kind
	// JSON is the event as one ECS JSON object, without a trailing newline
	// and without any newline inside.
	JSON []byte
}

// Source is what trawl collected, read as a stream of messages with
// at-least-once delivery: a message is delivered again (after a restart or,
// for Kafka, a rebalance) until a Commit that covers it succeeded. Read it
// from one goroutine; only Stats may be called concurrently.
//
// A consumer group names a cursor. Readers in the same group share the
// stream (round-robin: in Kafka each partition goes to one member); every
// group gets the whole stream (fan-out). See docs/consumers.md.
type Source interface {
	// Poll blocks until at least one message is available or ctx ends
	// (returning ctx's error), and returns at most max messages (max <= 0
	// means the source's default batch size). Calling Poll again ends the
	// validity of the previous batch; it does not commit it. A Kafka source
	// lets its group rebalance only inside Poll, so a Commit made before
	// the next Poll covers only partitions this member still owns.
	Poll(ctx context.Context, max int) ([]Message, error)
	// Commit marks every message Poll returned so far as processed, so a
	// reader of the same group that starts later resumes after them. Kafka:
	// commits the group's offsets; spool: persists the group's cursor, at
	// frame granularity (see [SpoolSource.Commit]).
	Commit(ctx context.Context) error
	// Stats returns the source's counters. It is safe for concurrent use.
	Stats() Stats
	// Close releases the source without committing.
	Close() error
}

// Stats counts what a [Source] did since it was opened.
type Stats struct {
	// Messages is the number of messages Poll returned.
	Messages uint64
	// Skipped counts what could not be decoded and was skipped: Kafka
	// records with an unknown encoding or a malformed value, spool frames
	// that are corrupt (the events of a frame before the damage are
	// delivered) and spool segments skipped after corruption.
	Skipped uint64
	// Commits counts successful commits.
	Commits uint64
	// Revoked counts partitions rebalances took from this Kafka group
	// member; what it polled from them but had not committed is delivered
	// again to their new owner.
	Revoked uint64
	// Lost counts partitions this Kafka group member lost on a group error
	// (for example after missing its session timeout); as with Revoked,
	// their uncommitted messages are delivered again.
	Lost uint64
}

// DefaultTopic returns the Kafka topic trawl's Kafka sink writes events of
// kind k to unless configured otherwise: "trawl.<kind>".
func DefaultTopic(k event.Kind) string { return "trawl." + k.String() }

// DefaultTopics returns the default topic of every event kind, in kind
// order: trawl.flow, trawl.syslog, trawl.audit, trawl.process,
// trawl.network, trawl.app.
func DefaultTopics() []string {
	var ts []string
	for k := event.Kind(1); k.String() != "unknown"; k++ {
		ts = append(ts, DefaultTopic(k))
	}
	return ts
}

// AppendKey appends the Kafka record key of ev, the source whose order
// matters: flows by exporter, syslog by host name (else sender address),
// other kinds by sender address, nothing for local sources. The Kafka sink
// keys records with it; the spool source gives the same keys.
func AppendKey(dst []byte, ev *event.Event) []byte {
	switch ev.Kind {
	case event.KindFlow:
		if a := ev.Flow.SamplerAddress; a.IsValid() {
			return a.AppendTo(dst)
		}
	case event.KindSyslog:
		if len(ev.Syslog.Hostname) > 0 {
			return append(dst, ev.Syslog.Hostname...)
		}
	}
	if a := ev.Source.Addr(); a.IsValid() {
		return a.AppendTo(dst)
	}
	return dst
}
