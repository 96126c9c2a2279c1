// Softmax and log-softmax over the middle axis of x viewed as (outer, dim, inner), float32.
//
//   forward   y (outer, dim, inner) = exp(x - max) / sum exp(x - max)            (log = 0)
//                                   = x - max - log(sum exp(x - max))            (log = 1)
//   backward  dx (outer, dim, inner) from y (forward output) and dy (outer, dim, inner):
//             softmax      dx = y * (dy - sum_dim(dy * y))
//             log-softmax  dx = dy - exp(y) * sum_dim(dy)
//
// Subtracting the max keeps every exp in (0, 1], so logits of any finite size give finite results.
// Sums are accumulated in double (exp sums in float lanes per block of 256, the blocks in double).
// inner == 1 (the common "last axis" case) walks contiguous rows; inner > 1 cuts the inner axis into
// kTile-wide tiles whose running max / sum live on the stack. Every pass reads x[i] before writing
// y[i] at the same index, so y may alias x (and dx may alias dy). The row and tile functions run on
// SIMD lanes, with a build per ISA and a branch-free exp (simd/exp_approx.h) in place of the C
// library's: a 2048 x 128 log-softmax took 2.3 ns per element with the scalar calls.
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

constexpr int64_t kGrain = 32768;
constexpr int64_t kTile = 128;

template <class F>
void for_tasks(int64_t tasks, int64_t work, const F& f) {
  if (tasks <= 0) return;
  const int64_t per = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, work));
  if (tasks <= per) {
    for (int64_t t = 0; t < tasks; ++t) f(t);
    return;
  }
  const int64_t chunks = (tasks + per - 1) / per;
  parallel_for(chunks, [&](int64_t c) {
    const int64_t e = std::min(tasks, (c + 1) * per);
    for (int64_t t = c * per; t < e; ++t) f(t);
  });
}

// y (dim), x (dim): one contiguous row.
inline __attribute__((always_inline)) void softmax_row(float* y, const float* x, int64_t dim, bool log) {
  const float m = row_max(x, dim);
  if (log) {
    // (x - m) - log(sum), not x - (m + log(sum)): m + log(sum) would round at the scale of m.
    const float lsum = static_cast<float>(std::log(row_sum_exp(x, dim, m)));
    for (int64_t d = 0; d < dim; ++d) y[d] = (x[d] - m) - lsum;
  } else {
    const float inv = static_cast<float>(1.0 / row_exp_store(y, x, dim, m));
    for (int64_t d = 0; d < dim; ++d) y[d] *= inv;
  }
}

// y, x (dim, stride inner) restricted to columns [0, w) of one tile.
inline __attribute__((always_inline)) void softmax_tile(float* y, const float* x, int64_t dim, int64_t inner,
                                                        int64_t w, bool log) {
  float m[kTile];
  double sum[kTile];
  for (int64_t i = 0; i < w; ++i) {
    m[i] = x[i];
    sum[i] = 0.0;
  }
  for (int64_t d = 1; d < dim; ++d) {
    const float* row = x + d * inner;
    for (int64_t i = 0; i < w; ++i) m[i] = row[i] > m[i] ? row[i] : m[i];
  }
  for (int64_t d = 0; d < dim; ++d) {
    const float* row = x + d * inner;
    float* out = y + d * inner;
    for (int64_t i = 0; i < w; ++i) {
      const float e = exp_approx(row[i] - m[i]);
      if (!log) out[i] = e;
      sum[i] += e;
    }
  }
  float scale[kTile];  // log(sum) for log-softmax, 1 / sum for softmax
  for (int64_t i = 0; i < w; ++i)
    scale[i] = log ? static_cast<float>(std::log(sum[i])) : static_cast<float>(1.0 / sum[i]);
  for (int64_t d = 0; d < dim; ++d) {
    const float* row = x + d * inner;
    float* out = y + d * inner;
    if (log) for (int64_t i = 0; i < w; ++i) out[i] = (row[i] - m[i]) - scale[i];
    else for (int64_t i = 0; i < w; ++i) out[i] *= scale[i];
  }
}

// dx, y, dy (dim), one contiguous row.
inline __attribute__((always_inline)) void softmax_backward_row(float* dx, const float* y, const float* dy,
                                                                int64_t dim, bool log) {
  if (log) {
    const float sf = static_cast<float>(row_sum(dy, dim));
    for (int64_t d = 0; d < dim; ++d) dx[d] = dy[d] - exp_approx(y[d]) * sf;
  } else {
    const float sf = static_cast<float>(row_dot(dy, y, dim));
    for (int64_t d = 0; d < dim; ++d) dx[d] = y[d] * (dy[d] - sf);
  }
}

inline __attribute__((always_inline)) void softmax_backward_tile(float* dx, const float* y, const float* dy,
                                                                 int64_t dim, int64_t inner, int64_t w, bool log) {
  double s[kTile];
  for (int64_t i = 0; i < w; ++i) s[i] = 0.0;
  for (int64_t d = 0; d < dim; ++d) {
    const float* yr = y + d * inner;
    const float* gr = dy + d * inner;
    if (log) for (int64_t i = 0; i < w; ++i) s[i] += gr[i];
    else for (int64_t i = 0; i < w; ++i) s[i] += double(gr[i]) * yr[i];
  }
  float sf[kTile];
  for (int64_t i = 0; i < w; ++i) sf[i] = static_cast<float>(s[i]);
  for (int64_t d = 0; d < dim; ++d) {
    const float* yr = y + d * inner;
    const float* gr = dy + d * inner;
    float* out = dx + d * inner;
    if (log) for (int64_t i = 0; i < w; ++i) out[i] = gr[i] - exp_approx(yr[i]) * sf[i];
    else for (int64_t i = 0; i < w; ++i) out[i] = yr[i] * (gr[i] - sf[i]);
  }
}

// The four, built for one ISA (the attribute names its target, empty for the baseline build).
struct SoftmaxKernels {
  void (*row)(float*, const float*, int64_t, bool);
  void (*tile)(float*, const float*, int64_t, int64_t, int64_t, bool);
  void (*backward_row)(float*, const float*, const float*, int64_t, bool);
  void (*backward_tile)(float*, const float*, const float*, int64_t, int64_t, int64_t, bool);
};
#define TSM_SOFTMAX_KERNELS(name, attr)                                                                    \
  attr void name##_row(float* y, const float* x, int64_t dim, bool log) { softmax_row(y, x, dim, log); }  \
  attr void name##_tile(float* y, const float* x, int64_t dim, int64_t inner, int64_t w, bool log) {      \
    softmax_tile(y, x, dim, inner, w, log);                                                                \
  }                                                                                                        \
  attr void name##_backward_row(float* dx, const float* y, const float* dy, int64_t dim, bool log) {      \
    softmax_backward_row(dx, y, dy, dim, log);                                                             \
  }                                                                                                        \
  attr void name##_backward_tile(float* dx, const float* y, const float* dy, int64_t dim, int64_t inner,   \
                                 int64_t w, bool log) {                                                    \
    softmax_backward_tile(dx, y, dy, dim, inner, w, log);                                                  \
  }                                                                                                        \
  const SoftmaxKernels name{name##_row, name##_tile, name##_backward_row, name##_backward_tile};
TSM_SOFTMAX_KERNELS(kernels_generic, )
#if TSM_ISA_X86
TSM_SOFTMAX_KERNELS(kernels_avx2, TSM_TARGET_AVX2)
TSM_SOFTMAX_KERNELS(kernels_avx512, TSM_TARGET_AVX512)
#endif
#undef TSM_SOFTMAX_KERNELS

tsm_status check_sizes(const char* op, int64_t outer, int64_t dim, int64_t inner, int64_t* total) {
  if (outer < 0 || dim < 0 || inner < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: outer, dim and inner must be >= 0, got (%lld, %lld, %lld)",
                op, (long long)outer, (long long)dim, (long long)inner);
  int64_t oi = 0;
  if (__builtin_mul_overflow(outer, inner, &oi) || __builtin_mul_overflow(oi, dim, total))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: too many elements", op);
  return TSM_OK;
}

}  // namespace
}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_softmax_forward(float* y, const float* x, int64_t outer, int64_t dim,
                                       int64_t inner, int log) {
  int64_t total = 0;
  tsm_status s = tsm::check_sizes("softmax_forward", outer, dim, inner, &total);
  if (s != TSM_OK) return s;
  if (total == 0) return TSM_OK;
  if (!y || !x) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "softmax_forward: %s is NULL", !y ? "y" : "x");
  const bool lg = log != 0;
  const tsm::SoftmaxKernels& k = *TSM_PICK_ISA(tsm::active_simd(), &tsm::kernels);
  if (inner == 1) {
    tsm::for_tasks(outer, dim, [&](int64_t o) { k.row(y + o * dim, x + o * dim, dim, lg); });
    return TSM_OK;
  }
  const int64_t tiles = (inner + tsm::kTile - 1) / tsm::kTile;
  tsm::for_tasks(outer * tiles, dim * std::min(inner, tsm::kTile), [&](int64_t t) {
    const int64_t o = t / tiles, i0 = (t % tiles) * tsm::kTile;
    const int64_t off = o * dim * inner + i0;
    k.tile(y + off, x + off, dim, inner, std::min(tsm::kTile, inner - i0), lg);
  });
  return TSM_OK;
}

TSM_API tsm_status tsm_softmax_backward(float* dx, const float* y, const float* dy, int64_t outer,
                                        int64_t dim, int64_t inner, int log) {
  int64_t total = 0;
  tsm_status s = tsm::check_sizes("softmax_backward", outer, dim, inner, &total);
  if (s != TSM_OK) return s;
  if (total == 0) return TSM_OK;
  if (!dx || !y || !dy)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "softmax_backward: %s is NULL",
                     !dx ? "dx" : !y ? "y" : "dy");
  const bool lg = log != 0;
  const tsm::SoftmaxKernels& k = *TSM_PICK_ISA(tsm::active_simd(), &tsm::kernels);
  if (inner == 1) {
    tsm::for_tasks(outer, dim, [&](int64_t o) {
      k.backward_row(dx + o * dim, y + o * dim, dy + o * dim, dim, lg);
    });
    return TSM_OK;
  }
  const int64_t tiles = (inner + tsm::kTile - 1) / tsm::kTile;
  tsm::for_tasks(outer * tiles, dim * std::min(inner, tsm::kTile), [&](int64_t t) {
    const int64_t o = t / tiles, i0 = (t % tiles) * tsm::kTile;
    const int64_t off = o * dim * inner + i0;
    k.backward_tile(dx + off, y + off, dy + off, dim, inner, std::min(tsm::kTile, inner - i0), lg);
  });
  return TSM_OK;
}

}  // extern "C"
