package main

import (
	"bytes"
	"strings"
	"testing"
)

// Three runs each of a trawl benchmark and its peer, as -count 3 prints
// them; the rates are chosen so that the ratio of medians (8M / 2.5M = 3.2)
// differs from the ratio of any single pair of lines taken in order and
// from the ratio of means.
const countOutput = `goos: linux
pkg: github.com/trawlsec/trawl/ring
cpu: AMD EPYC
BenchmarkRing/trawl/producers=2-2   	 8862307	       125.0 ns/op	   8000000 events/s	       0 B/op	       0 allocs/op
BenchmarkRing/trawl/producers=2-2   	 7633800	       200.0 ns/op	   5000000 events/s	       0 B/op	       0 allocs/op
BenchmarkRing/trawl/producers=2-2   	 8459593	       100.0 ns/op	  10000000 events/s	       0 B/op	       0 allocs/op
BenchmarkRing/chan/producers=2-2    	 3630844	       400.0 ns/op	   2500000 events/s	       0 B/op	       0 allocs/op
BenchmarkRing/chan/producers=2-2    	 2630474	       250.0 ns/op	   4000000 events/s	       0 B/op	       0 allocs/op
BenchmarkRing/chan/producers=2-2    	 4361977	       500.0 ns/op	   2000000 events/s	       0 B/op	       0 allocs/op
BenchmarkRing/trawl/producers=1-2   	 1000000	       100.0 ns/op	  10000000 events/s	       0 B/op	       0 allocs/op
PASS
`

func TestReduceCount(t *testing.T) {
	rep, err := parse(strings.NewReader(countOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 7 {
		t.Fatalf("parsed %d lines, want 7", len(rep.Results))
	}
	rs := reduce(rep.Results)
	if len(rs) != 3 {
		t.Fatalf("reduced to %d results, want 3: %+v", len(rs), rs)
	}
	want := []struct {
		name   string
		runs   int
		rate   float64
		nsOp   float64
		nRates int
	}{
		{"ring.BenchmarkRing/trawl/producers=2", 3, 8e6, 125, 3},
		{"ring.BenchmarkRing/chan/producers=2", 3, 2.5e6, 400, 3},
		{"ring.BenchmarkRing/trawl/producers=1", 1, 1e7, 100, 0},
	}
	for i, w := range want {
		r := rs[i]
		if r.Name != w.name || r.Runs != w.runs || rate(r) != w.rate || r.Metrics["ns/op"] != w.nsOp || len(r.Rates) != w.nRates {
			t.Errorf("result %d = %s runs=%d rate=%g ns/op=%g rates=%v; want %s runs=%d rate=%g ns/op=%g and %d rates",
				i, r.Name, r.Runs, rate(r), r.Metrics["ns/op"], r.Rates, w.name, w.runs, w.rate, w.nsOp, w.nRates)
		}
	}
	ratios := ratios(rs)
	if len(ratios) != 1 || ratios[0].Peer != "chan" || ratios[0].Ratio != 3.2 {
		t.Fatalf("ratios = %+v, want one against chan of 3.2 (median over median)", ratios)
	}
	rep.Results, rep.Ratios = rs, ratios
	var md bytes.Buffer
	writeMarkdown(&md, rep)
	for _, s := range []string{"median of 3 runs: 5.00M / 8.00M / 10.00M", "| ring.BenchmarkRing/trawl/producers=2 | chan | 3.20× |"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}
}
