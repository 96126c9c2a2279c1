// Fused attention (F.scaledDotProductAttention) forward and forward+backward, B = 1, H = 4, D = 64,
// L = 128 ... 4096, causal and not, vs PyTorch CPU's unfused math (q k^T, softmax, @ v, autograd
// backward; bench/peers/attention.py). Results are checked against the float64 reference first.
//   npm run bench -- attention [--max-len 4096] [--heads 4]
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tsm from '../lib/index';
import { scaledDotProductAttention, scaledDotProductAttentionReference } from '../lib/attention';
import { argValue, median, sleep, timeRuns, type Benchmark, type BenchRow } from './lib';

const PYTHON = process.env.TSM_TORCH_PYTHON ?? '/usr/bin/python3';

function check(): void {
  // A prefix of queries against all keys, causal and not, vs the float64 reference.
  tsm.manualSeed(3);
  const q = tsm.randn([1, 2, 300, 64]), k = tsm.randn([1, 2, 300, 64]), v = tsm.randn([1, 2, 300, 64]);
  for (const isCausal of [false, true]) {
    const a = scaledDotProductAttention(q, k, v, { isCausal }).dataSync();
    const r = scaledDotProductAttentionReference(q, k, v, { isCausal }).dataSync();
    for (let i = 0; i < a.length; i++)
      if (Math.abs(a[i] - r[i]) > 1e-5 + 1e-4 * Math.abs(r[i])) throw new Error(`attention result differs from the reference at ${i}: ${a[i]} vs ${r[i]}`);
  }
}

export const benchmark: Benchmark = {
  description: 'fused attention forward and forward+backward (B=1, H=4, D=64, L=128..4096, causal and not) vs PyTorch unfused math',
  run(opts) {
    const maxLen = Number(argValue(opts.args, 'max-len') ?? 4096);
    const H = Number(argValue(opts.args, 'heads') ?? 4);
    const B = 1, D = 64;
    const perCase = opts.quick ? 0.3 : 1;
    tsm.setNumThreads(opts.threads);
    check();
    const configs: { B: number; H: number; L: number; D: number; causal: boolean }[] = [];
    for (let L = 128; L <= maxLen; L *= 2) for (const causal of [false, true]) configs.push({ B, H, L, D, causal });
    sleep(200);
    const py = spawnSync(PYTHON, [path.join(__dirname, 'peers', 'attention.py'), JSON.stringify(configs), String(opts.threads), String(perCase)],
      { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(opts.threads) }, maxBuffer: 1 << 24 });
    if (py.status !== 0) throw new Error(`PyTorch peer failed (is python3-torch installed for ${PYTHON}?):\n${py.stderr}`);
    const peer = JSON.parse(py.stdout.trim().split('\n').pop() as string) as { results: { L: number; causal: boolean; fwd: number; fwdbwd: number }[]; torch: string };
    sleep(200);
    const rows: BenchRow[] = [];
    configs.forEach((c, i) => {
      tsm.manualSeed(i);
      const q = tsm.randn([B, H, c.L, D]), k = tsm.randn([B, H, c.L, D]), v = tsm.randn([B, H, c.L, D]);
      const dy = tsm.randn([B, H, c.L, D]);
      const fwd = median(timeRuns(() => tsm.noGrad(() => scaledDotProductAttention(q, k, v, { isCausal: c.causal }).dispose()),
        { warmup: 1, minRuns: 3, minTime: perCase }));
      [q, k, v].forEach((t) => t.requiresGrad_(true));
      const fb = median(timeRuns(() => {
        const y = scaledDotProductAttention(q, k, v, { isCausal: c.causal });
        y.backward(dy);
        y.dispose();
        for (const t of [q, k, v]) { t.grad?.dispose(); t.grad = null; }
      }, { warmup: 1, minRuns: 3, minTime: perCase }));
      const p = peer.results[i];
      const tag = `attention B${B} H${H} L${c.L} D${D}${c.causal ? ' causal' : ''}`;
      const flops = (c.causal ? 0.5 : 1) * 4 * B * H * c.L * c.L * D;
      rows.push({ name: `${tag} fwd`, unit: 'ms', ours: +(fwd * 1e3).toFixed(3), peer: `PyTorch ${peer.torch} math`, peerValue: +(p.fwd * 1e3).toFixed(3),
        ratio: +(p.fwd / fwd).toFixed(3), lowerIsBetter: true, threads: opts.threads, note: `${(flops / fwd / 1e9).toFixed(1)} GFLOP/s` });
      rows.push({ name: `${tag} fwd+bwd`, unit: 'ms', ours: +(fb * 1e3).toFixed(3), peer: `PyTorch ${peer.torch} math`, peerValue: +(p.fwdbwd * 1e3).toFixed(3),
        ratio: +(p.fwdbwd / fb).toFixed(3), lowerIsBetter: true, threads: opts.threads, note: `${(3.5 * flops / fb / 1e9).toFixed(1)} GFLOP/s` });
    });
    return { rows, settings: { B, H, D, peerPython: PYTHON, peerNote: 'q@k^T*scale, masked_fill (causal), softmax, @v; autograd backward' } };
  },
};
