//go:build linux

package udp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listen opens a listener and closes it when the test ends.
func listen(t testing.TB, o Options) *Listener {
	t.Helper()
	l, err := Listen(o)
	if err != nil {
		t.Fatalf("Listen(%+v): %v", o, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// serve runs l.Serve in the background; the returned func cancels it and
// returns Serve's result.
func serve(t testing.TB, l *Listener, h Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				err = errors.New("Serve did not return 5 s after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return stop
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// payload fills a datagram of sender id and sequence seq: a 5-byte header
// and bytes derived from both, so any mix-up or corruption is visible.
func payload(dst []byte, id, seq int) []byte {
	size := 5 + (seq*7919+id*104729)%2000
	if seq%97 == 0 {
		size = 8995 // near MaxDatagram: buffer offsets must hold for large ones
	}
	dst = dst[:0]
	dst = append(dst, byte(id))
	dst = binary.BigEndian.AppendUint32(dst, uint32(seq))
	for i := 0; len(dst) < size; i++ {
		dst = append(dst, byte(i*31+id*7+seq))
	}
	return dst
}

func ipv6Loopback(t *testing.T) {
	t.Helper()
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("skipping: IPv6 loopback ::1 is unavailable on this host: %v", err)
	}
	pc.Close()
}

func TestReceive(t *testing.T) {
	f := func(t *testing.T, listenAddr, senderNet, dst string, sockets int) {
		t.Helper()
		// 10,000 datagrams from 20 source ports: with 2 SO_REUSEPORT
		// sockets the odds that one gets none by chance are 2^-19.
		const senders, perSender = 20, 500
		l := listen(t, Options{Addr: listenAddr, Sockets: sockets, Batch: 16})
		port := l.Addr().Port()
		raddr, err := net.ResolveUDPAddr(senderNet, net.JoinHostPort(dst, strconv.Itoa(int(port))))
		if err != nil {
			t.Fatal(err)
		}
		conns := make([]*net.UDPConn, senders)
		from := make(map[netip.AddrPort]int)
		for i := range conns {
			c, err := net.DialUDP(senderNet, nil, raddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i] = c
			from[c.LocalAddr().(*net.UDPAddr).AddrPort()] = i
		}

		var mu sync.Mutex
		var seen [senders][perSender]bool
		var got, bad atomic.Int64
		var firstBad atomic.Value
		want := make([]byte, 0, 9000)
		h := func(batch []Datagram) {
			mu.Lock()
			defer mu.Unlock()
			for _, d := range batch {
				got.Add(1)
				fail := func(format string, args ...any) {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf(format, args...))
				}
				if len(d.Data) < 5 || d.Truncated {
					fail("short or truncated datagram %d bytes from %v", len(d.Data), d.From)
					continue
				}
				id, seq := int(d.Data[0]), int(binary.BigEndian.Uint32(d.Data[1:]))
				if id >= senders || seq >= perSender {
					fail("bad header id=%d seq=%d", id, seq)
					continue
				}
				if sid, ok := from[d.From]; !ok || sid != id {
					fail("datagram of sender %d from %v, want %v", id, d.From, conns[id].LocalAddr())
				}
				if seen[id][seq] {
					fail("duplicate id=%d seq=%d", id, seq)
				}
				seen[id][seq] = true
				if want = payload(want, id, seq); !bytes.Equal(d.Data, want) {
					fail("id=%d seq=%d: payload differs (%d bytes, want %d)", id, seq, len(d.Data), len(want))
				}
			}
		}
		stop := serve(t, l, h)

		var wg sync.WaitGroup
		var sent atomic.Int64
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 0, 9000)
				for seq := range perSender {
					// Pace to stay far below the receive buffer: this
					// test is about exactness, TestOverflow about loss.
					for sent.Load()-got.Load() > 500 {
						time.Sleep(100 * time.Microsecond)
					}
					if _, err := c.Write(payload(buf, i, seq)); err != nil {
						t.Errorf("sender %d: %v", i, err)
						return
					}
					sent.Add(1)
				}
			}()
		}
		wg.Wait()
		waitFor(t, "all datagrams", func() bool { return l.Stats().Datagrams >= senders*perSender })
		time.Sleep(20 * time.Millisecond) // let any excess arrive
		if err := stop(); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if n := bad.Load(); n != 0 {
			t.Fatalf("%d bad datagrams, first: %v", n, firstBad.Load())
		}
		st := l.Stats()
		if got.Load() != senders*perSender || st.Datagrams != senders*perSender {
			t.Fatalf("handler saw %d datagrams, stats %d, want %d", got.Load(), st.Datagrams, senders*perSender)
		}
		if st.Overflow != 0 || st.Truncated != 0 || st.ReadErrors != 0 {
			t.Fatalf("unexpected loss or errors: %+v", st)
		}
		if sockets > 1 {
			for i, r := range l.readers {
				if n := r.c.datagrams.Load(); n == 0 {
					t.Fatalf("socket %d of %d read nothing from %d senders: SO_REUSEPORT did not spread", i, sockets, senders)
				}
			}
		}
	}
	t.Run("ipv4", func(t *testing.T) { f(t, "127.0.0.1:0", "udp4", "127.0.0.1", 1) })
	t.Run("ipv4_reuseport", func(t *testing.T) { f(t, "127.0.0.1:0", "udp4", "127.0.0.1", 2) })
	t.Run("ipv6", func(t *testing.T) {
		ipv6Loopback(t)
		f(t, "[::1]:0", "udp6", "::1", 2)
	})
	t.Run("dualstack_ipv4_sender", func(t *testing.T) {
		ipv6Loopback(t)
		// From must be plain 127.0.0.1, not ::ffff:127.0.0.1: the
		// senders map is keyed by the unmapped address.
		f(t, ":0", "udp4", "127.0.0.1", 2)
	})
}

func TestTruncated(t *testing.T) {
	l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 1, MaxDatagram: 9000})
	type result struct {
		data      []byte
		truncated bool
	}
	results := make(chan result, 10)
	serve(t, l, func(batch []Datagram) {
		for _, d := range batch {
			results <- result{bytes.Clone(d.Data), d.Truncated}
		}
	})
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := func(size int, wantLen int, wantTruncated bool) {
		t.Helper()
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i * 13)
		}
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-results:
			if r.truncated != wantTruncated || !bytes.Equal(r.data, msg[:wantLen]) {
				t.Fatalf("sent %d bytes: got %d bytes truncated=%v, want %d bytes truncated=%v",
					size, len(r.data), r.truncated, wantLen, wantTruncated)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("sent %d bytes: nothing received", size)
		}
	}
	f(9000, 9000, false)
	f(9001, 9000, true)
	f(1, 1, false)
	f(20000, 9000, true)
	// The socket goroutine counts a batch after the handler returns.
	waitFor(t, "the last datagram counted", func() bool { st := l.Stats(); return st.Datagrams >= 4 && st.Truncated >= 2 })
	st := l.Stats()
	if st.Truncated != 2 || st.Datagrams != 4 || st.Bytes != 9000+9000+1+9000 {
		t.Fatalf("stats %+v, want 4 datagrams, 2 truncated, 27001 bytes", st)
	}
}

func TestServeShutdownPrompt(t *testing.T) {
	l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 2})
	addr := l.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, func([]Datagram) {}) }()
	time.Sleep(50 * time.Millisecond) // both goroutines parked in the poller
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after cancel, want nil", err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("Serve took %v to return after cancel, want < 100ms", d)
		}
	case <-time.After(time.Second):
		t.Fatal("Serve did not return within 1 s of cancel")
	}
	if err := l.Serve(context.Background(), func([]Datagram) {}); err == nil {
		t.Fatal("second Serve succeeded, want an error")
	}
	// The sockets are released: the port can be bound again.
	l2, err := Listen(Options{Addr: addr.String(), Sockets: 2})
	if err != nil {
		t.Fatalf("rebinding %v after shutdown: %v", addr, err)
	}
	l2.Close()
}

func TestListenAddressInUse(t *testing.T) {
	f := func(t *testing.T, reusePort bool) {
		lc := net.ListenConfig{}
		if reusePort {
			// Like a leftover goflow2: the kernel would let us share.
			lc.Control = func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
				})
				return errors.Join(err, serr)
			}
		}
		pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		addr := pc.LocalAddr().String()
		l, err := Listen(Options{Addr: addr, Sockets: 2})
		if err == nil {
			l.Close()
			t.Fatalf("Listen(%s) succeeded while another socket holds it", addr)
		}
		if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), addr) {
			t.Fatalf("Listen(%s): %v, want EADDRINUSE naming the address", addr, err)
		}
	}
	t.Run("plain", func(t *testing.T) { f(t, false) })
	t.Run("reuseport", func(t *testing.T) { f(t, true) })
}

func TestOptions_Failure(t *testing.T) {
	f := func(o Options) {
		t.Helper()
		if l, err := Listen(o); err == nil {
			l.Close()
			t.Fatalf("Listen(%+v) succeeded, want an error", o)
		}
	}
	f(Options{Addr: "127.0.0.1"})
	f(Options{Addr: "127.0.0.1:0", Sockets: -1})
	f(Options{Addr: "127.0.0.1:0", Batch: MaxBatch + 1})
	f(Options{Addr: "127.0.0.1:0", MaxDatagram: MaxDatagramLimit + 1})
	f(Options{Addr: "127.0.0.1:0", ReadBuffer: -5})
	f(Options{Addr: "256.0.0.1:0"})
}

func TestReadBuffer(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skipf("skipping: cannot read net.core.rmem_max: %v", err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	want := 2 * rmemMax
	if want > 1<<30 {
		t.Skipf("skipping: net.core.rmem_max=%d is too large to exceed", rmemMax)
	}
	var mu sync.Mutex
	var logs []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, fmt.Sprintf(format, args...))
	}

	t.Run("capped", func(t *testing.T) {
		logs = nil
		l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 3, ReadBuffer: want, Logf: logf, noForce: true})
		if got := l.Stats().EffectiveReadBuffer; got != 2*rmemMax {
			t.Fatalf("EffectiveReadBuffer %d, want 2*rmem_max = %d", got, 2*rmemMax)
		}
		if len(logs) != 1 || !strings.Contains(logs[0], "rmem_max="+strconv.Itoa(rmemMax)) {
			t.Fatalf("logs %q, want one warning naming rmem_max=%d", logs, rmemMax)
		}
	})
	t.Run("forced", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("skipping: SO_RCVBUFFORCE needs CAP_NET_ADMIN")
		}
		logs = nil
		l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 2, ReadBuffer: want, Logf: logf})
		if got := l.Stats().EffectiveReadBuffer; got != 2*want {
			t.Fatalf("EffectiveReadBuffer %d, want 2*%d", got, want)
		}
		if len(logs) != 0 {
			t.Fatalf("unexpected warnings %q", logs)
		}
	})
}

func TestOverflow(t *testing.T) {
	const blast = 2000
	l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 1, Batch: 8, ReadBuffer: 4096})
	entered := make(chan struct{})
	release := make(chan struct{})
	var first sync.Once
	serve(t, l, func([]Datagram) {
		first.Do(func() {
			close(entered)
			<-release
		})
	})
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 512)
	send := func() {
		t.Helper()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	send()
	<-entered // the reader is stuck in the handler: the queue only fills
	for range blast {
		send()
	}
	sent := uint64(1 + blast)
	close(release)
	// Every datagram was either read or dropped, and the kernel counted
	// each drop. Stats tops the SO_RXQ_OVFL count up with SO_MEMINFO, so
	// the sum is exact once the queue is drained.
	var st Stats
	waitFor(t, "datagrams + overflow == sent", func() bool {
		st = l.Stats()
		return st.Datagrams+st.Overflow >= sent
	})
	if st.Datagrams+st.Overflow != sent || st.Overflow == 0 {
		t.Fatalf("stats %+v: want Overflow > 0 and Datagrams+Overflow == %d", st, sent)
	}
	// The drops after the last queued datagram reach SO_RXQ_OVFL only
	// with the next one: after it, the cmsg count alone must be exact.
	send()
	sent++
	waitFor(t, "sentinel datagram", func() bool { return l.Stats().Datagrams == st.Datagrams+1 })
	l.readers[0].c.mu.Lock()
	cmsg := l.readers[0].c.drops
	l.readers[0].c.mu.Unlock()
	if cmsg != st.Overflow {
		t.Fatalf("SO_RXQ_OVFL count %d, SO_MEMINFO count %d: want equal", cmsg, st.Overflow)
	}
	if st = l.Stats(); st.Datagrams+st.Overflow != sent {
		t.Fatalf("stats %+v: want Datagrams+Overflow == %d", st, sent)
	}
	t.Logf("sent %d, read %d, overflow %d, receive buffer %d", sent, st.Datagrams, st.Overflow, st.EffectiveReadBuffer)
}

func TestOverflowAfterClose(t *testing.T) {
	l, err := Listen(Options{Addr: "127.0.0.1:0", Sockets: 1, ReadBuffer: 4096})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 512)
	for range 200 { // never read: the tiny queue overflows
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	before := l.Stats()
	if before.Overflow == 0 || before.Overflow >= 200 {
		t.Fatalf("before Close: Overflow %d, want 1..199 of 200 sent", before.Overflow)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if after := l.Stats(); after.Overflow != before.Overflow {
		t.Fatalf("Overflow %d after Close, %d before: the final count must survive Close", after.Overflow, before.Overflow)
	}
	if err := l.Serve(context.Background(), func([]Datagram) {}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close: %v, want net.ErrClosed", err)
	}
}

func TestReceiveAllocs(t *testing.T) {
	const batch, runs = 8, 100
	l := listen(t, Options{Addr: "127.0.0.1:0", Sockets: 1, Batch: batch})
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 300)
	// AllocsPerRun calls the function runs+1 times; each call reads at
	// least one datagram, so this many never leaves one waiting.
	for range batch * (runs + 1) {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
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
	if n < runs+1 || size != 300*n {
		t.Fatalf("read %d datagrams of %d bytes in total, want at least %d of 300 bytes", n, size, runs+1)
	}
}

func TestAddrPort(t *testing.T) {
	f := func(sa unix.RawSockaddrInet6, n uint32, want string) {
		t.Helper()
		var got netip.AddrPort
		if allocs := testing.AllocsPerRun(10, func() { got = addrPort(&sa, n) }); allocs != 0 {
			t.Fatalf("addrPort: %v allocs, want 0", allocs)
		}
		if got.String() != want {
			t.Fatalf("addrPort = %v, want %v", got, want)
		}
	}
	v6 := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: netip.MustParseAddr("2001:db8::7").As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&v6.Port))[:], 2055)
	f(v6, unix.SizeofSockaddrInet6, "[2001:db8::7]:2055")
	f(v6, unix.SizeofSockaddrInet4, "invalid AddrPort") // short name
	mapped := v6
	mapped.Addr = netip.MustParseAddr("::ffff:192.0.2.9").As16()
	f(mapped, unix.SizeofSockaddrInet6, "192.0.2.9:2055")
	var v4 unix.RawSockaddrInet6
	sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&v4))
	sa4.Family = unix.AF_INET
	sa4.Addr = [4]byte{10, 1, 2, 3}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], 65000)
	f(v4, unix.SizeofSockaddrInet4, "10.1.2.3:65000")
	f(unix.RawSockaddrInet6{Family: unix.AF_UNIX}, unix.SizeofSockaddrInet6, "invalid AddrPort")
}

// cmsg encodes one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func TestRxqOvfl(t *testing.T) {
	f := func(b []byte, want uint32, wantOK bool) {
		t.Helper()
		got, ok := rxqOvfl(b)
		if got != want || ok != wantOK {
			t.Fatalf("rxqOvfl = %d, %v; want %d, %v", got, ok, want, wantOK)
		}
	}
	ovfl := cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(12345))
	f(ovfl, 12345, true)
	f(append(cmsg(unix.SOL_IP, unix.IP_TTL, u32(64)), ovfl...), 12345, true)
	f(cmsg(unix.SOL_IP, unix.IP_TTL, u32(64)), 0, false)
	f(ovfl[:unix.CmsgLen(4)-1], 0, false) // cut
	f(cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, []byte{1, 2}), 0, false)
	f(nil, 0, false)
	bogus := bytes.Clone(ovfl)
	(*unix.Cmsghdr)(unsafe.Pointer(&bogus[0])).SetLen(3)
	f(bogus, 0, false)
}

func TestExtend(t *testing.T) {
	f := func(prev uint64, v uint32, want uint64) {
		t.Helper()
		if got := extend(prev, v); got != want {
			t.Fatalf("extend(%#x, %#x) = %#x, want %#x", prev, v, got, want)
		}
	}
	f(0, 0, 0)
	f(0, 7, 7)
	f(7, 7, 7)
	f(7, 5, 7) // stale value never decreases the count
	f(0xfffffff0, 5, 0x100000005)
	f(0x3_0000_0010, 0x20, 0x3_0000_0020)
}

// FuzzRxqOvfl checks that no control buffer makes rxqOvfl or groSegment panic, and that a
// well-formed SO_RXQ_OVFL message is found whatever precedes (a well-formed
// message) or follows (anything) it.
func FuzzRxqOvfl(f *testing.F) {
	f.Add([]byte{}, uint32(0))
	f.Add(cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(9)), uint32(1))
	f.Add(cmsg(unix.SOL_IP, unix.IP_TTL, u32(64)), uint32(1<<31))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 40, 0, 0, 0}, uint32(7))
	f.Fuzz(func(t *testing.T, b []byte, v uint32) {
		rxqOvfl(aligned(b))
		groSegment(aligned(b))
		ovfl := cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(v))
		if got, ok := rxqOvfl(aligned(append(bytes.Clone(ovfl), b...))); !ok || got != v {
			t.Fatalf("leading SO_RXQ_OVFL %d: got %d, %v", v, got, ok)
		}
		mixed := append(cmsg(unix.SOL_IP, unix.IP_TTL, b[:min(len(b), 4)]), ovfl...)
		if got, ok := rxqOvfl(aligned(append(mixed, b...))); !ok || got != v {
			t.Fatalf("SO_RXQ_OVFL %d after IP_TTL: got %d, %v", v, got, ok)
		}
	})
}

// aligned copies b into memory aligned like the reader's control buffers.
func aligned(b []byte) []byte {
	a := make([]uint64, (len(b)+7)/8)
	out := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(a))), len(a)*8)[:len(b)]
	copy(out, b)
	return out
}
