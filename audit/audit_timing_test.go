package audit

import (
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/aucoalesce"
	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/trawlsec/trawl/event"
)

// BenchmarkPipeline runs the records captured from the kernel (17 events,
// 115 records: execs with long and hex arguments, connects, file changes,
// a user-space message) from netlink text to a normalised event, once with
// this package and once with go-libaudit's Reassembler and aucoalesce (the
// parts auditbeat uses), resolving user and group names in both.
//
//	go test -run '^$' -bench Pipeline -benchmem ./audit/
func BenchmarkPipeline(b *testing.B) {
	recs := loadLog(b, "testdata/kernel-6.18.log")
	bytesPerPass := 0
	for _, r := range recs {
		bytesPerPass += len(r.text)
	}
	report := func(b *testing.B, events int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	}

	b.Run("trawl", func(b *testing.B) {
		var ev event.Event
		n := NewNormalizer(NewNames())
		events := 0
		r := NewReassembler(ReassemblerOptions{}, func(m *Message) {
			n.Fill(&ev, m)
			events++
		})
		now := time.Now()
		b.SetBytes(int64(bytesPerPass))
		b.ReportAllocs()
		for b.Loop() {
			for _, rc := range recs {
				r.Push(rc.typ, rc.text, now)
			}
		}
		report(b, events)
	})

	b.Run("go-libaudit", func(b *testing.B) {
		s := &coalesceStream{}
		r, err := libaudit.NewReassembler(256, 2*time.Second, s)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		b.SetBytes(int64(bytesPerPass))
		b.ReportAllocs()
		for b.Loop() {
			for _, rc := range recs {
				r.Push(auparse.AuditMessageType(rc.typ), rc.text)
			}
		}
		if s.err != nil {
			b.Fatal(s.err)
		}
		report(b, s.events)
	})
}

// coalesceStream turns each reassembled event into an aucoalesce.Event with
// names resolved, as auditbeat does.
type coalesceStream struct {
	events int
	err    error
}

func (s *coalesceStream) ReassemblyComplete(msgs []*auparse.AuditMessage) {
	ev, err := aucoalesce.CoalesceMessages(msgs)
	if err != nil {
		s.err = err
		return
	}
	aucoalesce.ResolveIDs(ev)
	s.events++
}

func (s *coalesceStream) EventsLost(int) {}

// BenchmarkParseHeader is the per-record cost the netlink reader pays
// before queueing (SerialOf) and the parser's header parse.
func BenchmarkParseHeader(b *testing.B) {
	text := []byte(`audit(1795664378.109:68): arch=c000003e syscall=59 success=yes exit=0 a0=59ffb3a0290 items=2 ppid=26431 pid=26458 auid=4294967295 uid=0 gid=0 comm="echo" exe="/usr/bin/echo" key="exec"`)
	b.Run("SerialOf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			SerialOf(text)
		}
	})
	b.Run("ParseHeader+Fields", func(b *testing.B) {
		b.ReportAllocs()
		var f Field
		for b.Loop() {
			rec, _ := ParseHeader(TypeSyscall, text)
			it := NewFields(rec.Body)
			for it.Next(&f) {
			}
		}
	})
}
