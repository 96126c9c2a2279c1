// Softmax and log-softmax of CUDA tensors over the middle axis of (outer, dim, inner), float32 (the
// CPU twin: cpp/kernels/softmax.cpp, same formulas):
//   forward   y = exp(x - max) / sum exp(x - max)          (log = 0)
//             y = (x - max) - log(sum exp(x - max))        (log = 1)
//   backward  softmax      dx = y * (dy - sum_dim(dy * y))
//             log-softmax  dx = dy - exp(y) * sum_dim(dy)
//
// inner == 1 (the last dim, the common case): rows of up to 1024 elements take one warp each (8 rows
// per 256-thread block, shuffles only); longer rows one 256-thread block each. inner > 1: one thread
// per (o, i), a sequential loop over dim, coalesced across i. Sums are float32.
#include "tensor_common.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr int64_t kWarpRowMax = 1024;

// ---- forward ----

template <bool LOG>
__global__ void softmax_warp_kernel(float* y, const float* x, int64_t rows, int64_t n) {
  const int lane = threadIdx.x & 31;
  const int64_t wpb = blockDim.x >> 5;
  for (int64_t r = int64_t(blockIdx.x) * wpb + (threadIdx.x >> 5); r < rows; r += int64_t(gridDim.x) * wpb) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = -INFINITY;
    for (int64_t j = lane; j < n; j += 32) m = fmaxf(m, xr[j]);
    m = warp_max(m);
    float s = 0.f;
    for (int64_t j = lane; j < n; j += 32) s += expf(xr[j] - m);
    s = warp_sum(s);
    if (LOG) {
      const float ls = logf(s);
      for (int64_t j = lane; j < n; j += 32) yr[j] = (xr[j] - m) - ls;
    } else {
      const float inv = 1.f / s;
      for (int64_t j = lane; j < n; j += 32) yr[j] = expf(xr[j] - m) * inv;
    }
  }
}

template <bool LOG>
__global__ void softmax_block_kernel(float* y, const float* x, int64_t rows, int64_t n) {
  __shared__ float smem[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, xr[j]);
    m = block_max(m, smem);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += expf(xr[j] - m);
    s = block_sum(s, smem);
    if (LOG) {
      const float ls = logf(s);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] = (xr[j] - m) - ls;
    } else {
      const float inv = 1.f / s;
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] = expf(xr[j] - m) * inv;
    }
  }
}

template <bool LOG>
__global__ void softmax_cols_kernel(float* y, const float* x, int64_t outer, int64_t n, int64_t inner) {
  const int64_t total = outer * inner, stride = grid_threads();
  for (int64_t t = global_thread(); t < total; t += stride) {
    const int64_t o = t / inner, i = t - o * inner;
    const float* xo = x + o * n * inner + i;
    float* yo = y + o * n * inner + i;
    float m = -INFINITY;
    for (int64_t j = 0; j < n; ++j) m = fmaxf(m, xo[j * inner]);
    float s = 0.f;
    for (int64_t j = 0; j < n; ++j) s += expf(xo[j * inner] - m);
    if (LOG) {
      const float ls = logf(s);
      for (int64_t j = 0; j < n; ++j) yo[j * inner] = (xo[j * inner] - m) - ls;
    } else {
      const float inv = 1.f / s;
      for (int64_t j = 0; j < n; ++j) yo[j * inner] = expf(xo[j * inner] - m) * inv;
    }
  }
}

// ---- backward ----

template <bool LOG>
__global__ void softmax_bwd_warp_kernel(float* dx, const float* y, const float* dy, int64_t rows, int64_t n) {
  const int lane = threadIdx.x & 31;
  const int64_t wpb = blockDim.x >> 5;
  for (int64_t r = int64_t(blockIdx.x) * wpb + (threadIdx.x >> 5); r < rows; r += int64_t(gridDim.x) * wpb) {
    const float* yr = y + r * n;
    const float* gr = dy + r * n;
    float* dr = dx + r * n;
    float s = 0.f;
    for (int64_t j = lane; j < n; j += 32) s += LOG ? gr[j] : gr[j] * yr[j];
    s = warp_sum(s);
    for (int64_t j = lane; j < n; j += 32) dr[j] = LOG ? gr[j] - expf(yr[j]) * s : yr[j] * (gr[j] - s);
  }
}

template <bool LOG>
__global__ void softmax_bwd_block_kernel(float* dx, const float* y, const float* dy, int64_t rows, int64_t n) {
  __shared__ float smem[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* yr = y + r * n;
    const float* gr = dy + r * n;
    float* dr = dx + r * n;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += LOG ? gr[j] : gr[j] * yr[j];
    s = block_sum(s, smem);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) dr[j] = LOG ? gr[j] - expf(yr[j]) * s : yr[j] * (gr[j] - s);
  }
}

template <bool LOG>
__global__ void softmax_bwd_cols_kernel(float* dx, const float* y, const float* dy, int64_t outer, int64_t n,
                                        int64_t inner) {
  const int64_t total = outer * inner, stride = grid_threads();
  for (int64_t t = global_thread(); t < total; t += stride) {
    const int64_t o = t / inner, i = t - o * inner;
    const int64_t base = o * n * inner + i;
    float s = 0.f;
    for (int64_t j = 0; j < n; ++j) s += LOG ? dy[base + j * inner] : dy[base + j * inner] * y[base + j * inner];
    for (int64_t j = 0; j < n; ++j) {
      const int64_t k = base + j * inner;
      dx[k] = LOG ? dy[k] - expf(y[k]) * s : y[k] * (dy[k] - s);
    }
  }
}

tsm_status check_sizes(const char* op, int64_t outer, int64_t dim, int64_t inner) {
  if (outer < 0 || dim < 0 || inner < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: outer, dim and inner must be >= 0, got %lld, %lld, %lld", op,
                (long long)outer, (long long)dim, (long long)inner);
  if ((dim > 0 && outer > INT64_MAX / dim) || (inner > 0 && outer * dim > INT64_MAX / inner))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: outer * dim * inner overflows", op);
  return TSM_OK;
}

template <bool LOG>
void launch_forward(cudaStream_t st, float* y, const float* x, int64_t outer, int64_t dim, int64_t inner) {
  if (inner == 1 && dim <= kWarpRowMax)
    softmax_warp_kernel<LOG><<<grid_for(outer, kThreads / 32), kThreads, 0, st>>>(y, x, outer, dim);
  else if (inner == 1)
    softmax_block_kernel<LOG><<<grid_for(outer, 1), kThreads, 0, st>>>(y, x, outer, dim);
  else
    softmax_cols_kernel<LOG><<<grid_for(outer * inner), kThreads, 0, st>>>(y, x, outer, dim, inner);
}

template <bool LOG>
void launch_backward(cudaStream_t st, float* dx, const float* y, const float* dy, int64_t outer, int64_t dim,
                     int64_t inner) {
  if (inner == 1 && dim <= kWarpRowMax)
    softmax_bwd_warp_kernel<LOG><<<grid_for(outer, kThreads / 32), kThreads, 0, st>>>(dx, y, dy, outer, dim);
  else if (inner == 1)
    softmax_bwd_block_kernel<LOG><<<grid_for(outer, 1), kThreads, 0, st>>>(dx, y, dy, outer, dim);
  else
    softmax_bwd_cols_kernel<LOG><<<grid_for(outer * inner), kThreads, 0, st>>>(dx, y, dy, outer, dim, inner);
}

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_softmax_forward(float* y, const float* x, int64_t outer, int64_t dim, int64_t inner,
                                            int log) {
  const char* name = "cuda_softmax_forward";
  if (tsm_status s = check_sizes(name, outer, dim, inner)) return s;
  if (outer == 0 || dim == 0 || inner == 0) return TSM_OK;
  if (!y || !x) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !y ? "y" : "x");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  if (log) launch_forward<true>(st, y, x, outer, dim, inner);
  else launch_forward<false>(st, y, x, outer, dim, inner);
  return check_launch(name);
}

TSM_API tsm_status tsm_cuda_softmax_backward(float* dx, const float* y, const float* dy, int64_t outer, int64_t dim,
                                             int64_t inner, int log) {
  const char* name = "cuda_softmax_backward";
  if (tsm_status s = check_sizes(name, outer, dim, inner)) return s;
  if (outer == 0 || dim == 0 || inner == 0) return TSM_OK;
  if (!dx || !y || !dy)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !dx ? "dx" : !y ? "y" : "dy");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  if (log) launch_backward<true>(st, dx, y, dy, outer, dim, inner);
  else launch_backward<false>(st, dx, y, dy, outer, dim, inner);
  return check_launch(name);
}

}  // extern "C"
