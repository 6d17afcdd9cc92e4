package flow

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/netsampler/goflow2/v2/decoders/sflow"
	"github.com/trawlsec/trawl/event"
)

// gfSF decodes sFlow datagrams with goflow2 v2.2.6's decoders/sflow and
// maps flow samples to event.Flow the way its producer/proto does
// (ProcessMessageSFlowConfig, SearchSFlowSampleConfig and, for raw
// Ethernet headers, ParsePacket with the default parser environment),
// rewritten here because producer/proto cannot be linked (see gf2).
// Times are the receive time in goflow2; the caller passes it.
type gfSF struct {
	buf bytes.Buffer
	pkt sflow.Packet
}

// gfMsg holds the FlowMessage fields the sFlow producer writes, with
// goflow2's types.
type gfMsg struct {
	samplingRate, bytes, packets                  uint64
	inIf, outIf                                   uint32
	srcAddr, dstAddr, nextHop                     []byte
	srcNet, dstNet, srcAS, dstAS                  uint32
	srcVlan, dstVlan, vlanID                      uint32
	etype, proto, srcPort, dstPort, ipTos, tcpFlg uint32
	tagged                                        bool // a Dot1Q layer set vlanID
	// Which sample format and interface formats it came from, for the
	// documented differences applied in toFlow.
	compact             bool
	inFormat, outFormat uint32
}

func (g *gfSF) decode(p []byte, nowNs int64, fn func(f *event.Flow)) error {
	g.buf.Reset()
	g.buf.Write(p)
	g.pkt = sflow.Packet{}
	if err := sflow.DecodeMessageVersion(&g.buf, &g.pkt); err != nil {
		return err
	}
	agent, _ := netip.AddrFromSlice(g.pkt.AgentIP)
	for _, s := range g.pkt.Samples {
		var m gfMsg
		var recs []sflow.FlowRecord
		switch s := s.(type) {
		case sflow.FlowSample:
			recs = s.Records
			m.samplingRate, m.inIf, m.outIf, m.compact = uint64(s.SamplingRate), s.Input, s.Output, true
		case sflow.ExpandedFlowSample:
			recs = s.Records
			m.samplingRate, m.inIf, m.outIf = uint64(s.SamplingRate), s.InputIfValue, s.OutputIfValue
			m.inFormat, m.outFormat = s.InputIfFormat, s.OutputIfFormat
		default:
			continue
		}
		m.packets = 1
		for _, rec := range recs {
			switch r := rec.Data.(type) {
			case sflow.SampledHeader:
				m.bytes = uint64(r.FrameLength)
				if r.Protocol == 1 {
					gfParseEthernet(&m, r.HeaderData)
				}
			case sflow.SampledIPv4:
				m.srcAddr, m.dstAddr, m.bytes, m.proto = r.SrcIP, r.DstIP, uint64(r.Length), r.Protocol
				m.srcPort, m.dstPort, m.ipTos, m.etype = r.SrcPort, r.DstPort, r.Tos, 0x800
				m.tcpFlg = r.TcpFlags // trawl: kept (goflow2 drops the record's TCP flags)
			case sflow.SampledIPv6:
				m.srcAddr, m.dstAddr, m.bytes, m.proto = r.SrcIP, r.DstIP, uint64(r.Length), r.Protocol
				m.srcPort, m.dstPort, m.ipTos, m.etype = r.SrcPort, r.DstPort, r.Priority, 0x86dd
				m.tcpFlg = r.TcpFlags // trawl: kept (goflow2 drops the record's TCP flags)
			case sflow.ExtendedRouter:
				m.srcNet, m.dstNet = r.SrcMaskLen, r.DstMaskLen
				// trawl: a zero next hop does not replace a set one (the
				// NetFlow rule); goflow2 keeps the last.
				if !allZero(r.NextHop) {
					m.nextHop = r.NextHop
				}
			case sflow.ExtendedGateway:
				if len(r.ASPath) > 0 {
					m.dstAS = r.ASPath[len(r.ASPath)-1]
				} else {
					m.dstAS = r.AS
				}
				if r.SrcAS > 0 {
					m.srcAS = r.SrcAS
				} else {
					m.srcAS = r.AS
				}
			case sflow.ExtendedSwitch:
				m.srcVlan, m.dstVlan = r.SrcVlan, r.DstVlan
			}
		}
		f := m.toFlow(g.pkt.SequenceNumber, g.pkt.SubAgentId, agent, nowNs)
		fn(&f)
	}
	return nil
}

// toFlow turns a goflow2 FlowMessage into event.Flow. The differences
// trawl documents (docs/flow.md, "sFlow v5") are applied here, each
// marked "trawl:", so the comparison is otherwise exact.
func (m *gfMsg) toFlow(seq, sub uint32, agent netip.Addr, nowNs int64) event.Flow {
	addr := func(b []byte) netip.Addr { a, _ := netip.AddrFromSlice(b); return a }
	f := event.Flow{
		Type: event.FlowSFlow5, SamplingRate: m.samplingRate, SequenceNum: seq, SamplerAddress: agent,
		TimeStartNs: nowNs, TimeEndNs: nowNs, Bytes: m.bytes, Packets: m.packets,
		SrcAddr: addr(m.srcAddr), DstAddr: addr(m.dstAddr),
		SrcPort: uint16(m.srcPort), DstPort: uint16(m.dstPort), Proto: uint8(m.proto), TCPFlags: uint8(m.tcpFlg),
		IPTos: uint8(m.ipTos), Etype: uint16(m.etype), InIf: m.inIf, OutIf: m.outIf,
		SrcAS: m.srcAS, DstAS: m.dstAS, SrcMask: uint8(m.srcNet), DstMask: uint8(m.dstNet),
	}
	// trawl: ObservationID is the sub-agent id (goflow2 leaves it 0).
	f.ObservationID = sub
	// trawl: a zero next hop is no next hop, as in the NetFlow mapping.
	if nh := addr(m.nextHop); nh.IsValid() && !nh.IsUnspecified() {
		f.NextHop = nh
	}
	// trawl: one VLAN field, the 12-bit id of the header's 802.1Q tag
	// (goflow2's vlan_id keeps the priority bits), else the extended
	// switch record's source VLAN.
	if m.tagged {
		f.VlanID = uint16(m.vlanID & 0xfff)
	} else {
		f.VlanID = uint16(m.srcVlan & 0xfff)
	}
	// trawl: interfaces are ifIndexes only in format 0; the compact
	// sample's top two bits are the format (goflow2 keeps all 32 bits).
	if m.compact {
		m.inFormat, m.outFormat = m.inIf>>30, m.outIf>>30
		f.InIf, f.OutIf = m.inIf&0x3fffffff, m.outIf&0x3fffffff
	}
	if m.inFormat != 0 {
		f.InIf = 0
	}
	if m.outFormat != 0 {
		f.OutIf = 0
	}
	return f
}

// gfParseEthernet is goflow2's ParsePacket from the Ethernet layer with
// the default environment, for the layers the generator writes (Ethernet,
// 802.1Q, IPv4 without options, IPv6 without extension headers, TCP, UDP):
// each layer is read only when its fixed size is there; IPv4 is always 20
// bytes long. Other protocols end the chain for the fields compared.
func gfParseEthernet(m *gfMsg, d []byte) {
	if len(d) < 14 {
		return
	}
	et := binary.BigEndian.Uint16(d[12:])
	m.etype = uint32(et)
	d = d[14:]
	for et == 0x8100 {
		if len(d) < 4 {
			return
		}
		m.vlanID, m.tagged = uint32(binary.BigEndian.Uint16(d)), true
		et = binary.BigEndian.Uint16(d[2:])
		m.etype = uint32(et)
		d = d[4:]
	}
	var proto byte
	switch et {
	case 0x0800:
		if len(d) < 20 {
			return
		}
		m.srcAddr, m.dstAddr, m.ipTos, proto = d[12:16], d[16:20], uint32(d[1]), d[9]
		d = d[20:]
	case 0x86dd:
		if len(d) < 40 {
			return
		}
		m.srcAddr, m.dstAddr, proto = d[8:24], d[24:40], d[6]
		m.ipTos = uint32(uint8(binary.BigEndian.Uint16(d) & 0x0ff0 >> 4))
		d = d[40:]
	default:
		return
	}
	m.proto = uint32(proto)
	switch proto {
	case 6:
		if len(d) >= 20 {
			m.srcPort, m.dstPort = uint32(binary.BigEndian.Uint16(d)), uint32(binary.BigEndian.Uint16(d[2:]))
			m.tcpFlg = uint32(d[13])
		}
	case 17:
		if len(d) >= 8 {
			m.srcPort, m.dstPort = uint32(binary.BigEndian.Uint16(d)), uint32(binary.BigEndian.Uint16(d[2:]))
		}
	}
}

// randomSFlow generates a datagram both decoders read the same way: any
// mix of plain and expanded flow samples (every mapped record type in
// random order, random values) and counter samples, IPv4 or IPv6 agent.
// It leaves out what goflow2 reads differently from the wire format or
// from trawl on purpose (see docs/flow.md): unknown sample formats
// (goflow2 fails the datagram), IPv4 options, fragments, IPv6 extension
// headers, AS paths of more than one segment, raw headers whose length
// is not a multiple of 4 (goflow2 parses the padding as header bytes).
func randomSFlow(r *rand.Rand) []byte {
	rip := func(v6 bool) string {
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			b[0] = 0x20
			return netip.AddrFrom16(b).String()
		}
		return netip.AddrFrom4([4]byte{byte(r.IntN(223) + 1), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}).String()
	}
	pick := func(xs ...uint32) uint32 { return xs[r.IntN(len(xs))] }
	d := sflowDatagram(rip(r.IntN(2) == 0), r.Uint32N(4), r.Uint32(), r.Uint32())
	for range r.IntN(9) + 1 {
		if r.IntN(5) == 0 {
			expanded := r.IntN(2) == 0
			tag := uint32(sfCounterSample)
			if expanded {
				tag = sfCounterSampleExp
			}
			d.sample(tag, sfCounterBody(r, expanded))
			continue
		}
		var recs [][]byte
		for range r.IntN(5) {
			switch r.IntN(7) {
			case 0, 1:
				v6 := r.IntN(2) == 0
				var l4 []byte
				proto := uint8(pick(6, 17, 1, 58, 132))
				switch proto {
				case 6:
					l4 = tcpSeg(uint16(r.Uint32()), uint16(r.Uint32()), uint8(r.Uint32()), r.IntN(200))
				case 17:
					l4 = udpDgram(uint16(r.Uint32()), uint16(r.Uint32()), r.IntN(200))
				default:
					l4 = make([]byte, 8+r.IntN(60))
				}
				var l3 []byte
				et := uint16(0x0800)
				if v6 {
					et = 0x86dd
					l3 = ipv6Pkt(rip(true), rip(true), proto, uint8(r.Uint32()), l4)
				} else {
					l3 = ipv4Pkt(rip(false), rip(false), proto, uint8(r.Uint32()), 0, nil, l4)
				}
				if r.IntN(8) == 0 {
					et, l3 = 0x0806, make([]byte, 28)
				}
				var tags []uint16
				for range r.IntN(3) {
					tags = append(tags, uint16(r.Uint32()))
				}
				frame := ethFrame(et, tags, l3)
				hl := min(len(frame), 4*r.IntN(40)) &^ 3
				recs = append(recs, sfRaw(1, uint32(len(frame))+4, frame[:hl]))
			case 2:
				recs = append(recs, sfIPv4Rec(r.Uint32(), r.Uint32N(256), rip(false), rip(false),
					r.Uint32N(1<<16), r.Uint32N(1<<16), r.Uint32N(256), r.Uint32N(256)))
			case 3:
				recs = append(recs, sfIPv6Rec(r.Uint32(), r.Uint32N(256), rip(true), rip(true),
					r.Uint32N(1<<16), r.Uint32N(1<<16), r.Uint32N(256), r.Uint32N(256)))
			case 4:
				recs = append(recs, sfSwitch(r.Uint32N(4096), r.Uint32N(4096)))
			case 5:
				nh := rip(r.IntN(2) == 0)
				if r.IntN(4) == 0 {
					nh = "0.0.0.0"
				}
				recs = append(recs, sfRouter(nh, r.Uint32N(129), r.Uint32N(129)))
			case 6:
				var path [][]uint32
				if r.IntN(3) > 0 {
					seg := make([]uint32, r.IntN(5))
					for i := range seg {
						seg[i] = r.Uint32()
					}
					path = [][]uint32{seg}
				}
				comms := make([]uint32, r.IntN(3))
				recs = append(recs, sfGatewayRec(rip(false), r.Uint32(), pick(0, r.Uint32()), r.Uint32(), path, comms))
			}
		}
		if r.IntN(4) == 0 {
			recs = append(recs, sfRec(1004, []byte("alice")))
		}
		ifc := func() sfIfc {
			f := pick(0, 0, 0, 1, 2)
			if f == 0 {
				return sfIfc{0, r.Uint32N(1 << 30)}
			}
			return sfIfc{f, r.Uint32N(256)}
		}
		expanded := r.IntN(2) == 0
		tag := uint32(sfFlowSample)
		if expanded {
			tag = sfFlowSampleExp
		}
		d.sample(tag, sfFlowBody(expanded, r.Uint32(), r.Uint32N(1<<16), 0, ifc(), ifc(), recs...))
	}
	return d.bytes()
}

// TestDifferentialGoflow2SFlow decodes random datagrams with trawl and
// with goflow2 and requires every common field of every flow to be equal.
func TestDifferentialGoflow2SFlow(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	d := NewDecoder(NewTemplates())
	var g gfSF
	n := 0
	for i := range 2000 {
		p := randomSFlow(r)
		got, _, err := collectSFlow(d, agentFrom, p)
		if err != nil {
			t.Fatalf("datagram %d: trawl: %v", i, err)
		}
		var want []event.Flow
		if err := g.decode(p, 1, func(f *event.Flow) { want = append(want, *f) }); err != nil {
			t.Fatalf("datagram %d: goflow2: %v", i, err)
		}
		if len(got) != len(want) {
			t.Fatalf("datagram %d: trawl %d flows, goflow2 %d", i, len(got), len(want))
		}
		for j := range got {
			if got[j] != want[j] {
				t.Fatalf("datagram %d flow %d:\ntrawl   %s\ngoflow2 %s", i, j, fmtFlow(got[j]), fmtFlow(want[j]))
			}
		}
		n += len(got)
	}
	if n < 5000 {
		t.Fatalf("only %d flows compared", n)
	}
}

func fmtFlow(f event.Flow) string { return fmt.Sprintf("%+v", f) }
