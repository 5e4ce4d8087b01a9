#pragma once
// GGUF writer (versions 2 and 3 share one layout): the metadata in insertion order, the tensor table, zero
// padding to general.alignment, then each tensor's data at the next aligned offset, in insertion order and
// zero-padded. Inputs that forge's reader or llama.cpp would refuse are a forge::Error when they are given,
// not a file that fails later, with two exceptions: nested arrays are valid GGUF and forge reads them, but
// llama.cpp does not; and forge reads at most kMaxArrayElements array elements in a file's metadata (some
// 800 MB of Values to write), which llama.cpp does not limit.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "forge/core/dtype.hpp"
#include "forge/core/error.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/gguf/value.hpp"

namespace forge::gguf {

static_assert(std::endian::native == std::endian::little, "the writer copies host integers as GGUF's little-endian ones");

// Appends GGUF encodings to a byte buffer. The Writer builds its header with it; it is public so that
// tests can assemble the hostile headers the Writer refuses to produce.
class Encoder {
public:
    explicit Encoder(std::vector<std::byte>& out) : out_(&out) {}

    // Bytes in the buffer so far: the offset of whatever is put next.
    std::size_t size() const { return out_->size(); }

    template <class T>
        requires std::is_arithmetic_v<T>
    Encoder& put(T v) {
        const auto* p = reinterpret_cast<const std::byte*>(&v);
        out_->insert(out_->end(), p, p + sizeof(T));
        return *this;
    }
    Encoder& put_string(std::string_view s) {
        put<std::uint64_t>(s.size());
        const auto* p = reinterpret_cast<const std::byte*>(s.data());
        out_->insert(out_->end(), p, p + s.size());
        return *this;
    }
    // Zero bytes up to the next multiple of `alignment`.
    Encoder& pad_to(std::size_t alignment) {
        out_->resize((out_->size() + alignment - 1) / alignment * alignment);
        return *this;
    }

    // A value's encoding after its type tag. The value must hold what its type says, in range: `key`
    // names it in the error otherwise. `depth` counts the arrays around it.
    Encoder& put_value(const Value& v, const std::string& key, int depth = 0) {
        switch (v.type) {
            case ValueType::u8: return put(integer<std::uint8_t>(v, key));
            case ValueType::i8: return put(integer<std::int8_t>(v, key));
            case ValueType::u16: return put(integer<std::uint16_t>(v, key));
            case ValueType::i16: return put(integer<std::int16_t>(v, key));
            case ValueType::u32: return put(integer<std::uint32_t>(v, key));
            case ValueType::i32: return put(integer<std::int32_t>(v, key));
            case ValueType::u64: return put(integer<std::uint64_t>(v, key));
            case ValueType::i64: return put(integer<std::int64_t>(v, key));
            case ValueType::f32: return put(static_cast<float>(held<double>(v, key)));
            case ValueType::f64: return put(held<double>(v, key));
            case ValueType::boolean: return put(held<bool>(v, key));
            case ValueType::string: return put_string(held<std::string>(v, key));
            case ValueType::array: {
                // The reader's limit, so that everything written can be read back.
                if (depth >= kMaxArrayNesting)
                    throw Error("metadata '" + key + "': arrays nested deeper than " + std::to_string(kMaxArrayNesting));
                const Array& a = held<Array>(v, key);
                check_type(a.elem, key);
                put<std::uint32_t>(static_cast<std::uint32_t>(a.elem)).put<std::uint64_t>(a.items.size());
                for (const Value& item : a.items) {
                    if (item.type != a.elem)
                        throw Error("metadata '" + key + "': an array of " + std::string(value_type_name(a.elem)) +
                                    " holds a " + std::string(value_type_name(item.type)));
                    put_value(item, key, depth + 1);
                }
                return *this;
            }
        }
        check_type(v.type, key);  // throws: every known type returned above
        return *this;
    }

    static void check_type(ValueType t, const std::string& key) {
        if (static_cast<std::uint32_t>(t) > static_cast<std::uint32_t>(ValueType::f64))
            throw Error("metadata '" + key + "': unknown value type " + std::to_string(static_cast<std::uint32_t>(t)));
    }

private:
    template <class T>
    static const T& held(const Value& v, const std::string& key) {
        if (const auto* p = std::get_if<T>(&v.data)) return *p;
        throw mismatch(v, key);
    }
    // Integers are accepted from either integer alternative when they fit the declared width.
    template <class T>
    static T integer(const Value& v, const std::string& key) {
        const auto* u = std::get_if<std::uint64_t>(&v.data);
        const auto* i = std::get_if<std::int64_t>(&v.data);
        if (!u && !i) throw mismatch(v, key);
        if (u ? !std::in_range<T>(*u) : !std::in_range<T>(*i))
            throw Error("metadata '" + key + "': " + (u ? std::to_string(*u) : std::to_string(*i)) +
                        " does not fit in " + std::string(value_type_name(v.type)));
        return u ? static_cast<T>(*u) : static_cast<T>(*i);
    }
    static Error mismatch(const Value& v, const std::string& key) {
        constexpr const char* held_names[] = {"an unsigned integer", "a signed integer", "a floating-point number",
                                              "a bool", "a string", "an array"};
        return Error("metadata '" + key + "': a " + std::string(value_type_name(v.type)) + " value holds " +
                     held_names[v.data.index()]);
    }

    std::vector<std::byte>* out_;
};

class Writer {
public:
    static constexpr std::size_t kMaxNameBytes = 64;  // llama.cpp's name buffer, terminating NUL included

    explicit Writer(std::uint32_t version = 3) : version_(version) {
        if (version != 2 && version != 3)
            throw Error("cannot write GGUF version " + std::to_string(version) + " (forge writes versions 2 and 3)");
    }
    // Tensors added by value are referred to by address: a copy would point into the original.
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    Writer(Writer&&) = default;
    Writer& operator=(Writer&&) = default;

    // Appends a metadata pair; keys are unique. general.alignment must be a u32 power of two (llama.cpp
    // reads it only as u32) no larger than the reader's limit.
    Writer& set(const std::string& key, const Value& value) {
        if (keys_.count(key)) throw Error("duplicate metadata key '" + key + "'");
        std::size_t alignment = alignment_;
        if (key == "general.alignment") {
            const auto* u = std::get_if<std::uint64_t>(&value.data);
            if (value.type != ValueType::u32 || !u || *u == 0 || (*u & (*u - 1)) != 0 || *u > kMaxAlignment)
                throw Error("general.alignment must be a u32 power of two up to " + std::to_string(kMaxAlignment) +
                            ", not " + std::string(value_type_name(value.type)) + (u ? " " + std::to_string(*u) : std::string()));
            alignment = static_cast<std::size_t>(*u);
        }
        Encoder e(kv_);
        const std::size_t start = e.size();
        try {
            e.put_string(key).put<std::uint32_t>(static_cast<std::uint32_t>(value.type)).put_value(value, key);
        } catch (const Error&) {
            kv_.resize(start);  // a rejected pair leaves nothing behind
            throw;
        }
        keys_.insert(key);
        alignment_ = alignment;
        ++n_kv_;
        return *this;
    }

    // Appends a tensor. `dims` are in ggml order (dims[0] contiguous); `data` holds exactly the bytes the
    // shape and type need and is not copied: it must stay valid until the last write.
    Writer& add_tensor(std::string name, std::vector<std::uint64_t> dims, DType type, std::span<const std::byte> data) {
        const std::string what = "tensor '" + name + "': ";
        if (name.size() >= kMaxNameBytes)
            throw Error(what + "name is " + std::to_string(name.size()) + " bytes, the limit is " +
                        std::to_string(kMaxNameBytes - 1));
        if (tensor_names_.count(name)) throw Error("duplicate tensor name '" + name + "'");
        const DTypeInfo* info = dtype_info(static_cast<std::uint32_t>(type));
        if (!info) throw Error(what + "unknown type id " + std::to_string(static_cast<std::uint32_t>(type)));
        if (dims.empty() || dims.size() > kMaxDims)
            throw Error(what + std::to_string(dims.size()) + " dimensions (must be 1 to " + std::to_string(kMaxDims) + ")");
        std::uint64_t elements = 1;
        for (std::size_t d = 0; d < dims.size(); ++d) {
            if (dims[d] == 0 || dims[d] > kMaxDim || elements > kMaxElements / dims[d])
                throw Error(what + "dimension " + std::to_string(d) + " = " + std::to_string(dims[d]) + " is out of range");
            elements *= dims[d];
        }
        if (dims[0] % info->block_elems != 0)
            throw Error(what + "row length " + std::to_string(dims[0]) + " is not a multiple of the " +
                        std::string(info->name) + " block size " + std::to_string(info->block_elems));
        const std::uint64_t blocks = elements / info->block_elems;
        if (blocks > std::numeric_limits<std::uint64_t>::max() / info->block_bytes)
            throw Error(what + std::to_string(elements) + " " + std::string(info->name) +
                        " elements overflow a 64-bit byte count");
        if (blocks * info->block_bytes != data.size())
            throw Error(what + std::to_string(data.size()) + " bytes of data, its shape needs " +
                        std::to_string(blocks * info->block_bytes));
        tensor_names_.insert(name);
        tensors_.push_back({std::move(name), std::move(dims), type, data});
        return *this;
    }
    // As above, but the Writer keeps the bytes.
    Writer& add_tensor(std::string name, std::vector<std::uint64_t> dims, DType type, std::vector<std::byte>&& data) {
        owned_.push_back(std::move(data));
        try {
            return add_tensor(std::move(name), std::move(dims), type, std::span<const std::byte>(owned_.back()));
        } catch (const Error&) {
            owned_.pop_back();
            throw;
        }
    }

    std::size_t alignment() const { return alignment_; }

    // The whole file in memory.
    std::vector<std::byte> bytes() const {
        std::vector<std::byte> out;
        emit([&](std::span<const std::byte> b) { out.insert(out.end(), b.begin(), b.end()); });
        return out;
    }

    // Writes the file next to `path`, flushes it, then renames it over `path`, so readers of `path` see
    // either the old file or the complete new one.
    void write(const std::string& path) const {
        const std::string tmp = path + ".tmp." + std::to_string(::getpid());
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) throw Error("cannot create '" + tmp + "': " + std::strerror(errno));
        try {
            emit([&](std::span<const std::byte> b) {
                while (!b.empty()) {
                    const ssize_t n = ::write(fd, b.data(), b.size());
                    if (n < 0 && errno == EINTR) continue;
                    if (n <= 0) throw Error("cannot write '" + tmp + "': " + std::strerror(errno));
                    b = b.subspan(static_cast<std::size_t>(n));
                }
            });
            if (::fsync(fd) != 0) throw Error("cannot flush '" + tmp + "': " + std::strerror(errno));
            const int rc = ::close(fd);
            fd = -1;
            if (rc != 0) throw Error("cannot close '" + tmp + "': " + std::strerror(errno));
            if (::rename(tmp.c_str(), path.c_str()) != 0)
                throw Error("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(errno));
        } catch (...) {
            if (fd >= 0) ::close(fd);
            ::unlink(tmp.c_str());
            throw;
        }
    }

private:
    struct Tensor {
        std::string name;
        std::vector<std::uint64_t> dims;
        DType type;
        std::span<const std::byte> data;
    };

    std::uint64_t padded(std::uint64_t n) const { return (n + alignment_ - 1) / alignment_ * alignment_; }

    template <class Sink>
    void emit(Sink&& sink) const {
        std::vector<std::byte> header;
        Encoder e(header);
        e.put(kMagic).put(version_).put<std::uint64_t>(tensors_.size()).put(n_kv_);
        header.insert(header.end(), kv_.begin(), kv_.end());
        std::uint64_t offset = 0;
        for (const Tensor& t : tensors_) {
            e.put_string(t.name).put<std::uint32_t>(static_cast<std::uint32_t>(t.dims.size()));
            for (const std::uint64_t d : t.dims) e.put(d);
            e.put<std::uint32_t>(static_cast<std::uint32_t>(t.type)).put(offset);
            offset += padded(t.data.size());
        }
        // The padding aligns the data section; with no tensors there is none (gguf-py writes it so).
        if (!tensors_.empty()) e.pad_to(alignment_);
        sink(std::span<const std::byte>(header));

        static constexpr std::array<std::byte, 4096> kZeros{};
        for (const Tensor& t : tensors_) {
            sink(t.data);
            for (std::size_t pad = padded(t.data.size()) - t.data.size(); pad > 0;) {
                const std::size_t n = std::min(pad, kZeros.size());
                sink(std::span<const std::byte>(kZeros.data(), n));
                pad -= n;
            }
        }
    }

    std::uint32_t version_;
    std::size_t alignment_ = kDefaultAlignment;
    std::uint64_t n_kv_ = 0;
    std::vector<std::byte> kv_;  // the encoded metadata pairs, in insertion order
    std::set<std::string, std::less<>> keys_;
    std::vector<Tensor> tensors_;
    std::set<std::string, std::less<>> tensor_names_;
    std::deque<std::vector<std::byte>> owned_;  // a deque: growing it never moves the vectors spans point into
};

}  // namespace forge::gguf
