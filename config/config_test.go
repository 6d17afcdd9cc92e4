package config

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDefaultMatchesShippedConfig(t *testing.T) {
	shipped, err := os.ReadFile("../configs/trawl.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shipped, DefaultYAML) {
		t.Fatal("configs/trawl.yaml and config/default.yaml differ: copy one over the other")
	}
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != "127.0.0.1:9470" || c.Node.DataDir != "./data" || c.Spool.Fsync != "interval" {
		t.Fatalf("unexpected defaults: %+v %+v %+v", c.HTTP, c.Node, c.Spool)
	}
	app := c.Inputs["app"]
	if app.Type != "app" || app.Listen != ":5170" || app.Backpressure != PolicyBlock || app.RingSize != 65536 {
		t.Fatalf("unexpected app input: %+v", app)
	}
}

func TestParse_Success(t *testing.T) {
	f := func(text string, check func(c *Config) bool) {
		t.Helper()
		c, err := Parse([]byte(text), "test")
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		if !check(c) {
			t.Fatalf("Parse(%q): unexpected result %+v", text, c)
		}
	}
	f("", func(c *Config) bool { return c.Spool.SegmentSize == 64<<20 && len(c.Inputs) == 0 })
	f("spool: {segment_size: 2MiB, max_size: 1GB, fsync_interval: 1s}", func(c *Config) bool {
		return c.Spool.SegmentSize == 2<<20 && c.Spool.MaxSize == 1e9 && c.Spool.FsyncInterval.D() == time.Second
	})
	f("http: {listen: ''}", func(c *Config) bool { return c.HTTP.Listen == "" })
	f("inputs: {logs: {type: app, listen: '127.0.0.1:0', backpressure: drop_newest, max_line_bytes: 4096}}", func(c *Config) bool {
		in := c.Inputs["logs"]
		return in.Backpressure == PolicyDropNewest && in.MaxLineBytes == 4096 && in.MaxConnections == 1024 && in.IsEnabled()
	})
	f("sinks: [{type: file, path: '-'}, {type: file, path: /tmp/x, name: archive}]", func(c *Config) bool {
		return c.Sinks[0].Name == "file-0" && c.Sinks[1].Name == "archive"
	})
}

func TestParse_Failure(t *testing.T) {
	f := func(text, want string) {
		t.Helper()
		_, err := Parse([]byte(text), "test.yaml")
		if err == nil {
			t.Fatalf("Parse(%q): no error, want %q", text, want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Parse(%q): error %q does not contain %q", text, err, want)
		}
	}
	f("spool:\n  fsync: sometimes\n", "line 2: key spool.fsync: unknown policy")
	f("spool:\n  colour: red\n", "line 2")
	f("spool:\n  colour: red\n", "colour")
	f("node:\n  name: x\nspool:\n  segment_size: 12 parsecs\n", "line 4: key spool.segment_size: invalid size")
	f("frames:\n  max_latency: soon\n", "line 2: key frames.max_latency: invalid duration")
	f("frames:\n  max_events: many\n", "line 2: key frames.max_events")
	f("inputs:\n  a:\n    type: app\n    backpressure: maybe\n", "line 4: key inputs.a.backpressure")
	f("inputs:\n  a:\n    type: telepathy\n", "line 3: key inputs.a.type: unknown input type")
	f("inputs:\n  a:\n    listen: ':1'\n", "key inputs.a: missing type")
	f("inputs:\n  a:\n    type: app\n    listen: nowhere\n", "line 4: key inputs.a.listen")
	f("sinks:\n  - type: file\n", "line 2: key sinks[0]: a file sink needs path")
	f("sinks:\n  - type: s3\n", "key sinks[0].type: unknown sink type")
	f("spool: [1, 2]", "test.yaml")
}
