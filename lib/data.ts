// tsm.data: datasets and a batching loader, as PyTorch's torch.utils.data.
//
// A Dataset is anything with `length` and `get(i)`. TensorDataset indexes several tensors along
// dim 0. DataLoader cuts a dataset into batches (optionally shuffled with its own seeded
// generator, reshuffled every epoch) and is iterable both synchronously and asynchronously.
//
// Ownership: every batch a DataLoader yields is made of new tensors that belong to the consumer:
// dispose them, or iterate inside tidy(). fit() does this for you.
import { describe, checkInt, checkBool } from './check';
import * as ops from './ops';
import { noGrad, Tensor } from './tensor';

/** A map-style dataset: `length` items, read with `get(i)` for i in [0, length). */
export interface Dataset<T = unknown> {
  /** Number of items. */
  readonly length: number;
  /** Item i, for i in [0, length). */
  get(i: number): T;
}

/** Indexes several tensors of equal first dimension together: get(i) -> [t0[i], t1[i], ...]. */
export class TensorDataset implements Dataset<Tensor[]> {
  /** The tensors, all of the same size in dim 0. */
  readonly tensors: Tensor[];
  constructor(...tensors: Tensor[]) {
    if (tensors.length === 0) throw new TypeError('TensorDataset: expected at least one tensor, got none');
    tensors.forEach((t, i) => {
      if (!(t instanceof Tensor)) throw new TypeError(`TensorDataset: argument ${i} must be a Tensor, got ${describe(t)}`);
      if (t.ndim === 0) throw new RangeError(`TensorDataset: argument ${i} is a 0-d tensor; tensors are indexed along dim 0`);
      if (t.shape[0] !== tensors[0].shape[0])
        throw new RangeError(`TensorDataset: all tensors need the same size in dim 0, got [${tensors.map((x) => x.shape[0]).join(', ')}]`);
    });
    this.tensors = tensors;
  }
  /** Size of dim 0 of the tensors. */
  get length(): number {
    return this.tensors[0].shape[0];
  }
  /** [t0[i], t1[i], ...] as new tensors (without grad). Throws RangeError when i is out of range. */
  get(i: number): Tensor[] {
    checkInt('TensorDataset.get', 'index', i, 0, this.length - 1);
    return noGrad(() => this.tensors.map((t) => {
      const row = ops.indexSelect(t, 0, [i]);
      const out = row.reshape(t.shape.slice(1));
      row.dispose();
      return out;
    }));
  }
  /** Rows `indices` of every tensor, gathered in one copy each (the DataLoader's fast path). */
  getBatch(indices: ArrayLike<number>): Tensor[] {
    const idx = Array.from(indices);
    return noGrad(() => this.tensors.map((t) => ops.indexSelect(t, 0, idx)));
  }
}

/** A dataset of the items i in `indices` of another dataset (torch.utils.data.Subset). */
export class Subset<T> implements Dataset<T> {
  /**
   * @param dataset The dataset to take items from.
   * @param indices Indices into `dataset`; each must be in [0, dataset.length) (RangeError otherwise).
   */
  constructor(readonly dataset: Dataset<T>, readonly indices: number[]) {
    for (const i of indices) checkInt('Subset', 'index', i, 0, dataset.length - 1);
  }
  /** Number of indices. */
  get length(): number {
    return this.indices.length;
  }
  /** dataset.get(indices[i]). Throws RangeError when i is out of range. */
  get(i: number): T {
    checkInt('Subset.get', 'index', i, 0, this.length - 1);
    return this.dataset.get(this.indices[i]);
  }
}

function isDataset(v: unknown): v is Dataset {
  return typeof v === 'object' && v !== null && typeof (v as Dataset).get === 'function' &&
    typeof (v as Dataset).length === 'number';
}

/**
 * Stacks a list of items into a batch: tensors are stacked along a new dim 0, numbers become a
 * 1-d tensor (int32 when all are integers), arrays and plain objects are collated field by field.
 */
export function defaultCollate(items: unknown[]): unknown {
  if (items.length === 0) throw new RangeError('defaultCollate: cannot collate an empty batch');
  const first = items[0];
  if (first instanceof Tensor) return noGrad(() => ops.stack(items as Tensor[], 0));
  if (typeof first === 'number') {
    const nums = items as number[];
    return nums.every((v) => Number.isInteger(v)) ? ops.tensor(Int32Array.from(nums)) : ops.tensor(Float32Array.from(nums));
  }
  if (typeof first === 'boolean') return ops.tensor(Int32Array.from(items as boolean[], (b) => (b ? 1 : 0)));
  if (Array.isArray(first)) return first.map((_, k) => defaultCollate(items.map((it) => (it as unknown[])[k])));
  if (typeof first === 'object' && first !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(first)) out[k] = defaultCollate(items.map((it) => (it as Record<string, unknown>)[k]));
    return out;
  }
  return items;
}

/** Disposes every tensor in a (nested) batch. */
export function disposeBatch(batch: unknown): void {
  if (batch instanceof Tensor) batch.dispose();
  else if (Array.isArray(batch)) batch.forEach(disposeBatch);
  else if (batch && typeof batch === 'object' && Object.getPrototypeOf(batch) === Object.prototype)
    Object.values(batch).forEach(disposeBatch);
}

function disposeItem(item: unknown): void {
  disposeBatch(item);
}

/**
 * A small seeded generator (xoshiro128**, seeded through splitmix32): the DataLoader's own
 * stream, so shuffling never draws from (or disturbs) tsm's global generator.
 */
export class Rng {
  private s = new Uint32Array(4);
  constructor(seed: number) {
    let x = (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (!(this.s[0] | this.s[1] | this.s[2] | this.s[3])) this.s[0] = 1;
  }
  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const r = Math.imul(((Math.imul(s[1], 5) << 7) | (Math.imul(s[1], 5) >>> 25)), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 11) | (s[3] >>> 21);
    return r;
  }
  /** A uniform number in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** A uniform integer in [0, n) without modulo bias. */
  below(n: number): number {
    const limit = Math.floor(4294967296 / n) * n;
    let v: number;
    do v = this.nextU32(); while (v >= limit);
    return v % n;
  }
  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

/** Options of DataLoader. T: the dataset's item type; B: the batch type. */
export interface DataLoaderOptions<T, B> {
  /** Items per batch (default 1, as PyTorch). */
  batchSize?: number;
  /** Reshuffle the order at the start of every epoch (default false). */
  shuffle?: boolean;
  /**
   * Seed of the loader's own generator. Without one, a seed is drawn once, at construction, from
   * tsm's global generator (so tsm.manualSeed makes runs reproducible); later epochs never touch it.
   */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Turns a list of items into a batch (default: defaultCollate, stacking tensors). */
  collate?: (items: T[]) => B;
  /** Prepare the next batch ahead of time in the async iterator (default true); see DataLoader. */
  prefetch?: boolean;
}

/**
 * Batches a dataset. Iterate it with `for (const batch of loader)` or `for await (...)`; each pass
 * is one epoch, shuffled anew when `shuffle` is on.
 *
 * Prefetch on a single-threaded runtime: JavaScript runs one thing at a time, so a batch cannot
 * be assembled *while* the training step computes. What prefetch does instead: the async
 * iterator, right after handing out batch k, schedules batch k+1 to be assembled in a macrotask
 * (setImmediate). Whenever the consumer awaits something between steps (fit() yields to the event
 * loop after every batch; a user loop may await I/O), the next batch is built in that gap, and
 * the following `next()` resolves at once. It hides collation latency behind idle time and keeps
 * at most one extra batch alive; it does not add parallelism. The sync iterator builds each batch
 * when asked.
 */
export class DataLoader<T = unknown, B = unknown> implements Iterable<B>, AsyncIterable<B> {
  /** The dataset batched. */
  readonly dataset: Dataset<T>;
  /** Items per batch. */
  readonly batchSize: number;
  /** Whether every epoch is reshuffled. */
  readonly shuffle: boolean;
  /** Whether a last, smaller batch is dropped. */
  readonly dropLast: boolean;
  /** Whether the async iterator builds the next batch ahead of time. */
  readonly prefetch: boolean;
  /** Seed of the loader's generator (given, or drawn at construction). */
  readonly seed: number;
  private readonly collate: ((items: unknown[]) => B) | null;
  private readonly rng: Rng;
  /** Epochs started so far (each iteration is one). */
  epoch = 0;

  constructor(dataset: Dataset<T>, opts: DataLoaderOptions<T, B> = {}) {
    if (!isDataset(dataset)) throw new TypeError(`DataLoader: dataset must have length and get(i), got ${describe(dataset)}`);
    checkInt('DataLoader', 'dataset.length', dataset.length, 0);
    this.dataset = dataset;
    this.batchSize = checkInt('DataLoader', 'batchSize', opts.batchSize ?? 1, 1);
    this.shuffle = checkBool('DataLoader', 'shuffle', opts.shuffle ?? false);
    this.dropLast = checkBool('DataLoader', 'dropLast', opts.dropLast ?? false);
    this.prefetch = checkBool('DataLoader', 'prefetch', opts.prefetch ?? true);
    if (opts.collate !== undefined && typeof opts.collate !== 'function')
      throw new TypeError(`DataLoader: collate must be a function, got ${describe(opts.collate)}`);
    this.collate = (opts.collate as ((items: unknown[]) => B) | undefined) ?? null;
    if (opts.seed !== undefined) checkInt('DataLoader', 'seed', opts.seed, 0);
    this.seed = opts.seed ?? drawSeed();
    this.rng = new Rng(this.seed);
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The item order of the next epoch, and the epoch counter advanced. */
  private nextOrder(): Int32Array {
    this.epoch++;
    const n = this.dataset.length;
    if (this.shuffle) return this.rng.permutation(n);
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return p;
  }

  /** Builds batch k of an epoch with the given order. */
  private batch(order: Int32Array, k: number): B {
    const start = k * this.batchSize;
    const idx = order.subarray(start, Math.min(order.length, start + this.batchSize));
    const ds = this.dataset;
    if (!this.collate && ds instanceof TensorDataset) return ds.getBatch(idx) as unknown as B;
    const items = Array.from(idx, (i) => ds.get(i));
    const out = (this.collate ?? (defaultCollate as (items: unknown[]) => B))(items);
    // The default collate copies; the items' own tensors are no longer needed.
    if (!this.collate) for (const it of items) disposeItem(it);
    return out;
  }

  /** One epoch, synchronously: each batch is built when asked. */
  *[Symbol.iterator](): Iterator<B> {
    const order = this.nextOrder();
    const count = this.length;
    for (let k = 0; k < count; k++) yield this.batch(order, k);
  }

  /** One epoch, asynchronously, with the next batch prefetched when `prefetch` is on. */
  [Symbol.asyncIterator](): AsyncIterator<B> {
    const order = this.nextOrder();
    const count = this.length;
    let k = 0;
    // The batch built ahead (or the error building it), and the pending build.
    let ready: { value: B } | { error: unknown } | null = null;
    let pending: Promise<void> | null = null;
    const build = () => {
      const j = k;
      pending = new Promise<void>((resolve) => setImmediate(() => {
        try {
          ready = { value: this.batch(order, j) };
        } catch (error) {
          ready = { error };
        }
        resolve();
      }));
    };
    return {
      next: async (): Promise<IteratorResult<B>> => {
        if (k >= count) return { done: true, value: undefined };
        if (!ready && !pending) build();
        await pending;
        const r = ready as { value: B } | { error: unknown };
        ready = null;
        pending = null;
        k++;
        if ('error' in r) throw r.error;
        if (this.prefetch && k < count) build();
        return { done: false, value: r.value };
      },
      return: async (): Promise<IteratorResult<B>> => {
        // Abandoned early (break): free the batch built ahead.
        if (pending) await pending;
        if (ready && 'value' in ready) disposeBatch(ready.value);
        ready = null;
        pending = null;
        k = count;
        return { done: true, value: undefined };
      },
    };
  }
}

function drawSeed(): number {
  const t = ops.randint(0, 2 ** 30, [1]);
  const s = t._data[0];
  t.dispose();
  return s;
}

/**
 * Splits a dataset into random, disjoint subsets of the given lengths (or fractions summing to 1),
 * with a seeded generator (torch.utils.data.random_split).
 */
export function randomSplit<T>(dataset: Dataset<T>, lengths: number[], seed = 0): Subset<T>[] {
  const n = dataset.length;
  let sizes = lengths.slice();
  if (sizes.every((l) => l >= 0 && l <= 1) && Math.abs(sizes.reduce((a, b) => a + b, 0) - 1) < 1e-6 && sizes.some((l) => l > 0 && l < 1)) {
    sizes = sizes.map((f) => Math.floor(f * n));
    for (let i = 0; sizes.reduce((a, b) => a + b, 0) < n; i = (i + 1) % sizes.length) sizes[i]++;
  }
  if (sizes.reduce((a, b) => a + b, 0) !== n)
    throw new RangeError(`randomSplit: lengths [${lengths.join(', ')}] must sum to the dataset length ${n} (or be fractions summing to 1)`);
  const perm = new Rng(seed).permutation(n);
  const out: Subset<T>[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(new Subset(dataset, Array.from(perm.subarray(at, at + s))));
    at += s;
  }
  return out;
}
