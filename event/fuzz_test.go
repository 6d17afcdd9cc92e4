package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"testing"
)

// FuzzDecodeBinary feeds arbitrary bytes to DecodeBinary. It must never
// panic, must fail only with ErrMalformed, and whatever it accepts must
// re-encode canonically, exactly as the reference encoder does, and decode
// to an equal event that renders as valid JSON.
func FuzzDecodeBinary(f *testing.F) {
	for _, s := range sampleEvents() {
		f.Add(AppendBinary(nil, s.e))
	}
	long := sampleAudit()
	long.Audit.Raw = bytes.Repeat([]byte("type=PATH x\n"), 30)
	f.Add(AppendBinary(nil, long))
	enriched := sampleProcess()
	enriched.Process.ParentName, enriched.Process.ParentExe = []byte("sshd"), []byte("/usr/sbin/sshd")
	enriched.Process.ContainerID, enriched.Process.UserName, enriched.Process.GroupName = []byte("c0ffee"), []byte("alice"), []byte("users")
	f.Add(AppendBinary(nil, enriched))
	f.Add(AppendBinary(nil, &Event{}))
	f.Add([]byte{})
	f.Add([]byte{Version, 0x08, 0x05, 0xaa, 0x01, 0x02, 0x38, 0x01, 0x7a, 0x00})
	f.Add([]byte{Version, 0x8a, 0x01, 0x03, 0x32, 0x01, 0x00})
	f.Add([]byte{2, 0x08, 0x01})

	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		err := DecodeBinary(&e, b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		b2 := AppendBinary(nil, &e)
		if ref := refAppendBinary(nil, &e); !bytes.Equal(b2, ref) {
			t.Fatalf("AppendBinary differs from the reference encoder:\n got %x\nwant %x", b2, ref)
		}
		var e2 Event
		if err := DecodeBinary(&e2, b2); err != nil {
			t.Fatalf("re-encoded event does not decode: %v\nfirst: %x\nagain: %x", err, b, b2)
		}
		if g, w := wireView(&e2), wireView(&e); !reflect.DeepEqual(g, w) {
			t.Fatalf("re-encoded event differs\n got %+v\nwant %+v", g, w)
		}
		if b3 := AppendBinary(nil, &e2); !bytes.Equal(b3, b2) {
			t.Fatalf("encoding is not canonical:\n%x\n%x", b2, b3)
		}
		// App.Raw is trusted to be JSON only when the input said so.
		if e.Kind == KindApp && e.Flags&FlagParseError == 0 && len(trimSpace(e.App.Raw)) > 0 && !json.Valid(e.App.Raw) {
			return
		}
		checkJSON(t, AppendJSON(nil, &e))
	})
}

// FuzzAppendJSON builds events of every kind from arbitrary field values;
// the output must always be one valid JSON object without repeated keys
// whose strings decode back to the input text.
func FuzzAppendJSON(f *testing.F) {
	f.Add(uint8(KindSyslog), uint16(0), uint64(1), int64(recvNs), int64(0), uint64(165),
		[]byte("host"), []byte("msg \"x\""), []byte("4711"), []byte(`{"a":1}`), []byte{10, 0, 0, 1})
	f.Add(uint8(KindFlow), uint16(3), uint64(math.MaxUint64), int64(math.MinInt64), int64(math.MaxInt64),
		uint64(math.MaxUint64), []byte("\xff\xfe"), []byte("\x00\n"), []byte{}, []byte("not json"),
		bytes.Repeat([]byte{0xfe}, 16))
	f.Add(uint8(KindApp), uint16(0), uint64(0), int64(0), int64(-1), uint64(0),
		[]byte(""), []byte("\u2028"), []byte("x"), []byte(` {"k":[1,2,{"z":null}]} `), []byte{})
	f.Add(uint8(KindApp), uint16(1), uint64(0), int64(0), int64(-1), uint64(0),
		[]byte(""), []byte(""), []byte("x"), []byte("{\"k\":"), []byte{})
	for k := range kindCount + 1 {
		f.Add(uint8(k), uint16(2), uint64(k), int64(k), int64(0), uint64(1)<<40,
			[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte{1, 2, 3, 4})
	}

	f.Fuzz(func(t *testing.T, kind uint8, flags uint16, seq uint64, recv, ts int64, n uint64,
		s1, s2, s3, s4, ip []byte) {
		addr, _ := netip.AddrFromSlice(ip)
		ap := netip.AddrPortFrom(addr, uint16(n))
		args := [][]byte{s1, s2, s3}
		e := &Event{
			Kind: Kind(kind), Flags: Flags(flags), Seq: seq, RecvTime: recv, Time: ts,
			Source: ap, Input: s1, Observer: s2,
			Flow: Flow{
				Type: FlowType(n), SamplingRate: n, SequenceNum: uint32(n), ObservationID: uint32(n >> 32),
				TimeStartNs: recv, TimeEndNs: ts, Bytes: n, Packets: seq,
				SrcAddr: addr, DstAddr: addr.Unmap(), NextHop: addr, SamplerAddress: addr,
				SrcPort: uint16(n), DstPort: uint16(n >> 16), Proto: uint8(n), TCPFlags: uint8(n >> 8),
				IPTos: uint8(n >> 16), Etype: uint16(n >> 24), InIf: uint32(n), OutIf: uint32(n >> 8),
				SrcAS: uint32(n), DstAS: uint32(n >> 1), SrcMask: uint8(n), DstMask: uint8(n >> 3),
				VlanID: uint16(n),
			},
			Syslog: Syslog{
				Facility: uint8(n >> 3), Severity: uint8(n & 7), Version: uint8(n >> 8),
				Hostname: s1, AppName: s2, ProcID: s3, MsgID: s4, StructuredData: s4, Message: s2, Raw: s3,
			},
			Audit: Audit{
				Sequence: n, RecordType: uint16(n), Action: s1, Result: s2, Syscall: s3,
				PID: uint32(n), PPID: uint32(n >> 32), UID: uint32(n), AUID: uint32(n >> 16), GID: uint32(seq),
				Exe: s1, Comm: s2, Cwd: s3, Args: args, FilePath: s4, DstAddr: ap, Key: s1, Raw: s4,
			},
			Process: Process{
				Action: ProcessAction(n), PID: uint32(n), PPID: uint32(seq), UID: uint32(n >> 8),
				GID: uint32(n >> 16), LoginUID: uint32(n >> 32), CgroupID: seq, ExitCode: int32(n),
				DurationNs: ts, StartNs: recv, Comm: s1, Filename: s2, Args: args,
			},
			Network: Network{
				Action: NetworkAction(n), Transport: uint8(n), PID: uint32(n), UID: uint32(seq), Comm: s3,
				Src: ap, Dst: netip.AddrPortFrom(addr.Unmap(), uint16(seq)), DurationNs: ts,
				BytesSent: n, BytesRecv: seq,
			},
			App: App{Raw: s4, Message: s2, Level: s1},
		}
		appTrusted := e.Kind == KindApp && e.Flags&FlagParseError == 0
		if appTrusted && len(trimSpace(s4)) > 0 && !json.Valid(s4) {
			// Honour AppendJSON's precondition, as the input does.
			e.App.Raw = []byte(`{"replaced":true}`)
		}

		out := AppendJSON(nil, e)
		checkJSON(t, out)
		if !appTrusted || !bytes.ContainsAny(e.App.Raw, "\r\n") {
			checkOneLine(t, out)
		}
		m := parseJSON(t, out)

		// Strings come back as their input, with each invalid byte as
		// U+FFFD.
		wantString := func(path string, in []byte) {
			t.Helper()
			v, ok := lookup(m, path)
			if !ok {
				t.Fatalf("%s missing from %s", path, out)
			}
			if s, _ := v.(string); s != string([]rune(string(in))) {
				t.Fatalf("%s = %q, want %q", path, v, in)
			}
		}
		if len(e.Observer) > 0 {
			wantString("observer.hostname", e.Observer)
		}
		if len(e.Input) > 0 {
			wantString("trawl.input", e.Input)
		}
		switch e.Kind {
		case KindSyslog:
			if len(e.Syslog.Message) > 0 {
				wantString("message", e.Syslog.Message)
			}
			if len(e.Syslog.Hostname) > 0 {
				wantString("host.hostname", e.Syslog.Hostname)
			}
		case KindAudit:
			if len(e.Audit.Exe) > 0 {
				wantString("process.executable", e.Audit.Exe)
			}
			args, _ := lookup(m, "process.args")
			if l, _ := args.([]any); len(l) != len(e.Audit.Args) {
				t.Fatalf("process.args = %v, want %d args", args, len(e.Audit.Args))
			}
		case KindApp:
			if appTrusted && len(trimSpace(e.App.Raw)) > 0 {
				var want any
				d := json.NewDecoder(bytes.NewReader(e.App.Raw))
				d.UseNumber()
				if err := d.Decode(&want); err != nil {
					t.Fatal(err)
				}
				if got, _ := lookup(m, "app"); !reflect.DeepEqual(got, want) {
					t.Fatalf("app = %v, want %v", got, want)
				}
			}
			if !appTrusted && len(e.App.Raw) > 0 {
				wantString("event.original", e.App.Raw)
			}
		}
		if v, _ := lookup(m, "trawl.seq"); jsonText(v) != jsonText(json.Number(strconv.FormatUint(seq, 10))) {
			t.Fatalf("trawl.seq = %v, want %d", v, seq)
		}
	})
}
