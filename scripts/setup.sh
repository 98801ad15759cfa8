#!/usr/bin/env bash
# scripts/setup.sh -- make a Debian 12 machine ready to build and test runcsharp.
# Idempotent: installs with apt only what is missing (containerd, runc, crun, busybox-static, python3,
# python3-seccomp for the tests that refuse the shim a syscall, e2fsprogs for the frozen-volume tests,
# lintian and binutils' objdump for scripts/package.sh, strace for a start-up test),
# checks that the .NET 10 SDK is there (it is not installed by this script), then runs
# scripts/fetch-versions.sh (containerd 1.7 / 2.x, sid's runc, CNI plugins and Docker, cached in
# /var/cache/runcsharp-versions without touching the system's apt state).
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
# ldd fails ("not a dynamic executable") on a static binary
static_busybox() { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }

{ have containerd && have ctr && have containerd-shim-runc-v2; } || missing+=(containerd)
have runc || [ -x /usr/sbin/runc ] || missing+=(runc)
# crun as a BinaryName: the tests read its errors (on cgroup v1 it runs no container; the VM suite can)
have crun || missing+=(crun)
static_busybox || missing+=(busybox-static)
have python3 || missing+=(python3)
ls /usr/lib/python3/dist-packages/seccomp.*.so >/dev/null 2>&1 || missing+=(python3-seccomp)
have mkfs.ext4 || [ -x /usr/sbin/mkfs.ext4 ] || missing+=(e2fsprogs)
have lintian || missing+=(lintian)
have objdump || missing+=(binutils)
# the start-up test of the published binary (RuntimeStartupTests) reads what it opens
have strace || missing+=(strace)
# rootless containerd in the VM suite's guests (they see this host's /usr): rootlesskit, its
# newuidmap/newgidmap and its user-mode network
have rootlesskit || missing+=(rootlesskit)
have newuidmap || missing+=(uidmap)
have slirp4netns || missing+=(slirp4netns)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages: ${missing[*]}; run this script as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "setup: containerd, runc, crun, busybox-static, python3, python3-seccomp, e2fsprogs, lintian, binutils, strace, rootlesskit, uidmap and slirp4netns are installed"
fi

# the cgroup v2 guest of the VM suite (tests/Shim.VmE2E.Tests): qemu-system-x86, Debian's kernel
# unpacked (not installed) and an initramfs in /var/cache/runcsharp-vm; a quick check once built
if ! bash "$(dirname "$0")/vm/image.sh"; then
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    echo "setup: FAILED: scripts/vm/image.sh (CI=true runs the cgroup v2 VM suite)" >&2
    exit 1
  fi
  echo "setup: WARNING: scripts/vm/image.sh failed; the VM suite will skip" >&2
fi

# a criu that works on this kernel (sid's, with its own libraries; bookworm's 3.17 fails
# `criu check`), plus bookworm's iptables and patchelf; cached in /var/cache/runcsharp-criu.
# The E2E harness puts its folder first on containerd's PATH (runc execs `criu` from PATH).
if ! bash "$(dirname "$0")/get-criu.sh" >/dev/null; then
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    echo "setup: FAILED: scripts/get-criu.sh (CI=true runs the checkpoint/restore tests)" >&2
    exit 1
  fi
  echo "setup: WARNING: scripts/get-criu.sh failed; the checkpoint/restore tests will skip" >&2
fi

if ! have dotnet; then
  echo "setup: no 'dotnet' on PATH. Install the .NET 10 SDK (https://dotnet.microsoft.com/download/dotnet/10.0);" >&2
  echo "       this script does not install it." >&2
  exit 1
fi
if ! dotnet --list-sdks 2>/dev/null | grep -q '^10\.'; then
  echo "setup: 'dotnet' is there but has no .NET 10 SDK (found: $(dotnet --list-sdks 2>/dev/null | awk '{print $1}' | tr '\n' ' '))." >&2
  exit 1
fi
echo "setup: $(containerd --version | awk '{print "containerd", $3}'), $(runc --version | head -n1), dotnet SDK $(dotnet --version)"

# the newer containerd lines (1.7, 2.x), sid's runc and CNI plugins, cached outside the repo;
# quick and offline once fetched. Without them only 1.6 is tested, which CI does not accept.
if ! bash "$(dirname "$0")/fetch-versions.sh"; then
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    echo "setup: FAILED: scripts/fetch-versions.sh (CI=true needs containerd 1.7 and 2.x)" >&2
    exit 1
  fi
  echo "setup: WARNING: scripts/fetch-versions.sh failed; the end-to-end tests will run against containerd 1.6 only" >&2
fi
