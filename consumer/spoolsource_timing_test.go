package consumer_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/trawlsec/trawl/consumer"
)

// BenchmarkSpoolSource measures a spool source reading app events: frame
// read, decompression, decoding and JSON rendering, per event.
func BenchmarkSpoolSource(b *testing.B) {
	const per, frames = 500, 40
	sp := openSpool(b, b.TempDir())
	fillSpool(b, sp, 0, frames, per, consumer.SampleApp)
	ctx := context.Background()
	b.ReportAllocs()
	var bytes int64
	n := 0
	var s *consumer.SpoolSource
	for b.Loop() {
		if n%(per*frames) == 0 {
			// Start over at the oldest frame with a new group.
			if s != nil {
				s.Close()
			}
			s = spoolSource(b, sp, "bench-"+strconv.Itoa(n))
		}
		msgs, err := s.Poll(ctx, 1)
		if err != nil {
			b.Fatal(err)
		}
		bytes += int64(len(msgs[0].JSON))
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(bytes)/float64(n), "json-bytes/event")
}
