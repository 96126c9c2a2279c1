// Host emulation shim for cuda/lstm.cu and cuda/index.cu (compiled as C++ with TSM_SEQ_EMULATE by
// test/emu/seq_emu.cpp's build, see test/cuda-seq-emu.test.ts). Their kernels are grid-stride loops
// with no shared memory, barriers or warp operations, so running every (block, thread) of a launch
// one after another is an exact emulation of their index logic. The launch grid is capped (see
// emu_grid_cap) so that the grid-stride loops run more than one iteration per thread.
// Device memory is host memory (malloc'd, filled with NaN, counted so the harness can check that
// scratch is returned); copies are memcpy; tsm_cuda_sgemm and tsm_cuda_sum are plain host loops
// defined by the harness (they are other files' kernels, not under test here).
#pragma once
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "tensorsmith.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

struct EmuDim3 {
  unsigned x = 1, y = 1, z = 1;
};
// One emulated thread at a time: plain globals.
inline EmuDim3 blockIdx, threadIdx, blockDim, gridDim;

typedef void* cudaStream_t;
enum cudaMemcpyKind { cudaMemcpyDeviceToDevice = 3 };

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __uint_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Counters the harness reads.
inline long emu_live_allocs = 0;
inline unsigned emu_grid_cap = 3;
inline char emu_last_error[512];

inline int cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
  std::memmove(dst, src, bytes);
  return 0;
}
inline int cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                             cudaMemcpyKind, cudaStream_t) {
  for (size_t r = 0; r < height; ++r)
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  return 0;
}

namespace tsm {
inline tsm_status fail(tsm_status s, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(emu_last_error, sizeof emu_last_error, fmt, ap);
  va_end(ap);
  return s;
}
namespace cuda {
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;
constexpr int kMaxDims = 8;
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline unsigned grid_for(int64_t work, int64_t per_block = kThreads) {
  int64_t b = ceil_div(work, per_block);
  if (b < 1) b = 1;
  return unsigned(b < kMaxBlocks ? b : kMaxBlocks);
}
inline int64_t global_thread() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
inline int64_t grid_threads() { return int64_t(gridDim.x) * blockDim.x; }
inline tsm_status check(int err, const char*) { return err == 0 ? TSM_OK : TSM_ERR_CUDA; }
inline tsm_status check_launch(const char*) { return TSM_OK; }
inline cudaStream_t stream(const char*) { return reinterpret_cast<cudaStream_t>(1); }
inline tsm_status device_alloc(void** p, size_t bytes, const char*) {
  const size_t n = (bytes + 3) / 4;
  uint32_t* q = static_cast<uint32_t*>(std::malloc(n * 4 + 4));
  for (size_t i = 0; i < n; ++i) q[i] = 0x7fc0dead;  // NaN: unwritten scratch shows
  *p = q;
  ++emu_live_allocs;
  return TSM_OK;
}
inline tsm_status device_free(void* p, const char*) {
  std::free(p);
  --emu_live_allocs;
  return TSM_OK;
}
}  // namespace cuda
}  // namespace tsm

#include "../../cuda/scratch.cuh"  // Scratch, on the stand-ins above

#define TSM_CUDA_TRY(expr, call)                                  \
  do {                                                            \
    tsm_status tsm_s_ = ::tsm::cuda::check((expr), (call));       \
    if (tsm_s_ != TSM_OK) return tsm_s_;                          \
  } while (0)

template <typename Kernel>
struct EmuLaunch {
  Kernel kernel;
  unsigned grid, block;
  template <typename... Args>
  void operator()(Args... args) const {
    gridDim.x = grid;
    blockDim.x = block;
    for (unsigned b = 0; b < grid; ++b)
      for (unsigned t = 0; t < block; ++t) {
        blockIdx.x = b;
        threadIdx.x = t;
        kernel(args...);
      }
  }
};
template <typename Kernel>
EmuLaunch<Kernel> emu_launch(Kernel k, unsigned grid, unsigned block) {
  return EmuLaunch<Kernel>{k, grid < emu_grid_cap ? grid : emu_grid_cap, block};
}
#define TSM_SEQ_LAUNCH(kernel, grid, block, st) emu_launch(kernel, (grid), (block))
