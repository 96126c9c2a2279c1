// Benchmark support (compiled only with CUDA): cuBLAS loaded with dlopen at bench time, so
// bench/cuda-gemm can check our GEMMs against it and time both side by side, plus a timing loop
// with CUDA events. Nothing in the library depends on cuBLAS; no cuBLAS header is needed (the few
// enum values used are the stable ones of cublas_api.h / library_types.h).
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <string>
#include <vector>

#include "binding.h"

using namespace tsm_binding;


namespace {

// cuBLAS ABI (cublas_api.h): handles are pointers, statuses ints, enums ints.
using cublasHandle_t = void*;
using cublasCreate_fn = int (*)(cublasHandle_t*);
using cublasSetStream_fn = int (*)(cublasHandle_t, cudaStream_t);
using cublasGetVersion_fn = int (*)(cublasHandle_t, int*);
using cublasGemmEx_fn = int (*)(cublasHandle_t, int transa, int transb, int m, int n, int k, const void* alpha,
                                const void* A, int Atype, int lda, const void* B, int Btype, int ldb,
                                const void* beta, void* C, int Ctype, int ldc, int computeType, int algo);
constexpr int CUBLAS_OP_N = 0, CUBLAS_OP_T = 1;
constexpr int CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14;
constexpr int CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
constexpr int CUBLAS_GEMM_DEFAULT = -1;

struct Cublas {
  void* lt = nullptr;
  void* lib = nullptr;
  cublasCreate_fn create = nullptr;
  cublasSetStream_fn set_stream = nullptr;
  cublasGetVersion_fn get_version = nullptr;
  cublasGemmEx_fn gemm_ex = nullptr;
  cublasHandle_t handle = nullptr;
};
Cublas g_cublas;

[[noreturn]] void bench_error(Napi::Env env, const char* call, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, std::string(call) + ": " + msg);
  e.Set("name", Napi::String::New(env, "TsmCudaError"));
  e.Set("call", Napi::String::New(env, call));
  throw e;
}

void check_tsm(Napi::Env env, const char* call, tsm_status s) {
  if (s != TSM_OK) bench_error(env, call, tsm_last_error());
}

void check_rt(Napi::Env env, const char* call, cudaError_t err) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    bench_error(env, call, cudaGetErrorString(err));
  }
}

// peerCublasLoad(pathToLibcublas, pathToLibcublasLt | '') -> cuBLAS version (e.g. 130100)
Napi::Value PeerCublasLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) type_error(env, "peerCublasLoad: path must be a string");
  std::string path = info[0].As<Napi::String>();
  std::string lt = info.Length() > 1 && info[1].IsString() ? std::string(info[1].As<Napi::String>()) : "";
  if (g_cublas.handle) {
    int v = 0;
    g_cublas.get_version(g_cublas.handle, &v);
    return Napi::Number::New(env, v);
  }
  // cuBLASLt first, globally, so libcublas finds it even without an RPATH.
  if (!lt.empty() && !(g_cublas.lt = dlopen(lt.c_str(), RTLD_NOW | RTLD_GLOBAL)))
    bench_error(env, "peerCublasLoad", std::string("dlopen ") + lt + ": " + dlerror());
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) bench_error(env, "peerCublasLoad", std::string("dlopen ") + path + ": " + dlerror());
  g_cublas.lib = h;
  g_cublas.create = reinterpret_cast<cublasCreate_fn>(dlsym(h, "cublasCreate_v2"));
  g_cublas.set_stream = reinterpret_cast<cublasSetStream_fn>(dlsym(h, "cublasSetStream_v2"));
  g_cublas.get_version = reinterpret_cast<cublasGetVersion_fn>(dlsym(h, "cublasGetVersion_v2"));
  g_cublas.gemm_ex = reinterpret_cast<cublasGemmEx_fn>(dlsym(h, "cublasGemmEx"));
  if (!g_cublas.create || !g_cublas.set_stream || !g_cublas.get_version || !g_cublas.gemm_ex)
    bench_error(env, "peerCublasLoad", path + " lacks cublasCreate_v2/cublasSetStream_v2/cublasGemmEx");
  void* stream = nullptr;
  check_tsm(env, "peerCublasLoad", tsm_cuda_get_stream(&stream));
  int st = g_cublas.create(&g_cublas.handle);
  if (st != 0) {
    g_cublas.handle = nullptr;
    bench_error(env, "peerCublasLoad", "cublasCreate failed with status " + std::to_string(st));
  }
  st = g_cublas.set_stream(g_cublas.handle, static_cast<cudaStream_t>(stream));
  if (st != 0) bench_error(env, "peerCublasLoad", "cublasSetStream failed with status " + std::to_string(st));
  int v = 0;
  g_cublas.get_version(g_cublas.handle, &v);
  return Napi::Number::New(env, v);
}

struct GemmCall {
  int type, cdt;
  bool ta, tb;
  int m, n, k;
  float alpha, beta;
  int64_t lda, ldb, ldc;
};

GemmCall read_call(const Napi::CallbackInfo& info, size_t i0, const char* op) {
  GemmCall g;
  g.type = int(arg_int(info, i0, op, "type"));
  g.ta = arg_bool(info, i0 + 1);
  g.tb = arg_bool(info, i0 + 2);
  g.m = int(arg_int(info, i0 + 3, op, "m"));
  g.n = int(arg_int(info, i0 + 4, op, "n"));
  g.k = int(arg_int(info, i0 + 5, op, "k"));
  g.cdt = int(arg_int(info, i0 + 6, op, "cDtype"));
  g.alpha = 1.f;
  g.beta = 0.f;
  g.lda = g.ta ? g.m : g.k;
  g.ldb = g.tb ? g.k : g.n;
  g.ldc = g.n;
  if (g.type < 0 || g.type > 3 || g.cdt < 0 || g.cdt > 2 || g.m < 1 || g.n < 1 || g.k < 1)
    range_error(info.Env(), std::string(op) + ": bad type, dtype or size");
  return g;
}

void check_sizes(Napi::Env env, const char* op, const GemmCall& g, size_t la, size_t lb, size_t lc) {
  const size_t esz = g.type <= 1 ? 4 : 2, csz = g.cdt == 0 ? 4 : 2;
  if (la < size_t(g.m) * g.k * esz || lb < size_t(g.k) * g.n * esz || lc < size_t(g.m) * g.n * csz)
    range_error(env, std::string(op) + ": a buffer is too small for the product");
}

int cublas_gemm(const GemmCall& g, const void* a, const void* b, void* c) {
  const int in_t = g.type <= 1 ? CUDA_R_32F : g.type == 2 ? CUDA_R_16BF : CUDA_R_16F;
  const int out_t = g.cdt == 0 ? CUDA_R_32F : g.cdt == 1 ? CUDA_R_16BF : CUDA_R_16F;
  const int compute = g.type == 1 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  // Row-major C = op(A) op(B)  <=>  column-major C^T = op(B)^T op(A)^T.
  return g_cublas.gemm_ex(g_cublas.handle, g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, g.n,
                          g.m, g.k, &g.alpha, b, in_t, int(g.ldb), a, in_t, int(g.lda), &g.beta, c, out_t,
                          int(g.ldc), compute, CUBLAS_GEMM_DEFAULT);
}

tsm_status ours_gemm(const GemmCall& g, const void* a, const void* b, void* c) {
  return tsm_cuda_gemm_ex(tsm_cuda_gemm_type(g.type), g.ta, g.tb, g.m, g.n, g.k, g.alpha, a, g.lda, b, g.ldb, g.beta,
                          c, tsm_cuda_dtype(g.cdt), g.ldc, nullptr, TSM_CUDA_ACT_NONE);
}

// peerCublasGemm(type, transA, transB, m, n, k, cDtype, a, b, c): C = op(A) op(B), packed leading dims
Napi::Value PeerCublasGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "peerCublasGemm";
  if (!g_cublas.handle) bench_error(env, op, "call peerCublasLoad first");
  GemmCall g = read_call(info, 0, op);
  size_t la, lb, lc;
  void* a = tsm_binding_device_ptr(env, info[7], op, "a", &la);
  void* b = tsm_binding_device_ptr(env, info[8], op, "b", &lb);
  void* c = tsm_binding_device_ptr(env, info[9], op, "c", &lc);
  check_sizes(env, op, g, la, lb, lc);
  int st = cublas_gemm(g, a, b, c);
  if (st != 0) bench_error(env, op, "cublasGemmEx failed with status " + std::to_string(st));
  return env.Undefined();
}

// cudaTimeGemm(peer, type, transA, transB, m, n, k, cDtype, as[], bs[], cs[], warmup, reps) -> ms[]
// Runs `warmup` untimed products, then `reps` products each between two CUDA events, all queued
// back to back on the library's stream; product i uses input set i % as.length (rotating inputs,
// so repeated runs do not just re-read L2).
Napi::Value CudaTimeGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "cudaTimeGemm";
  const bool peer = arg_bool(info, 0);
  if (peer && !g_cublas.handle) bench_error(env, op, "call peerCublasLoad first");
  GemmCall g = read_call(info, 1, op);
  if (info.Length() < 11 || !info[8].IsArray() || !info[9].IsArray() || !info[10].IsArray())
    type_error(env, "cudaTimeGemm: as, bs and cs must be arrays of device buffers");
  Napi::Array as = info[8].As<Napi::Array>(), bs = info[9].As<Napi::Array>(), cs = info[10].As<Napi::Array>();
  const uint32_t sets = as.Length();
  if (sets == 0 || bs.Length() != sets || cs.Length() != sets) range_error(env, "cudaTimeGemm: as, bs, cs must have one equal, non-zero length");
  const int64_t warmup = arg_int(info, 11, op, "warmup"), reps = arg_int(info, 12, op, "reps");
  if (warmup < 0 || reps < 1 || reps > 100000) range_error(env, "cudaTimeGemm: bad warmup or reps");
  std::vector<void*> A(sets), B(sets), C(sets);
  for (uint32_t i = 0; i < sets; ++i) {
    size_t la, lb, lc;
    A[i] = tsm_binding_device_ptr(env, as[i], op, "as[i]", &la);
    B[i] = tsm_binding_device_ptr(env, bs[i], op, "bs[i]", &lb);
    C[i] = tsm_binding_device_ptr(env, cs[i], op, "cs[i]", &lc);
    check_sizes(env, op, g, la, lb, lc);
  }
  void* sv = nullptr;
  check_tsm(env, op, tsm_cuda_get_stream(&sv));
  cudaStream_t stream = static_cast<cudaStream_t>(sv);
  auto launch = [&](int64_t i) {
    const uint32_t j = uint32_t(i % sets);
    if (peer) {
      int st = cublas_gemm(g, A[j], B[j], C[j]);
      if (st != 0) bench_error(env, op, "cublasGemmEx failed with status " + std::to_string(st));
    } else {
      check_tsm(env, op, ours_gemm(g, A[j], B[j], C[j]));
    }
  };
  for (int64_t i = 0; i < warmup; ++i) launch(i);
  std::vector<cudaEvent_t> ev(size_t(2 * reps), nullptr);
  for (auto& e : ev) check_rt(env, "cudaEventCreate", cudaEventCreate(&e));
  std::vector<double> ms(size_t(reps), 0.0);
  std::string err;
  for (int64_t i = 0; i < reps; ++i) {
    check_rt(env, "cudaEventRecord", cudaEventRecord(ev[2 * i], stream));
    launch(warmup + i);
    check_rt(env, "cudaEventRecord", cudaEventRecord(ev[2 * i + 1], stream));
  }
  cudaError_t sync = cudaStreamSynchronize(stream);
  for (int64_t i = 0; i < reps && sync == cudaSuccess; ++i) {
    float t = 0.f;
    cudaError_t e = cudaEventElapsedTime(&t, ev[2 * i], ev[2 * i + 1]);
    if (e != cudaSuccess) { sync = e; break; }
    ms[size_t(i)] = t;
  }
  for (auto& e : ev) cudaEventDestroy(e);
  check_rt(env, "cudaStreamSynchronize", sync);
  Napi::Array out = Napi::Array::New(env, size_t(reps));
  for (int64_t i = 0; i < reps; ++i) out.Set(uint32_t(i), Napi::Number::New(env, ms[size_t(i)]));
  return out;
}

}  // namespace

void register_peer_cublas(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCublasLoad", Napi::Function::New(env, PeerCublasLoad, "peerCublasLoad"));
  exports.Set("peerCublasGemm", Napi::Function::New(env, PeerCublasGemm, "peerCublasGemm"));
  exports.Set("cudaTimeGemm", Napi::Function::New(env, CudaTimeGemm, "cudaTimeGemm"));
}
