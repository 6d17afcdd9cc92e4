package gen

import "encoding/binary"

// sFlow v5 datagram layout (sflow.org, sflow_version_5.txt): every field
// a 32-bit big-endian word unless said; opaque data padded to 4 bytes.
const (
	// sflowDgramHdr: version, agent address type, IPv4 agent address,
	// sub-agent id, sequence number, uptime, sample count.
	sflowDgramHdr = 28
	// sflowHeaderMax is the sampled header length agents default to.
	sflowHeaderMax = 128
	// sflowMaxSample is a flow sample at its largest: tag and length (8),
	// the compact flow sample fields (32), a raw packet header record
	// (8 + 16 + 128), an extended switch record (8 + 16) and an extended
	// router record (8 + 16).
	sflowMaxSample = 8 + 32 + 8 + 16 + sflowHeaderMax + 8 + 16 + 8 + 16
	// sflowCounterLen is a counter sample with one generic interface
	// counters record: tag and length (8), sequence number, source id and
	// record count (12), record tag and length (8), the counters (88).
	sflowCounterLen = 8 + 12 + 8 + 88
	// sflowSources bounds the data sources (ifIndex 1..4, what
	// [Exporter.Flow] draws InIf from) whose sample numbers are kept.
	sflowSources = 5
)

// sflowRates are the sampling rates of sFlow exporters, by exporter id
// modulo 4: the usual 1-in-N settings of access and core switches.
var sflowRates = [...]uint32{256, 512, 1024, 2048}

// sflowState is what an sFlow agent numbers: flow samples and the sample
// pool per data source (the input ifIndex), counter samples per source.
type sflowState struct {
	rate     uint32
	seq      [sflowSources]uint32 // flow samples sent, per source
	pool     [sflowSources]uint32 // packets seen, per source
	cntSeq   [sflowSources]uint32 // counter samples sent, per source
	counters uint32               // counter samples sent in all
}

// SamplingRate returns the exporter's sFlow sampling rate (1 in N), or 0
// for the NetFlow formats (the generated NetFlow flows are unsampled).
func (e *Exporter) SamplingRate() uint32 { return e.sf.rate }

// SFlowVLAN is the VLAN of flow f's sFlow sample (extended switch record).
func (f *Flow) SFlowVLAN() uint16 { return 100 + uint16(f.InIf) }

// SFlowFrameLen is the frame_length of flow f's sFlow sample: one packet
// of the flow's average size, plus the Ethernet header and FCS.
func (f *Flow) SFlowFrameLen() uint32 { return uint32(f.Bytes/f.Packets) + 18 }

// sfSource returns the data source index of f in sflowState's arrays.
func sfSource(f *Flow) uint32 { return f.InIf % sflowSources }

func (e *Exporter) appendSFlow(dst []byte, n int) []byte {
	be := binary.BigEndian
	withCounters := e.SendsTemplate()
	dst = be.AppendUint32(dst, 5)
	dst = be.AppendUint32(dst, 1) // agent address: IPv4
	dst = append(dst, 127, 0, 0, byte(2+e.id))
	dst = be.AppendUint32(dst, 0) // sub-agent
	dst = be.AppendUint32(dst, uint32(e.packets)+1)
	dst = be.AppendUint32(dst, uptimeMs+uint32(e.packets))
	samples := uint32(n)
	if withCounters {
		samples++
	}
	dst = be.AppendUint32(dst, samples)
	for i := 0; i < n; i++ {
		f := e.Flow(e.flows + uint64(i))
		dst = e.appendFlowSample(dst, &f, e.flows+uint64(i))
	}
	if withCounters {
		dst = e.appendCounterSample(dst)
	}
	return dst
}

// appendFlowSample appends a compact flow sample (format 1) of flow f,
// the exporter's flow k.
func (e *Exporter) appendFlowSample(dst []byte, f *Flow, k uint64) []byte {
	be := binary.BigEndian
	src := sfSource(f)
	e.sf.seq[src]++
	e.sf.pool[src] += e.sf.rate
	dst = be.AppendUint32(dst, 1) // enterprise 0, flow sample
	lenAt := len(dst)
	dst = be.AppendUint32(dst, 0) // length, below
	dst = be.AppendUint32(dst, e.sf.seq[src])
	dst = be.AppendUint32(dst, f.InIf) // source: type 0 (ifIndex) << 24 | index
	dst = be.AppendUint32(dst, e.sf.rate)
	dst = be.AppendUint32(dst, e.sf.pool[src])
	dst = be.AppendUint32(dst, 0)      // drops
	dst = be.AppendUint32(dst, f.InIf) // input, format 0 (ifIndex) in the top 2 bits
	dst = be.AppendUint32(dst, f.OutIf)
	dst = be.AppendUint32(dst, 3) // records

	// Raw packet header (format 1): Ethernet (1), frame length, stripped
	// FCS, then the header, cut at 128 bytes and padded to 4.
	ipLen := int(f.Bytes / f.Packets)
	hl := min(14+ipLen, sflowHeaderMax)
	dst = be.AppendUint32(dst, 1)
	dst = be.AppendUint32(dst, uint32(16+(hl+3)&^3))
	dst = be.AppendUint32(dst, 1)
	dst = be.AppendUint32(dst, f.SFlowFrameLen())
	dst = be.AppendUint32(dst, 4)
	dst = be.AppendUint32(dst, uint32(hl))
	dst = appendFrame(dst, e.id, f, ipLen, k)
	for len(dst)%4 != 0 {
		dst = append(dst, 0)
	}

	// Extended switch (1001): VLAN and priority in and out.
	vlan := uint32(f.SFlowVLAN())
	dst = be.AppendUint32(dst, 1001)
	dst = be.AppendUint32(dst, 16)
	dst = be.AppendUint32(dst, vlan)
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, vlan)
	dst = be.AppendUint32(dst, 0)

	// Extended router (1002): IPv4 next hop, source and destination masks.
	dst = be.AppendUint32(dst, 1002)
	dst = be.AppendUint32(dst, 16)
	dst = be.AppendUint32(dst, 1)
	dst = appendAddr(dst, f.NextHop)
	dst = be.AppendUint32(dst, uint32(f.SrcMask))
	dst = be.AppendUint32(dst, uint32(f.DstMask))

	be.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	return dst
}

// appendFrame appends the first min(14+ipLen, sflowHeaderMax) bytes of the
// Ethernet frame exporter id sampled from flow f (its flow k): headers for
// ipLen (≥ 40) IP bytes, then a zero payload.
func appendFrame(dst []byte, id uint32, f *Flow, ipLen int, k uint64) []byte {
	be := binary.BigEndian
	dst = append(dst, 0x02, 0, 0, 0, 0, 0xfe, 0x02, 0, 0, 0, byte(id), 1) // dst, src MAC
	dst = be.AppendUint16(dst, 0x0800)
	ip := len(dst)
	src, dstA := f.SrcAddr.As4(), f.DstAddr.As4()
	dst = append(dst, 0x45, f.IPTos)
	dst = be.AppendUint16(dst, uint16(ipLen))
	dst = be.AppendUint16(dst, uint16(k)) // identification
	dst = append(dst, 0x40, 0, 64, f.Proto, 0, 0)
	dst = append(dst, src[:]...)
	dst = append(dst, dstA[:]...)
	be.PutUint16(dst[ip+10:], checksum(dst[ip:ip+20]))
	l4 := len(dst)
	switch f.Proto {
	case 6:
		dst = be.AppendUint16(dst, f.SrcPort)
		dst = be.AppendUint16(dst, f.DstPort)
		dst = be.AppendUint32(dst, uint32(k)*7919) // sequence
		dst = be.AppendUint32(dst, uint32(k)*104729)
		dst = append(dst, 5<<4, f.TCPFlags, 0xff, 0xff, 0, 0, 0, 0) // offset, flags, window, checksum, urgent
	case 17:
		dst = be.AppendUint16(dst, f.SrcPort)
		dst = be.AppendUint16(dst, f.DstPort)
		dst = be.AppendUint16(dst, uint16(ipLen-20))
		dst = be.AppendUint16(dst, 0) // no checksum (IPv4)
	default: // ICMP echo request; a zero payload leaves the checksum as is
		dst = append(dst, 8, 0, 0, 0)
		dst = be.AppendUint16(dst, uint16(id))
		dst = be.AppendUint16(dst, uint16(k))
		be.PutUint16(dst[l4+2:], checksum(dst[l4:l4+8]))
	}
	for len(dst)-ip < ipLen && len(dst)-ip+14 < sflowHeaderMax {
		dst = append(dst, 0)
	}
	return dst
}

// checksum is the Internet checksum (RFC 1071) of an even-length b.
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// appendCounterSample appends a compact counter sample (format 2) with a
// generic interface counters record for ifIndex 1..4 in turn, its
// counters consistent with the flow samples of that interface.
func (e *Exporter) appendCounterSample(dst []byte) []byte {
	be := binary.BigEndian
	ifIndex := 1 + e.sf.counters%4
	e.sf.counters++
	e.sf.cntSeq[ifIndex]++
	pkts := e.sf.pool[ifIndex]
	dst = be.AppendUint32(dst, 2) // enterprise 0, counter sample
	dst = be.AppendUint32(dst, sflowCounterLen-8)
	dst = be.AppendUint32(dst, e.sf.cntSeq[ifIndex])
	dst = be.AppendUint32(dst, ifIndex) // source: type 0 (ifIndex)
	dst = be.AppendUint32(dst, 1)       // records
	dst = be.AppendUint32(dst, 1)       // generic interface counters
	dst = be.AppendUint32(dst, 88)
	dst = be.AppendUint32(dst, ifIndex)
	dst = be.AppendUint32(dst, 6) // ifType ethernetCsmacd
	dst = be.AppendUint64(dst, 10_000_000_000)
	dst = be.AppendUint32(dst, 1)                // full duplex
	dst = be.AppendUint32(dst, 3)                // admin and oper up
	dst = be.AppendUint64(dst, uint64(pkts)*800) // ifInOctets
	dst = be.AppendUint32(dst, pkts)             // ifInUcastPkts
	dst = append(dst, make([]byte, 5*4)...)      // multicast, broadcast, discards, errors, unknown protos
	dst = be.AppendUint64(dst, uint64(pkts)*800) // ifOutOctets
	dst = be.AppendUint32(dst, pkts)             // ifOutUcastPkts
	dst = append(dst, make([]byte, 5*4)...)      // multicast, broadcast, discards, errors, promiscuous
	return dst
}
