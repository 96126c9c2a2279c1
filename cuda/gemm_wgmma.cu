// Hopper (sm_90a) tensor-core GEMM: wgmma fed by TMA, warp-specialised, for TF32, BF16 and FP16
// with float32 accumulation. Compiled for every architecture in the build, but the kernel body
// exists only in the sm_90a pass (__CUDA_ARCH_FEAT_SM90_ALL); the host side checks that the binary
// holds sm_90a code for the kernel (cudaFuncGetAttributes: binaryVersion 90) and that the device is
// sm_90 before choosing it, so other architectures build and never launch it.
//
// Scope: K-major operands only, i.e. row-major A (trans_a = 0) and B given as N x K (trans_b = 1):
// y = x W^T, the layout of linear layers and of cuBLAS's "TN". TF32 wgmma reads only K-major
// operands anyway; other layouts (and unaligned ones) go to gemm_mma.cu.
//
// Tiling: block tile 128 (M) x 256 (N), K step 128 bytes (64 halves or 32 floats), 4 stages
//   (4 x 48 KB of shared memory). 384 threads = 3 warpgroups:
//     warpgroup 0 (producer): one thread issues the TMA copies of A (128 x 128 B) and B (256 x 128 B)
//       into stage s, announcing the bytes on the stage's "full" mbarrier; it first waits on the
//       stage's "empty" mbarrier until the consumers have released it. setmaxnreg.dec to 40.
//     warpgroups 1, 2 (consumers): each owns 64 rows of the tile: per stage, 4 (bf16/f16: k16; tf32:
//       k8) wgmma.m64n256 with both operands read from shared memory through descriptors; 128 float
//       accumulators per thread; setmaxnreg.inc to 232. After committing stage kt's wgmmas a
//       consumer waits for stage kt-1's (wgmma.wait_group 1) and releases it (one arrive per warp).
//   TMA writes each stage with the 128-byte swizzle, which is exactly wgmma's K-major SW128 layout
//   (8 rows x 128 B atoms, 1024 B apart: SBO = 1024); advancing a descriptor by 32 B steps K by
//   16 halves / 8 floats inside the atom. Out-of-range rows and K are zero-filled by TMA, so edges
//   need no special code; the epilogue checks bounds.
// Roofline (H100 SXM): BF16/FP16 dense ~990 TFLOP/s, TF32 ~495; HBM ~3.35 TB/s (measured copy here
//   ~3.0). 4096^3 bf16: 137 GFLOP -> ~0.14 ms at peak, bytes 4096^2*(2+2+4) = 134 MB -> 0.045 ms:
//   compute-bound; the tile's 128x256 gives 2*128*256*64 FLOP per 48 KB = 85 FLOP/B of L2->SMEM
//   traffic, enough to keep L2 under its bandwidth at full tensor rate.
// Epilogue: through shared memory (epilogue_rows below); on an H100 (2026-11-23) 0.92-0.97x cuBLAS
//   for bf16 and 0.94-0.98x for tf32 at 4096^3-8192^3 (bench/NOTES.md, "GPU: the second session").
// Tried in tools/gpu-lab and not kept: a persistent grid (+1.5%), 2-CTA clusters with the B tile
//   multicast (35-45% slower). Not done: the epilogue overlapped with the next tile's wgmmas (a
//   persistent kernel with a TMA store; the no-store variant is 10% faster at 4096^3), smaller tiles
//   or split K for products with few tiles, the MN-major (transposed) 16-bit cases.
#include <cuda.h>  // CUtensorMap and its enums (header only: the driver entry point is fetched at run time)

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "gemm_common.cuh"

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TSM_WGMMA_DEVICE 1
#endif

namespace tsm {
namespace cuda {
namespace {

constexpr int WBM = 128, WBN = 256, WSTAGES = 4, WTHREADS = 384;
constexpr int A_STAGE = WBM * 128, B_STAGE = WBN * 128;  // bytes
constexpr int STAGE_BYTES = A_STAGE + B_STAGE;
constexpr int SMEM_BYTES = WSTAGES * STAGE_BYTES + 1024 /* alignment slack */ + 2 * WSTAGES * 8;

struct WgArgs {
  int m, n, k;
  bool batched_a, batched_b;
  Epilogue e;
};

#ifdef TSM_WGMMA_DEVICE
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2,
                                            uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n"
      ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}
// Shared-memory matrix descriptor: K-major, 128-byte swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ uint64_t make_desc(uint32_t addr) {
  uint64_t d = 0;
  d |= uint64_t((addr & 0x3FFFF) >> 4);
  d |= uint64_t(1) << 16;             // leading byte offset (unused for swizzled K-major)
  d |= uint64_t(1024 >> 4) << 32;     // stride byte offset
  d |= uint64_t(1) << 62;             // SWIZZLE_128B
  return d;
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
// Keeps the compiler from moving accumulator reads/writes across the asynchronous wgmma boundary.
__device__ __forceinline__ void fence_regs(float (&d)[128]) {
#pragma unroll
  for (int i = 0; i < 128; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

__device__ __forceinline__ void wgmma_bf16(float (&d)[128], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, %128, %129, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(da), "l"(db), "r"(1));
}
__device__ __forceinline__ void wgmma_f16(float (&d)[128], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, %128, %129, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(da), "l"(db), "r"(1));
}
__device__ __forceinline__ void wgmma_tf32(float (&d)[128], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k8.f32.tf32.tf32 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, %128, %129, p, 1, 1;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(da), "l"(db), "r"(1));
}

template <typename T>
__device__ __forceinline__ void wgmma_step(float (&d)[128], uint64_t da, uint64_t db) {
  if constexpr (sizeof(T) == 4) wgmma_tf32(d, da, db);
  else if constexpr (std::is_same<T, __half>::value) wgmma_f16(d, da, db);
  else wgmma_bf16(d, da, db);
}
#endif  // TSM_WGMMA_DEVICE

// Kernel variants, chosen at compile time; the lab harness tools/gpu-lab/wgmma_lab.cu times them
// against cuBLAS. WG_NOEPI is a diagnostic (no stores, wrong results): the main loop's own rate.
enum : int { WG_NOEPI = 16 };
// The variant the library runs.
constexpr int WG_DEFAULT = 0;

#ifdef TSM_WGMMA_DEVICE
// The epilogue of one consumer warpgroup (wtid 0..127; rows row_base .. row_base+63, columns n0 ..
// n0+255), through shared memory. Why: the epilogue written per accumulator fragment (64 stores per
// thread, each with the general epilogue's branches on dtype, beta, bias and activation) unrolled
// into ~300 KB of machine code per kernel, fetched once per tile; that cost more than half the run
// time (bf16 4096^3: 434 us against 174 us without stores). Here the fragments go to shared memory
// as alpha * acc in float32 (16-byte chunks XOR-swizzled by row: the pair stores of a warp hit 32
// distinct banks), then a rolled loop applies act(v + beta * C + bias) and writes each row with
// vector stores, compact code whatever the epilogue.
template <typename OutT>
__device__ __forceinline__ void epilogue_rows(const float* stage, const Epilogue& e, int z, int row_base, int n0,
                                              int m, int n, int wtid) {
  constexpr int CPR = 64;  // 16-byte chunks of 4 floats per staged row
  OutT* cbase = static_cast<OutT*>(e.c) + int64_t(z) * e.sc;
#pragma unroll 2
  for (int idx = wtid; idx < 64 * CPR; idx += 128) {
    const int r = idx / CPR, ch = idx % CPR;
    const int row = row_base + r, col = n0 + 4 * ch;
    if (row >= m || col >= n) continue;
    const float4 s = *reinterpret_cast<const float4*>(stage + r * 256 + ((ch ^ (r & 7)) * 4));
    float v[4] = {s.x, s.y, s.z, s.w};
    OutT* out = cbase + int64_t(row) * e.ldc + col;
    const int cnt = min(4, n - col);
    const bool vec = cnt == 4 && (reinterpret_cast<uintptr_t>(out) & (4 * sizeof(OutT) - 1)) == 0;
    if (e.beta != 0.f) {
#pragma unroll
      for (int i = 0; i < 4; ++i)
        if (i < cnt) v[i] += e.beta * to_float(out[i]);
    }
    if (e.bias) {
#pragma unroll
      for (int i = 0; i < 4; ++i)
        if (i < cnt) v[i] += __ldg(e.bias + col + i);
    }
    if (e.act) {
#pragma unroll
      for (int i = 0; i < 4; ++i) v[i] = apply_act(v[i], e.act);
    }
    if (vec) {
      store4(out, v);
    } else {
      for (int i = 0; i < cnt; ++i) out[i] = from_float<OutT>(v[i]);
    }
  }
}
#endif  // TSM_WGMMA_DEVICE

template <typename T, int F>
__global__ void __launch_bounds__(WTHREADS, 1)
    wgmma_gemm_kernel(const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmB, WgArgs p) {
#ifdef TSM_WGMMA_DEVICE
  constexpr int BK = 128 / int(sizeof(T));  // K per stage
  constexpr int KSTEPS = 4;                 // wgmma per stage: 32 B of K each
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = smem_u32(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  const uint32_t sA = base, sB = base + WSTAGES * A_STAGE;
  const uint32_t bars = sB + WSTAGES * B_STAGE;
  auto full = [&](int s) { return bars + 8u * s; };
  auto empty = [&](int s) { return bars + 8u * (WSTAGES + s); };

  const int tiles_m = (p.m + WBM - 1) / WBM, tiles_n = (p.n + WBN - 1) / WBN;
  int tm, tn;
  tile_coords(blockIdx.x, tiles_m, tiles_n, 8, &tm, &tn);
  const int m0 = tm * WBM, n0 = tn * WBN, z = blockIdx.y;
  const int wg = threadIdx.x / 128;
  const int ktiles = (p.k + BK - 1) / BK;

  if (threadIdx.x == 0) {
    for (int s = 0; s < WSTAGES; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), 8);  // one arrive per consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (threadIdx.x == 0) {
      const int za = p.batched_a ? z : 0, zb = p.batched_b ? z : 0;
      for (int kt = 0; kt < ktiles; ++kt) {
        const int s = kt % WSTAGES;
        if (kt >= WSTAGES) mbar_wait(empty(s), ((kt / WSTAGES) - 1) & 1);
        mbar_expect_tx(full(s), STAGE_BYTES);
        tma_load_3d(sA + s * A_STAGE, &tmA, kt * BK, m0, za, full(s));
        tma_load_3d(sB + s * B_STAGE, &tmB, kt * BK, n0, zb, full(s));
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) d[i] = 0.f;
    const int cw = wg - 1;  // consumer warpgroup: rows cw*64 .. cw*64+63 of the tile
    const int lane = threadIdx.x & 31;
    for (int kt = 0; kt < ktiles; ++kt) {
      const int s = kt % WSTAGES;
      mbar_wait(full(s), (kt / WSTAGES) & 1);
      fence_regs(d);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < KSTEPS; ++kk) {
        const uint64_t da = make_desc(sA + s * A_STAGE + cw * 64 * 128 + kk * 32);
        const uint64_t db = make_desc(sB + s * B_STAGE + kk * 32);
        wgmma_step<T>(d, da, db);
      }
      wgmma_commit();
      fence_regs(d);
      wgmma_wait<1>();
      fence_regs(d);
      if (kt > 0 && lane == 0) mbar_arrive(empty((kt - 1) % WSTAGES));
    }
    wgmma_wait<0>();
    fence_regs(d);

    if constexpr (F & WG_NOEPI) {
      // No stores, but the accumulators stay live (otherwise the compiler may drop the wgmmas).
      float acc = 0.f;
#pragma unroll
      for (int i = 0; i < 128; ++i) acc += d[i];
      if (acc == 1234567.f) static_cast<float*>(p.e.c)[threadIdx.x] = acc;
    } else {
      // Both consumer warpgroups are past their last wgmma, and every stage the producer loaded has
      // been consumed: the stage buffers are free. Warpgroup cw stages its 64 x 256 floats at
      // base + cw * 64 KiB (within the 192 KiB of stages).
      asm volatile("bar.sync 1, 256;\n" ::: "memory");
      float* stage = reinterpret_cast<float*>(smem_raw + (base - raw)) + cw * 64 * 256;
      // Accumulator layout (per warp of the warpgroup, 16 rows): d[4j + 2h + c] is row g + 8h,
      // column 8j + 2t + c, with g = lane / 4, t = lane % 4.
      const int w = (threadIdx.x / 32) & 3, g = lane >> 2, t = lane & 3;
#pragma unroll
      for (int j = 0; j < 32; ++j) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = w * 16 + g + 8 * h;
          const int c = 8 * j + 2 * t;  // float column; chunk c / 4, swizzled by row
          *reinterpret_cast<float2*>(stage + r * 256 + (((c >> 2) ^ (r & 7)) << 2) + (c & 3)) =
              make_float2(p.e.alpha * d[4 * j + 2 * h], p.e.alpha * d[4 * j + 2 * h + 1]);
        }
      }
      asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
      const int wtid = threadIdx.x - 128 * wg, row_base = m0 + cw * 64;
      if (p.e.c_dtype == TSM_CUDA_F32) epilogue_rows<float>(stage, p.e, z, row_base, n0, p.m, p.n, wtid);
      else if (p.e.c_dtype == TSM_CUDA_BF16) epilogue_rows<__nv_bfloat16>(stage, p.e, z, row_base, n0, p.m, p.n, wtid);
      else epilogue_rows<__half>(stage, p.e, z, row_base, n0, p.m, p.n, wtid);
    }
  }
#endif  // TSM_WGMMA_DEVICE
}

// ---- host side ----

using EncodeTiledFn = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                   const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                   CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiledFn encode_fn() {
  static EncodeTiledFn fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      f = nullptr;
    }
    return reinterpret_cast<EncodeTiledFn>(f);
  }();
  return fn;
}

template <typename T>
bool has_sm90a_code() {
  static int cached = -1;  // per device would be exact; one GPU kind per process is the norm
  if (cached < 0) {
    cudaFuncAttributes attr{};
    if (cudaFuncGetAttributes(&attr, wgmma_gemm_kernel<T, WG_DEFAULT>) != cudaSuccess) {
      cudaGetLastError();
      cached = 0;
    } else {
      // sm_90a machine code: binary 9.0 compiled from compute_90a PTX. (A JIT of the compute_80 PTX
      // on an H100 also reports binaryVersion 90, but ptxVersion 80, and its body is empty.)
      cached = attr.binaryVersion == 90 && attr.ptxVersion == 90 ? 1 : 0;
    }
  }
  return cached == 1;
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

bool applicable_reason(const GemmProblem& p, const char** why) {
  const int esz = p.type == TSM_CUDA_GEMM_TF32 ? 4 : 2;
  if (p.type == TSM_CUDA_GEMM_F32) { *why = "gemm type F32 runs on CUDA cores"; return false; }
  if (p.ta || !p.tb) { *why = "the wgmma kernel takes K-major operands only (trans_a = 0, trans_b = 1)"; return false; }
  if (p.k == 0) { *why = "k is 0"; return false; }
  if (!aligned16(p.a) || !aligned16(p.b) || (p.lda * esz) % 16 || (p.ldb * esz) % 16 || (p.sa * esz) % 16 ||
      (p.sb * esz) % 16) {
    *why = "TMA needs 16-byte aligned base addresses, rows and batch strides";
    return false;
  }
  const DeviceProps* dp = props("cuda_gemm");
  if (!dp || dp->cc_major != 9 || dp->cc_minor != 0) { *why = "the device is not sm_90"; return false; }
  if (dp->smem_optin < size_t(SMEM_BYTES)) { *why = "the device has too little shared memory per block"; return false; }
  bool code = p.type == TSM_CUDA_GEMM_TF32   ? has_sm90a_code<float>()
              : p.type == TSM_CUDA_GEMM_BF16 ? has_sm90a_code<__nv_bfloat16>()
                                             : has_sm90a_code<__half>();
  if (!code) { *why = "this binary was built without sm_90a code (CMAKE_CUDA_ARCHITECTURES lacks 90a)"; return false; }
  if (!encode_fn()) { *why = "the driver has no cuTensorMapEncodeTiled"; return false; }
  return true;
}

template <typename T>
tsm_status encode(CUtensorMap* map, const void* ptr, int64_t inner, int64_t rows, int64_t ld, int64_t stride,
                  int batch, uint32_t box_rows) {
  constexpr int esz = sizeof(T);
  const CUtensorMapDataType dt = sizeof(T) == 4 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                 : std::is_same<T, __half>::value ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                                                  : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  const bool batched = stride != 0 && batch > 1;
  cuuint64_t dims[3] = {cuuint64_t(inner), cuuint64_t(rows), cuuint64_t(batched ? batch : 1)};
  cuuint64_t strides[2] = {cuuint64_t(ld * esz), cuuint64_t(batched ? stride * esz : ld * esz * rows)};
  cuuint32_t box[3] = {cuuint32_t(128 / esz), box_rows, 1};
  cuuint32_t estr[3] = {1, 1, 1};
  CUresult r = encode_fn()(map, dt, 3, const_cast<void*>(ptr), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                           CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                           CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    return fail(TSM_ERR_CUDA, "cuTensorMapEncodeTiled: error %d (dims %lld x %lld, ld %lld)", int(r),
                (long long)inner, (long long)rows, (long long)ld);
  return TSM_OK;
}

template <typename T, int F>
tsm_status launch_typed(const GemmProblem& p, cudaStream_t s) {
  CUtensorMap ta, tb;
  tsm_status st = encode<T>(&ta, p.a, p.k, p.m, p.lda, p.sa, p.batch, WBM);
  if (st != TSM_OK) return st;
  st = encode<T>(&tb, p.b, p.k, p.n, p.ldb, p.sb, p.batch, WBN);
  if (st != TSM_OK) return st;
  WgArgs a;
  a.m = p.m;
  a.n = p.n;
  a.k = p.k;
  a.batched_a = p.sa != 0 && p.batch > 1;
  a.batched_b = p.sb != 0 && p.batch > 1;
  a.e = make_epilogue(p);
  auto kernel = wgmma_gemm_kernel<T, F>;
  static std::atomic<uint64_t> smem_set{0};  // devices where the limit is raised
  if (tsm_status st = allow_dynamic_smem(kernel, SMEM_BYTES, smem_set)) return st;
  const int64_t tiles = ceil_div(p.m, WBM) * ceil_div(p.n, WBN);
  if (tiles > INT32_MAX) return fail(TSM_ERR_INVALID_ARGUMENT, "cuda_gemm: too many tiles");
  dim3 grid{unsigned(tiles), unsigned(p.batch)};
  kernel<<<grid, WTHREADS, SMEM_BYTES, s>>>(ta, tb, a);
  return check_launch("cuda_gemm (wgmma_gemm_kernel)");
}

template <int F>
tsm_status launch_flags(const GemmProblem& p, cudaStream_t s) {
  switch (p.type) {
    case TSM_CUDA_GEMM_TF32: return launch_typed<float, F>(p, s);
    case TSM_CUDA_GEMM_BF16: return launch_typed<__nv_bfloat16, F>(p, s);
    default: return launch_typed<__half, F>(p, s);
  }
}

}  // namespace

bool wgmma_applicable(const GemmProblem& p) {
  const char* why = nullptr;
  return applicable_reason(p, &why);
}

tsm_status launch_wgmma(const GemmProblem& p, cudaStream_t s) {
  const char* why = nullptr;
  if (!applicable_reason(p, &why)) return fail(TSM_ERR_UNSUPPORTED, "cuda_gemm: wgmma path unavailable: %s", why);
  return launch_flags<WG_DEFAULT>(p, s);
}

#ifdef TSM_WGMMA_LAB
// For tools/gpu-lab/wgmma_lab.cu: the variants it times, by their flags.
tsm_status launch_wgmma_variant(const GemmProblem& p, cudaStream_t s, int flags) {
  const char* why = nullptr;
  if (!applicable_reason(p, &why)) return fail(TSM_ERR_UNSUPPORTED, "cuda_gemm: wgmma path unavailable: %s", why);
  switch (flags) {
#define TSM_WG_CASE(f) \
  case f: return p.type == TSM_CUDA_GEMM_TF32 ? launch_typed<float, f>(p, s) : launch_typed<__nv_bfloat16, f>(p, s);
    TSM_WGMMA_LAB_VARIANTS(TSM_WG_CASE)
#undef TSM_WG_CASE
    default: return fail(TSM_ERR_INVALID_ARGUMENT, "wgmma lab: variant %d not compiled", flags);
  }
}
#endif

}  // namespace cuda
}  // namespace tsm
