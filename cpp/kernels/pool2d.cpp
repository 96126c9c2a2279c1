// 2-D pooling, float32, contiguous NCHW, forward and backward (PyTorch semantics).
//
//   x       (N, C, H, W)     input
//   y       (N, C, OH, OW)   output, OH = tsm_pool2d_output_size(H, KH, SH, PH, DH, ceil_mode)
//   indices (N, C, OH, OW)   max pooling: flat index ih*W + iw of the winner in its input plane
//   dy, dx                   gradients, shaped as y and x
//
// Every (n, c) plane is independent: planes are spread over the thread pool. The 2x2 stride-2
// window without padding (the CNN case) has its own loop; everything else goes through the
// general window loop, which follows PyTorch's CPU kernels (window clipping, NaN, divisors).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "../runtime/runtime.h"
#include "pool_plane.h"
#include "simd/pool_simd.h"

namespace tsm {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 40;

int64_t output_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  if (in < 1 || k < 1 || s < 1 || d < 1 || p < 0) return -1;
  if (in > kMaxDim || k > kMaxDim || s > kMaxDim || d > kMaxDim || p > kMaxDim) return -1;
  const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  // floor division (num may be negative)
  int64_t q = num / s;
  if ((num % s != 0) && ((num < 0) != (s < 0))) --q;
  int64_t out = q + 1;
  // the last window must start inside the input or the left padding
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

struct PoolGeom {
  int64_t n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
  bool ceil_mode, count_include_pad;
  int64_t planes() const { return n * c; }
};

tsm_status make_geom(const char* op, const tsm_pool2d_desc* d, bool dilation, PoolGeom* g) {
  if (!d) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: descriptor is NULL", op);
  struct Field { const char* name; int64_t v; int64_t min; };
  const Field fields[] = {{"n", d->n, 1},           {"c", d->c, 1},
                          {"h", d->h, 1},           {"w", d->w, 1},
                          {"kh", d->kh, 1},         {"kw", d->kw, 1},
                          {"stride_h", d->stride_h, 1}, {"stride_w", d->stride_w, 1},
                          {"pad_h", d->pad_h, 0},   {"pad_w", d->pad_w, 0},
                          {"dil_h", d->dil_h, 1},   {"dil_w", d->dil_w, 1}};
  for (const Field& f : fields) {
    if (f.v < f.min)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s must be >= %lld, got %lld", op, f.name,
                  (long long)f.min, (long long)f.v);
    if (f.v > kMaxDim)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s = %lld is too large", op, f.name,
                  (long long)f.v);
  }
  if (!dilation && (d->dil_h != 1 || d->dil_w != 1))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: dilation must be 1, got (%lld, %lld)", op,
                (long long)d->dil_h, (long long)d->dil_w);
  if (d->pad_h > d->kh / 2 || d->pad_w > d->kw / 2)
    return fail(TSM_ERR_INVALID_ARGUMENT,
                "%s: padding (%lld, %lld) must be at most half the kernel size (%lld, %lld)", op,
                (long long)d->pad_h, (long long)d->pad_w, (long long)d->kh, (long long)d->kw);
  const bool cm = d->ceil_mode != 0;
  const int64_t oh = output_size(d->h, d->kh, d->stride_h, d->pad_h, d->dil_h, cm);
  const int64_t ow = output_size(d->w, d->kw, d->stride_w, d->pad_w, d->dil_w, cm);
  if (oh < 1 || ow < 1)
    return fail(TSM_ERR_INVALID_ARGUMENT,
                "%s: output size (%lld x %lld) is too small for input (%lld x %lld); it must be "
                ">= 1",
                op, (long long)oh, (long long)ow, (long long)d->h, (long long)d->w);
  *g = PoolGeom{d->n,     d->c,     d->h,      d->w,     d->kh, d->kw, d->stride_h, d->stride_w,
                d->pad_h, d->pad_w, d->dil_h, d->dil_w, oh,    ow,    cm,          d->count_include_pad != 0};
  return TSM_OK;
}

tsm_status check_shape(const char* op, const tsm_pool2d_shape* s) {
  if (!s) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: shape is NULL", op);
  struct Field { const char* name; int64_t v; };
  const Field fields[] = {{"n", s->n}, {"c", s->c}, {"h", s->h}, {"w", s->w}, {"oh", s->oh}, {"ow", s->ow}};
  for (const Field& f : fields) {
    if (f.v < 1)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s must be >= 1, got %lld", op, f.name,
                  (long long)f.v);
    if (f.v > kMaxDim)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s = %lld is too large", op, f.name,
                  (long long)f.v);
  }
  return TSM_OK;
}

// Runs fn(plane_begin, plane_end) over chunks of planes on the thread pool.
template <typename Fn>
void for_planes(int64_t planes, int64_t work_per_plane, Fn fn) {
  const int nt = num_threads();
  // Below ~32K elements of work, waking the pool costs more than it saves.
  int64_t tasks = planes * work_per_plane < 32768 ? 1 : std::min<int64_t>(planes, nt * 4);
  parallel_for(tasks, [&](int64_t t) { fn(planes * t / tasks, planes * (t + 1) / tasks); });
}

// ---- max pooling ----

// A tap of the window as the pooling sees it: x itself, or relu(x) (as tsm_unary_forward's RELU:
// x > 0 ? x : 0, so NaN and -0 give +0) when the pooling reads a ReLU's input.
template <bool Relu>
inline float tap(float v) {
  return Relu ? (v > 0.0f ? v : 0.0f) : v;
}

// y (OH, OW), idx (OH, OW) from one plane x (H, W): the general window loop (as PyTorch's CPU
// kernel: start at the first in-bounds element, val > max or isnan(val) wins).
template <bool Relu>
void max_plane(float* y, int32_t* idx, const float* x, const PoolGeom& g) {
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    int64_t h0 = oh * g.sh - g.ph;
    const int64_t h1 = std::min(h0 + (g.kh - 1) * g.dh + 1, g.h);
    while (h0 < 0) h0 += g.dh;
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      int64_t w0 = ow * g.sw - g.pw;
      const int64_t w1 = std::min(w0 + (g.kw - 1) * g.dw + 1, g.w);
      while (w0 < 0) w0 += g.dw;
      // PyTorch starts from the first in-bounds tap; an empty window (all taps in the padding,
      // only possible with dilation) keeps -inf and that start, clamped into the plane.
      int64_t best = std::min(h0 * g.w + w0, g.h * g.w - 1);
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t ih = h0; ih < h1; ih += g.dh) {
        for (int64_t iw = w0; iw < w1; iw += g.dw) {
          const float v = tap<Relu>(x[ih * g.w + iw]);
          if (v > m || std::isnan(v)) {
            m = v;
            best = ih * g.w + iw;
          }
        }
      }
      y[oh * g.ow + ow] = m;
      idx[oh * g.ow + ow] = static_cast<int32_t>(best);
    }
  }
}

// Whether a pooling is the 2x2, stride 2, no padding, dilation 1 case of max_plane_2x2.
inline bool window_2x2(const PoolGeom& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && g.dh == 1 &&
         g.dw == 1;
}

// The 2x2, stride 2, no padding, dilation 1 case (any ceil_mode: a window clipped by the right or
// bottom edge goes through the general loop).
template <bool Relu>
void max_plane_2x2(float* y, int32_t* idx, const float* x, const PoolGeom& g) {
  const int64_t full_h = std::min(g.oh, g.h / 2), full_w = std::min(g.ow, g.w / 2);
  const int64_t W = g.w;
#if defined(__x86_64__) || defined(_M_X64)
  if (active_simd() == TSM_SIMD_AVX512) {
    max_pool_2x2_full_avx512(y, idx, x, W, g.ow, full_h, full_w, Relu);
  } else if (active_simd() == TSM_SIMD_AVX2) {
    max_pool_2x2_full_avx2(y, idx, x, W, g.ow, full_h, full_w, Relu);
  } else
#endif
  for (int64_t oh = 0; oh < full_h; ++oh) {
    const float* r0 = x + 2 * oh * W;
    const float* r1 = r0 + W;
    float* yo = y + oh * g.ow;
    int32_t* io = idx + oh * g.ow;
    const int32_t base = static_cast<int32_t>(2 * oh * W);
    for (int64_t ow = 0; ow < full_w; ++ow) {
      // window order as PyTorch: (0,0) (0,1) (1,0) (1,1); strict > or NaN replaces
      const float a = tap<Relu>(r0[2 * ow]), b = tap<Relu>(r0[2 * ow + 1]);
      const float c = tap<Relu>(r1[2 * ow]), d = tap<Relu>(r1[2 * ow + 1]);
      float m = a;
      int32_t k = 0;
      // a is the first candidate against -inf: a > -inf unless a is -inf (then index 0 stays)
      if (b > m || b != b) { m = b; k = 1; }
      if (c > m || c != c) { m = c; k = static_cast<int32_t>(W); }
      if (d > m || d != d) { m = d; k = static_cast<int32_t>(W) + 1; }
      yo[ow] = m;
      io[ow] = base + static_cast<int32_t>(2 * ow) + k;
    }
  }
  if (full_h == g.oh && full_w == g.ow) return;
  // Clipped windows (ceil_mode): general loop on the remaining border.
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    for (int64_t ow = (oh < full_h ? full_w : 0); ow < g.ow; ++ow) {
      const int64_t h0 = oh * 2, w0 = ow * 2;
      const int64_t h1 = std::min(h0 + 2, g.h), w1 = std::min(w0 + 2, g.w);
      int64_t best = h0 * W + w0;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) {
          const float v = tap<Relu>(x[ih * W + iw]);
          if (v > m || std::isnan(v)) { m = v; best = ih * W + iw; }
        }
      y[oh * g.ow + ow] = m;
      idx[oh * g.ow + ow] = static_cast<int32_t>(best);
    }
  }
}

// ---- average pooling ----

// The window [h0, h1) x [w0, w1) clipped to the input, and its divisor, as PyTorch computes them.
struct AvgWindow {
  int64_t h0, h1, w0, w1;
  float inv;  // 1 / divisor, 0 when the window is empty
};

inline AvgWindow avg_window(const PoolGeom& g, int64_t oh, int64_t ow) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = std::min(h0 + g.kh, g.h + g.ph), w1 = std::min(w0 + g.kw, g.w + g.pw);
  const int64_t pool_size = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.h);
  w1 = std::min(w1, g.w);
  AvgWindow win{h0, h1, w0, w1, 0.0f};
  if (h0 >= h1 || w0 >= w1) return win;
  const int64_t divisor = g.count_include_pad ? pool_size : (h1 - h0) * (w1 - w0);
  win.inv = 1.0f / static_cast<float>(divisor);
  return win;
}

}  // namespace

tsm_status max_pool2d_check(const char* op, const tsm_pool2d_desc* d, int64_t* oh, int64_t* ow) {
  PoolGeom g{};
  const tsm_status s = make_geom(op, d, true, &g);
  if (s != TSM_OK) return s;
  if (g.h * g.w > INT32_MAX)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: h*w = %lld does not fit the int32 indices", op,
                (long long)(g.h * g.w));
  *oh = g.oh;
  *ow = g.ow;
  return TSM_OK;
}

void max_pool2d_plane(float* y, int32_t* idx, const float* x, const tsm_pool2d_desc& d, int64_t oh,
                      int64_t ow, bool relu) {
  const PoolGeom g{d.n,     d.c,      d.h,      d.w, d.kh, d.kw, d.stride_h, d.stride_w,
                   d.pad_h, d.pad_w, d.dil_h, d.dil_w, oh, ow, d.ceil_mode != 0, false};
  if (window_2x2(g)) {
    if (relu) max_plane_2x2<true>(y, idx, x, g);
    else max_plane_2x2<false>(y, idx, x, g);
  } else {
    if (relu) max_plane<true>(y, idx, x, g);
    else max_plane<false>(y, idx, x, g);
  }
}

namespace {

// tsm_max_pool2d_forward, of x or (Relu) of relu(x).
template <bool Relu>
tsm_status max_pool2d_forward(const char* op, float* y, int32_t* indices, const float* x,
                              const tsm_pool2d_desc* d) {
  PoolGeom g;
  tsm_status s = make_geom(op, d, true, &g);
  if (s != TSM_OK) return s;
  if (g.h * g.w > INT32_MAX)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: h*w = %lld does not fit the int32 indices", op,
                (long long)(g.h * g.w));
  if (!y || !indices || !x)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op,
                !y ? "y" : !indices ? "indices" : "x");
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  const bool two = window_2x2(g);
  for_planes(g.planes(), hw, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      if (two) max_plane_2x2<Relu>(y + p * ohw, indices + p * ohw, x + p * hw, g);
      else max_plane<Relu>(y + p * ohw, indices + p * ohw, x + p * hw, g);
    }
  });
  return TSM_OK;
}

// tsm_max_pool2d_backward; with Relu, each dy counts only where y > 0 (as the ReLU's backward:
// a select, so a NaN dy at y <= 0 gives 0).
template <bool Relu>
tsm_status max_pool2d_backward(const char* op, float* dx, const float* dy, const float* y,
                               const int32_t* indices, const tsm_pool2d_shape* sh) {
  tsm_status s = check_shape(op, sh);
  if (s != TSM_OK) return s;
  if (!dx || !dy || !indices || (Relu && !y))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op,
                !dx ? "dx" : !dy ? "dy" : !indices ? "indices" : "y");
  const int64_t hw = sh->h * sh->w, ohw = sh->oh * sh->ow, planes = sh->n * sh->c;
  // First offending position, or planes*ohw when all indices are in range.
  std::atomic<int64_t> bad{planes * ohw};
  // Whole 2x2 stride-2 windows fit: a plane whose indices all lie in their own windows (those of
  // such a pooling do) is written in one dense pass instead of zeroed and scattered into (AVX2, also
  // on AVX-512 CPUs). The CNN's first pooling (26x26 -> 13x13, through its ReLU), 2 threads, dx not
  // in cache as in a training step: 332-346 -> 235-244 us. Rows of at least 8 outputs: on its second
  // (11x11 -> 5x5) the row tails made the dense pass 2-3x slower than the scatter. An AVX-512 form
  // (16 outputs per step, masked stores) was 2x faster with dx in cache but 10-25% slower than the
  // scatter with dx cold: masked stores that miss the cache are slow on Zen 5.
  // (The dense pass computes window corners in int32: planes of at most INT32_MAX elements.)
  [[maybe_unused]] const bool two =  // the dense pass is x86-only
      2 * sh->oh <= sh->h && 2 * sh->ow <= sh->w && sh->ow >= 8 && hw <= INT32_MAX;
  for_planes(planes, hw + ohw, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int32_t* ip = indices + p * ohw;
      const float* dyp = dy + p * ohw;
      float* dxp = dx + p * hw;
#if defined(__x86_64__) || defined(_M_X64)
      const float* ypp = Relu ? y + p * ohw : nullptr;
      if (two && (active_simd() == TSM_SIMD_AVX2 || active_simd() == TSM_SIMD_AVX512) &&
          max_pool_2x2_backward_avx2(dxp, dyp, ypp, ip, sh->h, sh->w, sh->oh, sh->ow, Relu))
        continue;
#endif
      // Validate the plane's indices before writing anything through them.
      uint32_t worst = 0;
      for (int64_t i = 0; i < ohw; ++i) worst = std::max(worst, static_cast<uint32_t>(ip[i]));
      std::memset(dxp, 0, sizeof(float) * hw);
      if (static_cast<int64_t>(worst) >= hw) {
        for (int64_t i = 0; i < ohw; ++i) {
          if (ip[i] < 0 || ip[i] >= hw) {
            int64_t pos = p * ohw + i, cur = bad.load();
            while (pos < cur && !bad.compare_exchange_weak(cur, pos)) {}
            break;
          }
        }
        continue;
      }
      if (Relu) {
        // The select as a bit mask: written as a ?: GCC branches on y > 0, which is a coin flip
        // here (350 vs 220 us for the CNN's first pooling).
        const float* yp = y + p * ohw;
        for (int64_t i = 0; i < ohw; ++i) {
          uint32_t g;
          std::memcpy(&g, dyp + i, sizeof g);
          g &= 0u - static_cast<uint32_t>(yp[i] > 0.0f);
          float v;
          std::memcpy(&v, &g, sizeof v);
          dxp[ip[i]] += v;
        }
      } else {
        for (int64_t i = 0; i < ohw; ++i) dxp[ip[i]] += dyp[i];
      }
    }
  });
  const int64_t b = bad.load();
  if (b < planes * ohw)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: indices[%lld] = %d is out of range [0, %lld)", op,
                (long long)b, indices[b], (long long)hw);
  return TSM_OK;
}

}  // namespace
}  // namespace tsm

extern "C" {

TSM_API int64_t tsm_pool2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                                       int64_t dilation, int ceil_mode) {
  return tsm::output_size(in, kernel, stride, pad, dilation, ceil_mode != 0);
}

TSM_API tsm_status tsm_max_pool2d_forward(float* y, int32_t* indices, const float* x,
                                          const tsm_pool2d_desc* d) {
  return tsm::max_pool2d_forward<false>("max_pool2d_forward", y, indices, x, d);
}

TSM_API tsm_status tsm_max_pool2d_relu_forward(float* y, int32_t* indices, const float* x,
                                               const tsm_pool2d_desc* d) {
  return tsm::max_pool2d_forward<true>("max_pool2d_relu_forward", y, indices, x, d);
}

TSM_API tsm_status tsm_max_pool2d_backward(float* dx, const float* dy, const int32_t* indices,
                                           const tsm_pool2d_shape* sh) {
  return tsm::max_pool2d_backward<false>("max_pool2d_backward", dx, dy, nullptr, indices, sh);
}

TSM_API tsm_status tsm_max_pool2d_relu_backward(float* dx, const float* dy, const float* y,
                                                const int32_t* indices,
                                                const tsm_pool2d_shape* sh) {
  return tsm::max_pool2d_backward<true>("max_pool2d_relu_backward", dx, dy, y, indices, sh);
}

TSM_API tsm_status tsm_avg_pool2d_forward(float* y, const float* x, const tsm_pool2d_desc* d) {
  tsm::PoolGeom g;
  tsm_status s = tsm::make_geom("avg_pool2d_forward", d, false, &g);
  if (s != TSM_OK) return s;
  if (!y || !x)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "avg_pool2d_forward: %s is NULL", !y ? "y" : "x");
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  tsm::for_planes(g.planes(), hw, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* xp = x + p * hw;
      float* yp = y + p * ohw;
      for (int64_t oh = 0; oh < g.oh; ++oh)
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          const tsm::AvgWindow win = tsm::avg_window(g, oh, ow);
          float sum = 0.0f;
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) sum += xp[ih * g.w + iw];
          yp[oh * g.ow + ow] = sum * win.inv;
        }
    }
  });
  return TSM_OK;
}

TSM_API tsm_status tsm_avg_pool2d_backward(float* dx, const float* dy, const tsm_pool2d_desc* d) {
  tsm::PoolGeom g;
  tsm_status s = tsm::make_geom("avg_pool2d_backward", d, false, &g);
  if (s != TSM_OK) return s;
  if (!dx || !dy)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "avg_pool2d_backward: %s is NULL",
                     !dx ? "dx" : "dy");
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  tsm::for_planes(g.planes(), hw, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* dyp = dy + p * ohw;
      float* dxp = dx + p * hw;
      std::memset(dxp, 0, sizeof(float) * hw);
      for (int64_t oh = 0; oh < g.oh; ++oh)
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          const tsm::AvgWindow win = tsm::avg_window(g, oh, ow);
          const float v = dyp[oh * g.ow + ow] * win.inv;
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) dxp[ih * g.w + iw] += v;
        }
    }
  });
  return TSM_OK;
}

TSM_API tsm_status tsm_adaptive_avg_pool2d_forward(float* y, const float* x,
                                                   const tsm_pool2d_shape* sh) {
  tsm_status s = tsm::check_shape("adaptive_avg_pool2d_forward", sh);
  if (s != TSM_OK) return s;
  if (!y || !x)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "adaptive_avg_pool2d_forward: %s is NULL",
                     !y ? "y" : "x");
  const int64_t H = sh->h, W = sh->w, OH = sh->oh, OW = sh->ow, hw = H * W, ohw = OH * OW;
  tsm::for_planes(sh->n * sh->c, hw + ohw, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* xp = x + p * hw;
      float* yp = y + p * ohw;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
          float sum = 0.0f;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) sum += xp[ih * W + iw];
          yp[oh * OW + ow] = sum / static_cast<float>((h1 - h0) * (w1 - w0));
        }
      }
    }
  });
  return TSM_OK;
}

TSM_API tsm_status tsm_adaptive_avg_pool2d_backward(float* dx, const float* dy,
                                                    const tsm_pool2d_shape* sh) {
  tsm_status s = tsm::check_shape("adaptive_avg_pool2d_backward", sh);
  if (s != TSM_OK) return s;
  if (!dx || !dy)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "adaptive_avg_pool2d_backward: %s is NULL",
                     !dx ? "dx" : "dy");
  const int64_t H = sh->h, W = sh->w, OH = sh->oh, OW = sh->ow, hw = H * W, ohw = OH * OW;
  tsm::for_planes(sh->n * sh->c, hw + ohw, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* dyp = dy + p * ohw;
      float* dxp = dx + p * hw;
      std::memset(dxp, 0, sizeof(float) * hw);
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
          const float v = dyp[oh * OW + ow] / static_cast<float>((h1 - h0) * (w1 - w0));
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) dxp[ih * W + iw] += v;
        }
      }
    }
  });
  return TSM_OK;
}

}  // extern "C"
