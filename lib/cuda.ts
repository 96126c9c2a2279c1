// tsm.cuda: device queries. The CUDA backend's tensors arrive with the CUDA issue; until then these
// report what the binary was built with and what the driver sees.
import { nativeAddon } from './native-api';

/** True when this binary has CUDA kernels and a CUDA device is visible. */
export function isAvailable(): boolean {
  const c = nativeAddon().buildInfo().cuda;
  return c.compiled && c.deviceCount > 0;
}

export function deviceCount(): number {
  return nativeAddon().buildInfo().cuda.deviceCount;
}

export function synchronize(): void {
  // No CUDA work can be outstanding while tensors live on the CPU only.
}

export function memoryStats(): { allocatedBytes: number; reservedBytes: number } {
  return { allocatedBytes: 0, reservedBytes: 0 };
}

export function emptyCache(): void {}
