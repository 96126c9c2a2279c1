// erf and erfc in float64 for the tests' references: the Maclaurin series below |x| = 3, the
// continued fraction of erfc above (computed directly, so erfc keeps its relative accuracy in the
// tail, where 1 - erf would cancel). Shared by native-pointwise.test.ts and exp-ops-check-main.ts.

/** erfc(x) for x >= 3: exp(-x^2) / sqrt(pi) / (x + 1/2 / (x + 1 / (x + 3/2 / (x + ...)))). */
function erfcTail(x: number): number {
  let f = x;
  for (let k = 60; k >= 1; --k) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x, sum = x;
    for (let n = 1; n < 200; ++n) {
      term *= (-x * x) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  const tail = erfcTail(ax);
  return x > 0 ? 1 - tail : tail - 1;
}

export function erfc(x: number): number {
  return x >= 3 ? erfcTail(x) : 1 - erf(x);
}
