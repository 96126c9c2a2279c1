// bfloat16/float16 tensors on the CPU: the conversions bit for bit against an independent reference
// (double arithmetic, not bit tricks), the tensor API on 16-bit storage, the errors of ops that have
// no 16-bit kernel, save, and autocast's documented CPU no-op. GradScaler on CPU tensors is in
// test/grad-scaler.test.ts; the CUDA side in test/helpers/amp-suite.ts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import type { Tensor } from '../lib/index';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => { f32[0] = x; return u32[0]; };
const floatOf = (u: number) => { u32[0] = u >>> 0; return f32[0]; };

/** Round half to even of a non-negative double q. */
function rhe(q: number): number {
  const f = Math.floor(q), r = q - f;
  return r > 0.5 || (r === 0.5 && f % 2 === 1) ? f + 1 : f;
}
/** floor(log2(a)) for a > 0, exact. */
function ilog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return e;
}
/**
 * Reference rounding of the float32 value x to a format with `mant` fraction bits, minimum normal
 * exponent `emin` and largest exponent `maxExp` (2^(maxExp+1) overflows), by arithmetic: |x| / ulp
 * rounded half to even. Returns the rounded double (+-Infinity on overflow).
 */
function roundRef(x: number, mant: number, emin: number, maxExp: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  const ulp = 2 ** (Math.max(ilog2(a), emin) - mant);
  const v = rhe(a / ulp) * ulp;
  const r = v >= 2 ** (maxExp + 1) ? Infinity : v;
  return x < 0 ? -r : r;
}
function bf16Ref(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const v = roundRef(x, 7, -126, 127);
  return bitsOf(v) >>> 16; // v is a float32 whose low 16 bits are zero (or +-Inf, +-0)
}
function f16Ref(x: number): number {
  if (Number.isNaN(x)) return (bitsOf(x) >>> 31 ? 0x8000 : 0) | 0x7e00;
  const sign = Object.is(x, -0) || x < 0 ? 0x8000 : 0;
  const v = Math.abs(roundRef(x, 10, -14, 15));
  if (v === Infinity) return sign | 0x7c00;
  if (v === 0) return sign;
  if (v < 2 ** -14) return sign | (v / 2 ** -24);
  const e = ilog2(v);
  return sign | ((e + 15) << 10) | (v / 2 ** e * 1024 - 1024);
}
function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

function bits(t: Tensor): Uint16Array {
  return t._bits('test');
}
function all16(): Uint16Array {
  const h = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) h[i] = i;
  return h;
}

/** Inputs for float32 -> 16 bits: a stride through all float32 patterns plus ties, neighbours and edges. */
function probes(dtype: 'bfloat16' | 'float16'): Float32Array {
  const xs: number[] = [];
  for (let u = 0; u < 2 ** 32; u += 65521) xs.push(floatOf(u));
  for (let h = 0; h < 65536; h++) {
    // Midpoints between neighbouring 16-bit values (the ties) and the float32 values just around them.
    let a: number, b: number;
    if (dtype === 'bfloat16') { a = floatOf(h << 16); b = floatOf(((h + 1) & 0xffff) << 16); }
    else { a = f16Value(h); b = f16Value((h + 1) & 0xffff); }
    if (!Number.isFinite(a) || !Number.isFinite(b) || Math.sign(a) !== Math.sign(b) && a !== 0) continue;
    const mid = (a + b) / 2;
    if (Math.fround(mid) !== mid) continue;
    const mu = bitsOf(mid);
    xs.push(mid, floatOf(mu + 1), floatOf(mu - 1));
  }
  xs.push(0, -0, Infinity, -Infinity, NaN, -NaN, floatOf(0x7f800001), floatOf(0xffc00000), 65504, 65519.998046875, 65520,
    -65520, 1e-8, 2 ** -24, 2 ** -25, -(2 ** -25), 2 ** -25 * 1.0000001, 2 ** -149, 3.3895314e38, floatOf(0x7f7fffff),
    floatOf(0x7f7f8000), floatOf(0x7f7f7fff), -floatOf(0x7f7fffff), 2 ** -133, 2 ** -126 * 0.75);
  return Float32Array.from(xs);
}

describe('bfloat16 and float16 conversions', () => {
  for (const dtype of ['bfloat16', 'float16'] as const) {
    const ref = dtype === 'bfloat16' ? bf16Ref : f16Ref;
    const value = dtype === 'bfloat16' ? (h: number) => floatOf(h << 16) : f16Value;

    it(`${dtype}: all 65536 patterns decode exactly and round-trip (NaN stays NaN)`, () => {
      const h = all16();
      // 16 -> float32 through a CPU tensor's dataSync (the values), then float32 -> 16 through to().
      const t16 = tsm.tensor(Float32Array.from(h, value), { dtype });
      const back = bits(t16);
      const vals = t16.dataSync();
      expect(vals).toBeInstanceOf(Float32Array);
      for (let i = 0; i < 65536; i++) {
        const v = value(i);
        if (Number.isNaN(v)) {
          expect(Number.isNaN(vals[i]), `pattern ${i.toString(16)} decodes to NaN`).toBe(true);
          expect(Number.isNaN(value(back[i])), `NaN pattern ${i.toString(16)} stays NaN`).toBe(true);
          continue;
        }
        if (!Object.is(vals[i], Math.fround(v))) throw new Error(`${dtype} ${i.toString(16)} decodes to ${vals[i]}, expected ${v}`);
        if (back[i] !== i) throw new Error(`${dtype} ${i.toString(16)} round-trips to ${back[i].toString(16)}`);
      }
      // to('float32') gives the same values as dataSync.
      const f = t16.to('float32');
      expect(f.dtype).toBe('float32');
      expect(Array.from(f.dataSync()).map((v, i) => Object.is(v, vals[i]) || (Number.isNaN(v) && Number.isNaN(vals[i])))
        .every(Boolean)).toBe(true);
    });

    it(`${dtype}: float32 -> ${dtype} rounds to nearest even (ties, overflow to Inf, subnormals, NaN) as the reference`, () => {
      const xs = probes(dtype);
      const got = bits(tsm.tensor(xs, { dtype }));
      const viaTo = bits(tsm.tensor(xs).to(dtype));
      for (let i = 0; i < xs.length; i++) {
        const want = ref(xs[i]);
        if (got[i] !== want || viaTo[i] !== want)
          throw new Error(`${dtype}(${xs[i]} = 0x${bitsOf(xs[i]).toString(16)}) gave 0x${got[i].toString(16)} / 0x${viaTo[i].toString(16)}, expected 0x${want.toString(16)}`);
      }
    });
  }

  it('spot values: ties to even, overflow, the smallest subnormal, NaN', () => {
    const b = (x: number) => bits(tsm.tensor([x], { dtype: 'bfloat16' }))[0];
    const h = (x: number) => bits(tsm.tensor([x], { dtype: 'float16' }))[0];
    expect(b(1 + 2 ** -8)).toBe(0x3f80); // tie between 1 and 1+2^-7: to even (1)
    expect(b(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie: to even (1+2^-6)
    expect(b(floatOf(0x7f7fffff))).toBe(0x7f80); // float32 max rounds to Inf in bfloat16
    expect(b(NaN)).toBe(0x7fc0);
    expect(h(1 + 2 ** -11)).toBe(0x3c00);
    expect(h(65504)).toBe(0x7bff);
    expect(h(65520)).toBe(0x7c00); // the tie above the largest float16 goes to Inf
    expect(h(-65520)).toBe(0xfc00);
    expect(h(2 ** -24)).toBe(0x0001);
    expect(h(2 ** -25)).toBe(0x0000); // tie with 0: to even
    expect(h(3 * 2 ** -25)).toBe(0x0002);
    expect(h(-NaN) & 0x7fff).toBe(0x7e00);
  });
});

describe('16-bit tensors on the CPU', () => {
  it('creation, dtype, memory, printing, views, clone, casts between all dtypes', () => {
    const before = tsm.memory();
    const t = tsm.tensor([[1.5, -2], [3.00390625, 65504]], { dtype: 'bfloat16' });
    expect(t.dtype).toBe('bfloat16');
    expect(tsm.memory().bytes - before.bytes).toBe(8); // 2 bytes per element
    expect(String(t)).toBe('Tensor(shape=[2, 2], dtype=bfloat16)');
    expect(t.toArray()).toEqual([[1.5, -2], [3, 65536]]);
    expect(t.reshape([4]).dataSync()).toEqual(Float32Array.from([1.5, -2, 3, 65536]));
    expect(t.clone().dtype).toBe('bfloat16');
    expect(tsm.tensor([7.9], { dtype: 'float16' }).item()).toBe(7.8984375);
    expect(tsm.zeros([3], { dtype: 'float16' }).dataSync()).toEqual(new Float32Array(3));
    expect(tsm.full([2], 1 / 3, { dtype: 'bfloat16' }).dataSync()).toEqual(Float32Array.from([0.333984375, 0.333984375]));
    expect(tsm.ones([2], { dtype: 'bfloat16' }).to('int32').dataSync()).toEqual(Int32Array.from([1, 1]));
    expect(tsm.arange(0, 3, 1, { dtype: 'float16' }).dataSync()).toEqual(Float32Array.from([0, 1, 2]));
    expect(tsm.tensor(Int32Array.from([257, -3])).to('bfloat16').dataSync()).toEqual(Float32Array.from([256, -3]));
    expect(tsm.tensor([100000], { dtype: 'bfloat16' }).to('float16').item()).toBe(Infinity);
    expect(tsm.randn([5], { dtype: 'bfloat16' }).dtype).toBe('bfloat16');
    t.dispose();
  });

  it('ops without a 16-bit kernel are TypeErrors naming the op, the argument and the dtype', () => {
    const t = tsm.tensor([1, 2], { dtype: 'bfloat16' });
    expect(() => t.add(1)).toThrow(TypeError);
    expect(() => t.add(1)).toThrow(/add: input is a bfloat16 tensor .*cast it to float32 first/);
    expect(() => tsm.matmul(tsm.ones([2, 2]), tsm.ones([2, 2], { dtype: 'float16' }))).toThrow(/matmul: other is a float16 tensor/);
    expect(() => t.sum()).toThrow(/sum: input is a bfloat16 tensor/);
    expect(() => t.transpose(0, 0)).toThrow(/transpose: input is a bfloat16 tensor/);
    expect(() => tsm.F.relu(t)).toThrow(TypeError);
    expect(() => tsm.tensor([1], { dtype: 'bfloat16', requiresGrad: true })).toThrow(/only float32 tensors can require gradients/);
  });

  it('io.save writes BF16/F16 entries with the bits; io.load reads them back as float32 values', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-half-'));
    const file = path.join(dir, 'h.safetensors');
    const a = tsm.tensor([1.5, -0.1, 3e38], { dtype: 'bfloat16' }), b = tsm.tensor([0.1, 65504], { dtype: 'float16' });
    tsm.io.save({ a, b }, file);
    const raw = fs.readFileSync(file);
    const n = Number(raw.readBigUInt64LE(0));
    const header = JSON.parse(raw.subarray(8, 8 + n).toString('utf8'));
    expect(header.a.dtype).toBe('BF16');
    expect(header.b.dtype).toBe('F16');
    expect(header.a.data_offsets[1] - header.a.data_offsets[0]).toBe(6);
    const back = tsm.io.load(file);
    expect(back.a.dataSync()).toEqual(a.dataSync());
    expect(back.b.dataSync()).toEqual(b.dataSync());
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('autocast', () => {
  it('validates its arguments', () => {
    expect(() => tsm.autocast({ dtype: 'float32' as never }, () => 0)).toThrow(/autocast: dtype must be 'bfloat16' or 'float16'/);
    expect(() => tsm.autocast({ deviceType: 'tpu' as never }, () => 0)).toThrow(/autocast: deviceType must be 'cuda' or 'cpu'/);
    expect(() => tsm.autocast({ enabled: 1 as never }, () => 0)).toThrow(/enabled must be a boolean/);
    expect(() => tsm.autocast({}, 5 as never)).toThrow(/fn must be a function/);
  });

  it('state: nesting, enabled:false, restore after an exception, async functions', async () => {
    expect(tsm.isAutocastEnabled()).toBe(false);
    expect(tsm.getAutocastDtype('cuda')).toBe('float16');
    expect(tsm.getAutocastDtype('cpu')).toBe('bfloat16');
    tsm.autocast({ dtype: 'bfloat16' }, () => {
      expect(tsm.isAutocastEnabled('cuda')).toBe(true);
      expect(tsm.isAutocastEnabled('cpu')).toBe(false);
      expect(tsm.getAutocastDtype()).toBe('bfloat16');
      tsm.autocast({ enabled: false }, () => expect(tsm.isAutocastEnabled()).toBe(false));
      tsm.autocast({ dtype: 'float16', deviceType: 'cpu' }, () => {
        expect(tsm.isAutocastEnabled('cpu')).toBe(true);
        expect(tsm.isAutocastEnabled('cuda')).toBe(true);
        expect(tsm.getAutocastDtype('cpu')).toBe('float16');
      });
      expect(() => tsm.autocast({ dtype: 'float16' }, () => { throw new Error('boom'); })).toThrow('boom');
      expect(tsm.getAutocastDtype()).toBe('bfloat16');
    });
    expect(tsm.isAutocastEnabled()).toBe(false);
    // An async fn keeps the region across its awaits; code running meanwhile outside does not see it.
    let outside: boolean | null = null;
    const p = tsm.autocast({ dtype: 'bfloat16' }, async () => {
      await new Promise((r) => setTimeout(r, 5));
      return tsm.isAutocastEnabled();
    });
    outside = tsm.isAutocastEnabled();
    await expect(p).resolves.toBe(true);
    expect(outside).toBe(false);
    expect(tsm.isAutocastEnabled()).toBe(false);
    await expect(tsm.autocast({}, async () => { throw new Error('async boom'); })).rejects.toThrow('async boom');
  });

  it('on CPU tensors it changes nothing (documented no-op), for either deviceType', () => {
    tsm.manualSeed(3);
    const x = tsm.randn([5, 7]), w = tsm.randn([3, 7]), b = tsm.randn([3]);
    const want = tsm.F.linear(x, w, b).dataSync();
    for (const deviceType of ['cpu', 'cuda'] as const) {
      const got = tsm.autocast({ deviceType, dtype: 'bfloat16' }, () => tsm.F.linear(x, w, b));
      expect(got.dtype).toBe('float32');
      expect(got.dataSync()).toEqual(want);
      expect(tsm.autocast({ deviceType }, () => x.matmul(w.transpose())).dataSync()).toEqual(x.matmul(w.transpose()).dataSync());
    }
  });
});
