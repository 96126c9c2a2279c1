// AVX2 + FMA GEMM micro-kernel: 6 x 16 tile of C in 12 ymm accumulators. Per step of k: two loads
// of B (16 floats), six broadcasts of A, twelve FMAs. Compiled with -mavx2 -mfma; called only when
// cpuid reports both.
#include <immintrin.h>

#include "gemm_ukernel.h"

namespace tsm {
namespace {

constexpr int MR = 6, NR = 16;

inline void store_row(float* c, __m256 lo, __m256 hi, __m256 valpha, __m256 vbeta, bool read_c) {
  lo = _mm256_mul_ps(lo, valpha);
  hi = _mm256_mul_ps(hi, valpha);
  if (read_c) {
    lo = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(c), lo);
    hi = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(c + 8), hi);
  }
  _mm256_storeu_ps(c, lo);
  _mm256_storeu_ps(c + 8, hi);
}

void ukernel_avx2_6x16(int64_t k, const float* a, const float* b, float* c, int64_t ldc,
                       float alpha, float beta) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);

#define TSM_STEP(P)                                                      \
  {                                                                      \
    const __m256 b0 = _mm256_load_ps(b + (P) * NR);                      \
    const __m256 b1 = _mm256_load_ps(b + (P) * NR + 8);                  \
    __m256 ai = _mm256_broadcast_ss(a + (P) * MR + 0);                   \
    c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01); \
    ai = _mm256_broadcast_ss(a + (P) * MR + 1);                          \
    c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11); \
    ai = _mm256_broadcast_ss(a + (P) * MR + 2);                          \
    c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21); \
    ai = _mm256_broadcast_ss(a + (P) * MR + 3);                          \
    c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31); \
    ai = _mm256_broadcast_ss(a + (P) * MR + 4);                          \
    c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41); \
    ai = _mm256_broadcast_ss(a + (P) * MR + 5);                          \
    c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51); \
  }

  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 9 * NR), _MM_HINT_T0);
    TSM_STEP(0) TSM_STEP(1) TSM_STEP(2) TSM_STEP(3)
    a += 4 * MR;
    b += 4 * NR;
  }
  for (; p < k; ++p) {
    TSM_STEP(0)
    a += MR;
    b += NR;
  }
#undef TSM_STEP

  const __m256 valpha = _mm256_set1_ps(alpha), vbeta = _mm256_set1_ps(beta);
  const bool read_c = beta != 0.0f;
  store_row(c + 0 * ldc, c00, c01, valpha, vbeta, read_c);
  store_row(c + 1 * ldc, c10, c11, valpha, vbeta, read_c);
  store_row(c + 2 * ldc, c20, c21, valpha, vbeta, read_c);
  store_row(c + 3 * ldc, c30, c31, valpha, vbeta, read_c);
  store_row(c + 4 * ldc, c40, c41, valpha, vbeta, read_c);
  store_row(c + 5 * ldc, c50, c51, valpha, vbeta, read_c);
}

}  // namespace

// Blocking for Zen-class cores: A block 144 x 256 floats (144 KiB) in the 512 KiB L2, a B panel
// 256 x 16 (16 KiB) in the 32 KiB L1, the B block 256 x 4080 in L3.
const GemmUkernel* gemm_ukernel_avx2() {
  static const GemmUkernel k{"avx2 6x16", MR, NR, 144, 256, 4080, ukernel_avx2_6x16};
  return &k;
}

}  // namespace tsm
