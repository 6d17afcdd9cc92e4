//go:build !linux

package audit

import (
	"fmt"
	"time"
)

var errNotLinux = fmt.Errorf("linux audit: %w on this OS", ErrUnsupported)

// Control is the Linux audit control socket; on this OS every call fails
// with [ErrUnsupported].
type Control struct{}

// OpenControl fails with [ErrUnsupported] on this OS.
func OpenControl() (*Control, error) { return nil, errNotLinux }

// Close does nothing.
func (c *Control) Close() error { return nil }

// Status fails with [ErrUnsupported].
func (c *Control) Status() (Status, error) { return Status{}, errNotLinux }

// Rules fails with [ErrUnsupported].
func (c *Control) Rules() ([][]byte, error) { return nil, errNotLinux }

// State fails with [ErrUnsupported].
func (c *Control) State() (State, error) { return State{}, errNotLinux }

// Apply fails with [ErrUnsupported].
func (c *Control) Apply(*Rules, ApplyOptions) (*Session, error) { return nil, errNotLinux }

// Restore fails with [ErrUnsupported].
func (c *Control) Restore(*Session) error { return errNotLinux }

// ClearPID fails with [ErrUnsupported].
func (c *Control) ClearPID() error { return errNotLinux }

// ProcessAlive reports false on this OS.
func ProcessAlive(uint32) bool { return false }

// Conn is the Linux audit netlink socket; on this OS Dial fails.
type Conn struct{}

// Msg is one audit record read from netlink.
type Msg struct {
	Type uint16
	Data []byte
}

// ErrOverrun is never returned on this OS.
var ErrOverrun = fmt.Errorf("audit socket receive buffer overrun")

// Dial fails with [ErrUnsupported] on this OS.
func Dial(Mode, ConnOptions) (*Conn, error) { return nil, errNotLinux }

// ReadBuffer returns 0.
func (c *Conn) ReadBuffer() int { return 0 }

// Register fails with [ErrUnsupported].
func (c *Conn) Register() error { return errNotLinux }

// Read fails with [ErrUnsupported].
func (c *Conn) Read(dst []Msg) ([]Msg, int, error) { return dst[:0], 0, errNotLinux }

// SetReadDeadline does nothing.
func (c *Conn) SetReadDeadline(time.Time) error { return nil }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// RestoreAll fails with [ErrUnsupported].
func (c *Control) RestoreAll(State) error { return errNotLinux }
