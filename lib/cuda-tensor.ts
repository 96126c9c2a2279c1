// The CUDA side of the tensor ops: device storage for results and thin wrappers over the tensor
// kernels of the addon (cpp/binding/ops_cuda_tensor.cpp -> cuda/*.cu). lib/ops.ts validates the
// arguments (one code path for both devices) and calls these when its tensors are on a CUDA device;
// lib/gradients.ts calls the backward ones. Every kernel is queued on the device's stream and returns
// at once; reading a result back (dataSync, item, toArray) waits for it.
//
// Tensors here are contiguous and row-major like on the CPU; all data pointers are the start of a
// caching-allocator block (256-byte aligned), which the kernels' float4 paths rely on.
import { cudaCall, deviceAlloc, deviceUpload, selectDevice, type Device } from './device';
import type { CudaAttentionAddon } from './cuda-attention';
import { is16 } from './half';
import { fromData, fromDevice, sizeOf, type DType, type Shape, type Tensor, type TypedArray } from './tensor';

const f32bits = new Float32Array(1);
const u32bits = new Uint32Array(f32bits.buffer);

function handle(t: Tensor, op: string): object {
  return t._handle(op);
}

/**
 * Test switches. `poison`: fill every new device allocation with 0xFF bytes (NaN as float32, -1 as
 * int32) before a kernel writes it, so that elements a kernel forgets to write show up in tests
 * (the caching allocator would otherwise hand back old, plausible values).
 */
export const debug = { poison: false };

/** Bytes of one element: 2 for bfloat16/float16, 4 for float32/int32. */
export function elemBytes(dtype: DType): number {
  return is16(dtype) ? 2 : 4;
}

/** The tsm_cuda_dtype code of a floating dtype: 0 float32, 1 bfloat16, 2 float16. */
export const CUDA_DTYPE: Record<string, number> = { float32: 0, bfloat16: 1, float16: 2 };

/** An uninitialised tensor of `shape` on `device` (4-byte elements for float32/int32, 2-byte for bfloat16/float16). */
export function empty(shape: Shape, device: Device, dtype: DType = 'float32'): Tensor {
  const bytes = sizeOf(shape) * elemBytes(dtype);
  const h = deviceAlloc(device, bytes);
  if (debug.poison && bytes) cudaCall((a) => a.cudaMemset(h, 0xff));
  return fromDevice(h, bytes, shape, dtype, device);
}

/** A tensor of `shape` on `device` filled with `value` (as float32 or, for int32, truncated). */
export function full(shape: Shape, value: number, device: Device, dtype: DType = 'float32'): Tensor {
  if (is16(dtype)) {
    // A float32 fill, then the cast kernel (rounds the value as a cast would).
    const f = full(shape, value, device, 'float32');
    const h = cast(f, dtype);
    f.dispose();
    return h;
  }
  const t = empty(shape, device, dtype);
  let bits: number;
  if (dtype === 'int32') bits = (Math.trunc(value) | 0) >>> 0;
  else {
    f32bits[0] = value;
    bits = u32bits[0];
  }
  const n = t.size;
  if (n) cudaCall((a) => a.cudaFill32(handle(t, 'fill'), bits, n));
  return t;
}

/** A copy of host data on `device` (a Uint16Array holds the bits of `dtype`, bfloat16 or float16). */
export function upload(data: TypedArray | Uint16Array, shape: Shape, device: Device, dtype?: DType): Tensor {
  const t = empty(shape, device, data instanceof Uint16Array ? (dtype ?? 'bfloat16') : data instanceof Int32Array ? 'int32' : 'float32');
  deviceUpload(device, handle(t, 'to'), data);
  return t;
}

/** A CPU copy of a CUDA tensor. */
export function download(x: Tensor, op: string): Tensor {
  return fromData(x._download(op), x.shape, x.dtype);
}

/** A copy of x on `device`, CUDA to CUDA (through the host when the devices differ). */
export function copyTo(x: Tensor, device: Device, op: string): Tensor {
  if (x.device === device) return clone(x, op);
  return upload(x._download(op), x.shape, device, x.dtype);
}

/** A copy of x (same device, same dtype). */
export function clone(x: Tensor, op = 'clone'): Tensor {
  const y = empty(x.shape, x.device, x.dtype);
  const bytes = x.size * elemBytes(x.dtype);
  if (bytes) cudaCall((a) => a.cudaCopy(handle(y, op), 0, handle(x, op), 0, bytes));
  return y;
}

/**
 * x converted to `dtype`: float32 <-> int32 truncates toward zero as on the CPU; to and from
 * bfloat16/float16 through cuda/cast16.cu (round to nearest even; int32 goes through float32).
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (is16(dtype) || is16(x.dtype)) {
    if (x.dtype === 'int32' || dtype === 'int32') {
      const f = cast(x, 'float32');
      const r = cast(f, dtype);
      f.dispose();
      return r;
    }
    const y16 = empty(x.shape, x.device, dtype);
    const n16 = x.size;
    if (n16)
      cudaCall((a) => (a as unknown as CudaAmpAddon).cudaCastFloat(handle(y16, 'to'), CUDA_DTYPE[dtype], handle(x, 'to'),
        CUDA_DTYPE[x.dtype], n16));
    return y16;
  }
  const y = empty(x.shape, x.device, dtype);
  const n = x.size;
  if (n) cudaCall((a) => a.cudaCast(handle(y, 'to'), handle(x, 'to'), dtype === 'int32', n));
  return y;
}

/** The mixed-precision entry points of the addon (cpp/binding/ops_cuda_amp.cpp -> cuda/cast16.cu). */
export interface CudaAmpAddon {
  /** dst (n) = src (n) converted; dtypes 0 float32, 1 bfloat16, 2 float16. */
  cudaCastFloat(dst: object, dstDtype: number, src: object, srcDtype: number, n: number): void;
  /** grads[t] *= invScale in place; foundInf (one float) = 1 when any element was NaN or Inf (never cleared). */
  cudaAmpUnscale(grads: object[], sizes: number[], invScale: number, foundInf: object): void;
}

/** Runs fn on the addon's fused-attention entry points (lib/cuda-attention.ts), CUDA failures as TsmCudaError. */
export function cudaCallAttention<T>(fn: (a: CudaAttentionAddon) => T): T {
  return cudaCall((a) => fn(a as unknown as CudaAttentionAddon));
}

/** GradScaler: every grad (float32, one device) *= invScale in place; `foundInf` ([1] float32) set to 1 on NaN/Inf. */
export function ampUnscale(grads: Tensor[], invScale: number, foundInf: Tensor, op: string): void {
  if (!grads.length) return;
  selectDevice(foundInf.device);
  cudaCall((a) => (a as unknown as CudaAmpAddon).cudaAmpUnscale(grads.map((g) => handle(g, op)), grads.map((g) => g.size),
    invScale, handle(foundInf, op)));
}

// ---- elementwise ----

export function unaryForward(code: number, x: Tensor, op: string): Tensor {
  const y = empty(x.shape, x.device);
  const n = x.size;
  if (n) cudaCall((a) => a.cudaUnaryForward(code, handle(y, op), handle(x, op), n));
  return y;
}

/** dx = dy * f'(.) from the forward input x and output y (the kernel reads the one it needs). */
export function unaryBackward(code: number, x: Tensor, y: Tensor, dy: Tensor, op: string): Tensor {
  const dx = empty(x.shape, x.device);
  const n = x.size;
  if (n) cudaCall((a) => a.cudaUnaryBackward(code, handle(dx, op), handle(x, op), handle(y, op), handle(dy, op), n));
  return dx;
}

export function binarySame(code: number, a: Tensor, b: Tensor, op: string): Tensor {
  const y = empty(a.shape, a.device);
  const n = a.size;
  if (n) cudaCall((x) => x.cudaBinarySame(code, handle(y, op), handle(a, op), handle(b, op), n));
  return y;
}

export function binaryScalar(code: number, x: Tensor, s: number, reverse: boolean, op: string): Tensor {
  const y = empty(x.shape, x.device);
  const n = x.size;
  if (n) cudaCall((a) => a.cudaScalarForward(code, handle(y, op), handle(x, op), s, reverse, n));
  return y;
}

/** In place: x = x op s (gradient clipping). */
export function scalarInPlace(code: number, x: Tensor, s: number, op: string): void {
  selectDevice(x.device);
  const n = x.size;
  if (n) cudaCall((a) => a.cudaScalarForward(code, handle(x, op), handle(x, op), s, false, n));
}

export function binaryBroadcast(code: number, a: Tensor, b: Tensor, shape: number[], aStrides: number[],
                                bStrides: number[], op: string): Tensor {
  const y = empty(shape, a.device);
  if (y.size)
    cudaCall((x) => x.cudaBinaryForward(code, handle(y, op), handle(a, op), handle(b, op), shape, aStrides, bStrides));
  return y;
}

// ---- layout ----

/** A contiguous copy of src read through element strides from `offset` (permute, expand, slice). */
export function stridedCopy(src: Tensor, shape: Shape, strides: number[], offset: number, op: string): Tensor {
  const y = empty(shape, src.device, src.dtype);
  if (y.size)
    cudaCall((a) => a.cudaStridedCopy(handle(y, op), 0, null, handle(src, op), offset, strides, shape.slice()));
  return y;
}

/** A zero tensor of `shape` with src (contiguous) written at `offset` through `strides` (slice backward). */
export function scatterStrided(shape: Shape, src: Tensor, strides: number[], offset: number, op: string): Tensor {
  const y = full(shape, 0, src.device);
  if (src.size) {
    const s = src.shape.slice();
    cudaCall((a) => a.cudaStridedCopy(handle(y, op), offset, strides, handle(src, op), 0, contiguousStrides(s), s));
  }
  return y;
}

function contiguousStrides(shape: number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

// ---- reductions ----

/**
 * Sums x over `dims` (sorted, unique) keeping them as size 1, divided by `divisor` (1 for sum, the
 * count for mean). Adjacent reduced dims are one kernel pass; separate runs are reduced one after
 * another (the divisor applied in the last).
 */
export function sumKeep(x: Tensor, dims: number[], divisor: number, op: string): Tensor {
  const shape = x.shape.slice();
  const runs: [number, number][] = [];
  for (const d of dims) {
    const last = runs[runs.length - 1];
    if (last && last[1] === d - 1) last[1] = d;
    else runs.push([d, d]);
  }
  if (runs.length === 0) {
    // Nothing to reduce: a copy (divided), as a sum over one dim of size 1.
    const y = empty(shape, x.device);
    const n = x.size;
    if (n) cudaCall((a) => a.cudaSum(handle(y, op), handle(x, op), n, 1, 1, divisor));
    return y;
  }
  let cur = x;
  for (let r = runs.length - 1; r >= 0; r--) {
    const [s, e] = runs[r];
    const outer = sizeOf(shape.slice(0, s)), n = sizeOf(shape.slice(s, e + 1)), inner = sizeOf(shape.slice(e + 1));
    for (let d = s; d <= e; d++) shape[d] = 1;
    const y = empty(shape, x.device);
    const div = r === 0 ? divisor : 1;
    const src = cur;
    if (outer * inner > 0) cudaCall((a) => a.cudaSum(handle(y, op), handle(src, op), outer, n, inner, div));
    if (cur !== x) cur.dispose();
    cur = y;
  }
  return cur;
}

/** Values and int32 indices of the first max/min along the middle axis of (outer, n, inner). */
export function argReduce(x: Tensor, outer: number, n: number, inner: number, isMax: boolean, outShape: Shape,
                          wantValues: boolean, op: string): { values: Tensor | null; indices: Tensor } {
  const indices = empty(outShape, x.device, 'int32');
  const values = wantValues ? empty(outShape, x.device) : null;
  if (outer * inner > 0)
    cudaCall((a) => a.cudaArgReduce(values ? handle(values, op) : null, handle(indices, op), handle(x, op), outer, n,
      inner, isMax));
  return { values, indices };
}

/** dx (shape) = dy where indices point along the middle axis of (outer, n, inner), else 0. */
export function argReduceBackward(dy: Tensor, indices: Tensor, outer: number, n: number, inner: number, shape: Shape,
                                  op: string): Tensor {
  const dx = empty(shape, dy.device);
  if (dx.size)
    cudaCall((a) => a.cudaArgReduceBackward(handle(dx, op), handle(dy, op), handle(indices, op), outer, n, inner));
  return dx;
}

export function softmaxForward(x: Tensor, outer: number, n: number, inner: number, log: boolean, op: string): Tensor {
  const y = empty(x.shape, x.device);
  if (y.size) cudaCall((a) => a.cudaSoftmaxForward(handle(y, op), handle(x, op), outer, n, inner, log));
  return y;
}

export function softmaxBackward(y: Tensor, dy: Tensor, outer: number, n: number, inner: number, log: boolean,
                                op: string): Tensor {
  const dx = empty(y.shape, y.device);
  if (dx.size) cudaCall((a) => a.cudaSoftmaxBackward(handle(dx, op), handle(y, op), handle(dy, op), outer, n, inner, log));
  return dx;
}

// ---- GEMM (cuda/gemm.cu, float32 SIMT: exact float32 FMAs) ----

/** Arguments of gemmInto: row-major, lda/ldb/ldc and strides in elements; bias (n) or null. */
export interface GemmCall {
  transA: boolean;
  transB: boolean;
  batch: number;
  m: number;
  n: number;
  k: number;
  a: Tensor;
  lda: number;
  strideA: number;
  b: Tensor;
  ldb: number;
  strideB: number;
  c: Tensor;
  ldc: number;
  strideC: number;
  beta?: number;
  bias?: Tensor | null;
  /** tsm_cuda_gemm_type: 0 float32 SIMT (default), 2 bfloat16, 3 float16 (A and B of that dtype; C float32). */
  type?: number;
}

/** C = op(A) op(B) (+ beta C + bias) on the device; k == 0 gives bias or zeros (beta 0). */
export function gemmInto(g: GemmCall, op: string): void {
  if (g.batch === 0 || g.m === 0 || g.n === 0) return;
  const c = handle(g.c, op);
  cudaCall((x) => x.cudaGemmEx(g.type ?? 0, g.transA, g.transB, g.batch, g.m, g.n, g.k, 1, handle(g.a, op), g.lda, g.strideA,
    handle(g.b, op), g.ldb, g.strideB, g.beta ?? 0, c, 0, g.ldc, g.strideC, g.bias ? handle(g.bias, op) : null, 0));
}

// ---- nn: convolution, pooling, cross-entropy (cuda/conv.cu, pool.cu, cross_entropy.cu) ----

/** conv2d's sizes as the kernels take them: N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups. */
export type ConvSizes = readonly [number, number, number, number, number, number, number, number, number, number,
  number, number, number, number];

export function conv2dForward(x: Tensor, w: Tensor, b: Tensor | null, outShape: Shape, sizes: ConvSizes,
                              op: string): Tensor {
  const y = empty(outShape, x.device);
  if (y.size)
    cudaCall((a) => a.cudaConv2dForward(handle(y, op), handle(x, op), handle(w, op), b ? handle(b, op) : null, ...sizes));
  return y;
}

export function conv2dBackwardData(dy: Tensor, w: Tensor, xShape: Shape, sizes: ConvSizes, op: string): Tensor {
  const dx = empty(xShape, dy.device);
  if (dx.size) cudaCall((a) => a.cudaConv2dBackwardData(handle(dx, op), handle(dy, op), handle(w, op), ...sizes));
  return dx;
}

/** [dw, db] (db null without a bias). */
export function conv2dBackwardWeight(dy: Tensor, x: Tensor, wShape: Shape, bias: boolean, sizes: ConvSizes,
                                     op: string): [Tensor, Tensor | null] {
  const dw = empty(wShape, dy.device);
  const db = bias ? empty([wShape[0]], dy.device) : null;
  if (dw.size)
    cudaCall((a) => a.cudaConv2dBackwardWeight(handle(dw, op), db ? handle(db, op) : null, handle(dy, op), handle(x, op),
      ...sizes));
  return [dw, db];
}

/** Pooling arguments after N, C, H, W: KH, KW, sH, sW, pH, pW, (dH, dW for max), ceilMode, (countIncludePad for avg). */
export type PoolArgs = (number | boolean)[];

export function maxPool2dForward(x: Tensor, outShape: Shape, args: PoolArgs, op: string): { y: Tensor; indices: Tensor } {
  const y = empty(outShape, x.device);
  const indices = empty(outShape, x.device, 'int32');
  if (y.size) cudaCall((a) => a.cudaMaxPool2dForward(handle(y, op), handle(indices, op), handle(x, op), ...x.shape, ...args));
  return { y, indices };
}

export function maxPool2dBackward(dy: Tensor, indices: Tensor, xShape: Shape, args: PoolArgs, op: string): Tensor {
  const dx = empty(xShape, dy.device);
  if (dx.size)
    cudaCall((a) => a.cudaMaxPool2dBackward(handle(dx, op), handle(dy, op), handle(indices, op), ...xShape, ...args));
  return dx;
}

export function avgPool2dForward(x: Tensor, outShape: Shape, args: PoolArgs, op: string): Tensor {
  const y = empty(outShape, x.device);
  if (y.size) cudaCall((a) => a.cudaAvgPool2dForward(handle(y, op), handle(x, op), ...x.shape, ...args));
  return y;
}

export function avgPool2dBackward(dy: Tensor, xShape: Shape, args: PoolArgs, op: string): Tensor {
  const dx = empty(xShape, dy.device);
  if (dx.size) cudaCall((a) => a.cudaAvgPool2dBackward(handle(dx, op), handle(dy, op), ...xShape, ...args));
  return dx;
}

export const REDUCTION = { none: 0, mean: 1, sum: 2 } as const;

/**
 * Fused cross-entropy of logits (rows, c) and int32 targets (rows) on the device: per-row losses
 * (rows), the log-probabilities (rows, c) for the backward, and for 'mean'/'sum' the reduced loss
 * (shape []) and the count of rows not ignored (shape [1]).
 */
export function crossEntropyForward(logits: Tensor, targets: Tensor, rows: number, c: number, ignoreIndex: number,
                                    smoothing: number, reduction: keyof typeof REDUCTION, op: string):
  { losses: Tensor; logProbs: Tensor; out: Tensor | null; count: Tensor | null } {
  const dev = logits.device;
  const losses = empty([rows], dev), logProbs = empty([rows, c], dev);
  const out = reduction === 'none' ? null : empty([], dev);
  const count = reduction === 'none' ? null : empty([1], dev);
  cudaCall((a) => a.cudaCrossEntropyForward(handle(losses, op), handle(logProbs, op), out && handle(out, op),
    count && handle(count, op), handle(logits, op), handle(targets, op), rows, c, ignoreIndex, smoothing,
    REDUCTION[reduction]));
  return { losses, logProbs, out, count };
}

/** dlogits (rows, c) from the saved log-probabilities; dloss (rows) for 'none', else one element. */
export function crossEntropyBackward(logProbs: Tensor, targets: Tensor, dloss: Tensor, count: Tensor | null, rows: number,
                                     c: number, ignoreIndex: number, smoothing: number,
                                     reduction: keyof typeof REDUCTION, op: string): Tensor {
  const dx = empty([rows, c], logProbs.device);
  cudaCall((a) => a.cudaCrossEntropyBackward(handle(dx, op), handle(logProbs, op), handle(targets, op),
    handle(dloss, op), count && handle(count, op), rows, c, ignoreIndex, smoothing, REDUCTION[reduction]));
  return dx;
}

// ---- optimizers ----

export function sgdStep(params: Tensor[], grads: Tensor[], bufs: Tensor[] | null, lr: number, momentum: number,
                        dampening: number, weightDecay: number, nesterov: boolean, maximize: boolean,
                        firstStep: boolean, op: string): void {
  if (!params.length) return;
  selectDevice(params[0].device);
  cudaCall((a) => a.cudaSgdStep(params.map((p) => handle(p, op)), grads.map((g) => handle(g, op)),
    bufs ? bufs.map((b) => handle(b, op)) : null, params.map((p) => p.size), lr, momentum, dampening, weightDecay,
    nesterov, maximize, firstStep));
}

export function adamStep(params: Tensor[], grads: Tensor[], m: Tensor[], v: Tensor[], vmax: Tensor[] | null, lr: number,
                         beta1: number, beta2: number, eps: number, weightDecay: number, step: number, amsgrad: boolean,
                         decoupled: boolean, maximize: boolean, op: string): void {
  if (!params.length) return;
  selectDevice(params[0].device);
  cudaCall((a) => a.cudaAdamStep(params.map((p) => handle(p, op)), grads.map((g) => handle(g, op)),
    m.map((t) => handle(t, op)), v.map((t) => handle(t, op)), vmax ? vmax.map((t) => handle(t, op)) : null,
    params.map((p) => p.size), lr, beta1, beta2, eps, weightDecay, step, amsgrad, decoupled, maximize));
}
