// 2-D convolution, float32, contiguous NCHW, forward and backward (PyTorch semantics).
//
//   x    (N, C, H, W)              input
//   w    (OC, C/G, KH, KW)         weights, G = groups
//   bias (OC)                      optional
//   y    (N, OC, OH, OW)           output, OH = (H + 2*PH - DH*(KH-1) - 1) / SH + 1
//
// Algorithms:
//   * general: im2col + SGEMM per (image, group). For one group g of image n,
//       col (Cg*KH*KW, OH*OW)       = im2col(x[n, g])
//       y[n, g]   (OCg, OH*OW)      = w[g] (OCg, Cg*KH*KW) * col          (+ bias)
//       col       (Cg*KH*KW, OH*OW) = w[g]^T * dy[n, g];  dx[n, g] = col2im(col)
//       dw[g]     (OCg, Cg*KH*KW)  += dy[n, g] (OCg, OH*OW) * col^T
//     When there are enough (image, group) pairs, they are spread over the thread pool and each
//     GEMM runs serially on its thread; otherwise the GEMM itself is threaded.
//     A 1x1 kernel with stride 1 and no padding uses x (or dx) as col directly.
//   * direct (AVX-512, see simd/conv_direct_avx512.cpp): stride-1 convolutions with a small
//     reduction Cg*KH*KW (the first layer of a CNN, C = 1), where the GEMM's k is too short.
//   * with enough (image, group) pairs on AVX-512, each pass picks the first that applies:
//       forward:         row-wise tiles (forward_rows) > implicit GEMM (im2col fused into packing)
//       backward-data:   scatter rows (backward_data_scatter) > row-wise tiles > channels-last GEMM
//                        > implicit GEMM
//       backward-weight: few taps > direct > row-wise tiles (backward_weight_rows) > implicit GEMM
//     Each says at its definition when it applies and why it wins there.
//   * on AVX2 (the 6x16 kernel), the implicit GEMM with its own pieces: pixel runs packed with
//     blended loads (forward, stride_w 1, padding through a zero-bordered copy), col2im by vector
//     adds (backward-data, stride_w 1), channels-last panels (backward-weight, Cg % 16 == 0; the
//     portable form also serves NEON's 12-column panels). 3-wide kernels with stride 1 take their
//     own register-blocked kernels: forward (OCg % 8 == 0, Cg >= 8) and backward-data (Cg % 8 ==
//     0) as scatters of rows (scatter_rows_avx2), backward-weight over rows of 24+ pixels
//     (backward_weight_bw3_avx2); other stride-1 backward-data with Cg >= 64 is the forward of dy
//     with the flipped kernel (backward_data_flipped).
#include <algorithm>
#include <cstring>
#include <vector>

#include "../runtime/runtime.h"
#include "kernels.h"
#include "simd/conv_direct.h"
#include "simd/gemm_pack.h"
#include "simd/gemm_ukernel.h"

namespace tsm {

#if !(defined(__x86_64__) || defined(_M_X64))
// The AVX-512 helpers are x86-only; elsewhere conv_direct_avx512_available() is false and the
// others are never called.
bool conv_direct_avx512_available() { return false; }
bool conv_direct_backward_weight_avx512(float*, const float*, const float*, int64_t, int64_t,
                                        int64_t, const DirectConvShape&) { return false; }
void conv_pack_b_gather_avx512(float*, const float*, const int64_t*, int64_t, const int32_t*,
                               int64_t) {}
void conv_pack_bt_gather_avx512(float*, const float*, const int32_t*, int64_t, const int64_t*,
                                int64_t, int64_t, int64_t) {}
void conv_col2im_s1_avx512(float*, const float*, int64_t, int64_t, const DirectConvShape&) {}
void conv_pack_b_runs_avx512(float*, const float*, const int64_t*, int64_t, const int32_t*,
                             const uint16_t*, int, int64_t, int64_t, int64_t, int64_t) {}
void conv_nhwc_group_avx512(float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t) {}
void conv_nchw_from_nhwc_avx512(float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t) {}
void conv_pack_a_taps_avx512(float*, const float*, const int64_t*, int64_t, const int32_t*,
                             const uint16_t*, int, int64_t, int, bool, int64_t) {}
void conv_pack_bt_nhwc_avx512(float*, const float*, int64_t, int64_t, const DirectConvShape&,
                              int64_t, int64_t) {}
void conv_col2im_rows_avx512(float*, const float*, int64_t, int64_t, const DirectConvShape&) {}
void conv_rows_tile_avx512(int, int64_t, const float*, const int32_t*, const float*, float*, int64_t) {}
void conv_rows_store_avx512(float*, int64_t, const float*, int64_t, int64_t, const float*) {}
bool conv_scatter3_row_avx512(int, int64_t, const float* const*, int64_t, int64_t, const float*,
                              float*, int64_t, int, int) { return false; }
void conv_pixels_major_avx512(float*, const float*, int64_t, int64_t, int64_t) {}
void conv_bw_rows_tile_avx512(int, int64_t, const int64_t*, int64_t, int64_t, const float*,
                              const float*, int64_t, float*, int64_t, bool) {}
void conv_pack_b_runs_avx2(float*, const float*, const int64_t*, int64_t, const int32_t*,
                           const uint16_t*, int, int64_t, int64_t, int64_t, int64_t, int64_t) {}
void conv_col2im_s1_avx2(float*, const float*, int64_t, int64_t, const DirectConvShape&, int64_t, int64_t) {}
void conv_scatter3_row_avx2(int, int64_t, const float* const*, int64_t, int64_t, const float*,
                            const float*, float*, int64_t, int, int) {}
void conv_bw3_channel_avx2(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, int64_t, int, int,
                           float*) {}
void conv_dy_rows8_avx2(float*, int64_t, const float*, int64_t, int64_t, int64_t) {}
#endif

namespace {

struct ConvGeom {
  int64_t n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, g;
  int64_t oh, ow;
  int64_t cg, ocg, kk;  // channels per group, out channels per group, Cg*KH*KW
  int64_t hw() const { return h * w; }
  int64_t ohw() const { return oh * ow; }
  bool pointwise() const {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
  }
};

constexpr int64_t kMaxDim = int64_t(1) << 40;

tsm_status make_geom(const char* op, const tsm_conv2d_desc* d, ConvGeom* g) {
  if (!d) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: descriptor is NULL", op);
  struct Field { const char* name; int64_t v; int64_t min; };
  const Field fields[] = {
      {"n", d->n, 1},          {"c", d->c, 1},           {"h", d->h, 1},
      {"w", d->w, 1},          {"oc", d->oc, 1},         {"kh", d->kh, 1},
      {"kw", d->kw, 1},        {"stride_h", d->stride_h, 1}, {"stride_w", d->stride_w, 1},
      {"pad_h", d->pad_h, 0},  {"pad_w", d->pad_w, 0},   {"dil_h", d->dil_h, 1},
      {"dil_w", d->dil_w, 1},  {"groups", d->groups, 1}};
  for (const Field& f : fields) {
    if (f.v < f.min)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s must be >= %lld, got %lld", op, f.name,
                  (long long)f.min, (long long)f.v);
    if (f.v > kMaxDim)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s = %lld is too large", op, f.name,
                  (long long)f.v);
  }
  if (d->c % d->groups)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: c = %lld is not divisible by groups = %lld", op,
                (long long)d->c, (long long)d->groups);
  if (d->oc % d->groups)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: oc = %lld is not divisible by groups = %lld", op,
                (long long)d->oc, (long long)d->groups);
  const int64_t eh = d->dil_h * (d->kh - 1) + 1, ew = d->dil_w * (d->kw - 1) + 1;
  const int64_t hp = d->h + 2 * d->pad_h, wp = d->w + 2 * d->pad_w;
  if (hp < eh || wp < ew)
    return fail(TSM_ERR_INVALID_ARGUMENT,
                "%s: the dilated kernel (%lld x %lld) is larger than the padded input "
                "(%lld x %lld); output size would be < 1",
                op, (long long)eh, (long long)ew, (long long)hp, (long long)wp);
  *g = ConvGeom{d->n,     d->c,     d->h,     d->w,     d->oc,    d->kh,    d->kw,     d->stride_h,
                d->stride_w, d->pad_h, d->pad_w, d->dil_h, d->dil_w, d->groups, 0, 0, 0, 0, 0};
  g->oh = (hp - eh) / d->stride_h + 1;
  g->ow = (wp - ew) / d->stride_w + 1;
  g->cg = d->c / d->groups;
  g->ocg = d->oc / d->groups;
  g->kk = g->cg * g->kh * g->kw;
  return TSM_OK;
}

// Valid output columns [lo, hi) for input column iw = ow*s - p + off in [0, w).
inline void valid_range(int64_t out, int64_t s, int64_t p, int64_t off, int64_t in, int64_t* lo,
                        int64_t* hi) {
  // ow*s - p + off >= 0  <=>  ow >= ceil((p - off) / s)
  const int64_t a = p - off;
  int64_t l = a <= 0 ? 0 : (a + s - 1) / s;
  // ow*s - p + off <= in - 1  <=>  ow <= floor((in - 1 + p - off) / s)
  const int64_t b = in - 1 + p - off;
  int64_t h = b < 0 ? 0 : b / s + 1;
  *lo = std::min(l, out);
  *hi = std::max(*lo, std::min(h, out));
}

// col (Cg*KH*KW, OH*OW) from one group of one image xg (Cg, H, W).
void im2col(float* col, const float* xg, const ConvGeom& g) {
  const int64_t ohw = g.ohw();
  for (int64_t c = 0; c < g.cg; ++c) {
    const float* xc = xg + c * g.hw();
    for (int64_t kh = 0; kh < g.kh; ++kh) {
      int64_t oh_lo, oh_hi;
      valid_range(g.oh, g.sh, g.ph, kh * g.dh, g.h, &oh_lo, &oh_hi);
      for (int64_t kw = 0; kw < g.kw; ++kw) {
        float* dst = col + ((c * g.kh + kh) * g.kw + kw) * ohw;
        int64_t ow_lo, ow_hi;
        valid_range(g.ow, g.sw, g.pw, kw * g.dw, g.w, &ow_lo, &ow_hi);
        std::memset(dst, 0, sizeof(float) * oh_lo * g.ow);
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          float* d = dst + oh * g.ow;
          const float* src = xc + (oh * g.sh - g.ph + kh * g.dh) * g.w - g.pw + kw * g.dw;
          for (int64_t ow = 0; ow < ow_lo; ++ow) d[ow] = 0.0f;
          if (g.sw == 1) {
            std::memcpy(d + ow_lo, src + ow_lo, sizeof(float) * (ow_hi - ow_lo));
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) d[ow] = src[ow * g.sw];
          }
          for (int64_t ow = ow_hi; ow < g.ow; ++ow) d[ow] = 0.0f;
        }
        std::memset(dst + oh_hi * g.ow, 0, sizeof(float) * (g.oh - oh_hi) * g.ow);
      }
    }
  }
}

// dxg (Cg, H, W) = col2im(col (Cg*KH*KW, OH*OW)); dxg is overwritten.
void col2im(float* dxg, const float* col, const ConvGeom& g, int64_t ld) {
  const int64_t ohw = ld;
  std::memset(dxg, 0, sizeof(float) * g.cg * g.hw());
  for (int64_t c = 0; c < g.cg; ++c) {
    float* xc = dxg + c * g.hw();
    for (int64_t kh = 0; kh < g.kh; ++kh) {
      int64_t oh_lo, oh_hi;
      valid_range(g.oh, g.sh, g.ph, kh * g.dh, g.h, &oh_lo, &oh_hi);
      for (int64_t kw = 0; kw < g.kw; ++kw) {
        const float* srcc = col + ((c * g.kh + kh) * g.kw + kw) * ohw;
        int64_t ow_lo, ow_hi;
        valid_range(g.ow, g.sw, g.pw, kw * g.dw, g.w, &ow_lo, &ow_hi);
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          const float* s = srcc + oh * g.ow;
          float* d = xc + (oh * g.sh - g.ph + kh * g.dh) * g.w - g.pw + kw * g.dw;
          if (g.sw == 1) {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) d[ow] += s[ow];
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) d[ow * g.sw] += s[ow];
          }
        }
      }
    }
  }
}

// Whether to spread (image, group) pairs over the pool with serial GEMMs inside.
bool spread_tasks(const ConvGeom& g) {
  const int nt = num_threads();
  return nt > 1 && g.n * g.g >= 2 * nt;
}

bool avx512_helpers(const ConvGeom& g) {
  return active_simd() == TSM_SIMD_AVX512 && conv_direct_avx512_available() &&
         gemm_ukernel_for(TSM_SIMD_AVX512).nr == 32 && g.cg * g.hw() < (int64_t(1) << 31);
}

// The direct backward-weight kernel: stride 1, no padding, few taps.
bool use_direct_bwd_weight(const ConvGeom& g) {
  return avx512_helpers(g) && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 &&
         g.kh * g.kw <= 9 && g.kk <= 32;
}

DirectConvShape direct_shape(const ConvGeom& g) {
  return DirectConvShape{g.c,  g.h,  g.w,  g.oc, g.kh, g.kw, g.sh, g.sw,
                         g.ph, g.pw, g.dh, g.dw, g.g,  g.oh, g.ow};
}

// ---- implicit GEMM: the SGEMM micro-kernel fed by conv-aware packing ----
// The packed operands have the micro-kernel's layout (A: MR-row panels [panel][p][i]; B: NR-column
// panels [panel][p][j], zero-padded), so im2col is fused into the packing of B, and the GEMM's
// tiles are all full (C goes to a padded per-thread tile buffer, then to its place).
inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }


// Taps (c, kh, kw) of one group and output pixels (oh, ow) as offsets into an image's group.
struct ImplicitTables {
  std::vector<int64_t> tap_off, tap_h, tap_w;  // c*H*W + kh*dh*W + kw*dw, kh*dh, kw*dw
  std::vector<int64_t> pix_h, pix_w;           // oh*sh - ph, ow*sw - pw
  bool no_pad;
  explicit ImplicitTables(const ConvGeom& g) {
    tap_off.resize(g.kk); tap_h.resize(g.kk); tap_w.resize(g.kk);
    for (int64_t c = 0, t = 0; c < g.cg; ++c)
      for (int64_t kh = 0; kh < g.kh; ++kh)
        for (int64_t kw = 0; kw < g.kw; ++kw, ++t) {
          tap_h[t] = kh * g.dh;
          tap_w[t] = kw * g.dw;
          tap_off[t] = c * g.hw() + tap_h[t] * g.w + tap_w[t];
        }
    pix_h.resize(g.ohw()); pix_w.resize(g.ohw());
    for (int64_t oh = 0, q = 0; oh < g.oh; ++oh)
      for (int64_t ow = 0; ow < g.ow; ++ow, ++q) {
        pix_h[q] = oh * g.sh - g.ph;
        pix_w[q] = ow * g.sw - g.pw;
      }
    no_pad = g.ph == 0 && g.pw == 0;
  }
  // x value of tap t at pixel q in group image xg (0 in the padding)
  inline float at(const float* xg, const ConvGeom& g, int64_t t, int64_t q) const {
    const int64_t ih = pix_h[q] + tap_h[t], iw = pix_w[q] + tap_w[t];
    if (static_cast<uint64_t>(ih) >= static_cast<uint64_t>(g.h) ||
        static_cast<uint64_t>(iw) >= static_cast<uint64_t>(g.w))
      return 0.0f;
    return xg[ih * g.w + iw + tap_off[t] - tap_h[t] * g.w - tap_w[t]];
  }
};

// A panels of a row-major rows x k matrix a (A(i,p) = a[i*lda + p], or a[p*lda + i] when trans),
// written at k-offset p0 of panels that are ktot long.
void pack_a_rows(float* dst, const float* a, int64_t lda, bool trans, int64_t rows, int64_t k,
                 int64_t p0, int64_t ktot, int mr) {
  for (int64_t ir = 0; ir < rows; ir += mr) {
    float* d = dst + (ir / mr) * ktot * mr + p0 * mr;
    const int64_t r = std::min<int64_t>(mr, rows - ir);
    if (!trans) {
      pack_a_panel(d, a + ir * lda, lda, r, k, mr);  // register transposes where the ISA has them
      continue;
    }
    for (int64_t p = 0; p < k; ++p)
      for (int64_t i = 0; i < r; ++i) d[p * mr + i] = a[p * lda + ir + i];
    for (int64_t i = r; i < mr; ++i)
      for (int64_t p = 0; p < k; ++p) d[p * mr + i] = 0.0f;
  }
}

// Forward B: B(t, q) = x tap t at pixel q; K = kk, panels over pixels.
void pack_b_im2col(float* dst, const float* xg, const ConvGeom& g, const ImplicitTables& tb,
                   int nr) {
  const int64_t ohw = g.ohw(), kk = g.kk;
  for (int64_t j0 = 0; j0 < ohw; j0 += nr) {
    float* d = dst + (j0 / nr) * kk * nr;
    const int64_t cols = std::min<int64_t>(nr, ohw - j0);
    if (tb.no_pad) {
      int64_t base[64];
      for (int64_t jj = 0; jj < cols; ++jj) base[jj] = tb.pix_h[j0 + jj] * g.w + tb.pix_w[j0 + jj];
      for (int64_t t = 0; t < kk; ++t) {
        const float* xt = xg + tb.tap_off[t];
        float* row = d + t * nr;
        for (int64_t jj = 0; jj < cols; ++jj) row[jj] = xt[base[jj]];
        for (int64_t jj = cols; jj < nr; ++jj) row[jj] = 0.0f;
      }
    } else {
      for (int64_t t = 0; t < kk; ++t) {
        float* row = d + t * nr;
        for (int64_t jj = 0; jj < cols; ++jj) row[jj] = tb.at(xg, g, t, j0 + jj);
        for (int64_t jj = cols; jj < nr; ++jj) row[jj] = 0.0f;
      }
    }
  }
}

// Backward-weight B: B(q, t) = x tap t at pixel q, rows at k-offset p0 of ktot; panels over taps.
void pack_b_im2col_t(float* dst, const float* xg, const ConvGeom& g, const ImplicitTables& tb,
                     int64_t p0, int64_t ktot, int nr) {
  const int64_t ohw = g.ohw(), kk = g.kk;
  for (int64_t j0 = 0; j0 < kk; j0 += nr) {
    float* d = dst + (j0 / nr) * ktot * nr + p0 * nr;
    const int64_t cols = std::min<int64_t>(nr, kk - j0);
    for (int64_t q = 0; q < ohw; ++q) {
      float* row = d + q * nr;
      if (tb.no_pad) {
        const float* xq = xg + tb.pix_h[q] * g.w + tb.pix_w[q];
        for (int64_t jj = 0; jj < cols; ++jj) row[jj] = xq[tb.tap_off[j0 + jj]];
      } else {
        for (int64_t jj = 0; jj < cols; ++jj) row[jj] = tb.at(xg, g, j0 + jj, q);
      }
      for (int64_t jj = cols; jj < nr; ++jj) row[jj] = 0.0f;
    }
  }
}

// Backward-data B: B(o, q) = dy[o*ohw + q]; K = ocg, panels over pixels.
void pack_b_rows(float* dst, const float* b, int64_t k, int64_t n, int64_t ldb, int nr) {
  for (int64_t j0 = 0; j0 < n; j0 += nr) {
    float* d = dst + (j0 / nr) * k * nr;
    const int64_t cols = std::min<int64_t>(nr, n - j0);
    if (cols == 16 && nr == 16) {  // constant-size copies for the AVX2 kernel's full panels
      for (int64_t p = 0; p < k; ++p) std::memcpy(d + p * 16, b + p * ldb + j0, sizeof(float) * 16);
      continue;
    }
    if (cols == 32 && nr == 32) {
      for (int64_t p = 0; p < k; ++p) std::memcpy(d + p * 32, b + p * ldb + j0, sizeof(float) * 32);
      continue;
    }
    for (int64_t p = 0; p < k; ++p) {
      const float* src = b + p * ldb + j0;
      float* row = d + p * nr;
      for (int64_t jj = 0; jj < cols; ++jj) row[jj] = src[jj];
      for (int64_t jj = cols; jj < nr; ++jj) row[jj] = 0.0f;
    }
  }
}

// C (mpad x npad, ld npad) = Apack (mpad x k) * Bpack (k x npad), all tiles full. (Splitting k
// into L1-sized steps was measured slower: the resnet layer's forward 8.1 -> 9.1 ms.)
void run_tiles(const GemmUkernel& uk, float* c, const float* ap, const float* bp, int64_t mpad,
               int64_t npad, int64_t k, float beta) {
  for (int64_t j0 = 0; j0 < npad; j0 += uk.nr)
    for (int64_t i0 = 0; i0 < mpad; i0 += uk.mr)
      uk.fn(k, ap + i0 * k, bp + j0 * k, c + i0 * npad + j0, npad, 1.0f, beta);
}

// The tables of conv_pack_b_runs_avx512: the runs of consecutive input offsets pix[q] in each
// chunk of 16 pixels. Entry s of chunk ch reads the lanes of mask[ch * nseg + s] from
// off[ch * nseg + s] + lane; chunks with fewer than nseg runs are padded with empty masks.
struct PixelRuns {
  std::vector<int32_t> off;
  std::vector<uint16_t> mask;
  int nseg = 0;
  PixelRuns() = default;
  explicit PixelRuns(const std::vector<int32_t>& pix) {
    const int64_t npix = static_cast<int64_t>(pix.size()), nchunks = (npix + 15) / 16;
    // a run starts at a chunk's first pixel and wherever the offsets stop being consecutive
    auto starts = [&](int64_t q) { return q % 16 == 0 || pix[q] != pix[q - 1] + 1; };
    for (int64_t ch = 0; ch < nchunks; ++ch) {
      int count = 0;
      for (int64_t q = ch * 16; q < std::min(npix, ch * 16 + 16); ++q) count += starts(q);
      nseg = std::max(nseg, count);
    }
    off.assign(nchunks * nseg, 0);
    mask.assign(nchunks * nseg, 0);
    for (int64_t ch = 0; ch < nchunks; ++ch) {
      int64_t e = ch * nseg - 1;  // the current run's entry
      for (int64_t q = ch * 16; q < std::min(npix, ch * 16 + 16); ++q) {
        const int lane = static_cast<int>(q - ch * 16);
        if (starts(q)) off[++e] = pix[q] - lane;
        mask[e] = static_cast<uint16_t>(mask[e] | (1u << lane));
      }
    }
  }
};

// Padded copies: a padded convolution reads its input through a copy of each image's group with
// the zeros written out, so the packers can take the fast unpadded paths (runs of pixels or
// gathers) instead of a bounds check per element. The copy is Cg*(H+2PH)*(W+2PW) floats against
// the Cg*KH*KW*OH*OW of the packed panels.
ConvGeom padded_geom(const ConvGeom& g) {
  ConvGeom p = g;
  p.h = g.h + 2 * g.ph;
  p.w = g.w + 2 * g.pw;
  p.ph = p.pw = 0;
  return p;
}

// The AVX2 pieces (conv_pack_b_runs_avx2, conv_col2im_s1_avx2): stride_w 1, the input read through
// a padded copy when there is padding. The callers also check that their kernel's panels are 16 wide.
bool avx2_runs(const ConvGeom& g) {
#if defined(__x86_64__) || defined(_M_X64)
  return active_simd() == TSM_SIMD_AVX2 && g.sw == 1 && g.cg * g.hw() < (int64_t(1) << 31);
#else
  (void)g;
  return false;
#endif
}

bool use_pre_pad(const ConvGeom& g) {
  return (g.ph > 0 || g.pw > 0) && avx512_helpers(padded_geom(g));
}

// dst (Cg, H+2PH, W+2PW) = xg (Cg, H, W) with zero borders. Per channel: one fill for the top
// rows and the first row's left border, then per row the copy and one fill for its right border
// with the next row's left one (the last row's with the bottom rows): two library calls per row,
// which is what these small images cost (a third call per row was 6% of conv2's backward-data).
void pad_group(float* dst, const float* xg, const ConvGeom& g) {
  const int64_t pw = g.w + 2 * g.pw, ph = g.h + 2 * g.ph;
  for (int64_t c = 0; c < g.cg; ++c) {
    float* d = dst + c * ph * pw;
    const float* sc = xg + c * g.hw();
    if (g.h == 0) {  // all border
      std::memset(d, 0, sizeof(float) * ph * pw);
      continue;
    }
    std::memset(d, 0, sizeof(float) * (g.ph * pw + g.pw));
    d += g.ph * pw + g.pw;
    for (int64_t h = 0; h < g.h; ++h, d += pw) {
      std::memcpy(d, sc + h * g.w, sizeof(float) * g.w);
      const int64_t gap = h + 1 < g.h ? 2 * g.pw : g.pw + g.ph * pw;
      std::memset(d + g.w, 0, sizeof(float) * gap);
    }
  }
}

// xg padded by pad_group into this thread's scratch slot 0; nullptr when it cannot be allocated.
const float* padded_group(const float* xg, const ConvGeom& g) {
  float* buf = scratch(0, static_cast<size_t>(g.cg * (g.h + 2 * g.ph) * (g.w + 2 * g.pw)));
  if (buf) pad_group(buf, xg, g);
  return buf;
}

bool use_implicit(const ConvGeom& g) {
  return g.kk <= 4096 && (num_threads() == 1 || spread_tasks(g));
}

constexpr int64_t kRunsChunk = 128;  // pixels packed per step by the forward's runs packer

tsm_status forward_implicit(float* y, const float* x, const float* w, const float* bias,
                            const ConvGeom& g) {
  const GemmUkernel& uk = gemm_ukernel_for_rows(active_simd(), g.ocg);
  const int64_t ohw = g.ohw(), kk = g.kk;
  const int64_t mpad = round_up(g.ocg, uk.mr), npad = round_up(ohw, uk.nr);
  const bool runs2 = uk.nr == 16 && avx2_runs(padded_geom(g));
  // On AVX2 the kernel writes y itself (no C tile copied out after), the bias as one more row of
  // the reduction (a column of A, a row of ones in B): depth kk + 1.
  const int64_t depth = kk + (runs2 && bias ? 1 : 0);
  float* apack = static_cast<float*>(aligned_malloc(sizeof(float) * g.g * mpad * depth));
  if (!apack) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_forward: out of memory");
  for (int64_t grp = 0; grp < g.g; ++grp) {
    pack_a_rows(apack + grp * mpad * depth, w + grp * g.ocg * kk, kk, false, g.ocg, kk, 0, depth, uk.mr);
    if (depth > kk) pack_a_rows(apack + grp * mpad * depth, bias + grp * g.ocg, 1, false, g.ocg, 1, kk, depth, uk.mr);
  }
  const bool pre_pad = use_pre_pad(g) || (runs2 && (g.ph > 0 || g.pw > 0));
  const ConvGeom gp = pre_pad ? padded_geom(g) : g;  // the geometry the packer sees
  const ImplicitTables tb(gp);
  const bool gather = tb.no_pad && avx512_helpers(gp);
  std::vector<int32_t> pix32(gather || runs2 ? ohw : 0);
  for (int64_t q = 0; q < static_cast<int64_t>(pix32.size()); ++q)
    pix32[q] = static_cast<int32_t>(tb.pix_h[q] * gp.w + tb.pix_w[q]);
  // With stride_w 1, pixels along an output row read consecutive input: chunks of 16 pixels are
  // packed with one masked load per run of consecutive offsets instead of a gather (AVX-512), or
  // with plain loads blended by run (AVX2: the element-wise packer had 18% of the CNN conv2's
  // forward there).
  const bool runs = (gather && g.sw == 1) || runs2;
  const PixelRuns pr = runs ? PixelRuns(pix32) : PixelRuns();
  bool oom = false;
  parallel_for(g.n * g.g, [&](int64_t task) {
    const int64_t n = task / g.g, grp = task % g.g;
    float* bpack = scratch(2, static_cast<size_t>(depth * (runs2 ? kRunsChunk : npad)));
    float* ctile = scratch(3, static_cast<size_t>(runs2 ? uk.mr * uk.nr : mpad * npad));
    if (!bpack || !ctile) { oom = true; return; }
    const float* xg = x + (n * g.c + grp * g.cg) * g.hw();
    if (pre_pad) {
      xg = padded_group(xg, g);
      if (!xg) { oom = true; return; }
    }
    const float* ap = apack + grp * mpad * depth;
    float* yg = y + (n * g.oc + grp * g.ocg) * ohw;
    if (runs2) {
      // Panels of up to kRunsChunk pixels packed, then multiplied while in L1/L2, each tile stored
      // into y: whole tiles directly, edge tiles (past OCg or the last pixel) through ctile.
      for (int64_t jb = 0; jb < npad; jb += kRunsChunk) {
        const int64_t je = std::min(npad, jb + kRunsChunk);
        conv_pack_b_runs_avx2(bpack, xg, tb.tap_off.data(), kk, pr.off.data(), pr.mask.data(), pr.nseg, ohw, jb, je,
                              gp.cg * gp.hw(), depth);
        for (int64_t j0 = jb; j0 < je; j0 += uk.nr)
          for (int64_t i0 = 0; i0 < mpad; i0 += uk.mr) {
            const int64_t rows = std::min<int64_t>(uk.mr, g.ocg - i0), cols = std::min<int64_t>(uk.nr, ohw - j0);
            float* cij = yg + i0 * ohw + j0;
            if (rows == uk.mr && cols == uk.nr) {
              uk.fn(depth, ap + i0 * depth, bpack + (j0 - jb) * depth, cij, ohw, 1.0f, 0.0f);
              continue;
            }
            uk.fn(depth, ap + i0 * depth, bpack + (j0 - jb) * depth, ctile, uk.nr, 1.0f, 0.0f);
            for (int64_t i = 0; i < rows; ++i)
              std::memcpy(cij + i * ohw, ctile + i * uk.nr, sizeof(float) * static_cast<size_t>(cols));
          }
      }
      return;
    }
    if (runs) {
      // A few panels at a time, each multiplied while it is still in L1/L2: packing all of a large
      // image first (a 56x56 ResNet layer: 7 MiB) sent the panels through L3 and back.
      for (int64_t jb = 0; jb < npad; jb += kRunsChunk) {
        const int64_t je = std::min(npad, jb + kRunsChunk);
        conv_pack_b_runs_avx512(bpack, xg, tb.tap_off.data(), kk, pr.off.data(), pr.mask.data(),
                                pr.nseg, ohw, jb, je, gp.cg * gp.hw());
        for (int64_t j0 = jb; j0 < je; j0 += uk.nr)
          for (int64_t i0 = 0; i0 < mpad; i0 += uk.mr)
            uk.fn(kk, ap + i0 * kk, bpack + (j0 - jb) * kk, ctile + i0 * npad + j0, npad, 1.0f, 0.0f);
      }
    } else {
      if (gather) conv_pack_b_gather_avx512(bpack, xg, tb.tap_off.data(), kk, pix32.data(), ohw);
      else pack_b_im2col(bpack, xg, gp, tb, uk.nr);
      run_tiles(uk, ctile, ap, bpack, mpad, npad, kk, 0.0f);
    }
    for (int64_t o = 0; o < g.ocg; ++o) {
      const float b = bias ? bias[grp * g.ocg + o] : 0.0f;
      const float* src = ctile + o * npad;
      float* dst = yg + o * ohw;
      for (int64_t q = 0; q < ohw; ++q) dst[q] = src[q] + b;
    }
  });
  aligned_free(apack);
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_forward: out of memory");
  return TSM_OK;
}

tsm_status backward_data_implicit(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  const GemmUkernel& uk = gemm_ukernel_for_rows(active_simd(), g.kk);
  const int64_t ohw = g.ohw(), kk = g.kk;
  const int64_t mpad = round_up(kk, uk.mr), npad = round_up(ohw, uk.nr);
  // A = w[g]^T (kk x ocg)
  float* apack = static_cast<float*>(aligned_malloc(sizeof(float) * g.g * mpad * g.ocg));
  if (!apack) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
  for (int64_t grp = 0; grp < g.g; ++grp)
    pack_a_rows(apack + grp * mpad * g.ocg, w + grp * g.ocg * kk, kk, true, kk, g.ocg, 0, g.ocg,
                uk.mr);
  const bool s1 = g.sw == 1 && avx512_helpers(g);
  const bool s1_avx2 = uk.nr == 16 && avx2_runs(g);  // stride_w 1 on the AVX2 path
  // Row-wise col2im reads KH*KW rows of col at once: the faster order while an image's col stays
  // in L2 (CNN conv2, 147 KiB: 1.40 -> 1.07 ms); for a large col (a 56x56 resnet layer, 7 MiB)
  // streaming it tap by tap is faster (6.2 vs 7.3 ms).
  const bool rows = mpad * npad * sizeof(float) <= 512 * 1024;
  const DirectConvShape ds = direct_shape(g);
  bool oom = false;
  // On AVX2 the GEMM and col2im go by bands of output rows whose slice of col (at most 256 KiB,
  // half of Zen 3's L2) stays there until col2im adds it into dx: a 56x56 ResNet layer's whole col
  // (7 MiB) went to L3 and back.
  const int64_t band = s1_avx2 ? std::max<int64_t>(1, (int64_t(256) << 10) / int64_t(sizeof(float) * mpad * g.ow))
                               : g.oh;
  // col columns computed at a time: one band's, or the whole image's
  const int64_t ccols = s1_avx2 ? round_up(std::min(band, g.oh) * g.ow, uk.nr) : npad;
  parallel_for(g.n * g.g, [&](int64_t task) {
    const int64_t n = task / g.g, grp = task % g.g;
    float* bpack = scratch(2, static_cast<size_t>(g.ocg * ccols));
    float* col = scratch(3, static_cast<size_t>(mpad * ccols));
    if (!bpack || !col) { oom = true; return; }
    const float* dyg = dy + (n * g.oc + grp * g.ocg) * ohw;
    float* dxg = dx + (n * g.c + grp * g.cg) * g.hw();
    if (s1_avx2) {
      std::memset(dxg, 0, sizeof(float) * g.cg * g.hw());
      for (int64_t oh0 = 0; oh0 < g.oh; oh0 += band) {
        const int64_t oh1 = std::min(g.oh, oh0 + band), q0 = oh0 * g.ow, nq = (oh1 - oh0) * g.ow;
        const int64_t np = round_up(nq, uk.nr);
        pack_b_rows(bpack, dyg + q0, g.ocg, nq, ohw, uk.nr);
        run_tiles(uk, col, apack + grp * mpad * g.ocg, bpack, mpad, np, g.ocg, 0.0f);
        conv_col2im_s1_avx2(dxg, col, np, g.cg, ds, oh0, oh1);
      }
      return;
    }
    pack_b_rows(bpack, dyg, g.ocg, ohw, ohw, uk.nr);
    run_tiles(uk, col, apack + grp * mpad * g.ocg, bpack, mpad, npad, g.ocg, 0.0f);
    if (s1 && rows) conv_col2im_rows_avx512(dxg, col, npad, g.cg, ds);
    else if (s1) conv_col2im_s1_avx512(dxg, col, npad, g.cg, ds);
    else col2im(dxg, col, g, npad);
  });
  aligned_free(apack);
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
  return TSM_OK;
}

// Portable forms of the channels-last backward-weight packing (conv_nhwc_group_avx512 and
// conv_pack_bt_nhwc_avx512), for the AVX2 and NEON kernels: xt ((H+2PH), (W+2PW), Cg) = one image's
// group moved to channels-last with zero borders, then B panels of NR columns, each column block one
// tap and NR consecutive channels (Cg % NR == 0), so a panel row is one NR-float copy where the
// im2col packer gathered NR single floats.
void nhwc_group(float* xt, const float* xg, int64_t cg, int64_t h, int64_t w, int64_t ph,
                int64_t pw) {
  const int64_t wp = w + 2 * pw;
  if (ph > 0 || pw > 0) std::memset(xt, 0, sizeof(float) * (h + 2 * ph) * wp * cg);
  constexpr int64_t CB = 8;  // channels written together per pixel
  for (int64_t c0 = 0; c0 < cg; c0 += CB) {
    const int64_t cb = std::min<int64_t>(CB, cg - c0);
    for (int64_t ih = 0; ih < h; ++ih) {
      const float* src = xg + c0 * h * w + ih * w;
      float* d = xt + ((ih + ph) * wp + pw) * cg + c0;
      for (int64_t iw = 0; iw < w; ++iw, d += cg)
        for (int64_t c = 0; c < cb; ++c) d[c] = src[c * h * w + iw];
    }
  }
}

template <int NR>
void pack_bt_nhwc(float* dst, const float* xt, int64_t wp, const ConvGeom& g, int64_t p0,
                  int64_t ktot) {
  for (int64_t panel = 0; panel < g.kk / NR; ++panel) {
    const int64_t j0 = panel * NR, tap = j0 / g.cg, c0 = j0 % g.cg;
    const int64_t off = ((tap / g.kw) * g.dh * wp + (tap % g.kw) * g.dw) * g.cg + c0;
    float* d = dst + panel * ktot * NR + p0 * NR;
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      const float* xrow = xt + oh * g.sh * wp * g.cg + off;
      for (int64_t ow = 0; ow < g.ow; ++ow, d += NR)
        std::memcpy(d, xrow + ow * g.sw * g.cg, sizeof(float) * NR);
    }
  }
}

// dw: per-thread partials over image ranges; images are taken kBatch at a time so the GEMM's k
// (pixels) is long enough.
tsm_status backward_weight_implicit(float* dw, const float* dy, const float* x, const ConvGeom& g) {
  const GemmUkernel& uk = gemm_ukernel_for_rows(active_simd(), g.ocg);
  const int64_t ohw = g.ohw(), kk = g.kk;
  const int64_t mpad = round_up(g.ocg, uk.mr), npad = round_up(kk, uk.nr);
  const int64_t batch = std::max<int64_t>(1, std::min<int64_t>(8, 1024 / ohw));
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), g.n));
  const int64_t part = g.g * mpad * npad;
  float* partial = static_cast<float*>(aligned_malloc(sizeof(float) * nt * part));
  if (!partial) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: out of memory");
  // Channels-last packing: each image's group is first moved to (H, W, Cg) (with its padding), so
  // every 16 columns of a B panel row are one contiguous 64-byte copy; the columns are ordered
  // (tap, channel) and put back in (channel, tap) order when the partials are summed. The gather
  // packer it replaces had 42% of conv2's samples; needs Cg % 16 == 0.
  const bool nhwc512 = avx512_helpers(g) && g.cg % 16 == 0;
  // The portable form, for the other kernels' panel widths: conv2 of the CNN on AVX2 spent 22% of
  // its backward-weight in the im2col packer.
  const bool nhwc_nr = !nhwc512 && (uk.nr == 16 || uk.nr == 12) && g.cg % uk.nr == 0;
  const bool nhwc = nhwc512 || nhwc_nr;
  const bool pre_pad = !nhwc && use_pre_pad(g);
  const ConvGeom gp = pre_pad ? padded_geom(g) : g;  // the geometry the packer sees
  const ImplicitTables tb(gp);
  const bool gather = !nhwc && tb.no_pad && avx512_helpers(gp);
  std::vector<int32_t> tap32(gather ? kk : 0);
  std::vector<int64_t> pix64(gather ? ohw : 0);
  for (int64_t t = 0; t < (gather ? kk : 0); ++t) tap32[t] = static_cast<int32_t>(tb.tap_off[t]);
  for (int64_t q = 0; q < (gather ? ohw : 0); ++q) pix64[q] = tb.pix_h[q] * gp.w + tb.pix_w[q];
  const DirectConvShape ds = direct_shape(g);
  const int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
  bool oom = false;
  parallel_for(nt, [&](int64_t t) {
    const int64_t n0 = g.n * t / nt, n1 = g.n * (t + 1) / nt;
    float* acc = partial + t * part;
    const size_t kmax = static_cast<size_t>(batch * ohw);
    float* apack = scratch(2, mpad * kmax);
    float* bpack = scratch(3, kmax * npad);
    if (!apack || !bpack) { oom = true; return; }
    for (int64_t grp = 0; grp < g.g; ++grp) {
      for (int64_t nb = n0; nb < n1; nb += batch) {
        const int64_t nimg = std::min(batch, n1 - nb), ktot = nimg * ohw;
        for (int64_t b = 0; b < nimg; ++b) {
          const int64_t n = nb + b;
          pack_a_rows(apack, dy + (n * g.oc + grp * g.ocg) * ohw, ohw, false, g.ocg, ohw, b * ohw,
                      ktot, uk.mr);
          const float* xg = x + (n * g.c + grp * g.cg) * g.hw();
          if (nhwc) {
            float* xt = scratch(0, static_cast<size_t>(hp * wp * g.cg));
            if (!xt) { oom = true; return; }
            if (nhwc512) {
              conv_nhwc_group_avx512(xt, xg, g.cg, g.h, g.w, g.ph, g.pw);
              conv_pack_bt_nhwc_avx512(bpack, xt, g.cg, wp, ds, b * ohw, ktot);
            } else {
              nhwc_group(xt, xg, g.cg, g.h, g.w, g.ph, g.pw);
              if (uk.nr == 16) pack_bt_nhwc<16>(bpack, xt, wp, g, b * ohw, ktot);
              else pack_bt_nhwc<12>(bpack, xt, wp, g, b * ohw, ktot);
            }
            continue;
          }
          if (pre_pad) {
            xg = padded_group(xg, g);
            if (!xg) { oom = true; return; }
          }
          if (gather)
            conv_pack_bt_gather_avx512(bpack, xg, tap32.data(), kk, pix64.data(), ohw, b * ohw, ktot);
          else
            pack_b_im2col_t(bpack, xg, gp, tb, b * ohw, ktot, uk.nr);
        }
        run_tiles(uk, acc + grp * mpad * npad, apack, bpack, mpad, npad, ktot,
                  nb == n0 ? 0.0f : 1.0f);
      }
    }
  });
  if (!oom) {
    for (int64_t grp = 0; grp < g.g; ++grp)
      for (int64_t o = 0; o < g.ocg; ++o) {
        float* dst = dw + (grp * g.ocg + o) * kk;
        const float* src = partial + (grp * mpad + o) * npad;
        const int64_t taps = g.kh * g.kw;
        for (int64_t i = 0; i < kk; ++i) {
          // column of weight i = (c, tap): c * taps + tap, or tap * Cg + c in channels-last order
          const int64_t j = nhwc ? (i % taps) * g.cg + i / taps : i;
          float s = 0.0f;
          for (int t = 0; t < nt; ++t) s += src[t * part + j];
          dst[i] = s;
        }
      }
  }
  aligned_free(partial);
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: out of memory");
  return TSM_OK;
}

// Row-wise backward-weight (Cg a multiple of 32, OCg of 16, AVX-512): per tap, C (OCg x Cg) =
// sum over pixels of dy^T (pixel x OCg) and the input at the tap's offset (pixel x Cg). With the
// input channels-last (conv_nhwc_group_avx512, padding written out) a pixel's 32 channels at any tap
// are one 128-byte row, and with dy pixels-major a pixel's MR output channels are MR consecutive
// floats; so conv_bw_rows_tile_avx512 reads both operands where they lie, with no packed panels
// (the implicit GEMM above writes Cg*KH*KW floats of B per pixel: 288 for the CNN's conv2, 9x its
// input). Each tile call sums a block of about 512 pixels (several small images, or a chunk of rows
// of a large one) whose dy and input rows stay in L2 across the taps; each thread sums its images
// into its own (tap, o, c) partial, put in (o, c, tap) order at the end.
bool use_rows_bwd_weight(const ConvGeom& g) {
  return g.cg % 32 == 0 && g.ocg % 16 == 0 && avx512_helpers(padded_geom(g)) && use_implicit(g);
}

tsm_status backward_weight_rows(float* dw, const float* dy, const float* x, const ConvGeom& g) {
  const int64_t ohw = g.ohw(), kk = g.kk, taps = g.kh * g.kw, cblocks = g.cg / 32;
  const int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw, xstride = hp * wp * g.cg;
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), g.n));
  const int64_t part = g.g * taps * g.ocg * g.cg;
  float* partial = static_cast<float*>(aligned_malloc(sizeof(float) * nt * part));
  if (!partial) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: out of memory");
  // A block: nimg whole images (small images), or chunk rows of one image.
  const int64_t nimg = std::max<int64_t>(1, 512 / ohw);
  const int64_t chunk = nimg > 1 ? g.oh : std::max<int64_t>(1, std::min<int64_t>(g.oh, 512 / g.ow));
  std::vector<int64_t> rowoff(nimg * g.oh), tapoff(taps);
  for (int64_t i = 0; i < nimg; ++i)
    for (int64_t r = 0; r < g.oh; ++r) rowoff[i * g.oh + r] = i * xstride + r * g.sh * wp * g.cg;
  for (int64_t kh = 0; kh < g.kh; ++kh)
    for (int64_t kw = 0; kw < g.kw; ++kw) tapoff[kh * g.kw + kw] = (kh * g.dh * wp + kw * g.dw) * g.cg;
  const int64_t otiles = (g.ocg + 11) / 12;  // tiles of up to 12 output channels, near-equal
  bool oom = false;
  parallel_for(nt, [&](int64_t t) {
    const int64_t n0 = g.n * t / nt, n1 = g.n * (t + 1) / nt;
    float* acc = partial + t * part;
    float* xt = scratch(0, static_cast<size_t>(nimg * xstride));
    float* dyt = scratch(2, static_cast<size_t>(nimg * chunk * g.ow * g.ocg));
    if (!xt || !dyt) { oom = true; return; }
    for (int64_t grp = 0; grp < g.g; ++grp) {
      float* accg = acc + grp * taps * g.ocg * g.cg;
      for (int64_t nb = n0; nb < n1; nb += nimg) {
        const int64_t ni = std::min(nimg, n1 - nb);
        for (int64_t i = 0; i < ni; ++i)
          conv_nhwc_group_avx512(xt + i * xstride, x + ((nb + i) * g.c + grp * g.cg) * g.hw(), g.cg,
                                 g.h, g.w, g.ph, g.pw);
        for (int64_t r0 = 0; r0 < g.oh; r0 += chunk) {
          const int64_t r1 = std::min(g.oh, r0 + chunk), npix = (r1 - r0) * g.ow;
          for (int64_t i = 0; i < ni; ++i)
            conv_pixels_major_avx512(dyt + i * npix * g.ocg,
                                     dy + ((nb + i) * g.oc + grp * g.ocg) * ohw + r0 * g.ow, ohw,
                                     g.ocg, npix);
          const bool accumulate = nb > n0 || r0 > 0;
          // ni > 1 only with whole images (r0 = 0, r1 = OH): their rows are consecutive in rowoff
          const int64_t nrows = ni * (r1 - r0);
          for (int64_t tap = 0; tap < taps; ++tap)
            for (int64_t cb = 0; cb < cblocks; ++cb)
              for (int64_t tile = 0; tile < otiles; ++tile) {
                const int64_t o0 = g.ocg * tile / otiles, o1 = g.ocg * (tile + 1) / otiles;
                conv_bw_rows_tile_avx512(static_cast<int>(o1 - o0), nrows, rowoff.data() + r0, g.ow,
                                         g.sw * g.cg, xt + tapoff[tap] + cb * 32, dyt + o0, g.ocg,
                                         accg + (tap * g.ocg + o0) * g.cg + cb * 32, g.cg, accumulate);
              }
        }
      }
    }
  });
  if (!oom) {
    for (int64_t grp = 0; grp < g.g; ++grp)
      for (int64_t o = 0; o < g.ocg; ++o)
        for (int64_t c = 0; c < g.cg; ++c)
          for (int64_t tap = 0; tap < taps; ++tap) {
            const float* src = partial + ((grp * taps + tap) * g.ocg + o) * g.cg + c;
            float s = 0.0f;
            for (int t = 0; t < nt; ++t) s += src[t * part];
            dw[(grp * g.ocg + o) * kk + c * taps + tap] = s;
          }
  }
  aligned_free(partial);
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: out of memory");
  return TSM_OK;
}

// Backward-weight for few taps per output channel (Cg*KH*KW < 12: a CNN's first layer, C = 1),
// where the implicit GEMM's n = Cg*KH*KW is too narrow for the 32-wide micro-kernel: the product is
// turned around, dw^T (kk x ocg) = col (kk x pixels) * dy^T (pixels x ocg), so the taps are the
// micro-kernel's 12 rows (zero-padded) and 32 output channels its columns; dy^T is packed by 16x16
// register transposes, col from the forward's runs of pixels plus a transpose, with a row of ones
// that gives the bias gradient in the same product. Threads take ranges of images and sum their
// partials at the end.
bool use_few_taps_bwd_weight(const ConvGeom& g) {
  return avx512_helpers(padded_geom(g)) && g.sw == 1 && g.ocg >= 16 &&
         g.kk < gemm_ukernel_for(TSM_SIMD_AVX512).mr;
}

tsm_status backward_weight_few_taps(float* dw, float* dbias, const float* dy, const float* x,
                                   const ConvGeom& g) {
  const GemmUkernel& uk = gemm_ukernel_for(TSM_SIMD_AVX512);
  const int mr = uk.mr;
  const int64_t ohw = g.ohw(), kk = g.kk, npanels = (g.ocg + 31) / 32, npad = npanels * 32;
  const int64_t batch = std::max<int64_t>(1, 2048 / ohw);  // ~2K pixels of k per GEMM
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), g.n));
  const int64_t part = g.g * mr * npad;
  // With a spare row (kk < mr), a row of ones in col makes row kk of the product the bias gradient.
  const bool ones = dbias && kk < mr;
  float* partial = static_cast<float*>(aligned_malloc(sizeof(float) * nt * part));
  if (!partial) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: out of memory");
  const bool pre_pad = g.ph > 0 || g.pw > 0;
  const ConvGeom gp = pre_pad ? padded_geom(g) : g;
  const ImplicitTables tb(gp);
  std::vector<int32_t> pix(ohw);
  for (int64_t q = 0; q < ohw; ++q) pix[q] = static_cast<int32_t>(tb.pix_h[q] * gp.w + tb.pix_w[q]);
  const PixelRuns pr(pix);
  bool oom = false;
  parallel_for(nt, [&](int64_t t) {
    const int64_t n0 = g.n * t / nt, n1 = g.n * (t + 1) / nt;
    float* acc = partial + t * part;
    const size_t kmax = static_cast<size_t>(batch * ohw);
    float* apack = scratch(2, kmax * mr);
    float* bpack = scratch(3, kmax * npad);
    if (!apack || !bpack) { oom = true; return; }
    for (int64_t grp = 0; grp < g.g; ++grp) {
      for (int64_t nb = n0; nb < n1; nb += batch) {
        const int64_t nimg = std::min(batch, n1 - nb), ktot = nimg * ohw;
        for (int64_t b = 0; b < nimg; ++b) {
          const int64_t n = nb + b;
          const float* xg = x + (n * g.c + grp * g.cg) * g.hw();
          if (pre_pad) {
            xg = padded_group(xg, g);
            if (!xg) { oom = true; return; }
          }
          conv_pack_a_taps_avx512(apack + b * ohw * mr, xg, tb.tap_off.data(), kk, pr.off.data(),
                                  pr.mask.data(), pr.nseg, ohw, mr, ones, gp.cg * gp.hw());
          const float* dyg = dy + (n * g.oc + grp * g.ocg) * ohw;
          for (int64_t pn = 0; pn < npanels; ++pn)
            pack_b32_trans_avx512(bpack + pn * ktot * 32 + b * ohw * 32, dyg + pn * 32 * ohw, ohw,
                                  std::min<int64_t>(32, g.ocg - pn * 32), ohw);
        }
        for (int64_t pn = 0; pn < npanels; ++pn)
          uk.fn(ktot, apack, bpack + pn * ktot * 32, acc + grp * mr * npad + pn * 32, npad, 1.0f,
                nb == n0 ? 0.0f : 1.0f);
      }
    }
  });
  if (!oom) {
    for (int64_t grp = 0; grp < g.g; ++grp)
      for (int64_t o = 0; o < g.ocg; ++o)
        for (int64_t i = 0; i < (ones ? kk + 1 : kk); ++i) {
          float s = 0.0f;
          for (int t = 0; t < nt; ++t) s += partial[t * part + (grp * mr + i) * npad + o];
          if (i < kk) dw[(grp * g.ocg + o) * kk + i] = s;
          else dbias[grp * g.ocg + o] = s;
        }
  }
  aligned_free(partial);
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: out of memory");
  return TSM_OK;
}

// ---- forward ----
// ---- row-wise forward: stride_w 1, OC per group a multiple of 32, AVX-512 ----
// y is computed as C (pixels x OCg), tile by tile: up to 12 consecutive output pixels of one row
// times 32 output channels (conv_rows_tile_avx512), the inputs broadcast straight from the (padded)
// image and the weights packed once as w^T panels (Cg*KH*KW x 32). Against the implicit GEMM this
// packs no im2col panels (a quarter of the CNN's conv2 forward) and computes no padding pixels (its
// 32-wide panels take 121 pixels as 128). Bands of output rows go to y through 16x16 transposes,
// with the bias added on the way.
// One output row of the row-wise passes: `width` pixels cut into tiles of at most max_tile, widths
// as equal as they go, each conv_rows_tile_avx512 over k taps from x (the row's first pixel) into
// c (the row's C, ldc floats per pixel).
void rows_of_tiles(int64_t width, int64_t max_tile, int64_t k, const float* x, const int32_t* koff,
                   const float* b, float* c, int64_t ldc) {
  const int64_t ntiles = (width + max_tile - 1) / max_tile;
  for (int64_t tile = 0; tile < ntiles; ++tile) {
    const int64_t i0 = width * tile / ntiles, i1 = width * (tile + 1) / ntiles;
    conv_rows_tile_avx512(static_cast<int>(i1 - i0), k, x + i0, koff, b, c + i0 * ldc, ldc);
  }
}

// Rows per band of the row-wise passes, whose C tile (rows x width pixels x channels floats) goes
// to its place through the 16x16 transposes: about the size of L1 (12288 floats, 48 KiB), at
// least one row.
int64_t band_rows(int64_t rows, int64_t width, int64_t channels) {
  return std::max<int64_t>(1, std::min<int64_t>(rows, 12288 / (width * channels)));
}

bool use_rows_forward(const ConvGeom& g) {
  return g.sw == 1 && g.ocg % 32 == 0 && g.kk >= 32 && avx512_helpers(padded_geom(g)) &&
         use_implicit(g);
}

tsm_status forward_rows(float* y, const float* x, const float* w, const float* bias,
                        const ConvGeom& g) {
  const int64_t ohw = g.ohw(), kk = g.kk, panels = g.ocg / 32;
  float* bpack = static_cast<float*>(aligned_malloc(sizeof(float) * g.g * g.ocg * kk));
  if (!bpack) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_forward: out of memory");
  for (int64_t grp = 0; grp < g.g; ++grp)
    for (int64_t pn = 0; pn < panels; ++pn) {
      float* d = bpack + (grp * panels + pn) * kk * 32;
      const float* wp = w + (grp * g.ocg + pn * 32) * kk;
      for (int64_t t = 0; t < kk; ++t)
        for (int64_t j = 0; j < 32; ++j) d[t * 32 + j] = wp[j * kk + t];
    }
  const bool pre_pad = g.ph > 0 || g.pw > 0;
  const ConvGeom gp = pre_pad ? padded_geom(g) : g;
  const ImplicitTables tb(gp);
  std::vector<int32_t> koff(kk);
  for (int64_t t = 0; t < kk; ++t) koff[t] = static_cast<int32_t>(tb.tap_off[t]);
  const int64_t band = band_rows(g.oh, g.ow, g.ocg);
  bool oom = false;
  parallel_for(g.n * g.g, [&](int64_t task) {
    const int64_t n = task / g.g, grp = task % g.g;
    const float* xg = x + (n * g.c + grp * g.cg) * g.hw();
    if (pre_pad) {
      xg = padded_group(xg, g);
      if (!xg) { oom = true; return; }
    }
    float* ct = scratch(3, static_cast<size_t>(band * g.ow * g.ocg));
    if (!ct) { oom = true; return; }
    float* yg = y + (n * g.oc + grp * g.ocg) * ohw;
    const float* bg = bpack + grp * panels * kk * 32;
    const float* biasg = bias ? bias + grp * g.ocg : nullptr;
    for (int64_t oh0 = 0; oh0 < g.oh; oh0 += band) {
      const int64_t oh1 = std::min(g.oh, oh0 + band);
      for (int64_t pn = 0; pn < panels; ++pn)
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const float* xrow = xg + oh * g.sh * gp.w;
          rows_of_tiles(g.ow, 12, kk, xrow, koff.data(), bg + pn * kk * 32,
                        ct + (oh - oh0) * g.ow * g.ocg + pn * 32, g.ocg);
        }
      conv_rows_store_avx512(yg + oh0 * g.ow, ohw, ct, (oh1 - oh0) * g.ow, g.ocg, biasg);
    }
  });
  aligned_free(bpack);
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_forward: out of memory");
  return TSM_OK;
}

bool use_scatter_forward_avx2(const ConvGeom& g);
tsm_status forward_scatter_avx2(float* y, const float* x, const float* w, const float* bias, const ConvGeom& g);

tsm_status forward(float* y, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  const int64_t ohw = g.ohw(), kk = g.kk;
  if (use_rows_forward(g)) return forward_rows(y, x, w, bias, g);
  if (use_scatter_forward_avx2(g)) return forward_scatter_avx2(y, x, w, bias, g);
  if (use_implicit(g)) return forward_implicit(y, x, w, bias, g);
  const bool pw = g.pointwise();
  auto one = [&](int64_t n, int64_t grp) -> bool {
    const float* xg = x + (n * g.c + grp * g.cg) * g.hw();
    float* yg = y + (n * g.oc + grp * g.ocg) * ohw;
    const float* col = xg;
    if (!pw) {
      float* buf = scratch(2, static_cast<size_t>(kk * ohw));
      if (!buf) return false;
      im2col(buf, xg, g);
      col = buf;
    }
    if (bias) {
      for (int64_t o = 0; o < g.ocg; ++o) {
        const float b = bias[grp * g.ocg + o];
        float* yo = yg + o * ohw;
        for (int64_t i = 0; i < ohw; ++i) yo[i] = b;
      }
    }
    sgemm(false, false, g.ocg, ohw, kk, 1.0f, w + grp * g.ocg * kk, kk, col, ohw,
          bias ? 1.0f : 0.0f, yg, ohw);
    return true;
  };
  bool oom = false;
  if (spread_tasks(g)) {
    parallel_for(g.n * g.g, [&](int64_t t) { if (!one(t / g.g, t % g.g)) oom = true; });
  } else {
    for (int64_t t = 0; t < g.n * g.g && !oom; ++t) oom = !one(t / g.g, t % g.g);
  }
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_forward: cannot allocate the im2col buffer");
  return TSM_OK;
}

// ---- backward data ----
// Channels-last backward-data without col2im (stride 1, Cg % 32 == 0). Output pixels are counted on
// the padded input's grid: q = oh * Wp + ow for ow < Wp (the Wp - OW extra columns carry dy = 0), so
// tap (kh, kw) sends pixel q to row q + kh*DH*Wp + kw*DW of dxt ((H+2PH) x (W+2PW) rows of Cg
// channels) for every q, across output rows too. The GEMM dy^T (pixels x ocg) * w (ocg x (tap, c))
// then accumulates each 12 x 32 tile (12 consecutive pixels, 32 channels of one tap) straight into
// dxt with ldc = Cg and beta = 1: no col buffer, no col2im. The padded border of dxt is dropped when
// it is moved back to (Cg, H, W). Costs (Wp/OW - 1) more rows in the GEMM (18% for the CNN's
// conv2, 4% for a 56x56 layer with padding 1).
bool use_nhwc_bwd_data(const ConvGeom& g) {
  return avx512_helpers(padded_geom(g)) && g.sh == 1 && g.sw == 1 && g.cg % 32 == 0 &&
         gemm_ukernel_for(TSM_SIMD_AVX512).mr == 12;
}

tsm_status backward_data_nhwc(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  const GemmUkernel& uk = gemm_ukernel_for(TSM_SIMD_AVX512);
  const int mr = uk.mr;
  const int64_t ohw = g.ohw(), kk = g.kk, taps = g.kh * g.kw, cb = g.cg / 32;
  const int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
  const int64_t mv = g.oh * wp, mpad = round_up(mv, mr);
  const int64_t max_off = (g.kh - 1) * g.dh * wp + (g.kw - 1) * g.dw;
  const int64_t rows_t = std::max(hp * wp, mpad + max_off);  // dxt rows, with slack for the padding
  // B panels, per group, tap and block of 32 channels: B(o, j) = w[o][c0 + j][tap], ocg x 32.
  const int64_t bpanel = g.ocg * 32;
  float* bpack = static_cast<float*>(aligned_malloc(sizeof(float) * g.g * taps * cb * bpanel));
  if (!bpack) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
  for (int64_t grp = 0; grp < g.g; ++grp)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t b = 0; b < cb; ++b) {
        float* d = bpack + ((grp * taps + t) * cb + b) * bpanel;
        for (int64_t o = 0; o < g.ocg; ++o)
          for (int64_t j = 0; j < 32; ++j)
            d[o * 32 + j] = w[(grp * g.ocg + o) * kk + (b * 32 + j) * taps + t];
      }
  bool oom = false;
  parallel_for(g.n * g.g, [&](int64_t task) {
    const int64_t n = task / g.g, grp = task % g.g;
    float* dyw = scratch(0, static_cast<size_t>(g.ocg * mpad));  // dy rows widened to Wp
    float* apack = scratch(2, static_cast<size_t>(g.ocg * mpad));
    float* xt = scratch(3, static_cast<size_t>(rows_t * g.cg));
    if (!dyw || !apack || !xt) { oom = true; return; }
    const float* dyg = dy + (n * g.oc + grp * g.ocg) * ohw;
    for (int64_t o = 0; o < g.ocg; ++o) {
      float* d = dyw + o * mpad;
      const float* s = dyg + o * ohw;
      for (int64_t oh = 0; oh < g.oh; ++oh, d += wp, s += g.ow) {
        int64_t ow = 0;
        for (; ow < g.ow; ++ow) d[ow] = s[ow];
        for (; ow < wp; ++ow) d[ow] = 0.0f;
      }
      for (int64_t q = mv; q < mpad; ++q) dyw[o * mpad + q] = 0.0f;
    }
    // A panels: A(q, o) = dyw[o][q], 12 pixels per k (mr is 12: the constant lets the copy vectorize)
    for (int64_t i0 = 0; i0 < mpad; i0 += 12) {
      float* d = apack + i0 * g.ocg;
      for (int64_t o = 0; o < g.ocg; ++o)
        for (int i = 0; i < 12; ++i) d[o * 12 + i] = dyw[o * mpad + i0 + i];
    }
    std::memset(xt, 0, sizeof(float) * rows_t * g.cg);
    const float* bg = bpack + grp * taps * cb * bpanel;
    for (int64_t i0 = 0; i0 < mpad; i0 += mr)
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t off = (t / g.kw) * g.dh * wp + (t % g.kw) * g.dw;
        for (int64_t b = 0; b < cb; ++b)
          uk.fn(g.ocg, apack + i0 * g.ocg, bg + (t * cb + b) * bpanel, xt + (i0 + off) * g.cg + b * 32,
                g.cg, 1.0f, 1.0f);
      }
    conv_nchw_from_nhwc_avx512(dx + (n * g.c + grp * g.cg) * g.hw(), xt, g.cg, g.h, g.w, g.ph, g.pw);
  });
  aligned_free(bpack);
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
  return TSM_OK;
}

// Row-wise backward-data (stride 1, Cg a multiple of 32, AVX-512): the forward's tiles run on dy.
//   dx[c][h][x] = sum over (kh, o, kw) of dy[o][h + PH - kh*DH][x + PW - kw*DW] * w[o][c][kh][kw]
// so a tile of up to 14 pixels of one dx row times 32 channels broadcasts dy values from a copy of
// the image's dy with zero columns either side (dyp), and the taps are ordered (kh, o, kw) so
// that the ones a dx row needs (its dy rows inside the image) are one range of k: rows near the
// top and bottom skip the taps that would multiply padding. No col buffer, no col2im, no
// read-modify-write of dx; bands of rows go to dx through 16x16 transposes.
bool use_rows_bwd_data(const ConvGeom& g) {
  return g.sh == 1 && g.sw == 1 && g.cg % 32 == 0 && g.kk <= 4096 && avx512_helpers(padded_geom(g)) &&
         use_implicit(g);
}

tsm_status backward_data_rows(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  const int64_t ohw = g.ohw(), kk = g.kk, taps_w = g.ocg * g.kw, panels = g.cg / 32;
  const int64_t kall = g.kh * taps_w;  // = OCg * KH * KW, ordered (kh, o, kw)
  // dyp: each channel of the image's dy with pl zero columns on either side. With stride 1,
  // OW = W + 2PW - DW(KW-1), so the columns x + PW - kw*DW a dx row reads run from PW - DW(KW-1)
  // to (OW - 1) + (DW(KW-1) - PW): pl = max(0, DW(KW-1) - PW) each side. No zero rows: the taps
  // whose dy row lies outside the image are skipped.
  const int64_t pl = std::max<int64_t>(0, g.dw * (g.kw - 1) - g.pw);
  ConvGeom gd = g;  // dy's group as pad_group sees it
  gd.cg = g.ocg, gd.h = g.oh, gd.w = g.ow, gd.ph = 0, gd.pw = pl;
  const int64_t hd = g.oh, wd = g.ow + 2 * pl;
  if (g.ocg * hd * wd >= (int64_t(1) << 31))
    return backward_data_nhwc(dx, dy, w, g);
  float* bpack = static_cast<float*>(aligned_malloc(sizeof(float) * g.g * panels * kall * 32));
  if (!bpack) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
  const int64_t taps = g.kh * g.kw;
  for (int64_t grp = 0; grp < g.g; ++grp)
    for (int64_t pn = 0; pn < panels; ++pn) {
      float* d = bpack + (grp * panels + pn) * kall * 32;
      for (int64_t kh = 0, p = 0; kh < g.kh; ++kh)
        for (int64_t o = 0; o < g.ocg; ++o)
          for (int64_t kw = 0; kw < g.kw; ++kw, ++p)
            for (int64_t j = 0; j < 32; ++j)
              d[p * 32 + j] = w[(grp * g.ocg + o) * kk + (pn * 32 + j) * taps + kh * g.kw + kw];
    }
  std::vector<int32_t> koff(kall);  // tap (kh, o, kw) from dx pixel (h, x)'s place in dyp
  for (int64_t kh = 0, p = 0; kh < g.kh; ++kh)
    for (int64_t o = 0; o < g.ocg; ++o)
      for (int64_t kw = 0; kw < g.kw; ++kw, ++p)
        koff[p] = static_cast<int32_t>(o * hd * wd - kh * g.dh * wd - kw * g.dw);
  const int64_t band = band_rows(g.h, g.w, g.cg);
  bool oom = false;
  parallel_for(g.n * g.g, [&](int64_t task) {
    const int64_t n = task / g.g, grp = task % g.g;
    float* dyp = scratch(0, static_cast<size_t>(g.ocg * hd * wd));
    float* ct = scratch(3, static_cast<size_t>(band * g.w * g.cg));
    if (!dyp || !ct) { oom = true; return; }
    pad_group(dyp, dy + (n * g.oc + grp * g.ocg) * ohw, gd);
    float* dxg = dx + (n * g.c + grp * g.cg) * g.hw();
    const float* bg = bpack + grp * panels * kall * 32;
    for (int64_t h0 = 0; h0 < g.h; h0 += band) {
      const int64_t h1 = std::min(g.h, h0 + band);
      for (int64_t pn = 0; pn < panels; ++pn)
        for (int64_t h = h0; h < h1; ++h) {
          // the taps kh whose dy row h + PH - kh*DH lies in [0, OH): one range of k
          int64_t kh_lo = g.kh, kh_hi = -1;
          for (int64_t kh = 0; kh < g.kh; ++kh) {
            const int64_t r = h + g.ph - kh * g.dh;
            if (r >= 0 && r < g.oh) { kh_lo = std::min(kh_lo, kh); kh_hi = kh; }
          }
          float* crow = ct + (h - h0) * g.w * g.cg + pn * 32;
          if (kh_hi < kh_lo) {  // no dy row reaches this dx row
            for (int64_t x = 0; x < g.w; ++x) std::memset(crow + x * g.cg, 0, sizeof(float) * 32);
            continue;
          }
          const int64_t p0 = kh_lo * taps_w, p1 = (kh_hi + 1) * taps_w;
          rows_of_tiles(g.w, 14, p1 - p0, dyp + (h + g.ph) * wd + g.pw + pl, koff.data() + p0,
                        bg + (pn * kall + p0) * 32, crow, g.cg);
        }
      conv_rows_store_avx512(dxg + h0 * g.w, g.hw(), ct, (h1 - h0) * g.w, g.cg, nullptr);
    }
  });
  aligned_free(bpack);
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
  return TSM_OK;
}

// The weight panels of the scatter kernels (3-wide kernels), per group and block of vw channels
// of the result: (kh, reduced channel, kw) x vw, 64-byte aligned; nullptr when out of memory.
// Backward-data's blocks are input channels and it reduces over output channels; the forward's
// blocks are output channels, it reduces over input channels, and its kernel is mirrored in kw.
float* pack_scatter_panels(const float* w, const ConvGeom& g, int64_t vw, bool forward) {
  const int64_t blocks = (forward ? g.ocg : g.cg) / vw, red = forward ? g.cg : g.ocg, taps = g.kh * 3;
  const int64_t panel = g.kh * red * 3 * vw;
  float* p = static_cast<float*>(aligned_malloc(sizeof(float) * g.g * blocks * panel));
  if (!p) return nullptr;
  for (int64_t grp = 0; grp < g.g; ++grp)
    for (int64_t cb = 0; cb < blocks; ++cb) {
      float* d = p + (grp * blocks + cb) * panel;
      for (int64_t kh = 0; kh < g.kh; ++kh)
        for (int64_t r = 0; r < red; ++r)
          for (int64_t kw = 0; kw < 3; ++kw, d += vw)
            for (int64_t j = 0; j < vw; ++j) {
              const int64_t o = forward ? cb * vw + j : r, c = forward ? r : cb * vw + j;
              d[j] = w[(grp * g.ocg + o) * g.kk + c * taps + kh * 3 + (forward ? 2 - kw : kw)];
            }
    }
  return p;
}

// Scatter backward-data for short rows and 3-wide kernels (stride 1, KW 3, DW 1, PW <= 2, OW <=
// 22, Cg a multiple of 16, AVX-512): a whole dx row of 16 channels in registers, each dy value of
// the row broadcast once and multiplied into the three dx pixels it reaches
// (conv_scatter3_row_avx512). The gather tiles above multiply zero padding wherever a dx pixel
// lacks a tap (the CNN's conv2: 13-pixel dx rows from 11-pixel dy rows, 39 taps of which 6 pad);
// here nothing does, and the 16-channel tile needs 3 weight loads and OW broadcasts per 3*OW FMAs.
// dy is read in place (no padded copy); rows go to dx in bands through the 16x16 transposes.
bool use_scatter_bwd_data(const ConvGeom& g) {
  return g.sh == 1 && g.sw == 1 && g.dw == 1 && g.kw == 3 && g.kh <= 64 && g.pw <= 2 && g.ow >= 1 && g.ow <= 22 &&
         g.cg % 16 == 0 && avx512_helpers(padded_geom(g)) && use_implicit(g);
}

tsm_status backward_data_scatter(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  const int64_t ohw = g.ohw(), blocks = g.cg / 16;
  const int64_t panel = g.kh * g.ocg * 3 * 16;  // one block of 16 channels: (kh, o, kw) x 16
  float* bpack = pack_scatter_panels(w, g, 16, false);
  if (!bpack) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
  const int64_t band = band_rows(g.h, g.w, g.cg);
  bool oom = false;
  parallel_for(g.n * g.g, [&](int64_t task) {
    const int64_t n = task / g.g, grp = task % g.g;
    float* ct = scratch(3, static_cast<size_t>(band * g.w * g.cg));
    if (!ct) { oom = true; return; }
    const float* dyg = dy + (n * g.oc + grp * g.ocg) * ohw;
    float* dxg = dx + (n * g.c + grp * g.cg) * g.hw();
    const float* bg = bpack + grp * blocks * panel;
    const float* rows[64];
    for (int64_t h0 = 0; h0 < g.h; h0 += band) {
      const int64_t h1 = std::min(g.h, h0 + band);
      for (int64_t h = h0; h < h1; ++h) {
        // the taps kh whose dy row h + PH - kh*DH lies in [0, OH), in order: one range of the panel
        int64_t kh_lo = -1, nrows = 0;
        for (int64_t kh = 0; kh < g.kh; ++kh) {
          const int64_t r = h + g.ph - kh * g.dh;
          if (r < 0 || r >= g.oh) continue;
          if (kh_lo < 0) kh_lo = kh;
          rows[nrows++] = dyg + r * g.ow;
        }
        float* crow = ct + (h - h0) * g.w * g.cg;
        for (int64_t cb = 0; cb < blocks; ++cb) {
          if (nrows == 0) {  // no dy row reaches this dx row
            for (int64_t x = 0; x < g.w; ++x) std::memset(crow + x * g.cg + cb * 16, 0, sizeof(float) * 16);
            continue;
          }
          conv_scatter3_row_avx512(static_cast<int>(g.ow), nrows, rows, g.ocg, ohw,
                                   bg + cb * panel + kh_lo * g.ocg * 48, crow + cb * 16, g.cg,
                                   static_cast<int>(g.pw), static_cast<int>(g.w));
        }
      }
      conv_rows_store_avx512(dxg + h0 * g.w, g.hw(), ct, (h1 - h0) * g.w, g.cg, nullptr);
    }
  });
  aligned_free(bpack);
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
  return TSM_OK;
}

// The scatter backward-data on AVX2 (conv_scatter3_row_avx2): a dx row of 8 input channels in
// registers (rows of more than 12 dy pixels in segments of 6..12 pixels), stored through 8x8
// transposes into dx's channel rows. No padding multiplied, no col buffer and no col2im, where the
// implicit GEMM's col (Cg*KH*KW rows) is written and read back by col2im, and the flipped-kernel
// forward multiplies dy's zero border (CNN conv2: 13x13 dx from 11x11 dy, 40% more FMAs). Zen 3,
// A/B in both orders (9 rounds) against the paths before it: CNN conv2 (N64, 32 -> 64, 13x13)
// 1.37-1.40x over the GEMM + col2im; against the flipped forward, ResNet 64 x 56x56 N8 1.09-1.16x,
// 128 x 28x28 N16 1.08-1.10x, 512 x 7x7 N8 1.37-1.52x, and 256 x 14x14 N16 (two segments of 8
// pixels) 0.94-1.03x, a tie.
// What every AVX2 3-wide kernel needs: stride 1, KW 3 undilated, PW <= 2 (the rows' two pixels of
// padded border), KH within the 64 row pointers, planes within int.
bool avx2_three_wide(const ConvGeom& g) {
#if defined(__x86_64__) || defined(_M_X64)
  return active_simd() == TSM_SIMD_AVX2 && g.sh == 1 && g.sw == 1 && g.dw == 1 && g.kw == 3 && g.kh <= 64 &&
         g.pw <= 2 && g.ow >= 1 && g.c * g.hw() < (int64_t(1) << 31) && g.oc * g.ohw() < (int64_t(1) << 31);
#else
  (void)g;
  return false;
#endif
}

bool use_scatter_bwd_data_avx2(const ConvGeom& g) { return avx2_three_wide(g) && g.cg % 8 == 0; }

// What scatter_rows_avx2 computes: for each image, group and output row h, out's row of each
// block of 8 channels from the input rows r = h + row_off + kh*row_step in [0, in_h) (kh < kh_n,
// ascending), each a row of in_w pixels of `red` channels, through a panel of (kh, reduced
// channel, kw) x 8 weights per block. The padded output row has in_w + 2 pixels, of which
// [first, first + out_w) are out's.
struct ScatterGeom {
  int64_t n, groups, blocks, red, kh_n, row_off, row_step;
  int64_t in_h, in_w, in_channels;     // input planes, all groups' channels
  int64_t out_h, out_w, out_channels;  // output planes
  int first;
};

tsm_status scatter_rows_avx2(float* out, const float* in, const float* panels, const float* bias,
                             const ScatterGeom& s, const char* op) {
  const int64_t panel = s.kh_n * s.red * 24, in_plane = s.in_h * s.in_w, out_plane = s.out_h * s.out_w;
  // Tasks are (image, group, block of 8 channels), each reading the group's input from L2 (conv2's
  // dy is 31 KiB). Where the input is larger than half of L2 (ResNet's 64 x 56x56 layer: 784 KiB),
  // tasks are (image, group, band of output rows) over all the blocks, with the band's input rows
  // (<= ~128 KiB) copied channels-inner ([row][channel][pixel]) so that they stay in L2 while
  // every block reads them, and a row's channels are consecutive: in place they lie a channel
  // plane apart (12.25 KiB there), which maps the 64 channels' lines onto 16 of L1's 64 sets.
  const int64_t in_row = sizeof(float) * s.red * s.in_w;
  const int64_t reach = (s.kh_n - 1) * std::abs(s.row_step);  // input rows one output row spans, less one
  const bool banded = in_row * s.in_h > (int64_t(256) << 10);
  const int64_t band = banded ? std::clamp<int64_t>((int64_t(128) << 10) / in_row - reach, 1, s.out_h) : s.out_h;
  const int64_t nbands = (s.out_h + band - 1) / band;
  const int64_t per_task = banded && s.n * s.groups * nbands >= 2 * num_threads() ? s.blocks : 1;
  const int64_t splits = s.blocks / per_task;
  bool oom = false;
  parallel_for(s.n * s.groups * nbands * splits, [&](int64_t task) {
    const int64_t cb0 = (task % splits) * per_task;
    const int64_t t = task / splits, h0 = (t % nbands) * band, ng = t / nbands;
    const int64_t h1 = std::min(s.out_h, h0 + band), n = ng / s.groups, grp = ng % s.groups;
    const float* ing = in + (n * s.in_channels + grp * s.red) * in_plane;
    // input row r of channel c at src + (r - r_lo) * rstride + c * cstride
    const float* src = ing;
    int64_t r_lo = 0, rstride = s.in_w, cstride = in_plane;
    if (banded) {
      const int64_t lo = std::min(h0 + s.row_off, h0 + s.row_off + (s.kh_n - 1) * s.row_step);
      const int64_t hi = std::max(h1 - 1 + s.row_off, h1 - 1 + s.row_off + (s.kh_n - 1) * s.row_step) + 1;
      r_lo = std::max<int64_t>(0, lo);
      const int64_t r_hi = std::min(s.in_h, hi);
      float* buf = scratch(2, static_cast<size_t>(std::max<int64_t>(1, r_hi - r_lo) * s.red * s.in_w));
      if (!buf) { oom = true; return; }
      for (int64_t r = r_lo; r < r_hi; ++r)
        for (int64_t c = 0; c < s.red; ++c)
          std::memcpy(buf + ((r - r_lo) * s.red + c) * s.in_w, ing + c * in_plane + r * s.in_w,
                      sizeof(float) * s.in_w);
      src = buf;
      rstride = s.red * s.in_w;
      cstride = s.in_w;
    }
    const float* rows[64];
    for (int64_t cb = cb0; cb < cb0 + per_task; ++cb) {
      const int64_t ch = grp * s.blocks * 8 + cb * 8;  // the block's first output channel
      float* outc = out + (n * s.out_channels + ch) * out_plane;
      const float* pc = panels + (grp * s.blocks + cb) * panel;
      for (int64_t h = h0; h < h1; ++h) {
        // the taps kh whose input row lies in [0, in_h): consecutive, one range of the panel
        int64_t kh_lo = -1, nrows = 0;
        for (int64_t kh = 0; kh < s.kh_n; ++kh) {
          const int64_t r = h + s.row_off + kh * s.row_step;
          if (r < 0 || r >= s.in_h) continue;
          if (kh_lo < 0) kh_lo = kh;
          rows[nrows++] = src + (r - r_lo) * rstride;
        }
        if (nrows == 0) {  // no input row reaches this output row: zeros, or the bias
          for (int64_t j = 0; j < 8; ++j)
            std::fill_n(outc + j * out_plane + h * s.out_w, s.out_w, bias ? bias[ch + j] : 0.0f);
          continue;
        }
        conv_scatter3_row_avx2(static_cast<int>(s.in_w), nrows, rows, s.red, cstride, pc + kh_lo * s.red * 24,
                               bias ? bias + ch : nullptr, outc + h * s.out_w, out_plane, s.first,
                               static_cast<int>(s.out_w));
      }
    }
  });
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  return TSM_OK;
}

tsm_status backward_data_scatter_avx2(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  const int64_t blocks = g.cg / 8;
  float* bpack = pack_scatter_panels(w, g, 8, false);
  if (!bpack) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
  // dy row r reaches dx row h = r - PH + kh*DH; dy pixel q the padded dx pixels q + kw (dx pixel
  // q + kw - PW)
  const ScatterGeom s{g.n, g.g, blocks, g.ocg, g.kh, g.ph, -g.dh, g.oh, g.ow, g.oc, g.h, g.w, g.c,
                      static_cast<int>(g.pw)};
  const tsm_status st = scatter_rows_avx2(dx, dy, bpack, nullptr, s, "conv2d_backward_data");
  aligned_free(bpack);
  return st;
}

// The forward as the same scatter, of x's rows into y's: x pixel q reaches y pixels q - kw + PW,
// which is padded pixel q + (2 - kw) of a row whose first y pixel is padded pixel 2 - PW; so the
// panel holds the kernel mirrored in kw, and rows of 8 output channels take the bias at the store.
bool use_scatter_forward_avx2(const ConvGeom& g) { return avx2_three_wide(g) && g.ocg % 8 == 0 && g.cg >= 8; }

tsm_status forward_scatter_avx2(float* y, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  const int64_t blocks = g.ocg / 8;
  float* apack = pack_scatter_panels(w, g, 8, true);
  if (!apack) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_forward: out of memory");
  // y row oh reads x rows oh - PH + kh*DH
  const ScatterGeom s{g.n, g.g, blocks, g.cg, g.kh, -g.ph, g.dh, g.h, g.w, g.c, g.oh, g.ow, g.oc,
                      static_cast<int>(2 - g.pw)};
  const tsm_status st = scatter_rows_avx2(y, x, apack, bias, s, "conv2d_forward");
  aligned_free(apack);
  return st;
}

// Backward-data of a stride-1 convolution as the forward convolution of dy with the kernel flipped
// and its channel axes swapped: dx[c][ih][iw] = sum over (o, kh, kw) of dy[o][ih + ph - kh*dh]
// [iw + pw - kw*dw] w[o][c][kh][kw], which is the forward of dy (OC channels) with w'[c][o][kh'][kw']
// = w[o][c][KH-1-kh'][KW-1-kw'] and padding dh*(KH-1) - ph (an output of H rows again). Its GEMM
// reduces over OCg*KH*KW instead of OCg and needs no col2im, but its rows are the input channels:
// only for Cg >= 64. AVX2, Zen 3, A/B against the GEMM + col2im path (9 rounds): ResNet 64->64
// 56x56 pad 1, N8: 13.70 vs 14.67 ms (9/9); but the CNN's conv2 (Cg 32, 11x11 dy padded by 2) 3.16
// vs 2.39 ms and conv1 (Cg 1: a GEMM of one row) 2.18 vs 0.37 ms. 3-wide kernels with Cg % 8 == 0
// take the scatter above instead (ResNet's layers among them).
bool use_flipped_bwd_data(const ConvGeom& g) {
  return active_simd() == TSM_SIMD_AVX2 && g.cg >= 64 && g.sh == 1 && g.sw == 1 && g.ph <= g.dh * (g.kh - 1) &&
         g.pw <= g.dw * (g.kw - 1) && !g.pointwise() && use_implicit(g) &&
         g.ocg * g.kh * g.kw <= 4096;  // the forward's reduction, within the implicit GEMM's limit
}

tsm_status backward_data_flipped(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  ConvGeom f = g;  // the forward: input dy (N, OC, OH, OW), output dx (N, C, H, W)
  f.c = g.oc;
  f.oc = g.c;
  f.h = g.oh;
  f.w = g.ow;
  f.ph = g.dh * (g.kh - 1) - g.ph;
  f.pw = g.dw * (g.kw - 1) - g.pw;
  f.oh = g.h;
  f.ow = g.w;
  f.cg = g.ocg;
  f.ocg = g.cg;
  f.kk = f.cg * g.kh * g.kw;
  const int64_t taps = g.kh * g.kw;
  float* wf = static_cast<float*>(aligned_malloc(sizeof(float) * g.oc * g.kk));
  if (!wf) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
  for (int64_t grp = 0; grp < g.g; ++grp)
    for (int64_t o = 0; o < g.ocg; ++o)
      for (int64_t c = 0; c < g.cg; ++c) {
        const float* src = w + ((grp * g.ocg + o) * g.cg + c) * taps;
        float* dst = wf + ((grp * g.cg + c) * g.ocg + o) * taps;
        for (int64_t t = 0; t < taps; ++t) dst[t] = src[taps - 1 - t];
      }
  const tsm_status st = forward(dx, dy, wf, nullptr, f);
  aligned_free(wf);
  return st;
}

tsm_status backward_data(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  const int64_t ohw = g.ohw(), kk = g.kk;
  if (use_scatter_bwd_data_avx2(g)) return backward_data_scatter_avx2(dx, dy, w, g);
  if (use_flipped_bwd_data(g)) return backward_data_flipped(dx, dy, w, g);
  if (use_implicit(g))
    return use_scatter_bwd_data(g) ? backward_data_scatter(dx, dy, w, g)
           : use_rows_bwd_data(g) ? backward_data_rows(dx, dy, w, g)
           : use_nhwc_bwd_data(g) ? backward_data_nhwc(dx, dy, w, g) : backward_data_implicit(dx, dy, w, g);
  const bool pw = g.pointwise();
  auto one = [&](int64_t n, int64_t grp) -> bool {
    float* dxg = dx + (n * g.c + grp * g.cg) * g.hw();
    const float* dyg = dy + (n * g.oc + grp * g.ocg) * ohw;
    float* col = dxg;
    if (!pw) {
      col = scratch(2, static_cast<size_t>(kk * ohw));
      if (!col) return false;
    }
    // col (kk, ohw) = w[g]^T (kk, ocg) * dy[n, g] (ocg, ohw)
    sgemm(true, false, kk, ohw, g.ocg, 1.0f, w + grp * g.ocg * kk, kk, dyg, ohw, 0.0f, col, ohw);
    if (!pw) col2im(dxg, col, g, ohw);
    return true;
  };
  bool oom = false;
  if (spread_tasks(g)) {
    parallel_for(g.n * g.g, [&](int64_t t) { if (!one(t / g.g, t % g.g)) oom = true; });
  } else {
    for (int64_t t = 0; t < g.n * g.g && !oom; ++t) oom = !one(t / g.g, t % g.g);
  }
  if (oom)
    return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: cannot allocate the col buffer");
  return TSM_OK;
}

// ---- backward weight ----
// Backward-weight of a 3-wide kernel with stride 1 on AVX2 (conv_bw3_channel_avx2): the KH x 3
// taps' gradients of 8 output channels and one input channel in 9 registers over an image's
// pixels, each x value broadcast once per tap row into the three dy pixels it meets (dy copied
// channels-inner per block of 8 output channels, with zero pixels past the row ends). Tasks are
// (group, block of 8 output channels, range of input channels); each sums its images in order and
// owns its part of dw, so no partial sums. Only for rows of 24 pixels or more: A/B against the
// implicit GEMM (Zen 3, 2 threads, 7 rounds), ResNet 64 x 56x56 N8 1.24x, 128 x 28x28 N16 1.06x,
// but 256 x 14x14 1.00x, 512 x 7x7 0.89x and CNN conv2 (11-pixel rows from 13-pixel x rows, 15% of
// the FMAs on the zero pixels) 0.83x: per row a few pixels' work against the row's setup.
bool use_bw3_bwd_weight_avx2(const ConvGeom& g) {
  return avx2_three_wide(g) && g.kh <= 3 && g.ow >= 24 && g.ocg % 8 == 0;
}

tsm_status backward_weight_bw3_avx2(float* dw, const float* dy, const float* x, const ConvGeom& g) {
  const int64_t ohw = g.ohw(), blocks = g.ocg / 8, taps = g.kh * 3;
  const int64_t dyt_row = (g.ow + 4) * 8;
  // Enough tasks for the threads: input channels split into ranges when the blocks are few.
  const int64_t units = g.g * blocks, nt = num_threads();
  const int64_t csplit = std::min<int64_t>(g.cg, std::max<int64_t>(1, (2 * nt + units - 1) / units));
  bool oom = false;
  parallel_for(units * csplit, [&](int64_t task) {
    const int64_t part = task % csplit, unit = task / csplit, grp = unit / blocks, cb = unit % blocks;
    const int64_t c0 = g.cg * part / csplit, c1 = g.cg * (part + 1) / csplit;
    float* dyt = scratch(2, static_cast<size_t>(g.oh * dyt_row));
    float* acc = scratch(3, static_cast<size_t>((c1 - c0) * taps * 8));
    if (!dyt || !acc) { oom = true; return; }
    std::memset(acc, 0, sizeof(float) * static_cast<size_t>((c1 - c0) * taps * 8));
    const int64_t o0 = grp * g.ocg + cb * 8;
    for (int64_t n = 0; n < g.n; ++n) {
      conv_dy_rows8_avx2(dyt, dyt_row, dy + (n * g.oc + o0) * ohw, ohw, g.oh, g.ow);
      for (int64_t c = c0; c < c1; ++c)
        conv_bw3_channel_avx2(dyt, g.oh, dyt_row, x + (n * g.c + grp * g.cg + c) * g.hw(), g.h, g.w, g.ph, g.dh,
                              static_cast<int>(g.kh), static_cast<int>(g.pw), acc + (c - c0) * taps * 8);
    }
    // acc[c][kh][kw][j] -> dw[o0 + j][c][kh][kw]
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t j = 0; j < 8; ++j) dw[(o0 + j) * g.kk + c * taps + t] = acc[((c - c0) * taps + t) * 8 + j];
  });
  if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: out of memory");
  return TSM_OK;
}

tsm_status backward_weight(float* dw, float* dbias, const float* dy, const float* x,
                           const ConvGeom& g) {
  const int64_t ohw = g.ohw(), kk = g.kk, wsize = g.oc * kk;
  if (use_few_taps_bwd_weight(g)) return backward_weight_few_taps(dw, dbias, dy, x, g);
  if (dbias) {
    // dbias[o] = sum over n and pixels of dy[n, o]; 16 independent partial sums per plane so the
    // compiler can vectorize without reassociating.
    const int64_t nt = std::min<int64_t>(num_threads(), g.oc);
    parallel_for(g.n * g.oc * ohw < 32768 ? 1 : nt, [&](int64_t t) {
      const int64_t tasks = g.n * g.oc * ohw < 32768 ? 1 : nt;
      for (int64_t o = g.oc * t / tasks; o < g.oc * (t + 1) / tasks; ++o) {
        double acc = 0.0;
        for (int64_t n = 0; n < g.n; ++n) {
          const float* p = dy + (n * g.oc + o) * ohw;
          float part[16] = {0};
          int64_t i = 0;
          for (; i + 16 <= ohw; i += 16)
            for (int j = 0; j < 16; ++j) part[j] += p[i + j];
          float s = 0.0f;
          for (; i < ohw; ++i) s += p[i];
          for (int j = 0; j < 16; ++j) s += part[j];
          acc += s;
        }
        dbias[o] = static_cast<float>(acc);
      }
    });
  }
  if (use_bw3_bwd_weight_avx2(g)) return backward_weight_bw3_avx2(dw, dy, x, g);
  if (use_direct_bwd_weight(g)) {
    // Output channels are split over the threads: no partial sums.
    const DirectConvShape s = direct_shape(g);
    const int64_t nblocks = (g.oc + 1) / 2;
    const int64_t nt = std::min<int64_t>(num_threads(), nblocks);
    parallel_for(nt, [&](int64_t t) {
      conv_direct_backward_weight_avx512(dw, dy, x, g.n, 2 * (nblocks * t / nt),
                                         std::min(g.oc, 2 * (nblocks * (t + 1) / nt)), s);
    });
    return TSM_OK;
  }
  if (use_rows_bwd_weight(g)) return backward_weight_rows(dw, dy, x, g);
  if (use_implicit(g)) return backward_weight_implicit(dw, dy, x, g);
  const bool pw = g.pointwise();
  // dw[g] (ocg, kk) (+)= dy[n, g] (ocg, ohw) * col^T (ohw, kk)
  auto one = [&](float* dwt, int64_t n, int64_t grp, float beta) -> bool {
    const float* xg = x + (n * g.c + grp * g.cg) * g.hw();
    const float* dyg = dy + (n * g.oc + grp * g.ocg) * ohw;
    const float* col = xg;
    if (!pw) {
      float* buf = scratch(2, static_cast<size_t>(kk * ohw));
      if (!buf) return false;
      im2col(buf, xg, g);
      col = buf;
    }
    sgemm(false, true, g.ocg, kk, ohw, 1.0f, dyg, ohw, col, ohw, beta, dwt + grp * g.ocg * kk, kk);
    return true;
  };
  bool oom = false;
  const int nthreads = num_threads();
  if (nthreads > 1 && g.n >= 2 * nthreads) {
    const int nt = nthreads;
    float* partial = static_cast<float*>(aligned_malloc(sizeof(float) * (nt - 1) * wsize));
    if (!partial) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: out of memory");
    parallel_for(nt, [&](int64_t t) {
      float* dwt = t == 0 ? dw : partial + (t - 1) * wsize;
      const int64_t n0 = g.n * t / nt, n1 = g.n * (t + 1) / nt;
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t grp = 0; grp < g.g; ++grp)
          if (!one(dwt, n, grp, n == n0 ? 0.0f : 1.0f)) oom = true;
    });
    for (int t = 1; t < nt; ++t) {
      const float* p = partial + (t - 1) * wsize;
      for (int64_t i = 0; i < wsize; ++i) dw[i] += p[i];
    }
    aligned_free(partial);
  } else {
    for (int64_t n = 0; n < g.n && !oom; ++n)
      for (int64_t grp = 0; grp < g.g && !oom; ++grp) oom = !one(dw, n, grp, n == 0 ? 0.0f : 1.0f);
  }
  if (oom)
    return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: cannot allocate the col buffer");
  return TSM_OK;
}

}  // namespace
}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_conv2d_output_size(int64_t* oh, int64_t* ow, const tsm_conv2d_desc* d) {
  tsm::ConvGeom g;
  tsm_status s = tsm::make_geom("conv2d_output_size", d, &g);
  if (s != TSM_OK) return s;
  if (oh) *oh = g.oh;
  if (ow) *ow = g.ow;
  return TSM_OK;
}

TSM_API tsm_status tsm_conv2d_forward(float* y, const float* x, const float* w, const float* bias,
                                      const tsm_conv2d_desc* d) {
  tsm::ConvGeom g;
  tsm_status s = tsm::make_geom("conv2d_forward", d, &g);
  if (s != TSM_OK) return s;
  if (!y || !x || !w)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "conv2d_forward: %s is NULL",
                     !y ? "y" : !x ? "x" : "w");
  return tsm::forward(y, x, w, bias, g);
}

TSM_API tsm_status tsm_conv2d_backward_data(float* dx, const float* dy, const float* w,
                                            const tsm_conv2d_desc* d) {
  tsm::ConvGeom g;
  tsm_status s = tsm::make_geom("conv2d_backward_data", d, &g);
  if (s != TSM_OK) return s;
  if (!dx || !dy || !w)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "conv2d_backward_data: %s is NULL",
                     !dx ? "dx" : !dy ? "dy" : "w");
  return tsm::backward_data(dx, dy, w, g);
}

TSM_API tsm_status tsm_conv2d_backward_weight(float* dw, float* dbias, const float* dy,
                                              const float* x, const tsm_conv2d_desc* d) {
  tsm::ConvGeom g;
  tsm_status s = tsm::make_geom("conv2d_backward_weight", d, &g);
  if (s != TSM_OK) return s;
  if (!dw || !dy || !x)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "conv2d_backward_weight: %s is NULL",
                     !dw ? "dw" : !dy ? "dy" : "x");
  return tsm::backward_weight(dw, dbias, dy, x, g);
}

}  // extern "C"
