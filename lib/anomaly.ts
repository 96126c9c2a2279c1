// Anomaly detection: tsm.setDetectAnomaly(true) checks the output of every recorded op (forward)
// and every gradient a backward rule returns, and throws TsmAnomalyError naming the first op that
// produced NaN or Infinity. It costs one pass over each output (a native allFinite), so it is a
// debugging switch, off by default, like torch.autograd.set_detect_anomaly.
//
// The hook: lib/autograd.ts's record() (which every differentiable op calls on its output, whether
// or not gradients are on) and backward() call anomalyHooks.forward / .backward when they are set.
import { anomalyHooks, type Node } from './autograd';
import { checkBool, describe } from './check';
import { nativeAddon } from './native-api';
import type { Tensor } from './tensor';

/** An op produced NaN or Infinity while anomaly detection was on. */
export class TsmAnomalyError extends Error {
  /** The op, e.g. 'log', 'div', 'matmul', 'crossEntropy'. */
  readonly op: string;
  /** Whether the non-finite value appeared in the forward pass or in a gradient during backward. */
  readonly phase: 'forward' | 'backward';
  constructor(op: string, phase: 'forward' | 'backward', message: string) {
    super(message);
    this.name = 'TsmAnomalyError';
    this.op = op;
    this.phase = phase;
  }
}

let unaryNames: string[] | null = null;

/** The user-facing name of a recorded op ('unary' code 6 -> 'log', 'binary' -> 'div'...). */
function opName(op: string, saved: Record<string, unknown>): string {
  if ((op === 'binary' || op === 'binaryScalar') && typeof saved.name === 'string') return saved.name;
  if (op === 'unary' && typeof saved.code === 'number') {
    if (!unaryNames) {
      const table = (nativeAddon() as unknown as { UNARY_OPS: Record<string, number> }).UNARY_OPS;
      unaryNames = [];
      for (const [name, code] of Object.entries(table)) unaryNames[code] = name;
    }
    return unaryNames[saved.code] ?? op;
  }
  return op;
}

/** 'NaN', 'Infinity' or null when every element is finite (int32 tensors always are). */
function nonFinite(t: Tensor | null | undefined): string | null {
  if (!t || t.isDisposed || t.dtype !== 'float32') return null;
  const d = (t.device === 'cpu' ? t._data : t.dataSync()) as Float32Array;  // CUDA: checked on a host copy
  if (d.length === 0 || nativeAddon().allFinite(d)) return null;
  for (let i = 0; i < d.length; i++) if (Number.isNaN(d[i])) return 'NaN';
  return 'Infinity';
}

function inputNote(inputs: (Tensor | null)[]): string {
  for (let i = 0; i < inputs.length; i++) {
    const bad = nonFinite(inputs[i]);
    if (bad) return `; its input #${i} already held ${bad}, so the anomaly came from before (a tensor created outside the recorded ops)`;
  }
  return inputs.length ? '; its inputs were finite' : '';
}

function checkForward(out: Tensor, op: string, inputs: (Tensor | null)[], saved: Record<string, unknown>): void {
  const bad = nonFinite(out);
  if (!bad) return;
  const name = opName(op, saved);
  throw new TsmAnomalyError(name, 'forward',
    `detectAnomaly: '${name}' produced ${bad} in forward (output of shape [${out.shape.join(', ')}])${inputNote(inputs)}`);
}

function checkBackward(node: Node, grads: (Tensor | null | undefined)[]): void {
  for (let i = 0; i < grads.length; i++) {
    const bad = nonFinite(grads[i]);
    if (!bad) continue;
    const name = opName(node.op, node.saved);
    throw new TsmAnomalyError(name, 'backward',
      `detectAnomaly: the backward of '${name}' produced ${bad} in the gradient of its input #${i} (shape [${grads[i]!.shape.join(', ')}])`);
  }
}

/** Turns NaN/Inf detection on or off for all following ops (forward and backward). */
export function setDetectAnomaly(enabled: boolean): void {
  checkBool('setDetectAnomaly', 'enabled', enabled);
  anomalyHooks.forward = enabled ? checkForward : null;
  anomalyHooks.backward = enabled ? checkBackward : null;
}

/** True while anomaly detection is on (setDetectAnomaly(true) or inside detectAnomaly()). */
export function isAnomalyEnabled(): boolean {
  return anomalyHooks.forward !== null;
}

/** Runs fn with anomaly detection on, restoring the previous setting afterwards. */
export function detectAnomaly<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError(`detectAnomaly: fn must be a function, got ${describe(fn)}`);
  const prev = isAnomalyEnabled();
  setDetectAnomaly(true);
  try {
    return fn();
  } finally {
    setDetectAnomaly(prev);
  }
}
