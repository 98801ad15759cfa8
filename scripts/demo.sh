#!/usr/bin/env bash
# scripts/demo.sh -- set up, build, and run one container through containerd-shim-runcsharp-v2
# under a private containerd (own root, state and sockets under /tmp/rcs-demo-XXXX; the
# system's containerd, if any, is never touched). Everything is cleaned up on exit.
#
# Environment (optional):
#   RCS_RUNTIME=io.containerd.runc.v2   run through another runtime (e.g. the stock Go shim)
#   RCS_SKIP_BUILD=1                    use dist/ as it is instead of running setup.sh + build.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
runtime=${RCS_RUNTIME:-io.containerd.runcsharp.v2}
ns=runcsharp-demo

if [ "${RCS_SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/setup.sh
  if ! bash scripts/build.sh; then
    echo "demo: FAILED: the shim did not build (see above); nothing was run" >&2
    exit 1
  fi
fi
if [ "$runtime" = io.containerd.runcsharp.v2 ] && [ ! -x dist/containerd-shim-runcsharp-v2 ]; then
  echo "demo: FAILED: dist/containerd-shim-runcsharp-v2 is missing (run scripts/build.sh)" >&2
  exit 1
fi

. scripts/lib/ctrd.sh
. scripts/lib/rootfs.sh

dir=$(mktemp -d /tmp/rcs-demo-XXXX)
CTRD_DIR=$dir          # so the trap cleans up even if the daemon never starts
trap 'ctrd_stop' EXIT
trap 'exit 130' INT TERM

ctrd_start "$dir" "$repo/dist"
echo "demo: private containerd pid $CTRD_PID, socket $CTRD_SOCK, runtime $runtime"
mkrootfs "$dir/rootfs"

set +e
out=$(ctrd_ctr "$ns" run --rm --fifo-dir "$dir/fifo" --runtime "$runtime" \
  --rootfs --env PATH=/bin "$dir/rootfs" demo1 /bin/echo "hello from runcsharp" 2>"$dir/ctr.err")
rc=$?
set -e
echo "demo: ctr run exited $rc; the container printed:"
printf '%s\n' "$out"
if [ $rc -ne 0 ] || [ "$out" != "hello from runcsharp" ]; then
  echo "demo: FAILED; ctr said:" >&2
  cat "$dir/ctr.err" >&2
  echo "demo: tail of the containerd log:" >&2
  tail -n 30 "$dir/containerd.log" >&2
  exit 1
fi
echo "demo: OK"
