#include "conv_direct.h"
namespace tsm {
bool conv_direct_avx512_available() { return false; }
bool conv_direct_forward_avx512(float*, const float*, const float*, const float*, const DirectConvShape&) { return false; }
bool conv_direct_backward_data_avx512(float*, const float*, const float*, const DirectConvShape&) { return false; }
bool conv_direct_backward_weight_avx512(float*, const float*, const float*, int64_t, const DirectConvShape&) { return false; }
}
