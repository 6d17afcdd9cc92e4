package flow

import (
	"math/rand/v2"
	"testing"

	"github.com/trawlsec/trawl/event"
)

// BenchmarkDecode measures one core decoding realistic packets: v5 with
// 30 records, v9 and IPFIX with nProbe's 18-field default template and 25
// records. goflow2 runs its v2.2.6 decoders plus the FlowMessage mapping
// of its producer, rewritten in goflow2_test.go (the real producer needs
// protobuf, which this module does not require); the real producer also
// allocates a message per flow, so goflow2's true cost is higher.
func BenchmarkDecode(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	v9t, v9d := sampleTemplated(r, 9, 25)
	ipt, ipd := sampleTemplated(r, 10, 25)
	cases := []struct {
		name     string
		tpl, pkt []byte
		records  int
	}{
		{"v5", nil, sampleV5(r, 30), 30},
		{"v9", v9t, v9d, 25},
		{"ipfix", ipt, ipd, 25},
	}
	for _, c := range cases {
		b.Run(c.name+"/trawl", func(b *testing.B) {
			d := NewDecoder(NewTemplates())
			var sum uint64
			fn := func(e *event.Event) { sum += e.Flow.Bytes }
			if c.tpl != nil {
				if _, err := d.Decode(exporterA, c.tpl, fn); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(c.pkt)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				info, err := d.Decode(exporterA, c.pkt, fn)
				if err != nil || info.Records != c.records {
					b.Fatalf("%d records, %v", info.Records, err)
				}
				n += info.Records
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "flows/s")
		})
		b.Run(c.name+"/goflow2", func(b *testing.B) {
			g := newGF2()
			var sum uint64
			fn := func(f *event.Flow) { sum += f.Bytes }
			if c.tpl != nil {
				if err := g.decode(c.tpl, fn); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(c.pkt)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				k := 0
				if err := g.decode(c.pkt, func(f *event.Flow) { k++; sum += f.Bytes }); err != nil || k != c.records {
					b.Fatalf("%d records, %v", k, err)
				}
				n += k
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "flows/s")
		})
	}
	b.Run("sflow", benchmarkDecodeSFlow) // sflow_timing_test.go
}
