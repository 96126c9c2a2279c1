// Transformer modules, with PyTorch's parameter names, layouts and initialisation, so a PyTorch
// state_dict loads by name:
//   MultiheadAttention       in_proj_weight (3E, E), in_proj_bias (3E), out_proj.weight, out_proj.bias
//   TransformerEncoderLayer  self_attn.*, linear1, linear2, norm1, norm2
//   TransformerEncoder       layers.0.*, layers.1.*, ..., norm.* (optional)
//   PositionalEncoding       sinusoidal (buffer pe), LearnedPositionalEmbedding (parameter weight)
// Attention runs on the fused kernel (F.scaledDotProductAttention in ./attention).
//
// Masks follow PyTorch's nn.MultiheadAttention: an int32 mask is boolean with nonzero = NOT allowed
// to attend (the opposite of SDPA's bool mask); a float32 mask is added to the scores.
//   keyPaddingMask (N, S): nonzero (or -inf) marks padding keys.
//   attnMask (L, S) or (N * numHeads, L, S).
import { scaledDotProductAttention } from './attention';
import { checkInt, checkNumber, describe } from './check';
import * as F from './functional';
import { Dropout, LayerNorm, Linear, Module, parameter } from './nn';
import * as ops from './ops';
import { noGrad, sizeOf, Tensor } from './tensor';

const shapeStr = (t: Tensor) => `[${t.shape.join(', ')}]`;

function xavierUniform(shape: [number, number]): Tensor {
  const [fanOut, fanIn] = shape;
  const bound = Math.sqrt(6 / (fanIn + fanOut));
  return ops.rand(shape, { low: -bound, high: bound });
}

/** A mask as additive float32 (-inf where a boolean mask forbids), shape kept. */
function toAdditive(m: Tensor, boolMeansForbidden: boolean): Float32Array {
  const src = m._data;
  const out = new Float32Array(src.length);
  if (m.dtype === 'int32') {
    for (let i = 0; i < src.length; i++) out[i] = (src[i] !== 0) === boolMeansForbidden ? -Infinity : 0;
  } else {
    out.set(src as Float32Array);
  }
  return out;
}

/** Options of MultiheadAttention. */
export interface MultiheadAttentionOptions {
  /** Model dimension E (query, key and value features). Must be divisible by numHeads. */
  embedDim: number;
  /** Number of heads H; each has headDim = E / H. */
  numHeads: number;
  /** Dropout probability on the attention weights in training, in [0, 1). Default 0. */
  dropout?: number;
  /** Biases on the input and output projections. Default true. */
  bias?: boolean;
  /** Inputs and output are (N, L, E) instead of (L, N, E). Default false. */
  batchFirst?: boolean;
}

/** Options of MultiheadAttention.forward. */
export interface MultiheadAttentionForwardOptions {
  /** (N, S): int32 nonzero = padding (ignored key), or float32 added to the scores. */
  keyPaddingMask?: Tensor | null;
  /** (L, S) or (N * numHeads, L, S): int32 nonzero = not allowed, or float32 added. */
  attnMask?: Tensor | null;
  /** Query i attends keys j <= i (combined with any mask). */
  isCausal?: boolean;
  /** Attention weights are never materialised by the fused kernel: only false is supported. */
  needWeights?: boolean;
}

/** Multi-head attention as torch.nn.MultiheadAttention (kdim = vdim = embedDim). */
export class MultiheadAttention extends Module {
  /** Packed query, key and value projection weights, (3E, E), Xavier-uniform. */
  in_proj_weight: Tensor;
  /** Packed projection biases (3E), zeros; null without bias. */
  in_proj_bias: Tensor | null;
  /** Output projection, (E, E); its bias starts at zero. */
  out_proj: Linear;
  /** Model dimension E. */
  readonly embedDim: number;
  /** Number of heads H. */
  readonly numHeads: number;
  /** Features per head, E / H. */
  readonly headDim: number;
  /** Attention dropout probability (training only). */
  readonly dropout: number;
  /** True when inputs are (N, L, E). */
  readonly batchFirst: boolean;

  constructor(opts: MultiheadAttentionOptions) {
    super();
    const op = 'MultiheadAttention';
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: expected an options object {embedDim, numHeads, ...}, got ${describe(opts)}`);
    this.embedDim = checkInt(op, 'embedDim', opts.embedDim, 1);
    this.numHeads = checkInt(op, 'numHeads', opts.numHeads, 1);
    if (this.embedDim % this.numHeads !== 0)
      throw new RangeError(`${op}: embedDim (${this.embedDim}) must be divisible by numHeads (${this.numHeads})`);
    this.headDim = this.embedDim / this.numHeads;
    this.dropout = checkNumber(op, 'dropout', opts.dropout ?? 0, 0, 1);
    if (this.dropout >= 1) throw new RangeError(`${op}: dropout must be < 1, got ${this.dropout}`);
    this.batchFirst = opts.batchFirst ?? false;
    const bias = opts.bias ?? true;
    const E = this.embedDim;
    this.in_proj_weight = parameter(xavierUniform([3 * E, E]));
    this.in_proj_bias = bias ? parameter(ops.zeros([3 * E])) : null;
    this.out_proj = new Linear(E, E, { bias });
    if (this.out_proj.bias) noGrad(() => (this.out_proj.bias!._data as Float32Array).fill(0));
  }

  /**
   * Attention of query (L, N, E) over key/value (S, N, E) ((N, L, E)/(N, S, E) when batchFirst).
   * Returns [output shaped like query, null] (weights are never formed). Throws RangeError on bad shapes or needWeights: true.
   */
  forward(query: Tensor, key: Tensor, value: Tensor, opts: MultiheadAttentionForwardOptions = {}): [Tensor, null] {
    const op = 'MultiheadAttention';
    if (opts.needWeights) throw new RangeError(`${op}: needWeights is not supported (the fused kernel never forms the weights); pass needWeights: false`);
    const E = this.embedDim, H = this.numHeads, Dh = this.headDim;
    for (const [name, t] of [['query', query], ['key', key], ['value', value]] as const) {
      ops.checkAny(op, name, t); // CUDA tensors: projections and attention run on the device
      ops.sameDevice(op, query, 'query', t, name);
      if (t.ndim !== 3 || t.shape[2] !== E)
        throw new RangeError(`${op}: expected ${name} of shape ${this.batchFirst ? '(N, L, E)' : '(L, N, E)'} with E = ${E}, got ${shapeStr(t)}`);
    }
    const selfAttn = query === key && key === value;
    // Work in (N, L, E).
    const toNLE = (t: Tensor) => (this.batchFirst ? t : ops.transpose(t, 0, 1));
    const q0 = toNLE(query);
    const k0 = selfAttn ? q0 : key === query ? q0 : toNLE(key);
    const v0 = selfAttn ? q0 : value === key ? k0 : toNLE(value);
    const [N, L] = q0.shape;
    const S = k0.shape[1];
    if (k0.shape[0] !== N || v0.shape[0] !== N || v0.shape[1] !== S)
      throw new RangeError(`${op}: query ${shapeStr(query)}, key ${shapeStr(key)} and value ${shapeStr(value)} do not agree in batch and length`);
    const heads = (x: Tensor, len: number) => ops.permute(ops.reshape(x, [N, len, H, Dh]), [0, 2, 1, 3]);
    // Three projections with row blocks of in_proj_weight (the same GEMM work as one (3E, E)
    // product, without copying a (N, L, 3E) result apart and scattering its gradient back).
    const w = (i: number) => ops.slice(this.in_proj_weight, 0, i * E, (i + 1) * E);
    const b = (i: number) => (this.in_proj_bias ? ops.slice(this.in_proj_bias, 0, i * E, (i + 1) * E) : null);
    const q = heads(F.linear(q0, w(0), b(0)), L);
    const k = heads(F.linear(k0, w(1), b(1)), S);
    const v = heads(F.linear(v0, w(2), b(2)), S);
    // Masks are combined on the host (small, (N, S) / (L, S)); on a CUDA device the result is uploaded.
    const copies: Tensor[] = [];
    const onHost = (m: Tensor | null | undefined) => {
      if (!(m instanceof Tensor) || m.device === 'cpu') return m;
      const c = m.cpu();
      copies.push(c);
      return c;
    };
    const hostOpts = q0.device === 'cpu' ? opts
      : { ...opts, keyPaddingMask: onHost(opts.keyPaddingMask), attnMask: onHost(opts.attnMask) };
    const hostMask = this.combineMasks(hostOpts, N, L, S);
    let mask = hostMask;
    if (hostMask && q0.device !== 'cpu') {
      mask = hostMask.to(q0.device);
      hostMask.dispose();
    }
    copies.forEach((c) => c.dispose());
    const o = scaledDotProductAttention(q, k, v, {
      attnMask: mask, isCausal: opts.isCausal ?? false, dropoutP: this.training ? this.dropout : 0,
    }); // (N, H, L, Dh)
    const merged = ops.reshape(ops.permute(o, [0, 2, 1, 3]), [N, L, E]);
    const out = this.out_proj.forward(merged);
    return [this.batchFirst ? out : ops.transpose(out, 0, 1), null];
  }

  /** keyPaddingMask and attnMask as one SDPA mask (int32 nonzero = attend, or float32 added). */
  private combineMasks(opts: MultiheadAttentionForwardOptions, N: number, L: number, S: number): Tensor | null {
    const op = 'MultiheadAttention';
    const H = this.numHeads;
    const kpm = opts.keyPaddingMask ?? null, am = opts.attnMask ?? null;
    if (kpm) {
      ops.checkTensor(op, 'keyPaddingMask', kpm);
      if (kpm.ndim !== 2 || kpm.shape[0] !== N || kpm.shape[1] !== S)
        throw new RangeError(`${op}: expected keyPaddingMask of shape (N, S) = [${N}, ${S}], got ${shapeStr(kpm)}`);
    }
    let amShape: number[] | null = null;
    if (am) {
      ops.checkTensor(op, 'attnMask', am);
      if (am.ndim === 2 && am.shape[0] === L && am.shape[1] === S) amShape = [1, 1, L, S];
      else if (am.ndim === 3 && am.shape[0] === N * H && am.shape[1] === L && am.shape[2] === S) amShape = [N, H, L, S];
      else throw new RangeError(`${op}: expected attnMask of shape (L, S) = [${L}, ${S}] or (N * numHeads, L, S) = [${N * H}, ${L}, ${S}], got ${shapeStr(am)}`);
    }
    if (!kpm && !am) return null;
    const allBool = (!kpm || kpm.dtype === 'int32') && (!am || am.dtype === 'int32');
    if (allBool) {
      // SDPA boolean: nonzero = attend.
      if (kpm && !am) {
        const src = kpm._data as Int32Array;
        return ops.tensor(Int32Array.from(src, (x) => (x !== 0 ? 0 : 1)), { shape: [N, 1, 1, S], dtype: 'int32' });
      }
      if (am && !kpm) {
        const src = am._data as Int32Array;
        return ops.tensor(Int32Array.from(src, (x) => (x !== 0 ? 0 : 1)), { shape: amShape!, dtype: 'int32' });
      }
      const hh = amShape![1];
      const out = new Int32Array(N * hh * L * S);
      const a = am!._data as Int32Array, p = kpm!._data as Int32Array;
      for (let n = 0; n < N; n++)
        for (let h = 0; h < hh; h++)
          for (let i = 0; i < L; i++) {
            const ao = (amShape![0] === 1 ? 0 : (n * hh + h) * L * S) + i * S, oo = ((n * hh + h) * L + i) * S;
            for (let j = 0; j < S; j++) out[oo + j] = a[ao + j] === 0 && p[n * S + j] === 0 ? 1 : 0;
          }
      return ops.tensor(out, { shape: [N, hh, L, S], dtype: 'int32' });
    }
    // Additive: convert booleans to -inf and add.
    const hh = amShape ? amShape[1] : 1;
    const ll = amShape ? L : 1;
    const outShape = [kpm || (amShape && amShape[0] === N) ? N : 1, hh, kpm && !am ? 1 : ll, S];
    const out = new Float32Array(sizeOf(outShape));
    const a = am ? toAdditive(am, true) : null, p = kpm ? toAdditive(kpm, true) : null;
    const [oN, oH, oL] = outShape;
    for (let n = 0; n < oN; n++)
      for (let h = 0; h < oH; h++)
        for (let i = 0; i < oL; i++) {
          const oo = ((n * oH + h) * oL + i) * S;
          const ao = a ? (amShape![0] === 1 ? 0 : (n * oH + h) * L * S) + i * S : 0;
          for (let j = 0; j < S; j++) out[oo + j] = (a ? a[ao + j] : 0) + (p ? p[n * S + j] : 0);
        }
    return ops.tensor(out, { shape: outShape });
  }
}

/** Feed-forward activation of TransformerEncoderLayer: 'relu', 'gelu' or a function of a tensor. */
export type Activation = 'relu' | 'gelu' | ((x: Tensor) => Tensor);

/** Options of TransformerEncoderLayer (PyTorch's defaults). */
export interface TransformerEncoderLayerOptions {
  /** Model dimension (input and output features). */
  dModel: number;
  /** Number of attention heads; must divide dModel. */
  nhead: number;
  /** Hidden size of the feed-forward block. Default 2048. */
  dimFeedforward?: number;
  /** Dropout probability (attention, feed-forward and residual branches). Default 0.1. */
  dropout?: number;
  /** Feed-forward activation. Default 'relu'. */
  activation?: Activation;
  /** LayerNorm epsilon. Default 1e-5. */
  layerNormEps?: number;
  /** Inputs are (N, L, dModel) instead of (L, N, dModel). Default false. */
  batchFirst?: boolean;
  /** Pre-norm (LayerNorm before each block) instead of post-norm. Default false. */
  normFirst?: boolean;
  /** Biases in the linear layers and attention projections. Default true. */
  bias?: boolean;
}

/** Options of TransformerEncoderLayer.forward. */
export interface EncoderForwardOptions {
  /** (L, L) or (N * nhead, L, L): int32 nonzero = not allowed, or float32 added. */
  srcMask?: Tensor | null;
  /** (N, L): int32 nonzero = padding. */
  srcKeyPaddingMask?: Tensor | null;
  /** Each position attends only to itself and earlier ones (combined with any mask). Default false. */
  isCausal?: boolean;
}

/** torch.nn.TransformerEncoderLayer: self-attention and feed-forward blocks, residuals, LayerNorm. */
export class TransformerEncoderLayer extends Module {
  /** Self-attention block. */
  self_attn: MultiheadAttention;
  /** Feed-forward input projection, dModel -> dimFeedforward. */
  linear1: Linear;
  /** Dropout after the feed-forward activation. */
  dropout: Dropout;
  /** Feed-forward output projection, dimFeedforward -> dModel. */
  linear2: Linear;
  /** LayerNorm of the attention block. */
  norm1: LayerNorm;
  /** LayerNorm of the feed-forward block. */
  norm2: LayerNorm;
  /** Dropout on the attention output. */
  dropout1: Dropout;
  /** Dropout on the feed-forward output. */
  dropout2: Dropout;
  /** The options with their defaults filled in. */
  readonly config: Required<Omit<TransformerEncoderLayerOptions, 'activation'>> & {
    /** The feed-forward activation ('relu' by default). */
    activation: Activation;
  };

  constructor(opts: TransformerEncoderLayerOptions) {
    super();
    const op = 'TransformerEncoderLayer';
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: expected an options object {dModel, nhead, ...}, got ${describe(opts)}`);
    const dModel = checkInt(op, 'dModel', opts.dModel, 1);
    const nhead = checkInt(op, 'nhead', opts.nhead, 1);
    const ff = checkInt(op, 'dimFeedforward', opts.dimFeedforward ?? 2048, 1);
    const p = checkNumber(op, 'dropout', opts.dropout ?? 0.1, 0, 1);
    const eps = checkNumber(op, 'layerNormEps', opts.layerNormEps ?? 1e-5, 0);
    const activation = opts.activation ?? 'relu';
    if (activation !== 'relu' && activation !== 'gelu' && typeof activation !== 'function')
      throw new TypeError(`${op}: activation must be 'relu', 'gelu' or a function, got ${describe(activation)}`);
    const bias = opts.bias ?? true;
    this.config = { dModel, nhead, dimFeedforward: ff, dropout: p, activation, layerNormEps: eps,
      batchFirst: opts.batchFirst ?? false, normFirst: opts.normFirst ?? false, bias };
    this.self_attn = new MultiheadAttention({ embedDim: dModel, numHeads: nhead, dropout: p, bias, batchFirst: this.config.batchFirst });
    this.linear1 = new Linear(dModel, ff, { bias });
    this.dropout = new Dropout(p);
    this.linear2 = new Linear(ff, dModel, { bias });
    this.norm1 = new LayerNorm(dModel, { eps });
    this.norm2 = new LayerNorm(dModel, { eps });
    this.dropout1 = new Dropout(p);
    this.dropout2 = new Dropout(p);
  }

  /** A new layer with the same configuration and a copy of the weights. */
  clone(): TransformerEncoderLayer {
    const c = new TransformerEncoderLayer(this.config);
    noGrad(() => c.loadStateDict(this.stateDict()));
    c.train(this.training);
    return c;
  }

  private act(x: Tensor): Tensor {
    const a = this.config.activation;
    return a === 'relu' ? ops.relu(x) : a === 'gelu' ? ops.gelu(x) : a(x);
  }

  private sa(x: Tensor, o: EncoderForwardOptions): Tensor {
    const [y] = this.self_attn.forward(x, x, x, { attnMask: o.srcMask, keyPaddingMask: o.srcKeyPaddingMask, isCausal: o.isCausal });
    return this.dropout1.forward(y);
  }

  private ff(x: Tensor): Tensor {
    return this.dropout2.forward(this.linear2.forward(this.dropout.forward(this.act(this.linear1.forward(x)))));
  }

  /** src (L, N, dModel), or (N, L, dModel) when batchFirst -> same shape. */
  forward(src: Tensor, opts: EncoderForwardOptions = {}): Tensor {
    let x = src;
    if (this.config.normFirst) {
      x = ops.add(x, this.sa(this.norm1.forward(x), opts));
      x = ops.add(x, this.ff(this.norm2.forward(x)));
    } else {
      x = this.norm1.forward(ops.add(x, this.sa(x, opts)));
      x = this.norm2.forward(ops.add(x, this.ff(x)));
    }
    return x;
  }
}

/** torch.nn.TransformerEncoder: numLayers copies of a layer (or layers from a factory), optional final norm. */
export class TransformerEncoder extends Module {
  /** The encoder layers, applied in order (state_dict keys layers.0.*, layers.1.*, ...). */
  layers: TransformerEncoderLayer[];
  /** Final normalisation applied after the last layer, or null. */
  norm: Module | null;
  /**
   * @param layer A layer to clone numLayers times, or a factory called numLayers times.
   * @param numLayers Number of layers (>= 1).
   * @param opts norm: an optional final normalisation module.
   */
  constructor(layer: TransformerEncoderLayer | (() => TransformerEncoderLayer), readonly numLayers: number,
              opts: { norm?: Module | null } = {}) {
    super();
    checkInt('TransformerEncoder', 'numLayers', numLayers, 1);
    if (typeof layer === 'function') {
      this.layers = Array.from({ length: numLayers }, () => layer());
    } else if (layer instanceof TransformerEncoderLayer) {
      this.layers = Array.from({ length: numLayers }, () => layer.clone());
    } else {
      throw new TypeError(`TransformerEncoder: layer must be a TransformerEncoderLayer or a function returning one, got ${describe(layer)}`);
    }
    this.norm = opts.norm ?? null;
  }
  /**
   * src (L, N, dModel), or (N, L, dModel) when the layers are batchFirst -> same shape.
   * mask, srcKeyPaddingMask and isCausal are passed to every layer (as srcMask, srcKeyPaddingMask, isCausal).
   */
  forward(src: Tensor, opts: { mask?: Tensor | null; srcKeyPaddingMask?: Tensor | null; isCausal?: boolean } = {}): Tensor {
    let x = src;
    for (const l of this.layers) x = l.forward(x, { srcMask: opts.mask, srcKeyPaddingMask: opts.srcKeyPaddingMask, isCausal: opts.isCausal });
    if (this.norm) x = (this.norm as unknown as { forward(t: Tensor): Tensor }).forward(x);
    return x;
  }
}

/** Sinusoidal positions (Vaswani et al.): x + pe[:L], then dropout. pe (maxLen, dModel) is a buffer. */
export class PositionalEncoding extends Module {
  /** Sinusoidal table (maxLen, dModel): sin at even features, cos at odd ones (a buffer, not a parameter). */
  declare pe: Tensor;
  /** Dropout applied after adding the positions. */
  dropout: Dropout;
  /** True when inputs are (N, L, dModel). */
  readonly batchFirst: boolean;
  /**
   * @param dModel Model dimension.
   * @param opts dropout (default 0.1), maxLen (default 5000), batchFirst (default false).
   */
  constructor(readonly dModel: number, opts: { dropout?: number; maxLen?: number; batchFirst?: boolean } = {}) {
    super();
    checkInt('PositionalEncoding', 'dModel', dModel, 1);
    const maxLen = checkInt('PositionalEncoding', 'maxLen', opts.maxLen ?? 5000, 1);
    this.batchFirst = opts.batchFirst ?? false;
    const pe = new Float32Array(maxLen * dModel);
    for (let pos = 0; pos < maxLen; pos++)
      for (let i = 0; i < dModel; i += 2) {
        const angle = pos * Math.exp(-(i * Math.log(10000)) / dModel);
        pe[pos * dModel + i] = Math.sin(angle);
        if (i + 1 < dModel) pe[pos * dModel + i + 1] = Math.cos(angle);
      }
    this.registerBuffer('pe', ops.tensor(pe, { shape: [maxLen, dModel] }));
    this.dropout = new Dropout(opts.dropout ?? 0.1);
  }
  /** x (L, N, dModel) (or (N, L, dModel) when batchFirst) -> x + pe[:L], then dropout. Throws RangeError when L > maxLen. */
  forward(x: Tensor): Tensor {
    return this.dropout.forward(addPositions('PositionalEncoding', x, this.pe, this.batchFirst));
  }
}

/** Learned absolute positions: x + weight[:L], then dropout. weight (maxLen, dModel) ~ N(0, 0.02^2). */
export class LearnedPositionalEmbedding extends Module {
  /** Position table (maxLen, dModel), a parameter initialised from N(0, 0.02^2). */
  weight: Tensor;
  /** Dropout applied after adding the positions. */
  dropout: Dropout;
  /** True when inputs are (N, L, dModel). */
  readonly batchFirst: boolean;
  /**
   * @param maxLen Longest sequence supported.
   * @param dModel Model dimension.
   * @param opts dropout (default 0), batchFirst (default false).
   */
  constructor(readonly maxLen: number, readonly dModel: number, opts: { dropout?: number; batchFirst?: boolean } = {}) {
    super();
    checkInt('LearnedPositionalEmbedding', 'maxLen', maxLen, 1);
    checkInt('LearnedPositionalEmbedding', 'dModel', dModel, 1);
    this.batchFirst = opts.batchFirst ?? false;
    this.weight = parameter(ops.randn([maxLen, dModel], { std: 0.02 }));
    this.dropout = new Dropout(opts.dropout ?? 0);
  }
  /** x (L, N, dModel) (or (N, L, dModel) when batchFirst) -> x + weight[:L], then dropout. Throws RangeError when L > maxLen. */
  forward(x: Tensor): Tensor {
    return this.dropout.forward(addPositions('LearnedPositionalEmbedding', x, this.weight, this.batchFirst));
  }
}

function addPositions(op: string, x: Tensor, table: Tensor, batchFirst: boolean): Tensor {
  ops.checkAny(op, 'input', x);
  const [maxLen, d] = table.shape;
  if (x.ndim !== 3 || x.shape[2] !== d)
    throw new RangeError(`${op}: expected input of shape ${batchFirst ? '(N, L, dModel)' : '(L, N, dModel)'} with dModel = ${d}, got ${shapeStr(x)}`);
  const L = batchFirst ? x.shape[1] : x.shape[0];
  if (L > maxLen) throw new RangeError(`${op}: sequence length ${L} exceeds maxLen ${maxLen}`);
  const rows = ops.slice(table, 0, 0, L);
  const pos = ops.reshape(rows, batchFirst ? [1, L, d] : [L, 1, d]);
  return ops.add(x, pos);
}
