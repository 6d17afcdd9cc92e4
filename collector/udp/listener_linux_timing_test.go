//go:build linux

package udp

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/trawlsec/trawl/internal/mmsg"
)

const benchSize = 512

// sender sends benchSize-byte datagrams to one address with sendmmsg, up to
// 64 per call, so sending costs the benchmark as little as possible.
type sender struct {
	c     *net.UDPConn
	rc    syscall.RawConn
	msgs  []mmsg.Hdr
	iovs  []unix.Iovec
	buf   []byte
	n, k  int
	write func(fd uintptr) bool
}

func newSender(b *testing.B, dst netip.AddrPort) *sender {
	b.Helper()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	s := &sender{c: c, msgs: make([]mmsg.Hdr, 64), iovs: make([]unix.Iovec, 64), buf: make([]byte, benchSize)}
	if s.rc, err = c.SyscallConn(); err != nil {
		b.Fatal(err)
	}
	for i := range s.msgs {
		s.iovs[i].Base = &s.buf[0]
		s.iovs[i].SetLen(benchSize)
		s.msgs[i].Hdr.Iov = &s.iovs[i]
		s.msgs[i].Hdr.SetIovlen(1)
	}
	s.write = func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(s.n), 0, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		if e != 0 {
			r = 0 // a stray ICMP error: try again
		}
		s.k = int(r)
		return true
	}
	return s
}

// send sends up to min(n, 64) datagrams and returns how many went out.
func (s *sender) send(n int) (int, error) {
	s.n = min(n, len(s.msgs))
	if err := s.rc.Write(s.write); err != nil {
		return 0, err
	}
	return s.k, nil
}

// fill sends exactly n datagrams.
func (s *sender) fill(b *testing.B, n int) {
	for n > 0 {
		k, err := s.send(n)
		if err != nil {
			b.Fatal(err)
		}
		n -= k
	}
}

// blast sends until stop is closed, counting in sent.
func (s *sender) blast(stop <-chan struct{}, sent *atomic.Uint64) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			k, err := s.send(64)
			if err != nil {
				return
			}
			sent.Add(uint64(k))
		}
	}()
	return &wg
}

// forceReadBuffer gives a stdlib socket the buffer a Listener gets.
func forceReadBuffer(b *testing.B, rc syscall.RawConn, size int) {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size); serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
		}
	})
	if err != nil || serr != nil {
		b.Fatal(err, serr)
	}
}

// BenchmarkReceive compares the Listener's read path with a plain
// ReadFromUDPAddrPort loop on one socket each, over loopback, in two ways:
//
//   - drain: the socket queue is filled while the clock is stopped, then
//     timed while read empty. This is the receive cost alone.
//   - blast: a sender goroutine sends without pause while the receiver
//     reads. On a small machine the sender (which pays for the loopback
//     delivery too) is often the limit; sent/s shows it.
func BenchmarkReceive(b *testing.B) {
	const readBuffer = 32 << 20
	type receiver struct {
		addr    netip.AddrPort
		rc      syscall.RawConn
		receive func(n int) // reads exactly n datagrams
		serve   func(ctx context.Context, until int, done chan<- struct{})
	}
	trawl := func(b *testing.B) receiver {
		l := listen(b, Options{Addr: "127.0.0.1:0", Sockets: 1, ReadBuffer: readBuffer})
		r := l.readers[0]
		var got int
		h := func(batch []Datagram) { got += len(batch) }
		return receiver{
			addr: l.Addr(),
			rc:   r.rc,
			receive: func(n int) {
				for got = 0; got < n; {
					if err := r.receive(h); err != nil {
						b.Fatal(err)
					}
				}
			},
			serve: func(ctx context.Context, until int, done chan<- struct{}) {
				n := 0
				err := l.Serve(ctx, func(batch []Datagram) {
					if n < until && n+len(batch) >= until {
						close(done)
					}
					n += len(batch)
				})
				if err != nil {
					b.Error(err)
				}
			},
		}
	}
	stdlib := func(b *testing.B) receiver {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		rc, err := c.SyscallConn()
		if err != nil {
			b.Fatal(err)
		}
		forceReadBuffer(b, rc, readBuffer)
		buf := make([]byte, DefaultMaxDatagram)
		var sink int
		receive := func(n int) {
			for range n {
				m, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					b.Fatal(err)
				}
				sink += m + int(from.Port())
			}
		}
		return receiver{
			addr:    c.LocalAddr().(*net.UDPAddr).AddrPort(),
			rc:      rc,
			receive: receive,
			serve: func(ctx context.Context, until int, done chan<- struct{}) {
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				receive(until)
				close(done)
			},
		}
	}
	drain := func(b *testing.B, recv receiver) {
		s := newSender(b, recv.addr)
		// Small enough to fit the queue: a dropped datagram would leave
		// receive waiting for it forever, so drops fail the benchmark.
		const round = 4096
		b.ReportAllocs()
		b.SetBytes(benchSize)
		b.ResetTimer()
		for left := b.N; left > 0; left -= round {
			n := min(left, round)
			b.StopTimer()
			s.fill(b, n)
			time.Sleep(time.Millisecond) // let the loopback softirq finish delivering
			if drops, ok := meminfoDrops(recv.rc); !ok || drops != 0 {
				b.Fatalf("receiver dropped %d datagrams while filling (%v): lower round", drops, ok)
			}
			b.StartTimer()
			recv.receive(n)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "datagrams/s")
	}
	blast := func(b *testing.B, recv receiver) {
		s := newSender(b, recv.addr)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		stop := make(chan struct{})
		var sent atomic.Uint64
		b.ReportAllocs()
		b.SetBytes(benchSize)
		b.ResetTimer()
		start := time.Now()
		served := make(chan struct{})
		go func() {
			defer close(served)
			recv.serve(ctx, b.N, done)
		}()
		wg := s.blast(stop, &sent)
		<-done
		elapsed := time.Since(start)
		b.StopTimer()
		close(stop)
		wg.Wait()
		cancel()
		<-served
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "datagrams/s")
		b.ReportMetric(float64(sent.Load())/elapsed.Seconds(), "sent/s")
	}
	b.Run("drain/trawl", func(b *testing.B) { drain(b, trawl(b)) })
	b.Run("drain/stdlib", func(b *testing.B) { drain(b, stdlib(b)) })
	b.Run("blast/trawl", func(b *testing.B) { blast(b, trawl(b)) })
	b.Run("blast/stdlib", func(b *testing.B) { blast(b, stdlib(b)) })
}
