package frame

import (
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

func BenchmarkZZProbe(b *testing.B) {
	for _, c := range benchCases {
		evs := c.gen(rand.New(rand.NewPCG(1, uint64(c.kind))), benchPoolEvents)
		var bl Builder
		var rec []byte
		k := 0
		rec = fillBuilder(&bl, evs, &k, rec)
		raw := append([]byte(nil), bl.Raw()...)
		dst := make([]byte, s2.MaxEncodedLen(len(raw)))
		b.Run(c.name+"/s2", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			var n int
			for b.Loop() {
				n = len(s2.Encode(dst, raw))
			}
			b.ReportMetric(float64(len(raw))/float64(n), "ratio")
		})
		b.Run(c.name+"/s2better", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			var n int
			for b.Loop() {
				n = len(s2.EncodeBetter(dst, raw))
			}
			b.ReportMetric(float64(len(raw))/float64(n), "ratio")
		})
		b.Run(c.name+"/snappy", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			var n int
			for b.Loop() {
				n = len(s2.EncodeSnappy(dst, raw))
			}
			b.ReportMetric(float64(len(raw))/float64(n), "ratio")
		})
		for _, o := range []struct {
			name string
			opts []zstd.EOption
		}{
			{"zstd", nil},
			{"zstd-w64k", []zstd.EOption{zstd.WithWindowSize(1 << 16)}},
			{"zstd-w256k", []zstd.EOption{zstd.WithWindowSize(1 << 18)}},
			{"zstd-w1m", []zstd.EOption{zstd.WithWindowSize(1 << 20)}},
			{"zstd-lowmem", []zstd.EOption{zstd.WithLowerEncoderMem(true)}},
			{"zstd-noentropy", []zstd.EOption{zstd.WithNoEntropyCompression(true)}},
			{"zstd-single", []zstd.EOption{zstd.WithSingleSegment(true)}},
		} {
			opts := append([]zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false)}, o.opts...)
			zw, err := zstd.NewWriter(nil, opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(c.name+"/"+o.name, func(b *testing.B) {
				b.SetBytes(int64(len(raw)))
				var n int
				for b.Loop() {
					n = len(zw.EncodeAll(raw, dst[:0]))
				}
				b.ReportMetric(float64(len(raw))/float64(n), "ratio")
			})
		}
	}
}
