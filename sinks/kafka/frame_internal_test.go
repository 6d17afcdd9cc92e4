package kafka

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
)

// testFrame is a frame of n syslog events of input in.
func testFrame(t testing.TB, in string, n int) []byte {
	t.Helper()
	enc, err := frame.NewEncoder(frame.EncoderOptions{Level: frame.LevelS2})
	if err != nil {
		t.Fatal(err)
	}
	var b frame.Builder
	for i := range n {
		ev := event.Event{Kind: event.KindSyslog, RecvTime: int64(i), Source: netip.MustParseAddrPort("127.0.0.1:514"),
			Syslog: event.Syslog{Hostname: []byte("h"), Message: []byte("a message that repeats itself, a message that repeats itself")}}
		b.Add(event.AppendBinary(nil, &ev))
	}
	fr, err := enc.AppendFrame(nil, frame.Header{Kind: event.KindSyslog, FirstSeq: 7, Input: []byte(in), Observer: []byte("o")}, &b)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

func frameSink() *Sink {
	return &Sink{opts: Options{Encoding: EncodingFrame, Topics: map[event.Kind]string{event.KindSyslog: "logs"}},
		hdrs: make(map[event.Kind][]kgo.RecordHeader), keys: make(map[string][]byte)}
}

// TestFrameRecord: the record of a frame is the frame's bytes (a copy: the
// spool reader reuses its buffer), keyed by input, on the kind's topic with
// the trawl-frame headers; what is not exactly one valid frame is refused.
func TestFrameRecord(t *testing.T) {
	s := frameSink()
	fr := testFrame(t, "syslog_udp", 100)
	var r kgo.Record
	h, err := s.frameRecord(&r, fr)
	if err != nil {
		t.Fatal(err)
	}
	if h.Count != 100 || !bytes.Equal(r.Value, fr) || &r.Value[0] == &fr[0] || string(r.Key) != "syslog_udp" || r.Topic != "logs" {
		t.Fatalf("record %s key %q, header %+v", r.Topic, r.Key, h)
	}
	want := []kgo.RecordHeader{{Key: "trawl.encoding", Value: []byte("trawl-frame")}, {Key: "trawl.encoding.version", Value: []byte("1")}, {Key: "trawl.kind", Value: []byte("syslog")}}
	if len(r.Headers) != len(want) {
		t.Fatalf("headers %v", r.Headers)
	}
	for i := range want {
		if r.Headers[i].Key != want[i].Key || !bytes.Equal(r.Headers[i].Value, want[i].Value) {
			t.Fatalf("headers %v, want %v", r.Headers, want)
		}
	}
	bad := func(name string, b []byte) {
		t.Helper()
		var r kgo.Record
		if _, err := s.frameRecord(&r, b); !errors.Is(err, frame.ErrCorrupt) && !errors.Is(err, frame.ErrTruncated) {
			t.Fatalf("%s: error %v", name, err)
		}
		if r.Value != nil {
			t.Fatalf("%s: the record got a value", name)
		}
	}
	bad("trailing byte", append(append([]byte(nil), fr...), 0))
	bad("truncated", fr[:len(fr)-1])
	flipped := append([]byte(nil), fr...)
	flipped[len(flipped)/2] ^= 1
	bad("flipped bit", flipped)
}

// TestFrameRecordAllocs pins the per-frame work of encoding frame at zero
// allocations once the value pool and the key and header caches hold what
// it needs: the sink itself spends no allocation per event.
func TestFrameRecordAllocs(t *testing.T) {
	s := frameSink()
	frames := [][]byte{testFrame(t, "a", 300), testFrame(t, "b", 500), testFrame(t, "a", 10)}
	i := 0
	var err error
	run := func() {
		var r kgo.Record
		if _, e := s.frameRecord(&r, frames[i%len(frames)]); e != nil {
			err = e
		}
		s.values.put(r.Value) // as the promise does
		i++
	}
	for range 10 {
		run()
	}
	if n := testing.AllocsPerRun(300, run); n != 0 || err != nil {
		t.Fatalf("%v allocs per frame record, error %v", n, err)
	}
}

// TestValuePool: buffers come back with the asked length, are reused, and
// the pool keeps neither too many nor too large ones.
func TestValuePool(t *testing.T) {
	var p valuePool
	b := p.get(100_000)
	if len(b) != 100_000 || cap(b) != 128<<10 {
		t.Fatalf("len %d cap %d, want 100000 rounded up to 128KiB", len(b), cap(b))
	}
	p.put(b)
	if c := p.get(50); &c[0] != &b[0] || len(c) != 50 {
		t.Fatal("a returned buffer was not reused")
	}
	p.put(make([]byte, maxPooledValueCap+1))
	if len(p.free) != 0 {
		t.Fatal("the pool kept an oversize buffer")
	}
	for range maxPooledValues + 5 {
		p.put(make([]byte, 10))
	}
	if len(p.free) != maxPooledValues {
		t.Fatalf("the pool keeps %d buffers", len(p.free))
	}
	if c := p.get(1 << 20); cap(c) < 1<<20 {
		t.Fatal("a small pooled buffer was handed out for a large frame")
	}
}

func TestParseEncoding(t *testing.T) {
	for _, e := range []Encoding{EncodingJSON, EncodingProtobuf, EncodingFrame} {
		if got, err := ParseEncoding(e.String()); err != nil || got != e {
			t.Fatalf("ParseEncoding(%q) = %v, %v", e.String(), got, err)
		}
	}
	if e, err := ParseEncoding(""); err != nil || e != EncodingJSON {
		t.Fatalf(`ParseEncoding("") = %v, %v`, e, err)
	}
	if _, err := ParseEncoding("frames"); err == nil || !bytes.Contains([]byte(err.Error()), []byte("json, protobuf or frame")) {
		t.Fatalf(`ParseEncoding("frames"): %v`, err)
	}
}
