// cuda-conv: our CUDA conv2d (cuda/conv.cu through the bound kernels cudaConv2dForward /
// cudaConv2dBackwardData / cudaConv2dBackwardWeight, the calls tsm.F.conv2d makes on CUDA tensors)
// against cuDNN through PyTorch (bench/peers/cuda_conv.py), float32, on the MNIST CNN's two layers
// (conv1 1->32 3x3 28x28, conv2 32->64 3x3 13x13, batch 64) and a ResNet-style layer (64->64 3x3
// 56x56 pad 1, batch 32): forward (+bias), backward-data, backward-weight (+bias gradient).
//
// Validation, before anything is timed: each pass runs once on the device into NaN-filled outputs and
// is compared with our CPU kernels on the same inputs (max-norm relative error, max|gpu - cpu| / max|cpu|,
// at most GPU_VS_CPU_TOL: both sum the same float32 products in different orders); then the inputs and
// our GPU results go to the peer in a safetensors file, and the peer compares them with cuDNN's result
// of exactly the call it times (at most GPU_VS_CUDNN_TOL, looser: cuDNN may pick Winograd or FFT
// algorithms, whose float32 rounding differs more). Any failure stops the benchmark before timing.
//
// Timing. There is no CUDA-event timing binding for conv (attention and the cuBLAS peer have one), so
// ours is timed as K back-to-back calls between two tsm.cuda.synchronize() calls with
// performance.now(), per-call time = block / K, median over `blocks` blocks, after a warm-up (the
// caching allocator then holds conv.cu's scratch). The peer is timed the same way (wall clock between
// torch.cuda.synchronize() calls, the same K and number of blocks) and the ratio uses those two
// figures; the peer's CUDA-event time of the same blocks (torch.cuda.Event around each block) is
// reported beside it. K is chosen per layer from its FLOPs so that a block is long against the
// synchronisation (10..200 calls). PyTorch: torch.backends.cudnn.benchmark = True,
// cudnn.allow_tf32 = False (and matmul TF32 off): float32 against float32.
//
// Rows: ms per call (ratio = cuDNN ms / our ms, higher is better; issue #8's target is >= 0.8x), with
// GFLOP/s (2 N OC OH OW C KH KW per pass, bias not counted) in the note and in oursGflops/peerGflops.
// Options: --quick (5 blocks instead of 15), --layers conv1,conv2,resnet, --blocks N.
// The peer runs with $TSM_TORCH_PYTHON, else python3.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import * as cuda from '../lib/cuda';
import type { ConvSizes } from '../lib/cuda-tensor';
import { cudaCall } from '../lib/device';
import * as io from '../lib/io';
import { nativeAddon } from '../lib/native-api';
import { full, tensor } from '../lib/ops';
import type { Tensor } from '../lib/tensor';
import { argValue, type Benchmark, type BenchOptions, type BenchResult, type BenchRow, median, randomArray } from './lib';

const PYTHON = process.env.TSM_TORCH_PYTHON ?? 'python3';

/**
 * Our GPU result against our CPU kernels (same products, different summation order). Float32
 * rounding of these sums measures ~1e-6 (forward, 576 terms) to ~2e-5 (the ResNet layer's weight
 * gradient, 100k terms per element, against PyTorch's CPU result); an index error (a tap, an image or
 * a bias missed) is ~1e-3 and up.
 */
export const GPU_VS_CPU_TOL = 2e-4;
/** Our GPU result against cuDNN's (which may use Winograd / FFT algorithms in float32). */
export const GPU_VS_CUDNN_TOL = 1e-3;
/** Issue #8's target: ours at least this fraction of cuDNN's speed. */
export const TARGET_RATIO = 0.8;

export interface ConvLayer { key: string; name: string; n: number; c: number; h: number; w: number; oc: number; k: number; stride: number; pad: number }

export const LAYERS: ConvLayer[] = [
  { key: 'conv1', name: 'conv1 1->32 3x3 28x28', n: 64, c: 1, h: 28, w: 28, oc: 32, k: 3, stride: 1, pad: 0 },
  { key: 'conv2', name: 'conv2 32->64 3x3 13x13', n: 64, c: 32, h: 13, w: 13, oc: 64, k: 3, stride: 1, pad: 0 },
  { key: 'resnet', name: 'resnet 64->64 3x3 56x56 pad1', n: 32, c: 64, h: 56, w: 56, oc: 64, k: 3, stride: 1, pad: 1 },
];

export type Pass = 'y' | 'dx' | 'dw' | 'db';
const PASSES: Pass[] = ['y', 'dx', 'dw', 'db'];

export function outSize(L: ConvLayer): [number, number] {
  return [Math.floor((L.h + 2 * L.pad - L.k) / L.stride) + 1, Math.floor((L.w + 2 * L.pad - L.k) / L.stride) + 1];
}

/** The kernels' sizes: N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups. */
export function convSizes(L: ConvLayer): ConvSizes {
  return [L.n, L.c, L.h, L.w, L.oc, L.k, L.k, L.stride, L.stride, L.pad, L.pad, 1, 1, 1];
}

/** Multiply-adds times 2 of one pass (the same count for forward, backward-data and backward-weight). */
export function convFlops(L: ConvLayer): number {
  const [oh, ow] = outSize(L);
  return 2 * L.n * L.oc * oh * ow * L.c * L.k * L.k;
}

/** max|a - ref| / max|ref|; NaN when a holds a NaN (an element never written, or a real NaN). */
export function maxRelError(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) throw new RangeError(`maxRelError: lengths differ (${a.length} vs ${ref.length})`);
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; ++i) {
    if (Number.isNaN(a[i])) return NaN;
    num = Math.max(num, Math.abs(a[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  return den === 0 ? num : num / den;
}

/** Throws (naming the layer, the result and who was compared) unless every error is a number <= tol. */
export function checkErrors(what: string, errs: Partial<Record<Pass, number>>, tol: number): void {
  for (const [k, e] of Object.entries(errs))
    if (!(typeof e === 'number' && e <= tol))
      throw new Error(`cuda-conv: ${what}: ${k} does not match: max relative error ${e} (tolerance ${tol}${Number.isNaN(e) ? '; NaN: an element was not written or is NaN' : ''})`);
}

/** Host inputs of a layer (deterministic) and our CPU results on them. */
export interface HostLayer { x: Float32Array; w: Float32Array; b: Float32Array; dy: Float32Array; cpu: Record<Pass, Float32Array> }

export function hostLayer(L: ConvLayer, seed = 1): HostLayer {
  const [oh, ow] = outSize(L);
  const nx = L.n * L.c * L.h * L.w, nw = L.oc * L.c * L.k * L.k, ny = L.n * L.oc * oh * ow;
  const x = randomArray(nx, seed), w = randomArray(nw, seed + 1), b = randomArray(L.oc, seed + 2), dy = randomArray(ny, seed + 3);
  const scale = 1 / Math.sqrt(L.c * L.k * L.k);  // keeps y of order 1 for every layer
  for (let i = 0; i < nw; ++i) w[i] *= scale;
  const cpu = { y: new Float32Array(ny), dx: new Float32Array(nx), dw: new Float32Array(nw), db: new Float32Array(L.oc) };
  const N = nativeAddon(), sz = convSizes(L);
  N.conv2dForward(cpu.y, x, w, b, ...sz);
  N.conv2dBackwardData(cpu.dx, dy, w, ...sz);
  N.conv2dBackwardWeight(cpu.dw, cpu.db, dy, x, ...sz);
  return { x, w, b, dy, cpu };
}

/** A layer's operands on the current CUDA device and its three passes as the bound kernels. */
export interface DeviceLayer {
  t: Record<'x' | 'w' | 'b' | 'dy' | Pass, Tensor>;
  fwd(): void;
  bwdData(): void;
  bwdWeight(): void;
  /** Fills the outputs with NaN (so an element a kernel does not write shows). */
  poison(): void;
  /** The outputs, read back. */
  results(): Record<Pass, Float32Array>;
  dispose(): void;
}

export function deviceLayer(L: ConvLayer, h: HostLayer): DeviceLayer {
  const [oh, ow] = outSize(L);
  const up = (a: Float32Array, shape: number[]) => tensor(a, { shape, device: 'cuda' });
  const nan = (shape: number[]) => full(shape, NaN, { device: 'cuda' });
  const shapes: Record<'x' | 'w' | 'b' | 'dy' | Pass, number[]> = {
    x: [L.n, L.c, L.h, L.w], w: [L.oc, L.c, L.k, L.k], b: [L.oc], dy: [L.n, L.oc, oh, ow],
    y: [L.n, L.oc, oh, ow], dx: [L.n, L.c, L.h, L.w], dw: [L.oc, L.c, L.k, L.k], db: [L.oc],
  };
  const t = {
    x: up(h.x, shapes.x), w: up(h.w, shapes.w), b: up(h.b, shapes.b), dy: up(h.dy, shapes.dy),
    y: nan(shapes.y), dx: nan(shapes.dx), dw: nan(shapes.dw), db: nan(shapes.db),
  };
  const sz = convSizes(L);
  const op = 'cuda-conv';
  const H = (x: Tensor) => x._handle(op);
  return {
    t,
    fwd: () => cudaCall((a) => a.cudaConv2dForward(H(t.y), H(t.x), H(t.w), H(t.b), ...sz)),
    bwdData: () => cudaCall((a) => a.cudaConv2dBackwardData(H(t.dx), H(t.dy), H(t.w), ...sz)),
    bwdWeight: () => cudaCall((a) => a.cudaConv2dBackwardWeight(H(t.dw), H(t.db), H(t.dy), H(t.x), ...sz)),
    poison: () => { for (const p of PASSES) cudaCall((a) => a.cudaFill32(H(t[p]), 0x7fc00000, t[p].size)); },
    results: () => Object.fromEntries(PASSES.map((p) => [p, t[p].dataSync() as Float32Array])) as Record<Pass, Float32Array>,
    dispose: () => { for (const x of Object.values(t)) x.dispose(); },
  };
}

/**
 * Runs each pass once on the device (outputs NaN-filled first) and compares it with our CPU kernels
 * on the same inputs; throws naming the layer and the result that differs. Returns the errors and
 * the device results (for the peer).
 */
export function validateAgainstCpu(L: ConvLayer, h: HostLayer, d: DeviceLayer): { errs: Record<Pass, number>; gpu: Record<Pass, Float32Array> } {
  d.poison();
  d.fwd();
  d.bwdData();
  d.bwdWeight();
  cuda.synchronize();
  const gpu = d.results();
  const errs = Object.fromEntries(PASSES.map((p) => [p, maxRelError(gpu[p], h.cpu[p])])) as Record<Pass, number>;
  checkErrors(`${L.name} N${L.n}, our GPU result against our CPU kernels`, errs, GPU_VS_CPU_TOL);
  return { errs, gpu };
}

/** Per-call milliseconds of fn: K back-to-back calls between two synchronize() calls, per block. */
export function timeBlocks(fn: () => void, calls: number, blocks: number, warmup: number): number[] {
  for (let i = 0; i < warmup; ++i) fn();
  cuda.synchronize();
  const out: number[] = [];
  for (let b = 0; b < blocks; ++b) {
    const t0 = performance.now();
    for (let i = 0; i < calls; ++i) fn();
    cuda.synchronize();
    out.push((performance.now() - t0) / calls);
  }
  return out;
}

/** Calls per timed block: about 20 GFLOP of work, between 10 and 200 calls. */
export function callsPerBlock(L: ConvLayer): number {
  return Math.min(200, Math.max(10, Math.round(2e10 / convFlops(L))));
}

interface PeerTiming { wallMs: number; eventMs: number; wallBlocksMs: number[] }
interface PeerOutput {
  layers: { maxRelErr: Record<Pass, number>; fwd: PeerTiming; bwdData: PeerTiming; bwdWeight: PeerTiming }[];
  torch: string; cudnn: number; device: string;
}

export const benchmark: Benchmark = {
  description: 'GPU conv2d float32 (CNN layers + ResNet 3x3; fwd, bwd-data, bwd-weight) vs cuDNN via PyTorch: validate, then per-call medians of synchronized blocks',
  run(opts: BenchOptions): BenchResult {
    if (!cuda.isAvailable()) throw new Error(`cuda-conv: needs a CUDA GPU: ${cuda.unavailableReason()}`);
    const dev = cuda.deviceInfo(0);
    console.log(`GPU: ${dev.name} (sm_${dev.computeCapability.replace('.', '')}, ${dev.multiprocessors} SMs)`);
    const keys = (argValue(opts.args, 'layers') ?? LAYERS.map((l) => l.key).join(',')).split(',');
    const unknown = keys.filter((k) => !LAYERS.some((l) => l.key === k));
    if (unknown.length) throw new Error(`cuda-conv: unknown layer ${unknown.join(', ')}; known: ${LAYERS.map((l) => l.key).join(', ')}`);
    const layers = LAYERS.filter((l) => keys.includes(l.key));
    const blocks = Number(argValue(opts.args, 'blocks') ?? (opts.quick ? 5 : 15));
    if (!Number.isInteger(blocks) || blocks < 1) throw new Error(`cuda-conv: --blocks needs a positive integer, got ${argValue(opts.args, 'blocks')}`);
    const warmup = 5;

    const hosts = layers.map((L, i) => hostLayer(L, 10 * (i + 1)));
    const devs: DeviceLayer[] = [];
    const file = path.join(os.tmpdir(), `tsm-cuda-conv-${process.pid}.safetensors`);
    const rows: BenchRow[] = [];
    const validation: Record<string, unknown> = {};
    try {
      // 1. ours on the GPU against ours on the CPU; the data for the peer.
      const save: Record<string, Tensor> = {};
      layers.forEach((L, i) => {
        const h = hosts[i], d = deviceLayer(L, h);
        devs.push(d);
        const { errs, gpu } = validateAgainstCpu(L, h, d);
        validation[L.key] = { gpuVsCpu: errs };
        console.log(`validated ${L.name} N${L.n}: GPU vs CPU max rel err ${PASSES.map((p) => `${p} ${errs[p].toExponential(1)}`).join(', ')}`);
        const host = (a: Float32Array, t: Tensor) => tensor(a, { shape: t.shape.slice() });
        Object.assign(save, {
          [`${i}.x`]: host(h.x, d.t.x), [`${i}.w`]: host(h.w, d.t.w), [`${i}.b`]: host(h.b, d.t.b), [`${i}.dy`]: host(h.dy, d.t.dy),
          ...Object.fromEntries(PASSES.map((p) => [`${i}.ours.${p}`, host(gpu[p], d.t[p])])),
        });
      });
      io.save(save, file);
      for (const t of Object.values(save)) t.dispose();

      // 2. the peer: checks our results against cuDNN, then times cuDNN.
      const cfg = layers.map((L) => ({ stride: L.stride, pad: L.pad, calls: callsPerBlock(L) }));
      const py = spawnSync(PYTHON, [path.join(__dirname, 'peers', 'cuda_conv.py'), file, JSON.stringify(cfg), String(warmup), String(blocks)],
        { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (py.status !== 0) throw new Error(`cuda-conv: the PyTorch peer failed (${PYTHON}; set TSM_TORCH_PYTHON):\n${py.stderr || py.error}`);
      const peer = JSON.parse(py.stdout.trim().split('\n').pop() as string) as PeerOutput;
      layers.forEach((L, i) => {
        const e = peer.layers[i].maxRelErr;
        (validation[L.key] as Record<string, unknown>).gpuVsCudnn = e;
        console.log(`validated ${L.name} N${L.n}: GPU vs cuDNN max rel err ${PASSES.map((p) => `${p} ${e[p].toExponential(1)}`).join(', ')}`);
        checkErrors(`${L.name} N${L.n}, our GPU result against cuDNN (PyTorch ${peer.torch})`, e, GPU_VS_CUDNN_TOL);
      });

      // 3. ours, timed.
      const peerName = `cuDNN ${peer.cudnn} (PyTorch ${peer.torch})`;
      layers.forEach((L, i) => {
        const d = devs[i], K = cfg[i].calls, flops = convFlops(L), p = peer.layers[i];
        const passes: [string, () => void, PeerTiming][] = [['fwd+bias', d.fwd, p.fwd], ['bwd-data', d.bwdData, p.bwdData],
          ['bwd-weight+bias', d.bwdWeight, p.bwdWeight]];
        for (const [pass, fn, theirs] of passes) {
          const ours = median(timeBlocks(fn, K, blocks, warmup));
          const gf = (ms: number) => flops / (ms * 1e-3) / 1e9;
          const ratio = theirs.wallMs / ours;
          rows.push({
            name: `conv2d ${pass} f32 ${L.name} N${L.n}`, unit: 'ms', ours: +ours.toPrecision(4), peer: peerName,
            peerValue: +theirs.wallMs.toPrecision(4), ratio: +ratio.toFixed(3), lowerIsBetter: true,
            note: `${gf(ours).toFixed(0)} GFLOP/s vs ${gf(theirs.wallMs).toFixed(0)}; median of ${blocks} blocks of ${K} calls between synchronize (cuDNN by CUDA events ${theirs.eventMs.toPrecision(4)} ms); target >= ${TARGET_RATIO}x`,
            oursGflops: +gf(ours).toFixed(1), peerGflops: +gf(theirs.wallMs).toFixed(1), peerEventMs: +theirs.eventMs.toPrecision(4),
          } as BenchRow);
          console.log(`${L.name} ${pass}: ours ${ours.toFixed(4)} ms (${gf(ours).toFixed(0)} GFLOP/s), cuDNN ${theirs.wallMs.toFixed(4)} ms (events ${theirs.eventMs.toFixed(4)}), ratio ${ratio.toFixed(3)}`);
        }
      });
      return {
        rows,
        machine: { gpu: dev.name, gpuComputeCapability: dev.computeCapability, gpuMultiprocessors: dev.multiprocessors },
        settings: {
          peer: `${peerName} on ${peer.device}: cudnn.benchmark = True, cudnn.allow_tf32 = False, matmul.allow_tf32 = False`,
          ours: 'cuda/conv.cu through the bound kernels cudaConv2dForward/BackwardData/BackwardWeight, outputs preallocated',
          timing: 'per-call median over blocks of K back-to-back calls between two synchronize() calls (performance.now() / '
            + 'time.perf_counter()); ratio = cuDNN ms / our ms; cuDNN CUDA-event block times in peerEventMs',
          warmup, blocks, callsPerBlock: Object.fromEntries(layers.map((L, i) => [L.key, cfg[i].calls])),
          tolerances: { gpuVsCpu: GPU_VS_CPU_TOL, gpuVsCudnn: GPU_VS_CUDNN_TOL, measure: 'max|a - ref| / max|ref|' },
          validation,
        },
      };
    } finally {
      fs.rmSync(file, { force: true });
      for (const d of devs) d.dispose();
      cuda.emptyCache();
    }
  },
};
