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
	go test -run '^$' -bench 'BenchmarkEndToEnd' -benchtime 2000000x ./bench/
} | tee "$raw" >&2
go run ./bench/cmd/benchreport -json "bench/results/$ts.json" < "$raw" | tee "bench/results/$ts.md"
echo >&2
echo "results: bench/results/$ts.{txt,json,md}" >&2
