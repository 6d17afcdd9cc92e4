package flow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"os"
	"path/filepath"
)

// Snapshot format (all integers big-endian):
//
//	"trawltp1"
//	entries, each starting with a kind byte:
//	  1 template: addr(16) family(1) version(2) domain(4) id(2) options(1) len(2) record(len)
//	  2 exporter: addr(16) family(1) version(2) domain(4) samplingRate(8) initTimeMs(8)
//	0, then CRC-32C of every byte before it (4)
//
// Templates are stored as the records the exporter sent and parsed again
// on load, so a snapshot never holds state the decoder could not have
// learned from the wire.
const snapshotMagic = "trawltp1"

const (
	entryEnd      = 0
	entryTemplate = 1
	entryExporter = 2
)

// ErrBadSnapshot means a template snapshot is not one, is truncated or
// fails its checksum. Nothing from it was loaded.
var ErrBadSnapshot = errors.New("bad template snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendAddr(b []byte, a netip.Addr) []byte {
	a16 := a.As16()
	b = append(b, a16[:]...)
	if a.Is4() {
		return append(b, 4)
	}
	return append(b, 6)
}

// AppendSnapshot appends every template and exporter state (sampling
// rate, init time) of t to dst, for reloading with [Templates.LoadSnapshot]
// after a restart. It may run while Decoders use t: each shard is copied
// under its lock, so the snapshot is consistent per template, not as a
// whole.
func (t *Templates) AppendSnapshot(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, snapshotMagic...)
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for k, tp := range s.templates {
			dst = append(dst, entryTemplate)
			dst = appendAddr(dst, k.exporter)
			dst = binary.BigEndian.AppendUint16(dst, k.version)
			dst = binary.BigEndian.AppendUint32(dst, k.domain)
			dst = binary.BigEndian.AppendUint16(dst, k.id)
			opt := byte(0)
			if tp.options {
				opt = 1
			}
			dst = append(dst, opt)
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(tp.raw)))
			dst = append(dst, tp.raw...)
		}
		s.mu.RUnlock()
	}
	t.expMu.RLock()
	for k, st := range t.exporters {
		dst = append(dst, entryExporter)
		dst = appendAddr(dst, k.exporter)
		dst = binary.BigEndian.AppendUint16(dst, k.version)
		dst = binary.BigEndian.AppendUint32(dst, k.domain)
		dst = binary.BigEndian.AppendUint64(dst, st.samplingRate.Load())
		dst = binary.BigEndian.AppendUint64(dst, uint64(st.initTimeMs.Load()))
	}
	t.expMu.RUnlock()
	dst = append(dst, entryEnd)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// LoadSnapshot adds the templates and exporter states of a snapshot made
// by AppendSnapshot to t, replacing entries with the same key. The whole
// snapshot is checked first: on error (wrapping ErrBadSnapshot) t is left
// unchanged. It returns the number of templates loaded; templates past
// MaxTemplateBytes are left out.
func (t *Templates) LoadSnapshot(b []byte) (int, error) {
	if err := checkSnapshot(b); err != nil {
		return 0, err
	}
	return t.loadEntries(b[len(snapshotMagic) : len(b)-5])
}

func checkSnapshot(b []byte) error {
	if len(b) < len(snapshotMagic)+5 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return fmt.Errorf("cannot read template snapshot header: %w", ErrBadSnapshot)
	}
	body := b[:len(b)-4]
	if body[len(body)-1] != entryEnd || crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return fmt.Errorf("cannot verify template snapshot of %d bytes: %w", len(b), ErrBadSnapshot)
	}
	// Parse without storing, so a bad entry leaves t untouched.
	if _, err := (*Templates)(nil).loadEntries(b[len(snapshotMagic) : len(b)-5]); err != nil {
		return err
	}
	return nil
}

func readAddr(b []byte) (netip.Addr, bool) {
	a := netip.AddrFrom16([16]byte(b[:16]))
	switch b[16] {
	case 4:
		return a.Unmap(), a.Is4In6()
	case 6:
		return a, !a.Is4In6()
	}
	return netip.Addr{}, false
}

// loadEntries parses snapshot entries and, when t is not nil, stores them.
func (t *Templates) loadEntries(b []byte) (int, error) {
	const keyLen = 17 + 2 + 4
	loaded := 0
	off := 0
	bad := func(what string) (int, error) {
		return loaded, fmt.Errorf("cannot load %s at offset %d of template snapshot: %w", what, off+len(snapshotMagic), ErrBadSnapshot)
	}
	for off < len(b) {
		kind := b[off]
		e := b[off+1:]
		if len(e) < keyLen {
			return bad("entry")
		}
		addr, ok := readAddr(e)
		version := binary.BigEndian.Uint16(e[17:])
		domain := binary.BigEndian.Uint32(e[19:])
		if !ok || (version != 9 && version != 10) {
			return bad("exporter key")
		}
		e = e[keyLen:]
		switch kind {
		case entryTemplate:
			if len(e) < 5 {
				return bad("template")
			}
			id := binary.BigEndian.Uint16(e)
			options := e[2] == 1
			l := int(binary.BigEndian.Uint16(e[3:]))
			if e[2] > 1 || len(e)-5 < l {
				return bad("template")
			}
			raw := e[5 : 5+l]
			n, scope, size, minLen, err := parseTemplate(version, options, raw)
			hdr := 4
			if options {
				hdr = 6
			}
			if err != nil || hdr+size != l || id < 256 || binary.BigEndian.Uint16(raw) != id {
				return bad("template record")
			}
			if t != nil && t.put(templateKey{addr, domain, version, id}, raw, options, func() *template {
				return buildTemplate(version, raw[hdr:], n, scope, minLen, options)
			}) {
				loaded++
			}
			off += 1 + keyLen + 5 + l
		case entryExporter:
			if len(e) < 16 {
				return bad("exporter state")
			}
			if t != nil {
				if st := t.state(exporterKey{addr, domain, version}, true); st != nil {
					st.samplingRate.Store(binary.BigEndian.Uint64(e))
					st.initTimeMs.Store(int64(binary.BigEndian.Uint64(e[8:])))
				}
			}
			off += 1 + keyLen + 16
		default:
			return bad("entry kind")
		}
	}
	return loaded, nil
}

// SaveFile writes a snapshot of t to path atomically: to a temporary file
// in the same directory, synced, then renamed over path.
func (t *Templates) SaveFile(path string) error {
	b := t.AppendSnapshot(nil)
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot create template snapshot: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("cannot write template snapshot %q: %w", path, err)
	}
	return nil
}

// LoadFile loads a snapshot written by SaveFile. A missing file is not an
// error (first start): it returns 0, nil.
func (t *Templates) LoadFile(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cannot open template snapshot: %w", err)
	}
	defer f.Close()
	// Templates are bounded by MaxTemplateBytes; exporter states by
	// MaxExporterStates entries of 48 bytes.
	b, err := io.ReadAll(io.LimitReader(f, 2*MaxTemplateBytes+48*MaxExporterStates+64))
	if err != nil {
		return 0, fmt.Errorf("cannot read template snapshot %q: %w", path, err)
	}
	n, err := t.LoadSnapshot(b)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", path, err)
	}
	return n, nil
}
