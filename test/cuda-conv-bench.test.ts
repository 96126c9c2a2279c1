// bench/cuda-conv.ts without a GPU: the runner knows it and it stops with the "needs a CUDA GPU"
// message where there is none, and its validation (our GPU result against our CPU kernels) passes on
// the emulated device of helpers/cuda-emulator.ts (whose conv kernels are the CPU kernels) and fails,
// naming the result, when a kernel writes a wrong element or leaves one unwritten. The real GPU run
// (and the comparison with cuDNN) is device call 8 of cuda/README.md.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  benchmark, checkErrors, deviceLayer, hostLayer, maxRelError, validateAgainstCpu, type ConvLayer, type DeviceLayer,
} from '../bench/cuda-conv';
import * as cuda from '../lib/cuda';
import { nativeAddon } from '../lib/native-api';
import { installCudaEmulator, type CudaEmulator } from './helpers/cuda-emulator';

const root = path.resolve(__dirname, '..');
const hasGpu = cuda.isAvailable();

describe('without a CUDA device', () => {
  it.skipIf(hasGpu)('benchmark.run fails with the clear message', () => {
    expect(() => benchmark.run({ threads: 1, quick: true, args: [] })).toThrow(/^cuda-conv: needs a CUDA GPU: \S/);
  });

  it.skipIf(hasGpu)('npm run bench -- cuda-conv names the reason and exits 1', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'node_modules/tsx/dist/cli.mjs'), 'bench/run.ts', 'cuda-conv', '--no-record'],
      { cwd: root, encoding: 'utf8', env: { ...process.env, TSM_TORCH_PYTHON: '/nonexistent' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bench cuda-conv FAILED: Error: cuda-conv: needs a CUDA GPU: /);
  });
});

describe('validation helpers', () => {
  it('maxRelError is max|a - ref| / max|ref|, NaN for an unwritten element', () => {
    expect(maxRelError([1, 2.5, -4], [1, 2, -4])).toBeCloseTo(0.125, 12);
    expect(maxRelError([0, 0], [0, 0])).toBe(0);
    expect(maxRelError([1, NaN], [1, 2])).toBeNaN();
  });

  it('checkErrors accepts errors within the tolerance and refuses larger ones and NaN', () => {
    expect(() => checkErrors('L', { y: 0, dx: 1e-5 }, 1e-4)).not.toThrow();
    expect(() => checkErrors('L', { y: 0, dw: 2e-4 }, 1e-4)).toThrow(/cuda-conv: L: dw does not match: max relative error 0.0002 \(tolerance 0.0001\)/);
    expect(() => checkErrors('L', { db: NaN }, 1e-4)).toThrow(/db does not match.*not written/);
  });
});

describe('validation on the emulated device', () => {
  let emulator: CudaEmulator;
  const addon = nativeAddon() as unknown as Record<string, (...a: unknown[]) => unknown>;
  // Small, with padding, stride 2 and an odd width, so every index map matters.
  const L: ConvLayer = { key: 't', name: 'test 3->4 3x3 9x7 s2 pad1', n: 2, c: 3, h: 9, w: 7, oc: 4, k: 3, stride: 2, pad: 1 };
  beforeAll(() => { emulator = installCudaEmulator(); });
  afterAll(() => emulator.uninstall());

  /** Runs validateAgainstCpu with `entry` replaced by `wrap(original)` for the call. */
  function validateWith(entry?: string, wrap?: (orig: (...a: unknown[]) => unknown) => (...a: unknown[]) => unknown) {
    const h = hostLayer(L, 3);
    const d: DeviceLayer = deviceLayer(L, h);
    const orig = entry ? addon[entry] : undefined;
    if (entry && orig && wrap) addon[entry] = wrap(orig);
    try {
      return validateAgainstCpu(L, h, d);
    } finally {
      if (entry && orig) addon[entry] = orig;
      d.dispose();
    }
  }
  /** Changes element i of a float32 device buffer (through the emulated download/upload). */
  const bump = (handle: unknown, n: number, i: number, f: (v: number) => number) => {
    const a = new Float32Array(n);
    addon.cudaDownload(handle, a);
    a[i] = f(a[i]);
    addon.cudaUpload(handle, a);
  };

  it('passes, with the GPU results returned, when the kernels are right', () => {
    const { errs, gpu } = validateWith();
    expect(errs).toEqual({ y: 0, dx: 0, dw: 0, db: 0 });
    expect(gpu.y.length).toBe(2 * 4 * 5 * 4);
    expect(emulator.calls.get('cudaConv2dBackwardWeight')).toBeGreaterThan(0);
  });

  it('fails naming y when the forward skips the bias', () => {
    expect(() => validateWith('cudaConv2dForward', (o) => (y, x, w, _b, ...sz) => o(y, x, w, null, ...sz)))
      .toThrow(/our GPU result against our CPU kernels: y does not match/);
  });

  it('fails naming dx when one input gradient element is never written', () => {
    expect(() => validateWith('cudaConv2dBackwardData', (o) => (dx, ...rest) => {
      o(dx, ...rest);
      bump(dx, 2 * 3 * 9 * 7, 100, () => NaN);
    })).toThrow(/dx does not match: max relative error NaN/);
  });

  it('fails naming dw when one weight gradient element is off by 0.05', () => {
    expect(() => validateWith('cudaConv2dBackwardWeight', (o) => (dw, ...rest) => {
      o(dw, ...rest);
      bump(dw, 4 * 3 * 3 * 3, 17, (v) => v + 0.05);
    })).toThrow(/dw does not match/);
  });

  it('fails naming db when the bias gradient is not computed', () => {
    expect(() => validateWith('cudaConv2dBackwardWeight', (o) => (dw, _db, ...rest) => o(dw, null, ...rest)))
      .toThrow(/db does not match: max relative error NaN/);
  });
});
