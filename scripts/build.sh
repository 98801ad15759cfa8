#!/usr/bin/env bash
# scripts/build.sh -- publish the shim with NativeAOT and put the binary at
# dist/containerd-shim-runcsharp-v2 (a stable path scripts and tests rely on).
# Fails when publishing fails or prints any compiler, trimming or AOT warning.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
name=containerd-shim-runcsharp-v2
out=$(mktemp -d /tmp/rcs-publish-XXXXXX)
trap 'rm -rf "$out"' EXIT

# never leave an older binary behind to be tested by mistake when this build fails
mkdir -p dist
rm -f "dist/$name"

echo "build: dotnet publish src/Shim.Host -c Release (NativeAOT, linux-x64)"
if ! dotnet publish src/Shim.Host -c Release -o "$out/bin" -nologo -tl:off >"$out/publish.log" 2>&1; then
  cat "$out/publish.log"
  echo "build: FAILED: dotnet publish src/Shim.Host exited non-zero (log above)" >&2
  exit 1
fi
if grep -E ' warning |warning IL|warning CS' "$out/publish.log" >"$out/warnings.txt"; then
  cat "$out/publish.log"
  echo "build: FAILED: the publish printed warnings (a shim that only works under the JIT is not the product):" >&2
  sort -u "$out/warnings.txt" >&2
  exit 1
fi
if [ ! -x "$out/bin/$name" ]; then
  ls -la "$out/bin" >&2
  echo "build: FAILED: no $name in the publish output" >&2
  exit 1
fi
if [ -e "$out/bin/$name.dll" ]; then
  echo "build: FAILED: the publish output holds a managed $name.dll; expected a NativeAOT binary" >&2
  exit 1
fi
# copy then rename: a shim still running from the old binary keeps its inode
cp "$out/bin/$name" "dist/.$name.new"
mv -f "dist/.$name.new" "dist/$name"
size=$(stat -c %s "dist/$name")
echo "build: dist/$name ($size bytes, $(numfmt --to=iec "$size" 2>/dev/null || echo "$((size / 1024)) KiB"))"
