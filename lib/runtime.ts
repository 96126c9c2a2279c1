// Build information and CPU threading.
import { checkInt } from './check';
import { nativeAddon } from './native-api';

export interface BuildInfo {
  version: string;
  simd: 'avx2' | 'avx512' | 'neon' | 'generic';
  threads: number;
  cuda: { compiled: boolean; runtimeVersion: number | null; archs: string[]; deviceCount: number };
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

export function getNumThreads(): number {
  return nativeAddon().getNumThreads();
}
