package collector

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/trawlsec/trawl/audit"
	"github.com/trawlsec/trawl/config"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/ledger"
	"github.com/trawlsec/trawl/ring"
)

// auditHarness is an AuditInput wired to a pipeline without a framer (the
// test reads the ring) and without sockets: tests feed enqueue and run the
// parser goroutine themselves. The kernel-facing parts are tested in
// audit_linux_test.go.
type auditHarness struct {
	in   *AuditInput
	pipe *pipeline
	led  *ledger.Input
}

func newAuditHarness(t testing.TB, rawSlots, pipeSlots int) *auditHarness {
	t.Helper()
	set := metrics.NewSet()
	led := ledger.New(set).Input("audit", "audit")
	pipe, err := newPipeline(pipelineConfig{name: "audit", kind: event.KindAudit, policy: DropNewest, ringSlots: pipeSlots,
		limits: frame.DefaultBatchLimits()}, nil, led, set.NewCounter("spool"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	in := &AuditInput{
		opts:          AuditOptions{Name: "audit"},
		pipe:          pipe,
		led:           led,
		logf:          t.Logf,
		raw:           ring.New(rawSlots),
		kernelLostC:   led.UpstreamLost("kernel_audit_lost"),
		gapLost:       led.UpstreamLost("audit_sequence_gap"),
		ringDrop:      led.Dropped("reader_ring_full"),
		malformed:     led.Errors("malformed_record"),
		incomplete:    led.Errors("incomplete_event"),
		timedOut:      set.NewCounter("timed_out"),
		lateRecs:      set.NewCounter("late"),
		readerRecords: set.NewCounter("records"),
	}
	in.opts.setDefaults()
	return &auditHarness{in: in, pipe: pipe, led: led}
}

// kernelLog reads audit/testdata/kernel-6.18.log as netlink messages.
func kernelLog(t testing.TB) []audit.Msg {
	t.Helper()
	f, err := os.Open("../audit/testdata/kernel-6.18.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var msgs []audit.Msg
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, text, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "type="), " msg=")
		if !ok {
			t.Fatalf("bad line %q", sc.Text())
		}
		typ, err := auparse.GetAuditMessageType(name)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, audit.Msg{Type: uint16(typ), Data: []byte(text)})
	}
	return msgs
}

func ringAudits(t testing.TB, p *pipeline) []event.Event {
	t.Helper()
	recs := p.ring.Peek(nil, p.ring.Cap())
	evs := make([]event.Event, len(recs))
	for i, r := range recs {
		if err := event.DecodeBinary(&evs[i], bytes.Clone(r)); err != nil {
			t.Fatal(err)
		}
	}
	p.ring.Release(len(recs))
	return evs
}

// TestAuditPipeline runs captured records through the reader's queue and
// the parser goroutine and checks the events that reach the pipeline ring
// and the ledger.
func TestAuditPipeline(t *testing.T) {
	h := newAuditHarness(t, 1024, 1024)
	msgs := kernelLog(t)
	var q auditQueue
	h.in.enqueue(&q, msgs, 42)
	h.in.raw.Close()
	h.in.parser(context.Background())

	evs := ringAudits(t, h.pipe)
	if len(evs) != 17 {
		t.Fatalf("%d events from the capture, want 17", len(evs))
	}
	for i, e := range evs {
		if e.Kind != event.KindAudit || e.RecvTime != 42 || e.Audit.Sequence != uint64(68+i) || e.Flags != 0 {
			t.Fatalf("event %d: kind %v recv %d seq %d flags %v", i, e.Kind, e.RecvTime, e.Audit.Sequence, e.Flags)
		}
	}
	if a := evs[0].Audit; string(a.Action) != "executed" || len(a.Args) != 6 || string(a.Args[2]) != "trawl-capture-1" {
		t.Fatalf("first event: %+v", a)
	}
	if got := h.led.Received.Get(); got != 17 {
		t.Fatalf("received %d", got)
	}
	if h.in.gapLost.Get() != 0 || h.in.ringDrop.Get() != 0 || h.in.incomplete.Get() != 0 || h.in.malformed.Get() != 0 {
		t.Fatalf("losses on a clean capture: gaps %d ring %d incomplete %d malformed %d",
			h.in.gapLost.Get(), h.in.ringDrop.Get(), h.in.incomplete.Get(), h.in.malformed.Get())
	}
	if got := h.in.readerRecords.Get(); got != uint64(len(msgs)) {
		t.Fatalf("records %d, want %d", got, len(msgs))
	}
}

// TestAuditReaderRingFull checks that a full reader ring drops records
// without blocking and counts each as received and dropped, so the ledger
// balances; the events that lost records come out incomplete.
func TestAuditReaderRingFull(t *testing.T) {
	// Four slots: the first four records of the first event fit, the rest
	// of it and every later record are dropped.
	h := newAuditHarness(t, 4, 1024)
	msgs := kernelLog(t)
	var q auditQueue
	done := make(chan struct{})
	go func() {
		h.in.enqueue(&q, msgs, 1) // nobody reads the raw ring yet
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("enqueue blocked on a full ring")
	}
	dropped := h.in.ringDrop.Get()
	if dropped != uint64(len(msgs)-4) {
		t.Fatalf("dropped %d of %d records into a 4-slot ring", dropped, len(msgs))
	}
	h.in.raw.Close()
	h.in.parser(context.Background())
	evs := ringAudits(t, h.pipe)
	snap := h.led.Received.Get()
	if snap != dropped+uint64(len(evs)) {
		t.Fatalf("received %d != dropped %d + events %d", snap, dropped, len(evs))
	}
	if len(evs) != 1 || h.in.incomplete.Get() != 1 || evs[0].Flags&event.FlagTruncated == 0 || len(evs[0].Audit.Args) != 6 {
		t.Fatalf("%d events, %d incomplete: %+v", len(evs), h.in.incomplete.Get(), evs)
	}
}

// TestAuditSequenceGaps checks that serials that never arrive are counted
// once they fall out of the window, and late ones are not.
func TestAuditSequenceGaps(t *testing.T) {
	h := newAuditHarness(t, 1<<14, 16)
	mk := func(serial int) audit.Msg {
		return audit.Msg{Type: audit.TypeUserCmd, Data: []byte("audit(1700000000.000:" + itoa(serial) + "): pid=1 msg='res=success'")}
	}
	var q auditQueue
	var msgs []audit.Msg
	for s := 1; s <= 10000; s++ {
		if s == 500 || s == 501 || s == 7000 {
			continue
		}
		msgs = append(msgs, mk(s))
	}
	msgs = append(msgs, mk(7000)) // late, but inside the window
	h.in.enqueue(&q, msgs, 1)
	if got := h.in.gapLost.Get(); got != 2 {
		t.Fatalf("sequence gap loss %d, want 2", got)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestAuditKernelLost checks the deltas taken from the kernel's lost
// counter, including its reset.
func TestAuditKernelLost(t *testing.T) {
	h := newAuditHarness(t, 16, 16)
	h.in.lastLost = 100
	for _, lost := range []uint32{100, 105, 130, 3, 10} {
		h.in.noteStatus(audit.Status{Lost: lost, Backlog: 7, BacklogLimit: 8192})
	}
	// 5 + 25, then reset to 3 (counted) and 7 more.
	if got := h.in.kernelLostC.Get(); got != 40 {
		t.Fatalf("kernel lost %d, want 40", got)
	}
	if h.in.backlog.Load() != 7 || h.in.backlogLimit.Load() != 8192 || h.in.kernelLost.Load() != 10 {
		t.Fatal("gauges not updated")
	}
}

func TestAuditOptionsFrom(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/good.rules"
	bad := dir + "/bad.rules"
	os.WriteFile(good, []byte("-b 1024\n-a always,exit -F arch=b64 -S execve -k exec\n"), 0o600)
	os.WriteFile(bad, []byte("-b 1024\n-e 2\n"), 0o600)
	o, err := auditOptionsFrom("a", config.Input{Type: config.InputAudit, Mode: "multicast", RingSize: 128, ReadBuffer: 1 << 20})
	if err != nil || o.Mode != audit.Multicast || o.Rules != nil || o.RingSlots != 128 || o.ReadBuffer != 1<<20 {
		t.Fatalf("%+v %v", o, err)
	}
	o, err = auditOptionsFrom("a", config.Input{Type: config.InputAudit, Mode: "unicast", TakeOver: true, RulesFile: good})
	if err != nil || o.Mode != audit.Unicast || !o.TakeOver || len(o.Rules.Rules) != 1 || *o.Rules.BacklogLimit != 1024 {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := auditOptionsFrom("a", config.Input{Type: config.InputAudit, Mode: "unicast", RulesFile: bad}); err == nil ||
		!strings.Contains(err.Error(), "bad.rules: line 2") {
		t.Fatalf("bad rules file: %v", err)
	}
	if !AuditUnavailable(fmt.Errorf("x: %w", audit.ErrPermission)) || !AuditUnavailable(fmt.Errorf("x: %w", ErrAuditBusy)) ||
		AuditUnavailable(errors.New("rules file broken")) {
		t.Fatal("AuditUnavailable")
	}
}
