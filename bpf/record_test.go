//go:build 386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm

package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/trawlsec/trawl/event"
)

// TestRecordLayout pins the decoder's offsets to the C structs, as bpf2go
// saw them in the compiled object's BTF.
func TestRecordLayout(t *testing.T) {
	var x traceExecRecord
	var e traceExitRecord
	var c traceConnRecord
	f := func(name string, got uintptr, want int) {
		t.Helper()
		if int(got) != want {
			t.Errorf("%s: C offset %d, decoder uses %d", name, got, want)
		}
	}
	f("hdr.flags", unsafe.Offsetof(x.Hdr.Flags), offFlags)
	f("hdr.pid", unsafe.Offsetof(x.Hdr.Pid), offPID)
	f("hdr.ts", unsafe.Offsetof(x.Hdr.Ts), offTS)
	f("hdr size", unsafe.Sizeof(x.Hdr), hdrSize)

	f("exec.ppid", unsafe.Offsetof(x.Ppid), execPPID)
	f("exec.uid", unsafe.Offsetof(x.Uid), execUID)
	f("exec.gid", unsafe.Offsetof(x.Gid), execGID)
	f("exec.loginuid", unsafe.Offsetof(x.Loginuid), execLoginUID)
	f("exec.cgroup_id", unsafe.Offsetof(x.CgroupId), execCgroupID)
	f("exec.start_ns", unsafe.Offsetof(x.StartNs), execStart)
	f("exec.parent_start_ns", unsafe.Offsetof(x.ParentStartNs), execParentStart)
	f("exec.comm", unsafe.Offsetof(x.Comm), execComm)
	f("exec.args_len", unsafe.Offsetof(x.ArgsLen), execArgsLen)
	f("exec.filename_len", unsafe.Offsetof(x.FilenameLen), execFilenameLen)
	f("exec.args_size", unsafe.Offsetof(x.ArgsSize), execArgsSize)
	f("exec.data", unsafe.Offsetof(x.Data), execData)
	f("exec size", unsafe.Sizeof(x), maxRecord)

	f("exit.ppid", unsafe.Offsetof(e.Ppid), exitPPID)
	f("exit.uid", unsafe.Offsetof(e.Uid), exitUID)
	f("exit.gid", unsafe.Offsetof(e.Gid), exitGID)
	f("exit.exit_code", unsafe.Offsetof(e.ExitCode), exitCode)
	f("exit.cgroup_id", unsafe.Offsetof(e.CgroupId), exitCgroupID)
	f("exit.start_ns", unsafe.Offsetof(e.StartNs), exitStart)
	f("exit.comm", unsafe.Offsetof(e.Comm), exitComm)
	f("exit size", unsafe.Sizeof(e), exitSize)

	f("conn.uid", unsafe.Offsetof(c.Uid), connUID)
	f("conn.family", unsafe.Offsetof(c.Family), connFamily)
	f("conn.sport", unsafe.Offsetof(c.Sport), connSport)
	f("conn.dport", unsafe.Offsetof(c.Dport), connDport)
	f("conn.cgroup_id", unsafe.Offsetof(c.CgroupId), connCgroupID)
	f("conn.start_ns", unsafe.Offsetof(c.StartNs), connStart)
	f("conn.bytes_sent", unsafe.Offsetof(c.BytesSent), connBytesSent)
	f("conn.bytes_received", unsafe.Offsetof(c.BytesReceived), connBytesRecv)
	f("conn.saddr", unsafe.Offsetof(c.Saddr), connSaddr)
	f("conn.daddr", unsafe.Offsetof(c.Daddr), connDaddr)
	f("conn.comm", unsafe.Offsetof(c.Comm), connComm)
	f("conn size", unsafe.Sizeof(c), connSize)
	f("comm length", unsafe.Sizeof(c.Comm), commLen)
}

// Record builders: the C structs (as bpf2go generated them) written the
// way the kernel writes them, little-endian.

func comm16(s string) (c [16]int8) {
	for i := 0; i < len(s) && i < 15; i++ {
		c[i] = int8(s[i])
	}
	return c
}

func encode(v any) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func execRecord(flags uint8, args, filename string) []byte {
	r := traceExecRecord{Ppid: 1, Uid: 1000, Gid: 100, Loginuid: 1000, CgroupId: 4242, StartNs: 5e9, ParentStartNs: 1e9, Comm: comm16("echo")}
	r.Hdr.Type, r.Hdr.Flags, r.Hdr.Pid, r.Hdr.Ts = recordExec, flags, 4321, 6e9
	r.ArgsLen, r.FilenameLen, r.ArgsSize = uint16(len(args)), uint16(len(filename)), uint32(len(args))
	n := copy(r.Data[:], args)
	copy(r.Data[n:], filename)
	return encode(&r)[:execData+len(args)+len(filename)]
}

func exitRecord(code int32) []byte {
	r := traceExitRecord{Ppid: 1, Uid: 1000, Gid: 100, ExitCode: code, CgroupId: 4242, StartNs: 5e9, Comm: comm16("sleep")}
	r.Hdr.Type, r.Hdr.Pid, r.Hdr.Ts = recordExit, 4321, 7e9
	return encode(&r)
}

func connRecord(typ, flags uint8, src, dst netip.AddrPort) []byte {
	r := traceConnRecord{Uid: 1000, CgroupId: 4242, StartNs: 5e9, BytesSent: 10, BytesReceived: 20, Comm: comm16("curl")}
	r.Hdr.Type, r.Hdr.Flags, r.Hdr.Pid, r.Hdr.Ts = typ, flags, 4321, 8e9
	r.Family = afInet6
	if src.Addr().Is4() {
		r.Family = afInet
	}
	r.Sport, r.Dport = src.Port(), dst.Port()
	s, d := src.Addr().AsSlice(), dst.Addr().AsSlice()
	copy(r.Saddr[:], s)
	copy(r.Daddr[:], d)
	return encode(&r)
}

func TestDecodeExec(t *testing.T) {
	f := func(flags uint8, args string, wantArgs []string, wantFlags event.Flags) {
		t.Helper()
		d := Decoder{MonoOffset: 1000}
		var ev event.Event
		if err := d.Decode(&ev, execRecord(flags, args, "/usr/bin/echo")); err != nil {
			t.Fatal(err)
		}
		p := &ev.Process
		if ev.Kind != event.KindProcess || p.Action != event.ProcessExec || p.PID != 4321 || p.PPID != 1 ||
			p.UID != 1000 || p.GID != 100 || p.LoginUID != 1000 || p.CgroupID != 4242 ||
			p.StartNs != 5e9+1000 || ev.Time != 6e9+1000 || string(p.Comm) != "echo" ||
			string(p.Filename) != "/usr/bin/echo" || ev.Flags != wantFlags {
			t.Fatalf("decoded %s", event.AppendJSON(nil, &ev))
		}
		if len(p.Args) != len(wantArgs) {
			t.Fatalf("args %q, want %q", p.Args, wantArgs)
		}
		for i := range wantArgs {
			if string(p.Args[i]) != wantArgs[i] {
				t.Fatalf("args %q, want %q", p.Args, wantArgs)
			}
		}
	}
	f(0, "echo\x00hello world\x00\x00", []string{"echo", "hello world", ""}, 0)
	f(0, "", nil, 0)
	// A cut argv ends without its NUL: the partial argument is kept.
	f(flagArgsTruncated, "echo\x00hel", []string{"echo", "hel"}, event.FlagTruncated)
	f(flagFilenameTruncated, "a\x00", []string{"a"}, event.FlagTruncated)
	f(flagArgsFault, "", nil, 0)
}

func TestDecodeExit(t *testing.T) {
	f := func(raw, want int32) {
		t.Helper()
		d := Decoder{MonoOffset: 1000}
		var ev event.Event
		if err := d.Decode(&ev, exitRecord(raw)); err != nil {
			t.Fatal(err)
		}
		p := &ev.Process
		if ev.Kind != event.KindProcess || p.Action != event.ProcessExit || p.PID != 4321 || p.ExitCode != want ||
			p.DurationNs != 2e9 || p.StartNs != 5e9+1000 || ev.Time != 7e9+1000 || string(p.Comm) != "sleep" ||
			p.LoginUID != event.UnsetID || p.UID != 1000 || p.GID != 100 || p.CgroupID != 4242 {
			t.Fatalf("decoded %s", event.AppendJSON(nil, &ev))
		}
	}
	f(0, 0)
	f(7<<8, 7)
	f(9, 137)       // SIGKILL
	f(0x80|11, 139) // SIGSEGV with a core dump
}

func TestDecodeConn(t *testing.T) {
	v4a, v4b := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("192.0.2.7:443")
	v6a, v6b := netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::2]:443")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(v4a.Addr().As16()), 40000)
	f := func(typ, flags uint8, src, dst netip.AddrPort, want event.Network) {
		t.Helper()
		var d Decoder
		var ev event.Event
		if err := d.Decode(&ev, connRecord(typ, flags, src, dst)); err != nil {
			t.Fatal(err)
		}
		n := &ev.Network
		if ev.Kind != event.KindNetwork || ev.Time != 8e9 || n.Action != want.Action || n.Transport != want.Transport ||
			n.PID != want.PID || n.UID != want.UID || n.Src != want.Src || n.Dst != want.Dst ||
			n.DurationNs != want.DurationNs || n.BytesSent != want.BytesSent || n.BytesRecv != want.BytesRecv {
			t.Fatalf("decoded %+v, want %+v", n, want)
		}
		if wantComm := "curl"; flags&flagNoOwner == 0 && string(ev.Network.Comm) != wantComm {
			t.Fatalf("comm %q, want %q", ev.Network.Comm, wantComm)
		}
	}
	f(recordConnect, 0, v4a, v4b, event.Network{Action: event.NetworkConnect, Transport: 6, PID: 4321, UID: 1000, Src: v4a, Dst: v4b})
	f(recordAccept, 0, v6b, v6a, event.Network{Action: event.NetworkAccept, Transport: 6, PID: 4321, UID: 1000, Src: v6b, Dst: v6a})
	f(recordAccept, flagNoOwner, v6b, v6a, event.Network{Action: event.NetworkAccept, Transport: 6, UID: event.UnsetID, Src: v6b, Dst: v6a})
	f(recordClose, 0, v4a, v4b, event.Network{Action: event.NetworkClose, Transport: 6, PID: 4321, UID: 1000, Src: v4a, Dst: v4b,
		DurationNs: 3e9, BytesSent: 10, BytesRecv: 20})
	// A dual-stack socket's v4-mapped addresses are reported as IPv4.
	f(recordConnect, 0, mapped, netip.AddrPortFrom(netip.AddrFrom16(v4b.Addr().As16()), 443),
		event.Network{Action: event.NetworkConnect, Transport: 6, PID: 4321, UID: 1000, Src: v4a, Dst: v4b})
}

func TestDecode_Failure(t *testing.T) {
	f := func(name string, rec []byte) {
		t.Helper()
		var d Decoder
		var ev event.Event
		ev.Kind = event.KindApp
		err := d.Decode(&ev, rec)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: err = %v, want ErrMalformed", name, err)
		}
		if ev.Kind != event.KindUnknown {
			t.Fatalf("%s: event not reset: kind %v", name, ev.Kind)
		}
	}
	f("empty", nil)
	f("short header", make([]byte, hdrSize-1))
	f("unknown type", append([]byte{9}, make([]byte, 200)...))
	ex := execRecord(0, "a\x00", "/bin/a")
	f("exec cut", ex[:execData-1])
	f("exec lengths past the end", ex[:len(ex)-1])
	f("exit cut", exitRecord(0)[:exitSize-1])
	c := connRecord(recordConnect, 0, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"))
	f("conn cut", c[:connSize-1])
	c[connFamily] = 1 // AF_UNIX
	f("conn family", c)
}

func TestDecodeAllocs(t *testing.T) {
	recs := [][]byte{
		execRecord(0, "/usr/bin/ls\x00-l\x00--color=auto\x00/tmp\x00", "/usr/bin/ls"),
		exitRecord(1 << 8),
		connRecord(recordClose, 0, netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::2]:2")),
	}
	d := Decoder{MonoOffset: 1}
	var ev event.Event
	for _, r := range recs { // grow Args once
		if err := d.Decode(&ev, r); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, r := range recs {
			if err := d.Decode(&ev, r); err != nil {
				t.Fatal(err)
			}
		}
	}); n != 0 {
		t.Fatalf("Decode allocates %v times per 3 records, want 0", n)
	}
}

// FuzzDecode feeds arbitrary bytes to the decoder: it must not panic, must
// either fill a consistent event or report ErrMalformed, and what it
// decodes must survive the binary event encoding.
func FuzzDecode(f *testing.F) {
	f.Add(execRecord(0, "echo\x00hello\x00", "/bin/echo"))
	f.Add(execRecord(flagArgsTruncated, "echo\x00hel", "/bin/echo"))
	f.Add(exitRecord(9))
	f.Add(connRecord(recordClose, 0, netip.MustParseAddrPort("127.0.0.1:5"), netip.MustParseAddrPort("127.0.0.1:6")))
	f.Add(connRecord(recordAccept, flagNoOwner, netip.MustParseAddrPort("[::1]:5"), netip.MustParseAddrPort("[::1]:6")))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var d Decoder
		var ev event.Event
		if err := d.Decode(&ev, rec); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if ev.Kind != event.KindProcess && ev.Kind != event.KindNetwork {
			t.Fatalf("decoded kind %v", ev.Kind)
		}
		var back event.Event
		if err := event.DecodeBinary(&back, event.AppendBinary(nil, &ev)); err != nil {
			t.Fatalf("decoded event does not round-trip: %v", err)
		}
		if string(event.AppendJSON(nil, &back)) != string(event.AppendJSON(nil, &ev)) {
			t.Fatalf("round trip changed the event:\n%s\n%s", event.AppendJSON(nil, &ev), event.AppendJSON(nil, &back))
		}
	})
}
