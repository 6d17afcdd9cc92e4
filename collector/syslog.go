package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/collector/udp"
	"github.com/trawlsec/trawl/config"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/ledger"
	"github.com/trawlsec/trawl/syslog"
)

// Syslog transports, the values of [SyslogOptions].Protocol.
const (
	SyslogUDP  = config.SyslogUDP
	SyslogTCP  = config.SyslogTCP
	SyslogTLS  = config.SyslogTLS
	SyslogUnix = config.SyslogUnix
	SyslogRELP = config.InputRELP
)

// Error reasons of the syslog inputs, beside the ledger's common ones
// (parse_error, truncated, connection_limit, read_error).
const (
	// ErrFraming: a TCP/TLS stream or a RELP connection carried bytes that
	// cannot be framed; the connection was closed.
	ErrFraming = "framing"
	// ErrTLSHandshake: a TLS handshake failed (no or a bad client
	// certificate, a plain-text client, an old TLS version).
	ErrTLSHandshake = "tls_handshake"
	// ErrRELPProtocol: a RELP client broke the protocol (syslog before
	// open, out-of-sequence transaction numbers, no syslog command
	// offered); the connection was closed.
	ErrRELPProtocol = "relp_protocol"
	// ErrUnacknowledged counts RELP messages that were received but whose
	// acknowledgement was never sent because the connection closed first
	// (client gone, shutdown, spool failure). The client sends them again,
	// so they may be in the spool twice.
	ErrUnacknowledged = "unacknowledged"
	// ErrNotDurable: a RELP connection was closed without acknowledging
	// because a frame could not be written to the spool.
	ErrNotDurable = "not_durable"
)

// SyslogOptions configures one syslog input: one transport, one listener.
type SyslogOptions struct {
	Name string
	// Protocol is udp, tcp, tls, unix, or relp (RELP over TCP, over TLS
	// when TLS is set).
	Protocol string
	// Listen is host:port, or the socket path for unix.
	Listen string
	// MaxMessageBytes bounds one message; longer ones keep their first
	// MaxMessageBytes bytes, are flagged truncated and counted.
	MaxMessageBytes int
	// MaxConnections bounds concurrent TCP/TLS/RELP connections; more are
	// closed at once and counted (connection_limit).
	MaxConnections int
	// IdleTimeout closes connections that send nothing for this long
	// (0 = never).
	IdleTimeout time.Duration
	// Grace bounds how long a stopping input keeps reading what clients
	// already sent.
	Grace time.Duration
	// TLS is the server configuration of tls, and optionally of relp.
	TLS *TLSFiles
	// Parser holds the time zones of RFC 3164 timestamps.
	Parser syslog.Options
	// Sockets, ReadBuffer, GRO and Drops configure the UDP sockets (see
	// udp.Options).
	Sockets    int
	ReadBuffer int
	GRO        bool
	Drops      func(port uint16) (udp.DropCounter, error)
}

// syslogInput is what the node keeps of a syslog input besides [input].
type syslogInput interface {
	input
	Addr() net.Addr
}

// syslogBase is what every syslog transport shares: the parser, the
// pipeline and the counters.
type syslogBase struct {
	opts   SyslogOptions
	pipe   *pipeline
	led    *ledger.Input
	parser *syslog.Parser
	logf   func(string, ...any)

	parseErrs *metrics.Counter
	truncated *metrics.Counter
	readErrs  *metrics.Counter

	lastLog atomic.Int64 // unix ns of the last throttled log line
}

func newSyslogBase(opts SyslogOptions, pipe *pipeline, led *ledger.Input, logf func(string, ...any)) *syslogBase {
	return &syslogBase{
		opts:      opts,
		pipe:      pipe,
		led:       led,
		parser:    syslog.NewParser(opts.Parser),
		logf:      logf,
		parseErrs: led.Errors(ledger.ErrParse),
		truncated: led.Errors(ledger.ErrTruncated),
		readErrs:  led.Errors(ledger.ErrRead),
	}
}

// fill turns one message into ev. msg is already cut to MaxMessageBytes;
// truncated says it was cut. ev's fields alias msg.
func (b *syslogBase) fill(ev *event.Event, msg []byte, src netip.AddrPort, now int64, truncated bool) {
	ev.Reset()
	if truncated {
		ev.Flags = event.FlagTruncated
		b.truncated.Inc()
	}
	if !b.parser.Parse(ev, msg, src.Addr(), now) {
		b.parseErrs.Inc()
	}
	ev.RecvTime = now
	ev.Source = src
}

// logThrottled logs at most one line per 10 s per input: a client sending
// garbage in a loop must not flood the log. The counters count every case.
func (b *syslogBase) logThrottled(format string, args ...any) {
	now := time.Now().UnixNano()
	last := b.lastLog.Load()
	if now-last < int64(10*time.Second) || !b.lastLog.CompareAndSwap(last, now) {
		return
	}
	b.logf("input %s: "+format, append([]any{b.opts.Name}, args...)...)
}

// newSyslogInput opens the listener of one syslog input.
func newSyslogInput(opts SyslogOptions, pipe *pipeline, led *ledger.Input, set *metrics.Set, logf func(string, ...any)) (syslogInput, error) {
	base := newSyslogBase(opts, pipe, led, logf)
	switch opts.Protocol {
	case SyslogUDP:
		return newSyslogUDP(base, set)
	case SyslogUnix:
		return newSyslogUnix(base)
	case SyslogTCP, SyslogTLS:
		return newSyslogStream(base, set)
	case SyslogRELP:
		return newRELPInput(base, set)
	}
	return nil, fmt.Errorf("input %q: unknown syslog protocol %q", opts.Name, opts.Protocol)
}

// syslogOptionsFrom turns a syslog or relp input's configuration into
// options; zone names were checked by config.Validate.
func syslogOptionsFrom(name string, in config.Input, grace time.Duration) (SyslogOptions, error) {
	loc, err := in.Location()
	if err != nil {
		return SyslogOptions{}, fmt.Errorf("input %q: %w", name, err)
	}
	zones, err := in.ZoneMap()
	if err != nil {
		return SyslogOptions{}, fmt.Errorf("input %q: %w", name, err)
	}
	o := SyslogOptions{
		Name:            name,
		Protocol:        in.Protocol,
		Listen:          in.Listen,
		MaxMessageBytes: int(in.MaxMessageBytes),
		MaxConnections:  in.MaxConnections,
		IdleTimeout:     in.IdleTimeout.D(),
		Grace:           grace,
		Parser:          syslog.Options{Location: loc, Zones: zones},
		Sockets:         in.Sockets,
		ReadBuffer:      int(in.ReadBuffer),
	}
	if in.Type == config.InputRELP {
		o.Protocol = SyslogRELP
	}
	if in.TLS != nil {
		o.TLS = &TLSFiles{CertFile: in.TLS.CertFile, KeyFile: in.TLS.KeyFile, ClientCAFile: in.TLS.ClientCAFile}
	}
	return o, nil
}

// SyslogUDPInput receives syslog over UDP, one message per datagram, on
// SO_REUSEPORT sockets read with recvmmsg (package collector/udp).
//
// As with the flow inputs, the sockets never wait for anything but the
// pipeline: what the kernel drops while the input is behind is counted as
// upstream loss (socket_overflow).
type SyslogUDPInput struct {
	*syslogBase
	ln       *udp.Listener
	state    chan *syslogUDPWorker // one per socket goroutine
	overflow *metrics.Counter
}

// syslogUDPWorker is the state of one socket goroutine.
type syslogUDPWorker struct {
	pr   *Producer
	ev   event.Event
	hard context.Context
}

// udpBatchBytes bounds the receive buffers of one socket (Batch ×
// MaxDatagram): 64 datagrams of 9000 bytes for flows are 576 KiB; syslog's
// 64 KiB datagrams would make that 4 MiB per socket.
const udpBatchBytes = 1 << 20

func newSyslogUDP(b *syslogBase, set *metrics.Set) (*SyslogUDPInput, error) {
	// One byte more than the limit, so a datagram of exactly the limit plus
	// its trailing LF is not cut by the kernel.
	maxDgram := min(b.opts.MaxMessageBytes+1, udp.MaxDatagramLimit)
	batch := min(max(udpBatchBytes/maxDgram, 8), udp.DefaultBatch)
	ln, err := udp.Listen(udp.Options{
		Addr:        b.opts.Listen,
		Sockets:     b.opts.Sockets,
		Batch:       batch,
		MaxDatagram: maxDgram,
		ReadBuffer:  b.opts.ReadBuffer,
		GRO:         b.opts.GRO,
		Drops:       b.opts.Drops,
		Logf:        b.logf,
	})
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", b.opts.Name, err)
	}
	in := &SyslogUDPInput{
		syslogBase: b,
		ln:         ln,
		overflow:   b.led.UpstreamLost("socket_overflow"),
	}
	udpGauges(set, b.opts.Name, ln)
	n := ln.Stats().Sockets
	in.state = make(chan *syslogUDPWorker, n)
	for range n {
		in.state <- &syslogUDPWorker{pr: b.pipe.producer()}
	}
	return in, nil
}

// Addr returns the bound UDP address.
func (in *SyslogUDPInput) Addr() net.Addr { return net.UDPAddrFromAddrPort(in.ln.Addr()) }

// Close releases the sockets; Run calls it when it returns.
func (in *SyslogUDPInput) Close() error { return in.ln.Close() }

// Run receives until ctx ends. hard ends a producer blocked on a full ring.
func (in *SyslogUDPInput) Run(ctx, hard context.Context) error {
	for range cap(in.state) {
		w := <-in.state
		w.hard = hard
		in.state <- w
	}
	return serveUDP(ctx, in.ln, in.handle, in.overflow, nil)
}

func (in *SyslogUDPInput) handle(batch []udp.Datagram) {
	w := <-in.state
	defer func() { in.state <- w }()
	now := time.Now().UnixNano()
	for i := range batch {
		d := &batch[i]
		msg, truncated := in.datagram(d.Data, d.Truncated)
		if msg == nil {
			continue
		}
		in.fill(&w.ev, msg, d.From, now, truncated)
		w.pr.Add(w.hard, &w.ev, len(d.Data))
	}
	// The messages of one read go to the ring as batches, as flows do.
	w.pr.Flush(w.hard)
}

// datagram strips one trailing LF or NUL (senders add either) and applies
// the size limit. It returns nil for an empty datagram, which carries no
// message.
func (b *syslogBase) datagram(p []byte, truncated bool) ([]byte, bool) {
	if n := len(p); n > 0 && (p[n-1] == '\n' || p[n-1] == 0) {
		p = p[:n-1]
	}
	if len(p) > b.opts.MaxMessageBytes {
		p, truncated = p[:b.opts.MaxMessageBytes], true
	}
	if len(p) == 0 {
		return nil, false
	}
	return p, truncated
}

// SyslogUnixInput receives syslog on a local datagram socket, as /dev/log
// is: one message per datagram, from local processes (glibc syslog(3),
// logger -u). The socket file is created mode 0666 so every local user can
// log, and removed when the input stops. A stale socket file left by a
// crashed process is replaced; one that another process still serves is
// not.
type SyslogUnixInput struct {
	*syslogBase
	conn *net.UnixConn
	path string
	buf  []byte
}

func newSyslogUnix(b *syslogBase) (*SyslogUnixInput, error) {
	path := b.opts.Listen
	if err := removeStaleSocket(path); err != nil {
		return nil, fmt.Errorf("input %q: %w", b.opts.Name, err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("input %q: cannot listen on unix socket %s: %w", b.opts.Name, path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		conn.Close()
		os.Remove(path)
		return nil, fmt.Errorf("input %q: cannot make unix socket %s writable for all: %w", b.opts.Name, path, err)
	}
	return &SyslogUnixInput{
		syslogBase: b,
		conn:       conn,
		path:       path,
		// One byte more than the limit tells a datagram of exactly the
		// limit from a longer one, which the kernel cuts silently.
		buf: make([]byte, b.opts.MaxMessageBytes+2),
	}, nil
}

// removeStaleSocket removes a socket file nobody serves any more. A file
// that is not a socket, or a socket another process still reads, is an
// error: taking it over would silently steal that process's messages.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot check unix socket path %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("cannot listen on %s: it exists and is not a socket", path)
	}
	if c, err := net.Dial("unixgram", path); err == nil {
		c.Close()
		return fmt.Errorf("cannot listen on %s: another process serves this socket", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("cannot remove stale unix socket %s: %w", path, err)
	}
	return nil
}

// Addr returns the socket's address.
func (in *SyslogUnixInput) Addr() net.Addr { return in.conn.LocalAddr() }

// Close closes the socket and removes its file.
func (in *SyslogUnixInput) Close() error {
	err := in.conn.Close()
	if rerr := os.Remove(in.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Run reads datagrams until ctx ends, then drains what local senders have
// already queued (until the socket is quiet for a moment or Grace passes).
func (in *SyslogUnixInput) Run(ctx, hard context.Context) error {
	defer in.Close()
	stop := context.AfterFunc(ctx, func() {
		in.conn.SetReadDeadline(time.Now()) // wake the reader to start draining
	})
	defer stop()
	pr := in.pipe.producer()
	var ev event.Event
	var drainStart time.Time
	for {
		if ctx.Err() != nil {
			if drainStart.IsZero() {
				drainStart = time.Now()
			}
			if time.Since(drainStart) > in.opts.Grace {
				return nil
			}
			in.conn.SetReadDeadline(time.Now().Add(drainQuiet))
		}
		n, err := in.conn.Read(in.buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if ctx.Err() != nil && !drainStart.IsZero() {
					return nil // quiet: drained
				}
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			in.readErrs.Inc()
			in.logThrottled("read: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		msg, truncated := in.datagram(in.buf[:n], false)
		if msg == nil {
			continue
		}
		in.fill(&ev, msg, netip.AddrPort{}, time.Now().UnixNano(), truncated)
		if err := pr.Emit(hard, &ev, n); err != nil {
			return nil
		}
	}
}
