package event

import (
	"net/netip"
	"reflect"
	"testing"
)

// Realistic events of every kind, shared by the tests, the fuzz seeds and
// the benchmarks. Each call returns fresh values.

const (
	recvNs = int64(1732579200123456789) // 2024-11-26T00:00:00.123456789Z
	timeNs = int64(1732579199000000000) // 2024-11-25T23:59:59Z
)

func sampleFlow() *Event {
	return &Event{
		Kind:     KindFlow,
		Seq:      4242,
		RecvTime: recvNs,
		Time:     timeNs,
		Source:   netip.MustParseAddrPort("192.0.2.1:49152"),
		Input:    []byte("netflow"),
		Observer: []byte("trawl-1"),
		Flow: Flow{
			Type:           FlowIPFIX,
			SamplingRate:   1000,
			SequenceNum:    987654,
			ObservationID:  256,
			TimeStartNs:    timeNs - 30_000_000_000,
			TimeEndNs:      timeNs - 1_500_000_000,
			Bytes:          1_523_420,
			Packets:        1032,
			SrcAddr:        netip.MustParseAddr("10.1.2.3"),
			DstAddr:        netip.MustParseAddr("198.51.100.77"),
			NextHop:        netip.MustParseAddr("10.1.0.1"),
			SamplerAddress: netip.MustParseAddr("192.0.2.1"),
			SrcPort:        51234,
			DstPort:        443,
			Proto:          6,
			TCPFlags:       0x1b,
			IPTos:          0x10,
			Etype:          0x0800,
			InIf:           3,
			OutIf:          7,
			SrcAS:          64512,
			DstAS:          15169,
			SrcMask:        24,
			DstMask:        20,
			VlanID:         100,
		},
	}
}

func sampleSyslog() *Event {
	raw := []byte(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 4711 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry "quoted" ü`)
	return &Event{
		Kind:     KindSyslog,
		Seq:      17,
		RecvTime: recvNs,
		Time:     1065910455003000000,
		Source:   netip.MustParseAddrPort("127.0.0.1:40001"),
		Input:    []byte("syslog_udp"),
		Observer: []byte("trawl-1"),
		Syslog: Syslog{
			Facility:       20,
			Severity:       5,
			Version:        1,
			Hostname:       raw[32:53],
			AppName:        raw[54:62],
			ProcID:         raw[63:67],
			MsgID:          raw[68:72],
			StructuredData: raw[73:141],
			Message:        raw[142:],
		},
	}
}

func sampleAudit() *Event {
	return &Event{
		Kind:     KindAudit,
		Seq:      99,
		RecvTime: recvNs,
		Time:     timeNs,
		Input:    []byte("audit"),
		Observer: []byte("trawl-1"),
		Audit: Audit{
			Sequence:      123456,
			RecordType:    1300,
			Action:        []byte("executed"),
			Result:        []byte("success"),
			Syscall:       []byte("execve"),
			PID:           31337,
			PPID:          1000,
			UID:           1001,
			AUID:          1000,
			GID:           1002,
			Exe:           []byte("/usr/bin/curl"),
			Comm:          []byte("curl"),
			Cwd:           []byte("/home/alice"),
			Args:          [][]byte{[]byte("curl"), []byte("-s"), []byte("https://example.com/x?a=1&b=2")},
			FilePath:      []byte("/usr/bin/curl"),
			DstAddr:       netip.MustParseAddrPort("[2001:db8::1]:443"),
			Key:           []byte("exec-watch"),
			Raw:           []byte("type=SYSCALL msg=audit(1732579199.000:123456): arch=c000003e syscall=59 success=yes\ntype=EXECVE msg=audit(1732579199.000:123456): argc=3 a0=\"curl\""),
			Title:         []byte("curl -s https://example.com/x?a=1&b=2"),
			UserName:      []byte("bob"),
			AuditUserName: []byte("alice"),
			GroupName:     []byte("staff"),
			ParentName:    []byte("bash"),
			ParentExe:     []byte("/usr/bin/bash"),
		},
	}
}

func sampleProcess() *Event {
	return &Event{
		Kind:     KindProcess,
		Seq:      7,
		RecvTime: recvNs,
		Time:     timeNs,
		Input:    []byte("ebpf"),
		Observer: []byte("trawl-1"),
		Process: Process{
			Action:     ProcessExit,
			PID:        4242,
			PPID:       1,
			UID:        1000,
			GID:        100,
			LoginUID:   1001,
			CgroupID:   0x1234_5678_9abc,
			ExitCode:   -9,
			DurationNs: 12_345_678_901,
			StartNs:    timeNs - 12_345_678_901,
			Comm:       []byte("bash"),
			Filename:   []byte("/usr/bin/bash"),
			Args:       [][]byte{[]byte("bash"), []byte("-c"), []byte("echo hi; sleep 12")},
		},
	}
}

func sampleNetwork() *Event {
	return &Event{
		Kind:     KindNetwork,
		Seq:      8,
		RecvTime: recvNs,
		Time:     timeNs,
		Input:    []byte("ebpf"),
		Observer: []byte("trawl-1"),
		Network: Network{
			Action:     NetworkClose,
			Transport:  6,
			PID:        4242,
			UID:        1000,
			Comm:       []byte("curl"),
			Src:        netip.MustParseAddrPort("[2001:db8::10]:40000"),
			Dst:        netip.MustParseAddrPort("[2001:db8::1]:443"),
			DurationNs: 250_000_000,
			BytesSent:  517,
			BytesRecv:  12_034,
		},
	}
}

func sampleApp() *Event {
	raw := []byte(`{"ts":"2024-11-25T23:59:59.123Z","level":"warn","msg":"upstream slow","latency_ms":1234.5,"path":"/api/v1/items","user":{"id":42}}`)
	return &Event{
		Kind:     KindApp,
		Seq:      3,
		RecvTime: recvNs,
		Source:   netip.MustParseAddrPort("127.0.0.1:51000"),
		Input:    []byte("app_json"),
		Observer: []byte("trawl-1"),
		App: App{
			Raw:     raw,
			Message: raw[55:68],
			Level:   raw[42:46],
		},
	}
}

// sampleEvents returns one realistic event per kind, by name.
func sampleEvents() []struct {
	name string
	e    *Event
} {
	return []struct {
		name string
		e    *Event
	}{
		{"flow", sampleFlow()},
		{"syslog", sampleSyslog()},
		{"audit", sampleAudit()},
		{"process", sampleProcess()},
		{"network", sampleNetwork()},
		{"app", sampleApp()},
	}
}

// TestSamples guards the sub-slices the samples take of their raw text.
func TestSamples(t *testing.T) {
	s := sampleSyslog().Syslog
	for _, c := range []struct{ got, want string }{
		{string(s.Hostname), "mymachine.example.com"},
		{string(s.AppName), "evntslog"},
		{string(s.ProcID), "4711"},
		{string(s.MsgID), "ID47"},
		{string(s.StructuredData), `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]`},
		{string(s.Message), `An application event log entry "quoted" ü`},
		{string(sampleApp().App.Message), "upstream slow"},
		{string(sampleApp().App.Level), "warn"},
	} {
		if c.got != c.want {
			t.Errorf("sample field %q, want %q", c.got, c.want)
		}
	}
}

// wireView returns a copy of e as the binary encoding sees it: without
// Seq, Input and Observer, and with empty byte slices made nil so that an
// empty slice and a nil one compare equal. Args keep their length, so an
// empty argument and a missing one still differ.
func wireView(e *Event) Event {
	c := *e
	c.Seq, c.Input, c.Observer = 0, nil, nil
	normalize(reflect.ValueOf(&c).Elem())
	return c
}

func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				normalize(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		if v.Type().Elem().Kind() == reflect.Slice {
			c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			reflect.Copy(c, v)
			for i := 0; i < c.Len(); i++ {
				normalize(c.Index(i))
			}
			v.Set(c)
		}
	}
}
