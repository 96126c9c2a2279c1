// Fused attention backward on the GPU (FlashAttention-2 style), and the C ABI entry point
// tsm_cuda_attention_backward.
//
//   inputs  dout (B,H,Lq,D), q (B,H,Lq,D), k, v (B,H,Lk,D), o (B,H,Lq,D), lse (B,H,Lq) float32
//   outputs dq (B,H,Lq,D), dk, dv (B,H,Lk,D), in the input dtype
//   with S = scale q k^T, P = exp(S - lse), dV = P^T dO, dP = dO V^T, dS = P * (dP - delta),
//   delta = rowsum(dO * O), dQ = scale dS K, dK = scale dS^T Q.
//
// 1. attention_bwd_preprocess_kernel: delta (B,H,Lq) = rowsum(dout * o) in float32, one warp per
//    row; on the mma path it also zeroes the float32 dq accumulator.
// 2. mma path (bf16/f16, D <= 128; attention_mma_bwd_kernel): one block per (block of BC keys, head);
//    WARPS warps, each owning 16 keys, whose dK and dV (16 x DP) stay in float32 registers for the
//    whole block. K and V tiles sit in shared memory; Q, dO (and lse, delta) tiles of BR queries
//    are streamed through two stages with cp.async (one tile ahead). Each warp works on the
//    TRANSPOSED score tile, keys x queries, so that every product it needs takes its 16 keys as the
//    M dimension and its register fragments as the A operand without a trip through shared memory:
//        S^T  = K_w Q^T            (A: K rows, ldmatrix;     B: Q rows, ldmatrix)
//        P^T  = exp2(S^T scale log2e - lse log2e), masked -> 0
//        dV  += P^T dO             (A: P^T from the S^T accumulators; B: dO, ldmatrix.trans)
//        dP^T = V_w dO^T           (A: V rows, ldmatrix;     B: dO rows, ldmatrix)
//        dS^T = P^T * (dP^T - delta)
//        dK  += dS^T Q             (A: dS^T from registers;  B: Q, ldmatrix.trans)
//    dQ needs dS (queries x keys of the whole block): each warp writes its dS^T rows to shared
//    memory (16-bit), a barrier, then the warps split the BR x DP tile of dQ = dS K (A: dS via
//    ldmatrix.trans of dS^T; B: K, ldmatrix.trans) and add it to the float32 accumulator with
//    atomicAdd (red.global.add.f32).
//    Why atomics for dQ: every key block contributes to every query row of its head, and a block
//    owns keys; atomics let one pass read K, V once and Q, dO once per key block. The alternative,
//    a second kernel that owns query blocks and recomputes S and dP (two more of the five GEMMs
//    per tile, ~40% more tensor work) is deterministic; atomics trade bit-reproducibility of dq
//    (the order of float additions varies between runs) for speed, as FlashAttention-2 does.
// 3. attention_bwd_dq_convert_kernel: dq = dtype(scale * dq_acc).
// general path (any dtype, D <= 256): one warp per key row for dK and dV (loops over queries), and
//    one warp per query row for dQ (loops over keys): no atomics, float32, simple and slow.
// Causal: a key block starts at the first query block that reaches it. Keys past the key length
// of their batch, and key blocks no query attends, get zero gradients.
#include <atomic>
#include <cstdint>

#include "attention_common.cuh"

namespace tsm {
namespace cuda {
namespace attn {
namespace {

template <int DP_, int WARPS_, int BR_>
struct BwdCfg {
  static constexpr int DP = DP_;
  static constexpr int WARPS = WARPS_;
  static constexpr int BR = BR_;                 // queries per streamed tile
  static constexpr int THREADS = WARPS * 32;
  static constexpr int BC = WARPS * 16;          // keys per block (16 per warp)
  static constexpr int SD = DP + 8;              // row stride of K, V, Q, dO tiles (+16 bytes)
  static constexpr int SDS = BR + 8;             // row stride of the dS^T tile (+16 bytes)
  static constexpr int KV_ELEMS = BC * SD;
  static constexpr int QD_ELEMS = BR * SD;
  static constexpr int DS_ELEMS = BC * SDS;
  // K, V, 2 stages of (Q, dO), dS^T (16-bit elements), then 2 stages of lse and delta (floats).
  static constexpr int HALF_ELEMS = 2 * KV_ELEMS + 4 * QD_ELEMS + DS_ELEMS;
  static constexpr size_t SMEM = size_t(HALF_ELEMS) * 2 + 4 * BR * sizeof(float);
  // dQ tile (BR x DP) split over the warps: RG groups of 16 rows x CG groups of DPW columns.
  static constexpr int RG = BR / 16;
  static constexpr int CG = WARPS / RG;
  static constexpr int DPW = DP / CG;
  static_assert(WARPS % RG == 0, "warps must split evenly over the dq row groups");
  static_assert(DPW % 16 == 0, "dq columns per warp must be a multiple of 16");
  static_assert((HALF_ELEMS * 2) % 16 == 0, "float arrays must start 16-byte aligned");
};

// D = 64: 8 warps = 128 keys per block, 64 queries per tile: 91 KiB.
using BwdCfg64 = BwdCfg<64, 8, 64>;
// D = 128: 8 warps = 128 keys, 32 queries per tile (64 made ptxas spill): 112.5 KiB (sm_80 / sm_90).
using BwdCfg128 = BwdCfg<128, 8, 32>;

// delta = rowsum(dout * o), one warp per row of (B*H*Lq); zeroes dq_acc's row when given.
template <typename T>
__global__ void __launch_bounds__(128) attention_bwd_preprocess_kernel(BwdParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (row >= int64_t(p.bh) * p.lq) return;
  const int d = p.d;
  const T* g = static_cast<const T*>(p.dout) + row * d;
  const T* o = static_cast<const T*>(p.o) + row * d;
  float s = 0.f;
  for (int c = lane; c < d; c += 32) s += to_f<T>(g[c]) * to_f<T>(o[c]);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  if (lane == 0) p.delta[row] = s;
  if (p.dq_acc)
    for (int c = lane; c < d; c += 32) p.dq_acc[row * d + c] = 0.f;
}

// dq = dtype(scale * dq_acc), grid-stride over B*H*Lq*D.
template <typename T>
__global__ void attention_bwd_dq_convert_kernel(BwdParams p, int64_t n) {
  T* dq = static_cast<T*>(p.dq);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dq[i] = from_f<T>(p.dq_acc[i] * p.scale);
}

template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS) attention_mma_bwd_kernel(BwdParams p) {
#if TSM_ATTN_SM80
  constexpr int DP = C::DP, BR = C::BR, BC = C::BC, SD = C::SD, SDS = C::SDS, THREADS = C::THREADS;
  constexpr int DT = DP / 8;   // 8-column n-tiles of dK, dV
  constexpr int QT = BR / 8;   // 8-query n-tiles of S^T, dP^T
  constexpr int KS = DP / 16;  // k-steps over the head dim
  TSM_ATTN_DYNAMIC_SMEM(smem_raw);
  T* Ks = reinterpret_cast<T*>(smem_raw);
  T* Vs = Ks + C::KV_ELEMS;
  T* QDs = Vs + C::KV_ELEMS;           // stage s: Q at QDs + 2*s*QD_ELEMS, dO right after
  T* dSs = QDs + 4 * C::QD_ELEMS;      // dS^T: BC keys x BR queries
  float* LDs = reinterpret_cast<float*>(smem_raw + size_t(C::HALF_ELEMS) * 2);  // stage s: lse2 at 2*s*BR, delta after

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int quad = lane >> 3, r8 = lane & 7;

  const int64_t id = blockIdx.x;
  const int kb = int(id / p.bh);  // low key blocks first: under causal they have the most work
  const int bh = int(id % p.bh);
  const int b = bh / p.h;
  const int k0 = kb * BC;
  const int d = p.d;
  const int64_t qoff = int64_t(bh) * p.lq * d, koff = int64_t(bh) * p.lk * d;
  const T* Q = static_cast<const T*>(p.q) + qoff;
  const T* dO = static_cast<const T*>(p.dout) + qoff;
  const T* K = static_cast<const T*>(p.k) + koff;
  const T* V = static_cast<const T*>(p.v) + koff;
  const float* LSE = p.lse + int64_t(bh) * p.lq;
  const float* DELTA = p.delta + int64_t(bh) * p.lq;
  float* DQ = p.dq_acc + qoff;

  const int kv_len = key_count(p.key_lengths, b, p.lk);
  const int nqt = (p.lq + BR - 1) / BR;
  // No query attends keys >= kv_len; under causal, query tiles before the block's first key neither.
  const int qt0 = k0 >= kv_len ? nqt : (p.causal ? k0 / BR : 0);
  const bool vec = p.vec != 0;

  float dk[DT][4], dv[DT][4];
#pragma unroll
  for (int j = 0; j < DT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[j][e] = dv[j][e] = 0.f;

  // Loads query tile qt into stage st: Q and dO by cp.async (or element-wise), lse (log2 units,
  // +inf past Lq so those columns get P = 0) and delta (0 past Lq) by plain stores.
  auto load_q_tile = [&](int qt, int st) {
    T* qs = QDs + st * 2 * C::QD_ELEMS;
    load_tile<T, BR, DP, SD, THREADS>(qs, Q, p.lq, d, qt * BR, vec, tid);
    load_tile<T, BR, DP, SD, THREADS>(qs + C::QD_ELEMS, dO, p.lq, d, qt * BR, vec, tid);
    float* ld = LDs + st * 2 * BR;
    for (int i = tid; i < BR; i += THREADS) {
      const int qi = qt * BR + i;
      ld[i] = qi < p.lq ? LSE[qi] * kLog2e : INFINITY;
      ld[BR + i] = qi < p.lq ? DELTA[qi] : 0.f;
    }
  };

  if (qt0 < nqt) {
    load_tile<T, BC, DP, SD, THREADS>(Ks, K, kv_len, d, k0, vec, tid);
    load_tile<T, BC, DP, SD, THREADS>(Vs, V, kv_len, d, k0, vec, tid);
    load_q_tile(qt0, 0);
    cp_async_commit();
  }

  const int wk = warp * 16;  // this warp's keys: k0 + wk + {g, g+8}
  for (int qt = qt0; qt < nqt; ++qt) {
    const int st = (qt - qt0) & 1;
    cp_async_wait<0>();
    __syncthreads();  // tile qt is in shared memory; all warps are done with the previous tile (and dS^T)
    if (qt + 1 < nqt) load_q_tile(qt + 1, st ^ 1);
    cp_async_commit();
    const T* Qs = QDs + st * 2 * C::QD_ELEMS;
    const T* dOs = Qs + C::QD_ELEMS;
    const float* lse2 = LDs + st * 2 * BR;
    const float* dlt = lse2 + BR;
    const int q0 = qt * BR;

    // S^T = K_w Q^T: A = this warp's 16 K rows (row-major, dims contiguous: plain ldmatrix,
    // matrices (keys 0-7, dims 0-7), (keys 8-15, dims 0-7), (keys 0-7, dims 8-15), (keys 8-15, dims 8-15));
    // B(k = dim, n = query) = Q[query][dim]: plain ldmatrix of Q rows, as K in the forward.
    float sp[QT][4];
#pragma unroll
    for (int j = 0; j < QT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) sp[j][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      uint32_t ka[4];
      ldsm_x4(ka, Ks + (wk + (quad & 1) * 8 + r8) * SD + ks * 16 + (quad >> 1) * 8);
#pragma unroll
      for (int np = 0; np < BR / 16; ++np) {
        uint32_t qb[4];
        ldsm_x4(qb, Qs + (np * 16 + (quad >> 1) * 8 + r8) * SD + ks * 16 + (quad & 1) * 8);
        mma16816<T>(sp[2 * np], ka, qb[0], qb[1]);
        mma16816<T>(sp[2 * np + 1], ka, qb[2], qb[3]);
      }
    }
    // P^T: element e of n-tile j is key k0 + wk + g + 8*(e/2), query q0 + 8j + 2*t4 + (e&1).
    const bool need_mask = (k0 + BC > kv_len) || (p.causal && k0 + BC - 1 > q0);
#pragma unroll
    for (int j = 0; j < QT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int qc = j * 8 + 2 * t4 + (e & 1);
        float pr = exp2f(sp[j][e] * p.scale_log2 - lse2[qc]);  // lse2 = +inf (empty row, past Lq): 0
        if (need_mask) {
          const int key = k0 + wk + g + ((e >> 1) << 3);
          if (key >= kv_len || (p.causal && key > q0 + qc)) pr = 0.f;
        }
        sp[j][e] = pr;
      }

    // dV += P^T dO: A = P^T (keys x queries) from the accumulators of query n-tiles 2kk, 2kk+1;
    // B(k = query, n = dim) = dO[query][dim]: ldmatrix.trans of dO rows, as V in the forward.
#pragma unroll
    for (int kk = 0; kk < BR / 16; ++kk) {
      uint32_t pa[4];
      pa[0] = pack2<T>(sp[2 * kk][0], sp[2 * kk][1]);
      pa[1] = pack2<T>(sp[2 * kk][2], sp[2 * kk][3]);
      pa[2] = pack2<T>(sp[2 * kk + 1][0], sp[2 * kk + 1][1]);
      pa[3] = pack2<T>(sp[2 * kk + 1][2], sp[2 * kk + 1][3]);
#pragma unroll
      for (int dp = 0; dp < DP / 16; ++dp) {
        uint32_t ob[4];
        ldsm_x4_t(ob, dOs + (kk * 16 + (quad & 1) * 8 + r8) * SD + dp * 16 + (quad >> 1) * 8);
        mma16816<T>(dv[2 * dp], pa, ob[0], ob[1]);
        mma16816<T>(dv[2 * dp + 1], pa, ob[2], ob[3]);
      }
    }

    // dP^T = V_w dO^T, then dS^T = P^T * (dP^T - delta[query]) in place.
    float ds[QT][4];
#pragma unroll
    for (int j = 0; j < QT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) ds[j][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      uint32_t va[4];
      ldsm_x4(va, Vs + (wk + (quad & 1) * 8 + r8) * SD + ks * 16 + (quad >> 1) * 8);
#pragma unroll
      for (int np = 0; np < BR / 16; ++np) {
        uint32_t ob[4];
        ldsm_x4(ob, dOs + (np * 16 + (quad >> 1) * 8 + r8) * SD + ks * 16 + (quad & 1) * 8);
        mma16816<T>(ds[2 * np], va, ob[0], ob[1]);
        mma16816<T>(ds[2 * np + 1], va, ob[2], ob[3]);
      }
    }
#pragma unroll
    for (int j = 0; j < QT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) ds[j][e] = sp[j][e] * (ds[j][e] - dlt[j * 8 + 2 * t4 + (e & 1)]);

    // dK += dS^T Q (scale applied at the end): A = dS^T from registers; B(k = query, n = dim) =
    // Q[query][dim]: ldmatrix.trans. Also store dS^T (16-bit) for the dQ product: row = key, pairs
    // of adjacent queries as one 32-bit store (conflict-free: 8 rows x 4 words hit 32 banks).
#pragma unroll
    for (int kk = 0; kk < BR / 16; ++kk) {
      uint32_t da[4];
      da[0] = pack2<T>(ds[2 * kk][0], ds[2 * kk][1]);
      da[1] = pack2<T>(ds[2 * kk][2], ds[2 * kk][3]);
      da[2] = pack2<T>(ds[2 * kk + 1][0], ds[2 * kk + 1][1]);
      da[3] = pack2<T>(ds[2 * kk + 1][2], ds[2 * kk + 1][3]);
      *reinterpret_cast<uint32_t*>(dSs + (wk + g) * SDS + kk * 16 + 2 * t4) = da[0];
      *reinterpret_cast<uint32_t*>(dSs + (wk + g + 8) * SDS + kk * 16 + 2 * t4) = da[1];
      *reinterpret_cast<uint32_t*>(dSs + (wk + g) * SDS + kk * 16 + 8 + 2 * t4) = da[2];
      *reinterpret_cast<uint32_t*>(dSs + (wk + g + 8) * SDS + kk * 16 + 8 + 2 * t4) = da[3];
#pragma unroll
      for (int dp = 0; dp < DP / 16; ++dp) {
        uint32_t qb[4];
        ldsm_x4_t(qb, Qs + (kk * 16 + (quad & 1) * 8 + r8) * SD + dp * 16 + (quad >> 1) * 8);
        mma16816<T>(dk[2 * dp], da, qb[0], qb[1]);
        mma16816<T>(dk[2 * dp + 1], da, qb[2], qb[3]);
      }
    }
    __syncthreads();  // dS^T of every warp is in shared memory

    // dQ[q0 + rows, cols] += dS (BR x BC) K (BC x DP) for this warp's 16 rows x DPW columns.
    // A(m = query, k = key) = dS^T[key][query]: stored k-major -> ldmatrix.trans, matrices
    // (keys 0-7, queries 0-7), (keys 0-7, queries 8-15), (keys 8-15, queries 0-7), (keys 8-15, queries 8-15)
    // give A's reg0..reg3. B(k = key, n = dim) = K[key][dim]: ldmatrix.trans.
    {
      const int rg = warp % C::RG, cg = warp / C::RG;
      const int qr = rg * 16, c0 = cg * C::DPW;
      constexpr int CH = C::DPW < 64 ? C::DPW : 64;  // columns per pass (32 accumulators at most)
#pragma unroll
      for (int cc = 0; cc < C::DPW; cc += CH) {
        float acc[CH / 8][4];
#pragma unroll
        for (int j = 0; j < CH / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[j][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < BC / 16; ++ks) {
          uint32_t a4[4];
          ldsm_x4_t(a4, dSs + (ks * 16 + (quad >> 1) * 8 + r8) * SDS + qr + (quad & 1) * 8);
#pragma unroll
          for (int dp = 0; dp < CH / 16; ++dp) {
            uint32_t kb4[4];
            ldsm_x4_t(kb4, Ks + (ks * 16 + (quad & 1) * 8 + r8) * SD + c0 + cc + dp * 16 + (quad >> 1) * 8);
            mma16816<T>(acc[2 * dp], a4, kb4[0], kb4[1]);
            mma16816<T>(acc[2 * dp + 1], a4, kb4[2], kb4[3]);
          }
        }
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int row = q0 + qr + g + 8 * hf;
          if (row >= p.lq) continue;
          float* dqr = DQ + int64_t(row) * d;
#pragma unroll
          for (int j = 0; j < CH / 8; ++j) {
            const int col = c0 + cc + j * 8 + 2 * t4;
            if (col < d) atomicAdd(dqr + col, acc[j][2 * hf]);
            if (col + 1 < d) atomicAdd(dqr + col + 1, acc[j][2 * hf + 1]);
          }
        }
      }
    }
  }
  cp_async_wait<0>();

  // dK (scaled) and dV of this warp's keys; zeros for keys no query attends.
  T* DK = static_cast<T*>(p.dk) + koff;
  T* DV = static_cast<T*>(p.dv) + koff;
  const bool pair = p.pair_store != 0;
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const int key = k0 + wk + g + 8 * hf;
    if (key >= p.lk) continue;
    T* dkr = DK + int64_t(key) * d;
    T* dvr = DV + int64_t(key) * d;
#pragma unroll
    for (int j = 0; j < DT; ++j) {
      const int col = j * 8 + 2 * t4;
      if (col >= d) continue;
      store2<T>(dkr + col, dk[j][2 * hf] * p.scale, dk[j][2 * hf + 1] * p.scale, pair, col + 1 < d);
      store2<T>(dvr + col, dv[j][2 * hf], dv[j][2 * hf + 1], pair, col + 1 < d);
    }
  }
#endif
}

// General path, dK and dV: one warp per key row j; loops over the queries that attend it.
template <typename T>
__global__ void __launch_bounds__(128) attention_general_bwd_dkdv_kernel(BwdParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (row >= int64_t(p.bh) * p.lk) return;
  const int bh = int(row / p.lk), j = int(row % p.lk), b = bh / p.h, d = p.d;
  const int64_t qoff = int64_t(bh) * p.lq * d;
  const T* Q = static_cast<const T*>(p.q) + qoff;
  const T* dO = static_cast<const T*>(p.dout) + qoff;
  const T* kr = static_cast<const T*>(p.k) + row * d;
  const T* vr = static_cast<const T*>(p.v) + row * d;
  const float* LSE = p.lse + int64_t(bh) * p.lq;
  const float* DELTA = p.delta + int64_t(bh) * p.lq;
  const int kv_len = key_count(p.key_lengths, b, p.lk);
  float kv[8], vv[8], dk[8], dv[8];
#pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int c = lane + 32 * u;
    kv[u] = c < d ? to_f<T>(kr[c]) : 0.f;
    vv[u] = c < d ? to_f<T>(vr[c]) : 0.f;
    dk[u] = dv[u] = 0.f;
  }
  const int i0 = j >= kv_len ? p.lq : (p.causal ? j : 0);
  for (int i = i0; i < p.lq; ++i) {
    const T* qr = Q + int64_t(i) * d;
    const T* gr = dO + int64_t(i) * d;
    float qv[8], gv[8], s = 0.f, dp = 0.f;
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int c = lane + 32 * u;
      qv[u] = c < d ? to_f<T>(qr[c]) : 0.f;
      gv[u] = c < d ? to_f<T>(gr[c]) : 0.f;
      s += qv[u] * kv[u];
      dp += gv[u] * vv[u];
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      s += __shfl_xor_sync(0xffffffffu, s, off);
      dp += __shfl_xor_sync(0xffffffffu, dp, off);
    }
    const float pij = exp2f(s * p.scale_log2 - LSE[i] * kLog2e);  // lse = +inf: 0
    const float dsij = pij * (dp - DELTA[i]);
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      dv[u] += pij * gv[u];
      dk[u] += dsij * qv[u];
    }
  }
  T* DK = static_cast<T*>(p.dk) + row * d;
  T* DV = static_cast<T*>(p.dv) + row * d;
#pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int c = lane + 32 * u;
    if (c < d) {
      DK[c] = from_f<T>(dk[u] * p.scale);
      DV[c] = from_f<T>(dv[u]);
    }
  }
}

// General path, dQ: one warp per query row i; loops over the keys it attends.
template <typename T>
__global__ void __launch_bounds__(128) attention_general_bwd_dq_kernel(BwdParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (row >= int64_t(p.bh) * p.lq) return;
  const int bh = int(row / p.lq), i = int(row % p.lq), b = bh / p.h, d = p.d;
  const int64_t koff = int64_t(bh) * p.lk * d;
  const T* K = static_cast<const T*>(p.k) + koff;
  const T* V = static_cast<const T*>(p.v) + koff;
  const T* qr = static_cast<const T*>(p.q) + row * d;
  const T* gr = static_cast<const T*>(p.dout) + row * d;
  const float lse2 = p.lse[row] * kLog2e, delta = p.delta[row];
  const int kv_len = key_count(p.key_lengths, b, p.lk);
  const int kv_end = p.causal ? min(kv_len, i + 1) : kv_len;
  float qv[8], gv[8], dq[8];
#pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int c = lane + 32 * u;
    qv[u] = c < d ? to_f<T>(qr[c]) : 0.f;
    gv[u] = c < d ? to_f<T>(gr[c]) : 0.f;
    dq[u] = 0.f;
  }
  for (int j = 0; j < kv_end; ++j) {
    const T* kr = K + int64_t(j) * d;
    const T* vr = V + int64_t(j) * d;
    float kv[8], s = 0.f, dp = 0.f;
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int c = lane + 32 * u;
      kv[u] = c < d ? to_f<T>(kr[c]) : 0.f;
      s += qv[u] * kv[u];
      dp += gv[u] * (c < d ? to_f<T>(vr[c]) : 0.f);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      s += __shfl_xor_sync(0xffffffffu, s, off);
      dp += __shfl_xor_sync(0xffffffffu, dp, off);
    }
    const float pij = exp2f(s * p.scale_log2 - lse2);
    const float dsij = pij * (dp - delta);
#pragma unroll
    for (int u = 0; u < 8; ++u) dq[u] += dsij * kv[u];
  }
  T* DQ = static_cast<T*>(p.dq) + row * d;
#pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int c = lane + 32 * u;
    if (c < d) DQ[c] = from_f<T>(dq[u] * p.scale);
  }
}

#ifndef TSM_ATTN_EMULATE  // host side: launchers and the C ABI entry point
template <typename T>
tsm_status launch_preprocess(const BwdParams& p, cudaStream_t s) {
  const int64_t blocks = ceil_div(int64_t(p.bh) * p.lq, 4);
  if (blocks > INT32_MAX) return fail(TSM_ERR_UNSUPPORTED, "cuda_attention_backward: too many rows");
  attention_bwd_preprocess_kernel<T><<<unsigned(blocks), 128, 0, s>>>(p);
  return check_launch("cuda_attention_backward (attention_bwd_preprocess_kernel)");
}

template <typename T, typename C>
tsm_status launch_mma_typed(const BwdParams& p0, cudaStream_t s) {
  constexpr size_t smem = C::SMEM;
  auto kernel = attention_mma_bwd_kernel<T, C>;
  static std::atomic<uint64_t> smem_set{0};  // devices where the limit is raised
  if (tsm_status st = allow_dynamic_smem(kernel, smem, smem_set)) return st;
  BwdParams p = p0;
  p.nkb = int(ceil_div(p.lk, C::BC));
  const int64_t blocks = int64_t(p.nkb) * p.bh;
  if (blocks > INT32_MAX) return fail(TSM_ERR_UNSUPPORTED, "cuda_attention_backward: too many blocks (%lld)", (long long)blocks);
  tsm_status st = launch_preprocess<T>(p, s);
  if (st != TSM_OK) return st;
  if (blocks > 0) {
    kernel<<<unsigned(blocks), C::THREADS, smem, s>>>(p);
    st = check_launch("cuda_attention_backward (attention_mma_bwd_kernel)");
    if (st != TSM_OK) return st;
  }
  const int64_t n = int64_t(p.bh) * p.lq * p.d;
  const int64_t cblocks = ceil_div(n, 256) < 65536 ? ceil_div(n, 256) : 65536;
  attention_bwd_dq_convert_kernel<T><<<unsigned(cblocks), 256, 0, s>>>(p, n);
  return check_launch("cuda_attention_backward (attention_bwd_dq_convert_kernel)");
}

template <typename T>
tsm_status launch_mma_dim(const BwdParams& p, cudaStream_t s) {
  if (p.d <= 64) return launch_mma_typed<T, BwdCfg64>(p, s);
  return launch_mma_typed<T, BwdCfg128>(p, s);
}

template <typename T>
tsm_status launch_general_typed(const BwdParams& p, cudaStream_t s) {
  tsm_status st = launch_preprocess<T>(p, s);
  if (st != TSM_OK) return st;
  const int64_t kblocks = ceil_div(int64_t(p.bh) * p.lk, 4), qblocks = ceil_div(int64_t(p.bh) * p.lq, 4);
  if (kblocks > INT32_MAX || qblocks > INT32_MAX) return fail(TSM_ERR_UNSUPPORTED, "cuda_attention_backward: too many rows");
  if (kblocks > 0) {
    attention_general_bwd_dkdv_kernel<T><<<unsigned(kblocks), 128, 0, s>>>(p);
    st = check_launch("cuda_attention_backward (attention_general_bwd_dkdv_kernel)");
    if (st != TSM_OK) return st;
  }
  attention_general_bwd_dq_kernel<T><<<unsigned(qblocks), 128, 0, s>>>(p);
  return check_launch("cuda_attention_backward (attention_general_bwd_dq_kernel)");
}

}  // namespace

size_t bwd_mma_smem_bytes(int d) { return d <= 64 ? BwdCfg64::SMEM : BwdCfg128::SMEM; }

tsm_status launch_bwd_mma(const Problem& pr, const BwdParams& p, cudaStream_t s) {
  if (pr.dtype == TSM_CUDA_BF16) return launch_mma_dim<__nv_bfloat16>(p, s);
  return launch_mma_dim<__half>(p, s);
}

tsm_status launch_bwd_general(const Problem& pr, const BwdParams& p, cudaStream_t s) {
  if (pr.dtype == TSM_CUDA_F32) return launch_general_typed<float>(p, s);
  if (pr.dtype == TSM_CUDA_BF16) return launch_general_typed<__nv_bfloat16>(p, s);
  return launch_general_typed<__half>(p, s);
}

}  // namespace attn
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_attention_backward(void* dq, void* dk, void* dv, const void* dout, const void* q,
                                               const void* k, const void* v, const void* o, const float* lse,
                                               const tsm_cuda_attention_desc* desc) {
  const char* op = "cuda_attention_backward";
  attn::Problem pr{};
  tsm_status st = attn::check_desc(op, desc, &pr);
  if (st != TSM_OK) return st;
  const int64_t qrows = int64_t(pr.b) * pr.h * pr.lq, krows = int64_t(pr.b) * pr.h * pr.lk;
  if (qrows > 0) {
    const char* missing = !dq ? "dq" : !dout ? "dout" : !q ? "q" : !o ? "o" : !lse ? "lse" : nullptr;
    if (missing) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, missing);
  }
  if (krows > 0) {
    const char* missing = !dk ? "dk" : !dv ? "dv" : !k ? "k" : !v ? "v" : nullptr;
    if (missing) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, missing);
  }
  cudaStream_t s = stream(op);
  if (!s) return TSM_ERR_CUDA;
  const DeviceProps* dp = props(op);
  if (!dp) return TSM_ERR_CUDA;
  const char* why = "";
  const bool mma = attn::mma_applicable(pr, *dp, true, &why);
  if (pr.algo == TSM_CUDA_ATTN_MMA && !mma)
    return tsm::fail(TSM_ERR_UNSUPPORTED, "%s: the mma kernel cannot run this call: %s", op, why);
  if (qrows == 0 && krows == 0) return TSM_OK;
  const size_t esz = pr.dtype == TSM_CUDA_F32 ? 4 : 2;
  if (qrows == 0) {  // no queries: every key gets zero gradients
    TSM_CUDA_TRY(cudaMemsetAsync(dk, 0, size_t(krows) * pr.d * esz, s), "cudaMemsetAsync");
    TSM_CUDA_TRY(cudaMemsetAsync(dv, 0, size_t(krows) * pr.d * esz, s), "cudaMemsetAsync");
    return TSM_OK;
  }
  const bool use_mma = pr.algo == TSM_CUDA_ATTN_MMA || (pr.algo == TSM_CUDA_ATTN_AUTO && mma);
  // Workspace from the caching allocator: delta (qrows floats), and dq_acc (qrows * d) for mma.
  // Freed right after the launches: reuse of the block is ordered on the same stream.
  const size_t ws_floats = size_t(qrows) * (use_mma ? size_t(pr.d) + 1 : 1);
  void* ws = nullptr;
  st = device_alloc(&ws, ws_floats * sizeof(float), op);
  if (st != TSM_OK) return st;
  attn::BwdParams p{};
  p.q = q;
  p.k = k;
  p.v = v;
  p.o = o;
  p.dout = dout;
  p.lse = lse;
  p.delta = static_cast<float*>(ws);
  p.dq_acc = use_mma ? static_cast<float*>(ws) + qrows : nullptr;
  p.dq = dq;
  p.dk = dk;
  p.dv = dv;
  p.key_lengths = pr.key_lengths;
  p.h = pr.h;
  p.lq = pr.lq;
  p.lk = pr.lk;
  p.d = pr.d;
  p.bh = pr.b * pr.h;
  p.scale = pr.scale;
  p.scale_log2 = pr.scale * attn::kLog2e;
  p.causal = pr.causal ? 1 : 0;
  p.vec = pr.d % 8 == 0 && attn::aligned_to(q, 16) && attn::aligned_to(dout, 16) &&
          (pr.lk == 0 || (attn::aligned_to(k, 16) && attn::aligned_to(v, 16)));
  p.pair_store = pr.d % 2 == 0 && attn::aligned_to(dk, 4) && attn::aligned_to(dv, 4);
  st = use_mma ? attn::launch_bwd_mma(pr, p, s) : attn::launch_bwd_general(pr, p, s);
  const tsm_status fr = device_free(ws, op);
  return st != TSM_OK ? st : fr;
}

}  // extern "C"
#else
}  // namespace
}  // namespace attn
}  // namespace cuda
}  // namespace tsm
#endif  // TSM_ATTN_EMULATE
