// conv2d against slow, obvious float64 references (direct loops): the references, the check of one
// configuration through the three native passes, and the configurations that reach each of the
// native algorithms. Shared by test/native-conv.test.ts (in process, the CPU's best SIMD path) and
// conv-check-main.ts (a child process per TSM_SIMD path and thread count).
import { raw } from './raw';
import { seededRandom } from '../../lib/text';

/** Deterministic random helpers from one seeded stream: uniform [0, 1), integers in [lo, hi], a pick
 *  from a list, and n floats in [-1, 1). */
export function seededHelpers(seed: number) {
  const rand = seededRandom(seed);
  return {
    rand,
    randint: (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1)),
    pick: <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)],
    randn: (n: number): Float32Array => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = rand() * 2 - 1;
      return a;
    },
  };
}

const { rand, randint, pick, randn } = seededHelpers(12345);

/** Throws, naming the element, unless got is within tol (relative to the largest |want|) of want. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 1e-4): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length}, want ${want.length}`);
  let scale = 1e-3;
  for (let i = 0; i < want.length; i++) if (Number.isFinite(want[i])) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    if (got[i] === want[i]) continue;
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol * scale) && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      throw new Error(`${what}: element ${i}: got ${got[i]}, want ${want[i]} (scale ${scale})`);
    }
  }
}

// ---- conv2d references (float64) ----
export interface Conv {
  N: number; C: number; H: number; W: number; OC: number; KH: number; KW: number;
  sH: number; sW: number; pH: number; pW: number; dH: number; dW: number; groups: number;
}
export const convOut = (p: Conv): [number, number] => [
  Math.floor((p.H + 2 * p.pH - p.dH * (p.KH - 1) - 1) / p.sH) + 1,
  Math.floor((p.W + 2 * p.pW - p.dW * (p.KW - 1) - 1) / p.sW) + 1,
];
export const convArgs = (p: Conv): number[] =>
  [p.N, p.C, p.H, p.W, p.OC, p.KH, p.KW, p.sH, p.sW, p.pH, p.pW, p.dH, p.dW, p.groups];

// Calls visit(yIndex, xIndex, wIndex) for every multiply of the convolution.
function convVisit(p: Conv, visit: (yi: number, xi: number, wi: number) => void): void {
  const [OH, OW] = convOut(p);
  const Cg = p.C / p.groups, OCg = p.OC / p.groups;
  for (let n = 0; n < p.N; n++)
    for (let oc = 0; oc < p.OC; oc++) {
      const g = Math.floor(oc / OCg);
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const yi = ((n * p.OC + oc) * OH + oh) * OW + ow;
          for (let c = 0; c < Cg; c++)
            for (let kh = 0; kh < p.KH; kh++) {
              const ih = oh * p.sH - p.pH + kh * p.dH;
              if (ih < 0 || ih >= p.H) continue;
              for (let kw = 0; kw < p.KW; kw++) {
                const iw = ow * p.sW - p.pW + kw * p.dW;
                if (iw < 0 || iw >= p.W) continue;
                const xi = ((n * p.C + g * Cg + c) * p.H + ih) * p.W + iw;
                const wi = ((oc * Cg + c) * p.KH + kh) * p.KW + kw;
                visit(yi, xi, wi);
              }
            }
        }
    }
}
export function refConvForward(p: Conv, x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null): Float64Array {
  const [OH, OW] = convOut(p);
  const y = new Float64Array(p.N * p.OC * OH * OW);
  if (b) for (let i = 0; i < y.length; i++) y[i] = b[Math.floor(i / (OH * OW)) % p.OC];
  convVisit(p, (yi, xi, wi) => { y[yi] += x[xi] * w[wi]; });
  return y;
}
export function refConvBackwardData(p: Conv, dy: ArrayLike<number>, w: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(p.N * p.C * p.H * p.W);
  convVisit(p, (yi, xi, wi) => { dx[xi] += dy[yi] * w[wi]; });
  return dx;
}
export function refConvBackwardWeight(p: Conv, dy: ArrayLike<number>, x: ArrayLike<number>): [Float64Array, Float64Array] {
  const [OH, OW] = convOut(p);
  const dw = new Float64Array(p.OC * (p.C / p.groups) * p.KH * p.KW);
  convVisit(p, (yi, xi, wi) => { dw[wi] += dy[yi] * x[xi]; });
  const db = new Float64Array(p.OC);
  for (let i = 0; i < dy.length; i++) db[Math.floor(i / (OH * OW)) % p.OC] += dy[i];
  return [dw, db];
}

export function randomConv(): Conv {
  for (;;) {
    const groups = pick([1, 1, 2, 4]);
    const depthwise = groups > 1 && rand() < 0.3;
    const C = depthwise ? groups : groups * randint(1, 3);
    const OC = depthwise ? groups * randint(1, 2) : groups * randint(1, 3);
    const p: Conv = {
      N: randint(1, 3), C, H: randint(1, 11), W: randint(1, 11), OC,
      KH: randint(1, 4), KW: randint(1, 4), sH: randint(1, 3), sW: randint(1, 3),
      pH: randint(0, 2), pW: randint(0, 2), dH: randint(1, 2), dW: randint(1, 2), groups,
    };
    const [OH, OW] = convOut(p);
    if (OH >= 1 && OW >= 1) return p;
  }
}
export function checkConv(p: Conv, withBias: boolean): void {
  const [OH, OW] = convOut(p);
  const what = `conv ${JSON.stringify(p)}`;
  const x = randn(p.N * p.C * p.H * p.W), w = randn(p.OC * (p.C / p.groups) * p.KH * p.KW);
  const b = withBias ? randn(p.OC) : null;
  const y = new Float32Array(p.N * p.OC * OH * OW).fill(NaN);
  raw.conv2dForward(y, x, w, b, ...convArgs(p));
  expectClose(y, refConvForward(p, x, w, b), `${what} forward`);
  const dy = randn(y.length);
  const dx = new Float32Array(x.length).fill(NaN);
  raw.conv2dBackwardData(dx, dy, w, ...convArgs(p));
  expectClose(dx, refConvBackwardData(p, dy, w), `${what} backward data`);
  const dw = new Float32Array(w.length).fill(NaN), db = withBias ? new Float32Array(p.OC).fill(NaN) : null;
  raw.conv2dBackwardWeight(dw, db, dy, x, ...convArgs(p));
  const [rdw, rdb] = refConvBackwardWeight(p, dy, x);
  expectClose(dw, rdw, `${what} backward weight`);
  if (db) expectClose(db, rdb, `${what} backward bias`);
}


/** The configurations that reach each native algorithm, by what they cover; each entry throws on a mismatch. */
export const CONV_GROUPS: [string, () => void][] = [
  ['matches the float64 reference on random configurations', () => {
    for (let t = 0; t < 120; t++) checkConv(randomConv(), t % 2 === 0);
  }],
  ['matches the reference on the LeNet shapes and larger ones (direct and GEMM paths)', () => {
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 3, C: 1, H: 28, W: 28, OC: 32, KH: 3, KW: 3 }, true);
    checkConv({ ...base, N: 2, C: 32, H: 13, W: 13, OC: 64, KH: 3, KW: 3 }, true);
    checkConv({ ...base, N: 2, C: 3, H: 32, W: 40, OC: 8, KH: 3, KW: 3, pH: 1, pW: 2, dH: 2 }, false);
    checkConv({ ...base, N: 2, C: 4, H: 9, W: 37, OC: 8, KH: 2, KW: 3, pW: 1, groups: 2 }, true);
    checkConv({ ...base, N: 1, C: 8, H: 7, W: 9, OC: 6, KH: 1, KW: 1 }, true);
    checkConv({ ...base, N: 2, C: 8, H: 11, W: 19, OC: 8, KH: 3, KW: 3, pH: 1, pW: 1, groups: 8 }, true);
    checkConv({ ...base, N: 5, C: 2, H: 16, W: 16, OC: 4, KH: 5, KW: 5, pH: 2, pW: 2, sH: 2, sW: 2 }, true);
  }],
  ['matches the reference on the implicit-GEMM paths (run packing, row-wise col2im)', () => {
    // N * groups >= 2 * threads sends these through the implicit GEMM; stride_w 1 without padding
    // packs runs of pixels, stride_w 1 with any padding sums dx rows in registers.
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 4, C: 5, H: 7, W: 23, OC: 13, KH: 3, KW: 3 }, true);        // rows wider than 16
    checkConv({ ...base, N: 4, C: 3, H: 9, W: 8, OC: 7, KH: 2, KW: 4, dW: 2 }, true);    // dilation, short rows
    checkConv({ ...base, N: 4, C: 2, H: 6, W: 3, OC: 5, KH: 3, KW: 2 }, false);          // 2-pixel rows: many runs per chunk
    checkConv({ ...base, N: 4, C: 4, H: 12, W: 35, OC: 6, KH: 3, KW: 5, pH: 1, pW: 2 }, true);
    checkConv({ ...base, N: 4, C: 6, H: 10, W: 19, OC: 4, KH: 3, KW: 3, sH: 2, pW: 1, dW: 2, groups: 2 }, true);
    checkConv({ ...base, N: 6, C: 1, H: 5, W: 40, OC: 3, KH: 1, KW: 7, pW: 3 }, true);
    // a col buffer past 512 KiB per image: backward-data scatters it tap by tap
    checkConv({ ...base, N: 4, C: 16, H: 40, W: 40, OC: 8, KH: 3, KW: 3, pH: 1, pW: 1 }, false);
  }],
  ['matches the reference on the AVX2 col2im (by bands of output rows; short rows summed in registers)', () => {
    // AVX2 machines with N * groups >= 2 * threads, stride_w 1, Cg < 64. Rows narrower than 16
    // pixels: each dx row's 8-float chunks take every tap whose output row lies in the band.
    // Several bands with stride 2 in h (a dx row summed in two bands), short and wide rows, taps
    // past the row ends, kernels taller than 16 rows (two passes), 1-pixel rows (a chunk reaching
    // 7 rows on, masked at the group's end), groups.
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 4, C: 48, H: 61, W: 15, OC: 4, KH: 3, KW: 3, sH: 2, pH: 1, pW: 1 }, false);
    checkConv({ ...base, N: 4, C: 16, H: 61, W: 47, OC: 4, KH: 3, KW: 3, sH: 2, pH: 1, pW: 1 }, false);
    checkConv({ ...base, N: 4, C: 4, H: 20, W: 9, OC: 4, KH: 18, KW: 3, pH: 2, pW: 1 }, false);
    checkConv({ ...base, N: 4, C: 3, H: 20, W: 1, OC: 4, KH: 5, KW: 1, pH: 2 }, false);
    checkConv({ ...base, N: 4, C: 8, H: 9, W: 13, OC: 6, KH: 3, KW: 5, pW: 3, dW: 2, dH: 2, groups: 2 }, false);
  }],
  ['matches the reference on the AVX2 scatter backward-data (stride 1, KW 3, Cg a multiple of 8)', () => {
    // AVX2 machines: a dx row of 8 channels in registers, each dy value multiplied into the three
    // dx pixels it reaches, stored through 8x8 transposes. One image (tasks by channel block),
    // the widest one-piece row (OW 12), horizontal padding 1 and 2 (the stored pixels start past
    // the padded row's first), 1-pixel output rows, dilation in h with dx rows no dy row reaches,
    // kernels of 1 and 5 rows, groups, an odd number of output channels. Then rows in segments
    // (OW 13: 8 + 7 padded pixels; OW 26, 34, 35), and dy groups past 256 KiB, taken in bands of
    // dx rows with a channels-inner copy of their dy rows: 3 bands over 2 blocks of channels (with
    // 2 threads, 3 tasks are too few: then one block each).
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 1, C: 8, H: 5, W: 5, OC: 3, KH: 3, KW: 3, pH: 1, pW: 1 }, true);
    checkConv({ ...base, N: 2, C: 16, H: 14, W: 14, OC: 5, KH: 3, KW: 3 }, false);
    checkConv({ ...base, N: 3, C: 24, H: 9, W: 3, OC: 7, KH: 5, KW: 3, pH: 2, pW: 2, dH: 2 }, true);
    checkConv({ ...base, N: 2, C: 32, H: 6, W: 1, OC: 4, KH: 1, KW: 3, pW: 1 }, false);
    checkConv({ ...base, N: 2, C: 8, H: 5, W: 7, OC: 3, KH: 3, KW: 3, dH: 2 }, false);
    checkConv({ ...base, N: 2, C: 16, H: 8, W: 10, OC: 6, KH: 3, KW: 3, pH: 2, groups: 2 }, true);
    checkConv({ ...base, N: 2, C: 8, H: 6, W: 15, OC: 3, KH: 2, KW: 3 }, false);
    checkConv({ ...base, N: 2, C: 8, H: 20, W: 26, OC: 5, KH: 3, KW: 3, pW: 1 }, false);
    checkConv({ ...base, N: 1, C: 8, H: 36, W: 33, OC: 72, KH: 3, KW: 3, pW: 2, dH: 2 }, false);
    checkConv({ ...base, N: 1, C: 16, H: 34, W: 34, OC: 64, KH: 3, KW: 3, pH: 1, pW: 1 }, false);
  }],
  ['matches the reference on the AVX2 scatter forward (stride 1, KW 3, OCg a multiple of 8, Cg >= 8)', () => {
    // The same kernel with x's rows for dy's and the kernel mirrored in kw; the bias added at the
    // store, or written alone to rows no x row reaches. Horizontal padding 0 (the stored pixels
    // start 2 into the padded row), 1 and 2; rows in segments; an x group past 256 KiB (bands);
    // groups of 8 channels; dilation in h; padding in h past the kernel (rows with the bias only).
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 1, C: 8, H: 5, W: 5, OC: 8, KH: 3, KW: 3, pH: 1, pW: 1 }, true);
    checkConv({ ...base, N: 2, C: 16, H: 7, W: 7, OC: 16, KH: 2, KW: 3, groups: 2 }, true);
    checkConv({ ...base, N: 2, C: 8, H: 9, W: 30, OC: 16, KH: 3, KW: 3, pH: 1, pW: 2, dH: 2 }, true);
    checkConv({ ...base, N: 1, C: 64, H: 34, W: 34, OC: 8, KH: 3, KW: 3, pH: 1, pW: 1 }, false);
    checkConv({ ...base, N: 2, C: 8, H: 4, W: 13, OC: 8, KH: 1, KW: 3, pH: 2 }, true);
  }],
  ['matches the reference on the AVX2 3-wide backward-weight (stride 1, KH <= 3, OCg a multiple of 8, rows >= 24)', () => {
    // AVX2 machines: 9 taps' gradients of 8 output channels in registers per input channel, dy
    // copied channels-inner with zero pixels past the row ends. Tap rows past the top and bottom
    // (taken one by one), kernels of 1 and 2 rows with dilation, horizontal padding 0..2, groups of
    // 8 output channels, one block split over input channels (too few blocks for the threads).
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 2, C: 3, H: 6, W: 30, OC: 8, KH: 3, KW: 3, pH: 1, pW: 1 }, true);
    checkConv({ ...base, N: 1, C: 2, H: 5, W: 26, OC: 16, KH: 2, KW: 3, pW: 2, dH: 2 }, false);
    checkConv({ ...base, N: 2, C: 4, H: 4, W: 27, OC: 8, KH: 1, KW: 3 }, true);
    checkConv({ ...base, N: 2, C: 4, H: 5, W: 28, OC: 16, KH: 3, KW: 3, pH: 2, groups: 2 }, false);
  }],
  ['matches the reference on the few-taps backward-weight (Cg*KH*KW < 12, bias as a row of ones)', () => {
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 5, C: 1, H: 17, W: 30, OC: 48, KH: 3, KW: 3, pH: 1, pW: 1 }, true); // padding, 1.5 panels
    checkConv({ ...base, N: 4, C: 2, H: 9, W: 21, OC: 36, KH: 2, KW: 2, sH: 2, dH: 2, groups: 2 }, false);
    checkConv({ ...base, N: 3, C: 1, H: 6, W: 40, OC: 16, KH: 1, KW: 11 }, true);               // 11 taps + the ones row
  }],
  ['matches the reference on the channels-last backward paths (Cg a multiple of 16 or 32)', () => {
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 4, C: 32, H: 13, W: 13, OC: 64, KH: 3, KW: 3 }, true);      // the CNN's conv2
    // groups of 16 channels, strides, dilation, padding, rows wider than 16 pixels
    checkConv({ ...base, N: 4, C: 32, H: 11, W: 21, OC: 10, KH: 3, KW: 2, sH: 2, sW: 2, pH: 1, dW: 2, groups: 2 }, true);
    // 48 channels x 3 taps = 144 columns: the last panel's upper half has no tap
    checkConv({ ...base, N: 4, C: 48, H: 9, W: 17, OC: 12, KH: 1, KW: 3, pW: 1 }, false);
    // backward-data straight into a channels-last dx (stride 1, Cg a multiple of 32): padding,
    // dilation, groups, an odd number of output channels (the GEMM's k), 2 blocks of 32 channels
    checkConv({ ...base, N: 4, C: 64, H: 10, W: 18, OC: 26, KH: 3, KW: 3, pH: 1, pW: 2, dH: 2, groups: 2 }, true);
    checkConv({ ...base, N: 2, C: 64, H: 7, W: 30, OC: 5, KH: 2, KW: 4, dW: 3 }, false);
  }],
  ['matches the reference on the flipped-kernel backward-data (stride 1, Cg >= 64: the forward of dy)', () => {
    // AVX2 machines with N * groups >= 2 * threads: dx as the forward convolution of dy with the
    // kernel flipped and its channel axes swapped, padded by dil * (K - 1) - pad. Padding of 1, of
    // the whole dilated kernel (no padding left) and none at all, dilation, groups, rectangular
    // kernels; and padding past the kernel (which stays on the other paths).
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 4, C: 64, H: 12, W: 20, OC: 16, KH: 3, KW: 3, pH: 1, pW: 1 }, true);
    checkConv({ ...base, N: 2, C: 128, H: 9, W: 11, OC: 8, KH: 3, KW: 2, pH: 2, pW: 1, dH: 2, groups: 2 }, false);
    checkConv({ ...base, N: 4, C: 64, H: 8, W: 6, OC: 7, KH: 2, KW: 4, pW: 3 }, true);
    checkConv({ ...base, N: 4, C: 64, H: 10, W: 10, OC: 12, KH: 3, KW: 3, pH: 3 }, false);
  }],
  ['matches the reference on the row-wise forward (stride_w 1, OC per group a multiple of 32)', () => {
    // Tiles of up to 12 pixels of one output row x 32 channels, rows split into equal tiles, bands
    // of rows moved to channels-first with the bias. Runs on AVX-512 machines with N * groups >= 2 *
    // threads; elsewhere these shapes take the other paths and must agree all the same.
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 4, C: 32, H: 13, W: 13, OC: 64, KH: 3, KW: 3 }, false);     // 11-pixel rows
    checkConv({ ...base, N: 4, C: 4, H: 9, W: 31, OC: 32, KH: 3, KW: 3, pH: 1, pW: 2, sH: 2 }, true); // 33 = 11+11+11
    checkConv({ ...base, N: 4, C: 8, H: 7, W: 27, OC: 64, KH: 3, KW: 2, dH: 2, dW: 3, groups: 2 }, true); // 24 = 12+12
    // 200-pixel output rows of 64 channels: bands of one row, 17 tiles of 11 or 12 pixels
    checkConv({ ...base, N: 4, C: 3, H: 4, W: 202, OC: 64, KH: 2, KW: 3, pH: 0, pW: 0 }, true);
    checkConv({ ...base, N: 4, C: 16, H: 5, W: 5, OC: 96, KH: 1, KW: 3, pW: 1 }, true); // 5-pixel rows, 3 panels of 32 channels
  }],
  ['matches the reference on the row-wise backward-data (stride 1, Cg a multiple of 32)', () => {
    // dy broadcast from a zero-bordered copy, taps ordered (kh, o, kw) so that each dx row takes
    // one range of them; rows of up to 14 pixels.
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 4, C: 64, H: 9, W: 31, OC: 5, KH: 3, KW: 3, pH: 1, pW: 1 }, false); // 3 tiles, 2 panels
    checkConv({ ...base, N: 4, C: 32, H: 6, W: 9, OC: 7, KH: 2, KW: 3, pH: 3, pW: 4, dW: 2 }, false); // padding past the taps
    // dilation 3 over 4 rows: dx rows 1 and 2 meet no dy row and must come out zero
    checkConv({ ...base, N: 4, C: 32, H: 4, W: 6, OC: 8, KH: 2, KW: 2, dH: 3 }, false);
    checkConv({ ...base, N: 2, C: 64, H: 7, W: 15, OC: 6, KH: 3, KW: 1, dH: 2, groups: 2 }, false); // groups
  }],
  ['matches the reference on the scatter backward-data (stride 1, KW 3, rows of up to 22 dy pixels)', () => {
    // A whole dx row of 16 channels in registers, each dy value scattered to its three dx pixels;
    // AVX-512 machines with N * groups >= 2 * threads. Padding 0, 1 and 2 (the full-correlation
    // pixels dropped either side), dilation in h, groups, 16 and 48 channels, OW at 1 and at 22.
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 4, C: 32, H: 13, W: 13, OC: 64, KH: 3, KW: 3 }, false);             // the CNN's conv2
    checkConv({ ...base, N: 4, C: 16, H: 6, W: 22, OC: 5, KH: 3, KW: 3, pH: 1, pW: 1 }, false); // OW 22
    checkConv({ ...base, N: 4, C: 48, H: 5, W: 3, OC: 7, KH: 2, KW: 3, pW: 2 }, false);         // OW 5 from W 3
    checkConv({ ...base, N: 4, C: 16, H: 9, W: 3, OC: 3, KH: 3, KW: 3 }, false);                // OW 1
    // dilation 3 over 4 rows: dx rows 1 and 2 meet no dy row and must come out zero
    checkConv({ ...base, N: 4, C: 16, H: 4, W: 8, OC: 6, KH: 2, KW: 3, dH: 3, pW: 1 }, false);
    checkConv({ ...base, N: 2, C: 64, H: 7, W: 10, OC: 6, KH: 5, KW: 3, pH: 2, groups: 2 }, false); // groups
  }],
  ['matches the reference on the row-wise backward-weight (Cg a multiple of 32, OCg of 16)', () => {
    // Tiles of up to 12 output channels x 32 input channels per tap, over blocks of ~512 pixels:
    // several small images per block (12 images: blocks of 4 and 2 per thread), or chunks of rows
    // of a large image; AVX-512 machines with N * groups >= 2 * threads.
    const base = { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, groups: 1 };
    checkConv({ ...base, N: 12, C: 32, H: 13, W: 13, OC: 64, KH: 3, KW: 3 }, true);           // the CNN's conv2
    checkConv({ ...base, N: 4, C: 32, H: 44, W: 41, OC: 16, KH: 3, KW: 3, pH: 1, pW: 1 }, true); // chunks of rows
    checkConv({ ...base, N: 4, C: 64, H: 15, W: 17, OC: 48, KH: 2, KW: 3, sH: 2, sW: 2, dW: 2, pW: 1 }, false);
    checkConv({ ...base, N: 2, C: 64, H: 9, W: 10, OC: 32, KH: 3, KW: 1, dH: 2, pH: 2, groups: 2 }, true); // groups
  }],
];
