// Runs the fast-check fuzz suite (test/fuzz/) in a child process, so that a crash of the native
// addon (SIGSEGV, abort) is seen as the child's signal instead of taking vitest down with it.
// Fixed seed by default (reproducible in CI); FUZZ_SEED=random or a number to explore.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');
const SEED = process.env.FUZZ_SEED === 'random' ? String(Math.floor(Math.random() * 2 ** 31)) : (process.env.FUZZ_SEED ?? '20240611');

describe('fuzz: bindings, kernels, ops', () => {
  it('no crash; every failure is a TypeError/RangeError/TsmDisposedError naming the op (>= 10,000 cases)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/fuzz/run.ts')], {
      cwd: ROOT,
      env: { ...process.env, FUZZ_SEED: SEED, FUZZ_RUNS: process.env.FUZZ_RUNS ?? '300', FUZZ_OPS_RUNS: process.env.FUZZ_OPS_RUNS ?? '8000' },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: 110_000,
    });
    // A signal (SIGSEGV, SIGABRT) or a non-JSON ending means the addon crashed the process.
    expect(r.signal, `fuzz child died by ${r.signal}; stderr:\n${r.stderr?.slice(-4000)}`).toBeNull();
    const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    let summary: { seed: number; cases: number; ok: number; ms: number; failures: { suite: string; op: string; problem: string; counterexample?: string }[] };
    try {
      summary = JSON.parse(last);
    } catch {
      throw new Error(`fuzz child exited ${r.status} without a summary (crash?); stderr:\n${r.stderr?.slice(-4000)}`);
    }
    console.log(`fuzz: seed ${summary.seed}, ${summary.cases} cases (${summary.ok} succeeded, the rest threw named errors) in ${summary.ms} ms`);
    const report = summary.failures.map((f) => `${f.suite} ${f.op}: ${f.problem}\n  counterexample: ${f.counterexample}`).join('\n');
    expect(summary.failures, report).toEqual([]);
    expect(summary.cases).toBeGreaterThanOrEqual(10_000);
    expect(r.status).toBe(0);
  });
});
