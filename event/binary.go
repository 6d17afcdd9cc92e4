package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Version is the first byte of every binary-encoded event. A reader refuses
// a version it does not know; fields added within a version are skipped by
// older readers, so the version only changes when the meaning of an
// existing field does.
const Version = 1

// MaxArgs bounds the number of arguments of Audit.Args and Process.Args in
// the binary encoding. AppendBinary writes the first MaxArgs arguments and
// sets FlagTruncated on the encoded event; DecodeBinary rejects more.
const MaxArgs = 16384

// ErrMalformed is wrapped by every error DecodeBinary returns: the input is
// not an event this reader can decode (truncated, a bad varint, a known
// field with the wrong wire type or an out-of-range value, a payload that
// does not match the kind, or an unknown version).
var ErrMalformed = errors.New("malformed event")

// ErrUnsupportedVersion is wrapped, together with ErrMalformed, by the error
// DecodeBinary returns when the leading version byte is not Version.
var ErrUnsupportedVersion = errors.New("unsupported event encoding version")

// Reasons a field fails to decode. Each wraps ErrMalformed; DecodeBinary adds
// the offset and the field.
var (
	errTruncated  = fmt.Errorf("truncated: %w", ErrMalformed)
	errVarint     = fmt.Errorf("varint overflows 64 bits: %w", ErrMalformed)
	errWireType   = fmt.Errorf("wrong wire type: %w", ErrMalformed)
	errBadWire    = fmt.Errorf("unsupported wire type: %w", ErrMalformed)
	errFieldNum   = fmt.Errorf("field number out of range: %w", ErrMalformed)
	errRange      = fmt.Errorf("value out of range: %w", ErrMalformed)
	errAddrLen    = fmt.Errorf("address is not 0, 4 or 16 bytes: %w", ErrMalformed)
	errTooMany    = fmt.Errorf("more than MaxArgs arguments: %w", ErrMalformed)
	errPayloadFor = fmt.Errorf("payload does not match the event kind: %w", ErrMalformed)
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// Top-level field numbers. The payload of kind k is the length-delimited
// field fieldPayload+k; numbers 7..16 are kept for future common fields so
// that they get one-byte keys. docs/encoding.md is the reference.
const (
	fieldKind       = 1
	fieldFlags      = 2
	fieldRecvTime   = 3
	fieldTime       = 4
	fieldSourceAddr = 5
	fieldSourcePort = 6
	fieldPayload    = 16
)

const maxFieldNum = 1<<29 - 1

// AppendBinary appends the binary encoding of e to dst and returns the
// extended slice. Seq, Input and Observer are not encoded (the frame header
// carries them), nor are the payloads of kinds other than e.Kind. Zero
// fields are omitted, netip zones are dropped, and arguments past MaxArgs
// are cut (the encoded flags then include FlagTruncated).
//
// It does not allocate when dst has room; it does not retain dst or e.
func AppendBinary(dst []byte, e *Event) []byte {
	dst = append(dst, Version)
	dst = appendUintField(dst, fieldKind, uint64(e.Kind))
	flags := e.Flags
	if (e.Kind == KindAudit && len(e.Audit.Args) > MaxArgs) ||
		(e.Kind == KindProcess && len(e.Process.Args) > MaxArgs) {
		flags |= FlagTruncated
	}
	dst = appendUintField(dst, fieldFlags, uint64(flags))
	dst = appendFixedField(dst, fieldRecvTime, e.RecvTime)
	dst = appendFixedField(dst, fieldTime, e.Time)
	dst = appendAddrField(dst, fieldSourceAddr, e.Source.Addr())
	dst = appendUintField(dst, fieldSourcePort, uint64(e.Source.Port()))
	if e.Kind == KindUnknown || e.Kind >= kindCount {
		return dst
	}

	keyAt := len(dst)
	dst = appendKey(dst, fieldPayload+uint32(e.Kind), wireBytes)
	lenAt := len(dst)
	// One byte is reserved for the length: most payloads are shorter than
	// 128 bytes, and longer ones are shifted once in closePayload.
	dst = append(dst, 0)
	switch e.Kind {
	case KindFlow:
		dst = appendFlow(dst, &e.Flow)
	case KindSyslog:
		dst = appendSyslog(dst, &e.Syslog)
	case KindAudit:
		dst = appendAudit(dst, &e.Audit)
	case KindProcess:
		dst = appendProcess(dst, &e.Process)
	case KindNetwork:
		dst = appendNetwork(dst, &e.Network)
	case KindApp:
		dst = appendApp(dst, &e.App)
	}
	return closePayload(dst, keyAt, lenAt)
}

// closePayload writes the length of the payload that starts after the
// reserved byte at lenAt, or removes the payload key when nothing was
// written, so that an all-zero payload costs nothing.
func closePayload(dst []byte, keyAt, lenAt int) []byte {
	n := len(dst) - lenAt - 1
	if n == 0 {
		return dst[:keyAt]
	}
	if n < 0x80 {
		dst[lenAt] = byte(n)
		return dst
	}
	s := varintLen(uint64(n))
	// append(x, make(...)...) grows dst without allocating the temporary.
	dst = append(dst, make([]byte, s-1)...)
	copy(dst[lenAt+s:], dst[lenAt+1:lenAt+1+n])
	binary.PutUvarint(dst[lenAt:], uint64(n))
	return dst
}

// Payload field numbers. Each kind numbers its own fields from 1; the most
// common fields have numbers below 16 so that their keys take one byte.
const (
	flowType          = 1
	flowTimeStart     = 2
	flowTimeEnd       = 3
	flowBytes         = 4
	flowPackets       = 5
	flowSrcAddr       = 6
	flowDstAddr       = 7
	flowSrcPort       = 8
	flowDstPort       = 9
	flowProto         = 10
	flowTCPFlags      = 11
	flowInIf          = 12
	flowOutIf         = 13
	flowSamplerAddr   = 14
	flowSequenceNum   = 15
	flowSamplingRate  = 16
	flowObservationID = 17
	flowNextHop       = 18
	flowSrcAS         = 19
	flowDstAS         = 20
	flowIPTos         = 21
	flowEtype         = 22
	flowSrcMask       = 23
	flowDstMask       = 24
	flowVlanID        = 25

	syslogFacility       = 1
	syslogSeverity       = 2
	syslogVersion        = 3
	syslogHostname       = 4
	syslogAppName        = 5
	syslogProcID         = 6
	syslogMsgID          = 7
	syslogStructuredData = 8
	syslogMessage        = 9
	syslogRaw            = 10

	auditSequence   = 1
	auditRecordType = 2
	auditAction     = 3
	auditResult     = 4
	auditSyscall    = 5
	auditPID        = 6
	auditPPID       = 7
	auditUID        = 8
	auditAUID       = 9
	auditGID        = 10
	auditExe        = 11
	auditComm       = 12
	auditCwd        = 13
	auditArgs       = 14
	auditFilePath   = 15
	auditDstAddr    = 16
	auditDstPort    = 17
	auditKey        = 18
	auditRaw        = 19

	processAction   = 1
	processPID      = 2
	processPPID     = 3
	processUID      = 4
	processGID      = 5
	processLoginUID = 6
	processCgroupID = 7
	processExitCode = 8
	processDuration = 9
	processStart    = 10
	processComm     = 11
	processFilename = 12
	processArgs     = 13

	networkAction    = 1
	networkTransport = 2
	networkPID       = 3
	networkUID       = 4
	networkComm      = 5
	networkSrcAddr   = 6
	networkSrcPort   = 7
	networkDstAddr   = 8
	networkDstPort   = 9
	networkDuration  = 10
	networkBytesSent = 11
	networkBytesRecv = 12

	appRaw     = 1
	appMessage = 2
	appLevel   = 3
)

func appendFlow(dst []byte, f *Flow) []byte {
	dst = appendUintField(dst, flowType, uint64(f.Type))
	dst = appendFixedField(dst, flowTimeStart, f.TimeStartNs)
	dst = appendFixedField(dst, flowTimeEnd, f.TimeEndNs)
	dst = appendUintField(dst, flowBytes, f.Bytes)
	dst = appendUintField(dst, flowPackets, f.Packets)
	dst = appendAddrField(dst, flowSrcAddr, f.SrcAddr)
	dst = appendAddrField(dst, flowDstAddr, f.DstAddr)
	dst = appendUintField(dst, flowSrcPort, uint64(f.SrcPort))
	dst = appendUintField(dst, flowDstPort, uint64(f.DstPort))
	dst = appendUintField(dst, flowProto, uint64(f.Proto))
	dst = appendUintField(dst, flowTCPFlags, uint64(f.TCPFlags))
	dst = appendUintField(dst, flowInIf, uint64(f.InIf))
	dst = appendUintField(dst, flowOutIf, uint64(f.OutIf))
	dst = appendAddrField(dst, flowSamplerAddr, f.SamplerAddress)
	dst = appendUintField(dst, flowSequenceNum, uint64(f.SequenceNum))
	dst = appendUintField(dst, flowSamplingRate, f.SamplingRate)
	dst = appendUintField(dst, flowObservationID, uint64(f.ObservationID))
	dst = appendAddrField(dst, flowNextHop, f.NextHop)
	dst = appendUintField(dst, flowSrcAS, uint64(f.SrcAS))
	dst = appendUintField(dst, flowDstAS, uint64(f.DstAS))
	dst = appendUintField(dst, flowIPTos, uint64(f.IPTos))
	dst = appendUintField(dst, flowEtype, uint64(f.Etype))
	dst = appendUintField(dst, flowSrcMask, uint64(f.SrcMask))
	dst = appendUintField(dst, flowDstMask, uint64(f.DstMask))
	dst = appendUintField(dst, flowVlanID, uint64(f.VlanID))
	return dst
}

func appendSyslog(dst []byte, s *Syslog) []byte {
	dst = appendUintField(dst, syslogFacility, uint64(s.Facility))
	dst = appendUintField(dst, syslogSeverity, uint64(s.Severity))
	dst = appendUintField(dst, syslogVersion, uint64(s.Version))
	dst = appendBytesField(dst, syslogHostname, s.Hostname)
	dst = appendBytesField(dst, syslogAppName, s.AppName)
	dst = appendBytesField(dst, syslogProcID, s.ProcID)
	dst = appendBytesField(dst, syslogMsgID, s.MsgID)
	dst = appendBytesField(dst, syslogStructuredData, s.StructuredData)
	dst = appendBytesField(dst, syslogMessage, s.Message)
	dst = appendBytesField(dst, syslogRaw, s.Raw)
	return dst
}

func appendAudit(dst []byte, a *Audit) []byte {
	dst = appendUintField(dst, auditSequence, a.Sequence)
	dst = appendUintField(dst, auditRecordType, uint64(a.RecordType))
	dst = appendBytesField(dst, auditAction, a.Action)
	dst = appendBytesField(dst, auditResult, a.Result)
	dst = appendBytesField(dst, auditSyscall, a.Syscall)
	dst = appendUintField(dst, auditPID, uint64(a.PID))
	dst = appendUintField(dst, auditPPID, uint64(a.PPID))
	dst = appendUintField(dst, auditUID, uint64(a.UID))
	dst = appendUintField(dst, auditAUID, uint64(a.AUID))
	dst = appendUintField(dst, auditGID, uint64(a.GID))
	dst = appendBytesField(dst, auditExe, a.Exe)
	dst = appendBytesField(dst, auditComm, a.Comm)
	dst = appendBytesField(dst, auditCwd, a.Cwd)
	dst = appendArgs(dst, auditArgs, a.Args)
	dst = appendBytesField(dst, auditFilePath, a.FilePath)
	dst = appendAddrField(dst, auditDstAddr, a.DstAddr.Addr())
	dst = appendUintField(dst, auditDstPort, uint64(a.DstAddr.Port()))
	dst = appendBytesField(dst, auditKey, a.Key)
	dst = appendBytesField(dst, auditRaw, a.Raw)
	return dst
}

func appendProcess(dst []byte, p *Process) []byte {
	dst = appendUintField(dst, processAction, uint64(p.Action))
	dst = appendUintField(dst, processPID, uint64(p.PID))
	dst = appendUintField(dst, processPPID, uint64(p.PPID))
	dst = appendUintField(dst, processUID, uint64(p.UID))
	dst = appendUintField(dst, processGID, uint64(p.GID))
	dst = appendUintField(dst, processLoginUID, uint64(p.LoginUID))
	dst = appendUintField(dst, processCgroupID, p.CgroupID)
	dst = appendUintField(dst, processExitCode, uint64(zigzag32(p.ExitCode)))
	dst = appendUintField(dst, processDuration, zigzag64(p.DurationNs))
	dst = appendFixedField(dst, processStart, p.StartNs)
	dst = appendBytesField(dst, processComm, p.Comm)
	dst = appendBytesField(dst, processFilename, p.Filename)
	dst = appendArgs(dst, processArgs, p.Args)
	return dst
}

func appendNetwork(dst []byte, n *Network) []byte {
	dst = appendUintField(dst, networkAction, uint64(n.Action))
	dst = appendUintField(dst, networkTransport, uint64(n.Transport))
	dst = appendUintField(dst, networkPID, uint64(n.PID))
	dst = appendUintField(dst, networkUID, uint64(n.UID))
	dst = appendBytesField(dst, networkComm, n.Comm)
	dst = appendAddrField(dst, networkSrcAddr, n.Src.Addr())
	dst = appendUintField(dst, networkSrcPort, uint64(n.Src.Port()))
	dst = appendAddrField(dst, networkDstAddr, n.Dst.Addr())
	dst = appendUintField(dst, networkDstPort, uint64(n.Dst.Port()))
	dst = appendUintField(dst, networkDuration, zigzag64(n.DurationNs))
	dst = appendUintField(dst, networkBytesSent, n.BytesSent)
	dst = appendUintField(dst, networkBytesRecv, n.BytesRecv)
	return dst
}

func appendApp(dst []byte, a *App) []byte {
	dst = appendBytesField(dst, appRaw, a.Raw)
	dst = appendBytesField(dst, appMessage, a.Message)
	dst = appendBytesField(dst, appLevel, a.Level)
	return dst
}

func appendVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendKey(dst []byte, num uint32, wire uint8) []byte {
	return appendVarint(dst, uint64(num)<<3|uint64(wire))
}

func appendUintField(dst []byte, num uint32, v uint64) []byte {
	if v == 0 {
		return dst
	}
	dst = appendKey(dst, num, wireVarint)
	return appendVarint(dst, v)
}

func appendFixedField(dst []byte, num uint32, v int64) []byte {
	if v == 0 {
		return dst
	}
	dst = appendKey(dst, num, wireFixed64)
	return binary.LittleEndian.AppendUint64(dst, uint64(v))
}

func appendBytesField(dst []byte, num uint32, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	dst = appendKey(dst, num, wireBytes)
	dst = appendVarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// appendArgs writes every argument, empty ones too, so that their number
// and positions survive; at most MaxArgs are written.
func appendArgs(dst []byte, num uint32, args [][]byte) []byte {
	if len(args) > MaxArgs {
		args = args[:MaxArgs]
	}
	for _, a := range args {
		dst = appendKey(dst, num, wireBytes)
		dst = appendVarint(dst, uint64(len(a)))
		dst = append(dst, a...)
	}
	return dst
}

// appendAddrField writes an IPv4 address as 4 bytes and any IPv6 address,
// IPv4-mapped ones included, as 16, so the address family round-trips.
func appendAddrField(dst []byte, num uint32, a netip.Addr) []byte {
	switch {
	case a.Is4():
		b := a.As4()
		dst = appendKey(dst, num, wireBytes)
		dst = append(dst, 4)
		return append(dst, b[:]...)
	case a.Is6():
		b := a.As16()
		dst = appendKey(dst, num, wireBytes)
		dst = append(dst, 16)
		return append(dst, b[:]...)
	}
	return dst
}

func zigzag64(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag64(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }

func zigzag32(v int32) uint32 { return uint32(v<<1) ^ uint32(v>>31) }

func unzigzag32(v uint32) int32 { return int32(v>>1) ^ -int32(v&1) }

// field is one decoded key and value. data aliases the input, capped so
// that appending to it cannot overwrite the bytes that follow.
type field struct {
	num  uint32
	wire uint8
	v    uint64 // varint, fixed64 and fixed32 values
	data []byte // length-delimited value
	at   int    // offset of the key in the input, for errors
	err  error  // why readField failed
}

// uvarint reads a varint at b[i:]. It returns the offset after it, or -1
// when the varint is truncated and -2 when it overflows 64 bits. The
// one-byte case is inlined by readField.
func uvarint(b []byte, i int) (uint64, int) {
	var v uint64
	for s := uint(0); s < 64; s += 7 {
		if i >= len(b) {
			return 0, -1
		}
		c := b[i]
		i++
		if s == 63 && c > 1 {
			return 0, -2
		}
		v |= uint64(c&0x7f) << s
		if c < 0x80 {
			return v, i
		}
	}
	return 0, -2
}

func varintError(n int) error {
	if n == -1 {
		return errTruncated
	}
	return errVarint
}

// readField reads the field at b[i:] into f and returns the offset after
// it; on failure it returns -1 and sets f.err. b ends where the enclosing
// message ends. Reporting failure through f keeps this hot function free of
// interface results.
func readField(b []byte, i int, f *field) int {
	f.at, f.num, f.wire = i, 0, 0
	var key uint64
	if i < len(b) && b[i] < 0x80 {
		key = uint64(b[i])
		i++
	} else if key, i = uvarint(b, i); i < 0 {
		f.err = varintError(i)
		return -1
	}
	num := key >> 3
	if num == 0 || num > maxFieldNum {
		f.err = errFieldNum
		return -1
	}
	f.num = uint32(num)
	f.wire = uint8(key & 7)
	switch f.wire {
	case wireVarint:
		if i < len(b) && b[i] < 0x80 {
			f.v = uint64(b[i])
			return i + 1
		}
		if f.v, i = uvarint(b, i); i < 0 {
			f.err = varintError(i)
			return -1
		}
		return i
	case wireBytes:
		var n uint64
		if i < len(b) && b[i] < 0x80 {
			n = uint64(b[i])
			i++
		} else if n, i = uvarint(b, i); i < 0 {
			f.err = varintError(i)
			return -1
		}
		if n > uint64(len(b)-i) {
			f.err = errTruncated
			return -1
		}
		j := i + int(n)
		f.data = b[i:j:j]
		return j
	case wireFixed64:
		if len(b)-i < 8 {
			f.err = errTruncated
			return -1
		}
		f.v = binary.LittleEndian.Uint64(b[i:])
		return i + 8
	case wireFixed32:
		if len(b)-i < 4 {
			f.err = errTruncated
			return -1
		}
		f.v = uint64(binary.LittleEndian.Uint32(b[i:]))
		return i + 4
	}
	f.err = errBadWire
	return -1
}

// setUint stores a varint field into an unsigned integer of any width,
// refusing values that do not fit rather than truncating them.
func setUint[T ~uint8 | ~uint16 | ~uint32 | ~uint64](dst *T, f *field) error {
	if f.wire != wireVarint {
		return errWireType
	}
	v := T(f.v)
	if uint64(v) != f.v {
		return errRange
	}
	*dst = v
	return nil
}

func setFixed(dst *int64, f *field) error {
	if f.wire != wireFixed64 {
		return errWireType
	}
	*dst = int64(f.v)
	return nil
}

func setSint64(dst *int64, f *field) error {
	if f.wire != wireVarint {
		return errWireType
	}
	*dst = unzigzag64(f.v)
	return nil
}

func setSint32(dst *int32, f *field) error {
	if f.wire != wireVarint {
		return errWireType
	}
	if f.v > 1<<32-1 {
		return errRange
	}
	*dst = unzigzag32(uint32(f.v))
	return nil
}

func setBytes(dst *[]byte, f *field) error {
	if f.wire != wireBytes {
		return errWireType
	}
	*dst = f.data
	return nil
}

func addArg(dst *[][]byte, f *field) error {
	if f.wire != wireBytes {
		return errWireType
	}
	if len(*dst) >= MaxArgs {
		return errTooMany
	}
	*dst = append(*dst, f.data)
	return nil
}

func setAddr(dst *netip.Addr, f *field) error {
	if f.wire != wireBytes {
		return errWireType
	}
	switch len(f.data) {
	case 0:
		*dst = netip.Addr{}
	case 4:
		*dst = netip.AddrFrom4([4]byte(f.data))
	case 16:
		*dst = netip.AddrFrom16([16]byte(f.data))
	default:
		return errAddrLen
	}
	return nil
}

// DecodeBinary resets e and fills it from b, one event as written by
// AppendBinary. Seq, Input and Observer stay zero: the caller fills them
// from the frame.
//
// Decoding is zero-copy: every []byte field of e, Args elements included,
// aliases b, so e is valid only while b is neither reused nor modified.
// Copy what must outlive b. The aliases are capped at their own length, so
// appending to one copies rather than overwriting b.
//
// Unknown fields are skipped. Any other problem yields an error wrapping
// ErrMalformed that names the offset in b; e is then partly filled and
// must be reset or decoded into again before use. DecodeBinary never
// panics, and it does not allocate once e's Args slices have grown to the
// sizes the input needs.
func DecodeBinary(e *Event, b []byte) error {
	e.Reset()
	if len(b) == 0 {
		return fmt.Errorf("cannot decode event at offset 0: empty input: %w", errTruncated)
	}
	if b[0] != Version {
		return fmt.Errorf("cannot decode event at offset 0: version %d: %w: %w", b[0], ErrUnsupportedVersion, ErrMalformed)
	}
	var (
		f       field
		err     error
		addr    netip.Addr
		port    uint16
		payload Kind // kind of the last payload field seen
	)
	for i := 1; i < len(b); {
		if i = readField(b, i, &f); i < 0 {
			return decodeError(KindUnknown, &f, f.err)
		}
		switch f.num {
		case fieldKind:
			err = setUint(&e.Kind, &f)
		case fieldFlags:
			err = setUint(&e.Flags, &f)
		case fieldRecvTime:
			err = setFixed(&e.RecvTime, &f)
		case fieldTime:
			err = setFixed(&e.Time, &f)
		case fieldSourceAddr:
			err = setAddr(&addr, &f)
		case fieldSourcePort:
			err = setUint(&port, &f)
		case fieldPayload + uint32(KindFlow), fieldPayload + uint32(KindSyslog),
			fieldPayload + uint32(KindAudit), fieldPayload + uint32(KindProcess),
			fieldPayload + uint32(KindNetwork), fieldPayload + uint32(KindApp):
			if f.wire != wireBytes {
				err = errWireType
				break
			}
			payload = Kind(f.num - fieldPayload)
			if err := decodePayload(e, payload, b, i-len(f.data), i); err != nil {
				return err
			}
		}
		if err != nil {
			return decodeError(KindUnknown, &f, err)
		}
	}
	e.Source = addrPort(addr, port)
	if payload != KindUnknown && payload != e.Kind {
		return fmt.Errorf("cannot decode event: %s payload in a %s event: %w", payload, e.Kind, errPayloadFor)
	}
	return nil
}

// decodePayload decodes the payload of kind k held in b[i:end]. Payload
// fields keep protobuf's merge semantics: a repeated payload overwrites the
// scalars it carries and appends its arguments.
func decodePayload(e *Event, k Kind, b []byte, i, end int) error {
	var (
		f   field
		err error
	)
	// Fields of the payload must end with it: readField sees no further.
	b = b[:end]
	switch k {
	case KindFlow:
		p := &e.Flow
		for i < end {
			if i = readField(b, i, &f); i < 0 {
				return decodeError(k, &f, f.err)
			}
			switch f.num {
			case flowType:
				err = setUint(&p.Type, &f)
			case flowTimeStart:
				err = setFixed(&p.TimeStartNs, &f)
			case flowTimeEnd:
				err = setFixed(&p.TimeEndNs, &f)
			case flowBytes:
				err = setUint(&p.Bytes, &f)
			case flowPackets:
				err = setUint(&p.Packets, &f)
			case flowSrcAddr:
				err = setAddr(&p.SrcAddr, &f)
			case flowDstAddr:
				err = setAddr(&p.DstAddr, &f)
			case flowSrcPort:
				err = setUint(&p.SrcPort, &f)
			case flowDstPort:
				err = setUint(&p.DstPort, &f)
			case flowProto:
				err = setUint(&p.Proto, &f)
			case flowTCPFlags:
				err = setUint(&p.TCPFlags, &f)
			case flowInIf:
				err = setUint(&p.InIf, &f)
			case flowOutIf:
				err = setUint(&p.OutIf, &f)
			case flowSamplerAddr:
				err = setAddr(&p.SamplerAddress, &f)
			case flowSequenceNum:
				err = setUint(&p.SequenceNum, &f)
			case flowSamplingRate:
				err = setUint(&p.SamplingRate, &f)
			case flowObservationID:
				err = setUint(&p.ObservationID, &f)
			case flowNextHop:
				err = setAddr(&p.NextHop, &f)
			case flowSrcAS:
				err = setUint(&p.SrcAS, &f)
			case flowDstAS:
				err = setUint(&p.DstAS, &f)
			case flowIPTos:
				err = setUint(&p.IPTos, &f)
			case flowEtype:
				err = setUint(&p.Etype, &f)
			case flowSrcMask:
				err = setUint(&p.SrcMask, &f)
			case flowDstMask:
				err = setUint(&p.DstMask, &f)
			case flowVlanID:
				err = setUint(&p.VlanID, &f)
			}
			if err != nil {
				return decodeError(k, &f, err)
			}
		}
	case KindSyslog:
		p := &e.Syslog
		for i < end {
			if i = readField(b, i, &f); i < 0 {
				return decodeError(k, &f, f.err)
			}
			switch f.num {
			case syslogFacility:
				err = setUint(&p.Facility, &f)
			case syslogSeverity:
				err = setUint(&p.Severity, &f)
			case syslogVersion:
				err = setUint(&p.Version, &f)
			case syslogHostname:
				err = setBytes(&p.Hostname, &f)
			case syslogAppName:
				err = setBytes(&p.AppName, &f)
			case syslogProcID:
				err = setBytes(&p.ProcID, &f)
			case syslogMsgID:
				err = setBytes(&p.MsgID, &f)
			case syslogStructuredData:
				err = setBytes(&p.StructuredData, &f)
			case syslogMessage:
				err = setBytes(&p.Message, &f)
			case syslogRaw:
				err = setBytes(&p.Raw, &f)
			}
			if err != nil {
				return decodeError(k, &f, err)
			}
		}
	case KindAudit:
		p := &e.Audit
		addr, port := p.DstAddr.Addr(), p.DstAddr.Port()
		for i < end {
			if i = readField(b, i, &f); i < 0 {
				return decodeError(k, &f, f.err)
			}
			switch f.num {
			case auditSequence:
				err = setUint(&p.Sequence, &f)
			case auditRecordType:
				err = setUint(&p.RecordType, &f)
			case auditAction:
				err = setBytes(&p.Action, &f)
			case auditResult:
				err = setBytes(&p.Result, &f)
			case auditSyscall:
				err = setBytes(&p.Syscall, &f)
			case auditPID:
				err = setUint(&p.PID, &f)
			case auditPPID:
				err = setUint(&p.PPID, &f)
			case auditUID:
				err = setUint(&p.UID, &f)
			case auditAUID:
				err = setUint(&p.AUID, &f)
			case auditGID:
				err = setUint(&p.GID, &f)
			case auditExe:
				err = setBytes(&p.Exe, &f)
			case auditComm:
				err = setBytes(&p.Comm, &f)
			case auditCwd:
				err = setBytes(&p.Cwd, &f)
			case auditArgs:
				err = addArg(&p.Args, &f)
			case auditFilePath:
				err = setBytes(&p.FilePath, &f)
			case auditDstAddr:
				err = setAddr(&addr, &f)
			case auditDstPort:
				err = setUint(&port, &f)
			case auditKey:
				err = setBytes(&p.Key, &f)
			case auditRaw:
				err = setBytes(&p.Raw, &f)
			}
			if err != nil {
				return decodeError(k, &f, err)
			}
		}
		p.DstAddr = addrPort(addr, port)
	case KindProcess:
		p := &e.Process
		for i < end {
			if i = readField(b, i, &f); i < 0 {
				return decodeError(k, &f, f.err)
			}
			switch f.num {
			case processAction:
				err = setUint(&p.Action, &f)
			case processPID:
				err = setUint(&p.PID, &f)
			case processPPID:
				err = setUint(&p.PPID, &f)
			case processUID:
				err = setUint(&p.UID, &f)
			case processGID:
				err = setUint(&p.GID, &f)
			case processLoginUID:
				err = setUint(&p.LoginUID, &f)
			case processCgroupID:
				err = setUint(&p.CgroupID, &f)
			case processExitCode:
				err = setSint32(&p.ExitCode, &f)
			case processDuration:
				err = setSint64(&p.DurationNs, &f)
			case processStart:
				err = setFixed(&p.StartNs, &f)
			case processComm:
				err = setBytes(&p.Comm, &f)
			case processFilename:
				err = setBytes(&p.Filename, &f)
			case processArgs:
				err = addArg(&p.Args, &f)
			}
			if err != nil {
				return decodeError(k, &f, err)
			}
		}
	case KindNetwork:
		p := &e.Network
		src, srcPort := p.Src.Addr(), p.Src.Port()
		dst, dstPort := p.Dst.Addr(), p.Dst.Port()
		for i < end {
			if i = readField(b, i, &f); i < 0 {
				return decodeError(k, &f, f.err)
			}
			switch f.num {
			case networkAction:
				err = setUint(&p.Action, &f)
			case networkTransport:
				err = setUint(&p.Transport, &f)
			case networkPID:
				err = setUint(&p.PID, &f)
			case networkUID:
				err = setUint(&p.UID, &f)
			case networkComm:
				err = setBytes(&p.Comm, &f)
			case networkSrcAddr:
				err = setAddr(&src, &f)
			case networkSrcPort:
				err = setUint(&srcPort, &f)
			case networkDstAddr:
				err = setAddr(&dst, &f)
			case networkDstPort:
				err = setUint(&dstPort, &f)
			case networkDuration:
				err = setSint64(&p.DurationNs, &f)
			case networkBytesSent:
				err = setUint(&p.BytesSent, &f)
			case networkBytesRecv:
				err = setUint(&p.BytesRecv, &f)
			}
			if err != nil {
				return decodeError(k, &f, err)
			}
		}
		p.Src = addrPort(src, srcPort)
		p.Dst = addrPort(dst, dstPort)
	case KindApp:
		p := &e.App
		for i < end {
			if i = readField(b, i, &f); i < 0 {
				return decodeError(k, &f, f.err)
			}
			switch f.num {
			case appRaw:
				err = setBytes(&p.Raw, &f)
			case appMessage:
				err = setBytes(&p.Message, &f)
			case appLevel:
				err = setBytes(&p.Level, &f)
			}
			if err != nil {
				return decodeError(k, &f, err)
			}
		}
	}
	return nil
}

// addrPort is netip.AddrPortFrom that keeps the zero AddrPort when both
// halves are zero.
func addrPort(a netip.Addr, port uint16) netip.AddrPort {
	if !a.IsValid() && port == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, port)
}

// decodeError adds the field and offset to err. It is kept apart from the
// decoding loops so that formatting, which allocates, stays off their path.
func decodeError(k Kind, f *field, err error) error {
	where := "event"
	if k != KindUnknown {
		where = k.String() + " payload"
	}
	if f.num == 0 {
		return fmt.Errorf("cannot decode event: %s field at offset %d: %w", where, f.at, err)
	}
	return fmt.Errorf("cannot decode event: %s field %d (wire type %d) at offset %d: %w", where, f.num, f.wire, f.at, err)
}
