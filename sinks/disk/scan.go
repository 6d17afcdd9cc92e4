package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// SegmentInfo describes one segment file, as listed by [ListSegments].
type SegmentInfo struct {
	// Path is the segment file's path.
	Path string
	// Base is the position of the segment's first byte (its header).
	Base Pos
	// Size is the file size in bytes, header included; Base+Size is the end
	// position of the segment's last record.
	Size int64
	// ModTime is the time of the last write.
	ModTime time.Time
}

// ListSegments returns the segment files in dir, oldest (lowest base) first. It
// ignores other files, reads no segment content and does not need the spool to
// be closed; a segment deleted while listing is left out. A directory that does
// not exist is an error.
func ListSegments(dir string) ([]SegmentInfo, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list spool segments in %q: %w", dir, err)
	}
	var segs []SegmentInfo
	for _, e := range ents {
		base, ok := parseSegName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by retention since ReadDir
		}
		if err != nil {
			return nil, fmt.Errorf("cannot stat spool segment %q: %w", filepath.Join(dir, e.Name()), err)
		}
		segs = append(segs, SegmentInfo{Path: filepath.Join(dir, e.Name()), Base: base, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Base < segs[j].Base })
	return segs, nil
}

// Scan calls fn for every valid record of the spool in dir, in order, with the
// record's end position. rec aliases an internal buffer and is valid only
// during the call. Scan opens no Spool and takes no lock, so it works while a
// node is appending to dir (it sees the segments that existed when it started,
// and skips any that retention deletes meanwhile).
//
// An invalid or incomplete record in the last segment is taken as a torn (or
// still being written) tail and ends the scan quietly, as [Open]'s recovery
// would cut it. Anything invalid in an earlier segment ends the scan with an
// error wrapping [ErrCorrupt], after fn has seen every record before it. An
// error returned by fn ends the scan and is returned as is.
func Scan(dir string, fn func(rec []byte, end Pos) error) error {
	segs, err := ListSegments(dir)
	if err != nil {
		return err
	}
	var sr segReader
	for i, seg := range segs {
		err := scanSegment(&sr, seg.Path, seg.Base, i == len(segs)-1, fn)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// scanSegment calls fn for every valid record of one segment file. With
// last set, the first invalid record ends the segment quietly; otherwise it is
// reported as a *CorruptError.
func scanSegment(sr *segReader, path string, base Pos, last bool, fn func(rec []byte, end Pos) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open spool segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot stat spool segment: %w", err)
	}
	size := fi.Size()
	sr.reset(f)
	_, err = walkSegment(sr, path, base, size, func(rec []byte, end int64) error {
		return fn(rec, base+Pos(end))
	})
	var ce *CorruptError
	if last && errors.As(err, &ce) {
		return nil
	}
	return err
}

// walkSegment reads the header and then every record of the segment read by sr
// up to size bytes, calling fn with each payload and its end offset in the
// file. It returns the end offset of the last valid record (0 when the header
// is invalid). An invalid header or record is reported as a *CorruptError; an
// error returned by fn is returned as is.
func walkSegment(sr *segReader, path string, base Pos, size int64, fn func(rec []byte, end int64) error) (int64, error) {
	if size < segHeaderSize {
		return 0, &CorruptError{Segment: path, Reason: fmt.Sprintf("file is %d bytes, shorter than the segment header", size)}
	}
	h, err := sr.fill(0, segHeaderSize, size)
	if err != nil {
		return 0, fmt.Errorf("cannot read header of spool segment %q: %w", path, err)
	}
	if reason := checkSegHeader(h, base); reason != "" {
		return 0, &CorruptError{Segment: path, Reason: reason}
	}
	off := int64(segHeaderSize)
	for off < size {
		rec, next, err := sr.record(off, size)
		if err != nil {
			var re *recordError
			if errors.As(err, &re) {
				return off, &CorruptError{Segment: path, Offset: off, Reason: re.reason}
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				// The file shrank under us: only a torn tail is cut that way.
				return off, &CorruptError{Segment: path, Offset: off, Reason: "file shrank while reading"}
			}
			return off, fmt.Errorf("cannot read spool segment %q: %w", path, err)
		}
		if fn != nil {
			if err := fn(rec, next); err != nil {
				return off, err
			}
		}
		off = next
	}
	return off, nil
}

// ReadCursors returns the persisted position of every named cursor in the spool
// in dir. It does not need the spool to be closed. A directory without cursors
// gives an empty map. An unreadable or invalid cursor file is left out of the
// map and reported in the returned error (joined, one per file), so the valid
// cursors are still usable.
func ReadCursors(dir string) (map[string]Pos, error) {
	cdir := filepath.Join(dir, cursorDir)
	ents, err := os.ReadDir(cdir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Pos{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list spool cursors in %q: %w", cdir, err)
	}
	curs := make(map[string]Pos, len(ents))
	var errs []error
	for _, e := range ents {
		name, ok := parseCursorFileName(e.Name())
		if !ok {
			continue
		}
		p, err := readCursorFile(filepath.Join(cdir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		curs[name] = p
	}
	return curs, errors.Join(errs...)
}

// ScanSegment calls fn for every valid record of one segment listed by
// [ListSegments]. With last set (the newest segment, possibly still being
// written) an invalid record ends it quietly, as in [Scan]; otherwise it is
// an error wrapping [ErrCorrupt]. It lets a reader look at the newest
// segments first without reading the whole spool.
func ScanSegment(seg SegmentInfo, last bool, fn func(rec []byte, end Pos) error) error {
	var sr segReader
	return scanSegment(&sr, seg.Path, seg.Base, last, fn)
}
