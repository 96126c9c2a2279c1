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
// polynomial; within about 1 ulp of exp). 2^n is applied as two normal powers of two, 2^h * 2^(n-h),
// so that results in the subnormal range round once, as exp's, and exp(89) and above overflow to
// inf. x is clamped to [-104, 89] first: exp(-104) already rounds to 0, so exp(-inf) is exactly 0.
// NaN gives NaN.
inline __attribute__((always_inline)) float exp_approx(float x) {
  x = x < -104.0f ? -104.0f : x;
  x = x > 89.0f ? 89.0f : x;
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
  // n in [-150, 129]; a NaN input leaves n NaN, so convert 0 instead (p is NaN anyway). The halves
  // h, n - h lie in [-75, 65]: both powers are normal floats.
  const int32_t ni = static_cast<int32_t>(n == n ? n : 0.0f);
  const int32_t h = ni / 2;
  const int32_t b1 = static_cast<int32_t>(static_cast<uint32_t>(h + 127) << 23);
  const int32_t b2 = static_cast<int32_t>(static_cast<uint32_t>(ni - h + 127) << 23);
  float s1, s2;
  std::memcpy(&s1, &b1, sizeof s1);
  std::memcpy(&s2, &b2, sizeof s2);
  return (p * s1) * s2;
}

}  // namespace
}  // namespace tsm
