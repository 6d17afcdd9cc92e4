package flow

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/trawlsec/trawl/event"
)

func TestPendingDataBeforeTemplate(t *testing.T) {
	fs := []fv{{id: 1, l: 4, val: num(42, 4)}, {id: 150, l: 4, val: num(1600000000, 4)}}
	tpl := ipfixPacket(1700000100, 3, 1).openSet(2).template(256, fs).bytes()
	data := ipfixPacket(1700000000, 1, 1).openSet(256).data(fs).data(fs).bytes()
	ev := func(e *event.Event) event.Flow { return e.Flow }
	var got []event.Flow
	var sources []netip.AddrPort
	fn := func(e *event.Event) { got = append(got, ev(e)); sources = append(sources, e.Source) }

	// Separate packets; the template comes in another Decoder sharing the
	// cache, as with several sockets.
	tpls := NewTemplates()
	d, other := NewDecoder(tpls), NewDecoder(tpls)
	info, err := d.Decode(exporterA, data, fn)
	if !errors.Is(err, ErrTemplateNotFound) || info.PendingHeld != 1 || info.NoTemplateSets != 1 || len(got) != 0 {
		t.Fatalf("data first: %+v, %v, %d flows", info, err, len(got))
	}
	if _, err := other.Decode(exporterA, tpl, fn); err != nil || len(got) != 0 {
		t.Fatalf("template in the other decoder: %v, %d flows", err, len(got))
	}
	// RetryPending delivers them without waiting for d's next packet, and
	// only once.
	if n := d.RetryPending(fn); n != 2 || len(got) != 2 {
		t.Fatalf("RetryPending: %d records, %d flows", n, len(got))
	}
	if n := d.RetryPending(fn); n != 0 || len(got) != 2 {
		t.Fatalf("second RetryPending: %d records, %d flows", n, len(got))
	}
	got, sources = got[:0], sources[:0]
	// The same again, now delivered by d's next packet.
	d = NewDecoder(NewTemplates())
	other = NewDecoder(d.t)
	if _, err := d.Decode(exporterA, data, fn); !errors.Is(err, ErrTemplateNotFound) {
		t.Fatalf("held again: %v", err)
	}
	if _, err := other.Decode(exporterA, tpl, fn); err != nil {
		t.Fatal(err)
	}
	// Any later packet of d (here another exporter's) delivers them.
	info, err = d.Decode(exporterB, ipfixPacket(1, 0, 9).bytes(), fn)
	if err != nil || info.PendingRecords != 2 || info.Records != 0 || len(got) != 2 {
		t.Fatalf("retry: %+v, %v, %d flows", info, err, len(got))
	}
	// Held records keep their own packet's header and exporter.
	w := event.Flow{Type: event.FlowIPFIX, SequenceNum: 1, ObservationID: 1, TimeStartNs: 1600000000e9,
		TimeEndNs: 1700000000e9, Bytes: 42, SamplerAddress: exporterA.Addr()}
	checkFlows(t, got, []event.Flow{w, w})
	if sources[0] != exporterA || sources[1] != exporterA {
		t.Fatalf("sources %v", sources)
	}

	// Data set before its template in the same packet.
	got = got[:0]
	d = NewDecoder(NewTemplates())
	both := ipfixPacket(1700000000, 1, 1).openSet(256).data(fs).openSet(2).template(256, fs).openSet(256).data(fs).bytes()
	info, err = d.Decode(exporterA, both, fn)
	if !errors.Is(err, ErrTemplateNotFound) || info.Records != 1 || info.PendingRecords != 1 || len(got) != 2 {
		t.Fatalf("same packet: %+v, %v, %d flows", info, err, len(got))
	}
}

func TestPendingBounds(t *testing.T) {
	fs := []fv{{id: 1, l: 4, val: num(1, 4)}}
	nop := func(*event.Event) {}
	data := func(id uint16, recs int) []byte {
		p := ipfixPacket(1, 0, 1).openSet(id)
		for range recs {
			p.data(fs)
		}
		return p.bytes()
	}

	// Too old: given up after PendingAge packets.
	d := NewDecoder(NewTemplates())
	d.Decode(exporterA, data(256, 1), nop)
	dropped := 0
	for range PendingAge + 1 {
		info, _ := d.Decode(exporterB, ipfixPacket(1, 0, 1).bytes(), nop)
		dropped += info.PendingDropped
	}
	info, _ := d.Decode(exporterA, ipfixPacket(1, 0, 1).openSet(2).template(256, fs).bytes(), nop)
	if dropped != 1 || info.PendingRecords != 0 {
		t.Fatalf("expiry: %d dropped, %+v", dropped, info)
	}

	// One exporter holds at most PendingPerExporter sets.
	d = NewDecoder(NewTemplates())
	held := 0
	for i := range PendingPerExporter + 10 {
		info, _ := d.Decode(exporterA, data(uint16(256+i), 1), nop)
		held += info.PendingHeld
	}
	info, _ = d.Decode(exporterB, data(256, 1), nop)
	if held != PendingPerExporter || info.PendingHeld != 1 {
		t.Fatalf("per exporter: held %d, other exporter %+v", held, info)
	}

	// Out of room: the oldest sets make way, counted.
	d = NewDecoder(NewTemplates())
	big := data(256, 4000) // 16000 bytes
	held, dropped = 0, 0
	for i := range 40 {
		exp := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 9)
		info, _ := d.Decode(exp, big, nop)
		held += info.PendingHeld
		dropped += info.PendingDropped
	}
	if held != 40 || dropped != 40-PendingBytes/16000 {
		t.Fatalf("room: held %d, dropped %d", held, dropped)
	}
	// The newest survive and decode.
	last := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 39}), 9)
	info, _ = d.Decode(last, ipfixPacket(1, 0, 1).openSet(2).template(256, fs).bytes(), nop)
	if info.PendingRecords != 4000 {
		t.Fatalf("after eviction: %+v", info)
	}
}
