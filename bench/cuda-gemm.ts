// cuda-gemm: our GPU GEMMs against cuBLAS (cublasGemmEx, loaded with dlopen at bench time), for
// SGEMM (CUDA cores), TF32, BF16 and FP16 (tensor cores, float32 accumulation), square 1024-8192
// and the network shapes of BENCHMARKS.md.
//
// For each case: validate first (ours vs cuBLAS on the same random inputs, relative Frobenius
// difference under a per-dtype tolerance, no NaN), then time both with CUDA events around each
// product (cpp/binding/peer_cublas.cpp: cudaTimeGemm), after a warm-up, in alternating blocks,
// rotating over several input sets so the inputs do not sit in L2; report medians in TFLOP/s.
//
// Layouts: SGEMM is timed NN (row-major A and B); the tensor-core types TN (row-major A, B given as
// N x K, i.e. y = x W^T): the layout our sm_90a wgmma kernel takes. One NN bf16 row shows the
// mma.sync fallback. cuBLAS computes exactly the same products (same layouts, same output type).
//
// cuBLAS is found through TSM_CUBLAS (a path to libcublas.so*), else in /usr/local/cuda*/lib64, else
// in the Python environment's nvidia/cublas/lib. Options: --quick (1024 and 4096 only, fewer reps),
// --sizes 1024,4096, --types f32,bf16.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cuda from '../lib/cuda';
import { argValue, type Benchmark, type BenchOptions, type BenchResult, type BenchRow, median, randomArray } from './lib';

type T = cuda.GemmType;

function findCublas(): { lib: string; lt: string; from: string } {
  const tried: string[] = [];
  const pick = (dir: string, from: string) => {
    tried.push(dir);
    if (!fs.existsSync(dir)) return undefined;
    const names = fs.readdirSync(dir);
    const lib = names.filter((f) => /^libcublas\.so(\.\d+)*$/.test(f)).sort((a, b) => b.length - a.length)[0];
    const lt = names.filter((f) => /^libcublasLt\.so(\.\d+)*$/.test(f)).sort((a, b) => b.length - a.length)[0];
    return lib ? { lib: path.join(dir, lib), lt: lt ? path.join(dir, lt) : '', from } : undefined;
  };
  const env = process.env.TSM_CUBLAS;
  if (env) {
    if (!fs.existsSync(env)) throw new Error(`cuda-gemm: TSM_CUBLAS=${env} does not exist`);
    const dir = path.dirname(env);
    const lt = fs.readdirSync(dir).find((f) => /^libcublasLt\.so/.test(f));
    return { lib: env, lt: lt ? path.join(dir, lt) : '', from: 'TSM_CUBLAS' };
  }
  const dirs = ['/usr/local/cuda/lib64', ...(fs.existsSync('/usr/local') ? fs.readdirSync('/usr/local').filter((d) => d.startsWith('cuda-')).map((d) => `/usr/local/${d}/lib64`) : [])];
  for (const d of dirs) {
    const r = pick(d, 'CUDA install');
    if (r) return r;
  }
  for (const py of ['python3', '/usr/bin/python3']) {
    try {
      const dir = execFileSync(py, ['-c', 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) or list(nvidia.cublas.__path__)[0])'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      const r = pick(path.join(dir, 'lib'), `${py} nvidia.cublas`);
      if (r) return r;
    } catch {
      tried.push(`${py}: import nvidia.cublas failed`);
    }
  }
  throw new Error(`cuda-gemm: cuBLAS not found (set TSM_CUBLAS=/path/to/libcublas.so); tried ${tried.join(', ')}`);
}

interface Case { type: T; m: number; n: number; k: number; tb: boolean; label: string }

const TYPE_CODE: Record<T, number> = { f32: 0, tf32: 1, bf16: 2, f16: 3 };
const CDT: Record<T, number> = { f32: 0, tf32: 0, bf16: 1, f16: 2 };  // C type: float32, or the 16-bit input type
const TOL: Record<T, number> = { f32: 1e-5, tf32: 5e-3, bf16: 1e-2, f16: 3e-3 };

function cases(opts: BenchOptions): Case[] {
  const sizes = (argValue(opts.args, 'sizes') ?? (opts.quick ? '1024,4096' : '1024,2048,4096,8192')).split(',').map(Number);
  const types = (argValue(opts.args, 'types') ?? 'f32,tf32,bf16,f16').split(',') as T[];
  const out: Case[] = [];
  for (const type of types) {
    const tb = type !== 'f32';
    const lay = tb ? 'TN' : 'NN';
    for (const s of sizes) out.push({ type, m: s, n: s, k: s, tb, label: `${type} ${lay} ${s}x${s}x${s}` });
    if (!opts.quick) {
      for (const [m, n, k] of [[64, 512, 1600], [128, 2048, 256], [4096, 256, 256], [8192, 4096, 4096], [16384, 1024, 4096]])
        out.push({ type, m, n, k, tb, label: `${type} ${lay} ${m}x${n}x${k}` });
    }
  }
  if (types.includes('bf16')) out.push({ type: 'bf16', m: 4096, n: 4096, k: 4096, tb: false, label: 'bf16 NN 4096x4096x4096 (mma.sync path)' });
  return out;
}

function encode(type: T, x: Float32Array): ArrayBufferView {
  return type === 'bf16' ? cuda.toBfloat16(x) : type === 'f16' ? cuda.toFloat16(x) : x;
}
function decodeC(type: T, raw: Float32Array | Uint16Array): Float32Array {
  return type === 'bf16' ? cuda.fromBfloat16(raw as Uint16Array) : type === 'f16' ? cuda.fromFloat16(raw as Uint16Array) : (raw as Float32Array);
}

export const benchmark: Benchmark = {
  description: 'GPU GEMM (SGEMM, TF32, BF16, FP16) vs cuBLAS: validate, then CUDA-event medians',
  run(opts: BenchOptions): BenchResult {
    if (!cuda.isAvailable()) throw new Error(`cuda-gemm: needs a CUDA GPU: ${cuda.unavailableReason()}`);
    const native = cuda.cudaAddon();
    if (!native.peerCublasLoad || !native.cudaTimeGemm || !native.peerCublasGemm)
      throw new Error('cuda-gemm: this build lacks the cuBLAS peer helper (cpp/binding/peer_cublas.cpp)');
    const found = findCublas();
    const version = native.peerCublasLoad(found.lib, found.lt);
    const dev = cuda.deviceInfo(0);
    console.log(`GPU: ${dev.name} (sm_${dev.computeCapability.replace('.', '')}, ${dev.multiprocessors} SMs); cuBLAS ${version} from ${found.lib} (${found.from})`);

    const rows: BenchRow[] = [];
    const reps = opts.quick ? 12 : 40;
    for (const cs of cases(opts)) {
      const { type, m, n, k, tb } = cs;
      const esz = type === 'f32' || type === 'tf32' ? 4 : 2, csz = CDT[type] === 0 ? 4 : 2;
      const setBytes = (m * k + k * n) * esz + m * n * csz;
      // Enough input sets that one pass over them exceeds L2 (50-60 MB on H100/H200) three times.
      const sets = Math.max(2, Math.min(8, Math.ceil((3 * 64 << 20) / setBytes)));
      const hostA = randomArray(m * k + sets * 7, 11 + m), hostB = randomArray(k * n + sets * 7, 23 + n);
      const As: cuda.DeviceBuffer[] = [], Bs: cuda.DeviceBuffer[] = [], Cs: cuda.DeviceBuffer[] = [];
      for (let i = 0; i < sets; ++i) {
        As.push(cuda.DeviceBuffer.from(encode(type, hostA.subarray(i * 7, i * 7 + m * k))));
        Bs.push(cuda.DeviceBuffer.from(encode(type, hostB.subarray(i * 7, i * 7 + k * n))));
        Cs.push(new cuda.DeviceBuffer(m * n * csz).fill(0xff));
      }
      const ref = new cuda.DeviceBuffer(m * n * csz).fill(0xff);
      try {
        // 1. validate against cuBLAS on the same inputs
        cuda.setGemmAlgo('auto');
        cuda.gemm({ type, transB: tb, m, n, k, a: As[0], b: Bs[0], c: Cs[0], cDtype: (['float32', 'bfloat16', 'float16'] as const)[CDT[type]] });
        const algo = cuda.lastGemmAlgo();
        native.peerCublasGemm(TYPE_CODE[type], false, tb, m, n, k, CDT[type], As[0].handle, Bs[0].handle, ref.handle);
        const mk = () => (csz === 4 ? new Float32Array(m * n) : new Uint16Array(m * n));
        const ours = decodeC(type, Cs[0].download(mk())), theirs = decodeC(type, ref.download(mk()));
        let num = 0, den = 0, nan = 0;
        for (let i = 0; i < ours.length; ++i) {
          if (Number.isNaN(ours[i])) nan++;
          num += (ours[i] - theirs[i]) ** 2;
          den += theirs[i] ** 2;
        }
        const diff = Math.sqrt(num / den);
        if (nan > 0 || !(diff < TOL[type]))
          throw new Error(`cuda-gemm: ${cs.label} (${algo}) does not match cuBLAS: relative difference ${diff.toExponential(2)} (tolerance ${TOL[type]}), ${nan} NaN`);

        // 2. time: alternating blocks of CUDA-event-timed products, rotating inputs
        const h = (xs: cuda.DeviceBuffer[]) => xs.map((x) => x.handle);
        const time = (peer: boolean, r: number) =>
          native.cudaTimeGemm!(peer, TYPE_CODE[type], false, tb, m, n, k, CDT[type], h(As), h(Bs), h(Cs), 0, r);
        time(false, 5); time(true, 5);  // warm-up (module load, cuBLAS heuristics, clocks)
        const t: { ours: number[]; peer: number[] } = { ours: [], peer: [] };
        for (let blk = 0; blk < 4; ++blk) {
          const order = blk % 2 === 0 ? [false, true] : [true, false];
          for (const peer of order) (peer ? t.peer : t.ours).push(...time(peer, reps / 4));
        }
        const flops = 2 * m * n * k;
        const oursT = flops / (median(t.ours) * 1e-3) / 1e12, peerT = flops / (median(t.peer) * 1e-3) / 1e12;
        rows.push({ name: cs.label, unit: 'TFLOP/s', ours: oursT, peer: 'cuBLAS', peerValue: peerT, ratio: oursT / peerT,
          note: `${algo}; diff ${diff.toExponential(1)}; ${sets} input sets` });
        console.log(`${cs.label}: ours ${oursT.toFixed(1)} (${algo}), cuBLAS ${peerT.toFixed(1)} TFLOP/s, ratio ${(oursT / peerT).toFixed(3)}`);
      } finally {
        for (const b of [...As, ...Bs, ...Cs, ref]) b.free();
        cuda.emptyCache();
      }
    }
    return {
      rows,
      machine: { gpu: dev.name, gpuComputeCapability: dev.computeCapability, gpuMultiprocessors: dev.multiprocessors },
      settings: { cublas: found.lib, cublasVersion: version, timing: 'CUDA events per product, medians of 4 alternating blocks, rotating input sets', reps },
    };
  },
};
