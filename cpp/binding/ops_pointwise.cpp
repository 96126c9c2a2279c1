// N-API entry points for the pointwise kernels: unary, broadcast binary, scalar, reductions,
// softmax, cross-entropy, Philox RNG, dropout, sumOfSquares, allFinite.
//
// Every entry point checks the types of its arguments, the op code, every size and shape, and that
// each buffer holds the elements the kernel will touch, so no call from JavaScript can read or write
// out of bounds. Outputs are preallocated by the caller. Errors name the JS op and the argument.
#include <cstring>
#include <string>
#include <vector>

#include "binding.h"

using namespace tsm_binding;

namespace {

constexpr int kMaxDims = 8;

// Throws for a failed kernel call, with the kernel's message re-prefixed by the JS op name.
void call(Napi::Env env, const char* op, tsm_status status) {
  if (status == TSM_OK) return;
  std::string msg = tsm_last_error();
  const size_t colon = msg.find(": ");
  if (colon != std::string::npos) msg = msg.substr(colon + 2);
  if (msg.empty()) msg = tsm_status_string(status);
  msg = std::string(op) + ": " + msg;
  if (status == TSM_ERR_INVALID_ARGUMENT) range_error(env, msg);
  throw Napi::Error::New(env, msg);
}

int arg_op(const Napi::CallbackInfo& info, size_t i, const char* op, int count) {
  const int64_t v = arg_int(info, i, op, "op");
  if (v < 0 || v >= count)
    range_error(info.Env(), std::string(op) + ": op must be in [0, " + std::to_string(count) +
                                "), got " + std::to_string(v));
  return static_cast<int>(v);
}

int64_t arg_size(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  const int64_t v = arg_int(info, i, op, name);
  if (v < 0) range_error(info.Env(), std::string(op) + ": " + name + " must be >= 0, got " + std::to_string(v));
  return v;
}

// A non-negative integer below 2^53 (seeds and counter offsets).
uint64_t arg_u53(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  const int64_t v = arg_int(info, i, op, name);
  if (v < 0)
    range_error(info.Env(), std::string(op) + ": " + name + " must be a non-negative integer < 2^53");
  return static_cast<uint64_t>(v);
}

// A number[] of at most kMaxDims non-negative integers.
std::vector<int64_t> arg_dims(const Napi::CallbackInfo& info, size_t i, const char* op,
                              const char* name) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsArray())
    type_error(env, std::string(op) + ": " + name + " must be an array of integers");
  Napi::Array arr = info[i].As<Napi::Array>();
  const uint32_t n = arr.Length();
  if (n > kMaxDims)
    range_error(env, std::string(op) + ": " + name + " has " + std::to_string(n) +
                         " dims, at most " + std::to_string(kMaxDims) + " are supported");
  std::vector<int64_t> dims(n);
  for (uint32_t d = 0; d < n; ++d) {
    Napi::Value v = arr.Get(d);
    if (!v.IsNumber())
      type_error(env, std::string(op) + ": " + name + "[" + std::to_string(d) + "] must be a number");
    const double x = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(x) || x != std::floor(x) || x < 0 || x > 9007199254740991.0)
      range_error(env, std::string(op) + ": " + name + "[" + std::to_string(d) +
                           "] must be a non-negative integer");
    dims[d] = static_cast<int64_t>(x);
  }
  return dims;
}

// outer * dim * inner and outer * inner, or a RangeError on overflow.
void sizes3(Napi::Env env, const char* op, int64_t outer, int64_t dim, int64_t inner,
            int64_t* n_x, int64_t* n_out) {
  if (__builtin_mul_overflow(outer, inner, n_out) || __builtin_mul_overflow(*n_out, dim, n_x))
    range_error(env, std::string(op) + ": outer * dim * inner is too large");
}

int64_t product(Napi::Env env, const char* op, const char* name, const std::vector<int64_t>& dims) {
  int64_t p = 1;
  for (int64_t d : dims)
    if (__builtin_mul_overflow(p, d, &p))
      range_error(env, std::string(op) + ": " + name + " has too many elements");
  return p;
}

bool overlaps(const float* a, size_t la, const float* b, size_t lb) {
  if (!a || !b || la == 0 || lb == 0) return false;
  return a < b + lb && b < a + la;
}

// ---- unary ----

// unaryForward(op, y, x): y = f(x)
Napi::Value UnaryForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "unaryForward";
  const int code = arg_op(info, 0, op, TSM_UNARY_OP_COUNT);
  size_t ly = 0, lx = 0;
  float* y = arg_f32(info, 1, op, "y", &ly);
  const float* x = arg_f32(info, 2, op, "x", &lx);
  need(env, op, "y", ly, static_cast<int64_t>(lx));
  call(env, op, tsm_unary_forward(code, y, x, static_cast<int64_t>(lx)));
  return env.Undefined();
}

// unaryBackward(op, dx, x, y, dy): dx = dy * f'(x); reads x or y (see UNARY_BACKWARD_READS_Y)
Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "unaryBackward";
  const int code = arg_op(info, 0, op, TSM_UNARY_OP_COUNT);
  size_t ldx = 0, lx = 0, ly = 0, ldy = 0;
  float* dx = arg_f32(info, 1, op, "dx", &ldx);
  const float* x = arg_f32(info, 2, op, "x", &lx);
  const float* y = arg_f32(info, 3, op, "y", &ly);
  const float* dy = arg_f32(info, 4, op, "dy", &ldy);
  const int64_t n = static_cast<int64_t>(ldy);
  need(env, op, "dx", ldx, n);
  if (tsm_unary_backward_reads_y(code)) need(env, op, "y", ly, n);
  else need(env, op, "x", lx, n);
  call(env, op, tsm_unary_backward(code, dx, x, y, dy, n));
  return env.Undefined();
}

// ---- binary ----

// binaryForward(op, out, a, b, outShape, aStrides, bStrides)
Napi::Value BinaryForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "binaryForward";
  const int code = arg_op(info, 0, op, TSM_BINARY_OP_COUNT);
  size_t lo = 0, la = 0, lb = 0;
  float* out = arg_f32(info, 1, op, "out", &lo);
  const float* a = arg_f32(info, 2, op, "a", &la);
  const float* b = arg_f32(info, 3, op, "b", &lb);
  const std::vector<int64_t> shape = arg_dims(info, 4, op, "outShape");
  const std::vector<int64_t> sa = arg_dims(info, 5, op, "aStrides");
  const std::vector<int64_t> sb = arg_dims(info, 6, op, "bStrides");
  if (sa.size() != shape.size() || sb.size() != shape.size())
    range_error(env, std::string(op) + ": outShape, aStrides and bStrides must have the same length, got " +
                         std::to_string(shape.size()) + ", " + std::to_string(sa.size()) + ", " +
                         std::to_string(sb.size()));
  const int64_t total = product(env, op, "outShape", shape);
  need(env, op, "out", lo, total);
  if (total > 0) {
    // The last element each operand's strides reach, plus one.
    int64_t reach_a = 1, reach_b = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
      int64_t ta = 0, tb = 0;
      if (__builtin_mul_overflow(shape[d] - 1, sa[d], &ta) || __builtin_add_overflow(reach_a, ta, &reach_a))
        range_error(env, std::string(op) + ": aStrides reach too far");
      if (__builtin_mul_overflow(shape[d] - 1, sb[d], &tb) || __builtin_add_overflow(reach_b, tb, &reach_b))
        range_error(env, std::string(op) + ": bStrides reach too far");
    }
    if (static_cast<uint64_t>(reach_a) > la)
      range_error(env, std::string(op) + ": aStrides with outShape reach element " +
                           std::to_string(reach_a - 1) + " but a has " + std::to_string(la) + " elements");
    if (static_cast<uint64_t>(reach_b) > lb)
      range_error(env, std::string(op) + ": bStrides with outShape reach element " +
                           std::to_string(reach_b - 1) + " but b has " + std::to_string(lb) + " elements");
  }
  call(env, op, tsm_binary_forward(code, out, a, b, static_cast<int>(shape.size()), shape.data(),
                                   sa.data(), sb.data()));
  return env.Undefined();
}

// scalarForward(op, out, x, scalar, reverse): out = x op s, or s op x when reverse
Napi::Value ScalarForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "scalarForward";
  const int code = arg_op(info, 0, op, TSM_BINARY_OP_COUNT);
  size_t lo = 0, lx = 0;
  float* out = arg_f32(info, 1, op, "out", &lo);
  const float* x = arg_f32(info, 2, op, "x", &lx);
  const float s = static_cast<float>(arg_num(info, 3, op, "scalar"));
  const bool reverse = arg_bool(info, 4);
  need(env, op, "out", lo, static_cast<int64_t>(lx));
  call(env, op, tsm_scalar_forward(code, out, x, s, reverse ? 1 : 0, static_cast<int64_t>(lx)));
  return env.Undefined();
}

// binarySame(op, out, a, b): a and b of the same length n, out[i] = a[i] op b[i]. The common case
// of binaryForward without the shape and stride arrays (cheaper to call for small tensors).
Napi::Value BinarySame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "binarySame";
  const int code = arg_op(info, 0, op, TSM_BINARY_OP_COUNT);
  size_t lo = 0, la = 0, lb = 0;
  float* out = arg_f32(info, 1, op, "out", &lo);
  const float* a = arg_f32(info, 2, op, "a", &la);
  const float* b = arg_f32(info, 3, op, "b", &lb);
  if (la != lb)
    range_error(env, std::string(op) + ": a and b must have the same length, got " + std::to_string(la) +
                         " and " + std::to_string(lb));
  need(env, op, "out", lo, static_cast<int64_t>(la));
  if (la == 0) return env.Undefined();
  const int64_t shape[1] = {static_cast<int64_t>(la)}, stride[1] = {1};
  call(env, op, tsm_binary_forward(code, out, a, b, 1, shape, stride, stride));
  return env.Undefined();
}

// ---- reductions ----

// reduceForward(op, out, x, outer, dim, inner)
Napi::Value ReduceForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "reduceForward";
  const int code = arg_op(info, 0, op, TSM_REDUCE_OP_COUNT);
  size_t lo = 0, lx = 0;
  float* out = arg_f32(info, 1, op, "out", &lo);
  const float* x = arg_f32(info, 2, op, "x", &lx);
  const int64_t outer = arg_size(info, 3, op, "outer"), dim = arg_size(info, 4, op, "dim"),
                inner = arg_size(info, 5, op, "inner");
  int64_t n_x = 0, n_out = 0;
  sizes3(env, op, outer, dim, inner, &n_x, &n_out);
  need(env, op, "x", lx, n_x);
  need(env, op, "out", lo, n_out);
  call(env, op, tsm_reduce_forward(code, out, x, outer, dim, inner));
  return env.Undefined();
}

// argReduce(out: Int32Array, x, outer, dim, inner, isMax)
Napi::Value ArgReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "argReduce";
  size_t lo = 0, lx = 0;
  int32_t* out = arg_i32(info, 0, op, "out", &lo);
  const float* x = arg_f32(info, 1, op, "x", &lx);
  const int64_t outer = arg_size(info, 2, op, "outer"), dim = arg_size(info, 3, op, "dim"),
                inner = arg_size(info, 4, op, "inner");
  const bool is_max = arg_bool(info, 5);
  int64_t n_x = 0, n_out = 0;
  sizes3(env, op, outer, dim, inner, &n_x, &n_out);
  need(env, op, "x", lx, n_x);
  need(env, op, "out", lo, n_out);
  call(env, op, tsm_arg_reduce(out, x, outer, dim, inner, is_max ? 1 : 0));
  return env.Undefined();
}

// sumToShape(out, x, xShape, outShape)
Napi::Value SumToShape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "sumToShape";
  size_t lo = 0, lx = 0;
  float* out = arg_f32(info, 0, op, "out", &lo);
  const float* x = arg_f32(info, 1, op, "x", &lx);
  const std::vector<int64_t> xs = arg_dims(info, 2, op, "xShape");
  const std::vector<int64_t> os = arg_dims(info, 3, op, "outShape");
  if (xs.size() != os.size())
    range_error(env, std::string(op) + ": xShape and outShape must have the same length, got " +
                         std::to_string(xs.size()) + " and " + std::to_string(os.size()));
  for (size_t d = 0; d < xs.size(); ++d)
    if (os[d] != xs[d] && os[d] != 1)
      range_error(env, std::string(op) + ": outShape[" + std::to_string(d) + "] = " +
                           std::to_string(os[d]) + " must be 1 or xShape[" + std::to_string(d) +
                           "] = " + std::to_string(xs[d]));
  need(env, op, "x", lx, product(env, op, "xShape", xs));
  need(env, op, "out", lo, product(env, op, "outShape", os));
  call(env, op, tsm_sum_to_shape(out, x, static_cast<int>(xs.size()), xs.data(), os.data()));
  return env.Undefined();
}

// ---- softmax ----

// softmaxForward(y, x, outer, dim, inner, log)
Napi::Value SoftmaxForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "softmaxForward";
  size_t ly = 0, lx = 0;
  float* y = arg_f32(info, 0, op, "y", &ly);
  const float* x = arg_f32(info, 1, op, "x", &lx);
  const int64_t outer = arg_size(info, 2, op, "outer"), dim = arg_size(info, 3, op, "dim"),
                inner = arg_size(info, 4, op, "inner");
  const bool log = arg_bool(info, 5);
  int64_t n = 0, n_out = 0;
  sizes3(env, op, outer, dim, inner, &n, &n_out);
  need(env, op, "x", lx, n);
  need(env, op, "y", ly, n);
  call(env, op, tsm_softmax_forward(y, x, outer, dim, inner, log ? 1 : 0));
  return env.Undefined();
}

// softmaxBackward(dx, y, dy, outer, dim, inner, log)
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "softmaxBackward";
  size_t ldx = 0, ly = 0, ldy = 0;
  float* dx = arg_f32(info, 0, op, "dx", &ldx);
  const float* y = arg_f32(info, 1, op, "y", &ly);
  const float* dy = arg_f32(info, 2, op, "dy", &ldy);
  const int64_t outer = arg_size(info, 3, op, "outer"), dim = arg_size(info, 4, op, "dim"),
                inner = arg_size(info, 5, op, "inner");
  const bool log = arg_bool(info, 6);
  int64_t n = 0, n_out = 0;
  sizes3(env, op, outer, dim, inner, &n, &n_out);
  need(env, op, "y", ly, n);
  need(env, op, "dy", ldy, n);
  need(env, op, "dx", ldx, n);
  call(env, op, tsm_softmax_backward(dx, y, dy, outer, dim, inner, log ? 1 : 0));
  return env.Undefined();
}

// ---- cross-entropy ----

float arg_smoothing(const Napi::CallbackInfo& info, size_t i, const char* op) {
  const double v = arg_num(info, i, op, "labelSmoothing");
  if (!(v >= 0.0 && v <= 1.0))
    range_error(info.Env(), std::string(op) + ": labelSmoothing must be in [0, 1], got " + std::to_string(v));
  return static_cast<float>(v);
}

// crossEntropyForward(losses, logProbs, logits, targets, N, C, ignoreIndex, labelSmoothing)
Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "crossEntropyForward";
  size_t ll = 0, llp = 0, lz = 0, lt = 0;
  float* losses = arg_f32(info, 0, op, "losses", &ll);
  float* log_probs = arg_f32(info, 1, op, "logProbs", &llp);
  const float* logits = arg_f32(info, 2, op, "logits", &lz);
  const int32_t* targets = arg_i32(info, 3, op, "targets", &lt);
  const int64_t n = arg_size(info, 4, op, "N"), c = arg_size(info, 5, op, "C");
  const int64_t ignore = arg_int(info, 6, op, "ignoreIndex");
  const float eps = arg_smoothing(info, 7, op);
  int64_t nc = 0, n_out = 0;
  sizes3(env, op, n, c, 1, &nc, &n_out);
  need(env, op, "logits", lz, nc);
  need(env, op, "logProbs", llp, nc);
  need(env, op, "losses", ll, n);
  need(env, op, "targets", lt, n);
  call(env, op, tsm_cross_entropy_forward(losses, log_probs, logits, targets, n, c, ignore, eps));
  return env.Undefined();
}

// crossEntropyBackward(dlogits, logProbs, targets, dlosses, N, C, ignoreIndex, labelSmoothing)
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "crossEntropyBackward";
  size_t lg = 0, llp = 0, lt = 0, ldl = 0;
  float* dlogits = arg_f32(info, 0, op, "dlogits", &lg);
  const float* log_probs = arg_f32(info, 1, op, "logProbs", &llp);
  const int32_t* targets = arg_i32(info, 2, op, "targets", &lt);
  const float* dlosses = arg_f32(info, 3, op, "dlosses", &ldl);
  const int64_t n = arg_size(info, 4, op, "N"), c = arg_size(info, 5, op, "C");
  const int64_t ignore = arg_int(info, 6, op, "ignoreIndex");
  const float eps = arg_smoothing(info, 7, op);
  int64_t nc = 0, n_out = 0;
  sizes3(env, op, n, c, 1, &nc, &n_out);
  need(env, op, "logProbs", llp, nc);
  need(env, op, "dlogits", lg, nc);
  need(env, op, "targets", lt, n);
  need(env, op, "dlosses", ldl, n);
  call(env, op, tsm_cross_entropy_backward(dlogits, log_probs, targets, dlosses, n, c, ignore, eps));
  return env.Undefined();
}

// ---- random numbers and dropout ----

float arg_finite(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  const double v = arg_num(info, i, op, name);
  if (!std::isfinite(v) || std::fabs(v) > 3.4028234663852886e38)
    range_error(info.Env(), std::string(op) + ": " + name + " must be a finite float32 value");
  return static_cast<float>(v);
}

// rngUniform(out, seed, offset, low, high)
Napi::Value RngUniform(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "rngUniform";
  size_t lo = 0;
  float* out = arg_f32(info, 0, op, "out", &lo);
  const uint64_t seed = arg_u53(info, 1, op, "seed"), offset = arg_u53(info, 2, op, "offset");
  const float low = arg_finite(info, 3, op, "low"), high = arg_finite(info, 4, op, "high");
  if (!(low <= high)) range_error(env, std::string(op) + ": low must be <= high");
  call(env, op, tsm_rng_uniform(out, seed, offset, low, high, static_cast<int64_t>(lo)));
  return env.Undefined();
}

// rngNormal(out, seed, offset, mean, std)
Napi::Value RngNormal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "rngNormal";
  size_t lo = 0;
  float* out = arg_f32(info, 0, op, "out", &lo);
  const uint64_t seed = arg_u53(info, 1, op, "seed"), offset = arg_u53(info, 2, op, "offset");
  const float mean = arg_finite(info, 3, op, "mean"), std = arg_finite(info, 4, op, "std");
  if (std < 0) range_error(env, std::string(op) + ": std must be >= 0");
  call(env, op, tsm_rng_normal(out, seed, offset, mean, std, static_cast<int64_t>(lo)));
  return env.Undefined();
}

// dropoutForward(y, mask, x, p, seed, offset)
Napi::Value DropoutForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "dropoutForward";
  size_t ly = 0, lm = 0, lx = 0;
  float* y = arg_f32(info, 0, op, "y", &ly);
  float* mask = arg_f32(info, 1, op, "mask", &lm);
  const float* x = arg_f32(info, 2, op, "x", &lx);
  const double p = arg_num(info, 3, op, "p");
  if (!(p >= 0.0 && p <= 1.0)) range_error(env, std::string(op) + ": p must be in [0, 1]");
  const uint64_t seed = arg_u53(info, 4, op, "seed"), offset = arg_u53(info, 5, op, "offset");
  const int64_t n = static_cast<int64_t>(lx);
  need(env, op, "y", ly, n);
  need(env, op, "mask", lm, n);
  if (overlaps(mask, lm, x, lx) || overlaps(mask, lm, y, ly))
    range_error(env, std::string(op) + ": mask must not share memory with x or y");
  call(env, op, tsm_dropout_forward(y, mask, x, p, seed, offset, n));
  return env.Undefined();
}

// ---- whole-array queries ----

// sumOfSquares(arrays: Float32Array[]) -> number
Napi::Value SumOfSquares(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "sumOfSquares";
  if (info.Length() < 1 || !info[0].IsArray())
    type_error(env, std::string(op) + ": arrays must be an array of Float32Array");
  Napi::Array arr = info[0].As<Napi::Array>();
  double total = 0.0;
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      type_error(env, std::string(op) + ": arrays[" + std::to_string(k) + "] must be a Float32Array");
    Napi::Float32Array f = v.As<Napi::Float32Array>();
    const size_t n = f.ElementLength();
    double part = 0.0;
    call(env, op, tsm_sum_of_squares(&part, n ? f.Data() : nullptr, static_cast<int64_t>(n)));
    total += part;
  }
  return Napi::Number::New(env, total);
}

// allFinite(x) -> boolean
Napi::Value AllFinite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "allFinite";
  size_t lx = 0;
  const float* x = arg_f32(info, 0, op, "x", &lx);
  int ok = 1;
  call(env, op, tsm_all_finite(&ok, x, static_cast<int64_t>(lx)));
  return Napi::Boolean::New(env, ok != 0);
}

Napi::Object op_table(Napi::Env env, const char* const* names, int count) {
  Napi::Object o = Napi::Object::New(env);
  for (int i = 0; i < count; ++i) o.Set(names[i], Napi::Number::New(env, i));
  return o;
}

}  // namespace

void register_ops_pointwise(Napi::Env env, Napi::Object exports) {
  static const char* const kUnary[] = {"relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "exp",
                                       "log", "sqrt", "abs", "neg", "silu", "square",
                                       "reciprocal", "sin", "cos", "rsqrt"};
  static const char* const kBinary[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                        "eq", "ne", "lt", "le", "gt", "ge"};
  static const char* const kReduce[] = {"sum", "mean", "max", "min", "prod"};
  static_assert(sizeof kUnary / sizeof kUnary[0] == TSM_UNARY_OP_COUNT, "unary op names");
  static_assert(sizeof kBinary / sizeof kBinary[0] == TSM_BINARY_OP_COUNT, "binary op names");
  static_assert(sizeof kReduce / sizeof kReduce[0] == TSM_REDUCE_OP_COUNT, "reduce op names");
  exports.Set("UNARY_OPS", op_table(env, kUnary, TSM_UNARY_OP_COUNT));
  exports.Set("BINARY_OPS", op_table(env, kBinary, TSM_BINARY_OP_COUNT));
  exports.Set("REDUCE_OPS", op_table(env, kReduce, TSM_REDUCE_OP_COUNT));
  Napi::Object reads_y = Napi::Object::New(env);
  for (int i = 0; i < TSM_UNARY_OP_COUNT; ++i)
    reads_y.Set(kUnary[i], Napi::Boolean::New(env, tsm_unary_backward_reads_y(i) == 1));
  exports.Set("UNARY_BACKWARD_READS_Y", reads_y);

  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  const Entry entries[] = {
      {"unaryForward", UnaryForward},
      {"unaryBackward", UnaryBackward},
      {"binaryForward", BinaryForward},
      {"scalarForward", ScalarForward},
      {"binarySame", BinarySame},
      {"reduceForward", ReduceForward},
      {"argReduce", ArgReduce},
      {"sumToShape", SumToShape},
      {"softmaxForward", SoftmaxForward},
      {"softmaxBackward", SoftmaxBackward},
      {"crossEntropyForward", CrossEntropyForward},
      {"crossEntropyBackward", CrossEntropyBackward},
      {"rngUniform", RngUniform},
      {"rngNormal", RngNormal},
      {"dropoutForward", DropoutForward},
      {"sumOfSquares", SumOfSquares},
      {"allFinite", AllFinite},
  };
  for (const Entry& e : entries) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
}
