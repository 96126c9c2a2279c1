// Reductions, float32, contiguous. x is viewed as (outer, dim, inner) and reduced over dim:
//
//   tsm_reduce_forward   out (outer, inner)  = sum | mean | max | min | prod over dim of x (outer, dim, inner)
//   tsm_arg_reduce       out (outer, inner)  int32 index of the first max / min (NaN wins)
//   tsm_sum_to_shape     out (out_shape)     = x (x_shape) summed over its broadcast dims
//   tsm_sum_of_squares   *result             = sum x[i]^2 over x (n), double
//   tsm_all_finite       *result             = no NaN / Inf in x (n)
//
// Sums and products accumulate in double, so reductions over millions of elements stay accurate to
// float precision. inner == 1 rows are contiguous and reduced with independent accumulators; for
// inner > 1 the inner axis is cut into tiles of kTile columns whose accumulators live on the stack
// while the kernel streams over dim, so memory is read in order. No reduction has a backward here:
// the gradients are broadcasts (binary ops) handled by the TypeScript layer.
#include <algorithm>
#include <cmath>
#include <limits>

#include "../runtime/runtime.h"

namespace tsm {
namespace {

constexpr int64_t kGrain = 32768;
constexpr int64_t kTile = 256;
constexpr int kMaxDims = 8;

template <class F>
void for_chunks(int64_t n, int64_t grain, const F& f) {
  if (n <= 0) return;
  if (n <= grain) {
    f(int64_t(0), n);
    return;
  }
  const int64_t chunks = (n + grain - 1) / grain;
  parallel_for(chunks, [&](int64_t c) {
    const int64_t b = c * grain;
    f(b, std::min(n, b + grain));
  });
}

// Splits `tasks` tasks of `work` elements each into chunks of about kGrain elements.
template <class F>
void for_tasks(int64_t tasks, int64_t work, const F& f) {
  const int64_t per = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, work));
  for_chunks(tasks, per, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) f(t);
  });
}

// Sum of a contiguous row x (n) in double, four independent accumulators.
inline double row_sum(const float* x, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i];
    s1 += x[i + 1];
    s2 += x[i + 2];
    s3 += x[i + 3];
  }
  for (; i < n; ++i) s0 += x[i];
  return (s0 + s1) + (s2 + s3);
}

// max/min step where NaN is sticky: once acc is NaN it stays NaN.
inline float max_step(float acc, float v) { return (v > acc || std::isnan(v)) ? v : acc; }
inline float min_step(float acc, float v) { return (v < acc || std::isnan(v)) ? v : acc; }

// out (outer, inner) = sum over dim of x (outer, dim, inner), scaled by `scale`.
void reduce_sum(float* out, const float* x, int64_t outer, int64_t dim, int64_t inner,
                double scale) {
  if (inner == 1) {
    for_tasks(outer, dim, [&](int64_t o) {
      out[o] = static_cast<float>(row_sum(x + o * dim, dim) * scale);
    });
    return;
  }
  const int64_t tiles = (inner + kTile - 1) / kTile;
  for_tasks(outer * tiles, dim * std::min(inner, kTile), [&](int64_t t) {
    const int64_t o = t / tiles, i0 = (t % tiles) * kTile;
    const int64_t w = std::min(kTile, inner - i0);
    double acc[kTile];
    for (int64_t i = 0; i < w; ++i) acc[i] = 0.0;
    const float* xo = x + o * dim * inner + i0;
    for (int64_t d = 0; d < dim; ++d) {
      const float* row = xo + d * inner;
      for (int64_t i = 0; i < w; ++i) acc[i] += row[i];
    }
    float* oo = out + o * inner + i0;
    for (int64_t i = 0; i < w; ++i) oo[i] = static_cast<float>(acc[i] * scale);
  });
}

void reduce_prod(float* out, const float* x, int64_t outer, int64_t dim, int64_t inner) {
  const int64_t tiles = (inner + kTile - 1) / kTile;
  for_tasks(outer * tiles, dim * std::min(inner, kTile), [&](int64_t t) {
    const int64_t o = t / tiles, i0 = (t % tiles) * kTile;
    const int64_t w = std::min(kTile, inner - i0);
    double acc[kTile];
    for (int64_t i = 0; i < w; ++i) acc[i] = 1.0;
    const float* xo = x + o * dim * inner + i0;
    for (int64_t d = 0; d < dim; ++d) {
      const float* row = xo + d * inner;
      for (int64_t i = 0; i < w; ++i) acc[i] *= row[i];
    }
    float* oo = out + o * inner + i0;
    for (int64_t i = 0; i < w; ++i) oo[i] = static_cast<float>(acc[i]);
  });
}

template <bool IS_MAX>
void reduce_extreme(float* out, const float* x, int64_t outer, int64_t dim, int64_t inner) {
  const int64_t tiles = (inner + kTile - 1) / kTile;
  for_tasks(outer * tiles, dim * std::min(inner, kTile), [&](int64_t t) {
    const int64_t o = t / tiles, i0 = (t % tiles) * kTile;
    const int64_t w = std::min(kTile, inner - i0);
    const float* xo = x + o * dim * inner + i0;
    float* oo = out + o * inner + i0;
    for (int64_t i = 0; i < w; ++i) oo[i] = xo[i];
    for (int64_t d = 1; d < dim; ++d) {
      const float* row = xo + d * inner;
      for (int64_t i = 0; i < w; ++i) oo[i] = IS_MAX ? max_step(oo[i], row[i]) : min_step(oo[i], row[i]);
    }
  });
}

template <bool IS_MAX>
void arg_extreme(int32_t* out, const float* x, int64_t outer, int64_t dim, int64_t inner) {
  const int64_t tiles = (inner + kTile - 1) / kTile;
  for_tasks(outer * tiles, dim * std::min(inner, kTile), [&](int64_t t) {
    const int64_t o = t / tiles, i0 = (t % tiles) * kTile;
    const int64_t w = std::min(kTile, inner - i0);
    const float* xo = x + o * dim * inner + i0;
    int32_t* oo = out + o * inner + i0;
    float best[kTile];
    for (int64_t i = 0; i < w; ++i) {
      best[i] = xo[i];
      oo[i] = 0;
    }
    for (int64_t d = 1; d < dim; ++d) {
      const float* row = xo + d * inner;
      for (int64_t i = 0; i < w; ++i) {
        const float v = row[i];
        // Strictly better, or the first NaN; nothing replaces a NaN.
        const bool better = IS_MAX ? (v > best[i]) : (v < best[i]);
        if (!std::isnan(best[i]) && (better || std::isnan(v))) {
          best[i] = v;
          oo[i] = static_cast<int32_t>(d);
        }
      }
    }
  });
}

// Splits [0, n) into a number of ranges that depends on n only (not on the thread count), so the
// partial results and their combination are the same on every machine.
constexpr int kParts = 64;
template <class F>
void for_parts(int64_t n, const F& f) {
  const int64_t parts = std::min<int64_t>(kParts, (n + kGrain - 1) / kGrain);
  if (parts <= 1) {
    f(int64_t(0), int64_t(0), n);
    return;
  }
  parallel_for(parts, [&](int64_t p) { f(p, n * p / parts, n * (p + 1) / parts); });
}

}  // namespace
}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_reduce_forward(int op, float* out, const float* x, int64_t outer,
                                      int64_t dim, int64_t inner) {
  using tsm::fail;
  if (op < 0 || op >= TSM_REDUCE_OP_COUNT)
    return fail(TSM_ERR_INVALID_ARGUMENT, "reduce_forward: op must be in [0, %d), got %d",
                TSM_REDUCE_OP_COUNT, op);
  if (outer < 0 || dim < 0 || inner < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT,
                "reduce_forward: outer, dim and inner must be >= 0, got (%lld, %lld, %lld)",
                (long long)outer, (long long)dim, (long long)inner);
  int64_t n_out = 0, n_x = 0;
  if (__builtin_mul_overflow(outer, inner, &n_out) || __builtin_mul_overflow(n_out, dim, &n_x))
    return fail(TSM_ERR_INVALID_ARGUMENT, "reduce_forward: too many elements");
  if (n_out == 0) return TSM_OK;
  if (!out) return fail(TSM_ERR_INVALID_ARGUMENT, "reduce_forward: out is NULL");
  if (dim == 0) {
    if (op == TSM_REDUCE_MAX || op == TSM_REDUCE_MIN)
      return fail(TSM_ERR_INVALID_ARGUMENT,
                  "reduce_forward: %s over an empty dimension (dim == 0) is undefined",
                  op == TSM_REDUCE_MAX ? "max" : "min");
    const float v = op == TSM_REDUCE_SUM ? 0.0f
                    : op == TSM_REDUCE_PROD ? 1.0f
                                            : std::numeric_limits<float>::quiet_NaN();
    std::fill(out, out + n_out, v);
    return TSM_OK;
  }
  if (!x) return fail(TSM_ERR_INVALID_ARGUMENT, "reduce_forward: x is NULL");
  switch (op) {
    case TSM_REDUCE_SUM: tsm::reduce_sum(out, x, outer, dim, inner, 1.0); break;
    case TSM_REDUCE_MEAN: tsm::reduce_sum(out, x, outer, dim, inner, 1.0 / double(dim)); break;
    case TSM_REDUCE_MAX: tsm::reduce_extreme<true>(out, x, outer, dim, inner); break;
    case TSM_REDUCE_MIN: tsm::reduce_extreme<false>(out, x, outer, dim, inner); break;
    case TSM_REDUCE_PROD: tsm::reduce_prod(out, x, outer, dim, inner); break;
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_arg_reduce(int32_t* out, const float* x, int64_t outer, int64_t dim,
                                  int64_t inner, int is_max) {
  using tsm::fail;
  if (outer < 0 || dim < 0 || inner < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT,
                "arg_reduce: outer, dim and inner must be >= 0, got (%lld, %lld, %lld)",
                (long long)outer, (long long)dim, (long long)inner);
  int64_t n_out = 0, n_x = 0;
  if (__builtin_mul_overflow(outer, inner, &n_out) || __builtin_mul_overflow(n_out, dim, &n_x))
    return fail(TSM_ERR_INVALID_ARGUMENT, "arg_reduce: too many elements");
  if (n_out == 0) return TSM_OK;
  if (dim == 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "arg_reduce: %s over an empty dimension (dim == 0)",
                is_max ? "argmax" : "argmin");
  if (dim > INT32_MAX)
    return fail(TSM_ERR_INVALID_ARGUMENT, "arg_reduce: dim must be < 2^31, got %lld", (long long)dim);
  if (!out || !x) return fail(TSM_ERR_INVALID_ARGUMENT, "arg_reduce: %s is NULL", !out ? "out" : "x");
  if (is_max) tsm::arg_extreme<true>(out, x, outer, dim, inner);
  else tsm::arg_extreme<false>(out, x, outer, dim, inner);
  return TSM_OK;
}

TSM_API tsm_status tsm_sum_to_shape(float* out, const float* x, int ndim, const int64_t* x_shape,
                                    const int64_t* out_shape) {
  using tsm::fail;
  if (ndim < 0 || ndim > tsm::kMaxDims)
    return fail(TSM_ERR_INVALID_ARGUMENT, "sum_to_shape: ndim must be in [0, %d], got %d",
                tsm::kMaxDims, ndim);
  if (ndim > 0 && (!x_shape || !out_shape))
    return fail(TSM_ERR_INVALID_ARGUMENT, "sum_to_shape: x_shape or out_shape is NULL");
  int64_t n_x = 1, n_out = 1;
  for (int d = 0; d < ndim; ++d) {
    if (x_shape[d] < 0 || (out_shape[d] != x_shape[d] && out_shape[d] != 1))
      return fail(TSM_ERR_INVALID_ARGUMENT,
                  "sum_to_shape: out_shape[%d] = %lld must be 1 or equal x_shape[%d] = %lld", d,
                  (long long)out_shape[d], d, (long long)x_shape[d]);
    if (__builtin_mul_overflow(n_x, x_shape[d], &n_x) ||
        __builtin_mul_overflow(n_out, out_shape[d], &n_out))
      return fail(TSM_ERR_INVALID_ARGUMENT, "sum_to_shape: too many elements");
  }
  if (n_out == 0) return TSM_OK;
  if (!out) return fail(TSM_ERR_INVALID_ARGUMENT, "sum_to_shape: out is NULL");
  if (n_x == 0) {  // sums over empty dims
    std::fill(out, out + n_out, 0.0f);
    return TSM_OK;
  }
  if (!x) return fail(TSM_ERR_INVALID_ARGUMENT, "sum_to_shape: x is NULL");

  // Groups of neighbouring dims that are all kept or all reduced (size-1 dims of x dropped).
  int ng = 0;
  int64_t gsize[tsm::kMaxDims];
  bool gred[tsm::kMaxDims];
  for (int d = 0; d < ndim; ++d) {
    if (x_shape[d] == 1) continue;
    const bool red = out_shape[d] == 1;
    if (ng > 0 && gred[ng - 1] == red) {
      gsize[ng - 1] *= x_shape[d];
    } else {
      gsize[ng] = x_shape[d];
      gred[ng] = red;
      ++ng;
    }
  }
  int nred = 0;
  for (int g = 0; g < ng; ++g) nred += gred[g];
  if (nred == 0) {  // nothing to sum: a copy
    if (out != x) std::copy(x, x + n_x, out);
    return TSM_OK;
  }
  if (nred == 1) {  // [kept] reduced [kept]: one (outer, dim, inner) reduction
    int64_t outer = 1, dim = 1, inner = 1;
    bool seen = false;
    for (int g = 0; g < ng; ++g) {
      if (gred[g]) {
        dim = gsize[g];
        seen = true;
      } else if (!seen) {
        outer *= gsize[g];
      } else {
        inner *= gsize[g];
      }
    }
    tsm::reduce_sum(out, x, outer, dim, inner, 1.0);
    return TSM_OK;
  }
  // General case (several separated reduced groups): each output element sums its own slice.
  int64_t gstride[tsm::kMaxDims];  // element stride of each group in x
  int64_t s = 1;
  for (int g = ng - 1; g >= 0; --g) {
    gstride[g] = s;
    s *= gsize[g];
  }
  int nk = 0, nr = 0;
  int64_t ksize[tsm::kMaxDims], kstride[tsm::kMaxDims], rsize[tsm::kMaxDims], rstride[tsm::kMaxDims];
  for (int g = 0; g < ng; ++g) {
    if (gred[g]) { rsize[nr] = gsize[g]; rstride[nr] = gstride[g]; ++nr; }
    else { ksize[nk] = gsize[g]; kstride[nk] = gstride[g]; ++nk; }
  }
  const int64_t per_out = n_x / n_out;
  tsm::for_tasks(n_out, per_out, [&](int64_t o) {
    int64_t base = 0, rem = o;
    for (int k = nk - 1; k >= 0; --k) {
      base += (rem % ksize[k]) * kstride[k];
      rem /= ksize[k];
    }
    // Odometer over the reduced groups; the last one is walked as a strided row.
    int64_t idx[tsm::kMaxDims] = {0};
    double acc = 0.0;
    int64_t off = base;
    const int last = nr - 1;
    for (;;) {
      const float* row = x + off;
      for (int64_t i = 0; i < rsize[last]; ++i) acc += row[i * rstride[last]];
      int r = last - 1;
      for (; r >= 0; --r) {
        ++idx[r];
        off += rstride[r];
        if (idx[r] < rsize[r]) break;
        off -= idx[r] * rstride[r];
        idx[r] = 0;
      }
      if (r < 0) break;
    }
    out[o] = static_cast<float>(acc);
  });
  return TSM_OK;
}

TSM_API tsm_status tsm_sum_of_squares(double* result, const float* x, int64_t n) {
  if (!result) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "sum_of_squares: result is NULL");
  if (n < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "sum_of_squares: n must be >= 0, got %lld",
                     (long long)n);
  *result = 0.0;
  if (n == 0) return TSM_OK;
  if (!x) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "sum_of_squares: x is NULL");
  double partial[tsm::kParts] = {0};
  tsm::for_parts(n, [&](int64_t p, int64_t b, int64_t e) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = b;
    for (; i + 4 <= e; i += 4) {
      s0 += double(x[i]) * x[i];
      s1 += double(x[i + 1]) * x[i + 1];
      s2 += double(x[i + 2]) * x[i + 2];
      s3 += double(x[i + 3]) * x[i + 3];
    }
    for (; i < e; ++i) s0 += double(x[i]) * x[i];
    partial[p] = (s0 + s1) + (s2 + s3);
  });
  double total = 0.0;
  for (int p = 0; p < tsm::kParts; ++p) total += partial[p];
  *result = total;
  return TSM_OK;
}

TSM_API tsm_status tsm_all_finite(int* result, const float* x, int64_t n) {
  if (!result) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "all_finite: result is NULL");
  if (n < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "all_finite: n must be >= 0, got %lld", (long long)n);
  *result = 1;
  if (n == 0) return TSM_OK;
  if (!x) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "all_finite: x is NULL");
  int bad[tsm::kParts] = {0};
  tsm::for_parts(n, [&](int64_t p, int64_t b, int64_t e) {
    // x - x is 0 for finite x and NaN for Inf or NaN; the sum stays 0 only if all are finite.
    float acc = 0.0f;
    for (int64_t i = b; i < e; ++i) acc += x[i] - x[i];
    bad[p] = acc != 0.0f || std::isnan(acc);
  });
  for (int p = 0; p < tsm::kParts; ++p)
    if (bad[p]) *result = 0;
  return TSM_OK;
}

}  // extern "C"
