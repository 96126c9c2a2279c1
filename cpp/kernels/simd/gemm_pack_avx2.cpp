// AVX2 packing for the 6x16 GEMM micro-kernel (see gemm_pack.h): k-contiguous rows are loaded 8
// floats at a time and transposed in registers, 8 x 8 per block (in-lane unpacks and shuffles, then
// 128-bit lane permutes). Compiled with -mavx2 -mfma; called only when cpuid reports both.
#include <immintrin.h>

#include "gemm_pack.h"

namespace tsm {
namespace {

// r[i] holds row i of an 8x8 block; afterwards r[q] holds column q.
inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

}  // namespace

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
