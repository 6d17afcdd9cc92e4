package gen

import (
	"context"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/trawlsec/trawl/internal/mmsg"
)

// SendConfig describes one run of [Send].
type SendConfig struct {
	Format Format
	// Target is the collector's UDP address (loopback).
	Target netip.AddrPort
	// Exporters is the number of exporters (1..250, default 16). Exporter i
	// sends from 127.0.0.<2+i> unless SameAddr is set, so collectors see
	// distinct exporter addresses, as from distinct routers.
	Exporters int
	// SameAddr sends every exporter from 127.0.0.1 (distinct source ports).
	SameAddr bool
	// Flows is the exact number of data flows to send.
	Flows uint64
	// Rate is the target in flows/s; 0 sends as fast as possible.
	Rate float64
	// PerPacket is the number of flows per packet (default
	// [DefaultPerPacket]).
	PerPacket int
	// TemplateEvery re-sends v9/IPFIX templates, and sends an sFlow
	// counter sample, every this many packets per exporter (default 20;
	// softflowd and nProbe use 16–20).
	TemplateEvery int
	// Burst is the pacing quantum (default 1ms): the sender is at most this
	// far ahead of the target rate.
	Burst time.Duration
	// GSO sends each run of equal-size packets of one exporter (up to 32,
	// the last of a run may be shorter) as one UDP GSO send (UDP_SEGMENT,
	// Linux 4.18+). The packets on the wire are the same; the sender pays
	// for one trip through the stack per run. On loopback a collector whose
	// socket asked for UDP_GRO gets the run as one buffer, as a NIC's GRO
	// would hand it an exporter's burst; any other gets the datagrams one
	// by one. Without GSO support Send fails.
	GSO bool
	// Trailer, when set, is called once every flow is sent; then each
	// exporter sends one more packet of one flow. A collector learns of
	// lost packets only from a later sequence number, so without the
	// trailer a loss in the last packets of a run shows in no sequence
	// gap. Trailer should return once the collector has read what it was
	// sent (its socket queue is empty). The trailer's flows count in
	// SendResult.Flows and TrailerFlows, not in Elapsed or Rate.
	Trailer func()
}

// SendResult is what [Send] did.
type SendResult struct {
	Flows   uint64        `json:"flows"`
	Packets uint64        `json:"packets"`
	Bytes   uint64        `json:"bytes"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Rate is the achieved flows/s: when it falls short of the target, the
	// generator, not the collector, was the limit.
	Rate float64 `json:"rate"`
	// TrailerFlows is the number of flows of SendConfig.Trailer's packets.
	TrailerFlows uint64 `json:"trailer_flows,omitempty"`
}

// batch is the number of packets handed to one sendmmsg call.
const batch = 32

// Send sends cfg.Flows flows to cfg.Target over UDP from cfg.Exporters
// sockets, paced at cfg.Rate, and returns what it sent. Exporters are
// served round-robin, up to 32 packets per sendmmsg call. A packet counts
// as sent when the kernel took it; on loopback the only later loss is the
// collector's socket buffer, which is what a benchmark measures. Send stops
// early, with the counts so far and ctx's error, when ctx is done.
func Send(ctx context.Context, cfg SendConfig) (SendResult, error) {
	var res SendResult
	if cfg.Exporters <= 0 {
		cfg.Exporters = 16
	}
	if cfg.Exporters > 250 {
		return res, fmt.Errorf("cannot run %d exporters: at most 250", cfg.Exporters)
	}
	if cfg.PerPacket <= 0 {
		cfg.PerPacket = DefaultPerPacket(cfg.Format)
	}
	if cfg.TemplateEvery == 0 {
		cfg.TemplateEvery = 20
	}
	if cfg.Burst <= 0 {
		cfg.Burst = time.Millisecond
	}
	if !cfg.Target.Addr().Is4() {
		return res, fmt.Errorf("cannot send to %s: IPv4 loopback only", cfg.Target)
	}
	exps := make([]*Exporter, cfg.Exporters)
	fds := make([]int, cfg.Exporters)
	defer func() {
		for _, fd := range fds {
			if fd > 0 {
				unix.Close(fd)
			}
		}
	}()
	to := &unix.SockaddrInet4{Port: int(cfg.Target.Port()), Addr: cfg.Target.Addr().As4()}
	for i := range exps {
		exps[i] = NewExporter(cfg.Format, i, cfg.TemplateEvery)
		if cfg.PerPacket > exps[i].MaxPerPacket() {
			cfg.PerPacket = exps[i].MaxPerPacket()
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return res, fmt.Errorf("cannot open exporter socket %d: %w", i, err)
		}
		fds[i] = fd
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
		from := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, byte(2 + i)}}
		if cfg.SameAddr {
			from.Addr = [4]byte{127, 0, 0, 1}
		}
		if err := unix.Bind(fd, from); err != nil {
			return res, fmt.Errorf("cannot bind exporter %d to %v: %w", i, from.Addr, err)
		}
		if err := unix.Connect(fd, to); err != nil {
			return res, fmt.Errorf("cannot connect exporter %d to %s: %w", i, cfg.Target, err)
		}
	}

	bufs := make([][]byte, batch)
	iovs := make([]unix.Iovec, batch)
	msgs := make([]mmsg.Hdr, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 0, MaxPacket)
	}
	// One UDP_SEGMENT control message per sendmmsg message (GSO).
	ctrlLen := unix.CmsgSpace(2)
	ctrl := make([]uint64, batch*ctrlLen/8)
	ctrlBytes := unsafe.Slice((*byte)(unsafe.Pointer(&ctrl[0])), len(ctrl)*8)
	burst := uint64(cfg.Rate * cfg.Burst.Seconds())
	if burst < uint64(cfg.PerPacket) {
		burst = uint64(cfg.PerPacket)
	}
	start := time.Now()
	next := 0
	refused := 0
	for res.Flows < cfg.Flows {
		if err := ctx.Err(); err != nil {
			res.Elapsed = time.Since(start)
			return res, err
		}
		allowed := cfg.Flows
		if cfg.Rate > 0 {
			due := uint64(cfg.Rate*time.Since(start).Seconds()) + burst
			if due < allowed {
				allowed = due
			}
			if res.Flows >= allowed {
				time.Sleep(cfg.Burst / 4)
				continue
			}
		}
		e := exps[next]
		fd := fds[next]
		next = (next + 1) % len(exps)
		k := 0
		flows := uint64(0)
		for k < batch && res.Flows+flows < allowed {
			n := uint64(cfg.PerPacket)
			if left := allowed - res.Flows - flows; n > left {
				n = left
			}
			bufs[k] = e.AppendPacket(bufs[k][:0], int(n))
			iovs[k].Base = &bufs[k][0]
			iovs[k].SetLen(len(bufs[k]))
			flows += n
			k++
		}
		m := packMessages(msgs, iovs[:k], bufs[:k], cfg.GSO, ctrlBytes, ctrlLen)
		for done := 0; done < m; {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[done])), uintptr(m-done), 0, 0, 0)
			if errno != 0 {
				// A connected UDP socket reports an earlier ICMP port
				// unreachable on the next send: the collector was not
				// listening yet or restarted. Retry a few times.
				if (errno == unix.ECONNREFUSED || errno == unix.EINTR || errno == unix.ENOBUFS) && refused < 1000 {
					refused++
					if errno == unix.ECONNREFUSED {
						time.Sleep(time.Millisecond)
					}
					continue
				}
				res.Elapsed = time.Since(start)
				return res, fmt.Errorf("cannot send to %s: %w", cfg.Target, error(errno))
			}
			for _, m := range msgs[done : done+int(r)] {
				res.Bytes += uint64(m.Len)
			}
			done += int(r)
		}
		res.Packets += uint64(k)
		res.Flows += flows
	}
	res.Elapsed = time.Since(start)
	if s := res.Elapsed.Seconds(); s > 0 {
		res.Rate = float64(res.Flows) / s
	}
	if cfg.Trailer == nil {
		return res, nil
	}
	cfg.Trailer()
	for i, e := range exps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		pkt := e.AppendPacket(bufs[0][:0], 1)
		n, err := unix.Write(fds[i], pkt)
		if err != nil {
			return res, fmt.Errorf("cannot send the trailer of exporter %d to %s: %w", i, cfg.Target, err)
		}
		res.Packets++
		res.Bytes += uint64(n)
		res.Flows++
		res.TrailerFlows++
	}
	return res, nil
}

// packMessages fills msgs for the packets of bufs (iovs point at them) and
// returns how many messages there are: one per packet, or with gso one per
// run of packets of the same length (the last of a run may be shorter),
// with a UDP_SEGMENT control message of that length in ctrl.
func packMessages(msgs []mmsg.Hdr, iovs []unix.Iovec, bufs [][]byte, gso bool, ctrl []byte, ctrlLen int) int {
	m := 0
	for i := 0; i < len(bufs); m++ {
		j := i + 1
		if gso {
			for j < len(bufs) && len(bufs[j]) <= len(bufs[i]) {
				j++
				if len(bufs[j-1]) < len(bufs[i]) {
					break // a shorter packet ends the run
				}
			}
		}
		msgs[m] = mmsg.Hdr{}
		msgs[m].Hdr.Iov = &iovs[i]
		msgs[m].Hdr.SetIovlen(j - i)
		if j-i > 1 {
			c := ctrl[m*ctrlLen : (m+1)*ctrlLen]
			h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
			h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
			h.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(len(bufs[i]))
			msgs[m].Hdr.Control = &c[0]
			msgs[m].Hdr.SetControllen(ctrlLen)
		}
		i = j
	}
	return m
}
