// Fuzzing of every function the native addon exports, below the TypeScript layer: wrong types,
// negative/fractional/huge sizes, short buffers, NaN/Infinity, empty and detached buffers, views
// at an offset, shared memory, aliased outputs. Two generators:
//   - near-valid: each function's signature (below) with small sizes and buffers mostly big enough,
//     so the kernels really run, mixed with edge values and wrong types;
//   - chaos: any values in any positions.
// The async entry points are awaited; half the time one of their arrays is detached in flight.
import fc from 'fast-check';
import { raw } from '../helpers/raw';
import {
  BIG, EDGE_FLOATS, EDGE_INTS, F32_FILLS, I32_FILLS, WRONG_TYPES, badOutcome, detach, detachedF32, outcome, runSuite,
  safeString, type Failure, type SuiteResult,
} from './common';

type Kind = 'int' | 'num' | 'bool' | 'f32' | 'f32?' | 'i32' | 'dims' | 'f32[]' | 'f32[]?' | 'str' | 'mask' | 'threads'
  | `op${number}`;

const I = 'int' as const, Nm = 'num' as const, B = 'bool' as const, F = 'f32' as const, Fo = 'f32?' as const,
  Ii = 'i32' as const, L = 'f32[]' as const, Lo = 'f32[]?' as const;
const ints = (n: number): Kind[] => Array(n).fill(I);

/** Positional signatures of the addon's functions (see lib/native-api.ts and cpp/binding/*.cpp). */
export const SIGNATURES: Record<string, Kind[]> = {
  version: [],
  buildInfo: [],
  getNumThreads: [],
  setNumThreads: ['threads'],
  sgemm: [B, B, I, I, I, Nm, F, I, F, I, Nm, F, I, B],
  sgemmStridedBatched: [B, B, I, I, I, I, Nm, F, I, I, F, I, I, Nm, F, I, I],
  peerBlasLoad: ['str'],
  peerBlasSetThreads: [I],
  peerBlasSgemm: [B, B, I, I, I, Nm, F, I, F, I, Nm, F, I],
  conv2dForward: [F, F, F, Fo, ...ints(14)],
  conv2dBackwardData: [F, F, F, ...ints(14)],
  conv2dBackwardWeight: [F, Fo, F, F, ...ints(14)],
  maxPool2dForward: [F, Ii, F, ...ints(12), B],
  maxPool2dBackward: [F, F, Ii, ...ints(6)],
  avgPool2dForward: [F, F, ...ints(10), B, B],
  avgPool2dBackward: [F, F, ...ints(10), B, B],
  adaptiveAvgPool2dForward: [F, F, ...ints(6)],
  adaptiveAvgPool2dBackward: [F, F, ...ints(6)],
  pool2dOutputSize: [...ints(5), B],
  unaryForward: ['op16', F, F],
  unaryBackward: ['op16', F, F, F, F],
  binaryForward: ['op13', F, F, F, 'dims', 'dims', 'dims'],
  scalarForward: ['op13', F, F, Nm, B],
  reduceForward: ['op5', F, F, I, I, I],
  argReduce: [Ii, F, I, I, I, B],
  sumToShape: [F, F, 'dims', 'dims'],
  softmaxForward: [F, F, I, I, I, B],
  softmaxBackward: [F, F, F, I, I, I, B],
  crossEntropyForward: [F, F, F, Ii, I, I, I, Nm],
  crossEntropyBackward: [F, F, Ii, F, I, I, I, Nm],
  rngUniform: [F, I, I, Nm, Nm],
  rngNormal: [F, I, I, Nm, Nm],
  dropoutForward: [F, F, F, Nm, I, I],
  sumOfSquares: [L],
  allFinite: [F],
  layerNormForward: [F, F, F, F, Fo, Fo, I, I, Nm],
  layerNormBackward: [F, Fo, Fo, F, F, F, F, Fo, I, I],
  batchNormForward: [F, F, F, Fo, Fo, F, Fo, Fo, I, I, I, B, Nm, Nm],
  batchNormBackward: [F, Fo, Fo, F, F, F, F, Fo, I, I, I, B],
  embeddingForward: [F, Ii, F, I, I],
  embeddingBackward: [F, F, Ii, I, I, I],
  sgdStep: [L, L, Lo, Nm, Nm, Nm, Nm, B, B, B],
  adamStep: [L, L, L, L, Lo, Nm, Nm, Nm, Nm, Nm, I, B, B, B],
  rmspropStep: [L, L, L, Lo, Lo, Nm, Nm, Nm, Nm, Nm, B, B],
  scaleInPlace: [L, Nm],
  attentionForward: [F, F, F, F, F, 'mask', ...ints(4), ...ints(5), Nm, B, Nm, I, I],
  attentionForwardReference: [F, F, F, F, F, 'mask', ...ints(4), ...ints(5), Nm, B, Nm, I, I],
  attentionBackward: [F, F, F, F, F, F, F, F, F, 'mask', ...ints(4), ...ints(5), Nm, B, Nm, I, I],
  lstmForward: [F, F, F, F, F, F, Fo, Fo, F, F, Fo, Fo, ...ints(4), B],
  lstmBackward: [Fo, Fo, Fo, Fo, Fo, Fo, Fo, Fo, Fo, Fo, F, Fo, Fo, F, F, F, F, F, ...ints(4), B],
  sgemmAsync: [B, B, I, I, I, Nm, F, I, F, I, Nm, F, I],
  conv2dForwardAsync: [F, F, F, Fo, ...ints(14)],
  maxPool2dForwardAsync: [F, Ii, F, ...ints(12), B],
  avgPool2dForwardAsync: [F, F, ...ints(10), B, B],
  softmaxForwardAsync: [F, F, I, I, I, B],
};

// ---- value descriptors (materialized fresh for every run, printable as counterexamples) ----

type BufDesc = { t: 'f32' | 'i32' | 'u8'; v: 'big' | 'short' | 'detached' | 'offset' | 'shared' | 'alias'; fill: number; len: number };
type Desc = { lit: unknown } | { buf: BufDesc } | { list: BufDesc[] } | { dims: unknown[] };

const wrong = fc.constantFrom(...WRONG_TYPES).map((lit) => ({ lit }) as Desc);
const edgeInt = fc.constantFrom(...EDGE_INTS).map((lit) => ({ lit }) as Desc);


// Each kind has valid values (small sizes, big-enough buffers: the kernels run) and invalid ones.
function kindArb(k: Kind): { valid: fc.Arbitrary<Desc>; invalid: fc.Arbitrary<Desc> } {
  const lit = <T>(a: fc.Arbitrary<T>) => a.map((x) => ({ lit: x }) as Desc);
  const buf = (t: 'f32' | 'i32' | 'u8', v: fc.Arbitrary<BufDesc['v']>) =>
    fc.record({ t: fc.constant(t), v, fill: fc.nat({ max: t === 'f32' ? F32_FILLS.length - 1 : I32_FILLS.length - 1 }),
                len: fc.nat({ max: 24 }) }).map((b) => ({ buf: b }) as Desc);
  const goodBuf = (t: 'f32' | 'i32' | 'u8') => buf(t, fc.constantFrom<BufDesc['v']>('big', 'big', 'big', 'big', 'offset', 'shared', 'alias'));
  const badBuf = (t: 'f32' | 'i32' | 'u8') => buf(t, fc.constantFrom<BufDesc['v']>('short', 'short', 'detached'));
  const nul = fc.constantFrom({ lit: null } as Desc, { lit: undefined } as Desc);
  switch (k) {
    case 'int':
      return { valid: lit(fc.integer({ min: 1, max: 3 })), invalid: fc.oneof(lit(fc.constant(0)), edgeInt, wrong) };
    case 'threads':
      return { valid: lit(fc.integer({ min: 1, max: 2 })), invalid: fc.oneof(edgeInt, wrong) };
    case 'num':
      return { valid: lit(fc.double({ min: -3, max: 3, noNaN: true })), invalid: fc.oneof(lit(fc.constantFrom(...EDGE_FLOATS)), wrong) };
    case 'bool':
      return { valid: lit(fc.boolean()), invalid: wrong };
    case 'f32':
      return { valid: goodBuf('f32'), invalid: fc.oneof(badBuf('f32'), wrong) };
    case 'f32?':
      return { valid: fc.oneof(goodBuf('f32'), nul), invalid: fc.oneof(badBuf('f32'), wrong) };
    case 'i32':
      return { valid: goodBuf('i32'), invalid: fc.oneof(badBuf('i32'), wrong) };
    case 'mask':
      return { valid: fc.oneof({ weight: 3, arbitrary: fc.constant({ lit: null } as Desc) }, { weight: 1, arbitrary: goodBuf('f32') },
                               { weight: 1, arbitrary: goodBuf('i32') }, { weight: 1, arbitrary: goodBuf('u8') }),
               invalid: fc.oneof(badBuf('f32'), badBuf('u8'), wrong, lit(fc.constant(new Float64Array(8)))) };
    case 'dims':
      return {
        valid: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 4 }).map((dims) => ({ dims }) as Desc),
        invalid: fc.oneof(
          fc.array(fc.constantFrom<unknown>(...EDGE_INTS, '1', null), { minLength: 1, maxLength: 3 }).map((dims) => ({ dims }) as Desc),
          fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 9, maxLength: 10 }).map((dims) => ({ dims }) as Desc), wrong),
      };
    case 'f32[]':
    case 'f32[]?': {
      const list = (bad: boolean) => fc.integer({ min: 0, max: 3 }).chain((count) =>
        fc.tuple(fc.nat({ max: 6 }), fc.array(fc.constantFrom<BufDesc['v']>('short', 'detached', 'big', 'offset'), { minLength: count, maxLength: count }),
                 fc.nat({ max: 3 })).map(([len, vs, odd]) => ({
          list: vs.map((v, i) => ({ t: 'f32', fill: i, len, v: bad && i === odd ? v : 'short' }) as BufDesc),
        }) as Desc));
      return { valid: k === 'f32[]' ? list(false) : fc.oneof(list(false), fc.constant({ lit: null } as Desc)),
               invalid: fc.oneof(list(true), wrong, lit(fc.constant([1, 2]))) };
    }
    case 'str':
      return { valid: fc.string({ maxLength: 12 }).map((s) => ({ lit: `/nonexistent-tsm-fuzz/${s}` }) as Desc), invalid: wrong };
    default: {
      const n = Number(k.slice(2));
      return { valid: lit(fc.integer({ min: 0, max: n - 1 })), invalid: fc.oneof(edgeInt, wrong, lit(fc.constant(n))) };
    }
  }
}

/** Argument lists for a signature: all valid, one argument invalid, or several. */
function argsArb(sig: Kind[]): fc.Arbitrary<Desc[]> {
  if (sig.length === 0) return fc.constant([]);
  const arbs = sig.map(kindArb);
  return fc.tuple(
    fc.tuple(...arbs.map((a) => a.valid)),
    fc.tuple(...arbs.map((a) => a.invalid)),
    fc.oneof(
      { weight: 4, arbitrary: fc.constant([] as number[]) },
      { weight: 4, arbitrary: fc.nat({ max: sig.length - 1 }).map((i) => [i]) },
      { weight: 2, arbitrary: fc.uniqueArray(fc.nat({ max: sig.length - 1 }), { maxLength: sig.length }) },
    ),
  ).map(([valid, invalid, mutate]) => valid.map((v, i) => (mutate.includes(i) ? invalid[i] : v)));
}

function makeBuf(d: BufDesc, prev: unknown): unknown {
  const src = d.t === 'f32' ? F32_FILLS[d.fill % F32_FILLS.length] : I32_FILLS[d.fill % I32_FILLS.length];
  const Ctor = d.t === 'f32' ? Float32Array : d.t === 'i32' ? Int32Array : Uint8Array;
  switch (d.v) {
    case 'big':
      return d.t === 'u8' ? Uint8Array.from(src.subarray(0, BIG), (x) => Math.abs(x) & 1) : new (Ctor as Float32ArrayConstructor)(src as Float32Array);
    case 'short':
      return new (Ctor as Float32ArrayConstructor)((src as Float32Array).subarray(0, d.len));
    case 'detached': {
      if (d.t === 'f32') return detachedF32();
      const a = new (Ctor as Int32ArrayConstructor)(4);
      detach(a.buffer);
      return a;
    }
    case 'offset': {
      const whole = new (Ctor as Float32ArrayConstructor)(src as Float32Array);
      return whole.subarray(3, 3 + (d.len % 2 ? BIG - 3 : d.len));
    }
    case 'shared': {
      const sab = new SharedArrayBuffer(BIG * 4);
      const a = new (Ctor as Float32ArrayConstructor)(sab, 0, BIG);
      a.set((src as Float32Array).subarray(0, BIG));
      return a;
    }
    case 'alias':
      return prev ?? new (Ctor as Float32ArrayConstructor)(src as Float32Array);
  }
}

export function materialize(descs: Desc[]): unknown[] {
  let prevBuf: unknown = undefined;
  return descs.map((d) => {
    if ('lit' in d) return d.lit;
    if ('dims' in d) return d.dims.slice();
    if ('list' in d) return d.list.map((b) => makeBuf(b, undefined));
    const v = makeBuf(d.buf, d.buf.t === 'f32' ? prevBuf : undefined);
    if (d.buf.t === 'f32') prevBuf = v;
    return v;
  });
}

// Chaos values: anything, anywhere.
const chaosValue: fc.Arbitrary<Desc> = fc.oneof(
  wrong, edgeInt, fc.integer({ min: -2, max: 5 }).map((lit) => ({ lit }) as Desc),
  kindArb('f32').valid, kindArb('f32').invalid, kindArb('i32').valid,
  fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }).map((dims) => ({ dims }) as Desc),
);

async function callOne(name: string, args: unknown[], detachAt: number | null): Promise<string | null> {
  const fn = raw[name] as (...a: unknown[]) => unknown;
  const err = await outcome(() => {
    const r = fn(...args);
    if (detachAt !== null && r && typeof (r as Promise<void>).then === 'function') {
      const views = args.filter((a) => ArrayBuffer.isView(a) && (a as Float32Array).buffer instanceof ArrayBuffer &&
                                        !WRONG_TYPES.includes(a));
      if (views.length) detach((views[detachAt % views.length] as Float32Array).buffer);
    }
    return r;
  });
  // peerBlas*/peerCublas* are benchmark support around dlopen, cuda* talk to a device: a missing
  // library or device, or calling before loading, is an environment error (a plain Error naming
  // the op; lib/ wraps device failures in TsmCudaError), not bad input.
  return badOutcome([name], err, /^(peerBlas|peerCublas|cuda)/.test(name));
}

/** FUZZ_SKIP=name,name leaves entry points (and the ops that use them) out, for triage. */
export const SKIP = new Set((process.env.FUZZ_SKIP ?? '').split(',').filter(Boolean));

export function exportedFunctions(): string[] {
  return Object.keys(raw).filter((k) => typeof raw[k] === 'function' && !SKIP.has(k));
}

export async function fuzzRaw(runsPerFunction: number, chaosRuns: number, seed: number): Promise<SuiteResult[]> {
  const results: SuiteResult[] = [];
  const threads = raw.getNumThreads();
  try {
    for (const name of exportedFunctions()) {
      const sig = SIGNATURES[name];
      if (!sig) continue;
      const arb = fc.tuple(argsArb(sig), fc.option(fc.nat({ max: 20 }), { freq: 2 }));
      results.push(await runSuite(`raw.${name}`, arb, sig.length ? runsPerFunction : 5, seed, async ([descs, detachAt]) => {
        const args = materialize(descs as Desc[]);
        const problem = await callOne(name, args, name.endsWith('Async') ? detachAt : null);
        return problem ? ({ suite: `raw.${name}`, op: name, problem, counterexample: safeString(args) } as Failure) : null;
      }));
    }
    const names = exportedFunctions().filter((n) => n !== 'setNumThreads');
    const chaos = fc.tuple(fc.constantFrom(...names), fc.array(chaosValue, { maxLength: 20 }));
    results.push(await runSuite('raw.chaos', chaos, chaosRuns, seed, async ([name, descs]) => {
      const args = materialize(descs);
      const problem = await callOne(name, args, null);
      return problem ? ({ suite: 'raw.chaos', op: name, problem, counterexample: safeString(args) } as Failure) : null;
    }));
  } finally {
    raw.setNumThreads(threads);
  }
  return results;
}

/** Exported functions with no signature above (fuzzed by chaos only). */
export function unspecified(): string[] {
  return exportedFunctions().filter((n) => !SIGNATURES[n]);
}
