package audit

import (
	"math/rand/v2"
	"testing"
)

func TestGapTracker(t *testing.T) {
	var g GapTracker
	for s := uint64(100); s < 200; s++ {
		if lost := g.Track(s); lost != 0 {
			t.Fatalf("in-order serial %d counted %d lost", s, lost)
		}
	}
	// Records of one event repeat its serial; older serials than the first
	// seen are not counted.
	g.Track(199)
	g.Track(50)
	// 200..209 skipped, 205 arrives late: 9 are lost once they leave the
	// window, not before.
	g.Track(210)
	g.Track(205)
	if g.Lost() != 0 || g.Pending() != 9 {
		t.Fatalf("lost %d pending %d before the window passed", g.Lost(), g.Pending())
	}
	var lost uint64
	for s := uint64(211); s < 211+gapWindow; s++ {
		lost += g.Track(s)
	}
	if lost != 9 || g.Lost() != 9 || g.Pending() != 0 {
		t.Fatalf("lost %d (total %d, pending %d), want 9", lost, g.Lost(), g.Pending())
	}
	// A jump beyond the window: everything skipped that is out of the new
	// window is lost at once, the rest is pending.
	high := uint64(211 + gapWindow - 1)
	lost = g.Track(high + 3*gapWindow)
	if lost != 2*gapWindow || g.Pending() != gapWindow-1 {
		t.Fatalf("jump: lost %d pending %d", lost, g.Pending())
	}
}

// TestGapTracker_Shuffled checks the count against the truth when serials
// arrive shuffled within a small distance and some never come.
func TestGapTracker_Shuffled(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200000
	serials := make([]uint64, 0, n)
	dropped := 0
	for s := uint64(1000); s < 1000+n; s++ {
		if s > 1000 && rng.IntN(100) == 0 {
			dropped++
			continue
		}
		serials = append(serials, s)
	}
	// Swap neighbours up to 100 apart.
	for i := range serials {
		j := min(len(serials)-1, i+rng.IntN(100))
		if i > 0 && j > 0 {
			serials[i], serials[j] = serials[j], serials[i]
		}
	}
	var g GapTracker
	for _, s := range serials {
		g.Track(s)
	}
	// Push the window past the end: the gapWindow serials skipped by this
	// jump are counted too (lost or pending) and taken off.
	g.Track(1000 + n + gapWindow)
	lost := int(g.Lost()) + int(g.Pending()) - gapWindow
	if lost != dropped {
		t.Fatalf("counted %d lost, %d were dropped", lost, dropped)
	}
	if allocs := testing.AllocsPerRun(100, func() { g.Track(g.high + 1) }); allocs != 0 {
		t.Fatalf("%v allocs per Track", allocs)
	}
}
