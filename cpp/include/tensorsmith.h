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

/*
 * 2-D convolution, float32, contiguous NCHW, exactly torch.nn.functional.conv2d:
 *   x    (N, C, H, W)
 *   w    (OC, C/groups, KH, KW)
 *   bias (OC) or NULL
 *   y    (N, OC, OH, OW)
 *   OH = floor((H + 2*pad_h - dil_h*(KH-1) - 1) / stride_h) + 1   (OW likewise)
 * Requirements: n, c, h, w, oc, kh, kw, stride, dilation, groups >= 1; pad >= 0; c and oc divisible
 * by groups; OH, OW >= 1. Outputs are overwritten, never accumulated into.
 */
typedef struct tsm_conv2d_desc {
  int64_t n, c, h, w, oc, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
} tsm_conv2d_desc;

/* Output height and width of a convolution (no validation beyond the formula). */
TSM_API tsm_status tsm_conv2d_output_size(int64_t* oh, int64_t* ow, const tsm_conv2d_desc* d);

/* y (N,OC,OH,OW) = conv(x (N,C,H,W), w (OC,C/g,KH,KW)) + bias (OC, nullable) */
TSM_API tsm_status tsm_conv2d_forward(float* y, const float* x, const float* w, const float* bias,
                                      const tsm_conv2d_desc* d);
/* dx (N,C,H,W) = d loss / d x, from dy (N,OC,OH,OW) and w (OC,C/g,KH,KW) */
TSM_API tsm_status tsm_conv2d_backward_data(float* dx, const float* dy, const float* w,
                                            const tsm_conv2d_desc* d);
/* dw (OC,C/g,KH,KW) and dbias (OC, nullable) from dy (N,OC,OH,OW) and x (N,C,H,W) */
TSM_API tsm_status tsm_conv2d_backward_weight(float* dw, float* dbias, const float* dy,
                                              const float* x, const tsm_conv2d_desc* d);

/*
 * 2-D pooling, float32, contiguous NCHW, as torch.nn.functional.max_pool2d / avg_pool2d.
 *   x (N, C, H, W), y (N, C, OH, OW) with OH = tsm_pool2d_output_size(H, kh, stride_h, pad_h,
 *   dil_h, ceil_mode). Requirements: sizes, kernel, stride, dilation >= 1; 0 <= pad <= kernel/2;
 *   OH, OW >= 1. Average pooling ignores dil_h/dil_w (set them to 1).
 * ceil_mode follows PyTorch: the output grows by one when a partial window remains, unless that
 * last window would start in the right/bottom padding.
 */
typedef struct tsm_pool2d_desc {
  int64_t n, c, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int32_t ceil_mode, count_include_pad; /* count_include_pad: avg pooling only */
} tsm_pool2d_desc;

/* Planes of the input (h x w) and of the output (oh x ow): for adaptive pooling and for the
 * scatter of max-pooling's backward, which needs no window. */
typedef struct tsm_pool2d_shape {
  int64_t n, c, h, w, oh, ow;
} tsm_pool2d_shape;

/* PyTorch's pooling_output_shape; returns -1 when the arguments are invalid (size, kernel, stride,
 * dilation < 1, pad < 0) and a value < 1 when the window does not fit. */
TSM_API int64_t tsm_pool2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                                       int64_t dilation, int ceil_mode);

/* y (N,C,OH,OW) = max over each window of x (N,C,H,W); indices (N,C,OH,OW) = flat index
 * ih*W + iw of the winner within its input plane. NaN wins (the last NaN of the window). */
TSM_API tsm_status tsm_max_pool2d_forward(float* y, int32_t* indices, const float* x,
                                          const tsm_pool2d_desc* d);
/* As tsm_max_pool2d_forward applied to relu(x) (tsm_unary_forward's RELU: x > 0 ? x : 0, so NaN
 * and -0 count as +0), without writing relu(x) out: y and indices are bit-identical to that
 * composition. How a ReLU followed by max pooling runs as one pass over x. */
TSM_API tsm_status tsm_max_pool2d_relu_forward(float* y, int32_t* indices, const float* x,
                                               const tsm_pool2d_desc* d);
/* dx (N,C,H,W) = scatter-add of dy (N,C,OH,OW) at indices (N,C,OH,OW), each in [0, H*W) (checked:
 * TSM_ERR_INVALID_ARGUMENT otherwise). */
TSM_API tsm_status tsm_max_pool2d_backward(float* dx, const float* dy, const int32_t* indices,
                                           const tsm_pool2d_shape* s);
/* The gradient with respect to z of y = max_pool2d(relu(z)) without dilation
 * (tsm_max_pool2d_relu_forward): dx (N,C,H,W) = scatter-add of (y > 0 ? dy : 0) at indices, as
 * tsm_max_pool2d_backward followed by the ReLU's backward. (With dilation a window can hold only
 * padding; its gradient then goes to a clamped position this mask does not cover.) */
TSM_API tsm_status tsm_max_pool2d_relu_backward(float* dx, const float* dy, const float* y,
                                                const int32_t* indices,
                                                const tsm_pool2d_shape* s);
/* A convolution and the max pooling of its output (through a ReLU when relu != 0) in one pass,
 * without writing the convolution's output: y and indices as tsm_max_pool2d_forward (or
 * tsm_max_pool2d_relu_forward) of z = tsm_conv2d_forward(x, w, bias, c), where p describes the
 * pooling of z (p->n, p->c, p->h, p->w must be N, OC, OH, OW of the convolution). Each plane of z is
 * computed into a buffer and pooled there (C/groups*KH*KW multiply-adds per element of z: meant for
 * convolutions with few taps per output, such as a CNN's first layer). z is summed in this kernel's
 * own order, so y agrees with the composition to rounding (an index can differ where two taps tie to
 * within it). */
TSM_API tsm_status tsm_conv2d_max_pool2d_forward(float* y, int32_t* indices, const float* x,
                                                 const float* w, const float* bias,
                                                 const tsm_conv2d_desc* c,
                                                 const tsm_pool2d_desc* p, int relu);
/* The backward of a convolution whose output only a max pooling reads (through a ReLU or not):
 * dx (N,C,H,W), dw (OC,C/g,KH,KW) and dbias (OC), each nullable, from the pooling's dy (N,OC,POH,POW),
 * indices and, when the pooling read through a ReLU, its output y (nullable otherwise); x is needed
 * for dw, w for dx. The gradient with respect to the convolution's output z is the pooling's scatter
 * of dy (where y > 0 with y, a select): it is never formed, each pooled gradient going to the weights
 * and to dx from the patch under its winner, so the work is that of the pooled outputs (a quarter of
 * z's under a 2x2 pooling, and only those with a nonzero gradient) rather than all of z's. z may come
 * from tsm_conv2d_forward or tsm_conv2d_max_pool2d_forward. Every index must lie in [0, OH*OW)
 * (checked). A NaN or infinity in x or w reaches the gradients only through a winner's patch with a
 * nonzero gradient (the dense backward multiplies every element of x by the zeros too). Not for a
 * ReLU pooling with dilation, whose windows can lie wholly in the padding (see
 * tsm_max_pool2d_relu_backward). */
TSM_API tsm_status tsm_conv2d_max_pool2d_backward(float* dx, float* dw, float* dbias, const float* dy,
                                                  const float* y, const int32_t* indices,
                                                  const float* x, const float* w,
                                                  const tsm_conv2d_desc* c, int64_t poh,
                                                  int64_t pow_);
/* tsm_conv2d_max_pool2d_backward without dx (dw must not be NULL). */
TSM_API tsm_status tsm_conv2d_max_pool2d_backward_weight(float* dw, float* dbias, const float* dy,
                                                         const float* y, const int32_t* indices,
                                                         const float* x, const tsm_conv2d_desc* c,
                                                         int64_t poh, int64_t pow_);
/* y (N,C,OH,OW) = mean over each window of x (N,C,H,W); the divisor is the window clipped to the
 * padded input (count_include_pad) or to the input (otherwise), as PyTorch. */
TSM_API tsm_status tsm_avg_pool2d_forward(float* y, const float* x, const tsm_pool2d_desc* d);
/* dx (N,C,H,W) from dy (N,C,OH,OW) */
TSM_API tsm_status tsm_avg_pool2d_backward(float* dx, const float* dy, const tsm_pool2d_desc* d);
/* y (N,C,OH,OW) = mean of x (N,C,H,W) over rows [floor(i*H/OH), ceil((i+1)*H/OH)) (cols likewise) */
TSM_API tsm_status tsm_adaptive_avg_pool2d_forward(float* y, const float* x,
                                                   const tsm_pool2d_shape* s);
/* dx (N,C,H,W) from dy (N,C,OH,OW) */
TSM_API tsm_status tsm_adaptive_avg_pool2d_backward(float* dx, const float* dy,
                                                    const tsm_pool2d_shape* s);

/* ---- end section: conv + pooling ---- */

/* ---- section: pointwise (elementwise, broadcast binary, reductions, softmax, cross-entropy, rng, dropout) ---- */
/*
 * All tensors are float32 and contiguous unless strides are given. n is an element count >= 0;
 * pointers may be NULL when the tensor they point to is empty. In-place use (output == input) is
 * allowed for the elementwise kernels (unary, binary with a same-shape contiguous operand, scalar).
 */

/* Unary ops: y = f(x). The codes are fixed; the TypeScript layer mirrors them. */
typedef enum tsm_unary_op {
  TSM_UNARY_RELU = 0,
  TSM_UNARY_SIGMOID = 1,
  TSM_UNARY_TANH = 2,
  TSM_UNARY_GELU = 3,      /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
  TSM_UNARY_GELU_TANH = 4, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
  TSM_UNARY_EXP = 5,
  TSM_UNARY_LOG = 6,
  TSM_UNARY_SQRT = 7,
  TSM_UNARY_ABS = 8,
  TSM_UNARY_NEG = 9,
  TSM_UNARY_SILU = 10,
  TSM_UNARY_SQUARE = 11,
  TSM_UNARY_RECIPROCAL = 12,
  TSM_UNARY_SIN = 13,
  TSM_UNARY_COS = 14,
  TSM_UNARY_RSQRT = 15,
  TSM_UNARY_OP_COUNT = 16
} tsm_unary_op;

/* y[n] = f(x[n]). */
TSM_API tsm_status tsm_unary_forward(int op, float* y, const float* x, int64_t n);
/* dx[n] = dy[n] * f'(x[n]). x is the forward input, y the forward output; each op reads only the one
 * that is cheaper or stabler (the other may be NULL):
 *   reads y: sigmoid, tanh, exp, sqrt, reciprocal, rsqrt
 *   reads x: relu, gelu, gelu_tanh, log, abs, neg (neither, really), silu, square, sin, cos */
TSM_API tsm_status tsm_unary_backward(int op, float* dx, const float* x, const float* y,
                                      const float* dy, int64_t n);
/* 1 when tsm_unary_backward reads y for this op, 0 when it reads x, -1 for a bad op code. */
TSM_API int tsm_unary_backward_reads_y(int op);

/* Binary ops: out = a op b. Comparisons give 1.0f or 0.0f. maximum/minimum propagate NaN. */
typedef enum tsm_binary_op {
  TSM_BINARY_ADD = 0,
  TSM_BINARY_SUB = 1,
  TSM_BINARY_MUL = 2,
  TSM_BINARY_DIV = 3,
  TSM_BINARY_POW = 4,
  TSM_BINARY_MAXIMUM = 5,
  TSM_BINARY_MINIMUM = 6,
  TSM_BINARY_EQ = 7,
  TSM_BINARY_NE = 8,
  TSM_BINARY_LT = 9,
  TSM_BINARY_LE = 10,
  TSM_BINARY_GT = 11,
  TSM_BINARY_GE = 12,
  TSM_BINARY_OP_COUNT = 13
} tsm_binary_op;

/* Broadcasting binary op. out is contiguous with shape out_shape[ndim] (0 <= ndim <= 8, every size
 * >= 0); a and b are read at element offsets sum_d idx[d] * stride[d] (strides >= 0, 0 on
 * broadcast dims). The caller guarantees a and b span the elements those strides reach.
 * out may alias a (or b) only when that operand is contiguous with out_shape. */
TSM_API tsm_status tsm_binary_forward(int op, float* out, const float* a, const float* b, int ndim,
                                      const int64_t* out_shape, const int64_t* a_strides,
                                      const int64_t* b_strides);
/* out[n] = x[n] op s, or s op x[n] when reverse != 0. */
TSM_API tsm_status tsm_scalar_forward(int op, float* out, const float* x, float s, int reverse,
                                      int64_t n);

/* Reductions over the middle axis of x viewed as (outer, dim, inner). */
typedef enum tsm_reduce_op {
  TSM_REDUCE_SUM = 0,  /* double accumulation */
  TSM_REDUCE_MEAN = 1, /* NaN when dim == 0 */
  TSM_REDUCE_MAX = 2,  /* NaN propagates; dim must be > 0 */
  TSM_REDUCE_MIN = 3,  /* NaN propagates; dim must be > 0 */
  TSM_REDUCE_PROD = 4, /* double accumulation */
  TSM_REDUCE_OP_COUNT = 5
} tsm_reduce_op;

/* out (outer, inner) = reduce over dim of x (outer, dim, inner). */
TSM_API tsm_status tsm_reduce_forward(int op, float* out, const float* x, int64_t outer,
                                      int64_t dim, int64_t inner);
/* out (outer, inner) = index along dim of the first maximum (is_max != 0) or minimum of
 * x (outer, dim, inner); a NaN counts as the maximum and as the minimum (first NaN wins).
 * dim must be > 0 and < 2^31 unless outer * inner == 0. */
TSM_API tsm_status tsm_arg_reduce(int32_t* out, const float* x, int64_t outer, int64_t dim,
                                  int64_t inner, int is_max);
/* The backward of broadcasting: out (out_shape) = x (x_shape) summed over every dim d where
 * out_shape[d] == 1 != x_shape[d]; otherwise out_shape[d] == x_shape[d]. Both contiguous,
 * 0 <= ndim <= 8. */
TSM_API tsm_status tsm_sum_to_shape(float* out, const float* x, int ndim, const int64_t* x_shape,
                                    const int64_t* out_shape);

/* Softmax over the middle axis of (outer, dim, inner), numerically stable (the max is subtracted).
 * log != 0 gives log-softmax. y (outer, dim, inner), x (outer, dim, inner); y may alias x. */
TSM_API tsm_status tsm_softmax_forward(float* y, const float* x, int64_t outer, int64_t dim,
                                       int64_t inner, int log);
/* dx (outer, dim, inner) from y (the forward output) and dy, both (outer, dim, inner).
 *   softmax:     dx = y * (dy - sum_dim(dy * y))
 *   log-softmax: dx = dy - exp(y) * sum_dim(dy) */
TSM_API tsm_status tsm_softmax_backward(float* dx, const float* y, const float* dy, int64_t outer,
                                        int64_t dim, int64_t inner, int log);

/* Cross-entropy on logits, as torch.nn.CrossEntropyLoss(reduction='none', ignore_index,
 * label_smoothing = eps in [0, 1]):
 *   log_probs (n, c) = log_softmax(logits (n, c)) along c
 *   losses (n)       = -(1 - eps) * log_probs[i, t_i] - eps / c * sum_j log_probs[i, j]
 *                      and 0 where targets[i] == ignore_index.
 * targets (n) must lie in [0, c) unless equal to ignore_index. c >= 1 when n > 0. */
TSM_API tsm_status tsm_cross_entropy_forward(float* losses, float* log_probs, const float* logits,
                                             const int32_t* targets, int64_t n, int64_t c,
                                             int64_t ignore_index, float label_smoothing);
/* dlogits (n, c) = dlosses[i] * (exp(log_probs[i, :]) - (1 - eps) onehot(t_i) - eps / c), and 0 for
 * ignored rows. log_probs (n, c), targets (n), dlosses (n). */
TSM_API tsm_status tsm_cross_entropy_backward(float* dlogits, const float* log_probs,
                                              const int32_t* targets, const float* dlosses,
                                              int64_t n, int64_t c, int64_t ignore_index,
                                              float label_smoothing);

/* Counter-based random numbers: Philox4x32-10 with key = (seed low 32 bits, seed high 32 bits) and
 * 128-bit counter = (offset + i / 4) for element i, lane i % 4 of that block. The result depends only
 * on (seed, offset, i), never on the thread count. A call of n elements consumes ceil(n / 4) counter
 * blocks: pass offset + ceil(n / 4) to the next call for fresh numbers.
 * From 32 random bits: u = (bits >> 8) * 2^-24 in [0, 1), v = ((bits >> 8) + 1) * 2^-24 in (0, 1]. */
/* out (n) = low + (high - low) * u, in [low, high) (low <= high, both finite). */
TSM_API tsm_status tsm_rng_uniform(float* out, uint64_t seed, uint64_t offset, float low, float high,
                                   int64_t n);
/* out (n) normal(mean, std) by Box-Muller: lanes (0,1) and (2,3) of a block form the pairs (v, u):
 * r = sqrt(-2 ln v), out = mean + std * r * (cos 2 pi u, sin 2 pi u). */
TSM_API tsm_status tsm_rng_normal(float* out, uint64_t seed, uint64_t offset, float mean, float std,
                                  int64_t n);

/* Inverted dropout: mask[i] = (u_i >= p) ? 1 / (1 - p) : 0 with u_i the Philox uniform of element i
 * (as tsm_rng_uniform with low 0, high 1), y[i] = x[i] * mask[i]. p in [0, 1]; p == 1 gives zeros.
 * y (n), mask (n), x (n); y may alias x, mask may not. The backward is dx = dy * mask
 * (tsm_binary_forward with MUL). */
TSM_API tsm_status tsm_dropout_forward(float* y, float* mask, const float* x, double p, uint64_t seed,
                                       uint64_t offset, int64_t n);

/* *result = sum x[i]^2 in double (for gradient-norm clipping); x (n). */
TSM_API tsm_status tsm_sum_of_squares(double* result, const float* x, int64_t n);
/* *result = 1 when every x[i] is finite (no NaN or Inf), else 0; x (n). */
TSM_API tsm_status tsm_all_finite(int* result, const float* x, int64_t n);
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

/* ---- section: attention (cpp/kernels/attention.cpp) ---- */
/*
 * Fused scaled-dot-product attention, float32, contiguous (B, H, L, D), as PyTorch 2's
 * F.scaled_dot_product_attention (math semantics), computed flash-style: keys are processed in tiles
 * with an online softmax, so no Lq x Lk matrix is ever stored (memory O(L * D) per head plus
 * per-thread tiles). The backward recomputes the scores tile by tile (FlashAttention-2).
 *
 *   q (B, H, Lq, D)   k, v (B, H, Lk, D)   out (B, H, Lq, D)   lse (B, H, Lq)
 *   S = scale * q k^T + mask         (B, H, Lq, Lk), never materialised
 *   P = softmax(S) along Lk;  out = dropout(P) v;  lse[i] = log sum_j exp(S[i, j])
 *
 * Masks, read at mask[b*s0 + h*s1 + i*s2 + j*s3] with strides >= 0 (0 broadcasts a dimension):
 *   TSM_ATTN_MASK_BOOL_U8 / _I32  nonzero = attend, zero = masked out (PyTorch SDPA's bool mask)
 *   TSM_ATTN_MASK_FLOAT           added to the scores (-inf masks out)
 * is_causal: query i attends keys j <= i (top-left aligned, as PyTorch's is_causal); combines with
 *   a mask. A row with every key masked out gives out = 0, lse = +inf and zero gradients.
 * dropout_p in [0, 1): P[i, j] is kept with probability 1 - p and scaled by 1 / (1 - p), decided
 *   by the Philox uniform u of element ((b*H + h)*Lq + i)*Lk + j for (seed, offset) exactly as
 *   tsm_dropout_forward: kept when u >= p. A call consumes ceil(B*H*Lq*Lk / 4) counter blocks.
 * Sizes: b, h, lq, lk, d >= 1 (an empty tensor is a no-op); scale finite.
 */
typedef enum tsm_attn_mask_kind {
  TSM_ATTN_MASK_NONE = 0,
  TSM_ATTN_MASK_BOOL_U8 = 1,
  TSM_ATTN_MASK_BOOL_I32 = 2,
  TSM_ATTN_MASK_FLOAT = 3
} tsm_attn_mask_kind;

typedef struct tsm_attention_desc {
  int64_t b, h, lq, lk, d;
  float scale;               /* usually 1 / sqrt(d) */
  int32_t is_causal;
  int32_t mask_kind;         /* tsm_attn_mask_kind */
  const void* mask;          /* NULL when mask_kind == TSM_ATTN_MASK_NONE */
  int64_t mask_strides[4];   /* element strides of (b, h, i, j) */
  double dropout_p;
  uint64_t seed, offset;     /* Philox key and first counter block */
} tsm_attention_desc;

/* out (B,H,Lq,D), lse (B,H,Lq) from q (B,H,Lq,D), k (B,H,Lk,D), v (B,H,Lk,D). */
TSM_API tsm_status tsm_attention_forward(float* out, float* lse, const float* q, const float* k,
                                         const float* v, const tsm_attention_desc* d);
/* dq (B,H,Lq,D), dk, dv (B,H,Lk,D), overwritten, from dout (B,H,Lq,D) and the forward's q, k, v,
 * out (B,H,Lq,D) and lse (B,H,Lq), with the same descriptor (the dropout pattern is regenerated). */
TSM_API tsm_status tsm_attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                          const float* q, const float* k, const float* v,
                                          const float* out, const float* lse,
                                          const tsm_attention_desc* d);
/* The slow, obvious forward (double accumulation, one full score row at a time), for tests and
 * benchmarks. Same contract as tsm_attention_forward (lse may be NULL). */
TSM_API tsm_status tsm_attention_forward_reference(float* out, float* lse, const float* q,
                                                   const float* k, const float* v,
                                                   const tsm_attention_desc* d);
/* ---- end section: attention ---- */

/* ---- section: lstm (cpp/kernels/lstm.cpp) ---- */
/* One LSTM layer, one direction, over a whole sequence. Gates in PyTorch's order i, f, g, o:
 *   G_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh                      (B, 4H)
 *   i = sigmoid(G_i), f = sigmoid(G_f), g = tanh(G_g), o = sigmoid(G_o)
 *   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
 * Layout: batch_first == 0: x (T, B, I), y (T, B, H); batch_first != 0: x (B, T, I), y (B, T, H).
 *   y: the h_t of every step.   h_n, c_n: (B, H), the last step's state.
 *   gates: (T*B, 4H) in x's row order, written: the activations i, f, g, o (for the backward).
 *   cs: (T*B, H) in y's row order, written: c_t of every step (for the backward).
 *   h0, c0: (B, H) or NULL for zeros.   w_ih: (4H, I)   w_hh: (4H, H)   b_ih, b_hh: (4H) or NULL.
 * T, B, I >= 0, H >= 1. The input GEMM of all steps runs as one product; each step runs the
 * recurrent product and the gate nonlinearities and state update in one parallel pass. */
TSM_API tsm_status tsm_lstm_forward(float* y, float* h_n, float* c_n, float* gates, float* cs,
                                    const float* x, const float* h0, const float* c0,
                                    const float* w_ih, const float* w_hh, const float* b_ih,
                                    const float* b_hh, int64_t T, int64_t B, int64_t I, int64_t H,
                                    int batch_first);
/* Backward through time of tsm_lstm_forward. Inputs: dy (layout of y) or NULL for zeros;
 * dh_n, dc_n: (B, H) or NULL for zeros; x, h0, c0, w_ih, w_hh as given to the forward; y, gates, cs
 * as written by it. Outputs, each overwritten, or NULL when not wanted: dx (layout of x),
 * dh0, dc0: (B, H), dw_ih: (4H, I), dw_hh: (4H, H), db_ih, db_hh: (4H) (both the same sum).
 * The weight gradients are products over all steps at once (dW_ih = dG^T X, dW_hh = dG^T H_prev).
 * Deterministic: results do not depend on the thread count. */
TSM_API tsm_status tsm_lstm_backward(float* dx, float* dh0, float* dc0, float* dw_ih, float* dw_hh,
                                     float* db_ih, float* db_hh, const float* dy, const float* dh_n,
                                     const float* dc_n, const float* x, const float* h0,
                                     const float* c0, const float* w_ih, const float* w_hh,
                                     const float* y, const float* gates, const float* cs,
                                     int64_t T, int64_t B, int64_t I, int64_t H, int batch_first);
/* ---- end section: lstm ---- */

/* ---- section: cuda (the .cu files of cuda/runtime and cuda/; stand-ins in cpp/runtime/cuda_stub.cpp) ----
 *
 * Device memory and GEMM kernels on NVIDIA GPUs. Every function returns TSM_ERR_UNSUPPORTED (with a
 * message) in builds without CUDA. Every failing CUDA runtime call returns TSM_ERR_CUDA with
 * "cudaXxx: <CUDA's message>" in tsm_last_error(); nothing aborts. Pointers passed as device memory
 * must come from tsm_cuda_malloc (or any cudaMalloc'd memory of the current device).
 *
 * Streams: each device has one stream owned by the library; kernels and copies are queued on the
 * current device's stream in call order. tsm_cuda_memcpy_h2d/d2h return when the host buffer may be
 * reused (d2h: when the data has arrived); GEMMs return once queued (asynchronous).
 */

/* The current device of the calling thread (default 0). */
TSM_API tsm_status tsm_cuda_set_device(int device);
TSM_API tsm_status tsm_cuda_get_device(int* device);
/* Name ("NVIDIA H100 80GB HBM3"), compute capability and multiprocessor count of a device. */
TSM_API tsm_status tsm_cuda_device_info(int device, char* name, size_t name_len, int* cc_major,
                                        int* cc_minor, int* multiprocessors, size_t* total_memory);
/* The library's stream of the current device, as a cudaStream_t, for interop (e.g. cuBLAS). */
TSM_API tsm_status tsm_cuda_get_stream(void** stream);
/* Waits until all work queued on the current device's stream has finished. */
TSM_API tsm_status tsm_cuda_synchronize(void);

/* Caching allocator. tsm_cuda_malloc returns 256-byte aligned device memory of the current device
 * (bytes == 0 gives NULL and TSM_OK). Freed blocks stay cached for reuse (size buckets: multiples of
 * 512 B up to 1 MiB, of 2 MiB above); on out-of-memory the cache is released and the allocation
 * retried once. tsm_cuda_free(NULL) is a no-op. Memory freed while kernels using it are still queued
 * is safe: reuse is ordered on the same stream. */
TSM_API tsm_status tsm_cuda_malloc(void** ptr, size_t bytes);
TSM_API tsm_status tsm_cuda_free(void* ptr);
/* Returns the cached (unused) blocks of every device to the driver. */
TSM_API tsm_status tsm_cuda_empty_cache(void);

typedef struct tsm_cuda_memory_stats {
  uint64_t allocated_bytes;      /* held by live allocations (rounded to buckets) */
  uint64_t reserved_bytes;       /* obtained from cudaMalloc: allocated + cached */
  uint64_t peak_allocated_bytes; /* high-water mark of allocated_bytes */
  uint64_t num_allocs;           /* tsm_cuda_malloc calls that returned memory */
  uint64_t num_cache_hits;       /* ...of which served from the cache */
  uint64_t num_device_allocs;    /* cudaMalloc calls made */
  uint64_t num_oom_retries;      /* out-of-memory retries after releasing the cache */
} tsm_cuda_memory_stats;
/* Statistics summed over all devices. */
TSM_API tsm_status tsm_cuda_memory_stats_get(tsm_cuda_memory_stats* stats);

/* Copies through pinned staging buffers (falls back to pageable copies when pinning fails). */
TSM_API tsm_status tsm_cuda_memcpy_h2d(void* dst_device, const void* src_host, size_t bytes);
TSM_API tsm_status tsm_cuda_memcpy_d2h(void* dst_host, const void* src_device, size_t bytes);
TSM_API tsm_status tsm_cuda_memcpy_d2d(void* dst_device, const void* src_device, size_t bytes);
/* Fills bytes of device memory with the byte value (e.g. 0xFF poisons floats with NaN). */
TSM_API tsm_status tsm_cuda_memset(void* dst_device, int value, size_t bytes);

/* Storage type of a device matrix. */
typedef enum tsm_cuda_dtype {
  TSM_CUDA_F32 = 0,
  TSM_CUDA_BF16 = 1,
  TSM_CUDA_F16 = 2
} tsm_cuda_dtype;

/* What a GEMM computes with. A and B are stored as float32 for F32 and TF32, as bfloat16 for BF16,
 * as float16 for F16; accumulation is float32 in every case. TF32 rounds A and B to tf32
 * (10-bit mantissa, round to nearest) for the tensor cores. */
typedef enum tsm_cuda_gemm_type {
  TSM_CUDA_GEMM_F32 = 0,  /* CUDA cores, exact float32 FMAs (SGEMM) */
  TSM_CUDA_GEMM_TF32 = 1, /* tensor cores */
  TSM_CUDA_GEMM_BF16 = 2, /* tensor cores */
  TSM_CUDA_GEMM_F16 = 3   /* tensor cores */
} tsm_cuda_gemm_type;

typedef enum tsm_cuda_activation {
  TSM_CUDA_ACT_NONE = 0,
  TSM_CUDA_ACT_RELU = 1,
  TSM_CUDA_ACT_GELU = 2 /* exact: x * Phi(x) with erf, as torch's default */
} tsm_cuda_activation;

/* Which kernel family a GEMM uses. AUTO picks the fastest that applies: SIMT for F32; WGMMA on
 * sm_90 devices (binaries with sm_90a code) when the layout allows it, else MMA. Forcing a family
 * that cannot run the call returns TSM_ERR_UNSUPPORTED. Process-wide; for tests and benchmarks. */
typedef enum tsm_cuda_gemm_algo {
  TSM_CUDA_ALGO_AUTO = 0,
  TSM_CUDA_ALGO_SIMT = 1,  /* cuda/gemm_sgemm.cu: F32 only */
  TSM_CUDA_ALGO_MMA = 2,   /* cuda/gemm_mma.cu: mma.sync, sm_80+; TF32, BF16, F16 */
  TSM_CUDA_ALGO_WGMMA = 3  /* cuda/gemm_wgmma.cu: wgmma + TMA, sm_90a; TF32, BF16, F16 */
} tsm_cuda_gemm_algo;
TSM_API tsm_status tsm_cuda_gemm_set_algo(tsm_cuda_gemm_algo algo);
/* The family the last GEMM on the calling thread ran with (for tests). */
TSM_API tsm_cuda_gemm_algo tsm_cuda_gemm_last_algo(void);

/* SGEMM on device memory: exactly tsm_sgemm's contract (row-major, BLAS semantics, beta == 0 does not
 * read C), with a, b, c in device memory. Asynchronous on the current device's stream. */
TSM_API tsm_status tsm_cuda_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                  float alpha, const float* a, int64_t lda, const float* b,
                                  int64_t ldb, float beta, float* c, int64_t ldc);
TSM_API tsm_status tsm_cuda_sgemm_strided_batched(int trans_a, int trans_b, int64_t batch, int64_t m,
                                                  int64_t n, int64_t k, float alpha, const float* a,
                                                  int64_t lda, int64_t stride_a, const float* b,
                                                  int64_t ldb, int64_t stride_b, float beta,
                                                  float* c, int64_t ldc, int64_t stride_c);

/*
 * GEMM with a compute type and an epilogue, on device memory, row-major:
 *   C[m x n] = act(alpha * op(A) * op(B) + beta * C + bias)
 * A and B are stored as the type says (see tsm_cuda_gemm_type); C is float32 (c_dtype F32) or, for
 * BF16/F16, may also be of the input type (rounded once, at the end). bias is float32 of length n
 * (one value per column, as torch.nn.Linear) or NULL. Leading dimensions are in elements. beta == 0
 * does not read C. Strided batched: A_i = a + i * stride_a elements (likewise b, c); a stride of 0
 * broadcasts A or B (never C when batch > 1); batch >= 0.
 */
TSM_API tsm_status tsm_cuda_gemm_ex(tsm_cuda_gemm_type type, int trans_a, int trans_b, int64_t m,
                                    int64_t n, int64_t k, float alpha, const void* a, int64_t lda,
                                    const void* b, int64_t ldb, float beta, void* c,
                                    tsm_cuda_dtype c_dtype, int64_t ldc, const float* bias,
                                    tsm_cuda_activation act);
TSM_API tsm_status tsm_cuda_gemm_strided_batched_ex(
    tsm_cuda_gemm_type type, int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n,
    int64_t k, float alpha, const void* a, int64_t lda, int64_t stride_a, const void* b,
    int64_t ldb, int64_t stride_b, float beta, void* c, tsm_cuda_dtype c_dtype, int64_t ldc,
    int64_t stride_c, const float* bias, tsm_cuda_activation act);
/* ---- end section: cuda ---- */

/* ---- section: attention (cuda) (cuda/attention_fwd.cu, cuda/attention_bwd.cu; stand-ins in cpp/runtime/cuda_stub.cpp) ----
 *
 * Fused scaled-dot-product attention on device memory, FlashAttention-2 style: the Lq x Lk score
 * matrix is never stored; the forward keeps the log-sum-exp of each score row and the backward
 * recomputes the scores from it.
 *
 *   q (B, H, Lq, D)   k, v (B, H, Lk, D)   o (B, H, Lq, D)   lse (B, H, Lq) float32
 *   all contiguous, row-major; q, k, v, o (and dout, dq, dk, dv) of one storage type, `dtype`
 *   S = scale * q k^T (B, H, Lq, Lk);  P = softmax(S) along Lk;  o = P v;  lse[i] = log sum_j exp S[i, j]
 *
 * Masks (both optional, combined): is_causal -> query i attends keys j <= i (top-left aligned, as
 *   PyTorch's is_causal); key_lengths -> int32 (B) in DEVICE memory, batch b attends keys
 *   j < key_lengths[b] (a key-padding mask; values are clamped to [0, Lk]). A query row with no key
 *   left gives o = 0, lse = +inf, and zero gradients (PyTorch gives NaN).
 * Accumulation is float32 in every path; o is rounded once to dtype.
 *
 * Kernels (algo): TSM_CUDA_ATTN_MMA - tensor cores (mma.sync m16n8k16, sm_80+), bfloat16/float16,
 *   D <= 128 (64 and 128 specialised; other D run zero-padded to the next of them); the backward
 *   needs 112.5 KiB of shared memory per block for D > 64 (sm_80, sm_90; not sm_86/sm_89).
 *   TSM_CUDA_ATTN_GENERAL - CUDA cores, any dtype, D <= 256, simple and slow.
 *   TSM_CUDA_ATTN_AUTO picks MMA when it applies, else GENERAL. A forced algo that cannot run the
 *   call returns TSM_ERR_UNSUPPORTED (never a wrong result).
 * Sizes: b, h, lq, lk >= 0, 1 <= d <= 256, each < 2^31, b * h < 2^31; scale finite (usually
 *   1 / sqrt(d)). Empty problems do no work but still need a device. Asynchronous on the current
 *   device's stream, like the GEMMs. Bad arguments return TSM_ERR_INVALID_ARGUMENT with a message
 *   naming the call and the argument, before any device call; no device: TSM_ERR_CUDA.
 */
typedef enum tsm_cuda_attention_algo {
  TSM_CUDA_ATTN_AUTO = 0,
  TSM_CUDA_ATTN_MMA = 1,
  TSM_CUDA_ATTN_GENERAL = 2
} tsm_cuda_attention_algo;

typedef struct tsm_cuda_attention_desc {
  int64_t b, h, lq, lk, d;
  int32_t dtype;                /* tsm_cuda_dtype of q, k, v, o, dout, dq, dk, dv */
  float scale;
  int32_t is_causal;
  int32_t algo;                 /* tsm_cuda_attention_algo */
  const int32_t* key_lengths;   /* device memory, (b), or NULL for none */
} tsm_cuda_attention_desc;

/* o (B,H,Lq,D) and lse (B,H,Lq) from q, k, v. o and lse are overwritten. */
TSM_API tsm_status tsm_cuda_attention_forward(void* o, float* lse, const void* q, const void* k,
                                              const void* v, const tsm_cuda_attention_desc* desc);
/* dq (B,H,Lq,D), dk, dv (B,H,Lk,D), overwritten, from dout (B,H,Lq,D) and the forward's q, k, v,
 * o and lse, with the same descriptor. First D = rowsum(dout * o) (B,H,Lq); then, per block of
 * keys, the scores are recomputed from lse and dk, dv accumulated in registers. The MMA path adds
 * dq into a float32 workspace with atomics (order of the additions not deterministic) and rounds it
 * to dtype in a last pass; the workspace ((B*H*Lq*(D+1)) floats) comes from the caching allocator. */
TSM_API tsm_status tsm_cuda_attention_backward(void* dq, void* dk, void* dv, const void* dout,
                                               const void* q, const void* k, const void* v,
                                               const void* o, const float* lse,
                                               const tsm_cuda_attention_desc* desc);
/* ---- end section: attention (cuda) ---- */

/* ---- section: cuda tensor kernels (cuda/pointwise.cu, layout.cu, reduce.cu, softmax.cu, optim.cu;
 *      stand-ins in cpp/runtime/cuda_stub.cpp) ----
 *
 * The kernels behind tensors on 'cuda': the contracts of the CPU kernels of the pointwise and nn
 * sections (same op codes, formulas and NaN rules) on device memory of the current device (pointers
 * from tsm_cuda_malloc). Element types are float32 unless said otherwise. Every call returns once
 * its kernels are queued on the device's stream (asynchronous); tsm_cuda_memcpy_d2h or
 * tsm_cuda_synchronize waits for them. Sizes are int64_t element counts >= 0; a pointer may be NULL
 * when its tensor is empty. Bad arguments are TSM_ERR_INVALID_ARGUMENT, launch failures TSM_ERR_CUDA
 * ("cuda_xxx: kernel launch failed: ..."), builds without CUDA TSM_ERR_UNSUPPORTED.
 * One difference from the CPU kernels: sums accumulate in float32 (tree order), not in double.
 */

/* y (n) = f(x (n)), op a tsm_unary_op; y may alias x. */
TSM_API tsm_status tsm_cuda_unary_forward(int op, float* y, const float* x, int64_t n);
/* dx (n) = dy (n) * f'(.), reading x or y (n) as tsm_unary_backward_reads_y says (the other may be
 * NULL); dx may alias dy. */
TSM_API tsm_status tsm_cuda_unary_backward(int op, float* dx, const float* x, const float* y,
                                           const float* dy, int64_t n);
/* out (n) = a (n) op b (n), op a tsm_binary_op; out may alias a or b. */
TSM_API tsm_status tsm_cuda_binary_same(int op, float* out, const float* a, const float* b, int64_t n);
/* out (n) = x (n) op s, or s op x (n) when reverse != 0; out may alias x. */
TSM_API tsm_status tsm_cuda_scalar_forward(int op, float* out, const float* x, float s, int reverse,
                                           int64_t n);
/* Broadcasting, as tsm_binary_forward: out contiguous with shape out_shape[ndim] (0 <= ndim <= 8);
 * a and b read at sum_d idx[d] * stride[d] (strides >= 0, 0 on broadcast dims). out must not
 * overlap a or b. */
TSM_API tsm_status tsm_cuda_binary_forward(int op, float* out, const float* a, const float* b, int ndim,
                                           const int64_t* out_shape, const int64_t* a_strides,
                                           const int64_t* b_strides);
/* Copy of 4-byte elements (float32 or int32) between strided views, for every idx of shape[ndim]
 * (0 <= ndim <= 8):
 *   dst[dst_offset + sum_d idx[d] * dst_strides[d]] = src[src_offset + sum_d idx[d] * src_strides[d]]
 * dst_strides NULL means contiguous. Offsets and strides are in elements, >= 0; a stride of 0 in src
 * broadcasts (expand). dst must not overlap src, and no two idx may reach the same dst element. */
TSM_API tsm_status tsm_cuda_strided_copy(void* dst, int64_t dst_offset, const int64_t* dst_strides,
                                         const void* src, int64_t src_offset,
                                         const int64_t* src_strides, int ndim, const int64_t* shape);
/* dst (n) = the 32-bit pattern `bits` (a float32's or an int32's bits). */
TSM_API tsm_status tsm_cuda_fill32(void* dst, uint32_t bits, int64_t n);
/* float32 -> int32 as JavaScript's Int32Array.from(x, Math.trunc): truncation toward zero, then
 * modulo 2^32; NaN and infinities give 0. */
TSM_API tsm_status tsm_cuda_cast_f32_i32(int32_t* dst, const float* src, int64_t n);
/* int32 -> float32, rounded to nearest. */
TSM_API tsm_status tsm_cuda_cast_i32_f32(float* dst, const int32_t* src, int64_t n);

/* out (outer, inner) = sum over d of x (outer, dim, inner)[o, d, i] / divisor (1 for a sum, the
 * count for a mean; dim == 0 gives 0 / divisor). Long dims with few outputs are split over blocks
 * with a scratch buffer from the caching allocator. */
TSM_API tsm_status tsm_cuda_sum(float* out, const float* x, int64_t outer, int64_t dim, int64_t inner,
                                float divisor);
/* indices (outer, inner) int32 = the index along dim of the first maximum (is_max != 0) or minimum
 * of x (outer, dim, inner), a NaN counting as both (the first NaN wins), as tsm_arg_reduce; values
 * (outer, inner) = the element there, or NULL. 1 <= dim < 2^31 unless outer * inner == 0. */
TSM_API tsm_status tsm_cuda_arg_reduce(float* values, int32_t* indices, const float* x, int64_t outer,
                                       int64_t dim, int64_t inner, int is_max);
/* The backward of max/min over dim: dx (outer, dim, inner) = dy (outer, inner)[o, i] where
 * indices (outer, inner)[o, i] == d, else 0. */
TSM_API tsm_status tsm_cuda_arg_reduce_backward(float* dx, const float* dy, const int32_t* indices,
                                                int64_t outer, int64_t dim, int64_t inner);
/* As tsm_softmax_forward / tsm_softmax_backward, on device memory (y may alias x). */
TSM_API tsm_status tsm_cuda_softmax_forward(float* y, const float* x, int64_t outer, int64_t dim,
                                            int64_t inner, int log);
TSM_API tsm_status tsm_cuda_softmax_backward(float* dx, const float* y, const float* dy, int64_t outer,
                                             int64_t dim, int64_t inner, int log);
/* As tsm_sgd_step / tsm_adam_step (section nn), on device memory: the lists are host arrays of
 * device pointers. Multi-tensor: one launch per 32 tensors. Same float32 arithmetic as the CPU
 * kernels (no FMA contraction), so a step gives the CPU step's values. */
TSM_API tsm_status tsm_cuda_sgd_step(float* const* params, float* const* momentum_bufs,
                                     const float* const* grads, const int64_t* sizes, int64_t count,
                                     double lr, double momentum, double dampening, double weight_decay,
                                     int nesterov, int maximize, int first_step);
TSM_API tsm_status tsm_cuda_adam_step(float* const* params, float* const* exp_avg,
                                      float* const* exp_avg_sq, float* const* max_exp_avg_sq,
                                      const float* const* grads, const int64_t* sizes, int64_t count,
                                      double lr, double beta1, double beta2, double eps,
                                      double weight_decay, int64_t step, int amsgrad, int decoupled,
                                      int maximize);
/* ---- end section: cuda tensor kernels ---- */

/* ---- section: cuda nn kernels (cuda/conv.cu, cuda/pool.cu, cuda/cross_entropy.cu; stand-ins in
 *      cpp/runtime/cuda_stub.cpp) ----
 *
 * The CNN's kernels on device memory of the current device: the contracts of the CPU kernels of
 * the "conv + pooling" and "pointwise" (cross-entropy) sections, float32, contiguous NCHW, with the
 * differences said per call. Asynchronous like the cuda tensor kernels (queued on the device's
 * stream); bad descriptors are TSM_ERR_INVALID_ARGUMENT, launch failures TSM_ERR_CUDA, builds
 * without CUDA TSM_ERR_UNSUPPORTED. Scratch memory (the convolution's column buffers) comes from
 * the caching allocator and is returned before the call returns (safe: one stream per device).
 */

/* As tsm_conv2d_forward / _backward_data / _backward_weight (same descriptor and shapes): im2col
 * into a column buffer (C*KH*KW, OH*OW) per image, then one strided-batched SGEMM per group over the
 * images (tsm_cuda_sgemm_strided_batched, float32 FMAs), then col2im (a gather per input element,
 * no atomics) for the data gradient; the weight gradient sums per-image GEMM products over the
 * images in a fixed order (deterministic). Images are processed in chunks whose scratch fits in
 * 256 MiB. dbias may be NULL. */
TSM_API tsm_status tsm_cuda_conv2d_forward(float* y, const float* x, const float* w, const float* bias,
                                           const tsm_conv2d_desc* d);
TSM_API tsm_status tsm_cuda_conv2d_backward_data(float* dx, const float* dy, const float* w,
                                                 const tsm_conv2d_desc* d);
TSM_API tsm_status tsm_cuda_conv2d_backward_weight(float* dw, float* dbias, const float* dy,
                                                   const float* x, const tsm_conv2d_desc* d);

/* As tsm_max_pool2d_forward (same windows, NaN and tie rules, int32 indices ih*W + iw). */
TSM_API tsm_status tsm_cuda_max_pool2d_forward(float* y, int32_t* indices, const float* x,
                                               const tsm_pool2d_desc* d);
/* dx (N,C,H,W) = scatter-add of dy (N,C,OH,OW) at indices, as tsm_max_pool2d_backward, but given
 * the forward's descriptor: each input element gathers the outputs whose window holds it (in the
 * CPU's order: bit-identical sums); when a window lies entirely in the padding (dilation only),
 * one thread per plane scatters in the CPU's order instead. Indices outside [0, H*W) are not checked (they
 * cannot be without a synchronisation) and contribute nothing. */
TSM_API tsm_status tsm_cuda_max_pool2d_backward(float* dx, const float* dy, const int32_t* indices,
                                                const tsm_pool2d_desc* d);
/* As tsm_avg_pool2d_forward / tsm_avg_pool2d_backward (ceil_mode, count_include_pad); the backward
 * gathers per input element (no atomics, the CPU's summation order). */
TSM_API tsm_status tsm_cuda_avg_pool2d_forward(float* y, const float* x, const tsm_pool2d_desc* d);
TSM_API tsm_status tsm_cuda_avg_pool2d_backward(float* dx, const float* dy, const tsm_pool2d_desc* d);

/* Fused softmax cross-entropy, as tsm_cross_entropy_forward plus the reduction, float32 sums:
 *   losses (n), log_probs (n, c) as the CPU kernel; reduction 0 = none, 1 = mean, 2 = sum:
 *   out (1) = sum of losses (sum) or sum / count (mean; NaN when every row is ignored), and
 *   count (1) = the number of rows whose target is not ignore_index (float); both NULL for none.
 * Targets are device memory and are not range-checked before the launch (that would need a
 * synchronisation): a target outside [0, c) that is not ignore_index gives a NaN loss (and NaN
 * gradients) for its row. 1 <= c; n >= 0. */
TSM_API tsm_status tsm_cuda_cross_entropy_forward(float* losses, float* log_probs, float* out,
                                                  float* count, const float* logits,
                                                  const int32_t* targets, int64_t n, int64_t c,
                                                  int64_t ignore_index, float label_smoothing,
                                                  int reduction);
/* dlogits (n, c) = dl_i * (exp(log_probs) - (1 - eps) onehot(t_i) - eps / c), 0 for ignored rows,
 * with dl_i = dloss[i] (reduction none, dloss (n)), dloss[0] (sum) or dloss[0] / max(count[0], 1)
 * (mean; count from the forward). */
TSM_API tsm_status tsm_cuda_cross_entropy_backward(float* dlogits, const float* log_probs,
                                                   const int32_t* targets, const float* dloss,
                                                   const float* count, int64_t n, int64_t c,
                                                   int64_t ignore_index, float label_smoothing,
                                                   int reduction);
/* ---- end section: cuda nn kernels ---- */

/* ---- section: cuda norm kernels (cuda/norm.cu, cuda/embedding.cu, cuda/dropout.cu,
 *      cuda/adaptive_pool.cu; stand-ins in cpp/runtime/cuda_stub.cpp) ----
 *
 * Normalisation, embedding, dropout and adaptive pooling on device memory of the current device:
 * the contracts of the CPU kernels of the same names (float32, contiguous), asynchronous on the
 * device's stream, with the differences said per call. Statistics are float32 sums (the CPU sums
 * in double): results agree with the CPU to rounding. Bad sizes are TSM_ERR_INVALID_ARGUMENT,
 * launch failures TSM_ERR_CUDA, builds without CUDA TSM_ERR_UNSUPPORTED. Scratch memory comes
 * from the caching allocator and is returned before the call returns (one stream per device).
 */

/* As tsm_layer_norm_forward: y, x (rows, cols); mean, rstd (rows); w, b (cols) or NULL. A warp
 * per row up to 1024 columns, a block per row above. */
TSM_API tsm_status tsm_cuda_layer_norm_forward(float* y, float* mean, float* rstd, const float* x,
                                               const float* w, const float* b, int64_t rows,
                                               int64_t cols, float eps);
/* As tsm_layer_norm_backward; dx, dw, db may each be NULL. dw/db: per-chunk column partials in a
 * fixed row order, then a second pass over the chunks (no atomics, deterministic). */
TSM_API tsm_status tsm_cuda_layer_norm_backward(float* dx, float* dw, float* db, const float* dy,
                                                const float* x, const float* mean, const float* rstd,
                                                const float* w, int64_t rows, int64_t cols);

/* As tsm_batch_norm_forward (x, y (n, c, hw); training: batch statistics, running stats updated
 * with momentum and the unbiased variance; eval: running stats), plus num_batches_tracked: an
 * int32 on the device incremented by one when training (NULL: none), so that nn.BatchNorm2d
 * needs no read-back. A block per channel. */
TSM_API tsm_status tsm_cuda_batch_norm_forward(float* y, float* save_mean, float* save_invstd,
                                               float* running_mean, float* running_var,
                                               const float* x, const float* w, const float* b,
                                               int64_t n, int64_t c, int64_t hw, int training,
                                               float momentum, float eps,
                                               int32_t* num_batches_tracked);
/* As tsm_batch_norm_backward; dx, dw, db may each be NULL. A block per channel (no atomics). */
TSM_API tsm_status tsm_cuda_batch_norm_backward(float* dx, float* dw, float* db, const float* dy,
                                                const float* x, const float* save_mean,
                                                const float* save_invstd, const float* w,
                                                int64_t n, int64_t c, int64_t hw, int training);

/* As tsm_embedding_forward, except that device indices are not range-checked (that would need a
 * synchronisation): the output row of an index outside [0, num_embeddings) is NaN. */
TSM_API tsm_status tsm_cuda_embedding_forward(float* y, const int32_t* indices, const float* weight,
                                              int64_t n, int64_t num_embeddings, int64_t dim);
/* As tsm_embedding_backward (padding_idx -1 or a row that gets no gradient): the positions are
 * sorted by row with a stable LSD radix sort on the device, then each element of dweight sums its
 * row's dy rows in position order — the CPU kernel's sums, bit for bit, no float atomics. An
 * out-of-range index contributes nothing. */
TSM_API tsm_status tsm_cuda_embedding_backward(float* dweight, const float* dy,
                                               const int32_t* indices, int64_t n,
                                               int64_t num_embeddings, int64_t dim,
                                               int64_t padding_idx);

/* As tsm_dropout_forward: the same Philox4x32-10 stream (tsm_rng_uniform's), so the same
 * (seed, offset) gives the CPU's mask and output bit for bit. */
TSM_API tsm_status tsm_cuda_dropout_forward(float* y, float* mask, const float* x, double p,
                                            uint64_t seed, uint64_t offset, int64_t n);

/* As tsm_adaptive_avg_pool2d_forward / _backward (same windows, same float sums; the backward
 * gathers per input element in the CPU's order: bit-identical, no atomics). */
TSM_API tsm_status tsm_cuda_adaptive_avg_pool2d_forward(float* y, const float* x,
                                                        const tsm_pool2d_shape* s);
TSM_API tsm_status tsm_cuda_adaptive_avg_pool2d_backward(float* dx, const float* dy,
                                                         const tsm_pool2d_shape* s);
/* ---- end section: cuda norm kernels ---- */
/* ---- section: cuda sequence kernels (cuda/lstm.cu, cuda/index.cu; stand-ins in
 *      cpp/runtime/cuda_stub.cpp) ----
 *
 * The LSTM and the index ops of CUDA tensors on device memory of the current device, asynchronous
 * like the cuda tensor kernels. Bad arguments are TSM_ERR_INVALID_ARGUMENT, launch failures
 * TSM_ERR_CUDA, builds without CUDA TSM_ERR_UNSUPPORTED. Scratch memory comes from the caching
 * allocator and is returned before the call returns (safe: one stream per device).
 */

/* As tsm_lstm_forward (same arguments, layouts and saved gates/cs), on device memory: the input
 * product of all steps as one SGEMM (tsm_cuda_sgemm, float32 FMAs), then per step the recurrent
 * SGEMM (accumulated into the step's gate rows) and one fused cell kernel (bias, sigmoid/tanh,
 * c_t, h_t, activations saved). Nonlinearities as the CPU's (clamped exp): results agree with the
 * CPU to float32 rounding. */
TSM_API tsm_status tsm_cuda_lstm_forward(float* y, float* h_n, float* c_n, float* gates, float* cs,
                                         const float* x, const float* h0, const float* c0,
                                         const float* w_ih, const float* w_hh, const float* b_ih,
                                         const float* b_hh, int64_t T, int64_t B, int64_t I,
                                         int64_t H, int batch_first);
/* As tsm_lstm_backward, on device memory: per step (t = T-1 .. 0) the SGEMM dh = dG_{t+1} W_hh and
 * one fused cell-backward kernel (dy_t added, gate gradients, dc_{t-1}); then dx = dG W_ih,
 * dW_ih = dG^T X, dW_hh = dG^T H_prev (one SGEMM each over all steps) and the bias sums
 * (tsm_cuda_sum). No atomics: deterministic. Scratch: (T*B, 4H) + (T*B, H) + 2 (B, H) floats. */
TSM_API tsm_status tsm_cuda_lstm_backward(float* dx, float* dh0, float* dc0, float* dw_ih,
                                          float* dw_hh, float* db_ih, float* db_hh, const float* dy,
                                          const float* dh_n, const float* dc_n, const float* x,
                                          const float* h0, const float* c0, const float* w_ih,
                                          const float* w_hh, const float* y, const float* gates,
                                          const float* cs, int64_t T, int64_t B, int64_t I,
                                          int64_t H, int batch_first);

/* Gather of 4-byte elements (float32 or int32), as torch.gather: for every position p of
 * index_shape[ndim] (1 <= ndim <= 8, index_shape[k] <= x_shape[k] for k != dim),
 *   out[p] = x[p with p[dim] replaced by index[p]]       (x, index, out contiguous)
 * An index outside [0, x_shape[dim]) is not an error on the device (checking needs a
 * synchronisation; lib/ checks on the host): out[p] gets the bits 0x7FC00000 (NaN as float32). */
TSM_API tsm_status tsm_cuda_gather(void* out, const void* x, const int32_t* index, int ndim,
                                   const int64_t* x_shape, const int64_t* index_shape, int dim);
/* dx (x_shape) = the scatter-add of dy (index_shape) at the positions gather read: a thread per dx
 * element sums, in index order along dim, the dy elements whose index names it (no atomics,
 * deterministic, the CPU's order; cost x elements * index_shape[dim]). float32. */
TSM_API tsm_status tsm_cuda_gather_backward(float* dx, const float* dy, const int32_t* index, int ndim,
                                            const int64_t* x_shape, const int64_t* index_shape,
                                            int dim);
/* index_select of 4-byte elements: out (outer, k, inner)[o, i, j] = x (outer, n, inner)[o, r, j]
 * with r = index[i] (+ n when negative). An index outside [-n, n) gives 0x7FC00000 bits. */
TSM_API tsm_status tsm_cuda_index_select(void* out, const void* x, const int32_t* index, int64_t outer,
                                         int64_t n, int64_t k, int64_t inner);
/* Its backward, float32: dx (outer, n, inner)[o, r, j] = sum over the positions i of row r, in
 * increasing order, of dy (outer, k, inner)[o, i, j]. The positions come grouped by row, CSR
 * style: row r's are positions[row_start[r] .. row_start[r + 1]) (int32, device memory; the
 * caller builds them from the index, sorted ascending within a row). Deterministic, no atomics. */
TSM_API tsm_status tsm_cuda_index_select_backward(float* dx, const float* dy, const int32_t* row_start,
                                                  const int32_t* positions, int64_t outer, int64_t n,
                                                  int64_t k, int64_t inner);
/* where with broadcasting, 4-byte elements: out (shape, contiguous) = cond != 0 ? a : b, each of
 * cond, a, b read at sum_d idx[d] * strides[d] (0 on broadcast dims), 0 <= ndim <= 8. cond is
 * float32 (cond_is_int == 0: compared as a float, so -0 is false and NaN true) or int32. */
TSM_API tsm_status tsm_cuda_where(void* out, const void* cond, int cond_is_int, const void* a,
                                  const void* b, int ndim, const int64_t* shape,
                                  const int64_t* cond_strides, const int64_t* a_strides,
                                  const int64_t* b_strides);
/* ---- end section: cuda sequence kernels ---- */

/* ---- section: mixed precision (cuda) (cuda/cast16.cu; stand-ins in cpp/runtime/cuda_stub.cpp) ----
 *
 * Casts between the floating storage types of tsm_cuda_dtype, and the GradScaler's unscale step.
 * Device memory of the current device; asynchronous on its stream like the other tensor kernels.
 *
 * tsm_cuda_cast_float: dst (n) = src (n) converted from src_dtype to dst_dtype (any of F32, BF16,
 *   F16; equal types copy). To 16 bits: round to nearest, ties to even; float16 overflows to +-Inf
 *   and keeps subnormals (values below half the smallest subnormal go to +-0); NaN becomes 0x7FC0
 *   (bfloat16) or sign | 0x7E00 (float16). To float32: exact; a float16 NaN becomes 0x7FC00000, a
 *   bfloat16 NaN keeps its bits (shifted). bfloat16 <-> float16 goes through float32. These are the
 *   bits of the host conversions in lib/half.ts, so device and host casts agree bit for bit.
 *   dst must not overlap src unless dst == src and both types have the same size.
 */
TSM_API tsm_status tsm_cuda_cast_float(void* dst, tsm_cuda_dtype dst_dtype, const void* src,
                                       tsm_cuda_dtype src_dtype, int64_t n);
/* GradScaler unscale (PyTorch's _amp_foreach_non_finite_check_and_unscale_): for every tensor t of
 * the list and every i < sizes[t]: if grads[t][i] is NaN or +-Inf, *found_inf = 1.0f; then
 * grads[t][i] *= inv_scale (in place, float32). *found_inf (one float in device memory) is only ever
 * set to 1, never cleared: zero it before the first call of a step. count >= 0; a tensor with
 * size 0 may have a NULL pointer. Up to 32 tensors per kernel launch. */
TSM_API tsm_status tsm_cuda_amp_unscale(float* const* grads, const int64_t* sizes, int64_t count,
                                        float inv_scale, float* found_inf);
/* ---- end section: mixed precision (cuda) ---- */

/* CUDA, when compiled in. tsm_cuda_device_count sets *count to 0 when no driver or GPU is present
 * and returns TSM_OK; it returns TSM_ERR_UNSUPPORTED only in builds without CUDA. */
TSM_API int tsm_cuda_compiled(void);
TSM_API tsm_status tsm_cuda_device_count(int* count);
TSM_API int tsm_cuda_runtime_version(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TENSORSMITH_H */
