//go:build !linux

package udp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// Listener is the UDP fast path; it exists only on Linux, where it needs
// recvmmsg and SO_RXQ_OVFL.
type Listener struct{}

// Listen fails with [errors.ErrUnsupported] outside Linux.
func Listen(opts Options) (*Listener, error) {
	return nil, fmt.Errorf("cannot listen on UDP %q: %w", opts.Addr, errors.ErrUnsupported)
}

// Addr returns the zero address.
func (l *Listener) Addr() netip.AddrPort { return netip.AddrPort{} }

// Close does nothing.
func (l *Listener) Close() error { return nil }

// Serve fails with [errors.ErrUnsupported].
func (l *Listener) Serve(ctx context.Context, h Handler) error { return errors.ErrUnsupported }

// Stats returns zero counters.
func (l *Listener) Stats() Stats { return Stats{} }
