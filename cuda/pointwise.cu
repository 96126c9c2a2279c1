// Elementwise kernels of CUDA tensors, float32 (the CPU twins: cpp/kernels/unary.cpp, binary.cpp):
//   tsm_cuda_unary_forward    y (n) = f(x (n))
//   tsm_cuda_unary_backward   dx (n) = dy (n) * f'(x or y (n))
//   tsm_cuda_binary_same      out (n) = a (n) op b (n)
//   tsm_cuda_scalar_forward   out (n) = x (n) op s   (or s op x)
//   tsm_cuda_binary_forward   out (shape) = a op b, a and b read through broadcast strides
//   tsm_cuda_fill32           dst (n) = a 32-bit pattern
//   tsm_cuda_cast_f32_i32 / tsm_cuda_cast_i32_f32
//
// The formulas are the CPU ones, written again for the device (same op codes, same NaN rules).
// Contiguous kernels are grid-stride loops over float4 when every pointer is 16-byte aligned (the
// caching allocator gives 256-byte aligned blocks), then a scalar tail. The broadcast kernel first
// collapses dims (size-1 dims dropped, dims contiguous in both operands merged) and indexes in 32
// bits when every offset fits.
#include <climits>

#include "tensor_common.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr float kSqrt1_2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;
constexpr float kSqrt2OverPi = 0.79788456080286535588f;
constexpr float kGeluC = 0.044715f;

__device__ __forceinline__ float sigmoid_f(float x) {
  if (x >= 0.f) return 1.f / (1.f + expf(-x));
  const float e = expf(x);
  return e / (1.f + e);
}

template <int OP>
__device__ __forceinline__ float ufwd(float x) {
  switch (OP) {
    case TSM_UNARY_RELU: return x > 0.f ? x : 0.f;
    case TSM_UNARY_SIGMOID: return sigmoid_f(x);
    case TSM_UNARY_TANH: return tanhf(x);
    case TSM_UNARY_GELU: return 0.5f * x * (1.f + erff(x * kSqrt1_2));
    case TSM_UNARY_GELU_TANH: return 0.5f * x * (1.f + tanhf(kSqrt2OverPi * (x + kGeluC * x * x * x)));
    case TSM_UNARY_EXP: return expf(x);
    case TSM_UNARY_LOG: return logf(x);
    case TSM_UNARY_SQRT: return sqrtf(x);
    case TSM_UNARY_ABS: return fabsf(x);
    case TSM_UNARY_NEG: return -x;
    case TSM_UNARY_SILU: return x * sigmoid_f(x);
    case TSM_UNARY_SQUARE: return x * x;
    case TSM_UNARY_RECIPROCAL: return 1.f / x;
    case TSM_UNARY_SIN: return sinf(x);
    case TSM_UNARY_COS: return cosf(x);
    case TSM_UNARY_RSQRT: return 1.f / sqrtf(x);
  }
  return 0.f;
}

// Which forward value the backward reads: y for these, x for the others (as tsm_unary_backward).
__host__ __device__ constexpr bool reads_y(int op) {
  return op == TSM_UNARY_SIGMOID || op == TSM_UNARY_TANH || op == TSM_UNARY_EXP || op == TSM_UNARY_SQRT ||
         op == TSM_UNARY_RECIPROCAL || op == TSM_UNARY_RSQRT;
}

// f' in terms of v (y when reads_y(OP), else x).
template <int OP>
__device__ __forceinline__ float uderiv(float v) {
  switch (OP) {
    case TSM_UNARY_RELU: return v > 0.f ? 1.f : 0.f;
    case TSM_UNARY_SIGMOID: return v * (1.f - v);
    case TSM_UNARY_TANH: return 1.f - v * v;
    case TSM_UNARY_GELU: {
      const float cdf = 0.5f * (1.f + erff(v * kSqrt1_2));
      return cdf + v * kInvSqrt2Pi * expf(-0.5f * v * v);
    }
    case TSM_UNARY_GELU_TANH: {
      const float inner = kSqrt2OverPi * (v + kGeluC * v * v * v);
      const float t = tanhf(inner);
      const float dinner = kSqrt2OverPi * (1.f + 3.f * kGeluC * v * v);
      return 0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * dinner;
    }
    case TSM_UNARY_EXP: return v;
    case TSM_UNARY_LOG: return 1.f / v;
    case TSM_UNARY_SQRT: return 0.5f / v;
    case TSM_UNARY_ABS: return v > 0.f ? 1.f : (v < 0.f ? -1.f : 0.f);
    case TSM_UNARY_NEG: return -1.f;
    case TSM_UNARY_SILU: {
      const float s = sigmoid_f(v);
      return s * (1.f + v * (1.f - s));
    }
    case TSM_UNARY_SQUARE: return 2.f * v;
    case TSM_UNARY_RECIPROCAL: return -v * v;
    case TSM_UNARY_SIN: return cosf(v);
    case TSM_UNARY_COS: return -sinf(v);
    case TSM_UNARY_RSQRT: return -0.5f * v * v * v;
  }
  return 0.f;
}

template <int OP>
__device__ __forceinline__ float bop(float a, float b) {
  switch (OP) {
    case TSM_BINARY_ADD: return a + b;
    case TSM_BINARY_SUB: return a - b;
    case TSM_BINARY_MUL: return a * b;
    case TSM_BINARY_DIV: return a / b;
    case TSM_BINARY_POW: return powf(a, b);
    case TSM_BINARY_MAXIMUM: return (isnan(a) || isnan(b)) ? a + b : (a > b ? a : b);
    case TSM_BINARY_MINIMUM: return (isnan(a) || isnan(b)) ? a + b : (a < b ? a : b);
    case TSM_BINARY_EQ: return a == b ? 1.f : 0.f;
    case TSM_BINARY_NE: return a != b ? 1.f : 0.f;
    case TSM_BINARY_LT: return a < b ? 1.f : 0.f;
    case TSM_BINARY_LE: return a <= b ? 1.f : 0.f;
    case TSM_BINARY_GT: return a > b ? 1.f : 0.f;
    case TSM_BINARY_GE: return a >= b ? 1.f : 0.f;
  }
  return 0.f;
}

// ---- functors ----
template <int OP>
struct UnaryFwd {
  __device__ float operator()(float x) const { return ufwd<OP>(x); }
};
template <int OP>
struct UnaryBwd {
  // A select for relu (a NaN or Inf dy at x <= 0 gives 0, as the CPU kernel and PyTorch).
  __device__ float operator()(float v, float g) const {
    return OP == TSM_UNARY_RELU ? (v > 0.f ? g : 0.f) : g * uderiv<OP>(v);
  }
};
template <int OP>
struct BinaryFn {
  __device__ float operator()(float a, float b) const { return bop<OP>(a, b); }
};
template <int OP>
struct ScalarFn {
  float s;
  bool reverse;
  __device__ float operator()(float x) const { return reverse ? bop<OP>(s, x) : bop<OP>(x, s); }
};

// y (n) = f(x (n)); y may alias x. vec: both 16-byte aligned, then float4 over n/4 and a scalar tail.
template <class F>
__global__ void map1_kernel(float* y, const float* x, int64_t n, bool vec, F f) {
  const int64_t stride = grid_threads();
  const int64_t n4 = vec ? n / 4 : 0;
  for (int64_t i = global_thread(); i < n4; i += stride) {
    float4 v = reinterpret_cast<const float4*>(x)[i];
    v.x = f(v.x);
    v.y = f(v.y);
    v.z = f(v.z);
    v.w = f(v.w);
    reinterpret_cast<float4*>(y)[i] = v;
  }
  for (int64_t i = n4 * 4 + global_thread(); i < n; i += stride) y[i] = f(x[i]);
}

// out (n) = f(a (n), b (n)); out may alias a or b.
template <class F>
__global__ void map2_kernel(float* out, const float* a, const float* b, int64_t n, bool vec, F f) {
  const int64_t stride = grid_threads();
  const int64_t n4 = vec ? n / 4 : 0;
  for (int64_t i = global_thread(); i < n4; i += stride) {
    const float4 u = reinterpret_cast<const float4*>(a)[i];
    const float4 v = reinterpret_cast<const float4*>(b)[i];
    float4 r;
    r.x = f(u.x, v.x);
    r.y = f(u.y, v.y);
    r.z = f(u.z, v.z);
    r.w = f(u.w, v.w);
    reinterpret_cast<float4*>(out)[i] = r;
  }
  for (int64_t i = n4 * 4 + global_thread(); i < n; i += stride) out[i] = f(a[i], b[i]);
}

template <class F>
tsm_status launch_map1(const char* op, float* y, const float* x, int64_t n, F f) {
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  const bool vec = aligned16(y) && aligned16(x);
  map1_kernel<<<grid_for(vec ? ceil_div(n, 4) : n), kThreads, 0, st>>>(y, x, n, vec, f);
  return check_launch(op);
}

template <class F>
tsm_status launch_map2(const char* op, float* out, const float* a, const float* b, int64_t n, F f) {
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  const bool vec = aligned16(out) && aligned16(a) && aligned16(b);
  map2_kernel<<<grid_for(vec ? ceil_div(n, 4) : n), kThreads, 0, st>>>(out, a, b, n, vec, f);
  return check_launch(op);
}

// ---- broadcasting ----
struct Bcast {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t sa[kMaxDims];
  int64_t sb[kMaxDims];
};

// out (n, contiguous over p.shape) = a[off_a(i)] op b[off_b(i)]; I is the index type (int32_t when
// every offset and n fit in 31 bits).
template <int OP, typename I>
__global__ void binary_bcast_kernel(float* out, const float* a, const float* b, int64_t n, Bcast p) {
  const int64_t stride = grid_threads();
  for (int64_t i = global_thread(); i < n; i += stride) {
    I r = I(i), oa = 0, ob = 0;
    for (int d = p.ndim - 1; d >= 0; --d) {
      const I s = I(p.shape[d]);
      const I q = r / s;
      const I idx = r - q * s;
      oa += idx * I(p.sa[d]);
      ob += idx * I(p.sb[d]);
      r = q;
    }
    out[i] = bop<OP>(a[oa], b[ob]);
  }
}

template <int OP>
tsm_status launch_bcast(const char* op, float* out, const float* a, const float* b, int64_t n, const Bcast& p) {
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  const bool small = n <= INT_MAX && max_offset(p.ndim, p.shape, p.sa) <= INT_MAX &&
                     max_offset(p.ndim, p.shape, p.sb) <= INT_MAX;
  if (small)
    binary_bcast_kernel<OP, int32_t><<<grid_for(n), kThreads, 0, st>>>(out, a, b, n, p);
  else
    binary_bcast_kernel<OP, int64_t><<<grid_for(n), kThreads, 0, st>>>(out, a, b, n, p);
  return check_launch(op);
}

__global__ void fill32_kernel(uint32_t* dst, uint32_t bits, int64_t n, bool vec) {
  const int64_t stride = grid_threads();
  const int64_t n4 = vec ? n / 4 : 0;
  const uint4 v = make_uint4(bits, bits, bits, bits);
  for (int64_t i = global_thread(); i < n4; i += stride) reinterpret_cast<uint4*>(dst)[i] = v;
  for (int64_t i = n4 * 4 + global_thread(); i < n; i += stride) dst[i] = bits;
}

// JavaScript's ToInt32 of Math.trunc(v): truncation, then modulo 2^32; NaN and +-Inf give 0.
__global__ void cast_f32_i32_kernel(int32_t* dst, const float* src, int64_t n) {
  const int64_t stride = grid_threads();
  for (int64_t i = global_thread(); i < n; i += stride) {
    const float v = src[i];
    int32_t r = 0;
    if (isfinite(v)) {
      const double t = trunc(double(v));
      if (t >= -2147483648.0 && t <= 2147483647.0) {
        r = int32_t(t);
      } else {
        double m = fmod(t, 4294967296.0);  // exact for doubles; sign follows t
        if (m < 0) m += 4294967296.0;
        r = int32_t(uint32_t(m));
      }
    }
    dst[i] = r;
  }
}

__global__ void cast_i32_f32_kernel(float* dst, const int32_t* src, int64_t n) {
  const int64_t stride = grid_threads();
  for (int64_t i = global_thread(); i < n; i += stride) dst[i] = float(src[i]);
}

#define TSM_CUDA_UNARY_CASES(X)                                                                \
  X(TSM_UNARY_RELU) X(TSM_UNARY_SIGMOID) X(TSM_UNARY_TANH) X(TSM_UNARY_GELU)                   \
  X(TSM_UNARY_GELU_TANH) X(TSM_UNARY_EXP) X(TSM_UNARY_LOG) X(TSM_UNARY_SQRT) X(TSM_UNARY_ABS)  \
  X(TSM_UNARY_NEG) X(TSM_UNARY_SILU) X(TSM_UNARY_SQUARE) X(TSM_UNARY_RECIPROCAL)               \
  X(TSM_UNARY_SIN) X(TSM_UNARY_COS) X(TSM_UNARY_RSQRT)
#define TSM_CUDA_BINARY_CASES(X)                                                             \
  X(TSM_BINARY_ADD) X(TSM_BINARY_SUB) X(TSM_BINARY_MUL) X(TSM_BINARY_DIV) X(TSM_BINARY_POW)  \
  X(TSM_BINARY_MAXIMUM) X(TSM_BINARY_MINIMUM) X(TSM_BINARY_EQ) X(TSM_BINARY_NE)              \
  X(TSM_BINARY_LT) X(TSM_BINARY_LE) X(TSM_BINARY_GT) X(TSM_BINARY_GE)

static_assert(TSM_UNARY_OP_COUNT == 16, "update TSM_CUDA_UNARY_CASES");
static_assert(TSM_BINARY_OP_COUNT == 13, "update TSM_CUDA_BINARY_CASES");

tsm_status check_n(const char* op, int64_t n) {
  if (n < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: n must be >= 0, got %lld", op, (long long)n);
  return TSM_OK;
}

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_unary_forward(int op, float* y, const float* x, int64_t n) {
  const char* name = "cuda_unary_forward";
  if (op < 0 || op >= TSM_UNARY_OP_COUNT)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: op must be in [0, %d), got %d", name, TSM_UNARY_OP_COUNT, op);
  if (tsm_status s = check_n(name, n)) return s;
  if (n == 0) return TSM_OK;
  if (!y || !x) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !y ? "y" : "x");
  switch (op) {
#define X(OP) case OP: return launch_map1(name, y, x, n, UnaryFwd<OP>{});
    TSM_CUDA_UNARY_CASES(X)
#undef X
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_unary_backward(int op, float* dx, const float* x, const float* y, const float* dy,
                                           int64_t n) {
  const char* name = "cuda_unary_backward";
  if (op < 0 || op >= TSM_UNARY_OP_COUNT)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: op must be in [0, %d), got %d", name, TSM_UNARY_OP_COUNT, op);
  if (tsm_status s = check_n(name, n)) return s;
  if (n == 0) return TSM_OK;
  const bool use_y = reads_y(op);
  const float* v = use_y ? y : x;
  if (!dx || !dy || !v)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !dx ? "dx" : !dy ? "dy" : use_y ? "y" : "x");
  switch (op) {
#define X(OP) case OP: return launch_map2(name, dx, v, dy, n, UnaryBwd<OP>{});
    TSM_CUDA_UNARY_CASES(X)
#undef X
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_binary_same(int op, float* out, const float* a, const float* b, int64_t n) {
  const char* name = "cuda_binary_same";
  if (op < 0 || op >= TSM_BINARY_OP_COUNT)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: op must be in [0, %d), got %d", name, TSM_BINARY_OP_COUNT, op);
  if (tsm_status s = check_n(name, n)) return s;
  if (n == 0) return TSM_OK;
  if (!out || !a || !b)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !out ? "out" : !a ? "a" : "b");
  switch (op) {
#define X(OP) case OP: return launch_map2(name, out, a, b, n, BinaryFn<OP>{});
    TSM_CUDA_BINARY_CASES(X)
#undef X
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_scalar_forward(int op, float* out, const float* x, float s, int reverse, int64_t n) {
  const char* name = "cuda_scalar_forward";
  if (op < 0 || op >= TSM_BINARY_OP_COUNT)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: op must be in [0, %d), got %d", name, TSM_BINARY_OP_COUNT, op);
  if (tsm_status st = check_n(name, n)) return st;
  if (n == 0) return TSM_OK;
  if (!out || !x) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !out ? "out" : "x");
  switch (op) {
#define X(OP) case OP: return launch_map1(name, out, x, n, ScalarFn<OP>{s, reverse != 0});
    TSM_CUDA_BINARY_CASES(X)
#undef X
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_binary_forward(int op, float* out, const float* a, const float* b, int ndim,
                                           const int64_t* out_shape, const int64_t* a_strides,
                                           const int64_t* b_strides) {
  const char* name = "cuda_binary_forward";
  if (op < 0 || op >= TSM_BINARY_OP_COUNT)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: op must be in [0, %d), got %d", name, TSM_BINARY_OP_COUNT, op);
  if (ndim < 0 || ndim > kMaxDims)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: ndim must be in [0, %d], got %d", name, kMaxDims, ndim);
  if (ndim > 0 && (!out_shape || !a_strides || !b_strides))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: out_shape, a_strides and b_strides must not be NULL", name);
  Bcast p{};
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) {
    if (out_shape[d] < 0 || a_strides[d] < 0 || b_strides[d] < 0)
      return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes and strides must be >= 0 (dim %d)", name, d);
    if (out_shape[d] > 0 && n > INT64_MAX / out_shape[d])
      return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: the output has more than 2^63 elements", name);
    n *= out_shape[d];
    p.shape[d] = out_shape[d];
    p.sa[d] = a_strides[d];
    p.sb[d] = b_strides[d];
  }
  if (n == 0) return TSM_OK;
  if (!out || !a || !b)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !out ? "out" : !a ? "a" : "b");
  int64_t* strides[2] = {p.sa, p.sb};
  p.ndim = collapse_dims(ndim, p.shape, 2, strides);
  switch (op) {
#define X(OP) case OP: return launch_bcast<OP>(name, out, a, b, n, p);
    TSM_CUDA_BINARY_CASES(X)
#undef X
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_fill32(void* dst, uint32_t bits, int64_t n) {
  const char* name = "cuda_fill32";
  if (tsm_status s = check_n(name, n)) return s;
  if (n == 0) return TSM_OK;
  if (!dst) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: dst is NULL", name);
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  const bool vec = aligned16(dst);
  fill32_kernel<<<grid_for(vec ? ceil_div(n, 4) : n), kThreads, 0, st>>>(static_cast<uint32_t*>(dst), bits, n, vec);
  return check_launch(name);
}

TSM_API tsm_status tsm_cuda_cast_f32_i32(int32_t* dst, const float* src, int64_t n) {
  const char* name = "cuda_cast_f32_i32";
  if (tsm_status s = check_n(name, n)) return s;
  if (n == 0) return TSM_OK;
  if (!dst || !src) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !dst ? "dst" : "src");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  cast_f32_i32_kernel<<<grid_for(n), kThreads, 0, st>>>(dst, src, n);
  return check_launch(name);
}

TSM_API tsm_status tsm_cuda_cast_i32_f32(float* dst, const int32_t* src, int64_t n) {
  const char* name = "cuda_cast_i32_f32";
  if (tsm_status s = check_n(name, n)) return s;
  if (n == 0) return TSM_OK;
  if (!dst || !src) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !dst ? "dst" : "src");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  cast_i32_f32_kernel<<<grid_for(n), kThreads, 0, st>>>(dst, src, n);
  return check_launch(name);
}

}  // extern "C"
