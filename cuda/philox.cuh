// Philox4x32-10 for the CUDA kernels, identical to the CPU's (cpp/kernels/rng.cpp):
//
//   key     (k0, k1)         = (seed & 0xffffffff, seed >> 32)
//   counter (c0, c1, c2, c3) = (block & 0xffffffff, block >> 32, 0, 0), block = offset + i / 4
//   element i takes 32-bit lane i % 4; the [0, 1) uniform is (lane >> 8) * 2^-24
//
// Plain 64-bit integer arithmetic (no __umulhi), so the same code compiles for the device, for the
// host and under TSM_NORM_EMULATE; test/emu/norm_emu.cpp compares it with tsm_rng_uniform.
// Not public ABI.
#pragma once
#include <cstdint>

namespace tsm {
namespace cuda {
namespace norm {

struct Philox4 {
  uint32_t v[4];
};

__host__ __device__ __forceinline__ Philox4 philox4x32_10(uint64_t block, uint64_t seed) {
  uint32_t c0 = uint32_t(block), c1 = uint32_t(block >> 32), c2 = 0u, c3 = 0u;
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  Philox4 out;
  out.v[0] = c0;
  out.v[1] = c1;
  out.v[2] = c2;
  out.v[3] = c3;
  return out;
}

// The [0, 1) uniform of a 32-bit lane: a multiple of 2^-24.
__host__ __device__ __forceinline__ float philox_unit(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

}  // namespace norm
}  // namespace cuda
}  // namespace tsm
