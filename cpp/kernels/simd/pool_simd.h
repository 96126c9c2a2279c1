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

// The backward of the same pooling for one plane, writing all of dx (H, W) instead of zeroing it
// and scattering: each 2x2 window's four cells get dy where the window's index points and 0
// elsewhere (dy + 0, so -0 gives +0 as the scatter's 0 + dy does); rows and columns no window
// covers get 0. dy, idx: (oh, ow) with oh <= H/2, ow <= W/2. Relu: dy counts only where y > 0 (y
// as dy). Returns false, having written nothing, when an index is not one of its own window's
// four cells (indices that did not come from this pooling): the caller then scatters.
// The caller checks for AVX2.
bool max_pool_2x2_backward_avx2(float* dx, const float* dy, const float* y, const int32_t* idx, int64_t h,
                                int64_t w, int64_t oh, int64_t ow, bool relu);

}  // namespace tsm
