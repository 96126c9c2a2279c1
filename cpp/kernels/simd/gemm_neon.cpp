// AArch64 NEON GEMM micro-kernel: 8 x 12 tile of C in 24 q-register accumulators. Per step of k:
// three loads of B (12 floats), two loads of A (8 floats), 24 lane-indexed FMAs (vfmaq_laneq_f32),
// so 29 of the 32 vector registers are live. Advanced SIMD is mandatory on AArch64, so this needs
// no extra compile flags and no run-time check beyond the architecture.
#include "gemm_ukernel.h"

#if defined(__aarch64__)
#include <arm_neon.h>

namespace tsm {
namespace {

constexpr int MR = 8, NR = 12;

inline void store_row(float* c, float32x4_t r0, float32x4_t r1, float32x4_t r2, float alpha, float beta,
                      bool read_c) {
  r0 = vmulq_n_f32(r0, alpha);
  r1 = vmulq_n_f32(r1, alpha);
  r2 = vmulq_n_f32(r2, alpha);
  if (read_c) {
    r0 = vfmaq_n_f32(r0, vld1q_f32(c), beta);
    r1 = vfmaq_n_f32(r1, vld1q_f32(c + 4), beta);
    r2 = vfmaq_n_f32(r2, vld1q_f32(c + 8), beta);
  }
  vst1q_f32(c, r0);
  vst1q_f32(c + 4, r1);
  vst1q_f32(c + 8, r2);
}

void ukernel_neon_8x12(int64_t k, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                       float beta) {
  // c<row><col-vector>
  float32x4_t c00 = vdupq_n_f32(0), c01 = vdupq_n_f32(0), c02 = vdupq_n_f32(0);
  float32x4_t c10 = vdupq_n_f32(0), c11 = vdupq_n_f32(0), c12 = vdupq_n_f32(0);
  float32x4_t c20 = vdupq_n_f32(0), c21 = vdupq_n_f32(0), c22 = vdupq_n_f32(0);
  float32x4_t c30 = vdupq_n_f32(0), c31 = vdupq_n_f32(0), c32 = vdupq_n_f32(0);
  float32x4_t c40 = vdupq_n_f32(0), c41 = vdupq_n_f32(0), c42 = vdupq_n_f32(0);
  float32x4_t c50 = vdupq_n_f32(0), c51 = vdupq_n_f32(0), c52 = vdupq_n_f32(0);
  float32x4_t c60 = vdupq_n_f32(0), c61 = vdupq_n_f32(0), c62 = vdupq_n_f32(0);
  float32x4_t c70 = vdupq_n_f32(0), c71 = vdupq_n_f32(0), c72 = vdupq_n_f32(0);

#define TSM_ROW(R, AV, L)                      \
  c##R##0 = vfmaq_laneq_f32(c##R##0, b0, AV, L); \
  c##R##1 = vfmaq_laneq_f32(c##R##1, b1, AV, L); \
  c##R##2 = vfmaq_laneq_f32(c##R##2, b2, AV, L);
#define TSM_STEP(P)                                        \
  {                                                        \
    const float32x4_t b0 = vld1q_f32(b + (P) * NR);        \
    const float32x4_t b1 = vld1q_f32(b + (P) * NR + 4);    \
    const float32x4_t b2 = vld1q_f32(b + (P) * NR + 8);    \
    const float32x4_t a0 = vld1q_f32(a + (P) * MR);        \
    const float32x4_t a1 = vld1q_f32(a + (P) * MR + 4);    \
    TSM_ROW(0, a0, 0) TSM_ROW(1, a0, 1) TSM_ROW(2, a0, 2) TSM_ROW(3, a0, 3) \
    TSM_ROW(4, a1, 0) TSM_ROW(5, a1, 1) TSM_ROW(6, a1, 2) TSM_ROW(7, a1, 3) \
  }

  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    __builtin_prefetch(b + 8 * NR);
    __builtin_prefetch(a + 8 * MR);
    TSM_STEP(0) TSM_STEP(1) TSM_STEP(2) TSM_STEP(3)
    a += 4 * MR;
    b += 4 * NR;
  }
  for (; p < k; ++p) {
    TSM_STEP(0)
    a += MR;
    b += NR;
  }
#undef TSM_STEP
#undef TSM_ROW

  const bool read_c = beta != 0.0f;
  store_row(c + 0 * ldc, c00, c01, c02, alpha, beta, read_c);
  store_row(c + 1 * ldc, c10, c11, c12, alpha, beta, read_c);
  store_row(c + 2 * ldc, c20, c21, c22, alpha, beta, read_c);
  store_row(c + 3 * ldc, c30, c31, c32, alpha, beta, read_c);
  store_row(c + 4 * ldc, c40, c41, c42, alpha, beta, read_c);
  store_row(c + 5 * ldc, c50, c51, c52, alpha, beta, read_c);
  store_row(c + 6 * ldc, c60, c61, c62, alpha, beta, read_c);
  store_row(c + 7 * ldc, c70, c71, c72, alpha, beta, read_c);
}

}  // namespace

// Blocking for Neoverse-class cores (64 KiB L1D, 1 MiB L2): a B panel 256 x 12 (12 KiB) in L1, the
// A block 128 x 256 floats (128 KiB) in L2, the B block 256 x 3072 (3 MiB) in the shared L3/SLC.
const GemmUkernel* gemm_ukernel_neon() {
  static const GemmUkernel k{"neon 8x12", MR, NR, 128, 256, 3072, ukernel_neon_8x12};
  return &k;
}

}  // namespace tsm

#endif  // __aarch64__
