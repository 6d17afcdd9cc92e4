package flow

import (
	"encoding/binary"
	"net/netip"

	"github.com/trawlsec/trawl/event"
)

// fv is one field of a template (id, length, enterprise number) with the
// value a data record carries for it. length varLen makes an IPFIX
// variable-length field; val then holds the value without its prefix.
type fv struct {
	id  uint16
	l   uint16
	pen uint32
	val []byte
}

// num encodes x big-endian in l bytes.
func num(x uint64, l int) []byte {
	b := make([]byte, l)
	for i := l - 1; i >= 0; i-- {
		b[i] = byte(x)
		x >>= 8
	}
	return b
}

func ip(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

// pkt builds a v5, v9 or IPFIX packet as an exporter does: header, then
// sets, each closed (length written) when the next opens or at bytes().
type pkt struct {
	b       []byte
	version uint16
	set     int // offset of the open set, -1 when none
	records int // v9 header count: template and data records
}

func v9Packet(uptime, secs, seq, sourceID uint32) *pkt {
	p := &pkt{version: 9, set: -1}
	p.b = binary.BigEndian.AppendUint16(p.b, 9)
	p.b = binary.BigEndian.AppendUint16(p.b, 0)
	p.b = binary.BigEndian.AppendUint32(p.b, uptime)
	p.b = binary.BigEndian.AppendUint32(p.b, secs)
	p.b = binary.BigEndian.AppendUint32(p.b, seq)
	p.b = binary.BigEndian.AppendUint32(p.b, sourceID)
	return p
}

func ipfixPacket(exportTime, seq, domain uint32) *pkt {
	p := &pkt{version: 10, set: -1}
	p.b = binary.BigEndian.AppendUint16(p.b, 10)
	p.b = binary.BigEndian.AppendUint16(p.b, 0)
	p.b = binary.BigEndian.AppendUint32(p.b, exportTime)
	p.b = binary.BigEndian.AppendUint32(p.b, seq)
	p.b = binary.BigEndian.AppendUint32(p.b, domain)
	return p
}

func (p *pkt) closeSet() {
	if p.set < 0 {
		return
	}
	binary.BigEndian.PutUint16(p.b[p.set+2:], uint16(len(p.b)-p.set))
	p.set = -1
}

// openSet starts a set with the given id.
func (p *pkt) openSet(id uint16) *pkt {
	p.closeSet()
	p.set = len(p.b)
	p.b = binary.BigEndian.AppendUint16(p.b, id)
	p.b = binary.BigEndian.AppendUint16(p.b, 0)
	return p
}

func (p *pkt) fieldSpecs(fs []fv) {
	for _, f := range fs {
		id := f.id
		if f.pen != 0 {
			id |= 0x8000
		}
		p.b = binary.BigEndian.AppendUint16(p.b, id)
		p.b = binary.BigEndian.AppendUint16(p.b, f.l)
		if f.pen != 0 {
			p.b = binary.BigEndian.AppendUint32(p.b, f.pen)
		}
	}
}

// template appends a template record to the open template set.
func (p *pkt) template(id uint16, fs []fv) *pkt {
	p.b = binary.BigEndian.AppendUint16(p.b, id)
	p.b = binary.BigEndian.AppendUint16(p.b, uint16(len(fs)))
	p.fieldSpecs(fs)
	p.records++
	return p
}

// optionsTemplate appends an options template record (scope fields first).
func (p *pkt) optionsTemplate(id uint16, scope, opts []fv) *pkt {
	p.b = binary.BigEndian.AppendUint16(p.b, id)
	if p.version == 9 {
		p.b = binary.BigEndian.AppendUint16(p.b, uint16(4*len(scope)))
		p.b = binary.BigEndian.AppendUint16(p.b, uint16(4*len(opts)))
	} else {
		p.b = binary.BigEndian.AppendUint16(p.b, uint16(len(scope)+len(opts)))
		p.b = binary.BigEndian.AppendUint16(p.b, uint16(len(scope)))
	}
	p.fieldSpecs(scope)
	p.fieldSpecs(opts)
	p.records++
	return p
}

// withdraw appends an IPFIX template withdrawal record.
func (p *pkt) withdraw(id uint16) *pkt {
	p.b = binary.BigEndian.AppendUint16(p.b, id)
	p.b = binary.BigEndian.AppendUint16(p.b, 0)
	return p
}

// data appends one data record with the values of fs.
func (p *pkt) data(fs []fv) *pkt {
	for _, f := range fs {
		if f.l == varLen {
			if len(f.val) < 255 {
				p.b = append(p.b, byte(len(f.val)))
			} else {
				p.b = append(p.b, 255)
				p.b = binary.BigEndian.AppendUint16(p.b, uint16(len(f.val)))
			}
		}
		p.b = append(p.b, f.val...)
	}
	p.records++
	return p
}

// pad appends n zero bytes to the open set.
func (p *pkt) pad(n int) *pkt {
	p.b = append(p.b, make([]byte, n)...)
	return p
}

func (p *pkt) bytes() []byte {
	p.closeSet()
	if p.version == 9 {
		binary.BigEndian.PutUint16(p.b[2:], uint16(p.records))
	} else {
		binary.BigEndian.PutUint16(p.b[2:], uint16(len(p.b)))
	}
	return p.b
}

// v5Rec is one NetFlow v5 record as the builder writes it.
type v5Rec struct {
	src, dst, nh      string
	in, out           uint16
	pkts, octets      uint32
	first, last       uint32
	sport, dport      uint16
	flags, proto, tos uint8
	srcAS, dstAS      uint16
	srcMask, dstMask  uint8
}

func v5Packet(uptime, secs, nsecs, seq uint32, engType, engID uint8, sampling uint16, recs []v5Rec) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, 5)
	b = binary.BigEndian.AppendUint16(b, uint16(len(recs)))
	b = binary.BigEndian.AppendUint32(b, uptime)
	b = binary.BigEndian.AppendUint32(b, secs)
	b = binary.BigEndian.AppendUint32(b, nsecs)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = append(b, engType, engID)
	b = binary.BigEndian.AppendUint16(b, sampling)
	for _, r := range recs {
		b = append(b, ip(r.src)...)
		b = append(b, ip(r.dst)...)
		b = append(b, ip(r.nh)...)
		b = binary.BigEndian.AppendUint16(b, r.in)
		b = binary.BigEndian.AppendUint16(b, r.out)
		b = binary.BigEndian.AppendUint32(b, r.pkts)
		b = binary.BigEndian.AppendUint32(b, r.octets)
		b = binary.BigEndian.AppendUint32(b, r.first)
		b = binary.BigEndian.AppendUint32(b, r.last)
		b = binary.BigEndian.AppendUint16(b, r.sport)
		b = binary.BigEndian.AppendUint16(b, r.dport)
		b = append(b, 0, r.flags, r.proto, r.tos)
		b = binary.BigEndian.AppendUint16(b, r.srcAS)
		b = binary.BigEndian.AppendUint16(b, r.dstAS)
		b = append(b, r.srcMask, r.dstMask, 0, 0)
	}
	return b
}

// collect decodes pkts in order with one Decoder and returns copies of
// every flow and the info of the last packet.
func collect(d *Decoder, exporter netip.AddrPort, pkts ...[]byte) ([]event.Flow, PacketInfo, error) {
	var out []event.Flow
	var info PacketInfo
	var err error
	for _, p := range pkts {
		info, err = d.Decode(exporter, p, func(e *event.Event) {
			if e.Kind != event.KindFlow || e.Source != exporter || e.Time != e.Flow.TimeEndNs {
				panic("event metadata not set")
			}
			out = append(out, e.Flow)
		})
		if err != nil && err != ErrTemplateNotFound {
			return out, info, err
		}
	}
	return out, info, err
}
