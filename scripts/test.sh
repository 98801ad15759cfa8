#!/usr/bin/env bash
# scripts/test.sh -- set up, build the shim, run every test project, print one summary line:
#   N passed, N failed, N skipped
# Exit status is non-zero when anything failed (the build included), no test ran at all, or
# (under CI=true or CI=1) any test was skipped.
# Keeps going when one project fails. TRX files land in TestResults/ (or $RCS_RESULTS_DIR).
#
# The end-to-end project (tests/Shim.E2E.Tests) runs once per containerd line: 1.6 (the
# system's) always, then every line scripts/fetch-versions.sh fetched (1.7 and 2.1, listed in
# $RCS_VERSIONS_DIR/versions.env); each run gets its own TRX (Shim.E2E.Tests@<line>.trx) and all
# of them count in the summary line. Under CI=true a missing line (1.7 or 2.1) is an error.
# tests/Shim.VmE2E.Tests boots cgroup v2 QEMU guests (scripts/vm/) and runs once.
#
# Usage: scripts/test.sh [tests/Project ...]        (default: every tests/*/*.csproj)
# Environment (optional):
#   CI=true (or 1)          tests fail instead of skipping when a prerequisite is missing; any skip fails the run
#   RCS_E2E_RUNTIME=...     run the end-to-end tests against another runtime (io.containerd.runc.v2)
#   RCS_CONTAINERD="1.7"    run the end-to-end tests against these lines only (default: all there)
#   RCS_VERSIONS_DIR=...    where fetch-versions.sh keeps its cache (default /var/cache/runcsharp-versions)
#   RCS_SKIP_BUILD=1        skip setup.sh and build.sh (use dist/ as it is)
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
results=${RCS_RESULTS_DIR:-$repo/TestResults}
problems=()

if [ "${RCS_SKIP_BUILD:-0}" != 1 ]; then
  if ! bash scripts/setup.sh; then
    echo "test: FAILED: scripts/setup.sh (see above)" >&2
    exit 1
  fi
  if ! bash scripts/build.sh; then
    # unit tests still run and report; the end-to-end tests fail under CI (no binary) or skip
    problems+=("scripts/build.sh failed: dist/containerd-shim-runcsharp-v2 was not built")
    echo "test: BUILD FAILED; running the tests anyway, the run will fail" >&2
  fi
fi

if [ $# -gt 0 ]; then
  projects=()
  for p in "$@"; do
    if [ -d "$p" ]; then projects+=("$(ls "$p"/*.csproj)"); else projects+=("$p"); fi
  done
else
  projects=(tests/*/*.csproj)
fi

# containerd lines for the end-to-end project
versions_env=${RCS_VERSIONS_DIR:-/var/cache/runcsharp-versions}/versions.env
fetched=$( (set +u; . "$versions_env" 2>/dev/null && echo "${RCS_CONTAINERD_VERSIONS:-}") || true)
if [ -n "${RCS_CONTAINERD:-}" ]; then
  lines=$RCS_CONTAINERD
else
  lines="1.6 $fetched"
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    # 1.7 from trixie and whatever 2.x sid serves (2.1 today; the key follows the fetched version)
    for need in '1.7' '2.*'; do
      case " $fetched " in *" "$need" "*) ;; *)
        problems+=("containerd $need is not available (scripts/fetch-versions.sh did not fetch it; see $versions_env): under CI every line must run") ;;
      esac
    done
  elif [ -z "$fetched" ]; then
    echo "test: only containerd 1.6 (run scripts/fetch-versions.sh for 1.7 and 2.1)"
  fi
fi

# run_project PROJ TRXNAME [dotnet test args...]
run_project() {
  local proj=$1 trx=$2; shift 2
  # --blame-hang-timeout: a hung test host is killed and reported instead of eating the CI budget
  local rc=0
  dotnet test "$proj" -nologo -tl:off "$@" \
        --logger "trx;LogFileName=$trx.trx" --logger "console;verbosity=normal" \
        --results-directory "$results" \
        --blame-hang-timeout 20m --blame-hang-dump-type none || rc=$?
  if [ ! -s "$results/$trx.trx" ]; then
    problems+=("$trx produced no results (build failure or crashed test host)")
  elif [ $rc -ne 0 ] && ! grep -qE '<Counters [^>]*(failed|error|timeout|aborted)="[1-9]' "$results/$trx.trx"; then
    # a hung or crashed test host leaves a TRX of the tests that finished, none failed: the rest never ran
    problems+=("$trx: dotnet test exited $rc with no failed test in its results (a hung or crashed test host; the tests after the last one reported did not run)")
  elif [ $rc -ne 0 ]; then
    echo "test: $trx reported failures"
  fi
}

rm -rf "$results"
mkdir -p "$results"
for proj in "${projects[@]}"; do
  name=$(basename "$proj" .csproj)
  if [ "$name" = Shim.E2E.Tests ]; then
    built=0
    for line in $lines; do
      echo "test: === $name on containerd $line ==="
      start=$SECONDS
      # the pod benchmark (bench/pods, built into this project) is bench/run.sh's, never a test run's;
      # containerd 1.x has no shim sandboxer (sandboxer = "shim" came with 2.0)
      filter="Category!=Bench"
      case $line in 1.*) filter="$filter&Category!=Sandboxer" ;; esac
      if [ $built = 1 ]; then
        # the soak tests measure our shim's own leaks: once, under the first line, is enough
        RCS_CONTAINERD=$line run_project "$proj" "$name@$line" --no-build --filter "Category!=Soak&$filter"
      else
        RCS_CONTAINERD=$line run_project "$proj" "$name@$line" --filter "$filter"; built=1
      fi
      echo "test: $name on containerd $line took $((SECONDS - start)) s"
    done
  elif [ "$name" = Shim.VmE2E.Tests ]; then
    # cgroup v2 and runc's systemd driver: QEMU guests (scripts/vm/run.sh; plain init, systemd as
    # PID 1), containerd 1.6 and 2.1 in each, plus the package install/upgrade guest; one TRX. Under CI=true a missing guest
    # image, qemu or line fails these tests instead of skipping them.
    echo "test: === $name (cgroup v2 guests) ==="
    start=$SECONDS
    run_project "$proj" "$name"
    echo "test: $name took $((SECONDS - start)) s"
  elif [ "$name" = Shim.Ttrpc.Fuzz.Tests ]; then
    # AflReplay replays AFL's queues (fuzz/coverage.sh --afl), which a clean clone has none of
    echo "test: === $name ==="
    run_project "$proj" "$name" --filter "Category!=AflReplay"
  else
    echo "test: === $name ==="
    run_project "$proj" "$name"
  fi
done

passed=0 failed=0 skipped=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  # <Counters total=".." executed=".." passed=".." failed=".." error=".." timeout=".." aborted=".." .../>
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n1)
  get() { printf '%s' "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]\+' || echo 0; }
  # a skipped xunit test is counted in total but not in executed (its UnitTestResult is NotExecuted)
  p=$(get passed); f=$(( $(get failed) + $(get error) + $(get timeout) + $(get aborted) )); s=$(( $(get total) - $(get executed) ))
  echo "test: $(basename "$trx" .trx): $p passed, $f failed, $s skipped"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done

# name every failed test with the head of its message, next to the summary (a CI log may keep only its tail)
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  python3 - "$trx" <<'PY' || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
name = sys.argv[1].rsplit("/", 1)[-1][:-4]
for r in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") == "NotExecuted":
        reason = " ".join(r.findtext(".//t:StdOut", "", ns).split()) or " ".join(r.findtext(".//t:Message", "", ns).split())
        print(f"test: SKIPPED in {name}: {r.get('testName')}: {reason[:300]}")
        continue
    if r.get("outcome") == "Passed":
        continue
    msg = r.findtext(".//t:Message", "", ns).strip().splitlines()
    print(f"test: FAILED in {name}: {r.get('testName')} ({r.get('duration')})")
    for line in msg[:8]:
        print(f"test:     {line[:300]}")
PY
done
if { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; } && [ "$skipped" -gt 0 ]; then
  # green under CI must mean every test ran (the SKIPPED lines above name them)
  problems+=("$skipped test(s) skipped under CI=${CI}: a CI run must not skip anything")
fi
for m in "${problems[@]+"${problems[@]}"}"; do echo "test: PROBLEM: $m" >&2; done
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$failed" -gt 0 ] || [ ${#problems[@]} -gt 0 ]; then exit 1; fi
if [ $((passed + failed)) -eq 0 ]; then echo "test: no test ran" >&2; exit 1; fi
exit 0
