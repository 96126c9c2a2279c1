// tsm.text: vocabularies, tokenizer, padding and batching.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CharVocab, WordVocab, classificationBatches, lmBatches, lmWindowCount, padSequences, shuffledIndices, tokenize,
} from '../lib/text';

describe('tokenize', () => {
  it('lower-cases and splits on non-letters', () => {
    expect(tokenize("Don't STOP!  Café-au-lait, 42 times\n")).toEqual(['don', 't', 'stop', 'café', 'au', 'lait', 'times']);
    expect(tokenize('')).toEqual([]);
    expect(() => tokenize(3 as unknown as string)).toThrow(TypeError);
  });
});

describe('CharVocab', () => {
  it('builds by frequency with padding 0 and unknown 1, encodes and decodes', () => {
    const v = CharVocab.build('abracadabra');
    expect(v.tokens).toEqual(['<pad>', '<unk>', 'a', 'b', 'r', 'c', 'd']);
    expect(v.padIndex).toBe(0);
    expect(v.unkIndex).toBe(1);
    expect(Array.from(v.encode('abz'))).toEqual([2, 3, 1]);
    expect(v.decode([2, 3, 0, 4])).toBe('abr');
    expect(v.decode([2, 0], { keepPadding: true })).toBe('a<pad>');
    expect(() => v.decode([99])).toThrow(RangeError);
  });
  it('minFreq, maxSize, no specials', () => {
    expect(CharVocab.build('aaabbc', { minFreq: 2 }).tokens).toEqual(['<pad>', '<unk>', 'a', 'b']);
    expect(CharVocab.build('aaabbc', { maxSize: 3 }).tokens).toEqual(['<pad>', '<unk>', 'a']);
    const v = CharVocab.build('aab', { specials: false });
    expect(v.tokens).toEqual(['a', 'b']);
    expect(() => v.encode('z')).toThrow(/not in the vocabulary/);
  });
  it('saves and loads as JSON', () => {
    const v = CharVocab.build(['hello', 'world']);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-vocab-')), 'v.json');
    v.save(file);
    const w = CharVocab.load(file);
    expect(w.tokens).toEqual(v.tokens);
    expect(Array.from(w.encode('low'))).toEqual(Array.from(v.encode('low')));
    expect(() => WordVocab.load(file)).toThrow(TypeError);
  });
});

describe('WordVocab', () => {
  it('builds from texts, maps unknown words to <unk>', () => {
    const v = WordVocab.build(['The cat sat', 'the cat ran; the end'], { minFreq: 2 });
    expect(v.tokens).toEqual(['<pad>', '<unk>', 'the', 'cat']);
    expect(Array.from(v.encode('The dog and the CAT'))).toEqual([2, 1, 1, 2, 3]);
    expect(v.decode(v.encode('the cat'))).toBe('the cat');
    const w = WordVocab.fromJSON(JSON.parse(JSON.stringify(v)));
    expect(w.tokens).toEqual(v.tokens);
    expect(w.size).toBe(4);
  });
});

describe('padSequences', () => {
  const seqs = [[1, 2, 3], [4], [5, 6, 7, 8, 9]];
  it('pads and truncates at the front by default (Keras)', () => {
    const t = padSequences(seqs, { maxLen: 4 });
    expect(t.dtype).toBe('int32');
    expect(t.toArray()).toEqual([[0, 1, 2, 3], [0, 0, 0, 4], [6, 7, 8, 9]]);
  });
  it('post padding and truncation, custom value, default length', () => {
    expect(padSequences(seqs, { maxLen: 4, padding: 'post', truncating: 'post', value: -1 }).toArray())
      .toEqual([[1, 2, 3, -1], [4, -1, -1, -1], [5, 6, 7, 8]]);
    expect(padSequences(seqs).shape).toEqual([3, 5]);
    expect(() => padSequences(seqs, { padding: 'middle' as 'pre' })).toThrow(RangeError);
    expect(() => padSequences([[1.5]])).toThrow(TypeError);
  });
});

describe('batching', () => {
  it('language-model windows of seqLen + 1, targets shifted by one', () => {
    const ids = Int32Array.from({ length: 23 }, (_, i) => i);
    expect(lmWindowCount(23, 5)).toBe(4);
    const batches = [...lmBatches(ids, { seqLen: 5, batchSize: 3 })];
    expect(batches.length).toBe(2);
    expect(batches[0].x.toArray()).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]);
    expect(batches[0].y.toArray()).toEqual([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]]);
    expect(batches[1].x.shape).toEqual([1, 5]);
    expect([...lmBatches(ids, { seqLen: 5, batchSize: 3, dropLast: true })].length).toBe(1);
    const tm = [...lmBatches(ids, { seqLen: 5, batchSize: 2, batchFirst: false })][0];
    expect(tm.x.shape).toEqual([5, 2]);
    expect((tm.x.toArray() as number[][])[0]).toEqual([0, 5]);
    const sh = [...lmBatches(ids, { seqLen: 5, batchSize: 4, shuffle: true, seed: 3 })][0];
    const firsts = (sh.x.toArray() as number[][]).map((r) => r[0]).sort((a, b) => a - b);
    expect(firsts).toEqual([0, 5, 10, 15]);
    expect(() => [...lmBatches(ids, { seqLen: 30, batchSize: 1 })]).toThrow(/too few/);
  });
  it('classification batches: padded, labelled, seeded shuffle', () => {
    const seqs = [[1], [2, 2], [3, 3, 3], [4, 4, 4, 4], [5]];
    const labels = [0, 1, 0, 1, 1];
    const all = [...classificationBatches(seqs, labels, { batchSize: 2, maxLen: 3, shuffle: true, seed: 1 })];
    expect(all.map((b) => b.x.shape[0])).toEqual([2, 2, 1]);
    const seen = all.flatMap((b) => Array.from(b.indices)).sort();
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    for (const b of all) {
      expect(b.y.dtype).toBe('float32');
      const xs = b.x.toArray() as number[][];
      b.indices.forEach((i, r) => {
        expect(b.y.dataSync()[r]).toBe(labels[i]);
        expect(xs[r][2]).toBe(i + 1);
      });
    }
    expect(Array.from(shuffledIndices(5, 1))).toEqual(Array.from(shuffledIndices(5, 1)));
    expect(() => [...classificationBatches(seqs, [1], { batchSize: 2 })]).toThrow(/labels/);
  });
});
