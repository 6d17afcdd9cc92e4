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
	./flow:FuzzLoadSnapshot

.PHONY: all build run test test-go fuzz fuzz-short bench bench-flows generate deps vet clean \
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
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=5m

# Benchmarks, reported as ratios against peers measured in the same run:
# the package and end-to-end benchmarks (about 2 minutes), then the flow
# collectors side by side (about 4 minutes).
bench: build
	./scripts/bench.sh
	./scripts/bench-flows.sh

# Flow collectors side by side (trawl, goflow2, nfcapd) on the same NetFlow
# v5/v9/IPFIX traffic: loss versus offered rate, CPU per flow, peak RSS.
bench-flows: build
	./scripts/bench-flows.sh

# A real Kafka 4.x broker for development (docs/kafka.md): one KRaft node on
# 127.0.0.1:9092, data in build/kafka/run, jars resolved from Maven Central
# into build/kafka/libs by kafka-fetch (once; the tests need them too).
kafka-fetch:
	./scripts/kafka.sh fetch

kafka-up: kafka-fetch
	./scripts/kafka.sh up 1

kafka-down:
	./scripts/kafka.sh down

# Regenerate BPF objects (needs clang; the generated files are committed).
generate:
	$(GO) generate ./...

clean:
	rm -rf bin
