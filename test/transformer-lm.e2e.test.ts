// End to end: examples/transformer-lm.ts (system 4) trains a small causal Transformer on the text of
// Moby Dick for a short run and must beat the unigram baseline's validation perplexity clearly.
import { describe, expect, it } from 'vitest';
import { trainTransformerLm } from '../examples/transformer-lm';

describe('examples/transformer-lm.ts', () => {
  it('a short run reaches a validation perplexity well below the unigram baseline', () => {
    const r = trainTransformerLm({
      steps: 200, batchSize: 32, seqLen: 64, dModel: 64, nhead: 4, numLayers: 2, dropout: 0, lr: 3e-3,
      chars: 200_000, seed: 0, verbose: false,
    });
    // The unigram baseline of English characters is ~25; a model that uses context gets far below.
    expect(r.unigramPerplexity).toBeGreaterThan(15);
    expect(r.valPerplexity).toBeLessThan(0.7 * r.unigramPerplexity);
    expect(r.sample.length).toBe(200);
  }, 90_000);
});
