// Package config loads trawl's YAML configuration.
//
// One file describes the node, its HTTP listener, the spool, the framing
// limits, the inputs and the sinks. Unknown keys and bad values are errors
// that name the key and its line, so `trawl validate` can point at the
// mistake. Loading never starts anything; package collector does that.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	// Zone names in syslog inputs must resolve on hosts without a zoneinfo
	// database (minimal containers, appliances).
	_ "time/tzdata"

	"gopkg.in/yaml.v3"
)

// DefaultYAML is the embedded configuration `trawl run` uses when no file is
// given. configs/trawl.yaml is the same file with comments, kept identical by
// a test.
//
//go:embed default.yaml
var DefaultYAML []byte

// Config is the whole file.
type Config struct {
	Node   Node             `yaml:"node"`
	HTTP   HTTP             `yaml:"http"`
	Spool  Spool            `yaml:"spool"`
	Frames Frames           `yaml:"frames"`
	Inputs map[string]Input `yaml:"inputs"`
	Sinks  []Sink           `yaml:"sinks"`

	lines map[string]int
}

// Node holds settings of the node itself.
type Node struct {
	// Name is the observer host name written into every frame; empty means
	// the machine's host name.
	Name string `yaml:"name"`
	// DataDir holds the spool and other state (default ./data).
	DataDir string `yaml:"data_dir"`
	// ShutdownGrace bounds how long stopping inputs keep reading what
	// clients already sent (default 5s).
	ShutdownGrace Duration `yaml:"shutdown_grace"`
}

// HTTP configures the metrics/health/ledger listener.
type HTTP struct {
	// Listen is host:port (default 127.0.0.1:9470); empty string disables.
	Listen string `yaml:"listen"`
}

// Spool configures the durable disk spool (package sinks/disk).
type Spool struct {
	SegmentSize   Size     `yaml:"segment_size"`
	Fsync         string   `yaml:"fsync"` // always | interval | never
	FsyncInterval Duration `yaml:"fsync_interval"`
	MaxSize       Size     `yaml:"max_size"`
	MaxAge        Duration `yaml:"max_age"`
}

// Frames configures batching of events into frames (package frame).
type Frames struct {
	MaxEvents   int      `yaml:"max_events"`
	MaxBytes    Size     `yaml:"max_bytes"`
	MaxLatency  Duration `yaml:"max_latency"`
	Compression string   `yaml:"compression"` // zstd fastest | default | better | best, s2 | s2-better, none
}

// UDP generic receive offload settings (the gro key of UDP inputs).
const (
	GROAuto = "auto"  // on where the BPF drop counter loads, else off
	GROOn   = "true"  // on; socket_overflow estimated without the counter
	GROOff  = "false" // off
)

// Backpressure policies: what an input does when its ring is full.
const (
	PolicyBlock      = "block"
	PolicyDropNewest = "drop_newest"
	PolicySpill      = "spill"
)

// Input type names.
const (
	InputApp     = "app"
	InputNetflow = "netflow"
	InputSFlow   = "sflow"
	InputSyslog  = "syslog"
	InputRELP    = "relp"
	InputAudit   = "audit"
)

// Syslog transports (the protocol key of a syslog input).
const (
	SyslogUDP  = "udp"
	SyslogTCP  = "tcp"
	SyslogTLS  = "tls"
	SyslogUnix = "unix"
)

// IsSyslog reports whether an input type carries syslog messages.
func IsSyslog(typ string) bool { return typ == InputSyslog || typ == InputRELP }

// usesUDP reports whether an input reads UDP sockets (sockets and
// read_buffer apply).
func (in Input) usesUDP() bool {
	return IsFlow(in.Type) || (in.Type == InputSyslog && in.Protocol == SyslogUDP)
}

// batches reports whether an input hands its ring batches of events, the
// events of one read: the UDP inputs and the stream inputs but RELP, which
// acknowledges each message on its own.
func (in Input) batches() bool {
	return in.usesUDP() || (in.isStream() && in.Type != InputRELP)
}

// isStream reports whether an input accepts TCP connections
// (max_connections and idle_timeout apply).
func (in Input) isStream() bool {
	return in.Type == InputApp || in.Type == InputRELP ||
		(in.Type == InputSyslog && (in.Protocol == SyslogTCP || in.Protocol == SyslogTLS))
}

// IsFlow reports whether an input type is one of the UDP flow inputs.
func IsFlow(typ string) bool { return typ == InputNetflow || typ == InputSFlow }

// Input configures one input. Settings that do not apply to the input's type
// are rejected by Validate.
type Input struct {
	Type    string `yaml:"type"`
	Enabled *bool  `yaml:"enabled"`
	Listen  string `yaml:"listen"`
	// RingSize is the number of slots of the input's ring (default 65536;
	// 8192 for the inputs whose slots hold batches of events: app, flows,
	// syslog over UDP, TCP and TLS).
	RingSize int `yaml:"ring_size"`
	// Backpressure is block, drop_newest or spill.
	Backpressure string `yaml:"backpressure"`
	// Compression is the codec of this input's frames, with the values of
	// frames.compression, which is its default. A flow input may store
	// uncompressed, as nfcapd does by default, for about a third less CPU
	// per flow, while syslog beside it stays compressed.
	Compression string `yaml:"compression"`
	// MaxLineBytes bounds one line (app); longer lines are truncated, flagged
	// and counted.
	MaxLineBytes Size `yaml:"max_line_bytes"`
	// MaxConnections bounds concurrent TCP connections; more are refused and
	// counted.
	MaxConnections int `yaml:"max_connections"`
	// IdleTimeout closes a TCP connection that sent nothing for this long
	// (0 = never).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// Sockets is the number of SO_REUSEPORT UDP sockets (netflow; default
	// one per core).
	Sockets int `yaml:"sockets"`
	// ReadBuffer is each UDP socket's SO_RCVBUF (netflow, syslog over UDP;
	// default 32MiB).
	ReadBuffer Size `yaml:"read_buffer"`
	// GRO is UDP generic receive offload on the UDP sockets (netflow,
	// syslog over UDP): auto (the default), true or false. The kernel hands
	// over a sender's datagrams several to a buffer but counts a dropped
	// buffer as one drop; auto turns GRO on only where trawl can load its
	// BPF drop counter, which keeps socket_overflow exact, and true turns
	// it on regardless (socket_overflow is then an estimate without the
	// counter).
	GRO string `yaml:"gro"`

	// Protocol is the transport of a syslog input: udp, tcp, tls or unix
	// (a datagram socket like /dev/log, whose listen is a path).
	Protocol string `yaml:"protocol"`
	// MaxMessageBytes bounds one syslog message (syslog, relp; default
	// 64KiB); longer ones keep their first bytes, are flagged and counted.
	MaxMessageBytes Size `yaml:"max_message_bytes"`
	// TLS holds the certificate of a syslog tls input (required there) or
	// of a relp input (optional: RELP over TLS).
	TLS *TLS `yaml:"tls"`
	// Timezone is the zone of RFC 3164 timestamps, which carry none, as an
	// IANA name ("Europe/Berlin", "UTC"); empty means the node's local zone.
	Timezone string `yaml:"timezone"`
	// Zones overrides Timezone per sender: source IP → IANA zone name.
	Zones map[string]string `yaml:"zones"`

	// Mode of an audit input: unicast (trawl is the audit daemon and loads
	// RulesFile; the default) or multicast (read beside auditd, change
	// nothing).
	Mode string `yaml:"mode"`
	// TakeOver lets a unicast audit input stop a running audit daemon
	// (SIGTERM) and take its place; without it the input refuses to start
	// while one runs.
	TakeOver bool `yaml:"take_over"`
	// RulesFile is an audit rules file in auditctl syntax, loaded by a
	// unicast audit input; empty means the built-in set
	// (configs/audit.rules).
	RulesFile string `yaml:"rules_file"`

	// EBPF holds the settings of an ebpf input (config/ebpf.go).
	EBPF `yaml:",inline"`
}

// TLS configures a TLS listener (TLS 1.2 or later).
type TLS struct {
	// CertFile and KeyFile are the server's PEM certificate (chain) and key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, makes client certificates required: they are
	// verified against the PEM CA certificates in this file.
	ClientCAFile string `yaml:"client_ca_file"`
}

// Location returns the input's default zone for RFC 3164 timestamps.
// Validate has checked the name, so an error here means the zone database
// changed underneath.
func (in Input) Location() (*time.Location, error) {
	if in.Timezone == "" {
		return time.Local, nil
	}
	return time.LoadLocation(in.Timezone)
}

// ZoneMap returns the per-sender zones, parsed.
func (in Input) ZoneMap() (map[netip.Addr]*time.Location, error) {
	if len(in.Zones) == 0 {
		return nil, nil
	}
	m := make(map[netip.Addr]*time.Location, len(in.Zones))
	for ip, name := range in.Zones {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, fmt.Errorf("cannot parse zone source address %q: %w", ip, err)
		}
		loc, err := time.LoadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("cannot load time zone %q for %s: %w", name, ip, err)
		}
		m[a.Unmap()] = loc
	}
	return m, nil
}

// IsEnabled reports whether the input should run (default true).
func (in Input) IsEnabled() bool { return in.Enabled == nil || *in.Enabled }

// Sink types.
const (
	SinkFile  = "file"
	SinkKafka = "kafka"
)

// Sink configures one output besides the spool.
type Sink struct {
	Type string `yaml:"type"`
	// Name identifies the sink in metrics and is its spool cursor name
	// (default "<type>-<index>").
	Name string `yaml:"name"`
	// Path is the file to append JSON lines to; "-" is standard output.
	Path string `yaml:"path"`

	// The rest configures a kafka sink.

	// Brokers are the seed brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// Topics overrides the topic per event kind (flow, syslog, audit,
	// process, network, app); the default is trawl.<kind>.
	Topics map[string]string `yaml:"topics"`
	// Encoding of record values: json (ECS, the default), protobuf, or
	// frame (one record per spool frame, as the spool holds it).
	Encoding string `yaml:"encoding"`
	// Compression of record batches: zstd (default; none with encoding
	// frame, whose frames are compressed already), lz4, snappy, gzip or
	// none.
	Compression string `yaml:"compression"`
	// Linger is how long a partition waits to fill a batch (default 5ms).
	Linger Duration `yaml:"linger"`
	// BatchMaxBytes bounds a record batch (default 1MiB).
	BatchMaxBytes Size `yaml:"batch_max_bytes"`
	// MaxBufferedRecords bounds records produced and not yet acknowledged
	// (default 200000); beyond it the sink leaves frames in the spool.
	MaxBufferedRecords int `yaml:"max_buffered_records"`
	// ClientID is sent to the brokers (default trawl).
	ClientID string `yaml:"client_id"`
	// TLS enables TLS to the brokers.
	TLS *SinkTLS `yaml:"tls"`
	// SASL enables SASL authentication.
	SASL *SinkSASL `yaml:"sasl"`
}

// SinkTLS configures TLS from a sink to its servers.
type SinkTLS struct {
	// CAFile verifies the servers (PEM); empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate (PEM), if the servers
	// require one.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the servers' certificates.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables server verification (tests only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SinkSASL configures SASL authentication.
type SinkSASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// SetKafka points the node at the Kafka brokers in list (host:port, comma
// separated), as the --kafka flag does: it sets the brokers of the sink
// named "kafka", adding a kafka sink with default settings when there is
// none, and validates the result.
func (c *Config) SetKafka(list string) error {
	var brokers []string
	for _, b := range strings.Split(list, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	found := false
	for i := range c.Sinks {
		if c.Sinks[i].Name == "kafka" {
			if c.Sinks[i].Type != SinkKafka {
				return fmt.Errorf("the sink named kafka is of type %s", c.Sinks[i].Type)
			}
			c.Sinks[i].Brokers, found = brokers, true
		}
	}
	if !found {
		c.Sinks = append(c.Sinks, Sink{Type: SinkKafka, Name: "kafka", Brokers: brokers})
	}
	return c.Validate()
}

// Duration is a time.Duration written as "100ms", "5s", "168h".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil || v < 0 {
		return &valueError{line: n.Line, msg: fmt.Sprintf("invalid duration %q (want e.g. 100ms, 5s, 168h)", n.Value)}
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as a number or with a unit: 512KiB, 64MiB,
// 10GiB (also KB/MB/GB as powers of 1000).
type Size int64

var sizeRe = regexp.MustCompile(`^\s*([0-9]+)\s*([KMGT]i?B|B)?\s*$`)

// UnmarshalYAML parses a size with an optional unit.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return &valueError{line: n.Line, msg: err.Error()}
	}
	*s = v
	return nil
}

// ParseSize parses "64MiB", "1000000", "10GB".
func ParseSize(text string) (Size, error) {
	m := sizeRe.FindStringSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1048576, 512KiB, 64MiB, 10GiB)", text)
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", text, err)
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	return Size(v * mult), nil
}

type valueError struct {
	line int
	msg  string
}

func (e *valueError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// Default returns the embedded default configuration.
func Default() (*Config, error) {
	return Parse(DefaultYAML, "<embedded default>")
}

// Load reads and validates a file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes and validates YAML text; name is used in error messages.
// Defaults are applied for every key the text leaves out.
func Parse(text []byte, name string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(text, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lines := map[string]int{}
	if len(root.Content) > 0 {
		collectLines(root.Content[0], "", lines)
	}
	c := &Config{lines: lines}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	// An empty file is an empty config: every default applies.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s", name, nameKeys(err.Error(), lines))
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// collectLines records the line of every key path, e.g. "inputs.app.listen"
// or "sinks[0].path".
func collectLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			lines[p] = k.Line
			collectLines(v, p, lines)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = v.Line
			collectLines(v, p, lines)
		}
	}
}

var lineRe = regexp.MustCompile(`line (\d+): `)

// nameKeys adds the key path to yaml's "line N: ..." messages, which name
// only the line.
func nameKeys(msg string, lines map[string]int) string {
	byLine := map[int]string{}
	for k, l := range lines {
		// Prefer the deepest key on a line: it is the one holding the value.
		if old, ok := byLine[l]; !ok || len(k) > len(old) {
			byLine[l] = k
		}
	}
	return lineRe.ReplaceAllStringFunc(msg, func(m string) string {
		l, _ := strconv.Atoi(lineRe.FindStringSubmatch(m)[1])
		if k, ok := byLine[l]; ok {
			return fmt.Sprintf("line %d: key %s: ", l, k)
		}
		return m
	})
}

// Line returns the line of a key path ("inputs.app.listen"), or 0.
func (c *Config) Line(path string) int { return c.lines[path] }

func (c *Config) errorf(path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if l := c.lines[path]; l > 0 {
		return fmt.Errorf("line %d: key %s: %s", l, path, msg)
	}
	return fmt.Errorf("key %s: %s", path, msg)
}

func (c *Config) applyDefaults() {
	if c.Node.DataDir == "" {
		c.Node.DataDir = "./data"
	}
	if c.Node.ShutdownGrace == 0 {
		c.Node.ShutdownGrace = Duration(5 * time.Second)
	}
	if _, ok := c.lines["http.listen"]; !ok && c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:9470"
	}
	if c.Spool.SegmentSize == 0 {
		c.Spool.SegmentSize = 64 << 20
	}
	if c.Spool.Fsync == "" {
		c.Spool.Fsync = "interval"
	}
	if c.Spool.FsyncInterval == 0 {
		c.Spool.FsyncInterval = Duration(100 * time.Millisecond)
	}
	if c.Frames.MaxEvents == 0 {
		c.Frames.MaxEvents = 8192
	}
	if c.Frames.MaxBytes == 0 {
		c.Frames.MaxBytes = 1 << 20
	}
	if c.Frames.MaxLatency == 0 {
		c.Frames.MaxLatency = Duration(200 * time.Millisecond)
	}
	if c.Frames.Compression == "" {
		c.Frames.Compression = "s2"
	}
	for name, in := range c.Inputs {
		if in.RingSize == 0 {
			in.RingSize = 65536
			if in.batches() {
				// Such an input's slot holds a batch of up to 2 KiB of
				// events (about 15 flows, 8 syslog messages or 10 JSON
				// lines), not one.
				in.RingSize = 8192
			}
		}
		if in.Backpressure == "" {
			in.Backpressure = PolicyBlock
		}
		if in.Compression == "" {
			in.Compression = c.Frames.Compression
		}
		if IsFlow(in.Type) {
			if in.Listen == "" {
				in.Listen = ":2055"
				if in.Type == InputSFlow {
					in.Listen = ":6343"
				}
			}
			if in.ReadBuffer == 0 {
				in.ReadBuffer = 32 << 20
			}
		}
		if in.usesUDP() && in.GRO == "" {
			in.GRO = GROAuto
		}
		if in.Type == InputApp {
			if in.Listen == "" {
				in.Listen = ":5170"
			}
			if in.MaxLineBytes == 0 {
				in.MaxLineBytes = 1 << 20
			}
		}
		if in.isStream() && in.MaxConnections == 0 {
			in.MaxConnections = 1024
		}
		if IsSyslog(in.Type) {
			if in.MaxMessageBytes == 0 {
				in.MaxMessageBytes = 64 << 10
			}
			if in.Listen == "" {
				switch {
				case in.Type == InputRELP:
					in.Listen = ":2514"
				case in.Protocol == SyslogUDP || in.Protocol == SyslogTCP:
					in.Listen = ":5514"
				case in.Protocol == SyslogTLS:
					in.Listen = ":6514" // RFC 5425
				}
			}
			if in.Protocol == SyslogUDP && in.ReadBuffer == 0 {
				in.ReadBuffer = 32 << 20
			}
		}
		if in.Type == InputEBPF {
			defaultsEBPF(&in)
		}
		if in.Type == InputAudit {
			if in.Mode == "" {
				in.Mode = AuditUnicast
			}
			if in.ReadBuffer == 0 {
				in.ReadBuffer = 16 << 20
			}
		}
		c.Inputs[name] = in
	}
	for i := range c.Sinks {
		if c.Sinks[i].Name == "" {
			c.Sinks[i].Name = fmt.Sprintf("%s-%d", c.Sinks[i].Type, i)
		}
	}
}

var nameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// topicRe is Kafka's rule for topic names (length checked apart).
var topicRe = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// Validate checks values and cross-field rules. Parse calls it.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }

	switch c.Spool.Fsync {
	case "always", "interval", "never":
	default:
		add(c.errorf("spool.fsync", "unknown policy %q (want always, interval or never)", c.Spool.Fsync))
	}
	if c.Spool.SegmentSize < 1<<20 {
		add(c.errorf("spool.segment_size", "must be at least 1MiB, got %d", c.Spool.SegmentSize))
	}
	if c.Spool.MaxSize != 0 && c.Spool.MaxSize < 2*c.Spool.SegmentSize {
		add(c.errorf("spool.max_size", "must be 0 (unlimited) or at least two segments (%d bytes)", 2*c.Spool.SegmentSize))
	}
	if c.Frames.MaxEvents < 1 || c.Frames.MaxEvents > 1<<20 {
		add(c.errorf("frames.max_events", "must be between 1 and 1048576, got %d", c.Frames.MaxEvents))
	}
	if c.Frames.MaxBytes < 1<<10 || c.Frames.MaxBytes > 32<<20 {
		add(c.errorf("frames.max_bytes", "must be between 1KiB and 32MiB, got %d", c.Frames.MaxBytes))
	}
	if !validCompression(c.Frames.Compression) {
		add(c.errorf("frames.compression", "unknown level %q (want %s)", c.Frames.Compression, compressionNames))
	}

	names := make([]string, 0, len(c.Inputs))
	for name := range c.Inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		in := c.Inputs[name]
		p := "inputs." + name
		if !nameRe.MatchString(name) {
			add(c.errorf(p, "input names are letters, digits, '_', '.', '-' (at most 64)"))
		}
		switch in.Type {
		case InputApp, InputNetflow, InputSFlow, InputSyslog, InputRELP, InputAudit, InputEBPF:
		case "":
			add(c.errorf(p, "missing type"))
			continue
		default:
			add(c.errorf(p+".type", "unknown input type %q (want app, netflow, sflow, syslog, relp, audit or ebpf)", in.Type))
			continue
		}
		if in.Type == InputSyslog {
			switch in.Protocol {
			case SyslogUDP, SyslogTCP, SyslogTLS, SyslogUnix:
			case "":
				add(c.errorf(p, "a syslog input needs protocol (udp, tcp, tls or unix)"))
				continue
			default:
				add(c.errorf(p+".protocol", "unknown syslog protocol %q (want udp, tcp, tls or unix)", in.Protocol))
				continue
			}
		}
		// Settings of another type or transport are mistakes, not silently
		// ignored.
		what := "input type " + in.Type
		if in.Type == InputSyslog {
			what = "syslog protocol " + in.Protocol
		}
		notFor := func(key string) {
			if _, set := c.lines[p+"."+key]; set {
				add(c.errorf(p+"."+key, "not a setting of %s", what))
			}
		}
		if !validCompression(in.Compression) {
			add(c.errorf(p+".compression", "unknown level %q (want %s)", in.Compression, compressionNames))
		}
		c.validateEBPF(p, in, add, notFor)
		if in.Type == InputAudit {
			c.validateAudit(p, in, add)
		} else {
			for _, k := range []string{"mode", "take_over", "rules_file"} {
				notFor(k)
			}
		}
		if in.usesUDP() {
			if in.Sockets < 0 || in.Sockets > 256 {
				add(c.errorf(p+".sockets", "must be between 0 (one per core) and 256, got %d", in.Sockets))
			}
			if in.ReadBuffer < 4096 || in.ReadBuffer > 1<<30 {
				add(c.errorf(p+".read_buffer", "must be between 4KiB and 1GiB, got %d", in.ReadBuffer))
			}
			switch in.GRO {
			case GROAuto, GROOn, GROOff:
			default:
				add(c.errorf(p+".gro", "unknown value %q (want auto, true or false)", in.GRO))
			}
		} else {
			notFor("sockets")
			notFor("gro")
			if in.Type != InputAudit {
				notFor("read_buffer")
			}
		}
		if in.isStream() {
			if in.MaxConnections < 1 {
				add(c.errorf(p+".max_connections", "must be at least 1, got %d", in.MaxConnections))
			}
		} else {
			notFor("max_connections")
			notFor("idle_timeout")
		}
		if in.Type != InputApp {
			notFor("max_line_bytes")
		}
		if !IsSyslog(in.Type) {
			for _, k := range []string{"protocol", "max_message_bytes", "tls", "timezone", "zones"} {
				notFor(k)
			}
		}
		if in.Type == InputRELP {
			notFor("protocol")
		}
		if IsSyslog(in.Type) {
			c.validateSyslog(p, in, add, notFor)
		}
		if in.RingSize < 2 || in.RingSize > 1<<24 {
			add(c.errorf(p+".ring_size", "must be between 2 and 16777216, got %d", in.RingSize))
		}
		switch in.Backpressure {
		case PolicyBlock, PolicyDropNewest, PolicySpill:
		default:
			add(c.errorf(p+".backpressure", "unknown policy %q (want block, drop_newest or spill)", in.Backpressure))
		}
		if in.Type == InputApp && (in.MaxLineBytes < 256 || in.MaxLineBytes > 64<<20) {
			add(c.errorf(p+".max_line_bytes", "must be between 256 and 64MiB, got %d", in.MaxLineBytes))
		}
		if in.Type == InputAudit || in.Type == InputEBPF {
			notFor("listen")
		} else if !IsSyslog(in.Type) { // validateSyslog knows unix socket paths
			if err := checkHostPort(in.Listen); err != nil {
				add(c.errorf(p+".listen", "%v", err))
			}
		}
	}
	for i, s := range c.Sinks {
		p := fmt.Sprintf("sinks[%d]", i)
		switch s.Type {
		case SinkFile:
			if s.Path == "" {
				add(c.errorf(p, "a file sink needs path (a file, or - for standard output)"))
			}
		case SinkKafka:
			if len(s.Brokers) == 0 {
				add(c.errorf(p, "a kafka sink needs brokers (host:port, ...)"))
			}
			for j, b := range s.Brokers {
				if err := checkHostPort(b); err != nil || strings.HasPrefix(b, ":") {
					add(c.errorf(fmt.Sprintf("%s.brokers[%d]", p, j), "want host:port, got %q", b))
				}
			}
			for kind, topic := range s.Topics {
				switch kind {
				case "flow", "syslog", "audit", "process", "network", "app":
				default:
					add(c.errorf(p+".topics."+kind, "unknown event kind %q (want flow, syslog, audit, process, network or app)", kind))
				}
				if topic == "" || len(topic) > 249 || !topicRe.MatchString(topic) {
					add(c.errorf(p+".topics."+kind, "invalid Kafka topic name %q", topic))
				}
			}
			switch s.Compression {
			case "", "zstd", "lz4", "snappy", "gzip", "none":
			default:
				add(c.errorf(p+".compression", "unknown compression %q (want zstd, lz4, snappy, gzip or none)", s.Compression))
			}
			switch s.Encoding {
			case "", "json", "protobuf":
			case "frame":
				// A frame is one record, and a record must fit in a batch.
				// Uncompressed frames reach frames.max_bytes plus headers,
				// so at that size every full frame would be rejected.
				batch := s.BatchMaxBytes
				if batch == 0 {
					batch = 1 << 20
				}
				if in := c.uncompressedInput(); in != "" && c.Frames.MaxBytes >= batch {
					add(c.errorf(p+".encoding", "encoding frame sends each frame as one record, and input %s stores its frames uncompressed (compression none), so a full frame (frames.max_bytes %d) does not fit in batch_max_bytes (%d): compress frames, lower frames.max_bytes, or raise batch_max_bytes (and the topics' max.message.bytes)", in, c.Frames.MaxBytes, batch))
				}
			default:
				add(c.errorf(p+".encoding", "unknown encoding %q (want json, protobuf or frame)", s.Encoding))
			}
			if s.Linger < 0 || s.BatchMaxBytes < 0 || s.BatchMaxBytes > 1<<30 || s.MaxBufferedRecords < 0 {
				add(c.errorf(p, "linger, batch_max_bytes (at most 1GiB) and max_buffered_records must not be negative"))
			}
			if s.TLS != nil && (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
				add(c.errorf(p+".tls", "cert_file and key_file go together"))
			}
			if s.SASL != nil {
				switch s.SASL.Mechanism {
				case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
				default:
					add(c.errorf(p+".sasl.mechanism", "unknown SASL mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.SASL.Mechanism))
				}
				if s.SASL.Username == "" {
					add(c.errorf(p+".sasl.username", "SASL needs a username"))
				}
			}
		default:
			add(c.errorf(p+".type", "unknown sink type %q (want file or kafka)", s.Type))
		}
		if !nameRe.MatchString(s.Name) {
			add(c.errorf(p+".name", "sink names are letters, digits, '_', '.', '-' (at most 64)"))
		}
		for j := 0; j < i; j++ {
			if c.Sinks[j].Name == s.Name {
				add(c.errorf(p+".name", "duplicate sink name %q", s.Name))
			}
		}
	}
	return errors.Join(errs...)
}

// Audit input modes (the mode key).
const (
	AuditUnicast   = "unicast"
	AuditMulticast = "multicast"
)

// validateAudit checks the settings of an audit input. The rules file is
// only checked for existence here; its syntax is checked when the input
// is created, where the parser that loads it lives.
func (c *Config) validateAudit(p string, in Input, add func(error)) {
	switch in.Mode {
	case AuditUnicast:
		if in.RulesFile != "" {
			if _, err := os.Stat(in.RulesFile); err != nil {
				add(c.errorf(p+".rules_file", "%v", err))
			}
		}
	case AuditMulticast:
		// Reading beside auditd changes nothing in the kernel.
		for _, k := range []string{"take_over", "rules_file"} {
			if _, set := c.lines[p+"."+k]; set {
				add(c.errorf(p+"."+k, "not a setting of audit mode multicast (auditd owns the rules and the audit PID)"))
			}
		}
	default:
		add(c.errorf(p+".mode", "unknown audit mode %q (want unicast or multicast)", in.Mode))
	}
	if in.ReadBuffer < 64<<10 || in.ReadBuffer > 1<<30 {
		add(c.errorf(p+".read_buffer", "must be between 64KiB and 1GiB, got %d", in.ReadBuffer))
	}
}

// validateSyslog checks the settings of a syslog or relp input.
func (c *Config) validateSyslog(p string, in Input, add func(error), notFor func(string)) {
	if in.MaxMessageBytes < 256 || in.MaxMessageBytes > 64<<20 {
		add(c.errorf(p+".max_message_bytes", "must be between 256 and 64MiB, got %d", in.MaxMessageBytes))
	}
	if in.Protocol == SyslogUnix {
		if in.Listen == "" {
			add(c.errorf(p, "a unix syslog input needs listen: the socket path (e.g. /dev/log)"))
		} else if len(in.Listen) > 107 {
			add(c.errorf(p+".listen", "socket path is %d bytes, longer than the 107 a unix socket allows", len(in.Listen)))
		}
	} else if err := checkHostPort(in.Listen); err != nil {
		add(c.errorf(p+".listen", "%v", err))
	}
	switch {
	case in.Protocol == SyslogTLS && in.TLS == nil:
		add(c.errorf(p, "syslog protocol tls needs tls: {cert_file, key_file}"))
	case in.TLS != nil && in.Type == InputSyslog && in.Protocol != SyslogTLS:
		if in.Protocol == SyslogTCP {
			add(c.errorf(p+".tls", "not a setting of syslog protocol tcp (use protocol: tls for TLS)"))
		} else {
			notFor("tls")
		}
	case in.TLS != nil:
		if in.TLS.CertFile == "" {
			add(c.errorf(p+".tls", "missing cert_file"))
		}
		if in.TLS.KeyFile == "" {
			add(c.errorf(p+".tls", "missing key_file"))
		}
	}
	if in.Timezone != "" {
		if _, err := time.LoadLocation(in.Timezone); err != nil {
			add(c.errorf(p+".timezone", "unknown time zone %q (want an IANA name such as Europe/Berlin, or UTC)", in.Timezone))
		}
	}
	ips := make([]string, 0, len(in.Zones))
	for ip := range in.Zones {
		ips = append(ips, ip)
	}
	sort.Strings(ips)
	for _, ip := range ips {
		kp := p + ".zones." + ip
		if _, err := netip.ParseAddr(ip); err != nil {
			add(c.errorf(kp, "%q is not an IP address", ip))
		}
		if _, err := time.LoadLocation(in.Zones[ip]); err != nil || in.Zones[ip] == "" {
			add(c.errorf(kp, "unknown time zone %q (want an IANA name such as Europe/Berlin, or UTC)", in.Zones[ip]))
		}
	}
}

func checkHostPort(s string) error {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return fmt.Errorf("%q is not host:port", s)
	}
	port, err := strconv.Atoi(s[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("%q has no valid port", s)
	}
	return nil
}

// compressionNames lists the frame codec levels, for error messages.
const compressionNames = "fastest, default, better, best, none, s2 or s2-better"

func validCompression(s string) bool {
	switch s {
	case "fastest", "default", "better", "best", "none", "s2", "s2-better":
		return true
	}
	return false
}

// uncompressedInput names an enabled input whose frames are stored
// uncompressed, or returns "" when there is none.
func (c *Config) uncompressedInput() string {
	names := make([]string, 0, len(c.Inputs))
	for name, in := range c.Inputs {
		if in.Compression == "none" && (in.Enabled == nil || *in.Enabled) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[0]
}
