/*
 * tensorsmith.h — the stable C ABI of tensorsmith.
 *
 * This header is the one contract that the Node binding, the benchmarks and outside C/C++ users code
 * against. Rules:
 *   - Every function returns a tsm_status (or a plain value for queries) and never throws, exits or
 *     aborts. On failure, tsm_last_error() returns a message for the calling thread.
 *   - Matrices are row-major. Sizes and leading dimensions are explicit int64_t.
 *   - Argument order follows the kernels: outputs first, then inputs, then sizes.
 */
#ifndef TENSORSMITH_H
#define TENSORSMITH_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(TSM_BUILDING_LIBRARY)
#    define TSM_API __declspec(dllexport)
#  else
#    define TSM_API __declspec(dllimport)
#  endif
#else
#  define TSM_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define TSM_VERSION_MAJOR 0
#define TSM_VERSION_MINOR 1
#define TSM_VERSION_PATCH 0

typedef enum tsm_status {
  TSM_OK = 0,
  TSM_ERR_INVALID_ARGUMENT = 1, /* a size, stride or pointer is not acceptable */
  TSM_ERR_OUT_OF_MEMORY = 2,    /* an allocation failed */
  TSM_ERR_UNSUPPORTED = 3,      /* the operation is not available in this build or on this device */
  TSM_ERR_CUDA = 4,             /* a CUDA runtime call failed */
  TSM_ERR_INTERNAL = 5          /* a bug: please report it */
} tsm_status;

/* SIMD level chosen at run time by cpuid (or forced with TSM_SIMD=generic|avx2|avx512). */
typedef enum tsm_simd {
  TSM_SIMD_GENERIC = 0,
  TSM_SIMD_AVX2 = 1,
  TSM_SIMD_AVX512 = 2,
  TSM_SIMD_NEON = 3
} tsm_simd;

/* A static, human-readable description of a status code. */
TSM_API const char* tsm_status_string(tsm_status status);

/* The message of the last failure on the calling thread ("" if none). Valid until the next call. */
TSM_API const char* tsm_last_error(void);

/* "MAJOR.MINOR.PATCH" */
TSM_API const char* tsm_version(void);

/* The SIMD level in use and its name ("generic", "avx2", "avx512", "neon"). */
TSM_API tsm_simd tsm_get_simd(void);
TSM_API const char* tsm_simd_name(tsm_simd simd);

/* Threads used by the CPU kernels. n >= 1; n is capped at 1024. Default: TSM_NUM_THREADS, else the
 * number of physical cores available to the process. */
TSM_API tsm_status tsm_set_num_threads(int n);
TSM_API int tsm_get_num_threads(void);

/*
 * SGEMM, row-major with BLAS semantics:
 *   C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C
 * op(A) = A (A is m x k, lda >= k) or A^T (A is k x m, lda >= m) when trans_a != 0;
 * op(B) = B (B is k x n, ldb >= n) or B^T (B is n x k, ldb >= k) when trans_b != 0;
 * ldc >= n. When beta == 0, C is not read (NaN/Inf in C do not propagate).
 * m, n, k >= 0. A and B may be NULL when the product is empty (m, n or k is 0).
 */
TSM_API tsm_status tsm_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                             const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                             float* c, int64_t ldc);

/* Strided batched SGEMM: for i in [0, batch): C_i = alpha * op(A_i) * op(B_i) + beta * C_i with
 * A_i = a + i * stride_a (likewise b, c). A stride of 0 broadcasts one matrix to the whole batch
 * (not allowed for c). Same contract as tsm_sgemm for each product. */
TSM_API tsm_status tsm_sgemm_strided_batched(int trans_a, int trans_b, int64_t batch, int64_t m,
                                             int64_t n, int64_t k, float alpha, const float* a,
                                             int64_t lda, int64_t stride_a, const float* b,
                                             int64_t ldb, int64_t stride_b, float beta, float* c,
                                             int64_t ldc, int64_t stride_c);

/* The slow, obvious SGEMM (double accumulation), for tests and benchmarks. Same contract. */
TSM_API tsm_status tsm_sgemm_reference(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                       float alpha, const float* a, int64_t lda, const float* b,
                                       int64_t ldb, float beta, float* c, int64_t ldc);

/* ==== Tensor kernels (float32, contiguous, row-major / NCHW). Shapes are noted per argument. ==== */

/* ---- section: conv + pooling (cpp/kernels/conv2d.cpp, pool2d.cpp) ---- */
/* ---- end section: conv + pooling ---- */

/* ---- section: pointwise (elementwise, broadcast binary, reductions, softmax, cross-entropy, rng, dropout) ---- */
/* ---- end section: pointwise ---- */

/* ---- section: nn (layerNorm, batchNorm2d, embedding, optimizer updates) ---- */
/* ---- end section: nn ---- */

/* CUDA, when compiled in. tsm_cuda_device_count sets *count to 0 when no driver or GPU is present
 * and returns TSM_OK; it returns TSM_ERR_UNSUPPORTED only in builds without CUDA. */
TSM_API int tsm_cuda_compiled(void);
TSM_API tsm_status tsm_cuda_device_count(int* count);
TSM_API int tsm_cuda_runtime_version(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TENSORSMITH_H */
