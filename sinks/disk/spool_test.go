package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// splitmix64 is a tiny deterministic generator for verifiable record content.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// makeRec returns a record of size bytes (at least 8) whose content is derived
// from idx: the index itself, then pseudo-random bytes.
func makeRec(idx uint64, size int) []byte {
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b, idx)
	x := idx * 0x51ed2701
	for i := 8; i < size; i += 8 {
		x = splitmix64(x)
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x)
		copy(b[i:], w[:])
	}
	return b
}

// checkRec verifies a record made by makeRec and returns its index.
func checkRec(rec []byte) (uint64, error) {
	if len(rec) < 8 {
		return 0, fmt.Errorf("record of %d bytes is too short", len(rec))
	}
	idx := binary.LittleEndian.Uint64(rec)
	if want := makeRec(idx, len(rec)); !bytes.Equal(rec, want) {
		return idx, fmt.Errorf("record %d (%d bytes) has wrong content", idx, len(rec))
	}
	return idx, nil
}

func openT(t testing.TB, opts Options) *Spool {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type scanned struct {
	rec []byte
	end Pos
}

func scanAll(t testing.TB, dir string) []scanned {
	t.Helper()
	var out []scanned
	if err := Scan(dir, func(rec []byte, end Pos) error {
		out = append(out, scanned{append([]byte(nil), rec...), end})
		return nil
	}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

// readAll reads r until ErrNoData.
func readAll(t testing.TB, r *Reader) []scanned {
	t.Helper()
	var out []scanned
	for {
		rec, end, err := r.Next()
		if err == ErrNoData {
			return out
		}
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(out), err)
		}
		out = append(out, scanned{append([]byte(nil), rec...), end})
	}
}

func TestParseFsyncPolicy(t *testing.T) {
	f := func(in string, want FsyncPolicy, wantErr bool) {
		t.Helper()
		got, err := ParseFsyncPolicy(in)
		if (err != nil) != wantErr {
			t.Fatalf("ParseFsyncPolicy(%q) error = %v, want error %v", in, err, wantErr)
		}
		if err == nil && got != want {
			t.Fatalf("ParseFsyncPolicy(%q) = %v, want %v", in, got, want)
		}
		if err == nil && got.String() != in {
			t.Fatalf("%v.String() = %q, want %q", got, got.String(), in)
		}
	}
	f("always", FsyncAlways, false)
	f("interval", FsyncInterval, false)
	f("never", FsyncNever, false)
	f("sometimes", 0, true)
	f("", 0, true)
	if FsyncPolicy(0) != FsyncInterval {
		t.Fatalf("the zero FsyncPolicy is %v, want interval (the default)", FsyncPolicy(0))
	}
}

func TestRoundTripAcrossRotations(t *testing.T) {
	for _, pol := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(pol.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, Options{Dir: dir, SegmentSize: 4096, Fsync: pol, FsyncInterval: time.Millisecond})
			sizes := []int{100, 8, 1000, 3000, 4096, 9000, 50, 4000, 200, 1, 300, 70000, 12}
			var want []scanned
			var prev Pos
			for i, n := range sizes {
				var rec []byte
				if n >= 8 {
					rec = makeRec(uint64(i), n)
				} else {
					rec = bytes.Repeat([]byte{byte(i)}, n)
				}
				end, err := s.Append(rec)
				if err != nil {
					t.Fatalf("Append %d: %v", i, err)
				}
				if end <= prev {
					t.Fatalf("Append %d: end %d not after previous end %d", i, end, prev)
				}
				prev = end
				want = append(want, scanned{rec, end})
			}
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if d := s.Durable(); d != prev {
				t.Fatalf("Durable() = %d after Sync, want %d", d, prev)
			}
			st := s.Stats()
			if st.Segments < 6 || st.Appended != uint64(len(sizes)) || st.NextPos != prev {
				t.Fatalf("Stats = %+v: want >= 6 segments, %d appended, next %d", st, len(sizes), prev)
			}
			r, err := s.Reader("rt")
			if err != nil {
				t.Fatalf("Reader: %v", err)
			}
			check := func(what string, got []scanned) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
				}
				for i := range want {
					if !bytes.Equal(got[i].rec, want[i].rec) || got[i].end != want[i].end {
						t.Fatalf("%s: record %d = %d bytes ending at %d, want %d bytes ending at %d", what, i, len(got[i].rec), got[i].end, len(want[i].rec), want[i].end)
					}
				}
			}
			check("Reader", readAll(t, r))
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			check("Scan", scanAll(t, dir))
			segs, err := ListSegments(dir)
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for i, seg := range segs {
				if seg.Size > 4096 {
					var recs int
					scanSegment(&segReader{}, seg.Path, seg.Base, false, func([]byte, Pos) error { recs++; return nil })
					if recs != 1 {
						t.Fatalf("segment %d is %d bytes, larger than SegmentSize, and holds %d records, want 1", i, seg.Size, recs)
					}
				}
				if i > 0 && segs[i-1].Base+Pos(segs[i-1].Size) != seg.Base {
					t.Fatalf("segment %d starts at %d, previous ends at %d", i, seg.Base, segs[i-1].Base+Pos(segs[i-1].Size))
				}
				total += seg.Size
			}
			if total != st.Bytes {
				t.Fatalf("segments hold %d bytes, Stats.Bytes = %d", total, st.Bytes)
			}
		})
	}
}

func TestAppendRejects(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir()})
	f := func(n int) {
		t.Helper()
		if _, err := s.Append(make([]byte, n)); err == nil {
			t.Fatalf("Append of %d bytes succeeded", n)
		}
	}
	f(0)
	f(MaxRecordSize + 1)
	if st := s.Stats(); st.Appended != 0 || st.NextPos != segHeaderSize {
		t.Fatalf("rejected appends changed the spool: %+v", st)
	}
}

func TestCursorsPersistAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentSize: 2048, Fsync: FsyncNever}
	s := openT(t, opts)
	var ends []Pos
	for i := 0; i < 30; i++ {
		end, err := s.Append(makeRec(uint64(i), 200))
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, end)
	}
	a, err := s.Reader("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reader("a"); err == nil {
		t.Fatalf("second open Reader with the same name succeeded")
	}
	for i := 0; i < 17; i++ {
		if _, _, err := a.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Commit(ends[20]); err == nil {
		t.Fatalf("Commit past the reader's position succeeded")
	}
	if err := a.Commit(ends[11]); err != nil {
		t.Fatal(err)
	}
	b, err := s.Reader("b") // registered at the start, never reads
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ends[11]); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Commit after spool Close = %v, want os.ErrClosed", err)
	}
	curs, err := ReadCursors(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(curs) != 2 || curs["a"] != ends[11] || curs["b"] != 0 {
		t.Fatalf("ReadCursors = %v, want a=%d b=0", curs, ends[11])
	}

	s = openT(t, opts)
	a, err = s.Reader("a")
	if err != nil {
		t.Fatal(err)
	}
	if p := a.Position(); p != ends[11] {
		t.Fatalf("reopened reader at %d, want %d", p, ends[11])
	}
	got := readAll(t, a)
	if len(got) != 30-12 {
		t.Fatalf("reopened reader read %d records, want %d", len(got), 30-12)
	}
	for i, g := range got {
		idx, err := checkRec(g.rec)
		if err != nil || idx != uint64(12+i) || g.end != ends[12+i] {
			t.Fatalf("record %d after reopen: index %d end %d err %v, want index %d end %d", i, idx, g.end, err, 12+i, ends[12+i])
		}
	}
	if err := s.DeleteCursor("a"); err == nil {
		t.Fatalf("DeleteCursor of an open reader succeeded")
	}
	a.Close()
	if err := s.DeleteCursor("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reader("../x"); err == nil {
		t.Fatalf("Reader accepted a name with a slash")
	}
	if curs, _ := ReadCursors(dir); len(curs) != 1 {
		t.Fatalf("after DeleteCursor ReadCursors = %v", curs)
	}
}

func TestReaderSeesOnlyDurable(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir(), Fsync: FsyncInterval, FsyncInterval: time.Hour})
	r, err := s.Reader("r")
	if err != nil {
		t.Fatal(err)
	}
	d0 := s.Durable()
	end, err := s.Append(makeRec(1, 500))
	if err != nil {
		t.Fatal(err)
	}
	if s.Durable() != d0 {
		t.Fatalf("Durable moved to %d without an fsync", s.Durable())
	}
	if _, _, err := r.Next(); err != ErrNoData {
		t.Fatalf("Next before fsync = %v, want ErrNoData", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := r.Wait(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Wait before fsync = %v, want DeadlineExceeded", err)
	}
	if err := s.WaitDurable(ctx, end); err != context.DeadlineExceeded {
		t.Fatalf("WaitDurable before fsync = %v, want DeadlineExceeded", err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Sync()
	}()
	if err := r.Wait(context.Background()); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := s.WaitDurable(context.Background(), end); err != nil {
		t.Fatalf("WaitDurable: %v", err)
	}
	rec, got, err := r.Next()
	if err != nil || got != end {
		t.Fatalf("Next after Sync = %d, %v; want end %d", got, err, end)
	}
	if _, err := checkRec(rec); err != nil {
		t.Fatal(err)
	}
	// A spool closing wakes waiting readers.
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Close()
	}()
	if err := r.Wait(context.Background()); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Wait across Close = %v, want os.ErrClosed", err)
	}
	if _, err := s.Append([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Append after Close = %v, want os.ErrClosed", err)
	}
	if _, _, err := r.Next(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Next after Close = %v, want os.ErrClosed", err)
	}
}

func TestIntervalSyncs(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir(), Fsync: FsyncInterval, FsyncInterval: 5 * time.Millisecond})
	end, err := s.Append(makeRec(1, 100))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitDurable(ctx, end); err != nil {
		t.Fatalf("the interval fsync did not make the record durable: %v", err)
	}
}

func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, Fsync: FsyncAlways, SegmentSize: 1 << 20})
	const workers, per = 8, 100
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				end, err := s.Append(makeRec(uint64(w*per+i), 1000))
				if err != nil {
					errc <- err
					return
				}
				if d := s.Durable(); d < end {
					errc <- fmt.Errorf("Append returned end %d before it was durable (%d)", end, d)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	st := s.Stats()
	t.Logf("%d appends, %d fsyncs", st.Appended, st.Fsyncs)
	if st.Appended != workers*per {
		t.Fatalf("Appended = %d, want %d", st.Appended, workers*per)
	}
	if st.Fsyncs >= st.Appended {
		t.Fatalf("%d fsyncs for %d appends: no group commit", st.Fsyncs, st.Appended)
	}
	s.Close()
	seen := make(map[uint64]bool)
	for _, r := range scanAll(t, dir) {
		idx, err := checkRec(r.rec)
		if err != nil || seen[idx] {
			t.Fatalf("record %d: err %v, duplicate %v", idx, err, seen[idx])
		}
		seen[idx] = true
	}
	if len(seen) != workers*per {
		t.Fatalf("Scan found %d records, want %d", len(seen), workers*per)
	}
}

// TestConcurrentReadWrite runs appenders and a waiting reader together (under
// -race this checks the locking) and checks the reader gets every record once,
// in position order.
func TestConcurrentReadWrite(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir(), Fsync: FsyncInterval, FsyncInterval: time.Millisecond, SegmentSize: 64 << 10})
	const workers, per = 3, 300
	r, err := s.Reader("live")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		seen := make(map[uint64]bool)
		var last Pos
		for len(seen) < workers*per {
			rec, end, err := r.Next()
			if err == ErrNoData {
				if err := r.Wait(context.Background()); err != nil {
					done <- err
					return
				}
				continue
			}
			if err != nil {
				done <- err
				return
			}
			idx, err := checkRec(rec)
			if err != nil || seen[idx] || end <= last {
				done <- fmt.Errorf("record %d at %d (last %d): err %v duplicate %v", idx, end, last, err, seen[idx])
				return
			}
			seen[idx], last = true, end
		}
		done <- nil
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := s.Append(makeRec(uint64(w*per+i), 64+(i*37)%3000)); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("reader did not get every record")
	}
}

// buildSpool appends n records of size bytes to a fresh spool in dir with
// FsyncNever and closes it; it returns the records' ends.
func buildSpool(t *testing.T, dir string, segSize int64, n, size int) []Pos {
	t.Helper()
	s, err := Open(Options{Dir: dir, SegmentSize: segSize, Fsync: FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	var ends []Pos
	for i := 0; i < n; i++ {
		end, err := s.Append(makeRec(uint64(i), size))
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, end)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return ends
}

// copySpool copies the segment files of src into a new temporary directory.
func copySpool(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	segs, err := ListSegments(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range segs {
		b, err := os.ReadFile(seg.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(seg.Path)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// checkRecovered opens dir, checks that exactly the first n records of
// buildSpool survive and that cut bytes were cut, then appends and reads back.
func checkRecovered(t *testing.T, dir string, n int, ends []Pos, cut int64) {
	t.Helper()
	var logged []string
	s, err := Open(Options{Dir: dir, Fsync: FsyncNever, SegmentSize: 1 << 20, Logf: func(format string, args ...any) {
		logged = append(logged, fmt.Sprintf(format, args...))
	}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if st := s.Stats(); st.RecoveredCutBytes != cut {
		t.Fatalf("RecoveredCutBytes = %d, want %d", st.RecoveredCutBytes, cut)
	}
	if cut > 0 && len(logged) == 0 {
		t.Fatalf("recovery cut %d bytes without logging it", cut)
	}
	segs, err := ListSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	lastSeg := segs[len(segs)-1]
	wantEnd := lastSeg.Base + segHeaderSize
	if n > 0 && ends[n-1] > wantEnd {
		wantEnd = ends[n-1]
	}
	if got := lastSeg.Base + Pos(lastSeg.Size); got != wantEnd {
		t.Fatalf("after recovery the last segment ends at %d, want %d (the end of the last valid record)", got, wantEnd)
	}
	extra := makeRec(1000, 333)
	end, err := s.Append(extra)
	if err != nil {
		t.Fatalf("Append after recovery: %v", err)
	}
	r, err := s.Reader("check")
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, r)
	if len(got) != n+1 {
		t.Fatalf("after recovery %d records, want %d", len(got), n+1)
	}
	for i := 0; i < n; i++ {
		idx, err := checkRec(got[i].rec)
		if err != nil || idx != uint64(i) || got[i].end != ends[i] {
			t.Fatalf("record %d: index %d end %d err %v; want end %d", i, idx, got[i].end, err, ends[i])
		}
	}
	if !bytes.Equal(got[n].rec, extra) || got[n].end != end {
		t.Fatalf("appended record after recovery came back wrong")
	}
}

func TestRecoveryTornTail(t *testing.T) {
	src := t.TempDir()
	const n, size = 12, 60
	// Two segments, so the last record sits in the second one.
	ends := buildSpool(t, src, 16+8*(envSize+size), n, size)
	segs, _ := ListSegments(src)
	if len(segs) != 2 {
		t.Fatalf("setup made %d segments, want 2", len(segs))
	}
	last := segs[1]
	recStart := last.Size - envSize - size
	for c := recStart; c < last.Size; c++ {
		dir := copySpool(t, src)
		if err := os.Truncate(filepath.Join(dir, filepath.Base(last.Path)), c); err != nil {
			t.Fatal(err)
		}
		checkRecovered(t, dir, n-1, ends, c-recStart)
	}
	for i := recStart; i < last.Size; i++ {
		dir := copySpool(t, src)
		path := filepath.Join(dir, filepath.Base(last.Path))
		b, _ := os.ReadFile(path)
		b[i] ^= 0x20
		os.WriteFile(path, b, 0o644)
		checkRecovered(t, dir, n-1, ends, last.Size-recStart)
	}
	// Garbage appended after a valid last record is cut too.
	dir := copySpool(t, src)
	path := filepath.Join(dir, filepath.Base(last.Path))
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, 1, 0, 0, 0, 9, 9), 0o644)
	checkRecovered(t, dir, n, ends, 6)
	// A segment cut inside its header (a crash during rotation) holds nothing.
	for c := int64(0); c < segHeaderSize; c++ {
		dir := copySpool(t, src)
		if err := os.Truncate(filepath.Join(dir, filepath.Base(last.Path)), c); err != nil {
			t.Fatal(err)
		}
		checkRecovered(t, dir, 8, ends, c)
	}
}

func TestCorruptSealedSegment(t *testing.T) {
	dir := t.TempDir()
	const n, size = 12, 60
	ends := buildSpool(t, dir, 16+4*(envSize+size), n, size) // 3 segments of 4
	segs, _ := ListSegments(dir)
	if len(segs) != 3 {
		t.Fatalf("setup made %d segments, want 3", len(segs))
	}
	// Flip a payload byte of the second record of the second segment.
	b, _ := os.ReadFile(segs[1].Path)
	off := int64(segHeaderSize + envSize + size)
	b[off+envSize+10] ^= 1
	os.WriteFile(segs[1].Path, b, 0o644)

	var got int
	err := Scan(dir, func(rec []byte, end Pos) error { got++; return nil })
	var ce *CorruptError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Segment != segs[1].Path || ce.Offset != off || got != 5 {
		t.Fatalf("Scan = %v after %d records; want ErrCorrupt at %s offset %d after 5", err, got, segs[1].Path, off)
	}

	s := openT(t, Options{Dir: dir})
	r, err := s.Reader("r")
	if err != nil {
		t.Fatal(err)
	}
	var idxs []uint64
	for {
		rec, _, err := r.Next()
		if errors.Is(err, ErrCorrupt) {
			if !errors.As(err, &ce) || ce.Offset != off {
				t.Fatalf("Next error %v, want offset %d", err, off)
			}
			if _, _, err2 := r.Next(); !errors.Is(err2, ErrCorrupt) {
				t.Fatalf("Next after ErrCorrupt without skipping = %v, want ErrCorrupt again", err2)
			}
			if err := r.SkipSegment(); err != nil {
				t.Fatal(err)
			}
			if r.Position() != ends[7] {
				t.Fatalf("SkipSegment moved to %d, want %d", r.Position(), ends[7])
			}
			continue
		}
		if err == ErrNoData {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		idx, err := checkRec(rec)
		if err != nil {
			t.Fatal(err)
		}
		idxs = append(idxs, idx)
	}
	if want := []uint64{0, 1, 2, 3, 4, 8, 9, 10, 11}; fmt.Sprint(idxs) != fmt.Sprint(want) {
		t.Fatalf("read %v, want %v", idxs, want)
	}

	// A sealed segment with a bad header is corrupt at offset 0.
	s.Close()
	b, _ = os.ReadFile(segs[0].Path)
	b[0] = 'X'
	os.WriteFile(segs[0].Path, b, 0o644)
	err = Scan(dir, func([]byte, Pos) error { return nil })
	if !errors.As(err, &ce) || ce.Offset != 0 || ce.Segment != segs[0].Path {
		t.Fatalf("Scan with a bad header = %v", err)
	}
}

func TestOpenLocksDir(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir})
	if s2, err := Open(Options{Dir: dir}); err == nil {
		s2.Close()
		t.Fatalf("second Open of the same directory succeeded")
	}
	s.Close()
	s2, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestOpenRejectsOverlap(t *testing.T) {
	dir := t.TempDir()
	buildSpool(t, dir, 16+2*(envSize+60), 5, 60)
	segs, _ := ListSegments(dir)
	b, _ := os.ReadFile(segs[0].Path)
	os.WriteFile(segs[0].Path, append(b, b[segHeaderSize:]...), 0o644)
	if s, err := Open(Options{Dir: dir}); err == nil {
		s.Close()
		t.Fatalf("Open accepted overlapping segments")
	}
}

// TestAppendAllocs pins Append and Reader.Next at zero allocations.
func TestAppendAllocs(t *testing.T) {
	for _, pol := range []FsyncPolicy{FsyncNever, FsyncInterval} {
		s := openT(t, Options{Dir: t.TempDir(), Fsync: pol, FsyncInterval: time.Hour, SegmentSize: 1 << 30})
		small, big := make([]byte, 1000), make([]byte, scratchSize+100)
		if n := testing.AllocsPerRun(200, func() {
			if _, err := s.Append(small); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(big); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Fatalf("Append with fsync %v: %v allocs/op, want 0", pol, n)
		}
		s.Sync()
		r, _ := s.Reader("allocs")
		r.Next() // opens the segment and sizes the buffer
		if n := testing.AllocsPerRun(100, func() {
			if _, _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Fatalf("Reader.Next: %v allocs/op, want 0", n)
		}
	}
}

// TestFsyncFailure injects a failed fsync: the records it should have covered
// are reported not durable (to WaitDurable and FsyncAlways appenders), the
// next Append goes to a fresh segment, and later records become durable.
func TestFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	var logged int
	s := openT(t, Options{Dir: dir, Fsync: FsyncInterval, FsyncInterval: time.Hour, Logf: func(string, ...any) { logged++ }})
	end1, err := s.Append(makeRec(1, 100))
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.failSyncLocked(end1, errors.New("injected EIO"))
	s.mu.Unlock()
	if err := s.WaitDurable(context.Background(), end1); err == nil || !strings.Contains(err.Error(), "injected EIO") {
		t.Fatalf("WaitDurable of a record whose fsync failed = %v, want the fsync error", err)
	}
	segs := s.Stats().Segments
	end2, err := s.Append(makeRec(2, 100))
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Segments != segs+1 || st.FsyncErrors != 1 || logged == 0 {
		t.Fatalf("after a failed fsync: %+v, %d log lines; want a new segment, 1 fsync error, a log line", st, logged)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitDurable(context.Background(), end2); err != nil {
		t.Fatalf("WaitDurable of a later record: %v", err)
	}
	if err := s.WaitDurable(context.Background(), end1); err == nil {
		t.Fatalf("WaitDurable forgot the failed fsync")
	}
}

// sealRec appends to rec the CRC32C of its bytes, as a frame ends.
func sealRec(rec []byte) []byte {
	return binary.LittleEndian.AppendUint32(rec, crc32.Checksum(rec, castagnoli))
}

func TestCRCResidue(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 63, 64, 1000, 1 << 20} {
		rec := sealRec(makeRec(uint64(n), max(n, 8))[:n])
		if got := crc32.Checksum(rec, castagnoli); got != crcResidue {
			t.Errorf("CRC32C of %d bytes and their CRC = %#x, want the residue %#x", n, got, uint32(crcResidue))
		}
	}
}

// TestAppendSealed checks that AppendSealed writes exactly the bytes Append
// writes for a record ending with its own CRC32C, and that a record that
// does not is reported corrupt when read, never returned.
func TestAppendSealed(t *testing.T) {
	plain, sealed := t.TempDir(), t.TempDir()
	sp := openT(t, Options{Dir: plain})
	ss := openT(t, Options{Dir: sealed})
	// Sizes on both sides of the spool's scratch buffer, so both write paths
	// are covered.
	for i, size := range []int{8, 100, 4096, 3 << 20, 17} {
		rec := sealRec(makeRec(uint64(i), size))
		e1, err := sp.Append(rec)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := ss.AppendSealed(rec)
		if err != nil {
			t.Fatal(err)
		}
		if e1 != e2 {
			t.Fatalf("record %d: Append ends at %d, AppendSealed at %d", i, e1, e2)
		}
	}
	sp.Close()
	ss.Close()
	a, _ := ListSegments(plain)
	b, _ := ListSegments(sealed)
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("segments: %d and %d, want 1 each", len(a), len(b))
	}
	ab, _ := os.ReadFile(a[0].Path)
	bb, _ := os.ReadFile(b[0].Path)
	if !bytes.Equal(ab, bb) {
		t.Fatal("AppendSealed wrote other bytes than Append for the same sealed records")
	}

	// A record whose last four bytes are not its CRC: the envelope claims
	// the residue, so every reader must refuse it.
	// Two records per segment, so the bad one is in a sealed segment: at
	// the end of the last one it would read as a torn tail instead.
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, SegmentSize: segHeaderSize + 2*(envSize+68)})
	good := sealRec(makeRec(1, 64))
	bad := sealRec(makeRec(2, 64))
	bad[10] ^= 1
	for _, rec := range [][]byte{good, bad, good, good} {
		if _, err := s.AppendSealed(rec); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	var got int
	err := Scan(dir, func(rec []byte, _ Pos) error {
		if !bytes.Equal(rec, good) {
			t.Errorf("Scan returned a record that is not the good one")
		}
		got++
		return nil
	})
	if !errors.Is(err, ErrCorrupt) || got != 1 {
		t.Fatalf("Scan = %v after %d records, want ErrCorrupt after 1", err, got)
	}
}
