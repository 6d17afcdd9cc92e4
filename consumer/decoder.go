// Package consumer reads what trawl collected: it turns spool records
// (frames) back into events for the sinks that read the spool and for
// `trawl spool cat`, and gives the analysis, storage and access layers one
// interface, [Source], over Kafka ([KafkaSource]) and the local spool
// ([SpoolSource]), delivering every event as ECS JSON with at-least-once
// consumer-group semantics (docs/consumers.md).
package consumer

import (
	"fmt"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
)

// Decoder turns frames into events. It reuses its buffers and its event, so
// it is not safe for concurrent use, and the *event.Event handed to a
// callback is valid only during that call.
type Decoder struct {
	fd  *frame.Decoder
	raw []byte
	ev  event.Event
}

// NewDecoder returns a decoder with its own zstd decoder.
func NewDecoder() (*Decoder, error) {
	fd, err := frame.NewDecoder()
	if err != nil {
		return nil, fmt.Errorf("create frame decoder: %w", err)
	}
	return &Decoder{fd: fd}, nil
}

// Frame verifies one frame (rec holds exactly one: a spool record or the
// value of a trawl-frame Kafka record) and calls fn for each of its events
// in order, with Seq, Input and Observer filled in from the frame header. A
// corrupt frame or event, or bytes after the frame, is an error; events
// before it have been delivered to fn.
func (d *Decoder) Frame(rec []byte, fn func(ev *event.Event) error) (frame.Header, error) {
	h, payload, n, err := frame.Parse(rec)
	if err != nil {
		return h, err
	}
	if n != len(rec) {
		return h, fmt.Errorf("cannot decode frame of input %q: %d bytes after its end: %w", h.Input, len(rec)-n, frame.ErrCorrupt)
	}
	d.raw, err = d.fd.Records(d.raw[:0], h, payload)
	if err != nil {
		return h, err
	}
	rest := d.raw
	seq := h.FirstSeq
	for i := uint32(0); i < h.Count; i++ {
		var r []byte
		r, rest, err = frame.Next(rest)
		if err != nil {
			return h, fmt.Errorf("frame of input %q, event %d of %d: %w", h.Input, i, h.Count, err)
		}
		if err := event.DecodeBinary(&d.ev, r); err != nil {
			return h, fmt.Errorf("frame of input %q, event seq %d: %w", h.Input, seq, err)
		}
		d.ev.Seq = seq
		d.ev.Input = h.Input
		d.ev.Observer = h.Observer
		if err := fn(&d.ev); err != nil {
			return h, err
		}
		seq++
	}
	return h, nil
}
