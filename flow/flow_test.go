package flow

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"testing"

	"github.com/trawlsec/trawl/event"
)

var (
	exporterA = netip.MustParseAddrPort("192.0.2.1:40000")
	exporterB = netip.MustParseAddrPort("[2001:db8::9]:40001")
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestDecodeV5(t *testing.T) {
	recs := []v5Rec{
		{src: "10.0.0.1", dst: "10.0.0.2", nh: "10.0.0.254", in: 3, out: 4, pkts: 10, octets: 1500,
			first: 9000, last: 9500, sport: 1234, dport: 443, flags: 0x1b, proto: 6, tos: 0x20,
			srcAS: 64512, dstAS: 64513, srcMask: 24, dstMask: 16},
		{src: "10.0.0.3", dst: "10.0.0.4", nh: "0.0.0.0", pkts: 1, octets: 60, first: 10000, last: 10000,
			sport: 53, dport: 5353, proto: 17},
	}
	// Sampling mode 01 in the top bits, interval 100.
	p := v5Packet(10000, 1700000000, 500, 77, 1, 2, 0x4000|100, recs)
	got, info, err := collect(NewDecoder(NewTemplates()), exporterA, p)
	if err != nil {
		t.Fatal(err)
	}
	base := int64(1700000000)*1e9 + 500
	want := []event.Flow{{
		Type: event.FlowNetFlow5, SamplingRate: 100, SequenceNum: 77, ObservationID: 0x0102,
		TimeStartNs: base - 1000*1e6, TimeEndNs: base - 500*1e6, Bytes: 1500, Packets: 10,
		SrcAddr: mustAddr("10.0.0.1"), DstAddr: mustAddr("10.0.0.2"), NextHop: mustAddr("10.0.0.254"),
		SamplerAddress: exporterA.Addr(), SrcPort: 1234, DstPort: 443, Proto: 6, TCPFlags: 0x1b,
		IPTos: 0x20, Etype: 0x0800, InIf: 3, OutIf: 4, SrcAS: 64512, DstAS: 64513, SrcMask: 24, DstMask: 16,
	}, {
		Type: event.FlowNetFlow5, SamplingRate: 100, SequenceNum: 77, ObservationID: 0x0102,
		TimeStartNs: base, TimeEndNs: base, Bytes: 60, Packets: 1,
		SrcAddr: mustAddr("10.0.0.3"), DstAddr: mustAddr("10.0.0.4"),
		SamplerAddress: exporterA.Addr(), SrcPort: 53, DstPort: 5353, Proto: 17, Etype: 0x0800,
	}}
	checkFlows(t, got, want)
	wantInfo := PacketInfo{Version: 5, SequenceNum: 77, ObservationID: 0x0102, ExportTimeNs: base, Records: 2, SamplingRate: 100}
	if info != wantInfo {
		t.Fatalf("info = %+v, want %+v", info, wantInfo)
	}
}

func checkFlows(t *testing.T, got, want []event.Flow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d flows, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("flow %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// v9AllFields is a template using every field type the decoder maps for
// NetFlow v9, with the values of one record.
func v9AllFields() []fv {
	return []fv{
		{id: 1, l: 8, val: num(123456789012, 8)},
		{id: 2, l: 4, val: num(4242, 4)},
		{id: 4, l: 1, val: num(6, 1)},
		{id: 5, l: 1, val: num(0xb8, 1)},
		{id: 6, l: 1, val: num(0x12, 1)},
		{id: 7, l: 2, val: num(51000, 2)},
		{id: 8, l: 4, val: ip("198.51.100.7")},
		{id: 9, l: 1, val: num(25, 1)},
		{id: 10, l: 4, val: num(70000, 4)},
		{id: 11, l: 2, val: num(22, 2)},
		{id: 12, l: 4, val: ip("203.0.113.9")},
		{id: 13, l: 1, val: num(27, 1)},
		{id: 14, l: 2, val: num(12, 2)},
		{id: 15, l: 4, val: ip("198.51.100.1")},
		{id: 16, l: 4, val: num(4200000000, 4)},
		{id: 17, l: 2, val: num(65001, 2)},
		{id: 21, l: 4, val: num(99000, 4)},
		{id: 22, l: 4, val: num(90000, 4)},
		{id: 58, l: 2, val: num(101, 2)},
		{id: 34, l: 4, val: num(512, 4)},
		{id: 99, l: 3, val: num(7, 3)}, // unmapped: skipped
	}
}

func TestDecodeV9AllFields(t *testing.T) {
	fs := v9AllFields()
	tpl := v9Packet(100000, 1700000000, 1, 9).openSet(0).template(300, fs).bytes()
	data := v9Packet(100000, 1700000000, 2, 9).openSet(300).data(fs).data(fs).pad(3).bytes()
	got, info, err := collect(NewDecoder(NewTemplates()), exporterA, tpl, data)
	if err != nil {
		t.Fatal(err)
	}
	base := int64(1700000000) * 1e9
	w := event.Flow{
		Type: event.FlowNetFlow9, SamplingRate: 512, SequenceNum: 2, ObservationID: 9,
		TimeStartNs: base - 10000*1e6, TimeEndNs: base - 1000*1e6, Bytes: 123456789012, Packets: 4242,
		SrcAddr: mustAddr("198.51.100.7"), DstAddr: mustAddr("203.0.113.9"), NextHop: mustAddr("198.51.100.1"),
		SamplerAddress: exporterA.Addr(), SrcPort: 51000, DstPort: 22, Proto: 6, TCPFlags: 0x12, IPTos: 0xb8,
		Etype: 0x0800, InIf: 70000, OutIf: 12, SrcAS: 4200000000, DstAS: 65001, SrcMask: 25, DstMask: 27, VlanID: 101,
	}
	checkFlows(t, got, []event.Flow{w, w})
	if info.Records != 2 || info.SequenceNum != 2 || info.ObservationID != 9 || info.Version != 9 {
		t.Fatalf("info = %+v", info)
	}
}

func TestDecodeIPFIXAllFields(t *testing.T) {
	const export = 1700000100
	fs := []fv{
		{id: 1, l: 8, val: num(5000, 8)},
		{id: 2, l: 8, val: num(50, 8)},
		{id: 4, l: 1, val: num(17, 1)},
		{id: 5, l: 1, val: num(4, 1)},
		{id: 6, l: 2, val: num(0x02, 2)},
		{id: 7, l: 2, val: num(5353, 2)},
		{id: 11, l: 2, val: num(53, 2)},
		{id: 27, l: 16, val: ip("2001:db8::1")},
		{id: 28, l: 16, val: ip("2001:db8::2")},
		{id: 29, l: 1, val: num(64, 1)},
		{id: 30, l: 1, val: num(48, 1)},
		{id: 62, l: 16, val: ip("fe80::1")},
		{id: 8, l: 4, val: ip("0.0.0.0")}, // a zero IPv4 beside IPv6 must not win
		{id: 10, l: 4, val: num(1, 4)},
		{id: 14, l: 4, val: num(2, 4)},
		{id: 16, l: 4, val: num(3, 4)},
		{id: 17, l: 4, val: num(4, 4)},
		{id: 1, l: 4, pen: 9, val: num(999, 4)},        // enterprise field: skipped
		{id: 82, l: varLen, val: []byte("eth0")},       // interfaceName, short prefix
		{id: 83, l: varLen, val: make([]byte, 300)},    // interfaceDescription, 3-byte prefix
		{id: 0x7fff, l: varLen, pen: 3, val: []byte{}}, // empty enterprise var field
		{id: 152, l: 8, val: num(1700000000123, 8)},
		{id: 153, l: 8, val: num(1700000001456, 8)},
		{id: 58, l: 2, val: num(7, 2)},
		{id: 256, l: 2, val: num(0x86dd, 2)},
	}
	tpl := ipfixPacket(export, 0, 5).openSet(2).template(400, fs).bytes()
	data := ipfixPacket(export, 0, 5).openSet(400).data(fs).bytes()
	got, info, err := collect(NewDecoder(NewTemplates()), exporterB, tpl, data)
	if err != nil {
		t.Fatal(err)
	}
	w := event.Flow{
		Type: event.FlowIPFIX, ObservationID: 5, TimeStartNs: 1700000000123 * 1e6, TimeEndNs: 1700000001456 * 1e6,
		Bytes: 5000, Packets: 50, SrcAddr: mustAddr("2001:db8::1"), DstAddr: mustAddr("2001:db8::2"),
		NextHop: mustAddr("fe80::1"), SamplerAddress: exporterB.Addr(), SrcPort: 5353, DstPort: 53, Proto: 17,
		TCPFlags: 2, IPTos: 4, Etype: 0x86dd, InIf: 1, OutIf: 2, SrcAS: 3, DstAS: 4, SrcMask: 64, DstMask: 48, VlanID: 7,
	}
	checkFlows(t, got, []event.Flow{w})
	if info.Version != 10 || info.Records != 1 || info.ExportTimeNs != export*1e9 {
		t.Fatalf("info = %+v", info)
	}
}

func TestDecodeIPFIXTimes(t *testing.T) {
	const export = 1700000100
	ntp := func(sec uint64, frac uint64) []byte { return num((sec+ntpEpochOffset)<<32|frac, 8) }
	f := func(fs []fv, wantStart, wantEnd int64) {
		t.Helper()
		d := NewDecoder(NewTemplates())
		tpl := ipfixPacket(export, 0, 1).openSet(2).template(256, fs).bytes()
		data := ipfixPacket(export, 0, 1).openSet(256).data(fs).bytes()
		got, _, err := collect(d, exporterA, tpl, data)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].TimeStartNs != wantStart || got[0].TimeEndNs != wantEnd {
			t.Fatalf("got %+v, want start %d end %d", got, wantStart, wantEnd)
		}
	}
	f([]fv{{id: 1, l: 4, val: num(1, 4)}}, export*1e9, export*1e9)
	f([]fv{{id: 150, l: 4, val: num(1700000000, 4)}, {id: 151, l: 4, val: num(1700000050, 4)}},
		1700000000e9, 1700000050e9)
	f([]fv{{id: 154, l: 8, val: ntp(1700000000, 1<<31)}, {id: 155, l: 8, val: ntp(1700000001, 1<<30)}},
		1700000000e9+5e8, 1700000001e9+25e7)
	f([]fv{{id: 156, l: 8, val: ntp(1700000002, 0)}, {id: 157, l: 8, val: ntp(1700000003, 0)}},
		1700000002e9, 1700000003e9)
	f([]fv{{id: 158, l: 4, val: num(2e6, 4)}, {id: 159, l: 4, val: num(1e6, 4)}},
		export*1e9-2e9, export*1e9-1e9)
	// sysUpTime-relative with systemInitTimeMilliseconds in the record.
	f([]fv{{id: 22, l: 4, val: num(1000, 4)}, {id: 21, l: 4, val: num(3000, 4)}, {id: 160, l: 8, val: num(1699999000000, 8)}},
		(1699999000000+1000)*1e6, (1699999000000+3000)*1e6)
	// Without an init time the export time stays.
	f([]fv{{id: 22, l: 4, val: num(1000, 4)}, {id: 21, l: 4, val: num(3000, 4)}}, export*1e9, export*1e9)
}

func TestDecodeIPFIXInitTimeFromOptions(t *testing.T) {
	tpls := NewTemplates()
	d := NewDecoder(tpls)
	opts := ipfixPacket(100, 0, 1).
		openSet(3).optionsTemplate(258, []fv{{id: 144, l: 4}}, []fv{{id: 160, l: 8}}).
		openSet(258).data([]fv{{val: num(1, 4)}, {val: num(1699999000000, 8)}}).bytes()
	fs := []fv{{id: 22, l: 4, val: num(1000, 4)}, {id: 21, l: 4, val: num(3000, 4)}}
	data := ipfixPacket(100, 0, 1).openSet(2).template(256, fs).openSet(256).data(fs).bytes()
	got, _, err := collect(d, exporterA, opts, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].TimeStartNs != (1699999000000+1000)*1e6 || got[0].TimeEndNs != (1699999000000+3000)*1e6 {
		t.Fatalf("got %+v", got)
	}
}

func TestDecodeCounterLengths(t *testing.T) {
	f := func(version uint16, l int, x uint64) {
		t.Helper()
		fs := []fv{{id: 1, l: uint16(l), val: num(x, l)}, {id: 2, l: uint16(l), val: num(x/3, l)},
			{id: 10, l: uint16(l), val: num(x&0xffffffff, l)}, {id: 16, l: uint16(l), val: num(x&0xffff, l)}}
		var tpl, data []byte
		if version == 9 {
			tpl = v9Packet(1, 2, 3, 4).openSet(0).template(256, fs).bytes()
			data = v9Packet(1, 2, 3, 4).openSet(256).data(fs).bytes()
		} else {
			tpl = ipfixPacket(2, 3, 4).openSet(2).template(256, fs).bytes()
			data = ipfixPacket(2, 3, 4).openSet(256).data(fs).bytes()
		}
		got, _, err := collect(NewDecoder(NewTemplates()), exporterA, tpl, data)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Bytes != x || got[0].Packets != x/3 ||
			got[0].InIf != uint32(x&0xffffffff) || got[0].SrcAS != uint32(x&0xffff) {
			t.Fatalf("v%d length %d value %d: got %+v", version, l, x, got)
		}
	}
	for _, v := range []uint16{9, 10} {
		f(v, 1, 200)
		f(v, 2, 60000)
		f(v, 3, 0xabcdef)
		f(v, 4, 4000000000)
		f(v, 6, 0xa1b2c3d4e5f6)
		f(v, 8, 1<<62+12345)
	}
}

func TestDecodeOptionsSampling(t *testing.T) {
	// opts is the sampling options data in an exporter's packet; want the
	// rate later records carry.
	f := func(version uint16, opts []fv, want uint64) {
		t.Helper()
		tpls := NewTemplates()
		d := NewDecoder(tpls)
		fs := []fv{{id: 1, l: 4, val: num(100, 4)}}
		var scope []fv
		var p1, p2 []byte
		if version == 9 {
			scope = []fv{{id: 1, l: 4, val: num(0, 4)}} // scope "system"
			p1 = v9Packet(1, 2, 3, 7).openSet(1).optionsTemplate(260, scope, opts).pad(2).
				openSet(0).template(256, fs).
				openSet(256).data(fs). // before the options data: no rate yet
				openSet(260).data(append(scope, opts...)).
				openSet(256).data(fs).bytes()
			p2 = v9Packet(1, 2, 4, 7).openSet(256).data(fs).bytes()
		} else {
			scope = []fv{{id: 144, l: 4, val: num(7, 4)}}
			p1 = ipfixPacket(2, 3, 7).openSet(3).optionsTemplate(260, scope, opts).
				openSet(2).template(256, fs).
				openSet(256).data(fs).
				openSet(260).data(append(scope, opts...)).
				openSet(256).data(fs).bytes()
			p2 = ipfixPacket(2, 4, 7).openSet(256).data(fs).bytes()
		}
		got, info, err := collect(d, exporterA, p1, p2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].SamplingRate != 0 || got[1].SamplingRate != want || got[2].SamplingRate != want {
			t.Fatalf("v%d: got %+v, want rate %d", version, got, want)
		}
		if info.SamplingRate != want || tpls.SamplingRate(exporterA.Addr(), version, 7) != want {
			t.Fatalf("info rate %d, cache rate %d, want %d", info.SamplingRate,
				tpls.SamplingRate(exporterA.Addr(), version, 7), want)
		}
		// Another domain of the same exporter is not sampled.
		other := v9Packet(1, 2, 4, 8).openSet(0).template(256, fs).openSet(256).data(fs).bytes()
		if version == 10 {
			other = ipfixPacket(2, 4, 8).openSet(2).template(256, fs).openSet(256).data(fs).bytes()
		}
		got, _, err = collect(d, exporterA, other)
		if err != nil || len(got) != 1 || got[0].SamplingRate != 0 {
			t.Fatalf("other domain: %+v %v", got, err)
		}
	}
	for _, v := range []uint16{9, 10} {
		f(v, []fv{{id: 34, l: 4, val: num(1000, 4)}}, 1000)
		f(v, []fv{{id: 34, l: 2, val: num(10, 2)}, {id: 35, l: 1, val: num(2, 1)}}, 10)
		f(v, []fv{{id: 50, l: 4, val: num(64, 4)}}, 64)
		f(v, []fv{{id: 34, l: 4, val: num(5, 4)}, {id: 305, l: 4, val: num(2048, 4)}}, 2048)
	}
}

func TestDecodeIPFIXWithdrawal(t *testing.T) {
	tpls := NewTemplates()
	d := NewDecoder(tpls)
	fs := []fv{{id: 1, l: 4, val: num(1, 4)}}
	learn := ipfixPacket(1, 0, 1).openSet(2).template(256, fs).template(257, fs).
		openSet(3).optionsTemplate(258, []fv{{id: 144, l: 4}}, []fv{{id: 34, l: 4}}).bytes()
	data := ipfixPacket(1, 0, 1).openSet(256).data(fs).openSet(257).data(fs).bytes()
	f := func(withdraw []byte, wantFlows, wantLen int) {
		t.Helper()
		if _, _, err := collect(d, exporterA, learn, withdraw); err != nil {
			t.Fatal(err)
		}
		got, info, err := collect(d, exporterA, data)
		if len(got) != wantFlows || tpls.Len() != wantLen {
			t.Fatalf("got %d flows, %d templates; want %d, %d", len(got), tpls.Len(), wantFlows, wantLen)
		}
		if wantFlows < 2 && (!errors.Is(err, ErrTemplateNotFound) || info.NoTemplateSets != 2-wantFlows) {
			t.Fatalf("err %v, info %+v", err, info)
		}
	}
	f(ipfixPacket(1, 0, 1).openSet(2).withdraw(256).bytes(), 1, 2)
	f(ipfixPacket(1, 0, 1).openSet(2).withdraw(256).withdraw(257).bytes(), 0, 1)
	f(ipfixPacket(1, 0, 1).openSet(2).withdraw(2).bytes(), 0, 1)          // all data templates
	f(ipfixPacket(1, 0, 1).openSet(3).withdraw(3).bytes(), 2, 2)          // all options templates
	f(ipfixPacket(1, 0, 1).openSet(3).withdraw(258).pad(4).bytes(), 2, 2) // padding after it
}

func TestDecodeTemplateRedefinition(t *testing.T) {
	d := NewDecoder(NewTemplates())
	a := []fv{{id: 1, l: 4, val: num(10, 4)}, {id: 2, l: 4, val: num(1, 4)}}
	b := []fv{{id: 2, l: 2, val: num(3, 2)}, {id: 1, l: 8, val: num(30, 8)}}
	got, _, err := collect(d, exporterA,
		v9Packet(1, 2, 3, 0).openSet(0).template(256, a).openSet(256).data(a).bytes(),
		v9Packet(1, 2, 4, 0).openSet(0).template(256, b).openSet(256).data(b).bytes(),
	)
	if err != nil || len(got) != 2 || got[0].Bytes != 10 || got[1].Bytes != 30 || got[1].Packets != 3 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestDecodeTemplatesPerExporter(t *testing.T) {
	tpls := NewTemplates()
	d := NewDecoder(tpls)
	a := []fv{{id: 1, l: 4, val: num(10, 4)}}
	b := []fv{{id: 1, l: 2, val: num(20, 2)}, {id: 2, l: 2, val: num(2, 2)}}
	_, _, err := collect(d, exporterA, v9Packet(1, 2, 3, 0).openSet(0).template(256, a).bytes())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = collect(d, exporterB, v9Packet(1, 2, 3, 0).openSet(0).template(256, b).bytes())
	if err != nil {
		t.Fatal(err)
	}
	ga, _, _ := collect(d, exporterA, v9Packet(1, 2, 3, 0).openSet(256).data(a).bytes())
	gb, _, _ := collect(d, exporterB, v9Packet(1, 2, 3, 0).openSet(256).data(b).bytes())
	// Same exporter, other source id: unknown.
	gc, info, err := collect(d, exporterA, v9Packet(1, 2, 3, 1).openSet(256).data(a).bytes())
	if len(ga) != 1 || ga[0].Bytes != 10 || len(gb) != 1 || gb[0].Bytes != 20 || len(gc) != 0 ||
		!errors.Is(err, ErrTemplateNotFound) || info.NoTemplateSets != 1 {
		t.Fatalf("a %+v b %+v c %+v err %v", ga, gb, gc, err)
	}
	// A v4-mapped exporter address is the same exporter.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(exporterA.Addr().As16()), 1)
	gm, _, err := collect(d, mapped, v9Packet(1, 2, 3, 0).openSet(256).data(a).bytes())
	if err != nil || len(gm) != 1 || gm[0].Bytes != 10 {
		t.Fatalf("mapped: %+v %v", gm, err)
	}
	if tpls.Len() != 2 {
		t.Fatalf("templates = %d", tpls.Len())
	}
}

func TestDecodeUnknownTemplate(t *testing.T) {
	d := NewDecoder(NewTemplates())
	known := []fv{{id: 1, l: 4, val: num(10, 4)}}
	p := ipfixPacket(1, 0, 0).openSet(2).template(256, known).
		openSet(999).data(known).data(known).
		openSet(256).data(known).bytes()
	got, info, err := collect(d, exporterA, p)
	if !errors.Is(err, ErrTemplateNotFound) || len(got) != 1 || info.Records != 1 ||
		info.NoTemplateSets != 1 || info.NoTemplateBytes != 8 || info.TemplatesLearned != 1 {
		t.Fatalf("got %+v info %+v err %v", got, info, err)
	}
}

func TestDecode_Failure(t *testing.T) {
	f := func(p []byte, want error) {
		t.Helper()
		_, _, err := collect(NewDecoder(NewTemplates()), exporterA, p)
		if !errors.Is(err, want) {
			t.Fatalf("err = %v, want %v", err, want)
		}
		var de *DecodeError
		if want != ErrTemplateNotFound && !errors.As(err, &de) {
			t.Fatalf("err %T is not a *DecodeError", err)
		}
	}
	fs := []fv{{id: 1, l: 4}}
	f(nil, ErrTruncated)
	f([]byte{0}, ErrTruncated)
	f([]byte{0, 7, 1, 2, 3}, ErrBadVersion)
	f([]byte{0, 5, 0, 0}, ErrTruncated)
	f(v9Packet(1, 2, 3, 4).bytes()[:19], ErrTruncated)
	f(ipfixPacket(1, 2, 3).bytes()[:15], ErrTruncated)
	// Set length below its header.
	bad := v9Packet(1, 2, 3, 4).openSet(256).bytes()
	bad[len(bad)-1] = 3
	f(bad, ErrBadLength)
	// IPFIX message length below the header.
	bad = ipfixPacket(1, 2, 3).bytes()
	bad[3] = 8
	f(bad, ErrBadLength)
	// Template of zero-length fields.
	f(v9Packet(1, 2, 3, 4).openSet(0).template(256, []fv{{id: 1, l: 0}}).bytes(), ErrBadLength)
	// Variable length in a v9 template.
	f(v9Packet(1, 2, 3, 4).openSet(0).template(256, []fv{{id: 1, l: varLen}}).bytes(), ErrBadLength)
	// Options template with no scope (IPFIX) or unaligned lengths (v9).
	f(ipfixPacket(1, 2, 3).openSet(3).optionsTemplate(256, nil, fs).bytes(), ErrBadLength)
	odd := v9Packet(1, 2, 3, 4).openSet(1).optionsTemplate(256, fs, fs).bytes()
	odd[20+4+3] = 3
	f(odd, ErrBadLength)
	// Template announcing more fields than sent.
	short := ipfixPacket(1, 2, 3).openSet(2).template(256, fs).bytes()
	short[16+4+3] = 2
	f(short, ErrTruncated)
	// Data record whose variable-length field overruns the set.
	vfs := []fv{{id: 82, l: varLen, val: []byte("abcdef")}}
	vp := ipfixPacket(1, 2, 3).openSet(2).template(256, vfs).openSet(256).data(vfs).bytes()
	vp[len(vp)-7] = 200
	f(vp, ErrTruncated)
	f(ipfixPacket(1, 2, 3).openSet(256).data(fs).bytes(), ErrTemplateNotFound)
}

// TestDecodeTruncated cuts valid packets at every length: never a panic,
// always an error, except where a v9 packet ends on a set boundary (v9
// has no message length), where fewer flows come out.
func TestDecodeTruncated(t *testing.T) {
	recs := make([]v5Rec, 3)
	for i := range recs {
		recs[i] = v5Rec{src: "10.0.0.1", dst: "10.0.0.2", nh: "0.0.0.0", pkts: 1, octets: 2}
	}
	fs := []fv{{id: 8, l: 4, val: ip("10.1.1.1")}, {id: 1, l: 8, val: num(1, 8)}, {id: 82, l: varLen, val: []byte("x")}}
	v9fs := fs[:2]
	cases := []struct {
		name     string
		pkt      []byte
		tpl      []byte
		bounds   map[int]bool // v9 set boundaries
		wantRecs int
	}{
		{name: "v5", pkt: v5Packet(1, 2, 3, 4, 0, 0, 0, recs), wantRecs: 3},
		{name: "v9", tpl: v9Packet(1, 2, 3, 4).openSet(0).template(256, v9fs).bytes(),
			pkt: v9Packet(1, 2, 3, 4).openSet(0).template(257, v9fs).openSet(256).data(v9fs).data(v9fs).bytes(),
			// After the header and after the template set, with up to 3
			// bytes that v9 tolerates as padding.
			bounds: map[int]bool{20: true, 21: true, 22: true, 23: true, 36: true, 37: true, 38: true, 39: true}, wantRecs: 2},
		{name: "ipfix", tpl: ipfixPacket(1, 2, 3).openSet(2).template(256, fs).bytes(),
			pkt: ipfixPacket(1, 2, 3).openSet(2).template(257, fs).openSet(256).data(fs).data(fs).bytes(), wantRecs: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpls := NewTemplates()
			d := NewDecoder(tpls)
			if c.tpl != nil {
				if _, _, err := collect(d, exporterA, c.tpl); err != nil {
					t.Fatal(err)
				}
			}
			got, _, err := collect(d, exporterA, c.pkt)
			if err != nil || len(got) != c.wantRecs {
				t.Fatalf("full packet: %d flows, %v", len(got), err)
			}
			for n := range len(c.pkt) {
				cut := append([]byte(nil), c.pkt[:n]...)
				got, info, err := collect(d, exporterA, cut)
				if c.bounds[n] {
					if err != nil || len(got) != 0 {
						t.Fatalf("cut at set boundary %d: %d flows, %v", n, len(got), err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("cut at %d of %d: no error, %d flows", n, len(c.pkt), len(got))
				}
				if info.Records != len(got) || len(got) >= c.wantRecs {
					t.Fatalf("cut at %d: %d flows, info %+v", n, len(got), info)
				}
			}
		})
	}
}

func TestDecodeIPv4MappedAndZeroAddresses(t *testing.T) {
	// nProbe-like templates carry both address families; the zero one
	// must lose whatever the order.
	f := func(fs []fv, wantSrc string, wantEtype uint16) {
		t.Helper()
		var want netip.Addr
		if wantSrc != "" {
			want = mustAddr(wantSrc)
		}
		d := NewDecoder(NewTemplates())
		got, _, err := collect(d, exporterA, v9Packet(1, 2, 3, 0).openSet(0).template(256, fs).openSet(256).data(fs).bytes())
		if err != nil || len(got) != 1 || got[0].SrcAddr != want || got[0].Etype != wantEtype {
			t.Fatalf("got %+v %v", got, err)
		}
	}
	f([]fv{{id: 8, l: 4, val: ip("10.0.0.1")}, {id: 27, l: 16, val: ip("::")}}, "10.0.0.1", 0x0800)
	f([]fv{{id: 27, l: 16, val: ip("::")}, {id: 8, l: 4, val: ip("10.0.0.1")}}, "10.0.0.1", 0x0800)
	f([]fv{{id: 8, l: 4, val: ip("0.0.0.0")}, {id: 27, l: 16, val: ip("2001:db8::5")}}, "2001:db8::5", 0x86dd)
	f([]fv{{id: 27, l: 16, val: ip("2001:db8::5")}, {id: 8, l: 4, val: ip("0.0.0.0")}}, "2001:db8::5", 0x86dd)
	f([]fv{{id: 8, l: 4, val: ip("0.0.0.0")}}, "0.0.0.0", 0x0800)
	f([]fv{{id: 60, l: 1, val: num(6, 1)}, {id: 8, l: 2, val: num(1, 2)}}, "", 0x86dd)
}

// TestDocMapping keeps the mapping table of docs/flow.md and the decoder's
// field kinds in step.
func TestDocMapping(t *testing.T) {
	doc, err := os.ReadFile("../docs/flow.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[int]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+) `).FindAllSubmatch(doc, -1) {
		id, _ := strconv.Atoi(string(m[1]))
		documented[id] = true
	}
	for id, k := range dataKinds {
		if (k != kSkip) != documented[id] {
			t.Errorf("IE %d: mapped %v, documented %v", id, k != kSkip, documented[id])
		}
	}
	if len(documented) < 30 {
		t.Fatalf("only %d IEs found in the doc table", len(documented))
	}
}

// TestTemplatesConcurrent runs decoders on one Templates while templates
// are redefined and withdrawn; run with -race.
func TestTemplatesConcurrent(t *testing.T) {
	tpls := NewTemplates()
	a := []fv{{id: 1, l: 4, val: num(10, 4)}, {id: 2, l: 4, val: num(1, 4)}}
	b := []fv{{id: 1, l: 8, val: num(10, 8)}}
	pkts := [][]byte{
		ipfixPacket(1, 0, 1).openSet(2).template(256, a).openSet(256).data(a).data(a).bytes(),
		ipfixPacket(1, 0, 1).openSet(2).template(256, b).openSet(256).data(b).bytes(),
		ipfixPacket(1, 0, 1).openSet(2).withdraw(256).bytes(),
		ipfixPacket(1, 0, 1).openSet(3).optionsTemplate(257, []fv{{id: 144, l: 4}}, []fv{{id: 34, l: 4}}).
			openSet(257).data([]fv{{val: num(1, 4)}, {val: num(10, 4)}}).bytes(),
	}
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			// One exporter per goroutine: an exporter that redefines a
			// template while its data is in flight garbles that data.
			exp := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(g)}), 1)
			d := NewDecoder(tpls)
			for i := range 2000 {
				_, err := d.Decode(exp, pkts[(i+g)%len(pkts)], func(e *event.Event) {
					if e.Flow.Bytes != 10 {
						panic("bad flow")
					}
				})
				if err != nil && err != ErrTemplateNotFound {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if r := tpls.SamplingRate(netip.AddrFrom4([4]byte{192, 0, 2, 3}), 10, 1); r != 10 {
		t.Fatalf("sampling rate %d", r)
	}
}

func TestDecodeRendersECS(t *testing.T) {
	fs := v9AllFields()
	p := v9Packet(100000, 1700000000, 2, 9).openSet(0).template(300, fs).openSet(300).data(fs).bytes()
	var js []byte
	_, err := NewDecoder(NewTemplates()).Decode(exporterA, p, func(e *event.Event) { js = event.AppendJSON(js[:0], e) })
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"source":{"ip":"198.51.100.7","port":51000}`, `"destination":{"ip":"203.0.113.9","port":22}`,
		`"transport":"tcp"`, `"bytes":123456789012`, `"packets":4242`, `"type":"NETFLOW_V9"`,
		`"exporter":"192.0.2.1:40000"`, `"sampling_rate":512`, `"in_if":70000`, `"next_hop":"198.51.100.1"`,
		`"vlan_id":101`, `"src_as":4200000000`,
	} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
}

func TestTemplatesMemoryBound(t *testing.T) {
	tpls := NewTemplates()
	tpls.maxBytes = 2000
	d := NewDecoder(tpls)
	fs := []fv{{id: 1, l: 4}, {id: 2, l: 4}}
	p := ipfixPacket(1, 0, 1).openSet(2)
	for id := range 20 {
		p.template(uint16(256+id), fs)
	}
	info, err := d.Decode(exporterA, p.bytes(), func(*event.Event) {})
	if err != nil || info.TemplatesRefused == 0 || info.TemplatesLearned+info.TemplatesRefused != 20 ||
		tpls.Len() != info.TemplatesLearned || tpls.Bytes() > 2000 || tpls.Bytes() <= 0 {
		t.Fatalf("info %+v, %d templates, %d bytes, %v", info, tpls.Len(), tpls.Bytes(), err)
	}
	// Known templates may still change; withdrawing all frees everything.
	d.Decode(exporterA, ipfixPacket(1, 0, 1).openSet(2).template(256, fs[:1]).bytes(), func(*event.Event) {})
	if _, err := d.Decode(exporterA, ipfixPacket(1, 0, 1).openSet(2).withdraw(2).bytes(), func(*event.Event) {}); err != nil {
		t.Fatal(err)
	}
	if tpls.Len() != 0 || tpls.Bytes() != 0 {
		t.Fatalf("after withdrawal: %d templates, %d bytes", tpls.Len(), tpls.Bytes())
	}
}

// TestDecodeSingleFields decodes a template of one field at a time, in
// v9 and IPFIX, and checks where the value lands.
func TestDecodeSingleFields(t *testing.T) {
	f := func(version uint16, fs []fv, want func(f *event.Flow) bool) {
		t.Helper()
		tpl := v9Packet(1000, 10, 0, 0).openSet(0).template(256, fs).openSet(256).data(fs).bytes()
		if version == 10 {
			tpl = ipfixPacket(10, 0, 0).openSet(2).template(256, fs).openSet(256).data(fs).bytes()
		}
		got, _, err := collect(NewDecoder(NewTemplates()), exporterA, tpl)
		if err != nil || len(got) != 1 || !want(&got[0]) {
			t.Fatalf("v%d %+v: got %+v, %v", version, fs, got, err)
		}
	}
	for _, v := range []uint16{9, 10} {
		f(v, []fv{{id: 23, l: 4, val: num(77, 4)}}, func(f *event.Flow) bool { return f.Bytes == 77 })
		f(v, []fv{{id: 24, l: 2, val: num(7, 2)}}, func(f *event.Flow) bool { return f.Packets == 7 })
		f(v, []fv{{id: 1, l: 4, val: num(5, 4)}, {id: 23, l: 4, val: num(6, 4)}}, func(f *event.Flow) bool { return f.Bytes == 6 })
		f(v, []fv{{id: 50, l: 4, val: num(33, 4)}}, func(f *event.Flow) bool { return f.SamplingRate == 33 })
		f(v, []fv{{id: 305, l: 4, val: num(44, 4)}}, func(f *event.Flow) bool { return f.SamplingRate == 44 })
		f(v, []fv{{id: 62, l: 16, val: ip("2001:db8::1")}}, func(f *event.Flow) bool { return f.NextHop == mustAddr("2001:db8::1") })
		f(v, []fv{{id: 15, l: 4, val: ip("0.0.0.0")}}, func(f *event.Flow) bool { return !f.NextHop.IsValid() })
		f(v, []fv{{id: 60, l: 1, val: num(4, 1)}}, func(f *event.Flow) bool { return f.Etype == 0x0800 })
		f(v, []fv{{id: 256, l: 2, val: num(0x8100, 2)}}, func(f *event.Flow) bool { return f.Etype == 0x8100 })
		f(v, []fv{{id: 152, l: 8, val: num(1234, 8)}, {id: 153, l: 8, val: num(5678, 8)}},
			func(f *event.Flow) bool { return f.TimeStartNs == 1234e6 && f.TimeEndNs == 5678e6 })
		f(v, []fv{{id: 8, l: 3, val: num(1, 3)}}, func(f *event.Flow) bool { return !f.SrcAddr.IsValid() && f.Etype == 0 })
		f(v, []fv{{id: 4, l: 9, val: num(17, 9)}}, func(f *event.Flow) bool { return f.Proto == 17 })
	}
	// v9 uptime-relative times: header uptime 1000 ms at export 10 s.
	f(9, []fv{{id: 22, l: 4, val: num(400, 4)}, {id: 21, l: 4, val: num(1500, 4)}},
		func(f *event.Flow) bool { return f.TimeStartNs == 10e9-600e6 && f.TimeEndNs == 10e9+500e6 })
}

func TestTemplatesPerExporterBound(t *testing.T) {
	tpls := NewTemplates()
	tpls.maxExp = 1500
	d := NewDecoder(tpls)
	fs := []fv{{id: 1, l: 4}, {id: 2, l: 4}}
	p := func() []byte {
		p := ipfixPacket(1, 0, 1).openSet(2)
		for id := range 20 {
			p.template(uint16(256+id), fs)
		}
		return p.bytes()
	}
	a, _ := d.Decode(exporterA, p(), func(*event.Event) {})
	b, _ := d.Decode(exporterB, p(), func(*event.Event) {})
	// Each exporter fills its own share; neither takes the other's.
	if a.TemplatesRefused == 0 || a.TemplatesLearned != b.TemplatesLearned || tpls.Len() != 2*a.TemplatesLearned {
		t.Fatalf("a %+v, b %+v, %d templates", a, b, tpls.Len())
	}
	if _, err := d.Decode(exporterA, ipfixPacket(1, 0, 1).openSet(2).withdraw(2).bytes(), func(*event.Event) {}); err != nil {
		t.Fatal(err)
	}
	a, _ = d.Decode(exporterA, p(), func(*event.Event) {})
	if a.TemplatesLearned != b.TemplatesLearned || tpls.Len() != 2*b.TemplatesLearned {
		t.Fatalf("after withdrawal: %+v, %d templates", a, tpls.Len())
	}
}

// TestDecodeV5OverwritesEveryField guards decodeV5's field-by-field
// assignment: whatever the reused event held before (every field of Flow
// set, as a previous v9 or IPFIX record could leave it), a v5 record decodes
// to the same flow as in a fresh decoder. A field added to event.Flow and
// not set by decodeV5 fails here.
func TestDecodeV5OverwritesEveryField(t *testing.T) {
	p := v5Packet(10000, 1700000000, 500, 77, 1, 2, 0, []v5Rec{{src: "10.0.0.3", dst: "10.0.0.4", nh: "0.0.0.0",
		pkts: 1, octets: 60, first: 10000, last: 10000, sport: 53, dport: 5353, proto: 17}})
	want, _, err := collect(NewDecoder(NewTemplates()), exporterA, p)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(NewTemplates())
	v := reflect.ValueOf(&d.ev.Flow).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(7)
		case reflect.Int64:
			f.SetInt(7)
		default:
			if f.Type() != reflect.TypeFor[netip.Addr]() {
				t.Fatalf("field %s: no test value for type %s", v.Type().Field(i).Name, f.Type())
			}
			f.Set(reflect.ValueOf(netip.MustParseAddr("2001:db8::7")))
		}
	}
	got, _, err := collect(d, exporterA, p)
	if err != nil {
		t.Fatal(err)
	}
	checkFlows(t, got, want)
}
