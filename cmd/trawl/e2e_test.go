package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles cmd/trawl once per test binary run.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func trawlBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "trawl-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "trawl")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// node is a trawl process started by a test.
type node struct {
	cmd    *exec.Cmd
	http   string
	app    string
	data   string
	stderr *syncBuffer
	done   chan error
}

func startNode(t *testing.T, extra string) *node {
	t.Helper()
	return startNodeIn(t, t.TempDir(), extra)
}

// startNodeIn starts trawl with its data directory at data.
func startNodeIn(t *testing.T, data, extra string) *node {
	t.Helper()
	n := &node{http: freePort(t), app: freePort(t), data: data, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cfg := fmt.Sprintf(`node:
  name: e2e-host
  data_dir: %s
http:
  listen: %s
inputs:
  app:
    type: app
    listen: %s
%s`, n.data, n.http, n.app, extra)
	cfgPath := filepath.Join(t.TempDir(), "trawl.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(trawlBinary(t), "run", "-c", cfgPath)
	n.cmd.Stderr = n.stderr
	// A test binary killed by its timeout must not leave a node running.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("trawl stderr:\n%s", n.stderr.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + n.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n
			}
		}
		select {
		case err := <-n.done:
			t.Fatalf("trawl exited early: %v\n%s", err, n.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("trawl did not become healthy\n%s", n.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *node) stop(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-n.done:
		if err != nil {
			t.Fatalf("trawl exited with %v after SIGTERM\n%s", err, n.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("trawl did not stop within 60s of SIGTERM\n%s", n.stderr.String())
	}
}

func (n *node) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return strings.TrimPrefix(l, name+" ")
		}
	}
	return ""
}

// TestEndToEndMillionLines is the acceptance test of the foundation: the
// built binary receives 1,000,000 JSON lines over several TCP connections,
// is stopped with SIGTERM right after the clients finish, and `trawl spool
// cat` shows exactly those events, each once.
func TestEndToEndMillionLines(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 1,000,000 lines; skipped in -short mode")
	}
	const conns, perConn = 8, 125_000
	n := startNode(t, "")

	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", n.app)
			if err != nil {
				errs <- err
				return
			}
			w := bufio.NewWriterSize(conn, 64<<10)
			var line []byte
			for i := 0; i < perConn; i++ {
				line = line[:0]
				line = fmt.Appendf(line, `{"@timestamp":"2026-11-25T10:00:00.%06dZ","level":"info","id":"c%d-%d","message":"user login accepted","user":{"name":"u%d"}}`+"\n", i%1000000, c, i, i%97)
				if _, err := w.Write(line); err != nil {
					errs <- err
					return
				}
			}
			if err := w.Flush(); err != nil {
				errs <- err
			}
			errs <- conn.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	n.stop(t)

	out, err := os.CreateTemp(t.TempDir(), "cat")
	if err != nil {
		t.Fatal(err)
	}
	cat := exec.Command(trawlBinary(t), "spool", "cat", n.data)
	cat.Stdout = out
	var catErr bytes.Buffer
	cat.Stderr = &catErr
	if err := cat.Run(); err != nil {
		t.Fatalf("spool cat: %v\n%s", err, catErr.String())
	}
	if _, err := out.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]struct{}, conns*perConn)
	dups, lines := 0, 0
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		lines++
		i := bytes.Index(l, []byte(`"id":"`))
		if i < 0 {
			t.Fatalf("line without id: %s", l)
		}
		rest := l[i+6:]
		id := string(rest[:bytes.IndexByte(rest, '"')])
		if _, ok := seen[id]; ok {
			dups++
		}
		seen[id] = struct{}{}
		if lines == 1 && (!bytes.Contains(l, []byte(`"module":"app"`)) || !bytes.Contains(l, []byte(`"hostname":"e2e-host"`))) {
			t.Errorf("first line lacks ECS fields: %s", l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < conns; c++ {
		for i := 0; i < perConn; i++ {
			if _, ok := seen[fmt.Sprintf("c%d-%d", c, i)]; !ok {
				t.Fatalf("event c%d-%d missing (%d lines, %d unique)", c, i, lines, len(seen))
			}
		}
	}
	if dups != 0 || lines != conns*perConn || len(seen) != conns*perConn {
		t.Fatalf("want exactly %d events once each; got %d lines, %d unique, %d duplicates", conns*perConn, lines, len(seen), dups)
	}
	if !strings.Contains(n.stderr.String(), fmt.Sprintf("received %d, delivered %d, dropped 0", conns*perConn, conns*perConn)) {
		t.Errorf("final ledger line missing or unbalanced:\n%s", n.stderr.String())
	}
}

// TestEndToEndLedgerAndCLI checks the HTTP API, `trawl ledger`, `spool
// stat` and `spool cat`, with a line that is not JSON among valid ones, and
// that sequence numbers continue after a restart.
func TestEndToEndLedgerAndCLI(t *testing.T) {
	n := startNode(t, "")
	conn, err := net.Dial("tcp", n.app)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "{\"msg\":\"one\"}\nnot json\n{\"msg\":\"three\"}\n")
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for n.metric(t, `trawl_input_delivered_events_total{input="app"}`) != "3" {
		if time.Now().After(deadline) {
			t.Fatalf("delivered never reached 3: %q", n.metric(t, `trawl_input_delivered_events_total{input="app"}`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := n.metric(t, `trawl_input_errors_total{input="app",reason="parse_error"}`); got != "1" {
		t.Errorf("parse errors = %q, want 1", got)
	}
	out, err := exec.Command(trawlBinary(t), "ledger", "--http", n.http).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "app kept with error 1 (parse_error)") {
		t.Errorf("trawl ledger: %v\n%s", err, out)
	}
	n.stop(t)

	// A second run on the same data directory continues the numbering.
	n2 := startNodeIn(t, n.data, "")
	conn, err = net.Dial("tcp", n2.app)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "{\"msg\":\"four\"}\n")
	conn.Close()
	n2.stop(t)

	stat, err := exec.Command(trawlBinary(t), "spool", "stat", n.data).CombinedOutput()
	if err != nil || !strings.Contains(string(stat), " 0-3 ") {
		t.Errorf("spool stat: %v\n%s", err, stat)
	}
	cat, err := exec.Command(trawlBinary(t), "spool", "cat", n.data).CombinedOutput()
	if err != nil {
		t.Fatalf("spool cat: %v\n%s", err, cat)
	}
	lines := strings.Split(strings.TrimSpace(string(cat)), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], `_jsonparsefailure`) || !strings.Contains(lines[2], `"message":"three"`) ||
		!strings.Contains(lines[3], `"seq":3`) {
		t.Fatalf("spool cat output:\n%s", cat)
	}
}

// TestEndToEndFileSink checks the JSON-lines file sink: every event once,
// and a restart does not write them again (its cursor was committed).
func TestEndToEndFileSink(t *testing.T) {
	out := filepath.Join(t.TempDir(), "events.jsonl")
	sink := fmt.Sprintf("sinks:\n  - {type: file, path: %q}\n", out)
	n := startNode(t, sink)
	conn, err := net.Dial("tcp", n.app)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(conn)
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(w, "{\"id\":%d}\n", i)
	}
	w.Flush()
	conn.Close()
	n.stop(t)
	n2 := startNodeIn(t, n.data, sink)
	n2.stop(t)
	// Without the sink in the configuration its cursor is forgotten.
	n3 := startNodeIn(t, n.data, "")
	n3.stop(t)
	if _, err := os.Stat(filepath.Join(n.data, "spool", "cursors", "sink-file-0.cur")); err == nil {
		t.Error("the cursor of a removed sink is still there")
	}
	if !strings.Contains(n3.stderr.String(), `forgot the cursor of sink "file-0"`) {
		t.Errorf("no log line about the removed sink:\n%s", n3.stderr.String())
	}

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1000 {
		t.Fatalf("file sink wrote %d lines, want 1000", len(lines))
	}
	for i, l := range lines {
		if !strings.Contains(l, fmt.Sprintf(`"app":{"id":%d}`, i)) {
			t.Fatalf("line %d: %s", i, l)
		}
	}
}
