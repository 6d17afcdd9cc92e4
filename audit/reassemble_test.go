package audit

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// collected is a Message copied out of the callback.
type collected struct {
	serial   uint64
	types    []uint16
	raw      string
	bodies   []string
	complete bool
}

func collector(out *[]collected) func(*Message) {
	return func(m *Message) {
		c := collected{serial: m.Serial, raw: string(m.Raw), complete: m.Complete}
		for _, r := range m.Records {
			c.types = append(c.types, r.Type)
			c.bodies = append(c.bodies, string(r.Body))
			if !strings.Contains(c.raw, string(r.Line)) || !strings.HasSuffix(string(r.Line), string(r.Body)) {
				panic(fmt.Sprintf("record line %q / body %q not in raw", r.Line, r.Body))
			}
		}
		*out = append(*out, c)
	}
}

func rec(typ uint16, serial int, body string) logRecord {
	return logRecord{typ: typ, text: []byte(fmt.Sprintf("audit(1700000000.%03d:%d): %s", serial%1000, serial, body))}
}

func TestReassembler_KernelLog(t *testing.T) {
	var out []collected
	r := NewReassembler(ReassemblerOptions{}, collector(&out))
	now := time.Unix(1000, 0)
	recs := loadLog(t, "testdata/kernel-6.18.log")
	for _, rc := range recs {
		if err := r.Push(rc.typ, rc.text, now); err != nil {
			t.Fatal(err)
		}
	}
	if r.InFlight() != 0 {
		t.Fatalf("%d events still in flight after the log; every syscall event ends with EOE", r.InFlight())
	}
	if len(out) != 17 {
		t.Fatalf("got %d events, want 17 (serials 68..84)", len(out))
	}
	for i, e := range out {
		if e.serial != uint64(68+i) || !e.complete {
			t.Fatalf("event %d: serial %d complete %v", i, e.serial, e.complete)
		}
	}
	// The long execve: three EXECVE records in one event, raw kept whole.
	long := out[81-68]
	if got := strings.Count(long.raw, "type=EXECVE msg=audit(1795664378.129:81):"); got != 3 {
		t.Fatalf("long execve has %d EXECVE lines", got)
	}
	if long.types[0] != TypeSyscall || long.types[len(long.types)-1] != TypeProctitle {
		t.Fatalf("types %v", long.types)
	}
	// The user-space message is its own event, ended without waiting.
	if u := out[83-68]; len(u.types) != 1 || u.types[0] != 1123 || !strings.HasPrefix(u.raw, "type=USER_CMD msg=audit(1795664378.133:83): pid=") {
		t.Fatalf("user message: %+v", u)
	}
	st := r.Stats()
	if st.Records != uint64(len(recs)) || st.Events != 17 || st.TimedOut+st.Evicted+st.Malformed+st.LateRecord != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReassembler_Interleaved(t *testing.T) {
	var out []collected
	r := NewReassembler(ReassemblerOptions{}, collector(&out))
	now := time.Unix(1000, 0)
	for _, rc := range []logRecord{
		rec(TypeSyscall, 10, "syscall=59 pid=1"),
		rec(TypeSyscall, 11, "syscall=42 pid=2"),
		rec(TypeExecve, 10, `argc=1 a0="x"`),
		rec(TypeSockaddr, 11, "saddr=0200"),
		rec(TypeEOE, 11, ""),
		rec(TypeEOE, 10, ""),
	} {
		r.Push(rc.typ, rc.text, now)
	}
	if len(out) != 2 || out[0].serial != 11 || out[1].serial != 10 {
		t.Fatalf("events %+v", out)
	}
	if strings.Join(out[1].bodies, "|") != `syscall=59 pid=1|argc=1 a0="x"` {
		t.Fatalf("bodies %q", out[1].bodies)
	}
	want := "type=SYSCALL msg=audit(1700000000.010:10): syscall=59 pid=1\ntype=EXECVE msg=audit(1700000000.010:10): argc=1 a0=\"x\""
	if out[1].raw != want {
		t.Fatalf("raw %q\nwant %q", out[1].raw, want)
	}
}

func TestReassembler_Timeout(t *testing.T) {
	var out []collected
	r := NewReassembler(ReassemblerOptions{Timeout: time.Second}, collector(&out))
	t0 := time.Unix(1000, 0)
	// A syscall event whose EOE never comes is incomplete; a LOGIN logged
	// outside a recorded syscall never has one and is complete.
	r.Push(TypeSyscall, rec(TypeSyscall, 5, "syscall=59").text, t0)
	r.Push(TypeLogin, rec(TypeLogin, 6, "pid=1 old-auid=4294967295 auid=1000").text, t0.Add(500*time.Millisecond))
	r.Flush(t0.Add(999 * time.Millisecond))
	if len(out) != 0 {
		t.Fatalf("flushed early: %+v", out)
	}
	r.Flush(t0.Add(time.Second))
	if len(out) != 1 || out[0].serial != 5 || out[0].complete {
		t.Fatalf("after 1s: %+v", out)
	}
	r.Flush(t0.Add(1500 * time.Millisecond))
	if len(out) != 2 || out[1].serial != 6 || !out[1].complete {
		t.Fatalf("after 1.5s: %+v", out)
	}
	// A record of an event already ended is counted late and emitted alone.
	r.Push(TypeProctitle, rec(TypeProctitle, 5, "proctitle=6C73").text, t0.Add(2*time.Second))
	r.FlushAll()
	st := r.Stats()
	if st.TimedOut != 2 || st.LateRecord != 1 || len(out) != 3 || out[2].complete != true {
		t.Fatalf("stats %+v, out %+v", st, out)
	}
}

func TestReassembler_Limits(t *testing.T) {
	var out []collected
	r := NewReassembler(ReassemblerOptions{MaxInFlight: 2, MaxEventBytes: 200}, collector(&out))
	now := time.Unix(1000, 0)
	r.Push(TypeSyscall, rec(TypeSyscall, 1, "a=1").text, now)
	r.Push(TypeSyscall, rec(TypeSyscall, 2, "a=2").text, now)
	r.Push(TypeSyscall, rec(TypeSyscall, 3, "a=3").text, now) // evicts 1
	if len(out) != 1 || out[0].serial != 1 || out[0].complete {
		t.Fatalf("eviction: %+v", out)
	}
	r.Push(TypeExecve, rec(TypeExecve, 3, strings.Repeat("x", 300)).text, now) // over MaxEventBytes
	r.Push(TypeEOE, rec(TypeEOE, 3, "").text, now)
	if len(out) != 2 || out[1].serial != 3 || out[1].complete || len(out[1].types) != 1 {
		t.Fatalf("oversize: %+v", out)
	}
	if err := r.Push(TypeSyscall, []byte("garbage"), now); err == nil {
		t.Fatal("malformed record accepted")
	}
	st := r.Stats()
	if st.Evicted != 1 || st.Oversize != 1 || st.Malformed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReassembler_NoAllocs(t *testing.T) {
	recs := loadLog(t, "testdata/kernel-6.18.log")
	events := 0
	r := NewReassembler(ReassemblerOptions{}, func(*Message) { events++ })
	now := time.Unix(1000, 0)
	run := func() {
		for _, rc := range recs {
			r.Push(rc.typ, rc.text, now)
		}
	}
	run() // warm up the slots
	if n := testing.AllocsPerRun(20, run); n != 0 {
		t.Fatalf("%v allocations per pass over the log", n)
	}
	if events == 0 {
		t.Fatal("no events")
	}
}
