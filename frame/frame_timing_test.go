package frame

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/trawlsec/trawl/event"
)

// benchFrameEvents is the batch size of the benchmarks: a busy input fills
// a frame by count well before the latency limit.
const benchFrameEvents = 4096

// benchPoolEvents distinct events are cycled through, so that a frame never
// holds the same event twice and compression gains nothing from repetition
// that real traffic would not have.
const benchPoolEvents = 4 * benchFrameEvents

// skewed picks an index in [0, n) with a heavy head, as traffic concentrates
// on a few popular hosts while the long tail still shows up.
func skewed(rng *rand.Rand, n int) int {
	u := rng.Float64()
	return int(float64(n) * u * u * u)
}

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

// flowEvents returns n flow records as a border router would export them:
// four exporters, a few thousand internal and external hosts, common
// service ports against ephemeral ones, log-distributed volumes, per
// exporter sequence numbers and millisecond flow times.
func flowEvents(rng *rand.Rand, n int) []event.Event {
	internal := make([]netip.Addr, 3000)
	for i := range internal {
		internal[i] = netip.AddrFrom4([4]byte{10, byte(1 + rng.IntN(20)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
	}
	external := make([]netip.Addr, 1500)
	for i := range external {
		external[i] = netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
	}
	type service struct {
		port  uint16
		proto uint8
		share int
	}
	services := []service{{443, 6, 45}, {80, 6, 10}, {53, 17, 20}, {123, 17, 3}, {22, 6, 3}, {25, 6, 2}, {993, 6, 2}, {3389, 6, 1}, {8080, 6, 3}, {5432, 6, 2}, {0, 1, 3}, {0, 6, 6}}
	var weighted []service
	for _, s := range services {
		for range s.share {
			weighted = append(weighted, s)
		}
	}
	type exporter struct {
		addr, nextHop  netip.Addr
		port           uint16
		typ            event.FlowType
		sampling       uint64
		observation    uint32
		seq            uint32
		inIfs, outIfs  []uint32
		vlan           uint16
		internalPrefix uint8
	}
	exporters := []*exporter{
		{addr: netip.MustParseAddr("192.0.2.1"), nextHop: netip.MustParseAddr("192.0.2.254"), port: 50123, typ: event.FlowIPFIX, sampling: 1, observation: 256, seq: 1_000_000, inIfs: []uint32{1, 2}, outIfs: []uint32{3, 7}, vlan: 100},
		{addr: netip.MustParseAddr("192.0.2.2"), nextHop: netip.MustParseAddr("192.0.2.253"), port: 50124, typ: event.FlowIPFIX, sampling: 1, observation: 257, seq: 52_000, inIfs: []uint32{1, 2}, outIfs: []uint32{3, 7}, vlan: 200},
		{addr: netip.MustParseAddr("198.51.100.1"), nextHop: netip.MustParseAddr("198.51.100.254"), port: 2055, typ: event.FlowNetFlow9, sampling: 1000, observation: 0, seq: 7_400_000, inIfs: []uint32{12, 13, 14}, outIfs: []uint32{1}},
		{addr: netip.MustParseAddr("198.51.100.2"), nextHop: netip.MustParseAddr("198.51.100.254"), port: 2055, typ: event.FlowNetFlow9, sampling: 1000, observation: 1, seq: 33, inIfs: []uint32{12, 13}, outIfs: []uint32{2}},
	}
	extAS := []uint32{15169, 13335, 16509, 8075, 32934, 20940, 3356, 174, 2914, 6939}
	flags := []uint8{0x1b, 0x1b, 0x1b, 0x02, 0x12, 0x10, 0x18, 0x19, 0x14, 0x1f}

	recv := int64(1732579200_000000000)
	evs := make([]event.Event, n)
	for i := range evs {
		ex := exporters[skewed(rng, len(exporters))]
		ex.seq++
		recv += int64(rng.IntN(20_000)) // ~100k flows/s across the exporters
		end := (recv - int64(rng.IntN(60_000))*1e6) / 1e6 * 1e6
		start := end - int64(skewed(rng, 120_000))*1e6
		svc := pick(rng, weighted)
		in, out := internal[skewed(rng, len(internal))], external[skewed(rng, len(external))]
		eph := uint16(32768 + rng.IntN(28232))
		src, dst, sport, dport := in, out, eph, svc.port
		inIf, outIf := pick(rng, ex.outIfs), pick(rng, ex.inIfs)
		srcAS, dstAS := uint32(64512), pick(rng, extAS)
		srcMask, dstMask := uint8(24), uint8(pick(rng, []int{16, 19, 20, 22, 24}))
		if svc.port == 0 && svc.proto == 6 {
			dport = uint16(1024 + rng.IntN(64000)) // some other TCP service
		}
		if rng.IntN(2) == 0 { // the reply direction
			src, dst, sport, dport = dst, src, dport, sport
			inIf, outIf = outIf, inIf
			srcAS, dstAS = dstAS, srcAS
			srcMask, dstMask = dstMask, srcMask
		}
		pkts := uint64(1 + skewed(rng, 20_000))
		size := uint64(40 + rng.IntN(1460))
		if svc.proto == 17 {
			size = uint64(60 + rng.IntN(200))
		}
		var tcpFlags uint8
		switch svc.proto {
		case 1:
			sport, dport = 0, uint16(pick(rng, []int{0x0800, 0x0000, 0x0303, 0x0b00}))
		case 6:
			tcpFlags = pick(rng, flags)
		}
		var tos uint8
		if rng.IntN(10) == 0 {
			tos = pick(rng, []uint8{0x10, 0x28, 0xb8})
		}
		evs[i] = event.Event{
			Kind:     event.KindFlow,
			RecvTime: recv,
			Time:     end,
			Source:   netip.AddrPortFrom(ex.addr, ex.port),
			Flow: event.Flow{
				Type:           ex.typ,
				SamplingRate:   ex.sampling,
				SequenceNum:    ex.seq,
				ObservationID:  ex.observation,
				TimeStartNs:    start,
				TimeEndNs:      end,
				Bytes:          pkts * size,
				Packets:        pkts,
				SrcAddr:        src,
				DstAddr:        dst,
				NextHop:        ex.nextHop,
				SamplerAddress: ex.addr,
				SrcPort:        sport,
				DstPort:        dport,
				Proto:          svc.proto,
				TCPFlags:       tcpFlags,
				IPTos:          tos,
				Etype:          0x0800,
				InIf:           inIf,
				OutIf:          outIf,
				SrcAS:          srcAS,
				DstAS:          dstAS,
				SrcMask:        srcMask,
				DstMask:        dstMask,
				VlanID:         ex.vlan,
			},
		}
	}
	return evs
}

// syslogEvents returns n parsed syslog messages from a few hundred hosts:
// sshd, kernel (firewall and driver lines), cron and nginx access logs, in
// RFC 5424 and RFC 3164 form, with varying pids, addresses, users and URLs.
func syslogEvents(rng *rand.Rand, n int) []event.Event {
	type host struct {
		name []byte
		addr netip.Addr
	}
	hosts := make([]host, 300)
	roles := []string{"web", "app", "db", "cache", "lb", "bastion", "worker"}
	for i := range hosts {
		role := roles[i%len(roles)]
		hosts[i] = host{
			name: fmt.Appendf(nil, "%s-%03d.prod.example.com", role, i/len(roles)+1),
			addr: netip.AddrFrom4([4]byte{10, 20, byte(i / 250), byte(1 + i%250)}),
		}
	}
	users := []string{"root", "deploy", "ansible", "alice", "bob", "backup", "nagios", "git"}
	invalid := []string{"admin", "test", "oracle", "ubuntu", "user", "support", "pi", "guest"}
	paths := []string{"/", "/index.html", "/api/v1/items", "/api/v1/orders", "/api/v2/users/me", "/static/app.js", "/static/style.css", "/healthz", "/login", "/favicon.ico"}
	agents := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
		"curl/8.5.0", "kube-probe/1.28", "Go-http-client/1.1", "python-requests/2.31.0",
	}
	statuses := []int{200, 200, 200, 200, 200, 304, 301, 404, 401, 500, 502}
	cronCmds := []string{"/usr/lib/sysstat/debian-sa1 1 1", "command -v debian-sa1 > /dev/null && debian-sa1 1 1", "/usr/local/bin/backup.sh --incremental", "test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )"}
	ip := func() string {
		return fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
	}
	ipInternal := func() string { return fmt.Sprintf("10.%d.%d.%d", rng.IntN(20), rng.IntN(256), 1+rng.IntN(254)) }

	recv := int64(1732579200_000000000)
	evs := make([]event.Event, n)
	for i := range evs {
		h := hosts[skewed(rng, len(hosts))]
		recv += int64(rng.IntN(40_000))
		ev := event.Event{Kind: event.KindSyslog, RecvTime: recv, Source: netip.AddrPortFrom(h.addr, uint16(32768+rng.IntN(28000)))}
		s := &ev.Syslog
		s.Hostname = h.name
		pid := 1000 + rng.IntN(4_000_000)
		switch r := rng.IntN(100); {
		case r < 35:
			s.AppName, s.Facility, s.Severity = []byte("sshd"), 4, 6
			switch rng.IntN(5) {
			case 0:
				s.Message = fmt.Appendf(nil, "Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:%x", pick(rng, users), ipInternal(), 32768+rng.IntN(28000), rng.Uint64())
			case 1:
				s.Message = fmt.Appendf(nil, "Failed password for invalid user %s from %s port %d ssh2", pick(rng, invalid), ip(), 1024+rng.IntN(64000))
				s.Severity = 5
			case 2:
				s.Message = fmt.Appendf(nil, "Connection closed by authenticating user %s %s port %d [preauth]", pick(rng, users), ip(), 1024+rng.IntN(64000))
			case 3:
				s.Facility = 10
				s.Message = fmt.Appendf(nil, "pam_unix(sshd:session): session opened for user %s(uid=%d) by (uid=0)", pick(rng, users), 1000+rng.IntN(10))
			default:
				s.Message = fmt.Appendf(nil, "Disconnected from user %s %s port %d", pick(rng, users), ipInternal(), 32768+rng.IntN(28000))
			}
		case r < 55:
			s.AppName, s.Facility, s.Severity = []byte("kernel"), 0, 4
			pid = 0
			if rng.IntN(4) != 0 {
				s.Message = fmt.Appendf(nil, "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:%02x:%02x:%02x:52:54:00:12:35:02:08:00 SRC=%s DST=%s LEN=%d TOS=0x00 PREC=0x00 TTL=%d ID=%d DF PROTO=TCP SPT=%d DPT=%d WINDOW=%d RES=0x00 SYN URGP=0",
					rng.IntN(256), rng.IntN(256), rng.IntN(256), ip(), h.addr, 40+rng.IntN(40), 32+rng.IntN(100), rng.IntN(65536), 1024+rng.IntN(64000), pick(rng, []int{22, 23, 445, 3389, 5900, 8080, 6379}), pick(rng, []int{1024, 29200, 64240, 65535}))
			} else {
				s.Severity = 6
				s.Message = fmt.Appendf(nil, "[%d.%06d] EXT4-fs (nvme0n1p%d): mounted filesystem %08x-%04x ro with ordered data mode. Quota mode: none.", rng.IntN(900000), rng.IntN(1000000), 1+rng.IntN(3), rng.Uint32(), rng.IntN(65536))
			}
		case r < 65:
			s.AppName, s.Facility, s.Severity = []byte("CRON"), 9, 6
			if rng.IntN(2) == 0 {
				s.Message = fmt.Appendf(nil, "(%s) CMD (%s)", pick(rng, users[:3]), pick(rng, cronCmds))
			} else {
				s.Facility = 10
				s.Message = fmt.Appendf(nil, "pam_unix(cron:session): session closed for user %s", pick(rng, users[:3]))
			}
		default:
			s.AppName, s.Facility, s.Severity = []byte("nginx"), 23, 6
			t := time.Unix(0, recv).UTC()
			s.Message = fmt.Appendf(nil, `%s - - [%s] "%s %s?id=%d HTTP/1.1" %d %d "-" "%s" rt=%.3f`,
				ip(), t.Format("02/Jan/2006:15:04:05 -0700"), pick(rng, []string{"GET", "GET", "GET", "POST", "PUT"}), pick(rng, paths), rng.IntN(100000),
				pick(rng, statuses), 100+skewed(rng, 200000), pick(rng, agents), rng.Float64()*0.5)
		}
		if pid != 0 {
			s.ProcID = fmt.Appendf(nil, "%d", pid)
		}
		if rng.IntN(5) < 2 { // RFC 5424, millisecond timestamps
			s.Version = 1
			ev.Time = (recv - int64(rng.IntN(5_000_000))) / 1e6 * 1e6
			if rng.IntN(4) == 0 {
				s.StructuredData = fmt.Appendf(nil, `[meta sequenceId="%d"][origin ip="%s"]`, i, h.addr)
			}
		} else { // RFC 3164, second timestamps
			ev.Time = (recv - int64(rng.IntN(2_000_000_000))) / 1e9 * 1e9
		}
		evs[i] = ev
	}
	return evs
}

type benchCase struct {
	name  string
	kind  event.Kind
	input string
	gen   func(*rand.Rand, int) []event.Event
}

var benchCases = []benchCase{
	{"flow", event.KindFlow, "netflow", flowEvents},
	{"syslog", event.KindSyslog, "syslog-udp", syslogEvents},
}

// fillBuilder encodes the next benchFrameEvents events of evs (from *k,
// wrapping) into b through the scratch record buffer, as a framer does.
func fillBuilder(b *Builder, evs []event.Event, k *int, rec []byte) []byte {
	b.Reset()
	for range benchFrameEvents {
		rec = event.AppendBinary(rec[:0], &evs[*k])
		b.Add(rec)
		if *k++; *k == len(evs) {
			*k = 0
		}
	}
	return rec
}

// benchEncode seals frames of the case's events at level. With
// preEncoded the events are encoded once up front, as the framer receives
// them from the ring; otherwise encoding each event is part of the cost.
func benchEncode(b *testing.B, c benchCase, level Level, preEncoded bool) {
	evs := c.gen(rand.New(rand.NewPCG(1, uint64(c.kind))), benchPoolEvents)
	var recs [][]byte
	if preEncoded {
		recs = make([][]byte, len(evs))
		for i := range evs {
			recs[i] = event.AppendBinary(nil, &evs[i])
		}
	}
	enc, err := NewEncoder(EncoderOptions{Level: level})
	if err != nil {
		b.Fatal(err)
	}
	h := Header{Kind: c.kind, Input: []byte(c.input), Observer: []byte("trawl-node-01.example.com")}
	var (
		bl         Builder
		rec, out   []byte
		k          int
		raw, store int64
		frames     int64
	)
	fill := func() {
		if !preEncoded {
			rec = fillBuilder(&bl, evs, &k, rec)
			return
		}
		bl.Reset()
		for range benchFrameEvents {
			bl.Add(recs[k])
			if k++; k == len(recs) {
				k = 0
			}
		}
	}
	// Warm up the buffers over every batch of the pool so that the loop
	// measures the steady state.
	for range benchPoolEvents / benchFrameEvents {
		fill()
		if out, err = enc.AppendFrame(out[:0], h, &bl); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu0, cpuOK := processCPUTime()
	for b.Loop() {
		fill()
		h.FirstSeq += benchFrameEvents
		h.Created = time.Now().UnixNano()
		if out, err = enc.AppendFrame(out[:0], h, &bl); err != nil {
			b.Fatal(err)
		}
		raw += int64(bl.Bytes())
		store += int64(len(out))
		frames++
	}
	cpu1, _ := processCPUTime()
	events := float64(frames * benchFrameEvents)
	b.SetBytes(raw / frames)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	if cpu := (cpu1 - cpu0).Seconds(); cpuOK && cpu > 0 {
		b.ReportMetric(events/cpu, "events/cpu-s")
	}
	b.ReportMetric(float64(raw)/float64(store), "ratio")
	b.ReportMetric(float64(raw)/events, "rawB/event")
}

// encodeCodecs are the levels BenchmarkEncode compares, one per codec, by
// codec name.
var encodeCodecs = []struct {
	name  string
	level Level
}{
	{"zstd", LevelFastest},
	{"s2", LevelS2},
}

// BenchmarkEncode measures what a framer spends per frame of 4096 events:
// event.AppendBinary of each event into the Builder, then AppendFrame, with
// each codec at the level a collector would pick for it (zstd fastest, s2),
// so that one run shows the speed against ratio trade-off. MB/s counts the
// raw payload (encoded events); ratio is raw bytes over whole-frame bytes;
// events/cpu-s divides by the CPU time the process used rather than by
// wall time, so it is the rate of one core even when other processes share
// the machine (it also counts the runtime's own threads, such as GC).
func BenchmarkEncode(b *testing.B) {
	for _, c := range benchCases {
		for _, codec := range encodeCodecs {
			b.Run(c.name+"/"+codec.name, func(b *testing.B) { benchEncode(b, c, codec.level, false) })
		}
	}
}

// BenchmarkEncodeLevel shows what the other levels (no compression, the
// slower zstd levels, s2-better) cost and gain on the same batches, for
// choosing a configuration.
func BenchmarkEncodeLevel(b *testing.B) {
	for _, c := range benchCases {
		for _, level := range []Level{LevelNone, LevelDefault, LevelBetter, LevelS2Better} {
			b.Run(c.name+"/"+level.String(), func(b *testing.B) { benchEncode(b, c, level, false) })
		}
	}
}

// BenchmarkDecode measures a reader per frame: Parse (with the CRC check),
// Decoder.Records and iterating the records with Next. Decoding the events
// themselves is package event's cost and is not included.
func BenchmarkDecode(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			evs := c.gen(rand.New(rand.NewPCG(1, uint64(c.kind))), benchPoolEvents)
			enc, err := NewEncoder(EncoderOptions{})
			if err != nil {
				b.Fatal(err)
			}
			dec, err := NewDecoder()
			if err != nil {
				b.Fatal(err)
			}
			defer dec.Close()
			var (
				bl     Builder
				rec    []byte
				k      int
				frames [][]byte
			)
			for i := range benchPoolEvents / benchFrameEvents {
				rec = fillBuilder(&bl, evs, &k, rec)
				fr, err := enc.AppendFrame(nil, Header{Kind: c.kind, FirstSeq: uint64(i * benchFrameEvents), Created: 1, Input: []byte(c.input)}, &bl)
				if err != nil {
					b.Fatal(err)
				}
				frames = append(frames, fr)
			}
			var raw []byte
			for _, fr := range frames { // warm-up: grow raw to the largest frame
				h, payload, _, err := Parse(fr)
				if err != nil {
					b.Fatal(err)
				}
				if raw, err = dec.Records(raw, h, payload); err != nil {
					b.Fatal(err)
				}
			}
			var rawTotal, n int64
			b.ReportAllocs()
			for b.Loop() {
				fr := frames[n%int64(len(frames))]
				h, payload, _, err := Parse(fr)
				if err != nil {
					b.Fatal(err)
				}
				if raw, err = dec.Records(raw, h, payload); err != nil {
					b.Fatal(err)
				}
				var count int
				for rest := raw; len(rest) > 0; count++ {
					if _, rest, err = Next(rest); err != nil {
						b.Fatal(err)
					}
				}
				if count != benchFrameEvents {
					b.Fatalf("%d records, want %d", count, benchFrameEvents)
				}
				rawTotal += int64(len(raw))
				n++
			}
			b.SetBytes(rawTotal / n)
			b.ReportMetric(float64(n*benchFrameEvents)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkFramer measures only what trawl's framer goroutine does per
// frame: events arrive already encoded (the inputs encode them into the
// ring), so it is Builder.Add of each record, then AppendFrame. Compare
// BenchmarkEncode, which also encodes the events, for the whole cost of an
// event wherever it is paid.
func BenchmarkFramer(b *testing.B) {
	for _, c := range benchCases {
		for _, codec := range encodeCodecs {
			b.Run(c.name+"/"+codec.name, func(b *testing.B) { benchEncode(b, c, codec.level, true) })
		}
	}
}

// BenchmarkCodec measures the codec alone, on the raw payload of one frame
// of each case: no event encoding, no header, no CRC. It is the floor under
// BenchmarkEncode: a frame cannot be sealed faster than its payload
// compresses, so events/cpu-s here bounds what any framer on this CPU can
// reach with that codec. lz4 is not in the list: pierrec/lz4/v4 measured at
// half of S2's speed on these payloads.
func BenchmarkCodec(b *testing.B) {
	for _, c := range benchCases {
		evs := c.gen(rand.New(rand.NewPCG(1, uint64(c.kind))), benchPoolEvents)
		var (
			bl  Builder
			rec []byte
			k   int
		)
		fillBuilder(&bl, evs, &k, rec)
		raw := bl.raw
		for _, codec := range encodeCodecs {
			b.Run(c.name+"/"+codec.name, func(b *testing.B) {
				dst := make([]byte, 0, s2.MaxEncodedLen(len(raw))+1024)
				var zenc *zstd.Encoder
				if codec.level == LevelFastest {
					var err error
					if zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(codec.level.zstd()), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false)); err != nil {
						b.Fatal(err)
					}
					defer zenc.Close()
				}
				var out []byte
				b.ReportAllocs()
				cpu0, cpuOK := processCPUTime()
				for b.Loop() {
					if zenc != nil {
						out = zenc.EncodeAll(raw, dst[:0])
					} else {
						out = s2.Encode(dst[:cap(dst)], raw)
					}
				}
				cpu1, _ := processCPUTime()
				events := float64(b.N) * benchFrameEvents
				b.SetBytes(int64(len(raw)))
				b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
				if cpu := (cpu1 - cpu0).Seconds(); cpuOK && cpu > 0 {
					b.ReportMetric(events/cpu, "events/cpu-s")
				}
				b.ReportMetric(float64(len(raw))/float64(len(out)), "ratio")
				b.ReportMetric(float64(len(raw))/benchFrameEvents, "rawB/event")
			})
		}
	}
}
