// Tensors on CUDA devices: creation and moves, op dispatch to the CUDA kernels (cuda/pointwise.cu,
// layout.cu, reduce.cu, softmax.cu, optim.cu, the GEMMs), autograd and the optimizers on the device,
// the errors of ops without a CUDA kernel and of tensors on different devices, and memory.
//
// Two parts:
//  - everywhere (no GPU needed): CUDA devices are refused with a TsmCudaError that says why, memory
//    reports no device bytes, the CPU behaves as before, and the routing of ops is checked with a
//    tensor that claims to be on cuda:0 (a storage with no device memory behind it): ops without a
//    CUDA kernel and mixed devices fail in TypeScript before anything touches memory.
//  - on a GPU (skipped here with the reason printed): every CUDA op against the CPU on fresh random
//    inputs with odd sizes, outputs poisoned with NaN before each kernel (cuda-tensor's debug.poison)
//    so unwritten elements show, broadcasting, gradients, an MLP trained with SGD and Adam against
//    the CPU, and allocator bytes back to their baseline after dispose/emptyCache.
import { describe, expect, it } from 'vitest';
import * as tsm from '../lib/index';
import type { Tensor } from '../lib/index';
import * as ops from '../lib/ops';
import { Storage, Tensor as TensorClass } from '../lib/tensor';
import { defineCudaTensorSuite } from './helpers/cuda-tensor-suite';

const { F, nn, cuda, TsmCudaError } = tsm;

const available = cuda.isAvailable();
const reason = cuda.unavailableReason();
if (!available) console.log(`[cuda-tensor.test] GPU tests skipped: ${reason}`);

/** The error thrown by fn (fails the test when nothing is thrown). */
function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, nothing was thrown');
}

// ---------------------------------------------------------------------------------------------
// everywhere

/** A tensor that claims to live on cuda:0 but has no device memory (routing tests only). */
function fakeCudaTensor(shape: number[]): Tensor {
  return new TensorClass(null, shape, 'float32', new Storage(null, 'cuda:0', {}, 0));
}

describe('CUDA tensors without a device', () => {
  it.skipIf(available)('refuses CUDA devices with a TsmCudaError that says why', () => {
    const cases: [string, () => unknown][] = [
      ['to', () => tsm.tensor([1, 2]).to('cuda')],
      ['to', () => tsm.tensor([1, 2]).to('cuda:0')],
      ['to', () => tsm.tensor([1, 2]).cuda()],
      ['tensor', () => tsm.tensor([1, 2], { device: 'cuda' })],
      ['zeros', () => tsm.zeros([2], { device: 'cuda' })],
      ['ones', () => tsm.ones([2], { device: 'cuda:0' })],
      ['full', () => tsm.full([2], 3, { device: 'cuda' })],
      ['empty', () => tsm.empty([2], { device: 'cuda' })],
      ['rand', () => tsm.rand([2], { device: 'cuda' })],
      ['randn', () => tsm.randn([2], { device: 'cuda' })],
      ['arange', () => tsm.arange(4, undefined, 1, { device: 'cuda' })],
      ['eye', () => tsm.eye(3, 3, { device: 'cuda' })],
      ['Module.to', () => new nn.Linear(2, 2).to('cuda')],
    ];
    for (const [op, fn] of cases) {
      const e = errorOf(fn);
      expect(e, op).toBeInstanceOf(TsmCudaError);
      expect((e as InstanceType<typeof TsmCudaError>).call).toBe(op);
      expect(e.message).toMatch(new RegExp(`^${op.replace('.', '\\.')}: device 'cuda(:0)?' is not available: `));
      expect(e.message).toContain(reason);
    }
    expect(reason).toMatch(/no CUDA device is visible|no CUDA support/);
    expect(tsm.memory().cudaBytes).toBe(0);
    expect(cuda.memoryStats().allocatedBytes).toBe(0);
  });

  it('rejects unknown device names with a TypeError naming the op', () => {
    expect(() => tsm.zeros([1], { device: 'gpu' as never })).toThrow(/^zeros: device must be 'cpu', 'cuda' or 'cuda:N', got "gpu"/);
    expect(() => tsm.tensor([1]).to('cuda:x' as never)).toThrow(TypeError);
    expect(() => tsm.tensor([1]).cuda('cpu' as never)).toThrow(/^cuda: device must be 'cuda' or 'cuda:N'/);
    expect(() => new nn.Linear(1, 1).to('tpu')).toThrow(/^Module\.to: device must be/);
    expect(() => tsm.tensor([1]).to(7 as never)).toThrow(TypeError);
  });

  it('keeps the CPU behaviour: device, moves that are no-ops, memory', () => {
    const before = tsm.memory();
    const t = tsm.tensor([[1, -2], [3, -4]]);
    expect(t.device).toBe('cpu');
    expect(t.to('cpu')).toBe(t);
    expect(t.cpu()).toBe(t);
    expect(tsm.zerosLike(t).device).toBe('cpu');
    expect(t.relu().add(1).toArray()).toEqual([[2, 1], [4, 1]]);
    expect(t.toString()).toBe('Tensor(shape=[2, 2], dtype=float32)');
    const m = new nn.Linear(2, 3);
    expect(m.to('cpu')).toBe(m);
    expect(m.weight.device).toBe('cpu');
    expect(tsm.memory().cudaBytes).toBe(0);
    expect(tsm.memory().bytes).toBeGreaterThan(before.bytes);
  });

  it('ops without a CUDA kernel name themselves (routing checked with a tensor that claims cuda:0)', () => {
    const g = fakeCudaTensor([1, 1, 4, 4]);
    const c = tsm.zeros([1, 1, 4, 4]);
    expect(g.device).toBe('cuda:0');
    expect(g.toString()).toContain('device=cuda:0');
    const cases: [string, () => unknown][] = [
      ['logsumexp', () => ops.logsumexp(g, 1)],
    ];
    for (const [op, fn] of cases) {
      const e = errorOf(fn);
      expect(e, op).toBeInstanceOf(TsmCudaError);
      expect(e.message).toBe(`${op}: no CUDA kernel yet for this op; move the tensor to the CPU with .cpu()`);
    }
    // A CPU-only code path that reads the elements directly still refuses, naming the tensor.
    expect(() => g._data).toThrow(/tensor #\d+ of shape \[1, 1, 4, 4\]: it is on cuda:0 and this operation has no CUDA kernel yet/);
    g.dispose();
    expect(g.isDisposed).toBe(true);
    expect(tsm.memory().cudaBytes).toBe(0);
  });

  it('mixing devices in one op is a TypeError naming both devices (before any kernel)', () => {
    const g = fakeCudaTensor([2, 3]);
    const c = tsm.ones([2, 3]);
    expect(() => tsm.add(g, c)).toThrow(/^add: expected all tensors on the same device, got cuda:0 \(a\) and cpu \(b\)$/);
    expect(() => tsm.mul(c, g)).toThrow(/^mul: expected all tensors on the same device, got cpu \(a\) and cuda:0 \(b\)$/);
    expect(() => tsm.lt(g, c)).toThrow(TypeError);
    expect(() => tsm.matmul(g, tsm.ones([3, 2]))).toThrow(/^matmul: expected all tensors on the same device, got cuda:0 \(input\) and cpu \(other\)$/);
    expect(() => F.linear(g, tsm.ones([4, 3]))).toThrow(/^linear: .*cuda:0 \(input\) and cpu \(weight\)$/);
    expect(() => F.linear(c, tsm.ones([4, 3]), fakeCudaTensor([4]))).toThrow(/^linear: .*cpu \(input\) and cuda:0 \(bias\)$/);
    expect(() => F.mseLoss(g, c)).toThrow(/^mseLoss: .*cuda:0 \(input\) and cpu \(target\)$/);
    expect(() => F.conv2d(fakeCudaTensor([1, 1, 4, 4]), tsm.zeros([1, 1, 3, 3]))).toThrow(/^conv2d: .*cuda:0 \(input\) and cpu \(weight\)$/);
    expect(() => F.crossEntropy(fakeCudaTensor([4, 4]), tsm.tensor(new Int32Array(4)))).toThrow(/^crossEntropy: .*cuda:0 \(input\) and cpu \(target\)$/);
    expect(() => tsm.where(c, g, 0)).toThrow(/^where: .*cpu \(condition\) and cuda:0 \(input\)$/);
    expect(() => tsm.cat([g, c])).toThrow(/^cat: .*cuda:0 \(tensors\[0\]\) and cpu \(tensors\[1\]\)$/);
    expect(() => tsm.gather(g, 0, tsm.tensor(new Int32Array(6), { shape: [2, 3] }))).toThrow(/^gather: .*cuda:0 \(input\) and cpu \(index\)$/);
    const x = tsm.ones([2, 3], { requiresGrad: true });
    const y = x.mul(2).sum();
    expect(() => y.backward(fakeCudaTensor([]))).toThrow(/^backward: .*cuda:0 \(gradient\) and cpu \(the tensor\)$/);
    g.dispose();
  });

  it.skipIf(available)('ops with a CUDA kernel go to the device (and fail there, as there is none)', () => {
    const g = fakeCudaTensor([2, 3]);
    for (const fn of [() => g.relu(), () => g.add(1), () => g.add(g), () => g.sum(0), () => g.softmax(-1),
      () => g.transpose(), () => g.max(1), () => g.matmul(fakeCudaTensor([3, 2])), () => tsm.cat([g, g]),
      () => tsm.stack([g, g]), () => g.index([1, 0]), () => tsm.where(g, g, 0)]) {
      const e = errorOf(fn);
      expect(e).toBeInstanceOf(TsmCudaError);
      // The first device call is the allocation of the result.
      expect(e.message).toMatch(/^cudaMalloc: .*(no CUDA device is available|no CUDA support)/);
    }
    // Reading back goes to the download, whose binding refuses the fake handle.
    expect(() => g.cpu()).toThrow(/^cudaDownload: buffer must be a device buffer handle/);
    // Views share the storage and need no device work.
    const v = g.reshape(3, 2);
    expect(v.device).toBe('cuda:0');
    v.dispose();
    g.dispose();
  });

  it('the raw binding rejects non-handles and out-of-bounds sizes without crashing', () => {
    const a = cuda.cudaAddon() as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(() => a.cudaUnaryForward(0, {}, {}, 4)).toThrow(/device buffer handle/);
    expect(() => a.cudaStridedCopy({}, 0, null, {}, 0, [1], [2, 2, 2, 2, 2, 2, 2, 2, 2])).toThrow(/at most 8/);
    expect(() => a.cudaSgdStep([{}], [{}], null, [1], 0.1, 0, 0, 0, false, false, false)).toThrow(/device buffer handle/);
    expect(() => a.cudaFill32({}, -1, 1)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// on a GPU (the same suite runs on an emulated device in cuda-tensor-emulated.test.ts)

defineCudaTensorSuite('CUDA tensors on a GPU', available);
