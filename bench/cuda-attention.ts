// cuda-attention: our fused GPU attention (tsm.cuda.attention / attentionBackward) against PyTorch's
// torch.nn.functional.scaled_dot_product_attention with the flash backend (bench/peers/cuda_attention.py),
// bfloat16, head dim 64 and 128, L = 1k..8k, causal and not, forward and backward.
//
// Shapes as the FlashAttention-2 paper's benchmark: batch * L = 16k tokens, heads * D = 2048. First
// the kernels are validated against the float64 host reference (test/helpers/attention-ref.ts) on
// small cases (forward and backward, causal and not, with a key-padding mask); then each side is
// timed with CUDA events around each call (ours: cpp/binding/ops_cuda_attention.cpp cudaTimeAttention;
// PyTorch: torch.cuda.Event) after a warm-up, and medians are reported as TFLOP/s:
//   forward 4 B H L^2 D flops (half of it causal), backward 2.5x the forward (5 products instead of 2).
// Options: --quick (L = 1k and 4k, fewer reps), --lens 1024,2048, --dims 64,128.
// The peer runs with $TSM_TORCH_PYTHON, else python3.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as cuda from '../lib/cuda';
import { attentionBackwardRef, attentionRef, relError } from '../test/helpers/attention-ref';
import { argValue, type Benchmark, type BenchOptions, type BenchResult, type BenchRow, median, randomArray } from './lib';

const PYTHON = process.env.TSM_TORCH_PYTHON ?? 'python3';

interface Cfg { B: number; H: number; L: number; D: number; causal: boolean }

function validate(): string[] {
  const notes: string[] = [];
  const cases: Array<Cfg & { kl: number[] | null }> = [
    { B: 2, H: 2, L: 257, D: 64, causal: false, kl: null },
    { B: 2, H: 2, L: 257, D: 64, causal: true, kl: [200, 0] },
    { B: 1, H: 3, L: 200, D: 128, causal: true, kl: null },
    { B: 2, H: 1, L: 150, D: 128, causal: false, kl: [150, 33] },
  ];
  cases.forEach((c, ci) => {
    const { B, H, L, D } = c, n = B * H * L * D, scale = 1 / Math.sqrt(D);
    const enc = (x: Float32Array) => { const h = cuda.toBfloat16(x); return { h, f: cuda.fromBfloat16(h) }; };
    const q = enc(randomArray(n, 101 + ci)), k = enc(randomArray(n, 202 + ci)), v = enc(randomArray(n, 303 + ci));
    const g = enc(randomArray(n, 404 + ci));
    const bufs = [q.h, k.h, v.h, g.h].map((x) => cuda.DeviceBuffer.from(x));
    const [Q, K, V, G] = bufs;
    const out = [n, n, n, n].map((m) => new cuda.DeviceBuffer(m * 2).fill(0xff));
    const [O, dQ, dK, dV] = out;
    const LSE = new cuda.DeviceBuffer(B * H * L * 4).fill(0xff);
    const KL = c.kl ? cuda.DeviceBuffer.from(Int32Array.from(c.kl)) : null;
    try {
      const opts = { batch: B, heads: H, seqLen: L, headDim: D, dtype: 'bfloat16' as const, isCausal: c.causal, keyLengths: KL };
      cuda.attention({ q: Q, k: K, v: V, o: O, lse: LSE, ...opts });
      cuda.attentionBackward({ dout: G, q: Q, k: K, v: V, o: O, lse: LSE, dq: dQ, dk: dK, dv: dV, ...opts });
      const p = { B, H, Lq: L, Lk: L, D, scale, causal: c.causal, keyLengths: c.kl };
      const ref = attentionRef(p, q.f, k.f, v.f), gr = attentionBackwardRef(p, q.f, k.f, v.f, g.f);
      const get = (b: cuda.DeviceBuffer) => cuda.fromBfloat16(b.download(new Uint16Array(n)));
      const errs = [relError(get(O), ref.o), relError(get(dQ), gr.dq), relError(get(dK), gr.dk), relError(get(dV), gr.dv)];
      const tol = [1e-2, 1e-2, 1e-2, 1e-2];  // bf16, as test/cuda-attention.test.ts
      const names = ['o', 'dq', 'dk', 'dv'];
      errs.forEach((e, i) => {
        if (e.nan > 0 || !(e.err < tol[i]))
          throw new Error(`cuda-attention: ${names[i]} of ${JSON.stringify(c)} does not match the float64 reference: relative error ${e.err.toExponential(2)} (tolerance ${tol[i]}), ${e.nan} NaN`);
      });
      notes.push(`${JSON.stringify(c)}: o ${errs[0].err.toExponential(1)}, dq ${errs[1].err.toExponential(1)}, dk ${errs[2].err.toExponential(1)}, dv ${errs[3].err.toExponential(1)}`);
    } finally {
      for (const b of [...bufs, ...out, LSE, KL]) b?.free();
    }
  });
  return notes;
}

export const benchmark: Benchmark = {
  description: 'GPU fused attention (bf16, D 64/128, L 1k-8k, causal and not, fwd and bwd) vs PyTorch SDPA flash: validate, then CUDA-event medians',
  run(opts: BenchOptions): BenchResult {
    if (!cuda.isAvailable()) throw new Error(`cuda-attention: needs a CUDA GPU: ${cuda.unavailableReason()}`);
    const dev = cuda.deviceInfo(0);
    console.log(`GPU: ${dev.name} (sm_${dev.computeCapability.replace('.', '')}, ${dev.multiprocessors} SMs)`);
    const checks = validate();
    for (const c of checks) console.log(`validated ${c}`);

    const lens = (argValue(opts.args, 'lens') ?? (opts.quick ? '1024,4096' : '1024,2048,4096,8192')).split(',').map(Number);
    const dims = (argValue(opts.args, 'dims') ?? '64,128').split(',').map(Number);
    const configs: Cfg[] = [];
    for (const D of dims) for (const L of lens) for (const causal of [false, true])
      configs.push({ B: Math.max(1, Math.floor(16384 / L)), H: Math.floor(2048 / D), L, D, causal });
    const warmup = opts.quick ? 3 : 10, reps = opts.quick ? 10 : 30;

    const py = spawnSync(PYTHON, [path.join(__dirname, 'peers', 'cuda_attention.py'), JSON.stringify(configs), String(warmup), String(reps)],
      { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (py.status !== 0) throw new Error(`cuda-attention: the PyTorch peer failed (${PYTHON}; set TSM_TORCH_PYTHON):\n${py.stderr || py.error}`);
    const peer = JSON.parse(py.stdout.trim().split('\n').pop() as string) as
      { results: { fwd: number; bwd: number }[]; torch: string; device: string; backend: string };

    // One set of buffers, sized for the largest case (every default case has 16k x 2048 elements).
    const maxN = Math.max(...configs.map((c) => c.B * c.H * c.L * c.D));
    const maxRows = Math.max(...configs.map((c) => c.B * c.H * c.L));
    const bufs = [1, 2, 3, 4].map((s) => cuda.DeviceBuffer.from(cuda.toBfloat16(randomArray(maxN, 7 * s))));
    const [Q, K, V, G] = bufs;
    const outs = [0, 1, 2, 3].map(() => new cuda.DeviceBuffer(maxN * 2));
    const [O, dQ, dK, dV] = outs;
    const LSE = new cuda.DeviceBuffer(maxRows * 4);
    const rows: BenchRow[] = [];
    try {
      configs.forEach((c, i) => {
        const { B, H, L, D } = c;
        const o = { batch: B, heads: H, seqLen: L, headDim: D, dtype: 'bfloat16' as const, isCausal: c.causal };
        const fwdMs = median(cuda.timeAttention(false, { q: Q, k: K, v: V, o: O, lse: LSE, ...o }, warmup, reps));
        const bwdMs = median(cuda.timeAttention(true, { dout: G, q: Q, k: K, v: V, o: O, lse: LSE, dq: dQ, dk: dK, dv: dV, ...o }, warmup, reps));
        const flops = 4 * B * H * L * L * D * (c.causal ? 0.5 : 1);
        const tf = (f: number, ms: number) => f / (ms * 1e-3) / 1e12;
        const p = peer.results[i];
        const tag = `bf16 B${B} H${H} L${L} D${D}${c.causal ? ' causal' : ''}`;
        for (const [dir, ours, theirs, f] of [['fwd', fwdMs, p.fwd, flops], ['bwd', bwdMs, p.bwd, 2.5 * flops]] as const) {
          rows.push({ name: `attention ${tag} ${dir}`, unit: 'TFLOP/s', ours: +tf(f, ours).toFixed(1), peer: `PyTorch ${peer.torch} SDPA flash`,
            peerValue: +tf(f, theirs).toFixed(1), ratio: +(theirs / ours).toFixed(3), note: `${ours.toFixed(3)} ms vs ${theirs.toFixed(3)} ms` });
          console.log(`${tag} ${dir}: ours ${ours.toFixed(3)} ms (${tf(f, ours).toFixed(1)} TFLOP/s), PyTorch ${theirs.toFixed(3)} ms (${tf(f, theirs).toFixed(1)}), ratio ${(theirs / ours).toFixed(3)}`);
        }
      });
    } finally {
      for (const b of [...bufs, ...outs, LSE]) b.free();
      cuda.emptyCache();
    }
    return {
      rows,
      machine: { gpu: dev.name, gpuComputeCapability: dev.computeCapability, gpuMultiprocessors: dev.multiprocessors },
      settings: { peer: `PyTorch ${peer.torch}, ${peer.backend}, on ${peer.device}`, timing: 'CUDA events per call, median', warmup, reps,
        shapes: 'batch * L = 16384, heads * D = 2048', validation: checks },
    };
  },
};
