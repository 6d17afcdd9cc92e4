package consumer

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fastjson"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
)

// Record headers that trawl's Kafka sink sets on every record, and the
// values of HeaderEncoding (docs/consumers.md).
const (
	// HeaderEncoding names how the record value encodes the event.
	HeaderEncoding = "trawl.encoding"
	// HeaderEncodingVersion is the version of that encoding.
	HeaderEncodingVersion = "trawl.encoding.version"
	// HeaderKind is the event kind ("flow", "syslog", ...).
	HeaderKind = "trawl.kind"

	// EncodingECSJSON is one ECS JSON object (event.AppendJSON), version 1.
	// A record without a HeaderEncoding is taken as ECS JSON.
	EncodingECSJSON = "ecs-json"
	// EncodingTrawlBinary is trawl's binary event encoding
	// (event.AppendBinary); its version is event.Version.
	EncodingTrawlBinary = "trawl-binary"
	// EncodingFlowMessage is a goflow2 v2 FlowMessage in protobuf wire
	// format (event.AppendFlowProto), version 2; flows only.
	EncodingFlowMessage = "goflow2-flowmessage"
	// EncodingTrawlFrame is one whole trawl frame exactly as the spool
	// holds it (package frame: header, compressed batch of trawl-binary
	// events, CRC32C); its version is frame.Version. One record carries
	// many events: [KafkaSource] delivers each, [Decoder.Frame] decodes the
	// value. HeaderKind is the frame's kind.
	EncodingTrawlFrame = "trawl-frame"
)

// ErrUnknownEncoding is wrapped by the error [Converter.AppendJSON] returns
// for a record whose encoding or encoding version this build cannot read.
var ErrUnknownEncoding = errors.New("unknown record encoding")

// ErrFrameRecord is wrapped by the error [Converter.AppendJSON] returns for
// a trawl-frame record: it carries a batch of events, not one, so it has no
// single JSON rendering. [KafkaSource] reads such records.
var ErrFrameRecord = errors.New("record holds a trawl frame of many events")

var (
	binaryVersion = strconv.Itoa(event.Version)
	frameVersion  = strconv.Itoa(frame.Version)
)

// recordEncoding returns the encoding headers trawl's Kafka sink sets and
// the record's event kind: from its trawl.kind header, else from a topic
// named trawl.<kind>, else KindUnknown.
func recordEncoding(r *kgo.Record) (enc, ver []byte, kind event.Kind) {
	var kindName []byte
	for i := range r.Headers {
		h := &r.Headers[i]
		switch h.Key {
		case HeaderEncoding:
			enc = h.Value
		case HeaderEncodingVersion:
			ver = h.Value
		case HeaderKind:
			kindName = h.Value
		}
	}
	kind, ok := event.ParseKind(string(kindName))
	if !ok {
		kind, _ = event.ParseKind(strings.TrimPrefix(r.Topic, "trawl."))
	}
	return enc, ver, kind
}

// Converter renders Kafka records written by trawl's Kafka sink as ECS
// JSON, one event per record: ECS JSON passes through (checked), trawl's
// binary encoding and goflow2 FlowMessages are decoded and rendered with
// event.AppendJSON. A trawl-frame record holds many events and gives
// ErrFrameRecord ([KafkaSource] reads those). It reuses one event, so it is
// not safe for concurrent use; the zero value is ready.
//
// What the binary encodings do not carry is missing from their JSON: the
// per-frame fields (trawl.input, trawl.seq, observer.hostname) for both,
// and for FlowMessage also the exporter's UDP address (observer.ip,
// netflow.exporter). See docs/consumers.md.
type Converter struct {
	ev event.Event
}

// AppendJSON appends the ECS JSON of the event r carries to dst and returns
// the extended slice and the event's kind. On error dst is returned
// unchanged. It does not allocate when dst has room; it does not retain r.
func (c *Converter) AppendJSON(dst []byte, r *kgo.Record) ([]byte, event.Kind, error) {
	enc, ver, kind := recordEncoding(r)
	switch string(enc) {
	case "", EncodingECSJSON:
		if len(ver) > 0 && string(ver) != "1" {
			return dst, kind, fmt.Errorf("cannot read %s version %q: %w", EncodingECSJSON, ver, ErrUnknownEncoding)
		}
		return appendCheckedJSON(dst, r.Value, kind)
	case EncodingTrawlBinary:
		// Version 1 records (written before the packed flow payload) are
		// still read: DecodeBinary reads both.
		if len(ver) > 0 && string(ver) != binaryVersion && string(ver) != "1" {
			return dst, kind, fmt.Errorf("cannot read %s version %q: %w", EncodingTrawlBinary, ver, ErrUnknownEncoding)
		}
		if err := event.DecodeBinary(&c.ev, r.Value); err != nil {
			return dst, kind, fmt.Errorf("cannot decode %s record: %w", EncodingTrawlBinary, err)
		}
		return event.AppendJSON(dst, &c.ev), c.ev.Kind, nil
	case EncodingFlowMessage:
		if len(ver) > 0 && string(ver) != "2" {
			return dst, kind, fmt.Errorf("cannot read %s version %q: %w", EncodingFlowMessage, ver, ErrUnknownEncoding)
		}
		if err := decodeFlowMessage(&c.ev, r.Value); err != nil {
			return dst, event.KindFlow, fmt.Errorf("cannot decode %s record: %w", EncodingFlowMessage, err)
		}
		return event.AppendJSON(dst, &c.ev), event.KindFlow, nil
	case EncodingTrawlFrame:
		return dst, kind, fmt.Errorf("cannot render a %s record as one JSON object: %w", EncodingTrawlFrame, ErrFrameRecord)
	}
	return dst, kind, fmt.Errorf("cannot read a record encoded as %q: %w", enc, ErrUnknownEncoding)
}

// appendCheckedJSON appends v, which must be one JSON object, leaving out
// line breaks: outside strings they are whitespace (inside, JSON forbids
// them), and a Message's JSON must fit on one line.
func appendCheckedJSON(dst, v []byte, kind event.Kind) ([]byte, event.Kind, error) {
	t := bytes.TrimLeft(v, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return dst, kind, fmt.Errorf("cannot read %s record: the value is not a JSON object", EncodingECSJSON)
	}
	if err := fastjson.ValidateBytes(t); err != nil {
		return dst, kind, fmt.Errorf("cannot read %s record: %w", EncodingECSJSON, err)
	}
	if off := event.ControlInString(t); off >= 0 {
		return dst, kind, fmt.Errorf("cannot read %s record: control character %#x inside a string at offset %d", EncodingECSJSON, t[off], off)
	}
	for len(t) > 0 {
		i := bytes.IndexAny(t, "\r\n")
		if i < 0 {
			dst = append(dst, t...)
			break
		}
		dst = append(dst, t[:i]...)
		t = t[i+1:]
	}
	return bytes.TrimRight(dst, " \t"), kind, nil
}
