package audit

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/trawlsec/trawl/event"
)

// FuzzRecord feeds one record to the parser, the reassembler and the
// normaliser. Seeds are the records captured from Linux 6.18 in
// testdata/kernel-6.18.log. It checks that nothing panics, that every
// slice handed out lies inside the input, and that the event survives the
// binary encoding unchanged.
func FuzzRecord(f *testing.F) {
	for _, r := range loadLog(f, "testdata/kernel-6.18.log") {
		f.Add(r.typ, r.text)
	}
	f.Add(uint16(1112), []byte(`audit(1700000000.000:10): pid=400 uid=0 msg='op=login acct="x" exe="/usr/sbin/sshd" res=failed'`))
	f.Fuzz(func(t *testing.T, typ uint16, text []byte) {
		rec, err := ParseHeader(typ, text)
		if err == nil {
			if len(rec.Body) > 0 && !within(rec.Body, text) {
				t.Fatalf("body %q not inside the text", rec.Body)
			}
			it := NewFields(rec.Body)
			var fl Field
			for n := 0; it.Next(&fl); n++ {
				if n > len(rec.Body) || (len(fl.Key) > 0 && !within(fl.Key, text)) || (len(fl.Value) > 0 && !within(fl.Value, text)) {
					t.Fatalf("field %d (%q=%q) not inside the text", n, fl.Key, fl.Value)
				}
			}
		}
		checkEvents(t, [][]byte{text}, []uint16{typ})
	})
}

// FuzzEvent feeds several records, one per line of the input ("TYPE text"
// with TYPE as two bytes), as one stream: multi-record events, EXECVE
// chunks split over records, interleaving.
func FuzzEvent(f *testing.F) {
	bySerial := map[uint64][]byte{}
	for _, r := range loadLog(f, "testdata/kernel-6.18.log") {
		s, _ := SerialOf(r.text)
		bySerial[s] = appendLine(bySerial[s], r.typ, r.text)
	}
	for _, b := range bySerial {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var texts [][]byte
		var types []uint16
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			if len(line) < 2 {
				continue
			}
			types = append(types, binary.BigEndian.Uint16(line))
			texts = append(texts, line[2:])
		}
		checkEvents(t, texts, types)
	})
}

func appendLine(b []byte, typ uint16, text []byte) []byte {
	if len(b) > 0 {
		b = append(b, '\n')
	}
	b = binary.BigEndian.AppendUint16(b, typ)
	return append(b, text...)
}

func within(s, in []byte) bool {
	if len(in) == 0 || len(s) == 0 {
		return len(s) == 0
	}
	// Compare addresses through slicing: s must be in[i:j] for some i, j.
	for i := 0; i+len(s) <= len(in); i++ {
		if &in[i] == &s[0] {
			return true
		}
	}
	return false
}

func checkEvents(t *testing.T, texts [][]byte, types []uint16) {
	var (
		ev   event.Event
		n    = NewNormalizer(nil)
		bin  []byte
		back event.Event
	)
	r := NewReassembler(ReassemblerOptions{MaxEventBytes: 64 << 10}, func(m *Message) {
		n.Fill(&ev, m)
		a := &ev.Audit
		if ev.Kind != event.KindAudit || a.Sequence != m.Serial || len(a.Raw) != len(m.Raw) {
			t.Fatalf("event header %+v", ev)
		}
		for _, s := range [][]byte{a.Action, a.Result, a.Syscall, a.Exe, a.Comm, a.Cwd, a.FilePath, a.Key, a.Title} {
			if len(s) > len(m.Raw)+1 {
				t.Fatalf("field longer than the whole event: %q", s)
			}
		}
		bin = event.AppendBinary(bin[:0], &ev)
		back.Reset()
		if err := event.DecodeBinary(&back, bin); err != nil {
			t.Fatalf("event does not decode: %v", err)
		}
		if !equalAudit(&back.Audit, a) {
			t.Fatalf("binary round trip changed the event:\n got %+v\nwant %+v", back.Audit, *a)
		}
	})
	now := time.Unix(1000, 0)
	for i := range texts {
		r.Push(types[i], texts[i], now)
	}
	r.FlushAll()
}

func equalAudit(a, b *event.Audit) bool {
	eq := bytes.Equal
	if len(a.Args) != len(b.Args) {
		return false
	}
	for i := range a.Args {
		if !eq(a.Args[i], b.Args[i]) {
			return false
		}
	}
	return a.Sequence == b.Sequence && a.RecordType == b.RecordType && eq(a.Action, b.Action) &&
		eq(a.Result, b.Result) && eq(a.Syscall, b.Syscall) && a.PID == b.PID && a.PPID == b.PPID &&
		a.UID == b.UID && a.AUID == b.AUID && a.GID == b.GID && eq(a.Exe, b.Exe) && eq(a.Comm, b.Comm) &&
		eq(a.Cwd, b.Cwd) && eq(a.FilePath, b.FilePath) && a.DstAddr == b.DstAddr && eq(a.Key, b.Key) &&
		eq(a.Raw, b.Raw) && eq(a.Title, b.Title) && eq(a.UserName, b.UserName) &&
		eq(a.AuditUserName, b.AuditUserName) && eq(a.GroupName, b.GroupName)
}
