package consumer

import (
	"fmt"
	"net/netip"

	"github.com/trawlsec/trawl/event"
)

// Events of every kind shared by this package's tests, internal and
// external (consumer_test reaches them through the exported names below).

const (
	recvNs = int64(1732579200123456789)
	timeNs = int64(1732579199000000000)
)

// SampleFlow is flow i: every field FlowMessage carries is set, Time is
// the flow end (as trawl's flow decoders set it), and Source, Seq, Input
// and Observer are set too, which FlowMessage does not carry.
func SampleFlow(i int) event.Event {
	end := timeNs - 1_500_000_000 + int64(i)
	return event.Event{
		Kind:     event.KindFlow,
		Seq:      uint64(4242 + i),
		RecvTime: recvNs + int64(i),
		Time:     end,
		Source:   netip.MustParseAddrPort("192.0.2.1:49152"),
		Input:    []byte("netflow"),
		Observer: []byte("trawl-1"),
		Flow: event.Flow{
			Type:           event.FlowIPFIX,
			SamplingRate:   1000,
			SequenceNum:    uint32(987654 + i),
			ObservationID:  256,
			TimeStartNs:    timeNs - 30_000_000_000,
			TimeEndNs:      end,
			Bytes:          1_523_420 + uint64(i),
			Packets:        1032,
			SrcAddr:        netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}),
			DstAddr:        netip.MustParseAddr("2001:db8::77"),
			NextHop:        netip.MustParseAddr("10.1.0.1"),
			SamplerAddress: netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i%3)}),
			SrcPort:        uint16(1024 + i),
			DstPort:        443,
			Proto:          6,
			TCPFlags:       0x1b,
			IPTos:          0x10,
			Etype:          0x86dd,
			InIf:           3,
			OutIf:          7,
			SrcAS:          64512,
			DstAS:          15169,
			SrcMask:        24,
			DstMask:        64,
			VlanID:         100,
		},
	}
}

// SampleSyslog is syslog message i from host web-<i%4>.
func SampleSyslog(i int) event.Event {
	return event.Event{
		Kind:     event.KindSyslog,
		Seq:      uint64(17 + i),
		RecvTime: recvNs + int64(i),
		Time:     1065910455003000000,
		Source:   netip.MustParseAddrPort("127.0.0.1:40001"),
		Input:    []byte("syslog_udp"),
		Observer: []byte("trawl-1"),
		Syslog: event.Syslog{
			Facility: 4, Severity: 6, Version: 1,
			Hostname: fmt.Appendf(nil, "web-%d", i%4),
			AppName:  []byte("sshd"),
			ProcID:   []byte("4711"),
			Message:  fmt.Appendf(nil, "Accepted publickey for user%d \"quoted\" ü", i),
		},
	}
}

// SampleApp is application log line i, {"id":i,...}, from one of 64
// sender addresses, so that keys spread over partitions.
func SampleApp(i int) event.Event {
	raw := fmt.Appendf(nil, `{"id":%d,"level":"info","msg":"line %d"}`, i, i)
	return event.Event{
		Kind:     event.KindApp,
		Seq:      uint64(i),
		RecvTime: recvNs + int64(i),
		Source:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i % 64)}), 5170),
		Input:    []byte("app"),
		Observer: []byte("trawl-1"),
		App:      event.App{Raw: raw, Level: []byte("info"), Message: fmt.Appendf(nil, "line %d", i)},
	}
}

// SampleOthers are an audit, a process and a network event: local
// sources, without a key.
func SampleOthers() []event.Event {
	return []event.Event{
		{
			Kind: event.KindAudit, Seq: 99, RecvTime: recvNs, Time: timeNs, Input: []byte("audit"), Observer: []byte("trawl-1"),
			Audit: event.Audit{
				Sequence: 123456, RecordType: 1300, Action: []byte("executed"), Result: []byte("success"),
				Syscall: []byte("execve"), PID: 31337, PPID: 1000, UID: 1001, AUID: 1000, GID: 1002,
				Exe: []byte("/usr/bin/curl"), Comm: []byte("curl"), Cwd: []byte("/home/alice"),
				Args:    [][]byte{[]byte("curl"), []byte("-s"), []byte("https://example.com/x?a=1&b=2")},
				DstAddr: netip.MustParseAddrPort("[2001:db8::1]:443"), Key: []byte("exec-watch"),
				Raw: []byte("type=SYSCALL msg=audit(1732579199.000:123456): syscall=59 success=yes"),
			},
		},
		{
			Kind: event.KindProcess, Seq: 7, RecvTime: recvNs, Time: timeNs, Input: []byte("ebpf"), Observer: []byte("trawl-1"),
			Process: event.Process{
				Action: event.ProcessExit, PID: 4242, PPID: 1, UID: 1000, GID: 100, LoginUID: 1001, ExitCode: -9,
				DurationNs: 12_345_678_901, StartNs: timeNs - 12_345_678_901, Comm: []byte("bash"),
				Filename: []byte("/usr/bin/bash"), Args: [][]byte{[]byte("bash"), []byte("-c"), []byte("echo hi")},
			},
		},
		{
			Kind: event.KindNetwork, Seq: 8, RecvTime: recvNs, Time: timeNs, Input: []byte("ebpf"), Observer: []byte("trawl-1"),
			Network: event.Network{
				Action: event.NetworkClose, Transport: 6, PID: 4242, UID: 1000, Comm: []byte("curl"),
				Src: netip.MustParseAddrPort("[2001:db8::10]:40000"), Dst: netip.MustParseAddrPort("[2001:db8::1]:443"),
				DurationNs: 250_000_000, BytesSent: 517, BytesRecv: 12_034,
			},
		},
	}
}

// WithoutFrameFields returns ev without what a frame, not the event's own
// encoding, carries (Seq, Input, Observer): what a trawl-binary record
// holds. For a flow it also drops Source, which FlowMessage does not
// carry: what a goflow2-flowmessage record holds.
func WithoutFrameFields(ev event.Event, flowMessage bool) event.Event {
	ev.Seq, ev.Input, ev.Observer = 0, nil, nil
	if flowMessage {
		ev.Source = netip.AddrPort{}
	}
	return ev
}
