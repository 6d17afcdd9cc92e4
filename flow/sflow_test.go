package flow

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/trawlsec/trawl/event"
)

var agentFrom = netip.MustParseAddrPort("192.0.2.10:50000")

func TestDecodeSFlow_Success(t *testing.T) {
	f := func(name string, pkt []byte, want []event.Flow, wantInfo SFlowInfo) {
		t.Helper()
		got, info, err := collectSFlow(NewDecoder(NewTemplates()), agentFrom, pkt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if info != wantInfo {
			t.Fatalf("%s: info\n got %+v\nwant %+v", name, info, wantInfo)
		}
		checkFlows(t, got, want)
	}
	v4agent, v6agent := mustAddr("192.0.2.10"), mustAddr("2001:db8::10")
	base := func(agent netip.Addr, sub, seq uint32) event.Flow {
		return event.Flow{Type: event.FlowSFlow5, SequenceNum: seq, ObservationID: sub, SamplerAddress: agent,
			TimeStartNs: 1, TimeEndNs: 1, Packets: 1}
	}
	with := func(fl event.Flow, mod func(*event.Flow)) event.Flow { mod(&fl); return fl }

	// IPv4 agent, compact sample: Ethernet/IPv4/TCP, switch and router.
	frame := ethFrame(0x0800, nil, ipv4Pkt("10.0.0.1", "10.0.0.2", 6, 0xb8, 0, nil, tcpSeg(40000, 443, 0x12, 30)))
	f("ipv4 tcp", sflowDatagram("192.0.2.10", 3, 77, 1000).
		sample(sfFlowSample, sfFlowBody(false, 1, 512, 0, sfIfc{0, 3}, sfIfc{0, 0x3fffffff},
			sfRaw(sfProtoEthernet, 1500, frame), sfSwitch(10, 20), sfRouter("192.0.2.254", 24, 16))).bytes(),
		[]event.Flow{with(base(v4agent, 3, 77), func(f *event.Flow) {
			f.SamplingRate, f.InIf, f.OutIf, f.Bytes = 512, 3, 0x3fffffff, 1500
			f.SrcAddr, f.DstAddr, f.Proto, f.IPTos, f.Etype = mustAddr("10.0.0.1"), mustAddr("10.0.0.2"), 6, 0xb8, 0x0800
			f.SrcPort, f.DstPort, f.TCPFlags, f.VlanID = 40000, 443, 0x12, 10
			f.NextHop, f.SrcMask, f.DstMask = mustAddr("192.0.2.254"), 24, 16
		})},
		SFlowInfo{Agent: v4agent, SubAgentID: 3, SequenceNum: 77, UptimeMs: 1000, Samples: 1, FlowSamples: 1})

	// IPv6 agent, expanded sample: tagged Ethernet/IPv6/UDP (the header's
	// VLAN wins over the switch record), gateway with an AS path.
	frame = ethFrame(0x86dd, []uint16{0xa000 | 42}, ipv6Pkt("2001:db8::1", "2001:db8::2", 17, 0x28, udpDgram(53, 5353, 40)))
	f("ipv6 udp vlan gateway", sflowDatagram("2001:db8::10", 0, 1, 5).
		sample(sfFlowSampleExp, sfFlowBody(true, 1, 4096, 3, sfIfc{0, 1 << 31}, sfIfc{0, 9},
			sfSwitch(7, 8), sfRaw(sfProtoEthernet, 200, frame),
			sfGatewayRec("2001:db8::fe", 64500, 64501, 64502, [][]uint32{{64510, 64511, 64512}}, []uint32{1, 2}))).bytes(),
		[]event.Flow{with(base(v6agent, 0, 1), func(f *event.Flow) {
			f.SamplingRate, f.InIf, f.OutIf, f.Bytes = 4096, 1<<31, 9, 200
			f.SrcAddr, f.DstAddr, f.Proto, f.IPTos, f.Etype = mustAddr("2001:db8::1"), mustAddr("2001:db8::2"), 17, 0x28, 0x86dd
			f.SrcPort, f.DstPort, f.VlanID = 53, 5353, 42
			f.SrcAS, f.DstAS = 64501, 64512
		})},
		SFlowInfo{Agent: v6agent, SequenceNum: 1, UptimeMs: 5, Samples: 1, FlowSamples: 1, SampleDrops: 3})

	// Sampled IPv4 and IPv6 records; counter samples; an unknown sample
	// format, an enterprise sample and an unknown record are skipped;
	// interfaces in format 1 (discard) and 2 (several) are not ifIndexes;
	// a gateway with no path and source AS 0 gives the router's AS.
	f("sampled ip, counters, skipped", sflowDatagram("192.0.2.10", 1, 2, 3).
		sample(sfCounterSample, sfCounterBody(rand.New(rand.NewPCG(1, 2)), false)).
		sample(sfFlowSample, sfFlowBody(false, 1, 100, 0, sfIfc{1, 5}, sfIfc{2, 3},
			sfIPv4Rec(900, 6, "10.1.1.1", "10.2.2.2", 1, 2, 0x10, 4), sfRec(1004, []byte("user")),
			sfGatewayRec("10.0.0.1", 65000, 0, 0, nil, nil))).
		sample(5, []byte{1, 2, 3, 4}).
		sample(9<<12|1, []byte{0, 0, 0, 0}).
		sample(sfCounterSampleExp, sfCounterBody(rand.New(rand.NewPCG(1, 2)), true)).
		sample(sfFlowSampleExp, sfFlowBody(true, 2, 100, 0, sfIfc{0, 70000}, sfIfc{1, 0},
			sfIPv6Rec(1200, 17, "2001:db8::a", "2001:db8::b", 3, 4, 0, 0x40), sfSwitch(300, 0))).bytes(),
		[]event.Flow{
			with(base(v4agent, 1, 2), func(f *event.Flow) {
				f.SamplingRate, f.Bytes = 100, 900
				f.SrcAddr, f.DstAddr, f.Proto, f.IPTos, f.Etype = mustAddr("10.1.1.1"), mustAddr("10.2.2.2"), 6, 4, 0x0800
				f.SrcPort, f.DstPort, f.TCPFlags, f.SrcAS, f.DstAS = 1, 2, 0x10, 65000, 65000
			}),
			with(base(v4agent, 1, 2), func(f *event.Flow) {
				f.SamplingRate, f.Bytes, f.InIf = 100, 1200, 70000
				f.SrcAddr, f.DstAddr, f.Proto, f.IPTos, f.Etype = mustAddr("2001:db8::a"), mustAddr("2001:db8::b"), 17, 0x40, 0x86dd
				f.SrcPort, f.DstPort, f.VlanID = 3, 4, 300
			}),
		},
		SFlowInfo{Agent: v4agent, SubAgentID: 1, SequenceNum: 2, UptimeMs: 3, Samples: 6, FlowSamples: 2,
			CounterSamples: 2, SkippedSamples: 2, SkippedRecords: 1})

	// Header variants: QinQ (inner tag wins), ICMP (no ports), IPv4 with
	// options, a non-first IPv4 fragment (no ports), IPv6 extension
	// headers (Proto is the upper layer), raw IPv4 (protocol 11), a header
	// cut inside TCP (no ports), ARP, an unknown-type agent address.
	hdrs := []struct {
		proto uint32
		hdr   []byte
		mod   func(*event.Flow)
	}{
		{1, ethFrame(0x0800, []uint16{100, 0x2000 | 200}, ipv4Pkt("10.0.0.1", "10.0.0.2", 1, 0, 0, nil, []byte{8, 0, 0, 0, 0, 0, 0, 0})),
			func(f *event.Flow) {
				f.VlanID, f.Etype, f.Proto = 200, 0x0800, 1
				f.SrcAddr, f.DstAddr = mustAddr("10.0.0.1"), mustAddr("10.0.0.2")
			}},
		{1, ethFrame(0x0800, nil, ipv4Pkt("10.0.0.1", "10.0.0.2", 17, 0, 0, []byte{1, 1, 1, 1}, udpDgram(7, 9, 0))),
			func(f *event.Flow) {
				f.Etype, f.Proto, f.SrcPort, f.DstPort = 0x0800, 17, 7, 9
				f.SrcAddr, f.DstAddr = mustAddr("10.0.0.1"), mustAddr("10.0.0.2")
			}},
		{1, ethFrame(0x0800, nil, ipv4Pkt("10.0.0.1", "10.0.0.2", 17, 0, 185, nil, udpDgram(7, 9, 0))),
			func(f *event.Flow) {
				f.Etype, f.Proto = 0x0800, 17
				f.SrcAddr, f.DstAddr = mustAddr("10.0.0.1"), mustAddr("10.0.0.2")
			}},
		{1, ethFrame(0x86dd, nil, ipv6Pkt("2001:db8::1", "2001:db8::2", 0, 0, append(append(
			[]byte{44, 0, 1, 4, 0, 0, 0, 0}, // hop-by-hop, 8 bytes
			6, 0, 0, 0, 0, 0, 0, 1),         // fragment, offset 0
			tcpSeg(22, 2222, 0x02, 0)...))),
			func(f *event.Flow) {
				f.Etype, f.Proto, f.SrcPort, f.DstPort, f.TCPFlags = 0x86dd, 6, 22, 2222, 0x02
				f.SrcAddr, f.DstAddr = mustAddr("2001:db8::1"), mustAddr("2001:db8::2")
			}},
		{sfProtoIPv4, ipv4Pkt("10.0.0.3", "10.0.0.4", 6, 1, 0, nil, tcpSeg(1, 2, 0x01, 0)),
			func(f *event.Flow) {
				f.Etype, f.Proto, f.IPTos, f.SrcPort, f.DstPort, f.TCPFlags = 0x0800, 6, 1, 1, 2, 0x01
				f.SrcAddr, f.DstAddr = mustAddr("10.0.0.3"), mustAddr("10.0.0.4")
			}},
		{1, ethFrame(0x0800, nil, ipv4Pkt("10.0.0.1", "10.0.0.2", 6, 0, 0, nil, tcpSeg(1, 2, 0x01, 0)[:19])),
			func(f *event.Flow) {
				f.Etype, f.Proto = 0x0800, 6
				f.SrcAddr, f.DstAddr = mustAddr("10.0.0.1"), mustAddr("10.0.0.2")
			}},
		{1, ethFrame(0x0806, nil, make([]byte, 28)), func(f *event.Flow) { f.Etype = 0x0806 }},
		{1, ethFrame(0x0800, nil, nil)[:13], func(f *event.Flow) {}},
	}
	for i, h := range hdrs {
		want := base(netip.Addr{}, 0, uint32(i))
		want.SamplingRate, want.Bytes = 1, 64
		h.mod(&want)
		f("header variant", sflowDatagram("", 0, uint32(i), 0).
			sample(sfFlowSample, sfFlowBody(false, 1, 1, 0, sfIfc{}, sfIfc{}, sfRaw(h.proto, 64, h.hdr))).bytes(),
			[]event.Flow{want}, SFlowInfo{SequenceNum: uint32(i), Samples: 1, FlowSamples: 1})
	}
}

func TestDecodeSFlow_Failure(t *testing.T) {
	f := func(name string, pkt []byte, want error, wantFlows int) {
		t.Helper()
		got, _, err := collectSFlow(NewDecoder(NewTemplates()), agentFrom, pkt)
		var se *SFlowError
		if !errors.Is(err, want) || !errors.As(err, &se) {
			t.Fatalf("%s: error %v, want %v in *SFlowError", name, err, want)
		}
		if len(got) != wantFlows {
			t.Fatalf("%s: %d flows delivered, want %d", name, len(got), wantFlows)
		}
	}
	good := sfFlowBody(false, 1, 1, 0, sfIfc{}, sfIfc{}, sfSwitch(1, 2))
	dg := func(bodies ...[]byte) []byte {
		d := sflowDatagram("192.0.2.1", 0, 1, 1)
		for _, b := range bodies {
			d.sample(sfFlowSample, b)
		}
		return d.bytes()
	}
	f("empty", nil, ErrTruncated, 0)
	f("version 4", append(num(4, 4), dg()[4:]...), ErrBadVersion, 0)
	f("agent type 3", append(num(5, 4), append(num(3, 4), dg()[8:]...)...), ErrBadLength, 0)
	f("more samples announced", append(dg(good)[:24], append(num(2, 4), dg(good)[28:]...)...), ErrTruncated, 1)
	f("short flow sample", dg(good, good[:20]), ErrBadLength, 1)
	// Header 28 bytes, first sample 8+56: the second starts at 92.
	if _, err := NewDecoder(NewTemplates()).DecodeSFlowAt(agentFrom, dg(good, good[:20]), 1, func(*event.Event) {}); err == nil ||
		err.Error() != "cannot decode sflow v5 sample 1 (tag 1) at offset 92: bad length" {
		t.Fatalf("error text %v", err)
	}
	if _, err := NewDecoder(NewTemplates()).DecodeSFlowAt(agentFrom, dg()[:10], 1, func(*event.Event) {}); err == nil ||
		err.Error() != "cannot decode sflow v5 datagram header at offset 4: truncated packet" {
		t.Fatalf("error text %v", err)
	}
	f("short expanded flow sample", sflowDatagram("192.0.2.1", 0, 1, 1).sample(sfFlowSampleExp, good).bytes(), ErrBadLength, 0)
	f("short counter sample", sflowDatagram("192.0.2.1", 0, 1, 1).sample(sfCounterSample, num(0, 8)).bytes(), ErrBadLength, 0)
	f("short expanded counter sample", sflowDatagram("192.0.2.1", 0, 1, 1).sample(sfCounterSampleExp, num(0, 12)).bytes(), ErrBadLength, 0)
	withRecs := func(n uint32, recs ...[]byte) []byte {
		b := sfFlowBody(false, 1, 1, 0, sfIfc{}, sfIfc{}, recs...)
		copy(b[28:], num(uint64(n), 4))
		return b
	}
	f("more records announced", dg(good, withRecs(2, sfSwitch(1, 2))), ErrBadLength, 1)
	f("record past the sample", dg(withRecs(1, sfSwitch(1, 2)[:12])), ErrBadLength, 0)
	f("short switch", dg(withRecs(1, sfRec(sfExtSwitch, num(0, 12)))), ErrBadLength, 0)
	f("short sampled ipv4", dg(withRecs(1, sfRec(sfSampledIPv4, num(0, 28)))), ErrBadLength, 0)
	f("short sampled ipv6", dg(withRecs(1, sfRec(sfSampledIPv6, num(0, 52)))), ErrBadLength, 0)
	f("short raw header", dg(withRecs(1, sfRec(sfRawHeader, num(0, 12)))), ErrBadLength, 0)
	f("raw header past record", dg(withRecs(1, sfRec(sfRawHeader, u32s(1, 64, 4, 5, 0)))), ErrBadLength, 0)
	f("router address type", dg(withRecs(1, sfRec(sfExtRouter, u32s(7, 0, 0, 0)))), ErrBadLength, 0)
	f("short router", dg(withRecs(1, sfRec(sfExtRouter, u32s(1, 0, 0)))), ErrBadLength, 0)
	gw := sfGatewayRec("10.0.0.1", 1, 2, 3, [][]uint32{{4, 5}}, []uint32{6})
	f("gateway path past record", dg(withRecs(1, sfRec(sfExtGateway, append(gw[8:32], num(1000, 4)...)))), ErrBadLength, 0)
	f("gateway segments past record", dg(withRecs(1, sfRec(sfExtGateway, append(gw[8:20], num(9, 4)...)))), ErrBadLength, 0)
	f("gateway without local_pref", dg(withRecs(1, sfRec(sfExtGateway, gw[8:len(gw)-4]))), ErrBadLength, 0)
	f("gateway communities past record", dg(withRecs(1, sfRec(sfExtGateway, append(gw[8:44], num(99, 4)...)))), ErrBadLength, 0)
}

// TestDecodeSFlowTruncated cuts datagrams of every kind at every length:
// always ErrTruncated, never a panic, never more flows than whole samples.
func TestDecodeSFlowTruncated(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	pkts := [][]byte{sampleSFlow(r, 1)}
	for range 20 {
		pkts = append(pkts, randomSFlow(r))
	}
	d := NewDecoder(NewTemplates())
	for _, p := range pkts {
		full, _, err := collectSFlow(d, agentFrom, p)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(p) {
			got, info, err := collectSFlow(d, agentFrom, p[:n])
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("cut at %d of %d: error %v", n, len(p), err)
			}
			if len(got) > len(full) || info.FlowSamples != len(got) {
				t.Fatalf("cut at %d: %d flows (info %d) of %d", n, len(got), info.FlowSamples, len(full))
			}
			for i := range got {
				if got[i] != full[i] {
					t.Fatalf("cut at %d: flow %d differs", n, i)
				}
			}
		}
	}
}

func TestDecodeSFlowAllocs(t *testing.T) {
	d := NewDecoder(NewTemplates())
	p := sampleSFlow(rand.New(rand.NewPCG(1, 1)), 1)
	var sum uint64
	fn := func(e *event.Event) { sum += e.Flow.Bytes }
	allocs := testing.AllocsPerRun(100, func() {
		if info, err := d.DecodeSFlow(agentFrom, p, fn); err != nil || info.FlowSamples != 8 {
			t.Fatalf("%+v %v", info, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per datagram", allocs)
	}
	if sum == 0 {
		t.Fatal("no bytes")
	}
}

func TestTrackSFlow(t *testing.T) {
	s := NewSeqTracker()
	f := func(agent string, sub, seq uint32, flows int, want SeqResult) {
		t.Helper()
		info := SFlowInfo{Agent: mustAddr(agent), SubAgentID: sub, SequenceNum: seq, FlowSamples: flows}
		if got := s.TrackSFlow(&info); got != want {
			t.Fatalf("%s/%d seq %d: got %+v, want %+v", agent, sub, seq, got, want)
		}
	}
	f("192.0.2.1", 0, 100, 8, SeqResult{Resync: true})
	f("192.0.2.1", 0, 101, 8, SeqResult{})
	f("192.0.2.1", 0, 104, 8, SeqResult{LostPackets: 2, LostFlows: 16})
	f("192.0.2.1", 1, 7, 4, SeqResult{Resync: true}) // another sub-agent
	f("192.0.2.1", 1, 9, 4, SeqResult{LostPackets: 1, LostFlows: 4})
	f("192.0.2.1", 0, 103, 8, SeqResult{Reordered: true})
	f("192.0.2.1", 0, 105, 8, SeqResult{})
	f("192.0.2.1", 0, 1, 8, SeqResult{Resync: true}) // agent restart
	f("192.0.2.1", 0, 1<<20, 8, SeqResult{Resync: true})
	// The same address exporting NetFlow v9 is another stream.
	v9 := PacketInfo{Version: 9, SequenceNum: 5, Records: 1}
	if r := s.Track(mustAddr("192.0.2.1"), &v9); !r.Resync {
		t.Fatalf("v9 after sFlow: %+v", r)
	}
	f("::ffff:192.0.2.1", 0, 1<<20+1, 8, SeqResult{}) // IPv4-mapped is the same agent
}
