package flow

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/trawlsec/trawl/event"
)

// Realistic packets for the allocation gate and the benchmarks: what
// nProbe's and softflowd's default templates look like.

func sampleV5(r *rand.Rand, n int) []byte {
	recs := make([]v5Rec, n)
	for i := range recs {
		recs[i] = v5Rec{
			src: fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)),
			dst: fmt.Sprintf("172.16.%d.%d", r.IntN(256), r.IntN(256)),
			nh:  "192.168.1.1", in: uint16(r.IntN(64)), out: uint16(r.IntN(64)),
			pkts: uint32(r.IntN(1000) + 1), octets: uint32(r.IntN(1e6) + 40),
			first: 500000 + uint32(r.IntN(10000)), last: 510000 + uint32(r.IntN(10000)),
			sport: uint16(r.IntN(65536)), dport: 443, flags: 0x1b, proto: 6,
			srcAS: uint16(r.IntN(65536)), dstAS: uint16(r.IntN(65536)), srcMask: 24, dstMask: 16,
		}
	}
	return v5Packet(520000, 1700000000, 0, 1000, 0, 0, 0, recs)
}

// nprobeFields is nProbe's default v9 template (18 fields).
func nprobeFields(r *rand.Rand, ipfix bool) []fv {
	fs := []fv{
		{id: 1, l: 4, val: num(uint64(r.IntN(1e6)+40), 4)},
		{id: 2, l: 4, val: num(uint64(r.IntN(1000)+1), 4)},
		{id: 4, l: 1, val: num(6, 1)},
		{id: 5, l: 1, val: num(0, 1)},
		{id: 6, l: 1, val: num(0x1b, 1)},
		{id: 7, l: 2, val: num(uint64(r.IntN(65536)), 2)},
		{id: 8, l: 4, val: num(uint64(r.Uint32()), 4)},
		{id: 9, l: 1, val: num(24, 1)},
		{id: 10, l: 2, val: num(uint64(r.IntN(64)), 2)},
		{id: 11, l: 2, val: num(443, 2)},
		{id: 12, l: 4, val: num(uint64(r.Uint32()), 4)},
		{id: 13, l: 1, val: num(16, 1)},
		{id: 14, l: 2, val: num(uint64(r.IntN(64)), 2)},
		{id: 15, l: 4, val: ip("192.168.1.1")},
		{id: 16, l: 4, val: num(uint64(r.IntN(1<<20)), 4)},
		{id: 17, l: 4, val: num(uint64(r.IntN(1<<20)), 4)},
		{id: 21, l: 4, val: num(uint64(510000+r.IntN(10000)), 4)},
		{id: 22, l: 4, val: num(uint64(500000+r.IntN(10000)), 4)},
	}
	if ipfix {
		fs[0] = fv{id: 1, l: 8, val: num(uint64(r.IntN(1e6)+40), 8)}
		fs[1] = fv{id: 2, l: 8, val: num(uint64(r.IntN(1000)+1), 8)}
		fs[16] = fv{id: 153, l: 8, val: num(uint64(1700000000000+r.IntN(10000)), 8)}
		fs[17] = fv{id: 152, l: 8, val: num(uint64(1699999990000+r.IntN(10000)), 8)}
	}
	return fs
}

// sampleTemplated returns a template packet and a data packet of n
// records for v9 (version 9) or IPFIX (10).
func sampleTemplated(r *rand.Rand, version uint16, n int) (tpl, data []byte) {
	ipfix := version == 10
	fs := nprobeFields(r, ipfix)
	var tp, dp *pkt
	if ipfix {
		tp = ipfixPacket(1700000000, 0, 1).openSet(2).template(1024, fs)
		dp = ipfixPacket(1700000000, 0, 1).openSet(1024)
	} else {
		tp = v9Packet(520000, 1700000000, 0, 1).openSet(0).template(1024, fs)
		dp = v9Packet(520000, 1700000000, 1, 1).openSet(1024)
	}
	for range n {
		dp.data(nprobeFields(r, ipfix))
	}
	return tp.bytes(), dp.bytes()
}

func TestDecodeAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	v9t, v9d := sampleTemplated(r, 9, 25)
	ipt, ipd := sampleTemplated(r, 10, 25)
	// Options data with a sampling rate, to cover the options path.
	opts := ipfixPacket(1700000000, 0, 1).
		openSet(3).optionsTemplate(300, []fv{{id: 144, l: 4}}, []fv{{id: 305, l: 4}}).
		openSet(300).data([]fv{{val: num(1, 4)}, {val: num(100, 4)}}).bytes()
	unknown := ipfixPacket(1700000000, 0, 1).openSet(999).data([]fv{{val: num(1, 4)}}).bytes()
	f := func(name string, p []byte, wantRecords int, wantErr error) {
		t.Helper()
		d := NewDecoder(NewTemplates())
		var sum uint64
		fn := func(e *event.Event) { sum += e.Flow.Bytes }
		for _, warm := range [][]byte{v9t, ipt, opts} {
			if _, err := d.Decode(exporterA, warm, fn); err != nil {
				t.Fatal(err)
			}
		}
		var info PacketInfo
		var err error
		allocs := testing.AllocsPerRun(100, func() { info, err = d.Decode(exporterA, p, fn) })
		if err != wantErr || info.Records != wantRecords {
			t.Fatalf("%s: %d records, %v", name, info.Records, err)
		}
		if allocs != 0 {
			t.Fatalf("%s: %v allocs per packet, want 0", name, allocs)
		}
	}
	f("v5", sampleV5(r, 30), 30, nil)
	f("v9 data", v9d, 25, nil)
	f("ipfix data", ipd, 25, nil)
	f("v9 template resent", v9t, 0, nil)
	f("ipfix template resent", ipt, 0, nil)
	f("ipfix options", opts, 0, nil)
	f("unknown template", unknown, 0, ErrTemplateNotFound)
}
