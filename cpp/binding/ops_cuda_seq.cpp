// The sequence-model kernels of CUDA tensors (section "cuda sequence kernels" of tensorsmith.h) on
// device buffer handles: the LSTM forward/backward, gather, index_select, where. Thin, as
// ops_cuda_nn.cpp: lib/ validates and explains; here every handle must be live and every access
// must fit its buffer, then the C ABI is called. CUDA failures come back as TsmCudaError, bad
// arguments as TypeError/RangeError naming the entry point.
#include <string>
#include <vector>

#include "binding.h"

using namespace tsm_binding;

void tsm_binding_cuda_check(Napi::Env env, const char* call, tsm_status status);

namespace {

constexpr size_t kMaxDims = 8;

float* dev_or_null(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int64_t elems) {
  return is_null(info, i) ? nullptr : static_cast<float*>(device_arg(info, i, op, name, elems));
}

int64_t size_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int64_t min) {
  const int64_t v = arg_int(info, i, op, name);
  if (v < min)
    range_error(info.Env(), std::string(op) + ": " + name + " must be >= " + std::to_string(min) + ", got " +
                                std::to_string(v));
  if (v > (int64_t(1) << 40)) range_error(info.Env(), std::string(op) + ": " + name + " is too large");
  return v;
}

int64_t mul(Napi::Env env, const char* op, std::initializer_list<int64_t> xs) {
  unsigned __int128 p = 1;
  for (int64_t x : xs) {
    p *= (unsigned __int128)x;
    if (p > ((unsigned __int128)1 << 53)) range_error(env, std::string(op) + ": sizes are too large");
  }
  return int64_t(p);
}

// A JS array of at most kMaxDims non-negative integers.
std::vector<int64_t> dims_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (i >= info.Length() || !info[i].IsArray())
    type_error(info.Env(), std::string(op) + ": " + name + " must be an array of integers");
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() > kMaxDims)
    range_error(info.Env(), std::string(op) + ": " + name + " has " + std::to_string(a.Length()) + " dims, at most 8");
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a.Get(k);
    if (!v.IsNumber()) type_error(info.Env(), std::string(op) + ": " + name + " must hold numbers");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d != std::floor(d) || d > double(int64_t(1) << 40))
      range_error(info.Env(), std::string(op) + ": " + name + " must hold non-negative integers");
    out[k] = int64_t(d);
  }
  return out;
}

int64_t count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Elements reached by a strided view (0 for an empty shape).
int64_t reach(Napi::Env env, const char* op, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  unsigned __int128 end = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return 0;
    end += (unsigned __int128)(shape[d] - 1) * (unsigned __int128)strides[d];
  }
  if (end > ((unsigned __int128)1 << 53)) range_error(env, std::string(op) + ": strides reach too far");
  return int64_t(end);
}

// cudaLstmForward(packed, gates, cs, x, h0|null, c0|null, wIh, wHh, bIh|null, bHh|null, T, B, I, H, batchFirst)
//   packed (T*B + 2B, H): y rows, then h_n, then c_n.
Napi::Value LstmForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaLstmForward";
  const int64_t T = size_arg(info, 10, op, "T", 0), B = size_arg(info, 11, op, "B", 0);
  const int64_t I = size_arg(info, 12, op, "I", 0), H = size_arg(info, 13, op, "H", 1);
  const bool bf = arg_bool(info, 14);
  const int64_t TBH = mul(env, op, {T, B, H}), BH = mul(env, op, {B, H}), G = mul(env, op, {4, H});
  float* packed = static_cast<float*>(device_arg(info, 0, op, "packed", TBH + 2 * BH));
  float* gates = static_cast<float*>(device_arg(info, 1, op, "gates", mul(env, op, {T, B, G})));
  float* cs = static_cast<float*>(device_arg(info, 2, op, "cs", TBH));
  const float* x = static_cast<const float*>(device_arg(info, 3, op, "x", mul(env, op, {T, B, I})));
  const float* h0 = dev_or_null(info, 4, op, "h0", BH);
  const float* c0 = dev_or_null(info, 5, op, "c0", BH);
  const float* wih = static_cast<const float*>(device_arg(info, 6, op, "wIh", mul(env, op, {G, I})));
  const float* whh = static_cast<const float*>(device_arg(info, 7, op, "wHh", mul(env, op, {G, H})));
  const float* bih = dev_or_null(info, 8, op, "bIh", G);
  const float* bhh = dev_or_null(info, 9, op, "bHh", G);
  tsm_binding_cuda_check(env, op, tsm_cuda_lstm_forward(packed, packed + TBH, packed + TBH + BH, gates, cs, x, h0, c0,
                                                        wih, whh, bih, bhh, T, B, I, H, bf ? 1 : 0));
  return env.Undefined();
}

// cudaLstmBackward(dx|null, dh0|null, dc0|null, dwIh|null, dwHh|null, dbIh|null, dbHh|null, dPacked, x, h0|null,
//                  c0|null, wIh, wHh, packed, gates, cs, T, B, I, H, batchFirst)
//   dPacked, packed: (T*B + 2B, H) as in the forward (dy, dh_n, dc_n / y, h_n, c_n).
Napi::Value LstmBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaLstmBackward";
  const int64_t T = size_arg(info, 16, op, "T", 0), B = size_arg(info, 17, op, "B", 0);
  const int64_t I = size_arg(info, 18, op, "I", 0), H = size_arg(info, 19, op, "H", 1);
  const bool bf = arg_bool(info, 20);
  const int64_t TBH = mul(env, op, {T, B, H}), BH = mul(env, op, {B, H}), G = mul(env, op, {4, H});
  const int64_t TBI = mul(env, op, {T, B, I});
  float* dx = dev_or_null(info, 0, op, "dx", TBI);
  float* dh0 = dev_or_null(info, 1, op, "dh0", BH);
  float* dc0 = dev_or_null(info, 2, op, "dc0", BH);
  float* dwih = dev_or_null(info, 3, op, "dwIh", mul(env, op, {G, I}));
  float* dwhh = dev_or_null(info, 4, op, "dwHh", mul(env, op, {G, H}));
  float* dbih = dev_or_null(info, 5, op, "dbIh", G);
  float* dbhh = dev_or_null(info, 6, op, "dbHh", G);
  const float* dp = static_cast<const float*>(device_arg(info, 7, op, "dPacked", TBH + 2 * BH));
  const float* x = static_cast<const float*>(device_arg(info, 8, op, "x", TBI));
  const float* h0 = dev_or_null(info, 9, op, "h0", BH);
  const float* c0 = dev_or_null(info, 10, op, "c0", BH);
  const float* wih = static_cast<const float*>(device_arg(info, 11, op, "wIh", mul(env, op, {G, I})));
  const float* whh = static_cast<const float*>(device_arg(info, 12, op, "wHh", mul(env, op, {G, H})));
  const float* packed = static_cast<const float*>(device_arg(info, 13, op, "packed", TBH + 2 * BH));
  const float* gates = static_cast<const float*>(device_arg(info, 14, op, "gates", mul(env, op, {T, B, G})));
  const float* cs = static_cast<const float*>(device_arg(info, 15, op, "cs", TBH));
  tsm_binding_cuda_check(env, op, tsm_cuda_lstm_backward(dx, dh0, dc0, dwih, dwhh, dbih, dbhh, dp, dp + TBH,
                                                         dp + TBH + BH, x, h0, c0, wih, whh, packed, gates, cs, T, B, I,
                                                         H, bf ? 1 : 0));
  return env.Undefined();
}

// cudaGather(out, x, index, xShape, indexShape, dim)
Napi::Value Gather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaGather";
  const std::vector<int64_t> xs = dims_arg(info, 3, op, "xShape"), is = dims_arg(info, 4, op, "indexShape");
  const int64_t dim = arg_int(info, 5, op, "dim");
  if (xs.size() != is.size() || xs.empty()) range_error(env, "cudaGather: xShape and indexShape must have the same rank >= 1");
  if (dim < 0 || dim >= int64_t(xs.size())) range_error(env, "cudaGather: dim out of range");
  void* out = device_arg(info, 0, op, "out", count(is));
  const void* x = device_arg(info, 1, op, "x", count(xs));
  const int32_t* index = static_cast<const int32_t*>(device_arg(info, 2, op, "index", count(is)));
  tsm_binding_cuda_check(env, op, tsm_cuda_gather(out, x, index, int(xs.size()), xs.data(), is.data(), int(dim)));
  return env.Undefined();
}

// cudaGatherBackward(dx, dy, index, xShape, indexShape, dim)
Napi::Value GatherBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaGatherBackward";
  const std::vector<int64_t> xs = dims_arg(info, 3, op, "xShape"), is = dims_arg(info, 4, op, "indexShape");
  const int64_t dim = arg_int(info, 5, op, "dim");
  if (xs.size() != is.size() || xs.empty())
    range_error(env, "cudaGatherBackward: xShape and indexShape must have the same rank >= 1");
  if (dim < 0 || dim >= int64_t(xs.size())) range_error(env, "cudaGatherBackward: dim out of range");
  float* dx = static_cast<float*>(device_arg(info, 0, op, "dx", count(xs)));
  const float* dy = static_cast<const float*>(device_arg(info, 1, op, "dy", count(is)));
  const int32_t* index = static_cast<const int32_t*>(device_arg(info, 2, op, "index", count(is)));
  tsm_binding_cuda_check(env, op,
                         tsm_cuda_gather_backward(dx, dy, index, int(xs.size()), xs.data(), is.data(), int(dim)));
  return env.Undefined();
}

// cudaIndexSelect(out, x, index, outer, n, k, inner)
Napi::Value IndexSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaIndexSelect";
  const int64_t outer = size_arg(info, 3, op, "outer", 0), n = size_arg(info, 4, op, "n", 0);
  const int64_t k = size_arg(info, 5, op, "k", 0), inner = size_arg(info, 6, op, "inner", 0);
  void* out = device_arg(info, 0, op, "out", mul(env, op, {outer, k, inner}));
  const void* x = device_arg(info, 1, op, "x", mul(env, op, {outer, n, inner}));
  const int32_t* index = static_cast<const int32_t*>(device_arg(info, 2, op, "index", k));
  tsm_binding_cuda_check(env, op, tsm_cuda_index_select(out, x, index, outer, n, k, inner));
  return env.Undefined();
}

// cudaIndexSelectBackward(dx, dy, rowStart, positions, outer, n, k, inner)
Napi::Value IndexSelectBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaIndexSelectBackward";
  const int64_t outer = size_arg(info, 4, op, "outer", 0), n = size_arg(info, 5, op, "n", 0);
  const int64_t k = size_arg(info, 6, op, "k", 0), inner = size_arg(info, 7, op, "inner", 0);
  float* dx = static_cast<float*>(device_arg(info, 0, op, "dx", mul(env, op, {outer, n, inner})));
  const float* dy = static_cast<const float*>(device_arg(info, 1, op, "dy", mul(env, op, {outer, k, inner})));
  const int32_t* rs = static_cast<const int32_t*>(device_arg(info, 2, op, "rowStart", n + 1));
  const int32_t* pos = static_cast<const int32_t*>(device_arg(info, 3, op, "positions", k));
  // The row starts are device memory and are not read here: lib/ builds them (0 .. k, increasing).
  tsm_binding_cuda_check(env, op, tsm_cuda_index_select_backward(dx, dy, rs, pos, outer, n, k, inner));
  return env.Undefined();
}

// cudaWhere(out, cond, condIsInt, a, b, shape, condStrides, aStrides, bStrides)
Napi::Value Where(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaWhere";
  const std::vector<int64_t> shape = dims_arg(info, 5, op, "shape");
  const std::vector<int64_t> cst = dims_arg(info, 6, op, "condStrides"), ast = dims_arg(info, 7, op, "aStrides"),
                             bst = dims_arg(info, 8, op, "bStrides");
  if (cst.size() != shape.size() || ast.size() != shape.size() || bst.size() != shape.size())
    range_error(env, "cudaWhere: shape and the strides must have the same length");
  void* out = device_arg(info, 0, op, "out", count(shape));
  const void* cond = device_arg(info, 1, op, "cond", reach(env, op, shape, cst));
  const bool is_int = arg_bool(info, 2);
  const void* a = device_arg(info, 3, op, "a", reach(env, op, shape, ast));
  const void* b = device_arg(info, 4, op, "b", reach(env, op, shape, bst));
  tsm_binding_cuda_check(env, op, tsm_cuda_where(out, cond, is_int ? 1 : 0, a, b, int(shape.size()), shape.data(),
                                                 cst.data(), ast.data(), bst.data()));
  return env.Undefined();
}

}  // namespace

void register_ops_cuda_seq(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaLstmForward", Napi::Function::New(env, LstmForward, "cudaLstmForward"));
  exports.Set("cudaLstmBackward", Napi::Function::New(env, LstmBackward, "cudaLstmBackward"));
  exports.Set("cudaGather", Napi::Function::New(env, Gather, "cudaGather"));
  exports.Set("cudaGatherBackward", Napi::Function::New(env, GatherBackward, "cudaGatherBackward"));
  exports.Set("cudaIndexSelect", Napi::Function::New(env, IndexSelect, "cudaIndexSelect"));
  exports.Set("cudaIndexSelectBackward", Napi::Function::New(env, IndexSelectBackward, "cudaIndexSelectBackward"));
  exports.Set("cudaWhere", Napi::Function::New(env, Where, "cudaWhere"));
}
