package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/bpf/udpdrop"
	"github.com/trawlsec/trawl/collector/udp"
	"github.com/trawlsec/trawl/config"
)

// TestUDPGROSetting checks what each gro setting gives the UDP inputs of a
// node: GRO on or off, and a socket_overflow count that is exact unless
// GRO runs without the BPF drop counter. The expectations follow from
// whether this process can load the counter (root in CI), so both outcomes
// of auto are covered across privileged and unprivileged runs.
func TestUDPGROSetting(t *testing.T) {
	c, err := udpdrop.Open()
	counter := err == nil
	if counter {
		c.Close()
	} else {
		t.Logf("the BPF drop counter cannot load here (%v): checking the unprivileged outcomes", err)
	}
	for _, tc := range []struct {
		mode      string
		gro       bool // GRO on the sockets
		estimated bool // socket_overflow an estimate
	}{
		{config.GROAuto, counter, false},
		{config.GROOn, true, !counter},
		{config.GROOff, false, false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			n := newNode(t, fmt.Sprintf(`
node: {data_dir: %q}
http: {listen: ""}
inputs:
  sys: {type: syslog, protocol: udp, listen: "127.0.0.1:0", sockets: 2, gro: %s}
  nf: {type: netflow, listen: "127.0.0.1:0", sockets: 1, gro: %s}
`, t.TempDir(), tc.mode, tc.mode), io.Discard)
			defer n.closeAll()
			var b bytes.Buffer
			n.Metrics().WritePrometheus(&b)
			for input, sockets := range map[string]int{"sys": 2, "nf": 1} {
				wantGRO, wantExact := 0, 1
				if tc.gro {
					wantGRO = sockets
				}
				if tc.estimated {
					wantExact = 0
				}
				if got := gauge(t, b.String(), "trawl_input_udp_gro_sockets", input); got != wantGRO {
					t.Errorf("input %s: %d sockets with GRO, want %d", input, got, wantGRO)
				}
				if got := gauge(t, b.String(), "trawl_input_socket_overflow_exact", input); got != wantExact {
					t.Errorf("input %s: socket_overflow_exact %d, want %d", input, got, wantExact)
				}
			}
			n.closeAll()
			if n.udpDrops != nil {
				t.Error("the drop counter is still loaded after the node closed")
			}
		})
	}
}

// gauge reads metric{input="input"} from Prometheus text.
func gauge(t *testing.T, text, metric, input string) int {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("%s{input=%q} ", metric, input)) + `(\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no %s for input %s in\n%s", metric, input, text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}

// TestServeUDP: while the input serves, its socket_overflow counter
// follows the kernel's drops once a second, the tick running after each
// update; when ctx ends the listener is closed and the counter holds the
// final count.
func TestServeUDP(t *testing.T) {
	ln, err := udp.Listen(udp.Options{Addr: "127.0.0.1:0", Sockets: 1, Batch: 8, ReadBuffer: 4096})
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	overflow := metrics.NewSet().NewCounter(`trawl_input_upstream_lost_total{input="t",cause="socket_overflow"}`)
	var ticks atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	handle := func([]udp.Datagram) {
		// The first batch holds the socket goroutine: the queue fills.
		first.Do(func() {
			close(entered)
			<-release
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveUDP(ctx, ln, handle, overflow, func() { ticks.Add(1) }) }()

	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(ln.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 512)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	<-entered
	for range 2000 {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for overflow.Get() == 0 || ticks.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: socket_overflow %d, %d ticks; want both > 0", overflow.Get(), ticks.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serveUDP: %v", err)
	}
	if st := ln.Stats(); overflow.Get() != st.Overflow || st.Overflow == 0 {
		t.Fatalf("socket_overflow %d after serveUDP returned, listener counted %d", overflow.Get(), st.Overflow)
	}
	again, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ln.Addr()))
	if err != nil {
		t.Fatalf("the port is still bound after serveUDP returned: %v", err)
	}
	again.Close()
}
