package frame

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Level is the codec and compression effort of an Encoder.
type Level uint8

// Levels. The zero value is LevelFastest, which is what a collector wants:
// at a few hundred bytes per event the CPU spent on better zstd levels buys
// little. The S2 levels trade ratio for speed: on trawl's flow and syslog
// benchmark batches S2 compresses about three times faster than zstd
// fastest and stores about 25% (flow) to 40% (syslog) more bytes; see
// BenchmarkEncode.
const (
	LevelFastest  Level = iota // zstd "fastest" (about zstd -1); CodecZstd
	LevelDefault               // zstd "default" (about zstd -3); CodecZstd
	LevelBetter                // zstd "better" (about zstd -7); CodecZstd
	LevelBest                  // zstd "best" (about zstd -11); CodecZstd
	LevelNone                  // no compression: every frame is CodecNone
	LevelS2                    // S2 block format, s2.Encode; CodecS2
	LevelS2Better              // S2 block format, s2.EncodeBetter; CodecS2
)

var levelNames = [...]string{"fastest", "default", "better", "best", "none", "s2", "s2-better"}

// String returns the level's configuration name.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// ParseLevel is the inverse of Level.String; "" means LevelFastest. The
// names it accepts are "fastest", "default", "better", "best", "none", "s2"
// and "s2-better".
func ParseLevel(s string) (Level, error) {
	if s == "" {
		return LevelFastest, nil
	}
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("unknown compression level %q (want one of %s)", s, strings.Join(levelNames[:], ", "))
}

// isS2 reports whether l compresses with S2.
func (l Level) isS2() bool { return l == LevelS2 || l == LevelS2Better }

func (l Level) zstd() zstd.EncoderLevel {
	switch l {
	case LevelDefault:
		return zstd.SpeedDefault
	case LevelBetter:
		return zstd.SpeedBetterCompression
	case LevelBest:
		return zstd.SpeedBestCompression
	}
	return zstd.SpeedFastest
}

// EncoderOptions configure an Encoder. The zero value means LevelFastest.
type EncoderOptions struct {
	Level Level
}

// Encoder seals the batch in a Builder into a frame. At the zstd levels it
// holds one long-lived zstd encoder; the S2 levels keep no state of their
// own (package s2 pools its hash tables). It is not safe for concurrent
// use: give each framer goroutine its own.
type Encoder struct {
	level Level
	zw    *zstd.Encoder // nil unless a zstd level
}

// NewEncoder returns an Encoder with the given options.
func NewEncoder(opts EncoderOptions) (*Encoder, error) {
	if int(opts.Level) >= len(levelNames) {
		return nil, fmt.Errorf("cannot create frame encoder: unknown compression level %d", opts.Level)
	}
	e := &Encoder{level: opts.Level}
	if opts.Level == LevelNone || opts.Level.isS2() {
		return e, nil
	}
	zw, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(opts.Level.zstd()),
		zstd.WithEncoderConcurrency(1),
		// The frame has its own CRC over the stored bytes.
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot create zstd encoder: %w", err)
	}
	e.zw = zw
	return e, nil
}

// AppendFrame appends to dst one frame holding the records in b and returns
// the extended slice.
//
// From h it takes Kind, FirstSeq, Created, Input and Observer (copied);
// Codec, Count, RawLen and DataLen are set from b and the outcome of
// compression, which is dropped for CodecNone when it does not make the
// payload smaller. Created is written as given: the framer sets it to the
// time it seals the frame.
//
// AppendFrame does not modify b; the caller resets it. It does not allocate
// when dst has room for the frame, which is the case after the first few
// frames when dst is reused (dst = enc.AppendFrame(dst[:0], ...)).
// It returns dst unchanged and an error wrapping ErrTooLarge when a name is
// longer than MaxNameLen or the frame would exceed MaxFrameSize.
func (e *Encoder) AppendFrame(dst []byte, h Header, b *Builder) ([]byte, error) {
	raw := b.raw
	if len(h.Input) > MaxNameLen || len(h.Observer) > MaxNameLen {
		return dst, fmt.Errorf("cannot seal frame: input name of %d bytes or observer name of %d bytes is longer than %d: %w",
			len(h.Input), len(h.Observer), MaxNameLen, ErrTooLarge)
	}
	if len(raw) > MaxFrameSize {
		return dst, fmt.Errorf("cannot seal frame: raw payload of %d bytes is over the %d limit: %w", len(raw), MaxFrameSize, ErrTooLarge)
	}
	count := b.n
	if count > 0 && h.FirstSeq > math.MaxUint64-uint64(count-1) {
		return dst, fmt.Errorf("cannot seal frame: sequence %d + %d events overflows", h.FirstSeq, count)
	}
	metaLen := 2 + len(h.Input) + len(h.Observer)
	start := len(dst)
	maxData := len(raw)
	switch {
	case e.zw != nil:
		maxData = max(maxData, e.zw.MaxEncodedSize(len(raw)))
	case e.level.isS2():
		// Positive: len(raw) <= MaxFrameSize is far below s2's limit.
		maxData = max(maxData, s2.MaxEncodedLen(len(raw)))
	}
	// Make room for the worst case up front so that neither our appends
	// nor the compressor reallocate.
	dst = slices.Grow(dst, HeaderSize+metaLen+maxData+TrailerSize)
	dst = dst[:start+HeaderSize]
	dst = append(dst, byte(len(h.Input)))
	dst = append(dst, h.Input...)
	dst = append(dst, byte(len(h.Observer)))
	dst = append(dst, h.Observer...)

	dataStart := len(dst)
	codec := CodecNone
	if len(raw) > 0 {
		switch {
		case e.zw != nil:
			dst = e.zw.EncodeAll(raw, dst)
			codec = CodecZstd
		case e.level.isS2():
			dst = e.appendS2(dst, raw)
			codec = CodecS2
		}
		// Compression that does not make the payload smaller is dropped.
		if codec != CodecNone && len(dst)-dataStart >= len(raw) {
			dst = dst[:dataStart]
			codec = CodecNone
		}
	}
	if codec == CodecNone {
		dst = append(dst, raw...)
	}
	dataLen := len(dst) - dataStart
	if total := len(dst) - start + TrailerSize; total > MaxFrameSize {
		return dst[:start], fmt.Errorf("cannot seal frame: %d bytes over the %d limit: %w", total, MaxFrameSize, ErrTooLarge)
	}

	hd := dst[start : start+HeaderSize]
	copy(hd, Magic)
	hd[4] = Version
	hd[5] = byte(h.Kind)
	hd[6] = byte(codec)
	hd[7] = 0
	le := binary.LittleEndian
	le.PutUint16(hd[8:], uint16(metaLen))
	le.PutUint16(hd[10:], 0)
	le.PutUint32(hd[12:], uint32(count))
	le.PutUint64(hd[16:], h.FirstSeq)
	le.PutUint64(hd[24:], uint64(h.Created))
	le.PutUint32(hd[32:], uint32(len(raw)))
	le.PutUint32(hd[36:], uint32(dataLen))
	crc := crc32.Checksum(dst[start:], castagnoli)
	return le.AppendUint32(dst, crc), nil
}

// appendS2 appends the S2 block encoding of raw to dst, whose capacity
// must already hold s2.MaxEncodedLen(len(raw)) more bytes.
func (e *Encoder) appendS2(dst, raw []byte) []byte {
	start := len(dst)
	// s2 encodes into the start of the slice it is given when that slice
	// can hold the worst case, as this one can.
	buf := dst[start:cap(dst)]
	var out []byte
	if e.level == LevelS2Better {
		out = s2.EncodeBetter(buf, raw)
	} else {
		out = s2.Encode(buf, raw)
	}
	if len(out) > 0 && &out[0] != &buf[0] {
		// s2 allocated its own buffer: cannot happen with the room made
		// by AppendFrame, but stay correct if it ever does.
		return append(dst, out...)
	}
	return dst[:start+len(out)]
}

// Decoder opens frame payloads. It holds one long-lived zstd decoder whose
// memory is bounded by MaxFrameSize whatever the payload claims (S2
// payloads need no decoder state and are bounded the same way, by checking
// the decoded length they announce against the header before decoding),
// and is not safe for concurrent use. Close releases it.
type Decoder struct {
	zr *zstd.Decoder
}

// NewDecoder returns a Decoder.
func NewDecoder() (*Decoder, error) {
	zr, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxFrameSize),
		zstd.WithDecoderMaxWindow(MaxFrameSize),
		// Decode into exactly the rawLen bytes the header promises and
		// fail as soon as a payload wants more.
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot create zstd decoder: %w", err)
	}
	return &Decoder{zr: zr}, nil
}

// Close releases the zstd decoder; d must not be used afterwards.
func (d *Decoder) Close() { d.zr.Close() }

// Records returns the raw payload of a frame (header and payload as returned
// by Parse) in dst[:0], growing dst when it is too small, and checks that it
// is h.RawLen bytes long and splits into exactly h.Count records, so that
// iterating it with Next cannot fail. The result never aliases payload.
//
// Reuse the result as the next dst to stop allocating after warm-up.
// A payload that does not decompress, has the wrong size or malformed
// records gives ErrCorrupt.
func (d *Decoder) Records(dst []byte, h Header, payload []byte) ([]byte, error) {
	if len(payload) != int(h.DataLen) {
		return dst[:0], fmt.Errorf("cannot decode payload: %d bytes, header says %d: %w", len(payload), h.DataLen, ErrCorrupt)
	}
	if h.RawLen > MaxFrameSize {
		return dst[:0], fmt.Errorf("cannot decode payload: raw length %d over the %d limit: %w", h.RawLen, MaxFrameSize, ErrCorrupt)
	}
	switch h.Codec {
	case CodecNone:
		if h.RawLen != h.DataLen {
			return dst[:0], fmt.Errorf("cannot decode payload: uncompressed with raw length %d != data length %d: %w", h.RawLen, h.DataLen, ErrCorrupt)
		}
		dst = append(dst[:0], payload...)
	case CodecZstd:
		rawLen := int(h.RawLen)
		dst = slices.Grow(dst[:0], rawLen)
		out, err := d.zr.DecodeAll(payload, dst[:0:rawLen])
		if err != nil {
			return dst[:0], fmt.Errorf("cannot decompress zstd payload of %d bytes: %w: %w", len(payload), err, ErrCorrupt)
		}
		if len(out) != rawLen {
			return dst[:0], fmt.Errorf("cannot decompress zstd payload: %d bytes, header says %d: %w", len(out), rawLen, ErrCorrupt)
		}
		if rawLen > 0 && &out[0] != &dst[:1][0] {
			// Cannot happen with the cap limit, but do not trust it.
			dst = append(dst[:0], out...)
		}
		dst = dst[:rawLen]
	case CodecS2:
		// The block starts with its decoded length: check it against the
		// header, which is bounded by MaxFrameSize, before decoding, so a
		// payload cannot make the decoder allocate more.
		rawLen := int(h.RawLen)
		n, err := s2.DecodedLen(payload)
		if err != nil {
			return dst[:0], fmt.Errorf("cannot decode s2 payload of %d bytes: %w: %w", len(payload), err, ErrCorrupt)
		}
		if n != rawLen {
			return dst[:0], fmt.Errorf("cannot decode s2 payload: it holds %d bytes, header says %d: %w", n, rawLen, ErrCorrupt)
		}
		dst = slices.Grow(dst[:0], rawLen)
		out, err := s2.Decode(dst[:rawLen], payload)
		if err != nil {
			return dst[:0], fmt.Errorf("cannot decompress s2 payload of %d bytes: %w: %w", len(payload), err, ErrCorrupt)
		}
		if len(out) != rawLen {
			return dst[:0], fmt.Errorf("cannot decompress s2 payload: %d bytes, header says %d: %w", len(out), rawLen, ErrCorrupt)
		}
		if rawLen > 0 && &out[0] != &dst[:1][0] {
			// Cannot happen as dst holds rawLen bytes, but do not trust it.
			dst = append(dst[:0], out...)
		}
		dst = dst[:rawLen]
	default:
		return dst[:0], fmt.Errorf("cannot decode payload: unknown codec %d: %w", uint8(h.Codec), ErrCorrupt)
	}
	if err := countRecords(dst, h.Count); err != nil {
		return dst[:0], fmt.Errorf("cannot decode payload: %w", err)
	}
	return dst, nil
}
