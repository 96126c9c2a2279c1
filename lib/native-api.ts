// The typed surface of the native addon. The binding is thin and positional; the TypeScript layer
// validates everything before calling it (the binding re-checks buffer bounds as a last defence).
import { addon } from './native';

type F32 = Float32Array;
type I32 = Int32Array;

export interface NativeBuildInfo {
  version: string;
  simd: 'generic' | 'avx2' | 'avx512' | 'neon';
  threads: number;
  cuda: { compiled: boolean; runtimeVersion: number; deviceCount: number; archs: string };
}

export interface NativeAddon {
  version(): string;
  buildInfo(): NativeBuildInfo;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  alignedFloat32Array(n: number): Float32Array;
  addressAlignment(a: ArrayBufferView): number;
  sgemm(ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, a: F32, lda: number,
        b: F32, ldb: number, beta: number, c: F32, ldc: number, reference: boolean): void;
  sgemmStridedBatched(ta: boolean, tb: boolean, batch: number, m: number, n: number, k: number, alpha: number,
                      a: F32, lda: number, strideA: number, b: F32, ldb: number, strideB: number,
                      beta: number, c: F32, ldc: number, strideC: number): void;
  peerBlasLoad(path: string): boolean;
  peerBlasSetThreads(n: number): boolean;
  peerBlasSgemm(ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, a: F32, lda: number,
                b: F32, ldb: number, beta: number, c: F32, ldc: number): void;

  // conv + pooling (cpp/binding/ops_conv.cpp)
  conv2dForward(y: F32, x: F32, w: F32, bias: F32 | null, N: number, C: number, H: number, W: number, OC: number,
                KH: number, KW: number, sH: number, sW: number, pH: number, pW: number, dH: number, dW: number,
                groups: number): void;
  conv2dBackwardData(dx: F32, dy: F32, w: F32, N: number, C: number, H: number, W: number, OC: number, KH: number,
                     KW: number, sH: number, sW: number, pH: number, pW: number, dH: number, dW: number,
                     groups: number): void;
  conv2dBackwardWeight(dw: F32, dbias: F32 | null, dy: F32, x: F32, N: number, C: number, H: number, W: number,
                       OC: number, KH: number, KW: number, sH: number, sW: number, pH: number, pW: number,
                       dH: number, dW: number, groups: number): void;
  maxPool2dForward(y: F32, indices: I32, x: F32, N: number, C: number, H: number, W: number, KH: number, KW: number,
                   sH: number, sW: number, pH: number, pW: number, dH: number, dW: number, ceilMode: boolean,
                   reluInput?: boolean): void;
  maxPool2dBackward(dx: F32, dy: F32, indices: I32, N: number, C: number, H: number, W: number, OH: number,
                    OW: number, y?: F32): void;
  conv2dMaxPool2dForward(y: F32, indices: I32, x: F32, w: F32, bias: F32 | null, N: number, C: number, H: number,
                         W: number, OC: number, KH: number, KW: number, sH: number, sW: number, pH: number, pW: number,
                         dH: number, dW: number, groups: number, pKH: number, pKW: number, psH: number, psW: number,
                         ppH: number, ppW: number, pdH: number, pdW: number, ceilMode: boolean, relu: boolean): void;
  conv2dMaxPool2dBackward(dx: F32 | null, dw: F32 | null, dbias: F32 | null, dy: F32, y: F32 | null, indices: I32,
                          x: F32 | null, w: F32 | null, N: number, C: number, H: number, W: number, OC: number,
                          KH: number, KW: number, sH: number, sW: number, pH: number, pW: number, dH: number,
                          dW: number, groups: number, POH: number, POW: number): void;
  avgPool2dForward(y: F32, x: F32, N: number, C: number, H: number, W: number, KH: number, KW: number, sH: number,
                   sW: number, pH: number, pW: number, ceilMode: boolean, countIncludePad: boolean): void;
  avgPool2dBackward(dx: F32, dy: F32, N: number, C: number, H: number, W: number, KH: number, KW: number,
                    sH: number, sW: number, pH: number, pW: number, ceilMode: boolean, countIncludePad: boolean): void;
  adaptiveAvgPool2dForward(y: F32, x: F32, N: number, C: number, H: number, W: number, OH: number, OW: number): void;
  adaptiveAvgPool2dBackward(dx: F32, dy: F32, N: number, C: number, H: number, W: number, OH: number, OW: number): void;
  pool2dOutputSize(inSize: number, kernel: number, stride: number, pad: number, dilation: number,
                   ceilMode: boolean): number;

  // pointwise (cpp/binding/ops_pointwise.cpp)
  unaryForward(op: number, y: F32, x: F32): void;
  unaryBackward(op: number, dx: F32, x: F32, y: F32, dy: F32): void;
  binaryForward(op: number, out: F32, a: F32, b: F32, outShape: number[], aStrides: number[], bStrides: number[]): void;
  scalarForward(op: number, out: F32, x: F32, scalar: number, reverse: boolean): void;
  binarySame(op: number, out: F32, a: F32, b: F32): void;
  reduceForward(op: number, out: F32, x: F32, outer: number, dim: number, inner: number): void;
  argReduce(out: I32, x: F32, outer: number, dim: number, inner: number, isMax: boolean): void;
  sumToShape(out: F32, x: F32, xShape: number[], outShape: number[]): void;
  softmaxForward(y: F32, x: F32, outer: number, dim: number, inner: number, log: boolean): void;
  softmaxBackward(dx: F32, y: F32, dy: F32, outer: number, dim: number, inner: number, log: boolean): void;
  crossEntropyForward(losses: F32, logProbs: F32, logits: F32, targets: I32, N: number, C: number,
                      ignoreIndex: number, labelSmoothing: number): void;
  crossEntropyBackward(dlogits: F32, logProbs: F32, targets: I32, dlosses: F32, N: number, C: number,
                       ignoreIndex: number, labelSmoothing: number): void;
  rngUniform(out: F32, seed: number, offset: number, low: number, high: number): void;
  rngNormal(out: F32, seed: number, offset: number, mean: number, std: number): void;
  dropoutForward(y: F32, mask: F32, x: F32, p: number, seed: number, offset: number): void;
  sumOfSquares(arrays: F32[]): number;
  allFinite(x: F32): boolean;

  // nn (cpp/binding/ops_nn.cpp)
  layerNormForward(y: F32, mean: F32, rstd: F32, x: F32, w: F32 | null, b: F32 | null, rows: number, cols: number,
                   eps: number): void;
  layerNormBackward(dx: F32, dw: F32 | null, db: F32 | null, dy: F32, x: F32, mean: F32, rstd: F32, w: F32 | null,
                    rows: number, cols: number): void;
  batchNormForward(y: F32, saveMean: F32, saveInvstd: F32, runningMean: F32 | null, runningVar: F32 | null, x: F32,
                   w: F32 | null, b: F32 | null, N: number, C: number, HW: number, training: boolean,
                   momentum: number, eps: number): void;
  batchNormBackward(dx: F32, dw: F32 | null, db: F32 | null, dy: F32, x: F32, saveMean: F32, saveInvstd: F32,
                    w: F32 | null, N: number, C: number, HW: number, training: boolean): void;
  embeddingForward(y: F32, indices: I32, weight: F32, numEmbeddings: number, dim: number): void;
  embeddingBackward(dweight: F32, dy: F32, indices: I32, numEmbeddings: number, dim: number, paddingIdx: number): void;
  sgdStep(params: F32[], grads: F32[], momentumBufs: F32[] | null, lr: number, momentum: number, dampening: number,
          weightDecay: number, nesterov: boolean, maximize: boolean, firstStep: boolean): void;
  adamStep(params: F32[], grads: F32[], expAvg: F32[], expAvgSq: F32[], maxExpAvgSq: F32[] | null, lr: number,
           beta1: number, beta2: number, eps: number, weightDecay: number, step: number, amsgrad: boolean,
           decoupled: boolean, maximize: boolean): void;
  rmspropStep(params: F32[], grads: F32[], squareAvg: F32[], momentumBuf: F32[] | null, gradAvg: F32[] | null,
              lr: number, alpha: number, eps: number, weightDecay: number, momentum: number, centered: boolean): void;
  scaleInPlace(arrays: F32[], factor: number): void;
}

export function nativeAddon(): NativeAddon {
  return addon<NativeAddon>();
}
