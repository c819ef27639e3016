#!/usr/bin/env bash
# Runs the official Autobahn testsuite (fuzzingclient) against `resound echo`.
# Usage: npm run autobahn [-- CASES]   e.g. npm run autobahn -- '1.*,6.4.*'
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=9001
image=crossbario/autobahn-testsuite

if ! docker info >/dev/null 2>&1; then
  cat >&2 <<'MSG'
The Autobahn testsuite runs in Docker, and no Docker engine answers here.
Where Docker works, `npm run autobahn` does everything. Without it:
  1. start the target:   npm run echo -- --port 9001
  2. on a machine with Docker and access to that port, run
       docker run --rm --net=host -v "$PWD/spec/autobahn:/config" \
         -v "$PWD/spec/autobahn/reports:/reports" crossbario/autobahn-testsuite \
         wstest -m fuzzingclient -s /config/fuzzingclient.json
  3. summarise:           node dist/spec/autobahn/summarize.js spec/autobahn/reports/server/index.json
The same RFC 6455 rules are checked byte by byte by `npm test` (spec/protocol).
MSG
  exit 2
fi

config="$here/fuzzingclient.json"
if [ "${1:-}" != "" ]; then
  # A case filter: write a temporary config with just those cases.
  config="$here/reports/fuzzingclient.filtered.json"
  mkdir -p "$here/reports"
  node -e '
    const fs = require("node:fs");
    const [src, dst, cases] = process.argv.slice(1);
    const c = JSON.parse(fs.readFileSync(src, "utf8"));
    c.cases = cases.split(",");
    fs.writeFileSync(dst, JSON.stringify(c, null, 2));
  ' "$here/fuzzingclient.json" "$config" "$1"
fi

node "$root/dist/lib/cli.js" echo --host 127.0.0.1 --port "$port" --quiet &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
sleep 1

mkdir -p "$here/reports"
docker run --rm --net=host \
  -v "$(dirname "$config"):/config" \
  -v "$here/reports:/reports" \
  "$image" wstest -m fuzzingclient -s "/config/$(basename "$config")"

node "$root/dist/spec/autobahn/summarize.js" "$here/reports/server/index.json"
