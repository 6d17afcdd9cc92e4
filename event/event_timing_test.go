package event

import (
	"testing"
)

// Run with: go test -run '^$' -bench . -benchtime=1s ./event/
//
// Bytes/s is of the encoded event for Encode and Decode, and of the JSON
// output for JSON.

func BenchmarkEncode(b *testing.B) {
	for _, s := range sampleEvents() {
		b.Run(s.name, func(b *testing.B) {
			buf := AppendBinary(nil, s.e)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendBinary(buf[:0], s.e)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, s := range sampleEvents() {
		b.Run(s.name, func(b *testing.B) {
			buf := AppendBinary(nil, s.e)
			var e Event
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if err := DecodeBinary(&e, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkJSON(b *testing.B) {
	for _, s := range sampleEvents() {
		b.Run(s.name, func(b *testing.B) {
			buf := AppendJSON(nil, s.e)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendJSON(buf[:0], s.e)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkSpoolCat is the `trawl spool cat` and Kafka JSON path for one
// event: decode from a frame's bytes, then render.
func BenchmarkSpoolCat(b *testing.B) {
	for _, s := range sampleEvents() {
		b.Run(s.name, func(b *testing.B) {
			enc := AppendBinary(nil, s.e)
			var e Event
			out := AppendJSON(nil, s.e)
			b.SetBytes(int64(len(out)))
			b.ReportAllocs()
			for b.Loop() {
				if err := DecodeBinary(&e, enc); err != nil {
					b.Fatal(err)
				}
				out = AppendJSON(out[:0], &e)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
