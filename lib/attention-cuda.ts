// F.scaledDotProductAttention for tensors on a CUDA device (lib/attention.ts dispatches here after
// seeing a CUDA query). Three paths:
//
//   softmax   no attnMask, dropoutP == 0, and the (B, H, Lq, Lk) float32 scores fit 256 MB: matmul,
//             the causal mask, the softmax kernel, matmul (softmaxPath below).
//   fused     no attnMask, dropoutP == 0, D <= 256, larger problems: the fused kernels bound as tsm.cuda.attention /
//             attentionBackward (cuda/attention_fwd.cu, attention_bwd.cu), float32 storage, so the
//             'auto' algo runs the general CUDA-core kernel (the tensor-core path is bf16/f16 only);
//             isCausal is the kernel's own mask. The Lq x Lk scores are never stored; lse (B, H, Lq)
//             is kept for the backward, which recomputes the scores.
//   composed  an attnMask (boolean int32 or additive float32, broadcast to (B, H, Lq, Lk)), dropout,
//             or D > 256: matmul, where/add, a max-shifted exp, sum, div, matmul — ops that all run on
//             the device, with autograd from their own rules. It stores the (B, H, Lq, Lk) scores
//             and probabilities (O(L^2) memory). A query whose every key is masked gets a zero
//             output and zero gradients, as the CPU's fused kernel (PyTorch gives NaN). Dropout uses
//             F.dropout on the probabilities: its random stream is not the CPU kernel's.
// Why not express the masks in the fused kernel: it takes only causal + key lengths (a suffix
// padding per batch); an arbitrary mask needs a mask operand in the kernel (future work).
import type { Node } from './autograd';
import { record } from './autograd';
import * as cu from './cuda-tensor';
import { cudaCall, type TensorAddon } from './device';
import type { CudaAttentionAddon } from './cuda-attention';
import * as F from './functional';
import * as ops from './ops';
import { noGrad, type Tensor } from './tensor';

type GradRule = (dy: Tensor, node: Node) => (Tensor | null)[];

const call = <T>(fn: (a: TensorAddon & CudaAttentionAddon) => T): T =>
  cudaCall((a) => fn(a as TensorAddon & CudaAttentionAddon));

/** Checked arguments of one call (lib/attention.ts validates before dispatching). */
export interface SdpaCall {
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  D: number;
  scale: number;
  isCausal: boolean;
  dropoutP: number;
  mask: Tensor | null;
}

/** Largest head dimension of the fused general kernel. */
const FUSED_MAX_D = 256;
/** Most score elements (B * H * Lq * Lk, float32) the softmax path stores: 64 Mi = 256 MB. */
const SOFTMAX_PATH_MAX_SCORES = 64 * 1024 * 1024;

let pathOverride: 'auto' | 'fused' | 'softmax' = 'auto';
/** Forces the path of unmasked float32 attention (tests of both paths; 'auto' restores the rule). */
export function setUnmaskedAttentionPath(path: 'auto' | 'fused' | 'softmax'): void {
  pathOverride = path;
}
/** TSM_CUDA_SDPA=fused or =softmax forces the path too (measurements); read once. */
const envPath = typeof process !== 'undefined' ? process.env.TSM_CUDA_SDPA : undefined;

/**
 * Which path float32 attention without mask or dropout takes: 'softmax' when the scores fit
 * SOFTMAX_PATH_MAX_SCORES (or D is too large for the fused kernel), else 'fused'.
 */
function unmaskedPath(c: SdpaCall): 'fused' | 'softmax' {
  const forced = pathOverride !== 'auto' ? pathOverride : envPath;
  if (forced === 'fused' && c.D <= FUSED_MAX_D) return 'fused';
  if (forced === 'softmax') return 'softmax';
  return c.B * c.H * c.Lq * c.Lk <= SOFTMAX_PATH_MAX_SCORES || c.D > FUSED_MAX_D ? 'softmax' : 'fused';
}

export function scaledDotProductAttentionCuda(q: Tensor, k: Tensor, v: Tensor, c: SdpaCall): Tensor {
  const op = 'scaledDotProductAttention';
  if (c.mask === null && c.dropoutP === 0 && c.D >= 1 && c.Lk >= 1) {
    return unmaskedPath(c) === 'softmax' ? softmaxPath(q, k, v, c) : fused(q, k, v, c, op);
  }
  return composed(q, k, v, c);
}

/**
 * No mask, no dropout, at least one key: every row keeps a key (causal row i has keys 0..i), so the
 * probabilities are plain softmax(q k^T * scale) and the batched SGEMMs and the softmax kernel do
 * the work: three GEMMs and one softmax forward, their autograd rules backward. On an H100 with
 * float32 this beat the fused general kernel (one warp per query row, one key at a time) for the
 * Transformer LM of bench/cuda-train (see bench/NOTES.md); it stores the (B, H, Lq, Lk) scores.
 */
function softmaxPath(q: Tensor, k: Tensor, v: Tensor, c: SdpaCall): Tensor {
  return throughScores(q, k, v, c, (s, t) => t(ops.softmax(s, -1)));
}

/**
 * out = probs(scores) v on device ops, the scores (q * scale) k^T with the causal mask applied.
 * `probs` turns the (B, H, Lq, Lk) scores into probabilities, passing what it creates through `t`;
 * the intermediates are disposed here unless the autograd graph holds them.
 */
function throughScores(q: Tensor, k: Tensor, v: Tensor, c: SdpaCall,
                       probs: (s: Tensor, t: (x: Tensor) => Tensor) => Tensor): Tensor {
  const { B, H, Lq, Lk, D, scale, isCausal } = c;
  const tmp: Tensor[] = [];
  const t = (x: Tensor) => {
    tmp.push(x);
    return x;
  };
  // Work in (B, H, L, D) views; the result takes q's shape back.
  const q4 = t(ops.reshape(q, [B, H, Lq, D])), k4 = t(ops.reshape(k, [B, H, Lk, D])), v4 = t(ops.reshape(v, [B, H, Lk, D]));
  // The scale goes on q (B H Lq D elements) rather than on the scores (B H Lq Lk).
  let s = t(ops.matmul(t(ops.mul(q4, scale)), t(ops.transpose(k4, -2, -1))));
  if (isCausal) {
    const allow = new Int32Array(Lq * Lk);
    for (let i = 0; i < Lq; i++) for (let j = 0; j <= i && j < Lk; j++) allow[i * Lk + j] = 1;
    s = t(ops.where(t(cu.upload(allow, [Lq, Lk], q.device)), s, -Infinity));
  }
  const o4 = ops.matmul(probs(s, t), v4);
  const out = ops.reshape(o4, q.shape.slice());
  // Intermediates the graph holds stay alive through it; dispose only when no graph was recorded.
  if (!out.requiresGrad) {
    for (const x of tmp) if (x !== q && x !== k && x !== v && x !== c.mask) x.dispose();
    if (o4 !== out) o4.dispose();
  }
  return out;
}

function fused(q: Tensor, k: Tensor, v: Tensor, c: SdpaCall, op: string): Tensor {
  const { B, H, Lq, Lk, D, scale, isCausal } = c;
  const o = cu.empty(q.shape, q.device);
  const lse = cu.empty([B, H, Lq], q.device);
  // dtype 0 = float32; algo 0 = auto (the general kernel for float32).
  call((a) => a.cudaAttentionForward(o._handle(op), lse._handle(op), q._handle(op), k._handle(op), v._handle(op), null, B,
    H, Lq, Lk, D, 0, scale, isCausal, 0));
  const backward: GradRule = (dy, node) => {
    const [qi, ki, vi] = node.inputs as [Tensor, Tensor, Tensor];
    const dq = cu.empty(qi.shape, dy.device), dk = cu.empty(ki.shape, dy.device), dv = cu.empty(vi.shape, dy.device);
    const bop = 'backward';
    call((a) => a.cudaAttentionBackward(dq._handle(bop), dk._handle(bop), dv._handle(bop), dy._handle(bop),
      qi._handle(bop), ki._handle(bop), vi._handle(bop), o._handle(bop), lse._handle(bop), null, B, H, Lq, Lk, D, 0, scale,
      isCausal, 0));
    return [dq, dk, dv].map((g, i) => {
      if ((node.inputs[i] as Tensor).requiresGrad) return g;
      g.dispose();
      return null;
    });
  };
  return record(o, 'attention', [q, k, v], { backward }, [lse]);
}

function composed(q: Tensor, k: Tensor, v: Tensor, c: SdpaCall): Tensor {
  const { dropoutP, mask } = c;
  return throughScores(q, k, v, c, (s0, t) => {
    const s = mask ? t(mask.dtype === 'int32' ? ops.where(mask, s0, -Infinity) : ops.add(s0, mask)) : s0;
    // softmax along keys with the row max as a constant shift; rows with no key left give 0 (not NaN).
    const shift = t(noGrad(() => {
      const m = ops.max(s, -1, true);
      const r = ops.where(ops.eq(m, -Infinity), 0, m);
      m.dispose();
      return r;
    }));
    const e = t(ops.exp(t(ops.sub(s, shift))));
    const den = t(ops.sum(e, -1, true));
    const safe = t(ops.where(t(noGrad(() => ops.eq(den, 0))), 1, den));
    const p = t(ops.div(e, safe));
    return dropoutP > 0 ? t(F.dropout(p, dropoutP, true)) : p;
  });
}
