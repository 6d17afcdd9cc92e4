package main

import (
	"bytes"
	"cmp"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trawlsec/trawl/config"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/sinks/kafka/kafkatest"
)

// TestTrawlKafkaConfig: the configuration the harness gives trawl passes
// trawl's own validation and says what the harness means.
func TestTrawlKafkaConfig(t *testing.T) {
	f := func(enc, framesComp, comp string, linger time.Duration, batch, buf int) {
		t.Helper()
		tc := trawlKafka{data: "/tmp/x", http: "127.0.0.1:9470", port: 2055, brokers: []string{"127.0.0.1:9092", "127.0.0.1:9093"}, topic: "bench.t.v9",
			enc: enc, framesCompression: framesComp, compression: comp, linger: linger, batchMax: batch, maxBuf: buf}
		text := tc.config()
		c, err := config.Parse([]byte(text), "bench")
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		if len(c.Sinks) != 1 {
			t.Fatalf("%d sinks", len(c.Sinks))
		}
		s := c.Sinks[0]
		if s.Type != config.SinkKafka || s.Name != "kafka" || s.Encoding != enc || s.Topics["flow"] != "bench.t.v9" ||
			strings.Join(s.Brokers, ",") != "127.0.0.1:9092,127.0.0.1:9093" {
			t.Fatalf("sink %+v", s)
		}
		if linger > 0 && s.Linger.D() != linger || batch > 0 && int(s.BatchMaxBytes) != batch || buf > 0 && s.MaxBufferedRecords != buf || s.Compression != comp {
			t.Fatalf("sink settings %+v", s)
		}
		// Empty means trawl's default frames compression, s2.
		if want := cmp.Or(framesComp, "s2"); c.Frames.Compression != want {
			t.Fatalf("frames.compression %q, want %q", c.Frames.Compression, want)
		}
		if c.Node.ShutdownGrace.D() < 30*time.Second {
			t.Fatalf("shutdown_grace %v leaves the sink too little time to deliver its backlog", c.Node.ShutdownGrace.D())
		}
		if in, ok := c.Inputs["nf"]; !ok || in.Listen != "127.0.0.1:2055" {
			t.Fatalf("inputs %+v", c.Inputs)
		}
	}
	f("protobuf", "", "", 0, 0, 0)
	f("json", "", "", 20*time.Millisecond, 4<<20, 500000)
	f("frame", "", "", 0, 0, 0)
	f("frame", "fastest", "", 0, 0, 0)
	f("frame", "", "zstd", 0, 0, 0)
}

// TestBetterThan: of two attempts at a step, a sustained one wins, then
// the one with less loss, then the one that delivered sooner.
func TestBetterThan(t *testing.T) {
	mk := func(loss, done float64, caught bool) *Step {
		return &Step{LossPct: loss, Kafka: &KafkaCounts{DoneAfterSendSec: done, CaughtUp: caught}}
	}
	f := func(a, b *Step, want bool) {
		t.Helper()
		if a.betterThan(b) != want || want && b.betterThan(a) {
			t.Fatalf("%+v better than %+v: got %v, want %v", a.Kafka, b.Kafka, a.betterThan(b), want)
		}
	}
	f(mk(0, 0.5, true), mk(0, 3, false), true)
	f(mk(0.05, 0.9, true), mk(0, 0.3, true), false)
	f(mk(1, 9, false), mk(2, 1, false), true)
	f(mk(0, 2, false), mk(0, 3, false), true)
	errStep := mk(0, 0.1, true)
	errStep.Error = "boom"
	f(mk(50, 9, false), errStep, true)
}

func TestUDPDrops(t *testing.T) {
	text := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 0100007F:0807 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 17
  101: 0100007F:0807 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 3
  102: 00000000:0807 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 100
  103: 0100007F:0808 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 5
`
	p := filepath.Join(t.TempDir(), "udp")
	os.WriteFile(p, []byte(text), 0o644)
	if n := udpDrops(p, 2055); n != 20 {
		t.Fatalf("udpDrops = %d, want 20", n)
	}
}

func TestPromValues(t *testing.T) {
	text := `# HELP x
trawl_input_received_events_total{input="nf"} 1000
trawl_input_dropped_events_total{input="nf",reason="ring_full"} 3
trawl_input_dropped_events_total{input="nf",reason="decode"} 2
trawl_sink_delivered_events_total{sink="kafka"} 990
trawl_sink_lag_events{sink="kafka"} 5
trawl_sink_rejected_events_total{sink="kafka"} 1
go_goroutines 12
`
	m := promValues(strings.NewReader(text))
	if m[`trawl_sink_delivered_events_total{sink="kafka"}`] != 990 || m["go_goroutines"] != 12 || m[`trawl_sink_lag_events{sink="kafka"}`] != 5 {
		t.Fatalf("%v", m)
	}
}

func TestParseSinkBench(t *testing.T) {
	out := `goos: linux
BenchmarkSinkToBroker/protobuf-2         	       3	1733333333 ns/op	    230769 events/s	  12 B/op
BenchmarkSinkToBroker/json-2             	       3	2400000000 ns/op	    166666 events/s
BenchmarkSinkToBroker/frame-s2-2         	       3	  67753290 ns/op	         0.1833 broker-cpu-s/Mevents	         0.07565 cpu-s/Mevents	   5903772 events/s	        27.22 value-B/event
PASS
`
	p := filepath.Join(t.TempDir(), "out.txt")
	os.WriteFile(p, []byte(out), 0o644)
	sb, err := parseSinkBench(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(sb) != 3 || sb[0].Name != "BenchmarkSinkToBroker/protobuf-2" || sb[0].EventsPS != 230769 || sb[0].Iter != 3 ||
		sb[0].NsPerOp != 1733333333 || sb[0].Other != "12 B/op" || sb[1].EventsPS != 166666 {
		t.Fatalf("%+v", sb)
	}
	if f := sb[2]; f.EventsPS != 5903772 || f.CPUPerMEvents != 0.07565 || f.BrokerCPUPerMEvents != 0.1833 || f.ValueBytesPerEvent != 27.22 || f.Other != "" {
		t.Fatalf("%+v", f)
	}
	os.WriteFile(p, []byte("PASS\n"), 0o644)
	if _, err := parseSinkBench(p); err == nil {
		t.Fatal("no results was not an error")
	}
}

// TestSummarizeKafka: a step that lost nothing but finished delivering
// long after the send (trawl's spool absorbing the rate) is not
// sustained, and stops the sustained range; the peak delivery rate and
// the broker's CPU are summarized.
func TestSummarizeKafka(t *testing.T) {
	var steps []Step
	add := func(tool string, rate, loss, deliv float64, caught bool, dups uint64) {
		st := Step{Tool: tool, Format: "v9", Offered: rate, LossPct: loss, CPUPerMFlows: rate / 1e5,
			Kafka: &KafkaCounts{CaughtUp: caught, DeliveryRate: deliv, BrokerCPUPerMFlows: rate / 2e5, Duplicates: dups, DoneAfterSendSec: 0.3}}
		st.Sent.Rate = rate
		steps = append(steps, st)
	}
	add("trawl-pb", 100e3, 0, 99e3, true, 0)
	add("trawl-pb", 200e3, 0, 198e3, true, 0)
	add("trawl-pb", 400e3, 0, 250e3, false, 0)
	add("goflow2-pb", 100e3, 0, 99e3, true, 2)
	add("goflow2-pb", 200e3, 30, 140e3, true, 1)
	// A first attempt at trawl's 400k that another process slowed down.
	worse := steps[2]
	worse.Kafka = &KafkaCounts{DeliveryRate: 900e3, DoneAfterSendSec: 9, OtherCores: 1.5}
	worse.Discarded = true
	steps = append(steps, worse)
	steps[0].Kafka.OtherCores = 0.5
	sums := summarize(kept(steps))
	if len(sums) != 2 {
		t.Fatalf("%d summaries", len(sums))
	}
	if s := sums[0]; s.MaxRate[0] != 200e3 || s.PeakDeliveryRate != 250e3 || s.CPUPerMFlows != 2 || s.BrokerCPUPerMFlows != 1 {
		t.Errorf("trawl %+v", s)
	}
	if s := sums[1]; s.MaxRate[0] != 100e3 || s.PeakDeliveryRate != 140e3 || s.Duplicates != 3 || s.BrokerCPUPerMFlows != 0.5 {
		t.Errorf("goflow2 %+v", s)
	}
	var md bytes.Buffer
	writeKafkaMarkdown(&md, &Report{Rates: []float64{100e3, 200e3, 400e3}, Steps: steps, Summaries: sums,
		Kafka: &KafkaSettings{Brokers: "127.0.0.1:9092", Partitions: 3, MaxLagSec: 1, SinkBench: []SinkBench{{Name: "BenchmarkSinkToBroker/protobuf-2", EventsPS: 230e3, NsPerOp: 1.7e9, Iter: 3, CPUPerMEvents: 2.73, BrokerCPUPerMEvents: 1.51}}}})
	for _, w := range []string{"| v9 | trawl-pb | 200k | 250k | 2.00 | 1.00 |", "| v9 | goflow2-pb | 100k | 140k | 1.00 | 0.50 | 0 | 3 |",
		"| v9 | trawl-pb | 0% 0.3s (others 0.5) | 0% 0.3s | 0% 0.3s |", "| v9 | goflow2-pb | 0% 0.3s | 30% 0.3s | – |",
		"1 steps run twice, the better kept", "used 0.10 cores on average during the steps (at most 0.50)",
		"| BenchmarkSinkToBroker/protobuf-2 | 230k | 2.73 | 1.51 |  | 1.70 | 3 |"} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("markdown lacks %q:\n%s", w, md.String())
		}
	}
}

// TestBrokerCounting: against a real broker, the harness's topic
// creation, end offsets and read-back count what was produced, and the
// read-back finds duplicates that the end offsets cannot tell apart.
func TestBrokerCounting(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker")
	}
	c := kafkatest.Start(t, 1)
	km, err := newKafkaMode(strings.Join(c.Seeds(), ","), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer km.close()
	ctx := context.Background()
	const topic = "bench.counting"
	if err := km.createTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const unique, dups = 3000, 250
	var recs []*kgo.Record
	for i := 0; i < unique+dups; i++ {
		v := i
		if i >= unique {
			v = i % 97 // a repeat of an earlier value
		}
		recs = append(recs, &kgo.Record{Value: []byte("flow-" + strconv.Itoa(v))})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	n, per, err := km.endOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if n != unique+dups || len(per) != 3 || per[0]+per[1]+per[2] != unique+dups || per[0] == 0 || per[1] == 0 || per[2] == 0 {
		t.Fatalf("end offsets %d %v, want %d over 3 partitions", n, per, unique+dups)
	}
	u, err := km.countUnique(ctx, topic, per)
	if err != nil {
		t.Fatal(err)
	}
	if u != unique {
		t.Fatalf("countUnique = %d, want %d", u, unique)
	}
	km.deleteTopic(topic)

	// A trawl-frame topic: events are counted inside the frames, and a
	// frame produced twice repeats its events.
	const ftopic = "bench.frames"
	if err := km.createTopic(ctx, ftopic); err != nil {
		t.Fatal(err)
	}
	enc, err := frame.NewEncoder(frame.EncoderOptions{Level: frame.LevelS2})
	if err != nil {
		t.Fatal(err)
	}
	var frecs []*kgo.Record
	var b frame.Builder
	for f := range 6 {
		b.Reset()
		for i := range 500 {
			ev := event.Event{Kind: event.KindFlow, RecvTime: int64(f*500 + i), Flow: event.Flow{SequenceNum: uint32(f*500 + i), Bytes: 100}}
			b.Add(event.AppendBinary(nil, &ev))
		}
		fr, err := enc.AppendFrame(nil, frame.Header{Kind: event.KindFlow, FirstSeq: uint64(f * 500), Input: []byte("nf")}, &b)
		if err != nil {
			t.Fatal(err)
		}
		frecs = append(frecs, &kgo.Record{Topic: ftopic, Value: fr})
	}
	frecs = append(frecs, &kgo.Record{Topic: ftopic, Value: frecs[2].Value}) // a repeat
	if err := prod.ProduceSync(ctx, frecs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	n, per, err = km.endOffsets(ctx, ftopic)
	if err != nil || n != 7 {
		t.Fatalf("end offsets %d, %v; want 7 frames", n, err)
	}
	var size uint64
	for _, r := range frecs {
		size += uint64(len(r.Value))
	}
	fc, err := km.countFrameEvents(ctx, ftopic, per, true)
	if err != nil || fc.events != 3500 || fc.unique != 3000 || fc.bytes != size {
		t.Fatalf("countFrameEvents = %+v, %v; want 3500 events, 3000 distinct, %d bytes", fc, err, size)
	}
	if fc, err := km.countFrameEvents(ctx, ftopic, per, false); err != nil || fc.events != 3500 || fc.unique != 0 {
		t.Fatalf("countFrameEvents without distinct = %+v, %v", fc, err)
	}
	// Anything else in the topic is an error, not a count.
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: ftopic, Value: []byte("not a frame")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, per, _ = km.endOffsets(ctx, ftopic)
	if _, err := km.countFrameEvents(ctx, ftopic, per, false); err == nil || !strings.Contains(err.Error(), "is not a frame") {
		t.Fatalf("countFrameEvents over a non-frame record: %v", err)
	}
	km.deleteTopic(ftopic)
}
