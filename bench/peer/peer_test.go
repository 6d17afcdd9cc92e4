package peer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/trawlsec/trawl/bench/sysloggen"
)

func TestParseLoggen(t *testing.T) {
	f := func(out string, count uint64, rate float64) {
		t.Helper()
		got, err := ParseLoggen([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		if got.Count != count || got.Rate != rate {
			t.Fatalf("ParseLoggen = %+v, want count %d rate %g", got, count, rate)
		}
	}
	// As loggen 3.38 prints it: progress lines, then the average.
	f("count=394278, rate = 172713.51 msg/sec\ncount=482457, rate = 176330.85 msg/sec\n"+
		"average rate = 137790.88 msg/sec, count=482457, time=3.50137, (average) msg size=256, bandwidth=34447.72 kB/sec\n", 482457, 137790.88)
	f("average rate = 10.00 msg/sec, count=20, time=2, (average) msg size=256, bandwidth=2.5 kB/sec", 20, 10)
	if _, err := ParseLoggen([]byte("error [loggen.c:123] connection refused\n")); err == nil {
		t.Fatal("no error for output without a summary")
	}
}

func TestFindSyslogNGMissing(t *testing.T) {
	if _, err := FindSyslogNG(t.TempDir()); !errors.Is(err, ErrMissing) {
		t.Fatalf("FindSyslogNG in an empty directory: %v, want ErrMissing", err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "build", "syslog-ng"), 0o755)
	os.WriteFile(filepath.Join(dir, "build", "syslog-ng", "env"), []byte("SYSLOG_NG=/nonexistent\nLOGGEN=/nonexistent\n"), 0o644)
	if _, err := FindSyslogNG(dir); !errors.Is(err, ErrMissing) {
		t.Fatalf("FindSyslogNG with binaries missing: %v, want ErrMissing", err)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bench", "peer", "peer.go")); err != nil {
		t.Fatalf("RepoRoot = %s: %v", root, err)
	}
}

// TestBenchConfigs runs each peer with the configuration the syslog
// benchmark uses, over UDP and TCP, and checks that it writes every
// message sent, one line each: the benchmark's counts rest on it.
func TestBenchConfigs(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	start := map[string]func(dir, conf string) (*Proc, error){}
	confs := map[string]func(BenchConfig) string{}
	if _, err := Rsyslogd(); err == nil {
		start["rsyslog"], confs["rsyslog"] = StartRsyslog, RsyslogBench
	} else {
		t.Logf("skipping rsyslog: %v", err)
	}
	if s, err := FindSyslogNG(root); err == nil {
		start["syslog-ng"], confs["syslog-ng"] = s.Start, SyslogNGBench
	} else {
		t.Logf("skipping syslog-ng: %v", err)
	}
	if len(start) == 0 {
		t.Skip("neither rsyslog nor syslog-ng is installed (scripts/deps.sh)")
	}
	for name := range start {
		for _, tcp := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tcp=%v", name, tcp), func(t *testing.T) {
				dir := t.TempDir()
				port := freePort(t, !tcp)
				out := filepath.Join(dir, "out.log")
				p, err := start[name](dir, confs[name](BenchConfig{Dir: dir, Port: port, TCP: tcp, Out: out,
					Threads: runtime.NumCPU(), ReadBuffer: 4 << 20}))
				if err != nil {
					t.Fatal(err)
				}
				defer p.Kill()
				addr := fmt.Sprintf("127.0.0.1:%d", port)
				if tcp {
					err = p.WaitTCP(addr, 10*time.Second)
				} else {
					err = p.WaitUDP(addr, 10*time.Second)
				}
				if err != nil {
					t.Fatal(err)
				}
				// Over UDP few enough that they all fit in the socket
				// buffers even if the peer reads nothing while they are
				// sent (a busy machine, a race-enabled test run): a loss
				// here would be the machine's, not the configuration's.
				msgs := uint64(10000)
				if !tcp {
					msgs = 2000
				}
				res, err := sysloggen.Send(context.Background(), sysloggen.Config{Target: netip.MustParseAddrPort(addr), TCP: tcp,
					Streams: 2, Messages: msgs, Rate: 20000})
				if err != nil {
					t.Fatal(err)
				}
				// Wait for the file to hold everything, then stop.
				deadline := time.Now().Add(10 * time.Second)
				for countLines(out) < int(res.Messages) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if err := p.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
					t.Logf("%s: %v", name, err)
				}
				f, err := os.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				seen := map[[2]uint64]bool{}
				sc := bufio.NewScanner(f)
				for sc.Scan() {
					s, q, ok := sysloggen.ParseSeq(sc.Bytes())
					if !ok {
						t.Fatalf("line without a sequence number: %q", sc.Text())
					}
					k := [2]uint64{uint64(s), q}
					if seen[k] {
						t.Fatalf("line twice: %q", sc.Text())
					}
					seen[k] = true
				}
				if uint64(len(seen)) != res.Messages {
					t.Fatalf("%s wrote %d distinct messages of %d sent\n%s", name, len(seen), res.Messages, p.Tail(10))
				}
			})
		}
	}
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

func freePort(t *testing.T, udp bool) int {
	t.Helper()
	if udp {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
