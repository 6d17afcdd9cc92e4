//go:build !linux || !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package udpdrop

import (
	"errors"
	"fmt"
)

// MaxPorts is how many ports one Counter can watch at once.
const MaxPorts = 64

// Counter is the drop counter; it exists only on Linux.
type Counter struct{}

// Open fails: the drop counter is a Linux BPF program.
func Open() (*Counter, error) {
	return nil, fmt.Errorf("cannot load the UDP drop counter: %w", errors.ErrUnsupported)
}

// Watch fails: see Open.
func (c *Counter) Watch(port uint16) (*Port, error) { return nil, errors.ErrUnsupported }

// Close does nothing.
func (c *Counter) Close() error { return nil }

// Port is one watched port's count.
type Port struct{}

// Dropped fails: see Open.
func (p *Port) Dropped() (datagrams, buffers uint64, err error) {
	return 0, 0, errors.ErrUnsupported
}

// Close does nothing.
func (p *Port) Close() error { return nil }
