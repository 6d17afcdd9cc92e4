// Package udpdrop counts, exactly, the datagrams the kernel drops at a full
// UDP receive buffer, for sockets that use UDP generic receive offload.
//
// With UDP_GRO the kernel queues a run of one sender's datagrams as one
// buffer. When the socket's receive buffer is full it drops the whole
// buffer and adds one to the socket's drop counter, the value SO_RXQ_OVFL
// and SO_MEMINFO report, however many datagrams the buffer held. That
// counter alone cannot tell how many datagrams were lost. A [Counter]
// loads a small BPF program on the kfree_skb tracepoint that sees each
// dropped buffer with the socket it was meant for (Linux 6.11 and later
// name the socket) and adds the datagrams it held to a per-port count.
//
// Loading it needs the privileges of package bpf's tracer (root, or
// CAP_BPF with CAP_PERFMON) and kernel BTF; [Open] says why when it cannot.
package udpdrop
