package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/sinks/disk"
)

// SpoolOptions configures a [SpoolSource].
type SpoolOptions struct {
	// Group names the source's spool cursor, "consumer-<Group>". Required;
	// 1 to 119 characters from [A-Za-z0-9._-].
	Group string
	// MaxPollEvents is Poll's batch bound when it is called with max <= 0
	// (default 10,000).
	MaxPollEvents int
	// Hold makes the spool keep every segment this cursor has not
	// committed past (disk.Spool.Hold): nothing is lost to retention, but a
	// consumer that stops reading fills the spool, which then refuses new
	// frames and slows the inputs. Without it retention may delete what the
	// group has not read; the spool's OnExpire reports it.
	Hold bool
	// Logf, if not nil, receives corrupt frames and segments skipped.
	Logf func(format string, args ...any)
}

// SpoolSource reads the events of a local disk spool with a durable cursor
// of its own per group: every group reads every event (fan-out), and a
// group is one reader, in one process (the spool is one process's: a
// group cannot be split between processes as a Kafka group can). Create
// it with [NewSpoolSource] on a spool the process has open, or with
// [OpenSpoolSource] on a directory no running node holds.
type SpoolSource struct {
	opts SpoolOptions
	sp   *disk.Spool
	own  bool
	r    *disk.Reader
	dec  *Decoder

	// msgs holds the events decoded from the frames last read; msgs[:next]
	// have been returned. starts[i] is the position where the frame of
	// msgs[i] starts: committing there delivers the frame again.
	msgs   []Message
	starts []disk.Pos
	next   int
	buf    []byte

	readPos   disk.Pos // end of the last frame read
	commitPos disk.Pos // end of the last frame whose events were all returned
	committed disk.Pos

	messages, skipped, commits atomic.Uint64
	closed                     bool
}

// SpoolCursor returns the spool cursor name of a consumer group.
func SpoolCursor(group string) string { return "consumer-" + group }

// NewSpoolSource opens the group's cursor on sp, which stays the caller's:
// Close does not close it. A new group starts at the oldest retained
// frame; an existing one resumes after its last commit.
func NewSpoolSource(sp *disk.Spool, opts SpoolOptions) (*SpoolSource, error) {
	if opts.Group == "" {
		return nil, errors.New("spool source needs a consumer group")
	}
	if opts.MaxPollEvents <= 0 {
		opts.MaxPollEvents = 10_000
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	dec, err := NewDecoder()
	if err != nil {
		return nil, err
	}
	name := SpoolCursor(opts.Group)
	if opts.Hold {
		sp.Hold(name)
	}
	r, err := sp.Reader(name)
	if err != nil {
		return nil, fmt.Errorf("cannot open the spool cursor of consumer group %q: %w", opts.Group, err)
	}
	p := r.Position()
	return &SpoolSource{opts: opts, sp: sp, r: r, dec: dec, readPos: p, commitPos: p, committed: p}, nil
}

// OpenSpoolSource opens the spool in dir (a node's data directory or the
// spool directory inside it) for the group and returns a source that
// closes the spool on Close. It fails while a node runs on dir, for a node
// holds its spool exclusively: consume a running node's events from its
// Kafka topics, or from inside the node with [NewSpoolSource]. Opening
// recovers the spool as the node's start would (a torn tail left by a
// crash is cut).
func OpenSpoolSource(dir string, opts SpoolOptions) (*SpoolSource, error) {
	sdir, err := ResolveSpoolDir(dir)
	if err != nil {
		return nil, err
	}
	segs, err := disk.ListSegments(sdir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("cannot open spool: no spool segments in %q", dir)
	}
	sp, err := disk.Open(disk.Options{Dir: sdir, Fsync: disk.FsyncNever, Logf: opts.Logf})
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("%w (a node is running on it: stop it, or read its Kafka topics)", err)
	}
	if err != nil {
		return nil, err
	}
	s, err := NewSpoolSource(sp, opts)
	if err != nil {
		sp.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// Poll implements [Source]. It returns the events of whole frames, in spool
// order, except when max cuts a frame: the rest of it comes with the next
// Poll. A corrupt frame is logged and counted in Stats.Skipped, after the
// events before the damage; a corrupt segment is skipped to the next.
func (s *SpoolSource) Poll(ctx context.Context, max int) ([]Message, error) {
	if max <= 0 {
		max = s.opts.MaxPollEvents
	}
	if s.next == len(s.msgs) {
		s.msgs, s.starts, s.next, s.buf = s.msgs[:0], s.starts[:0], 0, s.buf[:0]
		if err := s.fill(ctx, max); err != nil {
			return nil, err
		}
	}
	from := s.next
	s.next = min(len(s.msgs), from+max)
	if s.next == len(s.msgs) {
		s.commitPos = s.readPos
	} else {
		s.commitPos = s.starts[s.next]
	}
	s.messages.Add(uint64(s.next - from))
	return s.msgs[from:s.next], nil
}

// fill decodes frames until it holds at least max events or the spool has
// no more durable data and it holds at least one; it waits for data while
// it holds none.
func (s *SpoolSource) fill(ctx context.Context, max int) error {
	for len(s.msgs) < max {
		rec, end, err := s.r.Next()
		switch {
		case err == nil:
		case errors.Is(err, disk.ErrNoData):
			if len(s.msgs) > 0 {
				return nil
			}
			if err := s.r.Wait(ctx); err != nil {
				return err
			}
			continue
		case errors.Is(err, disk.ErrCorrupt):
			s.skipped.Add(1)
			s.opts.Logf("consumer group %s: skipping the rest of a corrupt spool segment: %v", s.opts.Group, err)
			if err := s.r.SkipSegment(); err != nil {
				return err
			}
			s.readPos = s.r.Position()
			continue
		default:
			return fmt.Errorf("read spool: %w", err)
		}
		start := s.readPos
		s.readPos = end
		_, err = s.dec.Frame(rec, func(ev *event.Event) error {
			var key, js []byte
			s.buf, key, js = appendKeyJSON(s.buf, ev)
			s.msgs = append(s.msgs, Message{
				Offset: int64(end),
				Key:    key,
				Kind:   ev.Kind,
				JSON:   js,
			})
			s.starts = append(s.starts, start)
			return nil
		})
		if err != nil {
			s.skipped.Add(1)
			s.opts.Logf("consumer group %s: skipping a bad frame ending at spool position %d: %v", s.opts.Group, end, err)
		}
	}
	return nil
}

// Commit implements [Source]: it persists the cursor at the end of the last
// frame whose events Poll has all returned. When max cut a frame, its
// events already returned are delivered again after a restart. It is a
// local file write; ctx is not used.
func (s *SpoolSource) Commit(ctx context.Context) error {
	if s.commitPos == s.committed {
		return nil
	}
	if err := s.r.Commit(s.commitPos); err != nil {
		return err
	}
	s.committed = s.commitPos
	s.commits.Add(1)
	return nil
}

// Stats implements [Source]; Revoked and Lost stay 0.
func (s *SpoolSource) Stats() Stats {
	return Stats{Messages: s.messages.Load(), Skipped: s.skipped.Load(), Commits: s.commits.Load()}
}

// Close releases the cursor without committing, and the spool when
// [OpenSpoolSource] opened it.
func (s *SpoolSource) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.r.Close()
	if s.own {
		if cerr := s.sp.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// appendKeyJSON appends ev's record key (see [AppendKey]) and its ECS JSON
// to buf, for a [Message] of a frame's event, and returns the grown buffer
// and the two parts of it (key nil when ev has none). Both are capped, so
// appending to one cannot overwrite what follows.
func appendKeyJSON(buf []byte, ev *event.Event) (out, key, js []byte) {
	k0 := len(buf)
	buf = AppendKey(buf, ev)
	j0 := len(buf)
	buf = event.AppendJSON(buf, ev)
	if j0 > k0 {
		key = buf[k0:j0:j0]
	}
	return buf, key, buf[j0:len(buf):len(buf)]
}
