package consumer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/sinks/disk"
)

// ResolveSpoolDir accepts either a spool directory or a data directory
// holding one (DIR/spool) and returns the spool directory.
func ResolveSpoolDir(dir string) (string, error) {
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) > 0 {
		return dir, nil
	}
	inner := filepath.Join(dir, "spool")
	if st, err := os.Stat(inner); err == nil && st.IsDir() {
		return inner, nil
	}
	if st, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("cannot open spool: %w", err)
	} else if !st.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dir)
	}
	return dir, nil // an empty spool
}

// CatOptions selects what Cat prints.
type CatOptions struct {
	// Input, when set, keeps only events of that input.
	Input string
}

// Cat writes every event in the spool at dir as one ECS JSON object per
// line, in spool order. It reads the files directly, so it works whether
// or not a node is running. A corrupt frame is reported on errw and
// skipped; a corrupt segment ends the listing with an error after
// everything before the damage was printed.
func Cat(dir string, w io.Writer, errw io.Writer, opts CatOptions) error {
	dir, err := ResolveSpoolDir(dir)
	if err != nil {
		return err
	}
	dec, err := NewDecoder()
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	var line []byte
	err = disk.Scan(dir, func(rec []byte, end disk.Pos) error {
		if opts.Input != "" {
			if h, _, err := frame.PeekHeader(rec); err == nil && string(h.Input) != opts.Input {
				return nil
			}
		}
		_, err := dec.Frame(rec, func(ev *event.Event) error {
			line = event.AppendJSON(line[:0], ev)
			line = append(line, '\n')
			_, err := bw.Write(line)
			return err
		})
		var pe *os.PathError
		if errors.As(err, &pe) {
			return err // the output failed (e.g. a closed pipe)
		}
		if err != nil {
			fmt.Fprintf(errw, "trawl: skipping a bad frame ending at spool position %d: %v\n", end, err)
		}
		return nil
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// InputStat summarises one input's frames in the spool.
type InputStat struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Frames   int       `json:"frames"`
	Events   uint64    `json:"events"`
	RawBytes uint64    `json:"raw_bytes"`
	Stored   uint64    `json:"stored_bytes"`
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	First    time.Time `json:"first_frame"`
	Last     time.Time `json:"last_frame"`
}

// SpoolStat describes a spool directory.
type SpoolStat struct {
	Dir      string              `json:"dir"`
	Segments []disk.SegmentInfo  `json:"segments"`
	Bytes    int64               `json:"bytes"`
	Frames   int                 `json:"frames"`
	Bad      int                 `json:"bad_records"`
	End      disk.Pos            `json:"end"`
	Inputs   []InputStat         `json:"inputs"`
	Cursors  map[string]disk.Pos `json:"cursors"`
}

// Stat reads frame headers (without decompressing) and cursors.
func Stat(dir string) (*SpoolStat, error) {
	dir, err := ResolveSpoolDir(dir)
	if err != nil {
		return nil, err
	}
	st := &SpoolStat{Dir: dir}
	if st.Segments, err = disk.ListSegments(dir); err != nil {
		return nil, err
	}
	for _, s := range st.Segments {
		st.Bytes += s.Size
	}
	if st.Cursors, err = disk.ReadCursors(dir); err != nil {
		return nil, err
	}
	by := map[string]*InputStat{}
	err = disk.Scan(dir, func(rec []byte, end disk.Pos) error {
		st.End = end
		h, _, err := frame.PeekHeader(rec)
		if err != nil {
			st.Bad++
			return nil
		}
		st.Frames++
		is := by[string(h.Input)]
		if is == nil {
			is = &InputStat{Name: string(h.Input), Kind: event.Kind(h.Kind).String(), FirstSeq: h.FirstSeq, First: time.Unix(0, h.Created).UTC()}
			by[string(h.Input)] = is
		}
		is.Frames++
		is.Events += uint64(h.Count)
		is.RawBytes += uint64(h.RawLen)
		is.Stored += uint64(len(rec))
		if h.FirstSeq < is.FirstSeq {
			is.FirstSeq = h.FirstSeq
		}
		if last := h.FirstSeq + uint64(h.Count) - 1; h.Count > 0 && last > is.LastSeq {
			is.LastSeq = last
		}
		if t := time.Unix(0, h.Created).UTC(); t.After(is.Last) {
			is.Last = t
		}
		return nil
	})
	for _, is := range by {
		st.Inputs = append(st.Inputs, *is)
	}
	sort.Slice(st.Inputs, func(i, j int) bool { return st.Inputs[i].Name < st.Inputs[j].Name })
	return st, err
}
