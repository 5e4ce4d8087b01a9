// Makes the seed corpus for gguf_reader_fuzz from the test GGUFs, so no binaries live in the repository.
// Each test file gives a small valid file (its metadata with arrays cut to a few items, its tensors cut to
// their first row) and, if it has tensors, that file's header alone. Small seeds keep the fuzzer's mutations on the header
// rather than in megabytes of weights. Tiny synthetic models, one per weight type, are whole models that
// load, so mutations of them reach the forward pass.
//
//   gguf_fuzz_seeds <testdata dir> <output dir>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "forge/core/dtype.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/gguf/synthetic_model.hpp"
#include "forge/gguf/writer.hpp"

namespace fs = std::filesystem;
using namespace forge::gguf;

namespace {

constexpr std::size_t kArrayItems = 8;

void save(const fs::path& path, std::span<const std::byte> bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw forge::Error("cannot write '" + path.string() + "'");
}

std::vector<std::byte> shrink(const File& f) {
    Writer w(f.version());
    for (const auto& [key, value] : f.metadata()) {
        Value v = value;
        if (auto* a = std::get_if<Array>(&v.data); a && a->items.size() > kArrayItems) a->items.resize(kArrayItems);
        w.set(key, v);
    }
    for (const auto& t : f.tensors()) {
        std::vector<std::uint64_t> dims(t.dims.size(), 1);
        dims[0] = t.dims[0];
        w.add_tensor(t.name, dims, t.dtype(), {t.data, forge::row_bytes(t.dtype(), t.dims[0])});
    }
    return w.bytes();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s <testdata dir> <output dir>\n", argv[0]);
        return 2;
    }
    try {
        const fs::path out = argv[2];
        fs::create_directories(out);
        std::size_t seeds = 0;
        for (const char* dir : {"models", "tokenizer"}) {
            for (const auto& entry : fs::directory_iterator(fs::path(argv[1]) / dir)) {
                if (entry.path().extension() != ".gguf") continue;
                const std::vector<std::byte> small = shrink(File::open(entry.path().string()));
                const std::string stem = entry.path().stem().string();
                save(out / (stem + ".gguf"), small);
                ++seeds;
                const std::uint64_t header = File::parse(small).data_offset();
                if (header < small.size()) {  // vocab-only files are all header
                    save(out / (stem + ".header"), std::span(small).first(header));
                    ++seeds;
                }
            }
        }
        for (const forge::DType type : {forge::DType::F32, forge::DType::F16, forge::DType::Q8_0, forge::DType::Q4_0}) {
            const forge::ModelShape tiny{.vocab = 16, .hidden = 32, .ffn = 32, .layers = 1, .heads = 4, .kv_heads = 2, .head_dim = 8,
                                         .max_context = 16, .weights = type};
            save(out / ("tiny-" + std::string(forge::dtype_name(type)) + ".gguf"), synthetic_model(tiny, 1).bytes());
            ++seeds;
        }
        std::printf("%zu seeds in %s\n", seeds, out.c_str());
        return seeds > 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gguf_fuzz_seeds: %s\n", e.what());
        return 1;
    }
}
