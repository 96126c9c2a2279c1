// Stand-ins for the CUDA entry points in builds without CUDA (TSM_CUDA=OFF or no nvcc).
#include "runtime.h"

extern "C" {

TSM_API int tsm_cuda_compiled(void) { return 0; }

TSM_API tsm_status tsm_cuda_device_count(int* count) {
  if (count) *count = 0;
  return tsm::fail(TSM_ERR_UNSUPPORTED, "cuda_device_count: this build has no CUDA support");
}

TSM_API int tsm_cuda_runtime_version(void) { return 0; }

}  // extern "C"
