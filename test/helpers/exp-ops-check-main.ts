// Child-process entry of the checks of the ops built on exp_approx (cpp/kernels/simd/exp_approx.h),
// on the SIMD path chosen by TSM_SIMD (their loops have a build per ISA), against float64 references:
//  - sigmoid, tanh, SiLU and both GELUs, forward and backward, over arguments from 1e-12 to 100 in
//    size (small tanh arguments keep their relative accuracy; subnormal sigmoid results are kept) and
//    NaN, +-inf, +-0;
//  - softmax and log-softmax forward and backward, rows (inner 1) and strided tiles (inner > 1),
//    in place too, for lengths around the 16-lane steps and the 256-element blocks of the sums;
//  - cross-entropy forward (log_probs, losses) and backward (dlogits) over the same lengths, with
//    and without label smoothing and ignored rows; -inf logits give log_probs of -inf and gradients
//    of exactly 0; a NaN logit makes its row NaN.
// Prints one JSON line {simd, cases, failures}.
import { buildInfo } from '../../lib/runtime';
import { expectClose, seededHelpers } from './conv-check';
import { erfc } from './erf-ref';
import { raw } from './raw';
import { ceBackwardRef, ceRef, softmaxBackwardRef, softmaxRef } from './softmax-ref';

const { rand, randint } = seededHelpers(2024);
const failures: string[] = [];
let cases = 0;
const check = (what: string, fn: () => void) => {
  cases++;
  try {
    fn();
  } catch (err) {
    failures.push(`${what}: ${(err as Error).message}`);
  }
};

// ---- activations ----
const sig = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const K = Math.sqrt(2 / Math.PI), C = 0.044715;
// The normal CDF from erfc on both sides (no 1 + erf(z) cancelling for negative x).
const phi = (x: number) => (x > 0 ? 1 - 0.5 * erfc(x / Math.SQRT2) : 0.5 * erfc(-x / Math.SQRT2));
const ACT: Record<string, { f: (x: number) => number; d: (x: number) => number; rtol: number }> = {
  sigmoid: { f: sig, d: (x) => sig(x) * (1 - sig(x)), rtol: 4e-7 },
  tanh: { f: Math.tanh, d: (x) => 1 - Math.tanh(x) ** 2, rtol: 4e-7 },
  silu: { f: (x) => x * sig(x), d: (x) => sig(x) * (1 + x * (1 - sig(x))), rtol: 4e-7 },
  // x Phi(x); where Phi(x) is small, exp(-x^2/2) of the rounded float square limits it (1.2e-5 at
  // x = -12.6 in a dense sweep, 1.1e-6 for |x| < 4)
  gelu: { f: (x) => x * phi(x), d: (x) => phi(x) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI), rtol: 3e-5 },
  // x sigmoid(2u) = 0.5 x (1 + tanh u) without the cancellation; the float argument u limits it to ~1e-5
  gelu_tanh: {
    f: (x) => x * sig(2 * K * (x + C * x ** 3)),
    d: (x) => {
      const s = sig(2 * K * (x + C * x ** 3));
      return s + 2 * x * s * (1 - s) * K * (1 + 3 * C * x * x);
    },
    rtol: 2e-5,
  },
};
const sweep: number[] = [];
for (let e = -12; e <= 2; e += 0.05) sweep.push(10 ** e, -(10 ** e));
for (let v = -100; v <= 100; v += 0.37) sweep.push(v);
const xs = Float32Array.from(sweep);
const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
for (const [name, ref] of Object.entries(ACT)) {
  check(`${name} forward and backward`, () => {
    const op = raw.UNARY_OPS[name];
    const y = new Float32Array(xs.length);
    raw.unaryForward(op, y, xs);
    for (let i = 0; i < xs.length; i++) {
      const want = ref.f(xs[i]);
      // (below 1e-38 results are subnormal, with fewer significant bits: SiLU's x * sigmoid(x) at
      // x = -100 multiplies one such; they are checked on their own below)
      if (!(Math.abs(y[i] - want) <= ref.rtol * Math.abs(want) + 1e-39))
        throw new Error(`${name}(${xs[i]}) = ${y[i]}, want ${want}`);
    }
    const dy = Float32Array.from(xs, (_, i) => ((i * 7919) % 13) / 6.5 - 1);
    const dx = new Float32Array(xs.length);
    raw.unaryBackward(op, dx, xs, y, dy);
    for (let i = 0; i < xs.length; i++) {
      const want = dy[i] * ref.d(xs[i]);
      if (!(Math.abs(dx[i] - want) <= 1e-4 * Math.abs(want) + 1e-6))
        throw new Error(`${name}' at ${xs[i]}: dx ${dx[i]}, want ${want}`);
    }
  });
}
check('sigmoid keeps subnormal results', () => {
  const x = new Float32Array([-87.2, -90, -100, -103, -110]), y = new Float32Array(5);
  raw.unaryForward(raw.UNARY_OPS.sigmoid, y, x);
  x.forEach((v, i) => {
    const want = Math.fround(sig(v));  // subnormals round to multiples of 2^-149
    if (!(Math.abs(y[i] - want) <= 2 ** -149 + 1e-6 * want)) throw new Error(`sigmoid(${v}) = ${y[i]}, want ${want}`);
  });
});
check('activations at NaN, +-inf, +-0', () => {
  const sp = new Float32Array([NaN, Infinity, -Infinity, 0, -0]);
  const want: Record<string, number[]> = {
    sigmoid: [NaN, 1, 0, 0.5, 0.5], tanh: [NaN, 1, -1, 0, -0], silu: [NaN, Infinity, NaN, 0, -0],
    gelu: [NaN, Infinity, NaN, 0, -0], gelu_tanh: [NaN, Infinity, NaN, 0, -0],
  };
  for (const name of Object.keys(want)) {
    const y = new Float32Array(sp.length);
    raw.unaryForward(raw.UNARY_OPS[name], y, sp);
    want[name].forEach((w, i) => {
      if (!same(y[i], w)) throw new Error(`${name}(${sp[i]}) = ${Object.is(y[i], -0) ? '-0' : y[i]}, want ${w}`);
    });
  }
});

for (const [outer, dim, inner] of [[3, 1, 1], [5, 15, 1], [4, 16, 1], [3, 33, 1], [2, 257, 1], [2, 1000, 1],
  [2, 17, 3], [2, 9, 130], [1, 300, 20]]) {
  for (const log of [false, true]) {
    for (const inPlace of [false, true]) {
      check(`softmax ${outer}x${dim}x${inner} log=${log} inPlace=${inPlace}`, () => {
        const n = outer * dim * inner;
        const x = Float32Array.from({ length: n }, () => (rand() * 2 - 1) * 10);
        const want = softmaxRef(x, outer, dim, inner, log);
        const y = inPlace ? x.slice() : new Float32Array(n);
        raw.softmaxForward(y, inPlace ? y : x, outer, dim, inner, log);
        expectClose(y, want, 'y', 2e-6);
        const dy = Float32Array.from({ length: n }, () => rand() * 2 - 1);
        const wantDx = softmaxBackwardRef(y, dy, outer, dim, inner, log);
        const dx = inPlace ? dy.slice() : new Float32Array(n);
        raw.softmaxBackward(dx, y, inPlace ? dx : dy, outer, dim, inner, log);
        expectClose(dx, wantDx, 'dx', 2e-6);
      });
    }
  }
}

for (const C of [1, 2, 10, 15, 16, 17, 33, 255, 256, 257, 1000, 4099]) {
  for (const eps of [0, 0.1]) {
    const N = C > 1000 ? 3 : 9, ignore = 2;
    check(`C${C} eps ${eps}`, () => {
      const logits = Float32Array.from({ length: N * C }, () => (rand() * 2 - 1) * 12);
      const targets = Int32Array.from({ length: N }, (_, i) => (i === 4 ? ignore : randint(0, C - 1)));
      const losses = new Float32Array(N), lp = new Float32Array(N * C);
      raw.crossEntropyForward(losses, lp, logits, targets, N, C, ignore, eps);
      const ref = ceRef(logits, targets, N, C, ignore, eps);
      expectClose(lp, ref.lp, 'logProbs', 2e-6);
      expectClose(losses, ref.losses, 'losses', 2e-6);
      const dl = Float32Array.from({ length: N }, () => 0.1 + rand());
      const g = new Float32Array(N * C).fill(9);
      raw.crossEntropyBackward(g, lp, targets, dl, N, C, ignore, eps);
      expectClose(g, ceBackwardRef(ref.lp, targets, dl, N, C, ignore, eps), 'dlogits', 2e-6);
    });
  }
}

check('-inf logits', () => {
  const C = 40, logits = new Float32Array(C).map((_, j) => (j % 3 === 0 ? -Infinity : j / 10));
  const losses = new Float32Array(1), lp = new Float32Array(C), g = new Float32Array(C).fill(9);
  raw.crossEntropyForward(losses, lp, logits, new Int32Array([1]), 1, C, -100, 0);
  raw.crossEntropyBackward(g, lp, new Int32Array([1]), new Float32Array([1]), 1, C, -100, 0);
  for (let j = 0; j < C; j += 3) {
    if (lp[j] !== -Infinity) throw new Error(`logProbs[${j}] = ${lp[j]}, want -Infinity`);
    if (!Object.is(g[j], 0)) throw new Error(`dlogits[${j}] = ${g[j]}, want 0`);
  }
  if (!Number.isFinite(losses[0])) throw new Error(`loss ${losses[0]}`);
});
check('NaN logit', () => {
  const C = 37, logits = new Float32Array(2 * C).map((_, j) => j / 7);
  logits[C + 20] = NaN;
  const losses = new Float32Array(2), lp = new Float32Array(2 * C);
  raw.crossEntropyForward(losses, lp, logits, new Int32Array([0, 0]), 2, C, -100, 0);
  if (!Number.isFinite(losses[0]) || !Number.isNaN(losses[1])) throw new Error(`losses ${losses[0]}, ${losses[1]}`);
  for (let j = C; j < 2 * C; j++) if (!Number.isNaN(lp[j])) throw new Error(`logProbs[${j}] = ${lp[j]}, want NaN`);
});

process.stdout.write(JSON.stringify({ simd: buildInfo().simd, cases, failures }) + '\n');
