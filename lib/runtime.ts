// Build information and CPU threading.
import { checkInt } from './check';
import { nativeAddon } from './native-api';

/** What the native binary was built with (see buildInfo()). */
export interface BuildInfo {
  /** Version of the native library. */
  version: string;
  /** SIMD instruction set the CPU kernels use. */
  simd: 'avx2' | 'avx512' | 'neon' | 'generic';
  /** Threads the CPU kernels use now (see setNumThreads()). */
  threads: number;
  /** CUDA support of this build. */
  cuda: {
    /** True when the binary has CUDA kernels. */
    compiled: boolean;
    /** The CUDA runtime version number reported by the native library; null without CUDA. */
    runtimeVersion: number | null;
    /** GPU architectures compiled for, e.g. ['sm_80', 'sm_90a']; [] without CUDA. */
    archs: string[];
    /** CUDA devices visible (0 without a driver or GPU). */
    deviceCount: number;
  };
}

/** What this binary was built with and what it is using now. */
export function buildInfo(): BuildInfo {
  const info = nativeAddon().buildInfo();
  const rv = info.cuda.runtimeVersion;
  return {
    version: info.version,
    simd: info.simd,
    threads: info.threads,
    cuda: {
      compiled: info.cuda.compiled,
      runtimeVersion: info.cuda.compiled ? rv : null,
      archs: info.cuda.archs ? info.cuda.archs.split(/[;,]/).map((a) => `sm_${a.replace(/-(real|virtual)$/, '')}`) : [],
      deviceCount: info.cuda.deviceCount,
    },
  };
}

/** Threads used by CPU kernels (default: TSM_NUM_THREADS, else the physical cores). */
export function setNumThreads(n: number): void {
  nativeAddon().setNumThreads(checkInt('setNumThreads', 'n', n, 1, 1024));
}

/** Threads used by CPU kernels (see setNumThreads()). */
export function getNumThreads(): number {
  return nativeAddon().getNumThreads();
}
