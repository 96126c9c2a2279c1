// AVX2 packing for the 6x16 GEMM micro-kernel (see gemm_pack.h): k-contiguous rows are loaded 8
// floats at a time and transposed in registers, 8 x 8 per block (in-lane unpacks and shuffles, then
// 128-bit lane permutes). Compiled with -mavx2 -mfma; called only when cpuid reports both.
#include <immintrin.h>

#include "avx2_transpose.h"
#include "gemm_pack.h"

namespace tsm {

void pack_a6_rows_avx2(float* d, const float* a, int64_t lda, int64_t k) {
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 r[8];
    for (int i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(a + i * lda + p);
    r[6] = r[7] = _mm256_setzero_ps();
    transpose8x8(r);
    float* dp = d + p * 6;
    // Eight-float stores, in order: the two spare lanes of each land on the next step's first two
    // floats and are overwritten by it; the last step stores exactly six.
    for (int q = 0; q < 7; ++q) _mm256_storeu_ps(dp + q * 6, r[q]);
    _mm_storeu_ps(dp + 42, _mm256_castps256_ps128(r[7]));
    _mm_storel_pi(reinterpret_cast<__m64*>(dp + 46), _mm256_extractf128_ps(r[7], 1));
  }
  for (; p < k; ++p)
    for (int i = 0; i < 6; ++i) d[p * 6 + i] = a[i * lda + p];
}

void pack_a8_rows_avx2(float* d, const float* a, int64_t lda, int64_t k) {
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(a + i * lda + p);
    transpose8x8(r);
    for (int q = 0; q < 8; ++q) _mm256_storeu_ps(d + (p + q) * 8, r[q]);
  }
  for (; p < k; ++p)
    for (int i = 0; i < 8; ++i) d[p * 8 + i] = a[i * lda + p];
}

void pack_b16_trans_avx2(float* d, const float* b, int64_t ldb, int64_t cols, int64_t k) {
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    for (int h = 0; h < 2; ++h) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) {
        const int64_t col = 8 * h + j;
        r[j] = col < cols ? _mm256_loadu_ps(b + col * ldb + p) : _mm256_setzero_ps();
      }
      transpose8x8(r);
      float* dp = d + p * 16 + 8 * h;
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dp + q * 16, r[q]);
    }
  }
  for (; p < k; ++p)
    for (int64_t j = 0; j < 16; ++j) d[p * 16 + j] = j < cols ? b[j * ldb + p] : 0.0f;
}

}  // namespace tsm
