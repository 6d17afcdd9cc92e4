package syslog

import (
	"strconv"
	"testing"
)

// BenchmarkSplit measures framing a stream of the RFC 5424 benchmark
// messages, one op being the whole stream as one buffer, for both framings.
func BenchmarkSplit(b *testing.B) {
	msgs := benchMessages["rfc5424"]
	var counted, lines []byte
	const copies = 64
	for range copies {
		for _, m := range msgs {
			counted = append(strconv.AppendInt(counted, int64(len(m)), 10), ' ')
			counted = append(counted, m...)
			lines = append(append(lines, m...), '\n')
		}
	}
	for _, c := range []struct {
		name   string
		stream []byte
	}{{"octet-counted", counted}, {"non-transparent", lines}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.stream)))
			b.ReportAllocs()
			var s Splitter
			n := 0
			for b.Loop() {
				s.Reset()
				for rest := c.stream; len(rest) > 0; {
					adv, msg, _, err := s.Split(rest, true)
					if err != nil || msg == nil {
						b.Fatal(adv, err)
					}
					rest = rest[adv:]
					n++
				}
			}
			if n != b.N*copies*len(msgs) {
				b.Fatalf("%d messages", n)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
