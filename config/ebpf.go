package config

import (
	"path/filepath"
	"strconv"
)

// InputEBPF is the type of the eBPF input: process exec/exit and TCP
// connections traced in the kernel (package bpf).
const InputEBPF = "ebpf"

// EBPF holds the settings of an ebpf input; they sit inline in the
// input's mapping (inputs.<name>.process, ...). Each include list makes
// its dimension an allow list; an exclude list a deny list; setting both
// for one dimension is an error.
type EBPF struct {
	// Process enables exec and exit events (default true).
	Process *bool `yaml:"process"`
	// Network enables TCP connect, accept and close events (default true).
	Network *bool `yaml:"network"`
	// RingBuffer is the size of the BPF ring buffer between the kernel and
	// trawl: a power of two, at least 4KiB (default 8MiB).
	RingBuffer Size `yaml:"ring_buffer"`
	// IncludeSelf reports trawl's own execs and connections (default
	// false: a Kafka sink's connections would otherwise be reported).
	IncludeSelf bool `yaml:"include_self"`
	// IncludeComms and ExcludeComms filter by process name (comm, at most
	// 15 bytes).
	IncludeComms []string `yaml:"include_comms"`
	ExcludeComms []string `yaml:"exclude_comms"`
	// IncludeUIDs and ExcludeUIDs filter by real user id.
	IncludeUIDs []uint32 `yaml:"include_uids"`
	ExcludeUIDs []uint32 `yaml:"exclude_uids"`
	// IncludeCgroups and ExcludeCgroups filter by cgroup v2: an id, or the
	// path of the cgroup's directory (/sys/fs/cgroup/system.slice/x.service).
	IncludeCgroups []string `yaml:"include_cgroups"`
	ExcludeCgroups []string `yaml:"exclude_cgroups"`
	// Attach picks the program flavour: auto (tp_btf, falling back to
	// classic tracepoints), tp_btf or tracepoint.
	Attach string `yaml:"attach"`
}

// ebpfKeys are the keys of EBPF, refused on inputs of other types.
var ebpfKeys = []string{"process", "network", "ring_buffer", "include_self", "include_comms", "exclude_comms",
	"include_uids", "exclude_uids", "include_cgroups", "exclude_cgroups", "attach"}

// defaultsEBPF fills the defaults of an ebpf input.
func defaultsEBPF(in *Input) {
	if in.EBPF.RingBuffer == 0 {
		in.EBPF.RingBuffer = 8 << 20
	}
}

// validateEBPF checks the settings of an ebpf input, or that an input of
// another type sets none of them.
func (c *Config) validateEBPF(p string, in Input, add func(error), notFor func(string)) {
	if in.Type != InputEBPF {
		for _, k := range ebpfKeys {
			notFor(k)
		}
		return
	}
	e := &in.EBPF
	if e.Process != nil && e.Network != nil && !*e.Process && !*e.Network {
		add(c.errorf(p, "an ebpf input needs process or network events"))
	}
	if r := e.RingBuffer; r < 4096 || r > 1<<30 || r&(r-1) != 0 {
		add(c.errorf(p+".ring_buffer", "must be a power of two between 4KiB and 1GiB, got %d", r))
	}
	switch e.Attach {
	case "", "auto", "tp_btf", "tracepoint":
	default:
		add(c.errorf(p+".attach", "unknown attach mode %q (want auto, tp_btf or tracepoint)", e.Attach))
	}
	both := func(key string, incl, excl int) {
		if incl > 0 && excl > 0 {
			add(c.errorf(p+".include_"+key, "include_%s and exclude_%s cannot both be set", key, key))
		}
	}
	both("comms", len(e.IncludeComms), len(e.ExcludeComms))
	both("uids", len(e.IncludeUIDs), len(e.ExcludeUIDs))
	both("cgroups", len(e.IncludeCgroups), len(e.ExcludeCgroups))
	for _, list := range []struct {
		key   string
		comms []string
	}{{"include_comms", e.IncludeComms}, {"exclude_comms", e.ExcludeComms}} {
		for _, s := range list.comms {
			if s == "" || len(s) > 15 {
				add(c.errorf(p+"."+list.key, "process name %q must be 1 to 15 bytes (the kernel's comm)", s))
			}
		}
	}
	for _, list := range []struct {
		key  string
		cgrs []string
	}{{"include_cgroups", e.IncludeCgroups}, {"exclude_cgroups", e.ExcludeCgroups}} {
		for _, s := range list.cgrs {
			if _, err := strconv.ParseUint(s, 10, 64); err != nil && !filepath.IsAbs(s) {
				add(c.errorf(p+"."+list.key, "cgroup %q is neither an id nor an absolute path", s))
			}
		}
	}
	const maxList = 1024 // the capacity of the kernel's filter maps
	for _, n := range []int{len(e.IncludeComms), len(e.ExcludeComms), len(e.IncludeUIDs), len(e.ExcludeUIDs),
		len(e.IncludeCgroups), len(e.ExcludeCgroups)} {
		if n > maxList {
			add(c.errorf(p, "an ebpf filter list holds at most %d entries", maxList))
		}
	}
}
