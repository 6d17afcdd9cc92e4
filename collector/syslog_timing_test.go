package collector

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawlsec/trawl/collector/udp"
)

// drainRing empties h's ring in the background until stop is set, so
// producers never block; it returns the number of events taken.
func drainRing(h *syslogHarness, stop *atomic.Bool) <-chan int {
	done := make(chan int, 1)
	go func() {
		var recs [][]byte
		n := 0
		for !stop.Load() || h.pipe.ring.Len() > 0 {
			recs = h.pipe.ring.Peek(recs[:0], 512)
			if len(recs) == 0 {
				h.pipe.ring.Wait(time.Millisecond)
				continue
			}
			n += len(recs)
			h.pipe.ring.Release(len(recs))
		}
		done <- n
	}()
	return done
}

// BenchmarkSyslogUDPHandle measures the UDP input per datagram: strip,
// parse (RFC 5424 and RFC 3164 alternating), encode, ring.
func BenchmarkSyslogUDPHandle(b *testing.B) {
	h := startSyslog(b, SyslogOptions{Protocol: SyslogUDP}, nil)
	in := h.in.(*SyslogUDPInput)
	from := netip.MustParseAddrPort("192.0.2.1:514")
	batch := make([]udp.Datagram, 64)
	size := 0
	for i := range batch {
		m := fmt.Sprintf("<165>1 2026-11-25T10:00:00.5Z host1 app 42 ID7 [ex@1 a=\"b\"] event %d user=alice action=login\n", i)
		if i%2 == 1 {
			m = fmt.Sprintf("<13>Nov 25 10:00:00 host2 sshd[7]: Accepted publickey for alice from 192.0.2.%d port 22\n", i)
		}
		batch[i] = udp.Datagram{Data: []byte(m), From: from}
		size += len(m)
	}
	var stop atomic.Bool
	done := drainRing(h, &stop)
	b.SetBytes(int64(size / len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		in.handle(batch[:min(len(batch), b.N-i)])
	}
	b.StopTimer()
	stop.Store(true)
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSyslogTCP measures the TCP input over loopback: one connection,
// LF-framed RFC 3164 lines, read, split, parse, encode, ring.
func BenchmarkSyslogTCP(b *testing.B) {
	h := startSyslog(b, SyslogOptions{Protocol: SyslogTCP}, nil)
	var chunk bytes.Buffer
	const perChunk = 256
	for i := range perChunk {
		fmt.Fprintf(&chunk, "<13>Nov 25 10:00:00 host2 sshd[7]: Accepted publickey for alice from 192.0.2.%d port 22\n", i)
	}
	c, err := net.Dial("tcp", h.in.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	var stop atomic.Bool
	done := drainRing(h, &stop)
	b.SetBytes(int64(chunk.Len() / perChunk))
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		if _, err := c.Write(chunk.Bytes()); err != nil {
			b.Fatal(err)
		}
		sent += perChunk
	}
	c.Close()
	for h.led.Received.Get() < uint64(sent) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	stop.Store(true)
	<-done
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "msgs/s")
}
