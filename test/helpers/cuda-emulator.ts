// A stand-in CUDA device for testing the TypeScript layer of CUDA tensors on machines without a GPU.
//
// It replaces the addon's CUDA entry points (lib/cuda.ts CudaAddon, lib/device.ts CudaTensorAddon) in
// this test process with JavaScript: device buffers are host ArrayBuffers behind opaque handle
// objects, and each tensor kernel is computed by the CPU kernel of the same contract (the C header's
// "cuda tensor kernels" section says each one is the CPU kernel's contract on device memory), or by a
// plain loop where the CPU has no twin (strided copy, fill, cast, arg-reduce backward). Every access
// is bounds-checked against the buffer, new buffers hold garbage, and freed handles are refused, so
// a wrong size, stride, offset or handle in lib/ fails a test here.
//
// What it verifies: the dispatch in lib/ops.ts, lib/gradients.ts, lib/optim.ts and lib/nn.ts, the
// shapes/strides/offsets passed to the kernels, memory accounting and dispose. What it cannot: the
// CUDA kernels (cuda/*.cu) and the C++ binding (cpp/binding/ops_cuda_tensor.cpp) — those need a GPU.
import { decode16, encode16, type Dtype16 } from '../../lib/half';
import { nativeAddon } from '../../lib/native-api';

interface FakeBuffer {
  bytes: number;
  data: ArrayBuffer | null;
}

type Fn = (...args: never[]) => unknown;

export interface CudaEmulator {
  /** Restores the addon's own entry points. */
  uninstall(): void;
  /** Number of kernel calls by entry point name. */
  calls: Map<string, number>;
}

const GARBAGE = 0x7fc01234; // a NaN with a payload: unwritten float32 elements show as NaN

export function installCudaEmulator(): CudaEmulator {
  const a = nativeAddon() as unknown as Record<string, Fn>;
  const cpu = nativeAddon();
  const saved = new Map<string, Fn>();
  const calls = new Map<string, number>();
  const live = new Set<FakeBuffer>();
  let allocated = 0, reserved = 0, peak = 0, numAllocs = 0;

  const set = (name: string, fn: Fn) => {
    if (!saved.has(name)) saved.set(name, a[name]);
    a[name] = ((...args: never[]) => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return fn(...args);
    }) as Fn;
  };
  const buf = (h: unknown, what: string): FakeBuffer => {
    if (!live.has(h as FakeBuffer)) throw new TypeError(`${what}: not a live device buffer handle`);
    return h as FakeBuffer;
  };
  const need = (b: FakeBuffer, bytes: number, what: string) => {
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > b.bytes)
      throw new RangeError(`${what}: the buffer holds ${b.bytes} bytes, the call needs ${bytes}`);
  };
  /** n float32 at element offset off (bounds-checked). */
  const f32 = (h: unknown, n: number, what: string, off = 0): Float32Array => {
    const b = buf(h, what);
    need(b, (off + n) * 4, what);
    return new Float32Array(b.data as ArrayBuffer, off * 4, n);
  };
  const i32 = (h: unknown, n: number, what: string, off = 0): Int32Array => {
    const b = buf(h, what);
    need(b, (off + n) * 4, what);
    return new Int32Array(b.data as ArrayBuffer, off * 4, n);
  };
  const u32 = (h: unknown, n: number, what: string, off = 0): Uint32Array => {
    const b = buf(h, what);
    need(b, (off + n) * 4, what);
    return new Uint32Array(b.data as ArrayBuffer, off * 4, n);
  };
  const u16 = (h: unknown, n: number, what: string, off = 0): Uint16Array => {
    const b = buf(h, what);
    need(b, (off + n) * 2, what);
    return new Uint16Array(b.data as ArrayBuffer, off * 2, n);
  };
  const DT16: Record<number, Dtype16> = { 1: 'bfloat16', 2: 'float16' };
  /** n values of a float32 (dtype 0) or 16-bit (1 bfloat16, 2 float16) buffer, decoded to float32 (a copy for 16 bits). */
  const floats = (h: unknown, dtype: number, n: number, what: string): Float32Array =>
    dtype === 0 ? f32(h, n, what) : decode16(DT16[dtype], u16(h, n, what));
  /** Writes float32 values into a float32 or 16-bit buffer (rounded to nearest even, as cuda/cast16.cu). */
  const store = (h: unknown, dtype: number, vals: Float32Array, what: string) => {
    if (dtype === 0) f32(h, vals.length, what).set(vals);
    else u16(h, vals.length, what).set(encode16(DT16[dtype], vals));
  };
  const prod = (xs: number[]) => xs.reduce((p, x) => p * x, 1);
  /** Elements a strided view reaches (0 for an empty shape). */
  const reach = (shape: number[], strides: number[], off = 0) =>
    shape.some((d) => d === 0) ? 0 : off + 1 + shape.reduce((s, d, i) => s + (d - 1) * strides[i], 0);
  const contiguous = (shape: number[]) => {
    const st = new Array<number>(shape.length);
    let acc = 1;
    for (let i = shape.length - 1; i >= 0; i--) { st[i] = acc; acc *= shape[i]; }
    return st;
  };
  const dims = (xs: unknown, what: string): number[] => {
    if (!Array.isArray(xs) || xs.length > 8 || xs.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw new RangeError(`${what}: expected at most 8 non-negative integers, got ${JSON.stringify(xs)}`);
    return xs as number[];
  };

  // ---- runtime ----
  const info = cpu.buildInfo.bind(cpu);
  set('buildInfo', (() => {
    const r = info();
    return { ...r, cuda: { ...r.cuda, compiled: true, deviceCount: 1 } };
  }) as Fn);
  set('cudaMalloc', ((bytes: number) => {
    const b: FakeBuffer = { bytes, data: new ArrayBuffer(Math.ceil(bytes / 4) * 4) };
    new Uint32Array(b.data as ArrayBuffer).fill(GARBAGE);
    live.add(b);
    allocated += bytes;
    reserved = Math.max(reserved, allocated);
    peak = Math.max(peak, allocated);
    numAllocs++;
    return b;
  }) as Fn);
  set('cudaFree', ((h: unknown) => {
    const b = buf(h, 'cudaFree');
    live.delete(b);
    allocated -= b.bytes;
    b.data = null;
  }) as Fn);
  set('cudaBufferBytes', ((h: unknown) => buf(h, 'cudaBufferBytes').bytes) as Fn);
  set('cudaUpload', ((h: unknown, data: ArrayBufferView, off = 0) => {
    const b = buf(h, 'cudaUpload');
    need(b, off + data.byteLength, 'cudaUpload');
    new Uint8Array(b.data as ArrayBuffer, off, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }) as Fn);
  set('cudaDownload', ((h: unknown, into: ArrayBufferView, off = 0) => {
    const b = buf(h, 'cudaDownload');
    need(b, off + into.byteLength, 'cudaDownload');
    new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(new Uint8Array(b.data as ArrayBuffer, off, into.byteLength));
  }) as Fn);
  set('cudaMemset', ((h: unknown, v: number) => {
    const b = buf(h, 'cudaMemset');
    new Uint8Array(b.data as ArrayBuffer, 0, b.bytes).fill(v);
  }) as Fn);
  set('cudaSetDevice', ((d: number) => {
    if (d !== 0) throw new RangeError(`cudaSetDevice: device ${d} does not exist (1 visible)`);
  }) as Fn);
  set('cudaSynchronize', (() => undefined) as Fn);
  set('cudaEmptyCache', (() => { reserved = allocated; }) as Fn);
  set('cudaMemoryStats', (() => ({
    allocatedBytes: allocated, reservedBytes: reserved, peakAllocatedBytes: peak, numAllocs, numCacheHits: 0,
    numDeviceAllocs: numAllocs, numOomRetries: 0,
  })) as Fn);

  // ---- GEMM: float32 (type 0), and bfloat16/float16 inputs (types 2/3: 16-bit A and B decoded to
  // float32 exactly, products exact in float32, float32 accumulation) with a float32 C, no activation ----
  set('cudaGemmEx', ((type: number, ta: boolean, tb: boolean, batch: number, m: number, n: number, k: number, alpha: number,
    A: unknown, lda: number, sA: number, B: unknown, ldb: number, sB: number, beta: number, C: unknown, cDtype: number,
    ldc: number, sC: number, bias: unknown, act: number) => {
    if ((type !== 0 && type !== 2 && type !== 3) || cDtype !== 0 || act !== 0)
      throw new RangeError('cudaGemmEx (emulated): only float32/bfloat16/float16 inputs, a float32 C, no activation');
    const inDtype = type === 0 ? 0 : type - 1;
    if (batch > 1 && sC === 0) throw new RangeError('cudaGemmEx: strideC must be > 0 when batch > 1');
    if (batch === 0 || m === 0 || n === 0) return;
    const span = (rows: number, cols: number, ld: number) => (rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols);
    const spanA = ta ? span(k, m, lda) : span(m, k, lda), spanB = tb ? span(n, k, ldb) : span(k, n, ldb);
    const a = floats(A, inDtype, k ? (batch - 1) * sA + spanA : 0, 'cudaGemmEx a');
    const b = floats(B, inDtype, k ? (batch - 1) * sB + spanB : 0, 'cudaGemmEx b');
    const c = f32(C, (batch - 1) * sC + span(m, n, ldc), 'cudaGemmEx c');
    const bs = bias ? f32(bias, n, 'cudaGemmEx bias') : null;
    for (let i = 0; i < batch; i++) {
      const ci = c.subarray(i * sC);
      cpu.sgemm(ta, tb, m, n, k, alpha, k ? a.subarray(i * sA) : new Float32Array(1), Math.max(lda, 1),
        k ? b.subarray(i * sB) : new Float32Array(1), Math.max(ldb, 1), beta, ci, ldc, false);
      if (bs) for (let r = 0; r < m; r++) for (let j = 0; j < n; j++) ci[r * ldc + j] = Math.fround(ci[r * ldc + j] + bs[j]);
    }
  }) as Fn);

  // ---- tensor kernels ----
  set('cudaUnaryForward', ((op: number, y: unknown, x: unknown, n: number) => {
    if (n) cpu.unaryForward(op, f32(y, n, 'cudaUnaryForward y'), f32(x, n, 'cudaUnaryForward x'));
  }) as Fn);
  set('cudaUnaryBackward', ((op: number, dx: unknown, x: unknown, y: unknown, dy: unknown, n: number) => {
    if (!n) return;
    const xs = x === null ? new Float32Array(n).fill(NaN) : f32(x, n, 'cudaUnaryBackward x');
    const ys = y === null ? new Float32Array(n).fill(NaN) : f32(y, n, 'cudaUnaryBackward y');
    cpu.unaryBackward(op, f32(dx, n, 'cudaUnaryBackward dx'), xs, ys, f32(dy, n, 'cudaUnaryBackward dy'));
  }) as Fn);
  set('cudaBinarySame', ((op: number, out: unknown, x: unknown, y: unknown, n: number) => {
    if (n) cpu.binarySame(op, f32(out, n, 'cudaBinarySame out'), f32(x, n, 'cudaBinarySame a'), f32(y, n, 'cudaBinarySame b'));
  }) as Fn);
  set('cudaScalarForward', ((op: number, out: unknown, x: unknown, s: number, reverse: boolean, n: number) => {
    if (n) cpu.scalarForward(op, f32(out, n, 'cudaScalarForward out'), f32(x, n, 'cudaScalarForward x'), Math.fround(s), reverse);
  }) as Fn);
  set('cudaBinaryForward', ((op: number, out: unknown, x: unknown, y: unknown, shapeIn: unknown, saIn: unknown, sbIn: unknown) => {
    const shape = dims(shapeIn, 'cudaBinaryForward outShape'), sa = dims(saIn, 'aStrides'), sb = dims(sbIn, 'bStrides');
    if (sa.length !== shape.length || sb.length !== shape.length) throw new RangeError('cudaBinaryForward: lengths differ');
    const n = prod(shape);
    if (!n) return;
    cpu.binaryForward(op, f32(out, n, 'cudaBinaryForward out'), f32(x, reach(shape, sa), 'cudaBinaryForward a'),
      f32(y, reach(shape, sb), 'cudaBinaryForward b'), shape, sa, sb);
  }) as Fn);
  set('cudaStridedCopy', ((dst: unknown, doff: number, dstStrides: unknown, src: unknown, soff: number, srcStrides: unknown, shapeIn: unknown) => {
    const shape = dims(shapeIn, 'cudaStridedCopy shape'), ss = dims(srcStrides, 'srcStrides');
    const sd = dstStrides === null ? contiguous(shape) : dims(dstStrides, 'dstStrides');
    if (ss.length !== shape.length || sd.length !== shape.length) throw new RangeError('cudaStridedCopy: lengths differ');
    const n = prod(shape);
    if (!n) return;
    const d = u32(dst, reach(shape, sd, doff), 'cudaStridedCopy dst');
    const s = u32(src, reach(shape, ss, soff), 'cudaStridedCopy src');
    const idx = new Array<number>(shape.length).fill(0);
    const written = new Set<number>();
    for (let i = 0; i < n; i++) {
      let od = doff, os = soff;
      for (let k = 0; k < shape.length; k++) { od += idx[k] * sd[k]; os += idx[k] * ss[k]; }
      if (written.has(od)) throw new RangeError('cudaStridedCopy: two elements write the same destination');
      written.add(od);
      d[od] = s[os];
      for (let k = shape.length - 1; k >= 0; k--) { if (++idx[k] < shape[k]) break; idx[k] = 0; }
    }
  }) as Fn);
  set('cudaFill32', ((dst: unknown, bits: number, n: number) => {
    if (!Number.isInteger(bits) || bits < 0 || bits > 0xffffffff) throw new RangeError('cudaFill32: bits must be in [0, 2^32)');
    if (n) u32(dst, n, 'cudaFill32').fill(bits);
  }) as Fn);
  set('cudaCast', ((dst: unknown, src: unknown, toInt: boolean, n: number) => {
    if (!n) return;
    if (toInt) {
      const s = f32(src, n, 'cudaCast src'), d = i32(dst, n, 'cudaCast dst');
      for (let i = 0; i < n; i++) d[i] = Math.trunc(s[i]);
    } else {
      const s = i32(src, n, 'cudaCast src'), d = f32(dst, n, 'cudaCast dst');
      for (let i = 0; i < n; i++) d[i] = s[i];
    }
  }) as Fn);
  set('cudaCopy', ((dst: unknown, doff: number, src: unknown, soff: number, bytes: number) => {
    const d = buf(dst, 'cudaCopy dst'), s = buf(src, 'cudaCopy src');
    need(d, doff + bytes, 'cudaCopy dst');
    need(s, soff + bytes, 'cudaCopy src');
    new Uint8Array(d.data as ArrayBuffer, doff, bytes).set(new Uint8Array(s.data as ArrayBuffer, soff, bytes));
  }) as Fn);
  set('cudaSum', ((out: unknown, x: unknown, outer: number, dim: number, inner: number, divisor: number) => {
    if (!outer || !inner) return;
    const o = f32(out, outer * inner, 'cudaSum out');
    if (dim) cpu.reduceForward(0, o, f32(x, outer * dim * inner, 'cudaSum x'), outer, dim, inner);
    else o.fill(0);
    const dv = Math.fround(divisor);
    for (let i = 0; i < o.length; i++) o[i] = o[i] / dv;
  }) as Fn);
  set('cudaArgReduce', ((values: unknown, indices: unknown, x: unknown, outer: number, dim: number, inner: number, isMax: boolean) => {
    if (!outer || !inner) return;
    if (dim < 1) throw new RangeError('cudaArgReduce: dim must be >= 1');
    const xs = f32(x, outer * dim * inner, 'cudaArgReduce x'), id = i32(indices, outer * inner, 'cudaArgReduce indices');
    cpu.argReduce(id, xs, outer, dim, inner, isMax);
    if (values !== null) {
      const v = f32(values, outer * inner, 'cudaArgReduce values');
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) v[o * inner + i] = xs[(o * dim + id[o * inner + i]) * inner + i];
    }
  }) as Fn);
  set('cudaArgReduceBackward', ((dx: unknown, dy: unknown, indices: unknown, outer: number, dim: number, inner: number) => {
    const total = outer * dim * inner;
    if (!total) return;
    const d = f32(dx, total, 'cudaArgReduceBackward dx'), g = f32(dy, outer * inner, 'dy'), id = i32(indices, outer * inner, 'indices');
    for (let e = 0; e < total; e++) {
      const o = Math.floor(e / (dim * inner)), rem = e - o * dim * inner, j = Math.floor(rem / inner), i = rem - j * inner;
      d[e] = id[o * inner + i] === j ? g[o * inner + i] : 0;
    }
  }) as Fn);
  set('cudaSoftmaxForward', ((y: unknown, x: unknown, outer: number, dim: number, inner: number, log: boolean) => {
    const n = outer * dim * inner;
    if (n) cpu.softmaxForward(f32(y, n, 'cudaSoftmaxForward y'), f32(x, n, 'cudaSoftmaxForward x'), outer, dim, inner, log);
  }) as Fn);
  set('cudaSoftmaxBackward', ((dx: unknown, y: unknown, dy: unknown, outer: number, dim: number, inner: number, log: boolean) => {
    const n = outer * dim * inner;
    if (n) cpu.softmaxBackward(f32(dx, n, 'dx'), f32(y, n, 'y'), f32(dy, n, 'dy'), outer, dim, inner, log);
  }) as Fn);
  const list = (hs: unknown, sizes: number[], what: string) => {
    if (!Array.isArray(hs) || hs.length !== sizes.length) throw new RangeError(`${what}: expected ${sizes.length} buffers`);
    return hs.map((h, i) => f32(h, sizes[i], `${what}[${i}]`));
  };
  set('cudaSgdStep', ((params: unknown, grads: unknown, bufs: unknown, sizes: number[], lr: number, momentum: number,
    dampening: number, wd: number, nesterov: boolean, maximize: boolean, first: boolean) => {
    cpu.sgdStep(list(params, sizes, 'params'), list(grads, sizes, 'grads'), bufs === null ? null : list(bufs, sizes, 'bufs'),
      lr, momentum, dampening, wd, nesterov, maximize, first);
  }) as Fn);
  set('cudaAdamStep', ((params: unknown, grads: unknown, m: unknown, v: unknown, vmax: unknown, sizes: number[], lr: number,
    b1: number, b2: number, eps: number, wd: number, step: number, amsgrad: boolean, decoupled: boolean, maximize: boolean) => {
    cpu.adamStep(list(params, sizes, 'params'), list(grads, sizes, 'grads'), list(m, sizes, 'expAvg'), list(v, sizes, 'expAvgSq'),
      vmax === null ? null : list(vmax, sizes, 'maxExpAvgSq'), lr, b1, b2, eps, wd, step, amsgrad, decoupled, maximize);
  }) as Fn);

  // ---- nn kernels (cpp/binding/ops_cuda_nn.cpp): the CPU kernels of the same contract ----
  const cpuAny = cpu as unknown as Record<string, (...args: unknown[]) => unknown>;
  const convOut = (sz: number[]) => {
    const [, , h, w, , kh, kw, sH, sW, pH, pW, dH, dW] = sz;
    return [Math.floor((h + 2 * pH - dH * (kh - 1) - 1) / sH) + 1, Math.floor((w + 2 * pW - dW * (kw - 1) - 1) / sW) + 1];
  };
  const convSizes = (sz: number[], what: string) => {
    if (sz.length !== 14 || sz.some((v) => !Number.isSafeInteger(v) || v < 0))
      throw new RangeError(`${what}: expected 14 sizes, got ${JSON.stringify(sz)}`);
    const [n, c, h, w, oc, kh, kw, , , , , , , g] = sz;
    const [oh, ow] = convOut(sz);
    if (oh < 1 || ow < 1) throw new RangeError(`${what}: output would be ${oh}x${ow}`);
    return { nx: n * c * h * w, ny: n * oc * oh * ow, nw: oc * (c / g) * kh * kw, oc };
  };
  set('cudaConv2dForward', ((y: unknown, x: unknown, w: unknown, b: unknown, ...sz: number[]) => {
    const e = convSizes(sz, 'cudaConv2dForward');
    cpuAny.conv2dForward(f32(y, e.ny, 'cudaConv2dForward y'), f32(x, e.nx, 'cudaConv2dForward x'),
      f32(w, e.nw, 'cudaConv2dForward w'), b === null ? null : f32(b, e.oc, 'cudaConv2dForward bias'), ...sz);
  }) as Fn);
  set('cudaConv2dBackwardData', ((dx: unknown, dy: unknown, w: unknown, ...sz: number[]) => {
    const e = convSizes(sz, 'cudaConv2dBackwardData');
    cpuAny.conv2dBackwardData(f32(dx, e.nx, 'cudaConv2dBackwardData dx'), f32(dy, e.ny, 'cudaConv2dBackwardData dy'),
      f32(w, e.nw, 'cudaConv2dBackwardData w'), ...sz);
  }) as Fn);
  set('cudaConv2dBackwardWeight', ((dw: unknown, db: unknown, dy: unknown, x: unknown, ...sz: number[]) => {
    const e = convSizes(sz, 'cudaConv2dBackwardWeight');
    cpuAny.conv2dBackwardWeight(f32(dw, e.nw, 'cudaConv2dBackwardWeight dw'),
      db === null ? null : f32(db, e.oc, 'cudaConv2dBackwardWeight dbias'), f32(dy, e.ny, 'cudaConv2dBackwardWeight dy'),
      f32(x, e.nx, 'cudaConv2dBackwardWeight x'), ...sz);
  }) as Fn);
  /** Sizes of a pooling call: N, C, H, W, KH, KW, sH, sW, pH, pW, [dH, dW,] ceil [, countIncludePad]. */
  const poolSizes = (args: (number | boolean)[], max: boolean, what: string) => {
    if (args.length !== (max ? 13 : 12)) throw new RangeError(`${what}: expected ${max ? 13 : 12} arguments, got ${args.length}`);
    const [n, c, h, w, kh, kw, sH, sW, pH, pW] = args as number[];
    const [dH, dW] = max ? (args.slice(10, 12) as number[]) : [1, 1];
    const ceil = args[max ? 12 : 10] as boolean;
    const oh = cpu.pool2dOutputSize(h, kh, sH, pH, dH, ceil), ow = cpu.pool2dOutputSize(w, kw, sW, pW, dW, ceil);
    if (oh < 1 || ow < 1) throw new RangeError(`${what}: output would be ${oh}x${ow}`);
    return { n, c, h, w, oh, ow, nx: n * c * h * w, ny: n * c * oh * ow };
  };
  set('cudaMaxPool2dForward', ((y: unknown, idx: unknown, x: unknown, ...args: (number | boolean)[]) => {
    const e = poolSizes(args, true, 'cudaMaxPool2dForward');
    cpuAny.maxPool2dForward(f32(y, e.ny, 'cudaMaxPool2dForward y'), i32(idx, e.ny, 'cudaMaxPool2dForward indices'),
      f32(x, e.nx, 'cudaMaxPool2dForward x'), ...args);
  }) as Fn);
  set('cudaMaxPool2dBackward', ((dx: unknown, dy: unknown, idx: unknown, ...args: (number | boolean)[]) => {
    const e = poolSizes(args, true, 'cudaMaxPool2dBackward');
    cpu.maxPool2dBackward(f32(dx, e.nx, 'cudaMaxPool2dBackward dx'), f32(dy, e.ny, 'cudaMaxPool2dBackward dy'),
      i32(idx, e.ny, 'cudaMaxPool2dBackward indices'), e.n, e.c, e.h, e.w, e.oh, e.ow);
  }) as Fn);
  set('cudaAvgPool2dForward', ((y: unknown, x: unknown, ...args: (number | boolean)[]) => {
    const e = poolSizes(args, false, 'cudaAvgPool2dForward');
    cpuAny.avgPool2dForward(f32(y, e.ny, 'cudaAvgPool2dForward y'), f32(x, e.nx, 'cudaAvgPool2dForward x'), ...args);
  }) as Fn);
  set('cudaAvgPool2dBackward', ((dx: unknown, dy: unknown, ...args: (number | boolean)[]) => {
    const e = poolSizes(args, false, 'cudaAvgPool2dBackward');
    cpuAny.avgPool2dBackward(f32(dx, e.nx, 'cudaAvgPool2dBackward dx'), f32(dy, e.ny, 'cudaAvgPool2dBackward dy'), ...args);
  }) as Fn);
  /** Targets with the out-of-range ones (the CUDA contract: NaN rows) replaced by ignoreIndex, and their positions. */
  const ceTargets = (t: Int32Array, c: number, ignore: number) => {
    const safe = Int32Array.from(t), bad: number[] = [];
    for (let i = 0; i < t.length; i++)
      if (t[i] !== ignore && (t[i] < 0 || t[i] >= c)) { bad.push(i); safe[i] = ignore; }
    return { safe, bad };
  };
  const checkReduction = (r: number, what: string) => {
    if (r !== 0 && r !== 1 && r !== 2) throw new RangeError(`${what}: reduction must be 0, 1 or 2, got ${r}`);
  };
  set('cudaCrossEntropyForward', ((losses: unknown, lp: unknown, out: unknown, count: unknown, logits: unknown,
    targets: unknown, n: number, c: number, ignore: number, eps: number, red: number) => {
    checkReduction(red, 'cudaCrossEntropyForward');
    if (c < 1) throw new RangeError('cudaCrossEntropyForward: c must be >= 1');
    const l = f32(losses, n, 'cudaCrossEntropyForward losses');
    const { safe, bad } = ceTargets(i32(targets, n, 'cudaCrossEntropyForward targets'), c, ignore);
    if (n) cpu.crossEntropyForward(l, f32(lp, n * c, 'cudaCrossEntropyForward logProbs'),
      f32(logits, n * c, 'cudaCrossEntropyForward logits'), safe, n, c, ignore, Math.fround(eps));
    for (const i of bad) l[i] = NaN;
    if (red === 0) return;
    const o = f32(out, 1, 'cudaCrossEntropyForward out'), k = f32(count, 1, 'cudaCrossEntropyForward count');
    let s = 0, cnt = 0;
    for (let i = 0; i < n; i++) { s += l[i]; if (safe[i] !== ignore || bad.includes(i)) cnt++; }
    o[0] = red === 1 ? s / cnt : s;
    k[0] = cnt;
  }) as Fn);
  set('cudaCrossEntropyBackward', ((dx: unknown, lp: unknown, targets: unknown, dloss: unknown, count: unknown, n: number,
    c: number, ignore: number, eps: number, red: number) => {
    checkReduction(red, 'cudaCrossEntropyBackward');
    if (!n) return;
    const g = f32(dx, n * c, 'cudaCrossEntropyBackward dlogits');
    const { safe, bad } = ceTargets(i32(targets, n, 'cudaCrossEntropyBackward targets'), c, ignore);
    const dl = new Float32Array(n);
    if (red === 0) dl.set(f32(dloss, n, 'cudaCrossEntropyBackward dloss'));
    else {
      const d = f32(dloss, 1, 'cudaCrossEntropyBackward dloss')[0];
      dl.fill(red === 1 ? d / Math.max(f32(count, 1, 'cudaCrossEntropyBackward count')[0], 1) : d);
    }
    cpu.crossEntropyBackward(g, f32(lp, n * c, 'cudaCrossEntropyBackward logProbs'), safe, dl, n, c, ignore, Math.fround(eps));
    for (const i of bad) g.fill(NaN, i * c, (i + 1) * c);
  }) as Fn);

  // ---- mixed precision (cpp/binding/ops_cuda_amp.cpp -> cuda/cast16.cu) ----
  const dtypeCode = (d: number, what: string) => {
    if (d !== 0 && d !== 1 && d !== 2) throw new RangeError(`${what} must be 0, 1 or 2, got ${d}`);
    return d;
  };
  set('cudaCastFloat', ((dst: unknown, dd: number, src: unknown, sd: number, n: number) => {
    dtypeCode(dd, 'cudaCastFloat: dstDtype');
    dtypeCode(sd, 'cudaCastFloat: srcDtype');
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('cudaCastFloat: n must be >= 0');
    if (n) store(dst, dd, Float32Array.from(floats(src, sd, n, 'cudaCastFloat src')), 'cudaCastFloat dst');
  }) as Fn);
  set('cudaAmpUnscale', ((grads: unknown, sizes: number[], inv: number, flag: unknown) => {
    const gs = list(grads, sizes, 'cudaAmpUnscale grads');
    const f = f32(flag, 1, 'cudaAmpUnscale foundInf');
    const s = Math.fround(inv);
    for (const g of gs)
      for (let i = 0; i < g.length; i++) {
        if (!Number.isFinite(g[i])) f[0] = 1;
        g[i] = g[i] * s;
      }
  }) as Fn);

  // ---- fused attention (cpp/binding/ops_cuda_attention.cpp): the CPU kernel on the decoded inputs,
  // outputs rounded to the storage dtype; float32 lse. No key-length mask (lib/ does not pass one). ----
  const attnCpu = cpu as unknown as Record<string, (...args: unknown[]) => void>;
  set('cudaAttentionForward', ((o: unknown, lse: unknown, q: unknown, k: unknown, v: unknown, kl: unknown, B: number,
    H: number, Lq: number, Lk: number, D: number, dtype: number, scale: number, causal: boolean) => {
    if (kl !== null) throw new RangeError('cudaAttentionForward (emulated): keyLengths is not emulated');
    dtypeCode(dtype, 'cudaAttentionForward: dtype');
    const nq = B * H * Lq * D, nk = B * H * Lk * D;
    const out = new Float32Array(nq);
    attnCpu.attentionForward(out, f32(lse, B * H * Lq, 'cudaAttentionForward lse'), floats(q, dtype, nq, 'q'),
      floats(k, dtype, nk, 'k'), floats(v, dtype, nk, 'v'), null, 0, 0, 0, 0, B, H, Lq, Lk, D, Math.fround(scale), causal,
      0, 0, 0);
    store(o, dtype, out, 'cudaAttentionForward o');
  }) as Fn);
  set('cudaAttentionBackward', ((dq: unknown, dk: unknown, dv: unknown, dout: unknown, q: unknown, k: unknown, v: unknown,
    o: unknown, lse: unknown, kl: unknown, B: number, H: number, Lq: number, Lk: number, D: number, dtype: number,
    scale: number, causal: boolean) => {
    if (kl !== null) throw new RangeError('cudaAttentionBackward (emulated): keyLengths is not emulated');
    dtypeCode(dtype, 'cudaAttentionBackward: dtype');
    const nq = B * H * Lq * D, nk = B * H * Lk * D;
    const gq = new Float32Array(nq), gk = new Float32Array(nk), gv = new Float32Array(nk);
    attnCpu.attentionBackward(gq, gk, gv, floats(dout, dtype, nq, 'dout'), floats(q, dtype, nq, 'q'),
      floats(k, dtype, nk, 'k'), floats(v, dtype, nk, 'v'), floats(o, dtype, nq, 'o'),
      f32(lse, B * H * Lq, 'cudaAttentionBackward lse'), null, 0, 0, 0, 0, B, H, Lq, Lk, D, Math.fround(scale), causal, 0,
      0, 0);
    store(dq, dtype, gq, 'cudaAttentionBackward dq');
    store(dk, dtype, gk, 'cudaAttentionBackward dk');
    store(dv, dtype, gv, 'cudaAttentionBackward dv');
  }) as Fn);

  return {
    calls,
    uninstall() {
      for (const [name, fn] of saved) a[name] = fn;
      saved.clear();
    },
  };
}
