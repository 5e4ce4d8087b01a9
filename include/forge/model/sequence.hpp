#pragma once
// The rules of a model's sequence, written once for the CPU and the GPU path: a model's KV cache holds
// the tokens fed since reset() at positions 0, 1, ...; truncate(n) keeps the first n, and
// copy_prefix_to(other, n) gives another model of the same shape the first n.
#include <string>

#include "forge/core/error.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge {

inline void require_truncatable(int n, int position) {
    if (n < 0 || n > position)
        throw Error("cannot truncate to " + std::to_string(n) + " positions: the sequence holds " + std::to_string(position));
}

inline void require_copyable_prefix(int n, int position, const ModelShape& from, const ModelShape& to, int to_context) {
    if (n < 0 || n > position)
        throw Error("cannot copy a prefix of " + std::to_string(n) + " positions: the sequence holds " + std::to_string(position));
    if (!(from == to)) throw Error("cannot copy a prefix between models of different shapes");
    if (n > to_context)
        throw Error("cannot copy a prefix of " + std::to_string(n) + " positions into a context of " + std::to_string(to_context));
}

}  // namespace forge
