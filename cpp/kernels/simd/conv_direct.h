// Direct (no im2col) stride-1 convolution kernels for a small reduction Cg*KH*KW, one image (or a
// range of images) per call, so the caller can spread images over the thread pool.
// Shapes, per image: x (C, H, W), w (OC, C/G, KH, KW), y (OC, OH, OW), bias (OC) or NULL.
// The functions return false only when a scratch buffer cannot be allocated.
#pragma once
#include <cstdint>

namespace tsm {

struct DirectConvShape {
  int64_t c, h, w, oc, kh, kw, ph, pw, dh, dw, groups, oh, ow;
};

bool conv_direct_avx512_available();
// y (OC, OH, OW) = conv(x (C, H, W), w) + bias
bool conv_direct_forward_avx512(float* y, const float* x, const float* w, const float* bias,
                                const DirectConvShape& s);
// dx (C, H, W) from dy (OC, OH, OW), w
bool conv_direct_backward_data_avx512(float* dx, const float* dy, const float* w,
                                      const DirectConvShape& s);
// dw (OC, C/G, KH, KW) = sum over nimg images of dy (nimg, OC, OH, OW) x (nimg, C, H, W); overwritten
bool conv_direct_backward_weight_avx512(float* dw, const float* dy, const float* x, int64_t nimg,
                                        const DirectConvShape& s);

}  // namespace tsm
