#!/usr/bin/env bash
# scripts/get-criu.sh -- a criu that works on this kernel, for checkpoint/restore tests.
#
# Bookworm's criu 3.17 fails `criu check` on current kernels ("vdso: Failed to fill self vdso
# symtable"), so runc checkpoint fails with it. sid's criu 4.x works when it runs against sid's own
# libc and libraries: they are downloaded through a PRIVATE apt configuration (own sources list,
# package lists, cache and an empty dpkg status under the cache dir; the system's apt state is
# never touched), unpacked with `dpkg-deb -x` into one folder, and the criu binary is patchelf'd
# to that folder's ld-linux as interpreter with a DT_RPATH (--force-rpath: unlike DT_RUNPATH it
# also applies to the libraries' own dependencies).
# criu locks the container's network with iptables-restore, so bookworm's `iptables` is installed
# (with the system's apt, only when missing), as is bookworm's `patchelf`.
#
# runc execs `criu` from PATH: put the printed folder first on the PATH of containerd (and so of
# the shim and runc). The E2E harness reads it from the env file.
#
# Idempotent: when the patched criu is there and `criu check` passes, it only prints the folder,
# without network access.
#
# Output: the folder holding `criu` on stdout (last line); $RCS_CRIU_DIR/criu.env (shell syntax):
#   RCS_CRIU_BIN_DIR=/var/cache/runcsharp-criu/bin   RCS_CRIU_VERSION=4.x...
# Environment (optional):
#   RCS_CRIU_DIR      cache dir (default /var/cache/runcsharp-criu; keep it outside the repo)
#   RCS_MIRROR        Debian mirror (default: the system's debian.sources URI, else deb.debian.org)
#   RCS_FETCH_FORCE=1 refresh the package lists and re-fetch even when everything is in place
set -euo pipefail

dir=${RCS_CRIU_DIR:-/var/cache/runcsharp-criu}
envfile=$dir/criu.env
bin=$dir/bin
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
say() { echo "get-criu: $*" >&2; }
die() { echo "get-criu: FAILED: $*" >&2; exit 1; }

# criu and the libraries it links (sid names; the t64 renames are sid's). Checked after unpacking:
# a library that is still missing is reported by name.
pkgs=(criu libc6 libnet9 libnl-3-200 libcompel1 libnftables1 libgnutls30t64 libprotobuf-c1 libbsd0
      libnftnl11 libmnl0 libjansson4 libxtables12 libgmp10 libp11-kit0 libidn2-0 libunistring5
      libtasn1-6 libnettle8t64 libhogweed6t64 libmd0 libffi8 libedit2 libtinfo6 libuuid1)

looks_good() { "$bin/criu" check 2>&1 | grep -q "Looks good"; }

if [ "${RCS_FETCH_FORCE:-0}" != 1 ] && [ -x "$bin/criu" ] && [ -s "$envfile" ] \
   && command -v iptables-restore >/dev/null && looks_good; then
  say "cached: criu $("$bin/criu" --version 2>/dev/null | awk '/Version:/ {print $2; exit}') in $bin"
  echo "$bin"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root (criu needs root, and the cache dir $dir is system-wide)"
for tool in apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool not found (this script needs a Debian system)"
done
[ -r "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"

# --- bookworm tools, with the system's apt (only what is missing) ----------------------------
need=()
command -v iptables-restore >/dev/null || [ -x /usr/sbin/iptables-restore ] || need+=(iptables)
command -v patchelf >/dev/null || need+=(patchelf)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (bookworm, system apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; } \
    || die "apt-get install ${need[*]} failed"
fi
PATH=$PATH:/usr/sbin:/sbin
command -v iptables-restore >/dev/null || die "iptables-restore still missing after installing iptables"

mirror=${RCS_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

# --- private apt view (sid only) ---------------------------------------------------------------
a=$dir/apt
mkdir -p "$a"/etc/{sources.list.d,preferences.d} "$a"/state/lists/partial "$a"/cache/archives/partial "$dir"/debs
echo "deb [signed-by=$keyring] $mirror sid main" > "$a/etc/sources.list"
touch "$a/state/status"   # empty dpkg status: nothing counts as installed in this view
cat > "$a/apt.conf" <<EOF
Dir::Etc::sourcelist "$a/etc/sources.list";
Dir::Etc::sourceparts "$a/etc/sources.list.d";
Dir::Etc::preferencesparts "$a/etc/preferences.d";
Dir::State "$a/state";
Dir::State::status "$a/state/status";
Dir::Cache "$a/cache";
APT::Architecture "amd64";
Acquire::Languages "none";
Acquire::Retries "2";
Acquire::http::Timeout "30";
EOF
export APT_CONFIG=$a/apt.conf

say "refreshing the private package list of sid from $mirror"
if ! apt-get update -q >"$dir/apt-update.log" 2>&1; then
  cat "$dir/apt-update.log" >&2
  die "could not read the sid package list from $mirror (is the mirror reachable?)"
fi

# --- download and unpack ------------------------------------------------------------------------
say "downloading ${#pkgs[@]} packages from sid into $dir/debs"
(
  cd "$dir/debs"
  rm -f ./*.deb
  for p in "${pkgs[@]}"; do
    apt-get download -q "$p/sid" >>"$dir/apt-download.log" 2>&1 || echo "$p" >> "$dir/debs/.missing"
  done
)
if [ -s "$dir/debs/.missing" ]; then
  missing=$(tr '\n' ' ' < "$dir/debs/.missing"); rm -f "$dir/debs/.missing"
  case " $missing " in *" criu "*|*" libc6 "*) die "sid has no $missing (see $dir/apt-download.log)";; esac
  say "WARNING: not in sid (renamed?): $missing; continuing, the library check below tells whether they matter"
fi

root=$dir/root
rm -rf "$root.new"; mkdir -p "$root.new"
for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$root.new"; done
rm -rf "$root"; mv "$root.new" "$root"
lib=$root/usr/lib/x86_64-linux-gnu
[ -e "$lib/ld-linux-x86-64.so.2" ] || die "no ld-linux-x86-64.so.2 in $lib"
[ -x "$root/usr/sbin/criu" ] || die "the criu package has no usr/sbin/criu"

# --- patch ---------------------------------------------------------------------------------------
mkdir -p "$bin"
cp "$root/usr/sbin/criu" "$bin/criu.tmp"
patchelf --set-interpreter "$lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$lib" "$bin/criu.tmp"
if notfound=$("$lib/ld-linux-x86-64.so.2" --list "$bin/criu.tmp" 2>&1 | grep "not found"); then
  die "libraries missing from $lib: $notfound"
fi
mv -f "$bin/criu.tmp" "$bin/criu"

version=$("$bin/criu" --version 2>&1 | awk '/Version:/ {print $2; exit}')
out=$("$bin/criu" check 2>&1 || true)
echo "$out" | grep -q "Looks good" || die "criu $version: 'criu check' does not look good:
$out"
say "criu $version -> $bin/criu; criu check: Looks good"

{
  echo "# written by scripts/get-criu.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) from $mirror (sid)"
  echo "RCS_CRIU_BIN_DIR='$bin'"
  echo "RCS_CRIU_VERSION='$version'"
} > "$envfile.new"
mv -f "$envfile.new" "$envfile"
echo "$bin"
