#!/usr/bin/env node
// npm run prebuild: builds the addon in release mode and places it where node-gyp-build looks:
// prebuilds/<platform>-<arch>/tensorsmith.<libc>.node, stripped.
//
// What goes in: the CPU kernels for every ISA of the target (run-time dispatch by cpuid), and, when
// nvcc is found (TSM_CUDA=AUTO, the default) or required (TSM_CUDA=ON), the CUDA kernels with the
// CUDA runtime linked statically, so the binary needs only glibc, libstdc++ and, for GPUs, the
// NVIDIA driver on the user's machine.
//
// Options:
//   --out-dir DIR        build folder (default build-prebuild, or build-prebuild-<arch> when cross)
//   --arch ARCH          target Node arch (default: this machine's); another arch needs --toolchain
//   --toolchain FILE     CMake toolchain file for cross-compiling (see tools/arm64/)
//   --no-clean           reuse the build folder (cmake-js build instead of rebuild)
// Environment:
//   TSM_CUDA=AUTO|ON|OFF          default AUTO (OFF when cross-compiling)
//   CMAKE_CUDA_ARCHITECTURES      default for prebuilds: the release list below (sm_80/86/89/90a code +
//                                 compute_80 PTX); source builds use CMakeLists.txt's shorter default
//   STRIP                         strip program (default: strip, or <triplet>-strip from the toolchain)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

// Above this, the CUDA build would move to an optional platform package (sharp-style) instead of
// riding in the main tarball; see CHANGELOG/README "Distribution".
const SIZE_LIMIT_MB = 40;

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`prebuild: ${cmd} ${args.join(' ')} failed (exit ${r.status})`);
}

function main() {
  const arch = option('--arch', process.arch);
  const cross = arch !== process.arch;
  const toolchain = option('--toolchain', undefined);
  if (cross && !toolchain) throw new Error(`prebuild: building for ${arch} on ${process.arch} needs --toolchain FILE`);
  const outDir = option('--out-dir', cross ? `build-prebuild-${arch}` : 'build-prebuild');
  const cuda = process.env.TSM_CUDA || (cross ? 'OFF' : 'AUTO');

  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, process.argv.includes('--no-clean') ? 'build' : 'rebuild', '--out', outDir, `--CDTSM_CUDA=${cuda}`];
  if (cross) args.push('--arch', arch, `--CDCMAKE_TOOLCHAIN_FILE=${path.resolve(toolchain)}`);
  // CUDA archs: prebuilds carry every supported GPU generation (see cuda/README.md for build times);
  // CMAKE_CUDA_ARCHITECTURES overrides.
  if (cuda !== 'OFF') {
    const archs = process.env.CMAKE_CUDA_ARCHITECTURES || '80-real;86-real;89-real;90a-real;80-virtual';
    args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${archs}`);
  }
  // libstdc++ stays dynamic on purpose: linking it statically pulls in arc4random (GLIBC_2.36) and
  // _dl_find_object (GLIBC_2.35) and raises the glibc floor to the build host's; dynamic, the floor
  // is glibc 2.34 with libstdc++ >= GCC 12 (GLIBCXX_3.4.30), e.g. Ubuntu 22.04 and Debian 12.
  const t0 = Date.now();
  run(process.execPath, args);

  const built = path.join(root, outDir, 'Release', 'tensorsmith.node');
  const libc = process.platform === 'linux' ? (fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc') : null;
  const dir = path.join(root, 'prebuilds', `${process.platform}-${arch}`);
  fs.mkdirSync(dir, { recursive: true });
  const dest = path.join(dir, libc ? `tensorsmith.${libc}.node` : 'tensorsmith.node');
  fs.copyFileSync(built, dest);

  let strip = process.env.STRIP || 'strip';
  if (!process.env.STRIP && cross) {
    // The toolchain file names the compiler (e.g. aarch64-linux-gnu-g++); its strip sits beside it.
    const m = /CMAKE_CXX_COMPILER\s+([\w.-]+)-g\+\+/.exec(fs.readFileSync(toolchain, 'utf8'));
    if (m) strip = `${m[1]}-strip`;
  }
  const s = spawnSync(strip, ['--strip-unneeded', dest], { stdio: 'inherit' });
  if (s.status !== 0) console.warn(`prebuild: ${strip} failed; the prebuild is not stripped`);

  const bytes = fs.statSync(dest).size;
  const mb = bytes / 1048576;
  console.log(`prebuild: ${path.relative(root, dest)} (${mb.toFixed(2)} MB, CUDA ${cuda}, ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  if (mb > SIZE_LIMIT_MB) {
    console.warn(
      `prebuild: the binary is over ${SIZE_LIMIT_MB} MB; ship the CUDA build as an optional platform package ` +
        '(optionalDependencies with os/cpu/libc) instead of inside the main tarball.',
    );
  }
  if (!cross) {
    // The prebuild must load on the machine that built it (catches missing symbols early).
    const addon = require(dest);
    const info = typeof addon.buildInfo === 'function' ? addon.buildInfo() : undefined;
    if (info) console.log(`prebuild: loads; simd ${info.simd}, cuda ${info.cuda && info.cuda.compiled ? `compiled (${info.cuda.archs})` : 'not compiled'}`);
  }
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}
