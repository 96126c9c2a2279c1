// The benchmark runner.
//   npm run bench                       every benchmark
//   npm run bench -- gemm               one (or several: gemm conv)
//   npm run bench -- gemm --threads 1   options: --threads N (default 2), --quick, --no-record, --list
// Each benchmark prints a table (ours, peer, ratio), appends a record to bench/results/<name>.json
// and redraws bench/results/<name>.svg.
//
// Adding a benchmark: write bench/<name>.ts exporting `benchmark: Benchmark` (see bench/lib.ts) and
// add one line to BENCHMARKS below. Modules load lazily, so one that cannot load (a missing peer)
// does not stop the others.
import { appendRecord, type Benchmark, type BenchOptions, formatTable, gitCommit, machineInfo, writeSvg } from './lib';

const BENCHMARKS: Record<string, () => Promise<{ benchmark: Benchmark }>> = {
  gemm: () => import('./gemm'),
  conv: () => import('./conv'),
  'train-cnn': () => import('./train-cnn'),
  attention: () => import('./attention'),
  'train-transformer': () => import('./train-transformer'),
  'train-lstm': () => import('./train-lstm'),
  overhead: () => import('./overhead'),
  'cuda-gemm': () => import('./cuda-gemm'),
  'cuda-attention': () => import('./cuda-attention'),
  'cuda-conv': () => import('./cuda-conv'),
  'cuda-train': () => import('./cuda-train'),
};

function parseArgs(argv: string[]) {
  const names: string[] = [];
  const rest: string[] = [];
  let threads = 2, quick = false, record = true, list = false;
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--threads' || a.startsWith('--threads=')) {
      const v = a.includes('=') ? a.split('=')[1] : argv[++i];
      threads = Number(v);
      if (!Number.isInteger(threads) || threads < 1) throw new Error(`bench: --threads needs a positive integer, got ${v}`);
    } else if (a === '--quick') quick = true;
    else if (a === '--no-record') record = false;
    else if (a === '--list' || a === '--help' || a === '-h') list = true;  // not a run: nothing is timed or recorded
    else if (a.startsWith('-')) {
      rest.push(a);
      if (i + 1 < argv.length && !argv[i + 1].startsWith('-') && !(argv[i + 1] in BENCHMARKS)) rest.push(argv[++i]);
    } else names.push(a);
  }
  return { names, opts: { threads, quick, args: rest } as BenchOptions, record, list };
}

async function main() {
  const { names, opts, record, list } = parseArgs(process.argv.slice(2));
  if (list) {
    console.log('usage: npm run bench -- [name ...] [--threads N] [--quick] [--no-record] [--list]\n');
    for (const [name, load] of Object.entries(BENCHMARKS)) console.log(`${name.padEnd(20)} ${(await load()).benchmark.description}`);
    return;
  }
  const unknown = names.filter((n) => !(n in BENCHMARKS));
  if (unknown.length > 0) {
    throw new Error(`bench: unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}`);
  }
  const selected = names.length > 0 ? names : Object.keys(BENCHMARKS);
  // Run without names, the GPU benchmarks are skipped (with a visible reason) where there is no GPU;
  // named explicitly, they run and explain why they cannot.
  const gpu = names.length > 0 || (await import('../lib/cuda')).isAvailable();
  let failed = 0;
  for (const name of selected) {
    if (name.startsWith('cuda-') && !gpu) {
      console.log(`\n== ${name}: skipped, no CUDA device is visible (tsm.cuda.isAvailable() is false)`);
      continue;
    }
    console.log(`\n== ${name} (${opts.threads} threads${opts.quick ? ', quick' : ''})`);
    try {
      const { benchmark } = await BENCHMARKS[name]();
      const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const result = await benchmark.run(opts);
      const rec = {
        bench: name,
        date,
        commit: gitCommit(),
        machine: { ...machineInfo(opts.threads), ...(result.machine ?? {}) },
        ...(result.settings ? { settings: result.settings } : {}),
        rows: result.rows,
      };
      console.log(`${rec.machine.cpu}, ${opts.threads} threads, commit ${rec.commit}, ${rec.date}\n`);
      console.log(formatTable(rec.rows));
      if (record && !opts.quick) {
        console.log(`\nrecord appended to ${appendRecord(rec)}; chart ${writeSvg(rec)}`);
      } else {
        console.log('\n(not recorded: --quick or --no-record)');
      }
    } catch (err) {
      failed++;
      console.error(`bench ${name} FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
  }
  if (failed > 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
