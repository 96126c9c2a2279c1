// F.scaledDotProductAttention: the fused attention kernel (cpp/kernels/attention.cpp) with its
// native backward, PyTorch 2 semantics:
//
//   out = dropout(softmax(q k^T * scale + mask, dim=-1), dropoutP) v
//   q (B, H, Lq, D) or (N, Lq, D);  k, v (B, H, Lk, D) or (N, Lk, D);  out like q
//   attnMask broadcastable to (B, H, Lq, Lk): an int32 tensor is boolean (nonzero = attend, zero =
//   masked out, as PyTorch SDPA's bool mask); a float32 tensor is added to the scores.
//   isCausal: query i attends keys j <= i (top-left aligned, as PyTorch).
//   A query whose every key is masked gets a zero output and zero gradients (PyTorch gives NaN).
//
// The Lq x Lk score matrix is never materialised: the kernel keeps the log-sum-exp of each score
// row (B, H, Lq) and the backward recomputes the scores tile by tile.
// CUDA tensors go to lib/attention-cuda.ts after the same checks (the fused GPU kernel without a
// mask, composed device ops with one).
import type { Node } from './autograd';
import { record } from './autograd';
import { checkNumber, describe } from './check';
import type { OpName } from './gradients';
import { nativeAddon, type NativeAddon } from './native-api';
import * as ops from './ops';
import { scaledDotProductAttentionCuda } from './attention-cuda';
import { autocastAttention, autocastDtype } from './autocast';
import { checkAny, empty32, sameDevice } from './ops';
import { Tensor } from './tensor';

type F32 = Float32Array;
type Mask = Float32Array | Int32Array | Uint8Array | null;

/** The attention entry points of the addon (cpp/binding/ops_attention.cpp). */
export interface AttentionNative {
  attentionForward(out: F32, lse: F32, q: F32, k: F32, v: F32, mask: Mask, s0: number, s1: number, s2: number,
                   s3: number, B: number, H: number, Lq: number, Lk: number, D: number, scale: number,
                   isCausal: boolean, dropoutP: number, seed: number, offset: number): void;
  attentionBackward(dq: F32, dk: F32, dv: F32, dout: F32, q: F32, k: F32, v: F32, out: F32, lse: F32, mask: Mask,
                    s0: number, s1: number, s2: number, s3: number, B: number, H: number, Lq: number, Lk: number,
                    D: number, scale: number, isCausal: boolean, dropoutP: number, seed: number, offset: number): void;
  attentionForwardReference(out: F32, lse: F32, q: F32, k: F32, v: F32, mask: Mask, s0: number, s1: number,
                            s2: number, s3: number, B: number, H: number, Lq: number, Lk: number, D: number,
                            scale: number, isCausal: boolean, dropoutP: number, seed: number, offset: number): void;
}

/** @internal */
export const attentionNative = (): NativeAddon & AttentionNative => nativeAddon() as NativeAddon & AttentionNative;
const N = attentionNative;
const f32 = (t: Tensor) => t._data as Float32Array;

type GradRule = (dy: Tensor, node: Node) => (Tensor | null)[];
// The fused op keeps its backward on its node, like conv2d; gradients.ts dispatches to it.
const OP: OpName = 'attention';

/** Options of F.scaledDotProductAttention. */
export interface ScaledDotProductAttentionOptions {
  /** Broadcastable to (B, H, Lq, Lk): int32 = boolean (nonzero attends), float32 = added to the scores. */
  attnMask?: Tensor | null;
  /** Dropout probability on the attention weights (applied whenever > 0, as PyTorch). */
  dropoutP?: number;
  /** Query i attends keys j <= i. */
  isCausal?: boolean;
  /** Defaults to 1 / sqrt(D). */
  scale?: number | null;
}

const shapeStr = (t: Tensor) => `[${t.shape.join(', ')}]`;

/** Element strides of a mask broadcast to (B, H, Lq, Lk); throws when it does not broadcast. */
function maskStrides(op: string, m: Tensor, target: number[]): [number, number, number, number] {
  if (m.ndim < 2 || m.ndim > 4)
    throw new RangeError(`${op}: attnMask must have rank 2, 3 or 4 (broadcastable to (B, H, Lq, Lk) = [${target.join(', ')}]), got shape ${shapeStr(m)}`);
  const shape = [...new Array(4 - m.ndim).fill(1), ...m.shape];
  const st = [0, 0, 0, 0];
  let s = 1;
  for (let d = 3; d >= 0; d--) {
    if (shape[d] !== 1 && shape[d] !== target[d])
      throw new RangeError(`${op}: attnMask of shape ${shapeStr(m)} does not broadcast to (B, H, Lq, Lk) = [${target.join(', ')}]`);
    st[d] = shape[d] === 1 ? 0 : s;
    s *= shape[d];
  }
  return st as [number, number, number, number];
}

/**
 * Scaled dot-product attention, fused (flash-style) with a native backward. q (B,H,Lq,D) or
 * (N,Lq,D); k, v (B,H,Lk,D) or (N,Lk,D). Returns a tensor of q's shape.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: ScaledDotProductAttentionOptions = {}): Tensor {
  const op = 'scaledDotProductAttention';
  // Inside tsm.autocast on a CUDA device: the fused CUDA kernel in bfloat16/float16 (lib/autocast.ts).
  const lp = q instanceof Tensor && q.device !== 'cpu' ? autocastDtype(q.device) : null;
  const ac = lp ? autocastAttention(q, k, v, opts, lp) : null;
  if (ac) return ac;
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${opts}`);
  // Any device: CUDA tensors go to lib/attention-cuda.ts after the same checks.
  checkAny(op, 'query', q);
  checkAny(op, 'key', k);
  checkAny(op, 'value', v);
  sameDevice(op, q, 'query', k, 'key');
  sameDevice(op, q, 'query', v, 'value');
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: options must be an object, got ${describe(opts)}`);
  for (const [name, t] of [['query', q], ['key', k], ['value', v]] as const) {
    if (t.dtype !== 'float32') throw new TypeError(`${op}: ${name} must be a float32 tensor, got ${t.dtype}`);
    if (t.ndim !== 3 && t.ndim !== 4)
      throw new RangeError(`${op}: expected ${name} of rank 4 (B, H, L, D) or 3 (N, L, D), got shape ${shapeStr(t)}`);
  }
  if (k.ndim !== q.ndim || v.ndim !== q.ndim)
    throw new RangeError(`${op}: query, key and value must have the same rank, got shapes ${shapeStr(q)}, ${shapeStr(k)}, ${shapeStr(v)}`);
  const four = (t: Tensor) => (t.ndim === 4 ? t.shape.slice() : [t.shape[0], 1, t.shape[1], t.shape[2]]);
  const [B, H, Lq, D] = four(q);
  const [Bk, Hk, Lk, Dk] = four(k);
  const [Bv, Hv, Lv, Dv] = four(v);
  if (Bk !== B || Hk !== H || Dk !== D)
    throw new RangeError(`${op}: key of shape ${shapeStr(k)} does not match query of shape ${shapeStr(q)} (batch, heads and D must agree)`);
  if (Bv !== B || Hv !== H || Lv !== Lk || Dv !== D)
    throw new RangeError(`${op}: value of shape ${shapeStr(v)} must match key of shape ${shapeStr(k)} (a value dim different from D is not supported)`);
  const isCausal = opts.isCausal ?? false;
  if (typeof isCausal !== 'boolean') throw new TypeError(`${op}: isCausal must be a boolean, got ${describe(isCausal)}`);
  const dropoutP = opts.dropoutP ?? 0;
  checkNumber(op, 'dropoutP', dropoutP, 0, 1);
  if (dropoutP >= 1) throw new RangeError(`${op}: dropoutP must be < 1, got ${dropoutP}`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  checkNumber(op, 'scale', scale);
  const mask = opts.attnMask ?? null;
  let maskData: Mask = null;
  let st: [number, number, number, number] = [0, 0, 0, 0];
  if (mask !== null) {
    checkAny(op, 'attnMask', mask);
    sameDevice(op, q, 'query', mask, 'attnMask');
    if (mask.dtype !== 'float32' && mask.dtype !== 'int32')
      throw new TypeError(`${op}: attnMask must be int32 (boolean) or float32 (additive), got ${mask.dtype}`);
    st = maskStrides(op, mask, [B, H, Lq, Lk]);
    if (mask.device === 'cpu') maskData = mask._data as Float32Array | Int32Array;
  }
  if (q.device !== 'cpu') return scaledDotProductAttentionCuda(q, k, v, { B, H, Lq, Lk, D, scale, isCausal, dropoutP, mask });
  const y = empty32(q.shape);
  const lse = empty32([B, H, Lq]);
  const [seed, offset] = dropoutP > 0 ? ops.nextRng(B * H * Lq * Lk) : [0, 0];
  const tail = [B, H, Lq, Lk, D, scale, isCausal, dropoutP, seed, offset] as const;
  if (y.size) N().attentionForward(f32(y), f32(lse), f32(q), f32(k), f32(v), maskData, ...st, ...tail);
  const backward = (dy: Tensor, node: Node): (Tensor | null)[] => {
    const [qi, ki, vi] = node.inputs as [Tensor, Tensor, Tensor];
    const dq = empty32(qi.shape), dk = empty32(ki.shape), dv = empty32(vi.shape);
    N().attentionBackward(f32(dq), f32(dk), f32(dv), f32(dy), f32(qi), f32(ki), f32(vi), f32(y), f32(lse), maskData,
      ...st, ...tail);
    const out = [dq, dk, dv].map((g, i) => {
      if ((node.inputs[i] as Tensor).requiresGrad) return g;
      g.dispose();
      return null;
    });
    return out;
  };
  // The float mask gets no gradient (a constant here).
  return record(y, OP, [q, k, v], { backward }, [lse]);
}

/**
 * The slow reference forward (double accumulation, full score rows), for tests and benchmarks:
 * same arguments, no autograd.
 */
export function scaledDotProductAttentionReference(q: Tensor, k: Tensor, v: Tensor,
                                                   opts: ScaledDotProductAttentionOptions & { seed?: number; offset?: number } = {}): Tensor {
  const four = (t: Tensor) => (t.ndim === 4 ? t.shape.slice() : [t.shape[0], 1, t.shape[1], t.shape[2]]);
  const [B, H, Lq, D] = four(q);
  const Lk = four(k)[2];
  const mask = opts.attnMask ?? null;
  const st = mask ? maskStrides('scaledDotProductAttentionReference', mask, [B, H, Lq, Lk]) : [0, 0, 0, 0];
  const y = ops.zeros(q.shape.slice());
  const lse = ops.zeros([B, H, Lq]);
  N().attentionForwardReference(f32(y), f32(lse), f32(q), f32(k), f32(v), mask ? (mask._data as Float32Array | Int32Array) : null,
    st[0], st[1], st[2], st[3], B, H, Lq, Lk, D, opts.scale ?? 1 / Math.sqrt(D), opts.isCausal ?? false, opts.dropoutP ?? 0,
    opts.seed ?? 0, opts.offset ?? 0);
  lse.dispose();
  return y;
}
