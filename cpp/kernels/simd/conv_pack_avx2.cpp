// AVX2 pieces of conv2d.cpp's implicit GEMM for the 6x16 micro-kernel: the forward's B panels (16
// pixels wide) from runs of consecutive pixels, and the backward-data's col2im for stride_w 1.
// Compiled with -mavx2 -mfma; called only when cpuid reports both.
#include <immintrin.h>

#include <algorithm>

#include "conv_direct.h"

namespace tsm {
namespace {

// Lanes 8h .. 8h+7 of a 16-bit lane mask as an all-ones / all-zeros vector mask.
inline __m256i half_mask(unsigned bits, int h) {
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i b = _mm256_set1_epi32(static_cast<int>((bits >> (8 * h)) & 0xFFu));
  return _mm256_cmpeq_epi32(_mm256_and_si256(b, lane_bit), lane_bit);
}

}  // namespace

void conv_pack_b_runs_avx2(float* dst, const float* xg, const int64_t* tap_off, int64_t kk,
                           const int32_t* seg_off, const uint16_t* seg_mask, int nseg,
                           int64_t ohw, int64_t j_begin, int64_t j_end, int64_t limit) {
  int64_t max_tap = 0;
  for (int64_t t = 0; t < kk; ++t) max_tap = std::max(max_tap, tap_off[t]);
  constexpr int kMaxSeg = 16;  // a chunk of 16 pixels has at most 16 runs
  for (int64_t j0 = j_begin; j0 < std::min(j_end, ohw); j0 += 16) {
    float* d = dst + ((j0 - j_begin) / 16) * kk * 16;
    const int32_t* o = seg_off + (j0 / 16) * nseg;
    const uint16_t* m = seg_mask + (j0 / 16) * nseg;
    // The chunk's runs (entries past the last have empty masks) and whether every 16-float read
    // of them stays inside [xg, xg + limit): then plain loads blended by the run masks, else
    // masked loads (which read nothing outside their lanes) merged with OR.
    int ns = 0;
    unsigned all = 0;
    bool fast = true;
    __m256i mk[kMaxSeg][2];
    for (int s = 0; s < nseg && s < kMaxSeg && m[s]; ++s, ++ns) {
      all |= m[s];
      fast = fast && o[s] >= 0 && o[s] + 16 + max_tap <= limit;
      mk[s][0] = half_mask(m[s], 0);
      mk[s][1] = half_mask(m[s], 1);
    }
    const __m256 keep0 = _mm256_castsi256_ps(half_mask(all, 0));
    const __m256 keep1 = _mm256_castsi256_ps(half_mask(all, 1));
    for (int64_t t = 0; t < kk; ++t) {
      const float* xt = xg + tap_off[t];
      __m256 v0, v1;
      if (fast) {
        v0 = _mm256_loadu_ps(xt + o[0]);
        v1 = _mm256_loadu_ps(xt + o[0] + 8);
        for (int s = 1; s < ns; ++s) {
          v0 = _mm256_blendv_ps(v0, _mm256_loadu_ps(xt + o[s]), _mm256_castsi256_ps(mk[s][0]));
          v1 = _mm256_blendv_ps(v1, _mm256_loadu_ps(xt + o[s] + 8), _mm256_castsi256_ps(mk[s][1]));
        }
        v0 = _mm256_and_ps(v0, keep0);
        v1 = _mm256_and_ps(v1, keep1);
      } else {
        v0 = v1 = _mm256_setzero_ps();
        for (int s = 0; s < ns; ++s) {
          v0 = _mm256_or_ps(v0, _mm256_maskload_ps(xt + o[s], mk[s][0]));
          v1 = _mm256_or_ps(v1, _mm256_maskload_ps(xt + o[s] + 8, mk[s][1]));
        }
      }
      _mm256_storeu_ps(d + t * 16, v0);
      _mm256_storeu_ps(d + t * 16 + 8, v1);
    }
  }
}

void conv_col2im_s1_avx2(float* dxg, const float* col, int64_t ld, int64_t cg, const DirectConvShape& s,
                         int64_t oh_begin, int64_t oh_end) {
  const int64_t hw = s.h * s.w;
  for (int64_t c = 0; c < cg; ++c) {
    float* xc = dxg + c * hw;
    for (int64_t kh = 0; kh < s.kh; ++kh) {
      for (int64_t kw = 0; kw < s.kw; ++kw) {
        const float* src = col + ((c * s.kh + kh) * s.kw + kw) * ld;
        // valid ow: 0 <= ow - pw + kw*dw < w
        const int64_t shift = kw * s.dw - s.pw;
        const int64_t ow_lo = std::max<int64_t>(0, -shift), ow_hi = std::min<int64_t>(s.ow, s.w - shift);
        const int64_t n = ow_hi - ow_lo;
        if (n <= 0) continue;
        for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
          const int64_t ih = oh * s.sh - s.ph + kh * s.dh;
          if (ih < 0 || ih >= s.h) continue;
          const float* sr = src + (oh - oh_begin) * s.ow + ow_lo;
          float* d = xc + ih * s.w + ow_lo + shift;
          int64_t i = 0;
          for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(d + i, _mm256_add_ps(_mm256_loadu_ps(d + i), _mm256_loadu_ps(sr + i)));
          if (i + 4 <= n) {
            _mm_storeu_ps(d + i, _mm_add_ps(_mm_loadu_ps(d + i), _mm_loadu_ps(sr + i)));
            i += 4;
          }
          for (; i < n; ++i) d[i] += sr[i];
        }
      }
    }
  }
}

}  // namespace tsm
