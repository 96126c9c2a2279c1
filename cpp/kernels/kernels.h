// Internal entry points shared between kernels (no argument checks: callers have done them).
#pragma once
#include <cstdint>

#include "tensorsmith.h"

namespace tsm {

// Row-major SGEMM, BLAS semantics, multi-threaded (see sgemm.cpp). Runs on the thread pool, so it
// must not be called from inside a parallel_for task (it would run serially there, which is correct
// but slow).
tsm_status sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc);

}  // namespace tsm
