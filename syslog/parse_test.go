package syslog

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/trawlsec/trawl/event"
)

func mustTime(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixNano()
}

// got renders what Parse produced in the shape of want, so a mismatch
// prints both side by side.
func got(ev *event.Event, ok bool, recv int64) want {
	s := &ev.Syslog
	w := want{ok: ok, fac: s.Facility, sev: s.Severity, ver: s.Version,
		host: string(s.Hostname), app: string(s.AppName), pid: string(s.ProcID), msgid: string(s.MsgID),
		sd: string(s.StructuredData), msg: string(s.Message)}
	if ev.Time == recv {
		w.time = "recv"
	} else {
		w.time = time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano)
	}
	return w
}

func TestParseCorpus(t *testing.T) {
	p := corpusParser()
	f := func(t *testing.T, c corpusCase) {
		t.Helper()
		recv := mustTime(defaultRecv)
		if c.recv != "" {
			recv = mustTime(c.recv)
		}
		src := srcPlain
		if c.src != "" {
			src = netip.MustParseAddr(c.src)
		}
		var ev event.Event
		ev.Flags = event.FlagTruncated // set by the input: must survive
		ev.Source = netip.MustParseAddrPort("198.51.100.1:514")
		ok := p.Parse(&ev, []byte(c.in), src, recv)
		if g := got(&ev, ok, recv); g != c.want {
			t.Fatalf("Parse(%q)\n got  %+v\n want %+v", c.in, g, c.want)
		}
		if ev.Kind != event.KindSyslog {
			t.Fatalf("Kind = %v", ev.Kind)
		}
		if ev.Source.Port() != 514 || ev.Flags&event.FlagTruncated == 0 {
			t.Fatalf("Parse touched Source or other flags: %v %v", ev.Source, ev.Flags)
		}
		// Raw carries the text only when parsing failed, and then whole.
		if (ev.Flags&event.FlagParseError != 0) == ok {
			t.Fatalf("ok=%v but flags %v", ok, ev.Flags)
		}
		wantRaw := ""
		if !ok {
			wantRaw = strings.TrimRight(c.in, "\r\n\x00")
		}
		if string(ev.Syslog.Raw) != wantRaw {
			t.Fatalf("Raw = %q, want %q", ev.Syslog.Raw, wantRaw)
		}
	}
	n3164, n5424 := 0, 0
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) { f(t, c) })
		if c.want.ok && c.want.ver == 1 {
			n5424++
		} else if c.want.ok {
			n3164++
		}
	}
	if n3164+n5424 < 40 {
		t.Fatalf("corpus has %d parsed messages, want at least 40", n3164+n5424)
	}
}

// TestParseReusedEvent checks that Parse leaves nothing of an earlier
// message behind in a reused event.
func TestParseReusedEvent(t *testing.T) {
	p := NewParser(Options{})
	recv := mustTime(defaultRecv)
	var ev event.Event
	p.Parse(&ev, []byte(`<13>1 2024-01-15T11:59:01Z host app 12 ID [a b="c"] msg`), srcPlain, recv)
	if ok := p.Parse(&ev, []byte(`<999>junk`), srcPlain, recv); ok || ev.Flags&event.FlagParseError == 0 {
		t.Fatalf("junk parsed: %v %v", ok, ev.Flags)
	}
	if ok := p.Parse(&ev, []byte(`<14>hello`), srcPlain, recv); !ok {
		t.Fatal("hello failed")
	}
	want := event.Syslog{Facility: 1, Severity: 6, Message: []byte("hello")}
	if fmt.Sprint(ev.Syslog) != fmt.Sprint(want) || ev.Flags != 0 || ev.Time != recv {
		t.Fatalf("got %+v flags %v time %d", ev.Syslog, ev.Flags, ev.Time)
	}
}

// TestParseLocation checks the zone order: Zones, then Location, then UTC.
func TestParseLocation(t *testing.T) {
	ny, berlin := mustZone("America/New_York"), mustZone("Europe/Berlin")
	recv := mustTime(defaultRecv)
	msg := []byte(`<13>Jan 15 06:59:01 host app: x`)
	f := func(o Options, src netip.Addr, want string) {
		t.Helper()
		var ev event.Event
		NewParser(o).Parse(&ev, msg, src, recv)
		if g := time.Unix(0, ev.Time).UTC().Format(time.RFC3339); g != want {
			t.Fatalf("time %s, want %s", g, want)
		}
	}
	f(Options{}, srcPlain, "2024-01-15T06:59:01Z")
	f(Options{Location: ny}, srcPlain, "2024-01-15T11:59:01Z")
	f(Options{Location: ny, Zones: map[netip.Addr]*time.Location{srcBerlin: berlin}}, srcBerlin, "2024-01-15T05:59:01Z")
	f(Options{Location: ny, Zones: map[netip.Addr]*time.Location{srcBerlin: berlin}}, srcPlain, "2024-01-15T11:59:01Z")
	// A key given as IPv4-mapped IPv6 matches the plain IPv4 sender.
	f(Options{Zones: map[netip.Addr]*time.Location{netip.MustParseAddr("::ffff:192.0.2.20"): berlin}}, srcBerlin, "2024-01-15T05:59:01Z")
	// A nil zone in the map means UTC, not Location.
	f(Options{Location: ny, Zones: map[netip.Addr]*time.Location{srcBerlin: nil}}, srcBerlin, "2024-01-15T06:59:01Z")
	// Changing the map after NewParser has no effect.
	zones := map[netip.Addr]*time.Location{srcBerlin: berlin}
	p := NewParser(Options{Zones: zones})
	zones[srcBerlin] = ny
	var ev event.Event
	p.Parse(&ev, msg, srcBerlin, recv)
	if g := time.Unix(0, ev.Time).UTC().Format(time.RFC3339); g != "2024-01-15T05:59:01Z" {
		t.Fatalf("map change leaked into the parser: %s", g)
	}
}

// TestParseYearChoice sweeps the receive time across a year boundary: a
// message stamped a few seconds before its receipt must always land a few
// seconds before it, whichever side of New Year either is on.
func TestParseYearChoice(t *testing.T) {
	for _, loc := range []*time.Location{time.UTC, mustZone("America/New_York"), mustZone("Asia/Tokyo")} {
		p := NewParser(Options{Location: loc})
		start := time.Date(2023, 12, 31, 23, 59, 50, 0, loc)
		for d := time.Duration(0); d < 20*time.Second; d += time.Second {
			recv := start.Add(d)
			sent := recv.Add(-3 * time.Second)
			msg := []byte("<13>" + sent.Format(time.Stamp) + " host app: x")
			var ev event.Event
			if !p.Parse(&ev, msg, srcPlain, recv.UnixNano()) || ev.Time != sent.UnixNano() {
				t.Fatalf("%s %q received %s: got %s", loc, msg, recv, time.Unix(0, ev.Time).In(loc))
			}
		}
	}
}

// TestParseTrailers checks that line terminators left by framing are not
// part of the message, for both formats and for parse errors.
func TestParseTrailers(t *testing.T) {
	p := NewParser(Options{})
	for _, in := range []string{"<13>Jan 15 11:59:01 h a: m", "<13>1 2024-01-15T11:59:01Z h a - - - m"} {
		for _, tr := range []string{"\n", "\r\n", "\x00", "\n\n"} {
			var ev event.Event
			if !p.Parse(&ev, []byte(in+tr), srcPlain, 0) || string(ev.Syslog.Message) != "m" {
				t.Fatalf("%q: message %q", in+tr, ev.Syslog.Message)
			}
		}
	}
	var ev event.Event
	if p.Parse(&ev, []byte("<999>x\r\n"), srcPlain, 0) || string(ev.Syslog.Raw) != "<999>x" {
		t.Fatalf("raw %q", ev.Syslog.Raw)
	}
}

// TestParseLimits checks the RFC 5424 header field limits at and one past
// each bound.
func TestParseLimits(t *testing.T) {
	p := NewParser(Options{})
	f := func(host, app, pid, msgid string, wantOK bool) {
		t.Helper()
		in := "<13>1 2024-01-15T11:59:01Z " + host + " " + app + " " + pid + " " + msgid + " - m"
		var ev event.Event
		ok := p.Parse(&ev, []byte(in), srcPlain, 0)
		if ok != wantOK || (ok && (string(ev.Syslog.Hostname) != host || string(ev.Syslog.AppName) != app ||
			string(ev.Syslog.ProcID) != pid || string(ev.Syslog.MsgID) != msgid || ev.Syslog.Version != 1)) {
			t.Fatalf("%d/%d/%d/%d: ok=%v %+v", len(host), len(app), len(pid), len(msgid), ok, ev.Syslog)
		}
	}
	r := strings.Repeat
	f(r("h", 255), r("a", 48), r("p", 128), r("m", 32), true)
	f(r("h", 256), "a", "p", "m", false)
	f("h", r("a", 49), "p", "m", false)
	f("h", "a", r("p", 129), "m", false)
	f("h", "a", "p", r("m", 33), false)
	f("h", "a", "p", "m\x7f", false)
}

func TestWalkStructuredData(t *testing.T) {
	f := func(sd string, want string, wantOK bool) {
		t.Helper()
		var b strings.Builder
		ok := WalkStructuredData([]byte(sd), func(id, name, value []byte) {
			fmt.Fprintf(&b, "%s|%s|%s;", id, name, AppendUnescaped(nil, value))
		})
		if b.String() != want || ok != wantOK {
			t.Fatalf("%q: got %q %v, want %q %v", sd, b.String(), ok, want, wantOK)
		}
	}
	f(``, ``, true)
	f(`[a]`, `a||;`, true)
	f(`[a x="1" y="2"][b@1 z=""]`, `a|x|1;a|y|2;b@1|z|;`, true)
	f(`[e v="q\"q" w="b\\s" x="r\]r" y="\n" z="x]y"]`, `e|v|q"q;e|w|b\s;e|x|r]r;e|y|\n;e|z|x]y;`, true)
	f(`[a x="1"`, `a|x|1;`, false)
	f(`[a x=1]`, ``, false)
	f(`-`, ``, false)
	f(`[a][`, `a||;`, false)
	f(`[`+strings.Repeat("i", 33)+`]`, ``, false)
}

// TestParseStructuredDataAgrees checks that every SD the parser accepts in
// the corpus can be walked.
func TestParseStructuredDataAgrees(t *testing.T) {
	p := corpusParser()
	for _, c := range corpus {
		var ev event.Event
		p.Parse(&ev, []byte(c.in), srcPlain, 0)
		if sd := ev.Syslog.StructuredData; len(sd) > 0 && !WalkStructuredData(sd, func(_, _, _ []byte) {}) {
			t.Fatalf("%s: cannot walk %q", c.name, sd)
		}
	}
}

// TestParseAllocs pins Parse at zero allocations for every corpus message,
// with and without a per-sender zone (time.Date path).
func TestParseAllocs(t *testing.T) {
	p := corpusParser()
	recv := mustTime(defaultRecv)
	var ev event.Event
	for _, c := range corpus {
		msg := []byte(c.in)
		for _, src := range []netip.Addr{srcPlain, srcBerlin} {
			if a := testing.AllocsPerRun(50, func() { p.Parse(&ev, msg, src, recv) }); a != 0 {
				t.Errorf("%s from %s: %v allocs/op", c.name, src, a)
			}
		}
	}
}

// TestParseAliases checks that every field is a slice of the message, not
// a copy.
func TestParseAliases(t *testing.T) {
	p := corpusParser()
	for _, c := range corpus {
		msg := []byte(c.in)
		var ev event.Event
		p.Parse(&ev, msg, srcPlain, 0)
		checkAliases(t, &ev.Syslog, msg)
	}
}

func checkAliases(t *testing.T, s *event.Syslog, msg []byte) {
	t.Helper()
	for _, f := range [][]byte{s.Hostname, s.AppName, s.ProcID, s.MsgID, s.StructuredData, s.Message, s.Raw} {
		if len(f) == 0 {
			continue
		}
		if len(msg) == 0 || !within(f, msg) {
			t.Fatalf("field %q is not a slice of %q", f, msg)
		}
	}
}

// within reports whether f lies inside msg's backing array.
func within(f, msg []byte) bool {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(msg)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(f)))
	return p >= base && p+uintptr(len(f)) <= base+uintptr(len(msg))
}

// TestParseConcurrent shares one Parser between goroutines; under -race it
// proves Parse keeps no mutable state.
func TestParseConcurrent(t *testing.T) {
	p := corpusParser()
	recv := mustTime(defaultRecv)
	errs := make(chan string, 4)
	for g := 0; g < 4; g++ {
		go func() {
			var ev event.Event
			for i := 0; i < 200; i++ {
				c := corpus[(i+g)%len(corpus)]
				src := srcPlain
				if c.src != "" {
					src = netip.MustParseAddr(c.src)
				}
				r := recv
				if c.recv != "" {
					r = mustTime(c.recv)
				}
				ok := p.Parse(&ev, []byte(c.in), src, r)
				if g := got(&ev, ok, r); g != c.want {
					errs <- fmt.Sprintf("%s: got %+v", c.name, g)
					return
				}
			}
			errs <- ""
		}()
	}
	for g := 0; g < 4; g++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}
