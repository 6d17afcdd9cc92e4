package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trawlsec/trawl/bench/gen"
)

func TestPmacctConfig(t *testing.T) {
	f := func(sflow bool, want, notWant []string) {
		t.Helper()
		c := pmacctConfig(sflow, 4321, "/x/flows.csv")
		lines := map[string]bool{}
		for _, l := range strings.Split(c, "\n") {
			lines[l] = true
		}
		for _, w := range want {
			if !lines[w] {
				t.Errorf("sflow=%v: config lacks line %q:\n%s", sflow, w, c)
			}
		}
		for _, w := range notWant {
			if strings.Contains(c, w) {
				t.Errorf("sflow=%v: config has %q:\n%s", sflow, w, c)
			}
		}
	}
	common := []string{
		"daemonize: false",
		"plugins: print[flows]",
		"print_output[flows]: csv",
		"print_output_file[flows]: /x/flows.csv",
		"print_output_file_append[flows]: true",
		"plugin_pipe_size[flows]: 268435456",
		"plugin_buffer_size[flows]: 262144",
		"print_refresh_time[flows]: 3600",
	}
	f(false, append([]string{"nfacctd_ip: 127.0.0.1", "nfacctd_port: 4321", "nfacctd_pipe_size: 33554432",
		"aggregate[flows]: peer_src_ip, in_iface, out_iface, src_host, dst_host, src_port, dst_port, proto, tos, timestamp_start, timestamp_end, flows"}, common...),
		[]string{"sfacctd"})
	f(true, append([]string{"sfacctd_ip: 127.0.0.1", "sfacctd_port: 4321", "sfacctd_pipe_size: 33554432",
		"aggregate[flows]: peer_src_ip, in_iface, out_iface, src_host, dst_host, src_port, dst_port, proto, tos, flows"}, common...),
		[]string{"nfacctd", "timestamp"})
}

func TestCountPmacctCSV_Success(t *testing.T) {
	f := func(text string, flows, entries uint64) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "flows.csv")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		gf, ge, err := countPmacctCSV(p)
		if err != nil || gf != flows || ge != entries {
			t.Fatalf("countPmacctCSV = %d flows, %d entries, %v; want %d, %d", gf, ge, err, flows, entries)
		}
	}
	const title = "PEER_SRC_IP,SRC_IP,PACKETS,FLOWS,BYTES\n"
	f(title, 0, 0)
	f(title+"127.0.0.2,10.0.0.1,3,1,120\n127.0.0.2,10.0.0.2,1,1,40\n", 2, 2)
	// Two flows in one entry count twice; a second writer's title is skipped.
	f(title+"127.0.0.2,10.0.0.1,3,2,120\n"+title+"127.0.0.3,10.0.0.1,3,1,120\n", 3, 2)
	// No trailing newline (a file pmacct is still writing is not counted,
	// but a last line without one is whole).
	f(title+"127.0.0.2,10.0.0.1,3,1,120", 1, 1)
	// No file: pmacct had nothing to write.
	if n, e, err := countPmacctCSV(filepath.Join(t.TempDir(), "none.csv")); n != 0 || e != 0 || err != nil {
		t.Fatalf("missing file: %d, %d, %v", n, e, err)
	}
}

// TestPmacctCountTwice: a file holding more flows than were sent is an
// error, not a negative loss.
func TestPmacctCountTwice(t *testing.T) {
	dir := t.TempDir()
	const title = "PEER_SRC_IP,SRC_IP,PACKETS,FLOWS,BYTES\n"
	line := "127.0.0.2,10.0.0.1,3,1,120\n"
	if err := os.WriteFile(filepath.Join(dir, pmacctOut), []byte(title+line+line), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &pmacctTool{bin: "/usr/sbin/nfacctd"}
	st := &Step{}
	st.Sent.Flows = 2
	if n, err := p.Count(context.Background(), dir, st); n != 2 || err != nil {
		t.Fatalf("2 of 2: %d, %v", n, err)
	}
	st.Sent.Flows = 1
	if _, err := p.Count(context.Background(), dir, st); err == nil || !strings.Contains(err.Error(), "nfacctd stored 2 flows of 1 sent") {
		t.Fatalf("2 of 1: %v", err)
	}
}

func TestCountPmacctCSV_Failure(t *testing.T) {
	f := func(text string) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "flows.csv")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if n, _, err := countPmacctCSV(p); err == nil {
			t.Fatalf("countPmacctCSV(%q) = %d, no error", text, n)
		}
	}
	const title = "PEER_SRC_IP,SRC_IP,PACKETS,FLOWS,BYTES\n"
	f("PEER_SRC_IP,SRC_IP,PACKETS,BYTES\n127.0.0.2,10.0.0.1,3,120\n") // no FLOWS column
	f(title + "127.0.0.2,10.0.0.1,3,1\n")                             // a line cut short
	f(title + "127.0.0.2,10.0.0.1,3,1,120127.0.0.2,10.0.0.1,3,1,120\n")
	f(title + "127.0.0.2,10.0.0.1,3,x,120\n")
}

// TestPmacctStoresEveryFlow runs the real nfacctd and sfacctd with the
// harness's configuration on generated traffic, stops them as the harness
// does, and reads what they printed: exactly one entry per generated flow
// (the aggregation keeps them apart), and the FLOWS sum is the count.
func TestPmacctStoresEveryFlow(t *testing.T) {
	for _, tc := range []struct {
		daemon string
		format gen.Format
	}{{"nfacctd", gen.V5}, {"nfacctd", gen.V9}, {"nfacctd", gen.IPFIX}, {"sfacctd", gen.SFlow}} {
		t.Run(tc.daemon+"/"+tc.format.String(), func(t *testing.T) {
			bin := lookSbin(tc.daemon)
			if _, err := exec.LookPath(bin); err != nil {
				t.Skipf("%s not installed (Debian package pmacct, scripts/deps.sh): %v", tc.daemon, err)
			}
			t.Parallel()
			const exporters, flows = 3, 3000
			dir := t.TempDir()
			tool := &pmacctTool{bin: bin, sflow: tc.format == gen.SFlow}
			other := gen.SFlow
			if tool.sflow {
				other = gen.V9
			}
			if !tool.Supports(tc.format) || tool.Supports(other) {
				t.Fatalf("%s: Supports(%v) = %v, Supports(%v) = %v", tc.daemon, tc.format, tool.Supports(tc.format), other, tool.Supports(other))
			}
			ctx := context.Background()
			// As runStep: a fresh process group, listening and ready.
			sp, err := startCollector(ctx, tool, tc.daemon, tc.format, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer sp.stop()
			cmd, pgid, port, exited := sp.cmd, sp.pgid, sp.port, sp.exited
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf(format+"\nlog:\n%s", append(args, sp.logTail())...)
			}
			res, err := gen.Send(ctx, gen.SendConfig{Format: tc.format, Target: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)),
				Exporters: exporters, Flows: flows, Rate: 100_000})
			if err != nil || res.Flows != flows {
				fail("sent %d flows: %v", res.Flows, err)
			}
			waitIdleFunc(ctx, exited, groupCPU(pgid), func() bool { return udpRxQueue(port) > 0 })
			if cpu, mem := groupStats(pgid); len(groupProcs(pgid)) < 2 || cpu <= 0 || mem == 0 {
				fail("group %d: %d processes, cpu %v, memory %d KiB; want core and plugin", pgid, len(groupProcs(pgid)), cpu, mem)
			}
			cmd.Process.Signal(tool.Signal())
			select {
			case <-exited:
			case <-time.After(60 * time.Second):
				fail("%s did not stop on SIGINT", tc.daemon)
			}
			if err := waitGroupGone(ctx, pgid, 60*time.Second); err != nil {
				fail("%v", err)
			}
			got, err := tool.Count(ctx, dir, &Step{Sent: res})
			if err != nil || got != flows {
				fail("Count = %d, %v; want %d", got, err, flows)
			}
			n, entries, err := countPmacctCSV(filepath.Join(dir, pmacctOut))
			if err != nil || n != flows || entries != flows {
				fail("%d flows in %d entries, %v; want %d in as many", n, entries, err, flows)
			}

			// Every entry is one generated flow, none twice.
			want := map[string]bool{}
			for id := 0; id < exporters; id++ {
				e := gen.NewExporter(tc.format, id, 0)
				for k := uint64(0); k < flows; k++ {
					fl := e.Flow(k)
					want[fl.SrcAddr.String()+" "+fl.DstAddr.String()] = true
				}
			}
			b, err := os.ReadFile(filepath.Join(dir, pmacctOut))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			cols := strings.Split(lines[0], ",")
			idx := func(name string) int {
				for i, c := range cols {
					if c == name {
						return i
					}
				}
				t.Fatalf("no column %s in %q", name, lines[0])
				return -1
			}
			si, di := idx("SRC_IP"), idx("DST_IP")
			seen := map[string]bool{}
			for _, l := range lines[1:] {
				fs := strings.Split(l, ",")
				key := fs[si] + " " + fs[di]
				if !want[key] || seen[key] {
					t.Fatalf("entry %q: generated %v, seen before %v", l, want[key], seen[key])
				}
				seen[key] = true
			}
		})
	}
}

// TestRunStepPmacct: the harness's step runner on nfacctd, with the
// process group handling (measured, waited for, counted).
func TestRunStepPmacct(t *testing.T) {
	bin := lookSbin("nfacctd")
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("nfacctd not installed (Debian package pmacct, scripts/deps.sh): %v", err)
	}
	st := runStep(context.Background(), &pmacctTool{bin: bin}, "nfacctd", gen.V9, 0, 20_000, time.Second, 4, t.TempDir())
	if st.Error != "" || st.Sent.Flows != 20_000+4 || st.Sent.TrailerFlows != 4 || st.Stored != st.Sent.Flows || st.LossPct != 0 ||
		st.CPUSeconds <= 0 || st.CPUPerMFlows <= 0 || st.PeakRSSKiB == 0 {
		t.Fatalf("step %+v", st)
	}
}

// TestProcessGroup: groupProcs finds every process of a group, and
// waitGroupGone waits for the ones the main process left behind.
func TestProcessGroup(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 0.7 & sleep 0.7 & exit 0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	defer syscall.Kill(-pgid, syscall.SIGKILL)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := len(groupProcs(pgid)); n != 2 {
		t.Fatalf("%d processes left in the group, want the 2 sleeps", n)
	}
	start := time.Now()
	if err := waitGroupGone(context.Background(), pgid, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if len(groupProcs(pgid)) != 0 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("waitGroupGone returned after %v with %d left", time.Since(start), len(groupProcs(pgid)))
	}
	if err := waitGroupGone(context.Background(), pgid, time.Millisecond); err != nil {
		t.Fatalf("an empty group: %v", err)
	}
}

// FuzzCountPmacctCSV: any file either counts, with no more entries than
// lines, or is an error; it never panics.
func FuzzCountPmacctCSV(f *testing.F) {
	f.Add([]byte("PEER_SRC_IP,SRC_IP,PACKETS,FLOWS,BYTES\n127.0.0.2,10.0.0.1,3,1,120\n"))
	f.Add([]byte("FLOWS\n1\n2\nFLOWS\n3"))
	f.Add([]byte("A,FLOWS\nx,18446744073709551615\nx,1\n"))
	f.Add([]byte(""))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "flows.csv")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, entries, err := countPmacctCSV(p)
		if err == nil && entries > uint64(strings.Count(string(b), "\n")) {
			t.Fatalf("%d entries in %d lines", entries, strings.Count(string(b), "\n"))
		}
	})
}

func TestParseUDPRxQueue(t *testing.T) {
	text := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 0100007F:B7C4 00000000:0000 07 00000000:00000A00 00:00000000 00000000     0        0 1 2 0000000000000000 0
  101: 0100007F:B7C4 00000000:0000 07 00000000:00000100 00:00000000 00000000     0        0 1 2 0000000000000000 0
  102: 0100007F:B7C5 00000000:0000 07 00000000:00001000 00:00000000 00000000     0        0 1 2 0000000000000000 0
`
	if n := parseUDPRxQueue([]byte(text), 0xB7C4); n != 0xA00+0x100 {
		t.Fatalf("rx queue %#x, want %#x", n, 0xA00+0x100)
	}
	if n := parseUDPRxQueue([]byte(text), 1); n != 0 {
		t.Fatalf("rx queue of an unbound port: %d", n)
	}
}
