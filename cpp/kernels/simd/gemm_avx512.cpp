// AVX-512F GEMM micro-kernel: a 12 x 32 tile of C in 24 zmm accumulators. Per step of k: two
// 16-float loads of B, twelve broadcasts of A, twenty-four FMAs, so loads (14) stay well under the
// FMA count and the two FMA pipes can stay busy. 24 accumulators + 2 B vectors + 1 broadcast use 27
// of the 32 registers. Compiled with -mavx512f; called only when cpuid reports AVX-512F.
#include <immintrin.h>

#include "gemm_ukernel.h"

namespace tsm {
namespace {

constexpr int MR = 12, NR = 32;

void ukernel_avx512_12x32(int64_t k, const float* a, const float* b, float* c, int64_t ldc,
                          float alpha, float beta) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int64_t p = 0; p < k; ++p) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += MR;
    b += NR;
  }
  const __m512 valpha = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m512 lo = _mm512_mul_ps(acc[i][0], valpha), hi = _mm512_mul_ps(acc[i][1], valpha);
    if (beta != 0.0f) {
      lo = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(ci), lo);
      hi = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(ci + 16), hi);
    }
    _mm512_storeu_ps(ci, lo);
    _mm512_storeu_ps(ci + 16, hi);
  }
}

}  // namespace

// Blocking: A block 144 x 256 (144 KiB) in L2, a B micro-panel 256 x 32 (32 KiB) in L1.
const GemmUkernel* gemm_ukernel_avx512() {
  static const GemmUkernel k{"avx512 12x32", MR, NR, 144, 256, 4064, ukernel_avx512_12x32};
  return &k;
}

}  // namespace tsm
