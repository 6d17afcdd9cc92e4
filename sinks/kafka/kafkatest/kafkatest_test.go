package kafkatest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// compressionZstd is the record-batch attribute value for zstd
// (kgo.FetchBatchMetrics.CompressionType).
const compressionZstd = 4

// batchCompression records the compression of every fetched batch.
type batchCompression struct {
	mu    sync.Mutex
	types map[uint8]int
}

func (h *batchCompression) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.types == nil {
		h.types = make(map[uint8]int)
	}
	h.types[m.CompressionType]++
}

func newProducer(t *testing.T, seeds []string, topic string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes need acks=all and are kgo's default
		kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("cannot create producer for %v: %v", seeds, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// padding follows each record's number. kgo sends a batch uncompressed
// when zstd would not make it smaller, which is true of a few short values
// (a 1-record batch of "503" is 10 bytes raw, 23 as zstd); with the padding
// even a 1-record batch shrinks, so every batch must be zstd.
var padding = strings.Repeat(" trawl", 40)

// produce writes values from..to-1 (decimal strings followed by padding,
// keyed by number so they spread over partitions) and checks that every
// record was written by an idempotent producer.
func produce(t *testing.T, ctx context.Context, cl *kgo.Client, from, to int) {
	t.Helper()
	recs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		k := []byte(strconv.Itoa(i))
		recs = append(recs, &kgo.Record{Key: k, Value: append(k[:len(k):len(k)], padding...)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("cannot produce records %d..%d: %v", from, to-1, err)
	}
	for _, r := range recs {
		if r.ProducerID < 0 {
			t.Fatalf("record %s was produced without a producer id: not idempotent", r.Value)
		}
	}
}

// consumeExactly reads the topic from the start and fails unless it holds
// exactly the values 0..n-1, each once, in increasing order within each
// partition, in zstd-compressed batches.
func consumeExactly(t *testing.T, ctx context.Context, seeds []string, topic string, n int) {
	t.Helper()
	var comp batchCompression
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithHooks(&comp),
	)
	if err != nil {
		t.Fatalf("cannot create consumer for %v: %v", seeds, err)
	}
	defer cl.Close()

	seen := make(map[int]bool, n)
	last := map[int32]int{}
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if pctx.Err() == nil {
				t.Logf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			num, ok := strings.CutSuffix(string(r.Value), padding)
			v, err := strconv.Atoi(num)
			if !ok {
				err = fmt.Errorf("no padding")
			}
			if err != nil || v < 0 || v >= n {
				t.Fatalf("unexpected record %q at %s/%d@%d", r.Value, r.Topic, r.Partition, r.Offset)
			}
			if seen[v] {
				t.Fatalf("record %d read twice (again at %s/%d@%d)", v, r.Topic, r.Partition, r.Offset)
			}
			seen[v] = true
			if prev, ok := last[r.Partition]; ok && v <= prev {
				t.Fatalf("partition %d: record %d after %d: out of order", r.Partition, v, prev)
			}
			last[r.Partition] = v
			if r.ProducerID < 0 {
				t.Fatalf("record %d at %s/%d@%d has no producer id", v, r.Topic, r.Partition, r.Offset)
			}
		})
	}
	if len(seen) != n {
		t.Fatalf("read %d distinct records of %d within 60s", len(seen), n)
	}
	// Nothing beyond the n records may follow.
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if extra := cl.PollFetches(pctx).NumRecords(); extra != 0 {
		t.Fatalf("read %d records beyond the %d produced", extra, n)
	}
	comp.mu.Lock()
	defer comp.mu.Unlock()
	for typ, batches := range comp.types {
		if typ != compressionZstd {
			t.Fatalf("%d batches with compression type %d, want only zstd (%d): %v", batches, typ, compressionZstd, comp.types)
		}
	}
	if comp.types[compressionZstd] == 0 {
		t.Fatal("no batch was read")
	}
}

func TestSingleNodeProduceConsume(t *testing.T) {
	start := time.Now()
	c := Start(t, 1)
	t.Logf("1-node startup (fetch check + format + start): %v", time.Since(start).Round(time.Millisecond))
	if got := len(c.Seeds()); got != 1 {
		t.Fatalf("Seeds() = %v, want one address", c.Seeds())
	}
	// PID is the broker's java process.
	pid, err := c.PID(1)
	if err != nil {
		t.Fatal(err)
	}
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !bytes.Contains(cmd, []byte("kafka.Kafka")) {
		t.Fatalf("pid %d of node 1 runs %q (%v), not the broker", pid, cmd, err)
	}
	if _, err := c.PID(2); err == nil {
		t.Fatal("a 1-node cluster has a pid for node 2")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const topic, n = "kafkatest.single", 1000
	// The topic is created by producing to it (auto.create.topics.enable).
	prod := newProducer(t, c.Seeds(), topic)
	produce(t, ctx, prod, 0, n)
	consumeExactly(t, ctx, c.Seeds(), topic, n)

	adm := kadm.NewClient(prod)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatalf("cannot describe %s: %v", topic, err)
	}
	if got := len(td[topic].Partitions); got != 3 {
		t.Fatalf("auto-created %s has %d partitions, want num.partitions=3", topic, got)
	}
}

func TestThreeNodesSurviveAKilledNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Kafka cluster; skipped with -short")
	}
	start := time.Now()
	c := Start(t, 3)
	t.Logf("3-node startup (fetch check + format + start): %v", time.Since(start).Round(time.Millisecond))
	if got := len(c.Seeds()); got != 3 {
		t.Fatalf("Seeds() = %v, want three addresses", c.Seeds())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const topic, n = "kafkatest.replicated", 1000
	prod := newProducer(t, c.Seeds(), topic)
	adm := kadm.NewClient(prod)
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil {
		t.Fatalf("cannot create %s with replication factor 3: %v", topic, err)
	}
	waitISR(t, ctx, adm, topic, 3)

	produce(t, ctx, prod, 0, n/2)
	c.KillNode(2)
	// acks=all with a dead replica: the leaders wait for node 2 until the
	// controller fences it and drops it from the ISRs, then go on.
	killed := time.Now()
	produce(t, ctx, prod, n/2, n)
	t.Logf("produced %d records with acks=all %v after killing node 2", n/2, time.Since(killed).Round(time.Millisecond))
	waitISR(t, ctx, adm, topic, 2)
	consumeExactly(t, ctx, []string{c.Seeds()[0], c.Seeds()[2]}, topic, n)

	// The node comes back on its data and catches up.
	restart := time.Now()
	c.StartNode(2)
	t.Logf("node 2 restarted in %v", time.Since(restart).Round(time.Millisecond))
	waitISR(t, ctx, adm, topic, 3)
}

// waitISR waits until every partition of topic has exactly want in-sync
// replicas and a leader.
func waitISR(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var state string
	for time.Now().Before(deadline) {
		td, err := adm.ListTopics(ctx, topic)
		if err == nil && td[topic].Err == nil && len(td[topic].Partitions) > 0 {
			ok := true
			state = ""
			for _, p := range td[topic].Partitions.Sorted() {
				state += fmt.Sprintf(" p%d leader=%d isr=%v", p.Partition, p.Leader, p.ISR)
				if len(p.ISR) != want || p.Leader < 0 {
					ok = false
				}
			}
			if ok {
				return
			}
		} else if err != nil {
			state = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: partitions did not reach %d in-sync replicas within 60s:%s", topic, want, state)
}
