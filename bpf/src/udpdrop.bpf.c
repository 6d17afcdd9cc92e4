// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// Exact UDP receive-buffer drops for trawl's GRO sockets. With UDP_GRO the
// kernel queues a run of one sender's datagrams as one buffer, and when the
// socket is full it drops that buffer and counts one drop (sk_drops, which
// SO_RXQ_OVFL reports), however many datagrams it held. This program sees
// every dropped buffer on the kfree_skb tracepoint, with the socket it was
// meant for (rx_sk, Linux 6.11+), and adds the datagrams it held to a
// per-port counter. User space puts the ports of its UDP listeners in the
// ports map; drops to any other socket cost one map lookup.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define IPPROTO_UDP 17
#define MAX_PORTS 64

/* One slot per watched port: the datagrams and the buffers dropped. */
struct drop_count {
	__u64 datagrams;
	__u64 buffers;
};

/* Local UDP port (host order) -> slot in counts. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u16);
	__type(value, __u32);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct drop_count);
} counts SEC(".maps");

SEC("tp_btf/kfree_skb")
int BPF_PROG(udp_drop, struct sk_buff *skb, void *location, enum skb_drop_reason reason, struct sock *rx_sk)
{
	/* Only a full receive buffer (or the protocol's memory limit) drops a
	 * buffer that SO_RXQ_OVFL counts. */
	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_SOCKET_RCVBUFF) &&
	    reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_PROTO_MEM))
		return 0;
	if (!rx_sk || rx_sk->sk_protocol != IPPROTO_UDP)
		return 0;
	__u16 port = rx_sk->__sk_common.skc_num;
	__u32 *slot = bpf_map_lookup_elem(&ports, &port);
	if (!slot)
		return 0;
	struct drop_count *c = bpf_map_lookup_elem(&counts, slot);
	if (!c)
		return 0;
	/* gso_segs is the datagrams in a coalesced buffer: set by the sender
	 * for UDP GSO, by GRO on receive; 0 or 1 for a plain datagram. */
	struct skb_shared_info *si = (struct skb_shared_info *)(skb->head + skb->end);
	__u16 segs = BPF_CORE_READ(si, gso_segs);
	c->datagrams += segs > 1 ? segs : 1;
	c->buffers += 1;
	return 0;
}
