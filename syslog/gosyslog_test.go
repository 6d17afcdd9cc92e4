package syslog

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	v3 "github.com/influxdata/go-syslog/v3"
	v3rfc5424 "github.com/influxdata/go-syslog/v3/rfc5424"
	v4 "github.com/leodido/go-syslog/v4"
	v4rfc5424 "github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/trawlsec/trawl/event"
)

// libMsg is an RFC 5424 message as go-syslog returns it (v3 and v4 share
// the shape but not the types).
type libMsg struct {
	pri                      *uint8
	version                  uint16
	ts                       *time.Time
	host, app, pid, msgid, m *string
	sd                       *map[string]map[string]string
}

func fromV3(m v3.Message) libMsg {
	s := m.(*v3rfc5424.SyslogMessage)
	return libMsg{s.Priority, s.Version, s.Timestamp, s.Hostname, s.Appname, s.ProcID, s.MsgID, s.Message, s.StructuredData}
}

func fromV4(m v4.Message) libMsg {
	s := m.(*v4rfc5424.SyslogMessage)
	return libMsg{s.Priority, s.Version, s.Timestamp, s.Hostname, s.Appname, s.ProcID, s.MsgID, s.Message, s.StructuredData}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// sdMap turns our raw STRUCTURED-DATA into go-syslog's map shape, values
// unescaped.
func sdMap(sd []byte) map[string]map[string]string {
	if len(sd) == 0 {
		return nil
	}
	out := map[string]map[string]string{}
	WalkStructuredData(sd, func(id, name, value []byte) {
		e := out[string(id)]
		if e == nil {
			e = map[string]string{}
			out[string(id)] = e
		}
		if name != nil {
			e[string(name)] = string(AppendUnescaped(nil, value))
		}
	})
	return out
}

// diff5424 compares our event with a go-syslog message field by field and
// returns the differences.
func diff5424(ev *event.Event, recv int64, l libMsg) []string {
	var d []string
	s := &ev.Syslog
	if l.pri == nil || *l.pri != s.Facility*8+s.Severity {
		d = append(d, fmt.Sprintf("priority %v vs %d", l.pri, s.Facility*8+s.Severity))
	}
	if l.version != uint16(s.Version) {
		d = append(d, fmt.Sprintf("version %d vs %d", l.version, s.Version))
	}
	switch {
	case l.ts == nil && ev.Time != recv:
		d = append(d, "time: lib has none, we have one")
	case l.ts != nil && (l.ts.Year() < minYear || l.ts.Year() > maxYear):
		// Out of unix-nanosecond range: we use the receive time.
		if ev.Time != recv {
			d = append(d, fmt.Sprintf("time %s out of range, but we have %d", l.ts, ev.Time))
		}
	case l.ts != nil && l.ts.UnixNano() != ev.Time:
		d = append(d, fmt.Sprintf("time %s vs %s", l.ts.UTC(), time.Unix(0, ev.Time).UTC()))
	}
	for _, f := range [...]struct {
		name string
		lib  *string
		ours []byte
	}{{"hostname", l.host, s.Hostname}, {"appname", l.app, s.AppName}, {"procid", l.pid, s.ProcID}, {"msgid", l.msgid, s.MsgID}} {
		if deref(f.lib) != string(f.ours) {
			d = append(d, fmt.Sprintf("%s %q vs %q", f.name, deref(f.lib), f.ours))
		}
	}
	// v3 keeps the BOM in MSG, and both keep trailing LF/CR/NUL; we drop
	// them.
	if m := string(trimTrailer([]byte(strings.TrimPrefix(deref(l.m), bom)))); m != string(s.Message) {
		d = append(d, fmt.Sprintf("message %q vs %q", m, s.Message))
	}
	var lsd map[string]map[string]string
	if l.sd != nil {
		lsd = *l.sd
	}
	if ours := sdMap(s.StructuredData); !(len(lsd) == 0 && len(ours) == 0) && !reflect.DeepEqual(lsd, ours) {
		d = append(d, fmt.Sprintf("structured data %v vs %v", lsd, ours))
	}
	return d
}

// TestParse5424MatchesGoSyslog parses every RFC 5424 corpus message, and
// every prefix of it, with go-syslog v3 (influxdata) and v4 (leodido) in
// strict mode. Where a library accepts a message we must accept it too,
// with the same fields. (We accept more than they do: up to nine fraction
// digits, unescaped ']' in values; such inputs are not in this set.)
func TestParse5424MatchesGoSyslog(t *testing.T) {
	p := NewParser(Options{})
	recv := mustTime(defaultRecv)
	libs := []struct {
		name  string
		parse func([]byte) (libMsg, bool)
	}{
		{"go-syslog/v3", func(b []byte) (libMsg, bool) {
			m, err := v3rfc5424.NewParser().Parse(b)
			if err != nil || m == nil {
				return libMsg{}, false
			}
			return fromV3(m), true
		}},
		{"go-syslog/v4", func(b []byte) (libMsg, bool) {
			m, err := v4rfc5424.NewParser().Parse(b)
			if err != nil || m == nil {
				return libMsg{}, false
			}
			return fromV4(m), true
		}},
	}
	for _, lib := range libs {
		whole, prefixes := 0, 0
		for _, c := range corpus {
			if c.want.ver != 1 {
				continue
			}
			for n := len(c.in); n > 0; n-- {
				in := []byte(c.in[:n])
				l, ok := lib.parse(in)
				if !ok {
					continue
				}
				var ev event.Event
				if !p.Parse(&ev, in, srcPlain, recv) || ev.Syslog.Version != 1 {
					t.Errorf("%s accepts %q, we do not (%q)", lib.name, in, ev.Syslog.Message)
					continue
				}
				if d := diff5424(&ev, recv, l); len(d) > 0 {
					t.Errorf("%s differs on %q:\n%s", lib.name, in, strings.Join(d, "\n"))
				}
				if n == len(c.in) {
					whole++
				} else {
					prefixes++
				}
			}
		}
		t.Logf("%s: %d whole messages and %d prefixes compared", lib.name, whole, prefixes)
		if whole < 18 {
			t.Errorf("%s parsed only %d corpus messages: the comparison proves little", lib.name, whole)
		}
	}
}
