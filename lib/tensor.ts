// Tensor: a contiguous, row-major block of numbers with a shape, a dtype and a device, plus the
// autograd fields. Storage is a typed array (CPU) or a device buffer (CUDA) owned through a
// reference-counted Storage, so views (reshape, flatten, squeeze...) share it; ops that change the
// layout (transpose, permute, slice) produce a new contiguous tensor.
import { describe } from './check';
import { deviceDownload, deviceFree, noCudaKernel, parseDevice, type Device } from './device';
import { TsmCudaError, TsmDisposedError } from './errors';
import { decode16, is16 } from './half';
import type { Node } from './autograd';
import { nativeAddon } from './native-api';
import * as ops from './ops';

export type { Device } from './device';

/**
 * Element type. `'bfloat16'` and `'float16'` are storage types (on the CPU a Uint16Array of bits, on
 * CUDA 2-byte elements): they can be created, cast (`to`), moved between devices, reshaped, read
 * (`dataSync()` gives a Float32Array of the values), saved and printed; other ops throw a TypeError
 * asking for a cast to float32. Mixed-precision compute goes through {@link autocast}.
 */
export type DType = 'float32' | 'int32' | 'bfloat16' | 'float16';
/** Sizes of each dim, outermost first (row-major); `[]` is a 0-d (scalar) tensor. */
export type Shape = readonly number[];
/**
 * The backing array of a tensor: Float32Array for float32, Int32Array for int32 (internally also a
 * Uint16Array of bits for bfloat16/float16; `dataSync()` returns their values as a Float32Array).
 */
export type TypedArray = Float32Array | Int32Array;
/** Nested JS arrays of numbers (booleans become 1/0), as accepted by {@link tensor} and returned by {@link Tensor.toArray}. */
export type NestedArray = number | boolean | NestedArray[];

export const DTYPES: readonly DType[] = ['float32', 'int32', 'bfloat16', 'float16'];

export function checkDType(op: string, dtype: unknown): DType {
  if (typeof dtype !== 'string' || !(DTYPES as readonly string[]).includes(dtype))
    throw new TypeError(`${op}: dtype must be one of ${DTYPES.join(', ')}, got ${describe(dtype)}`);
  return dtype as DType;
}

/**
 * The canonical device of a device argument: `'cpu'` (also for undefined) or `'cuda:N'`. TypeError for
 * an unknown device string; TsmCudaError (saying why) when CUDA is not available or N does not exist.
 */
export function checkDevice(op: string, device: unknown): Device {
  if (device === undefined || device === 'cpu') return 'cpu';
  return parseDevice(op, device);
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(op: string, shape: unknown, name = 'shape'): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${op}: ${name} must be an array of sizes, got ${describe(shape)}`);
  for (const d of shape) {
    if (typeof d !== 'number') throw new TypeError(`${op}: ${name} must hold numbers, got ${describe(d)} in [${shape.join(', ')}]`);
    if (!Number.isSafeInteger(d) || d < 0)
      throw new RangeError(`${op}: ${name} sizes must be non-negative integers, got [${shape.join(', ')}]`);
  }
  if (sizeOf(shape) > 2 ** 31 - 1) throw new RangeError(`${op}: ${name} [${shape.join(', ')}] has more than 2^31-1 elements`);
  return shape.slice();
}

// ---------------------------------------------------------------------------------------------
// Memory accounting and scopes (tidy)

/**
 * @internal A float32 storage whose elements are not computed yet: `fill` writes them on the first
 * read, from the elements of `source` when there is one. How a ReLU is deferred until something
 * reads it, so that max pooling can read through it instead (F.maxPool2d); the source must not
 * change meanwhile: only the outputs of recorded ops that hold their storage alone are deferred from
 * (no op writes into a non-leaf; a view of a leaf, which an optimizer may update in place, shares its
 * storage). And how a convolution with few taps per output is deferred (F.conv2d), with no source
 * but copies of its operands in `info`, so that a max pooling can compute it plane by plane instead.
 */
interface Deferred {
  op: string;
  source: Storage | null;
  fill: (out: Float32Array, source: Float32Array | null) => void;
  info: unknown;
}

/**
 * @internal What a storage's accounting needs once its tensors are gone, without its elements: the
 * garbage collector's backstop (the FinalizationRegistry below) holds this, not the Storage. Were it
 * to hold the Storage, a collected tensor's elements would stay alive until the registry's cleanup
 * runs, and that waits for the event loop: a synchronous loop of ops that dispose nothing would
 * keep every output (8,000 adds of 1 MB tensors: 8.5 GB of RSS). Holding this instead, the
 * collector frees the elements with the tensor; what waits for the cleanup is this ledger and the
 * registry's own cell (~160 bytes a tensor), and the counters of memory() catch up then.
 */
class Ledger {
  refs = 0;
  /** The ledger of the storage a deferred storage computes from (retained until it is computed). */
  source: Ledger | null = null;
  constructor(readonly bytes: number, readonly onDevice: boolean, public handle: object | null) {
    if (onDevice) memoryState.cudaBytes += bytes;
    else memoryState.bytes += bytes;
    memoryState.storages++;
  }
  /** Drops one reference; the last one takes the storage out of the counters (and frees a device buffer). */
  release(): void {
    if (--this.refs !== 0) return;
    const source = this.source;
    this.source = null;
    source?.release();
    memoryState.storages--;
    if (!this.onDevice) {
      memoryState.bytes -= this.bytes;
    } else if (this.handle) {
      const h = this.handle;
      this.handle = null;
      memoryState.cudaBytes -= this.bytes;
      deviceFree(h);
    }
  }
}

/** @internal The memory behind one or more tensors (views share it). */
export class Storage {
  /** The elements of a CPU storage (a Uint16Array of bits for 16-bit dtypes); null on a CUDA device, while deferred, and once released. */
  private arr: TypedArray | Uint16Array | null;
  private deferred: Deferred | null = null;
  /** @internal The references and counters (see Ledger). */
  readonly ledger: Ledger;
  readonly bytes: number;
  /** 'cpu' or 'cuda:N'. */
  readonly device: Device;
  /** Allocated by uninitializedF32(): its array goes back to the pool when the storage is freed. */
  pooled = false;
  constructor(data: TypedArray | Uint16Array | null, device: Device = 'cpu', handle: object | null = null, bytes = 0) {
    this.arr = data;
    this.device = device;
    const onDevice = data === null && device !== 'cpu';
    this.bytes = data !== null ? data.byteLength : bytes;
    this.ledger = new Ledger(this.bytes, onDevice, onDevice ? handle : null);
  }
  /** A CPU float32 storage of n elements computed (from `source`, if any) when first read (see Deferred). */
  static deferred(n: number, op: string, source: Storage | null, fill: Deferred['fill'], info: unknown = null): Storage {
    const s = new Storage(null, 'cpu', null, 4 * n);
    if (source) {
      source.retain();
      s.ledger.source = source.ledger;
    }
    s.deferred = { op, source, fill, info };
    return s;
  }
  /** The device buffer (the addon's handle) of a CUDA storage; null on the CPU and once released. */
  get handle(): object | null {
    return this.ledger.handle;
  }
  /** References from tensors (and from storages deferred on this one). */
  get refs(): number {
    return this.ledger.refs;
  }
  /** The CPU elements (computing a deferred storage's first), or null on a device and once released. */
  get data(): TypedArray | Uint16Array | null {
    if (this.deferred !== null) this.materialize();
    return this.arr;
  }
  /** Whether the storage still holds its elements (or will compute them) or its device buffer. */
  get alive(): boolean {
    return this.arr !== null || this.deferred !== null || this.ledger.handle !== null;
  }
  /** The source elements of a storage deferred as `op` and not computed yet; null otherwise. */
  deferredSource(op: string): Float32Array | null {
    const d = this.deferred;
    return d !== null && d.op === op && d.source !== null ? (d.source.data as Float32Array) : null;
  }
  /** The source storage of a storage deferred as `op` and not computed yet (nothing is computed); null otherwise. */
  deferredSourceStorage(op: string): Storage | null {
    const d = this.deferred;
    return d !== null && d.op === op ? d.source : null;
  }
  /** The `info` of a storage deferred as `op` and not computed yet; null otherwise. */
  deferredInfo(op: string): unknown {
    const d = this.deferred;
    return d !== null && d.op === op ? d.info : null;
  }
  private materialize(): void {
    const d = this.deferred!;
    const n = this.bytes / 4;  // as uninitializedF32: the buffer comes from and goes back to the pool
    this.pooled = n > 0;
    const out = uninitialized(n);
    d.fill(out, d.source !== null ? (d.source.data as Float32Array) : null);
    this.arr = out;
    this.deferred = null;
    this.ledger.source = null;
    d.source?.release();
  }
  retain(): void {
    this.ledger.refs++;
  }
  /**
   * Drops one reference; the last one frees the storage (its array back to the pool, a deferred
   * storage's source released). The collector's backstop releases the ledger alone.
   */
  release(): void {
    const ledger = this.ledger;
    if (ledger.refs === 1) {
      if (this.deferred !== null) {
        // Never read: nothing was computed or allocated. The source goes through its Storage, so
        // that its array can go back to the pool.
        const source = this.deferred.source;
        this.deferred = null;
        ledger.source = null;
        source?.release();
      } else if (this.arr !== null) {
        if (this.pooled) {
          const d = this.arr;  // an int32 storage lends its buffer back as float32 (same length)
          recycle(d instanceof Float32Array ? d : new Float32Array(d.buffer, d.byteOffset, d.length));
        }
        this.arr = null;
      }
    }
    ledger.release();
  }
}

const memoryState = { tensors: 0, bytes: 0, cudaBytes: 0, storages: 0 };

// ---- a pool of float32 buffers ----
// Kernel outputs come from here (uninitializedF32), and go back when their storage is freed: kept
// by exact length and handed out again, uninitialised, to kernels that overwrite them.
// - Large buffers (>= POOL_MIN elements, up to POOL_MAX_BYTES in all): training loops allocate the
//   same activations every step, and a fresh typed array costs a zero fill and page faults.
// - Small ones (up to SMALL_PER_LENGTH of each length, SMALL_MAX_BYTES in all): a fresh array costs
//   more than the op. V8 keeps arrays of <= 64 bytes on its heap and must move one off the heap the
//   first time the addon reads it; larger ones get a zeroed backing store of their own. A fresh
//   output costs ~0.3 us at 1 element and ~0.7 us at 32 (Zen 3, Node 20) against ~0.15 us for
//   the whole native call of a 1-element add; a recycled one has been moved already.
const POOL_MIN = 16384;
const POOL_MAX_BYTES = 256 * 1024 * 1024;
const SMALL_PER_LENGTH = 256;
const SMALL_MAX_BYTES = 8 * 1024 * 1024;
const pool = new Map<number, Float32Array[]>();
let pooledBytes = 0, smallPooledBytes = 0;
// TSM_FILL_UNINITIALIZED=1 fills every buffer handed out as uninitialised with NaN (as PyTorch's
// fill_uninitialized_memory): an op that leaves part of its output unwritten then shows NaN in
// its results. CI runs the whole suite once with it (npm run test:uninit).
const FILL_UNINITIALIZED = typeof process !== 'undefined' && process.env?.TSM_FILL_UNINITIALIZED === '1';

function recycle(a: Float32Array): void {
  const n = a.length;
  if (n === 0) return;  // (an array whose buffer was transferred away reads as empty)
  let list = pool.get(n);
  if (n < POOL_MIN) {
    if (smallPooledBytes + a.byteLength > SMALL_MAX_BYTES || (list !== undefined && list.length >= SMALL_PER_LENGTH)) return;
    smallPooledBytes += a.byteLength;
  } else {
    if (pooledBytes + a.byteLength > POOL_MAX_BYTES) return;
    pooledBytes += a.byteLength;
  }
  if (!list) pool.set(n, (list = []));
  list.push(a);
}

/** A freed buffer of n elements from the pool, or undefined. */
function takePooled(n: number): Float32Array | undefined {
  const data = pool.get(n)?.pop();
  if (data) {
    if (n < POOL_MIN) smallPooledBytes -= data.byteLength;
    else pooledBytes -= data.byteLength;
  }
  return data;
}

/**
 * @internal A zeroed Float32Array of n elements. A large one (>= POOL_MIN elements) starts on a
 * 64-byte boundary, as PyTorch's CPU allocations do: an ArrayBuffer of 128 KiB or more comes from
 * calloc 16 bytes past a page start (smaller ones at any 16-byte offset), so every 16-float row piece
 * a kernel loads or stores spans two cache lines. (Zen 3, 2 threads: NN 64x512x1600 +6%, NN 128x2048x256 +5% with aligned operands.)
 */
export function freshF32(n: number): Float32Array {
  return n >= POOL_MIN ? nativeAddon().alignedFloat32Array(n) : new Float32Array(n);
}

/** A buffer of n elements for a kernel to overwrite: from the pool, or new. */
function uninitialized(n: number): Float32Array {
  const data = takePooled(n) ?? freshF32(n);
  if (FILL_UNINITIALIZED) data.fill(NaN);
  return data;
}

/** @internal A float32 tensor whose contents are unspecified (callers overwrite every element). */
export function uninitializedF32(shape: readonly number[]): Tensor {
  const n = sizeOf(shape);
  const data = uninitialized(n);
  const storage = new Storage(data);
  storage.pooled = n > 0;
  return new Tensor(data, shape, 'float32', storage);
}

/** @internal An int32 tensor over a pooled buffer (such as max pooling's indices), contents unspecified. */
export function uninitializedI32(shape: readonly number[]): Tensor {
  const n = sizeOf(shape);
  const f = uninitialized(n);
  const data = new Int32Array(f.buffer, f.byteOffset, n);
  const storage = new Storage(data);
  storage.pooled = n > 0;
  return new Tensor(data, shape, 'int32', storage);
}

/**
 * @internal A float32 tensor of `shape` whose elements are fill(out, source's elements), computed on
 * the first read of its data (see Deferred). `source` must be a non-leaf float32 CPU tensor of the
 * same size.
 */
export function deferredF32(shape: readonly number[], op: string, source: Tensor, fill: Deferred['fill']): Tensor {
  return new Tensor(null, shape, 'float32', Storage.deferred(sizeOf(shape), op, source._storage('deferredF32'), fill));
}

/**
 * @internal A float32 tensor of `shape` whose elements are fill(out), computed on the first read of
 * its data; `info` (what fill reads, copied so that nothing can change it) is there for an op that
 * computes what it needs of the tensor itself instead (see Deferred).
 */
export function deferredComputedF32(shape: readonly number[], op: string, info: unknown,
                                    fill: (out: Float32Array) => void): Tensor {
  return new Tensor(null, shape, 'float32', Storage.deferred(sizeOf(shape), op, null, fill, info));
}

/** Drops the buffers kept for reuse. */
export function releasePool(): void {
  pool.clear();
  pooledBytes = 0;
  smallPooledBytes = 0;
}

// Frees what the user forgot to dispose once the Tensor object is garbage collected.
const finalizer = new FinalizationRegistry<Ledger>((ledger) => {
  memoryState.tensors--;
  ledger.release();
});

// The finalizer's registrations, batched for small CPU tensors. FinalizationRegistry's register +
// unregister cost ~0.5 us per tensor (Zen 3, Node 20): a third of a tiny op, for tensors that are
// nearly all disposed (tidy, an optimizer step) long before the collector would look at them. A
// tensor of at most DEFER_MAX_BYTES on the CPU is queued instead and registered by the next flush
// (every DEFER_BATCH tensors, on the next turn of the event loop, and in memory()) unless it was
// disposed by then. Until its flush the queue holds it: at most DEFER_BATCH small tensors are kept
// alive a little longer than the collector would, never a large or a device buffer.
const FIN_NONE = 0, FIN_QUEUED = 1, FIN_REGISTERED = 2;
const DEFER_MAX_BYTES = 4096, DEFER_BATCH = 64;
const finalizerQueue: Tensor[] = [];
let flushScheduled = false;

function flushFinalizers(): void {
  flushScheduled = false;
  for (let i = 0; i < finalizerQueue.length; i++) finalizerQueue[i]._registerFinalizer();
  finalizerQueue.length = 0;
}

const scopes: Set<Tensor>[] = [];

/** Counters returned by {@link memory}. */
export interface MemoryInfo {
  /** Live tensors (views included). */
  tensors: number;
  /** Bytes of live CPU storage (shared storage counted once). */
  bytes: number;
  /** Bytes of live CUDA storage (shared storage counted once; as requested, before the allocator's rounding). */
  cudaBytes: number;
}

/**
 * Live tensor count, bytes of CPU storage and bytes of CUDA storage held by tensors (as `tf.memory()`).
 * `tsm.cuda.memoryStats()` has the caching allocator's own counters (rounded sizes, cached blocks).
 * Tensors the garbage collector has freed stay in these counts until its cleanup runs, between turns
 * of the event loop, although their memory is freed before that.
 */
export function memory(): MemoryInfo {
  flushFinalizers();  // what is queued becomes collectable now (the counts include it either way)
  return { tensors: memoryState.tensors, bytes: memoryState.bytes, cudaBytes: memoryState.cudaBytes };
}


function collectTensors(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collectTensors(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype)
    for (const x of Object.values(v as Record<string, unknown>)) collectTensors(x, out, depth + 1);
}

/**
 * Runs fn and disposes every tensor created inside it, except the tensors it returns (directly, or
 * in an array or plain object) and tensors passed to keep(). Gradients (`.grad`) and optimizer state
 * are never disposed by tidy.
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError(`tidy: fn must be a function, got ${describe(fn)}`);
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    // An exception frees the scope's tensors too (nothing is returned to keep).
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) throw new TypeError('tidy: fn must be synchronous (it returned a Promise)');
  const kept = new Set<Tensor>();
  collectTensors(result, kept);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Keeps a tensor created inside tidy() alive past the end of the scope. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Autograd switches

let gradEnabled = true;

/** False inside {@link noGrad}: operations are then not recorded for autograd. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording operations for autograd. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

// ---------------------------------------------------------------------------------------------

/** Options of the tensor factories ({@link tensor}, {@link zeros}, {@link rand}...). */
export interface TensorOptions {
  /** Element type (default float32; some factories infer int32 from the data). */
  dtype?: DType;
  /**
   * `'cpu'` (default), `'cuda'` (the current CUDA device) or `'cuda:N'`; a CUDA device throws
   * TsmCudaError when CUDA is not available (the message says why).
   */
  device?: Device;
  /** Record operations on this tensor for autograd (float32 only; default false). */
  requiresGrad?: boolean;
}

let nextId = 1;

/**
 * An n-dimensional array of float32 or int32 values in row-major memory of the CPU or of a CUDA
 * device (`device`), with autograd. Ops run on the device of their tensors (all must be on the same
 * one); an op without a CUDA kernel yet throws TsmCudaError naming it.
 * Create tensors with {@link tensor}, {@link zeros}, {@link randn}...; free them with `dispose()`
 * or {@link tidy} (the garbage collector frees them otherwise). Ops that differentiate record
 * themselves when an input has `requiresGrad`; `backward()` fills `.grad` of the leaves.
 * @example
 * ```ts
 * const x = tsm.tensor([[1, 2], [3, 4]], { requiresGrad: true });
 * const y = x.mul(x).sum();   // 0-d tensor, 30
 * y.backward();
 * x.grad!.toArray();          // [[2, 4], [6, 8]]
 * ```
 */
export class Tensor {
  /** Unique id, increasing with creation order (shown in error messages). */
  readonly id: number;
  /** Size of each dim, outermost first. */
  readonly shape: readonly number[];
  /** Element type: `'float32'`, `'int32'`, or the 16-bit storage types `'bfloat16'`/`'float16'`. */
  readonly dtype: DType;
  /** Where the elements live: `'cpu'` or `'cuda:N'` (move with `to()`, `cuda()`, `cpu()`). */
  readonly device: Device;
  /** Whether autograd records operations on this tensor; set with {@link Tensor.requiresGrad_}. */
  requiresGrad: boolean;
  /** The gradient accumulated by backward(), or null. */
  grad: Tensor | null = null;
  /** @internal autograd node that produced this tensor (null for leaves). */
  _node: Node | null = null;
  private storage: Storage | null;
  /** How the garbage collector's backstop knows this tensor: FIN_NONE, FIN_QUEUED or FIN_REGISTERED. */
  private fin: number;

  /** @internal Use tsm.tensor(), tsm.zeros()... to create tensors. `data` is null with a CUDA storage. */
  constructor(data: TypedArray | Uint16Array | null, shape: readonly number[], dtype: DType, storage?: Storage) {
    this.id = nextId++;
    // Shapes taken from other tensors are already frozen copies: share them.
    this.shape = Object.isFrozen(shape) ? shape : Object.freeze(shape.slice());
    this.dtype = dtype;
    this.requiresGrad = false;
    const s = storage ?? new Storage(data);
    s.retain();
    this.storage = s;
    this.device = s.device;
    memoryState.tensors++;
    if (s.device === 'cpu' && s.bytes <= DEFER_MAX_BYTES) {
      this.fin = FIN_QUEUED;
      if (finalizerQueue.push(this) >= DEFER_BATCH) flushFinalizers();
      else if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushFinalizers).unref();
      }
    } else {
      this.fin = FIN_REGISTERED;
      finalizer.register(this, s.ledger, this);
    }
    const scope = scopes[scopes.length - 1];
    if (scope) scope.add(this);
  }

  /** @internal The backing typed array, or a TsmDisposedError naming `op` (TsmCudaError on a CUDA device). */
  _live(op: string): TypedArray {
    const d = this.storage?.data;
    if (!d) throw this._noHostData(op);
    return d as TypedArray;
  }

  /** @internal The backing typed array (contiguous, row-major). Throws after dispose, and on a CUDA device. */
  get _data(): TypedArray {
    const d = this.storage?.data;
    if (!d) throw this._noHostData('');
    return d as TypedArray;
  }

  /** @internal The Uint16Array of bits of a bfloat16/float16 tensor on the CPU (TypeError naming op otherwise). */
  _bits(op: string): Uint16Array {
    const d = this.storage?.data;
    if (!d) throw this._noHostData(op);
    if (!(d instanceof Uint16Array)) throw new TypeError(`${op}: internal: tensor #${this.id} is ${this.dtype}, not a 16-bit tensor`);
    return d;
  }

  /** @internal Why there is no host array: the tensor was disposed, or its storage is on a CUDA device. */
  _noHostData(op: string): Error {
    if (this.storage?.handle) {
      // A CPU-only code path reached a CUDA tensor: name the op when it is known.
      if (op) return noCudaKernel(op);
      return new TsmCudaError(`tensor #${this.id} of shape [${this.shape.join(', ')}]`,
        `it is on ${this.device} and this operation has no CUDA kernel yet; move the tensor to the CPU with .cpu()`);
    }
    return new TsmDisposedError(`${op ? `${op}: ` : ''}tensor #${this.id} of shape [${this.shape.join(', ')}] was used after dispose()`);
  }

  /** @internal The device buffer handle of a CUDA tensor (TsmDisposedError naming `op` after dispose). */
  _handle(op: string): object {
    const h = this.storage?.handle;
    if (!h) {
      if (this.storage?.data) throw new TypeError(`${op}: internal: tensor #${this.id} is on the CPU, not on a CUDA device`);
      throw new TsmDisposedError(`${op}: tensor #${this.id} of shape [${this.shape.join(', ')}] was used after dispose()`);
    }
    return h;
  }

  /** @internal float32 data (throws a TypeError naming op for int32 tensors). */
  _f32(op: string, name = 'input'): Float32Array {
    const d = this._live(op);
    if (!(d instanceof Float32Array))
      throw new TypeError(`${op}: ${name} must be a float32 tensor, got ${this.dtype}`);
    return d;
  }

  /** @internal A tensor sharing this one's storage with another shape (same element count). */
  _view(shape: readonly number[]): Tensor {
    return new Tensor(null, shape, this.dtype, this._storage(''));
  }

  /** @internal Whether other tensors (views, a deferred op) hold this one's storage too. */
  _storageShared(): boolean {
    return (this.storage?.refs ?? 0) > 1;
  }

  /** @internal The storage (TsmDisposedError naming `op` after dispose). */
  _storage(op: string): Storage {
    const s = this.storage;
    if (s === null || !s.alive) throw new TsmDisposedError(`${op ? `${op}: ` : ''}tensor #${this.id} was used after dispose()`);
    return s;
  }

  /**
   * @internal The elements `op` was deferred from when this tensor (or the tensor it views) is a
   * deferred `op` whose data nothing has read yet (see deferredF32); null otherwise.
   */
  _deferredSource(op: string): Float32Array | null {
    return this.storage?.deferredSource(op) ?? null;
  }

  /**
   * @internal The `info` of this tensor's storage when it is a deferred `op` not computed yet, or
   * with `outer`, of the source of a deferred `outer` (a ReLU of a deferred convolution); null
   * otherwise. Computes nothing.
   */
  _deferredInfo(op: string, outer?: string): unknown {
    const s = outer === undefined ? this.storage : this.storage?.deferredSourceStorage(outer);
    return s?.deferredInfo(op) ?? null;
  }

  /**
   * @internal Replaces this tensor's storage with `t`'s (same shape and dtype), keeping its identity,
   * gradient and autograd flags: how Module.to() moves parameters between devices in place. `t` is
   * disposed; views made before keep the old storage.
   */
  _adoptStorage(t: Tensor): void {
    const s = t.storage;
    if (!s || !this.storage) throw new TsmDisposedError(`tensor #${this.id} was used after dispose()`);
    s.retain();
    if (this.fin === FIN_REGISTERED) finalizer.unregister(this);
    this.storage.release();
    this.storage = s;
    (this as { device: Device }).device = s.device;
    this.fin = FIN_REGISTERED;  // a queued entry of this tensor is skipped by its flush
    finalizer.register(this, s.ledger, this);
    t.dispose();
  }

  /** @internal Registers a queued tensor with the garbage collector's backstop (see flushFinalizers). */
  _registerFinalizer(): void {
    if (this.fin !== FIN_QUEUED || !this.storage) return;
    this.fin = FIN_REGISTERED;
    finalizer.register(this, this.storage.ledger, this);
  }

  /** True after `dispose()` (any further use throws TsmDisposedError). */
  get isDisposed(): boolean {
    const s = this.storage;
    return s === null || !s.alive;
  }
  /** Number of elements (product of the shape; 1 for a 0-d tensor). */
  get size(): number {
    return sizeOf(this.shape);
  }
  /** Number of dims (`shape.length`). */
  get ndim(): number {
    return this.shape.length;
  }
  /** True for a tensor not produced by a recorded op (created directly, or under noGrad). */
  get isLeaf(): boolean {
    return this._node === null;
  }

  /** Releases this tensor's storage (shared storage is freed when its last view goes). */
  dispose(): void {
    if (!this.storage) return;
    if (this.fin === FIN_REGISTERED) finalizer.unregister(this);
    this.fin = FIN_NONE;
    memoryState.tensors--;
    this.storage.release();
    this.storage = null;
    // The autograd node stays: a graph through a disposed tensor fails loudly in backward()
    // (TsmDisposedError) instead of being cut silently.
    for (const s of scopes) s.delete(this);
  }

  // ---- data access ----
  /** @internal A host copy of the elements (a download, after all queued work, for a CUDA tensor). */
  _download(op: string): TypedArray {
    const s = this.storage;
    if (s?.data) return s.data.slice() as TypedArray;
    const h = this._handle(op);
    const out = this.dtype === 'int32' ? new Int32Array(this.size) : is16(this.dtype) ? new Uint16Array(this.size) : new Float32Array(this.size);
    return deviceDownload(this.device, h, out) as TypedArray;
  }
  /** @internal The element values on the host: the array itself for a CPU float32/int32 tensor, else a new one. */
  _values(op: string): Float32Array | Int32Array {
    const d = this.device !== 'cpu' ? this._download(op) : this._live(op);
    return is16(this.dtype) ? decode16(this.dtype, d as unknown as Uint16Array) : d;
  }
  /**
   * The elements as a new typed array (a copy; from a CUDA device, it waits for the queued work):
   * Float32Array for float32, Int32Array for int32, and a Float32Array of the values (exact) for
   * bfloat16/float16.
   */
  dataSync(): TypedArray {
    if (is16(this.dtype)) return this._values('dataSync');
    if (this.device !== 'cpu') return this._download('dataSync');
    return this._live('dataSync').slice();
  }
  /** The elements, asynchronously (resolves on the next tick; a CUDA tensor is copied back first). */
  async data(): Promise<TypedArray> {
    const d = this.dataSync();
    await new Promise<void>((r) => setImmediate(r));
    return d;
  }
  /** Nested arrays (a number for a 0-d tensor). */
  toArray(): NestedArray {
    const d = this._values('toArray');
    const shape = this.shape;
    if (shape.length === 0) return d[0];
    const build = (dim: number, offset: number): NestedArray[] => {
      const out: NestedArray[] = [];
      const stride = sizeOf(shape.slice(dim + 1));
      for (let i = 0; i < shape[dim]; i++)
        out.push(dim === shape.length - 1 ? d[offset + i] : build(dim + 1, offset + i * stride));
      return out;
    };
    return build(0, 0);
  }
  /** The value of a one-element tensor. */
  item(): number {
    if (this.device !== 'cpu') {
      if (this.isDisposed) this._handle('item');
      if (this.size !== 1) throw new RangeError(`item: expected a tensor with one element, got shape [${this.shape.join(', ')}]`);
      return this._values('item')[0];
    }
    const d = is16(this.dtype) ? this._values('item') : this._live('item');
    if (this.size !== 1) throw new RangeError(`item: expected a tensor with one element, got shape [${this.shape.join(', ')}]`);
    return d[0];
  }

  /** A summary such as `Tensor(shape=[2, 3], dtype=float32)` (and the device when not the CPU); the values are not printed. */
  toString(): string {
    const dev = this.device === 'cpu' ? '' : `, device=${this.device}`;
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}${dev}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- autograd ----
  /**
   * Turns gradient recording on or off in place and returns `this`. TypeError for a non-float32 tensor;
   * RangeError when turning it off on a non-leaf (use `detach()`).
   */
  requiresGrad_(value = true): this {
    if (value && this.dtype !== 'float32') throw new TypeError(`requiresGrad_: only float32 tensors can require gradients, got ${this.dtype}`);
    if (!value && this._node) throw new RangeError('requiresGrad_: cannot turn off gradients of a non-leaf tensor; use detach()');
    this.requiresGrad = value;
    return this;
  }
  /** Back-propagates from this tensor; a non-scalar needs an explicit gradient of its shape. */
  backward(gradient?: Tensor): void {
    ops.backward(this, gradient);
  }
  /** A tensor sharing the data, cut from the graph. */
  detach(): Tensor {
    return this._view(this.shape);
  }
  /** A copy with its own storage (differentiable). */
  clone(): Tensor {
    return ops.clone(this);
  }
  /** Moves to a device (`'cpu'`, `'cuda'`, `'cuda:N'`) or converts to a dtype, see {@link to}. */
  to(target: Device | DType): Tensor {
    return ops.to(this, target);
  }
  /** `to(device)` with `device` defaulting to `'cuda'` (the current CUDA device); `this` when already there. */
  cuda(device: Device = 'cuda'): Tensor {
    if (typeof device !== 'string' || !device.startsWith('cuda'))
      throw new TypeError(`cuda: device must be 'cuda' or 'cuda:N', got ${describe(device)}`);
    return ops.to(this, device);
  }
  /** `to('cpu')`: a copy on the CPU, or `this` when already there. */
  cpu(): Tensor {
    return ops.to(this, 'cpu');
  }
  /** Returns `this`: tensors are always contiguous. */
  contiguous(): Tensor {
    return this;
  }

  // ---- elementwise ----
  /** `this + o`, broadcasting (see {@link add}); sub, mul, div, pow, maximum and minimum are alike. */
  add(o: Tensor | number): Tensor { return ops.add(this, o); }
  /** `this - o`, broadcasting. */
  sub(o: Tensor | number): Tensor { return ops.sub(this, o); }
  /** `this * o` element-wise, broadcasting. */
  mul(o: Tensor | number): Tensor { return ops.mul(this, o); }
  /** `this / o` element-wise, broadcasting. */
  div(o: Tensor | number): Tensor { return ops.div(this, o); }
  /** `this ** o` element-wise, broadcasting. */
  pow(o: Tensor | number): Tensor { return ops.pow(this, o); }
  /** Element-wise max, broadcasting. */
  maximum(o: Tensor | number): Tensor { return ops.maximum(this, o); }
  /** Element-wise min, broadcasting. */
  minimum(o: Tensor | number): Tensor { return ops.minimum(this, o); }
  /** `this == o` as float32 1/0 (not differentiable); ne, lt, le, gt and ge are alike. */
  eq(o: Tensor | number): Tensor { return ops.eq(this, o); }
  /** `this != o` as float32 1/0. */
  ne(o: Tensor | number): Tensor { return ops.ne(this, o); }
  /** `this < o` as float32 1/0. */
  lt(o: Tensor | number): Tensor { return ops.lt(this, o); }
  /** `this <= o` as float32 1/0. */
  le(o: Tensor | number): Tensor { return ops.le(this, o); }
  /** `this > o` as float32 1/0. */
  gt(o: Tensor | number): Tensor { return ops.gt(this, o); }
  /** `this >= o` as float32 1/0. */
  ge(o: Tensor | number): Tensor { return ops.ge(this, o); }
  /** Element-wise -x. */
  neg(): Tensor { return ops.neg(this); }
  /** Element-wise e^x. */
  exp(): Tensor { return ops.exp(this); }
  /** Element-wise natural logarithm. */
  log(): Tensor { return ops.log(this); }
  /** Element-wise square root. */
  sqrt(): Tensor { return ops.sqrt(this); }
  /** Element-wise |x|. */
  abs(): Tensor { return ops.abs(this); }
  /** Element-wise x^2. */
  square(): Tensor { return ops.square(this); }
  /** Element-wise max(x, 0). */
  relu(): Tensor { return ops.relu(this); }
  /** Element-wise 1 / (1 + e^-x). */
  sigmoid(): Tensor { return ops.sigmoid(this); }
  /** Element-wise hyperbolic tangent. */
  tanh(): Tensor { return ops.tanh(this); }
  /** GELU; `'tanh'` for the tanh approximation. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor { return ops.gelu(this, approximate); }
  /** Clamps values to [min, max]; a null/undefined bound is open. */
  clamp(min?: number | null, max?: number | null): Tensor { return ops.clamp(this, min, max); }

  // ---- reductions ----
  /** Sum over `dim` (one, several, or all when omitted); `keepdim` keeps size-1 dims. */
  sum(dim?: number | number[] | null, keepdim = false): Tensor { return ops.sum(this, dim, keepdim); }
  /** Mean over `dim` (one, several, or all when omitted); `keepdim` keeps size-1 dims. */
  mean(dim?: number | number[] | null, keepdim = false): Tensor { return ops.mean(this, dim, keepdim); }
  /** Max values over `dim` (all elements when omitted); indices via `argmax`. */
  max(dim?: number | null, keepdim = false): Tensor { return ops.max(this, dim, keepdim); }
  /** Min values over `dim` (all elements when omitted); indices via `argmin`. */
  min(dim?: number | null, keepdim = false): Tensor { return ops.min(this, dim, keepdim); }
  /** int32 indices of the max along `dim` (of the flattened tensor when omitted). */
  argmax(dim?: number | null, keepdim = false): Tensor { return ops.argmax(this, dim, keepdim); }
  /** int32 indices of the min along `dim` (of the flattened tensor when omitted). */
  argmin(dim?: number | null, keepdim = false): Tensor { return ops.argmin(this, dim, keepdim); }
  /** Softmax along `dim`. */
  softmax(dim: number): Tensor { return ops.softmax(this, dim); }
  /** log(softmax) along `dim`, computed stably. */
  logSoftmax(dim: number): Tensor { return ops.logSoftmax(this, dim); }

  // ---- linear algebra ----
  /** Matrix product with NumPy semantics (1-d, 2-d, batched), see {@link matmul}. */
  matmul(o: Tensor): Tensor { return ops.matmul(this, o); }

  // ---- shape ----
  /** New shape sharing the data; sizes as arguments or one array, one may be -1. */
  reshape(...shape: (number | number[])[]): Tensor { return ops.reshape(this, flatArgs(shape)); }
  /** Same as `reshape` (PyTorch name). */
  view(...shape: (number | number[])[]): Tensor { return ops.reshape(this, flatArgs(shape)); }
  /** Merges dims startDim..endDim (default all) into one. */
  flatten(startDim = 0, endDim = -1): Tensor { return ops.flatten(this, startDim, endDim); }
  /** Removes size-1 dims (all, or only `dim`). */
  squeeze(dim?: number): Tensor { return ops.squeeze(this, dim); }
  /** Inserts a size-1 dim at `dim`. */
  unsqueeze(dim: number): Tensor { return ops.unsqueeze(this, dim); }
  /** Swaps two dims (default the last two). */
  transpose(dim0 = -2, dim1 = -1): Tensor { return ops.transpose(this, dim0, dim1); }
  /** Reorders dims; given as arguments or one array. */
  permute(...dims: (number | number[])[]): Tensor { return ops.permute(this, flatArgs(dims)); }
  /** Broadcasts size-1 dims to `shape` (-1 keeps a dim); given as arguments or one array. */
  expand(...shape: (number | number[])[]): Tensor { return ops.expand(this, flatArgs(shape)); }
  /** Elements start..end (exclusive) with `step` along `dim`, see {@link slice}. */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor { return ops.slice(this, dim, start, end, step); }
  /** Values picked along `dim` by an int32 index tensor, as `torch.gather`. */
  gather(dim: number, index: Tensor): Tensor { return ops.gather(this, dim, index); }
  /** Rows (dim 0) selected by int32 indices, as `torch.index_select(x, 0, indices)`. */
  index(indices: Tensor | number[]): Tensor { return ops.indexSelect(this, 0, indices); }
  /** `cond ? this : other` element-wise, broadcasting. */
  where(cond: Tensor, other: Tensor | number): Tensor { return ops.where(cond, this, other); }

  /** Concatenates along an existing dim, see {@link cat}. */
  static cat(tensors: Tensor[], dim = 0): Tensor { return ops.cat(tensors, dim); }
  /** Stacks same-shape tensors along a new dim, see {@link stack}. */
  static stack(tensors: Tensor[], dim = 0): Tensor { return ops.stack(tensors, dim); }
}

function flatArgs(args: (number | number[])[]): number[] {
  if (args.length === 1 && Array.isArray(args[0])) return args[0].slice();
  return args as number[];
}

/**
 * @internal Creates a tensor over freshly allocated or given data (no copy). A Uint16Array holds the
 * bits of `dtype` ('bfloat16' or 'float16', required then).
 */
export function fromData(data: TypedArray | Uint16Array, shape: readonly number[], dtype?: DType): Tensor {
  if (data instanceof Uint16Array) {
    if (dtype === undefined || !is16(dtype)) throw new TypeError(`internal: a Uint16Array needs dtype 'bfloat16' or 'float16', got ${dtype}`);
    return new Tensor(data, shape, dtype);
  }
  return new Tensor(data, shape, data instanceof Int32Array ? 'int32' : 'float32');
}

/** @internal Creates a tensor over a device buffer handle of `bytes` bytes on `device` (takes ownership). */
export function fromDevice(handle: object, bytes: number, shape: readonly number[], dtype: DType, device: Device): Tensor {
  return new Tensor(null, shape, dtype, new Storage(null, device, handle, bytes));
}
