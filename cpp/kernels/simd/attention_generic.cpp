// The attention tile loops (attention_impl.h) compiled for generic.
#define ATTN_IMPL_NS attn_generic
#include "attention_impl.h"

namespace tsm {

const AttnImpl& attention_impl_generic() {
  static const AttnImpl impl{"generic", attn_generic::forward_block, attn_generic::backward_keys};
  return impl;
}

#if !(defined(__x86_64__) || defined(_M_X64))
const AttnImpl* attention_impl_avx2() { return nullptr; }
const AttnImpl* attention_impl_avx512() { return nullptr; }
#endif

}  // namespace tsm
