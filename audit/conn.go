package audit

import (
	"errors"
	"fmt"
	"os"
)

// Mode says how a [Conn] gets records.
type Mode uint8

// Modes.
const (
	// Unicast makes this process the audit daemon: the kernel sends it
	// every record and waits (up to backlog_wait_time) when it falls
	// behind. Only one process can hold it.
	Unicast Mode = iota
	// Multicast reads a best-effort copy of every record beside whatever
	// daemon holds unicast (auditd). The kernel drops what the socket has
	// no room for and the reader sees ENOBUFS.
	Multicast
)

// ParseMode maps a config value ("unicast", "multicast") to a Mode.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "unicast":
		return Unicast, nil
	case "multicast":
		return Multicast, nil
	}
	return 0, fmt.Errorf("unknown audit mode %q (want unicast or multicast)", s)
}

// String returns the mode's name as ParseMode and the configuration take it.
func (m Mode) String() string {
	if m == Multicast {
		return "multicast"
	}
	return "unicast"
}

// ConnOptions configures [Dial].
type ConnOptions struct {
	// ReadBuffer is the socket's SO_RCVBUF (default 16MiB; set with
	// SO_RCVBUFFORCE when permitted, so root is not capped by
	// net.core.rmem_max).
	ReadBuffer int
	// Batch is how many messages one recvmmsg call reads at most
	// (default 256).
	Batch int
}

func (o *ConnOptions) setDefaults() {
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = 16 << 20
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
}

// ErrUnsupported is wrapped by errors that mean this kernel (or OS) has no
// audit support; ErrPermission by those that mean the process lacks the
// capability. Callers that run "when they can" check for both with
// errors.Is.
var (
	ErrUnsupported = errors.ErrUnsupported
	ErrPermission  = os.ErrPermission
)
