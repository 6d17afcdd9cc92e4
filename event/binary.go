package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
)

// Version is the first byte of every binary-encoded event that
// AppendBinary writes. A reader refuses a version it does not know; fields
// added within a version are skipped by older readers, so the version only
// changes when the meaning of an existing field does. Version 2 changed the
// flow payload from protobuf fields to a fixed layout (docs/encoding.md);
// DecodeBinary reads versions 1 and 2.
const Version = 2

// version1 is the encoding before Version 2, still read: its flow payload
// is protobuf fields like every other payload.
const version1 = 1

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
	auditTitle      = 20
	auditUserName   = 21
	auditAuditUser  = 22
	auditGroupName  = 23
	auditParentName = 24
	auditParentExe  = 25

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
	// Enrichment from the collecting host (added within version 1).
	processParentName = 14
	processParentExe  = 15
	processContainer  = 16
	processUserName   = 17
	processGroupName  = 18

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

// AppendBinary appends the binary encoding of e to dst and returns the
// extended slice. Seq, Input and Observer are not encoded (the frame header
// carries them), nor are the payloads of kinds other than e.Kind. Zero
// fields are omitted, netip zones are dropped, and arguments past MaxArgs
// are cut (the encoded flags then include FlagTruncated).
//
// It does not allocate when dst has room for an upper bound of the
// encoding (a few hundred bytes plus the event's byte fields), which a
// reused dst soon has; it does not retain dst or e.
func AppendBinary(dst []byte, e *Event) []byte {
	k := e.Kind
	flags := e.Flags
	// bound is an upper bound of the payload's size, so that dst grows at
	// most once and every write below is a plain indexed store. reserve is
	// the number of bytes left for the payload's length: the size of the
	// bound's varint, except for flow, whose bound is loose and whose usual
	// payload is shorter than 128 bytes, so it reserves one byte and
	// closePayload shifts the rare longer payload.
	var bound, reserve int
	switch k {
	case KindFlow:
		bound, reserve = maxFlowPayload, 1
	case KindSyslog:
		bound = syslogBound(&e.Syslog)
	case KindAudit:
		bound = auditBound(&e.Audit)
		if len(e.Audit.Args) > MaxArgs {
			flags |= FlagTruncated
		}
	case KindProcess:
		bound = processBound(&e.Process)
		if len(e.Process.Args) > MaxArgs {
			flags |= FlagTruncated
		}
	case KindNetwork:
		bound = maxNetworkScalars + bytesBound(e.Network.Comm)
	case KindApp:
		bound = bytesBound(e.App.Raw) + bytesBound(e.App.Message) + bytesBound(e.App.Level)
	}
	if reserve == 0 {
		reserve = varintLen(uint64(bound))
	}
	start := len(dst)
	need := maxCommonLen + 2 + binary.MaxVarintLen64 + bound
	b := slices.Grow(dst, need)[:start+need]

	b[start] = Version
	i := start + 1
	i = putUint(b, i, fieldKind<<3|wireVarint, uint64(k))
	i = putUint(b, i, fieldFlags<<3|wireVarint, uint64(flags))
	i = putFixed(b, i, fieldRecvTime<<3|wireFixed64, e.RecvTime)
	i = putFixed(b, i, fieldTime<<3|wireFixed64, e.Time)
	if a := e.Source.Addr(); a.Is4() {
		i = putAddr4(b, i, fieldSourceAddr<<3|wireBytes, a.As4())
	} else {
		i = putAddr(b, i, fieldSourceAddr<<3|wireBytes, a)
	}
	i = putUint(b, i, fieldSourcePort<<3|wireVarint, uint64(e.Source.Port()))
	if k == KindUnknown || k >= kindCount {
		return b[:i]
	}

	keyAt := i
	// Payload fields are numbered 17 to 22: their keys take two bytes.
	lenAt := putKey2(b, i, (fieldPayload+uint32(k))<<3|wireBytes)
	i = lenAt + reserve
	switch k {
	case KindFlow:
		i = putFlowPacked(b, i, &e.Flow)
	case KindSyslog:
		i = putSyslog(b, i, &e.Syslog)
	case KindAudit:
		i = putAudit(b, i, &e.Audit)
	case KindProcess:
		i = putProcess(b, i, &e.Process)
	case KindNetwork:
		i = putNetwork(b, i, &e.Network)
	case KindApp:
		i = putApp(b, i, &e.App)
	}
	return closePayload(b, keyAt, lenAt, reserve, i)
}

// closePayload writes the length of the payload b[lenAt+reserved:end]
// into the reserved bytes at lenAt, moving the payload when its minimal
// varint length needs a different number of bytes (the encoding is
// canonical), or removes the payload key when nothing was written, so that
// an all-zero payload costs nothing. b must have room for the payload to
// move by up to binary.MaxVarintLen64 bytes.
func closePayload(b []byte, keyAt, lenAt, reserved, end int) []byte {
	n := end - lenAt - reserved
	if n == 0 {
		return b[:keyAt]
	}
	if n < 0x80 && reserved == 1 {
		b[lenAt] = byte(n)
		return b[:end]
	}
	if s := varintLen(uint64(n)); s != reserved {
		copy(b[lenAt+s:], b[lenAt+reserved:end])
		end += s - reserved
	}
	putVarint(b, lenAt, uint64(n))
	return b[:end]
}

// Upper bounds of encoded sizes, for AppendBinary's single reservation.
const (
	// maxFieldLen bounds any scalar or address field: a key of at most two
	// bytes (field numbers below 2048) and at most 17 bytes of value (an
	// IPv6 address with its length byte; a varint takes at most 10).
	maxFieldLen = 2 + 1 + 16
	// maxCommonLen bounds the version byte and the common fields:
	// kind (key + 2-byte varint), flags (key + 3), two fixed64 times,
	// source address (key + length + 16) and port (key + 3).
	maxCommonLen = 1 + 3 + 4 + 2*9 + 18 + 4
	// maxFlowPayload bounds a flow payload: the packed head and four IPv6
	// addresses.
	maxFlowPayload = packedFlowHead + 4*16
	// maxNetworkScalars bounds a network payload without Comm: 11 fields.
	maxNetworkScalars = 11 * maxFieldLen
	// maxAuditScalars and maxProcessScalars bound those payloads without
	// their byte fields and arguments.
	maxAuditScalars   = 10 * maxFieldLen
	maxProcessScalars = 10 * maxFieldLen
	// maxSyslogScalars bounds facility, severity and version: one-byte
	// keys and uint8 values of at most two varint bytes.
	maxSyslogScalars = 3 * (1 + 2)
)

// bytesBound bounds a length-delimited field holding v: a key of at most
// two bytes, v's length and v. An empty v is counted though it is omitted.
func bytesBound(v []byte) int { return 2 + varintLen(uint64(len(v))) + len(v) }

func syslogBound(s *Syslog) int {
	return maxSyslogScalars + bytesBound(s.Hostname) + bytesBound(s.AppName) +
		bytesBound(s.ProcID) + bytesBound(s.MsgID) + bytesBound(s.StructuredData) +
		bytesBound(s.Message) + bytesBound(s.Raw)
}

func auditBound(a *Audit) int {
	return maxAuditScalars + bytesBound(a.Action) + bytesBound(a.Result) +
		bytesBound(a.Syscall) + bytesBound(a.Exe) + bytesBound(a.Comm) + bytesBound(a.Cwd) +
		bytesBound(a.FilePath) + bytesBound(a.Key) + bytesBound(a.Raw) + argsBound(a.Args) +
		bytesBound(a.Title) + bytesBound(a.UserName) + bytesBound(a.AuditUserName) + bytesBound(a.GroupName) +
		bytesBound(a.ParentName) + bytesBound(a.ParentExe)
}

func processBound(p *Process) int {
	return maxProcessScalars + bytesBound(p.Comm) + bytesBound(p.Filename) + argsBound(p.Args) +
		bytesBound(p.ParentName) + bytesBound(p.ParentExe) + bytesBound(p.ContainerID) +
		bytesBound(p.UserName) + bytesBound(p.GroupName)
}

func argsBound(args [][]byte) int {
	n := 0
	for _, a := range args[:min(len(args), MaxArgs)] {
		n += bytesBound(a)
	}
	return n
}

// The put* functions write a field at b[i:] and return the offset after
// it; zero scalars, empty byte fields and the zero Addr are omitted. b must
// have room (AppendBinary reserved an upper bound), so they store by index
// instead of appending: no capacity check and slice update per field, and
// the small ones inline. Fields numbered below 16 have one-byte keys, which
// the put functions take as a constant byte (num<<3 | wire type); the
// put*2 variants take the key of a field numbered 16 to 2047, which is two
// bytes.
//
// IPv4 addresses on the hot paths are written as
//
//	if a := addr; a.Is4() { putAddr4(..., a.As4()) } else { putAddr(...) }
//
// which the compiler inlines, where putAddr is a call.

// packedFlowHead is the fixed part of a version 2 flow payload; the
// addresses follow it.
const packedFlowHead = 80

// putFlowPacked writes the version 2 flow payload: every scalar at a fixed
// offset, then the addresses that are set (docs/encoding.md, "Flow payload").
// A fixed layout costs a few stores per flow where 25 protobuf fields cost a
// key and a varint each, which made encoding the biggest part of a flow's
// CPU in trawl (about 36% of the node at 2.4M v5 flows/s).
func putFlowPacked(b []byte, i int, f *Flow) int {
	h := b[i : i+packedFlowHead]
	j := i + packedFlowHead
	var codes, c byte
	j, codes = putPackedAddr(b, j, f.SrcAddr)
	j, c = putPackedAddr(b, j, f.DstAddr)
	codes |= c << 2
	j, c = putPackedAddr(b, j, f.NextHop)
	codes |= c << 4
	j, c = putPackedAddr(b, j, f.SamplerAddress)
	codes |= c << 6
	binary.LittleEndian.PutUint64(h[0:], uint64(codes)|uint64(f.Type)<<8|uint64(f.Proto)<<16|
		uint64(f.TCPFlags)<<24|uint64(f.IPTos)<<32|uint64(f.SrcMask)<<40|uint64(f.DstMask)<<48)
	binary.LittleEndian.PutUint64(h[8:], uint64(f.SrcPort)|uint64(f.DstPort)<<16|
		uint64(f.Etype)<<32|uint64(f.VlanID)<<48)
	binary.LittleEndian.PutUint64(h[16:], uint64(f.InIf)|uint64(f.OutIf)<<32)
	binary.LittleEndian.PutUint64(h[24:], uint64(f.SrcAS)|uint64(f.DstAS)<<32)
	binary.LittleEndian.PutUint64(h[32:], uint64(f.SequenceNum)|uint64(f.ObservationID)<<32)
	binary.LittleEndian.PutUint64(h[40:], f.SamplingRate)
	binary.LittleEndian.PutUint64(h[48:], uint64(f.TimeStartNs))
	binary.LittleEndian.PutUint64(h[56:], uint64(f.TimeEndNs))
	binary.LittleEndian.PutUint64(h[64:], f.Bytes)
	binary.LittleEndian.PutUint64(h[72:], f.Packets)
	return j
}

// Address codes of the packed flow payload, two bits per address.
const (
	packedNoAddr = 0
	packedAddr4  = 1
	packedAddr16 = 2
)

// putPackedAddr writes a packed flow address at b[j:] and returns the end
// and its code: IPv4 as 4 bytes, any IPv6 (IPv4-mapped too) as 16, none as
// nothing.
func putPackedAddr(b []byte, j int, a netip.Addr) (int, byte) {
	if a.Is4() {
		v := a.As4()
		copy(b[j:j+4], v[:])
		return j + 4, packedAddr4
	}
	if !a.IsValid() {
		return j, packedNoAddr
	}
	// In the two halves As16 stores it in (see putAddrValue).
	v := a.As16()
	le := binary.LittleEndian
	le.PutUint64(b[j:], le.Uint64(v[:8]))
	le.PutUint64(b[j+8:], le.Uint64(v[8:]))
	return j + 16, packedAddr16
}

func putSyslog(b []byte, i int, s *Syslog) int {
	i = putUint(b, i, syslogFacility<<3|wireVarint, uint64(s.Facility))
	i = putUint(b, i, syslogSeverity<<3|wireVarint, uint64(s.Severity))
	i = putUint(b, i, syslogVersion<<3|wireVarint, uint64(s.Version))
	i = putBytes(b, i, syslogHostname<<3|wireBytes, s.Hostname)
	i = putBytes(b, i, syslogAppName<<3|wireBytes, s.AppName)
	i = putBytes(b, i, syslogProcID<<3|wireBytes, s.ProcID)
	i = putBytes(b, i, syslogMsgID<<3|wireBytes, s.MsgID)
	i = putBytes(b, i, syslogStructuredData<<3|wireBytes, s.StructuredData)
	i = putBytes(b, i, syslogMessage<<3|wireBytes, s.Message)
	i = putBytes(b, i, syslogRaw<<3|wireBytes, s.Raw)
	return i
}

func putAudit(b []byte, i int, a *Audit) int {
	i = putUint(b, i, auditSequence<<3|wireVarint, a.Sequence)
	i = putUint(b, i, auditRecordType<<3|wireVarint, uint64(a.RecordType))
	i = putBytes(b, i, auditAction<<3|wireBytes, a.Action)
	i = putBytes(b, i, auditResult<<3|wireBytes, a.Result)
	i = putBytes(b, i, auditSyscall<<3|wireBytes, a.Syscall)
	i = putUint(b, i, auditPID<<3|wireVarint, uint64(a.PID))
	i = putUint(b, i, auditPPID<<3|wireVarint, uint64(a.PPID))
	i = putUint(b, i, auditUID<<3|wireVarint, uint64(a.UID))
	i = putUint(b, i, auditAUID<<3|wireVarint, uint64(a.AUID))
	i = putUint(b, i, auditGID<<3|wireVarint, uint64(a.GID))
	i = putBytes(b, i, auditExe<<3|wireBytes, a.Exe)
	i = putBytes(b, i, auditComm<<3|wireBytes, a.Comm)
	i = putBytes(b, i, auditCwd<<3|wireBytes, a.Cwd)
	i = putArgs(b, i, auditArgs<<3|wireBytes, a.Args)
	i = putBytes(b, i, auditFilePath<<3|wireBytes, a.FilePath)
	i = putAddr2(b, i, auditDstAddr<<3|wireBytes, a.DstAddr.Addr())
	i = putUint2(b, i, auditDstPort<<3|wireVarint, uint64(a.DstAddr.Port()))
	i = putBytes2(b, i, auditKey<<3|wireBytes, a.Key)
	i = putBytes2(b, i, auditRaw<<3|wireBytes, a.Raw)
	i = putBytes2(b, i, auditTitle<<3|wireBytes, a.Title)
	i = putBytes2(b, i, auditUserName<<3|wireBytes, a.UserName)
	i = putBytes2(b, i, auditAuditUser<<3|wireBytes, a.AuditUserName)
	i = putBytes2(b, i, auditGroupName<<3|wireBytes, a.GroupName)
	i = putBytes2(b, i, auditParentName<<3|wireBytes, a.ParentName)
	i = putBytes2(b, i, auditParentExe<<3|wireBytes, a.ParentExe)
	return i
}

func putProcess(b []byte, i int, p *Process) int {
	i = putUint(b, i, processAction<<3|wireVarint, uint64(p.Action))
	i = putUint(b, i, processPID<<3|wireVarint, uint64(p.PID))
	i = putUint(b, i, processPPID<<3|wireVarint, uint64(p.PPID))
	i = putUint(b, i, processUID<<3|wireVarint, uint64(p.UID))
	i = putUint(b, i, processGID<<3|wireVarint, uint64(p.GID))
	i = putUint(b, i, processLoginUID<<3|wireVarint, uint64(p.LoginUID))
	i = putUint(b, i, processCgroupID<<3|wireVarint, p.CgroupID)
	i = putUint(b, i, processExitCode<<3|wireVarint, uint64(zigzag32(p.ExitCode)))
	i = putUint(b, i, processDuration<<3|wireVarint, zigzag64(p.DurationNs))
	i = putFixed(b, i, processStart<<3|wireFixed64, p.StartNs)
	i = putBytes(b, i, processComm<<3|wireBytes, p.Comm)
	i = putBytes(b, i, processFilename<<3|wireBytes, p.Filename)
	i = putArgs(b, i, processArgs<<3|wireBytes, p.Args)
	i = putBytes(b, i, processParentName<<3|wireBytes, p.ParentName)
	i = putBytes(b, i, processParentExe<<3|wireBytes, p.ParentExe)
	i = putBytes2(b, i, processContainer<<3|wireBytes, p.ContainerID)
	i = putBytes2(b, i, processUserName<<3|wireBytes, p.UserName)
	i = putBytes2(b, i, processGroupName<<3|wireBytes, p.GroupName)
	return i
}

func putNetwork(b []byte, i int, n *Network) int {
	i = putUint(b, i, networkAction<<3|wireVarint, uint64(n.Action))
	i = putUint(b, i, networkTransport<<3|wireVarint, uint64(n.Transport))
	i = putUint(b, i, networkPID<<3|wireVarint, uint64(n.PID))
	i = putUint(b, i, networkUID<<3|wireVarint, uint64(n.UID))
	i = putBytes(b, i, networkComm<<3|wireBytes, n.Comm)
	if a := n.Src.Addr(); a.Is4() {
		i = putAddr4(b, i, networkSrcAddr<<3|wireBytes, a.As4())
	} else {
		i = putAddr(b, i, networkSrcAddr<<3|wireBytes, a)
	}
	i = putUint(b, i, networkSrcPort<<3|wireVarint, uint64(n.Src.Port()))
	if a := n.Dst.Addr(); a.Is4() {
		i = putAddr4(b, i, networkDstAddr<<3|wireBytes, a.As4())
	} else {
		i = putAddr(b, i, networkDstAddr<<3|wireBytes, a)
	}
	i = putUint(b, i, networkDstPort<<3|wireVarint, uint64(n.Dst.Port()))
	i = putUint(b, i, networkDuration<<3|wireVarint, zigzag64(n.DurationNs))
	i = putUint(b, i, networkBytesSent<<3|wireVarint, n.BytesSent)
	i = putUint(b, i, networkBytesRecv<<3|wireVarint, n.BytesRecv)
	return i
}

func putApp(b []byte, i int, a *App) int {
	i = putBytes(b, i, appRaw<<3|wireBytes, a.Raw)
	i = putBytes(b, i, appMessage<<3|wireBytes, a.Message)
	i = putBytes(b, i, appLevel<<3|wireBytes, a.Level)
	return i
}

// varintLen returns the size of v as a varint, without a loop.
func varintLen(v uint64) int { return (bits.Len64(v|1)*9 + 64) / 64 }

func putVarint(b []byte, i int, v uint64) int {
	for v >= 0x80 {
		b[i] = byte(v) | 0x80
		v >>= 7
		i++
	}
	b[i] = byte(v)
	return i + 1
}

func putKey2(b []byte, i int, key uint32) int {
	b[i] = byte(key) | 0x80
	b[i+1] = byte(key >> 7)
	return i + 2
}

func putUint(b []byte, i int, key byte, v uint64) int {
	if v == 0 {
		return i
	}
	b[i] = key
	return putVarint(b, i+1, v)
}

func putUint2(b []byte, i int, key uint32, v uint64) int {
	if v == 0 {
		return i
	}
	return putVarint(b, putKey2(b, i, key), v)
}

func putFixed(b []byte, i int, key byte, v int64) int {
	if v == 0 {
		return i
	}
	b[i] = key
	binary.LittleEndian.PutUint64(b[i+1:], uint64(v))
	return i + 9
}

func putBytes(b []byte, i int, key byte, v []byte) int {
	if len(v) == 0 {
		return i
	}
	b[i] = key
	i = putVarint(b, i+1, uint64(len(v)))
	return i + copy(b[i:], v)
}

func putBytes2(b []byte, i int, key uint32, v []byte) int {
	if len(v) == 0 {
		return i
	}
	i = putVarint(b, putKey2(b, i, key), uint64(len(v)))
	return i + copy(b[i:], v)
}

// putArgs writes every argument, empty ones too, so that their number and
// positions survive; at most MaxArgs are written.
func putArgs(b []byte, i int, key byte, args [][]byte) int {
	for _, a := range args[:min(len(args), MaxArgs)] {
		b[i] = key
		i = putVarint(b, i+1, uint64(len(a)))
		i += copy(b[i:], a)
	}
	return i
}

// putAddr4 writes an IPv4 address field with one-byte key key.
func putAddr4(b []byte, i int, key byte, v [4]byte) int {
	b[i] = key
	b[i+1] = 4
	copy(b[i+2:i+6], v[:])
	return i + 6
}

// putAddr writes an address field with one-byte key key: an IPv4 address
// as 4 bytes and any IPv6 address, IPv4-mapped ones included, as 16, so
// the address family round-trips. The zero Addr is omitted.
func putAddr(b []byte, i int, key byte, a netip.Addr) int {
	if !a.IsValid() {
		return i
	}
	b[i] = key
	return putAddrValue(b, i+1, a)
}

// putAddr2 is putAddr for a field numbered 16 to 2047.
func putAddr2(b []byte, i int, key uint32, a netip.Addr) int {
	if !a.IsValid() {
		return i
	}
	return putAddrValue(b, putKey2(b, i, key), a)
}

// putAddrValue writes the length and bytes of a valid address. It copies
// As16's array in the two 8-byte halves As16 stores it in: one 16-byte load
// of bytes just stored as two pieces stalls the CPU (store-to-load
// forwarding fails), which profiling showed to be most of an address's
// cost.
func putAddrValue(b []byte, i int, a netip.Addr) int {
	if a.Is4() {
		v := a.As4()
		b[i] = 4
		copy(b[i+1:i+5], v[:])
		return i + 5
	}
	v := a.As16()
	b[i] = 16
	le := binary.LittleEndian
	le.PutUint64(b[i+1:], le.Uint64(v[:8]))
	le.PutUint64(b[i+9:], le.Uint64(v[8:]))
	return i + 17
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
	version := b[0]
	if version != Version && version != version1 {
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
			if payload == KindFlow && version != version1 {
				if err := decodeFlowPacked(&e.Flow, f.data); err != nil {
					return fmt.Errorf("cannot decode event: flow payload at offset %d: %w", i-len(f.data), err)
				}
				break
			}
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

// decodeFlowPacked decodes a version 2 flow payload (putFlowPacked). Its
// length must be exactly the head and the addresses its codes announce, and
// the reserved byte 0, so that every payload has one encoding.
func decodeFlowPacked(p *Flow, b []byte) error {
	if len(b) < packedFlowHead {
		return fmt.Errorf("%d bytes, shorter than the %d-byte head: %w", len(b), packedFlowHead, errTruncated)
	}
	le := binary.LittleEndian
	codes := b[0]
	if b[7] != 0 {
		return fmt.Errorf("reserved byte 7 is %d: %w", b[7], errRange)
	}
	p.Type = FlowType(b[1])
	p.Proto, p.TCPFlags, p.IPTos, p.SrcMask, p.DstMask = b[2], b[3], b[4], b[5], b[6]
	p.SrcPort, p.DstPort = le.Uint16(b[8:]), le.Uint16(b[10:])
	p.Etype, p.VlanID = le.Uint16(b[12:]), le.Uint16(b[14:])
	p.InIf, p.OutIf = le.Uint32(b[16:]), le.Uint32(b[20:])
	p.SrcAS, p.DstAS = le.Uint32(b[24:]), le.Uint32(b[28:])
	p.SequenceNum, p.ObservationID = le.Uint32(b[32:]), le.Uint32(b[36:])
	p.SamplingRate = le.Uint64(b[40:])
	p.TimeStartNs, p.TimeEndNs = int64(le.Uint64(b[48:])), int64(le.Uint64(b[56:]))
	p.Bytes, p.Packets = le.Uint64(b[64:]), le.Uint64(b[72:])
	j := packedFlowHead
	var err error
	if j, err = packedAddr(&p.SrcAddr, b, j, codes); err != nil {
		return err
	}
	if j, err = packedAddr(&p.DstAddr, b, j, codes>>2); err != nil {
		return err
	}
	if j, err = packedAddr(&p.NextHop, b, j, codes>>4); err != nil {
		return err
	}
	if j, err = packedAddr(&p.SamplerAddress, b, j, codes>>6); err != nil {
		return err
	}
	if j != len(b) {
		return fmt.Errorf("%d bytes, the head and addresses take %d: %w", len(b), j, errRange)
	}
	return nil
}

// packedAddr reads the address whose code is the low two bits of code at
// b[j:] into a and returns the offset after it.
func packedAddr(a *netip.Addr, b []byte, j int, code byte) (int, error) {
	switch code & 3 {
	case packedNoAddr:
		*a = netip.Addr{}
		return j, nil
	case packedAddr4:
		if len(b)-j < 4 {
			return 0, errTruncated
		}
		*a = netip.AddrFrom4([4]byte(b[j : j+4]))
		return j + 4, nil
	case packedAddr16:
		if len(b)-j < 16 {
			return 0, errTruncated
		}
		*a = netip.AddrFrom16([16]byte(b[j : j+16]))
		return j + 16, nil
	}
	return 0, fmt.Errorf("address code 3: %w", errRange)
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
			case auditTitle:
				err = setBytes(&p.Title, &f)
			case auditUserName:
				err = setBytes(&p.UserName, &f)
			case auditAuditUser:
				err = setBytes(&p.AuditUserName, &f)
			case auditGroupName:
				err = setBytes(&p.GroupName, &f)
			case auditParentName:
				err = setBytes(&p.ParentName, &f)
			case auditParentExe:
				err = setBytes(&p.ParentExe, &f)
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
			case processParentName:
				err = setBytes(&p.ParentName, &f)
			case processParentExe:
				err = setBytes(&p.ParentExe, &f)
			case processContainer:
				err = setBytes(&p.ContainerID, &f)
			case processUserName:
				err = setBytes(&p.UserName, &f)
			case processGroupName:
				err = setBytes(&p.GroupName, &f)
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
