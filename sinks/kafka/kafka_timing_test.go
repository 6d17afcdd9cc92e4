package kafka_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trawlsec/trawl/bench/host"
	"github.com/trawlsec/trawl/bench/peer"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/sinks/disk"
	"github.com/trawlsec/trawl/sinks/kafka"
	"github.com/trawlsec/trawl/sinks/kafka/kafkatest"
)

// BenchmarkSinkToBroker measures events/s the Kafka sink delivers from a
// spool into a real single-node broker on this machine (acks=all,
// idempotent): each iteration is a new sink (its own cursor) producing the
// whole spool (ten times over for the frame encoding, which drains it in
// a fraction of a second), 400,000 flow events in 100 frames, into a topic of 3
// partitions created beforehand (not timed), and waiting for every
// acknowledgement. The broker shares the machine's cores with the sink.
//
// Sub-benchmarks: protobuf and json, one record per event in zstd batches
// (the sink's default); frame-s2 and frame-zstd, one record per frame of
// the spool (frames compressed with S2, trawl's default, or zstd fastest)
// in uncompressed batches (the default for encoding frame);
// frame-s2-kzstd, S2 frames in zstd batches as well.
//
// Besides events/s each reports the CPU seconds per million events of
// this process (the sink and franz-go: cpu-s/Mevents) and of the broker
// (broker-cpu-s/Mevents), over the timed part, and the record value bytes
// per event (value-B/event).
//
//	go test -run '^$' -bench BenchmarkSinkToBroker -benchtime 3x ./sinks/kafka/
func BenchmarkSinkToBroker(b *testing.B) {
	cl := kafkatest.Start(b, 1)
	brokerPID, err := cl.PID(1)
	if err != nil {
		b.Fatal(err)
	}
	exporters := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3"), netip.MustParseAddr("198.51.100.4")}
	gen := func(i int) event.Event { return flowEvent(i, exporters[i%len(exporters)]) }
	const frames, per = 100, 4000
	spools := map[frame.Level]*disk.Spool{}
	frameBytes := map[frame.Level]int{}
	for _, level := range []frame.Level{frame.LevelS2, frame.LevelFastest} {
		sp, err := disk.Open(disk.Options{Dir: b.TempDir(), Fsync: disk.FsyncNever})
		if err != nil {
			b.Fatal(err)
		}
		defer sp.Close()
		for _, f := range appendInputFrames(b, sp, level, event.KindFlow, []string{"nf"}, frames, per, gen) {
			for _, fr := range f.frames {
				frameBytes[level] += len(fr)
			}
		}
		spools[level] = sp
	}
	adm, err := kgo.NewClient(kgo.SeedBrokers(cl.Seeds()...))
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	admin := kadm.NewClient(adm)

	for _, bc := range []struct {
		name        string
		enc         kafka.Encoding
		level       frame.Level // of the spool's frames
		compression string      // of record batches; "" is the sink's default
	}{
		{"protobuf", kafka.EncodingProtobuf, frame.LevelS2, ""},
		{"json", kafka.EncodingJSON, frame.LevelS2, ""},
		{"frame-s2", kafka.EncodingFrame, frame.LevelS2, ""},
		{"frame-zstd", kafka.EncodingFrame, frame.LevelFastest, ""},
		{"frame-s2-kzstd", kafka.EncodingFrame, frame.LevelS2, "zstd"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			run := 0
			var events uint64
			var cpu, brokerCPU time.Duration
			cpuOK := true
			// A frame sink drains the spool in a fraction of a second:
			// it runs more times per iteration, so that the timed part
			// is long enough to measure.
			rounds := 1
			if bc.enc == kafka.EncodingFrame {
				rounds = 10
			}
			for b.Loop() {
				for range rounds {
					b.StopTimer()
					run++
					set := metrics.NewSet()
					d, r := set.NewCounter("d"), set.NewCounter("r")
					name := fmt.Sprintf("bench-%s-%d-%d", bc.name, time.Now().UnixNano(), run)
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					if _, err := admin.CreateTopic(ctx, 3, 1, nil, name); err != nil {
						b.Fatalf("create topic %s: %v", name, err)
					}
					cancel()
					s, err := kafka.New(kafka.Options{Name: name, Seeds: cl.Seeds(), Spool: spools[bc.level], Encoding: bc.enc, Compression: bc.compression,
						Topics: map[event.Kind]string{event.KindFlow: name}, Registry: set, StopTimeout: time.Minute}, d, r, b.Logf)
					if err != nil {
						b.Fatal(err)
					}
					s.StopAtEnd()
					cpu0 := host.SelfCPU()
					bcpu0, bok := procCPUTime(brokerPID)
					b.StartTimer()
					if err := s.Run(context.Background()); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					cpu1 := host.SelfCPU()
					bcpu1, _ := procCPUTime(brokerPID)
					cpuOK = cpuOK && bok
					cpu += time.Duration((cpu1 - cpu0) * float64(time.Second))
					brokerCPU += bcpu1 - bcpu0
					if d.Get() != frames*per || r.Get() != 0 {
						b.Fatalf("delivered %d of %d, rejected %d", d.Get(), frames*per, r.Get())
					}
					events += d.Get()
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			if cpuOK && events > 0 {
				b.ReportMetric(cpu.Seconds()/float64(events)*1e6, "cpu-s/Mevents")
				b.ReportMetric(brokerCPU.Seconds()/float64(events)*1e6, "broker-cpu-s/Mevents")
			}
			if bc.enc == kafka.EncodingFrame {
				b.ReportMetric(float64(frameBytes[bc.level])/float64(frames*per), "value-B/event")
			}
		})
	}
}

// procCPUTime returns the user and system CPU time of process pid, and
// false when it cannot be read.
func procCPUTime(pid int) (time.Duration, bool) {
	st, err := peer.ReadStat(pid)
	if err != nil {
		return 0, false
	}
	return time.Duration(st.CPU() * float64(time.Second)), true
}
