// Aligned allocation and per-thread scratch buffers.
#include <cstdlib>

#include "runtime.h"

namespace tsm {

void* aligned_malloc(size_t bytes) {
  if (bytes == 0) bytes = kAlign;
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  if (rounded < bytes) return nullptr;  // overflow
  return std::aligned_alloc(kAlign, rounded);
}

void aligned_free(void* p) { std::free(p); }

namespace {
struct Scratch {
  float* ptr = nullptr;
  size_t cap = 0;
  ~Scratch() { aligned_free(ptr); }
};
constexpr int kSlots = 4;
thread_local Scratch g_scratch[kSlots];
}  // namespace

float* scratch(int slot, size_t floats) {
  if (slot < 0 || slot >= kSlots) return nullptr;
  Scratch& s = g_scratch[slot];
  if (floats > s.cap) {
    float* p = static_cast<float*>(aligned_malloc(floats * sizeof(float)));
    if (!p) return nullptr;
    aligned_free(s.ptr);
    s.ptr = p;
    s.cap = floats;
  }
  return s.ptr;
}

}  // namespace tsm
