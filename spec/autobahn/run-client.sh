#!/usr/bin/env bash
# Runs the official Autobahn testsuite in client mode (fuzzingserver) against resound's connect().
# Docker, or a local `wstest` (on the PATH, or WSTEST='command'): see testsuite.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/testsuite.sh"

if ! testsuite_available; then
  cat >&2 <<'MSG'
The Autobahn testsuite runs in Docker or from a local `wstest`, and neither is here.
Where Docker works, or with `wstest` on the PATH (or WSTEST='command'),
`npm run autobahn:client` does everything. Otherwise:
  1. on a machine with Docker, start the fuzzing server:
       docker run --rm --net=host -v "$PWD/spec/autobahn:/config" \
         -v "$PWD/spec/autobahn/reports:/reports" crossbario/autobahn-testsuite \
         wstest -m fuzzingserver -s /config/fuzzingserver.json
  2. drive resound's client through it: node dist/spec/autobahn/client-driver.js ws://127.0.0.1:9001
  3. summarise:  node dist/spec/autobahn/summarize.js spec/autobahn/reports/clients/index.json
MSG
  exit 2
fi

config=$(write_config "$here/fuzzingserver.json" clients "${1:-}")
# Its own process group (set -m), so that stopping it also stops the wstest
# or docker process the subshell started.
set -m
run_testsuite fuzzingserver "$config" &
fuzzer_pid=$!
set +m
trap 'kill -- -"$fuzzer_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  (exec 3<>/dev/tcp/127.0.0.1/9001) 2>/dev/null && break
  sleep 1
done
# A fuzzing server that could not start (port 9001 taken) must not let the
# driver test whatever else answers there.
if ! kill -0 "$fuzzer_pid" 2>/dev/null; then
  echo "the fuzzing server did not start (is port 9001 in use?)" >&2
  exit 1
fi

node "$root/dist/spec/autobahn/client-driver.js" ws://127.0.0.1:9001
node "$root/dist/spec/autobahn/summarize.js" "$reports/clients/index.json"
