package kafka_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	flowpb "github.com/netsampler/goflow2/v2/pb"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/sinks/disk"
	"github.com/trawlsec/trawl/sinks/kafka"
	"github.com/trawlsec/trawl/sinks/kafka/kafkatest"
)

// flowEvent is flow i of exporter exp.
func flowEvent(i int, exp netip.Addr) event.Event {
	var ev event.Event
	ev.Kind = event.KindFlow
	ev.RecvTime = 1_700_000_000_000_000_000 + int64(i)
	ev.Source = netip.AddrPortFrom(exp, 2055)
	ev.Flow = event.Flow{
		Type:           event.FlowNetFlow5,
		SequenceNum:    uint32(i),
		Bytes:          uint64(1000 + i),
		Packets:        uint64(1 + i%7),
		SrcAddr:        netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
		DstAddr:        netip.MustParseAddr("192.0.2.7"),
		SamplerAddress: exp,
		SrcPort:        uint16(1024 + i),
		DstPort:        443,
		Proto:          6,
	}
	return ev
}

func syslogEvent(i int) event.Event {
	var ev event.Event
	ev.Kind = event.KindSyslog
	ev.RecvTime = 1_700_000_000_000_000_000 + int64(i)
	ev.Source = netip.MustParseAddrPort("127.0.0.1:40000")
	ev.Syslog = event.Syslog{Facility: 4, Severity: 6, Version: 1, Hostname: []byte("web-1"), AppName: []byte("sshd"),
		Message: fmt.Appendf(nil, "Accepted publickey for user%d", i)}
	return ev
}

// fillSpool writes frames of n events each of kind k into sp; gen makes
// event i.
func fillSpool(t testing.TB, sp *disk.Spool, k event.Kind, frames, n int, gen func(int) event.Event) {
	t.Helper()
	enc, err := frame.NewEncoder(frame.EncoderOptions{Level: frame.LevelS2})
	if err != nil {
		t.Fatal(err)
	}
	var b frame.Builder
	var rec, out []byte
	for f := range frames {
		b.Reset()
		for j := range n {
			ev := gen(f*n + j)
			rec = event.AppendBinary(rec[:0], &ev)
			b.Add(rec)
		}
		out, err = enc.AppendFrame(out[:0], frame.Header{Kind: k, FirstSeq: uint64(f * n), Created: time.Now().UnixNano(), Input: []byte("in"), Observer: []byte("obs")}, &b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sp.Append(out); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Sync(); err != nil {
		t.Fatal(err)
	}
}

// runSink runs a sink over sp until it has delivered everything.
func runSink(t *testing.T, opts kafka.Options) (delivered, rejected uint64) {
	t.Helper()
	set := metrics.NewSet()
	d, r := set.NewCounter("delivered"), set.NewCounter("rejected")
	opts.Registry = set
	s, err := kafka.New(opts, d, r, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	s.StopAtEnd()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the sink did not finish")
	}
	return d.Get(), r.Get()
}

// consume reads topic from the start until it has want records.
func consume(t *testing.T, seeds []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: %d records after a minute, want %d", topic, len(recs), want)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestSinkToRealBroker produces flows (as goflow2 protobuf) and syslog (as
// ECS JSON) from a spool into a real broker and reads them back: every
// event exactly once, with its key, headers and a value goflow2's own
// FlowMessage type and a JSON parser read; kcat, a third-party client,
// reads the JSON topic too.
func TestSinkToRealBroker(t *testing.T) {
	cl := kafkatest.Start(t, 1)
	sp, err := disk.Open(disk.Options{Dir: t.TempDir(), Fsync: disk.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	exporters := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")}
	const frames, per = 20, 500
	fillSpool(t, sp, event.KindFlow, frames, per, func(i int) event.Event { return flowEvent(i, exporters[i%2]) })
	fillSpool(t, sp, event.KindSyslog, 2, 100, syslogEvent)

	pbTopics := map[event.Kind]string{event.KindFlow: "t1.flow", event.KindSyslog: "t1.syslog"}
	d, r := runSink(t, kafka.Options{Name: "pb", Seeds: cl.Seeds(), Spool: sp, Encoding: kafka.EncodingProtobuf, Topics: pbTopics})
	if d != frames*per+200 || r != 0 {
		t.Fatalf("delivered %d, rejected %d; want %d, 0", d, r, frames*per+200)
	}
	recs := consume(t, cl.Seeds(), "t1.flow", frames*per)
	seen := make(map[uint32]int)
	for _, rec := range recs {
		var m flowpb.FlowMessage
		if err := proto.Unmarshal(rec.Value, &m); err != nil {
			t.Fatalf("goflow2 cannot decode a record: %v", err)
		}
		i := int(m.SequenceNum)
		want := flowEvent(i, exporters[i%2])
		if m.Bytes != want.Flow.Bytes || m.SrcPort != uint32(want.Flow.SrcPort) || !bytes.Equal(m.SamplerAddress, want.Flow.SamplerAddress.AsSlice()) {
			t.Fatalf("flow %d read back as %v", i, &m)
		}
		if string(rec.Key) != want.Flow.SamplerAddress.String() {
			t.Fatalf("flow %d has key %q, want its exporter", i, rec.Key)
		}
		if header(rec, "trawl.encoding") != "goflow2-flowmessage" || header(rec, "trawl.kind") != "flow" {
			t.Fatalf("flow record headers %v", rec.Headers)
		}
		seen[m.SequenceNum]++
	}
	if len(seen) != frames*per {
		t.Fatalf("%d distinct flows, want %d", len(seen), frames*per)
	}
	// Records of one exporter share a key, hence a partition, so they stay
	// in order.
	last := map[string]int64{}
	for _, rec := range recs {
		var m flowpb.FlowMessage
		proto.Unmarshal(rec.Value, &m)
		k := fmt.Sprintf("%d/%s", rec.Partition, rec.Key)
		if prev, ok := last[k]; ok && int64(m.SequenceNum) < prev {
			t.Fatalf("exporter %s out of order on partition %d", rec.Key, rec.Partition)
		}
		last[k] = int64(m.SequenceNum)
	}
	for _, rec := range consume(t, cl.Seeds(), "t1.syslog", 200) {
		if header(rec, "trawl.encoding") != "trawl-binary" {
			t.Fatalf("non-flow protobuf records are trawl's binary encoding, got %v", rec.Headers)
		}
		var ev event.Event
		if err := event.DecodeBinary(&ev, rec.Value); err != nil {
			t.Fatalf("cannot decode a syslog record: %v", err)
		}
		if ev.Kind != event.KindSyslog || string(ev.Syslog.AppName) != "sshd" {
			t.Fatalf("syslog record decoded as %+v", ev)
		}
	}

	// A second sink on the same spool has its own cursor and writes ECS
	// JSON to the default topics, with lz4 batches this time.
	d, _ = runSink(t, kafka.Options{Name: "json", Seeds: cl.Seeds(), Spool: sp, Compression: "lz4"})
	if d != frames*per+200 {
		t.Fatalf("json sink delivered %d", d)
	}
	for _, rec := range consume(t, cl.Seeds(), "trawl.syslog", 200) {
		var doc map[string]any
		if err := json.Unmarshal(rec.Value, &doc); err != nil {
			t.Fatalf("a JSON record does not parse: %v: %s", err, rec.Value)
		}
		if header(rec, "trawl.encoding") != "ecs-json" || string(rec.Key) != "web-1" {
			t.Fatalf("JSON record key %q headers %v", rec.Key, rec.Headers)
		}
	}
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skipf("kcat is not installed (scripts/deps.sh installs it): %v", err)
	}
	out, err := exec.Command(kcat, "-C", "-b", strings.Join(cl.Seeds(), ","), "-t", "trawl.flow", "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "\t")
		var doc struct {
			Event struct {
				Module string `json:"module"`
			} `json:"event"`
			Source struct {
				Port int `json:"port"`
			} `json:"source"`
			Observer struct {
				IP string `json:"ip"`
			} `json:"observer"`
		}
		if !ok || json.Unmarshal([]byte(val), &doc) != nil {
			t.Fatalf("kcat printed %q", sc.Text())
		}
		if doc.Event.Module != "netflow" || doc.Source.Port < 1024 || doc.Observer.IP != key {
			t.Fatalf("kcat record %s: %+v", val, doc)
		}
		n++
	}
	if n != frames*per {
		t.Fatalf("kcat read %d flow records, want %d", n, frames*per)
	}
}

// inputFrames are the frames one input wrote, in order.
type inputFrames struct {
	input  string
	frames [][]byte
}

// appendInputFrames appends frames of per events each for every input in
// turn (input j's frame f after input j-1's), event i made by gen, ids
// numbered across inputs; it returns each input's frames as written.
func appendInputFrames(t testing.TB, sp *disk.Spool, level frame.Level, k event.Kind, inputs []string, frames, per int, gen func(int) event.Event) []inputFrames {
	t.Helper()
	enc, err := frame.NewEncoder(frame.EncoderOptions{Level: level})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]inputFrames, len(inputs))
	var b frame.Builder
	var rec []byte
	id := 0
	for f := range frames {
		for j, in := range inputs {
			out[j].input = in
			b.Reset()
			for range per {
				ev := gen(id)
				id++
				rec = event.AppendBinary(rec[:0], &ev)
				b.Add(rec)
			}
			fr, err := enc.AppendFrame(nil, frame.Header{Kind: k, FirstSeq: uint64(f * per), Created: time.Now().UnixNano(), Input: []byte(in), Observer: []byte("obs")}, &b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sp.Append(fr); err != nil {
				t.Fatal(err)
			}
			out[j].frames = append(out[j].frames, fr)
		}
	}
	if err := sp.Sync(); err != nil {
		t.Fatal(err)
	}
	return out
}

// frameEvents decodes a trawl-frame record value the way docs/kafka.md
// tells a reader without trawl's consumer package to: frame.Parse,
// Decoder.Records, frame.Next, event.DecodeBinary.
func frameEvents(t *testing.T, dec *frame.Decoder, value []byte, fn func(h frame.Header, ev *event.Event)) frame.Header {
	t.Helper()
	h, payload, n, err := frame.Parse(value)
	if err != nil || n != len(value) {
		t.Fatalf("a record value is not one frame: %v (%d of %d bytes)", err, n, len(value))
	}
	raw, err := dec.Records(nil, h, payload)
	if err != nil {
		t.Fatal(err)
	}
	for range h.Count {
		var r []byte
		r, raw, _ = frame.Next(raw)
		var ev event.Event
		if err := event.DecodeBinary(&ev, r); err != nil {
			t.Fatal(err)
		}
		fn(h, &ev)
	}
	return h
}

// TestSinkFrameEncoding produces spool frames of three flow inputs and a
// syslog input with encoding frame into a real broker and reads them back:
// one record per frame, its value byte for byte the spool's frame, keyed by
// input (so each input's frames stay in order on one partition), with the
// frame headers and uncompressed batches by default; decoding the frames
// gives every flow exactly once. kcat lists the records with their headers.
// The same spool then goes out again with zstd batches, and through a sink
// whose batches are too small for the big frames: those are counted as
// rejected, the small ones delivered, and the sink does not stall.
func TestSinkFrameEncoding(t *testing.T) {
	cl := kafkatest.Start(t, 1)
	sp, err := disk.Open(disk.Options{Dir: t.TempDir(), Fsync: disk.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	exporters := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")}
	gen := func(i int) event.Event { return flowEvent(i, exporters[i%2]) }
	const frames, per = 8, 500
	inputs := []string{"nf-a", "nf-b", "nf-c"}
	flows := appendInputFrames(t, sp, frame.LevelS2, event.KindFlow, inputs, frames, per, gen)
	sys := appendInputFrames(t, sp, frame.LevelFastest, event.KindSyslog, []string{"syslog"}, 2, 100, syslogEvent)
	// Small frames after the big ones: 4 events of another input each.
	tiny := appendInputFrames(t, sp, frame.LevelS2, event.KindFlow, []string{"tiny"}, 3, 4, func(i int) event.Event { return gen(1_000_000 + i) })
	const nflows = frames * per * 3
	const total = nflows + 200 + 12

	topics := map[event.Kind]string{event.KindFlow: "fr.flow"}
	d, r := runSink(t, kafka.Options{Name: "frame", Seeds: cl.Seeds(), Spool: sp, Encoding: kafka.EncodingFrame, Topics: topics})
	if d != total || r != 0 {
		t.Fatalf("delivered %d, rejected %d; want %d, 0", d, r, total)
	}
	want := map[string][][]byte{}
	for _, f := range append(flows, tiny...) {
		want[f.input] = f.frames
	}
	dec, err := frame.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	check := func(topic string, compression uint8) {
		t.Helper()
		recs := consume(t, cl.Seeds(), topic, frames*3+3)
		if len(recs) != frames*3+3 {
			t.Fatalf("%s: %d records, want one per frame, %d", topic, len(recs), frames*3+3)
		}
		next := map[string]int{}
		seen := map[uint32]int{}
		events := 0
		for _, rec := range recs {
			in := string(rec.Key)
			i := next[in]
			if i >= len(want[in]) || !bytes.Equal(rec.Value, want[in][i]) {
				t.Fatalf("%s: record %d of input %q (partition %d offset %d) is not the spool's frame %d of that input", topic, i, in, rec.Partition, rec.Offset, i)
			}
			next[in]++
			if header(rec, "trawl.encoding") != "trawl-frame" || header(rec, "trawl.encoding.version") != strconv.Itoa(frame.Version) || header(rec, "trawl.kind") != "flow" {
				t.Fatalf("%s: frame record headers %v", topic, rec.Headers)
			}
			if c := rec.Attrs.CompressionType(); c != compression {
				t.Fatalf("%s: batch compression %d, want %d", topic, c, compression)
			}
			h := frameEvents(t, dec, rec.Value, func(h frame.Header, ev *event.Event) {
				i := int(ev.Flow.SequenceNum)
				if w := gen(i); ev.Flow.Bytes != w.Flow.Bytes || ev.Flow.SrcPort != w.Flow.SrcPort || ev.Flow.SamplerAddress != w.Flow.SamplerAddress {
					t.Fatalf("flow %d read back as %+v", i, ev.Flow)
				}
				seen[ev.Flow.SequenceNum]++
			})
			if string(h.Input) != in || string(h.Observer) != "obs" {
				t.Fatalf("frame of input %q, observer %q under key %q", h.Input, h.Observer, in)
			}
			events += int(h.Count)
		}
		if events != nflows+12 || len(seen) != nflows+12 {
			t.Fatalf("%s: %d events, %d distinct flows; want %d of each", topic, events, len(seen), nflows+12)
		}
	}
	check("fr.flow", 0)
	sysRecs := consume(t, cl.Seeds(), "trawl.syslog", 2)
	for i, rec := range sysRecs {
		if !bytes.Equal(rec.Value, sys[0].frames[i]) || header(rec, "trawl.kind") != "syslog" || string(rec.Key) != "syslog" {
			t.Fatalf("syslog frame record %d: key %q headers %v", i, rec.Key, rec.Headers)
		}
		frameEvents(t, dec, rec.Value, func(h frame.Header, ev *event.Event) {
			if ev.Kind != event.KindSyslog || string(ev.Syslog.AppName) != "sshd" || h.Codec != frame.CodecZstd {
				t.Fatalf("syslog event %+v in a %v frame", ev, h.Codec)
			}
		})
	}

	// kcat, a librdkafka client, sees one record per frame with the
	// headers, keys and sizes.
	if kcat, err := exec.LookPath("kcat"); err != nil {
		t.Logf("kcat is not installed (scripts/deps.sh installs it), not checking with it: %v", err)
	} else {
		out, err := exec.Command(kcat, "-C", "-b", strings.Join(cl.Seeds(), ","), "-t", "fr.flow", "-o", "beginning", "-e", "-q", "-f", "%k\t%h\t%S\n").Output()
		if err != nil {
			t.Fatalf("kcat: %v", err)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != frames*3+3 {
			t.Fatalf("kcat listed %d records, want %d:\n%s", len(lines), frames*3+3, out)
		}
		for _, l := range lines {
			f := strings.Split(l, "\t")
			if len(f) != 3 || want[f[0]] == nil || f[1] != "trawl.encoding=trawl-frame,trawl.encoding.version=1,trawl.kind=flow" {
				t.Fatalf("kcat printed %q", l)
			}
			if n, err := strconv.Atoi(f[2]); err != nil || n < frame.HeaderSize {
				t.Fatalf("kcat printed a value size of %q", f[2])
			}
		}
	}

	// The same frames with zstd batches: compression set explicitly.
	topics[event.KindFlow] = "frz.flow"
	topics[event.KindSyslog] = "frz.syslog"
	d, r = runSink(t, kafka.Options{Name: "frame-zstd", Seeds: cl.Seeds(), Spool: sp, Encoding: kafka.EncodingFrame, Topics: topics, Compression: "zstd"})
	if d != total || r != 0 {
		t.Fatalf("zstd: delivered %d, rejected %d; want %d, 0", d, r, total)
	}
	check("frz.flow", 4) // Kafka's attribute value for zstd

	// Batches of 4 KiB hold no 500-flow frame: those frames are rejected
	// whole (their events counted), the tiny ones and the syslog frames
	// (a few hundred bytes of zstd) go through.
	small := 0
	for _, f := range append(append([]inputFrames(nil), sys...), tiny...) {
		for _, fr := range f.frames {
			if len(fr) > 3<<10 {
				t.Fatalf("a frame of input %s holds %d bytes: the test needs it under 3 KiB", f.input, len(fr))
			}
			small++
		}
	}
	for _, f := range flows {
		for _, fr := range f.frames {
			if len(fr) < 8<<10 {
				t.Fatalf("a frame of input %s holds only %d bytes: the test needs it over 8 KiB", f.input, len(fr))
			}
		}
	}
	topics[event.KindFlow] = "frs.flow"
	topics[event.KindSyslog] = "frs.syslog"
	d, r = runSink(t, kafka.Options{Name: "frame-small", Seeds: cl.Seeds(), Spool: sp, Encoding: kafka.EncodingFrame, Topics: topics, BatchMaxBytes: 4 << 10})
	if d != 200+12 || r != nflows {
		t.Fatalf("4 KiB batches: delivered %d, rejected %d; want %d, %d", d, r, 200+12, nflows)
	}
	recs := consume(t, cl.Seeds(), "frs.flow", 3)
	for _, rec := range recs {
		if string(rec.Key) != "tiny" {
			t.Fatalf("a frame of input %q made it into 4 KiB batches", rec.Key)
		}
	}
	if small != 5 {
		t.Fatalf("%d small frames", small)
	}
}
