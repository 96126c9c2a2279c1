// tensorsmith: deep learning for Node.js on hand-written C++/CUDA kernels.
export { buildInfo, setNumThreads, getNumThreads } from './runtime';
export type { BuildInfo } from './runtime';
export * as kernels from './kernels';
export { TsmDisposedError, TsmCudaError } from './errors';
export { NativeLoadError } from './native';

export { Tensor, tidy, keep, memory, noGrad, isGradEnabled } from './tensor';
export type { DType, Device, Shape, TensorOptions, MemoryInfo, NestedArray, TypedArray } from './tensor';
export {
  tensor, zeros, ones, full, empty, zerosLike, onesLike, arange, eye, rand, randn, randint, randperm, manualSeed,
  add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, neg, exp, log, sqrt, abs, square, relu, sigmoid,
  tanh, gelu, clamp, where, sum, mean, max, min, argmax, argmin, softmax, logSoftmax, matmul, reshape, flatten, squeeze,
  unsqueeze, transpose, permute, expand, slice, cat, stack, gather, indexSelect, clone, logsumexp,
} from './ops';
export * as F from './functional-all';
export * as nn from './nn-all';
export * as optim from './optim';
export * as cuda from './cuda';
export * as io from './io';
export * as text from './text';
export * as metrics from './metrics';
export * as callbacks from './callbacks';
export * as data from './data';
export * as plot from './plot';
export { setDetectAnomaly, isAnomalyEnabled, detectAnomaly, TsmAnomalyError } from './anomaly';
export { autocast, isAutocastEnabled, getAutocastDtype } from './autocast';
export type { AutocastOptions, AutocastDtype, AutocastDeviceType } from './autocast';
export { GradScaler } from './grad-scaler';
export type { GradScalerOptions, GradScalerState } from './grad-scaler';
export { sgemmAsync } from './async';
export { History } from './training';
export type {
  CompileConfig, FitOptions, EvaluateOptions, PredictOptions, LossName, LossFunction, MetricSpec, OptimizerName, Batch, BatchSource,
} from './training';
export type { SgemmAsyncArgs, PredictAsyncOptions } from './async';
export type { FitAsyncOptions } from './fit-async';
export type { LoadAttempt } from './native';
// Side effects: compile/fit/evaluate/predict, predictAsync and fitAsync on every nn.Module.
import './training';
import './async';
import './fit-async';
