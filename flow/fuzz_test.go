package flow

import (
	"math/rand/v2"
	"testing"

	"github.com/trawlsec/trawl/event"
)

// fuzzTemplates is the template packet fed before each fuzzed v9/IPFIX
// packet, so the fuzzer reaches data decoding: template 256 with every
// mapped field, 257 with a variable-length and an enterprise field
// (IPFIX), options template 258 with a sampling rate.
func fuzzTemplates(version uint16) []byte {
	all := v9AllFields()
	scope := []fv{{id: 1, l: 4, val: num(0, 4)}}
	opts := []fv{{id: 34, l: 4, val: num(10, 4)}, {id: 160, l: 8, val: num(1699999000000, 8)}}
	if version == 9 {
		return v9Packet(1000, 1700000000, 0, 1).openSet(0).template(256, all).
			template(257, all[:4]).openSet(1).optionsTemplate(258, scope, opts).bytes()
	}
	ext := append(all[:4:4], fv{id: 82, l: varLen, val: []byte("eth0")}, fv{id: 5, l: 2, pen: 9, val: num(1, 2)},
		fv{id: 152, l: 8, val: num(1700000000000, 8)})
	return ipfixPacket(1700000000, 0, 1).openSet(2).template(256, all).template(257, ext).
		openSet(3).optionsTemplate(258, scope, opts).bytes()
}

func fuzzData(version uint16) []byte {
	all := v9AllFields()
	if version == 9 {
		return v9Packet(1000, 1700000000, 1, 1).openSet(256).data(all).data(all).
			openSet(257).data(all[:4]).openSet(258).data(append([]fv{{val: num(0, 4)}},
			fv{val: num(10, 4)}, fv{val: num(1699999000000, 8)})).bytes()
	}
	ext := append(all[:4:4], fv{id: 82, l: varLen, val: []byte("eth0")}, fv{id: 5, l: 2, pen: 9, val: num(1, 2)},
		fv{id: 152, l: 8, val: num(1700000000000, 8)})
	return ipfixPacket(1700000000, 1, 1).openSet(256).data(all).openSet(257).data(ext).data(ext).
		openSet(258).data(append([]fv{{val: num(0, 4)}}, fv{val: num(10, 4)}, fv{val: num(1699999000000, 8)})).bytes()
}

// fuzzDecode decodes pkt from exporterA with two decoders, each fed tpl
// first, the second after decoding dirty from another exporter, and
// checks the invariants every decode must keep.
func fuzzDecode(t *testing.T, version uint16, tpl, dirty, pkt []byte) {
	run := func(dirty []byte) ([]event.Flow, PacketInfo, error) {
		d := NewDecoder(NewTemplates())
		if dirty != nil {
			d.Decode(exporterB, tpl, func(*event.Event) {})
			d.Decode(exporterB, dirty, func(*event.Event) {})
		}
		if tpl != nil {
			d.Decode(exporterA, tpl, func(*event.Event) {})
		}
		var out []event.Flow
		info, err := d.Decode(exporterA, pkt, func(e *event.Event) {
			if e.Kind != event.KindFlow || e.Source != exporterA || e.Time != e.Flow.TimeEndNs {
				t.Fatalf("event metadata: %+v", e)
			}
			out = append(out, e.Flow)
		})
		return out, info, err
	}
	var a, b []event.Flow
	var ia, ib PacketInfo
	var ea, eb error
	a, ia, ea = run(nil)
	b, ib, eb = run(dirty)
	// Held sets of this packet may be decoded at its end (template later
	// in the packet): they count as PendingRecords.
	if ia.Records+ia.PendingRecords != len(a) {
		t.Fatalf("info counts %d+%d records, fn saw %d", ia.Records, ia.PendingRecords, len(a))
	}
	if ia.PendingHeld > ia.NoTemplateSets {
		t.Fatalf("held %d of %d sets", ia.PendingHeld, ia.NoTemplateSets)
	}
	// Every record takes at least one byte past the header (48 in v5).
	maxRecs := len(pkt)
	if version == 5 {
		maxRecs = max(0, len(pkt)-v5HeaderLen) / v5RecordLen
	}
	if len(a) > maxRecs {
		t.Fatalf("%d records from %d bytes", len(a), len(pkt))
	}
	for _, f := range a {
		if f.SequenceNum != ia.SequenceNum || f.ObservationID != ia.ObservationID || f.SamplerAddress != exporterA.Addr() {
			t.Fatalf("flow header fields %+v differ from info %+v", f, ia)
		}
	}
	// Decoding must not depend on what the decoder saw from other
	// exporters: same flows, same info, same error.
	if (ea == nil) != (eb == nil) || ea != nil && ea.Error() != eb.Error() || ia != ib || len(a) != len(b) {
		t.Fatalf("decodes differ: %v / %v, %+v / %+v, %d / %d flows", ea, eb, ia, ib, len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("flow %d differs:\n%+v\n%+v", i, a[i], b[i])
		}
	}
}

func FuzzDecodeV5(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	f.Add(sampleV5(r, 30))
	f.Add(sampleV5(r, 1))
	f.Add(sampleV5(r, 2)[:60])
	dirty := sampleV5(r, 3)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) >= 2 {
			pkt[0], pkt[1] = 0, 5
		}
		fuzzDecode(t, 5, nil, dirty, pkt)
	})
}

func FuzzDecodeV9(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	tpl := fuzzTemplates(9)
	f.Add(fuzzData(9))
	f.Add(tpl)
	_, d := sampleTemplated(r, 9, 3)
	f.Add(d)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) >= 2 {
			pkt[0], pkt[1] = 0, 9
		}
		fuzzDecode(t, 9, tpl, fuzzData(9), pkt)
	})
}

func FuzzDecodeIPFIX(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	tpl := fuzzTemplates(10)
	f.Add(fuzzData(10))
	f.Add(tpl)
	f.Add(ipfixPacket(1, 2, 1).openSet(2).withdraw(256).withdraw(2).openSet(3).withdraw(3).bytes())
	_, d := sampleTemplated(r, 10, 3)
	f.Add(d)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) >= 2 {
			pkt[0], pkt[1] = 0, 10
		}
		fuzzDecode(t, 10, tpl, fuzzData(10), pkt)
	})
}
