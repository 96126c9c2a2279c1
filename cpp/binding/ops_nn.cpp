// N-API entry points for the nn kernels.
#include "binding.h"

using namespace tsm_binding;

void register_ops_nn(Napi::Env env, Napi::Object exports) {}
