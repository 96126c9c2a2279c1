// GPU-only checks of the norm kernels (cuda/norm.cu, embedding.cu, dropout.cu, adaptive_pool.cu)
// at sizes the emulated suite does not reach: long rows and many rows for layerNorm, CNN-sized
// batchNorm, an embedding backward with a hot row over many positions, a dropout mask of millions of
// elements, and run-to-run determinism (no float atomics anywhere: two runs give the same bits).
// The op-by-op comparisons with the CPU on odd shapes are in helpers/cuda-tensor-suite.ts (run by
// cuda-tensor.test.ts on a GPU and cuda-tensor-emulated.test.ts everywhere); the kernels' logic is
// also checked on the host by cuda-norm-emu.test.ts. Skipped without a GPU (the reason is printed).
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import type { Tensor } from '../lib/index';
import * as cu from '../lib/cuda-tensor';

const { F, cuda } = tsm;
const available = cuda.isAvailable();
if (!available) console.log(`[cuda-norm.test] GPU tests skipped: ${cuda.unavailableReason()}`);

let seed = 0x2545f491;
function data(n: number, lo = -1, hi = 1): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    x[i] = lo + ((hi - lo) * seed) / 4294967296;
  }
  return x;
}
function pair(shape: number[], lo = -1, hi = 1, requiresGrad = false): [Tensor, Tensor] {
  const d = data(shape.reduce((a, b) => a * b, 1), lo, hi);
  return [tsm.tensor(d, { shape, requiresGrad }), tsm.tensor(d, { shape, device: 'cuda', requiresGrad })];
}
function maxErr(got: Tensor, want: Tensor, rtol: number, atol: number, what: string): void {
  const g = got.dataSync(), w = want.dataSync();
  expect(g.length, what).toBe(w.length);
  for (let i = 0; i < w.length; i++)
    if (!(Math.abs(g[i] - w[i]) <= atol + rtol * Math.abs(w[i])))
      throw new Error(`${what}: element ${i} is ${g[i]}, expected ${w[i]}`);
}
const bits = (t: Tensor) => Array.from(new Uint32Array(t.dataSync().slice().buffer));

describe.skipIf(!available)('CUDA norm kernels at scale (GPU)', () => {
  it('layerNorm: 4096 x 4096 (block rows) and 65536 x 96 (warp rows, chunked dw/db), deterministic', () => {
    cu.debug.poison = true;
    try {
      for (const [rows, cols] of [[4096, 4096], [65536, 96]]) {
        tsm.tidy(() => {
          const [xc, xg] = pair([rows, cols], -2, 3, true), [wc, wg] = pair([cols], 0.5, 1.5, true), [bc, bg] = pair([cols], -1, 1, true);
          const yc = F.layerNorm(xc, cols, wc, bc), yg = F.layerNorm(xg, cols, wg, bg);
          maxErr(yg, yc, 1e-4, 2e-5, `layerNorm ${rows}x${cols} y`);
          const [gc, gg] = pair([rows, cols]);
          yc.mul(gc).sum().backward();
          yg.mul(gg).sum().backward();
          maxErr(xg.grad!, xc.grad!, 1e-3, 2e-4, `layerNorm ${rows}x${cols} dx`);
          maxErr(wg.grad!, wc.grad!, 1e-4, 2e-5 * Math.sqrt(rows), `layerNorm ${rows}x${cols} dw`);
          maxErr(bg.grad!, bc.grad!, 1e-4, 2e-5 * Math.sqrt(rows), `layerNorm ${rows}x${cols} db`);
          const first = [bits(wg.grad!), bits(bg.grad!)];
          wg.grad = null;
          bg.grad = null;
          F.layerNorm(xg, cols, wg, bg).mul(gg).sum().backward();
          expect(bits(wg.grad!)).toEqual(first[0]);
          expect(bits(bg.grad!)).toEqual(first[1]);
        });
      }
    } finally {
      cu.debug.poison = false;
    }
  });

  it('batchNorm on [64, 64, 32, 32] (training and eval) matches the CPU', () => {
    tsm.tidy(() => {
      const shape = [64, 64, 32, 32];
      const [xc, xg] = pair(shape, -2, 3, true);
      const rmc = tsm.zeros([64]), rvc = tsm.ones([64]), rmg = tsm.zeros([64], { device: 'cuda' }), rvg = tsm.ones([64], { device: 'cuda' });
      const yc = F.batchNorm(xc, rmc, rvc), yg = F.batchNorm(xg, rmg, rvg);
      maxErr(yg, yc, 1e-4, 5e-5, 'batchNorm y');
      maxErr(rmg, rmc, 1e-5, 1e-6, 'running_mean');
      maxErr(rvg, rvc, 1e-4, 1e-6, 'running_var');
      const [gc, gg] = pair(shape);
      yc.mul(gc).sum().backward();
      yg.mul(gg).sum().backward();
      maxErr(xg.grad!, xc.grad!, 1e-3, 2e-4, 'batchNorm dx');
      maxErr(F.batchNorm(xg, rmg, rvg, null, null, { training: false }), F.batchNorm(xc, rmc, rvc, null, null, { training: false }),
        1e-5, 1e-6, 'batchNorm eval y');
    });
  });

  it('embedding backward: a hot row over 200000 positions, 3 radix passes, bit-identical to the CPU and run to run', () => {
    tsm.tidy(() => {
      const num = 100000, dim = 64, n = 200000;
      const idx = new Int32Array(n);
      for (let i = 0; i < n; i++) idx[i] = i % 3 === 0 ? 1 : (Math.imul(i, 2654435761) >>> 0) % num;
      const [wc, wg] = pair([num, dim], -1, 1, true);
      const ic = tsm.tensor(idx), ig = tsm.tensor(idx, { device: 'cuda' });
      const [gc, gg] = pair([n, dim]);
      F.embedding(ic, wc, 0).mul(gc).sum().backward();
      F.embedding(ig, wg, 0).mul(gg).sum().backward();
      const first = bits(wg.grad!);
      expect(first).toEqual(bits(wc.grad!));
      wg.grad = null;
      F.embedding(ig, wg, 0).mul(gg).sum().backward();
      expect(bits(wg.grad!)).toEqual(first);
    });
  });

  it('dropout on 2^22 + 3 elements gives the CPU mask bit for bit; adaptiveAvgPool2d [32, 512, 7, 7] -> 1 exact', () => {
    tsm.tidy(() => {
      const [xc, xg] = pair([(1 << 22) + 3]);
      tsm.manualSeed(31337);
      const yc = F.dropout(xc, 0.1, true);
      tsm.manualSeed(31337);
      const yg = F.dropout(xg, 0.1, true);
      expect(bits(yg)).toEqual(bits(yc));
      const [pc, pg] = pair([32, 512, 7, 7], -1, 1, true);
      const ac = F.adaptiveAvgPool2d(pc, 1), ag = F.adaptiveAvgPool2d(pg, 1);
      expect(bits(ag)).toEqual(bits(ac));
      ac.sum().backward();
      ag.sum().backward();
      expect(bits(pg.grad!)).toEqual(bits(pc.grad!));
    });
  });
});
