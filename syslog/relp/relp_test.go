package relp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParse_Success(t *testing.T) {
	f := func(in string, txnr uint32, cmd, data string) {
		t.Helper()
		fr, n, err := Parse([]byte(in), 1<<20)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if n != len(in) || fr.Txnr != txnr || string(fr.Command) != cmd || string(fr.Data) != data {
			t.Fatalf("Parse(%q) = %d %q %q, n %d; want %d %q %q, n %d", in, fr.Txnr, fr.Command, fr.Data, n, txnr, cmd, data, len(in))
		}
		// Every proper prefix is a valid beginning: more is needed, no error.
		for i := 0; i < len(in); i++ {
			if _, n, err := Parse([]byte(in[:i]), 1<<20); n != 0 || err != nil {
				t.Fatalf("Parse(%q) of a prefix = n %d, %v; want 0, nil", in[:i], n, err)
			}
		}
	}
	f("1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n", 1, "open",
		"relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog")
	f("2 syslog 13 <13>hello\nyou\n", 2, "syslog", "<13>hello\nyou")
	f("3 close 0\n", 3, "close", "")
	f("0 serverclose 0\n", 0, "serverclose", "")
	f("999999999 syslog 1 x\n", MaxTxnr, "syslog", "x")
	f("7 rsp 6 200 OK\n", 7, "rsp", "200 OK")
	f("12 ABCdef 3  \n \n", 12, "ABCdef", " \n ")
	f("5 "+strings.Repeat("x", 32)+" 0\n", 5, strings.Repeat("x", 32), "")
	f("00042 syslog 002 ab\n", 42, "syslog", "ab") // leading zeros, as librelp reads them

	// Frames back to back: Parse takes only the first.
	two := []byte("1 syslog 1 a\n2 syslog 1 b\n")
	fr, n, err := Parse(two, 100)
	if err != nil || n != 13 || string(fr.Data) != "a" {
		t.Fatalf("first of two frames: %q n %d err %v", fr.Data, n, err)
	}
	fr, m, err := Parse(two[n:], 100)
	if err != nil || m != 13 || fr.Txnr != 2 || string(fr.Data) != "b" {
		t.Fatalf("second of two frames: %d %q n %d err %v", fr.Txnr, fr.Data, m, err)
	}
}

func TestParse_Failure(t *testing.T) {
	f := func(in string, want error) {
		t.Helper()
		_, n, err := Parse([]byte(in), 100)
		if !errors.Is(err, want) || n != 0 {
			t.Fatalf("Parse(%q) = n %d, err %v; want %v", in, n, err, want)
		}
	}
	f("x", ErrMalformed)      // garbage is refused at its first byte
	f("<13>hi", ErrMalformed) // plain syslog on the RELP port
	f(" 1 syslog 0\n", ErrMalformed)
	f("GET / HTTP/1.1\r\n", ErrMalformed)
	f("1234567890 syslog 0\n", ErrMalformed) // TXNR of 10 digits
	f("1  syslog 0\n", ErrMalformed)         // empty command
	f("1 sys-log 0\n", ErrMalformed)
	f("1 "+strings.Repeat("x", 33)+" 0\n", ErrMalformed)
	f("1 syslog x\n", ErrMalformed)
	f("1 syslog \n", ErrMalformed)
	f("1 syslog 1234567890 x\n", ErrMalformed) // DATALEN of 10 digits
	f("1 close 0 \n", ErrMalformed)            // no SP after DATALEN 0
	f("1 close 0x", ErrMalformed)
	f("1 syslog 3abc\n", ErrMalformed)
	f("1 syslog 3 abcd\n", ErrMalformed) // DATA longer than DATALEN
	f("1 syslog 3 ab\nX", ErrMalformed)  // ... or shorter: the trailer is not where DATALEN says
	f("1 syslog 101 ", ErrTooLarge)      // refused before the data arrives
	f("1\n", ErrMalformed)
}

func TestParseHeader(t *testing.T) {
	h, n, err := ParseHeader([]byte("17 syslog 5 hello\n"))
	if err != nil || n != 12 || h.Txnr != 17 || string(h.Command) != "syslog" || h.DataLen != 5 {
		t.Fatalf("ParseHeader = %+v n %d err %v", h, n, err)
	}
	// With DATALEN 0 the header ends before the trailer.
	h, n, err = ParseHeader([]byte("3 close 0\n"))
	if err != nil || n != 9 || h.DataLen != 0 || string(h.Command) != "close" {
		t.Fatalf("ParseHeader of a frame without data = %+v n %d err %v", h, n, err)
	}
	// The header alone suffices, however large the data.
	h, n, err = ParseHeader([]byte("4 syslog 999999999 "))
	if err != nil || n != 19 || h.DataLen != MaxDataLen {
		t.Fatalf("ParseHeader of a huge frame = %+v n %d err %v", h, n, err)
	}
	if _, n, err := ParseHeader([]byte("4 syslog 12")); n != 0 || err != nil {
		t.Fatalf("ParseHeader of an incomplete header = n %d, %v", n, err)
	}
	if len("999999999 "+strings.Repeat("x", 32)+" 999999999 ") != MaxHeader {
		t.Fatal("MaxHeader does not match the longest header")
	}
}

func TestAppend(t *testing.T) {
	f := func(got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	f(AppendResponse(nil, 5, 200, "OK", nil), "5 rsp 6 200 OK\n")
	f(AppendResponse([]byte("x"), 1, 200, "OK", []byte("relp_version=0\ncommands=syslog")), "x1 rsp 37 200 OK\nrelp_version=0\ncommands=syslog\n")
	f(AppendResponse(nil, 9, 500, "not supported", nil), "9 rsp 17 500 not supported\n")
	f(AppendFrame(nil, 0, "serverclose", nil), "0 serverclose 0\n")
	f(AppendFrame(nil, 42, "syslog", []byte("<13>hi")), "42 syslog 6 <13>hi\n")

	// What AppendResponse writes, Parse and ParseResponse read back.
	rsp := AppendResponse(nil, 1, 200, "OK", []byte("relp_version=0\nrelp_software=trawl\ncommands=syslog"))
	fr, n, err := Parse(rsp, 1000)
	if err != nil || n != len(rsp) || string(fr.Command) != "rsp" {
		t.Fatalf("Parse(%q): %+v n %d err %v", rsp, fr, n, err)
	}
	code, text, rest, err := ParseResponse(fr.Data)
	if err != nil || code != 200 || string(text) != "OK" {
		t.Fatalf("ParseResponse(%q) = %d %q %v", fr.Data, code, text, err)
	}
	if v, ok := Offer(rest, "commands"); !ok || !HasValue(v, "syslog") {
		t.Fatalf("Offer(%q, commands) = %q %v", rest, v, ok)
	}
}

func TestParseResponse(t *testing.T) {
	f := func(in string, code int, text, rest string, ok bool) {
		t.Helper()
		c, tx, r, err := ParseResponse([]byte(in))
		if (err == nil) != ok || c != code || string(tx) != text || string(r) != rest {
			t.Fatalf("ParseResponse(%q) = %d %q %q %v", in, c, tx, r, err)
		}
	}
	f("200 OK", 200, "OK", "", true)
	f("200", 200, "", "", true)
	f("500 error 3 on connect", 500, "error 3 on connect", "", true)
	f("200 OK\nrelp_version=0", 200, "OK", "relp_version=0", true)
	f("20 OK", 0, "", "", false)
	f("200OK", 0, "", "", false)
	f("", 0, "", "", false)
}

func TestOffer(t *testing.T) {
	data := []byte("relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog,other\nflag")
	f := func(name, want string, ok bool) {
		t.Helper()
		v, found := Offer(data, name)
		if found != ok || string(v) != want {
			t.Fatalf("Offer(%q) = %q %v; want %q %v", name, v, found, want, ok)
		}
	}
	f("relp_version", "0", true)
	f("relp_software", "librelp,1.11.0,http://librelp.adiscon.com", true)
	f("commands", "syslog,other", true)
	f("flag", "", true)
	f("relp", "", false) // a prefix of a name is not the name
	f("nothing", "", false)
	if v, _ := Offer(data, "commands"); !HasValue(v, "syslog") || !HasValue(v, "other") || HasValue(v, "sys") {
		t.Fatal("HasValue does not match whole list items")
	}
}

func TestNextTxnr(t *testing.T) {
	if NextTxnr(1) != 2 || NextTxnr(MaxTxnr-1) != MaxTxnr || NextTxnr(MaxTxnr) != 1 {
		t.Fatal("NextTxnr does not count 1..999999999 and wrap to 1")
	}
}

func TestParseAllocs(t *testing.T) {
	frames := []byte("1 open 30 relp_version=0\ncommands=syslog\n2 syslog 26 <13>Nov 25 10:00:00 host x\n3 close 0\n")
	var rsp []byte
	allocs := testing.AllocsPerRun(100, func() {
		b := frames
		for len(b) > 0 {
			fr, n, err := Parse(b, 1000)
			if err != nil || n == 0 {
				t.Fatalf("Parse: n %d err %v", n, err)
			}
			rsp = AppendResponse(rsp[:0], fr.Txnr, 200, "OK", nil)
			b = b[n:]
		}
	})
	if allocs != 0 {
		t.Fatalf("Parse+AppendResponse allocate %.1f times per run, want 0", allocs)
	}
}

// FuzzParse checks that Parse never panics, never claims more bytes than
// it was given, and is consistent with itself: a frame it returns
// re-encodes to one it parses back unchanged, every proper prefix of the
// frame's bytes asks for more, and bytes after a frame do not change it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n",
		"2 syslog 13 <13>hello\nyou\n",
		"3 close 0\n",
		"0 serverclose 0\n",
		"7 rsp 6 200 OK\n",
		"1 syslog 3 ab\n\n",
		"1234567890 syslog 0\n",
		"<13>hi\n",
	} {
		f.Add([]byte(s), 64)
	}
	f.Fuzz(func(t *testing.T, b []byte, maxData int) {
		fr, n, err := Parse(b, maxData)
		if err != nil {
			if n != 0 || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge)) {
				t.Fatalf("Parse(%q) = n %d, err %v", b, n, err)
			}
			return
		}
		if n == 0 {
			return
		}
		if n > len(b) || len(fr.Data) > maxData || fr.Txnr > MaxTxnr || len(fr.Command) == 0 || len(fr.Command) > MaxCommand {
			t.Fatalf("Parse(%q, %d) = %+v, n %d", b, maxData, fr, n)
		}
		for i := 0; i < n; i++ {
			if _, m, err := Parse(b[:i], maxData); m != 0 || err != nil {
				t.Fatalf("Parse of the prefix %q of frame %q = n %d, %v", b[:i], b[:n], m, err)
			}
		}
		again, m, err := Parse(append(b[:n:n], "trailing junk"...), maxData)
		if err != nil || m != n || again.Txnr != fr.Txnr || !bytes.Equal(again.Data, fr.Data) {
			t.Fatalf("bytes after frame %q changed it: %+v n %d err %v", b[:n], again, m, err)
		}
		enc := AppendFrame(nil, fr.Txnr, string(fr.Command), fr.Data)
		back, m, err := Parse(enc, maxData)
		if err != nil || m != len(enc) || back.Txnr != fr.Txnr || !bytes.Equal(back.Command, fr.Command) || !bytes.Equal(back.Data, fr.Data) {
			t.Fatalf("re-encoded %q parses as %+v n %d err %v; want %+v", enc, back, m, err, fr)
		}
	})
}
