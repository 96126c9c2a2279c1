// Mixed precision on device buffer handles (section "mixed precision (cuda)" of tensorsmith.h):
//   cudaCastFloat(dst, dstDtype, src, srcDtype, n)           dtypes: 0 float32, 1 bfloat16, 2 float16
//   cudaAmpUnscale(grads, sizes, invScale, foundInf)          float32 grads, foundInf one float
// Thin, like the rest of the binding: lib/ validates and explains; here every handle must be live
// and every access must fit its buffer, then the C ABI is called.
#include <cmath>
#include <vector>

#include "binding.h"

using namespace tsm_binding;

void tsm_binding_cuda_check(Napi::Env env, const char* call, tsm_status status);

namespace {

size_t dtype_size(Napi::Env env, const char* op, const char* name, int64_t d) {
  if (d == TSM_CUDA_F32) return 4;
  if (d == TSM_CUDA_BF16 || d == TSM_CUDA_F16) return 2;
  range_error(env, std::string(op) + ": " + name + " must be 0 (float32), 1 (bfloat16) or 2 (float16), got " +
                       std::to_string(d));
}


Napi::Value CastFloat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaCastFloat";
  const int64_t n = arg_int(info, 4, op, "n");
  if (n < 0) range_error(env, std::string(op) + ": n must be >= 0, got " + std::to_string(n));
  const int64_t dd = arg_int(info, 1, op, "dstDtype"), sd = arg_int(info, 3, op, "srcDtype");
  const size_t dsz = dtype_size(env, op, "dstDtype", dd), ssz = dtype_size(env, op, "srcDtype", sd);
  void* dst = device_arg(info, 0, op, "dst", n, dsz);
  const void* src = device_arg(info, 2, op, "src", n, ssz);
  tsm_binding_cuda_check(env, op, tsm_cuda_cast_float(dst, tsm_cuda_dtype(dd), src, tsm_cuda_dtype(sd), n));
  return env.Undefined();
}

Napi::Value AmpUnscale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaAmpUnscale";
  if (info.Length() < 4 || !info[0].IsArray() || !info[1].IsArray())
    type_error(env, std::string(op) + ": expected (grads: handle[], sizes: number[], invScale, foundInf)");
  Napi::Array hs = info[0].As<Napi::Array>(), ns = info[1].As<Napi::Array>();
  if (hs.Length() != ns.Length())
    range_error(env, std::string(op) + ": grads has " + std::to_string(hs.Length()) + " entries, sizes " +
                         std::to_string(ns.Length()));
  std::vector<int64_t> sizes(ns.Length());
  std::vector<float*> grads(ns.Length());
  for (uint32_t t = 0; t < ns.Length(); ++t) {
    Napi::Value v = ns.Get(t);
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
      range_error(env, std::string(op) + ": sizes must hold non-negative integers");
    sizes[t] = int64_t(d);
    size_t bytes = 0;
    const std::string what = "grads[" + std::to_string(t) + "]";
    grads[t] = static_cast<float*>(tsm_binding_device_ptr(env, hs.Get(t), op, what.c_str(), &bytes));
    if ((unsigned __int128)sizes[t] * 4 > bytes)
      range_error(env, std::string(op) + ": " + what + " holds " + std::to_string(bytes) + " bytes, needs " +
                           std::to_string(sizes[t] * 4));
  }
  const double inv = arg_num(info, 2, op, "invScale");
  float* found = static_cast<float*>(device_arg(info, 3, op, "foundInf", 1));
  tsm_binding_cuda_check(env, op, tsm_cuda_amp_unscale(grads.data(), sizes.data(), int64_t(sizes.size()), float(inv), found));
  return env.Undefined();
}

}  // namespace

void register_ops_cuda_amp(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaCastFloat", Napi::Function::New(env, CastFloat, "cudaCastFloat"));
  exports.Set("cudaAmpUnscale", Napi::Function::New(env, AmpUnscale, "cudaAmpUnscale"));
}
