// Package frame implements trawl's frame: a batch of binary-encoded events
// from one input, optionally compressed (zstd or S2), with a fixed little-endian
// header, a meta block naming the input and the observer, and a trailing
// CRC32C. A frame is the unit of durability (the disk spool stores frames as
// records) and of acknowledgement.
//
// Layout of version 1 (all integers little-endian):
//
//	off  size
//	0    4   magic "TRWF"
//	4    1   version = 1
//	5    1   kind (event.Kind)
//	6    1   codec: 0 = none, 1 = zstd, 2 = s2 (block format)
//	7    1   flags (reserved, 0)
//	8    2   metaLen: bytes of the meta block after the fixed header
//	10   2   reserved (0)
//	12   4   count: number of events
//	16   8   firstSeq: sequence number of the first event
//	24   8   created: unix ns when the frame was sealed
//	32   4   rawLen: size of the uncompressed payload
//	36   4   dataLen: size of the stored payload
//	40   metaLen bytes: [u8 len][input name][u8 len][observer host name]
//	..   dataLen bytes: payload (compressed unless codec = none)
//	end  4   CRC32C (Castagnoli) of every byte before it
//
// The raw payload is, for each event, uvarint(len(record)) followed by the
// record bytes. Records are opaque to this package (package event encodes
// and decodes them).
//
// Writing: a framer goroutine adds records to a [Builder] until
// [BatchLimits.Full] or its latency timer says so, then seals the batch with
// [Encoder.AppendFrame]. Reading: [Parse] (or [PeekHeader] to learn the size
// first), [Decoder.Records], then [Next] over the raw payload. None of the
// hot paths allocate once their buffers have grown to the working size.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/trawlsec/trawl/event"
)

// Format constants.
const (
	// Version is the frame format version this package writes and reads.
	Version = 1
	// HeaderSize is the size of the fixed header; the meta block follows it.
	HeaderSize = 40
	// TrailerSize is the size of the CRC32C at the end of a frame.
	TrailerSize = 4
	// MaxNameLen bounds the input and observer names in the meta block.
	MaxNameLen = 255
	// MaxMetaLen is the largest valid meta block.
	MaxMetaLen = 2 + 2*MaxNameLen
	// MaxFrameSize bounds a whole frame (header to CRC) and its raw
	// (uncompressed) payload, so a reader never needs more than this much
	// memory per frame whatever the bytes on disk or the wire claim.
	MaxFrameSize = 64 << 20
)

// Magic is the first four bytes of every frame.
const Magic = "TRWF"

// Errors returned by this package. They are always wrapped with context;
// test with errors.Is.
var (
	// ErrTruncated is returned by Parse and PeekHeader when b ends before
	// the frame does: the caller should read more bytes (a spool reader at
	// the tail of a segment treats it as a torn write).
	ErrTruncated = errors.New("frame truncated")
	// ErrCorrupt is returned when the bytes cannot be a valid frame: bad
	// magic, unknown version (a v1 reader cannot tell a newer layout from
	// damage), a non-zero reserved field, sizes that are impossible or over
	// the limits, a CRC mismatch, a payload that does not decompress to
	// rawLen bytes, or record lengths that do not add up to the payload and
	// count.
	ErrCorrupt = errors.New("frame corrupt")
	// ErrTooLarge is returned by Encoder.AppendFrame when a name is longer
	// than MaxNameLen or the batch does not fit in MaxFrameSize.
	ErrTooLarge = errors.New("frame too large")
)

// Codec says how a frame's payload is stored.
type Codec uint8

// Codecs. The values are part of the format.
const (
	CodecNone Codec = 0 // stored as is
	CodecZstd Codec = 1 // one zstd frame (RFC 8878)
	CodecS2   Codec = 2 // one S2 block (github.com/klauspost/compress/s2), no framing
)

// String returns "none", "zstd", "s2" or "codec(N)".
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecZstd:
		return "zstd"
	case CodecS2:
		return "s2"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Header is the decoded fixed header and meta block of a frame.
//
// Input and Observer returned by Parse and PeekHeader alias the frame bytes:
// they are valid as long as those bytes are. When given to
// Encoder.AppendFrame they are copied into the frame.
type Header struct {
	Kind     event.Kind
	Codec    Codec
	Count    uint32 // number of events
	FirstSeq uint64 // events carry FirstSeq .. FirstSeq+Count-1
	Created  int64  // unix ns when the frame was sealed
	RawLen   uint32 // size of the uncompressed payload
	DataLen  uint32 // size of the stored payload
	Input    []byte // input name, ≤ MaxNameLen bytes
	Observer []byte // host name of the trawl node, ≤ MaxNameLen bytes
}

// LastSeq returns the sequence number of the frame's last event; it is
// FirstSeq-1 for an empty frame.
func (h *Header) LastSeq() uint64 { return h.FirstSeq + uint64(h.Count) - 1 }

// Size returns the total size in bytes of the frame h describes.
func (h *Header) Size() int {
	return HeaderSize + 2 + len(h.Input) + len(h.Observer) + int(h.DataLen) + TrailerSize
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Parse validates the frame at the start of b (magic, version, reserved
// fields, sizes, CRC) and returns its header, its stored payload and its
// total size n; b may hold further bytes after the frame.
//
// The payload and h.Input/h.Observer alias b. The payload is still
// compressed unless h.Codec is CodecNone; pass it to Decoder.Records.
//
// A b that ends before the frame does gives ErrTruncated; anything that
// cannot be a valid frame gives ErrCorrupt. Parse never panics and does not
// allocate on success.
func Parse(b []byte) (h Header, payload []byte, n int, err error) {
	h, n, err = PeekHeader(b)
	if err != nil {
		return Header{}, nil, 0, err
	}
	if len(b) < n {
		return Header{}, nil, 0, fmt.Errorf("cannot parse frame: need %d bytes, have %d: %w", n, len(b), ErrTruncated)
	}
	body := b[:n-TrailerSize]
	want := binary.LittleEndian.Uint32(b[n-TrailerSize:])
	if got := crc32.Checksum(body, castagnoli); got != want {
		return Header{}, nil, 0, fmt.Errorf("cannot parse frame: CRC32C is %08x, header says %08x: %w", got, want, ErrCorrupt)
	}
	// Clip the capacity so that appending to the payload can never
	// overwrite the CRC or the next frame.
	start := len(body) - int(h.DataLen)
	payload = body[start:len(body):len(body)]
	return h, payload, n, nil
}

// PeekHeader decodes the fixed header and the meta block at the start of b
// without reading the payload or checking the CRC; it is meant for listing
// frames and for learning how many bytes to read.
//
// total is the size of the whole frame. It is known as soon as b holds the
// HeaderSize bytes of a plausible fixed header: when b ends inside the meta
// block PeekHeader returns that total together with ErrTruncated (and a
// header without names), so a reader can read HeaderSize bytes, peek, and
// then read the rest. Impossible header fields give ErrCorrupt.
func PeekHeader(b []byte) (h Header, total int, err error) {
	metaLen, total, err := parseFixed(b, &h)
	if err != nil {
		return Header{}, total, err
	}
	if len(b) < HeaderSize+metaLen {
		h.Input, h.Observer = nil, nil
		return h, total, fmt.Errorf("cannot parse frame meta: need %d bytes, have %d: %w", HeaderSize+metaLen, len(b), ErrTruncated)
	}
	meta := b[HeaderSize : HeaderSize+metaLen]
	inLen := int(meta[0])
	if 1+inLen+1 > metaLen {
		return Header{}, 0, fmt.Errorf("cannot parse frame meta: input name of %d bytes overruns the %d-byte meta block: %w", inLen, metaLen, ErrCorrupt)
	}
	obsLen := int(meta[1+inLen])
	if 2+inLen+obsLen != metaLen {
		return Header{}, 0, fmt.Errorf("cannot parse frame meta: names of %d and %d bytes do not fill the %d-byte meta block: %w", inLen, obsLen, metaLen, ErrCorrupt)
	}
	h.Input = meta[1 : 1+inLen : 1+inLen]
	h.Observer = meta[2+inLen : metaLen : metaLen]
	return h, total, nil
}

// parseFixed decodes and checks the fixed header into h and returns the
// meta block's length and the frame's total size.
func parseFixed(b []byte, h *Header) (metaLen, total int, err error) {
	// Check as much of the magic as we have, so that garbage is reported
	// as corrupt rather than as a short read that will never complete.
	if m := min(len(b), len(Magic)); string(b[:m]) != Magic[:m] {
		return 0, 0, fmt.Errorf("cannot parse frame header: bad magic %q: %w", b[:m], ErrCorrupt)
	}
	if len(b) < HeaderSize {
		return 0, 0, fmt.Errorf("cannot parse frame header: need %d bytes, have %d: %w", HeaderSize, len(b), ErrTruncated)
	}
	if v := b[4]; v != Version {
		return 0, 0, fmt.Errorf("cannot parse frame header: unsupported version %d: %w", v, ErrCorrupt)
	}
	h.Kind = event.Kind(b[5])
	h.Codec = Codec(b[6])
	if h.Codec > CodecS2 {
		return 0, 0, fmt.Errorf("cannot parse frame header: unknown codec %d: %w", b[6], ErrCorrupt)
	}
	if b[7] != 0 || b[10] != 0 || b[11] != 0 {
		return 0, 0, fmt.Errorf("cannot parse frame header: reserved bytes are %02x %02x %02x, not zero: %w", b[7], b[10], b[11], ErrCorrupt)
	}
	le := binary.LittleEndian
	metaLen = int(le.Uint16(b[8:]))
	h.Count = le.Uint32(b[12:])
	h.FirstSeq = le.Uint64(b[16:])
	h.Created = int64(le.Uint64(b[24:]))
	h.RawLen = le.Uint32(b[32:])
	h.DataLen = le.Uint32(b[36:])

	if metaLen < 2 || metaLen > MaxMetaLen {
		return 0, 0, fmt.Errorf("cannot parse frame header: meta length %d outside [2, %d]: %w", metaLen, MaxMetaLen, ErrCorrupt)
	}
	if h.RawLen > MaxFrameSize {
		return 0, 0, fmt.Errorf("cannot parse frame header: raw length %d over the %d limit: %w", h.RawLen, MaxFrameSize, ErrCorrupt)
	}
	// Every record takes at least its one-byte length prefix.
	if h.Count > h.RawLen {
		return 0, 0, fmt.Errorf("cannot parse frame header: %d events cannot fit in %d raw bytes: %w", h.Count, h.RawLen, ErrCorrupt)
	}
	if h.Count > 0 && h.FirstSeq > math.MaxUint64-uint64(h.Count-1) {
		return 0, 0, fmt.Errorf("cannot parse frame header: sequence %d + %d events overflows: %w", h.FirstSeq, h.Count, ErrCorrupt)
	}
	switch h.Codec {
	case CodecNone:
		if h.DataLen != h.RawLen {
			return 0, 0, fmt.Errorf("cannot parse frame header: uncompressed payload has data length %d != raw length %d: %w", h.DataLen, h.RawLen, ErrCorrupt)
		}
	case CodecZstd, CodecS2:
		// An encoder stores an empty payload uncompressed.
		if h.RawLen == 0 || h.DataLen == 0 {
			return 0, 0, fmt.Errorf("cannot parse frame header: %s payload with raw length %d, data length %d: %w", h.Codec, h.RawLen, h.DataLen, ErrCorrupt)
		}
	}
	t := uint64(HeaderSize) + uint64(metaLen) + uint64(h.DataLen) + TrailerSize
	if t > MaxFrameSize {
		return 0, 0, fmt.Errorf("cannot parse frame header: frame size %d over the %d limit: %w", t, MaxFrameSize, ErrCorrupt)
	}
	return metaLen, int(t), nil
}
