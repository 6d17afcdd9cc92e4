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
		*f = event.Flow{
			Type:           event.FlowNetFlow5,
			SamplingRate:   rate,
			SequenceNum:    seq,
			ObservationID:  engine,
			SamplerAddress: d.exporter,
			// int32 differences: a record switched a little after the
			// header's uptime (exporter clock jitter) or before an uptime
			// wrap lands next to the export time, not 49 days away.
			TimeStartNs: base - int64(int32(uptime-binary.BigEndian.Uint32(r[24:])))*1e6,
			TimeEndNs:   base - int64(int32(uptime-binary.BigEndian.Uint32(r[28:])))*1e6,
			Bytes:       uint64(binary.BigEndian.Uint32(r[20:])),
			Packets:     uint64(binary.BigEndian.Uint32(r[16:])),
			SrcAddr:     netip.AddrFrom4([4]byte(r[0:4])),
			DstAddr:     netip.AddrFrom4([4]byte(r[4:8])),
			SrcPort:     binary.BigEndian.Uint16(r[32:]),
			DstPort:     binary.BigEndian.Uint16(r[34:]),
			TCPFlags:    r[37],
			Proto:       r[38],
			IPTos:       r[39],
			Etype:       0x0800,
			InIf:        uint32(binary.BigEndian.Uint16(r[12:])),
			OutIf:       uint32(binary.BigEndian.Uint16(r[14:])),
			SrcAS:       uint32(binary.BigEndian.Uint16(r[40:])),
			DstAS:       uint32(binary.BigEndian.Uint16(r[42:])),
			SrcMask:     r[44],
			DstMask:     r[45],
		}
		if nh := [4]byte(r[8:12]); nh != [4]byte{} {
			f.NextHop = netip.AddrFrom4(nh)
		}
		d.ev.Time = f.TimeEndNs
		d.info.Records++
		fn(&d.ev)
	}
	return nil
}
