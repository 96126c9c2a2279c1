// Helpers for the N-API binding. The binding is thin: the TypeScript layer validates arguments and
// writes the helpful messages; these checks are the last line of defence, so that no call from
// JavaScript, however wrong, can make native code read or write out of bounds.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "tensorsmith.h"

// The device pointer and size in bytes of a device buffer handle (cpp/binding/ops_cuda.cpp); throws a
// JS TypeError naming op and name for anything else.
void* tsm_binding_device_ptr(Napi::Env env, Napi::Value v, const char* op, const char* name, size_t* bytes);

namespace tsm_binding {

[[noreturn]] inline void type_error(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}
[[noreturn]] inline void range_error(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

// Throws a JS Error carrying the kernel's message when a C ABI call fails.
inline void check(Napi::Env env, tsm_status status) {
  if (status == TSM_OK) return;
  std::string msg = tsm_last_error();
  if (msg.empty()) msg = tsm_status_string(status);
  if (status == TSM_ERR_INVALID_ARGUMENT) throw Napi::RangeError::New(env, msg);
  throw Napi::Error::New(env, msg);
}

// The argument checks below make one N-API call per argument (napi_get_value_double fails on a
// non-number, napi_get_typedarray_info on anything but a typed array): a tiny op's native call
// passes 3-6 arguments, and each extra call (type tests, node-addon-api's wrappers querying the
// same typed array again) cost ~20-40 ns on the development machines.
inline double number_or_throw(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  double v = 0;
  if (i >= info.Length() || napi_get_value_double(info.Env(), info[i], &v) != napi_ok)
    type_error(info.Env(), std::string(op) + ": " + name + " must be a number");
  return v;
}

inline int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  const double v = number_or_throw(info, i, op, name);
  if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 9007199254740991.0)
    range_error(info.Env(), std::string(op) + ": " + name + " must be an integer");
  return static_cast<int64_t>(v);
}

inline double arg_num(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  return number_or_throw(info, i, op, name);
}

inline bool arg_bool(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && info[i].ToBoolean().Value();
}

template <typename T, napi_typedarray_type Kind>
inline T* typed(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
                const char* type_name, size_t* length) {
  napi_typedarray_type kind = napi_int8_array;
  void* data = nullptr;
  size_t n = 0;
  // data comes adjusted by the view's byte offset; a detached buffer has no data and length 0
  // (callers check the length they need).
  if (i >= info.Length() ||
      napi_get_typedarray_info(info.Env(), info[i], &kind, &n, &data, nullptr, nullptr) != napi_ok || kind != Kind)
    type_error(info.Env(), std::string(op) + ": " + name + " must be a " + type_name);
  *length = n;
  return n ? static_cast<T*>(data) : nullptr;
}

inline float* arg_f32(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
                      size_t* length) {
  return typed<float, napi_float32_array>(info, i, op, name, "Float32Array", length);
}

inline int32_t* arg_i32(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
                        size_t* length) {
  return typed<int32_t, napi_int32_array>(info, i, op, name, "Int32Array", length);
}

inline void need(Napi::Env env, const char* op, const char* name, size_t have, int64_t want) {
  if (want < 0 || static_cast<uint64_t>(want) > have)
    range_error(env, std::string(op) + ": " + name + " has " + std::to_string(have) +
                         " elements, needs " + std::to_string(want));
}

// Whether argument i is absent, null or undefined (an optional operand).
inline bool is_null(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsNull() || info[i].IsUndefined();
}

// The device pointer of handle argument i after checking that `elems` elements of `esz` bytes fit
// its buffer (a negative count never fits).
inline void* device_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name,
                        int64_t elems, size_t esz = 4) {
  if (i >= info.Length()) type_error(info.Env(), std::string(op) + ": " + name + " must be a device buffer handle");
  size_t bytes = 0;
  void* p = tsm_binding_device_ptr(info.Env(), info[i], op, name, &bytes);
  const unsigned __int128 need = elems < 0 ? ~(unsigned __int128)0 : (unsigned __int128)elems * esz;
  if (need > bytes)
    range_error(info.Env(), std::string(op) + ": " + name + " holds " + std::to_string(bytes) + " bytes, needs " +
                                (elems < 0 ? std::string("more") : std::to_string((unsigned long long)need)));
  return p;
}

// Elements a row-major matrix of `rows` x `cols` with leading dimension ld spans.
inline int64_t span(int64_t rows, int64_t cols, int64_t ld) {
  if (rows <= 0 || cols <= 0) return 0;
  return (rows - 1) * ld + cols;
}

}  // namespace tsm_binding
