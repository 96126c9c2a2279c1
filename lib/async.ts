// Work off the main thread: asynchronous versions of the heavy inference kernels, and
// `model.predictAsync(x)` on every nn.Module.
//
// Design: the heavy kernels (sgemm, conv2d forward, max/avg pooling forward, softmax) run as
// napi AsyncWorkers on the libuv thread pool (cpp/binding/async.cpp); the kernels inside keep using
// tensorsmith's own thread pool. The main thread only does the O(n) glue between layers
// (activations, reshapes, bias rows), so the event loop keeps turning while a long inference runs.
// Chosen over a worker_thread per model because it needs no second copy of the weights or of the
// addon per call, shares the one native thread pool, and keeps the result a plain Tensor on the
// caller's thread. The native side snapshots the inputs before the call returns and copies the
// result into the output on completion, so tensors may be disposed (or arrays detached) while the
// promise is pending without any use-after-free.
//
// Layers with an asynchronous path: Sequential (recursively), Linear, Conv2d, MaxPool2d, AvgPool2d,
// Softmax, LogSoftmax; cheap elementwise/shape layers (ReLU, GELU, Sigmoid, Tanh, Flatten, Identity,
// Dropout in eval) run inline. Any other module runs its synchronous forward between two turns of the
// event loop (it blocks for the duration of that one layer).
import { checkBool, checkFloat32Array, checkInt, checkNumber, describe } from './check';
import { nativeAddon } from './native-api';
import * as nn from './nn';
import * as ops from './ops';
import { Tensor, fromData, noGrad } from './tensor';

type F32 = Float32Array;

interface AsyncAddon {
  sgemmAsync(ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, a: F32, lda: number,
             b: F32, ldb: number, beta: number, c: F32, ldc: number): Promise<void>;
  conv2dForwardAsync(y: F32, x: F32, w: F32, bias: F32 | null, N: number, C: number, H: number, W: number,
                     OC: number, KH: number, KW: number, sH: number, sW: number, pH: number, pW: number, dH: number,
                     dW: number, groups: number): Promise<void>;
  maxPool2dForwardAsync(y: F32, indices: Int32Array, x: F32, N: number, C: number, H: number, W: number, KH: number,
                        KW: number, sH: number, sW: number, pH: number, pW: number, dH: number, dW: number,
                        ceilMode: boolean): Promise<void>;
  avgPool2dForwardAsync(y: F32, x: F32, N: number, C: number, H: number, W: number, KH: number, KW: number,
                        sH: number, sW: number, pH: number, pW: number, ceilMode: boolean,
                        countIncludePad: boolean): Promise<void>;
  softmaxForwardAsync(y: F32, x: F32, outer: number, dim: number, inner: number, log: boolean): Promise<void>;
  pool2dOutputSize(inSize: number, kernel: number, stride: number, pad: number, dilation: number,
                   ceilMode: boolean): number;
}

function A(): AsyncAddon {
  return nativeAddon() as unknown as AsyncAddon;
}

// ---------------------------------------------------------------------------------------------
// Low-level asynchronous kernels (same contracts as tsm.kernels, resolved when the result is in c/y)

/** Arguments of sgemmAsync: the same contract as kernels.sgemm's SgemmArgs. */
export interface SgemmAsyncArgs {
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
  /** Default 0 (C is then not read). */
  beta?: number;
  /** Matrix C (m x n), row-major; overwritten with the result. */
  c: Float32Array;
  /** Leading dimension of C. Default n. */
  ldc?: number;
}

/** C = alpha * op(A) * op(B) + beta * C on the libuv thread pool (row-major, BLAS semantics). */
export async function sgemmAsync(args: SgemmAsyncArgs): Promise<void> {
  const op = 'sgemmAsync';
  if (typeof args !== 'object' || args === null) throw new TypeError(`${op}: expected an options object, got ${describe(args)}`);
  const transA = args.transA === undefined ? false : checkBool(op, 'transA', args.transA);
  const transB = args.transB === undefined ? false : checkBool(op, 'transB', args.transB);
  const m = checkInt(op, 'm', args.m, 0), n = checkInt(op, 'n', args.n, 0), k = checkInt(op, 'k', args.k, 0);
  const alpha = args.alpha === undefined ? 1 : checkNumber(op, 'alpha', args.alpha);
  const beta = args.beta === undefined ? 0 : checkNumber(op, 'beta', args.beta);
  const a = checkFloat32Array(op, 'a', args.a), b = checkFloat32Array(op, 'b', args.b), c = checkFloat32Array(op, 'c', args.c);
  const lda = args.lda ?? Math.max(1, transA ? m : k);
  const ldb = args.ldb ?? Math.max(1, transB ? k : n);
  const ldc = args.ldc ?? Math.max(1, n);
  checkInt(op, 'lda', lda, Math.max(1, transA ? m : k));
  checkInt(op, 'ldb', ldb, Math.max(1, transB ? k : n));
  checkInt(op, 'ldc', ldc, Math.max(1, n));
  return A().sgemmAsync(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// ---------------------------------------------------------------------------------------------
// Asynchronous forward of single layers (no autograd: inference only)

type Pair = number | [number, number];

function pair(op: string, name: string, v: Pair | undefined, dflt: number, min: number): [number, number] {
  const p = v === undefined || v === null ? [dflt, dflt] : typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2) throw new TypeError(`${op}: ${name} must be a number or [h, w], got ${describe(v)}`);
  for (const x of p)
    if (!Number.isSafeInteger(x) || x < min) throw new RangeError(`${op}: ${name} must be integer(s) >= ${min}, got ${describe(v)}`);
  return [p[0], p[1]];
}

function check4d(op: string, x: Tensor): [number, number, number, number] {
  if (x.ndim !== 4) throw new RangeError(`${op}: expected input of rank 4 (N, C, H, W), got shape [${x.shape.join(', ')}]`);
  return x.shape as unknown as [number, number, number, number];
}

function f32(op: string, t: Tensor, name: string): Float32Array {
  return t._f32(op, name);
}

async function linearAsync(op: string, m: nn.Linear, x: Tensor): Promise<Tensor> {
  const w = m.weight, b = m.bias;
  const [outF, inF] = w.shape;
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF)
    throw new RangeError(`${op}: Linear(${inF}, ${outF}) got input of shape [${x.shape.join(', ')}]`);
  const rows = x.size / inF;
  const out = new Float32Array(rows * outF);
  if (b) {
    const bd = f32(op, b, 'bias');
    for (let r = 0; r < rows; r++) out.set(bd, r * outF);
  }
  if (rows > 0 && outF > 0)
    await A().sgemmAsync(false, true, rows, outF, inF, 1, f32(op, x, 'input'), Math.max(1, inF), f32(op, w, 'weight'),
                         Math.max(1, inF), b ? 1 : 0, out, Math.max(1, outF));
  return fromData(out, [...x.shape.slice(0, -1), outF]);
}

async function conv2dAsync(op: string, m: nn.Conv2d, x: Tensor): Promise<Tensor> {
  const [n, c, h, wd] = check4d(op, x);
  const [oc, cg, kh, kw] = m.weight.shape;
  const [sH, sW] = pair(op, 'stride', m.opts.stride, 1, 1);
  const [pH, pW] = pair(op, 'padding', m.opts.padding, 0, 0);
  const [dH, dW] = pair(op, 'dilation', m.opts.dilation, 1, 1);
  const groups = m.opts.groups ?? 1;
  if (cg * groups !== c) throw new RangeError(`${op}: Conv2d expects ${cg * groups} input channels, got input of shape [${x.shape.join(', ')}]`);
  const oh = Math.floor((h + 2 * pH - dH * (kh - 1) - 1) / sH) + 1;
  const ow = Math.floor((wd + 2 * pW - dW * (kw - 1) - 1) / sW) + 1;
  if (oh < 1 || ow < 1) throw new RangeError(`${op}: the kernel is larger than the padded input (${h + 2 * pH}x${wd + 2 * pW})`);
  const y = new Float32Array(n * oc * oh * ow);
  if (y.length)
    await A().conv2dForwardAsync(y, f32(op, x, 'input'), f32(op, m.weight, 'weight'), m.bias ? f32(op, m.bias, 'bias') : null,
                                 n, c, h, wd, oc, kh, kw, sH, sW, pH, pW, dH, dW, groups);
  return fromData(y, [n, oc, oh, ow]);
}

async function pool2dAsync(op: string, m: nn.MaxPool2d | nn.AvgPool2d, x: Tensor, isMax: boolean): Promise<Tensor> {
  const [n, c, h, w] = check4d(op, x);
  const o = m.opts;
  const [kH, kW] = pair(op, 'kernelSize', o.kernelSize, NaN, 1);
  const [sH, sW] = o.stride === undefined || o.stride === null ? [kH, kW] : pair(op, 'stride', o.stride, 1, 1);
  const [pH, pW] = pair(op, 'padding', o.padding, 0, 0);
  const [dH, dW] = pair(op, 'dilation', o.dilation, 1, 1);
  const ceil = o.ceilMode ?? false;
  const oh = A().pool2dOutputSize(h, kH, sH, pH, isMax ? dH : 1, ceil);
  const ow = A().pool2dOutputSize(w, kW, sW, pW, isMax ? dW : 1, ceil);
  if (oh < 1 || ow < 1) throw new RangeError(`${op}: output size would be ${oh}x${ow} for input ${h}x${w}`);
  const y = new Float32Array(n * c * oh * ow);
  if (y.length) {
    if (isMax) {
      const idx = new Int32Array(y.length);
      await A().maxPool2dForwardAsync(y, idx, f32(op, x, 'input'), n, c, h, w, kH, kW, sH, sW, pH, pW, dH, dW, ceil);
    } else {
      await A().avgPool2dForwardAsync(y, f32(op, x, 'input'), n, c, h, w, kH, kW, sH, sW, pH, pW, ceil, o.countIncludePad ?? true);
    }
  }
  return fromData(y, [n, c, oh, ow]);
}

async function softmaxAsync(op: string, x: Tensor, dim: number, log: boolean): Promise<Tensor> {
  const d = ops.normDim(op, dim, x.ndim);
  let outer = 1, inner = 1;
  for (let i = 0; i < d; i++) outer *= x.shape[i];
  for (let i = d + 1; i < x.ndim; i++) inner *= x.shape[i];
  const y = new Float32Array(x.size);
  if (y.length) await A().softmaxForwardAsync(y, f32(op, x, 'input'), outer, x.shape[d] ?? 1, inner, log);
  return fromData(y, x.shape);
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

// Elementwise activations are cheap per element but large activations still take milliseconds:
// they run on the main thread in chunks of CHUNK elements with a turn of the event loop between.
const CHUNK = 1 << 19;
async function activationChunked(op: string, name: string, x: Tensor): Promise<Tensor> {
  const addon = nativeAddon() as unknown as { UNARY_OPS: Record<string, number>; unaryForward(c: number, y: F32, x: F32): void };
  const code = addon.UNARY_OPS[name];
  const y = new Float32Array(x.size);
  for (let s = 0; s < y.length; s += CHUNK) {
    if (s > 0) await nextTurn();
    const e = Math.min(y.length, s + CHUNK);
    // Re-read the input each chunk: it throws TsmDisposedError if it was disposed meanwhile.
    addon.unaryForward(code, y.subarray(s, e), f32(op, x, 'input').subarray(s, e));
  }
  return fromData(y, x.shape);
}

/** One layer's forward, asynchronously where there is a native async path. */
async function layerAsync(op: string, m: nn.Module, x: Tensor): Promise<Tensor> {
  if (m instanceof nn.Sequential) {
    let y = x;
    for (const [, child] of m.namedChildren()) {
      const next = await layerAsync(op, child, y);
      if (y !== x && next !== y) y.dispose();
      y = next;
    }
    return y;
  }
  if (m instanceof nn.Linear) return linearAsync(op, m, x);
  if (m instanceof nn.Conv2d) return conv2dAsync(op, m, x);
  if (m instanceof nn.MaxPool2d) return pool2dAsync(op, m, x, true);
  if (m instanceof nn.AvgPool2d) return pool2dAsync(op, m, x, false);
  if (m instanceof nn.Softmax) return softmaxAsync(op, x, (m as unknown as { dim: number }).dim, false);
  if (m instanceof nn.LogSoftmax) return softmaxAsync(op, x, (m as unknown as { dim: number }).dim, true);
  const act = m instanceof nn.ReLU ? 'relu' : m instanceof nn.Sigmoid ? 'sigmoid' : m instanceof nn.Tanh ? 'tanh'
    : m instanceof nn.GELU ? ((m as unknown as { approximate: string }).approximate === 'tanh' ? 'gelu_tanh' : 'gelu') : null;
  if (act && x.dtype === 'float32') return activationChunked(op, act, x);
  const forward = (m as unknown as { forward(t: Tensor): unknown }).forward.bind(m);
  const cheap = m instanceof nn.ReLU || m instanceof nn.GELU || m instanceof nn.Sigmoid || m instanceof nn.Tanh ||
    m instanceof nn.Flatten || m instanceof nn.Identity || m instanceof nn.Dropout;
  if (!cheap) await nextTurn();
  const y = noGrad(() => forward(x));
  if (!(y instanceof Tensor))
    throw new TypeError(`${op}: the forward() of ${m.constructor.name} must return a Tensor, got ${describe(y)}`);
  return y;
}

/** Options of Module.predictAsync. */
export interface PredictAsyncOptions {
  /**
   * Samples per forward (default 32). Between layers the main thread copies each layer's input
   * for the worker and the result back (O(activation) memcpy); small batches keep each of those
   * steps at a few milliseconds, so the event loop never waits long.
   */
  batchSize?: number;
}

async function predictAsync(this: nn.Module, x: Tensor, opts: PredictAsyncOptions = {}): Promise<Tensor> {
  const op = 'predictAsync';
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: x must be a Tensor, got ${describe(x)}`);
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  x._data; // throws TsmDisposedError now rather than later
  const n = x.ndim ? x.shape[0] : 1;
  const batchSize = opts.batchSize === undefined ? 32 : checkInt(op, 'batchSize', opts.batchSize, 1);
  const wasTraining = this.training;
  this.eval();
  const parts: Tensor[] = [];
  try {
    for (let s = 0; s < Math.max(n, 1); s += batchSize) {
      const e = Math.min(n, s + batchSize);
      const bx = s === 0 && (e === n || x.ndim === 0) ? x : noGrad(() => ops.slice(x, 0, s, e));
      const y = await layerAsync(op, this, bx);
      parts.push(y === x ? noGrad(() => ops.clone(y)) : y);
      if (bx !== x && bx !== y) bx.dispose();
    }
  } catch (err) {
    for (const p of parts) p.dispose();
    throw err;
  } finally {
    this.train(wasTraining);
  }
  if (parts.length === 1) return parts[0];
  const out = noGrad(() => ops.cat(parts, 0));
  for (const p of parts) p.dispose();
  return out;
}

declare module './nn' {
  interface Module {
    /**
     * The model's output for x without blocking the event loop: the heavy layers (Linear, Conv2d,
     * pooling, softmax) run on the libuv thread pool. Eval mode, no gradients.
     */
    predictAsync(x: Tensor, opts?: PredictAsyncOptions): Promise<Tensor>;
  }
}

nn.Module.prototype.predictAsync = predictAsync;
