package flow

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/trawlsec/trawl/event"
)

// FuzzDecodeSFlow checks, on any input after the version: no panic; a
// flow per delivered flow sample and no more flow samples than samples
// announced or than 8-byte sample headers fit; the error, when any, is an
// *SFlowError with a sentinel; decoding again with the same Decoder gives
// the same flows, info and error (no state leaks between datagrams).
func FuzzDecodeSFlow(f *testing.F) {
	r := rand.New(rand.NewPCG(13, 14))
	f.Add(sampleSFlow(r, 1))
	for range 6 {
		f.Add(randomSFlow(r))
	}
	f.Add(sflowDatagram("2001:db8::1", 1, 2, 3).sample(sfFlowSample, sfFlowBody(false, 1, 1, 0, sfIfc{}, sfIfc{},
		sfRaw(sfProtoEthernet, 64, ethFrame(0x86dd, []uint16{5}, ipv6Pkt("2001:db8::1", "2001:db8::2", 0, 0,
			append([]byte{44, 0, 1, 4, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 1}, tcpSeg(1, 2, 3, 0)...)))),
		sfGatewayRec("10.0.0.1", 1, 2, 3, [][]uint32{{4}, {5, 6}}, []uint32{7}))).bytes())
	f.Add(sflowDatagram("", 0, 0, 0).sample(sfCounterSampleExp, make([]byte, 16)).sample(7, nil).bytes())
	d := NewDecoder(NewTemplates())
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) >= 4 {
			pkt[0], pkt[1], pkt[2], pkt[3] = 0, 0, 0, 5
		}
		run := func() ([]event.Flow, SFlowInfo, error) {
			var out []event.Flow
			info, err := d.DecodeSFlowAt(agentFrom, pkt, 7, func(e *event.Event) {
				if e.Kind != event.KindFlow || e.Source != agentFrom || e.Time != 7 || e.Flow.Type != event.FlowSFlow5 {
					t.Fatalf("event metadata: %+v", e)
				}
				out = append(out, e.Flow)
			})
			return out, info, err
		}
		a, ia, ea := run()
		if ia.FlowSamples != len(a) || len(a) > ia.Samples || len(a) > len(pkt)/8 {
			t.Fatalf("%d flows, info %+v, %d bytes", len(a), ia, len(pkt))
		}
		if n := ia.FlowSamples + ia.CounterSamples + ia.SkippedSamples; n > ia.Samples {
			t.Fatalf("%d samples read of %d announced", n, ia.Samples)
		}
		for _, fl := range a {
			if fl.SequenceNum != ia.SequenceNum || fl.ObservationID != ia.SubAgentID || fl.SamplerAddress != ia.Agent || fl.Packets != 1 {
				t.Fatalf("flow header fields %+v differ from info %+v", fl, ia)
			}
		}
		var se *SFlowError
		if ea != nil && (!errors.As(ea, &se) || !errors.Is(ea, ErrTruncated) && !errors.Is(ea, ErrBadLength) && !errors.Is(ea, ErrBadVersion)) {
			t.Fatalf("error %v", ea)
		}
		b, ib, eb := run()
		if (ea == nil) != (eb == nil) || ea != nil && ea.Error() != eb.Error() || ia != ib || len(a) != len(b) {
			t.Fatalf("decodes differ: %v / %v, %+v / %+v", ea, eb, ia, ib)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("flow %d differs:\n%+v\n%+v", i, a[i], b[i])
			}
		}
	})
}
