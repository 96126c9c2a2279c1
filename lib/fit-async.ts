// model.fitAsync: fit() with its steps on a worker thread, so training never blocks the event loop.
//
//   model.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy'] });
//   const history = await model.fitAsync(x, y, { epochs: 5, validationSplit: 0.1, signal });
//
// The model stays in the calling thread; a worker thread gets a copy and runs the real fit() on it.
//  - What goes over: the model, the optimizer (hyper-parameters and state) and the loss as an object
//    graph (lib/transfer.ts: class name + own properties, no constructor runs), the state dict and
//    the generator's position. tensorsmith's layers need nothing more; classes defined in user code
//    (a custom Module's forward) are looked up by name among the exports of the modules listed in
//    `workerModules`, which the worker imports.
//  - The data: (x, y) tensors go over once as transferable buffers (copied in 4 MB chunks, one turn
//    of the event loop each) and the worker batches them. A Dataset, DataLoader or iterable is
//    batched here, exactly as fit() would (same shuffling, same draws from the generator), and the
//    batches are streamed, PREFETCH ahead of the worker; its validation batches go over once.
//  - The worker posts batch and epoch logs; the callbacks (progress bar, history, early stopping,
//    schedulers, checkpoints) run here, on the calling thread, with `callback.model` this model.
//  - Epoch boundaries are a handshake: at the end of every epoch the worker sends the weights, the
//    optimizer state and the generator's position, which are copied into this model before
//    onEpochEnd runs (so checkpoints and early stopping see the trained weights); before every epoch
//    the worker waits for onEpochBegin and takes the learning rate, the weights and stopTraining
//    from here (so schedulers and callbacks that edit weights work). Batch hooks run as the messages
//    arrive; the worker does not wait for them.
//  - Stopping: `model.stopTraining = true` (from a callback or anywhere else) is mirrored into a
//    shared flag the worker reads after every batch: training ends after the batch in progress
//    (onEpochEnd still runs for the cut epoch), as with fit().
//    An AbortSignal ends the worker at once and rejects with the signal's reason; the model keeps
//    the weights and optimizer state of the last completed epoch.
//  - Errors inside the worker come back as the same class (TypeError, RangeError, TsmDisposedError,
//    TsmAnomalyError...) with the same message and the worker's stack followed by the caller's.
//  - Same seed and thread count give the same numbers as fit(): the worker runs the same code on
//    the same data from the same generator position (and with setDetectAnomaly as set here), and
//    hands the position back at the end.
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe } from './check';
import type { CallbackHooks, Logs, TrainingParams } from './callbacks';
import { TsmCudaError, TsmDisposedError } from './errors';
import { isAnomalyEnabled, TsmAnomalyError } from './anomaly';
import { NativeLoadError } from './native';
import { isParameter, Module } from './nn';
import { getRngState, setRngState } from './ops';
import type { Optimizer } from './optim';
import { Tensor, type TypedArray } from './tensor';
import { disposeBatch } from './data';
import {
  call, checkFitOptions, compiled, FIT_OPTIONS, fitSources, History, isTensorArray, lastLogs, parseArgs, prepareCallbacks, splitBatch,
  type Batch, type BatchSource, type FitOptions, type MetricSpec, type Source,
} from './training';
import { Decoder, Encoder, type Encoded } from './transfer';

/** Options of {@link Module.fitAsync}: those of fit(), an AbortSignal and the modules that define your classes. */
export interface FitAsyncOptions extends FitOptions {
  /**
   * Cancels training: the worker thread is ended at once and the promise rejects with the
   * signal's reason (an `AbortError` DOMException by default). The model keeps the weights and
   * optimizer state of the last completed epoch. (`model.stopTraining = true` is the graceful stop:
   * training ends after the batch in progress, the callbacks' onEpochEnd and onTrainEnd run, and
   * the promise resolves with the History.)
   */
  signal?: AbortSignal;
  /**
   * Modules (absolute paths or file: URLs, e.g. `new URL('./net.js', import.meta.url)`) that export
   * the classes and functions of your code the model uses: a custom Module subclass, a custom
   * layer, a loss or metric function given to compile(). The worker imports them and finds each
   * class or function by name. Only needed when the model is not built from tensorsmith's layers
   * alone. Importing a module runs its top-level code in the worker: keep model definitions in a
   * module that does not start training when imported.
   */
  workerModules?: (string | URL)[];
}

declare module './nn' {
  interface Module {
    /**
     * As {@link Module.fit} with (x, y) tensors, but the training steps run on a worker thread: the
     * event loop of the caller stays free. Callbacks run on the calling thread with the logs the
     * worker posts; this model receives the weights and optimizer state at every epoch end, and
     * the generator (manualSeed) continues where the worker left it, so the results match fit()
     * for the same seed and thread count.
     *
     * Models of tensorsmith's layers (Sequential, Linear, Conv2d, LSTM, TransformerEncoder...) are
     * copied as they are. A model that uses classes or functions defined in your code needs
     * `workerModules`: modules exporting them, which the worker imports. Properties that hold
     * functions (closures) cannot be copied to another thread; fitAsync throws a TypeError naming
     * the property.
     * @example
     * ```ts
     * // net.ts: export class Net extends tsm.nn.Module { ... }
     * const model = new Net();
     * model.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy'] });
     * const ac = new AbortController();
     * const history = await model.fitAsync(x, y, {
     *   epochs: 10, validationSplit: 0.1, signal: ac.signal,
     *   workerModules: [new URL('./net.js', import.meta.url)],
     *   callbacks: [tsm.callbacks.earlyStopping({ patience: 2 })],
     * });
     * ```
     */
    fitAsync(x: Tensor | Tensor[], y: Tensor, opts?: FitAsyncOptions): Promise<History>;
    /**
     * As the (x, y) form, for a Dataset, DataLoader or (async) iterable of batches: the batches are
     * made on the calling thread, as fit() makes them, and streamed to the worker a few ahead of
     * it; validation batches (validationData, or validationSplit of a Dataset) are taken once, at
     * the start, and copied to the worker.
     */
    fitAsync(data: BatchSource, opts?: FitAsyncOptions): Promise<History>;
  }
}

// ---------------------------------------------------------------------------------------------
// What crosses between the threads (lib/fit-worker.ts is the other side)

/** @internal A tensor's data and shape, its buffer transferred. */
export interface WireTensor {
  data: TypedArray;
  shape: number[];
}

/** @internal One state-dict entry. */
export interface WireState extends WireTensor {
  name: string;
  param: boolean;
  requiresGrad: boolean;
}

/** @internal A loss or metric as compile() got it. */
export type WireSpec = { kind: 'name'; name: string } | { kind: 'fn'; name: string } | { kind: 'obj'; value: Encoded };

/** @internal The worker's workerData. */
export interface WorkerInit {
  modules: string[];
  /** Load the modules with require (tsx's CommonJS hook is registered) instead of import(). */
  useRequire: boolean;
  state: WireState[];
  model: Encoded;
  optimizer: Encoded;
  loss: WireSpec;
  metrics: WireSpec[];
  rng: { seed: number; offset: number };
  /** tsm.setDetectAnomaly as set in the calling thread. */
  detectAnomaly: boolean;
  /** (x, y) tensors, batched by the worker; empty (and y null) when the batches are streamed. */
  x: WireTensor[];
  y: WireTensor | null;
  /** [x, y] validation tensors given with (x, y). */
  validation: { x: WireTensor[]; y: WireTensor } | null;
  /** Training batches come from the calling thread, one message each (a Dataset, DataLoader or iterable). */
  stream: boolean;
  /** With stream: the validation batches ([...inputs, target] each), copied once. */
  valBatches: WireTensor[][] | null;
  fit: Record<string, number | boolean | undefined>;
  /** stop[0] = 1: end after the batch in progress (model.stopTraining). */
  stop: Int32Array;
}

/** @internal An error, as structured clone can carry it. */
export interface WireError {
  name: string;
  message: string;
  stack: string;
  props: Record<string, unknown>;
}

/** @internal Worker to caller. */
export type FromWorker =
  | { type: 'trainBegin'; params: TrainingParams }
  | { type: 'epochBegin'; epoch: number }
  | { type: 'batchBegin' | 'batchEnd'; step: number; logs: Logs }
  | { type: 'epochEnd'; epoch: number; logs: Logs; state: Record<string, TypedArray>; optimizer: Encoded; rng: { seed: number; offset: number } }
  | { type: 'trainEnd'; rng: { seed: number; offset: number } }
  | { type: 'error'; error: WireError }
  /** Streamed batches: start an epoch's stream (the caller sends a few batches ahead), take one more, stop early. */
  | { type: 'open' | 'pull' | 'close'; id: number };

/** @internal Caller to worker. */
export type ToWorker =
  | { type: 'epochGo'; lr: number; stop: boolean; state: Record<string, TypedArray> }
  | { type: 'epochEndAck'; stop: boolean }
  /** A streamed batch ([...inputs, target]) of stream `id`; null at the end of the epoch. */
  | { type: 'batch'; id: number; tensors: WireTensor[] | null };

/** @internal An Error (or anything thrown) as a {@link WireError}. */
export function toWireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: `a non-Error value was thrown: ${describe(err)}`, stack: '', props: {} };
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(err)) {
    if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) props[k] = v;
    else {
      try {
        props[k] = structuredClone(v);
      } catch {
        // Not clonable (a function...): left out.
      }
    }
  }
  return { name: err.name, message: err.message, stack: err.stack ?? `${err.name}: ${err.message}`, props };
}

const ERROR_CLASSES: Record<string, new (...a: never[]) => Error> = {
  Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
  TsmDisposedError, TsmCudaError, TsmAnomalyError, NativeLoadError,
};

/** @internal The error of the worker as its own class, its stack followed by the caller's. */
export function fromWireError(w: WireError, callerStack: string): Error {
  const cls = Object.prototype.hasOwnProperty.call(ERROR_CLASSES, w.name) ? ERROR_CLASSES[w.name] : Error;
  // A native Error object with the class's prototype; the class's constructor (whose signature
  // varies) does not run.
  const e = Reflect.construct(Error, [w.message], cls) as Error;
  for (const [k, v] of Object.entries(w.props)) {
    try {
      (e as unknown as Record<string, unknown>)[k] = v;
    } catch {
      // A read-only property of the class: keep the class's.
    }
  }
  if (e.name !== w.name) Object.defineProperty(e, 'name', { value: w.name, writable: true, configurable: true, enumerable: false });
  const callerFrames = callerStack.split('\n').filter((l) => /^\s+at /.test(l)).join('\n');
  e.stack = `${w.stack}\n    at <the fitAsync worker thread>, started from:\n${callerFrames}`;
  return e;
}

// ---------------------------------------------------------------------------------------------
// The worker thread

let liveWorkers = 0;

/** @internal Worker threads of fitAsync that have not exited yet (0 when every fitAsync has settled). */
export function liveFitWorkers(): number {
  return liveWorkers;
}

const TS_EXT = /\.[cm]?tsx?$/;

/**
 * The worker's entry file: fit-worker.js next to this file in dist/cjs (the ESM build re-exports
 * the CommonJS one, so both resolve here), or fit-worker.ts when running the TypeScript sources
 * (tsx, vitest), which the worker loads through tsx's require hook.
 */
function startWorker(op: string, init: WorkerInit, transfer: ArrayBuffer[]): Worker {
  const dir = __dirname;
  const ts = TS_EXT.test(__filename);
  const entry = path.join(dir, ts ? 'fit-worker.ts' : 'fit-worker.js');
  const needsTsx = ts || init.modules.some((m) => TS_EXT.test(m));
  const options = { workerData: init, transferList: transfer, stdout: false, stderr: false };
  if (!needsTsx) return new Worker(entry, options);
  let tsx: string;
  try {
    const from = ts ? entry : init.modules.find((m) => TS_EXT.test(m))!;
    tsx = createRequire(from.startsWith('file:') ? new URL(from) : from).resolve('tsx/cjs');
  } catch {
    throw new Error(`${op}: loading TypeScript in the worker thread needs the tsx package (npm install --save-dev tsx), which was not found`);
  }
  init.useRequire = true;
  return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(entry)});`, { ...options, eval: true });
}

// ---------------------------------------------------------------------------------------------
// fitAsync

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Elements copied per turn of the event loop (4 MB of float32). */
const CHUNK = 1 << 20;

/** A copy of the tensor's data in a fresh buffer, a chunk per turn of the event loop. */
async function copyOut(op: string, t: Tensor, name: string): Promise<WireTensor> {
  const src0 = t._live(op);
  const out = src0 instanceof Int32Array ? new Int32Array(t.size) : new Float32Array(t.size);
  for (let s = 0; s < out.length; s += CHUNK) {
    if (s > 0) await nextTurn();
    // Re-read: a tensor disposed meanwhile throws (TsmDisposedError) instead of being read.
    const src = t._live(`${op} (${name})`);
    out.set(src.subarray(s, Math.min(out.length, s + CHUNK)), s);
  }
  return { data: out, shape: t.shape.slice() };
}

function specOf(op: string, enc: Encoder, spec: unknown, where: string): WireSpec {
  if (typeof spec === 'string') return { kind: 'name', name: spec };
  if (typeof spec === 'function') {
    if (!spec.name) throw new TypeError(`${op}: ${where} is an anonymous function; the worker thread finds functions by name: give it one and export it from a module in workerModules`);
    return { kind: 'fn', name: spec.name };
  }
  return { kind: 'obj', value: enc.encode(spec, where) };
}

function moduleList(op: string, v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new TypeError(`${op}: workerModules must be an array of paths or file: URLs, got ${describe(v)}`);
  return v.map((m, i) => {
    if (m instanceof URL) {
      if (m.protocol !== 'file:') throw new RangeError(`${op}: workerModules[${i}] must be a file: URL, got ${m.href}`);
      return m.href;
    }
    if (typeof m !== 'string' || !m) throw new TypeError(`${op}: workerModules[${i}] must be a path or a file: URL, got ${describe(m)}`);
    if (m.startsWith('file:')) return m;
    if (/^[a-z][a-z0-9+.-]*:/i.test(m) && !/^[a-z]:[\\/]/i.test(m)) throw new RangeError(`${op}: workerModules[${i}] must be a path or a file: URL, got ${m}`);
    return pathToFileURL(path.resolve(m)).href;
  });
}

/** Batches sent ahead of the worker when streaming. */
const PREFETCH = 2;

/** Copies of a batch's tensors (their buffers added to `transfer`). */
function wireBatch(op: string, tensors: Tensor[], transfer: ArrayBuffer[]): WireTensor[] {
  return tensors.map((t) => {
    const d = t._live(op).slice(0, t.size);
    transfer.push(d.buffer as ArrayBuffer);
    return { data: d, shape: t.shape.slice() };
  });
}

function iteratorOf(it: Iterable<Batch> | AsyncIterable<Batch>): Iterator<Batch> | AsyncIterator<Batch> {
  const a = it as AsyncIterable<Batch>;
  return typeof a[Symbol.asyncIterator] === 'function' ? a[Symbol.asyncIterator]() : (it as Iterable<Batch>)[Symbol.iterator]();
}

function stateOf(model: Module): Record<string, Tensor> {
  return model.stateDict();
}

/** Copies of the state dict's data (to transfer). */
function copyState(model: Module): { state: Record<string, TypedArray>; buffers: ArrayBuffer[] } {
  const state: Record<string, TypedArray> = {};
  const buffers: ArrayBuffer[] = [];
  for (const [k, t] of Object.entries(stateOf(model))) {
    const d = t._data.slice();
    state[k] = d;
    buffers.push(d.buffer as ArrayBuffer);
  }
  return { state, buffers };
}

/** @internal Copies state-dict data by name into the model's tensors. */
export function loadState(op: string, model: Module, state: Record<string, TypedArray>): void {
  const own = stateOf(model);
  for (const [k, d] of Object.entries(state)) {
    const t = own[k];
    if (!t) throw new RangeError(`${op}: the worker's model has state ${JSON.stringify(k)}, which this model lacks (was it changed during training?)`);
    const dst = t._data;
    if (dst.length !== d.length) throw new RangeError(`${op}: state ${JSON.stringify(k)} has ${d.length} values from the worker, this model's has ${dst.length}`);
    if (dst instanceof Float32Array === d instanceof Float32Array) dst.set(d as never);
    else for (let i = 0; i < d.length; i++) dst[i] = d[i];
  }
}

/** @internal Copies an optimizer's encoded properties (all but its params) onto `opt`. */
export function applyOptimizerState(op: string, opt: Optimizer, encoded: Encoded, state: Map<string, Tensor>): void {
  const tag = encoded as { $?: string; props?: Record<string, Encoded> };
  if (tag?.$ !== 'obj' || !tag.props) throw new TypeError(`${op}: malformed optimizer state from the worker`);
  const { params: _params, ...rest } = tag.props;
  new Decoder({ op, state, userClasses: new Map(), searched: [] }).assign(opt, rest);
}

async function fitAsync(this: Module, a: unknown, b?: unknown, c?: unknown): Promise<History> {
  const op = 'fitAsync';
  const callerStack = new Error().stack ?? '';
  if (this._workerFit) throw new Error(`${op}: this model is already being trained by fitAsync; await it (or stop it) first`);
  const comp = compiled(this, op);
  const { inputs, target, data, opts } = parseArgs<FitAsyncOptions>(op, a, b, c);
  const checked = checkFitOptions(op, opts, [...FIT_OPTIONS, 'signal', 'workerModules']);
  const signal = opts.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError(`${op}: signal must be an AbortSignal, got ${describe(signal)}`);
  signal?.throwIfAborted();
  const modules = moduleList(op, opts.workerModules);
  // (x, y) tensors, and [x, y] validation tensors, are copied over once and batched by the worker.
  // Any other source (a Dataset, a DataLoader, an iterable) is batched here, as fit() does, and
  // streamed batch by batch; its validation batches are copied over once, at the start.
  const vd = opts.validationData;
  const tensorPair = (v: unknown): v is [Tensor | Tensor[], Tensor] =>
    Array.isArray(v) && v.length === 2 && (v[0] instanceof Tensor || isTensorArray(v[0])) && v[1] instanceof Tensor;
  const shipped = inputs !== null && target !== null && (vd === undefined || tensorPair(vd));
  const valInputs = shipped && tensorPair(vd) ? (vd[0] instanceof Tensor ? [vd[0]] : vd[0]) : null;
  const valTarget = shipped && tensorPair(vd) ? vd[1] : null;
  if (shipped)
    for (const [i, t] of [...inputs, target, ...(valInputs ?? []), ...(valTarget ? [valTarget] : [])].entries())
      if (t.isDisposed) t._live(`${op} (data tensor ${i})`);

  // The model, optimizer, loss and metrics, as one object graph.
  const own = stateOf(this);
  const stateNames = new Map<Tensor, string>();
  for (const [k, t] of Object.entries(own)) if (!stateNames.has(t)) stateNames.set(t, k);
  const enc = new Encoder({ op, stateNames });
  const model = enc.encode(this, 'model');
  const optimizer = enc.encode(comp.optimizer, 'the optimizer');
  const loss = specOf(op, enc, comp.lossSpec, "compile's loss");
  const metrics = comp.metricSpecs.map((m: MetricSpec, i) => specOf(op, enc, m, `compile's metrics[${i}]`));
  const userThings = [...enc.userClasses].map(([name, at]) => `class ${name} (${at})`);
  for (const [i, s] of [loss, ...metrics].entries())
    if (s.kind === 'fn') userThings.push(`function ${s.name} (${i === 0 ? "compile's loss" : `compile's metrics[${i - 1}]`})`);
  if (userThings.length && !modules.length)
    throw new TypeError(`${op}: the worker thread cannot rebuild ${userThings.join(', ')}: defined in your code, not in tensorsmith. ` +
      `Export ${userThings.length > 1 ? 'them' : 'it'} from a module and pass that module as workerModules (e.g. [new URL('./net.js', import.meta.url)]), or train with fit()`);

  const state: WireState[] = [];
  const transfer: ArrayBuffer[] = [];
  for (const [name, t] of Object.entries(own)) {
    const d = t._data.slice();
    transfer.push(d.buffer as ArrayBuffer);
    state.push({ name, data: d, shape: t.shape.slice(), param: isParameter(t), requiresGrad: t.requiresGrad });
  }
  const wire = async (t: Tensor, name: string) => {
    const w = await copyOut(op, t, name);
    transfer.push(w.data.buffer as ArrayBuffer);
    return w;
  };
  const x: WireTensor[] = [];
  let y: WireTensor | null = null;
  let validation: WorkerInit['validation'] = null;
  let train: Source | null = null;
  let valBatches: WireTensor[][] | null = null;
  if (shipped) {
    for (const [i, t] of inputs.entries()) x.push(await wire(t, inputs.length > 1 ? `x[${i}]` : 'x'));
    y = await wire(target, 'y');
    if (valInputs && valTarget) {
      const vx: WireTensor[] = [];
      for (const [i, t] of valInputs.entries()) vx.push(await wire(t, `validationData x[${i}]`));
      validation = { x: vx, y: await wire(valTarget, 'validationData y') };
    }
  } else {
    // The same sources as fit() (the same draws from the generator, before its position is sent).
    const src = fitSources(op, inputs, target, data, opts, checked.batchSize, checked.shuffle);
    for (const t of src.temporaries) t.dispose(); // (only made for tensors with validationSplit, which are shipped)
    train = src.train;
    if (src.val) {
      valBatches = [];
      for (const batch of src.val.iterable as Iterable<Batch>) {
        try {
          const { inputs: bx, target: by } = splitBatch(op, batch);
          valBatches.push(wireBatch(op, [...bx, by], transfer));
        } finally {
          if (src.val.ownsBatches) disposeBatch(batch);
        }
        await nextTurn();
      }
    }
  }
  signal?.throwIfAborted();
  if (this._workerFit) throw new Error(`${op}: this model is already being trained by fitAsync; await it (or stop it) first`);

  const stop = new Int32Array(new SharedArrayBuffer(4));
  const init: WorkerInit = {
    modules, useRequire: false, state, model, optimizer, loss, metrics, rng: getRngState(), detectAnomaly: isAnomalyEnabled(), x, y, validation, stop,
    stream: !shipped, valBatches,
    fit: {
      epochs: checked.epochs, initialEpoch: checked.initialEpoch, batchSize: checked.batchSize, shuffle: checked.shuffle,
      seed: opts.seed, validationSplit: opts.validationSplit, validationBatchSize: opts.validationBatchSize,
      gradAccumulation: checked.accumulate, clipGradNorm: opts.clipGradNorm,
    },
  };

  const worker = startWorker(op, init, transfer);
  liveWorkers++;
  const self = this;
  self._workerFit = { stop };
  self.stopTraining = false;
  const history = new History();
  let cbs: CallbackHooks[] = [];

  return new Promise<History>((resolve, reject) => {
    let settled = false;
    let trained = false;
    let exited = false;
    let queue: Promise<void> = Promise.resolve();
    const post = (m: ToWorker, buffers: ArrayBuffer[] = []) => worker.postMessage(m, buffers);
    // The streamed training batches: one iterator per epoch, PREFETCH batches ahead of the worker.
    let stream: { id: number; it: Iterator<Batch> | AsyncIterator<Batch>; done: boolean } | null = null;
    const closeStream = async () => {
      const s = stream;
      stream = null;
      if (s && !s.done && s.it.return) await s.it.return();
    };
    const sendBatch = async (id: number) => {
      const s = stream;
      if (!s || s.id !== id || s.done || settled) return;
      const r = await s.it.next();
      if (r.done) {
        s.done = true;
        post({ type: 'batch', id, tensors: null });
        return;
      }
      try {
        const { inputs: bx, target: by } = splitBatch(op, r.value);
        const buffers: ArrayBuffer[] = [];
        const tensors = wireBatch(op, [...bx, by], buffers);
        if (!settled) post({ type: 'batch', id, tensors }, buffers);
      } finally {
        if (train!.ownsBatches) disposeBatch(r.value);
      }
    };
    const finish = (err: unknown, value?: History) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      self._workerFit = undefined;
      void closeStream().catch(() => undefined);
      const done = () => (err === undefined ? resolve(value!) : reject(err));
      // Settle once the thread is gone, so its tensors are freed by the time the caller continues.
      if (exited) done();
      else void worker.terminate().then(done, done);
    };
    worker.once('exit', () => {
      exited = true;
      liveWorkers--;
    });
    const onAbort = () => finish(signal!.reason ?? new DOMException('This operation was aborted', 'AbortError'));
    signal?.addEventListener('abort', onAbort, { once: true });

    const handle = async (m: FromWorker): Promise<void> => {
      if (settled) return;
      switch (m.type) {
        case 'trainBegin': {
          const params: TrainingParams = { ...m.params, verbose: checked.verbose };
          if (train) {
            // The worker sees a stream; the caller knows the source.
            params.steps = train.steps === null ? null : Math.max(train.steps, 0);
            params.samples = train.samples;
            params.batchSize = train.batchSize;
          }
          cbs = prepareCallbacks(self, checked.callbacks, checked.verbose, params);
          history.params = params;
          await call(cbs, 'onTrainBegin', {});
          return;
        }
        case 'epochBegin': {
          await call(cbs, 'onEpochBegin', m.epoch, {});
          const { state: s, buffers } = copyState(self);
          if (!settled) post({ type: 'epochGo', lr: comp.optimizer.lr, stop: self.stopTraining, state: s }, buffers);
          return;
        }
        case 'batchBegin': await call(cbs, 'onBatchBegin', m.step, m.logs); return;
        case 'batchEnd': await call(cbs, 'onBatchEnd', m.step, m.logs); return;
        case 'epochEnd': {
          loadState(op, self, m.state);
          const byName = new Map(Object.entries(stateOf(self)));
          applyOptimizerState(op, comp.optimizer, m.optimizer, byName);
          setRngState(m.rng);
          await call(cbs, 'onEpochEnd', m.epoch, m.logs);
          history.record(m.epoch, m.logs);
          if (!settled) post({ type: 'epochEndAck', stop: self.stopTraining });
          return;
        }
        case 'trainEnd':
          setRngState(m.rng);
          trained = true;
          await call(cbs, 'onTrainEnd', history.epoch.length ? lastLogs(history) : {});
          finish(undefined, history);
          return;
        case 'error':
          finish(fromWireError(m.error, callerStack));
          return;
        case 'open':
          await closeStream();
          stream = { id: m.id, it: iteratorOf(train!.iterable), done: false };
          for (let i = 0; i < PREFETCH; i++) await sendBatch(m.id);
          return;
        case 'pull': await sendBatch(m.id); return;
        case 'close': if (stream?.id === m.id) await closeStream(); return;
      }
    };

    // Messages are handled one at a time, in order, each awaiting its (possibly async) hooks.
    worker.on('message', (m: FromWorker) => {
      queue = queue.then(() => handle(m)).catch((err) => finish(err));
    });
    worker.on('error', (err) => {
      queue = queue.then(() => finish(err));
    });
    worker.on('exit', (code) => {
      queue = queue.then(() => {
        if (!trained) finish(new Error(`${op}: the worker thread exited (code ${code}) before training finished`));
      });
    });
  });
}

Module.prototype.fitAsync = fitAsync as Module['fitAsync'];
