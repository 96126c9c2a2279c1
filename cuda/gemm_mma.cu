// Tensor-core GEMM with mma.sync (sm_80+): TF32 (m16n8k8), BF16 and FP16 (m16n8k16), float32
// accumulation, row-major, all four transpose combinations, strided batched, fused epilogue.
//
// Tiling (256 threads = 8 warps per block):
//   block tile 128 x 128; K step 64 bytes (BK = 32 halves or 16 floats); warps 2 (M) x 4 (N), warp
//   tile 64 x 32 = 4 x 4 mma tiles of 16 x 8: per k16 (bf16/f16) a warp issues 4 ldmatrix.x4 for A,
//   2 ldmatrix.x4 for B and 16 mma; 64 float accumulators per thread.
// Pipeline: 4 shared-memory stages filled by cp.async (16-byte, L2-only .cg; out-of-range bytes
//   zero-filled by the src-size operand), one __syncthreads per K step; the copy of stage kt+3 is in
//   flight while stage kt is multiplied.
// Shared layouts keep each operand's global orientation (so cp.async copies 16-byte chunks as they
//   are): a K-contiguous tile ([m][k] for A, [n][k] for B^T) is padded by 16 bytes per row, an
//   M/N-contiguous tile ([k][m], [k][n]) by 8 elements: ldmatrix (with .trans for the M/N-contiguous
//   16-bit cases) and the tf32 scalar fragment loads are bank-conflict free with these pads.
// Alignment: cp.async needs 16-byte aligned rows (leading dimension * element size % 16 == 0, base
//   and batch stride likewise); otherwise tiles are loaded element by element (slow but correct).
// TF32: fragments are rounded to tf32 with cvt.rna (round to nearest) before the mma.
// Roofline: H100 SXM dense BF16/FP16 ~990 TFLOP/s and TF32 ~495 with wgmma; mma.sync on Hopper
//   reaches only about 60-65% of that (Hopper's tensor cores are fed at full rate by wgmma only),
//   which is why sm_90 uses gemm_wgmma.cu when it can. On A100 (312 TFLOP/s BF16) this design is
//   the usual Ampere one (CUTLASS's 128x128x32, 4-stage class).
#include <atomic>
#include <cstdint>

#include "gemm_common.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr int BM = 128, BN = 128, STAGES = 4, THREADS = 256;

template <typename T>
struct Cfg {
  static constexpr int ESZ = sizeof(T);
  static constexpr int BK = 64 / ESZ;    // 16 floats or 32 halves
  static constexpr int PADK = 16 / ESZ;  // pad of a K-contiguous row
  static constexpr int PADMN = 8;        // pad of an M/N-contiguous row
  static constexpr int SK = BK + PADK;   // row stride of [m][k] / [n][k] tiles
  static constexpr int SMN = BM + PADMN; // row stride of [k][m] / [k][n] tiles (BM == BN)
  static constexpr int TILE_K = BM * SK;      // elements of a K-contiguous tile
  static constexpr int TILE_MN = BK * SMN;    // elements of an M/N-contiguous tile
};

struct MmaArgs {
  const void* a;
  const void* b;
  int m, n, k;
  int64_t lda, ldb, sa, sb;
  bool aligned_a, aligned_b;
  Epilogue e;
};

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Copies a ROWS x COLS panel (global orientation: COLS contiguous) starting at (r0, c0) of a
// rows_lim x cols_lim matrix with leading dimension ld into shared memory with row stride SS.
template <typename T, int ROWS, int COLS, int SS>
__device__ __forceinline__ void load_panel(T* __restrict__ sm, const T* __restrict__ g, int64_t ld,
                                           int rows_lim, int cols_lim, int r0, int c0, bool aligned,
                                           int tid) {
  constexpr int CH = 16 / sizeof(T);
  constexpr int CPR = COLS / CH;  // chunks per row
  constexpr int CHUNKS = ROWS * CPR;
  static_assert(CHUNKS % THREADS == 0, "panel chunks must divide among the threads");
#pragma unroll
  for (int i = 0; i < CHUNKS / THREADS; ++i) {
    const int idx = tid + i * THREADS;
    const int r = idx / CPR, c = (idx % CPR) * CH;
    const int gr = r0 + r, gc = c0 + c;
    T* dst = sm + r * SS + c;
    if (aligned) {
      int valid = (gr < rows_lim) ? min(max(cols_lim - gc, 0), CH) : 0;
      const T* src = valid > 0 ? g + int64_t(gr) * ld + gc : g;
      cp_async16(dst, src, valid * int(sizeof(T)));
    } else {
#pragma unroll
      for (int e = 0; e < CH; ++e) {
        T v = T(0.f);
        if (gr < rows_lim && gc + e < cols_lim) v = g[int64_t(gr) * ld + gc + e];
        dst[e] = v;
      }
    }
  }
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}

__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1, __nv_bfloat16) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1, __half) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_1688_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                              uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

// One BK slice of the warp tile: acc[mt][nt] += A(64 x BK) * B(BK x 32).
template <typename T, bool TA, bool TB>
__device__ __forceinline__ void compute_stage(float (&acc)[4][4][4], const T* __restrict__ As,
                                              const T* __restrict__ Bs, int wm, int wn, int lane) {
  using C = Cfg<T>;
  if constexpr (sizeof(T) == 2) {
    const int q = lane >> 3, r = lane & 7;
#pragma unroll
    for (int ks = 0; ks < C::BK / 16; ++ks) {
      uint32_t af[4][4], bfr[4][2];
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        if (!TA) ldmatrix_x4(af[mt], As + (wm + mt * 16 + (q & 1) * 8 + r) * C::SK + ks * 16 + (q >> 1) * 8);
        else ldmatrix_x4_trans(af[mt], As + (ks * 16 + (q >> 1) * 8 + r) * C::SMN + wm + mt * 16 + (q & 1) * 8);
      }
#pragma unroll
      for (int np = 0; np < 2; ++np) {
        uint32_t t4[4];
        if (TB) ldmatrix_x4(t4, Bs + (wn + np * 16 + (q >> 1) * 8 + r) * C::SK + ks * 16 + (q & 1) * 8);
        else ldmatrix_x4_trans(t4, Bs + (ks * 16 + (q & 1) * 8 + r) * C::SMN + wn + np * 16 + (q >> 1) * 8);
        bfr[2 * np][0] = t4[0];
        bfr[2 * np][1] = t4[1];
        bfr[2 * np + 1][0] = t4[2];
        bfr[2 * np + 1][1] = t4[3];
      }
#pragma unroll
      for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) mma_16816(acc[mt][nt], af[mt], bfr[nt][0], bfr[nt][1], T());
    }
  } else {
    const int g = lane >> 2, t = lane & 3;
    auto A = [&](int row, int kk) -> float { return TA ? As[kk * C::SMN + row] : As[row * C::SK + kk]; };
    auto B = [&](int kk, int col) -> float { return TB ? Bs[col * C::SK + kk] : Bs[kk * C::SMN + col]; };
#pragma unroll
    for (int ks = 0; ks < C::BK / 8; ++ks) {
      const int kk = ks * 8 + t;
      uint32_t af[4][4], bfr[4][2];
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        const int row = wm + mt * 16 + g;
        af[mt][0] = to_tf32(A(row, kk));
        af[mt][1] = to_tf32(A(row + 8, kk));
        af[mt][2] = to_tf32(A(row, kk + 4));
        af[mt][3] = to_tf32(A(row + 8, kk + 4));
      }
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int col = wn + nt * 8 + g;
        bfr[nt][0] = to_tf32(B(kk, col));
        bfr[nt][1] = to_tf32(B(kk + 4, col));
      }
#pragma unroll
      for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) mma_1688_tf32(acc[mt][nt], af[mt], bfr[nt][0], bfr[nt][1]);
    }
  }
}

template <typename T, bool TA, bool TB>
__global__ void __launch_bounds__(THREADS) mma_gemm_kernel(MmaArgs p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using C = Cfg<T>;
  constexpr int A_TILE = TA ? C::TILE_MN : C::TILE_K;
  constexpr int B_TILE = TB ? C::TILE_K : C::TILE_MN;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* smA = reinterpret_cast<T*>(smem_raw);
  T* smB = smA + STAGES * A_TILE;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int tiles_m = (p.m + BM - 1) / BM, tiles_n = (p.n + BN - 1) / BN;
  int tm, tn;
  tile_coords(blockIdx.x, tiles_m, tiles_n, 8, &tm, &tn);
  const int m0 = tm * BM, n0 = tn * BN, z = blockIdx.y;
  const T* A = static_cast<const T*>(p.a) + int64_t(z) * p.sa;
  const T* B = static_cast<const T*>(p.b) + int64_t(z) * p.sb;
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  auto load_stage = [&](int slot, int kt) {
    const int k0 = kt * C::BK;
    T* sa = smA + slot * A_TILE;
    T* sb = smB + slot * B_TILE;
    if (!TA) load_panel<T, BM, C::BK, C::SK>(sa, A, p.lda, p.m, p.k, m0, k0, p.aligned_a, tid);
    else load_panel<T, C::BK, BM, C::SMN>(sa, A, p.lda, p.k, p.m, k0, m0, p.aligned_a, tid);
    if (TB) load_panel<T, BN, C::BK, C::SK>(sb, B, p.ldb, p.n, p.k, n0, k0, p.aligned_b, tid);
    else load_panel<T, C::BK, BN, C::SMN>(sb, B, p.ldb, p.k, p.n, k0, n0, p.aligned_b, tid);
  };

  const int ktiles = (p.k + C::BK - 1) / C::BK;
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ktiles) load_stage(s, s);
    cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // stage kt is in shared memory; everyone is done with stage kt-1's slot
    const int next = kt + STAGES - 1;
    if (next < ktiles) load_stage(next % STAGES, next);
    cp_async_commit();
    const int slot = kt % STAGES;
    compute_stage<T, TA, TB>(acc, smA + slot * A_TILE, smB + slot * B_TILE, wm, wn, lane);
  }
  cp_async_wait<0>();

  const int g = lane >> 2, t = lane & 3;
  const Epilogue e = p.e;
  const bool fast = epilogue_inline(e);
#pragma unroll
  for (int mt = 0; mt < 4; ++mt) {
    const int row = m0 + wm + mt * 16 + g;
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      const int col = n0 + wn + nt * 8 + 2 * t;
      if (row < p.m) epilogue_pair(e, fast, z, row, col, p.n, acc[mt][nt][0], acc[mt][nt][1]);
      if (row + 8 < p.m) epilogue_pair(e, fast, z, row + 8, col, p.n, acc[mt][nt][2], acc[mt][nt][3]);
    }
  }
#endif
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

template <typename T, bool TA, bool TB>
tsm_status launch_typed(const MmaArgs& a, int batch, cudaStream_t s) {
  using C = Cfg<T>;
  constexpr int A_TILE = TA ? C::TILE_MN : C::TILE_K;
  constexpr int B_TILE = TB ? C::TILE_K : C::TILE_MN;
  constexpr size_t smem = size_t(STAGES) * (A_TILE + B_TILE) * sizeof(T);
  auto kernel = mma_gemm_kernel<T, TA, TB>;
  static std::atomic<uint64_t> smem_set{0};  // devices where the limit is raised
  if (tsm_status st = allow_dynamic_smem(kernel, smem, smem_set)) return st;
  const int64_t tiles = ceil_div(a.m, BM) * ceil_div(a.n, BN);
  dim3 grid{unsigned(tiles), unsigned(batch)};
  kernel<<<grid, THREADS, smem, s>>>(a);
  return check_launch("cuda_gemm (mma_gemm_kernel)");
}

template <typename T>
tsm_status launch_layout(const MmaArgs& a, bool ta, bool tb, int batch, cudaStream_t s) {
  if (!ta && !tb) return launch_typed<T, false, false>(a, batch, s);
  if (!ta && tb) return launch_typed<T, false, true>(a, batch, s);
  if (ta && !tb) return launch_typed<T, true, false>(a, batch, s);
  return launch_typed<T, true, true>(a, batch, s);
}

}  // namespace

tsm_status launch_mma(const GemmProblem& p, cudaStream_t s) {
  const DeviceProps* dp = props("cuda_gemm");
  if (!dp) return TSM_ERR_CUDA;
  if (dp->cc_major < 8)
    return fail(TSM_ERR_UNSUPPORTED, "cuda_gemm: tensor-core GEMM (mma.sync) needs sm_80 or newer; %s is sm_%d%d",
                dp->name, dp->cc_major, dp->cc_minor);
  MmaArgs a;
  a.a = p.a;
  a.b = p.b;
  a.m = p.m;
  a.n = p.n;
  a.k = p.k;
  a.lda = p.lda;
  a.ldb = p.ldb;
  a.sa = p.sa;
  a.sb = p.sb;
  const int esz = p.type == TSM_CUDA_GEMM_TF32 ? 4 : 2;
  a.aligned_a = aligned16(p.a) && (p.lda * esz) % 16 == 0 && (p.sa * esz) % 16 == 0;
  a.aligned_b = aligned16(p.b) && (p.ldb * esz) % 16 == 0 && (p.sb * esz) % 16 == 0;
  a.e = make_epilogue(p);
  if (ceil_div(p.m, BM) * ceil_div(p.n, BN) > INT32_MAX)
    return fail(TSM_ERR_INVALID_ARGUMENT, "cuda_gemm: too many tiles");
  switch (p.type) {
    case TSM_CUDA_GEMM_TF32: return launch_layout<float>(a, p.ta, p.tb, p.batch, s);
    case TSM_CUDA_GEMM_BF16: return launch_layout<__nv_bfloat16>(a, p.ta, p.tb, p.batch, s);
    case TSM_CUDA_GEMM_F16: return launch_layout<__half>(a, p.ta, p.tb, p.batch, s);
    default: return fail(TSM_ERR_UNSUPPORTED, "cuda_gemm: the mma kernel has no gemm type %d", p.type);
  }
}

}  // namespace cuda
}  // namespace tsm
