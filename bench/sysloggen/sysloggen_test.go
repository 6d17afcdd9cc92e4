package sysloggen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/syslog"
)

// TestTemplate: messages have the exact size, parse with trawl's parser
// into the promised fields, and carry a sequence number ParseSeq reads.
func TestTemplate(t *testing.T) {
	f := func(format Format, size, stream int, seq uint64, host, app, pid, msgid string) {
		t.Helper()
		tpl, err := NewTemplate(format, size, stream)
		if err != nil {
			t.Fatal(err)
		}
		m := tpl.AppendMessage(nil, seq, false, LF)
		if len(m) != size {
			t.Fatalf("%v: %d bytes, want %d: %q", format, len(m), size, m)
		}
		var ev event.Event
		if !syslog.NewParser(syslog.Options{}).Parse(&ev, m, netip.Addr{}, time.Now().UnixNano()) {
			t.Fatalf("%v: trawl cannot parse %q", format, m)
		}
		s := &ev.Syslog
		if string(s.Hostname) != host || string(s.AppName) != app || string(s.ProcID) != pid || string(s.MsgID) != msgid ||
			s.Facility != 16 || s.Severity != 6 {
			t.Fatalf("%v: parsed %+v from %q", format, s, m)
		}
		gs, gseq, ok := ParseSeq(s.Message)
		if !ok || gs != stream || gseq != seq {
			t.Fatalf("%v: ParseSeq(%q) = %d, %d, %v; want %d, %d", format, s.Message, gs, gseq, ok, stream, seq)
		}
		// Framed for TCP.
		lf := tpl.AppendMessage(nil, seq, true, LF)
		if !bytes.Equal(lf, append(m, '\n')) {
			t.Fatalf("LF framing: %q", lf)
		}
		oc := tpl.AppendMessage(nil, seq, true, OctetCounted)
		if !bytes.Equal(oc, append([]byte(strconv.Itoa(size)+" "), m...)) {
			t.Fatalf("octet framing: %q", oc)
		}
	}
	f(RFC3164, 256, 7, 123456789012, "bench-host-07", "benchapp", "4242", "")
	f(RFC5424, 256, 99, 0, "bench-host-99", "benchapp", "4242", "BENCH")
	f(RFC3164, MinSize, 0, 1, "bench-host-00", "benchapp", "4242", "")
	f(RFC5424, 2000, 3, 42, "bench-host-03", "benchapp", "4242", "BENCH")

	if _, err := NewTemplate(RFC3164, MinSize-1, 0); err == nil {
		t.Error("a message below MinSize was built")
	}
	if _, err := NewTemplate(RFC3164, 256, 100); err == nil {
		t.Error("stream 100 was built")
	}
	for _, bad := range []string{"", "seq=12", "seq=00000000000x stream=01", "seq=000000000001 strea=01"} {
		if _, _, ok := ParseSeq([]byte(bad)); ok {
			t.Errorf("ParseSeq(%q) ok", bad)
		}
	}
}

// received counts messages per stream and checks each stream's sequence
// numbers arrive once each.
type received struct {
	mu   sync.Mutex
	seen map[[2]uint64]int
}

func (r *received) add(t testing.TB, msg []byte) {
	s, seq, ok := ParseSeq(msg)
	if !ok {
		t.Errorf("message without sequence number: %q", msg)
		return
	}
	r.mu.Lock()
	r.seen[[2]uint64{uint64(s), seq}]++
	r.mu.Unlock()
}

// check: every stream's messages 0..PerStream-1 exactly once, nothing else.
func (r *received) check(t *testing.T, res Result) {
	t.Helper()
	total := 0
	for s, n := range res.PerStream {
		for q := uint64(0); q < n; q++ {
			if c := r.seen[[2]uint64{uint64(s), q}]; c != 1 {
				t.Fatalf("stream %d seq %d received %d times", s, q, c)
			}
		}
		total += int(n)
	}
	if len(r.seen) != total || uint64(total) != res.Messages {
		t.Fatalf("received %d distinct messages, result says %d (per stream %v)", len(r.seen), res.Messages, res.PerStream)
	}
}

func TestSendUDP(t *testing.T) {
	for _, noGSO := range []bool{false, true} {
		t.Run(fmt.Sprintf("nogso=%v", noGSO), func(t *testing.T) { testSendUDP(t, noGSO) })
	}
}

func testSendUDP(t *testing.T, noGSO bool) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadBuffer(8 << 20)
	r := &received{seen: map[[2]uint64]int{}}
	const total = 4003
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for n := 0; n < total; n++ {
			k, err := pc.Read(buf)
			if err != nil {
				return
			}
			if k != 300 {
				t.Errorf("datagram of %d bytes, want 300", k)
			}
			r.add(t, buf[:k])
		}
	}()
	start := time.Now()
	res, err := Send(context.Background(), Config{Target: pc.LocalAddr().(*net.UDPAddr).AddrPort(), Format: RFC5424, Size: 300,
		Streams: 3, Messages: total, Rate: 20000, NoGSO: noGSO})
	if err != nil {
		t.Fatal(err)
	}
	// 4003 messages at 20k/s take about 200 ms; pacing must hold them back.
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("4003 messages at 20k/s took %v", el)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("not every datagram arrived (lost in the socket buffer?)")
	}
	if res.Bytes != total*300 || len(res.PerStream) != 3 || res.PerStream[0] != 1335 || res.PerStream[2] != 1334 {
		t.Fatalf("result %+v", res)
	}
	r.check(t, res)
}

func TestSendTCP(t *testing.T) {
	for _, fr := range []Framing{LF, OctetCounted} {
		t.Run(fr.String(), func(t *testing.T) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			r := &received{seen: map[[2]uint64]int{}}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 4 { // one connection per stream
					c, err := ln.Accept()
					if err != nil {
						t.Error(err)
						return
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer c.Close()
						br := bufio.NewReader(c)
						for {
							var msg []byte
							if fr == LF {
								l, err := br.ReadBytes('\n')
								if err == io.EOF && len(l) == 0 {
									return
								}
								if err != nil {
									t.Errorf("read: %v", err)
									return
								}
								msg = l[:len(l)-1]
							} else {
								ls, err := br.ReadString(' ')
								if err == io.EOF && ls == "" {
									return
								}
								n, cerr := strconv.Atoi(ls[:max(len(ls)-1, 0)])
								if err != nil || cerr != nil {
									t.Errorf("bad octet count %q: %v %v", ls, err, cerr)
									return
								}
								msg = make([]byte, n)
								if _, err := io.ReadFull(br, msg); err != nil {
									t.Errorf("read: %v", err)
									return
								}
							}
							if len(msg) != 256 {
								t.Errorf("message of %d bytes: %q", len(msg), msg)
							}
							r.add(t, msg)
						}
					}()
				}
			}()
			res, err := Send(context.Background(), Config{Target: ln.Addr().(*net.TCPAddr).AddrPort(), TCP: true, Framing: fr,
				Streams: 4, Messages: 100_001})
			if err != nil {
				t.Fatal(err)
			}
			// The senders closed their write side: the readers end at EOF.
			wg.Wait()
			r.check(t, res)
			per := 257
			if fr == OctetCounted {
				per = 260
			}
			if res.Bytes != uint64(100_001*per) {
				t.Fatalf("bytes %d, want %d", res.Bytes, 100_001*per)
			}
		})
	}
}

// TestSendStopsOnCancel: a cancelled context ends the run with the
// counts so far.
func TestSendStopsOnCancel(t *testing.T) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res, err := Send(ctx, Config{Target: pc.LocalAddr().(*net.UDPAddr).AddrPort(), Messages: 1e9, Rate: 10000})
	if err == nil || res.Messages == 0 || res.Messages > 5000 {
		t.Fatalf("Send = %+v, %v; want a partial run and the context's error", res, err)
	}
}

// FuzzParseSeq: ParseSeq never panics on arbitrary lines, and whatever it
// accepts carries the numbers it returns where a message puts them.
func FuzzParseSeq(f *testing.F) {
	tpl, _ := NewTemplate(RFC3164, 256, 42)
	f.Add(tpl.AppendMessage(nil, 123, false, LF))
	f.Add([]byte("Nov 26 03:35:43 host app: seq=000000000001 stream=07 x"))
	f.Add([]byte("seq=999999999999 stream=99"))
	f.Add([]byte("seq="))
	f.Fuzz(func(t *testing.T, line []byte) {
		s, q, ok := ParseSeq(line)
		if !ok {
			return
		}
		want := fmt.Sprintf("seq=%012d stream=%02d", q, s)
		if !bytes.Contains(line, []byte(want)) {
			t.Fatalf("ParseSeq(%q) = %d, %d: the line holds no %q", line, s, q, want)
		}
	})
}
