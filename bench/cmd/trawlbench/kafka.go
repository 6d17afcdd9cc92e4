package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trawlsec/trawl/bench/gen"
	"github.com/trawlsec/trawl/bench/host"
	"github.com/trawlsec/trawl/bench/peer"
	"github.com/trawlsec/trawl/bench/trawlnode"
	"github.com/trawlsec/trawl/frame"
)

// The -kafka mode: every collector produces its flows to one Kafka broker
// instead of writing files, each step into a fresh topic with the same
// partition count, and what the broker holds afterwards (the sum of the
// topic's end offsets; for trawl-frame the events in the frames there) is
// what was delivered.
//
// Tools in this mode:
//
//   - trawl-pb: trawl with a kafka sink, encoding protobuf (goflow2's
//     FlowMessage), everything else at trawl's defaults;
//   - trawl-json: the same with encoding json (ECS);
//   - trawl-frame: the same with encoding frame, one record per spool frame
//     (S2 frames, uncompressed batches: trawl's defaults;
//     -kafka-frames-compression and -kafka-frame-batch-compression change
//     them); the harness decodes the frames to count the events;
//   - goflow2-pb: goflow2 -transport=kafka -format=bin with zstd
//     compression and a 100 ms flush interval, otherwise at its defaults
//     (sarama: acks=1, not idempotent, a request once a partition's batch
//     would pass 1 MB, round-robin partitioning). Its default flush
//     interval, 5 s, holds the last batches of a step until the next tick,
//     also when stopping, which would count as 5 s of delivery delay.
var kafkaTools = []string{"trawl-pb", "trawl-json", "trawl-frame", "goflow2-pb"}

// Settings of the trawl-frame tool. They are flags of this file rather
// than of main: they concern one tool of the Kafka mode only.
var (
	kafkaFramesCompression = flag.String("kafka-frames-compression", "", "trawl-frame: trawl's frames.compression (s2, s2-better, fastest, default, better, best, none; empty = trawl's default, s2)")
	kafkaFrameBatchComp    = flag.String("kafka-frame-batch-compression", "", "trawl-frame: the kafka sink's record batch compression (zstd, lz4, snappy, gzip, none; empty = the sink's default for encoding frame, none)")
)

// goflow2FlushFreq is goflow2's -transport.kafka.flushfreq in the bench
// (-goflow2-kafka-args can override it).
const goflow2FlushFreq = "100ms"

// KafkaCounts is what a step measured at the broker.
type KafkaCounts struct {
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"`
	// Records is the sum of the topic's end offsets once the collector
	// stopped: every record the broker accepted, duplicates included.
	Records      uint64  `json:"records"`
	PerPartition []int64 `json:"records_per_partition"`
	// Unique is the number of distinct record values, when the topic was
	// read back (-kafka-dups); Duplicates = Records − Unique. Every
	// generated flow differs from every other, and a producer retry
	// repeats a value byte for byte, so equal values are duplicates.
	Unique     uint64 `json:"unique,omitempty"`
	Duplicates uint64 `json:"duplicates"`
	DupsRead   bool   `json:"duplicates_counted"`
	// DoneAfterSendSec is how long after the generator's last packet the
	// topic reached its final size (polled every 50 ms); DeliveryRate is
	// Records over the time from the first packet to then.
	DoneAfterSendSec float64 `json:"done_after_send_s"`
	DeliveryRate     float64 `json:"delivery_flows_per_s"`
	// StopAfterSendSec is when the harness sent SIGTERM, after the end of
	// the send (trawl: once its sink had delivered everything; goflow2:
	// once it was idle, as it delivers its last batches only when
	// stopping); StopSec is how long the collector took to exit.
	StopAfterSendSec float64 `json:"stop_after_send_s"`
	StopSec          float64 `json:"stop_s"`
	// OtherCPUSeconds is the CPU time of every other process on the
	// machine from the collector's start to the final count, and
	// OtherCores the same per second: how much the step had to share.
	OtherCPUSeconds float64 `json:"other_cpu_s"`
	OtherCores      float64 `json:"other_cores"`
	// WallSec is the whole step, topic creation to read-back.
	WallSec float64 `json:"wall_s"`
	// CaughtUp: everything was in the broker within -kafka-max-lag of the
	// end of the send, so the collector kept up with the offered rate
	// rather than only buffering it (trawl's spool absorbs any burst).
	CaughtUp bool `json:"caught_up"`
	// BrokerCPUSeconds is the broker process's user+system time over the
	// step (collector start to final count); it shares the machine.
	BrokerCPUSeconds   float64 `json:"broker_cpu_s"`
	BrokerCPUPerMFlows float64 `json:"broker_cpu_s_per_mflows"`
	// FrameRecords is the records (frames) in a trawl-frame topic and
	// FrameBytes the sum of their values; Records and Unique then count
	// the events in them. FramesCompression and
	// BatchCompression are the trawl-frame settings of the step ("" =
	// trawl's defaults).
	FrameRecords      uint64 `json:"frame_records,omitempty"`
	FrameBytes        uint64 `json:"frame_bytes,omitempty"`
	FramesCompression string `json:"frames_compression,omitempty"`
	BatchCompression  string `json:"batch_compression,omitempty"`
	// SinkDelivered and SinkRejected are trawl's own counters.
	SinkDelivered uint64 `json:"trawl_sink_delivered,omitempty"`
	SinkRejected  uint64 `json:"trawl_sink_rejected,omitempty"`
	// SocketDrops is what the kernel dropped at the collector's UDP
	// sockets (/proc/net/udp), in datagrams. Goflow2Dropped,
	// Goflow2DecodeErrors and Goflow2NoTemplate are goflow2's own counters
	// of packets dropped from its full queue, packets it could not decode,
	// and of those the packets whose data came before its template.
	SocketDrops         uint64 `json:"socket_drops_datagrams"`
	Goflow2Dropped      uint64 `json:"goflow2_dropped_packets,omitempty"`
	Goflow2DecodeErrors uint64 `json:"goflow2_decoder_errors,omitempty"`
	Goflow2NoTemplate   uint64 `json:"goflow2_template_not_found,omitempty"`
	// LogTail is the end of the collector's log after a step that lost
	// flows, duplicated records or did not catch up.
	LogTail string `json:"log_tail,omitempty"`
}

// kafkaMode holds the -kafka settings and the harness's own client.
type kafkaMode struct {
	brokers    []string
	partitions int
	brokerPID  int
	countDups  bool
	maxLag     time.Duration
	// trawl's sink settings; zero keeps trawl's defaults.
	linger        time.Duration
	batchMaxBytes int
	maxBuffered   int
	goflow2Args   []string
	// framesCompression and batchCompression configure trawl-frame.
	framesCompression, batchCompression string
	// profileDir, if set, receives a CPU profile of trawl per step.
	profileDir string
	trawlBin   string
	goflow2Bin string

	cl  *kgo.Client
	adm *kadm.Client
}

// KafkaSettings is the Kafka mode's part of the report.
type KafkaSettings struct {
	Brokers       string  `json:"brokers"`
	Partitions    int     `json:"partitions"`
	MaxLagSec     float64 `json:"max_lag_s"`
	TrawlLinger   string  `json:"trawl_linger,omitempty"`
	TrawlBatchMax int     `json:"trawl_batch_max_bytes,omitempty"`
	TrawlMaxBuf   int     `json:"trawl_max_buffered_records,omitempty"`
	Goflow2Args   string  `json:"goflow2_args"`
	BrokerJVM     string  `json:"broker_jvm,omitempty"`
	// SinkBench holds BenchmarkSinkToBroker's results, when given.
	SinkBench []SinkBench `json:"sink_bench,omitempty"`
}

// SinkBench is one line of BenchmarkSinkToBroker's output.
type SinkBench struct {
	Name     string  `json:"name"`
	EventsPS float64 `json:"events_per_s"`
	NsPerOp  float64 `json:"ns_per_op"`
	Iter     int     `json:"iterations"`
	// CPUPerMEvents and BrokerCPUPerMEvents are the sink's process and the
	// broker's CPU seconds per million events; ValueBytesPerEvent is the
	// record value bytes per event of encoding frame.
	CPUPerMEvents       float64 `json:"cpu_s_per_mevents,omitempty"`
	BrokerCPUPerMEvents float64 `json:"broker_cpu_s_per_mevents,omitempty"`
	ValueBytesPerEvent  float64 `json:"value_bytes_per_event,omitempty"`
	// Other holds the line's remaining metrics ("123 B/op").
	Other string `json:"other,omitempty"`
}

func newKafkaMode(brokers string, partitions, brokerPID int) (*kafkaMode, error) {
	km := &kafkaMode{partitions: partitions, brokerPID: brokerPID,
		framesCompression: *kafkaFramesCompression, batchCompression: *kafkaFrameBatchComp}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			km.brokers = append(km.brokers, b)
		}
	}
	if len(km.brokers) == 0 {
		return nil, fmt.Errorf("cannot parse brokers from %q", brokers)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(km.brokers...))
	if err != nil {
		return nil, fmt.Errorf("create Kafka admin client: %w", err)
	}
	km.cl, km.adm = cl, kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := km.adm.ListBrokers(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("cannot reach Kafka at %s: %w", brokers, err)
	}
	return km, nil
}

func (km *kafkaMode) close() { km.cl.Close() }

// warmUp produces records into a scratch topic for a few seconds so that
// the broker's JIT has compiled its produce path before the first step:
// otherwise the first tool measured pays for it.
func (km *kafkaMode) warmUp(ctx context.Context, d time.Duration) error {
	topic := fmt.Sprintf("bench.warmup.%d", time.Now().UnixNano())
	if err := km.createTopic(ctx, topic); err != nil {
		return err
	}
	defer km.deleteTopic(topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(km.brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		return fmt.Errorf("create Kafka producer: %w", err)
	}
	defer cl.Close()
	val := make([]byte, 120)
	var failed error
	var once sync.Once
	for end := time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil; {
		for i := 0; i < 1000; i++ {
			v := append([]byte(nil), val...)
			binary.LittleEndian.PutUint64(v, uint64(time.Now().UnixNano())+uint64(i))
			cl.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					once.Do(func() { failed = err })
				}
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("warm up the broker: %w", err)
	}
	if failed != nil {
		return fmt.Errorf("warm up the broker: %w", failed)
	}
	return nil
}

// createTopic creates topic and waits until every partition has a leader
// that answers.
func (km *kafkaMode) createTopic(ctx context.Context, topic string) error {
	resp, err := km.adm.CreateTopic(ctx, int32(km.partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("cannot create topic %s: %w", topic, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		lo, err := km.adm.ListEndOffsets(ctx, topic)
		if err == nil && lo.Error() == nil {
			n := 0
			lo.Each(func(kadm.ListedOffset) { n++ })
			if n == km.partitions {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s has no leaders 20s after its creation (last error %v)", topic, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// endOffsets returns the sum of the topic's end offsets and each
// partition's. A busy single broker sometimes answers "leader not
// available" for a moment; that is retried for up to 10 s.
func (km *kafkaMode) endOffsets(ctx context.Context, topic string) (uint64, []int64, error) {
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, per, err := km.endOffsetsOnce(ctx, topic)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return n, per, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// endOffsetsOnce is endOffsets without retries.
func (km *kafkaMode) endOffsetsOnce(ctx context.Context, topic string) (uint64, []int64, error) {
	lo, err := km.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return 0, nil, fmt.Errorf("cannot list end offsets of %s: %w", topic, err)
	}
	per := make([]int64, km.partitions)
	var sum uint64
	lo.Each(func(o kadm.ListedOffset) {
		if int(o.Partition) < len(per) && o.Offset > 0 {
			per[o.Partition] = o.Offset
			sum += uint64(o.Offset)
		}
	})
	return sum, per, nil
}

// countUnique reads the topic from the start up to end offsets per and
// returns the number of distinct record values.
func (km *kafkaMode) countUnique(ctx context.Context, topic string, per []int64) (uint64, error) {
	seed := maphash.MakeSeed()
	seen := make(map[uint64]struct{})
	err := km.readTopic(ctx, topic, per, func(r *kgo.Record) error {
		seen[maphash.Bytes(seed, r.Value)] = struct{}{}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return uint64(len(seen)), nil
}

// frameCount is what countFrameEvents found in a trawl-frame topic.
type frameCount struct {
	events, unique, bytes uint64
}

// countFrameEvents reads a trawl-frame topic from the start up to end
// offsets per and returns the number of events in its frames, their
// bytes and, when distinct is set, the number of distinct events (by their binary record:
// every generated flow differs from every other, and a frame produced
// twice repeats its events byte for byte). Without distinct it reads only
// the frame headers' counts; with it, it decompresses every frame. A
// record that is not a valid frame is an error: the sink writes nothing
// else.
func (km *kafkaMode) countFrameEvents(ctx context.Context, topic string, per []int64, distinct bool) (frameCount, error) {
	var fc frameCount
	dec, err := frame.NewDecoder()
	if err != nil {
		return fc, err
	}
	defer dec.Close()
	seed := maphash.MakeSeed()
	var seen map[uint64]struct{}
	if distinct {
		seen = make(map[uint64]struct{})
	}
	var raw []byte
	err = km.readTopic(ctx, topic, per, func(r *kgo.Record) error {
		h, payload, size, err := frame.Parse(r.Value)
		if err == nil && size != len(r.Value) {
			err = fmt.Errorf("%d bytes after the frame", len(r.Value)-size)
		}
		if err != nil {
			return fmt.Errorf("record %s/%d@%d is not a frame: %w", r.Topic, r.Partition, r.Offset, err)
		}
		fc.events += uint64(h.Count)
		fc.bytes += uint64(len(r.Value))
		if !distinct {
			return nil
		}
		if raw, err = dec.Records(raw[:0], h, payload); err != nil {
			return fmt.Errorf("record %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		for rest := raw; len(rest) > 0; {
			var ev []byte
			ev, rest, _ = frame.Next(rest) // Records checked the framing
			seen[maphash.Bytes(seed, ev)] = struct{}{}
		}
		return nil
	})
	fc.unique = uint64(len(seen))
	return fc, err
}

// readTopic calls fn for every record of topic below the end offsets per,
// reading from the start.
func (km *kafkaMode) readTopic(ctx context.Context, topic string, per []int64, fn func(*kgo.Record) error) error {
	parts := map[int32]kgo.Offset{}
	var want uint64
	for p, end := range per {
		if end > 0 {
			parts[int32(p)] = kgo.NewOffset().AtStart()
			want += uint64(end)
		}
	}
	if want == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(km.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	if err != nil {
		return fmt.Errorf("create Kafka consumer: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var got uint64
	for got < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read back %s: %d of %d records: %w", topic, got, want, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("read back %s/%d: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if r.Offset >= per[r.Partition] {
				continue
			}
			got++
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (km *kafkaMode) deleteTopic(topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	km.adm.DeleteTopics(ctx, topic)
}

// offsetPoller samples the topic's size every 50 ms until stopped.
type offsetPoller struct {
	km    *kafkaMode
	topic string
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	// samples in time order
	at []time.Time
	n  []uint64
}

func (km *kafkaMode) poll(ctx context.Context, topic string) *offsetPoller {
	p := &offsetPoller{km: km, topic: topic, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, _, err := km.endOffsetsOnce(ctx, topic)
			if err != nil {
				continue
			}
			p.mu.Lock()
			p.at, p.n = append(p.at, time.Now()), append(p.n, n)
			p.mu.Unlock()
		}
	}()
	return p
}

// reached stops polling and returns when the topic first held final
// records; if no sample saw it, when the call was made (after the final
// count was read).
func (p *offsetPoller) reached(final uint64) time.Time {
	now := time.Now()
	close(p.stop)
	<-p.done
	for i, n := range p.n {
		if n >= final {
			return p.at[i]
		}
	}
	return now
}

// startKafkaTool builds the command of one tool producing to topic.
func (km *kafkaMode) startKafkaTool(tool string, port int, dir, topic string) (cmd *exec.Cmd, httpAddr string, err error) {
	hp, err := peer.FreePort("tcp")
	if err != nil {
		return nil, "", err
	}
	httpAddr = fmt.Sprintf("127.0.0.1:%d", hp)
	switch tool {
	case "trawl-pb", "trawl-json", "trawl-frame":
		tc := trawlKafka{data: filepath.Join(dir, "data"), http: httpAddr, port: port, brokers: km.brokers, topic: topic,
			linger: km.linger, batchMax: km.batchMaxBytes, maxBuf: km.maxBuffered}
		switch tool {
		case "trawl-pb":
			tc.enc = "protobuf"
		case "trawl-json":
			tc.enc = "json"
		case "trawl-frame":
			tc.enc, tc.framesCompression, tc.compression = "frame", km.framesCompression, km.batchCompression
		}
		cfg := tc.config()
		path := filepath.Join(dir, "trawl.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			return nil, "", err
		}
		return exec.Command(km.trawlBin, "run", "-c", path), httpAddr, nil
	case "goflow2-pb":
		args := []string{"-listen", fmt.Sprintf("netflow://127.0.0.1:%d", port),
			"-format", "bin", "-transport", "kafka",
			"-transport.kafka.brokers", strings.Join(km.brokers, ","),
			"-transport.kafka.topic", topic,
			"-transport.kafka.compression", "zstd",
			"-transport.kafka.flushfreq", goflow2FlushFreq,
			"-addr", httpAddr, "-loglevel", "warn"}
		return exec.Command(km.goflow2Bin, append(args, km.goflow2Args...)...), httpAddr, nil
	}
	return nil, "", fmt.Errorf("unknown Kafka tool %q (want %s)", tool, strings.Join(kafkaTools, ", "))
}

// trawlKafka is what trawl's configuration for a Kafka step depends on;
// zero values keep trawl's defaults.
type trawlKafka struct {
	data, http string
	port       int
	brokers    []string
	topic      string
	// enc is the sink's encoding; compression its batch compression;
	// framesCompression the node's frames.compression.
	enc, compression, framesCompression string
	linger                              time.Duration
	batchMax, maxBuf                    int
}

// config is trawl's configuration for a Kafka step: one netflow input, the
// kafka sink, and a shutdown grace long enough for the sink to deliver its
// backlog on SIGTERM (the harness waits for it before, so the grace is
// only a safety net).
func (c trawlKafka) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  name: bench\n  data_dir: %s\n  shutdown_grace: 60s\nhttp:\n  listen: %s\n", c.data, c.http)
	if c.framesCompression != "" {
		fmt.Fprintf(&b, "frames:\n  compression: %s\n", c.framesCompression)
	}
	fmt.Fprintf(&b, "inputs:\n  nf:\n    type: netflow\n    listen: 127.0.0.1:%d\n", c.port)
	fmt.Fprintf(&b, "sinks:\n  - type: kafka\n    name: kafka\n    brokers: [%s]\n    encoding: %s\n    topics: {flow: %s}\n", strings.Join(c.brokers, ", "), c.enc, c.topic)
	if c.compression != "" {
		fmt.Fprintf(&b, "    compression: %s\n", c.compression)
	}
	if c.linger > 0 {
		fmt.Fprintf(&b, "    linger: %s\n", c.linger)
	}
	if c.batchMax > 0 {
		fmt.Fprintf(&b, "    batch_max_bytes: %d\n", c.batchMax)
	}
	if c.maxBuf > 0 {
		fmt.Fprintf(&b, "    max_buffered_records: %d\n", c.maxBuf)
	}
	return b.String()
}

// promValues reads every sample of a Prometheus text page into a map from
// "name{labels}" to its value.
func promValues(r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			continue
		}
		out[l[:i]] += v
	}
	return out
}

// getMetrics reads trawl's metrics, keyed by whole series (name and labels).
func getMetrics(addr string) (map[string]float64, error) {
	b, err := trawlnode.MetricsText(addr)
	if err != nil {
		return nil, err
	}
	return promValues(bytes.NewReader(b)), nil
}

// machineBusy returns the CPU seconds all cores spent outside idle and
// iowait since boot (/proc/stat).
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		busy += n
	}
	return float64(busy) / clockTicks
}

// sumPrefix sums the samples of metric name (any labels).
func sumPrefix(m map[string]float64, name string) float64 {
	var v float64
	for k, x := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			v += x
		}
	}
	return v
}

// udpDrops sums the drops column of the sockets bound to 127.0.0.1:port
// in a /proc/net/udp style file.
func udpDrops(path string, port int) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	var n uint64
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 13 || f[1] != want {
			continue
		}
		v, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
		n += v
	}
	return n
}

// trawlSinkState is trawl's account of its Kafka sink.
type trawlSinkState struct {
	received, dropped, delivered, rejected, lagEvents float64
}

func readTrawlSink(addr string) (trawlSinkState, error) {
	m, err := getMetrics(addr)
	if err != nil {
		return trawlSinkState{}, err
	}
	var s trawlSinkState
	for k, v := range m {
		switch {
		case strings.HasPrefix(k, "trawl_input_received_events_total{") && strings.Contains(k, `input="nf"`):
			s.received += v
		case strings.HasPrefix(k, "trawl_input_dropped_events_total{") && strings.Contains(k, `input="nf"`):
			s.dropped += v
		case k == `trawl_sink_delivered_events_total{sink="kafka"}`:
			s.delivered = v
		case k == `trawl_sink_rejected_events_total{sink="kafka"}`:
			s.rejected = v
		case k == `trawl_sink_lag_events{sink="kafka"}`:
			s.lagEvents = v
		}
	}
	return s, nil
}

// waitTrawlDelivered returns once trawl's Kafka sink has delivered (or
// had refused) everything its input accepted and nothing is in flight, and
// the input has been quiet for two polls; or after timeout.
func waitTrawlDelivered(ctx context.Context, addr string, exited <-chan struct{}, timeout time.Duration) (trawlSinkState, error) {
	deadline := time.Now().Add(timeout)
	var last trawlSinkState
	stable := 0
	for {
		s, err := readTrawlSink(addr)
		if err != nil {
			return s, err
		}
		if s.received > 0 && s.delivered+s.rejected >= s.received-s.dropped && s.lagEvents == 0 && s.received == last.received {
			stable++
			if stable >= 2 {
				return s, nil
			}
		} else {
			stable = 0
		}
		last = s
		if time.Now().After(deadline) {
			return s, fmt.Errorf("trawl's Kafka sink did not catch up within %v: received %.0f dropped %.0f delivered %.0f lag %.0f", timeout, s.received, s.dropped, s.delivered, s.lagEvents)
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-exited:
			return s, errors.New("trawl exited while delivering")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// runKafkaStep runs one collector at one rate into a fresh topic. The
// collector is always stopped (cleanly, or killed) and the topic deleted.
func runKafkaStep(ctx context.Context, km *kafkaMode, tool string, f gen.Format, r int, rate float64, step time.Duration, exporters int, work string) (st Step) {
	kc := &KafkaCounts{Partitions: km.partitions}
	st = Step{Tool: tool, Format: f.String(), Rep: r, Offered: rate, Kafka: kc}
	isFrame := tool == "trawl-frame"
	if isFrame {
		kc.FramesCompression, kc.BatchCompression = km.framesCompression, km.batchCompression
	}
	stepStart := time.Now()
	defer func() { kc.WallSec = time.Since(stepStart).Seconds() }()
	dir, err := os.MkdirTemp(work, tool+"-")
	if err != nil {
		st.Error = err.Error()
		return st
	}
	defer os.RemoveAll(dir)
	kc.Topic = fmt.Sprintf("bench.%s.%s.r%d.%d", tool, f, int(rate), time.Now().UnixNano())
	if err := km.createTopic(ctx, kc.Topic); err != nil {
		st.Error = err.Error()
		return st
	}
	defer km.deleteTopic(kc.Topic)
	port, err := peer.FreePort("udp")
	if err != nil {
		st.Error = err.Error()
		return st
	}
	cmd, httpAddr, err := km.startKafkaTool(tool, port, dir, kc.Topic)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	brokerCPU0, _ := procStats(km.brokerPID)
	busy0, self0, t0 := machineBusy(), host.SelfCPU(), time.Now()
	logf, _ := os.Create(filepath.Join(dir, "stderr.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		st.Error = fmt.Sprintf("cannot start %s: %v", tool, err)
		return st
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if b, _ := os.ReadFile(logf.Name()); len(b) > 0 {
			switch {
			case st.Error != "":
				st.Error += ": " + lastLines(string(b), 5)
			case st.LossPct >= 0.1 || kc.Duplicates > 0 || !kc.CaughtUp:
				kc.LogTail = lastLines(string(b), 5)
			}
		}
	}()
	if err := waitUDPBound(ctx, cmd, exited, port); err != nil {
		st.Error = err.Error()
		return st
	}
	isTrawl := strings.HasPrefix(tool, "trawl")
	if isTrawl {
		t := &trawlTool{http: httpAddr}
		if err := t.ready(ctx); err != nil {
			st.Error = err.Error()
			return st
		}
	}
	pid := cmd.Process.Pid
	profDone := make(chan struct{})
	if isTrawl && km.profileDir != "" {
		// trawl's CPU profile over the send and the delivery after it.
		go func() {
			defer close(profDone)
			secs := int(step.Seconds()) + 3
			name := fmt.Sprintf("%s-%s-%s.pprof", tool, f, human(rate))
			if err := fetchTo(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", httpAddr, secs), filepath.Join(km.profileDir, name)); err != nil {
				fmt.Fprintf(os.Stderr, "note: no profile of %s: %v\n", tool, err)
			}
		}()
	} else {
		close(profDone)
	}
	poller := km.poll(ctx, kc.Topic)
	sendStart := time.Now()
	res, err := gen.Send(ctx, gen.SendConfig{Format: f, Target: netipLoopback(port), Exporters: exporters, Flows: uint64(rate * step.Seconds()), Rate: rate, GSO: *sendGSO})
	sendEnd := time.Now()
	st.Sent = res
	if err != nil {
		poller.reached(0)
		st.Error = err.Error()
		return st
	}
	st.GenLimited = res.Rate < 0.9*rate
	if isTrawl {
		s, err := waitTrawlDelivered(ctx, httpAddr, exited, 3*time.Minute)
		st.Trawl = &TrawlCounts{Received: uint64(s.received), Dropped: uint64(s.dropped)}
		kc.SinkDelivered, kc.SinkRejected = uint64(s.delivered), uint64(s.rejected)
		if err != nil {
			poller.reached(0)
			st.Error = err.Error()
			return st
		}
	} else {
		waitIdle(ctx, pid, exited)
	}
	<-profDone
	// VmHWM now: the wait4 rusage of an exec'd child also counts the
	// harness's own memory, which the child shared until its exec.
	_, st.PeakRSSKiB = procStats(pid)
	kc.SocketDrops = udpDrops("/proc/net/udp", port)
	if !isTrawl {
		if m, err := getMetrics(httpAddr); err == nil {
			kc.Goflow2Dropped = uint64(sumPrefix(m, "goflow2_flow_dropped_packets_total"))
			kc.Goflow2DecodeErrors = uint64(sumPrefix(m, "goflow2_flow_decoder_error_total"))
			for k, v := range m {
				if strings.HasPrefix(k, "goflow2_flow_process_nf_errors_total{") && strings.Contains(k, `error="template_not_found"`) {
					kc.Goflow2NoTemplate += uint64(v)
				}
			}
		}
	}
	stopAt := time.Now()
	kc.StopAfterSendSec = stopAt.Sub(sendEnd).Seconds()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		kc.StopSec = time.Since(stopAt).Seconds()
		if waitErr != nil {
			fmt.Fprintf(os.Stderr, "note: %s exited with %v\n", tool, waitErr)
		}
	case <-time.After(90 * time.Second):
		poller.reached(0)
		st.Error = fmt.Sprintf("%s did not stop within 90s of SIGTERM", tool)
		return st
	}
	if ps := cmd.ProcessState; ps != nil {
		// All of its CPU time, the final flush on SIGTERM included.
		st.CPUSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	n, per, err := km.endOffsets(ctx, kc.Topic)
	done := poller.reached(n)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	brokerCPU1, _ := procStats(km.brokerPID)
	kc.Records, kc.PerPartition = n, per
	kc.BrokerCPUSeconds = brokerCPU1 - brokerCPU0
	// Whatever else ran on the machine meanwhile: all CPU time minus the
	// collector's, the broker's and the harness's (the generator).
	kc.OtherCPUSeconds = max(0, machineBusy()-busy0-st.CPUSeconds-kc.BrokerCPUSeconds-(host.SelfCPU()-self0))
	if w := time.Since(t0).Seconds(); w > 0 {
		kc.OtherCores = kc.OtherCPUSeconds / w
	}
	var frameUnique uint64
	if isFrame && n > 0 {
		// The end offsets count frames; the events are inside them. Read
		// after the CPU accounting, like the other tools' read-back.
		fc, err := km.countFrameEvents(ctx, kc.Topic, per, km.countDups)
		if err != nil {
			st.Error = err.Error()
			return st
		}
		kc.FrameRecords, kc.FrameBytes, kc.Records, frameUnique = n, fc.bytes, fc.events, fc.unique
		events := fc.events
		n = events
	}
	kc.DoneAfterSendSec = max(0, done.Sub(sendEnd).Seconds())
	if d := done.Sub(sendStart).Seconds(); d > 0 {
		kc.DeliveryRate = float64(n) / d
	}
	kc.CaughtUp = done.Sub(sendEnd) <= km.maxLag
	unique := n
	switch {
	case isFrame && km.countDups && n > 0:
		kc.Unique, kc.DupsRead, unique = frameUnique, true, frameUnique
	case km.countDups && n > 0:
		u, err := km.countUnique(ctx, kc.Topic, per)
		if err != nil {
			st.Error = err.Error()
			return st
		}
		kc.Unique, kc.DupsRead, unique = u, true, u
	}
	kc.Duplicates = n - unique
	if n > res.Flows && !kc.DupsRead {
		// More records than flows sent: at least that many are duplicates.
		kc.Duplicates, unique = n-res.Flows, res.Flows
	}
	st.Stored = unique
	if res.Flows > 0 {
		st.LossPct = 100 * (1 - float64(unique)/float64(res.Flows))
	}
	if unique > 0 {
		st.CPUPerMFlows = st.CPUSeconds / float64(unique) * 1e6
		kc.BrokerCPUPerMFlows = kc.BrokerCPUSeconds / float64(unique) * 1e6
	}
	if st.Trawl != nil {
		st.Trawl.Spooled = st.Trawl.Received - st.Trawl.Dropped
		st.Trawl.MetricsTrue = kc.SinkDelivered+kc.SinkRejected == st.Trawl.Spooled && kc.SinkDelivered == n
	}
	return st
}

// fetchTo saves the body of a GET of url to path.
func fetchTo(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseSinkBench reads BenchmarkSinkToBroker lines from go test output.
func parseSinkBench(path string) ([]SinkBench, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []SinkBench
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkSinkToBroker") {
			continue
		}
		sb := SinkBench{Name: f[0]}
		sb.Iter, _ = strconv.Atoi(f[1])
		var other []string
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				sb.NsPerOp = v
			case "events/s":
				sb.EventsPS = v
			case "cpu-s/Mevents":
				sb.CPUPerMEvents = v
			case "broker-cpu-s/Mevents":
				sb.BrokerCPUPerMEvents = v
			case "value-B/event":
				sb.ValueBytesPerEvent = v
			default:
				other = append(other, f[i]+" "+f[i+1])
			}
		}
		sb.Other = strings.Join(other, " ")
		out = append(out, sb)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no BenchmarkSinkToBroker results in %s", path)
	}
	return out, nil
}
