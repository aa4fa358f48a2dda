#!/usr/bin/env bash
# Installs what a fresh Debian machine with Node 20 lacks for Orderly: npm dependencies, Debian's
# Chromium and Redis (as root; otherwise it says what to install). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'orderly: %s\n' "$*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then say "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))"; exit 1; fi

# npm dependencies, exactly as locked, with `npm ci`: it installs what package-lock.json says and
# nothing else, never rewrites the lock, and fails with npm's own message when the lock and
# package.json disagree. The lock is complete: it lists every platform's optional native packages
# (for example @unrs/resolver-binding-*), so no platform's install changes it. Run only when
# node_modules is missing or older than the lock, so a second `make` costs nothing. To change a
# dependency, run `npm install <pkg>` yourself and commit package.json with the lock it writes.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci, exactly as package-lock.json says)"
  npm ci --no-audit --no-fund --loglevel=error
fi

apt_updated=
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then say "missing $1: install the Debian package '$1' (apt-get install $1) and run again"; exit 1; fi
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  say "installing $1 from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

[ -x "${ORDERLY_CHROMIUM_PATH:-/usr/bin/chromium}" ] || apt_install chromium
command -v redis-server >/dev/null || apt_install redis-server
# The run sandbox: bubblewrap for the namespaces, and libseccomp's Python binding (Debian's own
# /usr/bin/python3) to build its seccomp filter. prlimit comes with util-linux.
command -v bwrap >/dev/null || apt_install bubblewrap
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || apt_install python3-seccomp
command -v prlimit >/dev/null || apt_install util-linux
# `orderly bot record` opens a headed browser; its test runs it on a virtual display.
command -v xvfb-run >/dev/null || apt_install xvfb
exit 0
