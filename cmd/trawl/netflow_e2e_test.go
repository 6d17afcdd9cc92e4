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
	// Garbage and a truncated packet are counted per exporter and reason,
	// and the input keeps going.
	conn.Write([]byte("definitely not netflow"))
	conn.Write(netflowV5(99, per, 0)[:100])
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
	for _, m := range []string{
		`trawl_flow_malformed_packets_total{input="nf",exporter="127.0.0.1",reason="bad_version"}`,
		`trawl_flow_malformed_packets_total{input="nf",exporter="127.0.0.1",reason="truncated"}`,
		`trawl_input_errors_total{input="nf",reason="bad_version"}`,
		`trawl_input_errors_total{input="nf",reason="truncated"}`,
	} {
		if got := n.metric(t, m); got != "1" {
			t.Errorf("%s = %q, want 1", m, got)
		}
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

// netflowV9 builds a NetFlow v9 packet from source id 7 holding the
// template 256 when withTemplate, and a data flowset of n records when n > 0.
func netflowV9(seq uint32, withTemplate bool, n int) []byte {
	be := binary.BigEndian
	fields := [][2]uint16{{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {1, 4}, {2, 4}, {22, 4}, {21, 4}}
	b := make([]byte, 20)
	be.PutUint16(b[0:], 9)
	be.PutUint32(b[4:], 3_600_000)
	be.PutUint32(b[8:], uint32(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).Unix()))
	be.PutUint32(b[12:], seq)
	be.PutUint32(b[16:], 7)
	count := 0
	if withTemplate {
		set := be.AppendUint16(nil, 0)
		set = be.AppendUint16(set, uint16(8+4*len(fields)))
		set = be.AppendUint16(set, 256)
		set = be.AppendUint16(set, uint16(len(fields)))
		for _, f := range fields {
			set = be.AppendUint16(set, f[0])
			set = be.AppendUint16(set, f[1])
		}
		b = append(b, set...)
		count++
	}
	if n > 0 {
		rec := 29
		l := 4 + rec*n
		pad := (4 - l%4) % 4
		set := be.AppendUint16(nil, 256)
		set = be.AppendUint16(set, uint16(l+pad))
		for i := 0; i < n; i++ {
			set = append(set, 10, 1, byte(seq), byte(i)) // src 10.1.<seq>.<i>
			set = append(set, 198, 51, 100, 9)           // dst
			set = be.AppendUint16(set, uint16(40000+i))  // src port
			set = be.AppendUint16(set, 53)               // dst port
			set = append(set, 17)                        // udp
			set = be.AppendUint32(set, uint32(100+i))    // bytes
			set = be.AppendUint32(set, 1)                // packets
			set = be.AppendUint32(set, 3_599_000)        // first
			set = be.AppendUint32(set, 3_599_500)        // last
		}
		set = append(set, make([]byte, pad)...)
		b = append(b, set...)
		count += n
	}
	be.PutUint16(b[2:], uint16(count))
	return b
}

// TestEndToEndTemplatesSurviveRestart: a NetFlow v9 template learned
// before a restart decodes data sent after it, with no template packet in
// between.
func TestEndToEndTemplatesSurviveRestart(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpAddr := pc.LocalAddr().String()
	pc.Close()
	extra := fmt.Sprintf("  nf:\n    type: netflow\n    listen: %s\n", udpAddr)
	// One source port, as a real exporter uses: SO_REUSEPORT then hashes
	// every packet to the same socket, so the template is learned before
	// the data behind it is decoded.
	conn, err := net.Dial("udp", udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(pkt []byte) {
		t.Helper()
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	waitDelivered := func(n *node, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for n.metric(t, `trawl_input_delivered_events_total{input="nf"}`) != fmt.Sprint(want) {
			if time.Now().After(deadline) {
				t.Fatalf("delivered %q, want %d\n%s", n.metric(t, `trawl_input_delivered_events_total{input="nf"}`), want, n.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	n1 := startNode(t, extra)
	send(netflowV9(0, true, 0))
	send(netflowV9(1, false, 10))
	waitDelivered(n1, 10)
	n1.stop(t)

	n2 := startNodeIn(t, n1.data, extra)
	send(netflowV9(2, false, 12)) // data only: the template comes from before the restart
	waitDelivered(n2, 12)
	if got := n2.metric(t, `trawl_input_errors_total{input="nf",reason="no_template"}`); got != "0" {
		t.Errorf("no_template = %s after restart", got)
	}
	if !strings.Contains(n2.stderr.String(), "flow templates: 1 loaded") {
		t.Errorf("the restart did not report loading the template:\n%s", n2.stderr.String())
	}
	n2.stop(t)

	out, err := exec.Command(trawlBinary(t), "spool", "cat", "--input", "nf", n1.data).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 22 {
		t.Fatalf("spool holds %d flows, want 22", len(lines))
	}
	last := lines[len(lines)-1]
	for _, w := range []string{`"type":"NETFLOW_V9"`, `"source":{"ip":"10.1.2.11","port":40011`, `"transport":"udp"`, `"bytes":111`} {
		if !strings.Contains(last, w) {
			t.Errorf("last flow lacks %s: %s", w, last)
		}
	}
}

// sflowDatagram builds an sFlow v5 datagram from agent 192.0.2.10 with one
// flow sample: a raw Ethernet/IPv4/TCP header of a 1500-byte frame from
// 10.9.<seq>.1:50000 to 203.0.113.5:22, sampled 1 in 512.
func sflowDatagram(seq uint32) []byte {
	be := binary.BigEndian
	var hdr []byte
	hdr = append(hdr, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00) // Ethernet
	ip := []byte{0x45, 0, 0x05, 0xdc, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 9, byte(seq), 1, 203, 0, 113, 5}
	hdr = append(hdr, ip...)
	tcp := make([]byte, 20)
	be.PutUint16(tcp[0:], 50000)
	be.PutUint16(tcp[2:], 22)
	tcp[12] = 0x50
	tcp[13] = 0x18 // PSH|ACK
	hdr = append(hdr, tcp...)
	hlen := len(hdr)
	hdr = append(hdr, make([]byte, (4-hlen%4)%4)...)

	var rec []byte
	rec = be.AppendUint32(rec, 1)    // header protocol: Ethernet
	rec = be.AppendUint32(rec, 1500) // frame length
	rec = be.AppendUint32(rec, 4)    // stripped
	rec = be.AppendUint32(rec, uint32(hlen))
	rec = append(rec, hdr...)

	var sample []byte
	sample = be.AppendUint32(sample, seq) // sample sequence
	sample = be.AppendUint32(sample, 3)   // source id: ifIndex 3
	sample = be.AppendUint32(sample, 512) // sampling rate
	sample = be.AppendUint32(sample, 512*seq)
	sample = be.AppendUint32(sample, 0) // drops
	sample = be.AppendUint32(sample, 3) // input
	sample = be.AppendUint32(sample, 7) // output
	sample = be.AppendUint32(sample, 1) // records
	sample = be.AppendUint32(sample, 1) // record format: raw packet header
	sample = be.AppendUint32(sample, uint32(len(rec)))
	sample = append(sample, rec...)

	var d []byte
	d = be.AppendUint32(d, 5)
	d = be.AppendUint32(d, 1)
	d = append(d, 192, 0, 2, 10)
	d = be.AppendUint32(d, 0)    // sub-agent
	d = be.AppendUint32(d, seq)  // datagram sequence
	d = be.AppendUint32(d, 1000) // uptime
	d = be.AppendUint32(d, 1)    // samples
	d = be.AppendUint32(d, 1)    // flow sample
	d = be.AppendUint32(d, uint32(len(sample)))
	return append(d, sample...)
}

// TestEndToEndSFlow sends sFlow datagrams, one of them lost on the way,
// to the built binary.
func TestEndToEndSFlow(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpAddr := pc.LocalAddr().String()
	pc.Close()
	n := startNode(t, fmt.Sprintf("  sf:\n    type: sflow\n    listen: %s\n", udpAddr))
	conn, err := net.Dial("udp", udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint32(1); seq <= 11; seq++ {
		if seq == 6 {
			continue
		}
		if _, err := conn.Write(sflowDatagram(seq)); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for n.metric(t, `trawl_input_delivered_events_total{input="sf"}`) != "10" {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %q, want 10", n.metric(t, `trawl_input_delivered_events_total{input="sf"}`))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := n.metric(t, `trawl_input_upstream_lost_total{input="sf",cause="exporter_sequence_gap"}`); got != "1" {
		t.Errorf("sequence gap loss %s, want 1", got)
	}
	n.stop(t)
	out, err := exec.Command(trawlBinary(t), "spool", "cat", n.data).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 10 {
		t.Fatalf("spool holds %d flows, want 10", len(lines))
	}
	for _, w := range []string{`"module":"sflow"`, `"source":{"ip":"10.9.1.1","port":50000`, `"destination":{"ip":"203.0.113.5","port":22`,
		`"sampling_rate":512`, `"type":"SFLOW_5"`, `"bytes":1500`} {
		if !strings.Contains(lines[0], w) {
			t.Errorf("flow lacks %s: %s", w, lines[0])
		}
	}
}
