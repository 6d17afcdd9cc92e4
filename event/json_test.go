package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// absent marks a path that must not be in the output.
const absent = "<absent>"

// checkJSON fails unless out is one valid JSON object on one line with no
// key repeated within an object. The subtree under the top-level "app" key
// is the application's own object and is only checked for validity.
func checkJSON(t testing.TB, out []byte) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", out)
	}
	if len(out) == 0 || out[0] != '{' || out[len(out)-1] != '}' {
		t.Fatalf("not a bare JSON object: %q", out)
	}
	if err := checkNoDuplicateKeys(out); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
}

// checkOneLine fails if out would not stay one line of JSON lines output.
func checkOneLine(t testing.TB, out []byte) {
	t.Helper()
	if bytes.ContainsAny(out, "\n\r") {
		t.Fatalf("output is not one line: %q", out)
	}
}

func checkNoDuplicateKeys(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return err
				}
				key := k.(string)
				if seen[key] && path != ".app" && !strings.HasPrefix(path, ".app.") {
					return fmt.Errorf("duplicate key %q in %q", key, path)
				}
				seen[key] = true
				if err := walk(path + "." + key); err != nil {
					return err
				}
			}
			_, err = d.Token()
			return err
		case json.Delim('['):
			for d.More() {
				if err := walk(path + "[]"); err != nil {
					return err
				}
			}
			_, err = d.Token()
			return err
		}
		return nil
	}
	if err := walk(""); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}

// lookup follows a dotted path through nested objects. Keys holding a dot
// themselves are not used by the rendering, except "@timestamp".
func lookup(m map[string]any, path string) (any, bool) {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = o[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// jsonText renders v as compact JSON without HTML escaping, so that a
// wanted value can be written as JSON text.
func jsonText(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "<" + err.Error() + ">"
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// canonical re-encodes JSON text as jsonText would, so that a wanted value
// may use any escaping.
func canonical(t testing.TB, text string) string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("bad wanted JSON %s: %v", text, err)
	}
	return jsonText(v)
}

func parseJSON(t testing.TB, out []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(out))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("cannot unmarshal %s: %v", out, err)
	}
	return m
}

// testJSON renders e and checks each path against the JSON text wanted,
// or against absent.
func testJSON(t *testing.T, name string, e *Event, want map[string]string) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		t.Helper()
		out := AppendJSON([]byte("prefix"), e)
		if !bytes.HasPrefix(out, []byte("prefix")) {
			t.Fatalf("AppendJSON dropped dst: %q", out)
		}
		out = out[len("prefix"):]
		checkJSON(t, out)
		checkOneLine(t, out)
		m := parseJSON(t, out)
		for path, w := range want {
			v, ok := lookup(m, path)
			if w == absent {
				if ok {
					t.Errorf("%s = %s, want it absent", path, jsonText(v))
				}
				continue
			}
			if !ok {
				t.Errorf("%s missing, want %s", path, w)
				continue
			}
			if got := jsonText(v); got != canonical(t, w) {
				t.Errorf("%s = %s, want %s", path, got, w)
			}
		}
		if t.Failed() {
			t.Logf("output: %s", out)
		}
	})
}

func TestJSON_Flow(t *testing.T) {
	testJSON(t, "ipfix", sampleFlow(), map[string]string{
		"@timestamp":                    `"2024-11-25T23:59:59Z"`,
		"event.kind":                    `"event"`,
		"event.module":                  `"netflow"`,
		"event.dataset":                 `"netflow.flow"`,
		"event.category":                `["network"]`,
		"event.created":                 `"2024-11-26T00:00:00.123456789Z"`,
		"event.sequence":                `4242`,
		"event.start":                   `"2024-11-25T23:59:29Z"`,
		"event.end":                     `"2024-11-25T23:59:57.5Z"`,
		"event.duration":                `28500000000`,
		"event.original":                absent,
		"observer.hostname":             `"trawl-1"`,
		"observer.ip":                   `"192.0.2.1"`,
		"trawl.input":                   `"netflow"`,
		"trawl.seq":                     `4242`,
		"trawl.flags":                   absent,
		"source.ip":                     `"10.1.2.3"`,
		"source.port":                   `51234`,
		"destination.ip":                `"198.51.100.77"`,
		"destination.port":              `443`,
		"network.transport":             `"tcp"`,
		"network.iana_number":           `"6"`,
		"network.type":                  `"ipv4"`,
		"network.bytes":                 `1523420`,
		"network.packets":               `1032`,
		"netflow.type":                  `"IPFIX"`,
		"netflow.exporter":              `"192.0.2.1:49152"`,
		"netflow.sampler_address":       `"192.0.2.1"`,
		"netflow.sampling_rate":         `1000`,
		"netflow.sequence_num":          `987654`,
		"netflow.observation_domain_id": `256`,
		"netflow.in_if":                 `3`,
		"netflow.out_if":                `7`,
		"netflow.src_as":                `64512`,
		"netflow.dst_as":                `15169`,
		"netflow.next_hop":              `"10.1.0.1"`,
		"netflow.tcp_flags":             `27`,
		"netflow.ip_tos":                `16`,
		"netflow.etype":                 `2048`,
		"netflow.src_mask":              `24`,
		"netflow.dst_mask":              `20`,
		"netflow.src_net":               `"10.1.2.0/24"`,
		"netflow.dst_net":               `"198.51.96.0/20"`,
		"netflow.vlan_id":               `100`,
		"message":                       absent,
	})

	e := sampleFlow()
	e.Flow.Type = FlowSFlow5
	e.Flow.Proto = 1
	e.Flow.SrcPort, e.Flow.DstPort = 0, 0
	e.Source = netip.MustParseAddrPort("[2001:db8::2]:6343")
	e.Flow.SrcAddr = netip.MustParseAddr("2001:db8:1::5")
	e.Flow.DstAddr = netip.MustParseAddr("::ffff:198.51.100.7")
	e.Flow.Etype = 0x86dd
	e.Flow.TimeStartNs, e.Flow.TimeEndNs = 0, 0
	e.Flow.SrcMask, e.Flow.DstMask = 0, 129
	e.Flow.NextHop = netip.Addr{}
	testJSON(t, "sflow ipv6", e, map[string]string{
		"event.module":      `"sflow"`,
		"event.dataset":     `"sflow.flow"`,
		"event.start":       absent,
		"event.end":         absent,
		"event.duration":    absent,
		"netflow.type":      `"SFLOW_5"`,
		"netflow.exporter":  `"[2001:db8::2]:6343"`,
		"observer.ip":       `"2001:db8::2"`,
		"source.ip":         `"2001:db8:1::5"`,
		"source.port":       absent,
		"destination.ip":    `"198.51.100.7"`,
		"network.type":      `"ipv6"`,
		"network.transport": `"icmp"`,
		"netflow.src_net":   absent,
		"netflow.dst_net":   absent, // a mask longer than the address is not a prefix
		"netflow.next_hop":  absent,
	})

	e = &Event{Kind: KindFlow, Flow: Flow{Type: 9, Proto: 253}}
	testJSON(t, "minimal", e, map[string]string{
		"@timestamp":          `"1970-01-01T00:00:00Z"`,
		"event.created":       absent,
		"event.module":        `"netflow"`,
		"observer":            absent,
		"source":              absent,
		"destination":         absent,
		"network.transport":   `"253"`,
		"network.iana_number": `"253"`,
		"network.bytes":       `0`,
		"netflow.type":        `"UNKNOWN_9"`,
		"netflow.exporter":    absent,
		"trawl.seq":           `0`,
		"trawl.input":         absent,
	})
}

func TestJSON_Syslog(t *testing.T) {
	testJSON(t, "rfc5424", sampleSyslog(), map[string]string{
		"@timestamp":                   `"2003-10-11T22:14:15.003Z"`,
		"message":                      `"An application event log entry \"quoted\" ü"`,
		"event.module":                 `"syslog"`,
		"event.dataset":                `"syslog.log"`,
		"event.sequence":               `17`,
		"source.ip":                    `"127.0.0.1"`,
		"source.port":                  `40001`,
		"host.hostname":                `"mymachine.example.com"`,
		"process.name":                 `"evntslog"`,
		"process.pid":                  `4711`,
		"log.syslog.facility.code":     `20`,
		"log.syslog.facility.name":     `"local4"`,
		"log.syslog.severity.code":     `5`,
		"log.syslog.severity.name":     `"notice"`,
		"log.syslog.priority":          `165`,
		"log.syslog.version":           `"1"`,
		"log.syslog.msgid":             `"ID47"`,
		"log.syslog.procid":            absent,
		"log.syslog.structured_data":   `"[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]"`,
		"observer.ip":                  absent,
		"event.original":               absent,
		"trawl.input":                  `"syslog_udp"`,
		"netflow":                      absent,
		"event.category":               absent,
		"log.syslog.facility.code.bad": absent,
	})

	e := sampleSyslog()
	e.Syslog = Syslog{Facility: 0, Severity: 0, AppName: []byte("su"), ProcID: []byte("x12"), Message: []byte("tab\there")}
	e.Source = netip.AddrPort{}
	testJSON(t, "rfc3164 kern.emerg", e, map[string]string{
		"log.syslog.facility.code": `0`,
		"log.syslog.facility.name": `"kern"`,
		"log.syslog.severity.name": `"emerg"`,
		"log.syslog.priority":      `0`,
		"log.syslog.version":       absent,
		"log.syslog.procid":        `"x12"`,
		"process.pid":              absent,
		"process.name":             `"su"`,
		"host":                     absent,
		"source":                   absent,
		"message":                  `"tab\there"`,
	})

	e = sampleSyslog()
	e.Syslog = Syslog{Facility: 30, Severity: 9, ProcID: []byte("4294967296")}
	testJSON(t, "out of range", e, map[string]string{
		"log.syslog.facility.code": `30`,
		"log.syslog.facility.name": absent,
		"log.syslog.severity.code": `9`,
		"log.syslog.severity.name": absent,
		"log.syslog.procid":        `"4294967296"`,
		"process":                  absent,
		"message":                  absent,
	})

	e = sampleSyslog()
	e.Flags = FlagParseError | FlagTruncated
	e.Syslog = Syslog{Raw: []byte("garbage \x00\x1f\xff\"\\ line")}
	want := `"garbage \u0000\u001f\ufffd\"\\ line"`
	testJSON(t, "parse error", e, map[string]string{
		"message":        want,
		"event.original": want,
		"trawl.flags":    `["parse_error","truncated"]`,
		"log":            absent,
		"process":        absent,
		"host":           absent,
	})
}

func TestJSON_Audit(t *testing.T) {
	testJSON(t, "execve", sampleAudit(), map[string]string{
		"@timestamp":                `"2024-11-25T23:59:59Z"`,
		"event.module":              `"audit"`,
		"event.dataset":             `"audit.event"`,
		"event.action":              `"executed"`,
		"event.outcome":             `"success"`,
		"process.pid":               `31337`,
		"process.parent.pid":        `1000`,
		"process.executable":        `"/usr/bin/curl"`,
		"process.name":              `"curl"`,
		"process.working_directory": `"/home/alice"`,
		"process.args":              `["curl","-s","https://example.com/x?a=1&b=2"]`,
		"process.args_count":        `3`,
		"user.id":                   `"1001"`,
		"user.name":                 `"bob"`,
		"user.audit.id":             `"1000"`,
		"user.audit.name":           `"alice"`,
		"group.id":                  `"1002"`,
		"group.name":                `"staff"`,
		"process.title":             `"curl -s https://example.com/x?a=1\u0026b=2"`,
		"file.path":                 `"/usr/bin/curl"`,
		"destination.ip":            `"2001:db8::1"`,
		"destination.port":          `443`,
		"tags":                      `["exec-watch"]`,
		"auditd.sequence":           `123456`,
		"auditd.record_type":        `"SYSCALL"`,
		"auditd.result":             `"success"`,
		"auditd.syscall":            `"execve"`,
		"auditd.raw":                `"type=SYSCALL msg=audit(1732579199.000:123456): arch=c000003e syscall=59 success=yes\ntype=EXECVE msg=audit(1732579199.000:123456): argc=3 a0=\"curl\""`,
		"source":                    absent,
		"message":                   absent,
		"event.original":            absent,
	})

	e := sampleAudit()
	e.Audit = Audit{RecordType: 1334, Result: []byte("fail"), UID: UnsetID, AUID: UnsetID, GID: UnsetID}
	testJSON(t, "sparse", e, map[string]string{
		"event.outcome":      `"failure"`,
		"auditd.result":      `"fail"`,
		"auditd.record_type": `"UNKNOWN[1334]"`,
		"auditd.sequence":    absent,
		"process":            absent,
		"user":               absent,
		"group":              absent,
		"file":               absent,
		"destination":        absent,
		"tags":               absent,
		"event.action":       absent,
	})

	e = sampleAudit()
	e.Audit = Audit{Result: []byte("maybe"), UID: 0, AUID: UnsetID, GID: 5, Args: [][]byte{{}}}
	testJSON(t, "odd result", e, map[string]string{
		"event.outcome":      `"unknown"`,
		"user.id":            `"0"`,
		"user.audit":         absent,
		"group.id":           `"5"`,
		"process.args":       `[""]`,
		"process.args_count": `1`,
		"auditd.record_type": absent,
	})

	e = sampleAudit()
	e.Flags = FlagParseError
	e.Audit = Audit{Raw: []byte("type=??? \xc3"), UID: UnsetID, AUID: UnsetID, GID: UnsetID}
	testJSON(t, "parse error", e, map[string]string{
		"event.original": `"type=??? \ufffd"`,
		"message":        `"type=??? \ufffd"`,
		"auditd.raw":     `"type=??? \ufffd"`,
		"trawl.flags":    `["parse_error"]`,
	})
}

func TestJSON_Process(t *testing.T) {
	testJSON(t, "exit", sampleProcess(), map[string]string{
		"@timestamp":         `"2024-11-25T23:59:59Z"`,
		"event.module":       `"ebpf"`,
		"event.dataset":      `"ebpf.process"`,
		"event.action":       `"exit"`,
		"event.category":     `["process"]`,
		"event.type":         `["end"]`,
		"event.duration":     `12345678901`,
		"process.pid":        `4242`,
		"process.parent.pid": `1`,
		"process.name":       `"bash"`,
		"process.executable": `"/usr/bin/bash"`,
		"process.args":       `["bash","-c","echo hi; sleep 12"]`,
		"process.exit_code":  `-9`,
		"process.uptime":     `12`,
		"process.start":      `"2024-11-25T23:59:46.654321099Z"`,
		"user.id":            `"1000"`,
		"user.audit.id":      `"1001"`,
		"group.id":           `"100"`,
		"ebpf.cgroup_id":     `20015998343868`,
		"source":             absent,
	})

	e := sampleProcess()
	e.Process.Action = ProcessExec
	e.Process.DurationNs = 0
	e.Process.CgroupID = 0
	e.Process.UID, e.Process.GID, e.Process.LoginUID = 0, 0, UnsetID
	testJSON(t, "exec as root", e, map[string]string{
		"event.action":      `"exec"`,
		"event.type":        `["start"]`,
		"event.duration":    absent,
		"process.exit_code": absent,
		"process.uptime":    absent,
		"user.id":           `"0"`,
		"user.audit":        absent,
		"group.id":          `"0"`,
		"ebpf":              absent,
	})

	e = sampleProcess()
	e.Process.ExitCode = 0
	e.Process.Args = nil
	testJSON(t, "exit 0", e, map[string]string{
		"process.exit_code":  `0`,
		"process.args":       absent,
		"process.args_count": absent,
	})

	e = sampleProcess()
	e.Process.Action = 7
	testJSON(t, "unknown action", e, map[string]string{
		"event.action":      absent,
		"event.type":        absent,
		"process.exit_code": absent,
	})
}

func TestJSON_Network(t *testing.T) {
	testJSON(t, "close", sampleNetwork(), map[string]string{
		"event.module":        `"ebpf"`,
		"event.dataset":       `"ebpf.network"`,
		"event.action":        `"close"`,
		"event.type":          `["connection","end"]`,
		"event.duration":      `250000000`,
		"network.transport":   `"tcp"`,
		"network.iana_number": `"6"`,
		"network.type":        `"ipv6"`,
		"network.direction":   absent,
		"process.pid":         `4242`,
		"process.name":        `"curl"`,
		"user.id":             `"1000"`,
		"source.ip":           `"2001:db8::10"`,
		"source.port":         `40000`,
		"source.bytes":        `517`,
		"destination.ip":      `"2001:db8::1"`,
		"destination.port":    `443`,
		"destination.bytes":   `12034`,
	})

	e := sampleNetwork()
	e.Network.Action = NetworkConnect
	e.Network.Src = netip.MustParseAddrPort("[::ffff:10.0.0.1]:40000")
	e.Network.Dst = netip.MustParseAddrPort("10.0.0.2:80")
	e.Network.DurationNs = 0
	e.Network.Transport = 0
	e.Network.UID = UnsetID
	testJSON(t, "connect v4 mapped", e, map[string]string{
		"event.action":      `"connect"`,
		"event.type":        `["connection","start"]`,
		"event.duration":    absent,
		"network.type":      `"ipv4"`,
		"network.direction": `"egress"`,
		"network.transport": absent,
		"source.ip":         `"10.0.0.1"`,
		"destination.ip":    `"10.0.0.2"`,
		"user":              absent,
	})

	e = sampleNetwork()
	e.Network = Network{Action: NetworkAccept}
	testJSON(t, "accept empty", e, map[string]string{
		"network.direction": `"ingress"`,
		"network.type":      absent,
		"source.ip":         absent,
		"source.bytes":      `0`,
		"process.pid":       `0`,
		"process.name":      absent,
		"user.id":           `"0"`,
	})
}

func TestJSON_App(t *testing.T) {
	testJSON(t, "object", sampleApp(), map[string]string{
		"@timestamp":     `"2024-11-26T00:00:00.123456789Z"`,
		"event.created":  `"2024-11-26T00:00:00.123456789Z"`,
		"event.module":   `"app"`,
		"event.dataset":  `"app.log"`,
		"message":        `"upstream slow"`,
		"log.level":      `"warn"`,
		"app.user.id":    `42`,
		"app.latency_ms": `1234.5`,
		"app.level":      `"warn"`,
		"source.ip":      `"127.0.0.1"`,
		"source.port":    `51000`,
		"tags":           absent,
		"event.original": absent,
	})

	e := sampleApp()
	e.App.Raw = []byte(" \t{\"a\":[1,{\"b\":null}]}\r\n")
	e.App.Message, e.App.Level = nil, nil
	testJSON(t, "whitespace around", e, map[string]string{
		"app.a":   `[1,{"b":null}]`,
		"message": absent,
		"log":     absent,
	})

	e = sampleApp()
	e.Flags = FlagParseError
	e.App = App{Raw: []byte("{\"msg\": \"cut\n\x01\xe2\x82")}
	want := `"{\"msg\": \"cut\n\u0001\ufffd\ufffd"`
	testJSON(t, "parse error", e, map[string]string{
		"app":            absent,
		"tags":           `["_jsonparsefailure"]`,
		"event.original": want,
		"message":        want,
		"trawl.flags":    `["parse_error"]`,
	})

	e = sampleApp()
	e.App = App{Raw: []byte("  ")}
	testJSON(t, "blank", e, map[string]string{"app": absent})
}

func TestJSON_Common(t *testing.T) {
	e := &Event{Flags: FlagTruncated | 1<<9 | 1<<15, Seq: 1<<64 - 1, Time: -1, RecvTime: 5,
		Source: netip.MustParseAddrPort("[fe80::1%eth0]:514"), Observer: []byte("h\x7f\u2028")}
	testJSON(t, "unknown kind", e, map[string]string{
		"@timestamp":        `"1969-12-31T23:59:59.999999999Z"`,
		"event.created":     `"1970-01-01T00:00:00.000000005Z"`,
		"event.module":      `"unknown"`,
		"event.dataset":     `"unknown.event"`,
		"event.sequence":    `18446744073709551615`,
		"trawl.seq":         `18446744073709551615`,
		"trawl.flags":       `["truncated","bit9","bit15"]`,
		"observer.hostname": "\"h\x7f\u2028\"",
		"source.ip":         `"fe80::1%eth0"`,
		"source.port":       `514`,
	})
	out := AppendJSON(nil, e)
	if !bytes.Contains(out, []byte(`h`+"\x7f"+`\u2028"`)) {
		t.Fatalf("U+2028 not escaped: %q", out)
	}
}

func TestAppendString(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		got := string(appendString(nil, []byte(in)))
		if got != want {
			t.Fatalf("appendString(%q) = %s, want %s", in, got, want)
		}
		var s string
		if err := json.Unmarshal([]byte(got), &s); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", in, got, err)
		}
		// Each invalid byte becomes one U+FFFD, as a []rune conversion does.
		if s != string([]rune(in)) {
			t.Fatalf("appendString(%q) decodes to %q, want %q", in, s, string([]rune(in)))
		}
	}
	f("", `""`)
	f("plain ascii ~", `"plain ascii ~"`)
	f(`q"b\s/`, `"q\"b\\s/"`)
	f("\n\r\t\b\f\x00\x1f", `"\n\r\t\u0008\u000c\u0000\u001f"`)
	f("ü€𝄞", `"ü€𝄞"`)
	f("a\xffb", `"a\ufffdb"`)
	f("\xe2\x82", `"\ufffd\ufffd"`)                     // truncated 3-byte sequence
	f("\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`)           // surrogate
	f("\xc0\xaf", `"\ufffd\ufffd"`)                     // overlong
	f("x\u2028y\u2029", `"x\u2028y\u2029"`)             // line separators
	f("<html>&amp;", `"<html>&amp;"`)                   // no HTML escaping
	f("\xf4\x90\x80\x80", `"\ufffd\ufffd\ufffd\ufffd"`) // beyond U+10FFFF
}

// TestAppendString_Positions moves each kind of special byte through a
// plain text long enough for the 8-byte fast path, at every alignment.
func TestAppendString_Positions(t *testing.T) {
	plain := "The quick brown fox jumps over the lazy dog 0123456789"
	for _, special := range []string{`"`, `\`, "\n", "\x01", "\x1f", "\x7f", "\xff", "é", "\u2028", "𝄞", "\xe2\x82"} {
		for pos := 0; pos <= 24; pos++ {
			in := plain[:pos] + special + plain[pos:]
			out := appendString(nil, []byte(in))
			var got string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("appendString(%q) = %s: %v", in, out, err)
			}
			if want := string([]rune(in)); got != want {
				t.Fatalf("appendString(%q) decodes to %q, want %q", in, got, want)
			}
			for _, c := range out {
				if c < 0x20 {
					t.Fatalf("appendString(%q) = %q holds a raw control character", in, out)
				}
			}
		}
	}
}

func TestAppendRFC3339Nano(t *testing.T) {
	f := func(ns int64, want string) {
		t.Helper()
		std := time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
		if got := string(appendRFC3339Nano(nil, ns)); got != want || got != std {
			t.Fatalf("appendRFC3339Nano(%d) = %q, want %q (time.Format: %q)", ns, got, want, std)
		}
	}
	f(0, "1970-01-01T00:00:00Z")
	f(1, "1970-01-01T00:00:00.000000001Z")
	f(-1, "1969-12-31T23:59:59.999999999Z")
	f(recvNs, "2024-11-26T00:00:00.123456789Z")
	f(951782400*1e9+5e8, "2000-02-29T00:00:00.5Z")
	f(-2203891200*1e9, "1900-03-01T00:00:00Z")
	f(4107456000*1e9, "2100-02-28T00:00:00Z")
	f(4107542399*1e9+1e7, "2100-02-28T23:59:59.01Z")
	f(math.MinInt64, "1677-09-21T00:12:43.145224192Z")
	f(math.MaxInt64, "2262-04-11T23:47:16.854775807Z")

	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		ns := int64(r.Uint64())
		if r.IntN(2) == 0 {
			ns = ns / 1e9 * 1e9 // whole seconds
		}
		std := time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
		if got := string(appendRFC3339Nano(nil, ns)); got != std {
			t.Fatalf("appendRFC3339Nano(%d) = %q, want %q", ns, got, std)
		}
	}
}

func TestModuleDataset(t *testing.T) {
	f := func(k Kind, ft FlowType, module, dataset string) {
		t.Helper()
		e := &Event{Kind: k, Flow: Flow{Type: ft}}
		if got := Module(e); got != module {
			t.Errorf("Module(%s, %d) = %q, want %q", k, ft, got, module)
		}
		if got := Dataset(e); got != dataset {
			t.Errorf("Dataset(%s, %d) = %q, want %q", k, ft, got, dataset)
		}
		if !strings.HasPrefix(dataset, module+".") {
			t.Errorf("dataset %q does not start with module %q", dataset, module)
		}
	}
	f(KindFlow, FlowNetFlow5, "netflow", "netflow.flow")
	f(KindFlow, FlowNetFlow9, "netflow", "netflow.flow")
	f(KindFlow, FlowIPFIX, "netflow", "netflow.flow")
	f(KindFlow, FlowUnknown, "netflow", "netflow.flow")
	f(KindFlow, FlowSFlow5, "sflow", "sflow.flow")
	f(KindSyslog, FlowSFlow5, "syslog", "syslog.log")
	f(KindAudit, 0, "audit", "audit.event")
	f(KindProcess, 0, "ebpf", "ebpf.process")
	f(KindNetwork, 0, "ebpf", "ebpf.network")
	f(KindApp, 0, "app", "app.log")
	f(KindUnknown, 0, "unknown", "unknown.event")
	f(99, 0, "unknown", "unknown.event")
}

func TestJSONAllocs(t *testing.T) {
	buf := make([]byte, 0, 64<<10)
	for _, s := range sampleEvents() {
		if n := testing.AllocsPerRun(100, func() { buf = AppendJSON(buf[:0], s.e) }); n != 0 {
			t.Errorf("AppendJSON(%s): %v allocs/op, want 0", s.name, n)
		}
	}
	e := sampleSyslog()
	e.Flags = FlagParseError | FlagTruncated
	e.Syslog.Raw = []byte("\xff\x00 bad \u2028")
	if n := testing.AllocsPerRun(100, func() { buf = AppendJSON(buf[:0], e) }); n != 0 {
		t.Errorf("AppendJSON(syslog parse error): %v allocs/op, want 0", n)
	}
	// Decoded events render without allocating too: the spool reader path.
	var d Event
	for _, s := range sampleEvents() {
		b := AppendBinary(nil, s.e)
		if n := testing.AllocsPerRun(100, func() {
			if err := DecodeBinary(&d, b); err != nil {
				t.Fatal(err)
			}
			buf = AppendJSON(buf[:0], &d)
		}); n != 0 {
			t.Errorf("DecodeBinary+AppendJSON(%s): %v allocs/op, want 0", s.name, n)
		}
	}
}

// TestControlInString: raw bytes below 0x20 count only inside strings,
// escapes (\" and \\) are followed, and what it accepts encoding/json
// accepts.
func TestControlInString(t *testing.T) {
	for _, c := range []struct {
		v    string
		want int
	}{
		{`{"a":"b"}`, -1},
		{"{\n\t\"a\" :\r\n 1}", -1},
		{"{\"a\":\"x\ty\"}", 7},
		{"{\"\":\"\a\\\\b\"}", 5},
		{`{"a":"\"\\"}` + "\x01", -1},
		{"{\"a\":\"\\\"\x1f\"}", 8},
		{`{"a\u0001":"\n"}`, -1},
	} {
		got := ControlInString([]byte(c.v))
		if got != c.want {
			t.Errorf("ControlInString(%q) = %d, want %d", c.v, got, c.want)
		}
		if got < 0 && c.v[0] == '{' && c.v[len(c.v)-1] == '}' && !json.Valid([]byte(c.v)) {
			t.Errorf("%q passes but is not valid JSON", c.v)
		}
	}
}

// TestHasControl: the eight-bytes-at-a-time test finds every byte below
// 0x20 at every position and flags nothing else, whatever surrounds it.
func TestHasControl(t *testing.T) {
	for _, fill := range []byte{' ', 'a', 0x7f, 0x80, 0xff} {
		for n := 0; n <= 19; n++ {
			for pos := 0; pos < n; pos++ {
				for c := 0; c < 256; c++ {
					v := bytes.Repeat([]byte{fill}, n)
					v[pos] = byte(c)
					if got, want := hasControl(v), c < 0x20; got != want {
						t.Fatalf("hasControl(%q) = %v, want %v", v, got, want)
					}
				}
			}
		}
	}
}
