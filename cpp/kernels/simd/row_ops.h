// Reductions over one contiguous row on SIMD lanes, for the row kernels built once per ISA
// (cross_entropy.cpp, softmax.cpp): fixed arrays of lanes the compiler keeps in vector registers
// (GCC vectorizes a float sum or max written as one running scalar only under -ffast-math, which
// would let it reorder everything else too). The including translation unit needs
// `#pragma GCC optimize("no-trapping-math")` for exp_approx's selects.
#pragma once
#include <algorithm>
#include <cstdint>

#include "exp_approx.h"

namespace tsm {
// Internal linkage: each including translation unit (and each ISA build of a function that
// inlines these) gets its own copy.
namespace {

constexpr int kLanes = 16;

// max_j x[j], over kLanes running maxima (x > m ? x : m, as std::max(m, x) reads it: a NaN after
// x[0] does not become the maximum; it makes the row's sum, and so its outputs, NaN anyway).
inline __attribute__((always_inline)) float row_max(const float* __restrict x, int64_t c) {
  float acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = x[0];
  int64_t j = 0;
  for (; j + kLanes <= c; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
  float m = x[0];
  for (int l = 0; l < kLanes; ++l) m = acc[l] > m ? acc[l] : m;
  for (; j < c; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// sum_j exp(x[j] - m): float lanes over blocks of 256 elements, the blocks summed in double; with
// Store, each exp is also written to y[j] (y may be x).
template <bool Store>
inline __attribute__((always_inline)) double row_exp_sum(float* y, const float* x, int64_t c, float m) {
  double sum = 0.0;
  int64_t j = 0;
  while (c - j >= kLanes) {
    const int64_t end = j + std::min<int64_t>((c - j) / kLanes * kLanes, 256);
    float acc[kLanes] = {};
    for (; j < end; j += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const float e = exp_approx(x[j + l] - m);
        if (Store) y[j + l] = e;
        acc[l] += e;
      }
    for (int l = 0; l < kLanes; ++l) sum += acc[l];
  }
  for (; j < c; ++j) {
    const float e = exp_approx(x[j] - m);
    if (Store) y[j] = e;
    sum += e;
  }
  return sum;
}
inline __attribute__((always_inline)) double row_sum_exp(const float* x, int64_t c, float m) {
  return row_exp_sum<false>(nullptr, x, c, m);
}
inline __attribute__((always_inline)) double row_exp_store(float* y, const float* x, int64_t c, float m) {
  return row_exp_sum<true>(y, x, c, m);
}

// sum_j x[j] in double lanes (only for label smoothing).
inline __attribute__((always_inline)) double row_sum(const float* __restrict x, int64_t c) {
  double acc[8] = {};
  int64_t j = 0;
  for (; j + 8 <= c; j += 8)
    for (int l = 0; l < 8; ++l) acc[l] += double(x[j + l]);
  double sum = 0.0;
  for (int l = 0; l < 8; ++l) sum += acc[l];
  for (; j < c; ++j) sum += double(x[j]);
  return sum;
}

// sum_j a[j] * b[j] in double lanes.
inline __attribute__((always_inline)) double row_dot(const float* __restrict a, const float* __restrict b, int64_t c) {
  double acc[8] = {};
  int64_t j = 0;
  for (; j + 8 <= c; j += 8)
    for (int l = 0; l < 8; ++l) acc[l] += double(a[j + l]) * double(b[j + l]);
  double sum = 0.0;
  for (int l = 0; l < 8; ++l) sum += acc[l];
  for (; j < c; ++j) sum += double(a[j]) * double(b[j]);
  return sum;
}

}  // namespace
}  // namespace tsm
