package consumer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	flowpb "github.com/netsampler/goflow2/v2/pb"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/trawlsec/trawl/event"
)

// record builds a Kafka record as trawl's Kafka sink writes it; an empty enc
// leaves the encoding headers out.
func record(topic, enc, ver string, k event.Kind, value []byte) *kgo.Record {
	r := &kgo.Record{Topic: topic, Value: value}
	if enc != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderEncoding, Value: []byte(enc)}, kgo.RecordHeader{Key: HeaderEncodingVersion, Value: []byte(ver)})
	}
	if k != event.KindUnknown {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderKind, Value: []byte(k.String())})
	}
	return r
}

func jsonOf(ev event.Event) string { return string(event.AppendJSON(nil, &ev)) }

func convert(t *testing.T, r *kgo.Record) (string, event.Kind) {
	t.Helper()
	var c Converter
	out, k, err := c.AppendJSON([]byte("prefix"), r)
	if err != nil {
		t.Fatalf("convert %s record: %v", r.Topic, err)
	}
	if !bytes.HasPrefix(out, []byte("prefix")) {
		t.Fatalf("AppendJSON did not append: %q", out)
	}
	return string(out[len("prefix"):]), k
}

func TestConverter_Success(t *testing.T) {
	all := []event.Event{SampleFlow(1), SampleSyslog(2), SampleApp(3)}
	all = append(all, SampleOthers()...)
	for _, ev := range all {
		name := ev.Kind.String()
		t.Run(name+"/ecs-json", func(t *testing.T) {
			got, k := convert(t, record(DefaultTopic(ev.Kind), EncodingECSJSON, "1", ev.Kind, event.AppendJSON(nil, &ev)))
			if got != jsonOf(ev) || k != ev.Kind {
				t.Fatalf("got %s kind %v\nwant %s", got, k, jsonOf(ev))
			}
		})
		t.Run(name+"/trawl-binary", func(t *testing.T) {
			got, k := convert(t, record("other", EncodingTrawlBinary, binaryVersion, ev.Kind, event.AppendBinary(nil, &ev)))
			if want := jsonOf(WithoutFrameFields(ev, false)); got != want || k != ev.Kind {
				t.Fatalf("got %s kind %v\nwant %s", got, k, want)
			}
		})
	}
	for i := range 3 {
		ev := SampleFlow(i)
		want := jsonOf(WithoutFrameFields(ev, true))
		got, k := convert(t, record("trawl.flow", EncodingFlowMessage, "2", event.KindFlow, event.AppendFlowProto(nil, &ev)))
		if got != want || k != event.KindFlow {
			t.Fatalf("flow %d from AppendFlowProto: got %s\nwant %s", i, got, want)
		}
		// The same flow written by goflow2's own generated type, which
		// orders fields by number rather than as AppendFlowProto does.
		m := &flowpb.FlowMessage{
			Type: flowpb.FlowMessage_FlowType(ev.Flow.Type), TimeReceivedNs: uint64(ev.RecvTime), SequenceNum: ev.Flow.SequenceNum,
			SamplingRate: ev.Flow.SamplingRate, SamplerAddress: ev.Flow.SamplerAddress.AsSlice(),
			TimeFlowStartNs: uint64(ev.Flow.TimeStartNs), TimeFlowEndNs: uint64(ev.Flow.TimeEndNs),
			Bytes: ev.Flow.Bytes, Packets: ev.Flow.Packets, SrcAddr: ev.Flow.SrcAddr.AsSlice(), DstAddr: ev.Flow.DstAddr.AsSlice(),
			Etype: uint32(ev.Flow.Etype), Proto: uint32(ev.Flow.Proto), SrcPort: uint32(ev.Flow.SrcPort), DstPort: uint32(ev.Flow.DstPort),
			InIf: ev.Flow.InIf, OutIf: ev.Flow.OutIf, VlanId: uint32(ev.Flow.VlanID), IpTos: uint32(ev.Flow.IPTos),
			TcpFlags: uint32(ev.Flow.TCPFlags), SrcAs: ev.Flow.SrcAS, DstAs: ev.Flow.DstAS, NextHop: ev.Flow.NextHop.AsSlice(),
			SrcNet: uint32(ev.Flow.SrcMask), DstNet: uint32(ev.Flow.DstMask), ObservationDomainId: ev.Flow.ObservationID,
			// Fields trawl does not map are skipped.
			SrcMac: 0x0011_2233_4455, AsPath: []uint32{1, 2, 3}, MplsIp: [][]byte{{1, 2, 3, 4}}, BgpNextHop: []byte{9, 9, 9, 9},
		}
		pb, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := convert(t, record("trawl.flow", EncodingFlowMessage, "2", event.KindFlow, pb)); got != want {
			t.Fatalf("flow %d from goflow2's FlowMessage: got %s\nwant %s", i, got, want)
		}
	}

	// No headers: ECS JSON, kind from the topic name.
	ev := SampleSyslog(0)
	if got, k := convert(t, &kgo.Record{Topic: "trawl.syslog", Value: event.AppendJSON(nil, &ev)}); got != jsonOf(ev) || k != event.KindSyslog {
		t.Fatalf("header-less record: %s kind %v", got, k)
	}
	if _, k := convert(t, &kgo.Record{Topic: "mine", Value: []byte(`{}`)}); k != event.KindUnknown {
		t.Fatalf("kind of a header-less record on topic mine: %v", k)
	}
	// Pretty-printed JSON from another producer comes out on one line.
	pretty := "\n{\r\n  \"a\": 1,\n  \"b\": [1,\n 2]\n}\n "
	got, _ := convert(t, record("x", EncodingECSJSON, "", event.KindApp, []byte(pretty)))
	if strings.ContainsAny(got, "\r\n") || !json.Valid([]byte(got)) || got != `{  "a": 1,  "b": [1, 2]}` {
		t.Fatalf("pretty JSON became %q", got)
	}
}

func TestConverter_Failure(t *testing.T) {
	f := func(name string, r *kgo.Record, unknownEncoding bool) {
		t.Helper()
		var c Converter
		out, _, err := c.AppendJSON([]byte("x"), r)
		if err == nil {
			t.Fatalf("%s: no error, output %q", name, out)
		}
		if string(out) != "x" {
			t.Fatalf("%s: dst changed to %q", name, out)
		}
		if errors.Is(err, ErrUnknownEncoding) != unknownEncoding {
			t.Fatalf("%s: error %v, want ErrUnknownEncoding %v", name, err, unknownEncoding)
		}
	}
	ev := SampleFlow(0)
	bin := event.AppendBinary(nil, &ev)
	pb := event.AppendFlowProto(nil, &ev)
	f("unknown encoding", record("t", "avro", "1", event.KindFlow, bin), true)
	f("json v2", record("t", EncodingECSJSON, "2", event.KindFlow, []byte(`{}`)), true)
	f("binary v9", record("t", EncodingTrawlBinary, "9", event.KindFlow, bin), true)
	f("flowmessage v3", record("t", EncodingFlowMessage, "3", event.KindFlow, pb), true)
	f("json array", record("t", EncodingECSJSON, "1", event.KindApp, []byte(`[1]`)), false)
	f("bad json", record("t", EncodingECSJSON, "1", event.KindApp, []byte(`{"a":}`)), false)
	f("two objects", record("t", EncodingECSJSON, "1", event.KindApp, []byte(`{}{}`)), false)
	f("empty json", record("t", "", "", event.KindApp, nil), false)
	f("truncated binary", record("t", EncodingTrawlBinary, "1", event.KindFlow, bin[:len(bin)-3]), false)
	f("binary version byte", record("t", EncodingTrawlBinary, "", event.KindFlow, append([]byte{9}, bin[1:]...)), false)
	f("truncated flowmessage", record("t", EncodingFlowMessage, "2", event.KindFlow, pb[:len(pb)-2]), false)
	f("flowmessage 5-byte address", record("t", EncodingFlowMessage, "2", event.KindFlow, []byte{fmSrcAddr<<3 | 2, 5, 1, 2, 3, 4, 5}), false)
	f("flowmessage port 65536", record("t", EncodingFlowMessage, "2", event.KindFlow, []byte{fmSrcPort << 3, 0x80, 0x80, 0x04}), false)
	f("flowmessage type 256", record("t", EncodingFlowMessage, "2", event.KindFlow, []byte{fmType << 3, 0x80, 0x02}), false)
	f("flowmessage group", record("t", EncodingFlowMessage, "2", event.KindFlow, []byte{5<<3 | 3}), false)
	f("flowmessage field 0", record("t", EncodingFlowMessage, "2", event.KindFlow, []byte{0, 1}), false)
	f("flowmessage time overflow", record("t", EncodingFlowMessage, "2", event.KindFlow,
		append(protoKey(fmTimeEndNs, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), false)
}

func protoKey(num, wire int) []byte {
	var b []byte
	v := uint64(num)<<3 | uint64(wire)
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// TestFlowMessageSkipsUnknownWireTypes: a known field with another wire
// type, and fixed32/fixed64 fields, are skipped as protobuf skips unknown
// fields.
func TestFlowMessageSkipsUnknownWireTypes(t *testing.T) {
	var b []byte
	b = append(b, protoKey(fmSrcPort, 2)...) // SrcPort as bytes: unknown
	b = append(b, 2, 0xaa, 0xbb)
	b = append(b, protoKey(fmSrcAddr, 0)...) // SrcAddr as varint: unknown
	b = append(b, 7)
	b = append(b, protoKey(200, 1)...)
	b = append(b, 1, 2, 3, 4, 5, 6, 7, 8)
	b = append(b, protoKey(201, 5)...)
	b = append(b, 1, 2, 3, 4)
	b = append(b, protoKey(fmDstPort, 0)...)
	b = append(b, 53)
	var m flowpb.FlowMessage
	if err := proto.Unmarshal(b, &m); err != nil || m.DstPort != 53 || m.SrcPort != 0 || m.SrcAddr != nil {
		t.Fatalf("goflow2 reads the test message as %v, %v", &m, err)
	}
	var ev event.Event
	if err := decodeFlowMessage(&ev, b); err != nil {
		t.Fatal(err)
	}
	if ev.Flow.DstPort != 53 || ev.Flow.SrcPort != 0 || ev.Flow.SrcAddr.IsValid() {
		t.Fatalf("decoded %+v", ev.Flow)
	}
}

// TestFlowMessagePackedLists: the repeated number fields trawl skips (BGP
// communities, AS path, MPLS, layers) are accepted in packed and unpacked
// form, and a packed list that ends in a cut varint is rejected, as
// goflow2's FlowMessage rejects it.
func TestFlowMessagePackedLists(t *testing.T) {
	f := func(name string, b []byte, ok bool) {
		t.Helper()
		var m flowpb.FlowMessage
		if err := proto.Unmarshal(b, &m); (err == nil) != ok {
			t.Fatalf("%s: goflow2 reads %x with error %v, want ok=%v", name, b, err, ok)
		}
		var ev event.Event
		if err := decodeFlowMessage(&ev, b); (err == nil) != ok || err != nil && !errors.Is(err, errFlowMessage) {
			t.Fatalf("%s: error %v, want ok=%v", name, err, ok)
		}
		if ok && ev.Flow.DstPort != 53 {
			t.Fatalf("%s: decoded %+v", name, ev.Flow)
		}
	}
	port := append(protoKey(fmDstPort, 0), 53)
	for _, num := range []int{fmMPLSTTL, fmMPLSLabel, fmBGPCommunities, fmASPath, fmLayerStack, fmLayerSize} {
		packed := append(protoKey(num, 2), 4, 0x01, 0xff, 0x7f, 0x02)
		f(fmt.Sprintf("field %d packed", num), append(packed, port...), true)
		f(fmt.Sprintf("field %d empty", num), append(append(protoKey(num, 2), 0), port...), true)
		f(fmt.Sprintf("field %d unpacked", num), append(append(protoKey(num, 0), 0xff, 0x01), port...), true)
		cut := append(protoKey(num, 2), 3, 0x01, 0xff, 0xff)
		f(fmt.Sprintf("field %d cut", num), append(cut, port...), false)
		over := append(protoKey(num, 2), 10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)
		f(fmt.Sprintf("field %d overlong", num), append(over, port...), false)
	}
}

// TestConverterAllocs pins the conversion of every encoding at zero
// allocations once dst has room.
func TestConverterAllocs(t *testing.T) {
	ev := SampleFlow(0)
	sys := SampleSyslog(0)
	recs := map[string]*kgo.Record{
		"ecs-json":            record("trawl.syslog", EncodingECSJSON, "1", event.KindSyslog, event.AppendJSON(nil, &sys)),
		"trawl-binary":        record("trawl.syslog", EncodingTrawlBinary, binaryVersion, event.KindSyslog, event.AppendBinary(nil, &sys)),
		"goflow2-flowmessage": record("trawl.flow", EncodingFlowMessage, "2", event.KindFlow, event.AppendFlowProto(nil, &ev)),
	}
	var c Converter
	dst := make([]byte, 0, 64<<10)
	for name, r := range recs {
		var err error
		if n := testing.AllocsPerRun(200, func() {
			_, _, err = c.AppendJSON(dst[:0], r)
		}); n != 0 || err != nil {
			t.Errorf("%s: %v allocs per conversion, error %v", name, n, err)
		}
	}
}

// FuzzConverter feeds arbitrary values under each encoding: no panic, and
// whatever converts is one valid JSON object on one line.
func FuzzConverter(f *testing.F) {
	ev, sys, app := SampleFlow(0), SampleSyslog(1), SampleApp(2)
	f.Add(uint8(0), event.AppendJSON(nil, &app))
	f.Add(uint8(0), []byte("{\n\"a\":\"b\\n\"}"))
	f.Add(uint8(1), event.AppendBinary(nil, &sys))
	f.Add(uint8(1), event.AppendBinary(nil, &ev))
	f.Add(uint8(2), event.AppendFlowProto(nil, &ev))
	for _, o := range SampleOthers() {
		f.Add(uint8(1), event.AppendBinary(nil, &o))
	}
	encs := []string{EncodingECSJSON, EncodingTrawlBinary, EncodingFlowMessage}
	f.Fuzz(func(t *testing.T, enc uint8, value []byte) {
		var c Converter
		r := record("trawl.app", encs[int(enc)%len(encs)], "", event.KindUnknown, value)
		out, _, err := c.AppendJSON(nil, r)
		if err != nil {
			return
		}
		if !json.Valid(out) || bytes.ContainsAny(out, "\r\n") || out[0] != '{' {
			t.Fatalf("%s value %q converted to %q", r.Headers[0].Value, value, out)
		}
	})
}

// FuzzFlowMessage checks decodeFlowMessage against goflow2's generated
// FlowMessage: whenever both accept a message they agree on every field
// trawl maps, and whatever decodeFlowMessage accepts goflow2 accepts too.
func FuzzFlowMessage(f *testing.F) {
	for i := range 3 {
		ev := SampleFlow(i)
		f.Add(event.AppendFlowProto(nil, &ev))
	}
	f.Add([]byte{fmSrcPort<<3 | 2, 2, 0xaa, 0xbb, fmDstPort << 3, 53})
	f.Add(append(protoKey(fmType, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev event.Event
		err := decodeFlowMessage(&ev, b)
		var m flowpb.FlowMessage
		perr := proto.Unmarshal(b, &m)
		if err != nil {
			return
		}
		if perr != nil {
			t.Fatalf("trawl accepts %x, goflow2 does not: %v", b, perr)
		}
		fl := &ev.Flow
		addr := func(a []byte) []byte {
			if len(a) == 0 {
				return nil
			}
			return a
		}
		type pair struct {
			name      string
			got, want any
		}
		for _, p := range []pair{
			{"type", int32(fl.Type), int32(m.Type)},
			{"recv", uint64(ev.RecvTime), m.TimeReceivedNs},
			{"seq", fl.SequenceNum, m.SequenceNum},
			{"rate", fl.SamplingRate, m.SamplingRate},
			{"sampler", string(fl.SamplerAddress.AsSlice()), string(addr(m.SamplerAddress))},
			{"start", uint64(fl.TimeStartNs), m.TimeFlowStartNs},
			{"end", uint64(fl.TimeEndNs), m.TimeFlowEndNs},
			{"time", ev.Time, fl.TimeEndNs},
			{"bytes", fl.Bytes, m.Bytes},
			{"packets", fl.Packets, m.Packets},
			{"src", string(fl.SrcAddr.AsSlice()), string(addr(m.SrcAddr))},
			{"dst", string(fl.DstAddr.AsSlice()), string(addr(m.DstAddr))},
			{"nexthop", string(fl.NextHop.AsSlice()), string(addr(m.NextHop))},
			{"etype", uint32(fl.Etype), m.Etype},
			{"proto", uint32(fl.Proto), m.Proto},
			{"sport", uint32(fl.SrcPort), m.SrcPort},
			{"dport", uint32(fl.DstPort), m.DstPort},
			{"inif", fl.InIf, m.InIf},
			{"outif", fl.OutIf, m.OutIf},
			{"vlan", uint32(fl.VlanID), m.VlanId},
			{"tos", uint32(fl.IPTos), m.IpTos},
			{"tcpflags", uint32(fl.TCPFlags), m.TcpFlags},
			{"srcas", fl.SrcAS, m.SrcAs},
			{"dstas", fl.DstAS, m.DstAs},
			{"srcnet", uint32(fl.SrcMask), m.SrcNet},
			{"dstnet", uint32(fl.DstMask), m.DstNet},
			{"obs", fl.ObservationID, m.ObservationDomainId},
		} {
			if p.got != p.want {
				t.Fatalf("%x: %s is %v, goflow2 reads %v", b, p.name, p.got, p.want)
			}
		}
		if ev.Kind != event.KindFlow || ev.Source.IsValid() || ev.Seq != 0 {
			t.Fatalf("%x: event %+v", b, ev)
		}
		if out := event.AppendJSON(nil, &ev); !json.Valid(out) {
			t.Fatalf("%x: invalid JSON %s", b, out)
		}
	})
}
