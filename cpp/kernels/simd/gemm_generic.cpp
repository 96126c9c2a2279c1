// Portable GEMM micro-kernel (6 x 16), plain C++ the compiler vectorises for the baseline ISA.
#include "gemm_ukernel.h"
#include "../../runtime/runtime.h"

namespace tsm {

// gemm_neon.cpp (compiled into AArch64 builds only).
const GemmUkernel* gemm_ukernel_neon();

namespace {

constexpr int MR = 6, NR = 16;

void ukernel_generic(int64_t k, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                     float beta) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < k; ++p) {
    for (int i = 0; i < MR; ++i) {
      const float ai = a[p * MR + i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[p * NR + j];
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) {
      for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
  }
}

}  // namespace

const GemmUkernel& gemm_ukernel_generic() {
  static const GemmUkernel k{"generic 6x16", MR, NR, 96, 256, 2048, ukernel_generic};
  return k;
}

const GemmUkernel& gemm_ukernel_for(tsm_simd simd) {
#if defined(__aarch64__)
  if (simd == TSM_SIMD_NEON) {
    if (const GemmUkernel* k = gemm_ukernel_neon()) return *k;
  }
#endif
  if (simd == TSM_SIMD_AVX512) {
    if (const GemmUkernel* k = gemm_ukernel_avx512()) return *k;
  }
  if (simd == TSM_SIMD_AVX512 || simd == TSM_SIMD_AVX2) {
    if (const GemmUkernel* k = gemm_ukernel_avx2()) return *k;
  }
  return gemm_ukernel_generic();
}

const GemmUkernel& gemm_ukernel_for_rows(tsm_simd simd, int64_t rows) {
  const GemmUkernel& k = gemm_ukernel_for(simd);
  if (k.mr == 12 && simd == TSM_SIMD_AVX512) {
    const GemmUkernel* k8 = gemm_ukernel_avx512_mr8();
    if (k8 && (rows + 7) / 8 * 8 < (rows + 11) / 12 * 12) return *k8;
  }
  return k;
}

#if !(defined(__x86_64__) || defined(_M_X64))
const GemmUkernel* gemm_ukernel_avx2() { return nullptr; }
const GemmUkernel* gemm_ukernel_avx2_mr4() { return nullptr; }
const GemmUkernel* gemm_ukernel_avx512() { return nullptr; }
const GemmUkernel* gemm_ukernel_avx512_mr8() { return nullptr; }
#endif

}  // namespace tsm
