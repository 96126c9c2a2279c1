// The attention tile loops (attention_impl.h) compiled for avx2.
#define ATTN_IMPL_NS attn_avx2
#include "attention_impl.h"

namespace tsm {

const AttnImpl* attention_impl_avx2() {
  static const AttnImpl impl{"avx2", attn_avx2::forward_block, attn_avx2::backward_keys};
  return &impl;
}

}  // namespace tsm
