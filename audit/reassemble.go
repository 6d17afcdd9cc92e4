package audit

import (
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// RecordRef locates one record inside [Message.Raw].
type RecordRef struct {
	Type uint16
	// Line is the record as it appears in Raw: "type=NAME msg=audit(...): ...".
	Line []byte
	// Body is the part of Line after "): ".
	Body []byte
}

// Message is one reassembled audit event: every record that carried its
// serial, in arrival order, except the EOE record that ended it.
type Message struct {
	Serial uint64
	Time   int64 // unix ns of the first record
	// Raw holds the records as ausearch --raw prints them, one per line
	// separated by '\n' (no trailing newline).
	Raw     []byte
	Records []RecordRef
	// Complete is false when records of the event are known to be
	// missing: a syscall event (one with a SYSCALL record) that was ended
	// by the timeout, by eviction or at shutdown rather than by its EOE
	// record, or an event whose records went past MaxEventBytes. Events
	// logged outside a syscall have no EOE and are complete when they time
	// out.
	Complete bool
}

// ReassemblerOptions configures a [Reassembler].
type ReassemblerOptions struct {
	// Timeout ends an event that has seen no EOE record this long after its
	// first record (default 2s, as auditd's end_of_event_timeout). Events
	// logged outside a recorded syscall (LOGIN, CONFIG_CHANGE from a
	// kernel thread) never get an EOE and wait this long.
	Timeout time.Duration
	// MaxInFlight bounds the events being assembled at once (default 256);
	// when a record opens one more, the oldest is ended early.
	MaxInFlight int
	// MaxEventBytes bounds one event's raw text (default 1MiB); further
	// records of the event are dropped and counted, and it ends incomplete.
	MaxEventBytes int
}

// ReassemblerStats counts what a Reassembler did. All fields only grow.
type ReassemblerStats struct {
	Records    uint64 // records pushed, including malformed ones
	Malformed  uint64 // records whose header could not be parsed (dropped)
	Events     uint64 // events handed to the callback
	TimedOut   uint64 // events ended by the timeout without EOE
	Evicted    uint64 // events ended early because MaxInFlight was reached
	Oversize   uint64 // records dropped because their event reached MaxEventBytes
	LateRecord uint64 // records that arrived after their event was ended (emitted alone)
}

// Reassembler groups audit records into events by serial number. The
// kernel sends the records of one syscall together, ending with an EOE
// record, but records of different events interleave when several CPUs
// log at once, and an event logged outside a recorded syscall has no EOE.
//
// A Reassembler is not safe for concurrent use. It keeps its buffers
// between events: in steady state Push and Flush do not allocate.
type Reassembler struct {
	opts  ReassemblerOptions
	emit  func(*Message)
	slots []*slot // in flight, oldest first
	free  []*slot
	stats ReassemblerStats

	// recent remembers the serials of the last ended events, so a record
	// arriving after its event's timeout is flagged as late.
	recent    [64]uint64
	recentPos int
}

type slot struct {
	msg     Message
	refs    []recordOff
	started time.Time
	broken  bool // records were dropped
	syscall bool // a SYSCALL record came: the kernel ends the event with EOE
}

// recordOff locates a record in the slot's Raw while the event grows (Raw
// may move); the RecordRef slices are made when the event ends.
type recordOff struct {
	typ             uint16
	line, body, end int
}

// NewReassembler returns a Reassembler that hands each finished event to
// emit. The Message and everything it points to is valid only during the
// call.
func NewReassembler(opts ReassemblerOptions, emit func(*Message)) *Reassembler {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 256
	}
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = 1 << 20
	}
	return &Reassembler{opts: opts, emit: emit}
}

// Stats returns the counters so far.
func (r *Reassembler) Stats() ReassemblerStats { return r.stats }

// InFlight returns the number of events being assembled.
func (r *Reassembler) InFlight() int { return len(r.slots) }

// Push adds one record as read from netlink (type from the netlink
// header, text the payload). text is copied; the caller may reuse it.
// Events that the record completes are handed to the callback before Push
// returns. A malformed record is counted and dropped: its serial is
// unknown, so it cannot be put with its event.
func (r *Reassembler) Push(typ uint16, text []byte, now time.Time) error {
	r.stats.Records++
	rec, bodyStart, bodyEnd, err := parseHeader(typ, text)
	if err != nil {
		r.stats.Malformed++
		return err
	}
	s := r.find(rec.Serial)
	if s == nil {
		if r.wasEnded(rec.Serial) {
			r.stats.LateRecord++
		}
		if len(r.slots) >= r.opts.MaxInFlight {
			r.stats.Evicted++
			r.end(0, false)
		}
		s = r.open(&rec, now)
	}
	if rec.Type == TypeEOE {
		r.end(r.index(s), true)
		return nil
	}
	if len(s.msg.Raw)+bodyEnd+32 > r.opts.MaxEventBytes {
		r.stats.Oversize++
		s.broken = true
		return nil
	}
	s.add(rec.Type, text[:bodyEnd], bodyStart)
	if rec.Type == TypeSyscall {
		s.syscall = true
	}
	if isStandalone(rec.Type) && len(s.refs) == 1 {
		r.end(r.index(s), true)
	}
	return nil
}

// Flush ends every event whose first record is older than the timeout at
// now. Call it periodically (the collector does, at least every 100ms).
func (r *Reassembler) Flush(now time.Time) {
	for len(r.slots) > 0 && now.Sub(r.slots[0].started) >= r.opts.Timeout {
		r.stats.TimedOut++
		r.end(0, false)
	}
	// Events opened out of order of their start (never with a monotonic
	// clock, but a caller may pass any now) are checked too.
	for i := 0; i < len(r.slots); {
		if now.Sub(r.slots[i].started) >= r.opts.Timeout {
			r.stats.TimedOut++
			r.end(i, false)
			continue
		}
		i++
	}
}

// FlushAll ends every event in flight, as at shutdown.
func (r *Reassembler) FlushAll() {
	for len(r.slots) > 0 {
		r.end(0, false)
	}
}

func (r *Reassembler) find(serial uint64) *slot {
	// Newest first: the record most likely belongs to the event just
	// opened.
	for i := len(r.slots) - 1; i >= 0; i-- {
		if r.slots[i].msg.Serial == serial {
			return r.slots[i]
		}
	}
	return nil
}

func (r *Reassembler) index(s *slot) int {
	for i := len(r.slots) - 1; i >= 0; i-- {
		if r.slots[i] == s {
			return i
		}
	}
	return -1
}

func (r *Reassembler) open(rec *Record, now time.Time) *slot {
	var s *slot
	if n := len(r.free); n > 0 {
		s = r.free[n-1]
		r.free = r.free[:n-1]
	} else {
		s = &slot{}
	}
	s.msg.Serial = rec.Serial
	s.msg.Time = rec.Time
	s.msg.Raw = s.msg.Raw[:0]
	s.refs = s.refs[:0]
	s.started = now
	s.broken = false
	s.syscall = false
	r.slots = append(r.slots, s)
	return s
}

// add appends "type=NAME msg=" and text (the record up to the end of its
// body) to the event's raw text; the body starts at text[bodyStart:].
func (s *slot) add(typ uint16, text []byte, bodyStart int) {
	raw := s.msg.Raw
	if len(raw) > 0 {
		raw = append(raw, '\n')
	}
	line := len(raw)
	raw = append(raw, "type="...)
	raw = AppendTypeName(raw, typ)
	raw = append(raw, " msg="...)
	body := len(raw) + bodyStart
	raw = append(raw, text...)
	s.msg.Raw = raw
	s.refs = append(s.refs, recordOff{typ: typ, line: line, body: body, end: len(raw)})
}

// end hands the event at index i to the callback and frees its slot.
func (r *Reassembler) end(i int, complete bool) {
	s := r.slots[i]
	copy(r.slots[i:], r.slots[i+1:])
	r.slots[len(r.slots)-1] = nil
	r.slots = r.slots[:len(r.slots)-1]
	r.remember(s.msg.Serial)

	raw := s.msg.Raw
	s.msg.Records = s.msg.Records[:0]
	for _, o := range s.refs {
		s.msg.Records = append(s.msg.Records, RecordRef{Type: o.typ, Line: raw[o.line:o.end:o.end], Body: raw[o.body:o.end:o.end]})
	}
	s.msg.Complete = (complete || !s.syscall) && !s.broken
	if len(s.msg.Records) > 0 {
		r.stats.Events++
		r.emit(&s.msg)
	}
	r.free = append(r.free, s)
}

func (r *Reassembler) remember(serial uint64) {
	r.recent[r.recentPos] = serial
	r.recentPos = (r.recentPos + 1) % len(r.recent)
}

func (r *Reassembler) wasEnded(serial uint64) bool {
	for _, s := range r.recent {
		if s == serial && s != 0 {
			return true
		}
	}
	return false
}

// typeNames holds "SYSCALL", "PATH", ... for the event record types, from
// go-libaudit's table (generated from linux/audit.h and libaudit).
var typeNames = func() (t [TypeLastEvent - TypeFirstEvent + 1][]byte) {
	for i := range t {
		typ := TypeFirstEvent + uint16(i)
		name := auparse.AuditMessageType(typ).String()
		if name != "" && !strings.HasPrefix(name, "UNKNOWN[") {
			t[i] = []byte(name)
		}
	}
	return t
}()

// AppendTypeName appends the record type's name as auditd writes it
// ("SYSCALL"), or "UNKNOWN[n]" for a type without one.
func AppendTypeName(dst []byte, typ uint16) []byte {
	if typ >= TypeFirstEvent && typ <= TypeLastEvent {
		if n := typeNames[typ-TypeFirstEvent]; n != nil {
			return append(dst, n...)
		}
	}
	dst = append(dst, "UNKNOWN["...)
	dst = strconv.AppendUint(dst, uint64(typ), 10)
	return append(dst, ']')
}
