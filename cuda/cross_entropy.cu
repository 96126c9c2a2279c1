// Fused softmax cross-entropy of CUDA tensors, float32 (the CPU twin: cpp/kernels/cross_entropy.cpp,
// as torch.nn.CrossEntropyLoss with ignore_index and label_smoothing = eps):
//
//   forward   logits (n, c), targets (n) int32
//             -> log_probs (n, c) = logits - logsumexp(logits) per row
//             -> losses (n)       = -(1 - eps) * log_probs[t] - eps / c * sum_j log_probs[j]
//                                   (0 where targets[i] == ignore_index, NaN for a target outside
//                                   [0, c) that is not ignore_index: device targets are not checked)
//             -> out (1)          = sum (reduction 2) or sum / count (reduction 1), count (1)
//   backward  dlogits (n, c) = dl_i * (exp(log_probs) - eps / c - (1 - eps) [j == t_i])
//
// Forward: one warp per row (shuffles only; any c, a loop of c / 32 per lane), then one 1024-thread
// block for the reduction (a fixed order: the result does not depend on scheduling). Backward: one
// thread per element. Sums are float32 where the CPU uses double (log-sum-exp and the smoothing
// sum): differences are rounding-level for the class counts of classifiers.
#include <climits>

#include "tensor_common.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr int kReduceThreads = 1024;

__global__ void ce_forward_kernel(float* __restrict__ losses, float* __restrict__ log_probs,
                                  const float* __restrict__ logits, const int32_t* __restrict__ targets, int64_t n,
                                  int64_t c, int64_t ignore_index, float eps) {
  const int lane = threadIdx.x & 31;
  const int64_t wpb = blockDim.x >> 5;
  for (int64_t r = int64_t(blockIdx.x) * wpb + (threadIdx.x >> 5); r < n; r += int64_t(gridDim.x) * wpb) {
    const float* x = logits + r * c;
    float* lp = log_probs + r * c;
    float m = -INFINITY;
    for (int64_t j = lane; j < c; j += 32) m = fmaxf(m, x[j]);
    m = warp_max(m);
    float s = 0.f;
    for (int64_t j = lane; j < c; j += 32) s += expf(x[j] - m);
    s = warp_sum(s);
    const float lse = m + logf(s);
    float lps = 0.f;
    for (int64_t j = lane; j < c; j += 32) {
      const float v = x[j] - lse;
      lp[j] = v;
      lps += v;
    }
    lps = warp_sum(lps);
    if (lane == 0) {
      const int64_t t = targets[r];
      float loss;
      if (t == ignore_index) loss = 0.f;
      else if (t < 0 || t >= c) loss = NAN;
      // (without smoothing the other log-probabilities do not enter: a -inf among them would make
      // 0 * lps NaN)
      else if (eps == 0.f) loss = lse - x[t];
      else loss = (1.f - eps) * (lse - x[t]) - eps / float(c) * lps;
      losses[r] = loss;
    }
  }
}

// out[0] = sum of losses (/ count for the mean), count[0] = rows not ignored: one block.
__global__ void ce_reduce_kernel(float* __restrict__ out, float* __restrict__ count, const float* __restrict__ losses,
                                 const int32_t* __restrict__ targets, int64_t n, int64_t ignore_index, bool mean) {
  __shared__ float smem[32];
  float s = 0.f, k = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    s += losses[i];
    if (targets[i] != ignore_index) k += 1.f;
  }
  s = block_sum(s, smem);
  k = block_sum(k, smem);
  if (threadIdx.x == 0) {
    out[0] = mean ? s / k : s;  // every row ignored: 0 / 0 = NaN, as the CPU
    count[0] = k;
  }
}

__global__ void ce_backward_kernel(float* __restrict__ dlogits, const float* __restrict__ log_probs,
                                   const int32_t* __restrict__ targets, const float* __restrict__ dloss,
                                   const float* __restrict__ count, int64_t n, int64_t c, int64_t ignore_index,
                                   float eps, int reduction) {
  const int64_t total = n * c, stride = grid_threads();
  const float off = eps / float(c);
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t r = e / c, j = e - r * c;
    const int64_t t = targets[r];
    if (t == ignore_index) {
      dlogits[e] = 0.f;
      continue;
    }
    float dl = reduction == 0 ? dloss[r] : dloss[0];
    if (reduction == 1) dl = dl / fmaxf(count[0], 1.f);
    if (t < 0 || t >= c) {
      dlogits[e] = NAN;
      continue;
    }
    // At the target the difference comes before the product, as on the CPU (no rounding error of a
    // product left where the true value is 0).
    float d = __fsub_rn(expf(log_probs[e]), off);
    if (j == t) d = __fsub_rn(d, 1.f - eps);
    dlogits[e] = __fmul_rn(dl, d);
  }
}

tsm_status check_args(const char* op, int64_t n, int64_t c, float eps, int reduction) {
  if (n < 0 || c < 1)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: n must be >= 0 and c >= 1, got (%lld, %lld)", op, (long long)n,
                (long long)c);
  if (c > INT_MAX || (n > 0 && c > (int64_t(1) << 53) / n))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: n * c = %lld * %lld is too large", op, (long long)n, (long long)c);
  if (!(eps >= 0.f && eps <= 1.f))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: label_smoothing must be in [0, 1], got %g", op, double(eps));
  if (reduction < 0 || reduction > 2)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: reduction must be 0 (none), 1 (mean) or 2 (sum), got %d", op, reduction);
  return TSM_OK;
}

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_cross_entropy_forward(float* losses, float* log_probs, float* out, float* count,
                                                  const float* logits, const int32_t* targets, int64_t n, int64_t c,
                                                  int64_t ignore_index, float label_smoothing, int reduction) {
  const char* name = "cuda_cross_entropy_forward";
  if (tsm_status s = check_args(name, n, c, label_smoothing, reduction)) return s;
  if (reduction != 0 && (!out || !count))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL (needed for a reduction)", name, !out ? "out" : "count");
  if (n > 0 && (!losses || !log_probs || !logits || !targets))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name,
                     !losses ? "losses" : !log_probs ? "log_probs" : !logits ? "logits" : "targets");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  if (n > 0) {
    ce_forward_kernel<<<grid_for(n, kThreads / 32), kThreads, 0, st>>>(losses, log_probs, logits, targets, n, c,
                                                                       ignore_index, label_smoothing);
    if (tsm_status s = check_launch(name)) return s;
  }
  if (reduction != 0) {
    ce_reduce_kernel<<<1, kReduceThreads, 0, st>>>(out, count, losses, targets, n, ignore_index, reduction == 1);
    return check_launch(name);
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_cross_entropy_backward(float* dlogits, const float* log_probs, const int32_t* targets,
                                                   const float* dloss, const float* count, int64_t n, int64_t c,
                                                   int64_t ignore_index, float label_smoothing, int reduction) {
  const char* name = "cuda_cross_entropy_backward";
  if (tsm_status s = check_args(name, n, c, label_smoothing, reduction)) return s;
  if (n == 0) return TSM_OK;
  if (!dlogits || !log_probs || !targets || !dloss || (reduction == 1 && !count))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name,
                     !dlogits ? "dlogits" : !log_probs ? "log_probs" : !targets ? "targets" : !dloss ? "dloss" : "count");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  ce_backward_kernel<<<grid_for(n * c), kThreads, 0, st>>>(dlogits, log_probs, targets, dloss, count, n, c,
                                                           ignore_index, label_smoothing, reduction);
  return check_launch(name);
}

}  // extern "C"
