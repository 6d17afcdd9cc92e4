package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/trawlsec/trawl/bench/report"
)

// writeMarkdown prints the summary table and the loss curve table.
func writeMarkdown(w io.Writer, rep *Report) {
	m := rep.Machine
	fmt.Fprintf(w, "Flow collectors side by side (%s): %s; net.core.rmem_max %s; %g s steps, %d exporters%s.\n",
		rep.Time.Format("2006-01-02T15:04:05Z"), m.Summary(), m.RmemMax, rep.StepSec, rep.Exporters, gsoText(rep))
	if m.Versions != "" {
		fmt.Fprintf(w, "Versions: %s.\n", m.Versions)
	}
	fmt.Fprintln(w)
	reps := 0
	for _, s := range rep.Steps {
		reps = max(reps, s.Rep+1)
	}
	rateHdr := "max flows/s with loss < 0.1%"
	if reps > 1 {
		rateHdr += " (min / median / max)"
	}
	fmt.Fprintf(w, "| format | tool | %s | CPU s per M flows | peak RSS MiB | notes |\n|---|---|---:|---:|---:|---|\n", rateHdr)
	for _, s := range rep.Summaries {
		var notes []string
		if s.GenLimited {
			notes = append(notes, "generator-limited at the top step")
		}
		bad, errs, over, under, counted := 0, 0, 0, 0, 0
		var worst int64
		for _, st := range rep.Steps {
			if st.Tool == s.Tool && st.Format == s.Format {
				if st.Trawl != nil {
					counted++
				}
				if st.Trawl != nil && !st.Trawl.MetricsTrue {
					bad++
				}
				if st.Trawl != nil && st.Error == "" {
					d := st.Trawl.LedgerMinusActual
					if d > 0 {
						over++
					} else if d < 0 {
						under++
					}
					if d*d > worst*worst {
						worst = d
					}
				}
				if st.Error != "" {
					errs++
				}
			}
		}
		if counted > 0 {
			if bad > 0 {
				notes = append(notes, fmt.Sprintf("**metrics disagree with the spool in %d steps**", bad))
			} else {
				notes = append(notes, "metrics = spool in every step")
			}
			est := ""
			if s.Format == "v9" {
				est = ", estimated: v9 sequence numbers count packets"
			}
			if over+under == 0 {
				notes = append(notes, "lost flows in the ledger = actual loss in every step"+est)
			} else {
				notes = append(notes, fmt.Sprintf("lost flows in the ledger ≠ actual loss in %d steps (%d over, %d under; worst %+d flows%s)", over+under, over, under, worst, est))
			}
		}
		if errs > 0 {
			notes = append(notes, fmt.Sprintf("%d steps failed (see JSON)", errs))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.2f | %.0f | %s |\n", s.Format, s.Tool, rateCell(s.MaxRate), s.CPUPerMFlows, float64(s.PeakRSSKiB)/1024, strings.Join(notes, "; "))
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "Loss % by offered rate (achieved generator rate in brackets when it fell short by more than 10%; – = not run, the tool had already failed at a lower rate):\n\n| format | tool |")
	for _, r := range rep.Rates {
		fmt.Fprintf(w, " %s |", human(r))
	}
	fmt.Fprint(w, "\n|---|---|")
	for range rep.Rates {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, s := range rep.Summaries {
		fmt.Fprintf(w, "| %s | %s |", s.Format, s.Tool)
		for _, r := range rep.Rates {
			var losses []float64
			var ach []float64
			failed := false
			for _, st := range rep.Steps {
				if st.Tool == s.Tool && st.Format == s.Format && st.Offered == r {
					if st.Error != "" {
						failed = true
						continue
					}
					losses = append(losses, st.LossPct)
					ach = append(ach, st.Sent.Rate)
				}
			}
			switch {
			case len(losses) == 0 && failed:
				fmt.Fprint(w, " error |")
			case len(losses) == 0:
				fmt.Fprint(w, " – |")
			default:
				cell := fmt.Sprintf("%.3g", report.Median(losses))
				if a := report.Median(ach); a < 0.9*r {
					cell += " [" + human(a) + "]"
				}
				fmt.Fprintf(w, " %s |", cell)
			}
		}
		fmt.Fprintln(w)
	}
}

// rateCell prints a tool's max rate, one per repetition (min / median /
// max of several); 0, no step sustained, as "< lowest step".
func rateCell(v []float64) string {
	return report.Spread(v, func(x float64) string {
		if x == 0 {
			return "< lowest step"
		}
		return human(x)
	})
}

// writeKafkaMarkdown prints the -kafka mode's tables: per tool and format
// the sustained rate, the peak delivery rate and CPU; then each step's
// loss and delivery delay; then BenchmarkSinkToBroker's results if given.
func writeKafkaMarkdown(w io.Writer, rep *Report) {
	m, k := rep.Machine, rep.Kafka
	if k == nil {
		k = &KafkaSettings{}
	}
	fmt.Fprintf(w, "Flow collectors into Kafka (%s): %s; %g s steps, %d exporters%s.\n",
		rep.Time.Format("2006-01-02T15:04:05Z"), m.Summary(), rep.StepSec, rep.Exporters, gsoText(rep))
	if m.Versions != "" {
		fmt.Fprintf(w, "Versions: %s.\n", m.Versions)
	}
	fmt.Fprintf(w, "Broker %s on the same machine, one fresh topic of %d partitions per step", k.Brokers, k.Partitions)
	if k.BrokerJVM != "" {
		fmt.Fprintf(w, ", JVM flags `%s`", k.BrokerJVM)
	}
	fmt.Fprintln(w, ".")
	sink := "defaults"
	var ov []string
	if k.TrawlLinger != "" {
		ov = append(ov, "linger "+k.TrawlLinger)
	}
	if k.TrawlBatchMax > 0 {
		ov = append(ov, fmt.Sprintf("batch_max_bytes %d", k.TrawlBatchMax))
	}
	if k.TrawlMaxBuf > 0 {
		ov = append(ov, fmt.Sprintf("max_buffered_records %d", k.TrawlMaxBuf))
	}
	if len(ov) > 0 {
		sink = strings.Join(ov, ", ")
	}
	fmt.Fprintf(w, "trawl: kafka sink, %s (acks=all, idempotent); trawl-pb and trawl-json: one record per flow, zstd batches, keyed by exporter; trawl-frame: one record per spool frame (`encoding: frame`), keyed by input, %s; goflow2: `%s` (sarama: acks=1, round-robin).\n",
		sink, frameCompression(rep), strings.TrimSpace(k.Goflow2Args))
	fmt.Fprintf(w, "Delivered = distinct flows in the topic after the collector stopped (trawl-frame: the flows in the frames, decoded); a step is sustained when it lost < 0.1%% and the topic was complete within %gs of the end of the send.\n", k.MaxLagSec)
	var others, worst float64
	n := 0
	for _, st := range rep.Steps {
		if st.Kafka != nil && !st.Discarded {
			others += st.Kafka.OtherCores
			worst = max(worst, st.Kafka.OtherCores)
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(w, "Other processes on the machine used %.2f cores on average during the steps (at most %.2f).\n", others/float64(n), worst)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "| format | tool | max sustained flows/s | peak delivered flows/s | collector CPU s per M flows | broker CPU s per M flows | peak RSS MiB | duplicates | notes |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, s := range rep.Summaries {
		var notes []string
		if s.GenLimited {
			notes = append(notes, "generator-limited at the top step")
		}
		errs, disagree, retried := 0, 0, 0
		for _, st := range rep.Steps {
			if st.Tool != s.Tool || st.Format != s.Format {
				continue
			}
			if st.Discarded {
				retried++
				continue
			}
			if st.Error != "" {
				errs++
			}
			if st.Trawl != nil && st.Error == "" && !st.Trawl.MetricsTrue {
				disagree++
			}
		}
		if disagree > 0 {
			notes = append(notes, fmt.Sprintf("**trawl's sink counters disagree with the broker in %d steps**", disagree))
		}
		if errs > 0 {
			notes = append(notes, fmt.Sprintf("%d steps failed (see JSON)", errs))
		}
		if retried > 0 {
			notes = append(notes, fmt.Sprintf("%d steps run twice, the better kept", retried))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f | %.2f | %.0f | %d | %s |\n", s.Format, s.Tool, rateCell(s.MaxRate), human(s.PeakDeliveryRate),
			s.CPUPerMFlows, s.BrokerCPUPerMFlows, float64(s.PeakRSSKiB)/1024, s.Duplicates, strings.Join(notes, "; "))
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "Each step: loss %, then seconds from the end of the send until the topic was complete; (others N): other processes used N cores on average meanwhile; – = not run:\n\n| format | tool |")
	for _, r := range rep.Rates {
		fmt.Fprintf(w, " %s |", human(r))
	}
	fmt.Fprint(w, "\n|---|---|")
	for range rep.Rates {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, s := range rep.Summaries {
		fmt.Fprintf(w, "| %s | %s |", s.Format, s.Tool)
		for _, r := range rep.Rates {
			cell := "–"
			for _, st := range rep.Steps {
				if st.Tool != s.Tool || st.Format != s.Format || st.Offered != r || st.Rep != 0 || st.Discarded {
					continue
				}
				switch {
				case st.Error != "":
					cell = "error"
				case st.Kafka != nil:
					cell = fmt.Sprintf("%.3g%% %.1fs", st.LossPct, st.Kafka.DoneAfterSendSec)
					if st.Sent.Rate < 0.9*r {
						cell += " [" + human(st.Sent.Rate) + "]"
					}
					if st.Kafka.OtherCores >= 0.2 {
						cell += fmt.Sprintf(" (others %.1f)", st.Kafka.OtherCores)
					}
				}
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
	if len(k.SinkBench) > 0 {
		fmt.Fprint(w, "\ntrawl's sink alone: each run a new sink drains a prefilled spool of 400,000 flow events (ten times over for the frame encoding) into a fresh topic, acks=all (`go test -run '^$' -bench BenchmarkSinkToBroker ./sinks/kafka/`):\n\n| benchmark | events/s | sink CPU s per M events | broker CPU s per M events | record bytes per event | s per run | runs |\n|---|---:|---:|---:|---:|---:|---:|\n")
		cell := func(v float64) string {
			if v == 0 {
				return ""
			}
			return fmt.Sprintf("%.3g", v)
		}
		for _, b := range k.SinkBench {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.2f | %d |\n", b.Name, human(b.EventsPS), cell(b.CPUPerMEvents), cell(b.BrokerCPUPerMEvents), cell(b.ValueBytesPerEvent), b.NsPerOp/1e9, b.Iter)
		}
	}
}

// frameCompression says where the trawl-frame rows were compressed: inside
// the frames (frames.compression) and in the Kafka record batches.
func frameCompression(rep *Report) string {
	frames, batches := "s2", "none"
	for _, st := range rep.Steps {
		if st.Tool != "trawl-frame" || st.Kafka == nil {
			continue
		}
		if st.Kafka.FramesCompression != "" {
			frames = st.Kafka.FramesCompression
		}
		if st.Kafka.BatchCompression != "" {
			batches = st.Kafka.BatchCompression
		}
	}
	return fmt.Sprintf("frames compressed %s, record batches %s", frames, batches)
}

// gsoText says how the generator sent, when it used UDP GSO.
func gsoText(rep *Report) string {
	if !rep.GSO {
		return ""
	}
	return " (each exporter's runs of equal-size packets sent as one UDP GSO send: collectors with UDP_GRO get a run as one buffer, as from a NIC's GRO; others get the packets one by one)"
}
