// The slow, obvious attention in float64 on the host, forward and backward, for checking the GPU
// kernels (test/cuda-attention.test.ts) and validating before timing (bench/cuda-attention.ts).
//
//   q (B,H,Lq,D), k, v (B,H,Lk,D), dout (B,H,Lq,D), row-major, any numeric arrays
//   S = scale q k^T; key j of batch b is masked when j >= keyLengths[b] (clamped to [0, Lk]) or,
//   causal, when j > i; P = softmax(S) over the unmasked keys; o = P v; lse = log sum exp S.
//   A row with no key: o = 0, lse = +inf, no gradient.
//   Backward: dv = P^T dout, dP = dout v^T, dS = P * (dP - rowsum(dout * o)), dq = scale dS k,
//   dk = scale dS^T q.

export interface AttnRefProblem {
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  D: number;
  scale: number;
  causal: boolean;
  /** Keys attended per batch (clamped to [0, Lk]), or null for all. */
  keyLengths: ArrayLike<number> | null;
}

type Num = ArrayLike<number>;

/** How many keys query row i of batch b attends (0: the row has no key). */
export function keysOf(p: AttnRefProblem, b: number, i: number): number {
  let n = p.keyLengths ? Math.min(Math.max(p.keyLengths[b], 0), p.Lk) : p.Lk;
  if (p.causal) n = Math.min(n, i + 1);
  return n;
}

/** The probabilities of one score row (length n = attended keys) and its log-sum-exp. */
function probs(p: AttnRefProblem, q: Num, k: Num, qo: number, ko: number, n: number): { pr: Float64Array; lse: number } {
  const { D } = p;
  const pr = new Float64Array(n);
  let mx = -Infinity;
  for (let j = 0; j < n; ++j) {
    let s = 0;
    for (let c = 0; c < D; ++c) s += q[qo + c] * k[ko + j * D + c];
    pr[j] = s * p.scale;
    if (pr[j] > mx) mx = pr[j];
  }
  if (n === 0) return { pr, lse: Infinity };
  let sum = 0;
  for (let j = 0; j < n; ++j) sum += (pr[j] = Math.exp(pr[j] - mx));
  for (let j = 0; j < n; ++j) pr[j] /= sum;
  return { pr, lse: mx + Math.log(sum) };
}

/** Forward: o (B,H,Lq,D) and lse (B,H,Lq). */
export function attentionRef(p: AttnRefProblem, q: Num, k: Num, v: Num): { o: Float64Array; lse: Float64Array } {
  const { B, H, Lq, Lk, D } = p;
  const o = new Float64Array(B * H * Lq * D), lse = new Float64Array(B * H * Lq);
  for (let b = 0; b < B; ++b)
    for (let h = 0; h < H; ++h) {
      const bh = b * H + h, ko = bh * Lk * D;
      for (let i = 0; i < Lq; ++i) {
        const qo = (bh * Lq + i) * D, n = keysOf(p, b, i);
        const { pr, lse: l } = probs(p, q, k, qo, ko, n);
        lse[bh * Lq + i] = l;
        for (let j = 0; j < n; ++j) {
          const w = pr[j], vo = ko + j * D;
          for (let c = 0; c < D; ++c) o[qo + c] += w * v[vo + c];
        }
      }
    }
  return { o, lse };
}

/** Backward: dq (B,H,Lq,D), dk and dv (B,H,Lk,D) of sum(o * dout). */
export function attentionBackwardRef(p: AttnRefProblem, q: Num, k: Num, v: Num, dout: Num):
  { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, H, Lq, Lk, D } = p;
  const dq = new Float64Array(B * H * Lq * D), dk = new Float64Array(B * H * Lk * D), dv = new Float64Array(B * H * Lk * D);
  const oi = new Float64Array(D);
  for (let b = 0; b < B; ++b)
    for (let h = 0; h < H; ++h) {
      const bh = b * H + h, ko = bh * Lk * D;
      for (let i = 0; i < Lq; ++i) {
        const qo = (bh * Lq + i) * D, n = keysOf(p, b, i);
        const { pr } = probs(p, q, k, qo, ko, n);
        oi.fill(0);
        for (let j = 0; j < n; ++j) for (let c = 0; c < D; ++c) oi[c] += pr[j] * v[ko + j * D + c];
        let delta = 0;
        for (let c = 0; c < D; ++c) delta += dout[qo + c] * oi[c];
        for (let j = 0; j < n; ++j) {
          const vo = ko + j * D;
          let dp = 0;
          for (let c = 0; c < D; ++c) dp += dout[qo + c] * v[vo + c];
          const ds = pr[j] * (dp - delta) * p.scale;
          for (let c = 0; c < D; ++c) {
            dv[vo + c] += pr[j] * dout[qo + c];
            dq[qo + c] += ds * k[vo + c];
            dk[vo + c] += ds * q[qo + c];
          }
        }
      }
    }
  return { dq, dk, dv };
}

/** ||a - ref|| / ||ref|| (Frobenius; 0 when both are 0), and the number of NaN in a. */
export function relError(a: Num, ref: Num): { err: number; nan: number } {
  let num = 0, den = 0, nan = 0;
  for (let i = 0; i < ref.length; ++i) {
    if (Number.isNaN(a[i])) nan++;
    num += (a[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return { err: den === 0 ? Math.sqrt(num) : Math.sqrt(num / den), nan };
}
