// AVX2 + FMA GEMM micro-kernel: 6 x 16 tile of C in 12 ymm accumulators. Per step of k: two loads
// of B (16 floats), six broadcasts of A, twelve FMAs. Compiled with -mavx2 -mfma; called only when
// cpuid reports both.
#include <immintrin.h>

#include "gemm_ukernel.h"

namespace tsm {
namespace {

constexpr int MR = 6, NR = 16;

// The k loop is written once and unrolled by the compiler (2 steps): GCC 12 kept the 12
// accumulators in registers this way, where a hand-unrolled 4-step body had it spill two of them
// to the stack and shuffle the rest with register moves inside the loop (16 ymm registers: 12
// accumulators, 2 B vectors and 1 broadcast leave one spare).
// PackB: B is read in place (row p at b + p*ldb) and each row is stored to bpack as it goes,
// prefetched PF_ROWS rows ahead (see gemm_avx512.cpp).
constexpr int PF_ROWS = 16;

template <int M, bool PackB>
void ukernel_avx2_impl(int64_t k, const float* a, const float* b, int64_t ldb, float* bpack,
                       float* c, int64_t ldc, float alpha, float beta) {
  __m256 acc[M][2];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 15), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int64_t p = 0; p < k; ++p) {
    __m256 b0, b1;
    if (PackB) {
      b0 = _mm256_loadu_ps(b);
      b1 = _mm256_loadu_ps(b + 8);
      _mm256_store_ps(bpack, b0);
      _mm256_store_ps(bpack + 8, b1);
      bpack += NR;
      _mm_prefetch(reinterpret_cast<const char*>(b + PF_ROWS * ldb), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b + PF_ROWS * ldb + NR - 1), _MM_HINT_T0);
    } else {
      b0 = _mm256_load_ps(b);
      b1 = _mm256_load_ps(b + 8);
      _mm_prefetch(reinterpret_cast<const char*>(b + 16 * NR), _MM_HINT_T0);  // one line per step
    }
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += M;
    b += PackB ? ldb : NR;
  }
  const __m256 valpha = _mm256_set1_ps(alpha), vbeta = _mm256_set1_ps(beta);
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    float* ci = c + i * ldc;
    __m256 lo = _mm256_mul_ps(acc[i][0], valpha), hi = _mm256_mul_ps(acc[i][1], valpha);
    if (beta != 0.0f) {
      lo = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(ci), lo);
      hi = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(ci + 8), hi);
    }
    _mm256_storeu_ps(ci, lo);
    _mm256_storeu_ps(ci + 8, hi);
  }
}

template <int M>
void ukernel_avx2(int64_t k, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                  float beta) {
  ukernel_avx2_impl<M, false>(k, a, b, NR, nullptr, c, ldc, alpha, beta);
}

template <int M>
void ukernel_avx2_pack_b(int64_t k, const float* a, const float* b, int64_t ldb, float* bpack,
                         float* c, int64_t ldc, float alpha, float beta) {
  ukernel_avx2_impl<M, true>(k, a, b, ldb, bpack, c, ldc, alpha, beta);
}

}  // namespace

// Blocking for Zen 3 (32 KiB L1d, 512 KiB L2): A block 144 x 512 floats (288 KiB) in L2, the B
// block 512 x 4080 in L3. A B micro-panel (512 x 16, 32 KiB) streams from L2 rather than staying in
// L1, as with the AVX-512 kernel: half the passes over C and half the barriers per product. KC 512
// against 256 (tools/ab-addons.js, Zen 3, 2 threads, both load orders): 1024^3 +4-6%, 1536^3
// +0.4-6%, 2048^3 +1.5-3%, 1 thread 1024^3 +3.5%, 128x256x2048 +0-5%, the other layer shapes flat.
const GemmUkernel* gemm_ukernel_avx2() {
  static const GemmUkernel k{"avx2 6x16", MR, NR, 144, 512, 4080, ukernel_avx2<MR>,
                             ukernel_avx2_pack_b<MR>, gemm_ukernel_avx2_mr4()};
  return &k;
}

// 4 x 16 (8 accumulators: two FMA pipes of 4-cycle latency, just enough chains), for the last rows
// of a product whose row count leaves 1-4 over from the 6-row tiles (the 6x16 kernel's `tail`; the
// LSTM's batch of 32: 4 x 6 + 2 x 4 rows instead of 6 x 6 with 4 padding rows).
const GemmUkernel* gemm_ukernel_avx2_mr4() {
  static const GemmUkernel k{"avx2 4x16", 4, NR, 144, 512, 4080, ukernel_avx2<4>, ukernel_avx2_pack_b<4>};
  return &k;
}

}  // namespace tsm
