package consumer

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trawlsec/trawl/event"
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
