// The tile loops of the fused attention (cpp/kernels/attention.cpp), compiled once per ISA:
// attention_generic.cpp, attention_avx2.cpp and attention_avx512.cpp each include this file inside
// their own namespace with their own compiler flags, so the row passes (mask, max, exp, sums,
// dropout) are vectorised for that ISA. The tile products go through tsm::sgemm, which picks its
// own micro-kernel; inside a parallel_for task it runs on the calling thread.
//
// Shapes (one head, bh = b * H + h):
//   Q (Lq, D)  K, V (Lk, D)  O, dO (Lq, D)  lse, delta (Lq)
//   S tile (nq, nk) = scale * Q[i0:i0+nq] K[j0:j0+nk]^T + mask, row stride BK
//
// forward_block   one block of BQ query rows against all keys, online softmax (FlashAttention-2):
//                 m = running max, l = running sum; O accumulates unnormalised, divided at the end.
// backward_keys   keys blocks [kb0, kb1) against every query block that sees them:
//                 P = exp(S - lse), Pd = P * Z (dropout), dV += Pd^T dO, dP = (dO V^T) * Z,
//                 dS = P * (dP - delta), dK += scale dS^T Q, dQ += scale dS K.
// ATTN_IMPL_NS must be defined by the including file.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../../runtime/runtime.h"
#include "../kernels.h"
#include "attention_kernel.h"

namespace tsm {
namespace ATTN_IMPL_NS {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

inline float bits_to_float(int32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// exp(x) for x <= 0 (the only case here), branch-free so that loops over it vectorise:
// exp(-inf) = 0, relative error ~2e-7. x = n ln2 + r, |r| <= ln2/2, e^r by its Taylor polynomial.
inline float exp_nonpos(float x) {
  const float xc = std::min(std::max(x, -87.0f), 0.0f);
  const float t = xc * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest integer
  const float r = (xc - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // A NaN input leaves n NaN: convert a harmless 0 instead (p is NaN, so the result still is).
  const int32_t ni = static_cast<int32_t>(n == n ? n : 0.0f);
  const float s = bits_to_float(static_cast<int32_t>(static_cast<uint32_t>(ni + 127) << 23));
  return x < -87.0f ? 0.0f : p * s;
}

// Reductions keep 16 partial results (one vector of lanes), so that they vectorise without
// -ffast-math (a single accumulator is a serial dependency the compiler may not reorder).
constexpr int kLanes = 16;

inline float row_max(const float* __restrict s, int64_t n) {
  float m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = kNegInf;
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) m[l] = s[j + l] > m[l] ? s[j + l] : m[l];
  float r = kNegInf;
  for (int l = 0; l < kLanes; ++l) r = m[l] > r ? m[l] : r;
  for (; j < n; ++j) r = s[j] > r ? s[j] : r;
  return r;
}

// s = exp(s - m) in place; returns the sum.
inline float row_exp_sum(float* __restrict s, int64_t n, float m) {
  for (int64_t j = 0; j < n; ++j) s[j] = exp_nonpos(s[j] - m);
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += s[j + l];
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += acc[l];
  for (; j < n; ++j) sum += s[j];
  return sum;
}

inline void row_scale(float* __restrict x, int64_t n, float a) {
  for (int64_t j = 0; j < n; ++j) x[j] *= a;
}

// Adds the mask of query row i, keys [j0, j0 + nk), and the causal limit (keys j > i masked).
inline void row_mask(float* __restrict s, const AttnArgs& a, int64_t b, int64_t h, int64_t i, int64_t j0,
                     int64_t nk) {
  if (a.mask_kind != TSM_ATTN_MASK_NONE) {
    const int64_t* st = a.mask_strides;
    const int64_t base = b * st[0] + h * st[1] + i * st[2] + j0 * st[3], sj = st[3];
    switch (a.mask_kind) {
      case TSM_ATTN_MASK_FLOAT: {
        const float* m = static_cast<const float*>(a.mask) + base;
        if (sj == 1) for (int64_t j = 0; j < nk; ++j) s[j] += m[j];
        else for (int64_t j = 0; j < nk; ++j) s[j] += m[j * sj];
        break;
      }
      case TSM_ATTN_MASK_BOOL_I32: {
        const int32_t* m = static_cast<const int32_t*>(a.mask) + base;
        if (sj == 1) for (int64_t j = 0; j < nk; ++j) s[j] = m[j] != 0 ? s[j] : kNegInf;
        else for (int64_t j = 0; j < nk; ++j) s[j] = m[j * sj] != 0 ? s[j] : kNegInf;
        break;
      }
      case TSM_ATTN_MASK_BOOL_U8: {
        const uint8_t* m = static_cast<const uint8_t*>(a.mask) + base;
        for (int64_t j = 0; j < nk; ++j) s[j] = m[j * sj] != 0 ? s[j] : kNegInf;
        break;
      }
      default: break;
    }
  }
  if (a.causal && j0 + nk - 1 > i) {
    for (int64_t j = std::max<int64_t>(i + 1 - j0, 0); j < nk; ++j) s[j] = kNegInf;
  }
}

// Dropout factors of row i, keys [j0, j0 + nk): z[j] = (u >= p) / (1 - p).
inline void row_dropout_factors(float* __restrict z, const AttnArgs& a, int64_t bh, int64_t i, int64_t j0,
                                int64_t nk) {
  const int64_t e0 = (bh * a.lq + i) * a.lk + j0;
  philox_uniform01(z, e0, e0 + nk, a.seed, a.offset);
  const float pf = a.p_round_up, keep_scale = a.keep_scale;
  for (int64_t j = 0; j < nk; ++j) z[j] = z[j] >= pf ? keep_scale : 0.0f;
}

}  // namespace

// One block of query rows [qb*BQ, ...) of head bh. Scratch: s (BQ * BK), z (BK).
void forward_block(const AttnArgs& a, int64_t bh, int64_t qb, float* s, float* z) {
  const int64_t D = a.d, Lq = a.lq, Lk = a.lk;
  const int64_t b = bh / a.h, h = bh % a.h;
  const int64_t i0 = qb * kAttnBQ, nq = std::min<int64_t>(kAttnBQ, Lq - i0);
  const float* Q = a.q + (bh * Lq + i0) * D;
  const float* K = a.k + bh * Lk * D;
  const float* V = a.v + bh * Lk * D;
  float* O = a.out + (bh * Lq + i0) * D;
  float m[kAttnBQ], l[kAttnBQ];
  for (int64_t r = 0; r < nq; ++r) { m[r] = kNegInf; l[r] = 0.0f; }
  std::fill(O, O + nq * D, 0.0f);
  const int64_t kend = a.causal ? std::min<int64_t>(Lk, i0 + nq) : Lk;
  for (int64_t j0 = 0; j0 < kend; j0 += kAttnBK) {
    const int64_t nk = std::min<int64_t>(kAttnBK, kend - j0);
    sgemm(false, true, nq, nk, D, a.scale, Q, D, K + j0 * D, D, 0.0f, s, kAttnBK);
    for (int64_t r = 0; r < nq; ++r) {
      float* row = s + r * kAttnBK;
      const int64_t i = i0 + r;
      row_mask(row, a, b, h, i, j0, nk);
      const float mnew = std::max(m[r], row_max(row, nk));
      const float mref = mnew == kNegInf ? 0.0f : mnew;  // every key so far masked: P = 0
      const float corr = exp_nonpos(m[r] - mref);
      const float sum = row_exp_sum(row, nk, mref);
      l[r] = l[r] * corr + sum;
      m[r] = mnew;
      if (corr != 1.0f && j0 > 0) row_scale(O + r * D, D, corr);
      if (a.dropout) {
        row_dropout_factors(z, a, bh, i, j0, nk);
        for (int64_t j = 0; j < nk; ++j) row[j] *= z[j];
      }
    }
    sgemm(false, false, nq, D, nk, 1.0f, s, kAttnBK, V + j0 * D, D, 1.0f, O, D);
  }
  float* lse = a.lse_out + bh * Lq + i0;
  for (int64_t r = 0; r < nq; ++r) {
    if (l[r] > 0.0f) {
      row_scale(O + r * D, D, 1.0f / l[r]);
      lse[r] = m[r] + std::log(l[r]);
    } else {
      std::fill(O + r * D, O + (r + 1) * D, 0.0f);
      lse[r] = kPosInf;
    }
  }
}

// Key blocks [kb0, kb1) of head bh against every query block that sees them. dK, dV of those
// blocks are written (overwritten); dQ (Lq, D) of the head is accumulated into dq_head.
// Scratch: p (BQ*BK), pd (BQ*BK, dropout only), dp (BQ*BK), z (BK).
void backward_keys(const AttnArgs& a, int64_t bh, int64_t kb0, int64_t kb1, float* dq_head, float* p,
                   float* pd, float* dp, float* z) {
  const int64_t D = a.d, Lq = a.lq, Lk = a.lk;
  const int64_t b = bh / a.h, h = bh % a.h;
  const float* Qh = a.q + bh * Lq * D;
  const float* Kh = a.k + bh * Lk * D;
  const float* Vh = a.v + bh * Lk * D;
  const float* dOh = a.dout + bh * Lq * D;
  const float* lse = a.lse + bh * Lq;
  const float* delta = a.delta + bh * Lq;
  for (int64_t kb = kb0; kb < kb1; ++kb) {
    const int64_t j0 = kb * kAttnBK, nk = std::min<int64_t>(kAttnBK, Lk - j0);
    const float* Kj = Kh + j0 * D;
    const float* Vj = Vh + j0 * D;
    float* dKj = a.dk + (bh * Lk + j0) * D;
    float* dVj = a.dv + (bh * Lk + j0) * D;
    std::fill(dKj, dKj + nk * D, 0.0f);
    std::fill(dVj, dVj + nk * D, 0.0f);
    if (a.causal && j0 >= Lq) continue;  // no query sees these keys
    // Causal: query i sees key j only when j <= i, so blocks ending before j0 contribute nothing.
    const int64_t qstart = a.causal ? (std::min(j0, Lq) / kAttnBQ) * kAttnBQ : 0;
    for (int64_t i0 = qstart; i0 < Lq; i0 += kAttnBQ) {
      const int64_t nq = std::min<int64_t>(kAttnBQ, Lq - i0);
      const float* Qi = Qh + i0 * D;
      const float* dOi = dOh + i0 * D;
      sgemm(false, true, nq, nk, D, a.scale, Qi, D, Kj, D, 0.0f, p, kAttnBK);
      sgemm(false, true, nq, nk, D, 1.0f, dOi, D, Vj, D, 0.0f, dp, kAttnBK);
      bool any = false;
      for (int64_t r = 0; r < nq; ++r) {
        const int64_t i = i0 + r;
        float* prow = p + r * kAttnBK;
        float* dprow = dp + r * kAttnBK;
        row_mask(prow, a, b, h, i, j0, nk);
        const float li = lse[i];
        if (li == kPosInf) {  // a fully masked row: no gradient
          std::fill(prow, prow + nk, 0.0f);
          std::fill(dprow, dprow + nk, 0.0f);
          if (a.dropout) std::fill(pd + r * kAttnBK, pd + r * kAttnBK + nk, 0.0f);
          continue;
        }
        any = true;
        for (int64_t j = 0; j < nk; ++j) prow[j] = exp_nonpos(prow[j] - li);
        const float di = delta[i];
        if (a.dropout) {
          row_dropout_factors(z, a, bh, i, j0, nk);
          float* pdrow = pd + r * kAttnBK;
          for (int64_t j = 0; j < nk; ++j) {
            pdrow[j] = prow[j] * z[j];
            dprow[j] = prow[j] * (dprow[j] * z[j] - di);
          }
        } else {
          for (int64_t j = 0; j < nk; ++j) dprow[j] = prow[j] * (dprow[j] - di);
        }
      }
      if (!any) continue;
      // dV_j += Pd^T dO_i;  dK_j += scale dS^T Q_i;  dQ_i += scale dS K_j
      sgemm(true, false, nk, D, nq, 1.0f, a.dropout ? pd : p, kAttnBK, dOi, D, 1.0f, dVj, D);
      sgemm(true, false, nk, D, nq, a.scale, dp, kAttnBK, Qi, D, 1.0f, dKj, D);
      sgemm(false, false, nq, D, nk, a.scale, dp, kAttnBK, Kj, D, 1.0f, dq_head + i0 * D, D);
    }
  }
}

}  // namespace ATTN_IMPL_NS
}  // namespace tsm
