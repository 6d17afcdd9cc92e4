package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"testing"
)

// memTempDir returns a temporary directory on tmpfs (/dev/shm) when there is
// one, where fsync costs nothing, so fuzzing exercises parsing rather than the
// disk; otherwise t.TempDir().
func memTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "trawl-spool-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// segBytes returns a well-formed segment file with the given base and records.
func segBytes(base Pos, recs ...[]byte) []byte {
	b := appendSegHeader(nil, base)
	for _, r := range recs {
		var h [envSize]byte
		putEnvelope(h[:], r, false)
		b = append(append(b, h[:]...), r...)
	}
	return b
}

// checkEnvelope verifies that rec, reported to end at file offset end, is a
// record of data with a matching envelope.
func checkEnvelope(t *testing.T, data []byte, rec []byte, end int64) {
	t.Helper()
	off := end - int64(len(rec))
	if off < segHeaderSize+envSize || end > int64(len(data)) {
		t.Fatalf("record of %d bytes ending at %d lies outside the %d-byte segment", len(rec), end, len(data))
	}
	if !bytes.Equal(data[off:end], rec) {
		t.Fatalf("record ending at %d differs from the segment's bytes", end)
	}
	if n := binary.LittleEndian.Uint32(data[off-envSize:]); int(n) != len(rec) {
		t.Fatalf("record ending at %d is %d bytes, its envelope says %d", end, len(rec), n)
	}
	if sum := binary.LittleEndian.Uint32(data[off-4:]); sum != crc32.Checksum(rec, castagnoli) {
		t.Fatalf("record ending at %d does not match its CRC", end)
	}
}

// FuzzSegment writes arbitrary bytes as a segment file and checks that Scan,
// Open and Reader never panic and never return a record that does not match
// its CRC, that Scan and Open's recovery agree on the valid prefix, and that
// appending and reading back works after recovery.
func FuzzSegment(f *testing.F) {
	valid := segBytes(0, []byte("first record"), bytes.Repeat([]byte{0xab}, 300), []byte("x"))
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(valid[:segHeaderSize+3])
	f.Add(valid[:segHeaderSize])
	f.Add(valid[:7])
	f.Add([]byte{})
	flipped := append([]byte(nil), valid...)
	flipped[segHeaderSize+envSize+2] ^= 1
	f.Add(flipped)
	f.Add(append(append([]byte(nil), valid...), make([]byte, 64)...))
	f.Add(segBytes(5, []byte("wrong base")))
	f.Add(append(appendSegHeader(nil, 0), 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0))
	f.Add(bytes.Repeat([]byte("TRSP"), 40))

	f.Fuzz(checkSegmentBytes)
}

// checkSegmentBytes is FuzzSegment's body.
func checkSegmentBytes(t *testing.T, data []byte) {
	{
		// As the last segment: a bad tail ends the scan quietly.
		dir := memTempDir(t)
		if err := os.WriteFile(segPath(dir, 0), data, 0o644); err != nil {
			t.Fatal(err)
		}
		var recs [][]byte
		var ends []Pos
		err := Scan(dir, func(rec []byte, end Pos) error {
			checkEnvelope(t, data, rec, int64(end))
			recs = append(recs, append([]byte(nil), rec...))
			ends = append(ends, end)
			return nil
		})
		if err != nil {
			t.Fatalf("Scan of a lone segment: %v", err)
		}

		// As a sealed segment, followed by a valid one: the same prefix, then
		// ErrCorrupt unless the whole file is valid.
		dir2 := memTempDir(t)
		next := Pos(max(len(data), 1))
		os.WriteFile(segPath(dir2, 0), data, 0o644)
		os.WriteFile(segPath(dir2, next), segBytes(next, []byte("after")), 0o644)
		var n2 int
		err = Scan(dir2, func(rec []byte, end Pos) error {
			if n2 < len(recs) {
				if !bytes.Equal(rec, recs[n2]) || end != ends[n2] {
					t.Fatalf("sealed scan record %d differs from the lone scan", n2)
				}
			} else if string(rec) != "after" {
				t.Fatalf("sealed scan returned an extra record %q", rec)
			}
			n2++
			return nil
		})
		wholeValid := len(data) >= segHeaderSize && (len(recs) == 0 && len(data) == segHeaderSize && checkSegHeader(data, 0) == "" || len(ends) > 0 && int(ends[len(ends)-1]) == len(data))
		if wholeValid {
			if err != nil || n2 != len(recs)+1 {
				t.Fatalf("sealed scan of a valid segment: %d records, %v", n2, err)
			}
		} else if !errors.Is(err, ErrCorrupt) || n2 != len(recs) {
			t.Fatalf("sealed scan of an invalid segment: %d records (want %d), %v (want ErrCorrupt)", n2, len(recs), err)
		}

		// Recovery keeps exactly the scanned prefix; then append and read back.
		s, err := Open(Options{Dir: dir, Fsync: FsyncNever})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		extra := [][]byte{[]byte("appended after recovery"), bytes.Repeat([]byte{7}, 1000)}
		for _, e := range extra {
			if _, err := s.Append(e); err != nil {
				t.Fatalf("Append after recovery: %v", err)
			}
		}
		r, err := s.Reader("fuzz")
		if err != nil {
			t.Fatal(err)
		}
		want := append(append([][]byte(nil), recs...), extra...)
		for i, w := range want {
			rec, end, err := r.Next()
			if err != nil {
				t.Fatalf("Next %d after recovery: %v", i, err)
			}
			if !bytes.Equal(rec, w) || (i < len(ends) && end != ends[i]) {
				t.Fatalf("record %d after recovery differs", i)
			}
		}
		if _, _, err := r.Next(); err != ErrNoData {
			t.Fatalf("Next past the end = %v, want ErrNoData", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		var n3 int
		if err := Scan(dir, func(rec []byte, end Pos) error {
			if n3 >= len(want) || !bytes.Equal(rec, want[n3]) {
				t.Fatalf("Scan after recovery: record %d differs", n3)
			}
			n3++
			return nil
		}); err != nil || n3 != len(want) {
			t.Fatalf("Scan after recovery: %d records, %v; want %d", n3, err, len(want))
		}

		// A reader over the sealed copy never returns a bad record either.
		s2, err := Open(Options{Dir: dir2, Fsync: FsyncNever})
		if err != nil {
			t.Fatalf("Open with the segment sealed: %v", err)
		}
		defer s2.Close()
		r2, _ := s2.Reader("fuzz")
		got, skipped := 0, false
		for {
			rec, _, err := r2.Next()
			if err == ErrNoData {
				break
			}
			if errors.Is(err, ErrCorrupt) {
				if wholeValid || skipped || got != len(recs) {
					t.Fatalf("reader: ErrCorrupt after %d records (valid prefix %d, whole valid %v, skipped %v): %v", got, len(recs), wholeValid, skipped, err)
				}
				if err := r2.SkipSegment(); err != nil {
					t.Fatal(err)
				}
				skipped = true
				continue
			}
			if err != nil {
				t.Fatalf("reader: %v", err)
			}
			if got < len(recs) && !bytes.Equal(rec, recs[got]) || got == len(recs) && string(rec) != "after" || got > len(recs) {
				t.Fatalf("reader over the sealed copy: record %d differs", got)
			}
			got++
		}
		if got != len(recs)+1 || skipped == wholeValid {
			t.Fatalf("reader over the sealed copy read %d records (want %d), skipped %v (whole valid %v)", got, len(recs)+1, skipped, wholeValid)
		}
	}
}
