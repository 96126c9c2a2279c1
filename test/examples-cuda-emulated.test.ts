// The MLP (system 1) and CNN (system 2) examples with --device cuda, on the emulated device of helpers/cuda-emulator.ts:
// the addon's CUDA entry points are replaced by bounds-checked host buffers and the CPU kernels of
// the same contract. This checks the example's device plumbing (model.to before the optimizer,
// batches moved after the gather, the loss on the device or moved back for cross-entropy, the
// prediction read back) against the same run on the CPU; the CUDA kernels themselves are checked
// only by test/cuda-tensor.test.ts on a GPU.
import { afterAll, describe, expect, it } from 'vitest';
import { installCudaEmulator } from './helpers/cuda-emulator';
import { trainMlp } from '../examples/mlp';
import { trainMnist } from '../examples/mnist-cnn';

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
