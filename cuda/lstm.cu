// LSTM of CUDA tensors: one layer, one direction, a whole sequence, forward and backward through
// time (the CPU twin: cpp/kernels/lstm.cpp, same C contract as tsm_lstm_forward/backward).
//
//   x: (T, B, I) or (B, T, I) with batch_first      y, cs: (T, B, H) or (B, T, H)
//   gates, dG: (T*B, 4H), rows in x's order          w_ih: (4H, I)  w_hh: (4H, H)  b_*: (4H)
//   h0, c0, h_n, c_n, dh0, dc0: (B, H)
//   Row of (t, b): t*B + b, or b*T + t with batch_first; the B rows of one step are `bs` rows apart
//   (bs = 1, or T with batch_first), so a step is a (B, 4H) matrix with leading dimension bs*4H.
//
// Forward:
//   1. gates = X W_ih^T for all T*B rows: one SGEMM (the big, efficient product).
//   2. per step t: gates_t += h_{t-1} W_hh^T (SGEMM, beta = 1; skipped at t = 0 without h0), then
//      ONE fused cell kernel, a thread per (b, j): bias, i/f/g/o nonlinearities, c_t, h_t = y_t,
//      activations written back into gates_t (what the backward needs), c_t into cs.
// Backward (t = T-1 .. 0):
//      dh = dG_{t+1} W_hh (SGEMM; dh_n at the last step), then ONE fused kernel per step: dh += dy_t,
//      the four gate gradients dG_t, dc_{t-1} = dc_t * f (dc kept in a (B, H) scratch).
//   Then over all steps at once: dx = dG W_ih, dW_ih = dG^T X, dW_hh = dG^T H_prev (H_prev: y shifted
//   by one step, h0 or zeros at t = 0, built by a copy kernel), db = column sums of dG (tsm_cuda_sum).
//
// Why this shape: the recurrent product is a small (B x H x 4H) GEMM per step that has to wait for
// the previous step; the SIMT SGEMM computes exact float32 FMAs, so with the same (clamped-exp)
// nonlinearities as the CPU the results agree with the CPU to rounding. A persistent kernel that
// keeps W_hh in shared memory/registers across steps (cuDNN's approach) would remove the per-step
// launches and W_hh traffic; that is the next step once a GPU can measure it.
#ifdef TSM_SEQ_EMULATE
// Host emulation (test/emu/seq_emu.cpp): C++ with each CUDA thread run in turn; see the shim.
#include "../test/emu/seq_emu_shim.h"
#else
#include "tensor_common.cuh"
#define TSM_SEQ_LAUNCH(kernel, grid, block, st) kernel<<<(grid), (block), 0, (st)>>>
#endif

namespace tsm {
namespace cuda {
namespace {

// exp of x clamped to [-87, 88], as the CPU kernel's exp_clamped (which is a ~1 ulp polynomial).
__device__ __forceinline__ float exp_clamped(float x) {
  x = fminf(fmaxf(x, -87.0f), 88.0f);
  return expf(x);
}
__device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + exp_clamped(-x)); }
__device__ __forceinline__ float tanh_f(float x) { return 1.0f - 2.0f / (1.0f + exp_clamped(2.0f * x)); }

// One step of the forward, a thread per (b, j), b < B, j < H.
//   g: the step's gate rows (row b at g + b*ldg): pre-activations in, activations out
//   c_prev: row b at c_prev + b*ldcp (ldcp 0: one row for all), or NULL for zeros
//   c, h: row b at + b*ldh
__global__ void lstm_cell_forward_kernel(float* __restrict__ g, float* __restrict__ c, float* __restrict__ h,
                                         const float* __restrict__ c_prev, const float* __restrict__ b_ih,
                                         const float* __restrict__ b_hh, int64_t B, int64_t H, int64_t ldg,
                                         int64_t ldcp, int64_t ldh) {
  const int64_t total = B * H, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t b = e / H, j = e - b * H;
    float* gr = g + b * ldg;
    float bias[4];
#pragma unroll
    for (int q = 0; q < 4; ++q)
      bias[q] = (b_ih ? b_ih[q * H + j] : 0.0f) + (b_hh ? b_hh[q * H + j] : 0.0f);
    // __fadd_rn / __fmul_rn: no FMA contraction, so each value rounds as the CPU's does.
    const float i = sigmoid_f(__fadd_rn(gr[j], bias[0]));
    const float f = sigmoid_f(__fadd_rn(gr[H + j], bias[1]));
    const float gv = tanh_f(__fadd_rn(gr[2 * H + j], bias[2]));
    const float o = sigmoid_f(__fadd_rn(gr[3 * H + j], bias[3]));
    const float cp = c_prev ? c_prev[b * ldcp + j] : 0.0f;
    const float cv = __fadd_rn(__fmul_rn(f, cp), __fmul_rn(i, gv));
    gr[j] = i;
    gr[H + j] = f;
    gr[2 * H + j] = gv;
    gr[3 * H + j] = o;
    c[b * ldh + j] = cv;
    h[b * ldh + j] = __fmul_rn(o, tanh_f(cv));
  }
}

// One step of the backward, a thread per (b, j).
//   dh: (B, H) contiguous, dL/dh_t from the step after (NULL: zeros, the last step without dh_n)
//   dy: the step's rows of dy (row b at dy + b*ldh) or NULL
//   dc: (B, H): dL/dc_t in, dL/dc_{t-1} out
//   dg: the step's rows of dG (row b at dg + b*ldg), written
__global__ void lstm_cell_backward_kernel(float* __restrict__ dg, float* __restrict__ dc,
                                          const float* __restrict__ dh, const float* __restrict__ dy,
                                          const float* __restrict__ g, const float* __restrict__ c,
                                          const float* __restrict__ c_prev, int64_t B, int64_t H, int64_t ldg,
                                          int64_t ldcp, int64_t ldh) {
  const int64_t total = B * H, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t b = e / H, j = e - b * H;
    const float* gr = g + b * ldg;
    const float i = gr[j], f = gr[H + j], gv = gr[2 * H + j], o = gr[3 * H + j];
    const float tc = tanh_f(c[b * ldh + j]);
    float dhj = dh ? dh[e] : 0.0f;
    if (dy) dhj = __fadd_rn(dhj, dy[b * ldh + j]);
    // The CPU's expressions, evaluated left to right without contraction.
    const float dct = __fadd_rn(dc[e], __fmul_rn(__fmul_rn(dhj, o), __fsub_rn(1.0f, __fmul_rn(tc, tc))));
    const float cp = c_prev ? c_prev[b * ldcp + j] : 0.0f;
    float* dgr = dg + b * ldg;
    dgr[j] = __fmul_rn(__fmul_rn(__fmul_rn(dct, gv), i), __fsub_rn(1.0f, i));
    dgr[H + j] = __fmul_rn(__fmul_rn(__fmul_rn(dct, cp), f), __fsub_rn(1.0f, f));
    dgr[2 * H + j] = __fmul_rn(__fmul_rn(dct, i), __fsub_rn(1.0f, __fmul_rn(gv, gv)));
    dgr[3 * H + j] = __fmul_rn(__fmul_rn(__fmul_rn(dhj, tc), o), __fsub_rn(1.0f, o));
    dc[e] = __fmul_rn(dct, f);
  }
}

// hprev (T*B, H), rows in x's order: row (t, b) = y row (t-1, b) for t > 0, h0 row b (or zeros) at t = 0.
__global__ void lstm_shift_h_kernel(float* __restrict__ hprev, const float* __restrict__ y,
                                    const float* __restrict__ h0, int64_t T, int64_t B, int64_t H, int bf) {
  const int64_t total = T * B * H, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t r = e / H, j = e - r * H;
    const int64_t t = bf ? r % T : r / B, b = bf ? r / T : r % B;
    float v;
    if (t > 0) v = y[(bf ? b * T + (t - 1) : (t - 1) * B + b) * H + j];
    else v = h0 ? h0[b * H + j] : 0.0f;
    hprev[e] = v;
  }
}

// dst (n) = src (n) or zeros when src is NULL.
__global__ void copy_or_zero_kernel(float* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  const int64_t stride = grid_threads();
  for (int64_t e = global_thread(); e < n; e += stride) dst[e] = src ? src[e] : 0.0f;
}


tsm_status check_dims(const char* op, int64_t T, int64_t B, int64_t I, int64_t H) {
  if (T < 0 || B < 0 || I < 0 || H < 1)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: need T, B, I >= 0 and H >= 1, got T=%lld B=%lld I=%lld H=%lld", op,
                (long long)T, (long long)B, (long long)I, (long long)H);
  // The SGEMM takes sizes < 2^31.
  if (double(T) * double(B) >= 2147483647.0 || 4.0 * double(H) >= 2147483647.0 || double(I) >= 2147483647.0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: T*B, 4H and I must be < 2^31", op);
  if (double(T) * double(B) * double(4 * H) > 9.0e15 || double(T) * double(B) * double(I) > 9.0e15)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes are too large", op);
  return TSM_OK;
}

tsm_status launch_copy(float* dst, const float* src, int64_t n, cudaStream_t st, const char* op) {
  if (!dst || n <= 0) return TSM_OK;
  TSM_SEQ_LAUNCH(copy_or_zero_kernel, grid_for(n), kThreads, st)(dst, src, n);
  return check_launch(op);
}

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_lstm_forward(float* y, float* h_n, float* c_n, float* gates, float* cs, const float* x,
                                         const float* h0, const float* c0, const float* w_ih, const float* w_hh,
                                         const float* b_ih, const float* b_hh, int64_t T, int64_t B, int64_t I,
                                         int64_t H, int batch_first) {
  const char* op = "cuda_lstm_forward";
  if (tsm_status s = check_dims(op, T, B, I, H)) return s;
  if (B == 0) return TSM_OK;
  if (!h_n || !c_n) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: h_n and c_n must not be NULL", op);
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  const int64_t BH = B * H;
  if (T == 0) {
    if (tsm_status s = launch_copy(h_n, h0, BH, st, op)) return s;
    return launch_copy(c_n, c0, BH, st, op);
  }
  if (!y || !gates || !cs || !w_hh || (I > 0 && (!x || !w_ih)))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: y, gates, cs, x, w_ih and w_hh must not be NULL", op);
  const bool bf = batch_first != 0;
  const int64_t G = 4 * H, rows = T * B, bs = bf ? T : 1;
  const int64_t ldg = bs * G, ldh = bs * H;
  auto row = [&](int64_t t, int64_t b) { return bf ? b * T + t : t * B + b; };
  // 1. gates (rows, 4H) = X (rows, I) W_ih^T; I == 0 gives zeros (k == 0, beta == 0).
  if (tsm_status s = tsm_cuda_sgemm(0, 1, rows, G, I, 1.f, x, I > 0 ? I : 1, w_ih, I > 0 ? I : 1, 0.f, gates, G))
    return s;
  for (int64_t t = 0; t < T; ++t) {
    float* g_t = gates + row(t, 0) * G;
    const float* h_prev = t > 0 ? y + row(t - 1, 0) * H : h0;
    const int64_t ld_hp = t > 0 ? ldh : H;
    // 2. gates_t (B, 4H) += h_{t-1} (B, H) W_hh^T
    if (h_prev)
      if (tsm_status s = tsm_cuda_sgemm(0, 1, B, G, H, 1.f, h_prev, ld_hp, w_hh, H, 1.f, g_t, ldg)) return s;
    const float* c_prev = t > 0 ? cs + row(t - 1, 0) * H : c0;
    const int64_t ldcp = t > 0 ? ldh : H;
    TSM_SEQ_LAUNCH(lstm_cell_forward_kernel, grid_for(BH), kThreads, st)(g_t, cs + row(t, 0) * H, y + row(t, 0) * H, c_prev,
                                                                b_ih, b_hh, B, H, ldg, ldcp, ldh);
    if (tsm_status s = check_launch(op)) return s;
  }
  // h_n, c_n: the last step's rows (strided with batch_first): (B, H) copies with row pitch ldh.
  TSM_CUDA_TRY(cudaMemcpy2DAsync(h_n, size_t(H) * 4, y + row(T - 1, 0) * H, size_t(ldh) * 4, size_t(H) * 4, size_t(B),
                                 cudaMemcpyDeviceToDevice, st),
               "cudaMemcpy2DAsync");
  TSM_CUDA_TRY(cudaMemcpy2DAsync(c_n, size_t(H) * 4, cs + row(T - 1, 0) * H, size_t(ldh) * 4, size_t(H) * 4, size_t(B),
                                 cudaMemcpyDeviceToDevice, st),
               "cudaMemcpy2DAsync");
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_lstm_backward(float* dx, float* dh0, float* dc0, float* dw_ih, float* dw_hh, float* db_ih,
                                          float* db_hh, const float* dy, const float* dh_n, const float* dc_n,
                                          const float* x, const float* h0, const float* c0, const float* w_ih,
                                          const float* w_hh, const float* y, const float* gates, const float* cs,
                                          int64_t T, int64_t B, int64_t I, int64_t H, int batch_first) {
  const char* op = "cuda_lstm_backward";
  if (tsm_status s = check_dims(op, T, B, I, H)) return s;
  const int64_t G = 4 * H, rows = T * B, BH = B * H;
  const bool any = dx || dh0 || dc0 || dw_ih || dw_hh || db_ih || db_hh;
  if (!any) return TSM_OK;
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  if (T == 0 || B == 0) {
    // Nothing flows through the cell: zero the weight gradients, pass dh_n/dc_n through.
    for (auto [p, n] : {std::pair<float*, int64_t>{dx, rows * I}, {dw_ih, G * I}, {dw_hh, G * H}, {db_ih, G}, {db_hh, G}})
      if (tsm_status s = launch_copy(p, nullptr, n, st, op)) return s;
    if (tsm_status s = launch_copy(dh0, dh_n, BH, st, op)) return s;
    return launch_copy(dc0, dc_n, BH, st, op);
  }
  if (!w_hh || !y || !gates || !cs || (I > 0 && (!x || !w_ih)))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: x, w_ih, w_hh, y, gates and cs must not be NULL", op);
  const bool bf = batch_first != 0;
  const int64_t bs = bf ? T : 1, ldg = bs * G, ldh = bs * H;
  auto row = [&](int64_t t, int64_t b) { return bf ? b * T + t : t * B + b; };

  Scratch dgates(op), dh(op), dc(op);
  if (tsm_status s = dgates.alloc(rows * G)) return s;
  if (tsm_status s = dh.alloc(BH)) return s;
  if (tsm_status s = dc.alloc(BH)) return s;
  if (tsm_status s = launch_copy(dc.p, dc_n, BH, st, op)) return s;

  for (int64_t t = T - 1; t >= 0; --t) {
    const float* dh_src;
    if (t == T - 1) {
      dh_src = dh_n;  // may be NULL: zeros
    } else {
      // dh (B, H) = dG_{t+1} (B, 4H) W_hh (4H, H)
      if (tsm_status s = tsm_cuda_sgemm(0, 0, B, H, G, 1.f, dgates.p + row(t + 1, 0) * G, ldg, w_hh, H, 0.f, dh.p, H))
        return s;
      dh_src = dh.p;
    }
    const float* c_prev = t > 0 ? cs + row(t - 1, 0) * H : c0;
    const int64_t ldcp = t > 0 ? ldh : H;
    TSM_SEQ_LAUNCH(lstm_cell_backward_kernel, grid_for(BH), kThreads, st)(
        dgates.p + row(t, 0) * G, dc.p, dh_src, dy ? dy + row(t, 0) * H : nullptr, gates + row(t, 0) * G,
        cs + row(t, 0) * H, c_prev, B, H, ldg, ldcp, ldh);
    if (tsm_status s = check_launch(op)) return s;
  }
  // dh0 = dG_0 W_hh; dc0 = dc.
  if (dh0)
    if (tsm_status s = tsm_cuda_sgemm(0, 0, B, H, G, 1.f, dgates.p + row(0, 0) * G, ldg, w_hh, H, 0.f, dh0, H)) return s;
  if (dc0) TSM_CUDA_TRY(cudaMemcpyAsync(dc0, dc.p, size_t(BH) * 4, cudaMemcpyDeviceToDevice, st), "cudaMemcpyAsync");
  // Products over all steps.
  if (dx && I > 0)
    if (tsm_status s = tsm_cuda_sgemm(0, 0, rows, I, G, 1.f, dgates.p, G, w_ih, I, 0.f, dx, I)) return s;
  if (dw_ih && I > 0)
    if (tsm_status s = tsm_cuda_sgemm(1, 0, G, I, rows, 1.f, dgates.p, G, x, I, 0.f, dw_ih, I)) return s;
  if (dw_hh) {
    Scratch hprev(op);
    if (tsm_status s = hprev.alloc(rows * H)) return s;
    TSM_SEQ_LAUNCH(lstm_shift_h_kernel, grid_for(rows * H), kThreads, st)(hprev.p, y, h0, T, B, H, bf ? 1 : 0);
    if (tsm_status s = check_launch(op)) return s;
    if (tsm_status s = tsm_cuda_sgemm(1, 0, G, H, rows, 1.f, dgates.p, G, hprev.p, H, 0.f, dw_hh, H)) return s;
  }
  if (db_ih || db_hh) {
    float* db = db_ih ? db_ih : db_hh;
    if (tsm_status s = tsm_cuda_sum(db, dgates.p, 1, rows, G, 1.f)) return s;
    if (db_ih && db_hh)
      TSM_CUDA_TRY(cudaMemcpyAsync(db_hh, db_ih, size_t(G) * 4, cudaMemcpyDeviceToDevice, st), "cudaMemcpyAsync");
  }
  return TSM_OK;
}

}  // extern "C"
