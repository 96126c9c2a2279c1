// Embedding lookup, forward and backward.
//
//   weight, dweight : (num_embeddings, dim)
//   indices         : (n) int32, each in [0, num_embeddings)
//   y, dy           : (n, dim)
//
// Forward:  y[i, :] = weight[indices[i], :]
// Backward: dweight = 0; dweight[indices[i], :] += dy[i, :] for every i with indices[i] != padding_idx
// The backward groups the positions by row with a counting sort (stable, so each row adds its
// contributions in position order), then runs the rows in parallel: no two threads write the same
// row and the sums do not depend on the thread count.
#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "../runtime/runtime.h"

namespace tsm {
namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Runs f(begin, end) over [0, n) split into contiguous ranges of at least `grain` items.
template <typename F>
void parallel_range(int64_t n, int64_t grain, const F& f) {
  if (n <= 0) return;
  const int64_t tasks = std::min<int64_t>(ceil_div(n, std::max<int64_t>(grain, 1)),
                                          int64_t(num_threads()) * 4);
  if (tasks <= 1) {
    f(int64_t(0), n);
    return;
  }
  parallel_for(tasks, [&](int64_t t) { f(n * t / tasks, n * (t + 1) / tasks); });
}

tsm_status check_indices(const char* op, const int32_t* indices, int64_t n, int64_t num_embeddings) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = indices[i];
    if (v < 0 || v >= num_embeddings)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: indices[%lld] = %lld is out of range [0, %lld)", op,
                  (long long)i, (long long)v, (long long)num_embeddings);
  }
  return TSM_OK;
}

tsm_status check_sizes(const char* op, int64_t n, int64_t num_embeddings, int64_t dim) {
  if (n < 0 || num_embeddings < 0 || dim < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT,
                "%s: n, num_embeddings and dim must be >= 0, got %lld, %lld, %lld", op, (long long)n,
                (long long)num_embeddings, (long long)dim);
  return TSM_OK;
}

}  // namespace
}  // namespace tsm

extern "C" {

// y: (n, dim)   indices: (n)   weight: (num_embeddings, dim)
TSM_API tsm_status tsm_embedding_forward(float* y, const int32_t* indices, const float* weight,
                                         int64_t n, int64_t num_embeddings, int64_t dim) {
  using namespace tsm;
  const char* op = "embedding_forward";
  if (tsm_status s = check_sizes(op, n, num_embeddings, dim)) return s;
  if (n == 0) return TSM_OK;
  if (!indices) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: indices is NULL", op);
  if (tsm_status s = check_indices(op, indices, n, num_embeddings)) return s;
  if (dim == 0) return TSM_OK;
  if (!y || !weight) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !y ? "y" : "weight");
  parallel_range(n, std::max<int64_t>(1, 32768 / dim), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      std::memcpy(y + i * dim, weight + int64_t(indices[i]) * dim, sizeof(float) * size_t(dim));
  });
  return TSM_OK;
}

// dweight: (num_embeddings, dim)   dy: (n, dim)   indices: (n)
TSM_API tsm_status tsm_embedding_backward(float* dweight, const float* dy, const int32_t* indices,
                                          int64_t n, int64_t num_embeddings, int64_t dim,
                                          int64_t padding_idx) {
  using namespace tsm;
  const char* op = "embedding_backward";
  if (tsm_status s = check_sizes(op, n, num_embeddings, dim)) return s;
  if (padding_idx < -1 || padding_idx >= num_embeddings)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: padding_idx must be -1 or in [0, %lld), got %lld", op,
                (long long)num_embeddings, (long long)padding_idx);
  if (n > 0 && !indices) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: indices is NULL", op);
  if (tsm_status s = check_indices(op, indices, n, num_embeddings)) return s;
  if (dim == 0 || num_embeddings == 0) return TSM_OK;
  if (!dweight) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: dweight is NULL", op);
  if (n > 0 && !dy) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: dy is NULL", op);

  // Counting sort of the positions by row: positions of row r are order[start[r] .. start[r + 1]).
  std::vector<int64_t> start, order;
  try {
    start.assign(static_cast<size_t>(num_embeddings) + 1, 0);
    order.resize(static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    return fail(TSM_ERR_OUT_OF_MEMORY, "%s: cannot allocate the index buffers", op);
  }
  for (int64_t i = 0; i < n; ++i) ++start[size_t(indices[i]) + 1];
  for (int64_t r = 0; r < num_embeddings; ++r) start[size_t(r) + 1] += start[size_t(r)];
  std::vector<int64_t> cursor;  // next free slot of each row in `order`
  try {
    cursor.assign(start.begin(), start.end() - 1);
  } catch (const std::bad_alloc&) {
    return fail(TSM_ERR_OUT_OF_MEMORY, "%s: cannot allocate the index buffers", op);
  }
  for (int64_t i = 0; i < n; ++i) order[size_t(cursor[size_t(indices[i])]++)] = i;

  // Rows in parallel; the grain balances rows that are mostly zero-fill against hot rows.
  const int64_t work = num_embeddings * dim + n * dim;
  const int64_t tasks_wanted = std::max<int64_t>(1, std::min<int64_t>(work / 65536, 256));
  parallel_range(num_embeddings, ceil_div(num_embeddings, tasks_wanted), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* dst = dweight + r * dim;
      std::memset(dst, 0, sizeof(float) * size_t(dim));
      if (r == padding_idx) continue;
      for (int64_t t = start[size_t(r)]; t < start[size_t(r) + 1]; ++t) {
        const float* src = dy + order[size_t(t)] * dim;
        for (int64_t k = 0; k < dim; ++k) dst[k] += src[k];
      }
    }
  });
  return TSM_OK;
}

}  // extern "C"
