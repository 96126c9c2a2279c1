// AVX-512 packing for the 12x32 GEMM micro-kernel (see gemm_pack.h): k-contiguous rows are
// loaded 16 floats at a time and transposed in registers, 16 x 16 per block, with four rounds of
// in-lane unpacks and 128-bit lane shuffles. Compiled with -mavx512f; called only when cpuid
// reports AVX-512F.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own avx512fintrin.h (the self-initialised `__Y` of the undefined-vector
// helpers the unpack and shuffle intrinsics use); nothing in this file reads an unset value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "avx512_mask.h"
#include "gemm_pack.h"

namespace tsm {
namespace {

// r[i] lane j -> r[j] lane i.
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {  // lane L of a 128-bit quarter: rows 2i, 2i+1 interleaved
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  __m512 u[16];  // u[4g + c], quarter L: rows 4g..4g+3 at column 4L + c
  for (int g = 0; g < 4; ++g) {
    const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int c = 0; c < 4; ++c) {  // column 4L + c gathers quarter L of u[c], u[4+c], u[8+c], u[12+c]
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
}

}  // namespace

void pack_a12_rows_avx512(float* d, const float* a, int64_t lda, int64_t k) {
  const __mmask16 twelve = 0x0FFF;
  for (int64_t p = 0; p < k; p += 16) {
    const int64_t n = k - p < 16 ? k - p : 16;
    const __mmask16 m = tail_mask(n);
    __m512 r[16];
    for (int i = 0; i < 12; ++i) r[i] = _mm512_maskz_loadu_ps(m, a + i * lda + p);
    for (int i = 12; i < 16; ++i) r[i] = _mm512_setzero_ps();
    transpose16x16(r);
    float* dp = d + p * 12;
    for (int64_t q = 0; q < n; ++q) _mm512_mask_storeu_ps(dp + q * 12, twelve, r[q]);
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
        r[j] = col < cols ? _mm512_maskz_loadu_ps(m, b + col * ldb + p) : _mm512_setzero_ps();
      }
      transpose16x16(r);
      float* dp = d + p * 32 + 16 * h;
      for (int64_t q = 0; q < n; ++q) _mm512_storeu_ps(dp + q * 32, r[q]);
    }
  }
}

}  // namespace tsm
