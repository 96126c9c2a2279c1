// Thin wrappers over the normalisation, embedding, dropout and adaptive-pooling kernels of CUDA
// tensors (cpp/binding/ops_cuda_norm.cpp -> cuda/norm.cu, embedding.cu, dropout.cu,
// adaptive_pool.cu). lib/functional.ts validates the arguments and keeps the backward beside each
// forward; these allocate the results on the device and queue the kernels (no synchronisation).
import * as cu from './cuda-tensor';
import { cudaCall } from './device';
import type { Shape, Tensor } from './tensor';

type Handle = object;

/** The addon entry points of section "cuda norm kernels" of tensorsmith.h (sizes in elements). */
export interface CudaNormAddon {
  cudaLayerNormForward(y: Handle, mean: Handle, rstd: Handle, x: Handle, w: Handle | null, b: Handle | null, rows: number,
                       cols: number, eps: number): void;
  cudaLayerNormBackward(dx: Handle | null, dw: Handle | null, db: Handle | null, dy: Handle, x: Handle, mean: Handle,
                        rstd: Handle, w: Handle | null, rows: number, cols: number): void;
  cudaBatchNormForward(y: Handle, saveMean: Handle, saveInvstd: Handle, runningMean: Handle | null,
                       runningVar: Handle | null, x: Handle, w: Handle | null, b: Handle | null, n: number, c: number,
                       hw: number, training: boolean, momentum: number, eps: number,
                       numBatchesTracked: Handle | null): void;
  cudaBatchNormBackward(dx: Handle | null, dw: Handle | null, db: Handle | null, dy: Handle, x: Handle,
                        saveMean: Handle, saveInvstd: Handle, w: Handle | null, n: number, c: number, hw: number,
                        training: boolean): void;
  cudaEmbeddingForward(y: Handle, indices: Handle, weight: Handle, n: number, num: number, dim: number): void;
  cudaEmbeddingBackward(dweight: Handle, dy: Handle, indices: Handle, n: number, num: number, dim: number,
                        paddingIdx: number): void;
  cudaDropoutForward(y: Handle, mask: Handle, x: Handle, p: number, seed: number, offset: number, n: number): void;
  cudaAdaptiveAvgPool2dForward(y: Handle, x: Handle, n: number, c: number, h: number, w: number, oh: number,
                               ow: number): void;
  cudaAdaptiveAvgPool2dBackward(dx: Handle, dy: Handle, n: number, c: number, h: number, w: number, oh: number,
                                ow: number): void;
}

const call = (fn: (a: CudaNormAddon) => void): void => cudaCall((a) => fn(a as unknown as CudaNormAddon));
const h = (t: Tensor, op: string): Handle => t._handle(op);
const hn = (t: Tensor | null | undefined, op: string): Handle | null => (t ? t._handle(op) : null);

/** y (x's shape), mean (rows), rstd (rows). */
export function layerNormForward(x: Tensor, w: Tensor | null, b: Tensor | null, rows: number, cols: number, eps: number,
                                 op: string): { y: Tensor; mean: Tensor; rstd: Tensor } {
  const y = cu.empty(x.shape, x.device), mean = cu.empty([rows], x.device), rstd = cu.empty([rows], x.device);
  if (x.size) call((a) => a.cudaLayerNormForward(h(y, op), h(mean, op), h(rstd, op), h(x, op), hn(w, op), hn(b, op), rows,
    cols, eps));
  return { y, mean, rstd };
}

/** [dx, dw, db], each only when asked for (null otherwise). */
export function layerNormBackward(dy: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, w: Tensor | null, rows: number,
                                  cols: number, want: [boolean, boolean, boolean], wShape: Shape | null,
                                  bShape: Shape | null, op: string): (Tensor | null)[] {
  const dev = dy.device;
  const dx = want[0] ? cu.empty(x.shape, dev) : null;
  const dw = want[1] && wShape ? cu.empty(wShape, dev) : null;
  const db = want[2] && bShape ? cu.empty(bShape, dev) : null;
  if (cols > 0 && (dx || dw || db))
    call((a) => a.cudaLayerNormBackward(hn(dx, op), hn(dw, op), hn(db, op), h(dy, op), h(x, op), h(mean, op), h(rstd, op),
      hn(w, op), rows, cols));
  return [dx, dw, db];
}

/** y (x's shape), saveMean (c), saveInvstd (c); running stats and numBatchesTracked updated in place. */
export function batchNormForward(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, w: Tensor | null,
                                 b: Tensor | null, n: number, c: number, hw: number, training: boolean,
                                 momentum: number, eps: number, numBatchesTracked: Tensor | null,
                                 op: string): { y: Tensor; saveMean: Tensor; saveInvstd: Tensor } {
  const dev = x.device;
  const y = cu.empty(x.shape, dev), saveMean = cu.empty([c], dev), saveInvstd = cu.empty([c], dev);
  call((a) => a.cudaBatchNormForward(h(y, op), h(saveMean, op), h(saveInvstd, op), hn(runningMean, op),
    hn(runningVar, op), h(x, op), hn(w, op), hn(b, op), n, c, hw, training, momentum, eps, hn(numBatchesTracked, op)));
  return { y, saveMean, saveInvstd };
}

export function batchNormBackward(dy: Tensor, x: Tensor, saveMean: Tensor, saveInvstd: Tensor, w: Tensor | null,
                                  n: number, c: number, hw: number, training: boolean, want: [boolean, boolean, boolean],
                                  wShape: Shape | null, bShape: Shape | null, op: string): (Tensor | null)[] {
  const dev = dy.device;
  const dx = want[0] ? cu.empty(x.shape, dev) : null;
  const dw = want[1] && wShape ? cu.empty(wShape, dev) : null;
  const db = want[2] && bShape ? cu.empty(bShape, dev) : null;
  if (dx || dw || db)
    call((a) => a.cudaBatchNormBackward(hn(dx, op), hn(dw, op), hn(db, op), h(dy, op), h(x, op), h(saveMean, op),
      h(saveInvstd, op), hn(w, op), n, c, hw, training));
  return [dx, dw, db];
}

/** y [...indices.shape, dim]; rows of out-of-range indices are NaN (not checked on the device). */
export function embeddingForward(indices: Tensor, weight: Tensor, op: string): Tensor {
  const [num, dim] = weight.shape;
  const y = cu.empty([...indices.shape, dim], weight.device);
  if (y.size) call((a) => a.cudaEmbeddingForward(h(y, op), h(indices, op), h(weight, op), indices.size, num, dim));
  return y;
}

/** dweight (num, dim): each row the sum of its positions' dy rows, in position order (as the CPU). */
export function embeddingBackward(dy: Tensor, indices: Tensor, weightShape: Shape, paddingIdx: number, op: string): Tensor {
  const [num, dim] = weightShape;
  const dw = cu.empty(weightShape, dy.device);
  if (dw.size) call((a) => a.cudaEmbeddingBackward(h(dw, op), h(dy, op), h(indices, op), indices.size, num, dim, paddingIdx));
  return dw;
}

/** y and the mask (0 or 1 / (1 - p)) for (seed, offset): the CPU's values bit for bit. */
export function dropoutForward(x: Tensor, p: number, seed: number, offset: number, op: string): { y: Tensor; mask: Tensor } {
  const y = cu.empty(x.shape, x.device), mask = cu.empty(x.shape, x.device);
  if (x.size) call((a) => a.cudaDropoutForward(h(y, op), h(mask, op), h(x, op), p, seed, offset, x.size));
  return { y, mask };
}

export function adaptiveAvgPool2dForward(x: Tensor, oh: number, ow: number, op: string): Tensor {
  const [n, c, hh, w] = x.shape;
  const y = cu.empty([n, c, oh, ow], x.device);
  if (y.size) call((a) => a.cudaAdaptiveAvgPool2dForward(h(y, op), h(x, op), n, c, hh, w, oh, ow));
  return y;
}

export function adaptiveAvgPool2dBackward(dy: Tensor, xShape: Shape, op: string): Tensor {
  const [n, c, hh, w] = xShape;
  const [, , oh, ow] = dy.shape;
  const dx = cu.empty(xShape, dy.device);
  if (dx.size) call((a) => a.cudaAdaptiveAvgPool2dBackward(h(dx, op), h(dy, op), n, c, hh, w, oh, ow));
  return dx;
}
