// AVX-512 helpers of conv2d.cpp (compiled with -mavx512f; called only when active_simd() says so):
//   * the direct backward-weight kernel for stride-1, unpadded convolutions with few taps per
//     output channel (Cg*KH*KW small: the first layer of a CNN), where the GEMM's n = Cg*KH*KW is
//     too narrow for the micro-kernel;
//   * a gather-based packer of im2col panels and a masked col2im, for the implicit GEMM.
#include <immintrin.h>

#include <algorithm>

#include "avx512_mask.h"
#include "conv_direct.h"

namespace tsm {
namespace {

// dw[o0 .. o0+OCB) for input channel c of the group, T = KH*KW taps:
//   dw[o][c][t] = sum_n sum_oh sum_ow dy[n][o][oh][ow] * x[n][c][oh + tap_h][ow + tap_w]
template <int OCB, int T>
void bwd_weight_block(float* dw, const float* dy, const float* x, int64_t nimg, int64_t o0,
                      int64_t cin, int64_t grp_c0, const DirectConvShape& s, const int64_t* offs) {
  __m512 acc[OCB][T];
  for (int o = 0; o < OCB; ++o)
    for (int t = 0; t < T; ++t) acc[o][t] = _mm512_setzero_ps();
  const int64_t ohw = s.oh * s.ow, hw = s.h * s.w;
  for (int64_t n = 0; n < nimg; ++n) {
    const float* dyn = dy + (n * s.oc + o0) * ohw;
    const float* xn = x + (n * s.c + grp_c0 + cin) * hw;
    for (int64_t oh = 0; oh < s.oh; ++oh) {
      for (int64_t ow = 0; ow < s.ow; ow += 16) {
        const __mmask16 m = tail_mask(s.ow - ow);
        __m512 d[OCB];
        for (int o = 0; o < OCB; ++o) d[o] = _mm512_maskz_loadu_ps(m, dyn + o * ohw + oh * s.ow + ow);
        const float* xr = xn + oh * s.w + ow;
        for (int t = 0; t < T; ++t) {
          const __m512 xv = _mm512_maskz_loadu_ps(m, xr + offs[t]);
          for (int o = 0; o < OCB; ++o) acc[o][t] = _mm512_fmadd_ps(d[o], xv, acc[o][t]);
        }
      }
    }
  }
  const int64_t cg = s.c / s.groups;
  for (int o = 0; o < OCB; ++o)
    for (int t = 0; t < T; ++t) dw[((o0 + o) * cg + cin) * T + t] = _mm512_reduce_add_ps(acc[o][t]);
}

template <int T>
void bwd_weight_taps(float* dw, const float* dy, const float* x, int64_t nimg, int64_t o, int64_t ocb,
                     int64_t cin, int64_t c0, const DirectConvShape& s, const int64_t* offs) {
  if (ocb == 2) bwd_weight_block<2, T>(dw, dy, x, nimg, o, cin, c0, s, offs);
  else bwd_weight_block<1, T>(dw, dy, x, nimg, o, cin, c0, s, offs);
}

}  // namespace

bool conv_direct_avx512_available() { return true; }

bool conv_direct_backward_weight_avx512(float* dw, const float* dy, const float* x, int64_t nimg,
                                        int64_t oc_begin, int64_t oc_end,
                                        const DirectConvShape& s) {
  const int64_t T = s.kh * s.kw;
  if (T > 9) return false;
  int64_t offs[9];
  for (int64_t kh = 0, t = 0; kh < s.kh; ++kh)
    for (int64_t kw = 0; kw < s.kw; ++kw, ++t) offs[t] = kh * s.dh * s.w + kw * s.dw;
  const int64_t cg = s.c / s.groups, ocg = s.oc / s.groups;
  for (int64_t o = oc_begin; o < oc_end;) {
    // a block of output channels within one group
    const int64_t grp = o / ocg;
    const int64_t ocb = std::min<int64_t>({2, oc_end - o, (grp + 1) * ocg - o});
    for (int64_t cin = 0; cin < cg; ++cin) {
      switch (T) {
        case 1: bwd_weight_taps<1>(dw, dy, x, nimg, o, ocb, cin, grp * cg, s, offs); break;
        case 2: bwd_weight_taps<2>(dw, dy, x, nimg, o, ocb, cin, grp * cg, s, offs); break;
        case 3: bwd_weight_taps<3>(dw, dy, x, nimg, o, ocb, cin, grp * cg, s, offs); break;
        case 4: bwd_weight_taps<4>(dw, dy, x, nimg, o, ocb, cin, grp * cg, s, offs); break;
        case 5: bwd_weight_taps<5>(dw, dy, x, nimg, o, ocb, cin, grp * cg, s, offs); break;
        case 6: bwd_weight_taps<6>(dw, dy, x, nimg, o, ocb, cin, grp * cg, s, offs); break;
        case 7: bwd_weight_taps<7>(dw, dy, x, nimg, o, ocb, cin, grp * cg, s, offs); break;
        case 8: bwd_weight_taps<8>(dw, dy, x, nimg, o, ocb, cin, grp * cg, s, offs); break;
        default: bwd_weight_taps<9>(dw, dy, x, nimg, o, ocb, cin, grp * cg, s, offs); break;
      }
    }
    o += ocb;
  }
  return true;
}

// Implicit-GEMM B panels for the forward pass without padding: B(t, q) = x[pix[q] + tap_off[t]],
// panels of 32 pixels (nr == 32), zero beyond ohw.
void conv_pack_b_gather_avx512(float* dst, const float* xg, const int64_t* tap_off, int64_t kk,
                               const int32_t* pix, int64_t ohw) {
  for (int64_t j0 = 0; j0 < ohw; j0 += 32) {
    float* d = dst + (j0 / 32) * kk * 32;
    const __mmask16 m0 = tail_mask(ohw - j0), m1 = tail_mask(std::max<int64_t>(0, ohw - j0 - 16));
    const __m512i i0 = _mm512_maskz_loadu_epi32(m0, pix + j0);
    const __m512i i1 = _mm512_maskz_loadu_epi32(m1, pix + j0 + 16);
    for (int64_t t = 0; t < kk; ++t) {
      const float* xt = xg + tap_off[t];
      const __m512 v0 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m0, i0, xt, 4);
      const __m512 v1 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m1, i1, xt, 4);
      _mm512_store_ps(d + t * 32, v0);
      _mm512_store_ps(d + t * 32 + 16, v1);
    }
  }
}

// Forward B panels from runs of consecutive pixels (stride_w 1, no padding): lanes of chunk ch
// (pixels 16*ch .. 16*ch+15) are filled by nseg masked loads, load s taking the lanes of
// seg_mask[ch*nseg + s] from xt + seg_off[ch*nseg + s] (+ lane). A run of pixels along a row reads
// consecutive input, so a 16-pixel chunk costs one load per image row it spans instead of a
// 16-element gather. Unused segment entries have mask 0 and load nothing.
void conv_pack_b_runs_avx512(float* dst, const float* xg, const int64_t* tap_off, int64_t kk,
                             const int32_t* seg_off, const uint16_t* seg_mask, int nseg,
                             int64_t ohw) {
  const int64_t nchunks = (ohw + 15) / 16;
  for (int64_t j0 = 0; j0 < ohw; j0 += 32) {
    float* d = dst + (j0 / 32) * kk * 32;
    const int64_t c0 = j0 / 16, c1 = c0 + 1;
    const int32_t* o0 = seg_off + c0 * nseg;
    const uint16_t* m0 = seg_mask + c0 * nseg;
    const bool has1 = c1 < nchunks;
    const int32_t* o1 = has1 ? seg_off + c1 * nseg : o0;
    const uint16_t* m1 = has1 ? seg_mask + c1 * nseg : m0;
    for (int64_t t = 0; t < kk; ++t) {
      const float* xt = xg + tap_off[t];
      // Zero-masking loads merged with OR (the masks are disjoint): a merge-masking load would
      // chain each load on the previous one, and runs 2x slower on Zen 5.
      __m512i v0 = _mm512_setzero_si512(), v1 = _mm512_setzero_si512();
      for (int sg = 0; sg < nseg; ++sg)
        v0 = _mm512_or_si512(v0, _mm512_maskz_loadu_epi32(m0[sg], xt + o0[sg]));
      if (has1)
        for (int sg = 0; sg < nseg; ++sg)
          v1 = _mm512_or_si512(v1, _mm512_maskz_loadu_epi32(m1[sg], xt + o1[sg]));
      _mm512_store_si512(d + t * 32, v0);
      _mm512_store_si512(d + t * 32 + 16, v1);
    }
  }
}

// Implicit-GEMM B panels for backward-weight without padding: B(q, t) = x[pix[q] + tap_off[t]],
// rows q at k-offset p0 of panels ktot long, panels of 32 taps, zero beyond kk.
void conv_pack_bt_gather_avx512(float* dst, const float* xg, const int32_t* tap_off32, int64_t kk,
                                const int64_t* pix, int64_t ohw, int64_t p0, int64_t ktot) {
  for (int64_t j0 = 0; j0 < kk; j0 += 32) {
    float* d = dst + (j0 / 32) * ktot * 32 + p0 * 32;
    const __mmask16 m0 = tail_mask(kk - j0), m1 = tail_mask(std::max<int64_t>(0, kk - j0 - 16));
    const __m512i i0 = _mm512_maskz_loadu_epi32(m0, tap_off32 + j0);
    const __m512i i1 = _mm512_maskz_loadu_epi32(m1, tap_off32 + j0 + 16);
    for (int64_t q = 0; q < ohw; ++q) {
      const float* xq = xg + pix[q];
      _mm512_store_ps(d + q * 32, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m0, i0, xq, 4));
      _mm512_store_ps(d + q * 32 + 16, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m1, i1, xq, 4));
    }
  }
}

// Valid output range [lo, hi) for input index o*s - p + off in [0, in).
inline void valid(int64_t out, int64_t st, int64_t p, int64_t off, int64_t in, int64_t* lo,
                  int64_t* hi) {
  const int64_t a = p - off;
  const int64_t l = a <= 0 ? 0 : (a + st - 1) / st;
  const int64_t b = in - 1 + p - off;
  const int64_t h = b < 0 ? 0 : b / st + 1;
  *lo = std::min(l, out);
  *hi = std::max(*lo, std::min(h, out));
}

// Lanes [a, b) of 16 (0 <= a, b <= 16).
inline __mmask16 lane_range(int64_t a, int64_t b) {
  a = std::max<int64_t>(0, std::min<int64_t>(16, a));
  b = std::max<int64_t>(a, std::min<int64_t>(16, b));
  return static_cast<__mmask16>(tail_mask(b) & ~tail_mask(a));
}

void conv_col2im_rows_avx512(float* dxg, const float* col, int64_t ld, int64_t cg,
                             const DirectConvShape& s) {
  const int64_t hw = s.h * s.w;
  for (int64_t c = 0; c < cg; ++c) {
    for (int64_t ih = 0; ih < s.h; ++ih) {
      float* drow = dxg + c * hw + ih * s.w;
      for (int64_t i0 = 0; i0 < s.w; i0 += 16) {
        __m512 v = _mm512_setzero_ps();
        for (int64_t kh = 0; kh < s.kh; ++kh) {
          const int64_t t = ih + s.ph - kh * s.dh;  // = oh * sh
          if (t < 0 || t % s.sh != 0) continue;
          const int64_t oh = t / s.sh;
          if (oh >= s.oh) continue;
          const float* rows = col + (c * s.kh + kh) * s.kw * ld + oh * s.ow;
          for (int64_t kw = 0; kw < s.kw; ++kw) {
            const int64_t shift = s.pw - kw * s.dw;  // ow = iw + shift
            // iw in [max(0, -shift), min(W, OW - shift)) reads a valid ow
            const int64_t lo = std::max<int64_t>(0, -shift);
            const int64_t hi = std::min<int64_t>(s.w, s.ow - shift);
            const __mmask16 m = lane_range(lo - i0, hi - i0);
            if (m == 0) continue;
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, rows + kw * ld + shift + i0));
          }
        }
        _mm512_mask_storeu_ps(drow + i0, tail_mask(s.w - i0), v);
      }
    }
  }
}

void conv_col2im_s1_avx512(float* dxg, const float* col, int64_t ld, int64_t cg,
                           const DirectConvShape& s) {
  const int64_t hw = s.h * s.w;
  for (int64_t i = 0; i < cg * hw; i += 16)
    _mm512_mask_storeu_ps(dxg + i, tail_mask(cg * hw - i), _mm512_setzero_ps());
  for (int64_t c = 0; c < cg; ++c) {
    float* xc = dxg + c * hw;
    for (int64_t kh = 0; kh < s.kh; ++kh) {
      int64_t oh_lo, oh_hi;
      valid(s.oh, s.sh, s.ph, kh * s.dh, s.h, &oh_lo, &oh_hi);
      for (int64_t kw = 0; kw < s.kw; ++kw) {
        const float* src = col + ((c * s.kh + kh) * s.kw + kw) * ld;
        int64_t ow_lo, ow_hi;
        valid(s.ow, 1, s.pw, kw * s.dw, s.w, &ow_lo, &ow_hi);
        const int64_t n = ow_hi - ow_lo;
        if (n <= 0) continue;
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          const float* sr = src + oh * s.ow + ow_lo;
          float* d = xc + (oh * s.sh - s.ph + kh * s.dh) * s.w - s.pw + kw * s.dw + ow_lo;
          int64_t i = 0;
          for (; i + 16 <= n; i += 16)
            _mm512_storeu_ps(d + i, _mm512_add_ps(_mm512_loadu_ps(d + i), _mm512_loadu_ps(sr + i)));
          if (i < n) {
            const __mmask16 m = tail_mask(n - i);
            _mm512_mask_storeu_ps(
                d + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + i), _mm512_maskz_loadu_ps(m, sr + i)));
          }
        }
      }
    }
  }
}

}  // namespace tsm
