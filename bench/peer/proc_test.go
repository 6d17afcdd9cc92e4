package peer

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// The command name "a) b (c" holds a space and both parentheses;
	// cstime is -1.
	st, ok := ParseStat([]byte("42 (a) b (c)) S 1 40 40 0 -1 4194560 100 0 0 0 250 150 30 -1 20 0 1 0 100 1000 10\n"))
	want := Stat{Pid: 42, State: 'S', Pgrp: 40, Utime: 250, Stime: 150, Cutime: 30, Cstime: 0}
	if !ok || st != want {
		t.Fatalf("ParseStat = %+v, %v; want %+v", st, ok, want)
	}
	if st.CPU() != 4 || st.CPUWithChildren() != 4.3 {
		t.Fatalf("CPU %g, with children %g; want 4 and 4.3 (cstime -1 counts as 0)", st.CPU(), st.CPUWithChildren())
	}
	for _, bad := range []string{"1 (x) S 1", ")", "", "x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14", "1 (y) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14",
		"1 (y) S 1 x 3 4 5 6 7 8 9 10 11 12 13 14", ") 1 (y S 1 2 3 4 5 6 7 8 9 10 11 12 13 14"} {
		if st, ok := ParseStat([]byte(bad)); ok {
			t.Errorf("ParseStat(%q) = %+v, want not ok", bad, st)
		}
	}
}

// FuzzParseStat: a stat line parses or not, without panicking, and a
// parsed one has a state letter.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (a) b (c)) S 1 40 40 0 -1 4194560 100 0 0 0 250 150 -1 30 20 0 1 0 100 1000 10"))
	f.Add([]byte("1 (x) S 1"))
	f.Add([]byte(")"))
	f.Add([]byte(")("))
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, ok := ParseStat(b); ok && st.State == 0 {
			t.Fatalf("parsed %+v with no state", st)
		}
	})
}

func TestReadStat(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The state is that of the main thread, which may sleep while
	// another reads: alive, not a zombie.
	if st.Pid != os.Getpid() || st.Pgrp != syscall.Getpgrp() || !strings.ContainsRune("RSD", rune(st.State)) {
		t.Fatalf("ReadStat(self) = %+v, want pid %d, pgrp %d, state R, S or D", st, os.Getpid(), syscall.Getpgrp())
	}
	if _, err := ReadStat(-1); err == nil {
		t.Fatal("ReadStat(-1) succeeded")
	}
}

func TestProcStats(t *testing.T) {
	deadline := time.Now().Add(time.Second)
	for x := 0; time.Now().Before(deadline); x++ { // burn some CPU
		_ = fmt.Sprint(x)
	}
	cpu, rss := ProcStats(os.Getpid())
	if cpu <= 0 || rss < 1024 {
		t.Fatalf("ProcStats(self) = %g s, %d KiB", cpu, rss)
	}
	// The peak only grows: read later, it is at least what ProcStats saw.
	if later := PeakRSS(os.Getpid()); later < rss {
		t.Fatalf("ProcStats(self) peak RSS %d KiB, PeakRSS read after it %d KiB", rss, later)
	}
	if cpu, rss := ProcStats(-1); cpu != 0 || rss != 0 {
		t.Fatalf("ProcStats(-1) = %g, %d", cpu, rss)
	}
}
