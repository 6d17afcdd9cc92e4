// Package flow decodes NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX
// (RFC 7011/7012) export packets, and sFlow v5 datagrams (Decoder.DecodeSFlow),
// into event.Flow records.
//
// A Decoder turns one UDP payload into records without heap allocation in
// steady state: headers and records are read in place from the packet, the
// record is built in an event.Event the Decoder owns and handed to a callback
// that must copy what it keeps. Templates learned from v9 and IPFIX exporters
// live in a Templates cache shared by every Decoder of a node; it is keyed by
// exporter address, protocol version, observation domain (v9 source id) and
// template id, so two exporters that reuse the same ids never collide.
//
// Malformed input never panics: every length read from the wire is checked
// against what is left of the packet before it is used, and a bad packet
// yields an error wrapping one of the sentinels below.
//
// Templates can be saved and reloaded across restarts (Templates.SaveFile,
// LoadFile), and a SeqTracker turns the packets' sequence numbers into
// loss estimates. docs/flow.md has the field mapping and the limits.
package flow

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/trawlsec/trawl/event"
)

// Sentinel errors. Decode wraps them in a *DecodeError that says where the
// packet went wrong (ErrTemplateNotFound excepted); test with errors.Is.
var (
	// ErrTruncated means the packet ends before a header, set or record that
	// it announces. Records decoded before that point were delivered.
	ErrTruncated = errors.New("truncated packet")
	// ErrBadVersion means the first two bytes are not 5, 9 or 10.
	ErrBadVersion = errors.New("unsupported version")
	// ErrBadLength means a length field is impossible: a set shorter than
	// its own header, an IPFIX message length below 16, a template whose
	// records would be empty, a variable-length field in a v9 template, an
	// IPFIX options template without scope, v9 options template lengths
	// that are not multiples of 4.
	ErrBadLength = errors.New("bad length")
	// ErrTemplateNotFound means at least one data set referenced a template
	// the exporter has not sent (yet). It is not fatal: the other sets of
	// the packet were decoded, and PacketInfo counts what was held or
	// lost. Decode returns it bare, not in a *DecodeError.
	ErrTemplateNotFound = errors.New("template not found")
)

// DecodeError is the error Decode returns: the sentinel (Err) plus the
// place in the packet where decoding stopped.
type DecodeError struct {
	Version uint16 // 5, 9, 10, or what the packet claimed
	Offset  int    // byte offset in the packet of the header, set or record
	SetID   uint16 // flowset / set id, 0 for the packet header (v9 template sets are id 0 too)
	Err     error  // one of the sentinels
}

// Error renders e as "cannot decode netflow v9 set 256 at offset 44: truncated packet".
func (e *DecodeError) Error() string {
	return fmt.Sprintf("cannot decode %s set %d at offset %d: %v", versionName(e.Version), e.SetID, e.Offset, e.Err)
}

// Unwrap returns the sentinel.
func (e *DecodeError) Unwrap() error { return e.Err }

func versionName(v uint16) string {
	switch v {
	case 5:
		return "netflow v5"
	case 9:
		return "netflow v9"
	case 10:
		return "ipfix"
	}
	return fmt.Sprintf("flow version %d", v)
}

// PacketInfo describes one decoded packet, for sequence tracking and for
// the loss ledger.
type PacketInfo struct {
	Version       uint16 // 5, 9 or 10
	SequenceNum   uint32 // header sequence (v5 flows, v9 packets, IPFIX data records)
	ObservationID uint32 // v9 source id, IPFIX observation domain, v5 engine type<<8|engine id
	ExportTimeNs  int64  // header export time, unix ns
	// Records is the number of this packet's flow records handed to the
	// callback (held records decoded later count in PendingRecords).
	Records int
	// OptionsRecords is the number of options data records read (sampling
	// and exporter metadata); they do not become flows.
	OptionsRecords int
	// TemplatesLearned counts template and options template records read,
	// withdrawals included.
	TemplatesLearned int
	// TemplatesRefused counts new templates dropped because the cache
	// holds MaxTemplateBytes, or the exporter MaxExporterTemplateBytes.
	TemplatesRefused int
	// SamplingRate is the rate applied to the last flow record handed to
	// the callback (0 when the exporter announced none).
	SamplingRate uint64
	// NoTemplateSets and NoTemplateBytes count the data sets of this
	// packet whose template is unknown. The number of records in them
	// cannot be known without the template.
	NoTemplateSets  int
	NoTemplateBytes int
	// PendingHeld is how many of those sets the Decoder kept, to decode
	// when their template arrives (the others are lost).
	PendingHeld int
	// PendingRecords counts flow records of sets held from earlier
	// packets (or earlier in this one) that were decoded during this call
	// and handed to the callback; they are not in Records.
	PendingRecords int
	// PendingDropped counts held sets given up during this call: too old
	// (PendingAge) or pushed out for room. They are lost.
	PendingDropped int
}

// Decoder decodes packets from any number of exporters. It is not safe for
// concurrent use: run one per input goroutine, all sharing one Templates.
type Decoder struct {
	t  *Templates
	ev event.Event

	// Per-packet state.
	exporter netip.Addr
	version  uint16
	domain   uint32
	uptimeMs uint32 // v9 header sysUptime
	baseNs   int64  // v9/IPFIX export time (whole seconds), unix ns
	proto    event.Flow
	state    *exporterState
	info     PacketInfo

	// Data sets held until their template comes; see pending.go.
	pend    []pendingSet
	pendBuf []byte
	pendGen uint64 // Templates.gen when pend was last tried
	packets uint64 // v9 and IPFIX packets decoded
}

// NewDecoder returns a Decoder that learns templates into t and reads them
// from it. t must not be nil.
func NewDecoder(t *Templates) *Decoder {
	d := &Decoder{t: t}
	d.ev.Kind = event.KindFlow
	return d
}

// Decode decodes one UDP payload sent by exporter and calls fn for each flow
// record, in packet order. The version is read from the first two bytes: 5,
// 9 or 10 (IPFIX).
//
// The *event.Event passed to fn is owned by the Decoder and valid only
// during the call: Kind is event.KindFlow, Source the exporter, Time the
// flow end (unix ns), Flow the record. Decode sets only those fields; fn may
// set others (RecvTime, Input) and they stay as fn left them. pkt is not
// retained.
//
// On error, fn has already been called for the records before the fault.
// Errors are *DecodeError, except ErrTemplateNotFound, returned bare (so
// the routine case costs no allocation): it is not fatal, every data set
// with a known template was decoded, and PacketInfo counts what was not.
// Data sets whose template is unknown are held, within bounds (see
// PendingBytes), and decoded at the end of a later call (or of this one)
// once the template is known to the shared Templates: their flows go to
// that call's fn, with their own packet's Source, sequence and times. Options data (sampling rate, system init time)
// takes effect for the records that follow it, in this packet and later.
func (d *Decoder) Decode(exporter netip.AddrPort, pkt []byte, fn func(e *event.Event)) (PacketInfo, error) {
	d.info = PacketInfo{}
	if len(pkt) < 2 {
		return d.info, &DecodeError{Err: ErrTruncated}
	}
	d.ev.Source = exporter
	d.exporter = exporter.Addr().Unmap()
	v := uint16(pkt[0])<<8 | uint16(pkt[1])
	d.info.Version = v
	var err error
	switch v {
	case 5:
		err = d.decodeV5(pkt, fn)
	case 9, 10:
		err = d.decodeTemplated(v, pkt, fn)
	default:
		err = &DecodeError{Version: v, Err: ErrBadVersion}
	}
	d.state = nil
	return d.info, err
}
