//go:build !(linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64))

package bpf

import (
	"errors"

	"github.com/trawlsec/trawl/event"
)

// Supported reports whether this build carries the BPF programs (Linux on
// a little-endian architecture).
const Supported = false

// errUnsupported is what every Tracer operation returns on this platform.
var errUnsupported = errors.New("eBPF tracing needs Linux on a little-endian architecture")

// Tracer is not available on this platform; see the Linux build.
type Tracer struct{}

// Open always fails on this platform.
func Open(Options) (*Tracer, error) { return nil, errUnsupported }

// Mode returns AttachAuto.
func (t *Tracer) Mode() Attach { return AttachAuto }

// AcceptOwners returns false.
func (t *Tracer) AcceptOwners() bool { return false }

// Next always fails on this platform.
func (t *Tracer) Next(*event.Event) (int, error) { return 0, errUnsupported }

// Stop does nothing.
func (t *Tracer) Stop() error { return nil }

// SyncClock does nothing.
func (t *Tracer) SyncClock() {}

// Stats always fails on this platform.
func (t *Tracer) Stats() (Stats, error) { return Stats{}, errUnsupported }

// RunStats always fails on this platform.
func (t *Tracer) RunStats() (RunStats, error) { return RunStats{}, errUnsupported }

// Close does nothing.
func (t *Tracer) Close() error { return nil }
