package mmsg

import (
	"bytes"
	"errors"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const slot = 64

// newReader returns a Reader of n messages of slot bytes each on a UDP
// socket bound to loopback, and the socket.
func newReader(t *testing.T, n int) (*Reader, []byte, *net.UDPConn, syscall.RawConn) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r := &Reader{Msgs: make([]Hdr, n)}
	buf := make([]byte, n*slot)
	iovs := make([]unix.Iovec, n)
	for i := range r.Msgs {
		iovs[i].Base = &buf[i*slot]
		iovs[i].SetLen(slot)
		r.Msgs[i].Hdr.Iov = &iovs[i]
		r.Msgs[i].Hdr.SetIovlen(1)
	}
	return r, buf, c, rc
}

func send(t *testing.T, to net.Addr, payloads ...string) {
	t.Helper()
	s, err := net.DialUDP("udp4", nil, to.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range payloads {
		if _, err := s.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHdrSize(t *testing.T) {
	// struct mmsghdr on 64-bit Linux: a 56-byte msghdr, the 4-byte length
	// and 4 bytes of padding.
	if got := unsafe.Sizeof(Hdr{}); got != 64 {
		t.Fatalf("Hdr is %d bytes, want 64 (struct mmsghdr)", got)
	}
}

// TestRead reads queued datagrams in batches no larger than Msgs, then
// waits in the poller for one sent later, and fails on a closed socket.
func TestRead(t *testing.T) {
	r, buf, c, rc := newReader(t, 4)
	send(t, c.LocalAddr(), "one", "two", "three", "four", "five", "six")
	var got []string
	for len(got) < 6 {
		if err := r.Read(rc); err != nil {
			t.Fatal(err)
		}
		if r.Errno != 0 || r.N < 1 || r.N > 4 {
			t.Fatalf("Read: N = %d, Errno = %v; want 1 to 4 messages", r.N, r.Errno)
		}
		for i := range r.N {
			got = append(got, string(buf[i*slot:i*slot+int(r.Msgs[i].Len)]))
			r.Msgs[i].Len = 0
		}
	}
	if want := []string{"one", "two", "three", "four", "five", "six"}; !slices.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}

	// Nothing queued: Read must wait (EAGAIN goes to the poller) until a
	// datagram comes.
	go func() {
		time.Sleep(50 * time.Millisecond)
		send(t, c.LocalAddr(), "late")
	}()
	start := time.Now()
	if err := r.Read(rc); err != nil {
		t.Fatal(err)
	}
	if r.N != 1 || !bytes.Equal(buf[:r.Msgs[0].Len], []byte("late")) {
		t.Fatalf("after waiting: N = %d, first %q; want the one datagram \"late\"", r.N, buf[:r.Msgs[0].Len])
	}
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Fatalf("Read returned after %v, before the datagram was sent", waited)
	}

	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if err := r.Read(rc); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	c.Close()
	if err := r.Read(rc); err == nil {
		t.Fatal("Read on a closed socket returned nil")
	}
}

// TestReadErrno reports a socket error in Errno, not as Read's error: a
// connected UDP socket whose peer is gone gets ECONNREFUSED from the ICMP
// port unreachable.
func TestReadErrno(t *testing.T) {
	r, _, c, rc := newReader(t, 2)
	gone, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	to := gone.LocalAddr().(*net.UDPAddr)
	gone.Close()
	var sa unix.SockaddrInet4
	sa.Port = to.Port
	copy(sa.Addr[:], to.IP.To4())
	var cerr error
	if err := rc.Control(func(fd uintptr) { cerr = unix.Connect(int(fd), &sa) }); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if err := r.Read(rc); err != nil {
		t.Fatal(err)
	}
	if r.Errno != unix.ECONNREFUSED || r.N != 0 {
		t.Fatalf("N = %d, Errno = %v; want 0 and ECONNREFUSED", r.N, r.Errno)
	}
}

// TestReadAllocs pins that a batch read does not allocate.
func TestReadAllocs(t *testing.T) {
	r, _, c, rc := newReader(t, 4)
	addr := c.LocalAddr().(*net.UDPAddr)
	s, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := []byte("x")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := r.Read(rc); err != nil || r.N != 1 {
			t.Fatalf("Read: N = %d, %v", r.N, err)
		}
		r.Msgs[0].Len = 0
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per read, want 0", allocs)
	}
}
