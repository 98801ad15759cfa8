#!/usr/bin/env bash
# bench/run.sh -- our shim against containerd's stock Go shim (containerd-shim-runc-v2), in one
# run under one private containerd, interleaved:
#   1. `ctr run --rm ... /bin/true` latency, N samples per runtime, alternating the order each
#      round, plus `runc run` of the same rootfs alone as the floor;
#   2. per-shim PSS / RSS / threads with 10 idle `sleep` containers per runtime.
# Prints a table and writes bench/results/latest.json. Cleans up like the tests do.
#
# Environment (optional):
#   RCS_BENCH_SAMPLES=25            latency samples per runtime (>= 20 for the note)
#   RCS_BENCH_IDLE=10               idle containers per runtime for the memory figures
#   RCS_RUNTIME=io.containerd.runc.v2  replace "ours" (e.g. to try the script before the shim builds)
#   RCS_SKIP_BUILD=1                use dist/ as it is instead of running setup.sh + build.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
ours=${RCS_RUNTIME:-io.containerd.runcsharp.v2}
stock=io.containerd.runc.v2
samples=${RCS_BENCH_SAMPLES:-25}
idle=${RCS_BENCH_IDLE:-10}
ns=rcs-bench

if [ "${RCS_SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/setup.sh
  bash scripts/build.sh || { echo "bench: FAILED: the shim did not build" >&2; exit 1; }
fi
if [ "$ours" = io.containerd.runcsharp.v2 ] && [ ! -x dist/containerd-shim-runcsharp-v2 ]; then
  echo "bench: FAILED: dist/containerd-shim-runcsharp-v2 is missing (run scripts/build.sh)" >&2
  exit 1
fi

. scripts/lib/ctrd.sh
. scripts/lib/rootfs.sh

dir=$(mktemp -d /tmp/rcs-bench-XXXX)
CTRD_DIR=$dir
trap 'ctrd_stop' EXIT
trap 'exit 130' INT TERM
ctrd_start "$dir" "$repo/dist"
mkrootfs "$dir/rootfs"

# the floor: runc alone on an OCI bundle of the same rootfs, running /bin/true
mkdir -p "$dir/bundle" "$dir/runc-floor"
( cd "$dir/bundle" && runc spec )
python3 - "$dir/bundle/config.json" "$dir/rootfs" <<'PY'
import json, sys
path, rootfs = sys.argv[1], sys.argv[2]
spec = json.load(open(path))
spec["root"] = {"path": rootfs, "readonly": True}
spec["process"]["terminal"] = False
spec["process"]["args"] = ["/bin/true"]
spec["process"]["env"] = ["PATH=/bin"]
json.dump(spec, open(path, "w"))
PY

run_ctr() {  # RUNTIME ID
  ctrd_ctr "$ns" run --rm --fifo-dir "$dir/fifo" --runtime "$1" --rootfs --env PATH=/bin \
    "$dir/rootfs" "$2" /bin/true </dev/null >/dev/null
}
run_floor() {  # ID
  runc --root "$dir/runc-floor" run --bundle "$dir/bundle" "$1" </dev/null >/dev/null
}
sample() {  # LABEL ROUND
  local label=$1 i=$2 t0 t1
  t0=$(date +%s%N)
  case "$label" in
    ours)  run_ctr "$ours" "lat-o-$i" ;;
    stock) run_ctr "$stock" "lat-s-$i" ;;
    floor) run_floor "lat-f-$i" ;;
  esac || { echo "bench: FAILED: $label run $i; tail of the containerd log:" >&2; tail -n 20 "$dir/containerd.log" >&2; exit 1; }
  t1=$(date +%s%N)
  echo "$label $(( (t1 - t0) / 1000 ))" >> "$dir/latency.txt"
}

echo "bench: latency, $samples samples each: ours=$ours stock=$stock floor=runc run"
for w in 1 2; do run_ctr "$ours" "warm-o-$w"; run_ctr "$stock" "warm-s-$w"; run_floor "warm-f-$w"; done
labels=(ours stock floor)
for i in $(seq 1 "$samples"); do
  for k in 0 1 2; do sample "${labels[$(( (i + k) % 3 ))]}" "$i"; done
done

shim_stats() {  # LABEL: one line per shim of this daemon: label pid pss_kb rss_kb threads
  local pid pss rss thr
  for pid in $(ctrd_shim_pids); do
    pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    thr=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    echo "$1 $pid ${pss:-0} ${rss:-0} ${thr:-0}"
  done
}
wait_no_shims() {
  local i
  for i in $(seq 1 100); do [ -z "$(ctrd_shim_pids)" ] && return 0; sleep 0.1; done
  echo "bench: shims still running: $(ctrd_shim_pids)" >&2
}

for label in ours stock; do
  rt=$ours; [ "$label" = stock ] && rt=$stock
  echo "bench: memory, $idle idle containers through $rt"
  for j in $(seq 1 "$idle"); do
    ctrd_ctr "$ns" run -d --fifo-dir "$dir/fifo" --runtime "$rt" --rootfs --env PATH=/bin \
      "$dir/rootfs" "idle-$label-$j" sleep 3600 >/dev/null
  done
  sleep 2   # let the shims settle after start-up
  shim_stats "$label" >> "$dir/memory.txt"
  ctrd_clean_namespaces
  wait_no_shims
done

mkdir -p bench/results
python3 - "$dir/latency.txt" "$dir/memory.txt" bench/results/latest.json "$ours" "$stock" "$idle" <<'PY'
import json, statistics, sys, platform, subprocess, datetime, os
lat_path, mem_path, out_path, ours, stock, idle = sys.argv[1:]
lat = {}
for line in open(lat_path):
    label, us = line.split(); lat.setdefault(label, []).append(int(us) / 1000.0)
mem = {}
for line in open(mem_path):
    label, pid, pss, rss, thr = line.split()
    mem.setdefault(label, []).append((int(pss), int(rss), int(thr)))
def ver(cmd):
    try: return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except Exception: return "?"
res = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "kernel": platform.release(), "cpus": os.cpu_count(),
       "containerd": ver(["containerd", "--version"]), "runc": ver(["runc", "--version"]),
       "runtimes": {"ours": ours, "stock": stock}, "latency_ms": {}, "memory_per_shim": {}}
print()
print(f"{'ctr run --rm true':<20} {'n':>4} {'median ms':>10} {'p90 ms':>8} {'min ms':>8}")
for label in ("ours", "stock", "floor"):
    v = sorted(lat.get(label, []))
    if not v: continue
    med = statistics.median(v); p90 = v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]
    res["latency_ms"][label] = {"n": len(v), "median": round(med, 2), "p90": round(p90, 2), "min": round(v[0], 2), "samples": [round(x, 2) for x in v]}
    name = {"floor": "runc run (floor)"}.get(label, label)
    print(f"{name:<20} {len(v):>4} {med:>10.1f} {p90:>8.1f} {v[0]:>8.1f}")
L = res["latency_ms"]
if "ours" in L and "stock" in L:
    res["latency_ratio_ours_over_stock"] = round(L["ours"]["median"] / L["stock"]["median"], 3)
    print(f"median ratio ours/stock: {res['latency_ratio_ours_over_stock']:.2f}")
if "floor" in L:
    for label in ("ours", "stock"):
        if label in L:
            over = round(L[label]["median"] - L["floor"]["median"], 2)
            res["latency_ms"][label]["median_over_floor"] = over
            print(f"{label} median above the runc floor: {over:.1f} ms")
print()
print(f"{'per shim (' + idle + ' idle)':<20} {'shims':>5} {'PSS KiB':>9} {'RSS KiB':>9} {'threads':>8}")
for label in ("ours", "stock"):
    v = mem.get(label, [])
    if not v: continue
    avg = lambda i: sum(x[i] for x in v) / len(v)
    res["memory_per_shim"][label] = {"shims": len(v), "pss_kib": round(avg(0), 1), "rss_kib": round(avg(1), 1), "threads": round(avg(2), 2)}
    print(f"{label:<20} {len(v):>5} {avg(0):>9.0f} {avg(1):>9.0f} {avg(2):>8.1f}")
M = res["memory_per_shim"]
if "ours" in M and "stock" in M:
    res["memory_ratio_ours_over_stock"] = {k: round(M["ours"][k] / M["stock"][k], 3) for k in ("pss_kib", "rss_kib", "threads")}
    r = res["memory_ratio_ours_over_stock"]
    print(f"ratio ours/stock: PSS {r['pss_kib']:.2f}, RSS {r['rss_kib']:.2f}, threads {r['threads']:.2f}")
json.dump(res, open(out_path, "w"), indent=2)
print(f"\nwritten: {out_path}")
PY
