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
// Not done yet (next steps once measured): persistent tile scheduler with the epilogue overlapped,
//   2-CTA clusters with TMA multicast, a TMA-store epilogue, the MN-major (transposed) 16-bit cases.
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
  int m, n, k, batch;
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

// Kernel variants, chosen at compile time (the lab harness tools/gpu-lab/wgmma_lab.cu times each):
//   WG_PERSIST  a persistent grid (one block per SM) walking the tiles; the producer runs on into the
//               next tile's stages while the consumers store the current one.
//   WG_CLUSTER  2-CTA clusters along M: the two blocks compute vertically adjacent tiles with the
//               same B columns; each loads half of the B tile and multicasts it to both.
//   WG_NOMMA, WG_NOLOAD, WG_NOEPI  diagnostics (wrong results): no wgmma / loads only for the first
//               stages / no stores, to time the feed, the tensor pipe and the epilogue apart.
//   WG_WAIT0    release each stage after wgmma.wait_group 0 instead of one stage later.
enum : int {
  WG_PERSIST = 1, WG_CLUSTER = 2, WG_NOMMA = 4, WG_NOLOAD = 8, WG_NOEPI = 16, WG_WAIT0 = 32,
  WG_EPI_SIMPLE = 64, WG_EPI_SMEM = 128
};
// The variant the library runs.
constexpr int WG_DEFAULT = 0;

#ifdef TSM_WGMMA_DEVICE
__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
__device__ __forceinline__ void cluster_sync_all() {
  asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;\n" ::: "memory");
}
// Arrive on the mbarrier at the same shared-memory offset in CTA `rank` of the cluster.
__device__ __forceinline__ void mbar_arrive_cluster(uint32_t bar, uint32_t rank) {
  asm volatile(
      "{\n .reg .b32 ra;\n mapa.shared::cluster.u32 ra, %0, %1;\n"
      " mbarrier.arrive.release.cluster.shared::cluster.b64 _, [ra];\n}\n" ::"r"(bar),
      "r"(rank)
      : "memory");
}
__device__ __forceinline__ void mbar_wait_cluster(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
__device__ __forceinline__ void tma_load_3d_mc(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2,
                                               uint32_t bar, uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%2, %3, %4}], [%5], %6;\n"
      ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar), "h"(mask)
      : "memory");
}
#endif

#ifdef TSM_WGMMA_DEVICE
// Epilogue through shared memory for one consumer warpgroup (wtid 0..127, 64 rows x 256 columns):
// act(alpha * acc + bias) converted to OutT is written to `stage` (64 rows of 256 * sizeof(OutT)
// bytes; 16-byte chunks XOR-swizzled by row so the fragment writes hit 32 distinct banks), then each
// warp writes whole rows with 16-byte stores. beta != 0 is not handled here.
template <typename OutT>
__device__ __forceinline__ void epilogue_smem(float (&d)[128], unsigned char* stage, const Epilogue& e, int z,
                                              int row_base, int n0, int m, int n, int wtid, int cw) {
  constexpr int ES = sizeof(OutT), ROWB = 256 * ES, EPC = 16 / ES, CPR = ROWB / 16;
  const int lane = wtid & 31, w = wtid >> 5, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < 32; ++j) {
    const int c = 8 * j + 2 * t;
    float b0 = 0.f, b1 = 0.f;
    if (e.bias) {
      if (n0 + c < n) b0 = __ldg(e.bias + n0 + c);
      if (n0 + c + 1 < n) b1 = __ldg(e.bias + n0 + c + 1);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = w * 16 + g + 8 * h;
      const float v0 = apply_act(e.alpha * d[4 * j + 2 * h] + b0, e.act);
      const float v1 = apply_act(e.alpha * d[4 * j + 2 * h + 1] + b1, e.act);
      unsigned char* dst = stage + r * ROWB + (((c / EPC) ^ (r & 7)) * 16) + (c % EPC) * ES;
      if constexpr (ES == 4) {
        *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
      } else if constexpr (std::is_same<OutT, __half>::value) {
        *reinterpret_cast<__half2*>(dst) = __floats2half2_rn(v0, v1);
      } else {
        *reinterpret_cast<__nv_bfloat162*>(dst) = __floats2bfloat162_rn(v0, v1);
      }
    }
  }
  asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
  OutT* cbase = static_cast<OutT*>(e.c) + int64_t(z) * e.sc;
#pragma unroll 4
  for (int idx = wtid; idx < 64 * CPR; idx += 128) {
    const int r = idx / CPR, ch = idx % CPR;
    const int row = row_base + r, col = n0 + ch * EPC;
    if (row >= m || col >= n) continue;
    const uint4 v = *reinterpret_cast<const uint4*>(stage + r * ROWB + ((ch ^ (r & 7)) * 16));
    OutT* out = cbase + int64_t(row) * e.ldc + col;
    if (col + EPC <= n && (reinterpret_cast<uintptr_t>(out) & 15) == 0) {
      *reinterpret_cast<uint4*>(out) = v;
    } else {
      const OutT* src = reinterpret_cast<const OutT*>(&v);
      for (int i = 0; i < EPC && col + i < n; ++i) out[i] = src[i];
    }
  }
}
#endif

// The work unit `u` of the schedule -> tile coordinates. With clusters a unit is a pair of
// vertically adjacent tiles (rank 0 the upper one).
__device__ __forceinline__ void unit_tile(int u, int tiles_m, int tiles_n, bool pairs, int rank, int* tm, int* tn) {
  if (pairs) {
    int pm;
    tile_coords(u, (tiles_m + 1) / 2, tiles_n, 4, &pm, tn);
    *tm = 2 * pm + rank;
  } else {
    tile_coords(u, tiles_m, tiles_n, 8, tm, tn);
  }
}

template <typename T, int F>
__global__ void __launch_bounds__(WTHREADS, 1)
    wgmma_gemm_kernel(const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmB, WgArgs p) {
#ifdef TSM_WGMMA_DEVICE
  constexpr bool PERSIST = F & WG_PERSIST, CL = F & WG_CLUSTER;
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
  // Work units: tiles (tile pairs with clusters) of every batch entry, batch-major.
  const int units = CL ? ((tiles_m + 1) / 2) * tiles_n : tiles_m * tiles_n;
  const int total = units * p.batch;
  const int first = CL ? int(blockIdx.x) / 2 : int(blockIdx.x);
  const int step = PERSIST ? (CL ? int(gridDim.x) / 2 : int(gridDim.x)) : total;
  const int rank = CL ? int(cluster_rank()) : 0;
  const int wg = threadIdx.x / 128;
  const int ktiles = (p.k + BK - 1) / BK;

  if (threadIdx.x == 0) {
    for (int s = 0; s < WSTAGES; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), CL ? 16 : 8);  // one arrive per consumer warp (of both CTAs with clusters)
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if constexpr (CL) cluster_sync_all();

  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (threadIdx.x == 0) {
      int it = 0;  // stage counter across tiles
      for (int u = first; u < total; u += step) {
        const int z = u / units;
        const int za = p.batched_a ? z : 0, zb = p.batched_b ? z : 0;
        int tm, tn;
        unit_tile(u - z * units, tiles_m, tiles_n, CL, rank, &tm, &tn);
        const int m0 = tm * WBM, n0 = tn * WBN;
        for (int kt = 0; kt < ktiles; ++kt, ++it) {
          const int s = it % WSTAGES;
          if (it >= WSTAGES) {
            if constexpr (CL) mbar_wait_cluster(empty(s), ((it / WSTAGES) - 1) & 1);
            else mbar_wait(empty(s), ((it / WSTAGES) - 1) & 1);
          }
          if ((F & WG_NOLOAD) && it >= WSTAGES) {
            mbar_arrive(full(s));
            continue;
          }
          mbar_expect_tx(full(s), STAGE_BYTES);
          tma_load_3d(sA + s * A_STAGE, &tmA, kt * BK, m0, za, full(s));
          if constexpr (CL) {
            tma_load_3d_mc(sB + s * B_STAGE + rank * (B_STAGE / 2), &tmB, kt * BK, n0 + rank * (WBN / 2), zb,
                           full(s), uint16_t(3));
          } else {
            tma_load_3d(sB + s * B_STAGE, &tmB, kt * BK, n0, zb, full(s));
          }
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    const int cw = wg - 1;  // consumer warpgroup: rows cw*64 .. cw*64+63 of the tile
    const int lane = threadIdx.x & 31;
    auto release = [&](int s) {
      if (lane == 0) {
        if constexpr (CL) {
          mbar_arrive_cluster(empty(s), 0);
          mbar_arrive_cluster(empty(s), 1);
        } else {
          mbar_arrive(empty(s));
        }
      }
    };
    float d[128];
    int it = 0;
    for (int u = first; u < total; u += step) {
      const int z = u / units;
      int tm, tn;
      unit_tile(u - z * units, tiles_m, tiles_n, CL, rank, &tm, &tn);
      const int m0 = tm * WBM, n0 = tn * WBN;
#pragma unroll
      for (int i = 0; i < 128; ++i) d[i] = 0.f;
      for (int kt = 0; kt < ktiles; ++kt, ++it) {
        const int s = it % WSTAGES;
        mbar_wait(full(s), (it / WSTAGES) & 1);
        if constexpr (F & WG_NOMMA) {
          release(s);
          continue;
        }
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
        if constexpr (F & WG_WAIT0) {
          wgmma_wait<0>();
          fence_regs(d);
          release(s);
        } else {
          wgmma_wait<1>();
          fence_regs(d);
          if (kt > 0) release((it - 1) % WSTAGES);
        }
      }
      wgmma_wait<0>();
      fence_regs(d);
      if (!(F & (WG_WAIT0 | WG_NOMMA)) && ktiles > 0) release((it - 1) % WSTAGES);

      if constexpr (F & WG_NOEPI) {
        // No stores, but the accumulators stay live (otherwise the compiler may drop the wgmmas).
        float acc = 0.f;
#pragma unroll
        for (int i = 0; i < 128; ++i) acc += d[i];
        if (acc == 1234567.f) static_cast<float*>(p.e.c)[threadIdx.x] = acc;
      } else if constexpr (F & WG_EPI_SMEM) {
        // Both consumer warpgroups are done with the stage buffers (the producer too: every stage
        // it loaded was consumed); each stages its 64 rows there and writes them out in rows.
        asm volatile("bar.sync 1, 256;\n" ::: "memory");
        unsigned char* stage = smem_raw + (base - raw);
        const int wtid = threadIdx.x - 128 * wg;
        if (p.e.c_dtype == 0)
          epilogue_smem<float>(d, stage + cw * 64 * 256 * 4, p.e, z, m0 + cw * 64, n0, p.m, p.n, wtid, cw);
        else if (p.e.c_dtype == 1)
          epilogue_smem<__nv_bfloat16>(d, stage + cw * 64 * 256 * 2, p.e, z, m0 + cw * 64, n0, p.m, p.n, wtid, cw);
        else
          epilogue_smem<__half>(d, stage + cw * 64 * 256 * 2, p.e, z, m0 + cw * 64, n0, p.m, p.n, wtid, cw);
      } else if constexpr (F & WG_EPI_SIMPLE) {
        const int w = (threadIdx.x / 32) & 3, g = lane >> 2, t = lane & 3;
        const int row0 = m0 + cw * 64 + w * 16 + g;
        if (p.e.c_dtype == 1 && p.e.alpha == 1.f && p.e.beta == 0.f && !p.e.bias && p.e.act == 0 && n0 + WBN <= p.n &&
            (p.e.ldc & 1) == 0) {
          __nv_bfloat16* c0 = static_cast<__nv_bfloat16*>(p.e.c) + int64_t(z) * p.e.sc + int64_t(row0) * p.e.ldc + n0 + 2 * t;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            if (row0 + 8 * h < p.m) {
              __nv_bfloat16* c = c0 + int64_t(8 * h) * p.e.ldc;
#pragma unroll
              for (int j = 0; j < 32; ++j)
                *reinterpret_cast<__nv_bfloat162*>(c + 8 * j) = __floats2bfloat162_rn(d[4 * j + 2 * h], d[4 * j + 2 * h + 1]);
            }
          }
        } else {
#pragma unroll
          for (int j = 0; j < 32; ++j) {
            const int col = n0 + 8 * j + 2 * t;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const int row = row0 + 8 * h;
              if (row < p.m) epilogue_store2(p.e, z, row, col, p.n, d[4 * j + 2 * h], d[4 * j + 2 * h + 1]);
            }
          }
        }
      } else {
        // Accumulator layout (per warp of the warpgroup, 16 rows): d[4j + 2h + c] is row g + 8h,
        // column 8j + 2t + c, with g = lane / 4, t = lane % 4.
        const int w = (threadIdx.x / 32) & 3, g = lane >> 2, t = lane & 3;
        const int row0 = m0 + cw * 64 + w * 16 + g;
#pragma unroll
        for (int j = 0; j < 32; ++j) {
          const int col = n0 + 8 * j + 2 * t;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int row = row0 + 8 * h;
            if (row < p.m) epilogue_store2(p.e, z, row, col, p.n, d[4 * j + 2 * h], d[4 * j + 2 * h + 1]);
          }
        }
      }
    }
  }
  if constexpr (CL) {
    // No block may leave while its peer can still arrive on its barriers.
    __syncwarp();
    cluster_sync_all();
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
  constexpr bool CL = F & WG_CLUSTER, PERSIST = F & WG_PERSIST;
  CUtensorMap ta, tb;
  tsm_status st = encode<T>(&ta, p.a, p.k, p.m, p.lda, p.sa, p.batch, WBM);
  if (st != TSM_OK) return st;
  st = encode<T>(&tb, p.b, p.k, p.n, p.ldb, p.sb, p.batch, CL ? WBN / 2 : WBN);
  if (st != TSM_OK) return st;
  WgArgs a;
  a.m = p.m;
  a.n = p.n;
  a.k = p.k;
  a.batch = p.batch;
  a.batched_a = p.sa != 0 && p.batch > 1;
  a.batched_b = p.sb != 0 && p.batch > 1;
  a.e = make_epilogue(p);
  auto kernel = wgmma_gemm_kernel<T, F>;
  static std::atomic<uint64_t> smem_set{0};  // devices where the limit is raised
  if (tsm_status st = allow_dynamic_smem(kernel, SMEM_BYTES, smem_set)) return st;
  const int64_t tiles_m = ceil_div(p.m, WBM), tiles_n = ceil_div(p.n, WBN);
  const int64_t units = (CL ? (tiles_m + 1) / 2 : tiles_m) * tiles_n * p.batch;
  if (units * (CL ? 2 : 1) > INT32_MAX) return fail(TSM_ERR_INVALID_ARGUMENT, "cuda_gemm: too many tiles");
  int64_t blocks = units;  // blocks (clusters with CL) in the grid
  cudaLaunchConfig_t cfg{};
  cudaLaunchAttribute attr[1];
  cfg.blockDim = dim3(WTHREADS);
  cfg.dynamicSmemBytes = SMEM_BYTES;
  cfg.stream = s;
  if constexpr (CL) {
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = 2;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  if constexpr (PERSIST) {
    static std::atomic<int> resident{0};  // blocks (clusters) resident at once, first device asked
    int r = resident.load(std::memory_order_relaxed);
    if (r == 0) {
      const DeviceProps* dp = props("cuda_gemm");
      r = dp ? dp->sm_count : 1;
      if constexpr (CL) {
        cfg.gridDim = dim3(unsigned(2 * r));
        int clusters = 0;
        if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &cfg) != cudaSuccess || clusters < 1) {
          cudaGetLastError();
          clusters = r / 2;
        }
        r = clusters;
      }
      resident.store(r, std::memory_order_relaxed);
    }
    blocks = std::min<int64_t>(units, r);
  }
  cfg.gridDim = dim3(unsigned(blocks * (CL ? 2 : 1)));
  TSM_CUDA_TRY(cudaLaunchKernelEx(&cfg, kernel, ta, tb, a), "cuda_gemm (wgmma_gemm_kernel)");
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
