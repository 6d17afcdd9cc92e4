#!/usr/bin/env bash
# The flow half of the peer-against-peer benchmark (issue 8): trawl (S2
# frames, and trawl-none with uncompressed frames),
# goflow2 v2.2.6 (protobuf and JSON output), nfcapd (nfdump) and nfacctd
# (pmacct) fed the same generated NetFlow v5, v9 and IPFIX traffic over
# loopback, and trawl, goflow2, sfcapd (nfdump-sflow) and sfacctd (pmacct)
# the same sFlow v5, the offered rate stepped up, loss counted from what
# each stored. Short mode (default) takes about 6 minutes on this
# machine; pass --long for bigger machines, --reps 3 for min/median/max;
# shorter: --rates 100k,400k,1.6M (fewer steps), --formats v9,sflow,
# --tools trawl,nfcapd. Extra arguments go to trawlbench (see `--help`).
# Output: a Markdown table on stdout, bench/results/flows-<ts>.{json,md} and
# one PNG per format.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

# The peers, by command → Debian package.
declare -A need=([nfcapd]=nfdump [nfdump]=nfdump [sfcapd]=nfdump-sflow [nfacctd]=pmacct [sfacctd]=pmacct)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null || missing+=("${need[$cmd]}")
done
if ((${#missing[@]})); then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	echo "installing ${missing[*]} with apt-get" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "${missing[*]} missing and not root: apt-get install ${missing[*]}, or run as root" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2; }
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
