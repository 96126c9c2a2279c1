// tsm.kernels: stateless low-level kernels on typed arrays. Validated, no autograd.
import { checkBool, checkFloat32Array, checkInt, checkLength, checkNumber, checkSize, describe } from './check';
import { nativeAddon } from './native-api';

/** Arguments of kernels.sgemm: C = alpha * op(A) * op(B) + beta * C, row-major with BLAS semantics. */
export interface SgemmArgs {
  /** Use A^T (A stored k x m). Default false. */
  transA?: boolean;
  /** Use B^T (B stored n x k). Default false. */
  transB?: boolean;
  /** Rows of op(A) and of C. */
  m: number;
  /** Columns of op(B) and of C. */
  n: number;
  /** Columns of op(A), rows of op(B). */
  k: number;
  /** Default 1. */
  alpha?: number;
  /** Matrix A, row-major. */
  a: Float32Array;
  /** Leading dimension of A as stored (row stride). Default: its number of columns. */
  lda?: number;
  /** Matrix B, row-major. */
  b: Float32Array;
  /** Leading dimension of B as stored. Default: its number of columns. */
  ldb?: number;
  /** Default 0 (C is then not read, so NaN in C does not propagate). */
  beta?: number;
  /** Matrix C (m x n), row-major; overwritten with the result. */
  c: Float32Array;
  /** Leading dimension of C. Default n. */
  ldc?: number;
}

/**
 * A zeroed Float32Array of n elements whose first element sits on a 64-byte boundary (a cache line),
 * as the storage of large tensors does. The kernels take any Float32Array, but an array from
 * `new Float32Array(n)` of 128 KiB or more starts 16 bytes into a cache line, so each 16-float piece
 * of a row the GEMM loads or stores spans two lines. The array views a buffer 64 bytes longer than it
 * (use `.byteOffset` with `.buffer`). TypeError unless n is a number, RangeError unless it is an
 * integer in [0, 2^32].
 */
export function alignedFloat32Array(n: number): Float32Array {
  return nativeAddon().alignedFloat32Array(checkInt('kernels.alignedFloat32Array', 'n', n, 0, 2 ** 32));
}

/** Elements a row-major rows x cols matrix with leading dimension ld spans. */
function span(rows: number, cols: number, ld: number): number {
  return rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols;
}

/**
 * Row-major SGEMM with BLAS semantics: C = alpha * op(A) * op(B) + beta * C.
 * op(A) is m x k, op(B) is k x n, C is m x n.
 */
export function sgemm(args: SgemmArgs): void {
  const p = validateSgemm('kernels.sgemm', args);
  nativeAddon().sgemm(p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, p.c, p.ldc, false);
}

/** The slow, obvious SGEMM (double accumulation) with the same contract, for checking results. */
export function sgemmReference(args: SgemmArgs): void {
  const p = validateSgemm('kernels.sgemmReference', args);
  nativeAddon().sgemm(p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, p.c, p.ldc, true);
}

type SgemmParams = Required<SgemmArgs>;

function validateSgemm(op: string, args: SgemmArgs): SgemmParams {
  if (typeof args !== 'object' || args === null) throw new TypeError(`${op}: expected an options object, got ${describe(args)}`);
  const transA = args.transA === undefined ? false : checkBool(op, 'transA', args.transA);
  const transB = args.transB === undefined ? false : checkBool(op, 'transB', args.transB);
  const m = checkSize(op, 'm', args.m);
  const n = checkSize(op, 'n', args.n);
  const k = checkSize(op, 'k', args.k);
  const alpha = args.alpha === undefined ? 1 : checkNumber(op, 'alpha', args.alpha);
  const beta = args.beta === undefined ? 0 : checkNumber(op, 'beta', args.beta);
  const a = checkFloat32Array(op, 'a', args.a);
  const b = checkFloat32Array(op, 'b', args.b);
  const c = checkFloat32Array(op, 'c', args.c);
  const aCols = transA ? m : k;
  const bCols = transB ? k : n;
  const lda = args.lda === undefined ? Math.max(1, aCols) : checkInt(op, 'lda', args.lda, Math.max(1, aCols));
  const ldb = args.ldb === undefined ? Math.max(1, bCols) : checkInt(op, 'ldb', args.ldb, Math.max(1, bCols));
  const ldc = args.ldc === undefined ? Math.max(1, n) : checkInt(op, 'ldc', args.ldc, Math.max(1, n));
  if (m > 0 && n > 0 && k > 0) {
    const aRows = transA ? k : m;
    const bRows = transB ? n : k;
    checkLength(op, 'a', a, span(aRows, aCols, lda), `a ${aRows}x${aCols} matrix with lda=${lda}`);
    checkLength(op, 'b', b, span(bRows, bCols, ldb), `a ${bRows}x${bCols} matrix with ldb=${ldb}`);
  }
  checkLength(op, 'c', c, span(m, n, ldc), `a ${m}x${n} matrix with ldc=${ldc}`);
  return { transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc };
}

