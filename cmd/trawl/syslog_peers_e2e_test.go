package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trawlsec/trawl/bench/peer"
)

// The tests in this file run trawl against the syslog software it replaces
// or receives from: rsyslog (Debian packages rsyslog and rsyslog-relp)
// forwarding with omfwd and omrelp, and syslog-ng's load generator loggen
// (unpacked by scripts/syslog-ng.sh). Each test starts its own peers with
// private configurations and ports and stops them. They skip only when a
// peer is not installed; scripts/deps.sh installs them.

// needPeer skips the test when err says a peer is not installed, and
// fails it on any other error.
func needPeer(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, peer.ErrMissing) {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// startRsyslog starts rsyslogd with the configuration conf(dir) in a
// private directory dir, waits until it accepts connections on listen, and
// stops it when the test ends.
func startRsyslog(t *testing.T, listen string, conf func(dir string) string) *peer.Proc {
	t.Helper()
	_, err := peer.Rsyslogd()
	needPeer(t, err)
	dir := t.TempDir()
	p, err := peer.StartRsyslog(dir, conf(dir))
	needPeer(t, err)
	if err := p.WaitTCP(listen, 10*time.Second); err != nil {
		p.Kill()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
			t.Errorf("rsyslogd: %v", err)
		}
		if t.Failed() {
			t.Logf("rsyslogd log:\n%s", p.Tail(30))
		}
	})
	return p
}

// peerPort returns the port of host:port, for peer configurations.
func peerPort(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// peerDoc is the part of a syslog event's JSON the tests check.
type peerDoc struct {
	Timestamp string `json:"@timestamp"`
	Message   string `json:"message"`
	Event     struct {
		Module string `json:"module"`
	} `json:"event"`
	Trawl struct {
		Input string   `json:"input"`
		Seq   uint64   `json:"seq"`
		Flags []string `json:"flags"`
	} `json:"trawl"`
	Host struct {
		Hostname string `json:"hostname"`
	} `json:"host"`
	Process struct {
		Name string `json:"name"`
		PID  int    `json:"pid"`
	} `json:"process"`
	Log struct {
		Syslog struct {
			Facility struct {
				Code int `json:"code"`
			} `json:"facility"`
			Severity struct {
				Code int `json:"code"`
			} `json:"severity"`
			MsgID          string `json:"msgid"`
			StructuredData string `json:"structured_data"`
		} `json:"syslog"`
	} `json:"log"`
}

// peerSpoolLines returns the events of input in the spool under data
// (the node may be running) as JSON lines, from `trawl spool cat`.
func peerSpoolLines(t *testing.T, data, input string) [][]byte {
	t.Helper()
	cmd := exec.Command(trawlBinary(t), "spool", "cat", "--input", input, data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spool cat: %v\n%s", err, stderr.String())
	}
	return bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
}

// peerSpoolDocs decodes the events of input in the spool under data.
func peerSpoolDocs(t *testing.T, data, input string) []peerDoc {
	t.Helper()
	var docs []peerDoc
	for _, l := range peerSpoolLines(t, data, input) {
		if len(l) == 0 {
			continue
		}
		var d peerDoc
		if err := json.Unmarshal(l, &d); err != nil {
			t.Fatalf("spool cat printed a line that is not JSON: %v\n%s", err, l)
		}
		docs = append(docs, d)
	}
	return docs
}

// peerWaitMetric polls a metric of n until it is at least want.
func peerWaitMetric(t *testing.T, n *node, name string, want int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, _ := strconv.Atoi(n.metric(t, name))
		if got >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d after %v, want %d\n%s", name, got, timeout, want, n.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peerMsg is one message the test hands rsyslog, and the fields trawl must
// show for it after forwarding.
type peerMsg struct {
	line     string // what the test sends to rsyslog
	host     string
	app      string
	pid      int
	fac, sev int
	msgid    string // RFC 5424 sources only
	sd       string // RFC 5424 sources only
	text     string
	ts       string // @timestamp trawl must show
}

// TestRsyslogForwarding has rsyslog forward messages to trawl three ways:
// omfwd over TCP with octet counting and the RFC 5424 template, omfwd over
// TCP with LF framing and rsyslog's traditional (RFC 3164) template, and
// omrelp with its default RFC 3164 template with RFC 3339 timestamps.
// rsyslog receives them on imtcp: RFC 5424 and RFC 3164 lines written by
// the test, and one from util-linux logger. Every message must arrive once
// on each input with its host, app name, pid, facility, severity and text.
func TestRsyslogForwarding(t *testing.T) {
	needPeer(t, peer.RsyslogModule("omrelp"))
	oct, lf, relp := freePort(t), freePort(t), freePort(t)
	n := startNode(t, fmt.Sprintf(`  oct:
    type: syslog
    protocol: tcp
    listen: %s
  lf:
    type: syslog
    protocol: tcp
    listen: %s
  relp:
    type: relp
    listen: %s
`, oct, lf, relp))

	in := freePort(t)
	startRsyslog(t, in, func(dir string) string {
		return fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="%s" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="%s" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
  action(type="omfwd" target="127.0.0.1" port="%s" protocol="tcp")
  action(type="omrelp" target="127.0.0.1" port="%s")
}
`, dir, peerPort(in), peerPort(oct), peerPort(lf), peerPort(relp))
	})

	var msgs []peerMsg
	for i := 0; i < 48; i++ {
		m := peerMsg{
			host: fmt.Sprintf("host-%02d.example.net", i),
			app:  fmt.Sprintf("app%d", i%5),
			pid:  1000 + i,
			fac:  i % 24,
			sev:  (i * 5) % 8,
			text: fmt.Sprintf("peer message %d: user=alice action=login ok", i),
		}
		pri := m.fac*8 + m.sev
		if i%2 == 0 {
			m.msgid, m.sd = fmt.Sprintf("ID%d", i), fmt.Sprintf(`[test@32473 i="%d" q="a\"b"]`, i)
			m.ts = fmt.Sprintf("2026-11-25T10:00:%02d.123456Z", i)
			m.line = fmt.Sprintf("<%d>1 %s %s %s %d %s %s %s", pri, m.ts, m.host, m.app, m.pid, m.msgid, m.sd, m.text)
		} else {
			// RFC 3164 carries no year and no zone: rsyslog fills in its
			// own, so only the fields are compared.
			m.line = fmt.Sprintf("<%d>Nov 25 10:00:%02d %s %s[%d]: %s", pri, i, m.host, m.app, m.pid, m.text)
		}
		msgs = append(msgs, m)
	}
	c, err := net.Dial("tcp", in)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Fprintf(c, "%s\n", m.line)
	}
	c.Close()
	// util-linux logger, RFC 5424 with octet counting, as a real client.
	hostname, _ := os.Hostname()
	lg := peerMsg{host: hostname, app: "loggerapp", pid: 4321, fac: 21, sev: 5, text: "peer message from logger", msgid: "LOGGER"}
	if out, err := exec.Command("logger", "-n", "127.0.0.1", "-P", peerPort(in), "-T", "--octet-count", "--rfc5424",
		"-t", lg.app, "--id=4321", "-p", "local5.notice", "--msgid", lg.msgid, lg.text).CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, out)
	}
	msgs = append(msgs, lg)

	for _, input := range []string{"oct", "lf", "relp"} {
		peerWaitMetric(t, n, fmt.Sprintf(`trawl_input_delivered_events_total{input=%q}`, input), len(msgs), 15*time.Second)
	}
	for _, input := range []string{"oct", "lf", "relp"} {
		for _, reason := range []string{"parse_error", "framing", "truncated", "relp_protocol"} {
			if got := n.metric(t, fmt.Sprintf(`trawl_input_errors_total{input=%q,reason=%q}`, input, reason)); got != "0" && got != "" {
				t.Errorf("input %s: %s errors = %s", input, reason, got)
			}
		}
	}
	n.stop(t)

	for _, input := range []string{"oct", "lf", "relp"} {
		docs := peerSpoolDocs(t, n.data, input)
		if len(docs) != len(msgs) {
			t.Errorf("input %s: %d events in the spool, want %d", input, len(docs), len(msgs))
		}
		byText := map[string]peerDoc{}
		for _, d := range docs {
			if _, dup := byText[d.Message]; dup {
				t.Errorf("input %s: message %q twice", input, d.Message)
			}
			byText[d.Message] = d
		}
		for _, m := range msgs {
			text := m.text
			if input == "oct" && m.msgid == "" {
				// rsyslog's msg property of an RFC 3164 message keeps the
				// space after "tag:", and the RFC 5424 template puts it
				// after the SP that ends the header: in RFC 5424 that
				// space is part of MSG.
				text = " " + text
			}
			d, ok := byText[text]
			if !ok {
				t.Errorf("input %s: message %q missing", input, m.text)
				continue
			}
			check := func(what string, got, want any) {
				if got != want {
					t.Errorf("input %s, message %q: %s = %v, want %v", input, m.text, what, got, want)
				}
			}
			check("event.module", d.Event.Module, "syslog")
			check("flags", strings.Join(d.Trawl.Flags, ","), "")
			check("host.hostname", d.Host.Hostname, m.host)
			check("process.name", d.Process.Name, m.app)
			check("process.pid", d.Process.PID, m.pid)
			check("facility", d.Log.Syslog.Facility.Code, m.fac)
			check("severity", d.Log.Syslog.Severity.Code, m.sev)
			if input == "oct" {
				// Only the RFC 5424 template carries MSGID and structured
				// data, and the sender's timestamp to the microsecond.
				check("msgid", d.Log.Syslog.MsgID, m.msgid)
				if m.sd != "" {
					check("structured_data", d.Log.Syslog.StructuredData, m.sd)
				}
				if m.ts != "" {
					check("@timestamp", d.Timestamp, m.ts)
				}
			}
			if input == "relp" && m.ts != "" {
				// RSYSLOG_ForwardFormat keeps the time to the microsecond.
				check("@timestamp", d.Timestamp, m.ts)
			}
		}
	}
}

// peerLoggenKeys returns how often each loggen message is among lines
// (events as JSON), keyed by the number of the connection (thread) that
// sent it and its sequence number on that connection. It fails on an
// event that is not a well-parsed loggen message. (Tens of thousands of
// events: read with byte searches, not a JSON decoder.)
func peerLoggenKeys(t *testing.T, lines [][]byte) map[[2]int]int {
	t.Helper()
	keys := make(map[[2]int]int, len(lines))
	num := func(l []byte, after string) int {
		i := bytes.Index(l, []byte(after))
		if i < 0 {
			return -1
		}
		v := 0
		for _, c := range l[i+len(after):] {
			if c < '0' || c > '9' {
				break
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		// loggen writes "<38>TIMESTAMP localhost prg00000[1234]: seq: N,
		// thread: T, runid: ..., stamp: ... PADD...".
		s, th := num(l, `"message":"seq: `), num(l, `, thread: `)
		if s < 0 || th < 0 || bytes.Contains(l, []byte(`"flags"`)) || !bytes.Contains(l, []byte(`"process":{"name":"prg00000","pid":1234}`)) ||
			!bytes.Contains(l, []byte(`"host":{"hostname":"localhost"}`)) || !bytes.Contains(l, []byte(`"severity":{"code":6,`)) {
			t.Fatalf("event is not a well parsed loggen message: %s", l)
		}
		keys[[2]int{th, s}]++
	}
	return keys
}

// TestLoggenLoad sends trawl syslog-ng's loggen load for a few seconds
// over TCP (two connections) and UDP, 256-byte messages. Over TCP every
// message loggen counts must be in the spool exactly once; over UDP what
// trawl received plus what the kernel dropped and trawl counted as
// upstream loss must be exactly what loggen sent, and the spool must hold
// every received message once.
func TestLoggenLoad(t *testing.T) {
	root, err := peer.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sng, err := peer.FindSyslogNG(root)
	needPeer(t, err)
	tcp, udp := freePort(t), freeUDP(t)
	n := startNode(t, fmt.Sprintf("  lt:\n    type: syslog\n    protocol: tcp\n    listen: %s\n  lu:\n    type: syslog\n    protocol: udp\n    listen: %s\n", tcp, udp))

	run := func(args ...string) peer.LoggenResult {
		t.Helper()
		cmd := sng.LoggenCmd(t.Context(), args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("loggen %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		res, err := peer.ParseLoggen(out)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("loggen %s: %d messages, %.0f msgs/s", strings.Join(args, " "), res.Count, res.Rate)
		if res.Count == 0 {
			t.Fatalf("loggen sent nothing:\n%s", out)
		}
		return res
	}
	// -r is per connection.
	tcpRes := run("-i", "-S", "--active-connections=2", "-r", "10000", "-I", "2", "-s", "256", "127.0.0.1", peerPort(tcp))
	udpRes := run("-i", "-D", "-r", "20000", "-I", "2", "-s", "256", "127.0.0.1", peerPort(udp))

	peerWaitMetric(t, n, `trawl_input_delivered_events_total{input="lt"}`, int(tcpRes.Count), 15*time.Second)
	// UDP: wait until trawl is quiet, then account for every datagram.
	var recv, lost int
	deadline := time.Now().Add(15 * time.Second)
	for {
		recv, _ = strconv.Atoi(n.metric(t, `trawl_input_received_events_total{input="lu"}`))
		lost, _ = strconv.Atoi(n.metric(t, `trawl_input_upstream_lost_total{input="lu",cause="socket_overflow"}`))
		if recv+lost >= int(udpRes.Count) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if recv+lost != int(udpRes.Count) {
		t.Errorf("UDP: loggen sent %d; trawl received %d and counted %d lost in the kernel: %d unaccounted for",
			udpRes.Count, recv, lost, int(udpRes.Count)-recv-lost)
	}
	if lost > 0 {
		t.Logf("UDP: the kernel dropped %d datagrams, counted by trawl as upstream loss", lost)
	}
	for _, in := range []string{"lt", "lu"} {
		if got := n.metric(t, fmt.Sprintf(`trawl_input_errors_total{input=%q,reason="parse_error"}`, in)); got != "0" {
			t.Errorf("input %s: parse errors = %s", in, got)
		}
	}
	n.stop(t)

	tk := peerLoggenKeys(t, peerSpoolLines(t, n.data, "lt"))
	if len(tk) != int(tcpRes.Count) {
		t.Errorf("TCP: %d distinct messages in the spool, loggen sent %d", len(tk), tcpRes.Count)
	}
	// loggen numbers each connection's messages from 0.
	perThread := map[int]int{}
	for k, c := range tk {
		if c != 1 {
			t.Errorf("TCP: thread %d seq %d stored %d times", k[0], k[1], c)
		}
		perThread[k[0]]++
	}
	for th, cnt := range perThread {
		for s := 0; s < cnt; s++ {
			if tk[[2]int{th, s}] == 0 {
				t.Fatalf("TCP: thread %d seq %d missing (thread has %d messages)", th, s, cnt)
			}
		}
	}
	uk := peerLoggenKeys(t, peerSpoolLines(t, n.data, "lu"))
	stored := 0
	for k, c := range uk {
		if c != 1 {
			t.Errorf("UDP: thread %d seq %d stored %d times", k[0], k[1], c)
		}
		stored += c
	}
	if stored != recv {
		t.Errorf("UDP: %d messages in the spool, trawl counted %d received", stored, recv)
	}
}

// TestRELPAtLeastOnce: rsyslog streams uniquely numbered messages over
// RELP (omrelp behind a disk-assisted queue, retrying forever, so rsyslog
// itself loses nothing) while trawl is killed with SIGKILL mid-stream and
// restarted on the same data directory. Every number must be in the spool
// at least once; the duplicates (messages trawl stored but could not
// acknowledge before it died, which rsyslog sent again) are reported.
func TestRELPAtLeastOnce(t *testing.T) {
	needPeer(t, peer.RsyslogModule("omrelp"))
	const total = 30000
	relp := freePort(t)
	extra := fmt.Sprintf("  relp:\n    type: relp\n    listen: %s\n", relp)
	data := t.TempDir()
	n1 := startNodeIn(t, data, extra)

	in := freePort(t)
	startRsyslog(t, in, func(dir string) string {
		return fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
module(load="omrelp")
main_queue(queue.size="200000")
input(type="imtcp" address="127.0.0.1" port="%s" ruleset="relp")
ruleset(name="relp") {
  action(type="omrelp" target="127.0.0.1" port="%s"
         queue.type="LinkedList" queue.filename="relpq" queue.size="200000" queue.saveOnShutdown="on"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}
`, dir, peerPort(in), peerPort(relp))
	})

	c, err := net.Dial("tcp", in)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(c)
	for i := 0; i < total; i++ {
		fmt.Fprintf(w, "<134>1 2026-11-25T10:00:00.000001Z src app 7 - - at-least-once n=%06d\n", i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// Kill trawl once a quarter has been delivered.
	got := peerWaitMetric(t, n1, `trawl_input_delivered_events_total{input="relp"}`, total/4, 20*time.Second)
	if err := n1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n1.done
	if got >= total {
		t.Fatalf("trawl had received all %d messages before it was killed: the test proves nothing; send more", got)
	}
	t.Logf("killed trawl with SIGKILL after it delivered about %d of %d messages", got, total)

	n2 := startNodeIn(t, data, extra)
	restarted := time.Now()
	// rsyslog reconnects after its retry interval (1 s) and sends again
	// what trawl had not acknowledged, then the rest of its queue.
	var miss []int
	var lines [][]byte
	for deadline := time.Now().Add(40 * time.Second); ; {
		lines = peerSpoolLines(t, data, "relp")
		if miss = peerMissingNumbers(t, lines, total); len(miss) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the restarted node had every message %v after it started", time.Since(restarted).Round(time.Millisecond))
	n2.stop(t)
	lines = peerSpoolLines(t, data, "relp")
	if miss = peerMissingNumbers(t, lines, total); len(miss) > 0 {
		t.Fatalf("%d of %d numbers missing from the spool after the restart (first %v); %d events stored",
			len(miss), total, miss[:min(len(miss), 10)], len(lines))
	}
	t.Logf("every one of %d numbers is in the spool; %d events stored, %d duplicates (sent again by rsyslog after the kill)",
		total, len(lines), len(lines)-total)
	if !strings.Contains(n2.stderr.String(), "input relp: received") {
		t.Errorf("the restarted node did not report its ledger:\n%s", n2.stderr.String())
	}
}

// peerMissingNumbers returns the numbers below total that no event in
// lines (JSON) carries; it fails on an event that is not one of the
// test's messages.
func peerMissingNumbers(t *testing.T, lines [][]byte, total int) []int {
	t.Helper()
	const prefix = `"message":"at-least-once n=`
	seen := make([]bool, total)
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		i := bytes.Index(l, []byte(prefix))
		if i < 0 || len(l) < i+len(prefix)+7 || l[i+len(prefix)+6] != '"' || bytes.Contains(l, []byte(`"flags"`)) ||
			!bytes.Contains(l, []byte(`"process":{"name":"app","pid":7}`)) || !bytes.Contains(l, []byte(`"facility":{"code":16,`)) ||
			!bytes.Contains(l, []byte(`"severity":{"code":6,`)) {
			t.Fatalf("unexpected event in the spool: %s", l)
		}
		n, err := strconv.Atoi(string(l[i+len(prefix) : i+len(prefix)+6]))
		if err != nil || n >= total {
			t.Fatalf("event with a bad number: %s", l)
		}
		seen[n] = true
	}
	var miss []int
	for i, ok := range seen {
		if !ok {
			miss = append(miss, i)
		}
	}
	return miss
}
