package consumer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"

	"github.com/trawlsec/trawl/event"
)

// errFlowMessage is wrapped by every error decodeFlowMessage returns.
var errFlowMessage = errors.New("malformed FlowMessage")

// Field numbers of goflow2's FlowMessage (pb/flow.proto, goflow2 v2) that
// map onto event.Flow: the ones event.AppendFlowProto writes.
const (
	fmType           = 1
	fmSamplingRate   = 3
	fmSequenceNum    = 4
	fmSrcAddr        = 6
	fmDstAddr        = 7
	fmBytes          = 9
	fmPackets        = 10
	fmSamplerAddress = 11
	fmNextHop        = 12
	fmSrcAS          = 14
	fmDstAS          = 15
	fmSrcNet         = 16
	fmDstNet         = 17
	fmInIf           = 18
	fmOutIf          = 19
	fmProto          = 20
	fmSrcPort        = 21
	fmDstPort        = 22
	fmIPTos          = 23
	fmTCPFlags       = 26
	fmVlanID         = 29
	fmEtype          = 30
	fmObservationID  = 70
	fmTimeReceivedNs = 110
	fmTimeStartNs    = 111
	fmTimeEndNs      = 112
)

// Field numbers of FlowMessage's repeated number fields, which event.Flow
// has no place for but whose packed form protobuf checks (see checkPacked).
const (
	fmMPLSTTL        = 80
	fmMPLSLabel      = 81
	fmBGPCommunities = 101
	fmASPath         = 102
	fmLayerStack     = 103
	fmLayerSize      = 104
)

// decodeFlowMessage decodes a FlowMessage (protobuf wire format, as
// event.AppendFlowProto or goflow2 writes it) into e as a flow event. It
// reads the wire format itself rather than through goflow2's generated
// type so that it does not allocate; FuzzFlowMessage checks it against
// goflow2's type. Fields FlowMessage has and event.Flow does not (MACs,
// MPLS, BGP, ...) are skipped, as are fields with an unexpected wire type
// (as protobuf does with unknown fields); a skipped packed list of numbers
// must still hold whole varints, as protobuf requires. A value that does
// not fit its event.Flow field (a port above 65535, an address that is not
// 4 or 16 bytes) is an error. Event.Time is set to the flow end, as trawl's flow
// decoders do; Source, Seq, Input and Observer are left empty because
// FlowMessage does not carry them.
func decodeFlowMessage(e *event.Event, b []byte) error {
	e.Reset()
	e.Kind = event.KindFlow
	f := &e.Flow
	for i := 0; i < len(b); {
		key, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return fmt.Errorf("cannot read field key at offset %d: %w", i, errFlowMessage)
		}
		i += n
		num, wire := key>>3, key&7
		if num == 0 || num > 1<<29-1 {
			return fmt.Errorf("field number %d at offset %d: %w", num, i-n, errFlowMessage)
		}
		var v uint64
		var data []byte
		switch wire {
		case 0:
			if v, n = binary.Uvarint(b[i:]); n <= 0 {
				return fmt.Errorf("cannot read varint of field %d: %w", num, errFlowMessage)
			}
			i += n
		case 1:
			if len(b)-i < 8 {
				return fmt.Errorf("truncated fixed64 field %d: %w", num, errFlowMessage)
			}
			i += 8
			continue
		case 2:
			l, n := binary.Uvarint(b[i:])
			if n <= 0 || l > uint64(len(b)-i-n) {
				return fmt.Errorf("bad length of field %d: %w", num, errFlowMessage)
			}
			i += n
			data = b[i : i+int(l)]
			i += int(l)
		case 5:
			if len(b)-i < 4 {
				return fmt.Errorf("truncated fixed32 field %d: %w", num, errFlowMessage)
			}
			i += 4
			continue
		default:
			// Groups (3, 4) are not in FlowMessage; 6 and 7 do not exist.
			return fmt.Errorf("wire type %d of field %d: %w", wire, num, errFlowMessage)
		}
		if err := setFlowField(e, f, num, wire, v, data); err != nil {
			return err
		}
	}
	e.Time = f.TimeEndNs
	return nil
}

// setFlowField stores one decoded field. Scalar fields are varints (wire 0)
// and addresses bytes (wire 2); a field with the other wire type is skipped,
// as protobuf treats it as unknown. uint32 fields keep the low 32 bits, as
// protobuf does.
func setFlowField(e *event.Event, f *event.Flow, num, wire, v uint64, data []byte) error {
	if wire == 2 {
		var dst *netip.Addr
		switch num {
		case fmSrcAddr:
			dst = &f.SrcAddr
		case fmDstAddr:
			dst = &f.DstAddr
		case fmSamplerAddress:
			dst = &f.SamplerAddress
		case fmNextHop:
			dst = &f.NextHop
		case fmMPLSTTL, fmMPLSLabel, fmBGPCommunities, fmASPath, fmLayerStack, fmLayerSize:
			return checkPacked(data, num)
		default:
			return nil
		}
		switch len(data) {
		case 0:
			*dst = netip.Addr{}
		case 4:
			*dst = netip.AddrFrom4([4]byte(data))
		case 16:
			*dst = netip.AddrFrom16([16]byte(data))
		default:
			return fmt.Errorf("field %d: a %d-byte address: %w", num, len(data), errFlowMessage)
		}
		return nil
	}
	v32 := uint64(uint32(v))
	var err error
	switch num {
	case fmType:
		// An enum is an int32 on the wire (negative values sign-extended).
		err = fitUint8((*uint8)(&f.Type), uint64(uint32(int32(v))), num)
	case fmSamplingRate:
		f.SamplingRate = v
	case fmSequenceNum:
		f.SequenceNum = uint32(v)
	case fmBytes:
		f.Bytes = v
	case fmPackets:
		f.Packets = v
	case fmSrcAS:
		f.SrcAS = uint32(v)
	case fmDstAS:
		f.DstAS = uint32(v)
	case fmSrcNet:
		err = fitUint8(&f.SrcMask, v32, num)
	case fmDstNet:
		err = fitUint8(&f.DstMask, v32, num)
	case fmInIf:
		f.InIf = uint32(v)
	case fmOutIf:
		f.OutIf = uint32(v)
	case fmProto:
		err = fitUint8(&f.Proto, v32, num)
	case fmSrcPort:
		err = fitUint16(&f.SrcPort, v32, num)
	case fmDstPort:
		err = fitUint16(&f.DstPort, v32, num)
	case fmIPTos:
		err = fitUint8(&f.IPTos, v32, num)
	case fmTCPFlags:
		err = fitUint8(&f.TCPFlags, v32, num)
	case fmVlanID:
		err = fitUint16(&f.VlanID, v32, num)
	case fmEtype:
		err = fitUint16(&f.Etype, v32, num)
	case fmObservationID:
		f.ObservationID = uint32(v)
	case fmTimeReceivedNs:
		err = fitInt64(&e.RecvTime, v, num)
	case fmTimeStartNs:
		err = fitInt64(&f.TimeStartNs, v, num)
	case fmTimeEndNs:
		err = fitInt64(&f.TimeEndNs, v, num)
	}
	return err
}

// checkPacked returns an error unless data is a whole number of varints:
// protobuf (and so goflow2's FlowMessage and any consumer built on it)
// rejects a message whose packed list of numbers holds a cut or overlong
// varint, so trawl must not accept it either.
func checkPacked(data []byte, num uint64) error {
	for i := 0; i < len(data); {
		_, n := binary.Uvarint(data[i:])
		if n <= 0 {
			return fmt.Errorf("field %d: cut or overlong varint at offset %d of a packed list: %w", num, i, errFlowMessage)
		}
		i += n
	}
	return nil
}

func fitUint8(dst *uint8, v, num uint64) error {
	if v > math.MaxUint8 {
		return fmt.Errorf("field %d: %d does not fit 8 bits: %w", num, v, errFlowMessage)
	}
	*dst = uint8(v)
	return nil
}

func fitUint16(dst *uint16, v, num uint64) error {
	if v > math.MaxUint16 {
		return fmt.Errorf("field %d: %d does not fit 16 bits: %w", num, v, errFlowMessage)
	}
	*dst = uint16(v)
	return nil
}

func fitInt64(dst *int64, v, num uint64) error {
	if v > math.MaxInt64 {
		return fmt.Errorf("field %d: %d does not fit a signed 64-bit time: %w", num, v, errFlowMessage)
	}
	*dst = int64(v)
	return nil
}
