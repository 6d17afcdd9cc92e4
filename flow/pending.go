package flow

import (
	"net/netip"

	"github.com/trawlsec/trawl/event"
)

// Bounds of a Decoder's buffer of data sets that arrived before their
// template. The buffer is allocated once, on first use.
const (
	// PendingBytes is the room for held data sets, per Decoder.
	PendingBytes = 256 << 10
	// PendingSets is how many data sets a Decoder holds at most.
	PendingSets = 512
	// PendingPerExporter is how many of them one exporter may take, so a
	// broken exporter cannot starve the others.
	PendingPerExporter = 64
	// PendingAge is how many packets (v9 and IPFIX, any exporter) the
	// Decoder decodes before a held set is given up.
	PendingAge = 4096
)

// pendingSet is a data set held until its template comes, with the header
// context its records need.
type pendingSet struct {
	src      netip.AddrPort
	key      templateKey
	baseNs   int64
	uptimeMs uint32
	seq      uint32
	off, n   int    // bytes in Decoder.pendBuf
	born     uint64 // Decoder.packets when held
}

// hold keeps a copy of a data set whose template is unknown. It returns
// false when there is no room.
func (d *Decoder) hold(id uint16, body []byte) bool {
	if d.pendBuf == nil {
		d.pendBuf = make([]byte, 0, PendingBytes)
		d.pend = make([]pendingSet, 0, PendingSets)
	}
	mine := 0
	for i := range d.pend {
		if d.pend[i].key.exporter == d.exporter {
			mine++
		}
	}
	if mine >= PendingPerExporter || len(body) > PendingBytes/4 {
		return false
	}
	if len(d.pend) == cap(d.pend) || len(body) > cap(d.pendBuf)-len(d.pendBuf) {
		d.compactPending(len(body))
		if len(d.pend) == cap(d.pend) || len(body) > cap(d.pendBuf)-len(d.pendBuf) {
			return false
		}
	}
	off := len(d.pendBuf)
	d.pendBuf = append(d.pendBuf, body...)
	d.pend = append(d.pend, pendingSet{
		src: d.ev.Source, key: templateKey{d.exporter, d.domain, d.version, id},
		baseNs: d.baseNs, uptimeMs: d.uptimeMs, seq: d.proto.SequenceNum,
		off: off, n: len(body), born: d.packets,
	})
	return true
}

// compactPending drops expired sets and, while need bytes or a slot are
// still missing, the oldest ones; then packs the buffer.
func (d *Decoder) compactPending(need int) {
	w, used := 0, 0
	for _, p := range d.pend {
		if d.packets-p.born > PendingAge {
			d.info.PendingDropped++
			continue
		}
		used += p.n
		d.pend[w] = p
		w++
	}
	d.pend = d.pend[:w]
	drop := 0
	for drop < len(d.pend) && (used+need > cap(d.pendBuf) || len(d.pend)-drop >= cap(d.pend)) {
		used -= d.pend[drop].n
		drop++
	}
	d.info.PendingDropped += drop
	d.pend = d.pend[:copy(d.pend, d.pend[drop:])]
	// Entries are in buffer order, so moving each down never overwrites
	// one not yet moved.
	off := 0
	for i := range d.pend {
		p := &d.pend[i]
		copy(d.pendBuf[off:off+p.n], d.pendBuf[p.off:p.off+p.n])
		p.off = off
		off += p.n
	}
	d.pendBuf = d.pendBuf[:off]
}

// retryPending decodes the held sets whose template has arrived, here or
// in another Decoder, and gives up those too old.
func (d *Decoder) retryPending(fn func(e *event.Event)) {
	if len(d.pend) == 0 {
		return
	}
	gen := d.t.gen.Load()
	if gen == d.pendGen && d.packets-d.pend[0].born <= PendingAge {
		return
	}
	d.pendGen = gen
	// The current packet's context is not needed past this point, but
	// PacketInfo and the caller's view of d.ev.Source must not change.
	src := d.ev.Source
	w := 0
	for _, p := range d.pend {
		if d.packets-p.born > PendingAge {
			d.info.PendingDropped++
			continue
		}
		if d.t.get(p.key) == nil {
			d.pend[w] = p
			w++
			continue
		}
		d.setContext(p.src, p.key.version, p.key.domain, p.baseNs, p.uptimeMs, p.seq)
		before := d.info.Records
		// The set was bounded when held; an error ends it like on arrival.
		_ = d.dataSet(p.key.id, d.pendBuf[p.off:p.off+p.n], fn)
		d.info.PendingRecords += d.info.Records - before
		d.info.Records = before
	}
	d.pend = d.pend[:w]
	if w == 0 {
		d.pendBuf = d.pendBuf[:0]
	}
	d.ev.Source = src
}

// RetryPending decodes the held data sets whose template has arrived since
// they were held, in this Decoder or another sharing its Templates, hands
// their records to fn, and returns their count. Decode does this on every
// v9/IPFIX packet; an input also calls it while a socket is quiet and
// before it stops, so held data does not wait for that socket's next
// packet. Not safe for concurrent use with Decode on the same Decoder.
func (d *Decoder) RetryPending(fn func(e *event.Event)) int {
	if len(d.pend) == 0 {
		return 0
	}
	d.info = PacketInfo{}
	d.pendGen = d.t.gen.Load() - 1 // look even if no template arrived since the last try
	d.retryPending(fn)
	return d.info.PendingRecords
}
