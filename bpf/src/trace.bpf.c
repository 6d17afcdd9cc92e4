// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// trawl's kernel side: process exec and exit, TCP connect, accept and close,
// from tracepoints only (fentry, kprobes and LSM hooks are refused on
// locked-down kernels). Every program exists twice where the kernel offers
// both: a tp_btf program (typed arguments, cheapest) and a classic
// tracepoint program (needs tracefs), sharing one handler. User space loads
// one set; see ../tracer_linux.go.
//
// Records go to one BPF ring buffer. Their layouts are the structs below;
// ../record.go decodes them at fixed offsets and a test checks those offsets
// against the Go types bpf2go generates from this file.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define TASK_COMM_LEN 16
#define FILENAME_MAX 512 /* bytes of the executable's path kept */
#define ARGS_MAX 4096 /* bytes of the NUL-separated argv kept */

#define PF_KTHREAD 0x00200000 /* task->flags: a kernel thread */
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

/* TCP states (include/net/tcp_states.h). */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7

enum record_type {
	RECORD_EXEC = 1,
	RECORD_EXIT = 2,
	RECORD_CONNECT = 3,
	RECORD_ACCEPT = 4,
	RECORD_CLOSE = 5,
};

enum record_flags {
	FLAG_ARGS_TRUNCATED = 1 << 0, /* argv longer than ARGS_MAX */
	FLAG_ARGS_FAULT = 1 << 1, /* argv could not be read */
	FLAG_FILENAME_TRUNCATED = 1 << 2,
	FLAG_NO_OWNER = 1 << 3, /* connection whose process is unknown */
};

/* Indexes of the per-CPU stats array. */
enum stat_index {
	STAT_RINGBUF_FULL = 0, /* records lost: no room in the ring buffer */
	STAT_FILTERED = 1, /* records suppressed by the in-kernel filters */
	STAT_CONN_UNTRACKED = 2, /* connection state changes with no entry in conns */
	STAT_MAX = 4,
};

/* Filter flags (the filter_flags constant). */
enum filter_flag {
	FILTER_SELF = 1 << 0, /* drop records of trawl's own process */
	FILTER_BY_COMM = 1 << 1, /* comm_filter is in use */
	FILTER_COMM_ALLOW = 1 << 2, /* ... as an allow list (else a deny list) */
	FILTER_BY_UID = 1 << 3,
	FILTER_UID_ALLOW = 1 << 4,
	FILTER_BY_CGROUP = 1 << 5,
	FILTER_CGROUP_ALLOW = 1 << 6,
};

struct record_header {
	__u8 type;
	__u8 flags;
	__u16 _pad;
	__u32 pid; /* thread group id; for connections, the owner's, or 0 */
	__u64 ts; /* bpf_ktime_get_ns() when it happened */
};

struct exec_record {
	struct record_header hdr;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 loginuid;
	__u64 cgroup_id;
	__u64 start_ns; /* task start, CLOCK_MONOTONIC */
	__u64 parent_start_ns;
	char comm[TASK_COMM_LEN];
	__u16 args_len; /* bytes of argv in data, from offset 0 */
	__u16 filename_len; /* bytes of the path in data, after argv, no NUL */
	__u32 args_size; /* argv's full size in the process */
	/* argv (NUL-separated) then the path; only what is used is sent. The
	   extra FILENAME_MAX bytes keep the verifier's view of the path read
	   inside the buffer whatever argv's length. */
	__u8 data[ARGS_MAX + 2 * FILENAME_MAX];
};

struct exit_record {
	struct record_header hdr;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__s32 exit_code; /* as wait(2) encodes it: status << 8 | signal */
	__u64 cgroup_id;
	__u64 start_ns;
	char comm[TASK_COMM_LEN];
};

struct conn_record {
	struct record_header hdr;
	__u32 uid;
	__u16 family;
	__u16 sport; /* local port, host order */
	__u16 dport; /* peer port, host order */
	__u16 _pad1;
	__u32 _pad2;
	__u64 cgroup_id;
	__u64 start_ns; /* when the connection was established */
	__u64 bytes_sent; /* payload bytes sent, on close */
	__u64 bytes_received; /* payload bytes received, on close */
	__u8 saddr[16]; /* local address; IPv4 in the first 4 bytes */
	__u8 daddr[16]; /* peer address */
	char comm[TASK_COMM_LEN];
};

/* What is known about a tracked TCP socket. The addresses are kept from
   the handshake: by the time a socket reaches TCP_CLOSE its local port may
   already be released. */
struct conn_info {
	__u64 start_ns; /* established at; 0 while connecting */
	__u64 cgroup_id;
	__u32 pid;
	__u32 uid;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u8 kind; /* RECORD_CONNECT or RECORD_ACCEPT */
	__u8 muted; /* the owner is filtered out: report nothing */
	__u8 owned; /* pid, uid, comm and cgroup_id are known */
	__u8 _pad[7];
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[TASK_COMM_LEN];
};

/* Set by user space before loading; the verifier prunes what they turn off. */
const volatile __u32 own_tgid = 0;
const volatile __u32 filter_flags = 0;
/* Accepted sockets get their owner from the accept(2) syscall tracepoints
   when user space attached them; otherwise accepts are reported when the
   handshake completes, without an owner. */
const volatile __u8 accept_via_syscall = 0;
/* Wakeup batching: when set, a record wakes the reader only once this many
   bytes wait in the ring buffer; the reader polls on a timer otherwise.
   Waking the reader per record (0) costs an interrupt per record. */
const volatile __u64 wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* user space sets the real size */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Exec records are too large for the stack: built here, then copied out. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_record);
} exec_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sock * */
	__type(value, struct conn_info);
} conns SEC(".maps");

/* A process: its pid and start time, unique across pid reuse. */
struct proc_key {
	__u64 start_ns;
	__u32 tgid;
	__u32 _pad;
};

/* Processes already reported as exited, on kernels whose exit tracepoint
   does not say which thread is the last (see handle_exit). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct proc_key);
	__type(value, __u8);
} exited SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, __u8);
} comm_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} uid_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} cgroup_filter SEC(".maps");

/* Force BTF for the record types so bpf2go generates Go types for them. */
const struct exec_record *unused_exec_record __attribute__((unused));
const struct exit_record *unused_exit_record __attribute__((unused));
const struct conn_record *unused_conn_record __attribute__((unused));

/* submit_flags picks the wakeup flag for a record about to be submitted. */
static __always_inline __u64 submit_flags(void)
{
	if (!wakeup_bytes)
		return 0; /* adaptive: wake when the reader has caught up */
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

/* Short filter lists are constants instead of maps: comparing a few
   values the verifier knows costs a fraction of a hash-map lookup (a
   helper call, hashing, a bucket walk), which was a sixth of each process
   program's run. User space fills either the list (its length set) or the
   map. */
#define FILTER_INLINE 8
const volatile __u32 comm_inline_len = 0;
const volatile __u64 comm_inline[FILTER_INLINE][2] = {}; /* comms as two words */
const volatile __u32 uid_inline_len = 0;
const volatile __u32 uid_inline[FILTER_INLINE] = {};
const volatile __u32 cgroup_inline_len = 0;
const volatile __u64 cgroup_inline[FILTER_INLINE] = {};

/* in_comms reports whether comm (8-byte aligned) is in the comm filter. */
static __always_inline bool in_comms(const char *comm)
{
	if (!comm_inline_len)
		return bpf_map_lookup_elem(&comm_filter, comm) != NULL;
	__u64 c0 = ((const __u64 *)comm)[0], c1 = ((const __u64 *)comm)[1];
	bool hit = false;
#pragma unroll
	for (int i = 0; i < FILTER_INLINE; i++)
		if (i < comm_inline_len && c0 == comm_inline[i][0] && c1 == comm_inline[i][1])
			hit = true;
	return hit;
}

static __always_inline bool in_uids(__u32 uid)
{
	if (!uid_inline_len)
		return bpf_map_lookup_elem(&uid_filter, &uid) != NULL;
	bool hit = false;
#pragma unroll
	for (int i = 0; i < FILTER_INLINE; i++)
		if (i < uid_inline_len && uid == uid_inline[i])
			hit = true;
	return hit;
}

static __always_inline bool in_cgroups(__u64 cgid)
{
	if (!cgroup_inline_len)
		return bpf_map_lookup_elem(&cgroup_filter, &cgid) != NULL;
	bool hit = false;
#pragma unroll
	for (int i = 0; i < FILTER_INLINE; i++)
		if (i < cgroup_inline_len && cgid == cgroup_inline[i])
			hit = true;
	return hit;
}

/* filtered reports whether a process's records are suppressed. comm must
   be TASK_COMM_LEN bytes, zero-padded and 8-byte aligned. */
static __always_inline bool filtered(__u32 tgid, __u32 uid, __u64 cgid, const char *comm)
{
	if ((filter_flags & FILTER_SELF) && tgid == own_tgid)
		return true;
	if ((filter_flags & FILTER_BY_COMM) && in_comms(comm) != !!(filter_flags & FILTER_COMM_ALLOW))
		return true;
	if ((filter_flags & FILTER_BY_UID) && in_uids(uid) != !!(filter_flags & FILTER_UID_ALLOW))
		return true;
	if ((filter_flags & FILTER_BY_CGROUP) && in_cgroups(cgid) != !!(filter_flags & FILTER_CGROUP_ALLOW))
		return true;
	return false;
}

/* read_comm copies a task's comm zero-padded, so it can key comm_filter.
   dst must be 8-byte aligned. tp_btf programs (btf set) load it directly:
   two loads the verifier guards, instead of a helper call. */
static __always_inline void read_comm(char *dst, struct task_struct *task, const bool btf)
{
	if (btf) {
		((__u64 *)dst)[0] = *(__u64 *)&task->comm[0];
		((__u64 *)dst)[1] = *(__u64 *)&task->comm[8];
	} else {
		bpf_probe_read_kernel(dst, TASK_COMM_LEN, &task->comm);
	}
	/* The kernel pads comm with zeros when it sets it; make sure anyway,
	   since a filter lookup compares all 16 bytes. */
	bool end = false;
#pragma unroll
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (end)
			dst[i] = 0;
		else if (dst[i] == 0)
			end = true;
	}
}

/* The task fields exec and exit records share. */
struct task_fields {
	__u64 start_ns; /* the thread group leader's start */
	__u32 ppid;
	__u32 uid;
	__u32 gid;
};

/* read_task reads what struct task_fields holds. In tp_btf programs (btf
   set) task is a typed pointer and the fields are plain loads, which the
   verifier turns into fault-safe ones; a classic tracepoint program reads
   each through bpf_probe_read_kernel, a helper call apiece. The calls, not
   the copying, are what a record costs: with the kernel's return-thunk
   mitigations every call and return is several times dearer than a load. */
static __always_inline void read_task(struct task_struct *task, struct task_fields *f, const bool btf)
{
	if (btf) {
		const struct cred *cred = task->cred;
		struct task_struct *leader = task->group_leader;
		struct task_struct *parent = task->real_parent;
		f->uid = cred ? cred->uid.val : 0;
		f->gid = cred ? cred->gid.val : 0;
		f->start_ns = leader ? leader->start_time : 0;
		f->ppid = parent ? parent->tgid : 0;
	} else {
		f->uid = BPF_CORE_READ(task, cred, uid.val);
		f->gid = BPF_CORE_READ(task, cred, gid.val);
		f->start_ns = BPF_CORE_READ(task, group_leader, start_time);
		f->ppid = BPF_CORE_READ(task, real_parent, tgid);
	}
}

static __always_inline __u32 task_loginuid(struct task_struct *task, const bool btf)
{
	if (!bpf_core_field_exists(task->loginuid))
		return (__u32)-1;
	if (btf)
		return task->loginuid.val;
	return BPF_CORE_READ(task, loginuid.val);
}

/* ---- process exec ---- */

static __always_inline int handle_exec(struct task_struct *task, const char *filename, const bool btf)
{
	__u32 zero = 0;
	struct exec_record *r = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!r)
		return 0;

	struct task_fields f;
	read_task(task, &f, btf);
	r->hdr.type = RECORD_EXEC;
	r->hdr.flags = 0;
	r->hdr._pad = 0;
	r->hdr.pid = bpf_get_current_pid_tgid() >> 32;
	r->uid = f.uid;
	r->gid = f.gid;
	r->cgroup_id = bpf_get_current_cgroup_id();
	read_comm(r->comm, task, btf);
	if (filtered(r->hdr.pid, r->uid, r->cgroup_id, r->comm)) {
		count(STAT_FILTERED);
		return 0;
	}
	r->hdr.ts = bpf_ktime_get_ns();
	r->ppid = f.ppid;
	r->loginuid = task_loginuid(task, btf);
	r->start_ns = f.start_ns;

	/* argv lives on the new process's stack, just written by execve. */
	__u64 arg_start, arg_end;
	if (btf) {
		struct task_struct *parent = task->real_parent;
		struct task_struct *pleader = parent ? parent->group_leader : NULL;
		r->parent_start_ns = pleader ? pleader->start_time : 0;
		struct mm_struct *mm = task->mm;
		arg_start = mm ? mm->arg_start : 0;
		arg_end = mm ? mm->arg_end : 0;
	} else {
		r->parent_start_ns = BPF_CORE_READ(task, real_parent, group_leader, start_time);
		arg_start = BPF_CORE_READ(task, mm, arg_start);
		arg_end = BPF_CORE_READ(task, mm, arg_end);
	}
	__u64 size = arg_end > arg_start ? arg_end - arg_start : 0;
	r->args_size = size > 0xffffffff ? 0xffffffff : size;
	__u32 args_len = size;
	if (size > ARGS_MAX) {
		args_len = ARGS_MAX;
		r->hdr.flags |= FLAG_ARGS_TRUNCATED;
	}
	/* The whole argument area in one read. */
	if (args_len > 0 && bpf_probe_read_user(r->data, args_len & (2 * ARGS_MAX - 1), (void *)arg_start) < 0) {
		args_len = 0;
		r->hdr.flags |= FLAG_ARGS_FAULT;
	}
	args_len &= (2 * ARGS_MAX - 1);
	if (args_len > ARGS_MAX)
		args_len = ARGS_MAX;
	r->args_len = args_len;

	long n = bpf_probe_read_kernel_str(r->data + args_len, FILENAME_MAX, filename);
	__u32 fn_len = 0;
	if (n > 1)
		fn_len = n - 1; /* without the NUL */
	if (fn_len >= FILENAME_MAX - 1)
		r->hdr.flags |= FLAG_FILENAME_TRUNCATED;
	fn_len &= (FILENAME_MAX - 1);
	r->filename_len = fn_len;

	__u64 total = offsetof(struct exec_record, data) + args_len + fn_len;
	if (total > sizeof(*r))
		return 0; /* cannot happen; tells the verifier the bound */
	if (bpf_ringbuf_output(&events, r, total, submit_flags()) < 0)
		count(STAT_RINGBUF_FULL);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return handle_exec(p, bprm->filename, true);
}

SEC("tracepoint/sched/sched_process_exec")
int exec_tp(struct trace_event_raw_sched_process_exec *ctx)
{
	/* filename is a __data_loc: the low 16 bits are its offset in ctx. */
	__u32 loc = BPF_CORE_READ(ctx, __data_loc_filename);
	const char *filename = (const char *)ctx + (loc & 0xffff);
	return handle_exec((struct task_struct *)bpf_get_current_task(), filename, false);
}

/* ---- process exit ---- */

/* Tests set this to take the path of kernels whose exit tracepoint lacks
   group_dead. */
const volatile __u8 exit_ignore_group_dead = 0;

/* The kernel passes the tracepoint whether the exiting thread is its
   process's last (group_dead) since Linux 6.16. */
#define EXIT_HAS_GROUP_DEAD \
	(!exit_ignore_group_dead && bpf_core_field_exists(struct trace_event_raw_sched_process_exit, group_dead))

/* handle_exit reports a process's exit. group_dead is 1 when the exiting
   thread is the process's last, 0 when not, and -1 when the kernel does
   not say. */
static __always_inline int handle_exit(struct task_struct *task, int group_dead, const bool btf)
{
	/* One record per process: when its last thread exits. */
	if (group_dead == 0)
		return 0;
	/* Kernel threads never exec; their exits are noise. */
	if ((btf ? task->flags : BPF_CORE_READ(task, flags)) & PF_KTHREAD)
		return 0;
	if (group_dead < 0) {
		/* Older kernels: the live count has dropped by now. */
		int live;
		if (btf) {
			struct signal_struct *sig = task->signal;
			live = sig ? sig->live.counter : 0;
		} else {
			live = BPF_CORE_READ(task, signal, live.counter);
		}
		if (live != 0)
			return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	char comm[TASK_COMM_LEN] __attribute__((aligned(8)));
	read_comm(comm, task, btf);
	struct task_fields f;
	read_task(task, &f, btf);
	__u64 cgid = bpf_get_current_cgroup_id();
	if (filtered(id >> 32, f.uid, cgid, comm)) {
		count(STAT_FILTERED);
		return 0;
	}
	if (group_dead < 0) {
		/* Threads exiting together may all see live == 0 by the time
		   they get here: the first to claim the process in exited
		   reports it. With group_dead the kernel names one thread. */
		struct proc_key key = {
			.start_ns = f.start_ns,
			.tgid = id >> 32,
		};
		__u8 one = 1;
		if (bpf_map_update_elem(&exited, &key, &one, BPF_NOEXIST) != 0)
			return 0;
	}

	/* Filter before reserving: a discarded record without a wakeup would
	   leave the reader asleep behind it. */
	struct exit_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count(STAT_RINGBUF_FULL);
		return 0;
	}
	r->hdr.type = RECORD_EXIT;
	r->hdr.flags = 0;
	r->hdr._pad = 0;
	r->hdr.pid = id >> 32;
	r->hdr.ts = bpf_ktime_get_ns();
	r->uid = f.uid;
	r->gid = f.gid;
	r->cgroup_id = cgid;
	__builtin_memcpy(r->comm, comm, TASK_COMM_LEN);
	r->ppid = f.ppid;
	r->exit_code = btf ? task->exit_code : BPF_CORE_READ(task, exit_code);
	r->start_ns = f.start_ns;
	bpf_ringbuf_submit(r, submit_flags());
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_btf, struct task_struct *p)
{
	int group_dead = -1;
	/* ctx[1] exists only where the tracepoint has the argument; the
	   verifier never sees the load on older kernels. */
	if (EXIT_HAS_GROUP_DEAD)
		group_dead = (__u8)ctx[1] != 0;
	return handle_exit(p, group_dead, true);
}

SEC("tracepoint/sched/sched_process_exit")
int exit_tp(struct trace_event_raw_sched_process_exit *ctx)
{
	int group_dead = -1;
	if (EXIT_HAS_GROUP_DEAD)
		group_dead = ctx->group_dead != 0;
	return handle_exit((struct task_struct *)bpf_get_current_task(), group_dead, false);
}

/* ---- TCP connections ---- */

/* read_tuple keeps sk's addresses and ports in info. */
static __always_inline void read_tuple(const struct sock *sk, struct conn_info *info)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	info->family = family;
	info->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	info->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		bpf_core_read(info->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(info->daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(info->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(info->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/* emit_conn sends a connection record for sk from what info holds. */
static __always_inline void emit_conn(const struct sock *sk, struct conn_info *info, __u8 type, __u64 now)
{
	struct conn_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count(STAT_RINGBUF_FULL);
		return;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->hdr.type = type;
	r->hdr.ts = now;
	if (info->owned) {
		r->hdr.pid = info->pid;
		r->uid = info->uid;
		r->cgroup_id = info->cgroup_id;
		__builtin_memcpy(r->comm, info->comm, TASK_COMM_LEN);
	} else {
		r->hdr.flags = FLAG_NO_OWNER;
		r->uid = (__u32)-1;
	}
	r->start_ns = info->start_ns;
	r->family = info->family;
	r->sport = info->sport;
	r->dport = info->dport;
	__builtin_memcpy(r->saddr, info->saddr, 16);
	__builtin_memcpy(r->daddr, info->daddr, 16);
	if (type == RECORD_CLOSE) {
		/* Payload only: bytes_acked and bytes_received count sequence
		   space, which includes SYN and FIN. */
		const struct tcp_sock *tp = (const struct tcp_sock *)sk;
		__u64 sent = BPF_CORE_READ(tp, bytes_sent);
		if (bpf_core_field_exists(tp->bytes_retrans))
			sent -= BPF_CORE_READ(tp, bytes_retrans);
		r->bytes_sent = sent;
		__u64 received = BPF_CORE_READ(tp, bytes_received);
		/* SOCK_DONE: the peer's FIN was received (tcp_fin). */
		if ((BPF_CORE_READ(sk, __sk_common.skc_flags) & (1UL << SOCK_DONE)) && received > 0)
			received--;
		r->bytes_received = received;
	}
	bpf_ringbuf_submit(r, submit_flags());
}

/* own fills info with the current process as the socket's owner and
   reports whether its records are suppressed. */
static __always_inline bool own(struct conn_info *info)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	info->pid = bpf_get_current_pid_tgid() >> 32;
	info->uid = bpf_get_current_uid_gid();
	info->cgroup_id = bpf_get_current_cgroup_id();
	read_comm(info->comm, task, false);
	info->owned = 1;
	return filtered(info->pid, info->uid, info->cgroup_id, info->comm);
}

static __always_inline int handle_state(const struct sock *sk, __u16 protocol, __u16 family, int oldstate, int newstate)
{
	if (protocol != IPPROTO_TCP || (family != AF_INET && family != AF_INET6))
		return 0;
	__u64 key = (__u64)sk;
	__u64 now = bpf_ktime_get_ns();

	if (newstate == TCP_SYN_SENT) {
		/* connect(2) runs in the connecting process: remember it. */
		struct conn_info info = {};
		info.kind = RECORD_CONNECT;
		if (own(&info)) {
			info.muted = 1;
			count(STAT_FILTERED);
		}
		bpf_map_update_elem(&conns, &key, &info, BPF_ANY);
		return 0;
	}
	if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT) {
		/* The SYN-ACK arrived: the local port is known now. */
		struct conn_info *info = bpf_map_lookup_elem(&conns, &key);
		if (!info) {
			count(STAT_CONN_UNTRACKED);
			return 0;
		}
		info->start_ns = now;
		read_tuple(sk, info);
		if (!info->muted)
			emit_conn(sk, info, RECORD_CONNECT, now);
		return 0;
	}
	if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV) {
		/* A passive open completed, in softirq: no owner yet. */
		struct conn_info info = {};
		info.kind = RECORD_ACCEPT;
		info.start_ns = now;
		read_tuple(sk, &info);
		bpf_map_update_elem(&conns, &key, &info, BPF_ANY);
		if (!accept_via_syscall)
			emit_conn(sk, &info, RECORD_ACCEPT, now);
		return 0;
	}
	if (newstate == TCP_CLOSE) {
		struct conn_info *info = bpf_map_lookup_elem(&conns, &key);
		if (!info)
			return 0; /* opened before we started, or never established */
		if (info->start_ns != 0 && !info->muted)
			emit_conn(sk, info, RECORD_CLOSE, now);
		bpf_map_delete_elem(&conns, &key);
	}
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(state_btf, const struct sock *sk, const int oldstate, const int newstate)
{
	__u16 protocol = BPF_CORE_READ(sk, sk_protocol);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return handle_state(sk, protocol, family, oldstate, newstate);
}

SEC("tracepoint/sock/inet_sock_set_state")
int state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	return handle_state((const struct sock *)ctx->skaddr, ctx->protocol, ctx->family, ctx->oldstate, ctx->newstate);
}

/* handle_accept gives an accepted socket its owner: the process whose
   accept(2) returned fd. */
static __always_inline int handle_accept(long fd)
{
	if (fd < 0)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u64 key = (__u64)sk;
	struct conn_info *info = bpf_map_lookup_elem(&conns, &key);
	if (!info || info->kind != RECORD_ACCEPT || info->owned)
		return 0;
	if (own(info)) {
		info->muted = 1;
		count(STAT_FILTERED);
		return 0;
	}
	emit_conn(sk, info, RECORD_ACCEPT, bpf_ktime_get_ns());
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return handle_accept(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return handle_accept(ctx->ret);
}
