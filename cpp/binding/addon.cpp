// The Node addon: converts JS values, calls the C ABI, turns failures into JS exceptions.
#include "binding.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>

using namespace tsm_binding;

void register_peer_blas(Napi::Env env, Napi::Object exports);
void register_ops_conv(Napi::Env env, Napi::Object exports);
void register_ops_pointwise(Napi::Env env, Napi::Object exports);
void register_ops_nn(Napi::Env env, Napi::Object exports);
void register_ops_attention(Napi::Env env, Napi::Object exports);
void register_ops_lstm(Napi::Env env, Napi::Object exports);
void register_async(Napi::Env env, Napi::Object exports);
void register_ops_cuda(Napi::Env env, Napi::Object exports);
void register_ops_cuda_attention(Napi::Env env, Napi::Object exports);
void register_ops_cuda_tensor(Napi::Env env, Napi::Object exports);
void register_ops_cuda_nn(Napi::Env env, Napi::Object exports);
void register_ops_cuda_norm(Napi::Env env, Napi::Object exports);
void register_ops_cuda_seq(Napi::Env env, Napi::Object exports);
void register_ops_cuda_amp(Napi::Env env, Napi::Object exports);
#if TSM_CUDA_COMPILED
void register_peer_cublas(Napi::Env env, Napi::Object exports);  // benchmarks only; needs CUDA headers
#endif

namespace {

Napi::Value Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tsm_version());
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", tsm_version());
  o.Set("simd", tsm_simd_name(tsm_get_simd()));
  o.Set("threads", tsm_get_num_threads());
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", Napi::Boolean::New(env, tsm_cuda_compiled() != 0));
  cuda.Set("runtimeVersion", tsm_cuda_runtime_version());
  cuda.Set("archs", TSM_CUDA_ARCHS);  // CMAKE_CUDA_ARCHITECTURES, e.g. "80;90a"; empty without CUDA
  int count = 0;
  tsm_status s = tsm_cuda_device_count(&count);
  cuda.Set("deviceCount", s == TSM_OK ? count : 0);
  o.Set("cuda", cuda);
  return o;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 0, "setNumThreads", "n");
  if (n < 1 || n > 1024) range_error(info.Env(), "setNumThreads: n must be in [1, 1024]");
  check(info.Env(), tsm_set_num_threads(static_cast<int>(n)));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), tsm_get_num_threads());
}

// sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, reference?)
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "sgemm";
  const bool ta = arg_bool(info, 0), tb = arg_bool(info, 1);
  const int64_t m = arg_int(info, 2, op, "m"), n = arg_int(info, 3, op, "n"),
                k = arg_int(info, 4, op, "k");
  const float alpha = static_cast<float>(arg_num(info, 5, op, "alpha"));
  size_t la = 0, lb = 0, lc = 0;
  const float* a = arg_f32(info, 6, op, "a", &la);
  const int64_t lda = arg_int(info, 7, op, "lda");
  const float* b = arg_f32(info, 8, op, "b", &lb);
  const int64_t ldb = arg_int(info, 9, op, "ldb");
  const float beta = static_cast<float>(arg_num(info, 10, op, "beta"));
  float* c = arg_f32(info, 11, op, "c", &lc);
  const int64_t ldc = arg_int(info, 12, op, "ldc");
  const bool reference = arg_bool(info, 13);
  if (m < 0 || n < 0 || k < 0) range_error(env, "sgemm: m, n and k must be >= 0");
  if (lda < 1 || ldb < 1 || ldc < 1) range_error(env, "sgemm: leading dimensions must be >= 1");
  if (m > 0 && n > 0 && k > 0) {
    need(env, op, "a", la, ta ? span(k, m, lda) : span(m, k, lda));
    need(env, op, "b", lb, tb ? span(n, k, ldb) : span(k, n, ldb));
  }
  need(env, op, "c", lc, span(m, n, ldc));
  tsm_status s = reference ? tsm_sgemm_reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
                           : tsm_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  check(env, s);
  return env.Undefined();
}

// sgemmStridedBatched(transA, transB, batch, m, n, k, alpha, a, lda, strideA, b, ldb, strideB,
//                     beta, c, ldc, strideC)
Napi::Value SgemmStridedBatched(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "sgemmStridedBatched";
  const bool ta = arg_bool(info, 0), tb = arg_bool(info, 1);
  const int64_t batch = arg_int(info, 2, op, "batch"), m = arg_int(info, 3, op, "m"),
                n = arg_int(info, 4, op, "n"), k = arg_int(info, 5, op, "k");
  const float alpha = static_cast<float>(arg_num(info, 6, op, "alpha"));
  size_t la = 0, lb = 0, lc = 0;
  const float* a = arg_f32(info, 7, op, "a", &la);
  const int64_t lda = arg_int(info, 8, op, "lda"), sa = arg_int(info, 9, op, "strideA");
  const float* b = arg_f32(info, 10, op, "b", &lb);
  const int64_t ldb = arg_int(info, 11, op, "ldb"), sb = arg_int(info, 12, op, "strideB");
  const float beta = static_cast<float>(arg_num(info, 13, op, "beta"));
  float* c = arg_f32(info, 14, op, "c", &lc);
  const int64_t ldc = arg_int(info, 15, op, "ldc"), sc = arg_int(info, 16, op, "strideC");
  if (batch < 0 || m < 0 || n < 0 || k < 0 || sa < 0 || sb < 0 || sc < 0)
    range_error(env, "sgemmStridedBatched: sizes and strides must be >= 0");
  if (lda < 1 || ldb < 1 || ldc < 1) range_error(env, "sgemmStridedBatched: leading dimensions must be >= 1");
  if (batch > 0) {
    if (m > 0 && n > 0 && k > 0) {
      need(env, op, "a", la, (batch - 1) * sa + (ta ? span(k, m, lda) : span(m, k, lda)));
      need(env, op, "b", lb, (batch - 1) * sb + (tb ? span(n, k, ldb) : span(k, n, ldb)));
    }
    if (m > 0 && n > 0) need(env, op, "c", lc, (batch - 1) * sc + span(m, n, ldc));
  }
  // An empty C means no work: one batch still validates the arguments, without looping `batch`
  // (up to 2^53) times over nothing.
  const int64_t batches = (m == 0 || n == 0) ? std::min<int64_t>(batch, 1) : batch;
  check(env, tsm_sgemm_strided_batched(ta, tb, batches, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c,
                                       ldc, sc));
  return env.Undefined();
}

// alignedFloat32Array(n): a zeroed Float32Array of n elements whose first element sits on a 64-byte
// boundary (a cache line, and an AVX-512 vector), inside an ArrayBuffer 64 bytes longer than it
// needs. Large ArrayBuffers come from calloc, which returns 16 bytes past a page start when it maps
// them: a 16-float row of B then spans two cache lines, and the GEMM's in-kernel packing of B (and
// every kernel's row stores) touch twice the lines. PyTorch's CPU allocator aligns to 64 as well.
Napi::Value AlignedFloat32Array(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t n = arg_int(info, 0, "alignedFloat32Array", "n");
  if (n < 0 || n > (int64_t(1) << 32))
    range_error(env, "alignedFloat32Array: n must be in [0, 2^32], got " + std::to_string(n));
  constexpr size_t ALIGN = 64;
  void* data = nullptr;
  napi_value ab, out;
  if (napi_create_arraybuffer(env, static_cast<size_t>(n) * sizeof(float) + ALIGN, &data, &ab) != napi_ok)
    throw Napi::Error::New(env, "alignedFloat32Array: cannot allocate " + std::to_string(n) + " floats");
  const size_t mis = reinterpret_cast<uintptr_t>(data) % ALIGN;
  // calloc's memory is at least 8-aligned, so the offset is a whole number of floats.
  const size_t offset = mis % sizeof(float) == 0 ? (ALIGN - mis) % ALIGN : 0;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, napi_float32_array, static_cast<size_t>(n), ab, offset, &out),
                       Napi::Value());
  return Napi::Value(env, out);
}

// addressAlignment(typedArray): the largest power of two up to 4096 that divides the address of its
// first element. For tests and diagnostics of the alignment above.
Napi::Value AddressAlignment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  if (info.Length() < 1 || napi_get_typedarray_info(env, info[0], nullptr, nullptr, &data, nullptr, nullptr) != napi_ok)
    throw Napi::TypeError::New(env, "addressAlignment: expected a typed array");
  const uintptr_t addr = reinterpret_cast<uintptr_t>(data);
  uint32_t align = 1;
  while (align < 4096 && addr % (align * 2) == 0) align *= 2;
  return Napi::Number::New(env, align);
}

// mallocTrim(): returns freed heap pages to the OS (glibc), so that a measured RSS reflects live
// memory rather than the allocator's high-water mark. For diagnostics and the memory test.
Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version, "version"));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("sgemm", Napi::Function::New(env, Sgemm, "sgemm"));
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim, "mallocTrim"));
  exports.Set("alignedFloat32Array", Napi::Function::New(env, AlignedFloat32Array, "alignedFloat32Array"));
  exports.Set("addressAlignment", Napi::Function::New(env, AddressAlignment, "addressAlignment"));
  exports.Set("sgemmStridedBatched", Napi::Function::New(env, SgemmStridedBatched, "sgemmStridedBatched"));
  register_peer_blas(env, exports);
  register_ops_conv(env, exports);
  register_ops_pointwise(env, exports);
  register_ops_nn(env, exports);
  register_ops_attention(env, exports);
  register_ops_lstm(env, exports);
  register_async(env, exports);
  register_ops_cuda(env, exports);
  register_ops_cuda_attention(env, exports);
  register_ops_cuda_tensor(env, exports);
  register_ops_cuda_nn(env, exports);
  register_ops_cuda_norm(env, exports);
  register_ops_cuda_seq(env, exports);
  register_ops_cuda_amp(env, exports);
#if TSM_CUDA_COMPILED
  register_peer_cublas(env, exports);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(tensorsmith, Init)
