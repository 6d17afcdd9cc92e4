package sysloggen

import (
	"context"
	"testing"
)

// BenchmarkSendRELP measures the RELP sender against the in-process fake
// server (which answers a window at a time): one session, rsyslog's
// window. It shows the generator's own ceiling, which must stay well
// above the collectors' RELP rates for the harness to measure them. The
// allocations reported are the fake's (it records every message in a map);
// the sender's per-message work allocates nothing (TestRELPAllocs).
func BenchmarkSendRELP(b *testing.B) {
	f := newFakeRELP(b, DefaultRELPWindow)
	cfg := f.target()
	cfg.Streams = 1
	cfg.Messages = uint64(max(b.N, 1000))
	b.SetBytes(256)
	b.ReportAllocs()
	b.ResetTimer()
	res, err := Send(context.Background(), cfg)
	if err != nil || res.Messages != cfg.Messages {
		b.Fatalf("Send = %+v, %v", res, err)
	}
	b.ReportMetric(res.Rate, "msgs/s")
}
