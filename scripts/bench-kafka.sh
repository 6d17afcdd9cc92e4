#!/usr/bin/env bash
# The Kafka half of the peer-against-peer benchmark (issues 5 and 8): how
# many flow events/s trawl and goflow2 v2.2.6 each deliver into the same
# real single-node Apache Kafka broker on this machine (docs/benchmarks.md).
#
#  1. trawl's Kafka sink alone: BenchmarkSinkToBroker (sinks/kafka) produces
#     a prefilled spool into a broker of its own (kafkatest), per event
#     (protobuf, JSON) and per frame (encoding frame: S2 or zstd frames,
#     uncompressed or zstd batches), with the sink's and the broker's CPU;
#  2. one broker (scripts/kafka.sh, KRaft, in a temporary KAFKA_DIR on free
#     ports, stopped on exit), then trawlbench -kafka: trawl (kafka sink,
#     protobuf, JSON and frame) and goflow2 (-transport=kafka -format=bin)
#     fed the same NetFlow v5 and v9 traffic at stepped rates, each step into
#     a fresh topic, delivered flows counted at the broker (for trawl-frame
#     by decoding the frames in the topic).
#
# About 3–4 minutes. Extra arguments go to trawlbench (see `--help`), e.g.
# --formats v5,v9,ipfix, --kafka-linger 20ms, or for the trawl-frame row
# --kafka-frames-compression fastest (zstd frames) and
# --kafka-frame-batch-compression zstd. Environment:
#   KAFKA_BENCH_JVM_OPTS  the broker's JVM flags [Kafka's own start script's:
#                         1 GiB heap, G1, C2 on]
#   KAFKA_PARTITIONS      partitions of every topic [3]
#   BENCH_KAFKA_SINK=0    skip step 1
#   KAFKA_SINK_BENCHTIME  -benchtime of step 1 [3x]
#   BENCH_STAMP           timestamp in the file names [now]
# Output: bench/results/kafka-<ts>.{json,md}, one PNG per format, and
# kafka-<ts>-sink.txt (step 1's go test output).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS

if [ ! -x build/bin/goflow2 ] || ! go version -m build/bin/goflow2 | grep -q 'goflow2/v2.*v2\.2\.6'; then
	echo "installing goflow2 v2.2.6 into build/bin" >&2
	mkdir -p build/bin
	GOBIN="$PWD/build/bin" go install github.com/netsampler/goflow2/v2/cmd/goflow2@v2.2.6
fi
make build >&2
./scripts/kafka.sh fetch
mkdir -p bench/results build
go build -o build/trawlbench ./bench/cmd/trawlbench

# kafka-server-start.sh's defaults (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS)
# rather than scripts/kafka.sh's test flags (C1 only, serial GC, 512 MiB),
# which start faster but run slower.
export KAFKA_JVM_OPTS=${KAFKA_BENCH_JVM_OPTS:--Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}
export KAFKA_PARTITIONS=${KAFKA_PARTITIONS:-3}
export KAFKA_LIBS="$PWD/build/kafka/libs"
ts=${BENCH_STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}
sinkraw=bench/results/kafka-$ts-sink.txt
sinkargs=()

if [ "${BENCH_KAFKA_SINK:-1}" != 0 ]; then
	echo "== trawl's Kafka sink alone (BenchmarkSinkToBroker)" >&2
	# The benchmark's broker inherits KAFKA_JVM_OPTS; a broker that cannot
	# start fails it instead of skipping it.
	TRAWL_REQUIRE_KAFKA=1 go test -run '^$' -bench BenchmarkSinkToBroker -benchtime "${KAFKA_SINK_BENCHTIME:-3x}" ./sinks/kafka/ | tee "$sinkraw" >&2
	sinkargs=(-sink-bench "$sinkraw")
fi

# A free client port and controller port below the ephemeral range (as
# kafkatest picks them): nothing answers a connection there now.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
while :; do
	port=$((20000 + RANDOM % 12000))
	cport=$((port + 1))
	port_free "$port" && port_free "$cport" && break
done
KAFKA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/trawl-bench-kafka.XXXXXX")
export KAFKA_DIR KAFKA_BASE_PORT=$port KAFKA_CONTROLLER_BASE_PORT=$cport
cleanup() {
	./scripts/kafka.sh down || true
	rm -rf "$KAFKA_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "== broker on 127.0.0.1:$port ($KAFKA_DIR), JVM: $KAFKA_JVM_OPTS" >&2
# The watcher kills the broker should this script die without its trap.
KAFKA_WATCH_PID=$$ ./scripts/kafka.sh up 1
pid=$(<"$KAFKA_DIR/run/node1/pid")

echo "== trawl and goflow2 into the broker" >&2
./build/trawlbench -kafka "127.0.0.1:$port" -kafka-pid "$pid" -kafka-partitions "$KAFKA_PARTITIONS" \
	-kafka-jvm "$KAFKA_JVM_OPTS" -stamp "$ts" "${sinkargs[@]}" \
	-trawl bin/trawl -goflow2 build/bin/goflow2 -out bench/results "$@"
echo "bench-kafka: $((SECONDS - t0)) s" >&2
