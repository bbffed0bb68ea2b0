#!/usr/bin/env bash
# Test-only step (run by scripts/test.sh): Debian's headless chromium for the dashboard browser
# test, driven by playwright-core (which downloads no browser). Needs root and apt; without them the
# browser test is skipped, never the rest.  Another apt/dpkg process (unattended-upgrades on a fresh
# machine) may hold the dpkg lock: wait for it, bounded by CHROMIUM_LOCK_WAIT_SECONDS (default 300),
# saying so, then let apt wait out what is left through its own DPkg::Lock::Timeout.
set -euo pipefail
wait_seconds=${CHROMIUM_LOCK_WAIT_SECONDS:-300}
locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)
packages=(chromium fonts-dejavu-core)

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing (apt-get install chromium as root): the dashboard browser test will be skipped" >&2
  exit 0
fi

# Seconds left of the bounded wait, once no process holds a dpkg/apt lock (or the time is up).
deadline=$((SECONDS + wait_seconds))
wait_for_dpkg_lock() {
  local announced=""
  command -v fuser >/dev/null 2>&1 || return 0  # apt's own lock timeout still applies
  while fuser "${locks[@]}" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "install-chromium: the dpkg lock is still held after ${wait_seconds}s; giving up" >&2
      return 1
    fi
    if [ -z "$announced" ]; then
      echo "install-chromium: another process holds the dpkg/apt lock; waiting up to ${wait_seconds}s" >&2
      announced=1
    fi
    sleep 2
  done
  [ -z "$announced" ] || echo "install-chromium: the dpkg lock is free" >&2
}

apt_get() {
  local left=$((deadline - SECONDS))
  [ "$left" -gt 0 ] || left=1
  apt-get -o "DPkg::Lock::Timeout=$left" "$@"
}

export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: installing Debian's chromium for the dashboard browser test (apt-get)" >&2
wait_for_dpkg_lock || exit 1
# apt-get update only when the package lists do not know chromium (or the first install fails).
if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  echo "install-chromium: apt-get update" >&2
  apt_get update -qq
fi
if ! apt_get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; then
  echo "install-chromium: install failed; apt-get update and one retry" >&2
  wait_for_dpkg_lock || exit 1
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
echo "install-chromium: $(command -v chromium) installed" >&2
