package event

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e rendered as one Elastic Common Schema (ECS) JSON
// object to dst and returns the extended slice. The object uses nested
// objects, not dotted keys, has no trailing newline, and repeats no key
// (inside "app" the application's object is as it came). Field names and
// their sources are listed in docs/encoding.md.
//
// Every string is escaped for arbitrary bytes: invalid UTF-8 becomes
// U+FFFD and control characters are escaped, so the output is valid JSON
// whatever the event holds, with one exception: for KindApp without
// FlagParseError, App.Raw is embedded verbatim under "app", and the input
// that built the event must have checked that it is one JSON object valid
// by RFC 8259, not only by fastjson's lenient parser, which lets raw control
// characters ([ControlInString]), bad escapes and malformed numbers through.
//
// It does not allocate when dst has room; it does not retain dst or e.
func AppendJSON(dst []byte, e *Event) []byte {
	ts := e.Time
	if ts == 0 {
		ts = e.RecvTime
	}
	dst = append(dst, `{"@timestamp":`...)
	dst = appendTimeValue(dst, ts)
	dst = appendMessage(dst, e)
	dst = appendEventObject(dst, e)

	m := len(dst)
	dst = append(dst, `"observer":{`...)
	if len(e.Observer) > 0 {
		dst = jsonString(dst, `"hostname":`, e.Observer)
	}
	if e.Kind == KindFlow {
		// A flow's exporter observed it; source is the flow's own source.
		dst = jsonIP(dst, `"ip":`, e.Source.Addr())
	}
	dst = closeObject(dst, m)

	dst = append(dst, `"trawl":{`...)
	if len(e.Input) > 0 {
		dst = jsonString(dst, `"input":`, e.Input)
	}
	dst = jsonUint(dst, `"seq":`, e.Seq)
	if e.Flags != 0 {
		dst = appendFlags(dst, e.Flags)
	}
	dst = closeObject(dst, 0)

	switch e.Kind {
	case KindFlow:
		dst = appendFlowJSON(dst, e)
	case KindSyslog:
		dst = appendSourceJSON(dst, e.Source)
		dst = appendSyslogJSON(dst, e)
	case KindAudit:
		dst = appendSourceJSON(dst, e.Source)
		dst = appendAuditJSON(dst, &e.Audit)
	case KindProcess:
		dst = appendSourceJSON(dst, e.Source)
		dst = appendProcessJSON(dst, &e.Process)
	case KindNetwork:
		dst = appendNetworkJSON(dst, &e.Network)
	case KindApp:
		dst = appendSourceJSON(dst, e.Source)
		dst = appendAppJSON(dst, e)
	default:
		dst = appendSourceJSON(dst, e.Source)
	}
	// Every field ends with a comma; the last one becomes the closing brace.
	dst[len(dst)-1] = '}'
	return dst
}

// appendMessage writes the top-level "message": the parsed message, or the
// raw text when parsing failed and nothing better was extracted.
func appendMessage(dst []byte, e *Event) []byte {
	var msg []byte
	switch e.Kind {
	case KindSyslog:
		msg = e.Syslog.Message
	case KindApp:
		msg = e.App.Message
	}
	if len(msg) == 0 && e.Flags&FlagParseError != 0 {
		msg = original(e)
	}
	if len(msg) == 0 {
		return dst
	}
	return jsonString(dst, `"message":`, msg)
}

// original returns the raw text an event kind keeps for unparsable input.
func original(e *Event) []byte {
	switch e.Kind {
	case KindSyslog:
		return e.Syslog.Raw
	case KindAudit:
		return e.Audit.Raw
	case KindApp:
		return e.App.Raw
	}
	return nil
}

func appendEventObject(dst []byte, e *Event) []byte {
	dst = append(dst, `"event":{"kind":"event","module":"`...)
	dst = append(dst, Module(e)...)
	dst = append(dst, `","dataset":"`...)
	dst = append(dst, Dataset(e)...)
	dst = append(dst, `",`...)
	switch e.Kind {
	case KindFlow:
		dst = append(dst, `"category":["network"],"type":["connection"],`...)
		f := &e.Flow
		if f.TimeStartNs != 0 {
			dst = jsonTime(dst, `"start":`, f.TimeStartNs)
		}
		if f.TimeEndNs != 0 {
			dst = jsonTime(dst, `"end":`, f.TimeEndNs)
		}
		// A negative difference is a bad record or an overflow: no duration.
		if d := f.TimeEndNs - f.TimeStartNs; f.TimeStartNs != 0 && f.TimeEndNs != 0 && d >= 0 {
			dst = jsonInt(dst, `"duration":`, d)
		}
	case KindAudit:
		a := &e.Audit
		if len(a.Action) > 0 {
			dst = jsonString(dst, `"action":`, a.Action)
		}
		if len(a.Result) > 0 {
			dst = append(dst, `"outcome":"`...)
			dst = append(dst, outcome(a.Result)...)
			dst = append(dst, `",`...)
		}
	case KindProcess:
		p := &e.Process
		dst = append(dst, `"category":["process"],`...)
		switch p.Action {
		case ProcessExec:
			dst = append(dst, `"action":"exec","type":["start"],`...)
		case ProcessExit:
			dst = append(dst, `"action":"exit","type":["end"],`...)
		}
		if p.DurationNs != 0 {
			dst = jsonInt(dst, `"duration":`, p.DurationNs)
		}
	case KindNetwork:
		n := &e.Network
		dst = append(dst, `"category":["network"],`...)
		switch n.Action {
		case NetworkConnect:
			dst = append(dst, `"action":"connect","type":["connection","start"],`...)
		case NetworkAccept:
			dst = append(dst, `"action":"accept","type":["connection","start"],`...)
		case NetworkClose:
			dst = append(dst, `"action":"close","type":["connection","end"],`...)
		}
		if n.DurationNs != 0 {
			dst = jsonInt(dst, `"duration":`, n.DurationNs)
		}
	}
	if e.RecvTime != 0 {
		dst = jsonTime(dst, `"created":`, e.RecvTime)
	}
	dst = jsonUint(dst, `"sequence":`, e.Seq)
	if e.Flags&FlagParseError != 0 {
		if raw := original(e); len(raw) > 0 {
			dst = jsonString(dst, `"original":`, raw)
		}
	}
	return closeObject(dst, 0)
}

// outcome maps an audit result to ECS event.outcome's allowed values.
func outcome(result []byte) string {
	switch string(result) {
	case "success", "yes":
		return "success"
	case "fail", "failed", "failure", "no":
		return "failure"
	}
	return "unknown"
}

var flagNames = [16]string{0: "parse_error", 1: "truncated"}

func appendFlags(dst []byte, fl Flags) []byte {
	dst = append(dst, `"flags":[`...)
	for bit := 0; bit < 16; bit++ {
		if fl&(1<<bit) == 0 {
			continue
		}
		dst = append(dst, '"')
		if name := flagNames[bit]; name != "" {
			dst = append(dst, name...)
		} else {
			dst = append(dst, "bit"...)
			dst = strconv.AppendInt(dst, int64(bit), 10)
		}
		dst = append(dst, '"', ',')
	}
	return closeArray(dst)
}

// appendSourceJSON writes the sender of a syslog, app, audit or process
// event as "source" when it is known.
func appendSourceJSON(dst []byte, s netip.AddrPort) []byte {
	if !s.Addr().IsValid() {
		return dst
	}
	dst = append(dst, `"source":{`...)
	dst = jsonIP(dst, `"ip":`, s.Addr())
	if s.Port() != 0 {
		dst = jsonUint(dst, `"port":`, uint64(s.Port()))
	}
	return closeObject(dst, 0)
}

// appendEndpoint writes a source or destination object; bytes is written
// when withBytes is set.
func appendEndpoint(dst []byte, key string, a netip.Addr, port uint16, withBytes bool, bytes uint64) []byte {
	m := len(dst)
	dst = append(dst, key...)
	dst = jsonIP(dst, `"ip":`, a)
	if port != 0 {
		dst = jsonUint(dst, `"port":`, uint64(port))
	}
	if withBytes {
		dst = jsonUint(dst, `"bytes":`, bytes)
	}
	return closeObject(dst, m)
}

var transportNames = [256]string{
	1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre", 50: "esp",
	51: "ah", 58: "ipv6-icmp", 89: "ospf", 103: "pim", 112: "vrrp", 132: "sctp",
}

// appendTransport writes network.transport (the IANA keyword, or the number
// when it has none here) and network.iana_number (a keyword in ECS).
func appendTransport(dst []byte, proto uint8) []byte {
	dst = append(dst, `"transport":"`...)
	if name := transportNames[proto]; name != "" {
		dst = append(dst, name...)
	} else {
		dst = strconv.AppendUint(dst, uint64(proto), 10)
	}
	dst = append(dst, `","iana_number":"`...)
	dst = strconv.AppendUint(dst, uint64(proto), 10)
	return append(dst, `",`...)
}

var flowTypeNames = [...]string{
	FlowUnknown:  "UNKNOWN",
	FlowSFlow5:   "SFLOW_5",
	FlowNetFlow5: "NETFLOW_V5",
	FlowNetFlow9: "NETFLOW_V9",
	FlowIPFIX:    "IPFIX",
}

func appendFlowJSON(dst []byte, e *Event) []byte {
	f := &e.Flow
	dst = appendEndpoint(dst, `"source":{`, f.SrcAddr, f.SrcPort, false, 0)
	dst = appendEndpoint(dst, `"destination":{`, f.DstAddr, f.DstPort, false, 0)

	dst = append(dst, `"network":{`...)
	if f.Proto != 0 {
		dst = appendTransport(dst, f.Proto)
	}
	switch f.Etype {
	case 0x0800:
		dst = append(dst, `"type":"ipv4",`...)
	case 0x86dd:
		dst = append(dst, `"type":"ipv6",`...)
	}
	dst = jsonUint(dst, `"bytes":`, f.Bytes)
	dst = jsonUint(dst, `"packets":`, f.Packets)
	dst = closeObject(dst, 0)

	dst = append(dst, `"netflow":{"type":"`...)
	if int(f.Type) < len(flowTypeNames) {
		dst = append(dst, flowTypeNames[f.Type]...)
	} else {
		dst = append(dst, "UNKNOWN_"...)
		dst = strconv.AppendUint(dst, uint64(f.Type), 10)
	}
	dst = append(dst, `",`...)
	if e.Source.Addr().IsValid() {
		dst = append(dst, `"exporter":"`...)
		dst = netip.AddrPortFrom(e.Source.Addr().Unmap(), e.Source.Port()).AppendTo(dst)
		dst = append(dst, `",`...)
	}
	dst = jsonIP(dst, `"sampler_address":`, f.SamplerAddress)
	dst = jsonNonZero(dst, `"sampling_rate":`, f.SamplingRate)
	dst = jsonNonZero(dst, `"sequence_num":`, uint64(f.SequenceNum))
	dst = jsonNonZero(dst, `"observation_domain_id":`, uint64(f.ObservationID))
	dst = jsonNonZero(dst, `"in_if":`, uint64(f.InIf))
	dst = jsonNonZero(dst, `"out_if":`, uint64(f.OutIf))
	dst = jsonNonZero(dst, `"src_as":`, uint64(f.SrcAS))
	dst = jsonNonZero(dst, `"dst_as":`, uint64(f.DstAS))
	dst = jsonIP(dst, `"next_hop":`, f.NextHop)
	dst = jsonNonZero(dst, `"tcp_flags":`, uint64(f.TCPFlags))
	dst = jsonNonZero(dst, `"ip_tos":`, uint64(f.IPTos))
	dst = jsonNonZero(dst, `"etype":`, uint64(f.Etype))
	dst = jsonNonZero(dst, `"src_mask":`, uint64(f.SrcMask))
	dst = jsonNonZero(dst, `"dst_mask":`, uint64(f.DstMask))
	dst = jsonPrefix(dst, `"src_net":`, f.SrcAddr, f.SrcMask)
	dst = jsonPrefix(dst, `"dst_net":`, f.DstAddr, f.DstMask)
	dst = jsonNonZero(dst, `"vlan_id":`, uint64(f.VlanID))
	return closeObject(dst, 0)
}

var facilityNames = [24]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
	"authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

var severityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

func appendSyslogJSON(dst []byte, e *Event) []byte {
	s := &e.Syslog
	if len(s.Hostname) > 0 {
		dst = append(dst, `"host":{`...)
		dst = jsonString(dst, `"hostname":`, s.Hostname)
		dst = closeObject(dst, 0)
	}
	pid, pidOK := parsePID(s.ProcID)
	m := len(dst)
	dst = append(dst, `"process":{`...)
	if len(s.AppName) > 0 {
		dst = jsonString(dst, `"name":`, s.AppName)
	}
	if pidOK {
		dst = jsonUint(dst, `"pid":`, pid)
	}
	dst = closeObject(dst, m)

	dst = append(dst, `"log":{"syslog":{`...)
	// An unparsable message that never got past its priority has no
	// facility or severity worth reporting.
	if e.Flags&FlagParseError == 0 || s.Facility != 0 || s.Severity != 0 {
		dst = append(dst, `"facility":{"code":`...)
		dst = strconv.AppendUint(dst, uint64(s.Facility), 10)
		if int(s.Facility) < len(facilityNames) {
			dst = append(dst, `,"name":"`...)
			dst = append(dst, facilityNames[s.Facility]...)
			dst = append(dst, '"')
		}
		dst = append(dst, `},"severity":{"code":`...)
		dst = strconv.AppendUint(dst, uint64(s.Severity), 10)
		if int(s.Severity) < len(severityNames) {
			dst = append(dst, `,"name":"`...)
			dst = append(dst, severityNames[s.Severity]...)
			dst = append(dst, '"')
		}
		dst = append(dst, `},"priority":`...)
		dst = strconv.AppendUint(dst, uint64(s.Facility)*8+uint64(s.Severity), 10)
		dst = append(dst, ',')
	}
	if s.Version != 0 {
		dst = append(dst, `"version":"`...)
		dst = strconv.AppendUint(dst, uint64(s.Version), 10)
		dst = append(dst, `",`...)
	}
	if len(s.ProcID) > 0 && !pidOK {
		dst = jsonString(dst, `"procid":`, s.ProcID)
	}
	if len(s.MsgID) > 0 {
		dst = jsonString(dst, `"msgid":`, s.MsgID)
	}
	if len(s.StructuredData) > 0 {
		dst = jsonString(dst, `"structured_data":`, s.StructuredData)
	}
	// Close "syslog", then "log"; drop both when empty.
	if dst[len(dst)-1] == '{' {
		return dst[:len(dst)-len(`"log":{"syslog":{`)]
	}
	dst[len(dst)-1] = '}'
	return append(dst, '}', ',')
}

// parsePID reads a syslog PROCID that is a plain decimal process id.
func parsePID(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v <= 1<<32-1
}

func appendAuditJSON(dst []byte, a *Audit) []byte {
	m := len(dst)
	dst = append(dst, `"process":{`...)
	dst = jsonNonZero(dst, `"pid":`, uint64(a.PID))
	if a.PPID != 0 {
		dst = append(dst, `"parent":{"pid":`...)
		dst = strconv.AppendUint(dst, uint64(a.PPID), 10)
		dst = append(dst, ',')
		if len(a.ParentName) > 0 {
			dst = jsonString(dst, `"name":`, a.ParentName)
		}
		if len(a.ParentExe) > 0 {
			dst = jsonString(dst, `"executable":`, a.ParentExe)
		}
		dst = closeObject(dst, 0)
	}
	if len(a.Exe) > 0 {
		dst = jsonString(dst, `"executable":`, a.Exe)
	}
	if len(a.Comm) > 0 {
		dst = jsonString(dst, `"name":`, a.Comm)
	}
	if len(a.Cwd) > 0 {
		dst = jsonString(dst, `"working_directory":`, a.Cwd)
	}
	dst = appendArgsJSON(dst, a.Args)
	if len(a.Title) > 0 {
		dst = jsonString(dst, `"title":`, a.Title)
	}
	dst = closeObject(dst, m)

	dst = appendUserJSON(dst, a.UID, a.AUID, a.GID, a.UserName, a.AuditUserName, a.GroupName)
	if len(a.FilePath) > 0 {
		dst = append(dst, `"file":{`...)
		dst = jsonString(dst, `"path":`, a.FilePath)
		dst = closeObject(dst, 0)
	}
	if a.DstAddr.Addr().IsValid() {
		dst = appendEndpoint(dst, `"destination":{`, a.DstAddr.Addr(), a.DstAddr.Port(), false, 0)
	}
	if len(a.Key) > 0 {
		dst = append(dst, `"tags":[`...)
		dst = appendString(dst, a.Key)
		dst = append(dst, ']', ',')
	}

	m = len(dst)
	dst = append(dst, `"auditd":{`...)
	dst = jsonNonZero(dst, `"sequence":`, a.Sequence)
	if a.RecordType != 0 {
		dst = append(dst, `"record_type":"`...)
		dst = appendRecordType(dst, a.RecordType)
		dst = append(dst, '"', ',')
	}
	if len(a.Result) > 0 {
		dst = jsonString(dst, `"result":`, a.Result)
	}
	if len(a.Syscall) > 0 {
		dst = jsonString(dst, `"syscall":`, a.Syscall)
	}
	if len(a.Raw) > 0 {
		dst = jsonString(dst, `"raw":`, a.Raw)
	}
	return closeObject(dst, m)
}

// appendUserJSON writes user.id, user.audit.id and group.id, leaving out
// ids that are UnsetID, and beside each id its name when one is given
// (user.name, user.audit.name, group.name).
func appendUserJSON(dst []byte, uid, auid, gid uint32, uname, auname, gname []byte) []byte {
	m := len(dst)
	dst = append(dst, `"user":{`...)
	dst = jsonID(dst, `"id":`, uid)
	if uid != UnsetID && len(uname) > 0 {
		dst = jsonString(dst, `"name":`, uname)
	}
	if auid != UnsetID {
		dst = append(dst, `"audit":{"id":"`...)
		dst = strconv.AppendUint(dst, uint64(auid), 10)
		dst = append(dst, '"', ',')
		if len(auname) > 0 {
			dst = jsonString(dst, `"name":`, auname)
		}
		dst = closeObject(dst, 0)
	}
	dst = closeObject(dst, m)
	if gid != UnsetID {
		m = len(dst)
		dst = append(dst, `"group":{`...)
		dst = jsonID(dst, `"id":`, gid)
		if len(gname) > 0 {
			dst = jsonString(dst, `"name":`, gname)
		}
		dst = closeObject(dst, m)
	}
	return dst
}

// auditTypeNames names the record types the audit input most often sees;
// others render as UNKNOWN[n], as ausearch does.
var auditTypeNames = map[uint16]string{
	1006: "LOGIN", 1100: "USER_AUTH", 1101: "USER_ACCT", 1103: "CRED_ACQ",
	1104: "CRED_DISP", 1105: "USER_START", 1106: "USER_END", 1110: "CRED_REFR",
	1112: "USER_LOGIN", 1130: "SERVICE_START", 1131: "SERVICE_STOP",
	1300: "SYSCALL", 1302: "PATH", 1305: "CONFIG_CHANGE", 1306: "SOCKADDR",
	1307: "CWD", 1309: "EXECVE", 1320: "EOE", 1326: "SECCOMP", 1327: "PROCTITLE",
	1400: "AVC", 1700: "ANOM_ABEND",
}

func appendRecordType(dst []byte, t uint16) []byte {
	if name, ok := auditTypeNames[t]; ok {
		return append(dst, name...)
	}
	dst = append(dst, "UNKNOWN["...)
	dst = strconv.AppendUint(dst, uint64(t), 10)
	return append(dst, ']')
}

func appendArgsJSON(dst []byte, args [][]byte) []byte {
	if len(args) == 0 {
		return dst
	}
	dst = append(dst, `"args":[`...)
	for _, a := range args {
		dst = appendString(dst, a)
		dst = append(dst, ',')
	}
	dst = closeArray(dst)
	return jsonUint(dst, `"args_count":`, uint64(len(args)))
}

func appendProcessJSON(dst []byte, p *Process) []byte {
	dst = append(dst, `"process":{"pid":`...)
	dst = strconv.AppendUint(dst, uint64(p.PID), 10)
	dst = append(dst, `,"parent":{"pid":`...)
	dst = strconv.AppendUint(dst, uint64(p.PPID), 10)
	dst = append(dst, ',')
	if len(p.ParentName) > 0 {
		dst = jsonString(dst, `"name":`, p.ParentName)
	}
	if len(p.ParentExe) > 0 {
		dst = jsonString(dst, `"executable":`, p.ParentExe)
	}
	dst = closeObject(dst, 0)
	if len(p.Comm) > 0 {
		dst = jsonString(dst, `"name":`, p.Comm)
	}
	if len(p.Filename) > 0 {
		dst = jsonString(dst, `"executable":`, p.Filename)
	}
	dst = appendArgsJSON(dst, p.Args)
	if p.StartNs != 0 {
		dst = jsonTime(dst, `"start":`, p.StartNs)
	}
	if p.Action == ProcessExit {
		dst = jsonInt(dst, `"exit_code":`, int64(p.ExitCode))
		if p.DurationNs != 0 {
			dst = jsonInt(dst, `"uptime":`, p.DurationNs/int64(time.Second))
		}
	}
	dst = closeObject(dst, 0)
	dst = appendUserJSON(dst, p.UID, p.LoginUID, p.GID, p.UserName, nil, p.GroupName)
	if len(p.ContainerID) > 0 {
		dst = append(dst, `"container":{`...)
		dst = jsonString(dst, `"id":`, p.ContainerID)
		dst = closeObject(dst, 0)
	}
	if p.CgroupID != 0 {
		dst = append(dst, `"ebpf":{"cgroup_id":`...)
		dst = strconv.AppendUint(dst, p.CgroupID, 10)
		dst = append(dst, '}', ',')
	}
	return dst
}

func appendNetworkJSON(dst []byte, n *Network) []byte {
	m := len(dst)
	dst = append(dst, `"network":{`...)
	if n.Transport != 0 {
		dst = appendTransport(dst, n.Transport)
	}
	switch {
	case n.Src.Addr().Unmap().Is4():
		dst = append(dst, `"type":"ipv4",`...)
	case n.Src.Addr().Is6():
		dst = append(dst, `"type":"ipv6",`...)
	}
	// Host-based events take the host's point of view (ECS).
	switch n.Action {
	case NetworkConnect:
		dst = append(dst, `"direction":"egress",`...)
	case NetworkAccept:
		dst = append(dst, `"direction":"ingress",`...)
	}
	dst = closeObject(dst, m)

	dst = append(dst, `"process":{"pid":`...)
	dst = strconv.AppendUint(dst, uint64(n.PID), 10)
	dst = append(dst, ',')
	if len(n.Comm) > 0 {
		dst = jsonString(dst, `"name":`, n.Comm)
	}
	dst = closeObject(dst, 0)
	m = len(dst)
	dst = append(dst, `"user":{`...)
	dst = jsonID(dst, `"id":`, n.UID)
	dst = closeObject(dst, m)
	dst = appendEndpoint(dst, `"source":{`, n.Src.Addr(), n.Src.Port(), true, n.BytesSent)
	return appendEndpoint(dst, `"destination":{`, n.Dst.Addr(), n.Dst.Port(), true, n.BytesRecv)
}

func appendAppJSON(dst []byte, e *Event) []byte {
	a := &e.App
	if len(a.Level) > 0 {
		dst = append(dst, `"log":{`...)
		dst = jsonString(dst, `"level":`, a.Level)
		dst = closeObject(dst, 0)
	}
	if e.Flags&FlagParseError != 0 {
		return append(dst, `"tags":["_jsonparsefailure"],`...)
	}
	if raw := trimSpace(a.Raw); len(raw) > 0 {
		dst = append(dst, `"app":`...)
		dst = append(dst, raw...)
		dst = append(dst, ',')
	}
	return dst
}

// ControlInString returns the offset of the first byte below 0x20 inside a
// string of the JSON text v, or -1. RFC 8259 wants those escaped, and
// strict readers (encoding/json, jq) reject the whole line, but fastjson,
// which the inputs and consumers parse with, lets them through; so a JSON
// text is embedded verbatim only when this returns -1 (and the other checks
// its reader makes for fastjson's leniency pass: the app input's strictJSON,
// the consumer's fastjson.Validate).
func ControlInString(v []byte) int {
	if !hasControl(v) {
		return -1 // the common case, 8 bytes a step
	}
	inString, escaped := false, false
	for i, c := range v {
		switch {
		case !inString:
			inString = c == '"'
		case c < 0x20:
			return i
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inString = false
		}
	}
	return -1
}

// hasControl reports whether v holds a byte below 0x20 anywhere. It tests
// eight bytes at once: x - 0x20 in each byte borrows into the top bit
// exactly for the bytes below 0x20 (the &^x drops bytes of 0x80 and up).
func hasControl(v []byte) bool {
	for len(v) >= 8 {
		x := binary.LittleEndian.Uint64(v)
		if (x-0x2020202020202020)&^x&0x8080808080808080 != 0 {
			return true
		}
		v = v[8:]
	}
	for _, c := range v {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// trimSpace drops the JSON whitespace around b, so that a line's "\r\n"
// cannot break the one-object-per-line output.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Field writers. Each writes `key value,`: the trailing comma is replaced
// by the closing bracket of the enclosing object or array.

// closeObject ends an object opened by a key ending in '{'. When the object
// got no field it is removed, key included, by cutting dst back to mark, the
// length before the key; objects that always get a field pass 0.
func closeObject(dst []byte, mark int) []byte {
	n := len(dst) - 1
	if dst[n] == '{' {
		return dst[:mark]
	}
	dst[n] = '}'
	return append(dst, ',')
}

// closeArray ends an array that got at least one element.
func closeArray(dst []byte) []byte {
	dst[len(dst)-1] = ']'
	return append(dst, ',')
}

func jsonString(dst []byte, key string, v []byte) []byte {
	dst = append(dst, key...)
	dst = appendString(dst, v)
	return append(dst, ',')
}

func jsonUint(dst []byte, key string, v uint64) []byte {
	dst = append(dst, key...)
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, ',')
}

func jsonNonZero(dst []byte, key string, v uint64) []byte {
	if v == 0 {
		return dst
	}
	return jsonUint(dst, key, v)
}

func jsonInt(dst []byte, key string, v int64) []byte {
	dst = append(dst, key...)
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, ',')
}

// jsonID writes a user or group id as ECS wants it, a string, and
// nothing for UnsetID.
func jsonID(dst []byte, key string, id uint32) []byte {
	if id == UnsetID {
		return dst
	}
	dst = append(dst, key...)
	dst = append(dst, '"')
	dst = strconv.AppendUint(dst, uint64(id), 10)
	return append(dst, '"', ',')
}

// jsonIP writes a valid address; IPv4-mapped IPv6 addresses are
// written as IPv4, as dual-stack sockets report them.
func jsonIP(dst []byte, key string, a netip.Addr) []byte {
	if !a.IsValid() {
		return dst
	}
	dst = append(dst, key...)
	dst = append(dst, '"')
	dst = a.Unmap().AppendTo(dst)
	return append(dst, '"', ',')
}

func jsonPrefix(dst []byte, key string, a netip.Addr, bits uint8) []byte {
	if bits == 0 || !a.IsValid() {
		return dst
	}
	p, err := a.Unmap().WithZone("").Prefix(int(bits))
	if err != nil {
		return dst
	}
	dst = append(dst, key...)
	dst = append(dst, '"')
	dst = p.AppendTo(dst)
	return append(dst, '"', ',')
}

func jsonTime(dst []byte, key string, ns int64) []byte {
	dst = append(dst, key...)
	return appendTimeValue(dst, ns)
}

// appendTimeValue writes unix nanoseconds as a quoted RFC 3339 UTC time
// with as many fractional digits as needed (time.RFC3339Nano), and a comma.
func appendTimeValue(dst []byte, ns int64) []byte {
	dst = append(dst, '"')
	dst = appendRFC3339Nano(dst, ns)
	return append(dst, '"', ',')
}

// appendRFC3339Nano formats like time.Time.AppendFormat(dst,
// time.RFC3339Nano) on time.Unix(0, ns).UTC(), about five times faster,
// which matters with four timestamps per flow. An int64 of nanoseconds
// spans the years 1677 to 2262, so the year always has four digits.
func appendRFC3339Nano(dst []byte, ns int64) []byte {
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 {
		nsec += 1e9
		sec--
	}
	// Shift to days since 0000-03-01 so that the rest is unsigned: the
	// earliest int64 time, in 1677, is far above that.
	const epochShift = 719468 * 86400
	s := uint64(sec + epochShift)
	days, rem := s/86400, s%86400
	// Civil date in the proleptic Gregorian calendar, counted in 400-year
	// eras whose years start on March 1st.
	era := days / 146097
	doe := days % 146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	year := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	month := mp + 3
	if mp >= 10 {
		month = mp - 9
		year++
	}
	hour, minute, second := rem/3600, rem/60%60, rem%60

	dst = append2(dst, year/100)
	dst = append2(dst, year%100)
	dst = append(dst, '-')
	dst = append2(dst, month)
	dst = append(dst, '-')
	dst = append2(dst, day)
	dst = append(dst, 'T')
	dst = append2(dst, hour)
	dst = append(dst, ':')
	dst = append2(dst, minute)
	dst = append(dst, ':')
	dst = append2(dst, second)
	if nsec != 0 {
		n := uint64(nsec)
		var frac [10]byte
		frac[0] = '.'
		frac[9] = byte('0' + n%10)
		n /= 10
		for i := 7; i > 0; i -= 2 {
			d := n % 100 * 2
			frac[i], frac[i+1] = digitPairs[d], digitPairs[d+1]
			n /= 100
		}
		end := 10
		for frac[end-1] == '0' {
			end--
		}
		dst = append(dst, frac[:end]...)
	}
	return append(dst, 'Z')
}

const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

// append2 writes v < 100 as two digits.
func append2(dst []byte, v uint64) []byte {
	v = v % 100 * 2
	return append(dst, digitPairs[v], digitPairs[v+1])
}

const hexDigits = "0123456789abcdef"

// jsonSafe[c] is true for the bytes that go into a JSON string unchanged:
// printable ASCII other than '"' and '\\'.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// SWAR constants: one in each byte, and the high bit of each byte.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plain8 reports whether the 8 bytes of w all go into a JSON string
// unchanged: no control character, '"', '\\' or non-ASCII byte.
func plain8(w uint64) bool {
	ctl := (w - lsb*0x20) &^ w
	quote := w ^ lsb*'"'
	quote = (quote - lsb) &^ quote
	bslash := w ^ lsb*'\\'
	bslash = (bslash - lsb) &^ bslash
	return (ctl|quote|bslash|w)&msb == 0
}

// appendString writes b as a quoted JSON string. Each byte of invalid UTF-8
// becomes U+FFFD; control characters, and U+2028 and U+2029 (which break
// JavaScript readers), are escaped.
func appendString(dst []byte, b []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(b); {
		// Skip plain text eight bytes at a time.
		for len(b)-i >= 8 && plain8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, b[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, b[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, b[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, b[start:]...)
	return append(dst, '"')
}
