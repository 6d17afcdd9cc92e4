package collector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/ledger"
	"github.com/trawlsec/trawl/syslog"
)

// TLSFiles names the PEM files of a TLS listener.
type TLSFiles struct {
	CertFile, KeyFile string
	// ClientCAFile, when set, makes client certificates required and
	// verified against the CA certificates it holds.
	ClientCAFile string
}

// serverConfig loads the files into a server configuration accepting TLS
// 1.2 and later (RFC 5425 requires 1.2 for syslog).
func (f *TLSFiles) serverConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load TLS certificate %q and key %q: %w", f.CertFile, f.KeyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.ClientCAFile != "" {
		pem, err := os.ReadFile(f.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read TLS client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot read TLS client CA file %q: no PEM certificate in it", f.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// tlsHandshakeTimeout bounds a TLS handshake, so half-open connections do
// not hold a connection slot.
const tlsHandshakeTimeout = 10 * time.Second

// streamServer is the TCP (optionally TLS) accept loop the syslog stream
// and RELP inputs share: a connection limit, an idle timeout, TLS
// handshakes counted when they fail, and draining on shutdown like the app
// input's: stop accepting (after taking what waits in the listen backlog),
// keep reading each connection until its client is quiet or Grace passes.
type streamServer struct {
	b     *syslogBase
	ln    net.Listener
	tls   *tls.Config
	serve func(hard context.Context, c *streamConn)

	refused    *metrics.Counter
	handshakes *metrics.Counter
	conns      atomic.Int64

	mu       sync.Mutex
	open     map[net.Conn]struct{}
	draining bool
}

func newStreamServer(b *syslogBase, set *metrics.Set) (*streamServer, error) {
	s := &streamServer{
		b:       b,
		refused: b.led.Errors(ledger.ErrConnLimit),
		open:    map[net.Conn]struct{}{},
	}
	if b.opts.TLS != nil {
		tc, err := b.opts.TLS.serverConfig()
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", b.opts.Name, err)
		}
		s.tls = tc
		s.handshakes = b.led.Errors(ErrTLSHandshake)
	}
	ln, err := net.Listen("tcp", b.opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("input %q: cannot listen on %s: %w", b.opts.Name, b.opts.Listen, err)
	}
	s.ln = ln
	set.NewGauge(fmt.Sprintf(`trawl_input_connections{input=%q}`, b.opts.Name), func() float64 { return float64(s.conns.Load()) })
	return s, nil
}

// Addr returns the address the input listens on.
func (s *streamServer) Addr() net.Addr { return s.ln.Addr() }

// Close stops listening; Run does it when ctx ends.
func (s *streamServer) Close() error { return s.ln.Close() }

// Run accepts connections until ctx ends, then drains them and returns
// when every connection is done. hard ends a producer blocked on a full
// ring.
func (s *streamServer) Run(ctx, hard context.Context) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		// Connections the kernel has already established wait in the
		// listen backlog and may carry data their clients consider sent:
		// keep accepting for a moment so they are drained too.
		if tl, ok := s.ln.(*net.TCPListener); ok {
			tl.SetDeadline(time.Now().Add(drainQuiet))
		} else {
			s.ln.Close()
		}
		s.mu.Lock()
		s.draining = true
		for c := range s.open {
			// Wake readers blocked in Read so they switch to draining.
			c.SetReadDeadline(time.Now().Add(drainQuiet))
		}
		s.mu.Unlock()
	})
	defer stop()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.ln.Close()
				break
			}
			if errors.Is(err, net.ErrClosed) {
				break
			}
			s.b.logThrottled("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if int(s.conns.Load()) >= s.b.opts.MaxConnections {
			s.refused.Inc()
			c.Close()
			continue
		}
		s.conns.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.conns.Add(-1)
			s.handle(hard, c)
		}()
	}
	wg.Wait()
	return nil
}

// handle runs one connection: the TLS handshake when configured, then the
// input's serve function.
func (s *streamServer) handle(hard context.Context, raw net.Conn) {
	defer raw.Close()
	sc := &streamConn{s: s, Conn: raw}
	if ap, err := netip.ParseAddrPort(raw.RemoteAddr().String()); err == nil {
		sc.src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if s.tls != nil {
		tc := tls.Server(raw, s.tls)
		raw.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
		if err := tc.HandshakeContext(hard); err != nil {
			s.handshakes.Inc()
			s.b.logThrottled("TLS handshake with %s failed: %v", raw.RemoteAddr(), err)
			return
		}
		raw.SetDeadline(time.Time{})
		sc.Conn = tc
	}
	s.mu.Lock()
	if s.draining {
		// Accepted from the backlog after the stop: wake reads at once.
		sc.Conn.SetReadDeadline(time.Now().Add(drainQuiet))
	}
	s.open[sc.Conn] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.open, sc.Conn)
		s.mu.Unlock()
	}()
	s.serve(hard, sc)
}

func (s *streamServer) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// errDrained ends a connection's reading at shutdown: its client was
// quiet for drainQuiet, or Grace has passed.
var errDrained = errors.New("connection drained at shutdown")

// streamConn is one accepted (and, with TLS, handshaken) connection.
type streamConn struct {
	net.Conn
	s          *streamServer
	src        netip.AddrPort
	drainStart time.Time // zero until this connection starts draining
}

// read reads into p under the idle timeout or, once the input stops, the
// drain rules. Errors other than io.EOF and errDrained end the connection;
// read counts unexpected ones as read errors.
func (c *streamConn) read(p []byte) (int, error) {
	for {
		opts := &c.s.b.opts
		if c.s.isDraining() {
			if c.drainStart.IsZero() {
				c.drainStart = time.Now()
			}
			if time.Since(c.drainStart) > opts.Grace {
				return 0, errDrained
			}
			c.SetReadDeadline(time.Now().Add(drainQuiet))
		} else if opts.IdleTimeout > 0 {
			c.SetReadDeadline(time.Now().Add(opts.IdleTimeout))
		}
		n, err := c.Conn.Read(p)
		if err == nil || n > 0 {
			return n, nil // an error, if any, comes again with the next read
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if c.s.isDraining() {
				if c.drainStart.IsZero() {
					continue // woken by the start of draining, not by silence
				}
				return 0, errDrained
			}
			return 0, err // idle timeout
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			c.s.b.readErrs.Inc()
		}
		return 0, err
	}
}

// SyslogStreamInput receives syslog over TCP or TLS (RFC 6587, RFC 5425).
// Each connection has its own framing, detected from its first bytes:
// octet counting ("LEN SP MSG") or non-transparent (each message ends with
// LF, NUL or CRLF). Messages longer than MaxMessageBytes keep their first
// bytes and are flagged; a stream that cannot be framed (a bad octet
// count) closes that connection and counts reason framing. Backpressure is
// by not reading, as for the app input.
type SyslogStreamInput struct {
	*syslogBase
	*streamServer
	framing *metrics.Counter
}

func newSyslogStream(b *syslogBase, set *metrics.Set) (*SyslogStreamInput, error) {
	if b.opts.Protocol == SyslogTLS && b.opts.TLS == nil {
		return nil, fmt.Errorf("input %q: syslog over TLS needs a certificate", b.opts.Name)
	}
	s, err := newStreamServer(b, set)
	if err != nil {
		return nil, err
	}
	in := &SyslogStreamInput{syslogBase: b, streamServer: s, framing: b.led.Errors(ErrFraming)}
	s.serve = in.serve
	return in, nil
}

// minStreamBuffer is the smallest per-connection read buffer: a small
// max_message_bytes must not mean a read per message.
const minStreamBuffer = 16 << 10

func (in *SyslogStreamInput) serve(hard context.Context, c *streamConn) {
	sp := syslog.Splitter{MaxMessage: in.opts.MaxMessageBytes}
	buf := make([]byte, max(sp.BufferSize(), minStreamBuffer))
	pr := in.pipe.producer()
	// The messages of one read go to the ring in batches (Producer.Add),
	// handed over after each read; whatever way serve ends, none stays
	// behind.
	defer pr.Flush(hard)
	var ev event.Event
	start, end := 0, 0 // unconsumed bytes are buf[start:end]
	for {
		switch {
		case start == end:
			start, end = 0, 0
		case end == len(buf) && start > 0:
			end = copy(buf, buf[start:end])
			start = 0
		case end == len(buf):
			// Split makes progress on any buffer of BufferSize bytes; this
			// guards against a regression turning into a busy loop.
			in.framing.Inc()
			in.logThrottled("closing connection from %s: no message boundary in %d bytes", c.src, len(buf))
			return
		}
		n, rerr := c.read(buf[end:])
		end += n
		now := time.Now().UnixNano()
		for {
			adv, msg, truncated, err := sp.Split(buf[start:end], errors.Is(rerr, io.EOF))
			if err != nil {
				in.framing.Inc()
				in.logThrottled("closing connection from %s: %v", c.src, err)
				return
			}
			start += adv
			if msg != nil {
				in.fill(&ev, msg, c.src, now, truncated)
				if err := pr.Add(hard, &ev, len(msg)); err != nil {
					return
				}
			}
			if adv == 0 {
				break
			}
		}
		if err := pr.Flush(hard); err != nil {
			return
		}
		if rerr != nil {
			return
		}
	}
}
