#pragma once
// An opt-in scan of a file's weights for values that are not finite. A file can parse and match its shape
// and still hold NaN or infinities (flipped F16 bits, a quantized block whose f16 scale is inf); run, they
// only show up as non-finite logits, far from their cause. Quantized tensors are dequantized and the
// floats checked, so a non-finite scale is found through the values it scales.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "forge/core/dtype.hpp"
#include "forge/core/error.hpp"
#include "forge/core/printable.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/quant/row.hpp"

namespace forge::gguf {

namespace detail {

// Elements dequantized at a time: a multiple of every block size, and few enough that the floats stay in
// cache between being written and being checked.
inline constexpr std::size_t kFiniteScanChunk = 16384;

struct NonFinite {
    std::uint64_t index;  // flat, in file order
    float value;
};

// The first value of `t` that is not finite. `values` and `staged` are scratch reused across tensors.
inline std::optional<NonFinite> first_non_finite(const TensorInfo& t, const DTypeInfo& info, std::vector<float>& values,
                                                 std::vector<std::byte>& staged) {
    // The reader derived elements and bytes from the dims; the walk below relies on that, so it is checked
    // here rather than assumed.
    const std::uint64_t cols = t.cols(), rows = t.rows();
    if (cols == 0 || cols % info.block_elems != 0 || t.elements / cols != rows || t.elements % cols != 0 ||
        t.bytes != t.elements / info.block_elems * info.block_bytes || (t.elements > 0 && !t.data))
        throw Error("tensor " + quoted_text(t.name) + ": its shape does not match its " + std::to_string(t.elements) +
                    " elements and " + std::to_string(t.bytes) + " bytes");
    values.resize(kFiniteScanChunk);
    for (std::uint64_t start = 0; start < t.elements;) {
        const std::size_t n = std::size_t(std::min<std::uint64_t>(kFiniteScanChunk, t.elements - start));
        const std::byte* src = t.data + start / info.block_elems * info.block_bytes;
        // A file's alignment may be below a float's (or a block's f16 scale's): such chunks are copied first.
        if (reinterpret_cast<std::uintptr_t>(src) % alignof(float) != 0) {
            staged.assign(src, src + n / info.block_elems * info.block_bytes);
            src = staged.data();
        }
        dequantize_row(info.type, src, values.data(), n);
        bool finite = true;
        for (std::size_t i = 0; i < n; ++i) finite &= std::fabs(values[i]) <= FLT_MAX;  // false for NaN too; vectorises
        if (!finite)
            for (std::size_t i = 0; i < n; ++i)
                if (!std::isfinite(values[i])) return NonFinite{start + i, values[i]};
        start += n;
    }
    return std::nullopt;
}

}  // namespace detail

// Throws forge::Error naming the first tensor (in file order) of a type forge computes with that holds a
// NaN or an infinity, and where: row and column for matrices (higher dimensions folded into rows, as the
// kernels see them), the element for vectors. Tensors of other types are left to the loader, which refuses
// them.
inline void check_finite_tensors(const File& f) {
    std::vector<float> values;
    std::vector<std::byte> staged;
    for (const TensorInfo& t : f.tensors()) {
        const DTypeInfo* info = dtype_info(t.type_id);
        if (!info || !info->computable) continue;
        const auto bad = detail::first_non_finite(t, *info, values, staged);
        if (!bad) continue;
        const std::string where = t.dims.size() == 1 ? "element " + std::to_string(bad->index)
                                                     : "row " + std::to_string(bad->index / t.cols()) + ", column " +
                                                           std::to_string(bad->index % t.cols());
        throw Error("tensor " + quoted_text(t.name) + " (" + std::string(info->name) + ") holds " +
                    (std::isnan(bad->value) ? "NaN" : "an infinite value") + " at " + where + ": the file is corrupt");
    }
}

}  // namespace forge::gguf
