package udpdrop

// The BPF object and its Go loader are generated from ../src/udpdrop.bpf.c
// and committed, so building trawl needs no clang (see ../gen.go).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -type drop_count udpdrop ../src/udpdrop.bpf.c -- -I../src -O2 -g -Wall -Werror
