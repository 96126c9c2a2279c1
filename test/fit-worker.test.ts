// model.fitAsync: fit() with its steps on a worker thread (lib/fit-async.ts, lib/fit-worker.ts,
// lib/transfer.ts). Checked here: the results equal fit()'s for the same seed (bit for bit); the
// event loop of the caller stays free (monitorEventLoopDelay p99 < 20 ms during a >= 2 s fit, with
// a synchronous control the monitor does see); the callbacks run on the calling thread with the
// worker's logs and see the trained weights; stopTraining, AbortSignal; errors inside the worker
// come back as their class; the worker exits and the caller's memory stays put; every tensorsmith
// layer survives the copy; the dist/ CommonJS and ESM builds find the worker entry.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import { liveFitWorkers } from '../lib/fit-async';
import { Decoder, Encoder } from '../lib/transfer';
import { Faulty, LogNet, maxAbsError, Residual, SmallCnn, smoothL1 } from './helpers/fit-worker-model';

const { nn } = tsm;
const ROOT = path.resolve(__dirname, '..');
const USER_MODULE = path.join(__dirname, 'helpers', 'fit-worker-model.ts');

const bytesOf = (m: tsm.nn.Module) => m.parameters().map((p) => Buffer.from(p._data.buffer, p._data.byteOffset, p._data.byteLength).toString('base64'));

function mlp(seed: number): tsm.nn.Module {
  tsm.manualSeed(seed);
  return new nn.Sequential(new nn.Linear(8, 32), new nn.ReLU(), new nn.Dropout(0.2), new nn.Linear(32, 3));
}

function blobs(n: number, seed: number): [tsm.Tensor, tsm.Tensor] {
  tsm.manualSeed(seed);
  const y = tsm.randint(0, 3, [n]);
  const x = tsm.randn([n, 8]).add(y.to('float32').reshape([n, 1]));
  return [x, y];
}

// Garbage collection on demand: tests compare tsm.memory() before and after, so the tensors that
// earlier tests left to the FinalizationRegistry are collected first.
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs fn while monitorEventLoopDelay (1 ms resolution) watches the loop. */
async function watchLoop<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number; p99: number; max: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  // Armed before the work starts (a timer armed inside a blocked turn would miss the block).
  h.enable();
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  const result = await fn();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 20));
  h.disable();
  return { result, ms, p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
}

describe('fitAsync', () => {
  it('gives the numbers of fit(): losses, metrics, weights, optimizer state and the generator, bit for bit', async () => {
    const threads = tsm.getNumThreads();
    tsm.setNumThreads(1);
    try {
      const [x, y] = blobs(300, 1);
      const run = async (async: boolean) => {
        const m = mlp(7);
        m.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy'] });
        tsm.manualSeed(99); // shuffling and dropout draw from here, in the worker as in fit()
        const opts = { epochs: 3, batchSize: 16, validationSplit: 0.2, verbose: 0 as const };
        const h = async ? await m.fitAsync(x, y, opts) : await m.fit(x, y, opts);
        const adam = m.optimizer!.stateDict() as { state: { step: number; m: Float32Array; v: Float32Array }[] };
        return { h: h.history, epochs: h.epoch, w: bytesOf(m), step: adam.state.map((s) => s.step), m0: Array.from(adam.state[0].m),
          steps: m.optimizer!.stepCount, next: Array.from(tsm.rand([4])._data) };
      };
      const sync = await run(false), async = await run(true);
      expect(async.h).toEqual(sync.h);
      expect(async.epochs).toEqual([0, 1, 2]);
      expect(async.w).toEqual(sync.w);
      expect(async.step).toEqual(sync.step);
      expect(async.m0).toEqual(sync.m0);
      expect(async.steps).toBe(15 * 3);
      // The caller's generator continues where the worker left it.
      expect(async.next).toEqual(sync.next);
      expect(sync.h.val_loss).toHaveLength(3);
    } finally {
      tsm.setNumThreads(threads);
    }

    // A model of user classes (workerModules), with buffers (BatchNorm) and SGD momentum, at the
    // default thread count; and a loss and a metric defined in user code.
    tsm.manualSeed(3);
    const xi = tsm.randn([96, 1, 8, 8]), yi = tsm.randint(0, 3, [96]);
    const cnn = async (async: boolean) => {
      tsm.manualSeed(2);
      const m = new SmallCnn();
      m.compile({ optimizer: new tsm.optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 }), loss: 'crossEntropy', metrics: ['accuracy'] });
      const opts = { epochs: 2, batchSize: 16, verbose: 0 as const };
      const h = async ? await m.fitAsync(xi, yi, { ...opts, workerModules: [USER_MODULE] }) : await m.fit(xi, yi, opts);
      return { h: h.history, w: bytesOf(m), bn: Array.from(m.bn.running_var._data), tracked: m.bn.num_batches_tracked.item() };
    };
    const c1 = await cnn(false), c2 = await cnn(true);
    expect(c2).toEqual(c1);
    expect(c2.tracked).toBe(12);

    const fns = async (async: boolean) => {
      tsm.manualSeed(4);
      const m = new nn.Sequential(new Residual(6), new nn.Linear(6, 1));
      m.compile({ optimizer: 'rmsprop', loss: smoothL1, metrics: [maxAbsError, 'mae'] });
      const xs = tsm.randn([40, 6]), ys = tsm.randn([40, 1]);
      const opts = { epochs: 2, batchSize: 8, verbose: 0 as const };
      const h = async ? await m.fitAsync(xs, ys, { ...opts, workerModules: [new URL(`file://${USER_MODULE}`)] }) : await m.fit(xs, ys, opts);
      return { h: h.history, w: bytesOf(m) };
    };
    const f1 = await fns(false), f2 = await fns(true);
    expect(f2).toEqual(f1);
    expect(Object.keys(f2.h)).toEqual(['loss', 'maxAbsError', 'mae', 'lr']);
  });

  it('streams a Dataset, DataLoader or iterable from the calling thread, with the numbers of fit()', async () => {
    const [x, y] = blobs(160, 9);
    const xv = x.slice(0, 0, 40), yv = y.slice(0, 0, 40);
    const sources: [string, () => tsm.BatchSource, tsm.FitAsyncOptions][] = [
      ['Dataset with validationSplit', () => new tsm.data.TensorDataset(x, y), { validationSplit: 0.25, batchSize: 16 }],
      ['shuffled DataLoader, DataLoader validation', () => new tsm.data.DataLoader(new tsm.data.TensorDataset(x, y), { batchSize: 20, shuffle: true }),
        { validationData: new tsm.data.DataLoader(new tsm.data.TensorDataset(xv, yv), { batchSize: 16 }) }],
      ['async generator of {x, y}', () => ({ async *[Symbol.asyncIterator]() { for (let i = 0; i < 160; i += 32) yield { x: x.slice(0, i, i + 32), y: y.slice(0, i, i + 32) }; } }), {}],
    ];
    for (const [what, source, extra] of sources) {
      const run = async (async: boolean) => {
        const m = mlp(2);
        m.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy'] });
        tsm.manualSeed(6);
        const opts = { epochs: 2, verbose: 0 as const, ...extra };
        const h = async ? await m.fitAsync(source(), opts) : await m.fit(source(), opts);
        return { h: h.history, params: h.params, w: bytesOf(m), next: Array.from(tsm.rand([2])._data) };
      };
      const sync = await run(false), async = await run(true);
      expect(async, what).toEqual(sync);
      // The progress bar's total comes from the source here (the worker only sees a stream).
      expect(async.params?.steps, what).toBe(what.startsWith('async') ? null : 8);
    }
    // The shuffled DataLoader's batches are made here and disposed here: none is left.
    const dlModel = mlp(2);
    dlModel.compile({ optimizer: 'sgd', loss: 'crossEntropy' });
    const loader = new tsm.data.DataLoader(new tsm.data.TensorDataset(x, y), { batchSize: 4, shuffle: true });
    await settle();
    const before = tsm.memory();
    const h = await dlModel.fitAsync(loader, { epochs: 3, verbose: 0, callbacks: [{ onBatchEnd(b) { if (b === 5) dlModel.stopTraining = true; } }] });
    expect(h.epoch).toEqual([0]); // stopped within the first epoch
    await settle();
    expect(tsm.memory()).toEqual(before);
  });

  it('keeps the event loop free: p99 delay < 20 ms while a >= 2 s fit runs on the worker', async () => {
    const cnn = () => {
      tsm.manualSeed(1);
      const m = new nn.Sequential(
        new nn.Conv2d(3, 16, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2),
        new nn.Conv2d(16, 32, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2),
        new nn.Flatten(), new nn.Linear(32 * 8 * 8, 64), new nn.ReLU(), new nn.Linear(64, 10));
      m.compile({ optimizer: 'adam', loss: 'crossEntropy', metrics: ['accuracy'] });
      return m;
    };
    // Calibrate: samples per ~250 ms epoch on this machine.
    const probe = cnn();
    const px = tsm.randn([192, 3, 32, 32]), py = tsm.randint(0, 10, [192]);
    await probe.fit(px, py, { epochs: 1, batchSize: 64, verbose: 0 }); // warm-up
    const t0 = performance.now();
    await probe.fit(px, py, { epochs: 1, batchSize: 64, verbose: 0 });
    const perSample = (performance.now() - t0) / 192;
    const n = Math.max(128, Math.round(250 / perSample / 64) * 64);
    const x = tsm.randn([n, 3, 32, 32]), y = tsm.randint(0, 10, [n]);

    // Many epochs, stopped from a timer after 2.1 s: model.stopTraining set outside any callback
    // reaches the worker, which ends after the batch in progress (the epoch is cut short).
    const model = cnn();
    let batches = 0;
    const stopper = setTimeout(() => (model.stopTraining = true), 2100);
    const r = await watchLoop(() => model.fitAsync(x, y, { epochs: 1000, batchSize: 64, verbose: 0, callbacks: [{ onBatchEnd: () => void batches++ }] }));
    clearTimeout(stopper);
    const epochs = r.result.epoch.length;
    console.log(`fit worker: fitAsync of ${epochs} epochs x ${n} images (batch 64) took ${r.ms.toFixed(0)} ms; ` +
      `event-loop delay p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(2)} ms; ${batches} batch callbacks`);
    expect(r.ms).toBeGreaterThan(2000);
    expect(epochs).toBeGreaterThan(1);
    expect(epochs).toBeLessThan(1000);
    expect(batches).toBeGreaterThan((epochs - 1) * (n / 64));
    expect(batches).toBeLessThanOrEqual(epochs * (n / 64));
    expect(r.p99).toBeLessThan(20);
    expect(Number.isFinite(r.result.history.loss[epochs - 1])).toBe(true);

    // The control: the same model through fit() with one batch of ~300 ms blocks the loop.
    const m2 = cnn();
    const nb = Math.max(64, Math.round(300 / perSample));
    const xb = tsm.randn([nb, 3, 32, 32]), yb = tsm.randint(0, 10, [nb]);
    const s = await watchLoop(() => m2.fit(xb, yb, { epochs: 1, batchSize: nb, verbose: 0 }));
    console.log(`fit worker: control fit() of one ${nb}-image batch took ${s.ms.toFixed(0)} ms; max delay ${s.max.toFixed(0)} ms`);
    expect(s.max).toBeGreaterThan(Math.min(100, s.ms / 2));
    // And fitAsync of that batch does not.
    const m3 = cnn();
    const a = await watchLoop(() => m3.fitAsync(xb, yb, { epochs: 1, batchSize: nb, verbose: 0 }));
    expect(a.max).toBeLessThan(s.max / 2);
    for (const t of [px, py, x, y, xb, yb]) t.dispose();
  });

  it('runs the callbacks on the calling thread with the logs, the trained weights and the schedules', async () => {
    const [x, y] = blobs(120, 2);
    const model = mlp(3);
    model.compile({ optimizer: 'sgd', lr: 0.1, loss: 'crossEntropy', metrics: ['accuracy'] });
    const seen: string[] = [];
    const epochWeights: string[][] = [];
    let params: tsm.callbacks.TrainingParams | undefined;
    const batchLogs: tsm.callbacks.Logs[] = [];
    const cb: tsm.callbacks.CallbackHooks = {
      onTrainBegin() { seen.push('trainBegin'); params = this.params; },
      onEpochBegin(e) { seen.push(`epochBegin ${e}`); },
      onBatchBegin(b) { if (b === 0) seen.push('batchBegin 0'); },
      onBatchEnd(_b, logs) { batchLogs.push(logs); },
      async onEpochEnd(e, logs) {
        await new Promise((r) => setTimeout(r, 5)); // async hooks are awaited
        seen.push(`epochEnd ${e} ${Object.keys(logs).join(',')}`);
        expect(this.model).toBe(model);
        epochWeights.push(bytesOf(model)); // the model here already has the epoch's weights
      },
      onTrainEnd(logs) { seen.push(`trainEnd ${logs.loss > 0}`); },
    };
    const before = bytesOf(model);
    const h = await model.fitAsync(x, y, { epochs: 2, batchSize: 32, validationData: [x, y], verbose: 0, callbacks: [cb] });
    expect(seen).toEqual(['trainBegin', 'epochBegin 0', 'batchBegin 0', 'epochEnd 0 loss,accuracy,val_loss,val_accuracy,lr',
      'epochBegin 1', 'batchBegin 0', 'epochEnd 1 loss,accuracy,val_loss,val_accuracy,lr', 'trainEnd true']);
    expect(params).toMatchObject({ epochs: 2, steps: 4, samples: 120, batchSize: 32, verbose: 0, metrics: ['loss', 'accuracy', 'val_loss', 'val_accuracy'] });
    expect(batchLogs).toHaveLength(8);
    expect(batchLogs[3]).toMatchObject({ batch: 3, size: 24 });
    expect(batchLogs[3].loss).toBeCloseTo(h.history.loss[0], 6);
    expect(epochWeights[0]).not.toEqual(before);
    expect(epochWeights[1]).toEqual(bytesOf(model));

    // A learning-rate schedule and early stopping, as with fit(): same numbers, same stop.
    const scheduled = async (async: boolean) => {
      const m = mlp(5);
      m.compile({ optimizer: 'sgd', lr: 0.2, loss: 'crossEntropy' });
      tsm.manualSeed(8);
      const cbs = [
        tsm.callbacks.lrScheduler(new tsm.optim.lrScheduler.StepLR(m.optimizer!, 1, 0.5)),
        // Stops after epoch 2 and puts back epoch 1's weights (saved here at onEpochEnd).
        tsm.callbacks.earlyStopping({ monitor: 'loss', mode: 'max', patience: 1, restoreBestWeights: true }),
      ];
      const opts = { epochs: 6, batchSize: 40, verbose: 0 as const, callbacks: cbs };
      const hh = async ? await m.fitAsync(x, y, opts) : await m.fit(x, y, opts);
      return { h: hh.history, w: bytesOf(m), lr: m.optimizer!.lr };
    };
    const s1 = await scheduled(false), s2 = await scheduled(true);
    expect(s2).toEqual(s1);
    expect(s2.h.lr).toEqual([0.1, 0.05]);

    // stopTraining set in a batch hook: the worker sees it a few batches later at most, and the
    // epoch ends there (fit() semantics: the epoch's logs and onEpochEnd still come).
    const m = mlp(6);
    m.compile({ optimizer: 'adam', loss: 'crossEntropy' });
    let batchesSeen = 0;
    const hs = await m.fitAsync(x, y, { epochs: 5, batchSize: 4, verbose: 0, callbacks: [{
      onBatchEnd(b) { batchesSeen++; if (b === 2) m.stopTraining = true; },
    }] });
    expect(hs.epoch).toEqual([0]);
    expect(batchesSeen).toBeGreaterThanOrEqual(3);
    expect(batchesSeen).toBeLessThan(30);
    expect(m.stopTraining).toBe(true);
  });

  it('AbortSignal ends the worker at once; the model keeps the last completed epoch', async () => {
    const [x, y] = blobs(2000, 3);
    const model = mlp(4);
    model.compile({ optimizer: 'adam', loss: 'crossEntropy' });
    const ac = new AbortController();
    let atEpochEnd: string[] = [];
    let epochsDone = 0;
    const p = model.fitAsync(x, y, { epochs: 10_000, batchSize: 8, verbose: 0, signal: ac.signal, callbacks: [{
      onEpochEnd() { atEpochEnd = bytesOf(model); if (++epochsDone === 2) setTimeout(() => ac.abort(), 30); },
    }] });
    const t0 = performance.now();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(liveFitWorkers()).toBe(0); // the worker thread has exited
    expect(epochsDone).toBeGreaterThanOrEqual(2);
    expect(bytesOf(model)).toEqual(atEpochEnd);
    // The model is usable again at once, with fit or fitAsync.
    const h = await model.fitAsync(x.slice(0, 0, 64), y.slice(0, 0, 64), { verbose: 0 });
    expect(h.epoch).toEqual([0]);

    // Already aborted: rejects with the reason, starts nothing.
    const reason = new Error('changed my mind');
    await expect(model.fitAsync(x, y, { verbose: 0, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(liveFitWorkers()).toBe(0);
  });

  it('errors inside the worker come back as their class, with the op and both stacks', async () => {
    // Linear(4, 2) given 2 features on the 3rd forward, inside the worker.
    const f = new Faulty(2);
    f.compile({ optimizer: 'adam', loss: 'mse' });
    const err = await f.fitAsync(tsm.randn([16, 4]), tsm.randn([16, 2]), { batchSize: 4, verbose: 0, workerModules: [USER_MODULE] })
      .then(() => null, (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(RangeError);
    expect(err!.message).toMatch(/^linear: input's last dimension must be 4/);
    expect(err!.stack).toContain('Faulty.forward');
    expect(err!.stack).toContain('<the fitAsync worker thread>');
    expect(err!.stack).toContain('fit-worker.test.ts');

    // Anomaly detection switched on here is on in the worker: TsmAnomalyError, with its op and phase.
    tsm.setDetectAnomaly(true);
    try {
      const ln = new LogNet();
      nn.copyInto(ln.fc.weight, [1, 1]);
      ln.compile({ optimizer: 'sgd', loss: 'mse' });
      const e = await ln.fitAsync(tsm.full([4, 2], -1), tsm.zeros([4, 1]), { verbose: 0, workerModules: [USER_MODULE] })
        .then(() => null, (x: unknown) => x as tsm.TsmAnomalyError);
      expect(e).toBeInstanceOf(tsm.TsmAnomalyError);
      expect([e!.op, e!.phase]).toEqual(['log', 'forward']);
    } finally {
      tsm.setDetectAnomaly(false);
    }

    // A crossEntropy target out of range (in the worker), and a disposed input (refused here).
    const m = new nn.Sequential(new nn.Linear(4, 3));
    m.compile({ optimizer: 'adam', loss: 'crossEntropy' });
    await expect(m.fitAsync(tsm.randn([8, 4]), tsm.full([8], 7, { dtype: 'int32' }), { verbose: 0 }))
      .rejects.toThrow(/^crossEntropy: target 7 at position 0 is out of range \[0, 3\)/);
    const disposed = tsm.randn([8, 4]);
    disposed.dispose();
    await expect(m.fitAsync(disposed, tsm.zeros([8], { dtype: 'int32' }), { verbose: 0 })).rejects.toThrow(tsm.TsmDisposedError);

    // What cannot cross is refused before a worker starts, naming it.
    await expect(new SmallCnn().fitAsync(tsm.randn([2, 1, 8, 8]), tsm.zeros([2]))).rejects.toThrow(/not compiled/);
    const cnn = new SmallCnn();
    cnn.compile({ optimizer: 'adam', loss: 'crossEntropy' });
    await expect(cnn.fitAsync(tsm.randn([4, 1, 8, 8]), tsm.zeros([4], { dtype: 'int32' }), { verbose: 0 }))
      .rejects.toThrow(/fitAsync: the worker thread cannot rebuild class SmallCnn \(model\).*workerModules/);
    const withHook = new nn.Sequential(new nn.Linear(2, 2));
    (withHook as unknown as { hook: () => number }).hook = () => 1;
    withHook.compile({ optimizer: 'adam', loss: 'mse' });
    await expect(withHook.fitAsync(tsm.randn([4, 2]), tsm.randn([4, 2]), { verbose: 0 }))
      .rejects.toThrow(/fitAsync: cannot send model\.hook to the worker thread: it is a function/);
    const gelu = new nn.TransformerEncoderLayer({ dModel: 4, nhead: 1, dimFeedforward: 8, activation: (t) => t.relu() });
    gelu.compile({ optimizer: 'adam', loss: 'mse' });
    await expect(gelu.fitAsync(tsm.randn([3, 2, 4]), tsm.randn([3, 2, 4]), { verbose: 0 }))
      .rejects.toThrow(/cannot send model\.config\.activation .*function/);
    const lossFn = new nn.Sequential(new nn.Linear(2, 1));
    lossFn.compile({ optimizer: 'adam', loss: (p, t) => p.sub(t).square().mean() });
    // (an arrow function in an object literal is named after its key: 'loss')
    await expect(lossFn.fitAsync(tsm.randn([4, 2]), tsm.randn([4, 1]), { verbose: 0 }))
      .rejects.toThrow(/cannot rebuild function loss \(compile's loss\): defined in your code/);
    const m2 = new nn.Sequential(new nn.Linear(2, 1));
    m2.compile({ optimizer: 'adam', loss: 'mse' });
    const x2 = tsm.randn([4, 2]), y2 = tsm.randn([4, 1]);
    await expect(m2.fitAsync(x2, y2, { epochs: -1 })).rejects.toThrow(/^fitAsync: epochs/);
    await expect(m2.fitAsync(x2, y2, { workers: 2 } as never)).rejects.toThrow(/fitAsync: unknown option "workers"/);
    await expect(m2.fitAsync(x2, y2, { signal: {} as AbortSignal })).rejects.toThrow(/signal must be an AbortSignal/);
    await expect(m2.fitAsync(x2, y2, { workerModules: ['http://example.com/a.js'] })).rejects.toThrow(/workerModules\[0\] must be a path or a file: URL/);
    await expect(m2.fitAsync(x2, y2, { validationData: 5 as never })).rejects.toThrow(/^fitAsync: expected \(x, y\) tensors, a Dataset, a DataLoader or an iterable/);
    await expect(m2.fitAsync('data' as never)).rejects.toThrow(/^fitAsync: expected \(x, y\) tensors, a Dataset, a DataLoader or an iterable/);
    await expect(m2.fitAsync(new tsm.data.DataLoader(new tsm.data.TensorDataset(x2, y2)), { validationSplit: 0.5 }))
      .rejects.toThrow(/^fitAsync: validationSplit needs tensors or a Dataset/);
    expect(liveFitWorkers()).toBe(0);
    // A class missing from workerModules is reported by the worker, naming the module searched.
    const res = new nn.Sequential(new Residual(2));
    res.compile({ optimizer: 'adam', loss: 'mse' });
    const other = path.join(__dirname, 'helpers', 'raw.ts');
    await expect(res.fitAsync(x2, tsm.randn([4, 2]), { verbose: 0, workerModules: [other] }))
      .rejects.toThrow(new RegExp(`class Residual is not defined in the worker thread: looked in the exports of ${other.replace(/[.]/g, '\\.')}`));
    // One fitAsync at a time per model; fit() waits for it too.
    const big = tsm.randn([400, 2]), bigY = tsm.randn([400, 1]);
    const running = m2.fitAsync(big, bigY, { epochs: 2, batchSize: 4, verbose: 0 });
    await expect(m2.fitAsync(x2, y2, { verbose: 0 })).rejects.toThrow(/already being trained by fitAsync/);
    await expect(m2.fit(x2, y2, { verbose: 0 })).rejects.toThrow(/being trained by fitAsync/);
    await running;
    expect(liveFitWorkers()).toBe(0);
  });

  it('the worker exits after fitAsync; the caller keeps no tensors and no memory of it', async () => {
    const [x, y] = blobs(4000, 5); // 128 KB of inputs
    const big = tsm.randn([4000, 1024]); // 16 MB copied to each worker
    const model = new nn.Sequential(new nn.Linear(1024, 64), new nn.ReLU(), new nn.Linear(64, 3));
    model.compile({ optimizer: 'adam', loss: 'crossEntropy' });
    await settle();
    const before = tsm.memory();
    const rss: number[] = [];
    for (let i = 0; i < 4; i++) {
      const h = await model.fitAsync(big, y, { epochs: 1, batchSize: 500, verbose: 0 });
      expect(h.epoch).toEqual([0]);
      expect(liveFitWorkers()).toBe(0);
      await settle();
      rss.push(process.memoryUsage().rss);
    }
    expect(tsm.memory()).toEqual(before);
    const mb = rss.map((r) => Math.round(r / 2 ** 20));
    console.log(`fit worker: RSS after each of 4 fitAsync runs (16 MB of data each): ${mb.join(', ')} MB`);
    // Each worker had the data, the model and its activations; none of it stays behind.
    expect(rss[3] - rss[1]).toBeLessThan(48 * 2 ** 20);
    for (const t of [x, y, big]) t.dispose();
  });

  it('every tensorsmith layer, loss and optimizer survives the copy', () => {
    tsm.manualSeed(0);
    const layer = new nn.TransformerEncoderLayer({ dModel: 8, nhead: 2, dimFeedforward: 16, batchFirst: true });
    const modules: tsm.nn.Module[] = [
      new nn.Linear(3, 2, { bias: false }), new nn.Conv2d(2, 4, [3, 2], { stride: 2, padding: 1, groups: 2 }), new nn.MaxPool2d(2, { stride: 1 }),
      new nn.AvgPool2d(3, { padding: 1, countIncludePad: false }), new nn.AdaptiveAvgPool2d([2, 3]), new nn.Flatten(0, 1), new nn.ReLU(),
      new nn.GELU('tanh'), new nn.Sigmoid(), new nn.Tanh(), new nn.Softmax(1), new nn.LogSoftmax(0), new nn.Identity(), new nn.Dropout(0.3),
      new nn.Embedding(10, 4, { paddingIdx: 1 }), new nn.LayerNorm([2, 3], { eps: 1e-3 }), new nn.BatchNorm2d(3, { momentum: 0.2 }),
      new nn.Sequential(new nn.Linear(2, 2), new nn.Tanh()), new nn.CrossEntropyLoss({ labelSmoothing: 0.1 }), new nn.MSELoss({ reduction: 'sum' }),
      new nn.BCELoss(), new nn.BCEWithLogitsLoss({ posWeight: tsm.tensor([2]) }), new nn.NLLLoss({ ignoreIndex: 0 }),
      new nn.MultiheadAttention({ embedDim: 8, numHeads: 2 }), layer, new nn.TransformerEncoder(layer, 2, { norm: new nn.LayerNorm(8) }),
      new nn.PositionalEncoding(8, { maxLen: 12, dropout: 0 }), new nn.LearnedPositionalEmbedding(12, 8), new nn.LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2 }),
    ];
    modules[3].eval();
    // Every nn class exported is covered here.
    const covered = new Set(modules.map((m) => m.constructor));
    const missing = Object.entries(tsm.nn).filter(([, v]) => typeof v === 'function' && v.prototype instanceof nn.Module && !covered.has(v as never)).map(([k]) => k);
    expect(missing).toEqual([]);

    const same = (a: unknown, b: unknown, where: string, seen = new Map<unknown, unknown>()): void => {
      if (a === null || typeof a !== 'object') return void expect(b, where).toEqual(a);
      if (seen.has(a)) return void expect(seen.get(a), `${where} (shared)`).toBe(b);
      seen.set(a, b);
      expect(Object.getPrototypeOf(b), where).toBe(Object.getPrototypeOf(a));
      if (a instanceof tsm.Tensor) {
        const t = b as tsm.Tensor;
        expect([t.shape, t.dtype, t.requiresGrad, nn.isParameter(t)], where).toEqual([a.shape, a.dtype, a.requiresGrad, nn.isParameter(a)]);
        expect(Array.from(t._data), where).toEqual(Array.from(a._data));
        return;
      }
      if (ArrayBuffer.isView(a)) return void expect(Array.from(b as Float32Array), where).toEqual(Array.from(a as Float32Array));
      if (a instanceof Map) {
        expect([...(b as Map<unknown, unknown>).keys()], where).toEqual([...a.keys()]);
        for (const [k, v] of a) same(v, (b as Map<unknown, unknown>).get(k), `${where}.get(${String(k)})`, seen);
        return;
      }
      expect(Object.keys(b as object), where).toEqual(Object.keys(a));
      for (const [k, v] of Object.entries(a)) same(v, (b as Record<string, unknown>)[k], `${where}.${k}`, seen);
    };
    const roundTrip = (things: unknown[]): unknown[] => {
      // Model tensors travel by name, the rest with the graph; structuredClone stands in for postMessage.
      const state = new Map<tsm.Tensor, string>();
      things.forEach((t, i) => {
        if (t instanceof nn.Module) for (const [k, v] of Object.entries(t.stateDict())) if (!state.has(v)) state.set(v, `${i}.${k}`);
      });
      const enc = new Encoder({ op: 'test', stateNames: state });
      const wire = structuredClone(things.map((t, i) => enc.encode(t, `thing${i}`)));
      const copies = new Map([...state].map(([t, k]) => [k, tsm.tensor(t._data.slice(), { shape: t.shape.slice() })]));
      for (const [t, k] of state) {
        const c = copies.get(k)!;
        if (nn.isParameter(t)) nn.parameter(c);
        c.requiresGrad_(t.requiresGrad);
      }
      const dec = new Decoder({ op: 'test', state: copies, userClasses: new Map(), searched: [] });
      return wire.map((w) => dec.decode(w));
    };
    const optims = [
      new tsm.optim.SGD(modules[0].parameters(), { lr: 0.1, momentum: 0.9, nesterov: true }),
      new tsm.optim.Adam(modules[1].parameters(), { amsgrad: true, betas: [0.8, 0.9] }),
      new tsm.optim.AdamW(modules[24].parameters()), new tsm.optim.RMSprop(modules[28].parameters(), { centered: true, momentum: 0.5 }),
    ];
    for (const o of optims) { // give them state
      for (const p of o.params) p.grad = tsm.onesLike(p);
      o.step();
      o.zeroGrad();
    }
    const things = [...modules, ...optims];
    const copies = roundTrip(things);
    things.forEach((t, i) => same(t, copies[i], `${t.constructor.name}`));
    // The copies compute what the originals do.
    const enc = copies[25] as tsm.nn.TransformerEncoder;
    const src = tsm.randn([2, 5, 8]);
    enc.eval();
    (modules[25] as tsm.nn.TransformerEncoder).eval();
    expect(Array.from(enc.forward(src)._data)).toEqual(Array.from((modules[25] as tsm.nn.TransformerEncoder).forward(src)._data));
    const lstmIn = tsm.randn([4, 2, 3]);
    expect(Array.from((copies[28] as tsm.nn.LSTM).forward(lstmIn)[0]._data)).toEqual(Array.from((modules[28] as tsm.nn.LSTM).forward(lstmIn)[0]._data));
    // The optimizer copy holds the copied model's tensors, not new ones.
    expect((copies[29] as tsm.optim.SGD).params[0]).toBe((copies[0] as tsm.nn.Linear).weight);
  });

  it('works from the dist/ CommonJS and ESM builds (the worker entry resolves from both)', () => {
    // npm test builds dist/ first; build it here when run alone or when the sources are newer.
    const built = path.join(ROOT, 'dist', 'cjs', 'fit-worker.js');
    const newest = Math.max(...['fit-async.ts', 'fit-worker.ts', 'transfer.ts', 'training.ts'].map((f) => fs.statSync(path.join(ROOT, 'lib', f)).mtimeMs));
    if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < newest || !fs.existsSync(path.join(ROOT, 'dist', 'esm', 'index.mjs')))
      execFileSync('npm', ['run', 'build:ts'], { cwd: ROOT, stdio: 'ignore' });
    // A user class from a module of each kind, which the worker imports (workerModules).
    const body = (kind: 'cjs' | 'esm') => `
      const { TwoLayer } = ${kind === 'cjs' ? "require('./test/helpers/fit-worker-dist-model.cjs')" : "await import('./test/helpers/fit-worker-dist-model.mjs')"};
      tsm.manualSeed(1);
      const m = new TwoLayer();
      m.compile({ optimizer: 'sgd', loss: 'mse' });
      const x = tsm.randn([64, 4]), y = tsm.randn([64, 1]);
      const workerModules = [${JSON.stringify(path.join(__dirname, 'helpers', `fit-worker-dist-model.${kind === 'cjs' ? 'cjs' : 'mjs'}`))}];
      const ha = await m.fitAsync(x, y, { epochs: 2, verbose: 0, workerModules });
      const t = tsm.randn([4, 4]);
      console.log(JSON.stringify({ loss: ha.history.loss, w: Array.from(m.parameters()[0]._data.slice(0, 3)), out: Array.from(m.predict(t)._data) }));`;
    const cjs = spawnSync(process.execPath, ['-e', `const tsm = require('tensorsmith'); (async () => {${body('cjs')}})().catch((e) => { console.error(e); process.exit(1); });`],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    const esm = spawnSync(process.execPath, ['--input-type=module', '-e', `import * as tsm from 'tensorsmith';${body('esm')}`],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(cjs.status, cjs.stderr).toBe(0);
    expect(esm.status, esm.stderr).toBe(0);
    const a = JSON.parse(cjs.stdout.trim()), b = JSON.parse(esm.stdout.trim());
    expect(a.loss).toHaveLength(2);
    expect(a.loss[1]).toBeLessThan(a.loss[0]);
    expect(b.loss).toEqual(a.loss);
    expect(b.out).toEqual(a.out);
    expect(b.w).toEqual(a.w);
  });
});
