// LayerNorm over the last dimension, forward and backward.
//
//   x, y, dy, dx : (rows, cols), row-major, contiguous
//   mean, rstd   : (rows)           per-row statistics saved by the forward for the backward
//   w, b, dw, db : (cols) or NULL   elementwise affine parameters and their gradients
//
// Forward:   mean = sum(x) / cols,  var = sum((x - mean)^2) / cols  (biased, as PyTorch),
//            rstd = 1 / sqrt(var + eps),  xhat = (x - mean) * rstd,  y = xhat * w + b
// Backward:  g = dy * w,  dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
//            dw = sum_rows(dy * xhat),  db = sum_rows(dy)
// Rows run in parallel. dw/db reduce over rows in fixed blocks (their size depends on the shape
// only) and combine the blocks in order, so the result is the same for any thread count.
#include <algorithm>
#include <cmath>
#include <new>
#include <vector>

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

// sum(p[0..n)) in double, four independent accumulators.
inline double sum_d(const float* p, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i) s0 += p[i];
  return (s0 + s1) + (s2 + s3);
}

// sum((p - m)^2) in double.
inline double sum_sq_dev(const float* p, int64_t n, double m) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const double d0 = p[i] - m, d1 = p[i + 1] - m, d2 = p[i + 2] - m, d3 = p[i + 3] - m;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < n; ++i) {
    const double d = p[i] - m;
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

tsm_status check_sizes(const char* op, int64_t rows, int64_t cols) {
  if (rows < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: rows must be >= 0, got %lld", op, (long long)rows);
  if (cols < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: cols must be >= 0, got %lld", op, (long long)cols);
  return TSM_OK;
}

}  // namespace
}  // namespace tsm

extern "C" {

// y, x: (rows, cols)   mean, rstd: (rows)   w, b: (cols) or NULL
TSM_API tsm_status tsm_layer_norm_forward(float* y, float* mean, float* rstd, const float* x,
                                          const float* w, const float* b, int64_t rows,
                                          int64_t cols, float eps) {
  using namespace tsm;
  const char* op = "layer_norm_forward";
  if (tsm_status s = check_sizes(op, rows, cols)) return s;
  if (!(eps >= 0.0f)) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: eps must be >= 0", op);
  if (rows == 0) return TSM_OK;
  if (!mean || !rstd) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !mean ? "mean" : "rstd");
  if (cols > 0 && (!y || !x)) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !y ? "y" : "x");
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1));
  parallel_range(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x ? x + r * cols : nullptr;
      double m = 0.0, var = 0.0;
      if (cols > 0) {
        m = sum_d(xr, cols) / double(cols);
        var = sum_sq_dev(xr, cols, m) / double(cols);
      }
      const float mf = static_cast<float>(m);
      const float rs = static_cast<float>(1.0 / std::sqrt(var + double(eps)));
      mean[r] = mf;
      rstd[r] = rs;
      float* yr = y ? y + r * cols : nullptr;
      if (w && b) for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - mf) * rs * w[j] + b[j];
      else if (w) for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - mf) * rs * w[j];
      else if (b) for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - mf) * rs + b[j];
      else for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - mf) * rs;
    }
  });
  return TSM_OK;
}

// dx, dy, x: (rows, cols)   mean, rstd: (rows)   w: (cols) or NULL   dw, db: (cols) or NULL
TSM_API tsm_status tsm_layer_norm_backward(float* dx, float* dw, float* db, const float* dy,
                                           const float* x, const float* mean, const float* rstd,
                                           const float* w, int64_t rows, int64_t cols) {
  using namespace tsm;
  const char* op = "layer_norm_backward";
  if (tsm_status s = check_sizes(op, rows, cols)) return s;
  if (cols == 0) return TSM_OK;
  if (rows > 0 && (!dy || !x || !mean || !rstd))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: dy, x, mean and rstd must not be NULL", op);

  // dx, row by row.
  if (dx && rows > 0) {
    parallel_range(rows, std::max<int64_t>(1, 8192 / cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * cols;
        const float* dyr = dy + r * cols;
        float* dxr = dx + r * cols;
        const float m = mean[r], rs = rstd[r];
        double sg = 0.0, sgx = 0.0;  // sum(g), sum(g * xhat)
        for (int64_t j = 0; j < cols; ++j) {
          const float g = w ? dyr[j] * w[j] : dyr[j];
          const float xh = (xr[j] - m) * rs;
          sg += g;
          sgx += double(g) * xh;
        }
        const float a = static_cast<float>(sg / double(cols));
        const float c = static_cast<float>(sgx / double(cols));
        for (int64_t j = 0; j < cols; ++j) {
          const float g = w ? dyr[j] * w[j] : dyr[j];
          const float xh = (xr[j] - m) * rs;
          dxr[j] = rs * (g - a - xh * c);
        }
      }
    });
  }

  if (!dw && !db) return TSM_OK;
  if (rows == 0) {
    for (int64_t j = 0; j < cols; ++j) {
      if (dw) dw[j] = 0.0f;
      if (db) db[j] = 0.0f;
    }
    return TSM_OK;
  }
  // dw, db: tasks = (column chunk) x (row block). Row blocks are only used when there are too
  // few column chunks to keep the threads busy; their count depends on the shape only.
  constexpr int64_t kColChunk = 256;
  const int64_t ncc = ceil_div(cols, kColChunk);
  int64_t nrb = 1;
  if (ncc < 16) nrb = std::min<int64_t>(64, ceil_div(rows, 256));
  const int64_t rb = ceil_div(rows, nrb);
  nrb = ceil_div(rows, rb);
  std::vector<double> part;
  try {
    part.assign(static_cast<size_t>(nrb) * cols * 2, 0.0);  // [block][dw | db][cols]
  } catch (const std::bad_alloc&) {
    return fail(TSM_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld doubles", op,
                (long long)(nrb * cols * 2));
  }
  parallel_for(ncc * nrb, [&](int64_t task) {
    const int64_t cc = task % ncc, blk = task / ncc;
    const int64_t j0 = cc * kColChunk, j1 = std::min(cols, j0 + kColChunk);
    const int64_t r0 = blk * rb, r1 = std::min(rows, r0 + rb);
    double* pw = part.data() + (blk * 2) * cols;
    double* pb = pw + cols;
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      const float* dyr = dy + r * cols;
      const float m = mean[r], rs = rstd[r];
      for (int64_t j = j0; j < j1; ++j) {
        const float xh = (xr[j] - m) * rs;
        pw[j] += double(dyr[j]) * xh;
        pb[j] += dyr[j];
      }
    }
  });
  for (int64_t j = 0; j < cols; ++j) {
    double sw = 0.0, sb = 0.0;
    for (int64_t blk = 0; blk < nrb; ++blk) {
      sw += part[(blk * 2) * cols + j];
      sb += part[(blk * 2 + 1) * cols + j];
    }
    if (dw) dw[j] = static_cast<float>(sw);
    if (db) db[j] = static_cast<float>(sb);
  }
  return TSM_OK;
}

}  // extern "C"
