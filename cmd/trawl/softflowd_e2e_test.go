package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/flow"
)

// sfPcap writes a classic libpcap capture of n flows (UDP and TCP over
// IPv4 and IPv6, every 5-tuple distinct; flow i has 1 + i%4 packets out
// and i%3 back) and returns how many flow records softflowd must export
// for it: one per direction with traffic.
func sfPcap(t *testing.T, path string, n int) int {
	t.Helper()
	le, be := binary.LittleEndian, binary.BigEndian
	b := le.AppendUint32(nil, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, 1) // Ethernet
	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	records := 0
	add := func(src, dst netip.Addr, sport, dport uint16, proto uint8) {
		l4 := be.AppendUint16(nil, sport)
		l4 = be.AppendUint16(l4, dport)
		if proto == 6 {
			l4 = append(l4, make([]byte, 16)...)
			l4[12], l4[13] = 5<<4, 0x18 // header length, PSH|ACK
		} else {
			l4 = be.AppendUint16(l4, 8+100)
			l4 = append(l4, 0, 0)
		}
		l4 = append(l4, make([]byte, 100)...)
		f := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}
		if src.Is4() {
			f = be.AppendUint16(f, 0x0800)
			f = append(f, 0x45, 0)
			f = be.AppendUint16(f, uint16(20+len(l4)))
			f = append(f, 0, 0, 0, 0, 64, proto, 0, 0)
		} else {
			f = be.AppendUint16(f, 0x86dd)
			f = append(f, 0x60, 0, 0, 0)
			f = be.AppendUint16(f, uint16(len(l4)))
			f = append(f, proto, 64)
		}
		f = append(append(append(f, src.AsSlice()...), dst.AsSlice()...), l4...)
		b = le.AppendUint32(b, uint32(ts.Unix()))
		b = le.AppendUint32(b, uint32(ts.Nanosecond()/1000))
		b = le.AppendUint32(b, uint32(len(f)))
		b = le.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
		ts = ts.Add(time.Millisecond)
	}
	for i := 0; i < n; i++ {
		src := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		dst := netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		if i%2 == 1 {
			src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 1, 14: byte(i >> 8), 15: byte(i)})
			dst = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 2, 14: byte(i >> 8), 15: byte(i)})
		}
		proto := uint8(17)
		if i%5 < 2 {
			proto = 6
		}
		sport, dport := uint16(20000+i), uint16(53+i%7)
		for range 1 + i%4 {
			add(src, dst, sport, dport, proto)
		}
		for range i % 3 {
			add(dst, src, dport, sport, proto)
		}
		records++
		if i%3 != 0 {
			records++
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return records
}

// softflowd exports the flows of pcap to addr as NetFlow version (9 or
// 10) and returns how many flow records it says it exported.
func softflowd(t *testing.T, pcap, addr string, version int) int {
	t.Helper()
	// -d: foreground; -6: track IPv6 flows; -a: flow times from the
	// capture. No -c: with it softflowd waits for softflowctl at the end
	// of the file.
	out, err := exec.Command(sbinTool(t, "softflowd", "softflowd"), "-d", "-6", "-a", "-r", pcap, "-n", addr, "-v", fmt.Sprint(version),
		"-p", filepath.Join(t.TempDir(), "pid")).CombinedOutput()
	if err != nil {
		t.Fatalf("softflowd -v %d: %v\n%s", version, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		var flows, recs int
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "Flows exported: %d (%d records)", &flows, &recs); err == nil {
			return recs
		}
	}
	t.Fatalf("softflowd -v %d printed no export count:\n%s", version, out)
	return 0
}

// sfRehearse runs softflowd on pcap into a socket of the test, decodes
// the export with package flow and returns the flow records and the flows
// flow.SeqTracker counts as lost, the number the node's ledger must show.
// For IPFIX it also reports whether the sequence numbers count each
// message's own records, as softflowd 1.1.0 does (RFC 7011 §3.1: records
// sent before the message).
func sfRehearse(t *testing.T, pcap string, version int) (flows, seqLost int, postIncrement bool) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	exported := softflowd(t, pcap, c.LocalAddr().String(), version)
	dec := flow.NewDecoder(flow.NewTemplates())
	seq := flow.NewSeqTracker()
	buf := make([]byte, 65536)
	postIncrement = version == 10
	var prev uint32
	for i := 0; ; i++ {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break
			}
			t.Fatal(err)
		}
		info, err := dec.Decode(from, buf[:n], func(*event.Event) { flows++ })
		if err != nil {
			t.Fatalf("softflowd -v %d datagram %d: %v", version, i, err)
		}
		seqLost += int(seq.Track(from.Addr(), &info).LostFlows)
		if i > 0 && info.SequenceNum != prev+uint32(info.Records) {
			postIncrement = false
		}
		prev = info.SequenceNum
	}
	if flows != exported {
		t.Fatalf("softflowd -v %d: decoded %d flows, softflowd says it exported %d", version, flows, exported)
	}
	return flows, seqLost, postIncrement
}

// TestEndToEndSoftflowd: the built binary receives NetFlow v9 and then
// IPFIX from softflowd reading a capture, and the flow counts in /metrics
// and in the spool are exactly what softflowd exported, with no socket
// overflow and no sequence gap (softflowd numbers IPFIX messages after
// adding their own records; the tracker recognises that).
func TestEndToEndSoftflowd(t *testing.T) {
	sbinTool(t, "softflowd", "softflowd") // skips when missing
	pcap := filepath.Join(t.TempDir(), "flows.pcap")
	want := sfPcap(t, pcap, 400)
	udpAddr := freeUDP(t)
	n := startNode(t, fmt.Sprintf("  sf:\n    type: netflow\n    listen: %s\n    read_buffer: 64MiB\n", udpAddr))

	// softflowd's output is the same on every run of one capture: a
	// rehearsal into the test's own socket tells what the node gets.
	sent, seqLost := 0, 0
	for _, version := range []int{9, 10} {
		flows, lost, postInc := sfRehearse(t, pcap, version)
		if flows != want {
			t.Errorf("softflowd -v %d exported %d flow records, the capture has %d", version, flows, want)
		}
		if lost != 0 {
			t.Errorf("softflowd -v %d (post-increment numbering: %v): flow.SeqTracker counts %d lost flows on a loss-free capture", version, postInc, lost)
		}
		seqLost += lost
		got := softflowd(t, pcap, udpAddr, version)
		if got != flows {
			t.Errorf("softflowd -v %d exported %d flows to the node, %d in rehearsal", version, got, flows)
		}
		sent += got
		deadline := time.Now().Add(10 * time.Second)
		for n.metric(t, `trawl_input_delivered_events_total{input="sf"}`) != fmt.Sprint(sent) {
			if time.Now().After(deadline) {
				t.Fatalf("after v%d: delivered %q, want %d", version, n.metric(t, `trawl_input_delivered_events_total{input="sf"}`), sent)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := n.metric(t, `trawl_input_received_events_total{input="sf"}`); got != fmt.Sprint(sent) {
		t.Errorf("received %s, want %d", got, sent)
	}
	if got := n.metric(t, `trawl_input_upstream_lost_total{input="sf",cause="socket_overflow"}`); got != "0" {
		t.Errorf("upstream lost (socket_overflow) %q, want 0", got)
	}
	if got := n.metric(t, `trawl_input_upstream_lost_total{input="sf",cause="exporter_sequence_gap"}`); got != fmt.Sprint(seqLost) {
		t.Errorf("upstream lost (exporter_sequence_gap) %q, want %d", got, seqLost)
	}
	n.stop(t)
	out, err := exec.Command(trawlBinary(t), "spool", "cat", "--input", "sf", n.data).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != sent {
		t.Fatalf("spool holds %d flows, want %d", len(lines), sent)
	}
	types := map[string]int{}
	for _, l := range lines {
		for _, ty := range []string{"NETFLOW_V9", "IPFIX"} {
			if strings.Contains(l, `"type":"`+ty+`"`) {
				types[ty]++
			}
		}
	}
	if types["NETFLOW_V9"] != want || types["IPFIX"] != want {
		t.Errorf("spool holds %v flows by type, want %d of each", types, want)
	}
	// Flow 7 (IPv6, UDP, 4 packets of 148 bytes out) must be there from
	// both exports.
	found := 0
	for _, l := range lines {
		if strings.Contains(l, `"source":{"ip":"2001:db8:100::7","port":20007`) {
			found++
			for _, w := range []string{`"destination":{"ip":"2001:db8:200::7","port":53`, `"transport":"udp"`, `"packets":4`, `"bytes":592`} {
				if !strings.Contains(l, w) {
					t.Errorf("flow lacks %s: %s", w, l)
				}
			}
		}
	}
	if found != 2 {
		t.Errorf("flow from 2001:db8:100::7 found %d times, want 2", found)
	}
}

// freeUDP returns a local UDP address nobody listens on.
func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// sbinTool finds a Debian tool installed under /usr/sbin, which is not in
// an unprivileged user's PATH, and skips the test when it is missing.
func sbinTool(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := "/usr/sbin/" + name
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not installed (Debian package %s; scripts/deps.sh installs it)", name, pkg)
	}
	return p
}
