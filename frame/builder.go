package frame

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/trawlsec/trawl/event"
)

// Builder accumulates the records of one frame as a raw payload. It is meant
// to live as long as its framer goroutine and be Reset after each sealed
// frame, so its buffer stops growing once it has held the largest batch.
// A Builder is not safe for concurrent use. The zero value is ready to use.
type Builder struct {
	raw []byte
	n   int
}

// Add appends one record: its uvarint length, then a copy of rec. rec may be
// empty and may be reused by the caller as soon as Add returns.
func (b *Builder) Add(rec []byte) {
	if len(rec) < 0x80 {
		b.raw = append(b.raw, byte(len(rec)))
	} else {
		b.raw = binary.AppendUvarint(b.raw, uint64(len(rec)))
	}
	b.raw = append(b.raw, rec...)
	b.n++
}

// AddRaw appends n records already in raw-payload form: each a uvarint
// length and the record, back to back, as [Builder.Raw] holds them. It is
// one copy for a batch a producer laid out itself; AddRaw does not check
// raw (the frame's readers do, with [Next]), so raw must be exactly n
// well-formed records.
func (b *Builder) AddRaw(raw []byte, n int) {
	b.raw = append(b.raw, raw...)
	b.n += n
}

// AppendEvent appends ev to dst as a raw payload holds a record: its length
// as a minimal uvarint, then its binary encoding. A producer lays out a
// batch with it for [Builder.AddRaw] without encoding into a scratch
// buffer first. It encodes in place after two reserved bytes (a flow
// event is about 130 bytes) and moves the record when its length needs
// another number of bytes.
func AppendEvent(dst []byte, ev *event.Event) []byte {
	at := len(dst)
	dst = event.AppendBinary(append(dst, 0, 0), ev)
	n := len(dst) - at - 2
	switch {
	case n < 1<<7:
		dst[at] = byte(n)
		copy(dst[at+1:], dst[at+2:])
		return dst[:len(dst)-1]
	case n < 1<<14:
		dst[at] = byte(n) | 0x80
		dst[at+1] = byte(n >> 7)
		return dst
	}
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], uint64(n))
	dst = append(dst, hdr[:h-2]...)
	copy(dst[at+h:], dst[at+2:at+2+n])
	copy(dst[at:], hdr[:h])
	return dst
}

// Len returns the number of records added since the last Reset.
func (b *Builder) Len() int { return b.n }

// Bytes returns the size of the raw payload built so far, length prefixes
// included; it is the frame's rawLen once sealed.
func (b *Builder) Bytes() int { return len(b.raw) }

// Raw returns the raw payload built so far. It aliases the builder's buffer
// and is valid until the next Add or Reset.
func (b *Builder) Raw() []byte { return b.raw }

// Reset empties the builder and keeps its buffer.
func (b *Builder) Reset() {
	b.raw = b.raw[:0]
	b.n = 0
}

// Next splits the first record off a raw payload (as returned by
// Decoder.Records or Builder.Raw): rec aliases raw, rest is what follows.
// Iterate with
//
//	for len(raw) > 0 {
//		rec, raw, err = frame.Next(raw)
//		...
//	}
//
// An empty raw, a length prefix that is malformed, overlong (non-minimal) or
// larger than what remains gives ErrCorrupt. Next does not allocate on
// success.
func Next(raw []byte) (rec, rest []byte, err error) {
	if len(raw) > 0 && raw[0] < 0x80 {
		l := int(raw[0])
		if l < len(raw) {
			return raw[1 : 1+l : 1+l], raw[1+l:], nil
		}
	}
	return nextSlow(raw)
}

func nextSlow(raw []byte) (rec, rest []byte, err error) {
	if len(raw) == 0 {
		return nil, nil, fmt.Errorf("cannot read record: no bytes left: %w", ErrCorrupt)
	}
	l, n := binary.Uvarint(raw)
	if n <= 0 {
		return nil, nil, fmt.Errorf("cannot read record length from % x: %w", raw[:min(len(raw), binary.MaxVarintLen64)], ErrCorrupt)
	}
	// A zero last byte means the same value fits in fewer bytes; only the
	// minimal form is valid, so that re-encoding a frame reproduces it.
	if n > 1 && raw[n-1] == 0 {
		return nil, nil, fmt.Errorf("cannot read record length from % x: overlong encoding: %w", raw[:n], ErrCorrupt)
	}
	if l > uint64(len(raw)-n) {
		return nil, nil, fmt.Errorf("cannot read record: length %d, only %d bytes left: %w", l, len(raw)-n, ErrCorrupt)
	}
	end := n + int(l)
	return raw[n:end:end], raw[end:], nil
}

// countRecords checks that raw splits into exactly want records.
func countRecords(raw []byte, want uint32) error {
	var got uint32
	for len(raw) > 0 {
		var err error
		if _, raw, err = Next(raw); err != nil {
			return fmt.Errorf("record %d of %d: %w", got, want, err)
		}
		got++
	}
	if got != want {
		return fmt.Errorf("cannot read records: payload holds %d records, header says %d: %w", got, want, ErrCorrupt)
	}
	return nil
}

// BatchLimits decide when a framer seals the frame it is building: when any
// limit is reached. MaxLatency is enforced by the caller's loop (a timer
// started by the first record of a batch); Full checks the other two.
type BatchLimits struct {
	// MaxEvents is the most records in one frame. Default 8192.
	MaxEvents int
	// MaxBytes is the raw payload size at which a frame is sealed. The
	// record (or the records of one AddRaw) that crosses it stays in the
	// frame, so a frame can exceed it by that much. Default 1 MiB, at most
	// MaxBatchBytes.
	MaxBytes int
	// MaxLatency is the longest a record waits in an unsealed frame.
	// Default 200 ms.
	MaxLatency time.Duration
}

// MaxBatchBytes is the largest allowed BatchLimits.MaxBytes: half of
// MaxFrameSize, which leaves room for the record that crosses the limit as
// long as records stay below MaxBatchBytes (inputs cap them far lower).
const MaxBatchBytes = MaxFrameSize / 2

// DefaultBatchLimits returns the default limits: 8192 events, 1 MiB of raw
// payload, 200 ms.
func DefaultBatchLimits() BatchLimits {
	return BatchLimits{MaxEvents: 8192, MaxBytes: 1 << 20, MaxLatency: 200 * time.Millisecond}
}

// Validate reports the first limit that is out of range.
func (l BatchLimits) Validate() error {
	if l.MaxEvents < 1 || l.MaxEvents > MaxBatchBytes {
		return fmt.Errorf("batch limit MaxEvents = %d, must be in [1, %d]", l.MaxEvents, MaxBatchBytes)
	}
	if l.MaxBytes < 1 || l.MaxBytes > MaxBatchBytes {
		return fmt.Errorf("batch limit MaxBytes = %d, must be in [1, %d]", l.MaxBytes, MaxBatchBytes)
	}
	if l.MaxLatency <= 0 {
		return fmt.Errorf("batch limit MaxLatency = %v, must be positive", l.MaxLatency)
	}
	return nil
}

// Full reports whether b has reached MaxEvents records or MaxBytes of raw
// payload and should be sealed now.
func (l BatchLimits) Full(b *Builder) bool {
	return b.n >= l.MaxEvents || len(b.raw) >= l.MaxBytes
}
