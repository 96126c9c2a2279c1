// Child-process entry of the 2x2, stride-2 max-pooling checks on the SIMD path chosen by TSM_SIMD:
// values (NaN, -0 and -Infinity included) and indices against a float64 reference with PyTorch's
// rule, for plain and relu taps, plane widths that leave 1..8 outputs in a SIMD step, ceil mode on
// and off; and the backward, dense and scattered (see below). Prints one JSON line
// {simd, cases, backwardCases, failures}.
import { buildInfo } from '../../lib/runtime';
import { seededRandom } from '../../lib/text';
import { raw } from './raw';

const rand = seededRandom(777);
const failures: string[] = [];
let cases = 0;
const tap = (v: number, relu: boolean): number => (relu ? (v > 0 ? v : 0) : v);
const key = (v: number): string => (Object.is(v, -0) ? 'neg0' : String(v));

for (const H of [2, 3, 7, 26]) {
  for (const W of [2, 3, 5, 9, 11, 16, 17, 26, 33, 71]) {
    for (const ceil of [false, true]) {
      for (const relu of [false, true]) {
        const N = 2, C = 2;
        const OH = ceil ? Math.ceil(H / 2) : Math.floor(H / 2), OW = ceil ? Math.ceil(W / 2) : Math.floor(W / 2);
        const x = new Float32Array(N * C * H * W);
        for (let i = 0; i < x.length; i++) x[i] = Math.round((rand() * 2 - 1) * 4) / 4;  // many ties
        for (let i = 3; i < x.length; i += 11) x[i] = [NaN, -0, -Infinity, 0][i % 4];
        const y = new Float32Array(N * C * OH * OW).fill(12345), idx = new Int32Array(y.length).fill(-5);
        raw.maxPool2dForward(y, idx, x, N, C, H, W, 2, 2, 2, 2, 0, 0, 1, 1, ceil, relu);
        cases++;
        for (let pl = 0; pl < N * C && failures.length < 20; pl++) {
          for (let oh = 0; oh < OH; oh++) {
            for (let ow = 0; ow < OW; ow++) {
              let m = -Infinity, best = 2 * oh * W + 2 * ow;
              for (let ih = 2 * oh; ih < Math.min(2 * oh + 2, H); ih++)
                for (let iw = 2 * ow; iw < Math.min(2 * ow + 2, W); iw++) {
                  const v = tap(x[pl * H * W + ih * W + iw], relu);
                  if (v > m || Number.isNaN(v)) { m = v; best = ih * W + iw; }
                }
              const o = pl * OH * OW + oh * OW + ow;
              if (key(y[o]) !== key(Math.fround(m)) || idx[o] !== best) {
                failures.push(`H${H} W${W} ceil=${ceil} relu=${relu} plane ${pl} (${oh},${ow}): got ${key(y[o])}@${idx[o]}, want ${key(m)}@${best}`);
              }
            }
          }
        }
      }
    }
  }
}
// Backward (plain and through the ReLU's output y), bit for bit against the scatter of the
// reference: dx = 0, then dx[idx] += (relu && !(y > 0) ? 0 : dy) per output. With the forward's own
// indices a 2x2 floor-mode plane takes the dense SIMD path; indices moved out of their windows (as a
// 3x3 window's would be) and colliding indices must take the scatter and give the same answer.
let backwardCases = 0;
for (const H of [2, 3, 7, 26]) {
  for (const W of [2, 3, 5, 9, 11, 16, 17, 26, 33, 71]) {
    for (const ceil of [false, true]) {
      for (const relu of [false, true]) {
        for (const moved of [false, true]) {
          const N = 2, C = 2;
          const OH = ceil ? Math.ceil(H / 2) : Math.floor(H / 2), OW = ceil ? Math.ceil(W / 2) : Math.floor(W / 2);
          const x = new Float32Array(N * C * H * W);
          for (let i = 0; i < x.length; i++) x[i] = Math.round((rand() * 2 - 1) * 4) / 4;
          const y = new Float32Array(N * C * OH * OW), idx = new Int32Array(y.length);
          raw.maxPool2dForward(y, idx, x, N, C, H, W, 2, 2, 2, 2, 0, 0, 1, 1, ceil, relu);
          if (moved) {
            // one plane keeps its indices, the others get some outside their windows (in range)
            for (let i = OH * OW; i < idx.length; i += 3) idx[i] = Math.min(H * W - 1, idx[i] + 2 * W);
          }
          const dy = new Float32Array(y.length);
          for (let i = 0; i < dy.length; i++) dy[i] = Math.round((rand() * 2 - 1) * 8) / 4;
          for (let i = 1; i < dy.length; i += 7) dy[i] = [NaN, -0, -Infinity, 0, Infinity][i % 5];
          const dx = new Float32Array(N * C * H * W).fill(777);
          if (relu) raw.maxPool2dBackward(dx, dy, idx, N, C, H, W, OH, OW, y);
          else raw.maxPool2dBackward(dx, dy, idx, N, C, H, W, OH, OW);
          backwardCases++;
          const want = new Float32Array(dx.length);
          for (let pl = 0; pl < N * C; pl++)
            for (let o = 0; o < OH * OW; o++) {
              const k = pl * OH * OW + o;
              const v = relu && !(y[k] > 0) ? 0 : dy[k];
              want[pl * H * W + idx[k]] = Math.fround(want[pl * H * W + idx[k]] + v);
            }
          for (let i = 0; i < dx.length && failures.length < 40; i++) {
            if (key(dx[i]) !== key(want[i])) {
              failures.push(`backward H${H} W${W} ceil=${ceil} relu=${relu} moved=${moved} dx[${i}]: got ${key(dx[i])}, want ${key(want[i])}`);
              break;
            }
          }
        }
      }
    }
  }
}
process.stdout.write(JSON.stringify({ simd: buildInfo().simd, cases, backwardCases, failures }) + '\n');
