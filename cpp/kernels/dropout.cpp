// Inverted dropout, float32, contiguous:
//
//   forward   mask (n) = (u_i >= p) ? 1 / (1 - p) : 0,  y (n) = x (n) * mask
//             u_i = the Philox [0, 1) uniform of element i for (seed, offset), as tsm_rng_uniform
//   backward  dx = dy * mask: an elementwise multiply (tsm_binary_forward / tsm_scalar_forward)
//
// The mask depends only on (seed, offset, i), never on the thread count. p == 1 drops everything.
#include <algorithm>
#include <cmath>

#include "../runtime/runtime.h"

namespace tsm {

// Defined in rng.cpp: u[0, end - begin) = the [0, 1) uniforms of elements [begin, end).
void philox_uniform01(float* u, int64_t begin, int64_t end, uint64_t seed, uint64_t offset);

namespace {
constexpr int64_t kGrain = 32768;
}  // namespace

}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_dropout_forward(float* y, float* mask, const float* x, double p, uint64_t seed,
                                       uint64_t offset, int64_t n) {
  if (n < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "dropout_forward: n must be >= 0, got %lld", (long long)n);
  if (!(p >= 0.0 && p <= 1.0))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "dropout_forward: p must be in [0, 1], got %g", p);
  if (n == 0) return TSM_OK;
  if (!y || !mask || !x)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "dropout_forward: %s is NULL",
                     !y ? "y" : !mask ? "mask" : "x");
  if (p == 1.0) {
    std::fill(mask, mask + n, 0.0f);
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * 0.0f;  // keeps NaN/Inf of x visible, like x * mask
    return TSM_OK;
  }
  // p stays double: 1 / (1 - p) is then the float nearest the exact scale (10 for p = 0.9), and
  // u >= p compares the exact uniform (a multiple of 2^-24) with the exact p.
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  float pf = static_cast<float>(p);
  if (double(pf) < p) pf = std::nextafter(pf, 2.0f);
  auto run = [&](int64_t b, int64_t e) {
    // The uniforms go into the mask first, then become the mask in place.
    float* __restrict m = mask + b;
    float* __restrict yb = y + b;
    const float* xb = x + b;
    tsm::philox_uniform01(m, b, e, seed, offset);
    // Branch-free (the keep/drop pattern is random, a branch would mispredict half the time).
    // u is a multiple of 2^-24, so u >= p  <=>  u >= pf with pf = p rounded up to a float.
    for (int64_t i = 0; i < e - b; ++i) {
      const float keep = m[i] >= pf ? 1.0f : 0.0f;
      m[i] = keep * scale;
      yb[i] = xb[i] * m[i];
    }
  };
  if (n <= tsm::kGrain) {
    run(0, n);
  } else {
    const int64_t chunks = (n + tsm::kGrain - 1) / tsm::kGrain;
    tsm::parallel_for(chunks, [&](int64_t c) { run(c * tsm::kGrain, std::min(n, (c + 1) * tsm::kGrain)); });
  }
  return TSM_OK;
}

}  // extern "C"
