// AVX2 form of the scatter backward-data for 3-wide kernels (conv2d.cpp's
// backward_data_scatter_avx2): one dx row of 8 input channels in registers, each dy value of the
// row broadcast once and multiplied into the three dx pixels it reaches. Every FMA is a product
// of the convolution (no padding multiplied, no col buffer, no col2im). Compiled with -mavx2
// -mfma; called only when cpuid reports both.
#include <immintrin.h>

#include <algorithm>

#include "avx2_transpose.h"
#include "conv_direct.h"

namespace tsm {
namespace {

// Padded dx pixels [a, a + S) of one row of 8 channels, all of them stored (padded pixel p is dx
// pixel p - first), in S accumulators: dy pixel q reaches padded pixels q, q+1 and q+2, and the dy
// pixels that reach the segment are q = a + rel for rel in [-L, S - R), L = min(a, 2) and
// R = max(0, a + S - OW) (the row's ends). The accumulators and the broadcast take S + 1 of the 16
// registers; the three weights of an output channel are a 96-byte piece of the panel in L1. For
// S >= 12 the third is read by each FMA: held in a register, GCC spilled an accumulator instead,
// whose store and reload chained every output channel's FMAs (37% of a segment's samples; ResNet
// backward-data 5.7% slower).
template <int S, int L, int R>
void scatter3_seg(int64_t nrows, const float* const* rows, int64_t a, int64_t ocg, int64_t ostride,
                  const float* b, const float* bias, float* dx, int64_t ldx, int first) {
  __m256 acc[S];
#pragma GCC unroll 16
  for (int i = 0; i < S; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t r = 0; r < nrows; ++r) {
    const float* src = rows[r] + a;
    for (int64_t o = 0; o < ocg; ++o, src += ostride, b += 24) {
#pragma GCC unroll 16
      for (int q = -L; q < S - R; ++q) {
        const __m256 v = _mm256_broadcast_ss(src + q);
        const float* w2 = b + 16;
        if (S >= 12) asm volatile("" : "+r"(w2));  // the third weight read by each FMA, not held
        if (q >= 0) acc[q] = _mm256_fmadd_ps(v, _mm256_load_ps(b), acc[q]);
        if (q + 1 >= 0 && q + 1 < S) acc[q + 1] = _mm256_fmadd_ps(v, _mm256_load_ps(b + 8), acc[q + 1]);
        if (q + 2 >= 0 && q + 2 < S) acc[q + 2] = _mm256_fmadd_ps(v, _mm256_load_ps(w2), acc[q + 2]);
      }
    }
  }
  // The segment's pixels, 8 at a time, transposed into 8 channel rows of 8 pixels (masked at the
  // segment's end).
  alignas(32) float t[S + 8][8];
#pragma GCC unroll 16
  for (int i = 0; i < S; ++i) _mm256_store_ps(t[i], acc[i]);
  for (int i = S; i < S + 8; ++i) _mm256_store_ps(t[i], _mm256_setzero_ps());
  float* d = dx + (a - first);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int i0 = 0; i0 < S; i0 += 8, d += 8) {
    const int n = std::min(8, S - i0);
    __m256 r[8];
    for (int k = 0; k < 8; ++k) r[k] = _mm256_load_ps(t[i0 + k]);  // past the segment: not stored
    transpose8x8(r);
    if (bias)
      for (int j = 0; j < 8; ++j) r[j] = _mm256_add_ps(r[j], _mm256_set1_ps(bias[j]));
    if (n == 8) {
      for (int j = 0; j < 8; ++j) _mm256_storeu_ps(d + j * ldx, r[j]);
    } else {
      const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
      for (int j = 0; j < 8; ++j) _mm256_maskstore_ps(d + j * ldx, m, r[j]);
    }
  }
}

template <int L, int R, int... Ss>
void seg_dispatch(int s, int64_t nrows, const float* const* rows, int64_t a, int64_t ocg, int64_t ostride,
                  const float* b, const float* bias, float* dx, int64_t ldx, int first) {
  (void)((s == Ss ? (scatter3_seg<Ss, L, R>(nrows, rows, a, ocg, ostride, b, bias, dx, ldx, first), true)
                  : false) ||
         ...);
}

// One segment [a, a + s) of the padded row, s in 1..14.
void segment(int ow, int a, int s, int64_t nrows, const float* const* rows, int64_t ocg, int64_t ostride,
             const float* b, const float* bias, float* dx, int64_t ldx, int first) {
  const int l = std::min(a, 2), r = std::max(0, a + s - ow);
#define TSM_SEG(L, R)                                                                                            \
  case L * 3 + R:                                                                                              \
    seg_dispatch<L, R, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14>(s, nrows, rows, a, ocg, ostride, b, bias, \
                                                                      dx, ldx, first);                         \
    break;
  switch (l * 3 + r) {
    TSM_SEG(0, 0) TSM_SEG(0, 1) TSM_SEG(0, 2)
    TSM_SEG(1, 0) TSM_SEG(1, 1) TSM_SEG(1, 2)
    TSM_SEG(2, 0) TSM_SEG(2, 1) TSM_SEG(2, 2)
    default: break;
  }
#undef TSM_SEG
}

}  // namespace

// Only the padded pixels [first, first + width) are computed (the others would be thrown away):
// in one piece up to 14 of them, else in ceil(width / 12) segments of 6..12, as even as they come.
void conv_scatter3_row_avx2(int ow, int64_t nrows, const float* const* rows, int64_t ocg, int64_t ostride,
                            const float* b, const float* bias, float* dx, int64_t ldx, int first, int width) {
  if (width <= 14) {
    segment(ow, first, width, nrows, rows, ocg, ostride, b, bias, dx, ldx, first);
    return;
  }
  const int nseg = (width + 11) / 12, base = width / nseg, extra = width % nseg;
  for (int k = 0, a = first; k < nseg; ++k) {
    const int s = base + (k < extra ? 1 : 0);
    segment(ow, a, s, nrows, rows, ocg, ostride, b, bias, dx, ldx, first);
    a += s;
  }
}

}  // namespace tsm
