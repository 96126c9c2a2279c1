// Mixed precision on the device (section "mixed precision (cuda)" of tensorsmith.h):
//   tsm_cuda_cast_float   dst (n) <- src (n), float32 / bfloat16 / float16 in any direction
//   tsm_cuda_amp_unscale  grads[t] (sizes[t]) *= inv_scale in place, *found_inf = 1 on NaN/Inf
//
// The conversions are written out on the bits instead of using __float2bfloat16_rn/__float2half_rn:
// those give 0x7FFF for NaN, while the host conversions of lib/half.ts (and PyTorch's c10) give
// 0x7FC0 (bf16) and sign|0x7E00 (f16). Doing it by hand makes device and host casts agree bit for
// bit, so a test can compare them exactly. Rounding is to nearest, ties to even, in every case.
//
// unscale is one grid-stride pass per group of up to kMaxTensors tensors (pointers and sizes in the
// kernel's argument struct, as optim.cu): each block takes a chunk, checks and scales its elements,
// and one thread per block stores 1.0f into *found_inf if the block saw a non-finite value (a
// plain store: every writer writes the same value).
#include <climits>
#include <cstdint>

#include "tensor_common.cuh"

namespace tsm {
namespace cuda {
namespace {

// ---- bit conversions (same results as lib/half.ts) ----

__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  // Round to nearest even on the 16 bits dropped; +-Inf and the largest finite values round to Inf.
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float bf16_to_f32(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }

__device__ __forceinline__ uint16_t f32_to_f16(float f) {
  const uint32_t u = __float_as_uint(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const int exp = int((u >> 23) & 0xffu);
  uint32_t mant = u & 0x7fffffu;
  if (exp == 0xff) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0u));  // Inf, NaN (quiet, sign kept)
  int e = exp - 127 + 15;
  if (e >= 0x1f) return uint16_t(sign | 0x7c00u);  // overflow
  if (e <= 0) {
    // Subnormal float16 (or zero): the value is mant' * 2^-24 with mant' = (1.mant) >> (14 - e).
    if (e < -10) return uint16_t(sign);  // below half the smallest subnormal (ties at 2^-25 too)
    mant |= 0x800000u;
    const int shift = 14 - e;
    const uint32_t half = 1u << (shift - 1);
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;  // may carry into the smallest normal: correct
    return uint16_t(sign | r);
  }
  uint32_t r = mant >> 13;
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) {
    ++r;
    if (r == 0x400u) {
      r = 0;
      ++e;
    }
  }
  return uint16_t(e >= 0x1f ? (sign | 0x7c00u) : (sign | (uint32_t(e) << 10) | r));
}

__device__ __forceinline__ float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return __uint_as_float(m ? 0x7fc00000u : (sign | 0x7f800000u));
  if (e == 0) return __uint_as_float(__float_as_uint(float(m) * 5.9604644775390625e-8f) | sign);  // m * 2^-24, exact
  return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}

template <int D>
struct Elem;
template <>
struct Elem<TSM_CUDA_F32> {
  using T = float;
  __device__ static float load(float v) { return v; }
  __device__ static float store(float v) { return v; }
};
template <>
struct Elem<TSM_CUDA_BF16> {
  using T = uint16_t;
  __device__ static float load(uint16_t v) { return bf16_to_f32(v); }
  __device__ static uint16_t store(float v) { return f32_to_bf16(v); }
};
template <>
struct Elem<TSM_CUDA_F16> {
  using T = uint16_t;
  __device__ static float load(uint16_t v) { return f16_to_f32(v); }
  __device__ static uint16_t store(float v) { return f32_to_f16(v); }
};

template <int DST, int SRC>
__global__ void cast_kernel(typename Elem<DST>::T* __restrict__ dst, const typename Elem<SRC>::T* __restrict__ src,
                            int64_t n) {
  const int64_t stride = grid_threads();
  for (int64_t i = global_thread(); i < n; i += stride) dst[i] = Elem<DST>::store(Elem<SRC>::load(src[i]));
}

template <int DST, int SRC>
tsm_status launch_cast(const char* op, void* dst, const void* src, int64_t n, cudaStream_t st) {
  using TD = typename Elem<DST>::T;
  using TS = typename Elem<SRC>::T;
  cast_kernel<DST, SRC><<<grid_for(n), kThreads, 0, st>>>(static_cast<TD*>(dst), static_cast<const TS*>(src), n);
  return check_launch(op);
}

template <int DST>
tsm_status launch_cast_from(const char* op, void* dst, int src_dtype, const void* src, int64_t n, cudaStream_t st) {
  switch (src_dtype) {
    case TSM_CUDA_F32: return launch_cast<DST, TSM_CUDA_F32>(op, dst, src, n, st);
    case TSM_CUDA_BF16: return launch_cast<DST, TSM_CUDA_BF16>(op, dst, src, n, st);
    default: return launch_cast<DST, TSM_CUDA_F16>(op, dst, src, n, st);
  }
}

// ---- unscale ----

constexpr int kMaxTensors = 32;
constexpr int64_t kChunk = 8192;

struct GradList {
  float* g[kMaxTensors];
  int64_t n[kMaxTensors];
  int64_t first_block[kMaxTensors + 1];
  int count;
};
static_assert(sizeof(GradList) < 4000, "kernel parameters are limited to 4 KB");

__global__ void unscale_kernel(GradList L, float inv_scale, float* found_inf) {
  const int64_t b = blockIdx.x;
  int t = 0;
  while (t + 1 < L.count && L.first_block[t + 1] <= b) ++t;
  const int64_t n = L.n[t];
  const int64_t begin = (b - L.first_block[t]) * kChunk;
  const int64_t end = begin + kChunk < n ? begin + kChunk : n;
  float* g = L.g[t];
  int bad = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float v = g[i];
    bad |= !isfinite(v);
    g[i] = v * inv_scale;
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) *found_inf = 1.0f;
}

bool valid_dtype(int d) { return d == TSM_CUDA_F32 || d == TSM_CUDA_BF16 || d == TSM_CUDA_F16; }

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_cast_float(void* dst, tsm_cuda_dtype dst_dtype, const void* src, tsm_cuda_dtype src_dtype,
                                       int64_t n) {
  const char* op = "cuda_cast_float";
  if (!valid_dtype(dst_dtype) || !valid_dtype(src_dtype))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s must be 0 (float32), 1 (bfloat16) or 2 (float16), got %d", op,
                     valid_dtype(dst_dtype) ? "src_dtype" : "dst_dtype",
                     valid_dtype(dst_dtype) ? int(src_dtype) : int(dst_dtype));
  if (n < 0) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: n must be >= 0, got %lld", op, (long long)n);
  if (n == 0) return TSM_OK;
  if (!dst || !src) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !dst ? "dst" : "src");
  if (dst == src && (dst_dtype == TSM_CUDA_F32) != (src_dtype == TSM_CUDA_F32))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: dst == src needs element types of the same size", op);
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  switch (dst_dtype) {
    case TSM_CUDA_F32: return launch_cast_from<TSM_CUDA_F32>(op, dst, src_dtype, src, n, st);
    case TSM_CUDA_BF16: return launch_cast_from<TSM_CUDA_BF16>(op, dst, src_dtype, src, n, st);
    default: return launch_cast_from<TSM_CUDA_F16>(op, dst, src_dtype, src, n, st);
  }
}

TSM_API tsm_status tsm_cuda_amp_unscale(float* const* grads, const int64_t* sizes, int64_t count, float inv_scale,
                                        float* found_inf) {
  const char* op = "cuda_amp_unscale";
  if (count < 0) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: count must be >= 0, got %lld", op, (long long)count);
  if (count == 0) return TSM_OK;
  if (!sizes || !grads) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !sizes ? "sizes" : "grads");
  if (!found_inf) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: found_inf is NULL", op);
  int64_t total = 0;
  for (int64_t t = 0; t < count; ++t) {
    if (sizes[t] < 0)
      return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes[%lld] must be >= 0, got %lld", op, (long long)t,
                       (long long)sizes[t]);
    if (sizes[t] > 0 && !grads[t])
      return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: grads[%lld] is NULL", op, (long long)t);
    if (ceil_div(sizes[t], kChunk) > INT_MAX)
      return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes[%lld] is too large", op, (long long)t);
    total += sizes[t];
  }
  if (total == 0) return TSM_OK;
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  GradList L{};
  int slot = 0;
  int64_t blocks = 0;
  for (int64_t t = 0; t <= count; ++t) {
    const bool last = t == count;
    const int64_t nb = last ? 0 : ceil_div(sizes[t], kChunk);
    if (!last && nb == 0) continue;
    if (slot > 0 && (last || slot == kMaxTensors || blocks + nb > INT_MAX)) {
      L.count = slot;
      L.first_block[slot] = blocks;
      unscale_kernel<<<unsigned(blocks), kThreads, 0, st>>>(L, inv_scale, found_inf);
      if (tsm_status s = check_launch(op)) return s;
      L = GradList{};
      slot = 0;
      blocks = 0;
    }
    if (last) break;
    L.g[slot] = grads[t];
    L.n[slot] = sizes[t];
    L.first_block[slot] = blocks;
    blocks += nb;
    ++slot;
  }
  return TSM_OK;
}

}  // extern "C"
