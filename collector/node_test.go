package collector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/trawlsec/trawl/config"
)

// The tests and benchmarks that run a whole node from configuration share
// its setup here: build it (newNode), run it (startNode, or runNode for the
// rest of a test; runSinkNode with a file sink) and read what its file
// sink wrote (sinkEvents).

// newNode builds a node from configuration yaml, its log going to logw.
func newNode(t testing.TB, yaml string, logw io.Writer) *Node {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test")
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, log.New(logw, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startNode runs n until the returned stop is called; stop ends Run and
// returns its error. Call stop once.
func startNode(n *Node) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

// runNode builds a node from configuration yaml and runs it until the test
// ends, failing the test if Run returns an error then. The node logs into
// the returned buffer.
func runNode(t *testing.T, yaml string) (*Node, *syncBuf) {
	t.Helper()
	logs := &syncBuf{}
	n := newNode(t, yaml, logs)
	stop := startNode(n)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n, logs
}

// runSinkNode runs, until the test ends, a node with the inputs of
// inputs (YAML, the lines under "inputs:") and a file sink that frames
// every 20 ms, and returns the sink's file (read it with sinkEvents) and
// the node's log.
func runSinkNode(t *testing.T, inputs string) (out string, logs *syncBuf) {
	t.Helper()
	dir := t.TempDir()
	out = filepath.Join(dir, "events.jsonl")
	_, logs = runNode(t, fmt.Sprintf(`
node: {data_dir: %q, shutdown_grace: 1s}
http: {listen: ""}
frames: {max_latency: 20ms}
inputs:
%s
sinks: [{type: file, path: %q}]
`, dir, strings.Trim(inputs, "\n"), out))
	return out, logs
}

// sinkEvents returns the events a file sink has written to path so far
// whose line holds tok, decoded from JSON into T: none while the file does
// not exist. A last line still being written is left for the next call.
func sinkEvents[T any](t testing.TB, path, tok string) []T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(tok)) {
			continue
		}
		var e T
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("bad JSON line %s: %v", sc.Bytes(), err)
		}
		out = append(out, e)
	}
	return out
}

// syncBuf is a log destination safe for the node's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
