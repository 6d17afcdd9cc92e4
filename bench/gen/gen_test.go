package gen

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trawlsec/trawl/internal/mmsg"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/flow"
)

// TestPacketsDecode: every generated packet decodes with trawl's decoder
// to exactly the flows Exporter.Flow promises, with the header sequence
// numbers each protocol defines, and templates come when they should.
func TestPacketsDecode(t *testing.T) {
	f := func(format Format, perPacket, tplEvery int, sizes []int) {
		t.Helper()
		d := flow.NewDecoder(flow.NewTemplates())
		exps := []*Exporter{NewExporter(format, 3, tplEvery), NewExporter(format, 200, tplEvery)}
		var k [2]uint64
		var pkts [2]uint64
		for pi, n := range sizes {
			for ei, e := range exps {
				from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + e.ID())}), 4000)
				wantTpl := format != V5 && (pkts[ei] == 0 || (tplEvery > 0 && pkts[ei]%uint64(tplEvery) == 0))
				if e.SendsTemplate() != wantTpl {
					t.Fatalf("%v packet %d: SendsTemplate %v, want %v", format, pi, e.SendsTemplate(), wantTpl)
				}
				pkt := e.AppendPacket(nil, n)
				if len(pkt) > MaxPacket {
					t.Fatalf("%v packet of %d bytes", format, len(pkt))
				}
				got := 0
				info, err := d.Decode(from, pkt, func(ev *event.Event) {
					if ev.Kind != event.KindFlow {
						t.Fatalf("kind %v", ev.Kind)
					}
					w := e.Flow(k[ei] + uint64(got))
					g := &ev.Flow
					if g.SrcAddr != w.SrcAddr || g.DstAddr != w.DstAddr || g.NextHop != w.NextHop ||
						g.SrcPort != w.SrcPort || g.DstPort != w.DstPort || g.Proto != w.Proto ||
						g.TCPFlags != w.TCPFlags || g.IPTos != w.IPTos || g.Packets != w.Packets || g.Bytes != w.Bytes ||
						g.InIf != w.InIf || g.OutIf != w.OutIf || g.SrcMask != w.SrcMask || g.DstMask != w.DstMask ||
						g.TimeStartNs != w.StartMs*1e6 || g.TimeEndNs != w.EndMs*1e6 {
						t.Fatalf("%v exporter %d flow %d:\n got %+v\nwant %+v", format, e.ID(), k[ei]+uint64(got), *g, w)
					}
					// v5 AS numbers are 16 bits on the wire.
					if format != V5 && (g.SrcAS != w.SrcAS || g.DstAS != w.DstAS) {
						t.Fatalf("%v AS %d/%d, want %d/%d", format, g.SrcAS, g.DstAS, w.SrcAS, w.DstAS)
					}
					got++
				})
				if err != nil {
					t.Fatalf("%v exporter %d packet %d: %v", format, e.ID(), pi, err)
				}
				want := n
				if m := e.MaxPerPacket(); want > m {
					want = m
				}
				if got != want || info.Records != want {
					t.Fatalf("%v packet %d: %d flows (info %d), want %d", format, pi, got, info.Records, want)
				}
				var wantSeq uint64
				switch format {
				case V5, IPFIX:
					wantSeq = k[ei]
				case V9:
					wantSeq = pkts[ei]
				}
				if uint64(info.SequenceNum) != wantSeq {
					t.Fatalf("%v exporter %d packet %d: sequence %d, want %d", format, e.ID(), pi, info.SequenceNum, wantSeq)
				}
				if wantTpl != (info.TemplatesLearned == 1) {
					t.Fatalf("%v packet %d: templates learned %d, want template %v", format, pi, info.TemplatesLearned, wantTpl)
				}
				k[ei] += uint64(got)
				pkts[ei]++
				if e.Flows() != k[ei] || e.Packets() != pkts[ei] {
					t.Fatalf("exporter counts %d/%d, want %d/%d", e.Flows(), e.Packets(), k[ei], pkts[ei])
				}
			}
		}
	}
	sizes := []int{30, 1, 17, 30, 30, 1000, 5, 30, 30, 30, 2}
	f(V5, 30, 0, sizes)
	f(V9, 24, 3, sizes)
	f(V9, 24, 0, sizes)
	f(IPFIX, 19, 4, sizes)
	f(IPFIX, 19, 1, sizes)
}

// TestFlowMix: the field mix is what the doc says, and distinct flows differ.
func TestFlowMix(t *testing.T) {
	e := NewExporter(V5, 1, 0)
	var tcp, udp, icmp int
	seen := map[Flow]bool{}
	const n = 20000
	for k := uint64(0); k < n; k++ {
		fl := e.Flow(k)
		switch fl.Proto {
		case 6:
			tcp++
		case 17:
			udp++
		case 1:
			icmp++
		default:
			t.Fatalf("proto %d", fl.Proto)
		}
		if fl.Packets < 1 || fl.Packets > 64 || fl.Bytes < 40*fl.Packets || fl.Bytes > 1500*fl.Packets {
			t.Fatalf("flow %d: %d packets %d bytes", k, fl.Packets, fl.Bytes)
		}
		if fl.StartMs > fl.EndMs {
			t.Fatalf("flow %d ends before it starts", k)
		}
		seen[fl] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct flows of %d", len(seen), n)
	}
	if tcp < n*65/100 || tcp > n*75/100 || udp < n*20/100 || udp > n*30/100 || icmp < n*3/100 || icmp > n*7/100 {
		t.Errorf("mix tcp %d udp %d icmp %d of %d", tcp, udp, icmp, n)
	}
}

// TestSend: exact counts over loopback, from distinct exporter addresses,
// and pacing holds the rate; with GSO the receiver still gets every packet
// whole (a run cut wrongly would not decode).
func TestSend(t *testing.T) {
	f := func(format Format, flows uint64, rate float64, exporters int, gso bool) {
		t.Helper()
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		pc.SetReadBuffer(8 << 20)
		target := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		type got struct {
			flows, packets uint64
			from           map[netip.Addr]bool
		}
		done := make(chan got, 1)
		go func() {
			g := got{from: map[netip.Addr]bool{}}
			d := flow.NewDecoder(flow.NewTemplates())
			buf := make([]byte, 65536)
			for {
				pc.SetReadDeadline(time.Now().Add(2 * time.Second)) // generous: the sender may start late on a busy machine
				n, from, err := pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					done <- g
					return
				}
				g.packets++
				g.from[from.Addr()] = true
				if format == SFlow {
					info, _ := d.DecodeSFlow(from, buf[:n], func(*event.Event) {})
					g.flows += uint64(info.FlowSamples)
					continue
				}
				info, _ := d.Decode(from, buf[:n], func(*event.Event) {})
				g.flows += uint64(info.Records)
			}
		}()
		res, err := Send(context.Background(), SendConfig{Format: format, Target: target, Exporters: exporters, Flows: flows, Rate: rate, GSO: gso})
		if err != nil {
			t.Fatal(err)
		}
		g := <-done
		if res.Flows != flows || g.flows != flows || g.packets != res.Packets {
			t.Fatalf("%v (gso %v): sent %d flows in %d packets, received %d in %d, want %d", format, gso, res.Flows, res.Packets, g.flows, g.packets, flows)
		}
		if len(g.from) != exporters {
			t.Errorf("%d exporter addresses, want %d", len(g.from), exporters)
		}
		if rate > 0 {
			min := time.Duration(float64(flows)/rate*0.9*1e9) - time.Millisecond
			if res.Elapsed < min {
				t.Errorf("%d flows at %v/s took %v, want ≥ %v", flows, rate, res.Elapsed, min)
			}
		}
	}
	for _, gso := range []bool{false, true} {
		f(V5, 10_007, 0, 5, gso)
		f(V9, 5_003, 0, 3, gso)
		f(IPFIX, 5_000, 0, 7, gso)
		f(IPFIX, 20_000, 100_000, 4, gso)
		f(SFlow, 5_003, 0, 6, gso)
	}
}

// TestAppendPacketAllocs: building packets into a reused buffer allocates
// nothing, so the sender's ceiling is the kernel, not the GC.
func TestAppendPacketAllocs(t *testing.T) {
	for _, f := range []Format{V5, V9, IPFIX, SFlow} {
		e := NewExporter(f, 1, 2)
		buf := make([]byte, 0, MaxPacket)
		if n := testing.AllocsPerRun(100, func() { buf = e.AppendPacket(buf[:0], 30) }); n != 0 {
			t.Errorf("%v: %v allocs per packet", f, n)
		}
	}
}

// TestPackMessages: with GSO, runs of equal-size packets share a message
// (a shorter packet ends its run), with the size in UDP_SEGMENT; without,
// each packet is its own message.
func TestPackMessages(t *testing.T) {
	lens := []int{100, 100, 100, 50, 100, 120, 120, 80, 80}
	bufs := make([][]byte, len(lens))
	iovs := make([]unix.Iovec, len(lens))
	for i, l := range lens {
		bufs[i] = make([]byte, l)
		iovs[i].Base = &bufs[i][0]
		iovs[i].SetLen(l)
	}
	msgs := make([]mmsg.Hdr, len(lens))
	ctrlLen := unix.CmsgSpace(2)
	ctrl := make([]byte, len(lens)*ctrlLen)
	if m := packMessages(msgs, iovs, bufs, false, ctrl, ctrlLen); m != len(lens) {
		t.Fatalf("without GSO %d messages, want %d", m, len(lens))
	}
	m := packMessages(msgs, iovs, bufs, true, ctrl, ctrlLen)
	type run struct{ iovs, seg int }
	want := []run{{4, 100}, {1, 0}, {3, 120}, {1, 0}}
	if m != len(want) {
		t.Fatalf("%d messages, want %d", m, len(want))
	}
	for i, w := range want {
		h := msgs[i].Hdr
		seg := 0
		if h.Controllen > 0 {
			cm, err := unix.ParseSocketControlMessage(ctrl[i*ctrlLen : i*ctrlLen+int(h.Controllen)])
			if err != nil || len(cm) != 1 || cm[0].Header.Type != unix.UDP_SEGMENT {
				t.Fatalf("message %d: control %v, %v", i, cm, err)
			}
			seg = int(cm[0].Data[0]) | int(cm[0].Data[1])<<8
		}
		if int(h.Iovlen) != w.iovs || seg != w.seg {
			t.Errorf("message %d: %d packets, segment %d; want %d, %d", i, h.Iovlen, seg, w.iovs, w.seg)
		}
	}
}

// TestSendTrailer: Trailer runs once every main packet has arrived, then
// each exporter sends one more 1-flow packet. When the last main packet of
// one exporter is lost (the test drops it), only the trailer's sequence
// number reveals it: the tracker counts exactly its flows for v5 and
// IPFIX, and nothing is lost for the other exporters.
func TestSendTrailer(t *testing.T) {
	for _, format := range []Format{V5, IPFIX} {
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		pc.SetReadBuffer(8 << 20)
		type packet struct {
			from netip.AddrPort
			data []byte
		}
		pkts := make(chan packet, 1<<14)
		go func() {
			defer close(pkts)
			buf := make([]byte, 65536)
			for {
				pc.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, from, err := pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				pkts <- packet{from, append([]byte(nil), buf[:n]...)}
			}
		}()
		const exporters, flows = 4, 3_003
		// Every packet but the last of the run is full.
		per := DefaultPerPacket(format)
		mainPackets := (flows + per - 1) / per
		next := func() (packet, bool) {
			select {
			case p, ok := <-pkts:
				return p, ok
			case <-time.After(5 * time.Second):
				return packet{}, false
			}
		}
		var main, trailer []packet
		cfg := SendConfig{Format: format, Target: pc.LocalAddr().(*net.UDPAddr).AddrPort(), Exporters: exporters, Flows: flows}
		cfg.Trailer = func() {
			// Everything sent so far is in before the trailer goes.
			for len(main) < mainPackets {
				p, ok := next()
				if !ok {
					t.Errorf("%v: receiver stopped after %d packets", format, len(main))
					return
				}
				main = append(main, p)
			}
		}
		res, err := Send(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for len(trailer) < exporters {
			p, ok := next()
			if !ok {
				break
			}
			trailer = append(trailer, p)
		}
		pc.Close()
		if res.TrailerFlows != exporters || res.Flows != flows+exporters {
			t.Fatalf("%v: %d flows with %d trailer flows, want %d and %d", format, res.Flows, res.TrailerFlows, flows+exporters, exporters)
		}
		if len(main) != mainPackets || len(trailer) != exporters || res.Packets != uint64(mainPackets+exporters) {
			t.Fatalf("%v: %d main and %d trailer packets received, %d sent; want %d and %d", format, len(main), len(trailer), res.Packets, mainPackets, exporters)
		}
		// Drop the last main packet of the first exporter.
		victim := -1
		for i, p := range main {
			if p.from.Addr() == netip.AddrFrom4([4]byte{127, 0, 0, 2}) {
				victim = i
			}
		}
		d := flow.NewDecoder(flow.NewTemplates())
		seq := flow.NewSeqTracker()
		var lost, victimFlows uint64
		for i, p := range append(main, trailer...) {
			info, err := d.Decode(p.from, p.data, func(*event.Event) {})
			if err != nil {
				t.Fatalf("%v: packet %d: %v", format, i, err)
			}
			if i == victim {
				victimFlows = uint64(info.Records)
				continue
			}
			lost += seq.Track(p.from.Addr(), &info).LostFlows
		}
		if victimFlows == 0 || lost != victimFlows {
			t.Errorf("%v: the trailer revealed %d lost flows, want the %d of the dropped packet", format, lost, victimFlows)
		}
	}
}
