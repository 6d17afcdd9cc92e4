// Package ledger keeps trawl's loss ledger: for every input,
//
//	received = delivered + dropped{reason} + pending
//
// and, apart from that balance, what was lost before trawl could see it
// (kernel socket overflow, the audit lost counter, BPF ring-buffer drops,
// gaps in exporters' sequence numbers). The counters are Prometheus metrics
// in a caller-owned metrics.Set, so /metrics and /api/v1/ledger read the same
// numbers.
//
// Counters are created once when an input is wired; hot paths hold the
// *metrics.Counter and only call Inc/Add, which are single atomic adds.
package ledger

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Drop reasons used by the node. Inputs may add their own; keep them short,
// snake_case and stable because dashboards select on them.
const (
	// ReasonRingFull: the input's ring was full and its policy is drop_newest.
	ReasonRingFull = "ring_full"
	// ReasonRetention: spool retention deleted the event before every
	// registered reader had read it.
	ReasonRetention = "retention"
	// ReasonSpoolError: the spool refused the frame (disk full, I/O error).
	ReasonSpoolError = "spool_error"
	// ReasonTooLarge: the event could not be encoded within the size limit.
	ReasonTooLarge = "too_large"
)

// Error reasons for events that were kept but flagged, or for connections
// closed because of bad input.
const (
	ErrParse     = "parse_error"
	ErrTruncated = "truncated"
	ErrConnLimit = "connection_limit"
	ErrRead      = "read_error"
)

// Input is the ledger of one input. All methods are safe for concurrent use.
type Input struct {
	name, typ string
	set       *metrics.Set

	// Received counts events the input accepted from the wire, before any
	// policy decision.
	Received *metrics.Counter
	// ReceivedBytes counts payload bytes of received events.
	ReceivedBytes *metrics.Counter
	// Delivered counts events durable in the spool.
	Delivered *metrics.Counter

	mu       sync.Mutex
	dropped  map[string]*metrics.Counter
	errors   map[string]*metrics.Counter
	upstream map[string]*metrics.Counter
}

// Name returns the input's configured name.
func (in *Input) Name() string { return in.name }

// Type returns the input's type (app, netflow, syslog, ...).
func (in *Input) Type() string { return in.typ }

// Dropped returns the counter of events dropped for reason, creating it on
// first use. Call it while wiring, not per event: it takes a lock.
func (in *Input) Dropped(reason string) *metrics.Counter {
	return in.counter(in.dropped, reason, "trawl_input_dropped_events_total", "reason")
}

// Errors returns the counter of problems for reason that did not lose an
// event (kept with a flag) or that closed a connection.
func (in *Input) Errors(reason string) *metrics.Counter {
	return in.counter(in.errors, reason, "trawl_input_errors_total", "reason")
}

// UpstreamLost returns the counter of events lost before trawl saw them, for
// cause (socket_overflow, kernel_audit_lost, bpf_ringbuf_full,
// exporter_sequence_gap).
func (in *Input) UpstreamLost(cause string) *metrics.Counter {
	return in.counter(in.upstream, cause, "trawl_input_upstream_lost_total", "cause")
}

func (in *Input) counter(m map[string]*metrics.Counter, key, metric, label string) *metrics.Counter {
	in.mu.Lock()
	defer in.mu.Unlock()
	if c, ok := m[key]; ok {
		return c
	}
	c := in.set.GetOrCreateCounter(fmt.Sprintf(`%s{input=%q,%s=%q}`, metric, in.name, label, key))
	m[key] = c
	return c
}

// Ledger is the node-wide ledger: inputs and sinks.
type Ledger struct {
	set     *metrics.Set
	started time.Time

	mu     sync.Mutex
	inputs []*Input
	sinks  map[string]*metrics.Counter
}

// New returns a ledger whose counters live in set.
func New(set *metrics.Set) *Ledger {
	return &Ledger{set: set, started: time.Now(), sinks: map[string]*metrics.Counter{}}
}

// Input registers an input and returns its ledger. Names must be unique;
// registering a name twice returns the existing entry.
func (l *Ledger) Input(name, typ string) *Input {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, in := range l.inputs {
		if in.name == name {
			return in
		}
	}
	in := &Input{
		name:          name,
		typ:           typ,
		set:           l.set,
		Received:      l.set.GetOrCreateCounter(fmt.Sprintf(`trawl_input_received_events_total{input=%q}`, name)),
		ReceivedBytes: l.set.GetOrCreateCounter(fmt.Sprintf(`trawl_input_received_bytes_total{input=%q}`, name)),
		Delivered:     l.set.GetOrCreateCounter(fmt.Sprintf(`trawl_input_delivered_events_total{input=%q}`, name)),
		dropped:       map[string]*metrics.Counter{},
		errors:        map[string]*metrics.Counter{},
		upstream:      map[string]*metrics.Counter{},
	}
	// The drop reasons every input can hit are created up front so that a
	// zero shows in /metrics before the first loss.
	in.Dropped(ReasonRingFull)
	in.Dropped(ReasonRetention)
	in.Dropped(ReasonSpoolError)
	l.inputs = append(l.inputs, in)
	return in
}

// Sink returns the delivered-events counter of a sink
// (trawl_sink_delivered_events_total{sink}).
func (l *Ledger) Sink(name string) *metrics.Counter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.sinks[name]; ok {
		return c
	}
	c := l.set.GetOrCreateCounter(fmt.Sprintf(`trawl_sink_delivered_events_total{sink=%q}`, name))
	l.sinks[name] = c
	return c
}

// InputSnapshot is one input's line of the ledger.
type InputSnapshot struct {
	Name          string            `json:"name"`
	Type          string            `json:"type"`
	Received      uint64            `json:"received"`
	ReceivedBytes uint64            `json:"received_bytes"`
	Delivered     uint64            `json:"delivered"`
	Dropped       map[string]uint64 `json:"dropped"`
	DroppedTotal  uint64            `json:"dropped_total"`
	Pending       uint64            `json:"pending"`
	Errors        map[string]uint64 `json:"errors"`
	UpstreamLost  map[string]uint64 `json:"upstream_lost"`
	UpstreamTotal uint64            `json:"upstream_lost_total"`
}

// Snapshot is the whole ledger at one moment, as served by /api/v1/ledger.
type Snapshot struct {
	Time          time.Time         `json:"time"`
	UptimeSeconds float64           `json:"uptime_seconds"`
	Inputs        []InputSnapshot   `json:"inputs"`
	Sinks         map[string]uint64 `json:"sinks"`
}

// Snapshot reads every counter. Delivered and dropped are read before
// received, so pending is never negative even while events flow.
func (l *Ledger) Snapshot() Snapshot {
	l.mu.Lock()
	inputs := append([]*Input(nil), l.inputs...)
	sinks := make(map[string]uint64, len(l.sinks))
	for k, c := range l.sinks {
		sinks[k] = c.Get()
	}
	l.mu.Unlock()

	now := time.Now()
	s := Snapshot{Time: now.UTC(), UptimeSeconds: now.Sub(l.started).Seconds(), Sinks: sinks}
	for _, in := range inputs {
		s.Inputs = append(s.Inputs, in.snapshot())
	}
	sort.Slice(s.Inputs, func(i, j int) bool { return s.Inputs[i].Name < s.Inputs[j].Name })
	return s
}

func (in *Input) snapshot() InputSnapshot {
	in.mu.Lock()
	defer in.mu.Unlock()
	is := InputSnapshot{
		Name:         in.name,
		Type:         in.typ,
		Delivered:    in.Delivered.Get(),
		Dropped:      make(map[string]uint64, len(in.dropped)),
		Errors:       make(map[string]uint64, len(in.errors)),
		UpstreamLost: make(map[string]uint64, len(in.upstream)),
	}
	for k, c := range in.dropped {
		v := c.Get()
		is.Dropped[k] = v
		is.DroppedTotal += v
	}
	for k, c := range in.errors {
		is.Errors[k] = c.Get()
	}
	for k, c := range in.upstream {
		v := c.Get()
		is.UpstreamLost[k] = v
		is.UpstreamTotal += v
	}
	is.Received = in.Received.Get()
	is.ReceivedBytes = in.ReceivedBytes.Get()
	if done := is.Delivered + is.DroppedTotal; is.Received > done {
		is.Pending = is.Received - done
	}
	return is
}
