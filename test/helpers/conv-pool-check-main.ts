// Child-process entry of the checks of the fused convolution + max pooling (cpp/kernels/conv_pool.cpp)
// on the SIMD path chosen by TSM_SIMD, against float64 references: random geometries (strides,
// padding, dilation, groups, both backward paths: patch rows of up to 8 columns in registers and the
// general tap loop), the MNIST CNN's first layer, pooling with and without the ReLU, and in ceil mode.
//   forward:  y within rounding of the reference's pooled maximum, and each index naming a tap whose
//             reference value is that maximum (to rounding: near-ties may pick either);
//   backward: dw and dbias (alone: the patch-rows path where it applies) and dx, dw, dbias together
//             (the channels path) against the float64 gradients of the pooling's scatter of dy
//             (masked by y > 0 through the ReLU) at the kernel's own indices, with some of dy zero
//             (the winners the channels path skips).
// Prints one JSON line {simd, cases, failures}.
import { buildInfo } from '../../lib/runtime';
import { convArgs, convOut, refConvBackwardData, refConvBackwardWeight, refConvForward, seededHelpers, type Conv } from './conv-check';
import { raw } from './raw';

const { rand, randint, pick, randn } = seededHelpers(4242);
const failures: string[] = [];
let cases = 0;

interface Pool { k: number; s: number; p: number; d: number; ceil: boolean; relu: boolean }

function check(c: Conv, pl: Pool, bias: boolean): void {
  const what = `${JSON.stringify(c)} pool ${JSON.stringify(pl)} bias=${bias}`;
  const [OH, OW] = convOut(c);
  const POH = raw.pool2dOutputSize(OH, pl.k, pl.s, pl.p, pl.d, pl.ceil), POW = raw.pool2dOutputSize(OW, pl.k, pl.s, pl.p, pl.d, pl.ceil);
  if (POH < 1 || POW < 1) return;
  const x = randn(c.N * c.C * c.H * c.W), w = randn(c.OC * (c.C / c.groups) * c.KH * c.KW), b = bias ? randn(c.OC) : null;
  const ny = c.N * c.OC * POH * POW;
  const y = new Float32Array(ny).fill(NaN), idx = new Int32Array(ny).fill(-7);
  raw.conv2dMaxPool2dForward(y, idx, x, w, b, ...convArgs(c), pl.k, pl.k, pl.s, pl.s, pl.p, pl.p, pl.d, pl.d, pl.ceil, pl.relu);
  cases++;
  const z = refConvForward(c, x, w, b);
  const tap = (v: number) => (pl.relu ? Math.max(v, 0) : v);
  let scale = 1e-3;
  for (const v of z) scale = Math.max(scale, Math.abs(v));
  const tol = 1e-5 * scale * (c.C / c.groups) * c.KH * c.KW;
  // forward
  for (let plane = 0; plane < c.N * c.OC && failures.length < 20; plane++) {
    for (let oh = 0; oh < POH; oh++) {
      for (let ow = 0; ow < POW; ow++) {
        let m = -Infinity;
        for (let i = 0; i < pl.k; i++)
          for (let j = 0; j < pl.k; j++) {
            const ih = oh * pl.s - pl.p + i * pl.d, iw = ow * pl.s - pl.p + j * pl.d;
            if (ih >= 0 && ih < OH && iw >= 0 && iw < OW) m = Math.max(m, tap(z[plane * OH * OW + ih * OW + iw]));
          }
        const o = plane * POH * POW + oh * POW + ow, at = idx[o];
        if (m === -Infinity) continue;  // a window wholly in the padding: nothing to compare
        const ih = Math.floor(at / OW), iw = at % OW;
        const inWindow = at >= 0 && at < OH * OW && (ih + pl.p - oh * pl.s) % pl.d === 0 && (iw + pl.p - ow * pl.s) % pl.d === 0 &&
          (ih + pl.p - oh * pl.s) / pl.d >= 0 && (ih + pl.p - oh * pl.s) / pl.d < pl.k &&
          (iw + pl.p - ow * pl.s) / pl.d >= 0 && (iw + pl.p - ow * pl.s) / pl.d < pl.k;
        if (!(Math.abs(y[o] - m) <= tol) || !inWindow || !(Math.abs(tap(z[plane * OH * OW + at]) - m) <= 2 * tol)) {
          failures.push(`${what}: plane ${plane} (${oh},${ow}): got ${y[o]}@${at}, want ${m}`);
          return;
        }
      }
    }
  }
  // backward, from the kernel's own y and indices
  const dy = randn(ny);
  for (let o = 0; o < ny; o += 3) dy[o] = 0;
  const dz = new Float64Array(c.N * c.OC * OH * OW);
  for (let o = 0; o < ny; o++) {
    const plane = Math.floor(o / (POH * POW));
    if (!pl.relu || y[o] > 0) dz[plane * OH * OW + idx[o]] += dy[o];
  }
  const [rdw, rdb] = refConvBackwardWeight(c, dz, x);
  const rdx = refConvBackwardData(c, dz, w);
  const close = (got: Float32Array, want: Float64Array, name: string) => {
    let s = 1e-3;
    for (const v of want) s = Math.max(s, Math.abs(v));
    for (let i = 0; i < want.length; i++) {
      if (!(Math.abs(got[i] - want[i]) <= 1e-5 * s)) {
        failures.push(`${what}: ${name}[${i}] got ${got[i]}, want ${want[i]}`);
        return;
      }
    }
  };
  const yr = pl.relu ? y : null;
  const dw = new Float32Array(w.length).fill(NaN), db = bias ? new Float32Array(c.OC).fill(NaN) : null;
  raw.conv2dMaxPool2dBackward(null, dw, db, dy, yr, idx, x, null, ...convArgs(c), POH, POW);
  close(dw, rdw, 'dw (alone)');
  if (db) close(db, rdb, 'dbias (alone)');
  const dx2 = new Float32Array(x.length).fill(NaN), dw2 = new Float32Array(w.length).fill(NaN);
  const db2 = bias ? new Float32Array(c.OC).fill(NaN) : null;
  raw.conv2dMaxPool2dBackward(dx2, dw2, db2, dy, yr, idx, x, w, ...convArgs(c), POH, POW);
  close(dx2, rdx, 'dx');
  close(dw2, rdw, 'dw');
  if (db2) close(db2, rdb, 'dbias');
  const dx3 = new Float32Array(x.length).fill(NaN);
  raw.conv2dMaxPool2dBackward(dx3, null, null, dy, yr, idx, null, w, ...convArgs(c), POH, POW);
  close(dx3, rdx, 'dx (alone)');
}

// The MNIST CNN's first and second layers (small batches), and one with 3 input channels and padding.
check({ N: 2, C: 32, H: 13, W: 13, OC: 64, KH: 3, KW: 3, sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 },
  { k: 2, s: 2, p: 0, d: 1, ceil: false, relu: true }, true);
check({ N: 3, C: 1, H: 28, W: 28, OC: 32, KH: 3, KW: 3, sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 },
  { k: 2, s: 2, p: 0, d: 1, ceil: false, relu: true }, true);
check({ N: 2, C: 3, H: 33, W: 35, OC: 16, KH: 3, KW: 3, sH: 1, sW: 1, pH: 1, pW: 1, dH: 1, dW: 1, groups: 1 },
  { k: 2, s: 2, p: 0, d: 1, ceil: true, relu: true }, true);
// 5x5 on RGB (15 rows: the general backward), and 9 columns (over 8: the general backward).
check({ N: 2, C: 3, H: 20, W: 19, OC: 6, KH: 5, KW: 5, sH: 1, sW: 1, pH: 2, pW: 2, dH: 1, dW: 1, groups: 1 },
  { k: 3, s: 2, p: 1, d: 1, ceil: false, relu: true }, false);
check({ N: 2, C: 1, H: 12, W: 30, OC: 4, KH: 2, KW: 9, sH: 1, sW: 1, pH: 0, pW: 4, dH: 1, dW: 1, groups: 1 },
  { k: 2, s: 2, p: 0, d: 1, ceil: false, relu: false }, true);
// A random pooling (and bias or not) of the convolution c, when c has an output.
function checkRandomPool(c: Conv): void {
  const [OH, OW] = convOut(c);
  if (OH < 1 || OW < 1) return;
  const k = randint(1, 3), relu = rand() < 0.6;
  const pl: Pool = { k, s: randint(1, 3), p: randint(0, Math.floor(k / 2)), d: relu ? 1 : pick([1, 1, 2]), ceil: rand() < 0.3, relu };
  check(c, pl, rand() < 0.7);
}
for (let t = 0; t < 150; t++) {
  const groups = pick([1, 1, 1, 2, 3]);
  const c: Conv = {
    N: randint(1, 3), C: groups * randint(1, 3), H: randint(3, 21), W: randint(3, 40), OC: groups * randint(1, 4),
    KH: randint(1, 5), KW: randint(1, 10), sH: randint(1, 2), sW: pick([1, 1, 1, 2, 3]), pH: randint(0, 2), pW: randint(0, 3),
    dH: pick([1, 1, 2]), dW: pick([1, 1, 1, 2]), groups,
  };
  checkRandomPool(c);
}

// Many channels per group (the channels path's vectors and the floats after them: KW*Cg or Cg not a
// multiple of the vector).
for (let t = 0; t < 40; t++) {
  const groups = pick([1, 1, 2]);
  const c: Conv = {
    N: randint(1, 2), C: groups * randint(4, 40), H: randint(3, 12), W: randint(3, 14), OC: groups * randint(1, 5),
    KH: randint(1, 4), KW: randint(1, 4), sH: randint(1, 2), sW: pick([1, 1, 2]), pH: randint(0, 1), pW: randint(0, 2),
    dH: pick([1, 1, 2]), dW: pick([1, 1, 1, 2]), groups,
  };
  checkRandomPool(c);
}

// A NaN in dy reaches dx only through the patch under its winner, as in the composed backward: the
// last vector of a patch row (15 floats: 5 channels x 3 columns) reads and rewrites the floats after
// the row, and must leave them as they were.
{
  const c: Conv = { N: 1, C: 5, H: 9, W: 9, OC: 3, KH: 3, KW: 3, sH: 1, sW: 1, pH: 1, pW: 1, dH: 1, dW: 1, groups: 1 };
  const P = 4, ny = c.OC * P * P;
  const x = randn(c.C * 81), w = randn(c.OC * c.C * 9), y = new Float32Array(ny), idx = new Int32Array(ny);
  raw.conv2dMaxPool2dForward(y, idx, x, w, null, ...convArgs(c), 2, 2, 2, 2, 0, 0, 1, 1, false, false);
  const dy = randn(ny);
  dy[5] = NaN;
  const dz = new Float64Array(c.OC * 81);
  for (let o = 0; o < ny; o++) dz[Math.floor(o / (P * P)) * 81 + idx[o]] += dy[o];
  const want = refConvBackwardData(c, dz, w);
  const dx = new Float32Array(x.length);
  raw.conv2dMaxPool2dBackward(dx, null, null, dy, null, idx, null, w, ...convArgs(c), P, P);
  cases++;
  const bad = Array.from(dx).findIndex((v, i) => Number.isNaN(v) !== Number.isNaN(want[i]));
  if (bad >= 0) failures.push(`NaN in dy: dx[${bad}] is ${dx[bad]}, the composed backward's ${want[bad]}`);
}

// Bad input: a pooling that does not read the convolution's output, an index outside its plane.
const c1: Conv = { N: 1, C: 1, H: 6, W: 6, OC: 2, KH: 3, KW: 3, sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
const x1 = randn(36), w1 = randn(18), y1 = new Float32Array(8), i1 = new Int32Array(8);
try {
  raw.conv2dMaxPool2dForward(y1, i1, x1, w1, null, ...convArgs(c1), 2, 2, 2, 2, 0, 0, 1, 1, false, true);
  raw.conv2dMaxPool2dBackward(null, new Float32Array(18), null, new Float32Array(8), y1, i1, x1, null, ...convArgs(c1), 2, 2);
} catch (e) {
  failures.push(`valid call threw ${(e as Error).message}`);
}
i1[5] = 16;
for (const withDx of [false, true]) {
  try {
    raw.conv2dMaxPool2dBackward(withDx ? new Float32Array(36) : null, new Float32Array(18), null, new Float32Array(8).fill(1),
      y1, i1, x1, w1, ...convArgs(c1), 2, 2);
    failures.push(`an index outside the plane was accepted (dx: ${withDx})`);
  } catch (e) {
    if (!/conv2d_max_pool2d_backward: .*index lies outside/.test((e as Error).message)) failures.push(`bad index: ${(e as Error).message}`);
  }
}
try {
  raw.conv2dMaxPool2dBackward(new Float32Array(36), null, null, new Float32Array(8), y1, i1, x1, null, ...convArgs(c1), 2, 2);
  failures.push('dx without w was accepted');
} catch (e) {
  if (!/conv2dMaxPool2dBackward: w is needed for dx/.test((e as Error).message)) failures.push(`dx without w: ${(e as Error).message}`);
}

console.log(JSON.stringify({ simd: buildInfo().simd, cases, failures }));
