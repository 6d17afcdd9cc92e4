package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trawlsec/trawl/sinks/kafka/kafkatest"
)

// kafkaSink is the sinks section sending everything to brokers.
func kafkaSink(seeds []string) string {
	return fmt.Sprintf("sinks:\n  - {type: kafka, name: kafka, brokers: [%s], linger: 2ms}\n", strings.Join(seeds, ", "))
}

// idSender writes {"id":N} lines, N counting up from next, at about rate
// lines per second over one connection, reconnecting when the node goes
// away, until stop is closed. sent is the next id not yet written.
type idSender struct {
	addr func() string
	rate int
	next atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startSender(addr func() string, rate int) *idSender {
	s := &idSender{addr: addr, rate: rate, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *idSender) run() {
	defer close(s.done)
	const tick = 10 * time.Millisecond
	per := max(1, s.rate/100)
	for {
		conn, err := net.Dial("tcp", s.addr())
		if err != nil {
			select {
			case <-s.stop:
				return
			case <-time.After(50 * time.Millisecond):
				continue
			}
		}
		w := bufio.NewWriter(conn)
		t := time.NewTicker(tick)
	send:
		for {
			select {
			case <-s.stop:
				w.Flush()
				conn.Close()
				t.Stop()
				return
			case <-t.C:
			}
			for range per {
				fmt.Fprintf(w, "{\"id\":%d}\n", s.next.Add(1)-1)
			}
			if err := w.Flush(); err != nil {
				break send // the node died: those lines may be lost, which the test allows
			}
		}
		t.Stop()
		conn.Close()
	}
}

func (s *idSender) halt() int {
	close(s.stop)
	<-s.done
	return int(s.next.Load())
}

var idRe = regexp.MustCompile(`"app":\{"id":(\d+)\}`)

// kafkaIDs reads topic trawl.app from the start until it has seen every id
// of want (or a timeout) and returns how often each id arrived.
func kafkaIDs(t *testing.T, seeds []string, want map[int]bool, timeout time.Duration) map[int]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("trawl.app"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := make(map[int]int)
	missing := len(want)
	for missing > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			m := idRe.FindSubmatch(r.Value)
			if m == nil {
				t.Errorf("record without an id: %s", r.Value)
				return
			}
			id, _ := strconv.Atoi(string(m[1]))
			if got[id] == 0 && want[id] {
				missing--
			}
			got[id]++
		})
	}
	return got
}

// spoolIDs lists the ids in the node's spool: what it accepted.
func spoolIDs(t *testing.T, data string) map[int]bool {
	t.Helper()
	out, err := exec.Command(trawlBinary(t), "spool", "cat", data).Output()
	if err != nil {
		t.Fatalf("spool cat: %v", err)
	}
	ids := make(map[int]bool)
	for _, m := range idRe.FindAllSubmatch(out, -1) {
		id, _ := strconv.Atoi(string(m[1]))
		ids[id] = true
	}
	return ids
}

// checkAtLeastOnce fails the test unless every accepted id is in Kafka,
// and reports the duplicates.
func checkAtLeastOnce(t *testing.T, accepted map[int]bool, got map[int]int) {
	t.Helper()
	var missing []int
	dups := 0
	for id := range accepted {
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	for _, c := range got {
		dups += c - 1
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d accepted events are not in Kafka (e.g. %v)", len(missing), len(accepted), missing[:min(10, len(missing))])
	}
	t.Logf("all %d accepted events are in Kafka; %d duplicates", len(accepted), dups)
}

// TestKafkaBrokerDown stops the only broker for 30 s while events keep
// arriving: they wait in the spool (the lag gauges show it) and reach
// Kafka once the broker is back.
func TestKafkaBrokerDown(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a minute")
	}
	cl := kafkatest.Start(t, 1)
	n := startNode(t, kafkaSink(cl.Seeds()))
	s := startSender(func() string { return n.app }, 5000)
	time.Sleep(3 * time.Second)
	cl.KillNode(1)
	time.Sleep(25 * time.Second)
	lagEvents, _ := strconv.ParseFloat(n.metric(t, `trawl_sink_lag_events{sink="kafka"}`), 64)
	lagSeconds, _ := strconv.ParseFloat(n.metric(t, `trawl_sink_lag_seconds{sink="kafka"}`), 64)
	if lagEvents < 1000 || lagSeconds < 10 {
		t.Errorf("with the broker down 25 s: lag %v events, %v s; want both to show the backlog", lagEvents, lagSeconds)
	}
	time.Sleep(5 * time.Second)
	t0 := time.Now()
	cl.StartNode(1)
	t.Logf("broker back after %v", time.Since(t0))
	time.Sleep(3 * time.Second)
	sent := s.halt()
	t0 = time.Now()
	n.stop(t)
	t.Logf("node stopped in %v", time.Since(t0))
	accepted := spoolIDs(t, n.data)
	if len(accepted) != sent {
		t.Fatalf("the node accepted %d of %d lines sent on a healthy connection", len(accepted), sent)
	}
	// The node was stopped before Kafka got everything (StopTimeout): a
	// restart delivers the rest from the spool.
	n2 := startNodeIn(t, n.data, kafkaSink(cl.Seeds()))
	t0 = time.Now()
	got := kafkaIDs(t, cl.Seeds(), accepted, 90*time.Second)
	t.Logf("read back in %v", time.Since(t0))
	n2.stop(t)
	checkAtLeastOnce(t, accepted, got)
}

// TestKafkaNodeKilled kills trawl with SIGKILL under load and restarts it:
// everything it had accepted (found in its spool) reaches Kafka.
func TestKafkaNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about half a minute")
	}
	cl := kafkatest.Start(t, 1)
	n := startNode(t, kafkaSink(cl.Seeds()))
	var cur atomic.Pointer[node]
	cur.Store(n)
	s := startSender(func() string { return cur.Load().app }, 20000)
	time.Sleep(4 * time.Second)
	n.cmd.Process.Kill()
	<-n.done
	n2 := startNodeIn(t, n.data, kafkaSink(cl.Seeds()))
	cur.Store(n2)
	time.Sleep(3 * time.Second)
	s.halt()
	n2.stop(t)
	accepted := spoolIDs(t, n.data)
	if len(accepted) < 50000 {
		t.Fatalf("only %d events accepted; the sender did not run", len(accepted))
	}
	got := kafkaIDs(t, cl.Seeds(), accepted, 90*time.Second)
	checkAtLeastOnce(t, accepted, got)
}

// TestKafkaOneBrokerOfThreeKilled kills one broker of three under load;
// with replication factor 3 and acks=all the other two take over.
func TestKafkaOneBrokerOfThreeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a minute")
	}
	cl := kafkatest.StartConfig(t, kafkatest.Config{Nodes: 3, Props: map[string]string{
		"default.replication.factor": "3",
		"min.insync.replicas":        "2",
	}})
	n := startNode(t, kafkaSink(cl.Seeds()))
	s := startSender(func() string { return n.app }, 10000)
	time.Sleep(4 * time.Second)
	cl.KillNode(2)
	time.Sleep(6 * time.Second)
	sent := s.halt()
	// Everything reaches the two brokers left, before the node stops.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if d, _ := strconv.Atoi(n.metric(t, `trawl_sink_delivered_events_total{sink="kafka"}`)); d >= sent {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	n.stop(t)
	accepted := spoolIDs(t, n.data)
	if len(accepted) != sent {
		t.Fatalf("the node accepted %d of %d lines", len(accepted), sent)
	}
	seeds := cl.Seeds()
	live := []string{seeds[0], seeds[2]}
	got := kafkaIDs(t, live, accepted, 90*time.Second)
	checkAtLeastOnce(t, accepted, got)
}
