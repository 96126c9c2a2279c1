// Internal runtime services shared by the kernels: error state, CPU features, the thread pool and
// aligned allocation. Not part of the public ABI.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "tensorsmith.h"

namespace tsm {

// ---- error state (per thread) ----
// Records a message for tsm_last_error() and returns the status, so kernels can write
//   if (m < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "sgemm: m must be >= 0, got %lld", m);
tsm_status fail(tsm_status status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void clear_error();

// ---- CPU features ----
struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, neon = false;
};
const CpuFeatures& cpu_features();
tsm_simd active_simd();  // what the kernels dispatch on (cpuid, narrowed by TSM_SIMD)

// ---- thread pool ----
int num_threads();
// Runs fn(task) for task in [0, ntasks) on up to num_threads() threads, the caller included, and
// returns when all are done. Safe to call from any thread; when the pool is busy with another
// caller (another JS worker), the tasks run on the calling thread. fn must not throw.
void parallel_for(int64_t ntasks, const std::function<void(int64_t)>& fn);

// ---- aligned memory ----
constexpr size_t kAlign = 64;
void* aligned_malloc(size_t bytes);  // nullptr on failure (never throws)
void aligned_free(void* p);

// A per-thread scratch buffer that grows and is reused (packing buffers of the GEMM and friends).
// Slot selects independent buffers. Returns nullptr on allocation failure. Slots 0 and 1 belong to
// sgemm; a kernel that calls sgemm while holding a scratch buffer must use slots 2 and 3.
float* scratch(int slot, size_t floats);

}  // namespace tsm
