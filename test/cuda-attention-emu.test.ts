// The fused GPU attention kernels run on the host: test/emu/attention_emu.cpp compiles
// cuda/attention_fwd.cu and cuda/attention_bwd.cu as C++ (TSM_ATTN_EMULATE), runs each thread of a
// block as a host thread with ldmatrix / mma.sync / shuffles emulated from their PTX definitions,
// under AddressSanitizer, and compares forward and backward with a float64 reference (bf16, f16 and
// float32; mma and general kernels; causal, key lengths with 0 keys, Lq != Lk, Lk = 0, odd head dims,
// misaligned inputs). This checks the kernels' index and fragment logic where no GPU is available;
// it says nothing about timing-dependent behaviour (cp.async completes at once here) or speed.
//
// Needs g++ (C++20) and the CUDA headers (cuda_bf16.h); skipped with the reason otherwise. The
// binary is cached in build/attention-emu/ and rebuilt when a source is newer. TSM_ATTN_EMU=full
// runs every case (slower).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './helpers/run';

const root = path.resolve(__dirname, '..');
const sources = ['test/emu/attention_emu.cpp', 'cuda/attention_fwd.cu', 'cuda/attention_bwd.cu', 'cuda/attention_common.cuh',
  'cuda/runtime/cuda_common.cuh', 'cpp/runtime/runtime.h', 'cpp/include/tensorsmith.h'].map((f) => path.join(root, f));
const outDir = path.join(root, 'build', 'attention-emu');
const exe = path.join(outDir, 'attention_emu');

function cudaInclude(): string | null {
  const dirs = [process.env.CUDA_HOME && path.join(process.env.CUDA_HOME, 'include'), '/usr/local/cuda/include'];
  const nvcc = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).stdout.trim();
  if (nvcc) dirs.push(path.join(path.dirname(fs.realpathSync(nvcc)), '..', 'include'));
  for (const d of dirs) if (d && fs.existsSync(path.join(d, 'cuda_bf16.h'))) return d;
  return null;
}

const inc = cudaInclude();
const gxx = spawnSync('sh', ['-c', 'command -v g++'], { encoding: 'utf8' }).stdout.trim();
const skipReason = !gxx ? 'g++ is not installed' : !inc ? 'the CUDA headers (cuda_bf16.h) are not installed' : '';
if (skipReason) console.log(`[cuda-attention-emu.test] skipped: ${skipReason}`);

describe.skipIf(!!skipReason)('fused attention kernels, emulated on the host', () => {
  it('forward and backward match a float64 reference (mma and general kernels)', async () => {
    const newest = Math.max(...sources.map((f) => fs.statSync(f).mtimeMs));
    if (!fs.existsSync(exe) || fs.statSync(exe).mtimeMs < newest) {
      fs.mkdirSync(outDir, { recursive: true });
      const cc = await run(gxx, ['-std=c++20', '-O1', '-g', '-fsanitize=address,undefined', '-fno-sanitize-recover=undefined',
        '-Wno-attributes', `-I${inc}`, `-I${path.join(root, 'cpp', 'include')}`, `-I${path.join(root, 'cuda')}`, sources[0],
        '-o', `${exe}.tmp`, '-lpthread'], { timeoutMs: 600_000 });
      expect(cc.status, `g++ failed:\n${cc.stderr}`).toBe(0);
      fs.renameSync(`${exe}.tmp`, exe);
    }
    const args = process.env.TSM_ATTN_EMU === 'full' ? [] : ['quick'];
    const r = await run(exe, args, { timeoutMs: 900_000, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    expect(r.status, out).toBe(0);
    expect(out.trim().split('\n').pop(), out).toBe('OK');
    expect(out).not.toMatch(/FAIL/);
  }, 1_200_000);
});
