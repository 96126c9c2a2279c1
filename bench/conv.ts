// conv2d forward, backward-data and backward-weight (+bias) on the layer shapes of the MNIST CNN (and
// a ResNet-style 3x3 layer), ours vs PyTorch CPU (oneDNN) side by side. PyTorch first checks our
// outputs and gradients on the same data (read from a safetensors file), then both are timed.
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as tsm from '../lib/index';
import { nativeAddon } from '../lib/native-api';
import { median, runTorchPeer, type Benchmark, type BenchRow } from './lib';

const PYTHON = process.env.TSM_TORCH_PYTHON ?? '/usr/bin/python3';

interface Layer { name: string; n: number; c: number; h: number; oc: number; k: number; stride: number; pad: number }

const LAYERS: Layer[] = [
  { name: 'conv1 1->32 3x3 28x28', n: 64, c: 1, h: 28, oc: 32, k: 3, stride: 1, pad: 0 },
  { name: 'conv2 32->64 3x3 13x13', n: 64, c: 32, h: 13, oc: 64, k: 3, stride: 1, pad: 0 },
  { name: 'resnet 64->64 3x3 56x56 pad1', n: 8, c: 64, h: 56, oc: 64, k: 3, stride: 1, pad: 1 },
];

function timeIt(fn: () => void, seconds: number): number[] {
  for (let i = 0; i < 3; i++) fn();
  const out: number[] = [];
  const start = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - start) * 1e-9 < seconds || out.length < 5) {
    const t0 = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t0) * 1e-9);
  }
  return out;
}

export const benchmark: Benchmark = {
  description: 'conv2d forward / backward-data / backward-weight on the CNN layer shapes vs PyTorch CPU (oneDNN)',
  run(opts) {
    const seconds = opts.quick ? 0.3 : 1.5;
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
      let peer;
      try {
        peer = runTorchPeer(PYTHON, path.join(__dirname, 'peers', 'conv.py'),
          (t) => [file, String(t), String(seconds), String(L.stride), String(L.pad)], opts.threads,
          (r) => { const p = r as unknown as Record<string, number[]>; return median(p.fwd) + median(p.bwdData) + median(p.bwdWeight); }) as unknown as
          { maxRelErr: Record<string, number>; fwd: number[]; bwdData: number[]; bwdWeight: number[]; torch: string; threads: number };
      } finally {
        fs.rmSync(file, { force: true });
      }
      for (const [k, e] of Object.entries(peer.maxRelErr))
        if (!(e < 1e-4)) throw new Error(`conv ${L.name}: ${k} differs from PyTorch (max relative error ${e})`);
      const flops = 2 * L.n * L.oc * oh * oh * L.c * L.k * L.k;
      const passes: [string, () => void, number[]][] = [['fwd', fwd, peer.fwd], ['bwd-data', bwdData, peer.bwdData], ['bwd-weight+bias', bwdWeight, peer.bwdWeight]];
      for (const [pass, fn, theirs] of passes) {
        const ours = median(timeIt(fn, seconds));
        const t = median(theirs);
        rows.push({
          name: `conv2d ${pass} ${L.name} N${L.n}`, unit: 'ms', ours: +(ours * 1e3).toFixed(3), peer: `PyTorch ${peer.torch} (${peer.threads}t)`,
          peerValue: +(t * 1e3).toFixed(3), ratio: +(t / ours).toFixed(3), lowerIsBetter: true,
          note: `${(flops / ours / 1e9).toFixed(0)} GFLOP/s vs ${(flops / t / 1e9).toFixed(0)}; max rel err vs PyTorch ${Math.max(...Object.values(peer.maxRelErr)).toExponential(1)}`,
        });
      }
      for (const t of [x, w, b, dy, y, dx, dw, db]) t.dispose();
    }
    return { rows, settings: { peerPython: PYTHON } };
  },
};
