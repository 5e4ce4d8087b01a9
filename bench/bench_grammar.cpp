// Grammar-constrained sampling's cost per generated token: the allowed-token mask over a Qwen-shaped
// vocabulary (151,665 byte-level BPE tokens: all 256 bytes, words with and without a leading space,
// numbers, punctuation runs, indentation, and Qwen's special tokens), in the states a JSON document
// passes through. Inside a string nearly every token is allowed, which makes it the costliest state.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "forge/core/utf8.hpp"
#include "forge/grammar/json_schema.hpp"
#include "forge/grammar/token_mask.hpp"
#include "forge/tokenizer/tokenizer.hpp"
#include "forge/tokenizer/unicode.hpp"

namespace {

using namespace forge;

constexpr int kVocab = 151665;

// Raw bytes spelled in the GPT-2 alphabet, as byte-level BPE vocabularies store them.
std::string gpt2_text(std::string_view bytes) {
    std::string out;
    for (const char c : bytes) append_utf8(out, tokenizer::byte_to_char(static_cast<unsigned char>(c)));
    return out;
}

const Tokenizer& qwen_shaped() {
    static const Tokenizer tok = [] {
        std::vector<std::string> texts;
        std::set<std::string> seen;
        const auto add = [&](const std::string& bytes) {
            if (seen.insert(bytes).second) texts.push_back(gpt2_text(bytes));
        };
        for (int b = 0; b < 256; ++b) add(std::string(1, char(b)));
        add(" t");
        for (const char* p : {"{\"", "\":", "\",", "\"}", "},", "}}", "[\"", "\"]", "],", ": ", ", ", "\":\"", "\", \"", "\n", "\n\n", "{\n", "}\n"}) add(p);
        for (std::size_t n = 2; n <= 16; ++n) {
            add(std::string(n, ' '));
            add(std::string("\n").append(n, ' '));
        }
        std::mt19937 rng(7);
        const std::string letters = "abcdefghijklmnopqrstuvwxyz";
        while (texts.size() < std::size_t(kVocab - 5)) {
            std::string w;
            const unsigned kind = rng() % 10;
            if (kind < 5) w += ' ';
            if (kind == 9) {
                w += std::to_string(rng() % 100000);
            } else {
                const std::size_t len = 1 + rng() % 9;
                for (std::size_t i = 0; i < len; ++i) w += letters[rng() % 26];
                if (kind == 8) w[w.size() - len] = char(w[w.size() - len] - 32);
            }
            if (rng() % 16 == 0) w += "\",";
            add(w);
        }
        std::vector<tokenizer::TokenType> types(texts.size(), tokenizer::TokenType::normal);
        for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) texts.push_back(s), types.push_back(tokenizer::TokenType::control);
        for (const char* s : {"<tool_call>", "</tool_call>"}) texts.push_back(s), types.push_back(tokenizer::TokenType::user_defined);
        tokenizer::SpecialTokens special;
        special.eos = std::int32_t(texts.size() - 5);
        special.eot = std::int32_t(texts.size() - 3);
        return Tokenizer(tokenizer::Vocab(std::move(texts), {}, std::move(types), {gpt2_text(" ") + " t"}, special,
                                          tokenizer::VocabOptions{.model = tokenizer::Model::bpe, .pre = tokenizer::PreTokenizer::qwen2, .add_bos = false}));
    }();
    return tok;
}

std::shared_ptr<const grammar::VocabTrie> trie() {
    static const auto t = std::make_shared<const grammar::VocabTrie>(qwen_shaped());
    return t;
}

const char* const kSchema = R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
    "tags":{"type":"array","items":{"type":"string"}},"address":{"type":"object","properties":{"city":{"type":"string"},
    "zip":{"type":"string","format":"uuid"}},"required":["city"]}},"required":["name","age"],"additionalProperties":false})";

// The constraint after `prefix`, fed one single-byte token at a time.
grammar::TokenConstraint after(std::string_view prefix, std::size_t cached_states) {
    const auto g = std::make_shared<const grammar::Grammar>(grammar::json_schema_grammar(json::parse(kSchema)));
    grammar::TokenConstraint c(g, trie(), {}, cached_states);
    for (const char ch : prefix)
        for (std::int32_t id = 0; id < c.vocab().vocab_size(); ++id)
            if (c.vocab().bytes(id) == std::string(1, ch)) {
                c.accept(id);
                break;
            }
    return c;
}

// A state's first mask: a walk of the vocabulary trie (the mask cache is off).
void BM_Mask(benchmark::State& state, std::string_view prefix) {
    auto c = after(prefix, 0);
    std::vector<float> logits(std::size_t(kVocab), 0.0f);
    std::size_t allowed = 0;
    for (auto _ : state) {
        allowed = c.mask(logits);
        benchmark::DoNotOptimize(logits.data());
    }
    state.counters["allowed"] = double(allowed);
}
BENCHMARK_CAPTURE(BM_Mask, start, std::string_view(""))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Mask, after_brace, std::string_view("{ "))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Mask, in_string, std::string_view(R"({"name": "Ann)"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Mask, in_number, std::string_view(R"({"name": "Ann", "age": 4)"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Mask, in_nested_string, std::string_view(R"({"name": "A", "age": 4, "address": {"city": "Par)"))->Unit(benchmark::kMillisecond);

// A state seen before: its mask comes from the cache.
void BM_MaskRepeated(benchmark::State& state) {
    auto c = after(R"({"name": "Ann)", 16);
    std::vector<float> logits(std::size_t(kVocab), 0.0f);
    for (auto _ : state) {
        c.mask(logits);
        benchmark::DoNotOptimize(logits.data());
    }
}
BENCHMARK(BM_MaskRepeated)->Unit(benchmark::kMillisecond);

void BM_BuildTrie(benchmark::State& state) {
    const Tokenizer& tok = qwen_shaped();
    for (auto _ : state) benchmark::DoNotOptimize(grammar::VocabTrie(tok));
}
BENCHMARK(BM_BuildTrie)->Unit(benchmark::kMillisecond);

void BM_CompileSchema(benchmark::State& state) {
    const json::Value schema = json::parse(kSchema);
    for (auto _ : state) benchmark::DoNotOptimize(grammar::json_schema_grammar(schema));
}
BENCHMARK(BM_CompileSchema)->Unit(benchmark::kMicrosecond);

}  // namespace
