#!/usr/bin/env bash
# `make bench`: every benchmark of the project in one run, trawl against its
# peers measured in the same run, in about 10 minutes on a 2-core machine:
#
#  1. package benchmarks (ring vs channel, event and frame encoding, spool,
#     decoders vs goflow2, parsers vs go-syslog, end to end) and, as root,
#     the exec storm under auditd, trawl's audit input and its eBPF input;
#  2. syslog collectors side by side: trawl, rsyslog, syslog-ng over UDP,
#     TCP and RELP (scripts/bench-syslog.sh), trawl on its defaults (as root:
#     UDP GRO with its BPF drop counter), and the UDP steps again with
#     gro: false (every datagram through the socket layer on its own);
#  3. flow collectors side by side: trawl (S2 and uncompressed frames),
#     goflow2 (protobuf and JSON),
#     nfcapd/sfcapd, nfacctd/sfacctd over NetFlow v5, v9, IPFIX and sFlow
#     (scripts/bench-flows.sh);
#  4. trawl and goflow2 into one real Kafka broker (scripts/bench-kafka.sh).
#
# Every part writes bench/results/<part>-<ts>.{json,md} (and PNGs); this
# script then prints and writes bench/results/summary-<ts>.md, the tables of
# all of them. The short run steps fewer rates for 1–2 s each (flows: 2 s), once;
# BENCH_LONG=1 (make bench-long) is for bigger machines: the harnesses' --long
# rates, 10 s steps and three repetitions (min/median/max), longer package
# benchmarks. BENCHTIME overrides the package benchmarks' -benchtime.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
t0=$SECONDS
ts=$(date -u +%Y%m%dT%H%M%SZ)
export BENCH_STAMP=$ts
long=${BENCH_LONG:-0}
mkdir -p bench/results
raw=bench/results/packages-$ts.txt
if [ "$long" = 1 ]; then
	bt=${BENCHTIME:-2s}
	syslogargs=(--long -reps 3)
	flowargs=(--long -reps 3)
	kafkaargs=(--long -reps 3)
else
	bt=${BENCHTIME:-300ms}
	syslogargs=(-quiet 20s -udp-rates 100k,200k,400k,600k,800k,1M,1.2M,1.6M)
	flowargs=(-rates 200k,400k,800k,1.6M,2.4M,3.2M,4.8M -step 2s)
	kafkaargs=(-formats v5 -rates 100k,200k,400k,800k,1.2M -step 2s)
	export KAFKA_SINK_BENCHTIME=${KAFKA_SINK_BENCHTIME:-1x}
fi
part() { echo "== $1 ($((SECONDS - t0)) s)" >&2; }

part "package benchmarks"
{
	# The ring and channel rates are bimodal on a 2-core machine (where the
	# scheduler puts the consumer: BenchmarkRing's comment): five runs,
	# which benchreport reduces to medians and their spread.
	go test -run '^$' -bench 'BenchmarkRing' -benchtime "$bt" -count 5 ./ring/
	go test -run '^$' -bench 'BenchmarkEncode$|BenchmarkDecode$' -benchtime "$bt" ./event/
	go test -run '^$' -bench 'BenchmarkEncode$|BenchmarkCodec' -benchtime "$bt" ./frame/
	go test -run '^$' -bench 'BenchmarkAppend|BenchmarkGroupCommit' -benchtime "$bt" ./sinks/disk/
	go test -run '^$' -bench 'BenchmarkDecode' -benchtime "$bt" ./flow/
	go test -run '^$' -bench 'BenchmarkParse' -benchtime "$bt" ./syslog/
	go test -run '^$' -bench 'BenchmarkPipeline' -benchtime "$bt" ./audit/
	go test -run '^$' -bench 'BenchmarkEndToEnd' -benchtime 1000000x ./bench/
	# Exec storm under auditd and trawl's audit input, then under the ebpf
	# input with the storm's own cost as baseline; the eBPF path per exec
	# and per connection and the ring buffer's drain rate (root; skipped
	# otherwise; about 90 seconds).
	go test -run '^$' -bench 'BenchmarkAuditExecStorm|BenchmarkEBPFExecStorm|BenchmarkExecStormBaseline' -benchtime 1x ./collector/
	go test -run '^$' -bench 'BenchmarkExec|BenchmarkConnect' -benchtime 3000x ./bpf/
	go test -run '^$' -bench 'BenchmarkRingbufDrain' -benchtime 20000x ./bpf/
} | tee "$raw" >&2
go run ./bench/cmd/benchreport -json "bench/results/packages-$ts.json" <"$raw" >"bench/results/packages-$ts.md"

part "syslog collectors"
./scripts/bench-syslog.sh -stamp "$ts" "${syslogargs[@]}" >/dev/null
# The same UDP steps with trawl's UDP GRO off (docs/syslog-inputs.md).
./scripts/bench-syslog.sh -stamp "$ts-nogro" -protos udp -profile=false -trawl-gro false "${syslogargs[@]}" >/dev/null
part "flow collectors"
./scripts/bench-flows.sh -stamp "$ts" "${flowargs[@]}" >/dev/null
part "Kafka"
./scripts/bench-kafka.sh "${kafkaargs[@]}" >/dev/null
part "done"

sum=bench/results/summary-$ts.md
{
	echo "# make bench, $ts ($((SECONDS - t0)) s$([ "$long" = 1 ] && echo ", long"))"
	echo
	for f in syslog-$ts syslog-$ts-nogro flows-$ts kafka-$ts packages-$ts; do
		md=bench/results/$f.md
		echo "## $f"
		echo
		if [ -f "$md" ]; then cat "$md"; else echo "(no $md: that part failed, see its output above)"; fi
		echo
	done
} >"$sum"
cat "$sum"
echo >&2
echo "results: bench/results/*-$ts.*; summary: $sum ($((SECONDS - t0)) s)" >&2
