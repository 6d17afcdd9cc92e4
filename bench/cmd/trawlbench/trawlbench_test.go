package main

import (
	"bytes"
	"encoding/binary"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trawlsec/trawl/bench/plot"
)

func TestCountDelimited(t *testing.T) {
	var b []byte
	for i := 0; i < 1000; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, i%300)
		b = binary.AppendUvarint(b, uint64(len(msg)))
		b = append(b, msg...)
	}
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, b, 0o644)
	if n, err := countDelimited(p); err != nil || n != 1000 {
		t.Fatalf("countDelimited = %d, %v; want 1000", n, err)
	}
	os.WriteFile(p, b[:len(b)-1], 0o644)
	if _, err := countDelimited(p); err == nil {
		t.Fatal("a cut message was not reported")
	}
	os.WriteFile(p, []byte("a\nb\nc\n"), 0o644)
	if n, err := countLines(p); err != nil || n != 3 {
		t.Fatalf("countLines = %d, %v", n, err)
	}
}

// steps: tool a holds up to 400k, b loses from 200k, c loses at once.
func testSteps() []Step {
	var s []Step
	add := func(tool string, rate, loss float64) {
		st := Step{Tool: tool, Format: "v5", Offered: rate, LossPct: loss, CPUSeconds: 1, CPUPerMFlows: rate / 1e5, PeakRSSKiB: uint64(rate / 1000)}
		st.Sent.Rate = rate * 0.99
		s = append(s, st)
	}
	add("a", 100e3, 0)
	add("a", 200e3, 0.01)
	add("a", 400e3, 0.09)
	add("a", 800e3, 3)
	add("b", 100e3, 0)
	add("b", 200e3, 0.5)
	add("b", 400e3, 0) // above a lossy step: not sustained
	add("c", 100e3, 50)
	s[0].Trawl = &TrawlCounts{MetricsTrue: true, LedgerMinusActual: 0}
	s[1].Trawl = &TrawlCounts{MetricsTrue: true, LedgerMinusActual: 12}
	s[4].Trawl = &TrawlCounts{MetricsTrue: false}
	return s
}

func TestSummarize(t *testing.T) {
	sums := summarize(testSteps())
	if len(sums) != 3 {
		t.Fatalf("%d summaries", len(sums))
	}
	f := func(s Summary, tool string, rate, cpu float64, rss uint64) {
		t.Helper()
		if s.Tool != tool || len(s.MaxRate) != 1 || s.MaxRate[0] != rate || s.CPUPerMFlows != cpu || s.PeakRSSKiB != rss {
			t.Errorf("summary %+v, want %s rate %v cpu %v rss %d", s, tool, rate, cpu, rss)
		}
	}
	f(sums[0], "a", 400e3*0.99, 4, 800)
	f(sums[1], "b", 100e3*0.99, 1, 400)
	f(sums[2], "c", 0, 1, 100)
	var md bytes.Buffer
	writeMarkdown(&md, &Report{Rates: []float64{100e3, 200e3, 400e3, 800e3}, Steps: testSteps(), Summaries: sums})
	for _, w := range []string{"| v5 | a | 396k |", "| v5 | c | < lowest step |", "| v5 | b | 0 | 0.5 | 0 | – |",
		"metrics = spool in every step; lost flows in the ledger ≠ actual loss in 1 steps (1 over, 0 under; worst +12 flows)",
		"**metrics disagree with the spool in 1 steps**; lost flows in the ledger = actual loss in every step"} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("markdown lacks %q:\n%s", w, md.String())
		}
	}
}

// TestPlot: the PNG decodes and holds each tool's color and the red 0.1%
// line.
func TestPlot(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.png")
	if err := writePlot(p, "v5", testSteps(), []string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	count := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			count[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), uint8(a >> 8)}]++
		}
	}
	for i, c := range append(plot.Palette[:3:3], plot.Red, plot.Black) {
		if count[c] < 50 {
			t.Errorf("color %d %v: %d pixels", i, c, count[c])
		}
	}
}
