// 2-D max and average pooling of CUDA tensors, float32, contiguous NCHW, forward and backward (the
// CPU twin: cpp/kernels/pool2d.cpp; PyTorch's windows, ceil_mode, count_include_pad, NaN rules):
//
//   x       (N, C, H, W)     input
//   y       (N, C, OH, OW)   output, OH = tsm_pool2d_output_size(H, KH, SH, PH, DH, ceil_mode)
//   indices (N, C, OH, OW)   max pooling: flat index ih*W + iw of the winner in its input plane
//   dy, dx                   gradients, shaped as y and x
//
// Forward: one thread per output element, the CPU's window loop verbatim (first in-bounds tap, then
// `v > max || isnan(v)` replaces, so the last NaN wins and ties keep the first), hence identical
// values and indices. Backward: one thread per *input* element gathers the outputs whose window
// holds it, in the CPU's (oh, ow) order, so sums are bit-identical and need no atomics; when max
// pooling has all-padding windows (only with dilation), whose indices point outside their taps, one
// thread per plane scatters in the CPU's order instead (rare; slower, still bit-identical).
#include <climits>

#include "tensor_common.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 40;

struct PGeom {
  int64_t n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
  bool count_include_pad;
};

tsm_status make_geom(const char* op, const tsm_pool2d_desc* d, bool dilation, PGeom* g) {
  if (!d) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: descriptor is NULL", op);
  struct Field { const char* name; int64_t v; int64_t min; };
  const Field fields[] = {{"n", d->n, 1},           {"c", d->c, 1},           {"h", d->h, 1},
                          {"w", d->w, 1},           {"kh", d->kh, 1},         {"kw", d->kw, 1},
                          {"stride_h", d->stride_h, 1}, {"stride_w", d->stride_w, 1},
                          {"pad_h", d->pad_h, 0},   {"pad_w", d->pad_w, 0},   {"dil_h", d->dil_h, 1},
                          {"dil_w", d->dil_w, 1}};
  for (const Field& f : fields) {
    if (f.v < f.min)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s must be >= %lld, got %lld", op, f.name, (long long)f.min,
                  (long long)f.v);
    if (f.v > kMaxDim) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s = %lld is too large", op, f.name, (long long)f.v);
  }
  if (!dilation && (d->dil_h != 1 || d->dil_w != 1))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: dilation must be 1, got (%lld, %lld)", op, (long long)d->dil_h,
                (long long)d->dil_w);
  if (d->pad_h > d->kh / 2 || d->pad_w > d->kw / 2)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: padding (%lld, %lld) must be at most half the kernel size (%lld, %lld)",
                op, (long long)d->pad_h, (long long)d->pad_w, (long long)d->kh, (long long)d->kw);
  const int cm = d->ceil_mode != 0;
  const int64_t oh = tsm_pool2d_output_size(d->h, d->kh, d->stride_h, d->pad_h, d->dil_h, cm);
  const int64_t ow = tsm_pool2d_output_size(d->w, d->kw, d->stride_w, d->pad_w, d->dil_w, cm);
  if (oh < 1 || ow < 1)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: output size (%lld x %lld) is too small for input (%lld x %lld)", op,
                (long long)oh, (long long)ow, (long long)d->h, (long long)d->w);
  const __int128 big = (__int128)d->n * d->c * ((__int128)d->h * d->w > (__int128)oh * ow ? (__int128)d->h * d->w
                                                                                         : (__int128)oh * ow);
  if (big > ((__int128)1 << 53)) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: tensor sizes are too large", op);
  *g = PGeom{d->n, d->c, d->h, d->w, d->kh, d->kw, d->stride_h, d->stride_w, d->pad_h, d->pad_w,
             d->dil_h, d->dil_w, oh, ow, d->count_include_pad != 0};
  return TSM_OK;
}

// Smallest oh >= 0 with oh * s >= num (num may be negative).
__device__ __forceinline__ int64_t first_at_least(int64_t num, int64_t s) { return num <= 0 ? 0 : (num + s - 1) / s; }

// ---- max pooling ----

__global__ void max_fwd_kernel(float* __restrict__ y, int32_t* __restrict__ idx, const float* __restrict__ x, PGeom g) {
  const int64_t ohw = g.oh * g.ow, total = g.n * g.c * ohw, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t plane = e / ohw, pos = e - plane * ohw;
    const int64_t oh = pos / g.ow, ow = pos - oh * g.ow;
    const float* xp = x + plane * g.h * g.w;
    int64_t h0 = oh * g.sh - g.ph;
    const int64_t h1 = min(h0 + (g.kh - 1) * g.dh + 1, g.h);
    if (h0 < 0) h0 += ((-h0 + g.dh - 1) / g.dh) * g.dh;  // the first tap >= 0
    int64_t w0 = ow * g.sw - g.pw;
    const int64_t w1 = min(w0 + (g.kw - 1) * g.dw + 1, g.w);
    if (w0 < 0) w0 += ((-w0 + g.dw - 1) / g.dw) * g.dw;
    int64_t best = min(h0 * g.w + w0, g.h * g.w - 1);
    float m = -INFINITY;
    for (int64_t ih = h0; ih < h1; ih += g.dh)
      for (int64_t iw = w0; iw < w1; iw += g.dw) {
        const float v = xp[ih * g.w + iw];
        if (v > m || isnan(v)) {
          m = v;
          best = ih * g.w + iw;
        }
      }
    y[e] = m;
    idx[e] = int32_t(best);
  }
}

// dx (one thread per element) = sum of dy over the outputs whose index points here and whose window
// has this element as a tap, in (oh, ow) order.
__global__ void max_bwd_gather_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                      const int32_t* __restrict__ idx, PGeom g) {
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow, total = g.n * g.c * hw, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t plane = e / hw, q = e - plane * hw;
    const int64_t ih = q / g.w, iw = q - ih * g.w;
    const int64_t oh0 = first_at_least(ih + g.ph - (g.kh - 1) * g.dh, g.sh);
    const int64_t oh1 = min((ih + g.ph) / g.sh, g.oh - 1);
    const int64_t ow0 = first_at_least(iw + g.pw - (g.kw - 1) * g.dw, g.sw);
    const int64_t ow1 = min((iw + g.pw) / g.sw, g.ow - 1);
    const float* dyp = dy + plane * ohw;
    const int32_t* ip = idx + plane * ohw;
    float s = 0.f;
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      if ((ih + g.ph - oh * g.sh) % g.dh) continue;
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        if ((iw + g.pw - ow * g.sw) % g.dw) continue;
        if (ip[oh * g.ow + ow] == q) s += dyp[oh * g.ow + ow];
      }
    }
    dx[e] = s;
  }
}

// Whether some output row (or column) has no tap inside the input: with dilation a window can lie
// entirely in the padding; its index then points at an element that is not one of its taps, which
// the gather above cannot see.
bool has_empty_window(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int64_t out) {
  for (int64_t o = 0; o < out; ++o) {
    const int64_t start = o * s - p;
    bool any = false;
    for (int64_t j = 0; j < k && !any; ++j) any = start + j * d >= 0 && start + j * d < in;
    if (!any) return true;
  }
  return false;
}

// When some windows are all padding: one thread per plane scatters dy in the CPU's (oh, ow) order,
// so the sums stay bit-identical to the CPU (an atomic pass for the stray indices would add them
// after the gathered ones, in another order: results 1 ulp off, and not deterministic).
__global__ void max_bwd_scatter_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                       const int32_t* __restrict__ idx, PGeom g) {
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow, planes = g.n * g.c, stride = grid_threads();
  for (int64_t plane = global_thread(); plane < planes; plane += stride) {
    float* dxp = dx + plane * hw;
    const float* dyp = dy + plane * ohw;
    const int32_t* ip = idx + plane * ohw;
    for (int64_t q = 0; q < hw; ++q) dxp[q] = 0.f;
    for (int64_t i = 0; i < ohw; ++i) {
      const int64_t q = ip[i];
      if (q >= 0 && q < hw) dxp[q] += dyp[i];
    }
  }
}

// ---- average pooling ----

struct Window {
  int64_t h0, h1, w0, w1;
  float inv;  // 1 / divisor, 0 for an empty window
};

// The window of output (oh, ow) clipped to the input, and its divisor, as the CPU's avg_window.
__device__ __forceinline__ Window avg_window(const PGeom& g, int64_t oh, int64_t ow) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = min(h0 + g.kh, g.h + g.ph), w1 = min(w0 + g.kw, g.w + g.pw);
  const int64_t pool_size = (h1 - h0) * (w1 - w0);
  h0 = max(h0, int64_t(0));
  w0 = max(w0, int64_t(0));
  h1 = min(h1, g.h);
  w1 = min(w1, g.w);
  Window win{h0, h1, w0, w1, 0.f};
  if (h0 >= h1 || w0 >= w1) return win;
  const int64_t divisor = g.count_include_pad ? pool_size : (h1 - h0) * (w1 - w0);
  win.inv = 1.0f / float(divisor);
  return win;
}

__global__ void avg_fwd_kernel(float* __restrict__ y, const float* __restrict__ x, PGeom g) {
  const int64_t ohw = g.oh * g.ow, total = g.n * g.c * ohw, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t plane = e / ohw, pos = e - plane * ohw;
    const int64_t oh = pos / g.ow, ow = pos - oh * g.ow;
    const float* xp = x + plane * g.h * g.w;
    const Window win = avg_window(g, oh, ow);
    float s = 0.f;
    for (int64_t ih = win.h0; ih < win.h1; ++ih)
      for (int64_t iw = win.w0; iw < win.w1; ++iw) s += xp[ih * g.w + iw];
    y[e] = __fmul_rn(s, win.inv);
  }
}

// dx (one thread per element) = sum of dy * inv over the windows that hold it, in (oh, ow) order.
// Output oh's clipped window holds ih iff oh*sh - ph <= ih < oh*sh - ph + kh (ih < H <= H + ph).
__global__ void avg_bwd_kernel(float* __restrict__ dx, const float* __restrict__ dy, PGeom g) {
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow, total = g.n * g.c * hw, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t plane = e / hw, q = e - plane * hw;
    const int64_t ih = q / g.w, iw = q - ih * g.w;
    const int64_t oh0 = first_at_least(ih + g.ph - g.kh + 1, g.sh), oh1 = min((ih + g.ph) / g.sh, g.oh - 1);
    const int64_t ow0 = first_at_least(iw + g.pw - g.kw + 1, g.sw), ow1 = min((iw + g.pw) / g.sw, g.ow - 1);
    const float* dyp = dy + plane * ohw;
    float s = 0.f;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const Window win = avg_window(g, oh, ow);
        s = __fadd_rn(s, __fmul_rn(dyp[oh * g.ow + ow], win.inv));
      }
    dx[e] = s;
  }
}

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_max_pool2d_forward(float* y, int32_t* indices, const float* x, const tsm_pool2d_desc* d) {
  const char* name = "cuda_max_pool2d_forward";
  PGeom g;
  if (tsm_status s = make_geom(name, d, true, &g)) return s;
  if (g.h * g.w > INT32_MAX)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: h*w = %lld does not fit the int32 indices", name,
                     (long long)(g.h * g.w));
  if (!y || !indices || !x)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !y ? "y" : !indices ? "indices" : "x");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  max_fwd_kernel<<<grid_for(g.n * g.c * g.oh * g.ow), kThreads, 0, st>>>(y, indices, x, g);
  return check_launch(name);
}

TSM_API tsm_status tsm_cuda_max_pool2d_backward(float* dx, const float* dy, const int32_t* indices,
                                                const tsm_pool2d_desc* d) {
  const char* name = "cuda_max_pool2d_backward";
  PGeom g;
  if (tsm_status s = make_geom(name, d, true, &g)) return s;
  if (!dx || !dy || !indices)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !dx ? "dx" : !dy ? "dy" : "indices");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  // Without dilation every window has an in-bounds tap (0 <= pad <= kernel/2), so no index strays.
  if ((g.dh > 1 && has_empty_window(g.h, g.kh, g.sh, g.ph, g.dh, g.oh)) ||
      (g.dw > 1 && has_empty_window(g.w, g.kw, g.sw, g.pw, g.dw, g.ow)))
    max_bwd_scatter_kernel<<<grid_for(g.n * g.c), kThreads, 0, st>>>(dx, dy, indices, g);
  else
    max_bwd_gather_kernel<<<grid_for(g.n * g.c * g.h * g.w), kThreads, 0, st>>>(dx, dy, indices, g);
  return check_launch(name);
}

TSM_API tsm_status tsm_cuda_avg_pool2d_forward(float* y, const float* x, const tsm_pool2d_desc* d) {
  const char* name = "cuda_avg_pool2d_forward";
  PGeom g;
  if (tsm_status s = make_geom(name, d, false, &g)) return s;
  if (!y || !x) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !y ? "y" : "x");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  avg_fwd_kernel<<<grid_for(g.n * g.c * g.oh * g.ow), kThreads, 0, st>>>(y, x, g);
  return check_launch(name);
}

TSM_API tsm_status tsm_cuda_avg_pool2d_backward(float* dx, const float* dy, const tsm_pool2d_desc* d) {
  const char* name = "cuda_avg_pool2d_backward";
  PGeom g;
  if (tsm_status s = make_geom(name, d, false, &g)) return s;
  if (!dx || !dy) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !dx ? "dx" : "dy");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  avg_bwd_kernel<<<grid_for(g.n * g.c * g.h * g.w), kThreads, 0, st>>>(dx, dy, g);
  return check_launch(name);
}

}  // extern "C"
