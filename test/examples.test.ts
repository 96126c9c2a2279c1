// End-to-end: the example networks train on real data to a clear bar.
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import { trainMnist } from '../examples/mnist-cnn';
import { trainMlp } from '../examples/mlp';

describe('examples', () => {
  it('MNIST CNN (system 2): one epoch of Adam reaches > 90% test accuracy', async () => {
    const { testAccuracy, losses } = await trainMnist({ epochs: 1, verbose: false, save: null, seed: 3 });
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    expect(testAccuracy).toBeGreaterThan(0.9);
  });

  it('MLP with sigmoid units (system 1) learns the digits by plain gradient descent', () => {
    const r = trainMlp({ epochs: 4, verbose: false });
    expect(r.lastLoss).toBeLessThan(r.firstLoss * 0.6);
    expect(r.testAccuracy).toBeGreaterThan(0.8);
  });

  it('the Keras variant of system 2 on 32x32x3 inputs: shapes and training', () => {
    // Conv2D(32, 3x3, relu) -> MaxPool -> Flatten -> Dense(64, relu) -> Dense(10)
    const { nn } = tsm;
    tsm.manualSeed(7);
    const model = new nn.Sequential(
      new nn.Conv2d(3, 32, 3), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(),
      new nn.Linear(32 * 15 * 15, 64), new nn.ReLU(), new nn.Linear(64, 10),
    );
    expect(Object.keys(model.stateDict())).toEqual(['0.weight', '0.bias', '4.weight', '4.bias', '6.weight', '6.bias']);
    // A learnable synthetic task: the class is which of 10 colour patterns fills a random quadrant.
    const n = 160;
    const xs = new Float32Array(n * 3 * 32 * 32), ys = new Int32Array(n);
    const noise = tsm.rand([n * 3 * 32 * 32])._data as Float32Array;
    for (let i = 0; i < n; i++) {
      const c = i % 10;
      ys[i] = c;
      for (let ch = 0; ch < 3; ch++)
        for (let p = 0; p < 1024; p++) {
          const on = ((c >> ch) & 1) === 1 || (c >= 8 && (p & 1) === 0);
          xs[((i * 3 + ch) * 1024) + p] = (on ? 0.8 : 0.1) + 0.2 * noise[((i * 3 + ch) * 1024) + p];
        }
    }
    const x = tsm.tensor(xs, { shape: [n, 3, 32, 32] }), y = tsm.tensor(ys);
    expect(model.forward(x.slice(0, 0, 2)).shape).toEqual([2, 10]);
    const opt = new tsm.optim.Adam(model.parameters(), { lr: 1e-3 });
    const losses: number[] = [];
    for (let epoch = 0; epoch < 15; epoch++) {
      losses.push(tsm.tidy(() => {
        opt.zeroGrad();
        const loss = tsm.F.crossEntropy(model.forward(x), y);
        loss.backward();
        opt.step();
        return loss.item();
      }));
    }
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    const acc = tsm.noGrad(() => tsm.tidy(() => {
      const p = model.forward(x).argmax(1)._data;
      let c = 0;
      for (let i = 0; i < n; i++) if (p[i] === ys[i]) c++;
      return c / n;
    }));
    expect(acc).toBeGreaterThan(0.9);
  });
});
