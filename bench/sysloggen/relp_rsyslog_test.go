package sysloggen

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trawlsec/trawl/bench/peer"
)

// TestSendRELPRsyslog sends over RELP to a real rsyslog (imrelp, package
// rsyslog-relp) with several sessions and rsyslog's default window, and
// checks that rsyslog stored exactly the messages it acknowledged: every
// one once, nothing else.
func TestSendRELPRsyslog(t *testing.T) {
	if _, err := peer.Rsyslogd(); err != nil {
		t.Skipf("rsyslog is not installed (scripts/deps.sh installs it): %v", err)
	}
	if err := peer.RsyslogModule("imrelp"); err != nil {
		t.Skipf("rsyslog's RELP input is not installed (package rsyslog-relp, scripts/deps.sh): %v", err)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out := filepath.Join(dir, "out.log")
	p, err := peer.StartRsyslog(dir, fmt.Sprintf(`global(workDirectory=%q)
module(load="imrelp")
input(type="imrelp" address="127.0.0.1" port="%d")
action(type="omfile" file=%q)
`, dir, port, out))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := p.WaitTCP(addr, 20*time.Second); err != nil {
		t.Fatalf("%v: %s", err, p.Tail(10))
	}
	cfg := Config{Target: netip.MustParseAddrPort(addr), RELP: true, Streams: 3, Messages: 30_001}
	res, err := Send(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v: %s", err, p.Tail(10))
	}
	if res.Messages != 30_001 || res.Unacked != 0 {
		t.Fatalf("result %+v", res)
	}
	// Stopped cleanly, rsyslog writes out what its queue holds.
	if err := p.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("rsyslogd did not stop cleanly: %v: %s", err, p.Tail(10))
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &received{seen: map[[2]uint64]int{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		r.add(t, sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	r.check(t, res)
	// The sessions ended cleanly: close, its answer, rsyslog's
	// serverclose and its own close. librelp logs a session the client
	// broke off; the one such line allowed is WaitTCP's probe connection.
	log, _ := os.ReadFile(p.Log)
	if n := strings.Count(string(log), "session broken"); n > 1 {
		t.Fatalf("rsyslog saw %d broken sessions:\n%s", n, log)
	}
}
