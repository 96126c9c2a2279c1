// Builds the host emulation of the CUDA kernels (test/emu/kernels_emu.cpp) into build/cuda-emu/:
//   - the kernels' .cu files, launches rewritten (rewrite-launches.mjs), compiled as C++ with
//     -include test/emu/cuda_host.h under AddressSanitizer + UBSan;
//   - the CPU core (cpp/runtime, cpp/kernels: the references of the same contracts), -O2, no sanitizer
//     (or the CMake build's objects of it, when they are up to date);
//   - the runtime stand-ins (cuda_host_runtime.cpp) and the test driver.
// Objects are cached and rebuilt when a source or header they depend on is newer.
//   node test/emu/build.mjs [-j N]          prints the path of the binary
// Exits 3 with a reason when g++ or the CUDA headers are missing.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rewriteFiles } from './rewrite-launches.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const outDir = path.join(root, 'build', 'cuda-emu');
export const exe = path.join(outDir, 'kernels_emu');
export const kernelFiles = ['gemm_sgemm.cu', 'gemm.cu', 'conv.cu', 'cross_entropy.cu', 'reduce.cu', 'softmax.cu', 'pool.cu',
  'optim.cu', 'pointwise.cu', 'layout.cu'].map((f) => path.join(root, 'cuda', f));

export function cudaInclude() {
  const dirs = [process.env.CUDA_HOME && path.join(process.env.CUDA_HOME, 'include'), '/usr/local/cuda/include'];
  const nvcc = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).stdout.trim();
  if (nvcc) dirs.push(path.join(path.dirname(fs.realpathSync(nvcc)), '..', 'include'));
  for (const d of dirs) if (d && fs.existsSync(path.join(d, 'cuda_bf16.h')) && fs.existsSync(path.join(d, 'cuda_runtime.h'))) return d;
  return null;
}

export function missing() {
  const gxx = spawnSync('sh', ['-c', 'command -v g++'], { encoding: 'utf8' }).stdout.trim();
  if (!gxx) return 'g++ is not installed';
  const probe = spawnSync('g++', ['-std=c++20', '-x', 'c++', '-fsyntax-only', '-'], { input: '#include <barrier>\n#include <source_location>\n', encoding: 'utf8' });
  if (probe.status !== 0) return 'g++ has no C++20 <barrier>/<source_location>';
  if (!cudaInclude()) return 'the CUDA headers (cuda_runtime.h, cuda_bf16.h) are not installed';
  return '';
}

const mtime = (f) => { try { return fs.statSync(f).mtimeMs; } catch { return -1; } };
const glob = (dir, re) => fs.readdirSync(dir).filter((f) => re.test(f)).map((f) => path.join(dir, f));

function run(jobs, tasks) {
  return new Promise((resolve, reject) => {
    let next = 0, active = 0, failed = null;
    const start = () => {
      if (failed) return;
      if (next >= tasks.length && active === 0) return resolve();
      while (active < jobs && next < tasks.length) {
        const t = tasks[next++];
        active++;
        const p = spawn(t.cmd[0], t.cmd.slice(1), { stdio: ['ignore', 'inherit', 'pipe'] });
        let err = '';
        p.stderr.on('data', (d) => { err += d; });
        p.on('close', (code) => {
          active--;
          if (code !== 0) { failed = new Error(`${t.cmd.join(' ')}\n${err}`); return reject(failed); }
          if (err.trim()) process.stderr.write(err);
          start();
        });
      }
    };
    start();
  });
}

export async function build({ jobs = 2 } = {}) {
  const why = missing();
  if (why) throw Object.assign(new Error(why), { missing: true });
  const inc = cudaInclude();
  fs.mkdirSync(path.join(outDir, 'obj'), { recursive: true });
  const gen = rewriteFiles(path.join(outDir, 'src'), kernelFiles);
  const headers = [...glob(path.join(root, 'cuda'), /\.cuh$/), ...glob(path.join(root, 'cuda', 'runtime'), /\.cuh$/),
    path.join(root, 'cpp', 'include', 'tensorsmith.h'), path.join(root, 'cpp', 'runtime', 'runtime.h'),
    path.join(root, 'test', 'emu', 'cuda_host.h'), path.join(root, 'test', 'emu', 'build.mjs'),
    path.join(root, 'test', 'emu', 'rewrite-launches.mjs')];
  const cpuHeaders = [...glob(path.join(root, 'cpp', 'kernels'), /\.h$/), ...glob(path.join(root, 'cpp', 'kernels', 'simd'), /\.h$/),
    path.join(root, 'cpp', 'include', 'tensorsmith.h'), path.join(root, 'cpp', 'runtime', 'runtime.h')];
  const newestHdr = Math.max(...headers.map(mtime));
  const newestCpuHdr = Math.max(...cpuHeaders.map(mtime));
  const san = ['-O1', '-g', '-fsanitize=address,undefined', '-fno-sanitize-recover=undefined', '-fno-omit-frame-pointer'];
  const common = ['-std=c++20', '-Wno-attributes', '-ffp-contract=off', `-I${inc}`, `-I${path.join(root, 'cpp', 'include')}`,
    `-I${path.join(root, 'cuda')}`, `-I${path.join(root, 'test', 'emu')}`];
  const tasks = [], objs = [];
  const add = (src, obj, flags, newest, orig = src) => {
    objs.push(obj);
    if (mtime(obj) < Math.max(mtime(orig), newest)) tasks.push({ cmd: ['g++', ...flags, '-c', src, '-o', obj] });
  };
  // The CUDA kernels, emulated.
  for (const g of gen) {
    const base = path.basename(g, '.cu');
    add(g, path.join(outDir, 'obj', `cu_${base}.o`), [...common, ...san, '-DTSM_EMU_CONV_SCRATCH_BYTES=::tsm_emu::conv_scratch_bytes()', '-x', 'c++', '-include',
        path.join(root, 'test', 'emu', 'cuda_host.h')],
      newestHdr, path.join(root, 'cuda', `${base}.cu`));
  }
  add(path.join(root, 'test', 'emu', 'cuda_host_runtime.cpp'), path.join(outDir, 'obj', 'cuda_host_runtime.o'), [...common, ...san], newestHdr);
  add(path.join(root, 'test', 'emu', 'kernels_emu.cpp'), path.join(outDir, 'obj', 'kernels_emu.o'), [...common, ...san], newestHdr);
  // The CPU core: the references.
  const cpu = ['-std=c++17', '-O2', '-g0', '-fPIC', '-DTSM_BUILDING_LIBRARY', `-I${path.join(root, 'cpp', 'include')}`];
  const x86 = process.arch === 'x64';
  const cpuSrc = [...glob(path.join(root, 'cpp', 'runtime'), /\.cpp$/).filter((f) => !f.endsWith('cuda_stub.cpp')),
    ...glob(path.join(root, 'cpp', 'kernels'), /\.cpp$/), ...glob(path.join(root, 'cpp', 'kernels', 'simd'), /_generic\.cpp$/),
    ...(x86 ? glob(path.join(root, 'cpp', 'kernels', 'simd'), /_(avx2|avx512)\.cpp$/) : glob(path.join(root, 'cpp', 'kernels', 'simd'), /_neon\.cpp$/))];
  // The normal CMake build's objects of the CPU core (build/CMakeFiles/tsm_core.dir) when they are all
  // there and up to date: saves compiling the core a second time.
  const cmakeObj = (s) => path.join(root, 'build', 'CMakeFiles', 'tsm_core.dir', `${path.relative(root, s)}.o`);
  const reuse = cpuSrc.every((s) => mtime(cmakeObj(s)) >= Math.max(mtime(s), newestCpuHdr));
  for (const s of cpuSrc) {
    if (reuse) {
      objs.push(cmakeObj(s));
      continue;
    }
    const isa = s.endsWith('_avx2.cpp') ? ['-mavx2', '-mfma'] : s.endsWith('_avx512.cpp') ? ['-mavx512f', '-mavx2', '-mfma'] : [];
    add(s, path.join(outDir, 'obj', `cpu_${path.basename(s, '.cpp')}.o`), [...cpu, ...isa], newestCpuHdr);
  }
  await run(jobs, tasks);
  if (tasks.length || mtime(exe) < Math.max(...objs.map(mtime))) {
    await run(1, [{ cmd: ['g++', '-fsanitize=address,undefined', ...objs, '-o', `${exe}.tmp`, '-lpthread'] }]);
    fs.renameSync(`${exe}.tmp`, exe);
  }
  return exe;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const j = process.argv.indexOf('-j');
  build({ jobs: j > 0 ? Number(process.argv[j + 1]) : 2 }).then((e) => console.log(e), (e) => {
    console.error(e.message);
    process.exit(e.missing ? 3 : 1);
  });
}
