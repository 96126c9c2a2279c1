// nn.LSTM on the fused native kernel (cpp/kernels/lstm.cpp): one native forward per layer over the
// whole sequence, and its native backward through time as the layer's gradient rule.
import type { Node } from './autograd';
import { record } from './autograd';
import { checkBool, checkInt, checkNumber, describe } from './check';
import * as F from './functional';
import { GRADIENTS, type OpName } from './gradients';
import { nativeAddon, type NativeAddon } from './native-api';
import { Module, parameter } from './nn';
import * as ops from './ops';
import * as cuSeq from './cuda-seq';
import { deviceMismatch } from './device';
import { checkAny, empty32 } from './ops';
import { Tensor } from './tensor';

type F32 = Float32Array;

/** The LSTM entry points of the addon (cpp/binding/ops_lstm.cpp); layouts as in tensorsmith.h. */
export interface LstmNative {
  /** y, cs: T*B*H; hN, cN, h0, c0: B*H; gates: T*B*4H; x: T*B*I; wIh: 4H*I; wHh: 4H*H; b*: 4H. */
  lstmForward(y: F32, hN: F32, cN: F32, gates: F32, cs: F32, x: F32, h0: F32 | null, c0: F32 | null, wIh: F32,
              wHh: F32, bIh: F32 | null, bHh: F32 | null, T: number, B: number, I: number, H: number,
              batchFirst: boolean): void;
  /** Outputs (null: not wanted) are overwritten; dy, dhN, dcN null stand for zeros. */
  lstmBackward(dx: F32 | null, dh0: F32 | null, dc0: F32 | null, dwIh: F32 | null, dwHh: F32 | null,
               dbIh: F32 | null, dbHh: F32 | null, dy: F32 | null, dhN: F32 | null, dcN: F32 | null, x: F32,
               h0: F32 | null, c0: F32 | null, wIh: F32, wHh: F32, y: F32, gates: F32, cs: F32, T: number,
               B: number, I: number, H: number, batchFirst: boolean): void;
}

const N = () => nativeAddon() as NativeAddon & LstmNative;
const f32 = (t: Tensor) => t._data as Float32Array;

// The fused op's gradient rule lives on its node (saved.backward), as for conv2d. Until the table
// in gradients.ts has an 'lstm' entry, the node borrows a name whose rule only dispatches to it.
const LSTM_OP = ('lstm' in GRADIENTS ? 'lstm' : 'conv2d') as OpName;

function checkF32(op: string, name: string, t: unknown, shape: number[], device?: string): Tensor {
  const x = checkAny(op, name, t);
  if (device !== undefined && x.device !== device) throw deviceMismatch(op, device as Tensor['device'], 'input', x.device, name);
  if (x.dtype !== 'float32') throw new TypeError(`${op}: ${name} must be a float32 tensor, got ${x.dtype}`);
  if (x.shape.length !== shape.length || x.shape.some((d, i) => d !== shape[i]))
    throw new RangeError(`${op}: expected ${name} of shape [${shape.join(', ')}], got [${x.shape.join(', ')}]`);
  return x;
}

export interface LstmLayerResult {
  /** (T, B, H), or (B, T, H) when batchFirst. */
  output: Tensor;
  /** (B, H) */
  hN: Tensor;
  /** (B, H) */
  cN: Tensor;
}

/**
 * One LSTM layer over a whole sequence (functional form of one layer of nn.LSTM).
 *   x: (T, B, I), or (B, T, I) when batchFirst   h0, c0: (B, H) or null for zeros
 *   wIh: (4H, I)   wHh: (4H, H)   bIh, bHh: (4H) or null.   Gates in PyTorch's order i, f, g, o.
 * Differentiable w.r.t. x, h0, c0 and the weights (native backward through time).
 */
export function lstmLayer(x: Tensor, h0: Tensor | null, c0: Tensor | null, wIh: Tensor, wHh: Tensor,
                          bIh: Tensor | null, bHh: Tensor | null, batchFirst = false): LstmLayerResult {
  const op = 'lstm';
  const xt = checkAny(op, 'input', x);
  if (xt.dtype !== 'float32') throw new TypeError(`${op}: input must be a float32 tensor, got ${xt.dtype}`);
  if (xt.ndim !== 3)
    throw new RangeError(`${op}: expected input of rank 3 (${batchFirst ? 'B, T, I' : 'T, B, I'}), got shape [${xt.shape.join(', ')}]`);
  const w = checkAny(op, 'weight_hh', wHh);
  if (w.ndim !== 2 || w.shape[0] % 4 !== 0 || w.shape[0] !== 4 * w.shape[1])
    throw new RangeError(`${op}: expected weight_hh of shape [4H, H], got [${w.shape.join(', ')}]`);
  const H = w.shape[1];
  const [T, B] = batchFirst ? [xt.shape[1], xt.shape[0]] : [xt.shape[0], xt.shape[1]];
  const I = xt.shape[2];
  const dev = xt.device;
  checkF32(op, 'weight_hh', wHh, [4 * H, H], dev);
  checkF32(op, 'weight_ih', wIh, [4 * H, I], dev);
  if (bIh != null) checkF32(op, 'bias_ih', bIh, [4 * H], dev);
  if (bHh != null) checkF32(op, 'bias_hh', bHh, [4 * H], dev);
  if (h0 != null) checkF32(op, 'h0', h0, [B, H], dev);
  if (c0 != null) checkF32(op, 'c0', c0, [B, H], dev);
  const TBH = T * B * H, BH = B * H;
  if (dev !== 'cpu') return lstmLayerCuda(xt, h0, c0, wIh, wHh, bIh, bHh, { T, B, I, H, batchFirst });
  // y, hN, cN as rows of one tensor (T*B + 2B, H), so one autograd node; sliced by rows below.
  const packed = empty32([T * B + 2 * B, H]);
  const gates = empty32([T * B, 4 * H]);
  const cs = empty32([T * B, H]);
  const pd = f32(packed);
  const yd = pd.subarray(0, TBH);
  N().lstmForward(yd, pd.subarray(TBH, TBH + BH), pd.subarray(TBH + BH), f32(gates), f32(cs), f32(xt),
    h0 ? f32(h0) : null, c0 ? f32(c0) : null, f32(wIh), f32(wHh), bIh ? f32(bIh) : null, bHh ? f32(bHh) : null,
    T, B, I, H, batchFirst);
  const backward = (dPacked: Tensor, node: Node): (Tensor | null)[] => {
    const [xi, h0i, c0i, wIhi, wHhi, bIhi, bHhi] = node.inputs as [Tensor, Tensor | null, Tensor | null, Tensor,
      Tensor, Tensor | null, Tensor | null];
    const want = (t: Tensor | null) => (t && t.requiresGrad ? empty32(t.shape) : null);
    const dx = want(xi), dh0 = want(h0i), dc0 = want(c0i), dwIh = want(wIhi), dwHh = want(wHhi);
    const dbIh = want(bIhi), dbHh = want(bHhi);
    const g = f32(dPacked);
    const od = (t: Tensor | null) => (t ? f32(t) : null);
    N().lstmBackward(od(dx), od(dh0), od(dc0), od(dwIh), od(dwHh), od(dbIh), od(dbHh), g.subarray(0, TBH),
      g.subarray(TBH, TBH + BH), g.subarray(TBH + BH), f32(xi), od(h0i), od(c0i), f32(wIhi), f32(wHhi),
      f32(packed).subarray(0, TBH), f32(gates), f32(cs), T, B, I, H, batchFirst);
    return [dx, dh0, dc0, dwIh, dwHh, dbIh, dbHh];
  };
  record(packed, LSTM_OP, [xt, h0, c0, wIh, wHh, bIh, bHh], { backward }, [gates, cs]);
  const part = (start: number, end: number, shape: number[]) => {
    const s = ops.slice(packed, 0, start / H, end / H);
    const r = ops.reshape(s, shape);
    s.dispose();
    return r;
  };
  const output = part(0, TBH, batchFirst ? [B, T, H] : [T, B, H]);
  const hN = part(TBH, TBH + BH, [B, H]);
  const cN = part(TBH + BH, TBH + 2 * BH, [B, H]);
  if (!packed.requiresGrad) packed.dispose(); // no graph holds it (inference)
  return { output, hN, cN };
}

/**
 * lstmLayer on a CUDA device (cuda/lstm.cu): the same packed output node and saved tensors as the
 * CPU path, the native backward through time as its gradient rule.
 */
function lstmLayerCuda(x: Tensor, h0: Tensor | null, c0: Tensor | null, wIh: Tensor, wHh: Tensor, bIh: Tensor | null,
                       bHh: Tensor | null, s: cuSeq.LstmSizes): LstmLayerResult {
  const op = 'lstm';
  const { T, B, H, batchFirst } = s;
  const TBH = T * B * H, BH = B * H;
  const { packed, gates, cs } = cuSeq.lstmForward(x, h0, c0, wIh, wHh, bIh, bHh, s, op);
  const backward = (dPacked: Tensor, node: Node): (Tensor | null)[] =>
    cuSeq.lstmBackward(dPacked, node.inputs, node.inputs.map((t) => !!t && t.requiresGrad), packed, gates, cs, s,
      'backward');
  record(packed, LSTM_OP, [x, h0, c0, wIh, wHh, bIh, bHh], { backward }, [gates, cs]);
  const part = (start: number, end: number, shape: number[]) => {
    const sl = ops.slice(packed, 0, start / H, end / H);
    const r = ops.reshape(sl, shape);
    sl.dispose();
    return r;
  };
  const output = part(0, TBH, batchFirst ? [B, T, H] : [T, B, H]);
  const hN = part(TBH, TBH + BH, [B, H]);
  const cN = part(TBH + BH, TBH + 2 * BH, [B, H]);
  if (!packed.requiresGrad) packed.dispose();
  return { output, hN, cN };
}

/** Options of nn.LSTM. */
export interface LSTMOptions {
  /** Features per time step of the input (I). */
  inputSize: number;
  /** Features of the hidden state (H). */
  hiddenSize: number;
  /** Stacked layers. Default 1. */
  numLayers?: number;
  /** Use bias_ih/bias_hh. Default true. */
  bias?: boolean;
  /** Input and output are (B, T, *) instead of (T, B, *). Default false. */
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training mode (as PyTorch). */
  dropout?: number;
  /** Must be false (default): bidirectional LSTMs are not supported yet (RangeError). */
  bidirectional?: boolean;
}

/**
 * Multi-layer LSTM, as torch.nn.LSTM: parameters weight_ih_l{k} (4H, I or H), weight_hh_l{k}
 * (4H, H), bias_ih_l{k}, bias_hh_l{k} (4H), initialised U(-1/sqrt(H), 1/sqrt(H)).
 * forward(x, [h0, c0]?) with x (T, B, I) ((B, T, I) when batchFirst, or unbatched (T, I)) and
 * h0, c0 (numLayers, B, H) returns [output (T, B, H), [hN, cN] (numLayers, B, H)].
 */
export class LSTM extends Module {
  /** Features per time step of the input (I). */
  readonly inputSize: number;
  /** Features of the hidden state (H). */
  readonly hiddenSize: number;
  /** Number of stacked layers. */
  readonly numLayers: number;
  /** Whether the layers have biases. */
  readonly bias: boolean;
  /** True when input and output are (B, T, *). */
  readonly batchFirst: boolean;
  /** Dropout probability between layers (training only). */
  readonly dropout: number;

  constructor(opts: LSTMOptions) {
    super();
    const op = 'LSTM';
    if (typeof opts !== 'object' || opts === null)
      throw new TypeError(`${op}: expected an options object {inputSize, hiddenSize, ...}, got ${describe(opts)}`);
    this.inputSize = checkInt(op, 'inputSize', opts.inputSize, 1);
    this.hiddenSize = checkInt(op, 'hiddenSize', opts.hiddenSize, 1);
    this.numLayers = checkInt(op, 'numLayers', opts.numLayers ?? 1, 1);
    this.bias = checkBool(op, 'bias', opts.bias ?? true);
    this.batchFirst = checkBool(op, 'batchFirst', opts.batchFirst ?? false);
    this.dropout = checkNumber(op, 'dropout', opts.dropout ?? 0, 0, 1);
    if (checkBool(op, 'bidirectional', opts.bidirectional ?? false))
      throw new RangeError(`${op}: bidirectional LSTMs are not supported yet (bidirectional must be false)`);
    const H = this.hiddenSize, k = 1 / Math.sqrt(H);
    const init = (shape: number[]) => parameter(ops.rand(shape, { low: -k, high: k }));
    const self = this as unknown as Record<string, Tensor | null>;
    for (let l = 0; l < this.numLayers; l++) {
      const inF = l === 0 ? this.inputSize : H;
      self[`weight_ih_l${l}`] = init([4 * H, inF]);
      self[`weight_hh_l${l}`] = init([4 * H, H]);
      if (this.bias) {
        self[`bias_ih_l${l}`] = init([4 * H]);
        self[`bias_hh_l${l}`] = init([4 * H]);
      }
    }
  }

  /** The parameters of layer l: [weight_ih, weight_hh, bias_ih | null, bias_hh | null]. */
  layerWeights(l: number): [Tensor, Tensor, Tensor | null, Tensor | null] {
    const self = this as unknown as Record<string, Tensor | undefined>;
    return [self[`weight_ih_l${l}`]!, self[`weight_hh_l${l}`]!, self[`bias_ih_l${l}`] ?? null,
      self[`bias_hh_l${l}`] ?? null];
  }

  forward(x: Tensor, state?: [Tensor, Tensor] | null): [Tensor, [Tensor, Tensor]] {
    const op = 'LSTM.forward';
    const xt = checkAny(op, 'input', x);
    if (xt.dtype !== 'float32') throw new TypeError(`${op}: input must be a float32 tensor, got ${xt.dtype}`);
    if (xt.ndim !== 2 && xt.ndim !== 3)
      throw new RangeError(`${op}: expected input of rank 3 (${this.batchFirst ? 'B, T, I' : 'T, B, I'}) or 2 (T, I), got shape [${xt.shape.join(', ')}]`);
    if (xt.shape[xt.ndim - 1] !== this.inputSize)
      throw new RangeError(`${op}: expected input with ${this.inputSize} features (inputSize), got shape [${xt.shape.join(', ')}]`);
    const unbatched = xt.ndim === 2;
    const L = this.numLayers, H = this.hiddenSize;
    let input = unbatched ? ops.unsqueeze(xt, this.batchFirst ? 0 : 1) : xt;
    const B = this.batchFirst ? input.shape[0] : input.shape[1];
    let h0: Tensor | null = null, c0: Tensor | null = null;
    if (state != null) {
      if (!Array.isArray(state) || state.length !== 2)
        throw new TypeError(`${op}: state must be [h0, c0], got ${describe(state)}`);
      const want = unbatched ? [L, H] : [L, B, H];
      h0 = checkF32(op, 'h0', state[0], want, xt.device);
      c0 = checkF32(op, 'c0', state[1], want, xt.device);
      if (unbatched) {
        h0 = ops.reshape(h0, [L, 1, H]);
        c0 = ops.reshape(c0, [L, 1, H]);
      }
    }
    const hs: Tensor[] = [], cs: Tensor[] = [];
    const layerState = (s: Tensor | null, l: number) => {
      if (!s) return null;
      if (L === 1) return ops.reshape(s, [B, H]);
      const sl = ops.slice(s, 0, l, l + 1);
      const r = ops.reshape(sl, [B, H]);
      sl.dispose();
      return r;
    };
    for (let l = 0; l < L; l++) {
      const [wIh, wHh, bIh, bHh] = this.layerWeights(l);
      const r = lstmLayer(input, layerState(h0, l), layerState(c0, l), wIh, wHh, bIh, bHh, this.batchFirst);
      input = r.output;
      if (l < L - 1 && this.dropout > 0 && this.training) input = F.dropout(input, this.dropout, true);
      hs.push(r.hN);
      cs.push(r.cN);
    }
    const stackState = (list: Tensor[]) =>
      L === 1 ? ops.reshape(list[0], unbatched ? [1, H] : [1, B, H]) : ops.reshape(ops.stack(list, 0), unbatched ? [L, H] : [L, B, H]);
    let output = input;
    if (unbatched) output = ops.reshape(output, [output.shape[this.batchFirst ? 1 : 0], H]);
    return [output, [stackState(hs), stackState(cs)]];
  }
}
