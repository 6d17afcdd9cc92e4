package frame_test

import (
	"fmt"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
)

// A framer adds records until the batch is full, seals it, and a reader
// walks the frames in a buffer (a spool segment, say) one after another.
func Example() {
	enc, err := frame.NewEncoder(frame.EncoderOptions{Level: frame.LevelFastest})
	if err != nil {
		panic(err)
	}
	limits := frame.BatchLimits{MaxEvents: 3, MaxBytes: 1 << 20, MaxLatency: 1}
	h := frame.Header{Kind: event.KindSyslog, FirstSeq: 100, Created: 1732579200e9, Input: []byte("syslog-udp"), Observer: []byte("node-1")}

	var b frame.Builder
	var segment []byte
	for i := range 5 {
		b.Add(fmt.Appendf(nil, "record %d", i)) // event.AppendBinary output in real use
		if limits.Full(&b) || i == 4 {          // i == 4 stands in for the latency timer
			if segment, err = enc.AppendFrame(segment, h, &b); err != nil {
				panic(err)
			}
			h.FirstSeq += uint64(b.Len())
			b.Reset()
		}
	}

	dec, err := frame.NewDecoder()
	if err != nil {
		panic(err)
	}
	defer dec.Close()
	var raw []byte
	for len(segment) > 0 {
		h, payload, n, err := frame.Parse(segment)
		if err != nil {
			panic(err)
		}
		segment = segment[n:]
		if raw, err = dec.Records(raw, h, payload); err != nil {
			panic(err)
		}
		seq := h.FirstSeq
		for rest := raw; len(rest) > 0; seq++ {
			var rec []byte
			rec, rest, _ = frame.Next(rest) // cannot fail after Records
			fmt.Printf("%s %s #%d: %s\n", h.Input, h.Kind, seq, rec)
		}
	}
	// Output:
	// syslog-udp syslog #100: record 0
	// syslog-udp syslog #101: record 1
	// syslog-udp syslog #102: record 2
	// syslog-udp syslog #103: record 3
	// syslog-udp syslog #104: record 4
}
