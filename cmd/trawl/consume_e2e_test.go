package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/sinks/disk"
	"github.com/trawlsec/trawl/sinks/kafka"
	"github.com/trawlsec/trawl/sinks/kafka/kafkatest"
)

// consumeAppend writes app events {"id":i} for i in [from, to) into the
// spool of data directory data, 100 per frame, and then, when seeds is
// set, produces them to trawl.app with the Kafka sink (its cursor skips
// what an earlier call produced).
func consumeAppend(t *testing.T, data string, from, to int, seeds []string) {
	t.Helper()
	sp, err := disk.Open(disk.Options{Dir: filepath.Join(data, "spool"), Fsync: disk.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	enc, err := frame.NewEncoder(frame.EncoderOptions{Level: frame.LevelS2})
	if err != nil {
		t.Fatal(err)
	}
	var b frame.Builder
	var rec, out []byte
	for first := from; first < to; first += 100 {
		b.Reset()
		for i := first; i < min(first+100, to); i++ {
			ev := event.Event{
				Kind: event.KindApp, RecvTime: time.Now().UnixNano(),
				Source: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 50)}), 5170),
				App:    event.App{Raw: fmt.Appendf(nil, `{"id":%d}`, i)},
			}
			rec = event.AppendBinary(rec[:0], &ev)
			b.Add(rec)
		}
		h := frame.Header{Kind: event.KindApp, FirstSeq: uint64(first), Created: time.Now().UnixNano(), Input: []byte("app"), Observer: []byte("e2e")}
		if out, err = enc.AppendFrame(out[:0], h, &b); err != nil {
			t.Fatal(err)
		}
		if _, err := sp.Append(out); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Sync(); err != nil {
		t.Fatal(err)
	}
	if seeds == nil {
		return
	}
	set := metrics.NewSet()
	s, err := kafka.New(kafka.Options{Seeds: seeds, Spool: sp, Registry: set}, set.NewCounter("d"), set.NewCounter("r"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	s.StopAtEnd()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// consumeIDs parses JSON lines of app events and returns their ids in
// order; it fails on a line that is not such an event.
func consumeIDs(t *testing.T, out []byte) []int {
	t.Helper()
	var ids []int
	for _, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var doc struct {
			Event struct{ Module string }
			App   struct{ ID *int }
		}
		if err := json.Unmarshal(line, &doc); err != nil || doc.App.ID == nil || doc.Event.Module != "app" {
			t.Fatalf("consume printed %q (%v)", line, err)
		}
		ids = append(ids, *doc.App.ID)
	}
	return ids
}

// consumeCheckIDs fails unless ids holds every id in [from, to) once.
func consumeCheckIDs(t *testing.T, what string, ids []int, from, to int) {
	t.Helper()
	seen := map[int]bool{}
	for _, id := range ids {
		if id < from || id >= to || seen[id] {
			t.Fatalf("%s: id %d unexpected or repeated (want %d..%d once each)", what, id, from, to-1)
		}
		seen[id] = true
	}
	if len(seen) != to-from {
		t.Fatalf("%s: %d ids, want %d", what, len(seen), to-from)
	}
}

// runConsume runs `trawl consume args...` to completion (at most a
// minute) and returns its standard output.
func runConsume(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, trawlBinary(t), append([]string{"consume"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("trawl consume %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// TestConsumeEndToEnd runs `trawl consume` against a real broker and a
// spool: --max prints exactly N and commits them, SIGTERM commits what was
// printed, a second run of the group resumes after the commits, and the
// spool mode prints exactly what `trawl spool cat` prints.
func TestConsumeEndToEnd(t *testing.T) {
	cluster := kafkatest.Start(t, 1)
	kafkaList := strings.Join(cluster.Seeds(), ",")
	data := t.TempDir()
	consumeAppend(t, data, 0, 1000, cluster.Seeds())

	// --max: exactly 600, then exit 0.
	first := consumeIDs(t, runConsume(t, "--kafka", kafkaList, "--topic", "trawl.app", "--group", "g", "--max", "600"))
	if len(first) != 600 {
		t.Fatalf("--max 600 printed %d lines", len(first))
	}

	// No --max, every default topic (only trawl.app exists): the other
	// 400, then SIGTERM, which commits them.
	cmd := exec.Command(trawlBinary(t), "consume", "--kafka", kafkaList, "--group", "g")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan []byte)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	var second bytes.Buffer
	timeout := time.After(time.Minute)
	for n := 0; n < 400; n++ {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("trawl consume exited after %d lines: %v\n%s", n, cmd.Wait(), stderr.String())
			}
			second.Write(l)
			second.WriteByte('\n')
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("trawl consume printed %d of 400 lines in a minute\n%s", n, stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	for l := range lines {
		t.Errorf("a line beyond the 1000 produced: %s", l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("trawl consume after SIGTERM: %v\n%s", err, stderr.String())
	}
	consumeCheckIDs(t, "two runs of group g", append(first, consumeIDs(t, second.Bytes())...), 0, 1000)
	if !strings.Contains(stderr.String(), "consumed 400 messages as group g (0 skipped") {
		t.Errorf("stderr of the SIGTERM run: %s", stderr.String())
	}

	// Both runs committed: the group reads only what is new.
	consumeAppend(t, data, 1000, 1005, cluster.Seeds())
	consumeCheckIDs(t, "group g after the commits", consumeIDs(t, runConsume(t, "--kafka", kafkaList, "--topic", "trawl.app", "--group", "g", "--max", "5")), 1000, 1005)
	// Another group reads everything (fan-out).
	consumeCheckIDs(t, "group h", consumeIDs(t, runConsume(t, "--kafka", kafkaList, "--topic", "trawl.app", "--group", "h", "--max", "1005")), 0, 1005)

	// The spool: the same lines as spool cat, then resume after the commit.
	cat, err := exec.Command(trawlBinary(t), "spool", "cat", data).Output()
	if err != nil {
		t.Fatal(err)
	}
	fromSpool := runConsume(t, "--from-spool", data, "--group", "s", "--max", "1000")
	if want := bytes.Join(bytes.SplitAfter(cat, []byte("\n"))[:1000], nil); !bytes.Equal(fromSpool, want) {
		t.Fatalf("--from-spool printed\n%.300s...\nspool cat printed\n%.300s...", fromSpool, want)
	}
	consumeCheckIDs(t, "spool group s resumed", consumeIDs(t, runConsume(t, "--from-spool", data, "--group", "s", "--max", "5")), 1000, 1005)

	// Usage errors.
	for _, args := range [][]string{
		{"consume"},
		{"consume", "--kafka", kafkaList, "--from-spool", data},
		{"consume", "--from-spool", data, "--topic", "trawl.app"},
	} {
		if out, err := exec.Command(trawlBinary(t), args...).CombinedOutput(); err == nil {
			t.Errorf("trawl %s succeeded: %s", strings.Join(args, " "), out)
		}
	}
}
