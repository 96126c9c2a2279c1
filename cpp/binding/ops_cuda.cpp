// The CUDA part of the addon: device buffers as opaque handles, copies, GEMMs, stream and allocator
// control. Thin, like the rest of the binding: lib/cuda.ts validates and explains; these checks are
// the last line of defence (a handle must be live, every matrix must fit its buffer).
//
// Errors from the C ABI are thrown as an Error whose name is 'TsmCudaError' and whose `call` is the
// binding function's name (the binding cannot construct the TypeScript class; lib/cuda.ts turns it
// into a real TsmCudaError). Bad arguments detected here are TypeError/RangeError as elsewhere.
#include <mutex>
#include <unordered_set>

#include "binding.h"

using namespace tsm_binding;

namespace {

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
};

// Live handles, so that a stale or foreign external can never be taken for device memory.
std::mutex g_live_mutex;
std::unordered_set<DeviceBuffer*> g_live;

[[noreturn]] void throw_cuda(Napi::Env env, const char* call, tsm_status status) {
  std::string msg = tsm_last_error();
  if (msg.empty()) msg = tsm_status_string(status);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("name", Napi::String::New(env, "TsmCudaError"));
  e.Set("call", Napi::String::New(env, call));
  e.Set("status", Napi::Number::New(env, int(status)));
  throw e;
}

void cuda_check(Napi::Env env, const char* call, tsm_status status) {
  if (status == TSM_OK) return;
  if (status == TSM_ERR_INVALID_ARGUMENT) {
    std::string msg = tsm_last_error();
    throw Napi::RangeError::New(env, std::string(call) + ": " + msg);
  }
  throw_cuda(env, call, status);
}

void finalize_buffer(Napi::Env, DeviceBuffer* b) {
  {
    std::lock_guard<std::mutex> lock(g_live_mutex);
    g_live.erase(b);
  }
  if (b->ptr) tsm_cuda_free(b->ptr);  // returns the block to the cache: no CUDA call, safe at exit
  delete b;
}

DeviceBuffer* value_buffer(Napi::Env env, Napi::Value v, const char* op, const char* name) {
  if (!v.IsExternal()) type_error(env, std::string(op) + ": " + name + " must be a device buffer handle");
  DeviceBuffer* b = v.As<Napi::External<DeviceBuffer>>().Data();
  {
    std::lock_guard<std::mutex> lock(g_live_mutex);
    if (!g_live.count(b)) type_error(env, std::string(op) + ": " + name + " is not a device buffer handle");
  }
  return b;
}

DeviceBuffer* arg_buffer(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (i >= info.Length()) type_error(info.Env(), std::string(op) + ": " + name + " must be a device buffer handle");
  return value_buffer(info.Env(), info[i], op, name);
}

DeviceBuffer* arg_buffer_or_null(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  return arg_buffer(info, i, op, name);
}

// Bytes and data of any typed array (or a DataView/Buffer) argument.
void* arg_bytes(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, size_t* bytes) {
  if (i >= info.Length() || !info[i].IsTypedArray())
    type_error(info.Env(), std::string(op) + ": " + name + " must be a typed array");
  Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
  *bytes = ta.ByteLength();
  if (*bytes == 0) return nullptr;
  return static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
}

void need_bytes(Napi::Env env, const char* op, const char* name, const DeviceBuffer* b, int64_t elems,
                size_t esz) {
  if (elems < 0 || uint64_t(elems) * esz > b->bytes)
    range_error(env, std::string(op) + ": " + name + " holds " + std::to_string(b->bytes) + " bytes, needs " +
                         std::to_string(uint64_t(elems) * esz));
}

size_t type_size(int type) { return type == TSM_CUDA_GEMM_F32 || type == TSM_CUDA_GEMM_TF32 ? 4 : 2; }
size_t dtype_size(int dtype) { return dtype == TSM_CUDA_F32 ? 4 : 2; }

// cudaMalloc(bytes) -> handle
Napi::Value CudaMalloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t bytes = arg_int(info, 0, "cudaMalloc", "bytes");
  if (bytes < 0) range_error(env, "cudaMalloc: bytes must be >= 0");
  void* p = nullptr;
  cuda_check(env, "cudaMalloc", tsm_cuda_malloc(&p, size_t(bytes)));
  DeviceBuffer* b = new DeviceBuffer{p, size_t(bytes)};
  {
    std::lock_guard<std::mutex> lock(g_live_mutex);
    g_live.insert(b);
  }
  return Napi::External<DeviceBuffer>::New(env, b, finalize_buffer);
}

// cudaFree(handle): returns the memory now (the handle stays valid as an object, but empty)
Napi::Value CudaFree(const Napi::CallbackInfo& info) {
  DeviceBuffer* b = arg_buffer(info, 0, "cudaFree", "buffer");
  void* p = b->ptr;
  b->ptr = nullptr;
  b->bytes = 0;
  if (p) cuda_check(info.Env(), "cudaFree", tsm_cuda_free(p));
  return info.Env().Undefined();
}

Napi::Value CudaBufferBytes(const Napi::CallbackInfo& info) {
  DeviceBuffer* b = arg_buffer(info, 0, "cudaBufferBytes", "buffer");
  return Napi::Number::New(info.Env(), double(b->bytes));
}

// cudaUpload(handle, typedArray, byteOffset = 0)
Napi::Value CudaUpload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceBuffer* b = arg_buffer(info, 0, "cudaUpload", "buffer");
  size_t bytes = 0;
  void* src = arg_bytes(info, 1, "cudaUpload", "data", &bytes);
  const int64_t off = info.Length() > 2 && !info[2].IsUndefined() ? arg_int(info, 2, "cudaUpload", "byteOffset") : 0;
  if (off < 0 || uint64_t(off) + bytes > b->bytes)
    range_error(env, "cudaUpload: " + std::to_string(bytes) + " bytes at offset " + std::to_string(off) +
                         " do not fit a buffer of " + std::to_string(b->bytes) + " bytes");
  if (bytes) cuda_check(env, "cudaUpload", tsm_cuda_memcpy_h2d(static_cast<char*>(b->ptr) + off, src, bytes));
  return env.Undefined();
}

// cudaDownload(handle, typedArray, byteOffset = 0)
Napi::Value CudaDownload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceBuffer* b = arg_buffer(info, 0, "cudaDownload", "buffer");
  size_t bytes = 0;
  void* dst = arg_bytes(info, 1, "cudaDownload", "data", &bytes);
  const int64_t off = info.Length() > 2 && !info[2].IsUndefined() ? arg_int(info, 2, "cudaDownload", "byteOffset") : 0;
  if (off < 0 || uint64_t(off) + bytes > b->bytes)
    range_error(env, "cudaDownload: " + std::to_string(bytes) + " bytes at offset " + std::to_string(off) +
                         " do not fit a buffer of " + std::to_string(b->bytes) + " bytes");
  if (bytes) cuda_check(env, "cudaDownload", tsm_cuda_memcpy_d2h(dst, static_cast<char*>(b->ptr) + off, bytes));
  return env.Undefined();
}

// cudaMemset(handle, byteValue)
Napi::Value CudaMemset(const Napi::CallbackInfo& info) {
  DeviceBuffer* b = arg_buffer(info, 0, "cudaMemset", "buffer");
  const int64_t v = arg_int(info, 1, "cudaMemset", "value");
  if (v < 0 || v > 255) range_error(info.Env(), "cudaMemset: value must be a byte (0..255)");
  cuda_check(info.Env(), "cudaMemset", tsm_cuda_memset(b->ptr, int(v), b->bytes));
  return info.Env().Undefined();
}

// cudaGemmEx(type, transA, transB, batch, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c,
//          cDtype, ldc, strideC, bias | null, act)   -- every size in elements
Napi::Value CudaGemmEx(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaGemmEx";
  const int64_t type = arg_int(info, 0, op, "type");
  const bool ta = arg_bool(info, 1), tb = arg_bool(info, 2);
  const int64_t batch = arg_int(info, 3, op, "batch"), m = arg_int(info, 4, op, "m"),
                n = arg_int(info, 5, op, "n"), k = arg_int(info, 6, op, "k");
  const float alpha = float(arg_num(info, 7, op, "alpha"));
  DeviceBuffer* a = arg_buffer(info, 8, op, "a");
  const int64_t lda = arg_int(info, 9, op, "lda"), sa = arg_int(info, 10, op, "strideA");
  DeviceBuffer* b = arg_buffer(info, 11, op, "b");
  const int64_t ldb = arg_int(info, 12, op, "ldb"), sb = arg_int(info, 13, op, "strideB");
  const float beta = float(arg_num(info, 14, op, "beta"));
  DeviceBuffer* c = arg_buffer(info, 15, op, "c");
  const int64_t cdt = arg_int(info, 16, op, "cDtype");
  const int64_t ldc = arg_int(info, 17, op, "ldc"), sc = arg_int(info, 18, op, "strideC");
  DeviceBuffer* bias = arg_buffer_or_null(info, 19, op, "bias");
  const int64_t act = arg_int(info, 20, op, "act");
  if (type < 0 || type > 3) range_error(env, "cudaGemmEx: type must be 0..3");
  if (cdt < 0 || cdt > 2) range_error(env, "cudaGemmEx: cDtype must be 0..2");
  if (batch < 0 || m < 0 || n < 0 || k < 0 || sa < 0 || sb < 0 || sc < 0)
    range_error(env, "cudaGemmEx: sizes and strides must be >= 0");
  if (lda < 1 || ldb < 1 || ldc < 1) range_error(env, "cudaGemmEx: leading dimensions must be >= 1");
  if (batch > 0 && m > 0 && n > 0) {
    const size_t esz = type_size(int(type));
    if (k > 0) {
      need_bytes(env, op, "a", a, (batch - 1) * sa + (ta ? span(k, m, lda) : span(m, k, lda)), esz);
      need_bytes(env, op, "b", b, (batch - 1) * sb + (tb ? span(n, k, ldb) : span(k, n, ldb)), esz);
    }
    need_bytes(env, op, "c", c, (batch - 1) * sc + span(m, n, ldc), dtype_size(int(cdt)));
    if (bias) need_bytes(env, op, "bias", bias, n, 4);
  }
  cuda_check(env, op,
             tsm_cuda_gemm_strided_batched_ex(
                 tsm_cuda_gemm_type(type), ta, tb, batch, m, n, k, alpha, a->ptr, lda, sa, b->ptr, ldb, sb, beta,
                 c->ptr, tsm_cuda_dtype(cdt), ldc, sc, bias ? static_cast<const float*>(bias->ptr) : nullptr,
                 tsm_cuda_activation(act)));
  return env.Undefined();
}

// cudaSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): tsm_sgemm on device buffers
Napi::Value CudaSgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaSgemm";
  const bool ta = arg_bool(info, 0), tb = arg_bool(info, 1);
  const int64_t m = arg_int(info, 2, op, "m"), n = arg_int(info, 3, op, "n"), k = arg_int(info, 4, op, "k");
  const float alpha = float(arg_num(info, 5, op, "alpha"));
  DeviceBuffer* a = arg_buffer(info, 6, op, "a");
  const int64_t lda = arg_int(info, 7, op, "lda");
  DeviceBuffer* b = arg_buffer(info, 8, op, "b");
  const int64_t ldb = arg_int(info, 9, op, "ldb");
  const float beta = float(arg_num(info, 10, op, "beta"));
  DeviceBuffer* c = arg_buffer(info, 11, op, "c");
  const int64_t ldc = arg_int(info, 12, op, "ldc");
  if (m < 0 || n < 0 || k < 0) range_error(env, "cudaSgemm: m, n and k must be >= 0");
  if (lda < 1 || ldb < 1 || ldc < 1) range_error(env, "cudaSgemm: leading dimensions must be >= 1");
  if (m > 0 && n > 0 && k > 0) {
    need_bytes(env, op, "a", a, ta ? span(k, m, lda) : span(m, k, lda), 4);
    need_bytes(env, op, "b", b, tb ? span(n, k, ldb) : span(k, n, ldb), 4);
  }
  need_bytes(env, op, "c", c, span(m, n, ldc), 4);
  cuda_check(env, op,
             tsm_cuda_sgemm(ta, tb, m, n, k, alpha, static_cast<const float*>(a->ptr), lda,
                            static_cast<const float*>(b->ptr), ldb, beta, static_cast<float*>(c->ptr), ldc));
  return env.Undefined();
}

Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  cuda_check(info.Env(), "cudaSynchronize", tsm_cuda_synchronize());
  return info.Env().Undefined();
}

Napi::Value CudaEmptyCache(const Napi::CallbackInfo& info) {
  cuda_check(info.Env(), "cudaEmptyCache", tsm_cuda_empty_cache());
  return info.Env().Undefined();
}

Napi::Value CudaMemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  tsm_cuda_memory_stats s{};
  cuda_check(env, "cudaMemoryStats", tsm_cuda_memory_stats_get(&s));
  Napi::Object o = Napi::Object::New(env);
  o.Set("allocatedBytes", double(s.allocated_bytes));
  o.Set("reservedBytes", double(s.reserved_bytes));
  o.Set("peakAllocatedBytes", double(s.peak_allocated_bytes));
  o.Set("numAllocs", double(s.num_allocs));
  o.Set("numCacheHits", double(s.num_cache_hits));
  o.Set("numDeviceAllocs", double(s.num_device_allocs));
  o.Set("numOomRetries", double(s.num_oom_retries));
  return o;
}

Napi::Value CudaDeviceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t d = arg_int(info, 0, "cudaDeviceInfo", "device");
  char name[256] = {0};
  int major = 0, minor = 0, sms = 0;
  size_t mem = 0;
  cuda_check(env, "cudaDeviceInfo", tsm_cuda_device_info(int(d), name, sizeof(name), &major, &minor, &sms, &mem));
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name);
  o.Set("computeCapability", std::to_string(major) + "." + std::to_string(minor));
  o.Set("multiprocessors", sms);
  o.Set("totalMemory", double(mem));
  return o;
}

Napi::Value CudaSetDevice(const Napi::CallbackInfo& info) {
  const int64_t d = arg_int(info, 0, "cudaSetDevice", "device");
  cuda_check(info.Env(), "cudaSetDevice", tsm_cuda_set_device(int(d)));
  return info.Env().Undefined();
}

// cudaGemmSetAlgo(algo): 0 auto, 1 simt, 2 mma, 3 wgmma; cudaGemmLastAlgo() -> number
Napi::Value CudaGemmSetAlgo(const Napi::CallbackInfo& info) {
  const int64_t a = arg_int(info, 0, "cudaGemmSetAlgo", "algo");
  cuda_check(info.Env(), "cudaGemmSetAlgo", tsm_cuda_gemm_set_algo(tsm_cuda_gemm_algo(a)));
  return info.Env().Undefined();
}

Napi::Value CudaGemmLastAlgo(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), int(tsm_cuda_gemm_last_algo()));
}

}  // namespace

// Used by ops_cuda_tensor.cpp: throws the JS error of a failed tsm_cuda_* call (RangeError for an
// invalid argument, else an Error named 'TsmCudaError' with `call` and `status`).
void tsm_binding_cuda_check(Napi::Env env, const char* call, tsm_status status) { cuda_check(env, call, status); }

// Used by peer_cublas.cpp (benchmarks) and ops_cuda_tensor.cpp: the device pointer behind a live handle.
void* tsm_binding_device_ptr(Napi::Env env, Napi::Value v, const char* op, const char* name, size_t* bytes) {
  DeviceBuffer* b = value_buffer(env, v, op, name);
  *bytes = b->bytes;
  return b->ptr;
}

void register_ops_cuda(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaMalloc", Napi::Function::New(env, CudaMalloc, "cudaMalloc"));
  exports.Set("cudaFree", Napi::Function::New(env, CudaFree, "cudaFree"));
  exports.Set("cudaBufferBytes", Napi::Function::New(env, CudaBufferBytes, "cudaBufferBytes"));
  exports.Set("cudaUpload", Napi::Function::New(env, CudaUpload, "cudaUpload"));
  exports.Set("cudaDownload", Napi::Function::New(env, CudaDownload, "cudaDownload"));
  exports.Set("cudaMemset", Napi::Function::New(env, CudaMemset, "cudaMemset"));
  exports.Set("cudaSgemm", Napi::Function::New(env, CudaSgemm, "cudaSgemm"));
  exports.Set("cudaGemmEx", Napi::Function::New(env, CudaGemmEx, "cudaGemmEx"));
  exports.Set("cudaSynchronize", Napi::Function::New(env, CudaSynchronize, "cudaSynchronize"));
  exports.Set("cudaEmptyCache", Napi::Function::New(env, CudaEmptyCache, "cudaEmptyCache"));
  exports.Set("cudaMemoryStats", Napi::Function::New(env, CudaMemoryStats, "cudaMemoryStats"));
  exports.Set("cudaDeviceInfo", Napi::Function::New(env, CudaDeviceInfo, "cudaDeviceInfo"));
  exports.Set("cudaSetDevice", Napi::Function::New(env, CudaSetDevice, "cudaSetDevice"));
  exports.Set("cudaGemmSetAlgo", Napi::Function::New(env, CudaGemmSetAlgo, "cudaGemmSetAlgo"));
  exports.Set("cudaGemmLastAlgo", Napi::Function::New(env, CudaGemmLastAlgo, "cudaGemmLastAlgo"));
}
