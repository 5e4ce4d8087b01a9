#pragma once
// A weight matrix used in place from the memory map: `rows` rows of `cols` values in `type`, row-major
// by output row (GGUF's ne = [cols, rows]).
#include <cstddef>

#include "forge/core/dtype.hpp"

namespace forge::cpu {

struct WeightView {
    const std::byte* data = nullptr;
    DType type = DType::F32;
    int rows = 0;
    int cols = 0;

    std::size_t row_stride() const { return row_bytes(type, std::size_t(cols)); }
    const std::byte* row(int r) const { return data + std::size_t(r) * row_stride(); }
};

}  // namespace forge::cpu
