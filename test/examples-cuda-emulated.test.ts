// Every example with --device cuda (MLP, CNN, char LSTM LM, Transformer LM, the two spam classifiers
// and the two Keras-style examples through fit/evaluate/predict), on the emulated device of helpers/cuda-emulator.ts:
// the addon's CUDA entry points are replaced by bounds-checked host buffers and the CPU kernels of
// the same contract. This checks the example's device plumbing (model.to before the optimizer,
// batches moved after the gather, the loss on the device or moved back for cross-entropy, the
// prediction read back) against the same run on the CPU; the CUDA kernels themselves are checked
// only by test/cuda-tensor.test.ts on a GPU.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { installCudaEmulator } from './helpers/cuda-emulator';
import { trainMlp } from '../examples/mlp';
import { trainMnist } from '../examples/mnist-cnn';
import { trainCharLm } from '../examples/char-lm-lstm';
import { trainTransformerLm } from '../examples/transformer-lm';
import { trainSpamLstm } from '../examples/spam-lstm';
import { trainSpamEmbedding } from '../examples/spam-embedding';
import { trainMnistKeras } from '../examples/mnist-keras';
import { trainSpamKeras } from '../examples/spam-keras';
import { DEVICE_READ_EVERY } from '../lib/training';

const emulator = installCudaEmulator();
afterAll(() => emulator.uninstall());

describe('examples on an emulated CUDA device', () => {
  for (const loss of ['mse', 'ce'] as const) {
    it(`mlp.ts --device cuda --loss ${loss} trains as on the CPU`, () => {
      const opts = { epochs: 1, loss, verbose: false, batchSize: 128 };
      const before = emulator.calls.get('cudaGemmEx') ?? 0;
      const gpu = trainMlp({ ...opts, device: 'cuda' });
      expect(emulator.calls.get('cudaGemmEx') ?? 0).toBeGreaterThan(before); // the layers ran on the device
      const cpu = trainMlp(opts);
      expect(gpu.firstLoss).toBeCloseTo(cpu.firstLoss, 5);
      expect(Math.abs(gpu.testAccuracy - cpu.testAccuracy)).toBeLessThanOrEqual(0.002);
      expect(gpu.lastLoss).toBeLessThan(loss === 'mse' ? 0.1 : 2.5);
    });
  }

  for (const optimizer of ['adam', 'sgd'] as const) {
    it(`mnist-cnn.ts --device cuda --optimizer ${optimizer} trains as on the CPU`, async () => {
      const opts = { epochs: 1, limit: 320, batchSize: 64, testLimit: 500, optimizer, verbose: false, save: null, seed: 3 };
      const names = ['cudaConv2dForward', 'cudaConv2dBackwardData', 'cudaConv2dBackwardWeight', 'cudaMaxPool2dForward',
        'cudaMaxPool2dBackward', 'cudaCrossEntropyForward', 'cudaCrossEntropyBackward', optimizer === 'adam' ? 'cudaAdamStep' : 'cudaSgdStep'];
      const before = names.map((n) => emulator.calls.get(n) ?? 0);
      const gpu = await trainMnist({ ...opts, device: 'cuda' });
      // Every layer, the loss and the update ran on the device, once or more per step.
      names.forEach((n, i) => expect((emulator.calls.get(n) ?? 0) - before[i], n).toBeGreaterThanOrEqual(5));
      for (const p of gpu.model.parameters()) expect(p.device).toBe('cuda:0');
      const cpu = await trainMnist(opts);
      expect(gpu.losses.length).toBe(5);
      gpu.losses.forEach((l, i) => expect(Math.abs(l - cpu.losses[i]), `step ${i}: ${l} vs ${cpu.losses[i]}`)
        .toBeLessThanOrEqual(1e-4 * Math.abs(cpu.losses[i])));
      expect(Math.abs(gpu.testAccuracy - cpu.testAccuracy)).toBeLessThanOrEqual(0.004);
      expect(gpu.losses[4]).toBeLessThan(gpu.losses[0]);
    }, 30000);
  }
});

// Device-to-host copies per training step. Every read back is a cudaDownload on the emulated device
// (dataSync, item, .cpu() all end there), and each one synchronises the GPU, so a loop that reads
// every gradient or every batch back would starve it. The bounds, per optimizer step:
//  - spam-embedding: 1 (the loss for the progress bar);
//  - char-lm-lstm, transformer-lm: 2 (clipGradNorm's total norm — one read for all gradients — and
//    the loss);
//  - spam-lstm: 2 (clipGradNorm's norm, and one array holding the batch's probabilities and the
//    loss, for the accuracy and the progress bar);
//  - the Keras examples through fit(): 0, except every DEVICE_READ_EVERY-th step: 2 (the loss sum and
//    the held predictions; the targets stay on the CPU).
const downloads = () => emulator.calls.get('cudaDownload') ?? 0;

/** An onStep hook that records the downloads of each step, and the per-step counts it saw. */
function perStep(): { onStep: () => void; counts: number[]; start(): void } {
  let last = 0;
  const counts: number[] = [];
  return { counts, start() { last = downloads(); }, onStep() { const d = downloads(); counts.push(d - last); last = d; } };
}

function expectCloseLosses(gpu: number[], cpu: number[], rel: number, n = gpu.length) {
  expect(gpu.length).toBe(cpu.length);
  for (let i = 0; i < n; i++)
    expect(Math.abs(gpu[i] - cpu[i]), `step ${i}: ${gpu[i]} vs ${cpu[i]}`).toBeLessThanOrEqual(rel * Math.abs(cpu[i]));
}

describe('the sequence and text examples on an emulated CUDA device', () => {
  it('char-lm-lstm.ts --device cuda trains as on the CPU, <= 2 reads back per step', async () => {
    const opts = { epochs: 1, steps: 6, hidden: 32, embed: 16, seqLen: 24, batchSize: 8, valChars: 3000, generate: 20, verbose: false, save: null, seed: 2 };
    const rec = perStep();
    const before = ['cudaLstmForward', 'cudaLstmBackward', 'cudaEmbeddingForward', 'cudaAdamStep'].map((n) => emulator.calls.get(n) ?? 0);
    rec.start();
    const gpu = await trainCharLm({ ...opts, device: 'cuda', onStep: rec.onStep });
    ['cudaLstmForward', 'cudaLstmBackward', 'cudaEmbeddingForward', 'cudaAdamStep'].forEach((n, i) =>
      expect((emulator.calls.get(n) ?? 0) - before[i], n).toBeGreaterThanOrEqual(6));
    for (const p of gpu.model.parameters()) expect(p.device).toBe('cuda:0');
    expect(rec.counts).toEqual([2, 2, 2, 2, 2, 2]);
    const cpu = await trainCharLm(opts);
    expect(Math.abs(gpu.losses[0] - cpu.losses[0])).toBeLessThanOrEqual(1e-5 * cpu.losses[0]);
    expectCloseLosses(gpu.losses, cpu.losses, 1e-4);
    expect(Math.abs(gpu.valPerplexity - cpu.valPerplexity)).toBeLessThanOrEqual(1e-3 * cpu.valPerplexity);
    expect(gpu.sample.length).toBe(20);
  }, 60000);

  it('transformer-lm.ts --device cuda trains as on the CPU, <= 2 reads back per step', () => {
    // dropout 0: with attention dropout the composed device path draws a different random stream
    // from the CPU's fused kernel (cuda/README.md), so the runs would not be comparable step by step.
    const opts = { steps: 5, batchSize: 4, seqLen: 32, dModel: 32, nhead: 2, numLayers: 2, dropout: 0, chars: 20000, valChars: 1000,
      generate: 8, verbose: false, seed: 1 };
    const rec = perStep();
    // Attention at this size takes the softmax path (lib/attention-cuda.ts): batched SGEMMs and the softmax kernel.
    const kernels = ['cudaSoftmaxForward', 'cudaLayerNormForward'];
    const before = kernels.map((n) => emulator.calls.get(n) ?? 0);
    rec.start();
    const gpu = trainTransformerLm({ ...opts, device: 'cuda', onStep: rec.onStep });
    kernels.forEach((n, i) => expect((emulator.calls.get(n) ?? 0) - before[i], n).toBeGreaterThanOrEqual(5));
    expect(rec.counts).toEqual([2, 2, 2, 2, 2]);
    const cpu = trainTransformerLm(opts);
    expect(Math.abs(gpu.losses[0] - cpu.losses[0])).toBeLessThanOrEqual(1e-5 * cpu.losses[0]);
    expectCloseLosses(gpu.losses, cpu.losses, 1e-4);
    expect(Math.abs(gpu.valPerplexity - cpu.valPerplexity)).toBeLessThanOrEqual(1e-3 * cpu.valPerplexity);
  }, 60000);

  it('transformer-lm.ts --device cuda with dropout trains (attention dropout on the composed device path)', () => {
    const gpu = trainTransformerLm({ steps: 3, batchSize: 2, seqLen: 16, dModel: 16, nhead: 2, numLayers: 1, dropout: 0.1, chars: 5000,
      valChars: 300, generate: 2, verbose: false, device: 'cuda' });
    expect(gpu.losses.every(Number.isFinite)).toBe(true);
  }, 30000);

  it('spam-lstm.ts --device cuda trains as on the CPU, <= 2 reads back per step', async () => {
    const opts = { epochs: 1, limit: 240, maxLen: 30, batchSize: 32, embed: 16, hidden: 16, verbose: false, save: null, seed: 4 };
    const rec = perStep();
    rec.start();
    const gpu = await trainSpamLstm({ ...opts, device: 'cuda', onStep: rec.onStep });
    expect(rec.counts.length).toBeGreaterThanOrEqual(5);
    for (const c of rec.counts) expect(c).toBe(2);
    const cpu = await trainSpamLstm(opts);
    expect(Math.abs(gpu.losses[0] - cpu.losses[0])).toBeLessThanOrEqual(1e-5 * cpu.losses[0]);
    expectCloseLosses(gpu.losses, cpu.losses, 1e-4);
    expect(Math.abs(gpu.test.accuracy - cpu.test.accuracy)).toBeLessThanOrEqual(0.021);
    expect(Math.abs(gpu.predictions[0] - cpu.predictions[0])).toBeLessThanOrEqual(1e-3);
  }, 60000);

  it('spam-embedding.ts --device cuda trains as on the CPU, 1 read back per step', async () => {
    const opts = { epochs: 1, limit: 300, maxLen: 60, batchSize: 32, verbose: false, save: null, seed: 5 };
    const rec = perStep();
    rec.start();
    const gpu = await trainSpamEmbedding({ ...opts, device: 'cuda', onStep: rec.onStep });
    expect(rec.counts.length).toBeGreaterThanOrEqual(5);
    for (const c of rec.counts) expect(c).toBe(1);
    const cpu = await trainSpamEmbedding(opts);
    expect(Math.abs(gpu.losses[0] - cpu.losses[0])).toBeLessThanOrEqual(1e-5 * cpu.losses[0]);
    expectCloseLosses(gpu.losses, cpu.losses, 1e-4);
    expect(Math.abs(gpu.test.accuracy - cpu.test.accuracy)).toBeLessThanOrEqual(0.021);
  }, 60000);
});

describe('the Keras-style examples (fit / evaluate / predict) on an emulated CUDA device', () => {
  /** A callback recording the downloads between consecutive onBatchEnd calls. */
  function batchReads() {
    let last = 0;
    const counts: number[] = [];
    return { counts, cb: { onTrainBegin() { last = downloads(); }, onBatchEnd() { const d = downloads(); counts.push(d - last); last = d; } } };
  }
  const readPattern = (n: number) => Array.from({ length: n }, (_, i) => ((i + 1) % DEVICE_READ_EVERY === 0 ? 2 : 0));

  it('mnist-keras.ts --device cuda fits as on the CPU, reads back once per 16 steps', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-mnist-keras-cuda-'));
    try {
      const opts = { epochs: 1, batchSize: 32, limit: 640, testLimit: 200, patience: 2, seed: 6, verbose: 0 as const, out };
      const rec = batchReads();
      const gpu = await trainMnistKeras({ ...opts, device: 'cuda', callbacks: [rec.cb] });
      expect(rec.counts).toEqual(readPattern(18)); // 576 training digits / 32
      for (const p of gpu.model.parameters()) expect(p.device).toBe('cuda:0');
      const cpu = await trainMnistKeras(opts);
      const h = (r: typeof gpu, k: string) => r.history.history[k][0];
      expect(Math.abs(h(gpu, 'loss') - h(cpu, 'loss'))).toBeLessThanOrEqual(1e-4 * h(cpu, 'loss'));
      expect(Math.abs(h(gpu, 'accuracy') - h(cpu, 'accuracy'))).toBeLessThanOrEqual(0.004);
      expect(Math.abs(h(gpu, 'val_loss') - h(cpu, 'val_loss'))).toBeLessThanOrEqual(1e-3 * h(cpu, 'val_loss'));
      expect(Math.abs(gpu.test.accuracy - cpu.test.accuracy)).toBeLessThanOrEqual(0.011);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 90000);

  it('spam-keras.ts --device cuda fits, evaluates and predicts as on the CPU', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-spam-keras-cuda-'));
    try {
      const opts = { epochs: 2, batchSize: 16, limit: 400, maxLen: 50, patience: 1, seed: 7, verbose: 0 as const, out };
      const rec = batchReads();
      const gpu = await trainSpamKeras({ ...opts, device: 'cuda', callbacks: [rec.cb] });
      const steps = gpu.history.params?.steps as number;
      expect(rec.counts.slice(0, steps)).toEqual(readPattern(steps));
      const cpu = await trainSpamKeras(opts);
      for (const k of ['loss', 'val_loss'])
        gpu.history.history[k].forEach((v, i) => expect(Math.abs(v - cpu.history.history[k][i]), k).toBeLessThanOrEqual(1e-3 * cpu.history.history[k][i]));
      expect(Math.abs(gpu.test.accuracy - cpu.test.accuracy)).toBeLessThanOrEqual(0.02);
      expect(gpu.confusion.flat().reduce((a, b) => a + b, 0)).toBe(cpu.confusion.flat().reduce((a, b) => a + b, 0));
      gpu.predictions.forEach((p, i) => expect(Math.abs(p - cpu.predictions[i])).toBeLessThanOrEqual(1e-3));
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 90000);
});
