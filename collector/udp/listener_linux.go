//go:build linux

package udp

import (
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
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/trawlsec/trawl/internal/mmsg"
)

const (
	// ctrlSize is the control buffer per message: the SO_RXQ_OVFL and
	// UDP_GRO cmsgs need CmsgSpace(4) each (24 bytes on 64-bit), the rest
	// is slack for a cmsg a future kernel may add, so MSG_CTRUNC never
	// hides the counter.
	ctrlSize = 64
	// groBatchFactor bounds the datagrams handed to the Handler at once
	// with GRO: Batch buffers of up to 64 datagrams each (a GSO sender's
	// usual maximum; longer runs are handed over in more calls).
	groBatchFactor = 64
	// skMeminfoDrops is SK_MEMINFO_DROPS of linux/sock_diag.h, the index of
	// the drop counter in the SO_MEMINFO array.
	skMeminfoDrops = 8
	skMeminfoVars  = 9
)

// Listener owns the SO_REUSEPORT sockets bound by [Listen]. Its methods are
// safe for concurrent use.
type Listener struct {
	opts    Options
	addr    netip.AddrPort
	readers []*reader
	// drops is the exact drop counter of the port (GRO with
	// Options.Drops), nil without. dropsMu guards finalDrops, its last
	// count, kept by Close.
	drops      DropCounter
	dropsMu    sync.Mutex
	finalDrops [2]uint64
	dropsDone  bool

	serving   atomic.Bool
	closeOnce sync.Once
	closing   atomic.Bool
}

// reader is one socket with its preallocated recvmmsg state. Everything but
// c is touched only by the socket's goroutine.
type reader struct {
	l      *Listener
	conn   *net.UDPConn
	rc     syscall.RawConn
	rcvbuf int
	gro    bool // UDP_GRO is on
	slot   int  // receive buffer per message

	mr    mmsg.Reader // its Msgs, one per slot of buf
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	ctrl  []uint64 // uint64 so every cmsg header is aligned
	buf   []byte
	batch []Datagram

	drops  uint64 // 64-bit extension of the last SO_RXQ_OVFL value seen
	lost   uint64 // datagrams those drops held (estimated with GRO)
	logged bool   // first read error logged

	c counters
}

// counters are read by Stats while the socket goroutine adds to them.
type counters struct {
	datagrams  atomic.Uint64
	bytes      atomic.Uint64
	truncated  atomic.Uint64
	coalesced  atomic.Uint64
	readErrors atomic.Uint64
	// mu guards the copies of reader.drops and reader.lost, which Stats
	// must read as a pair.
	mu    sync.Mutex
	drops uint64
	lost  uint64
	// perBuffer is the datagrams in the last buffer read, which scales
	// the drops not yet reported with a buffer (GRO; 1 without).
	perBuffer atomic.Uint64
	// closedDrops is SO_MEMINFO's drop counter read just before Close,
	// with bit 32 set once read: after Close it can no longer be asked.
	closedDrops atomic.Uint64
	_           [64]byte // keep sockets' counters on their own cache lines
}

// Listen binds opts.Sockets SO_REUSEPORT sockets to opts.Addr. It fails when
// another socket holds the address, even one that set SO_REUSEPORT too (a
// leftover collector would otherwise silently take a share of the traffic).
// The sockets receive from the moment Listen returns; call [Listener.Serve]
// to read them, or [Listener.Close] to release them.
func Listen(opts Options) (*Listener, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	addr, err := probe(o.Addr)
	if err != nil {
		return nil, err
	}
	l := &Listener{opts: o}
	if o.GRO && o.Drops != nil {
		// Before the sockets exist, so no drop escapes the count.
		_, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.ParseUint(port, 10, 16)
		if l.drops, err = o.Drops(uint16(p)); err != nil {
			o.Logf("udp %s: no exact count of kernel drops with GRO, socket_overflow is estimated: %v", addr, err)
			l.drops = nil
		}
	}
	var warnOnce sync.Once
	for i := 0; i < o.Sockets; i++ {
		r, err := l.open(addr, &warnOnce)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.readers = append(l.readers, r)
	}
	l.addr = l.readers[0].conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return l, nil
}

// probe binds addr without SO_REUSEPORT for a moment: that fails if any
// socket holds the port, and resolves port 0 to a free port that all our
// sockets then share. Another process may take the port between probe and
// bind; then open fails, unless it uses SO_REUSEPORT as the same user.
func probe(addr string) (string, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return "", fmt.Errorf("cannot bind UDP %q: %w", addr, err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	if err := pc.Close(); err != nil {
		return "", fmt.Errorf("cannot close UDP probe socket on %q: %w", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, fmt.Sprint(port)), nil
}

// open binds one socket of the group and allocates its buffers.
func (l *Listener) open(addr string, warnOnce *sync.Once) (*reader, error) {
	o := &l.opts
	r := &reader{l: l}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = r.setup(int(fd)) })
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot bind UDP %q: %w", addr, err)
	}
	r.conn = pc.(*net.UDPConn)
	if r.rc, err = r.conn.SyscallConn(); err != nil {
		r.conn.Close()
		return nil, fmt.Errorf("cannot get raw UDP socket %q: %w", addr, err)
	}
	if r.rcvbuf < 2*o.ReadBuffer {
		warnOnce.Do(func() {
			o.Logf("udp %s: receive buffer is %d bytes, asked for %d: capped by net.core.rmem_max=%s; raise it (sysctl -w net.core.rmem_max=%d) or grant CAP_NET_ADMIN",
				addr, r.rcvbuf/2, o.ReadBuffer, rmemMax(), o.ReadBuffer)
		})
	}

	b := o.Batch
	r.slot = o.MaxDatagram
	r.batch = make([]Datagram, b)
	if r.gro {
		r.slot = groSlot
		r.batch = make([]Datagram, b*groBatchFactor)
	}
	r.mr.Msgs = make([]mmsg.Hdr, b)
	r.iovs = make([]unix.Iovec, b)
	r.names = make([]unix.RawSockaddrInet6, b)
	r.ctrl = make([]uint64, b*ctrlSize/8)
	r.buf = make([]byte, b*r.slot)
	for i := range r.mr.Msgs {
		r.iovs[i].Base = &r.buf[i*r.slot]
		r.iovs[i].SetLen(r.slot)
		h := &r.mr.Msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = (*byte)(unsafe.Pointer(&r.ctrl[i*ctrlSize/8]))
		r.resetMsg(i)
	}
	return r, nil
}

// setup sets the socket options that must precede bind.
func (r *reader) setup(fd int) error {
	o := &r.l.opts
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fmt.Errorf("cannot set SO_REUSEPORT: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
		return fmt.Errorf("cannot set SO_RXQ_OVFL: %w", err)
	}
	// Kernels before 5.0 refuse UDP_GRO: they deliver datagram by
	// datagram, which the plain path handles.
	r.gro = o.GRO && unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1) == nil
	forced := !o.noForce && unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, o.ReadBuffer) == nil
	if !forced {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, o.ReadBuffer); err != nil {
			return fmt.Errorf("cannot set SO_RCVBUF to %d: %w", o.ReadBuffer, err)
		}
	}
	n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return fmt.Errorf("cannot read back SO_RCVBUF: %w", err)
	}
	r.rcvbuf = n
	return nil
}

// rmemMax is net.core.rmem_max for the warning, "?" if unreadable.
func rmemMax() string {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// Addr is the address the sockets are bound to, with port 0 resolved.
func (l *Listener) Addr() netip.AddrPort { return l.addr }

// Close releases the sockets. It makes a running [Listener.Serve] return and
// is safe to call more than once.
func (l *Listener) Close() error {
	var errs []error
	l.closeOnce.Do(func() {
		l.closing.Store(true)
		for _, r := range l.readers {
			if m, ok := meminfoDrops(r.rc); ok {
				r.c.closedDrops.Store(uint64(m) | 1<<32)
			}
			if err := r.conn.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if l.drops != nil {
			// The sockets are gone, so the count is final: keep it for
			// Stats before the counter stops.
			l.dropsMu.Lock()
			dg, bufs, err := l.drops.Dropped()
			if err == nil {
				l.finalDrops = [2]uint64{dg, bufs}
				l.dropsDone = true
			}
			errs = append(errs, err, l.drops.Close())
			l.dropsMu.Unlock()
		}
	})
	return errors.Join(errs...)
}

// Serve reads every socket in its own goroutine and hands the batches to h
// until ctx ends, then closes the sockets and returns nil. It returns early
// with an error if a socket fails for another reason (all sockets are closed
// then too). Serve may be called only once per Listener.
func (l *Listener) Serve(ctx context.Context, h Handler) error {
	if !l.serving.CompareAndSwap(false, true) {
		return fmt.Errorf("cannot serve UDP %s: Serve already called", l.addr)
	}
	if l.closing.Load() {
		return fmt.Errorf("cannot serve UDP %s: %w", l.addr, net.ErrClosed)
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	errc := make(chan error, len(l.readers))
	for _, r := range l.readers {
		go func() { errc <- r.serve(h) }()
	}
	var first error
	for range l.readers {
		if err := <-errc; err != nil && first == nil {
			first = err
			l.Close()
		}
	}
	return first
}

// serve reads until the socket is closed; nil if the listener closed it.
func (r *reader) serve(h Handler) error {
	for {
		if err := r.receive(h); err != nil {
			if r.l.closing.Load() {
				return nil
			}
			return fmt.Errorf("cannot read UDP %s: %w", r.l.addr, err)
		}
	}
}

// receive waits for datagrams, reads one batch and hands it to h. It returns
// an error only when the socket is unusable (closed).
func (r *reader) receive(h Handler) error {
	if err := r.mr.Read(r.rc); err != nil {
		return err
	}
	if r.mr.Errno != 0 {
		// Transient by nature on UDP (ENOMEM, a pending ICMP error):
		// count and go on rather than stop the input.
		r.c.readErrors.Add(1)
		if !r.logged {
			r.logged = true
			r.l.opts.Logf("udp %s: recvmmsg failed (logged once per socket, counted in read errors): %v", r.l.addr, r.mr.Errno)
		}
		return nil
	}
	if r.mr.N > 0 {
		r.deliver(h)
	}
	return nil
}

// resetMsg restores the fields recvmmsg overwrote in message i.
func (r *reader) resetMsg(i int) {
	h := &r.mr.Msgs[i].Hdr
	h.Namelen = unix.SizeofSockaddrInet6
	h.SetControllen(ctrlSize)
	h.Flags = 0
	r.mr.Msgs[i].Len = 0
}

// deliver hands the datagrams of the messages of the last read to h,
// splitting coalesced buffers, updates the counters and readies the
// messages for the next read.
func (r *reader) deliver(h Handler) {
	limit := r.l.opts.MaxDatagram
	ctrl := unsafe.Slice((*byte)(unsafe.Pointer(&r.ctrl[0])), len(r.ctrl)*8)
	var datagrams, bytes, truncated, coalesced, lost uint64
	last := uint64(1) // datagrams in the last buffer
	drops := r.drops
	k := 0
	add := func(p []byte, from netip.AddrPort, cut bool) {
		if k == len(r.batch) {
			h(r.batch[:k])
			k = 0
		}
		if len(p) > limit {
			// Only a buffer larger than MaxDatagram (GRO's) can hold
			// more: keep the contract that no datagram exceeds it.
			p, cut = p[:limit], true
		}
		// Cap at the datagram so an append in the handler cannot
		// overwrite the next one.
		r.batch[k] = Datagram{Data: p[:len(p):len(p)], From: from, Truncated: cut}
		k++
		bytes += uint64(len(p))
		if cut {
			truncated++
		}
	}
	for i := 0; i < r.mr.N; i++ {
		m := &r.mr.Msgs[i]
		n := int(m.Len)
		data := r.buf[i*r.slot : i*r.slot+n]
		from := addrPort(&r.names[i], m.Hdr.Namelen)
		cut := m.Hdr.Flags&unix.MSG_TRUNC != 0
		seg, dropped := 0, uint64(0)
		if m.Hdr.Controllen > 0 {
			c := ctrl[i*ctrlSize : i*ctrlSize+min(int(m.Hdr.Controllen), ctrlSize)]
			if v, ok := rxqOvfl(c); ok {
				// v is the socket's cumulative drop count when this
				// buffer was queued.
				next := extend(drops, v)
				dropped, drops = next-drops, next
			}
			if r.gro {
				seg = groSegment(c)
			}
		}
		in := uint64(1)
		if seg > 0 && n > seg {
			// Datagrams of seg bytes each, the last one shorter or
			// equal; a cut buffer (cannot happen with groSlot) cuts only
			// the last.
			for ; len(data) > seg; data = data[seg:] {
				add(data[:seg], from, false)
				in++
			}
			coalesced += in
		}
		add(data, from, cut)
		datagrams += in
		// With GRO the kernel counts a dropped buffer once, however many
		// datagrams it held. The buffer queued right after the drops
		// most likely came from the same burst of the same sender, so
		// its size scales them: an estimate (exact when the buffers
		// have one size, and without GRO).
		lost += dropped * in
		last = in
		r.resetMsg(i)
	}
	if k > 0 {
		h(r.batch[:k])
	}
	if drops != r.drops {
		r.lost += lost
		r.drops = drops
		r.c.mu.Lock()
		r.c.drops, r.c.lost = drops, r.lost
		r.c.mu.Unlock()
	}
	if r.gro {
		r.c.perBuffer.Store(last)
	}
	r.c.datagrams.Add(datagrams)
	r.c.bytes.Add(bytes)
	if truncated > 0 {
		r.c.truncated.Add(truncated)
	}
	if coalesced > 0 {
		r.c.coalesced.Add(coalesced)
	}
}

// extend returns the 64-bit count whose low 32 bits are v, given prev, the
// last 64-bit value of the same wrapping kernel counter. A v behind prev (a
// stale read) leaves prev.
func extend(prev uint64, v uint32) uint64 {
	if delta := v - uint32(prev); int32(delta) > 0 {
		return prev + uint64(delta)
	}
	return prev
}

// rxqOvfl finds the SO_RXQ_OVFL value among the control messages in b.
func rxqOvfl(b []byte) (uint32, bool) {
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(b) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && l >= unix.CmsgLen(4) {
			return binary.NativeEndian.Uint32(b[unix.CmsgLen(0):]), true
		}
		next := unix.CmsgSpace(l - unix.SizeofCmsghdr)
		if next >= len(b) {
			break
		}
		b = b[next:]
	}
	return 0, false
}

// groSegment finds the UDP_GRO segment size among the control messages in
// b: the size of every datagram in a coalesced buffer but the last. 0 means
// the buffer holds one datagram.
func groSegment(b []byte) int {
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(b) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			// The kernel writes an int; only sizes above 0 make sense.
			return max(int(int32(binary.NativeEndian.Uint32(b[unix.CmsgLen(0):]))), 0)
		}
		next := unix.CmsgSpace(l - unix.SizeofCmsghdr)
		if next >= len(b) {
			break
		}
		b = b[next:]
	}
	return 0
}

// addrPort converts the sockaddr recvmmsg wrote, without allocating.
func addrPort(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	switch {
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), ntohs(sa.Port))
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), ntohs(sa4.Port))
	}
	return netip.AddrPort{}
}

// ntohs reads a port stored in network byte order.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// Stats returns the counters summed over the sockets. Overflow also includes
// drops the kernel made after the last datagram read (from SO_MEMINFO), which
// SO_RXQ_OVFL reports only with the next datagram; so it never decreases, is
// exact once the sockets are idle, and stays exact after [Listener.Close].
func (l *Listener) Stats() Stats {
	s := Stats{Sockets: len(l.readers)}
	for i, r := range l.readers {
		s.Datagrams += r.c.datagrams.Load()
		s.Bytes += r.c.bytes.Load()
		s.Truncated += r.c.truncated.Load()
		s.Coalesced += r.c.coalesced.Load()
		if r.gro {
			s.GRO++
		}
		s.ReadErrors += r.c.readErrors.Load()
		r.c.mu.Lock()
		drops, lost := r.c.drops, r.c.lost
		r.c.mu.Unlock()
		kdrops := drops
		if m, ok := meminfoDrops(r.rc); ok {
			kdrops = extend(drops, m)
		} else if m := r.c.closedDrops.Load(); m != 0 {
			kdrops = extend(drops, uint32(m))
		}
		per := max(r.c.perBuffer.Load(), 1)
		s.Overflow += lost + (kdrops-drops)*per
		s.OverflowBuffers += kdrops
		if i == 0 || r.rcvbuf < s.EffectiveReadBuffer {
			s.EffectiveReadBuffer = r.rcvbuf
		}
	}
	s.OverflowExact = s.GRO == 0
	if l.drops != nil {
		if dg, bufs, ok := l.exactDrops(); ok {
			s.Overflow, s.OverflowBuffers, s.OverflowExact = dg, bufs, true
		}
	}
	return s
}

// exactDrops reads the drop counter, or its final count after Close.
func (l *Listener) exactDrops() (datagrams, buffers uint64, ok bool) {
	l.dropsMu.Lock()
	defer l.dropsMu.Unlock()
	if l.dropsDone {
		return l.finalDrops[0], l.finalDrops[1], true
	}
	dg, bufs, err := l.drops.Dropped()
	return dg, bufs, err == nil
}

// meminfoDrops reads the socket's current drop counter; false once closed.
func meminfoDrops(rc syscall.RawConn) (uint32, bool) {
	var info [skMeminfoVars]uint32
	var errno syscall.Errno
	err := rc.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(info))
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	})
	if err != nil || errno != 0 {
		return 0, false
	}
	return info[skMeminfoDrops], true
}
