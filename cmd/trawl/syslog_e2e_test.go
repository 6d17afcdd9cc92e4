package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawlsec/trawl/syslog/relp"
)

// syslogNode is a trawl process with one input per syslog transport, on
// free loopback ports: syslog-udp, syslog-tcp, syslog-unix (a datagram
// socket in a temporary directory) and relp.
type syslogNode struct {
	*node
	udp, tcp, relp, unix string
}

// syslogNodeOptions adjusts the node startSyslogNode starts.
type syslogNodeOptions struct {
	// MaxMessage is max_message_bytes of every syslog input ("" = default).
	MaxMessage string
	// Inputs is more YAML under inputs: (indented by two spaces), e.g. a
	// syslog-tls input.
	Inputs string
	// Top is more top-level YAML, e.g. "spool:\n  fsync: always\n".
	Top string
}

// startSyslogNode starts the built binary with the syslog inputs and waits
// until it is healthy. The node is killed when the test ends; call stop
// for a clean shutdown.
func startSyslogNode(t *testing.T, o syslogNodeOptions) *syslogNode {
	t.Helper()
	sn := &syslogNode{udp: freeUDPPort(t), tcp: freePort(t), relp: freePort(t), unix: filepath.Join(t.TempDir(), "log.sock")}
	limit := ""
	if o.MaxMessage != "" {
		limit = "\n    max_message_bytes: " + o.MaxMessage
	}
	inputs := fmt.Sprintf(`  syslog-udp:
    type: syslog
    protocol: udp
    listen: %s
    sockets: 1%s
  syslog-tcp:
    type: syslog
    protocol: tcp
    listen: %s%s
  syslog-unix:
    type: syslog
    protocol: unix
    listen: %s%s
  relp:
    type: relp
    listen: %s%s
%s%s`, sn.udp, limit, sn.tcp, limit, sn.unix, limit, sn.relp, limit, o.Inputs, o.Top)
	sn.node = startNode(t, inputs)
	return sn
}

func freeUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// waitDelivered waits until the input has delivered want events.
func (n *node) waitDelivered(t *testing.T, input string, want int) {
	t.Helper()
	name := fmt.Sprintf(`trawl_input_delivered_events_total{input=%q}`, input)
	deadline := time.Now().Add(10 * time.Second)
	for n.metric(t, name) != fmt.Sprint(want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q, want %d", name, n.metric(t, name), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spoolJSON returns every event of the spool in dir, decoded from `trawl
// spool cat` output.
func spoolJSON(t *testing.T, dir string) []map[string]any {
	t.Helper()
	out, err := exec.Command(trawlBinary(t), "spool", "cat", dir).Output()
	if err != nil {
		t.Fatalf("spool cat: %v", err)
	}
	var evs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("spool cat printed a line that is not JSON: %v\n%s", err, sc.Bytes())
		}
		evs = append(evs, m)
	}
	return evs
}

// field returns the value at a dotted path of a decoded JSON object.
func field(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// byMessage indexes events by their message.
func byMessage(evs []map[string]any) map[string]map[string]any {
	idx := map[string]map[string]any{}
	for _, ev := range evs {
		if m, ok := ev["message"].(string); ok {
			idx[m] = ev
		}
	}
	return idx
}

func needLogger(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("util-linux logger is not installed (scripts/deps.sh installs bsdutils)")
	}
	return p
}

// TestEndToEndSyslogLogger sends with util-linux logger over every
// transport and format and checks each message arrives once with its
// fields: host, app name (-t), pid (--id), facility and severity (-p),
// text, and RFC 5424 structured data.
func TestEndToEndSyslogLogger(t *testing.T) {
	logger := needLogger(t)
	sn := startSyslogNode(t, syslogNodeOptions{})
	_, udpPort, _ := net.SplitHostPort(sn.udp)
	_, tcpPort, _ := net.SplitHostPort(sn.tcp)
	type send struct {
		input, text, tag string
		args             []string
		host, sd         bool // hostname and structured data expected
	}
	remote := func(port string, more ...string) []string {
		return append([]string{"-n", "127.0.0.1", "-P", port}, more...)
	}
	sd := []string{"--sd-id", "zoo@32473", "--sd-param", `tiger="hungry"`, "--sd-param", `lion="sleepy"`}
	sends := []send{
		{"syslog-udp", "e2e udp rfc5424", "app-udp5", append(remote(udpPort, "-d", "--rfc5424"), sd...), true, true},
		{"syslog-udp", "e2e udp rfc3164", "app-udp3", remote(udpPort, "-d", "--rfc3164"), true, false},
		{"syslog-tcp", "e2e tcp rfc5424", "app-tcp5", append(remote(tcpPort, "-T", "--rfc5424"), sd...), true, true},
		{"syslog-tcp", "e2e tcp rfc3164", "app-tcp3", remote(tcpPort, "-T", "--rfc3164"), true, false},
		{"syslog-tcp", "e2e tcp octet-count", "app-tcpoc", remote(tcpPort, "-T", "--octet-count", "--rfc5424"), true, false},
		{"syslog-tcp", "e2e tcp octet-count 3164", "app-tcpoc3", remote(tcpPort, "-T", "--octet-count", "--rfc3164"), true, false},
		{"syslog-unix", "e2e unix local", "app-unix", []string{"-u", sn.unix}, false, false},
		{"syslog-unix", "e2e unix rfc5424", "app-unix5", append([]string{"-u", sn.unix, "--rfc5424"}, sd...), true, true},
	}
	count := map[string]int{}
	for _, s := range sends {
		args := append(append([]string{}, s.args...), "-t", s.tag, "--id=4242", "-p", "local3.warning", s.text)
		if out, err := exec.Command(logger, args...).CombinedOutput(); err != nil {
			t.Fatalf("logger %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		count[s.input]++
	}
	for input, n := range count {
		sn.waitDelivered(t, input, n)
	}
	sn.stop(t)

	hostname, _ := os.Hostname()
	short, _, _ := strings.Cut(hostname, ".")
	evs := spoolJSON(t, sn.data)
	if len(evs) != len(sends) {
		t.Fatalf("spool holds %d events, want %d", len(evs), len(sends))
	}
	idx := byMessage(evs)
	for _, s := range sends {
		ev := idx[s.text]
		if ev == nil {
			t.Errorf("%s: message %q not in the spool", s.input, s.text)
			continue
		}
		check := func(path string, want any) {
			t.Helper()
			if got := field(ev, path); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %q: %s = %v, want %v", s.input, s.text, path, got, want)
			}
		}
		check("trawl.input", s.input)
		check("event.module", "syslog")
		check("process.name", s.tag)
		check("process.pid", 4242)
		check("log.syslog.facility.name", "local3")
		check("log.syslog.severity.name", "warning")
		check("log.syslog.priority", 19*8+4)
		if h, _ := field(ev, "host.hostname").(string); s.host && h != hostname && h != short {
			t.Errorf("%s %q: host.hostname = %q, want %q", s.input, s.text, h, hostname)
		} else if !s.host && h != "" {
			t.Errorf("%s %q: host.hostname = %q, want none (logger's local format has none)", s.input, s.text, h)
		}
		if got, _ := field(ev, "log.syslog.structured_data").(string); s.sd != strings.Contains(got, `[zoo@32473 tiger="hungry" lion="sleepy"]`) {
			t.Errorf("%s %q: structured data %q", s.input, s.text, got)
		}
		if s.input != "syslog-unix" {
			check("source.ip", "127.0.0.1")
		}
		if fl := field(ev, "trawl.flags"); fl != nil {
			t.Errorf("%s %q: flags %v", s.input, s.text, fl)
		}
	}
	if strings.Contains(sn.stderr.String(), "dropped 1") || !strings.Contains(sn.stderr.String(), "input syslog-tcp: received 4, delivered 4, dropped 0") {
		t.Errorf("final ledger lines:\n%s", sn.stderr.String())
	}
}

// relpSession is a minimal RELP client for the e2e tests.
type relpSession struct {
	t    *testing.T
	c    net.Conn
	buf  []byte
	next uint32
}

func dialRELPSession(t *testing.T, addr string) *relpSession {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rs := &relpSession{t: t, c: c, next: 1}
	rs.call("open", "relp_version=0\nrelp_software=trawl-e2e\ncommands=syslog")
	return rs
}

// call sends a command and waits for its "200" response.
func (rs *relpSession) call(cmd, data string) {
	rs.t.Helper()
	txnr := rs.next
	rs.next = relp.NextTxnr(txnr)
	if _, err := rs.c.Write(relp.AppendFrame(nil, txnr, cmd, []byte(data))); err != nil {
		rs.t.Fatal(err)
	}
	rs.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, n, err := relp.Parse(rs.buf, 1<<20)
		if err != nil {
			rs.t.Fatal(err)
		}
		if n > 0 {
			rs.buf = rs.buf[n:]
			code, _, _, err := relp.ParseResponse(f.Data)
			if string(f.Command) != "rsp" || f.Txnr != txnr || code != 200 || err != nil {
				rs.t.Fatalf("%s: got %d %s %q", cmd, f.Txnr, f.Command, f.Data)
			}
			return
		}
		var b [1024]byte
		k, err := rs.c.Read(b[:])
		if k == 0 && err != nil {
			rs.t.Fatalf("%s: %v", cmd, err)
		}
		rs.buf = append(rs.buf, b[:k]...)
	}
}

// expectClosedByServer waits until the server closes c.
func expectClosedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [512]byte
	for {
		_, err := c.Read(b[:])
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server did not close the connection")
		}
		if err != nil {
			return
		}
	}
}

// TestEndToEndSyslogGarbageAndLimits checks, on the built binary, that
// garbage on the TCP and RELP ports closes only that connection and is
// counted, and that an oversized message is kept cut, flagged and counted.
func TestEndToEndSyslogGarbageAndLimits(t *testing.T) {
	sn := startSyslogNode(t, syslogNodeOptions{MaxMessage: "256"})

	good, err := net.Dial("tcp", sn.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	fmt.Fprintf(good, "<13>Nov 25 10:00:00 h t: before garbage\n")
	bad, err := net.Dial("tcp", sn.tcp)
	if err != nil {
		t.Fatal(err)
	}
	m := "<13>1 2026-11-25T10:00:00Z h t - - - counted"
	fmt.Fprintf(bad, "%d %s\x01\x02garbage where a count belongs", len(m), m)
	expectClosedByServer(t, bad)
	fmt.Fprintf(good, "<13>Nov 25 10:00:00 h t: after garbage\n<13>Nov 25 10:00:00 h t: %s\n", strings.Repeat("o", 600))
	good.Close()

	rs := dialRELPSession(t, sn.relp)
	rs.call("syslog", "<13>1 2026-11-25T10:00:00Z h t - - - relp before garbage")
	rbad, err := net.Dial("tcp", sn.relp)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(rbad, "GET / HTTP/1.1\r\nHost: trawl\r\n\r\n")
	expectClosedByServer(t, rbad)
	rs.call("syslog", "<13>1 2026-11-25T10:00:00Z h t - - - relp after garbage")
	rs.call("close", "")

	sn.waitDelivered(t, "syslog-tcp", 4)
	sn.waitDelivered(t, "relp", 2)
	for _, c := range []struct{ input, reason, want string }{
		{"syslog-tcp", "framing", "1"},
		{"syslog-tcp", "truncated", "1"},
		{"relp", "framing", "1"},
		{"relp", "unacknowledged", "0"},
	} {
		name := fmt.Sprintf(`trawl_input_errors_total{input=%q,reason=%q}`, c.input, c.reason)
		if got := sn.metric(t, name); got != c.want {
			t.Errorf("%s = %q, want %s", name, got, c.want)
		}
	}
	sn.stop(t)
	idx := byMessage(spoolJSON(t, sn.data))
	for _, msg := range []string{"before garbage", "counted", "after garbage", "relp before garbage", "relp after garbage"} {
		if idx[msg] == nil {
			t.Errorf("message %q not in the spool", msg)
		}
	}
	cut := idx[strings.Repeat("o", 256-len("<13>Nov 25 10:00:00 h t: "))]
	if cut == nil {
		t.Fatal("the oversized message is not in the spool, cut to 256 bytes")
	}
	if fl := fmt.Sprint(field(cut, "trawl.flags")); !strings.Contains(fl, "truncated") {
		t.Errorf("the cut message's flags are %s", fl)
	}
}
