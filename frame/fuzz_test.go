package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/trawlsec/trawl/event"
)

// FuzzParse feeds arbitrary bytes to the frame decoder. Invariants:
//   - Parse, PeekHeader, Decoder.Records and Next never panic and fail only
//     with ErrCorrupt or ErrTruncated;
//   - a frame Parse accepts has the size PeekHeader and Header.Size report;
//   - its records decode, or Records reports ErrCorrupt; once they decode,
//     Next yields exactly Count records;
//   - re-encoding those records without compression gives a frame whose
//     header and records equal the original's, and which is byte-identical
//     to it when the original was uncompressed (the encoding is canonical).
//
// Random bytes almost never carry a valid CRC, so each input is also tried
// with its CRC repaired: that lets the fuzzer reach the header checks past
// the CRC, zstd and the record framing.
func FuzzParse(f *testing.F) {
	for _, fr := range encodedSamples(f) {
		f.Add(fr)
		f.Add(fr[:len(fr)/2])
	}
	f.Add(validSpec().bytes())
	var b Builder
	for _, rec := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("flow "), 40)} {
		b.Add(rec)
	}
	for _, level := range []Level{LevelNone, LevelFastest, LevelBest, LevelS2, LevelS2Better} {
		fr, err := newEncoder(f, level).AppendFrame(nil, Header{Kind: event.KindFlow, FirstSeq: 1 << 33, Created: -1, Input: []byte("nf")}, &b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fr)
	}
	f.Add([]byte("TRWF\x01"))
	f.Add([]byte{})

	dec := newDecoder(f)
	plain := newEncoder(f, LevelNone)
	var raw, again []byte
	var rb Builder
	var fixed []byte
	check := func(t *testing.T, data []byte) {
		isFrameErr := func(err error) bool { return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated) }
		ph, total, perr := PeekHeader(data)
		h, payload, n, err := Parse(data)
		if err != nil {
			if !isFrameErr(err) {
				t.Fatalf("Parse error %v is neither ErrCorrupt nor ErrTruncated", err)
			}
			if perr != nil && !isFrameErr(perr) {
				t.Fatalf("PeekHeader error %v is neither ErrCorrupt nor ErrTruncated", perr)
			}
			return
		}
		if perr != nil || total != n || n != h.Size() || n > len(data) {
			t.Fatalf("Parse size %d, PeekHeader %d (%v), Header.Size %d, input %d", n, total, perr, h.Size(), len(data))
		}
		if ph.Count != h.Count || ph.RawLen != h.RawLen || !bytes.Equal(ph.Input, h.Input) {
			t.Fatalf("PeekHeader %+v differs from Parse %+v", ph, h)
		}
		raw, err = dec.Records(raw, h, payload)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Records error %v is not ErrCorrupt", err)
			}
			return
		}
		rb.Reset()
		for rest := raw; len(rest) > 0; {
			var rec []byte
			if rec, rest, err = Next(rest); err != nil {
				t.Fatalf("Next failed after Records succeeded: %v", err)
			}
			rb.Add(rec)
		}
		if rb.Len() != int(h.Count) || !bytes.Equal(rb.Raw(), raw) {
			t.Fatalf("re-adding %d records gives %d raw bytes, header says %d records, %d raw bytes", rb.Len(), rb.Bytes(), h.Count, h.RawLen)
		}
		again, err = plain.AppendFrame(again[:0], h, &rb)
		if err != nil {
			t.Fatalf("re-encoding a parsed frame: %v", err)
		}
		h2, payload2, n2, err := Parse(again)
		if err != nil || n2 != len(again) {
			t.Fatalf("parsing the re-encoded frame: n %d of %d, %v", n2, len(again), err)
		}
		if h2.Kind != h.Kind || h2.Count != h.Count || h2.FirstSeq != h.FirstSeq || h2.Created != h.Created ||
			h2.RawLen != h.RawLen || h2.Codec != CodecNone || !bytes.Equal(h2.Input, h.Input) || !bytes.Equal(h2.Observer, h.Observer) {
			t.Fatalf("re-encoded header %+v, original %+v", h2, h)
		}
		if !bytes.Equal(payload2, raw) {
			t.Fatal("re-encoded records differ")
		}
		if h.Codec == CodecNone && !bytes.Equal(again, data[:n]) {
			t.Fatalf("uncompressed frame not canonical:\n got % x\nwant % x", again, data[:n])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, data)
		if _, total, err := PeekHeader(data); err == nil && total <= len(data) {
			fixed = append(fixed[:0], data...)
			binary.LittleEndian.PutUint32(fixed[total-TrailerSize:], crc32.Checksum(fixed[:total-TrailerSize], castagnoli))
			check(t, fixed)
		}
	})
}
