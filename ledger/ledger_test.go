package ledger

import (
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func TestLedgerBalance(t *testing.T) {
	set := metrics.NewSet()
	l := New(set)
	in := l.Input("app", "app")
	in.Received.Add(10)
	in.Delivered.Add(6)
	in.Dropped(ReasonRingFull).Add(3)
	in.UpstreamLost("socket_overflow").Add(7)
	l.Sink("spool").Add(6)

	s := l.Snapshot()
	if len(s.Inputs) != 1 {
		t.Fatalf("inputs: %d", len(s.Inputs))
	}
	got := s.Inputs[0]
	if got.Received != 10 || got.Delivered != 6 || got.DroppedTotal != 3 || got.Pending != 1 || got.UpstreamTotal != 7 {
		t.Fatalf("unexpected balance: %+v", got)
	}
	if got.Dropped[ReasonRingFull] != 3 || got.Dropped[ReasonRetention] != 0 {
		t.Fatalf("dropped: %v", got.Dropped)
	}
	if s.Sinks["spool"] != 6 {
		t.Fatalf("sinks: %v", s.Sinks)
	}
	if l.Input("app", "app") != in {
		t.Fatal("a second registration must return the same input")
	}

	var prom bytes.Buffer
	set.WritePrometheus(&prom)
	for _, want := range []string{
		`trawl_input_received_events_total{input="app"} 10`,
		`trawl_input_dropped_events_total{input="app",reason="ring_full"} 3`,
		`trawl_input_upstream_lost_total{input="app",cause="socket_overflow"} 7`,
		`trawl_sink_delivered_events_total{sink="spool"} 6`,
	} {
		if !strings.Contains(prom.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, prom.String())
		}
	}

	var table bytes.Buffer
	if err := s.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"app dropped 3 (ring_full)", "app upstream lost 7 (socket_overflow)", "spool delivered 6"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}
