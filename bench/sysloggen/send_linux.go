package sysloggen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/trawlsec/trawl/internal/mmsg"
)

// Config describes one run of [Send].
type Config struct {
	// Target is the collector's loopback address.
	Target netip.AddrPort
	// TCP sends over TCP connections; otherwise over UDP, one message per
	// datagram.
	TCP     bool
	Format  Format
	Framing Framing // TCP only
	// RELP sends over RELP sessions on TCP connections, one per stream
	// (TCP and Framing are then ignored): a message counts as sent only
	// once the collector answered it "200 OK".
	RELP bool
	// RELPWindow is the most messages a RELP session has written and not
	// yet seen answered (default [DefaultRELPWindow], rsyslog's omrelp
	// default): the sender waits for answers before it writes more.
	RELPWindow int
	// Size is the message size without framing (default 256).
	Size int
	// Streams is the number of UDP sockets or TCP connections, each
	// driven by its own goroutine with its own source port and stream
	// number (default 4, at most 100).
	Streams int
	// Messages is the exact number of messages to send, split evenly over
	// the streams (the first streams send one more when it does not
	// divide).
	Messages uint64
	// Rate is the target in messages/s over all streams; 0 sends as fast
	// as possible.
	Rate float64
	// Burst is the pacing quantum (default 1ms): a stream is at most this
	// far ahead of its share of the rate.
	Burst time.Duration
	// NoGSO sends every UDP datagram as its own packet. By default the
	// sender uses UDP generic segmentation offload (UDP_SEGMENT) where the
	// kernel has it: the collector receives the same datagrams, and the
	// sender spends far less CPU making them, which leaves the cores of a
	// small machine to the collector.
	NoGSO bool
}

// Result is what [Send] did.
type Result struct {
	// Messages the kernel accepted: for UDP the datagrams sendmmsg took,
	// for TCP the messages whose every byte was written; for RELP the
	// messages the collector answered "200 OK".
	Messages uint64 `json:"messages"`
	// Unacked (RELP) is the messages written to a session that the
	// collector did not answer "200 OK": refused, or still unanswered when
	// the session ended early. They are not in Messages, but the
	// collector may have stored them.
	Unacked uint64 `json:"unacked,omitempty"`
	// Bytes on the wire (framing included, no IP or UDP headers; for
	// RELP the "syslog" frames written, answered or not).
	Bytes   uint64        `json:"bytes"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Rate is the achieved messages/s: when it falls short of the target
	// the generator, or TCP backpressure from the collector, was the
	// limit (over RELP: the collector's answers).
	Rate float64 `json:"rate"`
	// PerStream is the messages sent on each stream; stream i numbered
	// its messages 0..PerStream[i]-1. (Over RELP the answers come in
	// order and a session stops at the first that is not "200 OK", so
	// the acknowledged messages are such a prefix too.)
	PerStream []uint64 `json:"per_stream"`
}

// udpBatch is the number of packets handed to one sendmmsg call.
const udpBatch = 64

// gsoSegments is the number of datagrams in one UDP GSO packet (the
// kernel's limit, UDP_MAX_SEGMENTS, is 64 in older kernels).
const gsoSegments = 64

// tcpBatchBytes is about how much one TCP write carries.
const tcpBatchBytes = 64 << 10

// Send sends cfg.Messages messages to cfg.Target and returns what it sent.
// It stops early, with the counts so far and ctx's error, when ctx is done.
func Send(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Size == 0 {
		cfg.Size = 256
	}
	if cfg.Streams <= 0 {
		cfg.Streams = 4
	}
	if cfg.Streams > 100 {
		return Result{}, fmt.Errorf("cannot run %d streams: at most 100", cfg.Streams)
	}
	if cfg.Burst <= 0 {
		cfg.Burst = time.Millisecond
	}
	if cfg.RELPWindow <= 0 {
		cfg.RELPWindow = DefaultRELPWindow
	}
	if !cfg.Target.Addr().Is4() {
		return Result{}, fmt.Errorf("cannot send to %s: IPv4 loopback only", cfg.Target)
	}
	res := Result{PerStream: make([]uint64, cfg.Streams)}
	var bytes, unacked atomic.Uint64
	errs := make([]error, cfg.Streams)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range cfg.Streams {
		n := cfg.Messages / uint64(cfg.Streams)
		if uint64(i) < cfg.Messages%uint64(cfg.Streams) {
			n++
		}
		tpl, err := NewTemplate(cfg.Format, cfg.Size, i)
		if err != nil {
			return res, err
		}
		s := &stream{cfg: &cfg, tpl: tpl, n: n, rate: cfg.Rate / float64(cfg.Streams), start: start}
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch {
			case cfg.RELP:
				errs[i] = s.sendRELP(ctx, i)
			case cfg.TCP:
				errs[i] = s.sendTCP(ctx)
			default:
				errs[i] = s.sendUDP(ctx)
			}
			res.PerStream[i] = s.sent
			bytes.Add(s.bytes)
			unacked.Add(s.unacked)
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	for _, n := range res.PerStream {
		res.Messages += n
	}
	res.Bytes = bytes.Load()
	res.Unacked = unacked.Load()
	if s := res.Elapsed.Seconds(); s > 0 {
		res.Rate = float64(res.Messages) / s
	}
	return res, errors.Join(errs...)
}

// stream is one socket's sender.
type stream struct {
	cfg   *Config
	tpl   *Template
	n     uint64  // messages to send
	rate  float64 // this stream's share, messages/s; 0 = unpaced
	start time.Time

	sent    uint64
	bytes   uint64
	unacked uint64 // RELP: written, not answered 200
}

// allowed returns how many messages the stream may have sent by now,
// sleeping until at least one more than done (the messages sent so far)
// is due.
func (s *stream) allowed(ctx context.Context, done uint64) (uint64, error) {
	if s.rate <= 0 {
		return s.n, nil
	}
	burst := max(uint64(s.rate*s.cfg.Burst.Seconds()), 1)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		due := uint64(s.rate*time.Since(s.start).Seconds()) + burst
		if due > done {
			return min(due, s.n), nil
		}
		// due ≤ done: the next message is due when rate×t + burst
		// reaches done+1.
		at := time.Duration(float64(done+1-burst) / s.rate * float64(time.Second))
		time.Sleep(max(at-time.Since(s.start), s.cfg.Burst/4))
	}
}

func (s *stream) sendUDP(ctx context.Context) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open UDP socket: %w", err)
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<20)
	to := &unix.SockaddrInet4{Port: int(s.cfg.Target.Port()), Addr: s.cfg.Target.Addr().As4()}
	if err := unix.Connect(fd, to); err != nil {
		return fmt.Errorf("cannot connect UDP socket to %s: %w", s.cfg.Target, err)
	}
	size := s.tpl.Size()
	// With UDP GSO one send buffer of segs messages leaves as segs
	// datagrams of size bytes each: the kernel cuts it, so the sender
	// pays for one packet where it would pay for segs. The receiver gets
	// ordinary datagrams (it has not asked for UDP_GRO).
	segs := 1
	if !s.cfg.NoGSO && unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, size) == nil {
		segs = gsoSegments
	}
	per := udpBatch * segs // messages per sendmmsg call
	buf := make([]byte, per*size)
	for i := range per {
		copy(buf[i*size:], s.tpl.Bytes())
	}
	iovs := make([]unix.Iovec, udpBatch)
	msgs := make([]mmsg.Hdr, udpBatch)
	for i := range udpBatch {
		iovs[i].Base = &buf[i*segs*size]
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.SetIovlen(1)
	}
	off := s.tpl.SeqOffset()
	retries := 0
	for s.sent < s.n {
		limit, err := s.allowed(ctx, s.sent)
		if err != nil {
			return err
		}
		k := int(min(limit-s.sent, uint64(per)))
		for i := range k {
			PutSeq(buf[i*size+off:], s.sent+uint64(i))
		}
		// Packet j carries messages j*segs up to k.
		pkts := (k + segs - 1) / segs
		for j := range pkts {
			iovs[j].SetLen(min(segs, k-j*segs) * size)
		}
		for done := 0; done < pkts; {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[done])), uintptr(pkts-done), 0, 0, 0)
			if errno != 0 {
				// A connected UDP socket reports an earlier ICMP port
				// unreachable on the next send (the collector was not
				// listening yet): retry a few times, as for a full
				// send buffer.
				if (errno == unix.ECONNREFUSED || errno == unix.EINTR || errno == unix.ENOBUFS || errno == unix.EAGAIN) && retries < 10000 {
					retries++
					if errno != unix.EINTR {
						time.Sleep(100 * time.Microsecond)
					}
					continue
				}
				return fmt.Errorf("cannot send to %s after %d messages: %w", s.cfg.Target, s.sent, errno)
			}
			for j := done; j < done+int(r); j++ {
				n := uint64(iovs[j].Len) / uint64(size)
				s.sent += n
				s.bytes += n * uint64(size)
			}
			done += int(r)
		}
	}
	return nil
}

func (s *stream) sendTCP(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp4", s.cfg.Target.String())
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w", s.cfg.Target, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetWriteDeadline(time.Now()) })
	defer stop()
	// One buffer of whole framed messages; each round overwrites the
	// sequence numbers and writes a prefix of it.
	one := s.tpl.AppendMessage(nil, 0, true, s.cfg.Framing)
	per := max(tcpBatchBytes/len(one), 1)
	buf := make([]byte, 0, per*len(one))
	for range per {
		buf = append(buf, one...)
	}
	off := len(one) - s.tpl.Size() + s.tpl.SeqOffset() // framing prefix + offset
	if s.cfg.Framing == LF {
		off = s.tpl.SeqOffset()
	}
	for s.sent < s.n {
		limit, err := s.allowed(ctx, s.sent)
		if err != nil {
			return err
		}
		k := int(min(limit-s.sent, uint64(per)))
		for i := range k {
			PutSeq(buf[i*len(one)+off:], s.sent+uint64(i))
		}
		if _, err := c.Write(buf[:k*len(one)]); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("cannot write to %s after %d messages: %w", s.cfg.Target, s.sent, err)
		}
		s.sent += uint64(k)
		s.bytes += uint64(k * len(one))
	}
	// Close with the data flushed: a graceful FIN after the last write.
	if tc, ok := c.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return nil
}
