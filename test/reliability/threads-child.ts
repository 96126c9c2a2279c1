// Child process of test/threads.test.ts. Main thread: a reference training run, then two
// worker_threads training the same model at once, then workers that allocate and exit (or are
// terminated) without disposing. Workers: this same file (isMainThread false). Prints one JSON line.
import { createHash } from 'node:crypto';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as tsm from '../../lib/index';
import { trainSmall } from './train';

const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 16);

function runWorker(data: unknown, terminateAfterMs?: number): Promise<{ hash?: string; exit: number }> {
  return new Promise((resolve, reject) => {
    // The worker loads this TypeScript file through tsx's CommonJS hook.
    const w = new Worker(`require('tsx/cjs'); require(${JSON.stringify(__filename)});`, { eval: true, workerData: data });
    let result: { hash?: string } = {};
    w.on('message', (m) => (result = m));
    w.on('error', reject);
    w.on('exit', (exit) => resolve({ ...result, exit }));
    if (terminateAfterMs !== undefined) setTimeout(() => void w.terminate(), terminateAfterMs);
  });
}

async function main(): Promise<void> {
  const threads = Number(process.env.THREADS ?? 1);
  tsm.setNumThreads(threads);
  const steps = 60;
  const ref = hash(trainSmall(7, steps));
  const t0 = Date.now();
  const both = await Promise.all([runWorker({ task: 'train', seed: 7, steps, threads }), runWorker({ task: 'train', seed: 7, steps, threads })]);
  const concurrentMs = Date.now() - t0;
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  const rss0 = process.memoryUsage().rss;
  const exits: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < 6; i++) {
    // Odd rounds: terminated while training (possibly inside a native call); even: exits by itself.
    const r = await runWorker({ task: 'leak', mb: 200 }, i % 2 ? 150 : undefined);
    exits.push(r.exit);
    gc();
    await new Promise((res) => setTimeout(res, 50));
    rss.push(process.memoryUsage().rss);
  }
  process.stdout.write(`${JSON.stringify({ threads, ref, workers: both.map((b) => b.hash), workerExits: both.map((b) => b.exit), concurrentMs,
    leak: { rss0, rss, exits }, mainStillWorks: tsm.tensor([1, 2]).sum().item() })}\n`);
}

async function worker(): Promise<void> {
  const d = workerData as { task: string; seed: number; steps: number; threads: number; mb: number };
  if (d.task === 'train') {
    parentPort!.postMessage({ hash: hash(trainSmall(d.seed, d.steps)) });
    return;
  }
  // Allocate ~mb MB of tensors and never dispose them; train a little so a native call may be in
  // flight when the worker is terminated.
  const keep: tsm.Tensor[] = [];
  for (let i = 0; i < d.mb / 4; i++) keep.push(tsm.randn([1024, 1024]));
  for (let i = 0; i < 150; i++) trainSmall(i, 5);
}

if (isMainThread) main().catch((e) => { process.stderr.write(`${e?.stack ?? e}\n`); process.exit(2); });
else void worker();
