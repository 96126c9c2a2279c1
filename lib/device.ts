// Devices of tensors: parsing 'cpu' / 'cuda' / 'cuda:N', the current CUDA device, device memory for
// tensor storage, and the errors of device misuse. Internal (lib/tensor.ts, lib/ops.ts and
// lib/cuda-tensor.ts use it); the public face is tsm.cuda and the tensors' `device`.
import { describe } from './check';
import { cudaAddon, deviceCount, isAvailable, unavailableReason, type CudaAddon } from './cuda';
import { cudaState } from './cuda-state';
import { TsmCudaError } from './errors';

/** A device name as in PyTorch: `'cpu'`, `'cuda'` (the current CUDA device) or `'cuda:N'`. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

type Handle = object;

/** The tensor-kernel entry points of the addon (cpp/binding/ops_cuda_tensor.cpp); sizes in elements. */
export interface CudaTensorAddon {
  cudaUnaryForward(op: number, y: Handle, x: Handle, n: number): void;
  cudaUnaryBackward(op: number, dx: Handle, x: Handle | null, y: Handle | null, dy: Handle, n: number): void;
  cudaBinarySame(op: number, out: Handle, a: Handle, b: Handle, n: number): void;
  cudaScalarForward(op: number, out: Handle, x: Handle, s: number, reverse: boolean, n: number): void;
  cudaBinaryForward(op: number, out: Handle, a: Handle, b: Handle, outShape: number[], aStrides: number[],
                    bStrides: number[]): void;
  /** 4-byte elements; dstStrides null = contiguous. */
  cudaStridedCopy(dst: Handle, dstOffset: number, dstStrides: number[] | null, src: Handle, srcOffset: number,
                  srcStrides: number[], shape: number[]): void;
  cudaFill32(dst: Handle, bits: number, n: number): void;
  /** float32 -> int32 when toInt32, else int32 -> float32. */
  cudaCast(dst: Handle, src: Handle, toInt32: boolean, n: number): void;
  /** Device-to-device copy of `bytes` bytes. */
  cudaCopy(dst: Handle, dstByteOffset: number, src: Handle, srcByteOffset: number, bytes: number): void;
  cudaSum(out: Handle, x: Handle, outer: number, dim: number, inner: number, divisor: number): void;
  cudaArgReduce(values: Handle | null, indices: Handle, x: Handle, outer: number, dim: number, inner: number,
                isMax: boolean): void;
  cudaArgReduceBackward(dx: Handle, dy: Handle, indices: Handle, outer: number, dim: number, inner: number): void;
  cudaSoftmaxForward(y: Handle, x: Handle, outer: number, dim: number, inner: number, log: boolean): void;
  cudaSoftmaxBackward(dx: Handle, y: Handle, dy: Handle, outer: number, dim: number, inner: number, log: boolean): void;
  cudaSgdStep(params: Handle[], grads: Handle[], momentumBufs: Handle[] | null, sizes: number[], lr: number,
              momentum: number, dampening: number, weightDecay: number, nesterov: boolean, maximize: boolean,
              firstStep: boolean): void;
  cudaAdamStep(params: Handle[], grads: Handle[], expAvg: Handle[], expAvgSq: Handle[], maxExpAvgSq: Handle[] | null,
               sizes: number[], lr: number, beta1: number, beta2: number, eps: number, weightDecay: number,
               step: number, amsgrad: boolean, decoupled: boolean, maximize: boolean): void;
}

/**
 * The CNN kernels of the addon (cpp/binding/ops_cuda_nn.cpp -> cuda/conv.cu, pool.cu,
 * cross_entropy.cu): the CPU entry points' argument lists on device buffer handles. Max pooling's
 * backward takes the forward's window (it gathers per input element); cross-entropy reduces on the
 * device (reduction 0 none, 1 mean, 2 sum; out and count hold one float each).
 */
export interface CudaNnAddon {
  cudaConv2dForward(y: Handle, x: Handle, w: Handle, bias: Handle | null, ...sizes: number[]): void;
  cudaConv2dBackwardData(dx: Handle, dy: Handle, w: Handle, ...sizes: number[]): void;
  cudaConv2dBackwardWeight(dw: Handle, dbias: Handle | null, dy: Handle, x: Handle, ...sizes: number[]): void;
  cudaMaxPool2dForward(y: Handle, indices: Handle, x: Handle, ...args: (number | boolean)[]): void;
  cudaMaxPool2dBackward(dx: Handle, dy: Handle, indices: Handle, ...args: (number | boolean)[]): void;
  cudaAvgPool2dForward(y: Handle, x: Handle, ...args: (number | boolean)[]): void;
  cudaAvgPool2dBackward(dx: Handle, dy: Handle, ...args: (number | boolean)[]): void;
  cudaCrossEntropyForward(losses: Handle, logProbs: Handle, out: Handle | null, count: Handle | null, logits: Handle,
                          targets: Handle, n: number, c: number, ignoreIndex: number, labelSmoothing: number,
                          reduction: number): void;
  cudaCrossEntropyBackward(dlogits: Handle, logProbs: Handle, targets: Handle, dloss: Handle, count: Handle | null,
                           n: number, c: number, ignoreIndex: number, labelSmoothing: number, reduction: number): void;
}

/** The addon with the CUDA buffer, tensor-kernel and nn-kernel entry points. */
export type TensorAddon = CudaAddon & CudaTensorAddon & CudaNnAddon;

/** Turns the binding's plain Error named 'TsmCudaError' into the TsmCudaError class (others pass). */
export function normaliseCudaError(e: unknown): unknown {
  if (e instanceof Error && e.name === 'TsmCudaError' && !(e instanceof TsmCudaError)) {
    const call = (e as Error & { call?: string }).call ?? 'cuda';
    // The binding's message already starts with the C call ("cuda_sum: ..."); keep it whole.
    const err = new TsmCudaError(call, e.message);
    if (e.stack) err.stack = `${err.name}: ${err.message}\n${e.stack.split('\n').slice(1).join('\n')}`;
    return err;
  }
  return e;
}

/** Runs fn on the addon, turning CUDA failures into TsmCudaError. */
export function cudaCall<T>(fn: (a: TensorAddon) => T): T {
  try {
    return fn(cudaAddon() as TensorAddon);
  } catch (e) {
    throw normaliseCudaError(e);
  }
}

let availableCache: boolean | undefined;
let countCache = 0;

function available(): boolean {
  if (availableCache === undefined) {
    availableCache = isAvailable();
    countCache = availableCache ? deviceCount() : 0;
  }
  return availableCache;
}

/**
 * The canonical name of a device argument: `'cpu'` or `'cuda:N'` (a bare `'cuda'` is the current
 * CUDA device). TypeError for anything else; TsmCudaError naming `op` when CUDA is not available
 * here (the message says why) or device N does not exist.
 */
export function parseDevice(op: string, device: unknown): Device {
  if (device === undefined || device === 'cpu') return 'cpu';
  const m = typeof device === 'string' ? /^cuda(?::(\d+))?$/.exec(device) : null;
  if (!m) throw new TypeError(`${op}: device must be 'cpu', 'cuda' or 'cuda:N', got ${describe(device)}`);
  if (!available())
    throw new TsmCudaError(op, `device '${device}' is not available: ${unavailableReason()}`);
  const index = m[1] === undefined ? cudaState.current : Number(m[1]);
  if (!Number.isSafeInteger(index) || index >= countCache)
    throw new TsmCudaError(op, `device '${device}' does not exist (${countCache} CUDA device${countCache === 1 ? '' : 's'} visible)`);
  return `cuda:${index}`;
}

/** The index N of a canonical 'cuda:N' device. */
export function deviceIndex(device: Device): number {
  return device === 'cuda' ? cudaState.current : Number(device.slice(5));
}

/** Makes `device`'s CUDA device current for the allocations and kernels that follow. */
export function selectDevice(device: Device): void {
  const i = deviceIndex(device);
  if (i !== cudaState.current) {
    cudaCall((a) => a.cudaSetDevice(i));
    cudaState.current = i;
  }
}

/** `bytes` of device memory on `device` (contents undefined), as the addon's buffer handle. */
export function deviceAlloc(device: Device, bytes: number): Handle {
  selectDevice(device);
  return cudaCall((a) => a.cudaMalloc(bytes));
}

/** Returns a handle's memory to the caching allocator (no CUDA call; safe in finalizers). */
export function deviceFree(handle: object): void {
  try {
    cudaAddon().cudaFree(handle);
  } catch {
    // Only a handle that is not a live device buffer fails here; nothing to free then.
  }
}

/** Copies host data into the buffer (returns when `data` may be reused). */
export function deviceUpload(device: Device, handle: object, data: ArrayBufferView): void {
  selectDevice(device);
  if (data.byteLength) cudaCall((a) => a.cudaUpload(handle, data, 0));
}

/** Copies the buffer into `into` after all queued work on the device (synchronises). */
export function deviceDownload<T extends ArrayBufferView>(device: Device, handle: object, into: T): T {
  selectDevice(device);
  if (into.byteLength) cudaCall((a) => a.cudaDownload(handle, into, 0));
  return into;
}

/** The error of an op that has no CUDA kernel, named after the op. */
export function noCudaKernel(op: string): TsmCudaError {
  return new TsmCudaError(op, 'no CUDA kernel yet for this op; move the tensor to the CPU with .cpu()');
}

/** The error of an op whose tensors are on different devices, naming both devices and arguments. */
export function deviceMismatch(op: string, d1: Device, name1: string, d2: Device, name2: string): TypeError {
  return new TypeError(`${op}: expected all tensors on the same device, got ${d1} (${name1}) and ${d2} (${name2})`);
}
