// forge::Tokenizer against llama.cpp: its tokenizer test vectors, the prompts of its reference runs, and the
// golden text of stories260K; plus streaming decode, special tokens, hostile input and vocabulary validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <map>
#include <ostream>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/json/json.hpp"
#include "forge/tokenizer/case_file.hpp"
#include "forge/tokenizer/pretokenize.hpp"
#include "forge/tokenizer/tokenizer.hpp"
#include "forge/tokenizer/vocab.hpp"
#include "reference.hpp"
#include "run_process.hpp"
#include "testdata.hpp"

namespace {

using forge::Error;
using forge::StreamDecoder;
using forge::Tokenizer;
using forge::test::read_file;
using forge::test::testdata;
using Ids = std::vector<std::int32_t>;

// llama.cpp's vocabulary `name`: four from the shared test data, the others kept in the repository.
std::string vocab_path(const std::string& name) {
    static const std::set<std::string> shared = {"llama-spm", "gpt-2", "gpt2-llama-bpe", "gpt2-qwen2"};
    const std::string file = "ggml-vocab-" + name + ".gguf";
    return shared.count(name) ? testdata("tokenizer/" + file) : std::string(FORGE_SOURCE_DIR) + "/tests/data/tokenizer/" + file;
}

// Loading the 50k-token vocabularies takes a moment, so each is loaded once per test binary.
const Tokenizer& vocab_tokenizer(const std::string& name) {
    static std::map<std::string, Tokenizer> cache;
    auto it = cache.find(name);
    if (it == cache.end()) it = cache.emplace(name, Tokenizer::open(vocab_path(name))).first;
    return it->second;
}
const Tokenizer& model_tokenizer(const std::string& file) {
    static std::map<std::string, Tokenizer> cache;
    auto it = cache.find(file);
    if (it == cache.end()) it = cache.emplace(file, Tokenizer::open(forge::test::model_path(file))).first;
    return it->second;
}

std::string show(const Ids& ids) {
    std::string s;
    for (const auto id : ids) s.append(" ").append(std::to_string(id));
    return s.empty() ? " (none)" : s;
}

// The ids of a .out file's text: one line per case, the ids separated by spaces.
std::vector<Ids> parse_ids(const std::string& text) {
    std::vector<Ids> out;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        Ids ids;
        for (std::int32_t id; words >> id;) ids.push_back(id);
        out.push_back(ids);
    }
    return out;
}

bool valid_utf8(std::string_view s) {
    try {
        forge::check_utf8(s);
        return true;
    } catch (const Error&) {
        return false;
    }
}

// Expects `f` to throw a forge::Error whose message contains `needle`.
template <class F>
void expect_error(F&& f, const std::string& needle) {
    try {
        f();
        ADD_FAILURE() << "no error; expected one mentioning \"" << needle << "\"";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "error was: " << e.what();
    }
}

// ---------------------------------------------------------------------------------------------------------
// llama.cpp's tokenizer test vectors: every case must encode to exactly the expected ids.

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, EveryCaseEncodesExactlyAndRoundTrips) {
    const std::string base = vocab_path(GetParam());
    const Tokenizer& tok = vocab_tokenizer(GetParam());
    const auto cases = forge::tokenizer::parse_case_file(read_file(base + ".inp"));
    const auto expected = parse_ids(read_file(base + ".out"));
    ASSERT_EQ(cases.size(), expected.size()) << "cases in .inp vs lines in .out";
    ASSERT_GT(cases.size(), 40u);
    std::size_t matched = 0;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const Ids got = tok.encode(cases[i], false);
        if (got == expected[i]) {
            ++matched;
        } else {
            ADD_FAILURE() << "case " << i << " text [" << cases[i] << "]\n  expected" << show(expected[i]) << "\n  got     " << show(got);
        }
        EXPECT_EQ(tok.decode(got), cases[i]) << "case " << i << " does not round-trip";
    }
    std::printf("[          ] %s: %zu/%zu cases match\n", GetParam(), matched, cases.size());
    EXPECT_EQ(matched, cases.size());
}

// `forge tokenize --file` writes the .out format: a line per case, each id after a space, as the older .out
// files have it byte for byte (newer ones leave out the first space).
TEST_P(VocabVectors, CliFileOutputIsTheOutFile) {
    const std::string base = vocab_path(GetParam());
    const auto r = forge::test::run_process({FORGE_CLI, "tokenize", "-m", base, "--file", base + ".inp"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string expected = read_file(base + ".out");
    EXPECT_EQ(parse_ids(r.out), parse_ids(expected));
    if (expected.starts_with(' ')) {
        EXPECT_EQ(r.out, expected);
    }
    EXPECT_EQ(r.err, "");
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, VocabVectors,
                         ::testing::Values("llama-spm", "gpt-2", "gpt2-llama-bpe", "gpt2-qwen2", "phi-3", "mpt", "starcoder",
                                           "refact", "command-r", "falcon", "deepseek-coder", "deepseek-llm", "qwen35",
                                           "gemma-4"),
                         [](const auto& info) {
                             std::string name = info.param;
                             for (char& c : name)
                                 if (c == '-') c = '_';
                             return name;
                         });

// ---------------------------------------------------------------------------------------------------------
// The prompts llama.cpp tokenized for its reference runs: decoding them and encoding the text again (with
// BOS where the vocabulary adds one) must give the same ids.

struct ReferencePrompt {
    const char* json;
    const char* model;
};

void PrintTo(const ReferencePrompt& p, std::ostream* os) { *os << p.json; }

class ReferencePrompts : public ::testing::TestWithParam<ReferencePrompt> {};

TEST_P(ReferencePrompts, DecodeThenEncodeGivesTheSameIds) {
    const Tokenizer& tok = model_tokenizer(GetParam().model);
    const Ids prompt = forge::test::load_reference(GetParam().json).prompt;
    ASSERT_FALSE(prompt.empty());
    const std::string text = tok.decode(prompt);
    EXPECT_EQ(tok.encode(text, tok.add_bos()), prompt) << "text [" << text << "]";
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, ReferencePrompts,
                         ::testing::Values(ReferencePrompt{"stories260K.golden.json", "stories260K.gguf"},
                                           ReferencePrompt{"stories260K.once.json", "stories260K.gguf"},
                                           ReferencePrompt{"stories260K.park.json", "stories260K.gguf"},
                                           ReferencePrompt{"synth-llama-f32.json", "synth-llama-f32.gguf"},
                                           ReferencePrompt{"synth-llama-f16.json", "synth-llama-f32.gguf"},
                                           ReferencePrompt{"synth-llama-q8_0.json", "synth-llama-f32.gguf"},
                                           ReferencePrompt{"synth-llama-q4_0.json", "synth-llama-f32.gguf"},
                                           ReferencePrompt{"synth-llama256-f32.json", "synth-llama256-f32.gguf"},
                                           ReferencePrompt{"synth-llama256-Q6_K.json", "synth-llama256-f32.gguf"},
                                           ReferencePrompt{"synth-llama256-Q4_K_M.json", "synth-llama256-f32.gguf"},
                                           ReferencePrompt{"synth-qwen2-q8_0.json", "synth-qwen2-q8_0.gguf"}),
                         [](const auto& info) {
                             std::string name = info.param.json;
                             name = name.substr(0, name.size() - 5);
                             for (char& c : name)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return name;
                         });

TEST(TokenizerReference, StoriesPromptsAreTheTextLlamaCppTokenized) {
    const Tokenizer& tok = model_tokenizer("stories260K.gguf");
    EXPECT_EQ(tok.decode(forge::test::load_reference("stories260K.once.json").prompt), "Once upon a time");
    EXPECT_EQ(tok.encode("Once upon a time", true), forge::test::load_reference("stories260K.once.json").prompt);
}

// 200 tokens of stories260K decode to the text llama2.c prints for them, whole or streamed.
TEST(TokenizerReference, GoldenGenerationDecodesToItsText) {
    const Tokenizer& tok = model_tokenizer("stories260K.gguf");
    const auto doc = forge::json::parse(read_file(testdata("reference/stories260K.golden.json")));
    const Ids ids = forge::test::ids(doc.at("generated"));
    const std::string& text = doc.at("text").as_string();
    EXPECT_EQ(tok.decode(ids), text);
    StreamDecoder stream(tok, true);
    std::string streamed;
    for (const auto id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    EXPECT_EQ(streamed, text);
}

// ---------------------------------------------------------------------------------------------------------
// Streaming decode.

// Streams `ids` and checks every piece is valid UTF-8 and the pieces add up to the full decode.
void expect_streams_like_decode(const Tokenizer& tok, const Ids& ids) {
    StreamDecoder stream(tok, true);
    std::string all;
    std::size_t held_back = 0;
    for (const auto id : ids) {
        const std::string piece = stream.push(id);
        EXPECT_TRUE(valid_utf8(piece)) << "piece for id " << id;
        if (piece.empty()) ++held_back;
        all += piece;
    }
    const std::string rest = stream.flush();
    EXPECT_EQ(rest, "");
    EXPECT_EQ(all + rest, tok.decode(ids));
    EXPECT_GT(held_back, 0u) << "the ids were meant to split characters across tokens";
}

TEST(TokenizerStream, SentencePieceByteTokensSplitCharacters) {
    const Tokenizer& tok = vocab_tokenizer("llama-spm");
    const std::string text = "llama \xF0\x9F\xA6\x99 and \xF0\x9F\x98\x81 in \xE1\x9E\x80\xE1\x9E\xB6";  // 🦙 😁 ក​ា
    const Ids ids = tok.encode(text, true);
    EXPECT_EQ(tok.decode(ids), text);
    expect_streams_like_decode(tok, ids);
}

TEST(TokenizerStream, ByteLevelTokensSplitCharacters) {
    const Tokenizer& tok = vocab_tokenizer("gpt-2");
    const std::string text = "\xF0\x9F\xA6\x99\xF0\x9F\xA6\x99 \xE6\x88\x91\xE6\x83\xB3 Gr\xC3\xBC\xC3\x9F" "e";  // 🦙🦙 我想 Grüße
    const Ids ids = tok.encode(text, false);
    EXPECT_EQ(tok.decode(ids), text);
    expect_streams_like_decode(tok, ids);
}

TEST(TokenizerStream, InvalidAndUnfinishedBytesBecomeReplacementCharacters) {
    const Tokenizer& tok = vocab_tokenizer("llama-spm");
    const auto byte = [&](unsigned b) { return *tok.vocab().find(std::string("<0x") + "0123456789ABCDEF"[b >> 4] + "0123456789ABCDEF"[b & 15] + ">"); };
    StreamDecoder stream(tok);
    EXPECT_EQ(stream.push(byte(0xE2)), "");
    EXPECT_EQ(stream.push(byte(0x96)), "");
    EXPECT_EQ(stream.push(byte(0x41)), "\xEF\xBF\xBD" "A");  // the 3-byte character was cut short
    EXPECT_EQ(stream.push(byte(0xFF)), "\xEF\xBF\xBD");
    EXPECT_EQ(stream.push(byte(0xF0)), "");
    EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
    EXPECT_EQ(stream.flush(), "");
}

TEST(TokenizerStream, ContinuationKeepsTheLeadingSpace) {
    const Tokenizer& tok = model_tokenizer("stories260K.gguf");
    const Ids ids = tok.encode("Once upon", false);
    StreamDecoder continuing(tok);
    std::string text;
    for (const auto id : ids) text += continuing.push(id);
    EXPECT_EQ(text, " Once upon");
    EXPECT_EQ(tok.decode(ids), "Once upon");
}

// ---------------------------------------------------------------------------------------------------------
// The facade: special ids, BOS, special tokens in text, hostile input.

TEST(Tokenizer, SpecialIdsAndBosDefaults) {
    const Tokenizer& stories = model_tokenizer("stories260K.gguf");
    EXPECT_EQ(stories.vocab_size(), 512);
    EXPECT_EQ(stories.bos(), 1);
    EXPECT_EQ(stories.eos(), 2);
    EXPECT_TRUE(stories.add_bos());  // SentencePiece default
    EXPECT_TRUE(stories.is_eog(2));
    EXPECT_FALSE(stories.is_eog(1));
    EXPECT_EQ(stories.token_text(1), "<s>");
    EXPECT_EQ(stories.decode(1), "");
    EXPECT_EQ(stories.decode(1, true), "<s>");
    EXPECT_EQ(stories.encode("", true), Ids{1});
    EXPECT_EQ(stories.encode("", false), Ids{});

    EXPECT_FALSE(vocab_tokenizer("gpt-2").add_bos());         // byte-level BPE default
    EXPECT_TRUE(vocab_tokenizer("gpt2-llama-bpe").add_bos());  // Llama 3 vocabularies start with BOS
    EXPECT_TRUE(vocab_tokenizer("gpt-2").is_eog(50256));
    EXPECT_TRUE(vocab_tokenizer("command-r").add_bos());  // the file says so
    const Tokenizer& gemma = vocab_tokenizer("gemma-4");
    EXPECT_TRUE(gemma.add_bos());
    EXPECT_EQ(gemma.bos(), 2);
    EXPECT_TRUE(gemma.is_eog(1));    // <eos>
    EXPECT_TRUE(gemma.is_eog(106));  // <turn|>, which ends a chat turn
    EXPECT_FALSE(gemma.is_eog(105));

    const Tokenizer& qwen = model_tokenizer("synth-qwen2-q8_0.gguf");
    EXPECT_FALSE(qwen.add_bos());  // the file says so
    EXPECT_EQ(qwen.bos(), 317);
    EXPECT_EQ(qwen.eos(), 319);
    EXPECT_TRUE(qwen.is_eog(317));  // <|endoftext|>
    EXPECT_TRUE(qwen.is_eog(319));  // <|im_end|>
    EXPECT_FALSE(qwen.is_eog(318));
    EXPECT_FALSE(qwen.is_eog(-1));
    expect_error([&] { (void)qwen.token_text(320); }, "token id 320 is outside the vocabulary of 320 tokens");
}

TEST(Tokenizer, SpecialTokensInTextOnlyWhenAsked) {
    const Tokenizer& qwen = model_tokenizer("synth-qwen2-q8_0.gguf");
    const std::string chat = "<|im_start|>user\nthe end<|im_end|>\n";
    const Ids parsed = qwen.encode(chat, false, true);
    ASSERT_GE(parsed.size(), 4u);
    EXPECT_EQ(parsed.front(), 318);
    EXPECT_EQ(parsed[parsed.size() - 2], 319);
    EXPECT_EQ(Ids(parsed.begin() + 1, parsed.end() - 2), qwen.encode("user\nthe end", false));
    EXPECT_EQ(qwen.decode(parsed, true), chat);
    EXPECT_EQ(qwen.decode(parsed), "user\nthe end\n");

    const Ids literal = qwen.encode(chat, false);
    EXPECT_EQ(std::count(literal.begin(), literal.end(), 318), 0);
    EXPECT_EQ(qwen.decode(literal), chat);

    // SentencePiece starts every text run after a special token with the space prefix.
    const Tokenizer& spm = vocab_tokenizer("llama-spm");
    EXPECT_EQ(spm.encode("<s>Hello</s>", false, true), (Ids{1, 15043, 2}));
    EXPECT_EQ(spm.encode("Hello", false), Ids{15043});
}

// llama.cpp drops the whitespace after Phi-3's special tokens (but <unk>, <s> and <|endoftext|>): after the
// user-defined </s> even when specials are not parsed, after control tokens when they are.
TEST(Tokenizer, Phi3DropsWhitespaceAfterSpecialTokens) {
    const Tokenizer& phi = vocab_tokenizer("phi-3");
    auto cat = [](std::initializer_list<Ids> parts) {
        Ids out;
        for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
        return out;
    };
    EXPECT_EQ(phi.encode("a</s> \n\tb", false), cat({phi.encode("a", false), {2}, phi.encode("b", false)}));
    EXPECT_EQ(phi.encode("<|user|>\nHi<|end|>\n", false, true), cat({{32010}, phi.encode("Hi", false), {32007}}));
    EXPECT_EQ(phi.encode("<s> x", false, true), cat({{1}, phi.encode(" x", false)}));
    EXPECT_EQ(phi.decode(phi.encode("<|user|>\n", false)), "<|user|>\n");  // not parsed: text, nothing dropped
    const Tokenizer& spm = vocab_tokenizer("llama-spm");
    EXPECT_EQ(spm.encode("</s>\nb", false, true), cat({{2}, spm.encode("\nb", false)}));
}

TEST(Tokenizer, InvalidUtf8IsAnErrorNamingTheOffset) {
    for (const std::string& name : {std::string("llama-spm"), std::string("gpt-2")}) {
        const Tokenizer& tok = vocab_tokenizer(name);
        expect_error([&] { tok.encode("abc\xFF", false); }, "invalid UTF-8 at byte offset 3");
        expect_error([&] { tok.encode("ab\xE2\x96", false); }, "invalid UTF-8 at byte offset 2: the text ends inside");
        expect_error([&] { tok.encode("\xC0\x80", false); }, "byte offset 0: malformed");      // overlong NUL
        expect_error([&] { tok.encode("x\xED\xA0\x80", false); }, "byte offset 1: malformed");  // surrogate
        expect_error([&] { tok.encode("\xF4\x90\x80\x80", false); }, "byte offset 0");          // past U+10FFFF
        expect_error([&] { tok.encode("ok \x80", false); }, "byte offset 3");                   // stray continuation
    }
}

// Merging is O(n log n): a megabyte of text, or a megabyte-long word, encodes in about a second.
TEST(Tokenizer, MegabyteInputsEncode) {
    std::string prose;
    while (prose.size() < (1u << 20)) prose += "The quick brown fox, 12345 times: \xC3\xBC\xC3\x9F \xF0\x9F\xA6\x99!\n  ";
    const std::string one_word(1u << 20, 'a');
    for (const char* name : {"llama-spm", "gpt-2", "gpt2-llama-bpe", "gpt2-qwen2", "falcon", "deepseek-llm", "gemma-4"}) {
        const Tokenizer& tok = vocab_tokenizer(name);
        const Ids ids = tok.encode(prose, false);
        EXPECT_GT(ids.size(), prose.size() / 4) << name;
        EXPECT_EQ(tok.decode(ids), prose) << name;
    }
    for (const char* name : {"llama-spm", "gpt-2"}) {
        const Ids ids = vocab_tokenizer(name).encode(one_word, false);
        EXPECT_LE(ids.size(), one_word.size() / 4 + 2) << name;  // both vocabularies spell a's four at a time
        EXPECT_EQ(vocab_tokenizer(name).decode(ids), one_word) << name;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Pre-tokenizers, piece by piece (expectations from the patterns run by a regex engine with \p support).

std::vector<std::string> pieces(forge::tokenizer::PreTokenizer pre, std::string_view text) {
    const std::u32string cps = forge::decode_utf8(text);
    std::vector<std::string> out;
    std::size_t begin = 0;
    for (const std::size_t end : forge::tokenizer::pre_tokenize(pre, cps)) {
        std::string s;
        for (std::size_t i = begin; i < end; ++i) forge::append_utf8(s, cps[i]);
        out.push_back(s);
        begin = end;
    }
    return out;
}

TEST(PreTokenizer, FamiliesSplitLikeTheirPatterns) {
    using P = forge::tokenizer::PreTokenizer;
    using V = std::vector<std::string>;
    const std::string a = "Hello world's  123 !!\n", b = "I'M 12345 (x)\n\n  y";
    EXPECT_EQ(pieces(P::gpt2, a), (V{"Hello", " world", "'s", " ", " 123", " !!", "\n"}));
    EXPECT_EQ(pieces(P::llama3, a), (V{"Hello", " world", "'s", " ", " ", "123", " !!\n"}));
    EXPECT_EQ(pieces(P::qwen2, a), (V{"Hello", " world", "'s", " ", " ", "1", "2", "3", " !!\n"}));
    EXPECT_EQ(pieces(P::starcoder, a), (V{"Hello", " world", "'s", "  ", "1", "2", "3", " !!", "\n"}));
    EXPECT_EQ(pieces(P::gpt2, b), (V{"I", "'", "M", " 12345", " (", "x", ")", "\n\n ", " y"}));
    EXPECT_EQ(pieces(P::llama3, b), (V{"I", "'M", " ", "123", "45", " (", "x", ")\n\n", " ", " y"}));
    EXPECT_EQ(pieces(P::qwen2, b), (V{"I", "'M", " ", "1", "2", "3", "4", "5", " (", "x", ")\n\n", " ", " y"}));
    EXPECT_EQ(pieces(P::starcoder, b), (V{"I", "'", "M", " ", "1", "2", "3", "4", "5", " (", "x", ")", "\n\n ", " y"}));
    // Unicode classes: Cyrillic letters, Arabic-Indic digits, an ideographic space.
    EXPECT_EQ(pieces(P::gpt2, "\xD0\xBC\xD0\xB8\xD1\x80 \xD9\xA3\xD9\xA4\xE3\x80\x80x"),
              (V{"\xD0\xBC\xD0\xB8\xD1\x80", " \xD9\xA3\xD9\xA4", "\xE3\x80\x80", "x"}));
    // No pre-tokenizer named: punctuation runs first, then gpt2, then digit runs cut into threes.
    EXPECT_EQ(pieces(P::standard, "a+b=12345!"), (V{"a", "+", "b", "=", "123", "45", "!"}));
    EXPECT_EQ(pieces(P::gpt2, ""), V{});
}

// The families below each part from gpt2 on their text; the expectations are what llama.cpp's splitter
// (unicode_regex_split with the family's patterns) makes of the same text.
using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Qwen35KeepsCombiningMarksInTheirWord) {
    using P = forge::tokenizer::PreTokenizer;
    const std::string text = "cafe\xCC\x81 x\xCC\x81! 12";  // e and x with U+0301 combining acute
    EXPECT_EQ(pieces(P::qwen35, text), (Pieces{"cafe\xCC\x81", " x\xCC\x81", "!", " ", "1", "2"}));
    EXPECT_EQ(pieces(P::qwen2, text), (Pieces{"cafe", "\xCC\x81", " x", "\xCC\x81!", " ", "1", "2"}));
    EXPECT_EQ(pieces(P::gpt2, text), (Pieces{"cafe", "\xCC\x81", " x", "\xCC\x81!", " 12"}));
}

// Punctuation runs (backquote included) come out first, so contractions never form; then digits in threes.
TEST(PreTokenizer, FalconSplitsPunctuationFirstAndDigitsInThrees) {
    using P = forge::tokenizer::PreTokenizer;
    const std::string text = "I'm `x` 12345";
    EXPECT_EQ(pieces(P::falcon, text), (Pieces{"I", "'", "m", " ", "`", "x", "`", " ", "123", "45"}));
    EXPECT_EQ(pieces(P::standard, text), (Pieces{"I", "'", "m", " `", "x", "`", " ", "123", "45"}));
    EXPECT_EQ(pieces(P::gpt2, text), (Pieces{"I", "'m", " `", "x", "`", " 12345"}));
}

// \r and \n alone, letters or punctuation after at most one whitespace, CJK runs, one digit per piece; the
// ideographic space (whitespace) leads the punctuation after it.
TEST(PreTokenizer, DeepseekCoderSplitsNewlinesDigitsAndCjk) {
    using P = forge::tokenizer::PreTokenizer;
    const std::string text = "x\r\ny  z,. 12 \xE6\x88\x91\xE4\xBB\xAC\xE3\x80\x80!";  // ... 我们 U+3000 !
    EXPECT_EQ(pieces(P::deepseek_coder, text), (Pieces{"x", "\r", "\n", "y", " ", " z", ",.", " ", "1", "2", " ",
                                                       "\xE6\x88\x91\xE4\xBB\xAC", "\xE3\x80\x80!"}));
    EXPECT_EQ(pieces(P::gpt2, text), (Pieces{"x", "\r", "\n", "y", " ", " z", ",.", " 12", " \xE6\x88\x91\xE4\xBB\xAC",
                                             "\xE3\x80\x80", "!"}));
}

// deepseek-llm's letters are a list of ranges without Armenian lower case (U+0561); its "punctuation" holds
// the ASCII letters too, so they part from the ß beside them; whitespace ending a piece is cut off; U+3001
// falls in its CJK class; a run of digits of any script stays whole.
TEST(PreTokenizer, DeepseekLlmUsesItsOwnClasses) {
    using P = forge::tokenizer::PreTokenizer;
    const std::string text = "x\xD5\xA1y Stra\xC3\x9F" "e \xE2\x82\xAC 12\xD9\xA3\n\xE3\x80\x80\xE3\x80\x81\xE4\xB8\xAD ";
    EXPECT_EQ(pieces(P::deepseek_llm, text),
              (Pieces{"x", "\xD5\xA1", "y", " Stra", "\xC3\x9F", "e", " ", "\xE2\x82\xAC", " ", "12\xD9\xA3", "\n",
                      "\xE3\x80\x80", "\xE3\x80\x81", "\xE4\xB8\xAD", " "}));
    EXPECT_EQ(pieces(P::gpt2, text), (Pieces{"x\xD5\xA1y", " Stra\xC3\x9F" "e", " \xE2\x82\xAC", " 12\xD9\xA3", "\n",
                                             "\xE3\x80\x80", "\xE3\x80\x81", "\xE4\xB8\xAD", " "}));
}

// Gemma 4 merges across words: only newline runs part the text.
TEST(PreTokenizer, Gemma4SplitsOnlyAtNewlines) {
    using P = forge::tokenizer::PreTokenizer;
    EXPECT_EQ(pieces(P::gemma4, "a b\n\nc's \n"), (Pieces{"a b", "\n\n", "c's ", "\n"}));
    EXPECT_EQ(pieces(P::gpt2, "a b\n\nc's \n"), (Pieces{"a", " b", "\n", "\n", "c", "'s", " \n"}));
}

TEST(PreTokenizer, NamesFromGguf) {
    using P = forge::tokenizer::PreTokenizer;
    using forge::tokenizer::pre_tokenizer_from_name;
    EXPECT_EQ(pre_tokenizer_from_name("gpt-2"), P::gpt2);
    EXPECT_EQ(pre_tokenizer_from_name("mpt"), P::gpt2);
    EXPECT_EQ(pre_tokenizer_from_name("llama-bpe"), P::llama3);
    EXPECT_EQ(pre_tokenizer_from_name("qwen2"), P::qwen2);
    EXPECT_EQ(pre_tokenizer_from_name("qwen35"), P::qwen35);
    EXPECT_EQ(pre_tokenizer_from_name("smollm"), P::starcoder);
    EXPECT_EQ(pre_tokenizer_from_name("refact"), P::starcoder);
    EXPECT_EQ(pre_tokenizer_from_name("command-r"), P::starcoder);
    EXPECT_EQ(pre_tokenizer_from_name("falcon"), P::falcon);
    EXPECT_EQ(pre_tokenizer_from_name("deepseek-coder"), P::deepseek_coder);
    EXPECT_EQ(pre_tokenizer_from_name("deepseek-llm"), P::deepseek_llm);
    EXPECT_EQ(pre_tokenizer_from_name("gemma4"), P::gemma4);
    EXPECT_EQ(pre_tokenizer_from_name(""), P::standard);
    EXPECT_EQ(pre_tokenizer_from_name("default"), P::standard);
    expect_error([] { pre_tokenizer_from_name("tekken"); }, "unsupported pre-tokenizer 'tekken'");
    expect_error([] { pre_tokenizer_from_name("deepseek-v3"); }, "(forge knows default, gpt-2, gpt2, mpt, llama-bpe");
    expect_error([] { pre_tokenizer_from_name("Falcon"); }, "deepseek-coder, deepseek-llm, gemma4)");
}

// ---------------------------------------------------------------------------------------------------------
// Vocabulary validation.

using forge::tokenizer::SpecialTokens;
using forge::tokenizer::TokenType;
using forge::tokenizer::Vocab;
using forge::tokenizer::VocabOptions;

TEST(Vocab, RejectsInconsistentArrays) {
    const std::vector<std::string> tokens = {"<unk>", "<s>", "a", "b"};
    expect_error([&] { (void)Vocab(tokens, {0, 0, 0}, {}, {}, {}, {}); }, "tokenizer.ggml.scores has 3 entries but tokenizer.ggml.tokens has 4");
    expect_error([&] { (void)Vocab(tokens, {}, {TokenType::normal}, {}, {}, {}); }, "tokenizer.ggml.token_type has 1 entries");
    expect_error([&] { (void)Vocab({"a", "b", "a"}, {}, {}, {}, {}, {}); }, "'a' appears twice, as ids 0 and 2");
    expect_error([&] { (void)Vocab({}, {}, {}, {}, {}, {}); }, "tokenizer.ggml.tokens is empty");
    expect_error([&] { (void)Vocab(tokens, {}, {}, {}, SpecialTokens{.bos = 4}, {}); }, "tokenizer.ggml.bos_token_id = 4 is outside the vocabulary of 4 tokens");
    expect_error([&] { (void)Vocab(tokens, {}, {}, {}, SpecialTokens{.eos = -7}, {}); }, "eos_token_id = -7");
    expect_error([&] { (void)Vocab(tokens, {}, {TokenType::normal, TokenType(9), TokenType::normal, TokenType::normal}, {}, {}, {}); },
                 "tokenizer.ggml.token_type[1] = 9 is not a token type");
    expect_error([&] { (void)Vocab(tokens, {}, {TokenType::normal, TokenType::byte, TokenType::normal, TokenType::normal}, {}, {}, {}); },
                 "tokenizer.ggml.tokens[1] = '<s>' is a byte token but not of the form <0xXX>");
    const VocabOptions bpe{.model = forge::tokenizer::Model::bpe};
    expect_error([&] { (void)Vocab(tokens, {}, {}, {"a b", "ab"}, {}, bpe); }, "tokenizer.ggml.merges[1] = 'ab' is not two tokens");
    expect_error([&] { (void)Vocab(tokens, {}, {}, {}, {}, bpe); }, "tokenizer.ggml.merges is missing or empty");
    EXPECT_NO_THROW((void)Vocab(tokens, {}, {}, {"a b"}, SpecialTokens{.bos = 1}, bpe));
}

// A metadata-only GGUF image, built by hand: the test states every byte the reader sees.
class GgufImage {
public:
    GgufImage& str(const std::string& key, const std::string& v) { return entry(key, 8).raw_str(v); }
    GgufImage& u32(const std::string& key, std::uint32_t v) { return entry(key, 4).pod(v); }
    GgufImage& i32(const std::string& key, std::int32_t v) { return entry(key, 5).pod(v); }
    GgufImage& f32(const std::string& key, float v) { return entry(key, 6).pod(v); }
    GgufImage& boolean(const std::string& key, bool v) { return entry(key, 7).pod(std::uint8_t(v)); }
    GgufImage& strs(const std::string& key, const std::vector<std::string>& v) {
        entry(key, 9).pod(std::uint32_t(8)).pod(std::uint64_t(v.size()));
        for (const auto& s : v) raw_str(s);
        return *this;
    }
    GgufImage& f32s(const std::string& key, const std::vector<float>& v) {
        entry(key, 9).pod(std::uint32_t(6)).pod(std::uint64_t(v.size()));
        for (const float x : v) pod(x);
        return *this;
    }
    GgufImage& i32s(const std::string& key, const std::vector<std::int32_t>& v) {
        entry(key, 9).pod(std::uint32_t(5)).pod(std::uint64_t(v.size()));
        for (const auto x : v) pod(x);
        return *this;
    }
    std::vector<std::byte> bytes() const {
        std::vector<std::byte> out(24 + body_.size());
        const std::uint32_t head[2] = {0x46554747, 3};
        const std::uint64_t counts[2] = {0, n_};
        std::memcpy(out.data(), head, 8);
        std::memcpy(out.data() + 8, counts, 16);
        std::memcpy(out.data() + 24, body_.data(), body_.size());
        return out;
    }

private:
    template <class T>
    GgufImage& pod(T v) {
        const auto* p = reinterpret_cast<const char*>(&v);
        body_.append(p, sizeof v);
        return *this;
    }
    GgufImage& raw_str(const std::string& s) {
        pod(std::uint64_t(s.size()));
        body_ += s;
        return *this;
    }
    GgufImage& entry(const std::string& key, std::uint32_t type) {
        ++n_;
        return raw_str(key).pod(type);
    }
    std::string body_;
    std::uint64_t n_ = 0;
};

Tokenizer from_image(const GgufImage& image) {
    const auto bytes = image.bytes();
    return Tokenizer::from_gguf(forge::gguf::File::parse(bytes));
}

GgufImage small_spm(const std::vector<float>& scores = {0, 0, 0, -1, -2, -3},
                    const std::vector<std::int32_t>& types = {2, 3, 3, 1, 1, 1}) {
    return GgufImage()
        .str("tokenizer.ggml.model", "llama")
        .strs("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81h", "i", "\xE2\x96\x81hi"})
        .f32s("tokenizer.ggml.scores", scores)
        .i32s("tokenizer.ggml.token_type", types);
}

TEST(Vocab, ReadsAHandBuiltGguf) {
    const Tokenizer tok = from_image(small_spm().u32("tokenizer.ggml.padding_token_id", 0xFFFFFFFF));  // -1 written unsigned: none
    EXPECT_EQ(tok.encode("hi", true), (Ids{1, 5}));
    EXPECT_EQ(tok.eos(), 2);
    // No byte tokens: characters the vocabulary lacks become the unknown token.
    EXPECT_EQ(tok.encode("hi!", false), (Ids{5, 0}));
}

TEST(Vocab, GgufErrorsNameTheKey) {
    expect_error([] { from_image(small_spm({0, 0})); }, "tokenizer.ggml.scores has 2 entries");
    expect_error([] { from_image(small_spm({0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 1})); }, "token_type has 7 entries");
    expect_error([] { from_image(small_spm({0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 1, -1})); }, "tokenizer.ggml.token_type[5] = -1 is not a token type");
    expect_error([] { from_image(small_spm().i32("tokenizer.ggml.bos_token_id", 6)); }, "bos_token_id = 6 is outside the vocabulary of 6 tokens");
    expect_error([] { from_image(small_spm().i32("tokenizer.ggml.eos_token_id", -5)); }, "tokenizer.ggml.eos_token_id = -5 is not a token id");
    expect_error([] { from_image(small_spm().f32("tokenizer.ggml.unknown_token_id", 1)); }, "tokenizer.ggml.unknown_token_id holds f32, expected an integer");
    expect_error([] { from_image(GgufImage().strs("tokenizer.ggml.tokens", {"a"})); }, "'tokenizer.ggml.model' is missing");
    expect_error([] { from_image(GgufImage().str("tokenizer.ggml.model", "t5").strs("tokenizer.ggml.tokens", {"a"})); }, "unsupported tokenizer.ggml.model 't5'");
    expect_error([] { from_image(GgufImage().str("tokenizer.ggml.model", "llama")); }, "'tokenizer.ggml.tokens' is missing");
    expect_error([] { from_image(GgufImage().str("tokenizer.ggml.model", "llama").f32s("tokenizer.ggml.tokens", {1})); }, "tokenizer.ggml.tokens[0] is not a string");
    const auto bpe = [] {
        return GgufImage().str("tokenizer.ggml.model", "gpt2").strs("tokenizer.ggml.tokens", {"a", "b", "ab"});
    };
    expect_error([&] { from_image(bpe()); }, "'tokenizer.ggml.merges' is missing");
    expect_error([&] { from_image(bpe().str("tokenizer.ggml.pre", "tekken").strs("tokenizer.ggml.merges", {"a b"})); }, "pre-tokenizer 'tekken'");
    const Tokenizer ok = from_image(bpe().str("tokenizer.ggml.pre", "qwen2").strs("tokenizer.ggml.merges", {"a b"}));
    EXPECT_EQ(ok.encode("abba", false), (Ids{2, 1, 0}));
}

// Gemma 4's BPE: spaces written as U+2581, merges over raw UTF-8 across words, <0xXX> tokens for bytes no
// token covers, newline runs that are tokens kept whole even where no merge makes them, and BOS always.
TEST(Vocab, Gemma4BpeOnRawUtf8) {
    const std::string sp = "\xE2\x96\x81";  // U+2581
    const Tokenizer tok = from_image(GgufImage()
                                         .str("tokenizer.ggml.model", "gemma4")
                                         .str("tokenizer.ggml.pre", "tekken")  // ignored: gemma4 has its own
                                         .strs("tokenizer.ggml.tokens", {"<pad>", "<eos>", "<bos>", "\n", "\n\n", sp, "h", "i",
                                                                         sp + "h", sp + "hi", sp + "hi" + sp + "hi", "<0x21>",
                                                                         "<0xC3>", "<0xA9>"})
                                         .i32s("tokenizer.ggml.token_type", {3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6, 6})
                                         .strs("tokenizer.ggml.merges", {sp + " h", sp + "h i", sp + "hi " + sp + "hi"})
                                         .u32("tokenizer.ggml.bos_token_id", 2)
                                         .boolean("tokenizer.ggml.add_bos_token", false));
    EXPECT_TRUE(tok.add_bos());
    EXPECT_EQ(tok.encode(" hi hi!\n\n\xC3\xA9", true), (Ids{2, 10, 11, 4, 12, 13}));
    EXPECT_EQ(tok.encode("\n", false), Ids{3});
    EXPECT_EQ(tok.decode(Ids{2, 10, 11, 4, 12, 13}), " hi hi!\n\n\xC3\xA9");
    EXPECT_EQ(tok.decode(Ids{5, 7}), " i");
}

TEST(CaseFile, TheLastCaseMayLackItsSeparator) {
    using forge::tokenizer::parse_case_file;
    using Cases = std::vector<std::string>;
    EXPECT_EQ(parse_case_file("a\n__ggml_vocab_test__\n\n__ggml_vocab_test__\n"), (Cases{"a", ""}));
    EXPECT_EQ(parse_case_file("a\n__ggml_vocab_test__\nb c\n"), (Cases{"a", "b c\n"}));
    EXPECT_EQ(parse_case_file(""), Cases{});
}

// ---------------------------------------------------------------------------------------------------------
// forge tokenize on plain text.

TEST(TokenizerCli, TextGivesIdsOnOneLine) {
    const std::string model = forge::test::model_path("stories260K.gguf");
    const Tokenizer& tok = model_tokenizer("stories260K.gguf");
    auto ids_line = [](const Ids& ids) {
        std::string s;
        for (const auto id : ids) s.append(s.empty() ? "" : " ").append(std::to_string(id));
        return s + "\n";
    };
    auto r = forge::test::run_process({FORGE_CLI, "tokenize", "-m", model, "Once upon a time"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, ids_line(tok.encode("Once upon a time", true)));
    EXPECT_EQ(r.out, "1 403 407 261 378\n");
    r = forge::test::run_process({FORGE_CLI, "tokenize", "-m", model, "--no-bos", "--", "-x"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, ids_line(tok.encode("-x", false)));
    r = forge::test::run_process({FORGE_CLI, "tokenize", "-m", model, "--special", "<s>a"});
    EXPECT_EQ(r.out, ids_line(tok.encode("<s>a", true, true)));
}

TEST(TokenizerCli, BadUseIsOneErrorLineAndNonZeroExit) {
    const std::string model = forge::test::model_path("stories260K.gguf");
    auto r = forge::test::run_process({FORGE_CLI, "tokenize", "-m", model});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("give either TEXT or --file"), std::string::npos) << r.err;
    r = forge::test::run_process({FORGE_CLI, "tokenize", "-m", model, "bad \xFF"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("invalid UTF-8 at byte offset 4"), std::string::npos) << r.err;
    r = forge::test::run_process({FORGE_CLI, "tokenize", "-m", testdata("nonexistent.gguf"), "x"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("nonexistent.gguf"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
}

}  // namespace
