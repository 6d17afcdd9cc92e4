package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/trawlsec/trawl/bench/gen"
	"github.com/trawlsec/trawl/bench/peer"
	"github.com/trawlsec/trawl/bench/trawlnode"
)

// collector is one tool under test, started fresh for every step.
type collector interface {
	// Supports reports whether the tool collects format f; the harness
	// runs only the formats it does.
	Supports(f gen.Format) bool
	// Start starts the tool listening on 127.0.0.1:port for format f,
	// with its files under dir, and returns once it is listening.
	Start(ctx context.Context, f gen.Format, port int, dir string) (*exec.Cmd, error)
	// BeforeStop reads what must be read while the tool runs (trawl's
	// /metrics) into st.
	BeforeStop(st *Step) error
	// Signal is the signal that stops the tool cleanly.
	Signal() os.Signal
	// Count counts the flows the tool stored under dir, after it stopped.
	Count(ctx context.Context, dir string, st *Step) (uint64, error)
}

// waitUDPBound waits until something holds 127.0.0.1:port: a plain bind
// (without SO_REUSEPORT) then fails, also against SO_REUSEPORT sockets.
func waitUDPBound(ctx context.Context, cmd *exec.Cmd, exited <-chan struct{}, port int) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return nil
		}
		c.Close()
		select {
		case <-exited:
			return fmt.Errorf("%s exited before listening on udp port %d", filepath.Base(cmd.Path), port)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on udp port %d within 20s", filepath.Base(cmd.Path), port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// trawlTool runs bin/trawl with one input, named nf, and nothing else: a
// netflow input (v5, v9 and IPFIX on one port) or an sflow input, with
// its default frame compression or, when compression is set, that one
// (trawl-none stores frames uncompressed, as nfcapd does by default).
type trawlTool struct {
	bin         string
	compression string
	http        string
}

func (t *trawlTool) Supports(gen.Format) bool { return true }

func (t *trawlTool) Start(ctx context.Context, f gen.Format, port int, dir string) (*exec.Cmd, error) {
	hp, err := peer.FreePort("tcp")
	if err != nil {
		return nil, err
	}
	t.http = fmt.Sprintf("127.0.0.1:%d", hp)
	typ := "netflow"
	if f == gen.SFlow {
		typ = "sflow"
	}
	cfg := fmt.Sprintf("node:\n  name: bench\n  data_dir: %s\nhttp:\n  listen: %s\ninputs:\n  %s:\n    type: %s\n    listen: 127.0.0.1:%d\n",
		filepath.Join(dir, "data"), t.http, trawlInput, typ, port)
	if t.compression != "" {
		cfg += "    compression: " + t.compression + "\n"
	}
	path := filepath.Join(dir, "trawl.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(t.bin, "run", "-c", path)
	return cmd, nil
}

// ready waits for /healthz after the UDP port is bound.
func (t *trawlTool) ready(ctx context.Context) error {
	return trawlnode.WaitHealthy(ctx, t.http, 20*time.Second)
}

func (t *trawlTool) Signal() os.Signal { return syscall.SIGTERM }

// trawlInput is the name of trawl's input under test, in its
// configuration, metrics and spool.
const trawlInput = "nf"

func (t *trawlTool) BeforeStop(st *Step) error {
	m, err := trawlnode.Metrics(t.http, trawlInput)
	if err != nil {
		return err
	}
	st.Trawl = &TrawlCounts{
		Received:     uint64(m["trawl_input_received_events_total"]),
		Dropped:      uint64(m["trawl_input_dropped_events_total"]),
		UpstreamLost: uint64(m["trawl_input_upstream_lost_total"]),
		SeqGapLost:   uint64(m["trawl_input_upstream_lost_total:exporter_sequence_gap"]),
		SocketLost:   uint64(m["trawl_input_upstream_lost_total:socket_overflow"]),
	}
	return nil
}

func (t *trawlTool) Count(ctx context.Context, dir string, st *Step) (uint64, error) {
	n, err := trawlnode.SpoolEvents(ctx, t.bin, filepath.Join(dir, "data"), trawlInput)
	if err != nil {
		return 0, err
	}
	if st.Trawl != nil {
		st.Trawl.Spooled = n
		st.Trawl.MetricsTrue = st.Trawl.Received == n+st.Trawl.Dropped
		st.Trawl.LedgerMinusActual = int64(st.Trawl.SeqGapLost+st.Trawl.Dropped) - (int64(st.Sent.Flows) - int64(n))
	}
	return n, nil
}

// goflow2Tool runs goflow2 writing to a file: JSON lines, or with pb its
// protobuf FlowMessages, each behind a varint length (protodelim), with
// no separator. goflow2 v2.2.6 renders JSON through reflection, which
// costs it far more CPU than decoding; the protobuf output is what its
// Kafka users run, so both are measured.
type goflow2Tool struct {
	bin string
	pb  bool
}

func (g *goflow2Tool) Supports(gen.Format) bool { return true }

func (g *goflow2Tool) Start(ctx context.Context, f gen.Format, port int, dir string) (*exec.Cmd, error) {
	hp, err := peer.FreePort("tcp")
	if err != nil {
		return nil, err
	}
	format, sep := "json", "\n"
	if g.pb {
		format, sep = "bin", ""
	}
	// goflow2 v2.2.6's netflow:// listener takes v5, v9 and IPFIX,
	// sflow:// sFlow v5.
	scheme := "netflow"
	if f == gen.SFlow {
		scheme = "sflow"
	}
	return exec.Command(g.bin, "-listen", fmt.Sprintf("%s://127.0.0.1:%d", scheme, port),
		"-format", format, "-transport", "file", "-transport.file", filepath.Join(dir, "flows.out"),
		"-transport.file.sep="+sep, "-addr", fmt.Sprintf("127.0.0.1:%d", hp), "-loglevel", "warn"), nil
}

func (g *goflow2Tool) BeforeStop(*Step) error { return nil }
func (g *goflow2Tool) Signal() os.Signal      { return syscall.SIGINT }

func (g *goflow2Tool) Count(_ context.Context, dir string, _ *Step) (uint64, error) {
	path := filepath.Join(dir, "flows.out")
	if g.pb {
		return countDelimited(path)
	}
	return countLines(path)
}

// countDelimited counts varint-length-prefixed messages in a file.
func countDelimited(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	var n uint64
	for len(b) > 0 {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return n, fmt.Errorf("cannot read message %d of %s: bad length prefix", n, path)
		}
		b = b[k+int(l):]
		n++
	}
	return n, nil
}

func countLines(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n uint64
	for {
		k, err := f.Read(buf)
		n += uint64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// nfcapdTool runs nfdump's nfcapd (NetFlow v5/v9 and IPFIX) or, with
// sflow set, its sFlow twin sfcapd (Debian package nfdump-sflow; same
// flags, same files), and counts with nfdump -I.
type nfcapdTool struct {
	bin, nfdump string
	sflow       bool
}

func (c *nfcapdTool) Supports(f gen.Format) bool { return (f == gen.SFlow) == c.sflow }

func (c *nfcapdTool) Start(ctx context.Context, f gen.Format, port int, dir string) (*exec.Cmd, error) {
	w := filepath.Join(dir, "nfcapd")
	if err := os.MkdirAll(w, 0o755); err != nil {
		return nil, err
	}
	// -B: the same 32 MiB socket buffer as trawl's default (the kernel
	// caps it at net.core.rmem_max; trawl as root is not capped).
	return exec.Command(c.bin, "-w", w, "-p", strconv.Itoa(port), "-b", "127.0.0.1", "-t", "3600", "-B", "33554432"), nil
}

func (c *nfcapdTool) BeforeStop(*Step) error { return nil }
func (c *nfcapdTool) Signal() os.Signal      { return syscall.SIGTERM }

var flowsRe = regexp.MustCompile(`(?m)^Flows:\s+(\d+)`)

func (c *nfcapdTool) Count(ctx context.Context, dir string, _ *Step) (uint64, error) {
	out, err := exec.CommandContext(ctx, c.nfdump, "-R", filepath.Join(dir, "nfcapd"), "-I").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("cannot run nfdump -I: %w: %s", err, out)
	}
	var n uint64
	for _, m := range flowsRe.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		n += v
	}
	return n, nil
}
