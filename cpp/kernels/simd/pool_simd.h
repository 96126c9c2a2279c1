// SIMD pieces of pool2d.cpp (simd/pool_avx512.cpp, simd/pool_avx2.cpp).
#pragma once
#include <cstdint>

namespace tsm {

// 2x2 max pooling with stride 2 over the windows that lie fully inside one plane x (H, W):
// outputs (oh, ow) for oh < full_h, ow < full_w of y and idx (OH, OW rows of ow); indices are
// flat positions in the plane. x86-64 only; the caller checks for AVX-512F.
void max_pool_2x2_full_avx512(float* y, int32_t* idx, const float* x, int64_t w, int64_t ow,
                              int64_t full_h, int64_t full_w, bool relu);
// The same, eight outputs per step; the caller checks for AVX2.
void max_pool_2x2_full_avx2(float* y, int32_t* idx, const float* x, int64_t w, int64_t ow,
                            int64_t full_h, int64_t full_w, bool relu);

}  // namespace tsm
