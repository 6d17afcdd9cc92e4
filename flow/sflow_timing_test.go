package flow

import (
	"math/rand/v2"
	"testing"

	"github.com/trawlsec/trawl/event"
)

// benchmarkDecodeSFlow is BenchmarkDecode/sflow: the datagram of
// sampleSFlow (8 flow samples of 128-byte Ethernet/IPv4/TCP headers with
// extended switch and router records, 1 counter sample). goflow2 runs its
// v2.2.6 decoders/sflow plus the producer mapping rewritten in gfSF,
// without protobuf encoding or per-message allocation, so it is an upper
// bound for goflow2.
func benchmarkDecodeSFlow(b *testing.B) {
	p := sampleSFlow(rand.New(rand.NewPCG(1, 1)), 1)
	const flows = 8
	b.Run("trawl", func(b *testing.B) {
		d := NewDecoder(NewTemplates())
		var sum uint64
		fn := func(e *event.Event) { sum += e.Flow.Bytes }
		b.SetBytes(int64(len(p)))
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			info, err := d.DecodeSFlow(agentFrom, p, fn)
			if err != nil || info.FlowSamples != flows {
				b.Fatalf("%d flows, %v", info.FlowSamples, err)
			}
			n += info.FlowSamples
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "flows/s")
	})
	b.Run("goflow2", func(b *testing.B) {
		var g gfSF
		var sum uint64
		b.SetBytes(int64(len(p)))
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			k := 0
			if err := g.decode(p, 1, func(f *event.Flow) { k++; sum += f.Bytes }); err != nil || k != flows {
				b.Fatalf("%d flows, %v", k, err)
			}
			n += k
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "flows/s")
	})
}
