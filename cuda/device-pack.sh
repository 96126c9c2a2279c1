#!/usr/bin/env bash
# Packs what the CUDA tests and the cuda-gemm benchmark need on the GPU machine (which has no Node.js
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
# shellcheck disable=SC2086
bash "$root/../shared/tools/device-pack.sh" build/Release package.json $mods
