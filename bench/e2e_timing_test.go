package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/trawlsec/trawl/collector"
	"github.com/trawlsec/trawl/config"
)

// appLines builds n distinct realistic structured-log lines (about 200
// bytes each, the size of a typical zap/logrus line).
func appLines(n, conn int) []byte {
	var buf []byte
	levels := []string{"info", "info", "info", "warn", "error", "debug"}
	for i := 0; i < n; i++ {
		buf = fmt.Appendf(buf, `{"@timestamp":"2026-11-25T10:%02d:%02d.%06dZ","level":"%s","logger":"auth.session","msg":"session established","user":"user%04d","src_ip":"10.%d.%d.%d","session_id":"c%d-%d"}`+"\n",
			(i/60000)%60, (i/1000)%60, i%1000*1000, levels[i%len(levels)], i%5000, conn, (i>>8)&255, i&255, conn, i)
	}
	return buf
}

// BenchmarkEndToEndAppTCP: JSON lines over 4 TCP connections into the
// node, until every event is fsynced in the spool (fsync: interval).
// Reports events/s; the goal is ≥ 500,000 events/s on 2 cores.
func BenchmarkEndToEndAppTCP(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			benchApp(b, conns)
		})
	}
}

func benchApp(b *testing.B, conns int) {
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
node: {name: bench, data_dir: %q}
http: {listen: ""}
inputs:
  app: {type: app, listen: "127.0.0.1:0"}
`, b.TempDir())), "bench")
	if err != nil {
		b.Fatal(err)
	}
	node, err := collector.New(cfg, log.New(io.Discard, "", 0))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	addr := node.AppAddr("app").String()
	delivered := node.Ledger().Input("app", "app").Delivered

	per := b.N/conns + 1
	payloads := make([][]byte, conns)
	var bytes int
	for c := range payloads {
		payloads[c] = appLines(per, c)
		bytes += len(payloads[c])
	}
	total := uint64(per * conns)
	b.SetBytes(int64(bytes / (per * conns)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			w := bufio.NewWriterSize(conn, 256<<10)
			w.Write(payloads[c])
			w.Flush()
			conn.Close()
		}()
	}
	wg.Wait()
	for delivered.Get() < total {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
