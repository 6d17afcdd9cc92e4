package kafka_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
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
