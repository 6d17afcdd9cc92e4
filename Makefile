# trawl — see README.md. Every target works on a fresh machine: `make test`
# installs what the tests need and stops what it started.

GO        ?= go
BIN       := bin/trawl
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 8s
# Packages with fuzz targets, as "package:FuzzName".
FUZZ_TARGETS := \
	./event:FuzzDecodeBinary \
	./event:FuzzAppendJSON \
	./frame:FuzzParse \
	./sinks/disk:FuzzSegment \
	./collector:FuzzAppLines \
	./collector/udp:FuzzRxqOvfl \
	./flow:FuzzDecodeV5 \
	./flow:FuzzDecodeV9 \
	./flow:FuzzDecodeIPFIX \
	./flow:FuzzDecodeSFlow \
	./flow:FuzzLoadSnapshot \
	./syslog:FuzzParse5424 \
	./syslog:FuzzParse3164 \
	./syslog:FuzzSplit \
	./syslog/relp:FuzzParse \
	./consumer:FuzzConverter \
	./consumer:FuzzFlowMessage \
	./consumer:FuzzFrameRecord \
	./bench/peer:FuzzParseStat \
	./bpf:FuzzDecode \
	./bpf/proccache:FuzzParseStat \
	./audit:FuzzRecord \
	./audit:FuzzEvent

.PHONY: all build run test test-go fuzz fuzz-short bench bench-long bench-flows bench-kafka bench-syslog generate deps vet clean \
	kafka-fetch kafka-up kafka-down

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/trawl

# Start the node on its embedded defaults (app input on TCP 5170, spool in
# ./data, HTTP on 127.0.0.1:9470). Ctrl-C stops it cleanly.
run: build
	./$(BIN) run

# What CI runs (.ci/run): dependencies, vet, every test (privileged ones
# run as root, skip with a message otherwise), then each fuzz target briefly.
test: deps vet build kafka-fetch test-go fuzz-short

deps:
	./scripts/deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# Under make test a Kafka test that cannot start its broker fails instead of
# skipping (sinks/kafka/kafkatest); each test starts and stops its own.
test-go:
	TRAWL_REQUIRE_KAFKA=1 $(GO) test -race -count=1 -timeout 15m ./...

# Each fuzz target for FUZZTIME (seed corpora in testdata/fuzz run in test-go too).
fuzz-short:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh $(FUZZ_TARGETS)

fuzz:
	$(MAKE) fuzz-short FUZZTIME=5m

# Benchmarks, reported as ratios against peers measured in the same run
# (scripts/bench.sh, about 10 minutes): package and end-to-end benchmarks,
# the exec storm under auditd/audit/eBPF, then the syslog, flow and Kafka
# harnesses below with fewer, shorter steps; prints and writes
# bench/results/summary-<ts>.md. bench-long: the harnesses' --long mode with
# three repetitions, for bigger machines.
bench: build
	./scripts/bench.sh

bench-long: build
	BENCH_LONG=1 ./scripts/bench.sh

# Syslog collectors side by side (trawl, rsyslog, syslog-ng) on the same
# 256-byte messages over UDP and TCP: highest rate at < 0.1% loss, CPU per
# message, peak RSS, trawl's CPU profile at its limit (about 2 minutes;
# scripts/bench.sh runs it too).
bench-syslog: build
	./scripts/bench-syslog.sh

# Flow collectors side by side (trawl, goflow2, nfcapd) on the same NetFlow
# v5/v9/IPFIX traffic: loss versus offered rate, CPU per flow, peak RSS.
bench-flows: build
	./scripts/bench-flows.sh

# trawl and goflow2 v2.2.6 producing the same NetFlow traffic into one real
# single-node Kafka broker (started and stopped by the script): delivered
# flows/s, loss, CPU of each collector and of the broker; plus trawl's sink
# alone (BenchmarkSinkToBroker).
bench-kafka: build
	./scripts/bench-kafka.sh

# A real Kafka 4.x broker for development (docs/kafka.md): one KRaft node on
# 127.0.0.1:9092, data in build/kafka/run, jars resolved from Maven Central
# into build/kafka/libs by kafka-fetch (once; the tests need them too).
kafka-fetch:
	./scripts/kafka.sh fetch

kafka-up: kafka-fetch
	./scripts/kafka.sh up 1

kafka-down:
	./scripts/kafka.sh down

# Regenerate the BPF objects and their Go loaders in bpf/ with clang and
# libbpf-dev (the generated files are committed, so go build needs no
# clang). VMLINUX=1 first rewrites bpf/src/vmlinux.h from this kernel's BTF
# with bpftool; the programs are CO-RE, so any recent kernel's will do.
generate:
	@if [ -n "$(VMLINUX)" ]; then PATH="$$PATH:/usr/sbin" bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/src/vmlinux.h; fi
	$(GO) generate ./...

clean:
	rm -rf bin
