package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/trawlsec/trawl/bench/peer"
	"github.com/trawlsec/trawl/bench/sysloggen"
	"github.com/trawlsec/trawl/bench/trawlnode"
)

// env is where one step runs a tool.
type env struct {
	dir     string // private, removed after the step
	port    int    // 127.0.0.1:port, UDP or TCP
	tcp     bool   // TCP port (TCP or RELP)
	relp    bool
	threads int // cores
	rcvbuf  int // UDP receive buffer asked of each tool
	octet   bool
}

func (e *env) addr() string { return fmt.Sprintf("127.0.0.1:%d", e.port) }

// tool is one collector under test, started fresh for every step.
type tool interface {
	// Start starts the tool and returns once it is listening.
	Start(ctx context.Context, e *env) (*peer.Proc, error)
	// Progress returns how many messages the tool has stored so far
	// (cheap; called every few milliseconds while it drains).
	Progress() (uint64, error)
	// BeforeStop reads what must be read while the tool runs.
	BeforeStop(st *Step) error
	// Signal is the signal that stops the tool cleanly.
	Signal() os.Signal
	// Count counts what the tool stored, after it stopped: stored
	// messages, and the duplicates among them (when the tool's output can
	// be checked message by message; -1 when it was not).
	Count(ctx context.Context, e *env, st *Step) (stored uint64, dups int64, err error)
}

// waitListening waits until the tool holds its port.
func waitListening(p *peer.Proc, e *env) error {
	if e.tcp {
		return p.WaitTCP(e.addr(), 20*time.Second)
	}
	return p.WaitUDP(e.addr(), 20*time.Second)
}

// trawlTool runs bin/trawl with one syslog input and nothing else, on its
// embedded defaults (spool fsync every 100 ms, S2 frames, one UDP socket
// per core, 32 MiB socket buffers).
type trawlTool struct {
	bin  string
	http string
	gro  string // gro setting of a UDP input, "" for trawl's default
}

func (t *trawlTool) Start(ctx context.Context, e *env) (*peer.Proc, error) {
	hp, err := peer.FreePort("tcp")
	if err != nil {
		return nil, err
	}
	t.http = fmt.Sprintf("127.0.0.1:%d", hp)
	in := "type: syslog\n    protocol: udp"
	switch {
	case e.relp:
		// RELP: an answer only once the message's frame is fsynced.
		in = "type: relp"
	case e.tcp:
		in = "type: syslog\n    protocol: tcp"
	}
	cfg := fmt.Sprintf("node:\n  name: bench\n  data_dir: %s\nhttp:\n  listen: %s\ninputs:\n  %s:\n    %s\n    listen: %s\n",
		filepath.Join(e.dir, "data"), t.http, trawlInput, in, e.addr())
	if !e.tcp {
		cfg += fmt.Sprintf("    read_buffer: %d\n", e.rcvbuf)
		if t.gro != "" && !e.relp {
			cfg += fmt.Sprintf("    gro: %s\n", t.gro)
		}
	}
	path := filepath.Join(e.dir, "trawl.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p, err := peer.Start(exec.Command(t.bin, "run", "-c", path), filepath.Join(e.dir, "trawl.log"))
	if err != nil {
		return nil, err
	}
	if err := waitListening(p, e); err != nil {
		p.Kill()
		return nil, err
	}
	if err := trawlnode.WaitHealthy(ctx, t.http, 20*time.Second); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

func (t *trawlTool) Signal() os.Signal { return syscall.SIGTERM }

// trawlInput is the name of trawl's input under test, in its configuration,
// metrics and spool.
const trawlInput = "sys"

func (t *trawlTool) Progress() (uint64, error) {
	m, err := trawlnode.Metrics(t.http, trawlInput)
	if err != nil {
		return 0, err
	}
	return uint64(m["trawl_input_delivered_events_total"]), nil
}

func (t *trawlTool) BeforeStop(st *Step) error {
	m, err := trawlnode.Metrics(t.http, trawlInput)
	if err != nil {
		return err
	}
	st.Trawl = &TrawlCounts{
		Received:     uint64(m["trawl_input_received_events_total"]),
		Delivered:    uint64(m["trawl_input_delivered_events_total"]),
		Dropped:      uint64(m["trawl_input_dropped_events_total"]),
		SocketLost:   uint64(m["trawl_input_upstream_lost_total:socket_overflow"]),
		GROSockets:   int(m["trawl_input_udp_gro_sockets"]),
		ParseErrors:  uint64(m["trawl_input_errors_total:parse_error"]),
		FramingError: uint64(m["trawl_input_errors_total:framing"]),
	}
	if v, ok := m["trawl_input_socket_overflow_exact"]; ok && v == 0 {
		st.Trawl.LossEstimated = true
	}
	return nil
}

func (t *trawlTool) Count(ctx context.Context, e *env, st *Step) (uint64, int64, error) {
	n, err := trawlnode.SpoolEvents(ctx, t.bin, filepath.Join(e.dir, "data"), trawlInput)
	if err != nil {
		return 0, 0, err
	}
	if tc := st.Trawl; tc != nil {
		tc.Spooled = n
		// The ledger's promise: every message that reached trawl is
		// delivered or dropped, and what the kernel dropped before trawl
		// saw it is counted as upstream loss, so nothing is unaccounted.
		tc.MetricsTrue = tc.Received == n+tc.Dropped && tc.Delivered == n
		tc.Unaccounted = int64(st.Sent.Messages) - int64(n+tc.Dropped+tc.SocketLost)
	}
	return n, -1, nil
}

// fileTool is a peer that writes every message as one line of a file.
type fileTool struct {
	name  string
	start func(e *env, out string) (*peer.Proc, error)
	out   string
	tail  *lineCounter
}

func (f *fileTool) Start(ctx context.Context, e *env) (*peer.Proc, error) {
	f.out = filepath.Join(e.dir, "out.log")
	f.tail = &lineCounter{path: f.out}
	p, err := f.start(e, f.out)
	if err != nil {
		return nil, err
	}
	if err := waitListening(p, e); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

func (f *fileTool) Progress() (uint64, error) { return f.tail.count() }
func (f *fileTool) BeforeStop(*Step) error    { return nil }
func (f *fileTool) Signal() os.Signal         { return syscall.SIGTERM }

// Count reads the whole file: lines, and which (stream, sequence number)
// each holds, so duplicates and foreign lines show.
func (f *fileTool) Count(_ context.Context, _ *env, st *Step) (uint64, int64, error) {
	f.tail.close()
	fh, err := os.Open(f.out)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer fh.Close()
	seen := make([][]uint64, len(st.Sent.PerStream)) // bitsets
	for i, n := range st.Sent.PerStream {
		seen[i] = make([]uint64, n/64+1)
	}
	var lines uint64
	var dups int64
	br := bufio.NewReaderSize(fh, 1<<20)
	for {
		l, err := br.ReadSlice('\n')
		if len(l) > 0 && l[len(l)-1] == '\n' {
			lines++
			s, q, ok := sysloggen.ParseSeq(l)
			if !ok || s >= len(seen) || q >= st.Sent.PerStream[s] {
				return lines, dups, fmt.Errorf("%s wrote a line that is not one of the messages sent: %q", f.name, l)
			}
			if seen[s][q/64]&(1<<(q%64)) != 0 {
				dups++
			}
			seen[s][q/64] |= 1 << (q % 64)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return lines, dups, fmt.Errorf("%s wrote a line longer than 1 MiB", f.name)
		}
		if err == io.EOF {
			return lines, dups, nil
		}
		if err != nil {
			return lines, dups, err
		}
	}
}

// lineCounter counts the lines of a file that grows, reading only what
// was appended since the last call.
type lineCounter struct {
	path string
	f    *os.File
	n    uint64
	buf  []byte
}

func (c *lineCounter) count() (uint64, error) {
	if c.f == nil {
		f, err := os.Open(c.path)
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		c.f = f
		c.buf = make([]byte, 1<<20)
	}
	for {
		k, err := c.f.Read(c.buf)
		c.n += uint64(bytes.Count(c.buf[:k], []byte{'\n'}))
		if err == io.EOF || k == 0 {
			return c.n, nil
		}
		if err != nil {
			return c.n, err
		}
	}
}

func (c *lineCounter) close() {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

func newRsyslog() *fileTool {
	return &fileTool{name: "rsyslog", start: func(e *env, out string) (*peer.Proc, error) {
		if e.relp {
			return peer.StartRsyslog(e.dir, rsyslogRELP(e, out))
		}
		return peer.StartRsyslog(e.dir, peer.RsyslogBench(peer.BenchConfig{Dir: e.dir, Port: e.port, TCP: e.tcp, Out: out, Threads: e.threads, ReadBuffer: e.rcvbuf, OctetCounted: e.octet}))
	}}
}

// rsyslogRELP is rsyslog's configuration for the RELP steps: imrelp
// (librelp's server, one thread) in front of the same in-memory queue and
// asynchronous omfile as in bench/peer's RsyslogBench. imrelp answers a
// message once it is in that queue, not once it is written: its "200 OK"
// promises less than trawl's, which answers only after the fsync.
func rsyslogRELP(e *env, out string) string {
	return fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
module(load="imrelp")
input(type="imrelp" address="127.0.0.1" port="%d" maxDataSize="64k")
main_queue(queue.type="FixedArray" queue.size="500000" queue.dequeueBatchSize="2048" queue.workerThreads="1")
action(type="omfile" file=%q asyncWriting="on" ioBufferSize="1m" flushOnTXEnd="off" flushInterval="1")
`, e.dir, e.port, out)
}

func newSyslogNG(s *peer.SyslogNG) *fileTool {
	return &fileTool{name: "syslog-ng", start: func(e *env, out string) (*peer.Proc, error) {
		return s.Start(e.dir, peer.SyslogNGBench(peer.BenchConfig{Dir: e.dir, Port: e.port, TCP: e.tcp, Out: out, Threads: e.threads, ReadBuffer: e.rcvbuf, OctetCounted: e.octet}))
	}}
}
