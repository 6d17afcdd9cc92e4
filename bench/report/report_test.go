package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

func TestParseRate_Success(t *testing.T) {
	f := func(s string, want float64) {
		t.Helper()
		got, err := ParseRate(s)
		if err != nil || got != want {
			t.Fatalf("ParseRate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	f("100000", 100e3)
	f("100k", 100e3)
	f(" 1.6M ", 1.6e6)
	f("2500", 2500)
	f("0.5k", 500)
}

func TestParseRate_Failure(t *testing.T) {
	f := func(s string) {
		t.Helper()
		if v, err := ParseRate(s); err == nil {
			t.Fatalf("ParseRate(%q) = %v, want an error", s, v)
		}
	}
	f("")
	f("k")
	f("fast")
	f("max")
	f("0")
	f("-1k")
	f("NaN")
	f("1G")
}

func TestCommas(t *testing.T) {
	f := func(v float64, want string) {
		t.Helper()
		if got := Commas(v); got != want {
			t.Fatalf("Commas(%v) = %q, want %q", v, got, want)
		}
	}
	f(0, "0")
	f(999, "999")
	f(1000, "1,000")
	f(1234567.8, "1,234,568")
	f(100e6, "100,000,000")
	f(-1234, "-1,234")
	f(-123, "-123")
}

func TestMedianSpread(t *testing.T) {
	v := []float64{3, 1, 2, 5}
	if m := Median(v); m != 3 {
		t.Fatalf("Median(%v) = %v, want 3 (the upper middle)", v, m)
	}
	if !reflect.DeepEqual(v, []float64{3, 1, 2, 5}) {
		t.Fatalf("Median reordered its argument: %v", v)
	}
	if m := Median(nil); m != 0 {
		t.Fatalf("Median(nil) = %v", m)
	}
	format := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	f := func(v []float64, want string) {
		t.Helper()
		if got := Spread(v, format); got != want {
			t.Fatalf("Spread(%v) = %q, want %q", v, got, want)
		}
	}
	f(nil, "–")
	f([]float64{7}, "7")
	f([]float64{9, 7, 8}, "7 / 8 / 9")
	f([]float64{4, 1}, "1 / 4 / 4")
}

func TestRows(t *testing.T) {
	type step struct {
		tool, proto string
		rep         int
		n           int
	}
	steps := []step{
		{"b", "udp", 0, 1}, {"a", "udp", 0, 2}, {"b", "udp", 1, 3}, {"b", "tcp", 2, 4},
		{"b", "udp", 0, 5}, {"a", "udp", -1, 6},
	}
	type key struct{ tool, proto string }
	rows := Rows(steps, func(s *step) key { return key{s.tool, s.proto} }, func(s *step) int { return s.rep })
	var got []string
	for _, r := range rows {
		line := r.Key.tool + "/" + r.Key.proto + ":"
		for rep, ss := range r.Reps {
			line += " rep" + strconv.Itoa(rep) + "["
			for _, s := range ss {
				line += strconv.Itoa(s.n)
			}
			line += "]"
		}
		got = append(got, line)
	}
	// Keys in the order they first appear, repetitions by index (an
	// empty one where a key has none), steps in their order; the
	// negative repetition left out.
	want := []string{"b/udp: rep0[15] rep1[3]", "a/udp: rep0[2]", "b/tcp: rep0[] rep1[] rep2[4]"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Rows = %q, want %q", got, want)
	}
	if rows := Rows([]step(nil), func(s *step) key { return key{} }, func(s *step) int { return 0 }); len(rows) != 0 {
		t.Fatalf("Rows of no steps = %v", rows)
	}
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	rep := map[string]int{"steps": 3}
	if err := Write(dir, "x-1", "| a |\n", rep); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "x-1.md"))
	if err != nil || string(md) != "| a |\n" {
		t.Fatalf("x-1.md = %q, %v", md, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "x-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]int
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, rep) {
		t.Fatalf("x-1.json = %s (%v)", b, err)
	}
	if err := Write(dir, "x-2", "", func() {}); err == nil {
		t.Fatal("Write of a value JSON cannot encode succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if err := Write(file, "x", "", rep); err == nil {
		t.Fatal("Write into a file as the directory succeeded")
	}
}
