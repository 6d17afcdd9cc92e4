package frame

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// Level is the compression effort of an Encoder.
type Level uint8

// Levels. The zero value is LevelFastest, which is what a collector wants:
// at a few hundred bytes per event the CPU spent on better levels buys little.
const (
	LevelFastest Level = iota // zstd "fastest" (about zstd -1)
	LevelDefault              // zstd "default" (about zstd -3)
	LevelBetter               // zstd "better" (about zstd -7)
	LevelBest                 // zstd "best" (about zstd -11)
	LevelNone                 // no compression: every frame is CodecNone
)

var levelNames = [...]string{"fastest", "default", "better", "best", "none"}

// String returns the level's configuration name.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// ParseLevel is the inverse of Level.String; "" means LevelFastest.
func ParseLevel(s string) (Level, error) {
	if s == "" {
		return LevelFastest, nil
	}
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("unknown compression level %q (want one of fastest, default, better, best, none)", s)
}

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

// Encoder seals the batch in a Builder into a frame. It holds one
// long-lived zstd encoder and is not safe for concurrent use: give each
// framer goroutine its own.
type Encoder struct {
	zw *zstd.Encoder // nil for LevelNone
}

// NewEncoder returns an Encoder with the given options.
func NewEncoder(opts EncoderOptions) (*Encoder, error) {
	if opts.Level > LevelNone {
		return nil, fmt.Errorf("cannot create frame encoder: unknown compression level %d", opts.Level)
	}
	e := &Encoder{}
	if opts.Level == LevelNone {
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
	if e.zw != nil {
		maxData = max(maxData, e.zw.MaxEncodedSize(len(raw)))
	}
	// Make room for the worst case up front so that neither our appends
	// nor zstd's EncodeAll reallocate.
	dst = slices.Grow(dst, HeaderSize+metaLen+maxData+TrailerSize)
	dst = dst[:start+HeaderSize]
	dst = append(dst, byte(len(h.Input)))
	dst = append(dst, h.Input...)
	dst = append(dst, byte(len(h.Observer)))
	dst = append(dst, h.Observer...)

	dataStart := len(dst)
	codec := CodecNone
	if e.zw != nil && len(raw) > 0 {
		dst = e.zw.EncodeAll(raw, dst)
		if len(dst)-dataStart < len(raw) {
			codec = CodecZstd
		} else {
			dst = dst[:dataStart]
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

// Decoder opens frame payloads. It holds one long-lived zstd decoder whose
// memory is bounded by MaxFrameSize whatever the payload claims, and is not
// safe for concurrent use. Close releases it.
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
	default:
		return dst[:0], fmt.Errorf("cannot decode payload: unknown codec %d: %w", uint8(h.Codec), ErrCorrupt)
	}
	if err := countRecords(dst, h.Count); err != nil {
		return dst[:0], fmt.Errorf("cannot decode payload: %w", err)
	}
	return dst, nil
}
