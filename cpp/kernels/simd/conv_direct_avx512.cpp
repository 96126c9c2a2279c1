// AVX-512 helpers of conv2d.cpp (compiled with -mavx512f; called only when active_simd() says so):
//   * the direct backward-weight kernel for stride-1, unpadded convolutions with few taps per
//     output channel (Cg*KH*KW small: the first layer of a CNN), where the GEMM's n = Cg*KH*KW is
//     too narrow for the micro-kernel;
//   * the packers of im2col panels (runs of consecutive pixels, or gathers) and col2im, for the
//     implicit GEMM.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own avx512fintrin.h (the self-initialised `__Y` of the undefined-vector
// helpers the unpack and shuffle intrinsics use); nothing in this file reads an unset value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

#include "avx512_mask.h"
#include "avx512_transpose.h"
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
namespace {

// The runs of chunk ch whose 16-float reads stay inside [xg, xg + limit) for every tap offset in
// [0, max_tap] can be read with plain loads; the lanes outside a run's mask then hold neighbouring
// input values, which the blend drops.
inline bool chunk_in_bounds(const int32_t* o, const uint16_t* m, int nseg, int64_t max_tap,
                            int64_t limit) {
  for (int sg = 0; sg < nseg; ++sg)
    if (m[sg] && (o[sg] < 0 || o[sg] + 16 + max_tap > limit)) return false;
  return true;
}

// The 16 pixels of one chunk at tap offset xt. Fast form: plain loads blended by the run masks
// (a masked load issues at ~1 per 3 cycles on Zen 5, a plain load and a blend at 2+ per cycle);
// lanes in no run (past the last pixel) are zeroed. Safe form: zero-masking loads merged with OR
// (the masks are disjoint; a merge-masking load would chain each load on the previous one).
inline __m512 load_chunk(const float* xt, const int32_t* o, const uint16_t* m, int nseg, bool fast,
                         __mmask16 all) {
  if (fast) {
    __m512 v = _mm512_loadu_ps(xt + o[0]);
    for (int sg = 1; sg < nseg; ++sg) {
      __m512 w = _mm512_loadu_ps(xt + o[sg]);
      // Keep the load a plain one: GCC would otherwise fold load + blend into a merge-masking load,
      // which waits for v and issues as slowly as the masked loads this path avoids.
      __asm__("" : "+v"(w));
      v = _mm512_mask_blend_ps(m[sg], v, w);
    }
    return all == 0xFFFF ? v : _mm512_maskz_mov_ps(all, v);
  }
  __m512i v = _mm512_setzero_si512();
  for (int sg = 0; sg < nseg; ++sg) v = _mm512_or_si512(v, _mm512_maskz_loadu_epi32(m[sg], xt + o[sg]));
  return _mm512_castsi512_ps(v);
}

inline int64_t max_offset(const int64_t* tap_off, int64_t kk) {
  int64_t mx = 0;
  for (int64_t t = 0; t < kk; ++t) mx = std::max(mx, tap_off[t]);
  return mx;
}

inline __mmask16 union_mask(const uint16_t* m, int nseg) {
  unsigned u = 0;
  for (int sg = 0; sg < nseg; ++sg) u |= m[sg];
  return static_cast<__mmask16>(u);
}

}  // namespace

void conv_pack_b_runs_avx512(float* dst, const float* xg, const int64_t* tap_off, int64_t kk,
                             const int32_t* seg_off, const uint16_t* seg_mask, int nseg,
                             int64_t ohw, int64_t j_begin, int64_t j_end, int64_t limit) {
  const int64_t nchunks = (ohw + 15) / 16, max_tap = max_offset(tap_off, kk);
  for (int64_t j0 = j_begin; j0 < std::min(j_end, ohw); j0 += 32) {
    float* d = dst + ((j0 - j_begin) / 32) * kk * 32;
    const int64_t c0 = j0 / 16, c1 = c0 + 1;
    const bool has1 = c1 < nchunks;
    const int32_t* o0 = seg_off + c0 * nseg;
    const uint16_t* m0 = seg_mask + c0 * nseg;
    const int32_t* o1 = has1 ? seg_off + c1 * nseg : o0;
    const uint16_t* m1 = has1 ? seg_mask + c1 * nseg : m0;
    const bool f0 = chunk_in_bounds(o0, m0, nseg, max_tap, limit);
    const bool f1 = has1 && chunk_in_bounds(o1, m1, nseg, max_tap, limit);
    const __mmask16 a0 = union_mask(m0, nseg), a1 = union_mask(m1, nseg);
    for (int64_t t = 0; t < kk; ++t) {
      const float* xt = xg + tap_off[t];
      _mm512_store_ps(d + t * 32, load_chunk(xt, o0, m0, nseg, f0, a0));
      _mm512_store_ps(d + t * 32 + 16, has1 ? load_chunk(xt, o1, m1, nseg, f1, a1) : _mm512_setzero_ps());
    }
  }
}

void conv_pack_a_taps_avx512(float* dst, const float* xg, const int64_t* tap_off, int64_t kk,
                             const int32_t* seg_off, const uint16_t* seg_mask, int nseg,
                             int64_t ohw, int mr, bool ones, int64_t limit) {
  const int64_t nchunks = (ohw + 15) / 16, max_tap = max_offset(tap_off, kk);
  const __mmask16 rows = static_cast<__mmask16>((1u << mr) - 1u);
  for (int64_t ch = 0; ch < nchunks; ++ch) {
    const int32_t* o = seg_off + ch * nseg;
    const uint16_t* m = seg_mask + ch * nseg;
    const bool fast = chunk_in_bounds(o, m, nseg, max_tap, limit);
    const __mmask16 all = union_mask(m, nseg);
    __m512 r[16];  // taps x 16 pixels, transposed to 16 pixel rows of mr taps
    for (int i = 0; i < 16; ++i)
      r[i] = i < kk ? load_chunk(xg + tap_off[i], o, m, nseg, fast, all)
             : (ones && i == kk) ? _mm512_set1_ps(1.0f) : _mm512_setzero_ps();
    transpose16x16(r);
    const int64_t npix = std::min<int64_t>(16, ohw - ch * 16);
    float* d = dst + ch * 16 * mr;
    for (int64_t q = 0; q < npix; ++q) _mm512_mask_storeu_ps(d + q * mr, rows, r[q]);
  }
}

void conv_pixels_major_avx512(float* dst, const float* src, int64_t ld, int64_t nch, int64_t npix) {
  for (int64_t q0 = 0; q0 < npix; q0 += 16) {
    const int64_t n = std::min<int64_t>(16, npix - q0);
    const __mmask16 m = tail_mask(n);
    for (int64_t c0 = 0; c0 < nch; c0 += 16) {
      __m512 r[16];  // 16 channels x 16 pixels -> 16 pixels x 16 channels
      const float* s = src + c0 * ld + q0;
      for (int i = 0; i < 16; ++i)
        r[i] = n == 16 ? _mm512_loadu_ps(s + i * ld) : _mm512_maskz_loadu_ps(m, s + i * ld);
      transpose16x16(r);
      for (int64_t q = 0; q < n; ++q) _mm512_storeu_ps(dst + (q0 + q) * nch + c0, r[q]);
    }
  }
}

void conv_nhwc_group_avx512(float* xt, const float* xg, int64_t cg, int64_t h, int64_t w,
                            int64_t ph, int64_t pw) {
  const int64_t wp = w + 2 * pw;
  if (ph > 0 || pw > 0)
    for (int64_t i = 0, n = (h + 2 * ph) * wp * cg; i < n; ++i) xt[i] = 0.0f;
  for (int64_t ih = 0; ih < h; ++ih)
    conv_pixels_major_avx512(xt + ((ih + ph) * wp + pw) * cg, xg + ih * w, h * w, cg, w);
}

void conv_nchw_from_nhwc_avx512(float* dxg, const float* xt, int64_t cg, int64_t h, int64_t w,
                                int64_t ph, int64_t pw) {
  const int64_t wp = w + 2 * pw;
  for (int64_t ih = 0; ih < h; ++ih)
    conv_rows_store_avx512(dxg + ih * w, h * w, xt + ((ih + ph) * wp + pw) * cg, w, cg, nullptr);
}

void conv_pack_bt_nhwc_avx512(float* dst, const float* xt, int64_t cg, int64_t wp,
                              const DirectConvShape& s, int64_t p0, int64_t ktot) {
  const int64_t kk = cg * s.kh * s.kw, npanels = (kk + 31) / 32;
  for (int64_t panel = 0; panel < npanels; ++panel) {
    float* d = dst + panel * ktot * 32 + p0 * 32;
    int64_t off[2];  // offset of each 16-column half (tap kh, kw; channels c0..c0+15) in xt
    bool live[2];
    for (int hf = 0; hf < 2; ++hf) {
      const int64_t j0 = panel * 32 + hf * 16, tap = j0 / cg, c0 = j0 % cg;
      live[hf] = j0 < kk;
      off[hf] = live[hf] ? ((tap / s.kw) * s.dh * wp + (tap % s.kw) * s.dw) * cg + c0 : 0;
    }
    for (int64_t oh = 0, q = 0; oh < s.oh; ++oh) {
      const float* xrow = xt + oh * s.sh * wp * cg;
      for (int64_t ow = 0; ow < s.ow; ++ow, ++q) {
        const float* xq = xrow + ow * s.sw * cg;
        _mm512_store_ps(d + q * 32, live[0] ? _mm512_loadu_ps(xq + off[0]) : _mm512_setzero_ps());
        _mm512_store_ps(d + q * 32 + 16, live[1] ? _mm512_loadu_ps(xq + off[1]) : _mm512_setzero_ps());
      }
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

namespace {

// The step shared by the row tiles: acc (MR x 32) += a[0..MR) (broadcast) x (b0, b1).
template <int MR>
__attribute__((always_inline)) inline void tile_fma(__m512 (&acc)[MR][2], const float* a, __m512 b0,
                                                    __m512 b1) {
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    const __m512 ai = _mm512_set1_ps(a[i]);
    acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
    acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
  }
}

template <int MR>
__attribute__((always_inline)) inline void tile_store(const __m512 (&acc)[MR][2], float* c,
                                                      int64_t ldc) {
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc[i][0]);
    _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]);
  }
}

template <int MR>
void rows_tile(int64_t k, const float* x, const int32_t* koff, const float* b, float* c,
               int64_t ldc) {
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t p = 0; p < k; ++p) {
    tile_fma<MR>(acc, x + koff[p], _mm512_load_ps(b), _mm512_load_ps(b + 16));
    b += 32;
  }
  tile_store<MR>(acc, c, ldc);
}

// One dx row of the scatter backward-data: V = OW + 2 accumulators (16 channels each) for the
// full-correlation pixels x' = q + kw, every dy value q of a row scattered to its three pixels.
template <int OW>
void scatter3_row(int64_t nrows, const float* const* rows, int64_t ocg, int64_t ostride,
                  const float* b, float* c, int64_t ldc, int first, int width) {
  constexpr int V = OW + 2;
  __m512 acc[V];
#pragma GCC unroll 32
  for (int i = 0; i < V; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t r = 0; r < nrows; ++r) {
    const float* src = rows[r];
    for (int64_t o = 0; o < ocg; ++o, src += ostride, b += 48) {
      const __m512 w0 = _mm512_load_ps(b), w1 = _mm512_load_ps(b + 16), w2 = _mm512_load_ps(b + 32);
#pragma GCC unroll 32
      for (int q = 0; q < OW; ++q) {
        const __m512 v = _mm512_set1_ps(src[q]);
        acc[q] = _mm512_fmadd_ps(v, w0, acc[q]);
        acc[q + 1] = _mm512_fmadd_ps(v, w1, acc[q + 1]);
        acc[q + 2] = _mm512_fmadd_ps(v, w2, acc[q + 2]);
      }
    }
  }
  // Unrolled with a constant index, so that acc stays in registers.
#pragma GCC unroll 32
  for (int i = 0; i < V; ++i)
    if (i >= first && i < first + width) _mm512_storeu_ps(c + (i - first) * ldc, acc[i]);
}

// One tile of the row-wise backward-weight: C (MR output channels x 32 input channels of one tap)
// over the pixels of nrows output rows; B rows straight from the channels-last input.
template <int MR>
void bw_rows_tile(int64_t nrows, const int64_t* rowoff, int64_t ow, int64_t bstep, const float* b,
                  const float* a, int64_t lda, float* c, int64_t ldc, bool accumulate) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = accumulate ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
    acc[i][1] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t r = 0; r < nrows; ++r) {
    const float* bp = b + rowoff[r];
#pragma GCC unroll 2
    for (int64_t j = 0; j < ow; ++j, bp += bstep, a += lda)
      tile_fma<MR>(acc, a, _mm512_loadu_ps(bp), _mm512_loadu_ps(bp + 16));
  }
  tile_store<MR>(acc, c, ldc);
}

template <int... OWs>
bool scatter3_dispatch(int ow, int64_t nrows, const float* const* rows, int64_t ocg,
                       int64_t ostride, const float* b, float* c, int64_t ldc, int first,
                       int width) {
  bool done = false;
  ((ow == OWs ? (scatter3_row<OWs>(nrows, rows, ocg, ostride, b, c, ldc, first, width), done = true)
              : false),
   ...);
  return done;
}

}  // namespace

void conv_rows_tile_avx512(int mr, int64_t k, const float* x, const int32_t* koff, const float* b,
                           float* c, int64_t ldc) {
  switch (mr) {
    case 14: rows_tile<14>(k, x, koff, b, c, ldc); break;
    case 13: rows_tile<13>(k, x, koff, b, c, ldc); break;
    case 12: rows_tile<12>(k, x, koff, b, c, ldc); break;
    case 11: rows_tile<11>(k, x, koff, b, c, ldc); break;
    case 10: rows_tile<10>(k, x, koff, b, c, ldc); break;
    case 9: rows_tile<9>(k, x, koff, b, c, ldc); break;
    case 8: rows_tile<8>(k, x, koff, b, c, ldc); break;
    case 7: rows_tile<7>(k, x, koff, b, c, ldc); break;
    case 6: rows_tile<6>(k, x, koff, b, c, ldc); break;
    case 5: rows_tile<5>(k, x, koff, b, c, ldc); break;
    case 4: rows_tile<4>(k, x, koff, b, c, ldc); break;
    case 3: rows_tile<3>(k, x, koff, b, c, ldc); break;
    case 2: rows_tile<2>(k, x, koff, b, c, ldc); break;
    default: rows_tile<1>(k, x, koff, b, c, ldc); break;
  }
}

void conv_rows_store_avx512(float* y, int64_t ld, const float* ct, int64_t npix, int64_t ocg,
                            const float* bias) {
  for (int64_t q = 0; q < npix; q += 16) {
    const int64_t n = std::min<int64_t>(16, npix - q);
    const __mmask16 m = tail_mask(n);
    for (int64_t o0 = 0; o0 < ocg; o0 += 16) {
      __m512 r[16];  // 16 pixels x 16 channels -> 16 channels x 16 pixels
      for (int i = 0; i < 16; ++i)
        r[i] = i < n ? _mm512_loadu_ps(ct + (q + i) * ocg + o0) : _mm512_setzero_ps();
      transpose16x16(r);
      for (int i = 0; i < 16; ++i) {
        const __m512 v = bias ? _mm512_add_ps(r[i], _mm512_set1_ps(bias[o0 + i])) : r[i];
        _mm512_mask_storeu_ps(y + (o0 + i) * ld + q, m, v);
      }
    }
  }
}

bool conv_scatter3_row_avx512(int ow, int64_t nrows, const float* const* rows, int64_t ocg,
                               int64_t ostride, const float* b, float* c, int64_t ldc, int first,
                               int width) {
  return scatter3_dispatch<1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                           21, 22>(ow, nrows, rows, ocg, ostride, b, c, ldc, first, width);
}

void conv_bw_rows_tile_avx512(int mr, int64_t nrows, const int64_t* rowoff, int64_t ow,
                              int64_t bstep, const float* b, const float* a, int64_t lda, float* c,
                              int64_t ldc, bool accumulate) {
  switch (mr) {
    case 12: bw_rows_tile<12>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    case 11: bw_rows_tile<11>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    case 10: bw_rows_tile<10>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    case 9: bw_rows_tile<9>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    case 8: bw_rows_tile<8>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    case 7: bw_rows_tile<7>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    case 6: bw_rows_tile<6>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    case 5: bw_rows_tile<5>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    case 4: bw_rows_tile<4>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    case 3: bw_rows_tile<3>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    case 2: bw_rows_tile<2>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
    default: bw_rows_tile<1>(nrows, rowoff, ow, bstep, b, a, lda, c, ldc, accumulate); break;
  }
}

}  // namespace tsm
