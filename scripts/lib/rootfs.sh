# shellcheck shell=bash
# scripts/lib/rootfs.sh -- mkrootfs DIR: a minimal busybox-static root filesystem.
mkrootfs() {
  local dir=${1:?mkrootfs DIR} bb=/bin/busybox a
  if [ ! -x "$bb" ]; then echo "rootfs: no $bb; install busybox-static" >&2; return 1; fi
  # ldd fails ("not a dynamic executable") on a static binary: a rootfs needs no libraries then
  if ldd "$bb" >/dev/null 2>&1; then
    echo "rootfs: $bb is dynamically linked; install busybox-static" >&2; return 1
  fi
  mkdir -p "$dir"/{bin,dev,proc,sys,tmp,etc,root,run,var}
  cp "$bb" "$dir/bin/busybox"
  for a in $("$dir/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/etc/passwd"
  echo 'root:x:0:' > "$dir/etc/group"
  : > "$dir/etc/hosts"
  : > "$dir/etc/resolv.conf"
  chmod 1777 "$dir/tmp"
}
