package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Reader reads a spool's durable records in order and keeps a named, durable
// cursor (cursors/<name>.cur). At most one Reader per name is open at a time.
// A Reader is not safe for concurrent use by several goroutines, except that
// the spool's retention goroutine may inspect it at any time.
type Reader struct {
	s    *Spool
	name string

	// mu serializes the reader's methods and guards its fields.
	mu sync.Mutex
	// pos is the end of the last record delivered. It is written with both mu
	// and s.mu held, so retention reads it under s.mu alone: it deletes a
	// segment and takes every reader's position in one critical section, and
	// Next drops a record whose segment was deleted while it read it, so each
	// record is counted either as read or as expired, never both.
	pos    Pos
	closed bool
	// f is the open segment file with base fbase; hdrErr is its header's
	// validation error.
	f      *os.File
	fbase  Pos
	hdrErr error
	sr     segReader
}

// Reader opens the reader called name (1 to 128 characters from
// [A-Za-z0-9._-]). An existing name resumes at its persisted cursor; a new one
// starts at the oldest retained record, and its cursor file is written at once
// so retention counts what it misses from then on.
func (s *Spool) Reader(name string) (*Reader, error) {
	if err := checkCursorName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("cannot open spool reader %q: %w", name, os.ErrClosed)
	}
	if s.readers[name] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("cannot open spool reader %q: it is already open", name)
	}
	p, ok := s.cursors[name]
	write := !ok
	if !ok {
		p = s.segs[0].base
	} else if next := s.writtenLocked(); p > next {
		// The segments were removed by hand; reading from the oldest record
		// duplicates rather than waits for positions that will hold other data.
		s.logf("cursor of reader %q is at %d, past the end %d; restarting it at the oldest record", name, p, next)
		p = s.segs[0].base
		write = true
	}
	r := &Reader{s: s, name: name, pos: p}
	s.readers[name] = r
	s.mu.Unlock()
	if write {
		if err := writeCursorFile(s.cdir, name, p); err != nil {
			s.mu.Lock()
			delete(s.readers, name)
			s.mu.Unlock()
			return nil, err
		}
		s.mu.Lock()
		s.cursors[name] = p
		s.mu.Unlock()
	}
	return r, nil
}

// DeleteCursor forgets the reader called name: its cursor file is removed, so
// retention no longer reports records it misses. The reader must not be open.
func (s *Spool) DeleteCursor(name string) error {
	if err := checkCursorName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readers[name] != nil {
		return fmt.Errorf("cannot delete cursor of spool reader %q: it is open", name)
	}
	path := filepath.Join(s.cdir, name+cursorExt)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot delete spool cursor: %w", err)
	}
	delete(s.cursors, name)
	return syncDir(s.cdir)
}

// location is where a reader's next record is.
type location struct {
	// pos is the reader's position, moved past deleted segments (and, with
	// errNextSegment, to the start of the next segment).
	pos Pos
	// seg is the index in s.segs of the segment with the given base and size
	// that holds the next record, which starts at file offset off and is
	// readable up to file offset lim. With errNextSegment, it is the segment
	// the reader leaves.
	seg      int
	base     Pos
	size     int64
	off, lim int64
}

// errNextSegment tells Next that the reader has read its segment to the end
// and moves to the next one.
var errNextSegment = errors.New("next segment")

// locateLocked finds the next durable record after pos. It returns ErrNoData
// (with loc.pos set) when there is none yet. With step set, it stops at the
// end of a segment with errNextSegment, so that Next validates the header of
// every segment it passes; otherwise it moves on by itself.
func (s *Spool) locateLocked(pos Pos, step bool) (location, error) {
	if s.closed {
		return location{pos: pos}, os.ErrClosed
	}
	l := location{pos: pos}
	if pos < s.segs[0].base {
		// Retention deleted the segment holding pos; the records skipped were
		// reported through OnExpire.
		l.pos = s.segs[0].base
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].base > l.pos }) - 1
	for {
		seg := s.segs[i]
		off := int64(l.pos - seg.base)
		if off < segHeaderSize {
			off = segHeaderSize
		}
		lim := seg.size
		if d := int64(s.durable) - int64(seg.base); d < lim {
			lim = d
		}
		l.seg, l.base, l.size, l.off, l.lim = i, seg.base, seg.size, off, lim
		if off < lim {
			return l, nil
		}
		if i == len(s.segs)-1 || lim < seg.size {
			return l, ErrNoData
		}
		i++
		l.pos = s.segs[i].base
		if step {
			return l, errNextSegment
		}
	}
}

// Next returns the next durable record and its end position, and moves the
// reader past it. rec aliases the reader's buffer: it is valid until the next
// call of Next, SkipSegment or Close, and must not be modified.
//
// Next returns ErrNoData when every durable record has been read (it does not
// block; see Wait). A record or segment header that fails validation gives an
// error wrapping ErrCorrupt (a *CorruptError with the segment and offset); the
// reader stays in front of it, so Next fails again until SkipSegment. After
// the spool is closed, Next returns an error wrapping os.ErrClosed. When
// retention deleted the segment the reader was in, Next goes on at the oldest
// retained record.
//
// Next does not allocate while it reads within one segment.
func (r *Reader) Next() (rec []byte, end Pos, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, r.pos, fmt.Errorf("cannot read from spool reader %q: %w", r.name, os.ErrClosed)
	}
	s := r.s
	for {
		s.mu.Lock()
		l, err := s.locateLocked(r.pos, true)
		if err != errNextSegment {
			r.pos = l.pos
		} else if l.base < s.segs[0].base {
			r.pos = s.segs[0].base
		}
		s.mu.Unlock()
		if err == ErrNoData {
			return nil, r.pos, ErrNoData
		}
		if err != nil && err != errNextSegment {
			return nil, r.pos, fmt.Errorf("cannot read from spool reader %q: %w", r.name, err)
		}
		if r.f == nil || r.fbase != l.base {
			err := r.openSegment(l.base, l.size)
			if errors.Is(err, fs.ErrNotExist) {
				// Retention takes a segment out of the list before it
				// removes the file: if it is out of the list, retention
				// deleted it after locateLocked, so locate again (which
				// moves on: retention never deletes the active segment).
				// A file missing while still listed is an error.
				s.mu.Lock()
				gone := l.base < s.segs[0].base
				s.mu.Unlock()
				if gone {
					continue
				}
			}
			if err != nil {
				return nil, r.pos, err
			}
		}
		if r.hdrErr != nil {
			return nil, r.pos, r.hdrErr
		}
		if err == errNextSegment {
			// The segment we leave has a valid header (checked above).
			s.mu.Lock()
			if l.base >= s.segs[0].base {
				r.pos = l.pos
			}
			s.mu.Unlock()
			continue
		}
		rec, next, err := r.sr.record(l.off, l.lim)
		if err != nil {
			path := segPath(s.dir, l.base)
			var re *recordError
			if errors.As(err, &re) {
				return nil, r.pos, &CorruptError{Segment: path, Offset: l.off, Reason: re.reason}
			}
			return nil, r.pos, fmt.Errorf("cannot read spool segment %q: %w", path, err)
		}
		s.mu.Lock()
		if l.base < s.segs[0].base {
			// Retention deleted the segment while we read: it counted this
			// record as expired (it took our position when it deleted), so it
			// must not be delivered too. Locate again: that jumps.
			s.mu.Unlock()
			continue
		}
		r.pos = l.base + Pos(next)
		s.mu.Unlock()
		return rec, r.pos, nil
	}
}

// openSegment switches the reader to the segment with the given base and
// validates its header.
func (r *Reader) openSegment(base Pos, lim int64) error {
	r.closeFile()
	path := segPath(r.s.dir, base)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open spool segment for reader %q: %w", r.name, err)
	}
	r.f, r.fbase, r.hdrErr = f, base, nil
	r.sr.reset(f)
	h, err := r.sr.fill(0, segHeaderSize, lim)
	if err != nil {
		r.hdrErr = &CorruptError{Segment: path, Reason: fmt.Sprintf("cannot read segment header: %v", err)}
	} else if reason := checkSegHeader(h, base); reason != "" {
		r.hdrErr = &CorruptError{Segment: path, Reason: reason}
	}
	return nil
}

func (r *Reader) closeFile() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// SkipSegment moves the reader past the rest of its current segment (the one
// whose record or header Next reported as corrupt), to go on after
// ErrCorrupt. In the active segment it moves to the
// durable end. The records skipped are not reported anywhere: the caller
// should count them (Position before and after gives the byte range).
func (r *Reader) SkipSegment() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("cannot skip in spool reader %q: %w", r.name, os.ErrClosed)
	}
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.locateLocked(r.pos, true)
	if err == ErrNoData {
		r.pos = l.pos
		return nil
	}
	if err != nil && err != errNextSegment {
		return fmt.Errorf("cannot skip in spool reader %q: %w", r.name, err)
	}
	if l.seg+1 < len(s.segs) {
		r.pos = s.segs[l.seg+1].base
	} else if s.durable > r.pos {
		r.pos = s.durable
	}
	r.closeFile()
	return nil
}

// Wait blocks until the reader has a durable record to read (or a deleted
// segment to jump over), ctx is done (returning ctx.Err()), or the spool is
// closed (an error wrapping os.ErrClosed).
func (r *Reader) Wait(ctx context.Context) error {
	r.mu.Lock()
	pos, closed := r.pos, r.closed
	r.mu.Unlock()
	if closed {
		return fmt.Errorf("cannot wait in spool reader %q: %w", r.name, os.ErrClosed)
	}
	s := r.s
	for {
		s.mu.Lock()
		_, err := s.locateLocked(pos, false)
		if err != ErrNoData {
			s.mu.Unlock()
			if err != nil {
				return fmt.Errorf("cannot wait in spool reader %q: %w", r.name, err)
			}
			return nil
		}
		ch := s.waitChLocked()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Commit persists p as the reader's cursor (atomically and durably), so a
// reader opened under the same name after Close or a crash resumes after p.
// p must be a position Next returned (or the reader's start position), at or
// before the reader's position.
func (r *Reader) Commit(p Pos) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("cannot commit spool reader %q: %w", r.name, os.ErrClosed)
	}
	if p > r.pos {
		return fmt.Errorf("cannot commit spool reader %q at %d: past its position %d", r.name, p, r.pos)
	}
	s := r.s
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("cannot commit spool reader %q: %w", r.name, os.ErrClosed)
	}
	if err := writeCursorFile(s.cdir, r.name, p); err != nil {
		return err
	}
	s.mu.Lock()
	s.cursors[r.name] = p
	s.mu.Unlock()
	return nil
}

// Position returns the end of the last record Next returned (or the start
// position of the reader).
func (r *Reader) Position() Pos {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos
}

// Name returns the reader's name.
func (r *Reader) Name() string { return r.name }

// Close releases the reader without committing; its name can be opened again.
// Its cursor file stays, so it remains registered for retention's OnExpire.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.closeFile()
	r.sr = segReader{}
	s := r.s
	s.mu.Lock()
	if s.readers[r.name] == r {
		delete(s.readers, r.name)
	}
	s.mu.Unlock()
	return nil
}
