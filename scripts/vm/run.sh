#!/usr/bin/env bash
# scripts/vm/run.sh -- run one command in a throw-away QEMU guest that has only the unified
# cgroup v2 hierarchy (kernel argument cgroup_no_v1=all), plain or with systemd as PID 1.
#
# The guest sees the host's / read-only (virtio-9p) under a tmpfs overlay: the same containerd,
# runc, ctr, busybox and this checkout at the same paths, writes stay in guest RAM. /tmp, /run and
# /var/lib/containerd are fresh tmpfs. No network but lo. One empty 64 MiB virtio disk (/dev/vda,
# reads return zeros) gives block I/O something to count. Needs the image of scripts/vm/image.sh.
#
# Usage: scripts/vm/run.sh [--systemd] [-t SECONDS] [-m MiB] [-c CPUS] [--out DIR] [--] CMD [ARG...]
#   CMD runs with bash in the current directory; its output streams here; the exit status is
#   CMD's (124: timeout, 125: the guest failed before CMD ended).
#   --systemd   boot the host's systemd as PID 1; CMD runs as rcsvm-job.service
#   --out DIR   inside the guest $RCS_VM_OUT is a writable folder; its files land in DIR afterwards
#   -t timeout including boot (default 1200)   -m guest memory (2048)   -c vCPUs (host cores)
# Environment: RCS_VM_DIR (image folder, default /var/cache/runcsharp-vm), RCS_VM_ACCEL=kvm|tcg
#   (default: KVM only where the CPU has vmx/svm, TCG otherwise), RCS_VM_PASS="VAR ..." variables
#   carried into the guest, RCS_VM_KEEP=1 keeps the job folder (console.log, qemu.log).
set -uo pipefail
img=${RCS_VM_DIR:-/var/cache/runcsharp-vm}
here=$(cd "$(dirname "$0")" && pwd)
systemd=0 timeout=1200 mem=2048 cpus=$(nproc) out=
while [ $# -gt 0 ]; do
  case "$1" in
    --systemd) systemd=1; shift ;;
    -t) timeout=$2; shift 2 ;;
    -m) mem=$2; shift 2 ;;
    -c) cpus=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n 2,21p "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: scripts/vm/run.sh [--systemd] [-t SECONDS] [--out DIR] [--] CMD [ARG...]" >&2; exit 2; }
if [ ! -s "$img/vmlinux" ] || [ ! -s "$img/initramfs.cpio.gz" ]; then
  echo "rcsvm: no guest image in $img (run scripts/vm/image.sh or scripts/setup.sh)" >&2; exit 125
fi
kver=$(cat "$img/kernel.version")
# this host's /dev/kvm may be an emulating one (PVM: no vmx/svm, a stock kernel stops with an
# internal error), so KVM only where the CPU shows real hardware virtualisation
accel=${RCS_VM_ACCEL:-tcg}
if [ -z "${RCS_VM_ACCEL:-}" ] && grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then accel=kvm; fi

job=$(mktemp -d /tmp/rcsvm-job.XXXXXX)
chmod 755 "$job"
mkdir -p "$job/out"
qpid= tpid=
finish() {
  [ -n "$qpid" ] && kill "$qpid" 2>/dev/null
  [ -n "$tpid" ] && kill "$tpid" 2>/dev/null
  if [ "${RCS_VM_KEEP:-0}" = 1 ]; then echo "rcsvm: job folder kept: $job" >&2; else rm -rf "$job"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

{ printf 'cd %q || exit 125\n' "$PWD"
  printf 'export RCS_VM_OUT=/.rcsvm/job/out RCS_VM_MODE=%s\n' "$([ $systemd = 1 ] && echo systemd || echo plain)"
  for v in ${RCS_VM_PASS:-}; do [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"; done
  printf 'exec'; printf ' %q' "$@"; printf '\n'; } > "$job/cmd"
: > "$job/output"
# the guest gets fresh /tmp, /run and /var/lib/containerd: init.sh brings this folder back there
# when it lies under one of them (CI may clone the repo into /tmp)
printf '%s\n' "$PWD" > "$job/cwd"
# no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can miss its ticks
# and panic ("IO-APIC + timer doesn't work!"); QEMU's timer is fine
append="console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
append+=" random.trust_cpu=1 rcsvm.modules=$img/kernel/lib/modules/$kver"
if [ $systemd = 1 ]; then
  cp "$here/guest/systemd.sh" "$job/stage2"
  append+=" systemd.unit=rcsvm.target systemd.hostname=rcsvm systemd.firstboot=no systemd.show_status=false"
else
  cp "$here/guest/plain.sh" "$job/stage2"
fi
case $accel in
  kvm) acc=(-enable-kvm -cpu host) ;;
  *) acc=(-accel tcg,thread=multi -cpu max) ;;
esac
start=$SECONDS
boot() {
timeout --signal=TERM "$((timeout - (SECONDS - start)))" qemu-system-x86_64 "${acc[@]}" -machine pc -m "$mem" -smp "$cpus" \
  -nodefaults -no-user-config -nographic -no-reboot -monitor none -serial "file:$job/console.log" \
  -kernel "$img/vmlinux" -initrd "$img/initramfs.cpio.gz" -append "$append" \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -fsdev local,id=job,path="$job",security_model=none,multidevs=remap \
  -device virtio-9p-pci,fsdev=job,mount_tag=job \
  -blockdev driver=null-co,node-name=zero,size=67108864,read-zeroes=on \
  -device virtio-blk-pci,drive=zero \
  -nic none </dev/null >"$job/qemu.log" 2>&1 &
qpid=$!
tail -n +1 -f --pid=$qpid "$job/output" 2>/dev/null &
tpid=$!
wait "$qpid"; qrc=$?
qpid=
wait "$tpid" 2>/dev/null; tpid=
}
boot
# a guest that stopped before its job started (a kernel panic at boot) is booted once more
if [ ! -f "$job/rc" ] && [ "$qrc" != 124 ] && ! grep -q 'job starts at' "$job/console.log"; then
  echo "rcsvm: the guest stopped before its job started; booting it again. Console tail:" >&2
  tail -n 5 "$job/console.log" >&2
  cp "$job/console.log" "$job/console.first.log"
  boot
fi
if [ -n "$out" ]; then mkdir -p "$out" && cp -r "$job/out/." "$out/"; fi
took=$((SECONDS - start))
if [ -f "$job/rc" ]; then
  rc=$(cat "$job/rc")
  echo "rcsvm: exit $rc after ${took}s ($accel; $(grep -o 'job starts at [0-9.]*s' "$job/console.log" | head -n1))" >&2
  exit "$rc"
fi
if [ "$qrc" = 124 ]; then rc=124; echo "rcsvm: timed out after ${timeout}s" >&2
else rc=125; echo "rcsvm: the guest stopped without a result (qemu status $qrc)" >&2; fi
echo "--- guest console (tail)" >&2; tail -n 30 "$job/console.log" >&2; tail -n 5 "$job/qemu.log" >&2
exit $rc
