package consumer_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trawlsec/trawl/consumer"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/frame"
	"github.com/trawlsec/trawl/sinks/disk"
	"github.com/trawlsec/trawl/sinks/kafka"
	"github.com/trawlsec/trawl/sinks/kafka/kafkatest"
)

// runSink produces everything in sp that the sink's cursor has not passed
// and returns once the brokers acknowledged it.
func runSink(t *testing.T, opts kafka.Options) {
	t.Helper()
	set := metrics.NewSet()
	d, r := set.NewCounter("delivered"), set.NewCounter("rejected")
	opts.Registry = set
	s, err := kafka.New(opts, d, r, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	s.StopAtEnd()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the Kafka sink did not finish")
	}
	if r.Get() != 0 {
		t.Fatalf("the brokers rejected %d records", r.Get())
	}
}

func kafkaSource(t *testing.T, seeds []string, group string, topics ...string) *consumer.KafkaSource {
	t.Helper()
	s, err := consumer.NewKafkaSource(consumer.KafkaOptions{Brokers: seeds, Topics: topics, Group: group, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// spoolMessage is what a spool source delivers for one app event: the
// reference a Kafka message with ECS JSON must equal.
type spoolMessage struct{ json, key string }

// groupRun is the consumption of one consumer group by several members,
// until together they saw want distinct ids.
type groupRun struct {
	name string
	want int

	mu      sync.Mutex
	seen    map[int]int   // id -> times seen, all members
	members []map[int]int // id -> times seen, per member
	cancel  context.CancelFunc
}

// consume runs one member until the group saw every id or ctx ends; it
// commits after every batch and checks every message against ref.
func (g *groupRun) consume(t *testing.T, ctx context.Context, src *consumer.KafkaSource, idx int, topic string, ref map[int]spoolMessage) {
	lastByKey := map[string]int{}
	partOfKey := map[string]int32{}
	for {
		msgs, err := src.Poll(ctx, 0)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("group %s member %d: %v", g.name, idx, err)
			}
			return
		}
		g.mu.Lock()
		for _, m := range msgs {
			id, err := appIDErr(m.JSON)
			if err != nil {
				t.Error(err)
				continue
			}
			r, ok := ref[id]
			if !ok || string(m.JSON) != r.json || string(m.Key) != r.key || m.Topic != topic || m.Kind != event.KindApp {
				t.Errorf("group %s member %d: message %s/%d@%d key %q kind %v:\n%s\nwant key %q\n%s", g.name, idx, m.Topic, m.Partition, m.Offset, m.Key, m.Kind, m.JSON, r.key, r.json)
			}
			// One key, one partition, in order.
			if p, ok := partOfKey[r.key]; ok && p != m.Partition {
				t.Errorf("key %s on partitions %d and %d", r.key, p, m.Partition)
			}
			partOfKey[r.key] = m.Partition
			if last, ok := lastByKey[r.key]; ok && id <= last {
				t.Errorf("group %s member %d: key %s: id %d after %d", g.name, idx, r.key, id, last)
			}
			lastByKey[r.key] = id
			g.seen[id]++
			g.members[idx][id]++
		}
		done := len(g.seen) >= g.want
		g.mu.Unlock()
		if err := src.Commit(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("group %s member %d: %v", g.name, idx, err)
		}
		if done {
			g.cancel()
		}
	}
}

// startGroups starts every member of every group on topic, each until its
// group saw want ids or a minute passed. wait waits for them and fails the
// test unless every group saw everything; stop ends them early.
func startGroups(t *testing.T, topic string, ref map[int]spoolMessage, groups []*groupRun, srcs [][]*consumer.KafkaSource) (wait func(), stop func()) {
	t.Helper()
	var wg sync.WaitGroup
	var cancels []context.CancelFunc
	for gi, g := range groups {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		g.cancel = cancel
		cancels = append(cancels, cancel)
		g.seen = map[int]int{}
		for i, src := range srcs[gi] {
			g.members = append(g.members, map[int]int{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.consume(t, ctx, src, i, topic, ref)
			}()
		}
	}
	stop = func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}
	wait = func() {
		t.Helper()
		wg.Wait()
		for _, g := range groups {
			if len(g.seen) != g.want {
				t.Fatalf("group %s saw %d distinct ids, want %d", g.name, len(g.seen), g.want)
			}
		}
	}
	return wait, stop
}

// TestKafkaSource runs the Kafka source against a real broker, with
// records the real Kafka sink produced from a spool:
//
//   - round-robin: two members of one group share a 4-partition topic:
//     together they see every id, each a share, and no id twice;
//   - commits: a later member of the group resumes after the commits, and
//     what was polled but not committed is delivered again;
//   - fan-out: two groups of two members each see every id;
//   - conversion: trawl-binary and goflow2-flowmessage records come out as
//     the JSON event.AppendJSON makes of the original events.
//
// Every ECS JSON message equals, with its key, what a spool source reads
// for the same event.
func TestKafkaSource(t *testing.T) {
	cluster := kafkatest.StartConfig(t, kafkatest.Config{Partitions: 4})
	seeds := cluster.Seeds()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	admin := kadm.NewClient(adm)

	const n = 20_000
	const topic = "rr.app"
	sp := openSpool(t, t.TempDir())
	fillSpool(t, sp, 0, n/500, 500, consumer.SampleApp)
	// The reference: what the spool source delivers for each id.
	ref := map[int]spoolMessage{}
	refSrc := spoolSource(t, sp, "reference")
	lines, keys := drain(t, refSrc, 0, n)
	for i, l := range lines {
		ref[appID(t, []byte(l))] = spoolMessage{l, keys[i]}
	}
	if len(ref) != n {
		t.Fatalf("the spool holds %d distinct ids", len(ref))
	}
	addRef := func(from, to int) {
		for i := from; i < to; i++ {
			ev := consumer.SampleApp(i)
			ev.Seq = uint64(i)
			ev.Input, ev.Observer = []byte("app"), []byte("trawl-1")
			ref[i] = spoolMessage{string(event.AppendJSON(nil, &ev)), ev.Source.Addr().String()}
		}
	}
	sinkOpts := kafka.Options{Name: "json", Seeds: seeds, Spool: sp, Topics: map[event.Kind]string{event.KindApp: topic}}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}

	t.Run("round-robin", func(t *testing.T) {
		a1, a2 := kafkaSource(t, seeds, "rr", topic), kafkaSource(t, seeds, "rr", topic)
		g := &groupRun{name: "rr", want: n}
		wait, stop := startGroups(t, topic, ref, []*groupRun{g}, [][]*consumer.KafkaSource{{a1, a2}})
		defer stop()
		// Produce once both members own partitions, so that neither can
		// read everything before the other joins.
		waitAssigned(t, admin, "rr", 2, 4)
		before := a1.Stats().Revoked + a2.Stats().Revoked + a1.Stats().Lost + a2.Stats().Lost
		runSink(t, sinkOpts)
		wait()
		s1, s2 := a1.Stats(), a2.Stats()
		overlap := 0
		for id := range g.members[0] {
			if g.members[1][id] > 0 {
				overlap++
			}
		}
		dups := 0
		for _, c := range g.seen {
			dups += c - 1
		}
		t.Logf("round-robin over 4 partitions: member 1 read %d, member 2 read %d, %d ids read by both, %d duplicates; stats %+v %+v",
			len(g.members[0]), len(g.members[1]), overlap, dups, s1, s2)
		if len(g.members[0]) == 0 || len(g.members[1]) == 0 {
			t.Fatalf("a member read nothing: %d and %d ids", len(g.members[0]), len(g.members[1]))
		}
		if rebalances := s1.Revoked + s2.Revoked + s1.Lost + s2.Lost - before; dups > 0 && rebalances == 0 {
			t.Fatalf("%d duplicates without a rebalance during consumption", dups)
		} else if dups > 0 {
			t.Logf("%d duplicates after %d partitions were revoked or lost mid-way", dups, rebalances)
		}
	})

	t.Run("commits", func(t *testing.T) {
		// The group committed everything: a new member reads only what
		// comes after. Polled but not committed comes again.
		fillSpool(t, sp, n, 1, 100, consumer.SampleApp)
		addRef(n, n+100)
		runSink(t, sinkOpts)
		read := func(src *consumer.KafkaSource, want int, commit bool) map[int]int {
			ids := map[int]int{}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for len(ids) < want {
				msgs, err := src.Poll(ctx, 0)
				if err != nil {
					t.Fatalf("after %d ids: %v", len(ids), err)
				}
				for _, m := range msgs {
					ids[appID(t, m.JSON)]++
				}
			}
			if commit {
				if err := src.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			}
			return ids
		}
		check := func(ids map[int]int, from, to int) {
			t.Helper()
			for id, c := range ids {
				if id < from || id >= to || c != 1 {
					t.Fatalf("read id %d %d times, want ids %d..%d once", id, c, from, to-1)
				}
			}
		}
		x := kafkaSource(t, seeds, "rr", topic)
		check(read(x, 100, false), n, n+100)
		x.Close()
		y := kafkaSource(t, seeds, "rr", topic)
		check(read(y, 100, true), n, n+100) // again: x did not commit
		y.Close()
		fillSpool(t, sp, n+100, 1, 10, consumer.SampleApp)
		addRef(n+100, n+110)
		runSink(t, sinkOpts)
		z := kafkaSource(t, seeds, "rr", topic)
		check(read(z, 10, true), n+100, n+110)
	})

	t.Run("fan-out", func(t *testing.T) {
		const total = n + 110
		groups := []*groupRun{{name: "fan-a", want: total}, {name: "fan-b", want: total}}
		srcs := [][]*consumer.KafkaSource{
			{kafkaSource(t, seeds, "fan-a", topic), kafkaSource(t, seeds, "fan-a", topic)},
			{kafkaSource(t, seeds, "fan-b", topic), kafkaSource(t, seeds, "fan-b", topic)},
		}
		wait, stop := startGroups(t, topic, ref, groups, srcs)
		defer stop()
		wait()
		for _, g := range groups {
			t.Logf("group %s: members read %d and %d ids", g.name, len(g.members[0]), len(g.members[1]))
		}
	})

	t.Run("conversion", func(t *testing.T) {
		csp := openSpool(t, t.TempDir())
		const flows, syslogs = 300, 100
		fillSpool(t, csp, 0, 3, flows/3, consumer.SampleFlow)
		fillSpool(t, csp, 0, 1, syslogs, consumer.SampleSyslog)
		others := consumer.SampleOthers()
		for _, o := range others {
			fillSpool(t, csp, 0, 1, 1, func(int) event.Event { return o })
		}
		topics := map[event.Kind]string{}
		var names []string
		for _, k := range []event.Kind{event.KindFlow, event.KindSyslog, event.KindAudit, event.KindProcess, event.KindNetwork} {
			topics[k] = "conv." + k.String()
			names = append(names, topics[k])
		}
		runSink(t, kafka.Options{Name: "pb", Seeds: seeds, Spool: csp, Topics: topics, Encoding: kafka.EncodingProtobuf})

		// Each record's JSON must be one of these, as often as listed.
		want := map[string]int{}
		add := func(ev event.Event, flowMessage bool) {
			ev = consumer.WithoutFrameFields(ev, flowMessage)
			want[string(event.AppendJSON(nil, &ev))]++
		}
		for i := range flows {
			add(consumer.SampleFlow(i), true)
		}
		for i := range syslogs {
			add(consumer.SampleSyslog(i), false)
		}
		for _, o := range others {
			add(o, false)
		}
		src := kafkaSource(t, seeds, "conv", names...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		kinds := map[event.Kind]int{}
		for got := 0; got < flows+syslogs+len(others); {
			msgs, err := src.Poll(ctx, 0)
			if err != nil {
				t.Fatalf("after %d messages: %v", got, err)
			}
			for _, m := range msgs {
				if want[string(m.JSON)] == 0 {
					t.Fatalf("unexpected message on %s (kind %v, key %q):\n%s", m.Topic, m.Kind, m.Key, m.JSON)
				}
				want[string(m.JSON)]--
				kinds[m.Kind]++
				if m.Topic != topics[m.Kind] {
					t.Fatalf("kind %v on topic %s", m.Kind, m.Topic)
				}
			}
			got += len(msgs)
		}
		if kinds[event.KindFlow] != flows || kinds[event.KindSyslog] != syslogs || src.Stats().Skipped != 0 {
			t.Fatalf("kinds %v, stats %+v", kinds, src.Stats())
		}
	})
}

// waitAssigned waits until group has members members and they own
// partitions partitions, every member some.
func waitAssigned(t *testing.T, admin *kadm.Client, group string, members, partitions int) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		gs, err := admin.DescribeGroups(ctx, group)
		cancel()
		if err == nil {
			g := gs[group]
			ok := g.State == "Stable" && len(g.Members) == members
			total := 0
			for _, m := range g.Members {
				c, isConsumer := m.Assigned.AsConsumer()
				owned := 0
				if isConsumer {
					for _, tp := range c.Topics {
						owned += len(tp.Partitions)
					}
				}
				ok = ok && owned > 0
				total += owned
			}
			if ok && total == partitions {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s did not settle with %d members on %d partitions: %v", group, members, partitions, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDefaultTopicsMatchSink: the source's default topics are the ones the
// Kafka sink writes to (the sink imports this package, so each keeps its
// own copy).
func TestDefaultTopicsMatchSink(t *testing.T) {
	topics := consumer.DefaultTopics()
	if len(topics) != 6 {
		t.Fatalf("default topics %v", topics)
	}
	for i, topic := range topics {
		k := event.Kind(i + 1)
		if want := kafka.DefaultTopic(k); topic != want || consumer.DefaultTopic(k) != want {
			t.Fatalf("kind %v: consumer topic %s, sink topic %s", k, topic, want)
		}
	}
}

// framesByInput appends to sp, for each of inputs in turn, frames of per
// app events: input j holds the ids i < n with i%len(inputs) == j, so every
// event key (the sender address, i%64) belongs to one input.
func framesByInput(t *testing.T, sp *disk.Spool, inputs []string, n, per int) {
	t.Helper()
	enc, err := frame.NewEncoder(frame.EncoderOptions{Level: frame.LevelS2})
	if err != nil {
		t.Fatal(err)
	}
	var b frame.Builder
	var rec []byte
	for j, in := range inputs {
		var ids []int
		for i := j; i < n; i += len(inputs) {
			ids = append(ids, i)
		}
		for f := 0; f*per < len(ids); f++ {
			b.Reset()
			for _, id := range ids[f*per : min(len(ids), (f+1)*per)] {
				ev := consumer.SampleApp(id)
				rec = event.AppendBinary(rec[:0], &ev)
				b.Add(rec)
			}
			fr, err := enc.AppendFrame(nil, frame.Header{Kind: event.KindApp, FirstSeq: uint64(f * per), Created: time.Now().UnixNano(), Input: []byte(in), Observer: []byte("trawl-1")}, &b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sp.Append(fr); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sp.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestKafkaSourceFrames runs the Kafka source on a topic the real Kafka
// sink wrote with encoding frame (one record per frame, keyed by input):
//
//   - round-robin and fan-out: two groups of two members each see every
//     event once, each member a share, every message exactly the JSON and
//     key a spool source gives for the same event;
//   - partial frames: a member whose Poll max cuts a frame commits only the
//     frames it returned whole; the next member of the group gets the rest,
//     the cut frame again in full;
//   - malformed frame records are skipped and counted, never delivered.
func TestKafkaSourceFrames(t *testing.T) {
	cluster := kafkatest.StartConfig(t, kafkatest.Config{Partitions: 4})
	seeds := cluster.Seeds()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	admin := kadm.NewClient(adm)
	const topic, parts = "fr.app", 4
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	// One input per partition, so that every member of a group of two
	// owns data: names whose keys Kafka's default partitioner spreads.
	part := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	inputs := make([]string, parts)
	for i, found := 0, 0; found < parts; i++ {
		name := "app-" + strconv.Itoa(i)
		if p := part.Partition(&kgo.Record{Key: []byte(name)}, parts); inputs[p] == "" {
			inputs[p] = name
			found++
		}
	}
	const n, per = 8000, 250
	sp := openSpool(t, t.TempDir())
	framesByInput(t, sp, inputs, n, per)
	ref := map[int]spoolMessage{}
	lines, keys := drain(t, spoolSource(t, sp, "reference"), 0, n)
	for i, l := range lines {
		ref[appID(t, []byte(l))] = spoolMessage{l, keys[i]}
	}
	if len(ref) != n {
		t.Fatalf("the spool holds %d distinct ids", len(ref))
	}

	t.Run("round-robin and fan-out", func(t *testing.T) {
		groups := []*groupRun{{name: "frr", want: n}, {name: "ffan", want: n}}
		srcs := [][]*consumer.KafkaSource{
			{kafkaSource(t, seeds, "frr", topic), kafkaSource(t, seeds, "frr", topic)},
			{kafkaSource(t, seeds, "ffan", topic), kafkaSource(t, seeds, "ffan", topic)},
		}
		wait, stop := startGroups(t, topic, ref, groups, srcs)
		defer stop()
		waitAssigned(t, admin, "frr", 2, parts)
		waitAssigned(t, admin, "ffan", 2, parts)
		runSink(t, kafka.Options{Name: "frames", Seeds: seeds, Spool: sp, Encoding: kafka.EncodingFrame, Topics: map[event.Kind]string{event.KindApp: topic}})
		wait()
		for gi, g := range groups {
			t.Logf("group %s: members read %d and %d events", g.name, len(g.members[0]), len(g.members[1]))
			if len(g.members[0]) == 0 || len(g.members[1]) == 0 {
				t.Fatalf("group %s: a member read nothing", g.name)
			}
			for _, src := range srcs[gi] {
				if st := src.Stats(); st.Skipped != 0 {
					t.Fatalf("group %s: stats %+v", g.name, st)
				}
			}
		}
	})

	t.Run("partial frames", func(t *testing.T) {
		x := kafkaSource(t, seeds, "partial", topic)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		type recKey struct {
			p   int32
			off int64
		}
		perRecord := map[recKey][]int{}
		for range 3 {
			msgs, err := x.Poll(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 100 {
				t.Fatalf("Poll(100) returned %d messages", len(msgs))
			}
			for _, m := range msgs {
				perRecord[recKey{m.Partition, m.Offset}] = append(perRecord[recKey{m.Partition, m.Offset}], appID(t, m.JSON))
			}
		}
		if err := x.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		x.Close()
		whole := map[int]bool{}
		cut := 0
		for _, ids := range perRecord {
			if len(ids) == per {
				for _, id := range ids {
					whole[id] = true
				}
			} else {
				cut++
			}
		}
		// 300 messages of frames of 250: at least one frame whole, one cut.
		if len(whole) == 0 || cut == 0 {
			t.Fatalf("x read %d frames whole and cut %d", len(whole)/per, cut)
		}
		y := kafkaSource(t, seeds, "partial", topic)
		seen := map[int]int{}
		for len(seen) < n-len(whole) {
			msgs, err := y.Poll(ctx, 0)
			if err != nil {
				t.Fatalf("after %d ids: %v", len(seen), err)
			}
			for _, m := range msgs {
				id := appID(t, m.JSON)
				if whole[id] {
					t.Fatalf("id %d came again although x committed its whole frame", id)
				}
				if seen[id]++; seen[id] > 1 {
					t.Fatalf("id %d twice", id)
				}
			}
			if err := y.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("x returned %d frames whole and cut %d; y read the other %d events", len(whole)/per, cut, len(seen))
		y.Close()
		pollNothing(t, kafkaSource(t, seeds, "partial", topic))
	})

	t.Run("malformed", func(t *testing.T) {
		const bad = "fr.bad"
		frames := encodeFrames(t, 0, 1, 10, consumer.SampleApp)
		hdr := func(ver string) []kgo.RecordHeader {
			return []kgo.RecordHeader{{Key: consumer.HeaderEncoding, Value: []byte(consumer.EncodingTrawlFrame)}, {Key: consumer.HeaderEncodingVersion, Value: []byte(ver)}}
		}
		flipped := append([]byte(nil), frames[0]...)
		flipped[len(flipped)-1] ^= 1
		recs := []*kgo.Record{
			{Topic: bad, Value: []byte("not a frame"), Headers: hdr("1")},
			{Topic: bad, Value: flipped, Headers: hdr("1")},
			{Topic: bad, Value: frames[0], Headers: hdr("7")},
			{Topic: bad, Value: frames[0], Headers: hdr("1")},
		}
		prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		src := kafkaSource(t, seeds, "bad", bad)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		msgs, err := src.Poll(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 10 || src.Stats().Skipped != 3 {
			t.Fatalf("%d messages, stats %+v; want the 10 events of the good frame, 3 skipped", len(msgs), src.Stats())
		}
		for i, m := range msgs {
			if appID(t, m.JSON) != i || m.Offset != 3 {
				t.Fatalf("message %d: offset %d %s", i, m.Offset, m.JSON)
			}
		}
	})
}
