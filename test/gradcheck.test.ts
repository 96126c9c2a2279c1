// Every gradient rule against central finite differences of our own forward.
//
// gradcheck(f, inputs) projects the output on fixed random weights w: L(x) = sum_k w_k f(x)_k, with the
// float32 outputs summed in float64. The analytic gradient is one backward() with w as the upstream
// gradient; the numerical one is (L(x + h e_j) - L(x - h e_j)) / (2h) per element j, with h the
// step actually taken in float32. Outputs that do not depend on x_j are bit-identical in both
// evaluations, so they cancel exactly in float64 and only the float32 rounding of the affected
// outputs (~6e-8 relative each, divided by 2h = 2e-2) adds noise; the truncation error is
// h^2 f'''/6 ~ 2e-5 for the smooth ops. Hence |analytic - numerical| <= atol + rtol |numerical|
// with rtol 5e-3 and atol 2e-4 by default (inputs are chosen so gradients are O(0.1..1)).
// Inputs of piecewise ops (relu, abs, max, clamp, pools, maximum) are kept at least 0.05 away
// from their kinks and ties, so a step of 1e-2 never crosses one.
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import type { Tensor } from '../lib/index';
import { seededRandom as mulberry32 } from '../lib/text';

const { F } = tsm;

// ---- deterministic inputs ----

let rnd = mulberry32(12345);
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Uniform in [lo, hi). */
function U(shape: number[], lo = -1, hi = 1): Tensor {
  const d = new Float32Array(size(shape));
  for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * rnd();
  return tsm.tensor(d, { shape });
}
/** Uniform in [-hi, hi] but at least `margin` away from each kink. */
function away(shape: number[], kinks: number[] = [0], margin = 0.05, hi = 1.5): Tensor {
  const d = new Float32Array(size(shape));
  for (let i = 0; i < d.length; i++) {
    let v: number;
    do v = -hi + 2 * hi * rnd(); while (kinks.some((k) => Math.abs(v - k) < margin));
    d[i] = v;
  }
  return tsm.tensor(d, { shape });
}
/** Distinct values at least `gap` apart (no ties for max/min/maxPool), shuffled. */
function distinct(shape: number[], gap = 0.05): Tensor {
  const n = size(shape);
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * gap);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return tsm.tensor(Float32Array.from(v), { shape });
}
/** Multiples of 0.1 shifted by offset*0.1 in [-1, 1]: two grids with offsets 0 and 0.5 are 0.05 apart. */
function grid(shape: number[], offset: number): Tensor {
  const d = new Float32Array(size(shape));
  for (let i = 0; i < d.length; i++) d[i] = (Math.floor(rnd() * 20) - 10 + offset) * 0.1;
  return tsm.tensor(d, { shape });
}
function I(data: number[], shape?: number[]): Tensor {
  return tsm.tensor(Int32Array.from(data), { shape: shape ?? [data.length] });
}
function randInt(shape: number[], lo: number, hi: number): Tensor {
  const d = new Int32Array(size(shape));
  for (let i = 0; i < d.length; i++) d[i] = lo + Math.floor(rnd() * (hi - lo));
  return tsm.tensor(d, { shape });
}

// ---- the checker ----

interface GradcheckOptions {
  eps?: number;
  rtol?: number;
  atol?: number;
  /** Indices of the inputs to check (default: every float32 input). */
  wrt?: number[];
}

/**
 * Checks d(sum w*f)/dx of every float32 input against central differences. Returns the largest
 * |analytic - numerical| seen (for information). Throws (expect.fail) with the input, element and
 * both values on the first mismatch.
 */
function gradcheck(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): number {
  const eps = opts.eps ?? 1e-2, rtol = opts.rtol ?? 5e-3, atol = opts.atol ?? 2e-4;
  const wrt = opts.wrt ?? inputs.map((x, i) => (x.dtype === 'float32' ? i : -1)).filter((i) => i >= 0);
  const base = inputs.map((x) => x.dataSync());
  const make = (i: number, data: Float32Array | Int32Array, grad: boolean) =>
    tsm.tensor(data, { shape: [...inputs[i].shape], requiresGrad: grad && inputs[i].dtype === 'float32' });
  let worst = 0;
  tsm.tidy(() => {
    // analytic
    const leaves = inputs.map((_, i) => make(i, base[i].slice(), wrt.includes(i)));
    const y = f(...leaves);
    expect(y.requiresGrad, `${name}: output does not require grad`).toBe(true);
    const w = new Float32Array(y.size);
    for (let k = 0; k < w.length; k++) w[k] = Math.fround(2 * rnd() - 1);
    y.backward(tsm.tensor(w, { shape: [...y.shape] }));
    const project = (ins: Tensor[]): number => tsm.noGrad(() => tsm.tidy(() => {
      const out = f(...ins).dataSync();
      let s = 0;
      for (let k = 0; k < out.length; k++) s += w[k] * out[k];
      return s;
    }));
    for (const i of wrt) {
      const g = leaves[i].grad;
      const analytic = g ? g.dataSync() : new Float32Array(base[i].length);
      if (g) expect([...g.shape], `${name}: grad shape of input ${i}`).toEqual([...inputs[i].shape]);
      for (let j = 0; j < base[i].length; j++) {
        const at = (delta: number): [number, number] => {
          const d = base[i].slice() as Float32Array;
          d[j] = base[i][j] + delta;
          const ins = inputs.map((_, k) => (k === i ? make(k, d, false) : make(k, base[k], false)));
          return [project(ins), d[j]];
        };
        const [lp, xp] = at(eps);
        const [lm, xm] = at(-eps);
        const numerical = (lp - lm) / (xp - xm);
        const err = Math.abs(analytic[j] - numerical);
        worst = Math.max(worst, err);
        if (!(err <= atol + rtol * Math.abs(numerical)))
          expect.fail(`${name}: d/d input${i}[${j}] analytic ${analytic[j]} vs numerical ${numerical} (x = ${base[i][j]})`);
      }
    }
  });
  return worst;
}

function check(name: string, f: (...xs: Tensor[]) => Tensor, inputs: () => Tensor[], opts?: GradcheckOptions): void {
  it(name, () => {
    gradcheck(name, f, tsm.tidy(inputs), opts);
  });
}

// ---------------------------------------------------------------------------------------------

describe('gradcheck: the checker itself', () => {
  it('catches a wrong gradient rule', () => {
    // Forward x^2 + x, but the second term goes through detach(), so backward gives 2x, not 2x + 1.
    expect(() => gradcheck('wrong', (a) => tsm.add(tsm.mul(a, a), a.detach()), [U([5])])).toThrow(/analytic/);
  });
});

describe('gradcheck: unary ops', () => {
  check('neg', (x) => x.neg(), () => [U([3, 4])]);
  check('exp', (x) => x.exp(), () => [U([3, 4], -2, 2)]);
  check('log', (x) => x.log(), () => [U([3, 4], 0.3, 3)]);
  check('sqrt', (x) => x.sqrt(), () => [U([3, 4], 0.3, 3)]);
  check('abs', (x) => x.abs(), () => [away([3, 4])]);
  check('square', (x) => x.square(), () => [U([3, 4], -2, 2)]);
  check('relu', (x) => x.relu(), () => [away([3, 4])]);
  check('sigmoid', (x) => x.sigmoid(), () => [U([3, 4], -4, 4)]);
  check('tanh', (x) => x.tanh(), () => [U([3, 4], -2, 2)]);
  check('gelu', (x) => x.gelu(), () => [U([3, 4], -3, 3)]);
  check('gelu tanh', (x) => x.gelu('tanh'), () => [U([3, 4], -3, 3)]);
  check('F.silu', (x) => F.silu(x), () => [U([3, 4], -3, 3)]);
  check('F.relu/F.sigmoid/F.tanh chain', (x) => F.tanh(F.sigmoid(F.relu(x))), () => [away([2, 5])]);
});

describe('gradcheck: binary ops and broadcasting', () => {
  const patterns: [string, number[], number[]][] = [
    ['same shape', [3, 4], [3, 4]],
    ['row vector', [3, 4], [4]],
    ['row vector (left)', [4], [3, 4]],
    ['column', [3, 4], [3, 1]],
    ['outer (both broadcast)', [3, 1], [1, 4]],
    ['3-d vs 2-d', [2, 3, 4], [3, 1]],
    ['both sides broadcast, 3-d', [2, 1, 4], [3, 1]],
    ['0-d tensor right', [3, 4], []],
    ['0-d tensor left', [], [3, 4]],
    ['size-1 vector', [1], [2, 3]],
  ];
  const ops: [string, (a: Tensor, b: Tensor) => Tensor, (s: number[]) => Tensor, (s: number[]) => Tensor][] = [
    ['add', (a, b) => a.add(b), (s) => U(s), (s) => U(s)],
    ['sub', (a, b) => a.sub(b), (s) => U(s), (s) => U(s)],
    ['mul', (a, b) => a.mul(b), (s) => U(s), (s) => U(s)],
    ['div', (a, b) => a.div(b), (s) => U(s), (s) => U(s, 0.5, 2)],
    ['pow', (a, b) => a.pow(b), (s) => U(s, 0.5, 2), (s) => U(s, -1.5, 2.5)],
    // the two operands on interleaved grids 0.05 apart: no ties within a step
    ['maximum', (a, b) => tsm.maximum(a, b), (s) => grid(s, 0), (s) => grid(s, 0.5)],
    ['minimum', (a, b) => tsm.minimum(a, b), (s) => grid(s, 0.5), (s) => grid(s, 0)],
  ];
  for (const [op, f, ga, gb] of ops)
    for (const [pat, sa, sb] of patterns)
      check(`${op} ${pat} [${sa}] with [${sb}]`, f, () => [ga(sa), gb(sb)]);

  // A number on either side.
  check('add scalar right / left', (a) => tsm.add(a.add(2.5), tsm.add(-1, a)), () => [U([3, 4])]);
  check('sub scalar right / left', (a) => tsm.mul(a.sub(0.5), tsm.sub(3, a)), () => [U([3, 4])]);
  check('mul scalar right / left', (a) => tsm.add(a.mul(-3), tsm.mul(0.25, a.square())), () => [U([3, 4])]);
  check('div scalar right', (a) => a.div(4), () => [U([3, 4])]);
  check('div scalar left (reverse)', (a) => tsm.div(2, a), () => [U([3, 4], 0.5, 2)]);
  check('pow scalar exponent 2.5', (a) => a.pow(2.5), () => [U([3, 4], 0.3, 2)]);
  check('pow scalar exponent -1.5', (a) => a.pow(-1.5), () => [U([3, 4], 0.5, 2)]);
  check('pow scalar exponent 3 on negatives', (a) => a.pow(3), () => [U([3, 4], -2, 2)]);
  check('pow scalar base (reverse) 2^x', (a) => tsm.pow(2, a), () => [U([3, 4], -2, 2)]);
  check('maximum with a number', (a) => a.maximum(0.2), () => [away([3, 4], [0.2], 0.05)]);
  check('minimum with a number (left)', (a) => tsm.minimum(-0.1, a), () => [away([3, 4], [-0.1], 0.05)]);
  it('maximum/minimum split the gradient evenly on ties (as PyTorch)', () => tsm.tidy(() => {
    const a = tsm.tensor([1, 2, 5], { requiresGrad: true });
    const b = tsm.tensor([1, 3, 4], { requiresGrad: true });
    tsm.maximum(a, b).sum().backward();
    expect(Array.from(a.grad!.dataSync())).toEqual([0.5, 0, 1]);
    expect(Array.from(b.grad!.dataSync())).toEqual([0.5, 1, 0]);
  }));
  check('same tensor on both sides (x * x, x / x + x)', (a) => tsm.add(a.mul(a), a.div(a).mul(a)), () => [U([2, 3], 0.5, 2)]);
});

describe('gradcheck: clamp and where', () => {
  check('clamp min and max', (x) => x.clamp(-0.5, 0.7), () => [away([3, 5], [-0.5, 0.7])]);
  check('clamp min only', (x) => x.clamp(0.1), () => [away([3, 5], [0.1])]);
  check('clamp max only', (x) => tsm.clamp(x, null, -0.2), () => [away([3, 5], [-0.2])]);
  const cond = () => I([1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1], [3, 4]);
  check('where tensor/tensor', (a, b) => tsm.where(cond(), a, b), () => [U([3, 4]), U([3, 4])]);
  check('where broadcast cond [4], a [3,1], b [3,4]', (a, b) => tsm.where(I([1, 0, 0, 1]), a, b), () => [U([3, 1]), U([3, 4])]);
  check('where tensor/number', (a) => tsm.where(cond(), a, 0.5), () => [U([3, 4])]);
  check('where number/tensor', (b) => tsm.where(cond(), -2, b), () => [U([3, 4])]);
  check('x.where(cond, other) with float condition', (a, b) => a.where(tsm.tensor([[0.3, -1, 2, 0], [-0.5, 1, 1, -2], [0, 0, 4, 1]]).gt(0), b), () => [U([3, 4]), U([4])]);
});

describe('gradcheck: reductions', () => {
  const x = () => [U([2, 3, 4])];
  check('sum all', (a) => a.sum(), x);
  check('sum dim 0', (a) => a.sum(0), x);
  check('sum dim -1 keepdim', (a) => a.sum(-1, true), x);
  check('sum dims [0, 2]', (a) => a.sum([0, 2]), x);
  check('sum dims [2, 0] keepdim', (a) => a.sum([2, 0], true), x);
  check('mean all', (a) => a.mean(), x);
  check('mean dim 1', (a) => a.mean(1), x);
  check('mean dims [0, 1] keepdim', (a) => a.mean([0, 1], true), x);
  check('mean dim -1 of 1-d', (a) => a.mean(-1), () => [U([7])]);
  check('sum of 0-d', (a) => a.sum(), () => [U([])]);
  const d = () => [distinct([2, 3, 4])];
  check('max all', (a) => a.max(), d);
  check('max dim 1', (a) => a.max(1), d);
  check('max dim -1 keepdim', (a) => a.max(-1, true), d);
  check('min all', (a) => a.min(), d);
  check('min dim 0', (a) => a.min(0), d);
  check('min dim 2 keepdim', (a) => a.min(2, true), d);
  for (const dim of [0, 1, -1]) {
    check(`softmax dim ${dim}`, (a) => a.softmax(dim), () => [U([3, 4, 5], -2, 2)]);
    check(`logSoftmax dim ${dim}`, (a) => a.logSoftmax(dim), () => [U([3, 4, 5], -2, 2)]);
  }
  check('softmax of large logits', (a) => F.softmax(a, 1), () => [U([2, 5], 40, 44)]);
  check('logSoftmax of large logits', (a) => F.logSoftmax(a, 1), () => [U([2, 5], -60, -56)]);
});

describe('gradcheck: matmul and linear', () => {
  const mm = (a: Tensor, b: Tensor) => a.matmul(b);
  check('1-d @ 1-d (dot)', mm, () => [U([5]), U([5])]);
  check('1-d @ 2-d', mm, () => [U([4]), U([4, 3])]);
  check('2-d @ 1-d', mm, () => [U([3, 4]), U([4])]);
  check('2-d @ 2-d', mm, () => [U([3, 4]), U([4, 5])]);
  check('batched 3-d @ 3-d', mm, () => [U([2, 3, 4]), U([2, 4, 2])]);
  check('batched 3-d @ 2-d (shared right)', mm, () => [U([2, 3, 4]), U([4, 2])]);
  check('2-d @ batched 3-d (shared left)', mm, () => [U([3, 4]), U([2, 4, 2])]);
  check('broadcast batch [2,1,3,4] @ [3,4,2]', mm, () => [U([2, 1, 3, 4]), U([3, 4, 2])]);
  check('broadcast batch [1,3,4] @ [2,4,2]', mm, () => [U([1, 3, 4]), U([2, 4, 2])]);
  check('1-d @ batched 3-d', mm, () => [U([4]), U([2, 4, 3])]);
  check('batched 3-d @ 1-d', mm, () => [U([2, 3, 4]), U([4])]);
  check('linear with bias', (x, w, b) => F.linear(x, w, b), () => [U([3, 4]), U([5, 4]), U([5])]);
  check('linear without bias, 3-d input', (x, w) => F.linear(x, w), () => [U([2, 3, 4]), U([2, 4])]);
  check('linear 1-d input', (x, w, b) => F.linear(x, w, b), () => [U([4]), U([3, 4]), U([3])]);
});

describe('gradcheck: shape ops', () => {
  const x = () => [U([2, 3, 4])];
  // Multiply by a fixed ramp so that a gradient landing on the wrong element shows.
  const ramp = (t: Tensor) => t.mul(tsm.arange(0, t.size).to('float32').reshape([...t.shape]).add(1));
  check('reshape', (a) => ramp(a.reshape([4, 6])), x);
  check('reshape with -1', (a) => ramp(a.reshape(-1, 2)), x);
  check('view', (a) => ramp(a.view([6, 4])), x);
  check('flatten(1)', (a) => ramp(a.flatten(1)), x);
  check('squeeze / unsqueeze', (a) => ramp(a.unsqueeze(1).unsqueeze(-1).squeeze(1)), x);
  check('permute [2, 0, 1]', (a) => ramp(a.permute(2, 0, 1)), x);
  check('transpose(0, 2)', (a) => ramp(a.transpose(0, 2)), x);
  check('transpose() of 2-d', (a) => ramp(a.transpose()), () => [U([3, 5])]);
  check('expand [3,1] -> [2,3,4]', (a) => ramp(a.expand([2, 3, 4])), () => [U([3, 1])]);
  check('expand with -1', (a) => ramp(a.expand(-1, 4)), () => [U([3, 1])]);
  check('slice dim 1 [1:3]', (a) => ramp(a.slice(1, 1, 3)), x);
  check('slice dim 2 step 2', (a) => ramp(a.slice(2, 0, undefined, 2)), x);
  check('slice dim 0 negative start, step 3', (a) => ramp(a.slice(0, -5, undefined, 3)), () => [U([7, 2])]);
  check('slice then slice (same input twice)', (a) => ramp(tsm.cat([a.slice(1, 0, 2), a.slice(1, 1, 3)], 1)), x);
  check('cat dim 0 of three', (a, b, c) => ramp(tsm.cat([a, b, c], 0)), () => [U([1, 3]), U([2, 3]), U([3, 3])]);
  check('cat dim 1', (a, b) => ramp(tsm.Tensor.cat([a, b], 1)), () => [U([2, 2, 3]), U([2, 1, 3])]);
  check('cat dim -1', (a, b) => ramp(tsm.cat([a, b], -1)), () => [U([2, 2]), U([2, 3])]);
  check('stack dim 0', (a, b) => ramp(tsm.stack([a, b])), () => [U([2, 3]), U([2, 3])]);
  check('stack dim 2', (a, b, c) => ramp(tsm.Tensor.stack([a, b, c], 2)), () => [U([2, 3]), U([2, 3]), U([2, 3])]);
  check('gather dim 1 (repeated indices)', (a) => ramp(a.gather(1, I([0, 2, 2, 1, 1, 1, 3, 0], [2, 4]))), () => [U([2, 4])]);
  check('gather dim 0 (smaller index)', (a) => ramp(tsm.gather(a, 0, I([2, 0, 1], [1, 3]))), () => [U([3, 3])]);
  check('indexSelect dim 0 (repeats, negative)', (a) => ramp(tsm.indexSelect(a, 0, I([2, 0, 2, -1]))), () => [U([4, 3])]);
  check('indexSelect dim 1 (array index)', (a) => ramp(tsm.indexSelect(a, 1, [3, 1, 1])), () => [U([2, 4, 2])]);
  check('index()', (a) => ramp(a.index([1, 1, 0])), () => [U([3, 2])]);
  check('clone', (a) => ramp(a.clone()), x);
  check('contiguous', (a) => ramp(a.contiguous()), x);
});

describe('gradcheck: conv2d and pools', () => {
  const conv = (opts: tsm.F.Conv2dOptions) => (x: Tensor, w: Tensor, b?: Tensor) => F.conv2d(x, w, b ?? null, opts);
  check('conv2d 3x3', conv({}), () => [U([2, 2, 5, 5]), U([3, 2, 3, 3]), U([3])]);
  check('conv2d stride 2, padding 1, no bias', conv({ stride: 2, padding: 1 }), () => [U([1, 2, 6, 5]), U([2, 2, 3, 3])]);
  check('conv2d dilation 2, padding 2', conv({ dilation: 2, padding: 2 }), () => [U([1, 1, 5, 6]), U([2, 1, 3, 2]), U([2])]);
  check('conv2d groups 2, stride [1,2], padding [0,1]', conv({ groups: 2, stride: [1, 2], padding: [0, 1] }),
    () => [U([2, 4, 4, 5]), U([4, 2, 2, 3]), U([4])]);
  check('conv2d depthwise (groups = C, 2 filters each)', conv({ groups: 3, padding: 1 }), () => [U([1, 3, 4, 4]), U([6, 1, 3, 3]), U([6])]);
  check('conv2d 1x1', conv({}), () => [U([2, 3, 3, 3]), U([2, 3, 1, 1])]);
  check('maxPool2d 2', (x) => F.maxPool2d(x, 2), () => [distinct([2, 2, 4, 4])]);
  check('maxPool2d 3, stride 2, padding 1, ceil', (x) => F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }),
    () => [distinct([1, 2, 6, 5])]);
  check('maxPool2d [2,3] stride 1 dilation 2', (x) => F.maxPool2d(x, { kernelSize: [2, 3], stride: 1, dilation: 2 }),
    () => [distinct([1, 2, 5, 6])]);
  // A ReLU of an op's output is deferred and max pooling reads through it (lib/ops.ts unary, F.maxPool2d)
  check('conv2d -> relu -> maxPool2d 2 (pooled through the ReLU)', (x, w, b) => F.maxPool2d(F.conv2d(x, w, b).relu(), 2),
    () => [U([2, 2, 6, 6]), U([3, 2, 3, 3]), U([3])], { eps: 1e-3, rtol: 1e-2, atol: 5e-4 });
  check('relu -> maxPool2d 3, stride 2, padding 1, ceil', (x) => F.maxPool2d(x.mul(2).relu(), { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }),
    () => [away([1, 2, 6, 5])]);
  check('relu -> maxPool2d dilation 2 (plain path)', (x) => F.maxPool2d(x.mul(2).relu(), { kernelSize: [2, 3], stride: 1, dilation: 2 }),
    () => [away([1, 2, 5, 6])]);
  check('relu read by maxPool2d and by another op', (x) => {
    const h = x.mul(2).relu();
    return tsm.cat([F.maxPool2d(h, 2).flatten(), h.mul(h).flatten()], 0);
  }, () => [away([1, 2, 4, 4])]);
  check('avgPool2d 2', (x) => F.avgPool2d(x, 2), () => [U([2, 2, 4, 4])]);
  check('avgPool2d 3 stride 2 padding 1 ceil, countIncludePad', (x) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }),
    () => [U([1, 2, 6, 5])]);
  check('avgPool2d 3 stride 2 padding 1 ceil, !countIncludePad',
    (x) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false }), () => [U([1, 2, 6, 5])]);
  check('adaptiveAvgPool2d 7x5 -> 3x2', (x) => F.adaptiveAvgPool2d(x, [3, 2]), () => [U([1, 2, 7, 5])]);
  check('adaptiveAvgPool2d 3x3 -> 4x5 (upsampling)', (x) => F.adaptiveAvgPool2d(x, [4, 5]), () => [U([1, 1, 3, 3])]);
  check('adaptiveAvgPool2d -> 1', (x) => F.adaptiveAvgPool2d(x, 1), () => [U([2, 2, 3, 4])]);
});

describe('gradcheck: normalisation, embedding, dropout', () => {
  check('layerNorm last dim with affine', (x, w, b) => F.layerNorm(x, [5], w, b), () => [U([3, 5], -2, 2), U([5], 0.5, 1.5), U([5])]);
  check('layerNorm two dims, no affine', (x) => F.layerNorm(x, [3, 4]), () => [U([2, 3, 4], -2, 2)]);
  check('layerNorm eps 1e-2, number shape', (x, w) => F.layerNorm(x, 4, w, null, 1e-2), () => [U([3, 4]), U([4], 0.5, 1.5)]);
  check('batchNorm training (N,C,H,W) with affine', (x, w, b) => F.batchNorm(x, null, null, w, b, { training: true }),
    () => [U([3, 2, 2, 2], -2, 2), U([2], 0.5, 1.5), U([2])]);
  check('batchNorm training (N,C), no affine', (x) => F.batchNorm(x, null, null, null, null, { training: true }), () => [U([5, 3], -2, 2)]);
  check('batchNorm eval with running stats', (x, w, b) =>
    F.batchNorm(x, tsm.tensor([0.1, -0.3]), tsm.tensor([0.8, 1.7]), w, b, { training: false }),
  () => [U([2, 2, 3, 2]), U([2], 0.5, 1.5), U([2])]);
  check('embedding (repeated rows)', (w) => F.embedding(I([1, 3, 1, 0, 3, 3], [2, 3]), w), () => [U([5, 3])]);
  // The padding row gets no gradient (PyTorch): mask the outputs that read it, so that the
  // function's true gradient there is 0 too; the zero itself is checked below.
  check('embedding with paddingIdx', (w) => F.embedding(I([1, 2, 2, 0]), w, 2).mul(tsm.tensor([[1], [0], [0], [1]])),
    () => [U([4, 3])]);
  it('embedding: the paddingIdx row gets a zero gradient even where used', () => tsm.tidy(() => {
    const w = U([4, 3]).requiresGrad_();
    F.embedding(I([1, 2, 2, 0]), w, 2).sum().backward();
    expect(Array.from(w.grad!.dataSync())).toEqual([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  }));
  check('dropout (same seed each call)', (x) => { tsm.manualSeed(7); return F.dropout(x, 0.4, true); }, () => [U([4, 5])]);
  check('dropout in eval is the identity', (x) => F.dropout(x, 0.4, false), () => [U([4, 5])]);
});

describe('gradcheck: losses', () => {
  const ce = (t: () => Tensor, opts: tsm.F.CrossEntropyOptions) => (x: Tensor) => F.crossEntropy(x, t(), opts);
  const t5 = () => I([2, 0, 3, 3, 1]);
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    check(`crossEntropy ${reduction}`, ce(t5, { reduction }), () => [U([5, 4], -2, 2)]);
    check(`crossEntropy ${reduction} ignoreIndex 3`, ce(t5, { reduction, ignoreIndex: 3 }), () => [U([5, 4], -2, 2)]);
    check(`crossEntropy ${reduction} labelSmoothing 0.2`, ce(t5, { reduction, labelSmoothing: 0.2 }), () => [U([5, 4], -2, 2)]);
    check(`crossEntropy ${reduction} ignoreIndex -100 + smoothing 0.1`, ce(() => I([2, -100, 3, 0, -100]), { reduction, labelSmoothing: 0.1 }),
      () => [U([5, 4], -2, 2)]);
    check(`crossEntropy (N,C,d1,d2) ${reduction}`, ce(() => I([0, 2, 1, 1, 2, 0, 0, 1], [2, 2, 2]), { reduction, labelSmoothing: 0.05 }),
      () => [U([2, 3, 2, 2], -2, 2)]);
  }
  check('crossEntropy 1-d logits, 0-d target', ce(() => tsm.tensor(2, { dtype: 'int32' }), {}), () => [U([4], -2, 2)]);
  check('nn.CrossEntropyLoss', (x) => new tsm.nn.CrossEntropyLoss({ labelSmoothing: 0.1 }).forward(x, t5()), () => [U([5, 4], -2, 2)]);
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    check(`nllLoss ${reduction}`, (x) => F.nllLoss(x, t5(), { reduction }), () => [U([5, 4], -3, 0)]);
    check(`nllLoss ${reduction} ignoreIndex 0`, (x) => F.nllLoss(x, t5(), { reduction, ignoreIndex: 0 }), () => [U([5, 4], -3, 0)]);
    check(`mseLoss ${reduction}`, (x, t) => F.mseLoss(x, t, { reduction }), () => [U([3, 4]), U([3, 4])]);
    // log(p) near p = 0.1 has f''' = 2/p^3 = 2000: a step of 1e-3 keeps the truncation error at ~3e-4.
    check(`binaryCrossEntropy ${reduction}`, (p, t) => F.binaryCrossEntropy(p, t, { reduction }), () => [U([3, 4], 0.1, 0.9), U([3, 4], 0, 1)],
      { eps: 1e-3 });
    check(`binaryCrossEntropyWithLogits ${reduction}`, (x, t) => F.binaryCrossEntropyWithLogits(x, t, { reduction }),
      () => [U([3, 4], -3, 3), U([3, 4], 0, 1)]);
  }
  check('binaryCrossEntropy with weight', (p, t, w) => F.binaryCrossEntropy(p, t, { weight: w }), () => [U([3, 4], 0.1, 0.9), U([3, 4], 0, 1), U([3, 4], 0.5, 2)],
    { wrt: [0, 1], eps: 1e-3 });
  check('binaryCrossEntropyWithLogits posWeight', (x, t, pw) => F.binaryCrossEntropyWithLogits(x, t, { posWeight: pw }),
    () => [U([3, 4], -3, 3), U([3, 4], 0, 1), U([4], 0.5, 3)]);
  check('logSoftmax + nllLoss = crossEntropy path', (x) => F.nllLoss(F.logSoftmax(x, 1), t5()), () => [U([5, 4], -2, 2)]);
});

describe('gradcheck: a small network end to end', () => {
  check('conv -> relu -> maxPool -> flatten -> linear -> crossEntropy', (x, w1, b1, w2, b2) => {
    const h = F.maxPool2d(F.conv2d(x, w1, b1, { padding: 1 }).relu(), 2).flatten(1);
    return F.crossEntropy(F.linear(h, w2, b2), I([1, 0]));
  }, () => [U([2, 1, 4, 4]), U([2, 1, 3, 3]), U([2]), U([2, 8]), U([2])], { eps: 1e-3, rtol: 1e-2, atol: 5e-4 });
});

// ---------------------------------------------------------------------------------------------

describe('autograd semantics', () => {
  it('gradients accumulate across two backward() calls', () => tsm.tidy(() => {
    const x = tsm.tensor([1, -2, 3], { requiresGrad: true });
    x.mul(x).sum().backward();
    expect(Array.from(x.grad!.dataSync())).toEqual([2, -4, 6]);
    x.mul(3).sum().backward();
    expect(Array.from(x.grad!.dataSync())).toEqual([5, -1, 9]);
  }));

  it('a leaf used twice (and through two paths) gets the sum', () => tsm.tidy(() => {
    const x = tsm.tensor([0.5, 2], { requiresGrad: true });
    const y = x.mul(x).add(x.exp().mul(x)); // x^2 + x e^x
    y.sum().backward();
    const xs = [0.5, 2];
    x.grad!.dataSync().forEach((g, i) => expect(g).toBeCloseTo(2 * xs[i] + Math.exp(xs[i]) * (1 + xs[i]), 5));
  }));

  it('an intermediate used twice gets the sum (diamond)', () => tsm.tidy(() => {
    const x = tsm.tensor([1.5], { requiresGrad: true });
    const h = x.mul(2);
    h.mul(h).add(h).sum().backward(); // (2x)^2 + 2x -> 8x + 2
    expect(x.grad!.item()).toBeCloseTo(14, 5);
  }));

  it('detach cuts the graph and shares data', () => tsm.tidy(() => {
    const x = tsm.tensor([1, 2], { requiresGrad: true });
    const d = x.mul(3).detach();
    expect(d.requiresGrad).toBe(false);
    const y = x.mul(d).sum(); // d is a constant: dy/dx = d
    y.backward();
    expect(Array.from(x.grad!.dataSync())).toEqual([3, 6]);
    const v = x.detach();
    expect(v.requiresGrad).toBe(false);
    expect(Array.from(v.dataSync())).toEqual([1, 2]);
  }));

  it('noGrad records nothing, restores the mode, and isGradEnabled reports it', () => tsm.tidy(() => {
    const x = tsm.tensor([1, 2], { requiresGrad: true });
    expect(tsm.isGradEnabled()).toBe(true);
    const y = tsm.noGrad(() => {
      expect(tsm.isGradEnabled()).toBe(false);
      return x.mul(2).sum();
    });
    expect(tsm.isGradEnabled()).toBe(true);
    expect(y.requiresGrad).toBe(false);
    expect(() => y.backward()).toThrow(RangeError);
    expect(() => tsm.noGrad(() => { throw new Error('inner'); })).toThrow('inner');
    expect(tsm.isGradEnabled()).toBe(true);
  }));

  it('backward() on a non-scalar without a gradient throws; with one it works', () => tsm.tidy(() => {
    const x = tsm.tensor([[1, 2], [3, 4]], { requiresGrad: true });
    const y = x.mul(x);
    expect(() => y.backward()).toThrow(RangeError);
    expect(() => y.backward()).toThrow(/backward: .*non-scalar.*\[2, 2\]/);
    expect(() => y.backward(tsm.ones([3]))).toThrow(RangeError);
    y.backward(tsm.tensor([[1, 0], [0.5, 2]]));
    expect(Array.from(x.grad!.dataSync())).toEqual([2, 0, 3, 16]);
  }));

  it('a second backward through a freed graph throws a clear error', () => tsm.tidy(() => {
    const x = tsm.tensor([1, 2], { requiresGrad: true });
    const y = x.exp().sum();
    y.backward();
    expect(() => y.backward()).toThrow(/freed/);
  }));

  it('gradients do not flow into inputs without requiresGrad, nor into int tensors', () => tsm.tidy(() => {
    const a = tsm.tensor([1, 2], { requiresGrad: true });
    const b = tsm.tensor([3, 4]);
    a.mul(b).sum().backward();
    expect(b.grad).toBeNull();
    expect(Array.from(a.grad!.dataSync())).toEqual([3, 4]);
    expect(() => tsm.tensor([1, 2], { dtype: 'int32' }).requiresGrad_()).toThrow(TypeError);
  }));

  it('requiresGrad propagates; leaves and non-leaves', () => tsm.tidy(() => {
    const a = tsm.tensor([1, 2], { requiresGrad: true });
    const y = a.add(1);
    expect(y.requiresGrad).toBe(true);
    expect(a.isLeaf).toBe(true);
    expect(y.isLeaf).toBe(false);
    expect(() => y.requiresGrad_(false)).toThrow(RangeError);
  }));

  it('backward frees the graph buffers it owned (no tensor leak)', () => {
    const x = tsm.tensor([[1, 2, 3], [4, 5, 6]], { requiresGrad: true });
    const before = tsm.memory().tensors;
    tsm.tidy(() => {
      const y = F.crossEntropy(F.layerNorm(x, [3]).relu().mul(2), I([0, 2]));
      y.backward();
    });
    expect(x.grad).not.toBeNull();
    expect(tsm.memory().tensors).toBe(before + 1); // only x.grad is new
    x.grad!.dispose();
    x.dispose();
  });
});
