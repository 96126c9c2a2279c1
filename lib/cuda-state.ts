// The CUDA device this thread's allocations and kernels go to, as last set through tsm.cuda.setDevice
// or by an op on a tensor of another device (lib/device.ts). A module of its own so that lib/cuda.ts
// and lib/device.ts can share it without importing each other.
export const cudaState = { current: 0 };
