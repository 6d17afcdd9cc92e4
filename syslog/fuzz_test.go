package syslog

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	v4rfc5424 "github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/trawlsec/trawl/event"
)

// fuzzRecv is an unlikely receive time, so a field set to it is known to
// come from it.
var fuzzRecv = mustTime("2024-01-15T12:00:00.000000007Z")

// checkParse parses in and checks what must hold for any input: no panic,
// fields that alias in, the flag matching the result, the RFC limits, and
// the same result when parsed again into a dirty event.
func checkParse(t *testing.T, p *Parser, in []byte) *event.Event {
	ev := &event.Event{}
	ok := p.Parse(ev, in, srcBerlin, fuzzRecv)
	s := &ev.Syslog
	if ev.Kind != event.KindSyslog || ok != (ev.Flags&event.FlagParseError == 0) {
		t.Fatalf("%q: ok=%v kind=%v flags=%v", in, ok, ev.Kind, ev.Flags)
	}
	checkAliases(t, s, in)
	if s.Facility > 23 || s.Severity > 7 || s.Version > 1 {
		t.Fatalf("%q: facility %d severity %d version %d", in, s.Facility, s.Severity, s.Version)
	}
	trimmed := trimTrailer(in)
	if !ok {
		if !bytes.Equal(s.Raw, trimmed) || !bytes.Equal(s.Message, trimmed) || ev.Time != fuzzRecv {
			t.Fatalf("%q: parse error keeps %q / %q, time %d", in, s.Raw, s.Message, ev.Time)
		}
		return ev
	}
	if s.Raw != nil {
		t.Fatalf("%q: Raw set on success", in)
	}
	// MSG always runs to the end of the message.
	if len(s.Message) > 0 && !bytes.HasSuffix(trimmed, s.Message) {
		t.Fatalf("%q: message %q is not its tail", in, s.Message)
	}
	if len(s.Hostname) > maxHostname || len(s.ProcID) > maxProcID {
		t.Fatalf("%q: hostname %d, procid %d bytes", in, len(s.Hostname), len(s.ProcID))
	}
	if s.Version == 1 && (len(s.AppName) > maxAppName || len(s.MsgID) > maxMsgID) {
		t.Fatalf("%q: app-name %d, msgid %d bytes", in, len(s.AppName), len(s.MsgID))
	}
	again := &event.Event{Flags: event.FlagParseError, Time: 99, Syslog: event.Syslog{Raw: []byte("x"), MsgID: []byte("y")}}
	if ok2 := p.Parse(again, in, srcBerlin, fuzzRecv); ok2 != ok || !sameSyslog(&again.Syslog, &ev.Syslog) ||
		again.Time != ev.Time || again.Flags != ev.Flags {
		t.Fatalf("%q: a dirty event gives %+v, a clean one %+v", in, again.Syslog, ev.Syslog)
	}
	return ev
}

// sameSyslog reports whether a and b hold the same values.
func sameSyslog(a, b *event.Syslog) bool {
	return a.Facility == b.Facility && a.Severity == b.Severity && a.Version == b.Version &&
		bytes.Equal(a.Hostname, b.Hostname) && bytes.Equal(a.AppName, b.AppName) &&
		bytes.Equal(a.ProcID, b.ProcID) && bytes.Equal(a.MsgID, b.MsgID) &&
		bytes.Equal(a.StructuredData, b.StructuredData) && bytes.Equal(a.Message, b.Message) &&
		bytes.Equal(a.Raw, b.Raw)
}

func orNil(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

// format5424 writes ev back as an RFC 5424 message. The BOM keeps a MSG
// that itself starts with a BOM intact through the parser's stripping.
func format5424(ev *event.Event) []byte {
	s := &ev.Syslog
	ts := "-"
	if ev.Time != fuzzRecv {
		ts = time.Unix(0, ev.Time).UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
	}
	out := "<" + strconv.Itoa(int(s.Facility)*8+int(s.Severity)) + ">1 " + ts + " " + orNil(s.Hostname) + " " +
		orNil(s.AppName) + " " + orNil(s.ProcID) + " " + orNil(s.MsgID) + " " + orNil(s.StructuredData)
	if len(s.Message) > 0 {
		out += " " + bom + string(s.Message)
	}
	return []byte(out)
}

func FuzzParse5424(f *testing.F) {
	for _, c := range corpus {
		if strings.Contains(c.in, ">1 ") {
			f.Add([]byte(c.in))
		}
	}
	f.Add([]byte(`<0>1 9999-12-31T23:59:59.999999+23:59 h a p m [a][b c="\\\"\]"] ` + bom))
	f.Add([]byte(`<191>1 1677-01-01T00:00:00Z - - - - -`))
	p := corpusParser()
	strict := v4rfc5424.NewParser()
	f.Fuzz(func(t *testing.T, in []byte) {
		ev := checkParse(t, p, in)
		if ev.Syslog.Version == 1 {
			// What we parse as RFC 5424 survives a round trip.
			out := format5424(ev)
			ev2 := checkParse(t, p, out)
			if ev2.Syslog.Version != 1 || !sameSyslog(&ev2.Syslog, &ev.Syslog) || ev2.Time != ev.Time {
				t.Fatalf("%q\nre-parsed as %q:\n %+v\n %+v", in, out, ev.Syslog, ev2.Syslog)
			}
		}
		// What go-syslog v4 accepts in strict mode, we accept with the
		// same fields. It also accepts VERSION 2 to 999, which no RFC
		// defines; we parse only version 1 as RFC 5424.
		if m, err := strict.Parse(in); err == nil && m != nil && fromV4(m).version == 1 {
			if ev.Syslog.Version != 1 {
				t.Fatalf("go-syslog/v4 accepts %q, we do not", in)
			}
			if d := diff5424(ev, fuzzRecv, fromV4(m)); len(d) > 0 {
				t.Fatalf("go-syslog/v4 differs on %q:\n%s", in, strings.Join(d, "\n"))
			}
		}
	})
}

func FuzzParse3164(f *testing.F) {
	for _, c := range corpus {
		if !strings.Contains(c.in, ">1 ") {
			f.Add([]byte(c.in))
		}
	}
	f.Add([]byte("<13>Feb 29 23:59:59.123456789 2023 UTC: h t[]: m"))
	f.Add([]byte("<13>1: 2: x: *Jan  1 00:00:00 CEST 2024: %A-1-B: m"))
	f.Add([]byte("<13>2024-02-30T10:00:00+0100 h"))
	p := corpusParser()
	f.Fuzz(func(t *testing.T, in []byte) {
		ev := checkParse(t, p, in)
		s := &ev.Syslog
		if ev.Flags&event.FlagParseError != 0 || s.Version != 0 {
			return
		}
		if len(s.Hostname) > 0 && !isHost(s.Hostname) {
			t.Fatalf("%q: hostname %q", in, s.Hostname)
		}
		// A year-less stamp lands within a year of the receive time.
		if ev.Time != fuzzRecv && absDiff(ev.Time, fuzzRecv) > 367*nsPerDay && !hasYear(in) {
			t.Fatalf("%q: time %s", in, time.Unix(0, ev.Time).UTC())
		}
	})
}

// hasYear reports whether in holds four digits in a row: the only way a
// parsed RFC 3164 stamp can carry its own year.
func hasYear(in []byte) bool {
	n := 0
	for _, c := range in {
		if isDigit(c) {
			if n++; n == 4 {
				return true
			}
		} else {
			n = 0
		}
	}
	return false
}

func FuzzSplit(f *testing.F) {
	f.Add([]byte("<13>a\n<13>b\r\n<13>c\x00"), uint16(0), uint8(3))
	f.Add([]byte(oc("<13>a", "<13>bb\nc", strings.Repeat("x", 40))+"\n"), uint16(8), uint8(1))
	f.Add([]byte("\n\n2024-01-15 x\n"+strings.Repeat("y", 30)), uint16(10), uint8(7))
	f.Add([]byte("9 <13>a\n"), uint16(4), uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, max uint16, chunk uint8) {
		mx := int(max%512) + 1
		s1 := &Splitter{MaxMessage: mx}
		a, errA := drive(t, s1, stream, int(chunk)+1, s1.BufferSize())
		s2 := &Splitter{MaxMessage: mx}
		b, errB := drive(t, s2, stream, len(stream)+1, len(stream)+s2.BufferSize())
		// How the stream is read must not change what comes out.
		if fmt.Sprintf("%q", a) != fmt.Sprintf("%q", b) || (errA == nil) != (errB == nil) || s1.Framing() != s2.Framing() {
			t.Fatalf("chunked %q %v, whole %q %v", a, errA, b, errB)
		}
		for _, m := range a {
			if s1.Framing() == FramingNonTransparent && strings.ContainsAny(m, "\n\x00") {
				t.Fatalf("line %q holds a trailer", m)
			}
			if len(strings.TrimPrefix(m, "T:")) == 0 && s1.Framing() == FramingNonTransparent {
				t.Fatalf("empty line returned")
			}
		}
	})
}

// TestParsePrefixes runs the fuzz invariants on every prefix of every
// corpus message, and on each with one byte changed to a delimiter, so CI
// covers cut and damaged messages without the fuzzer.
func TestParsePrefixes(t *testing.T) {
	p := corpusParser()
	for _, c := range corpus {
		for n := 0; n <= len(c.in); n++ {
			checkParse(t, p, []byte(c.in[:n]))
		}
		for i := 0; i < len(c.in); i++ {
			for _, d := range []byte{' ', ':', '[', ']', '"', '\\', '<', '>', '-', '\n', 0, 0xff} {
				b := []byte(c.in)
				b[i] = d
				checkParse(t, p, b)
			}
		}
	}
}
