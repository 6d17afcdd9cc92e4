//go:build linux

package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/trawlsec/trawl/internal/mmsg"
)

// Netlink message types that are not audit records.
const (
	nlmsgError = 2 // NLMSG_ERROR: the ack of a request
	nlmsgDone  = 3 // NLMSG_DONE
	// typeReplace is AUDIT_REPLACE: the kernel pings the registered
	// daemon with it when another process asks for the audit PID; a daemon
	// that still reads its socket keeps the PID.
	typeReplace = 1329
)

// auditNlgrpReadlog is AUDIT_NLGRP_READLOG, the multicast group of
// read-only listeners (bit 0 of the bind groups).
const auditNlgrpReadlog = 1

// maxMessage bounds one netlink message: the kernel's longest audit record
// (MAX_AUDIT_MESSAGE_LENGTH, 8970) plus the netlink header, rounded up.
const maxMessage = 9 << 10

// Conn is the netlink socket audit records are read from. In [Unicast]
// mode this process becomes the audit daemon once [Conn.Register] is
// called; in [Multicast] mode it listens beside one and changes nothing.
//
// Read is meant for one goroutine; Close may be called from any goroutine
// and makes a blocked Read return.
type Conn struct {
	mode  Mode
	f     *os.File
	rc    syscall.RawConn
	rcvbf int
	// closed is set by Close, so Read can report os.ErrClosed (the
	// runtime's own error for a closed file is not matched by errors.Is).
	closed atomic.Bool

	mr    mmsg.Reader // its Msgs, one per maxMessage of buf
	iovs  []unix.Iovec
	names []unix.RawSockaddrNetlink
	buf   []byte
}

// Dial opens an audit netlink socket. It needs CAP_AUDIT_CONTROL for
// Unicast and CAP_AUDIT_READ for Multicast; without them, or on a kernel
// without audit, it fails with an error that says so.
func Dial(mode Mode, opts ConnOptions) (*Conn, error) {
	opts.setDefaults()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_AUDIT)
	if err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("cannot open audit netlink socket (kernel built without CONFIG_AUDIT?): %w: %w", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("cannot open audit netlink socket: %w", err)
	}
	c := &Conn{mode: mode}
	ok := false
	defer func() {
		if !ok {
			if c.f != nil {
				c.f.Close()
			} else {
				unix.Close(fd)
			}
		}
	}()
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, opts.ReadBuffer) != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, opts.ReadBuffer); err != nil {
			return nil, fmt.Errorf("cannot set SO_RCVBUF of the audit socket to %d: %w", opts.ReadBuffer, err)
		}
	}
	if c.rcvbf, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil {
		return nil, fmt.Errorf("cannot read back SO_RCVBUF of the audit socket: %w", err)
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if mode == Multicast {
		sa.Groups = auditNlgrpReadlog
	}
	if err := unix.Bind(fd, sa); err != nil {
		if mode == Multicast && errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("cannot join the audit multicast group (needs CAP_AUDIT_READ): %w: %w", ErrPermission, err)
		}
		return nil, fmt.Errorf("cannot bind audit netlink socket: %w", err)
	}
	c.f = os.NewFile(uintptr(fd), "audit-netlink")
	if c.rc, err = c.f.SyscallConn(); err != nil {
		return nil, fmt.Errorf("cannot get raw audit socket: %w", err)
	}

	b := opts.Batch
	c.mr.Msgs = make([]mmsg.Hdr, b)
	c.iovs = make([]unix.Iovec, b)
	c.names = make([]unix.RawSockaddrNetlink, b)
	c.buf = make([]byte, b*maxMessage)
	for i := range c.mr.Msgs {
		c.iovs[i].Base = &c.buf[i*maxMessage]
		c.iovs[i].SetLen(maxMessage)
		h := &c.mr.Msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&c.names[i]))
		h.Iov = &c.iovs[i]
		h.SetIovlen(1)
		c.resetMsg(i)
	}
	ok = true
	return c, nil
}

// ReadBuffer returns the socket's receive buffer as the kernel reports it
// (twice the size asked for, capped by net.core.rmem_max without
// CAP_NET_ADMIN).
func (c *Conn) ReadBuffer() int { return c.rcvbf }

// Register makes this process the audit daemon: the kernel sends every
// audit record to this socket from now on. The kernel handles the request
// before the send returns; its acknowledgement arrives on this socket and
// Read skips it, so the caller confirms with [Control.Status] (the PID is
// this process's) whether it took. It refuses (EEXIST) while another live
// process holds the PID.
func (c *Conn) Register() error {
	if c.mode != Unicast {
		return errors.New("only a unicast audit connection can register as the audit daemon")
	}
	return c.sendStatus(statusMaskPID, uint32(os.Getpid()))
}

// statusMaskPID is AUDIT_STATUS_PID.
const statusMaskPID = 4

// sendStatus sends AUDIT_SET with one field of struct audit_status.
func (c *Conn) sendStatus(mask, pid uint32) error {
	var msg [unix.NLMSG_HDRLEN + 44]byte
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], 1001) // AUDIT_SET
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(msg[8:], 1)
	ne.PutUint32(msg[unix.NLMSG_HDRLEN:], mask)
	ne.PutUint32(msg[unix.NLMSG_HDRLEN+12:], pid) // audit_status.pid
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), msg[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("cannot send AUDIT_SET to the kernel: %w", err)
	}
	return nil
}

// Msg is one audit record read from netlink: its type and its text.
type Msg struct {
	Type uint16
	Data []byte
}

// ErrOverrun is returned by [Conn.Read] when the kernel dropped messages
// because the socket's receive buffer was full (ENOBUFS). The socket stays
// usable: count it and read on. The serial numbers tell how many events
// were lost.
var ErrOverrun = fmt.Errorf("audit socket receive buffer overrun: %w", syscall.ENOBUFS)

// Read waits for audit records and appends them to dst[:0]; their Data
// alias the Conn's buffers and stay valid until the next Read. After
// Close it returns an error wrapping os.ErrClosed; after the read deadline
// one wrapping os.ErrDeadlineExceeded. Messages
// that are not records (acknowledgements, AUDIT_REPLACE pings, anything
// not sent by the kernel) are skipped, so a Read may return no records
// and a nil error. truncated counts records longer than the buffer (cut).
func (c *Conn) Read(dst []Msg) (msgs []Msg, truncated int, err error) {
	dst = dst[:0]
	if err := c.mr.Read(c.rc); err != nil {
		if c.closed.Load() {
			return dst, 0, fmt.Errorf("audit socket: %w", os.ErrClosed)
		}
		return dst, 0, err
	}
	if e := c.mr.Errno; e != 0 {
		c.mr.Errno = 0
		if e == unix.ENOBUFS {
			return dst, 0, ErrOverrun
		}
		return dst, 0, fmt.Errorf("cannot read from the audit socket: %w", e)
	}
	ne := binary.NativeEndian
	for i := 0; i < c.mr.N; i++ {
		n := int(c.mr.Msgs[i].Len)
		flags := c.mr.Msgs[i].Hdr.Flags
		from := c.names[i].Pid
		c.resetMsg(i)
		if from != 0 || n < unix.NLMSG_HDRLEN {
			continue // not from the kernel, or no header
		}
		b := c.buf[i*maxMessage : i*maxMessage+min(n, maxMessage)]
		typ := ne.Uint16(b[4:6])
		if typ < TypeFirstEvent || typ > TypeLastEvent || typ == typeReplace {
			continue
		}
		if flags&unix.MSG_TRUNC != 0 {
			truncated++
		}
		// The length in an audit message's header is not reliable on
		// every kernel; the datagram's length is.
		dst = append(dst, Msg{Type: typ, Data: trimRecord(b[unix.NLMSG_HDRLEN:])})
	}
	c.mr.N = 0
	return dst, truncated, nil
}

// SetReadDeadline makes a blocked Read return os.ErrDeadlineExceeded at t.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

// Close closes the socket. It does not give up the audit PID: the kernel
// keeps it until a send to the socket fails, so call [Control.ClearPID]
// first.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.f.Close()
}

func (c *Conn) resetMsg(i int) {
	h := &c.mr.Msgs[i].Hdr
	h.Namelen = unix.SizeofSockaddrNetlink
	h.Flags = 0
	c.mr.Msgs[i].Len = 0
}
