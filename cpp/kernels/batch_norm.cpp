// BatchNorm over (N, C, HW) — BatchNorm1d (HW = 1 or L) and BatchNorm2d (HW = H * W) — forward and
// backward. Statistics are per channel, over the M = N * HW values of that channel.
//
//   x, y, dy, dx                  : (n, c, hw), contiguous
//   save_mean, save_invstd        : (c)   statistics used by the forward, kept for the backward
//   running_mean, running_var     : (c) or NULL, updated in place by a training forward
//   w, b, dw, db                  : (c) or NULL
//
// Forward (training):  mean = sum(x) / M,  var = sum((x - mean)^2) / M,  invstd = 1/sqrt(var + eps)
//   running_mean = (1 - momentum) running_mean + momentum mean
//   running_var  = (1 - momentum) running_var  + momentum var * M / (M - 1)     (unbiased)
// Forward (eval):      mean = running_mean,  invstd = 1 / sqrt(running_var + eps)
//   y = (x - mean) * invstd * w + b
// Backward (training): xhat = (x - mean) * invstd,  db = sum(dy),  dw = sum(dy * xhat),
//   dx = w * invstd * (dy - db / M - xhat * dw / M)
// Backward (eval):     dx = dy * w * invstd,  dw and db as above.
// Channels run in parallel; each channel's sums run in a fixed order (deterministic).
#include <algorithm>
#include <cmath>

#include "../runtime/runtime.h"

namespace tsm {
namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Runs f(begin, end) over [0, n) split into contiguous ranges of at least `grain` items.
template <typename F>
void parallel_range(int64_t n, int64_t grain, const F& f) {
  if (n <= 0) return;
  const int64_t tasks = std::min<int64_t>(ceil_div(n, std::max<int64_t>(grain, 1)),
                                          int64_t(num_threads()) * 4);
  if (tasks <= 1) {
    f(int64_t(0), n);
    return;
  }
  parallel_for(tasks, [&](int64_t t) { f(n * t / tasks, n * (t + 1) / tasks); });
}

tsm_status check_sizes(const char* op, int64_t n, int64_t c, int64_t hw) {
  if (n < 0 || c < 0 || hw < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: n, c and hw must be >= 0, got %lld, %lld, %lld", op,
                (long long)n, (long long)c, (long long)hw);
  return TSM_OK;
}

}  // namespace
}  // namespace tsm

extern "C" {

// y, x: (n, c, hw)   save_mean, save_invstd: (c)   running_mean, running_var, w, b: (c) or NULL
TSM_API tsm_status tsm_batch_norm_forward(float* y, float* save_mean, float* save_invstd,
                                          float* running_mean, float* running_var, const float* x,
                                          const float* w, const float* b, int64_t n, int64_t c,
                                          int64_t hw, int training, float momentum, float eps) {
  using namespace tsm;
  const char* op = "batch_norm_forward";
  if (tsm_status s = check_sizes(op, n, c, hw)) return s;
  if (!(eps >= 0.0f)) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: eps must be >= 0", op);
  if (c == 0) return TSM_OK;
  const int64_t count = n * hw;
  if (!save_mean || !save_invstd)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: save_mean and save_invstd must not be NULL", op);
  if ((running_mean == nullptr) != (running_var == nullptr))
    return fail(TSM_ERR_INVALID_ARGUMENT,
                "%s: running_mean and running_var must be both given or both NULL", op);
  if (training && count <= 1)
    return fail(TSM_ERR_INVALID_ARGUMENT,
                "%s: training needs more than 1 value per channel, got n * hw = %lld", op,
                (long long)count);
  if (!training && !running_mean)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: eval mode needs running_mean and running_var", op);
  if (count > 0 && (!x || !y)) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: x and y must not be NULL", op);

  const int64_t plane = hw, cstride = c * hw;
  parallel_range(c, std::max<int64_t>(1, 16384 / std::max<int64_t>(count, 1)), [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      float mf, inv;
      if (training) {
        double s = 0.0;
        for (int64_t i = 0; i < n; ++i) {
          const float* p = x + i * cstride + ch * plane;
          double ps = 0.0;
          for (int64_t k = 0; k < hw; ++k) ps += p[k];
          s += ps;
        }
        const double m = s / double(count);
        double ss = 0.0;
        for (int64_t i = 0; i < n; ++i) {
          const float* p = x + i * cstride + ch * plane;
          double ps = 0.0;
          for (int64_t k = 0; k < hw; ++k) {
            const double d = p[k] - m;
            ps += d * d;
          }
          ss += ps;
        }
        const double var = ss / double(count);
        mf = static_cast<float>(m);
        inv = static_cast<float>(1.0 / std::sqrt(var + double(eps)));
        if (running_mean) {
          const double mo = momentum;
          const double unbiased = ss / double(count - 1);
          running_mean[ch] = static_cast<float>((1.0 - mo) * running_mean[ch] + mo * m);
          running_var[ch] = static_cast<float>((1.0 - mo) * running_var[ch] + mo * unbiased);
        }
      } else {
        mf = running_mean[ch];
        inv = static_cast<float>(1.0 / std::sqrt(double(running_var[ch]) + double(eps)));
      }
      save_mean[ch] = mf;
      save_invstd[ch] = inv;
      // y = (x - mean) * invstd * w + b = x * scale + shift
      const float scale = inv * (w ? w[ch] : 1.0f);
      const float shift = (b ? b[ch] : 0.0f) - mf * scale;
      for (int64_t i = 0; i < n; ++i) {
        const float* p = x + i * cstride + ch * plane;
        float* q = y + i * cstride + ch * plane;
        for (int64_t k = 0; k < hw; ++k) q[k] = p[k] * scale + shift;
      }
    }
  });
  return TSM_OK;
}

// dx, dy, x: (n, c, hw)   save_mean, save_invstd: (c)   w, dw, db: (c) or NULL
TSM_API tsm_status tsm_batch_norm_backward(float* dx, float* dw, float* db, const float* dy,
                                           const float* x, const float* save_mean,
                                           const float* save_invstd, const float* w, int64_t n,
                                           int64_t c, int64_t hw, int training) {
  using namespace tsm;
  const char* op = "batch_norm_backward";
  if (tsm_status s = check_sizes(op, n, c, hw)) return s;
  if (c == 0) return TSM_OK;
  const int64_t count = n * hw;
  if (!save_mean || !save_invstd)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: save_mean and save_invstd must not be NULL", op);
  if (count > 0 && (!dy || !x)) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: dy and x must not be NULL", op);

  const int64_t plane = hw, cstride = c * hw;
  parallel_range(c, std::max<int64_t>(1, 8192 / std::max<int64_t>(count, 1)), [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const float m = save_mean[ch], inv = save_invstd[ch];
      const float wc = w ? w[ch] : 1.0f;
      double sdy = 0.0, sdyx = 0.0;  // sum(dy), sum(dy * xhat)
      for (int64_t i = 0; i < n; ++i) {
        const float* xp = x + i * cstride + ch * plane;
        const float* gp = dy + i * cstride + ch * plane;
        double a = 0.0, bsum = 0.0;
        for (int64_t k = 0; k < hw; ++k) {
          a += gp[k];
          bsum += double(gp[k]) * ((xp[k] - m) * inv);
        }
        sdy += a;
        sdyx += bsum;
      }
      if (db) db[ch] = static_cast<float>(sdy);
      if (dw) dw[ch] = static_cast<float>(sdyx);
      if (!dx) continue;
      const float k1 = wc * inv;
      if (training) {
        const float mdy = static_cast<float>(sdy / double(count));
        const float mdyx = static_cast<float>(sdyx / double(count));
        for (int64_t i = 0; i < n; ++i) {
          const float* xp = x + i * cstride + ch * plane;
          const float* gp = dy + i * cstride + ch * plane;
          float* dp = dx + i * cstride + ch * plane;
          for (int64_t k = 0; k < hw; ++k) {
            const float xh = (xp[k] - m) * inv;
            dp[k] = k1 * (gp[k] - mdy - xh * mdyx);
          }
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          const float* gp = dy + i * cstride + ch * plane;
          float* dp = dx + i * cstride + ch * plane;
          for (int64_t k = 0; k < hw; ++k) dp[k] = gp[k] * k1;
        }
      }
    }
  });
  return TSM_OK;
}

}  // extern "C"
