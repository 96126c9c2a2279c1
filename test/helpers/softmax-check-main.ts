// Child-process entry of the softmax and cross-entropy checks on the SIMD path chosen by TSM_SIMD
// (their row loops have a build per ISA, with their own exp), against the float64 references:
//  - softmax and log-softmax forward and backward, rows (inner 1) and strided tiles (inner > 1),
//    in place too, for lengths around the 16-lane steps and the 256-element blocks of the sums;
//  - cross-entropy forward (log_probs, losses) and backward (dlogits) over the same lengths, with
//    and without label smoothing and ignored rows; -inf logits give log_probs of -inf and gradients
//    of exactly 0; a NaN logit makes its row NaN.
// Prints one JSON line {simd, cases, failures}.
import { buildInfo } from '../../lib/runtime';
import { expectClose, seededHelpers } from './conv-check';
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
