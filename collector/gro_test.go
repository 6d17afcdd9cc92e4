package collector

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"regexp"
	"strconv"
	"testing"

	"github.com/trawlsec/trawl/bpf/udpdrop"
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
			cfg, err := config.Parse([]byte(fmt.Sprintf(`
node: {data_dir: %q}
http: {listen: ""}
inputs:
  sys: {type: syslog, protocol: udp, listen: "127.0.0.1:0", sockets: 2, gro: %s}
  nf: {type: netflow, listen: "127.0.0.1:0", sockets: 1, gro: %s}
`, t.TempDir(), tc.mode, tc.mode)), "test")
			if err != nil {
				t.Fatal(err)
			}
			n, err := New(cfg, log.New(io.Discard, "", 0))
			if err != nil {
				t.Fatal(err)
			}
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
