package collector

import (
	"fmt"
	"net"
	"testing"

	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/sinks/disk"
)

// TestInputCompression: each input seals its frames with its own
// compression, by default frames.compression. Two app inputs get the same
// lines, one with compression none; after the node stops, the spool holds
// every line of each, the one input's frames uncompressed and the other's
// S2.
func TestInputCompression(t *testing.T) {
	dir := t.TempDir()
	n := newNode(t, fmt.Sprintf(`
node: {data_dir: %q, shutdown_grace: 1s}
http: {listen: ""}
frames: {max_latency: 20ms, compression: s2}
inputs:
  packed: {type: app, listen: "127.0.0.1:0"}
  plain: {type: app, listen: "127.0.0.1:0", compression: none}
`, dir), &syncBuf{})
	stop := startNode(n)
	const lines = 2000
	for _, in := range []string{"packed", "plain"} {
		c, err := net.Dial("tcp", n.AppAddr(in).String())
		if err != nil {
			t.Fatal(err)
		}
		for i := range lines {
			fmt.Fprintf(c, `{"msg":"the same line again and again","n":%d}`+"\n", i)
		}
		c.Close()
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	sp, err := disk.Open(disk.Options{Dir: SpoolDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	r, err := sp.Reader("test")
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]int{}
	codecs := map[string]map[frame.Codec]int{"packed": {}, "plain": {}}
	for {
		rec, _, err := r.Next()
		if err == disk.ErrNoData {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h, _, _, err := frame.Parse(rec)
		if err != nil {
			t.Fatal(err)
		}
		events[string(h.Input)] += int(h.Count)
		codecs[string(h.Input)][h.Codec]++
	}
	if events["packed"] != lines || events["plain"] != lines {
		t.Fatalf("spooled events per input %v, want %d each", events, lines)
	}
	if c := codecs["plain"]; len(c) != 1 || c[frame.CodecNone] == 0 {
		t.Errorf("input plain (compression none) sealed frames with codecs %v", c)
	}
	if c := codecs["packed"]; len(c) != 1 || c[frame.CodecS2] == 0 {
		t.Errorf("input packed (frames.compression s2) sealed frames with codecs %v", c)
	}
}
