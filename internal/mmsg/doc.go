// Package mmsg batches datagram I/O with recvmmsg(2) and sendmmsg(2) on
// Linux: the message header x/sys/unix does not define, and a batch read
// that waits in Go's runtime poller instead of blocking a thread. The UDP
// listener, the audit netlink socket and the flow generator share it. On
// other systems it is empty.
package mmsg
