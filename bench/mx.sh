#!/usr/bin/env bash
# The MX benchmark (issue 14): messages accepted per second by Postern's MX
# listener (SQLite and PostgreSQL) against Debian's Postfix as the MX handing
# mail to Dovecot over LMTP, and the null MX, at 16 concurrent senders with
# 10 KiB messages, on loopback, in alternation; regenerates the MX section of
# docs/benchmarks.md.
#
#   bench/mx.sh            # the full run (about 5 minutes)
#   bench/mx.sh --quick    # a short run for development (under a minute)
#   bench/mx.sh --quick --targets postfix-dovecot,null   # further flags go to postern-bench mx
#
# Needs root: apt-get (when Postfix or Dovecot's LMTP is missing), and Postfix
# and Dovecot start as root. POSTERN_BENCH_PG (default: the local test
# database) is the PostgreSQL of Postern's second column; set it empty to
# skip. KEEP=1 keeps the temporary folder (configurations, logs, results.json).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
if [[ "${1:-}" == "--quick" ]]; then
	quick=(--quick)
	shift
fi

missing=()
command -v postfix >/dev/null || missing+=(postfix)
[[ -e /usr/lib/dovecot/lmtp ]] || missing+=(dovecot-lmtpd)
if ((${#missing[@]})); then
	echo "installing ${missing[*]}"
	# Postfix's own configuration is left empty: the benchmark runs a
	# private instance and the system's is not started.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d /tmp/postern-bench-mx.XXXXXX)
# Postfix's daemons (user postfix) and Dovecot's mail processes (nobody)
# work in here.
chmod 755 "$tmp"
cleanup() {
	if [[ "${KEEP:-}" == "1" ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

echo "building into $tmp"
go build -o "$tmp/postern" ./cmd/postern
go build -o "$tmp/postern-bench" ./bench/cmd/postern-bench

pg=${POSTERN_BENCH_PG-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
"$tmp/postern-bench" mx "${quick[@]}" \
	--postern "$tmp/postern" \
	--pg "$pg" \
	--work "$tmp/work" \
	--out "$tmp/results.json" \
	--doc docs/benchmarks.md \
	"$@"
echo "docs/benchmarks.md regenerated (MX section)"
