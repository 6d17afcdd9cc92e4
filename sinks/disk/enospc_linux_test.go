package disk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestENOSPC fills a 1 MiB tmpfs: Append must fail with an error wrapping
// ENOSPC, leave nothing of the failed record behind (in the active segment or
// a half-created next one), and work again once space is freed. With 31 KiB
// segments every 30 KiB record rotates, so rotation fails too.
func TestENOSPC(t *testing.T) {
	for _, segSize := range []int64{200 << 10, 31 << 10} {
		t.Run(fmt.Sprint(segSize), func(t *testing.T) { testENOSPC(t, segSize) })
	}
}

func testENOSPC(t *testing.T, segSize int64) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: mounting a 1 MiB tmpfs to fill needs root")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("skipping: cannot mount a tmpfs on %s: %v", mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("cannot unmount the test tmpfs %s: %v", mnt, err)
		}
	})
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 400<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "spool")
	s := openT(t, Options{Dir: dir, SegmentSize: segSize, Fsync: FsyncAlways})
	var want [][]byte
	var fails, rotateFails int
	for i := 0; i < 300 && fails < 6; i++ {
		size := 30 << 10
		switch {
		case fails >= 4:
			size = int(segSize) // needs a new segment, whose header needs a page
		case fails > 0:
			size = 100 + i // small ones may still fit in a partly used page
		}
		rec := makeRec(uint64(i), size)
		end, err := s.Append(rec)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Append on a full disk: %v, want an error wrapping ENOSPC", err)
			}
			if strings.Contains(err.Error(), "cannot rotate") {
				rotateFails++
			}
			fails++
			// Nothing of the failed record may be visible, in the spool's
			// state or on disk.
			st := s.Stats()
			var onDisk int64
			segs, _ := ListSegments(dir)
			for _, seg := range segs {
				onDisk += seg.Size
			}
			if onDisk != st.Bytes {
				t.Fatalf("after ENOSPC the segments hold %d bytes, the spool counts %d", onDisk, st.Bytes)
			}
			continue
		}
		if end != s.Durable() {
			t.Fatalf("Append returned %d, durable is %d", end, s.Durable())
		}
		want = append(want, rec)
	}
	if fails == 0 || rotateFails == 0 {
		t.Fatalf("the 1 MiB tmpfs never filled up (%d failed appends, %d failed rotations)", fails, rotateFails)
	}
	check := func(what string) {
		t.Helper()
		got := scanAll(t, dir)
		if len(got) != len(want) {
			t.Fatalf("%s: Scan found %d records, want %d", what, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i].rec, want[i]) {
				t.Fatalf("%s: record %d differs", what, i)
			}
		}
	}
	check("while full")
	t.Logf("%d records fit, %d appends failed with ENOSPC", len(want), fails)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		rec := makeRec(uint64(1000+i), 30<<10)
		if _, err := s.Append(rec); err != nil {
			t.Fatalf("Append after space returned: %v", err)
		}
		want = append(want, rec)
	}
	r, err := s.Reader("after")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r); len(got) != len(want) {
		t.Fatalf("reader found %d records, want %d", len(got), len(want))
	}
	r.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after space returned")
}
