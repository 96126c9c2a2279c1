// SGEMM: correctness against a float64 reference on every SIMD path and thread count, argument
// checking in kernels.sgemm, bounds checks in the raw binding, and the strided batched variant.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildInfo, getNumThreads, setNumThreads } from '../lib/index';
import * as kernels from '../lib/kernels';
import { raw } from './helpers/raw';
import { checkCase, describeCase, rng, runSgemmChecks, type SgemmCase } from './helpers/sgemm-check';

const root = path.resolve(__dirname, '..');
const initialThreads = getNumThreads();
afterAll(() => setNumThreads(initialThreads));

describe('kernels.sgemm matches a float64 reference', () => {
  it('over awkward, random and cache-crossing shapes (default SIMD path, default threads)', () => {
    const res = runSgemmChecks(1234);
    expect(res.cases).toBeGreaterThan(100);
    expect(res.failures).toEqual([]);
  });

  it('with 1 and 3 threads set at run time', () => {
    for (const t of [1, 3]) {
      setNumThreads(t);
      expect(getNumThreads()).toBe(t);
      expect(runSgemmChecks(99 + t).failures).toEqual([]);
    }
    setNumThreads(initialThreads);
  });

  it('with more threads than row blocks (the shared B block\'s panels split between threads)', () => {
    // 290 rows on 8 threads make 7 row blocks: each also takes a part of the panels.
    setNumThreads(8);
    const cases: SgemmCase[] = [
      { transA: false, transB: false, m: 290, n: 300, k: 70, alpha: 1, beta: 0, padA: 0, padB: 1, padC: 0 },
      { transA: false, transB: false, m: 290, n: 300, k: 1100, alpha: 0.5, beta: 1, padA: 2, padB: 0, padC: 3 },
      { transA: true, transB: true, m: 290, n: 300, k: 70, alpha: 1, beta: -1, padA: 0, padB: 0, padC: 0 },
    ];
    const failures = cases.map((c, i) => checkCase(c, 500 + i)).filter((f) => f !== null);
    setNumThreads(initialThreads);
    expect(failures).toEqual([]);
  });

  it('reads nothing from C when beta = 0 and scales C by beta when k = 0', () => {
    const c = new Float32Array([NaN, Infinity, -Infinity, NaN]);
    kernels.sgemm({ m: 2, n: 2, k: 0, a: new Float32Array(0), b: new Float32Array(0), c });
    expect(Array.from(c)).toEqual([0, 0, 0, 0]);
    const c2 = new Float32Array([1, 2, 3, 4]);
    kernels.sgemm({ m: 2, n: 2, k: 0, a: new Float32Array(0), b: new Float32Array(0), beta: 2, c: c2 });
    expect(Array.from(c2)).toEqual([2, 4, 6, 8]);
  });

  it('agrees with kernels.sgemmReference', () => {
    const rand = rng(7);
    const m = 23, n = 45, k = 67;
    const a = Float32Array.from({ length: m * k }, () => rand() - 0.5);
    const b = Float32Array.from({ length: n * k }, () => rand() - 0.5);
    const c1 = new Float32Array(m * n), c2 = new Float32Array(m * n);
    kernels.sgemm({ transB: true, m, n, k, a, b, c: c1 });
    kernels.sgemmReference({ transB: true, m, n, k, a, b, c: c2 });
    for (let i = 0; i < m * n; ++i) expect(Math.abs(c1[i] - c2[i])).toBeLessThan(1e-5);
  });
});

// Every micro-kernel the CPU can run, each with 1 and 2 threads, in a fresh process (the SIMD level
// and the default thread count are read from the environment once, at load).
describe('every SIMD path and thread count (child processes)', () => {
  const order = ['generic', 'avx2', 'avx512'];
  const best = buildInfo().simd;
  const paths = best === 'neon' ? ['generic', 'neon'] : order.slice(0, order.indexOf(best) + 1);
  for (const simd of paths) {
    for (const threads of [1, 2]) {
      it(`TSM_SIMD=${simd} TSM_NUM_THREADS=${threads}`, () => {
        const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/helpers/sgemm-check-main.ts'], {
          cwd: root,
          env: { ...process.env, TSM_SIMD: simd, TSM_NUM_THREADS: String(threads) },
          encoding: 'utf8',
          timeout: 120_000,
        });
        expect(r.status, `child failed:\n${r.stderr}`).toBe(0);
        const lastLine = r.stdout.trim().split('\n').pop() ?? '';
        const out = JSON.parse(lastLine) as { simd: string; threads: number; cases: number; failures: string[] };
        expect(out.simd).toBe(simd);
        expect(out.threads).toBe(threads);
        expect(out.cases).toBeGreaterThan(100);
        expect(out.failures).toEqual([]);
      });
    }
  }
});

describe('kernels.sgemm rejects bad arguments with errors that name them', () => {
  const f32 = (n: number) => new Float32Array(n);
  // A valid 2x3 * 3x4 problem; each test breaks one thing.
  const good = () => ({ m: 2, n: 4, k: 3, a: f32(6), b: f32(12), c: f32(8) });
  const bad: [string, Record<string, unknown>, ErrorConstructor, RegExp][] = [
    ['a as Float64Array', { a: new Float64Array(6) }, TypeError, /kernels\.sgemm: a must be a Float32Array, got a Float64Array/],
    ['a as plain Array', { a: [0, 0, 0, 0, 0, 0] }, TypeError, /kernels\.sgemm: a must be a Float32Array, got an Array/],
    ['b as Int32Array', { b: new Int32Array(12) }, TypeError, /kernels\.sgemm: b must be a Float32Array/],
    ['c missing', { c: undefined }, TypeError, /kernels\.sgemm: c must be a Float32Array, got undefined/],
    ['a too short', { a: f32(5) }, RangeError, /kernels\.sgemm: a is too short: .*needs 6 elements, got 5/],
    ['a too short for lda', { lda: 5, a: f32(7) }, RangeError, /kernels\.sgemm: a is too short: a 2x3 matrix with lda=5 needs 8/],
    ['a too short for transA', { transA: true, lda: 2, a: f32(5) }, RangeError, /kernels\.sgemm: a is too short: a 3x2 matrix/],
    ['b too short', { b: f32(11) }, RangeError, /kernels\.sgemm: b is too short/],
    ['b too short for ldb', { ldb: 6, b: f32(14) }, RangeError, /kernels\.sgemm: b is too short: a 3x4 matrix with ldb=6 needs 16/],
    ['c too short', { c: f32(7) }, RangeError, /kernels\.sgemm: c is too short/],
    ['c too short for ldc', { ldc: 5, c: f32(8) }, RangeError, /kernels\.sgemm: c is too short: a 2x4 matrix with ldc=5 needs 9/],
    ['negative m', { m: -1 }, RangeError, /kernels\.sgemm: m must be a non-negative integer, got -1/],
    ['fractional n', { n: 2.5 }, RangeError, /kernels\.sgemm: n must be a non-negative integer, got 2\.5/],
    ['NaN k', { k: NaN }, RangeError, /kernels\.sgemm: k must be a non-negative integer, got NaN/],
    ['string k', { k: '3' }, TypeError, /kernels\.sgemm: k must be a number, got "3"/],
    ['missing m', { m: undefined }, TypeError, /kernels\.sgemm: m must be a number, got undefined/],
    ['lda < columns', { lda: 2 }, RangeError, /kernels\.sgemm: lda must be >= 3, got 2/],
    ['lda < m with transA', { transA: true, lda: 1, a: f32(100) }, RangeError, /kernels\.sgemm: lda must be >= 2, got 1/],
    ['ldb < columns', { ldb: 3 }, RangeError, /kernels\.sgemm: ldb must be >= 4, got 3/],
    ['ldb < k with transB', { transB: true, ldb: 2, b: f32(100) }, RangeError, /kernels\.sgemm: ldb must be >= 3, got 2/],
    ['ldc < n', { ldc: 3 }, RangeError, /kernels\.sgemm: ldc must be >= 4, got 3/],
    ['fractional lda', { lda: 3.5 }, RangeError, /kernels\.sgemm: lda must be an integer, got 3\.5/],
    ['NaN alpha', { alpha: NaN }, RangeError, /kernels\.sgemm: alpha must be finite, got NaN/],
    ['Infinity beta', { beta: Infinity }, RangeError, /kernels\.sgemm: beta must be finite, got Infinity/],
    ['string alpha', { alpha: '1' }, TypeError, /kernels\.sgemm: alpha must be a number/],
    ['numeric transA', { transA: 1 }, TypeError, /kernels\.sgemm: transA must be a boolean, got 1/],
    ['string transB', { transB: 'yes' }, TypeError, /kernels\.sgemm: transB must be a boolean/],
  ];
  for (const [what, patch, type, message] of bad) {
    it(what, () => {
      const args = { ...good(), ...patch } as unknown as kernels.SgemmArgs;
      const call = () => kernels.sgemm(args);
      expect(call).toThrow(type);
      expect(call).toThrow(message);
    });
  }

  it('missing options object', () => {
    const sgemm = kernels.sgemm as (x?: unknown) => void;
    expect(() => sgemm()).toThrow(TypeError);
    expect(() => sgemm()).toThrow(/kernels\.sgemm: expected an options object, got undefined/);
    expect(() => sgemm(null)).toThrow(/got null/);
    expect(() => sgemm(42)).toThrow(TypeError);
  });

  it('still works after all that (nothing was left broken)', () => {
    const c = f32(1);
    kernels.sgemm({ m: 1, n: 1, k: 1, a: new Float32Array([3]), b: new Float32Array([4]), c });
    expect(c[0]).toBe(12);
  });
});

describe('the raw binding refuses what would read or write out of bounds', () => {
  const f32 = (n: number) => new Float32Array(n);
  // sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, reference)
  it('short a, b, c (both sgemm and the reference)', () => {
    for (const ref of [false, true]) {
      expect(() => raw.sgemm(false, false, 4, 4, 4, 1, f32(15), 4, f32(16), 4, 0, f32(16), 4, ref)).toThrow(RangeError);
      expect(() => raw.sgemm(false, false, 4, 4, 4, 1, f32(16), 4, f32(15), 4, 0, f32(16), 4, ref)).toThrow(/b has 15 elements, needs 16/);
      expect(() => raw.sgemm(false, false, 4, 4, 4, 1, f32(16), 4, f32(16), 4, 0, f32(15), 4, ref)).toThrow(/c has 15 elements, needs 16/);
      expect(() => raw.sgemm(true, false, 4, 2, 3, 1, f32(12), 5, f32(6), 2, 0, f32(8), 2, ref)).toThrow(/a has 12 elements, needs 14/);
      expect(() => raw.sgemm(false, true, 2, 4, 3, 1, f32(6), 3, f32(12), 4, 0, f32(8), 4, ref)).toThrow(/b has 12 elements, needs 15/);
    }
  });

  it('bad sizes and leading dimensions', () => {
    expect(() => raw.sgemm(false, false, -1, 4, 4, 1, f32(16), 4, f32(16), 4, 0, f32(16), 4, false)).toThrow(RangeError);
    expect(() => raw.sgemm(false, false, 4, 4, 4, 1, f32(16), 0, f32(16), 4, 0, f32(16), 4, false)).toThrow(RangeError);
    expect(() => raw.sgemm(false, false, 1.5, 4, 4, 1, f32(16), 4, f32(16), 4, 0, f32(16), 4, false)).toThrow(RangeError);
    // lda smaller than a row: the C ABI says TSM_ERR_INVALID_ARGUMENT; the binding turns it into a RangeError.
    expect(() => raw.sgemm(false, false, 4, 4, 4, 1, f32(64), 3, f32(16), 4, 0, f32(16), 4, false)).toThrow(RangeError);
    expect(() => raw.sgemm(false, false, 4, 4, 4, 1, new Float64Array(16), 4, f32(16), 4, 0, f32(16), 4, false)).toThrow(TypeError);
    expect(() => raw.sgemm(false, false, 4, 4, 4, 1, f32(16), 4, f32(16), 4, 0, [1, 2], 4, false)).toThrow(TypeError);
    expect(() => raw.sgemm()).toThrow(TypeError);
  });

  it('short buffers of sgemmStridedBatched', () => {
    // batch 3 of 2x2 * 2x2, strides 4: each buffer needs 12.
    const call = (la: number, lb: number, lc: number, sa = 4, sb = 4, sc = 4) =>
      raw.sgemmStridedBatched(false, false, 3, 2, 2, 2, 1, f32(la), 2, sa, f32(lb), 2, sb, 0, f32(lc), 2, sc);
    expect(() => call(12, 12, 12)).not.toThrow();
    expect(() => call(11, 12, 12)).toThrow(/a has 11 elements, needs 12/);
    expect(() => call(12, 11, 12)).toThrow(/b has 11 elements, needs 12/);
    expect(() => call(12, 12, 11)).toThrow(/c has 11 elements, needs 12/);
    expect(() => call(12, 12, 12, 5)).toThrow(RangeError);
    expect(() => call(12, 12, 12, -1)).toThrow(RangeError);
  });
});

describe('sgemmStridedBatched (raw)', () => {
  function refBatched(c: SgemmCase & { batch: number; sa: number; sb: number; sc: number }, seed: number) {
    const rand = rng(seed);
    const { transA, transB, m, n, k, alpha, beta, batch, sa, sb, sc } = c;
    const lda = (transA ? m : k) + c.padA, ldb = (transB ? k : n) + c.padB, ldc = n + c.padC;
    const aLen = (batch - 1) * sa + ((transA ? k : m) - 1) * lda + (transA ? m : k);
    const bLen = (batch - 1) * sb + ((transB ? n : k) - 1) * ldb + (transB ? k : n);
    const cLen = (batch - 1) * sc + (m - 1) * ldc + n;
    const a = Float32Array.from({ length: aLen }, () => rand() - 0.5);
    const b = Float32Array.from({ length: bLen }, () => rand() - 0.5);
    const c0 = Float32Array.from({ length: cLen }, () => rand() - 0.5);
    const out = Float32Array.from(c0);
    raw.sgemmStridedBatched(transA, transB, batch, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, out, ldc, sc);
    for (let t = 0; t < batch; ++t) {
      for (let i = 0; i < m; ++i) {
        for (let j = 0; j < n; ++j) {
          let s = 0, abs = 0;
          for (let p = 0; p < k; ++p) {
            const x = transA ? a[t * sa + p * lda + i] : a[t * sa + i * lda + p];
            const y = transB ? b[t * sb + j * ldb + p] : b[t * sb + p * ldb + j];
            s += x * y;
            abs += Math.abs(x * y);
          }
          const at = t * sc + i * ldc + j;
          const want = alpha * s + beta * c0[at];
          expect(Math.abs(out[at] - want), `${describeCase(c)} batch ${t} C[${i},${j}]`).toBeLessThanOrEqual(
            (k + 8) * 1.2e-7 * (Math.abs(alpha) * abs + Math.abs(beta * c0[at])) + 1e-30,
          );
        }
      }
    }
  }

  const base = { alpha: 1.5, beta: 0.5, padA: 1, padB: 0, padC: 2 };
  it('distinct matrices per batch entry, all transposes', () => {
    for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      const m = 7, n = 19, k = 13;
      const sa = ((transA ? k : m) + 0) * ((transA ? m : k) + base.padA);
      const sb = (transB ? n : k) * (transB ? k : n);
      const sc = m * (n + base.padC);
      refBatched({ ...base, transA, transB, m, n, k, batch: 4, sa, sb, sc }, 11);
    }
  });

  it('stride 0 broadcasts one A (or B) to the whole batch', () => {
    const m = 5, n = 33, k = 17;
    refBatched({ ...base, transA: false, transB: false, m, n, k, batch: 3, sa: 0, sb: k * n, sc: m * (n + 2) }, 12);
    refBatched({ ...base, transA: false, transB: true, m, n, k, batch: 3, sa: m * (k + 1), sb: 0, sc: m * (n + 2) + 3 }, 13);
  });

  it('batch 0 and empty products are no-ops', () => {
    const c = new Float32Array([1, 2, 3, 4]);
    // (Non-empty a and b: with batch 0 and m, n, k > 0 the C ABI still insists on non-NULL a and b.)
    raw.sgemmStridedBatched(false, false, 0, 2, 2, 2, 1, new Float32Array(4), 2, 4, new Float32Array(4), 2, 4, 0, c, 2, 4);
    expect(Array.from(c)).toEqual([1, 2, 3, 4]);
    raw.sgemmStridedBatched(false, false, 1, 2, 2, 0, 1, new Float32Array(0), 1, 0, new Float32Array(0), 2, 0, 0.5, c, 2, 4);
    expect(Array.from(c)).toEqual([0.5, 1, 1.5, 2]);
  });

  it('refuses stride 0 for C when batch > 1', () => {
    const f = new Float32Array(16);
    expect(() => raw.sgemmStridedBatched(false, false, 2, 2, 2, 2, 1, f, 2, 4, f, 2, 4, 0, new Float32Array(4), 2, 0)).toThrow();
  });
});

// Keep checkCase exported for ad-hoc debugging of a single case from a REPL.
void checkCase;
