#!/usr/bin/env bash
# The pretest step (`npm test` runs it before the build): make sure the
# independent peers the specs talk to are installed, and install what is
# missing with apt-get, so that `npm install && npm test` passes by itself on a
# fresh Debian machine. A missing peer is never a skipped test: it is installed
# here, or this script fails and says what to run.
#
#   Python `websockets` for /usr/bin/python3  Debian package python3-websockets  (spec/server, spec/client)
#   headless Chromium at /usr/bin/chromium    Debian package chromium            (spec/browser)
#   the Prometheus text parser for python3    Debian package python3-prometheus-client (spec/server/metrics)
#   curl, to fetch /metrics as a scraper would Debian package curl               (spec/server/metrics)
#   redis-server and redis-cli (the broker's peer) Debian package redis-server   (spec/broker)
#     (the tests start their own redis-server on a free loopback port; none is used as a service)
#
# Silent when everything is present. Installs as root, or through sudo when
# sudo works without a password; otherwise exits 1 with the command to run.
#
# RESOUND_PEERS_PRETEND_MISSING (testing this script only): space-separated
# package names to treat as missing as well, e.g. a name that does not exist,
# to exercise the install and failure paths without uninstalling anything.
set -euo pipefail

missing=()

if ! /usr/bin/python3 -c 'import websockets' >/dev/null 2>&1; then
  missing+=(python3-websockets)
fi

if ! /usr/bin/python3 -c 'import prometheus_client.parser' >/dev/null 2>&1; then
  missing+=(python3-prometheus-client)
fi

if ! command -v curl >/dev/null 2>&1; then
  missing+=(curl)
fi

redis_works() {
  # redis-cli comes with redis-server (its dependency redis-tools).
  [ -x /usr/bin/redis-server ] && [ -x /usr/bin/redis-cli ] && /usr/bin/redis-server --version >/dev/null 2>&1
}
if ! redis_works; then
  missing+=(redis-server)
fi

chromium_works() {
  # Debian's /usr/bin/chromium is a shell wrapper that may complain on stderr; only the exit status counts.
  [ -x /usr/bin/chromium ] && timeout 60 /usr/bin/chromium --version >/dev/null 2>&1
}
if ! chromium_works; then
  missing+=(chromium)
fi

for package in ${RESOUND_PEERS_PRETEND_MISSING:-}; do
  missing+=("$package")
done

[ "${#missing[@]}" -eq 0 ] && exit 0

packages="${missing[*]}"
command_line="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $packages"

if ! command -v apt-get >/dev/null 2>&1; then
  echo "resound tests: missing test peers ($packages) and no apt-get to install them." >&2
  echo "  Needed: /usr/bin/python3 able to 'import websockets' and 'import prometheus_client', curl, Chromium at /usr/bin/chromium, and /usr/bin/redis-server with /usr/bin/redis-cli." >&2
  exit 1
fi

if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "resound tests: missing test peers: $packages. Install them as root, then rerun the tests:" >&2
  echo "  sudo sh -c '$command_line'" >&2
  exit 1
fi

echo "resound tests: installing test peers with apt-get: $packages" >&2
# Wait for another apt/dpkg (a fresh machine's unattended upgrades) instead of failing at once.
lock_wait=(-o DPkg::Lock::Timeout=300)
if ! "${sudo[@]}" apt-get "${lock_wait[@]}" update -qq ||
  ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${lock_wait[@]}" install -y -qq "${missing[@]}" >/dev/null; then
  echo "resound tests: apt-get could not install: $packages (apt-get said why above). Fix that, or install them by hand, then rerun the tests:" >&2
  echo "  ${sudo[*]}${sudo[*]:+ }sh -c '$command_line'" >&2
  exit 1
fi

# Installed is not enough: the peers must work.
if ! /usr/bin/python3 -c 'import websockets' >/dev/null 2>&1; then
  echo "resound tests: python3-websockets was installed, but /usr/bin/python3 still cannot 'import websockets'." >&2
  exit 1
fi
if ! /usr/bin/python3 -c 'import prometheus_client.parser' >/dev/null 2>&1; then
  echo "resound tests: python3-prometheus-client was installed, but /usr/bin/python3 still cannot 'import prometheus_client.parser'." >&2
  exit 1
fi
if ! command -v curl >/dev/null 2>&1; then
  echo "resound tests: curl was installed, but is not on PATH." >&2
  exit 1
fi
if ! redis_works; then
  echo "resound tests: redis-server was installed, but '/usr/bin/redis-server --version' (or /usr/bin/redis-cli) still fails." >&2
  exit 1
fi
if ! chromium_works; then
  echo "resound tests: chromium was installed, but '/usr/bin/chromium --version' still fails." >&2
  exit 1
fi
