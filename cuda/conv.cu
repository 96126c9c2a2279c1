// 2-D convolution of CUDA tensors, float32, contiguous NCHW, forward and both backwards (the CPU
// twin: cpp/kernels/conv2d.cpp, same descriptor and semantics as torch.nn.functional.conv2d):
//
//   x    (N, C, H, W)            w    (OC, Cg, KH, KW), Cg = C / groups, OCg = OC / groups
//   y    (N, OC, OH, OW)         bias (OC) or NULL
//   col  (nb, C*KH*KW, OH*OW)    scratch: row r = (c*KH + kh)*KW + kw, column p = oh*OW + ow,
//                                col[n, r, p] = x[n, c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] or 0
//
// im2col + GEMM + col2im on the existing SIMT SGEMM (cuda/gemm_sgemm.cu), not an implicit GEMM:
// the SGEMM is the one tuned, exact-float32 kernel of this backend, and im2col/col2im are simple
// index maps that can be written correctly without a GPU to test on. Per group g and chunk of nb
// images (one strided-batched GEMM over the images each):
//   forward        y[n, g]  (OCg, P)  = w[g] (OCg, Kg) @ col[n, g] (Kg, P)           Kg = Cg*KH*KW
//   backward data  dcol[n, g] (Kg, P) = w[g]^T @ dy[n, g] (OCg, P), then col2im: each dx element
//                  gathers its (kh, kw) taps from dcol (no atomics, deterministic)
//   backward wt    part[n, g] (OCg, Kg) = dy[n, g] @ col[n, g]^T, then dw = sum over n of part
//                  (a fixed-order loop per element: deterministic)
// The cost is the col buffer's traffic (KH*KW times the input) and a ~2x larger memory footprint;
// an implicit GEMM on tensor cores (issue 8) is the next step once a GPU can measure it.
#include <climits>

#include "tensor_common.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 40;
#ifndef TSM_EMU_CONV_SCRATCH_BYTES
constexpr int64_t kScratchBytes = int64_t(256) << 20;  // column buffers + partial products per chunk
#else
// Host emulation (test/emu): a budget the tests set, so that the image-chunk loops run at test sizes.
#define kScratchBytes (TSM_EMU_CONV_SCRATCH_BYTES)
#endif

struct Geom {
  int64_t n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow;
  int64_t cg, ocg, kg, p;  // C/g, OC/g, Cg*KH*KW, OH*OW
  int64_t krows() const { return c * kh * kw; }
};

tsm_status make_geom(const char* op, const tsm_conv2d_desc* d, Geom* g) {
  if (!d) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: descriptor is NULL", op);
  struct Field { const char* name; int64_t v; int64_t min; };
  const Field fields[] = {{"n", d->n, 1},        {"c", d->c, 1},         {"h", d->h, 1},
                          {"w", d->w, 1},        {"oc", d->oc, 1},       {"kh", d->kh, 1},
                          {"kw", d->kw, 1},      {"stride_h", d->stride_h, 1}, {"stride_w", d->stride_w, 1},
                          {"pad_h", d->pad_h, 0}, {"pad_w", d->pad_w, 0}, {"dil_h", d->dil_h, 1},
                          {"dil_w", d->dil_w, 1}, {"groups", d->groups, 1}};
  for (const Field& f : fields) {
    if (f.v < f.min)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s must be >= %lld, got %lld", op, f.name, (long long)f.min,
                  (long long)f.v);
    if (f.v > kMaxDim) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s = %lld is too large", op, f.name, (long long)f.v);
  }
  if (d->c % d->groups || d->oc % d->groups)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: c (%lld) and oc (%lld) must be divisible by groups (%lld)", op,
                (long long)d->c, (long long)d->oc, (long long)d->groups);
  // Sizes are <= 2^40: the dilated extent can overflow 64 bits, so compute it in 128.
  const __int128 eh = (__int128)d->h + 2 * (__int128)d->pad_h - (__int128)d->dil_h * (d->kh - 1) - 1;
  const __int128 ew = (__int128)d->w + 2 * (__int128)d->pad_w - (__int128)d->dil_w * (d->kw - 1) - 1;
  if (eh < 0 || ew < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: the dilated kernel is larger than the padded input", op);
  Geom r;
  r.n = d->n; r.c = d->c; r.h = d->h; r.w = d->w; r.oc = d->oc; r.kh = d->kh; r.kw = d->kw;
  r.sh = d->stride_h; r.sw = d->stride_w; r.ph = d->pad_h; r.pw = d->pad_w; r.dh = d->dil_h; r.dw = d->dil_w;
  r.groups = d->groups;
  r.oh = int64_t(eh) / r.sh + 1;
  r.ow = int64_t(ew) / r.sw + 1;
  r.cg = r.c / r.groups;
  r.ocg = r.oc / r.groups;
  // The GEMM takes sizes < 2^31; the element counts of every tensor must fit int64 comfortably.
  const __int128 kg = (__int128)r.cg * r.kh * r.kw, p = (__int128)r.oh * r.ow;
  if (kg >= INT_MAX || p >= INT_MAX || r.ocg >= INT_MAX)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: C/groups*KH*KW, OH*OW and OC/groups must be < 2^31", op);
  const __int128 biggest = (__int128)r.n * (r.c > r.oc ? r.c : r.oc) * ((__int128)r.h * r.w > p ? (__int128)r.h * r.w : p);
  const __int128 cols = kg * r.groups * p, wsz = kg * r.oc;
  if (biggest > ((__int128)1 << 53) || cols > ((__int128)1 << 53) || wsz > ((__int128)1 << 53))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: tensor sizes are too large", op);
  r.kg = int64_t(kg);
  r.p = int64_t(p);
  *g = r;
  return TSM_OK;
}

// Images per chunk: the scratch of one image is `per_image` floats; at least 1.
int64_t chunk_images(int64_t n, int64_t per_image) {
  int64_t nb = kScratchBytes / 4 / (per_image > 0 ? per_image : 1);
  if (nb < 1) nb = 1;
  return nb < n ? nb : n;
}

// col (nb, C*KH*KW, P) from x (nb, C, H, W): one thread per col element.
__global__ void im2col_kernel(float* __restrict__ col, const float* __restrict__ x, Geom g, int64_t nb) {
  const int64_t krows = g.c * g.kh * g.kw;
  const int64_t total = nb * krows * g.p, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t pos = e % g.p;
    const int64_t rowi = e / g.p;  // image * krows + r
    const int64_t r = rowi % krows, img = rowi / krows;
    const int64_t kw_ = r % g.kw, kh_ = (r / g.kw) % g.kh, c = r / (g.kw * g.kh);
    const int64_t ow = pos % g.ow, oh = pos / g.ow;
    const int64_t ih = oh * g.sh - g.ph + kh_ * g.dh, iw = ow * g.sw - g.pw + kw_ * g.dw;
    float v = 0.f;
    if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) v = x[((img * g.c + c) * g.h + ih) * g.w + iw];
    col[e] = v;
  }
}

// dx (nb, C, H, W) from dcol (nb, C*KH*KW, P): each input element sums the taps that read it, in
// (kh, kw) order. Tap kh reads ih when ih + ph - kh*dh = oh*sh for some oh in [0, OH).
__global__ void col2im_kernel(float* __restrict__ dx, const float* __restrict__ dcol, Geom g, int64_t nb) {
  const int64_t krows = g.c * g.kh * g.kw;
  const int64_t total = nb * g.c * g.h * g.w, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t iw = e % g.w, ih = (e / g.w) % g.h;
    const int64_t plane = e / (g.w * g.h);  // img * C + c
    const int64_t c = plane % g.c, img = plane / g.c;
    const float* dc = dcol + (img * krows + c * g.kh * g.kw) * g.p;
    float s = 0.f;
    for (int64_t kh_ = 0; kh_ < g.kh; ++kh_) {
      const int64_t th = ih + g.ph - kh_ * g.dh;
      if (th < 0) break;  // grows more negative with kh
      if (th % g.sh) continue;
      const int64_t oh = th / g.sh;
      if (oh >= g.oh) continue;
      for (int64_t kw_ = 0; kw_ < g.kw; ++kw_) {
        const int64_t tw = iw + g.pw - kw_ * g.dw;
        if (tw < 0) break;
        if (tw % g.sw) continue;
        const int64_t ow = tw / g.sw;
        if (ow >= g.ow) continue;
        s += dc[(kh_ * g.kw + kw_) * g.p + oh * g.ow + ow];
      }
    }
    dx[e] = s;
  }
}

// y (nb, OC, P) += bias[oc].
__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t nb, int64_t oc,
                                int64_t p) {
  const int64_t total = nb * oc * p, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) y[e] += bias[(e / p) % oc];
}

// dw (len) (+)= sum over b < nb of part (nb, len)[b], in b order.
__global__ void sum_images_kernel(float* __restrict__ dw, const float* __restrict__ part, int64_t nb, int64_t len,
                                  bool accumulate) {
  const int64_t stride = grid_threads();
  for (int64_t i = global_thread(); i < len; i += stride) {
    float s = accumulate ? dw[i] : 0.f;
    for (int64_t b = 0; b < nb; ++b) s += part[b * len + i];
    dw[i] = s;
  }
}

// dbias (OC) = sum over n and p of dy (N, OC, P): one block per channel (grid-stride over channels).
__global__ void bias_grad_kernel(float* __restrict__ db, const float* __restrict__ dy, int64_t n, int64_t oc,
                                 int64_t p) {
  __shared__ float smem[32];
  for (int64_t ch = blockIdx.x; ch < oc; ch += gridDim.x) {
    float s = 0.f;
    const int64_t total = n * p;
    for (int64_t e = threadIdx.x; e < total; e += blockDim.x) {
      const int64_t img = e / p, pos = e - img * p;
      s += dy[(img * oc + ch) * p + pos];
    }
    s = block_sum(s, smem);
    if (threadIdx.x == 0) db[ch] = s;
  }
}


}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_conv2d_forward(float* y, const float* x, const float* w, const float* bias,
                                           const tsm_conv2d_desc* d) {
  const char* name = "cuda_conv2d_forward";
  Geom g;
  if (tsm_status s = make_geom(name, d, &g)) return s;
  if (!y || !x || !w) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !y ? "y" : !x ? "x" : "w");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  const int64_t krows = g.krows();
  const int64_t nb_max = chunk_images(g.n, krows * g.p);
  Scratch col(name);
  if (tsm_status s = col.alloc(nb_max * krows * g.p)) return s;
  for (int64_t n0 = 0; n0 < g.n; n0 += nb_max) {
    const int64_t nb = g.n - n0 < nb_max ? g.n - n0 : nb_max;
    im2col_kernel<<<grid_for(nb * krows * g.p), kThreads, 0, st>>>(col.p, x + n0 * g.c * g.h * g.w, g, nb);
    if (tsm_status s = check_launch(name)) return s;
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      // y[n, g] (OCg, P) = w[g] (OCg, Kg) @ col[n, g] (Kg, P), over the nb images
      tsm_status s = tsm_cuda_sgemm_strided_batched(
          0, 0, nb, g.ocg, g.p, g.kg, 1.f, w + gi * g.ocg * g.kg, g.kg, 0, col.p + gi * g.kg * g.p, g.p, krows * g.p,
          0.f, y + (n0 * g.oc + gi * g.ocg) * g.p, g.p, g.oc * g.p);
      if (s != TSM_OK) return s;
    }
    if (bias) {
      add_bias_kernel<<<grid_for(nb * g.oc * g.p), kThreads, 0, st>>>(y + n0 * g.oc * g.p, bias, nb, g.oc, g.p);
      if (tsm_status s = check_launch(name)) return s;
    }
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_conv2d_backward_data(float* dx, const float* dy, const float* w,
                                                 const tsm_conv2d_desc* d) {
  const char* name = "cuda_conv2d_backward_data";
  Geom g;
  if (tsm_status s = make_geom(name, d, &g)) return s;
  if (!dx || !dy || !w)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !dx ? "dx" : !dy ? "dy" : "w");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  const int64_t krows = g.krows();
  const int64_t nb_max = chunk_images(g.n, krows * g.p);
  Scratch dcol(name);
  if (tsm_status s = dcol.alloc(nb_max * krows * g.p)) return s;
  for (int64_t n0 = 0; n0 < g.n; n0 += nb_max) {
    const int64_t nb = g.n - n0 < nb_max ? g.n - n0 : nb_max;
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      // dcol[n, g] (Kg, P) = w[g]^T (Kg, OCg) @ dy[n, g] (OCg, P)
      tsm_status s = tsm_cuda_sgemm_strided_batched(
          1, 0, nb, g.kg, g.p, g.ocg, 1.f, w + gi * g.ocg * g.kg, g.kg, 0, dy + (n0 * g.oc + gi * g.ocg) * g.p, g.p,
          g.oc * g.p, 0.f, dcol.p + gi * g.kg * g.p, g.p, krows * g.p);
      if (s != TSM_OK) return s;
    }
    col2im_kernel<<<grid_for(nb * g.c * g.h * g.w), kThreads, 0, st>>>(dx + n0 * g.c * g.h * g.w, dcol.p, g, nb);
    if (tsm_status s = check_launch(name)) return s;
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_conv2d_backward_weight(float* dw, float* dbias, const float* dy, const float* x,
                                                   const tsm_conv2d_desc* d) {
  const char* name = "cuda_conv2d_backward_weight";
  Geom g;
  if (tsm_status s = make_geom(name, d, &g)) return s;
  if (!dw || !dy || !x)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !dw ? "dw" : !dy ? "dy" : "x");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  const int64_t krows = g.krows();
  const int64_t wlen = g.oc * g.kg;  // dw (OC, Kg) = (OC, Cg, KH, KW)
  const int64_t nb_max = chunk_images(g.n, krows * g.p + wlen);
  Scratch col(name), part(name);
  if (tsm_status s = col.alloc(nb_max * krows * g.p)) return s;
  if (tsm_status s = part.alloc(nb_max * wlen)) return s;
  for (int64_t n0 = 0; n0 < g.n; n0 += nb_max) {
    const int64_t nb = g.n - n0 < nb_max ? g.n - n0 : nb_max;
    im2col_kernel<<<grid_for(nb * krows * g.p), kThreads, 0, st>>>(col.p, x + n0 * g.c * g.h * g.w, g, nb);
    if (tsm_status s = check_launch(name)) return s;
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      // part[n] rows of group g (OCg, Kg) = dy[n, g] (OCg, P) @ col[n, g]^T (P, Kg)
      tsm_status s = tsm_cuda_sgemm_strided_batched(
          0, 1, nb, g.ocg, g.kg, g.p, 1.f, dy + (n0 * g.oc + gi * g.ocg) * g.p, g.p, g.oc * g.p,
          col.p + gi * g.kg * g.p, g.p, krows * g.p, 0.f, part.p + gi * g.ocg * g.kg, g.kg, wlen);
      if (s != TSM_OK) return s;
    }
    sum_images_kernel<<<grid_for(wlen), kThreads, 0, st>>>(dw, part.p, nb, wlen, n0 > 0);
    if (tsm_status s = check_launch(name)) return s;
  }
  if (dbias) {
    bias_grad_kernel<<<grid_for(g.oc, 1), kThreads, 0, st>>>(dbias, dy, g.n, g.oc, g.p);
    if (tsm_status s = check_launch(name)) return s;
  }
  return TSM_OK;
}

}  // extern "C"
