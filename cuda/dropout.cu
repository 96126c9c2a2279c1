// Inverted dropout of CUDA tensors in training, float32, contiguous (the CPU twin:
// cpp/kernels/dropout.cpp):
//
//   mask (n) = (u_i >= p) ? 1 / (1 - p) : 0,  y (n) = x (n) * mask,  u_i the Philox4x32-10 [0, 1)
//   uniform of element i for (seed, offset) (cuda/philox.cuh, the CPU's stream)
//   backward: dx = dy * mask, an elementwise multiply (the autograd rule; no kernel here)
//
// A thread per Philox block of 4 elements (i = 4 b + lane, counter offset + b), grid-stride. The
// host computes the float threshold and scale exactly as the CPU kernel (p rounded up to a float,
// 1 / (1 - p) in double then rounded), so the mask and y equal the CPU's bit for bit for the same
// (seed, offset); p == 1 drops everything (y = x * 0, NaN/Inf of x stay visible, as the CPU).
#include <cmath>

#include "norm_common.cuh"
#include "philox.cuh"

namespace tsm {
namespace cuda {
namespace norm {

constexpr int kDropBlock = 256;

#if defined(__CUDACC__) || defined(TSM_NORM_EMULATE)

__global__ void __launch_bounds__(kDropBlock) dropout_kernel(float* __restrict__ y, float* __restrict__ mask,
                                                             const float* __restrict__ x, int64_t n, uint64_t seed,
                                                             uint64_t offset, float pf, float scale, int drop_all) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += int64_t(gridDim.x) * blockDim.x) {
    Philox4 r;
    if (!drop_all) r = philox4x32_10(offset + uint64_t(b), seed);
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int64_t i = 4 * b + l;
      if (i >= n) break;
      const float m = drop_all ? 0.f : (philox_unit(r.v[l]) >= pf ? scale : 0.f);
      mask[i] = m;
      y[i] = __fmul_rn(x[i], m);
    }
  }
}

#endif  // __CUDACC__ || TSM_NORM_EMULATE

}  // namespace norm
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;
using namespace tsm::cuda::norm;

extern "C" {

TSM_API tsm_status tsm_cuda_dropout_forward(float* y, float* mask, const float* x, double p, uint64_t seed,
                                            uint64_t offset, int64_t n) {
  const char* op = "cuda_dropout_forward";
  if (n < 0) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: n must be >= 0, got %lld", op, (long long)n);
  if (!(p >= 0.0 && p <= 1.0)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: p must be in [0, 1], got %g", op, p);
  if (n == 0) return TSM_OK;
  if (!y || !mask || !x)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !y ? "y" : !mask ? "mask" : "x");
  // As cpp/kernels/dropout.cpp: u >= p  <=>  u >= pf (u is a multiple of 2^-24, pf = p rounded up).
  const int drop_all = p == 1.0;
  const float scale = drop_all ? 0.f : static_cast<float>(1.0 / (1.0 - p));
  float pf = static_cast<float>(p);
  if (double(pf) < p) pf = std::nextafter(pf, 2.0f);
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  TSM_NORM_LAUNCH(dropout_kernel, grid_for(ceil_div(n, 4)), kDropBlock, 0, st, y, mask, x, n, seed, offset, pf, scale,
                  drop_all);
  return check_launch(op);
}

}  // extern "C"
