// GEMM on the GPU: the C ABI entry points (tsm_cuda_sgemm, tsm_cuda_gemm_ex and their strided
// batched forms), argument checks and the choice of kernel family:
//   F32              -> gemm_sgemm.cu  (CUDA cores, shared-memory + register tiling)
//   TF32, BF16, F16  -> gemm_wgmma.cu  (sm_90a wgmma + TMA) when the device is sm_90, the binary has
//                                      sm_90a code and the operands are K-major (A row-major,
//                                      B given as N x K, i.e. trans_b = 1) and 16-byte aligned;
//                    -> gemm_mma.cu    (mma.sync, sm_80+) otherwise.
// tsm_cuda_gemm_set_algo forces a family (tests, benchmarks).
#include <atomic>
#include <climits>

#include "gemm_common.cuh"

namespace tsm {
namespace cuda {

namespace {
std::atomic<int> g_algo{TSM_CUDA_ALGO_AUTO};
thread_local int g_last_algo = TSM_CUDA_ALGO_AUTO;

tsm_status check_problem(const char* op, const GemmProblem& p, int64_t batch, int64_t m, int64_t n,
                         int64_t k, int64_t sa, int64_t sb, int64_t sc) {
  if (p.type < TSM_CUDA_GEMM_F32 || p.type > TSM_CUDA_GEMM_F16)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: unknown gemm type %d", op, p.type);
  if (p.c_dtype < TSM_CUDA_F32 || p.c_dtype > TSM_CUDA_F16)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: unknown c dtype %d", op, p.c_dtype);
  if (p.c_dtype == TSM_CUDA_BF16 && p.type != TSM_CUDA_GEMM_BF16)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: a bfloat16 C needs gemm type BF16", op);
  if (p.c_dtype == TSM_CUDA_F16 && p.type != TSM_CUDA_GEMM_F16)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: a float16 C needs gemm type F16", op);
  if (p.act < TSM_CUDA_ACT_NONE || p.act > TSM_CUDA_ACT_GELU)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: unknown activation %d", op, p.act);
  if (batch < 0 || m < 0 || n < 0 || k < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: batch, m, n and k must be >= 0, got %lld, %lld, %lld, %lld",
                op, (long long)batch, (long long)m, (long long)n, (long long)k);
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX || batch > INT_MAX)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes must be < 2^31", op);
  const int64_t a_cols = p.ta ? m : k, b_cols = p.tb ? k : n;
  if (p.lda < (a_cols > 1 ? a_cols : 1))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: lda must be >= max(1, %lld), got %lld", op,
                (long long)a_cols, (long long)p.lda);
  if (p.ldb < (b_cols > 1 ? b_cols : 1))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: ldb must be >= max(1, %lld), got %lld", op,
                (long long)b_cols, (long long)p.ldb);
  if (p.ldc < (n > 1 ? n : 1))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: ldc must be >= max(1, %lld), got %lld", op,
                (long long)n, (long long)p.ldc);
  if (sa < 0 || sb < 0 || sc < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: strides must be >= 0", op);
  if (batch > 1 && sc == 0 && m > 0 && n > 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: stride_c must be > 0 when batch > 1", op);
  if (batch > 0 && m > 0 && n > 0) {
    if (!p.c) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: c is NULL", op);
    if (k > 0 && (!p.a || !p.b)) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: a or b is NULL", op);
  }
  return TSM_OK;
}

tsm_status run(const char* op, GemmProblem p, int64_t batch, int64_t m, int64_t n, int64_t k) {
  tsm_status s = check_problem(op, p, batch, m, n, k, p.sa, p.sb, p.sc);
  if (s != TSM_OK) return s;
  if (batch == 0 || m == 0 || n == 0) return TSM_OK;
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  p.m = int(m);
  p.n = int(n);
  p.k = int(k);
  const int forced = g_algo.load(std::memory_order_relaxed);
  // Batches go in the grid's y dimension (at most 65535 per launch).
  const int64_t kMaxBatch = 65535;
  for (int64_t b0 = 0; b0 < batch; b0 += kMaxBatch) {
    GemmProblem q = p;
    q.batch = int(batch - b0 < kMaxBatch ? batch - b0 : kMaxBatch);
    const size_t esz = p.type == TSM_CUDA_GEMM_F32 || p.type == TSM_CUDA_GEMM_TF32 ? 4 : 2;
    const size_t csz = p.c_dtype == TSM_CUDA_F32 ? 4 : 2;
    q.a = static_cast<const char*>(p.a) + b0 * p.sa * esz;
    q.b = static_cast<const char*>(p.b) + b0 * p.sb * esz;
    q.c = static_cast<char*>(p.c) + b0 * p.sc * csz;
    int algo = forced;
    if (p.type == TSM_CUDA_GEMM_F32) {
      if (algo != TSM_CUDA_ALGO_AUTO && algo != TSM_CUDA_ALGO_SIMT)
        return fail(TSM_ERR_UNSUPPORTED, "%s: gemm type F32 runs on the SIMT kernel only (algo %d forced)", op, algo);
      algo = TSM_CUDA_ALGO_SIMT;
      s = launch_sgemm(q, st);
    } else {
      if (algo == TSM_CUDA_ALGO_SIMT)
        return fail(TSM_ERR_UNSUPPORTED, "%s: the SIMT kernel runs gemm type F32 only", op);
      if (algo == TSM_CUDA_ALGO_AUTO) algo = wgmma_applicable(q) ? TSM_CUDA_ALGO_WGMMA : TSM_CUDA_ALGO_MMA;
      s = algo == TSM_CUDA_ALGO_WGMMA ? launch_wgmma(q, st) : launch_mma(q, st);
    }
    if (s != TSM_OK) return s;
    g_last_algo = algo;
  }
  return TSM_OK;
}

}  // namespace

int gemm_algo_forced() { return g_algo.load(std::memory_order_relaxed); }
void gemm_set_last_algo(int algo) { g_last_algo = algo; }

}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_gemm_set_algo(tsm_cuda_gemm_algo algo) {
  if (algo < TSM_CUDA_ALGO_AUTO || algo > TSM_CUDA_ALGO_WGMMA)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "cuda_gemm_set_algo: unknown algo %d", int(algo));
  g_algo.store(int(algo), std::memory_order_relaxed);
  return TSM_OK;
}

TSM_API tsm_cuda_gemm_algo tsm_cuda_gemm_last_algo(void) { return tsm_cuda_gemm_algo(g_last_algo); }

TSM_API tsm_status tsm_cuda_gemm_strided_batched_ex(
    tsm_cuda_gemm_type type, int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n,
    int64_t k, float alpha, const void* a, int64_t lda, int64_t stride_a, const void* b,
    int64_t ldb, int64_t stride_b, float beta, void* c, tsm_cuda_dtype c_dtype, int64_t ldc,
    int64_t stride_c, const float* bias, tsm_cuda_activation act) {
  GemmProblem p{};
  p.type = int(type);
  p.ta = trans_a != 0;
  p.tb = trans_b != 0;
  p.alpha = alpha;
  p.beta = beta;
  p.a = a; p.lda = lda; p.sa = stride_a;
  p.b = b; p.ldb = ldb; p.sb = stride_b;
  p.c = c; p.c_dtype = int(c_dtype); p.ldc = ldc; p.sc = stride_c;
  p.bias = bias;
  p.act = int(act);
  return run("cuda_gemm_strided_batched_ex", p, batch, m, n, k);
}

TSM_API tsm_status tsm_cuda_gemm_ex(tsm_cuda_gemm_type type, int trans_a, int trans_b, int64_t m,
                                    int64_t n, int64_t k, float alpha, const void* a, int64_t lda,
                                    const void* b, int64_t ldb, float beta, void* c,
                                    tsm_cuda_dtype c_dtype, int64_t ldc, const float* bias,
                                    tsm_cuda_activation act) {
  GemmProblem p{};
  p.type = int(type);
  p.ta = trans_a != 0;
  p.tb = trans_b != 0;
  p.alpha = alpha;
  p.beta = beta;
  p.a = a; p.lda = lda;
  p.b = b; p.ldb = ldb;
  p.c = c; p.c_dtype = int(c_dtype); p.ldc = ldc;
  p.bias = bias;
  p.act = int(act);
  return run("cuda_gemm_ex", p, 1, m, n, k);
}

TSM_API tsm_status tsm_cuda_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                  float alpha, const float* a, int64_t lda, const float* b,
                                  int64_t ldb, float beta, float* c, int64_t ldc) {
  GemmProblem p{};
  p.type = TSM_CUDA_GEMM_F32;
  p.ta = trans_a != 0;
  p.tb = trans_b != 0;
  p.alpha = alpha;
  p.beta = beta;
  p.a = a; p.lda = lda;
  p.b = b; p.ldb = ldb;
  p.c = c; p.c_dtype = TSM_CUDA_F32; p.ldc = ldc;
  return run("cuda_sgemm", p, 1, m, n, k);
}

TSM_API tsm_status tsm_cuda_sgemm_strided_batched(int trans_a, int trans_b, int64_t batch, int64_t m,
                                                  int64_t n, int64_t k, float alpha, const float* a,
                                                  int64_t lda, int64_t stride_a, const float* b,
                                                  int64_t ldb, int64_t stride_b, float beta,
                                                  float* c, int64_t ldc, int64_t stride_c) {
  GemmProblem p{};
  p.type = TSM_CUDA_GEMM_F32;
  p.ta = trans_a != 0;
  p.tb = trans_b != 0;
  p.alpha = alpha;
  p.beta = beta;
  p.a = a; p.lda = lda; p.sa = stride_a;
  p.b = b; p.ldb = ldb; p.sb = stride_b;
  p.c = c; p.c_dtype = TSM_CUDA_F32; p.ldc = ldc; p.sc = stride_c;
  return run("cuda_sgemm_strided_batched", p, batch, m, n, k);
}

}  // extern "C"
