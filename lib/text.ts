// tsm.text: vocabularies (characters, words), a simple word tokenizer, padding/truncation to int32
// tensors, and batching of token sequences for language modelling and classification.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkBool, checkInt, describe } from './check';
import { tensor } from './ops';
import type { Tensor } from './tensor';

/** The padding token added by Vocab build() (index 0 with specials). */
export const PAD_TOKEN = '<pad>';
/** The unknown token added by Vocab build() (index 1 with specials); tokens not in the vocabulary encode as it. */
export const UNK_TOKEN = '<unk>';

/** Options of CharVocab.build and WordVocab.build. */
export interface VocabOptions {
  /** Tokens seen fewer times are left out (they encode as the unknown token). Default 1. */
  minFreq?: number;
  /** At most this many tokens in all, specials included (the most frequent are kept). */
  maxSize?: number;
  /** Add the padding (index 0) and unknown (index 1) tokens. Default true. */
  specials?: boolean;
}

/** A vocabulary as plain JSON (toJSON(), save(); read back by fromJSON(), load()). */
export interface VocabJSON {
  /** Which class wrote it: 'char' (CharVocab) or 'word' (WordVocab). */
  kind: 'char' | 'word';
  /** The tokens in index order. */
  tokens: string[];
  /** The padding token, or null when there is none. */
  padToken: string | null;
  /** The unknown token, or null when there is none. */
  unkToken: string | null;
}

/** Token <-> index mapping shared by CharVocab and WordVocab. */
abstract class Vocab {
  /** The tokens in index order (frozen). */
  readonly tokens: readonly string[];
  /** Index of the padding token, or -1 when the vocabulary has none. */
  readonly padIndex: number;
  /** Index of the unknown token, or -1 when the vocabulary has none (unknown tokens then throw). */
  readonly unkIndex: number;
  private readonly index: Map<string, number>;
  /** 'char' for CharVocab, 'word' for WordVocab (the `kind` of toJSON()). */
  abstract readonly kind: 'char' | 'word';

  protected constructor(tokens: readonly string[], padToken: string | null, unkToken: string | null) {
    if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string'))
      throw new TypeError(`Vocab: tokens must be an array of strings, got ${describe(tokens)}`);
    this.tokens = Object.freeze(tokens.slice());
    this.index = new Map();
    tokens.forEach((t, i) => {
      if (this.index.has(t)) throw new RangeError(`Vocab: token ${JSON.stringify(t)} appears twice`);
      this.index.set(t, i);
    });
    this.padIndex = padToken === null ? -1 : this.index.get(padToken) ?? -1;
    this.unkIndex = unkToken === null ? -1 : this.index.get(unkToken) ?? -1;
  }

  /** Number of tokens, specials included. */
  get size(): number { return this.tokens.length; }

  /** The tokens of a text (characters for CharVocab, tokenize() words for WordVocab). */
  abstract split(text: string): string[];
  /** Joins decoded tokens into text ('' between characters, ' ' between words). */
  protected abstract join(tokens: string[]): string;

  /** Index of one token (the unknown token's index when it is not in the vocabulary). */
  indexOf(token: string): number {
    const i = this.index.get(token);
    if (i !== undefined) return i;
    if (this.unkIndex < 0) throw new RangeError(`${this.constructor.name}: token ${JSON.stringify(token)} is not in the vocabulary (and it has no unknown token)`);
    return this.unkIndex;
  }

  /** True when `token` is in the vocabulary (the unknown token's fallback does not count). */
  has(token: string): boolean { return this.index.has(token); }

  /** Text -> token indices. */
  encode(text: string): Int32Array {
    if (typeof text !== 'string') throw new TypeError(`${this.constructor.name}.encode: text must be a string, got ${describe(text)}`);
    const toks = this.split(text);
    const out = new Int32Array(toks.length);
    for (let i = 0; i < toks.length; i++) out[i] = this.indexOf(toks[i]);
    return out;
  }

  /** Token indices -> text; padding is skipped unless keepPadding. */
  decode(ids: ArrayLike<number> | Tensor, opts: { keepPadding?: boolean } = {}): string {
    const arr: ArrayLike<number> = isTensorLike(ids) ? (ids.dataSync() as ArrayLike<number>) : ids;
    const out: string[] = [];
    for (let i = 0; i < arr.length; i++) {
      const id = arr[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length)
        throw new RangeError(`${this.constructor.name}.decode: index ${id} at position ${i} is out of range [0, ${this.tokens.length})`);
      if (id === this.padIndex && !opts.keepPadding) continue;
      out.push(this.tokens[id]);
    }
    return this.join(out);
  }

  /** The vocabulary as plain JSON (see VocabJSON). */
  toJSON(): VocabJSON {
    return {
      kind: this.kind, tokens: this.tokens.slice(),
      padToken: this.padIndex >= 0 ? this.tokens[this.padIndex] : null,
      unkToken: this.unkIndex >= 0 ? this.tokens[this.unkIndex] : null,
    };
  }

  /** Writes the vocabulary as JSON (atomically: a temporary file renamed into place). */
  save(file: string): void {
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(this.toJSON()));
    fs.renameSync(tmp, file);
  }
}

function isTensorLike(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && typeof (v as Tensor).dataSync === 'function';
}

function countTokens(op: string, texts: string | string[], split: (t: string) => string[]): Map<string, number> {
  const list = typeof texts === 'string' ? [texts] : texts;
  if (!Array.isArray(list) || list.some((t) => typeof t !== 'string'))
    throw new TypeError(`${op}: expected a string or an array of strings, got ${describe(texts)}`);
  const counts = new Map<string, number>();
  for (const t of list) for (const tok of split(t)) counts.set(tok, (counts.get(tok) ?? 0) + 1);
  return counts;
}

/** Tokens by decreasing frequency (ties in code-point order), after minFreq and maxSize. */
function selectTokens(op: string, counts: Map<string, number>, opts: VocabOptions): { tokens: string[]; specials: boolean } {
  const minFreq = checkInt(op, 'minFreq', opts.minFreq ?? 1, 1);
  const specials = checkBool(op, 'specials', opts.specials ?? true);
  const nSpecial = specials ? 2 : 0;
  const maxSize = opts.maxSize === undefined ? Infinity : checkInt(op, 'maxSize', opts.maxSize, nSpecial + 1);
  const sorted = [...counts.entries()]
    .filter(([t, n]) => n >= minFreq && (!specials || (t !== PAD_TOKEN && t !== UNK_TOKEN)))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, maxSize - nSpecial)
    .map(([t]) => t);
  return { tokens: specials ? [PAD_TOKEN, UNK_TOKEN, ...sorted] : sorted, specials };
}

/** Characters (Unicode code points) <-> indices. */
export class CharVocab extends Vocab {
  readonly kind = 'char' as const;
  constructor(tokens: readonly string[], padToken: string | null = PAD_TOKEN, unkToken: string | null = UNK_TOKEN) {
    super(tokens, padToken, unkToken);
  }
  /** Builds from text(s): padding is index 0 and unknown index 1 (unless specials: false). */
  static build(texts: string | string[], opts: VocabOptions = {}): CharVocab {
    const { tokens, specials } = selectTokens('CharVocab.build', countTokens('CharVocab.build', texts, splitChars), opts);
    return specials ? new CharVocab(tokens) : new CharVocab(tokens, null, null);
  }
  /** A CharVocab from toJSON() output. Throws TypeError unless kind is 'char'. */
  static fromJSON(j: VocabJSON): CharVocab {
    if (!j || j.kind !== 'char') throw new TypeError(`CharVocab.fromJSON: expected {kind: 'char', tokens, ...}, got ${describe(j)}`);
    return new CharVocab(j.tokens, j.padToken, j.unkToken);
  }
  /** Reads a vocabulary written by save(). Throws TypeError unless kind is 'char'. */
  static load(file: string): CharVocab {
    return CharVocab.fromJSON(JSON.parse(fs.readFileSync(file, 'utf8')));
  }
  split(text: string): string[] { return splitChars(text); }
  protected join(tokens: string[]): string { return tokens.join(''); }
}

/** Words (from tokenize()) <-> indices. */
export class WordVocab extends Vocab {
  readonly kind = 'word' as const;
  constructor(tokens: readonly string[], padToken: string | null = PAD_TOKEN, unkToken: string | null = UNK_TOKEN) {
    super(tokens, padToken, unkToken);
  }
  /** Builds from text(s) split by tokenize(): padding is index 0 and unknown index 1 (unless specials: false). */
  static build(texts: string | string[], opts: VocabOptions = {}): WordVocab {
    const { tokens, specials } = selectTokens('WordVocab.build', countTokens('WordVocab.build', texts, tokenize), opts);
    return specials ? new WordVocab(tokens) : new WordVocab(tokens, null, null);
  }
  /** A WordVocab from toJSON() output. Throws TypeError unless kind is 'word'. */
  static fromJSON(j: VocabJSON): WordVocab {
    if (!j || j.kind !== 'word') throw new TypeError(`WordVocab.fromJSON: expected {kind: 'word', tokens, ...}, got ${describe(j)}`);
    return new WordVocab(j.tokens, j.padToken, j.unkToken);
  }
  /** Reads a vocabulary written by save(). Throws TypeError unless kind is 'word'. */
  static load(file: string): WordVocab {
    return WordVocab.fromJSON(JSON.parse(fs.readFileSync(file, 'utf8')));
  }
  split(text: string): string[] { return tokenize(text); }
  protected join(tokens: string[]): string { return tokens.join(' '); }
}

function splitChars(text: string): string[] {
  return Array.from(text);
}

/** Lower-cases and splits on anything that is not a letter: "Don't STOP!" -> ['don', 't', 'stop']. */
export function tokenize(text: string): string[] {
  if (typeof text !== 'string') throw new TypeError(`tokenize: text must be a string, got ${describe(text)}`);
  return text.toLowerCase().split(/[^\p{L}]+/u).filter((w) => w.length > 0);
}

/** Options of padSequences (and of classificationBatches, which pads each batch). */
export interface PadOptions {
  /** Length of every row; default the longest sequence. */
  maxLen?: number;
  /** Where padding goes: 'pre' (default, as Keras) or 'post'. */
  padding?: 'pre' | 'post';
  /** Which end is cut from longer sequences: 'pre' (default, as Keras) or 'post'. */
  truncating?: 'pre' | 'post';
  /** The padding value. Default 0 (the vocabularies' padding index). */
  value?: number;
}

/** Pads/truncates sequences into one int32 tensor of shape [n, maxLen] (Keras pad_sequences). */
export function padSequences(seqs: ArrayLike<number>[], opts: PadOptions = {}): Tensor {
  const op = 'padSequences';
  if (!Array.isArray(seqs)) throw new TypeError(`${op}: expected an array of sequences, got ${describe(seqs)}`);
  const padding = opts.padding ?? 'pre', truncating = opts.truncating ?? 'pre';
  if (padding !== 'pre' && padding !== 'post') throw new RangeError(`${op}: padding must be 'pre' or 'post', got ${describe(padding)}`);
  if (truncating !== 'pre' && truncating !== 'post') throw new RangeError(`${op}: truncating must be 'pre' or 'post', got ${describe(truncating)}`);
  const value = checkInt(op, 'value', opts.value ?? 0, -2147483648, 2147483647);
  let maxLen = 0;
  for (const s of seqs) {
    if (s === null || typeof s !== 'object' || typeof s.length !== 'number') throw new TypeError(`${op}: every sequence must be an array of integers, got ${describe(s)}`);
    maxLen = Math.max(maxLen, s.length);
  }
  if (opts.maxLen !== undefined) maxLen = checkInt(op, 'maxLen', opts.maxLen, 1);
  const out = new Int32Array(seqs.length * maxLen).fill(value);
  seqs.forEach((s, r) => {
    const n = Math.min(s.length, maxLen);
    const from = truncating === 'pre' ? s.length - n : 0;
    const to = padding === 'pre' ? maxLen - n : 0;
    for (let i = 0; i < n; i++) {
      const v = s[from + i];
      if (!Number.isInteger(v)) throw new TypeError(`${op}: sequence ${r} holds a non-integer ${describe(v)}`);
      out[r * maxLen + to + i] = v;
    }
  });
  return tensor(out, { shape: [seqs.length, maxLen] });
}

/** A small seeded generator (mulberry32) for reproducible shuffles. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded permutation of [0, n) (Fisher-Yates). */
export function shuffledIndices(n: number, seed: number): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  const rnd = seededRandom(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = idx[i]; idx[i] = idx[j]; idx[j] = t;
  }
  return idx;
}

/** Options of lmBatches. */
export interface LmBatchOptions {
  /** Tokens per input (and target) sequence. */
  seqLen: number;
  /** Windows per batch (the last batch may be smaller). */
  batchSize: number;
  /** Shuffle the windows (seeded). Default false: windows in text order. */
  shuffle?: boolean;
  /** Seed of the shuffle. Default 0. */
  seed?: number;
  /** Drop the last, smaller batch. Default false. */
  dropLast?: boolean;
  /** Tensors (B, seqLen) when true (default), (seqLen, B) when false. */
  batchFirst?: boolean;
}

/** One batch of lmBatches. */
export interface LmBatch {
  /** Inputs: int32 token indices, (B, seqLen) (or (seqLen, B) when batchFirst is false). */
  x: Tensor;
  /** Targets: x shifted by one token, same shape. */
  y: Tensor;
}

/** Number of seqLen+1 windows of a token stream cut with stride seqLen (consecutive windows share one token). */
export function lmWindowCount(n: number, seqLen: number): number {
  return n < seqLen + 1 ? 0 : Math.floor((n - 1) / seqLen);
}

/**
 * Language-model batches from one token stream: the stream is cut into contiguous windows of
 * seqLen + 1 tokens (stride seqLen), each giving an input (its first seqLen tokens) and a target
 * (the same shifted by one). Yields {x, y}, int32 tensors of shape (B, seqLen) (or (seqLen, B)).
 */
export function* lmBatches(ids: ArrayLike<number>, opts: LmBatchOptions): Generator<LmBatch> {
  const op = 'lmBatches';
  const seqLen = checkInt(op, 'seqLen', opts.seqLen, 1), batchSize = checkInt(op, 'batchSize', opts.batchSize, 1);
  const nw = lmWindowCount(ids.length, seqLen);
  if (nw === 0) throw new RangeError(`${op}: ${ids.length} tokens are too few for one window of seqLen + 1 = ${seqLen + 1}`);
  const order = opts.shuffle ? shuffledIndices(nw, opts.seed ?? 0) : Int32Array.from({ length: nw }, (_, i) => i);
  const batchFirst = opts.batchFirst ?? true;
  for (let s = 0; s < nw; s += batchSize) {
    const B = Math.min(batchSize, nw - s);
    if (B < batchSize && opts.dropLast) break;
    const x = new Int32Array(B * seqLen), y = new Int32Array(B * seqLen);
    for (let b = 0; b < B; b++) {
      const start = order[s + b] * seqLen;
      for (let t = 0; t < seqLen; t++) {
        const k = batchFirst ? b * seqLen + t : t * B + b;
        x[k] = ids[start + t];
        y[k] = ids[start + t + 1];
      }
    }
    const shape = batchFirst ? [B, seqLen] : [seqLen, B];
    yield { x: tensor(x, { shape }), y: tensor(y, { shape }) };
  }
}

/** Options of classificationBatches; the PadOptions apply to each batch separately. */
export interface ClassificationBatchOptions extends PadOptions {
  /** Samples per batch (the last batch may be smaller). */
  batchSize: number;
  /** Shuffle the samples (seeded). Default false: samples in order. */
  shuffle?: boolean;
  /** Seed of the shuffle. Default 0. */
  seed?: number;
  /** Drop the last, smaller batch. Default false. */
  dropLast?: boolean;
  /** dtype of the labels: 'float32' (default, for binary cross-entropy) or 'int32' (class indices). */
  labelDType?: 'float32' | 'int32';
}

/** One batch of classificationBatches. */
export interface ClassificationBatch {
  /** Padded sequences: int32 (B, maxLen). */
  x: Tensor;
  /** Labels (B): float32, or int32 with labelDType 'int32'. */
  y: Tensor;
  /** Indices (into seqs and labels) of the samples in the batch. */
  indices: Int32Array;
}

/**
 * Batches of (padded sequence, label) pairs: yields {x: int32 (B, maxLen), y: (B)} and the indices
 * of the samples in the batch.
 */
export function* classificationBatches(seqs: ArrayLike<number>[], labels: ArrayLike<number>,
                                       opts: ClassificationBatchOptions): Generator<ClassificationBatch> {
  const op = 'classificationBatches';
  if (!Array.isArray(seqs)) throw new TypeError(`${op}: expected an array of sequences, got ${describe(seqs)}`);
  if (labels.length !== seqs.length) throw new RangeError(`${op}: ${seqs.length} sequences but ${labels.length} labels`);
  const batchSize = checkInt(op, 'batchSize', opts.batchSize, 1);
  const n = seqs.length;
  const order = opts.shuffle ? shuffledIndices(n, opts.seed ?? 0) : Int32Array.from({ length: n }, (_, i) => i);
  const dtype = opts.labelDType ?? 'float32';
  for (let s = 0; s < n; s += batchSize) {
    const B = Math.min(batchSize, n - s);
    if (B < batchSize && opts.dropLast) break;
    const indices = order.slice(s, s + B);
    const batch = Array.from(indices, (i) => seqs[i]);
    const x = padSequences(batch, opts);
    const lab = dtype === 'int32' ? Int32Array.from(indices, (i) => labels[i]) : Float32Array.from(indices, (i) => labels[i]);
    yield { x, y: tensor(lab, { shape: [B] }), indices };
  }
}
