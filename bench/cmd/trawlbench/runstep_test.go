package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trawlsec/trawl/bench/gen"
)

// TestMain lets the test binary stand in for a collector: with
// TRAWLBENCH_TEST_UDP=PORT set it binds 127.0.0.1:PORT and reads (and
// drops) datagrams until a signal ends it, or for a minute at most.
func TestMain(m *testing.M) {
	if p := os.Getenv("TRAWLBENCH_TEST_UDP"); p != "" {
		port, _ := strconv.Atoi(p)
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			os.Exit(3)
		}
		c.SetReadDeadline(time.Now().Add(time.Minute))
		buf := make([]byte, 65536)
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				os.Exit(0)
			}
		}
	}
	os.Exit(m.Run())
}

// flakyTool exits at once (as a collector whose port was taken) for its
// first fails starts, then listens.
type flakyTool struct {
	fails, starts int
}

func (t *flakyTool) Supports(gen.Format) bool { return true }
func (t *flakyTool) Start(_ context.Context, _ gen.Format, port int, _ string) (*exec.Cmd, error) {
	t.starts++
	if t.starts <= t.fails {
		return exec.Command("sh", "-c", "echo cannot bind: Address already in use >&2; exit 1"), nil
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "TRAWLBENCH_TEST_UDP="+strconv.Itoa(port))
	return cmd, nil
}
func (t *flakyTool) BeforeStop(*Step) error { return nil }
func (t *flakyTool) Signal() os.Signal      { return syscall.SIGTERM }
func (t *flakyTool) Count(context.Context, string, *Step) (uint64, error) {
	return 0, nil
}

// TestRunStepRestarts: a collector that exits before listening is started
// again on another port, twice at most, and a step that cannot start says
// why, with the collector's log.
func TestRunStepRestarts(t *testing.T) {
	ok := &flakyTool{fails: 2}
	st := runStep(context.Background(), ok, "flaky", gen.V5, 0, 1000, 100*time.Millisecond, 1, t.TempDir())
	if st.Error != "" || ok.starts != 3 || st.Sent.Flows != 100+1 || st.Sent.TrailerFlows != 1 || st.Stored != 0 || st.LossPct != 100 {
		t.Fatalf("after %d starts: %+v", ok.starts, st)
	}
	bad := &flakyTool{fails: 5}
	st = runStep(context.Background(), bad, "flaky", gen.V5, 0, 1000, 100*time.Millisecond, 1, t.TempDir())
	if bad.starts != 3 || !strings.Contains(st.Error, "exited before listening") || !strings.Contains(st.Error, "Address already in use") {
		t.Fatalf("after %d starts: error %q", bad.starts, st.Error)
	}
}
