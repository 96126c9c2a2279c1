// Shared by the GEMM kernels (gemm_sgemm.cu, gemm_mma.cu, gemm_wgmma.cu) and their dispatcher
// (gemm.cu): the problem description, tile rasterisation and the epilogue. Not public ABI.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "runtime/cuda_common.cuh"

namespace tsm {
namespace cuda {

// One (strided batched) GEMM, row-major, as tsm_cuda_gemm_strided_batched_ex describes it.
// Sizes fit in int (the dispatcher checks); offsets are computed in 64 bits.
struct GemmProblem {
  int type;  // tsm_cuda_gemm_type
  bool ta, tb;
  int batch, m, n, k;
  float alpha, beta;
  const void* a;
  int64_t lda, sa;
  const void* b;
  int64_t ldb, sb;
  void* c;
  int c_dtype;  // tsm_cuda_dtype
  int64_t ldc, sc;
  const float* bias;
  int act;  // tsm_cuda_activation
};

// The epilogue's arguments, passed by value to every kernel.
struct Epilogue {
  float alpha, beta;
  void* c;
  int c_dtype;
  int64_t ldc, sc;
  const float* bias;
  int act;
};

inline Epilogue make_epilogue(const GemmProblem& p) {
  return Epilogue{p.alpha, p.beta, p.c, p.c_dtype, p.ldc, p.sc, p.bias, p.act};
}

// Launchers: TSM_OK once queued, TSM_ERR_UNSUPPORTED (with a message) when the kernel family cannot
// run this problem on this device/binary, TSM_ERR_CUDA on a launch failure.
tsm_status launch_sgemm(const GemmProblem& p, cudaStream_t s);
tsm_status launch_mma(const GemmProblem& p, cudaStream_t s);
tsm_status launch_wgmma(const GemmProblem& p, cudaStream_t s);
// Whether launch_wgmma can run p (no message recorded).
bool wgmma_applicable(const GemmProblem& p);

#ifdef __CUDACC__

// Tile rasterisation: consecutive blocks walk down a group of `group` tile rows before moving right,
// so the blocks resident at one time share A row panels and B column panels in L2.
__device__ __forceinline__ void tile_coords(int bid, int tiles_m, int tiles_n, int group, int* tm,
                                            int* tn) {
  const int per_group = group * tiles_n;
  const int g = bid / per_group;
  const int first_m = g * group;
  const int gm = min(tiles_m - first_m, group);
  const int r = bid - g * per_group;
  *tm = first_m + r % gm;
  *tn = r / gm;
}

// Out of line: erff inlined at every store of an unrolled epilogue multiplies the code size (and the
// binary) several times over; the call is made only when the GELU epilogue is asked for.
__device__ __noinline__ inline float gelu_exact(float v) { return 0.5f * v * (1.f + erff(v * 0.70710678118654752f)); }

__device__ __forceinline__ float apply_act(float v, int act) {
  if (act == 1) return v < 0.f ? 0.f : v;  // keeps NaN, as torch.relu
  if (act == 2) return gelu_exact(v);
  return v;
}

// float <-> the output types, and a 4-element vector store (the caller checked the alignment:
// 16 bytes for float, 8 for the 16-bit types).
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <typename OutT>
__device__ __forceinline__ OutT from_float(float v) {
  if constexpr (sizeof(OutT) == 4) return v;
  else if constexpr (std::is_same<OutT, __half>::value) return __float2half_rn(v);
  else return __float2bfloat16_rn(v);
}
__device__ __forceinline__ void store4(float* out, const float (&v)[4]) {
  *reinterpret_cast<float4*>(out) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store4(__nv_bfloat16* out, const float (&v)[4]) {
  __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]), hi = __floats2bfloat162_rn(v[2], v[3]);
  uint2 u;
  u.x = *reinterpret_cast<uint32_t*>(&lo);
  u.y = *reinterpret_cast<uint32_t*>(&hi);
  *reinterpret_cast<uint2*>(out) = u;
}
__device__ __forceinline__ void store4(__half* out, const float (&v)[4]) {
  __half2 lo = __floats2half2_rn(v[0], v[1]), hi = __floats2half2_rn(v[2], v[3]);
  uint2 u;
  u.x = *reinterpret_cast<uint32_t*>(&lo);
  u.y = *reinterpret_cast<uint32_t*>(&hi);
  *reinterpret_cast<uint2*>(out) = u;
}

// out = act(alpha * acc + beta * C + bias[col]) for element (row, col) of batch z; the caller has
// checked row < M and col < N.
__device__ __forceinline__ void epilogue_store(const Epilogue& e, int z, int row, int col, float acc) {
  const int64_t off = int64_t(z) * e.sc + int64_t(row) * e.ldc + col;
  float v = e.alpha * acc;
  if (e.c_dtype == 0) {
    float* c = static_cast<float*>(e.c) + off;
    if (e.beta != 0.f) v += e.beta * *c;
    if (e.bias) v += __ldg(e.bias + col);
    *c = apply_act(v, e.act);
  } else if (e.c_dtype == 1) {
    __nv_bfloat16* c = static_cast<__nv_bfloat16*>(e.c) + off;
    if (e.beta != 0.f) v += e.beta * __bfloat162float(*c);
    if (e.bias) v += __ldg(e.bias + col);
    *c = __float2bfloat16_rn(apply_act(v, e.act));
  } else {
    __half* c = static_cast<__half*>(e.c) + off;
    if (e.beta != 0.f) v += e.beta * __half2float(*c);
    if (e.bias) v += __ldg(e.bias + col);
    *c = __float2half_rn(apply_act(v, e.act));
  }
}

// Two adjacent columns (col, col+1) of one row; falls back to single stores at the right edge or
// when the pair is not aligned for a vector store. Out of line: epilogue_pair below inlines the
// common cases and calls this for the rest.
__device__ __noinline__ inline void epilogue_store2(const Epilogue* ep, int z, int row, int col, int n, float a0,
                                                    float a1) {
  const Epilogue& e = *ep;
  if (col >= n) return;
  const int64_t off = int64_t(z) * e.sc + int64_t(row) * e.ldc + col;
  const uintptr_t esz = e.c_dtype == 0 ? 4 : 2;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(e.c) + uintptr_t(off) * esz;
  if (col + 1 < n && (addr & (2 * esz - 1)) == 0) {
    float v0 = e.alpha * a0, v1 = e.alpha * a1;
    float b0 = 0.f, b1 = 0.f;
    if (e.bias) { b0 = __ldg(e.bias + col); b1 = __ldg(e.bias + col + 1); }
    if (e.c_dtype == 0) {
      float2* c = reinterpret_cast<float2*>(static_cast<float*>(e.c) + off);
      if (e.beta != 0.f) { float2 o = *c; v0 += e.beta * o.x; v1 += e.beta * o.y; }
      *c = make_float2(apply_act(v0 + b0, e.act), apply_act(v1 + b1, e.act));
    } else if (e.c_dtype == 1) {
      __nv_bfloat162* c = reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(e.c) + off);
      if (e.beta != 0.f) { float2 o = __bfloat1622float2(*c); v0 += e.beta * o.x; v1 += e.beta * o.y; }
      *c = __floats2bfloat162_rn(apply_act(v0 + b0, e.act), apply_act(v1 + b1, e.act));
    } else {
      __half2* c = reinterpret_cast<__half2*>(static_cast<__half*>(e.c) + off);
      if (e.beta != 0.f) { float2 o = __half22float2(*c); v0 += e.beta * o.x; v1 += e.beta * o.y; }
      *c = __floats2half2_rn(apply_act(v0 + b0, e.act), apply_act(v1 + b1, e.act));
    }
    return;
  }
  epilogue_store(e, z, row, col, a0);
  if (col + 1 < n) epilogue_store(e, z, row, col + 1, a1);
}

// Fragment stores for kernels that keep their accumulators in registers to the end (the SIMT and
// mma.sync kernels): a kernel stores 32 pairs per thread, fully unrolled, and epilogue_store2 inlined
// at each of them made ~200 KB of machine code per kernel (the wgmma kernel's epilogue, measured on
// the H100, cost more than half its run time that way). epilogue_pair inlines only the common cases
// (beta == 0, no activation or ReLU, an aligned pair inside the matrix) and calls the general
// epilogue out of line (epilogue_store2) for the rest. `fast` is epilogue_inline(e), computed once
// per thread.
__device__ __forceinline__ bool epilogue_inline(const Epilogue& e) { return e.beta == 0.f && (e.act == 0 || e.act == 1); }
__device__ __forceinline__ void epilogue_pair(const Epilogue& e, bool fast, int z, int row, int col, int n, float a0,
                                              float a1) {
  if (col >= n) return;
  if (fast && col + 1 < n) {
    const int64_t off = int64_t(z) * e.sc + int64_t(row) * e.ldc + col;
    float v0 = e.alpha * a0, v1 = e.alpha * a1;
    if (e.bias) {
      v0 += __ldg(e.bias + col);
      v1 += __ldg(e.bias + col + 1);
    }
    if (e.act == 1) {  // ReLU; keeps NaN, as torch.relu
      v0 = v0 < 0.f ? 0.f : v0;
      v1 = v1 < 0.f ? 0.f : v1;
    }
    if (e.c_dtype == 0) {
      float* c = static_cast<float*>(e.c) + off;
      if ((reinterpret_cast<uintptr_t>(c) & 7) == 0) {
        *reinterpret_cast<float2*>(c) = make_float2(v0, v1);
        return;
      }
    } else if (e.c_dtype == 1) {
      __nv_bfloat16* c = static_cast<__nv_bfloat16*>(e.c) + off;
      if ((reinterpret_cast<uintptr_t>(c) & 3) == 0) {
        *reinterpret_cast<__nv_bfloat162*>(c) = __floats2bfloat162_rn(v0, v1);
        return;
      }
    } else {
      __half* c = static_cast<__half*>(e.c) + off;
      if ((reinterpret_cast<uintptr_t>(c) & 3) == 0) {
        *reinterpret_cast<__half2*>(c) = __floats2half2_rn(v0, v1);
        return;
      }
    }
  }
  epilogue_store2(&e, z, row, col, n, a0, a1);
}

#endif  // __CUDACC__

}  // namespace cuda
}  // namespace tsm
