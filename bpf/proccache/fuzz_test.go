package proccache

import (
	"strings"
	"testing"
)

// FuzzParseStat feeds arbitrary /proc/PID/stat text to the parser (the
// command name in it is chosen by the process) and ContainerID arbitrary
// paths: neither may panic, and what they return must come from the input.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("300 (my (app)) S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 100\n"), "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope")
	f.Add([]byte("1 (x) S"), "/")
	f.Fuzz(func(t *testing.T, stat []byte, path string) {
		if _, _, err := parseStat(stat); err == nil && !strings.Contains(string(stat), ")") {
			t.Fatalf("parsed %q, which has no command name", stat)
		}
		if id := ContainerID(path); id != nil && (len(id) != 64 || !strings.Contains(path, string(id))) {
			t.Fatalf("ContainerID(%q) = %q", path, id)
		}
	})
}
