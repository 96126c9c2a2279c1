// The norm kernels of CUDA tensors run on the host: test/emu/norm_emu.cpp compiles cuda/norm.cu,
// embedding.cu, dropout.cu and adaptive_pool.cu as C++ (TSM_NORM_EMULATE) together with the CPU
// kernels of the same contract, runs every CUDA thread of a block as a cooperatively scheduled host
// context (barriers and warp shuffles emulated), under AddressSanitizer, and compares the C ABI
// entry points — launches, scratch, every kernel — with the CPU: dropout's mask and output and the
// Philox uniforms bit for bit (many seeds, offsets, sizes not multiples of 4), the embedding forward
// and backward bit for bit (1-3 radix passes, padding_idx, out-of-range indices), layerNorm and
// batchNorm to float32 rounding (and deterministic), adaptive average pooling bit for bit.
// It says nothing about real GPU timing, memory ordering or speed.
//
// Needs g++ (C++20) and the CUDA headers (cuda_runtime.h); skipped with the reason otherwise. The
// binary is cached in build/norm-emu/ and rebuilt when a source is newer.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './helpers/run';

const root = path.resolve(__dirname, '..');
const compiled = ['test/emu/norm_emu.cpp', 'cpp/kernels/layer_norm.cpp', 'cpp/kernels/batch_norm.cpp',
  'cpp/kernels/embedding.cpp', 'cpp/kernels/dropout.cpp', 'cpp/kernels/rng.cpp', 'cpp/runtime/error.cpp',
  'cpp/runtime/threadpool.cpp', 'cpp/runtime/cpu.cpp', 'cpp/runtime/alloc.cpp'].map((f) => path.join(root, f));
const included = ['cuda/norm.cu', 'cuda/embedding.cu', 'cuda/dropout.cu', 'cuda/adaptive_pool.cu', 'cuda/norm_common.cuh',
  'cuda/philox.cuh', 'cuda/tensor_common.cuh', 'cuda/scratch.cuh', 'cuda/runtime/cuda_common.cuh', 'cpp/runtime/runtime.h',
  'cpp/include/tensorsmith.h'].map((f) => path.join(root, f));
const outDir = path.join(root, 'build', 'norm-emu');
const exe = path.join(outDir, 'norm_emu');

function cudaInclude(): string | null {
  const dirs = [process.env.CUDA_HOME && path.join(process.env.CUDA_HOME, 'include'), '/usr/local/cuda/include'];
  const nvcc = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).stdout.trim();
  if (nvcc) dirs.push(path.join(path.dirname(fs.realpathSync(nvcc)), '..', 'include'));
  for (const d of dirs) if (d && fs.existsSync(path.join(d, 'cuda_runtime.h'))) return d;
  return null;
}

const inc = cudaInclude();
const gxx = spawnSync('sh', ['-c', 'command -v g++'], { encoding: 'utf8' }).stdout.trim();
const skipReason = !gxx ? 'g++ is not installed' : !inc ? 'the CUDA headers (cuda_runtime.h) are not installed' : '';
if (skipReason) console.log(`[cuda-norm-emu.test] skipped: ${skipReason}`);

describe.skipIf(!!skipReason)('norm, embedding, dropout and adaptive-pool kernels, emulated on the host', () => {
  it('match the CPU kernels (dropout and embedding bit for bit)', async () => {
    const newest = Math.max(...[...compiled, ...included].map((f) => fs.statSync(f).mtimeMs));
    if (!fs.existsSync(exe) || fs.statSync(exe).mtimeMs < newest) {
      fs.mkdirSync(outDir, { recursive: true });
      const cc = await run(gxx, ['-std=c++20', '-O1', '-g', '-ffp-contract=off', '-fsanitize=address,undefined',
        '-fno-sanitize-recover=undefined', '-Wno-attributes', `-I${inc}`, `-I${path.join(root, 'cpp', 'include')}`,
        `-I${path.join(root, 'cuda')}`, ...compiled, '-o', `${exe}.tmp`, '-lpthread'], { timeoutMs: 900_000 });
      expect(cc.status, `g++ failed:\n${cc.stderr}`).toBe(0);
      fs.renameSync(`${exe}.tmp`, exe);
    }
    const r = await run(exe, [], { timeoutMs: 900_000, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    expect(r.status, out).toBe(0);
    // stdout's last line (ASan prints a one-time note about swapcontext on stderr; the harness
    // annotates every fiber switch for it).
    expect((r.stdout ?? '').trim().split('\n').pop(), out).toBe('OK');
    expect(out).not.toMatch(/FAIL|EMULATION ERROR|AddressSanitizer: [a-z]|runtime error/);
  }, 1_800_000);
});
