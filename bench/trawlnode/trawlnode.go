// Package trawlnode reads the trawl node a benchmark harness runs (bin/trawl
// run, one input under test): it waits for the node's /healthz, reads its
// /metrics as per-input sums, and counts what its spool holds with `trawl
// spool stat --json`. The harnesses check trawl's own account, the
// metrics, against the spool and against what they sent.
package trawlnode

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// WaitHealthy polls http://addr/healthz every 20 ms until it answers 200,
// and returns an error once timeout passed or ctx ended first.
func WaitHealthy(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("trawl not healthy on %s within %v", addr, timeout)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Metrics reads http://addr/metrics and returns the samples of input, as
// [ParseMetrics] sums them.
func Metrics(addr, input string) (map[string]float64, error) {
	b, err := MetricsText(addr)
	if err != nil {
		return nil, err
	}
	return ParseMetrics(b, input), nil
}

// MetricsText returns http://addr/metrics as trawl wrote it.
func MetricsText(addr string) ([]byte, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("cannot read trawl metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("cannot read trawl metrics: %w", err)
	}
	return b, nil
}

// ParseMetrics sums the samples of the trawl_* metrics of input (label
// input="<input>") in Prometheus text: by metric name, and by name:value
// for the value of a cause or reason label, so that
// "trawl_input_upstream_lost_total:socket_overflow" is one cause's share of
// "trawl_input_upstream_lost_total". Lines it cannot read are skipped.
func ParseMetrics(text []byte, input string) map[string]float64 {
	out := map[string]float64{}
	want := `input="` + input + `"`
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		l := sc.Text()
		name, rest, ok := strings.Cut(l, "{")
		if !ok || !strings.HasPrefix(l, "trawl_") || !strings.Contains(rest, want) {
			continue
		}
		labels, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		fs := strings.Fields(val)
		if len(fs) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
		for _, k := range []string{"cause", "reason"} {
			if i := strings.Index(labels, k+`="`); i >= 0 {
				c := labels[i+len(k)+2:]
				if j := strings.IndexByte(c, '"'); j >= 0 {
					out[name+":"+c[:j]] += v
				}
			}
		}
	}
	return out
}

// SpoolEvents runs `bin spool stat --json dataDir` on a stopped node's
// data directory and returns the events its spool holds for input.
func SpoolEvents(ctx context.Context, bin, dataDir, input string) (uint64, error) {
	out, err := exec.CommandContext(ctx, bin, "spool", "stat", "--json", dataDir).Output()
	if err != nil {
		return 0, fmt.Errorf("cannot run trawl spool stat: %w", err)
	}
	var s struct {
		Inputs []struct {
			Name   string `json:"name"`
			Events uint64 `json:"events"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(out, &s); err != nil {
		return 0, fmt.Errorf("cannot parse trawl spool stat: %w", err)
	}
	var n uint64
	for _, in := range s.Inputs {
		if in.Name == input {
			n += in.Events
		}
	}
	return n, nil
}
