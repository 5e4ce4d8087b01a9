#pragma once
// GGUF reader (versions 2 and 3). Every byte of the file is treated as hostile: each count, length,
// offset and size is checked against what the file actually holds before it is used, so a truncated or
// corrupted file becomes a forge::Error naming the field and its offset, never a wild read or a huge
// allocation. Tensor data is not copied: TensorInfo::data points into the memory map.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/dtype.hpp"
#include "forge/core/error.hpp"
#include "forge/core/mapped_file.hpp"
#include "forge/core/printable.hpp"
#include "forge/gguf/value.hpp"

namespace forge::gguf {

inline constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr std::size_t kDefaultAlignment = 32;
inline constexpr std::size_t kMaxAlignment = std::size_t(1) << 20;
inline constexpr std::size_t kMaxDims = 4;
inline constexpr std::uint64_t kMaxDim = std::uint64_t(1) << 40;       // per dimension
inline constexpr std::uint64_t kMaxElements = std::uint64_t(1) << 62;  // per tensor
inline constexpr int kMaxArrayNesting = 8;
// Array elements in all of a file's metadata. A parsed element takes ~50 bytes however few the file
// spends on it, so without a bound a corrupted count in a large file could claim gigabytes of weights as
// u8 elements. Real vocabularies hold a few hundred thousand.
inline constexpr std::uint64_t kMaxArrayElements = std::uint64_t(1) << 24;

struct TensorInfo {
    std::string name;
    std::vector<std::uint64_t> dims;  // ggml order: dims[0] is the contiguous one
    std::uint32_t type_id = 0;        // raw GGUF type id; dtype() for the known ones
    std::uint64_t offset = 0;         // relative to the data section
    std::uint64_t elements = 0;
    std::uint64_t bytes = 0;
    const std::byte* data = nullptr;

    DType dtype() const { return static_cast<DType>(type_id); }
    std::string_view type_name() const {
        const auto* d = dtype_info(type_id);
        return d ? d->name : std::string_view("unknown");
    }
    std::uint64_t rows() const {
        std::uint64_t r = 1;
        for (std::size_t i = 1; i < dims.size(); ++i) r *= dims[i];
        return r;
    }
    std::uint64_t cols() const { return dims.empty() ? 1 : dims[0]; }
};

class File {
public:
    // Maps (or, with Residency::own_memory, reads) and parses `path`. Errors name the file.
    static File open(const std::string& path, Residency residency = Residency::page_cache) {
        MappedFile map(path, residency);
        try {
            File f = parse(map.bytes());
            f.map_ = std::make_shared<MappedFile>(std::move(map));
            f.path_ = path;
            return f;
        } catch (const Error& e) {
            throw Error(path + ": " + e.what());
        }
    }

    // Parses a GGUF image held in memory; `bytes` must outlive the File.
    static File parse(std::span<const std::byte> bytes) {
        File f;
        f.parse_all(bytes);
        return f;
    }

    std::uint32_t version() const { return version_; }
    std::size_t alignment() const { return alignment_; }
    const std::string& path() const { return path_; }
    std::span<const std::byte> bytes() const { return bytes_; }
    // Whether bytes() is the file as open() brought it into memory (else memory the caller holds).
    bool mapped() const { return map_ != nullptr; }
    // Where open() put the bytes (page_cache for a File parsed from the caller's memory).
    Residency residency() const { return map_ ? map_->residency() : Residency::page_cache; }
    std::uint64_t data_offset() const { return data_offset_; }

    const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
    const std::vector<TensorInfo>& tensors() const { return tensors_; }

    const Value* find(std::string_view key) const {
        const auto it = meta_index_.find(std::string(key));
        return it == meta_index_.end() ? nullptr : &metadata_[it->second].second;
    }
    const TensorInfo* find_tensor(std::string_view name) const {
        const auto it = tensor_index_.find(std::string(name));
        return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
    }
    const TensorInfo& tensor(std::string_view name) const {
        if (const auto* t = find_tensor(name)) return *t;
        throw Error("tensor '" + std::string(name) + "' is missing");
    }

    // Typed metadata access. Integer getters accept any integer type whose value fits; a missing key
    // or a value of the wrong type is an error naming the key.
    std::optional<std::uint64_t> get_uint(std::string_view key) const {
        const Value* v = find(key);
        if (!v) return std::nullopt;
        if (const auto* u = std::get_if<std::uint64_t>(&v->data)) return *u;
        if (const auto* i = std::get_if<std::int64_t>(&v->data); i && *i >= 0) return std::uint64_t(*i);
        throw Error(wrong_type(key, *v, "a non-negative integer"));
    }
    std::optional<double> get_float(std::string_view key) const {
        const Value* v = find(key);
        if (!v) return std::nullopt;
        if (const auto* d = std::get_if<double>(&v->data)) return *d;
        if (const auto* u = std::get_if<std::uint64_t>(&v->data)) return double(*u);
        if (const auto* i = std::get_if<std::int64_t>(&v->data)) return double(*i);
        throw Error(wrong_type(key, *v, "a number"));
    }
    std::optional<bool> get_bool(std::string_view key) const {
        const Value* v = find(key);
        if (!v) return std::nullopt;
        if (const auto* b = std::get_if<bool>(&v->data)) return *b;
        throw Error(wrong_type(key, *v, "a bool"));
    }
    std::optional<std::string> get_string(std::string_view key) const {
        const Value* v = find(key);
        if (!v) return std::nullopt;
        if (const auto* s = std::get_if<std::string>(&v->data)) return *s;
        throw Error(wrong_type(key, *v, "a string"));
    }
    const Array* get_array(std::string_view key) const {
        const Value* v = find(key);
        if (!v) return nullptr;
        if (const auto* a = std::get_if<Array>(&v->data)) return a;
        throw Error(wrong_type(key, *v, "an array"));
    }
    std::uint64_t require_uint(std::string_view key) const {
        if (auto v = get_uint(key)) return *v;
        throw Error("metadata key '" + std::string(key) + "' is missing");
    }

private:
    static std::string wrong_type(std::string_view key, const Value& v, const char* want) {
        return "metadata key '" + std::string(key) + "' holds " + std::string(value_type_name(v.type)) +
               ", expected " + want;
    }

    // Bounds-checked little-endian cursor over the file image.
    struct Cursor {
        std::span<const std::byte> bytes;
        std::uint64_t pos = 0;

        std::uint64_t remaining() const { return bytes.size() - pos; }
        [[noreturn]] void fail(const std::string& what, std::uint64_t at) const {
            throw Error(what + " (at byte offset " + std::to_string(at) + ")");
        }
        void need(std::uint64_t n, const char* field) const {
            if (n > remaining())
                fail(std::string("file truncated while reading ") + field + ": needs " + std::to_string(n) +
                         " bytes, " + std::to_string(remaining()) + " left",
                     pos);
        }
        template <class T>
        T read(const char* field) {
            need(sizeof(T), field);
            T v;
            std::memcpy(&v, bytes.data() + pos, sizeof(T));
            pos += sizeof(T);
            return v;
        }
        std::string read_string(const char* field) {
            const std::uint64_t at = pos;
            const auto n = read<std::uint64_t>(field);
            if (n > remaining())
                fail(std::string(field) + " length " + std::to_string(n) + " exceeds the " +
                         std::to_string(remaining()) + " bytes left in the file",
                     at);
            std::string s(reinterpret_cast<const char*>(bytes.data() + pos), n);
            pos += n;
            return s;
        }
    };

    // Counts are bounded by what the file can hold, but an entry in memory is several times its smallest
    // encoding: reserving at most this much up front keeps a corrupted count in a large file from
    // allocating a multiple of the file's size before the parse finds the lie.
    static constexpr std::uint64_t kMaxReserve = 4096;

    // Errors name the field; the caller adds which key it belongs to. `elements_left` is what remains
    // of the file's kMaxArrayElements.
    static Value read_value(Cursor& c, ValueType type, int depth, std::uint64_t& elements_left) {
        switch (type) {
            case ValueType::u8: return {type, std::uint64_t(c.read<std::uint8_t>("a u8 value"))};
            case ValueType::i8: return {type, std::int64_t(c.read<std::int8_t>("an i8 value"))};
            case ValueType::u16: return {type, std::uint64_t(c.read<std::uint16_t>("a u16 value"))};
            case ValueType::i16: return {type, std::int64_t(c.read<std::int16_t>("an i16 value"))};
            case ValueType::u32: return {type, std::uint64_t(c.read<std::uint32_t>("a u32 value"))};
            case ValueType::i32: return {type, std::int64_t(c.read<std::int32_t>("an i32 value"))};
            case ValueType::u64: return {type, c.read<std::uint64_t>("a u64 value")};
            case ValueType::i64: return {type, c.read<std::int64_t>("an i64 value")};
            case ValueType::f32: return {type, double(c.read<float>("an f32 value"))};
            case ValueType::f64: return {type, c.read<double>("an f64 value")};
            case ValueType::boolean: {
                const std::uint64_t at = c.pos;
                const auto b = c.read<std::uint8_t>("a bool value");
                if (b > 1) c.fail("bool value " + std::to_string(b) + " is not 0 or 1", at);
                return {type, b == 1};
            }
            case ValueType::string: return {type, c.read_string("a string value")};
            case ValueType::array: {
                if (depth >= kMaxArrayNesting)
                    c.fail("arrays nested deeper than " + std::to_string(kMaxArrayNesting), c.pos);
                const std::uint64_t at = c.pos;
                const auto elem_raw = c.read<std::uint32_t>("an array element type");
                if (elem_raw > 12) c.fail("unknown array element type " + std::to_string(elem_raw), at);
                const auto elem = static_cast<ValueType>(elem_raw);
                const std::uint64_t count_at = c.pos;
                const auto count = c.read<std::uint64_t>("an array length");
                // Every element takes at least this many bytes, so a count the file cannot hold is
                // rejected before anything is allocated for it.
                const std::uint64_t min_size = elem == ValueType::string ? 8 : elem == ValueType::array ? 12 : scalar_size(elem);
                if (count > c.remaining() / min_size)
                    c.fail("array length " + std::to_string(count) + " cannot fit in the " +
                               std::to_string(c.remaining()) + " bytes left",
                           count_at);
                if (count > elements_left)
                    c.fail("array length " + std::to_string(count) + " takes the metadata past " +
                               std::to_string(kMaxArrayElements) + " array elements in all",
                           count_at);
                elements_left -= count;
                Array arr{elem, {}};
                arr.items.reserve(std::min(count, kMaxReserve));
                for (std::uint64_t i = 0; i < count; ++i) arr.items.push_back(read_value(c, elem, depth + 1, elements_left));
                return {type, std::move(arr)};
            }
        }
        c.fail("unknown value type " + std::to_string(static_cast<std::uint32_t>(type)), c.pos - 4);
    }

    void parse_all(std::span<const std::byte> bytes) {
        bytes_ = bytes;
        Cursor c{bytes};
        if (c.remaining() < 4 || c.read<std::uint32_t>("the magic") != kMagic)
            throw Error("not a GGUF file: the first 4 bytes are not \"GGUF\" (at byte offset 0)");
        version_ = c.read<std::uint32_t>("the version");
        if (version_ != 2 && version_ != 3)
            c.fail("unsupported GGUF version " + std::to_string(version_) + " (forge reads versions 2 and 3)", 4);
        const std::uint64_t n_tensors_at = c.pos;
        const auto n_tensors = c.read<std::uint64_t>("the tensor count");
        const std::uint64_t n_kv_at = c.pos;
        const auto n_kv = c.read<std::uint64_t>("the metadata count");
        // Smallest possible entries: a metadata pair is 8+0 key bytes + 4 type + 1 value; a tensor info
        // is 8+0 name bytes + 4 dims count + 4 type + 8 offset.
        if (n_kv > c.remaining() / 13)
            c.fail("metadata count " + std::to_string(n_kv) + " cannot fit in a file of " + std::to_string(bytes.size()) + " bytes", n_kv_at);
        if (n_tensors > c.remaining() / 24)
            c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in a file of " + std::to_string(bytes.size()) + " bytes", n_tensors_at);

        metadata_.reserve(std::min(n_kv, kMaxReserve));
        alignment_ = kDefaultAlignment;
        std::uint64_t elements_left = kMaxArrayElements;
        for (std::uint64_t i = 0; i < n_kv; ++i) {
            const std::uint64_t at = c.pos;
            std::string key = c.read_string("a metadata key");
            if (meta_index_.count(key)) c.fail("duplicate metadata key " + quoted_text(key), at);
            const std::uint64_t type_at = c.pos;
            const auto type_raw = c.read<std::uint32_t>("a metadata value type");
            if (type_raw > 12) c.fail("metadata " + quoted_text(key) + ": unknown value type " + std::to_string(type_raw), type_at);
            const std::uint64_t value_at = c.pos;
            Value v;
            try {
                v = read_value(c, static_cast<ValueType>(type_raw), 0, elements_left);
            } catch (const Error& e) {
                throw Error("metadata " + quoted_text(key) + ": " + e.what());
            }
            if (key == "general.alignment") {
                const auto* u = std::get_if<std::uint64_t>(&v.data);
                if (!u || *u == 0 || (*u & (*u - 1)) != 0 || *u > kMaxAlignment)
                    c.fail("general.alignment must be an unsigned power of two up to 1 MiB, not " +
                               std::string(value_type_name(v.type)) + (u ? " " + std::to_string(*u) : std::string()),
                           value_at);
                alignment_ = static_cast<std::size_t>(*u);
            }
            meta_index_.emplace(key, metadata_.size());
            metadata_.emplace_back(std::move(key), std::move(v));
        }

        tensors_.reserve(std::min(n_tensors, kMaxReserve));
        std::vector<std::uint64_t> offsets_at;  // where each tensor's offset field is, for errors found later
        offsets_at.reserve(std::min(n_tensors, kMaxReserve));
        for (std::uint64_t i = 0; i < n_tensors; ++i) {
            TensorInfo t;
            const std::uint64_t at = c.pos;
            t.name = c.read_string("a tensor name");
            if (tensor_index_.count(t.name)) c.fail("duplicate tensor name " + quoted_text(t.name), at);
            const std::uint64_t dims_at = c.pos;
            const auto n_dims = c.read<std::uint32_t>("a tensor's dimension count");
            if (n_dims == 0 || n_dims > kMaxDims)
                c.fail("tensor " + quoted_text(t.name) + ": " + std::to_string(n_dims) + " dimensions (must be 1 to 4)", dims_at);
            t.elements = 1;
            for (std::uint32_t d = 0; d < n_dims; ++d) {
                const std::uint64_t dim_at = c.pos;
                const auto n = c.read<std::uint64_t>("a tensor dimension");
                if (n == 0 || n > kMaxDim || t.elements > kMaxElements / n)
                    c.fail("tensor " + quoted_text(t.name) + ": dimension " + std::to_string(d) + " = " + std::to_string(n) + " is out of range", dim_at);
                t.dims.push_back(n);
                t.elements *= n;
            }
            const std::uint64_t type_at = c.pos;
            t.type_id = c.read<std::uint32_t>("a tensor type");
            const DTypeInfo* info = dtype_info(t.type_id);
            if (!info) c.fail("tensor " + quoted_text(t.name) + ": unknown tensor type id " + std::to_string(t.type_id), type_at);
            if (t.dims[0] % info->block_elems != 0)
                c.fail("tensor " + quoted_text(t.name) + ": row length " + std::to_string(t.dims[0]) + " is not a multiple of the " +
                           std::string(info->name) + " block size " + std::to_string(info->block_elems),
                       dims_at);
            // 2^62 elements of an 8-byte type would wrap the byte count to a small number that passes
            // every bounds check below while the shape still describes the full size.
            if (t.elements / info->block_elems > std::numeric_limits<std::uint64_t>::max() / info->block_bytes)
                c.fail("tensor " + quoted_text(t.name) + ": " + std::to_string(t.elements) + " " + std::string(info->name) +
                           " elements overflow a 64-bit byte count",
                       dims_at);
            t.bytes = t.elements / info->block_elems * info->block_bytes;
            const std::uint64_t off_at = c.pos;
            t.offset = c.read<std::uint64_t>("a tensor offset");
            if (t.offset % alignment_ != 0)
                c.fail("tensor " + quoted_text(t.name) + ": offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(alignment_), off_at);
            tensor_index_.emplace(t.name, tensors_.size());
            tensors_.push_back(std::move(t));
            offsets_at.push_back(off_at);
        }

        data_offset_ = (c.pos + alignment_ - 1) / alignment_ * alignment_;
        if (!tensors_.empty() && data_offset_ > bytes.size())
            throw Error("file truncated before the tensor data section (expected at byte offset " + std::to_string(data_offset_) + ")");
        const std::uint64_t data_size = bytes.size() - std::min<std::uint64_t>(data_offset_, bytes.size());
        for (std::size_t i = 0; i < tensors_.size(); ++i) {
            auto& t = tensors_[i];
            if (t.offset > data_size || t.bytes > data_size - t.offset)
                c.fail("tensor " + quoted_text(t.name) + ": offset " + std::to_string(t.offset) + " + " + std::to_string(t.bytes) +
                           " bytes runs past the end of the " + std::to_string(data_size) +
                           "-byte data section that starts at byte " + std::to_string(data_offset_),
                       offsets_at[i]);
            t.data = bytes.data() + data_offset_ + t.offset;
        }
        // Each tensor owns its bytes: one whose data lies inside another's reads that tensor's values
        // as its own (a norm read from quantized blocks gives NaN logits, not an error).
        std::vector<std::size_t> by_offset(tensors_.size());
        for (std::size_t i = 0; i < by_offset.size(); ++i) by_offset[i] = i;
        std::sort(by_offset.begin(), by_offset.end(), [&](std::size_t a, std::size_t b) {
            return tensors_[a].offset != tensors_[b].offset ? tensors_[a].offset < tensors_[b].offset : a < b;  // file order on ties
        });
        for (std::size_t i = 1; i < by_offset.size(); ++i) {
            const TensorInfo &prev = tensors_[by_offset[i - 1]], &t = tensors_[by_offset[i]];
            if (t.offset < prev.offset + prev.bytes)
                c.fail("tensor " + quoted_text(t.name) + ": data at offset " + std::to_string(t.offset) + " overlaps tensor " + quoted_text(prev.name) +
                           " (offset " + std::to_string(prev.offset) + ", " + std::to_string(prev.bytes) + " bytes): tensors must not share bytes",
                       offsets_at[by_offset[i]]);
        }
    }

    std::shared_ptr<MappedFile> map_;  // keeps tensor data alive for as long as any copy of the File
    std::string path_;
    std::span<const std::byte> bytes_;
    std::uint32_t version_ = 0;
    std::size_t alignment_ = kDefaultAlignment;
    std::uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, Value>> metadata_;
    std::map<std::string, std::size_t> meta_index_;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, std::size_t> tensor_index_;
};

}  // namespace forge::gguf
