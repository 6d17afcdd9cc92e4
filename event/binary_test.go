package event

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// roundTrip encodes e, decodes the result into a dirty Event and checks
// that the wire view of both is equal. It returns the encoding.
func roundTrip(t *testing.T, e *Event) []byte {
	t.Helper()
	b := AppendBinary(nil, e)
	// A dirty target proves that DecodeBinary resets it.
	got := sampleAudit()
	got.Process.Args = [][]byte{[]byte("stale")}
	if err := DecodeBinary(got, b); err != nil {
		t.Fatalf("DecodeBinary(%x): %v", b, err)
	}
	want := wireView(e)
	if g := wireView(got); !reflect.DeepEqual(g, want) {
		t.Fatalf("round trip mismatch\n got: %+v\nwant: %+v\nwire: %x", g, want, b)
	}
	if got.Seq != 0 || got.Input != nil || got.Observer != nil {
		t.Fatalf("frame fields not reset: seq=%d input=%q observer=%q", got.Seq, got.Input, got.Observer)
	}
	// Appending must not disturb what dst already holds.
	prefix := []byte("prefix")
	b2 := AppendBinary(append([]byte(nil), prefix...), e)
	if !bytes.Equal(b2[:len(prefix)], prefix) || !bytes.Equal(b2[len(prefix):], b) {
		t.Fatalf("AppendBinary with a prefix wrote %x, want prefix + %x", b2, b)
	}
	return b
}

func TestBinaryRoundTrip_Samples(t *testing.T) {
	for _, s := range sampleEvents() {
		t.Run(s.name, func(t *testing.T) {
			roundTrip(t, s.e)
		})
	}
}

func TestBinaryRoundTrip_EdgeCases(t *testing.T) {
	f := func(name string, e *Event) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			t.Helper()
			roundTrip(t, e)
		})
	}

	f("zero", &Event{})
	f("kind only", &Event{Kind: KindFlow})
	f("future kind", &Event{Kind: 200, Flags: 1 << 15, RecvTime: 1})
	f("negative times", &Event{Kind: KindSyslog, RecvTime: math.MinInt64, Time: -1})
	f("port without addr", &Event{Kind: KindApp, Source: netip.AddrPortFrom(netip.Addr{}, 9)})
	f("addr without port", &Event{Kind: KindApp, Source: netip.AddrPortFrom(netip.MustParseAddr("::1"), 0)})

	huge := sampleFlow()
	huge.Flow = Flow{
		Type: 255, SamplingRate: math.MaxUint64, SequenceNum: math.MaxUint32,
		ObservationID: math.MaxUint32, TimeStartNs: math.MinInt64, TimeEndNs: math.MaxInt64,
		Bytes: math.MaxUint64, Packets: math.MaxUint64,
		SrcAddr: netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
		DstAddr: netip.MustParseAddr("255.255.255.255"), NextHop: netip.MustParseAddr("::"),
		SamplerAddress: netip.MustParseAddr("0.0.0.0"),
		SrcPort:        65535, DstPort: 65535, Proto: 255, TCPFlags: 255, IPTos: 255, Etype: 65535,
		InIf: math.MaxUint32, OutIf: math.MaxUint32, SrcAS: math.MaxUint32, DstAS: math.MaxUint32,
		SrcMask: 255, DstMask: 255, VlanID: 65535,
	}
	huge.Flags = math.MaxUint16
	f("huge flow", huge)

	v6 := sampleFlow()
	v6.Source = netip.MustParseAddrPort("[2001:db8::2]:2055")
	v6.Flow.SrcAddr = netip.MustParseAddr("2001:db8:1::5")
	v6.Flow.DstAddr = netip.MustParseAddr("::ffff:198.51.100.7") // stays 16 bytes
	v6.Flow.Etype = 0x86dd
	f("ipv6 flow", v6)

	p := sampleProcess()
	p.Process.ExitCode = math.MinInt32
	p.Process.DurationNs = math.MinInt64
	p.Process.StartNs = math.MaxInt64
	p.Process.UID, p.Process.GID, p.Process.LoginUID = UnsetID, UnsetID, UnsetID
	f("process extremes", p)

	p = sampleProcess()
	p.Process.ExitCode = math.MaxInt32
	f("max exit code", p)

	p = sampleProcess()
	p.Process.Args = [][]byte{}
	f("empty args", p)

	p = sampleProcess()
	p.Process.Args = nil
	f("nil args", p)

	p = sampleProcess()
	p.Process.Args = [][]byte{nil, {}, []byte("x"), nil}
	f("empty and nil arguments keep their place", p)

	a := sampleAudit()
	a.Audit.DstAddr = netip.AddrPortFrom(netip.Addr{}, 53)
	a.Audit.UID, a.Audit.AUID, a.Audit.GID = UnsetID, UnsetID, UnsetID
	f("audit port without addr", a)

	a = sampleAudit()
	a.Audit.Raw = bytes.Repeat([]byte("type=PATH msg=audit(1.2:3): item=0 name=\"/etc/passwd\"\n"), 2000)
	f("payload needing a 3-byte length", a)

	a = sampleAudit()
	a.Audit.Raw = bytes.Repeat([]byte{'x'}, 200)
	f("payload needing a 2-byte length", a)

	n := sampleNetwork()
	n.Network.Src = netip.MustParseAddrPort("[::ffff:10.0.0.1]:1")
	n.Network.Dst = netip.MustParseAddrPort("10.0.0.2:65535")
	n.Network.DurationNs = -5
	f("network mapped and negative", n)

	s := sampleSyslog()
	s.Flags = FlagParseError
	s.Syslog = Syslog{Raw: []byte("\x00\xff garbage \n")}
	f("syslog parse error", s)

	ap := sampleApp()
	ap.App = App{Raw: []byte{}, Message: nil, Level: []byte("x")}
	f("app empty raw", ap)
}

// TestBinaryOtherPayloadsIgnored pins that only the kind's payload is
// encoded: other payloads are the producer's leftovers.
func TestBinaryOtherPayloadsIgnored(t *testing.T) {
	e := sampleSyslog()
	e.Flow = sampleFlow().Flow
	want := AppendBinary(nil, sampleSyslog())
	if got := AppendBinary(nil, e); !bytes.Equal(got, want) {
		t.Fatalf("foreign payload changed the encoding:\n got %x\nwant %x", got, want)
	}
}

func TestBinaryArgsBeyondMax(t *testing.T) {
	for _, kind := range []Kind{KindAudit, KindProcess} {
		e := &Event{Kind: kind}
		args := make([][]byte, MaxArgs+3)
		for i := range args {
			args[i] = []byte{byte(i)}
		}
		if kind == KindAudit {
			e.Audit.Args = args
		} else {
			e.Process.Args = args
		}
		var d Event
		if err := DecodeBinary(&d, AppendBinary(nil, e)); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		got := d.Audit.Args
		if kind == KindProcess {
			got = d.Process.Args
		}
		if len(got) != MaxArgs || d.Flags != FlagTruncated {
			t.Fatalf("%s: decoded %d args with flags %b, want %d and FlagTruncated", kind, len(got), d.Flags, MaxArgs)
		}
		if !bytes.Equal(got[MaxArgs-1], args[MaxArgs-1]) {
			t.Fatalf("%s: last kept arg %x, want %x", kind, got[MaxArgs-1], args[MaxArgs-1])
		}
	}
}

// TestBinaryGolden pins the wire format: a change here breaks every spool
// and every consumer, and needs a new Version.
func TestBinaryGolden(t *testing.T) {
	f := func(e *Event, wantHex string) {
		t.Helper()
		want, err := hex.DecodeString(strings.ReplaceAll(wantHex, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendBinary(nil, e); !bytes.Equal(got, want) {
			t.Fatalf("AppendBinary\n got %x\nwant %x", got, want)
		}
		roundTrip(t, e)
	}

	f(&Event{}, "02")
	f(&Event{
		Kind:     KindSyslog,
		Flags:    FlagTruncated,
		RecvTime: 1,
		Source:   netip.MustParseAddrPort("10.0.0.1:514"),
		Syslog:   Syslog{Facility: 4, Severity: 6, Hostname: []byte("h"), Message: []byte("hi")},
	}, "02"+
		" 0802"+ // kind = 2
		" 1002"+ // flags = 2
		" 19 0100000000000000"+ // recv_time, fixed64
		" 2a 04 0a000001"+ // source_addr, 4 bytes
		" 30 8204"+ // source_port = 514
		" 9201 0b"+ // field 18 (syslog payload), 11 bytes
		" 0804 1006"+ // facility 4, severity 6
		" 22 01 68"+ // hostname "h"
		" 4a 02 6869") // message "hi"
	f(&Event{
		Kind:    KindProcess,
		Process: Process{Action: ProcessExit, ExitCode: -1, DurationNs: 1, Args: [][]byte{{}, []byte("a")}},
	}, "02 0804"+
		" a201 0b"+ // field 20 (process payload), 11 bytes
		" 0802"+ // action exit
		" 4001"+ // exit_code -1, zigzag 1
		" 4802"+ // duration 1, zigzag 2
		" 6a00 6a0161") // args "", "a"
	f(&Event{
		Kind:    KindNetwork,
		Network: Network{Src: netip.MustParseAddrPort("[::ffff:1.2.3.4]:1")},
	}, "02 0805"+
		" aa01 14"+ // field 21 (network payload), 20 bytes
		" 3210 00000000000000000000ffff01020304"+ // src_addr, 16 bytes
		" 3801") // src_port
	f(&Event{
		Kind: KindFlow,
		Flow: Flow{Type: FlowNetFlow5, SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("2001:db8::2"),
			SrcPort: 1234, DstPort: 443, Proto: 6, TCPFlags: 0x1b, Etype: 0x0800, InIf: 3, OutIf: 4,
			SequenceNum: 7, SamplingRate: 100, TimeStartNs: 1, TimeEndNs: 2, Bytes: 1500, Packets: 10},
	}, "02 0801"+
		" 8a01 64"+ // field 17 (flow payload), 100 bytes
		" 09"+ // addresses: src IPv4 (1), dst IPv6 (2 << 2), no next hop, no sampler
		" 02 06 1b 00 00 00 00"+ // type 2 (v5), proto, tcp_flags, ip_tos, masks, reserved
		" d204 bb01 0008 0000"+ // src_port 1234, dst_port 443, etype 0x0800, vlan
		" 03000000 04000000 00000000 00000000"+ // in_if, out_if, src_as, dst_as
		" 07000000 00000000"+ // sequence_num, observation_id
		" 6400000000000000"+ // sampling_rate 100
		" 0100000000000000 0200000000000000"+ // time_start_ns, time_end_ns
		" dc05000000000000 0a00000000000000"+ // bytes 1500, packets 10
		" 0a000001 20010db8000000000000000000000002") // src, dst
}

// TestBinaryReadsVersion1 decodes events written in encoding version 1,
// whose flow payload is protobuf fields, as spools and topics written
// before version 2 hold them.
func TestBinaryReadsVersion1(t *testing.T) {
	for _, s := range sampleEvents() {
		b := refAppendVersion(nil, s.e, version1)
		var e Event
		if err := DecodeBinary(&e, b); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if g, w := wireView(&e), wireView(s.e); !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: version 1 decodes to\n%+v\nwant\n%+v", s.name, g, w)
		}
	}
}

func TestBinaryUnknownFieldsSkipped(t *testing.T) {
	e := sampleNetwork()
	var payload []byte
	payload = appendKey(payload, 100, wireVarint)
	payload = appendVarint(payload, math.MaxUint64)
	payload = appendNetwork(payload, &e.Network)
	payload = appendKey(payload, 101, wireFixed64)
	payload = append(payload, 1, 2, 3, 4, 5, 6, 7, 8)
	payload = appendKey(payload, 102, wireFixed32)
	payload = append(payload, 1, 2, 3, 4)
	payload = appendBytesField(payload, 103, []byte("future"))

	b := []byte{Version}
	b = appendKey(b, 15, wireBytes) // a future common field
	b = append(b, 0)
	b = appendUintField(b, fieldKind, uint64(e.Kind))
	b = appendFixedField(b, fieldRecvTime, e.RecvTime)
	b = appendFixedField(b, fieldTime, e.Time)
	b = appendBytesField(b, fieldPayload+uint32(KindNetwork), payload)
	b = appendBytesField(b, fieldPayload+40, []byte{0xff, 0xff}) // a future kind's payload
	b = appendKey(b, maxFieldNum, wireFixed32)
	b = append(b, 9, 9, 9, 9)

	var got Event
	if err := DecodeBinary(&got, b); err != nil {
		t.Fatalf("DecodeBinary: %v", err)
	}
	if g, w := wireView(&got), wireView(e); !reflect.DeepEqual(g, w) {
		t.Fatalf("got %+v\nwant %+v", g, w)
	}
}

// TestBinaryFieldOrder checks that the kind may follow its payload and that
// a repeated field keeps its last value, as in protobuf.
func TestBinaryFieldOrder(t *testing.T) {
	e := sampleApp()
	e.Flags = FlagTruncated
	b := []byte{Version}
	b = appendBytesField(b, fieldPayload+uint32(KindApp), appendApp(nil, &e.App))
	b = appendUintField(b, fieldFlags, 3)
	b = appendUintField(b, fieldKind, uint64(KindApp))
	b = appendUintField(b, fieldFlags, uint64(e.Flags))
	b = appendFixedField(b, fieldRecvTime, e.RecvTime)
	b = appendAddrField(b, fieldSourceAddr, e.Source.Addr())
	b = appendUintField(b, fieldSourcePort, uint64(e.Source.Port()))
	var got Event
	if err := DecodeBinary(&got, b); err != nil {
		t.Fatalf("DecodeBinary: %v", err)
	}
	if g, w := wireView(&got), wireView(e); !reflect.DeepEqual(g, w) {
		t.Fatalf("got %+v\nwant %+v", g, w)
	}
}

// TestBinaryAliasing pins the zero-copy contract: decoded bytes alias the
// input, and appending to them cannot overwrite it.
func TestBinaryAliasing(t *testing.T) {
	b := AppendBinary(nil, sampleProcess())
	var e Event
	if err := DecodeBinary(&e, b); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("bash"))
	if i < 0 || &e.Process.Comm[0] != &b[i] {
		t.Fatalf("Comm does not alias the input")
	}
	before := append([]byte(nil), b...)
	_ = append(e.Process.Comm, "XXXXXXXX"...)
	_ = append(e.Process.Args[0], "XXXXXXXX"...)
	if !bytes.Equal(b, before) {
		t.Fatalf("appending to a decoded field overwrote the input")
	}
}

func TestDecodeBinary_Failure(t *testing.T) {
	f := func(b []byte, wantInErr string) {
		t.Helper()
		e := sampleFlow()
		err := DecodeBinary(e, b)
		if err == nil {
			t.Fatalf("DecodeBinary(%x): no error, want %q", b, wantInErr)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("DecodeBinary(%x): %v does not wrap ErrMalformed", b, err)
		}
		if !strings.Contains(err.Error(), wantInErr) {
			t.Fatalf("DecodeBinary(%x): %q, want it to contain %q", b, err, wantInErr)
		}
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// Version 1 flow payloads: protobuf fields.
	hdr := []byte{version1, 0x08, byte(KindFlow)}
	flowPayload := func(p ...byte) []byte {
		return cat(hdr, []byte{0x8a, 0x01, byte(len(p))}, p) // field 17
	}
	// Version 2 flow payloads: the packed layout.
	packed := func(p []byte) []byte {
		return cat([]byte{Version, 0x08, byte(KindFlow), 0x8a, 0x01, byte(len(p))}, p)
	}
	head := func(codes byte, tail ...byte) []byte {
		p := make([]byte, packedFlowHead)
		p[0] = codes
		return append(p, tail...)
	}

	f(nil, "offset 0: empty input")
	f([]byte{0}, "version 0")
	f([]byte{3, 0x08, 1}, "unsupported event encoding version")
	f([]byte{Version, 0x08}, "field 1 (wire type 0) at offset 1: truncated")
	f([]byte{Version, 0x80}, "at offset 1: truncated")
	f(cat([]byte{Version, 0x08}, bytes.Repeat([]byte{0xff}, 9), []byte{0x02}), "varint overflows")
	f(cat([]byte{Version, 0x08}, bytes.Repeat([]byte{0x80}, 10), []byte{0x00}), "varint overflows")
	f([]byte{Version, 0x00}, "field number out of range")
	f([]byte{Version, 0x0b}, "unsupported wire type")          // field 1, group start
	f([]byte{Version, 0x0e}, "unsupported wire type")          // field 1, wire type 6
	f([]byte{Version, 0x0a, 0x00}, "wrong wire type")          // kind as bytes
	f([]byte{Version, 0x08, 0x80, 0x02}, "value out of range") // kind 256
	f([]byte{Version, 0x10, 0x80, 0x80, 0x04}, "value out of range")
	f([]byte{Version, 0x19, 1, 2, 3}, "truncated")
	f([]byte{Version, 0x2a, 0x05, 1, 2, 3, 4, 5}, "address is not 0, 4 or 16 bytes")
	f([]byte{Version, 0x2a, 0x05, 1, 2}, "truncated")
	f([]byte{Version, 0x2a, 0xff, 0xff, 0xff, 0xff, 0x0f}, "truncated")
	f([]byte{Version, 0x30, 0x80, 0x80, 0x04}, "value out of range") // port 65536
	f([]byte{Version, 0x2d, 1, 2, 3}, "truncated")                   // fixed32 unknown... field 5 fixed32
	f(flowPayload(0x50, 0x80, 0x02), "flow payload field 10 (wire type 0) at offset 6: value out of range")
	f(flowPayload(0x32, 0x03, 1, 2, 3), "flow payload field 6")
	f(flowPayload(0x32, 0x05, 1), "truncated")
	f(cat(hdr, []byte{0x8a, 0x01, 0x05, 0x08}), "truncated")
	f(packed(make([]byte, packedFlowHead-1)), "flow payload at offset 6: 79 bytes, shorter than the 80-byte head")
	f(packed(head(0x01, 1, 2, 3)), "flow payload at offset 6: truncated")            // IPv4 source cut
	f(packed(head(0x02, make([]byte, 15)...)), "truncated")                          // IPv6 source cut
	f(packed(head(0x03)), "address code 3")                                          // no such code
	f(packed(head(0xc0, make([]byte, 4)...)), "address code 3")                      // sampler code 3
	f(packed(head(0x00, 1)), "81 bytes, the head and addresses take 80")             // a byte too many
	f(packed(head(0x01, 1, 2, 3, 4, 5)), "85 bytes, the head and addresses take 84") // after an address
	f(packed(append(head(0x00)[:7], append([]byte{1}, make([]byte, 72)...)...)), "reserved byte 7")
	f(cat(hdr, []byte{0x89, 0x01}, make([]byte, 8)), "wrong wire type") // payload as fixed64
	f(cat([]byte{version1, 0x08, byte(KindSyslog), 0x8a, 0x01, 0x02, 0x08, 0x01}), "flow payload in a syslog event")
	f(cat([]byte{Version, 0x08, byte(KindSyslog), 0x8a, 0x01, packedFlowHead}, head(0)), "flow payload in a syslog event")
	f(cat([]byte{version1, 0x8a, 0x01, 0x00}), "flow payload in a unknown event")
	f(cat([]byte{Version, 0x8a, 0x01, 0x00}), "0 bytes, shorter than the 80-byte head")                                     // packed is never empty
	f([]byte{Version, 0x08, byte(KindProcess), 0xa2, 0x01, 0x06, 0x40, 0x80, 0x80, 0x80, 0x80, 0x10}, "value out of range") // exit code > 32 bits
	f([]byte{Version, 0x08, byte(KindProcess), 0xa2, 0x01, 0x02, 0x50, 0x01}, "wrong wire type")                            // start as varint

	many := cat(hdr[:1], []byte{0x08, byte(KindAudit)})
	var args []byte
	for range MaxArgs + 1 {
		args = append(args, 0x72, 0x00) // field 14, empty
	}
	many = appendBytesField(many, fieldPayload+uint32(KindAudit), args)
	f(many, "more than MaxArgs")

	// Every strict prefix of a valid encoding that cuts a field fails
	// without panicking; prefixes that end between fields decode.
	full := AppendBinary(nil, sampleAudit())
	for n := 1; n < len(full); n++ {
		var e Event
		if err := DecodeBinary(&e, full[:n]); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix %d: %v does not wrap ErrMalformed", n, err)
		}
	}
}

func TestReset(t *testing.T) {
	e := sampleAudit()
	e.Process = sampleProcess().Process
	e.Flow = sampleFlow().Flow
	aa, pa := e.Audit.Args, e.Process.Args
	e.Reset()
	if e.Audit.Args == nil || len(e.Audit.Args) != 0 || cap(e.Audit.Args) != cap(aa) ||
		len(e.Process.Args) != 0 || cap(e.Process.Args) != cap(pa) {
		t.Fatalf("Reset lost the Args capacity: audit %d/%d process %d/%d",
			len(e.Audit.Args), cap(e.Audit.Args), len(e.Process.Args), cap(e.Process.Args))
	}
	if aa[0] != nil || pa[2] != nil {
		t.Fatalf("Reset kept references to old arguments")
	}
	if !reflect.DeepEqual(wireView(e), Event{}) {
		t.Fatalf("Reset left fields: %+v", *e)
	}
}

func TestBinaryAllocs(t *testing.T) {
	for _, s := range sampleEvents() {
		buf := make([]byte, 0, 64<<10)
		b := AppendBinary(nil, s.e)
		var e Event
		if err := DecodeBinary(&e, b); err != nil { // warm up Args
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { buf = AppendBinary(buf[:0], s.e) }); n != 0 {
			t.Errorf("AppendBinary(%s): %v allocs/op, want 0", s.name, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			if err := DecodeBinary(&e, b); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("DecodeBinary(%s): %v allocs/op, want 0", s.name, n)
		}
	}
	// A payload with a 3-byte length, and a flow payload longer than 127
	// bytes, which closePayload moves.
	e := sampleAudit()
	e.Audit.Raw = bytes.Repeat([]byte("x"), 20000)
	v6 := sampleFlow()
	v6.Flow.SrcAddr = netip.MustParseAddr("2001:db8::1")
	v6.Flow.DstAddr = netip.MustParseAddr("2001:db8::2")
	v6.Flow.NextHop = netip.MustParseAddr("2001:db8::3")
	buf := make([]byte, 0, 64<<10)
	for _, e := range []*Event{e, v6} {
		if n := testing.AllocsPerRun(100, func() { buf = AppendBinary(buf[:0], e) }); n != 0 {
			t.Errorf("AppendBinary(%s with a %d-byte encoding): %v allocs/op, want 0", e.Kind, len(buf), n)
		}
	}
	if pl := wireFields(t, AppendBinary(nil, v6)[1:])[fieldPayload+uint32(KindFlow)]; len(pl[0].(string)) < 0x80 {
		t.Fatalf("the IPv6 flow payload has %d bytes, no longer more than 127", len(pl[0].(string)))
	}
}

// wireFields splits a protobuf message with a decoder of its own, so that
// the field numbers below are checked independently of DecodeBinary.
// Varint and fixed64 values become uint64, length-delimited ones string.
func wireFields(t *testing.T, b []byte) map[uint32][]any {
	t.Helper()
	m := map[uint32][]any{}
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatalf("bad key in %x", b)
		}
		b = b[n:]
		num := uint32(key >> 3)
		switch key & 7 {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				t.Fatalf("bad varint in %x", b)
			}
			m[num] = append(m[num], v)
			b = b[n:]
		case 1:
			m[num] = append(m[num], binary.LittleEndian.Uint64(b))
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				t.Fatalf("bad length in %x", b)
			}
			m[num] = append(m[num], string(b[n:n+int(l)]))
			b = b[n+int(l):]
		default:
			t.Fatalf("wire type %d", key&7)
		}
	}
	return m
}

// TestBinaryFieldNumbers pins every field number of docs/encoding.md with
// the sample events, whose numeric fields are all distinct within a kind.
func TestBinaryFieldNumbers(t *testing.T) {
	u := func(v uint64) []any { return []any{v} }
	s := func(v ...string) []any {
		a := make([]any, len(v))
		for i := range v {
			a[i] = v[i]
		}
		return a
	}
	fx := func(v int64) []any { return []any{uint64(v)} }
	ip := func(a string) []any {
		x := netip.MustParseAddr(a)
		if x.Is4() {
			b := x.As4()
			return s(string(b[:]))
		}
		b := x.As16()
		return s(string(b[:]))
	}
	f := func(e *Event, common, payload map[uint32][]any) {
		t.Helper()
		b := AppendBinary(nil, e)
		if b[0] != Version {
			t.Fatalf("version byte %d", b[0])
		}
		top := wireFields(t, b[1:])
		pl := top[fieldPayload+uint32(e.Kind)]
		delete(top, fieldPayload+uint32(e.Kind))
		if !reflect.DeepEqual(top, common) {
			t.Errorf("%s common fields\n got %v\nwant %v", e.Kind, top, common)
		}
		if len(pl) != 1 {
			t.Fatalf("%s payload: %v", e.Kind, pl)
		}
		if e.Kind == KindFlow {
			checkPacked(t, []byte(pl[0].(string)), payload)
			return
		}
		if got := wireFields(t, []byte(pl[0].(string))); !reflect.DeepEqual(got, payload) {
			t.Errorf("%s payload fields\n got %v\nwant %v", e.Kind, got, payload)
		}
	}
	common := func(e *Event) map[uint32][]any {
		m := map[uint32][]any{1: u(uint64(e.Kind)), 3: fx(e.RecvTime)}
		if e.Time != 0 {
			m[4] = fx(e.Time)
		}
		if e.Source.IsValid() {
			m[5] = ip(e.Source.Addr().String())
			m[6] = u(uint64(e.Source.Port()))
		}
		return m
	}

	// The flow payload is packed (version 2): the map gives, by offset in
	// the payload, each field's little-endian value and size
	// (docs/encoding.md, "Flow payload").
	e := sampleFlow()
	f(e, common(e), map[uint32][]any{
		0: {uint64(1 | 1<<2 | 1<<4 | 1<<6), 1}, 1: {uint64(4), 1}, 2: {uint64(6), 1}, 3: {uint64(0x1b), 1},
		4: {uint64(0x10), 1}, 5: {uint64(24), 1}, 6: {uint64(20), 1}, 7: {uint64(0), 1},
		8: {uint64(51234), 2}, 10: {uint64(443), 2}, 12: {uint64(0x0800), 2}, 14: {uint64(100), 2},
		16: {uint64(3), 4}, 20: {uint64(7), 4}, 24: {uint64(64512), 4}, 28: {uint64(15169), 4},
		32: {uint64(987654), 4}, 36: {uint64(256), 4}, 40: {uint64(1000), 8},
		48: {uint64(timeNs - 30_000_000_000), 8}, 56: {uint64(timeNs - 1_500_000_000), 8},
		64: {uint64(1_523_420), 8}, 72: {uint64(1032), 8},
		80: {ip4("10.1.2.3"), 4}, 84: {ip4("198.51.100.77"), 4}, 88: {ip4("10.1.0.1"), 4}, 92: {ip4("192.0.2.1"), 4},
	})
	e = sampleSyslog()
	sl := e.Syslog
	f(e, common(e), map[uint32][]any{
		1: u(20), 2: u(5), 3: u(1), 4: s(string(sl.Hostname)), 5: s(string(sl.AppName)),
		6: s(string(sl.ProcID)), 7: s(string(sl.MsgID)), 8: s(string(sl.StructuredData)), 9: s(string(sl.Message)),
	})
	e = sampleSyslog()
	e.Syslog = Syslog{Raw: []byte("raw")}
	f(e, common(e), map[uint32][]any{10: s("raw")})
	e = sampleAudit()
	f(e, common(e), map[uint32][]any{
		1: u(123456), 2: u(1300), 3: s("executed"), 4: s("success"), 5: s("execve"), 6: u(31337),
		7: u(1000), 8: u(1001), 9: u(1000), 10: u(1002), 11: s("/usr/bin/curl"), 12: s("curl"),
		13: s("/home/alice"), 14: s("curl", "-s", "https://example.com/x?a=1&b=2"), 15: s("/usr/bin/curl"),
		16: ip("2001:db8::1"), 17: u(443), 18: s("exec-watch"), 19: s(string(e.Audit.Raw)),
		20: s("curl -s https://example.com/x?a=1&b=2"), 21: s("bob"), 22: s("alice"), 23: s("staff"), 24: s("bash"), 25: s("/usr/bin/bash"),
	})
	e = sampleProcess()
	f(e, common(e), map[uint32][]any{
		1: u(2), 2: u(4242), 3: u(1), 4: u(1000), 5: u(100), 6: u(1001), 7: u(0x1234_5678_9abc),
		8: u(17), 9: u(2 * 12_345_678_901), 10: fx(timeNs - 12_345_678_901), 11: s("bash"),
		12: s("/usr/bin/bash"), 13: s("bash", "-c", "echo hi; sleep 12"),
	})
	e = sampleNetwork()
	f(e, common(e), map[uint32][]any{
		1: u(3), 2: u(6), 3: u(4242), 4: u(1000), 5: s("curl"), 6: ip("2001:db8::10"), 7: u(40000),
		8: ip("2001:db8::1"), 9: u(443), 10: u(500_000_000), 11: u(517), 12: u(12_034),
	})
	e = sampleApp()
	f(e, common(e), map[uint32][]any{1: s(string(e.App.Raw)), 2: s("upstream slow"), 3: s("warn")})
}

// randomEvent returns an event of kind k whose fields are random, with
// integers of every varint size, every kind of address and byte fields
// whose lengths sit around the varint size boundaries, so that payload
// lengths cross 128 and 16384.
func randomEvent(rng *rand.Rand, k Kind) *Event {
	u := func() uint64 {
		switch rng.IntN(6) {
		case 0:
			return 0
		case 1:
			return uint64(rng.IntN(0x80))
		case 2:
			return math.MaxUint64 >> rng.IntN(64)
		case 3:
			return 1 << rng.IntN(64)
		default:
			return rng.Uint64() >> rng.IntN(64)
		}
	}
	addr := func() netip.Addr {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		switch rng.IntN(4) {
		case 0:
			return netip.Addr{}
		case 1:
			return netip.AddrFrom16(b)
		case 2:
			return netip.AddrFrom16(netip.AddrFrom4([4]byte(b[:4])).As16()) // IPv4-mapped
		}
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	ap := func() netip.AddrPort { return netip.AddrPortFrom(addr(), uint16(u())) }
	text := func() []byte {
		var n int
		switch rng.IntN(5) {
		case 0:
			n = 0
		case 1:
			n = 120 + rng.IntN(16)
		case 2:
			n = 16370 + rng.IntN(20)
		default:
			n = rng.IntN(40)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		return b
	}
	args := func() [][]byte {
		a := make([][]byte, rng.IntN(4))
		for i := range a {
			a[i] = text()
		}
		return a
	}
	e := &Event{Kind: k, Flags: Flags(u()), Seq: u(), RecvTime: int64(u()), Time: int64(u()), Source: ap()}
	switch k {
	case KindFlow:
		e.Flow = Flow{
			Type: FlowType(u()), SamplingRate: u(), SequenceNum: uint32(u()), ObservationID: uint32(u()),
			TimeStartNs: int64(u()), TimeEndNs: int64(u()), Bytes: u(), Packets: u(),
			SrcAddr: addr(), DstAddr: addr(), NextHop: addr(), SamplerAddress: addr(),
			SrcPort: uint16(u()), DstPort: uint16(u()), Proto: uint8(u()), TCPFlags: uint8(u()),
			IPTos: uint8(u()), Etype: uint16(u()), InIf: uint32(u()), OutIf: uint32(u()),
			SrcAS: uint32(u()), DstAS: uint32(u()), SrcMask: uint8(u()), DstMask: uint8(u()), VlanID: uint16(u()),
		}
	case KindSyslog:
		e.Syslog = Syslog{
			Facility: uint8(u()), Severity: uint8(u()), Version: uint8(u()), Hostname: text(), AppName: text(),
			ProcID: text(), MsgID: text(), StructuredData: text(), Message: text(), Raw: text(),
		}
	case KindAudit:
		e.Audit = Audit{
			Sequence: u(), RecordType: uint16(u()), Action: text(), Result: text(), Syscall: text(),
			PID: uint32(u()), PPID: uint32(u()), UID: uint32(u()), AUID: uint32(u()), GID: uint32(u()),
			Exe: text(), Comm: text(), Cwd: text(), Args: args(), FilePath: text(), DstAddr: ap(),
			Key: text(), Raw: text(), Title: text(), UserName: text(), AuditUserName: text(), GroupName: text(), ParentName: text(), ParentExe: text(),
		}
	case KindProcess:
		e.Process = Process{
			Action: ProcessAction(u()), PID: uint32(u()), PPID: uint32(u()), UID: uint32(u()), GID: uint32(u()),
			LoginUID: uint32(u()), CgroupID: u(), ExitCode: int32(u()), DurationNs: int64(u()), StartNs: int64(u()),
			Comm: text(), Filename: text(), Args: args(),
			ParentName: text(), ParentExe: text(), ContainerID: text(), UserName: text(), GroupName: text(),
		}
	case KindNetwork:
		e.Network = Network{
			Action: NetworkAction(u()), Transport: uint8(u()), PID: uint32(u()), UID: uint32(u()), Comm: text(),
			Src: ap(), Dst: ap(), DurationNs: int64(u()), BytesSent: u(), BytesRecv: u(),
		}
	case KindApp:
		e.App = App{Raw: text(), Message: text(), Level: text()}
	}
	return e
}

// TestBinaryMatchesReference checks AppendBinary, which writes by index
// into one reservation, byte for byte against the plain appending encoder
// of binary_ref_test.go, on the samples and on random events of every kind
// (and of no and unknown kinds), appended to empty and to non-empty dst of
// various capacities.
func TestBinaryMatchesReference(t *testing.T) {
	f := func(e *Event) {
		t.Helper()
		want := refAppendBinary(nil, e)
		if got := AppendBinary(nil, e); !bytes.Equal(got, want) {
			t.Fatalf("AppendBinary(%+v)\n got %x\nwant %x", wireView(e), got, want)
		}
		for _, c := range []int{3, len(want) + 3, 64 << 10} {
			dst := append(make([]byte, 0, c), "abc"...)
			got := AppendBinary(dst, e)
			if string(got[:3]) != "abc" || !bytes.Equal(got[3:], want) {
				t.Fatalf("AppendBinary after 3 bytes, capacity %d: got %x, want abc + %x", c, got, want)
			}
		}
	}
	for _, s := range sampleEvents() {
		f(s.e)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for k := range kindCount + 2 {
		for range 1000 {
			f(randomEvent(rng, k))
		}
	}
	// Payloads of every length across the one- and two-byte length
	// boundaries, for a kind that reserves one byte (flow, by IPv6
	// addresses) and one that reserves by its bound (syslog, by message).
	for n := range 200 {
		e := sampleSyslog()
		e.Syslog.Message = bytes.Repeat([]byte("m"), n)
		f(e)
		e.Syslog.Message = bytes.Repeat([]byte("m"), 16300+n)
		f(e)
	}
	for n := range 1 << 4 {
		e := sampleFlow()
		for i, a := range []*netip.Addr{&e.Flow.SrcAddr, &e.Flow.DstAddr, &e.Flow.NextHop, &e.Flow.SamplerAddress} {
			if n&(1<<i) != 0 {
				*a = netip.AddrFrom16(a.As16())
			}
		}
		f(e)
	}
}

// ip4 is an IPv4 address as the big-endian number of its 4 bytes.
func ip4(a string) uint64 {
	b := netip.MustParseAddr(a).As4()
	return uint64(binary.BigEndian.Uint32(b[:]))
}

// checkPacked checks a packed flow payload against want: by offset, a value
// and its size, little-endian, except addresses (offsets from
// packedFlowHead), which are in network order. It also checks that want
// covers the whole payload.
func checkPacked(t *testing.T, p []byte, want map[uint32][]any) {
	t.Helper()
	covered := 0
	for off, vs := range want {
		v, n := vs[0].(uint64), vs[1].(int)
		if int(off)+n > len(p) {
			t.Fatalf("flow payload of %d bytes has no field at %d (%d bytes)", len(p), off, n)
		}
		var got uint64
		for k := range n {
			if off >= packedFlowHead {
				got = got<<8 | uint64(p[int(off)+k])
			} else {
				got |= uint64(p[int(off)+k]) << (8 * k)
			}
		}
		if got != v {
			t.Errorf("flow payload at %d: %#x, want %#x", off, got, v)
		}
		covered += n
	}
	if covered != len(p) {
		t.Errorf("flow payload is %d bytes, the fields checked cover %d", len(p), covered)
	}
}
