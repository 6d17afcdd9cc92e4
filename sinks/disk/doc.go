// Package disk is trawl's durable spool: an append-only log of opaque records
// (frames, 100 B to 64 MiB each) split into segment files, with group commit,
// crash recovery, size/age retention and durable named read cursors.
//
// # Layout
//
// A spool is one directory:
//
//	DIR/LOCK                          flock(2)ed by the one Spool that owns DIR
//	DIR/00000000000000000000.seg      segments, named by their 20-digit zero-padded base
//	DIR/00000000000000131072.seg
//	DIR/cursors/<name>.cur            one durable cursor per named reader
//
// # Positions
//
// A position ([Pos]) is a logical byte offset across all segments: a segment's
// base plus a byte offset inside its file, header included. A new segment's base
// is the previous segment's base plus that segment's final size, so positions
// only grow, are never reused, and stay valid after retention deletes old
// segments. The position of a record is its end: the position just past its
// last byte. A segment's base offset is also the end of the previous segment's
// last record.
//
// # Segment file
//
// Every segment starts with a 16-byte header, then a sequence of envelopes:
//
//	header:   magic "TRSP" | u16 version (1) | u16 flags (0) | u64 base
//	envelope: u32 len | u32 CRC32C(payload) | payload[len]
//
// All integers are little-endian; the CRC is CRC-32C (Castagnoli). len must be
// in [1, MaxRecordSize]: a zero length is never valid, so a zero-filled region
// (what a file system may show after a power loss) is never mistaken for
// records. The header's base must equal the base in the file name, so a renamed
// or misplaced file is detected. Segment files are append-only: bytes are only
// ever added at the end, or a torn end is cut off.
//
// # Durability and recovery
//
// Only the last segment (the active one) is written to. Rotation fsyncs it
// before creating the next one, whose header is fsynced together with the
// directory, so every earlier segment is sealed and complete. Open therefore
// only validates the last segment: it walks its envelopes, cuts the file at the
// end of the last valid one (a torn or corrupt tail), logs how many bytes it
// cut, fsyncs, and appends from there. A corrupt record in a sealed segment is
// not repaired: readers report it as [ErrCorrupt] and can skip the rest of that
// segment.
//
// # Cursors
//
// A cursor file is 20 bytes: magic "TRCU" | u32 version (1) | u64 position |
// u32 CRC32C of the preceding 16 bytes. It is replaced atomically (temporary
// file, fsync, rename, directory fsync).
package disk
