package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trawlsec/trawl/consumer"
)

// consumeScriptedSource hands out batches of the given sizes, each at most Poll's
// max, then blocks until the context ends. It records every call.
type consumeScriptedSource struct {
	batches []int
	next    int // id of the next message
	maxes   []int
	// commits is how many messages had been returned at each Commit.
	commits []int
}

func (s *consumeScriptedSource) Poll(ctx context.Context, max int) ([]consumer.Message, error) {
	s.maxes = append(s.maxes, max)
	if len(s.batches) == 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	n := s.batches[0]
	if max > 0 && n > max {
		n = max
	}
	s.batches[0] -= n
	if s.batches[0] == 0 {
		s.batches = s.batches[1:]
	}
	msgs := make([]consumer.Message, n)
	for i := range msgs {
		msgs[i].JSON = fmt.Appendf(nil, `{"id":%d}`, s.next)
		s.next++
	}
	return msgs, nil
}

func (s *consumeScriptedSource) Commit(context.Context) error {
	s.commits = append(s.commits, s.next)
	return nil
}

func (s *consumeScriptedSource) Stats() consumer.Stats { return consumer.Stats{} }
func (s *consumeScriptedSource) Close() error          { return nil }

func TestConsumeLoopMax(t *testing.T) {
	src := &consumeScriptedSource{batches: []int{3, 3, 3}}
	var out bytes.Buffer
	n, err := consumeLoop(context.Background(), src, &out, 5, time.Hour)
	if err != nil || n != 5 {
		t.Fatalf("printed %d, %v", n, err)
	}
	if want := "{\"id\":0}\n{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n{\"id\":4}\n"; out.String() != want {
		t.Fatalf("printed %q", out.String())
	}
	// Poll is asked for what --max leaves, so that the commit covers
	// exactly what was printed.
	if fmt.Sprint(src.maxes) != "[5 2]" || fmt.Sprint(src.commits) != "[5]" {
		t.Fatalf("Poll maxes %v, commits at %v", src.maxes, src.commits)
	}
}

// TestConsumeLoopCommitsWhileIdle: what was printed is committed within
// commitEvery even when nothing more arrives, and nothing is committed
// twice.
func TestConsumeLoopCommitsWhileIdle(t *testing.T) {
	src := &consumeScriptedSource{batches: []int{2}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	n, err := consumeLoop(ctx, src, &out, 0, 50*time.Millisecond)
	if err != nil || n != 2 {
		t.Fatalf("printed %d, %v", n, err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("returned before the context ended")
	}
	if fmt.Sprint(src.commits) != "[2]" {
		t.Fatalf("commits at %v, want one after the 2 messages", src.commits)
	}
	if len(src.maxes) < 3 {
		t.Fatalf("Poll was called %d times: it did not wake up to commit", len(src.maxes))
	}
}

type consumeFailingWriter struct{}

func (consumeFailingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestConsumeLoopWriteError: output that cannot be written is not
// committed.
func TestConsumeLoopWriteError(t *testing.T) {
	src := &consumeScriptedSource{batches: []int{4}}
	_, err := consumeLoop(context.Background(), src, consumeFailingWriter{}, 10, time.Nanosecond)
	if err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("error %v", err)
	}
	if len(src.commits) != 0 {
		t.Fatalf("committed at %v after a write error", src.commits)
	}
}

// signalDuringCommitSource returns one batch, then acts as if SIGTERM came
// while its first Commit ran: it cancels the loop's context and fails with
// the context's error, as franz-go's commit does. Later commits succeed.
type signalDuringCommitSource struct {
	consumeScriptedSource
	cancel  context.CancelFunc
	failed  bool
	retried bool
}

func (s *signalDuringCommitSource) Commit(ctx context.Context) error {
	if !s.failed {
		s.failed = true
		s.cancel()
		return fmt.Errorf("commit offsets: %w", ctx.Err())
	}
	s.retried = true
	return s.consumeScriptedSource.Commit(ctx)
}

// TestConsumeLoopSignalDuringCommit: a commit cut short by SIGTERM is not
// an error; the last commit, with its own context, covers what was printed.
func TestConsumeLoopSignalDuringCommit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &signalDuringCommitSource{consumeScriptedSource: consumeScriptedSource{batches: []int{5}}, cancel: cancel}
	var out bytes.Buffer
	n, err := consumeLoop(ctx, src, &out, 0, time.Millisecond)
	if err != nil || n != 5 {
		t.Fatalf("consumeLoop = %d, %v; want 5, nil", n, err)
	}
	if !src.retried || len(src.commits) != 1 || src.commits[0] != 5 {
		t.Fatalf("final commit: retried %v, commits %v; want one commit covering 5", src.retried, src.commits)
	}
}
