// N-API entry points for the pointwise kernels.
#include "binding.h"

using namespace tsm_binding;

void register_ops_pointwise(Napi::Env env, Napi::Object exports) {}
