package flow

import (
	"net/netip"
	"sync"
)

// Sequence windows. A jump forward past the gap bound, or backward past
// the reorder window, is an exporter restart (or a second exporter behind
// one address): tracking resyncs and nothing is counted as lost.
const (
	maxFlowGap       = 1 << 20 // v5 and IPFIX count flows
	maxPacketGap     = 1 << 14 // v9 counts packets
	flowReorderWin   = 1 << 14
	packetReorderWin = 1 << 8
)

// SeqResult is what one packet's sequence number says about loss.
type SeqResult struct {
	// LostFlows estimates the flow records missing between the previous
	// packet and this one. v5 and IPFIX count records exactly; v9 counts
	// packets, so its estimate is LostPackets times the average records
	// per packet seen from that exporter.
	LostFlows uint64
	// LostPackets is the number of missing packets (v9 only).
	LostPackets uint64
	// Reordered means the packet came after one sent later; it was
	// counted in an earlier LostFlows, which that estimate overstated.
	Reordered bool
	// Resync means tracking (re)started: first packet seen, exporter
	// restart, or a jump too large to be loss. Nothing is counted.
	Resync bool
}

type seqState struct {
	next  uint32 // expected sequence number of the next packet
	prev  uint32 // sequence number of the last packet accounted
	valid bool
	// inclusive marks an IPFIX exporter that numbers a message with the
	// data records sent up to and including it (softflowd 1.1), where RFC
	// 7011 counts those sent before it.
	inclusive bool
	late      uint8  // consecutive late packets
	avg       uint32 // v9: records per packet, fixed point x16, moving average
}

// observe folds one packet's record count into the moving average used to
// estimate the flows in lost packets (fixed point ×16).
func (st *seqState) observe(records int) {
	n := uint32(min(records, 1<<16)) * 16
	if st.avg == 0 {
		st.avg = n
	} else {
		st.avg = (st.avg*7 + n) / 8
	}
}

// judge classifies a packet whose sequence number is diff past the
// expected one: loss (counted in packets when perPacket, estimated in flows
// from the average), an exporter restart or a jump too large to be loss
// (Resync), or a late packet. It returns false for a late packet, which
// leaves the expectation with the newest one.
func (st *seqState) judge(r *SeqResult, seq uint32, diff, gapMax, reorder int32, perPacket bool) bool {
	switch {
	case !st.valid:
		r.Resync = true
	case diff == 0:
	case diff > 0 && diff <= gapMax:
		if perPacket {
			r.LostPackets = uint64(diff)
			r.LostFlows = uint64(diff) * uint64(st.avg) / 16
		} else {
			r.LostFlows = uint64(diff)
		}
	case diff < 0 && seq <= 1:
		// Counters restart at 0 (v9 exporters and sFlow agents at 0 or 1).
		r.Resync = true
	case diff < 0 && diff >= -reorder && st.late < maxLate-1:
		st.late++
		r.Reordered = true
		return false
	default:
		r.Resync = true
	}
	return true
}

// maxLate is how many packets in a row may come late before the exporter
// is taken to have restarted below its old count: reordering delays a
// packet or two, not a stream.
const maxLate = 4

// SeqTracker follows the export sequence numbers of every exporter and
// observation domain (v5: engine type and id) and turns gaps into
// estimated losses. It is safe for concurrent use; feed it the packets of
// one exporter in arrival order.
type SeqTracker struct {
	mu     sync.Mutex
	states map[exporterKey]*seqState
}

// NewSeqTracker returns an empty tracker.
func NewSeqTracker() *SeqTracker {
	return &SeqTracker{states: make(map[exporterKey]*seqState)}
}

// Track accounts for one decoded packet (the PacketInfo Decode returned
// without a fatal error) from exporter. It allocates only for a new
// exporter and domain, at most MaxExporterStates of them; past that it
// returns Resync.
func (s *SeqTracker) Track(exporter netip.Addr, info *PacketInfo) SeqResult {
	k := exporterKey{exporter.Unmap(), info.ObservationID, info.Version}
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
	seq := info.SequenceNum
	gapMax, reorder := int32(maxFlowGap), int32(flowReorderWin)
	if info.Version == 9 {
		gapMax, reorder = maxPacketGap, packetReorderWin
		if info.Records > 0 {
			st.observe(info.Records)
		}
	}
	var r SeqResult
	diff := int32(seq - st.next) // modulo 2^32: counters wrap
	if info.Version == 10 && st.valid {
		recs := uint32(info.Records)
		switch {
		case st.inclusive && diff == 0 && seq-st.prev != recs:
			// Only the RFC numbering fits: a loss that happened to look
			// inclusive misled us once; go back.
			st.inclusive = false
		case st.inclusive:
			diff = int32(seq - st.prev - recs)
		case diff != 0 && recs > 0 && seq-st.prev == recs:
			// The first message that only fits inclusive numbering
			// switches the exporter to it; nothing was lost.
			st.inclusive = true
			diff = 0
		}
	}
	if !st.judge(&r, seq, diff, gapMax, reorder, info.Version == 9) {
		return r
	}
	st.valid = true
	st.late = 0
	st.prev = seq
	switch info.Version {
	case 9:
		st.next = seq + 1
	case 10:
		st.next = seq + uint32(info.Records+info.OptionsRecords)
		if info.NoTemplateSets > 0 {
			// Records of unknown templates cannot be counted: resync at
			// the next packet instead of calling them lost.
			st.valid = false
		}
	default:
		st.next = seq + uint32(info.Records)
	}
	return r
}
