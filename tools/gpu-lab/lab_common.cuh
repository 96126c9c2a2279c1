// What the GPU labs (wgmma_lab.cu, sgemm_lab.cu) share, included after the kernel file they test:
// the library's runtime entry points that kernel file needs (errors, device properties, scratch
// memory), random inputs, cuBLAS loaded with dlopen, the relative L2 error against cuBLAS, and the
// timing of ours against cuBLAS in alternating blocks of CUDA-event-timed products.
#pragma once
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

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

#define CK(x)                                                                              \
  do {                                                                                     \
    cudaError_t e_ = (x);                                                                  \
    if (e_ != cudaSuccess) {                                                               \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(2);                                                                             \
    }                                                                                      \
  } while (0)

__global__ void fill_random(void* out, int64_t n, uint32_t seed, int kind) {  // kind 0 f32, 1 bf16
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15; h *= 2246822519u; h ^= h >> 13; h *= 3266489917u; h ^= h >> 16;
    const float v = (h >> 8) * (2.f / 16777216.f) - 1.f;
    if (kind == 0) static_cast<float*>(out)[i] = v;
    else static_cast<__nv_bfloat16*>(out)[i] = __float2bfloat16_rn(v);
  }
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// How many input sets to rotate through: enough that they do not all stay in L2 (200 MB), 2-8.
inline int input_sets(size_t abytes, size_t bbytes) {
  return std::max<int>(2, int(std::min<size_t>(8, (200u << 20) / (abytes + bbytes) + 1)));
}

// The rotating input sets of a product (A: a_elems, B: b_elems uniform in [-1, 1) as float32, or
// bfloat16 when kind is 1), an output C per set, and a reference C for the check.
struct Operands {
  std::vector<void*> a, b, c;
  void* cref = nullptr;
};
inline Operands make_operands(cudaStream_t stream, int sets, int64_t a_elems, int64_t b_elems, size_t cbytes,
                              int kind) {
  const size_t esz = kind == 1 ? 2 : 4;
  Operands o;
  o.a.resize(sets);
  o.b.resize(sets);
  o.c.resize(sets);
  for (int i = 0; i < sets; ++i) {
    CK(cudaMalloc(&o.a[i], a_elems * esz));
    CK(cudaMalloc(&o.b[i], b_elems * esz));
    CK(cudaMalloc(&o.c[i], cbytes));
    fill_random<<<1024, 256, 0, stream>>>(o.a[i], a_elems, 1234u + 7u * i, kind);
    fill_random<<<1024, 256, 0, stream>>>(o.b[i], b_elems, 9876u + 13u * i, kind);
  }
  CK(cudaMalloc(&o.cref, cbytes));
  return o;
}

// The check's run: set 0's C poisoned (all bits set: NaN), ours(0), then peer(0) into the reference C.
inline void run_check(cudaStream_t stream, const Operands& ops, size_t cbytes, const std::function<void(int)>& ours,
                      const std::function<void(int, void*)>& peer) {
  CK(cudaMemsetAsync(ops.c[0], 0xFF, cbytes, stream));
  ours(0);
  peer(0, ops.cref);
  CK(cudaStreamSynchronize(stream));
  CK(cudaGetLastError());
}

// cuBLAS (TSM_CUBLAS, the CUDA install, or the loader's path), a handle on `stream`, and `sym`
// resolved; exits 2 when any is missing.
struct Cublas {
  void* lib = nullptr;
  void* handle = nullptr;
  void* fn = nullptr;
};
inline Cublas open_cublas(cudaStream_t stream, const char* sym) {
  Cublas c;
  const char* libs[] = {getenv("TSM_CUBLAS"), "/usr/local/cuda/lib64/libcublas.so", "libcublas.so.13", "libcublas.so"};
  for (const char* l : libs)
    if (l && (c.lib = dlopen(l, RTLD_NOW))) break;
  if (!c.lib) { fprintf(stderr, "cuBLAS not found: %s\n", dlerror()); exit(2); }
  auto create = reinterpret_cast<int (*)(void**)>(dlsym(c.lib, "cublasCreate_v2"));
  auto set_stream = reinterpret_cast<int (*)(void*, cudaStream_t)>(dlsym(c.lib, "cublasSetStream_v2"));
  c.fn = dlsym(c.lib, sym);
  if (!create || !set_stream || !c.fn || create(&c.handle) != 0) { fprintf(stderr, "cublasCreate failed\n"); exit(2); }
  set_stream(c.handle, stream);
  return c;
}

// Relative L2 error of o against r; NaN when o has a non-finite element (counted in *bad).
inline double rel_error(const std::vector<float>& o, const std::vector<float>& r, size_t* bad) {
  double num = 0, den = 0;
  *bad = 0;
  for (size_t i = 0; i < o.size(); ++i) {
    if (!std::isfinite(o[i])) ++*bad;
    const double dd = double(o[i]) - r[i];
    num += dd * dd;
    den += double(r[i]) * r[i];
  }
  return *bad ? NAN : std::sqrt(num / den);
}

// Medians (ms) of ours(set) and peer(set): 5 warm-ups of each, then 4 alternating blocks of
// reps / 4 + 1 products per side, each product between two events.
inline void time_pair(cudaStream_t stream, int sets, int reps, const std::function<void(int)>& ours,
                      const std::function<void(int)>& peer, double* ms_ours, double* ms_peer) {
  cudaEvent_t ev[2];
  CK(cudaEventCreate(&ev[0]));
  CK(cudaEventCreate(&ev[1]));
  std::vector<double> t_ours, t_peer;
  for (int i = 0; i < 5; ++i) { ours(i % sets); peer(i % sets); }
  int j = 0;
  for (int blk = 0; blk < 4; ++blk) {
    for (int side = 0; side < 2; ++side) {
      for (int i = 0; i < reps / 4 + 1; ++i, ++j) {
        CK(cudaEventRecord(ev[0], stream));
        if (side == 0) ours(j % sets); else peer(j % sets);
        CK(cudaEventRecord(ev[1], stream));
        CK(cudaEventSynchronize(ev[1]));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, ev[0], ev[1]));
        (side == 0 ? t_ours : t_peer).push_back(ms);
      }
    }
  }
  CK(cudaGetLastError());
  *ms_ours = median(t_ours);
  *ms_peer = median(t_peer);
}

}  // namespace lab
