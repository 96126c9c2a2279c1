// The CUDA kernels of cuda/{gemm_sgemm,gemm,conv,cross_entropy,reduce,softmax,pool,optim,pointwise,
// layout}.cu run on the host: test/emu/build.mjs compiles them as C++ against the emulation layer
// test/emu/cuda_host.h (each CUDA thread a host thread, __syncthreads a block barrier, warp shuffles
// as checked collectives, launch configurations checked) under AddressSanitizer + UBSan, and
// test/emu/kernels_emu.cpp calls their C ABI entry points on exact-size buffers, comparing with the
// CPU kernels of the same contracts (bit-exact where the contract says so: pooling, optimizers).
// This checks index arithmetic, bounds, vector/scalar paths, block/warp reductions and launch
// shapes where no GPU is available; it says nothing about speed, FMA contraction by nvcc, device
// math-library rounding, or races that the host scheduler happens not to expose.
//
// Needs g++ (C++20) and the CUDA headers; skipped with the reason otherwise. The binary is cached in
// build/cuda-emu/ (objects rebuilt when a source is newer). TSM_CUDA_EMU=full runs every case (slow).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain ES module without types
import { build, missing } from './emu/build.mjs';
import { run } from './helpers/run';

const root = path.resolve(__dirname, '..');
const skipReason: string = missing();
if (skipReason) console.log(`[cuda-kernels-emu.test] skipped: ${skipReason}`);

const groups = ['sgemm', 'conv', 'cross_entropy', 'reduce', 'softmax', 'pool', 'optim', 'pointwise', 'layout'];

describe.skipIf(!!skipReason)('CUDA kernels, emulated on the host', () => {
  let exe = '';
  it('builds the emulator', async () => {
    exe = await build({ jobs: 2 });
    expect(exe).toBe(path.join(root, 'build', 'cuda-emu', 'kernels_emu'));
  }, 1_200_000);

  it.each(groups)('%s matches the CPU kernels', async (group) => {
    expect(exe, 'the emulator did not build').not.toBe('');
    const mode = process.env.TSM_CUDA_EMU === 'full' ? 'full' : 'quick';
    const r = await run(exe, [mode, group], { timeoutMs: 1_800_000, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    expect(r.status, out).toBe(0);
    expect(out.trim().split('\n').pop(), out).toBe('OK');
    expect(out).not.toMatch(/FAIL|EMULATION ERROR|runtime error|AddressSanitizer/);
  }, 1_800_000);
});
