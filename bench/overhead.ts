// The cost of a tiny op through the whole TypeScript stack (argument checks, Tensor creation,
// autograd bookkeeping, the native call, dispose), against the same op through PyTorch's eager
// stack. The target (BENCHMARKS.md) is <= 2 us of overhead per op.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tsm from '../lib/index';
import { nativeAddon } from '../lib/native-api';
import { sleep, type Benchmark, type BenchRow } from './lib';

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
  run(opts) {
    const n = opts.quick ? 50_000 : 200_000;
    const a = tsm.tensor([1]), b = tsm.tensor([2]);
    // Check before timing: the ops compute what they should.
    const s = a.add(b), r = a.neg().relu();
    if (s.item() !== 3 || r.item() !== 0) throw new Error(`overhead: wrong results ${s.item()} ${r.item()}`);
    s.dispose();
    r.dispose();
    const raw = nativeAddon();
    const x = new Float32Array(1), y = new Float32Array(1);
    const rawUs = perCallUs(() => raw.unaryForward(0, y, x), n);
    const addUs = perCallUs(() => a.add(b).dispose(), n);
    const reluUs = perCallUs(() => a.relu().dispose(), n);
    const gcUs = perCallUs(() => { a.add(b); }, n);
    sleep(200);
    const py = spawnSync(PYTHON, [path.join(__dirname, 'peers', 'overhead.py'), '1'], { encoding: 'utf8' });
    if (py.status !== 0) throw new Error(`PyTorch peer failed (is python3-torch installed for ${PYTHON}?):\n${py.stderr}`);
    const peer = JSON.parse(py.stdout.trim().split('\n').pop() as string) as { addUs: number; reluUs: number; torch: string };
    const row = (name: string, ours: number, theirs: number, note: string): BenchRow => ({
      name, unit: 'us/op', ours: +ours.toFixed(3), peer: `PyTorch ${peer.torch}`, peerValue: +theirs.toFixed(3),
      ratio: +(theirs / ours).toFixed(3), lowerIsBetter: true, note,
    });
    return {
      rows: [
        row('add 1-element tensors (then dispose)', addUs, peer.addUs, `raw native call ${rawUs.toFixed(3)} us; without dispose (GC backstop) ${gcUs.toFixed(3)} us`),
        row('relu 1-element tensor (then dispose)', reluUs, peer.reluUs, 'target: <= 2 us per op'),
      ],
    };
  },
};
