// Per-thread error messages behind tsm_last_error().
#include <cstdarg>
#include <cstdio>

#include "runtime.h"

namespace tsm {

static thread_local char g_last_error[1024] = "";

tsm_status fail(tsm_status status, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(g_last_error, sizeof g_last_error, fmt, args);
  va_end(args);
  return status;
}

void clear_error() { g_last_error[0] = '\0'; }

}  // namespace tsm

extern "C" {

TSM_API const char* tsm_last_error(void) { return tsm::g_last_error; }

TSM_API const char* tsm_status_string(tsm_status status) {
  switch (status) {
    case TSM_OK: return "ok";
    case TSM_ERR_INVALID_ARGUMENT: return "invalid argument";
    case TSM_ERR_OUT_OF_MEMORY: return "out of memory";
    case TSM_ERR_UNSUPPORTED: return "unsupported";
    case TSM_ERR_CUDA: return "CUDA error";
    case TSM_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

#define TSM_STR2(x) #x
#define TSM_STR(x) TSM_STR2(x)
TSM_API const char* tsm_version(void) {
  return TSM_STR(TSM_VERSION_MAJOR) "." TSM_STR(TSM_VERSION_MINOR) "." TSM_STR(TSM_VERSION_PATCH);
}

}  // extern "C"
