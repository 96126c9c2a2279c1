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
/* LayerNorm over the last dimension (cpp/kernels/layer_norm.cpp):
 *   y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps), var biased (divides by cols).
 *   y, x: (rows, cols)   mean, rstd: (rows), written for the backward   w, b: (cols) or NULL.
 * Statistics accumulate in double. y may alias x. */
TSM_API tsm_status tsm_layer_norm_forward(float* y, float* mean, float* rstd, const float* x,
                                          const float* w, const float* b, int64_t rows,
                                          int64_t cols, float eps);
/* dx, dy, x: (rows, cols)   mean, rstd: (rows) from the forward   w: (cols) or NULL.
 * dw, db: (cols) or NULL, overwritten. Deterministic: the result does not depend on the thread count. */
TSM_API tsm_status tsm_layer_norm_backward(float* dx, float* dw, float* db, const float* dy,
                                           const float* x, const float* mean, const float* rstd,
                                           const float* w, int64_t rows, int64_t cols);

/* BatchNorm over (N, C, HW), statistics per channel over N * HW values (cpp/kernels/batch_norm.cpp).
 *   y, x: (n, c, hw)   save_mean, save_invstd: (c)   running_mean, running_var: (c) or NULL
 *   w, b: (c) or NULL.
 * training != 0: normalises with the batch mean and biased variance; writes them (mean and
 *   1/sqrt(var + eps)) to save_*; updates the running stats in place when given:
 *   running = (1 - momentum) * running + momentum * batch, with the unbiased variance for
 *   running_var. Needs n * hw > 1 (as PyTorch).
 * training == 0: normalises with the running stats (required) and writes mean and
 *   1/sqrt(running_var + eps) to save_*. */
TSM_API tsm_status tsm_batch_norm_forward(float* y, float* save_mean, float* save_invstd,
                                          float* running_mean, float* running_var, const float* x,
                                          const float* w, const float* b, int64_t n, int64_t c,
                                          int64_t hw, int training, float momentum, float eps);
/* dx, dy, x: (n, c, hw)   save_mean, save_invstd: (c) from the forward   w: (c) or NULL
 * dw, db: (c) or NULL, overwritten. training != 0: full backward through the batch statistics;
 * training == 0: dx = dy * w * invstd (statistics are constants). */
TSM_API tsm_status tsm_batch_norm_backward(float* dx, float* dw, float* db, const float* dy,
                                           const float* x, const float* save_mean,
                                           const float* save_invstd, const float* w, int64_t n,
                                           int64_t c, int64_t hw, int training);

/* Embedding lookup (cpp/kernels/embedding.cpp).
 *   y: (n, dim)   indices: (n), each in [0, num_embeddings)   weight: (num_embeddings, dim)
 * All indices are checked before anything is written. */
TSM_API tsm_status tsm_embedding_forward(float* y, const int32_t* indices, const float* weight,
                                         int64_t n, int64_t num_embeddings, int64_t dim);
/*   dweight: (num_embeddings, dim), overwritten: zeroed, then dy's rows scatter-added
 *   dy: (n, dim)   indices: (n)   padding_idx: a row that gets no gradient, or -1 for none.
 * Deterministic: each row sums its contributions in index order, whatever the thread count. */
TSM_API tsm_status tsm_embedding_backward(float* dweight, const float* dy, const int32_t* indices,
                                          int64_t n, int64_t num_embeddings, int64_t dim,
                                          int64_t padding_idx);

/* Optimizer updates (cpp/kernels/optim.cpp), one call for a list of `count` tensors: tensor i has
 * sizes[i] elements in params[i], grads[i] and each state list. The arithmetic follows
 * torch.optim (1.13+, single-tensor path) in float32 with the hyper-parameters rounded to float.
 *
 * SGD: d = maximize ? -g : g;  d += weight_decay * p;
 *   if momentum != 0: buf = first_step ? d : momentum * buf + (1 - dampening) * d;
 *                     d = nesterov ? d + momentum * buf : buf
 *   p -= lr * d.   momentum_bufs may be NULL when momentum == 0. */
TSM_API tsm_status tsm_sgd_step(float* const* params, float* const* momentum_bufs,
                                const float* const* grads, const int64_t* sizes, int64_t count,
                                double lr, double momentum, double dampening, double weight_decay,
                                int nesterov, int maximize, int first_step);
/* Adam / AdamW. step is 1-based (already incremented). decoupled != 0 (AdamW): p *= 1 - lr * wd;
 * otherwise g += wd * p. m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
 * amsgrad: vmax = max(vmax, v) and vmax replaces v below;
 * p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps).
 * max_exp_avg_sq may be NULL unless amsgrad. */
TSM_API tsm_status tsm_adam_step(float* const* params, float* const* exp_avg,
                                 float* const* exp_avg_sq, float* const* max_exp_avg_sq,
                                 const float* const* grads, const int64_t* sizes, int64_t count,
                                 double lr, double beta1, double beta2, double eps,
                                 double weight_decay, int64_t step, int amsgrad, int decoupled,
                                 int maximize);
/* RMSprop. g = maximize ? -g : g; g += wd * p; s = alpha s + (1 - alpha) g^2;
 * centered: ga = alpha ga + (1 - alpha) g, avg = sqrt(s - ga^2) + eps; else avg = sqrt(s) + eps;
 * momentum > 0: buf = momentum buf + g / avg, p -= lr buf; else p -= lr g / avg.
 * momentum_buf may be NULL when momentum == 0, grad_avg when !centered. State starts at zero. */
TSM_API tsm_status tsm_rmsprop_step(float* const* params, float* const* square_avg,
                                    float* const* momentum_buf, float* const* grad_avg,
                                    const float* const* grads, const int64_t* sizes, int64_t count,
                                    double lr, double alpha, double eps, double weight_decay,
                                    double momentum, int centered, int maximize);
/* arrays[i][0 .. sizes[i]) *= factor, for every i (gradient clipping). */
TSM_API tsm_status tsm_scale_inplace(float* const* arrays, const int64_t* sizes, int64_t count,
                                     float factor);
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
