// tsm.metrics against values computed by hand.
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import * as metrics from '../lib/metrics';

const t = (v: number[] | number[][], dtype: 'float32' | 'int32' = 'float32') => tsm.tensor(v, { dtype });

// Binary: probabilities thresholded at 0.5 -> [1, 0, 1, 0, 1, 0] against [1, 0, 0, 1, 1, 1]:
// TP = 2 (0, 4), FP = 1 (2), FN = 2 (3, 5), TN = 1 (1).
const bp = t([0.9, 0.2, 0.7, 0.4, 0.6, 0.1]);
const by = t([1, 0, 0, 1, 1, 1]);

// Three classes: argmax [0, 1, 2, 2, 1, 0] against [0, 1, 1, 2, 0, 0].
const mp = t([[3, 1, 0], [0, 2, 1], [0, 1, 2], [1, 0, 2], [0.5, 2, 0], [2, 1, 1.5]]);
const my = t([0, 1, 1, 2, 0, 0], 'int32');

describe('binary metrics', () => {
  it('accuracy, precision, recall, F1 and the confusion matrix', () => {
    expect(metrics.accuracy(bp, by)).toBeCloseTo(3 / 6, 12);
    expect(metrics.binaryAccuracy(bp, by)).toBeCloseTo(3 / 6, 12);
    expect(metrics.precision(bp, by)).toBeCloseTo(2 / 3, 12);
    expect(metrics.recall(bp, by)).toBeCloseTo(2 / 4, 12);
    expect(metrics.f1(bp, by)).toBeCloseTo(4 / 7, 12);
    expect(metrics.confusionMatrix(bp, by)).toEqual([[1, 1], [2, 2]]);
  });

  it('thresholds: binaryAccuracy(threshold) and logits with threshold 0', () => {
    // > 0.65: [1, 0, 1, 0, 0, 0] -> correct at 0 and 1.
    expect(metrics.binaryAccuracy(bp, by, 0.65)).toBeCloseTo(2 / 6, 12);
    const logits = t([2, -1, 0.5, -0.2, 0.1, -3]);
    expect(metrics.accuracy(logits, by, { threshold: 0 })).toBeCloseTo(3 / 6, 12);
  });

  it('one column (N, 1) against (N) or (N, 1) targets, int or float', () => {
    const p = bp.reshape([6, 1]);
    expect(metrics.accuracy(p, by)).toBeCloseTo(0.5, 12);
    expect(metrics.accuracy(p, by.reshape([6, 1]))).toBeCloseTo(0.5, 12);
    expect(metrics.f1(p, t([1, 0, 0, 1, 1, 1], 'int32'))).toBeCloseTo(4 / 7, 12);
  });

  it('no positive prediction gives precision 0 (as scikit-learn), not NaN', () => {
    expect(metrics.precision(t([0.1, 0.2]), t([1, 0]))).toBe(0);
    expect(metrics.f1(t([0.1, 0.2]), t([0, 0]))).toBe(0);
  });
});

describe('multi-class metrics', () => {
  it('accuracy, confusion matrix, macro and micro precision / recall / F1', () => {
    expect(metrics.accuracy(mp, my)).toBeCloseTo(4 / 6, 12);
    expect(metrics.confusionMatrix(mp, my)).toEqual([[2, 1, 0], [0, 1, 1], [0, 0, 1]]);
    // per class precision 1, 1/2, 1/2; recall 2/3, 1/2, 1; F1 4/5, 1/2, 2/3
    expect(metrics.precision(mp, my)).toBeCloseTo(2 / 3, 12);
    expect(metrics.recall(mp, my)).toBeCloseTo((2 / 3 + 1 / 2 + 1) / 3, 12);
    expect(metrics.f1(mp, my)).toBeCloseTo((4 / 5 + 1 / 2 + 2 / 3) / 3, 12);
    expect(metrics.f1(mp, my, { average: 'micro' })).toBeCloseTo(4 / 6, 12);
    expect(metrics.precision(mp, my, { average: 'binary', posLabel: 2 })).toBeCloseTo(1 / 2, 12);
    expect(metrics.confusionMatrix(mp, my, { numClasses: 4 })[3]).toEqual([0, 0, 0, 0]);
  });

  it('one-hot float targets are read through their argmax', () => {
    const oneHot = t([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0]]);
    expect(metrics.accuracy(mp, oneHot)).toBeCloseTo(4 / 6, 12);
  });

  it('top-k accuracy', () => {
    // The true class ranks 1, 1, 2, 1, 2, 1.
    expect(metrics.topKAccuracy(mp, my, 1)).toBeCloseTo(4 / 6, 12);
    expect(metrics.topKAccuracy(mp, my, 2)).toBe(1);
    expect(() => metrics.topKAccuracy(mp, my, 0)).toThrow(RangeError);
  });

  it('class scores last, for sequences: (N, T, C) with targets (N, T)', () => {
    const p = mp.reshape([2, 3, 3]), y = my.reshape([2, 3]);
    expect(metrics.accuracy(p, y)).toBeCloseTo(4 / 6, 12);
  });

  it('mismatched shapes and out-of-range classes are clear errors', () => {
    expect(() => metrics.accuracy(mp, t([0, 1], 'int32'))).toThrow(/does not match target/);
    expect(() => metrics.accuracy(mp, t([0, 1, 1, 2, 0, 5], 'int32'))).toThrow(/target 5 at position 5 is out of range \[0, 3\)/);
    expect(() => metrics.accuracy([1] as unknown as tsm.Tensor, my)).toThrow(TypeError);
  });
});

describe('regression and language-model metrics', () => {
  it('mse and mae', () => {
    const p = t([1, 2, 3]), y = t([1.5, 2, 5]);
    expect(metrics.mse(p, y)).toBeCloseTo(4.25 / 3, 6);
    expect(metrics.mae(p, y)).toBeCloseTo(2.5 / 3, 6);
  });

  it('perplexity = exp(mean cross-entropy): 4 for uniform scores over 4 classes', () => {
    const logits = tsm.zeros([5, 4]);
    const y = t([0, 1, 2, 3, 0], 'int32');
    expect(metrics.perplexity(logits, y)).toBeCloseTo(4, 6);
    const ce = tsm.F.crossEntropy(mp, my).item();
    expect(metrics.perplexity(mp, my)).toBeCloseTo(Math.exp(ce), 5);
    expect(metrics.perplexity(ce)).toBeCloseTo(Math.exp(ce), 12);
    // (N, T, C) logits with (N, T) targets, and PyTorch's (N, C, T) layout.
    expect(metrics.perplexity(mp.reshape([3, 2, 3]).permute(0, 2, 1), my.reshape([3, 2]))).toBeCloseTo(Math.exp(ce), 5);
    expect(metrics.perplexity(mp.reshape([2, 3, 3]), my.reshape([2, 3]))).toBeCloseTo(Math.exp(ce), 5);
  });
});

describe('stateful metrics for compile() accumulate over batches', () => {
  it('precision from the summed confusion matrix, not the mean of per-batch values', () => {
    const m = metrics.get('precision');
    m.reset();
    m.update(bp.slice(0, 0, 3), by.slice(0, 0, 3)); // batch precision 1/2
    m.update(bp.slice(0, 3, 6), by.slice(0, 3, 6)); // batch precision 1/1
    expect(m.result()).toBeCloseTo(2 / 3, 12); // not 3/4
    m.reset();
    m.update(bp, by);
    expect(m.result()).toBeCloseTo(2 / 3, 12);
  });

  it('accuracy, recall, f1, macro variants, top-k, mse, mae and perplexity by name', () => {
    const feed = (name: string, p: tsm.Tensor, y: tsm.Tensor, cut: number) => {
      const m = metrics.get(name);
      m.reset();
      m.update(p.slice(0, 0, cut), y.slice(0, 0, cut));
      m.update(p.slice(0, cut), y.slice(0, cut));
      return m.result();
    };
    expect(feed('accuracy', mp, my, 2)).toBeCloseTo(4 / 6, 12);
    expect(feed('recall', bp, by, 1)).toBeCloseTo(1 / 2, 12);
    expect(feed('f1', bp, by, 4)).toBeCloseTo(4 / 7, 12);
    expect(feed('f1', mp, my, 1)).toBeCloseTo((4 / 5 + 1 / 2 + 2 / 3) / 3, 12);
    expect(feed('top2Accuracy', mp, my, 3)).toBe(1);
    expect(feed('mse', t([1, 2, 3]), t([1.5, 2, 5]), 1)).toBeCloseTo(4.25 / 3, 6);
    expect(feed('mae', t([1, 2, 3]), t([1.5, 2, 5]), 2)).toBeCloseTo(2.5 / 3, 6);
    expect(feed('perplexity', tsm.zeros([5, 4]), t([0, 1, 2, 3, 0], 'int32'), 2)).toBeCloseTo(4, 6);
  });

  it('function metrics are averaged weighted by batch size; unknown names are errors', () => {
    const m = metrics.get(function firstValue(p: tsm.Tensor) { return p._data[0]; });
    expect(m.name).toBe('firstValue');
    m.reset();
    m.update(t([1, 0, 0]), t([0, 0, 0]));
    m.update(t([4]), t([0]));
    expect(m.result()).toBeCloseTo((1 * 3 + 4 * 1) / 4, 12);
    expect(() => metrics.get('auroc')).toThrow(/unknown metric "auroc"/);
  });

  it('with a logits loss, binary metrics threshold at 0', () => {
    const m = metrics.get('accuracy', { binaryLogits: true });
    m.reset();
    m.update(t([0.2, -0.1]), t([1, 0]));
    expect(m.result()).toBe(1);
  });
});
