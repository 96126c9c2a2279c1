// AVX2 form of the scatter backward-data for 3-wide kernels (conv2d.cpp's
// backward_data_scatter_avx2): one dx row of 8 input channels in registers, each dy value of the
// row broadcast once and multiplied into the three dx pixels it reaches. Every FMA is a product
// of the convolution (no padding multiplied, no col buffer, no col2im). Compiled with -mavx2
// -mfma; called only when cpuid reports both.
#include <immintrin.h>

#include "conv_direct.h"

namespace tsm {
namespace {

// r[k] lane j -> r[j] lane k
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// acc[i] = the 8 channels of padded dx pixel i (dy pixel q reaches padded pixels q, q+1, q+2).
// OW + 2 accumulators and one broadcast: up to 14 of the 16 registers for OW 12; the weights are
// the FMAs' memory operands (three 32-byte loads per dy value, from one 96-byte line pair in L1).
template <int OW>
void scatter3_row8(int64_t nrows, const float* const* rows, int64_t ocg, int64_t ostride,
                   const float* b, float* dx, int64_t ldx, int first, int width) {
  constexpr int V = OW + 2;
  __m256 acc[V];
#pragma GCC unroll 16
  for (int i = 0; i < V; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t r = 0; r < nrows; ++r) {
    const float* src = rows[r];
    for (int64_t o = 0; o < ocg; ++o, src += ostride, b += 24) {
#pragma GCC unroll 16
      for (int q = 0; q < OW; ++q) {
        const __m256 v = _mm256_broadcast_ss(src + q);
        acc[q] = _mm256_fmadd_ps(v, _mm256_load_ps(b), acc[q]);
        acc[q + 1] = _mm256_fmadd_ps(v, _mm256_load_ps(b + 8), acc[q + 1]);
        acc[q + 2] = _mm256_fmadd_ps(v, _mm256_load_ps(b + 16), acc[q + 2]);
      }
    }
  }
  // Pixels [first, first + width) of the padded row are the dx row: 8 at a time, transposed into
  // 8 channel rows of 8 pixels (masked to the row's end).
  alignas(32) float t[V + 8][8];
#pragma GCC unroll 16
  for (int i = 0; i < V; ++i) _mm256_store_ps(t[i], acc[i]);
  for (int i = V; i < V + 8; ++i) _mm256_store_ps(t[i], _mm256_setzero_ps());
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int p0 = 0; p0 < width; p0 += 8) {
    const int n = width - p0 < 8 ? width - p0 : 8;
    __m256 r[8];
    for (int k = 0; k < 8; ++k) r[k] = _mm256_load_ps(t[first + p0 + k]);  // past the row: not stored
    transpose8(r);
    if (n == 8) {
      for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dx + j * ldx + p0, r[j]);
    } else {
      const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
      for (int j = 0; j < 8; ++j) _mm256_maskstore_ps(dx + j * ldx + p0, m, r[j]);
    }
  }
}

template <int... OWs>
bool scatter3_dispatch(int ow, int64_t nrows, const float* const* rows, int64_t ocg, int64_t ostride,
                       const float* b, float* dx, int64_t ldx, int first, int width) {
  bool done = false;
  ((ow == OWs ? (scatter3_row8<OWs>(nrows, rows, ocg, ostride, b, dx, ldx, first, width), done = true)
              : false),
   ...);
  return done;
}

}  // namespace

bool conv_scatter3_row_avx2(int ow, int64_t nrows, const float* const* rows, int64_t ocg, int64_t ostride,
                            const float* b, float* dx, int64_t ldx, int first, int width) {
  return scatter3_dispatch<1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12>(ow, nrows, rows, ocg, ostride, b, dx,
                                                                   ldx, first, width);
}

}  // namespace tsm
