#!/usr/bin/env bash
# Runs the official Autobahn testsuite (fuzzingclient) against `resound echo`.
# Usage: npm run autobahn [-- CASES]   e.g. npm run autobahn -- '1.*,6.4.*'
# Docker, or a local `wstest` (on the PATH, or WSTEST='command'): see testsuite.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=9001
source "$here/testsuite.sh"

if ! testsuite_available; then
  cat >&2 <<'MSG'
The Autobahn testsuite runs in Docker or from a local `wstest`, and neither is here.
Where Docker works, or with `wstest` on the PATH (or WSTEST='command'),
`npm run autobahn` does everything. Otherwise:
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

config=$(write_config "$here/fuzzingclient.json" server "${1:-}")

node "$root/dist/lib/cli.js" echo --host 127.0.0.1 --port "$port" --quiet &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
sleep 1

run_testsuite fuzzingclient "$config"
node "$root/dist/spec/autobahn/summarize.js" "$reports/server/index.json"
