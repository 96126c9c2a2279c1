// AVX2 max pooling for the common 2x2 window with stride 2 (no padding, no dilation): eight
// outputs per step, the AVX2 form of pool_avx512.cpp. The two input rows of a window row are
// loaded as 16 floats each and split into even and odd columns; the four candidates are compared
// in PyTorch's window order with its rule (a strictly greater value or a NaN replaces the running
// maximum), so values and indices are bit-identical to the scalar loop in pool2d.cpp, also when
// the taps are relu(x). A row's last few outputs go through a small buffer (AVX2's masked stores
// are slow on AMD cores). Compiled with -mavx2 -mfma; called only when cpuid reports both.
#include <immintrin.h>

#include "pool_simd.h"

namespace tsm {
namespace {

// Lanes where v replaces the running maximum m: v > m or v is NaN.
inline __m256 replaces(__m256 v, __m256 m) {
  return _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

// x > 0 ? x : 0 per lane (NaN and -0 give +0), as tsm_unary_forward's RELU: vmaxps returns its
// second operand when either is NaN or both are zero.
inline __m256 relu(__m256 v) { return _mm256_max_ps(v, _mm256_setzero_ps()); }

// Lanes i < n all ones.
inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Columns 0, 2, .., 14 (even) or 1, 3, .., 15 (odd) of the 16 floats lo:hi.
inline __m256 even_cols(__m256 lo, __m256 hi) {
  const __m256 s = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
}
inline __m256 odd_cols(__m256 lo, __m256 hi) {
  const __m256 s = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
}

template <bool Relu>
void max_2x2(float* y, int32_t* idx, const float* x, int64_t w, int64_t ow, int64_t full_h,
             int64_t full_w) {
  const __m256i two_lane = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256 k1 = _mm256_castsi256_ps(_mm256_set1_epi32(1));
  const __m256 kw = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int32_t>(w)));
  const __m256 kw1 = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int32_t>(w + 1)));
  for (int64_t oh = 0; oh < full_h; ++oh) {
    const float* r0 = x + 2 * oh * w;
    const float* r1 = r0 + w;
    float* yo = y + oh * ow;
    int32_t* io = idx + oh * ow;
    for (int64_t o0 = 0; o0 < full_w; o0 += 8) {
      const int64_t n = full_w - o0 < 8 ? full_w - o0 : 8;  // outputs in this step
      const float* p0 = r0 + 2 * o0;
      const float* p1 = r1 + 2 * o0;
      __m256 r0lo, r0hi, r1lo, r1hi;
      if (n == 8) {
        r0lo = _mm256_loadu_ps(p0), r0hi = _mm256_loadu_ps(p0 + 8);
        r1lo = _mm256_loadu_ps(p1), r1hi = _mm256_loadu_ps(p1 + 8);
      } else {  // 2n < 16 inputs per row: masked loads read nothing past them
        const __m256i lo_m = first_lanes(2 * n), hi_m = first_lanes(2 * n - 8);
        r0lo = _mm256_maskload_ps(p0, lo_m), r0hi = _mm256_maskload_ps(p0 + 8, hi_m);
        r1lo = _mm256_maskload_ps(p1, lo_m), r1hi = _mm256_maskload_ps(p1 + 8, hi_m);
      }
      if (Relu) {
        r0lo = relu(r0lo);
        r0hi = relu(r0hi);
        r1lo = relu(r1lo);
        r1hi = relu(r1hi);
      }
      const __m256 a = even_cols(r0lo, r0hi), b = odd_cols(r0lo, r0hi);
      const __m256 c = even_cols(r1lo, r1hi), d = odd_cols(r1lo, r1hi);
      __m256 m = a, k = _mm256_setzero_ps();
      __m256 r = replaces(b, m);
      m = _mm256_blendv_ps(m, b, r);
      k = _mm256_blendv_ps(k, k1, r);
      r = replaces(c, m);
      m = _mm256_blendv_ps(m, c, r);
      k = _mm256_blendv_ps(k, kw, r);
      r = replaces(d, m);
      m = _mm256_blendv_ps(m, d, r);
      k = _mm256_blendv_ps(k, kw1, r);
      const __m256i base = _mm256_set1_epi32(static_cast<int32_t>(2 * oh * w + 2 * o0));
      const __m256i index = _mm256_add_epi32(_mm256_add_epi32(base, two_lane), _mm256_castps_si256(k));
      if (n == 8) {
        _mm256_storeu_ps(yo + o0, m);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(io + o0), index);
      } else {
        alignas(32) float mv[8];
        alignas(32) int32_t iv[8];
        _mm256_store_ps(mv, m);
        _mm256_store_si256(reinterpret_cast<__m256i*>(iv), index);
        for (int64_t i = 0; i < n; ++i) yo[o0 + i] = mv[i], io[o0 + i] = iv[i];
      }
    }
  }
}

}  // namespace

void max_pool_2x2_full_avx2(float* y, int32_t* idx, const float* x, int64_t w, int64_t ow,
                            int64_t full_h, int64_t full_w, bool relu) {
  if (relu) max_2x2<true>(y, idx, x, w, ow, full_h, full_w);
  else max_2x2<false>(y, idx, x, w, ow, full_h, full_w);
}

}  // namespace tsm
