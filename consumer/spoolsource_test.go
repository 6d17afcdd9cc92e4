package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/trawlsec/trawl/consumer"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/sinks/disk"
)

// encodeFrames returns frames of per events each, event i made by
// gen(first+i).
func encodeFrames(t testing.TB, first, frames, per int, gen func(int) event.Event) [][]byte {
	t.Helper()
	enc, err := frame.NewEncoder(frame.EncoderOptions{Level: frame.LevelS2})
	if err != nil {
		t.Fatal(err)
	}
	var b frame.Builder
	var rec []byte
	var out [][]byte
	for f := range frames {
		b.Reset()
		var k event.Kind
		for j := range per {
			ev := gen(first + f*per + j)
			k = ev.Kind
			rec = event.AppendBinary(rec[:0], &ev)
			b.Add(rec)
		}
		h := frame.Header{Kind: k, FirstSeq: uint64(first + f*per), Created: time.Now().UnixNano(), Input: []byte("app"), Observer: []byte("trawl-1")}
		fr, err := enc.AppendFrame(nil, h, &b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fr)
	}
	return out
}

// appendFrames appends frames to sp and syncs; it may run on any goroutine.
func appendFrames(sp *disk.Spool, frames [][]byte) error {
	for _, fr := range frames {
		if _, err := sp.Append(fr); err != nil {
			return err
		}
	}
	return sp.Sync()
}

// fillSpool appends frames of per events each, event i made by gen(first+i),
// and syncs.
func fillSpool(t testing.TB, sp *disk.Spool, first, frames, per int, gen func(int) event.Event) {
	t.Helper()
	if err := appendFrames(sp, encodeFrames(t, first, frames, per, gen)); err != nil {
		t.Fatal(err)
	}
}

func openSpool(t testing.TB, dir string) *disk.Spool {
	t.Helper()
	sp, err := disk.Open(disk.Options{Dir: dir, Fsync: disk.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

func spoolSource(t testing.TB, sp *disk.Spool, group string) *consumer.SpoolSource {
	t.Helper()
	s, err := consumer.NewSpoolSource(sp, consumer.SpoolOptions{Group: group, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// appID reads "id" under "app" from an app event's JSON.
func appID(t testing.TB, js []byte) int {
	t.Helper()
	id, err := appIDErr(js)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// appIDErr is appID for goroutines other than the test's.
func appIDErr(js []byte) (int, error) {
	v, err := fastjson.ParseBytes(js)
	if err != nil {
		return 0, fmt.Errorf("message is not JSON: %v: %s", err, js)
	}
	if !v.Exists("app", "id") {
		return 0, fmt.Errorf("message has no app.id: %s", js)
	}
	return v.GetInt("app", "id"), nil
}

// drain polls src with batches of at most max until it has n messages,
// returning their JSON lines (copied) and keys.
func drain(t testing.TB, src consumer.Source, max, n int) (lines, keys []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(lines) < n {
		msgs, err := src.Poll(ctx, max)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(lines), n, err)
		}
		if len(msgs) == 0 || (max > 0 && len(msgs) > max) {
			t.Fatalf("Poll returned %d messages with max %d", len(msgs), max)
		}
		for _, m := range msgs {
			lines = append(lines, string(m.JSON))
			keys = append(keys, string(m.Key))
		}
	}
	return lines, keys
}

// pollNothing checks that src has nothing for a short while.
func pollNothing(t testing.TB, src consumer.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	msgs, err := src.Poll(ctx, 0)
	if !errors.Is(err, context.DeadlineExceeded) || len(msgs) != 0 {
		t.Fatalf("Poll on a consumed source: %d messages, %v", len(msgs), err)
	}
}

// TestSpoolSourceFanOut: two groups each read every event, in spool order,
// as exactly the JSON `trawl spool cat` prints, with the keys the Kafka sink
// would use.
func TestSpoolSourceFanOut(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	const frames, per = 20, 100
	fillSpool(t, sp, 0, frames, per, consumer.SampleApp)
	var cat, errw bytes.Buffer
	if err := consumer.Cat(dir, &cat, &errw, consumer.CatOptions{}); err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSuffix(cat.String(), "\n"), "\n")
	if len(want) != frames*per {
		t.Fatalf("spool cat printed %d lines", len(want))
	}
	a, b := spoolSource(t, sp, "a"), spoolSource(t, sp, "b")
	// Interleaved, with different batch sizes: the cursors are independent.
	var gotA, gotB, keysA []string
	for len(gotA) < frames*per || len(gotB) < frames*per {
		if len(gotA) < frames*per {
			l, k := drain(t, a, 130, 1)
			gotA, keysA = append(gotA, l...), append(keysA, k...)
		}
		if len(gotB) < frames*per {
			l, _ := drain(t, b, 0, 1)
			gotB = append(gotB, l...)
		}
	}
	for i := range want {
		if gotA[i] != want[i] || gotB[i] != want[i] {
			t.Fatalf("message %d:\n a: %s\n b: %s\nwant %s", i, gotA[i], gotB[i], want[i])
		}
		ev := consumer.SampleApp(i)
		if wantKey := ev.Source.Addr().String(); keysA[i] != wantKey {
			t.Fatalf("message %d has key %q, want %q", i, keysA[i], wantKey)
		}
	}
	pollNothing(t, a)
	pollNothing(t, b)
	if st := a.Stats(); st.Messages != frames*per || st.Skipped != 0 {
		t.Fatalf("stats of a: %+v", st)
	}
	for _, s := range []*consumer.SpoolSource{a, b} {
		if err := s.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cursors, err := disk.ReadCursors(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cursors["consumer-a"] == 0 || cursors["consumer-a"] != cursors["consumer-b"] || cursors["consumer-a"] != sp.Durable() {
		t.Fatalf("cursors %v, spool end %d", cursors, sp.Durable())
	}
}

// TestSpoolSourceResume: after Commit and Close a group resumes after what
// it committed, at frame granularity; what it read without committing
// comes again.
func TestSpoolSourceResume(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	const per = 100
	fillSpool(t, sp, 0, 5, per, consumer.SampleApp)
	ids := func(lines []string) []int {
		var out []int
		for _, l := range lines {
			out = append(out, appID(t, []byte(l)))
		}
		return out
	}
	expect := func(got []int, from int) {
		t.Helper()
		for i, id := range got {
			if id != from+i {
				t.Fatalf("message %d has id %d, want %d (ids %v...)", i, id, from+i, got[:min(len(got), 10)])
			}
		}
	}

	s, err := consumer.NewSpoolSource(sp, consumer.SpoolOptions{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	// 250 events: frames 0 and 1, and half of frame 2.
	l, _ := drain(t, s, 50, 250)
	expect(ids(l), 0)
	if err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// The commit covers frames 0 and 1 only: frame 2 comes again whole.
	s = spoolSource(t, sp, "g")
	l, _ = drain(t, s, 0, 300)
	expect(ids(l), 200)
	s.Close() // no commit: all of it comes again

	s = spoolSource(t, sp, "g")
	l, _ = drain(t, s, 0, 300)
	expect(ids(l), 200)
	pollNothing(t, s)
	if err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = spoolSource(t, sp, "g")
	pollNothing(t, s)
	// Poll waits for new frames.
	more := encodeFrames(t, 500, 1, per, consumer.SampleApp)
	appended := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		appended <- appendFrames(sp, more)
	}()
	l, _ = drain(t, s, 0, per)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	expect(ids(l), 500)
	if st := s.Stats(); st.Messages != per || st.Commits != 0 {
		t.Fatalf("stats %+v", st)
	}

	// A context that ends stops a waiting Poll.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := s.Poll(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll after cancel: %v", err)
	}
}

// TestSpoolSourceSkipsBadFrames: a record that is not a frame is counted
// and skipped; the frames around it are delivered.
func TestSpoolSourceSkipsBadFrames(t *testing.T) {
	sp := openSpool(t, t.TempDir())
	fillSpool(t, sp, 0, 1, 10, consumer.SampleApp)
	if _, err := sp.Append([]byte("not a frame")); err != nil {
		t.Fatal(err)
	}
	fillSpool(t, sp, 10, 1, 10, consumer.SampleApp)
	s := spoolSource(t, sp, "g")
	l, _ := drain(t, s, 0, 20)
	for i, line := range l {
		if appID(t, []byte(line)) != i {
			t.Fatalf("message %d: %s", i, line)
		}
	}
	if st := s.Stats(); st.Skipped != 1 || st.Messages != 20 {
		t.Fatalf("stats %+v", st)
	}
}

// TestOpenSpoolSource opens a data directory; a spool a node holds is
// refused with a clear error.
func TestOpenSpoolSource(t *testing.T) {
	data := t.TempDir()
	sp, err := disk.Open(disk.Options{Dir: filepath.Join(data, "spool"), Fsync: disk.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	fillSpool(t, sp, 0, 2, 5, consumer.SampleApp)
	if _, err := consumer.OpenSpoolSource(data, consumer.SpoolOptions{Group: "g"}); err == nil || !strings.Contains(err.Error(), "a node is running") {
		t.Fatalf("opening a held spool: %v", err)
	}
	sp.Close()
	s, err := consumer.OpenSpoolSource(data, consumer.SpoolOptions{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := drain(t, s, 0, 10)
	if appID(t, []byte(l[9])) != 9 {
		t.Fatalf("last message %s", l[9])
	}
	if err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed with the source: the spool can be opened again.
	sp2 := openSpool(t, filepath.Join(data, "spool"))
	if c, _ := disk.ReadCursors(filepath.Join(data, "spool")); c["consumer-g"] != sp2.Durable() {
		t.Fatalf("cursor %d, end %d", c["consumer-g"], sp2.Durable())
	}
	if _, err := consumer.OpenSpoolSource(t.TempDir(), consumer.SpoolOptions{Group: "g"}); err == nil {
		t.Fatal("opened an empty directory")
	}
	if _, err := consumer.NewSpoolSource(sp2, consumer.SpoolOptions{}); err == nil {
		t.Fatal("a spool source without a group")
	}
	if _, err := os.Stat(filepath.Join(data, "spool", "LOCK")); err != nil {
		t.Fatal(err)
	}
}

// TestSpoolSourcePollAllocs pins Poll at zero allocations in steady state:
// one frame per Poll, within one segment.
func TestSpoolSourcePollAllocs(t *testing.T) {
	sp := openSpool(t, t.TempDir())
	const per = 50
	fillSpool(t, sp, 0, 300, per, consumer.SampleApp)
	s := spoolSource(t, sp, "g")
	ctx := context.Background()
	for range 10 {
		if _, err := s.Poll(ctx, per); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	n := testing.AllocsPerRun(200, func() {
		var msgs []consumer.Message
		msgs, err = s.Poll(ctx, per)
		if err == nil && len(msgs) != per {
			err = errors.New("short batch: " + strconv.Itoa(len(msgs)))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%v allocs per Poll", n)
	}
}
