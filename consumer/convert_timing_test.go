package consumer

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
)

// BenchmarkConverter measures turning one Kafka record into ECS JSON, per
// encoding; bytes/s count the record value.
func BenchmarkConverter(b *testing.B) {
	fl, sys := SampleFlow(0), SampleSyslog(0)
	for _, bc := range []struct {
		name string
		r    *kgo.Record
	}{
		{"ecs-json/flow", record("trawl.flow", EncodingECSJSON, "1", event.KindFlow, event.AppendJSON(nil, &fl))},
		{"trawl-binary/flow", record("trawl.flow", EncodingTrawlBinary, binaryVersion, event.KindFlow, event.AppendBinary(nil, &fl))},
		{"goflow2-flowmessage/flow", record("trawl.flow", EncodingFlowMessage, "2", event.KindFlow, event.AppendFlowProto(nil, &fl))},
		{"ecs-json/syslog", record("trawl.syslog", EncodingECSJSON, "1", event.KindSyslog, event.AppendJSON(nil, &sys))},
		{"trawl-binary/syslog", record("trawl.syslog", EncodingTrawlBinary, binaryVersion, event.KindSyslog, event.AppendBinary(nil, &sys))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var c Converter
			dst := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.r.Value)))
			for b.Loop() {
				var err error
				if dst, _, err = c.AppendJSON(dst[:0], bc.r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkKafkaFrameRecord measures a KafkaSource turning one trawl-frame
// record of 1,000 flows (S2, as the sink writes it by default) into
// messages: frame check, decompression, decoding and JSON rendering;
// events/s and ns/event count the events, bytes/s the record value.
func BenchmarkKafkaFrameRecord(b *testing.B) {
	const n = 1000
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = SampleFlow(i)
	}
	r := frameRecord(sealFrame(b, frame.LevelS2, event.KindFlow, 0, evs), frameVersion)
	s := testSource(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(r.Value)))
	for b.Loop() {
		clear(s.msgs)
		s.msgs, s.buf = s.msgs[:0], s.buf[:0]
		s.add(r)
		if len(s.msgs) != n {
			b.Fatalf("%d messages, %d skipped", len(s.msgs), s.skipped.Load())
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}
