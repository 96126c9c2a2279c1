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

// Offsets of the window corners of outputs o0 .. o0 + 7 of row r: 2 r w + 2 o.
inline __m256i corners(int64_t r, int64_t o0, int64_t w) {
  return _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(2 * r * w + 2 * o0)),
                          _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
}

// Lanes of the offsets off that are one of the window's cells: 0, 1, w or w + 1.
inline int in_window(__m256i off, int64_t w) {
  const __m256i ok = _mm256_or_si256(
      _mm256_or_si256(_mm256_cmpeq_epi32(off, _mm256_setzero_si256()), _mm256_cmpeq_epi32(off, _mm256_set1_epi32(1))),
      _mm256_or_si256(_mm256_cmpeq_epi32(off, _mm256_set1_epi32(static_cast<int32_t>(w))),
                      _mm256_cmpeq_epi32(off, _mm256_set1_epi32(static_cast<int32_t>(w + 1)))));
  return _mm256_movemask_ps(_mm256_castsi256_ps(ok));
}

// Whether every index of the plane is one of its own window's cells.
bool indices_in_windows(const int32_t* idx, int64_t w, int64_t oh, int64_t ow) {
  for (int64_t r = 0; r < oh; ++r) {
    int64_t o = 0;
    for (; o + 8 <= ow; o += 8) {
      const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + r * ow + o));
      if (in_window(_mm256_sub_epi32(i, corners(r, o, w)), w) != 0xFF) return false;
    }
    if (o < ow) {
      const __m256i m = first_lanes(ow - o);
      const __m256i off = _mm256_and_si256(
          m, _mm256_sub_epi32(_mm256_maskload_epi32(idx + r * ow + o, m), corners(r, o, w)));
      if (in_window(off, w) != 0xFF) return false;
    }
  }
  return true;
}

// Eight outputs (o0 ..) of row r with gradients v and indices i: the four 2x2 cells of each
// window, written as two rows of 16 floats at d0 and d1.
template <bool Relu>
inline void window_cells(float* d0, float* d1, __m256 v, __m256 y, __m256i i, int64_t r, int64_t o0, int64_t w) {
  const __m256 zero = _mm256_setzero_ps();
  if (Relu) v = _mm256_and_ps(v, _mm256_cmp_ps(y, zero, _CMP_GT_OQ));
  v = _mm256_add_ps(v, zero);  // -0 -> +0
  const __m256i off = _mm256_sub_epi32(i, corners(r, o0, w));
  const __m256 a = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, _mm256_setzero_si256())));
  const __m256 b = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, _mm256_set1_epi32(1))));
  const __m256 c = _mm256_and_ps(
      v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, _mm256_set1_epi32(static_cast<int32_t>(w)))));
  const __m256 d = _mm256_and_ps(
      v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, _mm256_set1_epi32(static_cast<int32_t>(w + 1)))));
  // a0 b0 a1 b1 .. a7 b7: unpacklo/hi interleave within 128-bit lanes, then the halves in order.
  const __m256 ab_lo = _mm256_unpacklo_ps(a, b), ab_hi = _mm256_unpackhi_ps(a, b);
  const __m256 cd_lo = _mm256_unpacklo_ps(c, d), cd_hi = _mm256_unpackhi_ps(c, d);
  _mm256_storeu_ps(d0, _mm256_permute2f128_ps(ab_lo, ab_hi, 0x20));
  _mm256_storeu_ps(d0 + 8, _mm256_permute2f128_ps(ab_lo, ab_hi, 0x31));
  _mm256_storeu_ps(d1, _mm256_permute2f128_ps(cd_lo, cd_hi, 0x20));
  _mm256_storeu_ps(d1 + 8, _mm256_permute2f128_ps(cd_lo, cd_hi, 0x31));
}

template <bool Relu>
void max_2x2_backward(float* dx, const float* dy, const float* y, const int32_t* idx, int64_t h, int64_t w,
                      int64_t oh, int64_t ow) {
  for (int64_t r = 0; r < oh; ++r) {
    float* d0 = dx + 2 * r * w;
    float* d1 = d0 + w;
    const int64_t ro = r * ow;
    int64_t o = 0;
    for (; o + 8 <= ow; o += 8)
      window_cells<Relu>(d0 + 2 * o, d1 + 2 * o, _mm256_loadu_ps(dy + ro + o),
                         Relu ? _mm256_loadu_ps(y + ro + o) : _mm256_setzero_ps(),
                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + ro + o)), r, o, w);
    if (o < ow) {
      // The missing lanes: dy 0 and their own corners as indices; their cells stay in c0, c1.
      const int64_t n = ow - o;
      const __m256i m = first_lanes(n);
      const __m256i i = _mm256_blendv_epi8(corners(r, o, w), _mm256_maskload_epi32(idx + ro + o, m), m);
      alignas(32) float c0[16], c1[16];
      window_cells<Relu>(c0, c1, _mm256_maskload_ps(dy + ro + o, m),
                         Relu ? _mm256_maskload_ps(y + ro + o, m) : _mm256_setzero_ps(), i, r, o, w);
      for (int64_t k = 0; k < 2 * n; ++k) {
        d0[2 * o + k] = c0[k];
        d1[2 * o + k] = c1[k];
      }
    }
    for (int64_t col = 2 * ow; col < w; ++col) d0[col] = d1[col] = 0.0f;
  }
  for (int64_t i = 2 * oh * w; i < h * w; ++i) dx[i] = 0.0f;
}

}  // namespace

bool max_pool_2x2_backward_avx2(float* dx, const float* dy, const float* y, const int32_t* idx, int64_t h,
                                int64_t w, int64_t oh, int64_t ow, bool relu) {
  if (!indices_in_windows(idx, w, oh, ow)) return false;
  if (relu) max_2x2_backward<true>(dx, dy, y, idx, h, w, oh, ow);
  else max_2x2_backward<false>(dx, dy, y, idx, h, w, oh, ow);
  return true;
}

void max_pool_2x2_full_avx2(float* y, int32_t* idx, const float* x, int64_t w, int64_t ow,
                            int64_t full_h, int64_t full_w, bool relu) {
  if (relu) max_2x2<true>(y, idx, x, w, ow, full_h, full_w);
  else max_2x2<false>(y, idx, x, w, ow, full_h, full_w);
}

}  // namespace tsm
