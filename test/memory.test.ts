// Memory: a 10,000-step training loop keeps RSS and tsm.memory() flat after warm-up; tensors left to
// the garbage collector are freed; tidy frees everything but its result. Runs in a child process
// started with --expose-gc (test/reliability/memory-child.ts) so the measurement is its own.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');

describe('memory', () => {
  it('10,000 training steps: RSS and tsm.memory() flat after warm-up; GC frees forgotten tensors, in a synchronous loop too; tidy keeps only its result', () => {
    // --min-semi-space-size: V8 otherwise grows its young generation (heapTotal 28 -> 45 MB) partway
    // through the loop, a one-off RSS step that is not a leak.
    const r = spawnSync(process.execPath, ['--expose-gc', '--min-semi-space-size=16', '--import', 'tsx', path.join(ROOT, 'test/reliability/memory-child.ts')], {
      cwd: ROOT, env: { ...process.env, STEPS: '10000' }, encoding: 'utf8', timeout: 110_000,
    });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout.trim().split('\n').pop()!);
    console.log(`memory: ${d.steps} steps in ${d.trainMs} ms; RSS drift after warm-up ${(100 * d.rssDrift).toFixed(2)}% ` +
      `(max ${(100 * d.rssMaxDrift).toFixed(2)}%), tsm.memory() drift ${d.tensorsDrift} tensors / ${d.bytesDrift} bytes; ` +
      `GC: ${d.gc.created} forgotten tensors, live ${d.gc.before} -> ${d.gc.after} after ${d.gc.rounds} GC rounds; ` +
      `a synchronous loop of 1,000 forgotten 1 MB outputs: RSS +${(d.syncLoopRssGrowth / 2 ** 20).toFixed(0)} MiB`);
    expect(d.loss).toBeLessThan(0.1); // it did train
    expect(Math.abs(d.rssDrift)).toBeLessThan(0.05);
    expect(d.rssMaxDrift).toBeLessThan(0.05);
    expect(d.tensorsDrift).toBe(0);
    expect(d.bytesDrift).toBe(0);
    expect(d.gc.created).toBeGreaterThanOrEqual(2000);
    expect(d.gc.after).toBe(d.gc.before);
    expect(d.gc.bytesAfter).toBe(d.gc.bytesBefore);
    expect(d.tidyDelta).toBe(1);
    // 1,000 forgotten 1 MB outputs in one synchronous loop: RSS grows by far less than 1 GB.
    expect(d.syncLoopRssGrowth).toBeLessThan(256 * 1024 * 1024);
  });
});
