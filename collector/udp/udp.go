// Package udp is the shared UDP receive fast path of the flow (NetFlow, IPFIX,
// sFlow) and syslog inputs.
//
// A [Listener] binds several sockets to one address with SO_REUSEPORT, so the
// kernel spreads exporters over them by 4-tuple hash, and reads each socket
// from its own goroutine in batches with recvmmsg(2). Every buffer is
// allocated once when the socket is opened: receiving and handing a batch to
// the [Handler] allocates nothing.
//
// Loss before trawl sees a datagram is measured, not guessed: each socket
// enables SO_RXQ_OVFL, so once the socket has dropped anything the kernel
// attaches its cumulative drop counter to every datagram, and
// [Stats].Overflow is the sum of those counters over the sockets (topped up
// with SO_MEMINFO for drops no later datagram has reported yet). It belongs
// in the ledger as upstream_lost{cause="socket_overflow"}.
//
// With [Options].GRO each socket also enables UDP generic receive offload
// (UDP_GRO, Linux 5.0+): the kernel may then hand over many
// datagrams of one sender in one buffer, with their common size in a control
// message, which saves the per-datagram trip through the socket layer, and
// the listener splits it back into the datagrams, in order. A sender's GSO
// packets on loopback and NIC-coalesced bursts from one exporter both
// arrive that way; [Stats].Coalesced counts the datagrams that did. The
// kernel then counts a dropped buffer as one drop, so [Options].Drops
// supplies an exact count (package bpf/udpdrop).
//
// The fast path is Linux only; elsewhere [Listen] fails with
// [errors.ErrUnsupported].
package udp

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
)

// Defaults applied by [Listen] to zero fields of [Options].
const (
	// DefaultBatch is the number of datagrams asked for per recvmmsg call.
	DefaultBatch = 64
	// DefaultMaxDatagram fits jumbo frames, the largest datagrams flow
	// exporters send in practice.
	DefaultMaxDatagram = 9000
	// DefaultReadBuffer is the SO_RCVBUF asked for per socket. Exporters
	// send in bursts (softflowd flushes 100k flows in about 250 ms), so the
	// socket must absorb a burst while the decoder catches up.
	DefaultReadBuffer = 32 << 20
)

// Limits on [Options] fields.
const (
	// MaxBatch is the kernel's limit on messages per recvmmsg (UIO_MAXIOV).
	MaxBatch = 1024
	// MaxDatagramLimit is the largest UDP payload over IPv6 without
	// jumbograms; a larger MaxDatagram would only waste memory.
	MaxDatagramLimit = 65527
	// groSlot is the receive buffer per message when UDP_GRO is on: a
	// coalesced buffer is at most a 64 KiB IP packet's payload, and one
	// that did not fit would lose the datagrams beyond the buffer.
	groSlot = 65536
)

// Options configures a [Listener]. The zero value of each field selects its
// default.
type Options struct {
	// Addr is the local address, "host:port". An empty host or "[::]" binds
	// a dual-stack socket (IPv4 senders appear as plain IPv4 addresses),
	// "0.0.0.0" binds IPv4 only. Port 0 picks a free port, shared by every
	// socket of the listener; see [Listener.Addr].
	Addr string
	// Sockets is the number of SO_REUSEPORT sockets bound to Addr, each
	// with its own reading goroutine. The kernel picks the socket by a hash
	// of source and destination address and port, so one exporter's
	// datagrams all reach the same socket and its handler calls in order
	// (while the set of sockets stays the same). Default runtime.NumCPU().
	Sockets int
	// Batch is the number of datagrams read per recvmmsg call and the
	// largest batch handed to the [Handler]. Default [DefaultBatch], at most
	// [MaxBatch].
	Batch int
	// MaxDatagram is the buffer size per datagram. Longer datagrams are cut
	// by the kernel, delivered with [Datagram].Truncated set and counted in
	// [Stats].Truncated. Default [DefaultMaxDatagram], at most
	// [MaxDatagramLimit]. Memory per socket is Batch*MaxDatagram, so lower
	// Batch when MaxDatagram is large (syslog's 64 KiB); with GRO each
	// message buffer is 64 KiB whatever MaxDatagram is (the kernel touches
	// only the pages it fills, so uncoalesced small datagrams keep resident
	// memory low).
	MaxDatagram int
	// GRO turns UDP_GRO on (Linux 5.0+; older kernels refuse it and get
	// every datagram on its own, as without it). It saves most of the
	// kernel's per-datagram cost for senders that send runs of equal-size
	// datagrams, but the kernel then counts a dropped run as one drop:
	// without Drops, [Stats].Overflow becomes an estimate.
	GRO bool
	// Drops, when set with GRO, is called once with the listener's port
	// before its sockets are bound, for the exact count of the datagrams
	// the kernel drops at the port (package bpf/udpdrop's Counter.Watch).
	// [Stats].Overflow is then that count. If it fails, Logf says why and
	// the listener estimates as without it.
	Drops func(port uint16) (DropCounter, error)
	// ReadBuffer is the SO_RCVBUF asked for per socket, in bytes. Listen
	// first tries SO_RCVBUFFORCE, which ignores net.core.rmem_max but needs
	// CAP_NET_ADMIN, then SO_RCVBUF, which the kernel caps at rmem_max; when
	// it was capped, Logf is called once. Default [DefaultReadBuffer].
	ReadBuffer int
	// Logf receives the few warnings of the listener (read buffer capped,
	// first read error of a socket). Nil discards them. It may be called
	// from the socket goroutines concurrently.
	Logf func(format string, args ...any)

	// noForce skips SO_RCVBUFFORCE, so tests running as root can see the
	// rmem_max cap.
	noForce bool
}

// DropCounter is the exact count of the datagrams the kernel dropped at a
// full receive buffer of one port, whatever sockets are bound to it.
type DropCounter interface {
	// Dropped returns the datagrams and the buffers (a coalesced run
	// counts once) dropped since the counter was made.
	Dropped() (datagrams, buffers uint64, err error)
	// Close stops counting.
	Close() error
}

// Datagram is one received datagram.
type Datagram struct {
	// Data is the payload. It aliases the socket's receive buffer and is
	// valid only until the [Handler] returns: copy what must outlive it.
	Data []byte
	// From is the sender. IPv4 senders on a dual-stack socket are unmapped
	// to plain IPv4. The IPv6 zone of link-local senders is not kept.
	From netip.AddrPort
	// Truncated reports that the datagram was longer than
	// [Options].MaxDatagram and Data holds only its first MaxDatagram bytes.
	Truncated bool
}

// Handler consumes a batch of datagrams, in the order the socket received
// them: at most [Options].Batch of them, or up to 64 times as many when GRO
// coalesced them. It is called from the goroutine of
// the socket that read them, so calls for different sockets run concurrently.
// It must not retain batch or the Data slices after it returns. While it runs
// its socket is not read: a slow handler makes the kernel queue fill and drop,
// which [Stats].Overflow then counts.
type Handler func(batch []Datagram)

// Stats are the cumulative counters of a [Listener], summed over its sockets.
type Stats struct {
	// Datagrams is the number of datagrams read and handed to the handler.
	Datagrams uint64
	// Bytes is the payload bytes handed to the handler (after truncation).
	Bytes uint64
	// Truncated is the number of datagrams longer than MaxDatagram.
	Truncated uint64
	// Coalesced is the number of datagrams (of Datagrams) that the kernel
	// handed over several to a buffer (UDP_GRO).
	Coalesced uint64
	// GRO is the number of sockets with UDP_GRO on.
	GRO int
	// Overflow is the number of datagrams the kernel dropped for these
	// sockets before trawl read them, mostly because the receive queue was
	// full (SO_RXQ_OVFL; the kernel counts every drop on the socket). With
	// GRO the kernel counts a dropped buffer once, however many datagrams
	// it held: [Options].Drops then counts them exactly; without it each
	// drop is scaled by the datagrams in the buffer queued after it, an
	// estimate (exact when the senders' runs have a steady length).
	// OverflowBuffers is the kernel's own count.
	Overflow uint64
	// OverflowExact reports that Overflow is exact: GRO is off on every
	// socket, or the drop counter of [Options].Drops is counting.
	OverflowExact bool
	// OverflowBuffers is the number of buffers the kernel dropped: equal
	// to Overflow without GRO, fewer with it.
	OverflowBuffers uint64
	// ReadErrors is the number of failed recvmmsg calls.
	ReadErrors uint64
	// EffectiveReadBuffer is the SO_RCVBUF the kernel granted, as read back
	// (the kernel doubles the value asked for, to cover its bookkeeping),
	// the smallest over the sockets.
	EffectiveReadBuffer int
	// Sockets is the number of bound sockets.
	Sockets int
}

// withDefaults validates o and fills its zero fields.
func (o Options) withDefaults() (Options, error) {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return o, fmt.Errorf("cannot parse UDP listen address %q: %w", o.Addr, err)
	}
	if o.Sockets == 0 {
		o.Sockets = runtime.NumCPU()
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.MaxDatagram == 0 {
		o.MaxDatagram = DefaultMaxDatagram
	}
	if o.ReadBuffer == 0 {
		o.ReadBuffer = DefaultReadBuffer
	}
	switch {
	case o.Sockets < 0 || o.Sockets > 1024:
		return o, fmt.Errorf("invalid UDP socket count %d for %q: want 1..1024", o.Sockets, o.Addr)
	case o.Batch < 0 || o.Batch > MaxBatch:
		return o, fmt.Errorf("invalid UDP batch %d for %q: want 1..%d", o.Batch, o.Addr, MaxBatch)
	case o.MaxDatagram < 0 || o.MaxDatagram > MaxDatagramLimit:
		return o, fmt.Errorf("invalid UDP max datagram %d for %q: want 1..%d", o.MaxDatagram, o.Addr, MaxDatagramLimit)
	case o.ReadBuffer < 0 || o.ReadBuffer > 1<<30:
		return o, fmt.Errorf("invalid UDP read buffer %d for %q: want 1..%d", o.ReadBuffer, o.Addr, 1<<30)
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o, nil
}
