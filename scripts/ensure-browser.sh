#!/usr/bin/env bash
# Makes sure the browser tests (tests/browser, marker browser) have a browser: Debian's chromium
# at /usr/bin/chromium, driven by the venv's Playwright (its own browser download needs a network
# we don't have), and a font, without which a headless screenshot shows no legible text. On a
# Debian-based host where we are root, installs what is missing in one bounded apt run (none when
# nothing is missing); elsewhere says what to do in one line. Prints the browser's version.
set -euo pipefail

[ $# -eq 0 ] || { echo "usage: $0" >&2; exit 2; }

CHROMIUM=/usr/bin/chromium
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
[ -e "$FONT" ] || missing+=(fonts-dejavu-core)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: the browser tests need Debian's ${missing[*]} (not root or no apt-get here): sudo apt-get install ${missing[*]}, then retry" >&2
    exit 1
  fi
  echo "browser: installing Debian's ${missing[*]}"
  log=$(mktemp /tmp/lab-ensure-browser.XXXXXX.log)
  export DEBIAN_FRONTEND=noninteractive
  # Bounded: a busy dpkg lock is waited for 2 min, a stuck mirror ends the step; recommends
  # (upower, notification-daemon, ...) are desktop parts a headless test never uses.
  apt_get() { timeout "$1" apt-get -o DPkg::Lock::Timeout=120 -o Acquire::Retries=2 "${@:2}" >>"$log" 2>&1; }
  rc=0
  apt_get 300 update -qq || rc=$?
  [ $rc -ne 0 ] || apt_get 900 install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
  if [ $rc -ne 0 ]; then
    why=$([ $rc = 124 ] && echo "timed out" || grep -E '^(E|W):' "$log" | tail -n1)
    echo "error: apt-get could not install ${missing[*]} (exit $rc${why:+: $why}); full log: $log" >&2
    exit 1
  fi
  rm -f "$log"
fi

# --version starts no browser, so it needs neither a sandbox nor a display.
version=$(timeout 30 "$CHROMIUM" --version 2>/dev/null) || {
  echo "error: $CHROMIUM is there but does not run ($CHROMIUM --version failed); reinstall Debian's chromium" >&2
  exit 1
}
echo "browser: $version"
