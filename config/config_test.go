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
	if app.Type != "app" || app.Listen != ":5170" || app.Backpressure != PolicyBlock || app.RingSize != 8192 {
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
	f("inputs:\n  nf: {type: netflow}\n  s: {type: syslog, protocol: udp, gro: false}\n  t: {type: sflow, gro: true}", func(c *Config) bool {
		return c.Inputs["nf"].GRO == GROAuto && c.Inputs["s"].GRO == GROOff && c.Inputs["t"].GRO == GROOn
	})
	// Slots that hold batches of events (all but RELP's, audit's, eBPF's,
	// unix syslog's): fewer of them.
	f("inputs:\n  nf: {type: netflow}\n  sf: {type: sflow}\n  su: {type: syslog, protocol: udp}\n  st: {type: syslog, protocol: tcp}\n  r: {type: relp}\n  a: {type: app}\n  big: {type: syslog, protocol: udp, ring_size: 100000}", func(c *Config) bool {
		in := c.Inputs
		return in["nf"].RingSize == 8192 && in["sf"].RingSize == 8192 && in["su"].RingSize == 8192 && in["a"].RingSize == 8192 &&
			in["st"].RingSize == 8192 && in["r"].RingSize == 65536 && in["big"].RingSize == 100000
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
	f("inputs:\n  nf:\n    type: netflow\n    gro: yes\n", `line 4: key inputs.nf.gro: unknown value "yes" (want auto, true or false)`)
	f("inputs:\n  a:\n    type: app\n    gro: true\n", "line 4")
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

func TestSetKafka(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetKafka("127.0.0.1:9092, 127.0.0.1:9093"); err != nil {
		t.Fatal(err)
	}
	if len(c.Sinks) != 1 || c.Sinks[0].Type != SinkKafka || c.Sinks[0].Name != "kafka" || len(c.Sinks[0].Brokers) != 2 || c.Sinks[0].Brokers[1] != "127.0.0.1:9093" {
		t.Fatalf("sinks after SetKafka: %+v", c.Sinks)
	}
	// A configured kafka sink keeps its settings and only gets the brokers.
	c, err = Parse([]byte("sinks:\n  - {type: kafka, name: kafka, brokers: [\"a:1\"], encoding: protobuf}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetKafka("b:2"); err != nil {
		t.Fatal(err)
	}
	if len(c.Sinks) != 1 || c.Sinks[0].Brokers[0] != "b:2" || c.Sinks[0].Encoding != "protobuf" {
		t.Fatalf("sinks after SetKafka: %+v", c.Sinks)
	}
	if err := c.SetKafka("nohostport"); err == nil {
		t.Fatal("SetKafka accepted a broker without a port")
	}
}

func TestKafkaSinkValidation(t *testing.T) {
	f := func(yml, want string) {
		t.Helper()
		_, err := Parse([]byte(yml), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Parse(%q) = %v, want an error containing %q", yml, err, want)
		}
	}
	f("sinks:\n  - {type: kafka}\n", "needs brokers")
	f("sinks:\n  - {type: kafka, brokers: [\"h:1\"], topics: {flows: x}}\n", `unknown event kind "flows"`)
	f("sinks:\n  - {type: kafka, brokers: [\"h:1\"], topics: {flow: \"a b\"}}\n", "invalid Kafka topic name")
	f("sinks:\n  - {type: kafka, brokers: [\"h:1\"], encoding: avro}\n", `unknown encoding "avro"`)
	f("sinks:\n  - {type: kafka, brokers: [\"h:1\"], compression: brotli}\n", `unknown compression "brotli"`)
	f("sinks:\n  - {type: kafka, brokers: [\"h:1\"], sasl: {mechanism: GSSAPI, username: u}}\n", "unknown SASL mechanism")
	f("sinks:\n  - {type: kafka, brokers: [\"h:1\"], tls: {cert_file: c}}\n", "cert_file and key_file go together")
	f("sinks:\n  - type: kafka\n    brokers: [\"h:1\"]\n    encoding: frames\n", `line 4: key sinks[0].encoding: unknown encoding "frames" (want json, protobuf or frame)`)
	// Uncompressed frames of frames.max_bytes cannot fit in a batch.
	f("inputs: {nf: {type: netflow}}\nframes:\n  compression: none\nsinks:\n  - type: kafka\n    brokers: [\"h:1\"]\n    encoding: frame\n", "line 7: key sinks[0].encoding: encoding frame sends each frame as one record, and input nf stores its frames uncompressed")
	f("inputs: {nf: {type: netflow}}\nframes:\n  compression: none\n  max_bytes: 512KiB\nsinks:\n  - {type: kafka, brokers: [\"h:1\"], encoding: frame, batch_max_bytes: 256KiB}\n", "does not fit in batch_max_bytes (262144)")
	// One input's own compression: none is enough.
	f("inputs: {a: {type: app}, nf: {type: netflow, compression: none}}\nsinks:\n  - {type: kafka, brokers: [\"h:1\"], encoding: frame}\n", "input nf stores its frames uncompressed")
}

// TestKafkaSinkFrameEncoding: encoding frame is accepted with compressed
// frames (the default), and with uncompressed ones that fit in a batch;
// compression stays unset so that the sink picks its default (none).
func TestKafkaSinkFrameEncoding(t *testing.T) {
	f := func(yml string) {
		t.Helper()
		c, err := Parse([]byte(yml), "t.yaml")
		if err != nil {
			t.Fatalf("Parse(%q): %v", yml, err)
		}
		if s := c.Sinks[0]; s.Encoding != "frame" || s.Compression != "" {
			t.Fatalf("sink %+v", s)
		}
	}
	f("sinks:\n  - {type: kafka, brokers: [\"h:1\"], encoding: frame}\n")
	f("frames: {compression: fastest}\nsinks:\n  - {type: kafka, brokers: [\"h:1\"], encoding: frame}\n")
	f("frames: {compression: none, max_bytes: 256KiB}\nsinks:\n  - {type: kafka, brokers: [\"h:1\"], encoding: frame}\n")
	f("frames: {compression: none}\nsinks:\n  - {type: kafka, brokers: [\"h:1\"], encoding: frame, batch_max_bytes: 4MiB}\n")
	// Uncompressed frames are refused only where an input stores them:
	// frames.compression none is overridden by every input's own.
	f("inputs: {nf: {type: netflow, compression: s2}}\nframes: {compression: none}\nsinks:\n  - {type: kafka, brokers: [\"h:1\"], encoding: frame}\n")
}

// TestInputCompression: an input's compression defaults to
// frames.compression, may differ from it, and takes only its values.
func TestInputCompression(t *testing.T) {
	c, err := Parse([]byte("frames: {compression: fastest}\ninputs:\n  nf: {type: netflow, compression: none}\n  logs: {type: app}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Inputs["nf"].Compression; got != "none" {
		t.Errorf("nf compression %q, want none", got)
	}
	if got := c.Inputs["logs"].Compression; got != "fastest" {
		t.Errorf("logs compression %q, want frames.compression, fastest", got)
	}
	_, err = Parse([]byte("inputs:\n  nf:\n    type: netflow\n    compression: lz4\n"), "t.yaml")
	if want := `line 4: key inputs.nf.compression: unknown level "lz4"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse with compression lz4 = %v, want an error containing %q", err, want)
	}
}

func TestDefaultSyslogInputs(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	f := func(name, typ, proto, listen string) {
		t.Helper()
		in, ok := c.Inputs[name]
		if !ok {
			t.Fatalf("default config has no input %q", name)
		}
		if in.Type != typ || in.Protocol != proto || in.Listen != listen || in.MaxMessageBytes != 64<<10 || in.Backpressure != PolicyBlock {
			t.Fatalf("input %q = %+v; want type %s protocol %q listen %s, 64KiB messages, block", name, in, typ, proto, listen)
		}
	}
	f("syslog-udp", InputSyslog, SyslogUDP, ":5514")
	f("syslog-tcp", InputSyslog, SyslogTCP, ":5514")
	f("relp", InputRELP, "", ":2514")
	if c.Inputs["syslog-tcp"].MaxConnections != 1024 || c.Inputs["syslog-udp"].ReadBuffer != 32<<20 {
		t.Fatalf("unexpected limits: %+v %+v", c.Inputs["syslog-tcp"], c.Inputs["syslog-udp"])
	}
	for name, in := range c.Inputs {
		if in.Protocol == SyslogTLS || in.Protocol == SyslogUnix {
			t.Fatalf("input %q: tls and unix inputs are examples in comments, not defaults", name)
		}
	}
}

func TestParseSyslog_Success(t *testing.T) {
	f := func(text string, check func(in Input) bool) {
		t.Helper()
		c, err := Parse([]byte(text), "test")
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		if in := c.Inputs["s"]; !check(in) {
			t.Fatalf("Parse(%q): unexpected input %+v", text, in)
		}
	}
	f("inputs: {s: {type: syslog, protocol: udp}}", func(in Input) bool {
		return in.Listen == ":5514" && in.MaxMessageBytes == 64<<10 && in.ReadBuffer == 32<<20 && in.MaxConnections == 0
	})
	f("inputs: {s: {type: syslog, protocol: tcp, max_message_bytes: 8KiB, idle_timeout: 30s}}", func(in Input) bool {
		return in.Listen == ":5514" && in.MaxMessageBytes == 8<<10 && in.MaxConnections == 1024 && in.IdleTimeout.D() == 30*time.Second
	})
	f("inputs: {s: {type: syslog, protocol: tls, tls: {cert_file: a.crt, key_file: a.key, client_ca_file: ca.crt}}}", func(in Input) bool {
		return in.Listen == ":6514" && in.TLS != nil && in.TLS.ClientCAFile == "ca.crt"
	})
	f("inputs: {s: {type: syslog, protocol: unix, listen: /run/trawl/log.sock}}", func(in Input) bool {
		return in.Listen == "/run/trawl/log.sock"
	})
	f("inputs: {s: {type: relp, tls: {cert_file: a.crt, key_file: a.key}}}", func(in Input) bool {
		return in.Listen == ":2514" && in.TLS != nil && in.MaxConnections == 1024
	})
	f("inputs: {s: {type: syslog, protocol: udp, timezone: Europe/Berlin, zones: {'10.0.0.1': America/New_York, '::ffff:10.0.0.2': UTC}}}", func(in Input) bool {
		loc, err := in.Location()
		if err != nil || loc.String() != "Europe/Berlin" {
			return false
		}
		zones, err := in.ZoneMap()
		if err != nil || len(zones) != 2 {
			return false
		}
		// Mapped addresses are unmapped, as senders on a dual-stack socket are.
		for a, l := range zones {
			if !a.Is4() || (a.String() == "10.0.0.1") != (l.String() == "America/New_York") {
				return false
			}
		}
		return true
	})
	f("inputs: {s: {type: syslog, protocol: tcp}}", func(in Input) bool {
		loc, err := in.Location()
		return err == nil && loc == time.Local
	})
}

func TestParseSyslog_Failure(t *testing.T) {
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
	f("inputs:\n  s:\n    type: syslog\n", "line 2: key inputs.s: a syslog input needs protocol (udp, tcp, tls or unix)")
	f("inputs:\n  s:\n    type: syslog\n    protocol: sctp\n", `line 4: key inputs.s.protocol: unknown syslog protocol "sctp"`)
	f("inputs:\n  s:\n    type: syslog\n    protocol: tls\n", "line 2: key inputs.s: syslog protocol tls needs tls: {cert_file, key_file}")
	f("inputs:\n  s:\n    type: syslog\n    protocol: tls\n    tls: {cert_file: a.crt}\n", "line 5: key inputs.s.tls: missing key_file")
	f("inputs:\n  s:\n    type: syslog\n    protocol: tcp\n    tls: {cert_file: a, key_file: b}\n", "line 5: key inputs.s.tls: not a setting of syslog protocol tcp (use protocol: tls for TLS)")
	f("inputs:\n  s:\n    type: syslog\n    protocol: udp\n    max_connections: 5\n", "line 5: key inputs.s.max_connections: not a setting of syslog protocol udp")
	f("inputs:\n  s:\n    type: syslog\n    protocol: tcp\n    read_buffer: 1MiB\n", "line 5: key inputs.s.read_buffer: not a setting of syslog protocol tcp")
	f("inputs:\n  s:\n    type: syslog\n    protocol: tcp\n    max_line_bytes: 1MiB\n", "line 5: key inputs.s.max_line_bytes: not a setting of syslog protocol tcp")
	f("inputs:\n  s:\n    type: relp\n    protocol: tcp\n", "line 4: key inputs.s.protocol: not a setting of input type relp")
	f("inputs:\n  s:\n    type: app\n    timezone: UTC\n", "line 4: key inputs.s.timezone: not a setting of input type app")
	f("inputs:\n  s:\n    type: syslog\n    protocol: udp\n    max_message_bytes: 100\n", "line 5: key inputs.s.max_message_bytes: must be between 256 and 64MiB")
	f("inputs:\n  s:\n    type: syslog\n    protocol: unix\n", "key inputs.s: a unix syslog input needs listen: the socket path")
	f("inputs:\n  s:\n    type: syslog\n    protocol: tcp\n    listen: /dev/log\n", `line 5: key inputs.s.listen: "/dev/log" is not host:port`)
	f("inputs:\n  s:\n    type: syslog\n    protocol: udp\n    timezone: Mars/Olympus\n", `line 5: key inputs.s.timezone: unknown time zone "Mars/Olympus"`)
	f("inputs:\n  s:\n    type: syslog\n    protocol: udp\n    zones:\n      router1: UTC\n", `line 6: key inputs.s.zones.router1: "router1" is not an IP address`)
	f("inputs:\n  s:\n    type: syslog\n    protocol: udp\n    zones:\n      10.0.0.1: Nowhere/Special\n", `line 6: key inputs.s.zones.10.0.0.1: unknown time zone "Nowhere/Special"`)
}

func TestAuditInputConfig(t *testing.T) {
	c, err := Parse([]byte("inputs:\n  audit:\n    type: audit\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if in := c.Inputs["audit"]; in.Mode != AuditUnicast || in.ReadBuffer != 16<<20 || in.TakeOver || in.RulesFile != "" || in.RingSize != 65536 {
		t.Fatalf("audit defaults: %+v", in)
	}
	c, err = Parse([]byte("inputs:\n  audit:\n    type: audit\n    mode: multicast\n    read_buffer: 64MiB\n"), "t.yaml")
	if err != nil || c.Inputs["audit"].Mode != AuditMulticast || c.Inputs["audit"].ReadBuffer != 64<<20 {
		t.Fatalf("multicast: %v %+v", err, c)
	}
	d, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if in, ok := d.Inputs["audit"]; !ok || in.Type != InputAudit || in.Mode != AuditUnicast || in.TakeOver {
		t.Fatalf("default config audit input: %+v", in)
	}
	f := func(yml, want string) {
		t.Helper()
		_, err := Parse([]byte(yml), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Parse(%q) = %v, want an error containing %q", yml, err, want)
		}
	}
	f("inputs:\n  a:\n    type: audit\n    mode: broadcast\n", `line 4: key inputs.a.mode: unknown audit mode "broadcast"`)
	f("inputs:\n  a:\n    type: audit\n    mode: multicast\n    take_over: true\n", "line 5: key inputs.a.take_over: not a setting of audit mode multicast")
	f("inputs:\n  a:\n    type: audit\n    mode: multicast\n    rules_file: /x\n", "key inputs.a.rules_file: not a setting of audit mode multicast")
	f("inputs:\n  a:\n    type: audit\n    rules_file: /nonexistent/audit.rules\n", "line 4: key inputs.a.rules_file:")
	f("inputs:\n  a:\n    type: audit\n    listen: ':1'\n", "key inputs.a.listen: not a setting of input type audit")
	f("inputs:\n  a:\n    type: audit\n    read_buffer: 1KiB\n", "key inputs.a.read_buffer: must be between 64KiB and 1GiB")
	f("inputs:\n  a:\n    type: app\n    mode: unicast\n", "key inputs.a.mode: not a setting of input type app")
}
