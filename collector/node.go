// Package collector wires a trawl node: it opens the spool, starts the
// inputs with their rings and framers, the sinks that read the spool, and
// the HTTP listener, and stops them in an order that loses nothing accepted.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/bpf/proccache"
	"github.com/trawlsec/trawl/bpf/udpdrop"
	"github.com/trawlsec/trawl/config"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/flow"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/ledger"
	"github.com/trawlsec/trawl/sinks/disk"
)

// SpoolDir returns the spool's directory inside a data directory.
func SpoolDir(dataDir string) string { return filepath.Join(dataDir, "spool") }

// Node is a running trawl node.
type Node struct {
	cfg    *config.Config
	logger *log.Logger
	set    *metrics.Set
	ledger *ledger.Ledger
	spool  *disk.Spool

	pipes     []*pipeline
	inputs    []input
	apps      []*AppInput
	netflows  []*NetflowInput
	syslogs   map[string]syslogInput
	templates *flow.Templates
	sinks     []sink
	procs     *proccache.Cache // shared by the audit and ebpf inputs; see processes
	// udpDrops counts UDP drops exactly for the GRO sockets of every UDP
	// input; see udpGRO.
	udpDrops      *udpdrop.Counter
	udpDropsErr   error
	udpDropsTried bool
	http          *http.Server
	httpLn        net.Listener
}

// New opens the spool and binds every listener, so that configuration and
// port errors surface before Run. logger may be nil (standard error).
func New(cfg *config.Config, logger *log.Logger) (*Node, error) {
	if logger == nil {
		logger = log.New(os.Stderr, "trawl: ", log.LstdFlags)
	}
	n := &Node{cfg: cfg, logger: logger, set: metrics.NewSet()}
	n.ledger = ledger.New(n.set)
	ok := false
	defer func() {
		if !ok {
			n.closeAll()
		}
	}()

	observer := cfg.Node.Name
	if observer == "" {
		observer, _ = os.Hostname()
	}
	fsync, err := disk.ParseFsyncPolicy(cfg.Spool.Fsync)
	if err != nil {
		return nil, err
	}
	spoolDir := SpoolDir(cfg.Node.DataDir)
	inputNames := make([]string, 0, len(cfg.Inputs))
	for name, in := range cfg.Inputs {
		if in.IsEnabled() {
			inputNames = append(inputNames, name)
		}
	}
	sort.Strings(inputNames)
	seqs, err := lastSequences(spoolDir, inputNames, n.logf)
	if err != nil {
		return nil, fmt.Errorf("cannot read sequence numbers from the spool: %w", err)
	}

	// Input ledgers exist before the spool opens so retention can count
	// what it deletes unread.
	leds := map[string]*ledger.Input{}
	for _, name := range inputNames {
		leds[name] = n.ledger.Input(name, cfg.Inputs[name].Type)
	}
	expired := newExpiryCounter(n.ledger)

	n.spool, err = disk.Open(disk.Options{
		Dir:           spoolDir,
		SegmentSize:   int64(cfg.Spool.SegmentSize),
		Fsync:         fsync,
		FsyncInterval: cfg.Spool.FsyncInterval.D(),
		MaxBytes:      int64(cfg.Spool.MaxSize),
		MaxAge:        cfg.Spool.MaxAge.D(),
		OnExpire:      expired.count,
		Logf:          n.logf,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open spool: %w", err)
	}
	n.set.NewGauge("trawl_spool_bytes", func() float64 { return float64(n.spool.Stats().Bytes) })

	limits := frame.BatchLimits{
		MaxEvents:  cfg.Frames.MaxEvents,
		MaxBytes:   int(cfg.Frames.MaxBytes),
		MaxLatency: cfg.Frames.MaxLatency.D(),
	}
	spoolDelivered := n.ledger.Sink("spool")
	for _, name := range inputNames {
		in := cfg.Inputs[name]
		policy, err := ParsePolicy(in.Backpressure)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		level, err := frame.ParseLevel(in.Compression)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		pipe, err := newPipeline(pipelineConfig{
			name:      name,
			inputType: in.Type,
			kind:      kindOf(in.Type),
			observer:  observer,
			policy:    policy,
			ringSlots: in.RingSize,
			limits:    limits,
			level:     level,
			firstSeq:  seqs[name],
		}, n.spool, leds[name], spoolDelivered, n.logf)
		if err != nil {
			return nil, err
		}
		n.set.NewGauge(fmt.Sprintf(`trawl_ring_used_slots{input=%q}`, name), func() float64 { return float64(pipe.ring.Len()) })
		n.set.NewGauge(fmt.Sprintf(`trawl_ring_slots{input=%q}`, name), func() float64 { return float64(pipe.ring.Cap()) })
		n.pipes = append(n.pipes, pipe)
		switch in.Type {
		case config.InputApp:
			app, err := newAppInput(AppOptions{
				Name:           name,
				Listen:         in.Listen,
				MaxLineBytes:   int(in.MaxLineBytes),
				MaxConnections: in.MaxConnections,
				IdleTimeout:    in.IdleTimeout.D(),
				Grace:          cfg.Node.ShutdownGrace.D(),
			}, pipe, leds[name], n.set, n.logf)
			if err != nil {
				return nil, err
			}
			n.apps = append(n.apps, app)
			n.inputs = append(n.inputs, app)
		case config.InputNetflow, config.InputSFlow:
			if n.templates == nil {
				n.templates = flow.NewTemplates()
				if k, err := n.templates.LoadFile(n.templatesPath()); err != nil {
					n.logf("flow templates: cannot load %s, starting empty: %v", n.templatesPath(), err)
				} else if k > 0 {
					n.logf("flow templates: %d loaded from %s", k, n.templatesPath())
				}
			}
			gro, drops := n.udpGRO(name, in.GRO)
			nf, err := newNetflowInput(NetflowOptions{
				Name:       name,
				Listen:     in.Listen,
				Sockets:    in.Sockets,
				ReadBuffer: int(in.ReadBuffer),
				GRO:        gro,
				Drops:      drops,
				SFlow:      in.Type == config.InputSFlow,
			}, pipe, leds[name], n.templates, n.set, n.logf)
			if err != nil {
				return nil, err
			}
			n.netflows = append(n.netflows, nf)
			n.inputs = append(n.inputs, nf)
		case config.InputSyslog, config.InputRELP:
			opts, err := syslogOptionsFrom(name, in, cfg.Node.ShutdownGrace.D())
			if err != nil {
				return nil, err
			}
			if opts.Protocol == SyslogUDP {
				opts.GRO, opts.Drops = n.udpGRO(name, in.GRO)
			}
			si, err := newSyslogInput(opts, pipe, leds[name], n.set, n.logf)
			if err != nil {
				return nil, err
			}
			if n.syslogs == nil {
				n.syslogs = map[string]syslogInput{}
			}
			n.syslogs[name] = si
			n.inputs = append(n.inputs, si)
		case config.InputAudit:
			opts, err := auditOptionsFrom(name, in)
			if err != nil {
				return nil, err
			}
			opts.Processes = n.processes()
			ai, err := newAuditInput(opts, pipe, leds[name], n.set, n.logf)
			if AuditUnavailable(err) {
				// Not root, no kernel audit, or auditd runs: one line, and
				// the node runs without this input (its ledger stays 0).
				n.logf("%v; the input stays off", err)
				continue
			}
			if err != nil {
				return nil, err
			}
			n.inputs = append(n.inputs, ai)
		case config.InputEBPF:
			opts, err := ebpfOptionsFrom(name, in)
			if err != nil {
				return nil, err
			}
			// Without the privileges or kernel support it has logged one
			// line; the node runs without it (its ledger stays 0).
			opts.Tracer.Processes = n.processes()
			if ei := newEBPFInput(opts, pipe, leds[name], n.set, n.logf); ei.Running() {
				n.inputs = append(n.inputs, ei)
			}
		}
	}

	// A sink removed from the configuration leaves its cursor behind, and
	// retention would count everything it never reads as lost: forget it.
	if curs, err := disk.ReadCursors(spoolDir); err == nil {
		for name := range curs {
			if !strings.HasPrefix(name, "sink-") || hasSink(cfg, strings.TrimPrefix(name, "sink-")) {
				continue
			}
			if err := n.spool.DeleteCursor(name); err != nil {
				n.logf("cannot forget the cursor of removed sink %q: %v", name, err)
			} else {
				n.logf("forgot the cursor of sink %q, which is no longer configured", strings.TrimPrefix(name, "sink-"))
			}
		}
	}
	for _, sc := range cfg.Sinks {
		s, err := n.newSink(sc)
		if err != nil {
			return nil, fmt.Errorf("sink %q: %w", sc.Name, err)
		}
		n.sinks = append(n.sinks, s)
	}

	if cfg.HTTP.Listen != "" {
		n.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return nil, fmt.Errorf("cannot listen for HTTP on %s: %w", cfg.HTTP.Listen, err)
		}
		n.http = &http.Server{Handler: n.handler(), ReadHeaderTimeout: 10 * time.Second}
	}
	ok = true
	return n, nil
}

// input is what the node needs of an input: run until ctx ends (hard ends
// producers blocked on a full ring), and release its sockets if the node
// fails to start.
type input interface {
	Run(ctx, hard context.Context) error
	Close() error
}

func (n *Node) templatesPath() string { return filepath.Join(n.cfg.Node.DataDir, "flow-templates") }

// saveTemplates keeps learned flow templates across restarts, so data that
// arrives right after a restart decodes without waiting for a template.
func (n *Node) saveTemplates() {
	if n.templates == nil {
		return
	}
	if err := n.templates.SaveFile(n.templatesPath()); err != nil {
		n.logf("flow templates: cannot save: %v", err)
	}
}

// NetflowAddr returns the UDP address of the netflow input named name.
func (n *Node) NetflowAddr(name string) netip.AddrPort {
	for _, in := range n.netflows {
		if in.opts.Name == name {
			return in.Addr()
		}
	}
	return netip.AddrPort{}
}

func hasSink(cfg *config.Config, name string) bool {
	for _, sc := range cfg.Sinks {
		if sc.Name == name {
			return true
		}
	}
	return false
}

func kindOf(inputType string) event.Kind {
	switch inputType {
	case config.InputApp:
		return event.KindApp
	case config.InputNetflow, config.InputSFlow:
		return event.KindFlow
	case config.InputSyslog, config.InputRELP:
		return event.KindSyslog
	case config.InputAudit:
		return event.KindAudit
	case config.InputEBPF:
		// Frames of an ebpf input mix process and network events; each
		// event carries its own kind.
		return event.KindProcess
	}
	return event.KindUnknown
}

func (n *Node) logf(format string, args ...any) { n.logger.Printf(format, args...) }

// Ledger returns the node's loss ledger.
func (n *Node) Ledger() *ledger.Ledger { return n.ledger }

// Metrics returns the node's metric set.
func (n *Node) Metrics() *metrics.Set { return n.set }

// HTTPAddr returns the HTTP listener's address, or nil when disabled.
func (n *Node) HTTPAddr() net.Addr {
	if n.httpLn == nil {
		return nil
	}
	return n.httpLn.Addr()
}

// AppAddr returns the address of the app input named name, or nil.
func (n *Node) AppAddr(name string) net.Addr {
	for _, a := range n.apps {
		if a.opts.Name == name {
			return a.Addr()
		}
	}
	return nil
}

// SyslogAddr returns the address of the syslog or relp input named name
// (UDP, TCP or unix socket), or nil.
func (n *Node) SyslogAddr(name string) net.Addr {
	if si, ok := n.syslogs[name]; ok {
		return si.Addr()
	}
	return nil
}

// Run serves until ctx ends, then shuts down in order: inputs stop and
// drain what clients already sent, rings are drained into frames, the spool
// is synced, sinks catch up with the spool, and everything closes. It
// returns nil after a clean shutdown.
func (n *Node) Run(ctx context.Context) error {
	// hard bounds everything after ctx ends; its deadline is set below.
	hard, cancelHard := context.WithCancel(context.Background())
	defer cancelHard()

	for _, p := range n.pipes {
		if err := p.start(hard); err != nil {
			return err
		}
	}
	var sinkWG sync.WaitGroup
	sinkCtx, stopSinks := context.WithCancel(context.Background())
	defer stopSinks()
	for _, s := range n.sinks {
		sinkWG.Add(1)
		go func() {
			defer sinkWG.Done()
			if err := s.Run(sinkCtx); err != nil {
				n.logf("sink %s: %v", s.Name(), err)
			}
		}()
	}
	if n.http != nil {
		go func() {
			if err := n.http.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.logf("http: %v", err)
			}
		}()
	}
	var inputWG sync.WaitGroup
	for _, in := range n.inputs {
		inputWG.Add(1)
		go func() {
			defer inputWG.Done()
			if err := in.Run(ctx, hard); err != nil {
				n.logf("input stopped: %v", err)
			}
		}()
	}
	if n.templates != nil {
		go func() {
			t := time.NewTicker(30 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					n.saveTemplates()
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	n.logf("running: %d inputs, spool %s, http %v", len(n.pipes), SpoolDir(n.cfg.Node.DataDir), n.HTTPAddr())

	<-ctx.Done()
	n.logf("stopping: draining inputs")
	grace := n.cfg.Node.ShutdownGrace.D()
	// Producers blocked on a full ring get until twice the grace period;
	// after that what they hold is counted as dropped at shutdown.
	timer := time.AfterFunc(2*grace+5*time.Second, cancelHard)
	defer timer.Stop()
	inputWG.Wait()
	n.closeUDPDropCounter()
	n.saveTemplates()
	for _, p := range n.pipes {
		p.closeAndWait()
	}
	var errs []error
	if err := n.spool.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("final spool sync: %w", err))
	}
	// Sinks read up to the end of what is durable, then stop.
	for _, s := range n.sinks {
		s.StopAtEnd()
	}
	sinkWG.Wait()
	stopSinks()
	if n.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n.http.Shutdown(sctx)
		cancel()
	}
	if err := n.spool.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close spool: %w", err))
	}
	snap := n.ledger.Snapshot()
	for _, in := range snap.Inputs {
		n.logf("input %s: received %d, delivered %d, dropped %d", in.Name, in.Received, in.Delivered, in.DroppedTotal)
	}
	n.logf("stopped")
	return errors.Join(errs...)
}

// closeAll releases what New opened when New fails.
func (n *Node) closeAll() {
	for _, in := range n.inputs {
		in.Close()
	}
	if n.httpLn != nil {
		n.httpLn.Close()
	}
	if n.spool != nil {
		n.spool.Close()
	}
	n.closeUDPDropCounter()
}

// expiryCounter turns frames that retention deleted unread into ledger
// drops for their input.
type expiryCounter struct {
	led *ledger.Ledger
	mu  sync.Mutex
	by  map[string]*metrics.Counter
}

func newExpiryCounter(l *ledger.Ledger) *expiryCounter {
	return &expiryCounter{led: l, by: map[string]*metrics.Counter{}}
}

func (e *expiryCounter) count(rec []byte) {
	h, _, err := frame.PeekHeader(rec)
	if err != nil {
		return
	}
	e.mu.Lock()
	c, ok := e.by[string(h.Input)]
	if !ok {
		c = e.led.Input(string(h.Input), "").Dropped(ledger.ReasonRetention)
		e.by[string(h.Input)] = c
	}
	e.mu.Unlock()
	c.Add(int(h.Count))
}

// lastSequences returns, per input, the sequence number after the last
// event in the spool, so numbering continues across restarts. It reads
// segments newest first and stops one segment after every wanted input has
// been seen (one more, because a spilled frame may be appended just before a
// framer's frame with lower numbers).
func lastSequences(dir string, want []string, logf func(string, ...any)) (map[string]uint64, error) {
	seqs := map[string]uint64{}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return seqs, nil
	}
	segs, err := disk.ListSegments(dir)
	if err != nil {
		return nil, err
	}
	extra := false
	for i := len(segs) - 1; i >= 0; i-- {
		err := disk.ScanSegment(segs[i], i == len(segs)-1, func(rec []byte, _ disk.Pos) error {
			h, _, err := frame.PeekHeader(rec)
			if err != nil {
				return nil // not a frame: readers report it, irrelevant here
			}
			if next := h.FirstSeq + uint64(h.Count); next > seqs[string(h.Input)] {
				seqs[string(h.Input)] = next
			}
			return nil
		})
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted by retention meanwhile
		}
		if err != nil {
			// A damaged old segment must not keep the node from starting;
			// readers report the damage where it matters.
			logf("reading sequence numbers: %v", err)
		}
		all := true
		for _, name := range want {
			if _, ok := seqs[name]; !ok {
				all = false
			}
		}
		if all {
			if extra {
				break
			}
			extra = true
		}
	}
	return seqs, nil
}

// processes returns the node's process cache, made on first use: the eBPF
// input fills it from exec and exit events and both it and the audit input
// read parents from it.
func (n *Node) processes() *proccache.Cache {
	if n.procs == nil {
		n.procs = proccache.New(proccache.Options{})
	}
	return n.procs
}
