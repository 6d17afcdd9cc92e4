#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine. Idempotent: does
# nothing when everything is present. Runs apt-get only as root.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

# Debian packages the test suite uses (command → package).
declare -A need=(
	[curl]=curl
	[softflowd]=softflowd
	[pmacctd]=pmacct
	[java]=openjdk-17-jre-headless
	[mvn]=maven
	[kcat]=kcat
	[rsyslogd]=rsyslog
	[auditd]=auditd
	# make generate: BPF objects (bpf/) and vmlinux.h
	[clang]=clang
	[llvm-strip]=llvm
	[bpftool]=bpftool
)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# rsyslog's RELP output (omrelp) has no command of its own.
compgen -G '/usr/lib/*/rsyslog/omrelp.so' >/dev/null || missing+=(rsyslog-relp)
# libbpf's BPF-side headers (bpf_helpers.h, ...) have no command either.
[[ -f /usr/include/bpf/bpf_helpers.h ]] || missing+=(libbpf-dev)
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: missing ${missing[*]}; run as root or install them" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# syslog-ng conflicts with rsyslog as a package: unpacked into build/syslog-ng.
"$(dirname "$0")/syslog-ng.sh" fetch
go mod download
