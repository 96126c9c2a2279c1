// Keras-style training on every nn.Module: compile / fit / evaluate / predict.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import '../lib/training';
import { History } from '../lib/training';
import { DataLoader, TensorDataset } from '../lib/data';
import * as metrics from '../lib/metrics';

const { nn } = tsm;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-training-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Two Gaussian-ish blobs in 4-d: class = sign of x0 + x1. */
function blobs(n: number, seed = 0): { x: tsm.Tensor; y: tsm.Tensor } {
  tsm.manualSeed(seed);
  const x = tsm.randn([n, 4]);
  const d = x._data as Float32Array;
  const y = tsm.tensor(Int32Array.from({ length: n }, (_, i) => (d[i * 4] + d[i * 4 + 1] > 0 ? 1 : 0)));
  return { x, y };
}

const mlp = (out = 2) => new nn.Sequential(new nn.Linear(4, 16), new nn.ReLU(), new nn.Linear(16, out));

function weights(m: tsm.nn.Module): number[] {
  return m.parameters().flatMap((p) => Array.from(p.dataSync()));
}

describe('compile', () => {
  it('resolves optimizers by name with Keras default learning rates, or takes instances and factories', () => {
    const m = mlp();
    m.compile({ optimizer: 'adam', loss: 'crossEntropy' });
    expect(m.optimizer).toBeInstanceOf(tsm.optim.Adam);
    expect(m.optimizer!.lr).toBe(1e-3);
    m.compile({ optimizer: 'sgd', loss: 'mse' });
    expect(m.optimizer).toBeInstanceOf(tsm.optim.SGD);
    expect(m.optimizer!.lr).toBe(0.01);
    m.compile({ optimizer: 'rmsprop', loss: 'nll', lr: 0.05 });
    expect(m.optimizer).toBeInstanceOf(tsm.optim.RMSprop);
    expect(m.optimizer!.lr).toBe(0.05);
    m.compile({ optimizer: 'adamw', loss: 'bce' });
    expect(m.optimizer).toBeInstanceOf(tsm.optim.AdamW);
    const opt = new tsm.optim.SGD(m.parameters(), { lr: 0.3, momentum: 0.9 });
    m.compile({ optimizer: opt, loss: new nn.CrossEntropyLoss() });
    expect(m.optimizer).toBe(opt);
    m.compile({ optimizer: (ps) => new tsm.optim.Adam(ps, { lr: 0.02 }), loss: (p, t) => tsm.F.mseLoss(p, t) });
    expect(m.optimizer!.lr).toBe(0.02);
  });

  it('bad names and fit before compile are clear errors', async () => {
    const m = mlp();
    expect(() => m.compile({ optimizer: 'adagrad' as 'adam', loss: 'mse' })).toThrow(/unknown optimizer "adagrad"/);
    expect(() => m.compile({ optimizer: 'adam', loss: 'hinge' as 'mse' })).toThrow(/unknown loss "hinge"/);
    expect(() => m.compile({ optimizer: 'adam', loss: 'mse', metrics: ['auroc'] })).toThrow(/unknown metric "auroc"/);
    expect(() => m.compile({ optimizer: 'adam', loss: 'mse', metrics: ['mae', 'mae'] })).toThrow(/used twice/);
    const other = new tsm.optim.Adam(mlp().parameters());
    expect(() => m.compile({ optimizer: other, loss: 'mse' })).toThrow(/does not hold any parameter of this model/);
    const fresh = mlp();
    const { x, y } = blobs(8);
    await expect(fresh.fit(x, y)).rejects.toThrow(/not compiled; call model.compile/);
    expect(() => fresh.evaluate(x, y)).toThrow(/not compiled/);
  });
});

describe('fit', () => {
  it('learns, and returns a History with Keras names (loss, accuracy, val_loss, val_accuracy) per epoch', async () => {
    const { x, y } = blobs(256);
    const m = mlp();
    m.compile({ optimizer: 'adam', lr: 0.01, loss: 'crossEntropy', metrics: ['accuracy'] });
    const h = await m.fit(x, y, { epochs: 6, batchSize: 32, validationSplit: 0.25, verbose: 0, seed: 1 });
    expect(h).toBeInstanceOf(History);
    expect(h.epoch).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Object.keys(h.history).sort()).toEqual(['accuracy', 'loss', 'lr', 'val_accuracy', 'val_loss']);
    for (const v of Object.values(h.history)) expect(v).toHaveLength(6);
    expect(h.history.loss[5]).toBeLessThan(h.history.loss[0] * 0.7);
    expect(h.history.val_accuracy[5]).toBeGreaterThan(0.85);
    expect(h.params?.steps).toBe(6); // 192 training samples / 32
    expect(h.params?.samples).toBe(192);
  });

  it('validationSplit holds out the last samples (as Keras) and val_ values equal evaluate on them', async () => {
    const { x, y } = blobs(100);
    const m = mlp();
    m.compile({ optimizer: 'sgd', loss: 'crossEntropy', metrics: ['accuracy'] });
    const h = await m.fit(x, y, { epochs: 1, validationSplit: 0.2, verbose: 0, seed: 0 });
    const r = m.evaluate(x.slice(0, 80), y.slice(0, 80), { batchSize: 7 });
    expect(h.history.val_loss[0]).toBeCloseTo(r.loss, 5);
    expect(h.history.val_accuracy[0]).toBeCloseTo(r.accuracy, 10);
  });

  it('memory stays flat across epochs (steps run inside tidy) and fit leaves nothing behind', async () => {
    const { x, y } = blobs(200);
    const m = mlp();
    m.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy', 'f1'] });
    const atEpochEnd: number[] = [];
    const atBatchEnd: number[] = [];
    const before = tsm.memory().tensors;
    await m.fit(x, y, {
      epochs: 4, batchSize: 16, validationSplit: 0.2, verbose: 0, seed: 2,
      callbacks: [{
        onEpochEnd: () => { atEpochEnd.push(tsm.memory().tensors); },
        onBatchEnd: () => { atBatchEnd.push(tsm.memory().tensors); },
      }],
    });
    expect(new Set(atEpochEnd).size).toBe(1);
    expect(Math.max(...atBatchEnd) - Math.min(...atBatchEnd)).toBeLessThanOrEqual(m.parameters().length);
    expect(tsm.memory().tensors).toBe(before);
  });

  it('gradAccumulation: n gives the same update as an n times larger batch (SGD, no shuffle, mean loss)', async () => {
    const { x } = blobs(40, 3);
    const target = tsm.randn([40, 2]);
    const run = async (batchSize: number, gradAccumulation: number, n = 40) => {
      tsm.manualSeed(77);
      const m = mlp();
      m.compile({ optimizer: new tsm.optim.SGD(m.parameters(), { lr: 0.1 }), loss: 'mse' });
      await m.fit(x.slice(0, 0, n), target.slice(0, 0, n), { epochs: 2, batchSize, gradAccumulation, shuffle: false, verbose: 0 });
      return { w: weights(m), steps: m.optimizer!.stepCount };
    };
    const big = await run(8, 1);
    const acc = await run(4, 2);
    expect(acc.steps).toBe(big.steps);
    expect(big.steps).toBe(10);
    acc.w.forEach((v, i) => expect(v).toBeCloseTo(big.w[i], 5));
    // A short last group (34 samples: groups of 8 then 2) is still the mean over its samples.
    const big2 = await run(8, 1, 34);
    const acc2 = await run(4, 2, 34);
    expect(acc2.steps).toBe(big2.steps);
    acc2.w.forEach((v, i) => expect(v).toBeCloseTo(big2.w[i], 5));
    // and differs from plain small batches
    const small = await run(4, 1);
    expect(small.w.some((v, i) => Math.abs(v - big.w[i]) > 1e-4)).toBe(true);
  });

  it('yields to the event loop between batches', async () => {
    const { x, y } = blobs(64);
    const m = mlp();
    m.compile({ optimizer: 'sgd', loss: 'crossEntropy' });
    let ticks = 0;
    let running = true;
    const tick = () => { ticks++; if (running) setImmediate(tick); };
    setImmediate(tick);
    await m.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0 });
    running = false;
    expect(ticks).toBeGreaterThanOrEqual(16);
  });

  it('the same seed gives the same training; shuffle reorders batches', async () => {
    const { x, y } = blobs(64);
    const train = async (seed: number, shuffle = true) => {
      tsm.manualSeed(5);
      const m = mlp();
      m.compile({ optimizer: 'sgd', lr: 0.1, loss: 'crossEntropy' });
      await m.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0, seed, shuffle });
      return weights(m);
    };
    expect(await train(1)).toEqual(await train(1));
    expect(await train(1)).not.toEqual(await train(2));
    expect(await train(1, false)).toEqual(await train(2, false));
  });

  it('takes a Dataset, a DataLoader, an array of batches, {x, y} batches and validationData', async () => {
    const { x, y } = blobs(48);
    const m = mlp();
    m.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy'] });
    const ds = new TensorDataset(x, y);
    let h = await m.fit(ds, { epochs: 1, batchSize: 16, verbose: 0, validationData: [x, y] });
    expect(h.params?.steps).toBe(3);
    expect(h.history.val_accuracy).toHaveLength(1);
    h = await m.fit(new DataLoader(ds, { batchSize: 12, shuffle: true, seed: 1 }), { epochs: 2, verbose: 0, validationData: ds });
    expect(h.params?.steps).toBe(4);
    expect(h.history.val_loss).toHaveLength(2);
    const batches = [[x.slice(0, 0, 24), y.slice(0, 0, 24)], { x: x.slice(0, 24), y: y.slice(0, 24) }];
    h = await m.fit(batches as never, { epochs: 2, verbose: 0 });
    expect(h.history.loss).toHaveLength(2);
    // The caller's batches are not disposed by fit.
    expect((batches[0] as tsm.Tensor[])[0].isDisposed).toBe(false);
    h = await m.fit(ds, { epochs: 1, verbose: 0, validationSplit: 0.25 });
    expect(h.params?.samples).toBe(36);
    await expect(m.fit(x, y, { epochs: 1, verbose: 0, validationSplit: 1 })).rejects.toThrow(/validationSplit/);
    await expect(m.fit(x, y, { epochs: 1, verbose: 0, batchsize: 3 } as never)).rejects.toThrow(/unknown option "batchsize"/);
    await expect(m.fit(x, y.slice(0, 0, 10), { verbose: 0 })).rejects.toThrow(/has 48 samples .* but y has 10/);
  });

  it('initialEpoch resumes the epoch count', async () => {
    const { x, y } = blobs(32);
    const m = mlp();
    m.compile({ optimizer: 'sgd', loss: 'crossEntropy' });
    const h = await m.fit(x, y, { epochs: 4, initialEpoch: 2, verbose: 0 });
    expect(h.epoch).toEqual([2, 3]);
  });

  it('multi-input models get batches [x1, x2, y]', async () => {
    class Two extends nn.Module {
      a = new nn.Linear(2, 2);
      b = new nn.Linear(2, 2);
      forward(x1: tsm.Tensor, x2: tsm.Tensor): tsm.Tensor {
        return this.a.forward(x1).add(this.b.forward(x2));
      }
    }
    const { x, y } = blobs(32);
    const m = new Two();
    m.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy'] });
    const x1 = x.slice(1, 0, 2), x2 = x.slice(1, 2, 4);
    const h = await m.fit([x1, x2], y, { epochs: 2, batchSize: 8, verbose: 0 });
    expect(h.history.loss).toHaveLength(2);
    expect(m.predict([x1, x2]).shape).toEqual([32, 2]);
    expect(m.evaluate([x1, x2], y).accuracy).toBeGreaterThanOrEqual(0);
  });

  it('binary classification with one logit: bceWithLogits, int labels (N) against (N, 1), accuracy at threshold 0', async () => {
    const { x, y } = blobs(128);
    const m = mlp(1);
    m.compile({ optimizer: 'adam', lr: 0.02, loss: 'bceWithLogits', metrics: ['accuracy', 'precision', 'recall', 'f1'] });
    const h = await m.fit(x, y, { epochs: 5, batchSize: 16, verbose: 0, seed: 0 });
    expect(h.history.accuracy[4]).toBeGreaterThan(0.85);
    const r = m.evaluate(x, y);
    const logits = m.predict(x);
    expect(r.accuracy).toBeCloseTo(metrics.accuracy(logits, y, { threshold: 0 }), 10);
    expect(r.f1).toBeCloseTo(metrics.f1(logits, y, { threshold: 0 }), 10);
    expect(r.loss).toBeCloseTo(tsm.F.binaryCrossEntropyWithLogits(logits, y.to('float32').reshape([128, 1])).item(), 5);
    // The same with probabilities and BCE.
    const p = new nn.Sequential(mlp(1), new nn.Sigmoid());
    p.compile({ optimizer: 'adam', lr: 0.02, loss: 'bce', metrics: ['binaryAccuracy'] });
    const hp = await p.fit(x, y.to('float32'), { epochs: 3, batchSize: 16, verbose: 0 });
    expect(hp.history.binaryAccuracy[2]).toBeGreaterThan(0.7);
  });

  it('sequence outputs (N, T, V) with targets (N, T): class-last cross-entropy and perplexity = exp(loss)', async () => {
    // Predict the next token of a repeating pattern 0 1 2 3 0 1 ...: embedding -> linear.
    class Bigram extends nn.Module {
      emb = new nn.Embedding(4, 8);
      out = new nn.Linear(8, 4);
      forward(t: tsm.Tensor): tsm.Tensor {
        return this.out.forward(this.emb.forward(t));
      }
    }
    tsm.manualSeed(0);
    const n = 32, T = 6;
    const xs = new Int32Array(n * T), ys = new Int32Array(n * T);
    for (let i = 0; i < n; i++) for (let j = 0; j < T; j++) { xs[i * T + j] = (i + j) % 4; ys[i * T + j] = (i + j + 1) % 4; }
    const x = tsm.tensor(xs, { shape: [n, T] }), y = tsm.tensor(ys, { shape: [n, T] });
    const m = new Bigram();
    m.compile({ optimizer: 'adam', lr: 0.05, loss: 'crossEntropy', metrics: ['perplexity', 'accuracy'] });
    const h = await m.fit(x, y, { epochs: 8, batchSize: 8, verbose: 0 });
    expect(h.history.perplexity[7]).toBeLessThan(h.history.perplexity[0]);
    const r = m.evaluate(x, y);
    expect(r.perplexity).toBeCloseTo(Math.exp(r.loss), 4);
    expect(r.accuracy).toBeGreaterThan(0.9);
  });

  it('custom function metrics and losses', async () => {
    const { x } = blobs(32);
    const target = tsm.randn([32, 2]);
    const m = mlp();
    const meanPred = (p: tsm.Tensor) => tsm.noGrad(() => p.mean().item());
    m.compile({ optimizer: 'sgd', loss: (p, t) => p.sub(t).abs().mean(), metrics: [meanPred, 'mae', 'mse'] });
    const h = await m.fit(x, target, { epochs: 1, batchSize: 32, verbose: 0, shuffle: false });
    expect(Object.keys(h.history)).toEqual(expect.arrayContaining(['meanPred', 'mae', 'mse']));
    // One batch: loss is the MAE before the step.
    expect(h.history.loss[0]).toBeCloseTo(h.history.mae[0], 5);
    await expect(async () => {
      m.compile({ optimizer: 'sgd', loss: (p) => p });
      await m.fit(x, target, { verbose: 0 });
    }).rejects.toThrow(/loss must be a scalar/);
  });
});

describe('evaluate and predict', () => {
  it('evaluate returns {loss, ...metrics} over all samples, batched, in eval mode', async () => {
    const { x, y } = blobs(50);
    const m = new nn.Sequential(new nn.Linear(4, 16), new nn.Dropout(0.5), new nn.ReLU(), new nn.Linear(16, 2));
    m.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy', 'recall'] });
    await m.fit(x, y, { epochs: 1, verbose: 0 });
    const r = m.evaluate(x, y, { batchSize: 7 });
    m.eval();
    const logits = tsm.noGrad(() => m.forward(x));
    m.train();
    expect(r.loss).toBeCloseTo(tsm.F.crossEntropy(logits, y).item(), 5);
    expect(r.accuracy).toBeCloseTo(metrics.accuracy(logits, y), 10);
    expect(r.recall).toBeCloseTo(metrics.recall(logits, y), 10);
    expect(m.training).toBe(true);
  });

  it('predict is batched, deterministic (eval mode) and records no graph', () => {
    const { x } = blobs(70);
    const m = new nn.Sequential(new nn.Linear(4, 8), new nn.Dropout(0.5), new nn.Linear(8, 3));
    const a = m.predict(x, { batchSize: 16 });
    const b = m.predict(x, { batchSize: 70 });
    expect(a.shape).toEqual([70, 3]);
    expect(a.requiresGrad).toBe(false);
    Array.from(a.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(b._data[i], 5));
    expect(m.training).toBe(true);
    expect(() => m.predict('x' as never)).toThrow(TypeError);
  });
});

describe('the ten-line snippet (README)', () => {
  it('goes from compile to a saved, reloadable, plotted model', async () => {
    const { x, y } = blobs(200);
    // `tsm` is lib/index, as `import * as tsm from 'tensorsmith'` in the README.
    const cwd = process.cwd();
    process.chdir(dir);
    const log = console.log;
    const printed: unknown[] = [];
    console.log = (...a: unknown[]) => { printed.push(a); };
    try {
      // ---- the snippet, line for line as in the README (after its import line) ----
      const make = () => new tsm.nn.Sequential(new tsm.nn.Linear(4, 16), new tsm.nn.ReLU(), new tsm.nn.Linear(16, 2));
      const model = make();
      model.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy'] });
      const history = await model.fit(x, y, { epochs: 20, validationSplit: 0.2,
        callbacks: [tsm.callbacks.earlyStopping({ patience: 3, restoreBestWeights: true })] });
      tsm.io.save(model.stateDict(), 'model.safetensors');
      tsm.plot.history(history, 'curves.svg');
      const reloaded = make(); reloaded.loadStateDict(tsm.io.load('model.safetensors'));
      console.log(reloaded.predict(x).argmax(1).toArray());
      // ---- end of the snippet ----
      expect(fs.existsSync('model.safetensors')).toBe(true);
      expect(fs.readFileSync('curves.svg', 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
      expect(Array.from(reloaded.predict(x).dataSync())).toEqual(Array.from(model.predict(x).dataSync()));
      expect(history.history.val_accuracy.length).toBeGreaterThan(0);
      expect(history.history.val_accuracy[history.history.val_accuracy.length - 1]).toBeGreaterThan(0.8);
      expect((printed.at(-1) as unknown[])[0]).toHaveLength(200);
    } finally {
      console.log = log;
      process.chdir(cwd);
    }
  });
});
