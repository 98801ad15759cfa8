#!/usr/bin/env bash
# bench/run.sh -- the issue-7 benchmark in one command: our shim against the Go shims under a
# private containerd 1.6 (system) and a private containerd 2.1 (scripts/fetch-versions.sh), plus
# `runc run` as the floor. Runtimes interleaved round by round; medians and ratios; a markdown
# table on stdout and every sample in bench/results/latest.json. See bench/README.md and the
# docstring of bench/bench.py for what each figure is and how it is taken.
#
#   sudo bench/run.sh                     quick defaults (under 10 minutes on 2 busy cores, plus ~15 for the probe phase)
#   RCS_BENCH_PHASES=probe sudo -E bench/run.sh   the spaced exec-probe rhythm alone (issue 14)
#   RCS_BENCH_PHASES=pods sudo -E bench/run.sh    pods through CRI on 2.1: shim sandboxer vs pause (issue 22; not in the default phases)
#   RCS_BENCH_PHASES=node sudo -E bench/run.sh    110 pods per handler through CRI on 1.6 and 2.1 (issue 24; not in the default phases)
#   RCS_BENCH_SAMPLES=50 RCS_BENCH_IDLE=50 RCS_BENCH_EXECS=2000 RCS_BENCH_EXECMEM_RUNTIMES=all \
#     sudo -E bench/run.sh              the full one (about an hour here)
#
# Knobs (environment): RCS_BENCH_SAMPLES=20 (ctr run --rm), RCS_BENCH_EXEC_SAMPLES=20,
# RCS_BENCH_IDLE=20, RCS_BENCH_START_SAMPLES=20, RCS_BENCH_STDOUT_RUNS=3,
# RCS_BENCH_STDOUT_BYTES=1073741824, RCS_BENCH_STDOUT_WRITERS="head dd", RCS_BENCH_EXECS=500, RCS_BENCH_EXEC_PAR=2,
# RCS_BENCH_EXECMEM_RUNTIMES=ours (or "ours go16 go21" / all),
# RCS_BENCH_PROBE_PODS=6, RCS_BENCH_PROBE_PERIOD=2, RCS_BENCH_PROBE_SECONDS=120, RCS_BENCH_PROBE_SETTLE=15,
# RCS_BENCH_PROBE_IDLE=60, RCS_BENCH_PROBE_GROUP=3, RCS_BENCH_PROBE_MODES="separate grouped",
# RCS_BENCH_LINES="1.6 2.1", RCS_BENCH_PHASES="latency exec idle start stdout execmem probe",
# RCS_RUNTIME=io.containerd.runc.v2 (put the line's stock shim in "ours": an A/A run, the noise
# floor of the method), RCS_SKIP_BUILD=1 (use dist/ as it is), RCS_FORCE_BUILD=1.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bin=dist/containerd-shim-runcsharp-v2

if [ "$(id -u)" != 0 ]; then echo "bench: FAILED: run as root" >&2; exit 1; fi
if [ "${RCS_SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/setup.sh >&2
  # build unless dist/ holds a binary newer than every source file
  if [ "${RCS_FORCE_BUILD:-0}" = 1 ] || [ ! -x "$bin" ] || \
     [ -n "$(find src Directory.Build.props Directory.Build.targets Directory.Packages.props -newer "$bin" \
               -type f ! -path '*/bin/*' ! -path '*/obj/*' -print -quit 2>/dev/null)" ]; then
    bash scripts/build.sh >&2 || { echo "bench: FAILED: the shim did not build" >&2; exit 1; }
  else
    echo "bench: $bin is newer than the sources, not rebuilding (RCS_FORCE_BUILD=1 to force)" >&2
  fi
fi
if [ "${RCS_RUNTIME:-io.containerd.runcsharp.v2}" = io.containerd.runcsharp.v2 ] && [ ! -x "$bin" ]; then
  echo "bench: FAILED: $bin is missing (run scripts/build.sh)" >&2
  exit 1
fi
# the pod phase (issue 22) runs through CRI with the E2E project's private containerd 2.1 and its
# CNI (scripts/fetch-versions.sh): bench/pods/PodBench.cs, results in bench/results/pods.{md,json}
phases=" ${RCS_BENCH_PHASES:-latency exec idle start stdout execmem probe} "
if [[ $phases == *" pods "* ]]; then
  RCS_CONTAINERD=2.1 dotnet test tests/Shim.E2E.Tests -nologo -tl:off --filter "FullyQualifiedName~Cri.PodBench" \
    --logger "console;verbosity=normal" >&2 || { echo "bench: FAILED: the pod phase" >&2; exit 1; }
  cat bench/results/pods.md
  phases=${phases/ pods / }
fi
# the node phase (issue 24): bench/node/NodeBench.cs on each line in RCS_BENCH_NODE_LINES (default
# "1.6 2.1": our handler against that line's Go shim), results in bench/results/node-<line>.{md,json}
if [[ $phases == *" node "* ]]; then
  for line in ${RCS_BENCH_NODE_LINES:-1.6 2.1}; do
    RCS_CONTAINERD=$line dotnet test tests/Shim.E2E.Tests -nologo -tl:off --filter "FullyQualifiedName~Cri.NodeBench" \
      --logger "console;verbosity=normal" >&2 || { echo "bench: FAILED: the node phase on $line" >&2; exit 1; }
    cat "bench/results/node-$line.md"
  done
  phases=${phases/ node / }
fi
export RCS_BENCH_PHASES=${phases# }
[ -n "${RCS_BENCH_PHASES// /}" ] || exit 0
exec python3 bench/bench.py
