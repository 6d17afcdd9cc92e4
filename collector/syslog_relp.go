package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/syslog/relp"
)

// RELPInput receives syslog over RELP, rsyslog's Reliable Event Logging
// Protocol (omrelp, librelp), over TCP or TLS.
//
// A message is acknowledged ("rsp 200 OK") only once the frame holding it
// is durable in the spool: each connection has a reader, which parses
// frames and hands messages to the pipeline as they arrive, and an acker,
// which waits for each message's durability in transaction order and
// answers. So the reader keeps reading the client's whole window while
// earlier messages are being made durable. When durability cannot be
// reached (a frame was lost, or the node stops before the spool confirmed
// it) the connection is closed without acknowledging: the client keeps the
// unacknowledged messages and sends them again on its next connection,
// which may store them twice (counted as unacknowledged) but never loses
// them.
type RELPInput struct {
	*syslogBase
	*streamServer
	framing    *metrics.Counter
	protocol   *metrics.Counter
	unacked    *metrics.Counter
	notDurable *metrics.Counter
}

// relpOffers are the server's offers in the answer to "open": protocol
// version 0 and the syslog command, the only one there is.
var relpOffers = []byte("relp_version=0\nrelp_software=trawl\ncommands=syslog")

// relpWindow is the number of answers a connection may have pending before
// its reader waits for the acker; rsyslog's default window is 128.
const relpWindow = 1024

// relpWriteTimeout bounds writing answers to a client that does not read
// them.
const relpWriteTimeout = 30 * time.Second

func newRELPInput(b *syslogBase, set *metrics.Set) (*RELPInput, error) {
	s, err := newStreamServer(b, set)
	if err != nil {
		return nil, err
	}
	in := &RELPInput{
		syslogBase:   b,
		streamServer: s,
		framing:      b.led.Errors(ErrFraming),
		protocol:     b.led.Errors(ErrRELPProtocol),
		unacked:      b.led.Errors(ErrUnacknowledged),
		notDurable:   b.led.Errors(ErrNotDurable),
	}
	s.serve = in.serve
	return in, nil
}

// relpItemKind says what the acker does with an item.
type relpItemKind uint8

const (
	// relpAck answers "200 OK" once ticket is durable.
	relpAck relpItemKind = iota
	// relpReply answers code and text at once (in order with the acks).
	relpReply
	// relpClose answers the client's close, sends serverclose and ends.
	relpClose
	// relpServerClose sends the serverclose hint (the node is stopping or
	// the connection was idle) and ends.
	relpServerClose
)

// relpItem is one pending answer, queued by the reader in transaction
// order.
type relpItem struct {
	kind   relpItemKind
	txnr   uint32
	ticket uint64
	code   int
	text   string
	extra  []byte
}

// relpCommand is a frame's command, decoded once from the header (the
// header's bytes may move before the data arrives).
type relpCommand uint8

const (
	relpCmdOther relpCommand = iota
	relpCmdOpen
	relpCmdSyslog
	relpCmdClose
)

func relpCommandOf(b []byte) relpCommand {
	switch string(b) {
	case "open":
		return relpCmdOpen
	case "syslog":
		return relpCmdSyslog
	case "close":
		return relpCmdClose
	}
	return relpCmdOther
}

// relpState is where the reader is in the current frame.
type relpState uint8

const (
	relpStateHeader  relpState = iota
	relpStateData              // DATA (and its trailer, when it fits the buffer)
	relpStateSkip              // the rest of an oversized message's DATA
	relpStateTrailer           // the trailer after a skipped rest
)

// relpStatus is what processing the buffered bytes came to.
type relpStatus uint8

const (
	relpOK     relpStatus = iota // go on
	relpMore                     // read more bytes
	relpDone                     // stop reading; send what is queued, then close
	relpBroken                   // close now, without further answers
)

// relpConn is one RELP session.
type relpConn struct {
	in    *RELPInput
	c     *streamConn
	pr    *Producer
	ev    event.Event
	items chan relpItem
	acked chan struct{} // closed when the acker has returned

	// Reader state.
	opened  bool
	next    uint32 // the transaction number the next frame must carry
	state   relpState
	cmd     relpCommand
	txnr    uint32
	dataLen int
	skip    int
	emitted int // messages handed to the pipeline

	// Acker state; read by the reader only after acked is closed.
	answered int // messages acknowledged
}

func (in *RELPInput) serve(hard context.Context, c *streamConn) {
	rc := &relpConn{
		in:    in,
		c:     c,
		pr:    in.pipe.producer(),
		items: make(chan relpItem, relpWindow),
		acked: make(chan struct{}),
		next:  1,
	}
	ctx, cancel := context.WithCancel(hard)
	defer cancel()
	// Once the acker's context ends the session is over: closing the
	// connection also ends a write blocked on a client that does not read.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	go func() {
		defer close(rc.acked)
		rc.ack(ctx)
	}()

	err := rc.read(hard)
	switch {
	case err == nil: // close command or refused open: answer, then close
	case errors.Is(err, errDrained) || isTimeout(err):
		// Stopping (or idle): the acker gets Grace to answer what was
		// read, then says serverclose.
		t := time.AfterFunc(in.opts.Grace, cancel)
		defer t.Stop()
		rc.push(relpItem{kind: relpServerClose})
	default:
		// The client is gone or broke the protocol: nothing more is
		// answered.
		cancel()
	}
	close(rc.items)
	<-rc.acked
	if n := rc.emitted - rc.answered; n > 0 {
		in.unacked.Add(n)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errRELPBroken ends a session whose client broke the protocol (counted
// where it is found).
var errRELPBroken = errors.New("RELP session broken")

// push queues an answer; false when the acker has already ended the
// session.
func (rc *relpConn) push(it relpItem) bool {
	select {
	case rc.items <- it:
		return true
	case <-rc.acked:
		return false
	}
}

// read reads frames until the session ends: nil after a close command (or
// an open the session cannot work with), otherwise the error that ended
// it.
func (rc *relpConn) read(hard context.Context) error {
	// The buffer holds a header and a whole message of MaxMessageBytes with
	// its trailer; a longer message is taken in two steps (see step).
	buf := make([]byte, max(rc.in.opts.MaxMessageBytes+relp.MaxHeader+1, minStreamBuffer))
	start, end := 0, 0
	for {
		if start == end {
			start, end = 0, 0
		} else if end == len(buf) {
			end = copy(buf, buf[start:end])
			start = 0
		}
		n, rerr := rc.c.read(buf[end:])
		end += n
		k, st := rc.step(hard, buf[start:end])
		start += k
		switch st {
		case relpDone:
			return nil
		case relpBroken:
			return errRELPBroken
		}
		if end == len(buf) && start == 0 {
			// step always consumes a full buffer; guard a regression.
			rc.in.framing.Inc()
			return errRELPBroken
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) && start < end {
				rc.in.framing.Inc() // the stream ended inside a frame
				rc.in.logThrottled("connection from %s ended inside a RELP frame", rc.c.src)
			}
			return rerr
		}
	}
}

// step consumes what it can of b, the unconsumed bytes, frame part by frame
// part, and returns how many bytes it took.
func (rc *relpConn) step(hard context.Context, b []byte) (n int, st relpStatus) {
	maxMsg := rc.in.opts.MaxMessageBytes
	for {
		switch rc.state {
		case relpStateHeader:
			h, hn, err := relp.ParseHeader(b[n:])
			if err != nil {
				rc.in.framing.Inc()
				rc.in.logThrottled("closing RELP connection from %s: %v", rc.c.src, err)
				return n, relpBroken
			}
			if hn == 0 {
				return n, relpMore
			}
			if h.Txnr != rc.next {
				return n, rc.broken("transaction number %d where %d was due", h.Txnr, rc.next)
			}
			rc.next = relp.NextTxnr(h.Txnr)
			rc.cmd, rc.txnr, rc.dataLen = relpCommandOf(h.Command), h.Txnr, h.DataLen
			n += hn
			rc.state = relpStateData
		case relpStateData:
			avail := len(b) - n
			if rc.dataLen <= maxMsg {
				if avail <= rc.dataLen {
					return n, relpMore
				}
				if b[n+rc.dataLen] != '\n' {
					rc.in.framing.Inc()
					rc.in.logThrottled("closing RELP connection from %s: frame %d: no trailer after %d bytes of data", rc.c.src, rc.txnr, rc.dataLen)
					return n, relpBroken
				}
				st := rc.command(hard, b[n:n+rc.dataLen], false)
				n += rc.dataLen + 1
				rc.state = relpStateHeader
				if st != relpOK {
					return n, st
				}
				continue
			}
			// Longer than a message may be: keep its first MaxMessageBytes
			// and skip the rest, so the client's retransmissions do not
			// fail forever on it.
			if rc.cmd != relpCmdSyslog {
				return n, rc.broken("%d bytes of data for a command that is not syslog", rc.dataLen)
			}
			if avail < maxMsg {
				return n, relpMore
			}
			st := rc.command(hard, b[n:n+maxMsg], true)
			n += maxMsg
			rc.skip = rc.dataLen - maxMsg
			rc.state = relpStateSkip
			if st != relpOK {
				return n, st
			}
		case relpStateSkip:
			k := min(rc.skip, len(b)-n)
			n += k
			rc.skip -= k
			if rc.skip > 0 {
				return n, relpMore
			}
			rc.state = relpStateTrailer
		case relpStateTrailer:
			if n == len(b) {
				return n, relpMore
			}
			if b[n] != '\n' {
				rc.in.framing.Inc()
				rc.in.logThrottled("closing RELP connection from %s: frame %d: no trailer after its data", rc.c.src, rc.txnr)
				return n, relpBroken
			}
			n++
			rc.state = relpStateHeader
		}
	}
}

// broken counts and logs a protocol violation.
func (rc *relpConn) broken(format string, args ...any) relpStatus {
	rc.in.protocol.Inc()
	rc.in.logThrottled("closing RELP connection from %s: %s", rc.c.src, fmt.Sprintf(format, args...))
	return relpBroken
}

// command acts on one complete frame (data cut to MaxMessageBytes when
// truncated).
func (rc *relpConn) command(hard context.Context, data []byte, truncated bool) relpStatus {
	reply := func(code int, text string, extra []byte) relpStatus {
		if !rc.push(relpItem{kind: relpReply, txnr: rc.txnr, code: code, text: text, extra: extra}) {
			return relpBroken
		}
		return relpOK
	}
	switch rc.cmd {
	case relpCmdOpen:
		if rc.opened {
			return reply(200, "connection already open - ignored", nil)
		}
		if cmds, ok := relp.Offer(data, "commands"); !ok || !relp.HasValue(cmds, "syslog") {
			rc.in.protocol.Inc()
			rc.in.logThrottled("refusing RELP session from %s: the client does not offer the syslog command", rc.c.src)
			if reply(500, "required command syslog not offered", nil) != relpOK {
				return relpBroken
			}
			return relpDone
		}
		rc.opened = true
		return reply(200, "OK", relpOffers)
	case relpCmdSyslog:
		if !rc.opened {
			return rc.broken("syslog command before open")
		}
		if len(data) == 0 {
			return reply(200, "OK", nil) // nothing to keep
		}
		rc.in.fill(&rc.ev, data, rc.c.src, time.Now().UnixNano(), truncated)
		ticket, err := rc.pr.EmitTicket(hard, &rc.ev, len(data))
		if err != nil {
			return relpBroken
		}
		rc.emitted++
		if !rc.push(relpItem{kind: relpAck, txnr: rc.txnr, ticket: ticket}) {
			return relpBroken
		}
		return relpOK
	case relpCmdClose:
		if !rc.push(relpItem{kind: relpClose, txnr: rc.txnr}) {
			return relpBroken
		}
		return relpDone
	}
	return reply(500, "command not supported", nil)
}

// ack answers the queued items in order until the queue is closed, the
// session ends, or ctx ends. A message is acknowledged only after the
// pipeline reports it durable; while waiting, the answers written so far
// are flushed so the client's window moves on.
func (rc *relpConn) ack(ctx context.Context) {
	p := rc.in.pipe
	var out []byte
	flush := func() bool {
		if len(out) == 0 {
			return true
		}
		rc.c.SetWriteDeadline(time.Now().Add(relpWriteTimeout))
		_, err := rc.c.Write(out)
		out = out[:0]
		if err != nil {
			rc.c.Close()
			return false
		}
		return true
	}
	for it := range rc.items {
		switch it.kind {
		case relpAck:
			if p.durablePos.Load() <= it.ticket || p.lostFrame.Load() {
				if !flush() {
					return
				}
				if err := p.waitDurable(ctx, it.ticket); err != nil {
					if errors.Is(err, errNotDurable) {
						rc.in.notDurable.Inc()
						rc.in.logThrottled("closing RELP connection from %s without acknowledging: %v", rc.c.src, err)
					}
					rc.c.Close()
					return
				}
			}
			out = relp.AppendResponse(out, it.txnr, 200, "OK", nil)
			rc.answered++
		case relpReply:
			out = relp.AppendResponse(out, it.txnr, it.code, it.text, it.extra)
		case relpClose:
			out = relp.AppendResponse(out, it.txnr, 200, "OK", nil)
			out = relp.AppendFrame(out, 0, "serverclose", nil)
			flush()
			return
		case relpServerClose:
			out = relp.AppendFrame(out, 0, "serverclose", nil)
			flush()
			return
		}
		if len(rc.items) == 0 && !flush() {
			return
		}
	}
	flush()
}
