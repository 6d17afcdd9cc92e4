//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package udpdrop

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/trawlsec/trawl/bpf"
)

// open loads the counter or skips the test, saying why.
func open(t *testing.T) *Counter {
	t.Helper()
	c, err := Open()
	if err != nil {
		if errors.Is(err, bpf.ErrPrivileges) || errors.Is(err, bpf.ErrNoBTF) {
			t.Skipf("UDP drop counter needs root and kernel BTF: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// groSocket binds a UDP_GRO socket with a small receive buffer on a free
// loopback port.
func groSocket(t *testing.T, rcvbuf int) (int, uint16) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	for _, o := range []struct{ level, opt, v int }{
		{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf},
		{unix.SOL_UDP, unix.UDP_GRO, 1},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, uint16(sa.(*unix.SockaddrInet4).Port)
}

// gsoSender connects a UDP socket to port that cuts each send into
// datagrams of size bytes (UDP GSO).
func gsoSender(t *testing.T, port uint16, size int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, size); err != nil {
		t.Skipf("UDP GSO (UDP_SEGMENT) unavailable: %v", err)
	}
	return fd
}

// drain reads every queued buffer and returns the datagrams they held.
func drain(t *testing.T, fd int) uint64 {
	t.Helper()
	buf := make([]byte, 65536)
	oob := make([]byte, unix.CmsgSpace(4))
	var n uint64
	for {
		got, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
		if err != nil {
			return n
		}
		n += datagrams(got, oob[:oobn])
	}
}

// datagrams is how many datagrams a buffer of got bytes held, from its
// UDP_GRO control message (none: one).
func datagrams(got int, oob []byte) uint64 {
	msgs, _ := unix.ParseSocketControlMessage(oob)
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_UDP && m.Header.Type == unix.UDP_GRO && len(m.Data) >= 2 {
			seg := int(binary.NativeEndian.Uint16(m.Data))
			return uint64((got + seg - 1) / seg)
		}
	}
	return 1
}

// kernelDrops is the socket's drop counter (SK_MEMINFO_DROPS), which
// counts buffers.
func kernelDrops(t *testing.T, fd int) uint64 {
	t.Helper()
	var mi [unix.SK_MEMINFO_VARS]uint32
	l := uint32(unsafe.Sizeof(mi))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO, uintptr(unsafe.Pointer(&mi[0])), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		t.Fatal(e)
	}
	return uint64(mi[unix.SK_MEMINFO_DROPS])
}

// TestCounterMixedSizes fills a GRO socket with sends of 1 to 64 datagrams
// that it never reads: the kernel drops whole buffers, counted once each,
// and the counter must still account for every datagram that was lost.
func TestCounterMixedSizes(t *testing.T) {
	c := open(t)
	fd, port := groSocket(t, 256<<10)
	p, err := c.Watch(port)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const size = 200
	s := gsoSender(t, port, size)
	buf := make([]byte, 64*size)
	var sent uint64
	for i := range 3000 {
		n := 1 + (i*37)%64
		if _, err := unix.Write(s, buf[:n*size]); err != nil {
			t.Fatal(err)
		}
		sent += uint64(n)
	}
	got := drain(t, fd)
	lost := sent - got
	dg, buffers, err := p.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	if lost == 0 || buffers == lost {
		t.Fatalf("the test needs lost buffers of several datagrams: sent %d, received %d, %d buffers dropped", sent, got, buffers)
	}
	if dg != lost {
		t.Errorf("counter says %d datagrams dropped, %d were lost (sent %d, received %d)", dg, lost, sent, got)
	}
	if k := kernelDrops(t, fd); buffers != k {
		t.Errorf("counter says %d buffers dropped, the kernel's socket counter %d", buffers, k)
	}
}

// TestCounterUnderLoad drops under overload while the socket is being read,
// from several senders of different burst sizes at once, and on a second
// watched port that must not see the first one's drops.
func TestCounterUnderLoad(t *testing.T) {
	c := open(t)
	fd, port := groSocket(t, 1<<20)
	p, err := c.Watch(port)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, other := groSocket(t, 1<<20)
	po, err := c.Watch(other)
	if err != nil {
		t.Fatal(err)
	}
	defer po.Close()

	const size = 256
	var (
		sent atomic.Uint64
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	for k := range 3 {
		s := gsoSender(t, port, size)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64*size)
			for i := 0; !stop.Load(); i++ {
				n := 1 + (i*(k+5))%(16<<k) // bursts up to 16, 32 and 64
				if _, err := unix.Write(s, buf[:n*size]); err == nil {
					sent.Add(uint64(n))
				}
			}
		}()
	}
	var got uint64
	buf := make([]byte, 65536)
	oob := make([]byte, unix.CmsgSpace(4))
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
		if err == nil {
			got += datagrams(n, oob[:oobn])
			time.Sleep(20 * time.Microsecond) // a slow reader: the queue overflows
		}
	}
	stop.Store(true)
	wg.Wait()
	got += drain(t, fd)
	lost := sent.Load() - got
	dg, buffers, err := p.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d datagrams, received %d, lost %d in %d buffers", sent.Load(), got, lost, buffers)
	if lost == 0 {
		t.Fatal("nothing was lost: the test did not overload the socket")
	}
	if dg != lost {
		t.Errorf("counter says %d datagrams dropped, %d were lost", dg, lost)
	}
	if d, b, err := po.Dropped(); err != nil || d != 0 || b != 0 {
		t.Errorf("the other port: %d datagrams, %d buffers dropped (err %v), want 0", d, b, err)
	}
}

// TestWatch checks the bookkeeping: a port is watched once at a time, its
// count starts at zero when watched again, and a closed Port says so.
func TestWatch(t *testing.T) {
	c := open(t)
	fd, port := groSocket(t, 64<<10)
	p, err := c.Watch(port)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Watch(port); err == nil {
		t.Error("a second Watch of the same port succeeded")
	}
	s := gsoSender(t, port, 100)
	buf := make([]byte, 64*100)
	for range 200 {
		unix.Write(s, buf)
	}
	drain(t, fd)
	if d, _, err := p.Dropped(); err != nil || d == 0 {
		t.Fatalf("Dropped = %d, %v; want drops", d, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Dropped(); err == nil {
		t.Error("Dropped after Close did not fail")
	}
	p2, err := c.Watch(port)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if d, b, err := p2.Dropped(); err != nil || d != 0 || b != 0 {
		t.Errorf("watched again: %d datagrams, %d buffers, %v; want 0, 0", d, b, err)
	}
}
