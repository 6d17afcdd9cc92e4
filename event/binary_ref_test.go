package event

// The reference encoder: the plain append-per-field writer that
// AppendBinary replaced for speed. It is kept, in tests only, as an oracle
// that is easy to check against docs/encoding.md: AppendBinary must produce
// exactly its bytes for every event (TestBinaryMatchesReference,
// FuzzDecodeBinary). The helpers also build hand-made encodings for the
// decoder tests.

import (
	"encoding/binary"
	"net/netip"
)

// refAppendBinary is the reference for AppendBinary.
func refAppendBinary(dst []byte, e *Event) []byte {
	return refAppendVersion(dst, e, Version)
}

// refAppendVersion encodes e in encoding version v: Version, or version1
// (flow payload as protobuf fields), which DecodeBinary still reads.
func refAppendVersion(dst []byte, e *Event, v byte) []byte {
	dst = append(dst, v)
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
	// 128 bytes, and longer ones are shifted once in refClosePayload.
	dst = append(dst, 0)
	switch e.Kind {
	case KindFlow:
		if v == version1 {
			dst = appendFlowV1(dst, &e.Flow)
		} else {
			dst = appendFlowPacked(dst, &e.Flow)
		}
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
	return refClosePayload(dst, keyAt, lenAt)
}

// refClosePayload writes the length of the payload that starts after the
// reserved byte at lenAt, or removes the payload key when it is empty.
func refClosePayload(dst []byte, keyAt, lenAt int) []byte {
	n := len(dst) - lenAt - 1
	if n == 0 {
		return dst[:keyAt]
	}
	if n < 0x80 {
		dst[lenAt] = byte(n)
		return dst
	}
	s := refVarintLen(uint64(n))
	// append(x, make(...)...) grows dst without allocating the temporary.
	dst = append(dst, make([]byte, s-1)...)
	copy(dst[lenAt+s:], dst[lenAt+1:lenAt+1+n])
	binary.PutUvarint(dst[lenAt:], uint64(n))
	return dst
}

// appendFlowPacked appends the version 2 flow payload, field by field as
// docs/encoding.md lists it.
func appendFlowPacked(dst []byte, f *Flow) []byte {
	code := func(a netip.Addr) byte {
		switch {
		case a.Is4():
			return 1
		case a.Is6():
			return 2
		}
		return 0
	}
	le := binary.LittleEndian
	dst = append(dst, code(f.SrcAddr)|code(f.DstAddr)<<2|code(f.NextHop)<<4|code(f.SamplerAddress)<<6)
	dst = append(dst, byte(f.Type), f.Proto, f.TCPFlags, f.IPTos, f.SrcMask, f.DstMask, 0)
	dst = le.AppendUint16(dst, f.SrcPort)
	dst = le.AppendUint16(dst, f.DstPort)
	dst = le.AppendUint16(dst, f.Etype)
	dst = le.AppendUint16(dst, f.VlanID)
	dst = le.AppendUint32(dst, f.InIf)
	dst = le.AppendUint32(dst, f.OutIf)
	dst = le.AppendUint32(dst, f.SrcAS)
	dst = le.AppendUint32(dst, f.DstAS)
	dst = le.AppendUint32(dst, f.SequenceNum)
	dst = le.AppendUint32(dst, f.ObservationID)
	dst = le.AppendUint64(dst, f.SamplingRate)
	dst = le.AppendUint64(dst, uint64(f.TimeStartNs))
	dst = le.AppendUint64(dst, uint64(f.TimeEndNs))
	dst = le.AppendUint64(dst, f.Bytes)
	dst = le.AppendUint64(dst, f.Packets)
	for _, a := range []netip.Addr{f.SrcAddr, f.DstAddr, f.NextHop, f.SamplerAddress} {
		switch {
		case a.Is4():
			b := a.As4()
			dst = append(dst, b[:]...)
		case a.Is6():
			b := a.As16()
			dst = append(dst, b[:]...)
		}
	}
	return dst
}

// appendFlowV1 appends the version 1 flow payload: protobuf fields.
func appendFlowV1(dst []byte, f *Flow) []byte {
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
	dst = appendBytesField(dst, auditTitle, a.Title)
	dst = appendBytesField(dst, auditUserName, a.UserName)
	dst = appendBytesField(dst, auditAuditUser, a.AuditUserName)
	dst = appendBytesField(dst, auditGroupName, a.GroupName)
	dst = appendBytesField(dst, auditParentName, a.ParentName)
	dst = appendBytesField(dst, auditParentExe, a.ParentExe)
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
	dst = appendBytesField(dst, processParentName, p.ParentName)
	dst = appendBytesField(dst, processParentExe, p.ParentExe)
	dst = appendBytesField(dst, processContainer, p.ContainerID)
	dst = appendBytesField(dst, processUserName, p.UserName)
	dst = appendBytesField(dst, processGroupName, p.GroupName)
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

func refVarintLen(v uint64) int {
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
