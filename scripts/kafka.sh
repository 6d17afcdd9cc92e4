#!/usr/bin/env bash
# A real Apache Kafka broker for development and tests, without Docker:
# the broker's jars come from Maven Central (mvn), the nodes run as plain
# java processes in KRaft mode (each node broker and controller at once) on
# loopback.
#
#   scripts/kafka.sh fetch          resolve the jars into $KAFKA_LIBS (once)
#   scripts/kafka.sh up [N]         format and start an N-node cluster (default 1)
#                                   and return once every broker serves
#   scripts/kafka.sh down           stop the cluster, remove its run directory
#   scripts/kafka.sh status         one line per node; exit 1 if one is down
#   scripts/kafka.sh kill-node I    SIGKILL node I (a crash, for failover tests)
#   scripts/kafka.sh stop-node I    stop node I cleanly (SIGTERM)
#   scripts/kafka.sh start-node I   start node I again on its data and wait
#   scripts/kafka.sh seeds          the client addresses, comma-separated
#
# Node I serves clients on 127.0.0.1:$((KAFKA_BASE_PORT+I-1)) and its
# controller on 127.0.0.1:$((KAFKA_CONTROLLER_BASE_PORT+I-1)).
#
# Environment (defaults in brackets):
#   KAFKA_DIR                  state directory [<repo>/build/kafka]; the
#                              cluster runs in $KAFKA_DIR/run
#   KAFKA_LIBS                 the jars [$KAFKA_DIR/libs]; tests point it at
#                              the repository's fetched jars
#   KAFKA_VERSION              Kafka release [4.4.0]
#   KAFKA_BASE_PORT            client port of node 1 [9092]
#   KAFKA_CONTROLLER_BASE_PORT controller port of node 1 [KAFKA_BASE_PORT+100]
#   KAFKA_PARTITIONS           num.partitions of auto-created topics [3]
#   KAFKA_EXTRA_CONFIG         lines appended to every node's server.properties
#   KAFKA_JVM_OPTS             JVM flags [small heap, serial GC, C1 only:
#                              a fast start on a small shared machine]
#   KAFKA_START_TIMEOUT        seconds to wait for a node [90]
#   KAFKA_STOP_TIMEOUT         seconds between SIGTERM and SIGKILL [30]
#   JAVA                       the java command [java]
#   KAFKA_WATCH_PID            when set, the cluster is killed as soon as this
#                              process exits (a test binary killed by its
#                              timeout must not leave brokers behind)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self="$repo/scripts/kafka.sh"
KAFKA_DIR=${KAFKA_DIR:-$repo/build/kafka}
KAFKA_LIBS=${KAFKA_LIBS:-$KAFKA_DIR/libs}
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_BASE_PORT=${KAFKA_BASE_PORT:-9092}
KAFKA_CONTROLLER_BASE_PORT=${KAFKA_CONTROLLER_BASE_PORT:-$((KAFKA_BASE_PORT + 100))}
KAFKA_PARTITIONS=${KAFKA_PARTITIONS:-3}
KAFKA_EXTRA_CONFIG=${KAFKA_EXTRA_CONFIG:-}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
# C1 only (TieredStopAtLevel=1) and the serial collector start a broker on
# 3.3 s of CPU instead of 5.8 s with the JVM's defaults; a test broker never
# runs long enough for C2 to pay off.
KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:--Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}
# The binding that routes Kafka's slf4j logging to log4j2 is not among the
# broker's Maven dependencies (the release tarball adds it), and without it
# the broker logs nothing at all; its version follows log4j-core's.
LOG4J_VERSION=2.25.5
JAVA=${JAVA:-java}
run="$KAFKA_DIR/run"

die() {
	echo "kafka: $*" >&2
	exit 1
}

need_java() {
	command -v "$JAVA" >/dev/null 2>&1 || die "java not found (scripts/deps.sh installs openjdk-17-jre-headless)"
}

libs_ready() {
	[[ -f $KAFKA_LIBS/.complete && $(<"$KAFKA_LIBS/.complete") == "$KAFKA_VERSION" ]]
}

cmd_fetch() {
	libs_ready && return 0
	command -v mvn >/dev/null 2>&1 || die "mvn not found (scripts/deps.sh installs maven)"
	mkdir -p "$KAFKA_DIR" "$(dirname "$KAFKA_LIBS")"
	# Test packages may fetch at the same time: one does the work, the others
	# wait for it and find the jars there.
	exec 9>"$KAFKA_DIR/.fetch.lock"
	flock 9
	libs_ready && return 0
	local pom="$KAFKA_DIR/pom.xml" tmp="$KAFKA_LIBS.tmp.$$" log="$KAFKA_DIR/fetch.log"
	cat >"$pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/kafka.sh fetch: the runtime classpath of a Kafka broker. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.trawl</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
	echo "kafka: fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its dependencies (log: $log)" >&2
	rm -rf "$tmp"
	if ! mvn -B -f "$pom" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
		grep -E '^\[(ERROR|FATAL)\]' "$log" >&2 || tail -n 40 "$log" >&2
		rm -rf "$tmp"
		die "mvn could not resolve kafka_2.13:$KAFKA_VERSION (full log: $log)"
	fi
	ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "mvn finished but $tmp has no kafka_2.13-$KAFKA_VERSION.jar"
	echo "$KAFKA_VERSION" >"$tmp/.complete"
	rm -rf "$KAFKA_LIBS"
	mv "$tmp" "$KAFKA_LIBS"
	echo "kafka: $(ls "$KAFKA_LIBS"/*.jar | wc -l) jars, $(du -sh "$KAFKA_LIBS" | cut -f1) in $KAFKA_LIBS" >&2
}

# The cluster's layout is saved at `up` so that the other commands need no
# environment beyond KAFKA_DIR.
load_state() {
	[[ -f $run/cluster.env ]] || die "no cluster in $run (run: scripts/kafka.sh up)"
	# shellcheck source=/dev/null
	source "$run/cluster.env"
}

check_node() {
	[[ $1 =~ ^[1-9][0-9]*$ ]] && (($1 <= NODES)) || die "no node $1 (the cluster has $NODES)"
}

# node_pid I prints node I's pid if that process is alive and is the java
# started for this node (the pid file may outlive it and the pid be reused).
node_pid() {
	local f="$run/node$1/pid" pid
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$run/node$1/server.properties" || return 1
	echo "$pid"
}

write_config() {
	local i=$1 dir="$run/node$1" voters="" j
	for ((j = 1; j <= NODES; j++)); do
		voters+="${voters:+,}$j@127.0.0.1:$((CONTROLLER_BASE_PORT + j - 1))"
	done
	local rf=$((NODES < 3 ? NODES : 3))
	local isr=$((rf < 2 ? rf : 2))
	mkdir -p "$dir/data"
	cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka.sh: node $i of a $NODES-node test cluster.
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$((BASE_PORT + i - 1)),CONTROLLER://127.0.0.1:$((CONTROLLER_BASE_PORT + i - 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$((BASE_PORT + i - 1))
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=true
num.partitions=$PARTITIONS
default.replication.factor=$rf
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
# Two cores: fewer threads than the defaults sized for a server.
num.network.threads=2
num.io.threads=4
background.threads=4
# A killed node is fenced, and leaves the ISRs, within seconds, so that
# failover tests do not wait for production defaults.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
replica.lag.time.max.ms=10000
$EXTRA_CONFIG
EOF
}

write_log4j() {
	# Console output goes to nodeI/server.log. The config dump at startup is
	# long and says nothing the properties file does not.
	cat >"$run/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
EOF
}

classpath() { echo "$KAFKA_LIBS/*"; }

format_node() {
	local i=$1 dir="$run/node$1"
	# shellcheck disable=SC2086 # KAFKA_JVM_OPTS is a list of flags
	"$JAVA" $KAFKA_JVM_OPTS -Dlog4j2.configurationFile="$run/log4j2.properties" \
		-cp "$(classpath)" kafka.tools.StorageTool format \
		-t "$CLUSTER_ID" -c "$dir/server.properties" >"$dir/format.log" 2>&1 ||
		{ tail -n 20 "$dir/format.log" >&2; die "cannot format node $i (log: $dir/format.log)"; }
}

launch_node() {
	local i=$1 dir="$run/node$1"
	[[ -f $dir/server.log ]] && mv -f "$dir/server.log" "$dir/server.log.1"
	# setsid and no inherited descriptors: the node outlives this script and
	# never holds the pipes of whoever ran it (a test waiting for its output).
	# shellcheck disable=SC2086
	setsid "$JAVA" $KAFKA_JVM_OPTS -Dlog4j2.configurationFile="$run/log4j2.properties" \
		-cp "$(classpath)" kafka.Kafka "$dir/server.properties" \
		</dev/null >"$dir/server.log" 2>&1 &
	echo $! >"$dir/pid"
}

# wait_node I returns once node I has logged that it started and accepts
# connections on its client port, or fails when it dies or times out.
wait_node() {
	local i=$1 dir="$run/node$1" port=$((BASE_PORT + $1 - 1)) deadline=$((SECONDS + KAFKA_START_TIMEOUT))
	while :; do
		if grep -q 'Kafka Server started' "$dir/server.log" 2>/dev/null &&
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		# The pid file was just written by launch_node, so kill -0 is enough
		# here (the cmdline is java's only once setsid has exec'd).
		if ! kill -0 "$(<"$dir/pid")" 2>/dev/null; then
			tail -n 30 "$dir/server.log" >&2 || true
			die "node $i exited during startup (log: $dir/server.log)"
		fi
		((SECONDS < deadline)) || {
			tail -n 30 "$dir/server.log" >&2 || true
			die "node $i did not start within ${KAFKA_START_TIMEOUT}s (log: $dir/server.log)"
		}
		sleep 0.2
	done
}

# start_watcher kills the cluster when KAFKA_WATCH_PID exits; it ends by
# itself once the run directory is gone (after `down`).
start_watcher() {
	[[ -n ${KAFKA_WATCH_PID:-} ]] || return 0
	setsid bash -c '
		while kill -0 "$1" 2>/dev/null && [[ -d $2 ]]; do sleep 1; done
		[[ -d $2 ]] && KAFKA_DIR="$3" KAFKA_STOP_TIMEOUT=5 "$4" down
	' kafka-watch "$KAFKA_WATCH_PID" "$run" "$KAFKA_DIR" "$self" </dev/null >/dev/null 2>&1 &
}

new_cluster_id() {
	# A Kafka cluster id is 16 random bytes in unpadded URL-safe base64;
	# Kafka itself never issues one starting with '-' (it reads as a flag).
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
		[[ $id != -* ]] && { echo "$id"; return; }
	done
}

cmd_up() {
	local n=${1:-1} i
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "node count must be a positive number, not \"$n\""
	need_java
	libs_ready || die "no Kafka jars in $KAFKA_LIBS (run: scripts/kafka.sh fetch)"
	if [[ -f $run/cluster.env ]]; then
		(
			load_state
			for ((i = 1; i <= NODES; i++)); do
				node_pid "$i" >/dev/null && exit 0
			done
			exit 1
		) && die "a cluster is already running in $run (run: scripts/kafka.sh down)"
		rm -rf "$run"
	fi
	mkdir -p "$run"
	NODES=$n BASE_PORT=$KAFKA_BASE_PORT CONTROLLER_BASE_PORT=$KAFKA_CONTROLLER_BASE_PORT
	PARTITIONS=$KAFKA_PARTITIONS EXTRA_CONFIG=$KAFKA_EXTRA_CONFIG CLUSTER_ID=$(new_cluster_id)
	{
		printf 'NODES=%q\nBASE_PORT=%q\nCONTROLLER_BASE_PORT=%q\n' "$NODES" "$BASE_PORT" "$CONTROLLER_BASE_PORT"
		printf 'PARTITIONS=%q\nEXTRA_CONFIG=%q\nCLUSTER_ID=%q\n' "$PARTITIONS" "$EXTRA_CONFIG" "$CLUSTER_ID"
	} >"$run/cluster.env"
	write_log4j
	local t0=$SECONDS pids=()
	for ((i = 1; i <= n; i++)); do
		write_config "$i"
		format_node "$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	start_watcher
	for ((i = 1; i <= n; i++)); do launch_node "$i"; done
	for ((i = 1; i <= n; i++)); do wait_node "$i"; done
	echo "kafka: $n-node cluster $CLUSTER_ID up in $((SECONDS - t0))s; seeds $(seeds)" >&2
}

seeds() {
	local i s=""
	for ((i = 1; i <= NODES; i++)); do s+="${s:+,}127.0.0.1:$((BASE_PORT + i - 1))"; done
	echo "$s"
}

# stop_node I SIG sends SIG to node I and waits for it to exit, then
# SIGKILLs it after KAFKA_STOP_TIMEOUT seconds.
stop_node() {
	local i=$1 sig=$2 pid deadline=$((SECONDS + ${KAFKA_STOP_TIMEOUT:-30}))
	pid=$(node_pid "$i") || { rm -f "$run/node$i/pid"; return 0; }
	kill "-$sig" "$pid" 2>/dev/null || true
	while node_pid "$i" >/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "kafka: node $i (pid $pid) still running after SIG$sig; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		sleep 0.1
	done
	rm -f "$run/node$i/pid"
}

cmd_down() {
	[[ -f $run/cluster.env ]] || { rm -rf "$run"; return 0; }
	load_state
	local i
	# Brokers first, all at once: each waits for the others' controllers
	# while it shuts down, so stopping them one by one is slower.
	for ((i = 1; i <= NODES; i++)); do
		stop_node "$i" TERM &
	done
	wait
	rm -rf "$run"
}

cmd_status() {
	load_state
	local i pid rc=0
	for ((i = 1; i <= NODES; i++)); do
		if pid=$(node_pid "$i"); then
			echo "node $i: running (pid $pid) client 127.0.0.1:$((BASE_PORT + i - 1)) controller 127.0.0.1:$((CONTROLLER_BASE_PORT + i - 1))"
		else
			echo "node $i: stopped"
			rc=1
		fi
	done
	return $rc
}

cmd_start_node() {
	load_state
	check_node "$1"
	need_java
	node_pid "$1" >/dev/null && die "node $1 is already running"
	launch_node "$1"
	wait_node "$1"
}

case ${1:-} in
fetch) cmd_fetch ;;
up) cmd_up "${2:-1}" ;;
down) cmd_down ;;
status) cmd_status ;;
seeds) load_state && seeds ;;
kill-node) load_state && check_node "${2:-}" && stop_node "$2" KILL ;;
stop-node) load_state && check_node "${2:-}" && stop_node "$2" TERM ;;
start-node) cmd_start_node "${2:-}" ;;
*)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
	exit 2
	;;
esac
