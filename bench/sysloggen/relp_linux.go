package sysloggen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// relpReadBuffer is a session's read buffer: answers to "syslog" are a
// dozen bytes, the answer to "open" a few hundred.
const relpReadBuffer = 64 << 10

// relpMaxAnswer bounds the data of a frame from the collector.
const relpMaxAnswer = 16 << 10

// relpWait bounds each wait of a session that has stopped sending: for the
// answers still due, for the answer to "close", and for the handshake (a
// variable so that tests can shorten it).
var relpWait = 10 * time.Second

// relpLinger bounds the wait for the collector to close the connection
// after it answered "close".
const relpLinger = time.Second

// errServerClose is wrapped when the collector ends a session with the
// "serverclose" hint before it answered every message.
var errServerClose = errors.New("collector sent serverclose")

// relpSession is one stream's RELP connection. The stream's goroutine
// writes; the reader goroutine ([relpSession.read]) takes the answers.
type relpSession struct {
	c      net.Conn
	stream int

	// written is the "syslog" frames handed to the connection, raised
	// before each write so that an answer never finds it behind; acked
	// is the "200 OK" answers to them, published by the reader. written
	// − acked is the part of the window in use.
	written atomic.Uint64
	acked   atomic.Uint64
	// wake holds a token when the reader has published answers.
	wake chan struct{}
	// done is closed when the reader ends; then err says why, and closed
	// whether it ended on the answer to "close".
	done   chan struct{}
	err    error
	closed bool

	// The reader's own: buf[r:w] is read and not yet parsed, expect the
	// transaction number of the next answer, nAcked its count of "200 OK".
	buf    []byte
	r, w   int
	expect uint32
	nAcked uint64
}

// sendRELP runs one RELP session: open, the stream's messages with at
// most RELPWindow unanswered, close. s.sent counts the messages answered
// "200 OK", s.unacked those written and not.
func (s *stream) sendRELP(ctx context.Context, id int) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp4", s.cfg.Target.String())
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w", s.cfg.Target, err)
	}
	defer c.Close()
	rs := &relpSession{c: c, stream: id, wake: make(chan struct{}, 1), done: make(chan struct{}),
		buf: make([]byte, relpReadBuffer), expect: 1}
	if err := rs.open(); err != nil {
		return fmt.Errorf("cannot open a RELP session with %s (stream %d): %w", s.cfg.Target, id, err)
	}
	go rs.read()

	// A cancelled context interrupts a blocked write; a write cut short
	// leaves half a frame on the wire, after which no "close" can follow.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { c.SetWriteDeadline(time.Now()); close(fired) })
	txnr, broken, werr := s.writeRELP(ctx, rs)
	if !stop() {
		<-fired // its deadline is set before "close" gets its own
	}

	// Wait for the answers still due, then close the session as the spec
	// says: "close", its answer, and the client closes the connection.
	var cerr error
	if !broken && rs.waitAcked(relpWait) {
		c.SetWriteDeadline(time.Now().Add(relpWait))
		if _, err := c.Write(appendRELPFrame(nil, txnr, "close", nil)); err != nil {
			cerr = fmt.Errorf("cannot close the RELP session with %s (stream %d): %w", s.cfg.Target, id, err)
		} else {
			select {
			case <-rs.done:
			case <-time.After(relpWait):
				cerr = fmt.Errorf("%s did not answer close within %v (stream %d)", s.cfg.Target, relpWait, id)
			}
		}
	}
	// abandoned: the reader still waited for answers when the session
	// gave up on them, so its error is only the closed connection.
	abandoned := false
	select {
	case <-rs.done:
	default:
		abandoned = true
	}
	c.Close()
	<-rs.done
	s.sent = rs.nAcked
	s.unacked = rs.written.Load() - rs.nAcked
	switch {
	case werr != nil && (ctx.Err() != nil || abandoned):
		return werr // cancelled, stalled, or a write failed first
	case abandoned && cerr != nil:
		return cerr
	case abandoned:
		return fmt.Errorf("RELP session with %s (stream %d): %d of %d messages unanswered after %v",
			s.cfg.Target, id, s.unacked, rs.written.Load(), relpWait)
	case errors.Is(rs.err, errServerClose) && werr == nil && s.sent == s.n:
		// Every message was answered; the collector only closed first.
		return nil
	case rs.err != nil:
		// The reader's error is the cause (a refusal, a broken session),
		// also of a write that failed.
		return fmt.Errorf("RELP session with %s (stream %d), %d of %d messages acknowledged: %w",
			s.cfg.Target, id, s.sent, rs.written.Load(), rs.err)
	case werr != nil:
		return werr
	}
	return cerr
}

// writeRELP writes the stream's messages as "syslog" frames, numbered from
// transaction 2 (1 was "open"), keeping at most RELPWindow unanswered, at
// the stream's rate. It returns the next transaction number, broken when
// the last write may have been cut short, and why it stopped early.
func (s *stream) writeRELP(ctx context.Context, rs *relpSession) (txnr uint32, broken bool, err error) {
	txnr = 2
	window := uint64(s.cfg.RELPWindow)
	msg := append([]byte(nil), s.tpl.Bytes()...)
	off := s.tpl.SeqOffset()
	frameMax := len(appendRELPFrame(nil, relpMaxTxnr, "syslog", msg))
	per := max(min(window, uint64(tcpBatchBytes/frameMax)), 1) // frames per write
	buf := make([]byte, 0, per*uint64(frameMax))
	// stall bounds a wait for answers with the window full: a collector
	// that answers nothing for relpWait has hung.
	stall := time.NewTimer(relpWait)
	defer stall.Stop()
	var written uint64
	for written < s.n {
		limit, err := s.allowed(ctx, written)
		if err != nil {
			return txnr, false, err
		}
		for acked := rs.acked.Load(); written-acked >= window; {
			stall.Reset(relpWait)
			select {
			case <-rs.wake:
			case <-rs.done:
				return txnr, false, nil // the reader's error says why
			case <-ctx.Done():
				return txnr, false, ctx.Err()
			case <-stall.C:
				if rs.acked.Load() == acked {
					return txnr, false, fmt.Errorf("%s answered none of %d messages within %v (stream %d)", s.cfg.Target, window, relpWait, rs.stream)
				}
			}
			acked = rs.acked.Load()
		}
		k := min(limit-written, window-(written-rs.acked.Load()), per)
		buf = buf[:0]
		for i := range k {
			PutSeq(msg[off:], written+i)
			buf = appendRELPFrame(buf, txnr, "syslog", msg)
			txnr = nextTxnr(txnr)
		}
		written += k
		rs.written.Store(written)
		if _, err := rs.c.Write(buf); err != nil {
			if ctx.Err() != nil {
				return txnr, true, ctx.Err()
			}
			return txnr, true, fmt.Errorf("cannot write to %s after %d messages (stream %d): %w", s.cfg.Target, written-k, rs.stream, err)
		}
		s.bytes += uint64(len(buf))
	}
	return txnr, false, nil
}

// open sends "open" (transaction 1) and checks the answer: 200, a
// relp_version, and the syslog command among those the collector accepts.
func (rs *relpSession) open() error {
	rs.c.SetDeadline(time.Now().Add(relpWait))
	defer rs.c.SetDeadline(time.Time{})
	if _, err := rs.c.Write(appendRELPFrame(nil, 1, "open", []byte(relpOpenOffers))); err != nil {
		return err
	}
	f, err := rs.readFrame()
	if err != nil {
		return fmt.Errorf("no answer to open: %w", err)
	}
	if f.txnr != 1 || string(f.cmd) != "rsp" {
		return fmt.Errorf("answer to open is %d %q, want 1 rsp", f.txnr, f.cmd)
	}
	rs.expect = 2
	code, text, offers, err := parseRELPResponse(f.data)
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("open refused: %d %q", code, text)
	}
	if _, ok := relpOffer(offers, "relp_version"); !ok {
		return fmt.Errorf("answer to open without relp_version: %q", f.data)
	}
	if cmds, _ := relpOffer(offers, "commands"); !relpListHas(cmds, "syslog") {
		return fmt.Errorf("collector does not accept the syslog command: %q", f.data)
	}
	return nil
}

// read takes the answers until the session ends: each must be the next
// transaction's "rsp"; a message's counts if it is 200, the first that is
// not ends the session, and the answer to "close" ends it cleanly. Hints
// (transaction 0) are skipped, but "serverclose" ends the session.
func (rs *relpSession) read() {
	defer close(rs.done)
	defer rs.publish()
	for {
		f, err := rs.readFrame()
		if err != nil {
			rs.err = err
			return
		}
		if f.txnr == 0 {
			if string(f.cmd) == "serverclose" {
				rs.err = errServerClose
				return
			}
			continue
		}
		if string(f.cmd) != "rsp" || f.txnr != rs.expect {
			rs.err = fmt.Errorf("collector sent %d %q where the answer to %d was due", f.txnr, f.cmd, rs.expect)
			return
		}
		rs.expect = nextTxnr(rs.expect)
		if len(f.data) == 0 && rs.nAcked == rs.written.Load() {
			// librelp answers "close" with an empty rsp.
			rs.closed = true
			rs.linger()
			return
		}
		code, text, _, err := parseRELPResponse(f.data)
		if err != nil {
			rs.err = err
			return
		}
		if rs.nAcked < rs.written.Load() {
			if code != 200 {
				rs.err = fmt.Errorf("collector answered message %d with %d %q", rs.nAcked, code, text)
				return
			}
			rs.nAcked++
			continue
		}
		// Every message is answered: this answers "close".
		if code != 200 {
			rs.err = fmt.Errorf("collector answered close with %d %q", code, text)
		}
		rs.closed = true
		rs.linger()
		return
	}
}

// linger reads, after the answer to "close", until the collector closes
// the connection (after its "serverclose" hint), for at most relpLinger.
// The spec lets the client close at once, but then the collector's hint
// meets a closed socket, and librelp logs the session as broken.
func (rs *relpSession) linger() {
	rs.c.SetReadDeadline(time.Now().Add(relpLinger))
	for {
		if _, err := rs.readFrame(); err != nil {
			return
		}
	}
}

// readFrame returns the next frame from the collector, reading as needed;
// it aliases rs.buf until the next call. Before it blocks in a read it
// publishes the answers so far, so the writer sees them in batches.
func (rs *relpSession) readFrame() (relpFrame, error) {
	for {
		f, n, err := parseRELPFrame(rs.buf[rs.r:rs.w], relpMaxAnswer)
		if err != nil {
			return f, err
		}
		if n > 0 {
			rs.r += n
			return f, nil
		}
		if rs.r > 0 {
			rs.w = copy(rs.buf, rs.buf[rs.r:rs.w])
			rs.r = 0
		}
		if rs.w == len(rs.buf) {
			return relpFrame{}, relpError("frame larger than the read buffer", rs.buf)
		}
		rs.publish()
		k, err := rs.c.Read(rs.buf[rs.w:])
		rs.w += k
		if err != nil && k == 0 {
			return relpFrame{}, err
		}
	}
}

// publish hands the reader's count of "200 OK" answers to the writer.
func (rs *relpSession) publish() {
	if rs.acked.Load() == rs.nAcked {
		return
	}
	rs.acked.Store(rs.nAcked)
	select {
	case rs.wake <- struct{}{}:
	default:
	}
}

// waitAcked waits up to d until every message written is answered; it
// reports false when the reader ended first or d passed.
func (rs *relpSession) waitAcked(d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for rs.acked.Load() < rs.written.Load() {
		select {
		case <-rs.wake:
		case <-rs.done:
			return rs.acked.Load() == rs.written.Load() && rs.err == nil
		case <-deadline.C:
			return false
		}
	}
	select {
	case <-rs.done:
		return rs.err == nil // ended early (serverclose right after the last answer)
	default:
		return true
	}
}
