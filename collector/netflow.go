package collector

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/collector/udp"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/flow"
	"github.com/trawlsec/trawl/ledger"
)

// NetflowOptions configures a flow input: NetFlow v5/v9/IPFIX, or sFlow v5
// when SFlow is set (sFlow has its own port, 6343).
type NetflowOptions struct {
	Name       string
	Listen     string
	Sockets    int
	ReadBuffer int
	// GRO turns UDP generic receive offload on (udp.Options.GRO), and
	// Drops counts the kernel's drops exactly with it (udp.Options.Drops).
	GRO   bool
	Drops func(port uint16) (udp.DropCounter, error)
	SFlow bool
}

// NetflowInput receives NetFlow v5, v9 and IPFIX over UDP (the version is
// detected per packet) and turns every flow record into an event.
//
// The UDP sockets never wait for the pipeline: a socket goroutine that is
// slow only lets the kernel queue fill, and what the kernel then drops is
// counted as upstream loss (socket_overflow), as is every gap in an
// exporter's sequence numbers (exporter_sequence_gap).
type NetflowInput struct {
	opts  NetflowOptions
	ln    *udp.Listener
	pipe  *pipeline
	led   *ledger.Input
	tmpl  *flow.Templates
	seq   *flow.SeqTracker
	logf  func(string, ...any)
	state chan *netflowWorker // one per socket goroutine, handed out per batch

	overflow   *metrics.Counter
	seqLost    *metrics.Counter
	noTemplate *metrics.Counter
	malformed  map[error]*metrics.Counter
	otherErr   *metrics.Counter
	packets    *metrics.Counter

	set        *metrics.Set
	exporterMu sync.Mutex
	byExporter map[exporterReason]*metrics.Counter
}

// exporterReason keys the per-exporter malformed-packet counters.
type exporterReason struct {
	addr   netip.Addr
	reason string
}

// maxExporterSeries bounds the per-exporter error series, so a flood of
// spoofed sources cannot grow /metrics without limit; beyond it errors
// count under exporter="other".
const maxExporterSeries = 1024

// netflowWorker is the decoding state of one socket goroutine.
type netflowWorker struct {
	dec  *flow.Decoder
	pr   *Producer
	hard context.Context
	now  int64
	emit func(*event.Event) // created once: decoding must not allocate
}

func newNetflowInput(opts NetflowOptions, pipe *pipeline, led *ledger.Input, tmpl *flow.Templates, set *metrics.Set, logf func(string, ...any)) (*NetflowInput, error) {
	ln, err := udp.Listen(udp.Options{Addr: opts.Listen, Sockets: opts.Sockets, ReadBuffer: opts.ReadBuffer, GRO: opts.GRO, Drops: opts.Drops, Logf: logf})
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", opts.Name, err)
	}
	in := &NetflowInput{
		opts:       opts,
		ln:         ln,
		pipe:       pipe,
		led:        led,
		tmpl:       tmpl,
		seq:        flow.NewSeqTracker(),
		logf:       logf,
		overflow:   led.UpstreamLost("socket_overflow"),
		seqLost:    led.UpstreamLost("exporter_sequence_gap"),
		noTemplate: led.Errors("no_template"),
		otherErr:   led.Errors("malformed"),
		packets:    set.NewCounter(fmt.Sprintf(`trawl_flow_packets_total{input=%q}`, opts.Name)),
		set:        set,
		byExporter: map[exporterReason]*metrics.Counter{},
		malformed: map[error]*metrics.Counter{
			flow.ErrTruncated:  led.Errors("truncated"),
			flow.ErrBadVersion: led.Errors("bad_version"),
			flow.ErrBadLength:  led.Errors("bad_length"),
		},
	}
	udpGauges(set, opts.Name, ln)
	st := ln.Stats()
	in.state = make(chan *netflowWorker, st.Sockets)
	for i := 0; i < st.Sockets; i++ {
		w := &netflowWorker{dec: flow.NewDecoder(tmpl), pr: pipe.producer()}
		// Flows go to the ring in batches (Producer.Add); handle and
		// retryPending flush each socket's batch when they are done.
		w.emit = func(ev *event.Event) {
			ev.RecvTime = w.now
			w.pr.Add(w.hard, ev, 0)
		}
		in.state <- w
	}
	return in, nil
}

// Addr returns the bound UDP address.
func (in *NetflowInput) Addr() netip.AddrPort { return in.ln.Addr() }

// Close releases the sockets; Run calls it when it returns.
func (in *NetflowInput) Close() error { return in.ln.Close() }

// Run receives until ctx ends. hard ends a producer blocked on a full ring.
func (in *NetflowInput) Run(ctx, hard context.Context) error {
	for i := 0; i < cap(in.state); i++ {
		w := <-in.state
		w.hard = hard
		in.state <- w
	}
	// Each second also decodes what waits for a template another socket
	// has learned.
	err := serveUDP(ctx, in.ln, in.handle, in.overflow, in.retryPending)
	// Data held for a template that came on another socket is decoded
	// before the input stops, not left behind.
	in.retryPending()
	return err
}

// retryPending gives every socket's decoder a chance to decode data it holds
// for a template another socket has learned since, so it does not wait for
// that socket's next packet. Each worker is taken from the pool, so this
// never runs beside the socket goroutine using it.
func (in *NetflowInput) retryPending() {
	for i := 0; i < cap(in.state); i++ {
		w := <-in.state
		w.now = time.Now().UnixNano()
		w.dec.RetryPending(w.emit)
		w.pr.Flush(w.hard)
		in.state <- w
	}
}

func (in *NetflowInput) handle(batch []udp.Datagram) {
	w := <-in.state
	defer func() {
		w.pr.Flush(w.hard)
		in.state <- w
	}()
	w.now = time.Now().UnixNano()
	in.packets.Add(len(batch))
	for i := range batch {
		d := &batch[i]
		in.led.ReceivedBytes.Add(len(d.Data))
		if in.opts.SFlow {
			info, err := w.dec.DecodeSFlow(d.From, d.Data, w.emit)
			if err != nil {
				in.countError(d.From.Addr(), err)
				continue
			}
			if r := in.seq.TrackSFlow(&info); r.LostFlows > 0 {
				in.seqLost.Add(int(r.LostFlows))
			}
			continue
		}
		info, err := w.dec.Decode(d.From, d.Data, w.emit)
		if err != nil {
			in.countError(d.From.Addr(), err)
		}
		if info.NoTemplateSets > info.PendingHeld {
			in.noTemplate.Add(info.NoTemplateSets - info.PendingHeld)
		}
		if info.PendingDropped > 0 {
			in.noTemplate.Add(info.PendingDropped)
		}
		if info.Version != 0 && (err == nil || errors.Is(err, flow.ErrTemplateNotFound)) {
			if r := in.seq.Track(d.From.Addr(), &info); r.LostFlows > 0 {
				in.seqLost.Add(int(r.LostFlows))
			}
		}
	}
}

// countError counts a malformed packet by reason, in the ledger and per
// exporter (trawl_flow_malformed_packets_total{input,exporter,reason}).
func (in *NetflowInput) countError(exporter netip.Addr, err error) {
	if errors.Is(err, flow.ErrTemplateNotFound) {
		return // counted from PacketInfo
	}
	reason := "malformed"
	c := in.otherErr
	for sentinel, sc := range in.malformed {
		if errors.Is(err, sentinel) {
			c = sc
			reason = reasonName(sentinel)
			break
		}
	}
	c.Inc()
	in.exporterCounter(exporter, reason).Inc()
}

func reasonName(sentinel error) string {
	switch sentinel {
	case flow.ErrTruncated:
		return "truncated"
	case flow.ErrBadVersion:
		return "bad_version"
	case flow.ErrBadLength:
		return "bad_length"
	}
	return "malformed"
}

func (in *NetflowInput) exporterCounter(exporter netip.Addr, reason string) *metrics.Counter {
	in.exporterMu.Lock()
	defer in.exporterMu.Unlock()
	k := exporterReason{exporter, reason}
	if c, ok := in.byExporter[k]; ok {
		return c
	}
	label := exporter.String()
	if len(in.byExporter) >= maxExporterSeries {
		k, label = exporterReason{reason: reason}, "other"
		if c, ok := in.byExporter[k]; ok {
			return c
		}
	}
	c := in.set.GetOrCreateCounter(fmt.Sprintf(`trawl_flow_malformed_packets_total{input=%q,exporter=%q,reason=%q}`, in.opts.Name, label, reason))
	in.byExporter[k] = c
	return c
}
