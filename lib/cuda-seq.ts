// The CUDA side of the sequence-model ops: thin wrappers over the kernels of cuda/lstm.cu and
// cuda/index.cu (bound in cpp/binding/ops_cuda_seq.cpp). lib/lstm.ts, lib/ops.ts and
// lib/gradients.ts validate and call these when their tensors are on a CUDA device. Results are new
// device tensors (lib/cuda-tensor's empty), queued asynchronously on the device's stream.
import * as cu from './cuda-tensor';
import { cudaCall, type TensorAddon } from './device';
import type { Shape, Tensor } from './tensor';

type Handle = object;

/** The entry points of cpp/binding/ops_cuda_seq.cpp (sizes in elements). */
export interface CudaSeqAddon {
  /** packed (T*B + 2B, H) = [y rows; h_n; c_n]; gates (T*B, 4H), cs (T*B, H) saved for the backward. */
  cudaLstmForward(packed: Handle, gates: Handle, cs: Handle, x: Handle, h0: Handle | null, c0: Handle | null, wIh: Handle,
                  wHh: Handle, bIh: Handle | null, bHh: Handle | null, T: number, B: number, I: number, H: number,
                  batchFirst: boolean): void;
  /** dPacked like packed (dy, dh_n, dc_n); gradients not wanted are null. */
  cudaLstmBackward(dx: Handle | null, dh0: Handle | null, dc0: Handle | null, dwIh: Handle | null, dwHh: Handle | null,
                   dbIh: Handle | null, dbHh: Handle | null, dPacked: Handle, x: Handle, h0: Handle | null,
                   c0: Handle | null, wIh: Handle, wHh: Handle, packed: Handle, gates: Handle, cs: Handle, T: number,
                   B: number, I: number, H: number, batchFirst: boolean): void;
  cudaGather(out: Handle, x: Handle, index: Handle, xShape: number[], indexShape: number[], dim: number): void;
  cudaGatherBackward(dx: Handle, dy: Handle, index: Handle, xShape: number[], indexShape: number[], dim: number): void;
  cudaIndexSelect(out: Handle, x: Handle, index: Handle, outer: number, n: number, k: number, inner: number): void;
  cudaIndexSelectBackward(dx: Handle, dy: Handle, rowStart: Handle, positions: Handle, outer: number, n: number,
                          k: number, inner: number): void;
  cudaWhere(out: Handle, cond: Handle, condIsInt: boolean, a: Handle, b: Handle, shape: number[], condStrides: number[],
            aStrides: number[], bStrides: number[]): void;
}

const call = <T>(fn: (a: TensorAddon & CudaSeqAddon) => T): T => cudaCall((a) => fn(a as TensorAddon & CudaSeqAddon));
const h = (t: Tensor, op: string): Handle => t._handle(op);
const hn = (t: Tensor | null, op: string): Handle | null => (t ? t._handle(op) : null);

// ---- LSTM ----

export interface LstmSizes {
  T: number;
  B: number;
  I: number;
  H: number;
  batchFirst: boolean;
}

/** One layer over the sequence: packed (T*B + 2B, H) = [y; h_n; c_n], and the saved gates and cs. */
export function lstmForward(x: Tensor, h0: Tensor | null, c0: Tensor | null, wIh: Tensor, wHh: Tensor, bIh: Tensor | null,
                            bHh: Tensor | null, s: LstmSizes, op: string): { packed: Tensor; gates: Tensor; cs: Tensor } {
  const dev = x.device;
  const packed = cu.empty([s.T * s.B + 2 * s.B, s.H], dev);
  const gates = cu.empty([s.T * s.B, 4 * s.H], dev);
  const cs = cu.empty([s.T * s.B, s.H], dev);
  call((a) => a.cudaLstmForward(h(packed, op), h(gates, op), h(cs, op), h(x, op), hn(h0, op), hn(c0, op), h(wIh, op),
    h(wHh, op), hn(bIh, op), hn(bHh, op), s.T, s.B, s.I, s.H, s.batchFirst));
  return { packed, gates, cs };
}

/** Gradients (each a new device tensor, or null when `want[i]` is false) of x, h0, c0, wIh, wHh, bIh, bHh. */
export function lstmBackward(dPacked: Tensor, inputs: (Tensor | null)[], want: boolean[], packed: Tensor, gates: Tensor,
                             cs: Tensor, s: LstmSizes, op: string): (Tensor | null)[] {
  const [x, h0, c0, wIh, wHh] = inputs as [Tensor, Tensor | null, Tensor | null, Tensor, Tensor];
  const grads = inputs.map((t, i) => (t && want[i] ? cu.empty(t.shape, dPacked.device) : null));
  const [dx, dh0, dc0, dwIh, dwHh, dbIh, dbHh] = grads;
  call((a) => a.cudaLstmBackward(hn(dx, op), hn(dh0, op), hn(dc0, op), hn(dwIh, op), hn(dwHh, op), hn(dbIh, op),
    hn(dbHh, op), h(dPacked, op), h(x, op), hn(h0, op), hn(c0, op), h(wIh, op), h(wHh, op), h(packed, op), h(gates, op),
    h(cs, op), s.T, s.B, s.I, s.H, s.batchFirst));
  return grads;
}

// ---- index ops ----

/** out (index shape, x's dtype) = x at index along dim (index int32 on x's device, in range). */
export function gather(x: Tensor, dim: number, index: Tensor, op: string): Tensor {
  const out = cu.empty(index.shape, x.device, x.dtype);
  if (out.size) call((a) => a.cudaGather(h(out, op), h(x, op), h(index, op), x.shape.slice(), index.shape.slice(), dim));
  return out;
}

/** dx (xShape) = scatter-add of dy at the gathered positions (deterministic gather per dx element). */
export function gatherBackward(dy: Tensor, index: Tensor, xShape: Shape, dim: number, op: string): Tensor {
  const dx = cu.empty(xShape, dy.device);
  if (dx.size) call((a) => a.cudaGatherBackward(h(dx, op), h(dy, op), h(index, op), xShape.slice(), index.shape.slice(), dim));
  return dx;
}

/** out (outer, k, inner) = rows index[i] of x (outer, n, inner); index int32 (k) on the device. */
export function indexSelect(x: Tensor, index: Tensor, outShape: Shape, outer: number, n: number, inner: number,
                            op: string): Tensor {
  const out = cu.empty(outShape, x.device, x.dtype);
  if (out.size) call((a) => a.cudaIndexSelect(h(out, op), h(x, op), h(index, op), outer, n, index.size, inner));
  return out;
}

/**
 * The CSR grouping of an index's positions by row, for the backward: rowStart (n + 1) and positions
 * (k), positions ascending within a row (the CPU's summation order). Host arrays.
 */
export function indexRows(idx: Int32Array, n: number): { rowStart: Int32Array; positions: Int32Array } {
  const rowStart = new Int32Array(n + 1);
  const row = (v: number) => (v < 0 ? v + n : v);
  for (let i = 0; i < idx.length; i++) rowStart[row(idx[i]) + 1]++;
  for (let r = 0; r < n; r++) rowStart[r + 1] += rowStart[r];
  const fill = rowStart.slice(0, n);
  const positions = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) positions[fill[row(idx[i])]++] = i;
  return { rowStart, positions };
}

/** dx (xShape) from dy (outer, k, inner) with the CSR rows (device int32 tensors). */
export function indexSelectBackward(dy: Tensor, rowStart: Tensor, positions: Tensor, xShape: Shape, outer: number,
                                    n: number, inner: number, op: string): Tensor {
  const dx = cu.empty(xShape, dy.device);
  if (dx.size)
    call((a) => a.cudaIndexSelectBackward(h(dx, op), h(dy, op), h(rowStart, op), h(positions, op), outer, n, positions.size,
      inner));
  return dx;
}

/** out (shape, dtype of a) = cond ? a : b with element strides (0 on broadcast dims). */
export function where(cond: Tensor, a: Tensor, b: Tensor, shape: number[], cs: number[], as: number[], bs: number[],
                      op: string): Tensor {
  const out = cu.empty(shape, a.device, a.dtype);
  if (out.size)
    call((x) => x.cudaWhere(h(out, op), h(cond, op), cond.dtype === 'int32', h(a, op), h(b, op), shape.slice(), cs, as, bs));
  return out;
}

/** Concatenation along dim of contiguous tensors of one device and dtype: one strided copy each. */
export function cat(tensors: Tensor[], outShape: number[], dim: number, op: string): Tensor {
  const first = tensors[0];
  const out = cu.empty(outShape, first.device, first.dtype);
  if (!out.size) return out;
  let outer = 1;
  for (let i = 0; i < dim; i++) outer *= outShape[i];
  let inner = 1;
  for (let i = dim + 1; i < outShape.length; i++) inner *= outShape[i];
  const rowOut = outShape[dim] * inner;
  let off = 0;
  for (const t of tensors) {
    const chunk = t.shape[dim] * inner;
    if (chunk && outer)
      call((a) => a.cudaStridedCopy(h(out, op), off, [rowOut, 1], h(t, op), 0, [chunk, 1], [outer, chunk]));
    off += chunk;
  }
  return out;
}
