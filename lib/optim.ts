// tsm.optim: optimizers whose step() updates every parameter in one native call, gradient
// clipping, and learning-rate schedulers. Hyper-parameters are validated in the constructors;
// per-parameter state is created lazily on the first step.
//
// CUDA parameters: SGD and Adam/AdamW update them with the fused multi-tensor kernels of
// cuda/optim.cu (one launch per 32 parameters), their state lives on the device as tensors (kept
// out of tidy scopes); RMSprop has no CUDA kernel yet.
import { checkBool, checkNumber, describe } from './check';
import * as cu from './cuda-tensor';
import { noCudaKernel, type Device } from './device';
import { nativeAddon } from './native-api';
import { BINARY } from './ops';
import * as ops from './ops';
import { keep, noGrad, Tensor } from './tensor';

const N = () => nativeAddon();

function checkParams(op: string, params: unknown): Tensor[] {
  const list = params instanceof Tensor ? [params] : params;
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`${op}: params must be a non-empty array of tensors, got ${describe(params)}`);
  list.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new TypeError(`${op}: params[${i}] must be a Tensor, got ${describe(p)}`);
    if (!p.requiresGrad) throw new RangeError(`${op}: params[${i}] does not require gradients`);
  });
  return list as Tensor[];
}

function zerosLikeData(p: Tensor): Float32Array {
  return new Float32Array(p.size);
}

/** Zeros on p's CUDA device, kept out of tidy scopes (optimizer state). */
function zerosOnDevice(p: Tensor): Tensor {
  return keep(cu.full(p.shape, 0, p.device));
}

/** The state of a parameter that changed device after its optimizer state was made. */
function stateDeviceError(op: string, i: number, p: Tensor): TypeError {
  return new TypeError(`${op}: params[${i}] is on ${p.device} but its optimizer state was created on another device; create the optimizer after moving the parameters (Module.to)`);
}

function gradDeviceError(i: number, p: Tensor): TypeError {
  return new TypeError(`step: expected all tensors on the same device, got ${p.device} (params[${i}]) and ${p.grad?.device} (its grad)`);
}

/** Result of Optimizer.withGrads(): the parameters that have a gradient. */
export interface ParamsWithGrads {
  /** Indices into `params`. */
  idx: number[];
  /** Their data. */
  params: Float32Array[];
  /** Their gradients' data. */
  grads: Float32Array[];
}

/**
 * Base class of the optimizers, as `torch.optim.Optimizer`: holds the parameters and the learning
 * rate; `step()` updates every parameter that has a `.grad`, in place.
 */
export abstract class Optimizer {
  /** The parameters updated by `step()`. */
  readonly params: Tensor[];
  /** Learning rate; schedulers change it between steps. */
  lr: number;
  /** Number of `step()` calls that updated at least one parameter. */
  stepCount = 0;
  constructor(op: string, params: Tensor[], lr: number) {
    this.params = checkParams(op, params);
    this.lr = checkNumber(op, 'lr', lr, 0);
  }
  /** Disposes and clears (`null`) the `grad` of every parameter. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }
  /** CPU parameters that have a gradient, with their float32 data (CUDA ones: {@link Optimizer.cudaGroups}). */
  protected withGrads(): ParamsWithGrads {
    const idx: number[] = [], params: Float32Array[] = [], grads: Float32Array[] = [];
    this.params.forEach((p, i) => {
      if (!p.grad || p.device !== 'cpu') return;
      if (p.grad.device !== 'cpu') throw gradDeviceError(i, p);
      idx.push(i);
      params.push(p._data as Float32Array);
      grads.push(p.grad._data as Float32Array);
    });
    return { idx, params, grads };
  }
  /**
   * Indices of the CUDA parameters that have a gradient, by device (empty when all are on the CPU).
   * TypeError when a gradient is not on its parameter's device.
   */
  protected cudaGroups(): Map<Device, number[]> {
    const groups = new Map<Device, number[]>();
    this.params.forEach((p, i) => {
      if (!p.grad || p.device === 'cpu') return;
      if (p.grad.device !== p.device) throw gradDeviceError(i, p);
      const g = groups.get(p.device);
      if (g) g.push(i);
      else groups.set(p.device, [i]);
    });
    return groups;
  }
  /** Applies one update to every parameter with a gradient (parameters without one are skipped). */
  abstract step(): void;
  /** The optimizer's hyper-parameters and per-parameter state (the arrays themselves, not copies). */
  abstract stateDict(): Record<string, unknown>;
}

/** Options of {@link SGD}, as `torch.optim.SGD`. */
export interface SGDOptions {
  /** Learning rate (defaults: SGD 1e-3, Adam/AdamW 1e-3, RMSprop 1e-2). */
  lr?: number;
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** L2 penalty added to the gradient (default 0; AdamW: decoupled decay, default 0.01). */
  weightDecay?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** Maximise the objective instead of minimising it (default false). */
  maximize?: boolean;
}

/**
 * Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight decay,
 * as `torch.optim.SGD`. Throws RangeError for nesterov without momentum or with dampening.
 */
export class SGD extends Optimizer {
  /** Momentum factor. */
  readonly momentum: number;
  /** Dampening of the momentum. */
  readonly dampening: number;
  /** Weight decay coefficient. */
  readonly weightDecay: number;
  /** Whether Nesterov momentum is used. */
  readonly nesterov: boolean;
  /** Whether the objective is maximised. */
  readonly maximize: boolean;
  /** Momentum buffers: Float32Array for CPU parameters, device tensors for CUDA ones. */
  private buffers: (Float32Array | Tensor | null)[];
  constructor(params: Tensor[], opts: SGDOptions = {}) {
    super('SGD', params, opts.lr ?? 1e-3);
    this.momentum = checkNumber('SGD', 'momentum', opts.momentum ?? 0, 0);
    this.dampening = checkNumber('SGD', 'dampening', opts.dampening ?? 0);
    this.weightDecay = checkNumber('SGD', 'weightDecay', opts.weightDecay ?? 0, 0);
    this.nesterov = checkBool('SGD', 'nesterov', opts.nesterov ?? false);
    this.maximize = checkBool('SGD', 'maximize', opts.maximize ?? false);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0))
      throw new RangeError('SGD: nesterov momentum requires momentum > 0 and dampening = 0');
    this.buffers = this.params.map(() => null);
  }
  step(): void {
    const { idx, params, grads } = this.withGrads();
    const cuda = this.cudaGroups();
    if (!idx.length && !cuda.size) return;
    if (idx.length && this.momentum === 0) {
      N().sgdStep(params, grads, null, this.lr, 0, this.dampening, this.weightDecay, this.nesterov, this.maximize, false);
    } else if (idx.length) {
      // Parameters getting their first momentum buffer take buf = grad; the others the usual update.
      const isNew = idx.map((i) => this.buffers[i] === null);
      for (const first of [true, false]) {
        const js = idx.map((_, j) => j).filter((j) => isNew[j] === first);
        if (!js.length) continue;
        const bufs = js.map((j) => (this.buffers[idx[j]] ??= zerosLikeData(this.params[idx[j]])) as Float32Array);
        N().sgdStep(js.map((j) => params[j]), js.map((j) => grads[j]), bufs, this.lr, this.momentum, this.dampening,
          this.weightDecay, this.nesterov, this.maximize, first);
      }
    }
    for (const group of cuda.values()) this.stepCuda(group);
    this.stepCount++;
  }
  /** The update of the CUDA parameters `is` (one device), in the fused kernel. */
  private stepCuda(is: number[]): void {
    const op = 'SGD.step';
    const ps = is.map((i) => this.params[i]), gs = ps.map((p) => p.grad as Tensor);
    is.forEach((i) => {
      const b = this.buffers[i];
      if (b !== null && !(b instanceof Tensor && b.device === this.params[i].device)) throw stateDeviceError(op, i, this.params[i]);
    });
    if (this.momentum === 0) {
      cu.sgdStep(ps, gs, null, this.lr, 0, this.dampening, this.weightDecay, this.nesterov, this.maximize, false, op);
      return;
    }
    const isNew = is.map((i) => this.buffers[i] === null);
    for (const first of [true, false]) {
      const js = is.map((_, j) => j).filter((j) => isNew[j] === first);
      if (!js.length) continue;
      const bufs = js.map((j) => (this.buffers[is[j]] ??= zerosOnDevice(ps[j])) as Tensor);
      cu.sgdStep(js.map((j) => ps[j]), js.map((j) => gs[j]), bufs, this.lr, this.momentum, this.dampening,
        this.weightDecay, this.nesterov, this.maximize, first, op);
    }
  }
  stateDict(): Record<string, unknown> {
    return { lr: this.lr, momentum: this.momentum, step: this.stepCount, momentumBuffers: this.buffers };
  }
}

/** Options of {@link Adam} and {@link AdamW}, as `torch.optim.Adam`. */
export interface AdamOptions {
  /** Learning rate (defaults: SGD 1e-3, Adam/AdamW 1e-3, RMSprop 1e-2). */
  lr?: number;
  /** Decay rates of the first and second moment estimates, each in [0, 1) (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator for numerical stability (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0; AdamW: decoupled decay, default 0.01). */
  weightDecay?: number;
  /** Use the AMSGrad variant (max of past second moments; default false). */
  amsgrad?: boolean;
  /** Maximise the objective instead of minimising it (default false). */
  maximize?: boolean;
}

/** Adam, as `torch.optim.Adam` (default lr 1e-3, betas [0.9, 0.999], eps 1e-8, L2 weight decay 0). */
export class Adam extends Optimizer {
  /** Moment decay rates [beta1, beta2]. */
  readonly betas: [number, number];
  /** Denominator epsilon. */
  readonly eps: number;
  /** Weight decay coefficient. */
  readonly weightDecay: number;
  /** Whether the AMSGrad variant is used. */
  readonly amsgrad: boolean;
  /** Whether the objective is maximised. */
  readonly maximize: boolean;
  /** True for AdamW: weight decay is applied to the weights, not added to the gradient. */
  protected readonly decoupled: boolean = false;
  /** Per-parameter state: Float32Arrays for CPU parameters, device tensors for CUDA ones. */
  private state: ({ step: number; m: Float32Array | Tensor; v: Float32Array | Tensor; vmax: Float32Array | Tensor | null } | null)[];
  private readonly name: string;
  constructor(params: Tensor[], opts: AdamOptions = {}, name = 'Adam', defaultWd = 0) {
    super(name, params, opts.lr ?? 1e-3);
    const betas = opts.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) throw new TypeError(`${name}: betas must be [beta1, beta2], got ${describe(betas)}`);
    checkNumber(name, 'betas[0]', betas[0], 0, 1);
    checkNumber(name, 'betas[1]', betas[1], 0, 1);
    if (betas[0] >= 1 || betas[1] >= 1) throw new RangeError(`${name}: betas must be in [0, 1), got [${betas.join(', ')}]`);
    this.betas = [betas[0], betas[1]];
    this.eps = checkNumber(name, 'eps', opts.eps ?? 1e-8, 0);
    this.weightDecay = checkNumber(name, 'weightDecay', opts.weightDecay ?? defaultWd, 0);
    this.amsgrad = checkBool(name, 'amsgrad', opts.amsgrad ?? false);
    this.maximize = checkBool(name, 'maximize', opts.maximize ?? false);
    this.state = this.params.map(() => null);
    this.name = name;
  }
  step(): void {
    const { idx, params, grads } = this.withGrads();
    const cuda = this.cudaGroups();
    if (!idx.length && !cuda.size) return;
    if (idx.length) this.stepCpu(idx, params, grads);
    for (const group of cuda.values()) this.stepCuda(group);
    this.stepCount++;
  }
  private stepCpu(idx: number[], params: Float32Array[], grads: Float32Array[]): void {
    const st = idx.map((i) => (this.state[i] ??= {
      step: 0, m: zerosLikeData(this.params[i]), v: zerosLikeData(this.params[i]),
      vmax: this.amsgrad ? zerosLikeData(this.params[i]) : null,
    }));
    // Parameters join at different times only if some had no gradient; group them by step count.
    const groups = new Map<number, number[]>();
    st.forEach((s, j) => {
      s.step++;
      const g = groups.get(s.step) ?? [];
      g.push(j);
      groups.set(s.step, g);
    });
    for (const [step, js] of groups) {
      N().adamStep(js.map((j) => params[j]), js.map((j) => grads[j]), js.map((j) => st[j].m as Float32Array),
        js.map((j) => st[j].v as Float32Array), this.amsgrad ? js.map((j) => st[j].vmax as Float32Array) : null, this.lr,
        this.betas[0], this.betas[1], this.eps, this.weightDecay, step, this.amsgrad, this.decoupled, this.maximize);
    }
  }
  /** The update of the CUDA parameters `is` (one device), in the fused multi-tensor kernel. */
  private stepCuda(is: number[]): void {
    const op = `${this.name}.step`;
    is.forEach((i) => {
      const m = this.state[i]?.m;
      if (m !== undefined && !(m instanceof Tensor && m.device === this.params[i].device)) throw stateDeviceError(op, i, this.params[i]);
    });
    const st = is.map((i) => (this.state[i] ??= {
      step: 0, m: zerosOnDevice(this.params[i]), v: zerosOnDevice(this.params[i]),
      vmax: this.amsgrad ? zerosOnDevice(this.params[i]) : null,
    }));
    const groups = new Map<number, number[]>();
    st.forEach((s, j) => {
      s.step++;
      const g = groups.get(s.step) ?? [];
      g.push(j);
      groups.set(s.step, g);
    });
    for (const [step, js] of groups) {
      const ps = js.map((j) => this.params[is[j]]);
      cu.adamStep(ps, ps.map((p) => p.grad as Tensor), js.map((j) => st[j].m as Tensor), js.map((j) => st[j].v as Tensor),
        this.amsgrad ? js.map((j) => st[j].vmax as Tensor) : null, this.lr, this.betas[0], this.betas[1], this.eps,
        this.weightDecay, step, this.amsgrad, this.decoupled, this.maximize, op);
    }
  }
  stateDict(): Record<string, unknown> {
    return { lr: this.lr, betas: this.betas, eps: this.eps, weightDecay: this.weightDecay, state: this.state };
  }
}

/** Adam with decoupled weight decay (default 0.01, as PyTorch). */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;
  constructor(params: Tensor[], opts: AdamOptions = {}) {
    super(params, opts, 'AdamW', 1e-2);
  }
}

/** Options of {@link RMSprop}, as `torch.optim.RMSprop`. */
export interface RMSpropOptions {
  /** Learning rate (defaults: SGD 1e-3, Adam/AdamW 1e-3, RMSprop 1e-2). */
  lr?: number;
  /** Smoothing constant of the squared-gradient average (default 0.99). */
  alpha?: number;
  /** Added to the denominator for numerical stability (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0; AdamW: decoupled decay, default 0.01). */
  weightDecay?: number;
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Normalise by the estimated variance of the gradient (default false). */
  centered?: boolean;
}

/** RMSprop, as `torch.optim.RMSprop` (default lr 1e-2, alpha 0.99, eps 1e-8). */
export class RMSprop extends Optimizer {
  /** Smoothing constant. */
  readonly alpha: number;
  /** Denominator epsilon. */
  readonly eps: number;
  /** Weight decay coefficient. */
  readonly weightDecay: number;
  /** Momentum factor. */
  readonly momentum: number;
  /** Whether the centered variant is used. */
  readonly centered: boolean;
  private state: ({ sq: Float32Array; buf: Float32Array | null; avg: Float32Array | null } | null)[];
  constructor(params: Tensor[], opts: RMSpropOptions = {}) {
    super('RMSprop', params, opts.lr ?? 1e-2);
    this.alpha = checkNumber('RMSprop', 'alpha', opts.alpha ?? 0.99, 0, 1);
    this.eps = checkNumber('RMSprop', 'eps', opts.eps ?? 1e-8, 0);
    this.weightDecay = checkNumber('RMSprop', 'weightDecay', opts.weightDecay ?? 0, 0);
    this.momentum = checkNumber('RMSprop', 'momentum', opts.momentum ?? 0, 0);
    this.centered = checkBool('RMSprop', 'centered', opts.centered ?? false);
    this.state = this.params.map(() => null);
  }
  step(): void {
    if (this.cudaGroups().size) throw noCudaKernel('RMSprop.step');
    const { idx, params, grads } = this.withGrads();
    if (!idx.length) return;
    const st = idx.map((i) => (this.state[i] ??= {
      sq: zerosLikeData(this.params[i]),
      buf: this.momentum > 0 ? zerosLikeData(this.params[i]) : null,
      avg: this.centered ? zerosLikeData(this.params[i]) : null,
    }));
    N().rmspropStep(params, grads, st.map((s) => s.sq), this.momentum > 0 ? st.map((s) => s.buf as Float32Array) : null,
      this.centered ? st.map((s) => s.avg as Float32Array) : null, this.lr, this.alpha, this.eps, this.weightDecay,
      this.momentum, this.centered);
    this.stepCount++;
  }
  stateDict(): Record<string, unknown> {
    return { lr: this.lr, alpha: this.alpha, state: this.state };
  }
}

/** Scales gradients so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  checkNumber('clipGradNorm', 'maxNorm', maxNorm, 0);
  const withGrad = checkParams('clipGradNorm', params).filter((p) => p.grad).map((p) => p.grad as Tensor);
  const grads = withGrad.filter((g) => g.device === 'cpu').map((g) => g._data as Float32Array);
  const onDevice = withGrad.filter((g) => g.device !== 'cpu');
  if (!grads.length && !onDevice.length) return 0;
  let sq = grads.length ? N().sumOfSquares(grads) : 0;
  if (onDevice.length) {
    // Sums of squares of the CUDA gradients added on their device: one read back per device (not
    // per gradient), so a training step with clipping synchronises once for it.
    noGrad(() => {
      const byDevice = new Map<string, Tensor[]>();
      for (const g of onDevice) {
        const s2 = ops.square(g);
        const list = byDevice.get(g.device) ?? [];
        list.push(ops.sum(s2));
        byDevice.set(g.device, list);
        s2.dispose();
      }
      for (const sums of byDevice.values()) {
        const all = ops.stack(sums), t = ops.sum(all);
        sq += t.item();
        for (const x of [...sums, all, t]) x.dispose();
      }
    });
  }
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    if (grads.length) N().scaleInPlace(grads, coef);
    for (const g of onDevice) cu.scalarInPlace(BINARY.mul, g, coef, 'clipGradNorm');
  }
  return norm;
}

// ---------------------------------------------------------------------------------------------
// learning-rate schedulers: call step() once per epoch (ReduceLROnPlateau: step(metric)).

/**
 * Base of the epoch-based learning-rate schedulers, as `torch.optim.lr_scheduler`: call `step()`
 * once per epoch after the optimizer's steps; it sets `optimizer.lr` for the next epoch.
 */
export abstract class LRScheduler {
  /** The optimizer's learning rate when the scheduler was created. */
  readonly baseLr: number;
  /** Number of `step()` calls so far. */
  lastEpoch = 0;
  /** @param optimizer the optimizer whose `lr` is scheduled */
  constructor(readonly optimizer: Optimizer) {
    if (!(optimizer instanceof Optimizer)) throw new TypeError(`lrScheduler: expected an optimizer, got ${describe(optimizer)}`);
    this.baseLr = optimizer.lr;
  }
  /** The learning rate for epoch `epoch`. */
  protected abstract lrAt(epoch: number): number;
  /** Advances one epoch and sets `optimizer.lr`. */
  step(): void {
    this.lastEpoch++;
    this.optimizer.lr = this.lrAt(this.lastEpoch);
  }
  /** The optimizer's current learning rate. */
  getLastLr(): number {
    return this.optimizer.lr;
  }
}

/** Multiplies the learning rate by `gamma` (default 0.1) every `stepSize` epochs. */
export class StepLR extends LRScheduler {
  /**
   * @param optimizer the optimizer whose `lr` is scheduled
   * @param stepSize epochs between two decays
   * @param gamma multiplicative factor of each decay
   */
  constructor(optimizer: Optimizer, readonly stepSize: number, readonly gamma = 0.1) {
    super(optimizer);
    checkNumber('StepLR', 'stepSize', stepSize, 1);
    checkNumber('StepLR', 'gamma', gamma, 0);
  }
  protected lrAt(e: number): number {
    return this.baseLr * this.gamma ** Math.floor(e / this.stepSize);
  }
}

/** lr = etaMin + (baseLr - etaMin) * (1 + cos(pi * epoch / tMax)) / 2; `etaMin` defaults to 0. */
export class CosineAnnealingLR extends LRScheduler {
  /**
   * @param optimizer the optimizer whose `lr` is scheduled
   * @param tMax epochs of a half cosine period
   * @param etaMin minimum learning rate
   */
  constructor(optimizer: Optimizer, readonly tMax: number, readonly etaMin = 0) {
    super(optimizer);
    checkNumber('CosineAnnealingLR', 'tMax', tMax, 1);
  }
  protected lrAt(e: number): number {
    return this.etaMin + ((this.baseLr - this.etaMin) * (1 + Math.cos((Math.PI * e) / this.tMax))) / 2;
  }
}

/**
 * Scales the learning rate linearly from `startFactor` (default 1/3, applied at construction) to
 * `endFactor` (default 1) over `totalIters` (default 5) epochs.
 */
export class LinearLR extends LRScheduler {
  /**
   * @param optimizer the optimizer whose `lr` is scheduled
   * @param startFactor factor of the base lr at epoch 0
   * @param endFactor factor reached after totalIters epochs
   * @param totalIters epochs of the linear ramp
   */
  constructor(optimizer: Optimizer, readonly startFactor = 1 / 3, readonly endFactor = 1, readonly totalIters = 5) {
    super(optimizer);
    checkNumber('LinearLR', 'startFactor', startFactor, 0);
    checkNumber('LinearLR', 'totalIters', totalIters, 1);
    optimizer.lr = this.baseLr * startFactor;
  }
  protected lrAt(e: number): number {
    const t = Math.min(e, this.totalIters) / this.totalIters;
    return this.baseLr * (this.startFactor + (this.endFactor - this.startFactor) * t);
  }
}

/**
 * Multiplies the learning rate by `factor` (default 0.1, not below `minLr`) when the metric passed
 * to `step(metric)` has not improved (relative `threshold`, default 1e-4) for more than `patience`
 * (default 10) calls, then waits `cooldown` (default 0) calls; `mode` 'min' (default) or 'max'.
 */
export class ReduceLROnPlateau {
  private best = Infinity;
  private bad = 0;
  private cooldownLeft = 0;
  /**
   * @param optimizer the optimizer whose `lr` is reduced
   * @param opts mode, factor, patience, threshold, cooldown and minLr (see the class description)
   */
  constructor(readonly optimizer: Optimizer, readonly opts: {
    /** 'min' (default) or 'max'. */ mode?: 'min' | 'max';
    /** Multiplier in (0, 1) (default 0.1). */ factor?: number;
    /** Calls without improvement tolerated (default 10). */ patience?: number;
    /** Relative improvement needed (default 1e-4). */ threshold?: number;
    /** Calls to wait after a reduction (default 0). */ cooldown?: number;
    /** Lower bound of the lr (default 0). */ minLr?: number } = {}) {
    if (!(optimizer instanceof Optimizer)) throw new TypeError(`ReduceLROnPlateau: expected an optimizer, got ${describe(optimizer)}`);
    const f = opts.factor ?? 0.1;
    if (typeof f !== 'number' || !(f > 0 && f < 1)) throw new RangeError(`ReduceLROnPlateau: factor must be in (0, 1), got ${describe(f)}`);
    if (opts.mode !== undefined && opts.mode !== 'min' && opts.mode !== 'max')
      throw new RangeError(`ReduceLROnPlateau: mode must be 'min' or 'max', got ${describe(opts.mode)}`);
    checkNumber('ReduceLROnPlateau', 'patience', opts.patience ?? 10, 0);
    checkNumber('ReduceLROnPlateau', 'threshold', opts.threshold ?? 1e-4, 0);
    checkNumber('ReduceLROnPlateau', 'cooldown', opts.cooldown ?? 0, 0);
    checkNumber('ReduceLROnPlateau', 'minLr', opts.minLr ?? 0, 0);
    if ((opts.mode ?? 'min') === 'max') this.best = -Infinity;
  }
  /** Records one epoch's value of the monitored metric. */
  step(metric: number): void {
    checkNumber('ReduceLROnPlateau.step', 'metric', metric);
    const max = (this.opts.mode ?? 'min') === 'max';
    const thr = this.opts.threshold ?? 1e-4;
    const better = max ? metric > this.best * (1 + thr) : metric < this.best * (1 - thr);
    if (better) {
      this.best = metric;
      this.bad = 0;
    } else this.bad++;
    if (this.cooldownLeft > 0) {
      this.cooldownLeft--;
      this.bad = 0;
    }
    if (this.bad > (this.opts.patience ?? 10)) {
      this.optimizer.lr = Math.max(this.optimizer.lr * (this.opts.factor ?? 0.1), this.opts.minLr ?? 0);
      this.cooldownLeft = this.opts.cooldown ?? 0;
      this.bad = 0;
    }
  }
  /** The optimizer's current learning rate. */
  getLastLr(): number {
    return this.optimizer.lr;
  }
}

/** The schedulers under their PyTorch namespace name (`optim.lrScheduler.StepLR`...). */
export const lrScheduler = {
  /** {@inheritDoc StepLR} */
  StepLR,
  /** {@inheritDoc CosineAnnealingLR} */
  CosineAnnealingLR,
  /** {@inheritDoc LinearLR} */
  LinearLR,
  /** {@inheritDoc ReduceLROnPlateau} */
  ReduceLROnPlateau,
};
