#!/usr/bin/env bash
# The syslog half of the peer-against-peer benchmark (issues 4 and 8):
# trawl (into its spool), rsyslog (imudp/imptcp/imrelp → omfile) and
# syslog-ng (network() → file; it has no RELP server), each alone, fed the
# same 256-byte messages by a fast generator (sendmmsg over several UDP
# sockets; several TCP connections; several RELP sessions with a window of
# 128 unanswered messages each, counting only what was answered 200 OK),
# the offered rate stepped up, loss counted from what each stored (over
# RELP: stored must equal acknowledged), CPU seconds per million messages,
# peak RSS, and trawl's CPU profile at its limit. Short mode (default)
# takes about 2.5 minutes on a quiet machine, the RELP part about half a
# minute of it (it waits for other processes to calm down); pass --long
# for bigger machines, --reps 3 for min/median/max, --protos relp for RELP
# alone. Extra arguments go to syslogbench (see `--help`).
# Output: a Markdown table on stdout, bench/results/syslog-<ts>.{json,md},
# one PNG per protocol and trawl's profiles (.pprof, pprof -top as .txt).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

# rsyslog (with omrelp) from Debian, syslog-ng unpacked into build/.
./scripts/deps.sh >&2
make build >&2
mkdir -p bench/results build
go build -o build/syslogbench ./bench/cmd/syslogbench
exec ./build/syslogbench -trawl bin/trawl -out bench/results "$@"
