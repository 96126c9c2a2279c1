// Shared pieces of the fuzz suite: the outcome rule, counters, and value pools.
//
// The rule every case checks: the call returns (or its promise resolves), or it throws (rejects)
// a TypeError, RangeError or TsmDisposedError whose message names the op. Anything else — another
// error type, a message without the op's name, a hang or a crash of the process — is a failure.
import fc from 'fast-check';
import { TsmDisposedError } from '../../lib/errors';

export interface Failure {
  suite: string;
  op: string;
  problem: string;
  counterexample?: string;
}

export interface SuiteResult {
  suite: string;
  cases: number;
  ok: number;
  rejected: number;
  failures: Failure[];
  ms: number;
}

/** Checks an outcome; returns a description of what is wrong, or null. */
export function badOutcome(ops: string[], err: unknown, plainErrorOk = false): string | null {
  if (err === undefined) return null;
  const okType = err instanceof TypeError || err instanceof RangeError || err instanceof TsmDisposedError ||
    (plainErrorOk && err instanceof Error);
  const msg = err instanceof Error ? err.message : String(err);
  const name = err instanceof Error ? err.constructor.name : typeof err;
  if (!okType) return `threw ${name}: ${msg}`;
  // The kernels' own messages (passed through by the binding) spell the op the C way:
  // sgemmStridedBatched -> sgemm_strided_batched.
  const names = ops.flatMap((o) => [o, o.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)]);
  if (!names.some((o) => msg.includes(o))) return `${name} without the op's name (${ops.join(' | ')}): ${msg}`;
  return null;
}

/** Runs fn (sync or async) and classifies the outcome. */
export async function outcome(fn: () => unknown): Promise<unknown> {
  try {
    const r = fn();
    if (r && typeof (r as Promise<unknown>).then === 'function') await r;
    tally.ok++;
    return undefined;
  } catch (e) {
    tally.rejected++;
    return e ?? new Error('threw a nullish value');
  }
}

/** Calls that returned / threw, across the current suite. */
export const tally = { ok: 0, rejected: 0 };

const DETACHED_OK = typeof structuredClone === 'function';

/** An ArrayBuffer-backed Float32Array that has been detached (length 0, no data). */
export function detachedF32(): Float32Array {
  const a = new Float32Array(8);
  detach(a.buffer);
  return a;
}

export function detach(buf: ArrayBufferLike): void {
  const t = (ArrayBuffer.prototype as unknown as { transfer?: () => ArrayBuffer }).transfer;
  if (typeof t === 'function' && buf instanceof ArrayBuffer) t.call(buf);
  else if (DETACHED_OK) structuredClone(buf, { transfer: [buf as ArrayBuffer] });
}

// Numbers that break naive size handling.
export const EDGE_INTS: unknown[] = [-1, -0, 0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1,
  2 ** 40, 2 ** 40 + 1, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e300, -(2 ** 53), 2 ** 62, -(2 ** 31)];
export const EDGE_FLOATS: unknown[] = [0, -0, 1, -1, NaN, Infinity, -Infinity, 1e38, 3.5e38, -3.5e38, 1e-45, 1e4, -1e4, 0.5, 2];
export const WRONG_TYPES: unknown[] = ['3', '', null, undefined, {}, [], [1, 2], true, false, 3n, Symbol('s'),
  () => 1, new Float64Array(4), new Uint8Array(4), new Int32Array(4), new Float32Array(4), new ArrayBuffer(16), new Date(0)];

/** Source data for buffers: copied per case (fills are precomputed once, so cases stay cheap). */
export const BIG = 4096;
function fill(kind: number, n: number): Float32Array {
  const a = new Float32Array(n);
  let s = 12345 + kind;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < n; i++) {
    const r = rnd() * 2 - 1;
    switch (kind) {
      case 0: a[i] = r; break;
      case 1: a[i] = 0; break;
      case 2: a[i] = i % 17 === 3 ? NaN : r; break;
      case 3: a[i] = i % 13 === 5 ? (i % 2 ? Infinity : -Infinity) : r * 1e4; break;
      case 4: a[i] = Math.abs(r) + 0.1; break; // positive (variances, stds)
      default: a[i] = Math.round(r * 3); break;
    }
  }
  return a;
}
export const F32_FILLS = [0, 1, 2, 3, 4, 5].map((k) => fill(k, BIG));
function ifill(kind: number, n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    switch (kind) {
      case 0: a[i] = i % 3; break;
      case 1: a[i] = 0; break;
      case 2: a[i] = (i % 7) - 2; break;
      case 3: a[i] = i % 11 === 4 ? 2 ** 31 - 1 : i % 4; break;
      default: a[i] = i % 11 === 4 ? -(2 ** 31) : 1; break;
    }
  }
  return a;
}
export const I32_FILLS = [0, 1, 2, 3, 4].map((k) => ifill(k, BIG));

/** Runs one fast-check property as a suite, collecting (not throwing) its failure. */
export async function runSuite<T>(suite: string, arb: fc.Arbitrary<T>, numRuns: number, seed: number,
                                  body: (v: T) => Promise<Failure | null>): Promise<SuiteResult> {
  const t0 = Date.now();
  if (process.env.FUZZ_VERBOSE) process.stderr.write(`[fuzz] ${suite}\n`);
  const res: SuiteResult = { suite, cases: 0, ok: 0, rejected: 0, failures: [], ms: 0 };
  tally.ok = 0;
  tally.rejected = 0;
  let last: Failure | null = null;
  const details = await fc.check(
    fc.asyncProperty(arb, async (v) => {
      res.cases++;
      const f = await body(v);
      if (f && process.env.FUZZ_COLLECT) {
        // Triage mode: keep going and list each distinct problem once.
        const key = `${f.op}|${f.problem.slice(0, 60)}`;
        if (!res.failures.some((x) => `${x.op}|${x.problem.slice(0, 60)}` === key)) res.failures.push(f);
        return true;
      }
      if (f) {
        last = f;
        return false;
      }
      return true;
    }),
    { numRuns, seed, endOnFailure: false, markInterruptAsFailure: true, interruptAfterTimeLimit: 10 * 60_000 },
  );
  if (details.failed) {
    const f = (last ?? { suite, op: '?', problem: String(details.errorInstance) }) as Failure;
    f.counterexample = safeString(details.counterexample);
    res.failures.push(f);
  }
  res.ms = Date.now() - t0;
  res.ok = tally.ok;
  res.rejected = tally.rejected;
  return res;
}

export function safeString(v: unknown): string {
  const seen = new WeakSet();
  try {
    return JSON.stringify(v, (_k, x) => {
      if (typeof x === 'bigint') return `${x}n`;
      if (typeof x === 'symbol' || typeof x === 'function') return String(x);
      if (typeof x === 'number' && !Number.isFinite(x)) return String(x);
      if (ArrayBuffer.isView(x)) {
        const ta = x as unknown as { length: number; constructor: { name: string }; byteOffset: number };
        return `${ta.constructor.name}(len ${ta.length}, off ${ta.byteOffset})`;
      }
      if (x && typeof x === 'object') {
        if (seen.has(x)) return '[cycle]';
        seen.add(x);
        if (x.constructor && x.constructor.name === 'Tensor') return `Tensor${x.isDisposed ? '(disposed)' : ''}[${x.shape}] ${x.dtype}`;
      }
      return x;
    })?.slice(0, 2000) ?? String(v);
  } catch {
    return String(v).slice(0, 2000);
  }
}
