// N-API entry points for the conv kernels.
#include "binding.h"

using namespace tsm_binding;

void register_ops_conv(Napi::Env env, Napi::Object exports) {}
