// The MLP example (system 1) with --device cuda, on the emulated device of helpers/cuda-emulator.ts:
// the addon's CUDA entry points are replaced by bounds-checked host buffers and the CPU kernels of
// the same contract. This checks the example's device plumbing (model.to before the optimizer,
// batches moved after the gather, the loss on the device or moved back for cross-entropy, the
// prediction read back) against the same run on the CPU; the CUDA kernels themselves are checked
// only by test/cuda-tensor.test.ts on a GPU.
import { afterAll, describe, expect, it } from 'vitest';
import { installCudaEmulator } from './helpers/cuda-emulator';
import { trainMlp } from '../examples/mlp';

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
});
