package flow

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	"github.com/trawlsec/trawl/event"
)

// sfDgram builds an sFlow v5 datagram as an agent sends it.
type sfDgram struct {
	b    []byte
	nOff int // offset of the sample count
	n    uint32
}

// sfAddrBytes encodes an sFlow address: type 1 (IPv4) or 2 (IPv6), or
// type 0 (unknown) for "".
func sfAddrBytes(s string) []byte {
	if s == "" {
		return num(0, 4)
	}
	a := netip.MustParseAddr(s)
	if a.Is4() {
		return append(num(1, 4), a.AsSlice()...)
	}
	return append(num(2, 4), a.AsSlice()...)
}

func sflowDatagram(agent string, sub, seq, uptime uint32) *sfDgram {
	d := &sfDgram{}
	d.b = append(num(5, 4), sfAddrBytes(agent)...)
	d.b = binary.BigEndian.AppendUint32(d.b, sub)
	d.b = binary.BigEndian.AppendUint32(d.b, seq)
	d.b = binary.BigEndian.AppendUint32(d.b, uptime)
	d.nOff = len(d.b)
	d.b = binary.BigEndian.AppendUint32(d.b, 0)
	return d
}

// sample appends a sample (tag = enterprise<<12 | format) with its body.
func (d *sfDgram) sample(tag uint32, body []byte) *sfDgram {
	d.b = binary.BigEndian.AppendUint32(d.b, tag)
	d.b = binary.BigEndian.AppendUint32(d.b, uint32(len(body)))
	d.b = append(d.b, body...)
	d.n++
	return d
}

func (d *sfDgram) bytes() []byte {
	binary.BigEndian.PutUint32(d.b[d.nOff:], d.n)
	return d.b
}

// sfIfc is an interface of an expanded flow sample, or (format<<30 |
// value) of a compact one.
type sfIfc struct{ format, value uint32 }

func u32s(xs ...uint32) []byte {
	var b []byte
	for _, x := range xs {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// sfFlowBody is the body of a flow sample (format 1, or 3 when expanded)
// holding recs, each made by sfRec.
func sfFlowBody(expanded bool, seq, rate, drops uint32, in, out sfIfc, recs ...[]byte) []byte {
	var b []byte
	if expanded {
		b = u32s(seq, 0, 7, rate, rate*10, drops, in.format, in.value, out.format, out.value, uint32(len(recs)))
	} else {
		b = u32s(seq, 7, rate, rate*10, drops, in.format<<30|in.value, out.format<<30|out.value, uint32(len(recs)))
	}
	for _, r := range recs {
		b = append(b, r...)
	}
	return b
}

// sfRec frames a record body with its tag and length, padded to 4 bytes.
func sfRec(tag uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	return append(u32s(tag, uint32(len(body))), body...)
}

func sfRaw(proto, frameLen uint32, hdr []byte) []byte {
	return sfRec(sfRawHeader, append(u32s(proto, frameLen, 4, uint32(len(hdr))), hdr...))
}

func sfIPv4Rec(length, proto uint32, src, dst string, sport, dport, flags, tos uint32) []byte {
	b := append(u32s(length, proto), ip(src)...)
	b = append(b, ip(dst)...)
	return sfRec(sfSampledIPv4, append(b, u32s(sport, dport, flags, tos)...))
}

func sfIPv6Rec(length, proto uint32, src, dst string, sport, dport, flags, prio uint32) []byte {
	b := append(u32s(length, proto), ip(src)...)
	b = append(b, ip(dst)...)
	return sfRec(sfSampledIPv6, append(b, u32s(sport, dport, flags, prio)...))
}

func sfSwitch(srcVlan, dstVlan uint32) []byte {
	return sfRec(sfExtSwitch, u32s(srcVlan, 1, dstVlan, 2))
}

func sfRouter(nh string, srcMask, dstMask uint32) []byte {
	return sfRec(sfExtRouter, append(sfAddrBytes(nh), u32s(srcMask, dstMask)...))
}

func sfGatewayRec(nh string, as, srcAS, peerAS uint32, path [][]uint32, comms []uint32) []byte {
	b := append(sfAddrBytes(nh), u32s(as, srcAS, peerAS, uint32(len(path)))...)
	for _, seg := range path {
		b = append(b, u32s(2, uint32(len(seg)))...)
		b = append(b, u32s(seg...)...)
	}
	b = append(b, u32s(uint32(len(comms)))...)
	b = append(b, u32s(comms...)...)
	return sfRec(sfExtGateway, append(b, u32s(100)...)) // local_pref
}

// sfCounterBody is a counter sample with a generic interface counters
// record (88 bytes) and a processor record.
func sfCounterBody(r *rand.Rand, expanded bool) []byte {
	var b []byte
	if expanded {
		b = u32s(9, 0, 3, 2)
	} else {
		b = u32s(9, 3, 2)
	}
	ifc := make([]byte, 88)
	for i := range ifc {
		ifc[i] = byte(r.Uint32())
	}
	b = append(b, sfRec(1, ifc)...)
	return append(b, sfRec(1001, make([]byte, 28))...)
}

// ethFrame builds an Ethernet header with 802.1Q tags (tci each) before
// l3 of ethertype etype.
func ethFrame(etype uint16, tcis []uint16, l3 []byte) []byte {
	b := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
	for _, t := range tcis {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, t)
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, l3...)
}

// ipv4Pkt is an IPv4 header without options (plus opts, a multiple of 4
// bytes) before l4.
func ipv4Pkt(src, dst string, proto, tos uint8, fragOff uint16, opts, l4 []byte) []byte {
	b := []byte{0x45 + byte(len(opts)/4), tos, 0, 0, 0x12, 0x34, 0x40 | byte(fragOff>>8), byte(fragOff), 64, proto, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(opts)+len(l4)))
	b = append(b, ip(src)...)
	b = append(b, ip(dst)...)
	b = append(b, opts...)
	return append(b, l4...)
}

// ipv6Pkt is an IPv6 header (traffic class tc, next header nh) before
// the rest (extension headers and l4).
func ipv6Pkt(src, dst string, nh, tc uint8, rest []byte) []byte {
	b := u32s(6<<28 | uint32(tc)<<20 | 0x12345)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rest)))
	b = append(b, nh, 64)
	b = append(b, ip(src)...)
	b = append(b, ip(dst)...)
	return append(b, rest...)
}

func tcpSeg(sport, dport uint16, flags uint8, payload int) []byte {
	b := make([]byte, 20+payload)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12] = 5 << 4
	b[13] = flags
	return b
}

func udpDgram(sport, dport uint16, payload int) []byte {
	b := make([]byte, 8+payload)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+payload))
	return b
}

// sampleSFlow is the benchmark datagram: 8 flow samples of 128-byte
// Ethernet/IPv4/TCP headers with extended switch and router records, and
// one counter sample, as a switch sends them.
func sampleSFlow(r *rand.Rand, seq uint32) []byte {
	d := sflowDatagram("192.0.2.10", 0, seq, 123456)
	for i := range 8 {
		src := netip.AddrFrom4([4]byte{10, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}).String()
		dst := netip.AddrFrom4([4]byte{198, 51, 100, byte(r.Uint32())}).String()
		frame := ethFrame(0x0800, nil, ipv4Pkt(src, dst, 6, 0, 0, nil,
			tcpSeg(uint16(r.Uint32()), 443, 0x18, 1400)))
		d.sample(sfFlowSample, sfFlowBody(false, uint32(i), 1024, 0, sfIfc{0, 3}, sfIfc{0, 7},
			sfRaw(sfProtoEthernet, uint32(len(frame))+4, frame[:128]),
			sfSwitch(10, 20),
			sfRouter("192.0.2.254", 24, 16)))
	}
	d.sample(sfCounterSample, sfCounterBody(r, false))
	return d.bytes()
}

// collectSFlow decodes p at time 1 and returns copies of the flows.
func collectSFlow(d *Decoder, from netip.AddrPort, p []byte) ([]event.Flow, SFlowInfo, error) {
	var out []event.Flow
	info, err := d.DecodeSFlowAt(from, p, 1, func(e *event.Event) {
		if e.Kind != event.KindFlow || e.Source != from || e.Time != 1 || e.Flow.TimeEndNs != 1 {
			panic("event metadata not set")
		}
		out = append(out, e.Flow)
	})
	return out, info, err
}
