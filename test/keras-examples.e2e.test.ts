// End-to-end: the Keras-way examples (model.compile / fit / evaluate with validation, early
// stopping, checkpoints and an SVG of the curves) on real data, in CI-sized runs.
//  - mnist-keras: 3,000 training digits (10% validation), 3 epochs of the system-2 CNN;
//    test accuracy on the 2,000 held-out digits > 90%.
//  - spam-keras: 2,000 mails cut to 200 words, up to 6 epochs of the embedding bag;
//    test accuracy > 93% and F1 > 0.88.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import * as io from '../lib/io';
import { mnistCnn, trainMnistKeras } from '../examples/mnist-keras';
import { trainSpamKeras } from '../examples/spam-keras';

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-keras-e2e-'));
afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

describe('Keras-way examples (end to end)', () => {
  it('mnist-keras: fit with validationSplit, early stopping, checkpoint, CSV and SVG; evaluate on the test split', async () => {
    const r = await trainMnistKeras({ limit: 3000, epochs: 3, verbose: 0, out, seed: 1 });
    expect(r.history.epoch.length).toBeGreaterThanOrEqual(2);
    const h = r.history.history;
    expect(h.loss[h.loss.length - 1]).toBeLessThan(h.loss[0]);
    expect(h.val_accuracy[h.val_accuracy.length - 1]).toBeGreaterThan(0.85);
    expect(r.test.accuracy).toBeGreaterThan(0.9);
    // The checkpoint holds the best epoch by val_loss, and loads by name into a fresh CNN.
    const { tensors, metadata } = io.loadWithMetadata(r.files.checkpoint);
    const best = Math.min(...h.val_loss);
    expect(Number(metadata.val_loss)).toBeCloseTo(best, 10);
    const fresh = mnistCnn();
    expect(fresh.loadStateDict(tensors)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const svg = fs.readFileSync(r.files.svg, 'utf8');
    expect(svg).toContain('data-key="val_accuracy"');
    expect(fs.readFileSync(r.files.csv, 'utf8').trim().split('\n')).toHaveLength(r.history.epoch.length + 1);
    // restoreBestWeights: the model ends with the best epoch's weights = the checkpoint.
    const x = tsm.rand([2, 1, 28, 28]);
    expect(Array.from(fresh.predict(x).dataSync())).toEqual(Array.from(r.model.predict(x).dataSync()));
  }, 40_000);

  it('spam-keras: embedding bag with early stopping; accuracy and F1 on held-out mails; new text', async () => {
    const r = await trainSpamKeras({ limit: 2000, maxLen: 200, epochs: 6, verbose: 0, out });
    expect(r.test.accuracy).toBeGreaterThan(0.93);
    expect(r.test.f1).toBeGreaterThan(0.88);
    expect(r.confusion.flat().reduce((a, b) => a + b, 0)).toBe(400);
    expect(r.predictions[0]).toBeGreaterThan(0.5);
    expect(r.predictions[1]).toBeLessThan(0.5);
    expect(fs.readFileSync(r.svg, 'utf8')).toContain('data-key="val_f1"');
  }, 40_000);
});
