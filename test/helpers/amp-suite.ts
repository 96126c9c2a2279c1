// Mixed precision on CUDA tensors: bfloat16/float16 storage and casts on the device (bit for bit
// against the host conversions), tsm.autocast (matmul, linear, scaledDotProductAttention on 16-bit
// operands with float32 accumulation; gradients to the float32 tensors; weight-cast cache; nesting;
// async) and tsm.GradScaler with CUDA gradients (skip on inf, one read-back).
//
// Registered twice: by test/cuda-amp.test.ts on a real GPU (skipped without one) and by
// test/amp-emulated.test.ts on the emulated device of helpers/cuda-emulator.ts (16-bit GEMM inputs
// decoded exactly, float32 accumulation; casts by lib/half.ts). `calls` (the emulator's kernel-call
// counts) enables the checks that count kernel launches and read-backs.
import { describe, expect, it } from 'vitest';
import * as tsm from '../../lib/index';
import type { Tensor } from '../../lib/index';
import { fromData } from '../../lib/tensor';
import { seededRandom } from '../../lib/text';

const { F, nn, optim } = tsm;

const seedAtStart = (Date.now() ^ 0xa3c5) >>> 0;  // fresh inputs each run; printed on failure
const random = seededRandom(seedAtStart);
function data(n: number, lo = -1, hi = 1): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = lo + (hi - lo) * random();
  return x;
}
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** max |got - want| / max(|want|, tiny): the error relative to the tensor's scale. */
function relErr(got: Tensor | Float32Array, want: Tensor | Float32Array): number {
  const g = got instanceof Float32Array ? got : (got.dataSync() as Float32Array);
  const w = want instanceof Float32Array ? want : (want.dataSync() as Float32Array);
  expect(g.length).toBe(w.length);
  let d = 0, m = 1e-30;
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(g[i])) return Infinity;
    d = Math.max(d, Math.abs(g[i] - w[i]));
    m = Math.max(m, Math.abs(w[i]));
  }
  return d / m;
}
function expectRel(got: Tensor | Float32Array, want: Tensor | Float32Array, tol: number, what: string): void {
  const e = relErr(got, want);
  if (!(e <= tol)) throw new Error(`${what}: relative error ${e} > ${tol} (seed ${seedAtStart})`);
}

/** Values rounded to `dtype` and back, on the CPU (what the 16-bit kernels see). */
const round16 = (t: Tensor, dtype: 'bfloat16' | 'float16') => t.cpu().to(dtype).to('float32');
/** Tolerance of a 16-bit result against the float32 one (inputs rounded: 2^-8 / 2^-11 relative each). */
const TOL = { bfloat16: 2e-2, float16: 3e-3 } as const;

export function defineAmpSuite(title: string, run: boolean, calls?: Map<string, number>): void {
  const count = (name: string) => calls?.get(name) ?? 0;

  describe.skipIf(!run)(title, () => {
    it('16-bit tensors on the device: creation, memory, reads, moves, views; ops ask for a cast', () => {
      const before = tsm.memory().cudaBytes;
      const x = data(1023, -70000, 70000);
      for (const dtype of ['bfloat16', 'float16'] as const) tsm.tidy(() => {
        const c = tsm.tensor(x, { dtype });
        const g = tsm.tensor(x, { dtype, device: 'cuda' });
        expect(g.dtype).toBe(dtype);
        expect(tsm.memory().cudaBytes - before).toBe(2 * 1023);
        expect(String(g)).toBe(`Tensor(shape=[1023], dtype=${dtype}, device=cuda:0)`);
        expect(g.dataSync()).toEqual(c.dataSync());
        expect(g.cpu()._bits('test')).toEqual(c._bits('test'));
        expect(g.reshape([3, 341]).clone().cpu()._bits('test')).toEqual(c._bits('test'));
        expect(g.to('float32').dataSync()).toEqual(c.to('float32').dataSync());
        expect(g.to('int32').dataSync()).toEqual(c.to('int32').dataSync());
        const other = dtype === 'bfloat16' ? 'float16' : 'bfloat16';
        expect(g.to(other).cpu()._bits('test')).toEqual(c.to(other)._bits('test'));
        expect(tsm.tensor(x, { device: 'cuda' }).to(dtype).cpu()._bits('test')).toEqual(c._bits('test'));
        expect(tsm.full([5], 1 / 3, { dtype, device: 'cuda' }).dataSync()).toEqual(tsm.full([5], 1 / 3, { dtype }).dataSync());
        expect(tsm.zeros([4], { dtype, device: 'cuda' }).dataSync()).toEqual(new Float32Array(4));
        expect(() => g.add(g)).toThrow(new RegExp(`add: input is a ${dtype} tensor .*cast it to float32 first`));
        expect(() => g.transpose(0, 0)).toThrow(TypeError);
      });
      expect(tsm.memory().cudaBytes).toBe(before);
    });

    it('device casts equal the host conversions bit for bit: all 65536 patterns, and float32 ties/edges', () => {
      const h = new Uint16Array(65536);
      for (let i = 0; i < 65536; i++) h[i] = i;
      for (const dtype of ['bfloat16', 'float16'] as const) {
        const vals = dtype === 'bfloat16' ? tsm.cuda.fromBfloat16(h) : tsm.cuda.fromFloat16(h);
        // 16 -> 32 on the device, from every bit pattern (NaN payloads included).
        const c16 = fromData(h.slice(), [65536], dtype);
        const g32 = c16.to('cuda').to('float32').dataSync() as Float32Array;
        const want32 = c16.to('float32').dataSync() as Float32Array;
        expect(new Uint32Array(g32.buffer)).toEqual(new Uint32Array(want32.buffer));
        // 32 -> 16 on the device: every float32 tie between neighbouring 16-bit values and its neighbours.
        const probes: number[] = [];
        const u = new Uint32Array(1), f = new Float32Array(u.buffer);
        for (let i = 0; i + 1 < 65536; i++) {
          const a = vals[i], b = vals[i + 1];
          if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
          const mid = (a + b) / 2;
          if (Math.fround(mid) !== mid) continue;
          f[0] = mid;
          const m = u[0];
          probes.push(mid);
          u[0] = m + 1; probes.push(f[0]);
          u[0] = m - 1; probes.push(f[0]);
        }
        probes.push(NaN, -NaN, Infinity, -Infinity, 0, -0, 65520, 3.4e38, 1e-30, -1e-45);
        const p = Float32Array.from(probes);
        const dev = tsm.tensor(p, { device: 'cuda' }).to(dtype).cpu()._bits('test');
        expect(dev).toEqual(tsm.tensor(p).to(dtype)._bits('test'));
      }
    });

    for (const dtype of ['bfloat16', 'float16'] as const) {
      it(`${dtype}: linear and matmul run on ${dtype} operands with float32 accumulation; float32 gradients`, () => {
        const casts0 = count('cudaCastFloat');
        // linear: y = x w^T + b, 2-d and 3-d inputs
        for (const [xs, outF] of [[[9, 33], 17], [[2, 5, 64], 24]] as [number[], number][]) {
          tsm.tidy(() => {
            const inF = xs[xs.length - 1];
            const xd = data(size(xs), -2, 2), wd = data(outF * inF), bd = data(outF);
            const x = tsm.tensor(xd, { shape: xs, device: 'cuda', requiresGrad: true });
            const w = tsm.tensor(wd, { shape: [outF, inF], device: 'cuda', requiresGrad: true });
            const b = tsm.tensor(bd, { shape: [outF], device: 'cuda', requiresGrad: true });
            const y = tsm.autocast({ dtype }, () => F.linear(x, w, b));
            expect(y.dtype).toBe('float32');
            // Reference: the CPU float32 linear on the inputs rounded to 16 bits (bias not rounded).
            const xr = round16(x, dtype).requiresGrad_(), wr = round16(w, dtype).requiresGrad_();
            const br = b.cpu().detach().requiresGrad_();
            const yr = F.linear(xr, wr, br);
            expectRel(y, yr, 1e-5, `${dtype} linear [${xs}] vs rounded-input reference`);
            const y32 = F.linear(x.cpu().detach(), w.cpu().detach(), br.detach());
            expect(relErr(y, y32)).toBeGreaterThan(0); // rounding happened
            expectRel(y, y32, TOL[dtype], `${dtype} linear [${xs}] vs float32`);
            // Backward: dy rounded to 16 bits too.
            const gd = data(size(y.shape.slice()));
            const gy = tsm.tensor(gd, { shape: y.shape.slice(), device: 'cuda' });
            y.backward(gy);
            yr.backward(round16(gy, dtype));
            for (const [t, r, n] of [[x, xr, 'dx'], [w, wr, 'dw']] as const) {
              expect(t.grad!.dtype).toBe('float32');
              expect(t.grad!.device).toBe('cuda:0');
              expectRel(t.grad!, r.grad!, 1e-5, `${dtype} linear [${xs}] ${n}`);
            }
            // The bias gradient is the float32 sum of the unrounded dy.
            const dbWant = tsm.tensor(gd, { shape: y.shape.slice() }).reshape([-1, outF]).sum(0);
            expectRel(b.grad!, dbWant, 1e-5, `${dtype} linear db`);
          });
        }
        // matmul: 2-d, batched, broadcast both ways, 1-d operands
        const cases: [number[], number[]][] = [[[7, 33], [33, 5]], [[3, 7, 9], [3, 9, 4]], [[3, 7, 9], [9, 4]], [[7, 9], [3, 9, 4]],
          [[2, 1, 5, 6], [1, 3, 6, 4]], [[9], [9, 4]], [[3, 7, 9], [9]]];
        for (const [sa, sb] of cases) {
          tsm.tidy(() => {
            const a = tsm.tensor(data(size(sa)), { shape: sa, device: 'cuda', requiresGrad: true });
            const b = tsm.tensor(data(size(sb)), { shape: sb, device: 'cuda', requiresGrad: true });
            const y = tsm.autocast({ dtype }, () => a.matmul(b));
            const ar = round16(a, dtype).requiresGrad_(), br = round16(b, dtype).requiresGrad_();
            const yr = ar.matmul(br);
            expect(y.shape).toEqual(yr.shape);
            expectRel(y, yr, 1e-5, `${dtype} matmul [${sa}] @ [${sb}]`);
            const gy = tsm.tensor(data(y.size), { shape: y.shape.slice(), device: 'cuda' });
            y.backward(gy);
            yr.backward(round16(gy, dtype));
            expectRel(a.grad!, ar.grad!, 1e-5, `${dtype} matmul [${sa}] @ [${sb}] grad a`);
            expectRel(b.grad!, br.grad!, 1e-5, `${dtype} matmul [${sa}] @ [${sb}] grad b`);
            expect(a.grad!.shape).toEqual(a.shape);
            expect(b.grad!.shape).toEqual(b.shape);
          });
        }
        if (calls) expect(count('cudaCastFloat')).toBeGreaterThan(casts0);
      });

      it(`${dtype}: scaledDotProductAttention runs the fused kernel in ${dtype}; gradients within ${dtype} tolerance`, () => {
        for (const [shape, kvLen, causal] of [[[2, 3, 17, 32], 17, false], [[2, 3, 16, 64], 40, true], [[4, 9, 8], 9, false]] as
          [number[], number, boolean][]) {
          tsm.tidy(() => {
            const kvShape = shape.slice();
            kvShape[kvShape.length - 2] = kvLen;
            const mk = (s: number[]) => tsm.tensor(data(size(s)), { shape: s, device: 'cuda', requiresGrad: true });
            const q = mk(shape), k = mk(kvShape), v = mk(kvShape);
            const y = tsm.autocast({ dtype }, () => F.scaledDotProductAttention(q, k, v, { isCausal: causal }));
            expect(y.dtype).toBe('float32');
            expect(y.device).toBe('cuda:0');
            const cpu = (t: Tensor) => t.cpu().detach().requiresGrad_();
            const qc = cpu(q), kc = cpu(k), vc = cpu(v);
            const yc = F.scaledDotProductAttention(qc, kc, vc, { isCausal: causal });
            expectRel(y, yc, TOL[dtype], `${dtype} sdpa [${shape}] Lk ${kvLen}`);
            const gd = data(y.size);
            y.backward(tsm.tensor(gd, { shape: y.shape.slice(), device: 'cuda' }));
            yc.backward(tsm.tensor(gd, { shape: y.shape.slice() }));
            for (const [t, c, n] of [[q, qc, 'dq'], [k, kc, 'dk'], [v, vc, 'dv']] as const) {
              expect(t.grad!.dtype).toBe('float32');
              expectRel(t.grad!, c.grad!, 3 * TOL[dtype], `${dtype} sdpa [${shape}] ${n}`);
            }
          });
        }
      });
    }

    it('weight-cast cache: one cast per parameter per region, freed at the end; memory back to baseline', () => {
      const before = tsm.memory().cudaBytes;
      tsm.manualSeed(5);
      const lin = new nn.Linear(32, 16).to('cuda');
      const x1 = tsm.randn([4, 32], { device: 'cuda' }), x2 = tsm.randn([6, 32], { device: 'cuda' });
      const base = tsm.memory().cudaBytes;
      const c0 = count('cudaCastFloat');
      const [y1, y2] = tsm.autocast({ dtype: 'bfloat16' }, () => {
        const a = lin.forward(x1), b = lin.forward(x2);
        // The cached 16-bit weight (32*16*2 bytes) lives until the region ends.
        return [a, b];
      });
      // x1, x2 and the weight once: three casts, not four.
      if (calls) expect(count('cudaCastFloat') - c0).toBe(3);
      // After the region: the outputs and the graph's saved 16-bit copies (x1, x2, w shared) remain.
      const s1 = y1.sum(), s2 = y2.sum(), loss = s1.add(s2);
      loss.backward();
      for (const t of [y1, y2, s1, s2, loss]) t.dispose();
      expect(tsm.memory().cudaBytes - base).toBe(lin.parameters().reduce((s, p) => s + p.size * 4, 0)); // the grads
      lin.zeroGrad();
      expect(tsm.memory().cudaBytes).toBe(base);
      // Inference (no grad needed): the casts are freed at once, the cache at the end of the region.
      tsm.noGrad(() => tsm.autocast({ dtype: 'float16' }, () => lin.forward(x1))).dispose();
      expect(tsm.memory().cudaBytes).toBe(base);
      for (const t of [x1, x2, ...lin.parameters()]) t.dispose();
      expect(tsm.memory().cudaBytes).toBe(before);
    });

    it('nesting and enabled:false as PyTorch; async fns keep the region across awaits', async () => {
      const x = tsm.tensor(data(8 * 40), { shape: [8, 40], device: 'cuda' });
      const w = tsm.tensor(data(12 * 40), { shape: [12, 40], device: 'cuda' });
      const y32 = F.linear(x, w).dataSync();
      const ybf = tsm.autocast({ dtype: 'bfloat16' }, () => F.linear(x, w)).dataSync();
      const yh = tsm.autocast({ dtype: 'float16' }, () => F.linear(x, w)).dataSync();
      expect(ybf).not.toEqual(y32);
      expect(yh).not.toEqual(ybf);
      tsm.autocast({ dtype: 'bfloat16' }, () => {
        expect(tsm.autocast({ enabled: false }, () => F.linear(x, w)).dataSync()).toEqual(y32);
        expect(tsm.autocast({ dtype: 'float16' }, () => F.linear(x, w)).dataSync()).toEqual(yh);
        // A cpu region inside leaves cuda autocast on.
        expect(tsm.autocast({ deviceType: 'cpu', enabled: false }, () => F.linear(x, w)).dataSync()).toEqual(ybf);
        expect(F.linear(x, w).dataSync()).toEqual(ybf);
      });
      expect(F.linear(x, w).dataSync()).toEqual(y32);
      const p = tsm.autocast({ dtype: 'bfloat16' }, async () => {
        await new Promise((r) => setTimeout(r, 2));
        return F.linear(x, w);
      });
      const meanwhile = F.linear(x, w).dataSync(); // outside the async region: float32
      expect(meanwhile).toEqual(y32);
      expect((await p).dataSync()).toEqual(ybf);
    });

    it('GradScaler with CUDA gradients: same parameters as unscaled when finite; skip and back off on inf, one read-back', () => {
      const make = () => {
        tsm.manualSeed(11);
        return new nn.Sequential(new nn.Linear(10, 32), new nn.ReLU(), new nn.Linear(32, 4)).to('cuda');
      };
      const m1 = make(), m2 = make();
      const o1 = new optim.SGD(m1.parameters(), { lr: 0.05, momentum: 0.9 }), o2 = new optim.SGD(m2.parameters(), { lr: 0.05, momentum: 0.9 });
      const scaler = new tsm.GradScaler({ initScale: 2 ** 14, growthInterval: 3 });
      tsm.manualSeed(12);
      const x = tsm.randn([16, 10], { device: 'cuda' }), y = tsm.randn([16, 4], { device: 'cuda' });
      for (let i = 0; i < 4; i++) {
        F.mseLoss(m1.forward(x), y).backward();
        o1.step();
        o1.zeroGrad();
        scaler.scale(F.mseLoss(m2.forward(x), y)).backward();
        const d0 = count('cudaDownload');
        scaler.step(o2);
        scaler.update();
        if (calls) expect(count('cudaDownload') - d0, 'one read-back per step').toBe(1);
        o2.zeroGrad();
      }
      expect(scaler.getScale()).toBe(2 ** 15);
      m1.parameters().forEach((p, i) => expect(m2.parameters()[i].dataSync(), `param ${i}`).toEqual(p.dataSync()));
      // A non-finite gradient on the device: the step is skipped, the scale halves.
      scaler.scale(F.mseLoss(m2.forward(x), y)).backward();
      const p0 = m2.parameters()[0];
      p0.grad!.dispose();
      p0.grad = tsm.full(p0.shape.slice(), Infinity, { device: 'cuda' });
      const before = m2.parameters().map((p) => p.dataSync());
      expect(scaler.step(o2)).toBeUndefined();
      scaler.update();
      m2.parameters().forEach((p, i) => expect(p.dataSync(), `param ${i} unchanged`).toEqual(before[i]));
      expect(scaler.getScale()).toBe(2 ** 14);
      o2.zeroGrad();
    });

    it('an MLP trains under autocast (bfloat16 and float16 with GradScaler, Adam) to the float32 loss level', () => {
      for (const dtype of ['bfloat16', 'float16'] as const) {
        tsm.manualSeed(21);
        const m = new nn.Sequential(new nn.Linear(8, 64), new nn.Tanh(), new nn.Linear(64, 1)).to('cuda');
        const opt = new optim.Adam(m.parameters(), { lr: 1e-2 });
        const scaler = new tsm.GradScaler({ enabled: dtype === 'float16' });
        const x = tsm.randn([64, 8], { device: 'cuda' });
        const target = x.sum(1, true).mul(0.3).tanh();
        let first = 0, last = 0;
        for (let i = 0; i < 60; i++) {
          tsm.tidy(() => {
            const loss = tsm.autocast({ dtype }, () => F.mseLoss(m.forward(x), target));
            if (i === 0) first = loss.item();
            last = loss.item();
            scaler.scale(loss).backward();
            scaler.step(opt);
            scaler.update();
            opt.zeroGrad();
          });
        }
        for (const p of m.parameters()) expect(p.dtype).toBe('float32');
        expect(last, `${dtype}: loss ${first} -> ${last}`).toBeLessThan(first * 0.1);
      }
    });
  });
}
