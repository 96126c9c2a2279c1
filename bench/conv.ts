// conv2d forward, backward-data and backward-weight (+bias) on the layer shapes of the MNIST CNN (and
// a ResNet-style 3x3 layer), ours vs PyTorch CPU (oneDNN) side by side. PyTorch first checks our
// outputs and gradients on the same data (read from a safetensors file), then both are timed, in
// alternating blocks (a PyTorch process stays up for the layer and times a block on request).
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as tsm from '../lib/index';
import { nativeAddon } from '../lib/native-api';
import { closePeers, compareSides, localBlock, median, startTorchPeers, type Benchmark, type BenchRow, type TorchPeer } from './lib';

const PYTHON = process.env.TSM_TORCH_PYTHON ?? '/usr/bin/python3';

interface Layer { name: string; n: number; c: number; h: number; oc: number; k: number; stride: number; pad: number }

const LAYERS: Layer[] = [
  { name: 'conv1 1->32 3x3 28x28', n: 64, c: 1, h: 28, oc: 32, k: 3, stride: 1, pad: 0 },
  { name: 'conv2 32->64 3x3 13x13', n: 64, c: 32, h: 13, oc: 64, k: 3, stride: 1, pad: 0 },
  { name: 'resnet 64->64 3x3 56x56 pad1', n: 8, c: 64, h: 56, oc: 64, k: 3, stride: 1, pad: 1 },
];

export const benchmark: Benchmark = {
  description: 'conv2d forward / backward-data / backward-weight on the CNN layer shapes vs PyTorch CPU (oneDNN)',
  async run(opts) {
    // Blocks of ours and of PyTorch alternate (compareSides): 6 blocks of 0.25 s per pass and side
    // (--quick: 2 of 0.05 s). PyTorch stays running for the layer in two processes, one with our
    // thread count and one with 1 thread (startTorchPeers); each layer's rows report the one whose
    // three passes took less in all.
    const cmp = opts.quick ? { blocks: 2, blockTime: 0.05 } : { blocks: 6, blockTime: 0.25 };
    tsm.setNumThreads(opts.threads);
    tsm.manualSeed(5);
    const N = nativeAddon();
    const rows: BenchRow[] = [];
    for (const L of LAYERS) {
      const oh = Math.floor((L.h + 2 * L.pad - L.k) / L.stride) + 1;
      const x = tsm.randn([L.n, L.c, L.h, L.h]), w = tsm.randn([L.oc, L.c, L.k, L.k], { std: 0.1 }), b = tsm.randn([L.oc]);
      const dy = tsm.randn([L.n, L.oc, oh, oh]);
      const y = tsm.zeros([L.n, L.oc, oh, oh]), dx = tsm.zeros(x.shape.slice()), dw = tsm.zeros(w.shape.slice()), db = tsm.zeros([L.oc]);
      const f = (t: tsm.Tensor) => t._data as Float32Array;
      const geo = [L.n, L.c, L.h, L.h, L.oc, L.k, L.k, L.stride, L.stride, L.pad, L.pad, 1, 1, 1] as const;
      const fwd = () => N.conv2dForward(f(y), f(x), f(w), f(b), ...geo);
      const bwdData = () => N.conv2dBackwardData(f(dx), f(dy), f(w), ...geo);
      const bwdWeight = () => N.conv2dBackwardWeight(f(dw), f(db), f(dy), f(x), ...geo);
      fwd(); bwdData(); bwdWeight();
      const file = path.join(os.tmpdir(), `tsm-conv-${process.pid}.safetensors`);
      tsm.io.save({ x, w, b, dy, 'ours.y': y, 'ours.dx': dx, 'ours.dw': dw, 'ours.db': db }, file);
      let peers: TorchPeer<{ maxRelErr: Record<string, number>; torch: string }>[];
      try {
        // Each PyTorch process checks our outputs and gradients first.
        peers = await startTorchPeers(PYTHON, path.join(__dirname, 'peers', 'conv.py'), (t) => [file, String(t), String(L.stride), String(L.pad)],
          opts.threads, (hello) => {
            for (const [k, e] of Object.entries(hello.maxRelErr))
              if (!(e < 1e-4)) throw new Error(`conv ${L.name}: ${k} differs from PyTorch (max relative error ${e})`);
          });
      } finally {
        fs.rmSync(file, { force: true });
      }
      const passes: [string, string, () => void][] = [['fwd', 'fwd', fwd], ['bwd-data', 'bwdData', bwdData], ['bwd-weight+bias', 'bwdWeight', bwdWeight]];
      const timed: Awaited<ReturnType<typeof compareSides>>[] = [];
      try {
        for (const [, which, fn] of passes) {
          timed.push(await compareSides([{ name: 'ours', block: localBlock(fn) },
            ...peers.map((p) => ({ name: `${p.threads}t`, block: (seconds: number) => p.proc.request<number[]>(`${which} ${seconds}`) }))], cmp));
        }
      } finally {
        await closePeers(peers);
      }
      const total = (t: number) => timed.reduce((acc, r) => acc + median(r.times[`${t}t`]), 0);
      const best = peers.reduce((a, p) => (total(p.threads) < total(a.threads) ? p : a));
      const tried = peers.map((p) => `${p.threads}t ${(total(p.threads) * 1e3).toFixed(2)} ms`).join(', ');
      const flops = 2 * L.n * L.oc * oh * oh * L.c * L.k * L.k;
      passes.forEach(([pass], i) => {
        const r = timed[i];
        const ours = median(r.times.ours), theirs = median(r.times[`${best.threads}t`]);
        const busy = r.backgroundLoad > 0.15 ? `; machine busy: other processes used ${r.backgroundLoad.toFixed(2)} CPUs` : '';
        rows.push({
          name: `conv2d ${pass} ${L.name} N${L.n}`, unit: 'ms', ours: +(ours * 1e3).toFixed(3), peer: `PyTorch ${best.hello.torch} (${best.threads}t)`,
          peerValue: +(theirs * 1e3).toFixed(3), ratio: +(theirs / ours).toFixed(3), lowerIsBetter: true,
          note: `${(flops / ours / 1e9).toFixed(0)} GFLOP/s vs ${(flops / theirs / 1e9).toFixed(0)}; medians of ${r.times.ours.length} / ` +
            `${r.times[`${best.threads}t`].length} calls in alternating blocks; PyTorch's three passes ${tried}${busy}`,
        });
      });
      for (const t of [x, w, b, dy, y, dx, dw, db]) t.dispose();
    }
    return { rows, settings: { peerPython: PYTHON } };
  },
};
