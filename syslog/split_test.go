package syslog

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// drive runs s over stream the way a connection loop does: a fixed buffer
// of bufSize bytes, reads of at most chunk bytes. It returns the messages,
// each prefixed "T:" when truncated, and the framing error if any. It fails
// the test if Split stalls on a full buffer or breaks its contract.
func drive(t testing.TB, s *Splitter, stream []byte, chunk, bufSize int) ([]string, error) {
	t.Helper()
	buf := make([]byte, bufSize)
	var out []string
	start, end, pos := 0, 0, 0
	for {
		n := min(chunk, len(buf)-end, len(stream)-pos)
		copy(buf[end:], stream[pos:pos+n])
		end, pos = end+n, pos+n
		atEOF := pos == len(stream)
		for {
			adv, msg, trunc, err := s.Split(buf[start:end], atEOF)
			if err != nil {
				return out, err
			}
			if adv < 0 || adv > end-start {
				t.Fatalf("advance %d of %d bytes", adv, end-start)
			}
			if msg != nil {
				if len(msg) > s.max() || adv == 0 {
					t.Fatalf("message of %d bytes (max %d), advance %d", len(msg), s.max(), adv)
				}
				if trunc {
					out = append(out, "T:"+string(msg))
				} else {
					out = append(out, string(msg))
				}
			}
			start += adv
			if adv == 0 {
				break
			}
		}
		if atEOF {
			if start != end {
				t.Fatalf("%d bytes left unconsumed at EOF", end-start)
			}
			return out, nil
		}
		if start == 0 && end == len(buf) {
			t.Fatalf("Split stalled on a full %d-byte buffer", len(buf))
		}
		end = copy(buf, buf[start:end])
		start = 0
	}
}

func oc(msgs ...string) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d %s", len(m), m)
	}
	return b.String()
}

func TestSplit(t *testing.T) {
	f := func(max int, stream string, framing Framing, want ...string) {
		t.Helper()
		// Every chunking and the smallest allowed buffer must give the
		// same messages.
		for _, chunk := range []int{1, 2, 3, 7, 64, 1 << 20} {
			for _, extra := range []int{0, 5, 1000} {
				s := &Splitter{MaxMessage: max}
				got, err := drive(t, s, []byte(stream), chunk, s.BufferSize()+extra)
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
					t.Fatalf("chunk %d buffer +%d: %q\n got  %q\n want %q", chunk, extra, stream, got, want)
				}
				if s.Framing() != framing {
					t.Fatalf("framing %v, want %v", s.Framing(), framing)
				}
			}
		}
	}
	// Non-transparent: LF, CRLF, NUL; empty lines dropped; last line
	// without a trailer at EOF.
	f(0, "<13>a\n<13>b\r\n<13>c\x00\n\n<13>d", FramingNonTransparent, "<13>a", "<13>b", "<13>c", "<13>d")
	f(0, "\n\r\n<13>a\n", FramingNonTransparent, "<13>a")
	f(0, "", FramingUnknown)
	f(0, "\n\n", FramingUnknown)
	// Digits not followed by a space: a PRI-less line, not a count.
	f(0, "2024-01-15 x\n12:00 y\n", FramingNonTransparent, "2024-01-15 x", "12:00 y")
	f(0, "1234567890 ten digits\n", FramingNonTransparent, "1234567890 ten digits")
	f(0, "0 zero\n", FramingNonTransparent, "0 zero")
	// Octet counting, with the LF some senders add between frames, and a
	// message containing LF.
	f(0, oc("<13>a", "<13>bb\nline2", ""+"<13>c"), FramingOctetCounted, "<13>a", "<13>bb\nline2", "<13>c")
	f(0, oc("<13>a")+"\n"+oc("<13>b")+"\r\n", FramingOctetCounted, "<13>a", "<13>b")
	// Truncation at MaxMessage 8, then the stream goes on in step.
	long := "<13>0123456789abcdefghij"
	f(8, long+"\n<13>ok\n", FramingNonTransparent, "T:<13>0123", "<13>ok")
	f(8, long+"\r\n<13>ok", FramingNonTransparent, "T:<13>0123", "<13>ok")
	f(8, long, FramingNonTransparent, "T:<13>0123")
	f(8, oc(long, "<13>ok", long), FramingOctetCounted, "T:<13>0123", "<13>ok", "T:<13>0123")
	// Exactly MaxMessage is not truncated, with any trailer.
	f(8, "<13>abcd\n<13>efgh\r\n<13>ijkl", FramingNonTransparent, "<13>abcd", "<13>efgh", "<13>ijkl")
	f(8, oc("<13>abcd", "<13>efgh"), FramingOctetCounted, "<13>abcd", "<13>efgh")
	// The stream ends inside a counted message: what came is kept, cut.
	f(0, oc("<13>a")+"10 <13>b", FramingOctetCounted, "<13>a", "T:<13>b")
}

func TestSplitErrors(t *testing.T) {
	f := func(stream string, wantMsgs ...string) {
		t.Helper()
		s := &Splitter{}
		got, err := drive(t, s, []byte(stream), 3, s.BufferSize())
		if !errors.Is(err, ErrFraming) {
			t.Fatalf("%q: err %v, want ErrFraming", stream, err)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", wantMsgs) {
			t.Fatalf("%q: got %q before the error, want %q", stream, got, wantMsgs)
		}
	}
	f(oc("<13>a")+"<13>b\n", "<13>a")      // framing changed mid-stream
	f(oc("<13>a")+"0 x", "<13>a")          // zero length
	f(oc("<13>a")+"12x34 x", "<13>a")      // non-digit in count
	f(oc("<13>a")+"1234567890 x", "<13>a") // ten digits
	f(oc("<13>a")+"123", "<13>a")          // EOF inside the count
	f(oc("<13>a")+"\n\n-1 x", "<13>a")     // sign
	f(oc("<13>a")+strings.Repeat("9", 40), "<13>a")
}

// TestSplitReset checks that a reset Splitter detects the framing again and
// forgets a pending skip.
func TestSplitReset(t *testing.T) {
	s := &Splitter{MaxMessage: 8}
	if _, msg, trunc, _ := s.Split([]byte("100 <13>0123456789"), false); !trunc || string(msg) != "<13>0123" {
		t.Fatalf("got %q %v", msg, trunc)
	}
	s.Reset()
	if s.MaxMessage != 8 || s.Framing() != FramingUnknown {
		t.Fatalf("after Reset: %+v", s)
	}
	if _, msg, _, err := s.Split([]byte("<13>x\n"), false); err != nil || string(msg) != "<13>x" {
		t.Fatalf("got %q %v", msg, err)
	}
}

// TestSplitAllocs pins Split at zero allocations for both framings,
// truncation included.
func TestSplitAllocs(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, stream := range []string{
		"<13>a\n<13>b\r\n" + long + "\n",
		oc("<13>a", "<13>b", long),
	} {
		b := []byte(stream)
		s := &Splitter{MaxMessage: 64}
		if a := testing.AllocsPerRun(100, func() {
			s.Reset()
			for rest := b; len(rest) > 0; {
				adv, _, _, err := s.Split(rest, true)
				if err != nil || adv == 0 {
					panic(fmt.Sprint(adv, err))
				}
				rest = rest[adv:]
			}
		}); a != 0 {
			t.Errorf("%q: %v allocs/op", stream[:8], a)
		}
	}
}

// ExampleSplitter drives a Splitter from a reader with a fixed buffer
// smaller than the stream, the way the TCP input does.
func ExampleSplitter() {
	conn := strings.NewReader("28 <13>Jan 15 11:59:01 h a: one40 <13>1 2024-01-15T11:59:01Z h a - - - two")
	sp := &Splitter{MaxMessage: 32}
	buf := make([]byte, sp.BufferSize())
	start, end := 0, 0
	for {
		n, rerr := conn.Read(buf[end:])
		end += n
		for {
			adv, msg, truncated, err := sp.Split(buf[start:end], rerr != nil)
			if err != nil {
				fmt.Println("close:", err)
				return
			}
			start += adv
			if msg != nil {
				fmt.Printf("%s %q truncated=%v\n", sp.Framing(), msg, truncated)
			}
			if adv == 0 {
				break
			}
		}
		if rerr == io.EOF {
			return
		}
		end = copy(buf, buf[start:end])
		start = 0
	}
	// Output:
	// octet-counted "<13>Jan 15 11:59:01 h a: one" truncated=false
	// octet-counted "<13>1 2024-01-15T11:59:01Z h a -" truncated=true
}
