// Internal services of the CUDA backend shared by cuda/runtime/*.cu and the kernels: error mapping,
// the current device and its stream, device properties, the caching allocator. Not public ABI.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../../cpp/runtime/runtime.h"

namespace tsm {
namespace cuda {

// Maps a CUDA error to TSM_ERR_CUDA with "call: message" in tsm_last_error(). Clears the non-sticky
// error state so that the next call starts clean (a sticky error, e.g. an illegal address, stays and
// every later call reports it). Returns TSM_OK for cudaSuccess.
tsm_status check(cudaError_t err, const char* call);

// Called after a kernel launch: reports a launch failure (bad configuration, missing kernel image
// for this GPU, a sticky error of an earlier kernel) as TSM_ERR_CUDA "what: message".
tsm_status check_launch(const char* what);

// Makes sure a CUDA device is present and selected on this thread; fails with a clear message when
// there is no driver or no GPU ("call: no CUDA device is available (...)").
tsm_status ensure_device(const char* call, int* device = nullptr);

// The library's stream of the current device (created on first use). nullptr after a failure,
// which is then recorded for tsm_last_error().
cudaStream_t stream(const char* call);

struct DeviceProps {
  int cc_major = 0, cc_minor = 0, sm_count = 0;
  size_t smem_optin = 0;  // max dynamic shared memory per block after opt-in
  char name[256] = {0};
};
// Cached properties of the current device (nullptr after a failure).
const DeviceProps* props(const char* call);

// Caching allocator (allocator.cu).
tsm_status device_alloc(void** ptr, size_t bytes, const char* call);
tsm_status device_free(void* ptr, const char* call);

// The GEMM family chosen for tests/benchmarks (gemm.cu) and the last one used on this thread.
int gemm_algo_forced();
void gemm_set_last_algo(int algo);

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace cuda
}  // namespace tsm

// Returns from the calling function on a CUDA error, recording "call: message".
#define TSM_CUDA_TRY(expr, call)                                  \
  do {                                                            \
    tsm_status tsm_s_ = ::tsm::cuda::check((expr), (call));       \
    if (tsm_s_ != TSM_OK) return tsm_s_;                          \
  } while (0)

namespace tsm {
namespace cuda {

// Lets `kernel` launch with `bytes` of dynamic shared memory (past the 48 KiB default) on the
// current device. The attribute is set per device; `done` (one static per kernel instantiation,
// owned by the caller) records the devices already set, so later calls cost one atomic load.
template <typename Kernel>
tsm_status allow_dynamic_smem(Kernel kernel, size_t bytes, std::atomic<uint64_t>& done) {
  int device = 0;
  TSM_CUDA_TRY(cudaGetDevice(&device), "cudaGetDevice");
  const uint64_t bit = device < 64 ? uint64_t(1) << device : 0;  // devices past 64: set every time
  if (bit != 0 && (done.load(std::memory_order_relaxed) & bit) != 0) return TSM_OK;
  TSM_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)),
               "cudaFuncSetAttribute");
  done.fetch_or(bit);
  return TSM_OK;
}

}  // namespace cuda
}  // namespace tsm
