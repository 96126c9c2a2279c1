// CUDA device queries, error mapping, the per-device stream. This file is compiled whenever nvcc is
// found (TSM_CUDA=AUTO|ON) so the CUDA path of the build never rots; the runtime is linked
// statically, so a machine without the NVIDIA driver loads the addon and simply reports no devices.
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "cuda_common.cuh"

namespace tsm {
namespace cuda {

namespace {
constexpr int kMaxDevices = 64;
std::mutex g_mutex;
cudaStream_t g_streams[kMaxDevices] = {};
DeviceProps g_props[kMaxDevices];
bool g_props_ready[kMaxDevices] = {};
std::atomic<int> g_count{-1};  // cached device count once a query succeeded
}  // namespace

tsm_status check(cudaError_t err, const char* call) {
  if (err == cudaSuccess) return TSM_OK;
  cudaGetLastError();  // clear the non-sticky error state
  if (err == cudaErrorMemoryAllocation)
    return fail(TSM_ERR_CUDA, "%s: out of memory (%s)", call, cudaGetErrorString(err));
  return fail(TSM_ERR_CUDA, "%s: %s (%s)", call, cudaGetErrorString(err), cudaGetErrorName(err));
}

tsm_status check_launch(const char* what) {
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return TSM_OK;
  return fail(TSM_ERR_CUDA, "%s: kernel launch failed: %s (%s)", what, cudaGetErrorString(err),
              cudaGetErrorName(err));
}

tsm_status ensure_device(const char* call, int* device) {
  int n = g_count.load(std::memory_order_relaxed);
  if (n < 0) {
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return fail(TSM_ERR_CUDA, "%s: no CUDA device is available (cudaGetDeviceCount: %s)", call,
                  cudaGetErrorString(err));
    }
    g_count.store(n, std::memory_order_relaxed);
  }
  if (n <= 0) return fail(TSM_ERR_CUDA, "%s: no CUDA device is available (0 devices)", call);
  int d = 0;
  TSM_CUDA_TRY(cudaGetDevice(&d), "cudaGetDevice");
  if (d < 0 || d >= kMaxDevices)
    return fail(TSM_ERR_UNSUPPORTED, "%s: device %d is beyond the %d devices supported", call, d,
                kMaxDevices);
  if (device) *device = d;
  return TSM_OK;
}

cudaStream_t stream(const char* call) {
  int d = 0;
  if (ensure_device(call, &d) != TSM_OK) return nullptr;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_streams[d]) {
    cudaStream_t s = nullptr;
    if (check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags") !=
        TSM_OK)
      return nullptr;
    g_streams[d] = s;
  }
  return g_streams[d];
}

const DeviceProps* props(const char* call) {
  int d = 0;
  if (ensure_device(call, &d) != TSM_OK) return nullptr;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_props_ready[d]) {
    cudaDeviceProp p;
    if (check(cudaGetDeviceProperties(&p, d), "cudaGetDeviceProperties") != TSM_OK) return nullptr;
    DeviceProps& q = g_props[d];
    q.cc_major = p.major;
    q.cc_minor = p.minor;
    q.sm_count = p.multiProcessorCount;
    q.smem_optin = p.sharedMemPerBlockOptin;
    std::snprintf(q.name, sizeof(q.name), "%s", p.name);
    g_props_ready[d] = true;
  }
  return &g_props[d];
}

}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API int tsm_cuda_compiled(void) { return 1; }

TSM_API tsm_status tsm_cuda_device_count(int* count) {
  if (!count) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "cuda_device_count: count is NULL");
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    *count = 0;
    return TSM_OK;
  }
  if (err != cudaSuccess) {
    *count = 0;
    cudaGetLastError();
    return tsm::fail(TSM_ERR_CUDA, "cudaGetDeviceCount: %s", cudaGetErrorString(err));
  }
  *count = n;
  return TSM_OK;
}

TSM_API int tsm_cuda_runtime_version(void) { return CUDART_VERSION; }

TSM_API tsm_status tsm_cuda_set_device(int device) {
  int n = 0;
  tsm_status s = tsm_cuda_device_count(&n);
  if (s != TSM_OK) return s;
  if (device < 0 || device >= n)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "cuda_set_device: device %d does not exist (%d visible)",
                     device, n);
  TSM_CUDA_TRY(cudaSetDevice(device), "cudaSetDevice");
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_get_device(int* device) {
  if (!device) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "cuda_get_device: device is NULL");
  return ensure_device("cuda_get_device", device);
}

TSM_API tsm_status tsm_cuda_device_info(int device, char* name, size_t name_len, int* cc_major,
                                        int* cc_minor, int* multiprocessors, size_t* total_memory) {
  tsm_status s = ensure_device("cuda_device_info");
  if (s != TSM_OK) return s;
  cudaDeviceProp p;
  TSM_CUDA_TRY(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  if (name && name_len) {
    std::strncpy(name, p.name, name_len - 1);
    name[name_len - 1] = '\0';
  }
  if (cc_major) *cc_major = p.major;
  if (cc_minor) *cc_minor = p.minor;
  if (multiprocessors) *multiprocessors = p.multiProcessorCount;
  if (total_memory) *total_memory = p.totalGlobalMem;
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_get_stream(void** out) {
  if (!out) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "cuda_get_stream: stream is NULL");
  cudaStream_t s = stream("cuda_get_stream");
  if (!s) return TSM_ERR_CUDA;
  *out = s;
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_synchronize(void) {
  cudaStream_t s = stream("cuda_synchronize");
  if (!s) return TSM_ERR_CUDA;
  TSM_CUDA_TRY(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  return TSM_OK;
}

}  // extern "C"
