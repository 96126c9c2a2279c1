#!/usr/bin/env node
// The tensorsmith command:
//   npx tensorsmith info          version, SIMD level, threads, CUDA build and devices
//   npx tensorsmith bench [name]  the benchmarks (from a clone of the repository: bench/ is not shipped)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from './native';

function info(): number {
  // Loaded lazily so that a loader failure prints its explanation instead of a stack.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tsm = require('./index') as typeof import('./index');
  const b = tsm.buildInfo();
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const lines = [
    `tensorsmith ${pkg.version} (native ${b.version})`,
    `node        ${process.version} (N-API ${process.versions.napi}) on ${process.platform}-${process.arch}`,
    `cpu simd    ${b.simd}`,
    `threads     ${b.threads}${process.env.TSM_NUM_THREADS ? ' (TSM_NUM_THREADS)' : ''}`,
    `cuda        ${b.cuda.compiled ? `compiled (runtime ${b.cuda.runtimeVersion}, archs ${b.cuda.archs.join(', ')}), ${b.cuda.deviceCount} device(s) visible` : 'not compiled in this build'}`,
  ];
  console.log(lines.join('\n'));
  return 0;
}

function bench(args: string[]): number {
  const root = packageRoot();
  const runner = path.join(root, 'bench', 'run.ts');
  if (!fs.existsSync(runner)) {
    console.error('tensorsmith bench: the benchmarks are not part of the npm package; run them from a clone of the repository (npm run bench).');
    return 1;
  }
  const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
  const r = spawnSync(fs.existsSync(tsx) ? tsx : 'npx', fs.existsSync(tsx) ? [runner, ...args] : ['tsx', runner, ...args], { stdio: 'inherit', cwd: root });
  return r.status ?? 1;
}

function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'info':
      return info();
    case 'bench':
      return bench(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log('usage: tensorsmith info | tensorsmith bench [name ...] [--threads N] [--quick]');
      return cmd === undefined ? 1 : 0;
    default:
      console.error(`tensorsmith: unknown command '${cmd}' (try: info, bench)`);
      return 1;
  }
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
}
