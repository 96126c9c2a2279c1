// Host stand-ins for the CUDA runtime services the kernels' launchers call (cuda/runtime/*.cu and the
// few CUDA API calls they make), for the host emulation (test/emu/cuda_host.h):
//   - one "device" whose stream is a dummy handle; every launch is synchronous;
//   - device_alloc/device_free: exact-size host allocations filled with 0xff bytes (float NaN), so
//     AddressSanitizer catches any access past the end and unwritten scratch shows up as NaN; the
//     bytes and the number of live allocations are counted (tests check that scratch is returned);
//   - check_launch reports a launch configuration rejected by the emulator as TSM_ERR_CUDA;
//   - the mma/wgmma GEMM families are not emulated here (their launchers report unsupported).
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "cuda_host.h"
#include "gemm_common.cuh"

namespace tsm_emu {
std::mutex g_alloc_mu;
std::unordered_map<void*, size_t> g_allocs;
int64_t g_live_bytes = 0, g_peak_bytes = 0;
void set_grid_cap(unsigned cap) { g_grid_cap.store(cap); }
void set_conv_scratch_bytes(int64_t b) { g_conv_scratch_bytes.store(b); }
int64_t live_allocations() {
  std::lock_guard<std::mutex> lk(g_alloc_mu);
  return int64_t(g_allocs.size());
}
}  // namespace tsm_emu

namespace tsm {
namespace cuda {

tsm_status check(cudaError_t err, const char* call) {
  if (err == cudaSuccess) return TSM_OK;
  return fail(TSM_ERR_CUDA, "%s: emulated CUDA error %d", call, int(err));
}

tsm_status check_launch(const char* what) {
  std::lock_guard<std::mutex> lk(tsm_emu::g_err_mu);
  if (tsm_emu::g_launch_error[0]) {
    tsm_status s = fail(TSM_ERR_CUDA, "%s: %s", what, tsm_emu::g_launch_error);
    tsm_emu::g_launch_error[0] = '\0';
    return s;
  }
  return TSM_OK;
}

tsm_status ensure_device(const char*, int* device) {
  if (device) *device = 0;
  return TSM_OK;
}

cudaStream_t stream(const char*) { return reinterpret_cast<cudaStream_t>(uintptr_t(0x5ca1ab1e)); }

const DeviceProps* props(const char*) {
  static DeviceProps p = [] {
    DeviceProps d;
    d.cc_major = 9;
    d.cc_minor = 0;
    d.sm_count = 132;
    d.smem_optin = 227 * 1024;
    std::strcpy(d.name, "host emulation");
    return d;
  }();
  return &p;
}

tsm_status device_alloc(void** ptr, size_t bytes, const char* call) {
  if (!ptr) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: ptr is NULL", call);
  void* p = std::malloc(bytes ? bytes : 1);
  if (!p) return fail(TSM_ERR_CUDA, "%s: out of memory (emulated)", call);
  std::memset(p, 0xff, bytes);
  std::lock_guard<std::mutex> lk(tsm_emu::g_alloc_mu);
  tsm_emu::g_allocs[p] = bytes;
  tsm_emu::g_live_bytes += int64_t(bytes);
  if (tsm_emu::g_live_bytes > tsm_emu::g_peak_bytes) tsm_emu::g_peak_bytes = tsm_emu::g_live_bytes;
  *ptr = p;
  return TSM_OK;
}

tsm_status device_free(void* ptr, const char* call) {
  if (!ptr) return TSM_OK;
  std::lock_guard<std::mutex> lk(tsm_emu::g_alloc_mu);
  auto it = tsm_emu::g_allocs.find(ptr);
  if (it == tsm_emu::g_allocs.end()) tsm_emu::die("%s: device_free of a pointer device_alloc did not return", call);
  tsm_emu::g_live_bytes -= int64_t(it->second);
  tsm_emu::g_allocs.erase(it);
  std::free(ptr);
  return TSM_OK;
}

// The tensor-core GEMM families need their own emulation (mma.sync / wgmma); not here.
tsm_status launch_mma(const GemmProblem&, cudaStream_t) {
  return fail(TSM_ERR_UNSUPPORTED, "launch_mma: not emulated");
}
tsm_status launch_wgmma(const GemmProblem&, cudaStream_t) {
  return fail(TSM_ERR_UNSUPPORTED, "launch_wgmma: not emulated");
}
bool wgmma_applicable(const GemmProblem&) { return false; }

}  // namespace cuda
}  // namespace tsm

// The few CUDA runtime calls the launchers make directly: synchronous host versions.
extern "C" {
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t cudaPeekAtLastError(void) { return cudaSuccess; }
}
