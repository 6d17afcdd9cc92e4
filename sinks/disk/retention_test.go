package disk

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// expireRecorder collects the indexes of the records passed to OnExpire.
type expireRecorder struct {
	mu   sync.Mutex
	idxs []uint64
	errs []error
}

func (e *expireRecorder) onExpire(rec []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	idx, err := checkRec(rec)
	if err != nil {
		e.errs = append(e.errs, err)
	}
	e.idxs = append(e.idxs, idx)
}

func (e *expireRecorder) got() ([]uint64, []error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]uint64(nil), e.idxs...), e.errs
}

func span(from, to int) []uint64 {
	var out []uint64
	for i := from; i < to; i++ {
		out = append(out, uint64(i))
	}
	return out
}

// retentionSpool makes a spool of 5 segments of 4 records (indexes 0..19, 100
// bytes each, the last segment active). Reader "a" reads readA records (none
// when negative: not registered); reader "b" reads readB records and is
// closed, registered only by its cursor file (committed at its position).
func retentionSpool(t *testing.T, rec *expireRecorder, readA, readB int) (*Spool, *Reader) {
	t.Helper()
	const size = 100
	s := openT(t, Options{Dir: t.TempDir(), Fsync: FsyncNever, SegmentSize: segHeaderSize + 4*(envSize+size), OnExpire: rec.onExpire})
	for i := 0; i < 20; i++ {
		if _, err := s.Append(makeRec(uint64(i), size)); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Segments != 5 {
		t.Fatalf("setup made %d segments, want 5", st.Segments)
	}
	read := func(name string, n int) *Reader {
		r, err := s.Reader(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if _, _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	if readB >= 0 {
		b := read("b", readB)
		if err := b.Commit(b.Position()); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	var a *Reader
	if readA >= 0 {
		a = read("a", readA)
	}
	return s, a
}

func TestRetentionBySize(t *testing.T) {
	f := func(readA, readB int, wantExpired []uint64) {
		t.Helper()
		var rec expireRecorder
		s, a := retentionSpool(t, &rec, readA, readB)
		// Keep two segments: three are deleted (records 0..11).
		s.mu.Lock()
		s.opts.MaxBytes = 2 * s.segs[0].size
		s.mu.Unlock()
		if n := s.enforceRetention(); n != 3 {
			t.Fatalf("enforceRetention deleted %d segments, want 3", n)
		}
		got, errs := rec.got()
		if len(errs) > 0 {
			t.Fatalf("OnExpire got bad records: %v", errs)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantExpired) {
			t.Fatalf("OnExpire got records %v, want %v", got, wantExpired)
		}
		st := s.Stats()
		if st.ExpiredRecords != uint64(len(wantExpired)) || st.ExpiredSegments != 3 || st.Segments != 2 {
			t.Fatalf("Stats = %+v, want %d expired records, 3 expired segments, 2 left", st, len(wantExpired))
		}
		segs, _ := ListSegments(s.dir)
		if len(segs) != 2 || segs[0].Base != st.FirstPos {
			t.Fatalf("after retention the directory holds %v, want 2 segments from %d", segs, st.FirstPos)
		}
		// A second pass has nothing to do.
		if n := s.enforceRetention(); n != 0 {
			t.Fatalf("second enforceRetention deleted %d segments", n)
		}
		if a == nil {
			return
		}
		// The reader goes on at the oldest retained record (or where it was).
		first := uint64(12)
		if readA > 12 {
			first = uint64(readA)
		}
		var idxs []uint64
		for _, r := range readAll(t, a) {
			idx, err := checkRec(r.rec)
			if err != nil {
				t.Fatal(err)
			}
			idxs = append(idxs, idx)
		}
		if fmt.Sprint(idxs) != fmt.Sprint(span(int(first), 20)) {
			t.Fatalf("reader after retention read %v, want %v", idxs, span(int(first), 20))
		}
		// Reopened under its name, "b" jumps too.
		if readB >= 0 {
			b, err := s.Reader("b")
			if err != nil {
				t.Fatal(err)
			}
			rec, _, err := b.Next()
			if err != nil {
				t.Fatal(err)
			}
			want := uint64(max(12, readB))
			if idx, _ := checkRec(rec); idx != want {
				t.Fatalf("cursor-only reader resumed at record %d, want %d", idx, want)
			}
		}
	}
	f(-1, -1, nil)          // nobody registered: nothing is lost
	f(6, -1, span(6, 12))   // a read 6: records 6..11 unread
	f(6, 2, span(2, 12))    // b (cursor only) is slower: each record once
	f(0, 9, span(0, 12))    // a registered but read nothing
	f(12, -1, nil)          // a read everything deleted
	f(15, 15, nil)          // both past the deleted segments
	f(-1, 4, span(4, 12))   // only a cursor file
	f(3, 7, span(3, 12))    // a slower than b
	f(11, 11, span(11, 12)) // one unread record
	f(20, -1, nil)          // caught up
}

func TestRetentionByAge(t *testing.T) {
	var rec expireRecorder
	s := openT(t, Options{Dir: t.TempDir(), Fsync: FsyncNever, SegmentSize: segHeaderSize + 2*(envSize+100), OnExpire: rec.onExpire})
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	setNow := func(tm time.Time) {
		s.mu.Lock()
		s.now = func() time.Time { return tm }
		s.mu.Unlock()
	}
	setNow(t0)
	r, err := s.Reader("r")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ { // segments [0 1] [2 3] sealed at t0, [4 5] active
		s.Append(makeRec(uint64(i), 100))
	}
	r.Next() // read record 0
	setNow(t0.Add(time.Hour))
	for i := 6; i < 10; i++ { // [4 5] sealed at +1h, [6 7] at +1h, [8 9] active
		s.Append(makeRec(uint64(i), 100))
	}
	s.mu.Lock()
	s.opts.MaxAge = 30 * time.Minute
	s.mu.Unlock()
	setNow(t0.Add(20 * time.Minute))
	if n := s.enforceRetention(); n != 0 {
		t.Fatalf("deleted %d segments younger than MaxAge", n)
	}
	setNow(t0.Add(time.Hour + 10*time.Minute))
	if n := s.enforceRetention(); n != 2 {
		t.Fatalf("deleted %d segments, want the 2 sealed at t0", n)
	}
	got, _ := rec.got()
	if fmt.Sprint(got) != fmt.Sprint(span(1, 4)) {
		t.Fatalf("OnExpire got %v, want %v", got, span(1, 4))
	}
	setNow(t0.Add(3 * time.Hour))
	if n := s.enforceRetention(); n != 2 {
		t.Fatalf("deleted %d segments, want every sealed one (2)", n)
	}
	if st := s.Stats(); st.Segments != 1 || st.ExpiredRecords != 7 {
		t.Fatalf("Stats = %+v, want the active segment left and 7 expired records", st)
	}
	rec0, _, err := r.Next()
	if idx, _ := checkRec(rec0); err != nil || idx != 8 {
		t.Fatalf("reader after retention: record %d, %v; want 8", idx, err)
	}
}

// TestRetentionBackground lets the retention goroutine delete segments while a
// reader reads and appenders append, and checks that every record is either
// read or reported expired, exactly once.
func TestRetentionBackground(t *testing.T) {
	var rec expireRecorder
	s := openT(t, Options{Dir: t.TempDir(), Fsync: FsyncNever, SegmentSize: 8 << 10, MaxBytes: 32 << 10,
		RetentionInterval: time.Millisecond, OnExpire: rec.onExpire})
	r, err := s.Reader("slow")
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			if _, err := s.Append(makeRec(uint64(i), 100+i%700)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var read []uint64
	for i := 0; ; i++ {
		b, _, err := r.Next()
		if err == ErrNoData {
			select {
			case <-done:
			default:
				time.Sleep(time.Millisecond)
				continue
			}
			if _, _, err = r.Next(); err == ErrNoData {
				break
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		idx, err := checkRec(b)
		if err != nil {
			t.Fatal(err)
		}
		read = append(read, idx)
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // fall behind
		}
	}
	expired, errs := rec.got()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	seen := make(map[uint64]int)
	for _, i := range read {
		seen[i]++
	}
	for _, i := range expired {
		seen[i]++
	}
	// Everything after the reader's last read record that is still retained
	// was never deleted; everything before was read or expired, once.
	var missing, dup int
	for i := uint64(0); i < n; i++ {
		switch seen[i] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	st := s.Stats()
	t.Logf("read %d, expired %d, segments deleted %d", len(read), len(expired), st.ExpiredSegments)
	if st.ExpiredSegments == 0 || len(expired) == 0 {
		t.Fatalf("retention deleted nothing unread (stats %+v): the test did not exercise it", st)
	}
	if missing != 0 || dup != 0 || st.ExpiredRecords != uint64(len(expired)) {
		t.Fatalf("%d records neither read nor expired, %d counted twice, ExpiredRecords %d vs %d reported", missing, dup, st.ExpiredRecords, len(expired))
	}
}

// TestHoldStopsRetentionAndFillsSpool checks the bounded spool a delivery
// sink relies on: retention does not delete what a holding cursor has not
// committed past, Append then refuses with ErrFull instead of growing, and
// space comes back once the reader commits.
func TestHoldStopsRetentionAndFillsSpool(t *testing.T) {
	var rec expireRecorder
	s, _ := retentionSpool(t, &rec, -1, -1)
	r, err := s.Reader("kafka")
	if err != nil {
		t.Fatal(err)
	}
	s.Hold("kafka")
	s.mu.Lock()
	seg := s.segs[0].size
	s.opts.MaxBytes = 3 * seg
	s.mu.Unlock()
	// Read (but do not commit) half: read-ahead must not release anything.
	for range 10 {
		if _, _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.enforceRetention(); n != 0 {
		t.Fatalf("retention deleted %d segments a holding cursor had not committed past", n)
	}
	if _, err := s.Append(makeRec(20, 100)); !errors.Is(err, ErrFull) {
		t.Fatalf("Append over MaxBytes with a held oldest segment = %v, want ErrFull", err)
	}
	if st := s.Stats(); st.FullRefusals != 1 || st.Segments != 5 {
		t.Fatalf("Stats = %+v, want 1 refusal and all 5 segments", st)
	}
	// Commit past the first three segments (12 records): retention takes
	// the spool back to MaxBytes (two segments go) and, the oldest left no
	// longer being held, appends are taken again.
	r.Close()
	r, err = s.Reader("kafka")
	if err != nil {
		t.Fatal(err)
	}
	var end Pos
	for range 12 {
		if _, end, err = r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Commit(end); err != nil {
		t.Fatal(err)
	}
	if n := s.enforceRetention(); n != 2 {
		t.Fatalf("after the commit retention deleted %d segments, want 2", n)
	}
	if _, err := s.Append(makeRec(20, 100)); err != nil {
		t.Fatalf("Append after the holding reader committed: %v", err)
	}
	if got, _ := rec.got(); len(got) != 0 {
		t.Fatalf("records %v expired although a holding cursor needed them", got)
	}
}
