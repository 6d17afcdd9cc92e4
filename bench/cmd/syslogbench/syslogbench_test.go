package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawlsec/trawl/bench/peer"
	"github.com/trawlsec/trawl/bench/sysloggen"
)

func TestParseRates(t *testing.T) {
	got, err := parseRates("100k, 1.5M,max,250")
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{100e3, 1.5e6, 0, 250}
	if len(got) != len(want) {
		t.Fatalf("parseRates = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("parseRates = %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"", "fast", "-1k", "0"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q) accepted", bad)
		}
	}
}

func TestLineCounter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	c := &lineCounter{path: path}
	if n, err := c.count(); n != 0 || err != nil {
		t.Fatalf("count of a missing file = %d, %v", n, err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("a\nb\nc")
	if n, _ := c.count(); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
	f.WriteString("c\nd\n")
	if n, _ := c.count(); n != 4 {
		t.Fatalf("count after appending = %d, want 4", n)
	}
	c.close()
}

// TestSummarize: the max rate is the best sustained step below the first
// that lost ≥ 0.1%, over TCP the delivery rate, and the CPU comes from
// that step.
func TestSummarize(t *testing.T) {
	udp := func(offered, sent, loss, cpu float64) Step {
		return Step{Tool: "x", Proto: "udp", Offered: offered, Sent: sysloggen.Result{Rate: sent}, LossPct: loss, CPUPerM: cpu}
	}
	tcp := func(offered, delivered, cpu float64) Step {
		return Step{Tool: "x", Proto: "tcp", Offered: offered, Sent: sysloggen.Result{Rate: 5e6}, DeliveryRate: delivered, CPUPerM: cpu}
	}
	relp := func(offered, acked float64, stored uint64, cpu float64) Step {
		return Step{Tool: "x", Proto: "relp", Offered: offered, Sent: sysloggen.Result{Rate: acked, Messages: 1000}, Stored: stored,
			CPUPerM: cpu, Duplicates: 0}
	}
	steps := []Step{
		udp(100e3, 99e3, 0, 3), udp(200e3, 198e3, 0.05, 2), udp(400e3, 390e3, 0.5, 1.5), udp(800e3, 700e3, 0, 1),
		tcp(250e3, 249e3, 2), tcp(500e3, 480e3, 1.5), tcp(0, 910e3, 1.1),
		// RELP: the acknowledged rate counts while the tool stored
		// exactly what it acknowledged; a step that stored one message
		// more (or less) ends it.
		relp(25e3, 24e3, 1000, 5), relp(100e3, 60e3, 1000, 4), relp(0, 99e3, 1000, 2), relp(200e3, 90e3, 1001, 3),
	}
	sums := summarize(steps)
	if len(sums) != 3 {
		t.Fatalf("summaries %+v", sums)
	}
	if s := sums[2]; s.Proto != "relp" || s.MaxRate[0] != 60e3 || s.CPUPerM != 4 {
		t.Errorf("relp summary %+v", s)
	}
	if s := sums[0]; s.Proto != "udp" || s.MaxRate[0] != 198e3 || s.CPUPerM != 2 {
		t.Errorf("udp summary %+v", s)
	}
	if s := sums[1]; s.Proto != "tcp" || s.MaxRate[0] != 910e3 || s.CPUPerM != 1.1 {
		t.Errorf("tcp summary %+v", s)
	}
}

// TestMarkdownGoals: the report states each goal of issue 4 as met or not
// from the numbers.
func TestMarkdownGoals(t *testing.T) {
	rep := &Report{UDPRates: []float64{100e3}, TCPRates: []float64{0}}
	add := func(tool, proto string, offered, rate, cpu float64) {
		rep.Steps = append(rep.Steps, Step{Tool: tool, Proto: proto, Offered: offered, Sent: sysloggen.Result{Rate: rate},
			DeliveryRate: rate, CPUPerM: cpu, Duplicates: -1})
	}
	add("trawl", "udp", 150e3, 150e3, 2.5)
	add("trawl", "udp", 400e3, 400e3, 1)
	add("rsyslog", "udp", 150e3, 150e3, 3)
	add("syslog-ng", "udp", 250e3, 250e3, 5)
	add("trawl", "tcp", 0, 1.2e6, 0.9)
	add("rsyslog", "tcp", 0, 250e3, 1.7)
	add("syslog-ng", "tcp", 0, 100e3, 4)
	rep.Summaries = summarize(rep.Steps)
	var b strings.Builder
	writeMarkdown(&b, rep)
	md := b.String()
	for _, want := range []string{
		"- UDP vs rsyslog: rate 400,000 vs 150,000 msgs/s (2.67×) — **met**; CPU at each one's best rate 1.00 vs 3.00 s per M msgs (3.00×) — **met** " +
			"(at rsyslog's best offered rate, 150k msgs/s: trawl 2.50 vs 3.00, 1.20×)",
		"- UDP vs syslog-ng: rate 400,000 vs 250,000 msgs/s (1.60×) — **not met**; CPU at each one's best rate 1.00 vs 5.00 s per M msgs (5.00×) — **met**",
		"- TCP vs rsyslog: rate 1,200,000 vs 250,000 msgs/s (4.80×) — **met**; CPU at each one's best rate 0.90 vs 1.70 s per M msgs (1.89×) — **not met**",
		"- TCP into the spool: 1,200,000 msgs/s — **met**",
		"| udp | syslog-ng | 250,000 | 5.00 | 0 | 1.60× | 5.00× |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestMarkdownRELP: RELP rows say what they measure, syslog-ng's absence
// is in the table, and a RELP-only run states no issue 4 goals.
func TestMarkdownRELP(t *testing.T) {
	rep := &Report{RELPWindow: 128, Skipped: []Skip{{Tool: "syslog-ng", Proto: "relp", Why: noRELP}}}
	add := func(tool string, offered, acked float64, stored uint64, cpu float64) {
		rep.Steps = append(rep.Steps, Step{Tool: tool, Proto: "relp", Offered: offered, Sent: sysloggen.Result{Rate: acked, Messages: 100},
			Stored: stored, CPUPerM: cpu, Duplicates: -1})
	}
	add("trawl", 25e3, 25e3, 100, 6)
	add("trawl", 0, 90e3, 100, 3)
	add("rsyslog", 25e3, 20e3, 100, 12)
	add("rsyslog", 100e3, 30e3, 99, 11)
	rep.Summaries = summarize(rep.Steps)
	var b strings.Builder
	writeMarkdown(&b, rep)
	md := b.String()
	for _, want := range []string{
		"RELP: one session each, a window of 128 unanswered messages",
		"| relp | trawl | 90,000 | 3.00 | 0 |  |  | stored exactly the messages it acknowledged in every step; metrics = spool in every step |",
		"| relp | rsyslog | 20,000 | 12.00 | 0 | 4.50× | 4.00× | **stored other than what it acknowledged in 1 steps** |",
		"| relp | syslog-ng | not run | | | | | " + noRELP + " |",
		"- RELP trawl vs rsyslog: 90,000 vs 20,000 acknowledged msgs/s (4.50×); CPU at each one's best rate 3.00 vs 12.00 s per M msgs (4.00×)",
		"| rsyslog | 20k | 30k (stored 99 of 100 acknowledged) | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "Goals (issue 4)") {
		t.Errorf("a RELP-only report states issue 4's goals:\n%s", md)
	}
}

// TestStepTrawl runs one real step per protocol against a freshly built
// trawl and checks that the harness counts it right: nothing lost at a low
// rate, the metrics equal the spool, and nothing is unaccounted for.
func TestStepTrawl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs trawl")
	}
	bin := filepath.Join(t.TempDir(), "trawl")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/trawl").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// 5,000 messages: over UDP they fit in trawl's socket buffers even if
	// a busy machine keeps it from reading while they are sent.
	r := &runner{step: 250 * time.Millisecond, streams: 2, size: 256, format: sysloggen.RFC5424, framing: sysloggen.OctetCounted,
		rcvbuf: 8 << 20, work: t.TempDir()}
	for _, proto := range []string{"udp", "tcp", "relp"} {
		st := r.run(context.Background(), &trawlTool{bin: bin}, "trawl", proto, 0, 20000, 0, nil)
		if st.Error != "" {
			t.Fatalf("%s: %s", proto, st.Error)
		}
		tc := st.Trawl
		if st.Sent.Messages != 5000 || st.Sent.Unacked != 0 || st.Stored != 5000 || st.LossPct != 0 || !st.sustained() || tc == nil ||
			!tc.MetricsTrue || tc.Unaccounted != 0 || tc.ParseErrors != 0 || st.CPUSeconds <= 0 || st.DeliveryRate <= 0 {
			t.Fatalf("%s step %+v, trawl %+v", proto, st, tc)
		}
	}
}

// TestStepRsyslogRELP runs one RELP step against rsyslog's imrelp with the
// harness's configuration: everything acknowledged is in its file, once.
func TestStepRsyslogRELP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs rsyslog")
	}
	if _, err := peer.Rsyslogd(); err != nil {
		t.Skipf("rsyslog is not installed (scripts/deps.sh installs it): %v", err)
	}
	if err := peer.RsyslogModule("imrelp"); err != nil {
		t.Skipf("rsyslog's RELP input is not installed (package rsyslog-relp, scripts/deps.sh): %v", err)
	}
	r := &runner{step: 250 * time.Millisecond, streams: 2, size: 256, format: sysloggen.RFC3164, window: 64, work: t.TempDir()}
	st := r.run(context.Background(), newRsyslog(), "rsyslog", "relp", 0, 20000, 0, nil)
	if st.Error != "" {
		t.Fatal(st.Error)
	}
	if st.Sent.Messages != 5000 || st.Sent.Unacked != 0 || st.Stored != 5000 || st.Duplicates != 0 || !st.sustained() || st.CPUSeconds <= 0 {
		t.Fatalf("step %+v", st)
	}
}

// TestBracket: the refinement step goes between the best sustained rate
// and the first rate that lost, whatever order the steps ran in.
func TestBracket(t *testing.T) {
	st := func(offered, loss float64) Step {
		return Step{Tool: "x", Proto: "udp", Offered: offered, LossPct: loss}
	}
	f := func(steps []Step, lo, hi float64) {
		t.Helper()
		if gl, gh := bracket(steps, "x", 0); gl != lo || gh != hi {
			t.Fatalf("bracket = %g, %g; want %g, %g", gl, gh, lo, hi)
		}
	}
	f([]Step{st(100e3, 0), st(200e3, 0), st(400e3, 3)}, 200e3, 400e3)
	f([]Step{st(100e3, 0), st(200e3, 0), st(400e3, 3), st(300e3, 0)}, 300e3, 400e3)
	f([]Step{st(100e3, 0), st(200e3, 0), st(400e3, 3), st(300e3, 0.5)}, 200e3, 300e3)
	f([]Step{st(100e3, 5)}, 0, 100e3)
	f([]Step{st(100e3, 0)}, 100e3, 0)
}
