// N-API entry points for the attention kernels.
#include "binding.h"

using namespace tsm_binding;

void register_ops_attention(Napi::Env env, Napi::Object exports) {}
