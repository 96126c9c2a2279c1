// float64 references of softmax / log-softmax (over the middle axis of (outer, dim, inner)), their
// backward, and cross-entropy on logits with ignore_index and label smoothing (as PyTorch's
// CrossEntropyLoss with reduction 'none'). Shared by native-pointwise.test.ts and
// ce-check-main.ts.

export function softmaxRef(x: ArrayLike<number>, outer: number, dim: number, inner: number, log: boolean): Float64Array {
  const y = new Float64Array(outer * dim * inner);
  for (let o = 0; o < outer; ++o)
    for (let i = 0; i < inner; ++i) {
      const at = (d: number) => (o * dim + d) * inner + i;
      let m = -Infinity;
      for (let d = 0; d < dim; ++d) m = Math.max(m, x[at(d)]);
      let s = 0;
      for (let d = 0; d < dim; ++d) s += Math.exp(x[at(d)] - m);
      for (let d = 0; d < dim; ++d) y[at(d)] = log ? x[at(d)] - m - Math.log(s) : Math.exp(x[at(d)] - m) / s;
    }
  return y;
}

export function softmaxBackwardRef(y: ArrayLike<number>, dy: ArrayLike<number>, outer: number, dim: number, inner: number,
  log: boolean): Float64Array {
  const dx = new Float64Array(outer * dim * inner);
  for (let o = 0; o < outer; ++o)
    for (let i = 0; i < inner; ++i) {
      const at = (d: number) => (o * dim + d) * inner + i;
      let s = 0;
      for (let d = 0; d < dim; ++d) s += log ? dy[at(d)] : dy[at(d)] * y[at(d)];
      for (let d = 0; d < dim; ++d)
        dx[at(d)] = log ? dy[at(d)] - Math.exp(y[at(d)]) * s : y[at(d)] * (dy[at(d)] - s);
    }
  return dx;
}

export function ceRef(logits: ArrayLike<number>, targets: ArrayLike<number>, N: number, C: number, ignore: number, eps: number) {
  const lp = softmaxRef(logits, N, C, 1, true);
  const losses = new Float64Array(N);
  for (let n = 0; n < N; ++n) {
    if (targets[n] === ignore) continue;
    let s = 0;
    for (let c = 0; c < C; ++c) s += lp[n * C + c];
    losses[n] = -(1 - eps) * lp[n * C + targets[n]] - (eps / C) * s;
  }
  return { lp, losses };
}
export function ceBackwardRef(lp: ArrayLike<number>, targets: ArrayLike<number>, dl: ArrayLike<number>, N: number, C: number,
  ignore: number, eps: number) {
  const g = new Float64Array(N * C);
  for (let n = 0; n < N; ++n) {
    if (targets[n] === ignore) continue;
    for (let c = 0; c < C; ++c)
      g[n * C + c] = dl[n] * (Math.exp(lp[n * C + c]) - eps / C - (c === targets[n] ? 1 - eps : 0));
  }
  return g;
}
