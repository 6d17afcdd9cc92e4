// Package bpf traces process execution and TCP connections with eBPF
// programs on kernel tracepoints and decodes what they record into trawl
// events (event.KindProcess, event.KindNetwork).
//
// The kernel side is src/trace.bpf.c, compiled with clang into CO-RE
// objects by cilium/ebpf's bpf2go; the objects (trace_bpfel.o) and their Go
// loader (trace_bpfel.go) are committed, so building trawl needs no clang.
// `make generate` rebuilds them. Only tracepoints are used: fentry/fexit,
// kprobes and LSM programs are refused on locked-down kernels.
//
//   - sched_process_exec: pid, parent pid, uid, gid, login uid, cgroup v2
//     id, comm, the executable's path (512 bytes kept) and argv (4 KiB
//     kept; a longer command line is cut and the event flagged truncated).
//   - sched_process_exit: once per process (not for kernel threads), when
//     its last thread exits: the exit code as a shell reports it, and the
//     lifetime.
//   - sock/inet_sock_set_state: TCP connect (SYN_SENT → ESTABLISHED, when
//     the local port is known), accept (SYN_RECV → ESTABLISHED) and close
//     (→ CLOSE, with the lifetime and payload bytes each way), IPv4 and
//     IPv6. The process of a connect is the one that called connect(2); an
//     accepted connection gets its process from the accept(2) and
//     accept4(2) syscall tracepoints, and is reported when the process
//     accepts it (without them, at the handshake with no process).
//     Connections opened before the Tracer started are not reported.
//
// Each program exists as a tp_btf program (typed arguments, cheapest, no
// tracefs needed) and as a classic tracepoint program; [Open] uses tp_btf
// and falls back to classic tracepoints when the kernel refuses them
// ([AttachAuto]). Classic tracepoints and the accept(2) programs need
// tracefs, which Open mounts at /sys/kernel/tracing when it is missing.
//
// Records reach user space through one BPF ring buffer. A record that finds
// no room is counted in a per-CPU map, never lost silently ([Tracer.Stats],
// reported in the ledger as upstream_lost{cause="bpf_ringbuf_full"}).
// Filters run in the kernel, before a record is built ([Filter]): trawl's
// own process, and deny or allow lists of process names, user ids and
// cgroup ids.
//
// With Options.Processes set, process events are completed from a
// process cache (package bpf/proccache): the parent's name and executable,
// the executable of an exiting process and the container id.
//
// [Tracer.Next] reads a record into a reused buffer and [Decoder.Decode]
// fills an event.Event whose byte slices alias it: neither allocates per
// event.
package bpf
