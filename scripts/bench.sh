#!/usr/bin/env bash
# `make bench`: the foundation's benchmarks in one run, printed as a Markdown
# table with trawl-versus-peer ratios; raw output and JSON are kept in
# bench/results/. BENCHTIME scales the per-benchmark time (default 1s).
set -euo pipefail
cd "$(dirname "$0")/.."
ts=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
raw=bench/results/$ts.txt
bt=${BENCHTIME:-1s}
{
	go test -run '^$' -bench 'BenchmarkRing' -benchtime "$bt" ./ring/
	go test -run '^$' -bench '.' -benchtime "$bt" ./event/ ./frame/
	go test -run '^$' -bench 'BenchmarkAppend|BenchmarkGroupCommit' -benchtime "$bt" ./sinks/disk/
	go test -run '^$' -bench 'BenchmarkDecode' -benchtime "$bt" ./flow/
	go test -run '^$' -bench 'BenchmarkReceive' -benchtime "$bt" ./collector/udp/
	go test -run '^$' -bench 'BenchmarkParse|BenchmarkSplit' -benchtime "$bt" ./syslog/
	go test -run '^$' -bench 'BenchmarkSyslog' -benchtime "$bt" ./collector/
	go test -run '^$' -bench 'BenchmarkPipeline|BenchmarkParseHeader' -benchtime "$bt" ./audit/
	# Exec storm under trawl and under auditd (root and auditd; skips otherwise; about 1 minute).
	go test -run '^$' -bench 'BenchmarkAuditExecStorm' -benchtime 1x ./collector/
	# The same storm under the ebpf input; the eBPF path per exec and per
	# connection (kernel programs and reader), the reader's drain rate and
	# the record decoder (root; skips otherwise; about 30 seconds).
	go test -run '^$' -bench 'BenchmarkEBPFExecStorm|BenchmarkExecStormBaseline' -benchtime 1x ./collector/
	go test -run '^$' -bench 'BenchmarkExec|BenchmarkConnect' -benchtime 3000x ./bpf/
	go test -run '^$' -bench 'BenchmarkRingbufDrain' -benchtime 20000x ./bpf/
	go test -run '^$' -bench 'BenchmarkDecode' -benchtime "$bt" ./bpf/
	go test -run '^$' -bench 'BenchmarkEndToEnd' -benchtime 2000000x ./bench/
} | tee "$raw" >&2
go run ./bench/cmd/benchreport -json "bench/results/$ts.json" < "$raw" | tee "bench/results/$ts.md"
echo >&2
echo "results: bench/results/$ts.{txt,json,md}" >&2
# Syslog collectors side by side (about 2 minutes).
./scripts/bench-syslog.sh
