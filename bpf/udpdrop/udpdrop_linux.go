//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package udpdrop

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/trawlsec/trawl/bpf"
)

// MaxPorts is how many ports one Counter can watch at once (the size of
// its BPF maps).
const MaxPorts = 64

// Counter owns the loaded BPF program and its maps. Its methods may be
// called from any goroutine.
type Counter struct {
	objs udpdropObjects
	link link.Link

	mu    sync.Mutex
	slots map[uint16]uint32 // watched port -> slot in the counts map
	free  []uint32          // slots not in use
	zero  []udpdropDropCount
}

// Open loads and attaches the drop counter. It fails, saying why, when the
// process lacks the privileges, the kernel has no BTF, or the kernel's
// kfree_skb tracepoint does not name the receiving socket (before 6.11).
func Open() (*Counter, error) {
	if err := bpf.Check(); err != nil {
		return nil, fmt.Errorf("cannot load the UDP drop counter: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("cannot lift the memlock limit for the UDP drop counter: %w", err)
	}
	c := &Counter{slots: make(map[uint16]uint32)}
	if err := loadUdpdropObjects(&c.objs, nil); err != nil {
		return nil, fmt.Errorf("cannot load the UDP drop counter (the kfree_skb tracepoint names the socket from Linux 6.11): %w", err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: c.objs.UdpDrop})
	if err != nil {
		c.objs.Close()
		return nil, fmt.Errorf("cannot attach the UDP drop counter to kfree_skb: %w", err)
	}
	c.link = l
	for i := MaxPorts - 1; i >= 0; i-- {
		c.free = append(c.free, uint32(i))
	}
	c.zero = make([]udpdropDropCount, ebpf.MustPossibleCPU())
	return c, nil
}

// Watch starts counting the drops at UDP port port (every socket bound to
// it, IPv4 and IPv6) from zero. Watch a port before binding its sockets so
// that no drop escapes; a port can be watched once at a time.
func (c *Counter) Watch(port uint16) (*Port, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.slots[port]; ok {
		return nil, fmt.Errorf("cannot watch UDP port %d for drops: already watched", port)
	}
	if len(c.free) == 0 {
		return nil, fmt.Errorf("cannot watch UDP port %d for drops: %d ports already watched", port, MaxPorts)
	}
	slot := c.free[len(c.free)-1]
	if err := c.objs.Counts.Update(slot, c.zero, ebpf.UpdateAny); err != nil {
		return nil, fmt.Errorf("cannot reset the drop count of UDP port %d: %w", port, err)
	}
	if err := c.objs.Ports.Update(port, slot, ebpf.UpdateNoExist); err != nil {
		return nil, fmt.Errorf("cannot watch UDP port %d for drops: %w", port, err)
	}
	c.free = c.free[:len(c.free)-1]
	c.slots[port] = slot
	return &Port{c: c, port: port, slot: slot, vals: make([]udpdropDropCount, len(c.zero))}, nil
}

// Close detaches the program and frees its maps. Ports still watched
// report errors from then on.
func (c *Counter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.link.Close(), c.objs.Close())
}

// Port is one watched port's count.
type Port struct {
	c    *Counter
	port uint16
	slot uint32

	mu     sync.Mutex
	vals   []udpdropDropCount // per-CPU scratch for Dropped
	closed bool
}

// Dropped returns the datagrams and the buffers (coalesced runs count once)
// the kernel dropped at a full receive buffer of the port since Watch.
func (p *Port) Dropped() (datagrams, buffers uint64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, 0, fmt.Errorf("cannot read the drop count of UDP port %d: no longer watched", p.port)
	}
	if err := p.c.objs.Counts.Lookup(p.slot, &p.vals); err != nil {
		return 0, 0, fmt.Errorf("cannot read the drop count of UDP port %d: %w", p.port, err)
	}
	for _, v := range p.vals {
		datagrams += v.Datagrams
		buffers += v.Buffers
	}
	return datagrams, buffers, nil
}

// Close stops watching the port. Read the final count with Dropped first.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.slots, p.port)
	c.free = append(c.free, p.slot)
	if err := c.objs.Ports.Delete(p.port); err != nil {
		return fmt.Errorf("cannot stop watching UDP port %d for drops: %w", p.port, err)
	}
	return nil
}
