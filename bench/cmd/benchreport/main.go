// Command benchreport turns `go test -bench` output into the Markdown table
// and JSON file that `make bench` prints and keeps. Rows whose name contains
// "/trawl" are compared with their peers measured in the same run: the same
// name with "/trawl" replaced by each peer's name (chan, goflow2, gosyslog,
// ...), as a ratio of events/s. A benchmark run several times (-count N)
// becomes one row of the median of each metric, with the spread of its
// rate, so that a ratio compares typical runs rather than whichever single
// run a noisy machine produced.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trawlsec/trawl/bench/report"
)

// Result is one benchmark: one line of the output, or the lines of one name
// reduced to the median of each metric.
type Result struct {
	Name    string             `json:"name"`
	Package string             `json:"package"`
	N       int64              `json:"n"`
	Metrics map[string]float64 `json:"metrics"`
	// Runs is the number of lines reduced into this result, and Rates their
	// events/s (or ops/s) in output order when there were several.
	Runs  int       `json:"runs"`
	Rates []float64 `json:"rates,omitempty"`
}

// Report is what is written to bench/results/<timestamp>.json.
type Report struct {
	Time    time.Time `json:"time"`
	CPU     string    `json:"cpu"`
	Cores   int       `json:"cores"`
	GoVer   string    `json:"go"`
	Results []Result  `json:"results"`
	Ratios  []Ratio   `json:"ratios"`
}

// Ratio compares trawl with a peer on events/s.
type Ratio struct {
	Bench string  `json:"bench"`
	Peer  string  `json:"peer"`
	Ratio float64 `json:"ratio"`
}

var lineRe = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

func main() {
	out := flag.String("json", "", "write the JSON report here")
	flag.Parse()
	rep, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	rep.Results = reduce(rep.Results)
	rep.Ratios = ratios(rep.Results)
	writeMarkdown(os.Stdout, rep)
	if *out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
	}
}

func parse(r io.Reader) (*Report, error) {
	rep := &Report{Time: time.Now().UTC(), Cores: runtime.NumCPU(), GoVer: runtime.Version()}
	sc := bufio.NewScanner(r)
	pkg := ""
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "pkg: "):
			pkg = strings.TrimPrefix(l, "pkg: ")
		case strings.HasPrefix(l, "cpu: "):
			rep.CPU = strings.TrimPrefix(l, "cpu: ")
		}
		m := lineRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		// Package benchmarks may share names (event and frame both have
		// BenchmarkEncode/flow): name rows "pkg.Benchmark...".
		name := m[1]
		if i := strings.LastIndexByte(pkg, '/'); i >= 0 {
			name = pkg[i+1:] + "." + name
		}
		res := Result{Name: name, Package: pkg, N: n, Metrics: map[string]float64{}, Runs: 1}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res.Metrics[f[i+1]] = v
		}
		if _, ok := res.Metrics["events/s"]; !ok {
			if ns := res.Metrics["ns/op"]; ns > 0 {
				res.Metrics["ops/s"] = 1e9 / ns
			}
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, sc.Err()
}

// reduce merges the results of one name (from -count N) into one, in the
// order in which each name first appears: each metric is the median of the
// runs that report it, N the median of N.
func reduce(rs []Result) []Result {
	var out []Result
	runs := map[string][]Result{}
	for _, r := range rs {
		if _, ok := runs[r.Name]; !ok {
			out = append(out, r)
		}
		runs[r.Name] = append(runs[r.Name], r)
	}
	for i := range out {
		same := runs[out[i].Name]
		if len(same) == 1 {
			continue
		}
		m := Result{Name: out[i].Name, Package: out[i].Package, Metrics: map[string]float64{}, Runs: len(same)}
		values := map[string][]float64{}
		var ns []float64
		for _, r := range same {
			for k, v := range r.Metrics {
				values[k] = append(values[k], v)
			}
			ns = append(ns, float64(r.N))
			m.Rates = append(m.Rates, rate(r))
		}
		for k, v := range values {
			m.Metrics[k] = report.Median(v)
		}
		m.N = int64(report.Median(ns))
		out[i] = m
	}
	return out
}

// rate is the throughput a row is compared on.
func rate(r Result) float64 {
	if v, ok := r.Metrics["events/s"]; ok {
		return v
	}
	return r.Metrics["ops/s"]
}

func ratios(rs []Result) []Ratio {
	byName := map[string]Result{}
	for _, r := range rs {
		byName[r.Name] = r
	}
	var out []Ratio
	for _, r := range rs {
		i := strings.Index(r.Name, "/trawl")
		if i < 0 {
			continue
		}
		prefix := r.Name[:i+1]
		suffix := r.Name[i+len("/trawl"):]
		for _, p := range rs {
			if p.Name == r.Name || !strings.HasPrefix(p.Name, prefix) || !strings.HasSuffix(p.Name, suffix) {
				continue
			}
			peer := strings.TrimSuffix(strings.TrimPrefix(p.Name, prefix), suffix)
			if strings.Contains(peer, "/") || rate(p) == 0 {
				continue
			}
			out = append(out, Ratio{Bench: r.Name, Peer: peer, Ratio: rate(r) / rate(p)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bench < out[j].Bench })
	return out
}

func writeMarkdown(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "Machine: %s, %d cores, %s, %s\n\n", rep.CPU, rep.Cores, rep.GoVer, rep.Time.Format(time.RFC3339))
	fmt.Fprintln(w, "| benchmark | events/s (or ops/s) | MB/s | ns/op | allocs/op | other |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|")
	for _, r := range rep.Results {
		var other []string
		keys := make([]string, 0, len(r.Metrics))
		for k := range r.Metrics {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch k {
			case "events/s", "ops/s", "MB/s", "ns/op", "allocs/op", "B/op":
				continue
			}
			other = append(other, fmt.Sprintf("%s=%.3g", k, r.Metrics[k]))
		}
		if r.Runs > 1 {
			other = append(other, fmt.Sprintf("median of %d runs: %s", r.Runs, report.Spread(r.Rates, human)))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.0f | %s |\n", r.Name, human(rate(r)), num(r.Metrics["MB/s"]),
			r.Metrics["ns/op"], r.Metrics["allocs/op"], strings.Join(other, " "))
	}
	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w, "\n| trawl benchmark | peer | trawl ÷ peer (events/s) |")
		fmt.Fprintln(w, "|---|---|---:|")
		for _, r := range rep.Ratios {
			fmt.Fprintf(w, "| %s | %s | %.2f× |\n", r.Bench, r.Peer, r.Ratio)
		}
	}
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func num(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f", v)
}
