package flow

import (
	"net/netip"
	"testing"

	"github.com/trawlsec/trawl/event"
)

func TestSeqTracker(t *testing.T) {
	type step struct {
		info PacketInfo
		want SeqResult
	}
	f := func(name string, steps []step) {
		t.Helper()
		s := NewSeqTracker()
		for i, st := range steps {
			if got := s.Track(exporterA.Addr(), &st.info); got != st.want {
				t.Fatalf("%s: step %d: got %+v, want %+v", name, i, got, st.want)
			}
		}
	}
	v5 := func(seq uint32, recs int) PacketInfo { return PacketInfo{Version: 5, SequenceNum: seq, Records: recs} }
	v9 := func(seq uint32, recs int) PacketInfo { return PacketInfo{Version: 9, SequenceNum: seq, Records: recs} }
	ipfix := func(seq uint32, recs, opts int) PacketInfo {
		return PacketInfo{Version: 10, SequenceNum: seq, Records: recs, OptionsRecords: opts}
	}
	resync := SeqResult{Resync: true}
	f("v5", []step{
		{v5(100, 30), resync}, {v5(130, 30), SeqResult{}}, {v5(190, 30), SeqResult{LostFlows: 30}},
		{v5(160, 30), SeqResult{Reordered: true}}, {v5(220, 10), SeqResult{}},
		{v5(0, 30), resync}, {v5(30, 30), SeqResult{}}, // restart
	})
	f("v5 restart from 10", []step{
		{v5(1000, 30), resync}, {v5(10, 30), SeqResult{Reordered: true}}, {v5(40, 30), SeqResult{Reordered: true}},
		{v5(70, 30), SeqResult{Reordered: true}}, {v5(100, 30), resync}, {v5(130, 30), SeqResult{}},
	})
	f("v5 wrap", []step{{v5(1<<32-20, 30), resync}, {v5(10, 30), SeqResult{}}, {v5(45, 5), SeqResult{LostFlows: 5}}})
	f("v9", []step{
		{v9(7, 16), resync}, {v9(8, 16), SeqResult{}}, {v9(9, 16), SeqResult{}},
		{v9(12, 16), SeqResult{LostPackets: 2, LostFlows: 32}},
		{v9(11, 16), SeqResult{Reordered: true}}, {v9(13, 0), SeqResult{}},
		{v9(1<<30, 16), resync}, {v9(1<<30+1, 16), SeqResult{}},
	})
	f("ipfix", []step{
		{ipfix(1000, 25, 0), resync}, {ipfix(1025, 24, 1), SeqResult{}}, {ipfix(1050, 0, 0), SeqResult{}},
		{ipfix(1060, 5, 0), SeqResult{LostFlows: 10}},
		{PacketInfo{Version: 10, SequenceNum: 1065, Records: 3, NoTemplateSets: 1}, SeqResult{}},
		{ipfix(1070, 5, 0), resync}, {ipfix(1075, 5, 0), SeqResult{}},
	})
	// Domains and exporters are tracked apart.
	s := NewSeqTracker()
	s.Track(exporterA.Addr(), &PacketInfo{Version: 10, SequenceNum: 10, Records: 5})
	if r := s.Track(exporterA.Addr(), &PacketInfo{Version: 10, SequenceNum: 500, ObservationID: 2}); !r.Resync {
		t.Fatalf("other domain: %+v", r)
	}
	if r := s.Track(exporterB.Addr(), &PacketInfo{Version: 10, SequenceNum: 500}); !r.Resync {
		t.Fatalf("other exporter: %+v", r)
	}
	if r := s.Track(exporterA.Addr(), &PacketInfo{Version: 10, SequenceNum: 15}); r != (SeqResult{}) {
		t.Fatalf("first domain: %+v", r)
	}
}

// TestSeqTrackerDecoded feeds decoded packets, with one dropped, through
// the tracker.
func TestSeqTrackerDecoded(t *testing.T) {
	d := NewDecoder(NewTemplates())
	s := NewSeqTracker()
	fs := []fv{{id: 1, l: 4, val: num(1, 4)}}
	var lost uint64
	seq := uint32(0)
	for i := range 10 {
		p := ipfixPacket(1, seq, 1).openSet(2).template(256, fs).openSet(256)
		for range 1 + i {
			p.data(fs)
		}
		seq += uint32(1 + i)
		if i == 4 {
			continue // lost on the way: 5 records
		}
		info, err := d.Decode(exporterA, p.bytes(), func(*event.Event) {})
		if err != nil {
			t.Fatal(err)
		}
		lost += s.Track(exporterA.Addr(), &info).LostFlows
	}
	if lost != 5 {
		t.Fatalf("lost %d flows, want 5", lost)
	}
}

func TestSeqTrackerAllocs(t *testing.T) {
	s := NewSeqTracker()
	info := PacketInfo{Version: 5, SequenceNum: 0, Records: 30}
	s.Track(exporterA.Addr(), &info)
	allocs := testing.AllocsPerRun(100, func() {
		info.SequenceNum += 30
		if r := s.Track(exporterA.Addr(), &info); r != (SeqResult{}) {
			t.Fatalf("%+v", r)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs", allocs)
	}
}

// TestSeqTrackerInclusiveIPFIX: softflowd 1.1 numbers an IPFIX message with
// the data records sent up to and including it, not before it (RFC 7011).
// Neither numbering may turn into phantom loss, and real gaps still count.
func TestSeqTrackerInclusiveIPFIX(t *testing.T) {
	s := NewSeqTracker()
	ex := netip.MustParseAddr("192.0.2.7")
	track := func(seq uint32, recs int) SeqResult {
		return s.Track(ex, &PacketInfo{Version: 10, SequenceNum: seq, Records: recs})
	}
	f := func(seq uint32, recs int, lost uint64) {
		t.Helper()
		if r := track(seq, recs); r.LostFlows != lost {
			t.Fatalf("seq %d, %d records: lost %d, want %d (%+v)", seq, recs, r.LostFlows, lost, r)
		}
	}
	f(30, 30, 0) // first message: resync
	f(42, 12, 0) // 30+12: inclusive numbering
	f(49, 7, 0)
	f(79, 30, 0)
	f(99, 10, 10) // 10 records went missing before this message
	f(104, 5, 0)

	s = NewSeqTracker()
	f(0, 30, 0) // RFC numbering: the first message is numbered 0
	f(30, 12, 0)
	f(42, 7, 0)
	f(59, 10, 10)
	f(69, 3, 0)
}
