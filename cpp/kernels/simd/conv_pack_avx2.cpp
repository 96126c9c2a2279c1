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
                           int64_t ohw, int64_t j_begin, int64_t j_end, int64_t limit, int64_t depth) {
  int64_t max_tap = 0;
  for (int64_t t = 0; t < kk; ++t) max_tap = std::max(max_tap, tap_off[t]);
  constexpr int kMaxSeg = 16;  // a chunk of 16 pixels has at most 16 runs
  for (int64_t j0 = j_begin; j0 < std::min(j_end, ohw); j0 += 16) {
    float* d = dst + ((j0 - j_begin) / 16) * depth * 16;
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
    for (int64_t t = kk; t < depth; ++t) {
      _mm256_storeu_ps(d + t * 16, _mm256_set1_ps(1.0f));
      _mm256_storeu_ps(d + t * 16 + 8, _mm256_set1_ps(1.0f));
    }
  }
}

namespace {

// Tap by tap: for every tap and output row, the col row added into its dx row (8, 4 and 1 floats).
void col2im_taps(float* dxg, const float* col, int64_t ld, int64_t cg, const DirectConvShape& s,
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

constexpr int64_t kMaxMasks = 64;  // (tap column, 8-float chunk) lane masks col2im_rows keeps

// dx row by dx row: each 8-float chunk of a dx row is loaded once, takes the contributions of
// every tap (kh, kw) whose output row lies in the band as masked loads of the col rows shifted by
// the tap's column offset, and is stored once. The taps reaching a dx row and the lane masks of a
// tap column are the same for every channel, so they are worked out once per row and per call.
// The caller keeps KW * ceil(W / 8) <= kMaxMasks.
void col2im_rows(float* dxg, const float* col, int64_t ld, int64_t cg, const DirectConvShape& s,
                 int64_t oh_begin, int64_t oh_end) {
  const int64_t hw = s.h * s.w, ntaps = s.kh * s.kw, nch = (s.w + 7) / 8;
  const float* group_end = dxg + cg * hw;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const auto lanes_below = [&](int64_t n) {  // the lanes l < n
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane);
  };
  // For each (kw, chunk): the lanes of the chunk at dx column iw0 = 8 * chunk that tap column kw
  // reaches (dx column iw takes col column ow = iw - shift, for 0 <= ow < OW and iw < W), and
  // whether they are none (0), all (1: plain loads) or some (2: masked loads).
  __m256i masks[kMaxMasks];
  unsigned char kind[kMaxMasks];
  for (int64_t kw = 0; kw < s.kw; ++kw) {
    const int64_t shift = kw * s.dw - s.pw;
    for (int64_t ch = 0; ch < nch; ++ch) {
      // lanes [lo, lo + OW) have a col column, lanes below W - 8 * chunk a dx column
      const int64_t lo = shift - ch * 8, hi = std::min(lo + s.ow, std::min<int64_t>(8, s.w - ch * 8));
      const __m256i m = _mm256_andnot_si256(lanes_below(lo), lanes_below(hi));
      masks[kw * nch + ch] = m;
      kind[kw * nch + ch] = _mm256_testz_si256(m, m) ? 0 : _mm256_testc_si256(m, _mm256_set1_epi32(-1)) ? 1 : 2;
    }
  }
  // dx rows that this band's output rows reach: ih = oh*sh - ph + kh*dh
  const int64_t ih_lo = std::max<int64_t>(0, oh_begin * s.sh - s.ph);
  const int64_t ih_hi = std::min<int64_t>(s.h, (oh_end - 1) * s.sh - s.ph + (s.kh - 1) * s.dh + 1);
  constexpr int64_t kMaxRows = 16;  // tap rows per pass over a dx row (one pass for KH <= 16)
  for (int64_t ih = ih_lo; ih < ih_hi; ++ih) {
    for (int64_t kh0 = 0; kh0 < s.kh; kh0 += kMaxRows) {
      // The band's col rows that reach dx row ih from tap rows [kh0, kh0 + kMaxRows), as offsets
      // of the pixel (oh, 0) of tap (kh, 0) in a channel's rows of col.
      int64_t src[kMaxRows];
      int nsrc = 0;
      for (int64_t kh = kh0; kh < std::min(s.kh, kh0 + kMaxRows); ++kh) {
        const int64_t t = ih + s.ph - kh * s.dh;
        if (t < 0 || t % s.sh != 0) continue;
        const int64_t oh = t / s.sh;
        if (oh < oh_begin || oh >= oh_end) continue;
        src[nsrc++] = kh * s.kw * ld + (oh - oh_begin) * s.ow;
      }
      if (nsrc == 0) continue;
      for (int64_t c = 0; c < cg; ++c) {
        float* drow = dxg + c * hw + ih * s.w;
        const float* colc = col + c * ntaps * ld;
        for (int64_t ch = 0, iw0 = 0; ch < nch; ++ch, iw0 += 8) {
          // A row's last chunk reads the floats after the row and writes them back unchanged,
          // except where they lie past the group (another task's dx): masked there.
          const bool partial = s.w - iw0 < 8 && drow + iw0 + 8 > group_end;
          const __m256i in_row = partial ? lanes_below(s.w - iw0) : _mm256_setzero_si256();
          __m256 acc = partial ? _mm256_maskload_ps(drow + iw0, in_row) : _mm256_loadu_ps(drow + iw0);
          for (int64_t kw = 0; kw < s.kw; ++kw) {
            const __m256i ok = masks[kw * nch + ch];
            const int k = kind[kw * nch + ch];
            if (k == 0) continue;
            const float* base = colc + kw * ld + iw0 - (kw * s.dw - s.pw);
            if (k == 1) {
              for (int q = 0; q < nsrc; ++q) acc = _mm256_add_ps(acc, _mm256_loadu_ps(base + src[q]));
            } else {
              for (int q = 0; q < nsrc; ++q) acc = _mm256_add_ps(acc, _mm256_maskload_ps(base + src[q], ok));
            }
          }
          if (partial) _mm256_maskstore_ps(drow + iw0, in_row, acc);
          else _mm256_storeu_ps(drow + iw0, acc);
        }
      }
    }
  }
}

}  // namespace

// Short rows (OW < 16) take col2im_rows: tap by tap, CNN conv2's 11-pixel rows are one 8-float and
// three single-float read-modify-writes of dx per tap and row, each tap one float over the last.
// Wider rows stay tap by tap, which measured faster there (32 channels of 28x28 with padding 1), as
// do kernels too wide for col2im_rows' table of lane masks.
void conv_col2im_s1_avx2(float* dxg, const float* col, int64_t ld, int64_t cg, const DirectConvShape& s,
                         int64_t oh_begin, int64_t oh_end) {
  if (s.ow < 16 && s.kw * ((s.w + 7) / 8) <= kMaxMasks) col2im_rows(dxg, col, ld, cg, s, oh_begin, oh_end);
  else col2im_taps(dxg, col, ld, cg, s, oh_begin, oh_end);
}

}  // namespace tsm
