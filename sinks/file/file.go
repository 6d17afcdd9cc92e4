// Package file is the JSON-lines sink: it follows the spool with a durable
// cursor and appends every event as one ECS JSON object per line to a file
// or to standard output.
package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/consumer"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/sinks/disk"
)

// Options configures a file sink.
type Options struct {
	// Name is the sink's name; its spool cursor is "sink-<Name>".
	Name string
	// Path is the file appended to; "-" is standard output.
	Path string
	// Spool is read from.
	Spool *disk.Spool
	// CommitEvery bounds how often the cursor is persisted (default 1s).
	// After a crash, events written since the last commit are written
	// again: the sink is at-least-once.
	CommitEvery time.Duration
}

// Sink writes events from the spool as JSON lines.
type Sink struct {
	opts      Options
	delivered *metrics.Counter
	logf      func(string, ...any)

	f   *os.File
	w   *bufio.Writer
	r   *disk.Reader
	dec *consumer.Decoder
	buf []byte

	stopOnce sync.Once
	atEnd    chan struct{} // closed by StopAtEnd
}

// New opens the output and the sink's spool cursor.
func New(opts Options, delivered *metrics.Counter, logf func(string, ...any)) (*Sink, error) {
	if opts.CommitEvery == 0 {
		opts.CommitEvery = time.Second
	}
	s := &Sink{opts: opts, delivered: delivered, logf: logf, atEnd: make(chan struct{})}
	if opts.Path == "-" {
		s.f = os.Stdout
	} else {
		f, err := os.OpenFile(opts.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("cannot open %q: %w", opts.Path, err)
		}
		s.f = f
	}
	s.w = bufio.NewWriterSize(s.f, 256<<10)
	dec, err := consumer.NewDecoder()
	if err != nil {
		return nil, err
	}
	s.dec = dec
	s.r, err = opts.Spool.Reader("sink-" + opts.Name)
	if err != nil {
		return nil, fmt.Errorf("cannot open spool cursor: %w", err)
	}
	return s, nil
}

// Name returns the sink's name.
func (s *Sink) Name() string { return s.opts.Name }

// StopAtEnd makes Run return once it has written everything durable in the
// spool at that moment's end.
func (s *Sink) StopAtEnd() { s.stopOnce.Do(func() { close(s.atEnd) }) }

// Run copies events until ctx ends or, after StopAtEnd, the spool has no
// more durable data. The cursor is committed only after the lines reached
// the file (and the file was fsynced), so a crash repeats events rather
// than losing them.
func (s *Sink) Run(ctx context.Context) error {
	defer s.close()
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.atEnd:
			cancel()
		case <-waitCtx.Done():
		}
	}()
	var (
		pending    disk.Pos
		dirty      bool
		lastCommit = time.Now()
	)
	commit := func() error {
		if !dirty {
			return nil
		}
		if err := s.w.Flush(); err != nil {
			return fmt.Errorf("write %q: %w", s.opts.Path, err)
		}
		if s.f != os.Stdout {
			if err := s.f.Sync(); err != nil {
				return fmt.Errorf("fsync %q: %w", s.opts.Path, err)
			}
		}
		if err := s.r.Commit(pending); err != nil {
			return err
		}
		dirty = false
		lastCommit = time.Now()
		return nil
	}
	for {
		rec, end, err := s.r.Next()
		switch {
		case err == nil:
			n := 0
			if _, err := s.dec.Frame(rec, func(ev *event.Event) error {
				s.buf = event.AppendJSON(s.buf[:0], ev)
				s.buf = append(s.buf, '\n')
				n++
				_, err := s.w.Write(s.buf)
				return err
			}); err != nil {
				s.logf("sink %s: skipping a bad frame at spool position %d: %v", s.opts.Name, end, err)
			}
			s.delivered.Add(n)
			pending, dirty = end, true
			if time.Since(lastCommit) >= s.opts.CommitEvery {
				if err := commit(); err != nil {
					return err
				}
			}
		case errors.Is(err, disk.ErrNoData):
			if err := commit(); err != nil {
				return err
			}
			select {
			case <-s.atEnd:
				return nil
			default:
			}
			if err := s.r.Wait(waitCtx); err != nil {
				select {
				case <-s.atEnd:
					continue // read what became durable before the stop, then end
				default:
				}
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		default:
			return fmt.Errorf("read spool: %w", err)
		}
	}
}

func (s *Sink) close() {
	s.w.Flush()
	s.r.Close()
	if s.f != os.Stdout {
		s.f.Close()
	}
}
