// forge inspect: what a GGUF file holds and whether forge can run it, without loading any weights.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "forge/core/printable.hpp"
#include "forge/gguf/model_shape.hpp"
#include "forge/model/weights.hpp"
#include "forge/models/catalog.hpp"
#include "forge/traits/shape_rules.hpp"

namespace forge::cli {
namespace {

constexpr const char* kUsage = "usage: forge inspect FILE.gguf";

std::string dims_text(const gguf::TensorInfo& t) {
    std::string s = "[";
    for (std::size_t i = 0; i < t.dims.size(); ++i) s += (i ? ", " : "") + std::to_string(t.dims[i]);
    return s + "]";
}

// The model's shape, or why the file has none.
struct ShapeResult {
    std::optional<ModelShape> shape;
    std::string why_not;
};

ShapeResult read_shape(const gguf::File& f) {
    if (f.tensors().empty()) return {std::nullopt, "the file holds no tensors (vocab only)"};
    try {
        return {gguf::model_shape(f), {}};
    } catch (const Error& e) {
        return {std::nullopt, e.what()};
    }
}

// The optional RoPE frequency factors (llama3 RoPE scaling), checked as loading the model checks them.
void print_rope_freqs(const gguf::File& f, const ModelShape& s) {
    if (!f.find_tensor("rope_freqs.weight")) return;
    try {
        const auto v = detail::rope_freqs(f, s.head_dim);
        const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
        std::printf("  %-16s %zu factors from %g to %g (rope_freqs.weight, llama3 RoPE scaling)\n", "rope_freqs", v.size(),
                    double(*lo), double(*hi));
    } catch (const Error& e) {
        std::printf("  %-16s invalid: %s\n", "rope_freqs", printable(e.what()).c_str());
    }
}

void print_shape(const gguf::File& f, const ModelShape& s) {
    std::printf("model shape:\n");
    for_each_field([](std::string_view name, const auto& v) {
        std::printf("  %-16.*s %s\n", int(name.size()), name.data(), shape_field_text(v).c_str());
    }, s);
    print_rope_freqs(f, s);
    std::printf("  %-16s %zu bytes per token\n", "kv_cache (f16)", s.kv_cache_bytes_per_token());
    const auto problems = shape_problems(s);
    if (problems.empty()) {
        std::printf("shape rules: all hold\n");
    } else {
        std::printf("shape rules: %zu broken\n", problems.size());
        for (const auto& p : problems) std::printf("  - %s\n", p.c_str());
    }
}

void print_tensor_types(const gguf::File& f) {
    std::map<std::uint32_t, int> counts;  // by type id, so types list in ggml's order
    for (const auto& t : f.tensors()) ++counts[t.type_id];
    std::printf("tensor types:%s", counts.empty() ? " none" : "");
    for (const auto& [id, n] : counts) {
        const DTypeInfo& d = *dtype_info(id);  // the reader rejects unknown type ids
        std::printf(" %.*s x%d%s", int(d.name.size()), d.name.data(), n, d.computable ? "" : " (unsupported)");
    }
    std::printf("\n");
}

void print_vocab(const gguf::File& f) {
    const gguf::Array* tokens = f.get_array("tokenizer.ggml.tokens");
    const auto model = f.get_string("tokenizer.ggml.model");
    const auto pre = f.get_string("tokenizer.ggml.pre");
    if (tokens)
        std::printf("vocab: %zu tokens", tokens->items.size());
    else
        std::printf("vocab: none in the file");
    std::printf(", tokenizer model %s, pre %s\n", model ? printable(*model).c_str() : "(none)",
                pre ? printable(*pre).c_str() : "(none)");
}

void print_tensors(const gguf::File& f) {
    struct Row {
        std::string name, dims;
    };
    std::vector<Row> rows;
    std::size_t name_w = 4, dims_w = 4;
    for (const auto& t : f.tensors()) {
        rows.push_back({printable(t.name), dims_text(t)});
        name_w = std::max(name_w, rows.back().name.size());
        dims_w = std::max(dims_w, rows.back().dims.size());
    }
    std::printf("tensors: %zu\n", rows.size());
    if (!rows.empty())
        std::printf("  %-*s  %-*s  %-5s  %12s  %12s\n", int(name_w), "name", int(dims_w), "dims", "type", "file offset",
                    "bytes");
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& t = f.tensors()[i];
        const auto type = t.type_name();
        std::printf("  %-*s  %-*s  %-5.*s  %12llu  %12llu%s\n", int(name_w), rows[i].name.c_str(), int(dims_w),
                    rows[i].dims.c_str(), int(type.size()), type.data(),
                    static_cast<unsigned long long>(f.data_offset() + t.offset),
                    static_cast<unsigned long long>(t.bytes), dtype_info(t.type_id)->computable ? "" : "  unsupported");
        total += t.bytes;
    }
    std::printf("total weight bytes: %llu\n", static_cast<unsigned long long>(total));
}

// The compiled traits equal to the shape, or else the catalog entries of the same architecture that
// differ in the fewest fields, with those fields.
void print_match(const ModelShape& s) {
    if (const auto* m = models::find_compiled(s)) {
        std::printf("matches compiled traits: %.*s\n", int(m->name.size()), m->name.data());
        return;
    }
    std::printf("matches compiled traits: none\n");
    std::vector<std::pair<const models::NamedShape*, std::vector<std::string>>> same_arch;
    for (const auto& m : models::kCatalog)
        if (m.shape.arch == s.arch) same_arch.emplace_back(&m, shape_mismatches(m.shape, s));
    if (same_arch.empty()) {
        std::printf("no compiled traits for architecture %.*s\n", int(arch_name(s.arch).size()), arch_name(s.arch).data());
        return;
    }
    std::size_t fewest = SIZE_MAX;
    for (const auto& [m, diffs] : same_arch) fewest = std::min(fewest, diffs.size());
    for (const auto& [m, diffs] : same_arch) {
        if (diffs.size() != fewest) continue;
        std::printf("closest compiled traits: %.*s (%zu fields differ)\n", int(m->name.size()), m->name.data(),
                    diffs.size());
        for (const auto& d : diffs) std::printf("  %s\n", d.c_str());
    }
}

}  // namespace

int inspect(int argc, char** argv) {
    if (argc == 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help")) {
        std::printf("%s\n", kUsage);
        return 0;
    }
    if (argc != 2) {
        std::fprintf(stderr, "%s\n", kUsage);
        return 2;
    }
    const gguf::File f = gguf::File::open(argv[1]);
    const auto arch = f.get_string("general.architecture");

    std::printf("file: %s\n", printable(argv[1]).c_str());
    std::printf("gguf version: %u\n", f.version());
    std::printf("alignment: %zu\n", f.alignment());
    std::printf("architecture: %s\n", arch ? printable(*arch).c_str() : "(none)");
    const ShapeResult shape = read_shape(f);
    if (shape.shape)
        print_shape(f, *shape.shape);
    else
        std::printf("not a model: %s\n", printable(shape.why_not).c_str());
    print_tensor_types(f);
    print_vocab(f);
    print_tensors(f);
    if (shape.shape) print_match(*shape.shape);
    return 0;
}

}  // namespace forge::cli
