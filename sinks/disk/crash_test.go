//go:build unix

package disk

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	crashEnvDir   = "TRAWL_SPOOL_CRASH_DIR"
	crashEnvStart = "TRAWL_SPOOL_CRASH_START"
	crashEnvSeed  = "TRAWL_SPOOL_CRASH_SEED"
	// crashRoundBytes caps what one child appends, so 20 rounds of scanning the
	// whole spool stay fast.
	crashRoundBytes = 12 << 20
	// crashRoundIndexes separates the record indexes of successive rounds.
	crashRoundIndexes = 1 << 20
)

// crashRecSize derives a record's size from its index: a few bytes to ~300 KiB,
// a third of them small.
func crashRecSize(seed, idx uint64) int {
	x := splitmix64(seed ^ idx*0x9e3779b97f4a7c15)
	if x%3 == 0 {
		return 8 + int(x>>8)%1000
	}
	return 8 + int(x>>8)%(300<<10)
}

// TestCrashChild is the process TestCrash kills: it appends with FsyncAlways
// from several goroutines and prints "synced <index> <end>" once each Append
// returned.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("helper process of TestCrash")
	}
	start, _ := strconv.ParseUint(os.Getenv(crashEnvStart), 10, 64)
	seed, _ := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
	// An orphan (the parent died) must not live on.
	time.AfterFunc(20*time.Second, func() { os.Exit(4) })
	s, err := Open(Options{Dir: dir, Fsync: FsyncAlways, SegmentSize: 1 << 20})
	if err != nil {
		fmt.Printf("error open: %v\n", err)
		os.Exit(3)
	}
	var (
		next  atomic.Uint64
		bytes atomic.Int64
		outMu sync.Mutex
	)
	next.Store(start)
	workers := 2 + int(seed%3)
	for w := 0; w < workers; w++ {
		go func() {
			for bytes.Load() < crashRoundBytes {
				idx := next.Add(1) - 1
				size := crashRecSize(seed, idx)
				end, err := s.Append(makeRec(idx, size))
				if err != nil {
					fmt.Printf("error append %d: %v\n", idx, err)
					os.Exit(3)
				}
				bytes.Add(int64(size))
				outMu.Lock()
				// os.Stdout is unbuffered: the line is out once Fprintf returns.
				fmt.Fprintf(os.Stdout, "synced %d %d\n", idx, end)
				outMu.Unlock()
			}
		}()
	}
	select {} // until SIGKILL
}

// TestCrash kills a child appending with FsyncAlways at random moments, 20
// times on the same directory, and checks after each kill that recovery keeps
// every record reported synced, byte for byte, at the position reported, and
// that nothing but valid records is ever read back. Every other round it also
// cuts the last segment after the last reported record, as a power loss could
// (a killed process alone rarely leaves a torn write), so that recovery has
// torn tails to cut.
func TestCrash(t *testing.T) {
	if os.Getenv(crashEnvDir) != "" {
		t.Skip("inside the child")
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	synced := make(map[uint64]Pos) // every record ever reported synced
	const rounds = 20
	var kills, appended int
	for round := 0; round < rounds; round++ {
		start := uint64(round) * crashRoundIndexes
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			crashEnvDir+"="+dir,
			crashEnvStart+"="+strconv.FormatUint(start, 10),
			crashEnvSeed+"="+strconv.FormatUint(seed, 10))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		type line struct {
			idx uint64
			end Pos
		}
		linesc := make(chan []line, 1)
		errc := make(chan string, 1)
		go func() {
			var lines []line
			br := bufio.NewReader(out)
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					break // a line cut by the kill was never completely reported
				}
				f := strings.Fields(l)
				if len(f) == 3 && f[0] == "synced" {
					idx, err1 := strconv.ParseUint(f[1], 10, 64)
					end, err2 := strconv.ParseUint(f[2], 10, 64)
					if err1 == nil && err2 == nil {
						lines = append(lines, line{idx, Pos(end)})
						continue
					}
				}
				select {
				case errc <- strings.TrimSpace(l):
				default:
				}
			}
			linesc <- lines
		}()
		delay := time.Duration(5+rng.IntN(296)) * time.Millisecond
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		werr := cmd.Wait()
		lines := <-linesc
		select {
		case l := <-errc:
			t.Fatalf("round %d: child said %q", round, l)
		default:
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			kills++
		} else {
			t.Fatalf("round %d: child was not killed by SIGKILL: %v", round, werr)
		}
		for _, l := range lines {
			if l.idx < start || l.idx >= start+crashRoundIndexes {
				t.Fatalf("round %d: child reported index %d outside its range", round, l.idx)
			}
			synced[l.idx] = l.end
		}
		appended += len(lines)

		// Every other round, also lose part of what was not reported synced,
		// as a power loss may: cut the last segment at a random point after
		// the last reported end, often inside a record.
		var powerCut string
		if round%2 == 1 {
			var maxEnd Pos
			for _, end := range synced {
				maxEnd = max(maxEnd, end)
			}
			segs, err := ListSegments(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) > 0 {
				last := segs[len(segs)-1]
				lo := int64(0)
				if maxEnd > last.Base {
					lo = int64(maxEnd - last.Base)
				}
				if last.Size > lo {
					at := lo + rng.Int64N(last.Size-lo)
					if err := os.Truncate(last.Path, at); err != nil {
						t.Fatal(err)
					}
					powerCut = fmt.Sprintf(", power loss cut %d bytes", last.Size-at)
				}
			}
		}

		// Recovery, then a full read-only scan.
		s, err := Open(Options{Dir: dir, Fsync: FsyncNever})
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		cut := s.Stats().RecoveredCutBytes
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		found := make(map[uint64]Pos)
		var last Pos
		err = Scan(dir, func(rec []byte, end Pos) error {
			idx, err := checkRec(rec)
			if err != nil {
				return fmt.Errorf("record ending at %d: %w", end, err)
			}
			if want := crashRecSize(seed, idx); len(rec) != want {
				return fmt.Errorf("record %d ending at %d is %d bytes, want %d", idx, end, len(rec), want)
			}
			if _, dup := found[idx]; dup {
				return fmt.Errorf("record %d appears twice", idx)
			}
			if end <= last {
				return fmt.Errorf("record %d ends at %d, not after the previous end %d", idx, end, last)
			}
			found[idx], last = end, end
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: Scan after recovery: %v", round, err)
		}
		// Recovery left no garbage after the last valid record.
		segs, err := ListSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		lastSeg := segs[len(segs)-1]
		if end := lastSeg.Base + Pos(lastSeg.Size); end != last && lastSeg.Size != segHeaderSize {
			t.Fatalf("round %d: after recovery the last segment ends at %d, the last record at %d", round, end, last)
		}
		for idx, end := range synced {
			got, ok := found[idx]
			if !ok {
				t.Fatalf("round %d: record %d reported synced at %d is gone after recovery", round, idx, end)
			}
			if got != end {
				t.Fatalf("round %d: record %d reported synced at %d is at %d after recovery", round, idx, end, got)
			}
		}
		t.Logf("round %d: killed after %v, %d reported synced%s, %d records on disk, recovery cut %d bytes", round, delay, len(lines), powerCut, len(found), cut)
	}
	if kills != rounds || appended == 0 {
		t.Fatalf("%d kills, %d synced records: the test did not exercise crashes", kills, appended)
	}
}
