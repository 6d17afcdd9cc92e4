package peer

import (
	"fmt"
	"strings"
)

// BenchConfig is what the syslog benchmark asks of a peer: listen on
// 127.0.0.1:Port over UDP or TCP and write every message to Out, one line
// each, with the settings a user tuning it for throughput would choose on
// a machine of Threads cores.
type BenchConfig struct {
	Dir     string // private work directory (queues, state)
	Port    int
	TCP     bool
	Out     string
	Threads int
	// ReadBuffer is the UDP socket receive buffer in bytes.
	ReadBuffer int
	// OctetCounted: the TCP sender uses RFC 6587 octet counting rather
	// than LF after each message (rsyslog and trawl detect it; syslog-ng
	// needs its syslog() source for it).
	OctetCounted bool
}

// RsyslogBench returns an rsyslog configuration for c: imudp (several
// worker threads, batched recvmmsg) or imptcp (rsyslog's faster TCP input,
// several threads), a large in-memory main queue dequeued in big batches,
// and omfile writing asynchronously through a 1 MiB buffer, flushed once a
// second rather than per transaction. The file format is rsyslog's
// default, RSYSLOG_FileFormat.
func RsyslogBench(c BenchConfig) string {
	threads := max(c.Threads, 1)
	var in string
	if c.TCP {
		in = fmt.Sprintf(`module(load="imptcp" threads="%d")
input(type="imptcp" address="127.0.0.1" port="%d")`, threads, c.Port)
	} else {
		in = fmt.Sprintf(`module(load="imudp" threads="%d" batchSize="128")
input(type="imudp" address="127.0.0.1" port="%d" rcvbufSize="%d")`, threads, c.Port, c.ReadBuffer)
	}
	return fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
%s
main_queue(queue.type="FixedArray" queue.size="500000" queue.dequeueBatchSize="2048" queue.workerThreads="1")
action(type="omfile" file=%q asyncWriting="on" ioBufferSize="1m" flushOnTXEnd="off" flushInterval="1")
`, c.Dir, in, c.Out)
}

// SyslogNGBench returns a syslog-ng configuration for c: network() or,
// for octet counting, syslog() sources (over UDP, Threads sources sharing the port with SO_REUSEPORT so
// that several threads receive; over TCP one source, its window large
// enough for the benchmark's connections), flow control from the file
// destination back to the sources, no DNS, and the file written in
// syslog-ng's default format, flushed every 1000 lines.
func SyslogNGBench(c BenchConfig) string {
	var src strings.Builder
	switch {
	case c.TCP && c.OctetCounted:
		// network() reads LF-terminated messages; syslog() reads RFC 6587
		// octet counting (and expects RFC 5424 inside).
		fmt.Fprintf(&src, `syslog(ip("127.0.0.1") port(%d) transport("tcp") max-connections(64) log-iw-size(640000) log-fetch-limit(1000));`, c.Port)
	case c.TCP:
		fmt.Fprintf(&src, `network(ip("127.0.0.1") port(%d) transport("tcp") max-connections(64) log-iw-size(640000) log-fetch-limit(1000));`, c.Port)
	default:
		for i := range max(c.Threads, 1) {
			fmt.Fprintf(&src, `network(ip("127.0.0.1") port(%d) transport("udp") so-reuseport(yes) so-rcvbuf(%d) log-fetch-limit(1000) log-iw-size(100000) persist-name("udp%d"));`, c.Port, c.ReadBuffer, i)
		}
	}
	return fmt.Sprintf(`@version: 3.38
options { use-dns(no); use-fqdn(no); keep-hostname(yes); chain-hostnames(no); stats-freq(0); log-fifo-size(1000000); };
source s_bench { %s };
destination d_bench { file(%q flush-lines(1000)); };
log { source(s_bench); destination(d_bench); flags(flow-control); };
`, src.String(), c.Out)
}
