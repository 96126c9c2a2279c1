// SGEMM on CUDA cores (exact float32 FMAs), row-major, all four transpose combinations.
//
// Tiling (Tile<BM, BN, WN, BK>): warps of 64 x WN outputs, each thread 8 x WN/4 of them as 4 x 4
//   sub-blocks (rows lm and 32 + lm of the warp tile, lm = (lane / 4) * 4; columns ln + 16 g,
//   ln = (lane % 4) * 4), so per k its fragments are two float4 loads from A's shared tile and WN/16
//   from B's, and a warp's loads hit 8 (A) and 4 (B) different float4s: no bank conflicts.
//   Three tiles are used: 128 x 128 (8 warps of 64 x 32, K step 16: 64 FFMAs per 4 shared loads),
//   256 x 128 (8 warps of 64 x 64, K step 8: 128 FFMAs per 6 loads) for large products, 64 x 64
//   (2 warps) for products with few tiles.
// Shared memory holds both tiles k-major (As[k][m], Bs[k][n]) so fragments are float4 loads whatever
//   the global layout; a row-major A (or a transposed B) is transposed on the way in (4 scalar stores
//   per float4). Rows are not padded: each row's float4 groups are permuted by an XOR (swz) so those
//   stores are conflict-free and the 256 x 128 tile's two stages fit the 48 KB of static shared memory.
// Double buffering: two shared stages; the next K tile is loaded into registers (2 float4 of A, 2 of
//   B per thread at 128 x 128) before the current one is computed and stored to the other stage after
//   it, so global latency hides behind the tile's FFMAs and there is one __syncthreads per K step.
// Vector loads: 16-byte loads when the leading dimension, the base address and the batch stride
//   allow it and the 4 elements lie inside the matrix; scalar, bounds-checked loads otherwise (edges,
//   odd leading dimensions), zero-filled outside the matrix.
// Roofline (H100 SXM, ~67 TFLOP/s FP32 FFMA at boost clock, ~3 TB/s HBM): a 128x128 tile does
//   2*128*128*16 FLOPs per (128+128)*16*4 bytes loaded = 32 FLOP/B from L2; 4096^3 moves ~0.5 GB
//   through L2 for 137 GFLOP, far on the compute side, so the target is the FFMA issue rate.
// Registers: 128 x 128 is built with MINB = 1 (ptxas ~165-177 registers, no spills, one block of 8
//   warps per SM; the default) and MINB = 2 (capped at 128, 60-150 bytes of spills; TSM_SGEMM_MINB=2);
//   256 x 128 with MINB = 1 (241-255 registers, no spills at K step 8; at K step 16 it spilled).
//   tools/gpu-lab/sgemm_lab.cu compares the tiles against cuBLAS; figures in launch_sgemm.
// Split K: a problem whose tiles (times its batch) leave most multiprocessors idle and whose K is
//   long gets its K range cut into slices, one block per (tile, slice), partial products in a float32
//   workspace, then splitk_reduce_kernel sums them in slice order and applies the epilogue (so the
//   result is deterministic; it differs from the unsplit one by the summation order only). Made for
//   the weight gradients of linear layers (M, N = features, K = tokens): the Transformer LM of
//   bench/cuda-train has 256x256x4096 ones that ran on 4 of 132 multiprocessors.
#include <algorithm>
#include <cstdlib>
#include <type_traits>

#include "gemm_common.cuh"
#include "scratch.cuh"

namespace tsm {
namespace cuda {
namespace {

// A block tile of BM x BN outputs: warps of 64 x WN outputs (8 x WN/4 per thread), WARPS_M x WARPS_N
// of them; each thread loads A_LOADS float4 of the A panel (BM x BK) and B_LOADS of B's (BK x BN).
template <int BM_, int BN_, int WN_ = 32, int BK_ = 16>
struct Tile {
  static constexpr int BM = BM_, BN = BN_, WN = WN_, BK = BK_, KV = BK / 4;  // KV float4 per panel row
  static constexpr int WARPS_M = BM / 64, WARPS_N = BN / WN;
  static constexpr int THREADS = WARPS_M * WARPS_N * 32;
  static constexpr int A_LOADS = BM * BK / 4 / THREADS, B_LOADS = BN * BK / 4 / THREADS;
  static_assert(BM % 64 == 0 && (WN == 32 || WN == 64) && (BK == 8 || BK == 16) && BN % WN == 0 && A_LOADS * THREADS * 4 == BM * BK &&
                    B_LOADS * THREADS * 4 == BN * BK,
                "tile shape");
};
using Tile128 = Tile<128, 128>;  // 256 threads
using Tile64 = Tile<64, 64>;     // 64 threads: 4x the blocks for problems with few 128x128 tiles
using TileBig = Tile<256, 128, 64, 8>;  // 256 threads, 8 x 16 outputs each: large products

// Shared tiles are k-major rows of the tile's width, unpadded; row k's 4-float groups are permuted
// by XOR with swz(k) (a multiple of 8 below 32) so that the transposed scalar stores of a warp (8
// consecutive m at each of 4 k four apart) fall in 32 different banks, while every aligned float4
// stays contiguous for the fragment loads.
template <int KV>
__device__ __forceinline__ int swz(int k) { return ((k >> 2) & (KV - 1)) * (32 / KV); }

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
// element (r, kc..kc+3) with r = idx / KV, kc = (idx % KV) * 4, idx = tid + i * THREADS.
template <int THREADS, int KV, int L>
__device__ __forceinline__ void load_mk(float4 (&reg)[L], const float* __restrict__ g, int64_t ld,
                                        int rows, int cols, int r0, int k0, bool vec, int tid) {
#pragma unroll
  for (int i = 0; i < L; ++i) {
    const int idx = tid + i * THREADS;
    const int r = r0 + idx / KV, kc = k0 + (idx % KV) * 4;
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
template <int THREADS, int W, int KV, int L>
__device__ __forceinline__ void store_mk(float (*S)[W], const float4 (&reg)[L], int tid) {
#pragma unroll
  for (int i = 0; i < L; ++i) {
    const int idx = tid + i * THREADS;
    const int r = idx / KV, kc = (idx % KV) * 4, rs = r ^ swz<KV>(kc);  // swz is equal for kc..kc+3
    S[kc + 0][rs] = reg[i].x;
    S[kc + 1][rs] = reg[i].y;
    S[kc + 2][rs] = reg[i].z;
    S[kc + 3][rs] = reg[i].w;
  }
}

template <int THREADS, int W, int KV, int L>
__device__ __forceinline__ void store_km(float (*S)[W], const float4 (&reg)[L], int tid) {
#pragma unroll
  for (int i = 0; i < L; ++i) {
    const int idx = tid + i * THREADS;
    const int k = idx / (W / 4);
    *reinterpret_cast<float4*>(&S[k][((idx % (W / 4)) * 4) ^ swz<KV>(k)]) = reg[i];
  }
}

template <bool TA, bool TB, int MINB, typename TL>
__global__ void __launch_bounds__(TL::THREADS, MINB) sgemm_kernel(SgemmArgs p) {
  constexpr int BM = TL::BM, BN = TL::BN, BK = TL::BK, KV = TL::KV, THREADS = TL::THREADS, LA = TL::A_LOADS,
                LB = TL::B_LOADS;
  constexpr int WN = TL::WN, NG = WN / 16;  // NG pairs of 4-column groups per thread, 16 apart
  __shared__ __align__(16) float As[2][BK][BM];
  __shared__ __align__(16) float Bs[2][BK][BN];

  const int tid = threadIdx.x;
  const int tiles_m = (p.m + BM - 1) / BM, tiles_n = (p.n + BN - 1) / BN;
  int tm, tn;
  tile_coords(blockIdx.x, tiles_m, tiles_n, 8, &tm, &tn);
  const int m0 = tm * BM, n0 = tn * BN, z = blockIdx.y;
  const float* A = p.a + int64_t(z) * p.sa;
  const float* B = p.b + int64_t(z) * p.sb;

  const int warp = tid >> 5, lane = tid & 31;
  const int wm = (warp / TL::WARPS_N) * 64, wn = (warp % TL::WARPS_N) * WN;
  const int lm = (lane >> 2) * 4, ln = (lane & 3) * 4;

  float acc[8][4 * NG];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 4 * NG; ++j) acc[i][j] = 0.f;

  float4 ra[LA], rb[LB];
  auto load = [&](int k0) {
    if (TA) load_km<THREADS, BM>(ra, A, p.lda, p.k, p.m, k0, m0, p.vec_a, tid);
    else load_mk<THREADS, KV>(ra, A, p.lda, p.m, p.k, m0, k0, p.vec_a, tid);
    if (TB) load_mk<THREADS, KV>(rb, B, p.ldb, p.n, p.k, n0, k0, p.vec_b, tid);
    else load_km<THREADS, BN>(rb, B, p.ldb, p.k, p.n, k0, n0, p.vec_b, tid);
  };
  auto store = [&](int buf) {
    if (TA) store_km<THREADS, BM, KV>(As[buf], ra, tid); else store_mk<THREADS, BM, KV>(As[buf], ra, tid);
    if (TB) store_mk<THREADS, BN, KV>(Bs[buf], rb, tid); else store_km<THREADS, BN, KV>(Bs[buf], rb, tid);
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
      float af[8], bf[4 * NG];
      const int sk = swz<KV>(kk);
      *reinterpret_cast<float4*>(&af[0]) = *reinterpret_cast<const float4*>(&As[buf][kk][(wm + lm) ^ sk]);
      *reinterpret_cast<float4*>(&af[4]) = *reinterpret_cast<const float4*>(&As[buf][kk][(wm + 32 + lm) ^ sk]);
#pragma unroll
      for (int g = 0; g < NG; ++g)
        *reinterpret_cast<float4*>(&bf[4 * g]) = *reinterpret_cast<const float4*>(&Bs[buf][kk][(wn + 16 * g + ln) ^ sk]);
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 4 * NG; ++j) acc[i][j] = fmaf(af[i], bf[j], acc[i][j]);
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
    for (int h = 0; h < NG; ++h) {
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

SgemmArgs make_args(const GemmProblem& p) {
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
  a.kt_split = INT32_MAX;  // no split; launch_sgemm sets the slice length when it splits
  a.split_stride = 0;
  return a;
}

}  // namespace

#ifdef TSM_SGEMM_LAB
// tools/gpu-lab/sgemm_lab.cu: one tile variant by number, no split K.
tsm_status launch_sgemm_variant(const GemmProblem& p, cudaStream_t s, int v) {
  SgemmArgs a = make_args(p);
  auto go = [&](auto tile, auto minb) {
    using TL = decltype(tile);
    const int64_t tiles = ceil_div(p.m, TL::BM) * ceil_div(p.n, TL::BN);
    launch_variant<decltype(minb)::value, TL>(p, a, dim3(unsigned(tiles), unsigned(p.batch), 1u), s);
    return check_launch("sgemm lab");
  };
  using I1 = std::integral_constant<int, 1>;
  using I2 = std::integral_constant<int, 2>;
  switch (v) {
    case 1: return go(Tile128{}, I2{});
    case 2: return go(Tile128{}, I1{});
    case 3: return go(Tile<128, 256, 64>{}, I1{});
    case 4: return go(Tile<256, 128, 64>{}, I1{});
    case 5: return go(Tile<128, 128, 64>{}, I2{});
    case 6: return go(Tile<128, 128, 64>{}, I1{});
    case 7: return go(Tile<256, 128, 64, 8>{}, I1{});
    case 8: return go(Tile<128, 256, 64, 8>{}, I1{});
    case 9: return go(Tile<128, 128, 64, 8>{}, I2{});
    case 10: return go(Tile<128, 128, 32, 8>{}, I2{});
    case 11: return go(Tile<128, 128, 32, 8>{}, I1{});
    default: return launch_sgemm(p, s);
  }
}
#endif

tsm_status launch_sgemm(const GemmProblem& p, cudaStream_t s) {
  SgemmArgs a = make_args(p);
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
  // Tile 256x128 (warps of 64x64, 8x16 outputs per thread, K step 8) when its tiles (times the
  // batch) fill at least 3/4 of the multiprocessors and pad the matrix no more than 128x128 tiles
  // would (within 1.15x): H100, tools/gpu-lab/sgemm_lab.cu, 4096^3 against the 128x128 tile: NN
  // 0.798 vs 0.761x cuBLAS, NT 0.818 vs 0.784, TN 0.788 vs 0.758, TT 0.864 vs 0.804; 2048^3 NN 0.815
  // vs 0.760 (128 tiles on 132 multiprocessors); 1000^3 (32 tiles) 0.29 vs 0.55, hence the rule.
  // TSM_SGEMM_TILE=256, =128 or =64 forces one (tests, A/B).
  static const char tile_env = env_first("TSM_SGEMM_TILE");
  const int64_t tiles128 = ceil_div(p.m, 128) * ceil_div(p.n, 128), tiles64 = ceil_div(p.m, 64) * ceil_div(p.n, 64);
  const int64_t tiles256 = ceil_div(p.m, 256) * ceil_div(p.n, 128);
  const bool padded = tiles128 * 4 * 20 > tiles64 * 23;  // a 128x128 tile covers four 64x64 ones
  const bool small = tile_env == '6' || (!tile_env && ((tiles128 * p.batch < int64_t(sms) && p.k <= 2048) || padded));
  const bool big = tile_env == '2' || (!tile_env && !small && tiles256 * p.batch * 4 >= int64_t(sms) * 3 &&
                                       tiles256 * 2 * 20 <= tiles128 * 23);
  const int64_t tiles = big ? tiles256 : small ? tiles64 : tiles128;
  if (tiles > INT32_MAX) return fail(TSM_ERR_INVALID_ARGUMENT, "cuda_sgemm: too many tiles");
  static const int minb = env_first("TSM_SGEMM_MINB") == '2' ? 2 : 1;
  if (big) {  // fills the GPU by itself: never split K
    launch_variant<1, TileBig>(p, a, dim3(unsigned(tiles), unsigned(p.batch), 1u), s);
    return check_launch("cuda_sgemm (sgemm_kernel)");
  }
  const int ktiles = int(ceil_div(p.k, Tile128::BK));  // Tile128 and Tile64 step K by 16
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
  // 128x128 blocks: at most 255 registers (MINB 1, one block of 8 warps per SM; ptxas ~165-177, no
  // spills). sgemm_lab, 4096^3 against MINB 2 (128 registers, 60-150 bytes of spills): NN 0.758 vs
  // 0.736x cuBLAS, NT 0.777 vs 0.751, TT 0.805 vs 0.736, 1000^3 0.545 vs 0.41. TSM_SGEMM_MINB=2
  // selects the other.
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
