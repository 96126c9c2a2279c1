// The cost of a tiny op through the whole TypeScript stack (argument checks, Tensor creation,
// autograd bookkeeping, the native call, dispose), against the same op through PyTorch's eager
// stack. The target (BENCHMARKS.md) is <= 2 us of overhead per op.
import * as path from 'node:path';
import * as tsm from '../lib/index';
import { nativeAddon } from '../lib/native-api';
import { closePeers, compareSides, localBlock, startTorchPeers, type Benchmark, type BenchRow } from './lib';

const PYTHON = process.env.TSM_TORCH_PYTHON ?? '/usr/bin/python3';

function perCallUs(fn: () => void, n = 200_000): number {
  for (let i = 0; i < 20_000; i++) fn();
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e3 / n);
  }
  return best;
}

export const benchmark: Benchmark = {
  description: 'tiny-op overhead through the TypeScript stack vs PyTorch eager',
  async run(opts) {
    const n = opts.quick ? 50_000 : 100_000;
    const a = tsm.tensor([1]), b = tsm.tensor([2]);
    // Check before timing: the ops compute what they should.
    const s = a.add(b), r = a.neg().relu();
    if (s.item() !== 3 || r.item() !== 0) throw new Error(`overhead: wrong results ${s.item()} ${r.item()}`);
    s.dispose();
    r.dispose();
    const raw = nativeAddon();
    const x = new Float32Array(1), y = new Float32Array(1);
    const rawUs = perCallUs(() => raw.unaryForward(0, y, x), n);
    const gcUs = perCallUs(() => { a.add(b); }, n);
    // The two ops against PyTorch's (1 thread), in alternating blocks: each block one untimed loop
    // of n ops and then two timed ones, on each side; the row keeps each side's fastest loop.
    const loop = (op: () => void) => () => { for (let i = 0; i < n; i++) op(); };
    const [peer] = await startTorchPeers<{ torch: string }>(PYTHON, path.join(__dirname, 'peers', 'overhead.py'),
      () => ['1', String(n)], 1, () => {});
    const cmp = { blocks: opts.quick ? 2 : 5, blockTime: 0 };
    const side = async (name: string, op: () => void) => {
      const t = await compareSides([{ name: 'ours', block: localBlock(loop(op)) },
        { name: 'peer', block: (sec: number) => peer.proc.request<number[]>(`${name} ${sec}`) }], cmp);
      return { ours: (Math.min(...t.times.ours) / n) * 1e6, peer: (Math.min(...t.times.peer) / n) * 1e6 };
    };
    let add, relu;
    try {
      add = await side('add', () => a.add(b).dispose());
      relu = await side('relu', () => a.relu().dispose());
    } finally {
      await closePeers([peer]);
    }
    const row = (name: string, t: { ours: number; peer: number }, note: string): BenchRow => ({
      name, unit: 'us/op', ours: +t.ours.toFixed(3), peer: `PyTorch ${peer.hello.torch}`, peerValue: +t.peer.toFixed(3),
      ratio: +(t.peer / t.ours).toFixed(3), lowerIsBetter: true, note,
    });
    return {
      rows: [
        row('add 1-element tensors (then dispose)', add, `raw native call ${rawUs.toFixed(3)} us; without dispose (GC backstop) ${gcUs.toFixed(3)} us`),
        row('relu 1-element tensor (then dispose)', relu, 'target: <= 2 us per op'),
      ],
    };
  },
};
