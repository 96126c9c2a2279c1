// Mixed precision (helpers/amp-suite.ts) on the emulated CUDA device of helpers/cuda-emulator.ts:
// the 16-bit GEMM inputs are decoded exactly and multiplied/accumulated in float32, the casts and
// the GradScaler kernel are lib/half.ts and a host loop, the fused attention is the CPU kernel on
// the decoded inputs with its outputs rounded to 16 bits. This checks the TypeScript side —
// dispatch under autocast, what is cast and when, the GEMM arguments of forward and backward, the
// cache, memory, autograd, the scaler's bookkeeping — everywhere; the CUDA kernels themselves only
// run in test/cuda-amp.test.ts on a GPU.
import { afterAll, expect, it } from 'vitest';
import { installCudaEmulator } from './helpers/cuda-emulator';
import { defineAmpSuite } from './helpers/amp-suite';

const emulator = installCudaEmulator();
afterAll(() => emulator.uninstall());

defineAmpSuite('mixed precision on an emulated CUDA device', true, emulator.calls);

it('the suite reached the mixed-precision entry points', () => {
  for (const name of ['cudaCastFloat', 'cudaAmpUnscale', 'cudaGemmEx', 'cudaAttentionForward', 'cudaAttentionBackward'])
    expect(emulator.calls.get(name) ?? 0, name).toBeGreaterThan(0);
});
