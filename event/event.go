// Package event defines trawl's event model: one struct for every kind of
// record the node collects, a compact versioned binary encoding used inside
// frames, and an Elastic Common Schema (ECS) JSON rendering used by the file
// and Kafka sinks and by `trawl spool cat`.
//
// An Event is a reusable value. Variable-length fields are byte slices that
// alias whatever buffer the event was built from or decoded out of; the
// owner of that buffer decides how long the event stays valid. Reset keeps
// slice capacity so that a long-lived Event decodes and renders without heap
// allocation in steady state.
package event

import "net/netip"

// Kind says which payload of an Event is meaningful.
type Kind uint8

// Event kinds. The numeric values are part of the binary encoding and of the
// frame header: never renumber them.
const (
	KindUnknown Kind = 0
	KindFlow    Kind = 1 // NetFlow v5/v9, IPFIX, sFlow records
	KindSyslog  Kind = 2 // RFC 3164 / RFC 5424 messages
	KindAudit   Kind = 3 // Linux audit events (reassembled records)
	KindProcess Kind = 4 // process exec/exit (eBPF)
	KindNetwork Kind = 5 // TCP connect/accept/close (eBPF)
	KindApp     Kind = 6 // application logs (JSON lines)
	kindCount   Kind = 7
)

var kindNames = [kindCount]string{"unknown", "flow", "syslog", "audit", "process", "network", "app"}

// String returns the kind's lower-case name, as used in topic names
// (trawl.<kind>) and in the frame listing of `trawl spool stat`.
func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind is the inverse of Kind.String; it returns KindUnknown and false
// for a name it does not know.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n == s && i != 0 {
			return Kind(i), true
		}
	}
	return KindUnknown, false
}

// Flags mark how an event was received.
type Flags uint16

// Flag bits. Part of the binary encoding: never reuse a bit.
const (
	// FlagParseError means the input could not parse the message; the raw
	// text is kept (App.Raw, Syslog.Raw, ...) and the event is counted.
	FlagParseError Flags = 1 << 0
	// FlagTruncated means the message exceeded the input's size limit and
	// only its first bytes were kept.
	FlagTruncated Flags = 1 << 1
)

// FlowType names the export protocol a flow record came from.
type FlowType uint8

// Flow types, numbered as goflow2's FlowMessage.FlowType so protobuf output
// stays compatible.
const (
	FlowUnknown  FlowType = 0
	FlowSFlow5   FlowType = 1
	FlowNetFlow5 FlowType = 2
	FlowNetFlow9 FlowType = 3
	FlowIPFIX    FlowType = 4
)

// Flow is one flow record (goflow2 FlowMessage field set).
type Flow struct {
	Type           FlowType
	SamplingRate   uint64
	SequenceNum    uint32
	ObservationID  uint32 // v9 source id / IPFIX observation domain / sFlow agent sub-id
	TimeStartNs    int64
	TimeEndNs      int64
	Bytes          uint64
	Packets        uint64
	SrcAddr        netip.Addr
	DstAddr        netip.Addr
	NextHop        netip.Addr
	SamplerAddress netip.Addr // exporter / agent address
	SrcPort        uint16
	DstPort        uint16
	Proto          uint8
	TCPFlags       uint8
	IPTos          uint8
	Etype          uint16
	InIf           uint32
	OutIf          uint32
	SrcAS          uint32
	DstAS          uint32
	SrcMask        uint8
	DstMask        uint8
	VlanID         uint16
}

// Syslog is one syslog message. Time of the message is Event.Time.
type Syslog struct {
	Facility       uint8
	Severity       uint8
	Version        uint8 // 0 for RFC 3164, 1 for RFC 5424
	Hostname       []byte
	AppName        []byte // TAG for RFC 3164
	ProcID         []byte
	MsgID          []byte
	StructuredData []byte // RFC 5424 SD as received ("-" elided)
	Message        []byte
	Raw            []byte // the whole message; set when FlagParseError
}

// UnsetID marks a user or group id that is absent or unset, as the kernel
// writes auid=4294967295 for a task that never logged in. Audit events set
// UID, GID and AUID to UnsetID when the records carry none: the zero value
// would mean root. The JSON rendering omits unset ids.
const UnsetID uint32 = 1<<32 - 1

// Audit is one reassembled Linux audit event.
type Audit struct {
	Sequence   uint64
	RecordType uint16 // type of the first record (e.g. 1300 SYSCALL)
	Action     []byte // normalised action, e.g. "executed", "connected-to"
	Result     []byte // "success" / "fail"
	Syscall    []byte
	PID        uint32 // 0 when the record has none
	PPID       uint32 // 0 when the record has none
	UID        uint32 // UnsetID when the record has none
	AUID       uint32 // UnsetID when the record has none or it is unset
	GID        uint32 // UnsetID when the record has none
	Exe        []byte
	Comm       []byte
	Cwd        []byte
	Args       [][]byte
	FilePath   []byte
	DstAddr    netip.AddrPort
	Key        []byte
	Raw        []byte // the raw record text, records separated by '\n'
	// Title is the process title (PROCTITLE record): the command line with
	// its arguments joined by spaces, as ps shows it.
	Title []byte
	// UserName, AuditUserName and GroupName are the names of UID, AUID and
	// GID, resolved on the collecting host when the event was read (as
	// ausearch -i does); empty when the id has no local name.
	UserName      []byte
	AuditUserName []byte
	GroupName     []byte
	// ParentName and ParentExe are the parent's (PPID's) name and
	// executable from the process cache shared with the eBPF input; empty
	// when the parent is unknown.
	ParentName []byte
	ParentExe  []byte
}

// ProcessAction says what happened to a process.
type ProcessAction uint8

// Process actions.
const (
	ProcessUnknown ProcessAction = 0
	ProcessExec    ProcessAction = 1
	ProcessExit    ProcessAction = 2
)

// Process is a process lifecycle event from eBPF tracing.
type Process struct {
	Action     ProcessAction
	PID        uint32
	PPID       uint32
	UID        uint32
	GID        uint32
	LoginUID   uint32
	CgroupID   uint64
	ExitCode   int32
	DurationNs int64 // lifetime, on exit
	StartNs    int64 // process start time (boot-relative ns converted to unix ns)
	Comm       []byte
	Filename   []byte
	Args       [][]byte
	// ParentName and ParentExe are the parent's comm and executable;
	// ContainerID is the container the process runs in (from its cgroup
	// path); UserName and GroupName are the names of UID and GID. All are
	// looked up on the collecting host when the event is read, and empty
	// when unknown.
	ParentName  []byte
	ParentExe   []byte
	ContainerID []byte
	UserName    []byte
	GroupName   []byte
}

// NetworkAction says what happened to a connection.
type NetworkAction uint8

// Network actions.
const (
	NetworkUnknown NetworkAction = 0
	NetworkConnect NetworkAction = 1
	NetworkAccept  NetworkAction = 2
	NetworkClose   NetworkAction = 3
)

// Network is a TCP connection event from eBPF tracing.
//
// Src is the local end of the socket and Dst the peer, whatever the action;
// BytesSent went from Src to Dst and BytesRecv the other way. The JSON
// rendering relies on this to fill source.bytes and destination.bytes.
type Network struct {
	Action     NetworkAction
	Transport  uint8 // IP protocol number (6 = tcp)
	PID        uint32
	UID        uint32
	Comm       []byte
	Src        netip.AddrPort // local end
	Dst        netip.AddrPort // peer
	DurationNs int64          // connection lifetime, on close
	BytesSent  uint64         // Src to Dst
	BytesRecv  uint64         // Dst to Src
}

// App is one application log line (JSON lines input).
type App struct {
	Raw     []byte // the line as received (a JSON object unless FlagParseError)
	Message []byte // extracted "message"/"msg" when present
	Level   []byte // extracted "level"/"severity" when present
}

// Event is one collected record with the metadata every kind shares.
//
// Seq, Input and Observer are not part of the event's binary encoding: they
// are carried once per frame (see package frame) and filled in by readers.
type Event struct {
	Kind     Kind
	Flags    Flags
	Seq      uint64 // per-input sequence number, assigned by the framer
	RecvTime int64  // unix ns when trawl received it
	Time     int64  // unix ns the source gives (0 when unknown)
	Source   netip.AddrPort
	Input    []byte // input name (from the frame)
	Observer []byte // host name of the trawl node (from the frame)

	Flow    Flow
	Syslog  Syslog
	Audit   Audit
	Process Process
	Network Network
	App     App
}

// Reset zeroes every field of e so that it can be filled again. It keeps the
// capacity of Audit.Args and Process.Args, so a reused Event appends
// arguments without allocating, but drops every reference into old buffers
// so that a reset Event does not keep them alive.
func (e *Event) Reset() {
	aa, pa := e.Audit.Args, e.Process.Args
	clear(aa)
	clear(pa)
	*e = Event{}
	e.Audit.Args = aa[:0]
	e.Process.Args = pa[:0]
}

// Module returns the ECS event.module of an event of kind k: the input type
// that produced it. Flow events come from "netflow" (v5, v9, IPFIX) or
// "sflow", told apart by ft; ft is ignored for other kinds. The result is a
// constant string, fit for metric labels.
func (k Kind) Module(ft FlowType) string {
	switch k {
	case KindFlow:
		if ft == FlowSFlow5 {
			return "sflow"
		}
		return "netflow"
	case KindSyslog:
		return "syslog"
	case KindAudit:
		return "audit"
	case KindProcess, KindNetwork:
		return "ebpf"
	case KindApp:
		return "app"
	}
	return "unknown"
}

// Dataset returns the ECS event.dataset of an event of kind k,
// "<module>.<set>" (for example "netflow.flow", "ebpf.process"); ft is used
// as in [Kind.Module]. The result is a constant string.
func (k Kind) Dataset(ft FlowType) string {
	switch k {
	case KindFlow:
		if ft == FlowSFlow5 {
			return "sflow.flow"
		}
		return "netflow.flow"
	case KindSyslog:
		return "syslog.log"
	case KindAudit:
		return "audit.event"
	case KindProcess:
		return "ebpf.process"
	case KindNetwork:
		return "ebpf.network"
	case KindApp:
		return "app.log"
	}
	return "unknown.event"
}

// Module returns e's ECS event.module; see [Kind.Module].
func Module(e *Event) string { return e.Kind.Module(e.Flow.Type) }

// Dataset returns e's ECS event.dataset; see [Kind.Dataset].
func Dataset(e *Event) string { return e.Kind.Dataset(e.Flow.Type) }
