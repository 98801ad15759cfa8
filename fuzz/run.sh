#!/usr/bin/env bash
# fuzz/run.sh [seconds] [target] -- coverage-guided fuzzing with AFL++ and SharpFuzz of one target
# (default "frames": the ttrpc frame decoder and request dispatch), for a bounded time (default 60 s).
# Targets: dotnet fuzz/.work/bin/Shim.Ttrpc.Fuzz.dll --list (server-socket, client-responses,
# service-live, the request and recovery parsers). Exits non-zero when AFL++ found a
# crash or a hang; they are kept in fuzz/findings/<target>/default/{crashes,hangs} and can be replayed
# (full exception printed) with:
#   RCS_FUZZ_ROOT=fuzz/.work/root dotnet fuzz/.work/bin/Shim.Ttrpc.Fuzz.dll --target <target> --replay fuzz/findings/<target>/default/crashes/id:*
# Line and branch coverage per parser: fuzz/coverage.sh (the CsCheck tests of the same targets) and
# fuzz/coverage.sh --afl (the inputs these runs kept in fuzz/findings/<target>/default/queue).
#
# The target (fuzz/Shim.Ttrpc.Fuzz) reads one connection's bytes, decodes them frame by frame with
# the server's own rules (src/Shim.Ttrpc/RequestDecoder.cs) and runs every dispatched call on the
# real TaskService (no containers, runc refused, Create never invoked). Shim.Ttrpc.dll and
# Shim.Core.dll are instrumented for coverage.
#
# Needs: afl-fuzz (apt-get install afl++; installed here when missing and we are root) and the
# SharpFuzz.CommandLine dotnet tool (installed into fuzz/.work/tools). Environment:
#   RCS_FUZZ_FRESH=1   start from the seed corpus instead of resuming fuzz/findings
set -euo pipefail
seconds=${1:-60}
target=${2:-frames}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=$here/.work
findings=$here/findings/$target
# the live-container target's fixture: a fixed root, so the corpus's paths name it in every run
export RCS_FUZZ_ROOT=$work/root
mkdir -p "$work"

if ! command -v afl-fuzz >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "fuzz: installing afl++"
    (apt-get install -y -qq afl++ >/dev/null 2>&1) || { apt-get update -qq && apt-get install -y -qq afl++; }
  else
    echo "fuzz: afl-fuzz missing (apt-get install afl++)" >&2
    exit 1
  fi
fi
if [ ! -x "$work/tools/sharpfuzz" ]; then
  echo "fuzz: installing SharpFuzz.CommandLine 2.3.0"
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$work/tools" >/dev/null
fi

echo "fuzz: building the target (Release, JIT)"
rm -rf "$work/bin"
dotnet publish "$here/Shim.Ttrpc.Fuzz" -c Release -o "$work/bin" -nologo -tl:off -v q >"$work/publish.log" 2>&1 \
  || { cat "$work/publish.log"; echo "fuzz: build failed" >&2; exit 1; }
# seeds first: instrumented code only runs under afl-fuzz (it writes to AFL's shared memory)
seeds=$work/seeds
rm -rf "$seeds"
dotnet "$work/bin/Shim.Ttrpc.Fuzz.dll" --target "$target" --seeds "$seeds"
for dll in Shim.Ttrpc.dll Shim.Core.dll Shim.Os.dll Shim.Runc.dll; do
  "$work/tools/sharpfuzz" "$work/bin/$dll" >/dev/null
done
input=$seeds
if [ "${RCS_FUZZ_FRESH:-0}" != 1 ] && [ -d "$findings/default/queue" ]; then
  input=-   # resume the previous run's queue
else
  rm -rf "$findings"
  mkdir -p "$(dirname "$findings")"
fi

# dotnet itself is not instrumented (the assemblies are); a container has no core_pattern to set
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1 AFL_QUIET=1 AFL_NO_AFFINITY=1 DOTNET_TieredPGO=0
echo "fuzz: afl-fuzz for $seconds s (findings in $findings)"
afl-fuzz -i "$input" -o "$findings" -V "$seconds" -t 20000 -m none -- dotnet "$work/bin/Shim.Ttrpc.Fuzz.dll" --target "$target" >"$work/afl.log" 2>&1 || {
  tail -n 40 "$work/afl.log"
  echo "fuzz: afl-fuzz failed (log: $work/afl.log)" >&2
  exit 1
}

stats=$findings/default/fuzzer_stats
get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
crashes=$(get saved_crashes); hangs=$(get saved_hangs)
echo "fuzz: $target: $(get execs_done) execs in $(get run_time) s ($(get execs_per_sec)/s), corpus $(get corpus_count), edges $(get edges_found)/$(get total_edges), crashes $crashes, hangs $hangs"
if [ "${crashes:-0}" != 0 ] || [ "${hangs:-0}" != 0 ]; then
  echo "fuzz: FAILED: see $findings/default/crashes and hangs; replay with: RCS_FUZZ_ROOT=$RCS_FUZZ_ROOT dotnet $work/bin/Shim.Ttrpc.Fuzz.dll --target $target --replay FILE" >&2
  exit 1
fi
