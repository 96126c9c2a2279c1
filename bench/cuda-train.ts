// cuda-train: whole training steps on the GPU, ours against PyTorch eager on the same GPU, side by
// side in one run (peer: bench/peers/cuda_train.py):
//  - cnn: the MNIST CNN of examples/mnist-cnn.ts (DESIGN.md system 2), batch 64, SGD momentum 0.9,
//    cross-entropy; samples/s;
//  - lm: the Transformer LM of examples/transformer-lm.ts with 6 layers, d_model 256, 8 heads,
//    feed-forward 1024 (4 d), GELU, pre-norm, causal, dropout 0, on random tokens (vocabulary 96),
//    batch 32 x seq 128 (BENCHMARKS.md's Transformer shape), Adam 1e-3, cross-entropy; tokens/s.
//
// Validation, before anything is timed (`validateCase`): the model is built on the CPU from a seed,
// copied to the device, and one step is taken on both from the same weights and batch; the losses
// before and after the step must agree (relative GPU_VS_CPU_TOL). Then the weights and the batch go to
// the peer in a safetensors file (as bench/train-cnn.ts does); the peer takes one step on the GPU
// and its losses must agree with ours (PEER_TOL; PyTorch runs with TF32 off: float32 on both sides).
//
// Timing, both sides alike: a warm-up, then blocks of K back-to-back steps (no loss read inside)
// between two synchronizes (tsm.cuda.synchronize() / torch.cuda.synchronize()), wall clock
// (performance.now() / time.perf_counter()); per-step time = block / K, median over the blocks.
// Options: --quick (3 blocks instead of 10), --models cnn,lm, --blocks N, --steps K.
// The peer runs with $TSM_TORCH_PYTHON, else python3. Device call 10 of cuda/README.md runs it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import * as tsm from '../lib/index';
import * as cuda from '../lib/cuda';
import { MnistCnn } from '../examples/mnist-cnn';
import { TransformerLm } from '../examples/transformer-lm';
import { argValue, type Benchmark, type BenchOptions, type BenchResult, type BenchRow, median, randomArray } from './lib';

const PYTHON = process.env.TSM_TORCH_PYTHON ?? 'python3';

/** Ours on the device against ours on the CPU, one step from the same weights (summation order differs). */
export const GPU_VS_CPU_TOL = 1e-4;
/** Ours on the GPU against PyTorch eager on the GPU (float32, TF32 off). */
export const PEER_TOL = 5e-4;
/** BENCHMARKS.md target: ours at least this fraction of PyTorch eager's samples or tokens per second. */
export const TARGET_RATIO = 1.0;

export type ModelKey = 'cnn' | 'lm';

export interface CaseConfig {
  key: ModelKey;
  name: string;
  batch: number;
  /** Sequence length (lm) or 1 (cnn): units per sample for the throughput. */
  seq: number;
  unit: 'samples/s' | 'tokens/s';
  /** lm only. */
  layers?: number; dModel?: number; heads?: number; vocab?: number;
  optimizer: 'sgd' | 'adam';
  lr: number;
  momentum?: number;
}

export const CASES: Record<ModelKey, CaseConfig> = {
  cnn: { key: 'cnn', name: 'MNIST CNN batch 64 SGD-momentum', batch: 64, seq: 1, unit: 'samples/s', optimizer: 'sgd', lr: 0.01, momentum: 0.9 },
  lm: { key: 'lm', name: 'Transformer LM 6 layers d256 h8 ff1024 32x128 Adam', batch: 32, seq: 128, unit: 'tokens/s',
    layers: 6, dModel: 256, heads: 8, vocab: 96, optimizer: 'adam', lr: 1e-3 },
};

/** A smaller configuration of a case (for tests on the emulated device). */
export function scaled(c: CaseConfig, o: Partial<CaseConfig>): CaseConfig {
  return { ...c, ...o };
}

/** A model of the case, its batch (on the CPU) and a training step on `device`. */
export interface TrainCase {
  cfg: CaseConfig;
  model: tsm.nn.Module;
  x: tsm.Tensor;
  y: tsm.Tensor;
  /** One training step; returns the loss tensor (on the model's device, kept past the step). */
  step(): tsm.Tensor;
  /** The loss on the batch without a step. */
  lossNow(): number;
  dispose(): void;
}

/** The batch of a case, deterministic (CPU tensors). */
export function caseBatch(cfg: CaseConfig, seed = 7): { x: tsm.Tensor; y: tsm.Tensor } {
  if (cfg.key === 'cnn') {
    const x = randomArray(cfg.batch * 784, seed);
    for (let i = 0; i < x.length; i++) x[i] = Math.abs(x[i]); // pixel-like values in [0, 1)
    const y = Int32Array.from({ length: cfg.batch }, (_, i) => (i * 7 + seed) % 10);
    return { x: tsm.tensor(x, { shape: [cfg.batch, 1, 28, 28] }), y: tsm.tensor(y) };
  }
  const n = cfg.batch * cfg.seq, v = cfg.vocab as number;
  const ids = Int32Array.from({ length: n + 1 }, (_, i) => (i * 2654435761 + seed * 40503) % 4294967296 % v);
  return { x: tsm.tensor(ids.subarray(0, n), { shape: [cfg.batch, cfg.seq] }), y: tsm.tensor(ids.slice(1, n + 1), { shape: [cfg.batch, cfg.seq] }) };
}

/** The case's model built on the CPU from `seed` (the same weights for every device), then moved. */
export function buildCase(cfg: CaseConfig, device: tsm.Device, seed = 1): TrainCase {
  tsm.manualSeed(seed);
  const model: tsm.nn.Module = cfg.key === 'cnn' ? new MnistCnn()
    : new TransformerLm({ vocabSize: cfg.vocab as number, dModel: cfg.dModel, nhead: cfg.heads, numLayers: cfg.layers,
      dimFeedforward: 4 * (cfg.dModel as number), dropout: 0, maxLen: cfg.seq });
  model.to(device);
  const { x: xc, y: yc } = caseBatch(cfg);
  const x = xc.to(device), y = yc.to(device);
  if (device !== 'cpu') { xc.dispose(); yc.dispose(); }
  const params = model.parameters();
  const opt = cfg.optimizer === 'sgd'
    ? new tsm.optim.SGD(params, { lr: cfg.lr, momentum: cfg.momentum ?? 0 })
    : new tsm.optim.Adam(params, { lr: cfg.lr });
  const fwd = model as unknown as { forward(x: tsm.Tensor): tsm.Tensor };
  const loss = () => {
    const out = fwd.forward(x);
    const c = out.shape[out.ndim - 1];
    return tsm.F.crossEntropy(out.reshape([-1, c]), y.reshape([-1]));
  };
  return {
    cfg, model, x, y,
    step: () => tsm.tidy(() => {
      opt.zeroGrad();
      const l = loss();
      l.backward();
      opt.step();
      return l.detach();
    }),
    lossNow: () => tsm.noGrad(() => tsm.tidy(() => loss().item())),
    dispose: () => { for (const t of [x, y, ...model.parameters()]) t.dispose(); },
  };
}

/** max |a - b| / max(1, |b|). */
export function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(1, Math.abs(b));
}

/** Throws naming the case and the pair unless both losses agree within tol (NaN never agrees). */
export function checkLossPair(what: string, ours: [number, number], ref: [number, number], tol: number): void {
  ['before the step', 'after the step'].forEach((when, i) => {
    const d = relDiff(ours[i], ref[i]);
    if (!(d <= tol)) throw new Error(`cuda-train: ${what}: loss ${when} differs: ${ours[i]} vs ${ref[i]} (relative ${d}, tolerance ${tol})`);
  });
}

/**
 * One step of the case on `device` and on the CPU from the same weights and batch; throws unless the
 * losses before and after the step agree. Returns the device case (stepped once) and its losses.
 */
export function validateCase(cfg: CaseConfig, device: tsm.Device, tol = GPU_VS_CPU_TOL): { dev: TrainCase; losses: [number, number]; cpu: [number, number] } {
  const cpuCase = buildCase(cfg, 'cpu');
  const c0 = cpuCase.step().item(), c1 = cpuCase.lossNow();
  cpuCase.dispose();
  const dev = buildCase(cfg, device);
  const l0 = dev.step(), d0 = l0.item(), d1 = dev.lossNow();
  l0.dispose();
  checkLossPair(`${cfg.name}: ours on ${device} against ours on the CPU`, [d0, d1], [c0, c1], tol);
  return { dev, losses: [d0, d1], cpu: [c0, c1] };
}

/** Per-step milliseconds: blocks of K steps between two synchronize() calls. */
export function timeStepBlocks(step: () => tsm.Tensor, calls: number, blocks: number, warmup: number): number[] {
  for (let i = 0; i < warmup; i++) step().dispose();
  cuda.synchronize();
  const out: number[] = [];
  for (let b = 0; b < blocks; b++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) step().dispose();
    cuda.synchronize();
    out.push((performance.now() - t0) / calls);
  }
  return out;
}

interface PeerCase { loss0: number; loss1: number; wallMs: number; wallBlocksMs: number[] }
interface PeerOutput { cases: PeerCase[]; torch: string; device: string }

export const benchmark: Benchmark = {
  description: 'GPU training steps (MNIST CNN batch 64 SGD; 6-layer Transformer LM d256 32x128 Adam) vs PyTorch eager on the GPU',
  run(opts: BenchOptions): BenchResult {
    if (!cuda.isAvailable()) throw new Error(`cuda-train: needs a CUDA GPU: ${cuda.unavailableReason()}`);
    const dev = cuda.deviceInfo(0);
    console.log(`GPU: ${dev.name} (sm_${dev.computeCapability.replace('.', '')}, ${dev.multiprocessors} SMs)`);
    const keys = (argValue(opts.args, 'models') ?? 'cnn,lm').split(',');
    const unknown = keys.filter((k) => !(k in CASES));
    if (unknown.length) throw new Error(`cuda-train: unknown model ${unknown.join(', ')}; known: ${Object.keys(CASES).join(', ')}`);
    const cfgs = keys.map((k) => CASES[k as ModelKey]);
    const blocks = Number(argValue(opts.args, 'blocks') ?? (opts.quick ? 3 : 10));
    const calls = Number(argValue(opts.args, 'steps') ?? 10);
    if (!Number.isInteger(blocks) || blocks < 1 || !Number.isInteger(calls) || calls < 1)
      throw new Error('cuda-train: --blocks and --steps need positive integers');
    const warmup = 3;
    const file = path.join(os.tmpdir(), `tsm-cuda-train-${process.pid}.safetensors`);
    const cases: TrainCase[] = [];
    const rows: BenchRow[] = [];
    const validation: Record<string, unknown> = {};
    try {
      // 1. ours on the GPU against ours on the CPU; the initial weights and batches for the peer.
      const save: Record<string, tsm.Tensor> = {};
      cfgs.forEach((cfg, i) => {
        const init = buildCase(cfg, 'cpu');
        for (const [k, v] of Object.entries(init.model.stateDict())) save[`${i}.${k}`] = v;
        save[`${i}.batch.x`] = init.x;
        save[`${i}.batch.y`] = init.y;
        const { dev: d, losses, cpu } = validateCase(cfg, 'cuda');
        cases.push(d);
        validation[cfg.key] = { ours: losses, oursCpu: cpu };
        console.log(`validated ${cfg.name}: loss ${losses[0].toFixed(6)} -> ${losses[1].toFixed(6)} on the GPU, ${cpu[0].toFixed(6)} -> ${cpu[1].toFixed(6)} on the CPU`);
      });
      tsm.io.save(save, file);

      // 2. the peer: the same first step (losses compared), then timed.
      const peerCfg = cfgs.map((c) => ({ ...c, calls }));
      const py = spawnSync(PYTHON, [path.join(__dirname, 'peers', 'cuda_train.py'), file, JSON.stringify(peerCfg), String(warmup), String(blocks)],
        { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (py.status !== 0) throw new Error(`cuda-train: the PyTorch peer failed (${PYTHON}; set TSM_TORCH_PYTHON):\n${py.stderr || py.error}`);
      const peer = JSON.parse(py.stdout.trim().split('\n').pop() as string) as PeerOutput;
      cfgs.forEach((cfg, i) => {
        const p = peer.cases[i], v = validation[cfg.key] as { ours: [number, number] };
        checkLossPair(`${cfg.name}: ours against PyTorch ${peer.torch} on the GPU`, v.ours, [p.loss0, p.loss1], PEER_TOL);
        (validation[cfg.key] as Record<string, unknown>).peer = [p.loss0, p.loss1];
      });

      // 3. ours, timed.
      const peerName = `PyTorch ${peer.torch} eager (${peer.device})`;
      cfgs.forEach((cfg, i) => {
        const ms = median(timeStepBlocks(cases[i].step, calls, blocks, warmup));
        const per = cfg.batch * cfg.seq;
        const ours = per / (ms * 1e-3), theirs = per / (peer.cases[i].wallMs * 1e-3);
        rows.push({
          name: `cuda-train ${cfg.name}`, unit: cfg.unit, ours: Math.round(ours), peer: peerName, peerValue: Math.round(theirs),
          ratio: +(ours / theirs).toFixed(3),
          note: `median step ${ms.toFixed(3)} ms vs ${peer.cases[i].wallMs.toFixed(3)} ms; ${blocks} blocks of ${calls} steps between synchronize; target >= ${TARGET_RATIO}x`,
        });
        console.log(`${cfg.name}: ours ${ms.toFixed(3)} ms/step (${Math.round(ours)} ${cfg.unit}), PyTorch ${peer.cases[i].wallMs.toFixed(3)} ms/step`);
      });
      return {
        rows,
        machine: { gpu: dev.name, gpuComputeCapability: dev.computeCapability, gpuMultiprocessors: dev.multiprocessors },
        settings: {
          peer: `${peerName}: float32, matmul/cudnn TF32 off, cudnn.benchmark on`,
          timing: 'per-step median over blocks of K steps between two synchronize() calls (performance.now() / time.perf_counter())',
          warmup, blocks, stepsPerBlock: calls, cases: cfgs, tolerances: { gpuVsCpu: GPU_VS_CPU_TOL, peer: PEER_TOL }, validation,
        },
      };
    } finally {
      fs.rmSync(file, { force: true });
      for (const c of cases) c.dispose();
      cuda.emptyCache();
    }
  },
};
