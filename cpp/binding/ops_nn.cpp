// N-API entry points for the nn kernels: layerNorm, batchNorm, embedding, optimizer updates.
// Outputs come first and are preallocated by the caller. Every buffer length is checked here, so
// that no call from JavaScript can make a kernel read or write out of bounds.
#include <string>
#include <vector>

#include "binding.h"

using namespace tsm_binding;

namespace {


// A Float32Array argument that may be null/undefined (then returns nullptr and *present = false).
float* opt_f32(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
               size_t* length, bool* present) {
  *present = !is_null(info, i);
  *length = 0;
  if (!*present) return nullptr;
  return arg_f32(info, i, op, name, length);
}

// A Float32Array of exactly `want` elements (or at least; the kernels use the first `want`).
float* f32_need(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
                int64_t want) {
  size_t len = 0;
  float* p = arg_f32(info, i, op, name, &len);
  need(info.Env(), op, name, len, want);
  return p;
}

float* opt_f32_need(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
                    int64_t want) {
  size_t len = 0;
  bool present = false;
  float* p = opt_f32(info, i, op, name, &len, &present);
  if (present) need(info.Env(), op, name, len, want);
  return p;
}

int64_t nonneg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  const int64_t v = arg_int(info, i, op, name);
  if (v < 0) range_error(info.Env(), std::string(op) + ": " + name + " must be >= 0, got " + std::to_string(v));
  return v;
}

// a * b, or a RangeError when the product would not fit a safe integer.
int64_t mul(Napi::Env env, const char* op, int64_t a, int64_t b) {
  if (a != 0 && b > int64_t(9007199254740991) / a)
    range_error(env, std::string(op) + ": sizes are too large");
  return a * b;
}

float as_f32(double v) { return static_cast<float>(v); }

// ---- layer norm ----

// layerNormForward(y, mean, rstd, x, w|null, b|null, rows, cols, eps)
Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "layerNormForward";
  const int64_t rows = nonneg(info, 6, op, "rows"), cols = nonneg(info, 7, op, "cols");
  const double eps = arg_num(info, 8, op, "eps");
  if (!(eps >= 0.0)) range_error(env, std::string(op) + ": eps must be >= 0");
  const int64_t total = mul(env, op, rows, cols);
  float* y = f32_need(info, 0, op, "y", total);
  float* mean = f32_need(info, 1, op, "mean", rows);
  float* rstd = f32_need(info, 2, op, "rstd", rows);
  const float* x = f32_need(info, 3, op, "x", total);
  const float* w = opt_f32_need(info, 4, op, "w", cols);
  const float* b = opt_f32_need(info, 5, op, "b", cols);
  check(env, tsm_layer_norm_forward(y, mean, rstd, x, w, b, rows, cols, as_f32(eps)));
  return env.Undefined();
}

// layerNormBackward(dx, dw|null, db|null, dy, x, mean, rstd, w|null, rows, cols)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "layerNormBackward";
  const int64_t rows = nonneg(info, 8, op, "rows"), cols = nonneg(info, 9, op, "cols");
  const int64_t total = mul(env, op, rows, cols);
  float* dx = f32_need(info, 0, op, "dx", total);
  float* dw = opt_f32_need(info, 1, op, "dw", cols);
  float* db = opt_f32_need(info, 2, op, "db", cols);
  const float* dy = f32_need(info, 3, op, "dy", total);
  const float* x = f32_need(info, 4, op, "x", total);
  const float* mean = f32_need(info, 5, op, "mean", rows);
  const float* rstd = f32_need(info, 6, op, "rstd", rows);
  const float* w = opt_f32_need(info, 7, op, "w", cols);
  check(env, tsm_layer_norm_backward(dx, dw, db, dy, x, mean, rstd, w, rows, cols));
  return env.Undefined();
}

// ---- batch norm ----

// batchNormForward(y, saveMean, saveInvstd, runningMean|null, runningVar|null, x, w|null, b|null,
//                  N, C, HW, training, momentum, eps)
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "batchNormForward";
  const int64_t n = nonneg(info, 8, op, "N"), c = nonneg(info, 9, op, "C"),
                hw = nonneg(info, 10, op, "HW");
  const bool training = arg_bool(info, 11);
  const double momentum = arg_num(info, 12, op, "momentum");
  const double eps = arg_num(info, 13, op, "eps");
  if (!(eps >= 0.0)) range_error(env, std::string(op) + ": eps must be >= 0");
  const int64_t total = mul(env, op, mul(env, op, n, c), hw);
  float* y = f32_need(info, 0, op, "y", total);
  float* save_mean = f32_need(info, 1, op, "saveMean", c);
  float* save_invstd = f32_need(info, 2, op, "saveInvstd", c);
  float* running_mean = opt_f32_need(info, 3, op, "runningMean", c);
  float* running_var = opt_f32_need(info, 4, op, "runningVar", c);
  const float* x = f32_need(info, 5, op, "x", total);
  const float* w = opt_f32_need(info, 6, op, "w", c);
  const float* b = opt_f32_need(info, 7, op, "b", c);
  if (c > 0) {
    if (is_null(info, 3) != is_null(info, 4))
      type_error(env, std::string(op) + ": runningMean and runningVar must be both given or both null");
    if (!training && is_null(info, 3))
      type_error(env, std::string(op) + ": eval mode (training = false) needs runningMean and runningVar");
    if (training && mul(env, op, n, hw) <= 1)
      range_error(env, std::string(op) + ": training needs more than 1 value per channel, got N * HW = " +
                           std::to_string(n * hw));
  }
  check(env, tsm_batch_norm_forward(y, save_mean, save_invstd, running_mean, running_var, x, w, b,
                                    n, c, hw, training ? 1 : 0, as_f32(momentum), as_f32(eps)));
  return env.Undefined();
}

// batchNormBackward(dx, dw|null, db|null, dy, x, saveMean, saveInvstd, w|null, N, C, HW, training)
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "batchNormBackward";
  const int64_t n = nonneg(info, 8, op, "N"), c = nonneg(info, 9, op, "C"),
                hw = nonneg(info, 10, op, "HW");
  const bool training = arg_bool(info, 11);
  const int64_t total = mul(env, op, mul(env, op, n, c), hw);
  float* dx = f32_need(info, 0, op, "dx", total);
  float* dw = opt_f32_need(info, 1, op, "dw", c);
  float* db = opt_f32_need(info, 2, op, "db", c);
  const float* dy = f32_need(info, 3, op, "dy", total);
  const float* x = f32_need(info, 4, op, "x", total);
  const float* save_mean = f32_need(info, 5, op, "saveMean", c);
  const float* save_invstd = f32_need(info, 6, op, "saveInvstd", c);
  const float* w = opt_f32_need(info, 7, op, "w", c);
  check(env, tsm_batch_norm_backward(dx, dw, db, dy, x, save_mean, save_invstd, w, n, c, hw,
                                     training ? 1 : 0));
  return env.Undefined();
}

// ---- embedding ----

const int32_t* indices_arg(const Napi::CallbackInfo& info, size_t i, const char* op,
                           int64_t num_embeddings, int64_t* n) {
  size_t len = 0;
  const int32_t* idx = arg_i32(info, i, op, "indices", &len);
  for (size_t k = 0; k < len; ++k)
    if (idx[k] < 0 || idx[k] >= num_embeddings)
      range_error(info.Env(), std::string(op) + ": indices[" + std::to_string(k) + "] = " +
                                  std::to_string(idx[k]) + " is out of range [0, " +
                                  std::to_string(num_embeddings) + ")");
  *n = static_cast<int64_t>(len);
  return idx;
}

// embeddingForward(y, indices: Int32Array, weight, numEmbeddings, dim)
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "embeddingForward";
  const int64_t num = nonneg(info, 3, op, "numEmbeddings"), dim = nonneg(info, 4, op, "dim");
  int64_t n = 0;
  const int32_t* idx = indices_arg(info, 1, op, num, &n);
  float* y = f32_need(info, 0, op, "y", mul(env, op, n, dim));
  const float* weight = f32_need(info, 2, op, "weight", mul(env, op, num, dim));
  check(env, tsm_embedding_forward(y, idx, weight, n, num, dim));
  return env.Undefined();
}

// embeddingBackward(dweight, dy, indices: Int32Array, numEmbeddings, dim, paddingIdx)
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "embeddingBackward";
  const int64_t num = nonneg(info, 3, op, "numEmbeddings"), dim = nonneg(info, 4, op, "dim");
  const int64_t padding_idx = arg_int(info, 5, op, "paddingIdx");
  if (padding_idx < -1 || padding_idx >= num)
    range_error(env, std::string(op) + ": paddingIdx must be -1 or in [0, " + std::to_string(num) +
                         "), got " + std::to_string(padding_idx));
  int64_t n = 0;
  const int32_t* idx = indices_arg(info, 2, op, num, &n);
  float* dweight = f32_need(info, 0, op, "dweight", mul(env, op, num, dim));
  const float* dy = f32_need(info, 1, op, "dy", mul(env, op, n, dim));
  check(env, tsm_embedding_backward(dweight, dy, idx, n, num, dim, padding_idx));
  return env.Undefined();
}

// ---- optimizers ----

// A JS array of Float32Array: pointers and lengths.
struct F32List {
  bool present = false;
  std::vector<float*> ptr;
  std::vector<int64_t> len;
};

F32List f32_list(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
                 bool nullable) {
  F32List out;
  Napi::Env env = info.Env();
  if (nullable && is_null(info, i)) return out;
  if (i >= info.Length() || !info[i].IsArray())
    type_error(env, std::string(op) + ": " + name + " must be an array of Float32Array" +
                        (nullable ? " or null" : ""));
  Napi::Array arr = info[i].As<Napi::Array>();
  const uint32_t count = arr.Length();
  out.present = true;
  out.ptr.reserve(count);
  out.len.reserve(count);
  for (uint32_t k = 0; k < count; ++k) {
    Napi::Value v = arr.Get(k);
    const std::string item = std::string(name) + "[" + std::to_string(k) + "]";
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      type_error(env, std::string(op) + ": " + item + " must be a Float32Array");
    Napi::Float32Array a = v.As<Napi::Float32Array>();
    const size_t n = a.ElementLength();
    out.ptr.push_back(n ? a.Data() : nullptr);
    out.len.push_back(static_cast<int64_t>(n));
  }
  return out;
}

// Checks that `other` has as many arrays as params, each of the same length.
void match(Napi::Env env, const char* op, const F32List& params, const F32List& other,
           const char* name) {
  if (!other.present) return;
  if (other.ptr.size() != params.ptr.size())
    range_error(env, std::string(op) + ": " + name + " has " + std::to_string(other.ptr.size()) +
                         " arrays, params has " + std::to_string(params.ptr.size()));
  for (size_t k = 0; k < params.len.size(); ++k)
    if (other.len[k] != params.len[k])
      range_error(env, std::string(op) + ": " + name + "[" + std::to_string(k) + "] has " +
                           std::to_string(other.len[k]) + " elements, params[" +
                           std::to_string(k) + "] has " + std::to_string(params.len[k]));
}

float* const* ptrs(F32List& l) { return l.present ? l.ptr.data() : nullptr; }
const float* const* cptrs(F32List& l) {
  return l.present ? const_cast<const float* const*>(l.ptr.data()) : nullptr;
}

// sgdStep(params[], grads[], momentumBufs[]|null, lr, momentum, dampening, weightDecay,
//         nesterov, maximize, firstStep)
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "sgdStep";
  F32List params = f32_list(info, 0, op, "params", false);
  F32List grads = f32_list(info, 1, op, "grads", false);
  F32List bufs = f32_list(info, 2, op, "momentumBufs", true);
  const double lr = arg_num(info, 3, op, "lr"), momentum = arg_num(info, 4, op, "momentum"),
               dampening = arg_num(info, 5, op, "dampening"),
               weight_decay = arg_num(info, 6, op, "weightDecay");
  const bool nesterov = arg_bool(info, 7), maximize = arg_bool(info, 8),
             first_step = arg_bool(info, 9);
  match(env, op, params, grads, "grads");
  match(env, op, params, bufs, "momentumBufs");
  if (momentum != 0.0 && !bufs.present)
    type_error(env, std::string(op) + ": momentumBufs must be given when momentum != 0");
  if (nesterov && (momentum <= 0.0 || dampening != 0.0))
    range_error(env, std::string(op) + ": nesterov needs momentum > 0 and dampening = 0");
  check(env, tsm_sgd_step(params.ptr.data(), ptrs(bufs), cptrs(grads), params.len.data(),
                          static_cast<int64_t>(params.ptr.size()), lr, momentum, dampening,
                          weight_decay, nesterov, maximize, first_step));
  return env.Undefined();
}

// adamStep(params[], grads[], expAvg[], expAvgSq[], maxExpAvgSq[]|null, lr, beta1, beta2, eps,
//          weightDecay, step, amsgrad, decoupled, maximize)
Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "adamStep";
  F32List params = f32_list(info, 0, op, "params", false);
  F32List grads = f32_list(info, 1, op, "grads", false);
  F32List m = f32_list(info, 2, op, "expAvg", false);
  F32List v = f32_list(info, 3, op, "expAvgSq", false);
  F32List vmax = f32_list(info, 4, op, "maxExpAvgSq", true);
  const double lr = arg_num(info, 5, op, "lr"), beta1 = arg_num(info, 6, op, "beta1"),
               beta2 = arg_num(info, 7, op, "beta2"), eps = arg_num(info, 8, op, "eps"),
               weight_decay = arg_num(info, 9, op, "weightDecay");
  const int64_t step = arg_int(info, 10, op, "step");
  const bool amsgrad = arg_bool(info, 11), decoupled = arg_bool(info, 12),
             maximize = arg_bool(info, 13);
  if (step < 1) range_error(env, std::string(op) + ": step must be >= 1, got " + std::to_string(step));
  match(env, op, params, grads, "grads");
  match(env, op, params, m, "expAvg");
  match(env, op, params, v, "expAvgSq");
  match(env, op, params, vmax, "maxExpAvgSq");
  if (amsgrad && !vmax.present)
    type_error(env, std::string(op) + ": maxExpAvgSq must be given when amsgrad is true");
  check(env, tsm_adam_step(params.ptr.data(), ptrs(m), ptrs(v), ptrs(vmax), cptrs(grads),
                           params.len.data(), static_cast<int64_t>(params.ptr.size()), lr, beta1,
                           beta2, eps, weight_decay, step, amsgrad, decoupled, maximize));
  return env.Undefined();
}

// rmspropStep(params[], grads[], squareAvg[], momentumBuf[]|null, gradAvg[]|null, lr, alpha, eps,
//             weightDecay, momentum, centered, maximize?)
Napi::Value RmspropStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "rmspropStep";
  F32List params = f32_list(info, 0, op, "params", false);
  F32List grads = f32_list(info, 1, op, "grads", false);
  F32List sq = f32_list(info, 2, op, "squareAvg", false);
  F32List buf = f32_list(info, 3, op, "momentumBuf", true);
  F32List ga = f32_list(info, 4, op, "gradAvg", true);
  const double lr = arg_num(info, 5, op, "lr"), alpha = arg_num(info, 6, op, "alpha"),
               eps = arg_num(info, 7, op, "eps"), weight_decay = arg_num(info, 8, op, "weightDecay"),
               momentum = arg_num(info, 9, op, "momentum");
  const bool centered = arg_bool(info, 10), maximize = arg_bool(info, 11);
  match(env, op, params, grads, "grads");
  match(env, op, params, sq, "squareAvg");
  match(env, op, params, buf, "momentumBuf");
  match(env, op, params, ga, "gradAvg");
  if (momentum > 0.0 && !buf.present)
    type_error(env, std::string(op) + ": momentumBuf must be given when momentum > 0");
  if (centered && !ga.present)
    type_error(env, std::string(op) + ": gradAvg must be given when centered is true");
  check(env, tsm_rmsprop_step(params.ptr.data(), ptrs(sq), ptrs(buf), ptrs(ga), cptrs(grads),
                              params.len.data(), static_cast<int64_t>(params.ptr.size()), lr,
                              alpha, eps, weight_decay, momentum, centered, maximize));
  return env.Undefined();
}

// scaleInPlace(arrays[], factor)
Napi::Value ScaleInPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "scaleInPlace";
  F32List arrays = f32_list(info, 0, op, "arrays", false);
  const double factor = arg_num(info, 1, op, "factor");
  check(env, tsm_scale_inplace(arrays.ptr.data(), arrays.len.data(),
                               static_cast<int64_t>(arrays.ptr.size()), as_f32(factor)));
  return env.Undefined();
}

}  // namespace

void register_ops_nn(Napi::Env env, Napi::Object exports) {
  exports.Set("layerNormForward", Napi::Function::New(env, LayerNormForward, "layerNormForward"));
  exports.Set("layerNormBackward", Napi::Function::New(env, LayerNormBackward, "layerNormBackward"));
  exports.Set("batchNormForward", Napi::Function::New(env, BatchNormForward, "batchNormForward"));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackward, "batchNormBackward"));
  exports.Set("embeddingForward", Napi::Function::New(env, EmbeddingForward, "embeddingForward"));
  exports.Set("embeddingBackward", Napi::Function::New(env, EmbeddingBackward, "embeddingBackward"));
  exports.Set("sgdStep", Napi::Function::New(env, SgdStep, "sgdStep"));
  exports.Set("adamStep", Napi::Function::New(env, AdamStep, "adamStep"));
  exports.Set("rmspropStep", Napi::Function::New(env, RmspropStep, "rmspropStep"));
  exports.Set("scaleInPlace", Napi::Function::New(env, ScaleInPlace, "scaleInPlace"));
}
