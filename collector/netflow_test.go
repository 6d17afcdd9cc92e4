package collector

import (
	"context"
	"encoding/binary"
	"io"
	"log"
	"net/netip"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/collector/udp"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/flow"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/ledger"
)

// v5Packet is a NetFlow v5 packet of n records numbered from seq.
func v5Packet(n int, seq uint32) []byte {
	b := make([]byte, 24+48*n)
	be := binary.BigEndian
	be.PutUint16(b[0:], 5)
	be.PutUint16(b[2:], uint16(n))
	be.PutUint32(b[4:], 1_000_000)
	be.PutUint32(b[8:], 1_764_064_800)
	be.PutUint32(b[16:], seq)
	for i := 0; i < n; i++ {
		r := b[24+48*i:]
		copy(r[0:], []byte{10, 0, 0, byte(i)})
		copy(r[4:], []byte{192, 0, 2, 1})
		be.PutUint32(r[16:], 1)
		be.PutUint32(r[20:], 100)
		be.PutUint16(r[34:], 443)
		r[38] = 6
	}
	return b
}

// TestNetflowHandle checks the per-batch path of the flow input: every
// record becomes an event, sequence gaps and malformed packets are counted,
// and steady state allocates nothing.
func TestNetflowHandle(t *testing.T) {
	set := metrics.NewSet()
	led := ledger.New(set).Input("nf", "netflow")
	pipe, err := newPipeline(pipelineConfig{name: "nf", kind: event.KindFlow, policy: DropNewest, ringSlots: 64,
		limits: frame.DefaultBatchLimits()}, nil, led, set.NewCounter("spool"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newNetflowInput(NetflowOptions{Name: "nf", Listen: "127.0.0.1:0", Sockets: 1, ReadBuffer: 1 << 20},
		pipe, led, flow.NewTemplates(), set, log.New(io.Discard, "", 0).Printf)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for i := 0; i < cap(in.state); i++ {
		w := <-in.state
		w.hard = context.Background()
		in.state <- w
	}
	from := netip.MustParseAddrPort("192.0.2.9:9995")
	recs := make([][]byte, 0, pipe.ring.Cap())
	var ev event.Event
	drain := func() int {
		recs = pipe.ring.Peek(recs[:0], pipe.ring.Cap())
		n := 0
		for _, rec := range recs {
			// Flows come in batches (Producer.Add); walked here without
			// ringEvents, which allocates, for the AllocsPerRun below.
			if rec[0] != batchMarker {
				t.Fatalf("ring record %d is not a batch", n)
			}
			for raw := rec[2:]; len(raw) > 0; n++ {
				r, rest, err := frame.Next(raw)
				if err != nil {
					t.Fatal(err)
				}
				if err := event.DecodeBinary(&ev, r); err != nil || ev.Kind != event.KindFlow {
					t.Fatalf("ring event %d: kind %v, %v", n, ev.Kind, err)
				}
				raw = rest
			}
		}
		pipe.ring.Release(len(recs))
		return n
	}

	in.handle([]udp.Datagram{{Data: v5Packet(10, 0), From: from}, {Data: v5Packet(10, 20), From: from}})
	if got := drain(); got != 20 {
		t.Fatalf("%d events for 20 records", got)
	}
	if got := led.UpstreamLost("exporter_sequence_gap").Get(); got != 10 {
		t.Fatalf("sequence gap loss %d, want 10", got)
	}
	in.handle([]udp.Datagram{{Data: []byte{0, 5, 0}, From: from}, {Data: []byte("garbage!"), From: from}})
	if a, b := led.Errors("truncated").Get(), led.Errors("bad_version").Get(); a != 1 || b != 1 {
		t.Fatalf("truncated %d, bad_version %d", a, b)
	}
	if drain() != 0 {
		t.Fatal("malformed packets produced events")
	}

	pkt := v5Packet(30, 30)
	seq := uint32(30) // the 10 records numbered 20 were the last
	batch := []udp.Datagram{{Data: pkt, From: from}}
	run := func() {
		binary.BigEndian.PutUint32(pkt[16:], seq)
		seq += 30
		in.handle(batch)
		drain()
	}
	for i := 0; i < 5; i++ {
		run()
	}
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("%v allocations per packet of 30 flows", n)
	}
	if got := led.UpstreamLost("exporter_sequence_gap").Get(); got != 10 {
		t.Fatalf("sequence gap loss grew to %d on a gap-free stream", got)
	}
}
