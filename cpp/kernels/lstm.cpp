// LSTM, one layer, one direction, a whole sequence: forward and backward through time.
//
//   x: (T, B, I) or (B, T, I) with batch_first      y, cs: (T, B, H) or (B, T, H)
//   gates: (T*B, 4H), rows in x's order             w_ih: (4H, I)  w_hh: (4H, H)  b_*: (4H)
//   h0, c0, h_n, c_n, dh0, dc0: (B, H)
//
// Forward:
//   1. gates = X W_ih^T for all T*B rows in one SGEMM (the big, efficient product).
//   2. W_hh^T is packed once into the GEMM micro-kernel's panel format, ordered by blocks of NR
//      hidden units: panel (u, q) holds gate q's columns for units [u*NR, u*NR + NR).
//   3. Per step, one parallel pass over unit blocks: each task adds h_{t-1} W_hh^T for its units'
//      four gates (micro-kernel calls on the packed h_{t-1}), then applies the nonlinearities and
//      the state update for those units and writes h_t into the packed A operand of the next step.
//      A task owns its units' columns of everything it writes, so a step needs one barrier.
// Backward (t = T-1 .. 0), per step one parallel pass over unit blocks:
//      dh_t[:, u] = dG_{t+1} W_hh[:, u] (micro-kernels on the packed dG_{t+1}) + dy_t[:, u],
//      then the gate gradients dG_t for those units, dc_{t-1}, their bias-gradient sums, and dG_t
//      packed for the next step.
//   Then dx = dG W_ih and [dW_ih | dW_hh] = dG^T [X | H_prev] (one product), over all steps.
// The micro-kernel is the one whose row panels pad the batch least (AVX-512: 8 rows for a batch of
// 32); the packed operands of the steps are written by register transposes (pack_a_panel).
#include <algorithm>
#include <cmath>
#include <cstring>

// The clamps in exp_approx() are compares and selects; GCC if-converts them (and so vectorizes the
// cell loops) only when it may assume floating-point operations do not trap.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "../runtime/runtime.h"
#include "gemm_rows.h"
#include "kernels.h"
#include "simd/exp_approx.h"
#include "simd/gemm_pack.h"
#include "simd/gemm_ukernel.h"
#include "simd/isa_target.h"

namespace tsm {
namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- nonlinearities: branch-free, so the loops below vectorize ----

inline __attribute__((always_inline)) float sigmoid_f(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
inline __attribute__((always_inline)) float tanh_f(float x) { return 1.0f - 2.0f / (1.0f + exp_approx(2.0f * x)); }

// ---- the per-step pointwise passes over one block of units [u0, u0 + n) of one batch row ----

// g: the row's 4H pre-activations (the input and recurrent products), written back as activations.
inline __attribute__((always_inline)) void cell_forward_body(float* __restrict g, const float* __restrict bias,
                                                             const float* __restrict c_prev, float* __restrict c,
                                                             float* __restrict h, int64_t H, int64_t n) {
  float* gi = g;
  float* gf = g + H;
  float* gg = g + 2 * H;
  float* go = g + 3 * H;
  const float* bi = bias;
  const float* bf = bias + H;
  const float* bg = bias + 2 * H;
  const float* bo = bias + 3 * H;
  for (int64_t j = 0; j < n; ++j) {
    const float i = sigmoid_f(gi[j] + bi[j]);
    const float f = sigmoid_f(gf[j] + bf[j]);
    const float gv = tanh_f(gg[j] + bg[j]);
    const float o = sigmoid_f(go[j] + bo[j]);
    const float cv = f * c_prev[j] + i * gv;
    gi[j] = i;
    gf[j] = f;
    gg[j] = gv;
    go[j] = o;
    c[j] = cv;
    h[j] = o * tanh_f(cv);
  }
}

// dh: dL/dh_t for the units from step t+1, and dy: dy_t's, added to it; dc: dL/dc_t from step t+1,
// overwritten with dL/dc_{t-1}. g: activations i, f, g, o (row of 4H); dg: the row of dG_t, written,
// and added to the bias gradient's gate rows db_i, db_f, db_g, db_o. (Four pointers, not one with
// offsets of H: the compiler checks streams of one base for overlap at run time, at most ten pairs
// per loop, and with dg's four and db's four it gave up vectorizing.)
inline __attribute__((always_inline)) void cell_backward_body(
    float* __restrict dg, float* __restrict dc, const float* __restrict dh, const float* __restrict dy,
    const float* __restrict g, const float* __restrict c, const float* __restrict c_prev, float* __restrict db_i,
    float* __restrict db_f, float* __restrict db_g, float* __restrict db_o, int64_t H, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float i = g[j], f = g[H + j], gv = g[2 * H + j], o = g[3 * H + j];
    const float tc = tanh_f(c[j]);
    const float dhj = dh[j] + dy[j];
    const float dct = dc[j] + dhj * o * (1.0f - tc * tc);
    const float cp = c_prev[j];
    const float di = dct * gv * i * (1.0f - i), df = dct * cp * f * (1.0f - f);
    const float dgv = dct * i * (1.0f - gv * gv), dout = dhj * tc * o * (1.0f - o);
    dg[j] = di;
    dg[H + j] = df;
    dg[2 * H + j] = dgv;
    dg[3 * H + j] = dout;
    dc[j] = dct * f;
    db_i[j] += di;
    db_f[j] += df;
    db_g[j] += dgv;
    db_o[j] += dout;
  }
}

#define TSM_CELL_FORWARD_PARAMS float *g, const float *bias, const float *c_prev, float *c, float *h, int64_t H, int64_t n
#define TSM_CELL_FORWARD_ARGS g, bias, c_prev, c, h, H, n
#define TSM_CELL_BACKWARD_PARAMS                                                                                \
  float *dg, float *dc, const float *dh, const float *dy, const float *g, const float *c, const float *c_prev, \
      float *db_i, float *db_f, float *db_g, float *db_o, int64_t H, int64_t n
#define TSM_CELL_BACKWARD_ARGS dg, dc, dh, dy, g, c, c_prev, db_i, db_f, db_g, db_o, H, n
void cell_forward_generic(TSM_CELL_FORWARD_PARAMS) { cell_forward_body(TSM_CELL_FORWARD_ARGS); }
void cell_backward_generic(TSM_CELL_BACKWARD_PARAMS) { cell_backward_body(TSM_CELL_BACKWARD_ARGS); }
#if TSM_ISA_X86
TSM_TARGET_AVX2 void cell_forward_avx2(TSM_CELL_FORWARD_PARAMS) { cell_forward_body(TSM_CELL_FORWARD_ARGS); }
TSM_TARGET_AVX2 void cell_backward_avx2(TSM_CELL_BACKWARD_PARAMS) { cell_backward_body(TSM_CELL_BACKWARD_ARGS); }
// 16 lanes; the clamps and selects of exp_approx() become mask operations.
TSM_TARGET_AVX512 void cell_forward_avx512(TSM_CELL_FORWARD_PARAMS) { cell_forward_body(TSM_CELL_FORWARD_ARGS); }
TSM_TARGET_AVX512 void cell_backward_avx512(TSM_CELL_BACKWARD_PARAMS) { cell_backward_body(TSM_CELL_BACKWARD_ARGS); }
#endif
#undef TSM_CELL_FORWARD_PARAMS
#undef TSM_CELL_FORWARD_ARGS
#undef TSM_CELL_BACKWARD_PARAMS
#undef TSM_CELL_BACKWARD_ARGS

// ---- packing for the recurrent products ----

// An aligned buffer freed on scope exit.
struct Buf {
  float* p = nullptr;
  explicit Buf(size_t floats) : p(static_cast<float*>(aligned_malloc(std::max<size_t>(floats, 1) * sizeof(float)))) {}
  ~Buf() { aligned_free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};

// Columns [c0, c0 + cols) of all B rows of src (row stride ld) into the packed A operand of depth
// k (the tiling's row panels, k x MR each, padding rows zero).
inline void pack_a_cols(float* apack, const float* src, int64_t ld, int64_t B, int64_t k, int64_t c0, int64_t cols,
                        const RowPanels& rt) {
  for (int64_t p = 0; p < rt.count(); ++p) {
    const int64_t r0 = rt.start(p);
    const int mr = rt.kernel(p).mr;
    pack_a_panel(apack + r0 * k + c0 * mr, src + r0 * ld + c0, ld, std::min<int64_t>(mr, B - r0), cols, mr);
  }
}

// C[rows x cols] (+)= packed A (all row panels, depth k) x one packed B panel (k x NR).
// beta is 0 or 1. Edge tiles go through a small buffer.
inline void panel_product(const RowPanels& rt, int64_t B, int64_t k, const float* apack, const float* bpanel,
                          float* c, int64_t ldc, int64_t cols, float beta) {
  const int nr = rt.uk.nr;
  alignas(64) float tile[16 * 64];  // mr * nr <= 1024 for every kernel we ship
  for (int64_t p = 0; p < rt.count(); ++p) {
    const GemmUkernel& uk = rt.kernel(p);
    const int mr = uk.mr;
    const int64_t i0 = rt.start(p), rows = std::min<int64_t>(mr, B - i0);
    const float* ap = apack + i0 * k;
    float* ci = c + i0 * ldc;
    if (rows == mr && cols == nr) {
      uk.fn(k, ap, bpanel, ci, ldc, 1.0f, beta);
    } else {
      uk.fn(k, ap, bpanel, tile, nr, 1.0f, 0.0f);
      for (int64_t i = 0; i < rows; ++i) {
        float* d = ci + i * ldc;
        const float* s = tile + i * nr;
        if (beta == 0.0f) for (int64_t j = 0; j < cols; ++j) d[j] = s[j];
        else for (int64_t j = 0; j < cols; ++j) d[j] += s[j];
      }
    }
  }
}

struct Dims {
  int64_t T, B, I, H;
  bool bf;
  // Row index of (t, b) in x, y, gates and cs.
  int64_t row(int64_t t, int64_t b) const { return bf ? b * T + t : t * B + b; }
  // Distance between the rows of consecutive batch entries at one step.
  int64_t bstride() const { return bf ? T : 1; }
};

tsm_status check_dims(const char* op, int64_t T, int64_t B, int64_t I, int64_t H) {
  if (T < 0 || B < 0 || I < 0 || H < 1)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: need T, B, I >= 0 and H >= 1, got T=%lld B=%lld I=%lld H=%lld", op,
                (long long)T, (long long)B, (long long)I, (long long)H);
  if (double(T) * double(B) * double(4 * H) > 9.0e15 || double(T) * double(B) * double(I) > 9.0e15)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes are too large", op);
  return TSM_OK;
}

}  // namespace
}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_lstm_forward(float* y, float* h_n, float* c_n, float* gates, float* cs, const float* x,
                                    const float* h0, const float* c0, const float* w_ih, const float* w_hh,
                                    const float* b_ih, const float* b_hh, int64_t T, int64_t B, int64_t I,
                                    int64_t H, int batch_first) {
  using namespace tsm;
  const char* op = "lstm_forward";
  if (tsm_status s = check_dims(op, T, B, I, H)) return s;
  if (B == 0) return TSM_OK;
  if (!h_n || !c_n) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: h_n and c_n must not be NULL", op);
  if (T == 0) {
    for (int64_t k = 0; k < B * H; ++k) {
      h_n[k] = h0 ? h0[k] : 0.0f;
      c_n[k] = c0 ? c0[k] : 0.0f;
    }
    return TSM_OK;
  }
  if (!y || !gates || !cs || !w_hh || (I > 0 && (!x || !w_ih)))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: y, gates, cs, x, w_ih and w_hh must not be NULL", op);
  const Dims d{T, B, I, H, batch_first != 0};
  const int64_t G = 4 * H, rows = T * B;
  const RowPanels rt(gemm_ukernel_for_rows(active_simd(), B), B);
  const int nr = rt.uk.nr;
  const int64_t nub = ceil_div(H, nr), aw = rt.width();
  const auto cell = TSM_PICK_ISA(active_simd(), cell_forward);

  // 1. The input product of all steps.
  if (tsm_status s = sgemm(false, true, rows, G, I, 1.0f, x, std::max<int64_t>(I, 1), w_ih,
                           std::max<int64_t>(I, 1), 0.0f, gates, G))
    return s;

  Buf bias(G), wpack(size_t(nub) * 4 * H * nr), apack(size_t(2) * aw * H), zeros(H);
  if (!bias.p || !wpack.p || !apack.p || !zeros.p) return fail(TSM_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  std::memset(zeros.p, 0, sizeof(float) * size_t(H));
  for (int64_t j = 0; j < G; ++j) bias.p[j] = (b_ih ? b_ih[j] : 0.0f) + (b_hh ? b_hh[j] : 0.0f);
  // 2. W_hh^T packed: panel (u, q) = B(p, jj) = w_hh[(q*H + u*nr + jj) * H + p], zero-padded.
  parallel_for(nub, [&](int64_t u) {
    const int64_t u0 = u * nr, cols = std::min<int64_t>(nr, H - u0);
    for (int q = 0; q < 4; ++q) {
      float* dst = wpack.p + (u * 4 + q) * H * nr;
      for (int64_t jj = 0; jj < nr; ++jj) {
        if (jj < cols) {
          const float* src = w_hh + (q * H + u0 + jj) * H;
          for (int64_t p = 0; p < H; ++p) dst[p * nr + jj] = src[p];
        } else {
          for (int64_t p = 0; p < H; ++p) dst[p * nr + jj] = 0.0f;
        }
      }
    }
  });
  const size_t abuf = size_t(aw) * H;
  if (h0) pack_a_cols(apack.p, h0, H, B, H, 0, H, rt);

  const int64_t ldg = d.bstride() * G, ldh = d.bstride() * H;
  // 3. The steps.
  for (int64_t t = 0; t < T; ++t) {
    const float* acur = apack.p + (t & 1) * abuf;
    float* anext = apack.p + ((t + 1) & 1) * abuf;
    const bool recurrent = t > 0 || h0 != nullptr;
    float* g_t = gates + d.row(t, 0) * G;
    float* c_t = cs + d.row(t, 0) * H;
    float* y_t = y + d.row(t, 0) * H;
    // c_{t-1}: the previous step's, c0, or a row of zeros repeated (leading dimension 0).
    const float* c_prev = t > 0 ? cs + d.row(t - 1, 0) * H : c0 ? c0 : zeros.p;
    const int64_t ldcp = t > 0 ? ldh : c0 ? H : 0;
    parallel_for(nub, [&](int64_t u) {
      const int64_t u0 = u * nr, cols = std::min<int64_t>(nr, H - u0);
      if (recurrent)
        for (int q = 0; q < 4; ++q)
          panel_product(rt, B, H, acur, wpack.p + (u * 4 + q) * H * nr, g_t + q * H + u0, ldg, cols, 1.0f);
      for (int64_t b = 0; b < B; ++b)
        cell(g_t + b * ldg + u0, bias.p + u0, c_prev + b * ldcp + u0, c_t + b * ldh + u0, y_t + b * ldh + u0, H,
             cols);
      // These units of h_t, for the next step's product (register transposes, not a strided scatter).
      pack_a_cols(anext, y_t, ldh, B, H, u0, cols, rt);
    });
  }
  for (int64_t b = 0; b < B; ++b) {
    std::memcpy(h_n + b * H, y + d.row(T - 1, b) * H, sizeof(float) * H);
    std::memcpy(c_n + b * H, cs + d.row(T - 1, b) * H, sizeof(float) * H);
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_lstm_backward(float* dx, float* dh0, float* dc0, float* dw_ih, float* dw_hh, float* db_ih,
                                     float* db_hh, const float* dy, const float* dh_n, const float* dc_n,
                                     const float* x, const float* h0, const float* c0, const float* w_ih,
                                     const float* w_hh, const float* y, const float* gates, const float* cs,
                                     int64_t T, int64_t B, int64_t I, int64_t H, int batch_first) {
  using namespace tsm;
  const char* op = "lstm_backward";
  if (tsm_status s = check_dims(op, T, B, I, H)) return s;
  const int64_t G = 4 * H, rows = T * B;
  // Zero what gets no contribution.
  auto zero = [](float* p, int64_t n) { if (p && n > 0) std::memset(p, 0, sizeof(float) * size_t(n)); };
  if (T == 0 || B == 0) {
    zero(dx, rows * I);
    zero(dw_ih, G * I);
    zero(dw_hh, G * H);
    zero(db_ih, G);
    zero(db_hh, G);
    for (int64_t k = 0; k < B * H; ++k) {
      if (dh0) dh0[k] = dh_n ? dh_n[k] : 0.0f;
      if (dc0) dc0[k] = dc_n ? dc_n[k] : 0.0f;
    }
    return TSM_OK;
  }
  if (!w_hh || !y || !gates || !cs || (I > 0 && (!x || !w_ih)))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: x, w_ih, w_hh, y, gates and cs must not be NULL", op);
  const Dims d{T, B, I, H, batch_first != 0};
  const RowPanels rt(gemm_ukernel_for_rows(active_simd(), B), B);
  const int nr = rt.uk.nr;
  const int64_t nub = ceil_div(H, nr), aw = rt.width();
  const auto cell = TSM_PICK_ISA(active_simd(), cell_backward);

  // dG_t of every step stays packed (MR-row panels), for dh_{t-1} and then for dx = dG W_ih.
  Buf dgates(size_t(rows) * G), wpack(size_t(nub) * G * nr), apack(size_t(T + 1) * aw * G), dh(size_t(B) * H),
      dc(size_t(B) * H), zeros(H);
  if (!dgates.p || !wpack.p || !apack.p || !dh.p || !dc.p || !zeros.p)
    return fail(TSM_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  std::memset(zeros.p, 0, sizeof(float) * size_t(H));
  // W_hh packed as the B operand of dh = dG W_hh: panel u = B(p, jj) = w_hh[p * H + u*nr + jj].
  parallel_for(nub, [&](int64_t u) {
    const int64_t u0 = u * nr, cols = std::min<int64_t>(nr, H - u0);
    float* dst = wpack.p + u * G * nr;
    for (int64_t p = 0; p < G; ++p) {
      const float* src = w_hh + p * H + u0;
      float* row = dst + p * nr;
      int64_t jj = 0;
      for (; jj < cols; ++jj) row[jj] = src[jj];
      for (; jj < nr; ++jj) row[jj] = 0.0f;
    }
  });
  const size_t abuf = size_t(aw) * G;
  for (int64_t k = 0; k < B * H; ++k) dc.p[k] = dc_n ? dc_n[k] : 0.0f;
  // The bias gradient, summed over the steps by the tasks that own its columns (no pass over dG);
  // into a scratch row when neither bias wants it.
  Buf dbscratch(db_ih || db_hh ? 0 : G);
  float* db = db_ih ? db_ih : db_hh ? db_hh : dbscratch.p;
  if (!db) return fail(TSM_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
  std::memset(db, 0, sizeof(float) * size_t(G));

  const int64_t ldg = d.bstride() * G, ldh = d.bstride() * H;
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* aprev = apack.p + (t + 1) * abuf;  // dG_{t+1}, packed
    float* acur = apack.p + t * abuf;
    const float* g_t = gates + d.row(t, 0) * G;
    float* dg_t = dgates.p + d.row(t, 0) * G;
    const float* c_t = cs + d.row(t, 0) * H;
    const float* c_prev = t > 0 ? cs + d.row(t - 1, 0) * H : c0 ? c0 : zeros.p;
    const int64_t ldcp = t > 0 ? ldh : c0 ? H : 0;
    const float* dy_t = dy ? dy + d.row(t, 0) * H : nullptr;
    const bool last = t == T - 1;
    parallel_for(nub, [&](int64_t u) {
      const int64_t u0 = u * nr, cols = std::min<int64_t>(nr, H - u0);
      // dh_t for these units: from the step after, or dh_n at the last step.
      if (!last) {
        panel_product(rt, B, G, aprev, wpack.p + u * G * nr, dh.p + u0, H, cols, 0.0f);
      } else {
        for (int64_t b = 0; b < B; ++b)
          for (int64_t j = 0; j < cols; ++j) dh.p[b * H + u0 + j] = dh_n ? dh_n[b * H + u0 + j] : 0.0f;
      }
      for (int64_t b = 0; b < B; ++b)
        cell(dg_t + b * ldg + u0, dc.p + b * H + u0, dh.p + b * H + u0, dy_t ? dy_t + b * ldh + u0 : zeros.p + u0,
             g_t + b * ldg + u0, c_t + b * ldh + u0, c_prev + b * ldcp + u0, db + u0, db + H + u0, db + 2 * H + u0,
             db + 3 * H + u0, H, cols);
      // These units' columns of dG_t, for the step before's product and for dx (register
      // transposes; the strided scatter it replaces had 4% of an LSTM training step's samples).
      for (int q = 0; q < 4; ++q) pack_a_cols(acur, dg_t, ldg, B, G, q * H + u0, cols, rt);
    });
  }
  // dh0 = dG_0 W_hh; dc0 = dc.
  if (dh0) {
    const float* a0 = apack.p;  // dG_0, packed
    parallel_for(nub, [&](int64_t u) {
      const int64_t u0 = u * nr, cols = std::min<int64_t>(nr, H - u0);
      panel_product(rt, B, G, a0, wpack.p + u * G * nr, dh0 + u0, H, cols, 0.0f);
    });
  }
  if (dc0) std::memcpy(dc0, dc.p, sizeof(float) * size_t(B * H));

  // Products over all steps.
  // dx_t = dG_t W_ih on the packed dG_t: W_ih packed once into NR-column panels of depth 4H.
  if (dx && I > 0) {
    const int64_t npi = ceil_div(I, nr);
    Buf wipack(size_t(npi) * G * nr);
    if (!wipack.p) return fail(TSM_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
    parallel_for(npi, [&](int64_t n) {
      const int64_t n0 = n * nr, cols = std::min<int64_t>(nr, I - n0);
      float* dst = wipack.p + n * G * nr;
      for (int64_t p = 0; p < G; ++p) {
        const float* src = w_ih + p * I + n0;
        float* row = dst + p * nr;
        int64_t jj = 0;
        for (; jj < cols; ++jj) row[jj] = src[jj];
        for (; jj < nr; ++jj) row[jj] = 0.0f;
      }
    });
    const int64_t ldx = d.bstride() * I;
    parallel_for(T * npi, [&](int64_t task) {
      const int64_t t = task / npi, n = task % npi, n0 = n * nr;
      panel_product(rt, B, G, apack.p + t * abuf, wipack.p + n * G * nr, dx + d.row(t, 0) * I + n0, ldx,
                    std::min<int64_t>(nr, I - n0), 0.0f);
    });
  }
  // dW_ih = dG^T X and dW_hh = dG^T H_prev, H_prev rows in x's row order (h0 or zeros at t = 0).
  // When both are wanted they run as one product dG^T [X | H_prev] (dG^T is packed once).
  const bool fuse = dw_ih && dw_hh && I > 0;
  if (dw_ih && I > 0 && !fuse)
    if (tsm_status s = sgemm(true, false, G, I, rows, 1.0f, dgates.p, G, x, I, 0.0f, dw_ih, I)) return s;
  if (dw_hh) {
    const int64_t K = fuse ? I + H : H;  // columns of the right operand
    Buf rhs(size_t(rows) * K), out(fuse ? size_t(G) * K : 0);
    if (!rhs.p || (fuse && !out.p)) return fail(TSM_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
    float* hcol = rhs.p + (fuse ? I : 0);
    parallel_for(std::min<int64_t>(T, 4 * int64_t(num_threads())), [&](int64_t task) {
      const int64_t ntask = std::min<int64_t>(T, 4 * int64_t(num_threads()));
      for (int64_t t = T * task / ntask; t < T * (task + 1) / ntask; ++t)
        for (int64_t b = 0; b < B; ++b) {
          const int64_t r = d.row(t, b);
          if (fuse) std::memcpy(rhs.p + r * K, x + r * I, sizeof(float) * size_t(I));
          float* dst = hcol + r * K;
          if (t > 0) std::memcpy(dst, y + d.row(t - 1, b) * H, sizeof(float) * size_t(H));
          else if (h0) std::memcpy(dst, h0 + b * H, sizeof(float) * size_t(H));
          else std::memset(dst, 0, sizeof(float) * size_t(H));
        }
    });
    if (tsm_status s = sgemm(true, false, G, K, rows, 1.0f, dgates.p, G, rhs.p, K, 0.0f, fuse ? out.p : dw_hh, K))
      return s;
    if (fuse)
      for (int64_t j = 0; j < G; ++j) {
        std::memcpy(dw_ih + j * I, out.p + j * K, sizeof(float) * size_t(I));
        std::memcpy(dw_hh + j * H, out.p + j * K + I, sizeof(float) * size_t(H));
      }
  }
  if (db_ih && db_hh) std::memcpy(db_hh, db_ih, sizeof(float) * size_t(G));
  return TSM_OK;
}

}  // extern "C"
