// Builds of one function for several SIMD levels inside an ordinary translation unit (the row and
// cell loops of lstm.cpp, cross_entropy.cpp, softmax.cpp, unary.cpp): the body is an always_inline
// function, each build a wrapper with one of the target attributes below, and TSM_PICK_ISA chooses
// the wrapper for the active level at run time. (The GEMM, convolution and pooling kernels, written
// with intrinsics, have a translation unit per ISA instead: simd/*_avx2.cpp, simd/*_avx512.cpp.)
#pragma once

#include "../../runtime/runtime.h"

#if defined(__x86_64__) || defined(_M_X64)
#define TSM_ISA_X86 1
// prefer-vector-width=512: GCC's default tuning vectorizes with 256-bit vectors even when AVX-512
// is enabled.
#define TSM_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TSM_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma,prefer-vector-width=512")))
#else
#define TSM_ISA_X86 0
#endif

namespace tsm {

// Of the builds name_generic, name_avx2 and name_avx512 (the last two only on x86-64), the one for
// `simd`.
template <class Fn>
inline Fn pick_isa(tsm_simd simd, Fn generic, Fn avx2, Fn avx512) {
  return simd == TSM_SIMD_AVX512 ? avx512 : simd == TSM_SIMD_AVX2 ? avx2 : generic;
}

}  // namespace tsm

// TSM_PICK_ISA_T: the same for function templates, with their template arguments.
#if TSM_ISA_X86
#define TSM_PICK_ISA(simd, name) ::tsm::pick_isa((simd), name##_generic, name##_avx2, name##_avx512)
#define TSM_PICK_ISA_T(simd, name, ...) \
  ::tsm::pick_isa((simd), name##_generic<__VA_ARGS__>, name##_avx2<__VA_ARGS__>, name##_avx512<__VA_ARGS__>)
#else
#define TSM_PICK_ISA(simd, name) name##_generic
#define TSM_PICK_ISA_T(simd, name, ...) name##_generic<__VA_ARGS__>
#endif
