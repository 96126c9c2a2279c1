// Shared by the tensor kernels (pointwise.cu, layout.cu, reduce.cu, softmax.cu, optim.cu): launch
// sizes, alignment tests, warp/block reductions, dimension collapsing. Not public ABI.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/cuda_common.cuh"
#include "scratch.cuh"

namespace tsm {
namespace cuda {

// Threads per block of the 1-d kernels.
constexpr int kThreads = 256;
// Grid-stride loops cover the rest: 4096 blocks of 256 threads fill every GPU we target
// (an H100 holds 132 SMs x 2048 threads = 1056 such blocks at once).
constexpr int64_t kMaxBlocks = 4096;
// Grid y/z dimensions are limited to 65535.
constexpr int64_t kMaxGridYZ = 65535;
// Rank limit of the strided kernels (after collapsing), as the CPU kernels.
constexpr int kMaxDims = 8;

// Blocks for `work` items at `per_block` items per block, at least 1, at most kMaxBlocks.
inline unsigned grid_for(int64_t work, int64_t per_block = kThreads) {
  int64_t b = ceil_div(work, per_block);
  if (b < 1) b = 1;
  return unsigned(b < kMaxBlocks ? b : kMaxBlocks);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Drops size-1 dims and merges neighbouring dims that are contiguous in every one of the `k`
// stride sets (stride[outer] == stride[inner] * size[inner]); returns the new rank. shape and the
// strides are rewritten in place. A shape with a 0 must be handled before (nothing to do).
inline int collapse_dims(int ndim, int64_t* shape, int k, int64_t* const* strides) {
  int m = 0;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    if (m > 0) {
      bool merge = true;
      for (int j = 0; j < k; ++j)
        if (strides[j][m - 1] != strides[j][d] * shape[d]) merge = false;
      if (merge) {
        shape[m - 1] *= shape[d];
        for (int j = 0; j < k; ++j) strides[j][m - 1] = strides[j][d];
        continue;
      }
    }
    shape[m] = shape[d];
    for (int j = 0; j < k; ++j) strides[j][m] = strides[j][d];
    ++m;
  }
  return m;
}

// Largest element offset reached by idx[d] in [0, shape[d]) with the given strides (all >= 0).
inline int64_t max_offset(int ndim, const int64_t* shape, const int64_t* strides) {
  int64_t off = 0;
  for (int d = 0; d < ndim; ++d) off += (shape[d] - 1) * strides[d];
  return off;
}

#ifdef __CUDACC__

__host__ __device__ __forceinline__ int64_t ceil_div_d(int64_t a, int64_t b) { return (a + b - 1) / b; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// fmaxf skips NaN; callers that must propagate NaN do so through the values computed from it.
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, blockDim.y == blockDim.z == 1); every thread
// gets the result. smem holds 32 floats. Every thread of the block must call it (it synchronises),
// and smem may be reused right after it returns.
__device__ __forceinline__ float block_sum(float v, float* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float w = lane < warps ? smem[lane] : 0.f;
    w = warp_sum(w);
    if (lane == 0) smem[0] = w;
  }
  __syncthreads();
  const float r = smem[0];
  __syncthreads();
  return r;
}

// As block_sum, for the maximum (NaN skipped as fmaxf does).
__device__ __forceinline__ float block_max(float v, float* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float w = lane < warps ? smem[lane] : -INFINITY;
    w = warp_max(w);
    if (lane == 0) smem[0] = w;
  }
  __syncthreads();
  const float r = smem[0];
  __syncthreads();
  return r;
}

__device__ __forceinline__ int64_t global_thread() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() { return int64_t(gridDim.x) * blockDim.x; }

#endif  // __CUDACC__

}  // namespace cuda
}  // namespace tsm
