// AVX-512F GEMM micro-kernels: an MR x 32 tile of C in 2*MR zmm accumulators, MR = 12 or 8. Per
// step of k: two 16-float loads of B, MR broadcasts of A, 2*MR FMAs. MR = 12 (24 accumulators + 2 B
// vectors + 1 broadcast = 27 of the 32 registers) has the fewest loads per FMA and is the default;
// MR = 8 (16 accumulators, still enough independent chains to cover the FMA latency on both pipes)
// serves row counts that are multiples of 8 but not of 12, such as a batch or a channel count of
// 64, where 12-row panels would compute 72 rows and throw 8 away. Compiled with -mavx512f; called
// only when cpuid reports AVX-512F.
#include <immintrin.h>

#include "gemm_ukernel.h"

namespace tsm {
namespace {

constexpr int NR = 32;

// PackB: B is read in place (row p at b + p*ldb) and each row is stored to bpack as it goes. The
// prefetch runs PF_ROWS rows ahead (rows of a large B come from L3 or memory, one row per 8-12
// cycles of FMAs). A packed panel is prefetched 16 rows (2 KiB) ahead: its first row tile reads it
// from L3 in the large products (a 128 KiB panel of a 6-8 MiB block); against 8 rows, 2048^3 +1.9%
// (13/15 rounds, 2 threads), the other sizes and the layer shapes within 0.7%.
constexpr int PF_ROWS = 16;

template <int MR, bool PackB>
void ukernel_avx512_impl(int64_t k, const float* a, const float* b, int64_t ldb, float* bpack,
                         float* c, int64_t ldc, float alpha, float beta) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int64_t p = 0; p < k; ++p) {
    __m512 b0, b1;
    if (PackB) {
      b0 = _mm512_loadu_ps(b);
      b1 = _mm512_loadu_ps(b + 16);
      _mm512_store_ps(bpack, b0);
      _mm512_store_ps(bpack + 16, b1);
      bpack += NR;
      _mm_prefetch(reinterpret_cast<const char*>(b + PF_ROWS * ldb), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b + PF_ROWS * ldb + NR - 1), _MM_HINT_T0);
    } else {
      b0 = _mm512_load_ps(b);
      b1 = _mm512_load_ps(b + 16);
      _mm_prefetch(reinterpret_cast<const char*>(b + 16 * NR), _MM_HINT_T0);
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += MR;
    b += PackB ? ldb : NR;
  }
  const __m512 valpha = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m512 lo = _mm512_mul_ps(acc[i][0], valpha), hi = _mm512_mul_ps(acc[i][1], valpha);
    if (beta != 0.0f) {
      lo = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(ci), lo);
      hi = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(ci + 16), hi);
    }
    _mm512_storeu_ps(ci, lo);
    _mm512_storeu_ps(ci + 16, hi);
  }
}

template <int MR>
void ukernel_avx512(int64_t k, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                    float beta) {
  ukernel_avx512_impl<MR, false>(k, a, b, NR, nullptr, c, ldc, alpha, beta);
}

template <int MR>
void ukernel_avx512_pack_b(int64_t k, const float* a, const float* b, int64_t ldb, float* bpack,
                           float* c, int64_t ldc, float alpha, float beta) {
  ukernel_avx512_impl<MR, true>(k, a, b, ldb, bpack, c, ldc, alpha, beta);
}

}  // namespace

// Blocking of the 12x32 kernel: A block 144 x 1024 (576 KiB) in L2 (1 MiB); a B micro-panel
// 1024 x 32 (128 KiB) is larger than L1 (48 KiB) and streams from L2. A long KC means fewer passes
// over C, and C is what costs here: a pass after the first reads C back (beta = 1), which measured
// 4-8% slower than a first pass (beta = 0) once C is larger than ~4 MiB, whether or not the C tile
// is prefetched (at the kernel's start, one call ahead, into L1 or L2: no change).
// A/B of two builds (tools/ab-addons.js, 5-7 rounds, 2 threads unless said):
//   KC 256 -> 512 (fourth session): 512^3 +7%, 1536^3 +11%, 2048^3 +15%, TN 256x256x4096 +50%.
//   KC 512 -> 1024 (sixth session): 1024^3 +2-3.5%, 2048^3 +3.5-5.5%, 1024x1024x2048 +2-3%,
//   1 thread 1024^3 +5% (one pass instead of two), the layer shapes of bench/gemm.ts within +-1.5%;
//   KC 768 and 1536 were 1-4% slower than 1024 at 1024^3 and 2048^3, MC 72/96/120 within +-2% of 144.
// The 8x32 kernel keeps KC = 512: at 1024 its TN 256x256x4096 (the shape it exists for) was 4.6%
// slower.
const GemmUkernel* gemm_ukernel_avx512() {
  static const GemmUkernel k{"avx512 12x32", 12, NR, 144, 1024, 4064, ukernel_avx512<12>,
                                ukernel_avx512_pack_b<12>};
  return &k;
}

const GemmUkernel* gemm_ukernel_avx512_mr8() {
  static const GemmUkernel k{"avx512 8x32", 8, NR, 144, 512, 4064, ukernel_avx512<8>,
                                ukernel_avx512_pack_b<8>};
  return &k;
}

}  // namespace tsm
