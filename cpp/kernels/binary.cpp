// Broadcasting binary ops, float32:  out[idx] = a[idx . a_strides] op b[idx . b_strides]
//
//   out        (d0, ..., d{ndim-1})  contiguous
//   a, b       read with element strides (0 on broadcast dims), any ndim in [0, 8]
//
// The shape is first simplified: size-1 dims are dropped and neighbouring dims that are contiguous
// with each other in both operands are merged. The common cases then reduce to one long inner loop:
//   same shape, contiguous      -> 1 dim,  strides (1, 1)
//   b scalar                    -> 1 dim,  strides (1, 0)
//   bias b (C) on a (N, C)      -> 2 dims, inner strides (1, 1), b's outer stride 0
//   b (N, 1) on a (N, C)        -> 2 dims, inner strides (1, 0)
// and the inner loop has a specialisation for each of (1,1), (1,0), (0,1); anything else walks the
// general strided loop. Work is split into chunks of kGrain output elements on the thread pool.
// There is no backward kernel here: the gradients are other binary ops plus tsm_sum_to_shape.
#include <algorithm>
#include <cmath>

#include "../runtime/runtime.h"

namespace tsm {
namespace {

constexpr int64_t kGrain = 32768;
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

template <int OP>
inline float apply(float a, float b) {
  switch (OP) {
    case TSM_BINARY_ADD: return a + b;
    case TSM_BINARY_SUB: return a - b;
    case TSM_BINARY_MUL: return a * b;
    case TSM_BINARY_DIV: return a / b;
    case TSM_BINARY_POW: return std::pow(a, b);
    case TSM_BINARY_MAXIMUM: return (std::isnan(a) || std::isnan(b)) ? a + b : (a > b ? a : b);
    case TSM_BINARY_MINIMUM: return (std::isnan(a) || std::isnan(b)) ? a + b : (a < b ? a : b);
    case TSM_BINARY_EQ: return a == b ? 1.0f : 0.0f;
    case TSM_BINARY_NE: return a != b ? 1.0f : 0.0f;
    case TSM_BINARY_LT: return a < b ? 1.0f : 0.0f;
    case TSM_BINARY_LE: return a <= b ? 1.0f : 0.0f;
    case TSM_BINARY_GT: return a > b ? 1.0f : 0.0f;
    case TSM_BINARY_GE: return a >= b ? 1.0f : 0.0f;
  }
  return 0.0f;
}

// o (cnt) = a (cnt, stride sa) op b (cnt, stride sb)
template <int OP>
void inner(float* o, const float* a, int64_t sa, const float* b, int64_t sb, int64_t cnt) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < cnt; ++i) o[i] = apply<OP>(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = *b;
    for (int64_t i = 0; i < cnt; ++i) o[i] = apply<OP>(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = *a;
    for (int64_t i = 0; i < cnt; ++i) o[i] = apply<OP>(av, b[i]);
  } else {
    for (int64_t i = 0; i < cnt; ++i) o[i] = apply<OP>(a[i * sa], b[i * sb]);
  }
}

// The simplified iteration space: nd >= 1 dims, innermost last, all sizes >= 2 except a lone dim.
struct Plan {
  int nd = 0;
  int64_t shape[kMaxDims];
  int64_t sa[kMaxDims];
  int64_t sb[kMaxDims];
};

Plan make_plan(int ndim, const int64_t* shape, const int64_t* sa, const int64_t* sb) {
  Plan p;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    if (p.nd > 0) {
      const int k = p.nd - 1;
      // Merge with the previous kept dim when stepping the previous dim once equals stepping
      // this one shape[d] times, in both operands.
      if (p.sa[k] == sa[d] * shape[d] && p.sb[k] == sb[d] * shape[d]) {
        p.shape[k] *= shape[d];
        p.sa[k] = sa[d];
        p.sb[k] = sb[d];
        continue;
      }
    }
    p.shape[p.nd] = shape[d];
    p.sa[p.nd] = sa[d];
    p.sb[p.nd] = sb[d];
    ++p.nd;
  }
  if (p.nd == 0) {  // a scalar (0-d, or every dim of size 1)
    p.nd = 1;
    p.shape[0] = 1;
    p.sa[0] = p.sb[0] = 0;
  }
  return p;
}

// Output elements [begin, end) of the plan.
template <int OP>
void run_range(const Plan& p, float* out, const float* a, const float* b, int64_t begin,
               int64_t end) {
  const int last = p.nd - 1;
  int64_t idx[kMaxDims];
  int64_t oa = 0, ob = 0, rem = begin;
  for (int d = last; d >= 0; --d) {
    idx[d] = rem % p.shape[d];
    rem /= p.shape[d];
    oa += idx[d] * p.sa[d];
    ob += idx[d] * p.sb[d];
  }
  int64_t pos = begin;
  while (pos < end) {
    const int64_t cnt = std::min(end - pos, p.shape[last] - idx[last]);
    inner<OP>(out + pos, a + oa, p.sa[last], b + ob, p.sb[last], cnt);
    pos += cnt;
    idx[last] += cnt;
    oa += cnt * p.sa[last];
    ob += cnt * p.sb[last];
    for (int d = last; d > 0 && idx[d] == p.shape[d]; --d) {
      oa -= idx[d] * p.sa[d];
      ob -= idx[d] * p.sb[d];
      idx[d] = 0;
      ++idx[d - 1];
      oa += p.sa[d - 1];
      ob += p.sb[d - 1];
    }
  }
}

template <int OP>
void run(const Plan& p, float* out, const float* a, const float* b, int64_t total) {
  for_chunks(total, kGrain, [&](int64_t s, int64_t e) { run_range<OP>(p, out, a, b, s, e); });
}

#define TSM_BINARY_CASES(X)                                                                   \
  X(TSM_BINARY_ADD) X(TSM_BINARY_SUB) X(TSM_BINARY_MUL) X(TSM_BINARY_DIV) X(TSM_BINARY_POW)   \
  X(TSM_BINARY_MAXIMUM) X(TSM_BINARY_MINIMUM) X(TSM_BINARY_EQ) X(TSM_BINARY_NE)               \
  X(TSM_BINARY_LT) X(TSM_BINARY_LE) X(TSM_BINARY_GT) X(TSM_BINARY_GE)

static_assert(TSM_BINARY_OP_COUNT == 13, "update TSM_BINARY_CASES and the TypeScript op table");

void dispatch(int op, const Plan& p, float* out, const float* a, const float* b, int64_t total) {
  switch (op) {
#define X(OP) case OP: run<OP>(p, out, a, b, total); break;
    TSM_BINARY_CASES(X)
#undef X
  }
}

}  // namespace
}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_binary_forward(int op, float* out, const float* a, const float* b, int ndim,
                                      const int64_t* out_shape, const int64_t* a_strides,
                                      const int64_t* b_strides) {
  using tsm::fail;
  if (op < 0 || op >= TSM_BINARY_OP_COUNT)
    return fail(TSM_ERR_INVALID_ARGUMENT, "binary_forward: op must be in [0, %d), got %d",
                TSM_BINARY_OP_COUNT, op);
  if (ndim < 0 || ndim > tsm::kMaxDims)
    return fail(TSM_ERR_INVALID_ARGUMENT, "binary_forward: ndim must be in [0, %d], got %d",
                tsm::kMaxDims, ndim);
  if (ndim > 0 && (!out_shape || !a_strides || !b_strides))
    return fail(TSM_ERR_INVALID_ARGUMENT, "binary_forward: shape or strides is NULL");
  int64_t total = 1;
  for (int d = 0; d < ndim; ++d) {
    if (out_shape[d] < 0)
      return fail(TSM_ERR_INVALID_ARGUMENT, "binary_forward: out_shape[%d] must be >= 0, got %lld",
                  d, (long long)out_shape[d]);
    if (a_strides[d] < 0 || b_strides[d] < 0)
      return fail(TSM_ERR_INVALID_ARGUMENT, "binary_forward: strides must be >= 0 (dim %d)", d);
    if (__builtin_mul_overflow(total, out_shape[d], &total))
      return fail(TSM_ERR_INVALID_ARGUMENT, "binary_forward: out_shape has too many elements");
  }
  if (total == 0) return TSM_OK;
  if (!out || !a || !b)
    return fail(TSM_ERR_INVALID_ARGUMENT, "binary_forward: %s is NULL", !out ? "out" : !a ? "a" : "b");
  const tsm::Plan p = tsm::make_plan(ndim, out_shape, a_strides, b_strides);
  tsm::dispatch(op, p, out, a, b, total);
  return TSM_OK;
}

TSM_API tsm_status tsm_scalar_forward(int op, float* out, const float* x, float s, int reverse,
                                      int64_t n) {
  using tsm::fail;
  if (op < 0 || op >= TSM_BINARY_OP_COUNT)
    return fail(TSM_ERR_INVALID_ARGUMENT, "scalar_forward: op must be in [0, %d), got %d",
                TSM_BINARY_OP_COUNT, op);
  if (n < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "scalar_forward: n must be >= 0, got %lld", (long long)n);
  if (n == 0) return TSM_OK;
  if (!out || !x) return fail(TSM_ERR_INVALID_ARGUMENT, "scalar_forward: %s is NULL", !out ? "out" : "x");
  tsm::Plan p;
  p.nd = 1;
  p.shape[0] = n;
  p.sa[0] = reverse ? 0 : 1;
  p.sb[0] = reverse ? 1 : 0;
  const float* a = reverse ? &s : x;
  const float* b = reverse ? x : &s;
  tsm::dispatch(op, p, out, a, b, n);
  return TSM_OK;
}

}  // extern "C"
