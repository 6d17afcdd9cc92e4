package flow

import (
	"encoding/binary"
	"net/netip"

	"github.com/trawlsec/trawl/event"
)

const (
	v5HeaderLen = 24
	v5RecordLen = 48
)

// decodeV5 decodes a NetFlow v5 packet: a 24-byte header and count 48-byte
// records. The whole packet is bounded before the first record is
// delivered, so a truncated v5 packet yields no flow at all.
func (d *Decoder) decodeV5(pkt []byte, fn func(e *event.Event)) error {
	if len(pkt) < v5HeaderLen {
		return &DecodeError{Version: 5, Err: ErrTruncated}
	}
	count := int(binary.BigEndian.Uint16(pkt[2:]))
	uptime := binary.BigEndian.Uint32(pkt[4:])
	secs := binary.BigEndian.Uint32(pkt[8:])
	nsecs := binary.BigEndian.Uint32(pkt[12:])
	seq := binary.BigEndian.Uint32(pkt[16:])
	engine := uint32(pkt[20])<<8 | uint32(pkt[21])
	// The top two bits are the sampling mode; the low 14 the interval.
	rate := uint64(binary.BigEndian.Uint16(pkt[22:]) & 0x3fff)
	base := int64(secs)*1e9 + int64(nsecs)

	d.info.SequenceNum = seq
	d.info.ObservationID = engine
	d.info.ExportTimeNs = base
	if have := (len(pkt) - v5HeaderLen) / v5RecordLen; count > have {
		return &DecodeError{Version: 5, Offset: v5HeaderLen + have*v5RecordLen, Err: ErrTruncated}
	}
	d.info.SamplingRate = rate

	f := &d.ev.Flow
	for i := range count {
		r := pkt[v5HeaderLen+i*v5RecordLen : v5HeaderLen+(i+1)*v5RecordLen]
		// Field by field rather than a composite literal: the literal of
		// this pointer-holding struct is built on the stack and copied in,
		// which cost more than decoding the record (every field of Flow is
		// set here, so nothing of the previous record survives).
		f.Type = event.FlowNetFlow5
		f.SamplingRate = rate
		f.SequenceNum = seq
		f.ObservationID = engine
		f.SamplerAddress = d.exporter
		// int32 differences: a record switched a little after the header's
		// uptime (exporter clock jitter) or before an uptime wrap lands
		// next to the export time, not 49 days away.
		f.TimeStartNs = base - int64(int32(uptime-binary.BigEndian.Uint32(r[24:])))*1e6
		f.TimeEndNs = base - int64(int32(uptime-binary.BigEndian.Uint32(r[28:])))*1e6
		f.Bytes = uint64(binary.BigEndian.Uint32(r[20:]))
		f.Packets = uint64(binary.BigEndian.Uint32(r[16:]))
		f.SrcAddr = netip.AddrFrom4([4]byte(r[0:4]))
		f.DstAddr = netip.AddrFrom4([4]byte(r[4:8]))
		f.NextHop = netip.Addr{}
		if nh := [4]byte(r[8:12]); nh != [4]byte{} {
			f.NextHop = netip.AddrFrom4(nh)
		}
		f.SrcPort = binary.BigEndian.Uint16(r[32:])
		f.DstPort = binary.BigEndian.Uint16(r[34:])
		f.TCPFlags = r[37]
		f.Proto = r[38]
		f.IPTos = r[39]
		f.Etype = 0x0800
		f.InIf = uint32(binary.BigEndian.Uint16(r[12:]))
		f.OutIf = uint32(binary.BigEndian.Uint16(r[14:]))
		f.SrcAS = uint32(binary.BigEndian.Uint16(r[40:]))
		f.DstAS = uint32(binary.BigEndian.Uint16(r[42:]))
		f.SrcMask = r[44]
		f.DstMask = r[45]
		f.VlanID = 0
		d.ev.Time = f.TimeEndNs
		d.info.Records++
		fn(&d.ev)
	}
	return nil
}
