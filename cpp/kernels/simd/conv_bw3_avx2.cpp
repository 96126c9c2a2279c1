// AVX2 backward-weight for 3-wide kernels with stride 1 (conv2d.cpp's backward_weight_bw3_avx2):
// the KH x 3 taps' weight gradients of 8 output channels and one input channel in 9 registers,
// summed over an image's pixels. Each x value is broadcast once per tap row and multiplied with
// the dy vectors (8 channels of one pixel, from a channels-inner copy) of the three output pixels
// it reaches, which slide along the row in registers: 4 loads per 9 FMAs. Compiled with -mavx2
// -mfma; called only when cpuid reports both.
#include <immintrin.h>

#include <algorithm>

#include "avx2_transpose.h"
#include "conv_direct.h"

namespace tsm {
namespace {

// acc[r][kw] += sum over x pixels q of the row xr[r]: x[q] * d(q + pw - kw), where d(ow) =
// dyt[ow + 2] (8 floats; zero for ow outside the row, by dyt's two zero pixels each side).
// (A local copy of the accumulators: updated through the caller's array, GCC stored all nine to
// the stack at every pixel.)
template <int R>
inline void row_taps(__m256 (&io)[3][3], const float* const* xr, const float* dyt, int w, int pw) {
  __m256 acc[R][3];
#pragma GCC unroll 3
  for (int r = 0; r < R; ++r)
    for (int kw = 0; kw < 3; ++kw) acc[r][kw] = io[r][kw];
  const float* x[R];
#pragma GCC unroll 3
  for (int r = 0; r < R; ++r) x[r] = xr[r];
  const float* d = dyt + pw * 8;  // d + 8*i = dyt[pw + i]
  __m256 d2 = _mm256_load_ps(d), d1 = _mm256_load_ps(d + 8);  // kw 2 and 1 of x pixel 0
  for (int q = 0; q < w; ++q) {
    const __m256 d0 = _mm256_load_ps(d + (q + 2) * 8);  // kw 0
#pragma GCC unroll 3
    for (int r = 0; r < R; ++r) {
      const __m256 b = _mm256_broadcast_ss(x[r] + q);
      acc[r][0] = _mm256_fmadd_ps(d0, b, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(d1, b, acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(d2, b, acc[r][2]);
    }
    d2 = d1;
    d1 = d0;
  }
#pragma GCC unroll 3
  for (int r = 0; r < R; ++r)
    for (int kw = 0; kw < 3; ++kw) io[r][kw] = acc[r][kw];
}

}  // namespace

void conv_bw3_channel_avx2(const float* dyt, int64_t oh_n, int64_t dyt_row, const float* xc, int64_t h, int64_t w,
                           int64_t ph, int64_t dh, int kh_n, int pw, float* acc_io) {
  __m256 acc[3][3];
  for (int r = 0; r < 3; ++r)
    for (int kw = 0; kw < 3; ++kw) acc[r][kw] = r < kh_n ? _mm256_loadu_ps(acc_io + (r * 3 + kw) * 8) : _mm256_setzero_ps();
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    const float* drow = dyt + oh * dyt_row;
    const float* xr[3];
    int valid = 0;
    for (int r = 0; r < kh_n; ++r) {
      const int64_t ih = oh - ph + r * dh;
      xr[r] = ih >= 0 && ih < h ? xc + ih * w : nullptr;
      valid += xr[r] != nullptr;
    }
    if (valid == kh_n && kh_n == 3) {
      row_taps<3>(acc, xr, drow, static_cast<int>(w), pw);
    } else {
      // A row near the top or bottom (or a kernel of fewer rows): the tap rows one at a time, into
      // their own accumulators.
      for (int r = 0; r < kh_n; ++r) {
        if (!xr[r]) continue;
        __m256 one[3][3];
        for (int kw = 0; kw < 3; ++kw) one[0][kw] = acc[r][kw];
        row_taps<1>(one, &xr[r], drow, static_cast<int>(w), pw);
        for (int kw = 0; kw < 3; ++kw) acc[r][kw] = one[0][kw];
      }
    }
  }
  for (int r = 0; r < kh_n; ++r)
    for (int kw = 0; kw < 3; ++kw) _mm256_storeu_ps(acc_io + (r * 3 + kw) * 8, acc[r][kw]);
}

void conv_dy_rows8_avx2(float* dyt, int64_t dyt_row, const float* dy, int64_t ostride, int64_t oh_n, int64_t ow) {
  const __m256 z = _mm256_setzero_ps();
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    float* d = dyt + oh * dyt_row;
    const float* s = dy + oh * ow;
    _mm256_store_ps(d, z);
    _mm256_store_ps(d + 8, z);
    _mm256_store_ps(d + (ow + 2) * 8, z);
    _mm256_store_ps(d + (ow + 3) * 8, z);
    int64_t q = 0;
    for (; q + 8 <= ow; q += 8) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(s + j * ostride + q);
      transpose8x8(r);  // 8 channels x 8 pixels -> 8 pixels x 8 channels
      float* o = d + (q + 2) * 8;
      for (int j = 0; j < 8; ++j) _mm256_store_ps(o + j * 8, r[j]);
    }
    for (; q < ow; ++q)
      for (int j = 0; j < 8; ++j) d[(q + 2) * 8 + j] = s[j * ostride + q];
  }
}

}  // namespace tsm
