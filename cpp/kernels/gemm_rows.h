// The row panels of a GEMM's packed A operand, shared by sgemm.cpp and lstm.cpp.
#pragma once
#include <cstdint>

#include "simd/gemm_ukernel.h"

namespace tsm {

// The row panels of an A block of `rows` rows: uk.mr rows each, except that a kernel with a narrower
// form for the last rows (uk.tail: the AVX2 6x16 kernel's 4x16) takes them in panels of its rows
// where those pad less: rows % 6 of 1-4 as one 4-row panel, and 2 more than a multiple of 6 (from 8)
// as two. 64 rows: 10 x 6 + 4 instead of 11 x 6; 128 (or the LSTM's batch of 32): 20 x 6 + 2 x 4
// instead of 22 x 6. Panel u starts at row start(u); packed at depth k, at start(u) * k floats.
struct RowPanels {
  const GemmUkernel& uk;
  const GemmUkernel& tk;  // the tail panels' kernel (uk itself where there is none)
  int64_t rows;
  int64_t tail;           // the tail panels (of tk.mr rows) start at this row; rows where none
  int64_t head;           // the panels of uk.mr rows before them (the last may be partial)
  RowPanels(const GemmUkernel& k, int64_t r) : uk(k), tk(k.tail ? *k.tail : k), rows(r), tail(r) {
    const int64_t over = rows % uk.mr;
    if (uk.tail && over == 2 && rows >= 8) tail = rows - 8;
    else if (uk.tail && over >= 1 && over <= tk.mr) tail = rows - over;
    head = (tail + uk.mr - 1) / uk.mr;
  }
  int64_t count() const { return head + (rows - tail + tk.mr - 1) / tk.mr; }
  int64_t start(int64_t u) const { return u < head ? u * uk.mr : tail + (u - head) * tk.mr; }
  const GemmUkernel& kernel(int64_t u) const { return u < head ? uk : tk; }
  // Rows of all the panels, padding included: the packed operand holds width() * k floats.
  int64_t width() const { return head * uk.mr + (count() - head) * tk.mr; }
};

}  // namespace tsm
