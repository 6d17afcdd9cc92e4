package audit

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// logRecord is one line of a log in the format auditd writes
// (type=NAME msg=audit(...): ...), split back into what netlink carries.
type logRecord struct {
	typ  uint16
	text []byte
}

// parseLogLine splits "type=SYSCALL msg=audit(...): ..." into the record
// type and the netlink text.
func parseLogLine(t testing.TB, line string) logRecord {
	t.Helper()
	rest, ok := strings.CutPrefix(line, "type=")
	if !ok {
		t.Fatalf("not a log line: %q", line)
	}
	name, text, ok := strings.Cut(rest, " msg=")
	if !ok {
		t.Fatalf("not a log line: %q", line)
	}
	typ, err := auparse.GetAuditMessageType(name)
	if err != nil {
		t.Fatalf("unknown record type in %q: %v", line, err)
	}
	return logRecord{typ: uint16(typ), text: []byte(text)}
}

// loadLog reads a log file of testdata.
func loadLog(t testing.TB, path string) []logRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []logRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if sc.Text() != "" {
			recs = append(recs, parseLogLine(t, sc.Text()))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestParseHeader_Success(t *testing.T) {
	f := func(text string, serial uint64, timeNs int64, body string) {
		t.Helper()
		rec, err := ParseHeader(TypeSyscall, []byte(text))
		if err != nil {
			t.Fatalf("ParseHeader(%q): %v", text, err)
		}
		if rec.Type != TypeSyscall || rec.Serial != serial || rec.Time != timeNs || string(rec.Body) != body {
			t.Fatalf("ParseHeader(%q) = %+v (body %q), want serial %d time %d body %q", text, rec, rec.Body, serial, timeNs, body)
		}
	}
	f("audit(1700000000.123:456): arch=c000003e syscall=59", 456, 1700000000123000000, "arch=c000003e syscall=59")
	f("audit(1795664378.133:84): ", 84, 1795664378133000000, "")
	f("audit(1795664378.133:84):", 84, 1795664378133000000, "")
	f("audit(0.000:1):  a1[1]=6162", 1, 0, " a1[1]=6162") // continuation EXECVE: one separator space is eaten
	f("audit(1.001:18446744073709551615): x=1\x00\n", 1<<64-1, 1001000000, "x=1")
}

func TestParseHeader_Failure(t *testing.T) {
	f := func(text string) {
		t.Helper()
		if rec, err := ParseHeader(TypeSyscall, []byte(text)); err == nil {
			t.Fatalf("ParseHeader(%q) = %+v, want an error", text, rec)
		}
	}
	f("")
	f("audit(")
	f("type=SYSCALL msg=audit(1.000:1): x=1") // log format, not netlink
	f("audit(1700000000:456): x")             // no milliseconds
	f("audit(1700000000.12:456): x")          // two digits
	f("audit(1700000000.123456): x")          // no serial
	f("audit(1700000000.123:): x")
	f("audit(1700000000.123:45)")
	f("audit(1700000000.123:45) x")
	f("audit(99999999999.000:1): x")          // past year 2242
	f("audit(1.000:18446744073709551616): x") // serial overflows
}

func TestSerialOf(t *testing.T) {
	if s, ok := SerialOf([]byte("audit(1795664378.133:84): pid=1")); !ok || s != 84 {
		t.Fatalf("SerialOf = %d, %v", s, ok)
	}
	if _, ok := SerialOf([]byte("garbage without colon")); ok {
		t.Fatal("SerialOf accepted garbage")
	}
}

func TestFields(t *testing.T) {
	body := `pid=1 uid=0 comm="a b" key=(null) msg='op=x acct="root" res=success' bare word  saddr=0200 empty="" last=`
	type kv struct {
		k, v  string
		quote int
	}
	want := []kv{
		{"pid", "1", Plain}, {"uid", "0", Plain}, {"comm", "a b", Quoted}, {"key", "(null)", Plain},
		{"msg", `op=x acct="root" res=success`, Nested}, {"saddr", "0200", Plain}, {"empty", "", Quoted},
		{"last", "", Plain},
	}
	it := NewFields([]byte(body))
	var f Field
	var got []kv
	for it.Next(&f) {
		got = append(got, kv{string(f.Key), string(f.Value), f.Quote})
	}
	if len(got) != len(want) {
		t.Fatalf("got %d fields %v, want %v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// An unterminated quote runs to the end rather than failing.
	it = NewFields([]byte(`a="open b=1`))
	if !it.Next(&f) || string(f.Value) != "open b=1" || it.Next(&f) {
		t.Fatalf("unterminated quote: %q", f.Value)
	}
}

func TestAppendUntrusted(t *testing.T) {
	f := func(quote int, value, want string, wantOK bool) {
		t.Helper()
		got, ok := AppendUntrusted([]byte("pre:"), &Field{Value: []byte(value), Quote: quote})
		if ok != wantOK || string(got) != "pre:"+want {
			t.Fatalf("AppendUntrusted(%d, %q) = %q, %v; want %q, %v", quote, value, got, ok, "pre:"+want, wantOK)
		}
	}
	f(Quoted, "/usr/bin/echo", "/usr/bin/echo", true)
	f(Plain, "68656C6C6F20776F726C64", "hello world", true)
	f(Plain, "c3bc6e", "ün", true)
	f(Plain, "(null)", "", false)
	f(Plain, "?", "", false)
	f(Plain, "ABC", "", false) // odd length
	f(Plain, "GG", "", false)
}

func TestParseNumbers(t *testing.T) {
	if v, ok := ParseUint([]byte("4294967295")); !ok || v != 4294967295 {
		t.Fatal(v, ok)
	}
	for _, bad := range []string{"", "-1", "1x", "18446744073709551616"} {
		if _, ok := ParseUint([]byte(bad)); ok {
			t.Fatalf("ParseUint(%q) accepted", bad)
		}
	}
	if v, ok := ParseHexUint([]byte("c000003e")); !ok || v != 0xc000003e {
		t.Fatal(v, ok)
	}
	for _, bad := range []string{"", "x", "11112222333344445"} {
		if _, ok := ParseHexUint([]byte(bad)); ok {
			t.Fatalf("ParseHexUint(%q) accepted", bad)
		}
	}
}

func TestAppendTypeName(t *testing.T) {
	for typ, want := range map[uint16]string{1300: "SYSCALL", 1320: "EOE", 1123: "USER_CMD", 1327: "PROCTITLE", 1099: "UNKNOWN[1099]", 1998: "UNKNOWN[1998]", 3000: "UNKNOWN[3000]"} {
		if got := AppendTypeName(nil, typ); string(got) != want {
			t.Errorf("AppendTypeName(%d) = %q, want %q", typ, got, want)
		}
	}
}

func TestKernelLogParses(t *testing.T) {
	recs := loadLog(t, "testdata/kernel-6.18.log")
	if len(recs) < 100 {
		t.Fatalf("only %d records in the capture", len(recs))
	}
	for _, r := range recs {
		rec, err := ParseHeader(r.typ, r.text)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Serial < 68 || rec.Serial > 84 || !bytes.Contains(r.text, rec.Body) {
			t.Fatalf("odd record %q: %+v", r.text, rec)
		}
	}
}
