// tsm.GradScaler: dynamic loss scaling for float16 training, as torch.amp.GradScaler.
//
//   scaler.scale(loss).backward();   // gradients of loss * scale
//   scaler.step(optimizer);          // unscales (if unscale_ was not called), skips the step on inf/NaN
//   scaler.update();                 // scale * backoffFactor after an inf/NaN, * growthFactor after
//                                    // growthInterval clean steps
//
// The scale is a host number (float32 value): scale() multiplies by it, so no device tensor and no
// read-back are needed for it. unscale_ multiplies every gradient by 1/scale in place and checks
// them for inf/NaN in the same pass: on a CUDA device one multi-tensor kernel (cuda/cast16.cu,
// tsm_cuda_amp_unscale) writes one flag, read back once, in step(); on the CPU one loop over the
// gradients. update() reuses that value (no second read-back). Works for CPU and CUDA parameters.
import { describe } from './check';
import * as cu from './cuda-tensor';
import type { Device } from './device';
import * as ops from './ops';
import type { Optimizer } from './optim';
import { noGrad, Tensor } from './tensor';

/** Options of {@link GradScaler}, as torch.amp.GradScaler. */
export interface GradScalerOptions {
  /** Initial scale (default 2^16). */
  initScale?: number;
  /** Scale multiplier after growthInterval steps without inf/NaN (default 2). */
  growthFactor?: number;
  /** Scale multiplier after a step with inf/NaN gradients (default 0.5). */
  backoffFactor?: number;
  /** Consecutive clean steps before the scale grows (default 2000). */
  growthInterval?: number;
  /** false makes every method a pass-through (scale() returns its input, step() calls optimizer.step()). Default true. */
  enabled?: boolean;
}

/** The state of GradScaler.stateDict(), as PyTorch's (camelCase). */
export interface GradScalerState {
  scale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  growthTracker: number;
}

type Stage = 'ready' | 'unscaled' | 'stepped';

interface OptimizerState {
  stage: Stage;
  /** Whether the CPU gradients held inf/NaN. */
  cpuInf: boolean;
  /** Per-device flags ([1] float32, 1 = inf/NaN seen) not read back yet. */
  flags: Tensor[];
  /** Whether any gradient held inf/NaN, once the flags are read (null before). */
  foundInf: boolean | null;
}

type Scalable = Tensor | Scalable[];

function positive(op: string, name: string, v: unknown, min: number, exclusiveMax = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !(v > min) || !(v < exclusiveMax))
    throw new RangeError(`${op}: ${name} must be a finite number in (${min}, ${exclusiveMax}), got ${describe(v)}`);
  return v;
}

/**
 * Dynamic loss scaling (torch.amp.GradScaler): keeps float16 gradients from underflowing by scaling
 * the loss, unscales the gradients before the optimizer step, skips steps whose gradients hold
 * inf/NaN and adapts the scale. With autocast's float32 gradients it is optional (bfloat16 needs
 * none); results equal an unscaled run whenever nothing overflows (scales are powers of two).
 * @example
 * ```ts
 * const scaler = new tsm.GradScaler();
 * const loss = tsm.autocast({ dtype: 'float16' }, () => lossFn(model.forward(x), y));
 * scaler.scale(loss).backward();
 * scaler.step(opt);   // skipped when a gradient is inf/NaN
 * scaler.update();
 * opt.zeroGrad();
 * ```
 */
export class GradScaler {
  private scaleValue: number;
  private growthFactor: number;
  private backoffFactor: number;
  private growthInterval: number;
  private growthTracker = 0;
  private readonly enabled: boolean;
  private perOptimizer = new Map<Optimizer, OptimizerState>();

  constructor(opts: GradScalerOptions = {}) {
    const op = 'GradScaler';
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`${op}: opts must be an object, got ${describe(opts)}`);
    this.enabled = opts.enabled ?? true;
    if (typeof this.enabled !== 'boolean') throw new TypeError(`${op}: enabled must be a boolean, got ${describe(opts.enabled)}`);
    this.scaleValue = Math.fround(positive(op, 'initScale', opts.initScale ?? 65536, 0));
    this.growthFactor = positive(op, 'growthFactor', opts.growthFactor ?? 2, 1);
    this.backoffFactor = positive(op, 'backoffFactor', opts.backoffFactor ?? 0.5, 0, 1);
    const gi = opts.growthInterval ?? 2000;
    if (!Number.isSafeInteger(gi) || gi < 1)
      throw new RangeError(`${op}: growthInterval must be a positive integer, got ${describe(gi)}`);
    this.growthInterval = gi;
  }

  /** Whether the scaler does anything (the `enabled` option). */
  isEnabled(): boolean {
    return this.enabled;
  }

  /** The current scale (1 when disabled, as PyTorch). */
  getScale(): number {
    return this.enabled ? this.scaleValue : 1;
  }
  getGrowthFactor(): number { return this.growthFactor; }
  setGrowthFactor(v: number): void { this.growthFactor = positive('setGrowthFactor', 'growthFactor', v, 1); }
  getBackoffFactor(): number { return this.backoffFactor; }
  setBackoffFactor(v: number): void { this.backoffFactor = positive('setBackoffFactor', 'backoffFactor', v, 0, 1); }
  getGrowthInterval(): number { return this.growthInterval; }
  setGrowthInterval(v: number): void {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`setGrowthInterval: growthInterval must be a positive integer, got ${describe(v)}`);
    this.growthInterval = v;
  }

  /**
   * outputs * scale (a tensor, or arrays of tensors, each multiplied; differentiable). Returns the
   * input unchanged when disabled. TypeError for anything but float32 tensors.
   */
  scale<T extends Scalable>(outputs: T): T {
    if (!this.enabled) return outputs;
    const s = this.scaleValue;
    const go = (v: unknown, path: string): Scalable => {
      if (v instanceof Tensor) {
        ops.checkFloatAny('GradScaler.scale', path, v);
        return ops.mul(v, s);
      }
      if (Array.isArray(v)) return v.map((x, i) => go(x, `${path}[${i}]`));
      throw new TypeError(`GradScaler.scale: ${path} must be a Tensor or an array of tensors, got ${describe(v)}`);
    };
    return go(outputs, 'outputs') as T;
  }

  private state(optimizer: Optimizer, op: string): OptimizerState {
    if (!optimizer || typeof optimizer !== 'object' || !Array.isArray((optimizer as Optimizer).params) ||
        typeof (optimizer as Optimizer).step !== 'function')
      throw new TypeError(`${op}: optimizer must be a tsm.optim optimizer, got ${describe(optimizer)}`);
    let st = this.perOptimizer.get(optimizer);
    if (!st) this.perOptimizer.set(optimizer, (st = { stage: 'ready', cpuInf: false, flags: [], foundInf: null }));
    return st;
  }

  /**
   * Divides the optimizer's gradients by the scale in place and records whether any is inf/NaN
   * (call it before clipping gradients). At most once per optimizer between update() calls.
   */
  unscale_(optimizer: Optimizer): void {
    const op = 'GradScaler.unscale_';
    if (!this.enabled) return;
    const st = this.state(optimizer, op);
    if (st.stage === 'unscaled') throw new RangeError(`${op}: unscale_() has already been called on this optimizer since the last update()`);
    if (st.stage === 'stepped') throw new RangeError(`${op}: unscale_() is being called after step()`);
    // PyTorch: the reciprocal in double, rounded to float.
    const inv = Math.fround(1 / this.scaleValue);
    let cpuInf = false;
    const byDevice = new Map<Device, Tensor[]>();
    optimizer.params.forEach((p, i) => {
      const g = p.grad;
      if (!g) return;
      if (g.dtype !== 'float32') throw new TypeError(`${op}: params[${i}].grad must be float32, got ${g.dtype}`);
      if (g.device === 'cpu') {
        const d = g._data as Float32Array;
        for (let j = 0; j < d.length; j++) {
          const v = d[j];
          if (v - v !== 0) cpuInf = true; // NaN or +-Inf
          d[j] = v * inv;
        }
      } else {
        const list = byDevice.get(g.device);
        if (list) list.push(g);
        else byDevice.set(g.device, [g]);
      }
    });
    const flags: Tensor[] = [];
    for (const [device, grads] of byDevice) {
      const flag = noGrad(() => cu.full([1], 0, device));
      cu.ampUnscale(grads, inv, flag, op);
      flags.push(flag);
    }
    st.cpuInf = cpuInf;
    st.flags = flags;
    st.foundInf = null;
    st.stage = 'unscaled';
  }

  /** Whether this optimizer's gradients held inf/NaN: reads each device's flag back once, then remembers. */
  private found(st: OptimizerState): boolean {
    if (st.foundInf === null) {
      let any = st.cpuInf;
      for (const f of st.flags) {
        if (f.item() !== 0) any = true;
        f.dispose();
      }
      st.flags = [];
      st.foundInf = any;
    }
    return st.foundInf;
  }

  /**
   * Unscales the gradients (unless unscale_ was called), then calls optimizer.step() unless a
   * gradient holds inf/NaN (the step is skipped). Returns what optimizer.step() returned, or
   * undefined when skipped. Once per optimizer between update() calls.
   */
  step(optimizer: Optimizer): unknown {
    const op = 'GradScaler.step';
    if (!this.enabled) return optimizer.step();
    const st = this.state(optimizer, op);
    if (st.stage === 'stepped') throw new RangeError(`${op}: step() has already been called since the last update()`);
    if (st.stage === 'ready') this.unscale_(optimizer);
    const skip = this.found(st);
    st.stage = 'stepped';
    return skip ? undefined : (optimizer.step() as unknown);
  }

  /**
   * Adapts the scale after this iteration's step(s): * backoffFactor (and the growth count reset)
   * when any optimizer's gradients held inf/NaN, else * growthFactor every growthInterval clean
   * updates. `newScale` sets the scale directly instead. RangeError when no unscale_/step ran since
   * the last update (PyTorch asserts the same).
   */
  update(newScale?: number): void {
    const op = 'GradScaler.update';
    if (!this.enabled) return;
    if (newScale !== undefined) {
      this.scaleValue = Math.fround(positive(op, 'newScale', newScale, 0));
    } else {
      const states = [...this.perOptimizer.values()].filter((s) => s.stage !== 'ready');
      if (!states.length) throw new RangeError(`${op}: no inf checks were recorded prior to update() (call step() or unscale_() first)`);
      let inf = false;
      for (const s of states) if (this.found(s)) inf = true;
      if (inf) {
        this.scaleValue = Math.fround(this.scaleValue * this.backoffFactor);
        this.growthTracker = 0;
      } else if (++this.growthTracker === this.growthInterval) {
        const grown = Math.fround(this.scaleValue * this.growthFactor);
        if (Number.isFinite(grown)) this.scaleValue = grown;
        this.growthTracker = 0;
      }
    }
    for (const s of this.perOptimizer.values()) for (const f of s.flags) f.dispose();
    this.perOptimizer.clear();
  }

  /** scale, growthFactor, backoffFactor, growthInterval and growthTracker ({} when disabled, as PyTorch). */
  stateDict(): GradScalerState | Record<string, never> {
    if (!this.enabled) return {};
    return { scale: this.scaleValue, growthFactor: this.growthFactor, backoffFactor: this.backoffFactor,
      growthInterval: this.growthInterval, growthTracker: this.growthTracker };
  }

  /** Restores a stateDict(); RangeError for an empty one (saved from a disabled scaler) or bad values. */
  loadStateDict(state: GradScalerState): void {
    const op = 'GradScaler.loadStateDict';
    if (!this.enabled) return;
    if (typeof state !== 'object' || state === null) throw new TypeError(`${op}: state must be an object, got ${describe(state)}`);
    if (Object.keys(state).length === 0)
      throw new RangeError(`${op}: the state dict is empty, possibly because it was saved from a disabled GradScaler`);
    this.scaleValue = Math.fround(positive(op, 'scale', state.scale, 0));
    this.growthFactor = positive(op, 'growthFactor', state.growthFactor, 1);
    this.backoffFactor = positive(op, 'backoffFactor', state.backoffFactor, 0, 1);
    if (!Number.isSafeInteger(state.growthInterval) || state.growthInterval < 1)
      throw new RangeError(`${op}: growthInterval must be a positive integer, got ${describe(state.growthInterval)}`);
    if (!Number.isSafeInteger(state.growthTracker) || state.growthTracker < 0)
      throw new RangeError(`${op}: growthTracker must be a non-negative integer, got ${describe(state.growthTracker)}`);
    this.growthInterval = state.growthInterval;
    this.growthTracker = state.growthTracker;
  }
}
