// tsm.metrics: classification and regression metrics on (prediction, target) tensors.
//
// Standalone: `metrics.accuracy(pred, target)` returns a number (confusionMatrix a matrix).
// In compile(): by name (`metrics: ['accuracy', 'f1']`) or as a function; compile turns each into
// a stateful Metric that accumulates over the batches of an epoch the way the metric is defined
// (counts of a confusion matrix for precision/recall/F1, summed errors for mse/mae, summed
// cross-entropy for perplexity), never as a mean of per-batch values.
//
// Shapes understood (the target decides):
//  - class scores (..., C) with int32 class targets (...): argmax over the last dim;
//    float one-hot targets (..., C) are read through their argmax;
//  - one score per sample, (N) or (N, 1), with 0/1 targets of the same size: thresholded
//    (probabilities at 0.5 by default; pass `threshold: 0` for logits).
import { describe } from './check';
import { Tensor } from './tensor';

/** How per-class scores combine: 'binary' (the positive class only), 'macro' (unweighted mean over classes), 'micro' (from global counts). */
export type Average = 'binary' | 'macro' | 'micro';

/** How predictions and targets are read as class labels (see toLabels()). */
export interface ClassOptions {
  /** Threshold for one-column (binary) predictions (default 0.5, use 0 for logits). */
  threshold?: number;
  /** Number of classes (default: from the prediction's last dim, 2 for binary). */
  numClasses?: number;
}

/** Options of precision, recall and f1. */
export interface PRFOptions extends ClassOptions {
  /** 'binary' (default for one-column predictions): the positive class only; 'macro' (default
   * for several classes): unweighted mean over classes; 'micro': from global counts. */
  average?: Average;
  /** The positive class for average 'binary' (default 1). */
  posLabel?: number;
}

function checkT(op: string, name: string, t: unknown): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`metrics.${op}: ${name} must be a Tensor, got ${describe(t)}`);
  return t;
}

/** Predicted and true class per sample, plus the class count. */
export interface Labels {
  /** Predicted class per sample. */
  pred: Int32Array;
  /** True class per sample. */
  true: Int32Array;
  /** Number of classes (2 when binary). */
  numClasses: number;
  /** True when the inputs were read as binary (one score per element). */
  binary: boolean;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function argmaxRows(d: ArrayLike<number>, rows: number, c: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0, bv = d[r * c];
    for (let j = 1; j < c; j++) {
      const v = d[r * c + j];
      if (v > bv || (Number.isNaN(bv) && !Number.isNaN(v))) { bv = v; best = j; }
    }
    out[r] = best;
  }
  return out;
}

/** Reads (pred, target) as class labels; see the shapes described at the top of this file. */
export function toLabels(op: string, pred: Tensor, target: Tensor, opts: ClassOptions = {}): Labels {
  checkT(op, 'pred', pred);
  checkT(op, 'target', target);
  const p = pred._data, t = target._data;
  const threshold = opts.threshold ?? 0.5;
  // Class scores (..., C) with class indices (...).
  if (pred.ndim === target.ndim + 1 && sameShape(pred.shape.slice(0, -1), target.shape)) {
    const c = pred.shape[pred.ndim - 1];
    const rows = target.size;
    if (c === 1) {
      const pl = new Int32Array(rows), tl = new Int32Array(rows);
      for (let i = 0; i < rows; i++) { pl[i] = p[i] > threshold ? 1 : 0; tl[i] = t[i] > 0.5 ? 1 : 0; }
      return { pred: pl, true: tl, numClasses: 2, binary: true };
    }
    const tl = Int32Array.from(t, (v) => Math.round(v));
    for (let i = 0; i < rows; i++)
      if (tl[i] < 0 || tl[i] >= c) throw new RangeError(`metrics.${op}: target ${tl[i]} at position ${i} is out of range [0, ${c})`);
    return { pred: argmaxRows(p, rows, c), true: tl, numClasses: opts.numClasses ?? c, binary: false };
  }
  if (pred.size !== target.size)
    throw new RangeError(`metrics.${op}: pred of shape [${pred.shape.join(', ')}] does not match target of shape [${target.shape.join(', ')}]; ` +
      'expected class scores (..., C) with class targets (...), or predictions and targets of the same size');
  const c = pred.ndim >= 2 ? pred.shape[pred.ndim - 1] : 1;
  if (c > 1 && sameShape(pred.shape, target.shape) && isOneHot(t, c)) {
    const rows = pred.size / c;
    return { pred: argmaxRows(p, rows, c), true: argmaxRows(t, rows, c), numClasses: opts.numClasses ?? c, binary: false };
  }
  // One score per element: binary (multi-label when there are several columns).
  const n = pred.size;
  const pl = new Int32Array(n), tl = new Int32Array(n);
  for (let i = 0; i < n; i++) { pl[i] = p[i] > threshold ? 1 : 0; tl[i] = t[i] > 0.5 ? 1 : 0; }
  return { pred: pl, true: tl, numClasses: 2, binary: true };
}

function isOneHot(t: ArrayLike<number>, c: number): boolean {
  for (let r = 0; r < t.length; r += c) {
    let ones = 0;
    for (let j = 0; j < c; j++) {
      const v = t[r + j];
      if (v === 1) ones++;
      else if (v !== 0) return false;
    }
    if (ones !== 1) return false;
  }
  return true;
}

/** Fraction of correct predictions (argmax over classes, or thresholded for one column). */
export function accuracy(pred: Tensor, target: Tensor, opts: ClassOptions = {}): number {
  const l = toLabels('accuracy', pred, target, opts);
  let hit = 0;
  for (let i = 0; i < l.pred.length; i++) if (l.pred[i] === l.true[i]) hit++;
  return l.pred.length ? hit / l.pred.length : NaN;
}

/** Accuracy of thresholded predictions against 0/1 targets of the same size. */
export function binaryAccuracy(pred: Tensor, target: Tensor, threshold = 0.5): number {
  checkT('binaryAccuracy', 'pred', pred);
  checkT('binaryAccuracy', 'target', target);
  if (pred.size !== target.size)
    throw new RangeError(`metrics.binaryAccuracy: pred of shape [${pred.shape.join(', ')}] and target of shape [${target.shape.join(', ')}] differ in size`);
  const p = pred._data, t = target._data;
  let hit = 0;
  for (let i = 0; i < p.length; i++) if ((p[i] > threshold ? 1 : 0) === (t[i] > 0.5 ? 1 : 0)) hit++;
  return p.length ? hit / p.length : NaN;
}

/** Fraction of samples whose true class is among the k highest scores (ties count in order). */
export function topKAccuracy(pred: Tensor, target: Tensor, k = 5): number {
  const [hit, n] = topKCounts(pred, target, k);
  return n ? hit / n : NaN;
}

function topKCounts(pred: Tensor, target: Tensor, k: number): [number, number] {
  checkT('topKAccuracy', 'pred', pred);
  checkT('topKAccuracy', 'target', target);
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`metrics.topKAccuracy: k must be a positive integer, got ${describe(k)}`);
  if (pred.ndim !== target.ndim + 1 || !sameShape(pred.shape.slice(0, -1), target.shape))
    throw new RangeError(`metrics.topKAccuracy: expected scores (..., C) and class targets (...), got [${pred.shape.join(', ')}] and [${target.shape.join(', ')}]`);
  const c = pred.shape[pred.ndim - 1], rows = target.size;
  const p = pred._data, t = target._data;
  let hit = 0;
  for (let r = 0; r < rows; r++) {
    const y = Math.round(t[r]);
    if (y < 0 || y >= c) throw new RangeError(`metrics.topKAccuracy: target ${y} at position ${r} is out of range [0, ${c})`);
    const v = p[r * c + y];
    // Rank of the true class: scores strictly greater, plus equal scores at lower indices.
    let above = 0;
    for (let j = 0; j < c; j++) {
      const s = p[r * c + j];
      if (s > v || (s === v && j < y)) above++;
    }
    if (above < k) hit++;
  }
  return [hit, rows];
}

/** Rows: true class, columns: predicted class (scikit-learn's convention). */
export function confusionMatrix(pred: Tensor, target: Tensor, opts: ClassOptions = {}): number[][] {
  const l = toLabels('confusionMatrix', pred, target, opts);
  const m = Array.from({ length: l.numClasses }, () => new Array<number>(l.numClasses).fill(0));
  addCounts(m, l);
  return m;
}

function addCounts(m: number[][], l: Labels): void {
  const c = m.length;
  for (let i = 0; i < l.pred.length; i++) {
    const a = l.true[i], b = l.pred[i];
    if (a >= c || b >= c) throw new RangeError(`metrics: class ${Math.max(a, b)} is outside the ${c} classes of the confusion matrix`);
    m[a][b]++;
  }
}

/** The three confusion-matrix scores. */
export type PRF = 'precision' | 'recall' | 'f1';

/** Precision, recall or F1 from a confusion matrix (0 where a ratio is 0/0, as scikit-learn). */
export function fromConfusion(which: PRF, m: number[][], average: Average, posLabel = 1): number {
  const c = m.length;
  const stats = (k: number) => {
    let tp = m[k][k], fp = 0, fn = 0;
    for (let j = 0; j < c; j++) if (j !== k) { fp += m[j][k]; fn += m[k][j]; }
    return { tp, fp, fn };
  };
  const score = (tp: number, fp: number, fn: number) => {
    const p = tp + fp ? tp / (tp + fp) : 0;
    const r = tp + fn ? tp / (tp + fn) : 0;
    if (which === 'precision') return p;
    if (which === 'recall') return r;
    return 2 * tp + fp + fn ? (2 * tp) / (2 * tp + fp + fn) : 0;
  };
  if (average === 'binary') {
    if (posLabel < 0 || posLabel >= c) throw new RangeError(`metrics.${which}: posLabel ${posLabel} is not one of the ${c} classes`);
    const s = stats(posLabel);
    return score(s.tp, s.fp, s.fn);
  }
  if (average === 'micro') {
    let tp = 0, fp = 0, fn = 0;
    for (let k = 0; k < c; k++) { const s = stats(k); tp += s.tp; fp += s.fp; fn += s.fn; }
    return score(tp, fp, fn);
  }
  let sum = 0;
  for (let k = 0; k < c; k++) { const s = stats(k); sum += score(s.tp, s.fp, s.fn); }
  return c ? sum / c : NaN;
}

function checkAverage(op: string, a: unknown): Average | undefined {
  if (a === undefined) return undefined;
  if (a !== 'binary' && a !== 'macro' && a !== 'micro') throw new RangeError(`metrics.${op}: average must be 'binary', 'macro' or 'micro', got ${describe(a)}`);
  return a;
}

function prf(which: PRF, pred: Tensor, target: Tensor, opts: PRFOptions): number {
  const average = checkAverage(which, opts.average);
  const l = toLabels(which, pred, target, opts);
  const m = Array.from({ length: l.numClasses }, () => new Array<number>(l.numClasses).fill(0));
  addCounts(m, l);
  return fromConfusion(which, m, average ?? (l.binary ? 'binary' : 'macro'), opts.posLabel ?? 1);
}

/** tp / (tp + fp); binary for one-column predictions, macro-averaged over classes otherwise. */
export function precision(pred: Tensor, target: Tensor, opts: PRFOptions = {}): number {
  return prf('precision', pred, target, opts);
}
/** tp / (tp + fn); binary for one-column predictions, macro-averaged over classes otherwise. */
export function recall(pred: Tensor, target: Tensor, opts: PRFOptions = {}): number {
  return prf('recall', pred, target, opts);
}
/** 2 tp / (2 tp + fp + fn); binary for one-column predictions, macro-averaged otherwise. */
export function f1(pred: Tensor, target: Tensor, opts: PRFOptions = {}): number {
  return prf('f1', pred, target, opts);
}

function errorSums(op: string, pred: Tensor, target: Tensor): { sq: number; abs: number; n: number } {
  checkT(op, 'pred', pred);
  checkT(op, 'target', target);
  if (pred.size !== target.size)
    throw new RangeError(`metrics.${op}: pred of shape [${pred.shape.join(', ')}] and target of shape [${target.shape.join(', ')}] differ in size`);
  const p = pred._data, t = target._data;
  let sq = 0, abs = 0;
  for (let i = 0; i < p.length; i++) {
    const d = p[i] - t[i];
    sq += d * d;
    abs += Math.abs(d);
  }
  return { sq, abs, n: p.length };
}

/** Mean squared error. */
export function mse(pred: Tensor, target: Tensor): number {
  const s = errorSums('mse', pred, target);
  return s.n ? s.sq / s.n : NaN;
}
/** Mean absolute error. */
export function mae(pred: Tensor, target: Tensor): number {
  const s = errorSums('mae', pred, target);
  return s.n ? s.abs / s.n : NaN;
}

/** Summed softmax cross-entropy of logits (..., C) against class targets (...), and the count. */
function crossEntropySum(op: string, logits: Tensor, target: Tensor): [number, number] {
  checkT(op, 'logits', logits);
  checkT(op, 'target', target);
  let c: number, rows: number, classLast: boolean;
  if (logits.ndim === target.ndim + 1 && sameShape(logits.shape.slice(0, -1), target.shape)) {
    c = logits.shape[logits.ndim - 1]; rows = target.size; classLast = true;
  } else if (logits.ndim >= 2 && logits.ndim === target.ndim + 1 && sameShape([logits.shape[0], ...logits.shape.slice(2)], target.shape)) {
    c = logits.shape[1]; rows = target.size; classLast = false; // PyTorch layout (N, C, d...)
  } else {
    throw new RangeError(`metrics.${op}: expected logits (..., C) and class targets (...), got [${logits.shape.join(', ')}] and [${target.shape.join(', ')}]`);
  }
  const p = logits._data, t = target._data;
  const inner = classLast ? 1 : rows / logits.shape[0];
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    // Element j of row r: class-last rows are contiguous; (N, C, d) rows stride by `inner`.
    const base = classLast ? r * c : Math.floor(r / inner) * c * inner + (r % inner);
    const step = classLast ? 1 : inner;
    let mx = -Infinity;
    for (let j = 0; j < c; j++) mx = Math.max(mx, p[base + j * step]);
    let se = 0;
    for (let j = 0; j < c; j++) se += Math.exp(p[base + j * step] - mx);
    const y = Math.round(t[r]);
    if (y < 0 || y >= c) throw new RangeError(`metrics.${op}: target ${y} at position ${r} is out of range [0, ${c})`);
    sum += mx + Math.log(se) - p[base + y * step];
  }
  return [sum, rows];
}

/**
 * exp(mean cross-entropy): from logits (..., C) (or log-probabilities) and class targets, or from
 * a mean cross-entropy given as a number.
 */
export function perplexity(logitsOrMeanCE: Tensor | number, target?: Tensor): number {
  if (typeof logitsOrMeanCE === 'number') return Math.exp(logitsOrMeanCE);
  if (!target) throw new TypeError('metrics.perplexity: expected (logits, target) or a mean cross-entropy number');
  const [s, n] = crossEntropySum('perplexity', logitsOrMeanCE, target);
  return n ? Math.exp(s / n) : NaN;
}

// ---------------------------------------------------------------------------------------------
// Stateful metrics for compile(): reset() at the start of an epoch, update() per batch, result().

/** A streaming metric: reset(), update() once per batch, then result() over everything seen since the reset. */
export interface Metric {
  /** The key in logs and History (`val_` is prefixed for validation). */
  readonly name: string;
  /** Clears the accumulated state (start of an epoch). */
  reset(): void;
  /** Accumulates one batch of predictions and targets. */
  update(pred: Tensor, target: Tensor): void;
  /** The metric over every batch since the last reset(). */
  result(): number;
}

/** Options compile() passes when it builds metrics by name. */
export interface MetricContext {
  /** The model outputs logits for a binary loss (threshold at 0 instead of 0.5). */
  binaryLogits?: boolean;
}

class ConfusionMetric implements Metric {
  private m: number[][] = [];
  private binary = true;
  constructor(readonly name: string, private readonly which: PRF | 'accuracy', private readonly opts: PRFOptions) {}
  reset(): void { this.m = []; this.binary = true; }
  update(pred: Tensor, target: Tensor): void {
    const l = toLabels(this.which, pred, target, this.opts);
    this.binary &&= l.binary;
    if (this.m.length < l.numClasses) {
      const old = this.m;
      this.m = Array.from({ length: l.numClasses }, (_, i) => Array.from({ length: l.numClasses }, (_, j) => old[i]?.[j] ?? 0));
    }
    addCounts(this.m, l);
  }
  result(): number {
    const m = this.m;
    if (!m.length) return NaN;
    if (this.which === 'accuracy') {
      let hit = 0, n = 0;
      for (let i = 0; i < m.length; i++) for (let j = 0; j < m.length; j++) { n += m[i][j]; if (i === j) hit += m[i][j]; }
      return n ? hit / n : NaN;
    }
    const average = this.opts.average ?? (this.binary ? 'binary' : 'macro');
    return fromConfusion(this.which, m, average, this.opts.posLabel ?? 1);
  }
}

/** Sum and count accumulated over batches, result = f(sum, count). */
class SumMetric implements Metric {
  private s = 0;
  private n = 0;
  constructor(readonly name: string, private readonly batch: (p: Tensor, t: Tensor) => [number, number],
              private readonly finish: (s: number, n: number) => number = (s, n) => (n ? s / n : NaN)) {}
  reset(): void { this.s = 0; this.n = 0; }
  update(pred: Tensor, target: Tensor): void {
    const [s, n] = this.batch(pred, target);
    this.s += s;
    this.n += n;
  }
  result(): number { return this.finish(this.s, this.n); }
}

/** A metric from a user function (pred, target) => number | Tensor: mean weighted by batch size. */
export function fromFunction(name: string, fn: (pred: Tensor, target: Tensor) => number | Tensor): Metric {
  return new SumMetric(name, (p, t) => {
    const v = fn(p, t);
    const x = v instanceof Tensor ? v.item() : v;
    if (typeof x !== 'number') throw new TypeError(`metric ${name}: the function must return a number or a one-element Tensor, got ${describe(v)}`);
    const n = p.ndim ? p.shape[0] : 1;
    return [x * n, n];
  });
}

/** Names understood by compile({metrics}) and get(). */
export const METRIC_NAMES = ['accuracy', 'acc', 'binaryAccuracy', 'topKAccuracy', 'precision', 'recall', 'f1', 'f1Macro',
  'precisionMacro', 'recallMacro', 'mse', 'mae', 'perplexity', 'top<k>Accuracy'] as const;

/** A stateful metric by name (see METRIC_NAMES), or from a function. */
export function get(spec: string | ((pred: Tensor, target: Tensor) => number | Tensor) | Metric, ctx: MetricContext = {}): Metric {
  if (typeof spec === 'object' && spec !== null && typeof (spec as Metric).update === 'function') return spec as Metric;
  if (typeof spec === 'function') return fromFunction(spec.name || 'metric', spec);
  const threshold = ctx.binaryLogits ? 0 : 0.5;
  switch (spec) {
    case 'accuracy': case 'acc': return new ConfusionMetric(spec, 'accuracy', { threshold });
    case 'binaryAccuracy': return new SumMetric(spec, (p, t) => [binaryAccuracy(p, t, threshold) * p.size, p.size]);
    case 'topKAccuracy': return new SumMetric(spec, (p, t) => topKCounts(p, t, 5));
    case 'precision': case 'recall': case 'f1': return new ConfusionMetric(spec, spec, { threshold });
    case 'precisionMacro': case 'recallMacro': case 'f1Macro':
      return new ConfusionMetric(spec, spec.replace('Macro', '') as PRF, { threshold, average: 'macro' });
    case 'mse': return new SumMetric(spec, (p, t) => { const s = errorSums('mse', p, t); return [s.sq, s.n]; });
    case 'mae': return new SumMetric(spec, (p, t) => { const s = errorSums('mae', p, t); return [s.abs, s.n]; });
    case 'perplexity': return new SumMetric(spec, (p, t) => crossEntropySum('perplexity', p, t), (s, n) => (n ? Math.exp(s / n) : NaN));
  }
  const topK = /^top(\d+)Accuracy$/.exec(String(spec));
  if (topK) return new SumMetric(String(spec), (p, t) => topKCounts(p, t, Number(topK[1])));
  throw new RangeError(`metrics: unknown metric ${describe(spec)}; expected one of ${METRIC_NAMES.join(', ')} or a function (pred, target) => number`);
}
