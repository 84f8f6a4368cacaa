#!/usr/bin/env bash
# The IMAP benchmark (issue 16): what clients do after logging in, on Postern
# (SQLite and PostgreSQL) and a private Dovecot tuned as bench/run.sh's
# dovecot-tuned, on loopback, in alternation; regenerates the IMAP section of
# docs/benchmarks.md. Figures: imaptest's stress mode (10 clients, 20 s),
# mailbox operations on one mailbox of 10,000 messages (bench/mailbox_ops.py:
# python's imaplib, best of 3), APPEND without TCP_NODELAY, and Postern's
# memory per connection in IDLE.
#
#   bench/imap.sh                          # the full run at 10,000 messages (about 10 minutes)
#   bench/imap.sh --quick                  # a short run for development (about 2 minutes)
#   bench/imap.sh --messages 10000,100000  # also 100,000 (filled from 4 connections; adds about 30 minutes)
#   bench/imap.sh --quick --targets postern-sqlite,dovecot   # further flags go to postern-bench imap
#
# Also run as `bench/run.sh imap [flags]`. Needs root (Dovecot starts as root;
# apt-get when it is missing), python3, and Dovecot's imaptest for the stress
# figure: IMAPTEST=/path/to/imaptest, imaptest on PATH, or the one
# tools/imaptest/build.sh builds (scripts/test-deps.sh runs it); without it that figure is
# left out. POSTERN_BENCH_PG (default: the local test database, schema
# bench_imap; --pg-schema NAME for another, so that two runs can share the
# database) is the PostgreSQL of Postern's second column; set it empty to
# skip. KEEP=1 keeps the temporary folder (configurations, logs, results).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
if [[ "${1:-}" == "--quick" ]]; then
	quick=(--quick)
	shift
fi

if ! command -v dovecot >/dev/null || [[ ! -e /usr/lib/dovecot/imap ]]; then
	echo "installing Dovecot (dovecot-imapd)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd >/dev/null
fi

imaptest=${IMAPTEST:-}
if [[ -z "$imaptest" ]]; then
	for c in "$(command -v imaptest || true)" "${XDG_CACHE_HOME:-$HOME/.cache}/postern-imaptest/imaptest"; do
		if [[ -n "$c" && -x "$c" ]]; then
			imaptest=$c
			break
		fi
	done
fi
[[ -n "$imaptest" ]] || echo "no imaptest (set IMAPTEST): the stress figure is left out"

ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d /tmp/postern-bench-imap.XXXXXX)
# Dovecot's mail processes (nobody) work in here.
chmod 755 "$tmp"
cleanup() {
	if [[ "${KEEP:-}" == "1" ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

echo "building into $tmp"
go build -o "$tmp/postern" ./cmd/postern
go build -o "$tmp/postern-bench" ./bench/cmd/postern-bench

pg=${POSTERN_BENCH_PG-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
"$tmp/postern-bench" imap "${quick[@]}" \
	--postern "$tmp/postern" \
	--pg "$pg" \
	--imaptest "$imaptest" \
	--scripts bench \
	--work "$tmp/work" \
	--out "$tmp/results.json" \
	--doc docs/benchmarks.md \
	"$@"
echo "docs/benchmarks.md regenerated (IMAP section)"
