// tsm.autocast: mixed precision as torch.autocast. Inside the region, on CUDA tensors,
//   matmul / F.linear (nn.Linear)          -> tsm_cuda_gemm_ex with bfloat16/float16 A and B, float32 accumulation
//   F.scaledDotProductAttention            -> the fused attention kernel in bfloat16/float16 (float32 accumulation)
// run on 16-bit copies of their float32 operands and return float32. Everything else (elementwise
// ops, reductions, softmax, losses, norms, conv2d) runs in float32 as before.
//
// Differences from PyTorch, on purpose:
//  - Results are float32, not the 16-bit dtype: the GEMM/attention accumulates in float32 and its
//    output is not rounded (better numerics; activations take float32 memory). There are no 16-bit
//    elementwise kernels, so the rest of the network keeps seeing float32.
//  - conv2d stays float32 (the CUDA convolution is im2col + the float32 SIMT GEMM; a 16-bit path
//    needs an implicit-GEMM conv on tensor cores).
//  - linear's bias is added in float32 in the GEMM epilogue (PyTorch adds a 16-bit bias).
//  - deviceType 'cpu' is accepted and reported (isAutocastEnabled('cpu')) but changes nothing: CPU ops
//    stay float32 (no 16-bit CPU kernels yet).
//  - The state follows the async context (AsyncLocalStorage), not the thread: an async fn keeps the
//    region across its awaits, code running concurrently outside fn does not see it.
//
// Autograd: each op records one node on its float32 inputs (op 'autocast', backward kept here), so
// gradients reach float32 master weights as float32. The backward GEMMs also take 16-bit operands:
// dy is cast to the region's dtype, the saved 16-bit copies of the inputs are reused, and the
// products accumulate and come out in float32 (PyTorch's autocast backward runs in the low precision too).
//
// Weight-cast cache (as PyTorch): the 16-bit copy of a leaf tensor that requires grad (a parameter)
// is made once per outermost region and reused by every op in it; it is freed when the outermost
// region ends (nodes that saved it keep their own reference until backward frees them).
import { AsyncLocalStorage } from 'node:async_hooks';
import { record } from './autograd';
import { describe } from './check';
import * as cu from './cuda-tensor';
import type { Device } from './device';
import type { Node } from './autograd';
import * as ops from './ops';
import { keep, noGrad, sizeOf, Tensor } from './tensor';

/** The low-precision dtypes of autocast. */
export type AutocastDtype = 'bfloat16' | 'float16';
/** PyTorch's device_type: which device's ops the region affects. */
export type AutocastDeviceType = 'cuda' | 'cpu';

/** Options of {@link autocast}. */
export interface AutocastOptions {
  /** Low-precision dtype: 'bfloat16' or 'float16' (default 'float16' for cuda, 'bfloat16' for cpu, as PyTorch). */
  dtype?: AutocastDtype;
  /** Default 'cuda'. 'cpu' is accepted but a no-op for now (CPU ops stay float32). */
  deviceType?: AutocastDeviceType;
  /** Default true; false turns autocast off for `deviceType` inside fn (e.g. nested in an enabled region). */
  enabled?: boolean;
  /** Default true: reuse the 16-bit copy of each parameter inside the region (PyTorch's cache_enabled). */
  cacheEnabled?: boolean;
}

interface DeviceState {
  enabled: boolean;
  dtype: AutocastDtype;
}

interface Region {
  cuda: DeviceState;
  cpu: DeviceState;
  cacheEnabled: boolean;
  /** Shared by nested regions; cleared when the outermost one ends. */
  cache: Map<Tensor, Partial<Record<AutocastDtype, Tensor>>>;
}

const als = new AsyncLocalStorage<Region>();
/** Regions entered and not yet left, in any async context: a fast "never used" test for the ops. */
let active = 0;

const DEFAULT_DTYPE: Record<AutocastDeviceType, AutocastDtype> = { cuda: 'float16', cpu: 'bfloat16' };

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * Runs fn with mixed precision for `deviceType` (PyTorch's `with torch.autocast(device_type, dtype)`):
 * on CUDA tensors, matmul, F.linear (nn.Linear, attention projections) and F.scaledDotProductAttention
 * run on bfloat16/float16 copies of their float32 operands with float32 accumulation, and return
 * float32; everything else stays float32. Gradients flow to the float32 tensors (backward() may run
 * inside or after the region: the backward of these ops is 16-bit either way). Regions nest; an inner
 * region overrides dtype/enabled for its device type until it ends. An async fn keeps the region
 * across its awaits (the returned promise settles, then the region ends); code running concurrently
 * outside fn is not affected. deviceType 'cpu' is a no-op for now (CPU ops stay float32).
 * @example
 * ```ts
 * const loss = tsm.autocast({ dtype: 'bfloat16' }, () => F.crossEntropy(model.forward(x), y));
 * loss.backward();          // float32 gradients on the float32 parameters
 * ```
 */
export function autocast<T>(opts: AutocastOptions, fn: () => T): T {
  const op = 'autocast';
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
  if (typeof fn !== 'function') throw new TypeError(`${op}: fn must be a function, got ${describe(fn)}`);
  const deviceType = opts.deviceType ?? 'cuda';
  if (deviceType !== 'cuda' && deviceType !== 'cpu')
    throw new TypeError(`${op}: deviceType must be 'cuda' or 'cpu', got ${describe(deviceType)}`);
  const dtype = opts.dtype ?? DEFAULT_DTYPE[deviceType];
  if (dtype !== 'bfloat16' && dtype !== 'float16')
    throw new TypeError(`${op}: dtype must be 'bfloat16' or 'float16', got ${describe(dtype)}`);
  const enabled = opts.enabled ?? true;
  if (typeof enabled !== 'boolean') throw new TypeError(`${op}: enabled must be a boolean, got ${describe(enabled)}`);
  const cacheEnabled = opts.cacheEnabled ?? true;
  if (typeof cacheEnabled !== 'boolean') throw new TypeError(`${op}: cacheEnabled must be a boolean, got ${describe(cacheEnabled)}`);

  const parent = als.getStore();
  const region: Region = {
    cuda: parent ? { ...parent.cuda } : { enabled: false, dtype: DEFAULT_DTYPE.cuda },
    cpu: parent ? { ...parent.cpu } : { enabled: false, dtype: DEFAULT_DTYPE.cpu },
    cacheEnabled,
    cache: parent ? parent.cache : new Map(),
  };
  region[deviceType] = { enabled, dtype };
  const outermost = parent === undefined;
  let left = false;
  const leave = () => {
    if (left) return;
    left = true;
    active--;
    if (outermost) clearCache(region.cache);
  };
  active++;
  let result: T;
  try {
    result = als.run(region, fn);
  } catch (e) {
    leave();
    throw e;
  }
  if (isThenable(result)) {
    return (result as PromiseLike<unknown>).then(
      (v) => { leave(); return v; },
      (e) => { leave(); throw e; },
    ) as T;
  }
  leave();
  return result;
}

function clearCache(cache: Region['cache']): void {
  for (const byType of cache.values()) for (const t of Object.values(byType)) t?.dispose();
  cache.clear();
}

/** Whether autocast is on for `deviceType` (default 'cuda') here, as torch.is_autocast_enabled. */
export function isAutocastEnabled(deviceType: AutocastDeviceType = 'cuda'): boolean {
  if (deviceType !== 'cuda' && deviceType !== 'cpu')
    throw new TypeError(`isAutocastEnabled: deviceType must be 'cuda' or 'cpu', got ${describe(deviceType)}`);
  return als.getStore()?.[deviceType].enabled ?? false;
}

/** The dtype autocast uses for `deviceType` here (its default outside any region), as torch.get_autocast_dtype. */
export function getAutocastDtype(deviceType: AutocastDeviceType = 'cuda'): AutocastDtype {
  if (deviceType !== 'cuda' && deviceType !== 'cpu')
    throw new TypeError(`getAutocastDtype: deviceType must be 'cuda' or 'cpu', got ${describe(deviceType)}`);
  return als.getStore()?.[deviceType].dtype ?? DEFAULT_DTYPE[deviceType];
}

/** @internal The dtype ops on `device` run in here, or null (no region, disabled, or the CPU). */
export function autocastDtype(device: Device): AutocastDtype | null {
  if (active === 0 || device === 'cpu') return null;
  const r = als.getStore();
  return r && r.cuda.enabled ? r.cuda.dtype : null;
}

// ---------------------------------------------------------------------------------------------
// the ops

const GEMM_TYPE: Record<AutocastDtype, number> = { bfloat16: 2, float16: 3 };

/**
 * A 16-bit copy of the float32 CUDA tensor t that the caller owns (dispose it): from the region's
 * cache for a leaf that requires grad (a view of the cached copy), else a fresh cast.
 */
function cast16(t: Tensor, dt: AutocastDtype): Tensor {
  const r = als.getStore();
  if (r && r.cacheEnabled && t.isLeaf && t.requiresGrad) {
    let byType = r.cache.get(t);
    if (!byType) r.cache.set(t, (byType = {}));
    let c = byType[dt];
    if (!c || c.isDisposed) byType[dt] = c = keep(cu.cast(t, dt));
    return c._view(c.shape);
  }
  return cu.cast(t, dt);
}

type GradRule = (dy: Tensor, node: Node) => (Tensor | null)[];

function gemm(dt: AutocastDtype, g: Omit<cu.GemmCall, 'type' | 'strideA' | 'strideB' | 'strideC' | 'batch'> &
  Partial<Pick<cu.GemmCall, 'strideA' | 'strideB' | 'strideC' | 'batch'>>, op: string): void {
  cu.gemmInto({ batch: 1, strideA: 0, strideB: 0, strideC: 0, ...g, type: GEMM_TYPE[dt] }, op);
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * @internal matmul of float32 CUDA tensors inside autocast (ops.matmul has validated them); null
 * for empty products (the float32 path handles those).
 */
export function autocastMatmul(a: Tensor, b: Tensor, dt: AutocastDtype): Tensor | null {
  const op = 'matmul';
  const aShape = a.ndim === 1 ? [1, a.shape[0]] : a.shape.slice();
  const bShape = b.ndim === 1 ? [b.shape[0], 1] : b.shape.slice();
  const m = aShape[aShape.length - 2], k = aShape[aShape.length - 1], n = bShape[bShape.length - 1];
  const batchA = aShape.slice(0, -2), batchB = bShape.slice(0, -2);
  const batch = ops.broadcastShapes(op, batchA, batchB);
  const outShape = [...batch, m, n];
  if (sizeOf(outShape) === 0 || k === 0) return null;
  const nb = sizeOf(batch);
  const oneA = sizeOf(batchA) === 1, oneB = sizeOf(batchB) === 1;
  // 16-bit operands holding one matrix or the full batch (a partial broadcast is expanded in float32 first).
  const operand = (t: Tensor, shape: number[], tb: number[], one: boolean, r: number, c: number): Tensor => {
    if (one || sameShape(tb, batch)) return cast16(t, dt);
    const e = noGrad(() => ops.expand(t._view(shape), [...batch, r, c]));
    const h = cu.cast(e, dt);
    e.dispose();
    return h;
  };
  const A16 = operand(a, aShape, batchA, oneA, m, k);
  const B16 = operand(b, bShape, batchB, oneB, k, n);
  const sa = oneA && nb > 1 ? 0 : m * k;
  const sb = oneB && nb > 1 ? 0 : k * n;
  const y = cu.empty(outShape, a.device);
  if (sa !== 0 && sb === 0) {
    // (B, m, k) @ (k, n): one GEMM with B*m rows.
    gemm(dt, { transA: false, transB: false, m: nb * m, n, k, a: A16, lda: k, b: B16, ldb: n, c: y, ldc: n }, op);
  } else {
    gemm(dt, { transA: false, transB: false, batch: nb, m, n, k, a: A16, lda: k, strideA: sa, b: B16, ldb: n,
      strideB: sb, c: y, ldc: n, strideC: m * n }, op);
  }
  const out = ops.dropMatmulVectorDims(a, b, y, outShape);
  const backward: GradRule = (dy) => {
    const bop = 'backward';
    const g16 = cu.cast(dy, dt); // (batch..., m, n) contiguous
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (a.requiresGrad) {
      // dA = dY B^T, (batch..., m, k); summed over broadcast batch dims.
      const full = cu.empty([...batch, m, k], dy.device);
      if (sb === 0) {
        gemm(dt, { transA: false, transB: true, m: nb * m, n: k, k: n, a: g16, lda: n, b: B16, ldb: n, c: full, ldc: k }, bop);
      } else {
        gemm(dt, { transA: false, transB: true, batch: nb, m, n: k, k: n, a: g16, lda: n, strideA: m * n, b: B16, ldb: n,
          strideB: sb, c: full, ldc: k, strideC: m * k }, bop);
      }
      ga = reduceTo(full, aShape, a.shape);
    }
    if (b.requiresGrad) {
      if (sa !== 0 && sb === 0) {
        // B shared by the batch: dB = sum_i A_i^T dY_i = [A_1; ...]^T [dY_1; ...], one GEMM over B*m rows.
        const gbm = cu.empty([k, n], dy.device);
        gemm(dt, { transA: true, transB: false, m: k, n, k: nb * m, a: A16, lda: k, b: g16, ldb: n, c: gbm, ldc: n }, bop);
        gb = gbm._view(b.shape);
        gbm.dispose();
      } else {
        const full = cu.empty([...batch, k, n], dy.device);
        gemm(dt, { transA: true, transB: false, batch: nb, m: k, n, k: m, a: A16, lda: k, strideA: sa, b: g16, ldb: n,
          strideB: m * n, c: full, ldc: n, strideC: k * n }, bop);
        gb = reduceTo(full, bShape, b.shape);
      }
    }
    g16.dispose();
    return [ga, gb];
  };
  return record(out, 'autocast', [a, b], { backward, op }, [A16, B16]);
}

/** full summed down to `shape` (broadcast dims), viewed as `finalShape`; consumes full. */
function reduceTo(full: Tensor, shape: number[], finalShape: readonly number[]): Tensor {
  const r = ops.sumTo(full, shape);
  if (r !== full) full.dispose();
  const v = r._view(finalShape);
  r.dispose();
  return v;
}

/** @internal F.linear of float32 CUDA tensors inside autocast (validated by ops.linear); null when empty. */
export function autocastLinear(x: Tensor, w: Tensor, b: Tensor | null, dt: AutocastDtype): Tensor | null {
  const op = 'linear';
  const [outF, inF] = w.shape;
  const rows = x.size / Math.max(inF, 1);
  if (rows === 0 || outF === 0 || inF === 0) return null;
  const outShape = [...x.shape.slice(0, -1), outF];
  const x16 = cast16(x, dt), w16 = cast16(w, dt);
  const y = cu.empty(outShape, x.device);
  gemm(dt, { transA: false, transB: true, m: rows, n: outF, k: inF, a: x16, lda: inF, b: w16, ldb: inF, c: y, ldc: outF,
    bias: b }, op);
  const backward: GradRule = (dy) => {
    const bop = 'backward';
    const g16 = cu.cast(dy, dt);
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
    if (x.requiresGrad) {
      gx = cu.empty(x.shape, dy.device);
      gemm(dt, { transA: false, transB: false, m: rows, n: inF, k: outF, a: g16, lda: outF, b: w16, ldb: inF, c: gx,
        ldc: inF }, bop);
    }
    if (w.requiresGrad) {
      gw = cu.empty(w.shape, dy.device);
      gemm(dt, { transA: true, transB: false, m: outF, n: inF, k: rows, a: g16, lda: outF, b: x16, ldb: inF, c: gw,
        ldc: inF }, bop);
    }
    g16.dispose();
    if (b && b.requiresGrad) {
      // The bias gradient is a float32 sum of dy over the rows.
      const d2 = dy._view([rows, outF]);
      const s = cu.sumKeep(d2, [0], 1, bop);
      d2.dispose();
      gb = s._view([outF]);
      s.dispose();
    }
    return [gx, gw, gb];
  };
  return record(y, 'autocast', [x, w, b], { backward, op }, [x16, w16]);
}

/**
 * @internal F.scaledDotProductAttention of float32 CUDA tensors inside autocast: the fused kernel
 * in 16 bits. null when this path does not apply (validation errors, attnMask, dropout, head dim >
 * 256, empty tensors): the float32 path then validates and runs (or explains).
 */
export function autocastAttention(q: unknown, k: unknown, v: unknown, opts: unknown, dt: AutocastDtype): Tensor | null {
  const op = 'scaledDotProductAttention';
  const all = [q, k, v];
  if (!all.every((t) => t instanceof Tensor && !t.isDisposed && t.dtype === 'float32' && (t.ndim === 3 || t.ndim === 4)))
    return null;
  const [Q, K, V] = all as Tensor[];
  if (K.device !== Q.device || V.device !== Q.device || K.ndim !== Q.ndim || V.ndim !== Q.ndim) return null;
  const o = (opts ?? {}) as { attnMask?: unknown; dropoutP?: unknown; isCausal?: unknown; scale?: unknown };
  if (typeof o !== 'object') return null;
  if ((o.attnMask !== undefined && o.attnMask !== null) || (o.dropoutP !== undefined && o.dropoutP !== 0)) return null;
  const isCausal = o.isCausal ?? false;
  if (typeof isCausal !== 'boolean') return null;
  const four = (t: Tensor) => (t.ndim === 4 ? t.shape.slice() : [t.shape[0], 1, t.shape[1], t.shape[2]]);
  const [B, H, Lq, D] = four(Q), [Bk, Hk, Lk, Dk] = four(K), [Bv, Hv, Lv, Dv] = four(V);
  if (Bk !== B || Hk !== H || Dk !== D || Bv !== B || Hv !== H || Lv !== Lk || Dv !== D) return null;
  if (D < 1 || D > 256 || B * H * Lq === 0 || Lk === 0) return null;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) return null;
  const code = cu.CUDA_DTYPE[dt];
  const q16 = cast16(Q, dt), k16 = cast16(K, dt), v16 = cast16(V, dt);
  const o16 = cu.empty(Q.shape, Q.device, dt);
  const lse = cu.empty([B, H, Lq], Q.device);
  const h = (t: Tensor) => t._handle(op);
  cu.cudaCallAttention((a) => a.cudaAttentionForward(h(o16), h(lse), h(q16), h(k16), h(v16), null, B, H, Lq, Lk, D, code,
    scale, isCausal, 0));
  const y = cu.cast(o16, 'float32');
  const backward: GradRule = (dy) => {
    const bop = 'backward';
    const hb = (t: Tensor) => t._handle(bop);
    const d16 = cu.cast(dy, dt);
    const dq = cu.empty(Q.shape, Q.device, dt), dk = cu.empty(K.shape, Q.device, dt), dv = cu.empty(V.shape, Q.device, dt);
    cu.cudaCallAttention((a) => a.cudaAttentionBackward(hb(dq), hb(dk), hb(dv), hb(d16), hb(q16), hb(k16), hb(v16),
      hb(o16), hb(lse), null, B, H, Lq, Lk, D, code, scale, isCausal, 0));
    d16.dispose();
    return [dq, dk, dv].map((g, i) => {
      const r = all[i] as Tensor;
      const out = r.requiresGrad ? cu.cast(g, 'float32') : null;
      g.dispose();
      return out;
    });
  };
  return record(y, 'autocast', [Q, K, V], { backward, op }, [q16, k16, v16, o16, lse]);
}

