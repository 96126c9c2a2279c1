// Unary elementwise ops, float32, contiguous:  y[n] = f(x[n])  and  dx[n] = dy[n] * f'(x[n]).
//
// One switch picks a template instantiation per op, so each inner loop is a plain loop over one
// formula that GCC -O3 can vectorise where the math allows. Large arrays are split into chunks of
// kGrain elements run on the thread pool; the result never depends on the chunking.
//
// sigmoid, tanh, SiLU and both GELUs are built on exp_approx (simd/exp_approx.h) instead of the C
// library's exp/tanh/erf, whose per-element calls kept those loops scalar, and their loops have a
// build per ISA. exp, log, sin and cos still call the C library.
#include <algorithm>
#include <cmath>

// exp_approx's clamps become selects (and its loops vectorize) only without trapping math. The
// pragma also keeps the inline functions of <cmath>, compiled before it with other options, from
// being inlined here (std::fabs and std::sqrt became a call per element): this file uses the
// __builtin_ forms instead.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "../runtime/runtime.h"
#include "simd/exp_approx.h"
#include "simd/isa_target.h"

namespace tsm {
namespace {

constexpr int64_t kGrain = 32768;

// Calls f(begin, end) over [0, n) in chunks of `grain`, on the pool when there is more than one.
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

constexpr float kSqrt1_2 = 0.70710678118654752440f;      // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;   // 1 / sqrt(2 pi)
constexpr float kSqrt2OverPi = 0.79788456080286535588f;  // sqrt(2 / pi)
constexpr float kGeluC = 0.044715f;

// Stable on both tails, never exp of a positive number: e = exp(-|x|), 1 / (1 + e) for x >= 0 and
// e / (1 + e) below (subnormal results included). Branch-free.
inline __attribute__((always_inline)) float sigmoid(float x) {
  const float e = exp_approx(-__builtin_fabsf(x));
  const float s = 1.0f / (1.0f + e);
  return x >= 0.0f ? s : e * s;
}

// tanh: the Taylor series through x^11 for |x| < 0.25 (truncation below 3e-10 relative, so small
// arguments keep their relative accuracy), (1 - e) / (1 + e) with e = exp(-2|x|) above, the sign
// restored. Branch-free; NaN gives NaN.
inline __attribute__((always_inline)) float tanh_fast(float x) {
  const float a = __builtin_fabsf(x);
  const float x2 = x * x;
  float p = -1382.0f / 155925.0f;
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  const float small = x * (1.0f + x2 * p);  // (x times it, so tanh(-0) = -0)
  const float e = exp_approx(-2.0f * a);
  const float t = (1.0f - e) / (1.0f + e);
  const float big = x < 0.0f ? -t : t;
  return a < 0.25f ? small : big;
}

// Phi(x) = 0.5 (1 + erf(x / sqrt 2)), branch-free, with z = x / sqrt 2 and t = |z|: below t = 0.84375
// erf(z) = z P(z^2); above, erfc(t) = exp(-t^2) G(1 / (1 + t/2)) gives 1 - erfc/2 or erfc/2 without
// forming 1 + erf(z) for negative z (so the GELU's negative tail keeps its relative accuracy, where
// 0.5 x (1 + erf) loses it). P and G: tools/fit-erf.py (relative error 1.7e-7 and 2.7e-7 in float32).
inline __attribute__((always_inline)) float normal_cdf(float x) {
  const float z = x * kSqrt1_2;
  const float t = __builtin_fabsf(z);
  const float s = z * z;
  float p = -6.343041314e-04f;
  p = p * s + 5.055646412e-03f;
  p = p * s - 2.680512145e-02f;
  p = p * s + 1.128277630e-01f;
  p = p * s - 3.761257529e-01f;
  p = p * s + 1.128379107e+00f;
  const float near = 0.5f + 0.5f * (z * p);
  const float k = 1.0f / (1.0f + 0.5f * t);
  float g = 6.780481339e-02f;
  g = g * k - 1.429498345e-01f;
  g = g * k - 3.263430670e-02f;
  g = g * k + 1.492980570e-01f;
  g = g * k + 1.377098262e-01f;
  g = g * k + 2.588078678e-01f;
  g = g * k + 2.799739540e-01f;
  g = g * k + 2.822974622e-01f;
  g = g * k - 8.114619050e-06f;
  const float erfc_t = exp_approx(-t * t) * g;
  const float far = z > 0.0f ? 1.0f - 0.5f * erfc_t : 0.5f * erfc_t;
  return t < 0.84375f ? near : far;
}

template <int OP>
inline float fwd(float x) {
  switch (OP) {
    case TSM_UNARY_RELU: return x > 0.0f ? x : 0.0f;
    case TSM_UNARY_SIGMOID: return sigmoid(x);
    case TSM_UNARY_TANH: return tanh_fast(x);
    case TSM_UNARY_GELU: return x * normal_cdf(x);
    case TSM_UNARY_GELU_TANH:
      // 0.5 x (1 + tanh(u)) = x sigmoid(2u): no cancellation where tanh(u) is near -1.
      return x * sigmoid(2.0f * kSqrt2OverPi * (x + kGeluC * x * x * x));
    case TSM_UNARY_EXP: return __builtin_expf(x);
    case TSM_UNARY_LOG: return __builtin_logf(x);
    case TSM_UNARY_SQRT: return __builtin_sqrtf(x);
    case TSM_UNARY_ABS: return __builtin_fabsf(x);
    case TSM_UNARY_NEG: return -x;
    case TSM_UNARY_SILU: return x * sigmoid(x);
    case TSM_UNARY_SQUARE: return x * x;
    case TSM_UNARY_RECIPROCAL: return 1.0f / x;
    case TSM_UNARY_SIN: return __builtin_sinf(x);
    case TSM_UNARY_COS: return __builtin_cosf(x);
    case TSM_UNARY_RSQRT: return 1.0f / __builtin_sqrtf(x);
  }
  return 0.0f;
}

// Which forward value the backward formula uses: true = y (output), false = x (input).
constexpr bool reads_y(int op) {
  return op == TSM_UNARY_SIGMOID || op == TSM_UNARY_TANH || op == TSM_UNARY_EXP ||
         op == TSM_UNARY_SQRT || op == TSM_UNARY_RECIPROCAL || op == TSM_UNARY_RSQRT;
}

// f'(.) expressed in v, which is y when reads_y(OP) and x otherwise.
template <int OP>
inline float deriv(float v) {
  switch (OP) {
    case TSM_UNARY_RELU: return v > 0.0f ? 1.0f : 0.0f;
    case TSM_UNARY_SIGMOID: return v * (1.0f - v);
    case TSM_UNARY_TANH: return 1.0f - v * v;
    case TSM_UNARY_GELU:  // d/dx x Phi(x) = Phi(x) + x phi(x)
      return normal_cdf(v) + v * kInvSqrt2Pi * exp_approx(-0.5f * v * v);
    case TSM_UNARY_GELU_TANH: {
      // With s = sigmoid(2 inner): 0.5 (1 + tanh) = s and 1 - tanh^2 = 4 s (1 - s).
      const float inner = kSqrt2OverPi * (v + kGeluC * v * v * v);
      const float s = sigmoid(2.0f * inner);
      const float dinner = kSqrt2OverPi * (1.0f + 3.0f * kGeluC * v * v);
      return s + 2.0f * v * s * (1.0f - s) * dinner;
    }
    case TSM_UNARY_EXP: return v;
    case TSM_UNARY_LOG: return 1.0f / v;
    case TSM_UNARY_SQRT: return 0.5f / v;
    case TSM_UNARY_ABS: return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f);
    case TSM_UNARY_NEG: return -1.0f;
    case TSM_UNARY_SILU: {
      const float s = sigmoid(v);
      return s * (1.0f + v * (1.0f - s));
    }
    case TSM_UNARY_SQUARE: return 2.0f * v;
    case TSM_UNARY_RECIPROCAL: return -v * v;
    case TSM_UNARY_SIN: return __builtin_cosf(v);
    case TSM_UNARY_COS: return -__builtin_sinf(v);
    case TSM_UNARY_RSQRT: return -0.5f * v * v * v;
  }
  return 0.0f;
}

// The ops built on exp_approx, whose loops get a build per ISA.
constexpr bool per_isa(int op) {
  return op == TSM_UNARY_SIGMOID || op == TSM_UNARY_TANH || op == TSM_UNARY_SILU || op == TSM_UNARY_GELU ||
         op == TSM_UNARY_GELU_TANH;
}

// One chunk [b, e) of the forward and of the backward (v: x or y as reads_y(OP) says).
template <int OP>
inline __attribute__((always_inline)) void fwd_chunk(float* y, const float* x, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) y[i] = fwd<OP>(x[i]);
}
template <int OP>
inline __attribute__((always_inline)) void bwd_chunk(float* dx, const float* v, const float* dy, int64_t b,
                                                     int64_t e) {
  for (int64_t i = b; i < e; ++i) dx[i] = dy[i] * deriv<OP>(v[i]);
}

#define TSM_UNARY_ISA(name, attr)                                                                     \
  template <int OP>                                                                                   \
  attr void fwd_##name(float* y, const float* x, int64_t b, int64_t e) {                              \
    fwd_chunk<OP>(y, x, b, e);                                                                        \
  }                                                                                                   \
  template <int OP>                                                                                   \
  attr void bwd_##name(float* dx, const float* v, const float* dy, int64_t b, int64_t e) {            \
    bwd_chunk<OP>(dx, v, dy, b, e);                                                                   \
  }
TSM_UNARY_ISA(generic, )
#if TSM_ISA_X86
TSM_UNARY_ISA(avx2, TSM_TARGET_AVX2)
TSM_UNARY_ISA(avx512, TSM_TARGET_AVX512)
#endif
#undef TSM_UNARY_ISA

// y (n), x (n)
template <int OP>
void forward(float* y, const float* x, int64_t n) {
  if (per_isa(OP)) {
    const auto f = TSM_PICK_ISA_T(active_simd(), fwd, OP);
    for_chunks(n, kGrain, [&](int64_t b, int64_t e) { f(y, x, b, e); });
    return;
  }
  for_chunks(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = fwd<OP>(x[i]);
  });
}

// dx (n), v (n): x or y as reads_y(OP) says, dy (n)
template <int OP>
void backward(float* dx, const float* v, const float* dy, int64_t n) {
  if (per_isa(OP)) {
    const auto f = TSM_PICK_ISA_T(active_simd(), bwd, OP);
    for_chunks(n, kGrain, [&](int64_t b, int64_t e) { f(dx, v, dy, b, e); });
    return;
  }
  for_chunks(n, kGrain, [&](int64_t b, int64_t e) {
    if (OP == TSM_UNARY_RELU) {
      // A select, not dy * (x > 0): GCC turns the product into a branch it cannot vectorise, and a
      // mispredicted branch per element costs 25x here. (Like PyTorch's threshold_backward, a NaN
      // or infinite dy at x <= 0 gives 0.)
      float* __restrict d = dx;
      const float* __restrict x = v;
      const float* __restrict g = dy;
      for (int64_t i = b; i < e; ++i) {
        const float gi = g[i];
        d[i] = x[i] > 0.0f ? gi : 0.0f;
      }
    } else {
      float* __restrict d = dx;
      const float* __restrict x = v;
      const float* __restrict g = dy;
      for (int64_t i = b; i < e; ++i) d[i] = g[i] * deriv<OP>(x[i]);
    }
  });
}

#define TSM_UNARY_CASES(X)                                                                     \
  X(TSM_UNARY_RELU) X(TSM_UNARY_SIGMOID) X(TSM_UNARY_TANH) X(TSM_UNARY_GELU)                   \
  X(TSM_UNARY_GELU_TANH) X(TSM_UNARY_EXP) X(TSM_UNARY_LOG) X(TSM_UNARY_SQRT) X(TSM_UNARY_ABS)  \
  X(TSM_UNARY_NEG) X(TSM_UNARY_SILU) X(TSM_UNARY_SQUARE) X(TSM_UNARY_RECIPROCAL)               \
  X(TSM_UNARY_SIN) X(TSM_UNARY_COS) X(TSM_UNARY_RSQRT)

static_assert(TSM_UNARY_OP_COUNT == 16, "update TSM_UNARY_CASES and the TypeScript op table");

}  // namespace
}  // namespace tsm

extern "C" {

TSM_API int tsm_unary_backward_reads_y(int op) {
  if (op < 0 || op >= TSM_UNARY_OP_COUNT) return -1;
  return tsm::reads_y(op) ? 1 : 0;
}

TSM_API tsm_status tsm_unary_forward(int op, float* y, const float* x, int64_t n) {
  if (op < 0 || op >= TSM_UNARY_OP_COUNT)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "unary_forward: op must be in [0, %d), got %d",
                     TSM_UNARY_OP_COUNT, op);
  if (n < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "unary_forward: n must be >= 0, got %lld",
                     (long long)n);
  if (n == 0) return TSM_OK;
  if (!y || !x) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "unary_forward: %s is NULL", !y ? "y" : "x");
  switch (op) {
#define X(OP) case OP: tsm::forward<OP>(y, x, n); break;
    TSM_UNARY_CASES(X)
#undef X
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_unary_backward(int op, float* dx, const float* x, const float* y,
                                      const float* dy, int64_t n) {
  if (op < 0 || op >= TSM_UNARY_OP_COUNT)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "unary_backward: op must be in [0, %d), got %d",
                     TSM_UNARY_OP_COUNT, op);
  if (n < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "unary_backward: n must be >= 0, got %lld",
                     (long long)n);
  if (n == 0) return TSM_OK;
  const bool use_y = tsm::reads_y(op);
  const float* v = use_y ? y : x;
  if (!dx || !dy || !v)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "unary_backward: %s is NULL",
                     !dx ? "dx" : !dy ? "dy" : use_y ? "y" : "x");
  switch (op) {
#define X(OP) case OP: tsm::backward<OP>(dx, v, dy, n); break;
    TSM_UNARY_CASES(X)
#undef X
  }
  return TSM_OK;
}

}  // extern "C"
