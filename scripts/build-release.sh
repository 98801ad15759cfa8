#!/usr/bin/env bash
# scripts/build-release.sh -- build the shim of an earlier commit (a previous release) once and
# keep it, for the upgrade test: the binary lands in $RCS_RELEASES_DIR/<full sha>/ (default
# /var/cache/runcsharp-releases) and its path is printed on the last line. A later call for the
# same commit prints the kept binary at once. The commit is exported with `git archive` into a
# temporary folder and built with that commit's own scripts/build.sh (NativeAOT, a few minutes).
#
# Usage: scripts/build-release.sh COMMIT      (e.g. v0.1.0, HEAD~11)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ $# = 1 ] || { echo "usage: scripts/build-release.sh COMMIT" >&2; exit 2; }
sha=$(git -C "$repo" rev-parse --verify "$1^{commit}")
cache=${RCS_RELEASES_DIR:-/var/cache/runcsharp-releases}
name=containerd-shim-runcsharp-v2
if [ -x "$cache/$sha/$name" ]; then echo "$cache/$sha/$name"; exit 0; fi

src=$(mktemp -d /tmp/rcs-release-XXXXXX)
trap 'rm -rf "$src"' EXIT
git -C "$repo" archive --format=tar "$sha" | tar -x -C "$src"
echo "build-release: building $sha in $src" >&2
# no .git in an archive: hand the commit to MSBuild (an environment variable is a property), so
# the old binary's -v names its revision as a build from a clone would
if ! (cd "$src" && SourceRevisionId=$sha nice -n 10 bash scripts/build.sh) >&2; then
  echo "build-release: FAILED to build $sha" >&2
  exit 1
fi
mkdir -p "$cache/$sha"
cp "$src/dist/$name" "$cache/$sha/.$name.new"
mv -f "$cache/$sha/.$name.new" "$cache/$sha/$name"
echo "$cache/$sha/$name"
