// The SIMD paths a test can run on this CPU, and the runner of the child-process checks that run
// a kernel's references on each of them (test/helpers/*-check-main.ts): the SIMD level and the
// default thread count are read once, when the addon loads, so each path needs a fresh process.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { expect } from 'vitest';
import { buildInfo } from '../../lib/runtime';

/** The SIMD paths this CPU can run (TSM_SIMD values), the best last. */
export function simdPaths(): string[] {
  const order = ['generic', 'avx2', 'avx512'];
  const best = buildInfo().simd;
  return best === 'neon' ? ['generic', 'neon'] : order.slice(0, order.indexOf(best) + 1);
}

/** Runs the check `entry` (a path from the repository root) with `env` added to the environment,
 *  expects it to exit with 0, and returns the JSON object of its last line of output. */
export function runCheck<T>(entry: string, env: Record<string, string>): T {
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry], {
    cwd: path.resolve(__dirname, '..', '..'),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect(r.status, `child failed:\n${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as T;
}
