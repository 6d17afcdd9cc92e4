package host

import "testing"

func TestSummary(t *testing.T) {
	m := Machine{CPU: "Example CPU @ 2.00GHz", Cores: 8, Kernel: "6.1.0-18-amd64", Go: "go1.26.0",
		LoadAvg: "0.52 0.58 0.59 1/389 12345", LoadAtEnd: "1.01 0.70 0.62 2/390 12400", RmemMax: "33554432"}
	want := "Example CPU @ 2.00GHz, 8 cores, Linux 6.1.0-18-amd64, go1.26.0; load average at start 0.52 0.58 0.59, at end 1.01 0.70 0.62"
	if got := m.Summary(); got != want {
		t.Fatalf("Summary =\n%q, want\n%q", got, want)
	}
	// LoadAtEnd not set yet: nothing after "at end".
	m.LoadAtEnd = ""
	if got := m.Summary(); got != want[:len(want)-len("1.01 0.70 0.62")] {
		t.Fatalf("Summary without LoadAtEnd = %q", got)
	}
}

func TestDescribe(t *testing.T) {
	m := Describe("a 1", "b 2")
	if m.Cores < 1 || m.Kernel == "" || m.Go == "" || m.Versions != "a 1; b 2" {
		t.Fatalf("Describe = %+v", m)
	}
}
