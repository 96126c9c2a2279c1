// Benchmark support: calls a system BLAS (OpenBLAS, BLIS) loaded with dlopen, so benchmarks can time
// our kernels against it side by side in one process. Nothing in the library depends on it.
#include <dlfcn.h>

#include "binding.h"

using namespace tsm_binding;

namespace {

using cblas_sgemm_fn = void (*)(int order, int transa, int transb, int m, int n, int k, float alpha,
                                const float* a, int lda, const float* b, int ldb, float beta,
                                float* c, int ldc);
using set_threads_fn = void (*)(int);

struct Blas {
  void* handle = nullptr;
  cblas_sgemm_fn sgemm = nullptr;
  set_threads_fn set_threads = nullptr;
};
Blas g_blas;

// peerBlasLoad(path) -> true, or throws with dlerror()
Napi::Value PeerBlasLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) type_error(env, "peerBlasLoad: path must be a string");
  std::string path = info[0].As<Napi::String>();
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) throw Napi::Error::New(env, std::string("peerBlasLoad: ") + dlerror());
  auto sg = reinterpret_cast<cblas_sgemm_fn>(dlsym(h, "cblas_sgemm"));
  if (!sg) {
    dlclose(h);
    throw Napi::Error::New(env, "peerBlasLoad: " + path + " has no cblas_sgemm");
  }
  g_blas.handle = h;
  g_blas.sgemm = sg;
  g_blas.set_threads = reinterpret_cast<set_threads_fn>(dlsym(h, "openblas_set_num_threads"));
  if (!g_blas.set_threads)
    g_blas.set_threads = reinterpret_cast<set_threads_fn>(dlsym(h, "bli_thread_set_num_threads"));
  return Napi::Boolean::New(env, true);
}

Napi::Value PeerBlasSetThreads(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 0, "peerBlasSetThreads", "n");
  if (g_blas.set_threads && n >= 1) g_blas.set_threads(static_cast<int>(n));
  return Napi::Boolean::New(info.Env(), g_blas.set_threads != nullptr);
}

// peerBlasSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), row-major
Napi::Value PeerBlasSgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "peerBlasSgemm";
  if (!g_blas.sgemm) throw Napi::Error::New(env, "peerBlasSgemm: call peerBlasLoad first");
  const bool ta = arg_bool(info, 0), tb = arg_bool(info, 1);
  const int64_t m = arg_int(info, 2, op, "m"), n = arg_int(info, 3, op, "n"), k = arg_int(info, 4, op, "k");
  const float alpha = static_cast<float>(arg_num(info, 5, op, "alpha"));
  size_t la = 0, lb = 0, lc = 0;
  const float* a = arg_f32(info, 6, op, "a", &la);
  const int64_t lda = arg_int(info, 7, op, "lda");
  const float* b = arg_f32(info, 8, op, "b", &lb);
  const int64_t ldb = arg_int(info, 9, op, "ldb");
  const float beta = static_cast<float>(arg_num(info, 10, op, "beta"));
  float* c = arg_f32(info, 11, op, "c", &lc);
  const int64_t ldc = arg_int(info, 12, op, "ldc");
  need(env, op, "a", la, ta ? span(k, m, lda) : span(m, k, lda));
  need(env, op, "b", lb, tb ? span(n, k, ldb) : span(k, n, ldb));
  need(env, op, "c", lc, span(m, n, ldc));
  constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
  g_blas.sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, int(m), int(n), int(k), alpha,
               a, int(lda), b, int(ldb), beta, c, int(ldc));
  return env.Undefined();
}

}  // namespace

void register_peer_blas(Napi::Env env, Napi::Object exports) {
  exports.Set("peerBlasLoad", Napi::Function::New(env, PeerBlasLoad, "peerBlasLoad"));
  exports.Set("peerBlasSetThreads", Napi::Function::New(env, PeerBlasSetThreads, "peerBlasSetThreads"));
  exports.Set("peerBlasSgemm", Napi::Function::New(env, PeerBlasSgemm, "peerBlasSgemm"));
}
