// Fuzzing of the tensor ops, tsm.F and tsm.kernels.sgemm: wrong ranks, mismatched shapes, wrong
// dtypes, disposed and empty tensors, NaN/Infinity data, garbage options, backward through the
// result. Every call must succeed or throw a TypeError/RangeError/TsmDisposedError naming the op.
import fc from 'fast-check';
import * as tsm from '../../lib/index';
import { logsumexp } from '../../lib/ops';
import { BIG, EDGE_FLOATS, EDGE_INTS, F32_FILLS, WRONG_TYPES, badOutcome, detachedF32, outcome, runSuite, safeString,
  type Failure, type SuiteResult } from './common';

type T = tsm.Tensor;

interface TDesc { shape: number[]; dtype: 'float32' | 'int32'; fill: number; disposed: boolean; grad: boolean }

const tdesc: fc.Arbitrary<TDesc> = fc.record({
  shape: fc.oneof({ weight: 6, arbitrary: fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 4 }) },
                  { weight: 2, arbitrary: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 4 }) }),
  dtype: fc.oneof({ weight: 5, arbitrary: fc.constant('float32' as const) }, { weight: 1, arbitrary: fc.constant('int32' as const) }),
  fill: fc.nat({ max: F32_FILLS.length - 1 }),
  disposed: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  grad: fc.boolean(),
});

function makeTensor(d: TDesc): T {
  const n = d.shape.reduce((a, b) => a * b, 1);
  const src = F32_FILLS[d.fill].subarray(0, Math.min(n, BIG));
  let t: T;
  if (d.dtype === 'int32') t = tsm.tensor(Int32Array.from({ length: n }, (_, i) => Math.abs(Math.round(src[i % src.length] || 0)) % 3), { shape: d.shape });
  else t = tsm.tensor(Float32Array.from({ length: n }, (_, i) => src[i % Math.max(1, src.length)] ?? 0), { shape: d.shape });
  if (d.grad && d.dtype === 'float32') t.requiresGrad_();
  if (d.disposed) t.dispose();
  return t;
}

// Symbol arguments are left to the raw-binding fuzz: at this level a Symbol in a template literal
// throws V8's own TypeError (see RELIABILITY.md, known gaps).
const OPS_WRONG = WRONG_TYPES.filter((v) => typeof v !== 'symbol');

// Extra arguments: dims, sizes, scalars, option bags, garbage.
const anyArg: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -3, max: 3 }) },
  { weight: 2, arbitrary: fc.constantFrom(...EDGE_INTS) },
  { weight: 2, arbitrary: fc.constantFrom(...EDGE_FLOATS) },
  { weight: 2, arbitrary: fc.constantFrom(...OPS_WRONG) },
  { weight: 3, arbitrary: fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 4 }) },
);
const optsArg: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant({}), fc.constant(undefined), fc.constantFrom(...OPS_WRONG),
  fc.record({ stride: anyArg, padding: anyArg, kernelSize: anyArg, dilation: anyArg, groups: anyArg, ceilMode: fc.boolean() }, { requiredKeys: [] }),
  fc.record({ reduction: fc.constantFrom('mean', 'sum', 'none', 'bogus', 3), ignoreIndex: anyArg, labelSmoothing: anyArg,
              isCausal: fc.boolean(), dropoutP: anyArg, scale: anyArg, weight: fc.constant(undefined) }, { requiredKeys: [] }),
);

type OpFn = (ts: T[], a: unknown[]) => unknown;
const F = tsm.F as unknown as Record<string, (...args: unknown[]) => unknown>;
const m = (name: string): OpFn => (ts, a) => (ts[0] as unknown as Record<string, (...x: unknown[]) => unknown>)[name](...a.slice(0, 2));
const m2 = (name: string): OpFn => (ts, a) => (ts[0] as unknown as Record<string, (...x: unknown[]) => unknown>)[name](a[0] === 7 ? a[1] : ts[1], ...a.slice(2, 3));

/** op name -> [the call, names its errors may carry]. */
const OPS: Record<string, [OpFn, string[]?]> = {};
for (const u of ['neg', 'exp', 'log', 'sqrt', 'abs', 'relu', 'sigmoid', 'tanh', 'square']) OPS[u] = [(ts) => (ts[0] as unknown as Record<string, () => unknown>)[u]()];
OPS.gelu = [(ts, a) => ts[0].gelu(a[0] as 'none')];
for (const b of ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge']) OPS[b] = [m2(b)];
// max/min/argmax/argmin share the native argReduce and its checks.
for (const r of ['sum', 'mean', 'max', 'min', 'argmax', 'argmin']) OPS[r] = [m(r), [r, 'argReduce']];
OPS.softmax = [(ts, a) => ts[0].softmax(a[0] as number)];
OPS.logSoftmax = [(ts, a) => ts[0].logSoftmax(a[0] as number)];
OPS.logsumexp = [(ts, a) => logsumexp(ts[0], a[0] as number, a[1] as boolean), ['logsumexp', 'max']];
OPS.matmul = [(ts) => ts[0].matmul(ts[1])];
OPS.reshape = [(ts, a) => ts[0].reshape(a[0] as number[])];
OPS.flatten = [(ts, a) => ts[0].flatten(a[0] as number, a[1] as number)];
OPS.squeeze = [(ts, a) => ts[0].squeeze(a[0] as number)];
OPS.unsqueeze = [(ts, a) => ts[0].unsqueeze(a[0] as number)];
OPS.transpose = [(ts, a) => ts[0].transpose(a[0] as number, a[1] as number), ['transpose', 'permute']];
OPS.permute = [(ts, a) => ts[0].permute(a[0] as number[])];
OPS.expand = [(ts, a) => ts[0].expand(a[0] as number[])];
OPS.slice = [(ts, a) => ts[0].slice(a[0] as number, a[1] as number, a[2] as number, a[3] as number)];
OPS.gather = [(ts, a) => ts[0].gather(a[0] as number, ts[1])];
OPS.indexSelect = [(ts, a) => tsm.indexSelect(ts[0], a[0] as number, (a[1] === 7 ? a[2] : ts[1]) as T), ['indexSelect', 'index']];
OPS.cat = [(ts, a) => tsm.cat(ts.slice(0, a[1] === 1 ? 3 : 2), a[0] as number)];
OPS.stack = [(ts, a) => tsm.stack(ts.slice(0, 2), a[0] as number), ['stack', 'cat']];
OPS.where = [(ts) => tsm.where(ts[0], ts[1], ts[2])];
OPS.clamp = [(ts, a) => ts[0].clamp(a[0] as number, a[1] as number)];
OPS.clone = [(ts) => ts[0].clone()];
OPS.to = [(ts, a) => ts[0].to(a[0] as 'cpu')];
OPS.item = [(ts) => ts[0].item()];
OPS.dataSync = [(ts) => ts[0].dataSync()];
OPS.toArray = [(ts) => ts[0].toArray()];
OPS.tensor = [(_ts, a) => tsm.tensor(a[0] as number[], a[1] as object)];
OPS.zeros = [(_ts, a) => tsm.zeros(a[0] as number[], a[1] as object)];
OPS.full = [(_ts, a) => tsm.full(a[0] as number[], a[1] as number)];
OPS.arange = [(_ts, a) => tsm.arange(a[0] as number, a[1] as number, a[2] as number)];
OPS.eye = [(_ts, a) => tsm.eye(a[0] as number, a[1] as number)];
OPS.randn = [(_ts, a) => tsm.randn(a[0] as number[])];
OPS.randint = [(_ts, a) => tsm.randint(a[0] as number, a[1] as number, a[2] as number[]), ['randint', 'rand']];
OPS.linear = [(ts) => F.linear(ts[0], ts[1], ts[2])];
OPS.conv2d = [(ts, a) => F.conv2d(ts[0], ts[1], ts[2], a[4])];
OPS.maxPool2d = [(ts, a) => F.maxPool2d(ts[0], a[4]), ['maxPool2d', 'pool2dOutputSize']];
OPS.avgPool2d = [(ts, a) => F.avgPool2d(ts[0], a[4]), ['avgPool2d', 'pool2dOutputSize']];
OPS.adaptiveAvgPool2d = [(ts, a) => F.adaptiveAvgPool2d(ts[0], a[0])];
OPS.dropout = [(ts, a) => F.dropout(ts[0], a[0], a[1])];
OPS.layerNorm = [(ts, a) => F.layerNorm(ts[0], a[0], ts[1], ts[2], a[1])];
OPS.batchNorm = [(ts, a) => F.batchNorm(ts[0], ts[1], ts[2], null, null, a[4])];
OPS.embedding = [(ts, a) => F.embedding(ts[0], ts[1], a[0])];
OPS.crossEntropy = [(ts, a) => F.crossEntropy(ts[0], ts[1], a[4])];
OPS.nllLoss = [(ts, a) => F.nllLoss(ts[0], ts[1], a[4])];
OPS.mseLoss = [(ts, a) => F.mseLoss(ts[0], ts[1], a[4])];
OPS.binaryCrossEntropy = [(ts, a) => F.binaryCrossEntropy(ts[0], ts[1], a[4])];
OPS.binaryCrossEntropyWithLogits = [(ts, a) => F.binaryCrossEntropyWithLogits(ts[0], ts[1], a[4])];
OPS.scaledDotProductAttention = [(ts, a) => F.scaledDotProductAttention(ts[0], ts[1], ts[2], a[4])];
OPS.backward = [(ts) => ts[0].sum().backward(), ['backward', 'sum']];

// Creation ops allocate what they are asked for: keep +-1e4 (a 400 MB eye) out of their sizes.
for (const c of ['tensor', 'zeros', 'full', 'arange', 'eye', 'randn', 'randint', 'adaptiveAvgPool2d']) {
  const [fn, al] = OPS[c];
  OPS[c] = [(ts, a) => fn(ts, a.map((v) => (v === 1e4 || v === -1e4 ? 3 : v))), al];
}

const NAMES = Object.keys(OPS).filter((n) => !(process.env.FUZZ_SKIP ?? '').split(',').includes(n));

export async function fuzzOps(numRuns: number, seed: number): Promise<SuiteResult> {
  const arb = fc.tuple(fc.constantFrom(...NAMES), fc.array(tdesc, { minLength: 3, maxLength: 3 }),
                       fc.tuple(anyArg, anyArg, anyArg, anyArg, optsArg), fc.boolean());
  return runSuite('ops', arb, numRuns, seed, async ([name, descs, args, sameShape]) => {
    // Half the multi-tensor cases share the first tensor's shape, so the ops get past the shape checks.
    const ds = sameShape ? descs.map((d) => ({ ...d, shape: descs[0].shape })) : descs;
    const ts = ds.map(makeTensor);
    const [fn, aliases] = OPS[name];
    const t0 = Date.now();
    const err = await outcome(() => tsm.tidy(() => {
      const r = fn(ts, args);
      // Gradients through whatever came out, when they can flow.
      if (r instanceof tsm.Tensor && r.requiresGrad && r.dtype === 'float32' && r.size > 0) r.sum().backward();
      return undefined;
    }));
    for (const t of ts) t.dispose();
    if (process.env.FUZZ_VERBOSE && Date.now() - t0 > 200) process.stderr.write(`[fuzz] slow ${Date.now() - t0} ms: ${safeString([name, ds, args])}\n`);
    const problem = badOutcome(aliases ?? [name], err);
    return problem ? ({ suite: 'ops', op: name, problem, counterexample: safeString([name, ds, args]) } as Failure) : null;
  });
}

/** tsm.kernels.sgemm with garbage in every field of its options object. */
export async function fuzzKernels(numRuns: number, seed: number): Promise<SuiteResult> {
  const size = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 5 }) }, { weight: 2, arbitrary: fc.constantFrom(...EDGE_INTS) },
                        { weight: 1, arbitrary: fc.constantFrom(...WRONG_TYPES) });
  const buf = fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 40 }).map((n) => new Float32Array(n).fill(1)) },
                       { weight: 1, arbitrary: fc.constant(null).map(() => detachedF32()) },
                       { weight: 1, arbitrary: fc.constantFrom(...WRONG_TYPES) });
  const maybe = <U>(a: fc.Arbitrary<U>) => fc.option(a, { nil: undefined, freq: 3 });
  const arb = fc.oneof(
    { weight: 20, arbitrary: fc.record({ transA: maybe(fc.oneof(fc.boolean(), fc.constantFrom(...WRONG_TYPES))),
                                         transB: maybe(fc.boolean()), m: size, n: size, k: size,
                                         alpha: maybe(fc.constantFrom(...EDGE_FLOATS)), beta: maybe(fc.constantFrom(...EDGE_FLOATS)),
                                         a: buf, b: buf, c: buf, lda: maybe(size), ldb: maybe(size), ldc: maybe(size) }) },
    { weight: 1, arbitrary: fc.constantFrom(...WRONG_TYPES) },
  );
  return runSuite('kernels.sgemm', arb, numRuns, seed, async (args) => {
    const which = (args as { m?: unknown })?.m === 3 ? 'sgemmReference' : 'sgemm';
    const err = await outcome(() => (tsm.kernels as unknown as Record<string, (x: unknown) => void>)[which](args));
    const problem = badOutcome([`kernels.${which}`], err);
    return problem ? ({ suite: 'kernels.sgemm', op: which, problem, counterexample: safeString(args) } as Failure) : null;
  });
}

