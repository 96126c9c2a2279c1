// The attention tile loops (attention_impl.h) compiled for avx512.
#define ATTN_IMPL_NS attn_avx512
#include "attention_impl.h"

namespace tsm {

const AttnImpl* attention_impl_avx512() {
  static const AttnImpl impl{"avx512", attn_avx512::forward_block, attn_avx512::backward_keys};
  return &impl;
}

}  // namespace tsm
