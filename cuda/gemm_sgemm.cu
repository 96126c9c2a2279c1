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
//   without a disassembler here). MINB = 2 is the default: on an H100 it was 3-9% faster at
//   1024-8192 square (4096^3: 3.56 vs 3.74 ms, 20 products each); TSM_SGEMM_MINB=1 selects the other.
// Split K: a problem whose tiles (times its batch) leave most multiprocessors idle and whose K is
//   long gets its K range cut into slices, one block per (tile, slice), partial products in a float32
//   workspace, then splitk_reduce_kernel sums them in slice order and applies the epilogue (so the
//   result is deterministic; it differs from the unsplit one by the summation order only). Made for
//   the weight gradients of linear layers (M, N = features, K = tokens): the Transformer LM of
//   bench/cuda-train has 256x256x4096 ones that ran on 4 of 132 multiprocessors.
#include <algorithm>
#include <cstdlib>

#include "gemm_common.cuh"
#include "scratch.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr int BK = 16, PAD = 4;

// A block tile of BM x BN outputs: warps of 64 x 32 outputs (8 x 8 per thread), WARPS_M x WARPS_N
// of them; each thread loads A_LOADS float4 of the A panel (BM x BK) and B_LOADS of B's (BK x BN).
template <int BM_, int BN_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int WARPS_M = BM / 64, WARPS_N = BN / 32;
  static constexpr int THREADS = WARPS_M * WARPS_N * 32;
  static constexpr int A_LOADS = BM * BK / 4 / THREADS, B_LOADS = BN * BK / 4 / THREADS;
  static_assert(BM % 64 == 0 && BN % 32 == 0 && A_LOADS * THREADS * 4 == BM * BK && B_LOADS * THREADS * 4 == BN * BK,
                "tile shape");
};
using Tile128 = Tile<128, 128>;  // 256 threads
using Tile64 = Tile<64, 64>;     // 64 threads: 4x the blocks for problems with few 128x128 tiles

struct SgemmArgs {
  const float* a;
  const float* b;
  int m, n, k;
  int64_t lda, ldb, sa, sb;
  bool vec_a, vec_b;
  // Split K (gridDim.z > 1): block z' sums K tiles [z' * kt_split, (z' + 1) * kt_split) and writes
  // its plain partial product to e.c + z' * split_stride (a float32 workspace); splitk_reduce_kernel
  // then adds the slices in order and applies the real epilogue.
  int kt_split;
  int64_t split_stride;
  Epilogue e;
};

// Loads this thread's share of a (rows x cols) k-tile panel into registers. "Row-major panel":
// rows index M (or N), cols index K (A not transposed, or B transposed). Two float4 per thread:
// element (r, kc..kc+3) with r = idx / 4, kc = (idx % 4) * 4, idx = tid + i * 256.
template <int THREADS, int L>
__device__ __forceinline__ void load_mk(float4 (&reg)[L], const float* __restrict__ g, int64_t ld,
                                        int rows, int cols, int r0, int k0, bool vec, int tid) {
#pragma unroll
  for (int i = 0; i < L; ++i) {
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

// "K-major panel": rows index K, cols index M (or N) (A transposed, or B not transposed), W of them
// per K row. Element (k, c..c+3) with k = idx / (W / 4), c = (idx % (W / 4)) * 4.
template <int THREADS, int W, int L>
__device__ __forceinline__ void load_km(float4 (&reg)[L], const float* __restrict__ g, int64_t ld,
                                        int krows, int cols, int k0, int c0, bool vec, int tid) {
#pragma unroll
  for (int i = 0; i < L; ++i) {
    const int idx = tid + i * THREADS;
    const int kr = k0 + idx / (W / 4), c = c0 + (idx % (W / 4)) * 4;
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
template <int THREADS, int W, int L>
__device__ __forceinline__ void store_mk(float (*S)[W + PAD], const float4 (&reg)[L], int tid) {
#pragma unroll
  for (int i = 0; i < L; ++i) {
    const int idx = tid + i * THREADS;
    const int r = idx >> 2, kc = (idx & 3) * 4;
    S[kc + 0][r] = reg[i].x;
    S[kc + 1][r] = reg[i].y;
    S[kc + 2][r] = reg[i].z;
    S[kc + 3][r] = reg[i].w;
  }
}

template <int THREADS, int W, int L>
__device__ __forceinline__ void store_km(float (*S)[W + PAD], const float4 (&reg)[L], int tid) {
#pragma unroll
  for (int i = 0; i < L; ++i) {
    const int idx = tid + i * THREADS;
    *reinterpret_cast<float4*>(&S[idx / (W / 4)][(idx % (W / 4)) * 4]) = reg[i];
  }
}

template <bool TA, bool TB, int MINB, typename TL>
__global__ void __launch_bounds__(TL::THREADS, MINB) sgemm_kernel(SgemmArgs p) {
  constexpr int BM = TL::BM, BN = TL::BN, THREADS = TL::THREADS, LA = TL::A_LOADS, LB = TL::B_LOADS;
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
  const int wm = (warp / TL::WARPS_N) * 64, wn = (warp % TL::WARPS_N) * 32;
  const int lm = (lane >> 2) * 4, ln = (lane & 3) * 4;

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;

  float4 ra[LA], rb[LB];
  auto load = [&](int k0) {
    if (TA) load_km<THREADS, BM>(ra, A, p.lda, p.k, p.m, k0, m0, p.vec_a, tid);
    else load_mk<THREADS>(ra, A, p.lda, p.m, p.k, m0, k0, p.vec_a, tid);
    if (TB) load_mk<THREADS>(rb, B, p.ldb, p.n, p.k, n0, k0, p.vec_b, tid);
    else load_km<THREADS, BN>(rb, B, p.ldb, p.k, p.n, k0, n0, p.vec_b, tid);
  };
  auto store = [&](int buf) {
    if (TA) store_km<THREADS, BM>(As[buf], ra, tid); else store_mk<THREADS, BM>(As[buf], ra, tid);
    if (TB) store_mk<THREADS, BN>(Bs[buf], rb, tid); else store_km<THREADS, BN>(Bs[buf], rb, tid);
  };

  const int kt_begin = blockIdx.z * p.kt_split;
  const int ktiles = min((p.k + BK - 1) / BK, kt_begin + p.kt_split);
  if (kt_begin < ktiles) {
    load(kt_begin * BK);
    store(0);
    __syncthreads();
  }
  for (int kt = kt_begin; kt < ktiles; ++kt) {
    const int buf = (kt - kt_begin) & 1;
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
  Epilogue e = p.e;
  if (gridDim.z > 1) e.c = static_cast<float*>(e.c) + blockIdx.z * p.split_stride;
  const bool fast = epilogue_inline(e);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int row = m0 + wm + (i < 4 ? lm + i : 32 + lm + i - 4);
    if (row >= p.m) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int col = n0 + wn + h * 16 + ln;
      epilogue_pair(e, fast, z, row, col, p.n, acc[i][h * 4 + 0], acc[i][h * 4 + 1]);
      epilogue_pair(e, fast, z, row, col + 2, p.n, acc[i][h * 4 + 2], acc[i][h * 4 + 3]);
    }
  }
}

// Sums the split-K slices of ws ([split][batch][m][n], float32) in slice order and applies the
// problem's epilogue: a thread per output element, grid-stride.
__global__ void splitk_reduce_kernel(const float* __restrict__ ws, int splits, int64_t split_stride, int batch,
                                     int m, int n, Epilogue e) {
  const int64_t total = int64_t(batch) * m * n;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    float acc = ws[i];
    for (int s = 1; s < splits; ++s) acc += ws[i + s * split_stride];
    const int64_t mn = int64_t(m) * n;
    const int z = int(i / mn);
    const int64_t r = i - z * mn;
    epilogue_store(e, z, int(r / n), int(r % n), acc);
  }
}

// How many K slices a problem of `blocks` output tiles (batch included) gets: enough blocks for
// about two per multiprocessor when the tiles alone leave most of the GPU idle, each slice at
// least kMinSplitTiles K tiles long (the pipeline's fill and the partials' traffic stay small).
constexpr int kMinSplitTiles = 8, kMaxSplits = 32;
int choose_splits(int64_t blocks, int ktiles, int sms) {
  if (sms <= 0 || blocks >= sms || ktiles < 2 * kMinSplitTiles) return 1;
  int64_t s = (2 * int64_t(sms) + blocks - 1) / blocks;
  s = std::min<int64_t>({s, ktiles / kMinSplitTiles, kMaxSplits});
  return s < 2 ? 1 : int(s);
}

template <int MINB, typename TL>
void launch_variant(const GemmProblem& p, const SgemmArgs& a, dim3 grid, cudaStream_t s) {
  constexpr int T = TL::THREADS;
  if (!p.ta && !p.tb) sgemm_kernel<false, false, MINB, TL><<<grid, T, 0, s>>>(a);
  else if (!p.ta && p.tb) sgemm_kernel<false, true, MINB, TL><<<grid, T, 0, s>>>(a);
  else if (p.ta && !p.tb) sgemm_kernel<true, false, MINB, TL><<<grid, T, 0, s>>>(a);
  else sgemm_kernel<true, true, MINB, TL><<<grid, T, 0, s>>>(a);
}

// The first character of an environment variable, 0 when unset (the A/B switches below).
char env_first(const char* name) {
  const char* e = std::getenv(name);
  return e ? e[0] : 0;
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
  const DeviceProps* dp = props("cuda_sgemm");
  const int sms = dp ? dp->sm_count : 0;
  // Tile: 64x64 (4x the blocks) when 128x128 tiles (times the batch) would not give every
  // multiprocessor one and K is at most 2048 (longer K is split instead); else 128x128. From
  // single-shape A/B runs on an H100 (200 products each, 128 vs 64): 4096x256x256 0.045 vs 0.040 ms,
  // 1024^3 0.129 vs 0.104, 64x512x1600 0.041 vs 0.035, 128x2048x256 0.038 vs 0.033; but
  // 256x256x4096 0.041 vs 0.045 and 4096x1024x256 (256 tiles) 0.072 vs 0.122.
  // Also 64x64 when 128x128 tiles would pad the matrix to more than 1.15x the area 64x64 tiles
  // cover (M or N of 64 or less, or just above a multiple of 128): the convolutions' GEMMs, whose M
  // is the output channels (32, 64). H100, cuda-conv, the 64x64 tile forced vs the rule before
  // (two runs each): ResNet 3x3 64->64 forward 0.78 vs 1.00 ms, weight gradient 1.10 vs 1.35, data
  // gradient (M 576: 1.13x the area, stays 128) 0.762 vs 0.750; conv1 data gradient (M 9) 0.021 vs
  // 0.031; conv2 data gradient (M 288) 0.056 vs 0.062.
  // TSM_SGEMM_TILE=128 or =64 forces one (tests, A/B).
  static const char tile_env = env_first("TSM_SGEMM_TILE");
  const int64_t tiles128 = ceil_div(p.m, 128) * ceil_div(p.n, 128), tiles64 = ceil_div(p.m, 64) * ceil_div(p.n, 64);
  const bool padded = tiles128 * 4 * 20 > tiles64 * 23;  // a 128x128 tile covers four 64x64 ones
  const bool small = tile_env == '6' || (tile_env != '1' && ((tiles128 * p.batch < int64_t(sms) && p.k <= 2048) || padded));
  const int64_t tiles = small ? tiles64 : tiles128;
  if (tiles > INT32_MAX) return fail(TSM_ERR_INVALID_ARGUMENT, "cuda_sgemm: too many tiles");
  const int ktiles = int(ceil_div(p.k, BK));
  // TSM_SGEMM_SPLITK=0 never splits K (A/B measurements).
  static const bool no_split = env_first("TSM_SGEMM_SPLITK") == '0';
  const int splits = no_split ? 1 : choose_splits(tiles * p.batch, ktiles, sms);
  a.kt_split = splits > 1 ? int(ceil_div(ktiles, splits)) : std::max(ktiles, 1);
  a.split_stride = 0;
  Scratch ws("cuda_sgemm");
  if (splits > 1) {
    a.split_stride = int64_t(p.batch) * p.m * p.n;
    if (tsm_status st = ws.alloc(a.split_stride * splits)) return st;
    a.e = Epilogue{1.f, 0.f, ws.p, TSM_CUDA_F32, p.n, int64_t(p.m) * p.n, nullptr, TSM_CUDA_ACT_NONE};
  }
  dim3 grid(unsigned(tiles), unsigned(p.batch), unsigned(splits));
  static const int minb = env_first("TSM_SGEMM_MINB") == '1' ? 1 : 2;
  // 64x64 blocks: 64 threads, at most 168 registers each (6 blocks, 12 warps per SM; at 128
  // registers for 8 blocks ptxas spilled 156-236 bytes).
  if (small) launch_variant<6, Tile64>(p, a, grid, s);
  else if (minb == 2) launch_variant<2, Tile128>(p, a, grid, s);
  else launch_variant<1, Tile128>(p, a, grid, s);
  if (tsm_status st = check_launch("cuda_sgemm (sgemm_kernel)")) return st;
  if (splits > 1) {
    const int64_t total = a.split_stride;
    const unsigned blocks = unsigned(std::min<int64_t>(ceil_div(total, 256), 4096));
    splitk_reduce_kernel<<<blocks, 256, 0, s>>>(ws.p, splits, a.split_stride, p.batch, p.m, p.n, make_epilogue(p));
    return check_launch("cuda_sgemm (splitk_reduce_kernel)");
  }
  return TSM_OK;
}

}  // namespace cuda
}  // namespace tsm
