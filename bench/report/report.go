// Package report holds what the reports of the benchmark harness commands
// (syslogbench, trawlbench) have in common: rates as the command line
// gives them (100k, 1.6M) and as the tables print them (1,600,000), the
// repetitions of a step reduced to a median or a min / median / max cell,
// the steps of a run grouped into the rows of its summary table, and the
// pair of files, Markdown and JSON, a run leaves behind.
//
// Each command keeps its own Step, Summary and Report types, which differ
// in what they measure; what is here takes them as type parameters or
// plain values.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ParseRate reads a rate in events per second: 100000, 100k or 1.6M
// (surrounding blanks ignored). It must be above 0.
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	num, mult := s, 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		num, mult = s[:len(s)-1], 1e3
	case strings.HasSuffix(s, "M"):
		num, mult = s[:len(s)-1], 1e6
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v > 0) {
		return 0, fmt.Errorf("cannot parse rate %q: want a number above 0, with k or M after it or not", s)
	}
	return v * mult, nil
}

// Commas prints v rounded to a whole number with a comma every three
// digits: 1234567.8 as 1,234,568.
func Commas(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	var b strings.Builder
	digits := strings.TrimPrefix(s, "-")
	if len(digits) < len(s) {
		b.WriteByte('-')
	}
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Median returns the middle value of v (of an even count, the upper of
// the two in the middle), or 0 for none. v is not changed.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// Spread prints the values of one table cell, one per repetition of a
// step: "–" for none, one value as format prints it, several as
// "min / median / max".
func Spread(v []float64, format func(float64) string) string {
	switch len(v) {
	case 0:
		return "–"
	case 1:
		return format(v[0])
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return format(s[0]) + " / " + format(s[len(s)/2]) + " / " + format(s[len(s)-1])
}

// Row is one row of a summary table: the steps of one key (a tool and a
// protocol or format).
type Row[K comparable, S any] struct {
	Key K
	// Reps holds the steps of repetition r at index r, in the order they
	// were given; a repetition with no step of the key has none.
	Reps [][]S
}

// Rows groups steps into the rows of a summary table: by key(s), in the
// order in which each key first appears, and within a row by repetition
// rep(s) (0, 1, ...; a negative one is left out).
func Rows[K comparable, S any](steps []S, key func(*S) K, rep func(*S) int) []Row[K, S] {
	var rows []Row[K, S]
	index := map[K]int{}
	for i := range steps {
		s := &steps[i]
		r := rep(s)
		if r < 0 {
			continue
		}
		k := key(s)
		j, ok := index[k]
		if !ok {
			j = len(rows)
			index[k] = j
			rows = append(rows, Row[K, S]{Key: k})
		}
		row := &rows[j]
		for len(row.Reps) <= r {
			row.Reps = append(row.Reps, nil)
		}
		row.Reps[r] = append(row.Reps[r], *s)
	}
	return rows
}

// Write leaves a run's report in dir (created if need be): markdown in
// name.md, also printed on standard output, and rep as indented JSON in
// name.json, whose path it then prints on standard error.
func Write(dir, name, markdown string, rep any) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create the results directory: %w", err)
	}
	os.Stdout.WriteString(markdown)
	if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(markdown), 0o644); err != nil {
		return fmt.Errorf("cannot write the Markdown report: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode the JSON report: %w", err)
	}
	path := filepath.Join(dir, name+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("cannot write the JSON report: %w", err)
	}
	fmt.Fprintln(os.Stderr, "results:", path)
	return nil
}
