//go:build 386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm

package bpf

import (
	"net/netip"
	"testing"

	"github.com/trawlsec/trawl/event"
)

// BenchmarkDecode decodes an exec record with a usual command line and a
// close record, the two shapes most records have.
func BenchmarkDecode(b *testing.B) {
	recs := map[string][]byte{
		"exec":  execRecord(0, "/usr/bin/ls\x00-l\x00--color=auto\x00/tmp\x00", "/usr/bin/ls"),
		"close": connRecord(recordClose, 0, netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::2]:443")),
	}
	for name, rec := range recs {
		b.Run(name, func(b *testing.B) {
			var d Decoder
			var ev event.Event
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Decode(&ev, rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
