package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fastjson"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/ledger"
)

// testApp is an app input whose pipeline has a ring but no framer: tests
// read the ring directly.
type testApp struct {
	a    *AppInput
	pipe *pipeline
	led  *ledger.Input
}

func newTestApp(t testing.TB, maxLine int, policy Policy, ringSlots int) *testApp {
	t.Helper()
	set := metrics.NewSet()
	led := ledger.New(set).Input("app", "app")
	pipe, err := newPipeline(pipelineConfig{name: "app", kind: event.KindApp, policy: policy, ringSlots: ringSlots,
		limits: frame.DefaultBatchLimits()}, nil, led, set.NewCounter("spool"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAppInput(AppOptions{Name: "app", Listen: "127.0.0.1:0", MaxLineBytes: maxLine, MaxConnections: 4, Grace: time.Second},
		pipe, led, set, log.New(io.Discard, "", 0).Printf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.ln.Close() })
	return &testApp{a: a, pipe: pipe, led: led}
}

// feed runs one connection carrying input through the input's reader and
// returns the events it produced.
func (ta *testApp) feed(t testing.TB, input []byte) []event.Event {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		ta.a.serve(context.Background(), server)
		server.Close()
		close(done)
	}()
	go func() {
		client.Write(input)
		client.Close()
	}()
	<-done
	recs := ta.pipe.ring.Peek(nil, ta.pipe.ring.Cap())
	evs := decodeRecords(t, recs)
	ta.pipe.ring.Release(len(recs))
	return evs
}

func TestAppLines(t *testing.T) {
	ta := newTestApp(t, 256, Block, 1024)
	long := `{"msg":"` + strings.Repeat("x", 300) + `"}`
	input := "{\"@timestamp\":\"2026-11-25T10:00:00.5Z\",\"level\":\"warn\",\"message\":\"disk low\"}\r\n" +
		"\n   \n" + // blank lines are not events
		"not json\n" +
		"[1,2]\n" +
		`{"Timestamp":1764064800000000000,"Severity":3,"Fields":{"msg":"mozlog says hi"}}` + "\n" +
		long + "\n" +
		`{"ts":1764064800.25,"msg":"last line without newline"}`
	evs := ta.feed(t, []byte(input))
	if len(evs) != 6 {
		t.Fatalf("got %d events, want 6", len(evs))
	}
	f := func(i int, flags event.Flags, raw, msg, level string, tm int64) {
		t.Helper()
		ev := evs[i]
		if ev.Kind != event.KindApp || ev.Flags != flags || string(ev.App.Raw) != raw || string(ev.App.Message) != msg ||
			string(ev.App.Level) != level || ev.Time != tm || ev.RecvTime == 0 {
			t.Errorf("event %d = flags %b raw %q msg %q level %q time %d; want flags %b raw %q msg %q level %q time %d",
				i, ev.Flags, ev.App.Raw, ev.App.Message, ev.App.Level, ev.Time, flags, raw, msg, level, tm)
		}
	}
	f(0, 0, `{"@timestamp":"2026-11-25T10:00:00.5Z","level":"warn","message":"disk low"}`, "disk low", "warn",
		time.Date(2026, 11, 25, 10, 0, 0, 5e8, time.UTC).UnixNano())
	f(1, event.FlagParseError, "not json", "", "", 0)
	f(2, event.FlagParseError, "[1,2]", "", "", 0)
	f(3, 0, `{"Timestamp":1764064800000000000,"Severity":3,"Fields":{"msg":"mozlog says hi"}}`, "mozlog says hi", "3", 1764064800000000000)
	f(4, event.FlagParseError|event.FlagTruncated, long[:256], "", "", 0)
	f(5, 0, `{"ts":1764064800.25,"msg":"last line without newline"}`, "last line without newline", "", 1764064800250000000)

	if got := ta.led.Received.Get(); got != 6 {
		t.Errorf("received = %d, want 6", got)
	}
	if got := ta.led.Errors(ledger.ErrParse).Get(); got != 3 {
		t.Errorf("parse errors = %d, want 3", got)
	}
	if got := ta.led.Errors(ledger.ErrTruncated).Get(); got != 1 {
		t.Errorf("truncated = %d, want 1", got)
	}
}

// TestAppLongLinesAcrossReads sends lines longer than the read buffer,
// which take the slow path that assembles a line from several reads.
func TestAppLongLinesAcrossReads(t *testing.T) {
	ta := newTestApp(t, 1<<20, Block, 64)
	var input bytes.Buffer
	var want []string
	for i := 0; i < 5; i++ {
		l := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("p", 50_000+i*40_000))
		want = append(want, l)
		input.WriteString(l + "\n")
	}
	evs := ta.feed(t, input.Bytes())
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d", len(evs), len(want))
	}
	for i, ev := range evs {
		if string(ev.App.Raw) != want[i] || ev.Flags != 0 {
			t.Fatalf("event %d: flags %b, %d bytes, want %d bytes", i, ev.Flags, len(ev.App.Raw), len(want[i]))
		}
	}
}

// TestAppDropNewestCounts: a full ring drops whole batches and counts
// their lines. Lines of 1.1 KB make batches of two (a batch is handed over
// once it reaches 2 KiB), so a ring of 2 slots takes 2 of the 5 batches.
func TestAppDropNewestCounts(t *testing.T) {
	ta := newTestApp(t, 4096, DropNewest, 2)
	line := "{\"a\":\"" + strings.Repeat("x", 1100) + "\"}\n"
	evs := ta.feed(t, []byte(strings.Repeat(line, 10)))
	if len(evs) != 4 {
		t.Fatalf("ring of 2 slots delivered %d events, want 2 batches of 2", len(evs))
	}
	if got := ta.led.Dropped(ledger.ReasonRingFull).Get(); got != 6 {
		t.Fatalf("dropped = %d, want 6", got)
	}
	if got := ta.led.Received.Get(); got != 10 {
		t.Fatalf("received = %d, want 10", got)
	}
}

// FuzzAppLines feeds arbitrary bytes as one connection's stream: the input
// must never panic, must produce exactly one event per non-blank line, and
// must keep every line's bytes (up to the limit), flagging what is not a
// JSON object.
func FuzzAppLines(f *testing.F) {
	f.Add([]byte("{\"msg\":\"hi\"}\n"))
	f.Add([]byte("not json\r\n{\"level\":3}\n\n"))
	f.Add([]byte(`{"@timestamp":"2026-01-01T00:00:00Z","message":"x","Fields":{"msg":"y"}}`))
	f.Add([]byte("{\"a\":\"" + strings.Repeat("z", 600) + "\"}\n{}\n"))
	f.Add([]byte{0xff, 0xfe, '\n', '{', '"', 0x00, '"', ':', '1', '}', '\n'})
	f.Add([]byte("{\"a\":\"tab\there\"}\n{\"\":\"\a\\\\b\"}\n"))
	const maxLine = 512
	f.Fuzz(func(t *testing.T, input []byte) {
		ta := newTestApp(t, maxLine, DropNewest, 4096)
		evs := ta.feed(t, input)
		var want [][]byte
		for _, l := range bytes.Split(input, []byte{'\n'}) {
			if len(l) > maxLine {
				l = l[:maxLine]
			}
			l = bytes.TrimSuffix(l, []byte{'\r'})
			if len(bytes.TrimSpace(l)) > 0 {
				want = append(want, l)
			}
		}
		if len(evs) != len(want) {
			t.Fatalf("%d events for %d non-blank lines", len(evs), len(want))
		}
		for i, ev := range evs {
			if !bytes.Equal(ev.App.Raw, want[i]) {
				t.Fatalf("event %d raw %q, want %q", i, ev.App.Raw, want[i])
			}
			if ev.Flags&event.FlagParseError == 0 {
				if !json.Valid(ev.App.Raw) {
					t.Fatalf("event %d accepted as an object but is not valid JSON: %q", i, ev.App.Raw)
				}
			} else if ev.Flags&event.FlagTruncated == 0 && json.Valid(ev.App.Raw) && bytes.HasPrefix(bytes.TrimLeft(ev.App.Raw, " \t"), []byte("{")) {
				// Valid JSON objects are refused only where fastjson's
				// own limits refuse them (nesting deeper than 300).
				if _, err := fastjson.ParseBytes(ev.App.Raw); err == nil {
					t.Fatalf("event %d is a valid JSON object but flagged as a parse error: %q", i, ev.App.Raw)
				}
			}
			if out := event.AppendJSON(nil, &ev); !json.Valid(out) {
				t.Fatalf("event %d renders as invalid JSON: %q", i, out)
			}
		}
	})
}

// TestAppLineAllocs pins the per-line hot path (JSON parse, field
// extraction, event encoding, ring put) at zero allocations. A line that is
// not JSON is not in it: fastjson builds an error value for it.
func TestAppLineAllocs(t *testing.T) {
	ta := newTestApp(t, 1<<20, DropNewest, 8)
	cr := &connReader{a: ta.a, pr: ta.pipe.producer()}
	lines := [][]byte{
		[]byte(`{"@timestamp":"2026-11-25T10:00:00.123456Z","level":"info","msg":"session established","user":"u1","n":42}`),
		[]byte(`{"Timestamp":1764064800000000000,"Severity":6,"Fields":{"msg":"mozlog line"}}`),
		[]byte(`{"time":1764064800.25,"message":"plain","level":"warn"}`),
	}
	var batch [][]byte
	run := func() {
		for _, l := range lines {
			if err := cr.line(context.Background(), l); err != nil {
				t.Fatal(err)
			}
		}
		if err := cr.pr.Flush(context.Background()); err != nil { // as serve does after each read
			t.Fatal(err)
		}
		batch = ta.pipe.ring.Peek(batch[:0], 64)
		ta.pipe.ring.Release(len(batch))
	}
	for i := 0; i < 10; i++ {
		run() // every slot's buffer and the parser's cache reach their size
	}
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Fatalf("%v allocations per 3 lines", n)
	}
}

// TestStrictJSON: a line is taken as a JSON object exactly when encoding/json
// finds it valid, also where fastjson's parser is lenient (numbers, escapes,
// control characters), at any depth.
func TestStrictJSON(t *testing.T) {
	var lines []string
	for _, n := range []string{"0", "-0", "7", "-12", "10", "1.5", "0.25", "1e5", "1E+5", "2.5e-3", "-0.0e0",
		".", "-", "+1", "01", "-01", "1.", ".5", "1e", "1e+", "1.2.3", "0x10", "NaN", "nan", "inf", "-Inf", "1-2", "1e5e5", "--1"} {
		lines = append(lines, `{"a":`+n+`}`, `{"a":[1,{"b":[`+n+`]}],"c":2}`)
	}
	for _, s := range []string{`\"`, `\\`, `\/`, `\b\f\n\r\t`, `\u00e9`, `\uD83D\uDE00`, `\u12`, `\u12G4`, `\q`, `\x41`, `\'`, `a\`, "\x07\\\\", "x\ty", "\\\\\x01"} {
		lines = append(lines, `{"a":"`+s+`"}`, `{"k`+s+`":1}`, `{"a":[{"b":"`+s+`"}]}`)
	}
	lines = append(lines, `{}`, `{"a":true,"b":null,"c":false}`, `{"a":tru}`, `[1]`, `"s"`, `{"a":1}{`, `{"a" 1}`)
	ta := newTestApp(t, 4096, DropNewest, 4096)
	var input []byte
	for _, l := range lines {
		input = append(append(input, l...), '\n')
	}
	evs := ta.feed(t, input)
	if len(evs) != len(lines) {
		t.Fatalf("%d events for %d lines", len(evs), len(lines))
	}
	for i, l := range lines {
		var v any
		want := json.Unmarshal([]byte(l), &v) == nil
		if _, isObject := v.(map[string]any); !isObject {
			want = false
		}
		if got := evs[i].Flags&event.FlagParseError == 0; got != want {
			t.Errorf("%q taken as a JSON object: %v, encoding/json: %v", l, got, want)
		}
	}
}

// TestNextQuote: the 8-bytes-a-step search finds the first quote at every
// position, after any bytes, and len(l) when there is none.
func TestNextQuote(t *testing.T) {
	for _, fill := range []byte{' ', 'a', 0, 0x21, 0x23, 0x7f, 0x80, 0xa2, 0xff} {
		for n := 0; n <= 24; n++ {
			l := bytes.Repeat([]byte{fill}, n)
			for from := 0; from <= n; from++ {
				if got := nextQuote(l, from); got != n {
					t.Fatalf("fill %#x, %d bytes, from %d: %d without a quote, want %d", fill, n, from, got, n)
				}
			}
			for q := 0; q < n; q++ {
				l[q] = '"'
				if q+1 < n {
					l[q+1] = '"' // a second quote right after must not matter
				}
				for from := 0; from <= q; from++ {
					if got := nextQuote(l, from); got != q {
						t.Fatalf("fill %#x, %d bytes, quote at %d, from %d: got %d", fill, n, q, from, got)
					}
				}
				l[q] = fill
				if q+1 < n {
					l[q+1] = fill
				}
			}
		}
	}
}
