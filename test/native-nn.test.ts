// The nn kernels through the raw binding: layerNorm, batchNorm, embedding and the optimizer updates.
// Each kernel is compared with a slow float64 reference written here, over random shapes; the
// reference backwards are checked against finite differences; the optimizers are compared with a
// float64 reimplementation of torch.optim over 10 steps; and everything is compared with golden
// values from PyTorch (test/fixtures/nn-*.json, made by tools/fixtures/make_nn_fixtures.py).
// Bad input must throw TypeError/RangeError naming the op and the argument.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { raw } from './helpers/raw';
import { seededRandom as rng } from '../lib/text';

const initialThreads: number = raw.getNumThreads();
afterAll(() => raw.setNumThreads(initialThreads));

// ---- helpers ----

function randn(r: () => number, n: number, scale = 1, shift = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - r(), v = r();
    out[i] = shift + scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

type Arr = ArrayLike<number>;

// Largest |a - b| / (atol + rtol * |b|); <= 1 means close.
function worst(a: Arr, b: Arr, atol: number, rtol: number): number {
  expect(a.length).toBe(b.length);
  let w = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    if (!(e <= w)) w = Number.isNaN(e) ? Infinity : e;
  }
  return w;
}

function expectClose(a: Arr, b: Arr, atol: number, rtol: number, what: string): void {
  const w = worst(a, b, atol, rtol);
  if (w > 1) {
    let at = 0, big = -1;
    for (let i = 0; i < a.length; i++) {
      const e = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
      if (e > big || Number.isNaN(e)) { big = e; at = i; if (Number.isNaN(e)) break; }
    }
    expect.fail(`${what}: element ${at}: got ${a[at]}, expected ${b[at]} (error ratio ${w})`);
  }
}

const f32 = (a: Arr) => Float32Array.from(a);
const f64 = (a: Arr) => Float64Array.from(a);

function fixture(name: string): any {
  return JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf8'));
}

// ---- float64 references ----

interface LnOut { y: Float64Array; mean: Float64Array; rstd: Float64Array }

function lnRef(x: Arr, w: Arr | null, b: Arr | null, rows: number, cols: number, eps: number): LnOut {
  const y = new Float64Array(rows * cols), mean = new Float64Array(rows), rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += x[r * cols + j];
    const m = s / cols;
    let v = 0;
    for (let j = 0; j < cols; j++) v += (x[r * cols + j] - m) ** 2;
    v /= cols;
    const rs = 1 / Math.sqrt(v + eps);
    mean[r] = m;
    rstd[r] = rs;
    for (let j = 0; j < cols; j++)
      y[r * cols + j] = (x[r * cols + j] - m) * rs * (w ? w[j] : 1) + (b ? b[j] : 0);
  }
  return { y, mean, rstd };
}

function lnBackRef(dy: Arr, x: Arr, w: Arr | null, rows: number, cols: number, eps: number) {
  const { mean, rstd } = lnRef(x, null, null, rows, cols, eps);
  const dx = new Float64Array(rows * cols), dw = new Float64Array(cols), db = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    let sg = 0, sgx = 0;
    for (let j = 0; j < cols; j++) {
      const i = r * cols + j, xh = (x[i] - mean[r]) * rstd[r], g = dy[i] * (w ? w[j] : 1);
      sg += g;
      sgx += g * xh;
      dw[j] += dy[i] * xh;
      db[j] += dy[i];
    }
    for (let j = 0; j < cols; j++) {
      const i = r * cols + j, xh = (x[i] - mean[r]) * rstd[r], g = dy[i] * (w ? w[j] : 1);
      dx[i] = rstd[r] * (g - sg / cols - (xh * sgx) / cols);
    }
  }
  return { dx, dw, db };
}

interface BnOut { y: Float64Array; mean: Float64Array; invstd: Float64Array; rm?: Float64Array; rv?: Float64Array }

function bnRef(x: Arr, w: Arr | null, b: Arr | null, rm: Arr | null, rv: Arr | null, N: number,
  C: number, HW: number, training: boolean, momentum: number, eps: number): BnOut {
  const y = new Float64Array(N * C * HW), mean = new Float64Array(C), invstd = new Float64Array(C);
  const rmOut = rm ? f64(rm) : undefined, rvOut = rv ? f64(rv) : undefined;
  const M = N * HW;
  for (let c = 0; c < C; c++) {
    let m: number, inv: number;
    if (training) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let k = 0; k < HW; k++) s += x[(n * C + c) * HW + k];
      m = s / M;
      let ss = 0;
      for (let n = 0; n < N; n++) for (let k = 0; k < HW; k++) ss += (x[(n * C + c) * HW + k] - m) ** 2;
      inv = 1 / Math.sqrt(ss / M + eps);
      if (rmOut && rvOut) {
        rmOut[c] = (1 - momentum) * rmOut[c] + momentum * m;
        rvOut[c] = (1 - momentum) * rvOut[c] + momentum * (ss / (M - 1));
      }
    } else {
      m = rm![c];
      inv = 1 / Math.sqrt(rv![c] + eps);
    }
    mean[c] = m;
    invstd[c] = inv;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < HW; k++) {
        const i = (n * C + c) * HW + k;
        y[i] = (x[i] - m) * inv * (w ? w[c] : 1) + (b ? b[c] : 0);
      }
  }
  return { y, mean, invstd, rm: rmOut, rv: rvOut };
}

function bnBackRef(dy: Arr, x: Arr, mean: Arr, invstd: Arr, w: Arr | null, N: number, C: number,
  HW: number, training: boolean) {
  const dx = new Float64Array(N * C * HW), dw = new Float64Array(C), db = new Float64Array(C);
  const M = N * HW;
  for (let c = 0; c < C; c++) {
    let sdy = 0, sdyx = 0;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < HW; k++) {
        const i = (n * C + c) * HW + k;
        sdy += dy[i];
        sdyx += dy[i] * (x[i] - mean[c]) * invstd[c];
      }
    dw[c] = sdyx;
    db[c] = sdy;
    const k1 = (w ? w[c] : 1) * invstd[c];
    for (let n = 0; n < N; n++)
      for (let k = 0; k < HW; k++) {
        const i = (n * C + c) * HW + k;
        const xh = (x[i] - mean[c]) * invstd[c];
        dx[i] = training ? k1 * (dy[i] - sdy / M - (xh * sdyx) / M) : k1 * dy[i];
      }
  }
  return { dx, dw, db };
}

// Central differences of L = sum(f(x) * dy) with respect to each element of `v` (modified in place).
function numGrad(v: Float64Array, loss: () => number, h = 1e-6): Float64Array {
  const g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const o = v[i];
    v[i] = o + h;
    const lp = loss();
    v[i] = o - h;
    const lm = loss();
    v[i] = o;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}
const dot = (a: Arr, b: Arr) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };

// ---- layer norm ----

describe('layerNorm', () => {
  it('reference backward matches finite differences (float64)', () => {
    const r = rng(1);
    for (const [rows, cols] of [[3, 5], [2, 1], [4, 9]]) {
      const x = f64(randn(r, rows * cols)), w = f64(randn(r, cols)), b = f64(randn(r, cols));
      const dy = f64(randn(r, rows * cols)), eps = 1e-5;
      const loss = () => dot(lnRef(x, w, b, rows, cols, eps).y, dy);
      const ref = lnBackRef(dy, x, w, rows, cols, eps);
      expectClose(ref.dx, numGrad(x, loss), 1e-6, 1e-5, `dx ${rows}x${cols}`);
      expectClose(ref.dw, numGrad(w, loss), 1e-6, 1e-5, `dw ${rows}x${cols}`);
      expectClose(ref.db, numGrad(b, loss), 1e-6, 1e-5, `db ${rows}x${cols}`);
    }
  });

  it('native forward and backward match the reference over random shapes', () => {
    const r = rng(2);
    const shapes: number[][] = [[1, 1], [1, 7], [5, 1], [3, 64], [17, 33], [300, 129], [64, 1024], [2500, 20]];
    for (let t = 0; t < 8; t++) shapes.push([randInt(r, 1, 40), randInt(r, 1, 300)]);
    for (const [rows, cols] of shapes) {
      for (const affine of [true, false]) {
        const eps = affine ? 1e-5 : 1e-3;
        const x = randn(r, rows * cols, 3, 1.5), dy = randn(r, rows * cols);
        const w = affine ? randn(r, cols) : null, b = affine ? randn(r, cols) : null;
        const y = new Float32Array(rows * cols), mean = new Float32Array(rows), rstd = new Float32Array(rows);
        raw.layerNormForward(y, mean, rstd, x, w, b, rows, cols, eps);
        const ref = lnRef(x, w, b, rows, cols, eps);
        const what = `${rows}x${cols} affine=${affine}`;
        expectClose(y, ref.y, 1e-5, 1e-4, `y ${what}`);
        expectClose(mean, ref.mean, 1e-6, 1e-5, `mean ${what}`);
        expectClose(rstd, ref.rstd, 1e-6, 1e-5, `rstd ${what}`);
        const dx = new Float32Array(rows * cols).fill(NaN);
        const dw = new Float32Array(cols).fill(NaN), db = new Float32Array(cols).fill(NaN);
        raw.layerNormBackward(dx, dw, db, dy, x, mean, rstd, w, rows, cols);
        const rb = lnBackRef(dy, x, w, rows, cols, eps);
        expectClose(dx, rb.dx, 1e-4, 1e-3, `dx ${what}`);
        expectClose(dw, rb.dw, 1e-3, 1e-4, `dw ${what}`);
        expectClose(db, rb.db, 1e-3, 1e-4, `db ${what}`);
        // dw/db may be omitted.
        const dx2 = new Float32Array(rows * cols);
        raw.layerNormBackward(dx2, null, null, dy, x, mean, rstd, w, rows, cols);
        expect(dx2).toEqual(dx);
      }
    }
  });

  it('backward is deterministic across thread counts', () => {
    const r = rng(3);
    const rows = 3000, cols = 40;
    const x = randn(r, rows * cols), dy = randn(r, rows * cols), w = randn(r, cols);
    const y = new Float32Array(rows * cols), mean = new Float32Array(rows), rstd = new Float32Array(rows);
    raw.layerNormForward(y, mean, rstd, x, w, null, rows, cols, 1e-5);
    const results: Float32Array[] = [];
    for (const t of [1, 2, 3]) {
      raw.setNumThreads(t);
      const dx = new Float32Array(rows * cols), dw = new Float32Array(cols), db = new Float32Array(cols);
      raw.layerNormBackward(dx, dw, db, dy, x, mean, rstd, w, rows, cols);
      results.push(Float32Array.of(...dw, ...db, ...dx.subarray(0, 100)));
    }
    raw.setNumThreads(initialThreads);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });

  it('matches PyTorch', () => {
    for (const c of fixture('nn-layer-norm.json').cases) {
      const { rows, cols, eps } = c;
      const w = c.w ? f32(c.w) : null, b = c.b ? f32(c.b) : null, x = f32(c.x);
      const y = new Float32Array(rows * cols), mean = new Float32Array(rows), rstd = new Float32Array(rows);
      raw.layerNormForward(y, mean, rstd, x, w, b, rows, cols, eps);
      expectClose(y, c.y, 1e-5, 1e-5, 'y');
      const dx = new Float32Array(rows * cols), dw = new Float32Array(cols), db = new Float32Array(cols);
      raw.layerNormBackward(dx, w ? dw : null, w ? db : null, f32(c.dy), x, mean, rstd, w, rows, cols);
      expectClose(dx, c.dx, 1e-5, 1e-4, 'dx');
      if (w) {
        expectClose(dw, c.dw, 1e-5, 1e-5, 'dw');
        expectClose(db, c.db, 1e-5, 1e-5, 'db');
      }
    }
  });

  it('rejects bad arguments', () => {
    const f = (n: number) => new Float32Array(n);
    expect(() => raw.layerNormForward(f(6), f(2), f(2), f(5), null, null, 2, 3, 1e-5)).toThrow(RangeError);
    expect(() => raw.layerNormForward(f(6), f(2), f(2), f(5), null, null, 2, 3, 1e-5)).toThrow(/layerNormForward: x has 5/);
    expect(() => raw.layerNormForward(f(6), f(1), f(2), f(6), null, null, 2, 3, 1e-5)).toThrow(/layerNormForward: mean/);
    expect(() => raw.layerNormForward(f(6), f(2), f(2), f(6), f(2), null, 2, 3, 1e-5)).toThrow(/layerNormForward: w/);
    expect(() => raw.layerNormForward(f(6), f(2), f(2), new Float64Array(6), null, null, 2, 3, 1e-5)).toThrow(TypeError);
    expect(() => raw.layerNormForward(f(6), f(2), f(2), [1, 2, 3, 4, 5, 6], null, null, 2, 3, 1e-5)).toThrow(/layerNormForward: x must be a Float32Array/);
    expect(() => raw.layerNormForward(f(6), f(2), f(2), f(6), null, null, -2, 3, 1e-5)).toThrow(/layerNormForward: rows/);
    expect(() => raw.layerNormForward(f(6), f(2), f(2), f(6), null, null, 2, 3, 'x')).toThrow(TypeError);
    expect(() => raw.layerNormBackward(f(6), f(2), null, f(6), f(6), f(2), f(2), null, 2, 3)).toThrow(/layerNormBackward: dw/);
    expect(() => raw.layerNormBackward(f(6), null, null, f(6), f(6), f(2), f(1), null, 2, 3)).toThrow(/layerNormBackward: rstd/);
  });
});

// ---- batch norm ----

describe('batchNorm', () => {
  it('reference training backward matches finite differences (float64)', () => {
    const r = rng(11);
    for (const [N, C, HW] of [[2, 3, 4], [5, 2, 1], [1, 2, 3]]) {
      const x = f64(randn(r, N * C * HW)), w = f64(randn(r, C)), b = f64(randn(r, C));
      const dy = f64(randn(r, N * C * HW));
      const loss = () => dot(bnRef(x, w, b, null, null, N, C, HW, true, 0.1, 1e-5).y, dy);
      const fwd = bnRef(x, w, b, null, null, N, C, HW, true, 0.1, 1e-5);
      const ref = bnBackRef(dy, x, fwd.mean, fwd.invstd, w, N, C, HW, true);
      const what = `${N}x${C}x${HW}`;
      expectClose(ref.dx, numGrad(x, loss), 1e-6, 1e-5, `dx ${what}`);
      expectClose(ref.dw, numGrad(w, loss), 1e-6, 1e-5, `dw ${what}`);
      expectClose(ref.db, numGrad(b, loss), 1e-6, 1e-5, `db ${what}`);
    }
  });

  it('native training and eval match the reference over random shapes', () => {
    const r = rng(12);
    const shapes: number[][] = [[2, 1, 1], [1, 3, 2], [4, 3, 1], [8, 16, 49], [2, 64, 256], [32, 3, 1024]];
    for (let t = 0; t < 6; t++) shapes.push([randInt(r, 1, 6), randInt(r, 1, 20), randInt(r, 1, 40)]);
    for (const [N, C, HW] of shapes) {
      for (const training of [true, false]) {
        if (training && N * HW < 2) continue;
        for (const affine of [true, false]) {
          const what = `${N}x${C}x${HW} training=${training} affine=${affine}`;
          const x = randn(r, N * C * HW, 2, -0.7), dy = randn(r, N * C * HW);
          const w = affine ? randn(r, C) : null, b = affine ? randn(r, C) : null;
          const rm = randn(r, C, 0.2), rv = Float32Array.from(randn(r, C), (v) => 0.5 + Math.abs(v));
          const momentum = 0.1 + 0.3 * r(), eps = 1e-5;
          const ref = bnRef(x, w, b, rm, rv, N, C, HW, training, momentum, eps);
          const y = new Float32Array(N * C * HW), sm = new Float32Array(C), si = new Float32Array(C);
          const rm2 = rm.slice(), rv2 = rv.slice();
          raw.batchNormForward(y, sm, si, rm2, rv2, x, w, b, N, C, HW, training, momentum, eps);
          expectClose(y, ref.y, 1e-5, 1e-4, `y ${what}`);
          expectClose(sm, ref.mean, 1e-6, 1e-5, `saveMean ${what}`);
          expectClose(si, ref.invstd, 1e-6, 1e-5, `saveInvstd ${what}`);
          expectClose(rm2, ref.rm!, 1e-6, 1e-5, `runningMean ${what}`);
          expectClose(rv2, ref.rv!, 1e-6, 1e-5, `runningVar ${what}`);
          const rb = bnBackRef(dy, x, ref.mean, ref.invstd, w, N, C, HW, training);
          const dx = new Float32Array(N * C * HW).fill(NaN), dw = new Float32Array(C).fill(NaN), db = new Float32Array(C).fill(NaN);
          raw.batchNormBackward(dx, dw, db, dy, x, sm, si, w, N, C, HW, training);
          expectClose(dx, rb.dx, 1e-4, 1e-3, `dx ${what}`);
          expectClose(dw, rb.dw, 1e-3, 1e-4, `dw ${what}`);
          expectClose(db, rb.db, 1e-3, 1e-4, `db ${what}`);
        }
      }
      // Training without running stats leaves nothing else to update.
      if (N * HW >= 2) {
        const x = randn(r, N * C * HW);
        const y = new Float32Array(N * C * HW), sm = new Float32Array(C), si = new Float32Array(C);
        raw.batchNormForward(y, sm, si, null, null, x, null, null, N, C, HW, true, 0.1, 1e-5);
        expectClose(y, bnRef(x, null, null, null, null, N, C, HW, true, 0.1, 1e-5).y, 1e-5, 1e-4, 'y no running stats');
      }
    }
  });

  it('matches PyTorch (training with running stats, eval)', () => {
    for (const c of fixture('nn-batch-norm.json').cases) {
      const { N, C, HW, training, momentum, eps } = c;
      const w = c.w ? f32(c.w) : null, b = c.b ? f32(c.b) : null, x = f32(c.x);
      const y = new Float32Array(N * C * HW), sm = new Float32Array(C), si = new Float32Array(C);
      const rm = f32(c.runningMean), rv = f32(c.runningVar);
      raw.batchNormForward(y, sm, si, rm, rv, x, w, b, N, C, HW, training, momentum, eps);
      expectClose(y, c.y, 1e-5, 1e-5, 'y');
      expectClose(rm, c.runningMeanAfter, 1e-6, 1e-5, 'runningMean');
      expectClose(rv, c.runningVarAfter, 1e-6, 1e-5, 'runningVar');
      const dx = new Float32Array(N * C * HW), dw = new Float32Array(C), db = new Float32Array(C);
      raw.batchNormBackward(dx, w ? dw : null, w ? db : null, f32(c.dy), x, sm, si, w, N, C, HW, training);
      expectClose(dx, c.dx, 1e-5, 1e-4, 'dx');
      if (w) {
        expectClose(dw, c.dw, 1e-5, 1e-5, 'dw');
        expectClose(db, c.db, 1e-5, 1e-5, 'db');
      }
    }
  });

  it('rejects bad arguments', () => {
    const f = (n: number) => new Float32Array(n);
    expect(() => raw.batchNormForward(f(12), f(3), f(3), null, null, f(11), null, null, 2, 3, 2, true, 0.1, 1e-5)).toThrow(/batchNormForward: x has 11/);
    expect(() => raw.batchNormForward(f(12), f(3), f(3), f(2), f(3), f(12), null, null, 2, 3, 2, true, 0.1, 1e-5)).toThrow(/batchNormForward: runningMean/);
    expect(() => raw.batchNormForward(f(12), f(3), f(3), f(3), null, f(12), null, null, 2, 3, 2, true, 0.1, 1e-5)).toThrow(TypeError);
    expect(() => raw.batchNormForward(f(12), f(3), f(3), null, null, f(12), null, null, 2, 3, 2, false, 0.1, 1e-5)).toThrow(/batchNormForward: eval/);
    expect(() => raw.batchNormForward(f(3), f(3), f(3), null, null, f(3), null, null, 1, 3, 1, true, 0.1, 1e-5)).toThrow(/more than 1 value/);
    expect(() => raw.batchNormForward(f(12), f(3), f(3), null, null, f(12), f(3), f(2), 2, 3, 2, true, 0.1, 1e-5)).toThrow(/batchNormForward: b has 2/);
    expect(() => raw.batchNormBackward(f(12), f(3), f(3), f(12), f(12), f(3), f(2), null, 2, 3, 2, true)).toThrow(/batchNormBackward: saveInvstd/);
    expect(() => raw.batchNormBackward(f(12), null, null, f(12), new Int32Array(12), f(3), f(3), null, 2, 3, 2, true)).toThrow(TypeError);
  });
});

// ---- embedding ----

describe('embedding', () => {
  function embBackRef(dy: Arr, idx: Arr, num: number, dim: number, pad: number): Float64Array {
    const dw = new Float64Array(num * dim);
    for (let i = 0; i < idx.length; i++) {
      if (idx[i] === pad) continue;
      for (let k = 0; k < dim; k++) dw[idx[i] * dim + k] += dy[i * dim + k];
    }
    return dw;
  }

  it('forward gathers rows and backward scatter-adds them (random shapes, padding)', () => {
    const r = rng(21);
    const shapes: number[][] = [[1, 1, 1], [5, 3, 0], [10, 8, 40], [1000, 64, 3000], [3, 700, 50], [50000, 4, 100]];
    for (const [num, dim, n] of shapes) {
      const weight = randn(r, num * dim), dy = randn(r, n * dim);
      const idx = Int32Array.from({ length: n }, () => randInt(r, 0, Math.min(num - 1, 20)));
      const y = new Float32Array(n * dim).fill(NaN);
      raw.embeddingForward(y, idx, weight, num, dim);
      for (let i = 0; i < n; i++)
        expect(y.subarray(i * dim, (i + 1) * dim)).toEqual(weight.subarray(idx[i] * dim, (idx[i] + 1) * dim));
      for (const pad of [-1, Math.min(num - 1, 2)]) {
        const dw = new Float32Array(num * dim).fill(NaN);
        raw.embeddingBackward(dw, dy, idx, num, dim, pad);
        expectClose(dw, embBackRef(dy, idx, num, dim, pad), 1e-5, 1e-5, `dweight ${num}x${dim} n=${n} pad=${pad}`);
      }
    }
  });

  it('backward is deterministic across thread counts', () => {
    const r = rng(22);
    const num = 300, dim = 96, n = 20000;
    const dy = randn(r, n * dim);
    const idx = Int32Array.from({ length: n }, () => randInt(r, 0, 9));
    const out: Float32Array[] = [];
    for (const t of [1, 2, 3]) {
      raw.setNumThreads(t);
      const dw = new Float32Array(num * dim);
      raw.embeddingBackward(dw, dy, idx, num, dim, -1);
      out.push(dw);
    }
    raw.setNumThreads(initialThreads);
    expect(out[1]).toEqual(out[0]);
    expect(out[2]).toEqual(out[0]);
  });

  it('matches PyTorch', () => {
    for (const c of fixture('nn-embedding.json').cases) {
      const { numEmbeddings: num, dim, paddingIdx } = c;
      const idx = Int32Array.from(c.indices);
      const y = new Float32Array(idx.length * dim);
      raw.embeddingForward(y, idx, f32(c.weight), num, dim);
      expect(Array.from(y)).toEqual(c.y);
      const dw = new Float32Array(num * dim);
      raw.embeddingBackward(dw, f32(c.dy), idx, num, dim, paddingIdx);
      expectClose(dw, c.dweight, 1e-6, 1e-6, 'dweight');
    }
  });

  it('rejects out-of-range indices before writing anything, and bad buffers', () => {
    const weight = new Float32Array(6), y = new Float32Array(6).fill(7);
    expect(() => raw.embeddingForward(y, Int32Array.from([0, 1, 3]), weight, 3, 2)).toThrow(RangeError);
    expect(() => raw.embeddingForward(y, Int32Array.from([0, 1, 3]), weight, 3, 2)).toThrow(/embeddingForward: indices\[2\] = 3/);
    expect(() => raw.embeddingForward(y, Int32Array.from([0, -1, 2]), weight, 3, 2)).toThrow(/indices\[1\] = -1/);
    expect(Array.from(y)).toEqual([7, 7, 7, 7, 7, 7]);
    expect(() => raw.embeddingForward(y, [0, 1, 2], weight, 3, 2)).toThrow(TypeError);
    expect(() => raw.embeddingForward(y, Float32Array.from([0, 1, 2]), weight, 3, 2)).toThrow(/indices must be a Int32Array/);
    expect(() => raw.embeddingForward(y, Int32Array.from([0, 1, 2, 0]), weight, 3, 2)).toThrow(/embeddingForward: y has 6/);
    expect(() => raw.embeddingForward(y, Int32Array.from([0]), weight, 4, 2)).toThrow(/embeddingForward: weight/);
    const dw = new Float32Array(6).fill(7);
    expect(() => raw.embeddingBackward(dw, new Float32Array(4), Int32Array.from([0, 5]), 3, 2, -1)).toThrow(/embeddingBackward: indices\[1\] = 5/);
    expect(() => raw.embeddingBackward(dw, new Float32Array(3), Int32Array.from([0, 1]), 3, 2, -1)).toThrow(/embeddingBackward: dy/);
    expect(() => raw.embeddingBackward(dw, new Float32Array(4), Int32Array.from([0, 1]), 3, 2, 3)).toThrow(/paddingIdx/);
    expect(() => raw.embeddingBackward(dw, new Float32Array(4), Int32Array.from([0, 1]), 3, 2, -2)).toThrow(/paddingIdx/);
    expect(Array.from(dw)).toEqual([7, 7, 7, 7, 7, 7]);
  });
});

// ---- optimizers ----

interface OptCfg {
  kind: 'sgd' | 'adam' | 'adamw' | 'rmsprop';
  lr: number; momentum?: number; dampening?: number; weight_decay?: number; nesterov?: boolean;
  maximize?: boolean; beta1?: number; beta2?: number; eps?: number; amsgrad?: boolean;
  alpha?: number; centered?: boolean;
}

function defaults(c: OptCfg): Required<OptCfg> {
  return {
    momentum: 0, dampening: 0, nesterov: false, maximize: false, beta1: 0.9, beta2: 0.999,
    eps: c.kind === 'rmsprop' ? 1e-8 : 1e-8, amsgrad: false, alpha: 0.99, centered: false,
    ...c, weight_decay: c.weight_decay ?? (c.kind === 'adamw' ? 1e-2 : 0),
  } as Required<OptCfg>;
}

// torch.optim in float64, one parameter list, `steps` steps with the given gradients.
function optimRef(cfg: OptCfg, params0: Arr[], grads: Arr[][]): Float64Array[] {
  const c = defaults(cfg);
  const p = params0.map(f64);
  const z = () => p.map((a) => new Float64Array(a.length));
  const buf = z(), m = z(), v = z(), vmax = z(), ga = z();
  grads.forEach((gs, k) => {
    const step = k + 1;
    for (let t = 0; t < p.length; t++) {
      for (let i = 0; i < p[t].length; i++) {
        let g = c.maximize ? -gs[t][i] : gs[t][i];
        if (c.kind === 'sgd') {
          if (c.weight_decay) g += c.weight_decay * p[t][i];
          if (c.momentum) {
            buf[t][i] = k === 0 ? g : c.momentum * buf[t][i] + (1 - c.dampening) * g;
            g = c.nesterov ? g + c.momentum * buf[t][i] : buf[t][i];
          }
          p[t][i] -= c.lr * g;
        } else if (c.kind === 'adam' || c.kind === 'adamw') {
          if (c.kind === 'adamw') p[t][i] *= 1 - c.lr * c.weight_decay;
          else if (c.weight_decay) g += c.weight_decay * p[t][i];
          m[t][i] = c.beta1 * m[t][i] + (1 - c.beta1) * g;
          v[t][i] = c.beta2 * v[t][i] + (1 - c.beta2) * g * g;
          let vv = v[t][i];
          if (c.amsgrad) vv = vmax[t][i] = Math.max(vmax[t][i], vv);
          const bc1 = 1 - c.beta1 ** step, bc2 = 1 - c.beta2 ** step;
          p[t][i] -= (c.lr / bc1) * (m[t][i] / (Math.sqrt(vv) / Math.sqrt(bc2) + c.eps));
        } else {
          if (c.weight_decay) g += c.weight_decay * p[t][i];
          v[t][i] = c.alpha * v[t][i] + (1 - c.alpha) * g * g;
          let avg: number;
          if (c.centered) {
            ga[t][i] = c.alpha * ga[t][i] + (1 - c.alpha) * g;
            avg = Math.sqrt(v[t][i] - ga[t][i] ** 2) + c.eps;
          } else avg = Math.sqrt(v[t][i]) + c.eps;
          if (c.momentum > 0) {
            buf[t][i] = c.momentum * buf[t][i] + g / avg;
            p[t][i] -= c.lr * buf[t][i];
          } else p[t][i] -= (c.lr * g) / avg;
        }
      }
    }
  });
  return p;
}

// The same steps through the native binding.
function optimNative(cfg: OptCfg, params0: Arr[], grads: Arr[][]): Float32Array[] {
  const c = defaults(cfg);
  const p = params0.map(f32);
  const z = () => p.map((a) => new Float32Array(a.length));
  const buf = z(), m = z(), v = z(), vmax = z(), ga = z();
  grads.forEach((gs, k) => {
    const g = gs.map(f32);
    if (c.kind === 'sgd')
      raw.sgdStep(p, g, c.momentum ? buf : null, c.lr, c.momentum, c.dampening, c.weight_decay,
        c.nesterov, c.maximize, k === 0);
    else if (c.kind === 'adam' || c.kind === 'adamw')
      raw.adamStep(p, g, m, v, c.amsgrad ? vmax : null, c.lr, c.beta1, c.beta2, c.eps,
        c.weight_decay, k + 1, c.amsgrad, c.kind === 'adamw', c.maximize);
    else
      raw.rmspropStep(p, g, v, c.momentum ? buf : null, c.centered ? ga : null, c.lr, c.alpha,
        c.eps, c.weight_decay, c.momentum, c.centered, c.maximize);
  });
  return p;
}

describe('optimizer steps', () => {
  const configs: OptCfg[] = [
    { kind: 'sgd', lr: 0.1 },
    { kind: 'sgd', lr: 0.05, momentum: 0.9, dampening: 0.1, weight_decay: 0.01 },
    { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.02 },
    { kind: 'sgd', lr: 0.05, momentum: 0.5, maximize: true },
    { kind: 'adam', lr: 0.01 },
    { kind: 'adam', lr: 0.02, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.05 },
    { kind: 'adam', lr: 0.01, amsgrad: true, weight_decay: 0.01 },
    { kind: 'adam', lr: 0.01, maximize: true },
    { kind: 'adamw', lr: 0.01, weight_decay: 0.1 },
    { kind: 'adamw', lr: 0.01, weight_decay: 0.1, amsgrad: true },
    { kind: 'rmsprop', lr: 0.01 },
    { kind: 'rmsprop', lr: 0.01, alpha: 0.9, eps: 1e-6, weight_decay: 0.01, momentum: 0.9, centered: true },
    { kind: 'rmsprop', lr: 0.005, momentum: 0.5 },
  ];

  it('match a float64 reimplementation of torch.optim over 10 steps', () => {
    const r = rng(31);
    // Sizes include an empty tensor and one larger than a chunk (parallel path).
    const sizes = [1, 0, 17, 300, 70000];
    for (const cfg of configs) {
      const params0 = sizes.map((s) => randn(r, s));
      const grads = Array.from({ length: 10 }, () => sizes.map((s) => randn(r, s)));
      const got = optimNative(cfg, params0, grads);
      const want = optimRef(cfg, params0, grads);
      for (let t = 0; t < sizes.length; t++)
        expectClose(got[t], want[t], 2e-5, 2e-5, `${JSON.stringify(cfg)} tensor ${t}`);
    }
  });

  it('match PyTorch', () => {
    for (const c of fixture('nn-optim.json').cases) {
      const cfg = { kind: c.kind, ...c.options } as OptCfg;
      const got = optimNative(cfg, c.params0, c.grads);
      for (let t = 0; t < c.sizes.length; t++)
        expectClose(got[t], c.params[t], 1e-6, 1e-5, `${JSON.stringify(cfg)} tensor ${t}`);
    }
  });

  it('scaleInPlace multiplies every array', () => {
    const a = Float32Array.from([1, 2, 3]), b = new Float32Array(50000).fill(2), e = new Float32Array(0);
    raw.scaleInPlace([a, e, b], 0.5);
    expect(Array.from(a)).toEqual([0.5, 1, 1.5]);
    expect(b.every((v) => v === 1)).toBe(true);
    raw.scaleInPlace([], 3);
    expect(() => raw.scaleInPlace([a, [1, 2]], 2)).toThrow(/scaleInPlace: arrays\[1\] must be a Float32Array/);
    expect(() => raw.scaleInPlace(a, 2)).toThrow(TypeError);
    expect(() => raw.scaleInPlace([a], 'x')).toThrow(TypeError);
  });

  it('reject mismatched or malformed lists', () => {
    const p = [new Float32Array(3), new Float32Array(4)];
    const g = [new Float32Array(3), new Float32Array(4)];
    const s = () => [new Float32Array(3), new Float32Array(4)];
    expect(() => raw.sgdStep(p, [g[0]], null, 0.1, 0, 0, 0, false, false, true)).toThrow(/sgdStep: grads has 1 arrays, params has 2/);
    expect(() => raw.sgdStep(p, [g[0], new Float32Array(5)], null, 0.1, 0, 0, 0, false, false, true)).toThrow(/sgdStep: grads\[1\] has 5 elements/);
    expect(() => raw.sgdStep(p, g, null, 0.1, 0.9, 0, 0, false, false, true)).toThrow(/sgdStep: momentumBufs/);
    expect(() => raw.sgdStep(p, g, [new Float32Array(3), new Float32Array(3)], 0.1, 0.9, 0, 0, false, false, true)).toThrow(RangeError);
    expect(() => raw.sgdStep(p, g, s(), 0.1, 0.9, 0.1, 0, true, false, true)).toThrow(/sgdStep: nesterov/);
    expect(() => raw.sgdStep(p, [g[0], new Float64Array(4)], null, 0.1, 0, 0, 0, false, false, true)).toThrow(TypeError);
    expect(() => raw.sgdStep(null, g, null, 0.1, 0, 0, 0, false, false, true)).toThrow(/sgdStep: params must be an array/);
    expect(() => raw.adamStep(p, g, s(), [new Float32Array(3)], null, 0.1, 0.9, 0.999, 1e-8, 0, 1, false, false, false)).toThrow(/adamStep: expAvgSq has 1 arrays/);
    expect(() => raw.adamStep(p, g, s(), s(), null, 0.1, 0.9, 0.999, 1e-8, 0, 1, true, false, false)).toThrow(/adamStep: maxExpAvgSq/);
    expect(() => raw.adamStep(p, g, s(), s(), [new Float32Array(3), new Float32Array(2)], 0.1, 0.9, 0.999, 1e-8, 0, 1, true, false, false)).toThrow(/adamStep: maxExpAvgSq\[1\]/);
    expect(() => raw.adamStep(p, g, s(), s(), null, 0.1, 0.9, 0.999, 1e-8, 0, 0, false, false, false)).toThrow(/adamStep: step/);
    expect(() => raw.adamStep(p, g, s(), s(), null, 0.1, 0.9, 0.999, 1e-8, 0, 1.5, false, false, false)).toThrow(RangeError);
    expect(() => raw.rmspropStep(p, g, s(), null, null, 0.1, 0.99, 1e-8, 0, 0.9, false)).toThrow(/rmspropStep: momentumBuf/);
    expect(() => raw.rmspropStep(p, g, s(), null, null, 0.1, 0.99, 1e-8, 0, 0, true)).toThrow(/rmspropStep: gradAvg/);
    expect(() => raw.rmspropStep(p, g, [new Float32Array(2), new Float32Array(4)], null, null, 0.1, 0.99, 1e-8, 0, 0, false)).toThrow(/rmspropStep: squareAvg\[0\]/);
    // Nothing was updated by the failed calls.
    expect(p.every((a) => a.every((v) => v === 0))).toBe(true);
  });
});
