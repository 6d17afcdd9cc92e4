//go:build linux

package udp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/trawlsec/trawl/bpf"
	"github.com/trawlsec/trawl/bpf/udpdrop"
)

// gsoConn is a UDP socket connected to addr that sends with UDP_SEGMENT,
// so one write leaves as one GSO packet of several datagrams; on loopback
// a GRO socket receives it as one buffer. It skips the test on kernels
// without UDP GSO (before 4.18).
func gsoConn(t *testing.T, l *Listener) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendGSO writes dgrams, which must all have the length of the first but
// the last (shorter or equal), as one GSO packet.
func sendGSO(t *testing.T, c *net.UDPConn, dgrams [][]byte) {
	t.Helper()
	var buf []byte
	for _, d := range dgrams {
		buf = append(buf, d...)
	}
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(len(dgrams[0])))
	if _, _, err := c.WriteMsgUDP(buf, oob, nil); err != nil {
		t.Skipf("skipping: this kernel cannot send UDP GSO (UDP_SEGMENT): %v", err)
	}
}

// datagrams returns n datagrams of size bytes, the last of last bytes,
// each with distinct content.
func datagrams(n, size, last int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		l := size
		if i == n-1 {
			l = last
		}
		out[i] = make([]byte, l)
		for j := range out[i] {
			out[i][j] = byte(i*31 + j*7)
		}
		copy(out[i], fmt.Sprintf("%03d", i))
	}
	return out
}

// collect serves l and returns a channel of copies of what it received.
func collect(t *testing.T, l *Listener) chan Datagram {
	t.Helper()
	got := make(chan Datagram, 1024)
	serve(t, l, func(batch []Datagram) {
		for _, d := range batch {
			d.Data = bytes.Clone(d.Data)
			got <- d
		}
	})
	return got
}

func expect(t *testing.T, got chan Datagram, want [][]byte, wantLen int, truncated bool, from net.Addr) {
	t.Helper()
	for i, w := range want {
		select {
		case d := <-got:
			n := min(len(w), wantLen)
			if !bytes.Equal(d.Data, w[:n]) || d.Truncated != (truncated && len(w) > wantLen) {
				t.Fatalf("datagram %d: got %d bytes %q… truncated=%v, want %d bytes %q… truncated=%v",
					i, len(d.Data), d.Data[:min(len(d.Data), 3)], d.Truncated, n, w[:3], truncated && len(w) > wantLen)
			}
			if d.From.String() != from.String() {
				t.Fatalf("datagram %d from %v, want %v", i, d.From, from)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("datagram %d of %d not received", i, len(want))
		}
	}
	select {
	case d := <-got:
		t.Fatalf("unexpected datagram of %d bytes %q…", len(d.Data), d.Data[:min(len(d.Data), 3)])
	case <-time.After(50 * time.Millisecond):
	}
}

// TestReceiveGRO sends GSO packets over loopback and checks that a GRO
// listener hands out exactly the datagrams sent, in order and from the
// right sender, and counts them as coalesced; that without GRO the same
// datagrams arrive one by one; and that MaxDatagram still cuts datagrams
// that arrive coalesced.
func TestReceiveGRO(t *testing.T) {
	for _, tc := range []struct {
		name          string
		noGRO         bool
		maxDatagram   int
		wantLen       int
		wantCoalesced bool
	}{
		{"gro", false, 0, 1 << 20, true},
		{"nogro", true, 0, 1 << 20, false},
		{"gro-cut", false, 100, 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 1, Batch: 4, GRO: !tc.noGRO, MaxDatagram: tc.maxDatagram})
			if st := l.Stats(); !tc.noGRO && st.GRO != 1 {
				t.Skipf("skipping: this kernel refused UDP_GRO (Linux 5.0+ needed): %+v", st)
			} else if tc.noGRO && st.GRO != 0 {
				t.Fatalf("listener without GRO reports %d GRO sockets", st.GRO)
			}
			got := collect(t, l)
			c := gsoConn(t, l)
			var want [][]byte
			// More datagrams than the handler batch holds (4 buffers of
			// 64), odd sizes, a last datagram as long as the others, and
			// one packet of a single datagram.
			for _, p := range []struct{ n, size, last int }{{60, 250, 17}, {64, 300, 300}, {1, 90, 90}, {64, 1000, 999}, {64, 1000, 999}, {64, 1000, 999}, {64, 1000, 999}, {64, 1000, 999}} {
				d := datagrams(p.n, p.size, p.last)
				sendGSO(t, c, d)
				want = append(want, d...)
			}
			expect(t, got, want, tc.wantLen, true, c.LocalAddr())
			var bytes uint64
			cut := 0
			for _, w := range want {
				bytes += uint64(min(len(w), tc.wantLen))
				if len(w) > tc.wantLen {
					cut++
				}
			}
			// The socket goroutine counts a batch after the handler returns.
			waitFor(t, "the last batch counted", func() bool {
				st := l.Stats()
				return st.Datagrams >= uint64(len(want)) && st.Truncated >= uint64(cut) && (!tc.wantCoalesced || st.Coalesced > 0)
			})
			st := l.Stats()
			if st.Datagrams != uint64(len(want)) || st.Bytes != bytes || st.Truncated != uint64(cut) {
				t.Fatalf("stats %+v, want %d datagrams, %d bytes, %d truncated", st, len(want), bytes, cut)
			}
			if tc.wantCoalesced && st.Coalesced == 0 || !tc.wantCoalesced && st.Coalesced != 0 {
				t.Fatalf("coalesced %d datagrams, want them coalesced: %v", st.Coalesced, tc.wantCoalesced)
			}
			if tc.wantCoalesced && st.Coalesced > uint64(len(want)-1) {
				t.Fatalf("coalesced %d of %d datagrams: the single-datagram packet cannot be", st.Coalesced, len(want))
			}
		})
	}
}

func TestGROSegment(t *testing.T) {
	cmsg := func(level, typ int32, v uint32) []byte {
		b := make([]byte, unix.CmsgSpace(4))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(4))
		binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], v)
		return b
	}
	gro := cmsg(unix.SOL_UDP, unix.UDP_GRO, 1400)
	ovfl := cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 7)
	for _, tc := range []struct {
		name string
		b    []byte
		want int
	}{
		{"alone", gro, 1400},
		{"after ovfl", append(append([]byte{}, ovfl...), gro...), 1400},
		{"before ovfl", append(append([]byte{}, gro...), ovfl...), 1400},
		{"ovfl only", ovfl, 0},
		{"negative", cmsg(unix.SOL_UDP, unix.UDP_GRO, 0xffffffff), 0},
		{"short", gro[:unix.CmsgLen(2)], 0},
		{"empty", nil, 0},
	} {
		if got := groSegment(aligned(tc.b)); got != tc.want {
			t.Errorf("%s: groSegment = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestReceiveGROAllocs pins 0 allocations per read of coalesced buffers,
// splitting included.
func TestReceiveGROAllocs(t *testing.T) {
	const runs = 50
	l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 1, Batch: 1, GRO: true})
	if l.Stats().GRO != 1 {
		t.Skip("skipping: this kernel refused UDP_GRO (Linux 5.0+ needed)")
	}
	c := gsoConn(t, l)
	d := datagrams(64, 300, 300)
	for range runs + 1 {
		sendGSO(t, c, d)
	}
	var n, size int
	h := func(b []Datagram) {
		for _, d := range b {
			n++
			size += len(d.Data)
		}
	}
	r := l.readers[0]
	allocs := testing.AllocsPerRun(runs, func() {
		if err := r.receive(h); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("receive+handler: %v allocs per batch, want 0", allocs)
	}
	if n < 64*(runs+1) || size != 300*n || l.Stats().Coalesced != uint64(n) {
		t.Fatalf("read %d datagrams of %d bytes in total (%d coalesced), want at least %d of 300 bytes, all coalesced", n, size, l.Stats().Coalesced, 64*(runs+1))
	}
}

// TestOverflowGRO overfills a GRO socket with GSO packets of 64 datagrams
// while it is not read: the kernel counts each dropped buffer once, and
// Overflow must scale those to datagrams so that what was read plus what
// was counted lost is what was sent.
func TestOverflowGRO(t *testing.T) {
	l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 1, Batch: 8, ReadBuffer: 256 << 10, GRO: true})
	if l.Stats().GRO != 1 {
		t.Skip("skipping: this kernel refused UDP_GRO (Linux 5.0+ needed)")
	}
	c := gsoConn(t, l)
	d := datagrams(64, 200, 200)
	const packets = 200
	for range packets {
		sendGSO(t, c, d)
	}
	var got atomic.Uint64
	serve(t, l, func(b []Datagram) { got.Add(uint64(len(b))) })
	sent := uint64(packets * len(d))
	waitFor(t, "every datagram read or counted", func() bool {
		st := l.Stats()
		return st.Datagrams+st.Overflow >= sent
	})
	// One more packet after the drops makes the kernel report them with
	// it (SO_RXQ_OVFL) rather than only through SO_MEMINFO.
	sendGSO(t, c, d)
	sent += uint64(len(d))
	waitFor(t, "the last packet", func() bool {
		return got.Load() == l.Stats().Datagrams && l.Stats().Datagrams+l.Stats().Overflow >= sent
	})
	st := l.Stats()
	if st.Overflow == 0 || st.Datagrams+st.Overflow != sent || got.Load() != st.Datagrams {
		t.Fatalf("stats %+v, handler got %d: want Overflow > 0 and Datagrams+Overflow == %d sent", st, got.Load(), sent)
	}
	if st.OverflowBuffers*uint64(len(d)) != st.Overflow {
		t.Fatalf("kernel dropped %d buffers of %d datagrams, counted %d datagrams lost", st.OverflowBuffers, len(d), st.Overflow)
	}
	t.Logf("sent %d, read %d, overflow %d", sent, st.Datagrams, st.Overflow)
}

// TestOverflowGROExact overfills a GRO socket with GSO packets of 1 to 64
// datagrams: per-buffer drop counts cannot be scaled to datagrams then, and
// the BPF drop counter (package bpf/udpdrop) must make Overflow exact.
func TestOverflowGROExact(t *testing.T) {
	counter, err := udpdrop.Open()
	if err != nil {
		if errors.Is(err, bpf.ErrPrivileges) || errors.Is(err, bpf.ErrNoBTF) {
			t.Skipf("skipping: the UDP drop counter needs root and kernel BTF: %v", err)
		}
		t.Fatal(err)
	}
	defer counter.Close()
	watch := func(port uint16) (DropCounter, error) { return counter.Watch(port) }
	l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 2, Batch: 8, ReadBuffer: 256 << 10, GRO: true, Drops: watch})
	if l.Stats().GRO != 2 {
		t.Skip("skipping: this kernel refused UDP_GRO (Linux 5.0+ needed)")
	}
	if !l.Stats().OverflowExact {
		t.Fatal("OverflowExact is false with the drop counter")
	}
	c := gsoConn(t, l)
	var sent uint64
	for i := range 400 {
		d := datagrams(1+(i*37)%64, 200, 120)
		sendGSO(t, c, d)
		sent += uint64(len(d))
	}
	var got atomic.Uint64
	serve(t, l, func(b []Datagram) { got.Add(uint64(len(b))) })
	waitFor(t, "every datagram read or counted", func() bool {
		st := l.Stats()
		return got.Load() == st.Datagrams && st.Datagrams+st.Overflow >= sent
	})
	st := l.Stats()
	if st.Overflow == 0 || st.Datagrams+st.Overflow != sent || !st.OverflowExact {
		t.Fatalf("stats %+v: want Overflow > 0, exact, and Datagrams+Overflow == %d sent", st, sent)
	}
	if st.OverflowBuffers >= st.Overflow {
		t.Fatalf("kernel dropped %d buffers for %d datagrams: the runs did not coalesce", st.OverflowBuffers, st.Overflow)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if after := l.Stats(); after.Overflow != st.Overflow || !after.OverflowExact {
		t.Fatalf("after Close: %+v, want Overflow %d, exact", after, st.Overflow)
	}
	t.Logf("sent %d, read %d, overflow %d datagrams in %d buffers", sent, st.Datagrams, st.Overflow, st.OverflowBuffers)
}

// TestGRODropsUnavailable: when the drop counter cannot be had, the
// listener says so and estimates, rather than failing.
func TestGRODropsUnavailable(t *testing.T) {
	var logged atomic.Bool
	l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 1, GRO: true,
		Drops: func(uint16) (DropCounter, error) { return nil, errors.New("no counter here") },
		Logf: func(f string, a ...any) {
			if strings.Contains(fmt.Sprintf(f, a...), "no counter here") {
				logged.Store(true)
			}
		}})
	st := l.Stats()
	if st.GRO == 0 {
		t.Skip("skipping: this kernel refused UDP_GRO (Linux 5.0+ needed)")
	}
	if st.OverflowExact || !logged.Load() {
		t.Fatalf("OverflowExact %v, logged %v: want an estimate, and the reason logged", st.OverflowExact, logged.Load())
	}
}
