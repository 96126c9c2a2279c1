// The gradient rules, one per recorded op, in one table. A rule gets the gradient of the op's output
// and its Node, and returns one gradient (or null) per input. Rules run with autograd off; they
// must return a fresh tensor for each input (never the same tensor twice).
//
// Gradients live on the device of their tensor: the rules built from ops run on either device; the
// ones that call native kernels directly have a CUDA branch (dy.device !== 'cpu').
import type { Node } from './autograd';
import * as cu from './cuda-tensor';
import * as cuSeq from './cuda-seq';
import type { Device } from './device';
import { nativeAddon } from './native-api';
import * as ops from './ops';
import { fromData, sizeOf, type Tensor } from './tensor';

export type OpName =
  | 'identity' | 'unary' | 'binary' | 'binaryScalar' | 'clamp' | 'where' | 'sum' | 'mean' | 'maxMin' | 'softmax'
  | 'matmul' | 'linear' | 'reshape' | 'permute' | 'expand' | 'slice' | 'cat' | 'gather' | 'indexSelect' | 'toDevice'
  | 'conv2d' | 'maxPool2d' | 'avgPool2d' | 'adaptiveAvgPool2d' | 'dropout' | 'layerNorm' | 'batchNorm'
  | 'embedding' | 'crossEntropy' | 'binaryCrossEntropy' | 'attention' | 'lstm'
  | 'autocast';

type GradRule = (dy: Tensor, node: Node) => (Tensor | null)[];

const N = () => nativeAddon();
const f32 = (t: unknown) => (t as Tensor)._data as Float32Array;
const T = (t: unknown) => t as Tensor;

/** Scatter-adds dy into a zero tensor of `shape` at flat offsets. */
function scatterAdd(shape: readonly number[], offsets: Int32Array | number[], dy: Tensor): Tensor {
  const out = new Float32Array(sizeOf(shape));
  const g = f32(dy);
  for (let i = 0; i < g.length; i++) out[offsets[i]] += g[i];
  return fromData(out, shape);
}

function binaryGrad(dy: Tensor, node: Node): (Tensor | null)[] {
  const a = T(node.saved.a), b = T(node.saved.b), y = T(node.saved.y);
  const name = node.saved.name as string;
  const needA = a.requiresGrad, needB = b.requiresGrad;
  const reduceA = (g: Tensor) => { const r = ops.sumTo(g, a.shape); if (r !== g) g.dispose(); return r; };
  const reduceB = (g: Tensor) => { const r = ops.sumTo(g, b.shape); if (r !== g) g.dispose(); return r; };
  switch (name) {
    // dy itself where no reduction is needed: backward() hands it to the first input and copies it
    // only for a second one.
    case 'add':
      return [needA ? ops.sumTo(dy, a.shape) : null, needB ? ops.sumTo(dy, b.shape) : null];
    case 'sub':
      return [needA ? ops.sumTo(dy, a.shape) : null, needB ? reduceB(ops.neg(dy)) : null];
    case 'mul':
      return [needA ? reduceA(ops.mul(dy, b)) : null, needB ? reduceB(ops.mul(dy, a)) : null];
    case 'div': {
      const ga = needA ? reduceA(ops.div(dy, b)) : null;
      let gb: Tensor | null = null;
      if (needB) {
        const q = ops.div(y, b); // a / b^2
        const t = ops.mul(dy, q);
        q.dispose();
        gb = reduceB(ops.neg(t));
        t.dispose();
      }
      return [ga, gb];
    }
    case 'pow': {
      let ga: Tensor | null = null, gb: Tensor | null = null;
      if (needA) {
        const bm1 = ops.sub(b, 1), p = ops.pow(a, bm1), t = ops.mul(p, b);
        ga = reduceA(ops.mul(dy, t));
        [bm1, p, t].forEach((x) => x.dispose());
      }
      if (needB) {
        const la = ops.log(a), t = ops.mul(y, la);
        gb = reduceB(ops.mul(dy, t));
        [la, t].forEach((x) => x.dispose());
      }
      return [ga, gb];
    }
    case 'maximum':
    case 'minimum': {
      // The gradient goes to the chosen operand; ties split it evenly (as PyTorch).
      const ya = ops.eq(a, y), yb = ops.eq(b, y), cnt = ops.add(ya, yb);
      const wa = ops.div(ya, cnt), wb = ops.div(yb, cnt);
      const ga = needA ? reduceA(ops.mul(dy, wa)) : null;
      const gb = needB ? reduceB(ops.mul(dy, wb)) : null;
      [ya, yb, cnt, wa, wb].forEach((x) => x.dispose());
      return [ga, gb];
    }
  }
  throw new Error(`internal: no gradient for binary op ${name}`);
}

function binaryScalarGrad(dy: Tensor, node: Node): (Tensor | null)[] {
  const x = T(node.saved.x), y = T(node.saved.y);
  const s = node.saved.s as number, reverse = node.saved.reverse as boolean;
  switch (node.saved.name as string) {
    case 'add': return [dy];
    case 'sub': return [reverse ? ops.neg(dy) : dy];
    case 'mul': return [ops.mul(dy, s)];
    case 'div': {
      if (!reverse) return [ops.div(dy, s)];
      const t = ops.div(y, x); // s / x^2 = y / x
      const g = ops.mul(dy, t);
      t.dispose();
      const r = ops.neg(g);
      g.dispose();
      return [r];
    }
    case 'pow': {
      if (!reverse) {
        const p = ops.pow(x, s - 1);
        const t = ops.mul(p, s);
        p.dispose();
        const g = ops.mul(dy, t);
        t.dispose();
        return [g];
      }
      const t = ops.mul(y, Math.log(s));
      const g = ops.mul(dy, t);
      t.dispose();
      return [g];
    }
    case 'maximum':
    case 'minimum': {
      const m = ops.eq(x, y);
      const g = ops.mul(dy, m);
      m.dispose();
      return [g];
    }
  }
  throw new Error(`internal: no gradient for scalar op ${String(node.saved.name)}`);
}

/** linear's backward on a CUDA device: dx = dy w, dw = dy^T x (SGEMMs), db = dy summed over rows. */
function linearGradCuda(dy: Tensor, x: Tensor, w: Tensor, b: Tensor | null, rows: number, inF: number,
                        outF: number): (Tensor | null)[] {
  const op = 'backward';
  let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
  if (x.requiresGrad) {
    if (rows && inF && outF) {
      gx = cu.empty(x.shape, dy.device);
      cu.gemmInto({ transA: false, transB: false, batch: 1, m: rows, n: inF, k: outF, a: dy, lda: outF, strideA: 0,
        b: w, ldb: inF, strideB: 0, c: gx, ldc: inF, strideC: 0 }, op);
    } else gx = cu.full(x.shape, 0, dy.device);
  }
  if (w.requiresGrad) {
    if (rows && inF && outF) {
      gw = cu.empty(w.shape, dy.device);
      cu.gemmInto({ transA: true, transB: false, batch: 1, m: outF, n: inF, k: rows, a: dy, lda: outF, strideA: 0,
        b: x, ldb: inF, strideB: 0, c: gw, ldc: inF, strideC: 0 }, op);
    } else gw = cu.full(w.shape, 0, dy.device);
  }
  if (b && b.requiresGrad) {
    const d2 = dy._view([rows, outF]);
    const k = cu.sumKeep(d2, [0], 1, op); // (1, outF)
    d2.dispose();
    gb = k._view([outF]);
    k.dispose();
  }
  return [gx, gw, gb];
}

export const GRADIENTS: Record<OpName, GradRule> = {
  identity: (dy) => [dy],

  unary: (dy, node) => {
    const x = T(node.saved.x), y = T(node.saved.y), code = node.saved.code as number;
    if (dy.device !== 'cpu') return [cu.unaryBackward(code, x, y, dy, 'backward')];
    const dx = ops.empty32(x.shape);
    // Only the operand the derivative reads is touched (a deferred ReLU output is not computed).
    const v = f32(ops.UNARY_BACKWARD_READS_Y.has(code) ? y : x);
    if (x.size) N().unaryBackward(code, f32(dx), v, v, f32(dy));
    return [dx];
  },

  binary: binaryGrad,
  binaryScalar: binaryScalarGrad,

  clamp: (dy, node) => {
    const x = f32(node.saved.x), g = f32(dy);
    const lo = node.saved.lo as number, hi = node.saved.hi as number;
    const out = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) out[i] = x[i] >= lo && x[i] <= hi ? g[i] : 0;
    return [fromData(out, dy.shape)];
  },

  where: (dy, node) => {
    const cond = T(node.saved.cond);
    const [a, b] = node.inputs;
    const ga = a ? (() => { const t = ops.where(cond, dy, 0); const r = ops.sumTo(t, a.shape); if (r !== t) t.dispose(); return r; })() : null;
    const gb = b ? (() => { const t = ops.where(cond, 0, dy); const r = ops.sumTo(t, b.shape); if (r !== t) t.dispose(); return r; })() : null;
    return [ga, gb];
  },

  sum: (dy, node) => {
    const shape = node.saved.shape as number[];
    const dims = node.saved.dims as number[];
    const kept = dy._view(shape.map((d, i) => (dims.includes(i) ? 1 : d)));
    const g = ops.expand(kept, shape);
    kept.dispose();
    return [g];
  },

  mean: (dy, node) => {
    const shape = node.saved.shape as number[];
    const dims = node.saved.dims as number[];
    const kept = dy._view(shape.map((d, i) => (dims.includes(i) ? 1 : d)));
    const e = ops.expand(kept, shape);
    kept.dispose();
    const g = ops.div(e, node.saved.count as number);
    e.dispose();
    return [g];
  },

  maxMin: (dy, node) => {
    const { outer, n, inner } = node.saved as { outer: number; n: number; inner: number };
    if (dy.device !== 'cpu')
      return [cu.argReduceBackward(dy, T(node.saved.indices), outer, n, inner, node.saved.shape as number[], 'backward')];
    const idx = T(node.saved.indices)._data as Int32Array;
    const offsets = new Int32Array(idx.length);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) offsets[o * inner + i] = (o * n + idx[o * inner + i]) * inner + i;
    return [scatterAdd(node.saved.shape as number[], offsets, dy)];
  },

  softmax: (dy, node) => {
    const y = T(node.saved.y);
    const { outer, n, inner, log } = node.saved as { outer: number; n: number; inner: number; log: boolean };
    if (dy.device !== 'cpu') return [cu.softmaxBackward(y, dy, outer, n, inner, log, 'backward')];
    const dx = ops.empty32(y.shape);
    if (y.size) N().softmaxBackward(f32(dx), f32(y), f32(dy), outer, n, inner, log);
    return [dx];
  },

  matmul: (dy, node) => {
    const a = T(node.saved.a), b = T(node.saved.b);
    // Promote 1-d operands to matrices as the forward did.
    const a2 = a.ndim === 1 ? a._view([1, a.shape[0]]) : a;
    const b2 = b.ndim === 1 ? b._view([b.shape[0], 1]) : b;
    const outShape = [...ops.broadcastShapes('matmul', a2.shape.slice(0, -2), b2.shape.slice(0, -2)),
      a2.shape[a2.ndim - 2], b2.shape[b2.ndim - 1]];
    const g = dy._view(outShape);
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (a.requiresGrad) {
      const bt = ops.transpose(b2, -1, -2);
      const full = ops.matmul(g, bt);
      bt.dispose();
      const r = ops.sumTo(full, a2.shape);
      if (r !== full) full.dispose();
      ga = r._view(a.shape);
      r.dispose();
    }
    if (b.requiresGrad) {
      const at = ops.transpose(a2, -1, -2);
      const full = ops.matmul(at, g);
      at.dispose();
      const r = ops.sumTo(full, b2.shape);
      if (r !== full) full.dispose();
      gb = r._view(b.shape);
      r.dispose();
    }
    g.dispose();
    if (a2 !== a) a2.dispose();
    if (b2 !== b) b2.dispose();
    return [ga, gb];
  },

  linear: (dy, node) => {
    const x = T(node.saved.x), w = T(node.saved.w);
    const { rows, inF, outF } = node.saved as { rows: number; inF: number; outF: number };
    const b = node.inputs[2];
    if (dy.device !== 'cpu') return linearGradCuda(dy, x, w, b, rows, inF, outF);
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
    if (x.requiresGrad) {
      gx = ops.empty32(x.shape);
      if (rows && inF) N().sgemm(false, false, rows, inF, outF, 1, f32(dy), outF, f32(w), inF, 0, f32(gx), inF, false);
    }
    if (w.requiresGrad) {
      gw = ops.empty32(w.shape);
      if (outF && inF) N().sgemm(true, false, outF, inF, rows, 1, f32(dy), outF, f32(x), inF, 0, f32(gw), inF, false);
    }
    if (b && b.requiresGrad) {
      const d2 = dy._view([rows, outF]);
      gb = ops.sumTo(d2, [outF]);
      if (gb === d2) gb = ops.clone(d2);
      d2.dispose();
    }
    return [gx, gw, gb];
  },

  reshape: (dy, node) => [dy._view(node.saved.shape as number[])],

  permute: (dy, node) => [ops.permute(dy, node.saved.inverse as number[])],

  expand: (dy, node) => {
    return [ops.sumTo(dy, node.saved.shape as number[])];
  },

  slice: (dy, node) => {
    const shape = node.saved.shape as number[];
    const { dim, start, step } = node.saved as { dim: number; start: number; step: number };
    if (dy.device !== 'cpu') {
      // dy written into zeros of the input's shape at the slice's offset and strides.
      const st = ops.stridesOf(shape);
      const strides = st.slice();
      strides[dim] = st[dim] * step;
      return [cu.scatterStrided(shape, dy, strides, dy.size ? start * st[dim] : 0, 'backward')];
    }
    const out = new Float32Array(sizeOf(shape));
    const outer = sizeOf(shape.slice(0, dim)), inner = sizeOf(shape.slice(dim + 1));
    const len = dy.shape[dim], g = f32(dy);
    for (let o = 0; o < outer; o++) {
      if (step === 1) {
        // The slice is one contiguous block per outer index.
        out.set(g.subarray(o * len * inner, (o + 1) * len * inner), (o * shape[dim] + start) * inner);
      } else if (inner === 1) {
        for (let i = 0; i < len; i++) out[o * shape[dim] + start + i * step] = g[o * len + i];
      } else {
        for (let i = 0; i < len; i++) {
          const src = (o * len + i) * inner;
          out.set(g.subarray(src, src + inner), (o * shape[dim] + start + i * step) * inner);
        }
      }
    }
    return [fromData(out, shape)];
  },

  cat: (dy, node) => {
    const dim = node.saved.dim as number;
    const sizes = node.saved.sizes as number[];
    let off = 0;
    return sizes.map((s) => {
      const g = ops.slice(dy, dim, off, off + s);
      off += s;
      return g;
    });
  },

  toDevice: (dy, node) => [ops.to(dy, node.saved.device as Device)],

  gather: (dy, node) => {
    if (dy.device !== 'cpu')
      return [cuSeq.gatherBackward(dy, T(node.saved.index), node.saved.shape as number[], node.saved.dim as number, 'backward')];
    return [scatterAdd(node.saved.shape as number[], node.saved.offsets as Int32Array, dy)];
  },

  indexSelect: (dy, node) => {
    const { idx, outer, n, inner } = node.saved as { idx: Int32Array; outer: number; n: number; inner: number };
    if (dy.device !== 'cpu') {
      // Positions grouped by row (host CSR), then a gather per dx element: deterministic, no atomics.
      const { rowStart, positions } = cuSeq.indexRows(idx, n);
      const rs = cu.upload(rowStart, [n + 1], dy.device), ps = cu.upload(positions, [positions.length], dy.device);
      const dx = cuSeq.indexSelectBackward(dy, rs, ps, node.saved.shape as number[], outer, n, inner, 'backward');
      rs.dispose();
      ps.dispose();
      return [dx];
    }
    const out = new Float32Array(sizeOf(node.saved.shape as number[]));
    const g = f32(dy);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < idx.length; i++) {
        const dst = (o * n + (idx[i] < 0 ? idx[i] + n : idx[i])) * inner, src = (o * idx.length + i) * inner;
        for (let j = 0; j < inner; j++) out[dst + j] += g[src + j];
      }
    return [fromData(out, node.saved.shape as number[])];
  },

  // The fused nn ops keep their backward next to their forward (functional.ts).
  conv2d: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  maxPool2d: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  avgPool2d: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  adaptiveAvgPool2d: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  dropout: (dy, node) => [ops.mul(dy, T(node.saved.mask))],
  layerNorm: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  batchNorm: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  embedding: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  crossEntropy: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  binaryCrossEntropy: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  attention: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  lstm: (dy, node) => (node.saved.backward as GradRule)(dy, node),
  // matmul/linear/attention inside tsm.autocast (lib/autocast.ts): 16-bit GEMMs, float32 gradients.
  autocast: (dy, node) => (node.saved.backward as GradRule)(dy, node),
};
