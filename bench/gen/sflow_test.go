package gen

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/netsampler/goflow2/v2/decoders/sflow"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/flow"
)

// TestSFlowDecode: every generated sFlow datagram decodes with trawl's
// decoder to exactly the flow samples Exporter.Flow and the sFlow mapping
// promise (addresses, ports, protocol, flags, TOS, interfaces, sampling
// rate, frame length, VLAN, next hop, masks), with datagram sequence
// numbers from 1 per agent, a counter sample on the template schedule,
// and the sequence tracker sees no loss until a datagram is left out.
func TestSFlowDecode(t *testing.T) {
	f := func(id, every int, sizes []int) {
		t.Helper()
		d := flow.NewDecoder(flow.NewTemplates())
		seq := flow.NewSeqTracker()
		e := NewExporter(SFlow, id, every)
		if want := sflowRates[id%4]; e.SamplingRate() != want {
			t.Fatalf("exporter %d: sampling rate %d, want %d", id, e.SamplingRate(), want)
		}
		agent := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + id)})
		from := netip.AddrPortFrom(agent, 6343)
		var k uint64
		for pi, n := range sizes {
			wantCounter := pi == 0 || (every > 0 && pi%every == 0)
			if e.SendsTemplate() != wantCounter {
				t.Fatalf("datagram %d: SendsTemplate %v, want %v", pi, e.SendsTemplate(), wantCounter)
			}
			pkt := e.AppendPacket(nil, n)
			if len(pkt) > MaxPacket {
				t.Fatalf("datagram of %d bytes", len(pkt))
			}
			want := min(n, e.MaxPerPacket())
			got := 0
			info, err := d.DecodeSFlowAt(from, pkt, 7, func(ev *event.Event) {
				w := e.Flow(k + uint64(got))
				g := &ev.Flow
				flags := w.TCPFlags
				if w.Proto != 6 {
					flags = 0
				}
				if ev.Kind != event.KindFlow || g.Type != event.FlowSFlow5 ||
					g.SrcAddr != w.SrcAddr || g.DstAddr != w.DstAddr || g.SrcPort != w.SrcPort || g.DstPort != w.DstPort ||
					g.Proto != w.Proto || g.TCPFlags != flags || g.IPTos != w.IPTos || g.Etype != 0x0800 ||
					g.InIf != w.InIf || g.OutIf != w.OutIf || g.SamplingRate != uint64(e.SamplingRate()) ||
					g.Packets != 1 || g.Bytes != uint64(w.SFlowFrameLen()) || g.VlanID != w.SFlowVLAN() ||
					g.NextHop != w.NextHop || g.SrcMask != w.SrcMask || g.DstMask != w.DstMask ||
					g.SamplerAddress != agent || g.SequenceNum != uint32(pi+1) || g.TimeStartNs != 7 {
					t.Fatalf("exporter %d sample %d:\n got %+v\nwant %+v (rate %d)", id, k+uint64(got), *g, w, e.SamplingRate())
				}
				got++
			})
			if err != nil {
				t.Fatalf("exporter %d datagram %d: %v", id, pi, err)
			}
			wantCounters := 0
			if wantCounter {
				wantCounters = 1
			}
			if got != want || info.FlowSamples != want || info.CounterSamples != wantCounters ||
				info.SkippedRecords != 0 || info.SkippedSamples != 0 || info.SampleDrops != 0 ||
				info.Agent != agent || info.SequenceNum != uint32(pi+1) {
				t.Fatalf("exporter %d datagram %d: %d samples, info %+v; want %d samples, %d counter samples, sequence %d",
					id, pi, got, info, want, wantCounters, pi+1)
			}
			if r := seq.TrackSFlow(&info); r.LostFlows != 0 || r.LostPackets != 0 {
				t.Fatalf("datagram %d: tracker reports loss %+v", pi, r)
			}
			k += uint64(got)
			if e.Flows() != k || e.Packets() != uint64(pi+1) {
				t.Fatalf("exporter counts %d/%d, want %d/%d", e.Flows(), e.Packets(), k, pi+1)
			}
		}
		// A datagram the collector never sees shows as one lost datagram.
		e.AppendPacket(nil, 5)
		info, err := d.DecodeSFlow(from, e.AppendPacket(nil, 5), func(*event.Event) {})
		if err != nil {
			t.Fatal(err)
		}
		if r := seq.TrackSFlow(&info); r.LostPackets != 1 || r.LostFlows == 0 {
			t.Fatalf("a left-out datagram: tracker says %+v", r)
		}
	}
	sizes := []int{5, 1, 3, 5, 5, 100, 2, 5, 5, 4, 5}
	f(3, 4, sizes)
	f(200, 0, sizes)
	f(1, 1, sizes)
}

// TestSFlowGoflow2: goflow2's sFlow decoder reads the generated datagrams
// to the same samples, and shows what trawl's decoder does not: sample
// sequence numbers and pools per data source, drops, the sampled header's
// IPv4 checksum, and counter samples with consistent counters.
func TestSFlowGoflow2(t *testing.T) {
	e := NewExporter(SFlow, 6, 3)
	var k uint64
	seqs := map[uint32]uint32{}
	pools := map[uint32]uint32{}
	cntSeqs := map[uint32]uint32{}
	for pi := 0; pi < 40; pi++ {
		n := 1 + pi%5
		pkt := e.AppendPacket(nil, n)
		var p sflow.Packet
		if err := sflow.DecodeMessageVersion(bytes.NewBuffer(pkt), &p); err != nil {
			t.Fatalf("datagram %d: goflow2: %v", pi, err)
		}
		if netip.AddrFrom4([4]byte(p.AgentIP)) != netip.AddrFrom4([4]byte{127, 0, 0, 8}) || p.SequenceNumber != uint32(pi+1) ||
			int(p.SamplesCount) != len(p.Samples) {
			t.Fatalf("datagram %d header: %+v", pi, p)
		}
		flows := 0
		for _, s := range p.Samples {
			switch s := s.(type) {
			case sflow.FlowSample:
				w := e.Flow(k)
				k++
				flows++
				src := s.Header.SourceIdValue
				seqs[src]++
				pools[src] += e.SamplingRate()
				if s.Header.SourceIdType != 0 || src != w.InIf || s.Header.SampleSequenceNumber != seqs[src] ||
					s.SamplePool != pools[src] || s.Drops != 0 || s.SamplingRate != e.SamplingRate() ||
					s.Input != w.InIf || s.Output != w.OutIf || len(s.Records) != 3 {
					t.Fatalf("flow sample %d: %+v, want source %d sequence %d pool %d", k-1, s, w.InIf, seqs[src], pools[src])
				}
				h, ok := s.Records[0].Data.(sflow.SampledHeader)
				if !ok || h.Protocol != 1 || h.FrameLength != w.SFlowFrameLen() || h.Stripped != 4 ||
					int(h.OriginalLength) != min(int(w.SFlowFrameLen())-4, 128) || len(h.HeaderData) < int(h.OriginalLength) {
					t.Fatalf("flow sample %d header record: %+v", k-1, s.Records[0])
				}
				ip := h.HeaderData[14:34]
				if binary.BigEndian.Uint16(h.HeaderData[12:]) != 0x0800 || checksum(ip) != 0 ||
					int(binary.BigEndian.Uint16(ip[2:])) != int(w.Bytes/w.Packets) {
					t.Fatalf("flow sample %d: bad IPv4 header % x", k-1, ip)
				}
				sw, ok := s.Records[1].Data.(sflow.ExtendedSwitch)
				if !ok || sw.SrcVlan != uint32(w.SFlowVLAN()) || sw.DstVlan != uint32(w.SFlowVLAN()) {
					t.Fatalf("flow sample %d switch record: %+v", k-1, s.Records[1])
				}
				rt, ok := s.Records[2].Data.(sflow.ExtendedRouter)
				if !ok || netip.AddrFrom4([4]byte(rt.NextHop)) != w.NextHop || rt.SrcMaskLen != uint32(w.SrcMask) || rt.DstMaskLen != uint32(w.DstMask) {
					t.Fatalf("flow sample %d router record: %+v", k-1, s.Records[2])
				}
			case sflow.CounterSample:
				src := s.Header.SourceIdValue
				cntSeqs[src]++
				if s.Header.SampleSequenceNumber != cntSeqs[src] || len(s.Records) != 1 {
					t.Fatalf("counter sample: %+v", s)
				}
				c, ok := s.Records[0].Data.(sflow.IfCounters)
				if !ok || c.IfIndex != src || c.IfInUcastPkts != pools[src] || c.IfSpeed != 10_000_000_000 {
					t.Fatalf("counter record: %+v, want ifIndex %d with %d packets", s.Records[0], src, pools[src])
				}
			default:
				t.Fatalf("sample %T", s)
			}
		}
		if flows != n {
			t.Fatalf("datagram %d: %d flow samples, want %d", pi, flows, n)
		}
	}
	if len(cntSeqs) != 4 {
		t.Errorf("counter samples for %d interfaces, want 4", len(cntSeqs))
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{V5, V9, IPFIX, SFlow} {
		g, err := ParseFormat(f.String())
		if err != nil || g != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f.String(), g, err)
		}
	}
	if _, err := ParseFormat("v7"); err == nil {
		t.Error("ParseFormat accepted v7")
	}
}
