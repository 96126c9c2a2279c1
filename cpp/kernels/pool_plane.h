// The max-pooling plane loops of pool2d.cpp, for kernels that compute the pooling's input
// themselves (conv_pool.cpp: a convolution's output plane by plane, pooled while in L1).
#pragma once
#include <cstdint>

#include "../runtime/runtime.h"

namespace tsm {

// Checks a max pooling's descriptor as tsm_max_pool2d_forward does (errors name op); *oh, *ow: its
// output size.
tsm_status max_pool2d_check(const char* op, const tsm_pool2d_desc* d, int64_t* oh, int64_t* ow);

// One plane of tsm_max_pool2d_forward (relu: of tsm_max_pool2d_relu_forward): y and idx (oh, ow)
// from x (d.h, d.w), bit-identical to those functions' output for that plane. d must have passed
// max_pool2d_check, which gave oh and ow.
void max_pool2d_plane(float* y, int32_t* idx, const float* x, const tsm_pool2d_desc& d, int64_t oh,
                      int64_t ow, bool relu);

}  // namespace tsm
