package audit

import "math/bits"

// GapTracker counts audit serial numbers that never arrived. The kernel
// numbers events from one counter, so a skipped serial belongs to an event
// that was lost after it got its number (in the kernel's queues or in a
// listener's socket buffer). Events reach the socket in the order they
// end, not the order they were numbered in, so a serial only counts as
// lost once it falls out of a window behind the newest serial seen.
//
// A GapTracker is not safe for concurrent use. It does not allocate.
type GapTracker struct {
	high   uint64 // newest serial seen
	floor  uint64 // first serial seen: older ones are not ours to count
	primed bool
	lost   uint64
	// seen has bit s%gapWindow set when serial s in (high-gapWindow, high]
	// has been seen.
	seen [gapWindow / 64]uint64
}

// gapWindow is how many serials behind the newest one an event may still
// arrive without being counted lost. A slow syscall (an execve that
// faults in a large binary) ends, and is queued, a few hundred events
// after it was numbered under an exec storm.
const gapWindow = 4096

// Track records serial and returns how many serials it has just learned
// were lost (mostly 0). Serial 0 is ignored.
func (g *GapTracker) Track(serial uint64) uint64 {
	switch {
	case serial == 0:
		return 0
	case !g.primed:
		g.primed, g.high, g.floor = true, serial, serial
		g.set(serial)
		return 0
	case serial <= g.high:
		if g.high-serial < gapWindow && serial >= g.floor {
			g.set(serial) // a late event, or another record of one seen
		}
		return 0
	}
	var lost uint64
	if serial-g.high >= gapWindow {
		// Everything in the window leaves it; of the serials skipped, those
		// that are already out of the new window are lost now, the rest
		// stay unseen in it.
		lost = g.unseenInWindow() + (serial - gapWindow - g.high)
		clear(g.seen[:])
	} else {
		for s := g.high + 1; s <= serial; s++ {
			// s takes over the bit of s-gapWindow, which leaves the window.
			if s > gapWindow && s-gapWindow >= g.floor && !g.isSet(s) {
				lost++
			}
			g.clearBit(s)
		}
	}
	g.high = serial
	g.set(serial)
	g.lost += lost
	return lost
}

// Lost returns the serials known lost so far.
func (g *GapTracker) Lost() uint64 { return g.lost }

// Pending returns the serials inside the window not seen yet: lost unless
// they still arrive.
func (g *GapTracker) Pending() uint64 {
	if !g.primed {
		return 0
	}
	return g.unseenInWindow()
}

func (g *GapTracker) unseenInWindow() uint64 {
	n := min(uint64(gapWindow), g.high-g.floor+1)
	seen := 0
	for _, w := range g.seen {
		seen += bits.OnesCount64(w)
	}
	return n - uint64(seen)
}

func (g *GapTracker) set(s uint64)        { g.seen[(s%gapWindow)/64] |= 1 << (s % 64) }
func (g *GapTracker) clearBit(s uint64)   { g.seen[(s%gapWindow)/64] &^= 1 << (s % 64) }
func (g *GapTracker) isSet(s uint64) bool { return g.seen[(s%gapWindow)/64]&(1<<(s%64)) != 0 }
