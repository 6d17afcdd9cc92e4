package flow

import (
	"bytes"
	"net/netip"
	"sync"
	"sync/atomic"
)

// templateKey names one template of one exporter.
type templateKey struct {
	exporter netip.Addr // unmapped, so 1.2.3.4 and ::ffff:1.2.3.4 are one exporter
	domain   uint32
	version  uint16
	id       uint16
}

// exporterKey names one observation domain of one exporter.
type exporterKey struct {
	exporter netip.Addr
	domain   uint32
	version  uint16
}

// exporterState is what options data tells about an exporter's domain. It
// is read on every data packet and written rarely, hence the atomics.
type exporterState struct {
	samplingRate atomic.Uint64 // 0 = not announced
	initTimeMs   atomic.Int64  // systemInitTimeMilliseconds, 0 = unknown
}

// MaxExporterStates bounds the exporter/domain pairs a Templates tracks for
// options data, so a flood of spoofed sources cannot grow it without end.
// Past the bound, new pairs get no sampling rate.
const MaxExporterStates = 1 << 16

// MaxTemplateBytes bounds the memory all templates of a Templates may
// take (template records as sent plus their decoded field lists), so a
// flood of template ids cannot exhaust memory. Past it, new templates are
// refused (counted in PacketInfo.TemplatesRefused); redefinitions of known
// ones still replace them.
const MaxTemplateBytes = 64 << 20

// MaxExporterTemplateBytes bounds the template memory of one exporter
// address (all its domains), so one exporter cannot take the room of all:
// past it, its new templates are refused like past MaxTemplateBytes.
const MaxExporterTemplateBytes = 4 << 20

const shardCount = 16

type shard struct {
	mu        sync.RWMutex
	templates map[templateKey]*template
}

// Templates caches the templates and options data (sampling rate, system
// init time) of every exporter. It is safe for concurrent use by many
// Decoders. A template is allocated when it arrives or changes; a resent
// identical template allocates nothing.
type Templates struct {
	shards [shardCount]shard

	bytes    atomic.Int64  // memory held by templates, see templateSize
	gen      atomic.Uint64 // bumped when a template is stored: Decoders retry held data
	maxBytes int64         // MaxTemplateBytes; lowered by tests
	maxExp   int64         // MaxExporterTemplateBytes; lowered by tests

	// Template memory per exporter address. Touched only when templates
	// change, never on the data path.
	perExpMu sync.Mutex
	perExp   map[netip.Addr]int64

	expMu     sync.RWMutex
	exporters map[exporterKey]*exporterState
}

// templateSize approximates what a template costs: its raw record, its
// field list and fixed overhead (struct, map entry).
func templateSize(t *template) int64 {
	return int64(len(t.raw) + 4*len(t.fields) + 128)
}

// NewTemplates returns an empty cache.
func NewTemplates() *Templates {
	t := &Templates{
		exporters: make(map[exporterKey]*exporterState),
		perExp:    make(map[netip.Addr]int64),
		maxBytes:  MaxTemplateBytes,
		maxExp:    MaxExporterTemplateBytes,
	}
	for i := range t.shards {
		t.shards[i].templates = make(map[templateKey]*template)
	}
	return t
}

// Bytes returns the memory templates take, as MaxTemplateBytes counts it.
func (t *Templates) Bytes() int64 { return t.bytes.Load() }

// Len returns the number of templates held.
func (t *Templates) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.templates)
		s.mu.RUnlock()
	}
	return n
}

func (t *Templates) shardOf(k *templateKey) *shard {
	// The template id and domain vary most between templates of one
	// exporter; the low address byte spreads exporters.
	a := k.exporter.As16()
	h := uint32(k.id) ^ k.domain*0x9e3779b1 ^ uint32(a[15])*31 ^ uint32(a[14])*131
	h ^= h >> 7
	return &t.shards[h%shardCount]
}

func (t *Templates) get(k templateKey) *template {
	s := t.shardOf(&k)
	s.mu.RLock()
	tp := s.templates[k]
	s.mu.RUnlock()
	return tp
}

// account adds delta bytes to the template memory of t and of exporter.
func (t *Templates) account(exporter netip.Addr, delta int64) {
	t.bytes.Add(delta)
	t.perExpMu.Lock()
	if n := t.perExp[exporter] + delta; n > 0 {
		t.perExp[exporter] = n
	} else {
		delete(t.perExp, exporter)
	}
	t.perExpMu.Unlock()
}

// room says whether a new template of raw can be stored for exporter.
func (t *Templates) room(exporter netip.Addr, raw []byte) bool {
	need := int64(2*len(raw) + 128) // templateSize, before building it
	if t.bytes.Load()+need > t.maxBytes {
		return false
	}
	t.perExpMu.Lock()
	n := t.perExp[exporter]
	t.perExpMu.Unlock()
	return n+need <= t.maxExp
}

// put stores a template parsed from raw (the template record as sent),
// unless an identical one is already there. It returns false when the
// template is new and MaxTemplateBytes or MaxExporterTemplateBytes is
// reached.
func (t *Templates) put(k templateKey, raw []byte, options bool, build func() *template) bool {
	s := t.shardOf(&k)
	s.mu.RLock()
	old := s.templates[k]
	s.mu.RUnlock()
	if old != nil && old.options == options && bytes.Equal(old.raw, raw) {
		return true
	}
	if old == nil && !t.room(k.exporter, raw) {
		return false
	}
	tp := build()
	tp.raw = append([]byte(nil), raw...)
	s.mu.Lock()
	old = s.templates[k]
	s.templates[k] = tp
	s.mu.Unlock()
	delta := templateSize(tp)
	if old != nil {
		delta -= templateSize(old)
	}
	t.account(k.exporter, delta)
	t.gen.Add(1)
	return true
}

// withdraw removes one template.
func (t *Templates) withdraw(k templateKey) {
	s := t.shardOf(&k)
	s.mu.Lock()
	old := s.templates[k]
	delete(s.templates, k)
	s.mu.Unlock()
	if old != nil {
		t.account(k.exporter, -templateSize(old))
	}
}

// withdrawAll removes every template (options templates when options is
// set, else data templates) of an exporter's domain, as an IPFIX "all
// templates withdrawal" asks.
func (t *Templates) withdrawAll(e exporterKey, options bool) {
	var freed int64
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, tp := range s.templates {
			if k.exporter == e.exporter && k.domain == e.domain && k.version == e.version && tp.options == options {
				delete(s.templates, k)
				freed += templateSize(tp)
			}
		}
		s.mu.Unlock()
	}
	if freed != 0 {
		t.account(e.exporter, -freed)
	}
}

// state returns the options state of an exporter's domain, creating it
// when create is set (nil past MaxExporterStates or when absent).
func (t *Templates) state(k exporterKey, create bool) *exporterState {
	t.expMu.RLock()
	st := t.exporters[k]
	t.expMu.RUnlock()
	if st != nil || !create {
		return st
	}
	t.expMu.Lock()
	defer t.expMu.Unlock()
	if st = t.exporters[k]; st == nil && len(t.exporters) < MaxExporterStates {
		st = new(exporterState)
		t.exporters[k] = st
	}
	return st
}

// SamplingRate returns the sampling rate the exporter last announced in
// options data for an observation domain (v9 source id), or 0. version is
// 9 or 10.
func (t *Templates) SamplingRate(exporter netip.Addr, version uint16, domain uint32) uint64 {
	st := t.state(exporterKey{exporter.Unmap(), domain, version}, false)
	if st == nil {
		return 0
	}
	return st.samplingRate.Load()
}
