// The pointwise kernels (cpp/kernels/{unary,binary,reduce,softmax,cross_entropy,rng,dropout}.cpp)
// through the raw binding, against slow float64 references (written here; softmax and
// cross-entropy in helpers/softmax-ref.ts), finite differences of those references, and the
// binding's bounds checks.
import { afterAll, describe, expect, it } from 'vitest';
import { raw } from './helpers/raw';
import { ceBackwardRef, ceRef, softmaxBackwardRef, softmaxRef } from './helpers/softmax-ref';
import { runCheck, simdPaths } from './helpers/simd-paths';
import { erf } from './helpers/erf-ref';
import { seededRandom as rng } from '../lib/text';
import { UNARY, UNARY_BACKWARD_READS_Y } from '../lib/ops';

// ---- helpers ----

// Deterministic PRNG (mulberry32) so failures reproduce.
const rand = rng(12345);
const randInt = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
function randArray(n: number, lo = -3, hi = 3): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = lo + (hi - lo) * rand();
  return a;
}
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
function contiguousStrides(shape: number[]): number[] {
  const st = new Array(shape.length).fill(0);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; --d) {
    st[d] = s;
    s *= shape[d];
  }
  return st;
}

// Exact equality of two large arrays without vitest's slow deep comparison.
function expectSame(a: Float32Array, b: Float32Array, what = '') {
  expect(a.length, `${what} length`).toBe(b.length);
  for (let i = 0; i < a.length; ++i)
    if (!Object.is(a[i], b[i])) throw new Error(`${what}[${i}]: ${a[i]} !== ${b[i]}`);
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6, what = '') {
  expect(actual.length, `${what} length`).toBe(expected.length);
  for (let i = 0; i < expected.length; ++i) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e)) {
      if (!Number.isNaN(a)) throw new Error(`${what}[${i}]: expected NaN, got ${a}`);
      continue;
    }
    if (!Number.isFinite(e)) {
      if (a !== e) throw new Error(`${what}[${i}]: expected ${e}, got ${a}`);
      continue;
    }
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e)))
      throw new Error(`${what}[${i}]: expected ${e}, got ${a} (|diff| ${Math.abs(a - e)})`);
  }
}

// ---- unary ----

const UNARY_NAMES = ['relu', 'sigmoid', 'tanh', 'gelu', 'gelu_tanh', 'exp', 'log', 'sqrt', 'abs', 'neg',
  'silu', 'square', 'reciprocal', 'sin', 'cos', 'rsqrt'] as const;
type UnaryName = (typeof UNARY_NAMES)[number];
const K = Math.sqrt(2 / Math.PI);
const sig = (x: number) => 1 / (1 + Math.exp(-x));
const UNARY_REF: Record<UnaryName, (x: number) => number> = {
  relu: (x) => (x > 0 ? x : 0),
  sigmoid: sig,
  tanh: Math.tanh,
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(K * (x + 0.044715 * x * x * x))),
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  abs: Math.abs,
  neg: (x) => -x,
  silu: (x) => x * sig(x),
  square: (x) => x * x,
  reciprocal: (x) => 1 / x,
  sin: Math.sin,
  cos: Math.cos,
  rsqrt: (x) => 1 / Math.sqrt(x),
};
const UNARY_DREF: Record<UnaryName, (x: number) => number> = {
  relu: (x) => (x > 0 ? 1 : 0),
  sigmoid: (x) => sig(x) * (1 - sig(x)),
  tanh: (x) => 1 - Math.tanh(x) ** 2,
  gelu: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
  gelu_tanh: (x) => {
    const t = Math.tanh(K * (x + 0.044715 * x ** 3));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * 0.044715 * x * x);
  },
  exp: Math.exp,
  log: (x) => 1 / x,
  sqrt: (x) => 0.5 / Math.sqrt(x),
  abs: (x) => Math.sign(x),
  neg: () => -1,
  silu: (x) => sig(x) * (1 + x * (1 - sig(x))),
  square: (x) => 2 * x,
  reciprocal: (x) => -1 / (x * x),
  sin: Math.cos,
  cos: (x) => -Math.sin(x),
  rsqrt: (x) => -0.5 * x ** -1.5,
};
// Inputs inside each op's domain, away from kinks at 0 for the finite differences.
function unaryInput(name: UnaryName, n: number): Float32Array {
  if (name === 'log' || name === 'sqrt' || name === 'rsqrt') return randArray(n, 0.05, 6);
  const x = randArray(n, -5, 5);
  if (name === 'reciprocal') for (let i = 0; i < n; ++i) x[i] = (x[i] < 0 ? -0.3 : 0.3) + x[i] / 2;
  for (let i = 0; i < n; ++i) if (Math.abs(x[i]) < 1e-3) x[i] = 0.5;
  return x;
}

describe('op tables', () => {
  it('exports the fixed op codes', () => {
    expect(raw.UNARY_OPS).toEqual(Object.fromEntries(UNARY_NAMES.map((n, i) => [n, i])));
    expect(raw.BINARY_OPS).toEqual({ add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, eq: 7,
      ne: 8, lt: 9, le: 10, gt: 11, ge: 12 });
    expect(raw.REDUCE_OPS).toEqual({ sum: 0, mean: 1, max: 2, min: 3, prod: 4 });
    expect(Object.keys(raw.UNARY_BACKWARD_READS_Y)).toEqual([...UNARY_NAMES]);
    // lib/ops.ts mirrors the table (the unary backward reads only that operand)
    expect(UNARY_NAMES.filter((n) => raw.UNARY_BACKWARD_READS_Y[n]))
      .toEqual(UNARY_NAMES.filter((n) => UNARY_BACKWARD_READS_Y.has(UNARY[n as keyof typeof UNARY])));
  });
});

describe('unary', () => {
  for (const name of UNARY_NAMES) {
    it(`${name}: forward and backward against float64 and finite differences`, () => {
      const op = raw.UNARY_OPS[name];
      for (const n of [0, 1, 7, 33, 70001]) {
        const x = unaryInput(name, n);
        const y = new Float32Array(n);
        raw.unaryForward(op, y, x);
        expectClose(y, Array.from(x, UNARY_REF[name]), 1e-5, 1e-6, `${name} y`);

        const dy = randArray(n, -2, 2);
        const dx = new Float32Array(n);
        raw.unaryBackward(op, dx, x, y, dy);
        const ref = Array.from(x, (v, i) => dy[i] * UNARY_DREF[name](v));
        expectClose(dx, ref, 1e-4, 2e-6, `${name} dx`);
      }
      // The reference derivative against central differences of the reference forward.
      const x = unaryInput(name, 50);
      for (const v of x) {
        const h = 1e-5 * Math.max(1, Math.abs(v));
        const fd = (UNARY_REF[name](v + h) - UNARY_REF[name](v - h)) / (2 * h);
        expect(Math.abs(fd - UNARY_DREF[name](v))).toBeLessThan(1e-5 * (1 + Math.abs(fd)));
      }
    });
  }

  it('works in place and on extreme inputs', () => {
    const x = new Float32Array([-1e4, -100, -1, 0, 1, 100, 1e4]);
    const y = new Float32Array(x);
    raw.unaryForward(raw.UNARY_OPS.sigmoid, y, y);
    expectClose(y, Array.from(x, sig), 1e-6, 1e-30);
    const s = new Float32Array(x);
    raw.unaryForward(raw.UNARY_OPS.silu, s, s);
    expect(Array.from(s).every(Number.isFinite)).toBe(true);
    const t = new Float32Array(x);
    raw.unaryForward(raw.UNARY_OPS.gelu_tanh, t, t);
    expectClose(t, Array.from(x, UNARY_REF.gelu_tanh), 1e-5, 1e-6);
  });

  it('reads only the forward value it needs', () => {
    const x = unaryInput('tanh', 10);
    const y = new Float32Array(10);
    raw.unaryForward(raw.UNARY_OPS.tanh, y, x);
    const dx = new Float32Array(10);
    raw.unaryBackward(raw.UNARY_OPS.tanh, dx, new Float32Array(0), y, new Float32Array(10).fill(1));
    expectClose(dx, Array.from(x, UNARY_DREF.tanh), 1e-5, 1e-6);
    raw.unaryBackward(raw.UNARY_OPS.relu, dx, x, new Float32Array(0), new Float32Array(10).fill(1));
    expectClose(dx, Array.from(x, UNARY_DREF.relu));
  });
});

// ---- binary ----

const BINARY_REF: ((a: number, b: number) => number)[] = [
  (a, b) => a + b, (a, b) => a - b, (a, b) => a * b, (a, b) => a / b, (a, b) => Math.pow(a, b),
  (a, b) => Math.max(a, b), (a, b) => Math.min(a, b),
  (a, b) => +(a === b), (a, b) => +(a !== b), (a, b) => +(a < b), (a, b) => +(a <= b), (a, b) => +(a > b),
  (a, b) => +(a >= b),
];

function operandData(op: number, n: number, which: 'a' | 'b'): Float32Array {
  if (op === 4) return which === 'a' ? randArray(n, 0.1, 3) : randArray(n, -2, 2);
  if (op === 3 && which === 'b') {
    const b = randArray(n, 0.5, 3);
    for (let i = 0; i < n; ++i) if (rand() < 0.5) b[i] = -b[i];
    return b;
  }
  if (op >= 5) return Float32Array.from({ length: n }, () => randInt(-2, 2)); // ties for comparisons
  return randArray(n);
}

function binaryRef(op: number, a: Float32Array, b: Float32Array, shape: number[], sa: number[], sb: number[]) {
  const n = prod(shape);
  const out = new Float64Array(n);
  const idx = new Array(shape.length).fill(0);
  for (let i = 0; i < n; ++i) {
    let r = i, oa = 0, ob = 0;
    for (let d = shape.length - 1; d >= 0; --d) {
      idx[d] = r % shape[d];
      r = Math.floor(r / shape[d]);
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    out[i] = BINARY_REF[op](a[oa], b[ob]);
  }
  return out;
}

// Strides of an operand of shape `s` (right-aligned with out, as NumPy) broadcast to `outShape`.
function broadcastStrides(s: number[], outShape: number[]): number[] {
  const cs = contiguousStrides(s);
  const lead = outShape.length - s.length;
  return outShape.map((_, d) => (d < lead || s[d - lead] === 1 ? 0 : cs[d - lead]));
}

function runBinary(op: number, outShape: number[], aShape: number[], bShape: number[]) {
  const a = operandData(op, prod(aShape), 'a');
  const b = operandData(op, prod(bShape), 'b');
  const sa = broadcastStrides(aShape, outShape), sb = broadcastStrides(bShape, outShape);
  const out = new Float32Array(prod(outShape));
  raw.binaryForward(op, out, a, b, outShape, sa, sb);
  expectClose(out, binaryRef(op, a, b, outShape, sa, sb), 1e-5, 1e-6,
    `op ${op} out ${JSON.stringify(outShape)} a ${JSON.stringify(aShape)} b ${JSON.stringify(bShape)}`);
}

describe('binary', () => {
  it('matches the reference on random broadcasts of every kind, every op', () => {
    for (let trial = 0; trial < 300; ++trial) {
      const op = trial % 13;
      const nd = randInt(0, 5);
      const outShape = Array.from({ length: nd }, () => (rand() < 0.05 ? 0 : randInt(1, 5)));
      const pick = () => {
        const keep = randInt(0, nd); // drop leading dims
        return outShape.slice(nd - keep).map((s) => (rand() < 0.35 ? 1 : s));
      };
      runBinary(op, outShape, pick(), pick());
    }
  });

  it('fast paths: same shape, scalar, bias, column, leading broadcast, 0-d', () => {
    for (let op = 0; op < 13; ++op) {
      runBinary(op, [70001], [70001], [70001]);
      runBinary(op, [513, 130], [513, 130], []);
      runBinary(op, [513, 130], [], [513, 130]);
      runBinary(op, [257, 129], [257, 129], [129]);
      runBinary(op, [257, 129], [257, 129], [257, 1]);
      runBinary(op, [7, 64, 33], [64, 33], [7, 64, 33]);
      runBinary(op, [7, 64, 33], [7, 1, 33], [1, 64, 1]);
      runBinary(op, [], [], []);
      runBinary(op, [1, 1], [1], [1, 1]);
    }
  });

  it('reads transposed (non-contiguous) operands and writes in place', () => {
    const a = randArray(6); // a is (3, 2); out = a^T (2, 3) + b
    const b = randArray(6);
    const out = new Float32Array(6);
    raw.binaryForward(0, out, a, b, [2, 3], [1, 2], [3, 1]);
    expectClose(out, binaryRef(0, a, b, [2, 3], [1, 2], [3, 1]));
    const x = randArray(1000), y = randArray(1000);
    const expected = binaryRef(2, x, y, [1000], [1], [1]);
    raw.binaryForward(2, x, x, y, [1000], [1], [1]);
    expectClose(x, expected);
  });

  it('maximum/minimum propagate NaN', () => {
    const out = new Float32Array(3);
    raw.binaryForward(5, out, new Float32Array([NaN, 1, 2]), new Float32Array([1, NaN, 3]), [3], [1], [1]);
    expect(Number.isNaN(out[0]) && Number.isNaN(out[1]) && out[2] === 3).toBe(true);
    raw.binaryForward(6, out, new Float32Array([NaN, 1, 2]), new Float32Array([1, NaN, 3]), [3], [1], [1]);
    expect(Number.isNaN(out[0]) && Number.isNaN(out[1]) && out[2] === 2).toBe(true);
  });

  it('scalarForward in both orders', () => {
    for (let op = 0; op < 13; ++op) {
      for (const n of [0, 1, 5, 40000]) {
        const x = operandData(op, n, 'a');
        const s = op === 4 ? 1.5 : op >= 5 ? 1 : -0.75;
        const out = new Float32Array(n);
        raw.scalarForward(op, out, x, s, false);
        expectClose(out, Array.from(x, (v) => BINARY_REF[op](v, s)), 1e-5, 1e-6, `scalar ${op}`);
        const xr = op === 3 || op === 4 ? operandData(3, n, 'b') : x;
        raw.scalarForward(op, out, xr, s, true);
        expectClose(out, Array.from(xr, (v) => BINARY_REF[op](s, v)), 1e-5, 1e-6, `scalar rev ${op}`);
      }
    }
  });
});

// ---- reductions ----

function reduceRef(op: number, x: Float32Array, outer: number, dim: number, inner: number): Float64Array {
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; ++o)
    for (let i = 0; i < inner; ++i) {
      let acc = op === 2 ? -Infinity : op === 3 ? Infinity : op === 4 ? 1 : 0;
      for (let d = 0; d < dim; ++d) {
        const v = x[(o * dim + d) * inner + i];
        if (op <= 1) acc += v;
        else if (op === 2) acc = Number.isNaN(v) || Number.isNaN(acc) ? NaN : Math.max(acc, v);
        else if (op === 3) acc = Number.isNaN(v) || Number.isNaN(acc) ? NaN : Math.min(acc, v);
        else acc *= v;
      }
      out[o * inner + i] = op === 1 ? acc / dim : acc;
    }
  return out;
}

function argRef(x: Float32Array, outer: number, dim: number, inner: number, isMax: boolean): number[] {
  const out: number[] = [];
  for (let o = 0; o < outer; ++o)
    for (let i = 0; i < inner; ++i) {
      let best = x[o * dim * inner + i], bi = 0;
      for (let d = 1; d < dim && !Number.isNaN(best); ++d) {
        const v = x[(o * dim + d) * inner + i];
        if (Number.isNaN(v) || (isMax ? v > best : v < best)) { best = v; bi = d; }
      }
      out.push(bi);
    }
  return out;
}

describe('reductions', () => {
  it('reduceForward over first, middle and last axes, every op', () => {
    const shapes: number[][] = [[1, 1, 1], [1, 7, 1], [5, 1, 3], [0, 4, 3], [3, 0, 2], [2, 3, 0], [1, 300, 1],
      [1, 257, 300], [4, 33, 1], [6, 5, 17], [3, 1000, 2], [200, 8, 40]];
    for (const [outer, dim, inner] of shapes)
      for (let op = 0; op < 5; ++op) {
        if (dim === 0 && (op === 2 || op === 3)) continue;
        const x = op === 4 ? randArray(outer * dim * inner, 0.9, 1.1) : randArray(outer * dim * inner);
        const out = new Float32Array(outer * inner);
        raw.reduceForward(op, out, x, outer, dim, inner);
        expectClose(out, reduceRef(op, x, outer, dim, inner), 1e-5, 1e-5, `reduce ${op} ${[outer, dim, inner]}`);
      }
  });

  it('long sums stay accurate; mean of nothing is NaN; max propagates NaN', () => {
    const n = 1 << 21;
    const x = new Float32Array(n).fill(0.1);
    const out = new Float32Array(1);
    raw.reduceForward(0, out, x, 1, n, 1);
    expectClose(out, [n * Math.fround(0.1)], 1e-7, 0);
    const out4 = new Float32Array(4);
    raw.reduceForward(0, out4, x, 1, n / 4, 4);
    expectClose(out4, new Array(4).fill((n / 4) * Math.fround(0.1)), 1e-7, 0);
    raw.reduceForward(1, out, new Float32Array(0), 1, 0, 1);
    expect(Number.isNaN(out[0])).toBe(true);
    const y = new Float32Array([1, NaN, 3, 2]);
    raw.reduceForward(2, out, y, 1, 4, 1);
    expect(Number.isNaN(out[0])).toBe(true);
    expect(() => raw.reduceForward(2, out, y, 1, 0, 1)).toThrow(/reduceForward: .*empty/);
  });

  it('argReduce finds the first max/min, NaN counting as the extreme', () => {
    for (const [outer, dim, inner] of [[1, 1, 1], [3, 7, 1], [2, 5, 9], [4, 1, 3], [0, 3, 2], [1, 600, 300]])
      for (const isMax of [true, false]) {
        const x = Float32Array.from({ length: outer * dim * inner }, () => randInt(-3, 3));
        if (x.length > 4) x[3] = NaN;
        const out = new Int32Array(outer * inner);
        raw.argReduce(out, x, outer, dim, inner, isMax);
        expect(Array.from(out)).toEqual(argRef(x, outer, dim, inner, isMax));
      }
  });

  it('sumToShape undoes every kind of broadcast', () => {
    const sumRef = (x: Float32Array, xs: number[], os: number[]) => {
      const out = new Float64Array(prod(os));
      const ost = contiguousStrides(os);
      const n = prod(xs);
      for (let i = 0; i < n; ++i) {
        let r = i, o = 0;
        for (let d = xs.length - 1; d >= 0; --d) {
          const id = r % xs[d];
          r = Math.floor(r / xs[d]);
          if (os[d] !== 1) o += id * ost[d];
        }
        out[o] += x[i];
      }
      return out;
    };
    const cases: [number[], number[]][] = [[[], []], [[5], [1]], [[4, 3], [1, 3]], [[4, 3], [4, 1]], [[4, 3], [1, 1]],
      [[2, 3, 4], [2, 1, 4]], [[2, 3, 4, 5], [1, 3, 1, 5]], [[2, 3, 4, 5], [2, 1, 4, 1]], [[3, 0, 2], [3, 1, 2]],
      [[0, 4], [0, 1]], [[1000, 70], [1, 70]]];
    for (let t = 0; t < 80; ++t) {
      const xs = Array.from({ length: randInt(0, 6) }, () => randInt(1, 4));
      cases.push([xs, xs.map((s) => (rand() < 0.5 ? 1 : s))]);
    }
    for (const [xs, os] of cases) {
      const x = randArray(prod(xs));
      const out = new Float32Array(prod(os));
      raw.sumToShape(out, x, xs, os);
      expectClose(out, sumRef(x, xs, os), 1e-5, 1e-5, `sumToShape ${JSON.stringify(xs)} -> ${JSON.stringify(os)}`);
    }
  });

  it('sumOfSquares and allFinite', () => {
    const a = randArray(100003), b = randArray(7), c = new Float32Array(0);
    let ref = 0;
    for (const arr of [a, b, c]) for (const v of arr) ref += v * v;
    expect(raw.sumOfSquares([a, b, c])).toBeCloseTo(ref, 6);
    expect(raw.sumOfSquares([])).toBe(0);
    expect(raw.allFinite(a)).toBe(true);
    expect(raw.allFinite(c)).toBe(true);
    for (const bad of [NaN, Infinity, -Infinity]) {
      const z = new Float32Array(a);
      z[99999] = bad;
      expect(raw.allFinite(z)).toBe(false);
    }
  });
});

// ---- softmax ----

describe('softmax', () => {
  const shapes = [[1, 1, 1], [1, 5, 1], [7, 10, 1], [2, 3, 4], [3, 17, 130], [0, 3, 1], [2, 0, 3], [1, 1000, 1], [40, 50, 7]];

  it('forward matches the reference (softmax and logSoftmax)', () => {
    for (const [outer, dim, inner] of shapes)
      for (const log of [false, true]) {
        const x = randArray(outer * dim * inner, -8, 8);
        const y = new Float32Array(x.length);
        raw.softmaxForward(y, x, outer, dim, inner, log);
        expectClose(y, softmaxRef(x, outer, dim, inner, log), 1e-5, 1e-6, `softmax ${log} ${[outer, dim, inner]}`);
      }
  });

  it('is stable for logits of +-1e4 and works in place', () => {
    const x = new Float32Array([1e4, -1e4, 0, 1e4 - 1, 9999.5, -1e4]);
    for (const log of [false, true]) {
      for (const [outer, dim, inner] of [[1, 6, 1], [1, 3, 2]]) {
        const y = new Float32Array(x);
        raw.softmaxForward(y, y, outer, dim, inner, log);
        expect(Array.from(y).every(Number.isFinite)).toBe(true);
        expectClose(y, softmaxRef(x, outer, dim, inner, log), 1e-5, 1e-6);
      }
    }
  });

  it('backward matches the reference, which matches finite differences', () => {
    for (const [outer, dim, inner] of shapes)
      for (const log of [false, true]) {
        const x = randArray(outer * dim * inner, -3, 3);
        const y = new Float32Array(x.length);
        raw.softmaxForward(y, x, outer, dim, inner, log);
        const dy = randArray(x.length);
        const dx = new Float32Array(x.length);
        raw.softmaxBackward(dx, y, dy, outer, dim, inner, log);
        const yRef = softmaxRef(x, outer, dim, inner, log);
        expectClose(dx, softmaxBackwardRef(yRef, dy, outer, dim, inner, log), 1e-4, 1e-5, `softmax bwd ${log}`);
      }
    // Finite differences of L = sum(dy * softmax(x)) on a small case.
    for (const log of [false, true]) {
      const [outer, dim, inner] = [2, 4, 3];
      const x = Array.from(randArray(24));
      const dy = Array.from(randArray(24));
      const L = (xx: number[]) => softmaxRef(xx, outer, dim, inner, log).reduce((s, v, i) => s + v * dy[i], 0);
      const g = softmaxBackwardRef(softmaxRef(x, outer, dim, inner, log), dy, outer, dim, inner, log);
      for (let k = 0; k < 24; ++k) {
        const h = 1e-6, xp = x.slice(), xm = x.slice();
        xp[k] += h;
        xm[k] -= h;
        expect(Math.abs((L(xp) - L(xm)) / (2 * h) - g[k])).toBeLessThan(1e-6);
      }
    }
  });
});

// ---- cross-entropy ----

describe('crossEntropy', () => {
  it('forward and backward match the reference; the reference matches finite differences', () => {
    for (const [N, C] of [[1, 1], [1, 2], [5, 10], [64, 33], [0, 4], [300, 1000]])
      for (const eps of [0, 0.1])
        for (const ignore of [-100, 2]) {
          const logits = randArray(N * C, -5, 5);
          const targets = Int32Array.from({ length: N }, () => (rand() < 0.2 ? ignore : randInt(0, C - 1)));
          const losses = new Float32Array(N), lp = new Float32Array(N * C);
          raw.crossEntropyForward(losses, lp, logits, targets, N, C, ignore, eps);
          const ref = ceRef(logits, targets, N, C, ignore, eps);
          expectClose(lp, ref.lp, 1e-5, 1e-5, 'logProbs');
          expectClose(losses, ref.losses, 1e-5, 1e-5, 'losses');
          const dl = randArray(N, 0.1, 2);
          const g = new Float32Array(N * C);
          raw.crossEntropyBackward(g, lp, targets, dl, N, C, ignore, eps);
          expectClose(g, ceBackwardRef(ref.lp, targets, dl, N, C, ignore, eps), 1e-5, 1e-6, 'dlogits');
        }
    const [N, C, eps] = [3, 5, 0.2];
    const logits = Array.from(randArray(N * C));
    const targets = [1, -100, 4];
    const dl = [0.5, 1, 2];
    const L = (z: number[]) => ceRef(z, targets, N, C, -100, eps).losses.reduce((s, v, i) => s + v * dl[i], 0);
    const g = ceBackwardRef(ceRef(logits, targets, N, C, -100, eps).lp, targets, dl, N, C, -100, eps);
    for (let k = 0; k < N * C; ++k) {
      const h = 1e-6, zp = logits.slice(), zm = logits.slice();
      zp[k] += h;
      zm[k] -= h;
      expect(Math.abs((L(zp) - L(zm)) / (2 * h) - g[k])).toBeLessThan(1e-6);
    }
  });

  // The row loops have a build per ISA (with their own exp): each path in a fresh process.
  for (const simd of simdPaths()) {
    it(`matches the reference with TSM_SIMD=${simd}, -inf and NaN logits included (child process)`, () => {
      const out = runCheck<{ simd: string; cases: number; failures: string[] }>('test/helpers/exp-ops-check-main.ts',
        { TSM_SIMD: simd });
      expect(out.simd).toBe(simd);
      expect(out.cases).toBe(69);
      expect(out.failures).toEqual([]);
    });
  }

  it('stays finite for logits of +-1e4', () => {
    const logits = new Float32Array([1e4, -1e4, 0, -1e4, 1e4, 5]);
    const losses = new Float32Array(2), lp = new Float32Array(6);
    raw.crossEntropyForward(losses, lp, logits, new Int32Array([1, 1]), 2, 3, -100, 0.1);
    expect(Array.from(losses).every(Number.isFinite)).toBe(true);
    expectClose(losses, ceRef(logits, [1, 1], 2, 3, -100, 0.1).losses, 1e-5, 1e-3);
  });

  it('rejects targets out of range, naming the row and value', () => {
    const losses = new Float32Array(3), lp = new Float32Array(12), logits = randArray(12);
    expect(() => raw.crossEntropyForward(losses, lp, logits, new Int32Array([0, 1, 4]), 3, 4, -100, 0))
      .toThrow(RangeError);
    expect(() => raw.crossEntropyForward(losses, lp, logits, new Int32Array([0, -1, 2]), 3, 4, -100, 0))
      .toThrow(/crossEntropyForward: targets\[1\] = -1/);
    expect(() => raw.crossEntropyBackward(lp, lp, new Int32Array([0, 1, 9]), losses, 3, 4, -100, 0))
      .toThrow(/crossEntropyBackward: targets\[2\] = 9/);
  });
});

// ---- random numbers and dropout ----

describe('rng (Philox4x32-10)', () => {
  const threads = raw.getNumThreads();
  afterAll(() => raw.setNumThreads(threads));

  it('is deterministic, seed-sensitive, offset-addressable and thread-count independent', () => {
    const n = 1 << 20;
    const a = new Float32Array(n), b = new Float32Array(n), c = new Float32Array(n);
    raw.setNumThreads(1);
    raw.rngUniform(a, 42, 7, 0, 1);
    raw.setNumThreads(2);
    raw.rngUniform(b, 42, 7, 0, 1);
    expectSame(b, a, 'uniform 1 vs 2 threads');
    raw.rngUniform(c, 43, 7, 0, 1);
    let same = 0;
    for (let i = 0; i < n; ++i) same += +(a[i] === c[i]);
    expect(same).toBeLessThan(200);
    // counter = offset + i/4: starting 3 blocks later skips 12 elements.
    const d = new Float32Array(100);
    raw.rngUniform(d, 42, 10, 0, 1);
    expectSame(d, a.subarray(12, 112), 'offset 10');
    // Seeds above 2^32 use the key's high word.
    const e = new Float32Array(16), f = new Float32Array(16);
    raw.rngUniform(e, 2 ** 40 + 5, 0, 0, 1);
    raw.rngUniform(f, 5, 0, 0, 1);
    expect(e).not.toEqual(f);

    const na = new Float32Array(n), nb = new Float32Array(n);
    raw.setNumThreads(1);
    raw.rngNormal(na, 9, 0, 0, 1);
    raw.setNumThreads(2);
    raw.rngNormal(nb, 9, 0, 0, 1);
    expectSame(nb, na, 'normal 1 vs 2 threads');
  });

  it('has the right moments over 1e6 samples', () => {
    const n = 1_000_000;
    const u = new Float32Array(n);
    raw.rngUniform(u, 1, 0, -2, 3);
    let s = 0, s2 = 0, lo = Infinity, hi = -Infinity;
    for (const v of u) { s += v; s2 += v * v; lo = Math.min(lo, v); hi = Math.max(hi, v); }
    expect(lo).toBeGreaterThanOrEqual(-2);
    expect(hi).toBeLessThan(3);
    expect(Math.abs(s / n - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n - (s / n) ** 2 - 25 / 12)).toBeLessThan(0.02);

    const g = new Float32Array(n);
    raw.rngNormal(g, 2, 0, 1.5, 2);
    s = 0; s2 = 0;
    let finite = true;
    for (const v of g) { finite &&= Number.isFinite(v); s += v; s2 += v * v; }
    expect(finite).toBe(true);
    const mean = s / n, std = Math.sqrt(s2 / n - mean * mean);
    expect(Math.abs(mean - 1.5)).toBeLessThan(0.01);
    expect(Math.abs(std - 2)).toBeLessThan(0.01);
    let within1 = 0;
    for (const v of g) within1 += +(Math.abs(v - 1.5) < 2);
    expect(Math.abs(within1 / n - 0.6827)).toBeLessThan(0.003);
    // Odd lengths and empty outputs.
    const odd = new Float32Array(7);
    raw.rngNormal(odd, 2, 0, 1.5, 2);
    expectSame(odd, g.subarray(0, 7), 'odd');
    raw.rngUniform(new Float32Array(0), 1, 0, 0, 1);
  });
});

describe('dropout', () => {
  it('scales kept elements by 1/(1-p), uses the Philox uniforms, and is deterministic', () => {
    const n = 200_003;
    const x = randArray(n);
    for (const p of [0, 0.1, 0.5, 0.9]) {
      const y = new Float32Array(n), mask = new Float32Array(n);
      raw.dropoutForward(y, mask, x, p, 77, 3);
      const u = new Float32Array(n);
      raw.rngUniform(u, 77, 3, 0, 1);
      const scale = Math.fround(1 / (1 - p));
      let dropped = 0;
      for (let i = 0; i < n; ++i) {
        const m = u[i] >= p ? scale : 0;
        if (mask[i] !== m) throw new Error(`mask[${i}] = ${mask[i]}, expected ${m}`);
        if (y[i] !== Math.fround(x[i] * m)) throw new Error(`y[${i}]`);
        dropped += +(m === 0);
      }
      expect(Math.abs(dropped / n - p)).toBeLessThan(0.01);
      const y2 = new Float32Array(n), mask2 = new Float32Array(n);
      raw.dropoutForward(y2, mask2, x, p, 77, 3);
      expectSame(y2, y, 'dropout rerun');
    }
    const y = new Float32Array(10), mask = new Float32Array(10);
    raw.dropoutForward(y, mask, randArray(10), 1, 1, 0);
    expect(Array.from(mask)).toEqual(new Array(10).fill(0));
    expect(Array.from(y).every((v) => v === 0)).toBe(true);
  });
});

// ---- bad input ----

describe('bad input is rejected by the binding', () => {
  const f = (n: number) => new Float32Array(n);
  it('wrong array types and missing arguments are TypeErrors naming op and argument', () => {
    expect(() => raw.unaryForward(0, f(3), new Float64Array(3))).toThrow(/unaryForward: x must be a Float32Array/);
    expect(() => raw.unaryForward(0, [1, 2, 3], f(3))).toThrow(TypeError);
    expect(() => raw.unaryForward('relu', f(3), f(3))).toThrow(/unaryForward: op must be a number/);
    expect(() => raw.binaryForward(0, f(2), f(2), f(2), 2, [1], [1])).toThrow(/binaryForward: outShape must be an array/);
    expect(() => raw.binaryForward(0, f(2), f(2), f(2), [2], ['1'], [1])).toThrow(/aStrides\[0\] must be a number/);
    expect(() => raw.argReduce(f(2), f(2), 1, 2, 1, true)).toThrow(/argReduce: out must be a Int32Array/);
    expect(() => raw.crossEntropyForward(f(1), f(2), f(2), f(1), 1, 2, -100, 0)).toThrow(/targets must be a Int32Array/);
    expect(() => raw.sumOfSquares([f(2), new Float64Array(2)])).toThrow(/sumOfSquares: arrays\[1\] must be a Float32Array/);
    expect(() => raw.allFinite(null)).toThrow(TypeError);
    expect(() => raw.rngUniform(f(3))).toThrow(/rngUniform: seed must be a number/);
  });

  it('short buffers, bad op codes, bad sizes and reaching strides are RangeErrors', () => {
    expect(() => raw.unaryForward(16, f(3), f(3))).toThrow(/unaryForward: op must be in \[0, 16\)/);
    expect(() => raw.unaryForward(-1, f(3), f(3))).toThrow(RangeError);
    expect(() => raw.unaryForward(0.5, f(3), f(3))).toThrow(/op must be an integer/);
    expect(() => raw.unaryForward(0, f(2), f(3))).toThrow(/unaryForward: y has 2 elements, needs 3/);
    expect(() => raw.unaryBackward(1, f(3), f(3), f(2), f(3))).toThrow(/unaryBackward: y has 2/);
    expect(() => raw.unaryBackward(0, f(3), f(2), f(3), f(3))).toThrow(/unaryBackward: x has 2/);
    expect(() => raw.unaryBackward(0, f(2), f(3), f(3), f(3))).toThrow(/unaryBackward: dx has 2/);
    expect(() => raw.binaryForward(13, f(2), f(2), f(2), [2], [1], [1])).toThrow(/binaryForward: op must be in/);
    expect(() => raw.binaryForward(0, f(5), f(6), f(6), [2, 3], [3, 1], [3, 1])).toThrow(/binaryForward: out has 5/);
    expect(() => raw.binaryForward(0, f(6), f(6), f(6), [2, 3], [3, 2], [3, 1])).toThrow(/aStrides .*reach/);
    expect(() => raw.binaryForward(0, f(6), f(6), f(5), [2, 3], [3, 1], [3, 1])).toThrow(/bStrides .*reach/);
    expect(() => raw.binaryForward(0, f(6), f(6), f(6), [2, 3], [-3, 1], [3, 1])).toThrow(/aStrides\[0\]/);
    expect(() => raw.binaryForward(0, f(6), f(6), f(6), [2, 3], [3], [3, 1])).toThrow(/same length/);
    expect(() => raw.binaryForward(0, f(1), f(1), f(1), new Array(9).fill(1), new Array(9).fill(0),
      new Array(9).fill(0))).toThrow(/at most 8/);
    expect(() => raw.binaryForward(0, f(1), f(1), f(1), [2 ** 40, 2 ** 40], [0, 0], [0, 0])).toThrow(RangeError);
    expect(() => raw.binaryForward(0, f(2), f(1), f(1), [2], [2 ** 52], [0])).toThrow(/aStrides/);
    expect(() => raw.scalarForward(0, f(2), f(3), 1, false)).toThrow(/scalarForward: out has 2/);
    expect(() => raw.reduceForward(5, f(1), f(3), 1, 3, 1)).toThrow(/reduceForward: op must be in \[0, 5\)/);
    expect(() => raw.reduceForward(0, f(1), f(5), 2, 3, 1)).toThrow(/reduceForward: x has 5/);
    expect(() => raw.reduceForward(0, f(1), f(6), 2, 3, 1)).toThrow(/reduceForward: out has 1/);
    expect(() => raw.reduceForward(0, f(1), f(6), -2, -3, 1)).toThrow(/outer must be >= 0/);
    expect(() => raw.reduceForward(0, f(1), f(6), 2 ** 40, 2 ** 40, 1)).toThrow(/too large/);
    expect(() => raw.argReduce(new Int32Array(1), f(6), 2, 3, 1, true)).toThrow(/argReduce: out has 1/);
    expect(() => raw.sumToShape(f(3), f(6), [2, 3], [2, 3])).toThrow(/sumToShape: out has 3/);
    expect(() => raw.sumToShape(f(6), f(6), [2, 3], [2, 2])).toThrow(/sumToShape: outShape\[1\] = 2/);
    expect(() => raw.sumToShape(f(6), f(6), [2, 3], [6])).toThrow(/same length/);
    expect(() => raw.softmaxForward(f(5), f(6), 2, 3, 1, false)).toThrow(/softmaxForward: y has 5/);
    expect(() => raw.softmaxBackward(f(6), f(6), f(5), 2, 3, 1, true)).toThrow(/softmaxBackward: dy has 5/);
    expect(() => raw.crossEntropyForward(f(2), f(6), f(6), new Int32Array(1), 2, 3, -100, 0)).toThrow(/targets has 1/);
    expect(() => raw.crossEntropyForward(f(2), f(5), f(6), new Int32Array(2), 2, 3, -100, 0)).toThrow(/logProbs has 5/);
    expect(() => raw.crossEntropyForward(f(2), f(6), f(6), new Int32Array(2), 2, 3, -100, 1.5)).toThrow(/labelSmoothing/);
    expect(() => raw.crossEntropyBackward(f(6), f(6), new Int32Array(2), f(1), 2, 3, -100, 0)).toThrow(/dlosses has 1/);
    expect(() => raw.rngUniform(f(3), -1, 0, 0, 1)).toThrow(/rngUniform: seed/);
    expect(() => raw.rngUniform(f(3), 2 ** 53, 0, 0, 1)).toThrow(/rngUniform: seed/);
    expect(() => raw.rngUniform(f(3), 1, -1, 0, 1)).toThrow(/rngUniform: offset/);
    expect(() => raw.rngUniform(f(3), 1, 0, 2, 1)).toThrow(/low must be <= high/);
    expect(() => raw.rngNormal(f(3), 1, 0, 0, -1)).toThrow(/rngNormal: std/);
    expect(() => raw.dropoutForward(f(3), f(3), f(3), 1.5, 1, 0)).toThrow(/dropoutForward: p/);
    expect(() => raw.dropoutForward(f(3), f(2), f(3), 0.5, 1, 0)).toThrow(/dropoutForward: mask has 2/);
    const shared = f(3);
    expect(() => raw.dropoutForward(f(3), shared, shared, 0.5, 1, 0)).toThrow(/mask must not share/);
  });
});
