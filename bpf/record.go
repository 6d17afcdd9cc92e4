package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/trawlsec/trawl/event"
)

// Record types, the first byte of every ring-buffer record (enum
// record_type in trace.bpf.c).
const (
	recordExec    = 1
	recordExit    = 2
	recordConnect = 3
	recordAccept  = 4
	recordClose   = 5
)

// Record flags (enum record_flags in trace.bpf.c).
const (
	flagArgsTruncated     = 1 << 0
	flagArgsFault         = 1 << 1
	flagFilenameTruncated = 1 << 2
	flagNoOwner           = 1 << 3
)

// Field offsets of the records (struct exec_record, exit_record and
// conn_record in trace.bpf.c); TestRecordLayout checks them against the Go
// types bpf2go generates from the C structs.
const (
	offType  = 0
	offFlags = 1
	offPID   = 4
	offTS    = 8
	hdrSize  = 16

	execPPID        = 16
	execUID         = 20
	execGID         = 24
	execLoginUID    = 28
	execCgroupID    = 32
	execStart       = 40
	execParentStart = 48
	execComm        = 56
	execArgsLen     = 72
	execFilenameLen = 74
	execArgsSize    = 76
	execData        = 80

	exitPPID     = 16
	exitUID      = 20
	exitGID      = 24
	exitCode     = 28
	exitCgroupID = 32
	exitStart    = 40
	exitComm     = 48
	exitSize     = 64

	connUID       = 16
	connFamily    = 20
	connSport     = 22
	connDport     = 24
	connCgroupID  = 32
	connStart     = 40
	connBytesSent = 48
	connBytesRecv = 56
	connSaddr     = 64
	connDaddr     = 80
	connComm      = 96
	connSize      = 112

	commLen = 16
	// maxRecord is the largest record: an exec record with its data area
	// (ARGS_MAX + 2*FILENAME_MAX) full.
	maxRecord = execData + 4096 + 2*512
)

const (
	afInet  = 2
	afInet6 = 10
	// ipprotoTCP is Network.Transport for every connection record.
	ipprotoTCP = 6
)

// ErrMalformed is wrapped by every error [Decoder.Decode] returns: the bytes
// are not a record this version of the BPF programs writes.
var ErrMalformed = errors.New("malformed BPF record")

// Errors for the ways a record can be malformed.
var (
	errShort   = fmt.Errorf("record too short: %w", ErrMalformed)
	errType    = fmt.Errorf("unknown record type: %w", ErrMalformed)
	errLengths = fmt.Errorf("argv and path lengths exceed the record: %w", ErrMalformed)
	errFamily  = fmt.Errorf("unknown address family: %w", ErrMalformed)
)

// Decoder turns raw ring-buffer records into events. The zero value
// reports kernel times as boot-relative nanoseconds; set MonoOffset to get
// Unix times. A Decoder has no other state and may be shared.
type Decoder struct {
	// MonoOffset is added to CLOCK_MONOTONIC nanoseconds (what
	// bpf_ktime_get_ns and task start times count) to get Unix
	// nanoseconds; see [MonoOffset].
	MonoOffset int64
}

// Decode fills ev from one record. ev is Reset first; its byte slices
// (comm, path, arguments) alias rec, so they are valid as long as rec is.
// It does not allocate once ev.Process.Args has grown to the largest
// argument count seen. A malformed record leaves ev reset and returns an
// error wrapping [ErrMalformed].
func (d *Decoder) Decode(ev *event.Event, rec []byte) error {
	ev.Reset()
	if len(rec) < hdrSize {
		return errShort
	}
	var err error
	switch rec[offType] {
	case recordExec:
		err = d.decodeExec(ev, rec)
	case recordExit:
		err = d.decodeExit(ev, rec)
	case recordConnect, recordAccept, recordClose:
		err = d.decodeConn(ev, rec)
	default:
		err = errType
	}
	if err != nil {
		ev.Reset()
	}
	return err
}

var le = binary.LittleEndian

func (d *Decoder) decodeExec(ev *event.Event, rec []byte) error {
	if len(rec) < execData {
		return errShort
	}
	argsLen := int(le.Uint16(rec[execArgsLen:]))
	fnLen := int(le.Uint16(rec[execFilenameLen:]))
	if execData+argsLen+fnLen > len(rec) {
		return errLengths
	}
	flags := rec[offFlags]
	ev.Kind = event.KindProcess
	ev.Time = int64(le.Uint64(rec[offTS:])) + d.MonoOffset
	p := &ev.Process
	p.Action = event.ProcessExec
	p.PID = le.Uint32(rec[offPID:])
	p.PPID = le.Uint32(rec[execPPID:])
	p.UID = le.Uint32(rec[execUID:])
	p.GID = le.Uint32(rec[execGID:])
	p.LoginUID = le.Uint32(rec[execLoginUID:])
	p.CgroupID = le.Uint64(rec[execCgroupID:])
	p.StartNs = d.unix(le.Uint64(rec[execStart:]))
	p.Comm = cstring(rec[execComm : execComm+commLen])
	args := rec[execData : execData+argsLen]
	p.Filename = rec[execData+argsLen : execData+argsLen+fnLen]
	// argv is NUL-terminated strings back to back; a cut argv ends
	// without its NUL.
	for len(args) > 0 {
		i := bytes.IndexByte(args, 0)
		if i < 0 {
			p.Args = append(p.Args, args)
			break
		}
		p.Args = append(p.Args, args[:i])
		args = args[i+1:]
	}
	if flags&(flagArgsTruncated|flagFilenameTruncated) != 0 {
		ev.Flags |= event.FlagTruncated
	}
	return nil
}

func (d *Decoder) decodeExit(ev *event.Event, rec []byte) error {
	if len(rec) < exitSize {
		return errShort
	}
	ev.Kind = event.KindProcess
	ts := le.Uint64(rec[offTS:])
	ev.Time = int64(ts) + d.MonoOffset
	p := &ev.Process
	p.Action = event.ProcessExit
	p.PID = le.Uint32(rec[offPID:])
	p.PPID = le.Uint32(rec[exitPPID:])
	p.UID = le.Uint32(rec[exitUID:])
	p.GID = le.Uint32(rec[exitGID:])
	p.LoginUID = event.UnsetID
	p.ExitCode = ExitCode(int32(le.Uint32(rec[exitCode:])))
	p.CgroupID = le.Uint64(rec[exitCgroupID:])
	start := le.Uint64(rec[exitStart:])
	p.StartNs = d.unix(start)
	if start != 0 && ts > start {
		p.DurationNs = int64(ts - start)
	}
	p.Comm = cstring(rec[exitComm : exitComm+commLen])
	return nil
}

func (d *Decoder) decodeConn(ev *event.Event, rec []byte) error {
	if len(rec) < connSize {
		return errShort
	}
	ev.Kind = event.KindNetwork
	ts := le.Uint64(rec[offTS:])
	ev.Time = int64(ts) + d.MonoOffset
	n := &ev.Network
	switch rec[offType] {
	case recordConnect:
		n.Action = event.NetworkConnect
	case recordAccept:
		n.Action = event.NetworkAccept
	default:
		n.Action = event.NetworkClose
		if start := le.Uint64(rec[connStart:]); start != 0 && ts > start {
			n.DurationNs = int64(ts - start)
		}
		n.BytesSent = le.Uint64(rec[connBytesSent:])
		n.BytesRecv = le.Uint64(rec[connBytesRecv:])
	}
	n.Transport = ipprotoTCP
	n.PID = le.Uint32(rec[offPID:])
	n.UID = le.Uint32(rec[connUID:])
	if rec[offFlags]&flagNoOwner != 0 {
		n.PID, n.UID = 0, event.UnsetID
	}
	n.Comm = cstring(rec[connComm : connComm+commLen])
	var src, dst netip.Addr
	switch le.Uint16(rec[connFamily:]) {
	case afInet:
		src = netip.AddrFrom4([4]byte(rec[connSaddr : connSaddr+4]))
		dst = netip.AddrFrom4([4]byte(rec[connDaddr : connDaddr+4]))
	case afInet6:
		// A dual-stack socket talking IPv4 holds v4-mapped addresses;
		// report them as the IPv4 addresses they are.
		src = netip.AddrFrom16([16]byte(rec[connSaddr : connSaddr+16])).Unmap()
		dst = netip.AddrFrom16([16]byte(rec[connDaddr : connDaddr+16])).Unmap()
	default:
		return errFamily
	}
	n.Src = netip.AddrPortFrom(src, le.Uint16(rec[connSport:]))
	n.Dst = netip.AddrPortFrom(dst, le.Uint16(rec[connDport:]))
	return nil
}

// unix converts a CLOCK_MONOTONIC time to Unix nanoseconds; 0 stays 0.
func (d *Decoder) unix(mono uint64) int64 {
	if mono == 0 {
		return 0
	}
	return int64(mono) + d.MonoOffset
}

// ExitCode turns a kernel exit code (as wait(2) encodes it: the status in
// bits 8-15, the terminating signal in bits 0-6) into the number a shell
// reports: the status, or 128 plus the signal.
func ExitCode(raw int32) int32 {
	if sig := raw & 0x7f; sig != 0 {
		return 128 + sig
	}
	return (raw >> 8) & 0xff
}

// cstring returns b up to its first NUL.
func cstring(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}
