// exp(x) in float without a library call or a branch, so that loops over it vectorize (the LSTM
// cell, cross-entropy). A translation unit that wants its loops vectorized needs
// `#pragma GCC optimize("no-trapping-math")` ahead of its functions: only then does GCC turn the
// clamps below into selects.
#pragma once
#include <cstdint>
#include <cstring>

namespace tsm {
// Internal linkage: each including translation unit (and each ISA build of a function that
// inlines these) gets its own copy.
namespace {

// 2^n * p(r) with n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2] (the Cephes expf
// polynomial; within about 1 ulp of exp). x is clamped to [-87, 88] first, and below -87 the result
// is 0 (true exp is then subnormal or 0: exp(-inf) must be exactly 0). NaN gives NaN.
inline __attribute__((always_inline)) float exp_approx(float x) {
  const bool under = x < -87.0f;
  x = under ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  float n = x * 1.44269504088896341f + kShift;
  n -= kShift;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n as float bits; a NaN input leaves n NaN, so convert 0 instead (p is NaN anyway).
  const int32_t ni = static_cast<int32_t>(n == n ? n : 0.0f);
  const int32_t bits = static_cast<int32_t>(static_cast<uint32_t>(ni + 127) << 23);
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return under ? 0.0f : p * scale;
}

}  // namespace
}  // namespace tsm
