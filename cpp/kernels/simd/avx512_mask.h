// Lane masks shared by the simd/*_avx512.cpp kernels (include only from files compiled with
// -mavx512f).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace tsm {

// Lanes [0, n) of 16 for 0 <= n; all of them for n >= 16.
inline __mmask16 tail_mask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
}

}  // namespace tsm
