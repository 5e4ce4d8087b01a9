#pragma once
// Converts a model GGUF to Q8_0 or Q4_0 weights (forge quantize). Every matrix (a tensor of two or more
// dimensions, token_embd included, which a model with tied embeddings also uses as its output) is dequantized
// to F32 from whatever the file stores, then quantized to the target; vectors (norms, biases) become F32,
// which is what forge's kernels read them as. Metadata and vocabulary are copied in order, general.file_type
// set to the target's llama.cpp file type. Tensors already in the wanted type are copied, not requantized.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "forge/core/dtype.hpp"
#include "forge/core/error.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/gguf/writer.hpp"
#include "forge/quant/row.hpp"

namespace forge {

// The types forge quantize reads.
inline constexpr DType kQuantizeInputs[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                                            DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                                            DType::Q4_K, DType::Q5_K, DType::Q6_K};

// llama.cpp's general.file_type for an all-`t` model (enum llama_ftype): MOSTLY_Q8_0 = 7, MOSTLY_Q4_0 = 2.
inline std::uint32_t llama_file_type(DType t) {
    switch (t) {
        case DType::Q8_0: return 7;
        case DType::Q4_0: return 2;
        default: throw Error("forge quantize writes Q8_0 or Q4_0, not " + std::string(dtype_name(t)));
    }
}

struct QuantizeSummary {
    std::size_t requantized = 0;  // matrices converted to the target type
    std::size_t copied = 0;       // tensors already in the wanted type
    std::size_t widened = 0;      // vectors converted to F32
};

// Called after each tensor with the elements done so far and in total.
using QuantizeProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// The converted model as a Writer. Copied tensors point into `in`, which must outlive the Writer.
inline gguf::Writer quantize_model(const gguf::File& in, DType target, const QuantizeProgress& progress = {},
                                   QuantizeSummary* summary = nullptr) {
    const std::uint32_t file_type = llama_file_type(target);
    std::uint64_t total = 0;
    for (const auto& t : in.tensors()) {
        bool readable = false;
        for (const DType d : kQuantizeInputs) readable |= t.type_id == static_cast<std::uint32_t>(d);
        if (!readable) {
            std::string known;
            for (const DType d : kQuantizeInputs) known += (known.empty() ? "" : ", ") + std::string(dtype_name(d));
            throw Error("tensor '" + t.name + "' has type " + std::string(t.type_name()) +
                        ", which forge quantize cannot read (it reads " + known + ")");
        }
        const DType want = t.dims.size() >= 2 ? target : DType::F32;
        if (t.cols() % dtype_info(want).block_elems != 0)
            throw Error("tensor '" + t.name + "': rows of " + std::to_string(t.cols()) + " elements cannot be " +
                        std::string(dtype_name(want)) + " (blocks of " + std::to_string(dtype_info(want).block_elems) + ")");
        total += t.elements;
    }

    gguf::Writer out(in.version() == 2 ? 2 : 3);
    bool has_file_type = false;
    for (const auto& [key, value] : in.metadata()) {
        if (key == "general.file_type") {
            out.set(key, gguf::Value::u32(file_type));
            has_file_type = true;
        } else {
            out.set(key, value);
        }
    }
    if (!has_file_type) out.set("general.file_type", gguf::Value::u32(file_type));

    QuantizeSummary s;
    std::uint64_t done = 0;
    std::vector<float> row;
    for (const auto& t : in.tensors()) {
        const DType want = t.dims.size() >= 2 ? target : DType::F32;
        if (t.dtype() == want) {
            out.add_tensor(t.name, t.dims, want, std::span<const std::byte>(t.data, t.bytes));
            ++s.copied;
        } else {
            const std::size_t cols = t.cols(), rows = t.rows();
            const std::size_t src_row = row_bytes(t.dtype(), cols), dst_row = row_bytes(want, cols);
            std::vector<std::byte> data(rows * dst_row);
            row.resize(cols);
            for (std::size_t r = 0; r < rows; ++r) {
                dequantize_row(t.dtype(), t.data + r * src_row, row.data(), cols);
                quantize_row(want, row.data(), data.data() + r * dst_row, cols);
            }
            out.add_tensor(t.name, t.dims, want, std::move(data));
            ++(want == DType::F32 ? s.widened : s.requantized);
        }
        done += t.elements;
        if (progress) progress(done, total);
    }
    if (summary) *summary = s;
    return out;
}

// Reads `in_path`, writes the converted model to `out_path` (atomically: see gguf::Writer::write).
inline QuantizeSummary quantize_file(const std::string& in_path, const std::string& out_path, DType target,
                                     const QuantizeProgress& progress = {}) {
    const gguf::File in = gguf::File::open(in_path);
    QuantizeSummary s;
    quantize_model(in, target, progress, &s).write(out_path);
    return s;
}

}  // namespace forge
