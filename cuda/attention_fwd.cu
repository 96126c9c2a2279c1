// Fused attention forward on the GPU (FlashAttention-2 style), and the C ABI entry point
// tsm_cuda_attention_forward: argument checks, the choice of kernel, the launches.
//
//   q (B,H,Lq,D)  k, v (B,H,Lk,D)  ->  o (B,H,Lq,D) in the input dtype, lse (B,H,Lq) float32
//
// mma path (bf16/f16, D <= 128; attention_mma_fwd_kernel):
//   One block per (block of BR query rows, head); WARPS warps, each owning MT 16-row m-tiles of the
//   query block. The Q tile stays in shared memory and its A fragments in registers for the whole
//   block. K and V tiles of BC keys are streamed through two shared-memory stages filled with
//   cp.async (the copy of tile t+1 is in flight while tile t is multiplied; one barrier per tile).
//   Per tile: S = Q K^T on tensor cores (mma.sync m16n8k16, float32 accumulators); scale, causal and
//   key-length masks; online softmax with the running max and sum of each row in registers (the sum
//   kept per thread and reduced over the 4 threads of a row at the end); the probabilities are
//   packed to 16 bits straight from the S accumulators into A fragments (see attention_common.cuh)
//   and O += P V on tensor cores. At the end O / rowsum and lse = max + log(sum).
//   Shared rows are padded by 16 bytes so that every ldmatrix (8 rows of 16 bytes) hits 32
//   distinct banks. Head dims are zero-padded to DP (64 or 128) in shared memory.
//   Causal blocks stop at the diagonal; the heaviest query blocks are scheduled first.
//   Fully masked rows (no key) keep max = -inf: the exponentials use 0 in its place, so no
//   inf - inf appears, the sum stays 0 and the row is written as o = 0, lse = +inf.
// general path (any dtype, D <= 256; attention_general_fwd_kernel): one warp per query row, lane c
//   holds columns c, c+32, ...; one key at a time with a warp-reduced dot product and the same
//   online softmax, float32 throughout. Simple and correct, not fast.
#include <atomic>
#include <cstdint>

#include "attention_common.cuh"

namespace tsm {
namespace cuda {
namespace attn {
namespace {

template <int DP_, int WARPS_, int MT_, int BC_>
struct FwdCfg {
  static constexpr int DP = DP_;        // head dim in shared memory (zero-padded)
  static constexpr int WARPS = WARPS_;
  static constexpr int MT = MT_;        // 16-row m-tiles per warp
  static constexpr int BC = BC_;        // keys per tile
  static constexpr int THREADS = WARPS * 32;
  static constexpr int BR = WARPS * MT * 16;  // query rows per block
  static constexpr int SD = DP + 8;           // shared row stride in elements (+16 bytes)
  static constexpr int Q_ELEMS = BR * SD;
  static constexpr int KV_ELEMS = BC * SD;
  static constexpr int SMEM_ELEMS = Q_ELEMS + 4 * KV_ELEMS;  // Q, then K0, V0, K1, V1
};

// D = 64: 4 warps x 2 m-tiles = 128 query rows, 64 keys per tile, 54 KiB of shared memory.
using FwdCfg64 = FwdCfg<64, 4, 2, 64>;
// D = 128: 4 warps x 1 m-tile = 64 query rows, 64 keys per tile, 85 KiB (fits sm_86/89 too).
using FwdCfg128 = FwdCfg<128, 4, 1, 64>;

template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS) attention_mma_fwd_kernel(FwdParams p) {
#if TSM_ATTN_SM80
  constexpr int DP = C::DP, MT = C::MT, BC = C::BC, BR = C::BR, SD = C::SD, THREADS = C::THREADS;
  constexpr int NT = BC / 8;   // 8-key n-tiles of S per m-tile
  constexpr int KS = DP / 16;  // k-steps of Q K^T
  constexpr int DT = DP / 8;   // 8-column n-tiles of O
  TSM_ATTN_DYNAMIC_SMEM(smem_raw);
  T* Qs = reinterpret_cast<T*>(smem_raw);
  T* KVs = Qs + C::Q_ELEMS;  // stage s: K at KVs + 2*s*KV_ELEMS, V right after

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;   // fragment row group / thread in group
  const int quad = lane >> 3, r8 = lane & 7;  // ldmatrix: which 8x8 matrix this lane addresses, which row

  const int64_t id = blockIdx.x;
  const int qb = p.nqb - 1 - int(id / p.bh);  // heaviest causal query blocks first
  const int bh = int(id % p.bh);
  const int b = bh / p.h;
  const int q0 = qb * BR;
  const int d = p.d;
  const T* Q = static_cast<const T*>(p.q) + int64_t(bh) * p.lq * d;
  const T* K = static_cast<const T*>(p.k) + int64_t(bh) * p.lk * d;
  const T* V = static_cast<const T*>(p.v) + int64_t(bh) * p.lk * d;
  T* O = static_cast<T*>(p.o) + int64_t(bh) * p.lq * d;
  float* LSE = p.lse + int64_t(bh) * p.lq;

  const int kv_len = key_count(p.key_lengths, b, p.lk);
  int kv_end = kv_len;
  if (p.causal && q0 + BR < kv_end) kv_end = q0 + BR;  // rows q0..q0+BR-1 see keys < q0+BR
  const int ntiles = (kv_end + BC - 1) / BC;
  const bool vec = p.vec != 0;

  float o[MT][DT][4];
  float m[MT][2], l[MT][2];  // running max (log2 units of the scaled score) and this thread's partial sum
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int j = 0; j < DT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][j][e] = 0.f;
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.f;
  }

  if (ntiles > 0) {
    load_tile<T, BR, DP, SD, THREADS>(Qs, Q, p.lq, d, q0, vec, tid);
    cp_async_commit();
    load_tile<T, BC, DP, SD, THREADS>(KVs, K, kv_end, d, 0, vec, tid);
    load_tile<T, BC, DP, SD, THREADS>(KVs + C::KV_ELEMS, V, kv_end, d, 0, vec, tid);
    cp_async_commit();
    cp_async_wait<1>();  // Q has landed (K0, V0 may still be in flight)
    __syncthreads();
  }
  // This warp's query rows: wrow + mt*16 + {g, g+8}. A fragments of Q, loaded once.
  const int wrow = warp * MT * 16;
  uint32_t qf[MT][KS][4];
  if (ntiles > 0) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int ks = 0; ks < KS; ++ks)
        ldsm_x4(qf[mt][ks], Qs + (wrow + mt * 16 + (quad & 1) * 8 + r8) * SD + ks * 16 + (quad >> 1) * 8);
  }

  for (int t = 0; t < ntiles; ++t) {
    cp_async_wait<0>();
    __syncthreads();  // tile t is in shared memory; every warp is done with tile t-1's stage
    if (t + 1 < ntiles) {
      T* nk = KVs + ((t + 1) & 1) * 2 * C::KV_ELEMS;
      load_tile<T, BC, DP, SD, THREADS>(nk, K, kv_end, d, (t + 1) * BC, vec, tid);
      load_tile<T, BC, DP, SD, THREADS>(nk + C::KV_ELEMS, V, kv_end, d, (t + 1) * BC, vec, tid);
    }
    cp_async_commit();
    const T* Ks = KVs + (t & 1) * 2 * C::KV_ELEMS;
    const T* Vs = Ks + C::KV_ELEMS;
    const int k0 = t * BC;

    // S = Q K^T for this warp's rows and the tile's BC keys. B(k = dim, n = key) = K[key][dim]:
    // K rows are key-major with dims contiguous, the "col" operand as stored: plain ldmatrix;
    // matrices: (keys 0-7, dims 0-7), (keys 0-7, dims 8-15), (keys 8-15, dims 0-7), (keys 8-15, dims 8-15).
    float s[MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][j][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
#pragma unroll
      for (int np = 0; np < BC / 16; ++np) {
        uint32_t kb[4];
        ldsm_x4(kb, Ks + (np * 16 + (quad >> 1) * 8 + r8) * SD + ks * 16 + (quad & 1) * 8);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma16816<T>(s[mt][2 * np], qf[mt][ks], kb[0], kb[1]);
          mma16816<T>(s[mt][2 * np + 1], qf[mt][ks], kb[2], kb[3]);
        }
      }
    }

    // Scale to log2 units and mask. A tile needs the mask when it reaches past the keys of this
    // batch or (causal) past the diagonal of the block's first row.
    const bool need_mask = (k0 + BC > kv_len) || (p.causal && k0 + BC - 1 > q0);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[mt][j][e] * p.scale_log2;
          if (need_mask) {
            const int row = q0 + wrow + mt * 16 + g + ((e >> 1) << 3);
            const int col = k0 + j * 8 + 2 * t4 + (e & 1);
            if (col >= kv_len || (p.causal && col > row)) x = -INFINITY;
          }
          s[mt][j][e] = x;
        }

    // Online softmax, per row (half 0: row g, half 1: row g+8 of the m-tile). The 4 threads of a
    // quad hold the row's columns: max over the quad with two xor shuffles.
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < NT; ++j) mx = fmaxf(mx, fmaxf(s[mt][j][2 * hf], s[mt][j][2 * hf + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[mt][hf], mx);
        const float m_use = m_new == -INFINITY ? 0.f : m_new;  // no key yet: exp2(-inf - 0) = 0, never NaN
        const float alpha = exp2f(m[mt][hf] - m_use);          // 0 when the old max was -inf
        m[mt][hf] = m_new;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          const float p0 = exp2f(s[mt][j][2 * hf] - m_use), p1 = exp2f(s[mt][j][2 * hf + 1] - m_use);
          s[mt][j][2 * hf] = p0;
          s[mt][j][2 * hf + 1] = p1;
          sum += p0 + p1;
        }
        l[mt][hf] = l[mt][hf] * alpha + sum;
#pragma unroll
        for (int j = 0; j < DT; ++j) {
          o[mt][j][2 * hf] *= alpha;
          o[mt][j][2 * hf + 1] *= alpha;
        }
      }

    // O += P V. A = P (rows x keys): the C fragments of key n-tiles 2kk, 2kk+1 packed to 16 bits.
    // B(k = key, n = dim) = V[key][dim]: rows key-major, dims contiguous -> ldmatrix.trans;
    // matrices: (keys 0-7, dims 0-7), (keys 8-15, dims 0-7), (keys 0-7, dims 8-15), (keys 8-15, dims 8-15).
#pragma unroll
    for (int kk = 0; kk < BC / 16; ++kk) {
      uint32_t pa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        pa[mt][0] = pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < DP / 16; ++dp) {
        uint32_t vb[4];
        ldsm_x4_t(vb, Vs + (kk * 16 + (quad & 1) * 8 + r8) * SD + dp * 16 + (quad >> 1) * 8);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma16816<T>(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
          mma16816<T>(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }
  }
  cp_async_wait<0>();

  // Epilogue: o / rowsum, lse = max * ln 2 + log(rowsum); rows with no key: o = 0, lse = +inf.
  const bool pair = p.pair_store != 0;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      float sum = l[mt][hf];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int row = q0 + wrow + mt * 16 + g + 8 * hf;
      if (row >= p.lq) continue;
      const float inv = sum > 0.f ? 1.f / sum : 0.f;
      T* orow = O + int64_t(row) * d;
#pragma unroll
      for (int j = 0; j < DT; ++j) {
        const int col = j * 8 + 2 * t4;
        if (col < d) store2<T>(orow + col, o[mt][j][2 * hf] * inv, o[mt][j][2 * hf + 1] * inv, pair, col + 1 < d);
      }
      if (t4 == 0) LSE[row] = sum > 0.f ? m[mt][hf] * kLn2 + logf(sum) : INFINITY;
    }
#endif
}

// General path: one warp per query row; lane c holds columns c + 32u (u < 8, D <= 256).
template <typename T>
__global__ void __launch_bounds__(128) attention_general_fwd_kernel(FwdParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (row >= int64_t(p.bh) * p.lq) return;  // whole warps leave together
  const int bh = int(row / p.lq), i = int(row % p.lq), b = bh / p.h, d = p.d;
  const T* Q = static_cast<const T*>(p.q) + (int64_t(bh) * p.lq + i) * d;
  const T* K = static_cast<const T*>(p.k) + int64_t(bh) * p.lk * d;
  const T* V = static_cast<const T*>(p.v) + int64_t(bh) * p.lk * d;
  const int kv_len = key_count(p.key_lengths, b, p.lk);
  const int kv_end = p.causal ? min(kv_len, i + 1) : kv_len;
  float qv[8], acc[8];
#pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int c = lane + 32 * u;
    qv[u] = c < d ? to_f<T>(Q[c]) : 0.f;
    acc[u] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int j = 0; j < kv_end; ++j) {
    const T* kr = K + int64_t(j) * d;
    float s = 0.f;
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int c = lane + 32 * u;
      if (c < d) s += qv[u] * to_f<T>(kr[c]);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    const float x = s * p.scale_log2;  // finite: only attended keys are visited
    const float m_new = fmaxf(m, x);
    const float alpha = exp2f(m - m_new);  // m = -inf on the first key: 0
    const float pj = exp2f(x - m_new);
    l = l * alpha + pj;
    const T* vr = V + int64_t(j) * d;
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int c = lane + 32 * u;
      acc[u] = acc[u] * alpha + (c < d ? pj * to_f<T>(vr[c]) : 0.f);
    }
    m = m_new;
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;
  T* O = static_cast<T*>(p.o) + (int64_t(bh) * p.lq + i) * d;
#pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int c = lane + 32 * u;
    if (c < d) O[c] = from_f<T>(acc[u] * inv);
  }
  if (lane == 0) p.lse[row] = l > 0.f ? m * kLn2 + logf(l) : INFINITY;
}

#ifndef TSM_ATTN_EMULATE  // host side: launchers and the C ABI entry point
template <typename T, typename C>
tsm_status launch_mma_typed(const FwdParams& p0, cudaStream_t s) {
  constexpr size_t smem = size_t(C::SMEM_ELEMS) * sizeof(T);
  auto kernel = attention_mma_fwd_kernel<T, C>;
  static std::atomic<uint64_t> smem_set{0};  // devices where the limit is raised
  if (tsm_status st = allow_dynamic_smem(kernel, smem, smem_set)) return st;
  FwdParams p = p0;
  p.nqb = int(ceil_div(p.lq, C::BR));
  const int64_t blocks = int64_t(p.nqb) * p.bh;
  if (blocks > INT32_MAX) return fail(TSM_ERR_UNSUPPORTED, "cuda_attention_forward: too many blocks (%lld)", (long long)blocks);
  kernel<<<unsigned(blocks), C::THREADS, smem, s>>>(p);
  return check_launch("cuda_attention_forward (attention_mma_fwd_kernel)");
}

template <typename T>
tsm_status launch_mma_dim(const FwdParams& p, cudaStream_t s) {
  if (p.d <= 64) return launch_mma_typed<T, FwdCfg64>(p, s);
  return launch_mma_typed<T, FwdCfg128>(p, s);
}

}  // namespace

size_t fwd_mma_smem_bytes(int d) {
  return size_t(d <= 64 ? FwdCfg64::SMEM_ELEMS : FwdCfg128::SMEM_ELEMS) * 2;
}

bool mma_applicable(const Problem& pr, const DeviceProps& dp, bool backward, const char** why) {
  if (pr.dtype == TSM_CUDA_F32) {
    *why = "it takes bfloat16 or float16 inputs, not float32";
    return false;
  }
  if (pr.d > 128) {
    *why = "it handles head dims up to 128";
    return false;
  }
  if (dp.cc_major < 8) {
    *why = "it needs sm_80 or newer";
    return false;
  }
  const size_t smem = backward ? bwd_mma_smem_bytes(pr.d) : fwd_mma_smem_bytes(pr.d);
  if (dp.smem_optin < smem) {
    *why = "the device has less shared memory per block than the kernel needs";
    return false;
  }
  return true;
}

tsm_status launch_fwd_mma(const Problem& pr, const FwdParams& p, cudaStream_t s) {
  if (pr.dtype == TSM_CUDA_BF16) return launch_mma_dim<__nv_bfloat16>(p, s);
  return launch_mma_dim<__half>(p, s);
}

tsm_status launch_fwd_general(const Problem& pr, const FwdParams& p, cudaStream_t s) {
  const int64_t blocks = ceil_div(int64_t(p.bh) * p.lq, 4);
  if (blocks > INT32_MAX) return fail(TSM_ERR_UNSUPPORTED, "cuda_attention_forward: too many rows (%lld)", (long long)(int64_t(p.bh) * p.lq));
  if (pr.dtype == TSM_CUDA_F32) attention_general_fwd_kernel<float><<<unsigned(blocks), 128, 0, s>>>(p);
  else if (pr.dtype == TSM_CUDA_BF16) attention_general_fwd_kernel<__nv_bfloat16><<<unsigned(blocks), 128, 0, s>>>(p);
  else attention_general_fwd_kernel<__half><<<unsigned(blocks), 128, 0, s>>>(p);
  return check_launch("cuda_attention_forward (attention_general_fwd_kernel)");
}

}  // namespace attn
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_attention_forward(void* o, float* lse, const void* q, const void* k, const void* v,
                                              const tsm_cuda_attention_desc* desc) {
  const char* op = "cuda_attention_forward";
  attn::Problem pr{};
  tsm_status st = attn::check_desc(op, desc, &pr);
  if (st != TSM_OK) return st;
  const int64_t rows = int64_t(pr.b) * pr.h * pr.lq;
  if (rows > 0) {
    if (!o || !lse) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !o ? "o" : "lse");
    if (!q) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: q is NULL", op);
    if (pr.lk > 0 && (!k || !v)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !k ? "k" : "v");
  }
  // Arguments are fine: from here on a device is needed, even for an empty problem.
  cudaStream_t s = stream(op);
  if (!s) return TSM_ERR_CUDA;
  const DeviceProps* dp = props(op);
  if (!dp) return TSM_ERR_CUDA;
  const char* why = "";
  const bool mma = attn::mma_applicable(pr, *dp, false, &why);
  if (pr.algo == TSM_CUDA_ATTN_MMA && !mma)
    return tsm::fail(TSM_ERR_UNSUPPORTED, "%s: the mma kernel cannot run this call: %s", op, why);
  if (rows == 0) return TSM_OK;
  attn::FwdParams p{};
  p.q = q;
  p.k = k;
  p.v = v;
  p.o = o;
  p.lse = lse;
  p.key_lengths = pr.key_lengths;
  p.h = pr.h;
  p.lq = pr.lq;
  p.lk = pr.lk;
  p.d = pr.d;
  p.bh = pr.b * pr.h;
  p.scale_log2 = pr.scale * attn::kLog2e;
  p.causal = pr.causal ? 1 : 0;
  p.vec = pr.d % 8 == 0 && attn::aligned_to(q, 16) && (pr.lk == 0 || (attn::aligned_to(k, 16) && attn::aligned_to(v, 16)));
  p.pair_store = pr.d % 2 == 0 && attn::aligned_to(o, 4);
  const bool use_mma = pr.algo == TSM_CUDA_ATTN_MMA || (pr.algo == TSM_CUDA_ATTN_AUTO && mma);
  return use_mma ? attn::launch_fwd_mma(pr, p, s) : attn::launch_fwd_general(pr, p, s);
}

}  // extern "C"
#else
}  // namespace
}  // namespace attn
}  // namespace cuda
}  // namespace tsm
#endif  // TSM_ATTN_EMULATE
