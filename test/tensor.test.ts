// Tensor semantics and bad input through the public API: creation, dtypes, the seeded RNG,
// broadcasting, reductions vs plain JS, views, data access, memory (dispose/tidy), named errors for
// every op, and Module bookkeeping (names, train/eval, state dicts, default initialisation).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import type { Tensor } from '../lib/index';
import { seededRandom as mulberry32 } from '../lib/text';
import { MnistCnn } from '../examples/mnist-cnn';
import { nativeAddon } from '../lib/native-api';

const { F, nn, optim } = tsm;

const arr = (t: Tensor) => Array.from(t.dataSync());
const I = (data: number[], shape?: number[]) => tsm.tensor(Int32Array.from(data), { shape: shape ?? [data.length] });

const rnd = mulberry32(99);
function randData(n: number): number[] {
  return Array.from({ length: n }, () => Math.fround(rnd() * 4 - 2));
}

/** Expects fn to throw `type` with a message that starts with `op:` and matches every pattern. */
function expectError(fn: () => unknown, type: new (...a: any[]) => Error, op: string, ...patterns: RegExp[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `${op}: expected a ${type.name}`).toBeInstanceOf(type);
  const msg = (err as Error).message;
  expect(msg.startsWith(`${op}: `), `message should name the op ${op}: "${msg}"`).toBe(true);
  for (const p of patterns) expect(msg).toMatch(p);
}

// ---------------------------------------------------------------------------------------------

describe('creation', () => {
  it('nested arrays give shape and row-major values', () => tsm.tidy(() => {
    const t = tsm.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.device).toBe('cpu');
    expect(t.size).toBe(6);
    expect(t.ndim).toBe(2);
    expect(arr(t)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(tsm.tensor([[[1], [2]]]).shape).toEqual([1, 2, 1]);
    expect(tsm.tensor(3.5).shape).toEqual([]);
    expect(tsm.tensor(3.5).item()).toBe(3.5);
    expect(tsm.tensor([]).shape).toEqual([0]);
    expect(tsm.tensor([[], []]).shape).toEqual([2, 0]);
    expect(arr(tsm.tensor([true, false]))).toEqual([1, 0]);
    expect(tsm.tensor([1, 2, 3, 4], { shape: [2, 2] }).shape).toEqual([2, 2]);
  }));

  it('typed arrays with a shape (no reshuffling), Float64Array is converted', () => tsm.tidy(() => {
    const f = tsm.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [3, 2] });
    expect(f.shape).toEqual([3, 2]);
    expect(f.toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
    const i = tsm.tensor(new Int32Array([1, 2, 3]));
    expect(i.dtype).toBe('int32');
    expect(i.shape).toEqual([3]);
    const d = tsm.tensor(new Float64Array([0.1, 0.2]));
    expect(d.dtype).toBe('float32');
    expect(arr(d)).toEqual([Math.fround(0.1), Math.fround(0.2)]);
    // the data is copied or owned: changing the source later does not change an int32 conversion
    const src = new Float32Array([1, 2]);
    const c = tsm.tensor(src, { dtype: 'int32' });
    src[0] = 9;
    expect(arr(c)).toEqual([1, 2]);
  }));

  it('ragged and malformed data are rejected', () => {
    expectError(() => tsm.tensor([[1, 2], [3]]), RangeError, 'tensor', /ragged/);
    expectError(() => tsm.tensor([[1, 2], 3] as any), RangeError, 'tensor', /ragged/);
    expectError(() => tsm.tensor([1, [2]] as any), RangeError, 'tensor', /ragged/);
    expectError(() => tsm.tensor([[1], [2, 3]]), RangeError, 'tensor', /ragged/);
    expectError(() => tsm.tensor([[[1, 2]], [[3]]]), RangeError, 'tensor', /ragged/);
    expectError(() => tsm.tensor(['a'] as any), TypeError, 'tensor', /numbers/);
    expectError(() => tsm.tensor([1, 2, 3], { shape: [2, 2] }), RangeError, 'tensor', /shape \[2, 2\]/);
    expectError(() => tsm.tensor(new Float32Array(5), { shape: [2, 2] }), RangeError, 'tensor', /shape/);
    expectError(() => tsm.tensor(new Uint8Array(2) as any), TypeError, 'tensor', /Uint8Array/);
  });

  it('zeros, ones, full, empty, arange, eye, *Like', () => tsm.tidy(() => {
    expect(arr(tsm.zeros([2, 2]))).toEqual([0, 0, 0, 0]);
    expect(arr(tsm.ones([3]))).toEqual([1, 1, 1]);
    expect(arr(tsm.full([2], 7.5))).toEqual([7.5, 7.5]);
    expect(tsm.full([2], 3, { dtype: 'int32' }).dtype).toBe('int32');
    expect(tsm.empty([4, 0]).size).toBe(0);
    expect(arr(tsm.arange(5))).toEqual([0, 1, 2, 3, 4]);
    expect(tsm.arange(5).dtype).toBe('int32');
    expect(arr(tsm.arange(0, 1, 0.25))).toEqual([0, 0.25, 0.5, 0.75]);
    expect(arr(tsm.arange(5, 0, -2))).toEqual([5, 3, 1]);
    expect(tsm.eye(2, 3).toArray()).toEqual([[1, 0, 0], [0, 1, 0]]);
    const x = tsm.tensor([[1, 2]], { dtype: 'int32' });
    expect(tsm.zerosLike(x).dtype).toBe('int32');
    expect(arr(tsm.onesLike(x))).toEqual([1, 1]);
    expect(tsm.zeros([2], { requiresGrad: true }).requiresGrad).toBe(true);
  }));

  it('creation ops reject bad shapes and values', () => {
    expectError(() => tsm.zeros([-1]), RangeError, 'zeros', /\[-1\]/);
    expectError(() => tsm.ones([2.5]), RangeError, 'ones', /2\.5/);
    expectError(() => tsm.zeros('3' as any), TypeError, 'zeros', /shape/);
    expectError(() => tsm.full([2], 'a' as any), TypeError, 'full', /value/);
    expectError(() => tsm.arange(0, 5, 0), RangeError, 'arange', /step/);
    expectError(() => tsm.arange(NaN), TypeError, 'arange', /start|end/);
    expectError(() => tsm.randn([-2]), RangeError, 'randn', /shape/);
    expectError(() => tsm.randint(5, 5, [2]), RangeError, 'randint', /low < high/);
    expectError(() => tsm.randperm(-1), RangeError, 'randperm', /n/);
    expectError(() => tsm.manualSeed(-1), RangeError, 'manualSeed', /seed/);
  });
});

describe('dtypes and devices', () => {
  it('int32 tensors: truncation, conversions, and float-only ops reject them', () => tsm.tidy(() => {
    const i = tsm.tensor([1.7, -1.7, 3], { dtype: 'int32' });
    expect(i.dtype).toBe('int32');
    expect(i.dataSync()).toBeInstanceOf(Int32Array);
    expect(arr(i)).toEqual([1, -1, 3]);
    const f = i.to('float32');
    expect(f.dtype).toBe('float32');
    expect(f.dataSync()).toBeInstanceOf(Float32Array);
    expect(arr(tsm.tensor([2.9, -2.9]).to('int32'))).toEqual([2, -2]);
    expect(i.to('cpu')).toBe(i);
    // shape ops work on int32 and keep the dtype
    expect(i.reshape([3, 1]).dtype).toBe('int32');
    expect(arr(i.slice(0, 1))).toEqual([-1, 3]);
    expect(arr(tsm.cat([i, i]))).toEqual([1, -1, 3, 1, -1, 3]);
    expect(arr(i.permute(0))).toEqual([1, -1, 3]);
    for (const [op, fn] of [
      ['exp', () => i.exp()], ['add', () => i.add(1)], ['matmul', () => i.matmul(i)], ['sum', () => i.sum()],
      ['softmax', () => i.softmax(0)], ['relu', () => F.relu(i)], ['clamp', () => i.clamp(0, 1)],
    ] as [string, () => unknown][])
      expectError(fn, TypeError, op, /float32/, /int32/);
    expectError(() => i.requiresGrad_(), TypeError, 'requiresGrad_', /float32/);
  }));

  it('bfloat16 and float16 are storage on the CPU: created and cast, other ops a clear TypeError (test/half.test.ts has more)', () => {
    for (const dtype of ['bfloat16', 'float16'] as const) {
      expect(tsm.tensor([1, 2], { dtype }).dtype).toBe(dtype);
      expect(tsm.zeros([2], { dtype }).dataSync()).toEqual(new Float32Array(2));
      expect(tsm.tensor([1]).to(dtype).to('float32').item()).toBe(1);
      expectError(() => tsm.zeros([2], { dtype }).exp(), TypeError, 'exp', new RegExp(dtype), /float32/);
    }
    expectError(() => tsm.zeros([2], { dtype: 'float64' as any }), TypeError, 'zeros', /dtype/, /float64/);
  });

  it('cuda tensors are a TsmCudaError on this build; unknown devices a TypeError', () => {
    expect(() => tsm.zeros([1], { device: 'cuda' })).toThrow(tsm.TsmCudaError);
    expect(() => tsm.tensor([1]).to('cuda:0')).toThrow(tsm.TsmCudaError);
    expectError(() => tsm.zeros([1], { device: 'tpu' as any }), TypeError, 'zeros', /device/);
  });
});

describe('manualSeed and the RNG', () => {
  const draw = () => tsm.tidy(() => [arr(tsm.rand([7])), arr(tsm.randn([2, 5])), arr(tsm.randint(-3, 4, [9])), arr(tsm.randperm(10))]);
  it('same seed, same numbers for rand/randn/randint/randperm; another seed differs', () => {
    tsm.manualSeed(42);
    const a = draw();
    tsm.manualSeed(42);
    const b = draw();
    expect(b).toEqual(a);
    tsm.manualSeed(43);
    const c = draw();
    expect(c[0]).not.toEqual(a[0]);
    expect(c[1]).not.toEqual(a[1]);
    // consecutive draws differ
    tsm.manualSeed(42);
    const first = tsm.tidy(() => arr(tsm.rand([5])));
    const second = tsm.tidy(() => arr(tsm.rand([5])));
    expect(second).not.toEqual(first);
  });

  it('ranges and distributions', () => tsm.tidy(() => {
    tsm.manualSeed(1);
    const u = arr(tsm.rand([20000]));
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    expect(u.reduce((a, b) => a + b) / u.length).toBeCloseTo(0.5, 1);
    const n = arr(tsm.randn([20000]));
    const mean = n.reduce((a, b) => a + b) / n.length;
    const std = Math.sqrt(n.reduce((a, b) => a + (b - mean) ** 2, 0) / n.length);
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(std - 1)).toBeLessThan(0.05);
    const r = arr(tsm.randint(-3, 4, [5000]));
    expect(new Set(r)).toEqual(new Set([-3, -2, -1, 0, 1, 2, 3]));
    expect(tsm.randint(0, 2, [3]).dtype).toBe('int32');
    const p = arr(tsm.randperm(50));
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(p).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  }));
});

describe('broadcasting', () => {
  const cases: [number[], number[], number[]][] = [
    [[3, 4], [4], [3, 4]], [[3, 1], [1, 4], [3, 4]], [[2, 1, 4], [3, 1], [2, 3, 4]], [[], [2, 3], [2, 3]],
    [[5, 1, 1], [1, 6, 1], [5, 6, 1]], [[1], [0], [0]], [[2, 0], [1], [2, 0]],
  ];
  for (const [sa, sb, so] of cases)
    it(`[${sa}] op [${sb}] -> [${so}], values as NumPy`, () => tsm.tidy(() => {
      const na = sa.reduce((a, b) => a * b, 1), nb = sb.reduce((a, b) => a * b, 1);
      const a = tsm.tensor(Float32Array.from(randData(na)), { shape: sa });
      const b = tsm.tensor(Float32Array.from(randData(nb)), { shape: sb });
      const y = a.mul(b).add(b).sub(a.div(2));
      expect(y.shape).toEqual(so);
      // reference: index arithmetic in plain JS
      const ad = a.dataSync(), bd = b.dataSync(), yd = y.dataSync();
      const stridesFor = (s: number[]) => {
        const pad = [...new Array(so.length - s.length).fill(1), ...s];
        const st: number[] = [];
        let acc = 1;
        for (let i = pad.length - 1; i >= 0; i--) { st[i] = pad[i] === 1 ? 0 : acc; acc *= pad[i]; }
        return st;
      };
      const sta = stridesFor(sa), stb = stridesFor(sb);
      for (let i = 0; i < yd.length; i++) {
        let rem = i, oa = 0, ob = 0;
        for (let d = so.length - 1; d >= 0; d--) {
          const k = rem % so[d];
          rem = Math.floor(rem / so[d]);
          oa += k * sta[d];
          ob += k * stb[d];
        }
        const want = Math.fround(Math.fround(Math.fround(ad[oa] * bd[ob]) + bd[ob]) - Math.fround(ad[oa] / 2));
        expect(yd[i]).toBe(want);
      }
    }));
  it('incompatible shapes throw a RangeError naming the op and both shapes', () => {
    expectError(() => tsm.add(tsm.zeros([2, 3]), tsm.zeros([4])), RangeError, 'add', /\[2, 3\]/, /\[4\]/);
    expectError(() => tsm.mul(tsm.zeros([2, 3]), tsm.zeros([3, 2])), RangeError, 'mul', /broadcast/);
    expectError(() => tsm.where(tsm.ones([3]), tsm.zeros([2]), 1), RangeError, 'where', /broadcast/);
    expectError(() => tsm.maximum(tsm.zeros([5]), tsm.zeros([4])), RangeError, 'maximum');
  });
  it('comparisons give 0/1 and do not require grad', () => tsm.tidy(() => {
    const a = tsm.tensor([1, 2, 3], { requiresGrad: true });
    expect(arr(a.gt(2))).toEqual([0, 0, 1]);
    expect(arr(a.le(tsm.tensor([[2], [0]])))).toEqual([1, 1, 0, 0, 0, 0]);
    expect(arr(a.eq(2))).toEqual([0, 1, 0]);
    expect(arr(a.ne(2))).toEqual([1, 0, 1]);
    expect(arr(tsm.lt(a, 3))).toEqual([1, 1, 0]);
    expect(arr(tsm.ge(a, 2))).toEqual([0, 1, 1]);
    expect(a.gt(2).requiresGrad).toBe(false);
  }));
});

describe('reductions vs plain JS', () => {
  const shape = [3, 4, 5];
  const data = randData(60);
  data[7] = data[9]; // a tie inside a row (argmax must take the first)
  const at = (i: number, j: number, k: number) => data[(i * 4 + j) * 5 + k];
  const ref = (dim: number, f: (v: number[]) => number) => {
    const out: number[] = [];
    const ranges = shape.map((n) => Array.from({ length: n }, (_, i) => i));
    const outer = ranges.filter((_, d) => d !== dim);
    for (const p of outer[0]) for (const q of outer[1]) {
      const v = ranges[dim].map((r) => (dim === 0 ? at(r, p, q) : dim === 1 ? at(p, r, q) : at(p, q, r)));
      out.push(f(v));
    }
    return out;
  };
  const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
  const close = (a: number[], b: number[], tol = 1e-5) => {
    expect(a.length).toBe(b.length);
    a.forEach((x, i) => expect(Math.abs(x - b[i])).toBeLessThanOrEqual(tol * (1 + Math.abs(b[i]))));
  };
  it('sum / mean / max / min / argmax / argmin over each dim, keepdim shapes', () => tsm.tidy(() => {
    const x = tsm.tensor(Float32Array.from(data), { shape });
    for (const dim of [0, 1, 2]) {
      close(arr(x.sum(dim)), ref(dim, sum));
      close(arr(x.mean(dim)), ref(dim, (v) => sum(v) / v.length));
      expect(arr(x.max(dim))).toEqual(ref(dim, (v) => Math.max(...v)));
      expect(arr(x.min(dim))).toEqual(ref(dim, (v) => Math.min(...v)));
      expect(arr(x.argmax(dim))).toEqual(ref(dim, (v) => v.indexOf(Math.max(...v))));
      expect(arr(x.argmin(dim))).toEqual(ref(dim, (v) => v.indexOf(Math.min(...v))));
      const kept = shape.map((d, i) => (i === dim ? 1 : d));
      expect(x.sum(dim, true).shape).toEqual(kept);
      expect(x.max(dim, true).shape).toEqual(kept);
      expect(x.argmax(dim, true).shape).toEqual(kept);
      expect(x.argmax(dim).dtype).toBe('int32');
      expect(x.sum(dim - 3).shape).toEqual(x.sum(dim).shape);
    }
    close([x.sum().item()], [sum(data)], 1e-5);
    close([x.mean().item()], [sum(data) / 60]);
    expect(x.sum().shape).toEqual([]);
    expect(x.max().item()).toBe(Math.max(...data));
    expect(x.min().item()).toBe(Math.min(...data));
    expect(x.argmax().item()).toBe(data.indexOf(Math.max(...data)));
    expect(x.sum([0, 2]).shape).toEqual([4]);
    expect(x.mean([0, 2], true).shape).toEqual([1, 4, 1]);
    close(arr(x.sum([0, 2])), [0, 1, 2, 3].map((j) => sum([0, 1, 2].flatMap((i) => [0, 1, 2, 3, 4].map((k) => at(i, j, k))))));
  }));
  it('softmax rows sum to 1 and match exp(x)/sum exp(x); logSoftmax = log(softmax)', () => tsm.tidy(() => {
    const x = tsm.tensor([[1, 2, 3], [1000, 1000, 1000], [-1000, 0, 1000]]);
    const s = x.softmax(1).toArray() as number[][];
    const e = [1, 2, 3].map((v) => Math.exp(v - 3));
    s[0].forEach((v, i) => expect(v).toBeCloseTo(e[i] / (e[0] + e[1] + e[2]), 6));
    s[1].forEach((v) => expect(v).toBeCloseTo(1 / 3, 6));
    expect(s[2]).toEqual([0, 0, 1]);
    const ls = x.logSoftmax(1).toArray() as number[][];
    expect(ls[2][2]).toBe(0);
    expect(ls[2][0]).toBe(-2000);
  }));
  it('bad reduction arguments', () => tsm.tidy(() => {
    const x = tsm.zeros([2, 3]);
    expectError(() => x.sum(2), RangeError, 'sum', /dim/, /2/);
    expectError(() => x.mean([0, 0]), RangeError, 'mean', /repeat/);
    expectError(() => x.max(-3), RangeError, 'max', /dim/);
    expectError(() => x.argmax(1.5 as any), TypeError, 'argmax', /dim/);
    expectError(() => tsm.zeros([0]).argmax(), RangeError, 'argmax', /empty/);
    expectError(() => x.softmax(5), RangeError, 'softmax', /dim/);
    expectError(() => x.logSoftmax('1' as any), TypeError, 'logSoftmax', /dim/);
  }));
});

describe('views and data access', () => {
  it('reshape/view/flatten/squeeze/unsqueeze share storage; permute/transpose copy', () => tsm.tidy(() => {
    const x = tsm.arange(0, 6).to('float32');
    const v = x.reshape([2, 3]);
    const w = x.view(3, 2).flatten().unsqueeze(0).squeeze();
    // writing through the storage of one shows in the others
    const raw = (t: Tensor) => (t as unknown as { _data: Float32Array })._data;
    expect(raw(v).buffer).toBe(raw(x).buffer);
    raw(x)[4] = 40;
    expect(v.toArray()).toEqual([[0, 1, 2], [3, 40, 5]]);
    expect(arr(w)).toEqual([0, 1, 2, 3, 40, 5]);
    // shared storage is counted once
    const before = tsm.memory();
    const more = x.reshape([3, 2]);
    expect(tsm.memory().tensors).toBe(before.tensors + 1);
    expect(tsm.memory().bytes).toBe(before.bytes);
    // disposing the base keeps the view alive
    x.dispose();
    expect(arr(more)).toEqual([0, 1, 2, 3, 40, 5]);
    // permute copies
    const p = v.transpose();
    expect(p.toArray()).toEqual([[0, 3], [1, 40], [2, 5]]);
    raw(v)[0] = -1;
    expect(arr(p)[0]).toBe(0);
    expect(v.reshape(-1, 2).shape).toEqual([3, 2]);
    expect(v.contiguous()).toBe(v);
  }));

  it('toArray, item, dataSync (a copy), data()', async () => {
    const t = tsm.tensor([[1, 2], [3, 4]]);
    expect(t.toArray()).toEqual([[1, 2], [3, 4]]);
    expect(tsm.tensor(5).toArray()).toBe(5);
    expect(tsm.tensor([[7]]).item()).toBe(7);
    expectError(() => t.item(), RangeError, 'item', /one element/, /\[2, 2\]/);
    const d = t.dataSync();
    expect(d).toBeInstanceOf(Float32Array);
    d[0] = 100;
    expect(arr(t)[0]).toBe(1);
    expect(Array.from(await t.data())).toEqual([1, 2, 3, 4]);
    expect(String(t)).toMatch(/shape=\[2, 2\]/);
    t.dispose();
  });

  it('shape ops: values and errors', () => tsm.tidy(() => {
    const x = tsm.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(x.slice(1, 0, 3, 2).toArray()).toEqual([[1, 3], [4, 6]]);
    expect(x.slice(1, -2).toArray()).toEqual([[2, 3], [5, 6]]);
    expect(x.slice(0, 5).shape).toEqual([0, 3]);
    expect(x.expand(2, 2, 3).shape).toEqual([2, 2, 3]);
    expect(tsm.stack([x, x], 1).shape).toEqual([2, 2, 3]);
    expect(tsm.cat([x, x], 1).toArray()).toEqual([[1, 2, 3, 1, 2, 3], [4, 5, 6, 4, 5, 6]]);
    expect(x.gather(1, I([2, 0], [2, 1])).toArray()).toEqual([[3], [4]]);
    expect(x.index([1, 0, 1]).toArray()).toEqual([[4, 5, 6], [1, 2, 3], [4, 5, 6]]);
    expect(tsm.indexSelect(x, 1, I([2, -3])).toArray()).toEqual([[3, 1], [6, 4]]);
    expect(x.permute([1, 0]).toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(tsm.where(x.gt(3), x, 0).toArray()).toEqual([[0, 0, 0], [4, 5, 6]]);
    expect(x.clamp(2, 5).toArray()).toEqual([[2, 2, 3], [4, 5, 5]]);
    expect(x.flatten().shape).toEqual([6]);
    expect(x.unsqueeze(-1).shape).toEqual([2, 3, 1]);
    expect(x.squeeze(0).shape).toEqual([2, 3]);
    expectError(() => x.reshape([4, 2]), RangeError, 'reshape', /\[2, 3\]/, /\[4, 2\]/);
    expectError(() => x.reshape(-1, -1), RangeError, 'reshape', /-1/);
    expectError(() => x.permute(0, 0), RangeError, 'permute', /permutation/);
    expectError(() => x.permute(0), RangeError, 'permute', /dims/);
    expectError(() => x.transpose(0, 2), RangeError, 'transpose', /dim1/);
    expectError(() => x.expand(4, 3), RangeError, 'expand', /\[2, 3\]/);
    expectError(() => x.slice(0, 0, 2, 0), RangeError, 'slice', /step/);
    expectError(() => x.slice(2), RangeError, 'slice', /dim/);
    expectError(() => x.unsqueeze(4), RangeError, 'unsqueeze', /dim/);
    expectError(() => x.flatten(1, 0), RangeError, 'flatten', /startDim/);
    expectError(() => tsm.cat([x, tsm.zeros([2, 2])], 0), RangeError, 'cat', /tensors\[1\]/);
    expectError(() => tsm.cat([]), RangeError, 'cat', /non-empty/);
    expectError(() => tsm.cat([x, I([1])], 0), TypeError, 'cat', /dtype/);
    expectError(() => tsm.stack([x, tsm.zeros([3, 2])]), RangeError, 'stack', /tensors\[1\]/);
    expectError(() => x.gather(1, I([3, 0], [2, 1])), RangeError, 'gather', /index 3/, /out of range/);
    expectError(() => x.gather(1, I([-1, 0], [2, 1])), RangeError, 'gather', /index -1/);
    expectError(() => x.gather(1, tsm.zeros([2, 1])), TypeError, 'gather', /index/, /int32/);
    expectError(() => x.gather(1, I([0, 0])), RangeError, 'gather', /index/, /rank/);
    expectError(() => x.index([2]), RangeError, 'index', /index 2/, /out of range/);
    expectError(() => tsm.indexSelect(x, 1, I([-4])), RangeError, 'index', /-4/);
    expectError(() => tsm.indexSelect(x, 0, tsm.zeros([1])), TypeError, 'index', /int32/);
    expectError(() => tsm.where(x.gt(1), x, 'a' as any), TypeError, 'where');
    expectError(() => x.clamp('0' as any), TypeError, 'clamp', /min/);
  }));
});

describe('matmul and linear: shapes and errors', () => {
  it('shapes as NumPy', () => tsm.tidy(() => {
    const s = (a: number[], b: number[]) => tsm.matmul(tsm.ones(a), tsm.ones(b)).shape;
    expect(s([3], [3])).toEqual([]);
    expect(s([3], [3, 2])).toEqual([2]);
    expect(s([2, 3], [3])).toEqual([2]);
    expect(s([4, 2, 3], [3, 5])).toEqual([4, 2, 5]);
    expect(s([2, 1, 2, 3], [4, 3, 5])).toEqual([2, 4, 2, 5]);
    expect(arr(tsm.tensor([[1, 2], [3, 4]]).matmul(tsm.tensor([[5], [6]])))).toEqual([17, 39]);
  }));
  it('bad input', () => {
    expectError(() => tsm.matmul(tsm.zeros([2, 3]), tsm.zeros([2, 3])), RangeError, 'matmul', /inner/, /3 vs 2/);
    expectError(() => tsm.matmul(tsm.zeros([]), tsm.zeros([2])), RangeError, 'matmul', /1-d/);
    expectError(() => tsm.matmul(tsm.zeros([2, 2, 3]), tsm.zeros([3, 3, 1])), RangeError, 'matmul', /broadcast/);
    expectError(() => tsm.matmul(tsm.zeros([2]), [1, 2] as any), TypeError, 'matmul', /other/);
    expectError(() => F.linear(tsm.zeros([2, 3]), tsm.zeros([4, 2])), RangeError, 'linear', /last dimension/, /\[2, 3\]/);
    expectError(() => F.linear(tsm.zeros([2, 3]), tsm.zeros([4, 3]), tsm.zeros([3])), RangeError, 'linear', /bias/);
    expectError(() => F.linear(tsm.zeros([2, 3]), tsm.zeros([3])), RangeError, 'linear', /weight/, /rank 2/);
    expectError(() => F.linear(tsm.zeros([2, 3]), I([1, 2, 3, 4, 5, 6], [2, 3])), TypeError, 'linear', /weight/, /float32/);
  });
});

describe('bad input to F: named TypeError/RangeError', () => {
  const x4 = () => tsm.zeros([1, 2, 5, 5]);
  it('conv2d', () => {
    const w = tsm.zeros([4, 2, 3, 3]);
    expectError(() => F.conv2d(tsm.zeros([3, 28, 28]), w), RangeError, 'conv2d',
      /expected input of rank 4 \(N,C,H,W\), got shape \[3, ?28, ?28\]/);
    expectError(() => F.conv2d(tsm.zeros([1, 3, 5, 5]), w), RangeError, 'conv2d', /weight/, /input channels|input of shape/);
    expectError(() => F.conv2d(x4(), tsm.zeros([4, 2, 3])), RangeError, 'conv2d', /weight/, /rank 4/);
    expectError(() => F.conv2d(x4(), w, tsm.zeros([3])), RangeError, 'conv2d', /bias/);
    expectError(() => F.conv2d(x4(), w, null, { stride: 0 }), RangeError, 'conv2d', /stride/);
    expectError(() => F.conv2d(x4(), w, null, { padding: -1 }), RangeError, 'conv2d', /padding/);
    expectError(() => F.conv2d(x4(), w, null, { dilation: [1, 0] }), RangeError, 'conv2d', /dilation/);
    expectError(() => F.conv2d(x4(), w, null, { stride: [1, 2, 3] as any }), TypeError, 'conv2d', /stride/);
    expectError(() => F.conv2d(x4(), tsm.zeros([3, 1, 3, 3]), null, { groups: 2 }), RangeError, 'conv2d', /groups/);
    expectError(() => F.conv2d(x4(), tsm.zeros([4, 2, 7, 7])), RangeError, 'conv2d', /kernel/);
    expectError(() => F.conv2d(tsm.zeros([1, 2, 5, 5], { dtype: 'int32' }), w), TypeError, 'conv2d', /input/, /float32/);
    expectError(() => F.conv2d(x4(), tsm.zeros([4, 2, 3, 3], { dtype: 'int32' })), TypeError, 'conv2d', /weight/, /float32/);
    expectError(() => F.conv2d([1, 2] as any, w), TypeError, 'conv2d', /input/, /Tensor/);
  });
  it('pools', () => {
    expectError(() => F.maxPool2d(tsm.zeros([2, 5, 5]), 2), RangeError, 'maxPool2d', /rank 4/, /\[2, 5, 5\]/);
    expectError(() => F.maxPool2d(x4(), 0), RangeError, 'maxPool2d', /kernelSize/);
    expectError(() => F.maxPool2d(x4(), { kernelSize: 2, padding: 2 }), RangeError, 'maxPool2d', /padding/, /half/);
    expectError(() => F.maxPool2d(x4(), { kernelSize: 7 }), RangeError, 'maxPool2d', /output size|too large/);
    expectError(() => F.avgPool2d(x4(), { kernelSize: 2, stride: 0 }), RangeError, 'avgPool2d', /stride/);
    expectError(() => F.avgPool2d(tsm.zeros([1, 1, 4, 4], { dtype: 'int32' }), 2), TypeError, 'avgPool2d', /float32/);
    expectError(() => F.adaptiveAvgPool2d(x4(), 0), RangeError, 'adaptiveAvgPool2d', /outputSize/);
    expectError(() => F.adaptiveAvgPool2d(tsm.zeros([5, 5]), 2), RangeError, 'adaptiveAvgPool2d', /rank 4/);
  });
  it('normalisation, dropout, embedding', () => {
    expectError(() => F.layerNorm(tsm.zeros([2, 3]), [4]), RangeError, 'layerNorm', /normalizedShape/, /\[2, 3\]/);
    expectError(() => F.layerNorm(tsm.zeros([2, 3]), [3], tsm.zeros([4])), RangeError, 'layerNorm', /weight/);
    expectError(() => F.layerNorm(tsm.zeros([2, 3], { dtype: 'int32' }), [3]), TypeError, 'layerNorm', /input/, /float32/);
    expectError(() => F.batchNorm(tsm.zeros([4]), null, null), RangeError, 'batchNorm', /rank/);
    expectError(() => F.batchNorm(tsm.zeros([2, 3]), tsm.zeros([2]), null), RangeError, 'batchNorm', /runningMean/);
    expectError(() => F.batchNorm(tsm.zeros([1, 3]), null, null), RangeError, 'batchNorm', /more than one value/);
    expectError(() => F.batchNorm(tsm.zeros([2, 3]), null, null, null, null, { training: false }), RangeError, 'batchNorm', /running/);
    expectError(() => F.dropout(tsm.zeros([2]), 1.5), RangeError, 'dropout', /p/);
    expectError(() => F.dropout(I([1]), 0.5), TypeError, 'dropout', /float32/);
    const w = tsm.zeros([5, 2]);
    expectError(() => F.embedding(I([0, 5]), w), RangeError, 'embedding', /index 5/, /\[0, 5\)/);
    expectError(() => F.embedding(I([-1]), w), RangeError, 'embedding', /-1/);
    expectError(() => F.embedding(tsm.zeros([2]), w), TypeError, 'embedding', /indices/, /int32/);
    expectError(() => F.embedding(I([0]), tsm.zeros([5])), RangeError, 'embedding', /weight/, /rank 2/);
    expectError(() => F.embedding(I([0]), tsm.zeros([5, 2], { dtype: 'int32' })), TypeError, 'embedding', /weight/, /float32/);
  });
  it('losses', () => {
    const logits = tsm.zeros([2, 3]);
    expectError(() => F.crossEntropy(logits, I([0, 3])), RangeError, 'crossEntropy', /target 3/, /out of range/);
    expectError(() => F.crossEntropy(logits, I([0, -1])), RangeError, 'crossEntropy', /target -1/);
    expectError(() => F.crossEntropy(logits, tsm.zeros([2])), TypeError, 'crossEntropy', /target/, /int32/);
    expectError(() => F.crossEntropy(logits, I([0, 1, 1])), RangeError, 'crossEntropy', /target/, /\[2\]/);
    expectError(() => F.crossEntropy(logits, I([0, 1]), { reduction: 'avg' as any }), RangeError, 'crossEntropy', /reduction/);
    expectError(() => F.crossEntropy(logits, I([0, 1]), { labelSmoothing: 2 }), RangeError, 'crossEntropy', /labelSmoothing/);
    expectError(() => F.crossEntropy(I([0, 1, 2], [1, 3]), I([0])), TypeError, 'crossEntropy', /input/, /float32/);
    expectError(() => F.nllLoss(logits, I([0, 7])), RangeError, 'nllLoss', /target 7/);
    expectError(() => F.nllLoss(logits, I([0])), RangeError, 'nllLoss', /target/);
    expectError(() => F.nllLoss(I([0, 1, 2], [1, 3]), I([0])), TypeError, 'nllLoss', /input/, /float32/);
    expectError(() => F.mseLoss(logits, tsm.zeros([3, 2])), RangeError, 'mseLoss', /target shape/, /\[3, 2\]/);
    expectError(() => F.mseLoss(logits, I([0, 0, 0, 0, 0, 0], [2, 3])), TypeError, 'mseLoss', /target/, /float32/);
    expectError(() => F.mseLoss(logits, logits, { reduction: 'avg' as any }), RangeError, 'mseLoss', /reduction/);
    expectError(() => F.binaryCrossEntropy(tsm.tensor([1.5]), tsm.zeros([1])), RangeError, 'binaryCrossEntropy', /probabilities/);
    expectError(() => F.binaryCrossEntropyWithLogits(tsm.zeros([2]), tsm.zeros([3])), RangeError, 'binaryCrossEntropyWithLogits', /shape/);
  });
  it('elementwise ops', () => {
    expectError(() => tsm.add(1 as any, 2 as any), TypeError, 'add', /Tensor/);
    expectError(() => tsm.zeros([2]).add('1' as any), TypeError, 'add', /other/);
    expectError(() => tsm.zeros([2]).gelu('fast' as any), RangeError, 'gelu', /approximate/);
    expectError(() => tsm.exp('x' as any), TypeError, 'exp', /input/);
  });
});

describe('memory: dispose, tidy, memory()', () => {
  it('dispose frees storage once; double dispose is harmless', () => {
    const m0 = tsm.memory();
    const t = tsm.zeros([1000]);
    expect(tsm.memory().tensors).toBe(m0.tensors + 1);
    expect(tsm.memory().bytes).toBe(m0.bytes + 4000);
    expect(tsm.memory().cudaBytes).toBe(0);
    t.dispose();
    t.dispose();
    expect(tsm.memory()).toEqual(m0);
    expect(t.isDisposed).toBe(true);
  });

  it('use after dispose throws TsmDisposedError, in methods and ops', () => {
    const t = tsm.tensor([1, 2]);
    t.dispose();
    for (const fn of [() => t.dataSync(), () => t.toArray(), () => t.item(), () => t.add(1), () => tsm.add(tsm.ones([2]), t),
      () => t.reshape([2]), () => F.relu(t), () => t.sum(), () => t.clone(), () => F.conv2d(tsm.zeros([1, 1, 3, 3]), t)])
      expect(fn).toThrow(tsm.TsmDisposedError);
    expect(() => t.dataSync()).toThrow(/after dispose/);
  });

  it('tidy frees everything but its result (tensor, array or object)', () => {
    const m0 = tsm.memory();
    const y = tsm.tidy(() => {
      const a = tsm.ones([10]);
      const b = a.mul(3).add(1);
      return b.sum();
    });
    expect(y.item()).toBe(40);
    expect(tsm.memory().tensors).toBe(m0.tensors + 1);
    const { p, q } = tsm.tidy(() => ({ p: tsm.ones([2]).mul(2), q: [tsm.zeros([3])] }));
    expect(arr(p)).toEqual([2, 2]);
    expect(tsm.memory().tensors).toBe(m0.tensors + 3);
    for (const t of [y, p, ...(q as Tensor[])]) t.dispose();
    expect(tsm.memory()).toEqual(m0);
    expect(tsm.tidy(() => 5)).toBe(5);
  });

  it('nested tidy: the inner result survives the inner scope and dies with the outer one', () => {
    const m0 = tsm.memory();
    let inner!: Tensor;
    const outer = tsm.tidy(() => {
      inner = tsm.tidy(() => tsm.ones([4]).mul(2));
      expect(inner.isDisposed).toBe(false);
      return inner.add(1);
    });
    expect(inner.isDisposed).toBe(true);
    expect(arr(outer)).toEqual([3, 3, 3, 3]);
    outer.dispose();
    expect(tsm.memory()).toEqual(m0);
  });

  it('keep() saves a tensor from tidy; tensors created before tidy are untouched', () => {
    const before = tsm.ones([2]);
    let kept!: Tensor;
    tsm.tidy(() => {
      kept = tsm.keep(before.mul(5));
      before.add(1);
    });
    expect(before.isDisposed).toBe(false);
    expect(arr(kept)).toEqual([5, 5]);
    before.dispose();
    kept.dispose();
  });

  it('.grad survives tidy; a training step inside tidy leaks nothing', () => {
    const w = tsm.tensor([[0.5, -0.5], [0.25, 1]], { requiresGrad: true });
    const x = tsm.tensor([[1, 2], [3, 4]]);
    const m0 = tsm.memory();
    for (let step = 0; step < 3; step++) {
      tsm.tidy(() => {
        const loss = x.matmul(w).relu().square().mean();
        loss.backward();
      });
    }
    expect(w.grad).not.toBeNull();
    expect(w.grad!.isDisposed).toBe(false);
    expect(tsm.memory().tensors).toBe(m0.tensors + 1); // only w.grad
    const g1 = arr(w.grad!);
    w.grad!.dispose();
    w.grad = null;
    tsm.tidy(() => x.matmul(w).relu().square().mean().backward());
    arr(w.grad!).forEach((g, i) => expect(g * 3).toBeCloseTo(g1[i], 5));
    expect(() => tsm.tidy((async () => 1) as any)).toThrow(TypeError);
    expect(() => tsm.tidy(5 as any)).toThrow(TypeError);
    w.grad!.dispose();
    for (const t of [w, x]) t.dispose();
  });

  it('add, sub and identity hand dy on without copies that alias: own gradients, nothing leaked', () => {
    // backward() gives an add's dy to its first input and a copy to the second: the two .grad
    // tensors must be distinct storages (clipGradNorm scales them in place), x + x must sum, and a
    // step must leave no tensor behind.
    const a = tsm.tensor([1, 2, 3], { requiresGrad: true });
    const b = tsm.tensor([4, 5, 6], { requiresGrad: true });
    const c = tsm.tensor([7], { requiresGrad: true });
    const m0 = tsm.memory();
    tsm.tidy(() => a.add(b).sub(c).add(a.clone()).mul(tsm.tensor([1, 10, 100])).sum().backward());
    expect(tsm.memory().tensors).toBe(m0.tensors + 3); // the three .grad
    expect(arr(a.grad!)).toEqual([2, 20, 200]);
    expect(arr(b.grad!)).toEqual([1, 10, 100]);
    expect(arr(c.grad!)).toEqual([-111]);
    tsm.optim.clipGradNorm([b], 1e-3);
    expect(arr(a.grad!)).toEqual([2, 20, 200]);
    const x = tsm.tensor([3], { requiresGrad: true });
    tsm.tidy(() => x.add(x).add(1).backward());
    expect(arr(x.grad!)).toEqual([2]);
    for (const t of [a, b, c, x]) { t.grad!.dispose(); t.dispose(); }
  });

  it('a tidy that throws still frees its tensors', () => {
    const m0 = tsm.memory();
    expect(() => tsm.tidy(() => {
      tsm.ones([100]).mul(2);
      throw new Error('boom');
    })).toThrow('boom');
    expect(tsm.memory()).toEqual(m0);
    // the scope was popped: later tensors are not collected into it
    const t = tsm.ones([1]);
    tsm.tidy(() => { tsm.ones([1]); });
    expect(t.isDisposed).toBe(false);
    t.dispose();
    expect(tsm.memory()).toEqual(m0);
  });
});

// ---------------------------------------------------------------------------------------------

class Net extends nn.Module {
  conv1 = new nn.Conv2d(1, 4, 3);
  bn = new nn.BatchNorm2d(4);
  drop = new nn.Dropout(0.5);
  head = new nn.Sequential(new nn.Flatten(), new nn.Linear(4 * 2 * 2, 8), new nn.ReLU());
  fc1 = new nn.Linear(8, 3);
  forward(x: Tensor): Tensor {
    return this.fc1.forward(this.head.forward(F.maxPool2d(this.drop.forward(this.bn.forward(this.conv1.forward(x)).relu()), 2)));
  }
}

describe('Module', () => {
  it('parameter and buffer names follow PyTorch', () => {
    const net = new Net();
    expect(net.namedParameters().map(([k]) => k)).toEqual([
      'conv1.weight', 'conv1.bias', 'bn.weight', 'bn.bias', 'head.1.weight', 'head.1.bias', 'fc1.weight', 'fc1.bias']);
    expect(Object.keys(net.stateDict()).sort()).toEqual([
      'bn.bias', 'bn.num_batches_tracked', 'bn.running_mean', 'bn.running_var', 'bn.weight', 'conv1.bias', 'conv1.weight',
      'fc1.bias', 'fc1.weight', 'head.1.bias', 'head.1.weight']);
    const seq = new nn.Sequential(new nn.Linear(2, 3), new nn.ReLU(), new nn.Linear(3, 1, { bias: false }));
    expect(seq.namedParameters().map(([k]) => k)).toEqual(['0.weight', '0.bias', '2.weight']);
    expect(seq.length).toBe(3);
    expect(seq.at(2)).toBeInstanceOf(nn.Linear);
    expect(net.parameters().length).toBe(8);
    expect(net.numParameters()).toBe(4 * 9 + 4 + 4 + 4 + 16 * 8 + 8 + 8 * 3 + 3);
    // a parameter shared by two modules is listed once
    const a = new nn.Linear(2, 2);
    const tied = new nn.Sequential(a, a);
    expect(tied.parameters().length).toBe(2);
  });

  it('train() / eval() propagate to every submodule and change Dropout and BatchNorm', () => tsm.tidy(() => {
    const net = new Net();
    expect(net.namedModules().every(([, m]) => m.training)).toBe(true);
    expect(net.eval()).toBe(net);
    expect(net.namedModules().every(([, m]) => !m.training)).toBe(true);
    expect(net.head.at(1).training).toBe(false);
    const x = tsm.tensor(Float32Array.from(randData(2 * 36)), { shape: [2, 1, 6, 6] });
    const mean0 = arr(net.bn.running_mean);
    const y1 = arr(net.forward(x)), y2 = arr(net.forward(x));
    expect(y2).toEqual(y1); // eval: deterministic (no dropout), running stats untouched
    expect(arr(net.bn.running_mean)).toEqual(mean0);
    expect(net.bn.num_batches_tracked.item()).toBe(0);
    net.train();
    expect(net.namedModules().every(([, m]) => m.training)).toBe(true);
    net.forward(x);
    expect(arr(net.bn.running_mean)).not.toEqual(mean0);
    expect(net.bn.num_batches_tracked.item()).toBe(1);
    const d = new nn.Dropout(0.5);
    const ones = tsm.ones([1000]);
    const dropped = arr(d.forward(ones));
    expect(new Set(dropped)).toEqual(new Set([0, 2]));
    d.eval();
    expect(arr(d.forward(ones))).toEqual(arr(ones));
    net.train(false);
    expect(net.training).toBe(false);
  }));

  it('stateDict / loadStateDict: round trip, copies values, strict and non-strict', () => tsm.tidy(() => {
    const a = new Net(), b = new Net();
    const sd = a.stateDict();
    expect(sd['conv1.weight']).toBe(a.conv1.weight); // the tensors themselves
    expect(b.loadStateDict(sd)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    for (const [k, v] of Object.entries(b.stateDict())) {
      expect(arr(v), k).toEqual(arr(sd[k]));
      expect(v, k).not.toBe(sd[k]); // copied, not aliased
    }
    const partial = { ...sd };
    delete partial['fc1.bias'];
    const extra = { ...sd, 'fc2.weight': tsm.zeros([1]) };
    expectError(() => b.loadStateDict(partial), RangeError, 'loadStateDict', /missing keys \[fc1\.bias\]/);
    expectError(() => b.loadStateDict(extra), RangeError, 'loadStateDict', /unexpected keys \[fc2\.weight\]/);
    const fc1bias = arr(b.fc1.bias!);
    const w = tsm.full([3], 0.5);
    const res = b.loadStateDict({ 'fc1.bias': w, 'nope': tsm.zeros([1]) }, { strict: false });
    expect(res.unexpectedKeys).toEqual(['nope']);
    expect(res.missingKeys).toContain('conv1.weight');
    expect(res.missingKeys).not.toContain('fc1.bias');
    expect(arr(b.fc1.bias!)).toEqual([0.5, 0.5, 0.5]);
    expect(fc1bias).not.toEqual([0.5, 0.5, 0.5]);
    expectError(() => b.loadStateDict({ ...sd, 'fc1.bias': tsm.zeros([4]) }), RangeError, 'loadStateDict', /fc1\.bias/, /\[4\]/, /\[3\]/);
    expectError(() => b.loadStateDict(null as any), TypeError, 'loadStateDict');
    expectError(() => b.loadStateDict({ ...sd, 'fc1.bias': [1, 2, 3] as any }), TypeError, 'loadStateDict', /fc1\.bias/);
    // integer buffers load as integers
    b.loadStateDict({ ...sd, 'bn.num_batches_tracked': tsm.tensor(7, { dtype: 'int32' }) });
    expect(b.bn.num_batches_tracked.item()).toBe(7);
    expect(b.bn.num_batches_tracked.dtype).toBe('int32');
  }));

  it('zeroGrad clears gradients', () => tsm.tidy(() => {
    const m = new nn.Linear(3, 2);
    m.forward(tsm.ones([1, 3])).sum().backward();
    expect(m.weight.grad).not.toBeNull();
    m.zeroGrad();
    expect(m.parameters().every((p) => p.grad === null)).toBe(true);
  }));

  it('PyTorch default initialisation', () => tsm.tidy(() => {
    tsm.manualSeed(3);
    const within = (t: Tensor, bound: number) => {
      const d = arr(t);
      expect(Math.max(...d.map(Math.abs))).toBeLessThanOrEqual(bound);
      // spread over the range: P(max |v| < q bound) = q^n = 1e-4 for U(-bound, bound)
      expect(Math.max(...d.map(Math.abs))).toBeGreaterThan(Math.pow(1e-4, 1 / d.length) * bound);
      // mean within 4 standard errors of 0
      expect(Math.abs(d.reduce((a, b) => a + b) / d.length)).toBeLessThan((4 * bound) / Math.sqrt(3 * d.length));
    };
    const lin = new nn.Linear(100, 50);
    within(lin.weight, 1 / Math.sqrt(100));
    within(lin.bias!, 1 / Math.sqrt(100));
    const conv = new nn.Conv2d(8, 16, [3, 2], { groups: 2 });
    expect(conv.weight.shape).toEqual([16, 4, 3, 2]);
    within(conv.weight, 1 / Math.sqrt(4 * 3 * 2));
    within(conv.bias!, 1 / Math.sqrt(4 * 3 * 2));
    expect(new nn.Conv2d(2, 3, 3, { bias: false }).bias).toBeNull();
    const emb = new nn.Embedding(100, 20, { paddingIdx: 4 });
    const e = arr(emb.weight);
    const row4 = e.slice(80, 100);
    expect(row4.every((v) => v === 0)).toBe(true);
    const rest = e.filter((_, i) => i < 80 || i >= 100);
    const mean = rest.reduce((a, b) => a + b) / rest.length;
    const std = Math.sqrt(rest.reduce((a, b) => a + (b - mean) ** 2, 0) / rest.length);
    expect(Math.abs(mean)).toBeLessThan(0.1);
    expect(Math.abs(std - 1)).toBeLessThan(0.1);
    const ln = new nn.LayerNorm([3, 4]);
    expect(ln.weight!.shape).toEqual([3, 4]);
    expect(new Set(arr(ln.weight!))).toEqual(new Set([1]));
    expect(new Set(arr(ln.bias!))).toEqual(new Set([0]));
    expect(new nn.LayerNorm(4, { elementwiseAffine: false }).parameters()).toEqual([]);
    const bn = new nn.BatchNorm2d(5);
    expect(arr(bn.weight!)).toEqual([1, 1, 1, 1, 1]);
    expect(arr(bn.bias!)).toEqual([0, 0, 0, 0, 0]);
    expect(arr(bn.running_mean)).toEqual([0, 0, 0, 0, 0]);
    expect(arr(bn.running_var)).toEqual([1, 1, 1, 1, 1]);
    expect(bn.num_batches_tracked.item()).toBe(0);
    expect(lin.weight.requiresGrad && bn.weight!.requiresGrad).toBe(true);
    expect(bn.running_mean.requiresGrad).toBe(false);
  }));

  it('module constructors reject bad hyper-parameters', () => {
    expectError(() => new nn.Linear(0, 3), RangeError, 'Linear', /inFeatures/);
    expectError(() => new nn.Linear(2, 1.5), RangeError, 'Linear', /outFeatures/);
    expectError(() => new nn.Linear('2' as any, 3), TypeError, 'Linear', /inFeatures/);
    expectError(() => new nn.Conv2d(3, 4, 3, { groups: 2 }), RangeError, 'Conv2d', /groups/);
    expectError(() => new nn.Conv2d(3, 4, 0), RangeError, 'Conv2d', /kernelSize/);
    expectError(() => new nn.Conv2d(3, 4, 3, { stride: 0 }), RangeError, 'Conv2d', /stride/);
    expectError(() => new nn.Conv2d(3, 4, 3, { padding: -1 }), RangeError, 'Conv2d', /padding/);
    expectError(() => new nn.Conv2d(3, 4, 3, { dilation: [1, 0] }), RangeError, 'Conv2d', /dilation/);
    expectError(() => new nn.Conv2d(0, 4, 3), RangeError, 'Conv2d', /inChannels/);
    expectError(() => new nn.MaxPool2d(0), RangeError, 'MaxPool2d', /kernelSize/);
    expectError(() => new nn.MaxPool2d(2, { padding: 2 }), RangeError, 'MaxPool2d', /padding/);
    expectError(() => new nn.AvgPool2d(2, { stride: -1 }), RangeError, 'AvgPool2d', /stride/);
    expectError(() => new nn.AvgPool2d(2, { ceilMode: 'yes' as any }), TypeError, 'AvgPool2d', /ceilMode/);
    expectError(() => new nn.Dropout(1.5), RangeError, 'Dropout', /p/);
    expectError(() => new nn.Embedding(3, 4, { paddingIdx: 3 }), RangeError, 'Embedding', /paddingIdx/);
    expectError(() => new nn.Embedding(0, 4), RangeError, 'Embedding', /numEmbeddings/);
    expectError(() => new nn.LayerNorm(0), RangeError, 'LayerNorm', /normalizedShape/);
    expectError(() => new nn.LayerNorm(4, { eps: -1 }), RangeError, 'LayerNorm', /eps/);
    expectError(() => new nn.BatchNorm2d(0), RangeError, 'BatchNorm2d', /numFeatures/);
    expectError(() => new nn.BatchNorm2d(3, { momentum: 1.5 }), RangeError, 'BatchNorm2d', /momentum/);
    expectError(() => new nn.BatchNorm2d(3, { eps: -1e-5 }), RangeError, 'BatchNorm2d', /eps/);
    expectError(() => new nn.GELU('fast' as any), RangeError, 'GELU', /approximate/);
    expectError(() => new nn.Softmax('a' as any), TypeError, 'Softmax', /dim/);
    expectError(() => new nn.Flatten(0.5), RangeError, 'Flatten', /startDim/);
    expectError(() => new nn.Sequential(new nn.ReLU(), 3 as any), TypeError, 'Sequential', /argument 1/);
    expectError(() => new nn.CrossEntropyLoss({ reduction: 'avg' as any }), RangeError, 'CrossEntropyLoss', /reduction/);
    expectError(() => new nn.CrossEntropyLoss({ labelSmoothing: -0.1 }), RangeError, 'CrossEntropyLoss', /labelSmoothing/);
    expectError(() => new nn.MSELoss({ reduction: 'x' as any }), RangeError, 'MSELoss', /reduction/);
    expectError(() => new nn.BCEWithLogitsLoss({ reduction: 1 as any }), RangeError, 'BCEWithLogitsLoss', /reduction/);
  });

  it('BatchNorm2d forward rejects non-4-d input', () => {
    expectError(() => new nn.BatchNorm2d(3).forward(tsm.zeros([2, 3])), RangeError, 'BatchNorm2d', /rank 4/);
  });
});

describe('optimizers and schedulers: constructor checks', () => {
  const p = () => [tsm.zeros([2], { requiresGrad: true })];
  it('bad hyper-parameters throw named errors', () => {
    expectError(() => new optim.SGD(p(), { lr: -1 }), RangeError, 'SGD', /lr/);
    expectError(() => new optim.SGD(p(), { lr: NaN }), RangeError, 'SGD', /lr/);
    expectError(() => new optim.SGD(p(), { lr: '0.1' as any }), TypeError, 'SGD', /lr/);
    expectError(() => new optim.SGD(p(), { momentum: -0.9 }), RangeError, 'SGD', /momentum/);
    expectError(() => new optim.SGD(p(), { nesterov: true }), RangeError, 'SGD', /nesterov/);
    expectError(() => new optim.SGD(p(), { momentum: 0.9, dampening: 0.1, nesterov: true }), RangeError, 'SGD', /nesterov/);
    expectError(() => new optim.SGD(p(), { weightDecay: -1 }), RangeError, 'SGD', /weightDecay/);
    expectError(() => new optim.SGD([], {}), TypeError, 'SGD', /params/);
    expectError(() => new optim.SGD([tsm.zeros([2])], {}), RangeError, 'SGD', /params\[0\]/, /gradients/);
    expectError(() => new optim.SGD([3 as any], {}), TypeError, 'SGD', /params\[0\]/);
    expectError(() => new optim.Adam(p(), { betas: [1, 0.999] }), RangeError, 'Adam', /betas/);
    expectError(() => new optim.Adam(p(), { betas: [0.9] as any }), TypeError, 'Adam', /betas/);
    expectError(() => new optim.Adam(p(), { eps: -1 }), RangeError, 'Adam', /eps/);
    expectError(() => new optim.Adam(p(), { amsgrad: 1 as any }), TypeError, 'Adam', /amsgrad/);
    expectError(() => new optim.AdamW(p(), { weightDecay: -0.01 }), RangeError, 'AdamW', /weightDecay/);
    expectError(() => new optim.RMSprop(p(), { alpha: 2 }), RangeError, 'RMSprop', /alpha/);
    expectError(() => new optim.RMSprop(p(), { centered: 'no' as any }), TypeError, 'RMSprop', /centered/);
    expectError(() => optim.clipGradNorm(p(), -1), RangeError, 'clipGradNorm', /maxNorm/);
    const sgd = new optim.SGD(p(), { lr: 0.1 });
    expectError(() => new optim.StepLR(sgd, 0), RangeError, 'StepLR', /stepSize/);
    expectError(() => new optim.CosineAnnealingLR(sgd, 0), RangeError, 'CosineAnnealingLR', /tMax/);
    expectError(() => new optim.ReduceLROnPlateau(sgd, { factor: 1 }), RangeError, 'ReduceLROnPlateau', /factor/);
    expectError(() => new optim.StepLR({} as any, 2), TypeError, 'lrScheduler', /optimizer/);
  });
  it('ReduceLROnPlateau validates patience, threshold, cooldown, minLr and mode', () => {
    const sgd = new optim.SGD(p(), { lr: 0.1 });
    expectError(() => new optim.ReduceLROnPlateau(sgd, { patience: -1 }), RangeError, 'ReduceLROnPlateau', /patience/);
    expectError(() => new optim.ReduceLROnPlateau(sgd, { threshold: -1 }), RangeError, 'ReduceLROnPlateau', /threshold/);
    expectError(() => new optim.ReduceLROnPlateau(sgd, { cooldown: -2 }), RangeError, 'ReduceLROnPlateau', /cooldown/);
    expectError(() => new optim.ReduceLROnPlateau(sgd, { minLr: -1 }), RangeError, 'ReduceLROnPlateau', /minLr/);
    expectError(() => new optim.ReduceLROnPlateau(sgd, { mode: 'up' as any }), RangeError, 'ReduceLROnPlateau', /mode/);
  });
  it('defaults as PyTorch', () => {
    const sgd = new optim.SGD(p(), {});
    expect(sgd.lr).toBe(1e-3);
    const adam = new optim.Adam(p());
    expect([adam.lr, adam.betas, adam.eps, adam.weightDecay, adam.amsgrad]).toEqual([1e-3, [0.9, 0.999], 1e-8, 0, false]);
    expect(new optim.AdamW(p()).weightDecay).toBe(1e-2);
    const rms = new optim.RMSprop(p());
    expect([rms.lr, rms.alpha, rms.eps]).toEqual([1e-2, 0.99, 1e-8]);
  });
});

describe('a ReLU deferred until read, and max pooling through it', () => {
  const F = tsm.F;
  // conv -> relu -> pool on CNN-like shapes, once pooled through the ReLU (its output never written)
  // and once with the ReLU computed (x * 1 is not a ReLU node): values and gradients bit-identical.
  // Two input channels: patch rows of 6 floats, below what the winners-only backward takes (below).
  function run(fused: boolean) {
    tsm.manualSeed(3);
    const x = tsm.randn([4, 2, 14, 14]), w = tsm.randn([8, 2, 3, 3]).requiresGrad_(), b = tsm.randn([8]).requiresGrad_();
    return tsm.tidy(() => {
      const z = F.conv2d(x, w, b);
      const r = fused ? z.relu() : z.relu().mul(1);
      const y = F.maxPool2d(r, 2);
      y.mul(tsm.randn([...y.shape])).sum().backward();
      return { y: Array.from(y.dataSync()), dw: Array.from(w.grad!.dataSync()), db: Array.from(b.grad!.dataSync()) };
    });
  }

  it('gives the values and gradients of the ReLU computed', () => {
    const a = run(true), b = run(false);
    expect(a.y).toEqual(b.y);
    expect(a.dw).toEqual(b.dw);
    expect(a.db).toEqual(b.db);
    expect(a.y.some((v) => v === 0) && a.y.some((v) => v > 0)).toBe(true);  // windows on both sides of the kink
  });

  it('computes the ReLU when it is read, also after its input was disposed', () => {
    const z = tsm.randn([2, 3, 8, 8]).requiresGrad_().mul(1);  // a non-leaf
    const r = z.relu();
    const want = Array.from(z.dataSync(), (v) => (v > 0 ? v : 0));
    const y = F.maxPool2d(r, 2);
    expect(r._deferredSource('relu')).not.toBeNull();  // the pooling did not compute it
    z.dispose();
    expect(Array.from(r.reshape([2, 3, 64]).dataSync())).toEqual(want);
    expect(r._deferredSource('relu')).toBeNull();
    expect(Array.from(r.dataSync())).toEqual(want);
    expect(y.shape).toEqual([2, 3, 4, 4]);
    r.dispose();
    y.dispose();
  });

  it('frees what it holds whether or not it was read', () => {
    const before = tsm.memory();
    tsm.tidy(() => {
      const z = tsm.randn([2, 3, 8, 8]).requiresGrad_().mul(1);
      F.maxPool2d(z.relu(), 2);             // never read
      z.relu().dataSync();                  // read
      const r = z.relu();
      z.dispose();
      r.dispose();                          // disposed unread after its input
    });
    const after = tsm.memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes).toBe(before.bytes);
    expect(after.cudaBytes).toBe(before.cudaBytes);
  });

  it('is not applied to a leaf or a view of one (which an optimizer may update in place)', () => {
    const p = tsm.tensor([-1, 2, -3, 4]).requiresGrad_();
    const r = p.relu(), v = p.reshape([2, 2]).relu();
    (p._data as Float32Array).set([5, 5, 5, 5]);
    expect(Array.from(r.dataSync())).toEqual([0, 2, 0, 4]);
    expect(Array.from(v.dataSync())).toEqual([0, 2, 0, 4]);
  });
});

describe('a convolution deferred until read, and max pooling of it in one pass', () => {
  const F = tsm.F;
  // A CNN's first layer: 1 input channel, 3x3, 32 filters, an output 27x the input: deferred.
  const setup = () => {
    tsm.manualSeed(5);
    return { x: tsm.randn([6, 1, 28, 28]), w: tsm.randn([32, 1, 3, 3]).mul(0.5).requiresGrad_(), b: tsm.randn([32]).mul(0.1).requiresGrad_() };
  };
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => {
    let scale = 1e-3, err = 0;
    for (let i = 0; i < b.length; i++) { scale = Math.max(scale, Math.abs(b[i])); err = Math.max(err, Math.abs(a[i] - b[i])); }
    expect(a.length).toBe(b.length);
    expect(err).toBeLessThanOrEqual(tol * scale);
  };
  // fused: as written; plain: the same with an input that takes a gradient (never deferred).
  function run(fused: boolean, relu: boolean, extra = false) {
    const { x, w, b } = setup();
    const xi = fused ? x : x.requiresGrad_();
    return tsm.tidy(() => {
      const z = F.conv2d(xi, w, b);
      const h = relu ? z.relu() : z;
      const y = F.maxPool2d(h, 2);
      const deferred = z._deferredInfo('conv2d') !== null;
      tsm.manualSeed(9);
      let loss = y.mul(tsm.randn([...y.shape])).sum();
      if (extra) loss = loss.add(z.mul(z).mean());  // a second consumer of the convolution's output
      loss.backward();
      return { deferred, y: y.dataSync(), dw: w.grad!.dataSync(), db: b.grad!.dataSync() };
    });
  }

  for (const relu of [true, false]) {
    it(`gives the values and weight gradients of the convolution computed (${relu ? 'through a ReLU' : 'no ReLU'})`, () => {
      const a = run(true, relu), p = run(false, relu);
      expect(a.deferred).toBe(true);   // the pooling computed its planes, not the convolution's output
      expect(p.deferred).toBe(false);
      close(a.y, p.y, 1e-5);
      close(a.dw, p.dw, 1e-4);
      close(a.db, p.db, 1e-4);
      if (relu) expect(Array.from(a.y).some((v) => v === 0) && Array.from(a.y).some((v) => v > 0)).toBe(true);
    });
  }

  it('sums the gradients of a second consumer of the convolution\'s output', () => {
    const a = run(true, true, true), p = run(false, true, true);
    expect(a.deferred).toBe(true);  // when pooled; the second consumer read it afterwards
    close(a.dw, p.dw, 1e-4);
    close(a.db, p.db, 1e-4);
  });

  it('computes the output from the operands as they were, also after an in-place update', () => {
    const { x, w, b } = setup();
    const want = tsm.tidy(() => F.conv2d(x.requiresGrad_(false).mul(1), w, b).dataSync());
    const z = F.conv2d(x, w, b);
    const y = F.maxPool2d(z.relu(), 2);
    expect(z._deferredInfo('conv2d')).not.toBeNull();
    (w._data as Float32Array).fill(7);  // as an optimizer's step would
    (x._data as Float32Array).fill(-3);
    expect(Array.from(z.dataSync())).toEqual(Array.from(want));  // the same kernel on the same values
    expect(z._deferredInfo('conv2d')).toBeNull();
    z.dispose();
    y.dispose();
  });

  it('pools without a graph under noGrad, and frees everything whether or not it was read', () => {
    const { x, w, b } = setup();
    const before = tsm.memory();
    tsm.noGrad(() => tsm.tidy(() => {
      const y = F.maxPool2d(F.conv2d(x, w, b), 2);
      expect(y.requiresGrad).toBe(false);
      const want = F.maxPool2d(F.conv2d(x, w, b).mul(1), 2);
      close(y.dataSync(), want.dataSync(), 1e-5);
      // inference through the ReLU: deferred without a graph, pooled in the same pass
      const z = F.conv2d(x, w, b);
      const yr = F.maxPool2d(z.relu(), 2);
      expect(z._deferredInfo('conv2d')).not.toBeNull();
      close(yr.dataSync(), F.maxPool2d(F.conv2d(x, w, b).mul(1).relu(), 2).dataSync(), 1e-5);
    }));
    tsm.tidy(() => {
      const z = F.conv2d(x, w, b);
      F.maxPool2d(z.relu(), 2).sum().backward();  // never read
      F.conv2d(x, w, b).dataSync();                // read
      const z2 = F.conv2d(x, w, b);
      z2.dispose();                                // disposed unread
    });
    w.grad?.dispose();
    b.grad?.dispose();
    w.grad = null;
    b.grad = null;
    const after = tsm.memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes).toBe(before.bytes);
  });

  it('trains the MNIST CNN as the computed convolution does', () => {
    // Three SGD steps of the example's network, once as written and once with an input that takes a
    // gradient (no deferral): the same losses and parameters to rounding.
    const steps = (fused: boolean) => {
      tsm.manualSeed(11);
      const m = new MnistCnn();
      const opt = new tsm.optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
      const x = tsm.rand([16, 1, 28, 28]);
      if (!fused) x.requiresGrad_();
      const t = tsm.tensor(Int32Array.from({ length: 16 }, (_, i) => i % 10));
      const losses: number[] = [];
      for (let s = 0; s < 3; s++) {
        losses.push(tsm.tidy(() => {
          opt.zeroGrad();
          const loss = F.crossEntropy(m.forward(x), t);
          loss.backward();
          opt.step();
          return loss.item();
        }));
      }
      return { losses, w: m.conv1.weight.dataSync() };
    };
    const a = steps(true), p = steps(false);
    close(a.losses, p.losses, 1e-5);
    close(a.w, p.w, 1e-4);
  });
});

describe('max pooling of a convolution: the backward from the winners only', () => {
  const F = tsm.F;
  // The path needs at least as many images (5 below) as threads.
  let threads = 1;
  beforeAll(() => { threads = tsm.getNumThreads(); tsm.setNumThreads(2); });
  afterAll(() => tsm.setNumThreads(threads));
  // A CNN's second layer (small): 16 channels in, 3x3, 12 out, pooled 2x2: the pooling's node takes
  // the convolution's input, weight and bias, and its backward forms no gradient of the output.
  const setup = () => {
    tsm.manualSeed(11);
    return {
      x: tsm.randn([5, 16, 13, 13]).requiresGrad_(), w: tsm.randn([12, 16, 3, 3]).mul(0.2).requiresGrad_(),
      b: tsm.randn([12]).mul(0.1).requiresGrad_(),
    };
  };
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => {
    let scale = 1e-3, err = 0;
    for (let i = 0; i < b.length; i++) { scale = Math.max(scale, Math.abs(b[i])); err = Math.max(err, Math.abs(a[i] - b[i])); }
    expect(a.length).toBe(b.length);
    expect(err).toBeLessThanOrEqual(tol * scale);
  };
  // sparse: as written; plain: the pooling reads a copy (mul(1)), so its gradient goes through the
  // convolution's own backward.
  function run(sparse: boolean, relu: boolean, extra: 'none' | 'conv' | 'relu' = 'none', opts: Parameters<typeof tsm.F.maxPool2d>[1] = 2) {
    const { x, w, b } = setup();
    return tsm.tidy(() => {
      const z = F.conv2d(x, w, b, { padding: 1 });
      const h = relu ? z.relu() : z;
      const y = F.maxPool2d(sparse ? h : h.mul(1), opts);
      const skipped = y._node!.inputs[0] === x;  // the node goes straight to the convolution's operands
      tsm.manualSeed(9);
      let loss = y.mul(tsm.randn([...y.shape])).sum();
      if (extra === 'conv') loss = loss.add(z.mul(z).mean());
      if (extra === 'relu') loss = loss.add(h.mul(h).mean());
      loss.backward();
      return { skipped, y: y.dataSync(), dx: x.grad!.dataSync(), dw: w.grad!.dataSync(), db: b.grad!.dataSync() };
    });
  }

  for (const relu of [true, false]) {
    it(`gives the gradients of the composed backward (${relu ? 'through a ReLU' : 'no ReLU'})`, () => {
      const a = run(true, relu), p = run(false, relu);
      expect(a.skipped).toBe(true);
      expect(p.skipped).toBe(false);
      expect(Array.from(a.y)).toEqual(Array.from(p.y));
      close(a.dx, p.dx, 1e-5);
      close(a.dw, p.dw, 1e-5);
      close(a.db, p.db, 1e-5);
    });
  }

  for (const extra of ['conv', 'relu'] as const) {
    it(`sums the gradients of a second consumer of the ${extra === 'conv' ? 'convolution\'s' : 'ReLU\'s'} output`, () => {
      const a = run(true, true, extra), p = run(false, true, extra);
      expect(a.skipped).toBe(true);
      close(a.dx, p.dx, 1e-5);
      close(a.dw, p.dw, 1e-5);
      close(a.db, p.db, 1e-5);
    });
  }

  it('keeps the composed backward where the pooling keeps more than half of the outputs', () => {
    const a = run(true, true, 'none', { kernelSize: 2, stride: 1 }), p = run(false, true, 'none', { kernelSize: 2, stride: 1 });
    expect(a.skipped).toBe(false);
    close(a.dx, p.dx, 1e-5);
    close(a.dw, p.dw, 1e-5);
  });

  it('keeps the composed backward with fewer images than threads', () => {
    tsm.manualSeed(2);
    const x = tsm.randn([1, 16, 10, 10]).requiresGrad_(), w = tsm.randn([4, 16, 3, 3]).requiresGrad_();
    const y = F.maxPool2d(F.conv2d(x, w).relu(), 2);
    expect(y._node!.inputs[0]).not.toBe(x);
    y.dispose();
  });

  it('gives the gradients of the operands that take one only', () => {
    const { x, w, b } = setup();
    x.requiresGrad_(false);
    b.requiresGrad_(false);
    const y = F.maxPool2d(F.conv2d(x, w, b).relu(), 2);
    expect(y._node!.inputs[1]).toBe(w);
    y.sum().backward();
    expect(x.grad).toBeNull();
    expect(b.grad).toBeNull();
    const want = tsm.tidy(() => {
      const w2 = w.detach().requiresGrad_();
      F.maxPool2d(F.conv2d(x, w2, b).relu().mul(1), 2).sum().backward();
      return w2.grad!.dataSync();
    });
    close(w.grad!.dataSync(), want, 1e-5);
  });
});

/**
 * Puts a NaN-filled buffer of n elements into the pool and returns it: an op's output, whose buffer
 * goes back to the pool when disposed (full()'s does not).
 */
function freedNaNBuffer(n: number): Float32Array {
  const nan = tsm.full([n], NaN);
  const dirty = nan.mul(1);
  const buffer = dirty._data as Float32Array;
  nan.dispose();
  dirty.dispose();
  return buffer;
}

describe('buffer reuse', () => {
  it('maxPool2d writes every index of its (reused, dirty) index buffer', () => {
    // The indices live in a pooled buffer that a float tensor of the same length used before: fill
    // one with NaN (as int32, far out of range), free it, then pool and check the gradient's scatter.
    const x = tsm.randn([4, 4, 64, 64]).requiresGrad_();
    for (let round = 0; round < 2; round++) {
      expect(Array.from(freedNaNBuffer(4 * 4 * 32 * 32)).every(Number.isNaN)).toBe(true);
      const y = tsm.F.maxPool2d(x, 2);
      y.sum().backward();
      const xd = x.toArray() as number[][][][];
      const want = new Float32Array(4 * 4 * 64 * 64);
      for (let n = 0; n < 4; n++)
        for (let c = 0; c < 4; c++)
          for (let oh = 0; oh < 32; oh++)
            for (let ow = 0; ow < 32; ow++) {
              let best = -Infinity, at = -1;
              for (let kh = 0; kh < 2; kh++)
                for (let kw = 0; kw < 2; kw++) {
                  const v = xd[n][c][2 * oh + kh][2 * ow + kw];
                  if (v > best) { best = v; at = ((n * 4 + c) * 64 + 2 * oh + kh) * 64 + 2 * ow + kw; }
                }
              want[at] += 1;
            }
      expect(Array.from(x.grad!._data as Float32Array)).toEqual(Array.from(want));
      x.grad = null;
      y.dispose();
    }
  });
  it('small outputs take the freed buffer of their length and overwrite it', () => {
    // Small buffers are pooled too: a fresh typed array costs more than a tiny op (V8 moves one of
    // <= 64 bytes off its heap the first time the addon reads it).
    const a = tsm.tensor([1, 2, 3]);
    for (const [op, want] of [[(t: Tensor) => t.mul(t), [1, 4, 9]], [(t: Tensor) => t.neg(), [-1, -2, -3]],
      [(t: Tensor) => t.add(1), [2, 3, 4]], [(t: Tensor) => t.relu(), [1, 2, 3]],
      [(t: Tensor) => tsm.matmul(t.reshape([1, 3]), tsm.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0]])).reshape([3]), [4, 5, 3]]] as const) {
      const buffer = freedNaNBuffer(3);
      const y = op(a);
      expect(y._data).toBe(buffer);
      expect(Array.from(y.dataSync())).toEqual(want);
      y.dispose();
    }
  });

  it('TSM_FILL_UNINITIALIZED=1 hands out NaN-filled buffers (the CI run that finds unwritten outputs)', () => {
    const script = `const t = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'tensor.ts'))});
      const x = t.uninitializedF32([5]); const ok1 = Array.from(x._data).every(Number.isNaN);
      x._data.fill(1); x.dispose();
      const y = t.uninitializedF32([5]); process.stdout.write(String(ok1 && Array.from(y._data).every(Number.isNaN)));`;
    const run = (env: string | undefined) => spawnSync(process.execPath, ['--import', 'tsx', '-e', script],
      { env: { ...process.env, TSM_FILL_UNINITIALIZED: env }, encoding: 'utf8' }).stdout;
    expect(run('1')).toBe('true');
    expect(run('0')).toBe('false');
  });

  it('large tensors start on a 64-byte boundary (created, computed, copied and reused)', () => {
    // (A plain Float32Array of these sizes starts 16 bytes into a cache line with glibc's calloc.)
    const align = (t: Tensor) => nativeAddon().addressAlignment(t._data);
    const w = tsm.randn([512, 256]), x = tsm.rand([300, 512]), z = tsm.zeros([64, 1600]);
    const y = tsm.matmul(x, w);                       // a kernel's output (pooled)
    const wt = w.transpose(0, 1).contiguous();        // a strided copy
    for (const t of [w, x, z, y, wt]) expect(align(t)).toBeGreaterThanOrEqual(64);
    expect(Array.from(z._data.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    const buffer = y._data;
    y.dispose();
    const again = tsm.matmul(x, w);                   // the same buffer, back from the pool
    expect(again._data).toBe(buffer);
    expect(align(again)).toBeGreaterThanOrEqual(64);
    expect(Array.from(again._data.subarray(0, 3))).toEqual(Array.from(tsm.matmul(x.slice(0, 0, 1), w)._data.subarray(0, 3)));
  });

  it('kernels.alignedFloat32Array: zeroed, aligned, validated', () => {
    for (const n of [0, 1, 15, 1000, 16384, 1 << 20]) {
      const a = tsm.kernels.alignedFloat32Array(n);
      expect(a).toBeInstanceOf(Float32Array);
      expect(a.length).toBe(n);
      expect(a.every((v) => v === 0)).toBe(true);
      expect(nativeAddon().addressAlignment(a)).toBeGreaterThanOrEqual(64);
    }
    expect(() => tsm.kernels.alignedFloat32Array(-1)).toThrow(/kernels.alignedFloat32Array: n must be in \[0, 4294967296\], got -1/);
    expect(() => tsm.kernels.alignedFloat32Array(1.5)).toThrow(RangeError);
    expect(() => tsm.kernels.alignedFloat32Array('8' as unknown as number)).toThrow(/n must be a number, got/);
  });
});
