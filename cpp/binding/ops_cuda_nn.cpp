// The CNN kernels of CUDA tensors (section "cuda nn kernels" of tensorsmith.h) on device buffer
// handles: conv2d forward/backward, max/avg pooling forward/backward, fused cross-entropy. Thin, as
// ops_cuda_tensor.cpp: lib/functional.ts validates and explains; here the sizes are read with the
// CPU bindings' readers (conv_args.h), every handle must be live and every access must fit its
// buffer, then the C ABI is called. CUDA failures come back as TsmCudaError, bad arguments as
// TypeError/RangeError naming the entry point.
#include <string>

#include "binding.h"
#include "conv_args.h"

using namespace tsm_binding;

void tsm_binding_cuda_check(Napi::Env env, const char* call, tsm_status status);

namespace {

// cudaConv2dForward(y, x, w, bias|null, N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups)
Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaConv2dForward";
  const ConvArgs a = conv_args(info, 4, op);
  const tsm_conv2d_desc& d = a.d;
  float* y = static_cast<float*>(device_arg(info, 0, op, "y", elems(env, op, d.n, d.oc, a.oh, a.ow)));
  const float* x = static_cast<const float*>(device_arg(info, 1, op, "x", elems(env, op, d.n, d.c, d.h, d.w)));
  const float* w = static_cast<const float*>(device_arg(info, 2, op, "w", elems(env, op, d.oc, d.c / d.groups, d.kh, d.kw)));
  const float* b = is_null(info, 3) ? nullptr : static_cast<const float*>(device_arg(info, 3, op, "bias", d.oc));
  tsm_binding_cuda_check(env, op, tsm_cuda_conv2d_forward(y, x, w, b, &d));
  return env.Undefined();
}

// cudaConv2dBackwardData(dx, dy, w, N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups)
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaConv2dBackwardData";
  const ConvArgs a = conv_args(info, 3, op);
  const tsm_conv2d_desc& d = a.d;
  float* dx = static_cast<float*>(device_arg(info, 0, op, "dx", elems(env, op, d.n, d.c, d.h, d.w)));
  const float* dy = static_cast<const float*>(device_arg(info, 1, op, "dy", elems(env, op, d.n, d.oc, a.oh, a.ow)));
  const float* w = static_cast<const float*>(device_arg(info, 2, op, "w", elems(env, op, d.oc, d.c / d.groups, d.kh, d.kw)));
  tsm_binding_cuda_check(env, op, tsm_cuda_conv2d_backward_data(dx, dy, w, &d));
  return env.Undefined();
}

// cudaConv2dBackwardWeight(dw, dbias|null, dy, x, N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups)
Napi::Value Conv2dBackwardWeight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaConv2dBackwardWeight";
  const ConvArgs a = conv_args(info, 4, op);
  const tsm_conv2d_desc& d = a.d;
  float* dw = static_cast<float*>(device_arg(info, 0, op, "dw", elems(env, op, d.oc, d.c / d.groups, d.kh, d.kw)));
  float* db = is_null(info, 1) ? nullptr : static_cast<float*>(device_arg(info, 1, op, "dbias", d.oc));
  const float* dy = static_cast<const float*>(device_arg(info, 2, op, "dy", elems(env, op, d.n, d.oc, a.oh, a.ow)));
  const float* x = static_cast<const float*>(device_arg(info, 3, op, "x", elems(env, op, d.n, d.c, d.h, d.w)));
  tsm_binding_cuda_check(env, op, tsm_cuda_conv2d_backward_weight(dw, db, dy, x, &d));
  return env.Undefined();
}

// The pooling descriptor from argument `first` (N, C, H, W, KH, KW, sH, sW, pH, pW [, dH, dW],
// ceilMode [, countIncludePad]) and the output size.
struct PoolArgs {
  tsm_pool2d_desc d;
  int64_t oh, ow;
};

PoolArgs pool_args(const Napi::CallbackInfo& info, size_t first, const char* op, bool max) {
  Napi::Env env = info.Env();
  PoolArgs a;
  a.d = pool_desc(info, first, op, max);
  const size_t next = first + (max ? 12 : 10);
  a.d.ceil_mode = arg_bool(info, next);
  a.d.count_include_pad = max ? 1 : arg_bool(info, next + 1);
  a.oh = pool_out(env, op, "height", a.d.h, a.d.kh, a.d.stride_h, a.d.pad_h, a.d.dil_h, a.d.ceil_mode);
  a.ow = pool_out(env, op, "width", a.d.w, a.d.kw, a.d.stride_w, a.d.pad_w, a.d.dil_w, a.d.ceil_mode);
  if (max && a.d.h * a.d.w > INT32_MAX) range_error(env, std::string(op) + ": H*W must fit in an int32 index");
  return a;
}

// cudaMaxPool2dForward(y, indices, x, N, C, H, W, KH, KW, sH, sW, pH, pW, dH, dW, ceilMode)
Napi::Value MaxPool2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaMaxPool2dForward";
  const PoolArgs a = pool_args(info, 3, op, true);
  const tsm_pool2d_desc& d = a.d;
  const int64_t ny = elems(env, op, d.n, d.c, a.oh, a.ow);
  float* y = static_cast<float*>(device_arg(info, 0, op, "y", ny));
  int32_t* idx = static_cast<int32_t*>(device_arg(info, 1, op, "indices", ny));
  const float* x = static_cast<const float*>(device_arg(info, 2, op, "x", elems(env, op, d.n, d.c, d.h, d.w)));
  tsm_binding_cuda_check(env, op, tsm_cuda_max_pool2d_forward(y, idx, x, &d));
  return env.Undefined();
}

// cudaMaxPool2dBackward(dx, dy, indices, N, C, H, W, KH, KW, sH, sW, pH, pW, dH, dW, ceilMode)
Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaMaxPool2dBackward";
  const PoolArgs a = pool_args(info, 3, op, true);
  const tsm_pool2d_desc& d = a.d;
  const int64_t ny = elems(env, op, d.n, d.c, a.oh, a.ow);
  float* dx = static_cast<float*>(device_arg(info, 0, op, "dx", elems(env, op, d.n, d.c, d.h, d.w)));
  const float* dy = static_cast<const float*>(device_arg(info, 1, op, "dy", ny));
  const int32_t* idx = static_cast<const int32_t*>(device_arg(info, 2, op, "indices", ny));
  tsm_binding_cuda_check(env, op, tsm_cuda_max_pool2d_backward(dx, dy, idx, &d));
  return env.Undefined();
}

// cudaAvgPool2dForward(y, x, N, C, H, W, KH, KW, sH, sW, pH, pW, ceilMode, countIncludePad)
Napi::Value AvgPool2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaAvgPool2dForward";
  const PoolArgs a = pool_args(info, 2, op, false);
  const tsm_pool2d_desc& d = a.d;
  float* y = static_cast<float*>(device_arg(info, 0, op, "y", elems(env, op, d.n, d.c, a.oh, a.ow)));
  const float* x = static_cast<const float*>(device_arg(info, 1, op, "x", elems(env, op, d.n, d.c, d.h, d.w)));
  tsm_binding_cuda_check(env, op, tsm_cuda_avg_pool2d_forward(y, x, &d));
  return env.Undefined();
}

// cudaAvgPool2dBackward(dx, dy, N, C, H, W, KH, KW, sH, sW, pH, pW, ceilMode, countIncludePad)
Napi::Value AvgPool2dBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaAvgPool2dBackward";
  const PoolArgs a = pool_args(info, 2, op, false);
  const tsm_pool2d_desc& d = a.d;
  float* dx = static_cast<float*>(device_arg(info, 0, op, "dx", elems(env, op, d.n, d.c, d.h, d.w)));
  const float* dy = static_cast<const float*>(device_arg(info, 1, op, "dy", elems(env, op, d.n, d.c, a.oh, a.ow)));
  tsm_binding_cuda_check(env, op, tsm_cuda_avg_pool2d_backward(dx, dy, &d));
  return env.Undefined();
}

int reduction_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  const int64_t r = arg_int(info, i, op, "reduction");
  if (r < 0 || r > 2) range_error(info.Env(), std::string(op) + ": reduction must be 0 (none), 1 (mean) or 2 (sum)");
  return int(r);
}

// cudaCrossEntropyForward(losses, logProbs, out|null, count|null, logits, targets, n, c, ignoreIndex,
//                         labelSmoothing, reduction)
Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaCrossEntropyForward";
  const int64_t n = arg_size(info, 6, op, "n", 0), c = arg_size(info, 7, op, "c", 1);
  const int64_t ignore = arg_int(info, 8, op, "ignoreIndex");
  const double eps = arg_num(info, 9, op, "labelSmoothing");
  const int red = reduction_arg(info, 10, op);
  const int64_t nc = mul(env, op, n, c);
  float* losses = static_cast<float*>(device_arg(info, 0, op, "losses", n));
  float* lp = static_cast<float*>(device_arg(info, 1, op, "logProbs", nc));
  float* out = is_null(info, 2) ? nullptr : static_cast<float*>(device_arg(info, 2, op, "out", 1));
  float* count = is_null(info, 3) ? nullptr : static_cast<float*>(device_arg(info, 3, op, "count", 1));
  const float* logits = static_cast<const float*>(device_arg(info, 4, op, "logits", nc));
  const int32_t* t = static_cast<const int32_t*>(device_arg(info, 5, op, "targets", n));
  tsm_binding_cuda_check(env, op, tsm_cuda_cross_entropy_forward(losses, lp, out, count, logits, t, n, c, ignore,
                                                                 float(eps), red));
  return env.Undefined();
}

// cudaCrossEntropyBackward(dlogits, logProbs, targets, dloss, count|null, n, c, ignoreIndex,
//                          labelSmoothing, reduction)
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaCrossEntropyBackward";
  const int64_t n = arg_size(info, 5, op, "n", 0), c = arg_size(info, 6, op, "c", 1);
  const int64_t ignore = arg_int(info, 7, op, "ignoreIndex");
  const double eps = arg_num(info, 8, op, "labelSmoothing");
  const int red = reduction_arg(info, 9, op);
  const int64_t nc = mul(env, op, n, c);
  float* dl = static_cast<float*>(device_arg(info, 0, op, "dlogits", nc));
  const float* lp = static_cast<const float*>(device_arg(info, 1, op, "logProbs", nc));
  const int32_t* t = static_cast<const int32_t*>(device_arg(info, 2, op, "targets", n));
  const float* dloss = static_cast<const float*>(device_arg(info, 3, op, "dloss", red == 0 ? n : 1));
  const float* count = is_null(info, 4) ? nullptr : static_cast<const float*>(device_arg(info, 4, op, "count", 1));
  tsm_binding_cuda_check(env, op, tsm_cuda_cross_entropy_backward(dl, lp, t, dloss, count, n, c, ignore, float(eps),
                                                                  red));
  return env.Undefined();
}

}  // namespace

void register_ops_cuda_nn(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaConv2dForward", Napi::Function::New(env, Conv2dForward, "cudaConv2dForward"));
  exports.Set("cudaConv2dBackwardData", Napi::Function::New(env, Conv2dBackwardData, "cudaConv2dBackwardData"));
  exports.Set("cudaConv2dBackwardWeight", Napi::Function::New(env, Conv2dBackwardWeight, "cudaConv2dBackwardWeight"));
  exports.Set("cudaMaxPool2dForward", Napi::Function::New(env, MaxPool2dForward, "cudaMaxPool2dForward"));
  exports.Set("cudaMaxPool2dBackward", Napi::Function::New(env, MaxPool2dBackward, "cudaMaxPool2dBackward"));
  exports.Set("cudaAvgPool2dForward", Napi::Function::New(env, AvgPool2dForward, "cudaAvgPool2dForward"));
  exports.Set("cudaAvgPool2dBackward", Napi::Function::New(env, AvgPool2dBackward, "cudaAvgPool2dBackward"));
  exports.Set("cudaCrossEntropyForward", Napi::Function::New(env, CrossEntropyForward, "cudaCrossEntropyForward"));
  exports.Set("cudaCrossEntropyBackward", Napi::Function::New(env, CrossEntropyBackward, "cudaCrossEntropyBackward"));
}
