// Keras-style training on every nn.Module: compile / fit / evaluate / predict.
//
// Importing this file (lib/index.ts does) adds the methods to Module.prototype; the declaration
// merging below types them on every module.
//
//   model.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy'] });
//   const history = await model.fit(x, y, { epochs: 5, batchSize: 64, validationSplit: 0.1 });
//   model.evaluate(xTest, yTest);   // { loss, accuracy }
//   model.predict(xNew);            // batched, without gradients
//
// Every training step runs inside tidy(): the batch, the activations and the graph are freed with
// the step, so memory stays flat across epochs. fit() yields to the event loop after every batch.
//
// CUDA models (model.to('cuda') before compile): each batch is moved to the model's device after it
// was gathered where the data is (the CPU, usually), inside the step's tidy. fit() does not read the
// loss back every step: the batch losses are summed on the device and the predictions (and device
// targets) of the steps since the last read are kept there; every DEVICE_READ_EVERY steps and at the
// end of the epoch one read back fetches the loss sum and one the predictions, and the metrics are
// updated from those on the host. So the batch logs (progress bar, onBatchEnd) carry the loss and
// metrics as of the last read, and the epoch logs are exact. evaluate() reads back per batch (it
// does not train); predict() returns its result on the device of x, read back once at the end.
import { describe, checkInt, checkNumber } from './check';
import {
  progressBar, type CallbackHooks, type Logs, type TrainingParams,
} from './callbacks';
import { DataLoader, TensorDataset, Subset, disposeBatch, type Dataset } from './data';
import * as F from './functional';
import * as metricsLib from './metrics';
import { Module } from './nn';
import * as optim from './optim';
import * as ops from './ops';
import { keep, noGrad, tidy, Tensor } from './tensor';
import * as cu from './cuda-tensor';

/** fit() on a CUDA model reads the loss and the predictions back once per this many steps (and at the end of each epoch). */
export const DEVICE_READ_EVERY = 16;

/** The device of the model's parameters ('cpu' without parameters). */
function deviceOf(model: Module): string {
  return model.parameters()[0]?.device ?? 'cpu';
}

/** `t` on `device` (itself when already there). */
function onDevice(t: Tensor, device: string): Tensor {
  return t.device === device ? t : ops.to(t, device as Parameters<typeof ops.to>[1]);
}

/** A loss computed from the model's output and the target; must return a scalar tensor. */
export type LossFunction = (pred: Tensor, target: Tensor) => Tensor;
/**
 * Loss names accepted by {@link CompileConfig.loss} (PyTorch and Keras spellings): cross-entropy from
 * logits (int class targets, or soft/one-hot float targets), MSE, MAE, BCE on probabilities, BCE
 * with logits, and NLL on log-probabilities.
 */
export type LossName = 'crossEntropy' | 'categoricalCrossentropy' | 'sparseCategoricalCrossentropy' | 'mse' |
  'meanSquaredError' | 'mae' | 'meanAbsoluteError' | 'binaryCrossEntropy' | 'binaryCrossentropy' | 'bce' |
  'bceWithLogits' | 'binaryCrossEntropyWithLogits' | 'nll' | 'nllLoss';
/** Optimizer names accepted by {@link CompileConfig.optimizer}. */
export type OptimizerName = 'adam' | 'sgd' | 'adamw' | 'rmsprop';
/** A metric for compile(): a name, a function (pred, target) => number or scalar Tensor, or a {@link metrics.Metric}. */
export type MetricSpec = string | ((pred: Tensor, target: Tensor) => number | Tensor) | metricsLib.Metric;

/** Argument of {@link Module.compile}. */
export interface CompileConfig {
  /** An optimizer over this model's parameters, a name (Keras default learning rates: sgd 0.01,
   * adam/adamw/rmsprop 0.001), or a factory (params) => optimizer. */
  optimizer: optim.Optimizer | OptimizerName | ((params: Tensor[]) => optim.Optimizer);
  /** A loss name, a function (pred, target) => scalar Tensor, or a loss module (nn.CrossEntropyLoss...). */
  loss: LossName | LossFunction | Module;
  /** Metric names (see tsm.metrics.METRIC_NAMES), functions (pred, target) => number, or Metric objects. */
  metrics?: MetricSpec[];
  /** Learning rate for a named optimizer. */
  lr?: number;
}

/** One batch: [input, target], [input1, input2, ..., target] or {x, y}. */
export type Batch = Tensor[] | {
  /** Input tensor(s). */
  x: Tensor | Tensor[];
  /** Target tensor. */
  y: Tensor;
};
/** What fit/evaluate accept besides (x, y) tensors. */
export type BatchSource = Dataset | DataLoader | Iterable<Batch> | AsyncIterable<Batch>;

/** Options of {@link Module.fit}. */
export interface FitOptions {
  /** Number of epochs to train (default 1). */
  epochs?: number;
  /** Samples per batch for tensor or Dataset input (default 32). A DataLoader keeps its own. */
  batchSize?: number;
  /** Shuffle tensor or Dataset input every epoch (default true). */
  shuffle?: boolean;
  /** Seed of the shuffling (default: drawn from tsm's generator, so manualSeed makes it reproducible). */
  seed?: number;
  /** Hold out the last fraction of the samples (before shuffling) for validation, as Keras. */
  validationSplit?: number;
  /** [x, y] tensors, a Dataset, a DataLoader or an iterable of batches, evaluated after each epoch. */
  validationData?: [Tensor | Tensor[], Tensor] | Dataset | DataLoader | Iterable<Batch>;
  /** Batch size for validation (default: batchSize). */
  validationBatchSize?: number;
  /** Objects with Keras-style hooks (onEpochEnd...), called during training. */
  callbacks?: CallbackHooks[];
  /** Sum the gradients of n batches, then take one optimizer step (default 1). */
  gradAccumulation?: number;
  /** Clip the global gradient norm before each step. */
  clipGradNorm?: number;
  /** 0: silent, 1: progress bar (TTY-aware), 2: one line per epoch (default 1). */
  verbose?: 0 | 1 | 2;
  /** The epoch to start at (for resuming); epochs run from initialEpoch to epochs - 1. */
  initialEpoch?: number;
}

/** Options of {@link Module.evaluate}. */
export interface EvaluateOptions {
  /** Samples per batch for tensor or Dataset input (default 32). */
  batchSize?: number;
}

/** Options of {@link Module.predict}. */
export interface PredictOptions {
  /** Samples per batch (default 32). */
  batchSize?: number;
}

/** What fit() returns: per-epoch values by Keras name (loss, accuracy, val_loss, val_accuracy...). */
export class History {
  /** Values per epoch by metric name (`loss`, `accuracy`, `val_loss`...); NaN where an epoch lacked one. */
  readonly history: Record<string, number[]> = {};
  /** The epoch indices recorded, in order. */
  readonly epoch: number[] = [];
  /** Training parameters (epochs, batchSize...) set by fit(). */
  params: TrainingParams | null = null;
  /** Appends one epoch's logs. */
  record(epoch: number, logs: Logs): void {
    this.epoch.push(epoch);
    const n = this.epoch.length;
    for (const [k, v] of Object.entries(logs)) {
      const arr = (this.history[k] ??= []);
      while (arr.length < n - 1) arr.push(NaN);
      arr.push(v);
    }
    for (const arr of Object.values(this.history)) while (arr.length < n) arr.push(NaN);
  }
  /** `{history, epoch}` for JSON.stringify. */
  toJSON(): {
    /** The same object as History.history. */
    history: Record<string, number[]>;
    /** The same array as History.epoch. */
    epoch: number[];
  } {
    return { history: this.history, epoch: this.epoch };
  }
}

/** @internal The state compile() leaves on a module. */
export interface Compiled {
  optimizer: optim.Optimizer;
  loss: LossFunction;
  lossName: string;
  metricSpecs: MetricSpec[];
  metricNames: string[];
  binaryLogits: boolean;
  /** The loss as given to compile() (fitAsync sends it to its worker thread). */
  lossSpec: CompileConfig['loss'];
}

declare module './nn' {
  interface Module {
    /** Configures training: optimizer, loss and metrics (Keras's model.compile). */
    compile(config: CompileConfig): void;
    /**
     * Trains on input tensor(s) `x` and targets `y` (first dim = samples) for `opts.epochs` epochs
     * (default 1) in batches of 32, as Keras's model.fit; needs {@link Module.compile} first.
     * Resolves to the {@link History} of losses and metrics per epoch.
     * @example
     * ```ts
     * model.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy'] });
     * const h = await model.fit(x, y, { epochs: 5, batchSize: 64, validationSplit: 0.1 });
     * h.history.val_accuracy;
     * ```
     */
    fit(x: Tensor | Tensor[], y: Tensor, opts?: FitOptions): Promise<History>;
    /** Trains on a Dataset, DataLoader or (async) iterable of batches; otherwise as the (x, y) form. */
    fit(data: BatchSource, opts?: FitOptions): Promise<History>;
    /** Loss and metrics over (x, y) in batches (default 32), in eval mode and without gradients. */
    evaluate(x: Tensor | Tensor[], y: Tensor, opts?: EvaluateOptions): Logs;
    /** Loss and metrics over a Dataset, DataLoader or iterable of batches, in eval mode and without gradients. */
    evaluate(data: Dataset | DataLoader | Iterable<Batch>, opts?: EvaluateOptions): Logs;
    /** The model's outputs for x, computed in batches, in eval mode and without gradients. */
    predict(x: Tensor | Tensor[], opts?: PredictOptions): Tensor;
    /** The optimizer set by compile() (null before). */
    readonly optimizer: optim.Optimizer | null;
    /** Set by a callback to end fit() after the current batch. */
    stopTraining: boolean;
    /** @internal */
    _compiled?: Compiled;
    /** @internal */
    _stopTraining?: boolean;
    /** @internal Set while fitAsync trains this model: stopTraining is mirrored into `stop[0]` for the worker. */
    _workerFit?: { stop: Int32Array };
  }
}

// ---------------------------------------------------------------------------------------------
// compile

const DEFAULT_LR: Record<OptimizerName, number> = { sgd: 0.01, adam: 1e-3, adamw: 1e-3, rmsprop: 1e-3 };

function resolveOptimizer(spec: CompileConfig['optimizer'], params: Tensor[], lr?: number): optim.Optimizer {
  if (spec instanceof optim.Optimizer) {
    const own = new Set(params);
    if (!spec.params.some((p) => own.has(p)))
      throw new RangeError('compile: the optimizer does not hold any parameter of this model; create it from model.parameters()');
    return spec;
  }
  if (typeof spec === 'function') {
    const o = (spec as (p: Tensor[]) => optim.Optimizer)(params);
    if (!(o instanceof optim.Optimizer)) throw new TypeError(`compile: the optimizer factory must return an Optimizer, got ${describe(o)}`);
    return o;
  }
  if (typeof spec === 'string') {
    const name = spec.toLowerCase() as OptimizerName;
    if (!(name in DEFAULT_LR)) throw new RangeError(`compile: unknown optimizer ${describe(spec)}; expected 'adam', 'sgd', 'adamw', 'rmsprop' or an Optimizer`);
    const rate = lr ?? DEFAULT_LR[name];
    switch (name) {
      case 'adam': return new optim.Adam(params, { lr: rate });
      case 'adamw': return new optim.AdamW(params, { lr: rate });
      case 'sgd': return new optim.SGD(params, { lr: rate });
      case 'rmsprop': return new optim.RMSprop(params, { lr: rate });
    }
  }
  throw new TypeError(`compile: optimizer must be an Optimizer, a name or a factory, got ${describe(spec)}`);
}

/** Float targets of the prediction's shape for elementwise losses (int 0/1 labels, (N) vs (N, 1)). */
function elementwiseTarget(op: string, pred: Tensor, target: Tensor): Tensor {
  let t = target.dtype === 'float32' ? target : ops.to(target, 'float32');
  if (t.shape.join(',') !== pred.shape.join(',')) {
    if (t.size !== pred.size)
      throw new RangeError(`${op}: target of shape [${target.shape.join(', ')}] does not match the prediction's [${pred.shape.join(', ')}]`);
    t = ops.reshape(t, pred.shape.slice());
  }
  return t;
}

/** Cross-entropy with class scores last (Keras) or in dim 1 (PyTorch), or soft / one-hot targets. */
function crossEntropyLoss(pred: Tensor, target: Tensor): Tensor {
  if (target.dtype === 'float32' && target.shape.join(',') === pred.shape.join(',')) {
    // Probabilities or one-hot rows over the last dim.
    return ops.mean(ops.neg(ops.sum(ops.mul(target, ops.logSoftmax(pred, -1)), -1)));
  }
  const t = target.dtype === 'int32' ? target : ops.to(target, 'int32');
  const c = pred.shape[pred.ndim - 1];
  if (pred.ndim > 2 && pred.ndim === t.ndim + 1 && pred.shape.slice(0, -1).join(',') === t.shape.join(','))
    return F.crossEntropy(ops.reshape(pred, [-1, c]), ops.reshape(t, [-1]));
  return F.crossEntropy(pred, t);
}

function nll(pred: Tensor, target: Tensor): Tensor {
  const t = target.dtype === 'int32' ? target : ops.to(target, 'int32');
  const c = pred.shape[pred.ndim - 1];
  if (pred.ndim > 2) return F.nllLoss(ops.reshape(pred, [-1, c]), ops.reshape(t, [-1]));
  return F.nllLoss(pred, t);
}

function resolveLoss(spec: CompileConfig['loss']): { fn: LossFunction; name: string; binaryLogits: boolean } {
  if (spec instanceof Module) {
    const m = spec as unknown as { forward(p: Tensor, t: Tensor): Tensor };
    return { fn: (p, t) => m.forward(p, t), name: spec.constructor.name, binaryLogits: spec.constructor.name === 'BCEWithLogitsLoss' };
  }
  if (typeof spec === 'function') return { fn: spec, name: spec.name || 'loss', binaryLogits: false };
  switch (spec) {
    case 'crossEntropy': case 'categoricalCrossentropy': case 'sparseCategoricalCrossentropy':
      return { fn: crossEntropyLoss, name: spec, binaryLogits: false };
    case 'mse': case 'meanSquaredError':
      return { fn: (p, t) => F.mseLoss(p, elementwiseTarget('mse', p, t)), name: spec, binaryLogits: false };
    case 'mae': case 'meanAbsoluteError':
      return { fn: (p, t) => ops.mean(ops.abs(ops.sub(p, elementwiseTarget('mae', p, t)))), name: spec, binaryLogits: false };
    case 'binaryCrossEntropy': case 'binaryCrossentropy': case 'bce':
      return { fn: (p, t) => F.binaryCrossEntropy(p, elementwiseTarget('binaryCrossEntropy', p, t)), name: spec, binaryLogits: false };
    case 'bceWithLogits': case 'binaryCrossEntropyWithLogits':
      return { fn: (p, t) => F.binaryCrossEntropyWithLogits(p, elementwiseTarget('binaryCrossEntropyWithLogits', p, t)), name: spec, binaryLogits: true };
    case 'nll': case 'nllLoss':
      return { fn: nll, name: spec, binaryLogits: false };
  }
  throw new RangeError(`compile: unknown loss ${describe(spec)}; expected 'crossEntropy', 'mse', 'mae', 'binaryCrossEntropy' ('bce'), ` +
    "'bceWithLogits', 'nll', a function (pred, target) => Tensor or a loss module");
}

function metricName(spec: MetricSpec, i: number): string {
  if (typeof spec === 'string') return spec;
  if (typeof spec === 'function') return spec.name || `metric${i}`;
  return spec.name;
}

Module.prototype.compile = function compile(this: Module, config: CompileConfig): void {
  if (typeof config !== 'object' || config === null) throw new TypeError(`compile: expected {optimizer, loss, metrics}, got ${describe(config)}`);
  if (config.optimizer === undefined) throw new TypeError('compile: optimizer is required (an Optimizer or a name such as \'adam\')');
  if (config.loss === undefined) throw new TypeError('compile: loss is required (a name such as \'crossEntropy\' or a function)');
  if (config.lr !== undefined) checkNumber('compile', 'lr', config.lr, 0);
  const params = this.parameters();
  if (!params.length) throw new RangeError('compile: the model has no parameters to train');
  const optimizer = resolveOptimizer(config.optimizer, params, config.lr);
  const loss = resolveLoss(config.loss);
  const specs = config.metrics ?? [];
  if (!Array.isArray(specs)) throw new TypeError(`compile: metrics must be an array, got ${describe(specs)}`);
  // Build each once now, so a bad name fails at compile time.
  specs.forEach((s) => metricsLib.get(s, { binaryLogits: loss.binaryLogits }));
  const metricNames = specs.map(metricName);
  const dup = metricNames.find((n, i) => metricNames.indexOf(n) !== i || n === 'loss');
  if (dup) throw new RangeError(`compile: metric name ${JSON.stringify(dup)} is used twice (or clashes with 'loss')`);
  this._compiled = { optimizer, loss: loss.fn, lossName: loss.name, metricSpecs: specs, metricNames, binaryLogits: loss.binaryLogits, lossSpec: config.loss };
};

Object.defineProperty(Module.prototype, 'optimizer', {
  configurable: true,
  get(this: Module) { return this._compiled?.optimizer ?? null; },
});
Object.defineProperty(Module.prototype, 'stopTraining', {
  configurable: true,
  get(this: Module) { return this._stopTraining ?? false; },
  set(this: Module, v: boolean) {
    this._stopTraining = Boolean(v);
    // During fitAsync the worker thread reads this flag between batches.
    if (this._workerFit) Atomics.store(this._workerFit.stop, 0, v ? 1 : 0);
  },
});

/** @internal The state compile() left on the model, or an Error naming `op`. */
export function compiled(model: Module, op: string): Compiled {
  const c = model._compiled;
  if (!c) throw new Error(`${op}: the model is not compiled; call model.compile({optimizer, loss, metrics}) first`);
  return c;
}

function buildMetrics(c: Compiled): metricsLib.Metric[] {
  return c.metricSpecs.map((s, i) => {
    const m = metricsLib.get(s, { binaryLogits: c.binaryLogits });
    return typeof s === 'function' ? metricsLib.fromFunction(c.metricNames[i], s) : m;
  });
}

// ---------------------------------------------------------------------------------------------
// data sources

/** @internal Batches for fit/evaluate, with what is known of their number and size. */
export interface Source {
  /** Iterable of batches (a DataLoader's batches are new tensors that we dispose). */
  iterable: Iterable<Batch> | AsyncIterable<Batch>;
  ownsBatches: boolean;
  steps: number | null;
  samples: number | null;
  batchSize: number | null;
  /** Tensors made for this source (validation slices), freed at the end. */
  temporaries: Tensor[];
}

/** @internal A non-empty array of tensors. */
export function isTensorArray(v: unknown): v is Tensor[] {
  return Array.isArray(v) && v.length > 0 && v.every((t) => t instanceof Tensor);
}

function isDataset(v: unknown): v is Dataset {
  return typeof v === 'object' && v !== null && typeof (v as Dataset).get === 'function' && typeof (v as Dataset).length === 'number';
}

function isIterable(v: unknown): v is Iterable<Batch> {
  return typeof v === 'object' && v !== null && typeof (v as Iterable<Batch>)[Symbol.iterator] === 'function';
}

function isAsyncIterable(v: unknown): v is AsyncIterable<Batch> {
  return typeof v === 'object' && v !== null && typeof (v as AsyncIterable<Batch>)[Symbol.asyncIterator] === 'function';
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function loaderSource(loader: DataLoader<any, any>, temporaries: Tensor[] = []): Source {
  return {
    iterable: loader as unknown as Iterable<Batch>, ownsBatches: true, steps: loader.length,
    samples: loader.dropLast ? loader.length * loader.batchSize : loader.dataset.length, batchSize: loader.batchSize, temporaries,
  };
}

function tensorsSource(op: string, inputs: Tensor[], target: Tensor, batchSize: number, shuffle: boolean, seed?: number): Source {
  const n = target.ndim ? target.shape[0] : 0;
  inputs.forEach((t, i) => {
    if (t.ndim === 0 || t.shape[0] !== n)
      throw new RangeError(`${op}: x${inputs.length > 1 ? `[${i}]` : ''} has ${t.ndim ? t.shape[0] : 0} samples (shape [${t.shape.join(', ')}]) but y has ${n} (shape [${target.shape.join(', ')}])`);
  });
  const ds = new TensorDataset(...inputs, target);
  return loaderSource(new DataLoader(ds, { batchSize, shuffle, seed }));
}

function toSource(op: string, data: unknown, batchSize: number, shuffle: boolean, seed?: number): Source {
  if (data instanceof DataLoader) return loaderSource(data);
  if (isDataset(data)) return loaderSource(new DataLoader(data, { batchSize, shuffle, seed }));
  if (isIterable(data) || isAsyncIterable(data)) {
    const len = Array.isArray(data) ? data.length : null;
    return { iterable: data, ownsBatches: false, steps: len, samples: null, batchSize: null, temporaries: [] };
  }
  throw new TypeError(`${op}: expected (x, y) tensors, a Dataset, a DataLoader or an iterable of [x, y] batches, got ${describe(data)}`);
}

/** @internal A batch's input tensors and target. */
export function splitBatch(op: string, batch: unknown): { inputs: Tensor[]; target: Tensor } {
  if (Array.isArray(batch)) {
    if (batch.length < 2 || !batch.every((t) => t instanceof Tensor))
      throw new TypeError(`${op}: a batch must be [x, y] (or [x1, ..., y]) of tensors, got ${describe(batch)}`);
    return { inputs: batch.slice(0, -1) as Tensor[], target: batch[batch.length - 1] as Tensor };
  }
  if (batch && typeof batch === 'object' && 'x' in batch && 'y' in batch) {
    const { x, y } = batch as { x: Tensor | Tensor[]; y: Tensor };
    const inputs = Array.isArray(x) ? x : [x];
    if (!inputs.every((t) => t instanceof Tensor) || !(y instanceof Tensor)) throw new TypeError(`${op}: batch {x, y} must hold tensors`);
    return { inputs, target: y };
  }
  throw new TypeError(`${op}: a batch must be [x, y] or {x, y}, got ${describe(batch)}`);
}

function forwardOf(model: Module, op: string, inputs: Tensor[]): Tensor {
  const out = (model as unknown as { forward(...a: Tensor[]): unknown }).forward(...inputs);
  if (!(out instanceof Tensor))
    throw new TypeError(`${op}: the model's forward() must return a Tensor for compile/fit/evaluate/predict, got ${describe(out)}; wrap it in a module whose forward returns the prediction`);
  return out;
}

function samplesOf(t: Tensor): number {
  return t.ndim ? t.shape[0] : 1;
}

function checkScalarLoss(op: string, loss: unknown): Tensor {
  if (!(loss instanceof Tensor)) throw new TypeError(`${op}: the loss must return a Tensor, got ${describe(loss)}`);
  if (loss.size !== 1) throw new RangeError(`${op}: the loss must be a scalar (use a mean or sum reduction), got shape [${loss.shape.join(', ')}]`);
  return loss;
}

/** @internal Runs a callback hook on every callback in order, awaiting async hooks. */
export async function call(cbs: CallbackHooks[], hook: 'onTrainBegin' | 'onTrainEnd', logs: Logs): Promise<void>;
export async function call(cbs: CallbackHooks[], hook: 'onEpochBegin' | 'onEpochEnd' | 'onBatchBegin' | 'onBatchEnd', i: number, logs: Logs): Promise<void>;
export async function call(cbs: CallbackHooks[], hook: keyof CallbackHooks, a: number | Logs, b?: Logs): Promise<void> {
  for (const cb of cbs) {
    const f = cb[hook] as ((...args: unknown[]) => unknown) | undefined;
    if (typeof f !== 'function') continue;
    const r = b === undefined ? f.call(cb, a) : f.call(cb, a, b);
    if (r && typeof (r as Promise<void>).then === 'function') await r;
  }
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

// ---------------------------------------------------------------------------------------------
// fit

/** @internal Splits fit/evaluate arguments into (x, y) tensors or a data source, and the options. */
export function parseArgs<O>(op: string, a: unknown, b: unknown, c: unknown): { inputs: Tensor[] | null; target: Tensor | null; data: unknown; opts: O } {
  if (a instanceof Tensor || isTensorArray(a)) {
    if (!(b instanceof Tensor)) throw new TypeError(`${op}: expected y (a Tensor of targets) after x, got ${describe(b)}`);
    return { inputs: a instanceof Tensor ? [a] : a, target: b, data: null, opts: (c ?? {}) as O };
  }
  return { inputs: null, target: null, data: a, opts: (b ?? {}) as O };
}

/** @internal Throws unless opts is an object whose keys are all in `known`. */
export function checkOpts(op: string, opts: unknown, known: string[]): void {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: options must be an object, got ${describe(opts)}`);
  for (const k of Object.keys(opts)) if (!known.includes(k)) throw new RangeError(`${op}: unknown option ${JSON.stringify(k)}; known: ${known.join(', ')}`);
}

/** @internal The keys of FitOptions. */
export const FIT_OPTIONS = ['epochs', 'batchSize', 'shuffle', 'seed', 'validationSplit', 'validationData', 'validationBatchSize', 'callbacks',
  'gradAccumulation', 'clipGradNorm', 'verbose', 'initialEpoch'];

/**
 * @internal The training and validation sources of fit's arguments (x, y tensors or a data source)
 * and options; `temporaries` are tensors made here (validation slices) for the caller to dispose.
 */
export function fitSources(op: string, inputs: Tensor[] | null, target: Tensor | null, data: unknown, opts: FitOptions,
  batchSize: number, shuffle: boolean): { train: Source; val: Source | null; temporaries: Tensor[] } {
  const temporaries: Tensor[] = [];
  let train: Source;
  let val: Source | null = null;
  const valBatch = opts.validationBatchSize ?? batchSize;
  const split = opts.validationSplit ?? 0;
  if (inputs && target) {
    const n = samplesOf(target);
    const at = split > 0 ? Math.floor(n * (1 - split)) : n;
    if (split > 0) {
      if (at === 0 || at === n) throw new RangeError(`${op}: validationSplit ${split} of ${n} samples leaves an empty training or validation set`);
      const cut = (t: Tensor, s: number, e: number) => noGrad(() => ops.slice(t, 0, s, e));
      const trIn = inputs.map((t) => cut(t, 0, at)), trY = cut(target, 0, at);
      const vaIn = inputs.map((t) => cut(t, at, n)), vaY = cut(target, at, n);
      temporaries.push(...trIn, trY, ...vaIn, vaY);
      train = tensorsSource(op, trIn, trY, batchSize, shuffle, opts.seed);
      val = tensorsSource(op, vaIn, vaY, valBatch, false);
    } else train = tensorsSource(op, inputs, target, batchSize, shuffle, opts.seed);
  } else {
    if (split > 0) {
      if (!isDataset(data) || data instanceof DataLoader)
        throw new RangeError(`${op}: validationSplit needs tensors or a Dataset; give validationData for a DataLoader or an iterable`);
      const n = data.length, at = Math.floor(n * (1 - split));
      if (at === 0 || at === n) throw new RangeError(`${op}: validationSplit ${split} of ${n} samples leaves an empty training or validation set`);
      train = toSource(op, new Subset(data, Array.from({ length: at }, (_, i) => i)), batchSize, shuffle, opts.seed);
      val = toSource(op, new Subset(data, Array.from({ length: n - at }, (_, i) => at + i)), valBatch, false);
    } else train = toSource(op, data, batchSize, shuffle, opts.seed);
  }
  const vd = opts.validationData;
  if (vd !== undefined) {
    if (Array.isArray(vd) && vd.length === 2 && (vd[0] instanceof Tensor || isTensorArray(vd[0])) && vd[1] instanceof Tensor) {
      const vIn = vd[0] instanceof Tensor ? [vd[0]] : vd[0];
      val = tensorsSource(op, vIn, vd[1], valBatch, false);
    } else val = toSource(op, vd, valBatch, false);
    if (isAsyncIterable(val.iterable) && !isIterable(val.iterable)) throw new TypeError(`${op}: validationData must be synchronously iterable`);
  }
  return { train, val, temporaries };
}

/** @internal FitOptions checked, with their defaults. */
export interface CheckedFitOptions {
  epochs: number;
  initialEpoch: number;
  batchSize: number;
  shuffle: boolean;
  accumulate: number;
  verbose: 0 | 1 | 2;
  callbacks: CallbackHooks[];
}

/** @internal Checks the options of fit (and fitAsync, which allows more keys) and fills in the defaults. */
export function checkFitOptions(op: string, opts: FitOptions, known: string[] = FIT_OPTIONS): CheckedFitOptions {
  checkOpts(op, opts, known);
  const epochs = checkInt(op, 'epochs', opts.epochs ?? 1, 0);
  const initialEpoch = checkInt(op, 'initialEpoch', opts.initialEpoch ?? 0, 0);
  const batchSize = checkInt(op, 'batchSize', opts.batchSize ?? 32, 1);
  const shuffle = opts.shuffle ?? true;
  const accumulate = checkInt(op, 'gradAccumulation', opts.gradAccumulation ?? 1, 1);
  const verbose = opts.verbose ?? 1;
  if (verbose !== 0 && verbose !== 1 && verbose !== 2) throw new RangeError(`${op}: verbose must be 0, 1 or 2, got ${describe(verbose)}`);
  if (opts.clipGradNorm !== undefined) checkNumber(op, 'clipGradNorm', opts.clipGradNorm, 0);
  if (opts.validationSplit !== undefined) {
    checkNumber(op, 'validationSplit', opts.validationSplit, 0, 1);
    if (opts.validationSplit >= 1) throw new RangeError(`${op}: validationSplit must be in [0, 1), got ${opts.validationSplit}`);
    if (opts.validationData !== undefined) throw new RangeError(`${op}: give validationSplit or validationData, not both`);
  }
  if (opts.validationBatchSize !== undefined) checkInt(op, 'validationBatchSize', opts.validationBatchSize, 1);
  const callbacks = opts.callbacks ?? [];
  if (!Array.isArray(callbacks)) throw new TypeError(`${op}: callbacks must be an array, got ${describe(callbacks)}`);
  callbacks.forEach((cb, i) => {
    if (typeof cb !== 'object' || cb === null) throw new TypeError(`${op}: callbacks[${i}] must be an object with on... hooks, got ${describe(cb)}`);
  });
  return { epochs, initialEpoch, batchSize, shuffle, accumulate, verbose, callbacks };
}

/** @internal Adds the progress bar that `verbose` asks for (unless one is there) and gives every callback the model and params. */
export function prepareCallbacks(model: Module, callbacks: CallbackHooks[], verbose: 0 | 1 | 2, params: TrainingParams): CallbackHooks[] {
  const cbs: CallbackHooks[] = [...callbacks];
  if (verbose > 0 && !cbs.some((cb) => cb.constructor?.name === 'ProgressCallback')) cbs.unshift(progressBar({ verbose: verbose as 1 | 2 }));
  for (const cb of cbs) {
    cb.model = model as Module & { optimizer: optim.Optimizer | null; stopTraining: boolean };
    cb.params = params;
  }
  return cbs;
}

async function fit(this: Module, a: unknown, b?: unknown, c?: unknown): Promise<History> {
  const op = 'fit';
  if (this._workerFit) throw new Error(`${op}: this model is being trained by fitAsync; await it (or stop it) first`);
  const comp = compiled(this, op);
  const { inputs, target, data, opts } = parseArgs<FitOptions>(op, a, b, c);
  const { epochs, initialEpoch, batchSize, shuffle, accumulate, verbose, callbacks } = checkFitOptions(op, opts);

  const { train, val, temporaries } = fitSources(op, inputs, target, data, opts, batchSize, shuffle);

  const metricNames = comp.metricNames;
  const params: TrainingParams = {
    epochs, initialEpoch, steps: train.steps === null ? null : Math.max(train.steps, 0), samples: train.samples,
    batchSize: train.batchSize, verbose, metrics: ['loss', ...metricNames, ...(val ? ['val_loss', ...metricNames.map((m) => `val_${m}`)] : [])],
  };
  const cbs = prepareCallbacks(this, callbacks, verbose, params);
  const history = new History();
  history.params = params;
  const trainMetrics = buildMetrics(comp);
  const optimizer = comp.optimizer;
  const modelParams = this.parameters();
  const device = deviceOf(this);
  const deferred = device !== 'cpu';
  const wasTraining = this.training;
  this.stopTraining = false;

  try {
    await call(cbs, 'onTrainBegin', {});
    for (let epoch = initialEpoch; epoch < epochs && !this.stopTraining; epoch++) {
      await call(cbs, 'onEpochBegin', epoch, {});
      this.train();
      for (const m of trainMetrics) m.reset();
      let lossSum = 0, seen = 0, step = 0, pending = 0, pendingSamples = 0;
      // CUDA: the loss sum (times batch sizes) and the predictions/targets not yet read back.
      let lossAcc: Tensor | null = null, accSamples = 0;
      let heldPreds: Tensor[] = [], heldTargets: Tensor[] = [];
      const readBack = () => {
        if (!lossAcc) return;
        lossSum += lossAcc.item();
        seen += accSamples;
        lossAcc.dispose();
        lossAcc = null;
        accSamples = 0;
        if (trainMetrics.length && heldPreds.length) {
          tidy(() => {
            const p = ops.to(heldPreds.length === 1 ? heldPreds[0] : ops.cat(heldPreds, 0), 'cpu');
            const t0 = heldTargets.length === 1 ? heldTargets[0] : ops.cat(heldTargets, 0);
            const t = t0.device === 'cpu' ? t0 : ops.to(t0, 'cpu');
            for (const m of trainMetrics) m.update(p, t);
          });
        }
        for (const t of [...heldPreds, ...heldTargets]) t.dispose();
        heldPreds = [];
        heldTargets = [];
      };
      optimizer.zeroGrad();
      const applyStep = () => {
        if (accumulate > 1 && pendingSamples > 0) {
          // Micro-batch losses were scaled by their sizes: divide by the total for the mean.
          const inv = 1 / pendingSamples;
          noGrad(() => {
            for (const p of modelParams) {
              if (!p.grad) continue;
              if (p.grad.device !== 'cpu') { cu.scalarInPlace(ops.BINARY.mul, p.grad, inv, 'fit'); continue; }
              const g = p.grad._data as Float32Array;
              for (let i = 0; i < g.length; i++) g[i] *= inv;
            }
          });
        }
        if (opts.clipGradNorm !== undefined) optim.clipGradNorm(modelParams, opts.clipGradNorm);
        optimizer.step();
        optimizer.zeroGrad();
        pending = 0;
        pendingSamples = 0;
      };
      const iterable = train.iterable;
      const iterator: Iterator<Batch> | AsyncIterator<Batch> = isAsyncIterable(iterable)
        ? iterable[Symbol.asyncIterator]() : (iterable as Iterable<Batch>)[Symbol.iterator]();
      try {
        for (;;) {
          const r = await iterator.next();
          if (r.done) break;
          const batch = r.value;
          let n = 0;
          try {
            const { inputs: bx, target: by } = splitBatch(op, batch);
            n = samplesOf(by);
            await call(cbs, 'onBatchBegin', step, { batch: step, size: n });
            if (deferred) {
              tidy(() => {
                // The batch moves after it was gathered; the loss and the predictions stay on the device.
                const pred = forwardOf(this, op, bx.map((t) => onDevice(t, device)));
                const l = checkScalarLoss(op, comp.loss(pred, onDevice(by, device)));
                (accumulate > 1 ? ops.mul(l, n) : l).backward();
                noGrad(() => {
                  const sum = ops.add(ops.mul(ops.reshape(l.detach(), []), n), lossAcc ?? 0);
                  lossAcc?.dispose();
                  lossAcc = keep(sum);
                  accSamples += n;
                  if (trainMetrics.length) {
                    heldPreds.push(keep(pred.detach()));
                    heldTargets.push(keep(ops.clone(by))); // the batch may be freed below
                  }
                });
              });
            } else {
              const loss = tidy(() => {
                const pred = forwardOf(this, op, bx);
                const l = checkScalarLoss(op, comp.loss(pred, by));
                const value = l.item();
                (accumulate > 1 ? ops.mul(l, n) : l).backward();
                noGrad(() => { for (const m of trainMetrics) m.update(pred, by); });
                return value;
              });
              lossSum += loss * n;
              seen += n;
            }
          } finally {
            if (train.ownsBatches) disposeBatch(batch);
          }
          pending++;
          pendingSamples += n;
          if (pending === accumulate) applyStep();
          if (deferred && (step + 1) % DEVICE_READ_EVERY === 0) readBack();
          const logs: Logs = { batch: step, size: n, loss: seen ? lossSum / seen : NaN };
          trainMetrics.forEach((m, i) => (logs[metricNames[i]] = m.result()));
          await call(cbs, 'onBatchEnd', step, logs);
          step++;
          if (this.stopTraining) break;
          await yieldToEventLoop();
        }
      } finally {
        if (iterator.return) await iterator.return();
      }
      if (pending > 0) applyStep();
      readBack();
      const logs: Logs = { loss: seen ? lossSum / seen : NaN };
      trainMetrics.forEach((m, i) => (logs[metricNames[i]] = m.result()));
      if (val) {
        const v = evaluateSource(this, op, comp, val);
        for (const [k, x] of Object.entries(v)) logs[`val_${k}`] = x;
      }
      logs.lr = optimizer.lr;
      await call(cbs, 'onEpochEnd', epoch, logs);
      history.record(epoch, logs);
    }
    await call(cbs, 'onTrainEnd', history.epoch.length ? lastLogs(history) : {});
  } finally {
    this.train(wasTraining);
    for (const t of temporaries) t.dispose();
    // Tensors of the internal TensorDatasets are the caller's (or the temporaries above).
  }
  return history;
}

/** @internal The last epoch's logs of a History (what onTrainEnd receives). */
export function lastLogs(h: History): Logs {
  const out: Logs = {};
  for (const [k, v] of Object.entries(h.history)) out[k] = v[v.length - 1];
  return out;
}

Module.prototype.fit = fit as Module['fit'];

// ---------------------------------------------------------------------------------------------
// evaluate / predict

function evaluateSource(model: Module, op: string, comp: Compiled, src: Source): Logs {
  if (!isIterable(src.iterable)) throw new TypeError(`${op}: evaluation data must be synchronously iterable (a Dataset, a DataLoader, tensors or an array of batches)`);
  const ms = buildMetrics(comp);
  for (const m of ms) m.reset();
  const wasTraining = model.training;
  const device = deviceOf(model);
  model.eval();
  let lossSum = 0, seen = 0;
  try {
    noGrad(() => {
      for (const batch of src.iterable as Iterable<Batch>) {
        try {
          const { inputs, target } = splitBatch(op, batch);
          const n = samplesOf(target);
          lossSum += n * tidy(() => {
            const pred = forwardOf(model, op, inputs.map((t) => onDevice(t, device)));
            const l = checkScalarLoss(op, comp.loss(pred, onDevice(target, device))).item();
            // Metrics are computed on the host (a CUDA model's predictions are read back per batch).
            const p = pred.device === 'cpu' ? pred : ops.to(pred, 'cpu'), t = onDevice(target, 'cpu');
            for (const m of ms) m.update(p, t);
            return l;
          });
          seen += n;
        } finally {
          if (src.ownsBatches) disposeBatch(batch);
        }
      }
    });
  } finally {
    model.train(wasTraining);
  }
  const logs: Logs = { loss: seen ? lossSum / seen : NaN };
  ms.forEach((m, i) => (logs[comp.metricNames[i]] = m.result()));
  return logs;
}

function evaluate(this: Module, a: unknown, b?: unknown, c?: unknown): Logs {
  const op = 'evaluate';
  const comp = compiled(this, op);
  const { inputs, target, data, opts } = parseArgs<EvaluateOptions>(op, a, b, c);
  checkOpts(op, opts, ['batchSize', 'verbose']);
  const batchSize = checkInt(op, 'batchSize', opts.batchSize ?? 32, 1);
  const src = inputs && target ? tensorsSource(op, inputs, target, batchSize, false, 0) : toSource(op, data, batchSize, false, 0);
  return evaluateSource(this, op, comp, src);
}

Module.prototype.evaluate = evaluate as Module['evaluate'];

function predict(this: Module, x: Tensor | Tensor[], opts: PredictOptions = {}): Tensor {
  const op = 'predict';
  const inputs = x instanceof Tensor ? [x] : x;
  if (!isTensorArray(inputs)) throw new TypeError(`${op}: x must be a Tensor (or an array of input tensors), got ${describe(x)}`);
  checkOpts(op, opts, ['batchSize', 'verbose']);
  const batchSize = checkInt(op, 'batchSize', opts.batchSize ?? 32, 1);
  const n = samplesOf(inputs[0]);
  inputs.forEach((t, i) => {
    if (samplesOf(t) !== n) throw new RangeError(`${op}: x[${i}] has ${samplesOf(t)} samples, x[0] has ${n}`);
  });
  const wasTraining = this.training;
  const device = deviceOf(this);
  this.eval();
  const parts: Tensor[] = [];
  try {
    noGrad(() => {
      for (let s = 0; s < n; s += batchSize) {
        const e = Math.min(n, s + batchSize);
        parts.push(tidy(() => {
          const bx = inputs.map((t) => onDevice(s === 0 && e === n ? t : ops.slice(t, 0, s, e), device));
          const y = forwardOf(this, op, bx);
          return bx.includes(y) ? ops.clone(y) : y;
        }));
      }
    });
  } finally {
    this.train(wasTraining);
  }
  if (parts.length === 0) throw new RangeError(`${op}: x has no samples`);
  // The result goes where x is (a CUDA model's predictions for CPU inputs are read back once, here).
  const home = inputs[0].device;
  const joined = parts.length === 1 ? parts[0] : noGrad(() => ops.cat(parts, 0));
  if (parts.length > 1) for (const p of parts) p.dispose();
  if (joined.device === home) return keep(joined);
  const out = noGrad(() => ops.to(joined, home));
  joined.dispose();
  return keep(out);
}

Module.prototype.predict = predict as Module['predict'];

