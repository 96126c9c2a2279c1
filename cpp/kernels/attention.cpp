// Fused scaled-dot-product attention, float32, contiguous (B, H, L, D): forward and backward side by
// side (FlashAttention-2 on the CPU), plus the slow reference.
//
//   q (B,H,Lq,D)  k, v (B,H,Lk,D)  out (B,H,Lq,D)  lse (B,H,Lq)  mask: see tensorsmith.h
//   forward   out = dropout(softmax(scale q k^T + mask)) v,  lse = logsumexp of each score row
//   backward  delta (B,H,Lq) = rowsum(dout * out), then per key block (simd/attention_impl.h):
//             dv = Pd^T dout, dk = scale dS^T q, dq = scale dS k with dS = P (dP Z - delta)
//
// Threads: the forward runs one task per (head, block of 64 query rows). The backward runs one task
// per (head, range of key blocks); each task owns its dk, dv rows and accumulates dq for its head,
// into dq itself when a head has one task, else into a per-task partial summed afterwards (used
// when there are fewer heads than 2 x threads, e.g. one long sequence).
// Memory: per-thread tiles of 64 x 128 floats and O(B*H*Lq) for delta; never Lq x Lk.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "../runtime/runtime.h"
#include "kernels.h"
#include "simd/attention_kernel.h"

namespace tsm {
namespace {

struct AlignedDeleter {
  void operator()(float* p) const { aligned_free(p); }
};
using Buffer = std::unique_ptr<float, AlignedDeleter>;
Buffer alloc(size_t floats) { return Buffer(static_cast<float*>(aligned_malloc(floats * sizeof(float)))); }

const AttnImpl& impl() {
  const tsm_simd simd = active_simd();
  if (simd == TSM_SIMD_AVX512)
    if (const AttnImpl* p = attention_impl_avx512()) return *p;
  if (simd == TSM_SIMD_AVX512 || simd == TSM_SIMD_AVX2)
    if (const AttnImpl* p = attention_impl_avx2()) return *p;
  return attention_impl_generic();
}

tsm_status check_desc(const char* op, const tsm_attention_desc* d, bool* empty) {
  if (!d) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: desc is NULL", op);
  const int64_t s[5] = {d->b, d->h, d->lq, d->lk, d->d};
  const char* names[5] = {"b", "h", "lq", "lk", "d"};
  *empty = false;
  for (int i = 0; i < 5; ++i) {
    if (s[i] < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s must be >= 0, got %lld", op, names[i], (long long)s[i]);
    if (s[i] == 0) *empty = true;
  }
  if (!std::isfinite(d->scale)) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: scale must be finite, got %g", op, (double)d->scale);
  if (!(d->dropout_p >= 0.0 && d->dropout_p < 1.0))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: dropout_p must be in [0, 1), got %g", op, d->dropout_p);
  if (d->mask_kind < TSM_ATTN_MASK_NONE || d->mask_kind > TSM_ATTN_MASK_FLOAT)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: unknown mask_kind %d", op, (int)d->mask_kind);
  if (d->mask_kind != TSM_ATTN_MASK_NONE) {
    for (int i = 0; i < 4; ++i)
      if (d->mask_strides[i] < 0)
        return fail(TSM_ERR_INVALID_ARGUMENT, "%s: mask strides must be >= 0, got %lld at %d", op,
                    (long long)d->mask_strides[i], i);
    if (!d->mask && !*empty) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: mask is NULL but mask_kind is %d", op, (int)d->mask_kind);
  }
  // Every index must fit comfortably in int64 (dropout element numbers and offsets).
  const double total = double(d->b) * double(d->h) * double(std::max(d->lq, d->lk)) * double(std::max(d->lk, d->d));
  if (total > 9.0e15) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes are too large", op);
  return TSM_OK;
}

AttnArgs make_args(const tsm_attention_desc* d) {
  AttnArgs a{};
  a.b = d->b; a.h = d->h; a.lq = d->lq; a.lk = d->lk; a.d = d->d;
  a.scale = d->scale;
  a.causal = d->is_causal != 0;
  a.mask_kind = d->mask_kind;
  a.mask = d->mask_kind == TSM_ATTN_MASK_NONE ? nullptr : d->mask;
  for (int i = 0; i < 4; ++i) a.mask_strides[i] = d->mask_strides[i];
  a.dropout = d->dropout_p > 0.0;
  // As tsm_dropout_forward: keep when u >= p, u a multiple of 2^-24, so compare with p rounded up.
  float pf = static_cast<float>(d->dropout_p);
  if (double(pf) < d->dropout_p) pf = std::nextafter(pf, 2.0f);
  a.p_round_up = pf;
  a.keep_scale = a.dropout ? static_cast<float>(1.0 / (1.0 - d->dropout_p)) : 1.0f;
  a.seed = d->seed;
  a.offset = d->offset;
  return a;
}

inline int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }

}  // namespace
}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_attention_forward(float* out, float* lse, const float* q, const float* k,
                                         const float* v, const tsm_attention_desc* d) {
  const char* op = "attention_forward";
  bool empty = false;
  tsm_status st = tsm::check_desc(op, d, &empty);
  if (st != TSM_OK) return st;
  if (d->b == 0 || d->h == 0 || d->lq == 0) return TSM_OK;
  if (!out || !lse) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !out ? "out" : "lse");
  const int64_t rows = d->b * d->h * d->lq;
  if (d->lk == 0 || d->d == 0) {  // no keys: every row fully masked; or D = 0: empty outputs
    std::fill(out, out + rows * d->d, 0.0f);
    std::fill(lse, lse + rows, d->lk == 0 ? std::numeric_limits<float>::infinity() : std::log(float(d->lk)));
    return TSM_OK;
  }
  if (!q || !k || !v) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !q ? "q" : !k ? "k" : "v");
  tsm::AttnArgs a = tsm::make_args(d);
  a.q = q; a.k = k; a.v = v; a.out = out; a.lse_out = lse;
  const tsm::AttnImpl& im = tsm::impl();
  const int64_t bh = d->b * d->h, nqb = tsm::ceil_div(d->lq, tsm::kAttnBQ);
  bool oom = false;
  tsm::parallel_for(bh * nqb, [&](int64_t t) {
    float* s = tsm::scratch(2, size_t(tsm::kAttnBQ * tsm::kAttnBK));
    float* z = tsm::scratch(3, size_t(tsm::kAttnBK));
    if (!s || !z) { oom = true; return; }
    im.forward_block(a, t / nqb, t % nqb, s, z);
  });
  if (oom) return tsm::fail(TSM_ERR_OUT_OF_MEMORY, "%s: cannot allocate the score tiles", op);
  return TSM_OK;
}

TSM_API tsm_status tsm_attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                          const float* q, const float* k, const float* v,
                                          const float* out, const float* lse,
                                          const tsm_attention_desc* d) {
  const char* op = "attention_backward";
  bool empty = false;
  tsm_status st = tsm::check_desc(op, d, &empty);
  if (st != TSM_OK) return st;
  if (empty) {  // whatever is non-empty gets zero gradients
    if (dq) std::fill(dq, dq + d->b * d->h * d->lq * d->d, 0.0f);
    if (dk) std::fill(dk, dk + d->b * d->h * d->lk * d->d, 0.0f);
    if (dv) std::fill(dv, dv + d->b * d->h * d->lk * d->d, 0.0f);
    return TSM_OK;
  }
  if (!dq || !dk || !dv) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !dq ? "dq" : !dk ? "dk" : "dv");
  if (!dout || !q || !k || !v || !out || !lse)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: an input is NULL", op);
  const int64_t B = d->b, H = d->h, Lq = d->lq, Lk = d->lk, D = d->d, BH = B * H;
  // delta (B,H,Lq) = rowsum(dout * out)
  tsm::Buffer delta = tsm::alloc(size_t(BH * Lq));
  if (!delta) return tsm::fail(TSM_ERR_OUT_OF_MEMORY, "%s: cannot allocate delta", op);
  float* dl = delta.get();
  tsm::parallel_for(BH, [&](int64_t t) {
    for (int64_t i = t * Lq; i < (t + 1) * Lq; ++i) {
      const float* o = out + i * D;
      const float* g = dout + i * D;
      float s = 0.0f;
      for (int64_t j = 0; j < D; ++j) s += o[j] * g[j];
      dl[i] = s;
    }
  });
  tsm::AttnArgs a = tsm::make_args(d);
  a.q = q; a.k = k; a.v = v; a.dout = dout; a.lse = lse; a.delta = dl; a.dq = dq; a.dk = dk; a.dv = dv;
  const tsm::AttnImpl& im = tsm::impl();
  const int64_t nkb = tsm::ceil_div(Lk, tsm::kAttnBK);
  const int64_t nt = tsm::num_threads();
  const int64_t nsplit = BH >= 2 * nt ? 1 : std::min<int64_t>(nkb, tsm::ceil_div(2 * nt, BH));
  tsm::Buffer partial;
  if (nsplit > 1) {
    partial = tsm::alloc(size_t(BH * nsplit * Lq * D));
    if (!partial) return tsm::fail(TSM_ERR_OUT_OF_MEMORY, "%s: cannot allocate dq partials", op);
  }
  float* part = partial.get();
  bool oom = false;
  tsm::parallel_for(BH * nsplit, [&](int64_t t) {
    const int64_t bh = t / nsplit, sp = t % nsplit;
    float* dq_head = nsplit > 1 ? part + t * Lq * D : dq + bh * Lq * D;
    std::fill(dq_head, dq_head + Lq * D, 0.0f);
    float* p = tsm::scratch(2, size_t(3 * tsm::kAttnBQ * tsm::kAttnBK));
    float* z = tsm::scratch(3, size_t(tsm::kAttnBK));
    if (!p || !z) { oom = true; return; }
    // Causal: later key blocks meet fewer queries; balance by splitting the blocks unevenly? Keep
    // contiguous ranges (simple); the last ranges are cheaper.
    const int64_t kb0 = nkb * sp / nsplit, kb1 = nkb * (sp + 1) / nsplit;
    im.backward_keys(a, bh, kb0, kb1, dq_head, p, p + tsm::kAttnBQ * tsm::kAttnBK,
                     p + 2 * tsm::kAttnBQ * tsm::kAttnBK, z);
  });
  if (oom) return tsm::fail(TSM_ERR_OUT_OF_MEMORY, "%s: cannot allocate the score tiles", op);
  if (nsplit > 1) {
    tsm::parallel_for(BH, [&](int64_t bh) {
      float* dst = dq + bh * Lq * D;
      const float* src = part + bh * nsplit * Lq * D;
      std::copy(src, src + Lq * D, dst);
      for (int64_t sp = 1; sp < nsplit; ++sp) {
        const float* s = src + sp * Lq * D;
        for (int64_t i = 0; i < Lq * D; ++i) dst[i] += s[i];
      }
    });
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_attention_forward_reference(float* out, float* lse, const float* q,
                                                   const float* k, const float* v,
                                                   const tsm_attention_desc* d) {
  const char* op = "attention_forward_reference";
  bool empty = false;
  tsm_status st = tsm::check_desc(op, d, &empty);
  if (st != TSM_OK) return st;
  if (d->b == 0 || d->h == 0 || d->lq == 0) return TSM_OK;
  if (!out) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: out is NULL", op);
  const int64_t B = d->b, H = d->h, Lq = d->lq, Lk = d->lk, D = d->d;
  if (Lk > 0 && D > 0 && (!q || !k || !v)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: an input is NULL", op);
  tsm::AttnArgs a = tsm::make_args(d);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> s(size_t(std::max<int64_t>(Lk, 1)));
  std::vector<float> u(size_t(std::max<int64_t>(Lk, 1)));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i) {
        const int64_t bh = b * H + h;
        const float* qi = q + (bh * Lq + i) * D;
        double mx = -inf;
        for (int64_t j = 0; j < Lk; ++j) {
          const float* kj = k + (bh * Lk + j) * D;
          double acc = 0.0;
          for (int64_t c = 0; c < D; ++c) acc += double(qi[c]) * double(kj[c]);
          acc *= double(d->scale);
          if (a.mask_kind != TSM_ATTN_MASK_NONE) {
            const int64_t* ms = a.mask_strides;
            const int64_t o = b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3];
            if (a.mask_kind == TSM_ATTN_MASK_FLOAT) acc += double(static_cast<const float*>(a.mask)[o]);
            else if (a.mask_kind == TSM_ATTN_MASK_BOOL_I32) { if (!static_cast<const int32_t*>(a.mask)[o]) acc = -inf; }
            else if (!static_cast<const uint8_t*>(a.mask)[o]) acc = -inf;
          }
          if (a.causal && j > i) acc = -inf;
          s[j] = acc;
          mx = std::max(mx, acc);
        }
        float* oi = out + (bh * Lq + i) * D;
        if (mx == -inf) {
          std::fill(oi, oi + D, 0.0f);
          if (lse) lse[bh * Lq + i] = std::numeric_limits<float>::infinity();
          continue;
        }
        double sum = 0.0;
        for (int64_t j = 0; j < Lk; ++j) sum += (s[j] = std::exp(s[j] - mx));
        if (lse) lse[bh * Lq + i] = float(mx + std::log(sum));
        if (a.dropout) tsm::philox_uniform01(u.data(), (bh * Lq + i) * Lk, (bh * Lq + i + 1) * Lk, a.seed, a.offset);
        for (int64_t c = 0; c < D; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < Lk; ++j) {
            double pj = s[j] / sum;
            if (a.dropout) pj = u[size_t(j)] >= a.p_round_up ? pj / (1.0 - d->dropout_p) : 0.0;
            acc += pj * double(v[(bh * Lk + j) * D + c]);
          }
          oi[c] = float(acc);
        }
      }
  return TSM_OK;
}

}  // extern "C"
