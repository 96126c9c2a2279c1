// Optimizer updates over a list of tensors: SGD, Adam/AdamW, RMSprop, and in-place scaling.
//
// Every list has `count` entries; entry i is a contiguous float32 tensor of sizes[i] elements:
//   params[i], grads[i], and each optimizer state (momentum buffer, moments, ...) : (sizes[i])
//
// The updates are elementwise, so they are written as the per-element formulas of torch.optim
// (1.13+, single-tensor path), in float32 with the hyper-parameters rounded to float as PyTorch
// does for a float tensor. The list is cut into chunks of at most kChunk elements that run on the
// thread pool (the result does not depend on the thread count).
#include <algorithm>
#include <cmath>
#include <new>
#include <type_traits>
#include <vector>

#include "../runtime/runtime.h"

namespace tsm {
namespace {

constexpr int64_t kChunk = 32768;

struct Chunk {
  int64_t tensor, begin, end;
};

// Validates the lists and runs f(tensor, begin, end) over chunks of the tensors.
template <typename F>
tsm_status for_chunks(const char* op, const int64_t* sizes, int64_t count, const F& f) {
  std::vector<Chunk> chunks;
  int64_t total = 0;
  try {
    for (int64_t t = 0; t < count; ++t) {
      for (int64_t b = 0; b < sizes[t]; b += kChunk)
        chunks.push_back({t, b, std::min(sizes[t], b + kChunk)});
      total += sizes[t];
    }
  } catch (const std::bad_alloc&) {
    return fail(TSM_ERR_OUT_OF_MEMORY, "%s: cannot allocate the chunk list", op);
  }
  if (total <= kChunk) {
    for (const Chunk& c : chunks) f(c.tensor, c.begin, c.end);
  } else {
    parallel_for(int64_t(chunks.size()), [&](int64_t i) {
      const Chunk& c = chunks[size_t(i)];
      f(c.tensor, c.begin, c.end);
    });
  }
  return TSM_OK;
}

// Checks count and sizes.
tsm_status check_sizes(const char* op, const int64_t* sizes, int64_t count) {
  if (count < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: count must be >= 0, got %lld", op, (long long)count);
  if (count > 0 && !sizes) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes is NULL", op);
  for (int64_t t = 0; t < count; ++t)
    if (sizes[t] < 0)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes[%lld] must be >= 0, got %lld", op,
                  (long long)t, (long long)sizes[t]);
  return TSM_OK;
}

// When `required`, checks that the list has a non-NULL pointer for every non-empty tensor.
template <typename P>
tsm_status check_list(const char* op, const char* name, P* const* ptrs, const int64_t* sizes,
                      int64_t count, bool required) {
  if (!required || count == 0) return TSM_OK;
  if (!ptrs) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, name);
  for (int64_t t = 0; t < count; ++t)
    if (sizes[t] > 0 && !ptrs[t])
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s[%lld] is NULL", op, name, (long long)t);
  return TSM_OK;
}

// torch.maximum: NaN wins.
inline float nan_max(float a, float b) { return (a > b || a != a) ? a : b; }

}  // namespace
}  // namespace tsm

extern "C" {

// params, momentum_bufs, grads: lists of (sizes[i])
TSM_API tsm_status tsm_sgd_step(float* const* params, float* const* momentum_bufs,
                                const float* const* grads, const int64_t* sizes, int64_t count,
                                double lr, double momentum, double dampening, double weight_decay,
                                int nesterov, int maximize, int first_step) {
  using namespace tsm;
  const char* op = "sgd_step";
  if (tsm_status s = check_sizes(op, sizes, count)) return s;
  if (tsm_status s = check_list(op, "params", params, sizes, count, true)) return s;
  if (tsm_status s = check_list(op, "grads", grads, sizes, count, true)) return s;
  if (tsm_status s = check_list(op, "momentum_bufs", momentum_bufs, sizes, count, momentum != 0.0)) return s;
  if (nesterov && (momentum <= 0.0 || dampening != 0.0))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: nesterov needs momentum > 0 and dampening = 0", op);
  const float wd = float(weight_decay), mom = float(momentum), one_minus_damp = float(1.0 - dampening),
              neg_lr = float(-lr);
  const bool use_wd = weight_decay != 0.0, use_mom = momentum != 0.0;
  const float sign = maximize ? -1.0f : 1.0f;  // -g and g * -1 are the same float
  // The flags select one branch-free loop each, so that the compiler vectorises it. The pointers
  // are the parameters of a function of their own: GCC honours __restrict on parameters, not on
  // local variables, and without it the loop stayed scalar (the CNN's parameters, hot: 0.44 ms scalar,
  // 0.09 vectorised).
  const auto loop = [&](auto wd_on, auto mom_on, auto first_on, auto nest_on) {
    const auto update = [&](float* __restrict p, const float* __restrict g, float* __restrict buf,
                            int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        float d = g[i] * sign;
        if constexpr (decltype(wd_on)::value) d = d + wd * p[i];
        if constexpr (decltype(mom_on)::value) {
          float b;
          if constexpr (decltype(first_on)::value) b = d;
          else b = buf[i] * mom + one_minus_damp * d;
          buf[i] = b;
          if constexpr (decltype(nest_on)::value) d = d + mom * b;
          else d = b;
        }
        p[i] = p[i] + neg_lr * d;
      }
    };
    return for_chunks(op, sizes, count, [&](int64_t t, int64_t i0, int64_t i1) {
      update(params[t] + i0, grads[t] + i0, decltype(mom_on)::value ? momentum_bufs[t] + i0 : nullptr,
             i1 - i0);
    });
  };
  using T = std::true_type;
  using F = std::false_type;
  const auto with_wd = [&](auto mom_on, auto first_on, auto nest_on) {
    return use_wd ? loop(T{}, mom_on, first_on, nest_on) : loop(F{}, mom_on, first_on, nest_on);
  };
  if (!use_mom) return with_wd(F{}, F{}, F{});
  if (first_step) return nesterov ? with_wd(T{}, T{}, T{}) : with_wd(T{}, T{}, F{});
  return nesterov ? with_wd(T{}, F{}, T{}) : with_wd(T{}, F{}, F{});
}

// params, exp_avg, exp_avg_sq, max_exp_avg_sq, grads: lists of (sizes[i])
TSM_API tsm_status tsm_adam_step(float* const* params, float* const* exp_avg,
                                 float* const* exp_avg_sq, float* const* max_exp_avg_sq,
                                 const float* const* grads, const int64_t* sizes, int64_t count,
                                 double lr, double beta1, double beta2, double eps,
                                 double weight_decay, int64_t step, int amsgrad, int decoupled,
                                 int maximize) {
  using namespace tsm;
  const char* op = "adam_step";
  if (tsm_status s = check_sizes(op, sizes, count)) return s;
  if (tsm_status s = check_list(op, "params", params, sizes, count, true)) return s;
  if (tsm_status s = check_list(op, "grads", grads, sizes, count, true)) return s;
  if (tsm_status s = check_list(op, "exp_avg", exp_avg, sizes, count, true)) return s;
  if (tsm_status s = check_list(op, "exp_avg_sq", exp_avg_sq, sizes, count, true)) return s;
  if (tsm_status s = check_list(op, "max_exp_avg_sq", max_exp_avg_sq, sizes, count, amsgrad != 0)) return s;
  if (step < 1) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: step must be >= 1, got %lld", op, (long long)step);
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2 = 1.0 - std::pow(beta2, double(step));
  const float neg_step_size = float(-(lr / bc1));
  const float bc2_sqrt = float(std::sqrt(bc2));
  const float b1 = float(beta1), omb1 = float(1.0 - beta1), b2 = float(beta2),
              omb2 = float(1.0 - beta2), epsf = float(eps), wd = float(weight_decay),
              decay = float(1.0 - lr * weight_decay);
  const bool l2 = !decoupled && weight_decay != 0.0;
  const float sign = maximize ? -1.0f : 1.0f;
  // One branch-free loop per (weight decay mode, amsgrad), so that the compiler vectorises it;
  // the pointers are parameters for __restrict to count (see tsm_sgd_step).
  const auto loop = [&](auto decoupled_on, auto l2_on, auto ams_on) {
    const auto update = [&](float* __restrict p, const float* __restrict g, float* __restrict m,
                            float* __restrict v, float* __restrict vmax, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        float gi = g[i] * sign;
        float pi = p[i];
        if constexpr (decltype(decoupled_on)::value) pi = pi * decay;
        if constexpr (decltype(l2_on)::value) gi = gi + wd * pi;
        const float mi = m[i] * b1 + omb1 * gi;
        const float vi = v[i] * b2 + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float vv = vi;
        if constexpr (decltype(ams_on)::value) {
          vv = nan_max(vmax[i], vi);
          vmax[i] = vv;
        }
        const float denom = std::sqrt(vv) / bc2_sqrt + epsf;
        p[i] = pi + neg_step_size * (mi / denom);
      }
    };
    return for_chunks(op, sizes, count, [&](int64_t t, int64_t i0, int64_t i1) {
      update(params[t] + i0, grads[t] + i0, exp_avg[t] + i0, exp_avg_sq[t] + i0,
             decltype(ams_on)::value ? max_exp_avg_sq[t] + i0 : nullptr, i1 - i0);
    });
  };
  using T = std::true_type;
  using F = std::false_type;
  const auto with_ams = [&](auto decoupled_on, auto l2_on) {
    return amsgrad ? loop(decoupled_on, l2_on, T{}) : loop(decoupled_on, l2_on, F{});
  };
  if (decoupled) return with_ams(T{}, F{});
  return l2 ? with_ams(F{}, T{}) : with_ams(F{}, F{});
}

// params, square_avg, momentum_buf, grad_avg, grads: lists of (sizes[i])
TSM_API tsm_status tsm_rmsprop_step(float* const* params, float* const* square_avg,
                                    float* const* momentum_buf, float* const* grad_avg,
                                    const float* const* grads, const int64_t* sizes, int64_t count,
                                    double lr, double alpha, double eps, double weight_decay,
                                    double momentum, int centered, int maximize) {
  using namespace tsm;
  const char* op = "rmsprop_step";
  if (tsm_status s = check_sizes(op, sizes, count)) return s;
  if (tsm_status s = check_list(op, "params", params, sizes, count, true)) return s;
  if (tsm_status s = check_list(op, "grads", grads, sizes, count, true)) return s;
  if (tsm_status s = check_list(op, "square_avg", square_avg, sizes, count, true)) return s;
  if (tsm_status s = check_list(op, "momentum_buf", momentum_buf, sizes, count, momentum > 0.0)) return s;
  if (tsm_status s = check_list(op, "grad_avg", grad_avg, sizes, count, centered != 0)) return s;
  const float a = float(alpha), oma = float(1.0 - alpha), epsf = float(eps), wd = float(weight_decay),
              mom = float(momentum), neg_lr = float(-lr);
  const bool use_wd = weight_decay != 0.0, use_mom = momentum > 0.0;
  return for_chunks(op, sizes, count, [&](int64_t t, int64_t i0, int64_t i1) {
    float* p = params[t];
    const float* g = grads[t];
    float* sq = square_avg[t];
    float* buf = use_mom ? momentum_buf[t] : nullptr;
    float* ga = centered ? grad_avg[t] : nullptr;
    for (int64_t i = i0; i < i1; ++i) {
      float gi = maximize ? -g[i] : g[i];
      if (use_wd) gi = gi + wd * p[i];
      const float s = sq[i] * a + oma * gi * gi;
      sq[i] = s;
      float avg;
      if (ga) {
        const float gai = ga[i] * a + oma * gi;
        ga[i] = gai;
        avg = std::sqrt(s - gai * gai);
      } else {
        avg = std::sqrt(s);
      }
      avg = avg + epsf;
      if (buf) {
        const float b = buf[i] * mom + gi / avg;
        buf[i] = b;
        p[i] = p[i] + neg_lr * b;
      } else {
        p[i] = p[i] + neg_lr * (gi / avg);
      }
    }
  });
}

// arrays: list of (sizes[i]), scaled in place
TSM_API tsm_status tsm_scale_inplace(float* const* arrays, const int64_t* sizes, int64_t count,
                                     float factor) {
  using namespace tsm;
  const char* op = "scale_inplace";
  if (tsm_status s = check_sizes(op, sizes, count)) return s;
  if (tsm_status s = check_list(op, "arrays", arrays, sizes, count, true)) return s;
  return for_chunks(op, sizes, count, [&](int64_t t, int64_t i0, int64_t i1) {
    float* p = arrays[t];
    for (int64_t i = i0; i < i1; ++i) p[i] *= factor;
  });
}

}  // extern "C"
