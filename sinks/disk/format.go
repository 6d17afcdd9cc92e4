package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Pos is a logical byte offset across all segments of a spool: a segment's base
// offset plus an offset inside that segment's file. A record is identified by
// its end position. Positions only grow and are never reused.
type Pos uint64

// MaxRecordSize is the largest record Append accepts. Frames are at most 64 MiB;
// the spool takes twice that so a frame's own header never hits the limit. The
// bound also caps what a reader allocates for a (corrupt) length field.
const MaxRecordSize = 128 << 20

const (
	segMagic   = "TRSP"
	segVersion = 1
	// segHeaderSize is the size of the segment file header; the first record of a
	// segment starts at this offset.
	segHeaderSize = 16
	// envSize is the size of a record envelope's header (length and CRC).
	envSize = 8
	segExt  = ".seg"
	// segNameLen is the length of a segment file name: 20 digits and ".seg".
	segNameLen = 20 + len(segExt)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrNoData is returned by [Reader.Next] when the reader has consumed every
// durable record; call [Reader.Wait] to wait for more.
var ErrNoData = errors.New("no more durable records in the spool")

// ErrCorrupt is wrapped (as a *[CorruptError]) by every error that reports a
// record or segment header that fails validation outside a torn tail: a CRC
// mismatch, an impossible length or a bad segment header.
var ErrCorrupt = errors.New("spool data is corrupt")

// CorruptError reports where corrupt spool data was found. It matches
// [ErrCorrupt] with errors.Is.
type CorruptError struct {
	// Segment is the path of the segment file.
	Segment string
	// Offset is the byte offset inside the segment file where the bad record (or
	// header, at offset 0) starts.
	Offset int64
	// Reason says what failed validation.
	Reason string
}

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt spool segment %q at offset %d: %s", e.Segment, e.Offset, e.Reason)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// segName returns the file name of the segment with the given base offset.
func segName(base Pos) string {
	return fmt.Sprintf("%020d%s", uint64(base), segExt)
}

// segPath returns the path of the segment with the given base offset in dir.
func segPath(dir string, base Pos) string {
	return filepath.Join(dir, segName(base))
}

// parseSegName returns the base offset encoded in a segment file name, or false
// when name is not a segment file name.
func parseSegName(name string) (Pos, bool) {
	if len(name) != segNameLen || !strings.HasSuffix(name, segExt) {
		return 0, false
	}
	digits := name[:20]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return Pos(v), true
}

// appendSegHeader appends the header of a segment with the given base to dst.
func appendSegHeader(dst []byte, base Pos) []byte {
	dst = append(dst, segMagic...)
	dst = binary.LittleEndian.AppendUint16(dst, segVersion)
	dst = binary.LittleEndian.AppendUint16(dst, 0)
	return binary.LittleEndian.AppendUint64(dst, uint64(base))
}

// checkSegHeader validates a segment header read from the segment with the
// given base. It returns a reason when the header is invalid, "" otherwise.
func checkSegHeader(h []byte, base Pos) string {
	if len(h) < segHeaderSize {
		return fmt.Sprintf("segment header is %d bytes, want %d", len(h), segHeaderSize)
	}
	if string(h[:4]) != segMagic {
		return fmt.Sprintf("bad segment magic %q", h[:4])
	}
	if v := binary.LittleEndian.Uint16(h[4:]); v != segVersion {
		return fmt.Sprintf("unsupported segment version %d", v)
	}
	if b := Pos(binary.LittleEndian.Uint64(h[8:])); b != base {
		return fmt.Sprintf("segment header says base %d, file name says %d", b, base)
	}
	return ""
}

// crcResidue is the CRC32C of any byte string followed by its own CRC32C in
// little-endian order.
const crcResidue = 0x48674bc7

// putEnvelope writes the envelope header of payload into dst[:envSize].
// sealed says that payload ends with its own CRC32C, so its checksum is
// crcResidue.
func putEnvelope(dst []byte, payload []byte, sealed bool) {
	binary.LittleEndian.PutUint32(dst, uint32(len(payload)))
	sum := uint32(crcResidue)
	if !sealed || len(payload) < 4 {
		sum = crc32.Checksum(payload, castagnoli)
	}
	binary.LittleEndian.PutUint32(dst[4:], sum)
}

// recordError says why segReader.record could not return a record.
type recordError struct {
	// torn is set when the record does not end before the limit: at the end of
	// the last segment that is a torn (or still being written) tail.
	torn   bool
	reason string
}

func (e *recordError) Error() string { return e.reason }

// segReader reads envelopes from one segment file through a read-ahead buffer.
// It is not safe for concurrent use.
type segReader struct {
	f io.ReaderAt
	// buf holds the file's bytes [bufOff, bufOff+len(buf)).
	buf    []byte
	bufOff int64
}

// readAhead is how much a segReader reads at once; records larger than that are
// read in one piece.
const readAhead = 256 << 10

// maxIdleBuf is the buffer size above which a segReader goes back to a
// readAhead-sized buffer once records are small again, so one huge record does
// not pin its memory for the reader's lifetime.
const maxIdleBuf = 8 << 20

func (sr *segReader) reset(f io.ReaderAt) {
	sr.f = f
	sr.buf = sr.buf[:0]
	sr.bufOff = 0
}

// fill returns the file bytes [off, off+n), reading ahead up to limit. The
// result aliases sr.buf.
func (sr *segReader) fill(off int64, n int, limit int64) ([]byte, error) {
	if off >= sr.bufOff && off+int64(n) <= sr.bufOff+int64(len(sr.buf)) {
		start := off - sr.bufOff
		return sr.buf[start : start+int64(n)], nil
	}
	want := n
	if want < readAhead {
		want = readAhead
	}
	if rest := limit - off; int64(want) > rest {
		want = int(rest)
	}
	if cap(sr.buf) < want || (cap(sr.buf) > maxIdleBuf && want <= readAhead) {
		sr.buf = make([]byte, want, max(want, readAhead))
	}
	sr.buf = sr.buf[:want]
	sr.bufOff = off
	m, err := sr.f.ReadAt(sr.buf, off)
	sr.buf = sr.buf[:m]
	if m < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return sr.buf[:n], nil
}

// record returns the payload of the record starting at file offset off and the
// offset just past it. The record must end at or before limit. The payload
// aliases an internal buffer valid until the next call. A *recordError reports
// an invalid or incomplete record; other errors are I/O errors.
func (sr *segReader) record(off, limit int64) (rec []byte, next int64, err error) {
	if limit-off < envSize {
		return nil, off, &recordError{torn: true, reason: fmt.Sprintf("envelope header cut after %d of %d bytes", limit-off, envSize)}
	}
	h, err := sr.fill(off, envSize, limit)
	if err != nil {
		return nil, off, fmt.Errorf("cannot read envelope at offset %d: %w", off, err)
	}
	n := binary.LittleEndian.Uint32(h)
	sum := binary.LittleEndian.Uint32(h[4:])
	if n == 0 || n > MaxRecordSize {
		return nil, off, &recordError{reason: fmt.Sprintf("invalid record length %d", n)}
	}
	end := off + envSize + int64(n)
	if end > limit {
		return nil, off, &recordError{torn: true, reason: fmt.Sprintf("record of %d bytes runs %d bytes past the end", n, end-limit)}
	}
	b, err := sr.fill(off, envSize+int(n), limit)
	if err != nil {
		return nil, off, fmt.Errorf("cannot read record of %d bytes at offset %d: %w", n, off, err)
	}
	rec = b[envSize:]
	if got := crc32.Checksum(rec, castagnoli); got != sum {
		return nil, off, &recordError{reason: fmt.Sprintf("CRC32C mismatch: stored %08x, computed %08x", sum, got)}
	}
	return rec, end, nil
}

// syncDir fsyncs a directory so that entries created, renamed or removed in it
// are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open directory %q to fsync it: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot fsync directory %q: %w", dir, err)
	}
	return nil
}
