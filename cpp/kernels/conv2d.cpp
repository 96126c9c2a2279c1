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
#include <algorithm>
#include <cstring>
#include <vector>

#include "../runtime/runtime.h"
#include "kernels.h"
#include "simd/conv_direct.h"

namespace tsm {

#if !(defined(__x86_64__) || defined(_M_X64))
// The direct kernels are x86-only; elsewhere use_direct() is false and these are never called.
bool conv_direct_avx512_available() { return false; }
bool conv_direct_forward_avx512(float*, const float*, const float*, const float*,
                                const DirectConvShape&) { return false; }
bool conv_direct_backward_data_avx512(float*, const float*, const float*, const DirectConvShape&) {
  return false;
}
bool conv_direct_backward_weight_avx512(float*, const float*, const float*, int64_t,
                                        const DirectConvShape&) { return false; }
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
void col2im(float* dxg, const float* col, const ConvGeom& g) {
  const int64_t ohw = g.ohw();
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

// Direct kernels: stride 1, small reduction, AVX-512.
bool use_direct(const ConvGeom& g) {
  return active_simd() == TSM_SIMD_AVX512 && g.sh == 1 && g.sw == 1 && g.kk <= 32 &&
         g.ow >= 8 && conv_direct_avx512_available();
}

DirectConvShape direct_shape(const ConvGeom& g) {
  return DirectConvShape{g.c, g.h, g.w, g.oc, g.kh, g.kw, g.ph, g.pw, g.dh, g.dw, g.g, g.oh, g.ow};
}

// ---- forward ----
tsm_status forward(float* y, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  const int64_t ohw = g.ohw(), kk = g.kk;
  if (use_direct(g)) {
    const DirectConvShape s = direct_shape(g);
    bool oom = false;
    parallel_for(g.n, [&](int64_t n) {
      if (!conv_direct_forward_avx512(y + n * g.oc * ohw, x + n * g.c * g.hw(), w, bias, s))
        oom = true;
    });
    if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_forward: out of memory");
    return TSM_OK;
  }
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
tsm_status backward_data(float* dx, const float* dy, const float* w, const ConvGeom& g) {
  const int64_t ohw = g.ohw(), kk = g.kk;
  if (use_direct(g)) {
    const DirectConvShape s = direct_shape(g);
    bool oom = false;
    parallel_for(g.n, [&](int64_t n) {
      if (!conv_direct_backward_data_avx512(dx + n * g.c * g.hw(), dy + n * g.oc * ohw, w, s))
        oom = true;
    });
    if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_data: out of memory");
    return TSM_OK;
  }
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
    if (!pw) col2im(dxg, col, g);
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
tsm_status backward_weight(float* dw, float* dbias, const float* dy, const float* x,
                           const ConvGeom& g) {
  const int64_t ohw = g.ohw(), kk = g.kk, wsize = g.oc * kk;
  if (dbias) {
    for (int64_t o = 0; o < g.oc; ++o) {
      double acc = 0.0;
      for (int64_t n = 0; n < g.n; ++n) {
        const float* p = dy + (n * g.oc + o) * ohw;
        float s = 0.0f;
        for (int64_t i = 0; i < ohw; ++i) s += p[i];
        acc += s;
      }
      dbias[o] = static_cast<float>(acc);
    }
  }
  if (use_direct(g)) {
    const int nt = std::max<int64_t>(1, std::min<int64_t>(num_threads(), g.n));
    // Per-thread partial sums over a contiguous range of images, then one reduction.
    float* partial = static_cast<float*>(aligned_malloc(sizeof(float) * nt * wsize));
    if (!partial) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: out of memory");
    const DirectConvShape s = direct_shape(g);
    bool oom = false;
    parallel_for(nt, [&](int64_t t) {
      const int64_t n0 = g.n * t / nt, n1 = g.n * (t + 1) / nt;
      if (!conv_direct_backward_weight_avx512(partial + t * wsize, dy + n0 * g.oc * ohw,
                                              x + n0 * g.c * g.hw(), n1 - n0, s))
        oom = true;
    });
    for (int64_t i = 0; i < wsize; ++i) {
      float acc = 0.0f;
      for (int t = 0; t < nt; ++t) acc += partial[t * wsize + i];
      dw[i] = acc;
    }
    aligned_free(partial);
    if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "conv2d_backward_weight: out of memory");
    return TSM_OK;
  }
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
