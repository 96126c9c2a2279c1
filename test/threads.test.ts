// Threads: the addon is context-aware (loads in worker_threads); two workers training at once get
// bit-for-bit the result of a single-threaded run of the same seed; workers that exit or are
// terminated with live tensors free them (RSS stays put) and do not crash the process.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');

describe('worker_threads', () => {
  it('two workers train at once with the single-thread result; exiting workers free their tensors', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(ROOT, 'test/reliability/threads-child.ts')], {
      cwd: ROOT, env: { ...process.env, THREADS: '1' }, encoding: 'utf8', timeout: 110_000,
    });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const mb = (x: number) => (x / 2 ** 20).toFixed(0);
    console.log(`threads: reference ${d.ref}, workers ${d.workers.join(' ')} (${d.concurrentMs} ms together); ` +
      `RSS ${mb(d.leak.rss0)} MB -> ${d.leak.rss.map(mb).join(', ')} MB over 6 workers that left ~200 MB each`);
    expect(d.workers).toEqual([d.ref, d.ref]);
    expect(d.workerExits).toEqual([0, 0]);
    expect(d.leak.exits.filter((_: number, i: number) => i % 2 === 0)).toEqual([0, 0, 0]);
    // Six workers each left ~200 MB: growth stays far below what keeping them would cost.
    expect(Math.max(...d.leak.rss) - d.leak.rss0).toBeLessThan(400 * 2 ** 20);
    expect(d.mainStillWorks).toBe(3);
  });
});
