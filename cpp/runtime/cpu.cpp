// CPU feature detection. The binary is built for baseline x86-64 (or armv8-a); ISA-specific
// micro-kernels live in their own translation units compiled with their own flags, and are only
// called when cpuid says the CPU and the OS (XSAVE state) support them.
#include <cstdlib>
#include <cstring>

#include "runtime.h"

namespace tsm {

static CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // libgcc's checks include the OS support bits (xgetbv), so AVX state is usable when they say so.
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
#elif defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory on AArch64.
#endif
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

static tsm_simd choose_simd() {
  const CpuFeatures& f = cpu_features();
  tsm_simd best = TSM_SIMD_GENERIC;
  if (f.avx2 && f.fma) best = TSM_SIMD_AVX2;
  if (f.avx512f && f.avx2 && f.fma) best = TSM_SIMD_AVX512;
  if (f.neon) best = TSM_SIMD_NEON;
  // TSM_SIMD narrows the choice (for testing every path); it never enables what the CPU lacks.
  if (const char* want = std::getenv("TSM_SIMD")) {
    if (!std::strcmp(want, "generic")) best = TSM_SIMD_GENERIC;
    else if (!std::strcmp(want, "avx2") && best == TSM_SIMD_AVX512) best = TSM_SIMD_AVX2;
  }
  return best;
}

tsm_simd active_simd() {
  static const tsm_simd s = choose_simd();
  return s;
}

}  // namespace tsm

extern "C" {

TSM_API tsm_simd tsm_get_simd(void) { return tsm::active_simd(); }

TSM_API const char* tsm_simd_name(tsm_simd simd) {
  switch (simd) {
    case TSM_SIMD_GENERIC: return "generic";
    case TSM_SIMD_AVX2: return "avx2";
    case TSM_SIMD_AVX512: return "avx512";
    case TSM_SIMD_NEON: return "neon";
  }
  return "unknown";
}

}  // extern "C"
