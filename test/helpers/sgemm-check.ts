// SGEMM correctness cases against a float64 JavaScript reference. Used in-process by
// test/sgemm.test.ts and, for the other SIMD paths and thread counts, in child processes:
//   TSM_SIMD=avx2 TSM_NUM_THREADS=1 node --import tsx test/helpers/sgemm-check-main.ts
// which prints one JSON line: {simd, threads, cases, failures}.
import { sgemm } from '../../lib/kernels';
import { seededRandom } from '../../lib/text';

export interface SgemmCase {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  alpha: number;
  beta: number;
  /** Extra elements per stored row beyond the row itself (lda = cols + padA, ...). */
  padA: number;
  padB: number;
  padC: number;
}

/** Deterministic PRNG (mulberry32) so a failure names a reproducible case. */
export const rng = seededRandom;

function fill(n: number, rand: () => number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; ++i) x[i] = rand() * 2 - 1;
  return x;
}

const span = (rows: number, cols: number, ld: number): number => (rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols);

/** The cases: every transpose over awkward shapes, random small shapes, and shapes that cross blocks. */
export function sgemmCases(seed = 1234): SgemmCase[] {
  const rand = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const alphas = [1, -0.5, 2.25, 0];
  const betas = [0, 1, -1.5, 0.3];
  const cases: SgemmCase[] = [];
  const shapes: [number, number, number][] = [
    [1, 1, 1], [1, 37, 5], [37, 1, 5], [5, 7, 1], [1, 1, 300], [6, 16, 8], [6, 32, 8], [7, 17, 9], [5, 15, 7],
    [13, 33, 31], [64, 64, 64], [65, 97, 130], [0, 5, 3], [5, 0, 3], [5, 3, 0], [0, 0, 0], [1, 4103, 3],
    [149, 1, 300], [150, 151, 257], [11, 4097, 19],
  ];
  const trans: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];
  let i = 0;
  for (const [m, n, k] of shapes) {
    for (const [transA, transB] of trans) {
      // Cycle alpha/beta deterministically so every shape sees beta = 0 (NaN-poisoned C) and beta != 0.
      const alpha = alphas[i % alphas.length];
      const beta = betas[(i + (i >> 2)) % betas.length];
      ++i;
      cases.push({ transA, transB, m, n, k, alpha, beta, padA: pick([0, 0, 1, 3]), padB: pick([0, 0, 2, 5]), padC: pick([0, 0, 1, 7]) });
    }
  }
  for (let r = 0; r < 40; ++r) {
    const size = () => 1 + Math.floor(rand() * 70);
    cases.push({
      transA: rand() < 0.5, transB: rand() < 0.5, m: size(), n: size(), k: size(),
      alpha: pick([1, -0.75, 3]), beta: pick(betas), padA: pick([0, 1, 4]), padB: pick([0, 1, 4]), padC: pick([0, 2]),
    });
  }
  // Across cache blocks, sizes not multiples of 6/8/12/16/32: n > NC (4064/4080); k > KC, which is
  // 512 for the AVX-512 8x32 kernel (taken for these 37 and 145 rows) and 1024 for the 12x32 one (301
  // rows); m > MC (144).
  cases.push({ transA: false, transB: false, m: 37, n: 4103, k: 520, alpha: 1, beta: 0, padA: 0, padB: 3, padC: 1 });
  cases.push({ transA: true, transB: true, m: 37, n: 4103, k: 520, alpha: -1, beta: 0.5, padA: 2, padB: 0, padC: 0 });
  cases.push({ transA: false, transB: true, m: 301, n: 67, k: 1100, alpha: 0.5, beta: 0, padA: 1, padB: 1, padC: 3 });
  cases.push({ transA: true, transB: false, m: 301, n: 67, k: 1100, alpha: 2, beta: 1, padA: 0, padB: 0, padC: 0 });
  cases.push({ transA: false, transB: false, m: 145, n: 4097, k: 260, alpha: 1, beta: -1, padA: 5, padB: 0, padC: 2 });
  // Few rows on several threads: each thread's panels of an untransposed B are packed by the kernel
  // as it runs their first row tile (here fewer rows than the tile: into the edge tile), over three
  // KC steps; a transposed B is packed in groups of panels.
  cases.push({ transA: false, transB: false, m: 3, n: 2000, k: 100, alpha: -0.75, beta: 0.3, padA: 0, padB: 1, padC: 2 });
  cases.push({ transA: false, transB: false, m: 20, n: 1100, k: 1030, alpha: 1.5, beta: 1, padA: 1, padB: 5, padC: 0 });
  cases.push({ transA: true, transB: true, m: 64, n: 1000, k: 600, alpha: 1, beta: 0, padA: 0, padB: 2, padC: 1 });
  // More rows (the shared B block): two KC steps with a partial last panel, and two NC blocks.
  cases.push({ transA: false, transB: false, m: 300, n: 200, k: 1030, alpha: 1, beta: 0.3, padA: 0, padB: 3, padC: 0 });
  cases.push({ transA: false, transB: false, m: 290, n: 4100, k: 20, alpha: -1, beta: 0, padA: 1, padB: 0, padC: 1 });
  // Row counts that leave 1-4 over from 6-row panels end in 4-row panels on AVX2 (RowPanels in
  // sgemm.cpp): 128 = 20 x 6 + 2 x 4 with A transposed and packed once for both threads; 64 rows over
  // k = 16500, where each thread packs all of A itself, 32 KC steps; 298 = 49 x 6 + 4 on the path
  // with the shared B block (its last row block ends in the 4-row panel); 253 = 42 x 6 + 1.
  cases.push({ transA: true, transB: false, m: 128, n: 300, k: 700, alpha: 1, beta: 0, padA: 1, padB: 0, padC: 0 });
  cases.push({ transA: true, transB: false, m: 64, n: 40, k: 16500, alpha: -0.5, beta: 1, padA: 0, padB: 0, padC: 3 });
  cases.push({ transA: false, transB: true, m: 298, n: 70, k: 600, alpha: 1, beta: 0, padA: 0, padB: 1, padC: 1 });
  cases.push({ transA: true, transB: true, m: 253, n: 77, k: 90, alpha: 2, beta: -1, padA: 2, padB: 0, padC: 0 });
  return cases;
}

export function describeCase(c: SgemmCase): string {
  return `${c.transA ? 'T' : 'N'}${c.transB ? 'T' : 'N'} m=${c.m} n=${c.n} k=${c.k} alpha=${c.alpha} beta=${c.beta} ` +
    `lda+${c.padA} ldb+${c.padB} ldc+${c.padC}`;
}

export type SgemmFn = typeof sgemm;

/** Runs one case; returns null when it passes, else a message naming the first wrong element. */
export function checkCase(c: SgemmCase, seed: number, fn: SgemmFn = sgemm): string | null {
  const rand = rng(seed);
  const { transA, transB, m, n, k, alpha, beta } = c;
  const aRows = transA ? k : m, aCols = transA ? m : k;
  const bRows = transB ? n : k, bCols = transB ? k : n;
  const lda = Math.max(1, aCols) + c.padA, ldb = Math.max(1, bCols) + c.padB, ldc = Math.max(1, n) + c.padC;
  // Buffers exactly as long as the shape and leading dimension require: an overrun would read
  // outside the typed array (and the bounds checks would have refused a shorter one).
  const a = fill(span(aRows, aCols, lda), rand);
  const b = fill(span(bRows, bCols, ldb), rand);
  const cLen = span(m, n, ldc);
  const c0 = fill(cLen, rand);
  const SENTINEL = 12345.5;
  for (let i = 0; i < m; ++i) for (let j = n; j < ldc && i * ldc + j < cLen; ++j) c0[i * ldc + j] = SENTINEL;
  if (beta === 0) for (let i = 0; i < m; ++i) for (let j = 0; j < n; ++j) c0[i * ldc + j] = i % 2 ? NaN : Infinity;
  const out = Float32Array.from(c0);
  fn({ transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c: out, ldc });

  const row = new Float64Array(Math.max(1, n)), absRow = new Float64Array(Math.max(1, n));
  for (let i = 0; i < m; ++i) {
    row.fill(0);
    absRow.fill(0);
    for (let p = 0; p < k; ++p) {
      const aip = transA ? a[p * lda + i] : a[i * lda + p];
      if (transB) {
        for (let j = 0; j < n; ++j) { const t = aip * b[j * ldb + p]; row[j] += t; absRow[j] += Math.abs(t); }
      } else {
        const off = p * ldb;
        for (let j = 0; j < n; ++j) { const t = aip * b[off + j]; row[j] += t; absRow[j] += Math.abs(t); }
      }
    }
    for (let j = 0; j < n; ++j) {
      const cij = c0[i * ldc + j];
      const ref = alpha * row[j] + (beta === 0 ? 0 : beta * cij);
      const scale = Math.abs(alpha) * absRow[j] + (beta === 0 ? 0 : Math.abs(beta * cij));
      // float32 accumulation over k terms: |error| <= ~k * 2^-24 * scale (worst case), plus rounding of the result.
      const tol = (k + 8) * 1.2e-7 * scale + 1e-30;
      const got = out[i * ldc + j];
      const err = Math.abs(got - ref);
      if (!Number.isFinite(got) || err > tol) {
        return `${describeCase(c)}: C[${i},${j}] = ${got}, expected ${ref} (|err| ${err.toExponential(2)} > tol ${tol.toExponential(2)})`;
      }
    }
    for (let j = n; j < ldc && i * ldc + j < cLen; ++j) {
      if (out[i * ldc + j] !== SENTINEL) return `${describeCase(c)}: wrote C[${i},${j}] in the ldc padding`;
    }
  }
  return null;
}

/** Runs every case; returns the failures. */
export function runSgemmChecks(seed = 1234, fn: SgemmFn = sgemm): { cases: number; failures: string[] } {
  const cases = sgemmCases(seed);
  const failures: string[] = [];
  cases.forEach((c, i) => {
    try {
      const f = checkCase(c, seed * 7919 + i, fn);
      if (f) failures.push(f);
    } catch (err) {
      failures.push(`${describeCase(c)}: threw ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  return { cases: cases.length, failures };
}
