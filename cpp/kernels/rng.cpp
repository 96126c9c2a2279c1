// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011).
//
//   key     (k0, k1)         = (seed & 0xffffffff, seed >> 32)
//   counter (c0, c1, c2, c3) = (block & 0xffffffff, block >> 32, 0, 0), block = offset + i / 4
//   element i takes 32-bit lane i % 4 of philox(counter, key)
//
//   tsm_rng_uniform  out (n) uniform in [low, high)
//   tsm_rng_normal   out (n) normal(mean, std), Box-Muller on lane pairs (0, 1) and (2, 3)
//
// Every element is a pure function of (seed, offset, i), so the result does not depend on how the
// work is split among threads, and a caller can regenerate any element (dropout's backward could).
#include <algorithm>
#include <cmath>

#include "../runtime/runtime.h"

namespace tsm {
namespace {

constexpr int64_t kGrain = 32768;  // a multiple of 4, so chunks start on block boundaries
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments

struct U4 {
  uint32_t v[4];
};

inline U4 philox(uint64_t block, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(block), c1 = static_cast<uint32_t>(block >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    const uint64_t p0 = uint64_t(kM0) * c0;
    const uint64_t p1 = uint64_t(kM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  return U4{{c0, c1, c2, c3}};
}

constexpr float kTwoPow24Inv = 1.0f / 16777216.0f;
inline float to_unit_closed_open(uint32_t b) { return float(b >> 8) * kTwoPow24Inv; }       // [0, 1)
inline float to_unit_open_closed(uint32_t b) { return float((b >> 8) + 1) * kTwoPow24Inv; } // (0, 1]

template <class F>
void for_chunks(int64_t n, const F& f) {
  if (n <= 0) return;
  if (n <= kGrain) {
    f(int64_t(0), n);
    return;
  }
  const int64_t chunks = (n + kGrain - 1) / kGrain;
  parallel_for(chunks, [&](int64_t c) { f(c * kGrain, std::min(n, (c + 1) * kGrain)); });
}

// Calls put(i, lanes) for every block covering elements [begin, end); put writes only i in range.
template <class Put>
void blocks(int64_t begin, int64_t end, uint64_t seed, uint64_t offset, const Put& put) {
  for (int64_t blk = begin / 4; blk * 4 < end; ++blk) put(blk * 4, philox(offset + uint64_t(blk), seed));
}

}  // namespace

// Internal (also used by dropout.cpp): u[0, end - begin) = the [0, 1) uniforms of elements
// [begin, end) for (seed, offset).
void philox_uniform01(float* u, int64_t begin, int64_t end, uint64_t seed, uint64_t offset) {
  blocks(begin, end, seed, offset, [&](int64_t i0, const U4& r) {
    for (int l = 0; l < 4; ++l) {
      const int64_t i = i0 + l;
      if (i >= begin && i < end) u[i - begin] = to_unit_closed_open(r.v[l]);
    }
  });
}

}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_rng_uniform(float* out, uint64_t seed, uint64_t offset, float low, float high,
                                   int64_t n) {
  if (n < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "rng_uniform: n must be >= 0, got %lld", (long long)n);
  if (!std::isfinite(low) || !std::isfinite(high) || !(low <= high))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT,
                     "rng_uniform: need finite low <= high, got low = %g, high = %g", double(low),
                     double(high));
  if (n == 0) return TSM_OK;
  if (!out) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "rng_uniform: out is NULL");
  const double lo = low, width = double(high) - double(low);
  const float below_high = high > low ? std::nextafter(high, low) : low;
  tsm::for_chunks(n, [&](int64_t b, int64_t e) {
    tsm::philox_uniform01(out + b, b, e, seed, offset);
    for (int64_t i = b; i < e; ++i) {
      const float v = static_cast<float>(lo + width * out[i]);
      out[i] = v < high ? v : below_high;  // rounding must not reach high
    }
  });
  return TSM_OK;
}

TSM_API tsm_status tsm_rng_normal(float* out, uint64_t seed, uint64_t offset, float mean, float std,
                                  int64_t n) {
  if (n < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "rng_normal: n must be >= 0, got %lld", (long long)n);
  if (!std::isfinite(mean) || !std::isfinite(std) || std < 0.0f)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT,
                     "rng_normal: need finite mean and std >= 0, got mean = %g, std = %g",
                     double(mean), double(std));
  if (n == 0) return TSM_OK;
  if (!out) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "rng_normal: out is NULL");
  constexpr float kTwoPi = 6.28318530717958647692f;
  tsm::for_chunks(n, [&](int64_t b, int64_t e) {
    tsm::blocks(b, e, seed, offset, [&](int64_t i0, const tsm::U4& r) {
      float z[4];
      for (int pair = 0; pair < 2; ++pair) {
        const float v = tsm::to_unit_open_closed(r.v[2 * pair]);   // (0, 1]: log is finite
        const float u = tsm::to_unit_closed_open(r.v[2 * pair + 1]);
        const float rad = std::sqrt(-2.0f * std::log(v));
        const float th = kTwoPi * u;
        z[2 * pair] = rad * std::cos(th);
        z[2 * pair + 1] = rad * std::sin(th);
      }
      for (int l = 0; l < 4; ++l) {
        const int64_t i = i0 + l;
        if (i >= b && i < e) out[i] = mean + std * z[l];
      }
    });
  });
  return TSM_OK;
}

}  // extern "C"
