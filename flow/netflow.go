package flow

import (
	"encoding/binary"
	"net/netip"

	"github.com/trawlsec/trawl/event"
)

const (
	v9HeaderLen    = 20
	ipfixHeaderLen = 16
	setHeaderLen   = 4
	varLen         = 0xffff // IPFIX variable-length field marker
	ntpEpochOffset = 2208988800
)

// kind says where a template field goes. It is computed once per template
// so the per-record loop is a switch on a small integer.
type kind uint8

const (
	kSkip kind = iota
	kBytes
	kPackets
	kProto
	kTos
	kTCPFlags
	kSrcPort
	kDstPort
	kSrcV4
	kDstV4
	kSrcMask
	kDstMask
	kInIf
	kOutIf
	kNextHop4
	kSrcAS
	kDstAS
	kEndUptime
	kStartUptime
	kSrcV6
	kDstV6
	kNextHop6
	kSampling
	kVlan
	kEtype
	kIPVersion
	kStartSec
	kEndSec
	kStartMs
	kEndMs
	kStartNTP // dateTimeMicroseconds / dateTimeNanoseconds
	kEndNTP
	kStartDeltaUs
	kEndDeltaUs
	kInitMs
	// Options data fields.
	kOptSampling305
	kOptSampling50
	kOptSampling34
	kOptInitMs
)

// dataKinds maps information element ids (v9 field types share the IPFIX
// numbering below 128) to where they go in a flow record.
var dataKinds = [...]kind{
	1: kBytes, 2: kPackets, 4: kProto, 5: kTos, 6: kTCPFlags, 7: kSrcPort,
	8: kSrcV4, 9: kSrcMask, 10: kInIf, 11: kDstPort, 12: kDstV4, 13: kDstMask,
	14: kOutIf, 15: kNextHop4, 16: kSrcAS, 17: kDstAS, 21: kEndUptime,
	22: kStartUptime, 23: kBytes, 24: kPackets, 27: kSrcV6, 28: kDstV6,
	29: kSrcMask, 30: kDstMask, 34: kSampling, 50: kSampling, 58: kVlan,
	60: kIPVersion, 62: kNextHop6, 150: kStartSec, 151: kEndSec, 152: kStartMs,
	153: kEndMs, 154: kStartNTP, 155: kEndNTP, 156: kStartNTP, 157: kEndNTP,
	158: kStartDeltaUs, 159: kEndDeltaUs, 160: kInitMs, 256: kEtype,
	305: kSampling,
}

func kindOf(id uint16, pen uint32, options, scope bool) kind {
	if pen != 0 || scope {
		return kSkip
	}
	if options {
		switch id {
		case 305:
			return kOptSampling305
		case 50:
			return kOptSampling50
		case 34:
			return kOptSampling34
		case 160:
			return kOptInitMs
		}
		return kSkip
	}
	if int(id) < len(dataKinds) {
		return dataKinds[id]
	}
	return kSkip
}

type field struct {
	length uint16 // varLen for an IPFIX variable-length field
	off    uint16 // offset in the record, when the template is fixed
	kind   kind
}

// template is immutable once stored: Decoders read it without locks.
type template struct {
	fields  []field
	minLen  int  // bytes of the shortest possible record, > 0
	fixed   bool // no variable-length field: minLen is the record length
	options bool
	raw     []byte // the template record as sent, to detect a resend
}

// scanFields checks n field specifiers at the start of b and returns the
// bytes they take and the shortest record they describe.
func scanFields(version uint16, b []byte, n int) (size, minLen int, err error) {
	for range n {
		if len(b)-size < 4 {
			return 0, 0, ErrTruncated
		}
		id := binary.BigEndian.Uint16(b[size:])
		l := int(binary.BigEndian.Uint16(b[size+2:]))
		size += 4
		if version == 10 && id&0x8000 != 0 {
			if len(b)-size < 4 {
				return 0, 0, ErrTruncated
			}
			size += 4
		}
		switch {
		case l != varLen:
			minLen += l
		case version == 10:
			minLen++ // at least the one-byte length prefix
		default:
			return 0, 0, ErrBadLength
		}
	}
	if minLen == 0 {
		// A record of no bytes would make the data set loop endless.
		return 0, 0, ErrBadLength
	}
	return size, minLen, nil
}

func buildTemplate(version uint16, b []byte, n, scope, minLen int, options bool) *template {
	t := &template{fields: make([]field, n), minLen: minLen, options: options, fixed: true}
	p, off := 0, 0
	for i := range n {
		id := binary.BigEndian.Uint16(b[p:])
		l := binary.BigEndian.Uint16(b[p+2:])
		p += 4
		var pen uint32
		if version == 10 && id&0x8000 != 0 {
			pen = binary.BigEndian.Uint32(b[p:])
			p += 4
			id &= 0x7fff
			if pen == 0 {
				pen = 1 // enterprise 0 is reserved: keep it unmapped
			}
		}
		t.fields[i] = field{length: l, off: uint16(off), kind: kindOf(id, pen, options, i < scope)}
		if l == varLen && version == 10 {
			t.fixed = false
		}
		off += int(l)
	}
	return t
}

// decodeTemplated decodes a NetFlow v9 or IPFIX packet set by set.
func (d *Decoder) decodeTemplated(version uint16, pkt []byte, fn func(e *event.Event)) error {
	hl := v9HeaderLen
	if version == 10 {
		hl = ipfixHeaderLen
	}
	if len(pkt) < hl {
		return &DecodeError{Version: version, Err: ErrTruncated}
	}
	var secs, seq uint32
	if version == 9 {
		d.uptimeMs = binary.BigEndian.Uint32(pkt[4:])
		secs = binary.BigEndian.Uint32(pkt[8:])
		seq = binary.BigEndian.Uint32(pkt[12:])
		d.domain = binary.BigEndian.Uint32(pkt[16:])
	} else {
		l := int(binary.BigEndian.Uint16(pkt[2:]))
		secs = binary.BigEndian.Uint32(pkt[4:])
		seq = binary.BigEndian.Uint32(pkt[8:])
		d.domain = binary.BigEndian.Uint32(pkt[12:])
		d.uptimeMs = 0
		if l < ipfixHeaderLen {
			return &DecodeError{Version: version, Offset: 2, Err: ErrBadLength}
		}
		if l > len(pkt) {
			return &DecodeError{Version: version, Offset: len(pkt), Err: ErrTruncated}
		}
		// Bytes past the message length are not part of the message.
		pkt = pkt[:l]
	}
	d.setContext(d.ev.Source, version, d.domain, int64(secs)*1e9, d.uptimeMs, seq)
	d.info.SequenceNum = seq
	d.info.ObservationID = d.domain
	d.info.ExportTimeNs = d.baseNs

	var notFound error
	off := hl
	for off < len(pkt) {
		if len(pkt)-off < setHeaderLen {
			if version == 9 {
				break // v9 exporters may pad the packet
			}
			return &DecodeError{Version: version, Offset: off, Err: ErrTruncated}
		}
		id := binary.BigEndian.Uint16(pkt[off:])
		l := int(binary.BigEndian.Uint16(pkt[off+2:]))
		if l < setHeaderLen {
			return &DecodeError{Version: version, Offset: off, SetID: id, Err: ErrBadLength}
		}
		if l > len(pkt)-off {
			return &DecodeError{Version: version, Offset: off, SetID: id, Err: ErrTruncated}
		}
		body := pkt[off+setHeaderLen : off+l]
		var err error
		switch {
		case id >= 256:
			err = d.dataSet(id, body, fn)
			if err == ErrTemplateNotFound {
				d.info.NoTemplateSets++
				d.info.NoTemplateBytes += len(body)
				if d.hold(id, body) {
					d.info.PendingHeld++
				}
				// Bare sentinel: data before its template is routine
				// (exporter or collector restart) and must not allocate.
				notFound = ErrTemplateNotFound
				err = nil
			}
		case version == 9 && id == 0, version == 10 && id == 2:
			err = d.templateSet(body, false)
		case version == 9 && id == 1, version == 10 && id == 3:
			err = d.templateSet(body, true)
		}
		// Other ids are reserved: skipped, as RFC 7011 asks.
		if err != nil {
			return &DecodeError{Version: version, Offset: off, SetID: id, Err: err}
		}
		off += l
	}
	d.packets++
	d.retryPending(fn)
	return notFound
}

// setContext sets what records of a packet share: exporter, header fields,
// the exporter's options state.
func (d *Decoder) setContext(src netip.AddrPort, version uint16, domain uint32, baseNs int64, uptimeMs, seq uint32) {
	d.ev.Source = src
	d.exporter = src.Addr().Unmap()
	d.version = version
	d.domain = domain
	d.baseNs = baseNs
	d.uptimeMs = uptimeMs
	d.state = d.t.state(exporterKey{d.exporter, domain, version}, false)
	d.proto = event.Flow{
		Type:           event.FlowNetFlow9,
		SequenceNum:    seq,
		ObservationID:  domain,
		SamplerAddress: d.exporter,
		// Records without time fields are stamped with the export time.
		TimeStartNs: baseNs,
		TimeEndNs:   baseNs,
	}
	if version == 10 {
		d.proto.Type = event.FlowIPFIX
	}
	if d.state != nil {
		d.proto.SamplingRate = d.state.samplingRate.Load()
	}
}

// parseTemplate checks the (options) template record at the start of b
// and returns its field count, scope field count, field specifiers' size
// and shortest record. The record takes hdr+size bytes.
func parseTemplate(v uint16, options bool, b []byte) (n, scope, size, minLen int, err error) {
	hdr := 4
	if options {
		hdr = 6
	}
	if len(b) < hdr {
		return 0, 0, 0, 0, ErrTruncated
	}
	n = int(binary.BigEndian.Uint16(b[2:]))
	if options {
		s := int(binary.BigEndian.Uint16(b[4:]))
		if v == 9 {
			// v9 gives scope and option lengths in bytes.
			if n%4 != 0 || s%4 != 0 {
				return 0, 0, 0, 0, ErrBadLength
			}
			scope, n = n/4, (n+s)/4
		} else {
			if s == 0 || s > n {
				return 0, 0, 0, 0, ErrBadLength
			}
			scope = s
		}
	}
	size, minLen, err = scanFields(v, b[hdr:], n)
	return n, scope, size, minLen, err
}

// templateSet learns the template records of one (options) template set.
func (d *Decoder) templateSet(b []byte, options bool) error {
	v := d.version
	hdr := 4 // template id, field count
	if options {
		hdr = 6 // + scope length (v9, bytes) or scope field count (IPFIX)
	}
	for len(b) >= 4 {
		id := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if v == 10 && n == 0 && (id >= 256 || (!options && id == 2) || (options && id == 3)) {
			// Withdrawal: template id 2 (3 in an options set) withdraws all.
			d.info.TemplatesLearned++
			ek := exporterKey{d.exporter, d.domain, v}
			if (!options && id == 2) || (options && id == 3) {
				d.t.withdrawAll(ek, options)
			} else {
				d.t.withdraw(templateKey{d.exporter, d.domain, v, id})
			}
			b = b[4:]
			continue
		}
		if id < 256 {
			// Padding at the end of the set, or nothing we can use.
			return nil
		}
		n, scope, size, minLen, err := parseTemplate(v, options, b)
		if err != nil {
			return err
		}
		raw := b[:hdr+size]
		if d.t.put(templateKey{d.exporter, d.domain, v, id}, raw, options, func() *template {
			return buildTemplate(v, raw[hdr:], n, scope, minLen, options)
		}) {
			d.info.TemplatesLearned++
		} else {
			d.info.TemplatesRefused++
		}
		b = b[hdr+size:]
	}
	return nil
}

// dataSet decodes the records of one data set. It returns
// ErrTemplateNotFound, unwrapped, when the template is unknown.
func (d *Decoder) dataSet(id uint16, b []byte, fn func(e *event.Event)) error {
	t := d.t.get(templateKey{d.exporter, d.domain, d.version, id})
	if t == nil {
		return ErrTemplateNotFound
	}
	for len(b) >= t.minLen {
		var n int
		var err error
		if t.options {
			n, err = d.optionsRecord(t, b)
		} else {
			n, err = d.record(t, b, fn)
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	// What is left is padding, shorter than any record.
	return nil
}

// fieldValue returns the value of a field that starts at b[p:] and the offset
// past it.
func fieldValue(fl *field, b []byte, p int) ([]byte, int, error) {
	l := int(fl.length)
	if l == varLen {
		if p >= len(b) {
			return nil, 0, ErrTruncated
		}
		l = int(b[p])
		p++
		if l == 255 {
			if len(b)-p < 2 {
				return nil, 0, ErrTruncated
			}
			l = int(binary.BigEndian.Uint16(b[p:]))
			p += 2
		}
	}
	if l > len(b)-p {
		return nil, 0, ErrTruncated
	}
	return b[p : p+l], p + l, nil
}

// record decodes one flow record at the start of b, hands it to fn and
// returns its length.
func (d *Decoder) record(t *template, b []byte, fn func(e *event.Event)) (int, error) {
	f := &d.ev.Flow
	*f = d.proto
	var (
		startUp, endUp       uint64
		hasStartUp, hasEndUp bool
		initMs               int64
		v                    []byte
	)
	p := 0
	for i := range t.fields {
		fl := &t.fields[i]
		if t.fixed {
			// Bounded by the caller: len(b) >= t.minLen, the record length.
			v = b[fl.off : int(fl.off)+int(fl.length)]
		} else {
			var err error
			if v, p, err = fieldValue(fl, b, p); err != nil {
				return 0, err
			}
		}
		switch fl.kind {
		case kSkip:
		case kBytes:
			f.Bytes = be(v)
		case kPackets:
			f.Packets = be(v)
		case kProto:
			f.Proto = uint8(be(v))
		case kTos:
			f.IPTos = uint8(be(v))
		case kTCPFlags:
			f.TCPFlags = uint8(be(v))
		case kSrcPort:
			f.SrcPort = uint16(be(v))
		case kDstPort:
			f.DstPort = uint16(be(v))
		case kSrcV4, kSrcV6:
			setAddr(&f.SrcAddr, &f.Etype, v)
		case kDstV4, kDstV6:
			setAddr(&f.DstAddr, &f.Etype, v)
		case kNextHop4, kNextHop6:
			if (len(v) == 4 || len(v) == 16) && !allZero(v) {
				f.NextHop = addrOf(v)
			}
		case kSrcMask:
			f.SrcMask = uint8(be(v))
		case kDstMask:
			f.DstMask = uint8(be(v))
		case kInIf:
			f.InIf = uint32(be(v))
		case kOutIf:
			f.OutIf = uint32(be(v))
		case kSrcAS:
			f.SrcAS = uint32(be(v))
		case kDstAS:
			f.DstAS = uint32(be(v))
		case kVlan:
			f.VlanID = uint16(be(v))
		case kEtype:
			f.Etype = uint16(be(v))
		case kIPVersion:
			switch be(v) {
			case 4:
				f.Etype = 0x0800
			case 6:
				f.Etype = 0x86dd
			}
		case kSampling:
			f.SamplingRate = be(v)
		case kStartUptime:
			// v9: milliseconds of the exporter's uptime, as the header's.
			// IPFIX: relative to systemInitTimeMilliseconds, which may
			// come later in the record or from options data.
			if d.version == 9 {
				f.TimeStartNs = d.baseNs - (int64(d.uptimeMs)-int64(be(v)))*1e6
			} else {
				startUp, hasStartUp = be(v), true
			}
		case kEndUptime:
			if d.version == 9 {
				f.TimeEndNs = d.baseNs - (int64(d.uptimeMs)-int64(be(v)))*1e6
			} else {
				endUp, hasEndUp = be(v), true
			}
		case kStartSec:
			f.TimeStartNs = int64(be(v)) * 1e9
		case kEndSec:
			f.TimeEndNs = int64(be(v)) * 1e9
		case kStartMs:
			f.TimeStartNs = int64(be(v)) * 1e6
		case kEndMs:
			f.TimeEndNs = int64(be(v)) * 1e6
		case kStartNTP:
			f.TimeStartNs = ntpNs(be(v))
		case kEndNTP:
			f.TimeEndNs = ntpNs(be(v))
		case kStartDeltaUs:
			f.TimeStartNs = d.baseNs - int64(be(v))*1e3
		case kEndDeltaUs:
			f.TimeEndNs = d.baseNs - int64(be(v))*1e3
		case kInitMs:
			initMs = int64(be(v))
		}
	}
	if t.fixed {
		p = t.minLen
	}
	if hasStartUp || hasEndUp {
		if initMs == 0 && d.state != nil {
			initMs = d.state.initTimeMs.Load()
		}
		// Without an init time the export time stamp stays.
		if initMs != 0 {
			if hasStartUp {
				f.TimeStartNs = (initMs + int64(startUp)) * 1e6
			}
			if hasEndUp {
				f.TimeEndNs = (initMs + int64(endUp)) * 1e6
			}
		}
	}
	d.ev.Time = f.TimeEndNs
	d.info.Records++
	d.info.SamplingRate = f.SamplingRate
	fn(&d.ev)
	return p, nil
}

// optionsRecord reads one options data record: a sampling rate (305, else
// 50, else 34, as goflow2 ranks them) and the system init time, kept per
// exporter and domain for the records that follow.
func (d *Decoder) optionsRecord(t *template, b []byte) (int, error) {
	var (
		opt305, opt50, opt34 uint64
		has305, has50, has34 bool
		initMs               int64
		v                    []byte
		err                  error
	)
	p := 0
	for i := range t.fields {
		if v, p, err = fieldValue(&t.fields[i], b, p); err != nil {
			return 0, err
		}
		switch t.fields[i].kind {
		case kOptSampling305:
			opt305, has305 = be(v), true
		case kOptSampling50:
			opt50, has50 = be(v), true
		case kOptSampling34:
			opt34, has34 = be(v), true
		case kOptInitMs:
			initMs = int64(be(v))
		}
	}
	d.info.OptionsRecords++
	rate, ok := opt34, has34
	if has305 {
		rate, ok = opt305, true
	} else if has50 {
		rate, ok = opt50, true
	}
	if !ok && initMs == 0 {
		return p, nil
	}
	if d.state == nil {
		d.state = d.t.state(exporterKey{d.exporter, d.domain, d.version}, true)
	}
	if d.state != nil {
		if ok {
			d.state.samplingRate.Store(rate)
			d.proto.SamplingRate = rate
		}
		if initMs != 0 {
			d.state.initTimeMs.Store(initMs)
		}
	}
	return p, nil
}

// be reads a big-endian unsigned number of any length; longer than 8 bytes,
// the low-order 8 are kept (RFC 7012 reduced-size encoding works the other
// way, and no common IE is wider).
func be(v []byte) uint64 {
	switch len(v) {
	case 1:
		return uint64(v[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(v))
	case 4:
		return uint64(binary.BigEndian.Uint32(v))
	case 8:
		return binary.BigEndian.Uint64(v)
	}
	if len(v) > 8 {
		v = v[len(v)-8:]
	}
	var x uint64
	for _, c := range v {
		x = x<<8 | uint64(c)
	}
	return x
}

// ntpNs converts an NTP timestamp (seconds since 1900 in the high 32 bits,
// binary fraction in the low 32) to unix ns.
func ntpNs(x uint64) int64 {
	return (int64(x>>32)-ntpEpochOffset)*1e9 + int64(((x&0xffffffff)*1e9)>>32)
}

func allZero(v []byte) bool {
	for _, c := range v {
		if c != 0 {
			return false
		}
	}
	return true
}

func addrOf(v []byte) netip.Addr {
	if len(v) == 4 {
		return netip.AddrFrom4([4]byte(v))
	}
	return netip.AddrFrom16([16]byte(v))
}

// setAddr stores an IPv4 or IPv6 address. Templates that carry both (one
// of them zero) keep the non-zero one, whatever the field order.
func setAddr(dst *netip.Addr, etype *uint16, v []byte) {
	if len(v) != 4 && len(v) != 16 {
		return
	}
	if dst.IsValid() && allZero(v) {
		return
	}
	*dst = addrOf(v)
	if len(v) == 4 {
		*etype = 0x0800
	} else {
		*etype = 0x86dd
	}
}
