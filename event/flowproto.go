package event

import (
	"encoding/binary"
	"net/netip"
)

// Field numbers of goflow2's FlowMessage (pb/flow.proto, goflow2 v2).
// They are goflow2's contract, not ours: never renumber.
const (
	fpType           = 1
	fpSamplingRate   = 3
	fpSequenceNum    = 4
	fpSrcAddr        = 6
	fpDstAddr        = 7
	fpBytes          = 9
	fpPackets        = 10
	fpSamplerAddress = 11
	fpNextHop        = 12
	fpSrcAS          = 14
	fpDstAS          = 15
	fpSrcNet         = 16
	fpDstNet         = 17
	fpInIf           = 18
	fpOutIf          = 19
	fpProto          = 20
	fpSrcPort        = 21
	fpDstPort        = 22
	fpIPTos          = 23
	fpTCPFlags       = 26
	fpVlanID         = 29
	fpEtype          = 30
	fpObservationID  = 70
	fpTimeReceivedNs = 110
	fpTimeStartNs    = 111
	fpTimeEndNs      = 112
)

// AppendFlowProto appends e's flow as a protobuf FlowMessage in goflow2's
// wire format (goflow2 v2 pb/flow.proto), without the length prefix that
// goflow2 puts before each message on a stream. Consumers written for
// goflow2's protobuf output decode it with their FlowMessage type. Fields
// trawl does not collect (MACs, MPLS, BGP communities, ...) are absent; zero
// values are omitted, as proto3 does. Addresses are 4 bytes for IPv4 and 16
// for IPv6, as goflow2 writes them. It does not allocate when dst has room.
func AppendFlowProto(dst []byte, e *Event) []byte {
	f := &e.Flow
	dst = protoUint(dst, fpType, uint64(f.Type))
	dst = protoUint(dst, fpTimeReceivedNs, uint64(e.RecvTime))
	dst = protoUint(dst, fpSequenceNum, uint64(f.SequenceNum))
	dst = protoUint(dst, fpSamplingRate, f.SamplingRate)
	dst = protoAddr(dst, fpSamplerAddress, f.SamplerAddress)
	dst = protoUint(dst, fpTimeStartNs, uint64(f.TimeStartNs))
	dst = protoUint(dst, fpTimeEndNs, uint64(f.TimeEndNs))
	dst = protoUint(dst, fpBytes, f.Bytes)
	dst = protoUint(dst, fpPackets, f.Packets)
	dst = protoAddr(dst, fpSrcAddr, f.SrcAddr)
	dst = protoAddr(dst, fpDstAddr, f.DstAddr)
	dst = protoUint(dst, fpEtype, uint64(f.Etype))
	dst = protoUint(dst, fpProto, uint64(f.Proto))
	dst = protoUint(dst, fpSrcPort, uint64(f.SrcPort))
	dst = protoUint(dst, fpDstPort, uint64(f.DstPort))
	dst = protoUint(dst, fpInIf, uint64(f.InIf))
	dst = protoUint(dst, fpOutIf, uint64(f.OutIf))
	dst = protoUint(dst, fpVlanID, uint64(f.VlanID))
	dst = protoUint(dst, fpIPTos, uint64(f.IPTos))
	dst = protoUint(dst, fpTCPFlags, uint64(f.TCPFlags))
	dst = protoUint(dst, fpSrcAS, uint64(f.SrcAS))
	dst = protoUint(dst, fpDstAS, uint64(f.DstAS))
	dst = protoAddr(dst, fpNextHop, f.NextHop)
	dst = protoUint(dst, fpSrcNet, uint64(f.SrcMask))
	dst = protoUint(dst, fpDstNet, uint64(f.DstMask))
	dst = protoUint(dst, fpObservationID, uint64(f.ObservationID))
	return dst
}

func protoKey(dst []byte, num uint32, wire uint8) []byte {
	return binary.AppendUvarint(dst, uint64(num)<<3|uint64(wire))
}

func protoUint(dst []byte, num uint32, v uint64) []byte {
	if v == 0 {
		return dst
	}
	dst = protoKey(dst, num, 0)
	return binary.AppendUvarint(dst, v)
}

func protoAddr(dst []byte, num uint32, a netip.Addr) []byte {
	if !a.IsValid() {
		return dst
	}
	dst = protoKey(dst, num, 2)
	if a.Is4() {
		b := a.As4()
		dst = append(dst, 4)
		return append(dst, b[:]...)
	}
	b := a.As16()
	dst = append(dst, 16)
	return append(dst, b[:]...)
}
