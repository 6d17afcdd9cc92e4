package disk

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// retentionLoop runs retention every RetentionInterval and after rotations,
// when a limit is set.
func (s *Spool) retentionLoop(enabled bool) {
	defer s.wg.Done()
	if !enabled {
		return
	}
	t := time.NewTicker(s.opts.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.retReq:
		}
		s.enforceRetention()
	}
}

// enforceRetention deletes sealed segments, oldest first, while the total size
// exceeds MaxBytes or the oldest is older than MaxAge. Before a segment's file
// is removed, its records that some registered reader has not read are passed
// to OnExpire. It returns how many segments it deleted.
func (s *Spool) enforceRetention() int {
	s.retMu.Lock()
	defer s.retMu.Unlock()
	deleted := 0
	for {
		s.mu.Lock()
		if len(s.segs) < 2 {
			s.mu.Unlock()
			break
		}
		v := s.segs[0]
		bySize := s.opts.MaxBytes > 0 && s.totalBytes > s.opts.MaxBytes
		byAge := s.opts.MaxAge > 0 && s.now().Sub(v.sealedAt) > s.opts.MaxAge
		if (!bySize && !byAge) || s.heldLocked(v) {
			s.mu.Unlock()
			break
		}
		// Out of the list and every reader's position taken in one critical
		// section: a reader that read past a position reported here has
		// delivered those records, and one that is reading from v right now
		// drops the record (see Reader.pos).
		s.segs = append(s.segs[:0], s.segs[1:]...)
		s.totalBytes -= v.size
		slowest, registered := Pos(0), false
		for name, p := range s.cursors {
			if r := s.readers[name]; r != nil {
				p = r.pos
			}
			if !registered || p < slowest {
				slowest, registered = p, true
			}
		}
		for name, r := range s.readers {
			if _, ok := s.cursors[name]; !ok && (!registered || r.pos < slowest) {
				slowest, registered = r.pos, true
			}
		}
		s.mu.Unlock()

		path := segPath(s.dir, v.base)
		end := v.base + Pos(v.size)
		var expired uint64
		if registered && slowest < end {
			expired = s.expire(path, v, slowest)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.logf("retention cannot delete segment %q: %v", path, err)
		}
		deleted++
		s.mu.Lock()
		s.stats.ExpiredSegments++
		s.stats.ExpiredBytes += uint64(v.size)
		s.stats.ExpiredRecords += expired
		s.mu.Unlock()
		reason := "MaxBytes"
		if !bySize {
			reason = "MaxAge"
		}
		s.logf("retention (%s) deleted segment %q (%d bytes, positions %d to %d), %d records unread", reason, path, v.size, v.base, end, expired)
	}
	if deleted > 0 {
		if err := syncDir(s.dir); err != nil {
			s.logf("retention: %v", err)
		}
	}
	return deleted
}

// expire passes to OnExpire every record of the segment v that ends after
// slowest, and returns how many there were.
func (s *Spool) expire(path string, v segInfo, slowest Pos) uint64 {
	var n uint64
	var sr segReader
	err := scanSegment(&sr, path, v.base, false, func(rec []byte, end Pos) error {
		if end > slowest {
			n++
			if s.opts.OnExpire != nil {
				s.opts.OnExpire(rec)
			}
		}
		return nil
	})
	if err != nil {
		s.logf("retention cannot read all unread records of segment %q before deleting it (%d reported): %v", path, n, err)
	}
	return n
}
