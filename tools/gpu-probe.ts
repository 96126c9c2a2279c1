// A few GEMMs of one shape on the GPU, for a profiler to look at (ncu -k regex:gemm ...) or for a
// quick timing with host clocks around synchronised blocks. Random inputs (never zeros).
//   node node_modules/tsx/dist/cli.mjs tools/gpu-probe.ts TYPE M N K [REPS] [ALGO]
//   TYPE f32 (NN) | tf32 | bf16 | f16 (TN: B given as N x K, the layout the wgmma path takes)
//   ALGO auto | simt | mma | wgmma (tsm.cuda.setGemmAlgo)
import * as cuda from '../lib/cuda';

const [type = 'bf16', ms = '4096', ns = '4096', ks = '4096', repsS = '3', algo = 'auto'] = process.argv.slice(2);
const m = Number(ms), n = Number(ns), k = Number(ks), reps = Number(repsS);
const t = type as 'f32' | 'tf32' | 'bf16' | 'f16';
const half = t === 'bf16' || t === 'f16';
const rnd = (len: number) => Float32Array.from({ length: len }, () => Math.random() * 2 - 1);
const enc = (x: Float32Array) => (t === 'bf16' ? cuda.toBfloat16(x) : t === 'f16' ? cuda.toFloat16(x) : x);
const a = cuda.DeviceBuffer.from(enc(rnd(m * k))), b = cuda.DeviceBuffer.from(enc(rnd(n * k)));
const c = new cuda.DeviceBuffer(m * n * (half ? 2 : 4));
cuda.setGemmAlgo(algo as cuda.GemmAlgo);
const cDtype = t === 'bf16' ? 'bfloat16' : t === 'f16' ? 'float16' : 'float32';
const run = () => cuda.gemm({ type: t, transB: t !== 'f32', m, n, k, a, b, c, cDtype });
run();
cuda.synchronize();
const t0 = performance.now();
for (let i = 0; i < reps; ++i) run();
cuda.synchronize();
const ms1 = (performance.now() - t0) / reps;
console.log(`gpu-probe ${t} ${m}x${n}x${k} algo ${cuda.lastGemmAlgo()}: ${ms1.toFixed(3)} ms/product, ${((2 * m * n * k) / ms1 / 1e9).toFixed(1)} TFLOP/s (host clock over ${reps})`);
