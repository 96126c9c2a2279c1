// End-to-end: the sequence-model examples train short runs on the real text data sets (npm
// devDependencies) and reach clear bars. These are CI-sized runs; the full runs (npx tsx
// examples/<name>.ts) go further (see each example's header).
//  - char-lm-lstm: 120 Adam steps of a 128-unit LSTM; validation perplexity must be well below the
//    unigram baseline (< 0.65 x), and sampling must be reproducible for a seed.
//  - spam-lstm: the full corpus cut to 100 words per mail, a 32-unit LSTM, 4 epochs (about 10 s);
//    test accuracy >= 92% and F1 >= 0.88, a bar it clears with margin (seeds 0 and 1 give 95.6% and
//    95.0%); the full run (200 words, 64 units, 4 epochs) reaches 96.3%.
//  - spam-embedding: the full corpus, 3 epochs of the embedding bag; test accuracy >= 95%.
import { describe, expect, it } from 'vitest';
import { generate, trainCharLm } from '../examples/char-lm-lstm';
import { trainSpamEmbedding } from '../examples/spam-embedding';
import { trainSpamLstm } from '../examples/spam-lstm';

describe('sequence examples (end to end)', () => {
  it('char-lm-lstm: validation perplexity well below the unigram baseline', async () => {
    const r = await trainCharLm({ steps: 120, hidden: 128, embed: 32, seqLen: 64, batchSize: 32, valChars: 20000,
      generate: 80, verbose: false });
    expect(r.steps).toBe(120);
    expect(r.unigramPerplexity).toBeGreaterThan(15);
    expect(r.valPerplexity).toBeLessThan(0.65 * r.unigramPerplexity);
    expect(r.sample.length).toBe(80);
    const again = generate(r.model, r.vocab, 'Call me ', 40, { temperature: 0.8, topK: 10, seed: 5 });
    expect(generate(r.model, r.vocab, 'Call me ', 40, { temperature: 0.8, topK: 10, seed: 5 })).toBe(again);
  }, 90_000);

  it('spam-lstm: held-out accuracy and F1 (short mails, small LSTM)', async () => {
    const r = await trainSpamLstm({ maxLen: 100, epochs: 4, embed: 32, hidden: 32, verbose: false });
    expect(r.test.accuracy).toBeGreaterThanOrEqual(0.92);
    expect(r.test.f1).toBeGreaterThanOrEqual(0.88);
    const total = r.test.confusion.flat().reduce((a, b) => a + b, 0);
    expect(total).toBe(1209);
    expect(r.predictions[0]).toBeGreaterThan(r.predictions[1]);
  }, 90_000);

  it('spam-embedding: >= 95% held-out accuracy on the full corpus', async () => {
    const r = await trainSpamEmbedding({ epochs: 3, verbose: false });
    expect(r.test.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(r.predictions[0]).toBeGreaterThan(r.predictions[1]);
  }, 90_000);
});
