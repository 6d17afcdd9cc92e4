package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// netflowV5 builds a NetFlow v5 packet of n records starting at sequence
// seq; record i goes from 10.0.<p>.<i> port 1024+i to 192.0.2.1:443.
func netflowV5(p, n int, seq uint32) []byte {
	b := make([]byte, 24+48*n)
	be := binary.BigEndian
	be.PutUint16(b[0:], 5)
	be.PutUint16(b[2:], uint16(n))
	be.PutUint32(b[4:], 3_600_000) // sysUptime ms
	be.PutUint32(b[8:], uint32(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).Unix()))
	be.PutUint32(b[16:], seq)
	for i := 0; i < n; i++ {
		r := b[24+48*i:]
		copy(r[0:], []byte{10, 0, byte(p), byte(i)})
		copy(r[4:], []byte{192, 0, 2, 1})
		be.PutUint16(r[12:], 3)              // input ifindex
		be.PutUint32(r[16:], uint32(10+i))   // packets
		be.PutUint32(r[20:], uint32(1500*i)) // octets
		be.PutUint32(r[24:], 3_590_000)      // first
		be.PutUint32(r[28:], 3_599_000)      // last
		be.PutUint16(r[32:], uint16(1024+i)) // src port
		be.PutUint16(r[34:], 443)            // dst port
		r[38] = 6                            // tcp
	}
	return b
}

// TestEndToEndNetflow sends NetFlow v5 from a UDP socket to the built
// binary, with one packet left out, and checks the ledger counts the gap
// as upstream loss, the received count is exact, and the spool holds
// every flow with its fields.
func TestEndToEndNetflow(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpAddr := pc.LocalAddr().String()
	pc.Close()
	n := startNode(t, fmt.Sprintf("  nf:\n    type: netflow\n    listen: %s\n    sockets: 2\n", udpAddr))

	conn, err := net.Dial("udp", udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	const packets, per = 100, 30
	sent := 0
	for p := 0; p <= packets; p++ {
		if p == 50 {
			continue // lost on the way: the exporter's sequence shows a gap of 30 flows
		}
		if _, err := conn.Write(netflowV5(p, per, uint32(p*per))); err != nil {
			t.Fatal(err)
		}
		sent += per
		if p%10 == 0 {
			time.Sleep(time.Millisecond) // stay far below the socket buffer
		}
	}
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for n.metric(t, `trawl_input_delivered_events_total{input="nf"}`) != fmt.Sprint(sent) {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %q, want %d", n.metric(t, `trawl_input_delivered_events_total{input="nf"}`), sent)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := n.metric(t, `trawl_input_received_events_total{input="nf"}`); got != fmt.Sprint(sent) {
		t.Errorf("received %s, want %d", got, sent)
	}
	if got := n.metric(t, `trawl_input_upstream_lost_total{input="nf",cause="exporter_sequence_gap"}`); got != fmt.Sprint(per) {
		t.Errorf("sequence gap loss %s, want %d", got, per)
	}
	if got := n.metric(t, `trawl_input_upstream_lost_total{input="nf",cause="socket_overflow"}`); got != "0" {
		t.Errorf("socket overflow %s, want 0", got)
	}
	n.stop(t)

	out, err := exec.Command(trawlBinary(t), "spool", "cat", "--input", "nf", n.data).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != sent {
		t.Fatalf("spool holds %d flows, want %d", len(lines), sent)
	}
	want := []string{`"module":"netflow"`, `"source":{"ip":"10.0.7.5","port":1029`, `"destination":{"ip":"192.0.2.1","port":443`,
		`"transport":"tcp"`, `"bytes":7500`, `"packets":15`, `"type":"NETFLOW_V5"`}
	found := false
	for _, l := range lines {
		if strings.Contains(l, `"ip":"10.0.7.5"`) {
			found = true
			for _, w := range want {
				if !strings.Contains(l, w) {
					t.Errorf("flow lacks %s: %s", w, l)
				}
			}
		}
	}
	if !found {
		t.Fatal("flow 10.0.7.5 not in the spool")
	}
}
