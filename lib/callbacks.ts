// tsm.callbacks: hooks into fit(), as Keras callbacks.
//
// A callback is any object with some of onTrainBegin/onTrainEnd(logs), onEpochBegin/onEpochEnd
// (epoch, logs), onBatchBegin/onBatchEnd(batch, logs); hooks may be async (fit awaits them).
// Before training, fit() sets `callback.model` (the module being trained) and `callback.params`
// ({epochs, steps, samples, batchSize, verbose, metrics, initialEpoch}). A callback stops training
// by setting `model.stopTraining = true`; fit ends after the current batch (set in onEpochEnd: after the epoch).
//
// Epoch logs carry `loss`, each metric, `val_loss` and `val_<metric>` when there is validation
// data, and `lr` (the optimizer's learning rate). Batch logs carry `batch`, `size` and the running
// means of the epoch so far.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, checkInt, checkNumber } from './check';
import * as io from './io';
import * as ops from './ops';
import type { Module } from './nn';
import { LRScheduler, Optimizer, ReduceLROnPlateau } from './optim';
import { ProgressBar } from './progress';
import type { Tensor, TypedArray } from './tensor';

/** Values by Keras name (`loss`, `accuracy`, `val_loss`, `lr`...) passed to the hooks. */
export type Logs = Record<string, number>;

/** What fit() puts in `callback.params` before training. */
export interface TrainingParams {
  /** Total epochs requested (`FitOptions.epochs`). */
  epochs: number;
  /** First epoch index (`FitOptions.initialEpoch`, default 0). */
  initialEpoch: number;
  /** Batches per epoch (null when the data is an iterable of unknown length). */
  steps: number | null;
  /** Samples per epoch (null when unknown). */
  samples: number | null;
  /** Samples per batch (null when the data source sets its own batching). */
  batchSize: number | null;
  /** The `verbose` level of fit (0, 1 or 2). */
  verbose: number;
  /** Metric names, without and with the `val_` prefix. */
  metrics: string[];
}

/** What callbacks see of the model: a Module with its compiled optimizer and the stop flag. */
export type TrainedModel = Module & {
  /** The optimizer set by compile(). */
  optimizer: Optimizer | null;
  /** Set to true to end fit() after the current batch. */
  stopTraining: boolean;
};

/** A hook may finish synchronously or return a promise that fit() awaits. */
export type Awaitable = void | Promise<void>;

/** A callback: any object with some of these hooks, as Keras callbacks. Hooks may be async; fit() awaits them. */
export interface CallbackHooks {
  /** The module being trained; set by fit() before training. */
  model?: TrainedModel;
  /** Training parameters; set by fit() before training. */
  params?: TrainingParams;
  /** Called once before the first epoch. */
  onTrainBegin?(logs: Logs): Awaitable;
  /** Called once after the last epoch (or after an early stop) with the last epoch's logs. */
  onTrainEnd?(logs: Logs): Awaitable;
  /** Called at the start of each epoch (0-based index). */
  onEpochBegin?(epoch: number, logs: Logs): Awaitable;
  /** Called after each epoch (and its validation) with the epoch's loss and metrics, `val_*` and `lr`. */
  onEpochEnd?(epoch: number, logs: Logs): Awaitable;
  /** Called before each training batch (0-based index within the epoch). */
  onBatchBegin?(batch: number, logs: Logs): Awaitable;
  /** Called after each optimizer step with `batch`, `size` and the running means of the epoch so far. */
  onBatchEnd?(batch: number, logs: Logs): Awaitable;
}

/** Base class for callbacks written as classes (plain objects work just as well). */
export class Callback implements CallbackHooks {
  /** The module being trained; set by fit() before training. */
  model?: TrainedModel;
  /** Training parameters; set by fit() before training. */
  params?: TrainingParams;
}

function requireModel(cb: string, model: TrainedModel | undefined): TrainedModel {
  if (!model) throw new Error(`callbacks.${cb}: no model: the callback must be passed to fit({callbacks}), which sets callback.model`);
  return model;
}

// ---------------------------------------------------------------------------------------------

/** Options of {@link progressBar}. */
export interface ProgressBarOptions {
  /** Where to write (default process.stdout). */
  stream?: NodeJS.WritableStream & {
    /** True when the stream is a terminal (the bar redraws in place). */
    isTTY?: boolean;
  };
  /** 1: a live bar on a TTY (one line per epoch otherwise); 2: one line per epoch always. */
  verbose?: 1 | 2;
}

/**
 * The default callback with verbose 1: a bar redrawn in place on a TTY, one line per epoch
 * otherwise, with loss, metrics, ETA and samples per second.
 */
export function progressBar(opts: ProgressBarOptions = {}): Callback {
  return new ProgressCallback(opts);
}

class ProgressCallback extends Callback {
  private bar: ProgressBar | null = null;
  private seen = 0;
  constructor(private readonly opts: ProgressBarOptions) {
    super();
  }
  private stream(): NodeJS.WriteStream {
    const s = this.opts.stream ?? process.stdout;
    const tty = (this.opts.verbose ?? this.params?.verbose ?? 1) === 1 && Boolean(s.isTTY);
    return { write: (chunk: string) => s.write(chunk), isTTY: tty } as unknown as NodeJS.WriteStream;
  }
  onEpochBegin(epoch: number): void {
    const p = this.params;
    const total = p?.steps ?? 0;
    this.seen = 0;
    this.bar = new ProgressBar({ total, label: `Epoch ${epoch + 1}/${p?.epochs ?? '?'} `, stream: this.stream() });
  }
  onBatchEnd(batch: number, logs: Logs): void {
    this.seen += logs.size ?? 0;
    const { batch: _b, size: _s, ...shown } = logs;
    this.bar?.update(batch + 1, shown, this.seen);
  }
  onEpochEnd(_epoch: number, logs: Logs): void {
    const { lr: _lr, ...shown } = logs;
    this.bar?.finish(shown, this.seen);
    this.bar = null;
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Whether the monitored quantity should decrease (`'min'`) or increase (`'max'`); `'auto'` (default) picks
 * `'max'` for names containing acc/precision/recall/f1/auc and `'min'` otherwise.
 */
export type Mode = 'min' | 'max' | 'auto';

/** 'max' for accuracy-like names, 'min' for losses and errors. */
export function resolveMode(mode: Mode, monitor: string): 'min' | 'max' {
  if (mode === 'min' || mode === 'max') return mode;
  if (mode !== 'auto') throw new RangeError(`callbacks: mode must be 'min', 'max' or 'auto', got ${describe(mode)}`);
  return /acc|precision|recall|f1|auc/i.test(monitor) ? 'max' : 'min';
}

/** Options of {@link EarlyStopping}, as Keras's EarlyStopping. */
export interface EarlyStoppingOptions {
  /** The quantity watched (default 'val_loss'). */
  monitor?: string;
  /** Epochs without improvement before stopping (default 0). */
  patience?: number;
  /** The smallest change that counts as an improvement (default 0). */
  minDelta?: number;
  /** Direction of improvement (default 'auto'). */
  mode?: Mode;
  /** A value the monitored quantity must beat; training stops if it does not within `patience`. */
  baseline?: number;
  /** At the end of training, put back the weights of the best epoch (default false). */
  restoreBestWeights?: boolean;
  /** Print a line when stopping (default false). */
  verbose?: boolean;
}

/**
 * Stops training when the monitored quantity has not improved for `patience` epochs, as Keras's
 * EarlyStopping; created by {@link earlyStopping}. Warns once when `monitor` is missing from the logs.
 */
export class EarlyStopping extends Callback {
  /** The logged quantity watched. */
  readonly monitor: string;
  /** Epochs without improvement tolerated before stopping. */
  readonly patience: number;
  /** Minimum change (absolute value) that counts as an improvement. */
  readonly minDelta: number;
  /** Whether the best epoch's weights are restored at the end of training. */
  readonly restoreBestWeights: boolean;
  private readonly direction: 'min' | 'max';
  /** Best value of `monitor` seen (NaN: none yet). */
  best = NaN;
  /** Epoch of the best value (-1: none yet). */
  bestEpoch = -1;
  /** Epoch at which training was stopped (-1: it was not). */
  stoppedEpoch = -1;
  private wait = 0;
  private snapshot: Map<string, TypedArray> | null = null;
  private warned = false;
  constructor(private readonly opts: EarlyStoppingOptions = {}) {
    super();
    this.monitor = opts.monitor ?? 'val_loss';
    if (typeof this.monitor !== 'string') throw new TypeError(`earlyStopping: monitor must be a string, got ${describe(this.monitor)}`);
    this.patience = checkInt('earlyStopping', 'patience', opts.patience ?? 0, 0);
    this.minDelta = Math.abs(checkNumber('earlyStopping', 'minDelta', opts.minDelta ?? 0));
    this.restoreBestWeights = opts.restoreBestWeights ?? false;
    this.direction = resolveMode(opts.mode ?? 'auto', this.monitor);
  }
  private improved(v: number, ref: number): boolean {
    if (Number.isNaN(ref)) return true;
    return this.direction === 'min' ? v < ref - this.minDelta : v > ref + this.minDelta;
  }
  /** Resets the state (wait, best, bestEpoch, stoppedEpoch, saved weights). */
  onTrainBegin(): void {
    this.wait = 0;
    this.best = NaN;
    this.bestEpoch = -1;
    this.stoppedEpoch = -1;
    this.snapshot = null;
  }
  /**
   * Compares logs[monitor] with the best so far (saving the weights on improvement when
   * restoreBestWeights) and sets model.stopTraining after `patience` epochs without one.
   */
  onEpochEnd(epoch: number, logs: Logs): void {
    const model = requireModel('earlyStopping', this.model);
    const v = logs[this.monitor];
    if (v === undefined || Number.isNaN(v)) {
      if (!this.warned) {
        this.warned = true;
        console.warn(`earlyStopping: '${this.monitor}' is not in the epoch logs (available: ${Object.keys(logs).join(', ')}); not stopping`);
      }
      return;
    }
    this.wait++;
    if (this.improved(v, this.best)) {
      this.best = v;
      this.bestEpoch = epoch;
      if (this.restoreBestWeights) this.snapshot = snapshot(model);
      // With a baseline, an improvement must also beat it to reset the wait; one that does not
      // still counts towards patience (training stops if the baseline is never beaten).
      const base = this.opts.baseline;
      if (base === undefined || this.improved(v, base)) {
        this.wait = 0;
        return;
      }
    }
    if (this.wait >= this.patience) {
      this.stoppedEpoch = epoch;
      model.stopTraining = true;
    }
  }
  /** Restores the best weights (when restoreBestWeights) and, when verbose, reports the stop. */
  onTrainEnd(): void {
    const model = requireModel('earlyStopping', this.model);
    if (this.restoreBestWeights && this.snapshot) restore(model, this.snapshot);
    if (this.opts.verbose && this.stoppedEpoch >= 0)
      console.log(`Epoch ${this.stoppedEpoch + 1}: early stopping (best ${this.monitor} ${this.best.toFixed(4)} at epoch ${this.bestEpoch + 1})`);
  }
}

// The snapshot is kept on the host; CUDA tensors are read back (once per improving epoch) and
// restored by an upload into new device storage that the tensor adopts.
function snapshot(model: Module): Map<string, TypedArray> {
  const m = new Map<string, TypedArray>();
  for (const [k, t] of Object.entries(model.stateDict())) m.set(k, t.device === 'cpu' ? t._data.slice() : t.dataSync());
  return m;
}

function restore(model: Module, snap: Map<string, TypedArray>): void {
  for (const [k, t] of Object.entries(model.stateDict())) {
    const s = snap.get(k);
    if (!s || s.length !== t.size) continue;
    if (t.device === 'cpu') { t._data.set(s); continue; }
    const u = ops.tensor(s, { shape: t.shape.slice(), dtype: t.dtype, device: t.device });
    t._adoptStorage(u);
    u.dispose();
  }
}

/** Stops training when the monitored quantity has stopped improving for `patience` epochs. */
export function earlyStopping(opts: EarlyStoppingOptions = {}): EarlyStopping {
  return new EarlyStopping(opts);
}

// ---------------------------------------------------------------------------------------------

/** A schedule as a function of the epoch and the current learning rate. */
export type LrFunction = (epoch: number, lr: number) => number;

/**
 * Steps a learning-rate scheduler once per epoch: an LRScheduler (StepLR, CosineAnnealingLR,
 * LinearLR) at the end of every epoch, ReduceLROnPlateau with the monitored value (default
 * 'val_loss', falling back to 'loss'), or a function (epoch, lr) => lr applied at the start of
 * every epoch, as Keras's LearningRateScheduler.
 */
export function lrScheduler(scheduler: LRScheduler | ReduceLROnPlateau | LrFunction, opts: { monitor?: string } = {}): Callback {
  if (!(scheduler instanceof LRScheduler) && !(scheduler instanceof ReduceLROnPlateau) && typeof scheduler !== 'function')
    throw new TypeError(`lrScheduler: expected a scheduler (StepLR, CosineAnnealingLR, LinearLR, ReduceLROnPlateau) or a function (epoch, lr) => lr, got ${describe(scheduler)}`);
  return new (class extends Callback {
    onEpochBegin(epoch: number): void {
      if (typeof scheduler !== 'function') return;
      const model = requireModel('lrScheduler', this.model);
      if (!model.optimizer) throw new Error('lrScheduler: the model has no optimizer; call compile() first');
      const lr = scheduler(epoch, model.optimizer.lr);
      checkNumber('lrScheduler', 'the learning rate returned by the schedule', lr, 0);
      model.optimizer.lr = lr;
    }
    onEpochEnd(_epoch: number, logs: Logs): void {
      if (scheduler instanceof ReduceLROnPlateau) {
        const key = opts.monitor ?? ('val_loss' in logs ? 'val_loss' : 'loss');
        const v = logs[key];
        if (v === undefined) throw new RangeError(`lrScheduler: '${key}' is not in the epoch logs (available: ${Object.keys(logs).join(', ')})`);
        scheduler.step(v);
      } else if (scheduler instanceof LRScheduler) scheduler.step();
      if (this.model?.optimizer) logs.lr = this.model.optimizer.lr;
    }
  })();
}

// ---------------------------------------------------------------------------------------------

/** Options of {@link csvLogger}. */
export interface CsvLoggerOptions {
  /** Column separator (default ','). */
  separator?: string;
  /** Append to an existing file instead of starting a new one (default false). */
  append?: boolean;
}

/** Writes one row per epoch (epoch, then the logs' keys in sorted order) to a CSV file. */
export function csvLogger(file: string, opts: CsvLoggerOptions = {}): Callback {
  if (typeof file !== 'string' || !file) throw new TypeError(`csvLogger: path must be a non-empty string, got ${describe(file)}`);
  const sep = opts.separator ?? ',';
  let keys: string[] | null = null;
  const cell = (v: number | undefined) => (v === undefined ? '' : String(v));
  return new (class extends Callback {
    onTrainBegin(): void {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      keys = null;
      if (opts.append && fs.existsSync(file) && fs.statSync(file).size > 0) {
        const first = fs.readFileSync(file, 'utf8').split('\n')[0];
        keys = first.split(sep).slice(1);
      } else fs.writeFileSync(file, '');
    }
    onEpochEnd(epoch: number, logs: Logs): void {
      if (!keys) {
        keys = Object.keys(logs).sort();
        fs.appendFileSync(file, ['epoch', ...keys].join(sep) + '\n');
      }
      fs.appendFileSync(file, [String(epoch), ...keys.map((k) => cell(logs[k]))].join(sep) + '\n');
    }
  })();
}

// ---------------------------------------------------------------------------------------------

/** Options of {@link modelCheckpoint}. */
export interface ModelCheckpointOptions {
  /** The quantity compared with saveBestOnly (default 'val_loss'). */
  monitor?: string;
  /** Save only when the monitored quantity improves (default false: every epoch). */
  saveBestOnly?: boolean;
  /** Direction of improvement (default 'auto'). */
  mode?: Mode;
  /** Print a line on every save (default false). */
  verbose?: boolean;
}

/** Fills `{epoch}` (1-based) and `{name}` / `{name:.4f}` from the logs into a path template. */
export function formatPath(template: string, epoch: number, logs: Logs): string {
  return template.replace(/\{(\w+)(?::\.(\d+)f)?\}/g, (all, key: string, digits?: string) => {
    const v = key === 'epoch' ? epoch + 1 : logs[key];
    if (v === undefined) return all;
    return digits !== undefined ? v.toFixed(Number(digits)) : String(v);
  });
}

/**
 * Saves the model's state dict (safetensors, atomic) after every epoch, or only when the
 * monitored quantity improves. The path may hold `{epoch}` and `{val_loss:.4f}`-style fields.
 */
export function modelCheckpoint(file: string, opts: ModelCheckpointOptions = {}): Callback {
  if (typeof file !== 'string' || !file) throw new TypeError(`modelCheckpoint: path must be a non-empty string, got ${describe(file)}`);
  const monitor = opts.monitor ?? 'val_loss';
  const direction = resolveMode(opts.mode ?? 'auto', monitor);
  let best = NaN;
  let warned = false;
  return new (class extends Callback {
    onTrainBegin(): void {
      best = NaN;
    }
    onEpochEnd(epoch: number, logs: Logs): void {
      const model = requireModel('modelCheckpoint', this.model);
      const v = logs[monitor];
      if (opts.saveBestOnly) {
        if (v === undefined || Number.isNaN(v)) {
          if (!warned) {
            warned = true;
            console.warn(`modelCheckpoint: '${monitor}' is not in the epoch logs (available: ${Object.keys(logs).join(', ')}); not saving`);
          }
          return;
        }
        const better = Number.isNaN(best) || (direction === 'min' ? v < best : v > best);
        if (!better) return;
        best = v;
      }
      const target = formatPath(file, epoch, logs);
      fs.mkdirSync(path.dirname(path.resolve(target)), { recursive: true });
      const metadata: Record<string, string> = { epoch: String(epoch + 1) };
      for (const [k, x] of Object.entries(logs)) metadata[k] = String(x);
      io.save(model.stateDict(), target, { metadata });
      if (opts.verbose) console.log(`Epoch ${epoch + 1}: saved ${target}${v !== undefined ? ` (${monitor} ${v.toFixed(4)})` : ''}`);
    }
  })();
}

/** A callback from hook functions (Keras's LambdaCallback). */
export function lambdaCallback(hooks: CallbackHooks): CallbackHooks {
  if (typeof hooks !== 'object' || hooks === null) throw new TypeError(`lambdaCallback: expected an object of hooks, got ${describe(hooks)}`);
  return hooks;
}
