// tensorsmith: deep learning for Node.js on hand-written C++/CUDA kernels.
export { buildInfo, setNumThreads, getNumThreads } from './runtime';
export type { BuildInfo } from './runtime';
export * as kernels from './kernels';
export { TsmDisposedError, TsmCudaError } from './errors';
export { NativeLoadError } from './native';
