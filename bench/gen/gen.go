// Package gen generates NetFlow v5, NetFlow v9, IPFIX and sFlow v5 export
// traffic for benchmarks: packets shaped like real exporters' (nProbe/
// softflowd-like 18-field templates, templates re-sent every few packets;
// sFlow datagrams of flow samples with 128-byte sampled headers, as
// switches send them, and a counter sample now and then; a realistic mix of
// protocols, ports and sizes), from many exporters with correct
// per-exporter sequence numbers, and a loopback UDP sender with exact send
// counts that runs at a target rate or as fast as it can.
//
// Every flow is a pure function of (exporter id, flow index), so a test or
// a harness can say exactly which flows a collector should have stored
// ([Exporter.Flow]).
package gen

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Format is an export protocol.
type Format int

// Formats.
const (
	V5 Format = iota
	V9
	IPFIX
	// SFlow is sFlow v5: every generated flow is one flow sample (see
	// [Exporter.AppendPacket]).
	SFlow
)

// String returns "v5", "v9", "ipfix" or "sflow".
func (f Format) String() string {
	switch f {
	case V5:
		return "v5"
	case V9:
		return "v9"
	case IPFIX:
		return "ipfix"
	case SFlow:
		return "sflow"
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// ParseFormat is the inverse of [Format.String].
func ParseFormat(s string) (Format, error) {
	switch s {
	case "v5":
		return V5, nil
	case "v9":
		return V9, nil
	case "ipfix":
		return IPFIX, nil
	case "sflow":
		return SFlow, nil
	}
	return 0, fmt.Errorf("unknown flow format %q (want v5, v9, ipfix or sflow)", s)
}

// DefaultPerPacket is the number of flows in a full packet of each format,
// what exporters put in a 1500-byte MTU: v5's maximum of 30, for v9
// (49-byte records) and IPFIX (65-byte records) what fits in about 1400
// bytes with a template set beside them, and for sFlow the 5 flow samples
// (up to 240 bytes each) that fit beside a counter sample, about what a
// switch's agent puts in its 1400-byte datagrams.
func DefaultPerPacket(f Format) int {
	switch f {
	case V5:
		return 30
	case V9:
		return 24
	case SFlow:
		return 5
	default:
		return 19
	}
}

// MaxPacket bounds every packet this package builds, in bytes.
const MaxPacket = 1500

// templateID is the data template of v9 and IPFIX exporters.
const templateID = 256

// exportUnix is the export time written in headers; fixed so packets are
// reproducible (collectors do not care about the wall clock).
const exportUnix = 1795600000 // 2026-11-25

// uptimeMs is the exporter's sysUptime in headers (v5, v9).
const uptimeMs = 3_600_000

// v9Fields is nProbe's default v9 template order (18 fields, 49 bytes).
var v9Fields = [][2]uint16{
	{8, 4}, {12, 4}, {15, 4}, {10, 2}, {14, 2}, {2, 4}, {1, 4}, {22, 4}, {21, 4},
	{7, 2}, {11, 2}, {6, 1}, {4, 1}, {5, 1}, {16, 4}, {17, 4}, {9, 1}, {13, 1},
}

// ipfixFields: the same information elements as an IPFIX exporter sends
// them: 8-byte counters, 4-byte interfaces, absolute millisecond times
// (18 fields, 65 bytes).
var ipfixFields = [][2]uint16{
	{8, 4}, {12, 4}, {15, 4}, {10, 4}, {14, 4}, {2, 8}, {1, 8}, {152, 8}, {153, 8},
	{7, 2}, {11, 2}, {6, 1}, {4, 1}, {5, 1}, {16, 4}, {17, 4}, {9, 1}, {13, 1},
}

func recordSize(fields [][2]uint16) int {
	n := 0
	for _, f := range fields {
		n += int(f[1])
	}
	return n
}

// Flow is what a collector should store for one generated flow.
type Flow struct {
	SrcAddr, DstAddr, NextHop netip.Addr
	SrcPort, DstPort          uint16
	Proto, TCPFlags, IPTos    uint8
	SrcMask, DstMask          uint8
	InIf, OutIf               uint32
	SrcAS, DstAS              uint32
	Packets, Bytes            uint64
	// StartMs and EndMs are the flow's times as unix milliseconds.
	StartMs, EndMs int64
}

// Exporter builds the packets of one exporter. It is not safe for
// concurrent use; the zero value is not usable, call [NewExporter].
type Exporter struct {
	format    Format
	id        uint32 // 0..255, also the v9 source id / IPFIX domain
	tplEvery  int
	packets   uint64 // packets built so far
	flows     uint64 // data flows built so far
	fields    [][2]uint16
	recLen    int
	tplRecord []byte // template record (id, count, fields), built once
	sf        sflowState
}

// NewExporter returns exporter id (0..255) of format f that re-sends its
// template in the first packet and then every tplEvery packets (v9 and
// IPFIX; tplEvery ≤ 0 means only the first packet). An sFlow exporter
// sends a counter sample on the same schedule.
func NewExporter(f Format, id int, tplEvery int) *Exporter {
	e := &Exporter{format: f, id: uint32(id & 0xff), tplEvery: tplEvery}
	if f == SFlow {
		e.sf.rate = sflowRates[e.id%uint32(len(sflowRates))]
	}
	switch f {
	case V9:
		e.fields = v9Fields
	case IPFIX:
		e.fields = ipfixFields
	}
	if e.fields != nil {
		e.recLen = recordSize(e.fields)
		be := binary.BigEndian
		r := be.AppendUint16(nil, templateID)
		r = be.AppendUint16(r, uint16(len(e.fields)))
		for _, fl := range e.fields {
			r = be.AppendUint16(r, fl[0])
			r = be.AppendUint16(r, fl[1])
		}
		e.tplRecord = r
	}
	return e
}

// Format returns the exporter's format.
func (e *Exporter) Format() Format { return e.format }

// ID returns the exporter's id (its v9 source id / IPFIX observation domain).
func (e *Exporter) ID() int { return int(e.id) }

// Packets returns the number of packets built so far.
func (e *Exporter) Packets() uint64 { return e.packets }

// Flows returns the number of data flows built so far.
func (e *Exporter) Flows() uint64 { return e.flows }

// MaxPerPacket is the largest n [Exporter.AppendPacket] accepts.
func (e *Exporter) MaxPerPacket() int {
	switch e.format {
	case V5:
		return 30
	case V9:
		return (MaxPacket - 20 - 4 - len(e.tplRecord) - 4 - 3) / e.recLen
	case SFlow:
		return (MaxPacket - sflowDgramHdr - sflowCounterLen) / sflowMaxSample
	default:
		return (MaxPacket - 16 - 4 - len(e.tplRecord) - 4) / e.recLen
	}
}

// Flow returns flow k (0-based, in build order) of this exporter. sFlow
// samples carry part of it: see [Exporter.AppendPacket]. The mix:
// 70% TCP to web/ssh/db ports, 25% UDP (DNS, NTP, QUIC), 5% ICMP; packet
// counts 1..64 with bytes per packet 40..1500.
func (e *Exporter) Flow(k uint64) Flow {
	h := mix(uint64(e.id)<<40 ^ k)
	f := Flow{
		SrcAddr: netip.AddrFrom4([4]byte{10, byte(e.id), byte(k >> 8), byte(k)}),
		DstAddr: netip.AddrFrom4([4]byte{172, 16 + byte(h>>60), byte(h >> 8), byte(h>>16) | 1}),
		NextHop: netip.AddrFrom4([4]byte{192, 0, 2, 1 + byte(e.id)}),
		SrcMask: 24, DstMask: 16,
		InIf: 1 + uint32(h>>24)%4, OutIf: 10 + uint32(h>>26)%2,
		SrcAS: 64512, DstAS: 13335 + uint32(h>>28)%8,
		IPTos:   byte(h>>32) & 0xfc,
		Packets: 1 + (h>>33)%64,
		SrcPort: 1024 + uint16(h>>40)%60000,
	}
	f.Bytes = f.Packets * (40 + (h>>48)%1461)
	switch r := (h >> 20) % 20; {
	case r < 14:
		f.Proto = 6
		f.DstPort = [...]uint16{443, 443, 443, 80, 22, 5432, 3306}[r%7]
		f.TCPFlags = [...]uint8{0x1b, 0x1a, 0x12, 0x02, 0x11}[r%5]
	case r < 19:
		f.Proto = 17
		f.DstPort = [...]uint16{53, 53, 123, 443, 514}[r%5]
	default:
		f.Proto = 1
		f.SrcPort, f.DstPort = 0, 0
	}
	end := int64(exportUnix)*1000 - int64(h>>36)%30_000
	f.EndMs, f.StartMs = end, end-int64(h>>44)%60_000
	return f
}

// mix is SplitMix64's finaliser: cheap, well-spread bits per flow.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// SendsTemplate reports whether the next packet carries the template, or
// for sFlow a counter sample.
func (e *Exporter) SendsTemplate() bool {
	if e.format == V5 {
		return false
	}
	if e.packets == 0 {
		return true
	}
	return e.tplEvery > 0 && e.packets%uint64(e.tplEvery) == 0
}

// AppendPacket appends the exporter's next packet, holding n data flows
// (1 ≤ n ≤ [Exporter.MaxPerPacket], clamped), to dst and returns it. The
// header's sequence number is, as the protocols define it, the flows sent
// before this packet (v5), the packets sent before it (v9), the data
// records sent before it (IPFIX) or the datagrams sent before it plus one
// (sFlow: agents number datagrams from 1).
//
// An sFlow datagram comes from agent address 127.0.0.<2+id>, sub-agent 0
// (whatever address [Send] sends it from). Its flow sample of flow f is
// one packet the agent sampled at [Exporter.SamplingRate] on interface
// f.InIf (its data source): an Ethernet frame of f.Bytes/f.Packets IP
// bytes, reported as frame_length [Flow.SFlowFrameLen] (plus Ethernet
// header and FCS, stripped = 4) with its first 128 bytes as a raw packet
// header record (Ethernet, IPv4 with f's addresses, TOS and protocol,
// then TCP with f's ports and flags, UDP with its ports, or ICMP echo),
// an extended switch record (VLAN [Flow.SFlowVLAN] both ways) and an
// extended router record (f's next hop and masks). Flow
// samples are numbered per data source from 1, the sample pool grows by
// the sampling rate per sample, drops are 0. Flow times, counters and AS
// numbers are not in a sample.
func (e *Exporter) AppendPacket(dst []byte, n int) []byte {
	if m := e.MaxPerPacket(); n > m {
		n = m
	}
	if n < 1 {
		n = 1
	}
	switch e.format {
	case V5:
		dst = e.appendV5(dst, n)
	case V9:
		dst = e.appendV9(dst, n)
	case SFlow:
		dst = e.appendSFlow(dst, n)
	default:
		dst = e.appendIPFIX(dst, n)
	}
	e.packets++
	e.flows += uint64(n)
	return dst
}

func (e *Exporter) appendV5(dst []byte, n int) []byte {
	be := binary.BigEndian
	dst = be.AppendUint16(dst, 5)
	dst = be.AppendUint16(dst, uint16(n))
	dst = be.AppendUint32(dst, uptimeMs)
	dst = be.AppendUint32(dst, exportUnix)
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, uint32(e.flows))
	dst = append(dst, 0, byte(e.id)) // engine type, engine id
	dst = be.AppendUint16(dst, 0)    // not sampled
	for i := 0; i < n; i++ {
		f := e.Flow(e.flows + uint64(i))
		dst = appendAddr(dst, f.SrcAddr)
		dst = appendAddr(dst, f.DstAddr)
		dst = appendAddr(dst, f.NextHop)
		dst = be.AppendUint16(dst, uint16(f.InIf))
		dst = be.AppendUint16(dst, uint16(f.OutIf))
		dst = be.AppendUint32(dst, uint32(f.Packets))
		dst = be.AppendUint32(dst, uint32(f.Bytes))
		dst = be.AppendUint32(dst, uint32(uptimeMs-(exportUnix*1000-f.StartMs)))
		dst = be.AppendUint32(dst, uint32(uptimeMs-(exportUnix*1000-f.EndMs)))
		dst = be.AppendUint16(dst, f.SrcPort)
		dst = be.AppendUint16(dst, f.DstPort)
		dst = append(dst, 0, f.TCPFlags, f.Proto, f.IPTos)
		dst = be.AppendUint16(dst, uint16(f.SrcAS))
		dst = be.AppendUint16(dst, uint16(f.DstAS))
		dst = append(dst, f.SrcMask, f.DstMask, 0, 0)
	}
	return dst
}

// appendRecord appends flow f in the order and widths of e.fields.
func (e *Exporter) appendRecord(dst []byte, f *Flow) []byte {
	for _, fl := range e.fields {
		var v uint64
		switch fl[0] {
		case 8:
			dst = appendAddr(dst, f.SrcAddr)
			continue
		case 12:
			dst = appendAddr(dst, f.DstAddr)
			continue
		case 15:
			dst = appendAddr(dst, f.NextHop)
			continue
		case 10:
			v = uint64(f.InIf)
		case 14:
			v = uint64(f.OutIf)
		case 2:
			v = f.Packets
		case 1:
			v = f.Bytes
		case 22:
			v = uint64(uint32(uptimeMs - (exportUnix*1000 - f.StartMs)))
		case 21:
			v = uint64(uint32(uptimeMs - (exportUnix*1000 - f.EndMs)))
		case 152:
			v = uint64(f.StartMs)
		case 153:
			v = uint64(f.EndMs)
		case 7:
			v = uint64(f.SrcPort)
		case 11:
			v = uint64(f.DstPort)
		case 6:
			v = uint64(f.TCPFlags)
		case 4:
			v = uint64(f.Proto)
		case 5:
			v = uint64(f.IPTos)
		case 16:
			v = uint64(f.SrcAS)
		case 17:
			v = uint64(f.DstAS)
		case 9:
			v = uint64(f.SrcMask)
		case 13:
			v = uint64(f.DstMask)
		}
		for s := int(fl[1]) - 1; s >= 0; s-- {
			dst = append(dst, byte(v>>(8*s)))
		}
	}
	return dst
}

func (e *Exporter) appendV9(dst []byte, n int) []byte {
	be := binary.BigEndian
	start := len(dst)
	count := n
	dst = be.AppendUint16(dst, 9)
	dst = be.AppendUint16(dst, 0) // count, below
	dst = be.AppendUint32(dst, uptimeMs)
	dst = be.AppendUint32(dst, exportUnix)
	dst = be.AppendUint32(dst, uint32(e.packets))
	dst = be.AppendUint32(dst, e.id)
	if e.SendsTemplate() {
		dst = be.AppendUint16(dst, 0)
		dst = be.AppendUint16(dst, uint16(4+len(e.tplRecord)))
		dst = append(dst, e.tplRecord...)
		count++
	}
	set := len(dst)
	dst = be.AppendUint16(dst, templateID)
	dst = be.AppendUint16(dst, 0)
	for i := 0; i < n; i++ {
		f := e.Flow(e.flows + uint64(i))
		dst = e.appendRecord(dst, &f)
	}
	for (len(dst)-set)%4 != 0 {
		dst = append(dst, 0)
	}
	be.PutUint16(dst[set+2:], uint16(len(dst)-set))
	be.PutUint16(dst[start+2:], uint16(count))
	return dst
}

func (e *Exporter) appendIPFIX(dst []byte, n int) []byte {
	be := binary.BigEndian
	start := len(dst)
	dst = be.AppendUint16(dst, 10)
	dst = be.AppendUint16(dst, 0) // length, below
	dst = be.AppendUint32(dst, exportUnix)
	dst = be.AppendUint32(dst, uint32(e.flows))
	dst = be.AppendUint32(dst, e.id)
	if e.SendsTemplate() {
		dst = be.AppendUint16(dst, 2)
		dst = be.AppendUint16(dst, uint16(4+len(e.tplRecord)))
		dst = append(dst, e.tplRecord...)
	}
	set := len(dst)
	dst = be.AppendUint16(dst, templateID)
	dst = be.AppendUint16(dst, 0)
	for i := 0; i < n; i++ {
		f := e.Flow(e.flows + uint64(i))
		dst = e.appendRecord(dst, &f)
	}
	be.PutUint16(dst[set+2:], uint16(len(dst)-set))
	be.PutUint16(dst[start+2:], uint16(len(dst)-start))
	return dst
}

// appendAddr appends an IPv4 address without the allocation of AsSlice.
func appendAddr(dst []byte, a netip.Addr) []byte {
	b := a.As4()
	return append(dst, b[:]...)
}
