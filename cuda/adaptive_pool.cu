// Adaptive average pooling of CUDA tensors, forward and backward (the CPU twin:
// tsm_adaptive_avg_pool2d_* in cpp/kernels/pool2d.cpp):
//
//   x, dx (N, C, H, W); y, dy (N, C, OH, OW); output (oh, ow) averages rows [h0, h1) x cols [w0, w1)
//   with h0 = floor(oh * H / OH), h1 = ceil((oh + 1) * H / OH) (columns likewise), as PyTorch
//
// Forward: a thread per output element, the CPU's window loop (float sum in (ih, iw) order, then
// one division by the window's size): the CPU's values bit for bit.
// Backward: a thread per input element gathers dy[oh, ow] / size(oh, ow) over the windows holding
// it, in the CPU's (oh, ow) order starting from 0.0f: bit-identical to the CPU's scatter, no
// atomics. The windows holding row ih are oh in [floor(ih * OH / H), floor(((ih + 1) * OH - 1) / H)]
// (each is re-checked against h0 <= ih < h1).
#include "norm_common.cuh"

namespace tsm {
namespace cuda {
namespace norm {

constexpr int kPoolBlock = 256;

#if defined(__CUDACC__) || defined(TSM_NORM_EMULATE)

__global__ void __launch_bounds__(kPoolBlock) adaptive_avg_forward_kernel(float* __restrict__ y,
                                                                          const float* __restrict__ x, int64_t planes,
                                                                          int64_t H, int64_t W, int64_t OH,
                                                                          int64_t OW) {
  const int64_t total = planes * OH * OW;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = e / (OH * OW), rem = e - p * OH * OW, oh = rem / OW, ow = rem - oh * OW;
    const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
    const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
    const float* xp = x + p * H * W;
    float sum = 0.f;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) sum = __fadd_rn(sum, xp[ih * W + iw]);
    y[e] = __fdiv_rn(sum, float((h1 - h0) * (w1 - w0)));
  }
}

__global__ void __launch_bounds__(kPoolBlock) adaptive_avg_backward_kernel(float* __restrict__ dx,
                                                                           const float* __restrict__ dy,
                                                                           int64_t planes, int64_t H, int64_t W,
                                                                           int64_t OH, int64_t OW) {
  const int64_t total = planes * H * W;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = e / (H * W), rem = e - p * H * W, ih = rem / W, iw = rem - ih * W;
    int64_t oh_lo = ih * OH / H, oh_hi = ((ih + 1) * OH - 1) / H;
    int64_t ow_lo = iw * OW / W, ow_hi = ((iw + 1) * OW - 1) / W;
    if (oh_hi > OH - 1) oh_hi = OH - 1;
    if (ow_hi > OW - 1) ow_hi = OW - 1;
    const float* dyp = dy + p * OH * OW;
    float s = 0.f;
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
      const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
        const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
        if (iw < w0 || iw >= w1) continue;
        s = __fadd_rn(s, __fdiv_rn(dyp[oh * OW + ow], float((h1 - h0) * (w1 - w0))));
      }
    }
    dx[e] = s;
  }
}

#endif  // __CUDACC__ || TSM_NORM_EMULATE

inline tsm_status check_adaptive(const char* op, const tsm_pool2d_shape* sh) {
  if (!sh) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: shape is NULL", op);
  if (sh->n < 0 || sh->c < 0 || sh->h < 1 || sh->w < 1 || sh->oh < 1 || sh->ow < 1)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT,
                     "%s: need n, c >= 0 and h, w, oh, ow >= 1, got n=%lld c=%lld h=%lld w=%lld oh=%lld ow=%lld", op,
                     (long long)sh->n, (long long)sh->c, (long long)sh->h, (long long)sh->w, (long long)sh->oh,
                     (long long)sh->ow);
  return TSM_OK;
}

}  // namespace norm
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;
using namespace tsm::cuda::norm;

extern "C" {

TSM_API tsm_status tsm_cuda_adaptive_avg_pool2d_forward(float* y, const float* x, const tsm_pool2d_shape* sh) {
  const char* op = "cuda_adaptive_avg_pool2d_forward";
  if (tsm_status s = check_adaptive(op, sh)) return s;
  const int64_t planes = sh->n * sh->c;
  if (planes == 0) return TSM_OK;
  if (!y || !x) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !y ? "y" : "x");
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  TSM_NORM_LAUNCH(adaptive_avg_forward_kernel, grid_for(planes * sh->oh * sh->ow), kPoolBlock, 0, st, y, x, planes,
                  sh->h, sh->w, sh->oh, sh->ow);
  return check_launch(op);
}

TSM_API tsm_status tsm_cuda_adaptive_avg_pool2d_backward(float* dx, const float* dy, const tsm_pool2d_shape* sh) {
  const char* op = "cuda_adaptive_avg_pool2d_backward";
  if (tsm_status s = check_adaptive(op, sh)) return s;
  const int64_t planes = sh->n * sh->c;
  if (planes == 0) return TSM_OK;
  if (!dx || !dy) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !dx ? "dx" : "dy");
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  TSM_NORM_LAUNCH(adaptive_avg_backward_kernel, grid_for(planes * sh->h * sh->w), kPoolBlock, 0, st, dx, dy, planes,
                  sh->h, sh->w, sh->oh, sh->ow);
  return check_launch(op);
}

}  // extern "C"
