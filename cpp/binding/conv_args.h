// Argument readers shared by the synchronous and asynchronous conv/pool bindings: sizes, the
// conv2d and pool2d descriptors and their output sizes, each checked with errors naming the op.
#pragma once
#include <string>

#include "binding.h"

namespace tsm_binding {

constexpr int64_t kMaxElems = int64_t(1) << 53;  // what a JS number holds exactly

// a * b, or a RangeError naming the op when the product is not a sane element count.
inline int64_t mul(Napi::Env env, const char* op, int64_t a, int64_t b) {
  if (a < 0 || b < 0) range_error(env, std::string(op) + ": sizes must be >= 0");
  if (a != 0 && b > kMaxElems / a) range_error(env, std::string(op) + ": tensor size is too large");
  return a * b;
}

inline int64_t elems(Napi::Env env, const char* op, int64_t a, int64_t b, int64_t c, int64_t d) {
  return mul(env, op, mul(env, op, mul(env, op, a, b), c), d);
}

// A size argument that must be >= min.
inline int64_t arg_size(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
                 int64_t min) {
  const int64_t v = arg_int(info, i, op, name);
  if (v < min)
    range_error(info.Env(), std::string(op) + ": " + name + " must be >= " + std::to_string(min) +
                                ", got " + std::to_string(v));
  if (v > (int64_t(1) << 40))
    range_error(info.Env(), std::string(op) + ": " + name + " = " + std::to_string(v) +
                                " is too large");
  return v;
}

// Reads N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups starting at argument `first` and
// checks them; computes OH, OW.
struct ConvArgs {
  tsm_conv2d_desc d;
  int64_t oh, ow;
};

inline ConvArgs conv_args(const Napi::CallbackInfo& info, size_t first, const char* op) {
  Napi::Env env = info.Env();
  ConvArgs a;
  tsm_conv2d_desc& d = a.d;
  d.n = arg_size(info, first + 0, op, "N", 1);
  d.c = arg_size(info, first + 1, op, "C", 1);
  d.h = arg_size(info, first + 2, op, "H", 1);
  d.w = arg_size(info, first + 3, op, "W", 1);
  d.oc = arg_size(info, first + 4, op, "OC", 1);
  d.kh = arg_size(info, first + 5, op, "KH", 1);
  d.kw = arg_size(info, first + 6, op, "KW", 1);
  d.stride_h = arg_size(info, first + 7, op, "sH", 1);
  d.stride_w = arg_size(info, first + 8, op, "sW", 1);
  d.pad_h = arg_size(info, first + 9, op, "pH", 0);
  d.pad_w = arg_size(info, first + 10, op, "pW", 0);
  d.dil_h = arg_size(info, first + 11, op, "dH", 1);
  d.dil_w = arg_size(info, first + 12, op, "dW", 1);
  d.groups = arg_size(info, first + 13, op, "groups", 1);
  if (d.c % d.groups)
    range_error(env, std::string(op) + ": C = " + std::to_string(d.c) +
                         " is not divisible by groups = " + std::to_string(d.groups));
  if (d.oc % d.groups)
    range_error(env, std::string(op) + ": OC = " + std::to_string(d.oc) +
                         " is not divisible by groups = " + std::to_string(d.groups));
  // Sizes are <= 2^40, so dilation * kernel can overflow 64 bits: compute in 128.
  const __int128 oh = (__int128)d.h + 2 * (__int128)d.pad_h - (__int128)d.dil_h * (d.kh - 1) - 1;
  const __int128 ow = (__int128)d.w + 2 * (__int128)d.pad_w - (__int128)d.dil_w * (d.kw - 1) - 1;
  a.oh = oh < 0 ? -1 : static_cast<int64_t>(oh);
  a.ow = ow < 0 ? -1 : static_cast<int64_t>(ow);
  if (a.oh < 0 || a.ow < 0)
    range_error(env, std::string(op) + ": output size would be < 1 (the dilated kernel is larger "
                                       "than the padded input)");
  a.oh = a.oh / d.stride_h + 1;
  a.ow = a.ow / d.stride_w + 1;
  return a;
}

// Output size of one pooled dimension, or a RangeError naming the op.
inline int64_t pool_out(Napi::Env env, const char* op, const char* dim, int64_t in, int64_t k, int64_t s,
                 int64_t p, int64_t dil, bool ceil_mode) {
  const int64_t out = tsm_pool2d_output_size(in, k, s, p, dil, ceil_mode);
  if (out < 1)
    range_error(env, std::string(op) + ": output " + dim + " would be " + std::to_string(out) +
                         " (input " + std::to_string(in) + ", kernel " + std::to_string(k) +
                         ", stride " + std::to_string(s) + ", padding " + std::to_string(p) +
                         "); it must be >= 1");
  return out;
}

// Reads a pooling's window KH, KW, sH, sW, pH, pW [, dH, dW] from `first` into d (ceil_mode 0,
// count_include_pad 1) and checks its padding; the plane sizes are the caller's.
inline void pool_window(const Napi::CallbackInfo& info, size_t first, const char* op, bool dilation,
                        tsm_pool2d_desc* d) {
  d->kh = arg_size(info, first + 0, op, "KH", 1);
  d->kw = arg_size(info, first + 1, op, "KW", 1);
  d->stride_h = arg_size(info, first + 2, op, "sH", 1);
  d->stride_w = arg_size(info, first + 3, op, "sW", 1);
  d->pad_h = arg_size(info, first + 4, op, "pH", 0);
  d->pad_w = arg_size(info, first + 5, op, "pW", 0);
  d->dil_h = dilation ? arg_size(info, first + 6, op, "dH", 1) : 1;
  d->dil_w = dilation ? arg_size(info, first + 7, op, "dW", 1) : 1;
  d->ceil_mode = 0;
  d->count_include_pad = 1;
  if (d->pad_h > d->kh / 2 || d->pad_w > d->kw / 2)
    range_error(info.Env(), std::string(op) + ": padding (" + std::to_string(d->pad_h) + ", " +
                                std::to_string(d->pad_w) + ") must be at most half the kernel size (" +
                                std::to_string(d->kh) + ", " + std::to_string(d->kw) + ")");
}

// Reads N, C, H, W, KH, KW, sH, sW, pH, pW [, dH, dW] from `first`; ceil_mode etc. by the caller.
inline tsm_pool2d_desc pool_desc(const Napi::CallbackInfo& info, size_t first, const char* op,
                          bool dilation) {
  tsm_pool2d_desc d;
  d.n = arg_size(info, first + 0, op, "N", 1);
  d.c = arg_size(info, first + 1, op, "C", 1);
  d.h = arg_size(info, first + 2, op, "H", 1);
  d.w = arg_size(info, first + 3, op, "W", 1);
  pool_window(info, first + 4, op, dilation, &d);
  return d;
}

}  // namespace tsm_binding
