// Tensor operations: validate in TypeScript (named errors), call one native entry point, record
// the op for autograd. Gradient rules live in gradients.ts.
//
// Devices: an op whose tensors are on a CUDA device runs the CUDA kernels of lib/cuda-tensor.ts after
// the same validation (the check is one property comparison, so the CPU path costs what it did). Ops
// without a CUDA kernel validate with checkTensor/checkFloat, which throw TsmCudaError
// "<op>: no CUDA kernel yet for this op; ..." for a CUDA tensor; ops with one use checkAny/checkFloatAny
// and check that all their tensors share a device.
import { backward as autogradBackward, needsRecord, record } from './autograd';
import { describe } from './check';
import * as cu from './cuda-tensor';
import * as cuSeq from './cuda-seq';
import { deviceMismatch, noCudaKernel } from './device';
import { TsmDisposedError } from './errors';
import { autocastMatmul, autocastLinear, autocastDtype } from './autocast';
import { decode16, encode16, is16 } from './half';
import { nativeAddon } from './native-api';
import {
  checkDType, checkDevice, checkShape, deferredF32, freshF32, fromData, keep, noGrad, sizeOf, Tensor, uninitializedF32,
  type DType, type Device, type NestedArray, type Shape, type TensorOptions, type TypedArray,
} from './tensor';

const N = () => nativeAddon();

// Op codes of the native unary/binary/reduce kernels (cpp/include/tensorsmith.h).
export const UNARY = {
  relu: 0, sigmoid: 1, tanh: 2, gelu: 3, gelu_tanh: 4, exp: 5, log: 6, sqrt: 7, abs: 8, neg: 9, silu: 10,
  square: 11, reciprocal: 12, sin: 13, cos: 14, rsqrt: 15,
} as const;
export type UnaryName = keyof typeof UNARY;
/** Codes whose derivative the native backward reads from y rather than x (tsm_unary_backward_reads_y). */
export const UNARY_BACKWARD_READS_Y: ReadonlySet<number> = new Set([
  UNARY.sigmoid, UNARY.tanh, UNARY.exp, UNARY.sqrt, UNARY.reciprocal, UNARY.rsqrt,
]);
export const BINARY = { add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, eq: 7, ne: 8, lt: 9, le: 10, gt: 11, ge: 12 } as const;
export type BinaryName = keyof typeof BINARY;
export const REDUCE = { sum: 0, mean: 1, max: 2, min: 3, prod: 4 } as const;

export const keepTensor = keep;
export const backward = autogradBackward;

// ---------------------------------------------------------------------------------------------
// helpers

/**
 * A live tensor on the CPU: TypeError for a non-tensor, TsmDisposedError after dispose(), TsmCudaError
 * "<op>: no CUDA kernel yet for this op; ..." for a tensor on a CUDA device. For ops without CUDA kernels.
 */
export function checkTensor(op: string, name: string, t: unknown): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor, got ${describe(t)}`);
  if (t.isDisposed) throw new TsmDisposedError(`${op}: ${name} (tensor #${t.id} of shape [${t.shape.join(', ')}]) was used after dispose()`);
  if (is16(t.dtype)) throw no16(op, name, t);
  if (t.device !== 'cpu') throw noCudaKernel(op);
  return t;
}

/** A live tensor on any device (ops that have CUDA kernels); TypeError for a bfloat16/float16 tensor. */
export function checkAny(op: string, name: string, t: unknown): Tensor {
  const x = checkAnyDtype(op, name, t);
  if (is16(x.dtype)) throw no16(op, name, x);
  return x;
}

/** A live tensor of any dtype on any device: the ops that 16-bit tensors support (casts, moves, views). */
export function checkAnyDtype(op: string, name: string, t: unknown): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor, got ${describe(t)}`);
  if (t.isDisposed) throw new TsmDisposedError(`${op}: ${name} (tensor #${t.id} of shape [${t.shape.join(', ')}]) was used after dispose()`);
  return t;
}

/** The error of an op given a 16-bit tensor: only casts, moves, views and reads take them. */
function no16(op: string, name: string, t: Tensor): TypeError {
  return new TypeError(`${op}: ${name} is a ${t.dtype} tensor and ${op} has no ${t.dtype} kernel (bfloat16/float16 ` +
    `tensors are storage: casts, device moves, views and reads); cast it to float32 first with .to('float32'), ` +
    `or use tsm.autocast for mixed-precision matmul/linear/attention`);
}

function checkFloat(op: string, name: string, t: unknown): Tensor {
  const x = checkTensor(op, name, t);
  if (x.dtype !== 'float32') throw new TypeError(`${op}: ${name} must be a float32 tensor, got ${x.dtype}`);
  return x;
}

/** A live float32 tensor on any device. */
export function checkFloatAny(op: string, name: string, t: unknown): Tensor {
  const x = checkAny(op, name, t);
  if (x.dtype !== 'float32') throw new TypeError(`${op}: ${name} must be a float32 tensor, got ${x.dtype}`);
  return x;
}

/** TypeError naming both devices unless a and b are on the same device. */
export function sameDevice(op: string, a: Tensor, aName: string, b: Tensor, bName: string): void {
  if (a.device !== b.device) throw deviceMismatch(op, a.device, aName, b.device, bName);
}

/** Normalises a possibly negative `dim` for an `ndim`-d tensor to [0, ndim); TypeError for a non-integer, RangeError when out of range. */
export function normDim(op: string, dim: unknown, ndim: number, name = 'dim'): number {
  if (typeof dim !== 'number' || !Number.isInteger(dim))
    throw new TypeError(`${op}: ${name} must be an integer, got ${describe(dim)}`);
  const lo = ndim === 0 ? -1 : -ndim;
  const hi = ndim === 0 ? 0 : ndim - 1;
  if (dim < lo || dim > hi) throw new RangeError(`${op}: ${name} must be in [${lo}, ${hi}] for a ${ndim}-d tensor, got ${dim}`);
  return dim < 0 ? dim + Math.max(ndim, 1) : dim;
}

export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw new RangeError(`${op}: shapes [${a.join(', ')}] and [${b.join(', ')}] cannot be broadcast together (dim ${i}: ${da} vs ${db})`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Element strides to read `shape` as if broadcast to `outShape` (0 on broadcast dims). */
function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const st = stridesOf(shape);
  const out = new Array<number>(outShape.length).fill(0);
  const off = outShape.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 ? 0 : st[i];
  return out;
}

function sameShape(a: Shape, b: Shape): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A float32 tensor to be fully overwritten by a kernel (its initial contents are unspecified). */
export function empty32(shape: Shape): Tensor {
  return uninitializedF32(shape);
}

const ZERO = new Float32Array(1);

/** Copies src (read with the given element strides and offset) into a new contiguous tensor. */
function stridedCopy(src: Tensor, shape: Shape, strides: number[], offset = 0): Tensor {
  if (src.device !== 'cpu') return cu.stridedCopy(src, shape, strides, offset, 'copy');
  const n = sizeOf(shape);
  if (src.dtype === 'float32') {
    const out = freshF32(n);
    if (n > 0) {
      const data = src._data as Float32Array;
      N().binaryForward(BINARY.add, out, offset ? data.subarray(offset) : data, ZERO, shape.slice(), strides,
        new Array(shape.length).fill(0));
    }
    return fromData(out, shape);
  }
  const data = src._data as Int32Array;
  const out = new Int32Array(n);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let o = offset;
    for (let d = 0; d < shape.length; d++) o += idx[d] * strides[d];
    out[i] = data[o];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return fromData(out, shape);
}

// ---------------------------------------------------------------------------------------------
// creation

function flattenNested(op: string, data: NestedArray, shape: number[], out: number[], depth: number): void {
  if (depth === 0) {
    // The shape comes from the first element at each depth; every other element must agree.
    for (let d: NestedArray = data; Array.isArray(d); d = d[0]) {
      shape.push(d.length);
      if (d.length === 0) break;
    }
  }
  if (Array.isArray(data)) {
    if (depth >= shape.length || shape[depth] !== data.length)
      throw new RangeError(`${op}: ragged nested array: expected ${depth >= shape.length ? 'a number' : `length ${shape[depth]}`} at depth ${depth}, got an array of length ${data.length}`);
    for (const x of data) flattenNested(op, x, shape, out, depth + 1);
  } else {
    if (depth !== shape.length) throw new RangeError(`${op}: ragged nested array: expected an array of length ${shape[depth]} at depth ${depth}, got ${describe(data)}`);
    if (typeof data === 'boolean') out.push(data ? 1 : 0);
    else if (typeof data === 'number') out.push(data);
    else throw new TypeError(`${op}: data must hold numbers, got ${describe(data)}`);
  }
}

/**
 * Creates a tensor from nested arrays, a typed array (with `opts.shape`) or a number. Nested arrays
 * and numbers give float32 unless `opts.dtype`; an Int32Array gives int32. The data is copied.
 * Throws RangeError for ragged nested arrays or a shape that does not match the data length.
 * @example
 * ```ts
 * const a = tsm.tensor([[1, 2, 3], [4, 5, 6]]);          // float32, shape [2, 3]
 * const b = tsm.tensor(new Int32Array([0, 2]), { shape: [2] }); // int32
 * ```
 */
export function tensor(data: NestedArray | TypedArray | Float64Array, opts: TensorOptions & { shape?: number[] } = {}): Tensor {
  const op = 'tensor';
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  const device = checkDevice(op, opts.device);
  let dtype: DType | undefined = opts.dtype === undefined ? undefined : checkDType(op, opts.dtype);
  let flat: ArrayLike<number>;
  let shape: number[];
  if (ArrayBuffer.isView(data)) {
    if (!(data instanceof Float32Array || data instanceof Int32Array || data instanceof Float64Array))
      throw new TypeError(`${op}: typed array data must be a Float32Array, Int32Array or Float64Array, got ${describe(data)}`);
    flat = data;
    shape = opts.shape ? checkShape(op, opts.shape) : [data.length];
    if (sizeOf(shape) !== data.length)
      throw new RangeError(`${op}: shape [${shape.join(', ')}] needs ${sizeOf(shape)} elements, data has ${data.length}`);
    dtype ??= data instanceof Int32Array ? 'int32' : 'float32';
  } else {
    const out: number[] = [];
    shape = [];
    flattenNested(op, data as NestedArray, shape, out, 0);
    flat = out;
    if (opts.shape) {
      const s = checkShape(op, opts.shape);
      if (sizeOf(s) !== out.length) throw new RangeError(`${op}: shape [${s.join(', ')}] needs ${sizeOf(s)} elements, data has ${out.length}`);
      shape = s;
    }
    dtype ??= 'float32';
  }
  const arr = dtype === 'int32' ? Int32Array.from(flat, (v) => Math.trunc(v))
    : is16(dtype) ? encode16(dtype, flat instanceof Float32Array ? flat : Float32Array.from(flat)) : copyF32(flat);
  const t = device === 'cpu' ? fromData(arr, shape, dtype) : cu.upload(arr, shape, device, dtype);
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

/** A float32 copy of `flat` (in a 64-byte aligned array when large, see freshF32). */
function copyF32(flat: ArrayLike<number>): Float32Array {
  const out = freshF32(flat.length);
  out.set(flat);
  return out;
}

function filled(op: string, shape: unknown, value: number, opts: TensorOptions): Tensor {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  const device = checkDevice(op, opts.device);
  const s = checkShape(op, shape);
  const dtype = opts.dtype === undefined ? 'float32' : checkDType(op, opts.dtype);
  if (device !== 'cpu') {
    const d = cu.full(s, value, device, dtype);
    if (opts.requiresGrad) d.requiresGrad_(true);
    return d;
  }
  const n = sizeOf(s);
  if (is16(dtype)) {
    const bits = new Uint16Array(n);
    if (!Object.is(value, 0)) bits.fill(encode16(dtype, [value])[0]);
    const h = fromData(bits, s, dtype);
    if (opts.requiresGrad) h.requiresGrad_(true);
    return h;
  }
  const arr = dtype === 'int32' ? new Int32Array(n) : freshF32(n);
  if (value !== 0) arr.fill(value);
  const t = fromData(arr, s);
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

/** A tensor of zeros (float32 unless `opts.dtype` says otherwise). TypeError/RangeError for a bad shape or dtype. */
export function zeros(shape: number[], opts: TensorOptions = {}): Tensor { return filled('zeros', shape, 0, opts); }
/** A tensor of ones (float32 unless `opts.dtype` says otherwise). */
export function ones(shape: number[], opts: TensorOptions = {}): Tensor { return filled('ones', shape, 1, opts); }
/** A tensor of the given shape; on the CPU its contents are zeros (do not rely on it). */
export function empty(shape: number[], opts: TensorOptions = {}): Tensor { return filled('empty', shape, 0, opts); }
/** A tensor filled with `value` (float32 unless `opts.dtype` says otherwise); TypeError when value is not a number. */
export function full(shape: number[], value: number, opts: TensorOptions = {}): Tensor {
  if (typeof value !== 'number') throw new TypeError(`full: value must be a number, got ${describe(value)}`);
  return filled('full', shape, value, opts);
}
/** Zeros with the shape, dtype and device of `t`. */
export function zerosLike(t: Tensor): Tensor { return filled('zerosLike', t.shape.slice(), 0, { dtype: t.dtype, device: t.device }); }
/** Ones with the shape, dtype and device of `t`. */
export function onesLike(t: Tensor): Tensor { return filled('onesLike', t.shape.slice(), 1, { dtype: t.dtype, device: t.device }); }

/** A 16-bit creation on the CPU: made as float32, then cast (rounded to nearest even). */
function via32(opts: TensorOptions, make: (o: TensorOptions) => Tensor): Tensor {
  const f = make({ ...opts, dtype: 'float32', requiresGrad: false });
  const h = to(f, opts.dtype as DType);
  f.dispose();
  if (opts.requiresGrad) h.requiresGrad_(true);
  return h;
}

/** Host-made creations (arange, eye, rand...) on a CUDA device: made on the CPU, then uploaded. */
function onDevice(op: string, opts: TensorOptions, make: (cpuOpts: TensorOptions) => Tensor): Tensor {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  const device = checkDevice(op, opts.device);
  if (device === 'cpu') return make(opts);
  const t = make({ ...opts, device: 'cpu', requiresGrad: false });
  const d = cu.upload(t._data, t.shape, device, t.dtype);
  t.dispose();
  if (opts.requiresGrad) d.requiresGrad_(true);
  return d;
}

/**
 * Values start, start+step, ... below `end` (1-d); `arange(n)` gives 0..n-1. int32 when start and
 * step are integers, else float32 (unless `opts.dtype`). RangeError when step is 0.
 */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (opts?.device !== undefined && opts.device !== 'cpu') return onDevice('arange', opts, (o) => arange(start, end, step, o));
  if (is16(opts?.dtype ?? '')) return via32(opts, (o) => arange(start, end, step, o));
  if (end === undefined) [start, end] = [0, start];
  for (const [n, v] of [['start', start], ['end', end], ['step', step]] as const)
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`arange: ${n} must be a finite number, got ${describe(v)}`);
  if (step === 0) throw new RangeError('arange: step must not be 0');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const dtype = opts.dtype ?? (Number.isInteger(start) && Number.isInteger(step) ? 'int32' : 'float32');
  const t = filled('arange', [n], 0, { ...opts, dtype });
  const d = t._data;
  for (let i = 0; i < n; i++) d[i] = start + i * step;
  return t;
}

/** An (n, m) identity matrix (m defaults to n). */
export function eye(n: number, m: number = n, opts: TensorOptions = {}): Tensor {
  if (opts?.device !== undefined && opts.device !== 'cpu') return onDevice('eye', opts, (o) => eye(n, m, o));
  if (is16(opts?.dtype ?? '')) return via32(opts, (o) => eye(n, m, o));
  const t = filled('eye', [n, m], 0, opts);
  const d = t._data;
  for (let i = 0; i < Math.min(n, m); i++) d[i * m + i] = 1;
  return t;
}

// ---- RNG: counter-based (Philox in native code): same seed, same numbers. ----
const rngState = { seed: 0x5eed, offset: 0 };

/** Seeds the generator: the same seed gives the same sequence of random tensors. */
export function manualSeed(seed: number): void {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)
    throw new RangeError(`manualSeed: seed must be a non-negative safe integer, got ${describe(seed)}`);
  rngState.seed = seed;
  rngState.offset = 0;
}

/** @internal The generator's position (seed and counter), e.g. to continue it in a worker thread. */
export function getRngState(): { seed: number; offset: number } {
  return { seed: rngState.seed, offset: rngState.offset };
}

/** @internal Puts the generator at a position returned by {@link getRngState}. */
export function setRngState(state: { seed: number; offset: number }): void {
  rngState.seed = state.seed;
  rngState.offset = state.offset;
}

/** @internal Reserves counters for n random numbers; returns [seed, offset]. */
export function nextRng(n: number): [number, number] {
  const offset = rngState.offset;
  rngState.offset += Math.ceil(n / 4) + 1;
  return [rngState.seed, offset];
}

/**
 * float32 uniform samples in [low, high) (default [0, 1)) from the seeded generator ({@link manualSeed}).
 * On a CUDA device the same numbers are drawn on the CPU and uploaded.
 */
export function rand(shape: number[], opts: TensorOptions & { low?: number; high?: number } = {}): Tensor {
  if (opts?.device !== undefined && opts.device !== 'cpu') return onDevice('rand', opts, (o) => rand(shape, o));
  if (is16(opts?.dtype ?? '')) return via32(opts, (o) => rand(shape, o));
  const t = filled('rand', shape, 0, { ...opts, dtype: 'float32', requiresGrad: false });
  const [seed, off] = nextRng(t.size);
  if (t.size) N().rngUniform(t._data as Float32Array, seed, off, opts.low ?? 0, opts.high ?? 1);
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

/** float32 normal samples N(mean, std^2) (default N(0, 1)) from the seeded generator (uploaded for a CUDA device). */
export function randn(shape: number[], opts: TensorOptions & { mean?: number; std?: number } = {}): Tensor {
  if (opts?.device !== undefined && opts.device !== 'cpu') return onDevice('randn', opts, (o) => randn(shape, o));
  if (is16(opts?.dtype ?? '')) return via32(opts, (o) => randn(shape, o));
  const t = filled('randn', shape, 0, { ...opts, dtype: 'float32', requiresGrad: false });
  const [seed, off] = nextRng(t.size);
  if (t.size) N().rngNormal(t._data as Float32Array, seed, off, opts.mean ?? 0, opts.std ?? 1);
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

/** int32 uniform integers in [low, high); RangeError unless low < high are integers. */
export function randint(low: number, high: number, shape: number[]): Tensor {
  if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high) || high <= low)
    throw new RangeError(`randint: need integers low < high, got ${low} and ${high}`);
  const u = rand(shape);
  const d = u._data as Float32Array;
  const out = new Int32Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = Math.min(high - 1, low + Math.floor(d[i] * (high - low)));
  u.dispose();
  return fromData(out, u.shape);
}

/** A random permutation of 0..n-1 (int32), from the seeded generator. */
export function randperm(n: number): Tensor {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new RangeError(`randperm: n must be a non-negative integer, got ${describe(n)}`);
  const u = rand([n]);
  const d = u._data as Float32Array;
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(d[i] * (i + 1)));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  u.dispose();
  return fromData(Int32Array.from(idx), [n]);
}

// ---------------------------------------------------------------------------------------------
// conversion

/** A copy with its own storage; differentiable for float32. */
export function clone(x: Tensor): Tensor {
  checkAnyDtype('clone', 'input', x);
  let out: Tensor;
  if (x.device !== 'cpu') out = cu.clone(x);
  else if (x.dtype === 'float32' && x._data.length === sizeOf(x.shape)) {
    // From the buffer pool: a fresh array of a large gradient (backward clones dy for each input
    // of an add) costs a zero fill and page faults, 31 of 170 ms in a Transformer layer's step.
    out = empty32(x.shape);
    out._data.set(x._data);
  } else out = fromData(x._data.slice(), x.shape, x.dtype);
  return x.dtype === 'float32' ? record(out, 'identity', [x]) : out;
}

/**
 * Moves to a device (`'cpu'`, `'cuda'` = the current CUDA device, `'cuda:N'`) or converts to a dtype
 * (`'float32'`/`'int32'`, truncating toward zero); returns `x` itself when nothing changes. A move is
 * a copy and differentiable (the gradient moves back). TsmCudaError when the CUDA device is not
 * available (the message says why); TypeError for an unknown device or dtype.
 * @example
 * ```ts
 * const g = tsm.randn([64, 10]).to('cuda');   // on the GPU
 * const back = g.relu().cpu();                 // and back
 * ```
 */
export function to(x: Tensor, target: Device | DType): Tensor {
  checkAnyDtype('to', 'input', x);
  if (target === 'cpu' || (typeof target === 'string' && target.startsWith('cuda'))) {
    const device = checkDevice('to', target);
    if (device === x.device) return x;
    const y = device === 'cpu' ? cu.download(x, 'to') : x.device === 'cpu' ? cu.upload(x._data, x.shape, device, x.dtype) : cu.copyTo(x, device, 'to');
    return x.dtype === 'float32' ? record(y, 'toDevice', [x], { device: x.device }) : y;
  }
  const dtype = checkDType('to', target);
  if (dtype === x.dtype) return x;
  if (x.device !== 'cpu') return cu.cast(x, dtype);
  // 16-bit values go through float32 (exact); float32 -> 16 bits rounds to nearest even.
  const src = is16(x.dtype) ? decode16(x.dtype, x._bits('to')) : x._data;
  if (is16(dtype)) return fromData(encode16(dtype, src), x.shape, dtype);
  if (dtype === 'int32') return fromData(Int32Array.from(src, (v) => Math.trunc(v)), x.shape);
  return fromData(src === x._data ? Float32Array.from(src) : src, x.shape);
}

// ---------------------------------------------------------------------------------------------
// elementwise

function unary(name: UnaryName, x: Tensor): Tensor {
  checkFloatAny(name, 'input', x);
  if (x.device !== 'cpu') {
    const yc = cu.unaryForward(UNARY[name], x, name);
    return record(yc, 'unary', [x], { code: UNARY[name], x, y: yc });
  }
  // (Without a graph, e.g. under noGrad, a deferred convolution's output is an op's output too.)
  if (name === 'relu' && (x._node !== null || x._deferredInfo('conv2d') !== null) && !x._storageShared() &&
      x.dtype === 'float32' && x.size) {
    // The ReLU of an op's output is computed when something first reads it: a max pooling reads
    // through it instead (conv -> relu -> pool in one pass over the convolution's output, see
    // F.maxPool2d), and then, unless another op reads it, it is never written out. Only an op's
    // output holding its storage alone is deferred from: nothing writes into it afterwards (a view
    // of a parameter is a non-leaf too, but the optimizer updates the storage it shares).
    const y = deferredF32(x.shape, 'relu', x, (out, src) => N().unaryForward(UNARY.relu, out, src!));
    return record(y, 'unary', [x], { code: UNARY.relu, x, y });
  }
  const y = empty32(x.shape);
  if (x.size) N().unaryForward(UNARY[name], y._data as Float32Array, x._data as Float32Array);
  return needsRecord(x) ? record(y, 'unary', [x], { code: UNARY[name], x, y }) : y;
}

/** Element-wise -x (float32; TypeError otherwise). The unary ops below share this contract. */
export const neg = (x: Tensor) => unary('neg', x);
/** Element-wise e^x. */
export const exp = (x: Tensor) => unary('exp', x);
/** Element-wise natural logarithm. */
export const log = (x: Tensor) => unary('log', x);
/** Element-wise square root. */
export const sqrt = (x: Tensor) => unary('sqrt', x);
/** Element-wise |x|. */
export const abs = (x: Tensor) => unary('abs', x);
/** Element-wise x^2. */
export const square = (x: Tensor) => unary('square', x);
/** Element-wise max(x, 0). */
export const relu = (x: Tensor) => unary('relu', x);
/** Element-wise 1 / (1 + e^-x). */
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
/** Element-wise hyperbolic tangent. */
export const tanh = (x: Tensor) => unary('tanh', x);
/** Element-wise x * sigmoid(x) (SiLU / swish). */
export const silu = (x: Tensor) => unary('silu', x);
/** Element-wise sine. */
export const sin = (x: Tensor) => unary('sin', x);
/** Element-wise cosine. */
export const cos = (x: Tensor) => unary('cos', x);
/** Element-wise 1 / sqrt(x). */
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
/** Element-wise 1 / x. */
export const reciprocal = (x: Tensor) => unary('reciprocal', x);
/** Gaussian error linear unit x * Phi(x); `'tanh'` uses the tanh approximation. RangeError for another `approximate`. */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  if (approximate !== 'none' && approximate !== 'tanh')
    throw new RangeError(`gelu: approximate must be 'none' or 'tanh', got ${describe(approximate)}`);
  return unary(approximate === 'tanh' ? 'gelu_tanh' : 'gelu', x);
}

const DIFFERENTIABLE_BINARY = new Set<BinaryName>(['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum']);

function binary(name: BinaryName, a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof a === 'number' && typeof b === 'number')
    throw new TypeError(`${name}: at least one operand must be a Tensor`);
  if (typeof b === 'number' || typeof a === 'number') {
    const reverse = typeof a === 'number';
    const x = checkFloatAny(name, reverse ? 'other' : 'input', reverse ? b : a);
    const s = (reverse ? a : b) as number;
    if (typeof s !== 'number') throw new TypeError(`${name}: other must be a Tensor or a number, got ${describe(s)}`);
    let y: Tensor;
    if (x.device !== 'cpu') y = cu.binaryScalar(BINARY[name], x, s, reverse, name);
    else {
      y = empty32(x.shape);
      if (x.size) N().scalarForward(BINARY[name], y._data as Float32Array, x._data as Float32Array, s, reverse);
    }
    if (!DIFFERENTIABLE_BINARY.has(name) || !needsRecord(x)) return y;
    return record(y, 'binaryScalar', [x], { code: BINARY[name], name, x, y, s, reverse });
  }
  checkFloatAny(name, 'input', a);
  checkFloatAny(name, 'other', b);
  if (a.device !== 'cpu' || b.device !== 'cpu') return binaryCuda(name, a, b);
  if (sameShape(a.shape, b.shape)) {
    const y = empty32(a.shape);
    if (y.size) N().binarySame(BINARY[name], y._data as Float32Array, a._data as Float32Array, b._data as Float32Array);
    if (!DIFFERENTIABLE_BINARY.has(name) || !needsRecord(a, b)) return y;
    return record(y, 'binary', [a, b], { name, a, b, y });
  }
  const shape = broadcastShapes(name, a.shape, b.shape);
  const y = empty32(shape);
  if (y.size)
    N().binaryForward(BINARY[name], y._data as Float32Array, a._data as Float32Array, b._data as Float32Array, shape,
      broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
  if (!DIFFERENTIABLE_BINARY.has(name)) return y;
  return record(y, 'binary', [a, b], { name, a, b, y });
}

function binaryCuda(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  sameDevice(name, a, 'a', b, 'b');
  let y: Tensor;
  if (sameShape(a.shape, b.shape)) y = cu.binarySame(BINARY[name], a, b, name);
  else {
    const shape = broadcastShapes(name, a.shape, b.shape);
    y = cu.binaryBroadcast(BINARY[name], a, b, shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape), name);
  }
  if (!DIFFERENTIABLE_BINARY.has(name)) return y;
  return record(y, 'binary', [a, b], { name, a, b, y });
}

/**
 * a + b with NumPy broadcasting; either side may be a number (not both). float32 tensors only
 * (TypeError otherwise); RangeError for shapes that do not broadcast. The binary ops below share this.
 */
export const add = (a: Tensor | number, b: Tensor | number) => binary('add', a, b);
/** a - b, broadcasting. */
export const sub = (a: Tensor | number, b: Tensor | number) => binary('sub', a, b);
/** a * b element-wise, broadcasting. */
export const mul = (a: Tensor | number, b: Tensor | number) => binary('mul', a, b);
/** a / b element-wise, broadcasting. */
export const div = (a: Tensor | number, b: Tensor | number) => binary('div', a, b);
/** a ** b element-wise, broadcasting. */
export const pow = (a: Tensor | number, b: Tensor | number) => binary('pow', a, b);
/** Element-wise max(a, b), broadcasting. */
export const maximum = (a: Tensor | number, b: Tensor | number) => binary('maximum', a, b);
/** Element-wise min(a, b), broadcasting. */
export const minimum = (a: Tensor | number, b: Tensor | number) => binary('minimum', a, b);
/** a == b as float32 1/0, broadcasting; not differentiable (as the other comparisons). */
export const eq = (a: Tensor | number, b: Tensor | number) => binary('eq', a, b);
/** a != b as float32 1/0, broadcasting. */
export const ne = (a: Tensor | number, b: Tensor | number) => binary('ne', a, b);
/** a < b as float32 1/0, broadcasting. */
export const lt = (a: Tensor | number, b: Tensor | number) => binary('lt', a, b);
/** a <= b as float32 1/0, broadcasting. */
export const le = (a: Tensor | number, b: Tensor | number) => binary('le', a, b);
/** a > b as float32 1/0, broadcasting. */
export const gt = (a: Tensor | number, b: Tensor | number) => binary('gt', a, b);
/** a >= b as float32 1/0, broadcasting. */
export const ge = (a: Tensor | number, b: Tensor | number) => binary('ge', a, b);

/** Clamps float32 values to [min, max]; a null/undefined bound is open. */
export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  checkFloatAny('clamp', 'input', x);
  if (min != null && typeof min !== 'number') throw new TypeError(`clamp: min must be a number, got ${describe(min)}`);
  if (max != null && typeof max !== 'number') throw new TypeError(`clamp: max must be a number, got ${describe(max)}`);
  if (x.device !== 'cpu') {
    // maximum/minimum with a scalar: the same values (NaN kept) and the same gradient (dy where
    // min <= x <= max, bounds included) as the CPU's fused clamp.
    if (min == null && max == null) return clone(x);
    if (max == null) return maximum(x, min as number);
    if (min == null) return minimum(x, max);
    const lo = maximum(x, min);
    const y = minimum(lo, max);
    if (!y.requiresGrad) lo.dispose();
    return y;
  }
  const lo = min ?? -Infinity;
  const hi = max ?? Infinity;
  const src = x._data as Float32Array;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    out[i] = v < lo ? lo : v > hi ? hi : v;
  }
  return record(fromData(out, x.shape), 'clamp', [x], { x, lo, hi });
}

/** cond ? a : b, broadcasting all three. */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  checkAny('where', 'condition', cond);
  const onDevice = (t: Tensor | number) => t instanceof Tensor && !t.isDisposed && t.device !== 'cpu';
  if (onDevice(cond) || onDevice(a) || onDevice(b)) return whereCuda(cond, a, b);
  checkTensor('where', 'condition', cond);
  const ta = typeof a === 'number' ? full([], a) : checkFloat('where', 'input', a);
  const tb = typeof b === 'number' ? full([], b) : checkFloat('where', 'other', b);
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, ta.shape), tb.shape);
  const cs = broadcastStrides(cond.shape, shape), as = broadcastStrides(ta.shape, shape), bs = broadcastStrides(tb.shape, shape);
  const n = sizeOf(shape);
  const out = new Float32Array(n);
  const cd = cond._data, ad = ta._data, bd = tb._data;
  const idx = new Array<number>(shape.length).fill(0);
  let co = 0, ao = 0, bo = 0;
  for (let i = 0; i < n; i++) {
    out[i] = cd[co] !== 0 ? ad[ao] : bd[bo];
    for (let d = shape.length - 1; d >= 0; d--) {
      co += cs[d]; ao += as[d]; bo += bs[d];
      if (++idx[d] < shape[d]) break;
      co -= cs[d] * shape[d]; ao -= as[d] * shape[d]; bo -= bs[d] * shape[d];
      idx[d] = 0;
    }
  }
  return record(fromData(out, shape), 'where', [typeof a === 'number' ? null : ta, typeof b === 'number' ? null : tb], { cond });
}

/** where on a CUDA device (cuda/index.cu): the same validation, broadcasting and gradient node. */
function whereCuda(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const op = 'where';
  const dev = cond.device;
  // The kernel reads 4-byte conditions: float32 (compared as a float) or int32.
  if (cond.dtype !== 'float32' && cond.dtype !== 'int32')
    throw new TypeError(`${op}: a CUDA condition must be float32 or int32, got ${cond.dtype}`);
  if (typeof a !== 'number') sameDevice(op, cond, 'condition', checkFloatAny(op, 'input', a), 'input');
  if (typeof b !== 'number') sameDevice(op, cond, 'condition', checkFloatAny(op, 'other', b), 'other');
  const ta = typeof a === 'number' ? cu.full([], a, dev) : a;
  const tb = typeof b === 'number' ? cu.full([], b, dev) : b;
  const shape = broadcastShapes(op, broadcastShapes(op, cond.shape, ta.shape), tb.shape);
  const y = cuSeq.where(cond, ta, tb, shape, broadcastStrides(cond.shape, shape), broadcastStrides(ta.shape, shape),
    broadcastStrides(tb.shape, shape), op);
  if (typeof a === 'number') ta.dispose();
  if (typeof b === 'number') tb.dispose();
  return record(y, 'where', [typeof a === 'number' ? null : ta, typeof b === 'number' ? null : tb], { cond });
}

// ---------------------------------------------------------------------------------------------
// reductions

function normDims(op: string, dim: number | number[] | null | undefined, ndim: number): number[] {
  if (dim === undefined || dim === null) return Array.from({ length: ndim }, (_, i) => i);
  const dims = (Array.isArray(dim) ? dim : [dim]).map((d) => normDim(op, d, ndim));
  if (new Set(dims).size !== dims.length) throw new RangeError(`${op}: dim [${dims.join(', ')}] repeats a dimension`);
  return dims.sort((p, q) => p - q);
}

function reducedShape(shape: Shape, dims: number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!dims.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/** Sums x over dims (sorted, unique) keeping them as size 1; native, no autograd. */
function sumKeep(x: Tensor, dims: number[]): Tensor {
  if (x.device !== 'cpu') return cu.sumKeep(x, dims, 1, 'sum');
  const outShape = x.shape.map((d, i) => (dims.includes(i) ? 1 : d));
  const out = empty32(outShape);
  if (x.size === 0) {
    (out._data as Float32Array).fill(0);
    return out;
  }
  N().sumToShape(out._data as Float32Array, x._data as Float32Array, x.shape.slice(), outShape);
  return out;
}

/** Sums a broadcast gradient back to `shape` (the broadcasting backward). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const padded = [...new Array(lead).fill(1), ...shape];
  const dims: number[] = [];
  padded.forEach((d, i) => {
    if (d === 1 && g.shape[i] !== 1) dims.push(i);
  });
  const s = dims.length ? sumKeep(g, dims) : g._view(g.shape);
  const out = s._view(shape);
  if (s !== g) s.dispose();
  return out;
}

/** Sum over `dim` (a dim, a list of dims, or all when omitted/null); `keepdim` keeps reduced dims as size 1. float32 only. */
export function sum(x: Tensor, dim?: number | number[] | null, keepdim = false): Tensor {
  checkFloatAny('sum', 'input', x);
  const dims = normDims('sum', dim, x.ndim);
  const k = sumKeep(x, dims);
  const y = k._view(reducedShape(x.shape, dims, keepdim));
  k.dispose();
  return record(y, 'sum', [x], { shape: x.shape, dims });
}

/** Mean over `dim` (a dim, a list of dims, or all when omitted/null); NaN for an empty reduction. float32 only. */
export function mean(x: Tensor, dim?: number | number[] | null, keepdim = false): Tensor {
  checkFloatAny('mean', 'input', x);
  const dims = normDims('mean', dim, x.ndim);
  const count = dims.reduce((c, d) => c * x.shape[d], 1);
  let k: Tensor;
  if (x.device !== 'cpu') {
    k = cu.sumKeep(x, dims, count, 'mean'); // sum / 0 = NaN for an empty reduction, as below
  } else {
    k = sumKeep(x, dims);
    const kd = k._data as Float32Array;
    for (let i = 0; i < kd.length; i++) kd[i] = count ? kd[i] / count : NaN;
  }
  const y = k._view(reducedShape(x.shape, dims, keepdim));
  k.dispose();
  return record(y, 'mean', [x], { shape: x.shape, dims, count });
}

function splitAt(shape: Shape, dim: number): [number, number, number] {
  return [sizeOf(shape.slice(0, dim)), shape[dim], sizeOf(shape.slice(dim + 1))];
}

function argReduce(op: string, x: Tensor, dim: number | null | undefined, keepdim: boolean, isMax: boolean): Tensor {
  checkFloatAny(op, 'input', x);
  if (x.size === 0) throw new RangeError(`${op}: cannot reduce an empty tensor`);
  if (x.device !== 'cpu') return argReduceCuda(op, x, dim, keepdim, isMax, false).indices;
  if (dim === undefined || dim === null) {
    const out = new Int32Array(1);
    N().argReduce(out, x._data as Float32Array, 1, x.size, 1, isMax);
    return fromData(out, keepdim ? x.shape.map(() => 1) : []);
  }
  const d = normDim(op, dim, x.ndim);
  const [outer, n, inner] = splitAt(x.shape, d);
  if (n === 0) throw new RangeError(`${op}: cannot reduce over an empty dimension`);
  const out = new Int32Array(outer * inner);
  N().argReduce(out, x._data as Float32Array, outer, n, inner, isMax);
  return fromData(out, reducedShape(x.shape, [d], keepdim));
}

/** int32 indices of the maximum along `dim` (over the flattened tensor when omitted); RangeError for an empty tensor. */
export const argmax = (x: Tensor, dim?: number | null, keepdim = false) => argReduce('argmax', x, dim, keepdim, true);
/** int32 indices of the minimum along `dim` (over the flattened tensor when omitted); RangeError for an empty tensor. */
export const argmin = (x: Tensor, dim?: number | null, keepdim = false) => argReduce('argmin', x, dim, keepdim, false);

/** The CUDA arg-reduction: int32 indices and (when wanted) the values, with the (outer, n, inner) split. */
function argReduceCuda(op: string, x: Tensor, dim: number | null | undefined, keepdim: boolean, isMax: boolean,
                       wantValues: boolean) {
  if (dim === undefined || dim === null) {
    const r = cu.argReduce(x, 1, x.size, 1, isMax, keepdim ? x.shape.map(() => 1) : [], wantValues, op);
    return { ...r, outer: 1, n: x.size, inner: 1 };
  }
  const d = normDim(op, dim, x.ndim);
  const [outer, n, inner] = splitAt(x.shape, d);
  if (n === 0) throw new RangeError(`${op}: cannot reduce over an empty dimension`);
  const r = cu.argReduce(x, outer, n, inner, isMax, reducedShape(x.shape, [d], keepdim), wantValues, op);
  return { ...r, outer, n, inner };
}

function maxMin(op: 'max' | 'min', x: Tensor, dim: number | null | undefined, keepdim: boolean): Tensor {
  if (x instanceof Tensor && x.device !== 'cpu') {
    checkFloatAny(op, 'input', x);
    if (x.size === 0) throw new RangeError(`${op}: cannot reduce an empty tensor`);
    const r = argReduceCuda(op, x, dim, keepdim, op === 'max', true);
    const { outer, n, inner, indices } = r;
    return record(r.values as Tensor, 'maxMin', [x], { indices, outer, n, inner, shape: x.shape }, [indices]);
  }
  const idx = argReduce(op, x, dim, keepdim, op === 'max');
  const d = dim === undefined || dim === null ? -1 : normDim(op, dim, x.ndim);
  const [outer, n, inner] = d < 0 ? [1, x.size, 1] : splitAt(x.shape, d);
  const xd = x._data as Float32Array;
  const id = idx._data as Int32Array;
  const out = new Float32Array(id.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) out[o * inner + i] = xd[(o * n + id[o * inner + i]) * inner + i];
  const y = fromData(out, idx.shape);
  return record(y, 'maxMin', [x], { indices: idx, outer, n, inner, shape: x.shape }, [idx]);
}

/** Max over dim (values only; use argmax for the indices), or over all elements. */
export const max = (x: Tensor, dim?: number | null, keepdim = false) => maxMin('max', x, dim, keepdim);
/** Min over dim (values only; use argmin for the indices), or over all elements. */
export const min = (x: Tensor, dim?: number | null, keepdim = false) => maxMin('min', x, dim, keepdim);

function softmaxImpl(op: 'softmax' | 'logSoftmax', x: Tensor, dim: number): Tensor {
  checkFloatAny(op, 'input', x);
  const d = normDim(op, dim, x.ndim);
  const [outer, n, inner] = x.ndim === 0 ? [1, 1, 1] : splitAt(x.shape, d);
  const log = op === 'logSoftmax';
  if (x.device !== 'cpu') {
    const yc = cu.softmaxForward(x, outer, n, inner, log, op);
    return record(yc, 'softmax', [x], { y: yc, outer, n, inner, log });
  }
  const y = empty32(x.shape);
  if (x.size) N().softmaxForward(y._data as Float32Array, x._data as Float32Array, outer, n, inner, log);
  return record(y, 'softmax', [x], { y, outer, n, inner, log });
}

/** Softmax along `dim`: exp(x) / sum(exp(x)), computed stably. */
export const softmax = (x: Tensor, dim: number) => softmaxImpl('softmax', x, dim);
/** log(softmax(x)) along `dim`, computed stably. */
export const logSoftmax = (x: Tensor, dim: number) => softmaxImpl('logSoftmax', x, dim);

/** log(sum(exp(x), dim)), stably: the max along dim is subtracted first, so logits of +-1e4 stay finite. */
export function logsumexp(x: Tensor, dim: number, keepdim = false): Tensor {
  const op = 'logsumexp';
  checkFloat(op, 'input', x);
  const d = normDim(op, dim, x.ndim);
  if (x.ndim === 0) return clone(x);
  if (x.shape[d] === 0) throw new RangeError(`${op}: dim ${dim} of shape [${x.shape.join(', ')}] is empty`);
  const m = noGrad(() => maxMin('max', x, d, true));
  const md = m._data as Float32Array;
  for (let i = 0; i < md.length; i++) if (!Number.isFinite(md[i])) md[i] = 0; // all -inf rows stay -inf
  const shifted = sub(x, m);
  const e = exp(shifted);
  const s = sum(e, d, true);
  const l = log(s);
  const out = add(l, m);
  const parts = [shifted, e, s, l];
  const res = keepdim ? out : reshape(out, x.shape.filter((_, i) => i !== d));
  if (!res.requiresGrad) for (const t of [m, ...parts, ...(res === out ? [] : [out])]) t.dispose();
  return res;
}

// ---------------------------------------------------------------------------------------------
// linear algebra

/** Matrix product with NumPy semantics: 1-d, 2-d and batched (broadcast) operands. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const op = 'matmul';
  checkFloatAny(op, 'input', a);
  checkFloatAny(op, 'other', b);
  sameDevice(op, a, 'input', b, 'other');
  if (a.ndim === 0 || b.ndim === 0) throw new RangeError(`${op}: both arguments must be at least 1-d, got shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  const a2 = a.ndim === 1 ? a._view([1, a.shape[0]]) : a;
  const b2 = b.ndim === 1 ? b._view([b.shape[0], 1]) : b;
  const m = a2.shape[a2.ndim - 2], k = a2.shape[a2.ndim - 1];
  const k2 = b2.shape[b2.ndim - 2], n = b2.shape[b2.ndim - 1];
  if (k !== k2)
    throw new RangeError(`${op}: inner dimensions differ: [${a.shape.join(', ')}] @ [${b.shape.join(', ')}] (${k} vs ${k2})`);
  const batchA = a2.shape.slice(0, -2), batchB = b2.shape.slice(0, -2);
  const batch = broadcastShapes(op, batchA, batchB);
  const outShape = [...batch, m, n];
  if (a.device !== 'cpu') {
    // Inside tsm.autocast on a CUDA device: 16-bit operands, float32 accumulation and result (lib/autocast.ts).
    const lp = autocastDtype(a.device);
    const r = lp ? autocastMatmul(a, b, lp) : null;
    if (r) {
      if (a2 !== a) a2.dispose();
      if (b2 !== b) b2.dispose();
      return r;
    }
    return finishMatmul(a, b, a2, b2, matmulCuda(a2, b2, batchA, batchB, batch, m, n, k), outShape);
  }
  const y = empty32(outShape);
  const nb = sizeOf(batch);
  if (y.size > 0) {
    const ad = a2._data as Float32Array, bd = b2._data as Float32Array, yd = y._data as Float32Array;
    const fullA = sameShape(batchA, batch) || sizeOf(batchA) === 1;
    const fullB = sameShape(batchB, batch) || sizeOf(batchB) === 1;
    if (fullA && fullB) {
      const sa = sizeOf(batchA) === 1 && nb > 1 ? 0 : m * k;
      const sb = sizeOf(batchB) === 1 && nb > 1 ? 0 : k * n;
      if (sa !== 0 && sb === 0) {
        // (B, m, k) @ (k, n): one GEMM with B*m rows.
        N().sgemm(false, false, nb * m, n, k, 1, ad, Math.max(1, k), bd, Math.max(1, n), 0, yd, Math.max(1, n), false);
      } else {
        N().sgemmStridedBatched(false, false, nb, m, n, k, 1, ad, Math.max(1, k), sa, bd, Math.max(1, n), sb, 0, yd, Math.max(1, n), m * n);
      }
    } else {
      const aSt = broadcastStrides(batchA, batch), bSt = broadcastStrides(batchB, batch);
      const idx = new Array<number>(batch.length).fill(0);
      for (let i = 0; i < nb; i++) {
        let ao = 0, bo = 0;
        for (let d = 0; d < batch.length; d++) { ao += idx[d] * aSt[d]; bo += idx[d] * bSt[d]; }
        N().sgemm(false, false, m, n, k, 1, ad.subarray(ao * m * k), Math.max(1, k), bd.subarray(bo * k * n), Math.max(1, n), 0,
          yd.subarray(i * m * n), Math.max(1, n), false);
        for (let d = batch.length - 1; d >= 0; d--) { if (++idx[d] < batch[d]) break; idx[d] = 0; }
      }
    }
  }
  return finishMatmul(a, b, a2, b2, y, outShape);
}

/**
 * The product y (batch..., m, n) with the dims of 1-d operands dropped, as matmul returns it (a view
 * of y, which is then released; y itself when neither operand is 1-d). Also used by autocast.
 */
export function dropMatmulVectorDims(a: Tensor, b: Tensor, y: Tensor, outShape: number[]): Tensor {
  if (a.ndim !== 1 && b.ndim !== 1) return y;
  const s = outShape.slice();
  if (b.ndim === 1) s.splice(s.length - 1, 1);
  if (a.ndim === 1) s.splice(s.length - (b.ndim === 1 ? 1 : 2), 1);
  const out = y._view(s);
  y.dispose();
  return out;
}

/** Drops the dims of 1-d operands from the product y (batch..., m, n), frees the promoted views, records. */
function finishMatmul(a: Tensor, b: Tensor, a2: Tensor, b2: Tensor, y: Tensor, outShape: number[]): Tensor {
  const out = dropMatmulVectorDims(a, b, y, outShape);
  if (a2 !== a) a2.dispose();
  if (b2 !== b) b2.dispose();
  return record(out, 'matmul', [a, b], { a, b });
}

/**
 * The batched product on a CUDA device: one strided-batched SGEMM (stride 0 for an operand with a
 * single matrix); an operand whose batch dims broadcast partially is expanded first.
 */
function matmulCuda(a2: Tensor, b2: Tensor, batchA: number[], batchB: number[], batch: number[], m: number, n: number,
                    k: number): Tensor {
  const op = 'matmul';
  const outShape = [...batch, m, n];
  if (sizeOf(outShape) === 0 || k === 0) return cu.full(outShape, 0, a2.device);
  const nb = sizeOf(batch);
  const oneA = sizeOf(batchA) === 1, oneB = sizeOf(batchB) === 1;
  const A = oneA || sameShape(batchA, batch) ? a2 : stridedCopy(a2, [...batch, m, k], broadcastStrides(a2.shape, [...batch, m, k]));
  const B = oneB || sameShape(batchB, batch) ? b2 : stridedCopy(b2, [...batch, k, n], broadcastStrides(b2.shape, [...batch, k, n]));
  const sa = oneA && nb > 1 ? 0 : m * k;
  const sb = oneB && nb > 1 ? 0 : k * n;
  const y = cu.empty(outShape, a2.device);
  if (sa !== 0 && sb === 0) {
    // (B, m, k) @ (k, n): one GEMM with B*m rows.
    cu.gemmInto({ transA: false, transB: false, batch: 1, m: nb * m, n, k, a: A, lda: k, strideA: 0, b: B, ldb: n,
      strideB: 0, c: y, ldc: n, strideC: 0 }, op);
  } else {
    cu.gemmInto({ transA: false, transB: false, batch: nb, m, n, k, a: A, lda: k, strideA: sa, b: B, ldb: n, strideB: sb,
      c: y, ldc: n, strideC: m * n }, op);
  }
  if (A !== a2) A.dispose();
  if (B !== b2) B.dispose();
  return y;
}

/** y = x @ w^T + b, with x (..., in), w (out, in), b (out). */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  const op = 'linear';
  checkFloatAny(op, 'input', x);
  checkFloatAny(op, 'weight', w);
  sameDevice(op, x, 'input', w, 'weight');
  if (w.ndim !== 2) throw new RangeError(`${op}: expected weight of rank 2 (out, in), got shape [${w.shape.join(', ')}]`);
  if (x.ndim < 1) throw new RangeError(`${op}: expected input of rank >= 1, got a 0-d tensor`);
  const [outF, inF] = w.shape;
  if (x.shape[x.ndim - 1] !== inF)
    throw new RangeError(`${op}: input's last dimension must be ${inF} (weight is [${outF}, ${inF}]), got shape [${x.shape.join(', ')}]`);
  if (b != null) {
    checkFloatAny(op, 'bias', b);
    sameDevice(op, x, 'input', b, 'bias');
    if (b.ndim !== 1 || b.shape[0] !== outF) throw new RangeError(`${op}: expected bias of shape [${outF}], got [${b.shape.join(', ')}]`);
  }
  const rows = x.size / Math.max(inF, 1);
  const outShape = [...x.shape.slice(0, -1), outF];
  if (x.device !== 'cpu') {
    // Inside tsm.autocast on a CUDA device: 16-bit operands, float32 accumulation and result (lib/autocast.ts).
    const lp = autocastDtype(x.device);
    const r = lp ? autocastLinear(x, w, b ?? null, lp) : null;
    if (r) return r;
    let yc: Tensor;
    if (rows === 0 || outF === 0 || inF === 0) {
      // Nothing to multiply: the bias broadcast over the rows, or zeros.
      yc = b != null ? stridedCopy(b, outShape, broadcastStrides(b.shape, outShape)) : cu.full(outShape, 0, x.device);
    } else {
      yc = cu.empty(outShape, x.device);
      cu.gemmInto({ transA: false, transB: true, batch: 1, m: rows, n: outF, k: inF, a: x, lda: inF, strideA: 0, b: w,
        ldb: inF, strideB: 0, c: yc, ldc: outF, strideC: 0, bias: b ?? null }, op);
    }
    return record(yc, 'linear', [x, w, b ?? null], { x, w, rows, inF, outF });
  }
  const y = empty32(outShape);
  const yd = y._data as Float32Array;
  if (b != null && rows > 0) {
    const bd = b._data as Float32Array;
    for (let r = 0; r < rows; r++) yd.set(bd, r * outF);
  }
  if (rows > 0 && outF > 0)
    N().sgemm(false, true, rows, outF, inF, 1, x._data as Float32Array, inF, w._data as Float32Array, inF,
      b != null ? 1 : 0, yd, outF, false);
  return record(y, 'linear', [x, w, b ?? null], { x, w, rows, inF, outF });
}

// ---------------------------------------------------------------------------------------------
// shape

/** Same data with a new shape (shares storage); one dim may be -1 (inferred). RangeError when the element count differs. */
export function reshape(x: Tensor, shape: number[]): Tensor {
  checkAnyDtype('reshape', 'input', x);
  if (!Array.isArray(shape)) throw new TypeError(`reshape: shape must be an array, got ${describe(shape)}`);
  const infer = shape.indexOf(-1);
  if (shape.filter((d) => d === -1).length > 1) throw new RangeError(`reshape: only one dimension can be -1, got [${shape.join(', ')}]`);
  let s = shape.slice();
  if (infer >= 0) {
    const known = sizeOf(s.filter((d) => d !== -1));
    if (known === 0 || x.size % known !== 0)
      throw new RangeError(`reshape: cannot reshape [${x.shape.join(', ')}] (${x.size} elements) into [${shape.join(', ')}]`);
    s[infer] = x.size / known;
  }
  s = checkShape('reshape', s);
  if (sizeOf(s) !== x.size)
    throw new RangeError(`reshape: cannot reshape [${x.shape.join(', ')}] (${x.size} elements) into [${shape.join(', ')}] (${sizeOf(s)})`);
  const y = x._view(s);
  return x.dtype === 'float32' ? record(y, 'reshape', [x], { shape: x.shape }) : y;
}

/** Merges dims startDim..endDim (inclusive, default all) into one; a 0-d tensor becomes shape [1]. */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  checkAnyDtype('flatten', 'input', x);
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normDim('flatten', startDim, x.ndim, 'startDim');
  const e = normDim('flatten', endDim, x.ndim, 'endDim');
  if (e < s) throw new RangeError(`flatten: startDim (${startDim}) must not come after endDim (${endDim})`);
  return reshape(x, [...x.shape.slice(0, s), sizeOf(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

/** Removes size-1 dims (all, or only `dim`; a `dim` whose size is not 1 leaves the shape unchanged). */
export function squeeze(x: Tensor, dim?: number): Tensor {
  checkAnyDtype('squeeze', 'input', x);
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const d = normDim('squeeze', dim, x.ndim);
  if (x.ndim === 0 || x.shape[d] !== 1) return reshape(x, x.shape.slice());
  return reshape(x, x.shape.filter((_, i) => i !== d));
}

/** Inserts a size-1 dim at `dim` (in [-ndim-1, ndim]). */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  checkAnyDtype('unsqueeze', 'input', x);
  const d = normDim('unsqueeze', dim, x.ndim + 1);
  const s = x.shape.slice();
  s.splice(d, 0, 1);
  return reshape(x, s);
}

/** Reorders dims (a copy, not a view); RangeError unless `dims` is a permutation of 0..ndim-1. */
export function permute(x: Tensor, dims: number[]): Tensor {
  const op = 'permute';
  checkAny(op, 'input', x);
  if (!Array.isArray(dims) || dims.length !== x.ndim)
    throw new RangeError(`${op}: dims must list all ${x.ndim} dimensions, got ${describe(dims)}`);
  const p = dims.map((d) => normDim(op, d, x.ndim));
  if (new Set(p).size !== p.length) throw new RangeError(`${op}: dims [${dims.join(', ')}] is not a permutation`);
  const st = stridesOf(x.shape);
  const y = stridedCopy(x, p.map((d) => x.shape[d]), p.map((d) => st[d]));
  if (x.dtype !== 'float32') return y;
  const inverse = new Array<number>(p.length);
  p.forEach((d, i) => (inverse[d] = i));
  return record(y, 'permute', [x], { inverse });
}

/** Swaps dims `dim0` and `dim1` (default the last two; a copy); a 0-d or 1-d tensor is returned reshaped as is. */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  checkAny('transpose', 'input', x);
  if (x.ndim < 2 && dim0 === -2 && dim1 === -1) return reshape(x, x.shape.slice());
  const a = normDim('transpose', dim0, x.ndim, 'dim0');
  const b = normDim('transpose', dim1, x.ndim, 'dim1');
  const p = x.shape.map((_, i) => i);
  [p[a], p[b]] = [p[b], p[a]];
  return permute(x, p);
}

/** Broadcasts size-1 dims (and new leading dims) to `shape` (a copy); -1 keeps a dim. RangeError for an incompatible shape. */
export function expand(x: Tensor, shape: number[]): Tensor {
  const op = 'expand';
  checkAny(op, 'input', x);
  if (!Array.isArray(shape) || shape.length < x.ndim)
    throw new RangeError(`${op}: shape must have at least ${x.ndim} dimensions, got ${describe(shape)}`);
  const s = shape.map((d, i) => {
    const src = x.shape[i - (shape.length - x.ndim)];
    return d === -1 ? src : d;
  });
  checkShape(op, s);
  for (let i = 0; i < x.ndim; i++) {
    const src = x.shape[i], dst = s[i + s.length - x.ndim];
    if (src !== 1 && src !== dst) throw new RangeError(`${op}: cannot expand [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  }
  const y = stridedCopy(x, s, broadcastStrides(x.shape, s));
  return x.dtype === 'float32' ? record(y, 'expand', [x], { shape: x.shape }) : y;
}

/** Elements start..end (exclusive) with step along dim; negative indices count from the end. */
export function slice(x: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  const op = 'slice';
  checkAny(op, 'input', x);
  const d = normDim(op, dim, x.ndim);
  if (!Number.isSafeInteger(step) || step < 1) throw new RangeError(`${op}: step must be a positive integer, got ${describe(step)}`);
  const size = x.shape[d];
  const norm = (v: number, name: string) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${op}: ${name} must be an integer, got ${describe(v)}`);
    const r = v < 0 ? v + size : v;
    return Math.min(Math.max(r, 0), size);
  };
  const s = norm(start, 'start');
  const e = end === undefined ? size : norm(end, 'end');
  const len = Math.max(0, Math.ceil((e - s) / step));
  const st = stridesOf(x.shape);
  const outShape = x.shape.slice();
  outShape[d] = len;
  const strides = st.slice();
  strides[d] = st[d] * step;
  const y = stridedCopy(x, outShape, strides, len > 0 ? s * st[d] : 0);
  return x.dtype === 'float32' ? record(y, 'slice', [x], { shape: x.shape, dim: d, start: s, step }) : y;
}

/** Concatenates tensors along an existing `dim`; all other dims must match. RangeError for an empty list or mismatched shapes. */
export function cat(tensors: Tensor[], dim = 0): Tensor {
  const op = 'cat';
  if (!Array.isArray(tensors) || tensors.length === 0) throw new RangeError(`${op}: expected a non-empty array of tensors, got ${describe(tensors)}`);
  tensors.forEach((t, i) => checkAny(op, `tensors[${i}]`, t));
  const first = tensors[0];
  const d = normDim(op, dim, first.ndim);
  for (const [i, t] of tensors.entries()) {
    if (t.device !== first.device) throw deviceMismatch(op, first.device, 'tensors[0]', t.device, `tensors[${i}]`);
    if (t.dtype !== first.dtype) throw new TypeError(`${op}: tensors[${i}] has dtype ${t.dtype}, expected ${first.dtype}`);
    if (t.ndim !== first.ndim || t.shape.some((s, j) => j !== d && s !== first.shape[j]))
      throw new RangeError(`${op}: tensors[${i}] has shape [${t.shape.join(', ')}], incompatible with [${first.shape.join(', ')}] along dim ${d}`);
  }
  const outShape = first.shape.slice();
  outShape[d] = tensors.reduce((s, t) => s + t.shape[d], 0);
  if (first.device !== 'cpu') {
    if (first.dtype !== 'float32' && first.dtype !== 'int32')
      throw new TypeError(`${op}: CUDA tensors must be float32 or int32, got ${first.dtype}`);
    // One strided copy per tensor into its columns of the output (cuda/layout.cu); the gradient
    // rule (slices of dy) runs on the device as is.
    const yc = cuSeq.cat(tensors, outShape, d, op);
    if (first.dtype !== 'float32') return yc;
    return record(yc, 'cat', tensors, { dim: d, sizes: tensors.map((t) => t.shape[d]) });
  }
  const outer = sizeOf(first.shape.slice(0, d));
  const inner = sizeOf(first.shape.slice(d + 1));
  const n = sizeOf(outShape);
  const out = first.dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  const rowOut = outShape[d] * inner;
  let off = 0;
  for (const t of tensors) {
    const chunk = t.shape[d] * inner;
    const src = t._data;
    for (let o = 0; o < outer; o++) out.set(src.subarray(o * chunk, (o + 1) * chunk), o * rowOut + off);
    off += chunk;
  }
  const y = fromData(out, outShape);
  if (first.dtype !== 'float32') return y;
  return record(y, 'cat', tensors, { dim: d, sizes: tensors.map((t) => t.shape[d]) });
}

/** Stacks same-shape tensors along a new `dim`. */
export function stack(tensors: Tensor[], dim = 0): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new RangeError(`stack: expected a non-empty array of tensors, got ${describe(tensors)}`);
  tensors.forEach((t, i) => checkAny('stack', `tensors[${i}]`, t));
  const d = normDim('stack', dim, tensors[0].ndim + 1);
  for (const [i, t] of tensors.entries())
    if (!sameShape(t.shape, tensors[0].shape))
      throw new RangeError(`stack: tensors[${i}] has shape [${t.shape.join(', ')}], expected [${tensors[0].shape.join(', ')}]`);
  const parts = tensors.map((t) => unsqueeze(t, d));
  const y = cat(parts, d);
  return y;
}

function checkIndexTensor(op: string, index: Tensor | number[]): Int32Array {
  if (Array.isArray(index)) return Int32Array.from(index);
  checkTensor(op, 'index', index);
  if (index.dtype !== 'int32') throw new TypeError(`${op}: index must be an int32 tensor, got ${index.dtype}`);
  return index._data as Int32Array;
}

/** gather's checks of the index against the input (both devices); returns the normalised dim. */
function gatherDim(op: string, x: Tensor, dim: number, index: Tensor): number {
  if (index.dtype !== 'int32') throw new TypeError(`${op}: index must be an int32 tensor, got ${index.dtype}`);
  const d = normDim(op, dim, x.ndim);
  if (index.ndim !== x.ndim) throw new RangeError(`${op}: index must have the input's rank ${x.ndim}, got shape [${index.shape.join(', ')}]`);
  for (let i = 0; i < x.ndim; i++)
    if (i !== d && index.shape[i] > x.shape[i])
      throw new RangeError(`${op}: index shape [${index.shape.join(', ')}] exceeds input shape [${x.shape.join(', ')}] at dim ${i}`);
  return d;
}

/** out[i][j] = x[index[i][j]][j] (dim 0) etc., as torch.gather. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const op = 'gather';
  if (checkAny(op, 'input', x).device !== 'cpu') return gatherCuda(x, dim, index);
  checkTensor(op, 'input', x);
  checkTensor(op, 'index', index);
  const d = gatherDim(op, x, dim, index);
  const xs = stridesOf(x.shape);
  const id = index._data as Int32Array;
  const xd = x._data;
  const out = x.dtype === 'int32' ? new Int32Array(id.length) : new Float32Array(id.length);
  const pos = new Array<number>(index.ndim).fill(0);
  const offsets = new Int32Array(id.length);
  for (let i = 0; i < id.length; i++) {
    const v = id[i];
    if (v < 0 || v >= x.shape[d]) throw new RangeError(`${op}: index ${v} is out of range for dim ${d} of size ${x.shape[d]}`);
    let o = 0;
    for (let k = 0; k < pos.length; k++) o += (k === d ? v : pos[k]) * xs[k];
    offsets[i] = o;
    out[i] = xd[o];
    for (let k = pos.length - 1; k >= 0; k--) { if (++pos[k] < index.shape[k]) break; pos[k] = 0; }
  }
  const y = fromData(out, index.shape);
  return x.dtype === 'float32' ? record(y, 'gather', [x], { offsets, shape: x.shape }) : y;
}

/**
 * gather on a CUDA device: the index (int32, on x's device) is read back once to be range-checked
 * with the CPU's messages (a synchronisation), then cuda/index.cu gathers; the backward is a
 * deterministic scatter-add (lib/gradients.ts).
 */
function gatherCuda(x: Tensor, dim: number, index: Tensor): Tensor {
  const op = 'gather';
  checkAny(op, 'index', index);
  sameDevice(op, x, 'input', index, 'index');
  const d = gatherDim(op, x, dim, index);
  if (x.ndim === 0) throw new RangeError(`${op}: expected an input of rank >= 1, got a 0-d tensor`);
  const id = index.size ? (index._download(op) as Int32Array) : new Int32Array(0);
  for (let i = 0; i < id.length; i++)
    if (id[i] < 0 || id[i] >= x.shape[d]) throw new RangeError(`${op}: index ${id[i]} is out of range for dim ${d} of size ${x.shape[d]}`);
  const y = cuSeq.gather(x, d, index, op);
  if (x.dtype !== 'float32') return y;
  // The node owns a copy of the index (the caller may dispose its own before the backward).
  const saved = x.requiresGrad ? cu.clone(index, op) : index;
  return record(y, 'gather', [x], { index: saved, dim: d, shape: x.shape }, saved === index ? [] : [saved]);
}

/**
 * indexSelect on a CUDA device: the index may be a number[], a CPU int32 tensor or an int32 tensor
 * on x's device (read back once to be checked); the backward groups positions by row on the host
 * (CSR) for a deterministic, atomic-free scatter-add.
 */
function indexSelectCuda(x: Tensor, dim: number, index: Tensor | number[]): Tensor {
  const op = 'index';
  const d = normDim(op, dim, x.ndim);
  let idx: Int32Array;
  let dIndex: Tensor | null = null;
  if (Array.isArray(index)) idx = Int32Array.from(index);
  else {
    checkAny(op, 'index', index);
    if (index.dtype !== 'int32') throw new TypeError(`${op}: index must be an int32 tensor, got ${index.dtype}`);
    if (index.device !== 'cpu') sameDevice(op, x, 'input', index, 'index');
    idx = index.device === 'cpu' ? (index._data as Int32Array) : index.size ? (index._download(op) as Int32Array) : new Int32Array(0);
    if (index.device !== 'cpu' && index.ndim === 1) dIndex = index;
  }
  const [outer, n, inner] = splitAt(x.shape, d);
  for (let i = 0; i < idx.length; i++)
    if (idx[i] < -n || idx[i] >= n) throw new RangeError(`${op}: index ${idx[i]} is out of range for dim ${d} of size ${n}`);
  const outShape = x.shape.slice();
  outShape[d] = idx.length;
  const di = dIndex ?? cu.upload(Int32Array.from(idx), [idx.length], x.device);
  const y = cuSeq.indexSelect(x, di, outShape, outer, n, inner, op);
  if (di !== dIndex) di.dispose();
  return x.dtype === 'float32' ? record(y, 'indexSelect', [x], { idx: Int32Array.from(idx), outer, n, inner, shape: x.shape }) : y;
}

/** Rows of x along dim selected by an int32 index (torch.index_select). */
export function indexSelect(x: Tensor, dim: number, index: Tensor | number[]): Tensor {
  const op = 'index';
  if (checkAny(op, 'input', x).device !== 'cpu') return indexSelectCuda(x, dim, index);
  checkTensor(op, 'input', x);
  const d = normDim(op, dim, x.ndim);
  const idx = checkIndexTensor(op, index);
  const [outer, n, inner] = splitAt(x.shape, d);
  for (let i = 0; i < idx.length; i++)
    if (idx[i] < -n || idx[i] >= n) throw new RangeError(`${op}: index ${idx[i]} is out of range for dim ${d} of size ${n}`);
  const outShape = x.shape.slice();
  outShape[d] = idx.length;
  const xd = x._data;
  const out = x.dtype === 'int32' ? new Int32Array(sizeOf(outShape)) : new Float32Array(sizeOf(outShape));
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < idx.length; i++) {
      const src = (o * n + (idx[i] < 0 ? idx[i] + n : idx[i])) * inner;
      out.set(xd.subarray(src, src + inner), (o * idx.length + i) * inner);
    }
  const y = fromData(out, outShape);
  return x.dtype === 'float32' ? record(y, 'indexSelect', [x], { idx: Int32Array.from(idx), outer, n, inner, shape: x.shape }) : y;
}
