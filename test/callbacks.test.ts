// tsm.callbacks: hook order, stopping, early stopping, schedulers, CSV, checkpoints, progress bar.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import '../lib/training';
import * as callbacks from '../lib/callbacks';
import * as io from '../lib/io';

const { nn } = tsm;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-callbacks-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function data(n = 48) {
  tsm.manualSeed(0);
  const x = tsm.randn([n, 3]);
  const d = x._data as Float32Array;
  const y = tsm.tensor(Int32Array.from({ length: n }, (_, i) => (d[i * 3] > 0 ? 1 : 0)));
  return { x, y };
}

function model(opt: 'adam' | 'sgd' = 'sgd', lr = 0.05) {
  tsm.manualSeed(1);
  const m = new nn.Sequential(new nn.Linear(3, 8), new nn.ReLU(), new nn.Linear(8, 2));
  m.compile({ optimizer: opt, lr, loss: 'crossEntropy', metrics: ['accuracy'] });
  return m;
}

describe('custom callbacks', () => {
  it('get every hook in order with the logs, model and params', async () => {
    const { x, y } = data(16);
    const m = model();
    const calls: string[] = [];
    const cb = {
      onTrainBegin: () => { calls.push('trainBegin'); },
      onEpochBegin: (e: number) => { calls.push(`epochBegin ${e}`); },
      onBatchBegin: (b: number, logs: callbacks.Logs) => { calls.push(`batchBegin ${b} size ${logs.size}`); },
      onBatchEnd: (b: number, logs: callbacks.Logs) => { calls.push(`batchEnd ${b} ${typeof logs.loss} ${typeof logs.accuracy}`); },
      onEpochEnd: async (e: number, logs: callbacks.Logs) => {
        await new Promise<void>((r) => setTimeout(r, 1)); // async hooks are awaited
        calls.push(`epochEnd ${e} ${Object.keys(logs).sort().join(',')}`);
      },
      onTrainEnd: (logs: callbacks.Logs) => { calls.push(`trainEnd ${typeof logs.loss}`); },
    } as callbacks.CallbackHooks;
    await m.fit(x, y, { epochs: 2, batchSize: 10, verbose: 0, callbacks: [cb], validationData: [x, y] });
    expect(calls).toEqual([
      'trainBegin',
      'epochBegin 0', 'batchBegin 0 size 10', 'batchEnd 0 number number', 'batchBegin 1 size 6', 'batchEnd 1 number number',
      'epochEnd 0 accuracy,loss,lr,val_accuracy,val_loss',
      'epochBegin 1', 'batchBegin 0 size 10', 'batchEnd 0 number number', 'batchBegin 1 size 6', 'batchEnd 1 number number',
      'epochEnd 1 accuracy,loss,lr,val_accuracy,val_loss',
      'trainEnd number',
    ]);
    expect(cb.model).toBe(m);
    expect(cb.params).toMatchObject({ epochs: 2, steps: 2, samples: 16, batchSize: 10, verbose: 0 });
    expect(cb.params?.metrics).toEqual(['loss', 'accuracy', 'val_loss', 'val_accuracy']);
  });

  it('a callback sets model.stopTraining to end fit after the current batch', async () => {
    const { x, y } = data(40);
    const m = model();
    class StopAfter extends callbacks.Callback {
      onBatchEnd(batch: number): void {
        if (batch === 2) this.model!.stopTraining = true;
      }
    }
    let batches = 0;
    const h = await m.fit(x, y, { epochs: 5, batchSize: 4, verbose: 0, callbacks: [new StopAfter(), { onBatchEnd: () => { batches++; } }] });
    expect(batches).toBe(3);
    expect(h.epoch).toEqual([0]);
    // The flag is reset by the next fit.
    const h2 = await m.fit(x, y, { epochs: 2, batchSize: 40, verbose: 0 });
    expect(h2.epoch).toEqual([0, 1]);
  });
});

describe('earlyStopping', () => {
  // Drives the callback with hand-made logs.
  function drive(es: callbacks.EarlyStopping, key: string, values: number[]): number {
    const m = model();
    es.model = m as callbacks.TrainedModel;
    m.stopTraining = false;
    es.onTrainBegin();
    for (let e = 0; e < values.length; e++) {
      es.onEpochEnd(e, { [key]: values[e] });
      if (m.stopTraining) return e;
    }
    return -1;
  }

  it('stops after `patience` epochs without improvement; minDelta and mode', () => {
    expect(drive(callbacks.earlyStopping({ patience: 2 }), 'val_loss', [1, 0.9, 0.95, 0.93, 0.92])).toBe(3);
    expect(drive(callbacks.earlyStopping({ patience: 0 }), 'val_loss', [1, 0.9, 0.95])).toBe(2);
    expect(drive(callbacks.earlyStopping({ patience: 1, minDelta: 0.1 }), 'val_loss', [1, 0.95, 0.92])).toBe(1);
    expect(drive(callbacks.earlyStopping({ patience: 1 }), 'val_loss', [1, 0.9, 0.8, 0.7])).toBe(-1);
    // auto: accuracy-like names are maximised
    expect(drive(callbacks.earlyStopping({ monitor: 'val_accuracy', patience: 1 }), 'val_accuracy', [0.5, 0.6, 0.55])).toBe(2);
    expect(drive(callbacks.earlyStopping({ monitor: 'val_accuracy', patience: 1, mode: 'min' }), 'val_accuracy', [0.5, 0.6])).toBe(1);
    const es = callbacks.earlyStopping({ patience: 1 });
    drive(es, 'val_loss', [1, 0.5, 0.7, 0.8]);
    expect(es.best).toBe(0.5);
    expect(es.bestEpoch).toBe(1);
    expect(es.stoppedEpoch).toBe(2);
    // a baseline that is never beaten
    expect(drive(callbacks.earlyStopping({ patience: 2, baseline: 0.1 }), 'val_loss', [1, 0.9, 0.8, 0.7])).toBe(1);
  });

  it('restoreBestWeights puts back the weights of the best epoch', async () => {
    const m = model();
    const es = callbacks.earlyStopping({ monitor: 'loss', patience: 1, restoreBestWeights: true });
    es.model = m as callbacks.TrainedModel;
    es.onTrainBegin();
    const w = m.parameters()[0];
    (w._data as Float32Array).fill(1);
    es.onEpochEnd(0, { loss: 0.5 });
    (w._data as Float32Array).fill(2);
    es.onEpochEnd(1, { loss: 0.7 });
    expect(m.stopTraining).toBe(true);
    es.onTrainEnd();
    expect(Array.from(w.dataSync()).every((v) => v === 1)).toBe(true);
  });

  it('in fit: a quantity that never improves stops training (mode max on a falling loss)', async () => {
    const { x, y } = data();
    const m = model('sgd', 0.1);
    const h = await m.fit(x, y, { epochs: 10, verbose: 0, callbacks: [callbacks.earlyStopping({ monitor: 'loss', mode: 'max', patience: 1 })] });
    expect(h.epoch).toEqual([0, 1]);
  });

  it('warns once (and does not stop) when the monitored key is missing', async () => {
    const { x, y } = data(16);
    const m = model();
    const warn = console.warn;
    const warnings: string[] = [];
    console.warn = (s: string) => { warnings.push(s); };
    try {
      const h = await m.fit(x, y, { epochs: 3, verbose: 0, callbacks: [callbacks.earlyStopping()] });
      expect(h.epoch).toHaveLength(3);
    } finally {
      console.warn = warn;
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/'val_loss' is not in the epoch logs/);
  });
});

describe('lrScheduler', () => {
  it('steps an epoch-wise scheduler at the end of every epoch and logs lr', async () => {
    const { x, y } = data();
    const m = model();
    const opt = new tsm.optim.SGD(m.parameters(), { lr: 0.08 });
    m.compile({ optimizer: opt, loss: 'crossEntropy' });
    const seen: number[] = [];
    const h = await m.fit(x, y, {
      epochs: 3, verbose: 0,
      callbacks: [{ onEpochBegin: () => { seen.push(opt.lr); } }, callbacks.lrScheduler(new tsm.optim.StepLR(opt, 1, 0.5))],
    });
    expect(seen).toEqual([0.08, 0.04, 0.02]);
    expect(h.history.lr).toEqual([0.04, 0.02, 0.01]);
  });

  it('gives ReduceLROnPlateau the monitored metric (val_loss when there is validation data)', async () => {
    const { x, y } = data();
    const m = model();
    const plateau = new tsm.optim.ReduceLROnPlateau(m.optimizer!, { mode: 'max', patience: 0, factor: 0.5 });
    const got: number[] = [];
    const step = plateau.step.bind(plateau);
    plateau.step = (v: number) => { got.push(v); step(v); };
    const h = await m.fit(x, y, { epochs: 3, verbose: 0, validationData: [x, y], callbacks: [callbacks.lrScheduler(plateau)] });
    expect(got).toEqual(h.history.val_loss);
    // val_loss falls, so in 'max' mode every epoch after the first is a plateau: lr halves.
    expect(h.history.lr).toEqual([0.05, 0.025, 0.0125]);
    const acc: number[] = [];
    const p2 = new tsm.optim.ReduceLROnPlateau(m.optimizer!, {});
    p2.step = (v: number) => { acc.push(v); };
    const h2 = await m.fit(x, y, { epochs: 2, verbose: 0, callbacks: [callbacks.lrScheduler(p2, { monitor: 'accuracy' })] });
    expect(acc).toEqual(h2.history.accuracy);
  });

  it('a function (epoch, lr) => lr sets the rate at the start of every epoch', async () => {
    const { x, y } = data();
    const m = model();
    const h = await m.fit(x, y, { epochs: 3, verbose: 0, callbacks: [callbacks.lrScheduler((e) => 0.1 / (e + 1))] });
    expect(h.history.lr.map((v) => Number(v.toFixed(6)))).toEqual([0.1, 0.05, 0.033333]);
    expect(() => callbacks.lrScheduler(3 as never)).toThrow(TypeError);
  });
});

describe('csvLogger', () => {
  it('writes a header and one row per epoch', async () => {
    const { x, y } = data();
    const m = model();
    const file = path.join(dir, 'sub', 'log.csv');
    const h = await m.fit(x, y, { epochs: 3, verbose: 0, validationSplit: 0.25, callbacks: [callbacks.csvLogger(file)] });
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('epoch,accuracy,loss,lr,val_accuracy,val_loss');
    expect(lines).toHaveLength(4);
    const row = lines[2].split(',').map(Number);
    expect(row[0]).toBe(1);
    expect(row[2]).toBeCloseTo(h.history.loss[1], 10);
    expect(row[5]).toBeCloseTo(h.history.val_loss[1], 10);
    // append continues the same file with the same columns
    await m.fit(x, y, { epochs: 1, verbose: 0, validationSplit: 0.25, callbacks: [callbacks.csvLogger(file, { append: true })] });
    expect(fs.readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(5);
    await m.fit(x, y, { epochs: 1, verbose: 0, callbacks: [callbacks.csvLogger(file, { separator: ';' })] });
    expect(fs.readFileSync(file, 'utf8').trim().split('\n')).toEqual([expect.stringMatching(/^epoch;accuracy;loss;lr$/), expect.stringMatching(/^0;/)]);
  });
});

describe('modelCheckpoint', () => {
  it('saves every epoch to a templated path, loadable into the model', async () => {
    const { x, y } = data();
    const m = model();
    const tpl = path.join(dir, 'ckpt', 'epoch-{epoch}-{loss:.3f}.safetensors');
    const h = await m.fit(x, y, { epochs: 2, verbose: 0, callbacks: [callbacks.modelCheckpoint(tpl)] });
    const files = fs.readdirSync(path.join(dir, 'ckpt')).sort();
    expect(files).toEqual([`epoch-1-${h.history.loss[0].toFixed(3)}.safetensors`, `epoch-2-${h.history.loss[1].toFixed(3)}.safetensors`]);
    const { tensors, metadata } = io.loadWithMetadata(path.join(dir, 'ckpt', files[1]));
    expect(metadata.epoch).toBe('2');
    expect(Number(metadata.loss)).toBeCloseTo(h.history.loss[1], 10);
    const fresh = model();
    fresh.loadStateDict(tensors);
    expect(Array.from(fresh.predict(x).dataSync())).toEqual(Array.from(m.predict(x).dataSync()));
  });

  it('saveBestOnly saves only when the monitored value improves', async () => {
    const { x, y } = data();
    const m = model();
    const file = path.join(dir, 'best.safetensors');
    const saves: number[] = [];
    // Mode 'max' on a falling loss: only the first epoch is an improvement.
    await m.fit(x, y, {
      epochs: 3, verbose: 0,
      callbacks: [callbacks.modelCheckpoint(file, { monitor: 'loss', mode: 'max', saveBestOnly: true }),
        { onEpochEnd: (e: number) => { if (fs.existsSync(file)) saves.push(Number(io.loadWithMetadata(file).metadata.epoch)); } }],
    });
    expect(saves).toEqual([1, 1, 1]);
    const file2 = path.join(dir, 'best2.safetensors');
    await m.fit(x, y, { epochs: 3, verbose: 0, callbacks: [callbacks.modelCheckpoint(file2, { monitor: 'loss', saveBestOnly: true })] });
    expect(io.loadWithMetadata(file2).metadata.epoch).toBe('3');
  });
});

describe('progressBar', () => {
  function capture(isTTY: boolean) {
    const chunks: string[] = [];
    return { stream: { isTTY, write: (s: string) => { chunks.push(s); return true; } } as unknown as NodeJS.WriteStream, chunks };
  }

  it('prints one line per epoch when not a TTY: loss, metrics, validation, samples per second', async () => {
    const { x, y } = data();
    const m = model();
    const { stream, chunks } = capture(false);
    await m.fit(x, y, { epochs: 2, batchSize: 8, verbose: 1, validationSplit: 0.25, callbacks: [callbacks.progressBar({ stream })] });
    const text = chunks.join('');
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^Epoch 1\/2 5\/5 \[=+\] \d+s - loss \d\.\d{4} - accuracy \d\.\d{4} - val_loss \d\.\d{4} - val_accuracy \d\.\d{4} - \d+ samples\/s$/);
    expect(lines[1]).toMatch(/^Epoch 2\/2 /);
    expect(text).not.toContain('\r');
  });

  it('redraws in place on a TTY (with an ETA while running), and verbose 2 forces one line per epoch', async () => {
    const { x, y } = data(400);
    const m = model();
    const { stream, chunks } = capture(true);
    // Slow batches so that the bar redraws (at most every 100 ms).
    const slow = { onBatchEnd: () => { const t = Date.now(); while (Date.now() - t < 15); } };
    await m.fit(x, y, { epochs: 1, batchSize: 20, verbose: 1, callbacks: [slow, callbacks.progressBar({ stream })] });
    const text = chunks.join('');
    expect(text.startsWith('\r')).toBe(true);
    expect(text).toMatch(/ETA \d+s/);
    expect(text.trim().split('\n')).toHaveLength(1);
    const two = capture(true);
    await m.fit(x, y, { epochs: 2, batchSize: 100, verbose: 2, callbacks: [callbacks.progressBar({ stream: two.stream, verbose: 2 })] });
    expect(two.chunks.join('')).not.toContain('\r');
    expect(two.chunks).toHaveLength(2);
  });

  it('verbose 0 adds no bar; verbose 1 adds the default bar on stdout', async () => {
    const { x, y } = data(16);
    const m = model();
    const write = process.stdout.write;
    const out: string[] = [];
    process.stdout.write = ((s: string) => { out.push(String(s)); return true; }) as typeof process.stdout.write;
    try {
      await m.fit(x, y, { epochs: 1, verbose: 0 });
      expect(out.join('')).toBe('');
      await m.fit(x, y, { epochs: 1 });
    } finally {
      process.stdout.write = write;
    }
    expect(out.join('')).toMatch(/Epoch 1\/1 .*loss/);
  });
});
