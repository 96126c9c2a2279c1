// SGEMM on CUDA cores (exact float32 FMAs), row-major, all four transpose combinations.
//
// Tiling (per thread block of 256 threads = 8 warps):
//   block tile 128 x 128, K step 16; warps 2 (M) x 4 (N), warp tile 64 x 32;
//   each thread computes 8 x 8 outputs as 2 x 2 sub-blocks of 4 x 4 (rows lm*4 and 32 + lm*4 of the
//   warp tile, columns ln*4 and 16 + ln*4), so its fragments are two float4 loads from A's and two
//   from B's shared tile per k, and a warp's loads hit 8 (A) and 4 (B) consecutive float4s: no bank
//   conflicts, and 64 FFMAs per 4 shared loads.
// Shared memory holds both tiles k-major (As[k][m], Bs[k][n]) so fragments are float4 loads whatever
//   the global layout; a row-major A (or a transposed B) is transposed on the way in (4 scalar stores
//   per float4; rows padded by 4 floats, which leaves a 2-way conflict on those stores only).
// Double buffering: two shared stages; the next K tile is loaded into registers (2 float4 of A, 2 of
//   B per thread) before the current one is computed and stored to the other stage after it, so
//   global latency hides behind 16 x 64 FFMAs and there is one __syncthreads per K step.
// Vector loads: 16-byte loads when the leading dimension, the base address and the batch stride
//   allow it and the 4 elements lie inside the matrix; scalar, bounds-checked loads otherwise (edges,
//   odd leading dimensions), zero-filled outside the matrix.
// Roofline (H100 SXM, ~67 TFLOP/s FP32 FFMA at boost clock, ~3 TB/s HBM): a 128x128 tile does
//   2*128*128*16 FLOPs per (128+128)*16*4 bytes loaded = 32 FLOP/B from L2; 4096^3 moves ~0.5 GB
//   through L2 for 137 GFLOP, far on the compute side, so the target is the FFMA issue rate:
//   64 FFMA per 4 LDS.128 per thread per k keeps the FMA pipe ~94% of issue slots.
// Registers: 64 accumulators + 16 fragment + 16 prefetch + addressing. Two variants are built:
//   MINB = 1 (ptxas: ~160 registers, no spills, one block = 8 warps per SM) and MINB = 2 (capped at
//   128 registers so two blocks share an SM; ptxas reports 40-56 bytes of spills, place unknown
//   without a disassembler here). MINB = 1 is the default; TSM_SGEMM_MINB=2 selects the other so
//   the GPU session can time both (UNVERIFIED which is faster).
#include <cstdlib>

#include "gemm_common.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr int BM = 128, BN = 128, BK = 16, PAD = 4, THREADS = 256;

struct SgemmArgs {
  const float* a;
  const float* b;
  int m, n, k;
  int64_t lda, ldb, sa, sb;
  bool vec_a, vec_b;
  Epilogue e;
};

// Loads this thread's share of a (rows x cols) k-tile panel into registers. "Row-major panel":
// rows index M (or N), cols index K (A not transposed, or B transposed). Two float4 per thread:
// element (r, kc..kc+3) with r = idx / 4, kc = (idx % 4) * 4, idx = tid + i * 256.
__device__ __forceinline__ void load_mk(float4 (&reg)[2], const float* __restrict__ g, int64_t ld,
                                        int rows, int cols, int r0, int k0, bool vec, int tid) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int idx = tid + i * THREADS;
    const int r = r0 + (idx >> 2), kc = k0 + (idx & 3) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (r < rows) {
      const float* p = g + int64_t(r) * ld + kc;
      if (vec && kc + 3 < cols) {
        v = __ldg(reinterpret_cast<const float4*>(p));
      } else {
        if (kc < cols) v.x = __ldg(p);
        if (kc + 1 < cols) v.y = __ldg(p + 1);
        if (kc + 2 < cols) v.z = __ldg(p + 2);
        if (kc + 3 < cols) v.w = __ldg(p + 3);
      }
    }
    reg[i] = v;
  }
}

// "K-major panel": rows index K, cols index M (or N) (A transposed, or B not transposed). Element
// (k, c..c+3) with k = idx / 32, c = (idx % 32) * 4.
__device__ __forceinline__ void load_km(float4 (&reg)[2], const float* __restrict__ g, int64_t ld,
                                        int krows, int cols, int k0, int c0, bool vec, int tid) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int idx = tid + i * THREADS;
    const int kr = k0 + (idx >> 5), c = c0 + (idx & 31) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (kr < krows) {
      const float* p = g + int64_t(kr) * ld + c;
      if (vec && c + 3 < cols) {
        v = __ldg(reinterpret_cast<const float4*>(p));
      } else {
        if (c < cols) v.x = __ldg(p);
        if (c + 1 < cols) v.y = __ldg(p + 1);
        if (c + 2 < cols) v.z = __ldg(p + 2);
        if (c + 3 < cols) v.w = __ldg(p + 3);
      }
    }
    reg[i] = v;
  }
}

// Stores a row-major panel's registers transposed into S[k][m].
__device__ __forceinline__ void store_mk(float (*S)[BM + PAD], const float4 (&reg)[2], int tid) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int idx = tid + i * THREADS;
    const int r = idx >> 2, kc = (idx & 3) * 4;
    S[kc + 0][r] = reg[i].x;
    S[kc + 1][r] = reg[i].y;
    S[kc + 2][r] = reg[i].z;
    S[kc + 3][r] = reg[i].w;
  }
}

__device__ __forceinline__ void store_km(float (*S)[BM + PAD], const float4 (&reg)[2], int tid) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int idx = tid + i * THREADS;
    *reinterpret_cast<float4*>(&S[idx >> 5][(idx & 31) * 4]) = reg[i];
  }
}

template <bool TA, bool TB, int MINB>
__global__ void __launch_bounds__(THREADS, MINB) sgemm_kernel(SgemmArgs p) {
  __shared__ __align__(16) float As[2][BK][BM + PAD];
  __shared__ __align__(16) float Bs[2][BK][BN + PAD];

  const int tid = threadIdx.x;
  const int tiles_m = (p.m + BM - 1) / BM, tiles_n = (p.n + BN - 1) / BN;
  int tm, tn;
  tile_coords(blockIdx.x, tiles_m, tiles_n, 8, &tm, &tn);
  const int m0 = tm * BM, n0 = tn * BN, z = blockIdx.y;
  const float* A = p.a + int64_t(z) * p.sa;
  const float* B = p.b + int64_t(z) * p.sb;

  const int warp = tid >> 5, lane = tid & 31;
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
  const int lm = (lane >> 2) * 4, ln = (lane & 3) * 4;

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;

  float4 ra[2], rb[2];
  auto load = [&](int k0) {
    if (TA) load_km(ra, A, p.lda, p.k, p.m, k0, m0, p.vec_a, tid);
    else load_mk(ra, A, p.lda, p.m, p.k, m0, k0, p.vec_a, tid);
    if (TB) load_mk(rb, B, p.ldb, p.n, p.k, n0, k0, p.vec_b, tid);
    else load_km(rb, B, p.ldb, p.k, p.n, k0, n0, p.vec_b, tid);
  };
  auto store = [&](int buf) {
    if (TA) store_km(As[buf], ra, tid); else store_mk(As[buf], ra, tid);
    if (TB) store_mk(Bs[buf], rb, tid); else store_km(Bs[buf], rb, tid);
  };

  const int ktiles = (p.k + BK - 1) / BK;
  if (ktiles > 0) {
    load(0);
    store(0);
    __syncthreads();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    const int buf = kt & 1;
    if (kt + 1 < ktiles) load((kt + 1) * BK);
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float af[8], bf[8];
      *reinterpret_cast<float4*>(&af[0]) = *reinterpret_cast<const float4*>(&As[buf][kk][wm + lm]);
      *reinterpret_cast<float4*>(&af[4]) = *reinterpret_cast<const float4*>(&As[buf][kk][wm + 32 + lm]);
      *reinterpret_cast<float4*>(&bf[0]) = *reinterpret_cast<const float4*>(&Bs[buf][kk][wn + ln]);
      *reinterpret_cast<float4*>(&bf[4]) = *reinterpret_cast<const float4*>(&Bs[buf][kk][wn + 16 + ln]);
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(af[i], bf[j], acc[i][j]);
    }
    if (kt + 1 < ktiles) store(buf ^ 1);
    __syncthreads();
  }

  // Epilogue: row i of the thread is wm + lm + i (i < 4) or wm + 32 + lm + i - 4; column j likewise
  // with wn + ln (+16).
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int row = m0 + wm + (i < 4 ? lm + i : 32 + lm + i - 4);
    if (row >= p.m) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int col = n0 + wn + h * 16 + ln;
      epilogue_store2(p.e, z, row, col, p.n, acc[i][h * 4 + 0], acc[i][h * 4 + 1]);
      if (col + 2 < p.n) epilogue_store2(p.e, z, row, col + 2, p.n, acc[i][h * 4 + 2], acc[i][h * 4 + 3]);
    }
  }
}

template <int MINB>
void launch_variant(const GemmProblem& p, const SgemmArgs& a, dim3 grid, cudaStream_t s) {
  if (!p.ta && !p.tb) sgemm_kernel<false, false, MINB><<<grid, THREADS, 0, s>>>(a);
  else if (!p.ta && p.tb) sgemm_kernel<false, true, MINB><<<grid, THREADS, 0, s>>>(a);
  else if (p.ta && !p.tb) sgemm_kernel<true, false, MINB><<<grid, THREADS, 0, s>>>(a);
  else sgemm_kernel<true, true, MINB><<<grid, THREADS, 0, s>>>(a);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

tsm_status launch_sgemm(const GemmProblem& p, cudaStream_t s) {
  SgemmArgs a;
  a.a = static_cast<const float*>(p.a);
  a.b = static_cast<const float*>(p.b);
  a.m = p.m;
  a.n = p.n;
  a.k = p.k;
  a.lda = p.lda;
  a.ldb = p.ldb;
  a.sa = p.sa;
  a.sb = p.sb;
  a.vec_a = aligned16(p.a) && p.lda % 4 == 0 && p.sa % 4 == 0;
  a.vec_b = aligned16(p.b) && p.ldb % 4 == 0 && p.sb % 4 == 0;
  a.e = make_epilogue(p);
  const int64_t tiles = ceil_div(p.m, BM) * ceil_div(p.n, BN);
  if (tiles > INT32_MAX) return fail(TSM_ERR_INVALID_ARGUMENT, "cuda_sgemm: too many tiles");
  dim3 grid(unsigned(tiles), unsigned(p.batch));
  static const int minb = [] {
    const char* e = std::getenv("TSM_SGEMM_MINB");
    return e && e[0] == '2' ? 2 : 1;
  }();
  if (minb == 2) launch_variant<2>(p, a, grid, s);
  else launch_variant<1>(p, a, grid, s);
  return check_launch("cuda_sgemm (sgemm_kernel)");
}

}  // namespace cuda
}  // namespace tsm
