package mmsg

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Hdr is struct mmsghdr of linux/socket.h: one message of a recvmmsg or
// sendmmsg batch and, after the call, the bytes it transferred. The padding
// matches C's on 64-bit.
type Hdr struct {
	Hdr unix.Msghdr
	Len uint32
	_   [4]byte
}

// Reader reads batches of messages from one socket into Msgs. The caller
// sets Msgs up (buffers, names, control) once, reads the N messages of each
// batch and restores the fields the kernel overwrote before the next Read.
// It is not safe for concurrent use.
type Reader struct {
	// Msgs are the headers handed to recvmmsg; their number is the most
	// one Read returns.
	Msgs []Hdr
	// N is the number of messages the last Read filled.
	N int
	// Errno is the error recvmmsg reported to the last Read (N is 0 then),
	// or 0. It is a socket error such as ENOBUFS or a pending ICMP error,
	// which the caller counts; Read itself failed only when it returns an
	// error.
	Errno unix.Errno

	readFn func(fd uintptr) bool // read, bound once so that Read does not allocate
}

// Read waits in the runtime poller until the socket of rc is readable and
// reads one batch of at most len(Msgs) messages, setting N and Errno. It
// returns an error only when the socket is unusable (closed, deadline
// passed), as rc.Read does. It does not allocate after the first call.
func (r *Reader) Read(rc syscall.RawConn) error {
	if r.readFn == nil {
		r.readFn = r.read
	}
	return rc.Read(r.readFn)
}

// read is the RawConn.Read callback: false asks the poller to wait until
// the socket is readable.
func (r *Reader) read(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.Msgs[0])), uintptr(len(r.Msgs)), 0, 0, 0)
		switch e {
		case 0:
			r.N, r.Errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.N, r.Errno = 0, e
			return true
		}
	}
}
