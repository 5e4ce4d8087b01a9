// The opt-in scan for non-finite weights: every test model passes, and a NaN or infinity planted in a tensor
// of each kind of type (plain floats, a Q8_0 block scale, a Q4_K super-block scale) is refused naming the
// tensor, where it is and what it is.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "forge/core/half.hpp"
#include "forge/core/mapped_file.hpp"
#include "forge/gguf/check_tensors.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/gguf/writer.hpp"
#include "forge/quant/k_quants.hpp"
#include "forge/quant/q8_0.hpp"
#include "gguf_fixtures.hpp"
#include "testdata.hpp"

namespace {

namespace fs = std::filesystem;
using forge::DType;
using forge::Error;
using namespace forge::gguf;

std::vector<std::byte> file_bytes(const std::string& path) {
    const forge::MappedFile m(path);
    return {m.bytes().begin(), m.bytes().end()};
}

// What check_finite_tensors says about the file `image`, or "" when it passes.
std::string check_error(const std::vector<std::byte>& image) {
    const File f = File::parse(image);
    try {
        check_finite_tensors(f);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// Writes `value` over byte `at` of tensor `name`'s data in `image`, after checking the tensor's type.
template <class T>
void plant(std::vector<std::byte>& image, const std::string& name, DType type, std::uint64_t at, T value) {
    const File f = File::parse(image);
    const TensorInfo& t = f.tensor(name);
    ASSERT_EQ(t.dtype(), type) << name;
    ASSERT_LE(at + sizeof(T), t.bytes) << name;
    std::memcpy(image.data() + (t.data - image.data()) + at, &value, sizeof(T));
}

TEST(CheckTensors, EveryTestModelPasses) {
    std::vector<std::string> paths = {std::string(FORGE_SOURCE_DIR) + "/models/stories260K.gguf"};
    for (const auto& e : fs::directory_iterator(forge::test::testdata("models")))
        if (e.path().extension() == ".gguf") paths.push_back(e.path().string());
    ASSERT_GE(paths.size(), 10u);
    for (const auto& path : paths) {
        SCOPED_TRACE(path);
        EXPECT_NO_THROW(check_finite_tensors(File::open(path)));
    }
}

TEST(CheckTensors, F32NaNAndInfinity) {
    const auto clean = file_bytes(forge::test::model_path("synth-llama-f32.gguf"));
    // [384 columns, 128 rows]
    auto image = clean;
    plant(image, "blk.1.ffn_down.weight", DType::F32, (17 * 384 + 240) * 4, std::numeric_limits<float>::quiet_NaN());
    EXPECT_EQ(check_error(image), "tensor 'blk.1.ffn_down.weight' (F32) holds NaN at row 17, column 240: the file is corrupt");
    // A vector's position is its element; the first bad tensor in file order is the one named.
    plant(image, "output_norm.weight", DType::F32, 100 * 4, -std::numeric_limits<float>::infinity());
    EXPECT_EQ(check_error(image), "tensor 'blk.1.ffn_down.weight' (F32) holds NaN at row 17, column 240: the file is corrupt");
    image = clean;
    plant(image, "output_norm.weight", DType::F32, 100 * 4, -std::numeric_limits<float>::infinity());
    EXPECT_EQ(check_error(image), "tensor 'output_norm.weight' (F32) holds an infinite value at element 100: the file is corrupt");
}

TEST(CheckTensors, F16NaNAndInfinity) {
    const auto clean = file_bytes(forge::test::model_path("synth-llama-f16.gguf"));
    // [128 columns, 64 rows]
    auto image = clean;
    plant(image, "blk.0.attn_k.weight", DType::F16, (5 * 128 + 100) * 2, std::uint16_t(0x7e00));
    EXPECT_EQ(check_error(image), "tensor 'blk.0.attn_k.weight' (F16) holds NaN at row 5, column 100: the file is corrupt");
    image = clean;
    plant(image, "blk.0.attn_k.weight", DType::F16, (63 * 128 + 127) * 2, std::uint16_t(0xfc00));
    EXPECT_EQ(check_error(image), "tensor 'blk.0.attn_k.weight' (F16) holds an infinite value at row 63, column 127: the file is corrupt");
}

TEST(CheckTensors, BF16NaNAndInfinity) {
    // An F16 file's finite values read as BF16 are finite too (a BF16 exponent of all ones needs the F16 one).
    const File f16 = File::open(forge::test::model_path("synth-llama-f16.gguf"));
    const auto clean = forge::test::rewrite(f16, {}, {{"blk.0.ffn_gate.weight", DType::BF16}}).bytes();
    EXPECT_EQ(check_error(clean), "");
    // [128 columns, 384 rows]
    auto image = clean;
    plant(image, "blk.0.ffn_gate.weight", DType::BF16, (300 * 128 + 7) * 2, std::uint16_t(0x7fc0));
    EXPECT_EQ(check_error(image), "tensor 'blk.0.ffn_gate.weight' (BF16) holds NaN at row 300, column 7: the file is corrupt");
    image = clean;
    plant(image, "blk.0.ffn_gate.weight", DType::BF16, 3 * 2, std::uint16_t(0x7f80));
    EXPECT_EQ(check_error(image), "tensor 'blk.0.ffn_gate.weight' (BF16) holds an infinite value at row 0, column 3: the file is corrupt");
}

TEST(CheckTensors, Q8_0InfiniteScale) {
    auto image = file_bytes(forge::test::model_path("synth-llama-q8_0.gguf"));
    // [384 columns, 128 rows]: 12 blocks a row; row 17's block 7 starts at column 224. Its first code is made
    // non-zero, since inf * 0 is NaN.
    const std::uint64_t block = (17 * 12 + 7) * sizeof(forge::BlockQ8_0);
    plant(image, "blk.1.ffn_down.weight", DType::Q8_0, block + offsetof(forge::BlockQ8_0, d), std::uint16_t(0x7c00));
    plant(image, "blk.1.ffn_down.weight", DType::Q8_0, block + offsetof(forge::BlockQ8_0, qs), std::int8_t(-3));
    EXPECT_EQ(check_error(image), "tensor 'blk.1.ffn_down.weight' (Q8_0) holds an infinite value at row 17, column 224: the file is corrupt");
}

TEST(CheckTensors, Q4_KNaNSuperBlockScale) {
    auto image = file_bytes(forge::test::model_path("synth-llama256-Q4_K_M.gguf"));
    // [768 columns, 256 rows]: 3 super-blocks a row; row 17's last starts at column 512.
    const std::uint64_t block = (17 * 3 + 2) * sizeof(forge::BlockQ4_K);
    plant(image, "blk.0.ffn_down.weight", DType::Q4_K, block + offsetof(forge::BlockQ4_K, d), std::uint16_t(0x7e00));
    EXPECT_EQ(check_error(image), "tensor 'blk.0.ffn_down.weight' (Q4_K) holds NaN at row 17, column 512: the file is corrupt");
}

TEST(CheckTensors, TypesForgeCannotComputeAreLeftToTheLoader) {
    // The fixture's I32 tensor holds F32 bytes; a NaN's bits there are an ordinary integer to this check.
    auto image = forge::test::unsupported_type_model_bytes();
    plant(image, "blk.1.ffn_down.weight", DType::I32, 8, std::numeric_limits<float>::quiet_NaN());
    EXPECT_EQ(check_error(image), "");
}

TEST(CheckTensors, DataOffItsTypesAlignment) {
    // With general.alignment 1, an I8 tensor of 1 or 2 bytes in front puts the F16 data at an odd address
    // (reading it as uint16_t there is undefined; the sanitizer build notices).
    std::vector<std::uint16_t> values(64 * 3, forge::f32_to_f16(0.5f));
    values[2 * 64 + 9] = 0x7e00;
    std::vector<std::byte> f16(values.size() * 2);
    std::memcpy(f16.data(), values.data(), f16.size());
    for (std::uint64_t pad = 1; pad <= 2; ++pad) {
        Writer w;
        w.set("general.alignment", Value::u32(1));
        w.add_tensor("pad", {pad}, DType::I8, std::vector<std::byte>(pad));
        w.add_tensor("w", {64, 3}, DType::F16, f16);
        const auto image = w.bytes();
        if (reinterpret_cast<std::uintptr_t>(File::parse(image).tensor("w").data) % 2 == 0) continue;
        EXPECT_EQ(check_error(image), "tensor 'w' (F16) holds NaN at row 2, column 9: the file is corrupt");
        return;
    }
    FAIL() << "no padding put the F16 data at an odd address";
}

}  // namespace
