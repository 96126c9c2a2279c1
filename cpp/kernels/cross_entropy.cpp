// Cross-entropy on logits, float32, as torch.nn.CrossEntropyLoss(reduction='none', ignore_index,
// label_smoothing = eps):
//
//   forward   logits (n, c), targets (n) int32
//             -> log_probs (n, c) = logits - logsumexp(logits) per row
//             -> losses (n)       = -(1 - eps) * log_probs[t] - eps / c * sum_j log_probs[j]
//                                   (0 where targets[i] == ignore_index)
//   backward  dlogits (n, c) = dlosses[i] * (softmax - (1 - eps) * onehot(t) - eps / c)
//             from log_probs (n, c), targets (n), dlosses (n); 0 for ignored rows.
//
// The targets are checked before anything is written. Rows run in parallel; within a row the
// loops run on SIMD lanes (exp_approx instead of the C library's exp, whose scalar calls had the
// forward at 2.3 ns per logit), with a build of the row functions per ISA.
#include <algorithm>
#include <cmath>

// exp_approx's clamps become selects (and its loops vectorize) only without trapping math.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "../runtime/runtime.h"
#include "simd/exp_approx.h"
#include "simd/isa_target.h"
#include "simd/row_ops.h"

namespace tsm {
namespace {

// One row of the forward: log_probs (c) from logits (c); returns the loss (target t, or -1 for an
// ignored row: 0).
inline __attribute__((always_inline)) float forward_row(float* __restrict lp, const float* __restrict x, int64_t c,
                                                        int64_t t, double eps) {
  const float m = row_max(x, c);
  const double lse = double(m) + std::log(row_sum_exp(x, c, m));
  for (int64_t j = 0; j < c; ++j) lp[j] = static_cast<float>(double(x[j]) - lse);
  if (t < 0) return 0.0f;
  const double nll = -(double(x[t]) - lse);
  // Without smoothing the other log-probabilities do not enter (a -inf among them once made the
  // loss 0 * -inf = NaN).
  if (eps == 0.0) return static_cast<float>(nll);
  const double lp_sum = row_sum(x, c) - double(c) * lse;
  return static_cast<float>((1.0 - eps) * nll - eps / double(c) * lp_sum);
}

// One row of the backward: g = dl * (exp(lp) - off), and at the target dl * (exp(lp) - off - (1 - eps))
// in one expression (the difference before the product: with an FMA, g[t] -= dl * (1 - eps) left the
// product's rounding error where the true value is 0, as for a single class).
inline __attribute__((always_inline)) void backward_row(float* __restrict g, const float* __restrict lp, int64_t c,
                                                        int64_t t, float dl, float off, float eps) {
  for (int64_t j = 0; j < c; ++j) g[j] = dl * (exp_approx(lp[j]) - off);
  g[t] = dl * ((exp_approx(lp[t]) - off) - (1.0f - eps));
}

float forward_row_generic(float* lp, const float* x, int64_t c, int64_t t, double eps) {
  return forward_row(lp, x, c, t, eps);
}
void backward_row_generic(float* g, const float* lp, int64_t c, int64_t t, float dl, float off, float eps) {
  backward_row(g, lp, c, t, dl, off, eps);
}
#if TSM_ISA_X86
TSM_TARGET_AVX2 float forward_row_avx2(float* lp, const float* x, int64_t c, int64_t t, double eps) {
  return forward_row(lp, x, c, t, eps);
}
TSM_TARGET_AVX2 void backward_row_avx2(float* g, const float* lp, int64_t c, int64_t t, float dl, float off,
                                       float eps) {
  backward_row(g, lp, c, t, dl, off, eps);
}
TSM_TARGET_AVX512 float forward_row_avx512(float* lp, const float* x, int64_t c, int64_t t, double eps) {
  return forward_row(lp, x, c, t, eps);
}
TSM_TARGET_AVX512 void backward_row_avx512(float* g, const float* lp, int64_t c, int64_t t, float dl, float off,
                                           float eps) {
  backward_row(g, lp, c, t, dl, off, eps);
}
#endif

constexpr int64_t kGrain = 32768;

template <class F>
void for_rows(int64_t rows, int64_t work, const F& f) {
  if (rows <= 0) return;
  const int64_t per = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, work));
  if (rows <= per) {
    for (int64_t r = 0; r < rows; ++r) f(r);
    return;
  }
  const int64_t chunks = (rows + per - 1) / per;
  parallel_for(chunks, [&](int64_t ch) {
    const int64_t e = std::min(rows, (ch + 1) * per);
    for (int64_t r = ch * per; r < e; ++r) f(r);
  });
}

tsm_status check_args(const char* op, const int32_t* targets, int64_t n, int64_t c,
                      int64_t ignore_index, float eps) {
  if (n < 0 || c < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: n and c must be >= 0, got (%lld, %lld)", op,
                (long long)n, (long long)c);
  int64_t total = 0;
  if (__builtin_mul_overflow(n, c, &total))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: too many elements", op);
  if (!(eps >= 0.0f && eps <= 1.0f))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: label_smoothing must be in [0, 1], got %g", op,
                double(eps));
  if (n > 0 && !targets) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: targets is NULL", op);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = targets[i];
    if (t == ignore_index) continue;
    if (t < 0 || t >= c)
      return fail(TSM_ERR_INVALID_ARGUMENT,
                  "%s: targets[%lld] = %lld is outside [0, %lld) and is not ignore_index (%lld)", op,
                  (long long)i, (long long)t, (long long)c, (long long)ignore_index);
  }
  return TSM_OK;
}

}  // namespace
}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_cross_entropy_forward(float* losses, float* log_probs, const float* logits,
                                             const int32_t* targets, int64_t n, int64_t c,
                                             int64_t ignore_index, float label_smoothing) {
  const char* op = "cross_entropy_forward";
  tsm_status s = tsm::check_args(op, targets, n, c, ignore_index, label_smoothing);
  if (s != TSM_OK) return s;
  if (n == 0) return TSM_OK;
  if (!losses) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: losses is NULL", op);
  if (c == 0) {  // every target is ignore_index here (checked above)
    std::fill(losses, losses + n, 0.0f);
    return TSM_OK;
  }
  if (!log_probs || !logits)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !log_probs ? "log_probs" : "logits");
  const double eps = label_smoothing;
  const auto row = TSM_PICK_ISA(tsm::active_simd(), tsm::forward_row);
  tsm::for_rows(n, c, [&](int64_t i) {
    const int64_t t = targets[i];
    losses[i] = row(log_probs + i * c, logits + i * c, c, t == ignore_index ? -1 : t, eps);
  });
  return TSM_OK;
}

TSM_API tsm_status tsm_cross_entropy_backward(float* dlogits, const float* log_probs,
                                              const int32_t* targets, const float* dlosses,
                                              int64_t n, int64_t c, int64_t ignore_index,
                                              float label_smoothing) {
  const char* op = "cross_entropy_backward";
  tsm_status s = tsm::check_args(op, targets, n, c, ignore_index, label_smoothing);
  if (s != TSM_OK) return s;
  if (n == 0 || c == 0) return TSM_OK;
  if (!dlogits || !log_probs || !dlosses)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op,
                     !dlogits ? "dlogits" : !log_probs ? "log_probs" : "dlosses");
  const float eps = label_smoothing;
  const float off = eps / static_cast<float>(c);
  const auto row = TSM_PICK_ISA(tsm::active_simd(), tsm::backward_row);
  tsm::for_rows(n, c, [&](int64_t i) {
    float* g = dlogits + i * c;
    const int64_t t = targets[i];
    if (t == ignore_index) std::fill(g, g + c, 0.0f);
    else row(g, log_probs + i * c, c, t, dlosses[i], off, eps);
  });
  return TSM_OK;
}

}  // extern "C"
