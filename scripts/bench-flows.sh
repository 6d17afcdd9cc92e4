#!/usr/bin/env bash
# The flow half of the peer-against-peer benchmark (issue 8): trawl,
# goflow2 v2.2.6 (protobuf and JSON output) and nfcapd (nfdump) fed the same
# generated NetFlow v5, v9 and IPFIX traffic over loopback, the offered rate
# stepped up, loss counted from what each stored. Short mode (default) takes
# about 5 minutes; pass --long for bigger machines, --reps 3 for
# min/median/max. Extra arguments go to trawlbench (see `--help`).
# Output: a Markdown table on stdout, bench/results/flows-<ts>.{json,md} and
# one PNG per format.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

if ! command -v nfcapd >/dev/null || ! command -v nfdump >/dev/null; then
	echo "installing nfdump (nfcapd) with apt-get" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "nfdump missing and not root: apt-get install nfdump, or run as root" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y nfdump >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y nfdump >&2; }
fi
if [ ! -x build/bin/goflow2 ] || ! go version -m build/bin/goflow2 | grep -q 'goflow2/v2.*v2\.2\.6'; then
	echo "installing goflow2 v2.2.6 into build/bin" >&2
	mkdir -p build/bin
	GOBIN="$PWD/build/bin" go install github.com/netsampler/goflow2/v2/cmd/goflow2@v2.2.6
fi
make build >&2
mkdir -p bench/results build
go build -o build/trawlbench ./bench/cmd/trawlbench
exec ./build/trawlbench -trawl bin/trawl -goflow2 build/bin/goflow2 -out bench/results "$@"
