//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// BTFPath is where the kernel exposes its own BTF; the programs are CO-RE
// and cannot load without it.
const BTFPath = "/sys/kernel/btf/vmlinux"

// TracefsPath is where Open looks for tracefs, and mounts it when it is
// missing (classic tracepoints and the accept(2) owner programs need it).
const TracefsPath = "/sys/kernel/tracing"

// Capabilities (linux/capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// ErrPrivileges is wrapped by Check's error when the process may not load
// tracing programs.
var ErrPrivileges = errors.New("loading tracing programs needs root, or CAP_BPF and CAP_PERFMON")

// ErrNoBTF is wrapped by Check's error when the kernel has no BTF.
var ErrNoBTF = errors.New("the kernel exposes no BTF at " + BTFPath + " (CONFIG_DEBUG_INFO_BTF)")

// Check reports, as one clear error, why this host cannot run the tracer:
// the process lacks the privileges, or the kernel lacks BTF. Missing
// tracepoints are reported by Open, which knows which ones it needs.
func Check() error {
	if !privileged() {
		return ErrPrivileges
	}
	if _, err := os.Stat(BTFPath); err != nil {
		return fmt.Errorf("%w: %v", ErrNoBTF, err)
	}
	return nil
}

// privileged reports whether the effective capabilities allow loading
// tracing programs and reading kernel memory from them.
func privileged() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	return has(capSysAdmin) || (has(capBPF) && has(capPerfmon))
}

// ensureTracefs mounts tracefs at TracefsPath unless it (or debugfs's
// tracing directory) is already there. Mounting needs CAP_SYS_ADMIN.
func ensureTracefs() error {
	for _, dir := range []string{TracefsPath, "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(dir, "events")); err == nil {
			return nil
		}
	}
	if err := unix.Mount("tracefs", TracefsPath, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("tracefs is not mounted and cannot be mounted at %s: %w", TracefsPath, err)
	}
	return nil
}

// program is one BPF program of trace.bpf.c and where it attaches.
type program struct {
	name  string
	btf   bool   // a tp_btf program (else a classic tracepoint)
	group string // tracefs group of a classic tracepoint
	event string // tracepoint name
}

// tracepointsExist reports whether tracefs lists every classic tracepoint
// of progs.
func tracepointsExist(progs []program) bool {
	for _, p := range progs {
		found := false
		for _, dir := range []string{TracefsPath, "/sys/kernel/debug/tracing"} {
			if _, err := os.Stat(filepath.Join(dir, "events", p.group, p.event, "id")); err == nil {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// MonoOffset returns Unix time minus CLOCK_MONOTONIC time, in nanoseconds:
// the [Decoder.MonoOffset] that turns kernel timestamps into Unix times.
func MonoOffset() (int64, error) {
	var mono, wall unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return 0, fmt.Errorf("cannot read CLOCK_MONOTONIC: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &wall); err != nil {
		return 0, fmt.Errorf("cannot read CLOCK_REALTIME: %w", err)
	}
	return wall.Nano() - mono.Nano(), nil
}

// CgroupID returns the id of the cgroup v2 directory at path (its inode
// number), as the programs see it in bpf_get_current_cgroup_id.
func CgroupID(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("cannot find cgroup %q: %w", path, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return 0, fmt.Errorf("cannot find cgroup %q: %w", path, err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return 0, fmt.Errorf("%q is not a cgroup v2 directory", path)
	}
	return st.Ino, nil
}
