// Shared by norm.cu, embedding.cu, dropout.cu and adaptive_pool.cu: launch and shared-memory macros
// and warp/block sums that compile both with nvcc and as host C++ under TSM_NORM_EMULATE, where
// test/emu/norm_emu.cpp runs every CUDA thread of a block as a host thread (it defines threadIdx,
// blockIdx, blockDim, gridDim, __syncthreads, __shfl_xor_sync, the __f*_rn intrinsics and
// ::tsm_emu::launch / dynamic_smem before including the .cu files). Kernels here use 1-d blocks
// and grids only, dynamic shared memory only, and every thread of a block reaches every barrier.
// Not public ABI.
#pragma once
#include <cstdint>

#include "tensor_common.cuh"

#ifdef TSM_NORM_EMULATE
// kernel(args...) run for every thread of `grid` blocks of `block` threads on the host.
#define TSM_NORM_LAUNCH(kernel, grid, block, smem, st, ...) \
  ::tsm_emu::launch((grid), (block), (smem), [&] { kernel(__VA_ARGS__); })
#define TSM_NORM_SMEM(type, name) type* name = reinterpret_cast<type*>(::tsm_emu::dynamic_smem())
#else
#define TSM_NORM_LAUNCH(kernel, grid, block, smem, st, ...) kernel<<<(grid), (block), (smem), (st)>>>(__VA_ARGS__)
#define TSM_NORM_SMEM(type, name) extern __shared__ __align__(16) unsigned char tsm_norm_smem_[]; \
  type* name = reinterpret_cast<type*>(tsm_norm_smem_)
#endif

namespace tsm {
namespace cuda {
namespace norm {

#if defined(__CUDACC__) || defined(TSM_NORM_EMULATE)

// Sum over the 32 lanes of a warp (butterfly: every lane gets the same value, the same order
// for every lane and every run).
__device__ __forceinline__ float nsum_warp(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); smem holds 32 floats.
// Every thread gets the result; smem may be reused when it returns.
__device__ __forceinline__ float nsum_block(float v, float* smem) {
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5, warps = int(blockDim.x) >> 5;
  v = nsum_warp(v);
  __syncthreads();  // smem may still be read by a previous call's last step
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  float w = lane < warps ? smem[lane] : 0.f;
  return nsum_warp(w);  // every warp reduces the same 32 values: the same result everywhere
}

#endif

}  // namespace norm
}  // namespace cuda
}  // namespace tsm
