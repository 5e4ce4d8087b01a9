// with_vocab MODEL.gguf VOCAB.gguf OUT.gguf: MODEL's weights and metadata with VOCAB's tokenizer (all its
// tokenizer.* keys) in place of MODEL's. The synthetic bench models carry a placeholder vocabulary that no
// text maps onto (llama-server cannot tokenize a prompt with it), so a serving benchmark, which sends text,
// gives them a real one. A vocabulary smaller than the model's is padded with placeholder tokens that text
// never produces, so the embedding and output matrices keep their shapes and the speed stays the model's.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/gguf/writer.hpp"

using namespace forge;
using namespace forge::gguf;

namespace {

constexpr std::string_view kTokenizer = "tokenizer.";

std::size_t token_count(const File& f) {
    const Array* tokens = f.get_array("tokenizer.ggml.tokens");
    if (!tokens) throw Error(f.path() + " has no tokenizer.ggml.tokens");
    return tokens->items.size();
}

// VOCAB's per-token array `key` grown to `n` entries with `pad(i)`.
Value padded(const Value& v, const std::string& key, std::size_t n, Value (*pad)(std::size_t)) {
    const auto& a = std::get<Array>(v.data);
    std::vector<Value> items = a.items;
    if (items.size() > n)
        throw Error(key + " has " + std::to_string(items.size()) + " entries, more than the model's " + std::to_string(n) + " tokens");
    for (std::size_t i = items.size(); i < n; ++i) items.push_back(pad(i));
    return Value::array(a.elem, std::move(items));
}

void write_with_vocab(const std::string& model_path, const std::string& vocab_path, const std::string& out) {
    const File model = File::open(model_path), vocab = File::open(vocab_path);
    const std::size_t n = token_count(model);
    Writer w(model.version());
    for (const auto& [key, value] : model.metadata())
        if (!key.starts_with(kTokenizer)) w.set(key, value);
    for (const auto& [key, value] : vocab.metadata()) {
        if (!key.starts_with(kTokenizer)) continue;
        if (key == "tokenizer.ggml.tokens")
            w.set(key, padded(value, key, n, [](std::size_t i) { return Value::string("<unused" + std::to_string(i) + ">"); }));
        else if (key == "tokenizer.ggml.scores")
            w.set(key, padded(value, key, n, [](std::size_t) { return Value::f32(-1e9f); }));
        else if (key == "tokenizer.ggml.token_type")  // normal: rendered as its text, as any generated token is
            w.set(key, padded(value, key, n, [](std::size_t) { return Value::i32(1); }));
        else
            w.set(key, value);
    }
    for (const TensorInfo& t : model.tensors())
        w.add_tensor(t.name, t.dims, t.dtype(), std::span(t.data, std::size_t(t.bytes)));
    w.write(out);
    std::printf("%s: %s with the vocabulary of %s (%zu tokens, padded to %zu)\n", out.c_str(), model_path.c_str(),
                vocab_path.c_str(), token_count(vocab), n);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: with_vocab MODEL.gguf VOCAB.gguf OUT.gguf\n");
        return 2;
    }
    try {
        write_with_vocab(argv[1], argv[2], argv[3]);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "with_vocab: %s\n", e.what());
        return 1;
    }
}
