// The CUDA tensor suite: every CUDA op against the CPU on fresh random inputs with odd sizes (1, 7,
// 1023, 65537...), outputs poisoned with NaN before each kernel (lib/cuda-tensor's debug.poison) so
// that unwritten elements show, broadcasting, gradients, an MLP trained with SGD and Adam against
// the CPU, device-mixing and no-kernel errors, and allocator bytes back to their baseline.
//
// Registered twice: by test/cuda-tensor.test.ts on a real GPU (skipped without one), and by
// test/cuda-tensor-emulated.test.ts on the emulated device of helpers/cuda-emulator.ts (the
// TypeScript layer against the CPU kernels, everywhere).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tsm from '../../lib/index';
import type { Tensor } from '../../lib/index';
import * as cu from '../../lib/cuda-tensor';
import * as ops from '../../lib/ops';
import { lstmLayer } from '../../lib/lstm';
import { setUnmaskedAttentionPath } from '../../lib/attention-cuda';
import { seededRandom } from '../../lib/text';

const { F, nn, optim, cuda } = tsm;

const seedAtStart = (Date.now() ^ 0x51ed) >>> 0; // fresh inputs each run; printed on failure
const random = seededRandom(seedAtStart);
function data(n: number, lo = -2, hi = 2): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = lo + (hi - lo) * random();
  return x;
}
/** The same random values on the CPU and on the GPU. */
function pair(shape: number[], lo = -2, hi = 2, requiresGrad = false): [Tensor, Tensor] {
  const d = data(shape.reduce((a, b) => a * b, 1), lo, hi);
  return [tsm.tensor(d, { shape, requiresGrad }), tsm.tensor(d, { shape, device: 'cuda', requiresGrad })];
}

/** Elementwise |got - want| <= atol + rtol |want|, NaN only where want is NaN; names the first miss. */
function expectClose(got: Tensor | ArrayLike<number>, want: Tensor | ArrayLike<number>, what: string, rtol = 1e-5, atol = 1e-6): void {
  const g = 'dataSync' in got ? got.dataSync() : got;
  const w = 'dataSync' in want ? want.dataSync() : want;
  if ('shape' in got && 'shape' in want) expect((got as Tensor).shape, `${what}: shape`).toEqual((want as Tensor).shape);
  expect(g.length, `${what}: length`).toBe(w.length);
  for (let i = 0; i < w.length; i++) {
    const ok = Number.isNaN(w[i]) ? Number.isNaN(g[i]) : g[i] === w[i] || Math.abs(g[i] - w[i]) <= atol + rtol * Math.abs(w[i]);
    if (!ok) throw new Error(`${what}: element ${i} is ${g[i]}, expected ${w[i]} (seed ${seedAtStart})`);
  }
}

const SIZES = [1, 7, 1023, 65537];

/** Registers the suite under `title`; skipped (with vitest's skip) unless `run`. */
export function defineCudaTensorSuite(title: string, run: boolean): void {
describe.skipIf(!run)(title, () => {
  beforeAll(() => {
    cu.debug.poison = true;
  });
  afterAll(() => {
    cu.debug.poison = false;
  });

  it('moves data both ways, creates on the device, reports device and bytes', () => {
    for (const n of [0, ...SIZES]) {
      tsm.tidy(() => {
        const base = tsm.memory().cudaBytes;
        const [c, g] = pair([n]);
        expect(g.device).toBe('cuda:0');
        expect(tsm.memory().cudaBytes).toBe(base + 4 * n);
        expect(Array.from(g.dataSync())).toEqual(Array.from(c.dataSync()));
        const back = g.cpu();
        expect(back.device).toBe('cpu');
        expect(Array.from(back.dataSync())).toEqual(Array.from(c.dataSync()));
        expect(g.cuda()).toBe(g);
        const again = c.to('cuda:0');
        expect(again.device).toBe('cuda:0');
        expect(tsm.memory().cudaBytes).toBe(base + 8 * n);
        g.dispose();
        again.dispose();
        expect(tsm.memory().cudaBytes).toBe(base);
      });
    }
    tsm.tidy(() => {
      const i = tsm.tensor(new Int32Array([1, -2, 2147483647]), { device: 'cuda' });
      expect(i.dtype).toBe('int32');
      expect(Array.from(i.dataSync())).toEqual([1, -2, 2147483647]);
      expect(tsm.zeros([3, 5], { device: 'cuda' }).toArray()).toEqual(tsm.zeros([3, 5]).toArray());
      expect(Array.from(tsm.ones([1023], { device: 'cuda' }).dataSync()).every((v) => v === 1)).toBe(true);
      expect(Array.from(tsm.full([7], -2.5, { device: 'cuda' }).dataSync())).toEqual(new Array(7).fill(-2.5));
      expect(Array.from(tsm.full([3], 7.9, { device: 'cuda', dtype: 'int32' }).dataSync())).toEqual([7, 7, 7]);
      expect(tsm.empty([5], { device: 'cuda' }).shape).toEqual([5]);
      expect(tsm.arange(5, undefined, 1, { device: 'cuda' }).toArray()).toEqual([0, 1, 2, 3, 4]);
      expect(tsm.eye(2, 3, { device: 'cuda' }).toArray()).toEqual([[1, 0, 0], [0, 1, 0]]);
      tsm.manualSeed(5);
      const rc = tsm.randn([1023]);
      tsm.manualSeed(5);
      const rg = tsm.randn([1023], { device: 'cuda' });
      expect(Array.from(rg.dataSync())).toEqual(Array.from(rc.dataSync()));
      expect(tsm.rand([2, 3], { device: 'cuda', requiresGrad: true }).requiresGrad).toBe(true);
      expect(tsm.tensor([[4.5]], { device: 'cuda' }).item()).toBe(4.5);
      expect(tsm.tensor([1.7, -1.7], { device: 'cuda' }).to('int32').toArray()).toEqual([1, -1]);
      expect(tsm.tensor(new Int32Array([3, -4]), { device: 'cuda' }).to('float32').toArray()).toEqual([3, -4]);
    });
  });

  it('unary ops and their gradients match the CPU (odd sizes, poisoned outputs)', () => {
    const cases: [string, (t: Tensor) => Tensor, number, number][] = [
      ['relu', (t) => t.relu(), -2, 2], ['sigmoid', (t) => t.sigmoid(), -12, 12], ['tanh', (t) => t.tanh(), -4, 4],
      ['gelu', (t) => t.gelu(), -4, 4], ['gelu_tanh', (t) => t.gelu('tanh'), -4, 4], ['exp', (t) => t.exp(), -5, 5],
      ['log', (t) => t.log(), 0.05, 20], ['sqrt', (t) => t.sqrt(), 0.05, 20], ['abs', (t) => t.abs(), -2, 2],
      ['neg', (t) => t.neg(), -2, 2], ['silu', (t) => ops.silu(t), -6, 6], ['square', (t) => t.square(), -3, 3],
      ['reciprocal', (t) => ops.reciprocal(t), 0.1, 4], ['sin', (t) => ops.sin(t), -3, 3], ['cos', (t) => ops.cos(t), -3, 3],
      ['rsqrt', (t) => ops.rsqrt(t), 0.05, 20], ['clamp', (t) => t.clamp(-0.5, 0.7), -2, 2],
      ['clamp(min)', (t) => t.clamp(0.1), -2, 2], ['clamp(max)', (t) => t.clamp(null, -0.1), -2, 2],
    ];
    for (const [name, f, lo, hi] of cases) {
      for (const n of SIZES) {
        tsm.tidy(() => {
          const [xc, xg] = pair([n], lo, hi, true);
          const yc = f(xc), yg = f(xg);
          expect(yg.device).toBe('cuda:0');
          expectClose(yg, yc, `${name} forward n=${n}`, 2e-6, 1e-6);
          const [gc, gg] = pair([n]);
          yc.backward(gc);
          yg.backward(gg);
          expect(xg.grad!.device).toBe('cuda:0');
          expectClose(xg.grad!, xc.grad!, `${name} backward n=${n}`, 1e-5, 1e-6);
        });
      }
    }
  });

  it('binary ops: same shape, broadcast, scalars, comparisons, and gradients', () => {
    const names = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
    const differentiable = new Set(['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum']);
    const shapes: [number[], number[]][] = [
      [[1023], [1023]], [[65537], [65537]], [[7, 1, 5], [1, 3, 1]], [[2, 3, 4], [4]], [[1023], [1]],
      [[5, 1], [1, 6]], [[3, 1, 7], [3, 1, 7]], [[], [2, 2]], [[2, 1, 3, 1, 2], [1, 4, 1, 5, 1]],
    ];
    for (const name of names) {
      const fn = (a: Tensor | number, b: Tensor | number) => (ops as unknown as Record<string, (a: Tensor | number, b: Tensor | number) => Tensor>)[name](a, b);
      for (const [sa, sb] of shapes) {
        tsm.tidy(() => {
          // pow: positive bases (log in its gradient); div: divisors away from 0 (the gradient's
          // -a/b^2 summed over broadcast dims would otherwise cancel at float rounding).
          const [ac, ag] = pair(sa, name === 'pow' ? 0.5 : -2, 2, differentiable.has(name));
          const bd = data(sb.reduce((x, y) => x * y, 1), name === 'div' ? 0.5 : -2, 2);
          // Ties, so that eq/le/ge/maximum see equal elements where the shapes allow.
          const ad = ac.dataSync();
          if (sa.join() === sb.join()) for (let i = 0; i < bd.length; i += 3) bd[i] = ad[i];
          const bc = tsm.tensor(bd, { shape: sb, requiresGrad: differentiable.has(name) });
          const bg = tsm.tensor(bd, { shape: sb, device: 'cuda', requiresGrad: differentiable.has(name) });
          const yc = fn(ac, bc), yg = fn(ag, bg);
          expectClose(yg, yc, `${name} [${sa}] [${sb}]`, 2e-6, 1e-6);
          if (differentiable.has(name)) {
            const [gc, gg] = pair(yc.shape.slice());
            yc.backward(gc);
            yg.backward(gg);
            expectClose(ag.grad!, ac.grad!, `${name} [${sa}] [${sb}] grad a`, 1e-5, 1e-5);
            expectClose(bg.grad!, bc.grad!, `${name} [${sa}] [${sb}] grad b`, 1e-5, 1e-5);
          }
        });
      }
      for (const n of SIZES) {
        tsm.tidy(() => {
          const [xc, xg] = pair([n], name === 'pow' ? 0.5 : -2, 2);
          expectClose(fn(xg, 0.75), fn(xc, 0.75), `${name} scalar n=${n}`, 2e-6, 1e-6);
          expectClose(fn(1.5, xg), fn(1.5, xc), `${name} reversed scalar n=${n}`, 2e-6, 1e-6);
        });
      }
    }
  });

  it('sum and mean over dims, max/min/argmax/argmin, with gradients', () => {
    const cases: [number[], (number | number[] | undefined)[]][] = [
      [[65537], [undefined, 0]],
      [[7, 1023], [undefined, 0, 1, [0, 1]]], // rows of a warp each (dim 1)
      [[3, 5, 7], [0, 1, 2, [0, 2], [1, 2], [0, 1]]], // rows of a thread each (dim 2), columns
      [[3, 5000], [1]],                  // rows of a block each, not split
      [[1, 70001], [1, undefined]],      // one long row: split over blocks
      [[70001, 3], [0]],                 // long columns: split over blocks
      [[2, 4097, 3], [1, [0, 1]]],
      [[4, 0, 3], [1, 0]],               // empty reductions: 0 (sum), NaN (mean)
    ];
    for (const [shape, dims] of cases) {
      for (const dim of dims) {
        for (const keep of [false, true]) {
          tsm.tidy(() => {
            const [xc, xg] = pair(shape, -2, 2, true);
            const sc = xc.sum(dim, keep), sg = xg.sum(dim, keep);
            // float32 tree sums against the CPU's double sums: error ~ sqrt(count) ulps of the terms.
            const reduced = dim === undefined ? shape : (Array.isArray(dim) ? dim : [dim]).map((d) => shape[d]);
            const count = reduced.reduce((a, b) => a * b, 1);
            expectClose(sg, sc, `sum [${shape}] dim ${dim} keep ${keep}`, 1e-5, 1e-6 * Math.sqrt(count + 1));
            const mc = xc.mean(dim, keep), mg = xg.mean(dim, keep);
            expectClose(mg, mc, `mean [${shape}] dim ${dim}`, 1e-5, 1e-5);
            const [gc, gg] = pair(sc.shape.slice());
            sc.mul(gc).sum().add(mc.sum()).backward();
            sg.mul(gg).sum().add(mg.sum()).backward();
            expectClose(xg.grad!, xc.grad!, `sum/mean grad [${shape}] dim ${dim}`, 1e-5, 1e-6);
          });
        }
      }
    }
    for (const [shape, dim] of [[[65537], undefined], [[7, 1023], 1], [[7, 1023], 0], [[3, 5, 7], 1], [[1023, 1], 0]] as [number[], number | undefined][]) {
      tsm.tidy(() => {
        const [xc, xg] = pair(shape, -2, 2, true);
        for (const f of [(t: Tensor) => t.max(dim), (t: Tensor) => t.min(dim, true)]) {
          const yc = f(xc), yg = f(xg);
          expectClose(yg, yc, `max/min [${shape}] dim ${dim}`, 0, 0);
          const [gc, gg] = pair(yc.shape.slice());
          yc.backward(gc);
          yg.backward(gg);
        }
        expectClose(xg.grad!, xc.grad!, `max/min grad [${shape}] dim ${dim}`, 0, 1e-6);
        for (const f of [(t: Tensor) => t.argmax(dim), (t: Tensor) => t.argmin(dim)]) {
          const ic = f(xc), ig = f(xg);
          expect(ig.dtype).toBe('int32');
          expect(ig.shape).toEqual(ic.shape);
          expect(Array.from(ig.dataSync())).toEqual(Array.from(ic.dataSync()));
        }
      });
    }
    tsm.tidy(() => {
      // Ties go to the first index; the first NaN wins both (as the CPU kernel).
      const v = [1, 3, 3, NaN, 2, NaN, -1, -1];
      const g = tsm.tensor(v, { device: 'cuda' }), c = tsm.tensor(v);
      expect(g.argmax().item()).toBe(3);
      expect(g.argmin().item()).toBe(3);
      expect(g.slice(0, 0, 3).argmax().item()).toBe(1);
      expect(g.slice(0, 6).argmin().item()).toBe(0);
      expect(Number.isNaN(g.max().item())).toBe(true);
      expect(c.argmax().item()).toBe(3);
    });
  });

  it('softmax and logSoftmax over any dim, rows short and long, with gradients', () => {
    const cases: [number[], number][] = [
      [[5, 1], -1], [[9, 7], -1], [[33, 1023], -1], [[3, 1025], 1], [[2, 65537], -1], [[7, 9], 0], [[4, 33, 5], 1],
    ];
    for (const [shape, dim] of cases) {
      for (const log of [false, true]) {
        tsm.tidy(() => {
          const [xc, xg] = pair(shape, -8, 8, true);
          const f = (t: Tensor) => (log ? t.logSoftmax(dim) : t.softmax(dim));
          const yc = f(xc), yg = f(xg);
          expectClose(yg, yc, `${log ? 'logSoftmax' : 'softmax'} [${shape}] dim ${dim}`, 1e-5, 1e-6);
          const [gc, gg] = pair(shape);
          yc.backward(gc);
          yg.backward(gg);
          expectClose(xg.grad!, xc.grad!, `softmax grad [${shape}] dim ${dim} log ${log}`, 1e-4, 1e-5);
        });
      }
    }
  });

  it('matmul (2-d, batched, broadcast, 1-d) and linear, with gradients', () => {
    const cases: [number[], number[]][] = [
      [[7, 1023], [1023, 5]], [[1, 1], [1, 1]], [[65, 33], [33, 129]], [[3, 7, 9], [3, 9, 4]], [[3, 7, 9], [9, 4]],
      [[7, 9], [3, 9, 4]], [[2, 1, 5, 6], [1, 3, 6, 4]], [[9], [9, 4]], [[3, 7, 9], [9]], [[9], [9]], [[4, 0], [0, 3]],
    ];
    for (const [sa, sb] of cases) {
      tsm.tidy(() => {
        const [ac, ag] = pair(sa, -1, 1, true), [bc, bg] = pair(sb, -1, 1, true);
        const yc = ac.matmul(bc), yg = ag.matmul(bg);
        const k = sa[sa.length - 1];
        expectClose(yg, yc, `matmul [${sa}] @ [${sb}]`, 1e-5, 1e-5 * Math.sqrt(k + 1));
        const [gc, gg] = pair(yc.shape.slice());
        yc.backward(gc);
        yg.backward(gg);
        expectClose(ag.grad!, ac.grad!, `matmul grad a [${sa}] @ [${sb}]`, 1e-4, 1e-4);
        expectClose(bg.grad!, bc.grad!, `matmul grad b [${sa}] @ [${sb}]`, 1e-4, 1e-4);
      });
    }
    for (const [xs, outF, bias] of [[[9, 7], 5, true], [[2, 3, 1023], 17, true], [[9, 7], 5, false], [[0, 7], 5, true]] as [number[], number, boolean][]) {
      tsm.tidy(() => {
        const inF = xs[xs.length - 1];
        const [xc, xg] = pair(xs, -1, 1, true), [wc, wg] = pair([outF, inF], -1, 1, true), [bc, bg] = pair([outF], -1, 1, true);
        const yc = F.linear(xc, wc, bias ? bc : null), yg = F.linear(xg, wg, bias ? bg : null);
        // The GPU sums the inFeatures products in another order than the CPU: the bound grows as sqrt(K), as matmul's.
        expectClose(yg, yc, `linear [${xs}] -> ${outF}`, 1e-5, 1e-5 * Math.sqrt(inF + 1));
        const [gc, gg] = pair(yc.shape.slice());
        yc.backward(gc);
        yg.backward(gg);
        expectClose(xg.grad!, xc.grad!, `linear grad x [${xs}]`, 1e-4, 1e-4);
        expectClose(wg.grad!, wc.grad!, `linear grad w [${xs}]`, 1e-4, 1e-4);
        if (bias) expectClose(bg.grad!, bc.grad!, `linear grad b [${xs}]`, 1e-4, 1e-4);
      });
    }
  });

  it('views share storage; transpose/permute/expand/slice copy on the device, with gradients', () => {
    tsm.tidy(() => {
      const [xc, xg] = pair([6, 35], -1, 1);
      const before = tsm.memory().cudaBytes;
      const v = xg.reshape(5, 42).view([-1]).unsqueeze(0).squeeze().flatten();
      expect(tsm.memory().cudaBytes).toBe(before);
      expect(v.contiguous()).toBe(v);
      expectClose(v, xc.reshape(210), 'views');
    });
    const cases: [number[], (t: Tensor) => Tensor][] = [
      [[7, 1023], (t) => t.transpose()],
      [[1023, 7], (t) => t.transpose(0, 1)],
      [[3, 65, 33], (t) => t.transpose(1, 2)],
      [[3, 65, 33], (t) => t.transpose(0, 2)],
      [[2, 3, 4, 5], (t) => t.permute(3, 0, 2, 1)],
      [[2, 3, 4, 5], (t) => t.permute([1, 0, 2, 3])],
      [[5, 1, 3], (t) => t.expand(2, 5, 4, 3)],
      [[1], (t) => t.expand(65537)],
      [[9, 1023], (t) => t.slice(1, 3, 1000, 7)],
      [[9, 1023], (t) => t.slice(0, -4)],
      [[4, 5, 6], (t) => t.slice(1, 1, 4).transpose(0, 2)],
      [[4, 5], (t) => t.slice(1, 5, 9)],
    ];
    for (const [shape, f] of cases) {
      tsm.tidy(() => {
        const [xc, xg] = pair(shape, -2, 2, true);
        const yc = f(xc), yg = f(xg);
        expectClose(yg, yc, `layout [${shape}] ${f}`, 0, 0);
        const [gc, gg] = pair(yc.shape.slice());
        yc.backward(gc);
        yg.backward(gg);
        expectClose(xg.grad!, xc.grad!, `layout grad [${shape}] ${f}`, 1e-5, 1e-5);
      });
    }
    tsm.tidy(() => {
      const i = tsm.tensor(new Int32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3], device: 'cuda' });
      expect(i.transpose().toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    });
  });

  it('autograd through a small MLP on CUDA matches the CPU gradients', () => {
    tsm.tidy(() => {
      const [w1c, w1g] = pair([16, 7], -0.5, 0.5, true), [b1c, b1g] = pair([16], -0.5, 0.5, true);
      const [w2c, w2g] = pair([3, 16], -0.5, 0.5, true), [b2c, b2g] = pair([3], -0.5, 0.5, true);
      const [xc, xg] = pair([9, 7]), [tc, tg] = pair([9, 3]);
      const loss = (x: Tensor, t: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) => {
        const h = F.linear(x, w1, b1).gelu();
        const o = F.linear(h, w2, b2);
        return F.mseLoss(o, t).add(o.logSoftmax(1).neg().mean()).add(h.tanh().pow(2).sum(1).mean());
      };
      const lc = loss(xc, tc, w1c, b1c, w2c, b2c), lg = loss(xg, tg, w1g, b1g, w2g, b2g);
      expect(lg.device).toBe('cuda:0');
      expectClose([lg.item()], [lc.item()], 'MLP loss', 1e-5, 1e-6);
      lc.backward();
      lg.backward();
      for (const [g, c, n] of [[w1g, w1c, 'w1'], [b1g, b1c, 'b1'], [w2g, w2c, 'w2'], [b2g, b2c, 'b2']] as [Tensor, Tensor, string][]) {
        expect(g.grad!.device).toBe('cuda:0');
        expectClose(g.grad!, c.grad!, `MLP grad ${n}`, 1e-4, 1e-6);
      }
    });
  });

  it('a 2-layer MLP trains with SGD and Adam on CUDA, losses as on the CPU', () => {
    for (const make of [
      (p: Tensor[]) => new optim.SGD(p, { lr: 0.05, momentum: 0.9, weightDecay: 1e-3 }),
      (p: Tensor[]) => new optim.SGD(p, { lr: 0.05, momentum: 0.9, nesterov: true }),
      (p: Tensor[]) => new optim.Adam(p, { lr: 1e-2 }),
      (p: Tensor[]) => new optim.AdamW(p, { lr: 1e-2, amsgrad: true }),
    ]) {
      const cpuModel = new nn.Sequential(new nn.Linear(7, 16), new nn.ReLU(), new nn.Linear(16, 3));
      const gpuModel = new nn.Sequential(new nn.Linear(7, 16), new nn.ReLU(), new nn.Linear(16, 3));
      gpuModel.loadStateDict(cpuModel.stateDict());
      expect(gpuModel.to('cuda')).toBe(gpuModel);
      for (const p of gpuModel.parameters()) expect(p.device).toBe('cuda:0');
      const [xc, xg] = pair([33, 7]), [tc, tg] = pair([33, 3]);
      const oc = make(cpuModel.parameters()), og = make(gpuModel.parameters());
      const lossesC: number[] = [], lossesG: number[] = [];
      for (let step = 0; step < 6; step++) {
        for (const [model, o, x, t, out] of [[cpuModel, oc, xc, tc, lossesC], [gpuModel, og, xg, tg, lossesG]] as const) {
          tsm.tidy(() => {
            o.zeroGrad();
            const l = F.mseLoss(model.forward(x), t);
            l.backward();
            o.step();
            out.push(l.item());
          });
        }
      }
      for (let i = 0; i < lossesC.length; i++)
        expect(Math.abs(lossesG[i] - lossesC[i]), `step ${i}: ${lossesG[i]} vs ${lossesC[i]} (seed ${seedAtStart})`)
          .toBeLessThanOrEqual(1e-4 * Math.abs(lossesC[i]));
      expect(lossesG[lossesG.length - 1]).toBeLessThan(lossesG[0]);
      const pc = cpuModel.parameters(), pg = gpuModel.parameters();
      pc.forEach((p, i) => expectClose(pg[i], p, `parameter ${i} after training`, 1e-4, 1e-5));
      for (const m of [cpuModel, gpuModel]) for (const p of m.parameters()) { p.grad?.dispose(); p.dispose(); }
      xc.dispose(); xg.dispose(); tc.dispose(); tg.dispose();
    }
  });

  it('Module.to moves parameters and gradients in place; a stale optimizer state is a named error', () => {
    const m = new nn.Linear(3, 2);
    const w = m.weight;
    const o = new optim.Adam(m.parameters());
    tsm.tidy(() => {
      m.forward(tsm.ones([1, 3])).sum().backward();
      o.step();
    });
    const before = Array.from(w.dataSync());
    m.to('cuda');
    expect(m.weight).toBe(w);
    expect(w.device).toBe('cuda:0');
    expect(w.requiresGrad).toBe(true);
    expect(w.grad!.device).toBe('cuda:0');
    expect(Array.from(w.dataSync())).toEqual(before);
    tsm.tidy(() => {
      o.zeroGrad();
      m.forward(tsm.ones([1, 3], { device: 'cuda' })).sum().backward();
    });
    expect(() => o.step()).toThrow(/^Adam\.step: params\[0\] is on cuda:0 but its optimizer state was created on another device/);
    m.to('cpu');
    expect(w.device).toBe('cpu');
    expect(w.grad!.device).toBe('cpu');
    for (const p of m.parameters()) { p.grad?.dispose(); p.dispose(); }
  });

  it('clipGradNorm scales CUDA gradients as CPU ones', () => {
    tsm.tidy(() => {
      const [ac, ag] = pair([1023], -1, 1, true), [bc, bg] = pair([7, 3], -1, 1, true);
      ac.mul(3).sum().add(bc.square().sum()).backward();
      ag.mul(3).sum().add(bg.square().sum()).backward();
      const nc = optim.clipGradNorm([ac, bc], 1), ng = optim.clipGradNorm([ag, bg], 1);
      expect(Math.abs(ng - nc)).toBeLessThanOrEqual(1e-5 * nc);
      expectClose(ag.grad!, ac.grad!, 'clipped a', 1e-5, 1e-7);
      expectClose(bg.grad!, bc.grad!, 'clipped b', 1e-5, 1e-7);
    });
  });

  it('conv2d (stride, padding, dilation, groups, bias) and its gradients match the CPU on odd shapes', () => {
    const cases: { x: number[]; w: number[]; bias: boolean; opts: tsm.F.Conv2dOptions }[] = [
      { x: [2, 3, 7, 9], w: [5, 3, 3, 3], bias: true, opts: {} },
      { x: [1, 4, 11, 6], w: [6, 2, 3, 2], bias: true, opts: { stride: [2, 1], padding: [1, 2], dilation: [2, 1], groups: 2 } },
      { x: [3, 1, 5, 5], w: [2, 1, 1, 1], bias: false, opts: { stride: 2 } },
      { x: [2, 6, 8, 7], w: [6, 1, 3, 3], bias: true, opts: { padding: 1, groups: 6 } },
      { x: [5, 1, 28, 28], w: [32, 1, 3, 3], bias: true, opts: {} },
      { x: [2, 3, 4, 5], w: [3, 3, 2, 2], bias: true, opts: { padding: 1, stride: 3, dilation: 2 } },
    ];
    for (const k of cases) {
      tsm.tidy(() => {
        const what = `conv2d x [${k.x}] w [${k.w}] ${JSON.stringify(k.opts)}`;
        const [xc, xg] = pair(k.x, -1, 1, true), [wc, wg] = pair(k.w, -1, 1, true);
        const [bc, bg] = k.bias ? pair([k.w[0]], -1, 1, true) : [null, null];
        const yc = F.conv2d(xc, wc, bc, k.opts), yg = F.conv2d(xg, wg, bg, k.opts);
        expect(yg.device).toBe('cuda:0');
        expectClose(yg, yc, `${what}: y`, 1e-4, 1e-5);
        const [gc, gg] = pair([...yc.shape]);
        yc.mul(gc).sum().backward();
        yg.mul(gg).sum().backward();
        expectClose(xg.grad!, xc.grad!, `${what}: dx`, 1e-4, 1e-5);
        expectClose(wg.grad!, wc.grad!, `${what}: dw`, 1e-4, 1e-4);
        if (bc && bg) expectClose(bg.grad!, bc.grad!, `${what}: db`, 1e-4, 1e-4);
        // Only the weight needs a gradient: no data gradient is computed.
        const [w2c, w2g] = pair(k.w, -1, 1, true);
        F.conv2d(xg.detach(), w2g, null, k.opts).sum().backward();
        F.conv2d(xc.detach(), w2c, null, k.opts).sum().backward();
        expectClose(w2g.grad!, w2c.grad!, `${what}: dw alone`, 1e-4, 1e-4);
      });
    }
  });

  it('maxPool2d (padding, dilation, ceil mode, ties, NaN) and avgPool2d (count_include_pad) match the CPU, with gradients', () => {
    const maxCases: [number[], tsm.F.Pool2dOptions][] = [
      [[2, 3, 7, 9], { kernelSize: 2 }],
      [[1, 2, 9, 8], { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }],
      [[2, 1, 10, 7], { kernelSize: [3, 2], stride: 1, padding: 1, dilation: 2 }],
      [[1, 1, 2, 5], { kernelSize: 2, stride: 1, padding: 1, dilation: 3 }], // windows wholly in the padding
      [[3, 2, 5, 5], { kernelSize: 5 }],
    ];
    for (const [shape, opts] of maxCases) {
      tsm.tidy(() => {
        const what = `maxPool2d [${shape}] ${JSON.stringify(opts)}`;
        // Small integers (ties) and a few NaNs: the index rules decide the gradients.
        const d = data(shape.reduce((a, b) => a * b, 1), 0, 4).map((v) => Math.floor(v));
        for (let i = 5; i < d.length; i += 37) d[i] = NaN;
        const xc = tsm.tensor(d, { shape, requiresGrad: true }), xg = tsm.tensor(d, { shape, device: 'cuda', requiresGrad: true });
        const yc = F.maxPool2d(xc, opts), yg = F.maxPool2d(xg, opts);
        expectClose(yg, yc, `${what}: y`, 0, 0);
        const [gc, gg] = pair([...yc.shape]);
        yc.mul(gc).sum().backward();
        yg.mul(gg).sum().backward();
        expectClose(xg.grad!, xc.grad!, `${what}: dx`, 1e-6, 1e-7);
      });
    }
    const avgCases: [number[], tsm.F.Pool2dOptions][] = [
      [[2, 3, 7, 9], { kernelSize: 2 }],
      [[1, 2, 9, 8], { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false }],
      [[2, 1, 6, 11], { kernelSize: [3, 3], stride: [1, 2], padding: 1, ceilMode: true, countIncludePad: true }],
    ];
    for (const [shape, opts] of avgCases) {
      tsm.tidy(() => {
        const what = `avgPool2d [${shape}] ${JSON.stringify(opts)}`;
        const [xc, xg] = pair(shape, -1, 1, true);
        const yc = F.avgPool2d(xc, opts), yg = F.avgPool2d(xg, opts);
        expectClose(yg, yc, `${what}: y`, 1e-6, 1e-7);
        const [gc, gg] = pair([...yc.shape]);
        yc.mul(gc).sum().backward();
        yg.mul(gg).sum().backward();
        expectClose(xg.grad!, xc.grad!, `${what}: dx`, 1e-6, 1e-7);
      });
    }
  });

  it('crossEntropy (mean/sum/none, ignoreIndex, label smoothing, 1-d and k-d logits) matches the CPU, with gradients', () => {
    const cases: [number[], tsm.F.CrossEntropyOptions][] = [
      [[64, 10], {}],
      [[7, 3], { reduction: 'sum' }],
      [[9, 1025], { reduction: 'none', labelSmoothing: 0.1 }],
      [[5, 4, 3], { ignoreIndex: 2, labelSmoothing: 0.25 }],
      [[6], {}],
      [[4, 3], { ignoreIndex: 1 }],
    ];
    for (const [shape, opts] of cases) {
      tsm.tidy(() => {
        const what = `crossEntropy [${shape}] ${JSON.stringify(opts)}`;
        const c = shape.length === 1 ? shape[0] : shape[1];
        const tshape = shape.length === 1 ? [] : [shape[0], ...shape.slice(2)];
        const t = new Int32Array(tshape.reduce((a, b) => a * b, 1)).map(() => Math.floor(random() * c));
        if (opts.ignoreIndex !== undefined) t[0] = opts.ignoreIndex;
        const [xc, xg] = pair(shape, -3, 3, true);
        const tc = tsm.tensor(t, { shape: tshape }), tg = tsm.tensor(t, { shape: tshape, device: 'cuda' });
        const lc = F.crossEntropy(xc, tc, opts), lg = F.crossEntropy(xg, tg, opts);
        expect(lg.device).toBe('cuda:0');
        expectClose(lg, lc, `${what}: loss`, 1e-5, 1e-6);
        const [gc, gg] = pair([...lc.shape]);
        lc.mul(gc).sum().backward();
        lg.mul(gg).sum().backward();
        expectClose(xg.grad!, xc.grad!, `${what}: dx`, 1e-5, 1e-6);
      });
    }
    tsm.tidy(() => {
      // Every target ignored: the mean is NaN as on the CPU, the gradient 0.
      const [xc, xg] = pair([3, 4], -1, 1, true);
      const t = new Int32Array([-100, -100, -100]);
      const lc = F.crossEntropy(xc, tsm.tensor(t)), lg = F.crossEntropy(xg, tsm.tensor(t, { device: 'cuda' }));
      expect(Number.isNaN(lc.item())).toBe(true);
      expect(Number.isNaN(lg.item())).toBe(true);
      // Device targets are not read back to be checked: an out-of-range one gives a NaN row.
      const bad = F.crossEntropy(xg, tsm.tensor(new Int32Array([1, 4, 0]), { device: 'cuda' }), { reduction: 'none' }).dataSync();
      expect(Number.isNaN(bad[1]) && Number.isFinite(bad[0]) && Number.isFinite(bad[2])).toBe(true);
      expect(() => F.crossEntropy(xc, tsm.tensor(new Int32Array([1, 4, 0])))).toThrow(/^crossEntropy: target 4 at position 1 is out of range \[0, 4\)$/);
    });
  });

  it('layerNorm (warp and block rows, with/without affine, multi-dim shapes) matches the CPU, with gradients', () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[7, 5], [5], true, true],
      [[3, 4, 1023], [1023], true, true],   // a warp per row, longest
      [[2, 1500], [1500], true, false],     // a block per row
      [[300, 40], [40], true, true],        // many rows: dw/db in several chunks + a second pass
      [[2, 3, 4], [3, 4], false, true],
      [[9, 33], [33], false, false],
      [[1, 1], [1], true, true],
    ];
    for (const [shape, ns, hasW, hasB] of cases) {
      tsm.tidy(() => {
        const what = `layerNorm [${shape}] over [${ns}] w ${hasW} b ${hasB}`;
        const [xc, xg] = pair(shape, -3, 3, true);
        const [wc, wg] = hasW ? pair(ns, 0.5, 1.5, true) : [null, null];
        const [bc, bg] = hasB ? pair(ns, -1, 1, true) : [null, null];
        const yc = F.layerNorm(xc, ns, wc, bc, 1e-5), yg = F.layerNorm(xg, ns, wg, bg, 1e-5);
        expect(yg.device).toBe('cuda:0');
        expectClose(yg, yc, `${what}: y`, 1e-4, 1e-5);
        const [gc, gg] = pair(shape);
        yc.mul(gc).sum().backward();
        yg.mul(gg).sum().backward();
        expectClose(xg.grad!, xc.grad!, `${what}: dx`, 1e-3, 1e-4);
        if (wc && wg) expectClose(wg.grad!, wc.grad!, `${what}: dw`, 1e-4, 1e-4);
        if (bc && bg) expectClose(bg.grad!, bc.grad!, `${what}: db`, 1e-4, 1e-4);
        if (wc && wg) {
          // Only the weight needs a gradient: no dx.
          const [w2c, w2g] = pair(ns, 0.5, 1.5, true);
          F.layerNorm(xc.detach(), ns, w2c).mul(gc).sum().backward();
          F.layerNorm(xg.detach(), ns, w2g).mul(gg).sum().backward();
          expectClose(w2g.grad!, w2c.grad!, `${what}: dw alone`, 1e-4, 1e-4);
        }
      });
    }
    expect(() => F.layerNorm(tsm.ones([2, 3], { device: 'cuda' }), 3, tsm.ones([3])))
      .toThrow(/^layerNorm: expected all tensors on the same device, got cuda:0 \(input\) and cpu \(weight\)$/);
  });

  it('batchNorm / nn.BatchNorm2d: training (running stats, counter) and eval match the CPU, with gradients', () => {
    for (const [shape, affine] of [[[4, 3, 5, 7], true], [[2, 5, 1, 1], true], [[3, 2, 9, 33], false]] as [number[], boolean][]) {
      tsm.tidy(() => {
        const what = `BatchNorm2d [${shape}] affine ${affine}`;
        const c = shape[1];
        const mc = new nn.BatchNorm2d(c, { affine, momentum: 0.2 }), mg = new nn.BatchNorm2d(c, { affine, momentum: 0.2 });
        if (affine) {
          mc.weight!.grad = null;
          tsm.noGrad(() => {
            const w = data(c, 0.5, 1.5), b = data(c, -1, 1);
            (mc.weight!._data as Float32Array).set(w);
            (mc.bias!._data as Float32Array).set(b);
          });
        }
        mg.loadStateDict(mc.stateDict());
        mg.to('cuda');
        for (let step = 0; step < 2; step++) {
          const [xc, xg] = pair(shape, -2, 3, true);
          const yc = mc.forward(xc), yg = mg.forward(xg);
          expect(yg.device).toBe('cuda:0');
          expectClose(yg, yc, `${what} step ${step}: y`, 1e-4, 1e-5);
          const [gc, gg] = pair(shape);
          yc.mul(gc).sum().backward();
          yg.mul(gg).sum().backward();
          expectClose(xg.grad!, xc.grad!, `${what} step ${step}: dx`, 1e-3, 1e-4);
          if (affine) {
            expectClose(mg.weight!.grad!, mc.weight!.grad!, `${what} step ${step}: dw`, 1e-4, 1e-4);
            expectClose(mg.bias!.grad!, mc.bias!.grad!, `${what} step ${step}: db`, 1e-4, 1e-4);
            mc.zeroGrad();
            mg.zeroGrad();
          }
        }
        expectClose(mg.running_mean, mc.running_mean, `${what}: running_mean`, 1e-5, 1e-6);
        expectClose(mg.running_var, mc.running_var, `${what}: running_var`, 1e-4, 1e-6);
        expect(mg.num_batches_tracked.device).toBe('cuda:0');
        expect(mg.num_batches_tracked.item()).toBe(2);
        expect(mc.num_batches_tracked.item()).toBe(2);
        mc.eval();
        mg.eval();
        const [xc, xg] = pair(shape, -2, 3, true);
        const yc = mc.forward(xc), yg = mg.forward(xg);
        expectClose(yg, yc, `${what} eval: y`, 1e-5, 1e-6);
        const [gc, gg] = pair(shape);
        yc.mul(gc).sum().backward();
        yg.mul(gg).sum().backward();
        expectClose(xg.grad!, xc.grad!, `${what} eval: dx`, 1e-5, 1e-6);
        expect(mg.num_batches_tracked.item()).toBe(2);
        for (const m of [mc, mg]) for (const p of [...m.parameters(), m.running_mean, m.running_var, m.num_batches_tracked]) { p.grad?.dispose(); p.dispose(); }
      });
    }
    tsm.tidy(() => {
      // F.batchNorm on (N, C, L), no running stats.
      const [xc, xg] = pair([8, 3, 5], -1, 1, true);
      const yc = F.batchNorm(xc, null, null), yg = F.batchNorm(xg, null, null);
      expectClose(yg, yc, 'batchNorm (N, C, L): y', 1e-4, 1e-5);
      const [gc, gg] = pair([8, 3, 5]);
      yc.mul(gc).sum().backward();
      yg.mul(gg).sum().backward();
      expectClose(xg.grad!, xc.grad!, 'batchNorm (N, C, L): dx', 1e-3, 1e-4);
    });
  });

  it('embedding / nn.Embedding (paddingIdx, repeats, 1-3 radix passes) gives the CPU rows and gradients exactly', () => {
    for (const [num, dim, ishape, pad] of [[11, 7, [5, 9], 3], [50000, 5, [3000], null], [70000, 3, [2, 700], 69999], [1, 4, [6], null]] as
      [number, number, number[], number | null][]) {
      tsm.tidy(() => {
        const what = `embedding num ${num} dim ${dim} indices [${ishape}] pad ${pad}`;
        const n = ishape.reduce((a, b) => a * b, 1);
        // Repeats: draw from a small set of rows half of the time.
        const idx = new Int32Array(n).map(() => (random() < 0.5 ? Math.floor(random() * Math.min(num, 5)) : Math.floor(random() * num)));
        if (pad !== null) idx[0] = pad;
        const [wc, wg] = pair([num, dim], -1, 1, true);
        const ic = tsm.tensor(idx, { shape: ishape }), ig = tsm.tensor(idx, { shape: ishape, device: 'cuda' });
        const yc = F.embedding(ic, wc, pad), yg = F.embedding(ig, wg, pad);
        expect(yg.shape).toEqual([...ishape, dim]);
        expectClose(yg, yc, `${what}: y`, 0, 0);
        const [gc, gg] = pair([...ishape, dim]);
        yc.mul(gc).sum().backward();
        ig.dispose(); // the backward keeps its own copy of the indices
        yg.mul(gg).sum().backward();
        expectClose(wg.grad!, wc.grad!, `${what}: dweight`, 0, 0);
      });
    }
    tsm.tidy(() => {
      const mc = new nn.Embedding(6, 4, { paddingIdx: 0 }), mg = new nn.Embedding(6, 4, { paddingIdx: 0 });
      mg.loadStateDict(mc.stateDict());
      mg.to('cuda');
      const idx = new Int32Array([0, 5, 5, 2, 0, 1]);
      const lc = mc.forward(tsm.tensor(idx, { shape: [2, 3] })).tanh().sum();
      const lg = mg.forward(tsm.tensor(idx, { shape: [2, 3], device: 'cuda' })).tanh().sum();
      expectClose([lg.item()], [lc.item()], 'nn.Embedding loss', 1e-6, 1e-6);
      lc.backward();
      lg.backward();
      // Through tanh's derivative 1 - t^2: the CPU's and the GPU's tanh may differ by an ulp of t (~6e-8
      // near 1), which 1 - t^2 turns into ~1.2e-7 absolute.
      expectClose(mg.weight.grad!, mc.weight.grad!, 'nn.Embedding dweight', 1e-6, 5e-7);
      expect(Array.from(mg.weight.grad!.dataSync().subarray(0, 4))).toEqual([0, 0, 0, 0]);
      // Device indices are not read back to be checked: an out-of-range one gives a NaN row and no gradient.
      const [wc, wg] = pair([6, 4], -1, 1, true);
      const yg = F.embedding(tsm.tensor(new Int32Array([1, 9, -1, 1]), { device: 'cuda' }), wg);
      const yv = yg.dataSync();
      expect(Array.from(yv.subarray(4, 12)).every(Number.isNaN)).toBe(true);
      expect(Array.from(yv.subarray(0, 4)).every(Number.isFinite) && Array.from(yv.subarray(12)).every(Number.isFinite)).toBe(true);
      yg.slice(0, 0, 1).sum().add(yg.slice(0, 3, 4).sum()).backward();
      F.embedding(tsm.tensor(new Int32Array([1, 1])), wc).sum().backward();
      expectClose(wg.grad!, wc.grad!, 'embedding with out-of-range device indices: dweight', 0, 0);
      expect(() => F.embedding(tsm.tensor(new Int32Array([1, 9])), wc)).toThrow(/^embedding: index 9 at position 1 is out of range \[0, 6\)$/);
      expect(() => F.embedding(tsm.tensor(new Int32Array([1])), wg))
        .toThrow(/^embedding: expected all tensors on the same device, got cuda:0 \(weight\) and cpu \(indices\)$/);
    });
  });

  it('dropout draws the CPU mask bit for bit for the same seed (odd sizes and offsets), with gradients', () => {
    for (const n of [1, 7, 1023, 65537]) {
      for (const p of [0.1, 0.5, 0.9, 1]) {
        tsm.tidy(() => {
          const [xc, xg] = pair([n], -2, 2, true);
          const skip = Math.floor(random() * 13); // a counter offset that is not a multiple of anything
          tsm.manualSeed(1234 + n);
          tsm.rand([skip]);
          const yc = F.dropout(xc, p, true);
          tsm.manualSeed(1234 + n);
          tsm.rand([skip]);
          const yg = F.dropout(xg, p, true);
          expect(yg.device).toBe('cuda:0');
          expectClose(yg, yc, `dropout n=${n} p=${p}: y`, 0, 0);
          const [gc, gg] = pair([n]);
          yc.mul(gc).sum().backward();
          yg.mul(gg).sum().backward();
          expectClose(xg.grad!, xc.grad!, `dropout n=${n} p=${p}: dx`, 0, 0);
        });
      }
    }
    tsm.tidy(() => {
      const [xc, xg] = pair([5, 7]);
      expectClose(F.dropout(xg, 0.5, false), xc, 'dropout eval', 0, 0);
      const d = new nn.Dropout(0.25);
      tsm.manualSeed(9);
      const a = d.forward(xc);
      tsm.manualSeed(9);
      const b = d.forward(xg);
      expectClose(b, a, 'nn.Dropout', 0, 0);
    });
  });

  it('adaptiveAvgPool2d / nn.AdaptiveAvgPool2d (shrinking, overlapping, identity, growing windows) match the CPU exactly', () => {
    const cases: [number[], tsm.F.Pair][] = [
      [[2, 3, 7, 9], [3, 4]], [[1, 2, 5, 5], 1], [[2, 1, 4, 6], [4, 6]], [[1, 1, 3, 2], [5, 7]], [[3, 2, 10, 13], [4, 5]],
    ];
    for (const [shape, out] of cases) {
      tsm.tidy(() => {
        const what = `adaptiveAvgPool2d [${shape}] -> ${JSON.stringify(out)}`;
        const [xc, xg] = pair(shape, -1, 1, true);
        const yc = F.adaptiveAvgPool2d(xc, out), yg = F.adaptiveAvgPool2d(xg, out);
        expect(yg.device).toBe('cuda:0');
        expectClose(yg, yc, `${what}: y`, 0, 0);
        const [gc, gg] = pair([...yc.shape]);
        yc.mul(gc).sum().backward();
        yg.mul(gg).sum().backward();
        expectClose(xg.grad!, xc.grad!, `${what}: dx`, 0, 0);
      });
    }
    tsm.tidy(() => {
      const m = new nn.AdaptiveAvgPool2d([2, 2]);
      const [xc, xg] = pair([1, 3, 5, 4]);
      expectClose(m.forward(xg), m.forward(xc), 'nn.AdaptiveAvgPool2d', 0, 0);
    });
  });

  it('a small CNN (BatchNorm2d, AdaptiveAvgPool2d, Dropout) and an Embedding + LayerNorm model train on CUDA as on the CPU', () => {
    // No bias on the conv before BatchNorm: BatchNorm removes it, so its gradient is rounding noise, and
    // Adam, which normalises the gradient, would turn that noise into full-size steps of either sign.
    const cnn = () => new nn.Sequential(new nn.Conv2d(2, 4, 3, { padding: 1, bias: false }), new nn.BatchNorm2d(4), new nn.ReLU(),
      new nn.AdaptiveAvgPool2d(2), new nn.Flatten(), new nn.Dropout(0.3), new nn.Linear(16, 3));
    const txt = () => new nn.Sequential(new nn.Embedding(20, 8, { paddingIdx: 0 }), new nn.LayerNorm(8), new nn.Flatten(),
      new nn.Linear(40, 3));
    const [xc, xg] = pair([6, 2, 5, 5]);
    const idx = new Int32Array(30).map(() => Math.floor(random() * 20));
    const ic = tsm.tensor(idx, { shape: [6, 5] }), ig = tsm.tensor(idx, { shape: [6, 5], device: 'cuda' });
    const t = new Int32Array(6).map(() => Math.floor(random() * 3));
    const tc = tsm.tensor(t), tg = tsm.tensor(t, { device: 'cuda' });
    for (const [make, inC, inG] of [[cnn, xc, xg], [txt, ic, ig]] as const) {
      const mc = make(), mg = make();
      mg.loadStateDict(mc.stateDict());
      mg.to('cuda');
      const oc = new optim.Adam(mc.parameters(), { lr: 1e-2 }), og = new optim.Adam(mg.parameters(), { lr: 1e-2 });
      for (let step = 0; step < 4; step++) {
        const losses: number[] = [];
        for (const [m, o, x, tt] of [[mc, oc, inC, tc], [mg, og, inG, tg]] as const) {
          tsm.tidy(() => {
            tsm.manualSeed(500 + step);
            o.zeroGrad();
            const l = F.crossEntropy(m.forward(x), tt);
            l.backward();
            o.step();
            losses.push(l.item());
          });
        }
        expect(Math.abs(losses[1] - losses[0]), `step ${step}: ${losses[1]} vs ${losses[0]} (seed ${seedAtStart})`)
          .toBeLessThanOrEqual(1e-4 * Math.abs(losses[0]) + 1e-5);
      }
      const pc = mc.stateDict(), pg = mg.stateDict();
      for (const k of Object.keys(pc)) expectClose(pg[k], pc[k], `${k} after training`, 1e-3, 1e-4);
      for (const m of [mc, mg]) for (const p of Object.values(m.stateDict())) { p.grad?.dispose(); p.dispose(); }
    }
    for (const x of [xc, xg, ic, ig, tc, tg]) x.dispose();
  });

  it('cat and stack (any dim, int32, empty parts) match the CPU, with gradients', () => {
    const cases: [number[][], number][] = [
      [[[2, 3, 4], [2, 5, 4], [2, 1, 4]], 1], [[[3, 7], [4, 7]], 0], [[[3, 7], [3, 1023]], -1], [[[5], [0], [2]], 0],
      [[[2, 0, 3], [2, 2, 3]], 1],
    ];
    for (const [shapes, dim] of cases) {
      tsm.tidy(() => {
        const ps = shapes.map((sh) => pair(sh, -2, 2, true));
        const yc = ops.cat(ps.map((p) => p[0]), dim), yg = ops.cat(ps.map((p) => p[1]), dim);
        expect(yg.device).toBe('cuda:0');
        expectClose(yg, yc, `cat ${JSON.stringify(shapes)} dim ${dim}`, 0, 0);
        const [gc, gg] = pair(yc.shape.slice());
        yc.mul(gc).sum().backward();
        yg.mul(gg).sum().backward();
        ps.forEach(([c, g], i) => expectClose(g.grad!, c.grad!, `cat grad ${i} ${JSON.stringify(shapes)}`, 0, 0));
      });
    }
    for (const dim of [0, 1, 2, -1]) {
      tsm.tidy(() => {
        const ps = [0, 1, 2].map(() => pair([3, 5], -2, 2, true));
        const yc = ops.stack(ps.map((p) => p[0]), dim), yg = ops.stack(ps.map((p) => p[1]), dim);
        expectClose(yg, yc, `stack dim ${dim}`, 0, 0);
        yc.sum().backward();
        yg.mul(1).sum().backward();
        ps.forEach(([c, g], i) => expectClose(g.grad!, c.grad!, `stack grad ${i} dim ${dim}`, 0, 0));
      });
    }
    tsm.tidy(() => {
      const a = tsm.tensor(new Int32Array([1, 2, 3, 4]), { shape: [2, 2], device: 'cuda' });
      const b = tsm.tensor(new Int32Array([5, 6]), { shape: [2, 1], device: 'cuda' });
      const y = ops.cat([a, b], 1);
      expect(y.dtype).toBe('int32');
      expect(y.toArray()).toEqual([[1, 2, 5], [3, 4, 6]]);
      expect(() => ops.cat([a, tsm.ones([2, 2], { dtype: 'int32' })], 0))
        .toThrow(/^cat: expected all tensors on the same device, got cuda:0 \(tensors\[0\]\) and cpu \(tensors\[1\]\)$/);
    });
  });

  it('gather and indexSelect (repeated and negative indices) match the CPU, with scatter-add gradients', () => {
    const gcases: [number[], number, number[]][] = [[[5, 7], 1, [5, 3]], [[5, 7], 0, [9, 7]], [[3, 4, 6], 2, [2, 4, 11]],
      [[3, 4, 6], 1, [3, 8, 5]], [[1023], 0, [4097]]];
    for (const [xs, dim, is] of gcases) {
      tsm.tidy(() => {
        const d = ((dim % xs.length) + xs.length) % xs.length;
        const idx = new Int32Array(is.reduce((a, b) => a * b, 1)).map(() => Math.floor(random() * xs[d]));
        const [xc, xg] = pair(xs, -2, 2, true);
        const ic = tsm.tensor(idx, { shape: is }), ig = tsm.tensor(idx, { shape: is, device: 'cuda' });
        const yc = ops.gather(xc, dim, ic), yg = ops.gather(xg, dim, ig);
        expectClose(yg, yc, `gather [${xs}] dim ${dim} index [${is}]`, 0, 0);
        ig.dispose(); // the node keeps its own copy
        const [gc, gg] = pair(is);
        yc.mul(gc).sum().backward();
        yg.mul(gg).sum().backward();
        expectClose(xg.grad!, xc.grad!, `gather grad [${xs}] dim ${dim}`, 0, 0);
      });
    }
    tsm.tidy(() => {
      const xi = tsm.tensor(new Int32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3], device: 'cuda' });
      expect(ops.gather(xi, 1, tsm.tensor(new Int32Array([2, 0]), { shape: [2, 1], device: 'cuda' })).toArray()).toEqual([[3], [4]]);
      const xg = tsm.ones([2, 3], { device: 'cuda' });
      expect(() => ops.gather(xg, 1, tsm.tensor(new Int32Array([0, 3]), { shape: [2, 1], device: 'cuda' })))
        .toThrow(/^gather: index 3 is out of range for dim 1 of size 3$/);
      expect(() => ops.gather(xg, 1, tsm.tensor(new Int32Array([0, 1]), { shape: [2, 1] })))
        .toThrow(/^gather: expected all tensors on the same device, got cuda:0 \(input\) and cpu \(index\)$/);
    });
    const icases: [number[], number, number[]][] = [[[10, 7], 0, [3, -1, 3, 0, 9, 3]], [[4, 9, 5], 1, [8, -9, 2, 2]],
      [[6, 1023], 1, [5, 1022, 0]], [[5, 3], 0, []], [[7], 0, [6, 6, 6, 1]]];
    for (const [xs, dim, idx] of icases) {
      for (const kind of ['array', 'cpu', 'cuda'] as const) {
        tsm.tidy(() => {
          const [xc, xg] = pair(xs, -2, 2, true);
          const index = kind === 'array' ? idx : tsm.tensor(Int32Array.from(idx), { device: kind === 'cuda' ? 'cuda' : 'cpu' });
          const yc = ops.indexSelect(xc, dim, idx), yg = ops.indexSelect(xg, dim, index);
          expectClose(yg, yc, `indexSelect [${xs}] dim ${dim} [${idx}] (${kind})`, 0, 0);
          const [gc, gg] = pair(yc.shape.slice());
          yc.mul(gc).sum().backward();
          yg.mul(gg).sum().backward();
          expectClose(xg.grad!, xc.grad!, `indexSelect grad [${xs}] dim ${dim} (${kind})`, 0, 0);
        });
      }
    }
    tsm.tidy(() => {
      const x = tsm.tensor([[1, 2], [3, 4], [5, 6]], { device: 'cuda' });
      expect(x.index([2, 0]).toArray()).toEqual([[5, 6], [1, 2]]);
      expect(() => x.index([3])).toThrow(/^index: index 3 is out of range for dim 0 of size 3$/);
    });
  });

  it('where (broadcast, int32 and float conditions, scalars) matches the CPU, with gradients', () => {
    const cases: [number[], number[], number[]][] = [[[7, 5], [7, 5], [7, 5]], [[3, 1, 5], [4, 1], [5]], [[1023], [1], [1023]],
      [[2, 1, 3, 1], [1, 4, 1, 5], [2, 4, 3, 5]], [[], [3, 2], [2]]];
    for (const [cs, as, bs] of cases) {
      for (const intCond of [false, true]) {
        tsm.tidy(() => {
          const n = cs.reduce((a, b) => a * b, 1);
          const cd = Float32Array.from({ length: n }, (_, i) => (i % 5 === 3 ? -0 : i % 7 === 2 ? NaN : random() < 0.5 ? 0 : random() - 0.5));
          const cc = intCond ? tsm.tensor(Int32Array.from(cd, (v) => (Number.isNaN(v) ? 1 : Math.sign(v))), { shape: cs })
            : tsm.tensor(cd, { shape: cs });
          const cg = cc.to('cuda');
          const [ac, ag] = pair(as, -2, 2, true), [bc, bg] = pair(bs, -2, 2, true);
          const yc = ops.where(cc, ac, bc), yg = ops.where(cg, ag, bg);
          expectClose(yg, yc, `where [${cs}] [${as}] [${bs}] int ${intCond}`, 0, 0);
          const [gc, gg] = pair(yc.shape.slice());
          yc.mul(gc).sum().backward();
          yg.mul(gg).sum().backward();
          expectClose(ag.grad!, ac.grad!, `where grad a [${cs}] [${as}] [${bs}]`, 1e-6, 1e-6);
          expectClose(bg.grad!, bc.grad!, `where grad b [${cs}] [${as}] [${bs}]`, 1e-6, 1e-6);
          expectClose(ops.where(cg, ag, 2.5), ops.where(cc, ac, 2.5), 'where scalar b', 0, 0);
          expectClose(ops.where(cg, -1, bg), ops.where(cc, -1, bc), 'where scalar a', 0, 0);
        });
      }
    }
    tsm.tidy(() => {
      expect(() => ops.where(tsm.ones([2], { device: 'cuda' }), tsm.ones([2]), 0))
        .toThrow(/^where: expected all tensors on the same device, got cuda:0 \(condition\) and cpu \(input\)$/);
    });
  });

  it('the LSTM (functional and nn.LSTM: h0/c0, batchFirst, no bias, 2 layers, unbatched) matches the CPU, with gradients', () => {
    const tol = { r: 1e-4, a: 1e-5 };
    const cases: { T: number; B: number; I: number; H: number; bf: boolean; state: boolean; bias: boolean }[] = [
      { T: 5, B: 3, I: 4, H: 7, bf: false, state: true, bias: true },
      { T: 6, B: 2, I: 9, H: 5, bf: true, state: true, bias: true },
      { T: 1, B: 4, I: 3, H: 33, bf: false, state: false, bias: false },
      { T: 9, B: 1, I: 1, H: 2, bf: true, state: false, bias: true },
    ];
    for (const k of cases) {
      tsm.tidy(() => {
        const what = `lstm ${JSON.stringify(k)}`;
        const G = 4 * k.H, s = 1 / Math.sqrt(k.H);
        const [xc, xg] = pair(k.bf ? [k.B, k.T, k.I] : [k.T, k.B, k.I], -1, 1, true);
        const [h0c, h0g] = pair([k.B, k.H], -1, 1, true), [c0c, c0g] = pair([k.B, k.H], -1, 1, true);
        const [wic, wig] = pair([G, k.I], -s, s, true), [whc, whg] = pair([G, k.H], -s, s, true);
        const [bic, big] = pair([G], -s, s, true), [bhc, bhg] = pair([G], -s, s, true);
        const run = (x: Tensor, h0: Tensor, c0: Tensor, wi: Tensor, wh: Tensor, bi: Tensor, bh: Tensor) =>
          lstmLayer(x, k.state ? h0 : null, k.state ? c0 : null, wi, wh, k.bias ? bi : null, k.bias ? bh : null, k.bf);
        const rc = run(xc, h0c, c0c, wic, whc, bic, bhc), rg = run(xg, h0g, c0g, wig, whg, big, bhg);
        expect(rg.output.device).toBe('cuda:0');
        expectClose(rg.output, rc.output, `${what}: output`, tol.r, tol.a);
        expectClose(rg.hN, rc.hN, `${what}: hN`, tol.r, tol.a);
        expectClose(rg.cN, rc.cN, `${what}: cN`, tol.r, tol.a);
        const [gyc, gyg] = pair(rc.output.shape.slice()), [ghc, ghg] = pair([k.B, k.H]), [gcc, gcg] = pair([k.B, k.H]);
        rc.output.mul(gyc).sum().add(rc.hN.mul(ghc).sum()).add(rc.cN.mul(gcc).sum()).backward();
        rg.output.mul(gyg).sum().add(rg.hN.mul(ghg).sum()).add(rg.cN.mul(gcg).sum()).backward();
        const named: [string, Tensor, Tensor][] = [['x', xg, xc], ['wIh', wig, wic], ['wHh', whg, whc]];
        if (k.state) named.push(['h0', h0g, h0c], ['c0', c0g, c0c]);
        if (k.bias) named.push(['bIh', big, bic], ['bHh', bhg, bhc]);
        for (const [n, g, c] of named) {
          expect(g.grad!.device, `${what}: d${n} device`).toBe('cuda:0');
          expectClose(g.grad!, c.grad!, `${what}: d${n}`, 1e-4, 1e-4);
        }
        // Only the weights need gradients (the input is detached): no dx is computed.
        const [w2c, w2g] = pair([G, k.H], -s, s, true);
        lstmLayer(xg.detach(), null, null, wig.detach(), w2g, null, null, k.bf).output.sum().backward();
        lstmLayer(xc.detach(), null, null, wic.detach(), w2c, null, null, k.bf).output.sum().backward();
        expectClose(w2g.grad!, w2c.grad!, `${what}: dwHh alone`, 1e-4, 1e-4);
      });
    }
    for (const [batchFirst, unbatched] of [[true, false], [false, false], [false, true]] as const) {
      const cpuM = new nn.LSTM({ inputSize: 6, hiddenSize: 8, numLayers: 2, batchFirst });
      const gpuM = new nn.LSTM({ inputSize: 6, hiddenSize: 8, numLayers: 2, batchFirst });
      gpuM.loadStateDict(cpuM.stateDict());
      gpuM.to('cuda');
      tsm.tidy(() => {
        const what = `nn.LSTM batchFirst ${batchFirst} unbatched ${unbatched}`;
        const [xc, xg] = pair(unbatched ? [5, 6] : batchFirst ? [3, 5, 6] : [5, 3, 6], -1, 1);
        const st = unbatched ? [2, 8] : [2, 3, 8];
        const [hc, hg] = pair(st, -1, 1), [cc, cg] = pair(st, -1, 1);
        const [oc, [hnc, cnc]] = cpuM.forward(xc, [hc, cc]);
        const [og, [hng, cng]] = gpuM.forward(xg, [hg, cg]);
        expectClose(og, oc, `${what}: output`, tol.r, tol.a);
        expectClose(hng, hnc, `${what}: hN`, tol.r, tol.a);
        expectClose(cng, cnc, `${what}: cN`, tol.r, tol.a);
        oc.square().sum().add(hnc.sum()).add(cnc.mean()).backward();
        og.square().sum().add(hng.sum()).add(cng.mean()).backward();
        const pc = cpuM.namedParameters(), pg = gpuM.namedParameters();
        pc.forEach(([n, p], i) => expectClose(pg[i][1].grad!, p.grad!, `${what}: grad ${n}`, 1e-4, 1e-4));
      });
      for (const m of [cpuM, gpuM]) for (const p of m.parameters()) { p.grad?.dispose(); p.dispose(); }
    }
  });

  it('an LSTM sequence model (LSTM -> Linear -> crossEntropy over gathered steps) trains with Adam on CUDA as on the CPU', () => {
    const make = () => {
      const lstm = new nn.LSTM({ inputSize: 5, hiddenSize: 12, numLayers: 2, batchFirst: true });
      const head = new nn.Linear(12, 4);
      return { lstm, head, params: [...lstm.parameters(), ...head.parameters()] };
    };
    const c = make(), g = make();
    g.lstm.loadStateDict(c.lstm.stateDict());
    g.head.loadStateDict(c.head.stateDict());
    g.lstm.to('cuda');
    g.head.to('cuda');
    const [xc, xg] = pair([3, 6, 5], -1, 1);
    const t = new Int32Array(6).map(() => Math.floor(random() * 4));
    const steps = [5, 0, 2];
    const loss = (m: typeof c, x: Tensor, dev: 'cpu' | 'cuda') => {
      const [out] = m.lstm.forward(x);
      const last = ops.indexSelect(out, 1, steps);                 // (3, 3, 12): chosen steps
      const flat = ops.cat([last.reshape(9, 12), ops.stack([out.slice(1, 1, 2).reshape(3, 12)], 0).reshape(3, 12)], 0);
      const logits = m.head.forward(flat);                         // (12, 4)
      const tgt = tsm.tensor(Int32Array.from({ length: 12 }, (_, i) => t[i % 6]), { device: dev });
      return F.crossEntropy(logits, tgt);
    };
    const oc = new optim.Adam(c.params, { lr: 1e-2 }), og = new optim.Adam(g.params, { lr: 1e-2 });
    const lc: number[] = [], lg: number[] = [];
    for (let step = 0; step < 5; step++) {
      tsm.tidy(() => { oc.zeroGrad(); const l = loss(c, xc, 'cpu'); l.backward(); oc.step(); lc.push(l.item()); });
      tsm.tidy(() => { og.zeroGrad(); const l = loss(g, xg, 'cuda'); l.backward(); og.step(); lg.push(l.item()); });
    }
    lc.forEach((v, i) => expect(Math.abs(lg[i] - v), `step ${i}: ${lg[i]} vs ${v} (seed ${seedAtStart})`).toBeLessThanOrEqual(1e-4 * Math.abs(v) + 1e-6));
    expect(lg[lg.length - 1]).toBeLessThan(lg[0]);
    c.params.forEach((p, i) => expectClose(g.params[i], p, `LSTM model parameter ${i} after training`, 1e-4, 1e-5));
    for (const m of [c, g]) for (const p of m.params) { p.grad?.dispose(); p.dispose(); }
    xc.dispose(); xg.dispose();
  });

  it('scaledDotProductAttention on CUDA (fused and softmax paths: plain, causal, Lq != Lk, 3-d; composed: masks) and MultiheadAttention match the CPU', () => {
    const cases: { q: number[]; k: number[]; opts: tsm.F.ScaledDotProductAttentionOptions; mask?: 'bool' | 'float' }[] = [
      { q: [2, 3, 5, 8], k: [2, 3, 5, 8], opts: {} },
      { q: [1, 2, 7, 16], k: [1, 2, 7, 16], opts: { isCausal: true } },
      { q: [2, 1, 3, 5], k: [2, 1, 9, 5], opts: { scale: 0.3 } },
      { q: [4, 6, 8], k: [4, 10, 8], opts: { isCausal: true } },
      { q: [2, 2, 4, 8], k: [2, 2, 6, 8], opts: {}, mask: 'bool' },
      { q: [2, 2, 4, 8], k: [2, 2, 6, 8], opts: { isCausal: true }, mask: 'float' },
    ];
    for (const [c, path] of cases.flatMap((c) => (['fused', 'softmax'] as const).map((p) => [c, p] as const))) {
      setUnmaskedAttentionPath(path);
      tsm.tidy(() => {
        const what = `sdpa q [${c.q}] k [${c.k}] ${JSON.stringify(c.opts)} mask ${c.mask ?? 'none'} path ${path}`;
        const [qc, qg] = pair(c.q, -1, 1, true), [kc, kg] = pair(c.k, -1, 1, true), [vc, vg] = pair(c.k, -1, 1, true);
        let mc: Tensor | null = null, mg: Tensor | null = null;
        if (c.mask) {
          const Lq = c.q[c.q.length - 2], Lk = c.k[c.k.length - 2];
          const shape = [c.q[0], 1, Lq, Lk];
          const m = new Float32Array(c.q[0] * Lq * Lk).map(() => (random() < 0.3 ? 0 : 1));
          m.fill(0, 0, Lk); // query 0 of batch 0 sees no key: a zero row, zero gradients
          mc = c.mask === 'bool' ? tsm.tensor(Int32Array.from(m), { shape }) : tsm.tensor(m.map((v) => (v ? random() : -Infinity)), { shape });
          mg = mc.to('cuda');
        }
        const yc = F.scaledDotProductAttention(qc, kc, vc, { ...c.opts, attnMask: mc });
        const yg = F.scaledDotProductAttention(qg, kg, vg, { ...c.opts, attnMask: mg });
        expect(yg.device).toBe('cuda:0');
        expectClose(yg, yc, `${what}: out`, 1e-4, 1e-5);
        const [gc, gg] = pair(yc.shape.slice());
        yc.mul(gc).sum().backward();
        yg.mul(gg).sum().backward();
        expectClose(qg.grad!, qc.grad!, `${what}: dq`, 1e-4, 1e-5);
        expectClose(kg.grad!, kc.grad!, `${what}: dk`, 1e-4, 1e-5);
        expectClose(vg.grad!, vc.grad!, `${what}: dv`, 1e-4, 1e-5);
      });
    }
    setUnmaskedAttentionPath('auto');
    const cpuM = new nn.MultiheadAttention({ embedDim: 12, numHeads: 3, batchFirst: true });
    const gpuM = new nn.MultiheadAttention({ embedDim: 12, numHeads: 3, batchFirst: true });
    gpuM.loadStateDict(cpuM.stateDict());
    gpuM.to('cuda');
    for (const padded of [false, true]) {
      tsm.tidy(() => {
        const [xc, xg] = pair([2, 5, 12], -1, 1, true);
        const kpm = padded ? tsm.tensor(new Int32Array([0, 0, 0, 1, 1, 0, 0, 0, 0, 0]), { shape: [2, 5] }) : null;
        const [oc] = cpuM.forward(xc, xc, xc, { keyPaddingMask: kpm, isCausal: !padded });
        const [og] = gpuM.forward(xg, xg, xg, { keyPaddingMask: kpm ? kpm.to('cuda') : null, isCausal: !padded });
        expectClose(og, oc, `MultiheadAttention padded ${padded}: out`, 1e-4, 1e-5);
        oc.square().sum().backward();
        og.square().sum().backward();
        expectClose(xg.grad!, xc.grad!, `MultiheadAttention padded ${padded}: dx`, 1e-4, 1e-5);
        const pc = cpuM.namedParameters(), pg = gpuM.namedParameters();
        pc.forEach(([n, p], i) => expectClose(pg[i][1].grad!, p.grad!, `MultiheadAttention: grad ${n}`, 1e-4, 1e-5));
      });
      for (const m of [cpuM, gpuM]) for (const p of m.parameters()) { p.grad?.dispose(); p.grad = null; }
    }
    for (const m of [cpuM, gpuM]) for (const p of m.parameters()) p.dispose();
  });

  it('mixing devices, and ops without a CUDA kernel, are named errors', () => {
    tsm.tidy(() => {
      const g = tsm.ones([2, 3], { device: 'cuda' }), c = tsm.ones([2, 3]);
      expect(() => g.add(c)).toThrow(/^add: expected all tensors on the same device, got cuda:0 \(a\) and cpu \(b\)$/);
      expect(() => c.matmul(g.transpose())).toThrow(/^matmul: .*cpu \(input\) and cuda:0 \(other\)$/);
      expect(() => F.nllLoss(g.logSoftmax(1), tsm.tensor(new Int32Array(2), { device: 'cuda' })))
        .toThrow(/^nllLoss: no CUDA kernel yet for this op; move the tensor to the CPU with \.cpu\(\)$/);
      expect(() => F.conv2d(g.reshape(1, 1, 2, 3), tsm.ones([1, 1, 1, 1])))
        .toThrow(/^conv2d: expected all tensors on the same device, got cuda:0 \(input\) and cpu \(weight\)$/);
      expect(() => F.crossEntropy(g, tsm.tensor(new Int32Array(2))))
        .toThrow(/^crossEntropy: expected all tensors on the same device, got cuda:0 \(input\) and cpu \(target\)$/);
      expect(() => new optim.RMSprop([g.requiresGrad_()]).step()).not.toThrow(); // no grad yet: nothing to do
      g.sum().backward();
      expect(() => new optim.RMSprop([g]).step()).toThrow(/^RMSprop\.step: no CUDA kernel yet/);
    });
  });

  it('dispose, tidy and emptyCache return the allocator to its baseline', () => {
    cuda.synchronize();
    const base = cuda.memoryStats().allocatedBytes;
    const baseBytes = tsm.memory().cudaBytes;
    const kept = tsm.tidy(() => {
      const [, x] = pair([1023, 65], -1, 1, true);
      const y = x.matmul(x.transpose()).softmax(-1).sum(0).mean();
      y.backward();
      const k = x.grad!;
      expect(cuda.memoryStats().allocatedBytes).toBeGreaterThan(base);
      x.grad = null;
      return k;
    });
    expect(tsm.memory().cudaBytes).toBe(baseBytes + kept.size * 4);
    kept.dispose();
    expect(tsm.memory().cudaBytes).toBe(baseBytes);
    expect(cuda.memoryStats().allocatedBytes).toBe(base);
    cuda.emptyCache();
    const s = cuda.memoryStats();
    expect(s.allocatedBytes).toBe(base);
    expect(s.reservedBytes).toBe(s.allocatedBytes);
  });
});
}
