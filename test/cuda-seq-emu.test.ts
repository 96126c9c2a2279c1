// The sequence kernels run on the host: test/emu/seq_emu.cpp compiles cuda/lstm.cu and cuda/index.cu
// as C++ (TSM_SEQ_EMULATE; test/emu/seq_emu_shim.h runs every (block, thread) of a launch in turn
// with the grid capped so the grid-stride loops iterate), under AddressSanitizer, and compares the
// C entry points with float64 references: the LSTM forward/backward through time (h0/c0, biases,
// batch_first, T = 0, B = 0, gradients wanted or not) and gather / index_select / where with the
// atomic-free backward bit-identical to the CPU's scatter-add. This checks the kernels' index logic
// and the host launchers' GEMM operands where no GPU is available; the SGEMM and the column sum are
// host loops here (other files' kernels), and nothing is said about the real device or speed.
//
// Needs g++ (C++20); the .cu files include no CUDA header in this mode. The binary is cached in
// build/seq-emu/ and rebuilt when a source is newer.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './helpers/run';

const root = path.resolve(__dirname, '..');
const sources = ['test/emu/seq_emu.cpp', 'test/emu/seq_emu_shim.h', 'cuda/scratch.cuh', 'cuda/lstm.cu', 'cuda/index.cu',
  'cpp/include/tensorsmith.h'].map((f) => path.join(root, f));
const outDir = path.join(root, 'build', 'seq-emu');
const exe = path.join(outDir, 'seq_emu');

const gxx = spawnSync('sh', ['-c', 'command -v g++'], { encoding: 'utf8' }).stdout.trim();
const skipReason = !gxx ? 'g++ is not installed' : '';
if (skipReason) console.log(`[cuda-seq-emu.test] skipped: ${skipReason}`);

describe.skipIf(!!skipReason)('LSTM and index kernels, emulated on the host', () => {
  it('forward and backward match float64 references (index ops bit-identical to the CPU order)', async () => {
    const newest = Math.max(...sources.map((f) => fs.statSync(f).mtimeMs));
    if (!fs.existsSync(exe) || fs.statSync(exe).mtimeMs < newest) {
      fs.mkdirSync(outDir, { recursive: true });
      const cc = await run(gxx, ['-std=c++20', '-O1', '-g', '-fsanitize=address,undefined', '-fno-sanitize-recover=undefined',
        '-ffp-contract=off', '-Wno-attributes', '-Wno-unknown-pragmas', '-DTSM_SEQ_EMULATE',
        `-I${path.join(root, 'cpp', 'include')}`, `-I${path.join(root, 'test', 'emu')}`,
        '-x', 'c++', path.join(root, 'cuda', 'lstm.cu'), '-x', 'c++', path.join(root, 'cuda', 'index.cu'), '-x', 'none', sources[0],
        '-o', `${exe}.tmp`], { timeoutMs: 600_000 });
      expect(cc.status, `g++ failed:\n${cc.stderr}`).toBe(0);
      fs.renameSync(`${exe}.tmp`, exe);
    }
    const r = await run(exe, [], { timeoutMs: 600_000, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    expect(r.status, out).toBe(0);
    expect(out.trim().split('\n').pop(), out).toBe('OK');
    expect(out).not.toMatch(/FAIL/);
  }, 900_000);
});
