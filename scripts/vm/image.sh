#!/usr/bin/env bash
# scripts/vm/image.sh -- prepare what scripts/vm/run.sh boots: Debian's own kernel (the version
# linux-image-amd64 depends on, fetched with `apt-get download` and unpacked with `dpkg -x`, never
# installed), its module index, an uncompressed vmlinux and a busybox initramfs whose /init is
# scripts/vm/guest/init.sh. Installs qemu-system-x86, cpio and kmod with apt when missing.
#
# Output in $RCS_VM_DIR (default /var/cache/runcsharp-vm): vmlinux, initramfs.cpio.gz,
# kernel/ (the unpacked package), kernel.version. Idempotent: once built (and init.sh unchanged)
# it only checks and exits. `--force` rebuilds.
set -euo pipefail
out=${RCS_VM_DIR:-/var/cache/runcsharp-vm}
here=$(cd "$(dirname "$0")" && pwd)
force=${1:-}
say() { echo "vm-image: $*" >&2; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
[ -x /sbin/depmod ] || command -v depmod >/dev/null || need+=(kmod)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { say "missing ${need[*]}; run as root to install them"; exit 1; }
  say "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
fi
depmod=$(command -v depmod || echo /sbin/depmod)
modprobe=$(dirname "$depmod")/modprobe

# the stamp says which kernel and which init.sh the image was made from
stamp_of() { echo "$1 $(sha256sum "$here/guest/init.sh" | cut -c1-16)"; }
if [ "$force" != --force ] && [ -s "$out/vmlinux" ] && [ -s "$out/initramfs.cpio.gz" ] && [ -f "$out/stamp" ]; then
  kver=$(cat "$out/kernel.version")
  if [ "$(cat "$out/stamp")" = "$(stamp_of "$kver")" ]; then
    say "ready: kernel $kver in $out"
    exit 0
  fi
fi

mkdir -p "$out"
cd "$out"
resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
kpkg=$(resolve)
[ -n "$kpkg" ] || { apt-get update -q >/dev/null; kpkg=$(resolve); }
[ -n "$kpkg" ] || { say "apt knows no linux-image-amd64"; exit 1; }
kver=${kpkg#linux-image-}
if [ ! -f "kernel/boot/vmlinuz-$kver" ] || [ "$force" = --force ]; then
  say "downloading $kpkg (unpacked here, not installed)"
  rm -rf dl kernel && mkdir dl
  (cd dl && apt-get download -q "$kpkg" >/dev/null 2>&1) || { say "apt-get download $kpkg failed"; exit 1; }
  dpkg -x dl/"${kpkg}"_*.deb kernel
  rm -rf dl
  "$depmod" -b "$out/kernel" "$kver"
fi
echo "$kver" > kernel.version

# QEMU boots an ELF vmlinux through its PVH note directly; the bzImage's xz decompressor is
# slow under TCG, so take the ELF out of the bzImage once, here.
python3 - "kernel/boot/vmlinuz-$kver" vmlinux.new <<'PY'
import lzma, sys
blob = open(sys.argv[1], "rb").read()
at = blob.find(b"\xfd7zXZ\x00")
while at >= 0:
    try:
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(blob[at:])
        if elf[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(elf)
            sys.exit(0)
    except lzma.LZMAError:
        pass
    at = blob.find(b"\xfd7zXZ\x00", at + 1)
sys.exit("no xz-packed ELF kernel in " + sys.argv[1])
PY
mv vmlinux.new vmlinux

# initramfs: static busybox, the modules that reach the 9p root (with their dependencies)
ir=$(mktemp -d "$out/ir.XXXXXX")
trap 'rm -rf "$ir"' EXIT
mkdir -p "$ir"/{bin,dev,proc,sys,host,rw,newroot,job}
cp /bin/busybox "$ir/bin/busybox"
for m in virtio_pci virtio_blk 9pnet_virtio 9p overlay; do
  for f in $("$modprobe" -d "$out/kernel" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'); do
    rel=${f#"$out/kernel/"}
    mkdir -p "$ir/$(dirname "$rel")"
    cp "$f" "$ir/$rel"
  done
done
cp kernel/lib/modules/"$kver"/modules.{order,builtin,builtin.modinfo} "$ir/lib/modules/$kver/"
"$depmod" -b "$ir" "$kver"
install -m 0755 "$here/guest/init.sh" "$ir/init"
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > initramfs.cpio.gz.new
mv initramfs.cpio.gz.new initramfs.cpio.gz
stamp_of "$kver" > stamp
say "built: kernel $kver, initramfs $(du -h initramfs.cpio.gz | cut -f1) in $out"
