// The normalisation, embedding, dropout and adaptive-pooling kernels of CUDA tensors (section
// "cuda norm kernels" of tensorsmith.h) on device buffer handles. Thin, as ops_cuda_nn.cpp:
// lib/cuda-norm.ts and lib/functional.ts validate and explain; here the sizes are read, every handle
// must be live and every access must fit its buffer, then the C ABI is called. CUDA failures come
// back as TsmCudaError, bad arguments as TypeError/RangeError naming the entry point.
#include <string>

#include "binding.h"
#include "conv_args.h"

using namespace tsm_binding;

void tsm_binding_cuda_check(Napi::Env env, const char* call, tsm_status status);

namespace {

// A float32 device operand of `elems` elements; NULL for a null/undefined argument when `optional`.
float* f(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int64_t elems,
         bool optional = false) {
  return optional && is_null(info, i) ? nullptr : static_cast<float*>(device_arg(info, i, op, name, elems));
}

// A non-negative integer below 2^53 (seeds and counter offsets).
uint64_t arg_u53(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  const int64_t v = arg_int(info, i, op, name);
  if (v < 0) range_error(info.Env(), std::string(op) + ": " + name + " must be a non-negative integer < 2^53");
  return static_cast<uint64_t>(v);
}

// cudaLayerNormForward(y, mean, rstd, x, w|null, b|null, rows, cols, eps)
Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaLayerNormForward";
  const int64_t rows = arg_size(info, 6, op, "rows", 0), cols = arg_size(info, 7, op, "cols", 0);
  const double eps = arg_num(info, 8, op, "eps");
  if (!(eps >= 0)) range_error(env, std::string(op) + ": eps must be >= 0");
  const int64_t n = mul(env, op, rows, cols);
  float* y = f(info, 0, op, "y", n);
  float* mean = f(info, 1, op, "mean", rows);
  float* rstd = f(info, 2, op, "rstd", rows);
  const float* x = f(info, 3, op, "x", n);
  const float* w = f(info, 4, op, "weight", cols, true);
  const float* b = f(info, 5, op, "bias", cols, true);
  tsm_binding_cuda_check(env, op, tsm_cuda_layer_norm_forward(y, mean, rstd, x, w, b, rows, cols, float(eps)));
  return env.Undefined();
}

// cudaLayerNormBackward(dx|null, dw|null, db|null, dy, x, mean, rstd, w|null, rows, cols)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaLayerNormBackward";
  const int64_t rows = arg_size(info, 8, op, "rows", 0), cols = arg_size(info, 9, op, "cols", 0);
  const int64_t n = mul(env, op, rows, cols);
  float* dx = f(info, 0, op, "dx", n, true);
  float* dw = f(info, 1, op, "dweight", cols, true);
  float* db = f(info, 2, op, "dbias", cols, true);
  const float* dy = f(info, 3, op, "dy", n);
  const float* x = f(info, 4, op, "x", n);
  const float* mean = f(info, 5, op, "mean", rows);
  const float* rstd = f(info, 6, op, "rstd", rows);
  const float* w = f(info, 7, op, "weight", cols, true);
  tsm_binding_cuda_check(env, op, tsm_cuda_layer_norm_backward(dx, dw, db, dy, x, mean, rstd, w, rows, cols));
  return env.Undefined();
}

// cudaBatchNormForward(y, saveMean, saveInvstd, runningMean|null, runningVar|null, x, w|null, b|null, n, c, hw,
//                      training, momentum, eps, numBatchesTracked|null)
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaBatchNormForward";
  const int64_t n = arg_size(info, 8, op, "n", 0), c = arg_size(info, 9, op, "c", 0), hw = arg_size(info, 10, op, "hw", 0);
  const bool training = arg_bool(info, 11);
  const double momentum = arg_num(info, 12, op, "momentum"), eps = arg_num(info, 13, op, "eps");
  if (!(momentum >= 0 && momentum <= 1)) range_error(env, std::string(op) + ": momentum must be in [0, 1]");
  if (!(eps >= 0)) range_error(env, std::string(op) + ": eps must be >= 0");
  const int64_t total = mul(env, op, mul(env, op, n, c), hw);
  float* y = f(info, 0, op, "y", total);
  float* sm = f(info, 1, op, "saveMean", c);
  float* si = f(info, 2, op, "saveInvstd", c);
  float* rm = f(info, 3, op, "runningMean", c, true);
  float* rv = f(info, 4, op, "runningVar", c, true);
  const float* x = f(info, 5, op, "x", total);
  const float* w = f(info, 6, op, "weight", c, true);
  const float* b = f(info, 7, op, "bias", c, true);
  int32_t* nbt = is_null(info, 14) ? nullptr : static_cast<int32_t*>(device_arg(info, 14, op, "numBatchesTracked", 1));
  tsm_binding_cuda_check(env, op, tsm_cuda_batch_norm_forward(y, sm, si, rm, rv, x, w, b, n, c, hw, training ? 1 : 0,
                                                              float(momentum), float(eps), nbt));
  return env.Undefined();
}

// cudaBatchNormBackward(dx|null, dw|null, db|null, dy, x, saveMean, saveInvstd, w|null, n, c, hw, training)
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaBatchNormBackward";
  const int64_t n = arg_size(info, 8, op, "n", 0), c = arg_size(info, 9, op, "c", 0), hw = arg_size(info, 10, op, "hw", 0);
  const bool training = arg_bool(info, 11);
  const int64_t total = mul(env, op, mul(env, op, n, c), hw);
  float* dx = f(info, 0, op, "dx", total, true);
  float* dw = f(info, 1, op, "dweight", c, true);
  float* db = f(info, 2, op, "dbias", c, true);
  const float* dy = f(info, 3, op, "dy", total);
  const float* x = f(info, 4, op, "x", total);
  const float* sm = f(info, 5, op, "saveMean", c);
  const float* si = f(info, 6, op, "saveInvstd", c);
  const float* w = f(info, 7, op, "weight", c, true);
  tsm_binding_cuda_check(env, op, tsm_cuda_batch_norm_backward(dx, dw, db, dy, x, sm, si, w, n, c, hw, training ? 1 : 0));
  return env.Undefined();
}

// cudaEmbeddingForward(y, indices, weight, n, num, dim)
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaEmbeddingForward";
  const int64_t n = arg_size(info, 3, op, "n", 0), num = arg_size(info, 4, op, "num", 0),
                dim = arg_size(info, 5, op, "dim", 0);
  float* y = f(info, 0, op, "y", mul(env, op, n, dim));
  const int32_t* idx = static_cast<const int32_t*>(device_arg(info, 1, op, "indices", n));
  const float* w = f(info, 2, op, "weight", mul(env, op, num, dim));
  tsm_binding_cuda_check(env, op, tsm_cuda_embedding_forward(y, idx, w, n, num, dim));
  return env.Undefined();
}

// cudaEmbeddingBackward(dweight, dy, indices, n, num, dim, paddingIdx)
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaEmbeddingBackward";
  const int64_t n = arg_size(info, 3, op, "n", 0), num = arg_size(info, 4, op, "num", 0),
                dim = arg_size(info, 5, op, "dim", 0);
  const int64_t pad = arg_int(info, 6, op, "paddingIdx");
  if (pad < -1 || pad >= num)
    range_error(env, std::string(op) + ": paddingIdx must be -1 or in [0, " + std::to_string(num) + "), got " +
                         std::to_string(pad));
  float* dw = f(info, 0, op, "dweight", mul(env, op, num, dim));
  const float* dy = f(info, 1, op, "dy", mul(env, op, n, dim));
  const int32_t* idx = static_cast<const int32_t*>(device_arg(info, 2, op, "indices", n));
  tsm_binding_cuda_check(env, op, tsm_cuda_embedding_backward(dw, dy, idx, n, num, dim, pad));
  return env.Undefined();
}

// cudaDropoutForward(y, mask, x, p, seed, offset, n)
Napi::Value DropoutForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaDropoutForward";
  const double p = arg_num(info, 3, op, "p");
  if (!(p >= 0.0 && p <= 1.0)) range_error(env, std::string(op) + ": p must be in [0, 1]");
  const uint64_t seed = arg_u53(info, 4, op, "seed"), offset = arg_u53(info, 5, op, "offset");
  const int64_t n = arg_size(info, 6, op, "n", 0);
  float* y = f(info, 0, op, "y", n);
  float* mask = f(info, 1, op, "mask", n);
  const float* x = f(info, 2, op, "x", n);
  if (mask == x || mask == y) range_error(env, std::string(op) + ": mask must not share memory with x or y");
  tsm_binding_cuda_check(env, op, tsm_cuda_dropout_forward(y, mask, x, p, seed, offset, n));
  return env.Undefined();
}

tsm_pool2d_shape adaptive_shape(const Napi::CallbackInfo& info, size_t first, const char* op) {
  tsm_pool2d_shape s;
  s.n = arg_size(info, first, op, "N", 1);
  s.c = arg_size(info, first + 1, op, "C", 1);
  s.h = arg_size(info, first + 2, op, "H", 1);
  s.w = arg_size(info, first + 3, op, "W", 1);
  s.oh = arg_size(info, first + 4, op, "OH", 1);
  s.ow = arg_size(info, first + 5, op, "OW", 1);
  return s;
}

// cudaAdaptiveAvgPool2dForward(y, x, N, C, H, W, OH, OW)
Napi::Value AdaptiveAvgPool2dForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaAdaptiveAvgPool2dForward";
  const tsm_pool2d_shape s = adaptive_shape(info, 2, op);
  float* y = f(info, 0, op, "y", elems(env, op, s.n, s.c, s.oh, s.ow));
  const float* x = f(info, 1, op, "x", elems(env, op, s.n, s.c, s.h, s.w));
  tsm_binding_cuda_check(env, op, tsm_cuda_adaptive_avg_pool2d_forward(y, x, &s));
  return env.Undefined();
}

// cudaAdaptiveAvgPool2dBackward(dx, dy, N, C, H, W, OH, OW)
Napi::Value AdaptiveAvgPool2dBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaAdaptiveAvgPool2dBackward";
  const tsm_pool2d_shape s = adaptive_shape(info, 2, op);
  float* dx = f(info, 0, op, "dx", elems(env, op, s.n, s.c, s.h, s.w));
  const float* dy = f(info, 1, op, "dy", elems(env, op, s.n, s.c, s.oh, s.ow));
  tsm_binding_cuda_check(env, op, tsm_cuda_adaptive_avg_pool2d_backward(dx, dy, &s));
  return env.Undefined();
}

}  // namespace

void register_ops_cuda_norm(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaLayerNormForward", Napi::Function::New(env, LayerNormForward, "cudaLayerNormForward"));
  exports.Set("cudaLayerNormBackward", Napi::Function::New(env, LayerNormBackward, "cudaLayerNormBackward"));
  exports.Set("cudaBatchNormForward", Napi::Function::New(env, BatchNormForward, "cudaBatchNormForward"));
  exports.Set("cudaBatchNormBackward", Napi::Function::New(env, BatchNormBackward, "cudaBatchNormBackward"));
  exports.Set("cudaEmbeddingForward", Napi::Function::New(env, EmbeddingForward, "cudaEmbeddingForward"));
  exports.Set("cudaEmbeddingBackward", Napi::Function::New(env, EmbeddingBackward, "cudaEmbeddingBackward"));
  exports.Set("cudaDropoutForward", Napi::Function::New(env, DropoutForward, "cudaDropoutForward"));
  exports.Set("cudaAdaptiveAvgPool2dForward",
              Napi::Function::New(env, AdaptiveAvgPool2dForward, "cudaAdaptiveAvgPool2dForward"));
  exports.Set("cudaAdaptiveAvgPool2dBackward",
              Napi::Function::New(env, AdaptiveAvgPool2dBackward, "cudaAdaptiveAvgPool2dBackward"));
}
