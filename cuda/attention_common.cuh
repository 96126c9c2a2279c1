// Shared by the fused attention kernels (attention_fwd.cu, attention_bwd.cu): the argument checks of
// the C ABI, the launch parameters, the kernel configurations and the warp-level building blocks
// (cp.async, ldmatrix, mma.sync m16n8k16, 16-bit packing). Not public ABI.
//
// Layout of every tensor: contiguous (B, H, L, D) row-major, i.e. head bh = b*H + h starts at
// element bh*L*D and row i of it at bh*L*D + i*D. lse and delta are (B, H, Lq) float32.
//
// Fragment layouts used below (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point
// type"; g = lane / 4, t = lane % 4):
//   A (16 x 16, row): reg0 = A[g][2t, 2t+1]   reg1 = A[g+8][2t, 2t+1]
//                     reg2 = A[g][2t+8, 2t+9] reg3 = A[g+8][2t+8, 2t+9]
//   B (16 x 8, col):  reg0 = B[2t, 2t+1][g]   reg1 = B[2t+8, 2t+9][g]
//   C (16 x 8, f32):  c0, c1 = C[g][2t, 2t+1] c2, c3 = C[g+8][2t, 2t+1]
// (the lower-indexed element of a pair in the low 16 bits). So the C fragments of two adjacent
// 16 x 8 score tiles are, after packing to 16 bits, exactly the A fragment of a 16 x 16 operand:
// softmax probabilities go from the QK^T accumulators into the PV product without shared memory.
// ldmatrix.x4: lanes 8j..8j+7 give the row addresses of 8x8 matrix j; register j receives
// M_j[g][2t, 2t+1] (with .trans: M_j[2t, 2t+1][g], i.e. the transpose).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstdint>

#include "runtime/cuda_common.cuh"

namespace tsm {
namespace cuda {
namespace attn {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// One attention problem after the C ABI's checks (sizes fit in int; offsets are computed in 64 bits).
struct Problem {
  int b, h, lq, lk, d;
  int dtype;  // tsm_cuda_dtype
  float scale;
  bool causal;
  const int32_t* key_lengths;  // device, (b), or nullptr
  int algo;                    // tsm_cuda_attention_algo
};

// Forward launch parameters (both kernel families).
struct FwdParams {
  const void* q;
  const void* k;
  const void* v;
  void* o;
  float* lse;
  const int32_t* key_lengths;
  int h, lq, lk, d;
  int bh;   // B * H
  int nqb;  // query blocks per head (mma path)
  float scale_log2;  // scale * log2(e): scores are exponentiated with exp2
  int causal;
  int vec;  // q, k, v 16-byte aligned and d % 8 == 0: tiles are copied with cp.async
  int pair_store;  // o 4-byte aligned and d even: two outputs per store
};

// Backward launch parameters (both kernel families).
struct BwdParams {
  const void* q;
  const void* k;
  const void* v;
  const void* o;
  const void* dout;
  const float* lse;
  float* delta;   // (B, H, Lq) workspace: rowsum(dout * o)
  float* dq_acc;  // (B, H, Lq, D) float32 workspace of the mma path (atomics), else nullptr
  void* dq;
  void* dk;
  void* dv;
  const int32_t* key_lengths;
  int h, lq, lk, d;
  int bh;
  int nkb;  // key blocks per head (mma path)
  float scale, scale_log2;
  int causal;
  int vec;         // q, k, v, dout 16-byte aligned and d % 8 == 0
  int pair_store;  // dk, dv 4-byte aligned and d even
};

// Launchers (attention_fwd.cu / attention_bwd.cu): TSM_OK once queued.
tsm_status launch_fwd_mma(const Problem& pr, const FwdParams& p, cudaStream_t s);
tsm_status launch_fwd_general(const Problem& pr, const FwdParams& p, cudaStream_t s);
tsm_status launch_bwd_mma(const Problem& pr, const BwdParams& p, cudaStream_t s);
tsm_status launch_bwd_general(const Problem& pr, const BwdParams& p, cudaStream_t s);
// Dynamic shared memory of the mma kernels for head dim d (attention_fwd.cu / attention_bwd.cu).
size_t fwd_mma_smem_bytes(int d);
size_t bwd_mma_smem_bytes(int d);
// Whether the mma kernels can run this problem on this device (dtype, head dim, arch, shared memory).
// On false, *why says why (for the message of a forced algo).
bool mma_applicable(const Problem& pr, const DeviceProps& dp, bool backward, const char** why);

// Checks the arguments common to forward and backward; TSM_ERR_INVALID_ARGUMENT with a message.
inline tsm_status check_desc(const char* op, const tsm_cuda_attention_desc* d, Problem* out) {
  if (!d) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: desc is NULL", op);
  const int64_t s[5] = {d->b, d->h, d->lq, d->lk, d->d};
  const char* names[5] = {"b", "h", "lq", "lk", "d"};
  for (int i = 0; i < 5; ++i) {
    if (s[i] < 0)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s must be >= 0, got %lld", op, names[i], (long long)s[i]);
    if (s[i] > INT_MAX)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s must be < 2^31, got %lld", op, names[i], (long long)s[i]);
  }
  if (d->d < 1 || d->d > 256)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: d (head dim) must be in [1, 256], got %lld", op, (long long)d->d);
  if (d->dtype < TSM_CUDA_F32 || d->dtype > TSM_CUDA_F16)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: unknown dtype %d (expected 0 float32, 1 bfloat16, 2 float16)", op,
                (int)d->dtype);
  if (d->algo < TSM_CUDA_ATTN_AUTO || d->algo > TSM_CUDA_ATTN_GENERAL)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: unknown algo %d (expected 0 auto, 1 mma, 2 general)", op, (int)d->algo);
  if (!std::isfinite(d->scale))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: scale must be finite, got %g", op, (double)d->scale);
  if (d->b * d->h > INT_MAX)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: b * h must be < 2^31, got %lld", op, (long long)(d->b * d->h));
  // Every element offset must fit in int64 with room (b*h*max(lq,lk)*d).
  const double total = double(d->b) * double(d->h) * double(d->lq > d->lk ? d->lq : d->lk) * double(d->d);
  if (total > 4.0e18) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes are too large", op);
  out->b = int(d->b);
  out->h = int(d->h);
  out->lq = int(d->lq);
  out->lk = int(d->lk);
  out->d = int(d->d);
  out->dtype = d->dtype;
  out->scale = d->scale;
  out->causal = d->is_causal != 0;
  out->key_lengths = d->key_lengths;
  out->algo = d->algo;
  return TSM_OK;
}

inline bool aligned_to(const void* p, uintptr_t n) { return (reinterpret_cast<uintptr_t>(p) & (n - 1)) == 0; }

inline const char* algo_name(int a) { return a == TSM_CUDA_ATTN_MMA ? "mma" : a == TSM_CUDA_ATTN_GENERAL ? "general" : "auto"; }

// TSM_ATTN_EMULATE: the kernels are also compiled as host C++ by test/emu/attention_emu.cpp, which
// runs every thread of a block as a host thread and emulates the warp-level instructions from their
// PTX definitions (ldmatrix, mma.sync, shuffles), to check index and fragment logic without a GPU.
#if defined(TSM_ATTN_EMULATE) || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800)
#define TSM_ATTN_SM80 1
#else
#define TSM_ATTN_SM80 0
#endif
#ifdef TSM_ATTN_EMULATE
#define TSM_ATTN_DYNAMIC_SMEM(name) unsigned char* name = ::tsm_emu::dynamic_smem()
#else
#define TSM_ATTN_DYNAMIC_SMEM(name) extern __shared__ __align__(128) unsigned char name[]
#endif

#if defined(__CUDACC__) || defined(TSM_ATTN_EMULATE)

// ---- element conversions ----
template <typename T> __device__ __forceinline__ float to_f(T x);
template <> __device__ __forceinline__ float to_f<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <> __device__ __forceinline__ float to_f<__half>(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }

// Two floats as one 32-bit register of two 16-bit values, lo in the low half.
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x = lo (low 16 bits), .y = hi
  return *reinterpret_cast<uint32_t*>(&v);
}
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Stores (v0, v1) to dst[0], dst[1]; as one 32-bit store when `pair` (4-byte aligned, both inside),
// else element by element, the second only when `second`.
template <typename T>
__device__ __forceinline__ void store2(T* dst, float v0, float v1, bool pair, bool second) {
  if (pair && second) {
    if constexpr (sizeof(T) == 2) {
      *reinterpret_cast<uint32_t*>(dst) = pack2<T>(v0, v1);
    } else {
      *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
    }
  } else {
    dst[0] = from_f<T>(v0);
    if (second) dst[1] = from_f<T>(v1);
  }
}

// ---- asynchronous copies, ldmatrix, mma ----
#ifdef TSM_ATTN_EMULATE
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) { ::tsm_emu::cp_async16(dst, src, src_bytes); }
__device__ __forceinline__ void cp_async_commit() {}
template <int N>
__device__ __forceinline__ void cp_async_wait() {}
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) { ::tsm_emu::ldmatrix_x4(r, p, false); }
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const void* p) { ::tsm_emu::ldmatrix_x4(r, p, true); }
template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  ::tsm_emu::mma16816<T>(c, a, b0, b1);
}
#else
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// 16 bytes global -> shared; bytes past src_bytes (0 or 16 here) are zero-filled.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}

// c += A(16x16) * B(16x8), float32 accumulators.
template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

// Copies rows [r0, r0 + ROWS) of a row-major (rows_lim x d) matrix g into a shared tile of ROWS x DP
// with row stride SD elements, zero-filling rows >= rows_lim and columns >= d. With `vec` (g 16-byte
// aligned, d % 8 == 0) each 16-byte chunk is one cp.async (whole chunks are inside or outside: d is
// a multiple of 8); otherwise element-wise loads and shared stores (correct for any d, slower).
template <typename T, int ROWS, int DP, int SD, int THREADS>
__device__ __forceinline__ void load_tile(T* __restrict__ sm, const T* __restrict__ g, int rows_lim, int d, int r0,
                                          bool vec, int tid) {
  constexpr int CPR = DP / 8;  // 16-byte chunks per row (8 16-bit elements)
  constexpr int CHUNKS = ROWS * CPR;
  static_assert(CHUNKS % THREADS == 0, "tile chunks must divide among the threads");
#pragma unroll
  for (int i = 0; i < CHUNKS / THREADS; ++i) {
    const int idx = tid + i * THREADS;
    const int r = idx / CPR, c = (idx % CPR) * 8;
    const int gr = r0 + r;
    T* dst = sm + r * SD + c;
    if (vec) {
      const bool ok = gr < rows_lim && c < d;
      const T* src = ok ? g + int64_t(gr) * d + c : g;
      cp_async16(dst, src, ok ? 16 : 0);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        T v = T(0.f);
        if (gr < rows_lim && c + e < d) v = g[int64_t(gr) * d + c + e];
        dst[e] = v;
      }
    }
  }
}

// Number of keys batch b attends: key_lengths[b] clamped to [0, lk], or lk.
__device__ __forceinline__ int key_count(const int32_t* key_lengths, int b, int lk) {
  if (!key_lengths) return lk;
  const int n = __ldg(key_lengths + b);
  return n < 0 ? 0 : (n > lk ? lk : n);
}

#endif  // __CUDACC__ || TSM_ATTN_EMULATE

}  // namespace attn
}  // namespace cuda
}  // namespace tsm
