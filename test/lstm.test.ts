// nn.LSTM and its fused native kernel (cpp/kernels/lstm.cpp):
//  - golden tests against PyTorch 1.13 (test/fixtures/lstm-golden.json, made by
//    tools/fixtures/make_lstm_fixtures.py): 2-layer LSTMs, seq-first and batch-first, with and without
//    an initial state; output, hN, cN and the gradients of the input, h0, c0 and every parameter,
//    weights loaded by their PyTorch names;
//  - finite differences of the native backward on a tiny case (float64 loss over float32 kernels);
//  - the native forward and backward against a float64 reference on every SIMD path, with 1 and 2
//    threads, over batch and hidden sizes that fill the micro-kernel tiles whole and in part (on AVX2,
//    batches of 4, 8, 10 and 32 end in 4-row tiles)
//    (test/helpers/lstm-check-main.ts, a child process per path);
//  - the fused layer against the same cell composed from primitive ops (autograd's own rules);
//  - argument checks in TypeScript and bounds checks in the binding.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import type { Tensor } from '../lib/index';
import { LSTM, lstmLayer } from '../lib/lstm';
import { raw } from './helpers/raw';
import { runCheck, simdPaths } from './helpers/simd-paths';

interface TJ { shape: number[]; data: number[] }
interface Case {
  name: string;
  config: { inputSize: number; hiddenSize: number; numLayers: number; batchFirst: boolean; bias: boolean; withState: boolean };
  params: Record<string, TJ>;
  x: TJ; h0?: TJ; c0?: TJ; dy: TJ; dhN: TJ; dcN: TJ;
  out: TJ; hN: TJ; cN: TJ;
  grads: Record<string, TJ>;
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'lstm-golden.json'), 'utf8')) as {
  torch: string; cases: Case[];
};

const RTOL = 1e-4, ATOL = 2e-5;
const f32 = (j: TJ, requiresGrad = false) => tsm.tensor(Float32Array.from(j.data), { shape: j.shape, requiresGrad });

function expectClose(actual: Tensor | null | undefined, expected: TJ, what: string, rtol = RTOL, atol = ATOL): void {
  expect(actual, `${what}: missing`).toBeTruthy();
  const a = actual as Tensor;
  expect([...a.shape], `${what}: shape`).toEqual(expected.shape);
  const d = a.dataSync();
  let bad = 0, worst = -1, worstExcess = 0;
  for (let i = 0; i < d.length; i++) {
    const err = Math.abs(d[i] - expected.data[i]);
    const tol = atol + rtol * Math.abs(expected.data[i]);
    if (!(err <= tol)) {
      bad++;
      if (!(err / tol <= worstExcess)) { worstExcess = err / tol; worst = i; }
    }
  }
  if (bad > 0)
    expect.fail(`${what}: ${bad}/${d.length} elements off; worst at ${worst}: got ${d[worst]}, PyTorch ${expected.data[worst]} (${worstExcess.toFixed(1)}x tol)`);
}

describe(`nn.LSTM against PyTorch ${fixture.torch}`, () => {
  for (const c of fixture.cases) {
    it(c.name, () => {
      const lstm = new LSTM(c.config);
      const sd: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(c.params)) sd[k] = f32(v);
      lstm.loadStateDict(sd);
      expect(lstm.namedParameters().map(([k]) => k)).toEqual(Object.keys(c.params));
      const x = f32(c.x, true);
      const h0 = c.h0 ? f32(c.h0, true) : null, c0 = c.c0 ? f32(c.c0, true) : null;
      const [out, [hN, cN]] = lstm.forward(x, h0 && c0 ? [h0, c0] : undefined);
      expectClose(out, c.out, `${c.name}: output`);
      expectClose(hN, c.hN, `${c.name}: hN`);
      expectClose(cN, c.cN, `${c.name}: cN`);
      const loss = tsm.add(tsm.add(tsm.sum(tsm.mul(out, f32(c.dy))), tsm.sum(tsm.mul(hN, f32(c.dhN)))),
        tsm.sum(tsm.mul(cN, f32(c.dcN))));
      loss.backward();
      const leaves: Record<string, Tensor | null> = { x, h0, c0 };
      for (const [k, p] of lstm.namedParameters()) leaves[k] = p;
      for (const [k, g] of Object.entries(c.grads)) expectClose(leaves[k]!.grad, g, `${c.name}: grad ${k}`);
    });
  }
});

/** A float64 loss sum(out * ry) + sum(hN * rh) + sum(cN * rc) of one native forward. */
function nativeLoss(T: number, B: number, I: number, H: number, bf: boolean, v: Record<string, Float32Array>,
                    r: Record<string, Float32Array>): number {
  const y = new Float32Array(T * B * H), hN = new Float32Array(B * H), cN = new Float32Array(B * H);
  raw.lstmForward(y, hN, cN, new Float32Array(T * B * 4 * H), new Float32Array(T * B * H), v.x, v.h0, v.c0, v.wIh,
    v.wHh, v.bIh, v.bHh, T, B, I, H, bf);
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * r.y[i];
  for (let i = 0; i < hN.length; i++) s += hN[i] * r.h[i] + cN[i] * r.c[i];
  return s;
}

describe('native LSTM backward: finite differences', () => {
  for (const bf of [false, true]) {
    it(`matches central differences (${bf ? 'batch-first' : 'seq-first'})`, () => {
      const T = 4, B = 2, I = 3, H = 5;
      let seed = 7;
      const rnd = (n: number, s = 1) => Float32Array.from({ length: n }, () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return (seed / 2147483648 * 2 - 1) * s;
      });
      const v: Record<string, Float32Array> = {
        x: rnd(T * B * I), h0: rnd(B * H, 0.5), c0: rnd(B * H, 0.5), wIh: rnd(4 * H * I, 0.7),
        wHh: rnd(4 * H * H, 0.7), bIh: rnd(4 * H, 0.3), bHh: rnd(4 * H, 0.3),
      };
      const r = { y: rnd(T * B * H), h: rnd(B * H), c: rnd(B * H) };
      // Analytic gradients from the native backward.
      const y = new Float32Array(T * B * H), hN = new Float32Array(B * H), cN = new Float32Array(B * H);
      const gates = new Float32Array(T * B * 4 * H), cs = new Float32Array(T * B * H);
      raw.lstmForward(y, hN, cN, gates, cs, v.x, v.h0, v.c0, v.wIh, v.wHh, v.bIh, v.bHh, T, B, I, H, bf);
      const g: Record<string, Float32Array> = {
        x: new Float32Array(T * B * I), h0: new Float32Array(B * H), c0: new Float32Array(B * H),
        wIh: new Float32Array(4 * H * I), wHh: new Float32Array(4 * H * H), bIh: new Float32Array(4 * H),
        bHh: new Float32Array(4 * H),
      };
      raw.lstmBackward(g.x, g.h0, g.c0, g.wIh, g.wHh, g.bIh, g.bHh, r.y, r.h, r.c, v.x, v.h0, v.c0, v.wIh, v.wHh, y,
        gates, cs, T, B, I, H, bf);
      const eps = 1e-2;
      for (const name of Object.keys(g)) {
        const arr = v[name];
        for (let i = 0; i < arr.length; i++) {
          const old = arr[i];
          arr[i] = old + eps;
          const lp = nativeLoss(T, B, I, H, bf, v, r);
          arr[i] = old - eps;
          const lm = nativeLoss(T, B, I, H, bf, v, r);
          arr[i] = old;
          const fd = (lp - lm) / (2 * eps);
          expect(Math.abs(fd - g[name][i]), `${name}[${i}]: analytic ${g[name][i]}, numeric ${fd}`)
            .toBeLessThanOrEqual(2e-3 + 2e-3 * Math.abs(fd));
        }
      }
    });
  }
});

describe('native LSTM against a float64 reference', () => {
  // A fresh process per path: the SIMD level and the default thread count are read once, at load.
  for (const simd of simdPaths()) {
    for (const threads of [1, 2]) {
      it(`TSM_SIMD=${simd} TSM_NUM_THREADS=${threads} (child process)`, () => {
        const out = runCheck<{ simd: string; threads: number; cases: number; failures: string[] }>(
          'test/helpers/lstm-check-main.ts', { TSM_SIMD: simd, TSM_NUM_THREADS: String(threads) });
        expect(out.simd).toBe(simd);
        expect(out.threads).toBe(threads);
        expect(out.cases).toBe(72);
        expect(out.failures).toEqual([]);
      });
    }
  }
});

describe('fused LSTM layer vs the cell composed from primitive ops', () => {
  it('agrees on outputs and gradients (H crossing a register-tile boundary)', () => {
    tsm.manualSeed(3);
    const T = 6, B = 7, I = 5, H = 37;
    const x = tsm.randn([T, B, I], { requiresGrad: true });
    const wIh = tsm.rand([4 * H, I], { low: -0.3, high: 0.3, requiresGrad: true });
    const wHh = tsm.rand([4 * H, H], { low: -0.3, high: 0.3, requiresGrad: true });
    const bIh = tsm.rand([4 * H], { low: -0.3, high: 0.3, requiresGrad: true });
    const bHh = tsm.rand([4 * H], { low: -0.3, high: 0.3, requiresGrad: true });
    const h0 = tsm.randn([B, H], { requiresGrad: true }), c0 = tsm.randn([B, H], { requiresGrad: true });
    const ry = tsm.randn([T, B, H]);
    const fused = lstmLayer(x, h0, c0, wIh, wHh, bIh, bHh);
    tsm.sum(tsm.mul(fused.output, ry)).add(tsm.sum(fused.cN)).backward();
    const leaves = [x, wIh, wHh, bIh, bHh, h0, c0];
    const g1 = leaves.map((t) => t.grad!.dataSync().slice());
    leaves.forEach((t) => { t.grad = null; });
    // Composed: per step G = x_t W_ih^T + b_ih + h W_hh^T + b_hh, chunks i, f, g, o.
    let h = h0, c = c0;
    const outs: Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const xt = tsm.reshape(tsm.slice(x, 0, t, t + 1), [B, I]);
      const G = tsm.add(tsm.F.linear(xt, wIh, bIh), tsm.F.linear(h, wHh, bHh));
      const i = tsm.sigmoid(tsm.slice(G, 1, 0, H)), f = tsm.sigmoid(tsm.slice(G, 1, H, 2 * H));
      const gg = tsm.tanh(tsm.slice(G, 1, 2 * H, 3 * H)), o = tsm.sigmoid(tsm.slice(G, 1, 3 * H, 4 * H));
      c = tsm.add(tsm.mul(f, c), tsm.mul(i, gg));
      h = tsm.mul(o, tsm.tanh(c));
      outs.push(h);
    }
    const out = tsm.stack(outs, 0);
    const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let m = 0;
      for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k] - b[k]));
      return m;
    };
    expect(maxDiff(out.dataSync(), fused.output.dataSync())).toBeLessThan(1e-5);
    expect(maxDiff(c.dataSync(), fused.cN.dataSync())).toBeLessThan(1e-5);
    expect(maxDiff(h.dataSync(), fused.hN.dataSync())).toBeLessThan(1e-5);
    tsm.sum(tsm.mul(out, ry)).add(tsm.sum(c)).backward();
    leaves.forEach((t, k) => expect(maxDiff(t.grad!.dataSync(), g1[k]), `leaf ${k}`).toBeLessThan(1e-4));
  });
});

describe('nn.LSTM module', () => {
  it('has PyTorch names, shapes and init bounds', () => {
    const m = new LSTM({ inputSize: 3, hiddenSize: 16, numLayers: 2 });
    expect(m.namedParameters().map(([k, p]) => `${k}:${p.shape.join('x')}`)).toEqual([
      'weight_ih_l0:64x3', 'weight_hh_l0:64x16', 'bias_ih_l0:64', 'bias_hh_l0:64',
      'weight_ih_l1:64x16', 'weight_hh_l1:64x16', 'bias_ih_l1:64', 'bias_hh_l1:64']);
    for (const p of m.parameters()) for (const v of p.dataSync()) expect(Math.abs(v)).toBeLessThanOrEqual(0.25);
    expect(new LSTM({ inputSize: 3, hiddenSize: 4, bias: false }).namedParameters().length).toBe(2);
  });

  it('unbatched input, dropout between layers, eval mode', () => {
    tsm.manualSeed(1);
    const m = new LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2, dropout: 0.5 });
    const x = tsm.randn([5, 3]);
    const [out, [h, c]] = m.forward(x);
    expect(out.shape).toEqual([5, 4]);
    expect(h.shape).toEqual([2, 4]);
    expect(c.shape).toEqual([2, 4]);
    m.eval();
    const a = m.forward(x)[0].dataSync(), b = m.forward(tsm.reshape(x, [5, 1, 3]))[0].dataSync();
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('rejects bad options and inputs with clear errors', () => {
    expect(() => new LSTM({ inputSize: 3, hiddenSize: 4, bidirectional: true })).toThrow(/bidirectional/);
    expect(() => new LSTM({ inputSize: 0, hiddenSize: 4 })).toThrow(/inputSize/);
    expect(() => new LSTM({ inputSize: 3, hiddenSize: 4, dropout: 2 })).toThrow(/dropout/);
    const m = new LSTM({ inputSize: 3, hiddenSize: 4 });
    expect(() => m.forward(tsm.zeros([2, 2, 5]))).toThrow(/3 features/);
    expect(() => m.forward(tsm.zeros([2, 2, 2, 3]))).toThrow(/rank 3/);
    expect(() => m.forward(tsm.zeros([2, 2, 3]), [tsm.zeros([1, 3, 4]), tsm.zeros([1, 2, 4])])).toThrow(/h0/);
  });

  it('the binding refuses buffers that are too short', () => {
    const T = 2, B = 2, I = 3, H = 4;
    const a = (n: number) => new Float32Array(n);
    const args = () => [a(T * B * H), a(B * H), a(B * H), a(T * B * 4 * H), a(T * B * H), a(T * B * I), null, null,
      a(4 * H * I), a(4 * H * H), null, null, T, B, I, H, false];
    expect(() => raw.lstmForward(...args())).not.toThrow();
    for (const k of [0, 1, 2, 3, 4, 5, 8, 9]) {
      const bad = args();
      bad[k] = a((bad[k] as Float32Array).length - 1);
      expect(() => raw.lstmForward(...bad), `argument ${k}`).toThrow(RangeError);
    }
    const bad = args();
    bad[6] = a(3);
    expect(() => raw.lstmForward(...bad)).toThrow(RangeError);
    expect(() => raw.lstmForward(...args().slice(0, 15), 0, false)).toThrow(RangeError);
    expect(() => raw.lstmBackward(null, null, null, null, null, null, null, null, null, null, a(1), null, null,
      a(4 * H * I), a(4 * H * H), a(T * B * H), a(T * B * 4 * H), a(T * B * H), T, B, I, H, false)).toThrow(RangeError);
  });
});

describe('LSTM memory', () => {
  it('inference and training steps leave no live tensors behind', () => {
    const m = new LSTM({ inputSize: 4, hiddenSize: 8, numLayers: 2 });
    const x = tsm.randn([5, 3, 4]);
    const before = tsm.memory().tensors;
    tsm.noGrad(() => tsm.tidy(() => { m.forward(x); }));
    expect(tsm.memory().tensors).toBe(before);
    tsm.tidy(() => {
      const [out] = m.forward(x);
      tsm.sum(out).backward();
    });
    for (const p of m.parameters()) { p.grad?.dispose(); p.grad = null; }
    expect(tsm.memory().tensors).toBe(before);
  });
});

describe('native LSTM: optional buffers', () => {
  it('null upstream gradients act as zeros; null outputs are skipped; null state is zeros', () => {
    const T = 3, B = 4, I = 5, H = 7;
    const r = (n: number, s = 0.5) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + n) * s);
    const x = r(T * B * I), wIh = r(4 * H * I), wHh = r(4 * H * H), bIh = r(4 * H, 0.1), bHh = r(4 * H, 0.2);
    const fwd = (h0: Float32Array | null, c0: Float32Array | null) => {
      const o = { y: new Float32Array(T * B * H), hN: new Float32Array(B * H), cN: new Float32Array(B * H),
        gates: new Float32Array(T * B * 4 * H), cs: new Float32Array(T * B * H) };
      raw.lstmForward(o.y, o.hN, o.cN, o.gates, o.cs, x, h0, c0, wIh, wHh, bIh, bHh, T, B, I, H, false);
      return o;
    };
    const a = fwd(null, null), z = fwd(new Float32Array(B * H), new Float32Array(B * H));
    expect(Array.from(a.y)).toEqual(Array.from(z.y));
    expect(Array.from(a.cN)).toEqual(Array.from(z.cN));
    const dy = r(T * B * H, 1);
    const bwd = (dhN: Float32Array | null, dcN: Float32Array | null, all: boolean) => {
      const g = { dx: new Float32Array(T * B * I), dh0: new Float32Array(B * H), dwHh: new Float32Array(4 * H * H),
        dbIh: new Float32Array(4 * H), dbHh: new Float32Array(4 * H) };
      raw.lstmBackward(g.dx, all ? g.dh0 : null, null, null, all ? g.dwHh : null, g.dbIh, all ? g.dbHh : null, dy,
        dhN, dcN, x, null, null, wIh, wHh, a.y, a.gates, a.cs, T, B, I, H, false);
      return g;
    };
    const g1 = bwd(null, null, true), g2 = bwd(new Float32Array(B * H), new Float32Array(B * H), false);
    expect(Array.from(g1.dx)).toEqual(Array.from(g2.dx));
    expect(Array.from(g1.dbIh)).toEqual(Array.from(g2.dbIh));
    expect(Array.from(g1.dbHh)).toEqual(Array.from(g1.dbIh));
    expect(g1.dwHh.some((v) => v !== 0)).toBe(true);
  });
});
