// SGEMM: tensorsmith vs OpenBLAS (cblas_sgemm from libopenblas.so.0, loaded with dlopen by the addon),
// same thread count, same inputs, results compared before anything is timed.
//   npm run bench -- gemm [--threads N] [--quick] [--peer libopenblas.so.0|libblis.so.4]
//                         [--openblas-coretype SkylakeX|Haswell|inherit]
import * as fs from 'node:fs';
import * as tsm from '../lib/index';
import { nativeAddon } from '../lib/native-api';
import { argValue, type Benchmark, type BenchOptions, type BenchResult, type BenchRow, compareSides, localBlock, median, PeakProbe, randomArray, type Side, waitQuiet } from './lib';

interface Shape {
  name: string;
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  /** Threads for this row when it differs from the run's. */
  threads?: number;
  /** A layer's shape, whose target is 1.2x the peer: the row notes what that needs of the peak. */
  layer?: boolean;
}

const sq = (s: number): Shape => ({ name: `sgemm NN ${s}x${s}x${s}`, transA: false, transB: false, m: s, n: s, k: s });
const shape = (ta: boolean, tb: boolean, m: number, n: number, k: number, why: string): Shape => ({
  name: `sgemm ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${m}x${n}x${k} (${why})`, transA: ta, transB: tb, m, n, k, layer: true,
});

/**
 * The NN-shaped GEMMs of BENCHMARKS.md (m x n x k) and the forms a Linear layer y = x W^T
 * (x: batch x in, W: out x in) uses in training: forward NT, input gradient dx = dy W (NN),
 * weight gradient dW = dy^T x (TN).
 */
function layerShapes(batch: number, outF: number, inF: number, what: string): Shape[] {
  const all = [
    shape(false, false, batch, outF, inF, `${what}`),
    shape(false, true, batch, outF, inF, `${what} fwd x*W^T`),
    shape(false, false, batch, inF, outF, `${what} bwd dx=dy*W`),
    shape(true, false, outF, inF, batch, `${what} bwd dW=dy^T*x`),
  ];
  // A square weight (in == out) makes the dx product the same as the NN row: time it once.
  return all.filter((s, i) => all.findIndex((t) => t.transA === s.transA && t.transB === s.transB &&
    t.m === s.m && t.n === s.n && t.k === s.k) === i);
}

export const SHAPES: Shape[] = [
  ...[128, 256, 512, 1024, 1536, 2048].map(sq),
  ...layerShapes(64, 512, 1600, 'CNN fc1'),
  ...layerShapes(128, 2048, 256, 'FFN up'),
  ...layerShapes(4096, 256, 256, 'attn proj'),
];

function maxRelError(x: Float32Array, ref: Float32Array): number {
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < x.length; ++i) {
    const d = Math.abs(x[i] - ref[i]);
    if (!(d <= maxDiff)) maxDiff = d; // NaN-safe: a NaN difference becomes the maximum
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return maxDiff / (maxRef || 1);
}

async function run(opts: BenchOptions): Promise<BenchResult> {
  const probe = PeakProbe.build(tsm.buildInfo().simd);
  try {
    return await runWith(opts, probe);
  } finally {
    probe?.close();
  }
}

async function runWith(opts: BenchOptions, probe: PeakProbe | undefined): Promise<BenchResult> {
  const raw = nativeAddon();
  const peerLib = argValue(opts.args, 'peer') ?? 'libopenblas.so.0';
  const peerName = /blis/i.test(peerLib) ? 'BLIS' : /openblas/i.test(peerLib) ? 'OpenBLAS' : peerLib;
  // The peer at its best on this CPU: OpenBLAS 0.3.21 (Debian 12) does not know Zen 5 and falls back
  // to its AVX2 "Haswell" kernels there (and an inherited OPENBLAS_CORETYPE=Haswell forces them),
  // half the machine's FP32 peak. Where the CPU has AVX-512 the bench loads OpenBLAS's AVX-512
  // ("SkylakeX") kernels instead; DYNAMIC_ARCH builds read OPENBLAS_CORETYPE when loaded.
  //   --openblas-coretype NAME      use NAME (Haswell, SkylakeX, Zen, ...)
  //   --openblas-coretype inherit   keep the environment's OPENBLAS_CORETYPE (or OpenBLAS's own detection)
  const coreArg = argValue(opts.args, 'openblas-coretype');
  const inherited = process.env.OPENBLAS_CORETYPE;
  if (peerName === 'OpenBLAS' && coreArg !== 'inherit') {
    const want = coreArg ?? (hasCpuFlag('avx512f') ? 'SkylakeX' : inherited);
    if (want) process.env.OPENBLAS_CORETYPE = want;
    if (want && inherited && want !== inherited) {
      console.error(`gemm: OPENBLAS_CORETYPE=${inherited} in the environment; using ${want} for the peer ` +
        '(--openblas-coretype inherit keeps it)');
    }
  }
  try {
    raw.peerBlasLoad(peerLib);
  } catch (err) {
    throw new Error(`gemm: cannot load the peer BLAS ${peerLib} (${(err as Error).message}). ` +
      'Install it: apt-get install -y libopenblas-dev (or libblis-dev).');
  }
  const setThreads = (n: number) => {
    tsm.setNumThreads(n);
    if (!raw.peerBlasSetThreads(n)) throw new Error(`gemm: ${peerLib} exports no thread-count setter`);
  };

  const simd = tsm.buildInfo().simd;
  waitQuiet(200);
  const peak = probe?.measure();
  if (peak) {
    console.error(`gemm: one core's FP32 peak (${simd}) measured at ${peak.fp32PeakGflops.toFixed(1)} GFLOP/s ` +
      `(${peak.clockGHz.toFixed(2)} GHz x ${peak.flopsPerCycle.toFixed(1)} FLOP/cycle)`);
  }

  // The operands as a layer's tensors hold them: 64-byte aligned (see kernels.alignedFloat32Array).
  const aligned = (x: Float32Array) => { const y = tsm.kernels.alignedFloat32Array(x.length); y.set(x); return y; };
  const shapes: Shape[] = [...SHAPES, { ...sq(1024), name: 'sgemm NN 1024x1024x1024 1 thread', threads: 1 }];
  const rows: BenchRow[] = [];
  for (const s of shapes) {
    const threads = s.threads ?? opts.threads;
    setThreads(threads);
    const { transA, transB, m, n, k } = s;
    const lda = transA ? m : k, ldb = transB ? k : n, ldc = n;
    const a = aligned(randomArray(m * k, 1)), b = aligned(randomArray(k * n, 2));
    const cOurs = tsm.kernels.alignedFloat32Array(m * n), cPeer = tsm.kernels.alignedFloat32Array(m * n);
    const ours = () => tsm.kernels.sgemm({ transA, transB, m, n, k, alpha: 1, a, lda, b, ldb, beta: 0, c: cOurs, ldc });
    const peer = () => raw.peerBlasSgemm(transA, transB, m, n, k, 1, a, lda, b, ldb, 0, cPeer, ldc);

    // Check before timing: the same product from both, to float32 accuracy.
    ours();
    peer();
    const err = maxRelError(cOurs, cPeer);
    if (!(err < 1e-4)) {
      throw new Error(`gemm: WRONG RESULT for ${s.name}: max |ours - ${peerName}| / max |${peerName}| = ${err}`);
    }

    // The 1-thread row also times the core's FMA peak in blocks of its own between ours and the
    // peer's, for its rate against the peak of the same minutes.
    const onePeak = s.threads === 1 && probe !== undefined;
    const sides: Side[] = [{ name: 'ours', block: localBlock(ours, 200) }, { name: 'peer', block: localBlock(peer, 200) }];
    if (onePeak) sides.push({ name: 'peak', block: (sec) => probe.block(sec) });
    const r = await compareSides(sides, opts.quick ? { blocks: 2, blockTime: 0.05 } : { blocks: 6, blockTime: 0.15 });
    const t = { ours: median(r.times.ours), peer: median(r.times.peer), backgroundLoad: r.backgroundLoad,
                runs: Math.min(r.times.ours.length, r.times.peer.length) };
    const flop = 2 * m * n * k;
    const gOurs = flop / t.ours / 1e9, gPeer = flop / t.peer / 1e9;
    const row: BenchRow = {
      name: s.name, unit: 'GFLOP/s', ours: round(gOurs), peer: peerName, peerValue: round(gPeer),
      ratio: round(gOurs / gPeer, 3), threads, maxRelError: Number(err.toExponential(2)),
      backgroundLoad: round(t.backgroundLoad),
    } as BenchRow;
    if (t.backgroundLoad > 0.15) row.note = `machine busy: other processes used ${t.backgroundLoad.toFixed(2)} CPUs`;
    if (s.threads === 1 && peak) {
      const pct = (g: number, p: number) => `${((100 * g) / p).toFixed(0)}%`;
      row.note = `${row.note ? `${row.note}; ` : ''}${pct(gOurs, peak.fp32PeakGflops)} of 1-core FP32 peak ` +
        `(${peerName} ${pct(gPeer, peak.fp32PeakGflops)}; peak ${peak.fp32PeakGflops.toFixed(0)} GFLOP/s measured at the start)`;
      if (onePeak) {
        const p = probe.flops / median(r.times.peak) / 1e9;
        row.note += `; ${pct(gOurs, p)} of the peak timed in blocks alternating with this row's ` +
          `(${peerName} ${pct(gPeer, p)}; median ${p.toFixed(1)} GFLOP/s)`;
        Object.assign(row, { peakAlternatingGflops: round(p) });
      }
    }
    if (s.layer && peak) {
      // The target of these rows is 1.2x the peer; against the machine's peak (threads x one core's),
      // that is out of reach wherever the peer runs at more than 1/1.2 = 83% of it.
      const all = threads * peak.fp32PeakGflops, pct = (g: number) => ((100 * g) / all).toFixed(0);
      row.note = `${row.note ? `${row.note}; ` : ''}ours ${pct(gOurs)}%, ${peerName} ${pct(gPeer)}% of the ${threads}-core ` +
        `peak; 1.2x ${peerName} = ${pct(1.2 * gPeer)}%`;
    }
    rows.push(row);
    console.error(`  ${s.name} [${threads}t]: ours ${gOurs.toFixed(1)}, ${peerName} ${gPeer.toFixed(1)} GFLOP/s, ` +
      `ratio ${(gOurs / gPeer).toFixed(3)} (${t.runs} runs each, max rel err ${err.toExponential(1)}, ` +
      `background ${t.backgroundLoad.toFixed(2)} CPUs)`);
  }
  setThreads(opts.threads);

  return {
    rows,
    machine: { simd, ...(peak ? { clockGHz: round(peak.clockGHz, 3), fp32PeakGflopsPerCore: round(peak.fp32PeakGflops), peakMethod: peak.method } : {}) },
    settings: {
      peer: peerLib,
      ...(peerName === 'OpenBLAS'
        ? {
            openblasCoretype: process.env.OPENBLAS_CORETYPE ?? '(its own detection)',
            ...(inherited !== undefined ? { inheritedOpenblasCoretype: inherited } : {}),
            ...(process.env.OPENBLAS_L2_SIZE ? { openblasL2Size: process.env.OPENBLAS_L2_SIZE } : {}),
          }
        : {}),
      timing: 'median of alternating blocks (ours/peer), >= 150 ms pause before each switch (extended while ' +
        'other processes keep > 0.15 CPUs busy, up to 3 s), 1 warm-up call per block',
      inputs: 'uniform [-1, 1), alpha 1, beta 0, tight leading dimensions; shapes are m x n x k',
    },
  };
}

function hasCpuFlag(flag: string): boolean {
  try {
    return new RegExp(`^flags\\s*:.*\\b${flag}\\b`, 'm').test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const benchmark: Benchmark = {
  description: 'SGEMM vs OpenBLAS (square 128-2048, the layer shapes of BENCHMARKS.md, 1-thread % of peak)',
  run,
};
