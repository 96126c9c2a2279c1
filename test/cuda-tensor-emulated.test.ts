// The CUDA tensor suite (helpers/cuda-tensor-suite.ts) on an emulated device: the addon's CUDA entry
// points are replaced in this process by helpers/cuda-emulator.ts (host buffers behind handles,
// each kernel computed by the CPU kernel of the same contract, every access bounds-checked). This
// runs everywhere and checks the TypeScript side of CUDA tensors — dispatch, the shapes, strides and
// offsets handed to each kernel, autograd, optimizers, Module.to, memory accounting — but not the
// CUDA kernels or their binding, which only test/cuda-tensor.test.ts on a GPU can.
import { afterAll, expect, it } from 'vitest';
import { installCudaEmulator } from './helpers/cuda-emulator';
import { defineCudaTensorSuite } from './helpers/cuda-tensor-suite';

const emulator = installCudaEmulator();
afterAll(() => emulator.uninstall());

defineCudaTensorSuite('CUDA tensors on an emulated device', true);

it('the suite reached every tensor kernel entry point', () => {
  for (const name of ['cudaUnaryForward', 'cudaUnaryBackward', 'cudaBinarySame', 'cudaScalarForward', 'cudaBinaryForward',
    'cudaStridedCopy', 'cudaFill32', 'cudaCast', 'cudaCopy', 'cudaSum', 'cudaArgReduce', 'cudaArgReduceBackward',
    'cudaSoftmaxForward', 'cudaSoftmaxBackward', 'cudaSgdStep', 'cudaAdamStep', 'cudaGemmEx', 'cudaUpload', 'cudaDownload',
    'cudaConv2dForward', 'cudaConv2dBackwardData', 'cudaConv2dBackwardWeight', 'cudaMaxPool2dForward', 'cudaMaxPool2dBackward',
    'cudaAvgPool2dForward', 'cudaAvgPool2dBackward', 'cudaCrossEntropyForward', 'cudaCrossEntropyBackward',
    'cudaLayerNormForward', 'cudaLayerNormBackward', 'cudaBatchNormForward', 'cudaBatchNormBackward', 'cudaEmbeddingForward',
    'cudaEmbeddingBackward', 'cudaDropoutForward', 'cudaAdaptiveAvgPool2dForward', 'cudaAdaptiveAvgPool2dBackward',
    'cudaLstmForward', 'cudaLstmBackward', 'cudaGather', 'cudaGatherBackward', 'cudaIndexSelect', 'cudaIndexSelectBackward',
    'cudaWhere', 'cudaAttentionForward', 'cudaAttentionBackward'])
    expect(emulator.calls.get(name) ?? 0, name).toBeGreaterThan(0);
});
