// Child process of test/memory.test.ts (node --expose-gc --import tsx): trains a small MLP for
// STEPS steps and reports RSS and tsm.memory() after warm-up and at the end; checks that tensors
// left to the garbage collector are freed and that tidy frees everything but its result.
// Prints one JSON line.
import * as tsm from '../../lib/index';
import { raw } from '../helpers/raw';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const tick = () => new Promise<void>((r) => setImmediate(r));

async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await tick();
  }
  // Freed typed-array storage stays in glibc's heap until trimmed: without this, RSS measures the
  // allocator's high-water mark of garbage between collections (GC timing), not live memory.
  raw.mallocTrim();
}

function medianRss(xs: { rss: number }[]): number {
  const v = xs.map((x) => x.rss).sort((a, b) => a - b);
  return v[v.length >> 1];
}

async function main(): Promise<void> {
  const STEPS = Number(process.env.STEPS ?? 10_000);
  // Warm-up of 2,000 steps: the malloc arenas behind typed-array storage settle over the first ~2,000
  // (RSS rises ~5-10% between steps 1,000 and 2,000, then stays flat).
  const WARMUP = Math.min(2000, Math.floor(STEPS / 5));
  tsm.manualSeed(0);
  const model = new tsm.nn.Sequential(new tsm.nn.Linear(32, 64), new tsm.nn.ReLU(), new tsm.nn.Linear(64, 32),
                                      new tsm.nn.ReLU(), new tsm.nn.Linear(32, 10));
  const opt = new tsm.optim.Adam(model.parameters(), { lr: 1e-3 });
  const x = tsm.randn([64, 32]);
  const y = tsm.randint(0, 10, [64]);
  const samples: { step: number; rss: number; heap: number; heapTotal: number; external: number; tensors: number; bytes: number }[] = [];
  let base = { rss: 0, tensors: 0, bytes: 0 };
  const t0 = Date.now();
  let loss = 0;
  for (let step = 1; step <= STEPS; step++) {
    loss = tsm.tidy(() => {
      opt.zeroGrad();
      const l = tsm.F.crossEntropy(model.forward(x), y);
      l.backward();
      opt.step();
      return l.item();
    });
    if (step === WARMUP || (step > WARMUP && step % 1000 === 0) || step === STEPS) {
      await settle();
      const m = tsm.memory();
      const mu = process.memoryUsage();
      const s = { step, rss: mu.rss, heap: mu.heapUsed, heapTotal: mu.heapTotal, external: mu.external, tensors: m.tensors, bytes: m.bytes };
      samples.push(s);
      if (step === WARMUP) base = s;
    }
  }
  const trainMs = Date.now() - t0;
  const last = samples[samples.length - 1];
  const maxRss = Math.max(...samples.map((s) => s.rss));

  // Tensors left to the garbage collector.
  await settle();
  const before = tsm.memory();
  (() => {
    for (let i = 0; i < 2000; i++) tsm.randn([256]).relu();
  })();
  const leaked = tsm.memory().tensors - before.tensors;
  let rounds = 0;
  while (tsm.memory().tensors !== before.tensors && rounds < 100) {
    await settle();
    rounds++;
  }
  const afterGc = tsm.memory();

  // A synchronous loop that disposes nothing: the collector frees its outputs as it goes, although
  // the registry's cleanup (memory()'s counters) waits for the event loop. (When the registry held
  // the storages, each 1 MB output stayed alive until then: +1 GB of RSS here.)
  await settle();
  const syncBefore = process.memoryUsage().rss;
  const big = tsm.randn([256, 1024]);
  let syncPeak = 0;
  for (let i = 0; i < 1000; i++) {
    big.add(big);
    if (i % 100 === 99) syncPeak = Math.max(syncPeak, process.memoryUsage().rss - syncBefore);
  }
  big.dispose();
  await settle();

  // tidy frees everything but its result.
  const t1 = tsm.memory().tensors;
  const kept = tsm.tidy(() => {
    const a = tsm.randn([100, 100]);
    const b = a.matmul(a).relu().sum(1);
    a.add(1).mul(2).exp();
    return b.mean();
  });
  const tidyDelta = tsm.memory().tensors - t1;
  kept.dispose();

  process.stdout.write(`${JSON.stringify({
    steps: STEPS, warmup: WARMUP, trainMs, loss, samples,
    // The trend, robust to one noisy sample: the median RSS of the last three samples against the
    // median of the first three after warm-up (a single sample moves by a few MB with GC timing).
    rssDrift: (medianRss(samples.slice(-3)) - medianRss(samples.slice(0, 3))) / medianRss(samples.slice(0, 3)),
    rssMaxDrift: (maxRss - base.rss) / base.rss,
    tensorsDrift: last.tensors - base.tensors, bytesDrift: last.bytes - base.bytes,
    gc: { created: leaked, before: before.tensors, after: afterGc.tensors, bytesBefore: before.bytes, bytesAfter: afterGc.bytes, rounds },
    tidyDelta, syncLoopRssGrowth: syncPeak,
  })}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(2);
});
