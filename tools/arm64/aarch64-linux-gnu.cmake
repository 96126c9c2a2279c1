# CMake toolchain file: cross-compile tensorsmith for linux-arm64 (AArch64, glibc) with Debian's
# g++-aarch64-linux-gnu. Used by tools/arm64/build-and-test.sh through `npm run prebuild:arm64`.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_STRIP aarch64-linux-gnu-strip)

# Baseline ARMv8-A: Advanced SIMD (NEON) is mandatory there, so the NEON micro-kernels need no
# extra flags and the binary runs on every AArch64 CPU (Graviton, Ampere, Apple silicon VMs, Pi 4/5).
set(CMAKE_C_FLAGS_INIT "-march=armv8-a")
set(CMAKE_CXX_FLAGS_INIT "-march=armv8-a")

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
