//go:build linux

package udp_test

import (
	"context"
	"fmt"
	"net"

	"github.com/trawlsec/trawl/collector/udp"
)

func ExampleListener_Serve() {
	l, err := udp.Listen(udp.Options{Addr: "127.0.0.1:0", Sockets: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- l.Serve(ctx, func(batch []udp.Datagram) {
			for _, d := range batch {
				// d.Data is only valid here: decode or copy it now.
				fmt.Printf("%q from loopback: %v\n", d.Data, d.From.Addr().IsLoopback())
			}
			cancel()
		})
	}()

	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(l.Addr()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.Write([]byte("hello"))

	fmt.Println("Serve:", <-done)
	s := l.Stats()
	fmt.Println("datagrams:", s.Datagrams, "overflow:", s.Overflow)
	// Output:
	// "hello" from loopback: true
	// Serve: <nil>
	// datagrams: 1 overflow: 0
}
