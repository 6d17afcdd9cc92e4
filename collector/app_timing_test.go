package collector

import (
	"context"
	"fmt"
	"testing"

	"github.com/trawlsec/trawl/ledger"
)

// BenchmarkAppLine measures the app input's work per line (JSON parse and
// strict check, field extraction, event encoding, ring put), without the
// socket: structured-log lines of about 200 bytes, as zap or logrus write
// them, some with numbers and nested objects.
func BenchmarkAppLine(b *testing.B) {
	ta := newTestApp(b, 1<<20, DropNewest, 1024)
	cr := &connReader{a: ta.a, pr: ta.pipe.producer()}
	var lines [][]byte
	for i := range 64 {
		if i%4 == 3 {
			lines = append(lines, fmt.Appendf(nil, `{"ts":%d.%06d,"level":"warn","caller":"api/handler.go:%d","msg":"slow request","path":"/api/v1/items/%d","status":200,"duration_ms":%d.%d,"req":{"id":"r%d","bytes":%d}}`,
				1764064800+i, i*7919%1000000, 100+i, i, 100+i%900, i%10, i, 512+i))
			continue
		}
		lines = append(lines, fmt.Appendf(nil, `{"@timestamp":"2026-11-25T10:%02d:%02d.%06dZ","level":"info","logger":"auth.session","msg":"session established","user":"user%04d","src_ip":"10.1.%d.%d","session_id":"c1-%d"}`,
			i%60, i%60, i*1000, i, i>>8, i&255, i))
	}
	var batch [][]byte
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := cr.line(ctx, lines[n%len(lines)]); err != nil {
			b.Fatal(err)
		}
		if n++; n%256 == 0 {
			batch = ta.pipe.ring.Peek(batch[:0], 1024)
			ta.pipe.ring.Release(len(batch))
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	if ta.led.Errors(ledger.ErrParse).Get() != 0 {
		b.Fatalf("%d lines flagged as not JSON", ta.led.Errors(ledger.ErrParse).Get())
	}
}
