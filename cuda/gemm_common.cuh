// Shared by the GEMM kernels (gemm_sgemm.cu, gemm_mma.cu, gemm_wgmma.cu) and their dispatcher
// (gemm.cu): the problem description, tile rasterisation and the epilogue. Not public ABI.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

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
// when the pair is not aligned for a vector store.
__device__ __forceinline__ void epilogue_store2(const Epilogue& e, int z, int row, int col, int n,
                                               float a0, float a1) {
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

#endif  // __CUDACC__

}  // namespace cuda
}  // namespace tsm
