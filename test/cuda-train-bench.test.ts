// bench/cuda-train.ts without a GPU: it stops with the "needs a CUDA GPU" message where there is none
// (called directly and through the runner), and its validation (one training step on the device
// against the same step on the CPU, from the same weights and batch) passes on the emulated device of
// helpers/cuda-emulator.ts for both models, at reduced sizes, and fails, naming the case, when a
// device kernel is wrong. The real GPU run (and PyTorch's losses and timing) is device call 10 of
// cuda/README.md.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchmark, CASES, caseBatch, checkLossPair, relDiff, scaled, validateCase } from '../bench/cuda-train';
import * as cuda from '../lib/cuda';
import { nativeAddon } from '../lib/native-api';
import { installCudaEmulator, type CudaEmulator } from './helpers/cuda-emulator';

const root = path.resolve(__dirname, '..');
const hasGpu = cuda.isAvailable();

describe('without a CUDA device', () => {
  it.skipIf(hasGpu)('benchmark.run fails with the clear message', () => {
    expect(() => benchmark.run({ threads: 1, quick: true, args: [] })).toThrow(/^cuda-train: needs a CUDA GPU: \S/);
  });

  it.skipIf(hasGpu)('npm run bench -- cuda-train names the reason and exits 1', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'node_modules/tsx/dist/cli.mjs'), 'bench/run.ts', 'cuda-train', '--no-record'],
      { cwd: root, encoding: 'utf8', env: { ...process.env, TSM_TORCH_PYTHON: '/nonexistent' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bench cuda-train FAILED: Error: cuda-train: needs a CUDA GPU: /);
  }, 60000);
});

describe('validation helpers', () => {
  it('relDiff and checkLossPair accept agreeing losses and refuse others and NaN', () => {
    expect(relDiff(2.0002, 2)).toBeCloseTo(1e-4, 10);
    expect(() => checkLossPair('c', [2.3, 2.1], [2.3, 2.1000001], 1e-4)).not.toThrow();
    expect(() => checkLossPair('c', [2.3, 2.2], [2.3, 2.1], 1e-4)).toThrow(/cuda-train: c: loss after the step differs: 2.2 vs 2.1/);
    expect(() => checkLossPair('c', [NaN, 2.1], [2.3, 2.1], 1e-4)).toThrow(/loss before the step differs/);
  });

  it('the batches are deterministic and in range', () => {
    const lm = scaled(CASES.lm, { batch: 2, seq: 8 });
    const a = caseBatch(lm), b = caseBatch(lm);
    expect(Array.from(a.x.dataSync())).toEqual(Array.from(b.x.dataSync()));
    for (const v of a.y.dataSync()) expect(v >= 0 && v < (lm.vocab as number)).toBe(true);
    expect(Array.from(a.y.dataSync()).slice(0, 7)).toEqual(Array.from(a.x.dataSync()).slice(1, 8)); // next-token targets
  });
});

describe('validation on the emulated device', () => {
  let emulator: CudaEmulator;
  const addon = nativeAddon() as unknown as Record<string, (...a: unknown[]) => unknown>;
  beforeAll(() => { emulator = installCudaEmulator(); });
  afterAll(() => emulator.uninstall());
  const cnn = scaled(CASES.cnn, { batch: 8 });
  const lm = scaled(CASES.lm, { batch: 2, seq: 16, layers: 2, dModel: 32, heads: 4 });

  it('passes for the CNN (SGD momentum) and the 2-layer LM (Adam) at small sizes', () => {
    for (const cfg of [cnn, lm]) {
      const { dev, losses, cpu } = validateCase(cfg, 'cuda');
      expect(losses[1]).toBeLessThan(losses[0]);
      expect(relDiff(losses[0], cpu[0])).toBeLessThanOrEqual(1e-5);
      for (const p of dev.model.parameters()) expect(p.device).toBe('cuda:0');
      dev.dispose();
    }
  }, 60000);

  it('fails, naming the case, when a device kernel is wrong', () => {
    const orig = addon.cudaSgdStep;
    // An SGD step that takes the step twice: the loss after the step differs from the CPU's.
    addon.cudaSgdStep = (...a: unknown[]) => { orig(...a); return orig(...a); };
    try {
      expect(() => validateCase(cnn, 'cuda')).toThrow(/cuda-train: MNIST CNN .*ours on cuda against ours on the CPU: loss after the step differs/);
    } finally {
      addon.cudaSgdStep = orig;
    }
  }, 60000);
});
