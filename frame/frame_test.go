package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/trawlsec/trawl/event"
)

// specFrame assembles a frame byte by byte from the documented layout,
// independently of Encoder, with the given header fields taken verbatim (so
// tests can state invalid values) and a correct CRC.
type specFrame struct {
	version, kind, codec, flags byte
	metaLen                     int // -1: computed from the names
	reserved                    uint16
	count                       uint32
	firstSeq                    uint64
	created                     int64
	rawLen, dataLen             uint32
	input, observer             []byte
	meta                        []byte // when non-nil, replaces the names
	payload                     []byte
}

func (s specFrame) bytes() []byte {
	meta := s.meta
	if meta == nil {
		meta = append(meta, byte(len(s.input)))
		meta = append(meta, s.input...)
		meta = append(meta, byte(len(s.observer)))
		meta = append(meta, s.observer...)
	}
	metaLen := s.metaLen
	if metaLen < 0 {
		metaLen = len(meta)
	}
	le := binary.LittleEndian
	b := []byte("TRWF")
	b = append(b, s.version, s.kind, s.codec, s.flags)
	b = le.AppendUint16(b, uint16(metaLen))
	b = le.AppendUint16(b, s.reserved)
	b = le.AppendUint32(b, s.count)
	b = le.AppendUint64(b, s.firstSeq)
	b = le.AppendUint64(b, uint64(s.created))
	b = le.AppendUint32(b, s.rawLen)
	b = le.AppendUint32(b, s.dataLen)
	b = append(b, meta...)
	b = append(b, s.payload...)
	return le.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// rawPayload builds a raw payload the way the format describes it.
func rawPayload(recs [][]byte) []byte {
	var raw []byte
	for _, r := range recs {
		raw = binary.AppendUvarint(raw, uint64(len(r)))
		raw = append(raw, r...)
	}
	return raw
}

// validSpec is a small valid uncompressed frame.
func validSpec() specFrame {
	recs := [][]byte{[]byte("alpha"), nil, []byte("gamma gamma")}
	raw := rawPayload(recs)
	return specFrame{
		version: 1, kind: byte(event.KindSyslog), metaLen: -1,
		count: uint32(len(recs)), firstSeq: 1000, created: 1700000000123456789,
		rawLen: uint32(len(raw)), dataLen: uint32(len(raw)),
		input: []byte("syslog-udp"), observer: []byte("node-1"),
		payload: raw,
	}
}

func newEncoder(t testing.TB, l Level) *Encoder {
	t.Helper()
	e, err := NewEncoder(EncoderOptions{Level: l})
	if err != nil {
		t.Fatalf("NewEncoder(%v): %v", l, err)
	}
	return e
}

func newDecoder(t testing.TB) *Decoder {
	t.Helper()
	d, err := NewDecoder()
	if err != nil {
		t.Fatalf("NewDecoder: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

// readAll parses one frame from b and returns its header, records and size.
func readAll(t *testing.T, d *Decoder, b []byte) (Header, [][]byte, int) {
	t.Helper()
	h, payload, n, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	raw, err := d.Records(nil, h, payload)
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	var recs [][]byte
	for len(raw) > 0 {
		var rec []byte
		if rec, raw, err = Next(raw); err != nil {
			t.Fatalf("Next: %v", err)
		}
		recs = append(recs, rec)
	}
	return h, recs, n
}

func TestSpecMatchesEncoder(t *testing.T) {
	// The uncompressed encoding is fully determined by the layout, so the
	// encoder must reproduce the independently assembled bytes exactly.
	s := validSpec()
	var b Builder
	b.Add([]byte("alpha"))
	b.Add(nil)
	b.Add([]byte("gamma gamma"))
	got, err := newEncoder(t, LevelNone).AppendFrame(nil, Header{
		Kind: event.KindSyslog, FirstSeq: s.firstSeq, Created: s.created, Input: s.input, Observer: s.observer,
	}, &b)
	if err != nil {
		t.Fatalf("AppendFrame: %v", err)
	}
	if want := s.bytes(); !bytes.Equal(got, want) {
		t.Fatalf("AppendFrame:\n got % x\nwant % x", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	text := func(n int) []byte {
		words := []string{"sshd", "Accepted", "publickey", "for", "root", "from", "10.0.0.1", "port", "22", "kernel:", "nginx", "GET", "/index.html"}
		var b []byte
		for len(b) < n {
			b = append(b, words[rng.IntN(len(words))]...)
			b = append(b, ' ')
		}
		return b[:n]
	}
	noise := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	maxName := []byte(strings.Repeat("n", MaxNameLen))
	type batch struct {
		name       string
		h          Header
		recs       [][]byte
		compressOK bool // whether compression must have been kept
	}
	var batches []batch
	add := func(name string, h Header, recs [][]byte, compressOK bool) {
		batches = append(batches, batch{name, h, recs, compressOK})
	}
	add("empty frame", Header{Kind: event.KindFlow, FirstSeq: 1, Input: []byte("nf"), Observer: []byte("h")}, nil, false)
	add("empty meta", Header{Kind: event.KindSyslog, FirstSeq: 7, Created: 1}, [][]byte{text(300), text(300)}, true)
	add("max names", Header{Kind: event.KindAudit, FirstSeq: 99, Created: -5, Input: maxName, Observer: maxName}, [][]byte{text(1000)}, true)
	add("zero-length records", Header{Kind: event.KindApp, FirstSeq: 3, Input: []byte("app")}, [][]byte{nil, {}, nil, []byte("x"), nil}, false)
	add("incompressible", Header{Kind: event.KindNetwork, FirstSeq: 10, Input: []byte("bpf")}, [][]byte{noise(5000), noise(1)}, false)
	add("max sequence", Header{Kind: event.KindProcess, FirstSeq: math.MaxUint64 - 1, Input: []byte("p")}, [][]byte{text(200), text(200)}, true)
	var varint [][]byte
	for _, n := range []int{0, 1, 127, 128, 129, 16383, 16384, 70000, 300000} {
		varint = append(varint, text(n))
	}
	add("length prefix boundaries", Header{Kind: event.KindSyslog, FirstSeq: 5, Input: []byte("s")}, varint, true)
	var many [][]byte
	for i := range 100000 {
		many = append(many, text(i%97))
	}
	add("many records", Header{Kind: event.KindFlow, FirstSeq: 1 << 40, Created: time.Now().UnixNano(), Input: []byte("netflow"), Observer: []byte("collector-7")}, many, true)

	for _, level := range []Level{LevelFastest, LevelDefault, LevelBetter, LevelBest, LevelNone, LevelS2, LevelS2Better} {
		t.Run(level.String(), func(t *testing.T) {
			enc := newEncoder(t, level)
			dec := newDecoder(t)
			var stream []byte
			var b Builder
			for _, bt := range batches {
				b.Reset()
				for _, r := range bt.recs {
					b.Add(r)
				}
				if b.Len() != len(bt.recs) {
					t.Fatalf("%s: Len = %d, want %d", bt.name, b.Len(), len(bt.recs))
				}
				if want := len(rawPayload(bt.recs)); b.Bytes() != want {
					t.Fatalf("%s: Bytes = %d, want %d", bt.name, b.Bytes(), want)
				}
				var err error
				if stream, err = enc.AppendFrame(stream, bt.h, &b); err != nil {
					t.Fatalf("%s: AppendFrame: %v", bt.name, err)
				}
			}
			for _, bt := range batches {
				h, recs, n := readAll(t, dec, stream)
				stream = stream[n:]
				wantCodec := CodecNone
				switch {
				case !bt.compressOK || level == LevelNone:
				case level == LevelS2 || level == LevelS2Better:
					wantCodec = CodecS2
				default:
					wantCodec = CodecZstd
				}
				raw := rawPayload(bt.recs)
				if h.Kind != bt.h.Kind || h.FirstSeq != bt.h.FirstSeq || h.Created != bt.h.Created ||
					h.Count != uint32(len(bt.recs)) || h.RawLen != uint32(len(raw)) || h.Codec != wantCodec ||
					!bytes.Equal(h.Input, bt.h.Input) || !bytes.Equal(h.Observer, bt.h.Observer) {
					t.Fatalf("%s: header %+v, written %+v with %d records of %d raw bytes, codec %v", bt.name, h, bt.h, len(bt.recs), len(raw), wantCodec)
				}
				if h.Codec != CodecNone && h.DataLen >= h.RawLen {
					t.Fatalf("%s: kept %v with %d stored >= %d raw bytes", bt.name, h.Codec, h.DataLen, h.RawLen)
				}
				if n != h.Size() {
					t.Fatalf("%s: frame size %d, Header.Size %d", bt.name, n, h.Size())
				}
				if len(recs) != len(bt.recs) {
					t.Fatalf("%s: %d records, want %d", bt.name, len(recs), len(bt.recs))
				}
				for i := range recs {
					if !bytes.Equal(recs[i], bt.recs[i]) {
						t.Fatalf("%s: record %d differs: got %d bytes, want %d", bt.name, i, len(recs[i]), len(bt.recs[i]))
					}
				}
			}
			if len(stream) != 0 {
				t.Fatalf("%d bytes left after the last frame", len(stream))
			}
		})
	}
}

func TestAppendFrame_KeepsDstPrefix(t *testing.T) {
	var b Builder
	b.Add([]byte("record"))
	dst := []byte("prefix")
	out, err := newEncoder(t, LevelFastest).AppendFrame(dst, Header{Input: []byte("i")}, &b)
	if err != nil {
		t.Fatalf("AppendFrame: %v", err)
	}
	if string(out[:6]) != "prefix" {
		t.Fatalf("prefix overwritten: %q", out[:6])
	}
	if _, _, n, err := Parse(out[6:]); err != nil || n != len(out)-6 {
		t.Fatalf("Parse after prefix: n = %d of %d, err %v", n, len(out)-6, err)
	}
}

func TestAppendFrame_Failure(t *testing.T) {
	f := func(name string, h Header, recLens []int, want error) {
		t.Helper()
		var b Builder
		for _, n := range recLens {
			b.Add(make([]byte, n))
		}
		dst := []byte("keep")
		out, err := newEncoder(t, LevelNone).AppendFrame(dst, h, &b)
		if err == nil {
			t.Fatalf("%s: AppendFrame succeeded", name)
		}
		if want != nil && !errors.Is(err, want) {
			t.Fatalf("%s: error %v, want %v", name, err, want)
		}
		if string(out) != "keep" {
			t.Fatalf("%s: dst changed to %d bytes on error", name, len(out))
		}
	}
	long := make([]byte, MaxNameLen+1)
	f("long input", Header{Input: long}, []int{1}, ErrTooLarge)
	f("long observer", Header{Observer: long}, []int{1}, ErrTooLarge)
	f("raw over limit", Header{}, []int{MaxFrameSize + 1}, ErrTooLarge)
	f("frame over limit", Header{Input: []byte("x")}, []int{MaxFrameSize - 10}, ErrTooLarge)
	f("sequence overflow", Header{FirstSeq: math.MaxUint64}, []int{1, 1}, nil)
	if _, err := NewEncoder(EncoderOptions{Level: LevelS2Better + 1}); err == nil {
		t.Fatal("NewEncoder accepted an unknown level")
	}
}

func TestParseLevel(t *testing.T) {
	f := func(s string, want Level, ok bool) {
		t.Helper()
		got, err := ParseLevel(s)
		if (err == nil) != ok || (ok && got != want) {
			t.Fatalf("ParseLevel(%q) = %v, %v; want %v, ok %v", s, got, err, want, ok)
		}
		if ok && s != "" && got.String() != s {
			t.Fatalf("Level(%d).String() = %q, want %q", got, got.String(), s)
		}
	}
	f("", LevelFastest, true)
	f("fastest", LevelFastest, true)
	f("default", LevelDefault, true)
	f("better", LevelBetter, true)
	f("best", LevelBest, true)
	f("none", LevelNone, true)
	f("s2", LevelS2, true)
	f("s2-better", LevelS2Better, true)
	f("fast", 0, false)
	f("Fastest", 0, false)
	f("S2", 0, false)
	f("s2better", 0, false)
	if got := Level(LevelS2Better + 1).String(); got != "level(7)" {
		t.Fatalf("String of an unknown level = %q", got)
	}
	// The error lists every valid name, so the config error does too.
	_, err := ParseLevel("zip")
	for _, n := range levelNames {
		if err == nil || !strings.Contains(err.Error(), n) {
			t.Fatalf("ParseLevel error %v does not list %q", err, n)
		}
	}
}

func TestCodecString(t *testing.T) {
	f := func(c Codec, want string) {
		t.Helper()
		if got := c.String(); got != want {
			t.Fatalf("Codec(%d).String() = %q, want %q", uint8(c), got, want)
		}
	}
	f(CodecNone, "none")
	f(CodecZstd, "zstd")
	f(CodecS2, "s2")
	f(3, "codec(3)")
}

// encodedSamples returns a few small frames of every codec: none, zstd, s2.
func encodedSamples(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, level := range []Level{LevelNone, LevelFastest, LevelS2} {
		enc := newEncoder(t, level)
		var b Builder
		for i := range 6 {
			b.Add([]byte(fmt.Sprintf("<34>1 2024-01-02T03:04:05Z host%d sshd %d - - Accepted publickey for root", i, 4000+i)))
		}
		b.Add(nil)
		fr, err := enc.AppendFrame(nil, Header{Kind: event.KindSyslog, FirstSeq: 42, Created: 1e18, Input: []byte("syslog"), Observer: []byte("obs")}, &b)
		if err != nil {
			t.Fatalf("AppendFrame: %v", err)
		}
		out = append(out, fr)
	}
	for i, want := range []Codec{CodecNone, CodecZstd, CodecS2} {
		if h, _, _, _ := Parse(out[i]); h.Codec != want {
			t.Fatalf("sample frame %d has codec %v, want %v", i, h.Codec, want)
		}
	}
	return out
}

func TestParse_EveryByteFlipped(t *testing.T) {
	dec := newDecoder(t)
	for _, fr := range encodedSamples(t) {
		for i := range fr {
			for _, mask := range []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff} {
				bad := bytes.Clone(fr)
				bad[i] ^= mask
				h, payload, _, err := Parse(bad)
				if err == nil {
					raw, derr := dec.Records(nil, h, payload)
					t.Fatalf("byte %d ^ %#02x: Parse accepted the frame (records %q, %v)", i, mask, raw, derr)
				}
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) {
					t.Fatalf("byte %d ^ %#02x: error %v is neither ErrCorrupt nor ErrTruncated", i, mask, err)
				}
			}
		}
	}
}

func TestParse_EveryTruncation(t *testing.T) {
	for _, fr := range encodedSamples(t) {
		for n := range len(fr) {
			_, _, _, err := Parse(fr[:n])
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("Parse of %d of %d bytes: error %v, want ErrTruncated", n, len(fr), err)
			}
			// Once the fixed header is in, the total size is known.
			_, total, err := PeekHeader(fr[:n])
			if n >= HeaderSize && total != len(fr) {
				t.Fatalf("PeekHeader of %d bytes: total %d, want %d (err %v)", n, total, len(fr), err)
			}
		}
		// And with trailing bytes the frame still parses with its own size.
		_, _, n, err := Parse(append(bytes.Clone(fr), "next frame"...))
		if err != nil || n != len(fr) {
			t.Fatalf("Parse with trailing bytes: n = %d, want %d, err %v", n, len(fr), err)
		}
	}
}

func TestPeekHeader(t *testing.T) {
	fr := validSpec().bytes()
	h, total, err := PeekHeader(fr)
	if err != nil {
		t.Fatalf("PeekHeader: %v", err)
	}
	if total != len(fr) || string(h.Input) != "syslog-udp" || string(h.Observer) != "node-1" || h.Count != 3 || h.FirstSeq != 1000 {
		t.Fatalf("PeekHeader = %+v, total %d; frame is %d bytes", h, total, len(fr))
	}
	// PeekHeader does not read the payload, so a bad CRC is not its concern.
	fr[len(fr)-1] ^= 1
	if _, _, err := PeekHeader(fr); err != nil {
		t.Fatalf("PeekHeader checked the CRC: %v", err)
	}
	// Ending inside the meta block: total known, names not.
	h, total, err = PeekHeader(fr[:HeaderSize+3])
	if !errors.Is(err, ErrTruncated) || total != len(fr) || h.Input != nil || h.Count != 3 {
		t.Fatalf("PeekHeader inside meta = %+v, total %d, err %v", h, total, err)
	}
}

func TestParse_Failure(t *testing.T) {
	f := func(name string, mutate func(s *specFrame), want error) {
		t.Helper()
		s := validSpec()
		mutate(&s)
		_, _, _, err := Parse(s.bytes())
		if !errors.Is(err, want) {
			t.Fatalf("%s: Parse error %v, want %v", name, err, want)
		}
		// Garbage after the magic must not be a reason to wait for more.
		if want == ErrCorrupt {
			if _, _, err := PeekHeader(s.bytes()); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: PeekHeader error %v", name, err)
			}
		}
	}
	f("version 0", func(s *specFrame) { s.version = 0 }, ErrCorrupt)
	f("version 2", func(s *specFrame) { s.version = 2 }, ErrCorrupt)
	f("codec 3", func(s *specFrame) { s.codec = 3 }, ErrCorrupt)
	f("codec 255", func(s *specFrame) { s.codec = 255 }, ErrCorrupt)
	f("flags", func(s *specFrame) { s.flags = 1 }, ErrCorrupt)
	f("reserved", func(s *specFrame) { s.reserved = 0x100 }, ErrCorrupt)
	f("meta length 0", func(s *specFrame) { s.meta = []byte{}; s.metaLen = -1 }, ErrCorrupt)
	f("meta length 1", func(s *specFrame) { s.meta = []byte{0}; s.metaLen = -1 }, ErrCorrupt)
	f("meta length over max", func(s *specFrame) { s.meta = make([]byte, MaxMetaLen+1); s.metaLen = -1 }, ErrCorrupt)
	f("input name overruns meta", func(s *specFrame) { s.meta = []byte{5, 'a', 'b', 0}; s.metaLen = -1 }, ErrCorrupt)
	f("names short of meta", func(s *specFrame) { s.meta = []byte{1, 'a', 0, 'x'}; s.metaLen = -1 }, ErrCorrupt)
	f("names past meta", func(s *specFrame) { s.meta = []byte{1, 'a', 2, 'x'}; s.metaLen = -1 }, ErrCorrupt)
	f("count over raw length", func(s *specFrame) { s.count = s.rawLen + 1 }, ErrCorrupt)
	f("raw length over max", func(s *specFrame) { s.rawLen = MaxFrameSize + 1; s.dataLen = 0; s.codec = 1 }, ErrCorrupt)
	f("none with data != raw", func(s *specFrame) { s.rawLen++ }, ErrCorrupt)
	f("zstd with raw 0", func(s *specFrame) { s.codec = 1; s.rawLen = 0; s.count = 0 }, ErrCorrupt)
	f("zstd with data 0", func(s *specFrame) { s.codec = 1; s.dataLen = 0; s.payload = nil }, ErrCorrupt)
	f("s2 with raw 0", func(s *specFrame) { s.codec = 2; s.rawLen = 0; s.count = 0 }, ErrCorrupt)
	f("s2 with data 0", func(s *specFrame) { s.codec = 2; s.dataLen = 0; s.payload = nil }, ErrCorrupt)
	f("frame over max", func(s *specFrame) { s.codec = 1; s.dataLen = MaxFrameSize }, ErrCorrupt)
	f("data length past end", func(s *specFrame) { s.dataLen += 10; s.rawLen += 10 }, ErrTruncated)
	f("data length short", func(s *specFrame) { s.dataLen--; s.rawLen-- }, ErrCorrupt)
	f("sequence overflow", func(s *specFrame) { s.firstSeq = math.MaxUint64 - 1 }, ErrCorrupt)

	garbage := func(name string, b []byte, want error) {
		t.Helper()
		if _, _, _, err := Parse(b); !errors.Is(err, want) {
			t.Fatalf("%s: Parse error %v, want %v", name, err, want)
		}
	}
	garbage("nil", nil, ErrTruncated)
	garbage("magic prefix", []byte("TR"), ErrTruncated)
	garbage("wrong magic", []byte("TRWX"), ErrCorrupt)
	garbage("text", []byte("hello, this is not a frame at all, not even close to one"), ErrCorrupt)
	garbage("zeros", make([]byte, 100), ErrCorrupt)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if rng.IntN(2) == 0 && len(b) >= 5 {
			copy(b, "TRWF\x01")
		}
		if _, _, _, err := Parse(b); err == nil || !(errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated)) {
			t.Fatalf("random bytes % x: error %v", b, err)
		}
	}
	// The sealed meta block of the valid spec must parse; guards the cases above.
	if _, _, _, err := Parse(validSpec().bytes()); err != nil {
		t.Fatalf("valid spec frame: %v", err)
	}
}

func zstdBytes(t *testing.T, raw []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(raw, nil)
}

func TestRecords_Failure(t *testing.T) {
	dec := newDecoder(t)
	f := func(name string, codec byte, count uint32, rawLen uint32, payload []byte) {
		t.Helper()
		s := validSpec()
		s.codec, s.count, s.rawLen, s.dataLen, s.payload = codec, count, rawLen, uint32(len(payload)), payload
		h, p, _, err := Parse(s.bytes())
		if err != nil {
			t.Fatalf("%s: Parse: %v", name, err)
		}
		raw, err := dec.Records(make([]byte, 0, 16), h, p)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: Records = %q, %v; want ErrCorrupt", name, raw, err)
		}
	}
	good := rawPayload([][]byte{[]byte("one"), []byte("two")})
	f("count too high", 0, 3, uint32(len(good)), good)
	f("count too low", 0, 1, uint32(len(good)), good)
	f("length past end", 0, 1, 3, []byte{5, 'a', 'b'})
	f("overlong length", 0, 1, 3, []byte{0x81, 0x00, 'a'})
	f("unterminated length", 0, 1, 2, []byte{0x80, 0x80})
	f("zstd garbage", 1, 2, uint32(len(good)), []byte("definitely not zstd"))
	f("zstd shorter than raw length", 1, 2, uint32(len(good))+1, zstdBytes(t, good))
	f("zstd longer than raw length", 1, 1, uint32(len(good))-1, zstdBytes(t, good))
	f("zstd with bad records", 1, 1, 3, zstdBytes(t, []byte{5, 'a', 'b'}))
	s2good := s2.Encode(nil, good)
	f("s2 garbage", 2, 2, uint32(len(good)), []byte("\xff\xff\xff\xff\xff\xff definitely not s2"))
	f("s2 shorter than raw length", 2, 2, uint32(len(good))+1, s2good)
	f("s2 longer than raw length", 2, 1, uint32(len(good))-1, s2good)
	f("s2 announcing a huge length", 2, 2, uint32(len(good)), append(binary.AppendUvarint(nil, 1<<31), s2good[1:]...))
	f("s2 truncated", 2, 2, uint32(len(good)), s2good[:len(s2good)-1])
	f("s2 with trailing bytes", 2, 2, uint32(len(good)), append(bytes.Clone(s2good), 0))
	f("s2 with bad records", 2, 1, 3, s2.Encode(nil, []byte{5, 'a', 'b'}))
	// A copy reaching before the start of the block: decoded length 8,
	// a 4-byte literal "abcd", then a copy of 4 bytes from offset 9.
	f("s2 copy before start", 2, 2, 8, []byte{8, 3 << 2, 'a', 'b', 'c', 'd', 0x01, 9})

	// A header that does not match the payload handed in.
	h, p, _, err := Parse(validSpec().bytes())
	if err != nil {
		t.Fatal(err)
	}
	h.DataLen++
	if _, err := dec.Records(nil, h, p); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("mismatched DataLen: %v", err)
	}
}

func TestRecords_ReusesDst(t *testing.T) {
	dec := newDecoder(t)
	for _, fr := range encodedSamples(t) {
		h, p, _, err := Parse(fr)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, 0, 4096)
		raw, err := dec.Records(dst, h, p)
		if err != nil {
			t.Fatalf("Records: %v", err)
		}
		if &raw[0] != &dst[:1][0] {
			t.Fatalf("codec %v: Records did not decode into dst", h.Codec)
		}
		if len(raw) != int(h.RawLen) {
			t.Fatalf("codec %v: %d raw bytes, want %d", h.Codec, len(raw), h.RawLen)
		}
	}
}

func TestNext(t *testing.T) {
	f := func(raw []byte, wantRec, wantRest string, ok bool) {
		t.Helper()
		rec, rest, err := Next(raw)
		if !ok {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Next(% x): %q, %q, %v; want ErrCorrupt", raw, rec, rest, err)
			}
			return
		}
		if err != nil || string(rec) != wantRec || string(rest) != wantRest {
			t.Fatalf("Next(% x) = %q, %q, %v; want %q, %q", raw, rec, rest, err, wantRec, wantRest)
		}
		if cap(rec) != len(rec) {
			t.Fatalf("Next(% x): record capacity %d reaches into the next record", raw, cap(rec))
		}
	}
	f([]byte{0}, "", "", true)
	f([]byte{0, 0}, "", "\x00", true)
	f([]byte{1, 'a'}, "a", "", true)
	f([]byte{2, 'a', 'b', 1, 'c'}, "ab", "\x01c", true)
	long := strings.Repeat("z", 200)
	f(append([]byte{0xc8, 0x01}, long+"tail"...), long, "tail", true)
	f(nil, "", "", false)
	f([]byte{1}, "", "", false)
	f([]byte{3, 'a', 'b'}, "", "", false)
	f([]byte{0x80}, "", "", false)
	f([]byte{0x80, 0x00}, "", "", false)                        // overlong zero
	f([]byte{0x81, 0x80, 0x00, 'a'}, "", "", false)             // overlong one
	f(bytes.Repeat([]byte{0xff}, 11), "", "", false)            // overflows 64 bits
	f([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}, "", "", false) // 4 GiB record in 6 bytes
}

func TestBatchLimits(t *testing.T) {
	if err := DefaultBatchLimits().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	f := func(l BatchLimits, field string) {
		t.Helper()
		err := l.Validate()
		if field == "" {
			if err != nil {
				t.Fatalf("Validate(%+v): %v", l, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Fatalf("Validate(%+v) = %v, want an error naming %s", l, err, field)
		}
	}
	ok := DefaultBatchLimits()
	f(ok, "")
	f(BatchLimits{MaxEvents: 1, MaxBytes: 1, MaxLatency: time.Nanosecond}, "")
	f(BatchLimits{MaxEvents: 1, MaxBytes: MaxBatchBytes, MaxLatency: time.Hour}, "")
	f(BatchLimits{MaxEvents: 0, MaxBytes: 1, MaxLatency: time.Second}, "MaxEvents")
	f(BatchLimits{MaxEvents: -1, MaxBytes: 1, MaxLatency: time.Second}, "MaxEvents")
	f(BatchLimits{MaxEvents: MaxBatchBytes + 1, MaxBytes: 1, MaxLatency: time.Second}, "MaxEvents")
	f(BatchLimits{MaxEvents: 1, MaxBytes: 0, MaxLatency: time.Second}, "MaxBytes")
	f(BatchLimits{MaxEvents: 1, MaxBytes: MaxBatchBytes + 1, MaxLatency: time.Second}, "MaxBytes")
	f(BatchLimits{MaxEvents: 1, MaxBytes: 1, MaxLatency: 0}, "MaxLatency")
	f(BatchLimits{MaxEvents: 1, MaxBytes: 1, MaxLatency: -time.Second}, "MaxLatency")

	l := BatchLimits{MaxEvents: 3, MaxBytes: 100, MaxLatency: time.Second}
	var b Builder
	steps := []struct {
		rec  int
		full bool
	}{{10, false}, {10, false}, {10, true}}
	for i, s := range steps {
		b.Add(make([]byte, s.rec))
		if got := l.Full(&b); got != s.full {
			t.Fatalf("by events, after record %d: Full = %v, want %v", i, got, s.full)
		}
	}
	b.Reset()
	if l.Full(&b) || b.Len() != 0 || b.Bytes() != 0 {
		t.Fatalf("after Reset: Full %v, Len %d, Bytes %d", l.Full(&b), b.Len(), b.Bytes())
	}
	b.Add(make([]byte, 97)) // 98 bytes with the prefix
	if l.Full(&b) {
		t.Fatal("Full at 98 of 100 bytes")
	}
	b.Add(make([]byte, 1)) // 100 bytes
	if !l.Full(&b) {
		t.Fatal("not Full at 100 of 100 bytes")
	}
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not stable under the race detector")
	}
	rec := []byte("<13>Jan  2 03:04:05 web-17 nginx[2211]: 10.1.2.3 - - GET /api/v1/items 200 512")
	var b Builder
	for range 512 {
		b.Add(rec)
	}
	if n := testing.AllocsPerRun(100, func() {
		b.Reset()
		for range 512 {
			b.Add(rec)
		}
	}); n != 0 {
		t.Errorf("Builder.Add: %v allocs per run", n)
	}
	h := Header{Kind: event.KindSyslog, FirstSeq: 1, Created: 2, Input: []byte("syslog"), Observer: []byte("node")}
	dec := newDecoder(t)
	for _, level := range []Level{LevelFastest, LevelNone, LevelS2, LevelS2Better} {
		enc := newEncoder(t, level)
		fr, err := enc.AppendFrame(nil, h, &b)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(50, func() {
			if fr, err = enc.AppendFrame(fr[:0], h, &b); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%v: Encoder.AppendFrame: %v allocs per run", level, n)
		}
		var raw []byte
		if n := testing.AllocsPerRun(50, func() {
			ph, payload, _, err := Parse(fr)
			if err != nil {
				t.Fatal(err)
			}
			if raw, err = dec.Records(raw, ph, payload); err != nil {
				t.Fatal(err)
			}
			for rest := raw; len(rest) > 0; {
				if _, rest, err = Next(rest); err != nil {
					t.Fatal(err)
				}
			}
		}); n != 0 {
			t.Errorf("%v: Parse + Decoder.Records + Next: %v allocs per run", level, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			if _, _, _, err := Parse(fr); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%v: Parse: %v allocs per run", level, n)
		}
	}
}

// TestAppendEvent checks the length prefixes AppendEvent writes, for
// records of one, two and three length bytes, against Next.
func TestAppendEvent(t *testing.T) {
	var ev event.Event
	ev.Kind = event.KindApp
	var raw []byte
	var want [][]byte
	for _, n := range []int{1, 100, 127, 128, 5000, 16383, 16384, 70000} {
		ev.App.Raw = bytes.Repeat([]byte("x"), n)
		raw = AppendEvent(raw, &ev)
		want = append(want, event.AppendBinary(nil, &ev))
	}
	for i, w := range want {
		rec, rest, err := Next(raw)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !bytes.Equal(rec, w) {
			t.Fatalf("record %d: %d bytes, want %d", i, len(rec), len(w))
		}
		raw = rest
	}
	if len(raw) != 0 {
		t.Fatalf("%d bytes left over", len(raw))
	}
}
