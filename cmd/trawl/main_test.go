package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := rootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("inputs:\n  app:\n    type: app\n"), 0o644)
	os.WriteFile(bad, []byte("inputs:\n  app:\n    type: app\n    backpressure: sometimes\n    colour: red\n"), 0o644)

	out, err := runCLI(t, "validate", "-c", good)
	if err != nil || !strings.Contains(out, "ok (1 inputs, 0 sinks)") {
		t.Fatalf("validate good: %v %q", err, out)
	}
	_, err = runCLI(t, "validate", "-c", bad)
	if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("validate bad: want the unknown key and its line, got %v", err)
	}
	os.WriteFile(bad, []byte("inputs:\n  app:\n    type: app\n    backpressure: sometimes\n"), 0o644)
	_, err = runCLI(t, "validate", "-c", bad)
	if err == nil || !strings.Contains(err.Error(), "line 4: key inputs.app.backpressure") {
		t.Fatalf("validate bad value: got %v", err)
	}
	if _, err := runCLI(t, "validate"); err == nil {
		t.Fatal("validate without -c must fail")
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, err := runCLI(t, "version")
	if err != nil || !strings.HasPrefix(out, "trawl ") {
		t.Fatalf("version: %v %q", err, out)
	}
	for _, sub := range [][]string{{"run"}, {"validate"}, {"ledger"}, {"spool", "cat"}, {"spool", "stat"}, {"version"}} {
		out, err := runCLI(t, append(sub, "--help")...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Fatalf("%v --help: %v %q", sub, err, out)
		}
	}
}

func TestRunKafkaFlagValidated(t *testing.T) {
	_, err := runCLI(t, "run", "--kafka", "no-port", "--http", "")
	if err == nil || !strings.Contains(err.Error(), "brokers[0]") {
		t.Fatalf("run --kafka no-port: %v", err)
	}
}
