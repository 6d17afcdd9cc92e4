package config

import (
	"strings"
	"testing"
)

func TestDefaultEBPFInput(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	in, ok := c.Inputs["ebpf"]
	if !ok || in.Type != InputEBPF || !in.IsEnabled() {
		t.Fatalf("the default has no enabled ebpf input: %+v", in)
	}
	e := in.EBPF
	if *e.Process != true || *e.Network != true || e.RingBuffer != 8<<20 || e.IncludeSelf || e.Attach != "auto" {
		t.Fatalf("unexpected ebpf defaults: %+v", e)
	}
}

func TestParseEBPF_Success(t *testing.T) {
	f := func(text string, check func(in Input) bool) {
		t.Helper()
		c, err := Parse([]byte("inputs: {k: "+text+"}"), "test")
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		if in := c.Inputs["k"]; !check(in) {
			t.Fatalf("Parse(%q): unexpected %+v", text, in)
		}
	}
	f("{type: ebpf}", func(in Input) bool {
		return in.EBPF.Process == nil && in.EBPF.Network == nil && in.EBPF.RingBuffer == 8<<20 && in.RingSize == 65536
	})
	f("{type: ebpf, network: false, ring_buffer: 64KiB, attach: tracepoint}", func(in Input) bool {
		return !*in.EBPF.Network && in.EBPF.RingBuffer == 64<<10 && in.EBPF.Attach == "tracepoint"
	})
	f("{type: ebpf, include_comms: [nginx, sshd], exclude_uids: [0, 65534], exclude_cgroups: ['1234', /sys/fs/cgroup/x]}", func(in Input) bool {
		e := in.EBPF
		return len(e.IncludeComms) == 2 && e.ExcludeUIDs[1] == 65534 && e.ExcludeCgroups[1] == "/sys/fs/cgroup/x"
	})
}

func TestParseEBPF_Failure(t *testing.T) {
	f := func(text, want string) {
		t.Helper()
		_, err := Parse([]byte("inputs:\n  k: "+text+"\n"), "test.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Parse(%q) = %v, want an error containing %q", text, err, want)
		}
	}
	f("{type: ebpf, process: false, network: false}", "needs process or network")
	f("{type: ebpf, ring_buffer: 12KiB}", "key inputs.k.ring_buffer: must be a power of two")
	f("{type: ebpf, ring_buffer: 2KiB}", "key inputs.k.ring_buffer: must be a power of two")
	f("{type: ebpf, attach: kprobe}", `unknown attach mode "kprobe"`)
	f("{type: ebpf, include_comms: [a], exclude_comms: [b]}", "include_comms and exclude_comms cannot both be set")
	f("{type: ebpf, exclude_comms: [averyveryverylongname]}", "must be 1 to 15 bytes")
	f("{type: ebpf, include_cgroups: [system.slice]}", "neither an id nor an absolute path")
	f("{type: ebpf, listen: ':1'}", "key inputs.k.listen: not a setting of input type ebpf")
	f("{type: app, include_self: true}", "key inputs.k.include_self: not a setting of input type app")
	f("{type: ebpf, exclude_uids: [-1]}", "exclude_uids")
}
