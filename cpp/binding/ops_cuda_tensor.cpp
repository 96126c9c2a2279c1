// The kernels of CUDA tensors (section "cuda tensor kernels" of tensorsmith.h) on device buffer
// handles. Thin, like the rest of the binding: lib/cuda-tensor.ts validates and explains; here every
// handle must be live and every access must fit its buffer (the last line of defence), then the C
// ABI is called. Failures come back as TsmCudaError (see ops_cuda.cpp), bad arguments as
// TypeError/RangeError.
#include <vector>

#include "binding.h"

using namespace tsm_binding;

void tsm_binding_cuda_check(Napi::Env env, const char* call, tsm_status status);

namespace {

constexpr size_t kMaxDims = 8;

void* dev_or_null(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int64_t elems,
                  size_t esz = 4) {
  return is_null(info, i) ? nullptr : device_arg(info, i, op, name, elems, esz);
}

int64_t nonneg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  const int64_t v = arg_int(info, i, op, name);
  if (v < 0) range_error(info.Env(), std::string(op) + ": " + name + " must be >= 0, got " + std::to_string(v));
  return v;
}

// A JS array of at most kMaxDims non-negative integers.
std::vector<int64_t> dims_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (i >= info.Length() || !info[i].IsArray())
    type_error(info.Env(), std::string(op) + ": " + name + " must be an array of integers");
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() > kMaxDims)
    range_error(info.Env(), std::string(op) + ": " + name + " has " + std::to_string(a.Length()) +
                                " dims, at most " + std::to_string(kMaxDims) + " are supported");
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a.Get(k);
    if (!v.IsNumber()) type_error(info.Env(), std::string(op) + ": " + name + " must hold numbers");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
      range_error(info.Env(), std::string(op) + ": " + name + " must hold non-negative integers");
    out[k] = int64_t(d);
  }
  return out;
}

// Elements reached by a view: offset + 1 + sum (shape - 1) * stride, or 0 when the shape is empty.
int64_t reach(Napi::Env env, const char* op, int64_t offset, const std::vector<int64_t>& shape,
              const std::vector<int64_t>& strides) {
  unsigned __int128 end = (unsigned __int128)offset + 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return 0;
    end += (unsigned __int128)(shape[d] - 1) * (unsigned __int128)strides[d];
  }
  if (end > (unsigned __int128)INT64_MAX) range_error(env, std::string(op) + ": the view reaches beyond 2^63 elements");
  return int64_t(end);
}

int64_t product(Napi::Env env, const char* op, std::initializer_list<int64_t> xs) {
  unsigned __int128 p = 1;
  for (int64_t x : xs) {
    p *= (unsigned __int128)x;
    if (p > (unsigned __int128)INT64_MAX) range_error(env, std::string(op) + ": sizes overflow");
  }
  return int64_t(p);
}

// cudaUnaryForward(op, y, x, n)
Napi::Value UnaryForward(const Napi::CallbackInfo& info) {
  const char* op = "cudaUnaryForward";
  const int64_t code = arg_int(info, 0, op, "op"), n = nonneg(info, 3, op, "n");
  float* y = static_cast<float*>(device_arg(info, 1, op, "y", n));
  const float* x = static_cast<const float*>(device_arg(info, 2, op, "x", n));
  tsm_binding_cuda_check(info.Env(), op, tsm_cuda_unary_forward(int(code), y, x, n));
  return info.Env().Undefined();
}

// cudaUnaryBackward(op, dx, x | null, y | null, dy, n)
Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  const char* op = "cudaUnaryBackward";
  const int64_t code = arg_int(info, 0, op, "op"), n = nonneg(info, 5, op, "n");
  float* dx = static_cast<float*>(device_arg(info, 1, op, "dx", n));
  const float* x = static_cast<const float*>(dev_or_null(info, 2, op, "x", n));
  const float* y = static_cast<const float*>(dev_or_null(info, 3, op, "y", n));
  const float* dy = static_cast<const float*>(device_arg(info, 4, op, "dy", n));
  tsm_binding_cuda_check(info.Env(), op, tsm_cuda_unary_backward(int(code), dx, x, y, dy, n));
  return info.Env().Undefined();
}

// cudaBinarySame(op, out, a, b, n)
Napi::Value BinarySame(const Napi::CallbackInfo& info) {
  const char* op = "cudaBinarySame";
  const int64_t code = arg_int(info, 0, op, "op"), n = nonneg(info, 4, op, "n");
  float* out = static_cast<float*>(device_arg(info, 1, op, "out", n));
  const float* a = static_cast<const float*>(device_arg(info, 2, op, "a", n));
  const float* b = static_cast<const float*>(device_arg(info, 3, op, "b", n));
  tsm_binding_cuda_check(info.Env(), op, tsm_cuda_binary_same(int(code), out, a, b, n));
  return info.Env().Undefined();
}

// cudaScalarForward(op, out, x, s, reverse, n)
Napi::Value ScalarForward(const Napi::CallbackInfo& info) {
  const char* op = "cudaScalarForward";
  const int64_t code = arg_int(info, 0, op, "op"), n = nonneg(info, 5, op, "n");
  float* out = static_cast<float*>(device_arg(info, 1, op, "out", n));
  const float* x = static_cast<const float*>(device_arg(info, 2, op, "x", n));
  const float s = float(arg_num(info, 3, op, "s"));
  const bool reverse = arg_bool(info, 4);
  tsm_binding_cuda_check(info.Env(), op, tsm_cuda_scalar_forward(int(code), out, x, s, reverse, n));
  return info.Env().Undefined();
}

// cudaBinaryForward(op, out, a, b, outShape, aStrides, bStrides)
Napi::Value BinaryForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaBinaryForward";
  const int64_t code = arg_int(info, 0, op, "op");
  const std::vector<int64_t> shape = dims_arg(info, 4, op, "outShape");
  const std::vector<int64_t> sa = dims_arg(info, 5, op, "aStrides"), sb = dims_arg(info, 6, op, "bStrides");
  if (sa.size() != shape.size() || sb.size() != shape.size())
    range_error(env, "cudaBinaryForward: outShape, aStrides and bStrides must have the same length");
  const std::vector<int64_t> contiguous_strides = [&] {
    std::vector<int64_t> st(shape.size());
    int64_t acc = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      st[d] = acc;
      acc = acc * (shape[d] ? shape[d] : 1);
    }
    return st;
  }();
  float* out = static_cast<float*>(device_arg(info, 1, op, "out", reach(env, op, 0, shape, contiguous_strides)));
  const float* a = static_cast<const float*>(device_arg(info, 2, op, "a", reach(env, op, 0, shape, sa)));
  const float* b = static_cast<const float*>(device_arg(info, 3, op, "b", reach(env, op, 0, shape, sb)));
  tsm_binding_cuda_check(env, op,
                         tsm_cuda_binary_forward(int(code), out, a, b, int(shape.size()), shape.data(), sa.data(),
                                                 sb.data()));
  return env.Undefined();
}

// cudaStridedCopy(dst, dstOffset, dstStrides | null, src, srcOffset, srcStrides, shape): 4-byte elements
Napi::Value StridedCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaStridedCopy";
  const int64_t doff = nonneg(info, 1, op, "dstOffset"), soff = nonneg(info, 4, op, "srcOffset");
  const std::vector<int64_t> shape = dims_arg(info, 6, op, "shape");
  const std::vector<int64_t> ss = dims_arg(info, 5, op, "srcStrides");
  const bool dst_contiguous = is_null(info, 2);
  std::vector<int64_t> sd;
  if (dst_contiguous) {
    sd.assign(shape.size(), 0);
    int64_t acc = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      sd[d] = acc;
      acc = acc * (shape[d] ? shape[d] : 1);
    }
  } else {
    sd = dims_arg(info, 2, op, "dstStrides");
  }
  if (ss.size() != shape.size() || sd.size() != shape.size())
    range_error(env, "cudaStridedCopy: shape and strides must have the same length");
  void* dst = device_arg(info, 0, op, "dst", reach(env, op, doff, shape, sd));
  const void* src = device_arg(info, 3, op, "src", reach(env, op, soff, shape, ss));
  tsm_binding_cuda_check(env, op,
                         tsm_cuda_strided_copy(dst, doff, dst_contiguous ? nullptr : sd.data(), src, soff, ss.data(),
                                               int(shape.size()), shape.data()));
  return env.Undefined();
}

// cudaFill32(dst, bits, n)
Napi::Value Fill32(const Napi::CallbackInfo& info) {
  const char* op = "cudaFill32";
  const int64_t bits = arg_int(info, 1, op, "bits"), n = nonneg(info, 2, op, "n");
  if (bits < 0 || bits > 0xffffffffLL) range_error(info.Env(), "cudaFill32: bits must be in [0, 2^32)");
  void* dst = device_arg(info, 0, op, "dst", n);
  tsm_binding_cuda_check(info.Env(), op, tsm_cuda_fill32(dst, uint32_t(bits), n));
  return info.Env().Undefined();
}

// cudaCast(dst, src, toInt32, n): float32 -> int32 when toInt32, else int32 -> float32
Napi::Value Cast(const Napi::CallbackInfo& info) {
  const char* op = "cudaCast";
  const int64_t n = nonneg(info, 3, op, "n");
  void* dst = device_arg(info, 0, op, "dst", n);
  const void* src = device_arg(info, 1, op, "src", n);
  const tsm_status s = arg_bool(info, 2)
                           ? tsm_cuda_cast_f32_i32(static_cast<int32_t*>(dst), static_cast<const float*>(src), n)
                           : tsm_cuda_cast_i32_f32(static_cast<float*>(dst), static_cast<const int32_t*>(src), n);
  tsm_binding_cuda_check(info.Env(), op, s);
  return info.Env().Undefined();
}

// cudaCopy(dst, dstByteOffset, src, srcByteOffset, bytes): device to device, queued on the stream
Napi::Value Copy(const Napi::CallbackInfo& info) {
  const char* op = "cudaCopy";
  const int64_t doff = nonneg(info, 1, op, "dstByteOffset"), soff = nonneg(info, 3, op, "srcByteOffset");
  const int64_t bytes = nonneg(info, 4, op, "bytes");
  char* dst = static_cast<char*>(device_arg(info, 0, op, "dst", doff + bytes, 1));
  const char* src = static_cast<const char*>(device_arg(info, 2, op, "src", soff + bytes, 1));
  if (bytes) tsm_binding_cuda_check(info.Env(), op, tsm_cuda_memcpy_d2d(dst + doff, src + soff, size_t(bytes)));
  return info.Env().Undefined();
}

// cudaSum(out, x, outer, dim, inner, divisor)
Napi::Value Sum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaSum";
  const int64_t outer = nonneg(info, 2, op, "outer"), dim = nonneg(info, 3, op, "dim"),
                inner = nonneg(info, 4, op, "inner");
  const float divisor = float(arg_num(info, 5, op, "divisor"));
  float* out = static_cast<float*>(device_arg(info, 0, op, "out", product(env, op, {outer, inner})));
  const float* x = static_cast<const float*>(device_arg(info, 1, op, "x", product(env, op, {outer, dim, inner})));
  tsm_binding_cuda_check(env, op, tsm_cuda_sum(out, x, outer, dim, inner, divisor));
  return env.Undefined();
}

// cudaArgReduce(values | null, indices, x, outer, dim, inner, isMax)
Napi::Value ArgReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaArgReduce";
  const int64_t outer = nonneg(info, 3, op, "outer"), dim = nonneg(info, 4, op, "dim"),
                inner = nonneg(info, 5, op, "inner");
  const int64_t no = product(env, op, {outer, inner});
  float* values = static_cast<float*>(dev_or_null(info, 0, op, "values", no));
  int32_t* indices = static_cast<int32_t*>(device_arg(info, 1, op, "indices", no));
  const float* x = static_cast<const float*>(device_arg(info, 2, op, "x", product(env, op, {outer, dim, inner})));
  tsm_binding_cuda_check(env, op, tsm_cuda_arg_reduce(values, indices, x, outer, dim, inner, arg_bool(info, 6)));
  return env.Undefined();
}

// cudaArgReduceBackward(dx, dy, indices, outer, dim, inner)
Napi::Value ArgReduceBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaArgReduceBackward";
  const int64_t outer = nonneg(info, 3, op, "outer"), dim = nonneg(info, 4, op, "dim"),
                inner = nonneg(info, 5, op, "inner");
  const int64_t no = product(env, op, {outer, inner});
  float* dx = static_cast<float*>(device_arg(info, 0, op, "dx", product(env, op, {outer, dim, inner})));
  const float* dy = static_cast<const float*>(device_arg(info, 1, op, "dy", no));
  const int32_t* idx = static_cast<const int32_t*>(device_arg(info, 2, op, "indices", no));
  tsm_binding_cuda_check(env, op, tsm_cuda_arg_reduce_backward(dx, dy, idx, outer, dim, inner));
  return env.Undefined();
}

// cudaSoftmaxForward(y, x, outer, dim, inner, log)
Napi::Value SoftmaxForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaSoftmaxForward";
  const int64_t outer = nonneg(info, 2, op, "outer"), dim = nonneg(info, 3, op, "dim"),
                inner = nonneg(info, 4, op, "inner");
  const int64_t n = product(env, op, {outer, dim, inner});
  float* y = static_cast<float*>(device_arg(info, 0, op, "y", n));
  const float* x = static_cast<const float*>(device_arg(info, 1, op, "x", n));
  tsm_binding_cuda_check(env, op, tsm_cuda_softmax_forward(y, x, outer, dim, inner, arg_bool(info, 5)));
  return env.Undefined();
}

// cudaSoftmaxBackward(dx, y, dy, outer, dim, inner, log)
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaSoftmaxBackward";
  const int64_t outer = nonneg(info, 3, op, "outer"), dim = nonneg(info, 4, op, "dim"),
                inner = nonneg(info, 5, op, "inner");
  const int64_t n = product(env, op, {outer, dim, inner});
  float* dx = static_cast<float*>(device_arg(info, 0, op, "dx", n));
  const float* y = static_cast<const float*>(device_arg(info, 1, op, "y", n));
  const float* dy = static_cast<const float*>(device_arg(info, 2, op, "dy", n));
  tsm_binding_cuda_check(env, op, tsm_cuda_softmax_backward(dx, y, dy, outer, dim, inner, arg_bool(info, 6)));
  return env.Undefined();
}

// A list of device buffers, each holding sizes[t] float32 elements.
std::vector<float*> handle_list(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
                                const std::vector<int64_t>& sizes) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsArray()) type_error(env, std::string(op) + ": " + name + " must be an array");
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() != sizes.size())
    range_error(env, std::string(op) + ": " + name + " has " + std::to_string(a.Length()) + " entries, sizes " +
                         std::to_string(sizes.size()));
  std::vector<float*> out(sizes.size());
  for (uint32_t t = 0; t < a.Length(); ++t) {
    size_t bytes = 0;
    const std::string what = std::string(name) + "[" + std::to_string(t) + "]";
    out[t] = static_cast<float*>(tsm_binding_device_ptr(env, a.Get(t), op, what.c_str(), &bytes));
    if ((unsigned __int128)sizes[t] * 4 > bytes)
      range_error(env, std::string(op) + ": " + what + " holds " + std::to_string(bytes) + " bytes, needs " +
                           std::to_string(sizes[t] * 4));
  }
  return out;
}

std::vector<int64_t> sizes_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsArray()) type_error(env, std::string(op) + ": sizes must be an array");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t t = 0; t < a.Length(); ++t) {
    Napi::Value v = a.Get(t);
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
      range_error(env, std::string(op) + ": sizes must hold non-negative integers");
    out[t] = int64_t(d);
  }
  return out;
}

// cudaSgdStep(params, grads, momentumBufs | null, sizes, lr, momentum, dampening, weightDecay,
//             nesterov, maximize, firstStep)
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaSgdStep";
  const std::vector<int64_t> sizes = sizes_arg(info, 3, op);
  std::vector<float*> p = handle_list(info, 0, op, "params", sizes);
  std::vector<float*> g = handle_list(info, 1, op, "grads", sizes);
  std::vector<float*> buf;
  if (!is_null(info, 2)) buf = handle_list(info, 2, op, "momentumBufs", sizes);
  const double lr = arg_num(info, 4, op, "lr"), mom = arg_num(info, 5, op, "momentum"),
               damp = arg_num(info, 6, op, "dampening"), wd = arg_num(info, 7, op, "weightDecay");
  std::vector<const float*> gc(g.begin(), g.end());
  tsm_binding_cuda_check(env, op,
                         tsm_cuda_sgd_step(p.data(), buf.empty() ? nullptr : buf.data(), gc.data(), sizes.data(),
                                           int64_t(sizes.size()), lr, mom, damp, wd, arg_bool(info, 8),
                                           arg_bool(info, 9), arg_bool(info, 10)));
  return env.Undefined();
}

// cudaAdamStep(params, grads, expAvg, expAvgSq, maxExpAvgSq | null, sizes, lr, beta1, beta2, eps,
//              weightDecay, step, amsgrad, decoupled, maximize)
Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaAdamStep";
  const std::vector<int64_t> sizes = sizes_arg(info, 5, op);
  std::vector<float*> p = handle_list(info, 0, op, "params", sizes);
  std::vector<float*> g = handle_list(info, 1, op, "grads", sizes);
  std::vector<float*> m = handle_list(info, 2, op, "expAvg", sizes);
  std::vector<float*> v = handle_list(info, 3, op, "expAvgSq", sizes);
  std::vector<float*> vmax;
  if (!is_null(info, 4)) vmax = handle_list(info, 4, op, "maxExpAvgSq", sizes);
  const double lr = arg_num(info, 6, op, "lr"), b1 = arg_num(info, 7, op, "beta1"), b2 = arg_num(info, 8, op, "beta2"),
               eps = arg_num(info, 9, op, "eps"), wd = arg_num(info, 10, op, "weightDecay");
  const int64_t step = arg_int(info, 11, op, "step");
  std::vector<const float*> gc(g.begin(), g.end());
  tsm_binding_cuda_check(env, op,
                         tsm_cuda_adam_step(p.data(), m.data(), v.data(), vmax.empty() ? nullptr : vmax.data(),
                                            gc.data(), sizes.data(), int64_t(sizes.size()), lr, b1, b2, eps, wd,
                                            step, arg_bool(info, 12), arg_bool(info, 13), arg_bool(info, 14)));
  return env.Undefined();
}

}  // namespace

void register_ops_cuda_tensor(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaUnaryForward", Napi::Function::New(env, UnaryForward, "cudaUnaryForward"));
  exports.Set("cudaUnaryBackward", Napi::Function::New(env, UnaryBackward, "cudaUnaryBackward"));
  exports.Set("cudaBinarySame", Napi::Function::New(env, BinarySame, "cudaBinarySame"));
  exports.Set("cudaScalarForward", Napi::Function::New(env, ScalarForward, "cudaScalarForward"));
  exports.Set("cudaBinaryForward", Napi::Function::New(env, BinaryForward, "cudaBinaryForward"));
  exports.Set("cudaStridedCopy", Napi::Function::New(env, StridedCopy, "cudaStridedCopy"));
  exports.Set("cudaFill32", Napi::Function::New(env, Fill32, "cudaFill32"));
  exports.Set("cudaCast", Napi::Function::New(env, Cast, "cudaCast"));
  exports.Set("cudaCopy", Napi::Function::New(env, Copy, "cudaCopy"));
  exports.Set("cudaSum", Napi::Function::New(env, Sum, "cudaSum"));
  exports.Set("cudaArgReduce", Napi::Function::New(env, ArgReduce, "cudaArgReduce"));
  exports.Set("cudaArgReduceBackward", Napi::Function::New(env, ArgReduceBackward, "cudaArgReduceBackward"));
  exports.Set("cudaSoftmaxForward", Napi::Function::New(env, SoftmaxForward, "cudaSoftmaxForward"));
  exports.Set("cudaSoftmaxBackward", Napi::Function::New(env, SoftmaxBackward, "cudaSoftmaxBackward"));
  exports.Set("cudaSgdStep", Napi::Function::New(env, SgdStep, "cudaSgdStep"));
  exports.Set("cudaAdamStep", Napi::Function::New(env, AdamStep, "cudaAdamStep"));
}
