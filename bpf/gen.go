package bpf

// The BPF objects and their Go loaders are generated from trace.bpf.c and
// committed, so building trawl needs no clang. `make generate` reruns this
// with Debian's clang and libbpf-dev headers. vmlinux.h is committed too: it
// was written by `bpftool btf dump file /sys/kernel/btf/vmlinux format c`
// (`make generate VMLINUX=1` rewrites it from the running kernel); CO-RE
// relocations make the objects independent of the kernel it came from.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -type exec_record -type exit_record -type conn_record -type conn_info trace src/trace.bpf.c -- -Isrc -O2 -g -Wall -Werror
