#!/usr/bin/env bash
# The sending benchmark: messages per second delivered to a null SMTP sink
# (the MX of sink.test, port 25 of 127.0.25.25) at 16 concurrent submitters
# with 10 KiB messages, submission → queue → delivery, by Postern (SQLite and
# PostgreSQL; direct delivery after an MX lookup in a DNS server on
# loopback) against Debian's Postfix (SASL through Dovecot's auth, relaying
# to the sink), and the load straight against the sink, in alternation;
# regenerates the sending section of docs/benchmarks.md.
#
#   bench/send.sh            # the full run (about 5 minutes)
#   bench/send.sh --quick    # a short run for development (under a minute)
#   bench/send.sh --quick --targets postfix,null   # further flags go to postern-bench send
#
# Needs root: apt-get (when Postfix or Dovecot is missing), Postfix and
# Dovecot start as root, and the sink listens on port 25. POSTERN_BENCH_PG
# (default: the local test database) is the PostgreSQL of Postern's second
# column; set it empty to skip. KEEP=1 keeps the temporary folder
# (configurations, logs, results.json).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
if [[ "${1:-}" == "--quick" ]]; then
	quick=(--quick)
	shift
fi

missing=()
command -v postfix >/dev/null || missing+=(postfix)
command -v dovecot >/dev/null || missing+=(dovecot-core)
if ((${#missing[@]})); then
	echo "installing ${missing[*]}"
	# Postfix's own configuration is left empty: the benchmark runs a
	# private instance and the system's is not started.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d /tmp/postern-bench-send.XXXXXX)
# Postfix's daemons (user postfix) work in here.
chmod 755 "$tmp"
cleanup() {
	if [[ "${KEEP:-}" == "1" ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

echo "building into $tmp"
go build -o "$tmp/postern" ./cmd/postern
go build -o "$tmp/postern-bench" ./bench/cmd/postern-bench

pg=${POSTERN_BENCH_PG-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
"$tmp/postern-bench" send "${quick[@]}" \
	--postern "$tmp/postern" \
	--pg "$pg" \
	--work "$tmp/work" \
	--out "$tmp/results.json" \
	--doc docs/benchmarks.md \
	"$@"
echo "docs/benchmarks.md regenerated (sending section)"
