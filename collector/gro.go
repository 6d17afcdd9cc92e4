package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/bpf/udpdrop"
	"github.com/trawlsec/trawl/collector/udp"
	"github.com/trawlsec/trawl/config"
)

// udpGRO decides whether an input's UDP sockets use GRO, from its gro
// setting, and returns the exact drop counter for them when it runs.
//
// GRO saves the kernel's per-datagram work, but the kernel counts a dropped
// run of datagrams as one drop; only the BPF drop counter (package
// bpf/udpdrop) keeps socket_overflow exact then. So auto turns GRO on
// exactly where that counter loads (root or CAP_BPF+CAP_PERFMON, BTF,
// Linux 6.11+), and true turns it on regardless, estimating without it.
func (n *Node) udpGRO(name, mode string) (bool, func(port uint16) (udp.DropCounter, error)) {
	if mode == config.GROOff {
		return false, nil
	}
	c, err := n.udpDropCounter()
	if err != nil {
		if mode == config.GROAuto {
			n.logf("input %q: gro auto: off, for kernel drops could not be counted exactly with it: %v", name, err)
			return false, nil
		}
		n.logf("input %q: gro true without the BPF drop counter: socket_overflow is an estimate (%v)", name, err)
		return true, nil
	}
	n.logf("input %q: gro on; kernel drops counted per datagram by the BPF drop counter", name)
	return true, func(port uint16) (udp.DropCounter, error) {
		p, err := c.Watch(port)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

// udpDropCounter loads the BPF drop counter once, for every UDP input of
// the node; it stays loaded until the node stops.
func (n *Node) udpDropCounter() (*udpdrop.Counter, error) {
	if !n.udpDropsTried {
		n.udpDropsTried = true
		n.udpDrops, n.udpDropsErr = udpdrop.Open()
	}
	return n.udpDrops, n.udpDropsErr
}

// closeUDPDropCounter unloads the drop counter; call it after the inputs'
// listeners closed.
func (n *Node) closeUDPDropCounter() {
	if n.udpDrops != nil {
		if err := n.udpDrops.Close(); err != nil {
			n.logf("udp drop counter: %v", err)
		}
		n.udpDrops = nil
	}
}

// udpGauges shows how a UDP input's sockets receive: how many use GRO, and
// whether its socket_overflow count is exact (1) or an estimate (0).
func udpGauges(set *metrics.Set, name string, ln *udp.Listener) {
	set.NewGauge(fmt.Sprintf(`trawl_input_udp_gro_sockets{input=%q}`, name), func() float64 { return float64(ln.Stats().GRO) })
	set.NewGauge(fmt.Sprintf(`trawl_input_socket_overflow_exact{input=%q}`, name), func() float64 {
		if ln.Stats().OverflowExact {
			return 1
		}
		return 0
	})
}

// serveUDP serves ln with handle until ctx ends and closes it, publishing
// meanwhile, once a second, the datagrams the kernel dropped on its full
// sockets into overflow (the ledger's upstream_lost, cause
// socket_overflow), and a last time once ln is closed, so the count is
// final when serveUDP returns. tick, unless nil, runs after each periodic
// publication, on the same goroutine.
func serveUDP(ctx context.Context, ln *udp.Listener, handle udp.Handler, overflow *metrics.Counter, tick func()) error {
	done := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				overflow.Set(ln.Stats().Overflow)
				if tick != nil {
					tick()
				}
			case <-done:
				return
			}
		}
	}()
	err := ln.Serve(ctx, handle)
	close(done)
	// A tick in flight must not set an older count after the last one.
	<-published
	ln.Close()
	overflow.Set(ln.Stats().Overflow)
	return err
}
