// Command trawlbench runs flow collectors side by side on the same
// generated traffic (package bench/gen) and counts, from what each one
// stored, how much it lost as the offered rate steps up: trawl (bin/trawl,
// counted from its spool and cross-checked with its /metrics), goflow2
// (JSON lines or protobuf), nfcapd and sfcapd (nfdump files), nfacctd and
// sfacctd (pmacct's print plugin, CSV; pmacct.go). Formats: NetFlow v5,
// v9, IPFIX and sFlow v5, each tool running those it collects. Each step
// starts the collector fresh, in its own process group, on a free
// loopback port, sends a fixed number of flows at the step's rate, waits
// until the collector's processes are idle, reads their peak RSS from
// /proc, stops the collector, waits for every process of the group to end,
// and counts; CPU time is the collector's whole life, its child processes
// included.
//
// Output: a Markdown table on stdout and in bench/results/flows-<ts>.md,
// bench/results/flows-<ts>.json and one PNG per format (loss % against offered rate, one line per tool).
//
// With -kafka HOST:PORT the collectors produce to that Kafka broker instead
// (trawl's kafka sink, goflow2's kafka transport), each step into a fresh
// topic, and delivered flows are counted at the broker (kafka.go); the
// files are then bench/results/kafka-<ts>.*.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/trawlsec/trawl/bench/gen"
	"github.com/trawlsec/trawl/bench/host"
	"github.com/trawlsec/trawl/bench/peer"
	"github.com/trawlsec/trawl/bench/plot"
	"github.com/trawlsec/trawl/bench/report"
)

// Step is one run of one tool at one offered rate.
type Step struct {
	Tool    string  `json:"tool"`
	Format  string  `json:"format"`
	Rep     int     `json:"rep"`
	Offered float64 `json:"offered_flows_per_s"`
	// Sent is what the generator sent; its Rate is the achieved rate.
	Sent   gen.SendResult `json:"sent"`
	Stored uint64         `json:"stored"`
	// LossPct = 100 × (1 − Stored/Sent.Flows).
	LossPct float64 `json:"loss_pct"`
	// CPUSeconds is the collector's user+system time over the whole step
	// (start, traffic, drain, stop), with that of the child processes it
	// waited for (pmacct's plugin and writers); CPUPerMFlows divides it by
	// the flows stored.
	CPUSeconds   float64 `json:"cpu_s"`
	CPUPerMFlows float64 `json:"cpu_s_per_mflows"`
	// PeakRSSKiB is the collector's peak RSS, read when it was idle after
	// the traffic; for several processes (pmacct) the largest one's, or
	// the sum of their proportional set sizes then if more (groupStats).
	PeakRSSKiB uint64       `json:"peak_rss_kib"`
	GenLimited bool         `json:"generator_limited"`
	Trawl      *TrawlCounts `json:"trawl,omitempty"`
	// Kafka is set in -kafka mode; Stored is then the distinct records
	// the broker holds.
	Kafka *KafkaCounts `json:"kafka,omitempty"`
	Error string       `json:"error,omitempty"`
	// Discarded marks the worse of two attempts at the same step (-kafka
	// repeats a step that was not sustained once: other work on a shared
	// machine only ever slows a step down). Summaries, tables and plots
	// skip it; the JSON keeps it.
	Discarded bool `json:"discarded,omitempty"`
}

// betterThan reports whether attempt s beat attempt o at the same step:
// sustained first, then less loss, then delivered sooner.
func (s *Step) betterThan(o *Step) bool {
	if s.sustained() != o.sustained() {
		return s.sustained()
	}
	if (s.Error == "") != (o.Error == "") {
		return s.Error == ""
	}
	if s.LossPct != o.LossPct {
		return s.LossPct < o.LossPct
	}
	if s.Kafka != nil && o.Kafka != nil {
		return s.Kafka.DoneAfterSendSec < o.Kafka.DoneAfterSendSec
	}
	return false
}

// kept returns the steps that are not discarded.
func kept(steps []Step) []Step {
	var out []Step
	for _, s := range steps {
		if !s.Discarded {
			out = append(out, s)
		}
	}
	return out
}

// sustained reports whether the step kept up with its offered rate: no
// error, loss < 0.1% and, in -kafka mode, everything delivered soon after
// the send ended.
func (s *Step) sustained() bool {
	return s.Error == "" && s.LossPct < 0.1 && (s.Kafka == nil || s.Kafka.CaughtUp)
}

// TrawlCounts is trawl's own account of a step, from /metrics and the
// spool: the harness checks the metrics against the spool.
type TrawlCounts struct {
	Received     uint64 `json:"received"`
	Dropped      uint64 `json:"dropped"`
	UpstreamLost uint64 `json:"upstream_lost"`
	SeqGapLost   uint64 `json:"upstream_lost_sequence_gap"`
	SocketLost   uint64 `json:"upstream_lost_socket_overflow"`
	Spooled      uint64 `json:"spooled"`
	// MetricsTrue: received = spooled + dropped.
	MetricsTrue bool `json:"metrics_true"`
	// LedgerMinusActual is the flows the ledger reports lost
	// (exporter_sequence_gap + dropped) minus the flows actually lost (sent
	// − spooled). socket_overflow is left out: it counts the same loss
	// again, in datagrams. The sender's trailer reveals a loss in the last
	// packets, so for v5, IPFIX and sFlow, whose sequence numbers count
	// records, this is 0 unless the ledger is wrong; v9 numbers packets,
	// and its lost flows are estimated from the exporter's records per
	// packet.
	LedgerMinusActual int64 `json:"ledger_minus_actual_loss"`
}

// Summary is one tool and format over every step.
type Summary struct {
	Tool   string `json:"tool"`
	Format string `json:"format"`
	// MaxRate is the highest achieved rate (flows/s) of a step with loss <
	// 0.1% below the first step that lost more, per repetition.
	MaxRate      []float64 `json:"max_rate_per_rep"`
	CPUPerMFlows float64   `json:"cpu_s_per_mflows"`
	PeakRSSKiB   uint64    `json:"peak_rss_kib"`
	GenLimited   bool      `json:"generator_limited"`
	// The rest is set in -kafka mode: the broker's CPU per million flows
	// at the step CPUPerMFlows comes from, the highest delivery rate of
	// any step (whatever its loss), and duplicates over every step.
	BrokerCPUPerMFlows float64 `json:"broker_cpu_s_per_mflows,omitempty"`
	PeakDeliveryRate   float64 `json:"peak_delivery_flows_per_s,omitempty"`
	Duplicates         uint64  `json:"duplicates,omitempty"`
}

// Report is the JSON file.
type Report struct {
	Time      time.Time `json:"time"`
	Machine   Machine   `json:"machine"`
	Command   string    `json:"command"`
	Long      bool      `json:"long"`
	StepSec   float64   `json:"step_s"`
	Exporters int       `json:"exporters"`
	// GSO: the generator sent runs of equal-size packets as UDP GSO sends.
	GSO       bool      `json:"gso,omitempty"`
	Rates     []float64 `json:"rates"`
	Steps     []Step    `json:"steps"`
	Summaries []Summary `json:"summaries"`
	// Kafka is set in -kafka mode.
	Kafka *KafkaSettings `json:"kafka,omitempty"`
}

// Machine describes where the run happened.
type Machine = host.Machine

// sendGSO makes the generator send each exporter's runs of equal-size
// packets as UDP GSO sends (gen.SendConfig.GSO).
var sendGSO = flag.Bool("gso", false, "send each exporter's runs of equal-size packets as one UDP GSO send (the packets are the same; a collector with UDP_GRO gets a run as one buffer, as from a NIC's GRO)")

func main() {
	var (
		long      = flag.Bool("long", false, "bigger machines: 10 s steps, rates 250k to 16M flows/s")
		reps      = flag.Int("reps", 1, "repetitions of every step (3 gives min/median/max)")
		tools     = flag.String("tools", strings.Join(defaultTools, ","), "collectors to run: trawl, trawl-none (frames uncompressed), goflow2 (JSON), goflow2-pb (protobuf), nfcapd, nfacctd (NetFlow/IPFIX), sfcapd, sfacctd (sFlow); by default those installed")
		formats   = flag.String("formats", defaultFormats, "formats to run: v5, v9, ipfix, sflow")
		rates     = flag.String("rates", "", "offered rates in flows/s, comma separated (default by mode; -kafka: 50k to 600k)")
		stepDur   = flag.Duration("step", 0, "traffic time per step (default 2s, -kafka 3s, --long 10s)")
		exporters = flag.Int("exporters", 16, "exporters, each from its own 127.0.0.x address")
		stopLoss  = flag.Float64("stop-loss", 5, "stop stepping a tool up once a step loses more than this %")
		trawlBin  = flag.String("trawl", "bin/trawl", "trawl binary")
		goflow2   = flag.String("goflow2", "build/bin/goflow2", "goflow2 binary")
		nfcapd    = flag.String("nfcapd", "nfcapd", "nfcapd binary")
		nfdump    = flag.String("nfdump", "nfdump", "nfdump binary")
		sfcapd    = flag.String("sfcapd", "sfcapd", "sfcapd binary (Debian package nfdump-sflow)")
		nfacctd   = flag.String("nfacctd", "nfacctd", "pmacct's nfacctd binary")
		sfacctd   = flag.String("sfacctd", "sfacctd", "pmacct's sfacctd binary")
		outDir    = flag.String("out", "bench/results", "where to write JSON and PNG files")

		kafkaBrokers = flag.String("kafka", "", "Kafka mode: every collector produces to these brokers (HOST:PORT[,...]); tools trawl-pb, trawl-json, trawl-frame, goflow2-pb")
		kafkaParts   = flag.Int("kafka-partitions", 3, "partitions of each step's topic")
		kafkaPID     = flag.Int("kafka-pid", 0, "the broker's pid, to measure its CPU time")
		kafkaDups    = flag.Bool("kafka-dups", true, "read every topic back to count duplicate records")
		kafkaMaxLag  = flag.Duration("kafka-max-lag", time.Second, "a step counts as sustained only if the topic was complete within this long after the send ended")
		kafkaLinger  = flag.Duration("kafka-linger", 0, "trawl's kafka sink linger (0 = trawl's default)")
		kafkaBatch   = flag.Int("kafka-batch-max-bytes", 0, "trawl's kafka sink batch_max_bytes (0 = trawl's default)")
		kafkaMaxBuf  = flag.Int("kafka-max-buffered", 0, "trawl's kafka sink max_buffered_records (0 = trawl's default)")
		goflow2Kafka = flag.String("goflow2-kafka-args", "", "extra goflow2 arguments in Kafka mode, blank-separated")
		kafkaJVM     = flag.String("kafka-jvm", "", "the broker's JVM flags, recorded in the report")
		sinkBench    = flag.String("sink-bench", "", "go test output of BenchmarkSinkToBroker to include in the Kafka report")
		kafkaProf    = flag.String("kafka-profile", "", "Kafka mode: save a CPU profile of trawl per step into this directory")
		kafkaRetry   = flag.Bool("kafka-retry", true, "Kafka mode: run a step that was not sustained once more and keep the better attempt")
		stamp        = flag.String("stamp", "", "timestamp in the result file names (default: the start time, 20060102T150405Z)")
	)
	flag.Parse()
	var km *kafkaMode
	if *kafkaBrokers != "" {
		var err error
		if km, err = newKafkaMode(*kafkaBrokers, *kafkaParts, *kafkaPID); err != nil {
			fatal(err)
		}
		defer km.close()
		km.countDups, km.maxLag = *kafkaDups, *kafkaMaxLag
		km.linger, km.batchMaxBytes, km.maxBuffered = *kafkaLinger, *kafkaBatch, *kafkaMaxBuf
		km.goflow2Args = strings.Fields(*goflow2Kafka)
		km.trawlBin, km.goflow2Bin, km.profileDir = *trawlBin, *goflow2, *kafkaProf
		if !isFlagSet("tools") {
			*tools = strings.Join(kafkaTools, ",")
		}
		if !isFlagSet("formats") {
			*formats = "v5,v9"
		}
	}
	rateList := []float64{100e3, 200e3, 400e3, 800e3, 1.6e6, 2.4e6, 3.2e6, 4.8e6}
	if km != nil {
		rateList = []float64{50e3, 100e3, 200e3, 300e3, 400e3, 600e3}
	}
	step := 2 * time.Second
	if km != nil {
		// Longer than the flow steps: a collector that delivers more
		// slowly than it receives must fall clearly behind within a step.
		step = 3 * time.Second
	}
	if *long {
		rateList = []float64{250e3, 500e3, 1e6, 2e6, 4e6, 8e6, 16e6}
		step = 10 * time.Second
	}
	if *rates != "" {
		rateList = nil
		for _, s := range strings.Split(*rates, ",") {
			v, err := report.ParseRate(s)
			if err != nil {
				fatal(err)
			}
			rateList = append(rateList, v)
		}
	}
	if *stepDur > 0 {
		step = *stepDur
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	all := map[string]collector{
		"trawl":      &trawlTool{bin: *trawlBin},
		"trawl-none": &trawlTool{bin: *trawlBin, compression: "none"},
		"goflow2":    &goflow2Tool{bin: *goflow2},
		"goflow2-pb": &goflow2Tool{bin: *goflow2, pb: true},
		"nfcapd":     &nfcapdTool{bin: *nfcapd, nfdump: *nfdump},
		"sfcapd":     &nfcapdTool{bin: *sfcapd, nfdump: *nfdump, sflow: true},
		"nfacctd":    &pmacctTool{bin: lookSbin(*nfacctd)},
		"sfacctd":    &pmacctTool{bin: lookSbin(*sfacctd), sflow: true},
	}
	bins := map[string]string{"nfcapd": *nfcapd, "sfcapd": *sfcapd, "nfacctd": lookSbin(*nfacctd), "sfacctd": lookSbin(*sfacctd)}
	var toolNames []string
	for _, t := range strings.Split(*tools, ",") {
		if km != nil {
			if !slices.Contains(kafkaTools, t) {
				fatal(fmt.Errorf("unknown Kafka tool %q (want %s)", t, strings.Join(kafkaTools, ", ")))
			}
		} else if _, ok := all[t]; !ok {
			fatal(fmt.Errorf("unknown tool %q (want %s)", t, strings.Join(defaultTools, ", ")))
		} else if b, ok := bins[t]; ok && !isFlagSet("tools") {
			// The default list runs the peers that are installed.
			if _, err := exec.LookPath(b); err != nil {
				fmt.Fprintf(os.Stderr, "trawlbench: %s not found (%v), not running it\n", t, err)
				continue
			}
		}
		toolNames = append(toolNames, t)
	}
	var fmts []gen.Format
	for _, s := range strings.Split(*formats, ",") {
		f, err := gen.ParseFormat(s)
		if err != nil {
			fatal(err)
		}
		fmts = append(fmts, f)
	}
	rep := &Report{Time: time.Now().UTC(), Machine: machine(*trawlBin, *goflow2, *nfdump, lookSbin(*nfacctd)), Command: strings.Join(os.Args, " "),
		Long: *long, StepSec: step.Seconds(), Exporters: *exporters, GSO: *sendGSO, Rates: rateList}
	if km != nil {
		rep.Kafka = &KafkaSettings{Brokers: *kafkaBrokers, Partitions: km.partitions, MaxLagSec: km.maxLag.Seconds(),
			TrawlBatchMax: km.batchMaxBytes, TrawlMaxBuf: km.maxBuffered, BrokerJVM: *kafkaJVM,
			Goflow2Args: "-format bin -transport.kafka.compression zstd -transport.kafka.flushfreq " + goflow2FlushFreq + " " + strings.Join(km.goflow2Args, " ")}
		if km.linger > 0 {
			rep.Kafka.TrawlLinger = km.linger.String()
		}
		if *sinkBench != "" {
			sb, err := parseSinkBench(*sinkBench)
			if err != nil {
				fatal(err)
			}
			rep.Kafka.SinkBench = sb
		}
	}
	work, err := os.MkdirTemp("", "trawlbench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(work)
	if km != nil {
		fmt.Fprintln(os.Stderr, "warming up the broker for 5s")
		if err := km.warmUp(ctx, 5*time.Second); err != nil {
			fatal(err)
		}
	}

	for _, f := range fmts {
		for _, tn := range toolNames {
			if km == nil && !all[tn].Supports(f) {
				continue
			}
			for r := 0; r < *reps; r++ {
				for _, rate := range rateList {
					if ctx.Err() != nil {
						break
					}
					var st Step
					if km != nil {
						st = runKafkaStep(ctx, km, tn, f, r, rate, step, *exporters, work)
					} else {
						st = runStep(ctx, all[tn], tn, f, r, rate, step, *exporters, work)
					}
					fmt.Fprintf(os.Stderr, "%-7s %-5s rep %d offered %7s achieved %7s sent %9d stored %9d loss %6.3f%% cpu %.2fs rss %d MiB%s\n",
						tn, f, r, human(rate), human(st.Sent.Rate), st.Sent.Flows, st.Stored, st.LossPct, st.CPUSeconds, st.PeakRSSKiB>>10, errSuffix(st))
					if km != nil && *kafkaRetry && !st.sustained() && ctx.Err() == nil {
						again := runKafkaStep(ctx, km, tn, f, r, rate, step, *exporters, work)
						fmt.Fprintf(os.Stderr, "%-7s %-5s rep %d offered %7s achieved %7s sent %9d stored %9d loss %6.3f%% cpu %.2fs rss %d MiB%s (again)\n",
							tn, f, r, human(rate), human(again.Sent.Rate), again.Sent.Flows, again.Stored, again.LossPct, again.CPUSeconds, again.PeakRSSKiB>>10, errSuffix(again))
						if again.betterThan(&st) {
							st, again = again, st
						}
						again.Discarded = true
						rep.Steps = append(rep.Steps, again)
					}
					rep.Steps = append(rep.Steps, st)
					if st.Error != "" || st.LossPct > *stopLoss || st.GenLimited {
						break
					}
					// A collector that could not deliver a step in time only
					// falls further behind at the next; this step already
					// measured its peak delivery rate.
					if st.Kafka != nil && !st.Kafka.CaughtUp {
						break
					}
				}
			}
		}
	}
	rep.Machine.LoadAtEnd = host.LoadAvg()
	rep.Summaries = summarize(kept(rep.Steps))
	ts := rep.Time.Format("20060102T150405Z")
	if *stamp != "" {
		ts = *stamp
	}
	prefix := "flows-"
	var md strings.Builder
	if km != nil {
		prefix = "kafka-"
		writeKafkaMarkdown(&md, rep)
	} else {
		writeMarkdown(&md, rep)
	}
	if err := report.Write(*outDir, prefix+ts, md.String(), rep); err != nil {
		fatal(err)
	}
	for _, f := range fmts {
		p := filepath.Join(*outDir, fmt.Sprintf("%s%s-%s.png", prefix, ts, f))
		var lines []string
		for _, tn := range toolNames {
			if km != nil || all[tn].Supports(f) {
				lines = append(lines, tn)
			}
		}
		if err := writePlot(p, f.String(), kept(rep.Steps), lines); err != nil {
			fatal(err)
		}
		fmt.Fprintln(os.Stderr, "plot:", p)
	}
	if ctx.Err() != nil {
		os.Exit(1)
	}
}

func errSuffix(st Step) string {
	s := ""
	if st.GenLimited {
		s += " (generator-limited)"
	}
	if k := st.Kafka; k != nil {
		s += fmt.Sprintf(" [kafka: records %d per partition %v dups %d (read back %v) done %.2fs after send, stopped at +%.2fs in %.2fs, %s flows/s delivered, broker cpu %.2fs; socket drops %d; others %.2f cores",
			k.Records, k.PerPartition, k.Duplicates, k.DupsRead, k.DoneAfterSendSec, k.StopAfterSendSec, k.StopSec, human(k.DeliveryRate), k.BrokerCPUSeconds, k.SocketDrops, k.OtherCores)
		if k.Goflow2Dropped+k.Goflow2DecodeErrors > 0 {
			s += fmt.Sprintf(", goflow2 dropped %d packets, %d decoder errors (%d template not found)", k.Goflow2Dropped, k.Goflow2DecodeErrors, k.Goflow2NoTemplate)
		}
		s += "]"
	}
	if st.Trawl != nil && st.Kafka != nil {
		s += fmt.Sprintf(" [trawl: received %d dropped %d sink delivered %d rejected %d]", st.Trawl.Received, st.Trawl.Dropped, st.Kafka.SinkDelivered, st.Kafka.SinkRejected)
	} else if st.Trawl != nil {
		s += fmt.Sprintf(" [metrics: received %d dropped %d upstream_lost %d (seq gap %d, socket %d) spooled %d true=%v ledger-actual loss %+d]",
			st.Trawl.Received, st.Trawl.Dropped, st.Trawl.UpstreamLost, st.Trawl.SeqGapLost, st.Trawl.SocketLost, st.Trawl.Spooled, st.Trawl.MetricsTrue, st.Trawl.LedgerMinusActual)
	}
	if st.Error != "" {
		s += " ERROR: " + st.Error
	}
	return s
}

// isFlagSet reports whether the command line set flag name.
func isFlagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "trawlbench:", err)
	os.Exit(1)
}

// human prints a rate as the tables, logs and file names show it: 1.6M,
// 200k ([plot.Human]).
func human(v float64) string { return plot.Human(v) }

func netipLoopback(port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
}

// runStep runs one collector at one rate. It never leaves the collector
// running: it is stopped cleanly, or killed.
func runStep(ctx context.Context, c collector, name string, f gen.Format, r int, rate float64, step time.Duration, exporters int, work string) (st Step) {
	st = Step{Tool: name, Format: f.String(), Rep: r, Offered: rate}
	dir, err := os.MkdirTemp(work, name+"-")
	if err != nil {
		st.Error = err.Error()
		return st
	}
	defer os.RemoveAll(dir)
	sp, err := startCollector(ctx, c, name, f, dir)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	cmd, pgid, port, exited := sp.cmd, sp.pgid, sp.port, sp.exited
	defer func() {
		sp.stop()
		if st.Error != "" {
			if tail := sp.logTail(); tail != "" {
				st.Error += ": " + tail
			}
		}
	}()
	flows := uint64(rate * step.Seconds())
	// The trailer (one packet per exporter once the collector is idle)
	// makes a loss in the last packets show as a sequence gap, so trawl's
	// ledger can be checked against the actual loss exactly.
	idle := func() { waitIdleFunc(ctx, exited, groupCPU(pgid), func() bool { return udpRxQueue(port) > 0 }) }
	res, err := gen.Send(ctx, gen.SendConfig{Format: f, Target: netipLoopback(port), Exporters: exporters, Flows: flows, Rate: rate, GSO: *sendGSO, Trailer: idle})
	st.Sent = res
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.GenLimited = res.Rate < 0.9*rate
	idle()
	cpu, rss := groupStats(pgid)
	st.CPUSeconds, st.PeakRSSKiB = cpu, rss
	if err := c.BeforeStop(&st); err != nil {
		st.Error = err.Error()
		return st
	}
	cmd.Process.Signal(c.Signal())
	select {
	case <-exited:
		if sp.waitErr != nil {
			// nfcapd and goflow2 may exit non-zero on a signal; what
			// they stored is still counted.
			fmt.Fprintf(os.Stderr, "note: %s exited with %v\n", name, sp.waitErr)
		}
	case <-time.After(60 * time.Second):
		st.Error = fmt.Sprintf("%s did not stop within 60s of %v", name, c.Signal())
		return st
	}
	// The main process reaped what it waited for (pmacct: the plugin,
	// which reaped its writers); a writer it did not wait for still runs
	// in the group, maybe still writing, so counting waits for it.
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = max(cpu, tvSec(ru.Utime)+tvSec(ru.Stime))
		st.CPUSeconds = cpu
	}
	if err := waitGroupGone(ctx, pgid, 60*time.Second); err != nil {
		st.Error = fmt.Sprintf("%s: %v", name, err)
		return st
	}
	n, err := c.Count(ctx, dir, &st)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Stored = n
	if res.Flows > 0 {
		st.LossPct = 100 * (1 - float64(n)/float64(res.Flows))
	}
	if n > 0 {
		st.CPUPerMFlows = cpu / float64(n) * 1e6
	}
	return st
}

// readier is a collector that is ready some time after it listens.
type readier interface {
	// Ready returns once the collector started in dir is ready, or an
	// error when it is not within 20 s or exited (exited is closed).
	Ready(ctx context.Context, dir string, exited <-chan struct{}) error
}

// started is a collector process of one step, in a process group of its
// own (pmacct forks a plugin and writers, which are measured, waited for
// and, on failure, killed with it).
type started struct {
	cmd     *exec.Cmd
	pgid    int
	port    int
	exited  chan struct{} // closed once cmd.Wait returned, waitErr set
	waitErr error
	logf    *os.File
}

// exitedEarlyError is startCollector's error when the collector exited
// before it listened.
type exitedEarlyError struct{ err error }

func (e *exitedEarlyError) Error() string { return e.err.Error() }
func (e *exitedEarlyError) Unwrap() error { return e.err }

// startCollector starts c for format f with its files in dir, on a port
// that was free, and returns once it listens and is ready (trawl: healthy;
// a readier: Ready). On error nothing of it is left running, and the error
// ends with its log.
//
// A port that was free a moment ago can be taken by another program before
// the collector binds it; the collector then exits at once, and is started
// again on another port, twice at most.
func startCollector(ctx context.Context, c collector, name string, f gen.Format, dir string) (*started, error) {
	for attempt := 1; ; attempt++ {
		sp, err := startOnce(ctx, c, name, f, dir)
		var early *exitedEarlyError
		if err == nil || !errors.As(err, &early) || attempt == 3 || ctx.Err() != nil {
			return sp, err
		}
		fmt.Fprintf(os.Stderr, "note: %v; starting it again on another port\n", err)
	}
}

// startOnce is one attempt of startCollector.
func startOnce(ctx context.Context, c collector, name string, f gen.Format, dir string) (*started, error) {
	port, err := peer.FreePort("udp")
	if err != nil {
		return nil, err
	}
	cmd, err := c.Start(ctx, f, port, dir)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	sp := &started{cmd: cmd, pgid: cmd.Process.Pid, port: port, exited: make(chan struct{}), logf: logf}
	go func() { sp.waitErr = cmd.Wait(); close(sp.exited) }()
	err = waitUDPBound(ctx, cmd, sp.exited, port)
	if t, ok := c.(*trawlTool); ok && err == nil {
		err = t.ready(ctx)
	}
	if r, ok := c.(readier); ok && err == nil {
		err = r.Ready(ctx, dir, sp.exited)
	}
	if err == nil {
		return sp, nil
	}
	select {
	case <-sp.exited:
		err = &exitedEarlyError{err}
	default:
	}
	sp.stop()
	if tail := sp.logTail(); tail != "" {
		return nil, fmt.Errorf("%w: %s", err, tail)
	}
	return nil, err
}

// stop kills whatever is left of the collector and closes its log.
func (sp *started) stop() {
	select {
	case <-sp.exited:
	default:
		sp.cmd.Process.Kill()
		<-sp.exited
	}
	syscall.Kill(-sp.pgid, syscall.SIGKILL) // leftovers of a failed step; ESRCH when none
	sp.logf.Close()
}

// logTail returns the last lines of the collector's log.
func (sp *started) logTail() string {
	b, _ := os.ReadFile(sp.logf.Name())
	if len(b) == 0 {
		return ""
	}
	return lastLines(string(b), 5)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// waitIdle returns once the process used less than 20 ms of CPU in 300 ms
// (it has drained its socket and written out), or after 30 s.
func waitIdle(ctx context.Context, pid int, exited <-chan struct{}) {
	waitIdleFunc(ctx, exited, func() float64 { cpu, _ := procStats(pid); return cpu }, nil)
}

// waitIdleFunc is waitIdle with the CPU seconds so far read by cpuNow,
// and, unless nil, pending reporting work still waiting for the collector
// (datagrams in its socket): then it is not idle, whatever its CPU use,
// as other processes may have kept it off the CPU for a moment.
func waitIdleFunc(ctx context.Context, exited <-chan struct{}, cpuNow func() float64, pending func() bool) {
	last := cpuNow()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-exited:
			return
		case <-time.After(300 * time.Millisecond):
		}
		cpu := cpuNow()
		if cpu-last < 0.02 && (pending == nil || !pending()) {
			return
		}
		last = cpu
	}
}

// clockTicks is USER_HZ, the unit of /proc's CPU times (kafka.go reads
// /proc/stat in it).
const clockTicks = peer.ClockTicks

// procStats returns the process's utime+stime in seconds and VmHWM in KiB
// ([peer.ProcStats]).
func procStats(pid int) (cpu float64, hwmKiB uint64) { return peer.ProcStats(pid) }

func machine(trawlBin, goflow2, nfdump, nfacctd string) Machine {
	var vs []string
	for _, c := range [][]string{{trawlBin, "version"}, {nfdump, "-V"}} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err == nil {
			vs = append(vs, lastLines(string(out), 1))
		}
	}
	// nfacctd -V: "NetFlow Accounting Daemon, nfacctd 1.7.7-git [RELEASE]",
	// then its build options.
	if out, err := exec.Command(nfacctd, "-V").CombinedOutput(); err == nil {
		if l, _, _ := strings.Cut(string(out), "\n"); strings.Contains(l, "nfacctd") {
			vs = append(vs, "pmacct "+strings.TrimSpace(l[strings.LastIndex(l, ",")+1:]))
		}
	}
	// go install leaves goflow2 -v without a version; the build info has it.
	if out, err := exec.Command("go", "version", "-m", goflow2).Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "mod" {
				vs = append(vs, "goflow2 "+f[2])
			}
		}
	}
	return host.Describe(vs...)
}

// summarize groups steps by tool and format.
func summarize(steps []Step) []Summary {
	type key struct{ tool, format string }
	var out []Summary
	for _, row := range report.Rows(steps, func(s *Step) key { return key{s.Tool, s.Format} }, func(s *Step) int { return s.Rep }) {
		sum := Summary{Tool: row.Key.tool, Format: row.Key.format}
		var cpus, brokerCPUs []float64
		for _, ss := range row.Reps {
			for _, s := range ss {
				sum.PeakRSSKiB = max(sum.PeakRSSKiB, s.PeakRSSKiB)
				sum.GenLimited = sum.GenLimited || s.GenLimited
				if s.Kafka != nil && s.Error == "" {
					sum.PeakDeliveryRate = max(sum.PeakDeliveryRate, s.Kafka.DeliveryRate)
					sum.Duplicates += s.Kafka.Duplicates
				}
			}
			best := 0.0
			var bestStep *Step
			sort.Slice(ss, func(i, j int) bool { return ss[i].Offered < ss[j].Offered })
			for i := range ss {
				if !ss[i].sustained() {
					break
				}
				best, bestStep = ss[i].Sent.Rate, &ss[i]
			}
			sum.MaxRate = append(sum.MaxRate, best)
			if bestStep == nil && len(ss) > 0 && ss[0].Error == "" {
				bestStep = &ss[0]
			}
			if bestStep != nil && bestStep.CPUPerMFlows > 0 {
				cpus = append(cpus, bestStep.CPUPerMFlows)
				if bestStep.Kafka != nil {
					brokerCPUs = append(brokerCPUs, bestStep.Kafka.BrokerCPUPerMFlows)
				}
			}
		}
		sum.CPUPerMFlows = report.Median(cpus)
		sum.BrokerCPUPerMFlows = report.Median(brokerCPUs)
		out = append(out, sum)
	}
	return out
}
