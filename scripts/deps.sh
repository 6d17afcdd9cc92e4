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
)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
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
go mod download
