#!/usr/bin/env node
// npm run prebuild: builds the addon in release mode (CPU kernels for every ISA with run-time
// dispatch; CUDA kernels with the runtime linked statically when nvcc is found) and places it
// where node-gyp-build looks: prebuilds/<platform>-<arch>/tensorsmith.<libc>.node, stripped.
// Options: --out-dir DIR (default build-prebuild), TSM_CUDA=AUTO|ON|OFF in the environment.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outDir = process.argv.includes('--out-dir') ? process.argv[process.argv.indexOf('--out-dir') + 1] : 'build-prebuild';

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`prebuild: ${cmd} ${args.join(' ')} failed (exit ${r.status})`);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'rebuild', '--out', outDir, `--CDTSM_CUDA=${process.env.TSM_CUDA || 'AUTO'}`];
if (process.env.CMAKE_CUDA_ARCHITECTURES) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.CMAKE_CUDA_ARCHITECTURES}`);
run(process.execPath, args);

const built = path.join(root, outDir, 'Release', 'tensorsmith.node');
const libc = process.platform === 'linux' ? (fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc') : null;
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
const dest = path.join(dir, libc ? `tensorsmith.${libc}.node` : 'tensorsmith.node');
fs.copyFileSync(built, dest);
const strip = process.env.STRIP || 'strip';
const s = spawnSync(strip, ['--strip-unneeded', dest], { stdio: 'inherit' });
if (s.status !== 0) console.warn(`prebuild: ${strip} failed; the prebuild is not stripped`);
const mb = (fs.statSync(dest).size / 1048576).toFixed(1);
console.log(`prebuild: ${path.relative(root, dest)} (${mb} MB)`);
