//go:build !linux

package bpf

import "errors"

// Check always fails: eBPF tracing needs Linux.
func Check() error { return errors.New("eBPF tracing needs Linux") }

// MonoOffset is not available on this platform.
func MonoOffset() (int64, error) { return 0, errors.New("eBPF tracing needs Linux") }

// CgroupID is not available on this platform.
func CgroupID(string) (uint64, error) { return 0, errors.New("cgroups need Linux") }
