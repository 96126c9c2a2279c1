// CUDA device queries. This file is compiled whenever nvcc is found (TSM_CUDA=AUTO|ON) so the CUDA
// path of the build never rots; the runtime is linked statically, so a machine without the NVIDIA
// driver loads the addon and simply reports no devices.
#include <cuda_runtime.h>

#include "../../cpp/runtime/runtime.h"

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

}  // extern "C"
