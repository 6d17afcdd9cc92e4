package disk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
)

const (
	cursorDir     = "cursors"
	cursorExt     = ".cur"
	cursorMagic   = "TRCU"
	cursorVersion = 1
	cursorSize    = 20
	// maxCursorName bounds a cursor name so that its file name stays well within
	// NAME_MAX.
	maxCursorName = 128
)

// checkCursorName reports whether name can name a reader: 1 to 128 characters
// from [A-Za-z0-9._-], not starting with a dot.
func checkCursorName(name string) error {
	if name == "" || len(name) > maxCursorName || name[0] == '.' {
		return fmt.Errorf("invalid spool reader name %q: want 1 to %d characters from [A-Za-z0-9._-], not starting with '.'", name, maxCursorName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("invalid spool reader name %q: character %q is not in [A-Za-z0-9._-]", name, c)
		}
	}
	return nil
}

// parseCursorFileName returns the reader name of a cursor file name.
func parseCursorFileName(fname string) (string, bool) {
	name, ok := strings.CutSuffix(fname, cursorExt)
	if !ok || checkCursorName(name) != nil {
		return "", false
	}
	return name, true
}

// encodeCursor returns the content of a cursor file holding p.
func encodeCursor(p Pos) []byte {
	b := make([]byte, 0, cursorSize)
	b = append(b, cursorMagic...)
	b = binary.LittleEndian.AppendUint32(b, cursorVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(p))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeCursor parses the content of a cursor file.
func decodeCursor(b []byte) (Pos, error) {
	if len(b) != cursorSize {
		return 0, fmt.Errorf("cursor file is %d bytes, want %d", len(b), cursorSize)
	}
	if string(b[:4]) != cursorMagic {
		return 0, fmt.Errorf("bad cursor magic %q", b[:4])
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != cursorVersion {
		return 0, fmt.Errorf("unsupported cursor version %d", v)
	}
	if want, got := binary.LittleEndian.Uint32(b[16:]), crc32.Checksum(b[:16], castagnoli); want != got {
		return 0, fmt.Errorf("cursor CRC32C mismatch: stored %08x, computed %08x", want, got)
	}
	return Pos(binary.LittleEndian.Uint64(b[8:])), nil
}

func readCursorFile(path string) (Pos, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cannot read spool cursor: %w", err)
	}
	p, err := decodeCursor(b)
	if err != nil {
		return 0, fmt.Errorf("cannot decode spool cursor %q: %w", path, err)
	}
	return p, nil
}

// writeCursorFile replaces the cursor file of name in cdir atomically and
// durably: a reader of the file sees the old or the new position, never a mix,
// and after a crash it sees the new one once writeCursorFile has returned.
func writeCursorFile(cdir, name string, p Pos) error {
	path := filepath.Join(cdir, name+cursorExt)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create spool cursor %q: %w", tmp, err)
	}
	_, err = f.Write(encodeCursor(p))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write spool cursor %q at position %d: %w", path, p, err)
	}
	return syncDir(cdir)
}
