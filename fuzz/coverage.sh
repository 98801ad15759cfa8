#!/usr/bin/env bash
# fuzz/coverage.sh [--afl] [--files] [dotnet test args...] -- line and branch coverage of every
# parser the fuzz targets aim at, as reached by tests/Shim.Ttrpc.Fuzz.Tests (the CsCheck runs of
# the same targets AFL++ runs, their seeds, and the regression inputs); with --afl, as reached by
# the inputs AFL++ kept in fuzz/findings/TARGET/default/queue instead (AflQueueReplayTests alone,
# replaying each in-process target's queue: not server-socket or service-live).
#
# Runs the tests once under coverlet (dotnet test --collect:"XPlat Code Coverage", settings in
# fuzz/coverage.runsettings: the shim's assemblies only), then prints one row per parser: the
# target that aims at it, covered/total lines and branches of the source behind it (whole files,
# or the named methods of a file the parser shares with other code). Parsers under 70% of lines
# are marked "<- low". --files adds a row per file. Extra arguments go to dotnet test, e.g.
#   fuzz/coverage.sh --filter 'FullyQualifiedName~ParserFuzzTests'
#   RCS_FUZZ_PARSER_INPUTS=100000 fuzz/coverage.sh          (more generated inputs per parser)
# The Cobertura XML stays in fuzz/.work/coverage/ (or $RCS_COVERAGE_DIR, for two runs at once:
# the second with --no-build). The normal test run (scripts/test.sh) collects no coverage:
# coverlet.collector only loads when --collect asks for it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out=${RCS_COVERAGE_DIR:-$here/.work/coverage}
files=0 afl=(--filter "Category!=AflReplay")
while [ $# -gt 0 ]; do
  case $1 in
    --files) files=1; shift ;;
    --afl) afl=(--filter "FullyQualifiedName~AflQueueReplayTests"); export RCS_FUZZ_FINDINGS=$here/findings; shift ;;
    *) break ;;
  esac
done

rm -rf "$out"
mkdir -p "$out"
status=0
dotnet test "$repo/tests/Shim.Ttrpc.Fuzz.Tests" -nologo -tl:off --collect:"XPlat Code Coverage" \
  --settings "$here/coverage.runsettings" --results-directory "$out" "${afl[@]+"${afl[@]}"}" "$@" >"$out/test.log" 2>&1 || status=$?
grep -E '^(Passed!|Failed!)|error|Total tests' "$out/test.log" | tail -n 5 || true
xml=$(find "$out" -name coverage.cobertura.xml | head -n 1)
if [ -z "$xml" ]; then
  tail -n 40 "$out/test.log"
  echo "coverage: no Cobertura report (log: $out/test.log)" >&2
  exit 1
fi

py=0
python3 - "$xml" "$repo" "$files" "${#afl[@]}" <<'PY' || py=$?
import os, re, sys, xml.etree.ElementTree as ET

xml, repo, show_files, afl = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] != "0"
# targets AflQueueReplayTests does not replay (a server, live containers): no --afl row
NOT_REPLAYED = {"server-socket", "service-live"}

# parser, fuzz target(s), and the source behind it: "file" (all of it) or "file::Method,Method"
PARSERS = [
    ("runtime options", "runtime-options", ["src/Shim.Core/Options/OptionsCodec.cs", "src/Shim.Core/Options/AnyOptions.cs", "src/Shim.Core/Options/RuntimeOptions.cs"]),
    ("CRI TOML / ConfigPath", "config-toml", ["src/Shim.Core/Options/CriOptionsToml.cs", "src/Shim.Core/Options/OptionsCodec.cs::ReadConfigFile"]),
    ("checkpoint options", "checkpoint-options", ["src/Shim.Core/Options/CheckpointRequestOptions.cs", "src/Shim.Core/Processes/InitProcess.Checkpoint.cs::CheckpointWorkParent"]),
    ("exec spec", "exec-spec", ["src/Shim.Core/Service/TaskService.Exec.cs::WithTerminal"]),
    ("stdio URIs", "stdio-uri", ["src/Shim.Core/Stdio/StdioUri.cs"]),
    ("mount options", "mount-options", ["src/Shim.Os/Mounting/MountOptions.cs", "src/Shim.Os/Mounting/IdMapping.cs", "src/Shim.Os/Mounting/MountTarget.cs", "src/Shim.Os/Mounting/OverlayLowerdirs.cs"]),
    ("bootstrap (start's stdin)", "bootstrap", ["src/Shim.Core/Cli/StartBootstrap.cs"]),
    ("shim args", "shim-args", ["src/Shim.Core/Cli/ShimArgs.cs"]),
    ("bundle files / exit records", "bundle-files", ["src/Shim.Core/Processes/ExitRecord.cs", "src/Shim.Core/Processes/PidFile.cs", "src/Shim.Core/Processes/Container.cs::SpecSharesPidNamespace", "src/Shim.Core/Options/OptionsCodec.cs::FromJson,ReadJson"]),
    ("runc log", "runc-log", ["src/Shim.Runc/RuncLog.cs"]),
    ("mountinfo", "mountinfo", ["src/Shim.Os/Mounting/MountInfo.cs"]),
    ("cgroup files", "cgroup-files", ["src/Shim.Core/Cgroups/ProcCgroup.cs", "src/Shim.Core/Cgroups/CgroupFiles.cs", "src/Shim.Core/Cgroups/RdmaFile.cs", "src/Shim.Core/Cgroups/HugePageSizes.cs",
        "src/Shim.Core/Cgroups/CgroupV1.cs", "src/Shim.Core/Cgroups/CgroupV1.Memory.cs", "src/Shim.Core/Cgroups/CgroupV1.Blkio.cs", "src/Shim.Core/Cgroups/CgroupV2.cs", "src/Shim.Core/Cgroups/CgroupFactory.cs::Load"]),
    ("ttrpc frame decoder", "frames", ["src/Shim.Ttrpc/RequestDecoder.cs", "src/Shim.Ttrpc/FrameHeader.cs"]),
    ("ttrpc server read loop", "server-socket", ["src/Shim.Ttrpc/ServerConnection.cs", "src/Shim.Ttrpc/FrameReader.cs"]),
    # what a peer's bytes alone cannot reach (stall timeouts, connection bounds, accept errors,
    # shutdown): shown for the record, tested by tests/Shim.Ttrpc.Tests rather than fuzzed
    ("(ttrpc server bounds)", "server-socket", ["src/Shim.Ttrpc/TtrpcServer.cs", "src/Shim.Ttrpc/StallSweep.cs"]),
    ("ttrpc client responses", "client-responses", ["src/Shim.Ttrpc/TtrpcClient.cs", "src/Shim.Ttrpc/FrameReader.cs"]),
    ("task service requests", "service-live", ["src/Shim.Core/Service/TaskService.cs", "src/Shim.Core/Service/TaskService.Create.cs", "src/Shim.Core/Service/TaskService.Exec.cs",
        "src/Shim.Core/Service/TaskService.Lifecycle.cs", "src/Shim.Core/Service/TaskService.Checkpoint.cs", "src/Shim.Core/Service/Identifiers.cs"]),
    ("Update resources", "service-live", ["src/Shim.Core/Service/TaskService.Lifecycle.cs::UpdateAsync", "src/Shim.Core/Processes/InitProcess.cs::UpdateAsync,RunUpdateAsync",
        "src/Shim.Core/Processes/States/InitState.cs::UpdateAsync", "src/Shim.Runc/RuncClient.cs::UpdateAsync"]),
]

root = ET.parse(xml).getroot()
sources = [s.text or "" for s in root.iter("source")]

def relative(filename):
    for base in [""] + sources:
        path = os.path.normpath(os.path.join(base, filename))
        if os.path.isabs(path) and path.startswith(repo + os.sep):
            return path[len(repo) + 1:]
    return filename.replace(os.sep, "/")

def in_method(cls, method, wanted):
    # async methods and lambdas become compiler classes and methods named <Method>...
    name = method.get("name", "")
    return any(name == m or name.startswith(f"<{m}>") or f"<{m}>" in cls.get("name", "") for m in wanted)

# (file, line) -> [hits, branches covered, branches total]; a line listed by several classes or
# methods (partials, lambdas) counts once with its best numbers
by_file = {}
def add(path, line):
    key = int(line.get("number"))
    lines = by_file.setdefault(path, {})
    hits = int(line.get("hits", "0"))
    covered = total = 0
    m = re.search(r"\((\d+)/(\d+)\)", line.get("condition-coverage", ""))
    if line.get("branch") == "True" and m:
        covered, total = int(m.group(1)), int(m.group(2))
    old = lines.get(key, (0, 0, 0, None))
    lines[key] = (max(old[0], hits), max(old[1], covered), max(old[2], total), old[3])

methods = {}   # path -> list of (cls, method) to select lines by method
for cls in root.iter("class"):
    path = relative(cls.get("filename", ""))
    for line in cls.find("lines") or []:
        add(path, line)
    for method in cls.iter("method"):
        methods.setdefault(path, []).append((cls, method))

def tally(spec):
    path, _, names = spec.partition("::")
    lines = by_file.get(path)
    if lines is None:
        return None
    keys = set(lines)
    if names:
        wanted = names.split(",")
        keys = {int(l.get("number")) for cls, m in methods.get(path, []) if in_method(cls, m, wanted) for l in m.iter("line")}
    rows = [lines[k] for k in keys if k in lines]
    return (sum(1 for r in rows if r[0] > 0), len(rows), sum(r[1] for r in rows), sum(r[2] for r in rows))

def pct(a, b):
    return f"{100 * a / b:5.1f}%" if b else "    -"

print(f"{'parser':30} {'target':18} {'lines':>16} {'branches':>16}")
missing = []
for name, target, specs in PARSERS:
    if afl and target in NOT_REPLAYED:
        print(f"{name:30} {target:18} (its queue is not replayed)")
        continue
    parts = []
    for spec in specs:
        t = tally(spec)
        if t is None or t[1] == 0:
            missing.append(spec)
        else:
            parts.append((spec, t))
    lc, lt, bc, bt = (sum(p[1][i] for p in parts) for i in range(4))
    low = "  <- low" if lt and lc / lt < 0.7 else ""
    print(f"{name:30} {target:18} {pct(lc, lt)} {lc:4}/{lt:<4} {pct(bc, bt)} {bc:4}/{bt:<4}{low}")
    if show_files:
        for spec, (lc, lt, bc, bt) in parts:
            print(f"    {spec:70} {pct(lc, lt)} {lc:4}/{lt:<4} {pct(bc, bt)} {bc:4}/{bt:<4}")
for spec in missing:
    print(f"coverage: no lines for {spec} in the report (renamed or moved?)", file=sys.stderr)
sys.exit(1 if missing else 0)
PY
echo "coverage: report $xml"
if [ $status != 0 ]; then echo "coverage: dotnet test failed (log: $out/test.log)" >&2; exit $status; fi
exit $py
