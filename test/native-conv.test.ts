// Native conv2d and pooling kernels against slow, obvious float64 references (direct loops), the
// references' backward against finite differences, and the binding's argument checks.
import { describe, expect, it } from 'vitest';
import { buildInfo } from '../lib/index';
import { raw } from './helpers/raw';
import { runCheck, simdPaths } from './helpers/simd-paths';
import { CONV_GROUPS, convArgs, expectClose, refConvBackwardData, refConvBackwardWeight, refConvForward, seededHelpers, type Conv } from './helpers/conv-check';

// ---- deterministic random numbers (this file's own stream, apart from the conv checks') ----
const { rand, randint, pick, randn } = seededHelpers(12345);

// ---- pooling references (float64) ----
function refPoolOut(inSize: number, k: number, s: number, pad: number, d: number, ceil: boolean): number {
  let out = Math.floor((inSize + 2 * pad - d * (k - 1) - 1 + (ceil ? s - 1 : 0)) / s) + 1;
  if (ceil && (out - 1) * s >= inSize + pad) out--;
  return out;
}
interface Pool {
  N: number; C: number; H: number; W: number; KH: number; KW: number;
  sH: number; sW: number; pH: number; pW: number; dH: number; dW: number; ceil: boolean; cip: boolean;
}
const poolOut = (p: Pool): [number, number] => [
  refPoolOut(p.H, p.KH, p.sH, p.pH, p.dH, p.ceil), refPoolOut(p.W, p.KW, p.sW, p.pW, p.dW, p.ceil)];

function refMaxPool(p: Pool, x: ArrayLike<number>): [Float64Array, Int32Array] {
  const [OH, OW] = poolOut(p);
  const y = new Float64Array(p.N * p.C * OH * OW), idx = new Int32Array(y.length);
  for (let pl = 0; pl < p.N * p.C; pl++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        // PyTorch: the index starts at the first tap at or after the top-left padding (an empty
        // window keeps it; native clamps it into the plane), then v > best or NaN replaces.
        let h0 = oh * p.sH - p.pH, w0 = ow * p.sW - p.pW;
        while (h0 < 0) h0 += p.dH;
        while (w0 < 0) w0 += p.dW;
        let best = -Infinity, bi = Math.min(h0 * p.W + w0, p.H * p.W - 1);
        for (let kh = 0; kh < p.KH; kh++)
          for (let kw = 0; kw < p.KW; kw++) {
            const ih = oh * p.sH - p.pH + kh * p.dH, iw = ow * p.sW - p.pW + kw * p.dW;
            if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
            const v = x[(pl * p.H + ih) * p.W + iw];
            if (v > best || Number.isNaN(v)) { best = v; bi = ih * p.W + iw; }
          }
        y[(pl * OH + oh) * OW + ow] = best;
        idx[(pl * OH + oh) * OW + ow] = bi;
      }
  return [y, idx];
}
function refMaxPoolBackward(p: { N: number; C: number; H: number; W: number }, OH: number, OW: number,
  dy: ArrayLike<number>, idx: Int32Array): Float64Array {
  const dx = new Float64Array(p.N * p.C * p.H * p.W);
  for (let pl = 0; pl < p.N * p.C; pl++)
    for (let i = 0; i < OH * OW; i++) dx[pl * p.H * p.W + idx[pl * OH * OW + i]] += dy[pl * OH * OW + i];
  return dx;
}
// Calls visit(yi, xi, 1/divisor) for every element of every average-pooling window.
function avgVisit(p: Pool, visit: (yi: number, xi: number, inv: number) => void): void {
  const [OH, OW] = poolOut(p);
  for (let pl = 0; pl < p.N * p.C; pl++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        const h0 = oh * p.sH - p.pH, w0 = ow * p.sW - p.pW;
        const h1 = Math.min(h0 + p.KH, p.H + p.pH), w1 = Math.min(w0 + p.KW, p.W + p.pW);
        const padded = (h1 - h0) * (w1 - w0);
        const a0 = Math.max(h0, 0), b0 = Math.max(w0, 0), a1 = Math.min(h1, p.H), b1 = Math.min(w1, p.W);
        const inside = (a1 - a0) * (b1 - b0);
        const inv = 1 / (p.cip ? padded : inside);
        for (let ih = a0; ih < a1; ih++)
          for (let iw = b0; iw < b1; iw++)
            visit((pl * OH + oh) * OW + ow, (pl * p.H + ih) * p.W + iw, inv);
      }
}
function refAvgPool(p: Pool, x: ArrayLike<number>): Float64Array {
  const [OH, OW] = poolOut(p);
  const y = new Float64Array(p.N * p.C * OH * OW);
  avgVisit(p, (yi, xi, inv) => { y[yi] += x[xi] * inv; });
  return y;
}
function refAvgPoolBackward(p: Pool, dy: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(p.N * p.C * p.H * p.W);
  avgVisit(p, (yi, xi, inv) => { dx[xi] += dy[yi] * inv; });
  return dx;
}
function adaptiveVisit(N: number, C: number, H: number, W: number, OH: number, OW: number,
  visit: (yi: number, xi: number, inv: number) => void): void {
  for (let pl = 0; pl < N * C; pl++)
    for (let oh = 0; oh < OH; oh++) {
      const h0 = Math.floor((oh * H) / OH), h1 = Math.ceil(((oh + 1) * H) / OH);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = Math.floor((ow * W) / OW), w1 = Math.ceil(((ow + 1) * W) / OW);
        const inv = 1 / ((h1 - h0) * (w1 - w0));
        for (let ih = h0; ih < h1; ih++)
          for (let iw = w0; iw < w1; iw++) visit((pl * OH + oh) * OW + ow, (pl * H + ih) * W + iw, inv);
      }
    }
}

// ---- random configurations ----
function randomPool(dilation: boolean): Pool {
  for (;;) {
    const KH = randint(1, 4), KW = randint(1, 4);
    const p: Pool = {
      N: randint(1, 3), C: randint(1, 3), H: randint(1, 12), W: randint(1, 12), KH, KW,
      sH: randint(1, 3), sW: randint(1, 3), pH: randint(0, Math.floor(KH / 2)), pW: randint(0, Math.floor(KW / 2)),
      dH: dilation ? randint(1, 2) : 1, dW: dilation ? randint(1, 2) : 1, ceil: rand() < 0.5, cip: rand() < 0.5,
    };
    const [OH, OW] = poolOut(p);
    if (OH >= 1 && OW >= 1) return p;
  }
}

describe('conv2d', () => {
  for (const [title, run] of CONV_GROUPS) it(title, run);

  // The same configurations on every SIMD path the CPU can run, with 1 and 2 threads, each in a
  // fresh process (the SIMD level and the default thread count are read once, at load): the AVX2
  // and portable paths take other algorithms (implicit GEMM with their own packers) than AVX-512.
  const best = buildInfo().simd;
  for (const simd of simdPaths()) {
    // (the best path with the default thread count is the in-process run above)
    for (const threads of simd === best ? [1] : [1, 2]) {
      it(`matches the reference with TSM_SIMD=${simd} TSM_NUM_THREADS=${threads} (child process)`, () => {
        const out = runCheck<{ simd: string; threads: number; groups: number; failures: string[] }>(
          'test/helpers/conv-check-main.ts', { TSM_SIMD: simd, TSM_NUM_THREADS: String(threads) });
        expect(out.simd).toBe(simd);
        expect(out.threads).toBe(threads);
        expect(out.groups).toBe(CONV_GROUPS.length);
        expect(out.failures).toEqual([]);
      });
    }
  }

  it('reference backward agrees with finite differences', () => {
    const configs: Conv[] = [
      { N: 2, C: 2, H: 5, W: 6, OC: 3, KH: 3, KW: 2, sH: 2, sW: 1, pH: 1, pW: 0, dH: 1, dW: 2, groups: 1 },
      { N: 1, C: 4, H: 4, W: 5, OC: 4, KH: 2, KW: 3, sH: 1, sW: 2, pH: 0, pW: 1, dH: 2, dW: 1, groups: 2 },
    ];
    for (const p of configs) {
      const x = Float64Array.from(randn(p.N * p.C * p.H * p.W));
      const w = Float64Array.from(randn(p.OC * (p.C / p.groups) * p.KH * p.KW));
      const b = Float64Array.from(randn(p.OC));
      const y = refConvForward(p, x, w, b);
      const dy = Float64Array.from(randn(y.length));
      const loss = (xx: Float64Array, ww: Float64Array, bb: Float64Array): number =>
        refConvForward(p, xx, ww, bb).reduce((s, v, i) => s + v * dy[i], 0);
      const dx = refConvBackwardData(p, dy, w);
      const [dw, db] = refConvBackwardWeight(p, dy, x);
      const eps = 1e-6;
      const fd = (arr: Float64Array, i: number): number => {
        const old = arr[i];
        arr[i] = old + eps; const lp = loss(x, w, b);
        arr[i] = old - eps; const lm = loss(x, w, b);
        arr[i] = old;
        return (lp - lm) / (2 * eps);
      };
      for (let i = 0; i < x.length; i++) expect(Math.abs(fd(x, i) - dx[i])).toBeLessThan(1e-6);
      for (let i = 0; i < w.length; i++) expect(Math.abs(fd(w, i) - dw[i])).toBeLessThan(1e-6);
      for (let i = 0; i < b.length; i++) expect(Math.abs(fd(b, i) - db[i])).toBeLessThan(1e-6);
    }
  });

  it('rejects bad arguments with TypeError/RangeError naming the op and argument', () => {
    const p: Conv = { N: 2, C: 4, H: 6, W: 6, OC: 4, KH: 3, KW: 3, sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 2 };
    const x = randn(2 * 4 * 36), w = randn(4 * 2 * 9), y = new Float32Array(2 * 4 * 16), b = randn(4);
    const args = convArgs(p);
    expect(() => raw.conv2dForward(y, x, w, b, ...args)).not.toThrow();
    expect(() => raw.conv2dForward(y.subarray(1), x, w, b, ...args)).toThrow(/conv2dForward: y has/);
    expect(() => raw.conv2dForward(y, x.subarray(1), w, b, ...args)).toThrow(RangeError);
    expect(() => raw.conv2dForward(y, x.subarray(1), w, b, ...args)).toThrow(/conv2dForward: x/);
    expect(() => raw.conv2dForward(y, x, w.subarray(1), b, ...args)).toThrow(/conv2dForward: w/);
    expect(() => raw.conv2dForward(y, x, w, b.subarray(1), ...args)).toThrow(/conv2dForward: bias/);
    expect(() => raw.conv2dForward(y, new Float64Array(x.length), w, b, ...args)).toThrow(TypeError);
    expect(() => raw.conv2dForward(y, new Float64Array(x.length), w, b, ...args)).toThrow(/conv2dForward: x must be a Float32Array/);
    expect(() => raw.conv2dForward(y, x, w, [1, 2, 3, 4], ...args)).toThrow(/conv2dForward: bias must be a Float32Array/);
    expect(() => raw.conv2dForward(y, x, w, b, ...args.slice(0, 13), 3)).toThrow(/conv2dForward: C = 4 is not divisible by groups = 3/);
    expect(() => raw.conv2dForward(y, x, w, b, 2, 4, 6, 6, 6, 3, 3, 1, 1, 0, 0, 1, 1, 4)).toThrow(/OC = 6 is not divisible/);
    expect(() => raw.conv2dForward(y, x, w, b, 0, ...args.slice(1))).toThrow(/conv2dForward: N must be >= 1/);
    expect(() => raw.conv2dForward(y, x, w, b, -2, ...args.slice(1))).toThrow(RangeError);
    expect(() => raw.conv2dForward(y, x, w, b, ...args.slice(0, 7), 0, 1, 0, 0, 1, 1, 2)).toThrow(/conv2dForward: sH must be >= 1/);
    expect(() => raw.conv2dForward(y, x, w, b, ...args.slice(0, 9), -1, 0, 1, 1, 2)).toThrow(/conv2dForward: pH must be >= 0/);
    expect(() => raw.conv2dForward(y, x, w, b, ...args.slice(0, 11), 0, 1, 2)).toThrow(/conv2dForward: dH must be >= 1/);
    expect(() => raw.conv2dForward(y, x, w, b, 2, 4, 2, 2, 4, 3, 3, 1, 1, 0, 0, 1, 1, 2)).toThrow(/conv2dForward: output size/);
    expect(() => raw.conv2dForward(y, x, w, b, ...args.slice(0, 13))).toThrow(/conv2dForward: groups must be a number/);
    expect(() => raw.conv2dForward(y, x, w, b, 2.5, ...args.slice(1))).toThrow(/conv2dForward: N must be an integer/);
    const dx = new Float32Array(x.length), dy = randn(y.length), dw = new Float32Array(w.length), db = new Float32Array(4);
    expect(() => raw.conv2dBackwardData(dx, dy, w, ...args)).not.toThrow();
    expect(() => raw.conv2dBackwardData(dx.subarray(1), dy, w, ...args)).toThrow(/conv2dBackwardData: dx has/);
    expect(() => raw.conv2dBackwardData(dx, dy.subarray(1), w, ...args)).toThrow(/conv2dBackwardData: dy has/);
    expect(() => raw.conv2dBackwardData(dx, dy, w.subarray(1), ...args)).toThrow(/conv2dBackwardData: w has/);
    expect(() => raw.conv2dBackwardData(dx, dy, new Int32Array(w.length), ...args)).toThrow(TypeError);
    expect(() => raw.conv2dBackwardWeight(dw, db, dy, x, ...args)).not.toThrow();
    expect(() => raw.conv2dBackwardWeight(dw, null, dy, x, ...args)).not.toThrow();
    expect(() => raw.conv2dBackwardWeight(dw.subarray(1), db, dy, x, ...args)).toThrow(/conv2dBackwardWeight: dw has/);
    expect(() => raw.conv2dBackwardWeight(dw, db.subarray(1), dy, x, ...args)).toThrow(/conv2dBackwardWeight: dbias has/);
    expect(() => raw.conv2dBackwardWeight(dw, db, dy.subarray(1), x, ...args)).toThrow(/conv2dBackwardWeight: dy has/);
    expect(() => raw.conv2dBackwardWeight(dw, db, dy, x.subarray(1), ...args)).toThrow(/conv2dBackwardWeight: x has/);
    expect(() => raw.conv2dBackwardWeight(dw, db, dy, 'x', ...args)).toThrow(TypeError);
  });
});

describe('pooling', () => {
  // 2x2, stride-2 max pooling on every SIMD path the CPU can run (each has its own kernel for the
  // windows inside the plane), in a fresh process per path.
  for (const simd of simdPaths()) {
    it(`2x2 max pooling forward and backward (plain and relu taps) match the reference with TSM_SIMD=${simd} (child process)`, () => {
      const out = runCheck<{ simd: string; cases: number; backwardCases: number; failures: string[] }>(
        'test/helpers/pool-check-main.ts', { TSM_SIMD: simd });
      expect(out.simd).toBe(simd);
      expect(out.cases).toBe(160);
      expect(out.backwardCases).toBe(320);
      expect(out.failures).toEqual([]);
    });
  }

  // The convolution and the max pooling of its output in one pass (conv_pool.cpp) on every SIMD path.
  for (const simd of simdPaths()) {
    it(`conv2d + max pooling fused (forward, weight gradient) match the float64 references with TSM_SIMD=${simd} (child process)`, () => {
      const out = runCheck<{ simd: string; cases: number; failures: string[] }>('test/helpers/conv-pool-check-main.ts', { TSM_SIMD: simd });
      expect(out.simd).toBe(simd);
      expect(out.cases).toBeGreaterThan(100);
      expect(out.failures).toEqual([]);
    });
  }

  it('pool2dOutputSize follows PyTorch, ceil mode included', () => {
    for (let t = 0; t < 300; t++) {
      const k = randint(1, 5), s = randint(1, 4), pad = randint(0, Math.floor(k / 2)), d = randint(1, 2);
      const n = randint(1, 20), ceil = rand() < 0.5;
      expect(raw.pool2dOutputSize(n, k, s, pad, d, ceil)).toBe(refPoolOut(n, k, s, pad, d, ceil));
    }
    expect(raw.pool2dOutputSize(26, 2, 2, 0, 1, false)).toBe(13);
    expect(raw.pool2dOutputSize(11, 2, 2, 0, 1, false)).toBe(5);
    expect(raw.pool2dOutputSize(11, 2, 2, 0, 1, true)).toBe(6);
    expect(raw.pool2dOutputSize(5, 3, 2, 1, 1, true)).toBe(3); // the last window would start in the padding
    expect(() => raw.pool2dOutputSize(5, 0, 2, 0, 1, false)).toThrow(/pool2dOutputSize: kernel must be >= 1/);
  });

  it('maxPool2d forward/backward match the reference', () => {
    const cases: Pool[] = [];
    for (let t = 0; t < 100; t++) cases.push(randomPool(true));
    const two = { KH: 2, KW: 2, sH: 2, sW: 2, pH: 0, pW: 0, dH: 1, dW: 1, cip: true };
    cases.push({ N: 2, C: 3, H: 26, W: 26, ceil: false, ...two }, { N: 2, C: 3, H: 11, W: 11, ceil: false, ...two },
      { N: 2, C: 3, H: 11, W: 9, ceil: true, ...two }, { N: 1, C: 2, H: 1, W: 5, ceil: true, ...two },
      // rows of 35 outputs: two full 16-wide SIMD steps and a tail; NaN and -Infinity below
      { N: 1, C: 2, H: 7, W: 71, ceil: true, ...two }, { N: 2, C: 1, H: 4, W: 64, ceil: false, ...two });
    for (const p of cases) {
      const what = `maxPool ${JSON.stringify(p)}`;
      const [OH, OW] = poolOut(p);
      const x = randn(p.N * p.C * p.H * p.W);
      for (let i = 0; i < x.length; i += 7) x[i] = x[(i * 13) % x.length]; // ties
      if (p.W >= 64) for (let i = 3; i < x.length; i += 11) x[i] = i % 2 ? NaN : -Infinity;
      const y = new Float32Array(p.N * p.C * OH * OW).fill(NaN), idx = new Int32Array(y.length).fill(-5);
      raw.maxPool2dForward(y, idx, x, p.N, p.C, p.H, p.W, p.KH, p.KW, p.sH, p.sW, p.pH, p.pW, p.dH, p.dW, p.ceil);
      const [ry, ridx] = refMaxPool(p, x);
      expectClose(y, ry, `${what} y`, 0);
      expect(Array.from(idx), `${what} indices`).toEqual(Array.from(ridx));
      const dy = randn(y.length), dx = new Float32Array(x.length).fill(NaN);
      raw.maxPool2dBackward(dx, dy, idx, p.N, p.C, p.H, p.W, OH, OW);
      expectClose(dx, refMaxPoolBackward(p, OH, OW, dy, idx), `${what} dx`);
    }
  });

  it('maxPool2d of relu(x) (reluInput) equals pooling relu(x), and its masked backward equals relu backward of the scatter', () => {
    const cases: Pool[] = [];
    for (let t = 0; t < 60; t++) cases.push(randomPool(true));
    const two = { KH: 2, KW: 2, sH: 2, sW: 2, pH: 0, pW: 0, dH: 1, dW: 1, cip: true };
    cases.push({ N: 2, C: 3, H: 26, W: 26, ceil: false, ...two }, { N: 2, C: 3, H: 11, W: 9, ceil: true, ...two },
      { N: 1, C: 2, H: 7, W: 71, ceil: true, ...two }, { N: 2, C: 1, H: 4, W: 64, ceil: false, ...two });
    for (const p of cases) {
      const what = `maxPool relu ${JSON.stringify(p)}`;
      const [OH, OW] = poolOut(p);
      const x = randn(p.N * p.C * p.H * p.W);
      // ties, NaN, -0, -Infinity and whole windows at or below zero
      for (let i = 0; i < x.length; i += 7) x[i] = x[(i * 13) % x.length];
      for (let i = 3; i < x.length; i += 11) x[i] = [NaN, -0, -Infinity, 0][i % 4];
      for (let i = 0; i < x.length; i++) if (Math.floor(i / 5) % 3 === 0) x[i] = -Math.abs(x[i]);
      const r = new Float32Array(x.length);
      raw.unaryForward(0, r, x);  // relu
      const args = [p.N, p.C, p.H, p.W, p.KH, p.KW, p.sH, p.sW, p.pH, p.pW, p.dH, p.dW, p.ceil] as const;
      const y = new Float32Array(p.N * p.C * OH * OW).fill(NaN), idx = new Int32Array(y.length).fill(-5);
      raw.maxPool2dForward(y, idx, x, ...args, true);
      const ry = new Float32Array(y.length), ridx = new Int32Array(y.length);
      raw.maxPool2dForward(ry, ridx, r, ...args, false);
      expect(Array.from(y).map((v) => Object.is(v, -0) ? 'neg0' : v), `${what} y`).toEqual(Array.from(ry).map((v) => Object.is(v, -0) ? 'neg0' : v));
      expect(Array.from(idx), `${what} indices`).toEqual(Array.from(ridx));
      if (p.dH !== 1 || p.dW !== 1) continue;  // the masked backward is for pooling without dilation
      const dy = randn(y.length);
      dy[0] = NaN;  // a NaN gradient at a window whose maximum is 0 gives 0, as the ReLU's backward
      const dx = new Float32Array(x.length).fill(NaN);
      raw.maxPool2dBackward(dx, dy, idx, p.N, p.C, p.H, p.W, OH, OW, y);
      const scattered = new Float32Array(x.length), want = new Float32Array(x.length);
      raw.maxPool2dBackward(scattered, dy, idx, p.N, p.C, p.H, p.W, OH, OW);
      raw.unaryBackward(0, want, x, r, scattered);
      expect(Array.from(dx), `${what} dx`).toEqual(Array.from(want));
    }
    const x = new Float32Array(16), y = new Float32Array(4), idx = new Int32Array(4);
    raw.maxPool2dForward(y, idx, x, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, false);
    expect(() => raw.maxPool2dBackward(x, y, idx, 1, 1, 4, 4, 2, 2, y.subarray(1))).toThrow(/maxPool2dBackward: y has 3 elements, needs 4/);
    expect(() => raw.maxPool2dBackward(x, y, idx, 1, 1, 4, 4, 2, 2, idx)).toThrow(/maxPool2dBackward: y must be a Float32Array/);
  });

  it('maxPool2d propagates NaN and handles -Infinity like PyTorch', () => {
    const x = Float32Array.from([1, NaN, 3, 4, NaN, 2, 0, 9, -Infinity, -Infinity, -Infinity, -Infinity, 5, 6, 7, NaN]);
    for (const [k, s] of [[2, 2], [3, 1]]) {
      const p: Pool = { N: 1, C: 1, H: 4, W: 4, KH: k, KW: k, sH: s, sW: s, pH: 0, pW: 0, dH: 1, dW: 1, ceil: false, cip: true };
      const [OH, OW] = poolOut(p);
      const y = new Float32Array(OH * OW), idx = new Int32Array(OH * OW);
      raw.maxPool2dForward(y, idx, x, 1, 1, 4, 4, k, k, s, s, 0, 0, 1, 1, false);
      const [ry, ridx] = refMaxPool(p, x);
      expectClose(y, ry, `nan ${k}`, 0);
      expect(Array.from(idx)).toEqual(Array.from(ridx));
    }
    const y = new Float32Array(4), idx = new Int32Array(4);
    raw.maxPool2dForward(y, idx, x, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, false);
    expect(Number.isNaN(y[0])).toBe(true);
    expect(idx[0]).toBe(4); // the last NaN of the window wins
    expect(Array.from(idx)).toEqual([4, 7, 13, 15]); // as PyTorch 1.13
    const z = new Float32Array(16).fill(-Infinity), zy = new Float32Array(4), zi = new Int32Array(4);
    raw.maxPool2dForward(zy, zi, z, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, false);
    expect(Array.from(zy)).toEqual([-Infinity, -Infinity, -Infinity, -Infinity]);
    expect(Array.from(zi)).toEqual([0, 2, 8, 10]); // all -inf: the first element of each window
  });

  it('avgPool2d forward/backward match the reference (ceilMode, countIncludePad)', () => {
    for (let t = 0; t < 120; t++) {
      const p = randomPool(false);
      const what = `avgPool ${JSON.stringify(p)}`;
      const [OH, OW] = poolOut(p);
      const x = randn(p.N * p.C * p.H * p.W);
      const y = new Float32Array(p.N * p.C * OH * OW).fill(NaN);
      raw.avgPool2dForward(y, x, p.N, p.C, p.H, p.W, p.KH, p.KW, p.sH, p.sW, p.pH, p.pW, p.ceil, p.cip);
      expectClose(y, refAvgPool(p, x), `${what} y`);
      const dy = randn(y.length), dx = new Float32Array(x.length).fill(NaN);
      raw.avgPool2dBackward(dx, dy, p.N, p.C, p.H, p.W, p.KH, p.KW, p.sH, p.sW, p.pH, p.pW, p.ceil, p.cip);
      expectClose(dx, refAvgPoolBackward(p, dy), `${what} dx`);
    }
  });

  it('adaptiveAvgPool2d forward/backward match the reference', () => {
    for (let t = 0; t < 60; t++) {
      const N = randint(1, 3), C = randint(1, 3), H = randint(1, 12), W = randint(1, 12);
      const OH = randint(1, 14), OW = randint(1, 14);
      const x = randn(N * C * H * W), y = new Float32Array(N * C * OH * OW).fill(NaN);
      raw.adaptiveAvgPool2dForward(y, x, N, C, H, W, OH, OW);
      const ry = new Float64Array(y.length);
      adaptiveVisit(N, C, H, W, OH, OW, (yi, xi, inv) => { ry[yi] += x[xi] * inv; });
      expectClose(y, ry, `adaptive ${[N, C, H, W, OH, OW]} y`);
      const dy = randn(y.length), dx = new Float32Array(x.length).fill(NaN), rdx = new Float64Array(x.length);
      raw.adaptiveAvgPool2dBackward(dx, dy, N, C, H, W, OH, OW);
      adaptiveVisit(N, C, H, W, OH, OW, (yi, xi, inv) => { rdx[xi] += dy[yi] * inv; });
      expectClose(dx, rdx, `adaptive ${[N, C, H, W, OH, OW]} dx`);
    }
  });

  it('reference pooling backward agrees with finite differences', () => {
    const p: Pool = { N: 1, C: 2, H: 5, W: 6, KH: 3, KW: 2, sH: 2, sW: 1, pH: 1, pW: 1, dH: 1, dW: 1, ceil: true, cip: false };
    const x = Float64Array.from(randn(p.N * p.C * p.H * p.W));
    const dy = Float64Array.from(randn(refAvgPool(p, x).length));
    const dx = refAvgPoolBackward(p, dy);
    const loss = (): number => refAvgPool(p, x).reduce((s, v, i) => s + v * dy[i], 0);
    for (let i = 0; i < x.length; i++) {
      const old = x[i];
      x[i] = old + 1e-6; const lp = loss();
      x[i] = old - 1e-6; const lm = loss();
      x[i] = old;
      expect(Math.abs((lp - lm) / 2e-6 - dx[i])).toBeLessThan(1e-6);
    }
    // max pooling: distinct values, so the argmax is stable under a small step
    const [my, midx] = refMaxPool({ ...p, dH: 2 }, x);
    const mdy = Float64Array.from(randn(my.length));
    const [OH, OW] = poolOut({ ...p, dH: 2 });
    const mdx = refMaxPoolBackward(p, OH, OW, mdy, midx);
    const mloss = (): number => refMaxPool({ ...p, dH: 2 }, x)[0].reduce((s, v, i) => s + v * mdy[i], 0);
    for (let i = 0; i < x.length; i++) {
      const old = x[i];
      x[i] = old + 1e-7; const lp = mloss();
      x[i] = old - 1e-7; const lm = mloss();
      x[i] = old;
      expect(Math.abs((lp - lm) / 2e-7 - mdx[i])).toBeLessThan(1e-5);
    }
  });

  it('rejects bad arguments with TypeError/RangeError naming the op and argument', () => {
    const x = randn(2 * 3 * 8 * 8), y = new Float32Array(2 * 3 * 16), idx = new Int32Array(y.length);
    const margs = [2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 1, 1, false];
    expect(() => raw.maxPool2dForward(y, idx, x, ...margs)).not.toThrow();
    expect(() => raw.maxPool2dForward(y.subarray(1), idx, x, ...margs)).toThrow(/maxPool2dForward: y has/);
    expect(() => raw.maxPool2dForward(y, idx.subarray(1), x, ...margs)).toThrow(/maxPool2dForward: indices has/);
    expect(() => raw.maxPool2dForward(y, idx, x.subarray(1), ...margs)).toThrow(/maxPool2dForward: x has/);
    expect(() => raw.maxPool2dForward(y, new Float32Array(idx.length), x, ...margs)).toThrow(TypeError);
    expect(() => raw.maxPool2dForward(y, new Float32Array(idx.length), x, ...margs)).toThrow(/maxPool2dForward: indices must be a Int32Array/);
    expect(() => raw.maxPool2dForward(y, idx, x, 2, 3, 8, 8, 2, 2, 2, 2, 2, 0, 1, 1, false)).toThrow(/maxPool2dForward: padding/);
    expect(() => raw.maxPool2dForward(y, idx, x, 2, 3, 8, 8, 0, 2, 2, 2, 0, 0, 1, 1, false)).toThrow(/maxPool2dForward: KH must be >= 1/);
    expect(() => raw.maxPool2dForward(y, idx, x, 2, 3, 1, 8, 4, 2, 2, 2, 1, 0, 1, 1, false)).toThrow(/maxPool2dForward: output height/);
    expect(() => raw.maxPool2dForward(y, idx, x, 2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 0, 1, false)).toThrow(/maxPool2dForward: dH must be >= 1/);
    const dx = new Float32Array(x.length), dy = randn(y.length);
    expect(() => raw.maxPool2dBackward(dx, dy, idx, 2, 3, 8, 8, 4, 4)).not.toThrow();
    expect(() => raw.maxPool2dBackward(dx.subarray(1), dy, idx, 2, 3, 8, 8, 4, 4)).toThrow(/maxPool2dBackward: dx has/);
    expect(() => raw.maxPool2dBackward(dx, dy.subarray(1), idx, 2, 3, 8, 8, 4, 4)).toThrow(/maxPool2dBackward: dy has/);
    expect(() => raw.maxPool2dBackward(dx, dy, idx.subarray(1), 2, 3, 8, 8, 4, 4)).toThrow(/maxPool2dBackward: indices has/);
    for (const bad of [64, -1, 1 << 30]) {
      const bidx = idx.slice();
      bidx[37] = bad;
      expect(() => raw.maxPool2dBackward(dx, dy, bidx, 2, 3, 8, 8, 4, 4)).toThrow(RangeError);
      expect(() => raw.maxPool2dBackward(dx, dy, bidx, 2, 3, 8, 8, 4, 4)).toThrow(
        new RegExp(`maxPool2dBackward: .*indices\\[37\\] = ${bad} is out of range \\[0, 64\\)`));
    }
    expect(() => raw.maxPool2dBackward(dx, dy, idx, 2, 3, 8, 8, 0, 4)).toThrow(/maxPool2dBackward: OH must be >= 1/);
    const aargs = [2, 3, 8, 8, 2, 2, 2, 2, 0, 0, false, true];
    expect(() => raw.avgPool2dForward(y, x, ...aargs)).not.toThrow();
    expect(() => raw.avgPool2dForward(y.subarray(1), x, ...aargs)).toThrow(/avgPool2dForward: y has/);
    expect(() => raw.avgPool2dForward(y, x.subarray(2), ...aargs)).toThrow(/avgPool2dForward: x has/);
    expect(() => raw.avgPool2dForward(y, x, 2, 3, 8, 8, 2, 2, 2, 2, 0, 2, false, true)).toThrow(/avgPool2dForward: padding/);
    expect(() => raw.avgPool2dForward(y, x, 2, 3, 8, -8, 2, 2, 2, 2, 0, 0, false, true)).toThrow(/avgPool2dForward: W must be >= 1/);
    expect(() => raw.avgPool2dBackward(dx, dy.subarray(1), ...aargs)).toThrow(/avgPool2dBackward: dy has/);
    expect(() => raw.avgPool2dBackward(dx.subarray(1), dy, ...aargs)).toThrow(/avgPool2dBackward: dx has/);
    expect(() => raw.avgPool2dBackward(dx, [1, 2], ...aargs)).toThrow(TypeError);
    expect(() => raw.adaptiveAvgPool2dForward(y, x, 2, 3, 8, 8, 4, 4)).not.toThrow();
    expect(() => raw.adaptiveAvgPool2dForward(y, x, 2, 3, 8, 8, 4, 5)).toThrow(/adaptiveAvgPool2dForward: y has/);
    expect(() => raw.adaptiveAvgPool2dForward(y, x, 2, 3, 8, 9, 4, 4)).toThrow(/adaptiveAvgPool2dForward: x has/);
    expect(() => raw.adaptiveAvgPool2dForward(y, x, 2, 3, 8, 8, 0, 4)).toThrow(/adaptiveAvgPool2dForward: OH must be >= 1/);
    expect(() => raw.adaptiveAvgPool2dBackward(dx, dy, 2, 3, 8, 8, 4, 4)).not.toThrow();
    expect(() => raw.adaptiveAvgPool2dBackward(dx.subarray(1), dy, 2, 3, 8, 8, 4, 4)).toThrow(/adaptiveAvgPool2dBackward: dx has/);
    expect(() => raw.adaptiveAvgPool2dBackward(dx, dy, 2, 3, 8, 8, 4, 5)).toThrow(/adaptiveAvgPool2dBackward: dy has/);
    expect(() => raw.adaptiveAvgPool2dBackward(dx, dy, 2, 3, 8, 8, 4)).toThrow(/adaptiveAvgPool2dBackward: OW must be a number/);
  });
});
