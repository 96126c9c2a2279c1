// Lab for the SIMT SGEMM (cuda/gemm_sgemm.cu): builds its tile variants (launch_sgemm_variant under
// TSM_SGEMM_LAB) into one program that checks each against cublasSgemm on random inputs and times
// both with CUDA events, so one call on a lent GPU compares them all. Not part of the library build.
//
// Build here (nvcc, no GPU needed):
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Icpp/include -Icpp -Icuda \
//        -o .device/sgemm_lab tools/gpu-lab/sgemm_lab.cu -ldl
// Run there:  sgemm_lab LAYOUT VARIANT M N K [reps]   (LAYOUT nn|nt|tn|tt, row-major; VARIANT 0 is the
// library's own choice, 1.. the cases of launch_sgemm_variant; prints one line: variant, shape, ours
// and cuBLAS in ms and TFLOP/s, the ratio and the relative L2 error against cuBLAS).
#define TSM_SGEMM_LAB 1
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../cuda/gemm_sgemm.cu"
namespace tsm {
tsm_status fail(tsm_status status, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "error: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  return status;
}
namespace cuda {
tsm_status check(cudaError_t err, const char* call) {
  if (err == cudaSuccess) return TSM_OK;
  return fail(TSM_ERR_CUDA, "%s: %s", call, cudaGetErrorString(err));
}
tsm_status check_launch(const char* what) { return check(cudaGetLastError(), what); }
tsm_status device_alloc(void** p, size_t bytes, const char* op) { return check(cudaMalloc(p, bytes), op); }
tsm_status device_free(void* p, const char* op) { return check(cudaFree(p), op); }
const DeviceProps* props(const char*) {
  static DeviceProps d;
  static bool ready = false;
  if (!ready) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return nullptr;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    d.sm_count = p.multiProcessorCount;
    d.smem_optin = p.sharedMemPerBlockOptin;
    snprintf(d.name, sizeof d.name, "%s", p.name);
    ready = true;
  }
  return &d;
}
}  // namespace cuda
}  // namespace tsm

namespace lab {
using namespace tsm::cuda;

#define CK(x)                                                                              \
  do {                                                                                     \
    cudaError_t e_ = (x);                                                                  \
    if (e_ != cudaSuccess) {                                                               \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(2);                                                                             \
    }                                                                                      \
  } while (0)

using GemmExFn = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                         const void*, void*, int, int, int, int);

__global__ void fill_random(void* out, int64_t n, uint32_t seed, int kind) {  // kind 0 f32, 1 bf16
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15; h *= 2246822519u; h ^= h >> 13; h *= 3266489917u; h ^= h >> 16;
    const float v = (h >> 8) * (2.f / 16777216.f) - 1.f;
    if (kind == 0) static_cast<float*>(out)[i] = v;
    else static_cast<__nv_bfloat16*>(out)[i] = __float2bfloat16_rn(v);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace lab
using namespace lab;

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: sgemm_lab nn|nt|tn|tt VARIANT M N K [reps]\n");
    return 1;
  }
  const std::string lay = argv[1];
  const bool ta = lay[0] == 't', tb = lay[1] == 't';
  const int variant = atoi(argv[2]);
  const int M = atoi(argv[3]), N = atoi(argv[4]), K = atoi(argv[5]);
  const int reps = argc > 6 ? atoi(argv[6]) : 30;
  const size_t abytes = size_t(M) * K * 4, bbytes = size_t(N) * K * 4, cbytes = size_t(M) * N * 4;
  const int sets = std::max<int>(2, int(std::min<size_t>(8, (200u << 20) / (abytes + bbytes) + 1)));

  const char* libs[] = {getenv("TSM_CUBLAS"), "/usr/local/cuda/lib64/libcublas.so", "libcublas.so.13", "libcublas.so"};
  void* h = nullptr;
  for (const char* l : libs)
    if (l && (h = dlopen(l, RTLD_NOW))) break;
  if (!h) { fprintf(stderr, "cuBLAS not found: %s\n", dlerror()); return 2; }
  auto create = reinterpret_cast<int (*)(void**)>(dlsym(h, "cublasCreate_v2"));
  auto set_stream = reinterpret_cast<int (*)(void*, cudaStream_t)>(dlsym(h, "cublasSetStream_v2"));
  using SgemmFn = int (*)(void*, int, int, int, int, int, const float*, const float*, int, const float*, int,
                          const float*, float*, int);
  auto sgemm = reinterpret_cast<SgemmFn>(dlsym(h, "cublasSgemm_v2"));
  void* handle = nullptr;
  if (!create || !sgemm || create(&handle) != 0) { fprintf(stderr, "cublasCreate failed\n"); return 2; }
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  set_stream(handle, stream);

  std::vector<void*> A(sets), B(sets), C(sets);
  for (int i = 0; i < sets; ++i) {
    CK(cudaMalloc(&A[i], abytes));
    CK(cudaMalloc(&B[i], bbytes));
    CK(cudaMalloc(&C[i], cbytes));
    fill_random<<<1024, 256, 0, stream>>>(A[i], int64_t(M) * K, 1234u + 7u * i, 0);
    fill_random<<<1024, 256, 0, stream>>>(B[i], int64_t(N) * K, 9876u + 13u * i, 0);
  }
  void* Cref;
  CK(cudaMalloc(&Cref, cbytes));

  GemmProblem p{};
  p.type = TSM_CUDA_GEMM_F32;
  p.ta = ta;
  p.tb = tb;
  p.batch = 1;
  p.m = M; p.n = N; p.k = K;
  p.alpha = 1.f; p.beta = 0.f;
  p.lda = ta ? M : K; p.ldb = tb ? K : N; p.ldc = N;
  p.c_dtype = 0;
  p.act = 0;
  auto ours = [&](int i) {
    p.a = A[i]; p.b = B[i]; p.c = C[i];
    if (launch_sgemm_variant(p, stream, variant) != TSM_OK) exit(3);
  };
  const float one = 1.f, zero = 0.f;
  auto peer = [&](int i, void* c) {
    // row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first.
    int st = sgemm(handle, tb ? 1 : 0, ta ? 1 : 0, N, M, K, &one, static_cast<const float*>(B[i]), int(p.ldb),
                   static_cast<const float*>(A[i]), int(p.lda), &zero, static_cast<float*>(c), N);
    if (st != 0) { fprintf(stderr, "cublasSgemm status %d\n", st); exit(2); }
  };

  // Check: poison C, run once, compare with cuBLAS.
  CK(cudaMemsetAsync(C[0], 0xFF, cbytes, stream));
  ours(0);
  peer(0, Cref);
  CK(cudaStreamSynchronize(stream));
  CK(cudaGetLastError());
  const size_t nc = size_t(M) * N;
  std::vector<float> o(nc), r(nc);
  CK(cudaMemcpy(o.data(), C[0], cbytes, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(r.data(), Cref, cbytes, cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  size_t bad = 0;
  for (size_t i = 0; i < nc; ++i) {
    if (!std::isfinite(o[i])) ++bad;
    const double dd = double(o[i]) - r[i];
    num += dd * dd;
    den += double(r[i]) * r[i];
  }
  const double rel = bad ? NAN : std::sqrt(num / den);

  // Time: warm-up, then alternating blocks of ours and cuBLAS, each product between two events.
  cudaEvent_t ev[2];
  CK(cudaEventCreate(&ev[0]));
  CK(cudaEventCreate(&ev[1]));
  std::vector<double> t_ours, t_peer;
  for (int i = 0; i < 5; ++i) { ours(i % sets); peer(i % sets, C[i % sets]); }
  int j = 0;
  for (int blk = 0; blk < 4; ++blk) {
    for (int side = 0; side < 2; ++side) {
      for (int i = 0; i < reps / 4 + 1; ++i, ++j) {
        CK(cudaEventRecord(ev[0], stream));
        if (side == 0) ours(j % sets); else peer(j % sets, C[j % sets]);
        CK(cudaEventRecord(ev[1], stream));
        CK(cudaEventSynchronize(ev[1]));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, ev[0], ev[1]));
        (side == 0 ? t_ours : t_peer).push_back(ms);
      }
    }
  }
  CK(cudaGetLastError());
  const double fl = 2.0 * M * N * K;
  const double mo = median(t_ours), mp = median(t_peer);
  printf("f32 %s v%-3d %5dx%5dx%5d  ours %8.4f ms %6.1f TF  cublas %8.4f ms %6.1f TF  ratio %.3f  relerr %.2e%s\n",
         argv[1], variant, M, N, K, mo, fl / mo / 1e9, mp, fl / mp / 1e9, mp / mo, rel, bad ? "  NONFINITE" : "");
  return 0;
}
