// tsm.F: the functional ops of neural networks. Each fused op calls its native forward and keeps
// its native backward beside it (recorded on the node; gradients.ts dispatches to it).
import type { Node } from './autograd';
import { record } from './autograd';
import { checkNumber, describe } from './check';
import { nativeAddon } from './native-api';
import * as cu from './cuda-tensor';
import * as cn from './cuda-norm';
import * as ops from './ops';
import { checkTensor, empty32, normDim } from './ops';
import { deferredComputedF32, fromData, isGradEnabled, noGrad, sizeOf, tidy, Tensor, uninitializedI32 } from './tensor';

const N = () => nativeAddon();
const f32 = (t: Tensor) => t._data as Float32Array;

export {
  relu, sigmoid, tanh, gelu, silu, softmax, logSoftmax, linear, matmul,
} from './ops';

/** A size given once for both spatial dims, or as [height, width]. */
export type Pair = number | [number, number];

function pair(op: string, name: string, v: Pair | undefined, dflt: number, min: number): [number, number] {
  const p = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2) throw new TypeError(`${op}: ${name} must be a number or [h, w], got ${describe(v)}`);
  for (const x of p)
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min)
      throw new RangeError(`${op}: ${name} must be integer(s) >= ${min}, got ${describe(v)}`);
  return [p[0], p[1]];
}

/** A float32 tensor argument (a TypeError naming op and argument otherwise). */
function checkF32(op: string, name: string, t: unknown): Tensor {
  const x = checkTensor(op, name, t);
  if (x.dtype !== 'float32') throw new TypeError(`${op}: ${name} must be a float32 tensor, got ${x.dtype}`);
  return x;
}

function check4d(op: string, x: unknown): Tensor {
  const t = checkTensor(op, 'input', x);
  if (t.dtype !== 'float32') throw new TypeError(`${op}: input must be a float32 tensor, got ${t.dtype}`);
  if (t.ndim !== 4) throw new RangeError(`${op}: expected input of rank 4 (N,C,H,W), got shape [${t.shape.join(', ')}]`);
  return t;
}

/** As check4d, on any device (ops with CUDA kernels). */
function check4dAny(op: string, x: unknown): Tensor {
  const t = ops.checkAny(op, 'input', x);
  if (t.dtype !== 'float32') throw new TypeError(`${op}: input must be a float32 tensor, got ${t.dtype}`);
  if (t.ndim !== 4) throw new RangeError(`${op}: expected input of rank 4 (N,C,H,W), got shape [${t.shape.join(', ')}]`);
  return t;
}

// ---------------------------------------------------------------------------------------------
// convolution

/** Options of {@link conv2d} (and nn.Conv2d), as `torch.nn.functional.conv2d`. */
export interface Conv2dOptions {
  /** Step of the kernel (default 1). */
  stride?: Pair;
  /** Zero padding on each side (default 0). */
  padding?: Pair;
  /** Spacing between kernel elements (default 1). */
  dilation?: Pair;
  /** Blocked connections: C_in and C_out must both be divisible by it (default 1). */
  groups?: number;
}

/**
 * 2-d convolution (cross-correlation, as PyTorch): x (N,C,H,W), w (OC, C/groups, KH, KW), b (OC).
 * On the CPU, a convolution with few taps per output (a CNN's first layer) computes its output when
 * something first reads it, from its operands as they were at the call: a {@link maxPool2d} of it
 * (or of its ReLU) then runs as one pass that never writes it out.
 */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  check4dAny(op, x);
  ops.checkFloatAny(op, 'weight', w);
  ops.sameDevice(op, x, 'input', w, 'weight');
  if (w.ndim !== 4) throw new RangeError(`${op}: expected weight of rank 4 (OC, C/groups, KH, KW), got shape [${w.shape.join(', ')}]`);
  const [sH, sW] = pair(op, 'stride', opts.stride, 1, 1);
  const [pH, pW] = pair(op, 'padding', opts.padding, 0, 0);
  const [dH, dW] = pair(op, 'dilation', opts.dilation, 1, 1);
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new RangeError(`${op}: groups must be a positive integer, got ${describe(groups)}`);
  const [n, c, h, wd] = x.shape;
  const [oc, cg, kh, kw] = w.shape;
  if (c % groups !== 0 || oc % groups !== 0)
    throw new RangeError(`${op}: input channels (${c}) and output channels (${oc}) must be divisible by groups (${groups})`);
  if (cg !== c / groups)
    throw new RangeError(`${op}: weight of shape [${w.shape.join(', ')}] expects ${cg * groups} input channels, got input of shape [${x.shape.join(', ')}]`);
  if (b != null) {
    ops.checkFloatAny(op, 'bias', b);
    ops.sameDevice(op, x, 'input', b, 'bias');
    if (b.ndim !== 1 || b.shape[0] !== oc) throw new RangeError(`${op}: expected bias of shape [${oc}], got [${b.shape.join(', ')}]`);
  }
  const oh = Math.floor((h + 2 * pH - dH * (kh - 1) - 1) / sH) + 1;
  const ow = Math.floor((wd + 2 * pW - dW * (kw - 1) - 1) / sW) + 1;
  if (oh < 1 || ow < 1)
    throw new RangeError(`${op}: the kernel (${kh}x${kw}, dilation ${dH}x${dW}) is larger than the padded input (${h + 2 * pH}x${wd + 2 * pW})`);
  const args = [n, c, h, wd, oc, kh, kw, sH, sW, pH, pW, dH, dW, groups] as const;
  if (x.device !== 'cpu') return conv2dCuda(x, w, b ?? null, [n, oc, oh, ow], args);
  let y: Tensor;
  if (deferrableConv(x, w, b ?? null, cg * kh * kw, n * oc * oh * ow)) {
    // Few taps per output and an output many times the input (a CNN's first layer): computed when
    // something first reads it, and a max pooling computes it plane by plane instead (see
    // maxPool2d). What it reads is copied now (a small fraction of the output), so that a later
    // in-place update of the weights or the input cannot change it.
    const info: DeferredConv = {
      x: f32(x).slice(), w: f32(w).slice(), b: b != null ? f32(b).slice() : null, args, weight: w, bias: b ?? null,
    };
    y = deferredComputedF32([n, oc, oh, ow], 'conv2d', info, (out) => N().conv2dForward(out, info.x, info.w, info.b, ...args));
  } else {
    y = empty32([n, oc, oh, ow]);
    if (y.size) N().conv2dForward(f32(y), f32(x), f32(w), b != null ? f32(b) : null, ...args);
  }
  const backward = (dy: Tensor, node: Node): (Tensor | null)[] => {
    const [xi, wi, bi] = node.inputs as [Tensor, Tensor, Tensor | null];
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (xi.requiresGrad) {
      dx = empty32(xi.shape);
      if (dx.size) N().conv2dBackwardData(f32(dx), f32(dy), f32(wi), ...args);
    }
    if (wi.requiresGrad || (bi && bi.requiresGrad)) {
      dw = empty32(wi.shape);
      db = bi ? empty32(bi.shape) : null;
      N().conv2dBackwardWeight(f32(dw), db ? f32(db) : null, f32(dy), f32(xi), ...args);
      if (!wi.requiresGrad) { dw.dispose(); dw = null; }
      if (db && !bi?.requiresGrad) { db.dispose(); db = null; }
    }
    return [dx, dw, db];
  };
  return record(y, 'conv2d', [x, w, b ?? null], { backward, args });
}

/** What a deferred convolution (conv2d) computes from: copies of its operands, and its sizes. */
interface DeferredConv {
  x: Float32Array;
  w: Float32Array;
  b: Float32Array | null;
  args: cu.ConvSizes;
  /** The weight and bias tensors: a fused pooling's gradient goes to them. */
  weight: Tensor;
  bias: Tensor | null;
}

/**
 * Whether conv2d defers its output (CPU): few taps per output (C/groups*KH*KW <= 32), an output of at
 * least 64K elements and 4x the input, and an input that takes no gradient (the fused pooling's
 * backward gives the weights' and the bias's only).
 */
function deferrableConv(x: Tensor, w: Tensor, b: Tensor | null, taps: number, outSize: number): boolean {
  return taps <= 32 && outSize >= 65536 && outSize >= 4 * x.size && x.dtype === 'float32' && w.dtype === 'float32' &&
    (b === null || b.dtype === 'float32') && !(x.requiresGrad && isGradEnabled());
}

/** conv2d on a CUDA device (cuda/conv.cu), its backward beside it. */
function conv2dCuda(x: Tensor, w: Tensor, b: Tensor | null, outShape: number[], args: cu.ConvSizes): Tensor {
  const op = 'conv2d';
  const y = cu.conv2dForward(x, w, b, outShape, args, op);
  const backward = (dy: Tensor, node: Node): (Tensor | null)[] => {
    const [xi, wi, bi] = node.inputs as [Tensor, Tensor, Tensor | null];
    const dx = xi.requiresGrad ? cu.conv2dBackwardData(dy, wi, xi.shape, args, 'backward') : null;
    let dw: Tensor | null = null, db: Tensor | null = null;
    if (wi.requiresGrad || (bi && bi.requiresGrad)) {
      [dw, db] = cu.conv2dBackwardWeight(dy, xi, wi.shape, bi !== null, args, 'backward');
      if (!wi.requiresGrad) { dw.dispose(); dw = null; }
      if (db && !bi?.requiresGrad) { db.dispose(); db = null; }
    }
    return [dx, dw, db];
  };
  return record(y, 'conv2d', [x, w, b], { backward });
}

// ---------------------------------------------------------------------------------------------
// pooling

/** Options of {@link maxPool2d} and {@link avgPool2d}. */
export interface Pool2dOptions {
  /** Window size (KH = KW, or [KH, KW]). */
  kernelSize: Pair;
  /** Step of the window (default: kernelSize). */
  stride?: Pair;
  /** Implicit padding on each side, at most half the kernel (default 0). */
  padding?: Pair;
  /** Spacing between window elements (default 1; avgPool2d ignores it). */
  dilation?: Pair;
  /** Use ceil instead of floor for the output size (default false). */
  ceilMode?: boolean;
  /** avgPool2d: count the zero padding in the divisor (default true). */
  countIncludePad?: boolean;
}

function poolParams(op: string, x: Tensor, opts: Pool2dOptions | number) {
  const o: Pool2dOptions = typeof opts === 'number' ? { kernelSize: opts } : opts;
  if (typeof o !== 'object' || o === null) throw new TypeError(`${op}: options must be an object, got ${describe(opts)}`);
  const [kH, kW] = pair(op, 'kernelSize', o.kernelSize, NaN, 1);
  const [sH, sW] = o.stride === undefined || o.stride === null ? [kH, kW] : pair(op, 'stride', o.stride, 1, 1);
  const [pH, pW] = pair(op, 'padding', o.padding, 0, 0);
  const [dH, dW] = pair(op, 'dilation', o.dilation, 1, 1);
  if (pH > kH / 2 || pW > kW / 2)
    throw new RangeError(`${op}: padding (${pH}, ${pW}) must be at most half the kernel size (${kH}, ${kW})`);
  const ceil = o.ceilMode ?? false;
  const [, , h, w] = x.shape;
  const oh = N().pool2dOutputSize(h, kH, sH, pH, dH, ceil);
  const ow = N().pool2dOutputSize(w, kW, sW, pW, dW, ceil);
  if (oh < 1 || ow < 1) throw new RangeError(`${op}: output size would be ${oh}x${ow} for input ${h}x${w}; the window is too large`);
  return { kH, kW, sH, sW, pH, pW, dH, dW, ceil, oh, ow, countIncludePad: o.countIncludePad ?? true };
}

/**
 * Max pooling of (N, C, H, W) to (N, C, H_out, W_out); a number is taken as `kernelSize`, `stride`
 * defaults to `kernelSize`. TypeError for a non-float32 input, RangeError for rank != 4, padding above
 * half the kernel, or a window larger than the padded input.
 */
export function maxPool2d(x: Tensor, opts: Pool2dOptions | number): Tensor {
  const op = 'maxPool2d';
  check4dAny(op, x);
  const p = poolParams(op, x, opts);
  const [n, c, h, w] = x.shape;
  if (x.device !== 'cpu') {
    const args = [p.kH, p.kW, p.sH, p.sW, p.pH, p.pW, p.dH, p.dW, p.ceil];
    const { y: yc, indices } = cu.maxPool2dForward(x, [n, c, p.oh, p.ow], args, op);
    const bwd = (dy: Tensor): (Tensor | null)[] => [cu.maxPool2dBackward(dy, indices, x.shape, args, 'backward')];
    return record(yc, 'maxPool2d', [x], { backward: bwd }, [indices]);
  }
  const y = empty32([n, c, p.oh, p.ow]);
  const idx = uninitializedI32(y.shape);  // every index is written by the kernel
  const fused = poolDeferredConv(x, y, idx, p);
  if (fused !== null) return fused;
  // Max pooling of a ReLU's output (conv -> relu -> pool), dilation 1. Forward: a ReLU not yet
  // computed (ops.relu defers it) is applied to each tap as it is read, in the same pass (values
  // and indices bit-identical to pooling relu(z)). Backward: max(relu(z)) = relu(max(z)), so the
  // gradient with respect to z is this pooling's scatter of dy masked by y > 0 (a window whose
  // maximum is 0 had a ReLU at 0 or below at its winner). The node takes z as its input: the ReLU's
  // own backward (a pass over the full-size tensor into a buffer of its size) runs only for other
  // consumers of its output. With dilation, a window can lie wholly in the padding, keep -inf, and
  // pass its gradient to a clamped position whose ReLU may be active: those take the plain path.
  const relu = x._node !== null && x._node.op === 'unary' && x._node.saved.code === ops.UNARY.relu &&
    !x._node.freed && p.dH === 1 && p.dW === 1 ? x._node : null;
  const src = relu !== null ? x._deferredSource('relu') : null;
  if (y.size) N().maxPool2dForward(f32(y), idx._data as Int32Array, src ?? f32(x), n, c, h, w, p.kH, p.kW, p.sH, p.sW, p.pH, p.pW, p.dH, p.dW, p.ceil, src !== null);
  // The pooled tensor itself (z below) is a CPU convolution's output: the backward from the winners.
  const z = relu !== null ? relu.inputs[0] as Tensor : x;
  const winners = poolConvWinners(z, y, idx, p, relu !== null);
  if (winners !== null) return winners;
  if (relu !== null) {
    const backward = (dy: Tensor): (Tensor | null)[] => {
      const dz = empty32(z.shape);
      if (dy.size) N().maxPool2dBackward(f32(dz), f32(dy), idx._data as Int32Array, n, c, h, w, p.oh, p.ow, f32(y));
      return [dz];
    };
    return record(y, 'maxPool2d', [z], { backward }, [idx]);
  }
  const backward = (dy: Tensor): (Tensor | null)[] => {
    const dx = empty32(x.shape);
    if (dy.size) N().maxPool2dBackward(f32(dx), f32(dy), idx._data as Int32Array, n, c, h, w, p.oh, p.ow);
    return [dx];
  };
  return record(y, 'maxPool2d', [x], { backward }, [idx]);
}

/**
 * Max pooling of a deferred convolution's output (see conv2d), directly or through a deferred ReLU
 * (without dilation, as the ReLU path below): the convolution is computed plane by plane into a
 * buffer and pooled there (tsm_conv2d_max_pool2d_forward), so its output is never written; the node
 * takes the convolution's weight and bias as inputs, and its backward gives their gradients straight
 * from dy and the indices (the gradient with respect to the convolution's output is never formed).
 * The convolution's and the ReLU's nodes stay as they are, for any other consumer of their outputs.
 * Null when the input is not such an output.
 */
function poolDeferredConv(x: Tensor, y: Tensor, idx: Tensor, p: ReturnType<typeof poolParams>): Tensor | null {
  const throughRelu = p.dH === 1 && p.dW === 1 ? x._deferredInfo('conv2d', 'relu') : null;
  const info = (throughRelu ?? x._deferredInfo('conv2d')) as DeferredConv | null;
  if (info === null) return null;
  const relu = throughRelu !== null;
  // Recorded by autograd: the ReLU's node (when there is one) and the convolution's, whose inputs the
  // gradient skips to. Without a node (recorded under noGrad) the output takes no gradient: only the
  // forward here.
  let tracked = false;
  if (x._node !== null) {
    const n = x._node;
    if (relu && (n.op !== 'unary' || n.saved.code !== ops.UNARY.relu || n.freed)) return null;
    const z = relu ? n.inputs[0] as Tensor : x;
    if (z._node === null || z._node.op !== 'conv2d' || z._node.freed) return null;
    tracked = true;
  }
  const a = info.args;
  N().conv2dMaxPool2dForward(f32(y), idx._data as Int32Array, info.x, info.w, info.b, ...a, p.kH, p.kW, p.sH, p.sW,
    p.pH, p.pW, p.dH, p.dW, p.ceil, relu);
  if (!tracked) {
    idx.dispose();
    return y;
  }
  const { weight, bias } = info;
  const backward = (dy: Tensor): (Tensor | null)[] => {
    const dw = empty32(weight.shape);
    const db = bias !== null && bias.requiresGrad ? empty32(bias.shape) : null;
    N().conv2dMaxPool2dBackward(null, f32(dw), db !== null ? f32(db) : null, f32(dy), relu ? f32(y) : null,
      idx._data as Int32Array, info.x, null, ...a, p.oh, p.ow);
    if (weight.requiresGrad) return [dw, db];
    dw.dispose();
    return [null, db];
  };
  return record(y, 'maxPool2d', [weight, bias], { backward }, [idx]);
}

/**
 * The node of maxPool2d when the tensor it pooled, z (directly, or through the ReLU of the path
 * above: relu), is a CPU convolution's output, the pooling keeps at most half of its elements, the
 * patch rows are at least 12 floats (C/groups*KW; with fewer, the composed backward was as fast on
 * AVX-512) and there are at least as many images as threads: the node takes the convolution's input,
 * weight and bias as its inputs, and its backward (tsm_conv2d_max_pool2d_backward) takes each pooled
 * gradient straight to their gradients from the patch under its winner, so the gradient with respect
 * to z is never formed and the work is the winners' (a quarter of z's elements under a 2x2 pooling,
 * and only those with a gradient) rather than every element's. The convolution's and the ReLU's
 * nodes stay as they are, for any other consumer of their outputs. Null otherwise (y, idx computed).
 */
function poolConvWinners(z: Tensor, y: Tensor, idx: Tensor, p: ReturnType<typeof poolParams>, relu: boolean): Tensor | null {
  const conv = z._node;
  if (y.size === 0 || conv === null || conv.op !== 'conv2d' || conv.freed || conv.saved.args === undefined) return null;
  const args = conv.saved.args as cu.ConvSizes;
  const [cx, cw, cb] = conv.inputs as [Tensor, Tensor, Tensor | null];
  const [n, c, , , , , kw, , , , , , , groups] = args;
  const [, , oh, ow] = z.shape;
  // The kernel splits its work by image: with fewer images than threads some would sit idle (one
  // 56x56 image of 64 channels: 2.4 ms against 1.5 composed, 2 threads).
  if (2 * p.oh * p.ow > oh * ow || (c / groups) * kw < 12 || n < N().getNumThreads()) return null;
  const backward = (dy: Tensor): (Tensor | null)[] => {
    const dx = cx.requiresGrad ? empty32(cx.shape) : null;
    const dw = cw.requiresGrad ? empty32(cw.shape) : null;
    const db = cb !== null && cb.requiresGrad ? empty32(cb.shape) : null;
    N().conv2dMaxPool2dBackward(dx && f32(dx), dw && f32(dw), db && f32(db), f32(dy), relu ? f32(y) : null,
      idx._data as Int32Array, dw ? f32(cx) : null, dx ? f32(cw) : null, ...args, p.oh, p.ow);
    return [dx, dw, db];
  };
  return record(y, 'maxPool2d', [cx, cw, cb], { backward }, [idx]);
}

/** Average pooling of (N, C, H, W) to (N, C, H_out, W_out); same options and errors as {@link maxPool2d}. */
export function avgPool2d(x: Tensor, opts: Pool2dOptions | number): Tensor {
  const op = 'avgPool2d';
  check4dAny(op, x);
  const p = poolParams(op, x, opts);
  const [n, c, h, w] = x.shape;
  if (x.device !== 'cpu') {
    const args = [p.kH, p.kW, p.sH, p.sW, p.pH, p.pW, p.ceil, p.countIncludePad];
    const yc = cu.avgPool2dForward(x, [n, c, p.oh, p.ow], args, op);
    const bwd = (dy: Tensor): (Tensor | null)[] => [cu.avgPool2dBackward(dy, x.shape, args, 'backward')];
    return record(yc, 'avgPool2d', [x], { backward: bwd });
  }
  const y = empty32([n, c, p.oh, p.ow]);
  if (y.size) N().avgPool2dForward(f32(y), f32(x), n, c, h, w, p.kH, p.kW, p.sH, p.sW, p.pH, p.pW, p.ceil, p.countIncludePad);
  const backward = (dy: Tensor): (Tensor | null)[] => {
    const dx = empty32(x.shape);
    if (dy.size) N().avgPool2dBackward(f32(dx), f32(dy), n, c, h, w, p.kH, p.kW, p.sH, p.sW, p.pH, p.pW, p.ceil, p.countIncludePad);
    return [dx];
  };
  return record(y, 'avgPool2d', [x], { backward });
}

/** Average pooling of (N, C, H, W) to (N, C, oh, ow) with windows chosen as PyTorch's adaptive_avg_pool2d. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  const op = 'adaptiveAvgPool2d';
  check4dAny(op, x);
  const [oh, ow] = pair(op, 'outputSize', outputSize, NaN, 1);
  const [n, c, h, w] = x.shape;
  if (n * c * oh * ow > 2 ** 31 - 1) throw new RangeError(`${op}: output [${n}, ${c}, ${oh}, ${ow}] has more than 2^31-1 elements`);
  if (x.device !== 'cpu') {
    // cuda/adaptive_pool.cu: the CPU's windows and float sums (bit-identical), backward a gather.
    const yc = cn.adaptiveAvgPool2dForward(x, oh, ow, op);
    const bwd = (dy: Tensor): (Tensor | null)[] => [cn.adaptiveAvgPool2dBackward(dy, x.shape, 'backward')];
    return record(yc, 'adaptiveAvgPool2d', [x], { backward: bwd });
  }
  const y = empty32([n, c, oh, ow]);
  if (y.size) N().adaptiveAvgPool2dForward(f32(y), f32(x), n, c, h, w, oh, ow);
  const backward = (dy: Tensor): (Tensor | null)[] => {
    const dx = empty32(x.shape);
    if (dy.size) N().adaptiveAvgPool2dBackward(f32(dx), f32(dy), n, c, h, w, oh, ow);
    return [dx];
  };
  return record(y, 'adaptiveAvgPool2d', [x], { backward });
}

// ---------------------------------------------------------------------------------------------
// dropout, normalisation, embedding

/** Zeroes elements with probability p and scales the rest by 1/(1-p) (identity when !training). */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  ops.checkFloatAny('dropout', 'input', x);
  checkNumber('dropout', 'p', p, 0, 1);
  if (!training || p === 0) return ops.clone(x);
  if (x.device !== 'cpu') {
    // cuda/dropout.cu draws the CPU's Philox stream: the same (seed, offset) gives the same mask.
    const [s, o] = ops.nextRng(x.size);
    const { y: yc, mask: mc } = cn.dropoutForward(x, p, s, o, 'dropout');
    return record(yc, 'dropout', [x], { mask: mc }, [mc]);
  }
  const y = empty32(x.shape);
  const mask = empty32(x.shape);
  const [seed, offset] = ops.nextRng(x.size);
  if (x.size) N().dropoutForward(f32(y), f32(mask), f32(x), p, seed, offset);
  return record(y, 'dropout', [x], { mask }, [mask]);
}

/** Layer normalisation over the trailing dims given by normalizedShape. */
export function layerNorm(x: Tensor, normalizedShape: number[] | number, w?: Tensor | null, b?: Tensor | null, eps = 1e-5): Tensor {
  const op = 'layerNorm';
  ops.checkFloatAny(op, 'input', x);
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
  if (!Array.isArray(ns) || ns.length === 0 || ns.length > x.ndim || ns.some((d, i) => d !== x.shape[x.ndim - ns.length + i]))
    throw new RangeError(`${op}: normalizedShape ${describe(normalizedShape)} must match the trailing dims of input shape [${x.shape.join(', ')}]`);
  const cols = sizeOf(ns), rows = x.size / Math.max(cols, 1);
  for (const [name, t] of [['weight', w], ['bias', b]] as const) {
    if (t == null) continue;
    ops.checkFloatAny(op, name, t);
    ops.sameDevice(op, x, 'input', t, name);
    if (t.size !== cols)
      throw new RangeError(`${op}: ${name} must have ${cols} elements (shape [${ns.join(', ')}]), got shape [${t.shape.join(', ')}]`);
  }
  if (!(typeof eps === 'number' && eps >= 0)) throw new RangeError(`${op}: eps must be a number >= 0, got ${describe(eps)}`);
  if (x.device !== 'cpu') return layerNormCuda(x, w ?? null, b ?? null, rows, cols, eps);
  const y = empty32(x.shape);
  const mean = empty32([rows]), rstd = empty32([rows]);
  if (x.size) N().layerNormForward(f32(y), f32(mean), f32(rstd), f32(x), w ? f32(w) : null, b ? f32(b) : null, rows, cols, eps);
  const backward = (dy: Tensor): (Tensor | null)[] => {
    const dx = empty32(x.shape);
    const dw = w ? empty32(w.shape) : null, db = b ? empty32(b.shape) : null;
    if (x.size) N().layerNormBackward(f32(dx), dw ? f32(dw) : null, db ? f32(db) : null, f32(dy), f32(x), f32(mean), f32(rstd), w ? f32(w) : null, rows, cols);
    return [dx, dw, db];
  };
  return record(y, 'layerNorm', [x, w ?? null, b ?? null], { backward }, [mean, rstd]);
}

/** layerNorm on a CUDA device (cuda/norm.cu); gradients only for the inputs that require them. */
function layerNormCuda(x: Tensor, w: Tensor | null, b: Tensor | null, rows: number, cols: number, eps: number): Tensor {
  const op = 'layerNorm';
  const { y, mean, rstd } = cn.layerNormForward(x, w, b, rows, cols, eps, op);
  const backward = (dy: Tensor, node: Node): (Tensor | null)[] => {
    const [xi, wi, bi] = node.inputs as [Tensor, Tensor | null, Tensor | null];
    return cn.layerNormBackward(dy, xi, mean, rstd, wi, rows, cols,
      [xi.requiresGrad, !!wi?.requiresGrad, !!bi?.requiresGrad], wi ? wi.shape : null, bi ? bi.shape : null, 'backward');
  };
  return record(y, 'layerNorm', [x, w, b], { backward }, [mean, rstd]);
}

/** Options of {@link batchNorm}. */
export interface BatchNormOptions {
  /** Use batch statistics and update the running ones (default true); false uses the running statistics. */
  training?: boolean;
  /** Weight of the batch statistic in the running update (default 0.1). */
  momentum?: number;
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /**
   * An int32 tensor of one element on the input's device, incremented by one when training
   * (nn.BatchNorm2d's `num_batches_tracked`; on a CUDA device the kernel increments it, no read-back).
   */
  numBatchesTracked?: Tensor | null;
}

/** Batch normalisation over (N, C, ...) per channel; running stats updated in place when training. */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, w?: Tensor | null,
                          b?: Tensor | null, opts: BatchNormOptions = {}): Tensor {
  const op = 'batchNorm';
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  ops.checkFloatAny(op, 'input', x);
  if (x.ndim < 2) throw new RangeError(`${op}: expected input of rank >= 2 (N, C, ...), got shape [${x.shape.join(', ')}]`);
  const training = opts.training ?? true;
  const [n, c] = x.shape;
  const hw = sizeOf(x.shape.slice(2));
  for (const [name, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', w], ['bias', b]] as const) {
    if (t == null) continue;
    ops.checkFloatAny(op, name, t);
    ops.sameDevice(op, x, 'input', t, name);
    if (t.size !== c) throw new RangeError(`${op}: ${name} must have ${c} elements, got shape [${t.shape.join(', ')}]`);
  }
  if (!training && (!runningMean || !runningVar)) throw new RangeError(`${op}: evaluation mode needs runningMean and runningVar`);
  if (training && n * hw <= 1) throw new RangeError(`${op}: training needs more than one value per channel, got input shape [${x.shape.join(', ')}]`);
  const momentum = checkNumber(op, 'momentum', opts.momentum ?? 0.1, 0, 1);
  const eps = checkNumber(op, 'eps', opts.eps ?? 1e-5, 0);
  const nbt = opts.numBatchesTracked ?? null;
  if (nbt !== null) {
    ops.checkAny(op, 'numBatchesTracked', nbt);
    if (nbt.dtype !== 'int32' || nbt.size !== 1)
      throw new TypeError(`${op}: numBatchesTracked must be an int32 tensor of one element, got ${nbt.dtype} of shape [${nbt.shape.join(', ')}]`);
    ops.sameDevice(op, x, 'input', nbt, 'numBatchesTracked');
  }
  if (x.device !== 'cpu') return batchNormCuda(x, runningMean, runningVar, w ?? null, b ?? null, n, c, hw, training, momentum, eps, nbt);
  if (training && nbt) (nbt._data as Int32Array)[0]++;
  const y = empty32(x.shape);
  const sm = empty32([c]), si = empty32([c]);
  N().batchNormForward(f32(y), f32(sm), f32(si), runningMean ? f32(runningMean) : null, runningVar ? f32(runningVar) : null,
    f32(x), w ? f32(w) : null, b ? f32(b) : null, n, c, hw, training, momentum, eps);
  const backward = (dy: Tensor): (Tensor | null)[] => {
    const dx = empty32(x.shape);
    const dw = w ? empty32(w.shape) : null, db = b ? empty32(b.shape) : null;
    N().batchNormBackward(f32(dx), dw ? f32(dw) : null, db ? f32(db) : null, f32(dy), f32(x), f32(sm), f32(si), w ? f32(w) : null, n, c, hw, training);
    return [dx, dw, db];
  };
  return record(y, 'batchNorm', [x, w ?? null, b ?? null], { backward }, [sm, si]);
}

/** batchNorm on a CUDA device (cuda/norm.cu): running stats and the counter updated on the device. */
function batchNormCuda(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, w: Tensor | null, b: Tensor | null,
                       n: number, c: number, hw: number, training: boolean, momentum: number, eps: number,
                       nbt: Tensor | null): Tensor {
  const op = 'batchNorm';
  const { y, saveMean, saveInvstd } = cn.batchNormForward(x, runningMean, runningVar, w, b, n, c, hw, training, momentum,
    eps, nbt, op);
  const backward = (dy: Tensor, node: Node): (Tensor | null)[] => {
    const [xi, wi, bi] = node.inputs as [Tensor, Tensor | null, Tensor | null];
    return cn.batchNormBackward(dy, xi, saveMean, saveInvstd, wi, n, c, hw, training,
      [xi.requiresGrad, !!wi?.requiresGrad, !!bi?.requiresGrad], wi ? wi.shape : null, bi ? bi.shape : null, 'backward');
  };
  return record(y, 'batchNorm', [x, w, b], { backward }, [saveMean, saveInvstd]);
}

/** Rows of weight selected by int32 indices: out shape = [...indices.shape, dim]. */
export function embedding(indices: Tensor, weight: Tensor, paddingIdx: number | null = null): Tensor {
  const op = 'embedding';
  ops.checkAny(op, 'indices', indices);
  if (indices.dtype !== 'int32') throw new TypeError(`${op}: indices must be an int32 tensor, got ${indices.dtype}`);
  ops.checkFloatAny(op, 'weight', weight);
  ops.sameDevice(op, weight, 'weight', indices, 'indices');
  if (weight.ndim !== 2) throw new RangeError(`${op}: expected weight of rank 2 (num, dim), got shape [${weight.shape.join(', ')}]`);
  const [num, dim] = weight.shape;
  if (paddingIdx !== null && (!Number.isInteger(paddingIdx) || paddingIdx < 0 || paddingIdx >= num))
    throw new RangeError(`${op}: paddingIdx must be null or an integer in [0, ${num}), got ${describe(paddingIdx)}`);
  if (weight.device !== 'cpu') return embeddingCuda(indices, weight, paddingIdx);
  const idx = indices._data as Int32Array;
  const y = empty32([...indices.shape, dim]);
  for (let i = 0; i < idx.length; i++)
    if (idx[i] < 0 || idx[i] >= num) throw new RangeError(`${op}: index ${idx[i]} at position ${i} is out of range [0, ${num})`);
  if (y.size) N().embeddingForward(f32(y), idx, f32(weight), num, dim);
  const backward = (dy: Tensor): (Tensor | null)[] => {
    const dw = empty32(weight.shape);
    N().embeddingBackward(f32(dw), f32(dy), idx, num, dim, paddingIdx ?? -1);
    return [null, dw];
  };
  return record(y, 'embedding', [null, weight], { backward });
}

/**
 * embedding on a CUDA device (cuda/embedding.cu). Device indices are not read back to be
 * range-checked (that needs a synchronisation every step): an index outside [0, num) gives a NaN
 * output row and contributes no gradient. The backward sorts the positions by row on the device and
 * sums each row's gradients in position order (the CPU's sums, no atomics). The indices are cloned
 * for the backward (the caller may dispose theirs before it runs).
 */
function embeddingCuda(indices: Tensor, weight: Tensor, paddingIdx: number | null): Tensor {
  const op = 'embedding';
  const y = cn.embeddingForward(indices, weight, op);
  const keepIdx = isGradEnabled() && weight.requiresGrad ? cu.clone(indices, op) : null;
  const backward = (dy: Tensor): (Tensor | null)[] =>
    [null, cn.embeddingBackward(dy, keepIdx as Tensor, weight.shape, paddingIdx ?? -1, 'backward')];
  return record(y, 'embedding', [null, weight], { backward }, keepIdx ? [keepIdx] : []);
}

// ---------------------------------------------------------------------------------------------
// losses

/** How a loss reduces per-element values: mean (default), sum, or none (unreduced). */
export type Reduction = 'mean' | 'sum' | 'none';

/** Validates a loss `reduction` (undefined gives 'mean'); RangeError for another value. */
function checkReduction(op: string, r: unknown): Reduction {
  if (r === undefined) return 'mean';
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new RangeError(`${op}: reduction must be 'mean', 'sum' or 'none', got ${describe(r)}`);
  return r;
}

/** Options of {@link crossEntropy}, as `torch.nn.functional.cross_entropy`. */
export interface CrossEntropyOptions {
  /** 'mean' (default, over non-ignored targets), 'sum' or 'none'. */
  reduction?: Reduction;
  /** Target value that contributes neither loss nor gradient (default -100). */
  ignoreIndex?: number;
  /** Mix of the uniform distribution into the target, in [0, 1] (default 0). */
  labelSmoothing?: number;
}

/**
 * Softmax cross-entropy from logits (N, C) or (N, C, d1, ...) and int32 class targets (N) / (N, d1...).
 * Fused: one native pass computes log-softmax and the loss; the backward is softmax - target.
 * On a CUDA device (logits and target on the same one) the reduction runs there too; device targets
 * are not read back to be range-checked, so an out-of-range target gives a NaN loss for its row
 * (CPU targets: a RangeError naming the position).
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  ops.checkFloatAny(op, 'input', logits);
  ops.checkAny(op, 'target', target);
  if (target.dtype !== 'int32') throw new TypeError(`${op}: target must be an int32 tensor of class indices, got ${target.dtype}`);
  ops.sameDevice(op, logits, 'input', target, 'target');
  if (logits.ndim < 1) throw new RangeError(`${op}: expected input of rank >= 1, got a 0-d tensor`);
  const reduction = checkReduction(op, opts.reduction);
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const smoothing = checkNumber(op, 'labelSmoothing', opts.labelSmoothing ?? 0, 0, 1);
  // Move the class dim last: (N, C, d...) -> (N, d..., C).
  let x = logits;
  let moved = false;
  if (logits.ndim === 1) x = logits._view([1, logits.shape[0]]);
  else if (logits.ndim > 2) {
    const perm = [0, ...Array.from({ length: logits.ndim - 2 }, (_, i) => i + 2), 1];
    x = ops.permute(logits, perm);
    moved = true;
  }
  const c = x.shape[x.ndim - 1];
  const rows = x.size / Math.max(c, 1);
  const expectTarget = logits.ndim === 1 ? [] : [logits.shape[0], ...logits.shape.slice(2)];
  if (target.shape.join(',') !== expectTarget.join(','))
    throw new RangeError(`${op}: expected target of shape [${expectTarget.join(', ')}] for input [${logits.shape.join(', ')}], got [${target.shape.join(', ')}]`);
  if (logits.device !== 'cpu')
    return crossEntropyCuda(logits, x, moved, target, rows, c, expectTarget, ignoreIndex, smoothing, reduction);
  const t = target._data as Int32Array;
  for (let i = 0; i < t.length; i++)
    if (t[i] !== ignoreIndex && (t[i] < 0 || t[i] >= c)) throw new RangeError(`${op}: target ${t[i]} at position ${i} is out of range [0, ${c})`);
  const losses = empty32([rows]);
  const logProbs = empty32([rows, c]);
  N().crossEntropyForward(f32(losses), f32(logProbs), f32(x), t, rows, c, ignoreIndex, smoothing);
  let count = 0;
  for (let i = 0; i < t.length; i++) if (t[i] !== ignoreIndex) count++;
  const saveFor = isGradEnabled() && logits.requiresGrad;
  const backward = (dy: Tensor): (Tensor | null)[] => {
    // dy has the output's shape; expand it to per-row loss gradients.
    const dl = new Float32Array(rows);
    const g = f32(dy);
    if (reduction === 'none') dl.set(g);
    else dl.fill(reduction === 'mean' ? g[0] / Math.max(count, 1) : g[0]);
    const dx = empty32([rows, c]);
    N().crossEntropyBackward(f32(dx), f32(logProbs), t, dl, rows, c, ignoreIndex, smoothing);
    if (!moved) {
      const r = dx._view(logits.shape);
      dx.dispose();
      return [r];
    }
    const shaped = dx._view(x.shape);
    dx.dispose();
    const perm = [0, logits.ndim - 1, ...Array.from({ length: logits.ndim - 2 }, (_, i) => i + 1)];
    const back = ops.permute(shaped, perm);
    shaped.dispose();
    return [back];
  };
  let out: Tensor;
  const ld = f32(losses);
  if (reduction === 'none') out = losses._view(expectTarget);
  else {
    let s = 0;
    for (let i = 0; i < ld.length; i++) s += ld[i];
    out = fromData(Float32Array.of(reduction === 'mean' ? (count ? s / count : NaN) : s), []);
  }
  losses.dispose();
  if (x !== logits) x.dispose();
  if (!saveFor) logProbs.dispose();
  return record(out, 'crossEntropy', [logits], { backward }, saveFor ? [logProbs] : []);
}

/**
 * crossEntropy on a CUDA device (cuda/cross_entropy.cu): the loss, its reduction and the backward on
 * the device, no synchronisation. `x` is logits with the class dim last (a copy when `moved`).
 * Targets on the device are not range-checked (that would read them back every step): a target
 * outside [0, C) that is not ignoreIndex gives a NaN loss for its row.
 */
function crossEntropyCuda(logits: Tensor, x: Tensor, moved: boolean, target: Tensor, rows: number, c: number,
                          expectTarget: number[], ignoreIndex: number, smoothing: number, reduction: Reduction): Tensor {
  const op = 'crossEntropy';
  if (c < 1) throw new RangeError(`${op}: expected at least one class, got input of shape [${logits.shape.join(', ')}]`);
  if (!Number.isSafeInteger(ignoreIndex)) throw new TypeError(`${op}: ignoreIndex must be an integer, got ${describe(ignoreIndex)}`);
  const r = cu.crossEntropyForward(x, target, rows, c, ignoreIndex, smoothing, reduction, op);
  if (x !== logits) x.dispose();
  const saveFor = isGradEnabled() && logits.requiresGrad;
  const out = reduction === 'none' ? r.losses._view(expectTarget) : (r.out as Tensor);
  if (reduction !== 'none') r.losses.dispose();
  // The target is cloned for the backward (the caller may dispose theirs before it runs).
  const tk = saveFor ? cu.clone(target, op) : null;
  const backward = (dy: Tensor): (Tensor | null)[] => {
    const dx = cu.crossEntropyBackward(r.logProbs, tk as Tensor, dy, r.count, rows, c, ignoreIndex, smoothing, reduction,
      'backward');
    if (!moved) {
      const v = dx._view(logits.shape);
      dx.dispose();
      return [v];
    }
    const shaped = dx._view([logits.shape[0], ...logits.shape.slice(2), c]);
    dx.dispose();
    const perm = [0, logits.ndim - 1, ...Array.from({ length: logits.ndim - 2 }, (_, i) => i + 1)];
    const back = ops.permute(shaped, perm);
    shaped.dispose();
    return [back];
  };
  const owned = [r.logProbs, ...(r.count ? [r.count] : []), ...(tk ? [tk] : [])];
  if (reduction === 'none' && out !== r.losses) r.losses.dispose();
  return record(out, 'crossEntropy', [logits], { backward }, owned);
}

// Composite losses keep their intermediates: autograd needs them, and tidy() or the garbage
// collector frees them with the step.
function reduce(op: string, t: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return t;
  return reduction === 'mean' ? ops.mean(t) : ops.sum(t);
}

/** As checkSameShape, for losses built from ops that run on any device (both on the same one). */
function checkSameShapeAny(op: string, input: Tensor, target: Tensor): void {
  ops.checkFloatAny(op, 'input', input);
  ops.checkAny(op, 'target', target);
  if (target.dtype !== 'float32') throw new TypeError(`${op}: target must be a float32 tensor, got ${target.dtype}`);
  if (input.shape.join(',') !== target.shape.join(','))
    throw new RangeError(`${op}: target shape [${target.shape.join(', ')}] must match input shape [${input.shape.join(', ')}]`);
  ops.sameDevice(op, input, 'input', target, 'target');
}

function checkSameShape(op: string, input: Tensor, target: Tensor): void {
  checkF32(op, 'input', input);
  checkTensor(op, 'target', target);
  if (target.dtype !== 'float32') throw new TypeError(`${op}: target must be a float32 tensor, got ${target.dtype}`);
  if (input.shape.join(',') !== target.shape.join(','))
    throw new RangeError(`${op}: target shape [${target.shape.join(', ')}] must match input shape [${input.shape.join(', ')}]`);
}

/** Negative log-likelihood of log-probabilities (N, C) with int32 targets (N). */
export function nllLoss(logProbs: Tensor, target: Tensor, opts: { reduction?: Reduction; ignoreIndex?: number } = {}): Tensor {
  const op = 'nllLoss';
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  checkF32(op, 'input', logProbs);
  checkTensor(op, 'target', target);
  if (target.dtype !== 'int32') throw new TypeError(`${op}: target must be an int32 tensor, got ${target.dtype}`);
  if (logProbs.ndim !== 2 || target.ndim !== 1 || target.shape[0] !== logProbs.shape[0])
    throw new RangeError(`${op}: expected input (N, C) and target (N), got [${logProbs.shape.join(', ')}] and [${target.shape.join(', ')}]`);
  const reduction = checkReduction(op, opts.reduction);
  const ignore = opts.ignoreIndex ?? -100;
  const [n, c] = logProbs.shape;
  const t = target._data as Int32Array;
  const safe = new Int32Array(n);
  const keepMask = new Float32Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (t[i] === ignore) continue;
    if (t[i] < 0 || t[i] >= c) throw new RangeError(`${op}: target ${t[i]} at position ${i} is out of range [0, ${c})`);
    safe[i] = t[i];
    keepMask[i] = 1;
    count++;
  }
  const picked = ops.gather(logProbs, 1, fromData(safe, [n, 1]));
  const flat = picked.reshape([n]);
  const masked = ops.mul(flat, fromData(keepMask, [n]));
  const negd = ops.neg(masked);
  if (reduction === 'none') return negd;
  const s = ops.sum(negd);
  return reduction === 'sum' ? s : ops.div(s, Math.max(count, 1));
}

/** Mean squared error of same-shape float32 input and target; `reduction` 'mean' (default), 'sum' or 'none'. */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`mseLoss: opts must be an object, got ${describe(opts)}`);
  checkSameShapeAny('mseLoss', input, target);
  const sq = ops.square(ops.sub(input, target));
  return reduce('mseLoss', sq, checkReduction('mseLoss', opts.reduction));
}

/** Binary cross-entropy on probabilities; log terms are clamped at -100 as in PyTorch. */
export function binaryCrossEntropy(input: Tensor, target: Tensor, opts: { reduction?: Reduction; weight?: Tensor } = {}): Tensor {
  const op = 'binaryCrossEntropy';
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  if (input.device !== 'cpu' || target.device !== 'cpu') {
    checkSameShapeAny(op, input, target);
    const reduction = checkReduction(op, opts.reduction);
    let l = binaryCrossEntropyCuda(input, target);
    if (opts.weight) l = ops.mul(l, opts.weight);
    return reduce(op, l, reduction);
  }
  checkSameShape(op, input, target);
  const reduction = checkReduction(op, opts.reduction);
  const d = input._data as Float32Array;
  for (let i = 0; i < d.length; i++)
    if (!(d[i] >= 0 && d[i] <= 1)) throw new RangeError(`${op}: input values must be probabilities in [0, 1], got ${d[i]} at position ${i}`);
  // One fused elementwise pass (as PyTorch): the logs are clamped at -100 in the forward, and the
  // backward divides by max(p(1-p), 1e-12), so a saturated sigmoid (p exactly 0 or 1) gives a large
  // finite gradient instead of inf * 0 = NaN.
  const t = target._data as Float32Array;
  const n = d.length;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const logP = Math.max(Math.log(d[i]), -100), log1mP = Math.max(Math.log(1 - d[i]), -100);
    out[i] = -(t[i] * logP + (1 - t[i]) * log1mP);
  }
  const backward = (dy: Tensor): (Tensor | null)[] => {
    const g = dy._data as Float32Array;
    const gp = input.requiresGrad ? new Float32Array(n) : null;
    const gt = target.requiresGrad ? new Float32Array(n) : null;
    for (let i = 0; i < n; i++) {
      const p = d[i];
      if (gp) gp[i] = (g[i] * (p - t[i])) / Math.max(p * (1 - p), 1e-12);
      if (gt) gt[i] = g[i] * (Math.max(Math.log(1 - p), -100) - Math.max(Math.log(p), -100));
    }
    return [gp && fromData(gp, input.shape), gt && fromData(gt, target.shape)];
  };
  let l = record(fromData(out, input.shape), 'binaryCrossEntropy', [input, target], { backward });
  if (opts.weight) l = ops.mul(l, opts.weight);
  return reduce(op, l, reduction);
}

/**
 * binaryCrossEntropy on a CUDA device, composed of device ops (no kernel of its own): the CPU's
 * formulas in float32 (the CPU evaluates the logs in double: agreement to rounding). The forward is
 * computed without a graph and recorded as one node whose backward is PyTorch's
 * dy·(p − t) / max(p(1 − p), 1e-12), as the CPU's. The inputs are NOT checked to lie in [0, 1] (that
 * needs a read back every step, as cross-entropy's device targets): outside it the loss is NaN.
 */
function binaryCrossEntropyCuda(input: Tensor, target: Tensor): Tensor {
  const clampedLogs = (p: Tensor): [Tensor, Tensor] =>
    [ops.clamp(ops.log(p), -100, null), ops.clamp(ops.log(ops.sub(1, p)), -100, null)];
  const out = noGrad(() => tidy(() => {
    const [logP, log1mP] = clampedLogs(input);
    return ops.neg(ops.add(ops.mul(target, logP), ops.mul(ops.sub(1, target), log1mP)));
  }));
  const backward = (dy: Tensor): (Tensor | null)[] => noGrad(() => tidy(() => {
    const gp = input.requiresGrad
      ? ops.div(ops.mul(dy, ops.sub(input, target)), ops.clamp(ops.mul(input, ops.sub(1, input)), 1e-12, null)) : null;
    let gt: Tensor | null = null;
    if (target.requiresGrad) {
      const [logP, log1mP] = clampedLogs(input);
      gt = ops.mul(dy, ops.sub(log1mP, logP));
    }
    return [gp, gt];
  }));
  return record(out, 'binaryCrossEntropy', [input, target], { backward });
}

/** Numerically stable sigmoid + binary cross-entropy: max(x,0) - x*t + log(1 + exp(-|x|)). */
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor, opts: { reduction?: Reduction; posWeight?: Tensor } = {}): Tensor {
  const op = 'binaryCrossEntropyWithLogits';
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  checkSameShapeAny(op, input, target);
  const reduction = checkReduction(op, opts.reduction);
  if (opts.posWeight) {
    // (1 + (pw - 1) t) * softplus(-x) + (1 - t) * x
    const pwm1 = ops.sub(opts.posWeight, 1);
    const coef = ops.add(ops.mul(pwm1, target), 1);
    const sp = softplusNeg(input);
    const omt = ops.sub(1, target);
    const l = ops.add(ops.mul(coef, sp), ops.mul(omt, input));
    return reduce(op, l, reduction);
  }
  const relu = ops.relu(input);
  const xt = ops.mul(input, target);
  const sp = ops.log(ops.add(ops.exp(ops.neg(ops.abs(input))), 1));
  const l = ops.add(ops.sub(relu, xt), sp);
  return reduce(op, l, reduction);
}

/** log(1 + exp(-x)), stable. */
function softplusNeg(x: Tensor): Tensor {
  const r = ops.relu(ops.neg(x));
  return ops.add(r, ops.log(ops.add(ops.exp(ops.neg(ops.abs(x))), 1)));
}

export { checkReduction, normDim };
