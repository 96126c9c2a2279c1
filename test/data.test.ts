// tsm.data: TensorDataset, DataLoader batching, seeding, reshuffling, collate, async prefetch.
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import { DataLoader, Rng, TensorDataset, defaultCollate, randomSplit, type Dataset } from '../lib/data';

const ids = (n: number) => tsm.tensor(Int32Array.from({ length: n }, (_, i) => i));

/** The first column of every batch (the item indices when the dataset holds ids). */
function orderOf(loader: DataLoader<unknown, unknown>): number[][] {
  const out: number[][] = [];
  for (const b of loader) {
    const [x] = b as tsm.Tensor[];
    out.push(Array.from(x.dataSync()));
    (b as tsm.Tensor[]).forEach((t) => t.dispose());
  }
  return out;
}

describe('TensorDataset', () => {
  it('indexes every tensor along dim 0', () => {
    const x = tsm.arange(0, 12).reshape([4, 3]), y = ids(4);
    const ds = new TensorDataset(x, y);
    expect(ds.length).toBe(4);
    const [xi, yi] = ds.get(2);
    expect(xi.shape).toEqual([3]);
    expect(Array.from(xi.dataSync())).toEqual([6, 7, 8]);
    expect(yi.shape).toEqual([]);
    expect(yi.item()).toBe(2);
    expect(() => ds.get(4)).toThrow(RangeError);
    expect(() => new TensorDataset(x, ids(3))).toThrow(/same size in dim 0, got \[4, 3\]/);
    expect(() => new TensorDataset()).toThrow(TypeError);
  });
});

describe('DataLoader', () => {
  it('batches in order without shuffle; the last batch is short unless dropLast', () => {
    const ds = new TensorDataset(ids(10), tsm.arange(0, 20).reshape([10, 2]));
    const a = new DataLoader(ds, { batchSize: 4 });
    expect(a.length).toBe(3);
    expect(orderOf(a)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    const b = new DataLoader(ds, { batchSize: 4, dropLast: true });
    expect(b.length).toBe(2);
    expect(orderOf(b)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7]]);
    const [first] = [...new DataLoader(ds, { batchSize: 3 })];
    expect((first as tsm.Tensor[])[1].shape).toEqual([3, 2]);
    expect(Array.from((first as tsm.Tensor[])[1].dataSync())).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('shuffles with its own seed: same seed, same orders; a new order every epoch; every item once', () => {
    const ds = new TensorDataset(ids(20));
    const a = new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 42 });
    const b = new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 42 });
    const c = new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 43 });
    const a1 = orderOf(a).flat(), a2 = orderOf(a).flat();
    expect(orderOf(b).flat()).toEqual(a1);
    expect(orderOf(b).flat()).toEqual(a2);
    expect(a2).not.toEqual(a1);
    expect(orderOf(c).flat()).not.toEqual(a1);
    expect(a1.slice().sort((p, q) => p - q)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(a.epoch).toBe(2);
  });

  it('shuffling does not draw from (or disturb) the global generator; without a seed, manualSeed makes it reproducible', () => {
    tsm.manualSeed(5);
    const ref = Array.from(tsm.rand([4]).dataSync());
    tsm.manualSeed(5);
    const loader = new DataLoader(new TensorDataset(ids(50)), { batchSize: 7, shuffle: true, seed: 9 });
    for (let e = 0; e < 3; e++) orderOf(loader);
    expect(Array.from(tsm.rand([4]).dataSync())).toEqual(ref);

    tsm.manualSeed(11);
    const u = orderOf(new DataLoader(new TensorDataset(ids(30)), { batchSize: 30, shuffle: true }));
    tsm.manualSeed(11);
    const v = orderOf(new DataLoader(new TensorDataset(ids(30)), { batchSize: 30, shuffle: true }));
    expect(u).toEqual(v);
  });

  it('the Rng is uniform enough and permutations are valid', () => {
    const r = new Rng(1);
    const counts = new Array(4).fill(0);
    for (let i = 0; i < 4000; i++) counts[r.below(4)]++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
    const p = Array.from(new Rng(7).permutation(100)).sort((a, b) => a - b);
    expect(p).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('default collate stacks tensors, turns numbers into tensors and recurses into arrays and objects', () => {
    const ds: Dataset<{ x: tsm.Tensor; label: number; w: number }> = {
      length: 5,
      get: (i) => ({ x: tsm.full([2], i), label: i % 2, w: i / 2 }),
    };
    const [b] = [...new DataLoader(ds, { batchSize: 3 })] as { x: tsm.Tensor; label: tsm.Tensor; w: tsm.Tensor }[];
    expect(b.x.shape).toEqual([3, 2]);
    expect(Array.from(b.x.dataSync())).toEqual([0, 0, 1, 1, 2, 2]);
    expect(b.label.dtype).toBe('int32');
    expect(Array.from(b.label.dataSync())).toEqual([0, 1, 0]);
    expect(b.w.dtype).toBe('float32');
    expect(Array.from(b.w.dataSync())).toEqual([0, 0.5, 1]);
    expect(() => defaultCollate([])).toThrow(RangeError);
  });

  it('a custom collate gets the items of each batch', () => {
    const ds: Dataset<string> = { length: 5, get: (i) => 'abcde'[i] };
    const loader = new DataLoader(ds, { batchSize: 2, collate: (items: string[]) => items.join('') });
    expect([...loader]).toEqual(['ab', 'cd', 'e']);
  });

  it('async iteration gives the same batches and prefetches the next one while the consumer waits', async () => {
    let gets = 0;
    const ds: Dataset<number> = { length: 9, get: (i) => { gets++; return i; } };
    const collate = (items: number[]) => items;
    const sync = [...new DataLoader(ds, { batchSize: 3, shuffle: true, seed: 3, collate })];
    gets = 0;
    const loader = new DataLoader(ds, { batchSize: 3, shuffle: true, seed: 3, collate });
    const seen: number[][] = [];
    const getsWhenHandedOut: number[] = [];
    for await (const b of loader) {
      seen.push(b as number[]);
      getsWhenHandedOut.push(gets);
      // The consumer yields to the event loop (as fit() does): the next batch is built meanwhile.
      await new Promise<void>((r) => setImmediate(r));
      await new Promise<void>((r) => setImmediate(r));
      getsWhenHandedOut.push(gets);
    }
    expect(seen).toEqual(sync);
    // Batch 1 was ready right after batch 0 was handed out and the consumer yielded.
    expect(getsWhenHandedOut).toEqual([3, 6, 6, 9, 9, 9]);
  });

  it('breaking out of async iteration frees the batch built ahead', async () => {
    const ds = new TensorDataset(tsm.randn([12, 3]), ids(12));
    const loader = new DataLoader(ds, { batchSize: 4 });
    const before = tsm.memory().tensors;
    for await (const b of loader) {
      await new Promise<void>((r) => setImmediate(r));
      (b as tsm.Tensor[]).forEach((t) => t.dispose());
      break;
    }
    expect(tsm.memory().tensors).toBe(before);
  });

  it('checks its options', () => {
    const ds = new TensorDataset(ids(3));
    expect(() => new DataLoader(ds, { batchSize: 0 })).toThrow(/batchSize must be >= 1/);
    expect(() => new DataLoader({} as Dataset, {})).toThrow(/dataset must have length and get/);
    expect(() => new DataLoader(ds, { shuffle: 'yes' as unknown as boolean })).toThrow(TypeError);
  });

  it('randomSplit: disjoint seeded subsets by lengths or fractions', () => {
    const ds = new TensorDataset(ids(10));
    const [a, b] = randomSplit(ds, [0.7, 0.3], 1);
    expect(a.length + b.length).toBe(10);
    expect(a.length).toBe(7);
    const all = [...a.indices, ...b.indices].sort((p, q) => p - q);
    expect(all).toEqual(Array.from({ length: 10 }, (_, i) => i));
    const [c] = randomSplit(ds, [7, 3], 1);
    expect(c.indices).toEqual(a.indices);
    expect(() => randomSplit(ds, [5, 4])).toThrow(/must sum to the dataset length 10/);
  });
});
