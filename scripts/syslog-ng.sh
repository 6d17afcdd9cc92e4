#!/usr/bin/env bash
# syslog-ng and its load generator loggen, run from a private folder.
# Debian's syslog-ng conflicts with rsyslog as a package (DESIGN.md §4), so
# its .debs (syslog-ng-core and the libraries this machine lacks) are
# unpacked with dpkg -x into build/syslog-ng/root instead of installed, and
# run from there with LD_LIBRARY_PATH, SYSLOGNG_PREFIX (where loggen finds
# its plugins) and --module-path.
#
#   scripts/syslog-ng.sh fetch              download and unpack (idempotent; says
#                                           how to run them when it unpacks)
#   scripts/syslog-ng.sh env                print the environment, for eval
#   scripts/syslog-ng.sh loggen ARGS...     run loggen from there
#   scripts/syslog-ng.sh syslog-ng ARGS...  run syslog-ng from there
#
# fetch also writes build/syslog-ng/env (KEY=VALUE lines: SYSLOG_NG,
# LOGGEN, MODULE_PATH, LD_LIBRARY_PATH, SYSLOGNG_PREFIX), which the tests
# and the benchmark read.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
dir=$PWD/build/syslog-ng
root=$dir/root

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

# deps PKG: the packages PKG depends on (first alternatives, no virtuals).
deps() { apt-cache depends --no-recommends --no-suggests "$1" | awk '/^  Depends: [^<]/ {print $2}'; }

fetch() {
	if [[ -f $dir/env ]] && [[ -x $root/usr/sbin/syslog-ng ]]; then
		return
	fi
	command -v apt-get >/dev/null || { echo "syslog-ng.sh: needs apt-get (Debian)" >&2; exit 1; }
	# syslog-ng-core and every library it needs that is not installed, one
	# level down as well (libwrap0, libnet1, libivykis0 and libpcre3 here).
	local want=(syslog-ng-core) p q
	for p in $(deps syslog-ng-core); do
		installed "$p" && continue
		want+=("$p")
		for q in $(deps "$p"); do
			installed "$q" || want+=("$q")
		done
	done
	mapfile -t want < <(printf '%s\n' "${want[@]}" | sort -u)
	echo "syslog-ng.sh: unpacking ${want[*]} into $root" >&2
	rm -rf "$dir"
	mkdir -p "$dir/debs"
	# apt-get download drops privileges to _apt where it can; a folder it
	# can write to avoids the warning.
	chmod 777 "$dir/debs"
	if ! (cd "$dir/debs" && apt-get download -qq "${want[@]}" 2>/dev/null); then
		[[ $(id -u) -eq 0 ]] || { echo "syslog-ng.sh: apt-get download failed; run apt-get update as root" >&2; exit 1; }
		apt-get update -qq
		(cd "$dir/debs" && apt-get download -qq "${want[@]}")
	fi
	for f in "$dir"/debs/*.deb; do
		dpkg -x "$f" "$root"
	done
	local arch libs modules
	arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
	libs=$root/usr/lib/syslog-ng:$root/usr/lib/$arch:$root/lib/$arch
	modules=$(ls -d "$root"/usr/lib/syslog-ng/[0-9]* | head -1)
	if LD_LIBRARY_PATH=$libs ldd "$root/usr/sbin/syslog-ng" | grep -q 'not found'; then
		echo "syslog-ng.sh: libraries still missing:" >&2
		LD_LIBRARY_PATH=$libs ldd "$root/usr/sbin/syslog-ng" | grep 'not found' >&2
		exit 1
	fi
	cat >"$dir/env.tmp" <<-EOF
		SYSLOG_NG=$root/usr/sbin/syslog-ng
		LOGGEN=$root/usr/bin/loggen
		MODULE_PATH=$modules
		LD_LIBRARY_PATH=$libs
		SYSLOGNG_PREFIX=$root/usr
	EOF
	mv "$dir/env.tmp" "$dir/env"
	(load_env && "$SYSLOG_NG" --version | head -1 >&2)
	echo "run from $root:" >&2
	echo "  scripts/syslog-ng.sh loggen -i -S -r 10000 -I 3 -s 256 127.0.0.1 5514" >&2
	echo "  scripts/syslog-ng.sh syslog-ng -F -f CONF --persist-file=DIR/persist --pidfile=DIR/pid --control=DIR/ctl" >&2
	echo "  or: eval \"\$(scripts/syslog-ng.sh env)\"; \$LOGGEN ...; \$SYSLOG_NG --module-path=\$MODULE_PATH ..." >&2
}

# load_env exports the variables of build/syslog-ng/env.
load_env() {
	set -a
	# shellcheck disable=SC1091
	. "$dir/env"
	set +a
}

case ${1:-} in
fetch)
	fetch
	;;
env)
	fetch
	sed 's/^/export /' "$dir/env"
	;;
loggen)
	fetch
	shift
	load_env
	exec "$LOGGEN" "$@"
	;;
syslog-ng)
	fetch
	shift
	load_env
	exec "$SYSLOG_NG" --module-path="$MODULE_PATH" "$@"
	;;
*)
	sed -n '2,18s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
