// The fuzz suite's entry point, run in a child process by test/fuzz.test.ts (a crash of the addon
// then shows as the child's exit signal instead of taking the test runner down):
//   node --import tsx test/fuzz/run.ts
// Environment: FUZZ_RUNS (cases per raw entry point, default 150), FUZZ_OPS_RUNS (default 4000),
// FUZZ_SEED (default: random; the seed is printed so a failure can be replayed), FUZZ_VERBOSE=1.
// Prints one JSON line: {seed, cases, ok, rejected, ms, suites, failures, unspecified}.
import { fuzzKernels, fuzzOps } from './ops.fuzz';
import { fuzzRaw, unspecified } from './raw.fuzz';
import type { SuiteResult } from './common';

async function main(): Promise<void> {
  const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const perFn = Number(process.env.FUZZ_RUNS ?? 150);
  const opsRuns = Number(process.env.FUZZ_OPS_RUNS ?? 4000);
  const t0 = Date.now();
  const results: SuiteResult[] = [];
  results.push(...(await fuzzRaw(perFn, perFn * 5, seed)));
  results.push(await fuzzKernels(Math.ceil(opsRuns / 4), seed));
  results.push(await fuzzOps(opsRuns, seed));
  const sum = (k: 'cases' | 'ok' | 'rejected') => results.reduce((a, r) => a + r[k], 0);
  const summary = {
    seed, cases: sum('cases'), ok: sum('ok'), rejected: sum('rejected'), ms: Date.now() - t0,
    suites: Object.fromEntries(results.map((r) => [r.suite, { cases: r.cases, ok: r.ok, ms: r.ms }])),
    failures: results.flatMap((r) => r.failures), unspecified: unspecified(),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exitCode = summary.failures.length ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(2);
});
