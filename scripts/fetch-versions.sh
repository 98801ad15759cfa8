#!/usr/bin/env bash
# scripts/fetch-versions.sh -- newer containerd lines, a newer runc and CNI plugins from Debian's
# own mirror, for running the end-to-end suite against every containerd line. Nothing is
# installed: a private apt configuration (own sources list, package lists, cache and an empty dpkg
# status) under the cache dir is used for `apt-get download` only, and the packages are unpacked
# with `dpkg-deb -x`. The system's apt state and packages are never touched.
#
#   containerd (+ ctr, containerd-shim-runc-v2)  from trixie  -> the 1.x line after 1.6 (1.7.x)
#   containerd (+ ctr, containerd-shim-runc-v2)  from sid     -> the 2.x line (2.1.x today)
#   runc from sid (1.3.x), patchelf'd to sid's own ld.so/libc/libseccomp (it needs glibc >= 2.38,
#        bookworm has 2.36); bookworm's patchelf is itself only unpacked, not installed
#   crun from trixie (1.21), patchelf'd the same way (bookworm's 1.8.1 has no `features` and
#        refuses containerd 2.1's spec version); its libyajl2, libcap2 and libsystemd0 are
#        bookworm's (scripts/setup.sh installs bookworm's crun, which needs the same)
#   containernetworking-plugins from sid (the `tap` plugin, for pods with their own netns)
#   docker.io + docker-cli from sid (dockerd and docker 28.x: the first Debian Docker that takes a
#        shim v2 runtime name, `"runtimeType": "io.containerd.runcsharp.v2"` in daemon.json; bookworm's
#        20.10 cannot). They need glibc >= 2.34 only, so they run on bookworm's as they are; dockerd
#        needs libsystemd.so.0 (bookworm's libsystemd0, which apt itself depends on)
#
# Idempotent: when everything is in place (checked by running the binaries) it only prints the
# env file and exits, without any network access, so it works offline after one success. When
# something is missing and the mirror cannot be reached it fails with a clear message.
#
# Output: $RCS_VERSIONS_DIR/versions.env (shell syntax, to be sourced; the E2E harness reads it):
#   RCS_CONTAINERD_VERSIONS="1.7 2.1"          the lines fetched (major.minor)
#   RCS_CONTAINERD_1_7_BIN=/…/usr/bin          dir with containerd, ctr, containerd-shim-runc-v2
#   RCS_CONTAINERD_1_7_VERSION=1.7.24~ds1-6+deb13u1   RCS_CONTAINERD_1_7_SUITE=trixie
#   RCS_RUNC=/…/runc   RCS_RUNC_VERSION=…      the patched sid runc
#   RCS_CRUN=/…/crun   RCS_CRUN_VERSION=…      the patched trixie crun
#   RCS_CNI_BIN=/…/usr/lib/cni   RCS_CNI_VERSION=…
#   RCS_DOCKER_BIN=/…/docker/<version>   dir with dockerd and docker (links into the unpacked debs)
#   RCS_DOCKER_VERSION=28.5.2+dfsg4-5
#
# Environment (optional):
#   RCS_VERSIONS_DIR   cache dir (default /var/cache/runcsharp-versions; keep it outside the repo)
#   RCS_MIRROR         Debian mirror (default: the system's debian.sources URI, else deb.debian.org)
#   RCS_FETCH_FORCE=1  refresh the package lists and re-fetch even when everything is in place
set -euo pipefail

dir=${RCS_VERSIONS_DIR:-/var/cache/runcsharp-versions}
envfile=$dir/versions.env
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
say() { echo "fetch-versions: $*"; }
die() { echo "fetch-versions: FAILED: $*" >&2; exit 1; }

# Everything the env file names must exist and run; this is the whole offline fast path.
verify() {
  [ -s "$envfile" ] || return 1
  (
    set +u
    # shellcheck disable=SC1090
    . "$envfile"
    [ -n "$RCS_CONTAINERD_VERSIONS" ] || exit 1
    for v in $RCS_CONTAINERD_VERSIONS; do
      var=RCS_CONTAINERD_${v//./_}_BIN
      b=${!var}
      for f in containerd ctr containerd-shim-runc-v2; do [ -x "$b/$f" ] || exit 1; done
      "$b/containerd" --version >/dev/null 2>&1 || exit 1
    done
    "$RCS_RUNC" --version >/dev/null 2>&1 || exit 1
    [ -n "$RCS_CRUN" ] && "$RCS_CRUN" features >/dev/null 2>&1 || exit 1
    [ -x "$RCS_CNI_BIN/tap" ] && [ -x "$RCS_CNI_BIN/static" ] || exit 1
    CNI_COMMAND=VERSION "$RCS_CNI_BIN/tap" </dev/null >/dev/null 2>&1 || exit 1
    [ -n "$RCS_DOCKER_BIN" ] || exit 1
    "$RCS_DOCKER_BIN/dockerd" --version >/dev/null 2>&1 || exit 1
    "$RCS_DOCKER_BIN/docker" --version >/dev/null 2>&1 || exit 1
  )
}

if [ "${RCS_FETCH_FORCE:-0}" != 1 ] && verify; then
  say "cached in $dir: $(grep -E '^RCS_(CONTAINERD_[0-9_]+|RUNC|CRUN|CNI|DOCKER)_VERSION=' "$envfile" | sed -E "s/^RCS_(CONTAINERD_)?//; s/_VERSION=/ /; s/'//g; s/_/./" | paste -sd, - | sed 's/,/, /g')"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then die "run as root (the cache dir $dir is system-wide)"; fi
for tool in apt-get apt-cache dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool not found (this script needs a Debian system)"
done
[ -r "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"

mirror=${RCS_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

# --- private apt view ------------------------------------------------------------------------
a=$dir/apt
mkdir -p "$a"/etc/{sources.list.d,preferences.d} "$a"/state/lists/partial "$a"/cache/archives/partial \
         "$dir"/debs "$dir"/pkgs "$dir"/runc
: > "$a/etc/sources.list"
for s in bookworm trixie sid; do echo "deb [signed-by=$keyring] $mirror $s main" >> "$a/etc/sources.list"; done
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

say "refreshing the private package lists from $mirror (bookworm, trixie, sid)"
if ! apt-get update -q --error-on=any >"$dir/apt-update.log" 2>&1; then
  cat "$dir/apt-update.log" >&2
  die "could not read the package lists from $mirror (is the mirror reachable?). Nothing was changed; the cache in $dir is incomplete, re-run when the mirror is reachable"
fi

cand() { # cand PACKAGE SUITE -> the version that suite serves
  apt-cache madison "$1" | awk -v s="$2" '$0 ~ " "s"/main " {print $3; exit}'
}
# fetch PACKAGE SUITE -> path of the .deb (downloaded once, kept in debs/)
fetch() {
  local p=$1 s=$2 v f
  v=$(cand "$p" "$s")
  [ -n "$v" ] || die "suite $s of $mirror has no package $p"
  f=$(ls "$dir"/debs/"${p}"_"${v/:/%3a}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$f" ]; then
    (cd "$dir/debs" && apt-get download -q "$p=$v" >>"$dir/apt-download.log" 2>&1) \
      || { tail -n 20 "$dir/apt-download.log" >&2; die "apt-get download $p=$v ($s) failed"; }
    f=$(ls "$dir"/debs/"${p}"_"${v/:/%3a}"_*.deb 2>/dev/null | head -n1 || true)
    [ -n "$f" ] || die "apt-get download $p=$v left no .deb in $dir/debs"
  fi
  echo "$f"
}
# unpack DEB -> pkgs/<package>/<version>, print the dir
unpack() {
  local n v d
  n=$(dpkg-deb -f "$1" Package); v=$(dpkg-deb -f "$1" Version)
  d=$dir/pkgs/$n/$v
  if [ ! -e "$d/.done" ]; then
    rm -rf "$d"; mkdir -p "$d"; dpkg-deb -x "$1" "$d"; touch "$d/.done"
  fi
  echo "$d"
}
debver() { dpkg-deb -f "$1" Version; }
line() { echo "$1" | sed -E 's/^([0-9]+)\.([0-9]+).*/\1.\2/'; }   # 1.7.24~ds1-6 -> 1.7

new=$dir/versions.env.new
: > "$new"
echo "# written by scripts/fetch-versions.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) from $mirror" >> "$new"

# --- containerd lines -----------------------------------------------------------------------
lines=()
for s in trixie sid; do
  deb=$(fetch containerd "$s")
  v=$(debver "$deb"); l=$(line "$v"); d=$(unpack "$deb")
  for f in containerd ctr containerd-shim-runc-v2; do
    [ -x "$d/usr/bin/$f" ] || die "containerd $v ($s) has no usr/bin/$f"
  done
  "$d/usr/bin/containerd" --version >/dev/null || die "containerd $v ($s) does not run here"
  case " ${lines[*]-} " in *" $l "*) die "trixie and sid both serve containerd $l";; esac
  lines+=("$l")
  say "containerd $v ($s) -> $d/usr/bin"
  {
    echo "RCS_CONTAINERD_${l//./_}_BIN='$d/usr/bin'"
    echo "RCS_CONTAINERD_${l//./_}_VERSION='$v'"
    echo "RCS_CONTAINERD_${l//./_}_SUITE='$s'"
  } >> "$new"
done

# --- runc from sid, on sid's own glibc ------------------------------------------------------
pe=$(unpack "$(fetch patchelf bookworm)")/usr/bin/patchelf
libc_deb=$(fetch libc6 sid); seccomp_deb=$(fetch libseccomp2 sid); runc_deb=$(fetch runc sid)
g=$dir/glibc-sid/$(debver "$libc_deb")_$(debver "$seccomp_deb")
if [ ! -e "$g/.done" ]; then
  rm -rf "$g"; mkdir -p "$g"
  dpkg-deb -x "$libc_deb" "$g"; dpkg-deb -x "$seccomp_deb" "$g"; touch "$g/.done"
fi
lib=$g/usr/lib/x86_64-linux-gnu
[ -e "$lib/ld-linux-x86-64.so.2" ] || die "no ld-linux-x86-64.so.2 in $lib"
# patch_to_sid_glibc SRC DEST: a copy of the binary SRC at DEST that loads sid's glibc from $lib;
# re-patched every time: the interpreter path is absolute (a moved cache dir needs a new patch)
patch_to_sid_glibc() {
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.tmp"
  "$pe" --set-interpreter "$lib/ld-linux-x86-64.so.2" --set-rpath "$lib" "$2.tmp"
  mv -f "$2.tmp" "$2"
}
rv=$(debver "$runc_deb")
rd=$(unpack "$runc_deb")
runc=$dir/runc/$rv/runc
patch_to_sid_glibc "$rd/usr/sbin/runc" "$runc"
"$runc" --version >/dev/null 2>&1 || die "patched runc $rv does not run: $("$runc" --version 2>&1 | head -n 3)"
say "runc $rv (sid, patched to glibc $(debver "$libc_deb")) -> $runc"
{
  echo "RCS_RUNC='$runc'"
  echo "RCS_RUNC_VERSION='$rv'"
  echo "RCS_RUNC_GLIBC='$lib'"
} >> "$new"

# --- crun from trixie, on sid's glibc like runc ----------------------------------------------
crun_deb=$(fetch crun trixie)
cv=$(debver "$crun_deb")
cdir=$(unpack "$crun_deb")
crun=$dir/crun/$cv/crun
patch_to_sid_glibc "$cdir/usr/bin/crun" "$crun"
"$crun" features >/dev/null 2>&1 || die "patched crun $cv does not run (bookworm's libyajl2, libcap2, libsystemd0: apt-get install crun): $("$crun" features 2>&1 | head -n 3)"
say "crun $cv (trixie, patched to glibc $(debver "$libc_deb")) -> $crun"
{
  echo "RCS_CRUN='$crun'"
  echo "RCS_CRUN_VERSION='$cv'"
} >> "$new"

# --- CNI plugins from sid (tap + static) ----------------------------------------------------
cni_deb=$(fetch containernetworking-plugins sid)
cd_=$(unpack "$cni_deb")
[ -x "$cd_/usr/lib/cni/tap" ] || die "containernetworking-plugins $(debver "$cni_deb") has no tap plugin"
CNI_COMMAND=VERSION "$cd_/usr/lib/cni/tap" </dev/null >/dev/null 2>&1 || die "the sid CNI tap plugin does not run here"
say "CNI plugins $(debver "$cni_deb") (sid) -> $cd_/usr/lib/cni"
{
  echo "RCS_CNI_BIN='$cd_/usr/lib/cni'"
  echo "RCS_CNI_VERSION='$(debver "$cni_deb")'"
} >> "$new"

# --- Docker from sid (dockerd from docker.io, the client from docker-cli) ---------------------
# Only the two binaries are used: the tests start dockerd with --iptables=false --bridge=none
# --userland-proxy=false (no docker-proxy) and run no container with --init (no docker-init/tini).
dockerd_deb=$(fetch docker.io sid); dcli_deb=$(fetch docker-cli sid)
dv=$(debver "$dockerd_deb")
[ "$(debver "$dcli_deb")" = "$dv" ] || die "sid serves docker.io $dv but docker-cli $(debver "$dcli_deb")"
dd=$(unpack "$dockerd_deb"); dc=$(unpack "$dcli_deb")
[ -x "$dd/usr/sbin/dockerd" ] || die "docker.io $dv has no usr/sbin/dockerd"
[ -x "$dc/usr/bin/docker" ] || die "docker-cli $dv has no usr/bin/docker"
db=$dir/docker/$dv
mkdir -p "$db"
ln -sfn "$dd/usr/sbin/dockerd" "$db/dockerd"
ln -sfn "$dc/usr/bin/docker" "$db/docker"
"$db/dockerd" --version >/dev/null 2>&1 || die "dockerd $dv does not run here: $("$db/dockerd" --version 2>&1 | head -n 3)"
"$db/docker" --version >/dev/null 2>&1 || die "docker $dv does not run here: $("$db/docker" --version 2>&1 | head -n 3)"
say "docker $dv (sid) -> $db"
{
  echo "RCS_DOCKER_BIN='$db'"
  echo "RCS_DOCKER_VERSION='$dv'"
  echo "RCS_CONTAINERD_VERSIONS='${lines[*]}'"
} >> "$new"

mv -f "$new" "$envfile"
verify || die "the fetched binaries do not pass the checks (see $envfile)"
say "wrote $envfile"
cat "$envfile"
