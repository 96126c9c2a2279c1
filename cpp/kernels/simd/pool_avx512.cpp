// AVX-512 max pooling for the common 2x2 window with stride 2 (no padding, no dilation): sixteen
// outputs per step. The two input rows of a window row are loaded as 32 floats each and split into
// even and odd columns; the four candidates are compared in PyTorch's window order with its rule
// (a strictly greater value or a NaN replaces the running maximum), so values and indices are
// bit-identical to the scalar loop in pool2d.cpp, also when the taps are relu(x). Compiled with
// -mavx512f; called only when cpuid reports AVX-512F.
#include <immintrin.h>

#include "avx512_mask.h"
#include "pool_simd.h"

namespace tsm {
namespace {

// Lanes where v replaces the running maximum m: v > m or v is NaN.
inline __mmask16 replaces(__m512 v, __m512 m) {
  return _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}

// x > 0 ? x : 0 per lane (NaN and -0 give +0), as tsm_unary_forward's RELU: vmaxps returns its
// second operand when either is NaN or both are zero. (The maskz form with all lanes set: the plain
// _mm512_max_ps draws -Wmaybe-uninitialized from its header in the ASan build.)
inline __m512 relu(__m512 v) {
  return _mm512_maskz_max_ps(0xFFFF, v, _mm512_setzero_ps());
}

// Relu: the taps are relu(x).
template <bool Relu>
void max_2x2(float* y, int32_t* idx, const float* x, int64_t w, int64_t ow, int64_t full_h,
             int64_t full_w) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i two_lane = _mm512_slli_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1);
  const __m512i k1 = _mm512_set1_epi32(1), kw = _mm512_set1_epi32(static_cast<int32_t>(w)),
                kw1 = _mm512_set1_epi32(static_cast<int32_t>(w + 1));
  for (int64_t oh = 0; oh < full_h; ++oh) {
    const float* r0 = x + 2 * oh * w;
    const float* r1 = r0 + w;
    float* yo = y + oh * ow;
    int32_t* io = idx + oh * ow;
    for (int64_t o0 = 0; o0 < full_w; o0 += 16) {
      const int64_t n = full_w - o0 < 16 ? full_w - o0 : 16;  // outputs in this step
      const __mmask16 lo_m = tail_mask(2 * n), hi_m = tail_mask(2 * n - 16 > 0 ? 2 * n - 16 : 0);
      const float* p0 = r0 + 2 * o0;
      const float* p1 = r1 + 2 * o0;
      __m512 r0lo = _mm512_maskz_loadu_ps(lo_m, p0), r0hi = _mm512_maskz_loadu_ps(hi_m, p0 + 16);
      __m512 r1lo = _mm512_maskz_loadu_ps(lo_m, p1), r1hi = _mm512_maskz_loadu_ps(hi_m, p1 + 16);
      if (Relu) {
        r0lo = relu(r0lo);
        r0hi = relu(r0hi);
        r1lo = relu(r1lo);
        r1hi = relu(r1hi);
      }
      const __m512 a = _mm512_permutex2var_ps(r0lo, even, r0hi);
      const __m512 b = _mm512_permutex2var_ps(r0lo, odd, r0hi);
      const __m512 c = _mm512_permutex2var_ps(r1lo, even, r1hi);
      const __m512 d = _mm512_permutex2var_ps(r1lo, odd, r1hi);
      __m512 m = a;
      __m512i k = _mm512_setzero_si512();
      __mmask16 r = replaces(b, m);
      m = _mm512_mask_mov_ps(m, r, b);
      k = _mm512_mask_mov_epi32(k, r, k1);
      r = replaces(c, m);
      m = _mm512_mask_mov_ps(m, r, c);
      k = _mm512_mask_mov_epi32(k, r, kw);
      r = replaces(d, m);
      m = _mm512_mask_mov_ps(m, r, d);
      k = _mm512_mask_mov_epi32(k, r, kw1);
      const __m512i base = _mm512_set1_epi32(static_cast<int32_t>(2 * oh * w + 2 * o0));
      const __m512i index = _mm512_add_epi32(_mm512_add_epi32(base, two_lane), k);
      const __mmask16 out_m = tail_mask(n);
      _mm512_mask_storeu_ps(yo + o0, out_m, m);
      _mm512_mask_storeu_epi32(io + o0, out_m, index);
    }
  }
}

}  // namespace

void max_pool_2x2_full_avx512(float* y, int32_t* idx, const float* x, int64_t w, int64_t ow,
                              int64_t full_h, int64_t full_w, bool relu) {
  if (relu) max_2x2<true>(y, idx, x, w, ow, full_h, full_w);
  else max_2x2<false>(y, idx, x, w, ow, full_h, full_w);
}

}  // namespace tsm
