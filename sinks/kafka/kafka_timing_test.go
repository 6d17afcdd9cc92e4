package kafka_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/sinks/disk"
	"github.com/trawlsec/trawl/sinks/kafka"
	"github.com/trawlsec/trawl/sinks/kafka/kafkatest"
)

// BenchmarkSinkToBroker measures events/s the Kafka sink delivers from a
// spool into a real single-node broker on this machine (zstd, acks=all,
// idempotent): each iteration is a new sink (its own cursor) producing the
// whole spool, 400,000 flow events, and waiting for every acknowledgement.
// The broker shares the machine's cores with the sink.
//
//	go test -run '^$' -bench BenchmarkSinkToBroker -benchtime 3x ./sinks/kafka/
func BenchmarkSinkToBroker(b *testing.B) {
	cl := kafkatest.Start(b, 1)
	sp, err := disk.Open(disk.Options{Dir: b.TempDir(), Fsync: disk.FsyncNever})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	exporters := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3"), netip.MustParseAddr("198.51.100.4")}
	const frames, per = 100, 4000
	fillSpool(b, sp, event.KindFlow, frames, per, func(i int) event.Event { return flowEvent(i, exporters[i%len(exporters)]) })
	for _, enc := range []struct {
		name string
		enc  kafka.Encoding
	}{{"protobuf", kafka.EncodingProtobuf}, {"json", kafka.EncodingJSON}} {
		b.Run(enc.name, func(b *testing.B) {
			run := 0
			var events uint64
			for b.Loop() {
				run++
				set := metrics.NewSet()
				d, r := set.NewCounter("d"), set.NewCounter("r")
				name := fmt.Sprintf("bench-%s-%d-%d", enc.name, time.Now().UnixNano(), run)
				s, err := kafka.New(kafka.Options{Name: name, Seeds: cl.Seeds(), Spool: sp, Encoding: enc.enc,
					Topics: map[event.Kind]string{event.KindFlow: name}, Registry: set, StopTimeout: time.Minute}, d, r, b.Logf)
				if err != nil {
					b.Fatal(err)
				}
				s.StopAtEnd()
				if err := s.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				if d.Get() != frames*per {
					b.Fatalf("delivered %d of %d", d.Get(), frames*per)
				}
				events += d.Get()
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
