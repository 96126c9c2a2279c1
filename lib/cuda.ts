// tsm.cuda: CUDA devices, device buffers and the GPU GEMM kernels.
//
// Device memory is held by DeviceBuffer objects (an opaque native handle; the memory returns to the
// library's caching allocator on free() or when the buffer is garbage-collected). Kernels here are
// the `tsm.kernels`-style stateless functions on device buffers: validated in TypeScript with
// messages naming the op and the argument, then queued asynchronously on the device's stream.
// Every CUDA failure is thrown as a TsmCudaError naming the native call.
//
// Tensors on a CUDA device (t.to('cuda')) keep their storage in the same caching allocator
// (lib/device.ts, lib/cuda-tensor.ts); memoryStats() counts their bytes too.
//
// Without a driver or a GPU (or in a build without CUDA) isAvailable() is false and deviceCount()
// is 0; synchronize/emptyCache are no-ops, memoryStats() reports zeros, and anything that needs a
// device throws a TsmCudaError that says so.
//
// Fused attention on device buffers (attention, attentionBackward) lives in lib/cuda-attention.ts
// and is re-exported at the end of this file.
import { checkBool, checkInt, checkNumber, checkSize, describe } from './check';
import { cudaState } from './cuda-state';
import { TsmCudaError } from './errors';
import { nativeAddon } from './native-api';

type Handle = object;

/** The CUDA entry points of the addon (cpp/binding/ops_cuda.cpp, peer_cublas.cpp). */
export interface CudaAddon {
  /** Allocates `bytes` of device memory from the caching allocator; returns its handle. */
  cudaMalloc(bytes: number): Handle;
  /** Returns the handle's memory to the allocator's cache. */
  cudaFree(h: Handle): void;
  /** Size of the handle's allocation in bytes. */
  cudaBufferBytes(h: Handle): number;
  /** Copies `data` host -> device at `byteOffset` (default 0). */
  cudaUpload(h: Handle, data: ArrayBufferView, byteOffset?: number): void;
  /** Copies device -> host into `data` from `byteOffset` (default 0), after all queued work. */
  cudaDownload(h: Handle, data: ArrayBufferView, byteOffset?: number): void;
  /** Sets every byte of the buffer to `value` (0-255). */
  cudaMemset(h: Handle, value: number): void;
  /** Row-major float32 SGEMM: C = alpha*op(A)*op(B) + beta*C (no validation: use cuda.sgemm). */
  cudaSgemm(ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, a: Handle, lda: number,
            b: Handle, ldb: number, beta: number, c: Handle, ldc: number): void;
  /** The general GEMM behind cuda.gemm; `type`, `cDtype` and `act` are the enum indices of GemmType, CudaDtype and Activation. */
  cudaGemmEx(type: number, ta: boolean, tb: boolean, batch: number, m: number, n: number, k: number, alpha: number,
             a: Handle, lda: number, strideA: number, b: Handle, ldb: number, strideB: number, beta: number,
             c: Handle, cDtype: number, ldc: number, strideC: number, bias: Handle | null, act: number): void;
  /** Waits for all queued work on the current device. */
  cudaSynchronize(): void;
  /** Returns cached, unused device memory to the driver. */
  cudaEmptyCache(): void;
  /** The caching allocator's counters. */
  cudaMemoryStats(): MemoryStats;
  /** Properties of device number `device`. */
  cudaDeviceInfo(device: number): DeviceInfo;
  /** Selects the device later allocations and kernels of this thread use. */
  cudaSetDevice(device: number): void;
  /** Forces a GEMM kernel family by index into ['auto', 'simt', 'mma', 'wgmma']. */
  cudaGemmSetAlgo(algo: number): void;
  /** Index of the kernel family the last GEMM of this thread ran with. */
  cudaGemmLastAlgo(): number;
  // benchmarks only (present when the build has CUDA)
  /** Benchmarks: dlopens cuBLAS (and cuBLASLt unless `ltPath` is '') for comparison; returns the cuBLAS version (e.g. 130100). */
  peerCublasLoad?(path: string, ltPath: string): number;
  /** Benchmarks: one product through the loaded cuBLAS (call peerCublasLoad first). */
  peerCublasGemm?(type: number, ta: boolean, tb: boolean, m: number, n: number, k: number, cDtype: number,
                  a: Handle, b: Handle, c: Handle): void;
  /** Benchmarks: runs `warmup` untimed then `reps` timed products (ours, or cuBLAS when `peer`), rotating over the input sets; returns the time of each in ms. */
  cudaTimeGemm?(peer: boolean, type: number, ta: boolean, tb: boolean, m: number, n: number, k: number,
                cDtype: number, as: Handle[], bs: Handle[], cs: Handle[], warmup: number, reps: number): number[];
}

/** Counters of the CUDA caching allocator (see cuda.memoryStats()). */
export interface MemoryStats {
  /** Bytes held by live device buffers (rounded up to the allocator's buckets). */
  allocatedBytes: number;
  /** Bytes obtained from the driver: allocated plus cached. */
  reservedBytes: number;
  /** Highest allocatedBytes seen. */
  peakAllocatedBytes: number;
  /** Allocations that returned memory. */
  numAllocs: number;
  /** Allocations served from the cache. */
  numCacheHits: number;
  /** cudaMalloc calls made. */
  numDeviceAllocs: number;
  /** Out-of-memory retries after releasing the cache. */
  numOomRetries: number;
}

/** Properties of a CUDA device (see cuda.deviceInfo()). */
export interface DeviceInfo {
  /** Device name, e.g. "NVIDIA H100 80GB HBM3". */
  name: string;
  /** e.g. "9.0" */
  computeCapability: string;
  /** Number of streaming multiprocessors. */
  multiprocessors: number;
  /** Global memory in bytes. */
  totalMemory: number;
}

/** The addon with its CUDA entry points (for benchmarks and tests). */
export function cudaAddon(): CudaAddon {
  return nativeAddon() as unknown as CudaAddon;
}

/** Turns the binding's plain Error named 'TsmCudaError' into the TsmCudaError class. */
function normalise(e: unknown): unknown {
  if (e instanceof Error && e.name === 'TsmCudaError' && !(e instanceof TsmCudaError)) {
    const call = (e as Error & { call?: string }).call ?? 'cuda';
    const err = new TsmCudaError(call, e.message);
    if (e.stack) err.stack = `${err.name}: ${err.message}\n${e.stack.split('\n').slice(1).join('\n')}`;
    return err;
  }
  return e;
}

function native<T>(fn: (a: CudaAddon) => T): T {
  try {
    return fn(cudaAddon());
  } catch (e) {
    throw normalise(e);
  }
}

/** @internal Calls into the addon, turning its errors named 'TsmCudaError' into the class (lib/cuda-attention.ts). */
export const nativeCuda = native;

function compiled(): boolean {
  return nativeAddon().buildInfo().cuda.compiled;
}

/** True when this binary has CUDA kernels and a CUDA device is visible. */
export function isAvailable(): boolean {
  const c = nativeAddon().buildInfo().cuda;
  return c.compiled && c.deviceCount > 0;
}

/** CUDA devices visible (0 without a driver, a GPU, or CUDA in this build). */
export function deviceCount(): number {
  return nativeAddon().buildInfo().cuda.deviceCount;
}

/** Why isAvailable() is false ('' when it is true), for messages and skipped tests. */
export function unavailableReason(): string {
  const c = nativeAddon().buildInfo().cuda;
  if (!c.compiled) return 'this build of tensorsmith has no CUDA support (built with TSM_CUDA=OFF or without nvcc)';
  if (c.deviceCount === 0) return 'no CUDA device is visible (no NVIDIA driver or GPU on this machine)';
  return '';
}

/**
 * Name, compute capability, SM count and memory of device `device` (default 0).
 * Throws TsmCudaError when no such device is available.
 */
export function deviceInfo(device = 0): DeviceInfo {
  const d = checkInt('cuda.deviceInfo', 'device', device, 0);
  return native((a) => a.cudaDeviceInfo(d));
}

/** Selects the device later allocations and kernels of this thread use (and that a bare `'cuda'` names). */
export function setDevice(device: number): void {
  const d = checkInt('cuda.setDevice', 'device', device, 0);
  native((a) => a.cudaSetDevice(d));
  cudaState.current = d;
}

/** Waits for all queued work on the current device. A no-op when no CUDA device is available. */
export function synchronize(): void {
  if (!isAvailable()) return;
  native((a) => a.cudaSynchronize());
}

const ZERO_STATS: MemoryStats = {
  allocatedBytes: 0, reservedBytes: 0, peakAllocatedBytes: 0, numAllocs: 0, numCacheHits: 0, numDeviceAllocs: 0,
  numOomRetries: 0,
};

/** The caching allocator's counters, summed over devices. */
export function memoryStats(): MemoryStats {
  if (!compiled()) return { ...ZERO_STATS };
  return native((a) => a.cudaMemoryStats());
}

/** Returns cached, unused device memory to the driver. A no-op when no CUDA device is available. */
export function emptyCache(): void {
  if (!isAvailable()) return;
  native((a) => a.cudaEmptyCache());
}

/** A block of device memory. */
export class DeviceBuffer {
  #handle: Handle | null;
  /** Size of the buffer in bytes. */
  readonly bytes: number;

  /** Allocates `bytes` of device memory (contents undefined). */
  constructor(bytes: number) {
    const n = checkSize('cuda.DeviceBuffer', 'bytes', bytes);
    this.#handle = native((a) => a.cudaMalloc(n));
    this.bytes = n;
  }

  /** A buffer holding a copy of `data`. */
  static from(data: ArrayBufferView): DeviceBuffer {
    checkView('cuda.DeviceBuffer.from', 'data', data);
    const b = new DeviceBuffer(data.byteLength);
    b.upload(data);
    return b;
  }

  /** The native handle (for the addon's benchmark helpers). Throws after free(). */
  get handle(): Handle {
    if (!this.#handle) throw new TsmCudaError('cuda.DeviceBuffer', 'the buffer was freed');
    return this.#handle;
  }

  /** True after free(). */
  get freed(): boolean {
    return this.#handle === null;
  }

  /** Copies `data` into the buffer at byteOffset. Returns when `data` may be reused. */
  upload(data: ArrayBufferView, byteOffset = 0): this {
    checkView('cuda.DeviceBuffer.upload', 'data', data);
    const off = checkInt('cuda.DeviceBuffer.upload', 'byteOffset', byteOffset, 0);
    if (off + data.byteLength > this.bytes)
      throw new RangeError(`cuda.DeviceBuffer.upload: ${data.byteLength} bytes at offset ${off} do not fit a buffer of ${this.bytes} bytes`);
    const h = this.handle;
    native((a) => a.cudaUpload(h, data, off));
    return this;
  }

  /** Copies the buffer (from byteOffset) into `into` after all queued work, and returns `into`. */
  download<T extends ArrayBufferView>(into: T, byteOffset = 0): T {
    checkView('cuda.DeviceBuffer.download', 'into', into);
    const off = checkInt('cuda.DeviceBuffer.download', 'byteOffset', byteOffset, 0);
    if (off + into.byteLength > this.bytes)
      throw new RangeError(`cuda.DeviceBuffer.download: ${into.byteLength} bytes at offset ${off} do not fit a buffer of ${this.bytes} bytes`);
    const h = this.handle;
    native((a) => a.cudaDownload(h, into, off));
    return into;
  }

  /** Sets every byte to `value` (0xff fills float32/bf16/f16 with NaN: poison before a test). */
  fill(value: number): this {
    const v = checkInt('cuda.DeviceBuffer.fill', 'value', value, 0, 255);
    const h = this.handle;
    native((a) => a.cudaMemset(h, v));
    return this;
  }

  /** Returns the memory to the allocator's cache now. Idempotent. */
  free(): void {
    if (!this.#handle) return;
    const h = this.#handle;
    this.#handle = null;
    native((a) => a.cudaFree(h));
  }
}

function checkView(op: string, name: string, v: unknown): asserts v is ArrayBufferView {
  if (!ArrayBuffer.isView(v) || v instanceof DataView)
    throw new TypeError(`${op}: ${name} must be a typed array, got ${describe(v)}`);
}

/** @internal A live DeviceBuffer, or a TypeError/TsmCudaError naming op and argument. */
export function checkBuffer(op: string, name: string, v: unknown): DeviceBuffer {
  if (!(v instanceof DeviceBuffer)) throw new TypeError(`${op}: ${name} must be a tsm.cuda.DeviceBuffer, got ${describe(v)}`);
  if (v.freed) throw new TsmCudaError(op, `${name} was freed`);
  return v;
}

function span(rows: number, cols: number, ld: number): number {
  return rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols;
}

function needBytes(op: string, name: string, buf: DeviceBuffer, elems: number, esz: number, what: string): void {
  if (elems * esz > buf.bytes)
    throw new RangeError(`${op}: ${name} holds ${buf.bytes} bytes, needs ${elems * esz} for ${what}`);
}

/** Compute types of cuda.gemm: 'f32' (CUDA cores, SGEMM), 'tf32', 'bf16', 'f16' (tensor cores; f32 accumulation). */
export type GemmType = 'f32' | 'tf32' | 'bf16' | 'f16';
/** Storage type of C. */
export type CudaDtype = 'float32' | 'bfloat16' | 'float16';
/** Epilogue activation of cuda.gemm. */
export type Activation = 'none' | 'relu' | 'gelu';
/** Kernel family: 'simt' (gemm_sgemm.cu), 'mma' (mma.sync, sm_80+), 'wgmma' (wgmma + TMA, sm_90a). */
export type GemmAlgo = 'auto' | 'simt' | 'mma' | 'wgmma';

const GEMM_TYPES: Record<GemmType, number> = { f32: 0, tf32: 1, bf16: 2, f16: 3 };
const DTYPES: Record<CudaDtype, number> = { float32: 0, bfloat16: 1, float16: 2 };
const ACTS: Record<Activation, number> = { none: 0, relu: 1, gelu: 2 };
const ALGOS: GemmAlgo[] = ['auto', 'simt', 'mma', 'wgmma'];

/** Arguments of cuda.gemm. Matrices are row-major; lda/ldb/ldc are in elements. */
export interface CudaGemmArgs {
  /** Default 'f32'. A and B are float32 for 'f32'/'tf32', bfloat16 bits for 'bf16', float16 bits for 'f16'. */
  type?: GemmType;
  /** Use A transposed (A stored k x m). Default false. */
  transA?: boolean;
  /** Use B transposed (B stored n x k). Default false. */
  transB?: boolean;
  /** Rows of op(A) and of C. */
  m: number;
  /** Columns of op(B) and of C. */
  n: number;
  /** Columns of op(A), rows of op(B). */
  k: number;
  /** Default 1. */
  alpha?: number;
  /** Matrix A. */
  a: DeviceBuffer;
  /** Leading dimension of A; default its column count (k, or m when transA). */
  lda?: number;
  /** Matrix B. */
  b: DeviceBuffer;
  /** Leading dimension of B; default its column count (n, or k when transB). */
  ldb?: number;
  /** Default 0 (C is not read). */
  beta?: number;
  /** Output matrix C (m x n). */
  c: DeviceBuffer;
  /** Default 'float32'; 'bfloat16'/'float16' only with type 'bf16'/'f16'. */
  cDtype?: CudaDtype;
  /** Leading dimension of C; default n. */
  ldc?: number;
  /** float32, one value per column of C (length n), or null. */
  bias?: DeviceBuffer | null;
  /** Applied last: C = act(alpha*op(A)op(B) + beta*C + bias). Default 'none'. */
  activation?: Activation;
  /** Strided batched: batch products, A_i = A + i*strideA elements (0 broadcasts), likewise B, C. Default 1. */
  batch?: number;
  /** Elements between batch entries of A; default the span of one matrix when batch > 1. */
  strideA?: number;
  /** Elements between batch entries of B; default the span of one matrix when batch > 1. */
  strideB?: number;
  /** Elements between batch entries of C; default the span of one matrix when batch > 1 (must be > 0 then). */
  strideC?: number;
}

function pick<T extends string>(op: string, name: string, v: unknown, table: Record<T, number>, fallback: T): number {
  if (v === undefined) return table[fallback];
  if (typeof v !== 'string' || !(v in table))
    throw new TypeError(`${op}: ${name} must be one of ${Object.keys(table).map((x) => `'${x}'`).join(', ')}, got ${describe(v)}`);
  return table[v as T];
}

/**
 * GEMM on device buffers, row-major with BLAS semantics plus an epilogue:
 *   C = act(alpha * op(A) * op(B) + beta * C + bias), op(A) m x k, op(B) k x n, C m x n.
 * Queued asynchronously; download() or synchronize() waits for it.
 */
export function gemm(args: CudaGemmArgs): void {
  const op = 'cuda.gemm';
  if (typeof args !== 'object' || args === null) throw new TypeError(`${op}: expected an options object, got ${describe(args)}`);
  const type = pick<GemmType>(op, 'type', args.type, GEMM_TYPES, 'f32');
  const cDtype = pick<CudaDtype>(op, 'cDtype', args.cDtype, DTYPES, 'float32');
  const act = pick<Activation>(op, 'activation', args.activation, ACTS, 'none');
  if (cDtype === 1 && type !== 2) throw new TypeError(`${op}: cDtype 'bfloat16' needs type 'bf16'`);
  if (cDtype === 2 && type !== 3) throw new TypeError(`${op}: cDtype 'float16' needs type 'f16'`);
  const transA = args.transA === undefined ? false : checkBool(op, 'transA', args.transA);
  const transB = args.transB === undefined ? false : checkBool(op, 'transB', args.transB);
  const m = checkSize(op, 'm', args.m), n = checkSize(op, 'n', args.n), k = checkSize(op, 'k', args.k);
  const batch = args.batch === undefined ? 1 : checkSize(op, 'batch', args.batch);
  const alpha = args.alpha === undefined ? 1 : checkNumber(op, 'alpha', args.alpha);
  const beta = args.beta === undefined ? 0 : checkNumber(op, 'beta', args.beta);
  const a = checkBuffer(op, 'a', args.a), b = checkBuffer(op, 'b', args.b), c = checkBuffer(op, 'c', args.c);
  const bias = args.bias === undefined || args.bias === null ? null : checkBuffer(op, 'bias', args.bias);
  const aCols = transA ? m : k, bCols = transB ? k : n;
  const lda = args.lda === undefined ? Math.max(1, aCols) : checkInt(op, 'lda', args.lda, Math.max(1, aCols));
  const ldb = args.ldb === undefined ? Math.max(1, bCols) : checkInt(op, 'ldb', args.ldb, Math.max(1, bCols));
  const ldc = args.ldc === undefined ? Math.max(1, n) : checkInt(op, 'ldc', args.ldc, Math.max(1, n));
  const aRows = transA ? k : m, bRows = transB ? n : k;
  const strideA = args.strideA === undefined ? (batch > 1 ? span(aRows, aCols, lda) : 0) : checkInt(op, 'strideA', args.strideA, 0);
  const strideB = args.strideB === undefined ? (batch > 1 ? span(bRows, bCols, ldb) : 0) : checkInt(op, 'strideB', args.strideB, 0);
  const strideC = args.strideC === undefined ? (batch > 1 ? span(m, n, ldc) : 0) : checkInt(op, 'strideC', args.strideC, 0);
  if (batch > 1 && strideC === 0 && m > 0 && n > 0) throw new RangeError(`${op}: strideC must be > 0 when batch > 1`);
  const esz = type <= 1 ? 4 : 2, csz = cDtype === 0 ? 4 : 2;
  if (batch > 0 && m > 0 && n > 0) {
    if (k > 0) {
      needBytes(op, 'a', a, (batch - 1) * strideA + span(aRows, aCols, lda), esz, `${batch} x a ${aRows}x${aCols} matrix with lda=${lda}`);
      needBytes(op, 'b', b, (batch - 1) * strideB + span(bRows, bCols, ldb), esz, `${batch} x a ${bRows}x${bCols} matrix with ldb=${ldb}`);
    }
    needBytes(op, 'c', c, (batch - 1) * strideC + span(m, n, ldc), csz, `${batch} x a ${m}x${n} matrix with ldc=${ldc}`);
    if (bias) needBytes(op, 'bias', bias, n, 4, `${n} float32 biases`);
  }
  native((x) => x.cudaGemmEx(type, transA, transB, batch, m, n, k, alpha, a.handle, lda, strideA, b.handle, ldb,
    strideB, beta, c.handle, cDtype, ldc, strideC, bias ? bias.handle : null, act));
}

/** Arguments of cuda.sgemm: CudaGemmArgs without type/cDtype/bias/activation/batch (all float32). */
export type CudaSgemmArgs = Pick<CudaGemmArgs, 'transA' | 'transB' | 'm' | 'n' | 'k' | 'alpha' | 'a' | 'lda' | 'b' | 'ldb' | 'beta' | 'c' | 'ldc'>;

/** tsm.kernels.sgemm's contract on device buffers (float32, exact FMAs on CUDA cores). */
export function sgemm(args: CudaSgemmArgs): void {
  if (typeof args !== 'object' || args === null) throw new TypeError(`cuda.sgemm: expected an options object, got ${describe(args)}`);
  gemm({ ...args, type: 'f32', cDtype: 'float32' });
}

/** Forces a kernel family for later GEMMs (tests, benchmarks); 'auto' restores the default choice. */
export function setGemmAlgo(algo: GemmAlgo): void {
  const i = ALGOS.indexOf(algo);
  if (i < 0) throw new TypeError(`cuda.setGemmAlgo: algo must be one of ${ALGOS.map((x) => `'${x}'`).join(', ')}, got ${describe(algo)}`);
  native((a) => a.cudaGemmSetAlgo(i));
}

/** The kernel family the last GEMM of this thread ran with. */
export function lastGemmAlgo(): GemmAlgo {
  return ALGOS[native((a) => a.cudaGemmLastAlgo())] ?? 'auto';
}

// ---- 16-bit float conversions (host side), for filling and reading bf16/f16 buffers (lib/half.ts) ----
export { toBfloat16, fromBfloat16, toFloat16, fromFloat16 } from './half';

// ---- fused attention on device buffers (lib/cuda-attention.ts) ----
export {
  attention, attentionBackward, timeAttention, type AttentionAlgo, type CudaAttentionArgs,
  type CudaAttentionBackwardArgs, type CudaAttentionOptions, type CudaAttentionAddon,
} from './cuda-attention';
