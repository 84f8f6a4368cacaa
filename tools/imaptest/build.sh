#!/usr/bin/env bash
# build.sh [OUTDIR]: builds Dovecot's imaptest from the source tarball beside this script
# (upstream commit 924f619, 2022-03) against Debian's Dovecot 2.3 libraries, and prints the
# path of the binary. OUTDIR defaults to the cache the e2e test looks in:
# ${XDG_CACHE_HOME:-~/.cache}/postern-imaptest. Nothing is done when the binary is there.
# Needs the Debian packages dovecot-core (libdovecot.so), dovecot-dev (the headers and
# dovecot-config), autoconf, automake, libtool, pkg-config, make, gcc and libssl-dev;
# scripts/test-deps.sh installs them and runs this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/postern-imaptest}
if [[ -x $out/imaptest && -d $out/tests ]]; then echo "$out/imaptest"; exit 0; fi
for f in /usr/lib/dovecot/dovecot-config /usr/lib/dovecot/libdovecot.so; do
	[[ -e $f ]] || { echo "build.sh: $f is missing: install dovecot-core and dovecot-dev (scripts/test-deps.sh)" >&2; exit 1; }
done
mkdir -p "$out"
src=$out/imaptest-src
rm -rf "$src"; mkdir "$src"
tar -xzf "$here/imaptest-924f619.tar.gz" -C "$src" --strip-components=1
cd "$src"
# Debian's imap_parser_create() takes a fourth (params) argument: the three calls get NULL.
sed -i 's/imap_parser_create(\(.*\), (size_t)-1)/imap_parser_create(\1, (size_t)-1, NULL)/' src/commands.c src/imap-client.c src/test-parser.c
echo 0.0.0-924f619 > version # the tarball has no .git: git-version-gen reads this file
./autogen.sh >/dev/null 2>&1
./configure --with-dovecot=/usr/lib/dovecot >/dev/null
make -j"$(nproc)" >/dev/null 2>&1 || { make 2>&1 | grep -m5 error: >&2; exit 1; }
# The binary links libdovecot.so from /usr/lib/dovecot: a wrapper spares callers LD_LIBRARY_PATH.
cp src/imaptest "$out/imaptest.bin"
printf '#!/bin/sh\nLD_LIBRARY_PATH=/usr/lib/dovecot exec "%s" "$@"\n' "$out/imaptest.bin" >"$out/imaptest.tmp"
chmod +x "$out/imaptest.tmp"
rm -rf "$out/tests"; cp -r src/tests "$out/tests"
mv "$out/imaptest.tmp" "$out/imaptest" # last: its presence means the build is complete
rm -rf "$src"
echo "$out/imaptest"
