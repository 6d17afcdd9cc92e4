package frame

import (
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/trawlsec/trawl/event"
)

func BenchmarkZZAppendPool(b *testing.B) {
	b.Logf("sizeof Event %d", unsafe.Sizeof(event.Event{}))
	for _, c := range benchCases {
		evs := c.gen(rand.New(rand.NewPCG(1, uint64(c.kind))), benchPoolEvents)
		for _, pool := range []int{1, 64, 4096, benchPoolEvents} {
			b.Run(c.name+"/"+string(rune('0'+len(itoa(pool))))+itoa(pool), func(b *testing.B) {
				var rec []byte
				k := 0
				for b.Loop() {
					rec = event.AppendBinary(rec[:0], &evs[k])
					if k++; k == pool {
						k = 0
					}
				}
			})
		}
	}
}

func itoa(n int) string {
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}
