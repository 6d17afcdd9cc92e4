package event

import (
	"net/netip"
	"testing"

	flowpb "github.com/netsampler/goflow2/v2/pb"
	"google.golang.org/protobuf/proto"
)

// TestFlowProtoDecodesWithGoflow2 checks the wire compatibility claim:
// goflow2's own generated FlowMessage type reads what AppendFlowProto wrote.
func TestFlowProtoDecodesWithGoflow2(t *testing.T) {
	f := func(e Event) {
		t.Helper()
		var m flowpb.FlowMessage
		if err := proto.Unmarshal(AppendFlowProto(nil, &e), &m); err != nil {
			t.Fatalf("goflow2 cannot decode: %v", err)
		}
		fl := &e.Flow
		addr := func(a netip.Addr) []byte {
			if !a.IsValid() {
				return nil
			}
			if a.Is4() {
				b := a.As4()
				return b[:]
			}
			b := a.As16()
			return b[:]
		}
		eqAddr := func(name string, got []byte, want netip.Addr) {
			t.Helper()
			if string(got) != string(addr(want)) {
				t.Errorf("%s = %v, want %v", name, got, addr(want))
			}
		}
		if m.Type != flowpb.FlowMessage_FlowType(fl.Type) || m.TimeReceivedNs != uint64(e.RecvTime) ||
			m.SequenceNum != fl.SequenceNum || m.SamplingRate != fl.SamplingRate ||
			m.TimeFlowStartNs != uint64(fl.TimeStartNs) || m.TimeFlowEndNs != uint64(fl.TimeEndNs) ||
			m.Bytes != fl.Bytes || m.Packets != fl.Packets || m.Etype != uint32(fl.Etype) || m.Proto != uint32(fl.Proto) ||
			m.SrcPort != uint32(fl.SrcPort) || m.DstPort != uint32(fl.DstPort) || m.InIf != fl.InIf || m.OutIf != fl.OutIf ||
			m.VlanId != uint32(fl.VlanID) || m.IpTos != uint32(fl.IPTos) || m.TcpFlags != uint32(fl.TCPFlags) ||
			m.SrcAs != fl.SrcAS || m.DstAs != fl.DstAS || m.SrcNet != uint32(fl.SrcMask) || m.DstNet != uint32(fl.DstMask) ||
			m.ObservationDomainId != fl.ObservationID {
			t.Errorf("goflow2 read %v from %+v", &m, fl)
		}
		eqAddr("src_addr", m.SrcAddr, fl.SrcAddr)
		eqAddr("dst_addr", m.DstAddr, fl.DstAddr)
		eqAddr("next_hop", m.NextHop, fl.NextHop)
		eqAddr("sampler_address", m.SamplerAddress, fl.SamplerAddress)
	}
	f(Event{})
	f(Event{Kind: KindFlow, RecvTime: 1764064800123456789, Flow: Flow{
		Type: FlowIPFIX, SamplingRate: 1000, SequenceNum: 4_000_000_000, ObservationID: 7,
		TimeStartNs: 1764064790000000000, TimeEndNs: 1764064799000000000, Bytes: 1 << 40, Packets: 12345,
		SrcAddr: netip.MustParseAddr("10.1.2.3"), DstAddr: netip.MustParseAddr("192.0.2.200"),
		NextHop: netip.MustParseAddr("10.0.0.1"), SamplerAddress: netip.MustParseAddr("172.16.0.1"),
		SrcPort: 51515, DstPort: 443, Proto: 6, TCPFlags: 0x1b, IPTos: 0xb8, Etype: 0x800,
		InIf: 3, OutIf: 70000, SrcAS: 64512, DstAS: 4200000000, SrcMask: 24, DstMask: 32, VlanID: 4094,
	}})
	f(Event{Kind: KindFlow, Flow: Flow{Type: FlowSFlow5, SrcAddr: netip.MustParseAddr("2001:db8::1"),
		DstAddr: netip.MustParseAddr("2001:db8::2"), SamplerAddress: netip.MustParseAddr("::1"), Etype: 0x86dd, Proto: 17}})
}

func TestFlowProtoAllocs(t *testing.T) {
	e := Event{Kind: KindFlow, Flow: Flow{Type: FlowNetFlow5, SrcAddr: netip.MustParseAddr("10.0.0.1"), Bytes: 99}}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf = AppendFlowProto(buf[:0], &e) }); n != 0 {
		t.Fatalf("AppendFlowProto allocates %v times", n)
	}
}
