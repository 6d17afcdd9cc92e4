package flow

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/trawlsec/trawl/event"
)

// sFlow v5 (sflow.org, sflow_version_5.txt) is decoded by DecodeSFlow, not
// by Decode: the two protocols come on different ports (6343 for sFlow),
// and an sFlow datagram starts with a 4-byte version, so NetFlow's 2-byte
// version check would read 0 there.

// sFlow sample formats (enterprise 0).
const (
	sfFlowSample        = 1
	sfCounterSample     = 2
	sfFlowSampleExp     = 3
	sfCounterSampleExp  = 4
	sfFlowSampleLen     = 32 // seq, source id, rate, pool, drops, input, output, record count
	sfFlowSampleExpLen  = 44 // seq, source type, index, rate, pool, drops, 2×(format, value), record count
	sfCounterSampleLen  = 12 // seq, source id, record count
	sfCounterSampleXLen = 16 // seq, source type, index, record count
)

// sFlow flow record formats (enterprise 0).
const (
	sfRawHeader   = 1
	sfSampledIPv4 = 3
	sfSampledIPv6 = 4
	sfExtSwitch   = 1001
	sfExtRouter   = 1002
	sfExtGateway  = 1003
)

// sFlow raw packet header protocols (header_protocol) that are parsed.
const (
	sfProtoEthernet = 1
	sfProtoIPv4     = 11
	sfProtoIPv6     = 12
)

// SFlowError is the error DecodeSFlow returns: one of the package
// sentinels (Err) and where in the datagram decoding stopped.
type SFlowError struct {
	Offset int    // byte offset of the datagram header, sample or record
	Sample int    // index of the sample, -1 for the datagram header
	Tag    uint32 // sample or record tag (enterprise<<12 | format), 0 for the header
	Err    error  // ErrTruncated, ErrBadVersion or ErrBadLength
}

// Error renders e as "cannot decode sflow v5 sample 2 (tag 1) at offset 44: bad length".
func (e *SFlowError) Error() string {
	if e.Sample < 0 {
		return fmt.Sprintf("cannot decode sflow v5 datagram header at offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("cannot decode sflow v5 sample %d (tag %d) at offset %d: %v", e.Sample, e.Tag, e.Offset, e.Err)
}

// Unwrap returns the sentinel.
func (e *SFlowError) Unwrap() error { return e.Err }

// SFlowInfo describes one decoded sFlow datagram, for sequence tracking
// (SeqTracker.TrackSFlow) and for the loss ledger.
type SFlowInfo struct {
	Agent       netip.Addr // agent address from the datagram (invalid for address type 0)
	SubAgentID  uint32
	SequenceNum uint32 // datagram sequence number: counts datagrams per agent and sub-agent
	UptimeMs    uint32
	// Samples is the sample count the datagram header announces.
	Samples int
	// FlowSamples is the number of flow samples (plain and expanded)
	// handed to the callback, one event each.
	FlowSamples int
	// CounterSamples counts counter samples (plain and expanded). They
	// are not turned into events yet.
	CounterSamples int
	// SkippedSamples counts samples of other formats or enterprises,
	// skipped by their length.
	SkippedSamples int
	// SkippedRecords counts flow records inside flow samples that are not
	// mapped (other formats, enterprise records), skipped by length.
	SkippedRecords int
	// SampleDrops is the largest drops counter of the flow samples: the
	// agent's running count of samples it had to drop for lack of
	// resources (per data source, so only a hint of agent-side loss).
	SampleDrops uint32
}

// DecodeSFlow decodes one sFlow v5 datagram received from agentFrom and
// calls fn once per flow sample (plain or expanded), in datagram order.
// Flow times are the time of the call: sFlow carries no flow times, only
// the agent's uptime. It is DecodeSFlowAt with time.Now.
func (d *Decoder) DecodeSFlow(agentFrom netip.AddrPort, pkt []byte, fn func(e *event.Event)) (SFlowInfo, error) {
	return d.DecodeSFlowAt(agentFrom, pkt, time.Now().UnixNano(), fn)
}

// DecodeSFlowAt is DecodeSFlow with the receive time nowNs (unix ns) given:
// every flow has TimeStartNs = TimeEndNs = Event.Time = nowNs.
//
// The *event.Event passed to fn is owned by the Decoder and valid only
// during the call, as with Decode: Kind is event.KindFlow, Source is
// agentFrom, Flow the sample (Type event.FlowSFlow5). pkt is not retained.
// It allocates nothing, except the error when the datagram is malformed.
//
// A flow sample is handed to fn once all its records are read; on error,
// fn has been called for the samples before the faulty one. Errors are
// *SFlowError wrapping ErrTruncated (the datagram ends inside its header
// or a sample, or has fewer samples than announced), ErrBadVersion (not
// version 5) or ErrBadLength (a sample or record whose lengths contradict
// its format, an unknown address type).
func (d *Decoder) DecodeSFlowAt(agentFrom netip.AddrPort, pkt []byte, nowNs int64, fn func(e *event.Event)) (SFlowInfo, error) {
	var info SFlowInfo
	hdrErr := func(off int, err error) error { return &SFlowError{Offset: off, Sample: -1, Err: err} }
	if len(pkt) < 8 {
		return info, hdrErr(0, ErrTruncated)
	}
	if binary.BigEndian.Uint32(pkt) != 5 {
		return info, hdrErr(0, ErrBadVersion)
	}
	agent, off, err := sfAddr(pkt, 4)
	if err != nil {
		return info, hdrErr(4, err)
	}
	if len(pkt)-off < 16 {
		return info, hdrErr(off, ErrTruncated)
	}
	info.Agent = agent
	info.SubAgentID = binary.BigEndian.Uint32(pkt[off:])
	info.SequenceNum = binary.BigEndian.Uint32(pkt[off+4:])
	info.UptimeMs = binary.BigEndian.Uint32(pkt[off+8:])
	n := binary.BigEndian.Uint32(pkt[off+12:])
	// The count is only a loop bound: each sample is checked against what
	// is left, so a huge count costs nothing but the error.
	info.Samples = int(min(n, 1<<30))
	off += 16

	d.ev.Source = agentFrom
	d.ev.Time = nowNs
	for i := 0; i < info.Samples; i++ {
		if len(pkt)-off < 8 {
			return info, &SFlowError{Offset: off, Sample: i, Err: ErrTruncated}
		}
		tag := binary.BigEndian.Uint32(pkt[off:])
		l := binary.BigEndian.Uint32(pkt[off+4:])
		if uint64(l) > uint64(len(pkt)-off-8) {
			return info, &SFlowError{Offset: off, Sample: i, Tag: tag, Err: ErrTruncated}
		}
		body := pkt[off+8 : off+8+int(l)]
		var err error
		switch tag {
		case sfFlowSample, sfFlowSampleExp:
			err = d.sflowSample(&info, tag == sfFlowSampleExp, body, nowNs)
			if err == nil {
				info.FlowSamples++
				fn(&d.ev)
			}
		case sfCounterSample:
			if len(body) < sfCounterSampleLen {
				err = ErrBadLength
			} else {
				info.CounterSamples++
			}
		case sfCounterSampleExp:
			if len(body) < sfCounterSampleXLen {
				err = ErrBadLength
			} else {
				info.CounterSamples++
			}
		default:
			info.SkippedSamples++
		}
		if err != nil {
			return info, &SFlowError{Offset: off, Sample: i, Tag: tag, Err: err}
		}
		off += 8 + int(l)
	}
	return info, nil
}

// sfAddr reads an sFlow address (type, then 0, 4 or 16 bytes) at off and
// returns it and the offset past it.
func sfAddr(b []byte, off int) (netip.Addr, int, error) {
	if len(b)-off < 4 {
		return netip.Addr{}, off, ErrTruncated
	}
	switch binary.BigEndian.Uint32(b[off:]) {
	case 0: // UNKNOWN: no address follows
		return netip.Addr{}, off + 4, nil
	case 1:
		if len(b)-off < 8 {
			return netip.Addr{}, off, ErrTruncated
		}
		return netip.AddrFrom4([4]byte(b[off+4:])), off + 8, nil
	case 2:
		if len(b)-off < 20 {
			return netip.Addr{}, off, ErrTruncated
		}
		return netip.AddrFrom16([16]byte(b[off+4:])), off + 20, nil
	}
	return netip.Addr{}, off, ErrBadLength
}

// sfIf turns an sFlow interface (format, value) into an ifIndex: only
// format 0 is one; 1 (discarded: reason code) and 2 (several interfaces:
// their count) are not interfaces and give 0.
func sfIf(format, value uint32) uint32 {
	if format != 0 {
		return 0
	}
	return value
}

// sflowSample builds d.ev.Flow from a flow sample's body. Any inconsistency
// inside the sample, which its length already bounds, is ErrBadLength.
func (d *Decoder) sflowSample(info *SFlowInfo, expanded bool, b []byte, nowNs int64) error {
	f := &d.ev.Flow
	*f = event.Flow{
		Type:           event.FlowSFlow5,
		SequenceNum:    info.SequenceNum,
		ObservationID:  info.SubAgentID,
		SamplerAddress: info.Agent,
		TimeStartNs:    nowNs,
		TimeEndNs:      nowNs,
		Packets:        1,
	}
	var off int
	var drops uint32
	if expanded {
		if len(b) < sfFlowSampleExpLen {
			return ErrBadLength
		}
		f.SamplingRate = uint64(binary.BigEndian.Uint32(b[12:]))
		drops = binary.BigEndian.Uint32(b[20:])
		f.InIf = sfIf(binary.BigEndian.Uint32(b[24:]), binary.BigEndian.Uint32(b[28:]))
		f.OutIf = sfIf(binary.BigEndian.Uint32(b[32:]), binary.BigEndian.Uint32(b[36:]))
		off = sfFlowSampleExpLen
	} else {
		if len(b) < sfFlowSampleLen {
			return ErrBadLength
		}
		f.SamplingRate = uint64(binary.BigEndian.Uint32(b[8:]))
		drops = binary.BigEndian.Uint32(b[16:])
		in, out := binary.BigEndian.Uint32(b[20:]), binary.BigEndian.Uint32(b[24:])
		// The top two bits are the format, the low 30 the value.
		f.InIf = sfIf(in>>30, in&0x3fffffff)
		f.OutIf = sfIf(out>>30, out&0x3fffffff)
		off = sfFlowSampleLen
	}
	info.SampleDrops = max(info.SampleDrops, drops)
	nrec := binary.BigEndian.Uint32(b[off-4:])
	hdrVlan := false
	for range nrec {
		if len(b)-off < 8 {
			return ErrBadLength
		}
		tag := binary.BigEndian.Uint32(b[off:])
		l := binary.BigEndian.Uint32(b[off+4:])
		if uint64(l) > uint64(len(b)-off-8) {
			return ErrBadLength
		}
		r := b[off+8 : off+8+int(l)]
		off += 8 + int(l)
		switch tag {
		case sfRawHeader:
			if len(r) < 16 {
				return ErrBadLength
			}
			proto := binary.BigEndian.Uint32(r)
			f.Bytes = uint64(binary.BigEndian.Uint32(r[4:]))
			hl := binary.BigEndian.Uint32(r[12:])
			if uint64(hl) > uint64(len(r)-16) {
				return ErrBadLength
			}
			h := r[16 : 16+int(hl)]
			switch proto {
			case sfProtoEthernet:
				if sfEthernet(f, h) {
					hdrVlan = true
				}
			case sfProtoIPv4:
				f.Etype = 0x0800
				sfIPv4(f, h)
			case sfProtoIPv6:
				f.Etype = 0x86dd
				sfIPv6(f, h)
			}
		case sfSampledIPv4:
			if len(r) < 32 {
				return ErrBadLength
			}
			f.Bytes = uint64(binary.BigEndian.Uint32(r))
			f.Proto = uint8(binary.BigEndian.Uint32(r[4:]))
			f.SrcAddr = netip.AddrFrom4([4]byte(r[8:]))
			f.DstAddr = netip.AddrFrom4([4]byte(r[12:]))
			f.SrcPort = uint16(binary.BigEndian.Uint32(r[16:]))
			f.DstPort = uint16(binary.BigEndian.Uint32(r[20:]))
			f.TCPFlags = uint8(binary.BigEndian.Uint32(r[24:]))
			f.IPTos = uint8(binary.BigEndian.Uint32(r[28:]))
			f.Etype = 0x0800
		case sfSampledIPv6:
			if len(r) < 56 {
				return ErrBadLength
			}
			f.Bytes = uint64(binary.BigEndian.Uint32(r))
			f.Proto = uint8(binary.BigEndian.Uint32(r[4:]))
			f.SrcAddr = netip.AddrFrom16([16]byte(r[8:]))
			f.DstAddr = netip.AddrFrom16([16]byte(r[24:]))
			f.SrcPort = uint16(binary.BigEndian.Uint32(r[40:]))
			f.DstPort = uint16(binary.BigEndian.Uint32(r[44:]))
			f.TCPFlags = uint8(binary.BigEndian.Uint32(r[48:]))
			f.IPTos = uint8(binary.BigEndian.Uint32(r[52:]))
			f.Etype = 0x86dd
		case sfExtSwitch:
			if len(r) < 16 {
				return ErrBadLength
			}
			// A tag in the sampled header is what was on the wire; the
			// switch record is the fallback (untagged or no header).
			if !hdrVlan {
				f.VlanID = uint16(binary.BigEndian.Uint32(r) & 0xfff)
			}
		case sfExtRouter:
			nh, o, err := sfAddr(r, 0)
			if err != nil || len(r)-o < 8 {
				return ErrBadLength
			}
			if !nh.IsUnspecified() && nh.IsValid() {
				f.NextHop = nh
			}
			f.SrcMask = uint8(binary.BigEndian.Uint32(r[o:]))
			f.DstMask = uint8(binary.BigEndian.Uint32(r[o+4:]))
		case sfExtGateway:
			if err := sfGateway(f, r); err != nil {
				return err
			}
		default:
			info.SkippedRecords++
		}
	}
	return nil
}

// sfGateway reads an extended gateway record: the BGP next hop (not in
// event.Flow), the router's AS, the source AS, the source peer AS, the AS
// path segments, communities and local preference. The destination AS is
// the last AS of the path (the router's own AS when the path is empty),
// the source AS the record's (the router's own when 0), as goflow2 does.
func sfGateway(f *event.Flow, r []byte) error {
	_, o, err := sfAddr(r, 0)
	if err != nil || len(r)-o < 16 {
		return ErrBadLength
	}
	as := binary.BigEndian.Uint32(r[o:])
	src := binary.BigEndian.Uint32(r[o+4:])
	segs := binary.BigEndian.Uint32(r[o+12:])
	o += 16
	dst := as
	for range segs {
		if len(r)-o < 8 {
			return ErrBadLength
		}
		n := binary.BigEndian.Uint32(r[o+4:])
		o += 8
		if uint64(n) > uint64(len(r)-o)/4 {
			return ErrBadLength
		}
		if n > 0 {
			dst = binary.BigEndian.Uint32(r[o+4*int(n)-4:])
		}
		o += 4 * int(n)
	}
	if len(r)-o < 4 {
		return ErrBadLength
	}
	nc := binary.BigEndian.Uint32(r[o:])
	o += 4
	if uint64(nc) > uint64(len(r)-o)/4 || len(r)-o-4*int(nc) < 4 {
		return ErrBadLength // communities, then local_pref
	}
	if src == 0 {
		src = as
	}
	f.SrcAS, f.DstAS = src, dst
	return nil
}

// A layer of the sampled header is read only when its fixed header is
// whole (Ethernet 14 bytes, 802.1Q 4, IPv4 20, IPv6 40, TCP 20, UDP 8):
// the header is cut at the agent's snap length, and a part of a layer is
// not evidence of its fields. goflow2 follows the same rule.

// sfEthernet parses an Ethernet frame header and what follows; it
// reports whether the frame had an 802.1Q tag.
func sfEthernet(f *event.Flow, h []byte) (tagged bool) {
	if len(h) < 14 {
		return false
	}
	et := binary.BigEndian.Uint16(h[12:])
	f.Etype = et
	h = h[14:]
	// Each tag takes 4 bytes, so the loop ends with the header. With
	// stacked tags the innermost, the customer's VLAN, wins.
	for et == 0x8100 || et == 0x88a8 {
		if len(h) < 4 {
			return tagged
		}
		f.VlanID = binary.BigEndian.Uint16(h) & 0xfff
		tagged = true
		et = binary.BigEndian.Uint16(h[2:])
		f.Etype = et
		h = h[4:]
	}
	switch et {
	case 0x0800:
		sfIPv4(f, h)
	case 0x86dd:
		sfIPv6(f, h)
	}
	return tagged
}

func sfIPv4(f *event.Flow, h []byte) {
	if len(h) < 20 {
		return
	}
	f.IPTos = h[1]
	f.Proto = h[9]
	f.SrcAddr = netip.AddrFrom4([4]byte(h[12:]))
	f.DstAddr = netip.AddrFrom4([4]byte(h[16:]))
	ihl := int(h[0]&0x0f) * 4
	// Only the first fragment carries the transport header.
	if ihl < 20 || ihl > len(h) || binary.BigEndian.Uint16(h[6:])&0x1fff != 0 {
		return
	}
	sfL4(f, h[ihl:], h[9])
}

func sfIPv6(f *event.Flow, h []byte) {
	if len(h) < 40 {
		return
	}
	f.IPTos = uint8(binary.BigEndian.Uint16(h) >> 4)
	f.SrcAddr = netip.AddrFrom16([16]byte(h[8:]))
	f.DstAddr = netip.AddrFrom16([16]byte(h[24:]))
	nh := h[6]
	f.Proto = nh
	h = h[40:]
	// Extension headers: hop-by-hop (0), routing (43), destination
	// options (60), fragment (44). Proto becomes the upper-layer
	// protocol. Each takes at least 8 bytes, so the loop is bounded.
	for {
		switch nh {
		case 0, 43, 60:
			if len(h) < 8 {
				return
			}
			l := (int(h[1]) + 1) * 8
			nh = h[0]
			f.Proto = nh
			if l > len(h) {
				return
			}
			h = h[l:]
			continue
		case 44:
			if len(h) < 8 {
				return
			}
			nh = h[0]
			f.Proto = nh
			if binary.BigEndian.Uint16(h[2:])>>3 != 0 {
				return // not the first fragment
			}
			h = h[8:]
			continue
		}
		break
	}
	sfL4(f, h, nh)
}

// sfL4 reads ports and TCP flags. ICMP type and code have no field in
// event.Flow (nor in trawl's NetFlow mapping), so ICMP leaves ports at 0.
func sfL4(f *event.Flow, h []byte, proto uint8) {
	switch proto {
	case 6:
		if len(h) < 20 {
			return
		}
		f.TCPFlags = h[13]
	case 17:
		if len(h) < 8 {
			return
		}
	default:
		return
	}
	f.SrcPort = binary.BigEndian.Uint16(h)
	f.DstPort = binary.BigEndian.Uint16(h[2:])
}

// sflowSeqVersion keys sFlow agents in SeqTracker apart from NetFlow
// exporters at the same address (NetFlow versions are 5, 9 and 10).
const sflowSeqVersion = 0x5f05

// TrackSFlow accounts for one decoded sFlow datagram (the SFlowInfo
// DecodeSFlow returned without error) and returns what its sequence
// number says about loss, per agent address and sub-agent id. sFlow
// counts datagrams: LostPackets is the number of datagrams missing, and
// LostFlows estimates the flow samples they held as LostPackets times the
// agent's moving average of flow samples per datagram (counter samples
// are not flows). Reordering and restarts are handled as for NetFlow v9
// (see Track). It allocates only for a new agent and sub-agent, at most
// MaxExporterStates of them (shared with Track); past that it returns
// Resync.
func (s *SeqTracker) TrackSFlow(info *SFlowInfo) SeqResult {
	k := exporterKey{info.Agent.Unmap(), info.SubAgentID, sflowSeqVersion}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.states[k]
	if st == nil {
		if len(s.states) >= MaxExporterStates {
			return SeqResult{Resync: true}
		}
		st = new(seqState)
		s.states[k] = st
	}
	st.observe(info.FlowSamples)
	seq := info.SequenceNum
	var r SeqResult
	if !st.judge(&r, seq, int32(seq-st.next), maxPacketGap, packetReorderWin, true) {
		return r
	}
	st.valid = true
	st.late = 0
	st.next = seq + 1
	return r
}
