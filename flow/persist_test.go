package flow

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/trawlsec/trawl/event"
)

// persistStream is what two exporters send: v9 templates and sampling
// options from A, IPFIX templates (variable-length, enterprise fields) and
// an init time from B; then data packets with no template in them.
func persistStream() (learn, data [][]byte) {
	all := v9AllFields()
	scope := []fv{{id: 1, l: 4, val: num(0, 4)}}
	opts := []fv{{id: 34, l: 4, val: num(64, 4)}}
	ext := []fv{{id: 1, l: 8, val: num(99, 8)}, {id: 82, l: varLen, val: []byte("ge-0/0/1")},
		{id: 5, l: 2, pen: 2636, val: num(1, 2)}, {id: 22, l: 4, val: num(10, 4)},
		{id: 27, l: 16, val: ip("2001:db8::7")}}
	iscope := []fv{{id: 144, l: 4, val: num(0, 4)}}
	iopts := []fv{{id: 160, l: 8, val: num(1699999000000, 8)}}
	learn = [][]byte{
		v9Packet(1000, 1700000000, 0, 3).openSet(0).template(256, all).template(257, all[:3]).
			openSet(1).optionsTemplate(258, scope, opts).openSet(258).data(append(scope, opts...)).bytes(),
		ipfixPacket(1700000000, 0, 4).openSet(2).template(256, ext).
			openSet(3).optionsTemplate(300, iscope, iopts).openSet(300).data(append(iscope, iopts...)).bytes(),
	}
	data = [][]byte{
		v9Packet(1000, 1700000000, 1, 3).openSet(256).data(all).openSet(257).data(all[:3]).bytes(),
		ipfixPacket(1700000000, 1, 4).openSet(256).data(ext).data(ext).bytes(),
	}
	return learn, data
}

func decodeAll(t *testing.T, tpls *Templates, data [][]byte) []event.Flow {
	t.Helper()
	d := NewDecoder(tpls)
	var out []event.Flow
	for i, p := range data {
		exp := exporterA
		if i == 1 {
			exp = exporterB
		}
		got, _, err := collect(d, exp, p)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		out = append(out, got...)
	}
	return out
}

func TestTemplatesSnapshotRestart(t *testing.T) {
	learn, data := persistStream()
	before := NewTemplates()
	d := NewDecoder(before)
	if _, _, err := collect(d, exporterA, learn[0]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := collect(d, exporterB, learn[1]); err != nil {
		t.Fatal(err)
	}
	want := decodeAll(t, before, data)
	if len(want) != 4 || want[0].SamplingRate != 512 || want[1].SamplingRate != 64 || want[2].TimeStartNs != (1699999000000+10)*1e6 {
		t.Fatalf("reference decode: %+v", want)
	}

	path := filepath.Join(t.TempDir(), "templates")
	if err := before.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	after := NewTemplates()
	n, err := after.LoadFile(path)
	if err != nil || n != before.Len() || after.Len() != before.Len() || after.Bytes() != before.Bytes() {
		t.Fatalf("loaded %d of %d templates (%d, %d bytes): %v", n, before.Len(), after.Len(), after.Bytes(), err)
	}
	checkFlows(t, decodeAll(t, after, data), want)

	// A missing file is a first start.
	if n, err := NewTemplates().LoadFile(filepath.Join(t.TempDir(), "none")); n != 0 || err != nil {
		t.Fatalf("missing file: %d, %v", n, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// TestTemplatesSnapshotCorrupt flips and cuts a snapshot everywhere: the
// load must fail and leave the cache empty.
func TestTemplatesSnapshotCorrupt(t *testing.T) {
	learn, _ := persistStream()
	tpls := NewTemplates()
	d := NewDecoder(tpls)
	collect(d, exporterA, learn[0])
	collect(d, exporterB, learn[1])
	snap := tpls.AppendSnapshot(nil)
	f := func(b []byte) {
		t.Helper()
		fresh := NewTemplates()
		if _, err := fresh.LoadSnapshot(b); !errors.Is(err, ErrBadSnapshot) || fresh.Len() != 0 {
			t.Fatalf("%d bytes: err %v, %d templates", len(b), err, fresh.Len())
		}
	}
	for i := range snap {
		f(snap[:i])
		c := append([]byte(nil), snap...)
		c[i] ^= 0x20
		f(c)
	}
}

func FuzzLoadSnapshot(f *testing.F) {
	learn, _ := persistStream()
	tpls := NewTemplates()
	d := NewDecoder(tpls)
	d.Decode(exporterA, learn[0], func(*event.Event) {})
	d.Decode(exporterB, learn[1], func(*event.Event) {})
	f.Add(tpls.AppendSnapshot(nil))
	f.Add(NewTemplates().AppendSnapshot(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		a := NewTemplates()
		n, err := a.LoadSnapshot(b)
		if err != nil {
			if a.Len() != 0 {
				t.Fatalf("failed load left %d templates", a.Len())
			}
			return
		}
		// What loads must survive a round trip unchanged.
		again := NewTemplates()
		m, err := again.LoadSnapshot(a.AppendSnapshot(nil))
		if err != nil || m != a.Len() || n < a.Len() || again.Bytes() != a.Bytes() {
			t.Fatalf("round trip: %d of %d templates, %v", m, a.Len(), err)
		}
	})
}
