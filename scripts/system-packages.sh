#!/usr/bin/env bash
# Install the Debian packages the tests need, when they are missing:
#   chromium    - the browser tests/test_ui_browser.py drives through Playwright (no browser downloads)
#   postgresql  - server binaries (initdb, postgres) for the local deployment, `marquee cluster up`
# Only as root with apt-get; otherwise it prints what is missing and exits 0. Quick and idempotent when
# everything is already installed. `apt-get update` is run only if installing fails without it.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
  echo "system-packages: all present (chromium, postgresql)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: missing Debian packages: ${missing[*]}" >&2
  echo "system-packages: install them as root: apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 0
fi

install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

echo "system-packages: installing ${missing[*]}"
if ! install "${missing[@]}"; then
  echo "system-packages: install failed; running apt-get update and retrying"
  apt-get update
  install "${missing[@]}"
fi
echo "system-packages: installed ${missing[*]}"
