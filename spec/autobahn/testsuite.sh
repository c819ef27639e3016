# Shared by run.sh and run-client.sh (sourced): find the Autobahn testsuite and
# write the run's config. The testsuite runs from Docker, or from a local
# install: `wstest` on the PATH, or the command in $WSTEST
# (e.g. WSTEST='python3 /opt/autobahn/wstest.py').
image=crossbario/autobahn-testsuite
reports="$here/reports"

wstest=${WSTEST:-}
if [ -z "$wstest" ] && command -v wstest >/dev/null 2>&1; then wstest=wstest; fi

# True when the testsuite can run here.
testsuite_available() {
  [ -n "$wstest" ] || docker info >/dev/null 2>&1
}

# write_config SOURCE REPORT_SUBDIR [CASES]: the committed config, with the case
# filter if given, and the report folder as the testsuite sees it (inside the
# container, or here). Prints the config's path.
write_config() {
  local source=$1 subdir=$2 cases=${3:-}
  local config="$reports/$(basename "$source" .json).run.json"
  local outdir="/reports/$subdir"
  if [ -n "$wstest" ]; then outdir="$reports/$subdir"; fi
  mkdir -p "$reports"
  node -e '
    const fs = require("node:fs");
    const [src, dst, outdir, cases] = process.argv.slice(1);
    const c = JSON.parse(fs.readFileSync(src, "utf8"));
    c.outdir = outdir;
    if (cases) c.cases = cases.split(",");
    fs.writeFileSync(dst, JSON.stringify(c, null, 2));
  ' "$source" "$config" "$outdir" "$cases"
  echo "$config"
}

# run_testsuite MODE CONFIG: wstest in the given mode (fuzzingclient, fuzzingserver).
run_testsuite() {
  local mode=$1 config=$2
  if [ -n "$wstest" ]; then
    # From the reports folder: the testsuite may write files beside it.
    (cd "$reports" && exec $wstest -m "$mode" -s "$config")
  else
    docker run --rm --net=host -v "$reports:/reports" \
      "$image" wstest -m "$mode" -s "/reports/$(basename "$config")"
  fi
}
