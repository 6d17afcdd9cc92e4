package trawlnode

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const metricsText = `# HELP x
trawl_input_received_events_total{input="sys"} 1000
trawl_input_received_events_total{input="other"} 5
trawl_input_dropped_events_total{input="sys",reason="ring_full"} 3
trawl_input_dropped_events_total{input="sys",reason="decode"} 2
trawl_input_upstream_lost_total{input="sys",cause="exporter_sequence_gap"} 30
trawl_input_upstream_lost_total{input="sys",cause="socket_overflow"} 4
trawl_input_errors_total{input="sys",reason="parse_error"} 2
trawl_input_errors_total{input="sys",reason="framing"} 1
trawl_input_udp_gro_sockets{input="sys"} 4
trawl_input_broken{input="sys"}
trawl_input_unquoted{input="sys",cause="x} 9
trawl_input_nan{input="sys"} x
process_cpu_seconds_total 3
go_info{input="sys"} 1
`

func TestParseMetrics(t *testing.T) {
	m := ParseMetrics([]byte(metricsText), "sys")
	want := map[string]float64{
		"trawl_input_received_events_total":                     1000,
		"trawl_input_dropped_events_total":                      5,
		"trawl_input_dropped_events_total:ring_full":            3,
		"trawl_input_dropped_events_total:decode":               2,
		"trawl_input_upstream_lost_total":                       34,
		"trawl_input_upstream_lost_total:exporter_sequence_gap": 30,
		"trawl_input_upstream_lost_total:socket_overflow":       4,
		"trawl_input_errors_total":                              3,
		"trawl_input_errors_total:parse_error":                  2,
		"trawl_input_errors_total:framing":                      1,
		"trawl_input_udp_gro_sockets":                           4,
		// The line whose cause has no closing quote counts by name only.
		"trawl_input_unquoted": 9,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %g, want %g", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("%d sums, want %d: %v", len(m), len(want), m)
	}
	if m := ParseMetrics([]byte(metricsText), "other"); len(m) != 1 || m["trawl_input_received_events_total"] != 5 {
		t.Errorf("input other: %v", m)
	}
}

func TestWaitHealthyMetrics(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			// Healthy from the third call on, as a node that is
			// still starting.
			if calls.Add(1) < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ok"))
		case "/metrics":
			w.Write([]byte(metricsText))
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := WaitHealthy(context.Background(), addr, 10*time.Second); err != nil || calls.Load() != 3 {
		t.Fatalf("WaitHealthy = %v after %d calls", err, calls.Load())
	}
	m, err := Metrics(addr, "sys")
	if err != nil || m["trawl_input_upstream_lost_total:socket_overflow"] != 4 {
		t.Fatalf("Metrics = %v, %v", m, err)
	}

	srv.Close()
	if err := WaitHealthy(context.Background(), addr, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "not healthy") {
		t.Fatalf("WaitHealthy of a closed server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitHealthy(ctx, addr, 10*time.Second); err != context.Canceled {
		t.Fatalf("WaitHealthy with a cancelled context: %v", err)
	}
	if _, err := Metrics(addr, "sys"); err == nil {
		t.Fatal("Metrics of a closed server succeeded")
	}
}

// TestSpoolEvents runs a stand-in for bin/trawl that prints what `trawl
// spool stat --json` prints.
func TestSpoolEvents(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "trawl")
	script := `#!/bin/sh
[ "$1 $2 $3 $4" = "spool stat --json /data/dir" ] || { echo "args: $*" >&2; exit 2; }
echo '{"inputs":[{"name":"sys","events":3},{"name":"nf","events":5},{"name":"sys","events":4}]}'
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n, err := SpoolEvents(ctx, bin, "/data/dir", "sys"); err != nil || n != 7 {
		t.Fatalf("SpoolEvents(sys) = %d, %v; want 7", n, err)
	}
	if n, err := SpoolEvents(ctx, bin, "/data/dir", "none"); err != nil || n != 0 {
		t.Fatalf("SpoolEvents(none) = %d, %v; want 0", n, err)
	}
	if _, err := SpoolEvents(ctx, bin, "/other", "sys"); err == nil || !strings.Contains(err.Error(), "cannot run trawl spool stat") {
		t.Fatalf("SpoolEvents with a failing trawl: %v", err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho not json\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := SpoolEvents(ctx, bin, "/data/dir", "sys"); err == nil || !strings.Contains(err.Error(), "cannot parse trawl spool stat") {
		t.Fatalf("SpoolEvents with bad JSON: %v", err)
	}
}
