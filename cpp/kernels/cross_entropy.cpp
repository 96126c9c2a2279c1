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
// The targets are checked before anything is written. Rows run in parallel.
#include <algorithm>
#include <cmath>

#include "../runtime/runtime.h"

namespace tsm {
namespace {

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
  tsm::for_rows(n, c, [&](int64_t i) {
    // logits row (c) -> log_probs row (c), loss scalar
    const float* x = logits + i * c;
    float* lp = log_probs + i * c;
    float m = x[0];
    for (int64_t j = 1; j < c; ++j) m = std::max(m, x[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < c; ++j) sum += std::exp(double(x[j]) - m);
    const double lse = double(m) + std::log(sum);
    double lp_sum = 0.0;
    for (int64_t j = 0; j < c; ++j) {
      const double v = double(x[j]) - lse;
      lp[j] = static_cast<float>(v);
      lp_sum += v;
    }
    const int64_t t = targets[i];
    if (t == ignore_index) {
      losses[i] = 0.0f;
      return;
    }
    const double nll = -(double(x[t]) - lse);
    losses[i] = static_cast<float>((1.0 - eps) * nll - eps / double(c) * lp_sum);
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
  tsm::for_rows(n, c, [&](int64_t i) {
    // log_probs row (c), dlosses scalar -> dlogits row (c)
    float* g = dlogits + i * c;
    const float* lp = log_probs + i * c;
    const int64_t t = targets[i];
    if (t == ignore_index) {
      std::fill(g, g + c, 0.0f);
      return;
    }
    const float dl = dlosses[i];
    for (int64_t j = 0; j < c; ++j) g[j] = dl * (std::exp(lp[j]) - off);
    g[t] -= dl * (1.0f - eps);
  });
  return TSM_OK;
}

}  // extern "C"
