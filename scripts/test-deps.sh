#!/usr/bin/env bash
# Installs what the end-to-end tests drive, and nothing that is already there:
# the third-party clients (swaks with its TLS modules, curl, python3-caldav, vdirsyncer), Dovecot's
# imaptest (built from tools/imaptest against Debian's dovecot-core and dovecot-dev), Debian's
# Postfix (test/postfix runs private instances of it: the MX in front of Postern and the
# sender to Postern's MX), the rspamd spam filter with the Redis its Bayes classifier keeps
# its counts in, systemd's systemd-analyze and systemd-sysusers (the packaged unit
# is checked with them; a minimal image has no systemd), the
# browser for the web UI tests (chromium, chromium-driver, and fonts-noto-cjk
# so the Japanese screenshots show text), and the npm packages of the browser
# test and of the IMAP client tests (imapflow). Safe to run again: it does nothing when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

# swaks speaks TLS only with Net::SSLeay and IO::Socket::SSL, which it merely
# recommends (and recommends are not installed here).
packages=(swaks libnet-ssleay-perl libio-socket-ssl-perl postfix curl python3-caldav vdirsyncer chromium chromium-driver fonts-noto-cjk rspamd redis-server systemd
	dovecot-core dovecot-dev autoconf automake libtool pkg-config make gcc libssl-dev)
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -gt 0 ]; then
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	echo "test-deps: installing ${missing[*]}"
	# Postfix installed unconfigured: the system's instance is never used
	# (nor started), the tests write their own.
	echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# imaptest, built once into the cache the e2e test looks in (tools/imaptest/README.md).
# dovecot-core brings a dovecot service the tests never use: it is left as the package
# leaves it.
tools/imaptest/build.sh >/dev/null

# The npm packages of the browser tests and of the IMAP client tests
# (imapflow), when they exist: npm ci again only when the lock file is
# newer than the installed tree.
for dir in test/browser test/imapflow; do
	if [ -f "$dir/package.json" ]; then
		if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
			[ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
			(cd "$dir" && npm ci --no-audit --no-fund)
		fi
	fi
done
