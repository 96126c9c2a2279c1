// Scratch float buffers from the caching allocator, returned on scope exit: the library's work runs
// on one stream per device, which orders the reuse. Needs tsm::cuda::device_alloc / device_free
// declared first (runtime/cuda_common.cuh, or an emulator's stand-in for it).
#pragma once
#include <cstddef>
#include <cstdint>

namespace tsm {
namespace cuda {

struct Scratch {
  float* p = nullptr;
  const char* op;
  explicit Scratch(const char* o) : op(o) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  // At least one float, so that an empty request still gives a valid pointer.
  tsm_status alloc(int64_t floats) {
    void* v = nullptr;
    tsm_status s = device_alloc(&v, size_t(floats > 0 ? floats : 1) * 4, op);
    p = static_cast<float*>(v);
    return s;
  }
  ~Scratch() {
    if (p) device_free(p, op);
  }
};

}  // namespace cuda
}  // namespace tsm
