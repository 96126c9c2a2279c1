// N-API entry points for the conv and pooling kernels (cpp/kernels/conv2d.cpp, pool2d.cpp).
// Every buffer's length is checked against the sizes before the C ABI is called, so that no call
// from JavaScript can make the kernels read or write out of bounds.
#include <string>

#include "binding.h"
#include "conv_args.h"

using namespace tsm_binding;

namespace {


// Like check(), with the JS op name in front of the kernel's message.
void check_op(Napi::Env env, const char* op, tsm_status status) {
  if (status == TSM_OK) return;
  std::string msg = tsm_last_error();
  if (msg.empty()) msg = tsm_status_string(status);
  msg = std::string(op) + ": " + msg;
  if (status == TSM_ERR_INVALID_ARGUMENT) throw Napi::RangeError::New(env, msg);
  throw Napi::Error::New(env, msg);
}

// ---- conv2d ----


// conv2dForward(y, x, w, bias|null, N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups)
Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "conv2dForward";
  size_t ly = 0, lx = 0, lw = 0, lb = 0;
  float* y = arg_f32(info, 0, op, "y", &ly);
  const float* x = arg_f32(info, 1, op, "x", &lx);
  const float* w = arg_f32(info, 2, op, "w", &lw);
  const float* bias = nullptr;
  const bool has_bias = info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined();
  if (has_bias) bias = arg_f32(info, 3, op, "bias", &lb);
  const ConvArgs a = conv_args(info, 4, op);
  const tsm_conv2d_desc& d = a.d;
  need(env, op, "y", ly, elems(env, op, d.n, d.oc, a.oh, a.ow));
  need(env, op, "x", lx, elems(env, op, d.n, d.c, d.h, d.w));
  need(env, op, "w", lw, elems(env, op, d.oc, d.c / d.groups, d.kh, d.kw));
  if (has_bias) need(env, op, "bias", lb, d.oc);
  check_op(env, op, tsm_conv2d_forward(y, x, w, bias, &d));
  return env.Undefined();
}

// conv2dBackwardData(dx, dy, w, N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups)
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "conv2dBackwardData";
  size_t ldx = 0, ldy = 0, lw = 0;
  float* dx = arg_f32(info, 0, op, "dx", &ldx);
  const float* dy = arg_f32(info, 1, op, "dy", &ldy);
  const float* w = arg_f32(info, 2, op, "w", &lw);
  const ConvArgs a = conv_args(info, 3, op);
  const tsm_conv2d_desc& d = a.d;
  need(env, op, "dx", ldx, elems(env, op, d.n, d.c, d.h, d.w));
  need(env, op, "dy", ldy, elems(env, op, d.n, d.oc, a.oh, a.ow));
  need(env, op, "w", lw, elems(env, op, d.oc, d.c / d.groups, d.kh, d.kw));
  check_op(env, op, tsm_conv2d_backward_data(dx, dy, w, &d));
  return env.Undefined();
}

// conv2dBackwardWeight(dw, dbias|null, dy, x, N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups)
Napi::Value Conv2dBackwardWeight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "conv2dBackwardWeight";
  size_t ldw = 0, ldb = 0, ldy = 0, lx = 0;
  float* dw = arg_f32(info, 0, op, "dw", &ldw);
  float* dbias = nullptr;
  const bool has_bias = info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined();
  if (has_bias) dbias = arg_f32(info, 1, op, "dbias", &ldb);
  const float* dy = arg_f32(info, 2, op, "dy", &ldy);
  const float* x = arg_f32(info, 3, op, "x", &lx);
  const ConvArgs a = conv_args(info, 4, op);
  const tsm_conv2d_desc& d = a.d;
  need(env, op, "dw", ldw, elems(env, op, d.oc, d.c / d.groups, d.kh, d.kw));
  if (has_bias) need(env, op, "dbias", ldb, d.oc);
  need(env, op, "dy", ldy, elems(env, op, d.n, d.oc, a.oh, a.ow));
  need(env, op, "x", lx, elems(env, op, d.n, d.c, d.h, d.w));
  check_op(env, op, tsm_conv2d_backward_weight(dw, dbias, dy, x, &d));
  return env.Undefined();
}

// ---- pooling ----



// maxPool2dForward(y, indices: Int32Array, x, N, C, H, W, KH, KW, sH, sW, pH, pW, dH, dW, ceilMode,
//                  reluInput?): with reluInput, the pooling of relu(x)
Napi::Value MaxPool2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "maxPool2dForward";
  size_t ly = 0, li = 0, lx = 0;
  float* y = arg_f32(info, 0, op, "y", &ly);
  int32_t* idx = arg_i32(info, 1, op, "indices", &li);
  const float* x = arg_f32(info, 2, op, "x", &lx);
  tsm_pool2d_desc d = pool_desc(info, 3, op, true);
  d.ceil_mode = arg_bool(info, 15);
  const int64_t oh = pool_out(env, op, "height", d.h, d.kh, d.stride_h, d.pad_h, d.dil_h, d.ceil_mode);
  const int64_t ow = pool_out(env, op, "width", d.w, d.kw, d.stride_w, d.pad_w, d.dil_w, d.ceil_mode);
  if (d.h * d.w > INT32_MAX) range_error(env, std::string(op) + ": H*W must fit in an int32 index");
  const int64_t ny = elems(env, op, d.n, d.c, oh, ow);
  need(env, op, "y", ly, ny);
  need(env, op, "indices", li, ny);
  need(env, op, "x", lx, elems(env, op, d.n, d.c, d.h, d.w));
  const bool relu_input = arg_bool(info, 16);
  check_op(env, op, relu_input ? tsm_max_pool2d_relu_forward(y, idx, x, &d)
                               : tsm_max_pool2d_forward(y, idx, x, &d));
  return env.Undefined();
}

// maxPool2dBackward(dx, dy, indices: Int32Array, N, C, H, W, OH, OW, y?): with y (the output of
// the pooling of relu(z)), the gradient with respect to z
Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "maxPool2dBackward";
  size_t ldx = 0, ldy = 0, li = 0;
  float* dx = arg_f32(info, 0, op, "dx", &ldx);
  const float* dy = arg_f32(info, 1, op, "dy", &ldy);
  const int32_t* idx = arg_i32(info, 2, op, "indices", &li);
  tsm_pool2d_shape s;
  s.n = arg_size(info, 3, op, "N", 1);
  s.c = arg_size(info, 4, op, "C", 1);
  s.h = arg_size(info, 5, op, "H", 1);
  s.w = arg_size(info, 6, op, "W", 1);
  s.oh = arg_size(info, 7, op, "OH", 1);
  s.ow = arg_size(info, 8, op, "OW", 1);
  const int64_t ny = elems(env, op, s.n, s.c, s.oh, s.ow);
  need(env, op, "dx", ldx, elems(env, op, s.n, s.c, s.h, s.w));
  need(env, op, "dy", ldy, ny);
  need(env, op, "indices", li, ny);
  const float* y = nullptr;
  if (info.Length() > 9 && !info[9].IsUndefined()) {
    size_t lyy = 0;
    y = arg_f32(info, 9, op, "y", &lyy);
    need(env, op, "y", lyy, ny);
  }
  // both check every index
  check_op(env, op, y ? tsm_max_pool2d_relu_backward(dx, dy, y, idx, &s)
                      : tsm_max_pool2d_backward(dx, dy, idx, &s));
  return env.Undefined();
}

// ---- convolution and max pooling in one pass (conv_pool.cpp) ----

// conv2dMaxPool2dForward(y, indices: Int32Array, x, w, bias|null, N, C, H, W, OC, KH, KW, sH, sW, pH,
//                        pW, dH, dW, groups, then the pooling's KH, KW, sH, sW, pH, pW, dH, dW,
//                        ceilMode, relu)
Napi::Value Conv2dMaxPool2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "conv2dMaxPool2dForward";
  size_t ly = 0, li = 0, lx = 0, lw = 0, lb = 0;
  float* y = arg_f32(info, 0, op, "y", &ly);
  int32_t* idx = arg_i32(info, 1, op, "indices", &li);
  const float* x = arg_f32(info, 2, op, "x", &lx);
  const float* w = arg_f32(info, 3, op, "w", &lw);
  const float* bias = nullptr;
  const bool has_bias = !is_null(info, 4);
  if (has_bias) bias = arg_f32(info, 4, op, "bias", &lb);
  const ConvArgs a = conv_args(info, 5, op);
  const tsm_conv2d_desc& d = a.d;
  tsm_pool2d_desc p;  // the pooling of the convolution's output
  p.n = d.n;
  p.c = d.oc;
  p.h = a.oh;
  p.w = a.ow;
  pool_window(info, 19, op, true, &p);
  p.ceil_mode = arg_bool(info, 27);
  const int64_t poh = pool_out(env, op, "height", p.h, p.kh, p.stride_h, p.pad_h, p.dil_h, p.ceil_mode);
  const int64_t pow_ = pool_out(env, op, "width", p.w, p.kw, p.stride_w, p.pad_w, p.dil_w, p.ceil_mode);
  const int64_t ny = elems(env, op, d.n, d.oc, poh, pow_);
  need(env, op, "y", ly, ny);
  need(env, op, "indices", li, ny);
  need(env, op, "x", lx, elems(env, op, d.n, d.c, d.h, d.w));
  need(env, op, "w", lw, elems(env, op, d.oc, d.c / d.groups, d.kh, d.kw));
  if (has_bias) need(env, op, "bias", lb, d.oc);
  check_op(env, op, tsm_conv2d_max_pool2d_forward(y, idx, x, w, bias, &d, &p, arg_bool(info, 28)));
  return env.Undefined();
}

// conv2dMaxPool2dBackward(dx|null, dw|null, dbias|null, dy, y|null, indices: Int32Array, x|null,
//                         w|null, N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups, POH, POW):
//                         y is the pooled output when the pooling read through a ReLU; x is needed
//                         for dw, w for dx
Napi::Value Conv2dMaxPool2dBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "conv2dMaxPool2dBackward";
  size_t ldx = 0, ldw = 0, ldb = 0, ldy = 0, lyy = 0, li = 0, lx = 0, lw = 0;
  float* dx = !is_null(info, 0) ? arg_f32(info, 0, op, "dx", &ldx) : nullptr;
  float* dw = !is_null(info, 1) ? arg_f32(info, 1, op, "dw", &ldw) : nullptr;
  float* dbias = !is_null(info, 2) ? arg_f32(info, 2, op, "dbias", &ldb) : nullptr;
  const float* dy = arg_f32(info, 3, op, "dy", &ldy);
  const float* y = !is_null(info, 4) ? arg_f32(info, 4, op, "y", &lyy) : nullptr;
  const int32_t* idx = arg_i32(info, 5, op, "indices", &li);
  const float* x = !is_null(info, 6) ? arg_f32(info, 6, op, "x", &lx) : nullptr;
  const float* w = !is_null(info, 7) ? arg_f32(info, 7, op, "w", &lw) : nullptr;
  const ConvArgs a = conv_args(info, 8, op);
  const tsm_conv2d_desc& d = a.d;
  const int64_t poh = arg_size(info, 22, op, "POH", 1), pow_ = arg_size(info, 23, op, "POW", 1);
  const int64_t ny = elems(env, op, d.n, d.oc, poh, pow_);
  const int64_t nx = elems(env, op, d.n, d.c, d.h, d.w), nw = elems(env, op, d.oc, d.c / d.groups, d.kh, d.kw);
  if (dx) need(env, op, "dx", ldx, nx);
  if (dw) need(env, op, "dw", ldw, nw);
  if (dbias) need(env, op, "dbias", ldb, d.oc);
  need(env, op, "dy", ldy, ny);
  if (y) need(env, op, "y", lyy, ny);
  need(env, op, "indices", li, ny);
  if (dw && !x) type_error(env, std::string(op) + ": x is needed for dw, got null");
  if (dx && !w) type_error(env, std::string(op) + ": w is needed for dx, got null");
  if (x) need(env, op, "x", lx, nx);
  if (w) need(env, op, "w", lw, nw);
  check_op(env, op, tsm_conv2d_max_pool2d_backward(dx, dw, dbias, dy, y, idx, x, w, &d, poh, pow_));
  return env.Undefined();
}

// avgPool2dForward(y, x, N, C, H, W, KH, KW, sH, sW, pH, pW, ceilMode, countIncludePad)
Napi::Value AvgPool2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "avgPool2dForward";
  size_t ly = 0, lx = 0;
  float* y = arg_f32(info, 0, op, "y", &ly);
  const float* x = arg_f32(info, 1, op, "x", &lx);
  tsm_pool2d_desc d = pool_desc(info, 2, op, false);
  d.ceil_mode = arg_bool(info, 12);
  d.count_include_pad = arg_bool(info, 13);
  const int64_t oh = pool_out(env, op, "height", d.h, d.kh, d.stride_h, d.pad_h, 1, d.ceil_mode);
  const int64_t ow = pool_out(env, op, "width", d.w, d.kw, d.stride_w, d.pad_w, 1, d.ceil_mode);
  need(env, op, "y", ly, elems(env, op, d.n, d.c, oh, ow));
  need(env, op, "x", lx, elems(env, op, d.n, d.c, d.h, d.w));
  check_op(env, op, tsm_avg_pool2d_forward(y, x, &d));
  return env.Undefined();
}

// avgPool2dBackward(dx, dy, N, C, H, W, KH, KW, sH, sW, pH, pW, ceilMode, countIncludePad)
Napi::Value AvgPool2dBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "avgPool2dBackward";
  size_t ldx = 0, ldy = 0;
  float* dx = arg_f32(info, 0, op, "dx", &ldx);
  const float* dy = arg_f32(info, 1, op, "dy", &ldy);
  tsm_pool2d_desc d = pool_desc(info, 2, op, false);
  d.ceil_mode = arg_bool(info, 12);
  d.count_include_pad = arg_bool(info, 13);
  const int64_t oh = pool_out(env, op, "height", d.h, d.kh, d.stride_h, d.pad_h, 1, d.ceil_mode);
  const int64_t ow = pool_out(env, op, "width", d.w, d.kw, d.stride_w, d.pad_w, 1, d.ceil_mode);
  need(env, op, "dx", ldx, elems(env, op, d.n, d.c, d.h, d.w));
  need(env, op, "dy", ldy, elems(env, op, d.n, d.c, oh, ow));
  check_op(env, op, tsm_avg_pool2d_backward(dx, dy, &d));
  return env.Undefined();
}

tsm_pool2d_shape adaptive_shape(const Napi::CallbackInfo& info, const char* op) {
  tsm_pool2d_shape s;
  s.n = arg_size(info, 2, op, "N", 1);
  s.c = arg_size(info, 3, op, "C", 1);
  s.h = arg_size(info, 4, op, "H", 1);
  s.w = arg_size(info, 5, op, "W", 1);
  s.oh = arg_size(info, 6, op, "OH", 1);
  s.ow = arg_size(info, 7, op, "OW", 1);
  return s;
}

// adaptiveAvgPool2dForward(y, x, N, C, H, W, OH, OW)
Napi::Value AdaptiveAvgPool2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "adaptiveAvgPool2dForward";
  size_t ly = 0, lx = 0;
  float* y = arg_f32(info, 0, op, "y", &ly);
  const float* x = arg_f32(info, 1, op, "x", &lx);
  const tsm_pool2d_shape s = adaptive_shape(info, op);
  need(env, op, "y", ly, elems(env, op, s.n, s.c, s.oh, s.ow));
  need(env, op, "x", lx, elems(env, op, s.n, s.c, s.h, s.w));
  check_op(env, op, tsm_adaptive_avg_pool2d_forward(y, x, &s));
  return env.Undefined();
}

// adaptiveAvgPool2dBackward(dx, dy, N, C, H, W, OH, OW)
Napi::Value AdaptiveAvgPool2dBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "adaptiveAvgPool2dBackward";
  size_t ldx = 0, ldy = 0;
  float* dx = arg_f32(info, 0, op, "dx", &ldx);
  const float* dy = arg_f32(info, 1, op, "dy", &ldy);
  const tsm_pool2d_shape s = adaptive_shape(info, op);
  need(env, op, "dx", ldx, elems(env, op, s.n, s.c, s.h, s.w));
  need(env, op, "dy", ldy, elems(env, op, s.n, s.c, s.oh, s.ow));
  check_op(env, op, tsm_adaptive_avg_pool2d_backward(dx, dy, &s));
  return env.Undefined();
}

// pool2dOutputSize(inSize, kernel, stride, pad, dilation, ceilMode) -> number
Napi::Value Pool2dOutputSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "pool2dOutputSize";
  const int64_t in = arg_size(info, 0, op, "inSize", 1);
  const int64_t k = arg_size(info, 1, op, "kernel", 1);
  const int64_t s = arg_size(info, 2, op, "stride", 1);
  const int64_t p = arg_size(info, 3, op, "pad", 0);
  const int64_t dil = arg_size(info, 4, op, "dilation", 1);
  const bool ceil_mode = arg_bool(info, 5);
  return Napi::Number::New(env, static_cast<double>(tsm_pool2d_output_size(in, k, s, p, dil, ceil_mode)));
}

}  // namespace

void register_ops_conv(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2dForward", Napi::Function::New(env, Conv2dForward, "conv2dForward"));
  exports.Set("conv2dBackwardData", Napi::Function::New(env, Conv2dBackwardData, "conv2dBackwardData"));
  exports.Set("conv2dBackwardWeight",
              Napi::Function::New(env, Conv2dBackwardWeight, "conv2dBackwardWeight"));
  exports.Set("maxPool2dForward", Napi::Function::New(env, MaxPool2dForward, "maxPool2dForward"));
  exports.Set("maxPool2dBackward", Napi::Function::New(env, MaxPool2dBackward, "maxPool2dBackward"));
  exports.Set("conv2dMaxPool2dForward", Napi::Function::New(env, Conv2dMaxPool2dForward, "conv2dMaxPool2dForward"));
  exports.Set("conv2dMaxPool2dBackward",
              Napi::Function::New(env, Conv2dMaxPool2dBackward, "conv2dMaxPool2dBackward"));
  exports.Set("avgPool2dForward", Napi::Function::New(env, AvgPool2dForward, "avgPool2dForward"));
  exports.Set("avgPool2dBackward", Napi::Function::New(env, AvgPool2dBackward, "avgPool2dBackward"));
  exports.Set("adaptiveAvgPool2dForward",
              Napi::Function::New(env, AdaptiveAvgPool2dForward, "adaptiveAvgPool2dForward"));
  exports.Set("adaptiveAvgPool2dBackward",
              Napi::Function::New(env, AdaptiveAvgPool2dBackward, "adaptiveAvgPool2dBackward"));
  exports.Set("pool2dOutputSize", Napi::Function::New(env, Pool2dOutputSize, "pool2dOutputSize"));
}
