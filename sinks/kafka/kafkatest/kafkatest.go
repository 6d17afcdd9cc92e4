// Package kafkatest runs a real Apache Kafka cluster for integration tests:
// scripts/kafka.sh starts KRaft nodes (each broker and controller at once) as
// java processes on free loopback ports, in the test's temporary directory,
// with the jars that `scripts/kafka.sh fetch` resolved from Maven Central
// into build/kafka/libs (fetched on first use).
//
// Without java, or when the jars cannot be fetched, [Start] skips the test,
// unless the environment variable TRAWL_REQUIRE_KAFKA is set (CI sets it):
// then it fails the test, so that a broken setup cannot pass as skipped.
package kafkatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns "Kafka cannot run
// here" from a skip into a failure.
const RequireEnv = "TRAWL_REQUIRE_KAFKA"

// Config describes a test cluster. The zero value of each field takes the
// default given beside it.
type Config struct {
	// Nodes is the number of nodes, each a broker and a controller. Default 1.
	Nodes int
	// Partitions is num.partitions, the partition count of topics that
	// producers create by producing to them. Default 3.
	Partitions int
	// Props are extra broker settings (server.properties keys) for every
	// node; they override the script's test defaults.
	Props map[string]string
}

// Cluster is a running test cluster. Its methods must be called from the
// test's goroutine (they fail the test with t.Fatal).
type Cluster struct {
	t      testing.TB
	script string
	env    []string
	seeds  []string
	dir    string // KAFKA_DIR

	mu      sync.Mutex
	stopped bool
}

// Start starts a cluster of nodes nodes with the default configuration and
// returns once every broker serves; the cluster is stopped when the test
// ends. See [StartConfig].
func Start(t testing.TB, nodes int) *Cluster {
	t.Helper()
	return StartConfig(t, Config{Nodes: nodes})
}

// StartConfig starts a cluster as cfg describes and returns once every
// broker serves; t.Cleanup stops it and removes its data. If the test binary
// dies without cleaning up (a timeout panic), the script's watcher still
// kills the nodes within about a second.
func StartConfig(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if cfg.Nodes <= 0 {
		cfg.Nodes = 1
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 3
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "scripts", "kafka.sh")
	if _, err := exec.LookPath("java"); err != nil {
		unavailable(t, "java is not installed (scripts/deps.sh installs openjdk-17-jre-headless): %v", err)
	}
	libs := os.Getenv("KAFKA_LIBS")
	if libs == "" {
		libs = filepath.Join(root, "build", "kafka", "libs")
	}
	// fetch returns at once when the jars are there; when several test
	// binaries fetch at the same time, the script serializes them.
	fetchEnv := append(os.Environ(), "KAFKA_DIR="+filepath.Join(root, "build", "kafka"), "KAFKA_LIBS="+libs)
	if out, err := run(10*time.Minute, fetchEnv, script, "fetch"); err != nil {
		unavailable(t, "cannot fetch the Kafka jars into %s: %v\n%s", libs, err, out)
	}

	var props strings.Builder
	keys := make([]string, 0, len(cfg.Props))
	for k := range cfg.Props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&props, "%s=%s\n", k, cfg.Props[k])
	}

	dir := t.TempDir()
	// Another test binary may pick the same free ports between our check
	// and the brokers' bind; a bind failure is retried on other ports.
	for attempt := 1; ; attempt++ {
		base, ctrlBase, err := freePorts(cfg.Nodes)
		if err != nil {
			t.Fatal(err)
		}
		c := &Cluster{
			t:      t,
			script: script,
			dir:    filepath.Join(dir, "kafka"),
			env: append(os.Environ(),
				"KAFKA_DIR="+filepath.Join(dir, "kafka"),
				"KAFKA_LIBS="+libs,
				"KAFKA_BASE_PORT="+strconv.Itoa(base),
				"KAFKA_CONTROLLER_BASE_PORT="+strconv.Itoa(ctrlBase),
				"KAFKA_PARTITIONS="+strconv.Itoa(cfg.Partitions),
				"KAFKA_EXTRA_CONFIG="+props.String(),
				"KAFKA_WATCH_PID="+strconv.Itoa(os.Getpid()),
				// The data goes away with the cluster: a clean shutdown
				// buys nothing, and a multi-node one waits about 5 s for
				// quorum resignation timeouts.
				"KAFKA_STOP_TIMEOUT=2",
			),
		}
		for i := 0; i < cfg.Nodes; i++ {
			c.seeds = append(c.seeds, net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
		}
		start := time.Now()
		out, err := run(5*time.Minute, c.env, script, "up", strconv.Itoa(cfg.Nodes))
		if err == nil {
			t.Logf("kafkatest: %d-node cluster up in %v on %s", cfg.Nodes, time.Since(start).Round(time.Millisecond), strings.Join(c.seeds, ","))
			t.Cleanup(c.Stop)
			return c
		}
		// Whatever the script left running goes before any retry or failure.
		downOut, downErr := run(time.Minute, c.env, script, "down")
		if downErr != nil {
			t.Errorf("kafkatest: cannot stop the failed cluster: %v\n%s", downErr, downOut)
		}
		if attempt < 3 && bytes.Contains(out, []byte("Address already in use")) {
			t.Logf("kafkatest: port %d or %d taken meanwhile, retrying on other ports", base, ctrlBase)
			continue
		}
		t.Fatalf("kafkatest: cannot start a %d-node Kafka cluster: %v\n%s", cfg.Nodes, err, out)
	}
}

// Seeds returns the nodes' client addresses ("127.0.0.1:port"), node 1 first.
func (c *Cluster) Seeds() []string { return append([]string(nil), c.seeds...) }

// PID returns the process id of node i (1-based), as scripts/kafka.sh
// recorded it when it started the node: for measuring the broker's CPU
// time in benchmarks. After [Cluster.KillNode] it is the dead process's.
func (c *Cluster) PID(i int) (int, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "run", "node"+strconv.Itoa(i), "pid"))
	if err != nil {
		return 0, fmt.Errorf("kafkatest: pid of node %d: %w", i, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("kafkatest: pid file of node %d holds %q", i, b)
	}
	return pid, nil
}

// KillNode kills node i (1-based) with SIGKILL, as a crash would, and waits
// until it is gone. Its data stays for [Cluster.StartNode].
func (c *Cluster) KillNode(i int) {
	c.t.Helper()
	c.node("kill-node", i)
}

// StartNode starts node i (1-based) again on its data after
// [Cluster.KillNode] and returns once it serves. The controller keeps a
// killed node's registration until its session times out (6 s in the
// script's test settings), so this can take that long.
func (c *Cluster) StartNode(i int) {
	c.t.Helper()
	c.node("start-node", i)
}

func (c *Cluster) node(cmd string, i int) {
	c.t.Helper()
	if i < 1 || i > len(c.seeds) {
		c.t.Fatalf("kafkatest: %s %d: the cluster has nodes 1..%d", cmd, i, len(c.seeds))
	}
	if out, err := run(3*time.Minute, c.env, c.script, cmd, strconv.Itoa(i)); err != nil {
		c.t.Fatalf("kafkatest: %s %d: %v\n%s", cmd, i, err, out)
	}
}

// Stop stops every node and removes the cluster's data. It is registered
// with t.Cleanup by [Start]; calling it earlier is allowed, and calls after
// the first do nothing.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	if out, err := run(time.Minute, c.env, c.script, "down"); err != nil {
		c.t.Errorf("kafkatest: cannot stop the cluster: %v\n%s", err, out)
	}
}

// unavailable reports that Kafka cannot run here: a skip, or a failure when
// RequireEnv is set.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := "kafkatest: " + fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s (%s is set, so this is a failure)", msg, RequireEnv)
	}
	t.Skipf("%s (set %s to make this a failure)", msg, RequireEnv)
}

// run runs scripts/kafka.sh and returns its combined output. The nodes it
// starts close their inherited descriptors, so the output pipe closes when
// the script exits.
func run(timeout time.Duration, env []string, script string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("scripts/kafka.sh %s did not finish within %v: %w", strings.Join(args, " "), timeout, err)
	}
	return out, err
}

// repoRoot walks up from the working directory (the test's package
// directory) to the directory holding go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot find the repository root: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("cannot find the repository root: no go.mod above %q", wd)
		}
		dir = parent
	}
}

// freePorts picks two runs of n consecutive loopback ports that are free now:
// client ports from base, controller ports from ctrlBase. They are drawn
// below Linux's ephemeral range (32768+) so that no outgoing connection
// takes one before the brokers bind it.
func freePorts(n int) (base, ctrlBase int, err error) {
	const lo, hi = 20000, 32000
	for range 200 {
		base = lo + rand.IntN(hi-lo-2*n)
		ctrlBase = lo + rand.IntN(hi-lo-2*n)
		if ctrlBase < base+n && base < ctrlBase+n {
			continue // the runs overlap
		}
		if portsFree(base, n) && portsFree(ctrlBase, n) {
			return base, ctrlBase, nil
		}
	}
	return 0, 0, errors.New("kafkatest: cannot find free loopback ports between 20000 and 32000")
}

func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}
