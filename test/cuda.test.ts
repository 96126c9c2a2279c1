// CUDA backend: device buffers, the caching allocator and every GEMM kernel family against a float64
// reference on fresh random inputs (tolerances per dtype as the device's METHOD.md says), with
// NaN-poisoned outputs, odd sizes, all transposes, epilogues and strided batches.
//
// The GPU part is skipped (with the reason printed) where no CUDA device is visible; the rest runs
// everywhere: without a GPU, isAvailable() is false, deviceCount() is 0, and device calls throw a
// clear TsmCudaError instead of crashing.
import { describe, expect, it } from 'vitest';
import * as cuda from '../lib/cuda';
import { TsmCudaError } from '../lib/errors';
import * as kernels from '../lib/kernels';

const available = cuda.isAvailable();
const reason = cuda.unavailableReason();
if (!available) console.log(`[cuda.test] GPU tests skipped: ${reason}`);

describe('CUDA without a device (or without CUDA in the build)', () => {
  it.skipIf(available)('reports no device and throws TsmCudaError for device work', () => {
    expect(cuda.isAvailable()).toBe(false);
    expect(cuda.deviceCount()).toBe(0);
    expect(reason.length).toBeGreaterThan(0);
    // No-ops without a device, zeros from the allocator.
    expect(() => cuda.synchronize()).not.toThrow();
    expect(() => cuda.emptyCache()).not.toThrow();
    expect(cuda.memoryStats().allocatedBytes).toBe(0);
    let err: unknown;
    try {
      new cuda.DeviceBuffer(1024);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TsmCudaError);
    expect((err as TsmCudaError).call).toBe('cudaMalloc');
    expect((err as Error).message).toMatch(/no CUDA (device is available|support)/);
    expect(() => cuda.deviceInfo(0)).toThrow(TsmCudaError);
  });

  it('validates arguments in TypeScript with named errors', () => {
    expect(() => cuda.sgemm({ m: 2, n: 2, k: 2, a: new Float32Array(4) as never, b: null as never, c: null as never }))
      .toThrow(/cuda\.gemm: a must be a tsm\.cuda\.DeviceBuffer/);
    expect(() => cuda.gemm({ type: 'int8' as never, m: 1, n: 1, k: 1, a: null as never, b: null as never, c: null as never }))
      .toThrow(/cuda\.gemm: type must be one of/);
    expect(() => cuda.setGemmAlgo('fast' as never)).toThrow(/cuda\.setGemmAlgo/);
  });

  it('the raw binding rejects non-handles without crashing', () => {
    const a = cuda.cudaAddon();
    expect(() => a.cudaUpload({} as never, new Float32Array(4))).toThrow(/device buffer handle/);
    expect(() => a.cudaFree(42 as never)).toThrow(/device buffer handle/);
  });

  it('converts bf16 and f16 on the host (round to nearest even)', () => {
    const x = [0, 1, -2.5, 1 / 3, 65504, 1e-7, 3.14159];
    const bf = cuda.fromBfloat16(cuda.toBfloat16(x));
    const hf = cuda.fromFloat16(cuda.toFloat16(x));
    x.forEach((v, i) => {
      expect(Math.abs(bf[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8);
      if (Math.abs(v) > 6.1e-5) expect(Math.abs(hf[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11);
    });
    expect(cuda.fromBfloat16(cuda.toBfloat16([NaN]))[0]).toBeNaN();
  });
});

// ---- the GPU part ----

type T = cuda.GemmType;
interface Case {
  type: T;
  algo: cuda.GemmAlgo;
  m: number; n: number; k: number;
  transA?: boolean; transB?: boolean;
  batch?: number; broadcastB?: boolean;
  padLd?: number;
  alpha?: number; beta?: number; bias?: boolean; act?: cuda.Activation;
  cDtype?: cuda.CudaDtype;
}

let seed = (Date.now() ^ 0x5eed) >>> 0;  // fresh inputs every run; printed on failure
function rand(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; ++i) {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    x[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return x;
}

// erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev), enough for float32 checks.
function erf(x: number): number {
  const z = Math.abs(x), t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

const tolerance = (c: Case): number => {
  if (c.cDtype === 'bfloat16') return 8e-3;
  if (c.cDtype === 'float16') return 2e-3;
  if (c.type === 'tf32') return 3e-3;  // inputs unrounded in the reference: tf32 rounding/truncation
  return 2e-5;  // f32, and bf16/f16 against a reference on the same rounded inputs
};

function runCase(c: Case): { err: number; nan: number; algo: string } {
  const { m, n, k } = c;
  const ta = !!c.transA, tb = !!c.transB, batch = c.batch ?? 1, pad = c.padLd ?? 0;
  const aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
  const lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
  const sA = aRows * lda, sB = c.broadcastB ? 0 : bRows * ldb, sC = m * ldc;
  let a = rand(batch * sA), b = rand(Math.max(1, batch * sB || bRows * ldb));
  const c0 = rand(batch * sC), bias = c.bias ? rand(n) : null;
  // 16-bit inputs: round on the host, so the reference sees exactly what the kernel sees.
  const enc = (x: Float32Array) => (c.type === 'bf16' ? cuda.toBfloat16(x) : c.type === 'f16' ? cuda.toFloat16(x) : x);
  const dec = (x: Float32Array | Uint16Array) => (c.type === 'bf16' ? cuda.fromBfloat16(x as Uint16Array) : c.type === 'f16' ? cuda.fromFloat16(x as Uint16Array) : (x as Float32Array));
  const aDev = enc(a), bDev = enc(b);
  a = dec(aDev); b = dec(bDev);
  const cd = c.cDtype ?? 'float32';
  const cHost = cd === 'bfloat16' ? cuda.toBfloat16(c0) : cd === 'float16' ? cuda.toFloat16(c0) : c0;
  const cRef = cd === 'bfloat16' ? cuda.fromBfloat16(cHost as Uint16Array) : cd === 'float16' ? cuda.fromFloat16(cHost as Uint16Array) : c0;
  const alpha = c.alpha ?? 1, beta = c.beta ?? 0, act = c.act ?? 'none';

  const A = cuda.DeviceBuffer.from(aDev), B = cuda.DeviceBuffer.from(bDev);
  const C = cuda.DeviceBuffer.from(cHost);
  const Bias = bias ? cuda.DeviceBuffer.from(bias) : null;
  if (beta === 0) C.fill(0xff);  // NaN poison: every element must be written, and C not read
  cuda.setGemmAlgo(c.algo);
  try {
    cuda.gemm({ type: c.type, transA: ta, transB: tb, m, n, k, alpha, a: A, lda, b: B, ldb, beta, c: C, ldc,
      cDtype: cd, bias: Bias, activation: act, batch, strideA: sA, strideB: sB, strideC: sC });
  } finally {
    cuda.setGemmAlgo('auto');
  }
  const used = cuda.lastGemmAlgo();
  const outRaw = C.download(cd === 'float32' ? new Float32Array(batch * sC) : new Uint16Array(batch * sC));
  const out = cd === 'bfloat16' ? cuda.fromBfloat16(outRaw as Uint16Array) : cd === 'float16' ? cuda.fromFloat16(outRaw as Uint16Array) : (outRaw as Float32Array);
  for (const buf of [A, B, C, Bias]) buf?.free();

  let num = 0, den = 0, nan = 0;
  for (let z = 0; z < batch; ++z) {
    for (let i = 0; i < m; ++i) {
      for (let j = 0; j < n; ++j) {
        let s = 0;
        for (let p = 0; p < k; ++p) {
          const av = ta ? a[z * sA + p * lda + i] : a[z * sA + i * lda + p];
          const bv = tb ? b[z * sB + j * ldb + p] : b[z * sB + p * ldb + j];
          s += av * bv;
        }
        let v = alpha * s + (beta !== 0 ? beta * cRef[z * sC + i * ldc + j] : 0) + (bias ? bias[j] : 0);
        if (act === 'relu') v = Math.max(v, 0);
        else if (act === 'gelu') v = 0.5 * v * (1 + erf(v / Math.SQRT2));
        const o = out[z * sC + i * ldc + j];
        if (Number.isNaN(o)) nan++;
        num += (o - v) ** 2;
        den += v * v;
      }
    }
  }
  return { err: Math.sqrt(num / Math.max(den, 1e-30)), nan, algo: used };
}

function check(c: Case): void {
  const s0 = seed;
  const r = runCase(c);
  const label = `${JSON.stringify(c)} (seed ${s0})`;
  expect(r.nan, `NaN outputs in ${label}`).toBe(0);
  expect(r.err, `relative error of ${label}`).toBeLessThan(tolerance(c));
  if (c.algo !== 'auto') expect(r.algo, label).toBe(c.algo);
}

const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [1, 37, 5], [17, 33, 7], [64, 64, 64], [127, 129, 65], [128, 128, 32], [200, 136, 300], [257, 255, 130],
];
const LAYOUTS: Array<[boolean, boolean]> = [[false, false], [false, true], [true, false], [true, true]];

describe.skipIf(!available)('CUDA GEMM kernels vs a float64 reference', () => {
  const info = available ? cuda.deviceInfo(0) : null;
  const hopper = info?.computeCapability === '9.0';
  const hasWgmma = hopper && cuda.cudaAddon() !== null;

  it('device info and the allocator', () => {
    expect(info!.multiprocessors).toBeGreaterThan(0);
    cuda.emptyCache();
    const before = cuda.memoryStats();
    const x = new cuda.DeviceBuffer(1000);
    const afterAlloc = cuda.memoryStats();
    expect(afterAlloc.allocatedBytes - before.allocatedBytes).toBe(1024);  // 512-byte buckets
    x.free();
    const y = new cuda.DeviceBuffer(900);  // same bucket: served from the cache
    const afterReuse = cuda.memoryStats();
    expect(afterReuse.numCacheHits).toBe(afterAlloc.numCacheHits + 1);
    y.free();
    cuda.emptyCache();
    expect(cuda.memoryStats().reservedBytes).toBe(cuda.memoryStats().allocatedBytes);
    const data = rand(3000);
    const back = cuda.DeviceBuffer.from(data).download(new Float32Array(3000));
    expect(back).toEqual(data);
    // A large copy crosses the 4 MiB pinned staging chunks.
    const big = rand(3_000_000);
    const bigDev = cuda.DeviceBuffer.from(big);
    expect(bigDev.download(new Float32Array(big.length))).toEqual(big);
    bigDev.free();
  });

  it('out of memory is a TsmCudaError after one retry, not a crash', () => {
    const before = cuda.memoryStats().numOomRetries;
    let err: unknown;
    try {
      new cuda.DeviceBuffer(2 ** 45);  // 32 TiB
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TsmCudaError);
    expect((err as Error).message).toMatch(/out of memory/);
    expect(cuda.memoryStats().numOomRetries).toBe(before + 1);
    // The device still works afterwards.
    check({ type: 'f32', algo: 'simt', m: 33, n: 17, k: 9 });
  });

  it('SGEMM (SIMT): all layouts, odd sizes, padded leading dimensions', () => {
    for (const [m, n, k] of SHAPES) for (const [ta, tb] of LAYOUTS) check({ type: 'f32', algo: 'simt', m, n, k, transA: ta, transB: tb });
    check({ type: 'f32', algo: 'simt', m: 130, n: 67, k: 45, padLd: 3 });
    check({ type: 'f32', algo: 'simt', m: 512, n: 384, k: 700 });
    // Split K (few tiles, long K): the ordered reduction of the slices applies alpha, beta, the bias
    // and the activation; a batch of 3 and a transposed A (a linear layer's weight gradient).
    check({ type: 'f32', algo: 'simt', m: 70, n: 50, k: 1600, alpha: 0.5, beta: -1, bias: true, act: 'gelu' });
    check({ type: 'f32', algo: 'simt', m: 256, n: 256, k: 4096, transA: true, batch: 3 });
  });

  it('SGEMM agrees with the CPU kernel (tsm.kernels.sgemm)', () => {
    const m = 150, n = 170, k = 190;
    const a = rand(m * k), b = rand(k * n), cpu = new Float32Array(m * n);
    kernels.sgemm({ m, n, k, a, b, c: cpu });
    const A = cuda.DeviceBuffer.from(a), B = cuda.DeviceBuffer.from(b), C = new cuda.DeviceBuffer(m * n * 4).fill(0xff);
    cuda.sgemm({ m, n, k, a: A, b: B, c: C });
    const gpu = C.download(new Float32Array(m * n));
    let num = 0, den = 0;
    for (let i = 0; i < m * n; ++i) { num += (gpu[i] - cpu[i]) ** 2; den += cpu[i] ** 2; }
    expect(Math.sqrt(num / den)).toBeLessThan(1e-5);
  });

  for (const type of ['tf32', 'bf16', 'f16'] as const) {
    it(`${type} on tensor cores with mma.sync: all layouts, odd sizes`, () => {
      for (const [m, n, k] of SHAPES) for (const [ta, tb] of LAYOUTS) check({ type, algo: 'mma', m, n, k, transA: ta, transB: tb });
      check({ type, algo: 'mma', m: 100, n: 75, k: 40, padLd: 1 });  // unaligned rows: the element-wise load path
      check({ type, algo: 'mma', m: 384, n: 512, k: 640 });
    });

    it.skipIf(!hasWgmma)(`${type} with wgmma + TMA (sm_90a): K-major layout, edges`, () => {
      const kAlign = type === 'tf32' ? 4 : 8;  // 16-byte rows for TMA
      for (const [m, n, k] of [[1, 1, kAlign], [129, 257, 72], [128, 256, 64], [300, 520, 136], [64, 1000, 1024], [513, 260, 8 * kAlign]])
        check({ type, algo: 'wgmma', m, n, k, transA: false, transB: true });
      check({ type, algo: 'wgmma', m: 1024, n: 1024, k: 1024, transB: true });
      // auto picks wgmma for this layout on sm_90
      const r = runCase({ type, algo: 'auto', m: 256, n: 256, k: 128, transB: true });
      expect(r.algo).toBe('wgmma');
    });
  }

  it('epilogues: beta, bias, relu, gelu, 16-bit outputs', () => {
    const algos: Array<[T, cuda.GemmAlgo]> = [['f32', 'simt'], ['tf32', 'mma'], ['bf16', 'mma'], ['f16', 'mma']];
    if (hasWgmma) algos.push(['bf16', 'wgmma'], ['tf32', 'wgmma']);
    for (const [type, algo] of algos) {
      const tb = algo === 'wgmma';
      check({ type, algo, m: 70, n: 90, k: 48, transB: tb, beta: 0.5, alpha: 0.75 });
      check({ type, algo, m: 70, n: 90, k: 48, transB: tb, bias: true, act: 'relu' });
      check({ type, algo, m: 130, n: 33 + (tb ? 7 : 0), k: 64, transB: tb, bias: true, act: 'gelu', beta: -1 });
    }
    check({ type: 'bf16', algo: 'mma', m: 100, n: 60, k: 50, cDtype: 'bfloat16', bias: true });
    check({ type: 'f16', algo: 'mma', m: 100, n: 60, k: 50, cDtype: 'float16', beta: 1 });
    if (hasWgmma) check({ type: 'bf16', algo: 'wgmma', m: 200, n: 264, k: 64, transB: true, cDtype: 'bfloat16' });
  });

  it('strided batched, with B broadcast', () => {
    check({ type: 'f32', algo: 'simt', m: 33, n: 45, k: 20, batch: 3 });
    check({ type: 'f32', algo: 'simt', m: 33, n: 45, k: 20, batch: 4, broadcastB: true, transA: true });
    check({ type: 'bf16', algo: 'mma', m: 65, n: 40, k: 32, batch: 3, transB: true });
    check({ type: 'tf32', algo: 'mma', m: 65, n: 40, k: 32, batch: 2, broadcastB: true });
    if (hasWgmma) {
      check({ type: 'bf16', algo: 'wgmma', m: 130, n: 300, k: 64, batch: 3, transB: true });
      check({ type: 'f16', algo: 'wgmma', m: 130, n: 300, k: 64, batch: 3, transB: true, broadcastB: true });
    }
  });

  it('a family that cannot run the call is a TsmCudaError, not a wrong result', () => {
    const A = new cuda.DeviceBuffer(64 * 64 * 4), B = new cuda.DeviceBuffer(64 * 64 * 4), C = new cuda.DeviceBuffer(64 * 64 * 4);
    cuda.setGemmAlgo('wgmma');
    try {
      // NN layout is not K-major for B: the wgmma kernel refuses it.
      expect(() => cuda.gemm({ type: 'tf32', m: 64, n: 64, k: 64, a: A, b: B, c: C })).toThrow(TsmCudaError);
      cuda.setGemmAlgo('mma');
      expect(() => cuda.sgemm({ m: 64, n: 64, k: 64, a: A, b: B, c: C })).toThrow(/SIMT kernel only/);
    } finally {
      cuda.setGemmAlgo('auto');
    }
    cuda.synchronize();
  });
});
