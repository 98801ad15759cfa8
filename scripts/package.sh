#!/usr/bin/env bash
# scripts/package.sh -- build the shim and package it as a node operator installs it:
#   dist/runcsharp_<version>_amd64.deb           binary in /usr/bin, man page, copyright, changelog,
#                                                containerd drop-in examples in /usr/share/doc/runcsharp
#   dist/runcsharp-<version>-linux-amd64.tar.gz  laid out like containerd's release tarballs
#                                                (bin/ at the top: `tar -C /usr/local -xzf`)
# each with a <file>.sha256sum beside it (`sha256sum -c` reads it), and checks the .deb with
# lintian (any error fails; the output is kept in dist/runcsharp_<version>_amd64.lintian).
#
# The version is VERSION's (the build stamps the same into the binary, whose -v prints it with
# the commit). Runs from a clean clone as root or not; needs dpkg-deb, lintian (apt install lintian).
#
# Usage: scripts/package.sh [--binary PATH] [--version V] [--out DIR] [--no-lintian]
#   --binary PATH  package this binary instead of building one (tests; an earlier release)
#   --version V    the package version (default: VERSION)
#   --out DIR      where the files go (default dist/)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
name=containerd-shim-runcsharp-v2
binary= version= out=$repo/dist lint=1
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$(realpath "$2"); shift 2 ;;
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-lintian) lint=0; shift ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) echo "package: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
version=${version:-$(tr -d ' \n' < VERSION)}
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || { echo "package: '$version' is no Debian version" >&2; exit 2; }
if [ -z "$binary" ]; then
  bash scripts/build.sh
  binary=$repo/dist/$name
fi
[ -x "$binary" ] || { echo "package: no binary at $binary" >&2; exit 1; }
mkdir -p "$out"; out=$(cd "$out" && pwd)

# the commit and its date: the changelog's entry and every file's time (the same input gives
# the same bytes), SOURCE_DATE_EPOCH as Debian's tools read it
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
rfc_date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
man_date=$(date -u +%Y-%m-%d -d "@$SOURCE_DATE_EPOCH")
maintainer="runcsharp maintainers <dev@runcsharp.invalid>"

work=$(mktemp -d /tmp/rcs-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/deb
doc=$root/usr/share/doc/runcsharp
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man8" "$doc/examples"
install -m 0755 "$binary" "$root/usr/bin/$name"
sed -e "s/@VERSION@/$version/g" -e "s/@DATE@/$man_date/g" packaging/$name.8 > "$root/usr/share/man/man8/$name.8"
gzip -9n "$root/usr/share/man/man8/$name.8"
install -m 0644 packaging/copyright "$doc/copyright"
install -m 0644 packaging/examples/*.toml "$doc/examples/"
install -d "$root/usr/share/lintian/overrides"
install -m 0644 packaging/lintian-overrides "$root/usr/share/lintian/overrides/runcsharp"
# a native package's changelog: one entry per release, written from VERSION and the commit
cat > "$doc/changelog" <<CL
runcsharp ($version) unstable; urgency=medium

  * Release $version, built from commit
    $commit.
    The changes are the git history of the repository up to that commit.

 -- $maintainer  $rfc_date
CL
gzip -9n "$doc/changelog"

# libc6 as new as the newest glibc symbol version the binary binds (NativeAOT links libc and libm only)
glibc=$(objdump -T "$binary" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CTL
Package: runcsharp
Version: $version
Architecture: amd64
Maintainer: $maintainer
Installed-Size: $size
Depends: libc6 (>= ${glibc:-2.34})
Recommends: containerd | containerd.io, runc
Section: admin
Priority: optional
Description: containerd runtime shim for runc, written in C#
 containerd-shim-runcsharp-v2 serves containerd's task API for the runtime
 io.containerd.runcsharp.v2 and drives runc to create, start, signal and
 delete containers. One NativeAOT binary serves containerd 1.6, 1.7 and 2.x.
 .
 Example CRI runtime handler drop-ins for each containerd line are in
 /usr/share/doc/runcsharp/examples.
CTL
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

deb=runcsharp_${version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/$deb" >/dev/null
tarball=runcsharp-${version}-linux-amd64.tar.gz
install -d "$work/tar/bin"
install -m 0755 "$binary" "$work/tar/bin/$name"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" -C "$work/tar" -cf - bin | gzip -9n > "$out/$tarball"
for f in "$deb" "$tarball"; do (cd "$out" && sha256sum "$f" > "$f.sha256sum"); done

if [ $lint = 1 ]; then
  command -v lintian >/dev/null || { echo "package: no lintian (apt install lintian)" >&2; exit 1; }
  # lintian exits non-zero on errors (its default --fail-on error)
  if ! lintian "$out/$deb" > "$out/runcsharp_${version}_amd64.lintian" 2>&1; then
    cat "$out/runcsharp_${version}_amd64.lintian" >&2
    echo "package: FAILED: lintian reports errors for $deb" >&2
    exit 1
  fi
  sed 's/^/lintian: /' "$out/runcsharp_${version}_amd64.lintian"
fi
echo "package: $out/$deb ($(stat -c %s "$out/$deb") bytes)"
echo "package: $out/$tarball ($(stat -c %s "$out/$tarball") bytes)"
