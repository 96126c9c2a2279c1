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

  // ---- norm kernels (cpp/binding/ops_cuda_norm.cpp): the CPU kernels of the same contract, with
  // the CUDA-only rules emulated (NaN rows and no gradient for out-of-range embedding indices, the
  // on-device num_batches_tracked counter) ----
  const opt = (h: unknown, n: number, what: string) => (h === null ? null : f32(h, n, what));
  set('cudaLayerNormForward', ((y: unknown, mean: unknown, rstd: unknown, x: unknown, w: unknown, b: unknown, rows: number,
    cols: number, eps: number) => {
    if (!rows) return;
    const n = rows * cols;
    cpu.layerNormForward(f32(y, n, 'cudaLayerNormForward y'), f32(mean, rows, 'cudaLayerNormForward mean'),
      f32(rstd, rows, 'cudaLayerNormForward rstd'), f32(x, n, 'cudaLayerNormForward x'), opt(w, cols, 'cudaLayerNormForward weight'),
      opt(b, cols, 'cudaLayerNormForward bias'), rows, cols, Math.fround(eps));
  }) as Fn);
  set('cudaLayerNormBackward', ((dx: unknown, dw: unknown, db: unknown, dy: unknown, x: unknown, mean: unknown, rstd: unknown,
    w: unknown, rows: number, cols: number) => {
    const n = rows * cols;
    if (!cols) return;
    const dxs = dx === null ? new Float32Array(n) : f32(dx, n, 'cudaLayerNormBackward dx');
    cpu.layerNormBackward(dxs, opt(dw, cols, 'cudaLayerNormBackward dweight'), opt(db, cols, 'cudaLayerNormBackward dbias'),
      f32(dy, n, 'cudaLayerNormBackward dy'), f32(x, n, 'cudaLayerNormBackward x'), f32(mean, rows, 'cudaLayerNormBackward mean'),
      f32(rstd, rows, 'cudaLayerNormBackward rstd'), opt(w, cols, 'cudaLayerNormBackward weight'), rows, cols);
  }) as Fn);
  set('cudaBatchNormForward', ((y: unknown, sm: unknown, si: unknown, rm: unknown, rv: unknown, x: unknown, w: unknown,
    b: unknown, n: number, c: number, hw: number, training: boolean, momentum: number, eps: number, nbt: unknown) => {
    const total = n * c * hw;
    if (training && nbt !== null) i32(nbt, 1, 'cudaBatchNormForward numBatchesTracked')[0]++;
    if (!c) return;
    cpu.batchNormForward(f32(y, total, 'cudaBatchNormForward y'), f32(sm, c, 'cudaBatchNormForward saveMean'),
      f32(si, c, 'cudaBatchNormForward saveInvstd'), opt(rm, c, 'cudaBatchNormForward runningMean'),
      opt(rv, c, 'cudaBatchNormForward runningVar'), f32(x, total, 'cudaBatchNormForward x'), opt(w, c, 'cudaBatchNormForward weight'),
      opt(b, c, 'cudaBatchNormForward bias'), n, c, hw, training, Math.fround(momentum), Math.fround(eps));
  }) as Fn);
  set('cudaBatchNormBackward', ((dx: unknown, dw: unknown, db: unknown, dy: unknown, x: unknown, sm: unknown, si: unknown,
    w: unknown, n: number, c: number, hw: number, training: boolean) => {
    const total = n * c * hw;
    if (!c) return;
    const dxs = dx === null ? new Float32Array(total) : f32(dx, total, 'cudaBatchNormBackward dx');
    cpu.batchNormBackward(dxs, opt(dw, c, 'cudaBatchNormBackward dweight'), opt(db, c, 'cudaBatchNormBackward dbias'),
      f32(dy, total, 'cudaBatchNormBackward dy'), f32(x, total, 'cudaBatchNormBackward x'), f32(sm, c, 'cudaBatchNormBackward saveMean'),
      f32(si, c, 'cudaBatchNormBackward saveInvstd'), opt(w, c, 'cudaBatchNormBackward weight'), n, c, hw, training);
  }) as Fn);
  set('cudaEmbeddingForward', ((y: unknown, indices: unknown, weight: unknown, n: number, num: number, dim: number) => {
    if (!n || !dim) return;
    const idx = i32(indices, n, 'cudaEmbeddingForward indices');
    const safe = Int32Array.from(idx, (v) => (v >= 0 && v < num ? v : 0));
    const ys = f32(y, n * dim, 'cudaEmbeddingForward y');
    if (num) cpu.embeddingForward(ys, safe, f32(weight, num * dim, 'cudaEmbeddingForward weight'), num, dim);
    for (let i = 0; i < n; i++) if (!(idx[i] >= 0 && idx[i] < num)) ys.fill(NaN, i * dim, (i + 1) * dim);
  }) as Fn);
  set('cudaEmbeddingBackward', ((dweight: unknown, dy: unknown, indices: unknown, n: number, num: number, dim: number,
    pad: number) => {
    if (!num || !dim) return;
    if (!Number.isInteger(pad) || pad < -1 || pad >= num) throw new RangeError(`cudaEmbeddingBackward: bad paddingIdx ${pad}`);
    const idx = i32(indices, n, 'cudaEmbeddingBackward indices'), g = f32(dy, n * dim, 'cudaEmbeddingBackward dy');
    // Out-of-range positions contribute nothing: the CPU kernel on the others, in order.
    const keep: number[] = [];
    for (let i = 0; i < n; i++) if (idx[i] >= 0 && idx[i] < num) keep.push(i);
    const ki = Int32Array.from(keep, (i) => idx[i]);
    const kg = new Float32Array(keep.length * dim);
    keep.forEach((i, j) => kg.set(g.subarray(i * dim, (i + 1) * dim), j * dim));
    cpu.embeddingBackward(f32(dweight, num * dim, 'cudaEmbeddingBackward dweight'), kg, ki, num, dim, pad);
  }) as Fn);
  set('cudaDropoutForward', ((y: unknown, mask: unknown, x: unknown, p: number, seed: number, offset: number, n: number) => {
    if (!n) return;
    if (y === mask || x === mask) throw new RangeError('cudaDropoutForward: mask must not share memory with x or y');
    cpu.dropoutForward(f32(y, n, 'cudaDropoutForward y'), f32(mask, n, 'cudaDropoutForward mask'), f32(x, n, 'cudaDropoutForward x'),
      p, seed, offset);
  }) as Fn);
  set('cudaAdaptiveAvgPool2dForward', ((y: unknown, x: unknown, n: number, c: number, h: number, w: number, oh: number, ow: number) => {
    if (!(n * c)) return;
    cpu.adaptiveAvgPool2dForward(f32(y, n * c * oh * ow, 'cudaAdaptiveAvgPool2dForward y'),
      f32(x, n * c * h * w, 'cudaAdaptiveAvgPool2dForward x'), n, c, h, w, oh, ow);
  }) as Fn);
  set('cudaAdaptiveAvgPool2dBackward', ((dx: unknown, dy: unknown, n: number, c: number, h: number, w: number, oh: number, ow: number) => {
    if (!(n * c)) return;
    cpu.adaptiveAvgPool2dBackward(f32(dx, n * c * h * w, 'cudaAdaptiveAvgPool2dBackward dx'),
      f32(dy, n * c * oh * ow, 'cudaAdaptiveAvgPool2dBackward dy'), n, c, h, w, oh, ow);
  }) as Fn);
  // ---- sequence kernels (cpp/binding/ops_cuda_seq.cpp): the CPU LSTM, plain loops for the index ops ----
  const nf = (h: unknown, n: number, what: string) => (h === null ? null : f32(h, n, what));
  set('cudaLstmForward', ((packed: unknown, gates: unknown, cs: unknown, x: unknown, h0: unknown, c0: unknown, wIh: unknown,
    wHh: unknown, bIh: unknown, bHh: unknown, T: number, B: number, I: number, H: number, bf: boolean) => {
    const TBH = T * B * H, BH = B * H, G = 4 * H, w = 'cudaLstmForward';
    const p = f32(packed, TBH + 2 * BH, `${w} packed`);
    cpuAny.lstmForward(p.subarray(0, TBH), p.subarray(TBH, TBH + BH), p.subarray(TBH + BH, TBH + 2 * BH),
      f32(gates, T * B * G, `${w} gates`), f32(cs, TBH, `${w} cs`), f32(x, T * B * I, `${w} x`), nf(h0, BH, `${w} h0`),
      nf(c0, BH, `${w} c0`), f32(wIh, G * I, `${w} wIh`), f32(wHh, G * H, `${w} wHh`), nf(bIh, G, `${w} bIh`),
      nf(bHh, G, `${w} bHh`), T, B, I, H, bf);
  }) as Fn);
  set('cudaLstmBackward', ((dx: unknown, dh0: unknown, dc0: unknown, dwIh: unknown, dwHh: unknown, dbIh: unknown, dbHh: unknown,
    dPacked: unknown, x: unknown, h0: unknown, c0: unknown, wIh: unknown, wHh: unknown, packed: unknown, gates: unknown,
    cs: unknown, T: number, B: number, I: number, H: number, bf: boolean) => {
    const TBH = T * B * H, BH = B * H, G = 4 * H, w = 'cudaLstmBackward';
    const dp = f32(dPacked, TBH + 2 * BH, `${w} dPacked`), p = f32(packed, TBH + 2 * BH, `${w} packed`);
    cpuAny.lstmBackward(nf(dx, T * B * I, `${w} dx`), nf(dh0, BH, `${w} dh0`), nf(dc0, BH, `${w} dc0`),
      nf(dwIh, G * I, `${w} dwIh`), nf(dwHh, G * H, `${w} dwHh`), nf(dbIh, G, `${w} dbIh`), nf(dbHh, G, `${w} dbHh`),
      dp.subarray(0, TBH), dp.subarray(TBH, TBH + BH), dp.subarray(TBH + BH), f32(x, T * B * I, `${w} x`),
      nf(h0, BH, `${w} h0`), nf(c0, BH, `${w} c0`), f32(wIh, G * I, `${w} wIh`), f32(wHh, G * H, `${w} wHh`),
      p.subarray(0, TBH), f32(gates, T * B * G, `${w} gates`), f32(cs, TBH, `${w} cs`), T, B, I, H, bf);
  }) as Fn);
  const BAD_INDEX = 0x7fc00000; // the CUDA contract: an out-of-range index gives these bits
  /** Offsets into x (shape xs) of every element of an index of shape is along dim (-1: out of range). */
  const gatherOffsets = (id: Int32Array, xs: number[], is: number[], dim: number) => {
    const xst = contiguous(xs), pos = new Array<number>(is.length).fill(0), out = new Array<number>(id.length);
    for (let e = 0; e < id.length; e++) {
      let o = 0;
      for (let k = 0; k < is.length; k++) o += (k === dim ? id[e] : pos[k]) * xst[k];
      out[e] = id[e] >= 0 && id[e] < xs[dim] ? o : -1;
      for (let k = is.length - 1; k >= 0; k--) { if (++pos[k] < is[k]) break; pos[k] = 0; }
    }
    return out;
  };
  const gatherShapes = (xsIn: unknown, isIn: unknown, dim: number, what: string) => {
    const xs = dims(xsIn, `${what} xShape`), is = dims(isIn, `${what} indexShape`);
    if (xs.length !== is.length || !xs.length || dim < 0 || dim >= xs.length || is.some((d, k) => k !== dim && d > xs[k]))
      throw new RangeError(`${what}: shapes [${xs}] / [${is}] with dim ${dim} do not fit`);
    return { xs, is };
  };
  set('cudaGather', ((out: unknown, x: unknown, index: unknown, xsIn: unknown, isIn: unknown, dim: number) => {
    const { xs, is } = gatherShapes(xsIn, isIn, dim, 'cudaGather');
    const n = prod(is);
    if (!n) return;
    const o = u32(out, n, 'cudaGather out'), xd = u32(x, prod(xs), 'cudaGather x');
    gatherOffsets(i32(index, n, 'cudaGather index'), xs, is, dim).forEach((off, e) => { o[e] = off < 0 ? BAD_INDEX : xd[off]; });
  }) as Fn);
  set('cudaGatherBackward', ((dx: unknown, dy: unknown, index: unknown, xsIn: unknown, isIn: unknown, dim: number) => {
    const { xs, is } = gatherShapes(xsIn, isIn, dim, 'cudaGatherBackward');
    const nx = prod(xs), n = prod(is);
    if (!nx) return;
    const d = f32(dx, nx, 'cudaGatherBackward dx').fill(0), g = f32(dy, n, 'cudaGatherBackward dy');
    gatherOffsets(i32(index, n, 'cudaGatherBackward index'), xs, is, dim).forEach((off, e) => { if (off >= 0) d[off] += g[e]; });
  }) as Fn);
  set('cudaIndexSelect', ((out: unknown, x: unknown, index: unknown, outer: number, n: number, k: number, inner: number) => {
    const total = outer * k * inner;
    if (!total) return;
    const o = u32(out, total, 'cudaIndexSelect out'), xd = u32(x, outer * n * inner, 'cudaIndexSelect x');
    const id = i32(index, k, 'cudaIndexSelect index');
    for (let a = 0; a < outer; a++)
      for (let i = 0; i < k; i++) {
        const r = id[i] < 0 ? id[i] + n : id[i];
        for (let j = 0; j < inner; j++) o[(a * k + i) * inner + j] = r >= 0 && r < n ? xd[(a * n + r) * inner + j] : BAD_INDEX;
      }
  }) as Fn);
  set('cudaIndexSelectBackward', ((dx: unknown, dy: unknown, rowStart: unknown, positions: unknown, outer: number, n: number,
    k: number, inner: number) => {
    const total = outer * n * inner;
    if (!total) return;
    const d = f32(dx, total, 'cudaIndexSelectBackward dx'), g = f32(dy, outer * k * inner, 'cudaIndexSelectBackward dy');
    const rs = i32(rowStart, n + 1, 'cudaIndexSelectBackward rowStart'), ps = i32(positions, k, 'cudaIndexSelectBackward positions');
    if (rs[0] !== 0 || rs[n] !== k) throw new RangeError('cudaIndexSelectBackward: rowStart must run from 0 to k');
    for (let r = 0; r < n; r++) {
      if (rs[r + 1] < rs[r]) throw new RangeError('cudaIndexSelectBackward: rowStart must not decrease');
      for (let q = rs[r]; q < rs[r + 1]; q++)
        if (ps[q] < 0 || ps[q] >= k || (q > rs[r] && ps[q] <= ps[q - 1]))
          throw new RangeError('cudaIndexSelectBackward: positions must be in [0, k) and increase within a row');
    }
    for (let a = 0; a < outer; a++)
      for (let r = 0; r < n; r++)
        for (let j = 0; j < inner; j++) {
          let sum = 0;
          for (let q = rs[r]; q < rs[r + 1]; q++) sum = Math.fround(sum + g[(a * k + ps[q]) * inner + j]);
          d[(a * n + r) * inner + j] = sum;
        }
  }) as Fn);
  set('cudaWhere', ((out: unknown, cond: unknown, condIsInt: boolean, x: unknown, y: unknown, shapeIn: unknown, csIn: unknown,
    asIn: unknown, bsIn: unknown) => {
    const shape = dims(shapeIn, 'cudaWhere shape'), cs = dims(csIn, 'condStrides'), as = dims(asIn, 'aStrides'), bs = dims(bsIn, 'bStrides');
    if (cs.length !== shape.length || as.length !== shape.length || bs.length !== shape.length)
      throw new RangeError('cudaWhere: lengths differ');
    const n = prod(shape);
    if (!n) return;
    const o = u32(out, n, 'cudaWhere out');
    const c = condIsInt ? i32(cond, reach(shape, cs), 'cudaWhere cond') : f32(cond, reach(shape, cs), 'cudaWhere cond');
    const a = u32(x, reach(shape, as), 'cudaWhere a'), b = u32(y, reach(shape, bs), 'cudaWhere b');
    const idx = new Array<number>(shape.length).fill(0);
    for (let e = 0; e < n; e++) {
      let co = 0, ao = 0, bo = 0;
      for (let k = 0; k < shape.length; k++) { co += idx[k] * cs[k]; ao += idx[k] * as[k]; bo += idx[k] * bs[k]; }
      o[e] = c[co] !== 0 ? a[ao] : b[bo];
      for (let k = shape.length - 1; k >= 0; k--) { if (++idx[k] < shape[k]) break; idx[k] = 0; }
    }
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
