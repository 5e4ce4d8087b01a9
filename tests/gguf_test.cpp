// GGUF reader and writer: the real test files, the writer's round trips and refusals, and hostile input
// (truncation, byte flips, crafted headers) that must end in a forge::Error naming the field and its offset.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "forge/core/mapped_file.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/gguf/writer.hpp"
#include "testdata.hpp"

namespace {

namespace fs = std::filesystem;
using forge::DType;
using forge::Error;
using namespace forge::gguf;
using namespace std::string_literals;

std::vector<fs::path> testdata_ggufs() {
    std::vector<fs::path> out;
    for (const char* dir : {"models", "tokenizer"})
        for (const auto& e : fs::directory_iterator(forge::test::testdata(dir)))
            if (e.path().extension() == ".gguf") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::byte> file_bytes(const std::string& path) {
    const forge::MappedFile m(path);
    return {m.bytes().begin(), m.bytes().end()};
}

// The parsed file laid out again by the Writer: metadata, then tensors, in the order they were read.
std::vector<std::byte> rewrite(const File& f) {
    Writer w(f.version());
    for (const auto& [key, value] : f.metadata()) w.set(key, value);
    for (const auto& t : f.tensors()) w.add_tensor(t.name, t.dims, t.dtype(), {t.data, t.bytes});
    return w.bytes();
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no forge::Error was thrown)";
}

std::string parse_error(const std::vector<std::byte>& bytes) {
    return error_of([&] { File::parse(bytes); });
}

testing::AssertionResult has_all(const std::string& message, std::initializer_list<std::string> parts) {
    for (const auto& p : parts)
        if (message.find(p) == std::string::npos)
            return testing::AssertionFailure() << "\"" << message << "\" does not mention \"" << p << "\"";
    return testing::AssertionSuccess();
}

std::string at(std::size_t offset) { return "byte offset " + std::to_string(offset); }

// The one test file the hostile-input tests mangle: its 7.5 KB header holds every kind of entry the
// models use (strings, string and i32 arrays, u32, f32, bool) ahead of 27 tensors.
std::string hostile_subject() { return forge::test::model_path("synth-qwen2-q8_0.gguf"); }

// Everything a successful parse promises about where tensor data lies.
void expect_tensors_in_bounds(const File& f) {
    const std::byte* begin = f.bytes().data();
    const std::byte* end = begin + f.bytes().size();
    for (const auto& t : f.tensors()) {
        ASSERT_TRUE(t.data >= begin && t.data <= end && t.bytes <= std::uint64_t(end - t.data)) << t.name;
        EXPECT_EQ(t.data, begin + f.data_offset() + t.offset) << t.name;
        EXPECT_EQ(std::uint64_t(t.data - begin) % f.alignment(), 0u) << t.name;
    }
}

// --- the real files -------------------------------------------------------------------------------

TEST(GgufFiles, EveryTestdataFileParsesConsistently) {
    const auto files = testdata_ggufs();
    ASSERT_FALSE(files.empty());
    std::size_t with_tensors = 0;
    for (const auto& path : files) {
        SCOPED_TRACE(path.string());
        const File f = File::open(path.string());
        EXPECT_EQ(f.version(), 3u);
        EXPECT_EQ(f.path(), path.string());
        EXPECT_EQ(f.bytes().size(), fs::file_size(path));
        EXPECT_FALSE(f.metadata().empty());
        EXPECT_TRUE(f.get_string("general.architecture").has_value());
        for (const auto& [key, value] : f.metadata()) EXPECT_EQ(f.find(key), &value) << key;
        for (const auto& t : f.tensors()) {
            EXPECT_EQ(f.find_tensor(t.name), &t);
            EXPECT_EQ(t.bytes, forge::row_bytes(t.dtype(), t.cols()) * t.rows()) << t.name;
        }
        expect_tensors_in_bounds(f);
        with_tensors += !f.tensors().empty();
    }
    EXPECT_GT(with_tensors, 0u);
}

// Read into the process's own memory, a file is the same bytes as mapped, at a 2 MiB boundary (where
// transparent huge pages can back it), and parses to the same tensors at the same offsets.
TEST(GgufFiles, ReadIntoOwnMemoryIsTheMappedFilesBytes) {
    for (const auto& path : testdata_ggufs()) {
        SCOPED_TRACE(path.string());
        const File mapped = File::open(path.string());
        const File read = File::open(path.string(), forge::Residency::own_memory);
        EXPECT_EQ(mapped.residency(), forge::Residency::page_cache);
        EXPECT_EQ(read.residency(), forge::Residency::own_memory);
        ASSERT_EQ(read.bytes().size(), mapped.bytes().size());
        EXPECT_TRUE(std::equal(read.bytes().begin(), read.bytes().end(), mapped.bytes().begin()));
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(read.bytes().data()) % (std::uintptr_t(2) << 20), 0u);
        ASSERT_EQ(read.tensors().size(), mapped.tensors().size());
        for (std::size_t i = 0; i < read.tensors().size(); ++i)
            EXPECT_EQ(read.tensors()[i].data - read.bytes().data(), mapped.tensors()[i].data - mapped.bytes().data());
    }
}

// Either way, a missing file or a directory is an error naming it, and an empty file reads as empty.
TEST(GgufFiles, ReadIntoOwnMemoryRefusesWhatMappingRefuses) {
    const auto dir = fs::temp_directory_path() / ("forge_own_memory_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    for (const auto r : {forge::Residency::page_cache, forge::Residency::own_memory}) {
        EXPECT_NE(error_of([&] { File::open((dir / "absent.gguf").string(), r); }).find("absent.gguf"), std::string::npos);
        EXPECT_NE(error_of([&] { File::open(dir.string(), r); }).find("it is a directory"), std::string::npos);
        std::ofstream((dir / "empty.gguf").string()).close();
        EXPECT_TRUE(forge::MappedFile((dir / "empty.gguf").string(), r).bytes().empty());
    }
    fs::remove_all(dir);
}

TEST(GgufFiles, Stories260kMetadataAndTensorTable) {
    const File f = File::open(forge::test::model_path("stories260K.gguf"));
    // The shape testdata/README.md gives for this model.
    EXPECT_EQ(f.get_string("general.architecture"), "llama");
    EXPECT_EQ(f.require_uint("llama.block_count"), 5u);
    EXPECT_EQ(f.require_uint("llama.embedding_length"), 64u);
    EXPECT_EQ(f.require_uint("llama.feed_forward_length"), 172u);
    EXPECT_EQ(f.require_uint("llama.attention.head_count"), 8u);
    EXPECT_EQ(f.require_uint("llama.attention.head_count_kv"), 4u);
    EXPECT_EQ(f.require_uint("llama.context_length"), 512u);
    EXPECT_EQ(f.find("llama.block_count")->type, ValueType::u32);
    EXPECT_FLOAT_EQ(static_cast<float>(*f.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);

    const Array* tokens = f.get_array("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->elem, ValueType::string);
    ASSERT_EQ(tokens->items.size(), 512u);
    for (const auto& t : tokens->items) EXPECT_EQ(t.type, ValueType::string);
    EXPECT_EQ(std::get<std::string>(tokens->items[0].data), "<unk>");
    EXPECT_EQ(std::get<std::string>(tokens->items[1].data), "<s>");
    EXPECT_EQ(std::get<std::string>(tokens->items[2].data), "</s>");
    EXPECT_EQ(f.get_array("tokenizer.ggml.scores")->elem, ValueType::f32);
    EXPECT_EQ(f.get_array("tokenizer.ggml.token_type")->items.size(), 512u);

    ASSERT_EQ(f.tensors().size(), 2 + 9 * 5 + 1u);  // embeddings, output norm, 9 per layer, LM head
    const TensorInfo& embd = f.tensor("token_embd.weight");
    EXPECT_EQ(embd.dims, (std::vector<std::uint64_t>{64, 512}));
    EXPECT_EQ(embd.dtype(), DType::F32);
    EXPECT_EQ(embd.type_name(), "F32");
    EXPECT_EQ(embd.rows(), 512u);
    EXPECT_EQ(embd.cols(), 64u);
    EXPECT_EQ(embd.bytes, 64u * 512 * 4);
    EXPECT_EQ(f.tensor("blk.4.ffn_down.weight").dims, (std::vector<std::uint64_t>{172, 64}));
    EXPECT_EQ(f.tensor("blk.0.attn_k.weight").dims, (std::vector<std::uint64_t>{64, 32}));
    EXPECT_EQ(f.tensor("output_norm.weight").dims, (std::vector<std::uint64_t>{64}));

    // llama.cpp's layout: tensors back to back in table order, each padded to the alignment, the last
    // one's padding ending the file.
    EXPECT_EQ(f.alignment(), kDefaultAlignment);
    EXPECT_EQ(f.data_offset() % f.alignment(), 0u);
    std::uint64_t next = 0;
    for (const auto& t : f.tensors()) {
        EXPECT_EQ(t.offset, next) << t.name;
        next = (t.offset + t.bytes + f.alignment() - 1) / f.alignment() * f.alignment();
    }
    EXPECT_EQ(f.data_offset() + next, f.bytes().size());
    // The first weight, read through the map: a trained embedding, finite and not all zero.
    const float* w = reinterpret_cast<const float*>(embd.data);
    EXPECT_TRUE(std::all_of(w, w + embd.elements, [](float x) { return std::isfinite(x); }));
    EXPECT_TRUE(std::any_of(w, w + embd.elements, [](float x) { return x != 0.0f; }));
}

TEST(GgufFiles, TypedGettersAndTheirErrors) {
    const File f = File::open(forge::test::model_path("stories260K.gguf"));
    EXPECT_EQ(f.get_uint("nonexistent.key"), std::nullopt);
    EXPECT_EQ(f.get_float("nonexistent.key"), std::nullopt);
    EXPECT_EQ(f.get_bool("nonexistent.key"), std::nullopt);
    EXPECT_EQ(f.get_string("nonexistent.key"), std::nullopt);
    EXPECT_EQ(f.get_array("nonexistent.key"), nullptr);
    EXPECT_EQ(f.find("nonexistent.key"), nullptr);
    EXPECT_EQ(f.find_tensor("nonexistent.weight"), nullptr);
    EXPECT_EQ(f.get_float("llama.block_count"), 5.0);  // integers read as numbers

    EXPECT_TRUE(has_all(error_of([&] { f.get_uint("general.architecture"); }),
                        {"'general.architecture'", "string", "non-negative integer"}));
    EXPECT_TRUE(has_all(error_of([&] { f.get_float("general.name"); }), {"'general.name'", "string", "a number"}));
    EXPECT_TRUE(has_all(error_of([&] { f.get_bool("llama.block_count"); }), {"'llama.block_count'", "u32", "a bool"}));
    EXPECT_TRUE(has_all(error_of([&] { f.get_string("llama.block_count"); }), {"'llama.block_count'", "a string"}));
    EXPECT_TRUE(has_all(error_of([&] { f.get_array("general.name"); }), {"'general.name'", "an array"}));
    EXPECT_TRUE(has_all(error_of([&] { f.get_string("tokenizer.ggml.tokens"); }), {"'tokenizer.ggml.tokens'", "array"}));
    EXPECT_TRUE(has_all(error_of([&] { f.require_uint("llama.missing_key"); }), {"'llama.missing_key'", "missing"}));
    EXPECT_TRUE(has_all(error_of([&] { f.tensor("blk.9.attn_q.weight"); }), {"'blk.9.attn_q.weight'", "missing"}));

    // Signed integers count as unsigned only when they are not negative.
    Writer w;
    w.set("positive", Value::i32(7)).set("negative", Value::i32(-3)).set("flag", Value::boolean(true));
    const auto bytes = w.bytes();
    const File g = File::parse(bytes);
    EXPECT_EQ(g.get_uint("positive"), 7u);
    EXPECT_EQ(g.get_float("negative"), -3.0);
    EXPECT_EQ(g.get_bool("flag"), true);
    EXPECT_TRUE(has_all(error_of([&] { g.get_uint("negative"); }), {"'negative'", "i32", "non-negative integer"}));
    EXPECT_TRUE(has_all(error_of([&] { File::open("/nonexistent/model.gguf"); }), {"'/nonexistent/model.gguf'"}));
}

// --- the writer -----------------------------------------------------------------------------------

// The strongest property a writer can have against files written by others: every test file, read and
// written again in the same order, comes back byte for byte. (The vocab-only files end without header
// padding, as gguf-py writes them, hence the Writer pads only when a data section follows.)
TEST(GgufWriter, RewritesEveryTestdataFileByteForByte) {
    for (const auto& path : testdata_ggufs()) {
        SCOPED_TRACE(path.string());
        const File f = File::open(path.string());
        const std::vector<std::byte> out = rewrite(f);
        ASSERT_EQ(out.size(), f.bytes().size());
        const auto diff = std::mismatch(out.begin(), out.end(), f.bytes().begin());
        EXPECT_TRUE(diff.first == out.end()) << "first difference at byte " << (diff.first - out.begin());
    }
}

// Every value type, arrays nested to the reader's limit, a custom alignment and several tensor types.
Writer every_kind_of_entry(std::vector<std::byte>& owned_bytes_probe) {
    Writer w;
    w.set("general.alignment", Value::u32(64));
    w.set("u8", {ValueType::u8, std::uint64_t(255)});
    w.set("i8", {ValueType::i8, std::int64_t(-128)});
    w.set("u16", {ValueType::u16, std::uint64_t(65535)});
    w.set("i16", {ValueType::i16, std::int64_t(-32768)});
    w.set("u32", Value::u32(4294967295u));
    w.set("i32", Value::i32(-2147483647 - 1));
    w.set("u64", Value::u64(18446744073709551615u));
    w.set("i64", {ValueType::i64, std::int64_t(-9223372036854775807 - 1)});
    w.set("f32", Value::f32(-1.5e-7f));
    w.set("f64", {ValueType::f64, 1e300});
    w.set("true", Value::boolean(true));
    w.set("false", Value::boolean(false));
    w.set("string", Value::string("nul \0 and \xc3\xa9"s));
    w.set("empty string", Value::string(""));
    w.set("u8 array", Value::array(ValueType::u8, {{ValueType::u8, std::uint64_t(1)}, {ValueType::u8, std::uint64_t(2)}}));
    w.set("empty array", Value::array(ValueType::f64, {}));
    w.set("strings", Value::array(ValueType::string, {Value::string("a"), Value::string("")}));
    w.set("arrays of mixed arrays",
          Value::array(ValueType::array, {Value::array(ValueType::i32, {Value::i32(-1)}),
                                          Value::array(ValueType::string, {Value::string("x")})}));
    Value deepest = Value::array(ValueType::boolean, {Value::boolean(true)});
    for (int d = 1; d < kMaxArrayNesting; ++d) deepest = Value::array(ValueType::array, {deepest});
    w.set("nested to the limit", deepest);

    std::vector<std::byte> f32(3 * 5 * 4), q8(2 * 34), q6k(210);
    for (std::size_t i = 0; i < f32.size(); ++i) f32[i] = std::byte(i * 7 + 1);
    for (std::size_t i = 0; i < q8.size(); ++i) q8[i] = std::byte(255 - i);
    for (std::size_t i = 0; i < q6k.size(); ++i) q6k[i] = std::byte(i);
    owned_bytes_probe = f32;
    w.add_tensor("f32", {5, 3}, DType::F32, std::move(f32));  // kept by the writer
    w.add_tensor("q8_0", {32, 2, 1, 1}, DType::Q8_0, std::move(q8));
    w.add_tensor("q6_k", {256}, DType::Q6_K, std::move(q6k));
    w.add_tensor("one byte", {1}, DType::I8, std::vector<std::byte>{std::byte{0x5a}});
    return w;
}

TEST(GgufWriter, EveryValueTypeAndLayoutRoundTrips) {
    std::vector<std::byte> f32_bytes;
    const Writer w = every_kind_of_entry(f32_bytes);
    const std::vector<std::byte> bytes = w.bytes();
    const File f = File::parse(bytes);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_TRUE(rewrite(f) == bytes);  // every value read back re-encodes to the same bytes

    const std::vector<std::string> keys = {"general.alignment", "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64",
                                           "f32", "f64", "true", "false", "string", "empty string", "u8 array",
                                           "empty array", "strings", "arrays of mixed arrays", "nested to the limit"};
    ASSERT_EQ(f.metadata().size(), keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(f.metadata()[i].first, keys[i]);  // insertion order
    EXPECT_EQ(f.get_uint("u8"), 255u);
    EXPECT_EQ(std::get<std::int64_t>(f.find("i8")->data), -128);
    EXPECT_EQ(std::get<std::int64_t>(f.find("i64")->data), std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(f.get_uint("u64"), std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(f.get_float("f32"), double(-1.5e-7f));
    EXPECT_EQ(f.get_float("f64"), 1e300);
    EXPECT_EQ(f.get_bool("true"), true);
    EXPECT_EQ(f.get_bool("false"), false);
    EXPECT_EQ(f.get_string("string"), "nul \0 and \xc3\xa9"s);
    EXPECT_EQ(f.get_array("empty array")->items.size(), 0u);
    EXPECT_EQ(f.get_array("empty array")->elem, ValueType::f64);
    const Array* mixed = f.get_array("arrays of mixed arrays");
    ASSERT_EQ(mixed->items.size(), 2u);
    EXPECT_EQ(std::get<Array>(mixed->items[1].data).elem, ValueType::string);
    const Value* v = f.find("nested to the limit");
    for (int d = 1; d < kMaxArrayNesting; ++d) v = &std::get<Array>(v->data).items.at(0);
    EXPECT_EQ(std::get<Array>(v->data).elem, ValueType::boolean);

    // The header is the fields encoded one after another, then zeros up to the data section.
    std::vector<std::byte> header;
    Encoder e(header);
    e.put(kMagic).put(f.version()).put<std::uint64_t>(f.tensors().size()).put<std::uint64_t>(f.metadata().size());
    for (const auto& [key, value] : f.metadata())
        e.put_string(key).put(static_cast<std::uint32_t>(value.type)).put_value(value, key);
    for (const auto& t : f.tensors()) {
        e.put_string(t.name).put(static_cast<std::uint32_t>(t.dims.size()));
        for (const auto d : t.dims) e.put(d);
        e.put(t.type_id).put(t.offset);
    }
    ASSERT_LE(header.size(), f.data_offset());
    EXPECT_GT(f.data_offset() - header.size(), 0u);  // this header does need padding
    EXPECT_TRUE(std::equal(header.begin(), header.end(), bytes.begin()));
    for (std::size_t i = header.size(); i < f.data_offset(); ++i) ASSERT_EQ(bytes[i], std::byte{0}) << "header padding byte " << i;

    // Tensors: contiguous in insertion order at multiples of 64, every gap zero.
    ASSERT_EQ(f.tensors().size(), 4u);
    expect_tensors_in_bounds(f);
    EXPECT_EQ(f.tensor("q8_0").dims, (std::vector<std::uint64_t>{32, 2, 1, 1}));
    EXPECT_EQ(f.tensor("q6_k").dtype(), DType::Q6_K);
    const auto& t0 = f.tensors()[0];
    EXPECT_TRUE(std::equal(f32_bytes.begin(), f32_bytes.end(), t0.data));
    std::vector<bool> is_data(bytes.size(), false);
    std::uint64_t next = 0;
    for (const auto& t : f.tensors()) {
        EXPECT_EQ(t.offset, next) << t.name;
        next = (t.offset + t.bytes + 63) / 64 * 64;
        std::fill_n(is_data.begin() + std::ptrdiff_t(f.data_offset() + t.offset), t.bytes, true);
    }
    EXPECT_EQ(f.data_offset() + next, bytes.size());
    for (std::size_t i = f.data_offset(); i < bytes.size(); ++i)
        if (!is_data[i]) {
            ASSERT_EQ(bytes[i], std::byte{0}) << "padding byte " << i;
        }
}

TEST(GgufWriter, AlignmentOneAndVersionTwo) {
    Writer w(2);
    w.set("general.alignment", Value::u32(1));
    const std::vector<std::byte> three(3, std::byte{1}), five(5, std::byte{2});
    w.add_tensor("a", {3}, DType::I8, three).add_tensor("b", {5}, DType::I8, five);
    const auto bytes = w.bytes();
    const File f = File::parse(bytes);
    EXPECT_EQ(f.version(), 2u);
    EXPECT_EQ(f.alignment(), 1u);
    EXPECT_EQ(f.tensor("b").offset, 3u);  // no padding at all
    EXPECT_EQ(bytes.size(), f.data_offset() + 8);
    EXPECT_TRUE(rewrite(f) == bytes);
}

TEST(GgufWriter, NoTensorsMeansNoDataSection) {
    Writer w;
    w.set("general.architecture", Value::string("llama"));
    const auto bytes = w.bytes();
    EXPECT_EQ(bytes.size(), 4 + 4 + 8 + 8 + (8 + 20 + 4 + 8 + 5u));
    EXPECT_EQ(File::parse(bytes).tensors().size(), 0u);
}

TEST(GgufWriter, RefusesWhatReadersWouldRefuse) {
    const std::vector<std::byte> b32(32 * 4), b34(34);
    Writer w;
    w.set("k", Value::u32(1)).add_tensor("t", {32}, DType::F32, b32);
    EXPECT_TRUE(has_all(error_of([&] { w.set("k", Value::u32(2)); }), {"duplicate metadata key 'k'"}));
    EXPECT_TRUE(has_all(error_of([&] { w.add_tensor("t", {32}, DType::F32, b32); }), {"duplicate tensor name 't'"}));
    EXPECT_TRUE(has_all(error_of([&] { w.add_tensor("u", {31}, DType::F32, b32); }), {"'u'", "124", "128", "bytes"}));
    EXPECT_TRUE(has_all(error_of([&] { w.add_tensor("u", {48}, DType::Q8_0, b34); }),
                        {"'u'", "row length 48", "Q8_0 block size 32"}));
    EXPECT_TRUE(has_all(error_of([&] { w.add_tensor("u", {}, DType::F32, b32); }), {"'u'", "0 dimensions"}));
    EXPECT_TRUE(has_all(error_of([&] { w.add_tensor("u", {1, 1, 1, 1, 32}, DType::F32, b32); }), {"'u'", "5 dimensions"}));
    EXPECT_TRUE(has_all(error_of([&] { w.add_tensor("u", {32, 0}, DType::F32, b32); }), {"'u'", "dimension 1 = 0"}));
    EXPECT_TRUE(has_all(error_of([&] { w.add_tensor("u", {kMaxDim + 1}, DType::I8, b32); }), {"'u'", "dimension 0"}));
    EXPECT_TRUE(has_all(error_of([&] { w.add_tensor("u", {kMaxDim, std::uint64_t(1) << 22}, DType::F32, b32); }),
                        {"'u'", "overflow a 64-bit byte count"}));
    EXPECT_TRUE(has_all(error_of([&] { w.add_tensor("u", {32}, static_cast<DType>(4), b32); }), {"'u'", "unknown type id 4"}));
    EXPECT_TRUE(has_all(error_of([&] { w.add_tensor(std::string(64, 'n'), {32}, DType::F32, b32); }), {"64 bytes", "63"}));
    w.add_tensor(std::string(63, 'n'), {32}, DType::F32, b32);

    EXPECT_TRUE(has_all(error_of([&] { w.set("general.alignment", Value::u32(48)); }), {"general.alignment", "48"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("general.alignment", Value::u32(0)); }), {"general.alignment"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("general.alignment", Value::u32(2u << 20)); }), {"general.alignment"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("general.alignment", Value::u64(64)); }), {"general.alignment", "u64"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("v", {ValueType::u8, std::uint64_t(256)}); }), {"'v'", "256", "u8"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("v", {ValueType::i8, std::int64_t(-129)}); }), {"'v'", "-129", "i8"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("v", {ValueType::u32, std::int64_t(-1)}); }), {"'v'", "-1", "u32"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("v", {ValueType::string, 1.0}); }), {"'v'", "string", "floating-point"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("v", {ValueType::f32, std::uint64_t(1)}); }), {"'v'", "f32", "unsigned"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("v", {static_cast<ValueType>(13), std::uint64_t(1)}); }),
                        {"'v'", "unknown value type 13"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("v", Value::array(ValueType::u32, {Value::u32(1), Value::i32(1)})); }),
                        {"'v'", "array of u32 holds a i32"}));
    EXPECT_TRUE(has_all(error_of([&] { w.set("v", Value::array(static_cast<ValueType>(99), {})); }),
                        {"'v'", "unknown value type 99"}));
    Value too_deep = Value::array(ValueType::u8, {});
    for (int d = 0; d < kMaxArrayNesting; ++d) too_deep = Value::array(ValueType::array, {too_deep});
    EXPECT_TRUE(has_all(error_of([&] { w.set("v", too_deep); }), {"'v'", "nested deeper than 8"}));
    EXPECT_TRUE(has_all(error_of([] { (void)Writer(1); }), {"version 1"}));
    EXPECT_TRUE(has_all(error_of([] { (void)Writer(4); }), {"version 4"}));

    // None of the refusals left a trace: "v" can still be set, and the file holds only what was accepted.
    w.set("v", Value::u32(3));
    const auto bytes = w.bytes();
    const File f = File::parse(bytes);
    EXPECT_EQ(f.metadata().size(), 2u);
    EXPECT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.alignment(), kDefaultAlignment);
}

TEST(GgufWriter, WritesFilesAtomically) {
    const fs::path dir = fs::path(testing::TempDir()) / ("forge-writer-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string path = (dir / "out.gguf").string();
    std::vector<std::byte> probe;
    const Writer w = every_kind_of_entry(probe);
    w.write(path);
    EXPECT_EQ(file_bytes(path), w.bytes());

    Writer smaller;
    smaller.set("general.name", Value::string("replacement"));
    smaller.write(path);  // replaces the file whole
    EXPECT_EQ(file_bytes(path), smaller.bytes());
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // no temporary left

    const std::string missing = (dir / "no such dir" / "x.gguf").string();
    EXPECT_TRUE(has_all(error_of([&] { w.write(missing); }), {missing, "No such file"}));
    fs::remove_all(dir);
}

// --- hostile input --------------------------------------------------------------------------------

// A truncated file must be an error at every length short of its last tensor byte. Each prefix is copied
// into a buffer of exactly its size, so a read past the end is a heap overflow ASan reports. Every byte
// boundary of the header and tensor table is tried; in the data region parsing does constant work (the
// data is only bounds-checked, never read), so only each tensor's edges and the file's tail are tried.
TEST(GgufHostile, TruncationAnywhereIsAnError) {
    const auto whole = file_bytes(hostile_subject());
    const File f = File::parse(whole);
    std::uint64_t needed = 0;  // the end of the last tensor's data
    std::vector<std::uint64_t> lengths;
    for (std::uint64_t n = 0; n < f.data_offset(); ++n) lengths.push_back(n);
    for (const auto& t : f.tensors()) {
        const std::uint64_t begin = f.data_offset() + t.offset, end = begin + t.bytes;
        needed = std::max(needed, end);
        for (const std::uint64_t n : {begin, begin + 1, end - 1, end, end + 1})
            if (n <= whole.size()) lengths.push_back(n);
    }
    for (std::uint64_t n = whole.size() - 64; n <= whole.size(); ++n) lengths.push_back(n);

    for (const std::uint64_t n : lengths) {
        const std::vector<std::byte> prefix(whole.begin(), whole.begin() + std::ptrdiff_t(n));
        if (n < needed)
            EXPECT_TRUE(has_all(parse_error(prefix), {"byte offset"})) << "truncated to " << n << " bytes";
        else
            expect_tensors_in_bounds(File::parse(prefix));
    }
}

// Flipping bits anywhere in the header and tensor table: every outcome is a parse whose tensors lie in
// the file, or a forge::Error. Anything else (another exception, a crash, a sanitizer report) fails.
TEST(GgufHostile, FlippedHeaderBytesParseOrFailCleanly) {
    std::vector<std::byte> bytes = file_bytes(hostile_subject());
    const std::uint64_t header = File::parse(bytes).data_offset();
    std::size_t parsed = 0, refused = 0;
    for (std::uint64_t i = 0; i < header; ++i) {
        for (const std::byte pattern : {std::byte{0x01}, std::byte{0x80}, std::byte{0xff}}) {
            bytes[i] ^= pattern;
            try {
                expect_tensors_in_bounds(File::parse(bytes));
                ++parsed;
            } catch (const Error& e) {
                ++refused;
                EXPECT_NE(std::string_view(e.what()).find("byte offset"), std::string_view::npos) << e.what();
            }
            bytes[i] ^= pattern;
        }
    }
    // Both outcomes occur: flips inside strings are harmless, flips in counts and types are not.
    EXPECT_GT(parsed, 0u);
    EXPECT_GT(refused, 0u);
}

// A file with no metadata and one tensor "t", whose fields come from the arguments, then `data_bytes`
// zero bytes at the default alignment. The offsets of the fields are recorded for the expected messages.
struct OneTensor {
    std::vector<std::byte> bytes;
    std::size_t n_dims_at = 0, type_at = 0, offset_at = 0;
    std::vector<std::size_t> dim_at;
};
OneTensor one_tensor(std::uint32_t n_dims, const std::vector<std::uint64_t>& dims, std::uint32_t type,
                     std::uint64_t offset, std::size_t data_bytes) {
    OneTensor t;
    Encoder e(t.bytes);
    e.put(kMagic).put<std::uint32_t>(3).put<std::uint64_t>(1).put<std::uint64_t>(0);
    e.put_string("t");
    t.n_dims_at = e.size();
    e.put(n_dims);
    for (const std::uint64_t d : dims) {
        t.dim_at.push_back(e.size());
        e.put(d);
    }
    t.type_at = e.size();
    e.put(type);
    t.offset_at = e.size();
    e.put(offset).pad_to(kDefaultAlignment);
    t.bytes.resize(t.bytes.size() + data_bytes);
    return t;
}

// A file with one metadata pair whose value encoding `payload` writes; value_at is where it starts.
struct OneKey {
    std::vector<std::byte> bytes;
    std::size_t key_at = 0, type_at = 0, value_at = 0;
};
OneKey one_key(const std::string& key, std::uint32_t type, const std::function<void(Encoder&)>& payload) {
    OneKey k;
    Encoder e(k.bytes);
    e.put(kMagic).put<std::uint32_t>(3).put<std::uint64_t>(0).put<std::uint64_t>(1);
    k.key_at = e.size();
    e.put_string(key);
    k.type_at = e.size();
    e.put(type);
    k.value_at = e.size();
    payload(e);
    return k;
}

TEST(GgufHostile, CraftedBuildersAreValidAsBuilt) {
    // The crafted cases below each break one field of these; unbroken, they parse.
    const auto t = one_tensor(2, {32, 2}, 8, 0, 2 * 34);
    EXPECT_EQ(File::parse(t.bytes).tensor("t").bytes, 68u);
    const auto k = one_key("k", 9, [](Encoder& e) { e.put<std::uint32_t>(7).put<std::uint64_t>(2).put(true).put(false); });
    EXPECT_EQ(File::parse(k.bytes).get_array("k")->items.size(), 2u);
}

TEST(GgufHostile, CraftedHeaderFieldsAreNamedWithTheirOffsets) {
    std::vector<std::byte> img;
    Encoder e(img);
    e.put<std::uint32_t>(0x58554747).put<std::uint32_t>(3).put<std::uint64_t>(0).put<std::uint64_t>(0);
    EXPECT_TRUE(has_all(parse_error(img), {"not a GGUF file", at(0)}));
    for (const std::uint32_t version : {0u, 1u, 4u, 0x03000000u}) {
        img.clear();
        e.put(kMagic).put(version).put<std::uint64_t>(0).put<std::uint64_t>(0);
        EXPECT_TRUE(has_all(parse_error(img), {"version " + std::to_string(version), at(4)}));
    }
    img.clear();
    e.put(kMagic).put<std::uint32_t>(3).put<std::uint64_t>(std::uint64_t(1) << 40).put<std::uint64_t>(0);
    EXPECT_TRUE(has_all(parse_error(img), {"tensor count 1099511627776", at(8)}));
    img.clear();
    e.put(kMagic).put<std::uint32_t>(3).put<std::uint64_t>(0).put<std::uint64_t>(~std::uint64_t(0));
    EXPECT_TRUE(has_all(parse_error(img), {"metadata count", at(16)}));
}

TEST(GgufHostile, CraftedMetadataIsNamedWithTheirOffsets) {
    const auto huge_key = one_key("k", 4, [](Encoder&) {});
    auto bytes = huge_key.bytes;
    bytes[huge_key.key_at + 7] = std::byte{0x40};  // key length 2^62 + 1
    EXPECT_TRUE(has_all(parse_error(bytes), {"metadata key length", at(huge_key.key_at)}));

    const auto huge_string = one_key("s", 8, [](Encoder& e) { e.put<std::uint64_t>(std::uint64_t(1) << 62); });
    EXPECT_TRUE(has_all(parse_error(huge_string.bytes), {"'s'", "string value length", at(huge_string.value_at)}));

    const auto huge_array = one_key("a", 9, [](Encoder& e) { e.put<std::uint32_t>(8).put<std::uint64_t>(1u << 30); });
    EXPECT_TRUE(has_all(parse_error(huge_array.bytes), {"'a'", "array length 1073741824", at(huge_array.value_at + 4)}));

    // Every element costs ~50 bytes parsed: the metadata may hold kMaxArrayElements in all, and a count
    // past that is refused before anything is read or allocated for it, even where the file could hold it.
    auto too_many = one_key("many", 9, [](Encoder& e) { e.put<std::uint32_t>(0).put<std::uint64_t>(kMaxArrayElements + 1); });
    too_many.bytes.resize(too_many.bytes.size() + kMaxArrayElements + 1);
    EXPECT_TRUE(has_all(parse_error(too_many.bytes), {"'many'", "array length 16777217", at(too_many.value_at + 4)}));

    const auto bad_type = one_key("x", 13, [](Encoder& e) { e.put<std::uint32_t>(0); });
    EXPECT_TRUE(has_all(parse_error(bad_type.bytes), {"'x'", "unknown value type 13", at(bad_type.type_at)}));

    const auto bad_elem = one_key("x", 9, [](Encoder& e) { e.put<std::uint32_t>(13).put<std::uint64_t>(0); });
    EXPECT_TRUE(has_all(parse_error(bad_elem.bytes), {"'x'", "unknown array element type 13", at(bad_elem.value_at)}));

    const auto bad_bool = one_key("flag", 7, [](Encoder& e) { e.put<std::uint8_t>(2); });
    EXPECT_TRUE(has_all(parse_error(bad_bool.bytes), {"'flag'", "bool value 2", at(bad_bool.value_at)}));

    // kMaxArrayNesting arrays inside each other are read; one more is refused where it begins.
    for (const int depth : {kMaxArrayNesting, kMaxArrayNesting + 1}) {
        std::size_t innermost_at = 0;
        const auto nested = one_key("deep", 9, [&](Encoder& e) {
            for (int d = 1; d < depth; ++d) e.put<std::uint32_t>(9).put<std::uint64_t>(1);
            innermost_at = e.size();
            e.put<std::uint32_t>(0).put<std::uint64_t>(1).put<std::uint8_t>(42);
        });
        if (depth == kMaxArrayNesting)
            EXPECT_EQ(File::parse(nested.bytes).metadata().size(), 1u);
        else
            EXPECT_TRUE(has_all(parse_error(nested.bytes), {"'deep'", "nested deeper than 8", at(innermost_at)}));
    }

    std::vector<std::byte> dup;
    Encoder e(dup);
    e.put(kMagic).put<std::uint32_t>(3).put<std::uint64_t>(0).put<std::uint64_t>(2);
    e.put_string("k").put<std::uint32_t>(0).put<std::uint8_t>(1);
    const std::size_t second = e.size();
    e.put_string("k").put<std::uint32_t>(0).put<std::uint8_t>(2);
    EXPECT_TRUE(has_all(parse_error(dup), {"duplicate metadata key 'k'", at(second)}));

    for (const std::uint32_t alignment : {0u, 3u, 48u, 2u << 20}) {
        const auto a = one_key("general.alignment", 4, [&](Encoder& en) { en.put(alignment); });
        EXPECT_TRUE(has_all(parse_error(a.bytes), {"general.alignment", std::to_string(alignment), at(a.value_at)}));
    }
    const auto text = one_key("general.alignment", 8, [](Encoder& en) { en.put_string("32"); });
    EXPECT_TRUE(has_all(parse_error(text.bytes), {"general.alignment", "string", at(text.value_at)}));

    // Names from the file reach messages escaped and cut short: a NUL would otherwise end what() before
    // the field and offset, and a megabyte name would bury them.
    const auto nul_name = one_key("a\0b"s, 7, [](Encoder& en) { en.put<std::uint8_t>(9); });
    EXPECT_TRUE(has_all(parse_error(nul_name.bytes), {"'a\\x00b'", "bool value 9", at(nul_name.value_at)}));
    const auto long_name = one_key(std::string(1 << 20, 'k'), 7, [](Encoder& en) { en.put<std::uint8_t>(9); });
    const std::string message = parse_error(long_name.bytes);
    EXPECT_TRUE(has_all(message, {"'kkkk", "'...", "bool value 9", at(long_name.value_at)}));
    EXPECT_LT(message.size(), 200u);
}

TEST(GgufHostile, CraftedTensorInfoIsNamedWithTheirOffsets) {
    for (const std::uint32_t n_dims : {0u, 5u}) {
        const auto t = one_tensor(n_dims, std::vector<std::uint64_t>(n_dims, 1), 0, 0, 32);
        EXPECT_TRUE(has_all(parse_error(t.bytes), {"'t'", std::to_string(n_dims) + " dimensions", at(t.n_dims_at)}));
    }
    const auto zero_dim = one_tensor(2, {32, 0}, 0, 0, 128);
    EXPECT_TRUE(has_all(parse_error(zero_dim.bytes), {"'t'", "dimension 1 = 0", at(zero_dim.dim_at[1])}));
    const auto huge_dim = one_tensor(1, {kMaxDim + 1}, 24, 0, 32);
    EXPECT_TRUE(has_all(parse_error(huge_dim.bytes), {"'t'", "dimension 0", at(huge_dim.dim_at[0])}));
    const std::uint64_t two31 = std::uint64_t(1) << 31;
    const auto product = one_tensor(3, {two31, two31, 2}, 24, 0, 32);
    EXPECT_TRUE(has_all(parse_error(product.bytes), {"'t'", "dimension 2", at(product.dim_at[2])}));
    // 2^62 F32 elements are 2^64 bytes: a byte count that wraps to 0 and would pass the bounds checks.
    const auto wraps = one_tensor(2, {kMaxDim, kMaxElements / kMaxDim}, 0, 0, 32);
    EXPECT_TRUE(has_all(parse_error(wraps.bytes), {"'t'", "overflow a 64-bit byte count", at(wraps.n_dims_at)}));

    for (const std::uint32_t type : {4u, 5u, 31u, 0xffffffffu}) {
        const auto t = one_tensor(1, {32}, type, 0, 128);
        EXPECT_TRUE(has_all(parse_error(t.bytes), {"'t'", "unknown tensor type id " + std::to_string(type), at(t.type_at)}));
    }
    const auto ragged = one_tensor(1, {48}, 2, 0, 64);
    EXPECT_TRUE(has_all(parse_error(ragged.bytes), {"'t'", "row length 48", "Q4_0 block size 32", at(ragged.n_dims_at)}));

    const auto unaligned = one_tensor(1, {8}, 0, 3, 64);
    EXPECT_TRUE(has_all(parse_error(unaligned.bytes), {"'t'", "offset 3 is not aligned to 32", at(unaligned.offset_at)}));
    const auto past_end = one_tensor(1, {8}, 0, 32, 32);
    EXPECT_TRUE(has_all(parse_error(past_end.bytes), {"'t'", "offset 32", "past the end", at(past_end.offset_at)}));
    const auto far_past = one_tensor(1, {8}, 0, std::uint64_t(1) << 63, 32);
    EXPECT_TRUE(has_all(parse_error(far_past.bytes), {"'t'", "past the end", at(far_past.offset_at)}));
    const auto last_byte_missing = one_tensor(1, {8}, 0, 0, 31);
    EXPECT_TRUE(has_all(parse_error(last_byte_missing.bytes), {"'t'", "past the end", at(last_byte_missing.offset_at)}));

    auto no_data = one_tensor(1, {8}, 0, 0, 0);
    const std::size_t table_end = no_data.offset_at + 8;
    no_data.bytes.resize(table_end);  // ends before the padding that starts the data section
    EXPECT_TRUE(has_all(parse_error(no_data.bytes), {"data section", at((table_end + 31) / 32 * 32)}));

    std::vector<std::byte> dup;
    Encoder e(dup);
    e.put(kMagic).put<std::uint32_t>(3).put<std::uint64_t>(2).put<std::uint64_t>(0);
    e.put_string("w").put<std::uint32_t>(1).put<std::uint64_t>(8).put<std::uint32_t>(0).put<std::uint64_t>(0);
    const std::size_t second = e.size();
    e.put_string("w").put<std::uint32_t>(1).put<std::uint64_t>(8).put<std::uint32_t>(0).put<std::uint64_t>(32);
    e.pad_to(32);
    dup.resize(dup.size() + 64);
    EXPECT_TRUE(has_all(parse_error(dup), {"duplicate tensor name 'w'", at(second)}));
}

// Two F32 tensors "a" [16] and "b" [8] at the given data offsets; b_offset_at is where b's offset field is.
struct TwoTensors {
    std::vector<std::byte> bytes;
    std::size_t b_offset_at = 0;
};
TwoTensors two_tensors(std::uint64_t a_offset, std::uint64_t b_offset) {
    TwoTensors t;
    Encoder e(t.bytes);
    e.put(kMagic).put<std::uint32_t>(3).put<std::uint64_t>(2).put<std::uint64_t>(0);
    e.put_string("a").put<std::uint32_t>(1).put<std::uint64_t>(16).put<std::uint32_t>(0).put(a_offset);
    e.put_string("b").put<std::uint32_t>(1).put<std::uint64_t>(8).put<std::uint32_t>(0);
    t.b_offset_at = e.size();
    e.put(b_offset).pad_to(kDefaultAlignment);
    t.bytes.resize(t.bytes.size() + 128);
    return t;
}

TEST(GgufHostile, TensorsSharingBytesAreRefused) {
    EXPECT_NO_THROW(File::parse(two_tensors(0, 64).bytes));  // a: bytes 0-63, b: 64-95
    EXPECT_NO_THROW(File::parse(two_tensors(32, 0).bytes));  // b: 0-31, a: 32-95, listed out of order
    const auto inside = two_tensors(0, 32);
    EXPECT_TRUE(has_all(parse_error(inside.bytes), {"tensor 'b'", "overlaps tensor 'a'", "offset 0, 64 bytes", at(inside.b_offset_at)}));
    const auto same = two_tensors(64, 64);
    EXPECT_TRUE(has_all(parse_error(same.bytes), {"overlaps"}));
}

TEST(GgufHostile, ARealModelWhoseNormPointsIntoAnotherTensorIsRefused) {
    // synth-llama-f32 with output_norm.weight's offset moved onto token_embd.weight's data, as llama.cpp
    // refuses it: loaded, every logit would come from the wrong bytes.
    const std::string path = forge::test::model_path("synth-llama-f32.gguf");
    std::vector<std::byte> bytes = file_bytes(path);
    const File f = File::parse(bytes);
    const TensorInfo& norm = f.tensor("output_norm.weight");
    const std::uint64_t embd_offset = f.tensor("token_embd.weight").offset;
    // The offset field is the last 8 bytes of the tensor's entry: find it by its value after its name.
    const std::string name = "output_norm.weight";
    const auto* begin = reinterpret_cast<const char*>(bytes.data());
    const std::size_t name_at = std::string_view(begin, f.data_offset()).find(name);
    ASSERT_NE(name_at, std::string_view::npos);
    const std::size_t offset_at = name_at + name.size() + 4 + 8 * norm.dims.size() + 4;
    std::uint64_t old_offset;
    std::memcpy(&old_offset, &bytes[offset_at], 8);
    ASSERT_EQ(old_offset, norm.offset);
    std::memcpy(&bytes[offset_at], &embd_offset, 8);
    EXPECT_TRUE(has_all(parse_error(bytes), {"tensor 'output_norm.weight'", "overlaps", "'token_embd.weight'", at(offset_at)}));
}

}  // namespace
