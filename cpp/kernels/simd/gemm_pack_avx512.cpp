// AVX-512 packing for the 12x32 GEMM micro-kernel (see gemm_pack.h): k-contiguous rows are
// loaded 16 floats at a time and transposed in registers, 16 x 16 per block, with four rounds of
// in-lane unpacks and 128-bit lane shuffles. Compiled with -mavx512f; called only when cpuid
// reports AVX-512F.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own avx512fintrin.h (the self-initialised `__Y` of the undefined-vector
// helpers the unpack and shuffle intrinsics use); nothing in this file reads an unset value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "avx512_mask.h"
#include "avx512_transpose.h"
#include "gemm_pack.h"

namespace tsm {

void pack_a_rows_avx512(float* d, const float* a, int64_t lda, int64_t k, int mr) {
  const __mmask16 rows = static_cast<__mmask16>((1u << mr) - 1u);
  for (int64_t p = 0; p < k; p += 16) {
    const int64_t n = k - p < 16 ? k - p : 16;
    const __mmask16 m = tail_mask(n);
    __m512 r[16];
    // masked loads only for the tail: on Zen 5 they issue at ~1 per 3 cycles even with all lanes set
    for (int i = 0; i < 16; ++i)
      r[i] = i >= mr    ? _mm512_setzero_ps()
             : n == 16 ? _mm512_loadu_ps(a + i * lda + p)
                       : _mm512_maskz_loadu_ps(m, a + i * lda + p);
    transpose16x16(r);
    float* dp = d + p * mr;
    for (int64_t q = 0; q < n; ++q) _mm512_mask_storeu_ps(dp + q * mr, rows, r[q]);
  }
}

void pack_b32_trans_avx512(float* d, const float* b, int64_t ldb, int64_t cols, int64_t k) {
  for (int64_t p = 0; p < k; p += 16) {
    const int64_t n = k - p < 16 ? k - p : 16;
    const __mmask16 m = tail_mask(n);
    for (int h = 0; h < 2; ++h) {
      __m512 r[16];
      for (int j = 0; j < 16; ++j) {
        const int64_t col = 16 * h + j;
        r[j] = col >= cols ? _mm512_setzero_ps()
             : n == 16 ? _mm512_loadu_ps(b + col * ldb + p) : _mm512_maskz_loadu_ps(m, b + col * ldb + p);
      }
      transpose16x16(r);
      float* dp = d + p * 32 + 16 * h;
      for (int64_t q = 0; q < n; ++q) _mm512_storeu_ps(dp + q * 32, r[q]);
    }
  }
}

}  // namespace tsm
