package ring_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/trawlsec/trawl/ring"
)

// A framer drains the ring in batches until it is closed and empty.
func Example() {
	r := ring.New(8)

	var wg sync.WaitGroup
	for p := range 3 {
		wg.Go(func() {
			var scratch []byte // an input's own encode buffer, reused
			for i := range 4 {
				scratch = fmt.Appendf(scratch[:0], "input%d-event%d;", p, i)
				if err := r.Put(context.Background(), scratch); err != nil {
					return // ring.ErrClosed: the node is shutting down
				}
			}
		})
	}
	go func() {
		wg.Wait()
		r.Close()
	}()

	var batch [][]byte
	var frame []byte
	events := 0
	for !r.Drained() {
		if !r.Wait(100 * time.Millisecond) {
			continue // idle: a real framer flushes a partial frame here
		}
		batch = r.Peek(batch[:0], 256)
		for _, rec := range batch {
			frame = append(frame, rec...) // copy before Release
		}
		r.Release(len(batch))
		events += len(batch)
	}
	fmt.Println(events, "events,", len(frame), "bytes, ring used slots:", r.Len())
	// Output: 12 events, 168 bytes, ring used slots: 0
}
