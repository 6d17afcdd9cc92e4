package consumer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
)

// sealFrame encodes evs (their Seq, Input and Observer are the frame's to
// carry) as one frame of kind k at level.
func sealFrame(t testing.TB, level frame.Level, k event.Kind, firstSeq uint64, evs []event.Event, extra ...[]byte) []byte {
	t.Helper()
	enc, err := frame.NewEncoder(frame.EncoderOptions{Level: level})
	if err != nil {
		t.Fatal(err)
	}
	var b frame.Builder
	for i := range evs {
		b.Add(event.AppendBinary(nil, &evs[i]))
	}
	for _, r := range extra {
		b.Add(r)
	}
	fr, err := enc.AppendFrame(nil, frame.Header{Kind: k, FirstSeq: firstSeq, Created: recvNs, Input: []byte("edge"), Observer: []byte("trawl-7")}, &b)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

// frameRecord is a trawl-frame record as the Kafka sink writes it.
func frameRecord(value []byte, ver string) *kgo.Record {
	r := record("trawl.process", EncodingTrawlFrame, ver, event.KindProcess, value)
	r.Partition, r.Offset, r.Key = 3, 1234, []byte("edge")
	return r
}

// testSource is a KafkaSource without a client: enough for add.
func testSource(t testing.TB) *KafkaSource {
	return &KafkaSource{opts: KafkaOptions{Group: "g", Logf: t.Logf}}
}

// TestKafkaFrameRecord_Success: each event of a trawl-frame record becomes
// a message with the frame's per-frame fields, the event's own kind and
// key, and the record's topic, partition and offset: the JSON a spool
// source gives for the same frame. An eBPF frame mixes kinds; every codec
// reads.
func TestKafkaFrameRecord_Success(t *testing.T) {
	others := SampleOthers()
	evs := []event.Event{others[1], others[2], others[1]} // process, network, process
	for _, level := range []frame.Level{frame.LevelS2, frame.LevelFastest, frame.LevelNone} {
		s := testSource(t)
		r := frameRecord(sealFrame(t, level, event.KindProcess, 500, evs), "1")
		s.add(r)
		if len(s.msgs) != len(evs) || s.skipped.Load() != 0 {
			t.Fatalf("%v: %d messages, %d skipped", level, len(s.msgs), s.skipped.Load())
		}
		for i, m := range s.msgs {
			want := evs[i]
			want.Seq, want.Input, want.Observer = 500+uint64(i), []byte("edge"), []byte("trawl-7")
			if string(m.JSON) != string(event.AppendJSON(nil, &want)) || m.Kind != want.Kind || string(m.Key) != string(AppendKey(nil, &want)) ||
				m.Topic != "trawl.process" || m.Partition != 3 || m.Offset != 1234 {
				t.Fatalf("%v: message %d: %s/%d@%d kind %v key %q\n%s", level, i, m.Topic, m.Partition, m.Offset, m.Kind, m.Key, m.JSON)
			}
		}
	}
	// Without a version header, as a record from another producer may be.
	s := testSource(t)
	s.add(frameRecord(sealFrame(t, frame.LevelS2, event.KindFlow, 0, []event.Event{SampleFlow(1)}), ""))
	if len(s.msgs) != 1 || s.msgs[0].Kind != event.KindFlow || string(s.msgs[0].Key) != "192.0.2.2" {
		t.Fatalf("messages %+v", s.msgs)
	}
}

// TestKafkaFrameRecord_Failure: a record that is not exactly one valid
// frame of events adds no message at all, not even the events before the
// damage; it is counted as skipped, and what came before it stays.
func TestKafkaFrameRecord_Failure(t *testing.T) {
	evs := []event.Event{SampleFlow(0), SampleFlow(1), SampleFlow(2)}
	good := sealFrame(t, frame.LevelS2, event.KindFlow, 0, evs)
	f := func(name string, r *kgo.Record, unknown bool) {
		t.Helper()
		s := testSource(t)
		var logged []string
		s.opts.Logf = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
		s.add(frameRecord(good, "1")) // a good record first: it must survive
		n, b := len(s.msgs), string(s.buf)
		s.add(r)
		if len(s.msgs) != n || string(s.buf) != b || s.skipped.Load() != 1 || len(logged) != 1 {
			t.Fatalf("%s: %d messages (want %d), buffer changed %v, %d skipped, %d lines logged", name, len(s.msgs), n, string(s.buf) != b, s.skipped.Load(), len(logged))
		}
		var c Converter
		_, _, err := c.AppendJSON(nil, r)
		if !errors.Is(err, ErrFrameRecord) {
			t.Fatalf("%s: Converter error %v, want ErrFrameRecord", name, err)
		}
		if strings.Contains(logged[0], ErrUnknownEncoding.Error()) != unknown {
			t.Fatalf("%s: logged %q; want ErrUnknownEncoding %v", name, logged[0], unknown)
		}
	}
	f("version 2", frameRecord(good, "2"), true)
	f("empty", frameRecord(nil, "1"), false)
	f("truncated", frameRecord(good[:len(good)-1], "1"), false)
	f("trailing byte", frameRecord(append(append([]byte(nil), good...), 0), "1"), false)
	flipped := append([]byte(nil), good...)
	flipped[frame.HeaderSize+20] ^= 0x10
	f("flipped bit", frameRecord(flipped, "1"), false)
	// A valid frame (CRC and all) whose third record is not an event.
	f("bad event", frameRecord(sealFrame(t, frame.LevelS2, event.KindFlow, 0, evs[:2], []byte{9, 9, 9}), "1"), false)
	f("json value", frameRecord([]byte(`{"a":1}`), "1"), false)
}

// TestKafkaFrameRecordAllocs pins the conversion of a trawl-frame record
// at zero allocations once the source's buffers have grown.
func TestKafkaFrameRecordAllocs(t *testing.T) {
	var evs []event.Event
	for i := range 200 {
		evs = append(evs, SampleFlow(i))
	}
	r := frameRecord(sealFrame(t, frame.LevelS2, event.KindFlow, 0, evs), "1")
	s := testSource(t)
	run := func() {
		clear(s.msgs)
		s.msgs, s.buf = s.msgs[:0], s.buf[:0]
		s.add(r)
	}
	for range 5 {
		run()
	}
	if n := testing.AllocsPerRun(100, run); n != 0 || len(s.msgs) != len(evs) || s.skipped.Load() != 0 {
		t.Fatalf("%v allocs per frame record of %d events; %d messages, %d skipped", n, len(evs), len(s.msgs), s.skipped.Load())
	}
}

// FuzzFrameRecord feeds arbitrary values as trawl-frame records: no panic;
// a record either adds nothing and counts as skipped, or adds exactly the
// frame's count of messages, each one JSON object on one line, with the
// record's offset.
func FuzzFrameRecord(f *testing.F) {
	others := SampleOthers()
	f.Add(sealFrame(f, frame.LevelS2, event.KindFlow, 0, []event.Event{SampleFlow(0), SampleFlow(1)}))
	f.Add(sealFrame(f, frame.LevelFastest, event.KindSyslog, 9, []event.Event{SampleSyslog(0), SampleSyslog(1), SampleSyslog(2)}))
	f.Add(sealFrame(f, frame.LevelNone, event.KindProcess, 1<<40, others[1:]))
	f.Add(sealFrame(f, frame.LevelNone, event.KindApp, 0, nil))
	f.Add(sealFrame(f, frame.LevelNone, event.KindApp, 0, []event.Event{SampleApp(1)}, []byte{1}))
	f.Add([]byte("TRWF"))
	f.Fuzz(func(t *testing.T, value []byte) {
		s := &KafkaSource{opts: KafkaOptions{Group: "fuzz", Logf: func(string, ...any) {}}}
		s.add(frameRecord(value, "1"))
		if s.skipped.Load() == 1 {
			if len(s.msgs) != 0 || len(s.buf) != 0 {
				t.Fatalf("a skipped record left %d messages", len(s.msgs))
			}
			return
		}
		h, _, err := frame.PeekHeader(value)
		if err != nil || len(s.msgs) != int(h.Count) {
			t.Fatalf("%d messages from a frame of %d events (%v)", len(s.msgs), h.Count, err)
		}
		for _, m := range s.msgs {
			if !json.Valid(m.JSON) || bytes.ContainsAny(m.JSON, "\r\n") || m.JSON[0] != '{' || m.Offset != 1234 {
				t.Fatalf("message %s@%d: %q", m.Topic, m.Offset, m.JSON)
			}
		}
	})
}
