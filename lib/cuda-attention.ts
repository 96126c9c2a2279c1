// tsm.cuda.attention / tsm.cuda.attentionBackward: fused scaled-dot-product attention on device
// buffers (cuda/attention_fwd.cu, cuda/attention_bwd.cu), FlashAttention-2 style.
//
//   q (B, H, Lq, D)   k, v (B, H, Lk, D)   o (B, H, Lq, D)   lse (B, H, Lq) float32
//   o = softmax(scale * q k^T + masks) v,  lse = log-sum-exp of each score row (kept for backward)
//
// Every argument is validated here, before any device call, with messages that name the op and the
// argument; the calls are queued asynchronously on the device's stream (download() or
// cuda.synchronize() waits). Without a CUDA device they throw a TsmCudaError that says so.
import { checkBool, checkNumber, checkSize, describe } from './check';
import { checkBuffer, type CudaDtype, type DeviceBuffer, nativeCuda } from './cuda';
import { TsmCudaError } from './errors';

type Handle = object;

/** The attention entry points of the addon (cpp/binding/ops_cuda_attention.cpp). */
export interface CudaAttentionAddon {
  /** Forward; dtype and algo are indices into ['float32', 'bfloat16', 'float16'] and ['auto', 'mma', 'general']. */
  cudaAttentionForward(o: Handle, lse: Handle, q: Handle, k: Handle, v: Handle, keyLengths: Handle | null, B: number,
                       H: number, Lq: number, Lk: number, D: number, dtype: number, scale: number, isCausal: boolean,
                       algo: number): void;
  /** Backward, same conventions. */
  cudaAttentionBackward(dq: Handle, dk: Handle, dv: Handle, dout: Handle, q: Handle, k: Handle, v: Handle, o: Handle,
                        lse: Handle, keyLengths: Handle | null, B: number, H: number, Lq: number, Lk: number, D: number,
                        dtype: number, scale: number, isCausal: boolean, algo: number): void;
  /** Benchmarks (builds with CUDA): `warmup` untimed then `reps` CUDA-event-timed calls; ms of each. */
  cudaTimeAttention?(backward: boolean, buffers: Handle[], keyLengths: Handle | null, B: number, H: number, Lq: number,
                     Lk: number, D: number, dtype: number, scale: number, isCausal: boolean, algo: number,
                     warmup: number, reps: number): number[];
}

/**
 * Kernel family: 'mma' (tensor cores, mma.sync, sm_80+; bfloat16/float16, headDim <= 128), 'general'
 * (CUDA cores, any dtype, headDim <= 256; simple and slow), 'auto' (mma when it applies).
 */
export type AttentionAlgo = 'auto' | 'mma' | 'general';

const DTYPES: Record<CudaDtype, number> = { float32: 0, bfloat16: 1, float16: 2 };
const ALGOS: Record<AttentionAlgo, number> = { auto: 0, mma: 1, general: 2 };

/** Sizes and options shared by cuda.attention and cuda.attentionBackward. */
export interface CudaAttentionOptions {
  /** B. */
  batch: number;
  /** H. */
  heads: number;
  /** Lq: query rows per head. */
  seqLen: number;
  /** Lk: key/value rows per head; default seqLen. */
  kvSeqLen?: number;
  /** D, in [1, 256]. */
  headDim: number;
  /** Storage type of q, k, v, o (and dout, dq, dk, dv). Default 'bfloat16'. */
  dtype?: CudaDtype;
  /** Default 1 / sqrt(headDim). */
  scale?: number;
  /** Query i attends keys j <= i (top-left aligned, as PyTorch). Default false. */
  isCausal?: boolean;
  /**
   * Key-padding mask: int32 (batch) on the device; batch b attends keys j < keyLengths[b] (values
   * clamped to [0, kvSeqLen]). A row with no key gets o = 0, lse = +inf and zero gradients.
   */
  keyLengths?: DeviceBuffer | null;
  /** Default 'auto'. A forced family that cannot run the call throws TsmCudaError. */
  algo?: AttentionAlgo;
}

/** Arguments of cuda.attention. */
export interface CudaAttentionArgs extends CudaAttentionOptions {
  /** (B, H, Lq, D) */
  q: DeviceBuffer;
  /** (B, H, Lk, D) */
  k: DeviceBuffer;
  /** (B, H, Lk, D) */
  v: DeviceBuffer;
  /** Output (B, H, Lq, D), overwritten. */
  o: DeviceBuffer;
  /** Output (B, H, Lq) float32, overwritten: the log-sum-exp of each score row, for the backward. */
  lse: DeviceBuffer;
}

/** Arguments of cuda.attentionBackward: the forward's inputs and outputs, dout, and the gradients. */
export interface CudaAttentionBackwardArgs extends CudaAttentionOptions {
  /** Gradient of the loss with respect to o, (B, H, Lq, D). */
  dout: DeviceBuffer;
  q: DeviceBuffer;
  k: DeviceBuffer;
  v: DeviceBuffer;
  /** The forward's output. */
  o: DeviceBuffer;
  /** The forward's lse (float32). */
  lse: DeviceBuffer;
  /** Output (B, H, Lq, D), overwritten. */
  dq: DeviceBuffer;
  /** Output (B, H, Lk, D), overwritten. */
  dk: DeviceBuffer;
  /** Output (B, H, Lk, D), overwritten. */
  dv: DeviceBuffer;
}

interface Checked {
  B: number; H: number; Lq: number; Lk: number; D: number;
  dtype: number; scale: number; isCausal: boolean; algo: number;
  keyLengths: DeviceBuffer | null;
}

function pick<T extends string>(op: string, name: string, v: unknown, table: Record<T, number>, fallback: T): number {
  if (v === undefined) return table[fallback];
  if (typeof v !== 'string' || !Object.prototype.hasOwnProperty.call(table, v))
    throw new TypeError(`${op}: ${name} must be one of ${Object.keys(table).map((x) => `'${x}'`).join(', ')}, got ${describe(v)}`);
  return table[v as T];
}

function checkOptions(op: string, a: CudaAttentionOptions): Checked {
  const B = checkSize(op, 'batch', a.batch), H = checkSize(op, 'heads', a.heads);
  const Lq = checkSize(op, 'seqLen', a.seqLen);
  const Lk = a.kvSeqLen === undefined ? Lq : checkSize(op, 'kvSeqLen', a.kvSeqLen);
  const D = checkSize(op, 'headDim', a.headDim);
  if (D < 1 || D > 256) throw new RangeError(`${op}: headDim must be in [1, 256], got ${D}`);
  for (const [name, v] of [['batch', B], ['heads', H], ['seqLen', Lq], ['kvSeqLen', Lk]] as const)
    if (v > 2 ** 31 - 1) throw new RangeError(`${op}: ${name} must be < 2^31, got ${v}`);
  if (B * H > 2 ** 31 - 1) throw new RangeError(`${op}: batch * heads must be < 2^31, got ${B * H}`);
  const dtype = pick<CudaDtype>(op, 'dtype', a.dtype, DTYPES, 'bfloat16');
  const algo = pick<AttentionAlgo>(op, 'algo', a.algo, ALGOS, 'auto');
  if (algo === ALGOS.mma && dtype === DTYPES.float32)
    throw new TypeError(`${op}: algo 'mma' takes dtype 'bfloat16' or 'float16', got 'float32' (use 'general' or 'auto')`);
  if (algo === ALGOS.mma && D > 128)
    throw new RangeError(`${op}: algo 'mma' handles headDim <= 128, got ${D} (use 'general' or 'auto')`);
  const scale = a.scale === undefined ? 1 / Math.sqrt(D) : checkNumber(op, 'scale', a.scale);
  const isCausal = a.isCausal === undefined ? false : checkBool(op, 'isCausal', a.isCausal);
  const keyLengths = a.keyLengths === undefined || a.keyLengths === null ? null : checkBuffer(op, 'keyLengths', a.keyLengths);
  if (keyLengths && keyLengths.bytes < 4 * B)
    throw new RangeError(`${op}: keyLengths holds ${keyLengths.bytes} bytes, needs ${4 * B} for ${B} int32 key lengths (one per batch)`);
  return { B, H, Lq, Lk, D, dtype, scale, isCausal, algo, keyLengths };
}

const DTYPE_NAMES = ['float32', 'bfloat16', 'float16'];

/** Checks that each named buffer is a live DeviceBuffer holding its tensor; returns them in order. */
function checkTensors(op: string, c: Checked, list: Array<[string, unknown, 'q' | 'kv' | 'lse']>): DeviceBuffer[] {
  const esz = c.dtype === 0 ? 4 : 2;
  const bufs = list.map(([name, v]) => checkBuffer(op, name, v));
  list.forEach(([name, , kind], i) => {
    const b = bufs[i];
    const [shape, elems, bytesPer, type] = kind === 'lse'
      ? [`(B, H, Lq) = [${c.B}, ${c.H}, ${c.Lq}]`, c.B * c.H * c.Lq, 4, 'float32']
      : kind === 'q'
        ? [`(B, H, Lq, D) = [${c.B}, ${c.H}, ${c.Lq}, ${c.D}]`, c.B * c.H * c.Lq * c.D, esz, DTYPE_NAMES[c.dtype]]
        : [`(B, H, Lk, D) = [${c.B}, ${c.H}, ${c.Lk}, ${c.D}]`, c.B * c.H * c.Lk * c.D, esz, DTYPE_NAMES[c.dtype]];
    if (elems * bytesPer > b.bytes)
      throw new RangeError(`${op}: ${name} holds ${b.bytes} bytes, needs ${elems * bytesPer} for a ${type} tensor of shape ${shape}`);
  });
  return bufs;
}

/** Outputs must not share a buffer with an input or another output (blocks read one while writing the other). */
function checkDistinct(op: string, outputs: Array<[string, DeviceBuffer]>, inputs: Array<[string, DeviceBuffer]>): void {
  for (let i = 0; i < outputs.length; ++i) {
    const [name, b] = outputs[i];
    for (const [other, ob] of [...outputs.slice(i + 1), ...inputs])
      if (ob === b) throw new RangeError(`${op}: ${name} and ${other} must be different buffers`);
  }
}

function options(op: string, args: unknown): asserts args is Record<string, unknown> {
  if (typeof args !== 'object' || args === null) throw new TypeError(`${op}: expected an options object, got ${describe(args)}`);
}

const addon = (a: unknown) => a as CudaAttentionAddon;

/**
 * Fused attention forward on device buffers: o = softmax(scale q k^T [+ causal / key-length masks]) v
 * and lse (float32), in the input dtype with float32 accumulation. Queued asynchronously.
 */
export function attention(args: CudaAttentionArgs): void {
  const op = 'cuda.attention';
  options(op, args);
  const c = checkOptions(op, args);
  const [q, k, v, o, lse] = checkTensors(op, c, [['q', args.q, 'q'], ['k', args.k, 'kv'], ['v', args.v, 'kv'],
    ['o', args.o, 'q'], ['lse', args.lse, 'lse']]);
  checkDistinct(op, [['o', o], ['lse', lse]], [['q', q], ['k', k], ['v', v]]);
  const kl = c.keyLengths ? c.keyLengths.handle : null;
  nativeCuda((a) => addon(a).cudaAttentionForward(o.handle, lse.handle, q.handle, k.handle, v.handle, kl,
    c.B, c.H, c.Lq, c.Lk, c.D, c.dtype, c.scale, c.isCausal, c.algo));
}

/**
 * Fused attention backward: dq, dk, dv (input dtype) from dout and the forward's q, k, v, o, lse, with
 * the forward's options. Scores are recomputed from lse; dq is accumulated in float32. Queued asynchronously.
 */
export function attentionBackward(args: CudaAttentionBackwardArgs): void {
  const op = 'cuda.attentionBackward';
  options(op, args);
  const c = checkOptions(op, args);
  const [dout, q, k, v, o, lse, dq, dk, dv] = checkTensors(op, c, [['dout', args.dout, 'q'], ['q', args.q, 'q'],
    ['k', args.k, 'kv'], ['v', args.v, 'kv'], ['o', args.o, 'q'], ['lse', args.lse, 'lse'], ['dq', args.dq, 'q'],
    ['dk', args.dk, 'kv'], ['dv', args.dv, 'kv']]);
  checkDistinct(op, [['dq', dq], ['dk', dk], ['dv', dv]],
    [['dout', dout], ['q', q], ['k', k], ['v', v], ['o', o], ['lse', lse]]);
  const kl = c.keyLengths ? c.keyLengths.handle : null;
  nativeCuda((a) => addon(a).cudaAttentionBackward(dq.handle, dk.handle, dv.handle, dout.handle, q.handle, k.handle,
    v.handle, o.handle, lse.handle, kl, c.B, c.H, c.Lq, c.Lk, c.D, c.dtype, c.scale, c.isCausal, c.algo));
}

/**
 * Benchmarks: runs the forward (or the backward) `warmup` times untimed, then `reps` times each
 * between two CUDA events; returns the milliseconds of each timed call. Same arguments as
 * cuda.attention / cuda.attentionBackward. Throws TsmCudaError in builds without CUDA.
 */
export function timeAttention(backward: boolean, args: CudaAttentionArgs | CudaAttentionBackwardArgs, warmup: number,
                              reps: number): number[] {
  const op = 'cuda.timeAttention';
  options(op, args);
  const c = checkOptions(op, args);
  const w = checkSize(op, 'warmup', warmup), r = checkSize(op, 'reps', reps);
  if (r < 1) throw new RangeError(`${op}: reps must be >= 1, got ${r}`);
  const a = args as CudaAttentionBackwardArgs;
  const bufs = backward
    ? checkTensors(op, c, [['dq', a.dq, 'q'], ['dk', a.dk, 'kv'], ['dv', a.dv, 'kv'], ['dout', a.dout, 'q'], ['q', a.q, 'q'],
      ['k', a.k, 'kv'], ['v', a.v, 'kv'], ['o', a.o, 'q'], ['lse', a.lse, 'lse']])
    : checkTensors(op, c, [['o', a.o, 'q'], ['lse', a.lse, 'lse'], ['q', a.q, 'q'], ['k', a.k, 'kv'], ['v', a.v, 'kv']]);
  const kl = c.keyLengths ? c.keyLengths.handle : null;
  return nativeCuda((x) => {
    const fn = addon(x).cudaTimeAttention;
    if (!fn) throw new TsmCudaError(op, 'this build has no CUDA support');
    return fn(backward, bufs.map((b) => b.handle), kl, c.B, c.H, c.Lq, c.Lk, c.D, c.dtype, c.scale, c.isCausal, c.algo, w, r);
  });
}
