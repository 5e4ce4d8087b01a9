#pragma once
// Where the f16 scales (and mins) sit in a block of the types forge reads but does not write: tests fill
// such blocks with random bytes, which give every code and packed sub-block scale a block can hold, and
// then write finite scales at these byte offsets.
#include <vector>

#include "forge/core/dtype.hpp"

namespace forge::test {

inline std::vector<int> f16_fields(DType type) {
    switch (type) {
        case DType::Q4_1: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K: return {0, 2};
        case DType::Q5_0: return {0};
        case DType::Q2_K: return {80, 82};
        case DType::Q3_K: return {108};
        case DType::Q6_K: return {208};
        default: return {};
    }
}

}  // namespace forge::test
