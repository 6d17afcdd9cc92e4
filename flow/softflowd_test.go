package flow

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawlsec/trawl/event"
)

// capFlow is one flow of the generated capture: a 5-tuple and how many
// packets go each way (rev 0: one-way traffic).
type capFlow struct {
	src, dst   netip.Addr
	sport      uint16
	dport      uint16
	proto      uint8
	fwd, rev   int
	size       int // IP payload bytes after the transport header
	fwdB, revB uint64
	// first and last packet, either way: softflowd stamps both
	// directions' records with the times of the whole flow
	first, last time.Time
}

// capPacket is one packet of the capture, an Ethernet frame and when it
// was seen.
type capPacket struct {
	ts    time.Time
	frame []byte
}

// ipChecksum is the RFC 1071 sum over b.
func ipChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// frame builds an Ethernet frame carrying one IPv4 or IPv6 packet from
// src:sport to dst:dport; it returns the frame and the IP length, the
// number of bytes exporters count.
func frame(src, dst netip.Addr, sport, dport uint16, proto uint8, tcpFlags uint8, payload int) ([]byte, int) {
	be := binary.BigEndian
	var l4 []byte
	switch proto {
	case 6:
		l4 = make([]byte, 20)
		be.PutUint16(l4[0:], sport)
		be.PutUint16(l4[2:], dport)
		be.PutUint32(l4[4:], 1000)
		l4[12] = 5 << 4
		l4[13] = tcpFlags
		be.PutUint16(l4[14:], 65535)
	case 17:
		l4 = make([]byte, 8)
		be.PutUint16(l4[0:], sport)
		be.PutUint16(l4[2:], dport)
		be.PutUint16(l4[4:], uint16(8+payload))
	default: // ICMP / ICMPv6: the "port" carries type and code
		l4 = make([]byte, 8)
		be.PutUint16(l4[0:], dport)
	}
	l4 = append(l4, make([]byte, payload)...)
	f := make([]byte, 12, 14+40+len(l4))
	copy(f, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1})
	if src.Is4() {
		f = be.AppendUint16(f, 0x0800)
		h := make([]byte, 20)
		h[0] = 0x45
		be.PutUint16(h[2:], uint16(20+len(l4)))
		h[8] = 64
		h[9] = proto
		copy(h[12:], src.AsSlice())
		copy(h[16:], dst.AsSlice())
		be.PutUint16(h[10:], ipChecksum(h))
		f = append(append(f, h...), l4...)
		return f, 20 + len(l4)
	}
	f = be.AppendUint16(f, 0x86dd)
	h := make([]byte, 40)
	h[0] = 0x60
	be.PutUint16(h[4:], uint16(len(l4)))
	h[6] = proto
	h[7] = 64
	copy(h[8:], src.AsSlice())
	copy(h[24:], dst.AsSlice())
	f = append(append(f, h...), l4...)
	return f, 40 + len(l4)
}

// genCapture makes n flows of TCP, UDP and ICMP over IPv4 and IPv6, every
// 5-tuple distinct, with their packets interleaved over a few seconds
// (far below every softflowd timeout, so each flow is exported once, at
// the end of the file). ICMP flows are one-way: a reply has another type
// and would be another flow.
func genCapture(r *rand.Rand, n int) ([]capFlow, []capPacket) {
	flows := make([]capFlow, n)
	type step struct {
		flow int
		rev  bool
	}
	var steps []step
	for i := range flows {
		f := &flows[i]
		v6 := i%3 == 2
		a := func(subnet byte) netip.Addr {
			if v6 {
				return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, subnet, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)})
			}
			return netip.AddrFrom4([4]byte{10, subnet, byte(i >> 8), byte(i)})
		}
		f.src, f.dst = a(1), a(2)
		switch r.IntN(5) {
		case 0, 1:
			f.proto, f.sport, f.dport = 6, uint16(1024+r.IntN(60000)), []uint16{22, 80, 443, 8080}[r.IntN(4)]
			f.rev = r.IntN(6)
		case 2, 3:
			f.proto, f.sport, f.dport = 17, uint16(1024+r.IntN(60000)), []uint16{53, 123, 514, 2055}[r.IntN(4)]
			f.rev = r.IntN(3)
		default:
			f.proto, f.dport = 1, 8<<8 // echo request
			if v6 {
				f.proto, f.dport = 58, 128<<8
			}
		}
		f.fwd = 1 + r.IntN(6)
		f.size = r.IntN(1200)
		for range f.fwd {
			steps = append(steps, step{i, false})
		}
		for range f.rev {
			steps = append(steps, step{i, true})
		}
	}
	r.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	pkts := make([]capPacket, len(steps))
	for k, s := range steps {
		f := &flows[s.flow]
		var b []byte
		var l int
		ts := t0.Add(time.Duration(k) * 997 * time.Microsecond)
		if f.first.IsZero() {
			f.first = ts
		}
		f.last = ts
		if s.rev {
			b, l = frame(f.dst, f.src, f.dport, f.sport, f.proto, 0x18, f.size/2)
			f.revB += uint64(l)
		} else {
			b, l = frame(f.src, f.dst, f.sport, f.dport, f.proto, 0x18, f.size)
			f.fwdB += uint64(l)
		}
		pkts[k] = capPacket{ts: ts, frame: b}
	}
	return flows, pkts
}

// writePcap writes pkts as a classic libpcap file (microsecond
// timestamps, Ethernet link type).
func writePcap(path string, pkts []capPacket) error {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0)     // thiszone
	b = le.AppendUint32(b, 0)     // sigfigs
	b = le.AppendUint32(b, 65535) // snaplen
	b = le.AppendUint32(b, 1)     // LINKTYPE_ETHERNET
	for _, p := range pkts {
		b = le.AppendUint32(b, uint32(p.ts.Unix()))
		b = le.AppendUint32(b, uint32(p.ts.Nanosecond()/1000))
		b = le.AppendUint32(b, uint32(len(p.frame)))
		b = le.AppendUint32(b, uint32(len(p.frame)))
		b = append(b, p.frame...)
	}
	return os.WriteFile(path, b, 0o644)
}

// capture opens a UDP socket on 127.0.0.1 with a receive buffer large
// enough for an exporter's end-of-file burst.
func capture(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetReadBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	return c
}

// drain reads datagrams until none came for quiet.
func drain(t *testing.T, c *net.UDPConn, quiet time.Duration) ([][]byte, netip.AddrPort) {
	t.Helper()
	var out [][]byte
	var from netip.AddrPort
	buf := make([]byte, 65536)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, a, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return out, from
			}
			t.Fatal(err)
		}
		from = a
		out = append(out, append([]byte(nil), buf[:n]...))
	}
}

// runSoftflowd exports the flows of the capture at pcap with softflowd
// (version 5, 9 or 10) to a socket of the test and returns the datagrams
// and softflowd's own count of exported flows.
func runSoftflowd(t *testing.T, pcap string, version int, extra ...string) ([][]byte, netip.AddrPort, int) {
	t.Helper()
	c := capture(t)
	dir := t.TempDir()
	// -d: foreground; -6: track IPv6 whatever the version; no -c, which
	// would make softflowd wait for softflowctl at the end of the file.
	cmd := exec.Command(sbinTool(t, "softflowd", "softflowd"), "-d", "-6", "-r", pcap, "-n", c.LocalAddr().String(),
		"-v", fmt.Sprint(version), "-p", filepath.Join(dir, "pid"))
	cmd.Args = append(cmd.Args, extra...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("softflowd -v %d: %v\n%s", version, err, out)
	}
	pkts, from := drain(t, c, 500*time.Millisecond)
	exported := -1
	for _, l := range strings.Split(string(out), "\n") {
		var n, recs int
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "Flows exported: %d (%d records)", &n, &recs); err == nil {
			exported = recs
		}
	}
	if exported < 0 {
		t.Fatalf("softflowd -v %d printed no export count:\n%s", version, out)
	}
	t.Logf("softflowd -v %d: %d datagrams\n%s", version, len(pkts), out)
	return pkts, from, exported
}

// runPmacctd exports the flows of the capture at pcap with pmacct's
// pmacctd and its nfprobe plugin (version 5, 9 or 10) to a socket of the
// test and returns the datagrams.
func runPmacctd(t *testing.T, pcap string, version int) ([][]byte, netip.AddrPort) {
	t.Helper()
	c := capture(t)
	conf := filepath.Join(t.TempDir(), "pmacctd.conf")
	cfg := fmt.Sprintf("daemonize: false\npcap_savefile: %s\nplugins: nfprobe\nnfprobe_receiver: %s\nnfprobe_version: %d\n",
		pcap, c.LocalAddr(), version)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sbinTool(t, "pmacctd", "pmacct"), "-f", conf).CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("pmacctd (v%d): %v", version, err)
	}
	pkts, from := drain(t, c, time.Second)
	if err != nil {
		// pmacctd 1.7.7 sometimes exits 1 when its plugin stops before
		// the core ("connection lost to ... nfprobe"), after the export:
		// the flow checks tell whether anything is missing.
		t.Logf("pmacctd (v%d): %v\n%s", version, err, out)
	}
	t.Logf("pmacctd v%d: %d datagrams", version, len(pkts))
	return pkts, from
}

// TestDifferentialPmacctd is TestDifferentialSoftflowd with pmacct's
// pmacctd and its nfprobe plugin as the exporter (pmacct prints no export
// count: the capture says how many flows there must be).
func TestDifferentialPmacctd(t *testing.T) {
	sbinTool(t, "pmacctd", "pmacct") // skips when missing
	r := rand.New(rand.NewPCG(3, 5))
	flows, pkts := genCapture(r, 300)
	pcap := filepath.Join(t.TempDir(), "flows.pcap")
	if err := writePcap(pcap, pkts); err != nil {
		t.Fatal(err)
	}
	f := func(version int, sameTimes bool) {
		t.Helper()
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			dgrams, from := runPmacctd(t, pcap, version)
			got := diffDecode(t, dgrams, from, sameTimes)
			checkCapture(t, got, flows, version == 5, true)
		})
	}
	f(5, true)
	// pmacct sends flowStart/EndMilliseconds (152/153) in v9 too; goflow2
	// reads them in IPFIX only and leaves v9 records at the export time.
	f(9, false)
	f(10, true)
}

// TestDifferentialSoftflowd exports a generated capture with softflowd as
// NetFlow v5, v9 and IPFIX, decodes every datagram with trawl and with
// goflow2, and requires every common field to be equal, and the flows to
// be exactly those of the capture: one record per direction with traffic,
// as many as softflowd says it exported.
func TestDifferentialSoftflowd(t *testing.T) {
	sbinTool(t, "softflowd", "softflowd") // skips when missing
	r := rand.New(rand.NewPCG(3, 5))
	flows, pkts := genCapture(r, 300)
	pcap := filepath.Join(t.TempDir(), "flows.pcap")
	if err := writePcap(pcap, pkts); err != nil {
		t.Fatal(err)
	}
	f := func(name string, version int, sameTimes bool, extra ...string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			// -a: flow times from the capture's clock; without it
			// softflowd stamps flows relative to its own start, and a
			// capture older than that wraps the 32-bit uptime.
			dgrams, from, exported := runSoftflowd(t, pcap, version, append([]string{"-a"}, extra...)...)
			got := diffDecode(t, dgrams, from, sameTimes)
			if len(got) != exported {
				t.Errorf("decoded %d flows, softflowd exported %d", len(got), exported)
			}
			// softflowd puts ICMP type and code in a field of its own
			// (32/139) in v9 and IPFIX, with zero ports.
			checkCapture(t, got, flows, version == 5, version == 5)
		})
	}
	f("v5", 5, true)
	f("v9", 9, true)
	// softflowd's default IPFIX times are flowStart/EndSysUpTime (22/21)
	// with systemInitTimeMilliseconds (160) in options data. goflow2 reads
	// 21/22 in v9 only and leaves IPFIX records at the export time: the
	// times are checked against the capture instead.
	f("ipfix", 10, false)
	f("ipfix-milli", 10, true, "-A", "milli") // flowStart/EndMilliseconds (152/153)
}

// diffDecode decodes dgrams with trawl and goflow2, fails on any
// difference in a common field (times too, when sameTimes) and returns
// trawl's flows. The export is loss-free: it fails too if a SeqTracker
// counts lost flows, unless the exporter numbers IPFIX messages after
// adding their own data records, as softflowd 1.1.0 does (RFC 7011 §3.1:
// before), which makes the tracker see phantom gaps; those are logged.
func diffDecode(t *testing.T, dgrams [][]byte, from netip.AddrPort, sameTimes bool) []event.Flow {
	t.Helper()
	d := NewDecoder(NewTemplates())
	g := newGF2()
	var all []event.Flow
	seq := NewSeqTracker()
	lost, postIncrement := uint64(0), true
	var prevSeq uint32
	defer func() {
		switch {
		case t.Failed() || lost == 0:
		case postIncrement:
			t.Logf("the exporter's IPFIX sequence numbers count each message's own records: SeqTracker sees %d phantom lost flows", lost)
		default:
			t.Errorf("SeqTracker counts %d lost flows in a loss-free export", lost)
		}
	}()
	for j, p := range dgrams {
		var mine, theirs []event.Flow
		info, err := d.Decode(from, p, func(e *event.Event) { mine = append(mine, e.Flow) })
		if err != nil {
			t.Fatalf("datagram %d: trawl: %v", j, err)
		}
		if info.NoTemplateSets != 0 {
			t.Fatalf("datagram %d: %d data sets before their template", j, info.NoTemplateSets)
		}
		lost += seq.Track(from.Addr(), &info).LostFlows
		if info.Version != 10 || j > 0 && info.SequenceNum != prevSeq+uint32(info.Records) {
			postIncrement = false
		}
		prevSeq = info.SequenceNum
		if err := g.decode(p, func(f *event.Flow) { theirs = append(theirs, *f) }); err != nil {
			t.Fatalf("datagram %d: goflow2: %v", j, err)
		}
		if len(mine) != len(theirs) {
			t.Fatalf("datagram %d: trawl %d flows, goflow2 %d", j, len(mine), len(theirs))
		}
		for k := range mine {
			m, o := mine[k], theirs[k]
			if m.SamplerAddress != from.Addr() {
				t.Fatalf("datagram %d flow %d: sampler address %v, want %v", j, k, m.SamplerAddress, from.Addr())
			}
			m.SamplerAddress = netip.Addr{} // not set by goflow2's decoders
			if m.Type == event.FlowNetFlow5 {
				m.ObservationID = 0 // goflow2 has no engine type/id
			}
			if !sameTimes {
				m.TimeStartNs, m.TimeEndNs = o.TimeStartNs, o.TimeEndNs
			}
			if m != o {
				t.Fatalf("datagram %d flow %d:\ntrawl   %+v\ngoflow2 %+v", j, k, m, o)
			}
		}
		all = append(all, mine...)
	}
	return all
}

// checkCapture requires got to hold exactly one record per direction with
// traffic of every flow (IPv4 only when v4only: v5 cannot carry IPv6),
// with its packets, bytes and times. icmpPort: ICMP records carry type <<
// 8 | code as destination port (else both ports are zero).
func checkCapture(t *testing.T, got []event.Flow, flows []capFlow, v4only, icmpPort bool) {
	t.Helper()
	type key struct {
		src, dst     netip.Addr
		sport, dport uint16
		proto        uint8
	}
	type want struct {
		packets, bytes uint64
		first, last    time.Time
	}
	wants := map[key]want{}
	for _, f := range flows {
		if v4only && f.src.Is6() {
			continue
		}
		sport, dport := f.sport, f.dport
		if f.proto == 1 || f.proto == 58 {
			sport = 0
			if !icmpPort {
				dport = 0
			}
		}
		wants[key{f.src, f.dst, sport, dport, f.proto}] = want{uint64(f.fwd), f.fwdB, f.first, f.last}
		if f.rev > 0 {
			wants[key{f.dst, f.src, dport, sport, f.proto}] = want{uint64(f.rev), f.revB, f.first, f.last}
		}
	}
	if len(got) != len(wants) {
		t.Errorf("%d flow records, want %d", len(got), len(wants))
	}
	// v9 and IPFIX headers carry whole seconds: times built on them may
	// be up to a second early. Durations are exact to the millisecond.
	near := func(ns int64, want time.Time) bool {
		d := time.Duration(ns - want.UnixNano())
		return d > -time.Second-time.Millisecond && d < 2*time.Millisecond
	}
	seen := map[key]bool{}
	for _, f := range got {
		k := key{f.SrcAddr, f.DstAddr, f.SrcPort, f.DstPort, f.Proto}
		w, ok := wants[k]
		if !ok {
			t.Errorf("unexpected flow %+v", f)
			continue
		}
		if seen[k] {
			t.Errorf("flow exported twice: %+v", f)
		}
		seen[k] = true
		name := fmt.Sprintf("%v:%d > %v:%d/%d", k.src, k.sport, k.dst, k.dport, k.proto)
		if f.Packets != w.packets || f.Bytes != w.bytes {
			t.Errorf("flow %s: %d packets %d bytes, want %d and %d", name, f.Packets, f.Bytes, w.packets, w.bytes)
		}
		wantEtype := uint16(0x0800)
		if k.src.Is6() {
			wantEtype = 0x86dd
		}
		if f.Etype != wantEtype {
			t.Errorf("flow %s: etype %#x", name, f.Etype)
		}
		dur, wantDur := time.Duration(f.TimeEndNs-f.TimeStartNs), w.last.Sub(w.first)
		if !near(f.TimeStartNs, w.first) || !near(f.TimeEndNs, w.last) || (dur-wantDur).Abs() > 2*time.Millisecond {
			t.Errorf("flow %s: %v to %v, want %v to %v", name, time.Unix(0, f.TimeStartNs).UTC(), time.Unix(0, f.TimeEndNs).UTC(),
				w.first, w.last)
		}
	}
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
