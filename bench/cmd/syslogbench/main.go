// Command syslogbench measures syslog collectors side by side on the same
// generated traffic (package bench/sysloggen: 256-byte messages, each with
// a unique sequence number, sent with sendmmsg over several UDP sockets,
// over several TCP connections, or over several RELP sessions): trawl
// (bin/trawl, into its spool, counted from the spool and cross-checked
// with its /metrics), rsyslog (imudp / imptcp / imrelp to a file with
// omfile) and syslog-ng (network() to a file; not over RELP, which
// Debian's syslog-ng cannot receive), each alone, with the configurations
// of bench/peer (imrelp's is in tools.go).
//
// Each step starts the tool fresh on a free loopback port, sends a fixed
// number of messages at the step's rate, waits until the tool has stored
// them or gone idle, reads its CPU time and peak RSS from /proc, stops it
// and counts what it stored (the peers' files are read line by line and
// every sequence number checked, so duplicates and foreign lines show).
//
// Over UDP the offered rate steps up until a step loses more than
// -stop-loss %, then -refine steps halve the gap between the best rate and
// the first that lost; the result is the highest achieved rate with loss
// < 0.1%. Over TCP nothing is lost (the sender is slowed instead); the result is
// the highest delivery rate: 99% of the stored messages divided by the
// time from the first send until 99% were stored (the last 1% waits on
// the peers' buffered writes being flushed, which is latency, not
// throughput), the last step sending as fast as the sender can. Over RELP
// a message counts as sent only once the tool answered it "200 OK"
// (sysloggen keeps a window of unanswered messages per session, 128 by
// default as in rsyslog's omrelp), so nothing can be lost: the result is
// the highest acknowledged rate of a step in which the tool stored
// exactly the messages it acknowledged, each once.
//
// CPU is the tool's user+system time from just before the traffic until
// it is idle again, per million messages stored. On a shared machine other
// processes compete for the cores: before each step the harness waits for
// them to calm down (-quiet), measures what they used during the step
// (other_cores in the JSON) and runs a step they disturbed once more.
//
// Then, with -profile, trawl runs once more at its limit for each protocol
// while its CPU profile is taken from /debug/pprof (not counted in the
// table). -from rewrites the Markdown and PNGs of an earlier JSON report.
//
// Output: a Markdown table on stdout and in bench/results/syslog-<ts>.md,
// bench/results/syslog-<ts>.json, one PNG per protocol, and the profiles
// (syslog-<ts>-trawl-<proto>.pprof, and `go tool pprof -top` and
// `-top -cum` as .txt).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trawlsec/trawl/bench/host"
	"github.com/trawlsec/trawl/bench/peer"
	"github.com/trawlsec/trawl/bench/plot"
	"github.com/trawlsec/trawl/bench/report"
	"github.com/trawlsec/trawl/bench/sysloggen"
)

// Step is one run of one tool at one offered rate.
type Step struct {
	Tool  string `json:"tool"`
	Proto string `json:"proto"`
	Rep   int    `json:"rep"`
	// Offered is the target rate in msgs/s; 0 = as fast as the sender can.
	Offered float64          `json:"offered_msgs_per_s"`
	Sent    sysloggen.Result `json:"sent"`
	// SenderCPU is the harness's own CPU seconds while sending.
	SenderCPU float64 `json:"sender_cpu_s"`
	Stored    uint64  `json:"stored"`
	// Duplicates among the stored messages; -1 when not checked (trawl).
	Duplicates int64 `json:"duplicates"`
	// LossPct = 100 × (1 − Stored/Sent.Messages).
	LossPct float64 `json:"loss_pct"`
	// DeliveryRate is msgs/s from the first send until 99% of the stored
	// messages were stored.
	DeliveryRate float64 `json:"delivery_msgs_per_s"`
	// DrainSec is how long after the send ended the tool had stored
	// everything it would store.
	DrainSec   float64 `json:"drain_s"`
	CPUSeconds float64 `json:"cpu_s"`
	CPUPerM    float64 `json:"cpu_s_per_mmsgs"`
	PeakRSSKiB uint64  `json:"peak_rss_kib"`
	GenLimited bool    `json:"generator_limited"`
	// OtherCores is the CPU other processes used during the step, in
	// cores; Contended says it was more than contendedCores, so the
	// step measured the machine's load as much as the tool.
	OtherCores float64      `json:"other_cores"`
	Contended  bool         `json:"contended"`
	Retried    bool         `json:"retried,omitempty"`
	Trawl      *TrawlCounts `json:"trawl,omitempty"`
	Error      string       `json:"error,omitempty"`
}

// rate is what the step achieved: the send rate over UDP (the loss says
// whether the tool kept up), the delivery rate over TCP, the acknowledged
// rate over RELP (a message counts as sent once the tool answered it).
func (s *Step) rate() float64 {
	if s.Proto == "tcp" {
		return s.DeliveryRate
	}
	return s.Sent.Rate
}

// sustained: no error and loss < 0.1%; over RELP, where nothing may be
// lost, no error and the tool stored exactly what it acknowledged.
func (s *Step) sustained() bool {
	if s.Proto == "relp" {
		return s.Error == "" && s.exact()
	}
	return s.Error == "" && s.LossPct < 0.1
}

// exact: the tool stored every message it acknowledged, once, and nothing
// else.
func (s *Step) exact() bool { return s.Stored == s.Sent.Messages && s.Duplicates <= 0 }

// TrawlCounts is trawl's own account of a step, from /metrics and the
// spool: the harness checks the metrics against what it sent and what the
// spool holds.
type TrawlCounts struct {
	Received   uint64 `json:"received"`
	Delivered  uint64 `json:"delivered"`
	Dropped    uint64 `json:"dropped"`
	SocketLost uint64 `json:"upstream_lost_socket_overflow"`
	// GROSockets is how many of trawl's UDP sockets used GRO, and
	// LossEstimated that its socket_overflow was an estimate.
	GROSockets    int    `json:"gro_sockets,omitempty"`
	LossEstimated bool   `json:"loss_estimated,omitempty"`
	ParseErrors   uint64 `json:"parse_errors"`
	FramingError  uint64 `json:"framing_errors"`
	Spooled       uint64 `json:"spooled"`
	// MetricsTrue: received = spooled + dropped and delivered = spooled.
	MetricsTrue bool `json:"metrics_true"`
	// Unaccounted = sent − (spooled + dropped + socket overflow): the
	// messages lost without trawl counting them (0 on loopback when the
	// ledger is right).
	Unaccounted int64 `json:"unaccounted"`
}

// Summary is one tool and protocol over every step.
type Summary struct {
	Tool  string `json:"tool"`
	Proto string `json:"proto"`
	// MaxRate is, per repetition, the highest rate (see Step.rate) of a
	// step with loss < 0.1%, below the first step that lost more.
	MaxRate []float64 `json:"max_rate_per_rep"`
	// CPUPerM is the CPU per million messages at that step (median over
	// repetitions).
	CPUPerM    float64 `json:"cpu_s_per_mmsgs"`
	PeakRSSKiB uint64  `json:"peak_rss_kib"`
	GenLimited bool    `json:"generator_limited"`
}

// Report is the JSON file.
type Report struct {
	Time    time.Time `json:"time"`
	Machine Machine   `json:"machine"`
	Command string    `json:"command"`
	Long    bool      `json:"long"`
	StepSec float64   `json:"step_s"`
	Streams int       `json:"streams"`
	Size    int       `json:"message_bytes"`
	Format  string    `json:"format"`
	Framing string    `json:"tcp_framing"`
	UDPGSO  bool      `json:"udp_gso"`
	// TrawlGRO: the gro setting of trawl's UDP input when not its default.
	TrawlGRO  string    `json:"trawl_gro,omitempty"`
	UDPRates  []float64 `json:"udp_rates"`
	TCPRates  []float64 `json:"tcp_rates"`
	RELPRates []float64 `json:"relp_rates,omitempty"`
	// RELPWindow is the sender's window of unanswered messages per RELP
	// session.
	RELPWindow int       `json:"relp_window,omitempty"`
	Steps      []Step    `json:"steps"`
	Summaries  []Summary `json:"summaries"`
	Profiles   []Profile `json:"profiles,omitempty"`
	// Skipped lists the tools not run over a protocol, and why.
	Skipped []Skip `json:"skipped,omitempty"`
}

// Skip is a tool not run over a protocol.
type Skip struct {
	Tool  string `json:"tool"`
	Proto string `json:"proto"`
	Why   string `json:"why"`
}

// noRELP says why syslog-ng is not run over RELP.
const noRELP = "Debian's syslog-ng (the open-source edition) has no RELP server: none of its sources speaks RELP"

// Profile is trawl's CPU profile at its limit for one protocol.
type Profile struct {
	Proto   string  `json:"proto"`
	Offered float64 `json:"offered_msgs_per_s"`
	Step    Step    `json:"step"`
	File    string  `json:"file"`
	Top     string  `json:"top"`
}

// Machine describes where the run happened.
type Machine = host.Machine

func main() {
	var (
		long     = flag.Bool("long", false, "bigger machines: 10 s steps, UDP up to 6.4M and TCP up to 4M msgs/s and beyond")
		reps     = flag.Int("reps", 1, "repetitions of every step (3 gives min/median/max)")
		tools    = flag.String("tools", "trawl,rsyslog,syslog-ng", "collectors to run")
		protos   = flag.String("protos", "udp,tcp,relp", "transports to run: udp, tcp, relp (syslog-ng is not run over relp: it has no RELP server)")
		udpRates = flag.String("udp-rates", "", "offered UDP rates, msgs/s, comma separated (default by mode)")
		tcpRates = flag.String("tcp-rates", "", "offered TCP rates, msgs/s, comma separated; max = as fast as possible (default by mode)")
		relpRate = flag.String("relp-rates", "", "offered RELP rates, msgs/s, comma separated; max = as fast as the acknowledgements allow (default by mode)")
		window   = flag.Int("relp-window", sysloggen.DefaultRELPWindow, "RELP: unanswered messages per session (rsyslog omrelp's default is 128)")
		stepDur  = flag.Duration("step", 0, "traffic time per step (default 2s, --long 10s)")
		streams  = flag.Int("streams", 4, "UDP sockets / TCP connections / RELP sessions of the sender")
		size     = flag.Int("size", 256, "message size in bytes")
		format   = flag.String("format", "rfc3164", "message format: rfc3164 or rfc5424")
		framing  = flag.String("framing", "lf", "TCP framing: lf or octet (syslog-ng then uses its syslog() source, which wants -format rfc5424)")
		refine   = flag.Int("refine", 1, "over UDP, halve the gap between a tool's best step and the first it failed this many times")
		stopLoss = flag.Float64("stop-loss", 2, "stop stepping a tool up once a UDP step loses more than this %")
		rcvbuf   = flag.Int("rcvbuf", 32<<20, "UDP receive buffer asked of every tool, bytes")
		rmemMax  = flag.Int("rmem-max", 32<<20, "as root, raise net.core.rmem_max to at least this for the run (restored after), so the peers get the buffer trawl forces; 0 = leave it")
		trawlGRO = flag.String("trawl-gro", "", "gro setting of trawl's UDP input: auto, true or false (default: trawl's default, auto: UDP GRO where its BPF drop counter keeps the loss count exact)")
		noGSO    = flag.Bool("no-gso", false, "send every UDP datagram as its own packet (by default the sender uses UDP GSO, which makes the same datagrams for a fifth of the CPU)")
		quiet    = flag.Duration("quiet", 2*time.Minute, "before each step wait up to this long for other processes to use < 0.25 cores, and run a step they disturbed once more (0 = neither)")
		profile  = flag.Bool("profile", true, "take trawl's CPU profile at its limit for each protocol")
		trawlBin = flag.String("trawl", "bin/trawl", "trawl binary")
		outDir   = flag.String("out", "bench/results", "where to write the results")
	)
	flag.StringVar(&stampFlag, "stamp", "", "timestamp in the result file names (default: the start time, 20060102T150405Z)")
	from := flag.String("from", "", "run nothing: write the Markdown and PNGs of an earlier run's JSON report again (into -out)")
	flag.Parse()
	if *from != "" {
		if err := rewrite(*from, *outDir); err != nil {
			fatal(err)
		}
		return
	}
	udpList := []float64{100e3, 200e3, 300e3, 400e3, 600e3, 800e3, 1e6, 1.2e6, 1.6e6}
	tcpList := []float64{250e3, 500e3, 1e6, 0}
	relpList := []float64{25e3, 100e3, 0}
	step := 2 * time.Second
	if *long {
		udpList = []float64{100e3, 200e3, 400e3, 800e3, 1.6e6, 3.2e6, 6.4e6}
		tcpList = []float64{250e3, 500e3, 1e6, 2e6, 4e6, 0}
		relpList = []float64{25e3, 50e3, 100e3, 200e3, 400e3, 800e3, 0}
		step = 10 * time.Second
	}
	var err error
	if *udpRates != "" {
		if udpList, err = parseRates(*udpRates); err != nil {
			fatal(err)
		}
	}
	if *tcpRates != "" {
		if tcpList, err = parseRates(*tcpRates); err != nil {
			fatal(err)
		}
	}
	if *relpRate != "" {
		if relpList, err = parseRates(*relpRate); err != nil {
			fatal(err)
		}
	}
	if *window < 1 {
		fatal(fmt.Errorf("cannot run a RELP window of %d messages", *window))
	}
	if *stepDur > 0 {
		step = *stepDur
	}
	msgFormat, err := sysloggen.ParseFormat(*format)
	if err != nil {
		fatal(err)
	}
	fr, err := sysloggen.ParseFraming(*framing)
	if err != nil {
		fatal(err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	root, err := peer.RepoRoot()
	if err != nil {
		fatal(err)
	}
	all := map[string]func() (tool, error){
		"trawl":   func() (tool, error) { return &trawlTool{bin: *trawlBin, gro: *trawlGRO}, nil },
		"rsyslog": func() (tool, error) { _, err := peer.Rsyslogd(); return newRsyslog(), err },
		"syslog-ng": func() (tool, error) {
			s, err := peer.FindSyslogNG(root)
			if err != nil {
				return nil, err
			}
			return newSyslogNG(s), nil
		},
	}
	var toolNames []string
	for _, t := range strings.Split(*tools, ",") {
		mk, ok := all[t]
		if !ok {
			fatal(fmt.Errorf("unknown tool %q (want trawl, rsyslog, syslog-ng)", t))
		}
		if _, err := mk(); err != nil {
			fatal(err)
		}
		toolNames = append(toolNames, t)
	}
	var protoNames []string
	for _, p := range strings.Split(*protos, ",") {
		if p != "udp" && p != "tcp" && p != "relp" {
			fatal(fmt.Errorf("unknown protocol %q (want udp, tcp, relp)", p))
		}
		protoNames = append(protoNames, p)
	}
	if slices.Contains(protoNames, "relp") && slices.Contains(toolNames, "rsyslog") {
		if err := peer.RsyslogModule("imrelp"); err != nil {
			fatal(err)
		}
	}
	if *rmemMax > 0 {
		cleanup = raiseRmemMax(*rmemMax)
		defer cleanup()
	}

	rep := &Report{Time: time.Now().UTC(), Machine: machine(*trawlBin, root), Command: strings.Join(os.Args, " "), Long: *long,
		StepSec: step.Seconds(), Streams: *streams, Size: *size, Format: msgFormat.String(), Framing: fr.String(), UDPGSO: !*noGSO, TrawlGRO: *trawlGRO,
		UDPRates: udpList, TCPRates: tcpList}
	if slices.Contains(protoNames, "relp") {
		rep.RELPRates, rep.RELPWindow = relpList, *window
	}
	work, err := os.MkdirTemp("", "syslogbench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(work)

	r := &runner{step: step, streams: *streams, size: *size, format: msgFormat, framing: fr, rcvbuf: *rcvbuf, noGSO: *noGSO,
		window: *window, work: work}
	for _, proto := range protoNames {
		rates := udpList
		switch proto {
		case "tcp":
			rates = tcpList
		case "relp":
			rates = relpList
		}
		for _, tn := range toolNames {
			if proto == "relp" && tn == "syslog-ng" {
				rep.Skipped = append(rep.Skipped, Skip{Tool: tn, Proto: proto, Why: noRELP})
				fmt.Fprintf(os.Stderr, "note: syslog-ng is not run over RELP: %s\n", noRELP)
				continue
			}
			for rp := 0; rp < *reps; rp++ {
				best := 0.0
				for _, rate := range rates {
					if ctx.Err() != nil {
						break
					}
					st := r.runQuiet(ctx, *quiet, all[tn], tn, proto, rp, rate, best)
					rep.Steps = append(rep.Steps, st)
					if st.sustained() {
						best = max(best, st.rate())
					}
					if st.Error != "" || st.LossPct > *stopLoss || st.GenLimited {
						break
					}
					// Over TCP and RELP a tool that could not keep up
					// with this rate shows its limit; higher rates show
					// the same.
					if proto != "udp" && rate > 0 && st.rate() < 0.8*rate {
						break
					}
				}
				if proto == "udp" {
					for range *refine {
						lo, hi := bracket(rep.Steps, tn, rp)
						if lo == 0 || hi == 0 || hi < 1.1*lo || ctx.Err() != nil {
							break
						}
						mid := math.Round((lo+hi)/2/1e4) * 1e4
						rep.Steps = append(rep.Steps, r.runQuiet(ctx, *quiet, all[tn], tn, proto, rp, mid, 0))
					}
				}
			}
		}
	}
	rep.Summaries = summarize(rep.Steps)
	if *profile && slices.Contains(toolNames, "trawl") && ctx.Err() == nil {
		for _, proto := range protoNames {
			if *quiet > 0 {
				waitQuiet(ctx, *quiet)
			}
			p, err := r.profile(ctx, *trawlBin, proto, rep, *outDir)
			if err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
				continue
			}
			rep.Profiles = append(rep.Profiles, p)
		}
	}
	rep.Machine.LoadAtEnd = host.LoadAvg()
	if err := writeResults(rep, *outDir); err != nil {
		fatal(err)
	}
	if ctx.Err() != nil {
		cleanup()
		os.Exit(1)
	}
}

// stampFlag is -stamp: make bench names every harness's files alike.
var stampFlag string

// stamp is the timestamp in rep's file names.
func stamp(rep *Report) string {
	if stampFlag != "" {
		return stampFlag
	}
	return rep.Time.Format("20060102T150405Z")
}

// writeResults writes the Markdown (also to stdout), the JSON and the
// PNGs of rep into dir.
func writeResults(rep *Report, dir string) error {
	ts := stamp(rep)
	var md strings.Builder
	writeMarkdown(&md, rep)
	if err := report.Write(dir, "syslog-"+ts, md.String(), rep); err != nil {
		return err
	}
	var tools, protos []string
	for _, s := range rep.Summaries {
		if !slices.Contains(tools, s.Tool) {
			tools = append(tools, s.Tool)
		}
		if !slices.Contains(protos, s.Proto) {
			protos = append(protos, s.Proto)
		}
	}
	for _, proto := range protos {
		path := filepath.Join(dir, fmt.Sprintf("syslog-%s-%s.png", ts, proto))
		if err := plot.Write(path, chart(proto, rep.Steps, tools)); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "plot:", path)
	}
	return nil
}

// rewrite reads a report written by an earlier run and writes its Markdown
// and PNGs again (after a change to the report or the plots).
func rewrite(path, dir string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("cannot read report %s: %w", path, err)
	}
	rep.Summaries = summarize(rep.Steps)
	return writeResults(&rep, dir)
}

// cleanup undoes what the run changed on the machine; fatal calls it too.
var cleanup = func() {}

// bracket returns, for one tool's UDP steps of repetition rep, the highest
// offered rate it sustained below the lowest it did not, and that lowest
// (0 when there is none).
func bracket(steps []Step, tool string, rep int) (lo, hi float64) {
	for _, s := range byOffered(steps, tool, "udp", rep) {
		if !s.sustained() {
			return lo, s.Offered
		}
		lo = s.Offered
	}
	return lo, 0
}

func logStep(st Step) {
	off := "max"
	if st.Offered > 0 {
		off = plot.Human(st.Offered)
	}
	sent := "sent"
	if st.Proto == "relp" {
		sent = "acked"
	}
	s := fmt.Sprintf("%-9s %s rep %d offered %5s %s %9d at %6s/s (sender cpu %.1fs) stored %9d loss %6.3f%% delivered %6s/s drain %.1fs cpu %.2fs = %.2f s/M rss %d MiB",
		st.Tool, st.Proto, st.Rep, off, sent, st.Sent.Messages, plot.Human(st.Sent.Rate), st.SenderCPU, st.Stored, st.LossPct,
		plot.Human(st.DeliveryRate), st.DrainSec, st.CPUSeconds, st.CPUPerM, st.PeakRSSKiB>>10)
	if st.Sent.Unacked > 0 {
		s += fmt.Sprintf(" UNACKED %d", st.Sent.Unacked)
	}
	if st.Duplicates > 0 {
		s += fmt.Sprintf(" DUPLICATES %d", st.Duplicates)
	}
	if st.GenLimited {
		s += " (generator-limited)"
	}
	s += fmt.Sprintf(" others %.2f cores", st.OtherCores)
	if st.Contended {
		s += " CONTENDED"
	}
	if t := st.Trawl; t != nil {
		s += fmt.Sprintf(" [metrics: received %d delivered %d dropped %d socket_overflow %d parse_errors %d spooled %d true=%v unaccounted %d]",
			t.Received, t.Delivered, t.Dropped, t.SocketLost, t.ParseErrors, t.Spooled, t.MetricsTrue, t.Unaccounted)
	}
	if st.Error != "" {
		s += " ERROR: " + st.Error
	}
	fmt.Fprintln(os.Stderr, s)
}

// runQuiet runs a step (see run) on a quiet machine: with quiet > 0 it
// first waits up to quiet for other processes to calm down, and runs the
// step once more if they disturbed it anyway; the second run counts,
// marked retried (and contended, if it was too).
func (r *runner) runQuiet(ctx context.Context, quiet time.Duration, mk func() (tool, error), name, proto string, rep int, rate, best float64) Step {
	for attempt := 0; ; attempt++ {
		if quiet > 0 && !waitQuiet(ctx, quiet) && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "note: other processes still busy after %v; running anyway\n", quiet)
		}
		t, _ := mk()
		st := r.run(ctx, t, name, proto, rep, rate, best, nil)
		st.Retried = attempt > 0
		logStep(st)
		if !st.Contended || quiet == 0 || attempt == 1 || ctx.Err() != nil {
			return st
		}
		fmt.Fprintf(os.Stderr, "note: other processes used %.2f cores during that step; running it again\n", st.OtherCores)
	}
}

// runner runs steps.
type runner struct {
	step    time.Duration
	streams int
	size    int
	format  sysloggen.Format
	framing sysloggen.Framing
	rcvbuf  int
	noGSO   bool
	window  int // RELP
	work    string
}

// run runs one tool at one rate (0 = as fast as possible; best is the
// tool's best rate so far, which sizes such a step). It never leaves the
// tool running. With prof set, the tool's CPU profile is taken while the
// traffic runs (trawl only).
func (r *runner) run(ctx context.Context, t tool, name, proto string, rep int, rate, best float64, prof func(seconds int)) (st Step) {
	st = Step{Tool: name, Proto: proto, Rep: rep, Offered: rate, Duplicates: -1}
	dir, err := os.MkdirTemp(r.work, name+"-")
	if err != nil {
		st.Error = err.Error()
		return st
	}
	defer os.RemoveAll(dir)
	e := &env{dir: dir, tcp: proto != "udp", relp: proto == "relp", threads: runtime.NumCPU(), rcvbuf: r.rcvbuf,
		octet: r.framing == sysloggen.OctetCounted}
	var p *peer.Proc
	// A port found free may be taken by someone else before the tool
	// binds it: try another.
	for try := 0; ; try++ {
		network := "udp"
		if e.tcp {
			network = "tcp"
		}
		if e.port, err = peer.FreePort(network); err != nil {
			st.Error = err.Error()
			return st
		}
		if p, err = t.Start(ctx, e); err == nil {
			break
		}
		if try == 2 || !strings.Contains(strings.ToLower(err.Error()), "address already in use") {
			st.Error = err.Error()
			return st
		}
	}
	defer func() {
		select {
		case <-p.Exited():
		default:
			p.Kill()
		}
		if st.Error != "" {
			st.Error += ": " + strings.ReplaceAll(p.Tail(5), "\n", " | ")
		}
	}()

	msgs := uint64(rate * r.step.Seconds())
	if rate == 0 {
		// As fast as possible: enough for about one step at twice the
		// best rate so far (RELP, bound by acknowledgements, runs slower
		// than its peers: a smaller floor keeps its step short).
		floor := 500e3
		if e.relp {
			floor = 50e3
		}
		msgs = uint64(max(2*best, floor) * r.step.Seconds())
	}
	cpu0, _ := p.Stats()
	ru0 := host.SelfCPU()
	others0 := othersCPU(p.Pid())
	start := time.Now()
	if prof != nil {
		go prof(int(r.step.Seconds() + 0.5))
	}
	res, err := sysloggen.Send(ctx, sysloggen.Config{Target: netip.MustParseAddrPort(e.addr()), TCP: e.tcp, Format: r.format,
		Framing: r.framing, Size: r.size, Streams: r.streams, Messages: msgs, Rate: rate, NoGSO: r.noGSO,
		RELP: e.relp, RELPWindow: r.window})
	sendEnd := time.Now()
	st.SenderCPU = host.SelfCPU() - ru0
	st.Sent = res
	if err != nil {
		st.Error = err.Error()
		return st
	}
	// Over TCP a slow sender is the collector's backpressure (over RELP
	// its acknowledgements); over UDP it is the generator's limit (or the
	// machine's).
	st.GenLimited = !e.tcp && rate > 0 && res.Rate < 0.9*rate

	// Drain: poll the tool's progress until it has everything, or it has
	// been idle (no progress, no CPU) for a while.
	type sample struct {
		t time.Time
		n uint64
	}
	var samples []sample
	var last uint64
	lastChange := time.Now()
	lastCPU, _ := p.Stats()
	lastCPUAt := time.Now()
	for {
		n, err := t.Progress()
		if err != nil {
			st.Error = err.Error()
			return st
		}
		now := time.Now()
		if n != last || len(samples) == 0 {
			samples = append(samples, sample{now, n})
			last, lastChange = n, now
		}
		if n >= res.Messages {
			break
		}
		if now.Sub(lastCPUAt) >= 300*time.Millisecond {
			c, _ := p.Stats()
			busy := c-lastCPU > 0.02
			lastCPU, lastCPUAt = c, now
			if !busy && now.Sub(lastChange) > 1500*time.Millisecond {
				break // idle: the rest was lost, or waits in a buffer flushed at exit
			}
		}
		if now.Sub(sendEnd) > 120*time.Second {
			break
		}
		select {
		case <-ctx.Done():
			st.Error = ctx.Err().Error()
			return st
		case <-p.Exited():
			st.Error = "exited during the step"
			return st
		case <-time.After(10 * time.Millisecond):
		}
	}
	st.DrainSec = samples[len(samples)-1].t.Sub(sendEnd).Seconds()
	if final := samples[len(samples)-1].n; final > 0 {
		for _, s := range samples {
			if s.n*100 >= final*99 {
				st.DeliveryRate = float64(s.n) / s.t.Sub(start).Seconds()
				break
			}
		}
	}
	cpu1, rss := p.Stats()
	st.CPUSeconds, st.PeakRSSKiB = cpu1-cpu0, rss
	// Other processes competing for the cores make the step measure the
	// machine's load as much as the tool.
	if el := time.Since(start).Seconds(); el > 0 {
		st.OtherCores = max(othersCPU(p.Pid())-others0, 0) / el
		st.Contended = st.OtherCores > contendedCores
	}
	if err := t.BeforeStop(&st); err != nil {
		st.Error = err.Error()
		return st
	}
	if err := p.Stop(t.Signal(), 60*time.Second); err != nil && !strings.Contains(err.Error(), "signal") {
		fmt.Fprintf(os.Stderr, "note: %s: %v\n", name, err)
	}
	n, dups, err := t.Count(ctx, e, &st)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Stored, st.Duplicates = n, dups
	if res.Messages > 0 {
		st.LossPct = 100 * (1 - float64(n-uint64(max(dups, 0)))/float64(res.Messages))
	}
	if n > 0 {
		st.CPUPerM = st.CPUSeconds / float64(n) * 1e6
	}
	return st
}

// profile runs trawl once more at its limit for proto with its CPU
// profile taken during the traffic: over UDP at the lowest rate it could
// not sustain (or its highest step), over TCP as fast as possible.
func (r *runner) profile(ctx context.Context, bin, proto string, rep *Report, outDir string) (Profile, error) {
	rate, best := 0.0, 0.0
	for _, s := range rep.Summaries {
		if s.Tool == "trawl" && s.Proto == proto {
			best = report.Median(s.MaxRate)
		}
	}
	if proto == "udp" {
		for _, s := range rep.Steps {
			if s.Tool == "trawl" && s.Proto == "udp" && s.Error == "" {
				rate = s.Offered
				if !s.sustained() {
					break
				}
			}
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Profile{}, err
	}
	ts := stamp(rep)
	path := filepath.Join(outDir, fmt.Sprintf("syslog-%s-trawl-%s.pprof", ts, proto))
	t := &trawlTool{bin: bin}
	done := make(chan error, 1)
	st := r.run(ctx, t, "trawl", proto, 0, rate, best, func(seconds int) {
		done <- fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.http, max(seconds, 1)), path)
	})
	logStep(st)
	if st.Error != "" {
		return Profile{}, fmt.Errorf("profile step: %s", st.Error)
	}
	if err := <-done; err != nil {
		return Profile{}, err
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=30", bin, path).Output()
	if err != nil {
		return Profile{}, fmt.Errorf("go tool pprof -top: %w", err)
	}
	cum, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=40", bin, path).Output()
	if err != nil {
		return Profile{}, fmt.Errorf("go tool pprof -top -cum: %w", err)
	}
	txt := strings.TrimSuffix(path, ".pprof") + ".txt"
	body := append(append([]byte("go tool pprof -top\n\n"), out...), "\ngo tool pprof -top -cum\n\n"...)
	if err := os.WriteFile(txt, append(body, cum...), 0o644); err != nil {
		return Profile{}, err
	}
	fmt.Fprintf(os.Stderr, "profile: %s (%s)\n", path, txt)
	return Profile{Proto: proto, Offered: rate, Step: st, File: filepath.Base(path), Top: string(out)}, nil
}

func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("cannot fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("cannot fetch %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// contendedCores is how much CPU other processes may use during a step
// before it counts as contended.
const contendedCores = 0.25

// othersCPU returns the CPU seconds the machine has spent so far on
// anything but this process, the tool (pid) and the kernel's own threads
// (softirq, writeback: mostly the step's own traffic and files): all
// non-idle time in /proc/stat less theirs. Tick-based accounting charges
// softirq work to the task it interrupted, so the loopback traffic a
// sender or a collector causes stays theirs.
func othersCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest ...
	var busy float64
	for i := 1; i < len(f) && i <= 8; i++ {
		if i == 4 || i == 5 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseUint(f[i], 10, 64)
		busy += float64(n) / 100 // USER_HZ
	}
	self, _ := peer.ProcStats(os.Getpid())
	tool := 0.0
	if pid > 0 {
		tool, _ = peer.ProcStats(pid)
	}
	return busy - self - tool - kernelThreadsCPU()
}

// kernelThreadsCPU returns the CPU seconds of the kernel's threads (the
// processes without a command line).
func kernelThreadsCPU() float64 {
	ents, _ := os.ReadDir("/proc")
	var sum float64
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); err != nil || len(cl) > 0 {
			continue
		}
		if st, err := peer.ReadStat(p); err == nil {
			sum += st.CPU()
		}
	}
	return sum
}

// waitQuiet waits until other processes use less than contendedCores for a
// second, at most max; it reports whether the machine got quiet.
func waitQuiet(ctx context.Context, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for {
		o := othersCPU(0)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
		if othersCPU(0)-o < contendedCores {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

const rmemMaxPath = "/proc/sys/net/core/rmem_max"

// raiseRmemMax raises net.core.rmem_max to at least v when it can (as
// root) and returns a function that puts the old value back.
func raiseRmemMax(v int) func() {
	old := host.ReadTrim(rmemMaxPath)
	cur, err := strconv.Atoi(old)
	if err != nil || cur >= v || os.Geteuid() != 0 {
		return func() {}
	}
	if err := os.WriteFile(rmemMaxPath, []byte(strconv.Itoa(v)), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "note: cannot raise net.core.rmem_max to %d: %v\n", v, err)
		return func() {}
	}
	fmt.Fprintf(os.Stderr, "net.core.rmem_max raised from %s to %d for the run\n", old, v)
	return func() {
		if err := os.WriteFile(rmemMaxPath, []byte(old), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "cannot restore net.core.rmem_max to %s: %v\n", old, err)
		}
	}
}

func machine(trawlBin, root string) Machine {
	var vs []string
	if out, err := exec.Command(trawlBin, "version").CombinedOutput(); err == nil {
		vs = append(vs, strings.TrimSpace(string(out)))
	}
	if v := peer.RsyslogVersion(); v != "" {
		vs = append(vs, v)
	}
	if s, err := peer.FindSyslogNG(root); err == nil {
		vs = append(vs, s.Version())
	}
	return host.Describe(vs...)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "syslogbench:", err)
	cleanup()
	os.Exit(1)
}

// parseRates reads "100k,1.6M,max" (max = 0, as fast as possible).
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "max" {
			out = append(out, 0)
			continue
		}
		v, err := report.ParseRate(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
