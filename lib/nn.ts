// tsm.nn: modules. Parameters and submodules assigned as properties are found by walking the
// module's own properties in assignment order, so `this.conv1 = new Conv2d(...)` registers
// `conv1.weight` and `conv1.bias` as in PyTorch. Buffers (running statistics) are registered
// explicitly with registerBuffer under their PyTorch names.
import { checkBool, checkInt, checkNumber, describe } from './check';
import * as F from './functional';
import * as ops from './ops';
import { checkDevice, keep, noGrad, sizeOf, Tensor } from './tensor';

const PARAM = Symbol('tsm.parameter');

/** Marks a tensor as a trainable parameter (requiresGrad on). */
export function parameter(t: Tensor): Tensor {
  t.requiresGrad_(true);
  (t as unknown as Record<symbol, boolean>)[PARAM] = true;
  return t;
}

/** True when `v` is a tensor marked by {@link parameter} (what {@link Module.namedParameters} collects). */
export function isParameter(v: unknown): v is Tensor {
  return v instanceof Tensor && (v as unknown as Record<symbol, boolean>)[PARAM] === true;
}

/** Result of {@link Module.loadStateDict}: keys the module has but the state dict lacks, and the reverse. */
export interface LoadResult {
  /** Module keys absent from the state dict (left unchanged). */
  missingKeys: string[];
  /** State-dict keys the module does not have (ignored). */
  unexpectedKeys: string[];
}

/**
 * Base class of all layers, as `torch.nn.Module`. Subclasses implement `forward`; parameters
 * (tensors made with {@link parameter}) and submodules assigned as properties are registered
 * automatically, in assignment order, and named as in PyTorch (`conv1.weight`).
 * Training helpers `fit`/`evaluate` are added to the prototype by the training module.
 * @example
 * ```ts
 * class Net extends tsm.nn.Module {
 *   fc = new tsm.nn.Linear(784, 10);
 *   forward(x: tsm.Tensor) { return this.fc.forward(x); }
 * }
 * const net = new Net();
 * net.parameters().length; // 2 (fc.weight, fc.bias)
 * ```
 */
export abstract class Module {
  /** True in training mode (the default); switched with {@link Module.train} / {@link Module.eval}. Dropout and BatchNorm read it. */
  training = true;
  private readonly _buffers = new Map<string, Tensor | null>();

  /** Computes the module's output; call it directly (`m.forward(x)`), there is no `__call__`. */
  abstract forward(...args: never[]): unknown;

  /** Registers a buffer (saved in stateDict, not trained) under `name`, also set as a property. */
  registerBuffer(name: string, t: Tensor | null): void {
    this._buffers.set(name, t);
    (this as unknown as Record<string, unknown>)[name] = t;
  }

  /** Direct children, in assignment order (arrays of modules are numbered like ModuleList). */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (k.startsWith('_')) continue;
      if (v instanceof Module) out.push([k, v]);
      else if (Array.isArray(v) && v.length && v.every((m) => m instanceof Module)) v.forEach((m, i) => out.push([`${k}.${i}`, m as Module]));
    }
    return out;
  }

  /** This module (named `prefix`) and all descendants, depth-first, with dotted names. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [k, m] of this.namedChildren()) out.push(...m.namedModules(prefix ? `${prefix}.${k}` : k));
    return out;
  }

  /** All parameters of this module and its descendants with dotted names; a shared tensor is listed once. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [mp, m] of this.namedModules(prefix)) {
      for (const [k, v] of Object.entries(m)) {
        if (isParameter(v) && !seen.has(v)) {
          seen.add(v);
          out.push([mp ? `${mp}.${k}` : k, v]);
        }
      }
    }
    return out;
  }

  /** All parameters (the tensors of {@link Module.namedParameters}), e.g. for an optimizer. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Registered buffers (e.g. `running_mean`) of this module and its descendants; null buffers are skipped. */
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [mp, m] of this.namedModules()) {
      for (const [k, v] of m._buffers) {
        const cur = (m as unknown as Record<string, Tensor | null>)[k] ?? v;
        if (cur) out.push([mp ? `${mp}.${k}` : k, cur]);
      }
    }
    return out;
  }

  /** Sets `training` to `mode` on this module and all descendants; returns `this`. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Evaluation mode: same as `train(false)`. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Moves every parameter and buffer (and existing gradients) to `device` (`'cpu'`, `'cuda'`,
   * `'cuda:N'`) in place, as PyTorch: the tensor objects stay the same, so optimizers made before
   * keep working on them (their state is not moved: create optimizers after `to()`). TsmCudaError
   * when the CUDA device is not available (the message says why), TypeError for an unknown device
   * string. Returns `this`.
   * @example
   * ```ts
   * const model = new nn.Sequential(new nn.Linear(784, 128), new nn.ReLU(), new nn.Linear(128, 10)).to('cuda');
   * ```
   */
  to(device: string): this {
    const target = checkDevice('Module.to', device);
    const seen = new Set<Tensor>();
    for (const t of [...this.parameters(), ...this.namedBuffers().map(([, b]) => b)]) {
      if (seen.has(t) || t.device === target) continue;
      seen.add(t);
      noGrad(() => {
        const view = t.detach();
        const moved = ops.to(view, target);
        view.dispose();
        t._adoptStorage(moved);
        if (t.grad && t.grad.device !== target) {
          const g = ops.to(t.grad, target);
          t.grad.dispose();
          t.grad = keep(g);
        }
      });
    }
    return this;
  }

  /** Disposes and clears (`null`) the `grad` of every parameter. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Parameters and buffers by PyTorch name (the tensors themselves, not copies). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [k, p] of this.namedParameters()) out[k] = p;
    for (const [k, b] of this.namedBuffers()) out[k] = b;
    return out;
  }

  /** Copies values by name; with strict (default) a missing or unexpected key is an error. */
  loadStateDict(sd: Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    if (typeof sd !== 'object' || sd === null) throw new TypeError(`loadStateDict: expected an object of tensors, got ${describe(sd)}`);
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !(k in sd));
    const unexpectedKeys = Object.keys(sd).filter((k) => !(k in own));
    if (strict && (missingKeys.length || unexpectedKeys.length))
      throw new RangeError(`loadStateDict: missing keys [${missingKeys.join(', ')}], unexpected keys [${unexpectedKeys.join(', ')}]`);
    for (const [k, dst] of Object.entries(own)) {
      const src = sd[k];
      if (!src) continue;
      if (!(src instanceof Tensor)) throw new TypeError(`loadStateDict: ${k} must be a Tensor, got ${describe(src)}`);
      if (src.shape.join(',') !== dst.shape.join(','))
        throw new RangeError(`loadStateDict: ${k} has shape [${src.shape.join(', ')}], the module expects [${dst.shape.join(', ')}]`);
      const s = src.device === 'cpu' ? src._data : src.dataSync();
      const values = dst.dtype === 'float32' ? (s instanceof Float32Array ? s : Float32Array.from(s)) : Int32Array.from(s, (v) => Math.trunc(v));
      if (dst.device === 'cpu') dst._data.set(values);
      else dst._adoptStorage(ops.tensor(values, { shape: dst.shape.slice(), dtype: dst.dtype, device: dst.device }));
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Number of trainable parameters. */
  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }
}

function uniformInit(shape: number[], bound: number): Tensor {
  return parameter(ops.rand(shape, { low: -bound, high: bound }));
}

/** y = x W^T + b; weight (out, in) and bias (out) initialised U(-1/sqrt(in), 1/sqrt(in)) as PyTorch. */
export class Linear extends Module {
  /** Learnable weight (see the class description for its shape and initialisation). */
  weight: Tensor;
  /** Learnable bias, or null when created with `bias: false`. */
  bias: Tensor | null;
  /**
   * @param inFeatures size of the last input dim
   * @param outFeatures size of the last output dim
   * @param opts `bias` (default true) adds the bias term
   * @throws RangeError/TypeError when a size is not a positive integer
   */
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
    checkInt('Linear', 'inFeatures', inFeatures, 1);
    checkInt('Linear', 'outFeatures', outFeatures, 1);
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = uniformInit([outFeatures, inFeatures], bound);
    this.bias = opts.bias === false ? null : uniformInit([outFeatures], bound);
  }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

type Pair = F.Pair;

/** A size given as a number or [h, w], each an integer >= min (undefined/null: the default). */
function checkPair(op: string, name: string, v: unknown, min: number): [number, number] | null {
  if (v === undefined || v === null) return null;
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2) throw new TypeError(`${op}: ${name} must be a number or [h, w], got ${describe(v)}`);
  return [checkInt(op, name, p[0], min), checkInt(op, name, p[1], min)];
}

function checkPoolOptions(op: string, kernelSize: unknown, opts: Record<string, unknown>): void {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: options must be an object, got ${describe(opts)}`);
  const k = checkPair(op, 'kernelSize', kernelSize, 1);
  if (!k) throw new TypeError(`${op}: kernelSize must be a number or [h, w], got ${describe(kernelSize)}`);
  checkPair(op, 'stride', opts.stride, 1);
  checkPair(op, 'dilation', opts.dilation, 1);
  const p = checkPair(op, 'padding', opts.padding, 0);
  if (p && (p[0] > k[0] / 2 || p[1] > k[1] / 2))
    throw new RangeError(`${op}: padding (${p.join(', ')}) must be at most half the kernel size (${k.join(', ')})`);
  if (opts.ceilMode !== undefined) checkBool(op, 'ceilMode', opts.ceilMode);
  if (opts.countIncludePad !== undefined) checkBool(op, 'countIncludePad', opts.countIncludePad);
}

function checkLossOptions(op: string, options: object): void {
  const opts = options as Record<string, unknown>;
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: options must be an object, got ${describe(opts)}`);
  if (opts.reduction !== undefined) F.checkReduction(op, opts.reduction);
  if (opts.ignoreIndex !== undefined) checkInt(op, 'ignoreIndex', opts.ignoreIndex);
  if (opts.labelSmoothing !== undefined) checkNumber(op, 'labelSmoothing', opts.labelSmoothing, 0, 1);
}

/**
 * 2-d convolution layer over input (N, C_in, H, W) giving (N, C_out, H_out, W_out), as `torch.nn.Conv2d`.
 * Weight (C_out, C_in/groups, KH, KW) and bias (C_out) are initialised U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
 * Options as {@link F.Conv2dOptions} plus `bias` (default true). Throws RangeError when the
 * channel counts are not divisible by `groups` or a size is not a positive integer.
 */
export class Conv2d extends Module {
  /** Learnable weight (see the class description for its shape and initialisation). */
  weight: Tensor;
  /** Learnable bias, or null when created with `bias: false`. */
  bias: Tensor | null;
  /** Stride, padding, dilation and groups passed to {@link F.conv2d}. */
  readonly opts: F.Conv2dOptions;
  /**
   * @param inChannels C_in, channels of the input
   * @param outChannels C_out, channels produced
   * @param kernelSize KH = KW, or [KH, KW]
   */
  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair,
              opts: F.Conv2dOptions & { bias?: boolean } = {}) {
    super();
    checkInt('Conv2d', 'inChannels', inChannels, 1);
    checkInt('Conv2d', 'outChannels', outChannels, 1);
    const groups = opts.groups ?? 1;
    checkInt('Conv2d', 'groups', groups, 1);
    if (inChannels % groups || outChannels % groups)
      throw new RangeError(`Conv2d: inChannels (${inChannels}) and outChannels (${outChannels}) must be divisible by groups (${groups})`);
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    checkInt('Conv2d', 'kernelSize', kh, 1);
    checkInt('Conv2d', 'kernelSize', kw, 1);
    checkPair('Conv2d', 'stride', opts.stride, 1);
    checkPair('Conv2d', 'padding', opts.padding, 0);
    checkPair('Conv2d', 'dilation', opts.dilation, 1);
    const fanIn = (inChannels / groups) * kh * kw;
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = uniformInit([outChannels, inChannels / groups, kh, kw], bound);
    this.bias = opts.bias === false ? null : uniformInit([outChannels], bound);
    this.opts = { stride: opts.stride, padding: opts.padding, dilation: opts.dilation, groups };
  }
  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, this.opts);
  }
}

/**
 * Max pooling over (N, C, H, W), see {@link F.maxPool2d}; `stride` defaults to `kernelSize`.
 * Throws when padding exceeds half the kernel or an option is invalid.
 */
export class MaxPool2d extends Module {
  /** Pooling options as given, with `kernelSize` merged in. */
  readonly opts: F.Pool2dOptions;
  constructor(kernelSize: Pair, opts: Omit<F.Pool2dOptions, 'kernelSize'> = {}) {
    super();
    checkPoolOptions(new.target.name, kernelSize, opts as Record<string, unknown>);
    this.opts = { ...opts, kernelSize };
  }
  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.opts);
  }
}

/** Average pooling over (N, C, H, W), see {@link F.avgPool2d}; `stride` defaults to `kernelSize`. */
export class AvgPool2d extends Module {
  /** Pooling options as given, with `kernelSize` merged in. */
  readonly opts: F.Pool2dOptions;
  constructor(kernelSize: Pair, opts: Omit<F.Pool2dOptions, 'kernelSize'> = {}) {
    super();
    checkPoolOptions(new.target.name, kernelSize, opts as Record<string, unknown>);
    this.opts = { ...opts, kernelSize };
  }
  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.opts);
  }
}

/** Average pooling to a fixed output size (N, C, oh, ow) whatever the input H, W, see {@link F.adaptiveAvgPool2d}. */
export class AdaptiveAvgPool2d extends Module {
  /** @param outputSize output (oh, ow), one number for both or [oh, ow] */
  constructor(readonly outputSize: Pair) {
    super();
    if (!checkPair('AdaptiveAvgPool2d', 'outputSize', outputSize, 1))
      throw new TypeError(`AdaptiveAvgPool2d: outputSize must be a number or [h, w], got ${describe(outputSize)}`);
  }
  forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }
}

/** Flattens dims `startDim`..`endDim` (default 1..-1) into one, keeping the batch dim. */
export class Flatten extends Module {
  /**
   * @param startDim first dim to flatten (negative counts from the end)
   * @param endDim last dim to flatten, inclusive
   */
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
    checkInt('Flatten', 'startDim', startDim);
    checkInt('Flatten', 'endDim', endDim);
  }
  forward(x: Tensor): Tensor {
    return ops.flatten(x, this.startDim, this.endDim);
  }
}

/** Element-wise max(x, 0). */
export class ReLU extends Module {
  forward(x: Tensor): Tensor { return ops.relu(x); }
}
/** Gaussian error linear unit; `approximate: 'tanh'` uses the tanh approximation (RangeError for other values). */
export class GELU extends Module {
  /** @param approximate `'none'` (exact, erf-based) or `'tanh'` */
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
    if (approximate !== 'none' && approximate !== 'tanh')
      throw new RangeError(`GELU: approximate must be 'none' or 'tanh', got ${describe(approximate)}`);
  }
  forward(x: Tensor): Tensor { return ops.gelu(x, this.approximate); }
}
/** Element-wise 1 / (1 + exp(-x)). */
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor { return ops.sigmoid(x); }
}
/** Element-wise hyperbolic tangent. */
export class Tanh extends Module {
  forward(x: Tensor): Tensor { return ops.tanh(x); }
}
/** Softmax along `dim` (default -1). */
export class Softmax extends Module {
  /** @param dim the dim along which values sum to 1 */
  constructor(readonly dim = -1) { super(); checkInt('Softmax', 'dim', dim); }
  forward(x: Tensor): Tensor { return ops.softmax(x, this.dim); }
}
/** log(softmax(x)) along `dim` (default -1), computed stably. */
export class LogSoftmax extends Module {
  /** @param dim the dim along which softmax is taken */
  constructor(readonly dim = -1) { super(); checkInt('LogSoftmax', 'dim', dim); }
  forward(x: Tensor): Tensor { return ops.logSoftmax(x, this.dim); }
}
/** Returns its input unchanged. */
export class Identity extends Module {
  forward(x: Tensor): Tensor { return x; }
}

/**
 * Zeroes elements with probability `p` (default 0.5) and scales the rest by 1/(1-p) in training
 * mode; in eval mode returns a copy of the input. RangeError unless 0 <= p <= 1.
 */
export class Dropout extends Module {
  /** @param p probability of zeroing an element */
  constructor(readonly p = 0.5) {
    super();
    checkNumber('Dropout', 'p', p, 0, 1);
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
}

/**
 * Lookup table: int32 indices of any shape give float32 rows, output shape [...indices.shape, embeddingDim].
 * Weight (numEmbeddings, embeddingDim) is initialised N(0, 1); the row at `paddingIdx` is zeroed
 * and receives no gradient. RangeError for an index outside [0, numEmbeddings).
 */
export class Embedding extends Module {
  /** Learnable weight (see the class description for its shape and initialisation). */
  weight: Tensor;
  /**
   * @param numEmbeddings vocabulary size (rows of the table)
   * @param embeddingDim size of each embedding vector
   * @param opts `paddingIdx`: a row kept at zero gradient (and initialised to zero)
   */
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, readonly opts: {
    /** Row kept at zero that receives no gradient. */
    paddingIdx?: number;
  } = {}) {
    super();
    checkInt('Embedding', 'numEmbeddings', numEmbeddings, 1);
    checkInt('Embedding', 'embeddingDim', embeddingDim, 1);
    const pad = opts.paddingIdx;
    if (pad !== undefined) checkInt('Embedding', 'paddingIdx', pad, 0, numEmbeddings - 1);
    const w = ops.randn([numEmbeddings, embeddingDim]);
    if (pad !== undefined) (w._data as Float32Array).fill(0, pad * embeddingDim, (pad + 1) * embeddingDim);
    this.weight = parameter(w);
  }
  forward(indices: Tensor): Tensor {
    return F.embedding(indices, this.weight, this.opts.paddingIdx ?? null);
  }
}

/**
 * Layer normalisation over the trailing dims `normalizedShape`, as `torch.nn.LayerNorm`;
 * `eps` defaults to 1e-5, `elementwiseAffine` (default true) adds weight (ones) and bias (zeros).
 */
export class LayerNorm extends Module {
  /** Learnable scale (initialised to ones), or null without the affine transform. */
  weight: Tensor | null;
  /** Learnable bias, or null when created with `bias: false`. */
  bias: Tensor | null;
  /** The trailing dims normalised over, as an array. */
  readonly normalizedShape: number[];
  /**
   * @param normalizedShape trailing dim size(s) to normalise over
   * @param opts `eps` (default 1e-5) added to the variance; `elementwiseAffine` (default true)
   */
  constructor(normalizedShape: number | number[], readonly opts: {
    /** Added to the variance (default 1e-5). */
    eps?: number;
    /** Learnable weight and bias (default true). */
    elementwiseAffine?: boolean;
  } = {}) {
    super();
    if (typeof normalizedShape !== 'number' && !Array.isArray(normalizedShape))
      throw new TypeError(`LayerNorm: normalizedShape must be a number or an array of sizes, got ${describe(normalizedShape)}`);
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape.slice();
    if (this.normalizedShape.length === 0) throw new RangeError('LayerNorm: normalizedShape must not be empty');
    for (const d of this.normalizedShape) checkInt('LayerNorm', 'normalizedShape', d, 1);
    if (opts.eps !== undefined) checkNumber('LayerNorm', 'eps', opts.eps, 0);
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? parameter(ops.ones(this.normalizedShape)) : null;
    this.bias = affine ? parameter(ops.zeros(this.normalizedShape)) : null;
  }
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.opts.eps ?? 1e-5);
  }
}

/**
 * Batch normalisation of (N, C, H, W) per channel, as `torch.nn.BatchNorm2d`. In training mode
 * it uses batch statistics and updates `running_mean`/`running_var` with `momentum` (default 0.1);
 * in eval mode it uses the running statistics. `eps` defaults to 1e-5, `affine` to true.
 * Throws RangeError for input not of rank 4.
 */
export class BatchNorm2d extends Module {
  /** Learnable scale (initialised to ones), or null without the affine transform. */
  weight: Tensor | null;
  /** Learnable bias, or null when created with `bias: false`. */
  bias: Tensor | null;
  /** Running per-channel mean (buffer, starts at zeros). */
  declare running_mean: Tensor;
  /** Running per-channel variance (buffer, starts at ones). */
  declare running_var: Tensor;
  /** int32 scalar buffer counting training-mode forward calls. */
  declare num_batches_tracked: Tensor;
  /** Added to the variance for numerical stability (default 1e-5). */
  readonly eps: number;
  /** Weight of the new batch statistic in the running-stat update (default 0.1). */
  readonly momentum: number;
  /**
   * @param numFeatures C, the number of channels
   * @param opts `eps`, `momentum` and `affine` (learnable weight and bias, default true)
   */
  constructor(readonly numFeatures: number, opts: { eps?: number; momentum?: number; affine?: boolean } = {}) {
    super();
    checkInt('BatchNorm2d', 'numFeatures', numFeatures, 1);
    this.eps = checkNumber('BatchNorm2d', 'eps', opts.eps ?? 1e-5, 0);
    this.momentum = checkNumber('BatchNorm2d', 'momentum', opts.momentum ?? 0.1, 0, 1);
    const affine = opts.affine ?? true;
    this.weight = affine ? parameter(ops.ones([numFeatures])) : null;
    this.bias = affine ? parameter(ops.zeros([numFeatures])) : null;
    this.registerBuffer('running_mean', ops.zeros([numFeatures]));
    this.registerBuffer('running_var', ops.ones([numFeatures]));
    this.registerBuffer('num_batches_tracked', ops.zeros([], { dtype: 'int32' }));
  }
  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new RangeError(`BatchNorm2d: expected input of rank 4 (N,C,H,W), got shape [${x.shape.join(', ')}]`);
    // F.batchNorm increments num_batches_tracked when training (on a CUDA device, the kernel does).
    return F.batchNorm(x, this.running_mean, this.running_var, this.weight, this.bias,
      { training: this.training, momentum: this.momentum, eps: this.eps, numBatchesTracked: this.num_batches_tracked });
  }
}

/** Runs modules in order. */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => {
      if (!(m instanceof Module)) throw new TypeError(`Sequential: argument ${i} must be a Module, got ${describe(m)}`);
      (this as unknown as Record<string, Module>)[String(i)] = m;
    });
  }
  /** Number of child modules. */
  get length(): number {
    return this.namedChildren().length;
  }
  /** The i-th child module. */
  at(i: number): Module {
    return this.namedChildren()[i][1];
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const [, m] of this.namedChildren()) y = (m as unknown as { forward(t: Tensor): Tensor }).forward(y);
    return y;
  }
}

// ---- loss modules ----
/** Softmax cross-entropy of logits (N, C, ...) and int32 class targets (N, ...), see {@link F.crossEntropy}. */
export class CrossEntropyLoss extends Module {
  /** @param opts reduction, ignoreIndex and labelSmoothing, see {@link F.CrossEntropyOptions} */
  constructor(readonly opts: F.CrossEntropyOptions = {}) { super(); checkLossOptions('CrossEntropyLoss', opts); }
  forward(input: Tensor, target: Tensor): Tensor { return F.crossEntropy(input, target, this.opts); }
}
/** Mean squared error of same-shape float32 input and target (reduction default `'mean'`). */
export class MSELoss extends Module {
  /** @param opts `reduction`: 'mean' (default), 'sum' or 'none' */
  constructor(readonly opts: {
    /** 'mean' (default), 'sum' or 'none'. */
    reduction?: F.Reduction;
  } = {}) { super(); checkLossOptions('MSELoss', opts); }
  forward(input: Tensor, target: Tensor): Tensor { return F.mseLoss(input, target, this.opts); }
}
/** Binary cross-entropy of probabilities in [0, 1], see {@link F.binaryCrossEntropy}. */
export class BCELoss extends Module {
  /** @param opts `reduction`: 'mean' (default), 'sum' or 'none' */
  constructor(readonly opts: {
    /** 'mean' (default), 'sum' or 'none'. */
    reduction?: F.Reduction;
  } = {}) { super(); checkLossOptions('BCELoss', opts); }
  forward(input: Tensor, target: Tensor): Tensor { return F.binaryCrossEntropy(input, target, this.opts); }
}
/** Sigmoid + binary cross-entropy from logits (numerically stable); optional `posWeight` for positives. */
export class BCEWithLogitsLoss extends Module {
  /** @param opts `reduction` ('mean' default, 'sum', 'none'); `posWeight` multiplies the positive term */
  constructor(readonly opts: {
    /** 'mean' (default), 'sum' or 'none'. */
    reduction?: F.Reduction;
    /** Weight of the positive term, broadcast against the target. */
    posWeight?: Tensor;
  } = {}) { super(); checkLossOptions('BCEWithLogitsLoss', opts); }
  forward(input: Tensor, target: Tensor): Tensor { return F.binaryCrossEntropyWithLogits(input, target, this.opts); }
}
/** Negative log-likelihood of log-probabilities (N, C) and int32 targets (N), see {@link F.nllLoss}. */
export class NLLLoss extends Module {
  /** @param opts `reduction` ('mean' default, 'sum', 'none'); `ignoreIndex` (default -100) targets contribute 0 */
  constructor(readonly opts: {
    /** 'mean' (default), 'sum' or 'none'. */
    reduction?: F.Reduction;
    /** Target value that contributes no loss (default -100). */
    ignoreIndex?: number;
  } = {}) { super(); checkLossOptions('NLLLoss', opts); }
  forward(input: Tensor, target: Tensor): Tensor { return F.nllLoss(input, target, this.opts); }
}

/** Copies parameter values without recording gradients (used by initialisers and tests). */
export function copyInto(dst: Tensor, values: ArrayLike<number>): void {
  noGrad(() => {
    if (values.length !== sizeOf(dst.shape)) throw new RangeError(`copyInto: expected ${dst.size} values, got ${values.length}`);
    (dst._data as Float32Array).set(values);
  });
}
