package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trawlsec/trawl/bench/gen"
)

// pmacctTool runs pmacct's nfacctd (NetFlow v5, v9 and IPFIX) or, with
// sflow set, sfacctd (sFlow v5), each with the configuration pmacctConfig
// writes into the step's directory: one print plugin writing every flow to
// a CSV file.
//
// pmacct is a core process that reads the socket and hands records
// through a shared-memory pipe to a plugin process, which keeps them in a
// cache and forks a writer to print the cache when it is full or when its
// refresh time comes; SIGINT purges the cache and ends every process
// (SIGTERM is not handled in the background). runStep starts each tool in
// its own process group, so it measures and waits for all of them.
type pmacctTool struct {
	bin   string
	sflow bool
}

func (p *pmacctTool) Supports(f gen.Format) bool { return (f == gen.SFlow) == p.sflow }

func (p *pmacctTool) Start(_ context.Context, _ gen.Format, port int, dir string) (*exec.Cmd, error) {
	path := filepath.Join(dir, "pmacct.conf")
	if err := os.WriteFile(path, []byte(pmacctConfig(p.sflow, port, filepath.Join(dir, pmacctOut))), 0o644); err != nil {
		return nil, err
	}
	return exec.Command(p.bin, "-f", path), nil
}

// pmacctReady is what the print plugin logs once it has set up its cache,
// just before its loop. The core listens before that; in a test with a
// single buffer of traffic sent right after the core listened, the plugin
// once printed none of it (the core wakes the plugin through the pipe
// only when the plugin has asked to be woken), so the harness sends once
// the plugin is ready.
const pmacctReady = "cache entries="

// Ready waits for pmacctReady in the log (runStep's stderr.log).
func (p *pmacctTool) Ready(ctx context.Context, dir string, exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "stderr.log"))
		if strings.Contains(string(b), pmacctReady) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before its print plugin was ready", filepath.Base(p.bin))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: print plugin not ready (no %q in its log) within 20s", filepath.Base(p.bin), pmacctReady)
		}
	}
}

func (p *pmacctTool) BeforeStop(*Step) error { return nil }
func (p *pmacctTool) Signal() os.Signal      { return syscall.SIGINT }

// Count sums the FLOWS column. More flows than were sent is an error, not
// a negative loss: pmacct wrote some entries twice (see pmacctConfig).
func (p *pmacctTool) Count(_ context.Context, dir string, st *Step) (uint64, error) {
	flows, _, err := countPmacctCSV(filepath.Join(dir, pmacctOut))
	if err == nil && flows > st.Sent.Flows {
		return flows, fmt.Errorf("%s stored %d flows of %d sent: some written twice", filepath.Base(p.bin), flows, st.Sent.Flows)
	}
	return flows, err
}

// pmacctOut is the print plugin's file in the step directory.
const pmacctOut = "flows.csv"

// pmacctConfig returns the configuration of nfacctd (or sfacctd with
// sflow) listening on 127.0.0.1:port, printing flows as CSV to out.
//
// Counting: the aggregate ends with the flows primitive, a counter both
// daemons raise by one per NetFlow/IPFIX record or sFlow flow sample they
// account, so the FLOWS column summed over the file is the number of flows
// the daemon stored even if two of them had fallen into one entry. The
// other primitives are pmacct's own suggestion for keeping every flow
// (FAQ Q9: src_host, dst_host, src_port, dst_port, proto, timestamp_start,
// timestamp_end) plus the exporter, interfaces and TOS; generated flows
// differ in source address and port, so entries are flows in practice and
// the plugin does the per-flow work a flow store does. sFlow samples carry
// no flow times, so sfacctd goes without the timestamps.
//
// Buffers, raised like the other tools': the socket receive buffer
// (*_pipe_size) asks for the same 32 MiB as nfcapd's -B and trawl's
// default (the kernel caps it at net.core.rmem_max, doubled), and the
// core-to-plugin pipe is 256 MiB in 256 KiB buffers (default 4 MiB, and
// pmacct's documentation advises 1:100 to 1:1000 between the two): with
// 64 MiB the plugin still logged "Missing data detected" and lost most
// of 200k v9 flows/s on this busy 2-core machine, with 256 MiB it did
// not. The cache keeps its default size (16411 buckets, about 180k
// entries): when it fills up the plugin forks an urgent writer, as in
// production. print_refresh_time is an hour, longer than any run: pmacct
// aligns its first refresh to the next minute, so the default 60 s would
// purge in the middle of some steps, and a SIGINT that comes while the
// plugin forks that purge's writer writes the cache twice (seen once in
// a test: every entry twice). So the plugin writes when its cache fills
// and at SIGINT, which the harness sends once it is idle. Writers append under an exclusive lock on the file (pmacct's
// open_output_file), so concurrent writers do not interleave lines.
func pmacctConfig(sflow bool, port int, out string) string {
	daemon, times := "nfacctd", ", timestamp_start, timestamp_end"
	if sflow {
		daemon, times = "sfacctd", ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "! trawlbench: %s for one step\n", daemon)
	fmt.Fprintf(&b, "daemonize: false\n")
	fmt.Fprintf(&b, "%s_ip: 127.0.0.1\n%s_port: %d\n", daemon, daemon, port)
	fmt.Fprintf(&b, "%s_pipe_size: %d\n", daemon, 32<<20)
	fmt.Fprintf(&b, "plugins: print[flows]\n")
	fmt.Fprintf(&b, "aggregate[flows]: peer_src_ip, in_iface, out_iface, src_host, dst_host, src_port, dst_port, proto, tos%s, flows\n", times)
	fmt.Fprintf(&b, "print_output[flows]: csv\n")
	fmt.Fprintf(&b, "print_output_file[flows]: %s\n", out)
	fmt.Fprintf(&b, "print_output_file_append[flows]: true\n")
	fmt.Fprintf(&b, "print_refresh_time[flows]: 3600\n")
	fmt.Fprintf(&b, "plugin_pipe_size[flows]: %d\n", 256<<20)
	fmt.Fprintf(&b, "plugin_buffer_size[flows]: %d\n", 256<<10)
	return b.String()
}

// countPmacctCSV reads a print plugin CSV file: a title line, then one
// line per entry. It returns the sum of the FLOWS column and the number of
// entries. Title lines again later (two writers that both found no file)
// are skipped; a line with another number of fields, or a FLOWS value
// that is not a number, is an error, so a cut or interleaved file cannot
// pass for a count. A missing file holds no flows: pmacct writes nothing
// when it has nothing to write.
func countPmacctCSV(path string) (flows, entries uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, 0, nil
		}
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var title string
	col, ncol := -1, 0
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if title == "" {
			title = l
			fields := strings.Split(l, ",")
			for i, name := range fields {
				if name == "FLOWS" {
					col = i
				}
			}
			if col < 0 {
				return 0, 0, fmt.Errorf("cannot count flows in %s: no FLOWS column in %q", path, l)
			}
			ncol = len(fields)
			continue
		}
		if l == title {
			continue
		}
		fields := strings.Split(l, ",")
		if len(fields) != ncol {
			return flows, entries, fmt.Errorf("cannot parse line %d of %s: %d fields, want %d: %q", n, path, len(fields), ncol, l)
		}
		v, err := strconv.ParseUint(fields[col], 10, 64)
		if err != nil {
			return flows, entries, fmt.Errorf("cannot parse FLOWS on line %d of %s from %q: %w", n, path, fields[col], err)
		}
		flows += v
		entries++
	}
	if err := sc.Err(); err != nil {
		return flows, entries, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return flows, entries, nil
}
