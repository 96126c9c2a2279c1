// Child-process entry of the native LSTM checks on the SIMD path and thread count chosen by
// TSM_SIMD / TSM_NUM_THREADS: forward (y, hN, cN) and backward (dx, dh0, dc0, dW_ih, dW_hh, db) of
// cpp/kernels/lstm.cpp against a float64 reference, over batch sizes that fill the micro-kernel's
// row panels exactly, partly, or both (1, 6, 7, 8, 12, 13, 32 rows against panels of 6, 8 and 12)
// and hidden sizes that split into whole and partial unit blocks (5, 16, 37, 64 against 16 and 32
// columns), seq-first and batch-first, with and without an initial state. Prints one JSON line
// {simd, threads, cases, failures}.
import { buildInfo } from '../../lib/runtime';
import { expectClose, seededHelpers } from './conv-check';
import { raw } from './raw';

const { randn } = seededHelpers(4242);
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

interface Problem {
  T: number; B: number; I: number; H: number; bf: boolean; state: boolean;
  x: Float32Array; h0: Float32Array | null; c0: Float32Array | null;
  wIh: Float32Array; wHh: Float32Array; bIh: Float32Array; bHh: Float32Array;
  dy: Float32Array; dhN: Float32Array; dcN: Float32Array;
}

/** Forward and backward through time in float64; every (T, B, ...) array in the problem's layout. */
function reference(p: Problem) {
  const { T, B, I, H, bf } = p, G = 4 * H;
  const row = (t: number, b: number) => (bf ? b * T + t : t * B + b);
  const y = new Float64Array(T * B * H), cs = new Float64Array(T * B * H), act = new Float64Array(T * B * G);
  const hPrev = (t: number, b: number, j: number) => (t > 0 ? y[row(t - 1, b) * H + j] : p.h0 ? p.h0[b * H + j] : 0);
  const cPrev = (t: number, b: number, j: number) => (t > 0 ? cs[row(t - 1, b) * H + j] : p.c0 ? p.c0[b * H + j] : 0);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const r = row(t, b);
      for (let g = 0; g < G; g++) {
        let s = p.bIh[g] + p.bHh[g];
        for (let k = 0; k < I; k++) s += p.x[r * I + k] * p.wIh[g * I + k];
        for (let k = 0; k < H; k++) s += hPrev(t, b, k) * p.wHh[g * H + k];
        act[r * G + g] = g >= 2 * H && g < 3 * H ? Math.tanh(s) : sigmoid(s);
      }
      for (let j = 0; j < H; j++) {
        const a = act.subarray(r * G);
        const c = a[H + j] * cPrev(t, b, j) + a[j] * a[2 * H + j];
        cs[r * H + j] = c;
        y[r * H + j] = a[3 * H + j] * Math.tanh(c);
      }
    }
  }
  const dx = new Float64Array(T * B * I), dwIh = new Float64Array(G * I), dwHh = new Float64Array(G * H);
  const db = new Float64Array(G), dA = new Float64Array(B * G);
  let dh = Float64Array.from(p.dhN), dc = Float64Array.from(p.dcN);
  for (let t = T - 1; t >= 0; t--) {
    const dcNext = new Float64Array(B * H);
    for (let b = 0; b < B; b++) {
      const r = row(t, b), a = act.subarray(r * G);
      for (let j = 0; j < H; j++) {
        const i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j], tc = Math.tanh(cs[r * H + j]);
        const dht = dh[b * H + j] + p.dy[r * H + j];
        const dct = dc[b * H + j] + dht * o * (1 - tc * tc);
        dA[b * G + j] = dct * g * i * (1 - i);
        dA[b * G + H + j] = dct * cPrev(t, b, j) * f * (1 - f);
        dA[b * G + 2 * H + j] = dct * i * (1 - g * g);
        dA[b * G + 3 * H + j] = dht * tc * o * (1 - o);
        dcNext[b * H + j] = dct * f;
      }
      for (let g = 0; g < G; g++) {
        const d = dA[b * G + g];
        db[g] += d;
        for (let k = 0; k < I; k++) {
          dx[r * I + k] += d * p.wIh[g * I + k];
          dwIh[g * I + k] += d * p.x[r * I + k];
        }
        for (let k = 0; k < H; k++) dwHh[g * H + k] += d * hPrev(t, b, k);
      }
    }
    const dhNext = new Float64Array(B * H);
    for (let b = 0; b < B; b++)
      for (let g = 0; g < G; g++)
        for (let k = 0; k < H; k++) dhNext[b * H + k] += dA[b * G + g] * p.wHh[g * H + k];
    dh = dhNext;
    dc = dcNext;
  }
  const last = (a: Float64Array) => {
    const out = new Float64Array(B * H);
    for (let b = 0; b < B; b++) out.set(a.subarray(row(T - 1, b) * H, row(T - 1, b) * H + H), b * H);
    return out;
  };
  return { y, hN: last(y), cN: last(cs), dx, dh0: dh, dc0: dc, dwIh, dwHh, db };
}

function check(p: Problem): void {
  const { T, B, I, H, bf } = p, G = 4 * H;
  const y = new Float32Array(T * B * H), hN = new Float32Array(B * H), cN = new Float32Array(B * H);
  const gates = new Float32Array(T * B * G), cs = new Float32Array(T * B * H);
  raw.lstmForward(y, hN, cN, gates, cs, p.x, p.h0, p.c0, p.wIh, p.wHh, p.bIh, p.bHh, T, B, I, H, bf);
  const dx = new Float32Array(T * B * I), dh0 = new Float32Array(B * H), dc0 = new Float32Array(B * H);
  const dwIh = new Float32Array(G * I), dwHh = new Float32Array(G * H), dbIh = new Float32Array(G), dbHh = new Float32Array(G);
  raw.lstmBackward(dx, dh0, dc0, dwIh, dwHh, dbIh, dbHh, p.dy, p.dhN, p.dcN, p.x, p.h0, p.c0, p.wIh, p.wHh, y, gates,
    cs, T, B, I, H, bf);
  const want = reference(p);
  const got: Record<keyof typeof want, Float32Array> = { y, hN, cN, dx, dh0, dc0, dwIh, dwHh, db: dbIh };
  for (const k of Object.keys(want) as (keyof typeof want)[]) expectClose(got[k], want[k], k, 2e-5);
  expectClose(dbHh, want.db, 'dbHh', 2e-5);
}

const failures: string[] = [];
let cases = 0;
for (const B of [1, 4, 6, 7, 8, 10, 12, 13, 32]) {
  for (const H of [5, 16, 37, 64]) {
    for (const bf of [false, true]) {
      const T = 3, I = 6, G = 4 * H, state = (B + H + (bf ? 1 : 0)) % 2 === 0;
      const p: Problem = {
        T, B, I, H, bf, state,
        x: randn(T * B * I), h0: state ? randn(B * H) : null, c0: state ? randn(B * H) : null,
        wIh: randn(G * I).map((v) => v * 0.5), wHh: randn(G * H).map((v) => v / Math.sqrt(H)),
        bIh: randn(G).map((v) => v * 0.2), bHh: randn(G).map((v) => v * 0.2),
        dy: randn(T * B * H), dhN: randn(B * H), dcN: randn(B * H),
      };
      cases++;
      try {
        check(p);
      } catch (err) {
        failures.push(`T${T} B${B} I${I} H${H} ${bf ? 'batch-first' : 'seq-first'}${state ? ' with h0/c0' : ''}: ${(err as Error).message}`);
      }
    }
  }
}
const info = buildInfo();
process.stdout.write(JSON.stringify({ simd: info.simd, threads: info.threads, cases, failures }) + '\n');
